import Glibc
import HFRSystem
import HFRCollectives
import HFRTopology

/// Tuning and behaviour, read from `HFR_*` environment variables (README lists them with defaults).
public struct Configuration: Sendable {
    /// `HFR_TRANSPORT`: tcp, ib (RDMA over ibverbs) or auto (ib when an ACTIVE HCA port exists).
    public var transport = TransportChoice.auto
    /// `HFR_NSOCKS`: TCP sockets per peer.
    public var socketsPerPeer = 2
    /// `HFR_NSOCKS` when set: also the sockets per link of a peer over several links (else 1).
    public var socketsPerLink: Int?
    /// `HFR_ALGO`: tree, ring, doubling, halving, or nil for automatic choice by size and rank count.
    public var algorithm: AllreduceAlgorithm?
    /// `HFR_TIMEOUT` (seconds): deadline of every collective, connection and rendezvous.
    public var timeoutSeconds: Double = 300
    /// `HFR_CHUNK_SIZE`: pipeline chunk of the allreduce algorithms (0: chosen by size).
    public var chunkBytes = 0
    /// `HFR_FRAGMENT_MAX`: largest fragment on the wire.
    public var fragmentBytes = 512 << 10
    /// `HFR_REDUCE_THREADS`: CPU reduction worker threads per communicator.
    public var reduceThreads = 1
    /// `HFR_INLINE_REDUCE`: reductions up to this size run on the progress thread.
    public var inlineReduceBytes = 256 << 10
    /// `HFR_STREAMING_COPY`: copies into a collective's output of at least this size use
    /// non-temporal stores (0: never).
    public var streamingCopyBytes = 8 << 20
    /// `HFR_SOCKET_BUFFER`: SO_SNDBUF/SO_RCVBUF per socket (0: kernel autotuning).
    public var socketBufferBytes = 0
    /// `HFR_SOCKET_INFLIGHT`: payload bytes queued per socket ahead of the kernel.
    public var socketInflightBytes = 2 << 20
    /// `HFR_FRAGMENT_MAX` when set, else 64 KiB: the largest fragment when a peer has several links.
    public var linkFragmentBytes = 64 << 10
    /// `HFR_FRAGMENT_MIN`: smallest fragment a message is cut into when a peer has several links.
    public var fragmentMinBytes = 32 << 10
    /// `HFR_MAX_INFLIGHT`: fragments per link sent and not yet acknowledged by the receiver
    /// (peers with several links).
    public var maxInflightFragments = 4
    /// `HFR_LINK_TIMEOUT` (seconds): a link whose receiver acknowledges nothing for this long
    /// while fragments are in flight is declared down and its fragments go to the other links.
    public var linkTimeoutSeconds: Double = 2

    /// `HFR_SPIN` (microseconds): the progress thread polls instead of sleeping while collectives
    /// are in flight and for this long after, and a caller blocked in a collective drives the
    /// event loop itself; 0 turns both off (every wait sleeps). Default 50.
    public var spinMicroseconds = Configuration.defaultSpin()
    /// `HFR_SPIN_YIELD`: the polling progress thread calls sched_yield between polls. Default:
    /// on when this host's ranks outnumber its cores.
    public var yieldWhilePolling = Configuration.oversubscribed()
    /// `HFR_SLEEP_BYTES`: with `HFR_SPIN_YIELD` on, a collective whose messages average at least
    /// this many bytes, and whose fragments (`HFR_FRAGMENT_MAX`) are as large, is waited for
    /// asleep (the caller on a condition, the progress thread in epoll_wait) instead of polling:
    /// on a host with more ranks than cores a polling rank takes the core from the ranks whose
    /// copies it waits for. 0: always poll. Default 512K.
    public var sleepMessageBytes = 512 << 10

    /// `HFR_IB_REG_CACHE`: over RDMA, keep the registrations of callers' buffers after their
    /// collective (cached, least recently used out) instead of releasing them at its end. Only
    /// for programs that never free or remap memory they passed to a collective while the
    /// communicator lives: an HCA keeps writing into the pages it registered, so a buffer freed
    /// and mapped again at the same address would miss its data. Default false.
    public var cacheRegistrations = false

