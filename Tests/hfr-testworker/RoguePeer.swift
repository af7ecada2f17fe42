import Glibc
import HFRBootstrap
import HFRCollectives
import HFRSystem
import HFRTransport

/// Rank 1 of a 2-rank job that joins with the right job token and communicator id, then sends
/// rank 0 frames no rank of the library sends, to check that rank 0 refuses each as a protocol
/// violation naming rank 1, instead of storing without end, overwriting, or hanging. Variants:
/// - `too-many-early`: clear-to-sends for 65 operations rank 0 has not started (a rank has at
///   most 64 started);
/// - `p2p-ready`: a ready-to-send for a send between two ranks (sent for collectives only);
/// - `eager-twice`: the same eager message of a future operation twice;
/// - `clear-twice`: the clear-to-send for rank 0's barrier message twice;
/// - `silent-connections`: 80 connections to rank 0's data port that never say who they are,
///   then the job's own: rank 0 drops the oldest silent ones and still takes rank 1's.
/// Rank 0 runs a barrier with HFR_NSOCKS=1 and reports how it failed.
func roguePeer(_ variant: String) throws {
    let env = try LaunchEnvironment.detect()
    let deadline = MonotonicClock.nanoseconds() + 20_000_000_000
    // Never dialed (rank 1 dials rank 0), but the rendezvous publishes a port.
    let (listener, bound) = try TCPSocket.listen(on: SocketAddress(ip: env.root.ip, port: 0))
    defer { close(listener) }
    let rv = try Rendezvous.run(rank: 1, size: 2, root: env.root, jobToken: env.jobToken,
                                listen: RankAddress(port: bound.port, nics: []), deadline: deadline)
    let address = SocketAddress(ip: rv.addresses[0].nics[0].ip, port: rv.addresses[0].port)
    var silent: [Int32] = []
    if variant == "silent-connections" {
        for _ in 0..<80 { silent.append(try TCPSocket.connect(to: address, deadline: deadline)) }
    }
    let fd = try TCPSocket.connect(to: address, deadline: deadline)
    let hello = Handshake(kind: .hello, jobToken: env.jobToken, commID: rv.commID, fromRank: 1, toRank: 0, ranks: 2)
    try hello.bytes.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) }
    var reply = [UInt8](repeating: 0, count: Handshake.size)
    try reply.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: deadline) }
    let accepted = try reply.withUnsafeBytes { raw throws(HandshakeError) in try Handshake.decode(raw) }
    guard accepted.kind == .accept else { print("FAIL: rank 0 answered the hello with \(accepted.kind)"); exit(1) }
    if variant == "silent-connections" {
        // The oldest silent connections were closed by rank 0.
        var closed = 0
        for s in silent {
            var byte: UInt8 = 0
            let n = recv(s, &byte, 1, Int32(MSG_DONTWAIT))
            if n == 0 || (n < 0 && Errno.current != .again) { closed += 1 }
            close(s)
        }
        print("rank 1: rank 0 closed \(closed) of \(silent.count) silent connections")
    }

    func send(_ h: FrameHeader, payload: Int = 0) throws {
        var bytes = [UInt8](repeating: 0, count: FrameHeader.size + payload)
        bytes.withUnsafeMutableBytes { h.encode(to: $0.baseAddress!) }
        try bytes.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) }
    }
    let barrier = BarrierSchedule.build(rank: 1, ranks: 2).signature
    switch variant {
    case "too-many-early":
        for s in 1...65 as ClosedRange<UInt32> { try send(FrameHeader(kind: .clearToSend, sequence: s, index: 0, offset: 4, length: 0, signature: 1)) }
    case "p2p-ready":
        try send(FrameHeader(kind: .readyToSend, sequence: 1 << 31, index: 0, offset: 1 << 20, length: 0, signature: 1))
    case "eager-twice":
        for _ in 0..<2 {
            var h = FrameHeader(kind: .data, sequence: 5, index: 0, offset: 0, length: 16, signature: 1)
            h.flags = FrameHeader.eagerFlag
            try send(h, payload: 16)
        }
    case "clear-twice":
        for _ in 0..<2 { try send(FrameHeader(kind: .clearToSend, sequence: 0, index: 0, offset: 1, length: 0, signature: barrier)) }
    case "silent-connections":
        // Rank 0's barrier message, so that it finishes: the connection works.
        try send(FrameHeader(kind: .clearToSend, sequence: 0, index: 0, offset: 1, length: 0, signature: barrier))
        var h = FrameHeader(kind: .data, sequence: 0, index: 0, offset: 0, length: 1, signature: barrier)
        h.flags = FrameHeader.eagerFlag
        try send(h, payload: 1)
    default:
        print("FAIL: no rogue variant \(variant)")
        exit(1)
    }
    // Until rank 0 closes the connection (it refused a frame) or its barrier is done.
    var sink = [UInt8](repeating: 0, count: 4096)
    while MonotonicClock.nanoseconds() < deadline {
        let n = sink.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
    }
    print("rank 1: rogue \(variant) done")
}
