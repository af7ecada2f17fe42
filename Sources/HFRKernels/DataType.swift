/// The element types a collective can carry. Raw values are those of the C API (`hfrDataType_t`),
/// which are NCCL's.
public enum DataType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case int8 = 0
    case uint8 = 1
    case int32 = 2
    case uint32 = 3
    case int64 = 4
    case uint64 = 5
    case float16 = 6
    case float32 = 7
    case float64 = 8
    case bfloat16 = 9

    /// Bytes per element.
    @inlinable public var size: Int {
        switch self {
        case .int8, .uint8: return 1
        case .float16, .bfloat16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64: return 8
        }
    }

    /// True for the floating-point types (float16, bfloat16, float32, float64).
    @inlinable public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64: return true
        default: return false
        }
    }

    /// The name nccl-tests prints (`float`, `half`, `bfloat16`, `int32`, ...).
    public var description: String {
        switch self {
        case .int8: return "int8"
        case .uint8: return "uint8"
        case .int32: return "int32"
        case .uint32: return "uint32"
        case .int64: return "int64"
        case .uint64: return "uint64"
        case .float16: return "half"
        case .float32: return "float"
        case .float64: return "double"
        case .bfloat16: return "bfloat16"
        }
    }

    /// Parses the names nccl-tests accepts, plus the C API's spellings (`float16`, `float32`, `float64`).
    public init?(name: String) {
        switch name.lowercased() {
        case "int8", "char": self = .int8
        case "uint8": self = .uint8
        case "int32", "int": self = .int32
        case "uint32": self = .uint32
        case "int64": self = .int64
        case "uint64": self = .uint64
        case "half", "float16", "fp16": self = .float16
        case "float", "float32", "fp32": self = .float32
        case "double", "float64", "fp64": self = .float64
        case "bfloat16", "bf16": self = .bfloat16
        default: return nil
        }
    }
}

/// Reduction operations. Raw values are those of the C API (`hfrRedOp_t`), which are NCCL's.
///
/// `avg` reduces as a sum and divides by the number of ranks at the end: in the element type's
/// own arithmetic for floating point (float16 and bfloat16 computed in float32 and rounded to
/// nearest-even), and for integer types as the wrapped sum divided by n, truncated toward zero.
/// The sum must fit the type: a float16 sum beyond 65504 is inf before the division.
public enum ReduceOp: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case sum = 0
    case prod = 1
    case max = 2
    case min = 3
    case avg = 4

    public var description: String {
        switch self {
        case .sum: return "sum"
        case .prod: return "prod"
        case .max: return "max"
        case .min: return "min"
        case .avg: return "avg"
        }
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "sum": self = .sum
        case "prod": self = .prod
        case "max": self = .max
        case "min": self = .min
        case "avg": self = .avg
        default: return nil
        }
    }
}
