import Glibc
import HFRSystem
import HFRTransport
import HFRKernels
import HFRCollectives
import HFRProgress
import HFRBootstrap
import HFRTopology
import HFRVerbs

/// A group of `size` processes that run collectives together; this process is `rank`.
///
/// Create one per process with the same root address and job token on every rank (or from the
/// launcher's environment with `fromEnvironment()`), call the same collectives in the same order
/// on every rank, and `destroy()` it at the end. Collectives may be issued from several threads,
/// but every rank must issue them in the same order; several communicators in one process are
/// independent of each other.
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The most ranks a communicator has (per-rank tables are allocated up front).
    public static let maxRanks = 1 << 20
    public let configuration: Configuration
    let engine: Engine
    let stateLock = ConditionLock()
    private var destroyed = false
    var schedules: [ScheduleKey: SharedSchedule] = [:]

    /// Schedules are pure functions of these; repeated collectives (every training step) reuse them.
    struct ScheduleKey: Hashable {
        /// The allreduce algorithm; nil for an all-to-all with equal counts.
        var algorithm: AllreduceAlgorithm?
        var count: Int
        var type: DataType
        var op: ReduceOp
        var inPlace: Bool
        var chunk: Int
    }

    func cachedSchedule(_ key: ScheduleKey, _ build: () -> Schedule) -> SharedSchedule {
        if let s = stateLock.withLock({ schedules[key] }) { return s }
        let s = SharedSchedule(build())
        stateLock.withLock {
            if schedules.count >= 256 { schedules.removeAll() }
            schedules[key] = s
        }
        return s
    }

    /// Joins the communicator: rendezvous through rank 0 at `root` (rank 0 listens there), then
    /// starts this rank's progress engine. Blocks until every rank has joined or `HFR_TIMEOUT` passes.
    public init(rank: Int, size: Int, root: SocketAddress, jobToken: UInt64,
                configuration: Configuration? = nil) throws(HFRError) {
        guard size >= 1 else { throw .invalidArgument("size is \(size); a communicator needs at least 1 rank") }
        guard size <= Communicator.maxRanks else { throw .invalidArgument("size is \(size); a communicator has at most \(Communicator.maxRanks) ranks") }
        guard rank >= 0 && rank < size else { throw .invalidArgument("rank is \(rank); it must be in 0..<\(size)") }
        guard root.port != 0 else { throw .invalidArgument("root address \(root) has port 0") }
        // hfrGetUniqueId's reserved listener, when rank 0's rendezvous did not use it.
        defer { if rank == 0 { RootReservation.release(root) } }
        let cfg: Configuration
        if let configuration { cfg = configuration } else { cfg = try Configuration.fromEnvironment() }
        try cfg.validate()
        self.rank = rank; self.size = size; self.configuration = cfg
        let timeout = UInt64(cfg.timeoutSeconds * 1e9)
        let deadline = MonotonicClock.nanoseconds() &+ timeout
        var listenFD: Int32 = -1
        // The NICs whose addresses this rank publishes: HFR_SOCKET_IFNAME's choice, or every usable
        // interface. A job whose rendezvous is on loopback runs on one host: it publishes nothing,
        // and rank 0 publishes the loopback address it sees each rank connect from.
        var chosen: [InterfaceAddress] = []
        let spec = Environment.string("HFR_SOCKET_IFNAME")
        if spec != nil || root.ip >> 24 != 127 {
            do {
                chosen = try InterfaceSelection.select(spec, from: InterfaceAddress.all())
            } catch {
                throw HFRError(.invalidArgument, "rank \(rank): \(error)")
            }
            if chosen.count > RankAddress.maxNICs { chosen = Array(chosen.prefix(RankAddress.maxNICs)) }
            Log.info(rank: rank, spec.map { "HFR_SOCKET_IFNAME=\($0) selects " } ?? "NICs (every up interface but loopback, docker, virbr and link-local; HFR_SOCKET_IFNAME narrows it): "
                     + chosen.map { "\($0.name) \(NICAddress(ip: $0.ip, prefixLength: $0.prefixLength))" }.joined(separator: ", "))
        } else {
            Log.info(rank: rank, "rendezvous on loopback (\(root)): one host, data over loopback (set HFR_SOCKET_IFNAME to use NICs)")
            if rank == 0, size > 1, Environment.string("HFR_ROOT") == nil, let name = Environment.string("MASTER_ADDR"),
               name != root.host, !name.hasPrefix("localhost") {
                // A host name that /etc/hosts maps to 127.0.1.1 (Debian's default for the
                // machine's own name) looks like another host's address to the other ranks.
                Log.warn(rank: rank, "MASTER_ADDR=\(name) is the loopback address \(root.host) here: rank 0 listens on loopback only, so ranks "
                         + "on other hosts cannot join (use an IP address, or a name that resolves to one)")
            }
        }
        // HCA ports for RDMA (HFR_TRANSPORT), published with the NICs.
        let hcaPorts = try TransportSelection.ports(cfg.transport, rank: rank)
        var connectOptions = ConnectOptions()
        if !hcaPorts.isEmpty {
            do { connectOptions = try ConnectOptions.fromEnvironment() } catch { throw HFRError(.invalidArgument, "rank \(rank): \(error)") }
        }
        let corruptRemoteKeys = Environment.string("HFR_IB_TEST_BAD_RKEY") == "1" && !hcaPorts.isEmpty
        if corruptRemoteKeys { Log.warn(rank: rank, "HFR_IB_TEST_BAD_RKEY=1: this rank corrupts the rkey of every RDMA write it posts (a test hook)") }
        let misnumberFragments = Environment.string("HFR_IB_TEST_BAD_FRAGMENT") == "1" && !hcaPorts.isEmpty
        if misnumberFragments { Log.warn(rank: rank, "HFR_IB_TEST_BAD_FRAGMENT=1: this rank misnumbers the fragment of every RDMA write it posts (a test hook)") }
        do {
            let listenIP: UInt32 = chosen.count == 1 ? chosen[0].ip : 0
            let (fd, bound) = try TCPSocket.listen(on: SocketAddress(ip: listenIP, port: 0), bufferBytes: cfg.socketBufferBytes)
            listenFD = fd
            let published = RankAddress(port: bound.port, nics: chosen.map { NICAddress(ip: $0.ip, prefixLength: $0.prefixLength) },
                                        hcaPorts: hcaPorts.count)
            let rv = try Rendezvous.run(rank: rank, size: size, root: root, jobToken: jobToken,
                                        listen: published, deadline: deadline)
            if cfg.transport == .ib, let other = rv.addresses.indices.first(where: { rv.addresses[$0].hcaPorts == 0 }) {
                throw HFRError(.systemError, "rank \(rank): HFR_TRANSPORT=ib, but rank \(other) has no ACTIVE HCA port (it would talk TCP)")
            }
            var ec = EngineConfiguration(rank: rank, ranks: size, jobToken: jobToken, commID: rv.commID,
                                         peerAddresses: rv.addresses, listenFD: fd)
            ec.verbsPorts = hcaPorts
            ec.connectOptions = connectOptions
            ec.corruptRemoteKeys = corruptRemoteKeys
            ec.misnumberFragments = misnumberFragments
            ec.cacheRegistrations = cfg.cacheRegistrations
            ec.nicNames = chosen.map(\.name)
            ec.placement = Communicator.placement(rank: rank, nics: chosen.isEmpty ? ["lo"] : chosen.map(\.name), workers: cfg.reduceThreads)
            ec.socketsPerPeer = cfg.socketsPerPeer
            ec.socketsPerLink = cfg.socketsPerLink ?? 1
            ec.socketBufferBytes = cfg.socketBufferBytes
            ec.fragmentBytes = cfg.fragmentBytes
            ec.maxQueuedBytesPerSocket = cfg.socketInflightBytes
            // No frame may exceed fragmentBytes, the largest a receiver takes.
            ec.linkFragmentBytes = min(cfg.linkFragmentBytes, cfg.fragmentBytes)
            ec.fragmentMinBytes = min(cfg.fragmentMinBytes, ec.linkFragmentBytes)
            ec.maxInflightFragments = cfg.maxInflightFragments
            ec.linkTimeoutNanoseconds = UInt64(cfg.linkTimeoutSeconds * 1e9)
            ec.inlineReduceBytes = cfg.inlineReduceBytes
            ec.streamingCopyBytes = cfg.streamingCopyBytes
            ec.reduceThreads = cfg.reduceThreads
            ec.timeoutNanoseconds = timeout
            ec.spinNanoseconds = UInt64(cfg.spinMicroseconds) * 1000
            ec.yieldWhilePolling = cfg.yieldWhilePolling
            ec.sleepMessageBytes = cfg.sleepMessageBytes
            ec.eagerMaxBytes = min(cfg.eagerMaxBytes, cfg.fragmentBytes)
            if cfg.eagerMaxBytes > cfg.fragmentBytes {
                Log.info(rank: rank, "eager messages up to \(cfg.fragmentBytes) B, not HFR_EAGER_MAX's \(cfg.eagerMaxBytes): an eager message is one frame, at most HFR_FRAGMENT_MAX")
            }
            ec.eagerCredits = cfg.eagerCredits
            engine = try Engine(ec)
            Log.info(rank: rank, "HFReduce \(hfreduceVersionString): rank \(rank) of \(size), transport \(hcaPorts.isEmpty ? "tcp" : "ib"), listening on \(rv.addresses[rank]), "
                     + "\(cfg.socketsPerPeer) socket(s) per peer (HFR_NSOCKS)\(hcaPorts.isEmpty ? "" : " over TCP, one control socket per RDMA link"), algorithm \(cfg.algorithm?.rawValue ?? "auto (2 ranks: doubling up to 1 MiB, then tree; more: doubling up to 64 KiB, then halving below 1 MiB for a power-of-two rank count, then tree)") (HFR_ALGO), "
                     + "timeout \(cfg.timeoutSeconds) s, \(cfg.reduceThreads) reduction thread(s), "
                     + (cfg.streamingCopyBytes > 0 ? "copies into outputs from \(cfg.streamingCopyBytes) B with non-temporal stores (HFR_STREAMING_COPY), " : "no non-temporal copies (HFR_STREAMING_COPY=0), ")
                     + (cfg.spinMicroseconds == 0 ? "every wait sleeps (HFR_SPIN=0)"
                        : cfg.yieldWhilePolling ? "waits poll and yield (more ranks than cores), asleep for messages of \(cfg.sleepMessageBytes) B or more on average (HFR_SLEEP_BYTES)"
                        : "waits poll (HFR_SPIN=\(cfg.spinMicroseconds) us)"))
            if !hcaPorts.isEmpty {
                Log.info(rank: rank, cfg.cacheRegistrations
                         ? "RDMA: callers' buffers stay registered after their collective (HFR_IB_REG_CACHE=1): memory freed and mapped again at the same address while cached would miss its data"
                         : "RDMA: callers' buffers are registered for each collective and released at its end (HFR_IB_REG_CACHE=0), so freeing or remapping them between collectives is safe; the engine's scratch stays registered")
            }
        } catch let e as RendezvousError {
            if listenFD >= 0 { close(listenFD) }
            throw HFRError(.systemError, e.description)
        } catch let e as HFRError {
            if listenFD >= 0 { close(listenFD) }
            throw e
        } catch {
            if listenFD >= 0 { close(listenFD) }
            throw HFRError(.systemError, "rank \(rank): cannot create the communicator: \(error)")
        }
    }

    /// Where this rank's progress and reduction threads run and its buffers live: the NUMA node of
    /// its (first) NIC, from hwloc, sharing the node's cores with the other ranks of this host
    /// (`LOCAL_RANK` / `LOCAL_WORLD_SIZE`, or Open MPI's and Slurm's equivalents). `HFR_NUMA_BIND=0`
    /// keeps the decision (logged) but applies nothing. A topology hwloc cannot read leaves the
    /// threads unplaced, with a warning.
    static func placement(rank: Int, nics: [String], workers: Int) -> Placement.Choice? {
        let launcherLocalRank = Configuration.launcherInt("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")
        let localRank = launcherLocalRank ?? 0
        // Without the count of this host's ranks, every rank would take the same cores; claiming
        // more ranks than cores makes each bind to the whole node instead.
        let localRanks = Configuration.launcherLocalRanks()
            ?? (launcherLocalRank == nil ? 1 : Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) + 1)
        do {
            let p = try Placement.forThisProcess(nics: nics, workers: workers, localRank: min(localRank, max(localRanks, 1) - 1),
                                                 localRanks: max(localRanks, 1))
            let c = p.primary
            Log.info(rank: rank, "placement (HFR_NUMA_BIND=\(c.bindingEnabled ? 1 : 0)): \(c.reason); progress thread on CPUs \(c.progressCPUs), "
                     + "reduction threads on \(c.workerCPUs.map(\.description).joined(separator: " / ")), buffers \(c.memoryPolicy)"
                     + (p.notes.isEmpty ? "" : "; " + p.notes.joined(separator: "; ")))
            return c
        } catch {
            Log.warn(rank: rank, "no thread or memory placement: \(error)")
            return nil
        }
    }

    /// Creates the communicator from the launcher's environment (torchrun/hfrun, mpirun or srun
    /// variables; HFR_ROOT or MASTER_ADDR/MASTER_PORT; HFR_JOB_TOKEN).
    public static func fromEnvironment() throws(HFRError) -> Communicator {
        let env: LaunchEnvironment
        do { env = try LaunchEnvironment.detect() } catch { throw .invalidArgument("\(error)") }
        Log.info(rank: env.rank, "rank \(env.rank) of \(env.size) from the \(env.source) environment, rendezvous at \(env.root)")
        return try Communicator(rank: env.rank, size: env.size, root: env.root, jobToken: env.jobToken)
    }

    deinit { destroy() }

    /// Completes pending collectives, then stops the progress thread and closes all connections.
    /// Later calls on this communicator fail with `invalidUsage`. Calling it twice is harmless.
    public func destroy() {
        let first: Bool = stateLock.withLock { defer { destroyed = true }; return !destroyed }
        if first { engine.shutdown() }
    }

    /// Fails pending collectives at once with `aborted`, tells the peers, and closes everything.
    /// Never waits for other ranks.
    public func abort() {
        stateLock.withLock { destroyed = true }
        // Also when destroy() is under way (waiting on a dead peer): the abort cuts it short.
        engine.abort("rank \(rank) aborted the communicator")
    }

    /// Bytes and frames each socket to each peer has carried so far (per NIC, through the local
    /// address), for diagnostics.
    public func linkStatistics() -> [ChannelStatistics] { engine.statistics() }

    /// Per HCA port (empty over TCP), the memory registrations its cache holds and the counts of
    /// registrations made, for diagnostics.
    public func registrationStatistics() -> [RegistrationStatistics] { engine.registrationStatistics() }

    /// The error that broke this communicator (a failed peer, a timeout), or nil while it is healthy.
    public var asyncError: HFRError? { engine.error.map(HFRError.init) }

    func checkAlive() throws(HFRError) {
        if isDestroyed { throw .invalidUsage("the communicator has been destroyed") }
        if let e = asyncError { throw e }
    }

    var isDestroyed: Bool { stateLock.withLock { destroyed } }

    /// Sums (or takes the product, minimum, maximum or average of) `count` elements of `type`
    /// across all ranks; every rank receives the result in `recv`. In place when `send == recv`.
    /// Blocks until done.
    public func allReduce(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType,
                          op: ReduceOp, algorithm: AllreduceAlgorithm? = nil) throws(HFRError) {
        try startAllReduce(send: send, recv: recv, count: count, type: type, op: op, algorithm: algorithm, willWait: true).wait()
    }

    /// Starts an allreduce and returns at once; the buffers must stay untouched until the request
    /// completes. Requests on one communicator complete in the order they were issued.
    public func allReduceAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType,
                               op: ReduceOp, algorithm: AllreduceAlgorithm? = nil) throws(HFRError) -> CollectiveRequest {
        try startAllReduce(send: send, recv: recv, count: count, type: type, op: op, algorithm: algorithm, willWait: false)
    }

    func startAllReduce(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType,
                        op: ReduceOp, algorithm: AllreduceAlgorithm?, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        let bytes = try Arguments.byteCount(count: count, type: type)
        try Arguments.checkBuffers(send: send, recv: recv, bytes: bytes)
        let algo = algorithm ?? configuration.algorithm(bytes: bytes, ranks: size)
        var shape = AllreduceShape(rank: rank, ranks: size, count: count, type: type, op: op,
                                   inPlace: send == UnsafeRawPointer(recv), chunkBytes: 0)
        shape.chunkBytes = configuration.chunk(bytes: bytes, ranks: size, algorithm: algo)
        let key = ScheduleKey(algorithm: algo, count: count, type: type, op: op, inPlace: shape.inPlace, chunk: shape.chunkBytes)
        let schedule = cachedSchedule(key) { AllreduceSchedule.build(algo, shape) }
        Log.trace(rank: rank, "allreduce of \(count) \(type) (\(bytes) B, \(op)) by \(algo), chunk \(shape.chunkBytes) B, \(schedule.schedule.steps.count) steps")
        if count == 0 { return try submitEmpty(signature: schedule.schedule.signature, "allreduce", willWait: willWait) }
        return try submit(schedule, "allreduce", type: type, op: op, send: send, recv: recv, willWait: willWait)
    }

    /// A collective called with a count of 0 moves no data, yet it still meets the other ranks:
    /// it runs as a barrier under the collective's own signature. A rank that passed another
    /// count, or called another collective, then fails with invalidUsage like every other rank,
    /// instead of waiting until HFR_TIMEOUT for messages that never come; when the ranks agree
    /// it costs one barrier. (A single rank has no one to disagree with: nothing to do.)
    func submitEmpty(signature: UInt32, _ name: String, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        var s = size == 1 ? ScheduleBuilder(ranks: 1).finish() : BarrierSchedule.build(rank: rank, ranks: size)
        s.signature = signature
        return try submitBarrier(s, name, willWait: willWait)
    }

    /// Submits a barrier-shaped schedule on two bytes of its own, kept alive by the request.
    func submitBarrier(_ schedule: Schedule, _ name: String, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        let token = BarrierBuffer()
        let request = try submit(schedule, name, type: .uint8, op: .max, send: UnsafeRawPointer(token.pointer), recv: token.pointer,
                                 willWait: willWait)
        request.request.keepAlive = token
        return request
    }

    /// Hands a schedule built for this call to the engine.
    func submit(_ schedule: Schedule, _ name: String, type: DataType, op: ReduceOp = .sum, send: UnsafeRawPointer?,
                recv: UnsafeMutableRawPointer?, willWait: Bool, pointToPoint peer: Int? = nil, sending: Bool = false) throws(HFRError) -> CollectiveRequest {
        try submit(SharedSchedule(schedule), name, type: type, op: op, send: send, recv: recv, willWait: willWait,
                   pointToPoint: peer, sending: sending)
    }

    /// Hands a schedule to the engine.
    func submit(_ schedule: SharedSchedule, _ name: String, type: DataType, op: ReduceOp = .sum, send: UnsafeRawPointer?,
                recv: UnsafeMutableRawPointer?, willWait: Bool, pointToPoint peer: Int? = nil, sending: Bool = false) throws(HFRError) -> CollectiveRequest {
        do {
            return CollectiveRequest(try engine.submit(schedule, name: name, type: type, op: op, send: send, recv: recv,
                                                       willWait: willWait, pointToPoint: peer, sending: sending))
        } catch { throw HFRError(error) }
    }
}

/// A collective in flight. `wait()` blocks until it completes (throwing its error); `test()`
/// says whether it has.
public final class CollectiveRequest: @unchecked Sendable {
    let request: Request
    init(_ r: Request) { request = r }

    /// Blocks until the collective completes; throws its error (naming the failed rank, if any).
    public func wait() throws(HFRError) {
        do { try request.wait() } catch { throw HFRError(error) }
    }

    /// True once the collective has completed or failed (then `wait()` throws the error).
    public func test() -> Bool { request.test() }

    /// Waits at most `seconds`: true when the collective completed (throws its error if it
    /// failed), false when it is still running.
    public func wait(timeout seconds: Double) throws(HFRError) -> Bool {
        let ns = seconds.isFinite && seconds > 0 ? UInt64(min(seconds, 1e9) * 1e9) : 0
        do { return try request.wait(forNanoseconds: ns) } catch { throw HFRError(error) }
    }
}
