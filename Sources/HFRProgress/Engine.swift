import Glibc
import Synchronization
import HFRSystem
import HFRTransport
import HFRCollectives
import HFRKernels
import HFRVerbs

/// The progress engine of one communicator: one thread on epoll that runs every submitted
/// collective's schedule, moves its messages over the peers' sockets and hands large
/// reductions to worker threads. Callers submit schedules and wait on `Request`s.
///
/// Threading: `submit`, `abort` and `shutdown` may be called from any thread. The event loop's
/// state belongs to whichever thread holds `driver`: the progress thread, or a caller blocked in
/// `Request.wait` that runs the loop itself (`drive(until:)`). `driver` is an ownership token that
/// is only ever try-locked by the progress thread, so holding it across the loop's syscalls
/// never blocks the data path. The submission queue's lock and the completion lock are held for a
/// few instructions only, never across a system call.
public final class Engine: @unchecked Sendable {
    let config: EngineConfiguration
    let epoll: Epoll
    let wake: EventFD
    var workers: ReductionWorkers!
    var thread: PosixThread?

    // Submission side (guarded by submitLock).
    let submitLock = ConditionLock()
    var submitted: [ActiveCollective] = []
    /// What `drainWake` took from `submitted`, swapped with it so that neither array reallocates.
    private var intake: [ActiveCollective] = []
    /// Memory the caller registered (`register(_:)`; guarded by `driver`): a collective whose
    /// buffer lies in one uses its registrations (see `registration`).
    var registeredRanges: [RegisteredRange] = []
    var nextSequence: UInt32 = 0
    /// Point-to-point operations submitted per peer and direction, index `peer * 2 + (send ? 1 : 0)`
    /// (guarded by submitLock): the k-th send from a to b matches b's k-th receive from a.
    var p2pSubmitted: [UInt32]
    /// Point-to-point operations started per peer and direction, and those in flight (progress thread).
    var p2pActivated: [UInt32]
    var p2pActive: [UInt64: ActiveCollective] = [:]
    static let pointToPointBit: UInt32 = 1 << 31
    var stopRequested = false
    var abortReason: String?
    /// A failure raised outside the loop (a waiter whose deadline passed while the loop stood
    /// still), failed at the loop's next turn (guarded by submitLock).
    var outsideFailure: CollectiveError?

    /// Guards request completion and the sticky error.
    let completion = ConditionLock()
    var stickyError: CollectiveError?

    // Progress-thread state.
    var slots: [ActiveCollective?]
    /// The last `finished.count` collectives that finished here, by sequence modulo that count,
    /// for the frames about them that arrive late (`lateFrame`).
    var finished: [FinishedOperation]
    var order: [ActiveCollective] = []
    var backlog: [ActiveCollective] = []
    var nextToActivate: UInt32 = 0
    var peers: [PeerState]
    var ready: [UInt64] = []
    var dirty: [TCPChannel] = []
    var workerDone: [UInt64] = []
    var pending: [Int: PendingConnection] = [:]
    var nextPendingID = 1
    /// Connections dropped for saying nothing while too many others waited (`limitUnidentified`).
    var silentDropped = 0
    var broken: CollectiveError?
    var scratchPool: [ScratchBuffer] = []
    var nextTimerCheck: UInt64 = 0
    var suspected: (rank: Int, reason: String, deadline: UInt64)?
    var stopDeadline: UInt64 = 0
    var lastActive: UInt64 = 0
    /// Set when epoll reports the eventfd: workers finished jobs, or a submitter woke the loop.
    var wakeReadable = false
    /// Whether the last turn had something arrive (data, frames, finished reductions) or
    /// submissions to take: a caller that drives yields its core only after a turn that found
    /// none, when ranks outnumber cores (RDMA completions raise no event: it yields after every
    /// turn there).
    var turnFoundWork = false
    /// Turns in a row a driving caller kept its core after finding work (at most 8).
    var busyTurns = 0
    /// Bumped after each submission and stop request, so the loop takes the submission lock only then.
    let announcements = Atomic<Int>(0)
    /// Bumped at every timer check (every 20 ms of turns): a waiter tells a loop that stands still
    /// from one that is slow.
    let heartbeat = Atomic<UInt64>(0)
    /// Whether the engine is to close the data listener (at teardown, or in deinit): set once
    /// init has succeeded (before that the caller closes it), cleared when closed.
    private var ownsListener = false
    var stopSeen = false
    /// The largest fragment on the wire (several links: `linkFragmentBytes`), what a wait is for.
    let largestFragment: Int
    var discard: UnsafeMutableRawPointer?
    /// Held by whichever thread runs the event loop: the progress thread, or a waiting caller.
    let driver = ConditionLock()
    /// Callers that want to drive; the progress thread parks while this is above zero.
    let driverWanted = Atomic<Int>(0)
    /// Where the progress thread parks while a caller drives.
    let parking = ConditionLock()
    /// Set (under `parking`) by `unpark`, taken by the parked progress thread.
    let unparkPending = Atomic<Bool>(false)

