import HFRKernels

/// The allreduce algorithms.
public enum AllreduceAlgorithm: String, Sendable, CaseIterable {
    /// Double binary tree: two trees each reduce half of the data up to their root and broadcast
    /// it back down, chunk by chunk, with both passes in flight at once. log(n) latency.
    case tree
    /// Ring: reduce-scatter then allgather around the ring, chunk by chunk. Bandwidth-optimal,
    /// latency linear in n.
    case ring
    /// Recursive doubling: log2(n) exchanges of the whole buffer with partners at distance
    /// 1, 2, 4, ... (ranks beyond a power of two fold into a partner first). The fewest network
    /// hops, so the choice for small buffers; every rank combines the same pairs in the same
    /// operand order (the lower rank's first), so all ranks hold the same bits.
    case doubling
    /// Recursive halving then doubling (Rabenseifner): a reduce-scatter that halves the range
    /// exchanged at every step, then an allgather that doubles it back. log2(n) steps each way
    /// and 2(n-1)/n of the buffer sent per rank, like the ring, with the latency of doubling.
    case halving
}

/// The parameters both sides of every message must agree on.
public struct AllreduceShape: Sendable {
    public var rank: Int
    public var ranks: Int
    public var count: Int
    public var type: DataType
    public var op: ReduceOp
    public var inPlace: Bool
    /// Largest message (pipeline chunk) in bytes.
    public var chunkBytes: Int
    /// Scratch slots per incoming stream: how many chunks may be received ahead of the reduction.
    public var slots: Int = 4

    public init(rank: Int, ranks: Int, count: Int, type: DataType, op: ReduceOp, inPlace: Bool, chunkBytes: Int) {
        self.rank = rank; self.ranks = ranks; self.count = count; self.type = type; self.op = op
        self.inPlace = inPlace; self.chunkBytes = chunkBytes
    }

    var chunkElements: Int { Swift.max(1, chunkBytes / type.size) }
}

/// Builds allreduce schedules.
public enum AllreduceSchedule {
    public static func build(_ algorithm: AllreduceAlgorithm, _ shape: AllreduceShape) -> Schedule {
        var s = buildSteps(algorithm, shape)
        s.signature = collectiveSignature([1, shape.count, Int(shape.type.rawValue), Int(shape.op.rawValue),
                                           AllreduceAlgorithm.allCases.firstIndex(of: algorithm)!, shape.chunkBytes, shape.slots])
        return s
    }

    static func buildSteps(_ algorithm: AllreduceAlgorithm, _ shape: AllreduceShape) -> Schedule {
        if shape.count == 0 { return ScheduleBuilder(ranks: shape.ranks).finish() }
        if shape.ranks == 1 {
            var b = ScheduleBuilder(ranks: 1)
            if !shape.inPlace { b.copy(BufferRef(.recv, 0), from: BufferRef(.send, 0), bytes: shape.count * shape.type.size) }
            return b.finish()
        }
        switch algorithm {
        case .tree: return tree(shape)
        case .ring: return ring(shape)
        case .doubling: return doubling(shape)
        case .halving: return halving(shape)
        }
    }

