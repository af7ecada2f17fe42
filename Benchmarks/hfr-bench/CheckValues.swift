import HFReduce

/// One period of the check data: element `i` of rank `rank`'s input is `fill[i % period]` and
/// element `i` of the correct result is `expected[i % period]`. Both hold raw element bits in the
/// low `type.size` bytes.
///
/// Values are chosen per (type, op) so that the exact result is representable in the type and
/// does not depend on the order in which the ranks' contributions are combined:
/// - integer types: sum, prod and avg wrap (two's complement), which is exact in any order, so
///   the expected value is computed with the same wrapping arithmetic in `Int64` and truncated;
///   avg divides the wrapped sum by n, truncating toward zero (signed types as signed);
///   max/min compare in the type's own order.
/// - floating-point types: small integers (and quarters for max/min) whose every partial sum
///   stays below 2^(significand bits), so that every addition is exact: 256 for bfloat16, 2048 for
///   float16, 2^24 for float, 2^53 for double. prod multiplies ±1 and 2, exact up to overflow,
///   which then is ±infinity in any order. avg uses per-rank offsets that sum to zero around a
///   common value, so the sum is n times that value and the average is exact.
struct CheckPattern {
    let period: Int
    let fill: [UInt64]
    let expected: [UInt64]
}

enum CheckValues {
    /// The general pattern's period: not a divisor of any power of two, so a chunk moved by a
    /// power-of-two number of elements shows up as wrong values.
    static let period = 420

    /// The peers contract's pattern period (`mpi_allreduce.c`'s PATTERN).
    static let peersPeriod = 13

    /// The pattern for `rank` of `ranks`. With `peers` and float32 sum it is the peers contract's:
    /// rank r contributes `r + 1 + (i mod 13)` and the result is `n(n+1)/2 + n(i mod 13)`.
    static func pattern(type: DataType, op: ReduceOp, rank: Int, ranks: Int, peers: Bool) -> CheckPattern {
        if peers && type == .float32 && op == .sum {
            let n = Double(ranks)
            let fill = (0..<peersPeriod).map { encodeFloat(Double(rank + 1 + $0), type) }
            let expected = (0..<peersPeriod).map { encodeFloat(n * (n + 1) / 2 + n * Double($0), type) }
            return CheckPattern(period: peersPeriod, fill: fill, expected: expected)
        }
        let fill = (0..<period).map { j in
            type.isFloatingPoint ? encodeFloat(floatValue(type, op, rank, ranks, j), type)
                                 : encodeInteger(integerValue(type, op, rank, j), type)
        }
        let expected = (0..<period).map { j in
            type.isFloatingPoint ? encodeFloat(floatExpected(type, op, ranks, j), type)
                                 : integerExpected(type, op, ranks, j)
        }
        return CheckPattern(period: period, fill: fill, expected: expected)
    }

    /// The raw bits of the value every element takes during in-place timed loops: a value that
    /// the reduction maps to itself (0 for sum, 1 for prod, the check data for max/min/avg, whose
    /// average is again a fixed point), so the data stays finite however many calls run.
    static func steadyInPlaceValue(type: DataType, op: ReduceOp) -> UInt64? {
        switch op {
        case .sum: return 0
        case .prod: return type.isFloatingPoint ? encodeFloat(1, type) : 1
        case .max, .min, .avg: return nil
        }
    }

    // MARK: - Integer types

    /// A multiplier that spreads the small values over the type's high bytes too.
    static func spread(_ type: DataType) -> Int64 {
        switch type.size {
        case 1: return 1
        case 4: return 0x1_0001
        default: return 0x1_0000_0001
        }
    }

    static func isSigned(_ type: DataType) -> Bool {
        type == .int8 || type == .int32 || type == .int64
    }