    // RDMA (progress-thread state; empty when no peer is reached over RDMA).
    /// This rank's HCA ports: port l serves link l of every RDMA peer.
    var rdmaPorts: [RDMAPort] = []
    /// Messages advertised to RDMA peers and not complete, by tag.
    var rdmaReceives: RDMAReceives?
    /// Receive steps whose clear-to-write waits for a free tag (or bounce buffer), oldest first.
    var deferredClears: [UInt64] = []
    /// Links whose completion or post failed during this turn: taken down at its end.
    var linkFailures: [(peer: Int, link: Int, reason: String)] = []

    static let tokenWake: UInt64 = 0
    static let tokenListen: UInt64 = 1
    static let tokenPending: UInt64 = 2 << 56
    static let tokenChannel: UInt64 = 3 << 56

    public init(_ config: EngineConfiguration) throws {
        self.config = config
        epoll = try Epoll()
        wake = try EventFD()
        precondition(config.maxActive > 0 && config.maxActive & (config.maxActive - 1) == 0, "maxActive \(config.maxActive) is not a power of two")
        slots = Array(repeating: nil, count: config.maxActive)
        finished = Array(repeating: FinishedOperation(), count: 64)
        p2pSubmitted = Array(repeating: 0, count: config.ranks * 2)
        p2pActivated = Array(repeating: 0, count: config.ranks * 2)
        let me = config.peerAddresses[config.rank]
        peers = (0..<config.ranks).map { r in
            let theirs = config.peerAddresses[r]
            let tcp = r == config.rank ? [] : LinkPlan.links(me: config.rank, me, peer: r, theirs)
            func address(_ pair: (local: Int, remote: Int)) -> String {
                let nic = pair.local < config.nicNames.count ? "\(config.nicNames[pair.local]) " : ""
                return "\(nic)\(SocketAddress(ip: me.nics[pair.local].ip, port: 0).host) -> \(SocketAddress(ip: theirs.nics[pair.remote].ip, port: theirs.port))"
            }
            // An RDMA peer: link l joins HCA port l of both ranks; its control socket goes over the
            // NIC pairs in turn.
            let hcaLinks = min(LinkPlan.verbsLinks(me, theirs), config.verbsPorts.count)
            if hcaLinks > 0 && !tcp.isEmpty {
                let links = (0..<hcaLinks).map { l -> LinkState in
                    let pair = tcp[l % tcp.count]
                    return LinkState(local: pair.local, remote: pair.remote, name: config.verbsPorts[l].name, control: address(pair))
                }
                return PeerState(rank: r, links: links, socketsPerLink: 1, rdma: true)
            }
            let links = tcp.map { LinkState(local: $0.local, remote: $0.remote, name: address($0)) }
            return PeerState(rank: r, links: links, socketsPerLink: links.count > 1 ? config.socketsPerLink : config.socketsPerPeer)
        }
        largestFragment = peers.contains(where: \.reliable) ? config.linkFragmentBytes : config.fragmentBytes
        let rdmaPeers = peers.filter(\.rdma).count
        if rdmaPeers > 0 {
            let sendDepth = min(4096, max(1, config.maxInflightFragments))
            let receiveDepth = min(4096, max(64, 4 * config.maxInflightFragments))
            rdmaPorts = try config.verbsPorts.prefix(WriteTarget.maxLinks).enumerated().map { l, port in
                try RDMAPort(index: l, port: port, peers: rdmaPeers, sendDepth: sendDepth, receiveDepth: receiveDepth,
                             bounceBufferSize: max(config.fragmentBytes, 1 << 20))
            }
            rdmaReceives = RDMAReceives()
            deferredClears.reserveCapacity(64)
            linkFailures.reserveCapacity(8)
        }
        ready.reserveCapacity(4096)
        dirty.reserveCapacity(64)
        try TCPSocket.setNonBlocking(config.listenFD)
        try epoll.add(wake.fd, events: Epoll.readable, token: Engine.tokenWake)
        try epoll.add(config.listenFD, events: Epoll.readable, token: Engine.tokenListen)
        let placement = config.placement, rank = config.rank
        workers = try ReductionWorkers(count: config.reduceThreads, wake: wake, name: "hfr\(config.rank)") { i in
            do { try placement?.pinWorkerThread(i) } catch { Log.warn(rank: rank, "cannot pin reduction thread \(i): \(error)") }
        }
        thread = try PosixThread(name: "hfr\(config.rank)-progress") { [unowned self] in self.run() }
        ownsListener = true
    }

