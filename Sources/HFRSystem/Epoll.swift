import Glibc
import CHFRShims

/// An epoll instance (`epoll_create1(2)`). Registered file descriptors carry a 64-bit token
/// that comes back with each event, so the progress loop dispatches without a lookup table.
public final class Epoll {
    public let fd: Int32
    private var tokens = [UInt64](repeating: 0, count: 64)
    private var masks = [UInt32](repeating: 0, count: 64)

    public static let readable = UInt32(EPOLLIN.rawValue)
    public static let writable = UInt32(EPOLLOUT.rawValue)
    public static let error = UInt32(EPOLLERR.rawValue)
    public static let hangup = UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLRDHUP.rawValue)

    public init() throws {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if fd < 0 { throw SystemCallError("epoll_create1") }
    }
    deinit { close(fd) }

    /// `epoll_ctl(EPOLL_CTL_ADD)`.
    public func add(_ target: Int32, events: UInt32, token: UInt64) throws {
        if hfr_epoll_ctl(fd, EPOLL_CTL_ADD, target, events, token) != 0 { throw SystemCallError("epoll_ctl(ADD)") }
    }
    /// `epoll_ctl(EPOLL_CTL_MOD)`.
    public func modify(_ target: Int32, events: UInt32, token: UInt64) throws {
        if hfr_epoll_ctl(fd, EPOLL_CTL_MOD, target, events, token) != 0 { throw SystemCallError("epoll_ctl(MOD)") }
    }
    /// `epoll_ctl(EPOLL_CTL_DEL)`; errors are ignored (the fd may already be closed).
    public func remove(_ target: Int32) {
        _ = hfr_epoll_ctl(fd, EPOLL_CTL_DEL, target, 0, 0)
    }

    /// `epoll_wait(2)` for at most one event, discarded: sleeps until something is ready (or the
    /// timeout), for a thread that then takes the lock that guards dispatching. Safe to call
    /// while another thread runs `wait`.
    public func waitForReadiness(timeoutMilliseconds: Int32) {
        var token: UInt64 = 0
        var mask: UInt32 = 0
        _ = hfr_epoll_wait(fd, &token, &mask, 1, timeoutMilliseconds)
    }

    /// `epoll_wait(2)`: calls `body(token, events)` for each ready descriptor. Returns the count.
    @inline(__always)
    public func wait(timeoutMilliseconds: Int32, _ body: (UInt64, UInt32) -> Void) -> Int {
        let n = tokens.withUnsafeMutableBufferPointer { t in
            masks.withUnsafeMutableBufferPointer { m in
                hfr_epoll_wait(fd, t.baseAddress, m.baseAddress, 64, timeoutMilliseconds)
            }
        }
        if n <= 0 { return 0 }
        for i in 0..<Int(n) { body(tokens[i], masks[i]) }
        return Int(n)
    }
}
