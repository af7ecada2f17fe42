import Glibc
import CHFRShims

/// A non-blocking `eventfd(2)` used to wake a thread sleeping in `epoll_wait`.
public final class EventFD {
    public let fd: Int32
    public init() throws {
        fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if fd < 0 { throw SystemCallError("eventfd") }
    }
    deinit { close(fd) }

    /// Adds one to the counter, waking the reader (`write(2)` of 8 bytes).
    @inline(__always) public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }

    /// Resets the counter (`read(2)` of 8 bytes); returns false if it was zero.
    @discardableResult @inline(__always) public func drain() -> Bool {
        var value: UInt64 = 0
        return withUnsafeMutableBytes(of: &value) { read(fd, $0.baseAddress, 8) } == 8
    }
}
