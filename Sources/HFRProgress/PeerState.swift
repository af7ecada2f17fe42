import HFRCollectives
import HFRTransport
import HFRSystem

/// The progress thread's view of one peer: its links and sockets, and the sends waiting for room
/// on them.
final class PeerState {
    enum Phase { case idle, connecting, connected, closed, failed }

    let rank: Int
    var phase: Phase = .idle
    /// One link per NIC pair (`LinkPlan`), each with `socketsPerLink` sockets; or, for a peer
    /// reached over RDMA, one link per HCA port pair, each a queue pair and one TCP socket for
    /// the link's control frames.
    let links: [LinkState]
    /// Whether data goes by RDMA writes (the links are HCA port pairs).
    let rdma: Bool
    let socketsPerLink: Int
    /// Sockets by channel number `link * socketsPerLink + socket`; nil until attached, and again
    /// once down.
    var channels: [TCPChannel?]
    var writeInterest: [Bool]
    var attached = 0
    /// Channels that failed to connect, or went down.
    var lost = 0
    /// Channels this rank closed that wait for the peer's final count before their frames are re-sent.
    var down: [Int: TCPChannel] = [:]
    /// Final counts the peer reported for channels still open here (consumed when they close):
    /// frames taken from the socket, and writes taken from the link's queue pair.
    var downCounts: [Int: (frames: UInt64, writes: UInt64)] = [:]
    /// Frames (and RDMA writes) this side took from each channel it closed, to answer repeated notices.
    var finalCounts: [Int: (frames: UInt64, writes: UInt64)] = [:]
    /// When the unanswered link-down notices were last sent, on which channel, and since when on it.
    var lastLinkDownNotice: UInt64 = 0
    var noticeCarrier = -1
    var noticesSince: UInt64 = 0
    /// Channels that are gone, kept for their traffic counters.
    var retired: [TCPChannel] = []
    /// Data frames taken back from a channel that went down, sent again ahead of new fragments.
    var resend: [PendingFrame] = []
    var resendHead = 0
    /// RDMA writes of a link that went down which the peer did not take, posted again ahead of
    /// new fragments.
    var rdmaResend: [PendingWrite] = []
    var rdmaResendHead = 0
    /// Completions freed room on its links during this poll: pump its sends afterwards.
    var needsPump = false
    /// Fair polling of several collectives' sends: whose turn it is and how many fragments it has left.
    var turn: UInt32 = 0
    var turnQuota = 0
    var turnOrder: [UInt32] = []
    var turnPending: [Int] = []

    /// A peer with several links acknowledges frames, so that a link's failure loses nothing.
    var reliable: Bool { links.count > 1 }
    /// Control frames waiting for the connection.
    var pendingControl: [ControlFrame] = []
    /// Send steps (cookies) waiting to be cut into fragments, oldest first.
    var sendQueue: [UInt64] = []
    var sendHead = 0
    /// Clear-to-send, clear-to-write and ready-to-send frames for collectives this rank has not
    /// started yet (`Engine.holdEarly`), and how many operations they are for.
    var earlyClears: [ControlFrame] = []
    var earlyOperations = 0
    var closeReason = ""
    /// Set by the peer's leaving frame: it destroyed its communicator after this many collectives.
    var departedAfter: UInt32?
    /// Round-robin start for the channel choice, so equal queues share the load.
    var nextChannel = 0

    /// Eager sends this rank may still start to the peer before clear-to-sends return credit.
    var eagerCredits = 0
    /// Eager messages sent to the peer whose clear-to-send has not come back yet (sequence, index).
    var eagerUnacknowledged: [(UInt32, Int32)] = []
    /// Sends to and receives from the peer that finished here, by sequence modulo 64 (allocated
    /// with the first), for the frames about them that arrive late (`Engine.lateFrame`).
    var finishedSends: [FinishedOperation] = [], finishedRecvs: [FinishedOperation] = []
    /// Eager messages that arrived before their receive was posted, parked in `eagerPool`.
    var parked: [ParkedMessage] = []
    var eagerPool: UnsafeMutableRawPointer?
    var freeSlots: [Int] = []

    init(rank: Int, links: [LinkState], socketsPerLink: Int, rdma: Bool = false) {
        self.rank = rank
        self.links = links
        self.socketsPerLink = socketsPerLink
        self.rdma = rdma
        channels = Array(repeating: nil, count: max(1, links.count) * socketsPerLink)
        writeInterest = Array(repeating: false, count: channels.count)
        sendQueue.reserveCapacity(256)
        resend.reserveCapacity(64)
        if rdma { rdmaResend.reserveCapacity(64) }
    }

    var hasQueuedSends: Bool { sendHead < sendQueue.count || resendHead < resend.count || rdmaResendHead < rdmaResend.count }

