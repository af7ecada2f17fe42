import Glibc
import Synchronization
import HFRSystem
import HFRTopology
import HFRCollectives
import HFRKernels
import HFRTransport
import HFRVerbs

/// A submitted collective and its execution state. Built by the submitting thread, then owned by
/// the progress thread alone.
final class ActiveCollective {
    let sequence: UInt32
    let shared: SharedSchedule
    /// The schedule, read through `shared` (inlined: each use loads the one array it needs).
    @inline(__always) var schedule: Schedule { shared.schedule }
    let request: Request
    let type: DataType
    let op: ReduceOp
    let ranks: Int
    let sendBase: UnsafeRawPointer?
    let recvBase: UnsafeMutableRawPointer?
    var scratch: ScratchBuffer?
    /// Over RDMA, per HCA port, the registrations of the caller's buffers this collective made
    /// (see `Engine.registration`); released when it finishes.
    var registrations: [(port: Int, region: MemoryRegion)] = []
    var deadline: UInt64 = 0

    /// Predecessors not yet complete, per step.
    let pending: StateColumn<Int32>
    /// Bytes moved so far, per send or recv step (for sends: handed to the kernel).
    let progress: StateColumn<Int>
    /// For sends: bytes cut into fragments and queued so far.
    let queued: StateColumn<Int>
    /// Per step: 0 waiting, 1 ready (send waiting for its clear-to-send, recv posted), 2 running, 3 done.
    let state: StateColumn<UInt8>
    /// For sends: whether the receiver's clear-to-send has arrived.
    let cleared: StateColumn<Bool>
    /// For sends: whether it went out eagerly, before its clear-to-send (which then only returns credit).
    let eager: StateColumn<Bool>
    /// For receives over TCP: where the step's coverage bits start (in words of `coverage`).
    let coverageStart: StateColumn<Int>
    /// One bit per `FragmentGrid.grain` bytes of every received message, set as fragments are
    /// announced (see `claim`).
    private let coverage: UnsafeMutablePointer<UInt64>
    /// The memory of the columns above and of `outstanding`: one allocation per collective.
    private let block: UnsafeMutableRawPointer
    /// For sends to an RDMA peer: where the receiver's clear-to-write says the message lands
    /// (allocated when the first one arrives).
    var targets: [WriteTarget?] = []
    var remaining: Int
    /// Send and recv steps still incomplete, per peer.
    let outstanding: StateColumn<Int32>
    var finished = false
    /// For a send or receive between two ranks: the other rank; -1 for collectives.
    var pointToPointPeer = -1
    /// For a point-to-point operation: whether it sends (else it receives).
    var pointToPointSends = false

    init(sequence: UInt32, schedule shared: SharedSchedule, request: Request, type: DataType, op: ReduceOp, ranks: Int,
         send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?) {
        self.sequence = sequence; self.shared = shared; self.request = request
        let schedule = shared.schedule
        self.type = type; self.op = op; self.ranks = ranks; sendBase = send; recvBase = recv
        let n = schedule.steps.count
        remaining = n
        var words = 0
        for step in schedule.steps where step.kind == .recv { words += FragmentGrid.words(forMessageOf: step.length) }
        // 8-byte columns first, then 4-byte ones, then bytes: each stays aligned.
        let perStep = 3 * MemoryLayout<Int>.stride + MemoryLayout<Int32>.stride + MemoryLayout<UInt8>.stride + 2 * MemoryLayout<Bool>.stride
        block = .allocate(byteCount: max(8, n * perStep + words * 8 + ranks * MemoryLayout<Int32>.stride), alignment: 8)
        var at = block
        func column<T>(_ values: [T]) -> StateColumn<T> {
            let p = at.bindMemory(to: T.self, capacity: values.count)
            _ = UnsafeMutableBufferPointer(start: p, count: values.count).initialize(from: values)
            at += values.count * MemoryLayout<T>.stride
            return StateColumn(base: p)
        }
        func column<T>(_ count: Int, _ initial: T) -> StateColumn<T> {
            let p = at.bindMemory(to: T.self, capacity: count)
            p.initialize(repeating: initial, count: count)
            at += count * MemoryLayout<T>.stride
            return StateColumn(base: p)
        }
        progress = column(n, 0)
        queued = column(n, 0)
        coverageStart = column(n, 0)
        coverage = column(words, UInt64(0)).base
        var start = 0
        for (i, step) in schedule.steps.enumerated() where step.kind == .recv {
            coverageStart[i] = start
            start += FragmentGrid.words(forMessageOf: step.length)
        }
        pending = column(schedule.predecessorCount)
        outstanding = column(schedule.messagesPerPeer)
        state = column(n, 0)
        cleared = column(n, false)
        eager = column(n, false)
    }