    /// Rank `r`'s element for pattern index `j`, before truncation to the type's width.
    static func integerValue(_ type: DataType, _ op: ReduceOp, _ r: Int, _ j: Int) -> Int64 {
        switch op {
        case .sum, .avg:
            let base = isSigned(type) ? Int64(r + 1) - 2 * Int64(j % 7) : Int64(r + 1) + Int64(j % 7)
            return base &* spread(type)
        case .prod:
            let factors: [Int64] = [1, 2, 1, 3, -1, 1, 2]
            return factors[(j + r) % factors.count]
        case .max, .min:
            return (Int64((r * 5 + j * 3) % 97) - 48) &* spread(type)
        }
    }

    /// The bits of the correct result for pattern index `j`.
    static func integerExpected(_ type: DataType, _ op: ReduceOp, _ n: Int, _ j: Int) -> UInt64 {
        let values = (0..<n).map { integerValue(type, op, $0, j) }
        switch op {
        case .sum:
            return encodeInteger(values.reduce(0, &+), type)
        case .prod:
            return encodeInteger(values.reduce(1, &*), type)
        case .avg:
            let sumBits = encodeInteger(values.reduce(0, &+), type)
            if isSigned(type) {
                return encodeInteger(signExtend(sumBits, type) / Int64(n), type)
            }
            return sumBits / UInt64(n)
        case .max, .min:
            let bits = values.map { encodeInteger($0, type) }
            if isSigned(type) {
                let typed = bits.map { signExtend($0, type) }
                return encodeInteger(op == .max ? typed.max()! : typed.min()!, type)
            }
            return op == .max ? bits.max()! : bits.min()!
        }
    }

    /// Truncates a two's-complement value to the type's width.
    static func encodeInteger(_ v: Int64, _ type: DataType) -> UInt64 {
        let bits = UInt64(bitPattern: v)
        return type.size == 8 ? bits : bits & ((1 << UInt64(type.size * 8)) - 1)
    }

    /// Reads `bits` of a signed type of `type.size` bytes as an `Int64`.
    static func signExtend(_ bits: UInt64, _ type: DataType) -> Int64 {
        let shift = UInt64(64 - type.size * 8)
        return Int64(bitPattern: bits << shift) >> Int64(shift)
    }

    // MARK: - Floating-point types

    /// The largest integer up to which every integer is exact in the type (2^(significand bits)).
    static func exactLimit(_ type: DataType) -> Double {
        switch type {
        case .bfloat16: return 256
        case .float16: return 2048
        case .float32: return 16_777_216
        default: return 9_007_199_254_740_992
        }
    }

    /// Rank `r`'s element for pattern index `j` (exactly representable in the type).
    static func floatValue(_ type: DataType, _ op: ReduceOp, _ r: Int, _ n: Int, _ j: Int) -> Double {
        let limit = exactLimit(type)
        let nd = Double(n), rd = Double(r), k = Double(j % 7)
        switch op {
        case .sum:
            // Every partial sum of positive values is at most the total.
            if nd * (nd + 1) / 2 + 6 * nd <= limit { return rd + 1 + k }
            return r == j % n ? 1 + k : 0
        case .avg:
            // Offsets 2r - (n-1) sum to zero: the total is n * (n + k), the average n + k.
            if nd * (nd + 6) <= limit { return nd + k + 2 * rd - (nd - 1) }
            if 7 * nd <= limit { return 1 + k }
            return nd <= limit ? 1 : 0
        case .prod:
            let factors: [Double] = [1, 2, 1, -1, 1, 2, -1]
            return factors[(j + r) % factors.count]
        case .max, .min:
            // |v| <= 48.75: 8 significant bits, exact even in bfloat16.
            return Double((r * 5 + j * 3) % 97 - 48) + 0.25 * Double(j % 4)
        }
    }

    /// The correct result for pattern index `j`.
    static func floatExpected(_ type: DataType, _ op: ReduceOp, _ n: Int, _ j: Int) -> Double {
        let values = (0..<n).map { floatValue(type, op, $0, n, j) }
        switch op {
        case .sum: return values.reduce(0, +)
        case .avg: return values.reduce(0, +) / Double(n)
        case .prod: return values.reduce(1, *)          // powers of two: exact in Double
        case .max: return values.max()!
        case .min: return values.min()!
        }
    }

