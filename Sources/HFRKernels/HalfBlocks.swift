import CHFRKernels

/// The float16 / bfloat16 kernels: blocks of elements are widened to `Float` scratch on the stack
/// by the C target `CHFRKernels` (AVX-512, AVX2 + F16C or plain C, chosen at run time), combined by
/// the same vectorized `Float` loops as float32, and rounded back. The C conversions are
/// bit-for-bit `HalfConversions`, so the results are those of the per-element scalar formulas.
enum HalfFormat {
    case float16
    case bfloat16

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

/// Elements per block: two `Float` blocks of scratch (8 KiB) stay in L1 next to the streams.
let halfBlockElements = 1024

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
        let d = dst.assumingMemoryBound(to: UInt16.self)
        let x = a.assumingMemoryBound(to: UInt16.self)
        let y = b.assumingMemoryBound(to: UInt16.self)
        switch op {
        case .sum, .avg: zipHalfBlocks(format, d, x, y, n) { $0 + $1 }
        case .prod: zipHalfBlocks(format, d, x, y, n) { $0 * $1 }
        case .max: zipHalfBlocks(format, d, x, y, n) { nanMax($0, $1) }
        case .min: zipHalfBlocks(format, d, x, y, n) { nanMin($0, $1) }
        }
    }
}
