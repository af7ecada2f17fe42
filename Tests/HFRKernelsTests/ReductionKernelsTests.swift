import XCTest
import HFRKernels

final class ReductionKernelsTests: XCTestCase {
    static let counts = [0, 1, 7, 31, 1000, 4099]

    enum Placement: CaseIterable { case outOfPlace, dstIsA, dstIsB, reduceAPI }

    /// Runs one (type, op, count, placement) case and checks every element bit-exactly.
    func check(_ type: DataType, _ op: ReduceOp, _ count: Int, _ placement: Placement, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let size = type.size
        // One extra element at each end to catch out-of-bounds writes.
        let a = UnsafeMutableRawPointer.allocate(byteCount: (count + 2) * size, alignment: 16)
        let b = UnsafeMutableRawPointer.allocate(byteCount: (count + 2) * size, alignment: 16)
        let d = UnsafeMutableRawPointer.allocate(byteCount: (count + 2) * size, alignment: 16)
        defer { a.deallocate(); b.deallocate(); d.deallocate() }
        for i in 0..<(count + 2) {
            storeBits(a, i, type, randomElement(type, &rng))
            storeBits(b, i, type, randomElement(type, &rng))
            storeBits(d, i, type, 0x5A5A_5A5A_5A5A_5A5A)
        }
        let aIn = (0..<(count + 2)).map { elementBits(a, $0, type) }
        let bIn = (0..<(count + 2)).map { elementBits(b, $0, type) }
        let ap = a + size, bp = b + size
        let out: UnsafeMutableRawPointer
        switch placement {
        case .outOfPlace:
            out = d
            ReductionKernels.combine(d + size, ap, bp, count: count, type: type, op: op)
        case .dstIsA:
            out = a
            ReductionKernels.combine(ap, ap, bp, count: count, type: type, op: op)
        case .dstIsB:
            out = b
            ReductionKernels.combine(bp, ap, bp, count: count, type: type, op: op)
        case .reduceAPI:
            out = a
            ReductionKernels.reduce(ap, bp, count: count, type: type, op: op)
        }
        let untouched: UInt64 = {
            var v: UInt64 = 0x5A5A_5A5A_5A5A_5A5A
            if size < 8 { v &= (UInt64(1) << UInt64(size * 8)) - 1 }
            return v
        }()
        let guards = [0, count + 1]
        for g in guards {
            let expect = placement == .outOfPlace ? untouched : (placement == .dstIsB ? bIn[g] : aIn[g])
            XCTAssertEqual(elementBits(out, g, type), expect, "\(type) \(op) n=\(count) \(placement): guard element \(g) overwritten")
        }
        var failures = 0
        for i in 0..<count {
            let x = aIn[i + 1], y = bIn[i + 1]
            let expected = referenceCombine(x, y, type, op)
            let got = elementBits(out, i + 1, type)
            var ok = got == expected
            if !ok && isNaNBits(expected, type) && isNaNBits(got, type) { ok = true }
            if !ok && (op == .max || op == .min) && isZeroBits(x, type) && isZeroBits(y, type)
                && (got == x || got == y) { ok = true }
            if !ok {
                failures += 1
                if failures <= 5 {
                    XCTFail("\(type) \(op) n=\(count) \(placement) [\(i)]: op(\(hex(x)), \(hex(y))) = \(hex(got)), expected \(hex(expected))")
                }
            }
        }
    }

    func testEveryTypeAndOp() {
        var seed: UInt64 = 1
        for type in DataType.allCases {
            for op in ReduceOp.allCases {
                for count in Self.counts {
                    for placement in Placement.allCases {
                        seed += 1
                        check(type, op, count, placement, seed: seed)
                    }
                }
            }
        }
    }

    /// Specific values whose results are known by hand, so the test does not only compare two
    /// implementations of the same arithmetic.
    func testKnownValues() {
        func run<T>(_ type: DataType, _ op: ReduceOp, _ a: [T], _ b: [T]) -> [T] {
            var x = a
            x.withUnsafeMutableBytes { xp in
                b.withUnsafeBytes { bp in
                    ReductionKernels.reduce(xp.baseAddress!, bp.baseAddress!, count: a.count, type: type, op: op)
                }
            }
            return x
        }
        XCTAssertEqual(run(.int32, .sum, [Int32.max, -7, 5], [1, 2, -9]), [Int32.min, -5, -4])
        XCTAssertEqual(run(.uint8, .sum, [UInt8(250)], [10]), [4])
        XCTAssertEqual(run(.int8, .prod, [Int8(64)], [4]), [0])
        XCTAssertEqual(run(.int64, .prod, [Int64.max], [2]), [-2])
        XCTAssertEqual(run(.uint64, .max, [UInt64.max, 3], [1, 4]), [UInt64.max, 4])
        XCTAssertEqual(run(.int8, .min, [Int8(-128), 3], [127, -4]), [-128, -4])
        XCTAssertEqual(run(.float32, .avg, [Float(1.5)], [2.25]), [3.75])
        let m = run(.float32, .max, [Float.nan, 1, -Float.infinity, 2], [0, .nan, 5, .infinity])
        XCTAssertTrue(m[0].isNaN && m[1].isNaN)
        XCTAssertEqual(Array(m[2...]), [5, .infinity])
        let mn = run(.float64, .min, [Double.nan, 1, -Double.infinity], [0, .nan, 5])
        XCTAssertTrue(mn[0].isNaN && mn[1].isNaN)
        XCTAssertEqual(mn[2], -.infinity)
        // bfloat16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7: rounds to even (1.0).
        XCTAssertEqual(run(.bfloat16, .sum, [UInt16(0x3F80), 0x3F81], [0x3B80, 0x3B80]), [0x3F80, 0x3F82])
        // bfloat16 overflow to infinity, inf - inf = NaN (quiet).
        let bo = run(.bfloat16, .sum, [UInt16(0x7F7F), 0x7F80], [0x7F7F, 0xFF80])
        XCTAssertEqual(bo[0], 0x7F80)
        XCTAssertEqual(bo[1] & 0x7FC0, 0x7FC0, "inf + -inf must be a quiet NaN")
        // float16: 65504 + 16 = 65520 rounds to inf; 1 + 2^-11 ties to 1; subnormals add exactly.
        XCTAssertEqual(run(.float16, .sum, [UInt16(0x7BFF), 0x3C00, 0x0001, 0x8001], [0x4C00, 0x1000, 0x0001, 0x0001]),
                       [0x7C00, 0x3C00, 0x0002, 0x0000])
        XCTAssertEqual(run(.float16, .prod, [UInt16(0x3C00 | 0x8000)], [0x0001]), [0x8001])
        let hn = run(.float16, .max, [UInt16(0x7E00), 0x3C00], [0x3C00, 0xFE00])
        XCTAssertTrue((hn[0] & 0x7FFF) > 0x7C00 && (hn[1] & 0x7FFF) > 0x7C00)
    }

    func testLargeUnalignedCount() {
        // Exercise vector loop + tail on unaligned (odd element offset) pointers.
        for type in [DataType.float32, .bfloat16, .float16, .int8, .float64] {
            for op in ReduceOp.allCases {
                check(type, op, 257, .dstIsA, seed: 99)
            }
        }
    }
}