    deinit {
        if ownsListener { close(config.listenFD) }
        discard?.deallocate()
    }

    public var rank: Int { config.rank }

    /// The error that broke the communicator, if any: every later submission fails with it.
    public var error: CollectiveError? { completion.withLock { stickyError } }

    /// Queues a collective. Buffers must stay valid until its request completes.
    public func submit(_ schedule: SharedSchedule, name: String, type: DataType, op: ReduceOp,
                       send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, willWait: Bool = false,
                       pointToPoint peer: Int? = nil, sending: Bool = false) throws(CollectiveError) -> Request {
        if let e = error { throw e }
        submitLock.lock()
        if stopRequested {
            submitLock.unlock()
            throw .aborted("the communicator has been destroyed")
        }
        // Collectives share one numbering on every rank; sends and receives between two ranks
        // are numbered per peer (high bit set), since the other ranks take no part in them.
        let seq: UInt32
        if let peer {
            let d = peer * 2 + (sending ? 1 : 0)
            seq = Engine.pointToPointBit | (p2pSubmitted[d] & ~Engine.pointToPointBit)
            p2pSubmitted[d] &+= 1
        } else {
            seq = nextSequence & ~Engine.pointToPointBit
            nextSequence &+= 1
        }
        let request = Request(sequence: seq, operation: name, completion: completion, timeoutNanoseconds: config.timeoutNanoseconds)
        request.engine = self
        let c = ActiveCollective(sequence: seq, schedule: schedule, request: request, type: type, op: op,
                                 ranks: config.ranks, send: send, recv: recv)
        request.sleeps = config.yieldWhilePolling && config.sleepMessageBytes > 0
            && min(schedule.schedule.averageMessageBytes, largestFragment) >= config.sleepMessageBytes
        c.pointToPointPeer = peer ?? -1
        c.pointToPointSends = sending
        submitted.append(c)
        submitLock.unlock()
        announcements.add(1, ordering: .acquiringAndReleasing)
        // A caller about to wait drives the engine itself; otherwise wake the progress thread.
        if !(willWait && config.spinNanoseconds > 0 && !request.sleeps) { wake.signal(); unpark() }
        return request
    }

    /// Completes pending work (each wait bounded by HFR_TIMEOUT), then stops the progress
    /// thread and closes every connection.
    public func shutdown() {
        stop(abort: nil)
    }

    /// Fails the communicator with `error` at the loop's next turn, telling the peers (a waiter
    /// whose deadline passed: the collective's buffers are released before it returns).
    func failFromOutside(_ error: CollectiveError) {
        submitLock.withLock { if outsideFailure == nil { outsideFailure = error } }
        announcements.add(1, ordering: .acquiringAndReleasing)
        wake.signal()
        unpark()
    }

    /// Fails pending work at once with `reason`, tells the peers, and stops. Never waits for peers.
    public func abort(_ reason: String) {
        stop(abort: reason)
    }

