import XCTest
import HFRKernels

final class FinishAverageTests: XCTestCase {
    func average<T>(_ values: [T], _ type: DataType, ranks: Int) -> [T] {
        var v = values
        v.withUnsafeMutableBytes { ReductionKernels.finishAverage($0.baseAddress!, count: values.count, type: type, ranks: ranks) }
        return v
    }

    func testSignedTruncatesTowardZero() {
        XCTAssertEqual(average([Int32(-7), 7, -1, 1, Int32.min, Int32.max], .int32, ranks: 2), [-3, 3, 0, 0, -1_073_741_824, 1_073_741_823])
        XCTAssertEqual(average([Int8(-7), 7, -128, 127], .int8, ranks: 2), [-3, 3, -64, 63])
        XCTAssertEqual(average([Int64(-7), Int64.min], .int64, ranks: 2), [-3, Int64.min / 2])
        XCTAssertEqual(average([Int8(-128), 127, -127], .int8, ranks: 128), [-1, 0, 0])
        XCTAssertEqual(average([Int8(-128), 127], .int8, ranks: 1000), [0, 0])
        XCTAssertEqual(average([UInt8(255), 7], .uint8, ranks: 2), [127, 3])
        XCTAssertEqual(average([UInt8(255)], .uint8, ranks: 300), [0])
        XCTAssertEqual(average([UInt32.max], .uint32, ranks: 3), [UInt32.max / 3])
        XCTAssertEqual(average([UInt64.max, 10], .uint64, ranks: 3), [UInt64.max / 3, 3])
        XCTAssertEqual(average([Int32(-9)], .int32, ranks: 1), [-9])
        XCTAssertEqual(average([Int32](), .int32, ranks: 4), [])
    }

    func testFloats() {
        XCTAssertEqual(average([Float(7), -7, 1, .infinity, -0.0], .float32, ranks: 2), [3.5, -3.5, 0.5, .infinity, -0.0])
        XCTAssertEqual(average([1.0, -7], .float64, ranks: 3), [1.0 / 3, -7.0 / 3])
        XCTAssertTrue(average([Float.nan], .float32, ranks: 2)[0].isNaN)
        // float16: 1/3 computed in float32 then rounded: 0x3555; 0x0001 / 2 is a tie -> 0.
        XCTAssertEqual(average([UInt16(0x3C00), 0x0001, 0x0003, 0xC700], .float16, ranks: 3)[0], 0x3555)
        XCTAssertEqual(average([UInt16(0x0001), 0x0003, 0xC700], .float16, ranks: 2), [0x0000, 0x0002, 0xC300])
        XCTAssertEqual(average([UInt16(0x3F80), 0xC0E0, 0x0001], .bfloat16, ranks: 2), [0x3F00, 0xC060, 0x0000])
        XCTAssertEqual(average([UInt16(0x3F80)], .bfloat16, ranks: 3), [0x3EAB])
    }

    /// Every type, random data including negatives, against a per-element reference.
    func testEveryTypeRandom() {
        var rng = SplitMix64(seed: 7)
        for type in DataType.allCases {
            for ranks in [2, 3, 7, 8, 129, 1 << 20] {
                for count in [0, 1, 7, 31, 1000] {
                    let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * type.size, alignment: 16)
                    defer { p.deallocate() }
                    var input: [UInt64] = []
                    for i in 0..<count { let v = randomElement(type, &rng); input.append(v); storeBits(p, i, type, v) }
                    ReductionKernels.finishAverage(p, count: count, type: type, ranks: ranks)
                    for i in 0..<count {
                        let want = referenceAverage(input[i], type, ranks)
                        let got = elementBits(p, i, type)
                        if got != want && !(isNaNBits(got, type) && isNaNBits(want, type)) {
                            XCTFail("\(type) \(hex(input[i])) / \(ranks) = \(hex(got)), want \(hex(want))")
                            return
                        }
                    }
                }
            }
        }
    }

    func referenceAverage(_ v: UInt64, _ type: DataType, _ ranks: Int) -> UInt64 {
        let r = Int64(ranks)
        switch type {
        case .int8: return UInt64(UInt8(truncatingIfNeeded: Int64(Int8(truncatingIfNeeded: v)) / r))
        case .uint8: return UInt64(UInt8(truncatingIfNeeded: v)) / UInt64(r)
        case .int32: return UInt64(UInt32(truncatingIfNeeded: Int64(Int32(truncatingIfNeeded: v)) / r))
        case .uint32: return UInt64(UInt32(truncatingIfNeeded: v)) / UInt64(r)
        case .int64: return UInt64(bitPattern: Int64(bitPattern: v) / r)
        case .uint64: return v / UInt64(r)
        case .float32: return UInt64((Float(bitPattern: UInt32(truncatingIfNeeded: v)) / Float(ranks)).bitPattern)
        case .float64: return (Double(bitPattern: v) / Double(ranks)).bitPattern
        case .float16: return UInt64(referenceFloat16(referenceFloat16ToFloat(UInt16(truncatingIfNeeded: v)) / Float(ranks)))
        case .bfloat16: return UInt64(referenceBfloat16(referenceBfloat16ToFloat(UInt16(truncatingIfNeeded: v)) / Float(ranks)))
        }
    }
}