    /// Chunks of the element range `start..<end`, at most `chunk` elements each.
    static func chunks(_ start: Int, _ end: Int, _ chunk: Int) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var s = start
        while s < end { let e = Swift.min(end, s + chunk); out.append((s, e - s)); s = e }
        return out
    }

    static func tree(_ p: AllreduceShape) -> Schedule {
        var b = ScheduleBuilder(ranks: p.ranks)
        let es = p.type.size
        let trees = DoubleBinaryTree.trees(rank: p.rank, size: p.ranks)
        let half = p.count / 2
        let ranges = [(0, half), (half, p.count)]
        let slotBytes = Swift.min(p.chunkElements, p.count) * es
        for t in 0..<2 {
            let links = trees[t]
            let pieces = chunks(ranges[t].0, ranges[t].1, p.chunkElements)
            if pieces.isEmpty { continue }
            let slots = Swift.min(p.slots, pieces.count)
            let bases = links.children.map { _ in b.reserveScratch(slots * slotBytes) }
            var slotUser = Array(repeating: Array(repeating: ScheduleBuilder.StepID?.none, count: slots), count: links.children.count)
            for (i, (start, cnt)) in pieces.enumerated() {
                let bytes = cnt * es
                let r = BufferRef(.recv, start * es), s = BufferRef(.send, start * es)
                var partial = s
                var last: ScheduleBuilder.StepID? = nil
                for (j, child) in links.children.enumerated() {
                    let slot = i % slots
                    let scratch = BufferRef(.scratch, bases[j] + slot * slotBytes)
                    let rv = b.recv(from: child, into: scratch, bytes: bytes, after: [slotUser[j][slot]])
                    let c = b.combine(r, j == 0 ? s : r, scratch, count: cnt, after: [rv, last])
                    slotUser[j][slot] = c
                    last = c
                    partial = r
                }
                var final: ScheduleBuilder.StepID?
                if links.parent >= 0 {
                    let sd = b.send(to: links.parent, from: partial, bytes: bytes, after: [last])
                    let readsR = partial == r || p.inPlace
                    final = b.recv(from: links.parent, into: r, bytes: bytes, after: readsR ? [sd] : [])
                } else {
                    final = last
                    if p.op == .avg { final = b.scale(r, count: cnt, after: [last]) }
                }
                for child in links.children {
                    b.send(to: child, from: r, bytes: bytes, after: [final])
                }
            }
        }
        return b.finish()
    }

    static func ring(_ p: AllreduceShape) -> Schedule {
        var b = ScheduleBuilder(ranks: p.ranks)
        let n = p.ranks, r = p.rank, es = p.type.size
        let right = (r + 1) % n, left = (r - 1 + n) % n
        let base = p.count / n, rem = p.count % n
        func segStart(_ s: Int) -> Int { s * base + Swift.min(s, rem) }
        let segs = (0..<n).map { chunks(segStart($0), segStart($0 + 1), p.chunkElements) }
        func mod(_ x: Int) -> Int { ((x % n) + n) % n }

        let slotBytes = Swift.min(p.chunkElements, base + (rem > 0 ? 1 : 0)) * es
        let slots = p.slots
        let scratchBase = slotBytes > 0 ? b.reserveScratch(slots * slotBytes) : 0
        var slotUser = Array(repeating: ScheduleBuilder.StepID?.none, count: slots)
        var recvCounter = 0
        // Last step that wrote, and last that read, each chunk of the receive buffer.
        var lastWrite = segs.map { $0.map { _ in ScheduleBuilder.StepID?.none } }
        var lastRead = lastWrite

        // Reduce-scatter: after n-1 steps rank r holds the full reduction of segment r+1.
        for t in 0..<(n - 1) {
            let sendSeg = mod(r - t), recvSeg = mod(r - t - 1)
            for (c, (start, cnt)) in segs[sendSeg].enumerated() {
                let from = t == 0 ? BufferRef(.send, start * es) : BufferRef(.recv, start * es)
                let sd = b.send(to: right, from: from, bytes: cnt * es, after: [lastWrite[sendSeg][c]])
                if t > 0 || p.inPlace { lastRead[sendSeg][c] = sd }
            }
            for (c, (start, cnt)) in segs[recvSeg].enumerated() {
                let slot = recvCounter % slots
                recvCounter += 1
                let scratch = BufferRef(.scratch, scratchBase + slot * slotBytes)
                let rv = b.recv(from: left, into: scratch, bytes: cnt * es, after: [slotUser[slot]])
                let cb = b.combine(BufferRef(.recv, start * es), BufferRef(.send, start * es), scratch, count: cnt,
                                   after: [rv, lastRead[recvSeg][c]])
                slotUser[slot] = cb
                lastWrite[recvSeg][c] = cb
            }
        }
        let own = mod(r + 1)
        if p.op == .avg {
            for (c, (start, cnt)) in segs[own].enumerated() {
                lastWrite[own][c] = b.scale(BufferRef(.recv, start * es), count: cnt, after: [lastWrite[own][c]])
            }
        }
        // Allgather: pass the reduced segments around the ring, received straight into place.
        for t in 0..<(n - 1) {
            let sendSeg = mod(r + 1 - t), recvSeg = mod(r - t)
            for (c, (start, cnt)) in segs[sendSeg].enumerated() {
                b.send(to: right, from: BufferRef(.recv, start * es), bytes: cnt * es, after: [lastWrite[sendSeg][c]])
            }
            for (c, (start, cnt)) in segs[recvSeg].enumerated() {
                lastWrite[recvSeg][c] = b.recv(from: left, into: BufferRef(.recv, start * es), bytes: cnt * es,
                                               after: [lastRead[recvSeg][c], lastWrite[recvSeg][c]])
            }
        }
        return b.finish()
    }

    static func doubling(_ p: AllreduceShape) -> Schedule {
        var b = ScheduleBuilder(ranks: p.ranks)
        let n = p.ranks, r = p.rank, es = p.type.size, bytes = p.count * es
        let fold = PowerOfTwoFold(rank: r, ranks: n)
        let rem = fold.rem, steps = fold.steps
        // Each exchange is pipelined in chunks, so reductions overlap the transfer of later chunks.
        let pieces = chunks(0, p.count, p.chunkElements)
        var scratch: [Int] = []
        for _ in 0...steps { scratch.append(b.reserveScratch(bytes)) }
        // Per chunk: where this rank's partial result is, the step that last wrote it, and the
        // send that last read it.
        var current = pieces.map { BufferRef(.send, $0.0 * es) }
        var last = pieces.map { _ in ScheduleBuilder.StepID?.none }
        var lastRead = last
        // Fold: among the first 2*rem ranks, even ranks hand their data to the odd rank above,
        // which sends back the final (already averaged) result.
        let newRank: Int
        if r < 2 * rem {
            if r % 2 == 0 {
                for (start, cnt) in pieces {
                    let sd = b.send(to: r + 1, from: BufferRef(.send, start * es), bytes: cnt * es)
                    b.recv(from: r + 1, into: BufferRef(.recv, start * es), bytes: cnt * es, after: p.inPlace ? [sd] : [])
                }
                return b.finish()
            }
            for (c, (start, cnt)) in pieces.enumerated() {
                let tmp = BufferRef(.scratch, scratch[steps] + start * es)
                let rv = b.recv(from: r - 1, into: tmp, bytes: cnt * es)
                last[c] = b.combine(BufferRef(.recv, start * es), BufferRef(.send, start * es), tmp, count: cnt, after: [rv])
                current[c] = BufferRef(.recv, start * es)
            }
            newRank = r / 2
        } else {
            newRank = r - rem
        }
        let realRank = fold.realRank
        for k in 0..<steps {
            let partner = realRank(newRank ^ (1 << k))
            for (c, (start, cnt)) in pieces.enumerated() {
                let R = BufferRef(.recv, start * es), tmp = BufferRef(.scratch, scratch[k] + start * es)
                let sd = b.send(to: partner, from: current[c], bytes: cnt * es, after: [last[c]])
                let rv = b.recv(from: partner, into: tmp, bytes: cnt * es)
                // The combine overwrites R, which this step's send (and the last one) may still read.
                // Both partners put the lower rank's partial first: max and min of -0 and +0, or
                // of two NaNs, depend on the order, and the two must hold the same bits.
                let mineFirst = newRank & (1 << k) == 0
                last[c] = b.combine(R, mineFirst ? current[c] : tmp, mineFirst ? tmp : current[c], count: cnt,
                                    after: [rv, sd, last[c], lastRead[c]])
                lastRead[c] = sd
                current[c] = R
            }
        }
        for (c, (start, cnt)) in pieces.enumerated() {
            if p.op == .avg { last[c] = b.scale(BufferRef(.recv, start * es), count: cnt, after: [last[c]]) }
            if r < 2 * rem {
                b.send(to: r - 1, from: BufferRef(.recv, start * es), bytes: cnt * es, after: [last[c]])
            }
        }
        return b.finish()
    }

    static func halving(_ p: AllreduceShape) -> Schedule {
        var b = ScheduleBuilder(ranks: p.ranks)
        let n = p.ranks, r = p.rank, es = p.type.size, bytes = p.count * es
        let fold = PowerOfTwoFold(rank: r, ranks: n)
        let pow2 = fold.pow2, rem = fold.rem, steps = fold.steps
        var current = BufferName.send
        var last: ScheduleBuilder.StepID? = nil
        let newRank: Int
        if r < 2 * rem {
            if r % 2 == 0 {
                let sd = b.send(to: r + 1, from: BufferRef(.send, 0), bytes: bytes)
                b.recv(from: r + 1, into: BufferRef(.recv, 0), bytes: bytes, after: p.inPlace ? [sd] : [])
                return b.finish()
            }
            let tmp = BufferRef(.scratch, b.reserveScratch(bytes))
            let rv = b.recv(from: r - 1, into: tmp, bytes: bytes)
            last = b.combine(BufferRef(.recv, 0), BufferRef(.send, 0), tmp, count: p.count, after: [rv])
            current = .recv
            newRank = r / 2
        } else {
            newRank = r - rem
        }
        let realRank = fold.realRank
        let scratch = b.reserveScratch((p.count / 2 + 1) * es)
        // Reduce-scatter by halving: keep one half of the range, send the other to the partner.
        var lo = 0, hi = p.count
        var sends: [(ScheduleBuilder.StepID, Int, Int)] = []
        for k in 0..<steps {
            let mask = pow2 >> (k + 1)
            let partner = realRank(newRank ^ mask)
            let mid = lo + (hi - lo) / 2
            let (keepLo, keepHi, sendLo, sendHi) = newRank & mask == 0 ? (lo, mid, mid, hi) : (mid, hi, lo, mid)
            let sd = b.send(to: partner, from: BufferRef(current, sendLo * es), bytes: (sendHi - sendLo) * es, after: [last])
            sends.append((sd, sendLo, sendHi))
            let tmp = BufferRef(.scratch, scratch)
            let rv = b.recv(from: partner, into: tmp, bytes: (keepHi - keepLo) * es, after: [last])
            last = b.combine(BufferRef(.recv, keepLo * es), BufferRef(current, keepLo * es), tmp, count: keepHi - keepLo,
                             after: [rv, last])
            current = .recv
            lo = keepLo; hi = keepHi
        }
        if p.op == .avg { last = b.scale(BufferRef(.recv, lo * es), count: hi - lo, after: [last]) }
        // Allgather by doubling: exchange the owned range with the partner of the same step, in reverse.
        for k in stride(from: steps - 1, through: 0, by: -1) {
            let mask = pow2 >> (k + 1)
            let partner = realRank(newRank ^ mask)
            let (sd0, sibLo, sibHi) = sends[k]
            let sd = b.send(to: partner, from: BufferRef(.recv, lo * es), bytes: (hi - lo) * es, after: [last])
            let rv = b.recv(from: partner, into: BufferRef(.recv, sibLo * es), bytes: (sibHi - sibLo) * es, after: [sd0, last])
            last = rv
            _ = sd
            lo = min(lo, sibLo); hi = max(hi, sibHi)
        }
        if r < 2 * rem {
            b.send(to: r - 1, from: BufferRef(.recv, 0), bytes: bytes, after: [last])
        }
        return b.finish()
    }
}

/// Recursive doubling and halving work on a power of two of ranks: with n = 2^k + rem, the first
/// 2*rem ranks pair up, each even one folding its data into the odd one above, which takes part
/// under the new number r/2; ranks from 2*rem on take part as r - rem.
struct PowerOfTwoFold {
    let pow2: Int, rem: Int, steps: Int

    init(rank: Int, ranks n: Int) {
        var p = 1
        while p * 2 <= n { p *= 2 }
        pow2 = p
        rem = n - p
        steps = p.trailingZeroBitCount
    }

    /// The real rank of participant `nr`.
    func realRank(_ nr: Int) -> Int { nr < rem ? nr * 2 + 1 : nr + rem }
}
