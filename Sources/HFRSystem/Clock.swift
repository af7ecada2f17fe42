import Glibc

/// Monotonic time (`clock_gettime(CLOCK_MONOTONIC)`), in nanoseconds.
public enum MonotonicClock {
    @inline(__always) public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
    @inline(__always) public static func seconds() -> Double {
        Double(nanoseconds()) / 1e9
    }
}
