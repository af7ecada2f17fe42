import HFReduce

/// The collectives hfr-bench measures: the first positional argument.
///
/// Sizes and bandwidths follow nccl-tests (`PERFORMANCE.md` and each `*_perf`'s
/// `GetCollByteCount`/`GetBw`):
/// - `size` is the bytes of the largest buffer a rank uses; `count` is its elements. For
///   allgather, reducescatter and alltoall that is the whole `n`-block buffer (`n` times the
///   per-rank block); for the others it is the one message.
/// - `algbw = size / time`; `busbw = algbw * busFactor(n)`.
enum Operation: String, CaseIterable {
    case allreduce, broadcast, reduce, allgather, reducescatter, alltoall, sendrecv

    /// Accepts the plain names and nccl-tests' spellings (`all_reduce`, `reduce_scatter`,
    /// `all_gather`, `all_to_all`, `send_recv`), in any case.
    init?(name: String) {
        let plain = String(name.lowercased().filter { $0 != "_" && $0 != "-" })
        self.init(rawValue: plain)
    }

    /// The valid names, for messages.
    static var names: String { allCases.map(\.rawValue).joined(separator: " ") }

    /// nccl-tests' bus-bandwidth factor: 2(n-1)/n for allreduce, (n-1)/n for allgather,
    /// reducescatter and alltoall, 1 for broadcast, reduce and sendrecv.
    func busFactor(_ n: Int) -> Double {
        switch self {
        case .allreduce: return 2 * Double(n - 1) / Double(n)
        case .allgather, .reducescatter, .alltoall: return Double(n - 1) / Double(n)
        case .broadcast, .reduce, .sendrecv: return 1
        }
    }

    /// Whether `-r` names a root (the `root` column prints it; -1 otherwise).
    var isRooted: Bool { self == .broadcast || self == .reduce }

    /// Whether `-o` applies (the `redop` column prints `none` otherwise).
    var reduces: Bool { self == .allreduce || self == .reduce || self == .reducescatter }

    /// Whether there is an in-place form. sendrecv has none: nccl-tests' in-place sendrecv sends
    /// from and receives into one buffer at once, two requests in flight on the same memory,
    /// whose result depends on which one the transport serves first (HFReduce typically
    /// receives before it reads the outgoing data, so a rank forwards its left neighbour's
    /// message). Its in-place columns print N/A.
    var hasInPlace: Bool { self != .sendrecv }

    /// Whether the reported buffer holds one block per rank (`size` = n * block bytes).
    var isBlocked: Bool { self == .allgather || self == .reducescatter || self == .alltoall }

    /// The elements of one rank's block for a nominal size of `bytes` (`-b`..`-e`), rounded
    /// down; 0 when the size is below one element (one element per rank for blocked ops).
    func blockCount(bytes: Int, type: DataType, ranks: Int) -> Int {
        bytes / type.size / (isBlocked ? ranks : 1)
    }

    /// The elements of the buffer nccl-tests reports for a block of `blockCount` elements.
    func reportedCount(blockCount: Int, ranks: Int) -> Int {
        blockCount * (isBlocked ? ranks : 1)
    }
}
