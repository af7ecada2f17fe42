import HFRKernels

/// Allgather and reduce-scatter around the ring, pipelined in chunks.
public enum RingSchedule {
    /// Every rank contributes `count` elements; every rank receives all n blocks in rank order.
    /// In place when the send buffer is the receive buffer's own block (`recv + rank * count`).
    public static func allGather(rank r: Int, ranks n: Int, count: Int, type: DataType, inPlace: Bool, chunkBytes: Int) -> Schedule {
        var b = ScheduleBuilder(ranks: n)
        let es = type.size, block = count * es
        let right = (r + 1) % n, left = (r - 1 + n) % n
        let pieces = AllreduceSchedule.chunks(0, count, Swift.max(1, chunkBytes / es))
        if !inPlace { b.copy(BufferRef(.recv, r * block), from: BufferRef(.send, 0), bytes: block) }
        var arrived = pieces.map { _ in ScheduleBuilder.StepID?.none }
        for t in 0..<(n - 1) {
            let sendBlock = (r - t + n) % n, recvBlock = (r - t - 1 + n) % n
            for (c, (start, cnt)) in pieces.enumerated() {
                let from = t == 0 ? BufferRef(.send, start * es) : BufferRef(.recv, sendBlock * block + start * es)
                b.send(to: right, from: from, bytes: cnt * es, after: [arrived[c]])
            }
            for (c, (start, cnt)) in pieces.enumerated() {
                arrived[c] = b.recv(from: left, into: BufferRef(.recv, recvBlock * block + start * es), bytes: cnt * es)
            }
        }
        var s = b.finish()
        s.signature = collectiveSignature([4, count, Int(type.rawValue), chunkBytes])
        return s
    }

    /// The send buffer holds n blocks of `count` elements; rank r receives the reduction of
    /// every rank's block r. In place when the receive buffer is the send buffer's block r.
    public static func reduceScatter(rank r: Int, ranks n: Int, count: Int, type: DataType, op: ReduceOp, chunkBytes: Int) -> Schedule {
        var b = ScheduleBuilder(ranks: n)
        let es = type.size, block = count * es
        let right = (r + 1) % n, left = (r - 1 + n) % n
        let pieces = AllreduceSchedule.chunks(0, count, Swift.max(1, chunkBytes / es))
        if n == 1 {
            b.copy(BufferRef(.recv, 0), from: BufferRef(.send, r * block), bytes: block)
            var s = b.finish()
            s.signature = collectiveSignature([5, count, Int(type.rawValue), Int(op.rawValue), chunkBytes])
            return s
        }
        // Incoming partials and this rank's partials, two blocks each used by turns (step t
        // takes slot t % 2), so the scratch is 4 blocks whatever the rank count. A chunk's slot
        // is taken again two steps later: its receive waits for the combine that read it then,
        // and its combine for the send that read the partial written then.
        let incoming = b.reserveScratch(Swift.min(2, n - 1) * block), partials = b.reserveScratch(Swift.min(2, n - 2) * block)
        var made = pieces.map { _ in ScheduleBuilder.StepID?.none }
        var combined = [[ScheduleBuilder.StepID?]](repeating: pieces.map { _ in nil }, count: 2)
        var sent = [[ScheduleBuilder.StepID?]](repeating: pieces.map { _ in nil }, count: 2)
        for t in 0..<(n - 1) {
            // Step t passes on the partial of block r-t-1 and receives that of block r-t-2; the
            // last step's block is r itself, reduced into the receive buffer.
            let sendBlock = (r - t - 1 + 2 * n) % n, recvBlock = (r - t - 2 + 2 * n) % n
            let slot = t % 2
            for (c, (start, cnt)) in pieces.enumerated() {
                let from = t == 0 ? BufferRef(.send, sendBlock * block + start * es)
                                  : BufferRef(.scratch, partials + (1 - slot) * block + start * es)
                sent[1 - slot][c] = b.send(to: right, from: from, bytes: cnt * es, after: [made[c]])
            }
            for (c, (start, cnt)) in pieces.enumerated() {
                let tmp = BufferRef(.scratch, incoming + slot * block + start * es)
                let rv = b.recv(from: left, into: tmp, bytes: cnt * es, after: [combined[slot][c]])
                let dst = t == n - 2 ? BufferRef(.recv, start * es) : BufferRef(.scratch, partials + slot * block + start * es)
                made[c] = b.combine(dst, BufferRef(.send, recvBlock * block + start * es), tmp, count: cnt, after: [rv, sent[slot][c]])
                combined[slot][c] = made[c]
                if t == n - 2 && op == .avg { made[c] = b.scale(dst, count: cnt, after: [made[c]]) }
            }
        }
        var s = b.finish()
        s.signature = collectiveSignature([5, count, Int(type.rawValue), Int(op.rawValue), chunkBytes])
        return s
    }
}
