/// The element-wise loops every kernel is built from, and the per-element operations they apply.
///
/// Everything here is `@inline(__always)` so that each (type, op) pair in `ReductionKernels` gets
/// its own fully specialized loop with the closure inlined; the loops are plain indexed loops over
/// typed pointers that LLVM auto-vectorizes.

/// `d[i] = f(a[i], b[i])` for `i in 0..<n`, where `d` may be exactly `a` or exactly `b`.
///
/// The in-place cases get their own loops: with `d == a`, a three-pointer loop would fail LLVM's
/// runtime overlap check and fall back to scalar code, whereas `d[i] = f(d[i], b[i])` only has to
/// check `d` against `b`.
@inline(__always)
func zipElements<T, R>(_ d: UnsafeMutablePointer<R>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                       _ n: Int, _ f: (T, T) -> R) {
    let dRaw = UnsafeRawPointer(d)
    if dRaw == UnsafeRawPointer(a) {
        let d2 = UnsafeMutableRawPointer(d).assumingMemoryBound(to: T.self)
        for i in 0..<n { d[i] = f(d2[i], b[i]) }
    } else if dRaw == UnsafeRawPointer(b) {
        let d2 = UnsafeMutableRawPointer(d).assumingMemoryBound(to: T.self)
        for i in 0..<n { d[i] = f(a[i], d2[i]) }
    } else {
        for i in 0..<n { d[i] = f(a[i], b[i]) }
    }
}

/// `d[i] = f(d[i])` for `i in 0..<n`.
@inline(__always)
func mapElementsInPlace<T>(_ d: UnsafeMutablePointer<T>, _ n: Int, _ f: (T) -> T) {
    for i in 0..<n { d[i] = f(d[i]) }
}

/// Maximum that propagates NaN: if either operand is NaN the result is NaN. Written as a single
/// compare-and-select so that it vectorizes.
@inline(__always)
func nanMax<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> T {
    (a > b || a != a) ? a : b
}

/// Minimum that propagates NaN: if either operand is NaN the result is NaN.
@inline(__always)
func nanMin<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> T {
    (a < b || a != a) ? a : b
}
