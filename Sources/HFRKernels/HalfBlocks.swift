import CHFRKernels

/// The float16 / bfloat16 kernels.
///
/// With AVX-512 or AVX2 + F16C (detected at run time by the C target `CHFRKernels`), one fused C
/// pass widens, applies the operation in `Float` and rounds back. Otherwise, and for the elements the
/// fused pass leaves over, blocks of elements are widened to `Float` scratch on the stack by the C
/// conversions, combined by the same vectorized `Float` loops as float32, and rounded back. Both
/// are bit-for-bit `HalfConversions` around the `Float` operation.
enum HalfFormat: Int32 {
    case float16 = 0
    case bfloat16 = 1

    @inline(__always)
    func widen(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .float16: hfr_f16_to_f32(src, dst, n)
        case .bfloat16: hfr_bf16_to_f32(src, dst, n)
        }
    }

    @inline(__always)
    func narrow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) {
        switch self {
        case .float16: hfr_f32_to_f16(src, dst, n)
        case .bfloat16: hfr_f32_to_bf16(src, dst, n)
        }
    }
}

/// Elements per block of the generic path (two `Float` blocks of scratch, 2 KiB).
let halfBlockElements = 256

/// `d[i] = narrow(f(widen(a[i]), widen(b[i])))`; `d` may be exactly `a` or exactly `b`: each block
/// of both inputs is read before that block of `d` is written.
@inline(__always)
func zipHalfBlocks(_ format: HalfFormat, _ d: UnsafeMutablePointer<UInt16>, _ a: UnsafePointer<UInt16>,
                   _ b: UnsafePointer<UInt16>, _ n: Int, _ f: (Float, Float) -> Float) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * halfBlockElements) { scratch in
        let x = scratch.baseAddress!
        let y = x + halfBlockElements
        var i = 0
        while i < n {
            let m = min(halfBlockElements, n - i)
            format.widen(a + i, x, m)
            format.widen(b + i, y, m)
            zipElements(x, UnsafePointer(x), UnsafePointer(y), m, f)
            format.narrow(x, d + i, m)
            i += m
        }
    }
}

/// `d[i] = narrow(f(widen(d[i])))`.
@inline(__always)
func mapHalfBlocksInPlace(_ format: HalfFormat, _ d: UnsafeMutablePointer<UInt16>, _ n: Int,
                          _ f: (Float) -> Float) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: halfBlockElements) { scratch in
        let x = scratch.baseAddress!
        var i = 0
        while i < n {
            let m = min(halfBlockElements, n - i)
            format.widen(d + i, x, m)
            mapElementsInPlace(x, m, f)
            format.narrow(x, d + i, m)
            i += m
        }
    }
}

extension ReductionKernels {
    static func halfCombine(_ format: HalfFormat, _ dst: UnsafeMutableRawPointer, _ a: UnsafeRawPointer,
                            _ b: UnsafeRawPointer, _ n: Int, _ op: ReduceOp) {
        var d = dst.assumingMemoryBound(to: UInt16.self)
        var x = a.assumingMemoryBound(to: UInt16.self)
        var y = b.assumingMemoryBound(to: UInt16.self)
        let done = hfr_half_combine(format.rawValue, op.rawValue, d, x, y, n)
        if done == n { return }
        d += done; x += done; y += done
        let n = n - done
        switch op {
        case .sum, .avg: zipHalfBlocks(format, d, x, y, n) { $0 + $1 }
        case .prod: zipHalfBlocks(format, d, x, y, n) { $0 * $1 }
        case .max: zipHalfBlocks(format, d, x, y, n) { nanMax($0, $1) }
        case .min: zipHalfBlocks(format, d, x, y, n) { nanMin($0, $1) }
        }
    }
}

/// `d[i] = narrow(widen(d[i]) / ranks)` for finishAverage.
func divideHalfInPlace(_ format: HalfFormat, _ dst: UnsafeMutableRawPointer, _ n: Int, _ ranks: Float) {
    let d = dst.assumingMemoryBound(to: UInt16.self)
    let done = hfr_half_divide(format.rawValue, d, n, ranks)
    if done == n { return }
    mapHalfBlocksInPlace(format, d + done, n - done) { $0 / ranks }
}