    /// The channel control frames go on: the one with the fewest payload bytes ahead of them, so
    /// that a clear-to-send does not wait behind megabytes of data (the receiver takes control
    /// frames from any channel).
    var controlChannel: TCPChannel? {
        // By index: the loop takes no reference to the channels it passes over.
        var best = -1, least = Int.max
        for i in channels.indices {
            if let bytes = channels[i]?.bytesInFlight, bytes < least { best = i; least = bytes }
        }
        return best < 0 ? nil : channels[best]
    }

    func recordFinished(_ f: FinishedOperation, sends: Bool) {
        if sends {
            if finishedSends.isEmpty { finishedSends = Array(repeating: FinishedOperation(), count: 64) }
            finishedSends[Int(f.sequence) % finishedSends.count] = f
        } else {
            if finishedRecvs.isEmpty { finishedRecvs = Array(repeating: FinishedOperation(), count: 64) }
            finishedRecvs[Int(f.sequence) % finishedRecvs.count] = f
        }
    }

    /// Where message `index` of operation `sequence` waits among the parked ones, if it does.
    @inline(__always) func parkedIndex(_ sequence: UInt32, _ index: Int32) -> Int? {
        parked.isEmpty ? nil : parked.firstIndex { $0.sequence == sequence && $0.index == index }
    }

    /// Retires channel `ch` (its queue dropped, its socket closed); it stays in `retired` for its
    /// traffic counters.
    func retire(_ ch: TCPChannel, from epoll: Epoll) {
        _ = ch.drainQueue()
        epoll.remove(ch.fd)
        // Closing tells the peer at once (EOF), even when no abort frame reaches it.
        ch.closeSocket()
        retired.append(ch)
    }

    deinit { eagerPool?.deallocate() }
}

/// A control frame, with the extension of a clear-to-write.
struct ControlFrame {
    var header: FrameHeader
    var target: WriteTarget?
}

/// An operation that finished here, kept a while for the frames about it that arrive late.
struct FinishedOperation {
    var sequence: UInt32 = 0
    var schedule: SharedSchedule?
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

/// One NIC pair between this rank and a peer, and what the scheduler knows of it.
final class LinkState {
    /// This rank's NIC and the peer's, as indices into their published addresses.
    let local: Int, remote: Int
    /// Description for logs: "nic1 198.18.1.1 -> 198.18.1.2:40123", or the HCA port of an RDMA link.
    let name: String
    /// An RDMA link's control socket, for logs: "198.18.1.1 -> 198.18.1.2:40123".
    let control: String
    /// Delivered bytes per nanosecond, measured from acknowledgements while the link is busy (0: not yet).
    var rate = 0.0
    var windowStart: UInt64 = 0
    var windowBytes = 0
    var announced = false
    /// The link's queue pair, for a peer reached over RDMA (made when its socket connects).
    var rdma: RDMALink?
    /// Its traffic, kept when the queue pair is destroyed.
    var finalCounters: RDMACounters?

    init(local: Int, remote: Int, name: String, control: String = "") {
        self.local = local; self.remote = remote; self.name = name; self.control = control
    }

    /// Counts `bytes` acknowledged at `now`; a sample is taken every 2 ms of busy time.
    func record(_ bytes: Int, now: UInt64, busy: Bool) {
        if windowStart == 0 { windowStart = now; windowBytes = 0 }
        windowBytes += bytes
        let elapsed = now &- windowStart
        if elapsed >= 2_000_000 {
            let sample = Double(windowBytes) / Double(elapsed)
            rate = rate == 0 ? sample : 0.75 * rate + 0.25 * sample
            windowStart = now
            windowBytes = 0
        }
        if !busy { windowStart = 0 }
    }
}

/// A connection that has not finished its handshake yet.
final class PendingConnection {
    enum Phase {
        case connecting, awaitingReply, awaitingHello
        /// The handshake is done and the link is an RDMA link: waiting for the peer's queue pair
        /// address (32 bytes, `QueuePairAddress`), which the dialer sends first.
        case awaitingQueuePair
    }
    let id: Int
    let fd: Int32
    var phase: Phase
    /// The peer and the channel number (link * sockets per link + socket): known from the start
    /// for outgoing connections, from the hello for incoming ones.
    var peer: Int
    var socket: Int
    /// Whether this side dialed.
    var dialed: Bool { dialer }
    private let dialer: Bool
    var buffer = [UInt8](repeating: 0, count: Handshake.size)
    var filled = 0
    let deadline: UInt64
    let remote: String

    init(id: Int, fd: Int32, phase: Phase, peer: Int, socket: Int, deadline: UInt64, remote: String) {
        self.id = id; self.fd = fd; self.phase = phase; self.peer = peer; self.socket = socket
        self.deadline = deadline; self.remote = remote
        dialer = phase == .connecting
    }
}