    private func stop(abort reason: String?) {
        let first: Bool = submitLock.withLock {
            if stopRequested {
                // An abort cuts a graceful stop short (a destroy waiting on a dead peer).
                if abortReason == nil, let reason { abortReason = reason }
                return false
            }
            stopRequested = true
            abortReason = reason
            return true
        }
        announcements.add(1, ordering: .acquiringAndReleasing)
        wake.signal()
        unpark()
        if first, let t = thread, !t.isCurrent {
            t.join()
            workers.stop()
        }
    }

    // MARK: - The progress loop

    /// The progress thread. Whoever holds `driver` owns the engine's state: this thread, or a
    /// caller blocked in `wait` that drives the engine itself (see `drive(until:)`). This thread
    /// sleeps in epoll without holding it, so a caller never waits for it to wake up.
    func run() {
        do { try config.placement?.pinProgressThread() } catch { Log.warn(rank: config.rank, "cannot pin the progress thread: \(error)") }
        var timeoutMs: Int32 = 0
        var idle = false
        while true {
            if driverWanted.load(ordering: .acquiring) > 0 || idle {
                // Parked: a caller drives, or nothing is in flight and callers will drive their
                // own collectives. Wake up now and then for connections and aborts from peers.
                parking.lock()
                let until = MonotonicClock.nanoseconds() &+ 20_000_000
                repeat {
                    // A wake-up sent before this thread began to wait is not lost.
                    if unparkPending.exchange(false, ordering: .acquiringAndReleasing) { break }
                    if !parking.wait(untilNanoseconds: until) { break }
                } while driverWanted.load(ordering: .acquiring) > 0 && !idle
                parking.unlock()
            } else if timeoutMs == 0 {
                if config.yieldWhilePolling { sched_yield() }
            } else {
                epoll.waitForReadiness(timeoutMilliseconds: timeoutMs)
            }
            guard driver.tryLock() else { continue }
            let linger = turn()
            timeoutMs = nextTimeout()
            idle = config.spinNanoseconds > 0 && timeoutMs > 0 && order.isEmpty && backlog.isEmpty
            if let linger { teardown(linger: linger); driver.unlock(); return }
            driver.unlock()
        }
    }

    /// How long the progress thread may sleep: not at all while collectives that poll are in flight or
    /// shortly after (waking a sleeping thread costs tens of microseconds on a busy host).
    func nextTimeout() -> Int32 {
        let now = MonotonicClock.nanoseconds()
        // Collectives waited for asleep do not keep the loop polling.
        if order.contains(where: { !$0.request.sleeps }) { lastActive = now }
        // RDMA completions raise no event: poll while collectives are in flight, whatever HFR_SPIN says.
        if !rdmaPorts.isEmpty && !order.isEmpty { return 0 }
        if config.spinNanoseconds > 0 && now &- lastActive < config.spinNanoseconds { return 0 }
        return order.isEmpty && pending.isEmpty && suspected == nil ? 500 : 20
    }

    /// One non-blocking turn of the event loop (caller holds `driver`); returns how long to
    /// linger when the engine must stop.
    func turn() -> UInt64? {
        let now = MonotonicClock.nanoseconds()
        var incoming = false
        _ = epoll.wait(timeoutMilliseconds: 0) { token, events in
            // A socket that stays writable reports at every turn: only arrivals count as work.
            if events & (Epoll.readable | Epoll.error | Epoll.hangup) != 0 { incoming = true }
            self.dispatch(token: token, events: events)
        }
        turnFoundWork = incoming || announcements.load(ordering: .relaxed) > 0
        if let lingerNanoseconds = drainWake() { return lingerNanoseconds }
        if !rdmaPorts.isEmpty { pollCompletions() }
        settle()
        if now >= nextTimerCheck {
            checkTimers(MonotonicClock.nanoseconds())
            nextTimerCheck = now + 20_000_000
            settle()
        }
        return nil
    }

