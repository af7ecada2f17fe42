import CHFRKernels

/// Copies into a collective's output: its own block of an all-to-all or allgather, the root's
/// copy of a broadcast. The collective does not read that memory again (but for the scaling of
/// an average on one rank), so a large copy goes with non-temporal stores, which skip reading
/// each destination line before writing it and leave the caches to the data still in flight.
public enum StreamingCopy {
    /// Copies `bytes` from `src` to `dst`: with non-temporal stores (`hfr_copy_streaming`) when
    /// `bytes` is at least `threshold` (0: never) and the ranges do not overlap, else `memmove`.
    @inline(__always)
    public static func copy(_ dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, bytes: Int, threshold: Int) {
        let d = UInt(bitPattern: dst), s = UInt(bitPattern: src), n = UInt(bytes)
        if threshold > 0 && bytes >= threshold && (d >= s &+ n || s >= d &+ n) {
            hfr_copy_streaming(dst, src, bytes)
        } else {
            dst.copyMemory(from: src, byteCount: bytes)
        }
    }
}
