import HFRSystem
import HFRVerbs

/// A fragment written on a link and not yet completed: enough to post it again on another link.
struct PostedWrite {
    /// The send step's cookie.
    var cookie: UInt64
    /// Where the fragment starts in the message, its length and its number (the immediate's low bits).
    var offset: Int
    var length: Int
    var fragment: Int
    /// Keeps the source's registration alive while the HCA may read it.
    var region: MemoryRegion?
    /// The staging buffer the fragment went out from when its source could not be registered.
    var bounce: BounceBuffer?
}

/// The traffic of one RDMA link (diagnostics).
public struct RDMACounters: Sendable {
    /// The HCA port, as in `HFR_IB_HCA` ("mlx5_0:1").
    public var device: String
    public var bytesWritten: Int
    public var writes: Int
    public var bytesReceived: Int
    public var writesReceived: Int
    /// False once the link went down (its counters stay).
    public var isUp: Bool
}

/// A fragment to post again because the link it went out on failed before the receiver took it.
struct PendingWrite {
    var cookie: UInt64
    var offset: Int
    var length: Int
    var fragment: Int
}

/// The RDMA half of one link to a peer: a reliable-connected queue pair on this rank's HCA port
/// `link`, joined to the peer's queue pair on its port `link`, with the writes posted on it in a
/// fixed ring, oldest first. Reliable connection completes them in order, so the peer's count of
/// writes it took from the queue pair says exactly which posted writes it has (see
/// `Engine.resolveDown`).
final class RDMALink {
    enum State {
        /// Queue pair made, addresses being exchanged.
        case connecting
        /// Carries writes.
        case up
        /// A completion or a post failed; the link goes down at the end of this turn.
        case failing
        /// Out of service: its queue pair is in ERROR.
        case down
    }

    let port: RDMAPort
    let qp: QueuePair
    let peer: Int, link: Int
    var state = State.connecting
    /// The peer's queue pair, once connected.
    var remote: QueuePairAddress?

    /// Posted writes not yet completed, oldest first.
    let capacity: Int
    private let ring: UnsafeMutablePointer<PostedWrite>
    private var head = 0
    private(set) var count = 0
    /// The ordinal of the oldest write in the ring: how many writes posted on this link before it.
    private(set) var completedOrdinal: UInt64 = 0
    private(set) var bytesInFlight = 0
    /// Receives posted on the queue pair and not yet completed.
    var receivesPosted = 0
    /// Writes with immediate taken from the queue pair (successful receive completions).
    var received: UInt64 = 0
    /// When a write last completed, or went into flight on an idle link.
    var lastProgress: UInt64 = 0

    /// Traffic counters (diagnostics).
    private(set) var bytesWritten = 0, writes = 0
    var bytesReceived = 0, writesReceived = 0

    static let ordinalMask: UInt64 = (1 << 40) - 1
    static let receiveBit: UInt64 = 1 << 63

    init(port: RDMAPort, qp: QueuePair, peer: Int, link: Int) {
        self.port = port; self.qp = qp; self.peer = peer; self.link = link
        capacity = port.sendDepth
        ring = .allocate(capacity: capacity)
    }

    deinit {
        while count > 0 { _ = popHead() }
        ring.deallocate()
    }

    /// Writes ever posted on the link.
    var postedOrdinal: UInt64 { completedOrdinal + UInt64(count) }
    var hasRoom: Bool { count < capacity }

    /// Work request IDs: a write's names its peer, link and ordinal; a receive's its peer and link.
    @inline(__always) func sendID(_ ordinal: UInt64) -> UInt64 {
        UInt64(peer) << 44 | UInt64(link) << 40 | ordinal & RDMALink.ordinalMask
    }
    var receiveID: UInt64 { RDMALink.receiveBit | UInt64(peer) << 44 | UInt64(link) << 40 }

    /// The peer, link and ordinal a work request ID names, and whether it is a receive's.
    @inline(__always) static func decode(_ id: UInt64) -> (receive: Bool, peer: Int, link: Int, ordinal: UInt64) {
        (id & receiveBit != 0, Int((id >> 44) & 0x7_FFFF), Int((id >> 40) & 0xF), id & ordinalMask)
    }

    /// Posts one receive (a write with immediate consumes one).
    @inline(__always) func postReceive() throws(VerbsError) {
        try qp.postReceive(workRequestID: receiveID)
        receivesPosted += 1
    }

    /// Posts `w` as a signaled write with immediate of `local` to `remoteAddress` and records it.
    @inline(__always)
    func post(_ w: PostedWrite, local: LocalBuffer, remoteAddress: UInt64, rkey: UInt32, immediate: UInt32) throws(VerbsError) {
        precondition(count < capacity, "more writes posted than the link's ring holds")
        try qp.postWriteWithImmediate(local: local, remoteAddress: remoteAddress, rkey: rkey, immediate: immediate,
                                      workRequestID: sendID(postedOrdinal))
        (ring + (head + count) % capacity).initialize(to: w)
        if count == 0 { lastProgress = MonotonicClock.nanoseconds() }
        count += 1
        bytesInFlight += w.length
        writes += 1
        bytesWritten += w.length
    }

    /// The oldest posted write, which completed successfully; nil when `ordinal` is not its (a
    /// completion of writes already resolved after a failure).
    @inline(__always) func completeHead(ordinal: UInt64) -> PostedWrite? {
        guard count > 0, ordinal == completedOrdinal & RDMALink.ordinalMask else { return nil }
        lastProgress = MonotonicClock.nanoseconds()
        return popHead()?.1
    }

    /// Removes the oldest posted write, with its ordinal.
    func popHead() -> (UInt64, PostedWrite)? {
        guard count > 0 else { return nil }
        let w = (ring + head).move()
        head = (head + 1) % capacity
        count -= 1
        let ordinal = completedOrdinal
        completedOrdinal += 1
        bytesInFlight -= w.length
        return (ordinal, w)
    }

    var counters: RDMACounters {
        RDMACounters(device: port.name, bytesWritten: bytesWritten, writes: writes, bytesReceived: bytesReceived,
                     writesReceived: writesReceived, isUp: state == .up)
    }

    /// "soft_1:1 QP 0x1203 -> rank 2's QP 0x1a07".
    var description: String {
        "\(port.name) QP 0x\(String(qp.number, radix: 16))" + (remote.map { " -> rank \(peer)'s QP 0x\(String($0.queuePairNumber, radix: 16))" } ?? "")
    }
}