    /// Lets a caller blocked on `request` run the event loop on its own thread until the request
    /// completes, so that no thread hand-off (tens of microseconds each) sits on the critical
    /// path of a blocking collective. The progress thread parks meanwhile. Returns false when
    /// driving is off (HFR_SPIN=0) or the engine is stopping; the caller then sleeps instead.
    /// Gives the loop back at `deadline` (monotonic nanoseconds) if the request is not done by then.
    func drive(until request: Request, deadline: UInt64 = .max) -> Bool {
        guard config.spinNanoseconds > 0, !request.sleeps, thread.map({ !$0.isCurrent }) ?? false else { return false }
        driverWanted.add(1, ordering: .acquiringAndReleasing)
        while !driver.tryLock() {
            // Another thread drives, maybe for a request that needs this one's peers first.
            if request.test() {
                driverWanted.subtract(1, ordering: .acquiringAndReleasing)
                return true
            }
            sched_yield()
        }
        defer {
            driverWanted.subtract(1, ordering: .acquiringAndReleasing)
            let more = !order.isEmpty || !backlog.isEmpty
            driver.unlock()
            // Collectives still in flight (asynchronous ones) need the progress thread back.
            if more { unpark() }
        }
        while !request.test() {
            if stopSeen { return request.test() }  // torn down: nothing left to drive
            if deadline != .max && MonotonicClock.nanoseconds() >= deadline { return false }
            if turn() != nil {
                // Stopping: the progress thread tears down.
                wake.signal()
                return request.test()
            }
            // At most 8 turns in a row keep the core, whatever they find.
            busyTurns = turnFoundWork && rdmaPorts.isEmpty && busyTurns < 8 ? busyTurns + 1 : 0
            if config.yieldWhilePolling && busyTurns == 0 { sched_yield() }
        }
        return true
    }

    /// Runs ready steps and flushes sockets until nothing more can move without an event.
    @inline(__always) func settle() {
        while !ready.isEmpty || !dirty.isEmpty {
            drainReady()
            flushDirty()
        }
    }

    func dispatch(token: UInt64, events: UInt32) {
        switch token & (0xFF << 56) {
        case Engine.tokenChannel:
            let peer = Int((token >> 16) & 0xFFFF_FFFF), socket = Int(token & 0xFFFF)
            guard peer < peers.count, let ch = peers[peer].channels[socket] else { return }
            if events & (Epoll.readable | Epoll.error | Epoll.hangup) != 0 {
                do { if try ch.readable() { markDirty(ch) } } catch { channelFailed(ch, error); return }
            }
            if events & Epoll.writable != 0 { markDirty(ch) }
        case Engine.tokenPending:
            if let p = pending[Int(token & 0xFFFF_FFFF)] { advance(p, events: events) }
        default:
            if token == Engine.tokenListen { acceptIncoming() }
            if token == Engine.tokenWake { wakeReadable = true }
        }
    }

    /// Takes new submissions and finished reductions. Returns how long to linger over closing
    /// connections when the engine must stop, nil while it runs on.
    func drainWake() -> UInt64? {
        // Only what was announced is looked at: a polling loop makes no needless syscalls or lock trips.
        if wakeReadable {
            wakeReadable = false
            wake.drain()
            if !workers.isEmpty {
                workers.collect(into: &workerDone)
                for cookie in workerDone { if let (c, i) = lookup(cookie) { complete(c, i) } }
                workerDone.removeAll(keepingCapacity: true)
            }
        }
        guard announcements.exchange(0, ordering: .acquiringAndReleasing) > 0 || stopSeen else { return nil }
        submitLock.lock()
        if !submitted.isEmpty { swap(&intake, &submitted) }
        let stop = stopRequested
        let reason = abortReason
        let outside = outsideFailure
        submitLock.unlock()
        for c in intake { enqueueForActivation(c) }
        intake.removeAll(keepingCapacity: true)
        if let outside, broken == nil { fail(outside, notifyPeers: true) }
        if stop {
            stopSeen = true
            if let reason {
                fail(.aborted(reason), notifyPeers: true)
                return 0
            }
            // Graceful: keep going until all submitted work is done (or failed), and until control
            // frames still waiting for a handshake are out (for at most a second): leaving
            // frames, and abort frames also to higher ranks not connected yet, which dial this one
            // when they need it.
            if !(order.isEmpty && backlog.isEmpty) { return nil }
            let now = MonotonicClock.nanoseconds()
            if stopDeadline == 0 {
                stopDeadline = now &+ 1_000_000_000
                if broken == nil { announceLeaving() }
            }
            let undelivered = peers.contains {
                !$0.pendingControl.isEmpty && ($0.phase == .connecting || (broken != nil && $0.phase == .idle))
            }
            return undelivered && now < stopDeadline ? nil : 1_000_000_000
        }
        return nil
    }

