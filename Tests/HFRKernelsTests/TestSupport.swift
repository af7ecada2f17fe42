import HFRKernels

/// Deterministic SplitMix64 so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Independent bfloat16 rounding used as the reference: pick the nearer of the two neighbouring
/// bfloat16 values by exact distance in Double, ties to the even one. Not the kernel's formula.
func referenceBfloat16(_ f: Float) -> UInt16 {
    if f.isNaN { return 0x7FC0 }
    let u = f.bitPattern
    let sign = u & 0x8000_0000
    let mag = u & 0x7FFF_FFFF
    let lo = mag & 0xFFFF_0000
    if lo == mag { return UInt16(u >> 16) }
    let hi = lo + 0x1_0000
    func value(_ bits: UInt32) -> Double {
        bits == 0x7F80_0000 ? 0x1p128 : Double(Float(bitPattern: bits))
    }
    let x = Double(Float(bitPattern: mag))
    let dLo = x - value(lo), dHi = value(hi) - x
    let chosen: UInt32
    if dLo < dHi { chosen = lo } else if dHi < dLo { chosen = hi } else { chosen = ((lo >> 16) & 1) == 0 ? lo : hi }
    return UInt16((sign | chosen) >> 16)
}

func referenceBfloat16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

/// Reference float16 conversions: Swift's own `Float16` type (compiler-rt conversions).
func referenceFloat16ToFloat(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }
func referenceFloat16(_ f: Float) -> UInt16 { Float16(f).bitPattern }

/// Per-element bit pattern of a buffer, zero-extended.
func elementBits(_ p: UnsafeRawPointer, _ i: Int, _ type: DataType) -> UInt64 {
    switch type.size {
    case 1: return UInt64(p.load(fromByteOffset: i, as: UInt8.self))
    case 2: return UInt64(p.load(fromByteOffset: 2 * i, as: UInt16.self))
    case 4: return UInt64(p.load(fromByteOffset: 4 * i, as: UInt32.self))
    default: return p.load(fromByteOffset: 8 * i, as: UInt64.self)
    }
}

func storeBits(_ p: UnsafeMutableRawPointer, _ i: Int, _ type: DataType, _ v: UInt64) {
    switch type.size {
    case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
    case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: 2 * i, as: UInt16.self)
    case 4: p.storeBytes(of: UInt32(truncatingIfNeeded: v), toByteOffset: 4 * i, as: UInt32.self)
    default: p.storeBytes(of: v, toByteOffset: 8 * i, as: UInt64.self)
    }
}

func isNaNBits(_ v: UInt64, _ type: DataType) -> Bool {
    switch type {
    case .float16: return (v & 0x7FFF) > 0x7C00
    case .bfloat16: return (v & 0x7FFF) > 0x7F80
    case .float32: return (v & 0x7FFF_FFFF) > 0x7F80_0000
    case .float64: return (v & 0x7FFF_FFFF_FFFF_FFFF) > 0x7FF0_0000_0000_0000
    default: return false
    }
}

func isZeroBits(_ v: UInt64, _ type: DataType) -> Bool {
    guard type.isFloatingPoint else { return v == 0 }
    let signBit: UInt64 = 1 << UInt64(type.size * 8 - 1)
    return v & ~signBit == 0
}

/// Reference float op in the reference type; max/min propagate NaN.
func refFloatOp<T: BinaryFloatingPoint>(_ a: T, _ b: T, _ op: ReduceOp) -> T {
    switch op {
    case .sum, .avg: return a + b
    case .prod: return a * b
    case .max: return (a.isNaN || b.isNaN) ? .nan : Swift.max(a, b)
    case .min: return (a.isNaN || b.isNaN) ? .nan : Swift.min(a, b)
    }
}

func refIntOp<T: FixedWidthInteger>(_ a: T, _ b: T, _ op: ReduceOp) -> T {
    switch op {
    case .sum, .avg: return a &+ b
    case .prod: return a &* b
    case .max: return Swift.max(a, b)
    case .min: return Swift.min(a, b)
    }
}

