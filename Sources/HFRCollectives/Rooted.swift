import HFRKernels

/// Broadcast and reduce over a binary tree rooted at `root` (tree A of the double binary tree,
/// on ranks renumbered so that `root` is 0), pipelined in chunks.
public enum RootedSchedule {
    static func tree(rank: Int, ranks n: Int, root: Int) -> TreeLinks {
        let v = (rank - root + n) % n
        let t = DoubleBinaryTree.treeA(rank: v, size: n)
        return TreeLinks(parent: t.parent < 0 ? -1 : (t.parent + root) % n, children: t.children.map { ($0 + root) % n })
    }

    /// Broadcast `count` elements of `type` from `root`'s send buffer into every rank's receive
    /// buffer. Only the root reads its send buffer.
    public static func broadcast(rank: Int, ranks n: Int, root: Int, count: Int, type: DataType, inPlace: Bool, chunkBytes: Int) -> Schedule {
        var b = ScheduleBuilder(ranks: n)
        let es = type.size
        let links = tree(rank: rank, ranks: n, root: root)
        for (start, cnt) in AllreduceSchedule.chunks(0, count, Swift.max(1, chunkBytes / es)) {
            let r = BufferRef(.recv, start * es), bytes = cnt * es
            if rank == root {
                if !inPlace { b.copy(r, from: BufferRef(.send, start * es), bytes: bytes) }
                for c in links.children { b.send(to: c, from: BufferRef(.send, start * es), bytes: bytes) }
            } else {
                let rv = b.recv(from: links.parent, into: r, bytes: bytes)
                for c in links.children { b.send(to: c, from: r, bytes: bytes, after: [rv]) }
            }
        }
        var s = b.finish()
        s.signature = collectiveSignature([2, count, Int(type.rawValue), root, chunkBytes])
        return s
    }

    /// Reduce `count` elements to `root`'s receive buffer; only the root writes it. Partial
    /// results of interior ranks live in scratch.
    public static func reduce(rank: Int, ranks n: Int, root: Int, count: Int, type: DataType, op: ReduceOp,
                              chunkBytes: Int, slots: Int = 4) -> Schedule {
        var b = ScheduleBuilder(ranks: n)
        let es = type.size
        let links = tree(rank: rank, ranks: n, root: root)
        let pieces = AllreduceSchedule.chunks(0, count, Swift.max(1, chunkBytes / es))
        let slotBytes = Swift.min(Swift.max(1, chunkBytes / es), Swift.max(count, 1)) * es
        let depth = Swift.max(1, Swift.min(slots, pieces.count))
        let childBase = links.children.map { _ in b.reserveScratch(depth * slotBytes) }
        let partialBase = b.reserveScratch(depth * slotBytes)
        var slotUser = Array(repeating: Array(repeating: ScheduleBuilder.StepID?.none, count: depth), count: links.children.count)
        var partialUser = Array(repeating: ScheduleBuilder.StepID?.none, count: depth)
        for (i, (start, cnt)) in pieces.enumerated() {
            let slot = i % depth, bytes = cnt * es
            let s = BufferRef(.send, start * es)
            // Where this rank's partial goes: the root's receive buffer, or a scratch slot.
            let out = rank == root ? BufferRef(.recv, start * es) : BufferRef(.scratch, partialBase + slot * slotBytes)
            var partial = s
            var last: ScheduleBuilder.StepID? = nil
            for (j, child) in links.children.enumerated() {
                let tmp = BufferRef(.scratch, childBase[j] + slot * slotBytes)
                let rv = b.recv(from: child, into: tmp, bytes: bytes, after: [slotUser[j][slot]])
                last = b.combine(out, partial, tmp, count: cnt, after: [rv, last, j == 0 ? partialUser[slot] : nil])
                slotUser[j][slot] = last
                partial = out
            }
            if rank == root {
                if links.children.isEmpty { last = b.copy(out, from: s, bytes: bytes) }
                if op == .avg { b.scale(out, count: cnt, after: [last]) }
            } else {
                partialUser[slot] = b.send(to: links.parent, from: partial, bytes: bytes, after: [last])
            }
        }
        var sch = b.finish()
        sch.signature = collectiveSignature([3, count, Int(type.rawValue), Int(op.rawValue), root, chunkBytes])
        return sch
    }
}