    /// Wakes the progress thread if it is parked, or makes its next park return at once: new work
    /// for it (an asynchronous or sleeping submission, a stop, a caller done driving).
    func unpark() {
        parking.lock()
        unparkPending.store(true, ordering: .releasing)
        parking.broadcast()
        parking.unlock()
    }

    /// Tells the peers this rank talks to that it is leaving, its work done, ahead of closing its
    /// sockets (see `FrameKind.leaving`).
    func announceLeaving() {
        let h = FrameHeader(kind: .leaving, sequence: nextToActivate, index: 0, offset: 0, length: 0)
        for peer in peers where peer.phase == .connected || peer.phase == .connecting { sendControl(to: peer.rank, h) }
    }

    func enqueueForActivation(_ c: ActiveCollective) {
        if let broken { publish(c, error: broken); return }
        if order.count >= config.maxActive || !backlog.isEmpty { backlog.append(c); return }
        activate(c)
    }

    func activate(_ c: ActiveCollective) {
        c.deadline = MonotonicClock.nanoseconds() &+ config.timeoutNanoseconds
        if c.pointToPointPeer >= 0 {
            p2pActivated[c.pointToPointPeer * 2 + (c.pointToPointSends ? 1 : 0)] = (c.sequence &+ 1) & ~Engine.pointToPointBit
            p2pActive[Engine.p2pKey(c.pointToPointPeer, c.sequence, sends: c.pointToPointSends)] = c
        } else {
            nextToActivate = (c.sequence &+ 1) & ~Engine.pointToPointBit
            slots[Int(c.sequence % UInt32(config.maxActive))] = c
        }
        order.append(c)
        if c.schedule.scratchBytes > 0 {
            guard let s = acquireScratch(c.schedule.scratchBytes) else {
                fail(.system("rank \(config.rank) cannot allocate the \(c.schedule.scratchBytes) bytes of scratch memory \(c.request.name) needs"), notifyPeers: true)
                return
            }
            c.scratch = s
        }
        for p in c.schedule.peers {
            let peer = peers[p]
            if peer.phase == .closed && arrivedWhole(c, from: peer) { continue }
            if peer.phase == .closed || peer.phase == .failed {
                fail(lossError(p, peer.closeReason.isEmpty ? "its connection is closed" : peer.closeReason), notifyPeers: true)
                return
            }
            ensureConnected(peer)
        }
        for step in 0..<c.schedule.steps.count where c.pending[step] == 0 {
            ready.append(cookie(c, step))
        }
        if c.remaining == 0 { finish(c) }
        // Clear-to-send frames that arrived before this rank started the collective.
        for k in peers.indices where !peers[k].earlyClears.isEmpty {
            let peer = peers[k]
            // A clear from the peer is for a message this rank sends it; ready-to-sends are for
            // collectives only. Frames of this sequence number that are neither stay: they
            // belong to a send to this peer not started yet (same number, other direction).
            guard c.pointToPointPeer < 0 || (c.pointToPointPeer == peer.rank && c.pointToPointSends) else { continue }
            var kept = 0, took = false
            for j in peer.earlyClears.indices {
                let f = peer.earlyClears[j]
                guard f.header.sequence == c.sequence else {
                    peer.earlyClears[kept] = f
                    kept += 1
                    continue
                }
                took = true
                if f.header.kind == .readyToSend { checkReadyToSend(c, from: peer.rank, f.header) } else { handleClear(c, from: peer.rank, f.header, target: f.target) }
            }
            peer.earlyClears.removeLast(peer.earlyClears.count - kept)
            if took { peer.earlyOperations -= 1 }
        }
    }

