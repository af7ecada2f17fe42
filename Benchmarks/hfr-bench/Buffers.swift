import Glibc

/// A 64-byte aligned buffer from `posix_memalign`, with every page touched at allocation so
/// that no page fault lands in a timed loop.
final class AlignedBuffer {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    /// Allocates at least `byteCount` bytes (rounded up to 64, at least 64) and zeroes them.
    init?(byteCount: Int) {
        let bytes = max(64, (byteCount + 63) & ~63)
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, 64, bytes) == 0, let p else { return nil }
        memset(p, 0, bytes)
        pointer = p
        self.byteCount = bytes
    }

    deinit { free(pointer) }
}

/// Monotonic wall-clock time in seconds (`clock_gettime(CLOCK_MONOTONIC)`).
@inline(__always)
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
