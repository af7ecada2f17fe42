import HFRCollectives
import HFRKernels

/// A deterministic stand-in for the network and progress engine: runs every rank's schedule in
/// one process, in a random order that respects each schedule's dependencies, with messages
/// copied when the send runs and delivered when the matching receive runs. A missing dependency
/// (a buffer overwritten before it was sent, a reduction reading a slot too early) shows up as a
/// wrong result for some order.
struct ScheduleSimulator {
    var rng: SplitMix

    struct Rank {
        var schedule: Schedule
        var send: [UInt8], recv: [UInt8], scratch: [UInt8]
        var pending: [Int32]
        var done: [Bool]
        var inPlace: Bool
    }

    mutating func run(schedules: [Schedule], inputs: [[UInt8]], inPlace: Bool, type: DataType, op: ReduceOp,
                      recvBytes: Int? = nil) -> [[UInt8]] {
        let n = schedules.count
        var ranks = (0..<n).map { r in
            Rank(schedule: schedules[r], send: inputs[r],
                 recv: inPlace ? inputs[r] : [UInt8](repeating: 0xEE, count: recvBytes ?? inputs[r].count),
                 scratch: [UInt8](repeating: 0xCD, count: schedules[r].scratchBytes), pending: schedules[r].predecessorCount,
                 done: Array(repeating: false, count: schedules[r].steps.count), inPlace: inPlace)
        }
        // In flight: (from, to, index) -> payload, captured when the send ran.
        var wire: [[Int: [UInt8]]] = Array(repeating: [:], count: n * n)
        var progress = true
        while progress {
            progress = false
            var candidates: [(Int, Int)] = []
            for r in 0..<n {
                for (i, s) in ranks[r].schedule.steps.enumerated() where !ranks[r].done[i] && ranks[r].pending[i] == 0 {
                    if s.kind == .recv && wire[Int(s.peer) * n + r][Int(s.index)] == nil { continue }
                    candidates.append((r, i))
                }
            }
            guard !candidates.isEmpty else { break }
            let (r, i) = candidates[Int(rng.next() % UInt64(candidates.count))]
            let s = ranks[r].schedule.steps[i]
            switch s.kind {
            case .send:
                wire[r * n + Int(s.peer)][Int(s.index)] = ranks[r].read(s.a, s.length)
            case .recv:
                let data = wire[Int(s.peer) * n + r].removeValue(forKey: Int(s.index))!
                precondition(data.count == s.length, "message length mismatch")
                ranks[r].write(s.dst, data)
            case .combine:
                let a = ranks[r].read(s.a, s.length * type.size), b = ranks[r].read(s.b, s.length * type.size)
                var out = [UInt8](repeating: 0, count: a.count)
                out.withUnsafeMutableBytes { o in a.withUnsafeBytes { ap in b.withUnsafeBytes { bp in
                    ReductionKernels.combine(o.baseAddress!, ap.baseAddress!, bp.baseAddress!, count: s.length, type: type, op: op)
                } } }
                ranks[r].write(s.dst, out)
            case .copy:
                ranks[r].write(s.dst, ranks[r].read(s.a, s.length))
            case .scale:
                var v = ranks[r].read(s.dst, s.length * type.size)
                v.withUnsafeMutableBytes { ReductionKernels.finishAverage($0.baseAddress!, count: s.length, type: type, ranks: n) }
                ranks[r].write(s.dst, v)
            }
            ranks[r].done[i] = true
            let sch = ranks[r].schedule
            for k in Int(sch.successorStart[i])..<Int(sch.successorStart[i + 1]) { ranks[r].pending[Int(sch.successors[k])] -= 1 }
            progress = true
        }
        for r in 0..<n { precondition(!ranks[r].done.contains(false), "rank \(r): schedule did not finish (deadlock)") }
        return ranks.map { $0.recv }
    }
}

extension ScheduleSimulator.Rank {
    func read(_ ref: BufferRef, _ bytes: Int) -> [UInt8] {
        switch ref.buffer {
        case .send: return Array((inPlace ? recv : send)[ref.offset..<ref.offset + bytes])
        case .recv: return Array(recv[ref.offset..<ref.offset + bytes])
        case .scratch: return Array(scratch[ref.offset..<ref.offset + bytes])
        }
    }
    mutating func write(_ ref: BufferRef, _ data: [UInt8]) {
        switch ref.buffer {
        case .send:
            if inPlace { recv.replaceSubrange(ref.offset..<ref.offset + data.count, with: data) }
            else { send.replaceSubrange(ref.offset..<ref.offset + data.count, with: data) }
        case .recv: recv.replaceSubrange(ref.offset..<ref.offset + data.count, with: data)
        case .scratch: scratch.replaceSubrange(ref.offset..<ref.offset + data.count, with: data)
        }
    }
}

/// A small deterministic random generator (SplitMix64), so failures reproduce.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
