import HFReduce

/// Input values and exact expected results, computed with integer arithmetic independent of the
/// library's kernels. Every input is a small integer, so sums, products of ±1/2 and min/max are
/// exact in every type whatever the order of reduction.
enum Expected {
    /// The value rank `r` contributes at element `i`.
    static func input(rank r: Int, index i: Int, op: ReduceOp, type: DataType) -> Int {
        switch op {
        case .sum, .avg:
            return type.isSigned ? ((r * 7 + i * 3) % 5) - 2 : (r * 7 + i * 3) % 5
        case .prod:
            let pattern = type.isSigned ? [1, -1, 2, 1, 1, -1] : [1, 2, 1, 1, 3, 1]
            return pattern[(r + i) % pattern.count]
        case .max, .min:
            return type.isSigned ? ((r * 13 + i * 7) % 11) - 5 : (r * 13 + i * 7) % 11
        }
    }

    /// The exact result at element `i`, as a Double (integer types: the wrapped integer).
    static func result(ranks n: Int, index i: Int, op: ReduceOp, type: DataType) -> Double {
        let values = (0..<n).map { input(rank: $0, index: i, op: op, type: type) }
        switch op {
        case .sum: return Double(wrap(values.reduce(0, +), type))
        case .prod: return Double(wrap(values.reduce(1, *), type))
        case .max: return Double(values.max()!)
        case .min: return Double(values.min()!)
        case .avg:
            let s = values.reduce(0, +)
            if !type.isFloatingPoint { return Double(s / n) }  // Swift's / truncates toward zero
            switch type {
            case .float64: return Double(s) / Double(n)
            case .float32: return Double(Float(s) / Float(n))
            case .float16: return Double(Float(Float16(Float(s) / Float(n))))
            default: return Double(bf16Round(Float(s) / Float(n)))
            }
        }
    }

    /// Integer results wrap to the type's width, as the library documents.
    static func wrap(_ v: Int, _ t: DataType) -> Int {
        switch t {
        case .int8: return Int(Int8(truncatingIfNeeded: v))
        case .uint8: return Int(UInt8(truncatingIfNeeded: v))
        case .int32: return Int(Int32(truncatingIfNeeded: v))
        case .uint32: return Int(UInt32(truncatingIfNeeded: v))
        case .uint64: return Int(bitPattern: UInt(UInt64(truncatingIfNeeded: v)))
        default: return v
        }
    }

    /// Float to bfloat16 and back, rounding to nearest even (written here, not taken from the library).
    static func bf16Round(_ f: Float) -> Float {
        let u = f.bitPattern
        let rounded = (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000
        return Float(bitPattern: rounded)
    }

    static func store(_ v: Int, at p: UnsafeMutableRawPointer, _ i: Int, _ t: DataType) {
        switch t {
        case .int8: p.storeBytes(of: Int8(truncatingIfNeeded: v), toByteOffset: i, as: Int8.self)
        case .uint8: p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
        case .int32: p.storeBytes(of: Int32(v), toByteOffset: i * 4, as: Int32.self)
        case .uint32: p.storeBytes(of: UInt32(v), toByteOffset: i * 4, as: UInt32.self)
        case .int64: p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self)
        case .uint64: p.storeBytes(of: UInt64(v), toByteOffset: i * 8, as: UInt64.self)
        case .float16: p.storeBytes(of: Float16(Float(v)).bitPattern, toByteOffset: i * 2, as: UInt16.self)
        case .bfloat16: p.storeBytes(of: UInt16(Float(v).bitPattern >> 16), toByteOffset: i * 2, as: UInt16.self)
        case .float32: p.storeBytes(of: Float(v), toByteOffset: i * 4, as: Float.self)
        case .float64: p.storeBytes(of: Double(v), toByteOffset: i * 8, as: Double.self)
        }
    }

    static func load(_ p: UnsafeRawPointer, _ i: Int, _ t: DataType) -> Double {
        switch t {
        case .int8: return Double(p.load(fromByteOffset: i, as: Int8.self))
        case .uint8: return Double(p.load(fromByteOffset: i, as: UInt8.self))
        case .int32: return Double(p.load(fromByteOffset: i * 4, as: Int32.self))
        case .uint32: return Double(p.load(fromByteOffset: i * 4, as: UInt32.self))
        case .int64: return Double(p.load(fromByteOffset: i * 8, as: Int64.self))
        case .uint64: return Double(p.load(fromByteOffset: i * 8, as: UInt64.self))
        case .float16: return Double(Float(Float16(bitPattern: p.load(fromByteOffset: i * 2, as: UInt16.self))))
        case .bfloat16: return Double(Float(bitPattern: UInt32(p.load(fromByteOffset: i * 2, as: UInt16.self)) << 16))
        case .float32: return Double(p.load(fromByteOffset: i * 4, as: Float.self))
        case .float64: return p.load(fromByteOffset: i * 8, as: Double.self)
        }
    }
}

extension DataType {
    var isSigned: Bool {
        switch self {
        case .uint8, .uint32, .uint64: return false
        default: return true
        }
    }
}
