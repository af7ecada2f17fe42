/// Element-wise reduction kernels over raw buffers, dispatched on `DataType` and `ReduceOp`.
///
/// Semantics, for every entry point:
/// - Integer `sum` and `prod` wrap on overflow (two's complement, `&+` / `&*`).
/// - `float16` and `bfloat16` elements are widened to `Float`, combined in `Float`, and rounded
///   back to nearest-even (NaN stays a quiet NaN, infinity stays infinity, overflow rounds to
///   infinity).
/// - `max` / `min` on floating-point types propagate NaN: if either input element is NaN the
///   result element is NaN. Otherwise they are the usual maximum / minimum; for `-0.0` vs `+0.0`
///   either zero may be returned.
/// - `avg` combines as `sum`; call `finishAverage(_:count:type:ranks:)` once at the end.
/// - `count == 0` does nothing.
///
/// Buffers need only the alignment of their element type. The loops are specialized per type and
/// operation and auto-vectorized; they allocate nothing. float16 and bfloat16 go through blocks of
/// `Float` scratch on the stack, converted by run-time-selected SIMD code (see `HalfBlocks.swift`).
public enum ReductionKernels {
    /// `dst[i] = op(a[i], b[i])` for `i in 0..<count`, elements of type `type`.
    ///
    /// `dst` may be exactly `a` or exactly `b` (in place) but must not otherwise overlap either.
    /// `avg` combines as `sum`.
    public static func combine(_ dst: UnsafeMutableRawPointer, _ a: UnsafeRawPointer, _ b: UnsafeRawPointer,
                               count: Int, type: DataType, op: ReduceOp) {
        precondition(count >= 0, "negative element count")
        if count == 0 { return }
        switch type {
        case .int8: integerCombine(dst, a, b, count, op, Int8.self)
        case .uint8: integerCombine(dst, a, b, count, op, UInt8.self)
        case .int32: integerCombine(dst, a, b, count, op, Int32.self)
        case .uint32: integerCombine(dst, a, b, count, op, UInt32.self)
        case .int64: integerCombine(dst, a, b, count, op, Int64.self)
        case .uint64: integerCombine(dst, a, b, count, op, UInt64.self)
        case .float32: floatCombine(dst, a, b, count, op, Float.self)
        case .float64: floatCombine(dst, a, b, count, op, Double.self)
        case .float16: float16Combine(dst, a, b, count, op)
        case .bfloat16: bfloat16Combine(dst, a, b, count, op)
        }
    }

    /// `dst[i] = op(dst[i], src[i])` for `i in 0..<count`: `combine(dst, dst, src, ...)`.
    /// `src` must not overlap `dst` unless it is exactly `dst`.
    @inlinable
    public static func reduce(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer,
                              count: Int, type: DataType, op: ReduceOp) {
        combine(dst, UnsafeRawPointer(dst), src, count: count, type: type, op: op)
    }

    // MARK: - Per-type loops

    @inline(__always)
    static func integerCombine<T: FixedWidthInteger>(_ dst: UnsafeMutableRawPointer, _ a: UnsafeRawPointer,
                                                     _ b: UnsafeRawPointer, _ n: Int, _ op: ReduceOp,
                                                     _: T.Type) {
        let d = dst.assumingMemoryBound(to: T.self)
        let x = a.assumingMemoryBound(to: T.self)
        let y = b.assumingMemoryBound(to: T.self)
        switch op {
        case .sum, .avg: zipElements(d, x, y, n) { $0 &+ $1 }
        case .prod: zipElements(d, x, y, n) { $0 &* $1 }
        case .max: zipElements(d, x, y, n) { $0 > $1 ? $0 : $1 }
        case .min: zipElements(d, x, y, n) { $0 < $1 ? $0 : $1 }
        }
    }

    @inline(__always)
    static func floatCombine<T: BinaryFloatingPoint>(_ dst: UnsafeMutableRawPointer, _ a: UnsafeRawPointer,
                                                     _ b: UnsafeRawPointer, _ n: Int, _ op: ReduceOp,
                                                     _: T.Type) {
        let d = dst.assumingMemoryBound(to: T.self)
        let x = a.assumingMemoryBound(to: T.self)
        let y = b.assumingMemoryBound(to: T.self)
        switch op {
        case .sum, .avg: zipElements(d, x, y, n) { $0 + $1 }
        case .prod: zipElements(d, x, y, n) { $0 * $1 }
        case .max: zipElements(d, x, y, n) { nanMax($0, $1) }
        case .min: zipElements(d, x, y, n) { nanMin($0, $1) }
        }
    }

    static func bfloat16Combine(_ dst: UnsafeMutableRawPointer, _ a: UnsafeRawPointer,
                                _ b: UnsafeRawPointer, _ n: Int, _ op: ReduceOp) {
        halfCombine(.bfloat16, dst, a, b, n, op)
    }

    static func float16Combine(_ dst: UnsafeMutableRawPointer, _ a: UnsafeRawPointer,
                               _ b: UnsafeRawPointer, _ n: Int, _ op: ReduceOp) {
        halfCombine(.float16, dst, a, b, n, op)
    }
}
