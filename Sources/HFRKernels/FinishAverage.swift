extension ReductionKernels {
    /// Turns the sums left by an `avg` reduction into averages: `dst[i] = dst[i] / ranks`.
    ///
    /// Floating-point types divide in their own arithmetic (`float16` and `bfloat16` in `Float`,
    /// rounded to nearest-even). Integer types divide the (wrapped) sum by `ranks` truncating
    /// toward zero, like Swift's `/`; signed types divide as signed, so `-7 / 2 == -3`.
    /// `ranks` must be at least 1; `count == 0` does nothing.
    public static func finishAverage(_ dst: UnsafeMutableRawPointer, count: Int, type: DataType, ranks: Int) {
        precondition(count >= 0, "negative element count")
        precondition(ranks >= 1, "ranks must be at least 1")
        if count == 0 || ranks == 1 { return }
        switch type {
        case .int8: integerAverage(dst, count, ranks, Int8.self)
        case .uint8: integerAverage(dst, count, ranks, UInt8.self)
        case .int32: integerAverage(dst, count, ranks, Int32.self)
        case .uint32: integerAverage(dst, count, ranks, UInt32.self)
        case .int64: integerAverage(dst, count, ranks, Int64.self)
        case .uint64: integerAverage(dst, count, ranks, UInt64.self)
        case .float32:
            let r = Float(ranks)
            mapElementsInPlace(dst.assumingMemoryBound(to: Float.self), count) { $0 / r }
        case .float64:
            let r = Double(ranks)
            mapElementsInPlace(dst.assumingMemoryBound(to: Double.self), count) { $0 / r }
        case .float16:
            let r = Float(ranks)
            divideHalfInPlace(.float16, dst, count, r)
        case .bfloat16:
            let r = Float(ranks)
            divideHalfInPlace(.bfloat16, dst, count, r)
        }
    }

    @inline(__always)
    static func integerAverage<T: FixedWidthInteger>(_ dst: UnsafeMutableRawPointer, _ n: Int, _ ranks: Int,
                                                     _: T.Type) {
        let d = dst.assumingMemoryBound(to: T.self)
        guard let r = T(exactly: ranks) else {
            // Only 8- and 32-bit types get here (any positive Int fits in Int64 and UInt64): divide
            // in Int64, where the exact quotient always fits back (e.g. Int8 -128 / 128 == -1).
            let r64 = Int64(ranks)
            mapElementsInPlace(d, n) { T(truncatingIfNeeded: Int64($0) / r64) }
            return
        }
        mapElementsInPlace(d, n) { $0 / r }
    }
}