/// The expected result bit pattern of `op(a, b)` for one element, computed per element in Swift.
func referenceCombine(_ a: UInt64, _ b: UInt64, _ type: DataType, _ op: ReduceOp) -> UInt64 {
    func t8(_ v: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: v) }
    func t16(_ v: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: v) }
    func t32(_ v: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: v) }
    switch type {
    case .int8: return UInt64(UInt8(bitPattern: refIntOp(Int8(bitPattern: t8(a)), Int8(bitPattern: t8(b)), op)))
    case .uint8: return UInt64(refIntOp(t8(a), t8(b), op))
    case .int32: return UInt64(UInt32(bitPattern: refIntOp(Int32(bitPattern: t32(a)), Int32(bitPattern: t32(b)), op)))
    case .uint32: return UInt64(refIntOp(t32(a), t32(b), op))
    case .int64: return UInt64(bitPattern: refIntOp(Int64(bitPattern: a), Int64(bitPattern: b), op))
    case .uint64: return refIntOp(a, b, op)
    case .float32: return UInt64(refFloatOp(Float(bitPattern: t32(a)), Float(bitPattern: t32(b)), op).bitPattern)
    case .float64: return refFloatOp(Double(bitPattern: a), Double(bitPattern: b), op).bitPattern
    case .float16:
        let r = refFloatOp(referenceFloat16ToFloat(t16(a)), referenceFloat16ToFloat(t16(b)), op)
        return UInt64(referenceFloat16(r))
    case .bfloat16:
        let r = refFloatOp(referenceBfloat16ToFloat(t16(a)), referenceBfloat16ToFloat(t16(b)), op)
        return UInt64(referenceBfloat16(r))
    }
}

/// Interesting bit patterns per type: extremes, zeros, infinities, NaNs, subnormals.
func specialValues(_ type: DataType) -> [UInt64] {
    switch type {
    case .int8, .uint8: return [0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x81]
    case .int32, .uint32: return [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFF9, 0x4000_0001]
    case .int64, .uint64: return [0, 1, UInt64(Int64.max), UInt64(bitPattern: Int64.min), UInt64.max, 0xFFFF_FFFF_FFFF_FFF9]
    case .float16:
        return [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D55, 0x0001, 0x8001, 0x03FF, 0x83FF,
                0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x3C01, 0x0200]
    case .bfloat16:
        return [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x0001, 0x8001, 0x007F, 0x0080,
                0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x3F81]
    case .float32:
        return [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x0000_0001,
                0x8000_0001, 0x007F_FFFF, 0x0080_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x3F80_0000]
    case .float64:
        return [0, 0x8000_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0000,
                0x7FF0_0000_0000_0001, 0x0000_0000_0000_0001, 0x000F_FFFF_FFFF_FFFF, 0x7FEF_FFFF_FFFF_FFFF,
                0xFFEF_FFFF_FFFF_FFFF, 0x3FF0_0000_0000_0000]
    }
}

/// A random element: a special value, a raw random bit pattern, or a moderate signed number.
func randomElement(_ type: DataType, _ rng: inout SplitMix64) -> UInt64 {
    let kind = rng.next() % 8
    let specials = specialValues(type)
    if kind == 0 { return specials[Int(rng.next() % UInt64(specials.count))] }
    if kind <= 2 { return rng.next() }           // full-range bits: overflow, NaNs, subnormals...
    let x = Double(Int64(bitPattern: rng.next()) % 2_000_001) / 1000.0     // -2000 ... 2000
    switch type {
    case .int8, .uint8, .int32, .uint32, .int64, .uint64:
        return UInt64(bitPattern: Int64(x * (kind == 3 ? 1e6 : 0.1)))
    case .float16: return UInt64(referenceFloat16(Float(x * (kind == 3 ? 1e-7 : 1))))
    case .bfloat16: return UInt64(referenceBfloat16(Float(x * (kind == 3 ? 1e-40 : 1))))
    case .float32: return UInt64(Float(x * (kind == 3 ? 1e-41 : 1)).bitPattern)
    case .float64: return (x * (kind == 3 ? 0x1p-1030 : 1)).bitPattern
    }
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
