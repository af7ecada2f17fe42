import Glibc
import CHFRShims

/// TCP socket calls, each a thin typed wrapper over the C call it names.
public enum TCPSocket {
    /// `socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC)`.
    public static func make() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemCallError("socket") }
        return fd
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)`.
    public static func setNonBlocking(_ fd: Int32) throws {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 { throw SystemCallError("fcntl(O_NONBLOCK)") }
    }

    /// `setsockopt(TCP_NODELAY)`, `SO_SNDBUF`/`SO_RCVBUF` (when `bufferBytes` > 0) and `SO_KEEPALIVE`.
    public static func configureForData(_ fd: Int32, bufferBytes: Int) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, 4)
        setBufferSizes(fd, bufferBytes)
    }

    /// `setsockopt(SO_SNDBUF)` and `setsockopt(SO_RCVBUF)` to `bytes`; nothing when `bytes` is 0.
    static func setBufferSizes(_ fd: Int32, _ bytes: Int) {
        guard bytes > 0 else { return }
        var b = Int32(clamping: bytes)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, 4)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, 4)
    }

    /// `bind(2)` + `listen(2)` on `address` (port 0 picks a free one); returns the fd and the bound address.
    ///
    /// `bufferBytes` > 0 sets `SO_SNDBUF`/`SO_RCVBUF` on the listening socket, before `listen`:
    /// accepted connections inherit them, and the window their handshake advertises follows
    /// them. Set only after `accept`, a smaller receive buffer shrinks the window below the
    /// segment size the dialer derived from the larger one, and the dialer waits for its persist
    /// timer (about 200 ms) each time the window fills.
    public static func listen(on address: SocketAddress, backlog: Int32 = 512, bufferBytes: Int = 0) throws -> (Int32, SocketAddress) {
        let fd = try make()
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        setBufferSizes(fd, bufferBytes)
        var sa = address.sockaddr
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { let e = SystemCallError("bind(\(address))"); close(fd); throw e }
        if Glibc.listen(fd, backlog) != 0 { let e = SystemCallError("listen(\(address))"); close(fd); throw e }
        return (fd, try localAddress(fd))
    }

    /// `bind(2)` to `address` before `connect(2)`, so that a connection leaves through the NIC
    /// that owns the address.
    public static func bind(_ fd: Int32, to address: SocketAddress) throws {
        var sa = address.sockaddr
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { throw SystemCallError("bind(\(address))") }
    }

    /// `getsockname(2)`.
    public static func localAddress(_ fd: Int32) throws -> SocketAddress {
        var sa = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        if rc != 0 { throw SystemCallError("getsockname") }
        return SocketAddress(sa)
    }

    /// `getpeername(2)`.
    public static func peerAddress(_ fd: Int32) -> SocketAddress? {
        var sa = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) } }
        return rc == 0 ? SocketAddress(sa) : nil
    }

    /// Non-blocking `connect(2)`: returns true when connected at once, false when in progress.
    public static func startConnect(_ fd: Int32, to address: SocketAddress) throws -> Bool {
        var sa = address.sockaddr
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc == 0 { return true }
        let e = Errno.current
        if e == .inProgress || e == .interrupted { return false }
        throw SystemCallError("connect(\(address))", e)
    }

    /// `getsockopt(SO_ERROR)`: the result of a non-blocking connect once the socket is writable.
    public static func pendingError(_ fd: Int32) -> Errno? {
        var err: Int32 = 0
        var len = socklen_t(4)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err == 0 ? nil : Errno(rawValue: err)
    }

    /// `accept4(2)` with SOCK_NONBLOCK | SOCK_CLOEXEC; nil when no connection is waiting, or
    /// when the one that was failed before it was taken (Linux reports a pending network error
    /// of the new connection from accept, to be treated like EAGAIN).
    public static func accept(_ listenFD: Int32) throws -> Int32? {
        let fd = hfr_accept(listenFD)
        if fd >= 0 { return fd }
        let e = Errno.current
        if e == .again || e == .interrupted { return nil }
        if [ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH].contains(e.rawValue) {
            return nil
        }
        throw SystemCallError("accept4", e)
    }

    /// Waits with `poll(2)` until `fd` has `events` or the monotonic deadline passes.
    public static func poll(_ fd: Int32, events: Int16, deadline: UInt64) throws {
        while true {
            let now = MonotonicClock.nanoseconds()
            if now >= deadline { throw SystemCallError("poll", Errno(rawValue: ETIMEDOUT)) }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(min(UInt64(Int32.max), (deadline - now + 999_999) / 1_000_000))
            let rc = Glibc.poll(&p, 1, ms)
            if rc > 0 { return }
            if rc < 0 && Errno.current != .interrupted { throw SystemCallError("poll") }
        }
    }

    /// Whether `fd`, connected to `address`, is connected to itself: dialing a port of this host on
    /// which nothing listens yet can pick that very port as the source (TCP simultaneous open),
    /// which then takes the port from the process about to listen on it. `connect(to:deadline:)`
    /// counts such a connection as refused.
    public static func isConnectedToItself(_ fd: Int32, _ address: SocketAddress) throws -> Bool {
        try localAddress(fd) == address
    }

    /// Connects a non-blocking socket to `address`, retrying refused and unreachable connections
    /// until `deadline` (the peer may not be listening, or up, yet). Returns a connected, non-blocking fd.
    public static func connect(to address: SocketAddress, deadline: UInt64) throws -> Int32 {
        var delay: UInt32 = 1000
        while true {
            let fd = try make()
            do {
                try setNonBlocking(fd)
                if try !startConnect(fd, to: address) {
                    try poll(fd, events: Int16(POLLOUT), deadline: deadline)
                    if let e = pendingError(fd) { throw SystemCallError("connect(\(address))", e) }
                }
                if try isConnectedToItself(fd, address) {
                    throw SystemCallError("connect(\(address)) reached itself", Errno(rawValue: ECONNREFUSED))
                }
                return fd
            } catch let error as SystemCallError {
                close(fd)
                // Not listening yet, or its host or network not up yet (a pod starting).
                let retry = [ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH].contains(error.errno.rawValue)
                    || error.errno.rawValue == ETIMEDOUT && error.call != "poll"
                if !retry || MonotonicClock.nanoseconds() + UInt64(delay) * 1000 >= deadline { throw error }
                usleep(delay)
                delay = min(delay * 2, 100_000)
            }
        }
    }

    /// Sends all of `buffer` on a non-blocking socket, waiting with poll until `deadline`.
    public static func sendAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, deadline: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = hfr_send2(fd, buffer.baseAddress! + done, buffer.count - done, nil, 0)
            if n > 0 { done += n; continue }
            let e = Errno.current
            if n < 0 && e != .again && e != .interrupted { throw SystemCallError("send", e) }
            try poll(fd, events: Int16(POLLOUT), deadline: deadline)
        }
    }

    /// Receives exactly `buffer.count` bytes, waiting with poll until `deadline`. EOF is an error (ECONNRESET).
    public static func receiveAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, deadline: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = hfr_recv(fd, buffer.baseAddress! + done, buffer.count - done)
            if n > 0 { done += n; continue }
            if n == 0 { throw SystemCallError("recv", Errno(rawValue: ECONNRESET)) }
            let e = Errno.current
            if e != .again && e != .interrupted { throw SystemCallError("recv", e) }
            try poll(fd, events: Int16(POLLIN), deadline: deadline)
        }
    }
}