    /// Keeps a clear-to-send, clear-to-write or ready-to-send for an operation this rank has not
    /// started, until it does. The peer sends one only for an operation it has started and cannot
    /// finish without this rank, and it has at most `maxActive` operations started: frames for
    /// more operations than that are a protocol violation, not something to store without end.
    /// (How many frames one operation has is checked when it starts: one per message, no repeats.)
    func holdEarly(_ f: ControlFrame, from rank: Int) throws {
        let peer = peers[rank], seq = f.header.sequence
        if peer.earlyClears.last?.header.sequence != seq && !peer.earlyClears.contains(where: { $0.header.sequence == seq }) {
            guard peer.earlyOperations < config.maxActive else {
                throw ChannelError.protocolViolation("clears for more than \(config.maxActive) operations this rank has not started, "
                                                     + "and a rank has at most \(config.maxActive) started")
            }
            peer.earlyOperations += 1
        }
        peer.earlyClears.append(f)
    }

    /// Whether everything `c` exchanges with `peer` is a message from it already parked whole: a
    /// send between two ranks is over once written eagerly, so its sender may have left by the
    /// time the receive is posted.
    func arrivedWhole(_ c: ActiveCollective, from peer: PeerState) -> Bool {
        c.schedule.steps.allSatisfy { step in
            guard step.peer == Int32(peer.rank) && step.length > 0 else { return true }
            return step.kind == .recv && peer.parkedIndex(c.sequence, step.index).map { peer.parked[$0].complete } ?? false
        }
    }

    /// A step's cookie: the collective's number and the step, or for a point-to-point operation
    /// (one step) its number and the peer.
    @inline(__always) func cookie(_ c: ActiveCollective, _ step: Int) -> UInt64 {
        UInt64(c.sequence) << 32 | UInt64(c.pointToPointPeer >= 0 ? c.pointToPointPeer << 1 | (c.pointToPointSends ? 1 : 0) : step)
    }

    @inline(__always) static func p2pKey(_ peer: Int, _ seq: UInt32, sends: Bool) -> UInt64 {
        UInt64(peer) << 33 | (sends ? 1 << 32 : 0) | UInt64(seq)
    }

    /// The collective numbered `seq`, if in flight; with the high bit, the send to `peer`
    /// (`sends`: a clear-to-send came from it) or the receive from it (data came from it).
    @inline(__always) func collective(_ seq: UInt32, peer: Int, sends: Bool = false) -> ActiveCollective? {
        if seq & Engine.pointToPointBit != 0 {
            guard let c = p2pActive[Engine.p2pKey(peer, seq, sends: sends)], !c.finished else { return nil }
            return c
        }
        guard let c = slots[Int(seq % UInt32(config.maxActive))], c.sequence == seq, !c.finished else { return nil }
        return c
    }

    /// Whether `seq` (from `peer`) numbers an operation this rank has not started yet.
    @inline(__always) func isFuture(_ seq: UInt32, peer: Int, sends: Bool = false) -> Bool {
        let next = seq & Engine.pointToPointBit != 0 ? p2pActivated[peer * 2 + (sends ? 1 : 0)] : nextToActivate
        return (seq & ~Engine.pointToPointBit) &- next & ~Engine.pointToPointBit < 1 << 30
    }

    @inline(__always) func lookup(_ cookie: UInt64) -> (ActiveCollective, Int)? {
        let seq = UInt32(truncatingIfNeeded: cookie >> 32), low = Int(cookie & 0xFFFF_FFFF)
        if seq & Engine.pointToPointBit != 0 {
            guard let c = collective(seq, peer: low >> 1, sends: low & 1 == 1) else { return nil }
            return (c, 0)
        }
        guard let c = collective(seq, peer: -1) else { return nil }
        return (c, low)
    }

    /// Forgets a collective that finished or failed: its scratch goes back to the pool, its RDMA
    /// registrations of the caller's buffers go, and its sequence no longer finds it.
    func unregister(_ c: ActiveCollective) {
        if let s = c.scratch { scratchPool.append(s); c.scratch = nil }
        c.registrations.removeAll()
        if c.pointToPointPeer >= 0 {
            p2pActive[Engine.p2pKey(c.pointToPointPeer, c.sequence, sends: c.pointToPointSends)] = nil
        } else if slots[Int(c.sequence % UInt32(config.maxActive))] === c {
            slots[Int(c.sequence % UInt32(config.maxActive))] = nil
        }
    }

