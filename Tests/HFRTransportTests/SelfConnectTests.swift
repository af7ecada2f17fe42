import XCTest
import Glibc
import HFRSystem

/// A dial to a port of this host on which nothing listens yet can connect the socket to itself
/// (TCP simultaneous open) and so take the port from the rank about to listen there.
final class SelfConnectTests: XCTestCase {
    /// Bound to a port and connected to that same port: a socket connected to itself, made on
    /// purpose (what the kernel does by chance when it picks the dialed port as the source).
    func testSocketConnectedToItselfIsRecognized() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var sa = SocketAddress(ip: 0x7F00_0001, port: 0).sockaddr
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        XCTAssertTrue(bound, "bind: errno \(errno)")
        let me = SocketAddress(sa)
        let connected = withUnsafePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw XCTSkip("skipped: this kernel refused the simultaneous open to itself (errno \(errno))") }
        XCTAssertTrue(try TCPSocket.isConnectedToItself(fd, me))
    }

    /// An ordinary connection to a listener is not taken for one.
    func testConnectionToAListenerIsNotItself() throws {
        let (listener, address) = try TCPSocket.listen(on: SocketAddress(ip: 0x7F00_0001, port: 0))
        defer { close(listener) }
        let fd = try TCPSocket.connect(to: address, deadline: MonotonicClock.nanoseconds() + 5_000_000_000)
        defer { close(fd) }
        XCTAssertFalse(try TCPSocket.isConnectedToItself(fd, address))
    }
}
