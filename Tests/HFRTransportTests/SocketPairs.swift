import XCTest
import Glibc

/// A connected pair of non-blocking Unix stream sockets, standing in for a TCP connection in the
/// channel tests (`socketpair(2)` + `fcntl(O_NONBLOCK)`).
func nonBlockingSocketPair(file: StaticString = #filePath, line: UInt = #line) -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0, "socketpair", file: file, line: line)
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return (fds[0], fds[1])
}