    /// The bits of `v` in a floating-point type. Exact for the values used here; magnitudes past
    /// the type's largest finite value become infinity, as the reduction's rounding does.
    static func encodeFloat(_ v: Double, _ type: DataType) -> UInt64 {
        switch type {
        case .float64: return v.bitPattern
        case .float32: return UInt64(Float(v).bitPattern)
        case .bfloat16: return UInt64(Float(v).bitPattern >> 16)
        case .float16: return UInt64(float16Bits(v))
        default: preconditionFailure("not a floating-point type")
        }
    }

    /// IEEE binary16 bits of `v`, rounded to nearest even (own scalar converter, independent of
    /// the library's kernels).
    static func float16Bits(_ v: Double) -> UInt16 {
        let sign: UInt16 = v.sign == .minus ? 0x8000 : 0
        let a = Swift.abs(v)
        if a.isNaN { return 0x7E00 }
        if a == 0 { return sign }
        if a >= 65520 { return sign | 0x7C00 }
        let e = Int(a.exponent)
        if e < -14 {
            return sign | UInt16((a * 0x1p24).rounded(.toNearestOrEven))
        }
        var exponent = e
        var mantissa = ((a / Double(sign: .plus, exponent: e, significand: 1)) - 1) * 1024
        mantissa = mantissa.rounded(.toNearestOrEven)
        if mantissa == 1024 { mantissa = 0; exponent += 1 }
        return sign | UInt16(exponent + 15) << 10 | UInt16(mantissa)
    }
}

// MARK: - Buffer fill and check

/// Fills `count` elements of `size` bytes at `buf` with the repeating `pattern` of raw bits.
func fillPattern(_ buf: UnsafeMutableRawPointer, count: Int, size: Int, pattern: [UInt64]) {
    switch size {
    case 1: fillTyped(buf.assumingMemoryBound(to: UInt8.self), count, pattern)
    case 2: fillTyped(buf.assumingMemoryBound(to: UInt16.self), count, pattern)
    case 4: fillTyped(buf.assumingMemoryBound(to: UInt32.self), count, pattern)
    default: fillTyped(buf.assumingMemoryBound(to: UInt64.self), count, pattern)
    }
}

/// Sets `count` elements of `size` bytes at `buf` to the raw bits `value`.
func fillValue(_ buf: UnsafeMutableRawPointer, count: Int, size: Int, value: UInt64) {
    fillPattern(buf, count: count, size: size, pattern: [value])
}

/// The number of elements among `count` at `buf` whose bits differ from the repeating `pattern`.
func countWrong(_ buf: UnsafeRawPointer, count: Int, size: Int, pattern: [UInt64]) -> Int {
    switch size {
    case 1: return countTyped(buf.assumingMemoryBound(to: UInt8.self), count, pattern)
    case 2: return countTyped(buf.assumingMemoryBound(to: UInt16.self), count, pattern)
    case 4: return countTyped(buf.assumingMemoryBound(to: UInt32.self), count, pattern)
    default: return countTyped(buf.assumingMemoryBound(to: UInt64.self), count, pattern)
    }
}

private func fillTyped<T: FixedWidthInteger>(_ p: UnsafeMutablePointer<T>, _ count: Int, _ pattern: [UInt64]) {
    let pat = pattern.map { T(truncatingIfNeeded: $0) }
    pat.withUnsafeBufferPointer { q in
        let period = q.count
        var j = 0
        for i in 0..<count {
            p[i] = q[j]
            j += 1
            if j == period { j = 0 }
        }
    }
}

private func countTyped<T: FixedWidthInteger>(_ p: UnsafePointer<T>, _ count: Int, _ pattern: [UInt64]) -> Int {
    let pat = pattern.map { T(truncatingIfNeeded: $0) }
    return pat.withUnsafeBufferPointer { q in
        let period = q.count
        var j = 0
        var wrong = 0
        for i in 0..<count {
            if p[i] != q[j] { wrong += 1 }
            j += 1
            if j == period { j = 0 }
        }
        return wrong
    }
}