    deinit { block.deallocate() }

    @inline(__always) func pointer(_ ref: BufferRef) -> UnsafeMutableRawPointer {
        switch ref.buffer {
        case .send: return UnsafeMutableRawPointer(mutating: sendBase!) + ref.offset
        case .recv: return recvBase! + ref.offset
        case .scratch: return scratch!.pointer + ref.offset
        }
    }

    /// The step of the k-th message from `peer`, or nil when there is no such message.
    @inline(__always) func recvStep(peer: Int, index: Int32) -> Int? { shared.schedule.recvStep(from: peer, index: index) }

    @inline(__always) func sendStep(peer: Int, index: Int32) -> Int? { shared.schedule.sendStep(to: peer, index: index) }

    /// Records that receive step `i` takes bytes [offset, offset + length) from a fragment just
    /// announced; false when the fragment is off the grid or repeats bytes (see `FragmentGrid`).
    @inline(__always) func claim(_ i: Int, offset: Int, length: Int) -> Bool {
        FragmentGrid.claim(coverage + coverageStart[i], offset: offset, length: length, messageLength: schedule.steps[i].length)
    }

    /// Undoes `claim` for a fragment whose payload was cut off when its socket went down.
    func unclaim(_ i: Int, offset: Int, length: Int) {
        FragmentGrid.unclaim(coverage + coverageStart[i], offset: offset, length: length)
    }

    /// Whether send step `i`, once written, is done: a message sent eagerly in a collective is
    /// done only when the receiver's clear-to-send has confirmed it (signature and length), so
    /// that no rank finishes a collective whose arguments a receiver disagrees with.
    @inline(__always) func sendConfirmed(_ i: Int) -> Bool {
        pointToPointPeer >= 0 || !eager[i] || cleared[i]
    }

    /// Messages this rank sends to `peer` in this collective.
    func sends(to peer: Int) -> Int { schedule.sendStart[peer + 1] - schedule.sendStart[peer] }

    /// Peers with messages still outstanding (for timeout messages).
    var waitingFor: [Int] { (0..<ranks).filter { outstanding[$0] > 0 } }
}

/// Per-step (or per-peer) state of a collective, in memory the collective owns: reads and writes
/// happen in place, with none of an array's copy-on-write checks or reference counting on the
/// fragment path.
struct StateColumn<T> {
    let base: UnsafeMutablePointer<T>
    @inline(__always) subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}

/// A reusable scratch allocation (64-byte aligned).
final class ScratchBuffer {
    static let bindingFailed = Atomic<Bool>(false)
    let pointer: UnsafeMutableRawPointer
    let size: Int
    /// Set when the buffer lives on the placement's NUMA node (it unmaps itself).
    private let numa: NUMABuffer?
    /// Nil when the memory cannot be had (`posix_memalign`), which fails the collective instead
    /// of the process.
    init?(size: Int, placement: Placement.Choice? = nil) {
        self.size = size
        var bound: NUMABuffer?
        if let placement, placement.bindingEnabled {
            do { bound = try placement.allocateBuffer(byteCount: max(size, 64)) } catch {
                // INFO said the buffers go to the NIC's node: say that they do not, once.
                if ScratchBuffer.bindingFailed.exchange(true, ordering: .relaxed) == false {
                    Log.warn("scratch memory is not bound to the NIC's NUMA node (\(error)); it comes from the default policy")
                }
            }
        }
        if let b = bound {
            numa = b
            pointer = b.baseAddress
        } else {
            numa = nil
            var p: UnsafeMutableRawPointer?
            guard posix_memalign(&p, 64, max(size, 64)) == 0, let p else { return nil }
            pointer = p
        }
    }
    deinit { if numa == nil { free(pointer) } }
}
