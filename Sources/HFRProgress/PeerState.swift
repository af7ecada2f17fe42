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

    /// Eager sends this rank may still start to the peer before clear-to-sends return credit.
    var eagerCredits = 0
    /// Eager messages sent to the peer whose clear-to-send has not come back yet (sequence, index).
    var eagerUnacknowledged: [(UInt32, Int32)] = []
    /// Eager messages that arrived before their receive was posted, parked in `eagerPool`.
    var parked: [ParkedMessage] = []
    var eagerPool: UnsafeMutableRawPointer?
    var freeSlots: [Int] = []

    init(rank: Int, sockets: Int) {
        self.rank = rank
        channels = Array(repeating: nil, count: sockets)
        writeInterest = Array(repeating: false, count: sockets)
        sendQueue.reserveCapacity(256)
    }

    var hasQueuedSends: Bool { sendHead < sendQueue.count }

    deinit { eagerPool?.deallocate() }
}

/// An eager message that arrived before the receive it belongs to was posted.
struct ParkedMessage {
    var sequence: UInt32
    var index: Int32
    var length: Int
    var slot: Int
    var complete: Bool
    var signature: UInt32
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