    func acquireScratch(_ bytes: Int) -> ScratchBuffer? {
        if let i = scratchPool.firstIndex(where: { $0.size >= bytes }) { return scratchPool.remove(at: i) }
        return ScratchBuffer(size: bytes, placement: config.placement)
    }

    // MARK: - Completion

    /// Marks a collective done and publishes what can be: collectives in issue order (each once
    /// every collective issued before it is done), sends and receives between two ranks as soon as
    /// they are done. Those stand outside the collective order, so a send that waits for its
    /// receiver never holds back the receive or collective the caller blocks on (with no eager
    /// send, as over RDMA, that receiver may post its receive only after this caller returns).
    func finish(_ c: ActiveCollective) {
        if c.finished { return }
        c.finished = true
        let record = FinishedOperation(sequence: c.sequence, schedule: c.shared)
        if c.pointToPointPeer < 0 {
            finished[Int(c.sequence) % finished.count] = record
        } else {
            peers[c.pointToPointPeer].recordFinished(record, sends: c.pointToPointSends)
        }
        unregister(c)
        var kept = 0, published = 0, blocked = false
        for k in 0..<order.count {
            let x = order[k]
            if x.finished && (!blocked || x.pointToPointPeer >= 0) {
                if published == 0 { completion.lock() }
                x.request.finished = true
                published += 1
                continue
            }
            if x.pointToPointPeer < 0 { blocked = true }
            if kept != k { order[kept] = x }
            kept += 1
        }
        if published > 0 {
            completion.unlock()
            completion.broadcast()
            order.removeLast(order.count - kept)
        }
        while !backlog.isEmpty && order.count < config.maxActive && broken == nil {
            activate(backlog.removeFirst())
        }
    }

    func publish(_ c: ActiveCollective, error: CollectiveError) {
        c.finished = true
        completion.lock()
        c.request.error = error
        c.request.finished = true
        completion.unlock()
        completion.broadcast()
    }

    // MARK: - Timers

    func checkTimers(_ now: UInt64) {
        heartbeat.add(1, ordering: .relaxed)
        checkSuspected(now)
        checkStalledLinks(now)
        for c in order where !c.finished && now >= c.deadline {
            fail(.timeout(seconds: Double(config.timeoutNanoseconds) / 1e9, operation: c.request.name, waitingFor: c.waitingFor),
                 notifyPeers: true)
            return
        }
        for p in pending.values where now >= p.deadline {
            dropPending(p, reason: "handshake with \(p.remote) did not finish within HFR_TIMEOUT")
            if p.phase != .awaitingHello {
                connectionLost(p.peer, channel: p.socket, "could not connect within HFR_TIMEOUT (\(p.remote))")
            }
        }
    }

    /// Closes every connection cleanly: what is queued (an abort frame, say) is flushed, the write
    /// side is shut down, and incoming bytes are read and dropped until the peer closes too, for at
    /// most `linger` nanoseconds. Closing with unread data would make the kernel reset the
    /// connection and destroy frames still in flight to the peer.
    func teardown(linger: UInt64) {
        for p in pending.values { dropPending(p, reason: nil) }
        releaseRDMA()
        epoll.remove(config.listenFD)
        if ownsListener {
            close(config.listenFD)
            ownsListener = false
        }
        var open: [TCPChannel] = []
        for peer in peers {
            for case let ch? in peer.channels where ch.isOpen {
                _ = try? ch.flush()
                Glibc.shutdown(ch.fd, Int32(SHUT_WR))
                open.append(ch)
            }
            peer.channels = peer.channels.map { _ in nil }
        }
        let deadline = MonotonicClock.nanoseconds() &+ linger
        var sink = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty && MonotonicClock.nanoseconds() < deadline {
            open.removeAll { ch in
                let n = sink.withUnsafeMutableBytes { recv(ch.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                return n == 0 || (n < 0 && Errno.current != .again && Errno.current != .interrupted)
            }
            if !open.isEmpty { usleep(1000) }
        }
        for ch in open { epoll.remove(ch.fd) }
    }
}
