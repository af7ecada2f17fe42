import HFRKernels

/// All-to-all: every rank sends a block to every rank. All peers are in flight at once; rank r
/// starts with peer r+1 and goes round, so the ranks do not all hit the same peer first.
public enum AllToAllSchedule {
    /// Blocks of `sendCounts[p]` elements at `sendDispls[p]` go to rank p; rank p's block lands at
    /// `recvDispls[p]` (`recvCounts[p]` elements). `inPlace` (send buffer == receive buffer, equal
    /// counts) receives into scratch first and copies each block once the block bound for that
    /// peer has left.
    public static func build(rank r: Int, ranks n: Int, type: DataType, sendCounts: [Int], sendDispls: [Int],
                             recvCounts: [Int], recvDispls: [Int], inPlace: Bool, equalCount: Int?) -> Schedule {
        var b = ScheduleBuilder(ranks: n)
        let es = type.size
        // An empty block's displacement is never used, whatever the caller passed.
        let sendDispls = zip(sendCounts, sendDispls).map { $0 > 0 ? $1 : 0 }
        let recvDispls = zip(recvCounts, recvDispls).map { $0 > 0 ? $1 : 0 }
        if !inPlace && recvCounts[r] > 0 {
            b.copy(BufferRef(.recv, recvDispls[r] * es), from: BufferRef(.send, sendDispls[r] * es), bytes: recvCounts[r] * es)
        }
        var sendTo = [ScheduleBuilder.StepID?](repeating: nil, count: n)
        for k in 1..<Swift.max(n, 1) {
            let to = (r + k) % n
            sendTo[to] = b.send(to: to, from: BufferRef(.send, sendDispls[to] * es), bytes: sendCounts[to] * es)
        }
        let scratch = inPlace ? b.reserveScratch(recvCounts.reduce(0, +) * es) : 0
        var scratchAt = 0
        for k in 1..<Swift.max(n, 1) {
            let from = (r - k + n) % n
            if inPlace {
                // Block `from` holds the data bound for `from` and is where its data lands: receive
                // into scratch, and copy over once the outgoing block has left.
                let tmp = BufferRef(.scratch, scratch + scratchAt * es)
                scratchAt += recvCounts[from]
                let rv = b.recv(from: from, into: tmp, bytes: recvCounts[from] * es)
                b.copy(BufferRef(.recv, recvDispls[from] * es), from: tmp, bytes: recvCounts[from] * es, after: [rv, sendTo[from]])
            } else {
                b.recv(from: from, into: BufferRef(.recv, recvDispls[from] * es), bytes: recvCounts[from] * es)
            }
        }
        var s = b.finish()
        s.signature = collectiveSignature([6, equalCount ?? -1, Int(type.rawValue)])
        return s
    }
}

/// A barrier: a one-byte recursive-doubling exchange on scratch memory.
public enum BarrierSchedule {
    public static func build(rank: Int, ranks: Int) -> Schedule {
        var shape = AllreduceShape(rank: rank, ranks: ranks, count: 1, type: .uint8, op: .max, inPlace: true, chunkBytes: 1)
        shape.slots = 1
        var s = AllreduceSchedule.buildSteps(.doubling, shape)
        s.signature = collectiveSignature([7])
        return s
    }
}

/// A message between two ranks.
public enum PointToPointSchedule {
    /// The signature covers the byte count and the element type: a float32 message received
    /// as int32 is a disagreement, not a reinterpretation.
    public static func send(to peer: Int, ranks: Int, bytes: Int, type: DataType) -> Schedule {
        var b = ScheduleBuilder(ranks: ranks)
        b.send(to: peer, from: BufferRef(.send, 0), bytes: bytes)
        var s = b.finish()
        s.signature = collectiveSignature([8, bytes, Int(type.rawValue)])
        return s
    }

    public static func recv(from peer: Int, ranks: Int, bytes: Int, type: DataType) -> Schedule {
        var b = ScheduleBuilder(ranks: ranks)
        b.recv(from: peer, into: BufferRef(.recv, 0), bytes: bytes)
        var s = b.finish()
        s.signature = collectiveSignature([8, bytes, Int(type.rawValue)])
        return s
    }
}
