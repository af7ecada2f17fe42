/// Scalar conversions between 16-bit floating-point bit patterns and `Float`.
///
/// These are the exact element conversions the reduction kernels use: branch-free integer and
/// float arithmetic (no table, no soft-float call), written so that the compiler can vectorize
/// loops that call them. All conversions to 16 bits round to nearest, ties to even, handle
/// subnormals exactly, overflow to ±infinity per IEEE 754, and turn every NaN into a quiet NaN
/// (sign and the top payload bits preserved).
public enum HalfConversions {
    /// Widens a bfloat16 bit pattern to `Float` (exact: bfloat16 is the top half of a float32).
    @inlinable @inline(__always)
    public static func bfloat16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(truncatingIfNeeded: bits) &<< 16)
    }

    /// Rounds a `Float` to the nearest bfloat16 (ties to even) and returns its bit pattern.
    /// NaN becomes a quiet NaN; values past the largest finite bfloat16 round to infinity.
    @inlinable @inline(__always)
    public static func floatToBfloat16(_ value: Float) -> UInt16 {
        let u = value.bitPattern
        let rounded = (u &+ 0x7FFF &+ ((u &>> 16) & 1)) &>> 16
        let quietNaN = (u &>> 16) | 0x0040
        let isNaN = (u & 0x7FFF_FFFF) > 0x7F80_0000
        return UInt16(truncatingIfNeeded: isNaN ? quietNaN : rounded)
    }

    /// Widens an IEEE binary16 bit pattern to `Float` (exact, including subnormals; NaN payload kept).
    @inlinable @inline(__always)
    public static func float16ToFloat(_ bits: UInt16) -> Float {
        // After M. Maratyszcza's FP16 library: rebias the exponent by +224 and scale by 2^-112 with a
        // float multiply, which keeps infinity and NaN (exponent 31 lands on 255) and needs no branch;
        // subnormal halves (em < 0x400) are em * 2^-24, computed exactly as (0.5 + em * 2^-24) - 0.5.
        let h = Int32(truncatingIfNeeded: UInt32(truncatingIfNeeded: bits))
        let em = h & 0x7FFF                              // exponent and mantissa
        let sign = UInt32(bitPattern: h & 0x8000) &<< 16
        let normal = (Float(bitPattern: UInt32(bitPattern: (em &<< 13) &+ 0x7000_0000)) * 0x1p-112).bitPattern
        let subnormal = (Float(bitPattern: UInt32(bitPattern: em | 0x3F00_0000)) - 0.5).bitPattern
        return Float(bitPattern: (em < 0x0400 ? subnormal : normal) | sign)
    }

    /// Rounds a `Float` to the nearest IEEE binary16 (ties to even) and returns its bit pattern.
    /// Produces subnormals and signed zeros exactly; |x| >= 65520 rounds to infinity; NaN
    /// becomes a quiet NaN (0x7E00 with the sign kept).
    @inlinable @inline(__always)
    public static func floatToFloat16(_ value: Float) -> UInt16 {
        // After M. Maratyszcza's FP16 library. Scaling |x| by 2^112 then 2^-110 overflows exactly
        // the values that must round to infinity. Adding 2^(max(e, -14) + 8)... i.e. a power of two
        // 11 bits above the half-precision ulp of x makes the float adder round the mantissa to
        // nearest-even at half precision (subnormals included); the half's exponent and mantissa
        // are then read from the sum's bits.
        let u = value.bitPattern
        let a = Int32(bitPattern: u & 0x7FFF_FFFF)
        let sign = (u &>> 16) & 0x8000
        let scaled = (Float(bitPattern: UInt32(bitPattern: a)) * 0x1p112) * 0x1p-110
        var bias = a & 0x7F80_0000
        bias = bias < 0x3880_0000 ? 0x3880_0000 : bias
        let sum = (Float(bitPattern: UInt32(bitPattern: bias &+ 0x0780_0000)) + scaled).bitPattern
        let nonsign = ((sum &>> 13) & 0x7C00) &+ (sum & 0x0FFF)
        let magnitude = a > 0x7F80_0000 ? UInt32(0x7E00) : nonsign
        return UInt16(truncatingIfNeeded: magnitude | sign)
    }
}
