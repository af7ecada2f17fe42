import XCTest
import HFRKernels

final class HalfConversionsTests: XCTestCase {
    typealias H = HalfConversions

    func testFloat16AllBitPatterns() {
        for h in 0...0xFFFF {
            let bits = UInt16(h)
            let f = H.float16ToFloat(bits)
            let ref = referenceFloat16ToFloat(bits)
            let isNaN = (bits & 0x7FFF) > 0x7C00
            if isNaN {
                XCTAssertTrue(f.isNaN, "float16ToFloat(\(hex(UInt64(h)))) not NaN")
                let back = H.floatToFloat16(f)
                XCTAssertTrue((back & 0x7FFF) > 0x7C00 && back & 0x0200 != 0, "NaN \(hex(UInt64(h))) -> \(hex(UInt64(back))) not a quiet NaN")
                XCTAssertEqual(back & 0x8000, bits & 0x8000, "NaN sign")
            } else {
                XCTAssertEqual(f.bitPattern, ref.bitPattern, "float16ToFloat(\(hex(UInt64(h))))")
                XCTAssertEqual(H.floatToFloat16(f), bits, "round trip of \(hex(UInt64(h)))")
            }
        }
    }

    func testBfloat16AllBitPatterns() {
        for h in 0...0xFFFF {
            let bits = UInt16(h)
            let f = H.bfloat16ToFloat(bits)
            XCTAssertEqual(f.bitPattern, UInt32(bits) << 16)
            if (bits & 0x7FFF) > 0x7F80 {
                let back = H.floatToBfloat16(f)
                XCTAssertTrue((back & 0x7FFF) > 0x7F80 && back & 0x0040 != 0, "NaN \(hex(UInt64(h))) -> \(hex(UInt64(back)))")
                XCTAssertEqual(back & 0x8000, bits & 0x8000, "NaN sign")
            } else {
                XCTAssertEqual(H.floatToBfloat16(f), bits, "round trip of \(hex(UInt64(h)))")
            }
        }
    }

    /// Every float32 whose low 16 bits are one of the rounding-relevant patterns, for all upper
    /// halves: covers ties, just-below/above-tie, overflow to infinity and NaN payloads.
    func testFloatToBfloat16AgainstReference() {
        let lows: [UInt32] = [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x4000, 0xC000]
        for hi in UInt32(0)...0xFFFF {
            for lo in lows {
                let f = Float(bitPattern: hi << 16 | lo)
                let got = H.floatToBfloat16(f)
                if f.isNaN {
                    XCTAssertTrue((got & 0x7FFF) > 0x7F80 && got & 0x40 != 0)
                } else {
                    let want = referenceBfloat16(f)
                    if got != want { XCTFail("floatToBfloat16(\(hex(UInt64(f.bitPattern)))) = \(hex(UInt64(got))), want \(hex(UInt64(want)))"); return }
                }
            }
        }
    }

    /// float16 rounding against Swift's Float16(Float): for every float16 value and its neighbour,
    /// the midpoint, and points just around it; plus random floats across the whole range.
    func testFloatToFloat16AgainstReference() {
        func check(_ f: Float) -> Bool {
            let got = H.floatToFloat16(f)
            if f.isNaN { return (got & 0x7FFF) > 0x7C00 && got & 0x200 != 0 }
            let want = referenceFloat16(f)
            if got != want { XCTFail("floatToFloat16(\(f) \(hex(UInt64(f.bitPattern)))) = \(hex(UInt64(got))), want \(hex(UInt64(want)))") }
            return got == want
        }
        for h in 0..<0x7C00 {
            let lo = referenceFloat16ToFloat(UInt16(h))
            let hi: Float = h == 0x7BFF ? 65536 : referenceFloat16ToFloat(UInt16(h + 1))
            let mid = (lo + hi) / 2                     // exact in Float
            for f in [mid, mid.nextUp, mid.nextDown, lo.nextUp, hi.nextDown] {
                guard check(f), check(-f) else { return }
            }
        }
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300_000 {
            guard check(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) else { return }
        }
        for f: Float in [.infinity, -.infinity, .greatestFiniteMagnitude, 65519.99, 65520, 65536, 1e-8, 2.9802322e-8,
                         0x1p-25, 0x1.8p-24, 0x1p-14, 0x1.ff8p-15, .leastNonzeroMagnitude, 0, -0.0] {
            guard check(f) else { return }
        }
    }

    func testTieCasesExplicit() {
        // bfloat16: ties to even, just above a tie rounds up.
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x3F80_8000)), 0x3F80)
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0xBF80_8000)), 0xBF80)
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x7F7F_8000)), 0x7F80)      // ties up to inf
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x7F7F_7FFF)), 0x7F7F)
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x0000_8000)), 0x0000)      // subnormal tie
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x0001_8000)), 0x0002)
        XCTAssertEqual(H.floatToBfloat16(-0.0), 0x8000)
        XCTAssertEqual(H.floatToBfloat16(Float(bitPattern: 0x7F80_0001)) & 0x7FC0, 0x7FC0)  // sNaN -> qNaN
        // float16.
        XCTAssertEqual(H.floatToFloat16(1 + 0x1p-11), 0x3C00)
        XCTAssertEqual(H.floatToFloat16(1 + 0x1.8p-10), 0x3C02)
        XCTAssertEqual(H.floatToFloat16(1 + 0x1p-11 + 0x1p-20), 0x3C01)
        XCTAssertEqual(H.floatToFloat16(65519), 0x7BFF)
        XCTAssertEqual(H.floatToFloat16(65520), 0x7C00)
        XCTAssertEqual(H.floatToFloat16(-65520), 0xFC00)
        XCTAssertEqual(H.floatToFloat16(0x1p-25), 0x0000)                 // tie between 0 and min subnormal
        XCTAssertEqual(H.floatToFloat16(0x1.8p-24), 0x0002)               // 1.5 ulp -> 2
        XCTAssertEqual(H.floatToFloat16(0x1.0p-25 + 0x1p-40), 0x0001)
        XCTAssertEqual(H.floatToFloat16(0x1.ffcp-15), 0x0400)             // 1023.5 ulp ties up to min normal
        XCTAssertEqual(H.floatToFloat16(0x1.ff4p-15), 0x03FE)             // 1022.5 ulp ties down to 1022
        XCTAssertEqual(H.floatToFloat16(-0.0), 0x8000)
        XCTAssertEqual(H.floatToFloat16(.infinity), 0x7C00)
        XCTAssertEqual(H.floatToFloat16(Float(bitPattern: 0x7F80_0001)) & 0x7E00, 0x7E00)
        XCTAssertEqual(H.float16ToFloat(0x0001), 0x1p-24)
        XCTAssertEqual(H.float16ToFloat(0x7BFF), 65504)
        XCTAssertEqual(H.float16ToFloat(0xFC00), -.infinity)
        XCTAssertEqual(H.bfloat16ToFloat(0x3F80), 1)
    }
}
