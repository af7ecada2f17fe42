import Glibc
import HFReduce
import HFRSystem
import HFRTransport

/// Connects to the rendezvous port with a handshake carrying the wrong job token and waits
/// until the root closes the connection.
func intrude() {
    guard let a = getenv("MASTER_ADDR"), let p = getenv("MASTER_PORT"), let port = UInt16(String(cString: p)) else { return }
    do {
        let root = try SocketAddress(host: String(cString: a), port: port)
        let deadline = MonotonicClock.nanoseconds() + 20_000_000_000
        let fd = try TCPSocket.connect(to: root, deadline: deadline)
        defer { close(fd) }
        let hello = Handshake(kind: .hello, jobToken: 0xBAD, commID: 0, fromRank: 1, toRank: 0, ranks: 99)
        try hello.bytes.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) }
        var byte = [UInt8](repeating: 0, count: 1)
        do {
            try byte.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: deadline) }
            print("FAIL: the root answered an intruder")
            exit(1)
        } catch let e as SystemCallError where e.errno.rawValue == ECONNRESET {
            print("intruder: rank 0 closed the connection")
        }
    } catch {
        print("FAIL: intruder: \(error)")
        exit(1)
    }
}

/// Opens `count` connections to the rendezvous port that never say anything, and keeps them
/// open (returned, never closed): the job must form anyway, well within its timeout.
func idleConnections(_ count: Int) -> [Int32] {
    guard let a = getenv("MASTER_ADDR"), let p = getenv("MASTER_PORT"), let port = UInt16(String(cString: p)),
          let root = try? SocketAddress(host: String(cString: a), port: port) else { return [] }
    let deadline = MonotonicClock.nanoseconds() + 20_000_000_000
    return (0..<count).compactMap { _ in try? TCPSocket.connect(to: root, deadline: deadline) }
}
