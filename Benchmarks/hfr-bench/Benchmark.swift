import Glibc
import HFReduce

/// The measurement loops of both output formats, on one communicator.
///
/// Every rank runs exactly the same sequence of collectives (the data calls plus a few small
/// agreement calls: a 1-element barrier before each timed loop, a float64 `max` of the per-rank
/// times and an int64 `sum` of the wrong-element counts), so the ranks never diverge.
final class Benchmark {
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

    // MARK: - Calls

    @inline(__always)
    func allReduce(_ s: UnsafeRawPointer, _ r: UnsafeMutableRawPointer, _ count: Int) throws {
        try comm.allReduce(send: s, recv: r, count: count, type: type, op: op, algorithm: algorithm)
    }

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
        let p = scratch.pointer.assumingMemoryBound(to: Int64.self)
        for (i, v) in values.enumerated() { p[i] = Int64(v) }
        try comm.allReduce(send: p, recv: p, count: values.count, type: .int64, op: .sum)
        return (0..<values.count).map { Int(p[$0]) }
    }

    /// `iters` back-to-back calls after a barrier: the mean time per call on this rank, in seconds.
    func timed(_ s: UnsafeRawPointer, _ r: UnsafeMutableRawPointer, count: Int, iters: Int) throws -> Double {
        try barrier()
        let t0 = now()
        for _ in 0..<iters {
            try comm.allReduce(send: s, recv: r, count: count, type: type, op: op, algorithm: algorithm)
        }
        return (now() - t0) / Double(iters)
    }

    /// Fills the receive buffer with the poison: NaN bytes for floating point, 0x5A for integers.
    func poison(count: Int) {
        memset(recv.pointer, type.isFloatingPoint ? 0xFF : 0x5A, count * type.size)
    }

    /// Self-test of the checker (HFR_CORRUPT=1): flips the low bit of the middle element on the last rank.
    func maybeCorrupt(count: Int) {
        guard corrupt, comm.rank == comm.size - 1, count > 0 else { return }
        let p = recv.pointer.assumingMemoryBound(to: UInt8.self)
        p[(count / 2) * type.size] ^= 1
    }

    /// One checked call: out-of-place into the poisoned receive buffer, or in-place on freshly
    /// filled data. Returns this rank's number of wrong elements.
    func checkedCall(count: Int, inPlace: Bool, pattern: CheckPattern, first: Bool) throws -> Int {
        if inPlace {
            fillPattern(recv.pointer, count: count, size: type.size, pattern: pattern.fill)
            try allReduce(recv.pointer, recv.pointer, count)
        } else {
            poison(count: count)
            try allReduce(send.pointer, recv.pointer, count)
        }
        if first { maybeCorrupt(count: count) }
        return countWrong(recv.pointer, count: count, size: type.size, pattern: pattern.expected)
    }

    // MARK: - nccl-tests format

    /// nccl-tests' all_reduce_perf: per size, out-of-place then in-place; `-w` warm-ups and `-n`
    /// timed calls each, results checked before and after the timed loop with `-c 1`.
    func runNcclTests(algorithmName: String) throws {
        let o = options
        let pattern = CheckValues.pattern(type: type, op: op, rank: comm.rank, ranks: comm.size, peers: false)
        let maxCount = o.maxBytes / type.size
        fillPattern(send.pointer, count: maxCount, size: type.size, pattern: pattern.fill)
        report.ncclHeader(o, ranks: comm.size, algorithm: algorithmName)

        for bytes in Self.sizes(o) {
            let count = bytes / type.size
            guard count > 0 else {
                report.comment("skipped a size below one \(type) element (\(type.size) B)")
                continue
            }
            var seconds = [0.0, 0.0]
            var wrong = [0, 0]

            // Out-of-place: the send buffer keeps the check data; the last timed result is checked.
            if o.check { wrong[0] += try checkedCall(count: count, inPlace: false, pattern: pattern, first: true) }
            for _ in 0..<o.warmup { try allReduce(send.pointer, recv.pointer, count) }
            seconds[0] = try timed(send.pointer, recv.pointer, count: count, iters: o.iters)
            if o.check { wrong[0] += countWrong(recv.pointer, count: count, size: type.size, pattern: pattern.expected) }

            // In-place: check on fresh data, time on data the reduction keeps finite, check again.
            if o.check { wrong[1] += try checkedCall(count: count, inPlace: true, pattern: pattern, first: true) }
            if let steady = CheckValues.steadyInPlaceValue(type: type, op: op) {
                fillValue(recv.pointer, count: count, size: type.size, value: steady)
            } else {
                fillPattern(recv.pointer, count: count, size: type.size, pattern: pattern.fill)
            }
            for _ in 0..<o.warmup { try allReduce(recv.pointer, recv.pointer, count) }
            seconds[1] = try timed(recv.pointer, recv.pointer, count: count, iters: o.iters)
            if o.check { wrong[1] += try checkedCall(count: count, inPlace: true, pattern: pattern, first: false) }

            let agreed = try agreeMax(seconds)
            let totalWrong: [Int?] = o.check ? try agreeSum(wrong).map { $0 } : [nil, nil]
            report.ncclRow(bytes: bytes, count: count, type: type, op: op, ranks: comm.size,
                           outOfPlace: Measurement(seconds: agreed[0], wrong: totalWrong[0]),
                           inPlace: Measurement(seconds: agreed[1], wrong: totalWrong[1]))
        }
        report.ncclFooter()
    }

    // MARK: - peers format

    /// The method of ../shared/peers/mpi_allreduce.c: a checked first call (its time bounds the
    /// warm-up count), warm-ups that estimate the time per call, `iters` chosen so a repetition
    /// lasts `--min-time`, `-r` repetitions (each the max over ranks of the mean per call), the
    /// median reported, and a second check.
    func runPeers(algorithmName: String) throws {
        let o = options
        let pattern = CheckValues.pattern(type: type, op: op, rank: comm.rank, ranks: comm.size, peers: true)
        let maxCount = o.maxBytes / type.size
        fillPattern(send.pointer, count: maxCount, size: type.size, pattern: pattern.fill)
        report.peersHeader(o, ranks: comm.size, algorithm: algorithmName, host: hostName(),
                           placement: try placement())
        let src = o.inPlace ? UnsafeRawPointer(recv.pointer) : UnsafeRawPointer(send.pointer)

        for bytes in Self.sizes(o) {
            let count = bytes / type.size
            guard count > 0 else {
                report.comment("skipped a size below one \(type) element (\(type.size) B)")
                continue
            }
            var wrong = 0

            // 1. The first (cold) call, checked.
            poison(count: count)
            try barrier()
            var t0 = now()
            if o.inPlace {
                memcpy(recv.pointer, send.pointer, count * type.size)
                try allReduce(recv.pointer, recv.pointer, count)
            } else {
                try allReduce(send.pointer, recv.pointer, count)
            }
            let first = try agreeMax([now() - t0])[0]
            maybeCorrupt(count: count)
            if o.check { wrong += countWrong(recv.pointer, count: count, size: type.size, pattern: pattern.expected) }

            // 2. Warm-up: at most -w calls, fewer when one call is slow; estimates the time per call.
            let warmups = max(1, min(o.warmup, Int((o.minTime / Swift.max(first, 1e-9)).rounded(.up))))
            try barrier()
            t0 = now()
            for _ in 0..<warmups { try allReduce(src, recv.pointer, count) }
            let estimate = try agreeMax([(now() - t0) / Double(warmups)])[0]
            let wanted = (o.minTime / Swift.max(estimate, 1e-9)).rounded(.up)
            let iters = wanted >= Double(o.maxIters) ? o.maxIters : Swift.max(o.iters, Int(wanted))

            // 3. Timed repetitions.
            var times: [Double] = []
            for _ in 0..<o.reps {
                let t = try timed(src, recv.pointer, count: count, iters: iters)
                times.append(try agreeMax([t])[0])
            }

            // 4. Second check: the last timed result, or a fresh in-place call.
            if o.inPlace {
                memcpy(recv.pointer, send.pointer, count * type.size)
                try allReduce(recv.pointer, recv.pointer, count)
            }
            if o.check { wrong += countWrong(recv.pointer, count: count, size: type.size, pattern: pattern.expected) }
            wrong = try agreeSum([wrong])[0]

            report.peersRow(bytes: bytes, count: count, ranks: comm.size, times: times.sorted(), iters: iters,
                            wrong: wrong)
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
