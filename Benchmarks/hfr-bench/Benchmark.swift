import Glibc
import HFReduce

/// The measurement loops of both output formats, on one communicator, for one operation.
///
/// Every rank runs exactly the same sequence of collectives (the data calls plus a few small
/// agreement calls: a 1-element barrier before each timed loop, a float64 `max` of the per-rank
/// times and an int64 `sum` of the wrong-element counts), so the ranks never diverge.
final class Benchmark {
    /// Wrong elements this rank found itself, whatever the library sums them to.
    private(set) var ownWrong = 0
    let comm: Communicator
    let options: Options
    let algorithm: AllreduceAlgorithm?
    let report: Report
    let send: AlignedBuffer
    let recv: AlignedBuffer
    /// Small buffer for the agreement calls.
    let scratch: AlignedBuffer
    /// HFR_CORRUPT=1: perturb one element on the last rank after the first checked call.
    let corrupt: Bool
    let type: DataType
    let op: ReduceOp
    let operation: Operation
    /// Check data of the reductions: the peers contract's for allreduce with --peers-format.
    let pattern: CheckPattern
    /// Check data of the data movers: alltoall tags blocks by (source, destination).
    let blocks: BlockValues

    init(comm: Communicator, options: Options, report: Report, send: AlignedBuffer, recv: AlignedBuffer,
         scratch: AlignedBuffer) {
        self.comm = comm
        self.options = options
        self.algorithm = options.algorithm.flatMap(AllreduceAlgorithm.init(rawValue:))
        self.report = report
        self.send = send
        self.recv = recv
        self.scratch = scratch
        self.type = options.type
        self.op = options.op
        self.operation = options.operation
        self.pattern = CheckValues.pattern(type: options.type, op: options.op, rank: comm.rank, ranks: comm.size,
                                           peers: options.format == .peers)
        self.blocks = BlockValues(type: options.type,
                                  tags: options.operation == .alltoall ? comm.size * comm.size : comm.size)
        self.corrupt = getenv("HFR_CORRUPT").map { atoi($0) != 0 } ?? false
    }

    /// The message sizes in bytes: `-b`, `-b * f`, ... up to `-e`, each rounded down to a whole
    /// number of elements (0 when smaller than one element).
    static func sizes(_ o: Options) -> [Int] {
        var out: [Int] = []
        var size = o.minBytes
        while size <= o.maxBytes {
            out.append(size / o.type.size * o.type.size)
            if size > o.maxBytes / o.factor { break }
            size *= o.factor
        }
        return out
    }

    /// The workload of one nominal size (`-b`..`-e`) on the benchmark's buffers.
    func workload(bytes: Int) -> Workload {
        Workload(operation: operation, comm: comm, type: type, op: op, root: options.root, algorithm: algorithm,
                 blockCount: operation.blockCount(bytes: bytes, type: type, ranks: comm.size),
                 send: send.pointer, recv: recv.pointer, pattern: pattern, blocks: blocks)
    }

    /// The comment printed for a size below one element (per rank, for blocked operations).
    func skipped() {
        let per = operation.isBlocked ? " per rank" : ""
        report.comment("skipped a size below one \(type) element\(per) (\(type.size) B)")
    }

    // MARK: - Agreement calls

    /// A 1-element allreduce that every rank must reach before any leaves it.
    func barrier() throws {
        let p = scratch.pointer
        p.storeBytes(of: 1, as: Int32.self)
        try comm.allReduce(send: p, recv: p, count: 1, type: .int32, op: .sum)
    }

    /// Element-wise maximum over ranks.
    func agreeMax(_ values: [Double]) throws -> [Double] {
        let p = scratch.pointer.assumingMemoryBound(to: Double.self)
        for (i, v) in values.enumerated() { p[i] = v }
        try comm.allReduce(send: p, recv: p, count: values.count, type: .float64, op: .max)
        return (0..<values.count).map { p[$0] }
    }

    /// Element-wise sum over ranks.
    func agreeSum(_ values: [Int]) throws -> [Int] {
        ownWrong += values.reduce(0, +)
        let p = scratch.pointer.assumingMemoryBound(to: Int64.self)
        for (i, v) in values.enumerated() { p[i] = Int64(v) }
        try comm.allReduce(send: p, recv: p, count: values.count, type: .int64, op: .sum)
        return (0..<values.count).map { Int(p[$0]) }
    }

    /// A call on poisoned output, checked: the check after a timed loop. Checking the loop's own
    /// output would pass a library whose first timed call wrote the right data and later ones
    /// nothing (a stale registration, say): every call has the same input.
    func checkedCall(_ w: Workload, inPlace: Bool) throws -> Int {
        w.prepareCheck(inPlace: inPlace)
        try w.call(inPlace: inPlace)
        return w.wrong(inPlace: inPlace)
    }

    /// `iters` back-to-back calls after a barrier: the mean time per call on this rank, in seconds.
    func timed(_ w: Workload, inPlace: Bool, iters: Int) throws -> Double {
        try barrier()
        let t0 = now()
        for _ in 0..<iters { try w.call(inPlace: inPlace) }
        return (now() - t0) / Double(iters)
    }

    /// Self-test of the checker (HFR_CORRUPT=1): perturbs one output element on the last rank.
    func maybeCorrupt(_ w: Workload, inPlace: Bool) {
        guard corrupt, comm.rank == comm.size - 1 else { return }
        w.corrupt(inPlace: inPlace)
    }

    // MARK: - nccl-tests format

