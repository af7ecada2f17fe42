import Glibc
import HFRSystem
import HFRCollectives

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

    /// `HFR_EAGER_MAX`: messages up to this size are sent before the receiver's clear-to-send
    /// (one network hop saved); 0 turns it off.
    public var eagerMaxBytes = 64 << 10
    /// `HFR_EAGER_CREDITS`: eager messages per peer in flight before a clear-to-send returns credit.
    public var eagerCredits = 4

    public init() {}

    static func defaultSpin() -> Int { 50 }


    /// True when this host runs more ranks (LOCAL_WORLD_SIZE) than it has cores.
    static func oversubscribed() -> Bool {
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let local = Environment.string("LOCAL_WORLD_SIZE").flatMap { Int($0) } ?? 1
        return local > cores
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
                guard (1...64).contains(v) else { throw ConfigurationError("HFR_NSOCKS=\(v) is outside 1...64") }
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
                guard let v = Double(s), v > 0, v <= 1e7 else { throw ConfigurationError("HFR_TIMEOUT=\(s) is not a positive number of seconds") }
                c.timeoutSeconds = v
            }
            if let v = try Environment.bytes("HFR_CHUNK_SIZE") {
                guard v == 0 || (4096...(64 << 20)).contains(v) else { throw ConfigurationError("HFR_CHUNK_SIZE=\(v) is outside 4K...64M") }
                c.chunkBytes = v
            }
            if let v = try Environment.bytes("HFR_FRAGMENT_MAX") {
                guard (4096...(64 << 20)).contains(v) else { throw ConfigurationError("HFR_FRAGMENT_MAX=\(v) is outside 4K...64M") }
                c.fragmentBytes = v
                c.linkFragmentBytes = v
            }
            if let v = try Environment.bytes("HFR_FRAGMENT_MIN") {
                guard (4096...(64 << 20)).contains(v) else { throw ConfigurationError("HFR_FRAGMENT_MIN=\(v) is outside 4K...64M") }
                c.fragmentMinBytes = v
            }
            if let v = try Environment.int("HFR_MAX_INFLIGHT") {
                guard (1...1024).contains(v) else { throw ConfigurationError("HFR_MAX_INFLIGHT=\(v) is outside 1...1024") }
                c.maxInflightFragments = v
            }
            if let s = Environment.string("HFR_LINK_TIMEOUT") {
                guard let v = Double(s), v > 0, v <= 3600 else { throw ConfigurationError("HFR_LINK_TIMEOUT=\(s) is not a number of seconds in (0, 3600]") }
                c.linkTimeoutSeconds = v
            }
            if let s = Environment.string("HFR_NUMA_BIND"), s != "0" && s != "1" {
                throw ConfigurationError("HFR_NUMA_BIND=\(s): use 1 (pin threads and bind buffers to the NIC's NUMA node, the default) or 0 (neither)")
            }
            if let v = try Environment.int("HFR_REDUCE_THREADS") {
                guard (0...64).contains(v) else { throw ConfigurationError("HFR_REDUCE_THREADS=\(v) is outside 0...64") }
                c.reduceThreads = v
            }
            if let v = try Environment.bytes("HFR_INLINE_REDUCE") { c.inlineReduceBytes = v }
            if let v = try Environment.bytes("HFR_EAGER_MAX") {
                guard v <= 16 << 20 else { throw ConfigurationError("HFR_EAGER_MAX=\(v) is above 16M") }
                c.eagerMaxBytes = v
            }
            if let v = try Environment.int("HFR_EAGER_CREDITS") {
                guard (1...1024).contains(v) else { throw ConfigurationError("HFR_EAGER_CREDITS=\(v) is outside 1...1024") }
                c.eagerCredits = v
            }
            if let v = try Environment.int("HFR_SPIN_YIELD") { c.yieldWhilePolling = v != 0 }
            if let v = try Environment.int("HFR_SPIN") {
                guard v >= 0 else { throw ConfigurationError("HFR_SPIN=\(v) must not be negative") }
                c.spinMicroseconds = v
            }
            if let v = try Environment.bytes("HFR_SOCKET_BUFFER") { c.socketBufferBytes = v }
            if let v = try Environment.bytes("HFR_SOCKET_INFLIGHT") {
                guard v >= 4096 else { throw ConfigurationError("HFR_SOCKET_INFLIGHT=\(v) is below 4K") }
                c.socketInflightBytes = v
            }
            if Environment.string("HFR_FRAGMENT_MIN") == nil { c.fragmentMinBytes = min(c.fragmentMinBytes, c.linkFragmentBytes) }
            if c.fragmentMinBytes > c.linkFragmentBytes {
                throw ConfigurationError("HFR_FRAGMENT_MIN=\(c.fragmentMinBytes) is above the largest fragment, \(c.linkFragmentBytes) (HFR_FRAGMENT_MAX; 64K over several links when unset)")
            }
        } catch let e as ConfigurationError {
            throw HFRError.invalidArgument(e.description)
        } catch {
            throw HFRError(.internalError, "\(error)")
        }
        return c
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
