import HFRTransport
import HFRVerbs

/// The receiver's side of RDMA: every message advertised in a clear-to-write and not complete yet,
/// by the tag its writes carry in their immediates. A slot holds the receive step's cookie, the
/// peer that writes it, its length and fragment size, the bytes arrived, which fragments arrived
/// (a write seen twice counts once), and the registrations (or bounce buffer) the advertisement
/// handed out. Everything is allocated once: taking a slot, marking a fragment and releasing a
/// slot allocate nothing.
final class RDMAReceives {
    /// Slots (a power of two); the tag's low bits name the slot, its high bits a generation, so a
    /// stale tag from a slot's earlier use is told apart.
    static let slotBits = 11
    static let capacity = 1 << slotBits
    static let words = WriteTarget.maxFragments / 64

    enum Mark {
        /// Not a message in progress here (its tag is unknown or from an earlier use of the slot).
        case stale
        /// That fragment has arrived before.
        case duplicate
        /// Written by another rank than the one the message was advertised to.
        case wrongPeer
        /// A fragment number beyond the message's fragments, or a byte count other than that
        /// fragment's.
        case misfit
        /// Counted; the message needs more.
        case partial
        /// Counted; the message is complete.
        case complete
    }

    private let tags = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
    private let inUse = UnsafeMutablePointer<Bool>.allocate(capacity: capacity)
    private let cookies = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
    private let peers = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
    private let lengths = UnsafeMutablePointer<Int>.allocate(capacity: capacity)
    private let fragmentSizes = UnsafeMutablePointer<Int>.allocate(capacity: capacity)
    private let arrived = UnsafeMutablePointer<Int>.allocate(capacity: capacity)
    private let bitmaps = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity * words)
    private let free = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
    private var freeCount = capacity
    private var regions: [MemoryRegion?] = Array(repeating: nil, count: capacity * WriteTarget.maxLinks)
    private var bounces: [BounceBuffer?] = Array(repeating: nil, count: capacity)
    private var bouncePorts = [Int](repeating: -1, count: capacity)
    private var destinations = [UnsafeMutableRawPointer?](repeating: nil, count: capacity)

    init() {
        tags.initialize(repeating: 0, count: Self.capacity)
        inUse.initialize(repeating: false, count: Self.capacity)
        cookies.initialize(repeating: 0, count: Self.capacity)
        peers.initialize(repeating: -1, count: Self.capacity)
        lengths.initialize(repeating: 0, count: Self.capacity)
        fragmentSizes.initialize(repeating: 1, count: Self.capacity)
        arrived.initialize(repeating: 0, count: Self.capacity)
        bitmaps.initialize(repeating: 0, count: Self.capacity * Self.words)
        for i in 0..<Self.capacity { free[i] = Int32(Self.capacity - 1 - i) }
    }

    deinit {
        tags.deallocate(); inUse.deallocate(); cookies.deallocate(); peers.deallocate()
        lengths.deallocate(); fragmentSizes.deallocate(); arrived.deallocate(); bitmaps.deallocate(); free.deallocate()
    }

    /// Messages advertised and not complete.
    var active: Int { Self.capacity - freeCount }

    /// A slot for receive step `cookie` of `length` bytes from `peer`, written in fragments of
    /// `fragmentBytes`, and the tag its writes carry; nil when every slot is taken.
    func take(cookie: UInt64, peer: Int, length: Int, fragmentBytes: Int) -> (slot: Int, tag: UInt32)? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        let slot = Int(free[freeCount])
        let generation = ((tags[slot] >> UInt32(Self.slotBits)) &+ 1) & ((1 << UInt32(WriteTarget.tagBits - Self.slotBits)) - 1)
        let tag = generation << UInt32(Self.slotBits) | UInt32(slot)
        tags[slot] = tag
        inUse[slot] = true
        cookies[slot] = cookie
        peers[slot] = Int32(peer)
        lengths[slot] = length
        fragmentSizes[slot] = fragmentBytes
        arrived[slot] = 0
        (bitmaps + slot * Self.words).update(repeating: 0, count: Self.words)
        return (slot, tag)
    }

    /// Keeps the registration link `link` advertised for the slot until it is released.
    func hold(_ slot: Int, link: Int, _ region: MemoryRegion) {
        regions[slot * WriteTarget.maxLinks + link] = region
    }

    /// The message lands in `buffer` (taken from port `port`'s bounce pool) and is copied to
    /// `destination` when complete.
    func stage(_ slot: Int, in buffer: BounceBuffer, port: Int, destination: UnsafeMutableRawPointer) {
        bounces[slot] = buffer
        bouncePorts[slot] = port
        destinations[slot] = destination
    }

    /// The receive step a slot belongs to.
    @inline(__always) func cookie(_ slot: Int) -> UInt64 { cookies[slot] }

    /// Counts fragment `fragment` of `bytes` bytes of the message tagged `tag`, written by `peer`.
    @inline(__always) func mark(tag: UInt32, fragment: Int, bytes: Int, peer: Int) -> (Mark, Int) {
        let slot = Int(tag) & (Self.capacity - 1)
        guard inUse[slot], tags[slot] == tag else { return (.stale, slot) }
        guard Int(peers[slot]) == peer else { return (.wrongPeer, slot) }
        let size = fragmentSizes[slot], length = lengths[slot]
        guard fragment * size < length, bytes == min(size, length - fragment * size) else { return (.misfit, slot) }
        let word = bitmaps + slot * Self.words + (fragment >> 6), bit = UInt64(1) << UInt64(fragment & 63)
        if word.pointee & bit != 0 { return (.duplicate, slot) }
        word.pointee |= bit
        arrived[slot] += bytes
        return (arrived[slot] == length ? .complete : .partial, slot)
    }

    /// Frees a slot. A message staged in a bounce buffer is copied to its destination first (when
    /// `copyOut`); the buffer is returned with the port it belongs to, for giving back.
    func release(_ slot: Int, copyOut: Bool) -> (BounceBuffer, Int)? {
        guard inUse[slot] else { return nil }
        inUse[slot] = false
        for l in 0..<WriteTarget.maxLinks { regions[slot * WriteTarget.maxLinks + l] = nil }
        free[freeCount] = Int32(slot)
        freeCount += 1
        guard let buffer = bounces[slot] else { return nil }
        if copyOut, let d = destinations[slot] { d.copyMemory(from: buffer.address, byteCount: lengths[slot]) }
        bounces[slot] = nil
        destinations[slot] = nil
        let port = bouncePorts[slot]
        bouncePorts[slot] = -1
        return (buffer, port)
    }

    /// Frees every slot (the communicator failed, or stops); returns the bounce buffers to give back.
    func releaseAll() -> [(BounceBuffer, Int)] {
        var out: [(BounceBuffer, Int)] = []
        for slot in 0..<Self.capacity where inUse[slot] {
            if let b = release(slot, copyOut: false) { out.append(b) }
        }
        return out
    }
}