    /// nccl-tests' `*_perf`: per size, out-of-place then in-place (not for sendrecv, see
    /// `Operation.hasInPlace`); `-w` warm-ups and `-n` timed calls each. With `-c 1` a checked
    /// call on poisoned output precedes the loop and another follows it (`checkedCall`).
    func runNcclTests(algorithmName: String) throws {
        let o = options
        report.ncclHeader(o, ranks: comm.size, algorithm: algorithmName)

        for bytes in Self.sizes(o) {
            let w = workload(bytes: bytes)
            guard w.blockCount > 0 else { skipped(); continue }
            var seconds = [0.0, 0.0]
            var wrong = [0, 0]
            for (k, inPlace) in [false, true].enumerated() where !inPlace || operation.hasInPlace {
                if o.check {
                    w.prepareCheck(inPlace: inPlace)
                    try w.call(inPlace: inPlace)
                    maybeCorrupt(w, inPlace: inPlace)
                    wrong[k] += w.wrong(inPlace: inPlace)
                }
                w.prepareTiming(inPlace: inPlace)
                for _ in 0..<o.warmup { try w.call(inPlace: inPlace) }
                seconds[k] = try timed(w, inPlace: inPlace, iters: o.iters)
                if o.check { wrong[k] += try checkedCall(w, inPlace: inPlace) }
            }
            let agreed = try agreeMax(seconds)
            let totalWrong: [Int?] = o.check ? try agreeSum(wrong).map { $0 } : [nil, nil]
            report.ncclRow(bytes: w.reportedBytes, count: w.reportedCount, ranks: comm.size,
                           outOfPlace: Measurement(seconds: agreed[0], wrong: totalWrong[0]),
                           inPlace: operation.hasInPlace ? Measurement(seconds: agreed[1], wrong: totalWrong[1]) : nil)
        }
        report.ncclFooter()
    }

    // MARK: - peers format

    /// The method of ../shared/peers/mpi_allreduce.c and mpi_alltoall.c: a checked first call on
    /// poisoned output (its time bounds the warm-up count), warm-ups that estimate the time per
    /// call, `iters` chosen so a repetition lasts `--min-time`, `-r` repetitions (each the max
    /// over ranks of the mean per call), the median reported, and a second checked call on
    /// poisoned output after them (`checkedCall`).
    func runPeers(algorithmName: String) throws {
        let o = options
        let inPlace = o.inPlace
        report.peersHeader(o, ranks: comm.size, algorithm: algorithmName, host: hostName(),
                           placement: try placement())

        for bytes in Self.sizes(o) {
            let w = workload(bytes: bytes)
            guard w.blockCount > 0 else { skipped(); continue }
            var wrong = 0

            // 1. The first (cold) call, checked.
            w.prepareCheck(inPlace: inPlace)
            try barrier()
            var t0 = now()
            try w.call(inPlace: inPlace)
            let first = try agreeMax([now() - t0])[0]
            maybeCorrupt(w, inPlace: inPlace)
            if o.check { wrong += w.wrong(inPlace: inPlace) }

            // 2. Warm-up: at most -w calls, fewer when one call is slow; estimates the time per call.
            let warmups = max(1, min(o.warmup, Int((o.minTime / Swift.max(first, 1e-9)).rounded(.up))))
            try barrier()
            t0 = now()
            for _ in 0..<warmups { try w.call(inPlace: inPlace) }
            let estimate = try agreeMax([(now() - t0) / Double(warmups)])[0]
            let wanted = (o.minTime / Swift.max(estimate, 1e-9)).rounded(.up)
            let iters = wanted >= Double(o.maxIters) ? o.maxIters : Swift.max(o.iters, Int(wanted))

            // 3. Timed repetitions.
            var times: [Double] = []
            for _ in 0..<o.reps {
                let t = try timed(w, inPlace: inPlace, iters: iters)
                times.append(try agreeMax([t])[0])
            }

            // 4. Second check: a fresh call on poisoned output.
            if o.check { wrong += try checkedCall(w, inPlace: inPlace) }
            wrong = try agreeSum([wrong])[0]

            report.peersRow(bytes: w.reportedBytes, count: w.blockCount, factor: operation.busFactor(comm.size),
                            times: times.sorted(), iters: iters, wrong: wrong)
        }
        report.peersFooter(label: o.label)
    }

    /// Every rank's `host/net:[inode]`, gathered through a uint8 sum over one zeroed slot per rank.
    func placement() throws -> [String] {
        let slot = 128
        let me = Array((hostName() + "/" + netNamespace()).utf8.prefix(slot - 1))
        guard let buf = AlignedBuffer(byteCount: slot * comm.size) else { return [] }
        let p = buf.pointer.assumingMemoryBound(to: UInt8.self)
        for (i, b) in me.enumerated() { p[comm.rank * slot + i] = b }
        try comm.allReduce(send: p, recv: p, count: slot * comm.size, type: .uint8, op: .sum)
        return (0..<comm.size).map { r in
            let bytes = UnsafeBufferPointer(start: p + r * slot, count: slot).prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// This machine's host name.
func hostName() -> String {
    var name = [CChar](repeating: 0, count: 256)
    guard gethostname(&name, name.count - 1) == 0 else { return "?" }
    return String(cString: name)
}

/// The network namespace, as `/proc/self/ns/net` names it (`net:[4026531840]`).
func netNamespace() -> String {
    var buf = [CChar](repeating: 0, count: 64)
    let n = readlink("/proc/self/ns/net", &buf, buf.count - 1)
    guard n > 0 else { return "?" }
    buf[n] = 0
    return String(cString: buf)
}