    /// `HFR_EAGER_MAX`: messages up to this size are sent before the receiver's clear-to-send
    /// (one network hop saved); 0 turns it off.
    public var eagerMaxBytes = 64 << 10
    /// `HFR_EAGER_CREDITS`: eager messages per peer in flight before a clear-to-send returns credit.
    public var eagerCredits = 4

    public init() {}

    static func defaultSpin() -> Int { 50 }


    /// The first of `names` set to an integer (the launchers' names for one thing).
    static func launcherInt(_ names: String...) -> Int? {
        names.lazy.compactMap { Environment.string($0).flatMap { Int($0) } }.first
    }

    /// This host's rank count as the launcher gives it: torchrun/hfrun, Open MPI, Slurm.
    static func launcherLocalRanks() -> Int? {
        launcherInt("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
    }

    /// True when this host runs more ranks (`launcherLocalRanks`) than this process may use
    /// cores (its CPU affinity: taskset, cgroup cpusets).
    static func oversubscribed() -> Bool {
        let cores = (try? ThreadPinning.processAffinity().count).flatMap { $0 > 0 ? $0 : nil }
            ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return (launcherLocalRanks() ?? 1) > cores
    }

    /// Reads every `HFR_*` setting; a value that does not parse is an error naming the variable.
    public static func fromEnvironment() throws(HFRError) -> Configuration {
        var c = Configuration()
        do {
            if let s = Environment.string("HFR_TRANSPORT") {
                guard let t = TransportChoice(rawValue: s.lowercased()) else {
                    throw ConfigurationError("HFR_TRANSPORT=\(s) is not one of tcp, ib, auto")
                }
                c.transport = t
            }
            if let v = try Environment.int("HFR_NSOCKS") {
                c.socketsPerPeer = v
                c.socketsPerLink = v
            }
            if let s = Environment.string("HFR_ALGO") {
                switch s.lowercased() {
                case "auto": c.algorithm = nil
                case "tree": c.algorithm = .tree
                case "ring": c.algorithm = .ring
                case "doubling": c.algorithm = .doubling
                case "halving": c.algorithm = .halving
                default: throw ConfigurationError("HFR_ALGO=\(s) is not one of tree, ring, doubling, halving, auto")
                }
            }
            if let s = Environment.string("HFR_TIMEOUT") {
                guard let v = Double(s) else { throw ConfigurationError("HFR_TIMEOUT=\(s) is not a number of seconds") }
                c.timeoutSeconds = v
            }
            if let v = try Environment.bytes("HFR_CHUNK_SIZE") {
                c.chunkBytes = v
            }
            if let v = try Environment.bytes("HFR_FRAGMENT_MAX") {
                c.fragmentBytes = v
                c.linkFragmentBytes = v
            }
            if let v = try Environment.bytes("HFR_FRAGMENT_MIN") {
                c.fragmentMinBytes = v
            }
            if let v = try Environment.int("HFR_MAX_INFLIGHT") {
                c.maxInflightFragments = v
            }
            if let s = Environment.string("HFR_LINK_TIMEOUT") {
                guard let v = Double(s) else { throw ConfigurationError("HFR_LINK_TIMEOUT=\(s) is not a number of seconds") }
                c.linkTimeoutSeconds = v
            }
            if let s = Environment.string("HFR_NUMA_BIND"), s != "0" && s != "1" {
                throw ConfigurationError("HFR_NUMA_BIND=\(s): use 1 (pin threads and bind buffers to the NIC's NUMA node, the default) or 0 (neither)")
            }
            if let v = try Environment.int("HFR_REDUCE_THREADS") {
                c.reduceThreads = v
            }
            if let v = try Environment.bytes("HFR_INLINE_REDUCE") { c.inlineReduceBytes = v }
            if let v = try Environment.bytes("HFR_STREAMING_COPY") { c.streamingCopyBytes = v }
            if let s = Environment.string("HFR_IB_REG_CACHE") {
                guard s == "0" || s == "1" else {
                    throw ConfigurationError("HFR_IB_REG_CACHE=\(s): use 0 (register callers' buffers per collective, the default) or 1 (keep them registered)")
                }
                c.cacheRegistrations = s == "1"
            }
            if let v = try Environment.bytes("HFR_EAGER_MAX") {
                c.eagerMaxBytes = v
            }
            if let v = try Environment.int("HFR_EAGER_CREDITS") {
                c.eagerCredits = v
            }
            if let s = Environment.string("HFR_DEBUG"), LogLevel(name: s) == nil {
                throw ConfigurationError("HFR_DEBUG=\(s) is not one of NONE, WARN, INFO, TRACE")
            }
            if let v = try Environment.int("HFR_SPIN_YIELD") {
                guard v == 0 || v == 1 else { throw ConfigurationError("HFR_SPIN_YIELD=\(v): use 0 (poll without yielding) or 1 (yield between polls)") }
                c.yieldWhilePolling = v == 1
            }
            if let v = try Environment.int("HFR_SPIN") { c.spinMicroseconds = v }
            if let v = try Environment.bytes("HFR_SLEEP_BYTES") { c.sleepMessageBytes = v }
            if let v = try Environment.bytes("HFR_SOCKET_BUFFER") { c.socketBufferBytes = v }
            if let v = try Environment.bytes("HFR_SOCKET_INFLIGHT") { c.socketInflightBytes = v }
            if Environment.string("HFR_FRAGMENT_MIN") == nil { c.fragmentMinBytes = min(c.fragmentMinBytes, c.linkFragmentBytes) }
            try c.checkRanges()
        } catch let e as ConfigurationError {
            throw HFRError.invalidArgument(e.description)
        } catch {
            throw HFRError(.internalError, "\(error)")
        }
        return c
    }

    /// Checks every setting against its range; an error names the environment variable (and the
    /// property) and the value. `Communicator` calls it on every configuration, also one built
    /// in code, so a bad value is refused before anything is started.
    public func validate() throws(HFRError) {
        do { try checkRanges() } catch { throw .invalidArgument(error.description) }
    }

    private func checkRanges() throws(ConfigurationError) {
        func within<T: Comparable>(_ v: T, _ r: ClosedRange<T>, _ name: String, _ property: String, _ shown: String) throws(ConfigurationError) {
            guard r.contains(v) else { throw ConfigurationError("\(name) (\(property)) is \(v); it must be in \(shown)") }
        }
        try within(socketsPerPeer, 1...64, "HFR_NSOCKS", "socketsPerPeer", "1...64")
        if let socketsPerLink { try within(socketsPerLink, 1...64, "HFR_NSOCKS", "socketsPerLink", "1...64") }
        guard timeoutSeconds > 0 && timeoutSeconds <= 1e7 else {  // also refuses NaN
            throw ConfigurationError("HFR_TIMEOUT (timeoutSeconds) is \(timeoutSeconds); it must be a number of seconds in (0, 1e7]")
        }
        if chunkBytes != 0 { try within(chunkBytes, 4096...(64 << 20), "HFR_CHUNK_SIZE", "chunkBytes", "0 (automatic) or 4K...64M") }
        try within(fragmentBytes, 4096...(64 << 20), "HFR_FRAGMENT_MAX", "fragmentBytes", "4K...64M")
        try within(linkFragmentBytes, 4096...(64 << 20), "HFR_FRAGMENT_MAX", "linkFragmentBytes", "4K...64M")
        try within(fragmentMinBytes, 4096...(64 << 20), "HFR_FRAGMENT_MIN", "fragmentMinBytes", "4K...64M")
        // Fragments over TCP fall on a 4 KiB grid, which lets the receiver refuse one that
        // repeats bytes of another.
        for (v, name, property) in [(fragmentBytes, "HFR_FRAGMENT_MAX", "fragmentBytes"), (linkFragmentBytes, "HFR_FRAGMENT_MAX", "linkFragmentBytes"),
                                    (fragmentMinBytes, "HFR_FRAGMENT_MIN", "fragmentMinBytes")] where v % 4096 != 0 {
            throw ConfigurationError("\(name) (\(property)) is \(v); it must be a multiple of 4K")
        }
        if fragmentMinBytes > linkFragmentBytes {
            throw ConfigurationError("HFR_FRAGMENT_MIN=\(fragmentMinBytes) is above the largest fragment, \(linkFragmentBytes) (HFR_FRAGMENT_MAX; 64K over several links when unset)")
        }
        try within(maxInflightFragments, 1...1024, "HFR_MAX_INFLIGHT", "maxInflightFragments", "1...1024")
        guard linkTimeoutSeconds > 0 && linkTimeoutSeconds <= 3600 else {
            throw ConfigurationError("HFR_LINK_TIMEOUT (linkTimeoutSeconds) is \(linkTimeoutSeconds); it must be a number of seconds in (0, 3600]")
        }
        try within(reduceThreads, 0...64, "HFR_REDUCE_THREADS", "reduceThreads", "0...64")
        try within(inlineReduceBytes, 0...Int.max, "HFR_INLINE_REDUCE", "inlineReduceBytes", "0 or more bytes")
        try within(streamingCopyBytes, 0...Int.max, "HFR_STREAMING_COPY", "streamingCopyBytes", "0 or more bytes")
        try within(eagerMaxBytes, 0...(16 << 20), "HFR_EAGER_MAX", "eagerMaxBytes", "0...16M")
        try within(eagerCredits, 1...256, "HFR_EAGER_CREDITS", "eagerCredits", "1...256")
        if eagerCredits * eagerMaxBytes > 64 << 20 {
            throw ConfigurationError("HFR_EAGER_CREDITS x HFR_EAGER_MAX (eagerCredits x eagerMaxBytes) is \(eagerCredits) x \(eagerMaxBytes): "
                                     + "the pool each peer parks early messages in would pass 64M")
        }
        try within(spinMicroseconds, 0...10_000_000, "HFR_SPIN", "spinMicroseconds", "0...10000000 (10 s)")
        try within(sleepMessageBytes, 0...(1 << 40), "HFR_SLEEP_BYTES", "sleepMessageBytes", "0 (always poll)...1T")
        try within(socketBufferBytes, 0...(1 << 30), "HFR_SOCKET_BUFFER", "socketBufferBytes", "0 (kernel autotuning)...1G")
        try within(socketInflightBytes, 4096...(1 << 30), "HFR_SOCKET_INFLIGHT", "socketInflightBytes", "4K...1G")
    }

    /// The algorithm for one allreduce: the explicit choice, else by size and rank count, from
    /// the loopback measurements in Benchmarks/README.md. Two ranks: one whole-buffer exchange
    /// (doubling) up to 1 MiB, then the pipelined double binary tree. More ranks: doubling up to
    /// 64 KiB (fewest hops); then, for a power-of-two rank count, halving-doubling below 1 MiB
    /// (least data and reduction work per rank in log2(n) steps); then the tree (its balanced
    /// 4-rank shape beats halving from 2 MiB, and with other rank counts halving's fold step
    /// makes the tree as fast from 128 KiB and faster from 1 MiB).
    func algorithm(bytes: Int, ranks: Int) -> AllreduceAlgorithm {
        if let algorithm { return algorithm }
        if ranks <= 2 { return bytes <= 1 << 20 ? .doubling : .tree }
        if bytes <= 64 << 10 { return .doubling }
        if ranks & (ranks - 1) == 0 && bytes < 1 << 20 { return .halving }
        return .tree
    }

    /// The pipeline chunk for one allreduce.
    func chunk(bytes: Int, ranks: Int, algorithm: AllreduceAlgorithm) -> Int {
        if chunkBytes > 0 { return chunkBytes }
        switch algorithm {
        // 256 KiB chunks keep a chunk's reduction in the core's L2 cache: measured 10-30% faster
        // than 1 MiB chunks from 1 to 64 MiB, at 2, 3 and 4 ranks.
        case .tree: return min(max(bytes / 4, 64 << 10), 256 << 10)
        case .ring: return min(max(bytes / (ranks * 4), 64 << 10), 1 << 20)
        case .halving: return max(bytes, 1)
        case .doubling: return bytes <= 256 << 10 ? max(bytes, 1) : min(max(bytes / 4, 128 << 10), 512 << 10)
        }
    }
}
