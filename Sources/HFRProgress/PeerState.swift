import HFRTransport
import HFRSystem

/// The progress thread's view of one peer: its sockets, and the sends waiting for room on them.
final class PeerState {
    enum Phase { case idle, connecting, connected, closed, failed }

    let rank: Int
    var phase: Phase = .idle
    var channels: [TCPChannel?]
    var writeInterest: [Bool]
    var attached = 0
    /// Control frames waiting for the connection.
    var pendingControl: [FrameHeader] = []
    /// Send steps (cookies) waiting to be cut into fragments, oldest first.
    var sendQueue: [UInt64] = []
    var sendHead = 0
    /// Clear-to-send frames for collectives this rank has not started yet.
    var earlyClears: [FrameHeader] = []
    var closeReason = ""
    /// Round-robin start for the channel choice, so equal queues share the load.
    var nextChannel = 0

    init(rank: Int, sockets: Int) {
        self.rank = rank
        channels = Array(repeating: nil, count: sockets)
        writeInterest = Array(repeating: false, count: sockets)
        sendQueue.reserveCapacity(256)
    }

    var hasQueuedSends: Bool { sendHead < sendQueue.count }
}

/// A connection that has not finished its handshake yet.
final class PendingConnection {
    enum Phase { case connecting, awaitingReply, awaitingHello }
    let id: Int
    let fd: Int32
    var phase: Phase
    let peer: Int      // for outgoing connections
    let socket: Int
    var buffer = [UInt8](repeating: 0, count: Handshake.size)
    var filled = 0
    let deadline: UInt64
    let remote: String

    init(id: Int, fd: Int32, phase: Phase, peer: Int, socket: Int, deadline: UInt64, remote: String) {
        self.id = id; self.fd = fd; self.phase = phase; self.peer = peer; self.socket = socket
        self.deadline = deadline; self.remote = remote
    }
}
