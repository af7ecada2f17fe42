import HFRSystem
import HFRKernels
import HFRCollectives

/// The rest of the collective family. Each has a blocking form and an `...Async` form that
/// returns a `CollectiveRequest`; all share the engine, the transport and the reduction kernels
/// with allreduce. Counts are in elements.
extension Communicator {
    func checkRoot(_ root: Int) throws(HFRError) {
        guard root >= 0 && root < size else { throw .invalidArgument("root is \(root); it must be in 0..<\(size)") }
    }

    func checkPeer(_ peer: Int) throws(HFRError) {
        guard peer >= 0 && peer < size else { throw .invalidArgument("peer is \(peer); it must be in 0..<\(size)") }
        guard peer != rank else { throw .invalidArgument("peer is \(peer), this rank itself") }
    }

    func chunk(_ bytes: Int) -> Int {
        configuration.chunkBytes > 0 ? configuration.chunkBytes : min(max(bytes / 8, 64 << 10), 1 << 20)
    }

    // MARK: Broadcast

    /// Copies `count` elements from `root`'s `send` into every rank's `recv`. Only the root reads
    /// `send` (others may pass nil); in place when the root's `send == recv`.
    public func broadcast(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType, root: Int) throws(HFRError) {
        try broadcastAsync(send: send, recv: recv, count: count, type: type, root: root, willWait: true).wait()
    }

    public func broadcastAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType, root: Int) throws(HFRError) -> CollectiveRequest {
        try broadcastAsync(send: send, recv: recv, count: count, type: type, root: root, willWait: false)
    }

    func broadcastAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType, root: Int, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        try checkRoot(root)
        let bytes = try Arguments.byteCount(count: count, type: type)
        if rank == root {
            try Arguments.checkBuffers(send: send, recv: recv, bytes: bytes)
        } else if bytes > 0 && recv == nil {
            throw .invalidArgument("receive buffer is NULL with a size of \(bytes) bytes")
        }
        let inPlace = rank == root && send == UnsafeRawPointer(recv)
        let s = RootedSchedule.broadcast(rank: rank, ranks: size, root: root, count: count, type: type, inPlace: inPlace, chunkBytes: chunk(bytes))
        if count == 0 { return try submitEmpty(signature: s.signature, "broadcast", willWait: willWait) }
        return try submit(s, "broadcast", type: type, send: rank == root ? send : nil, recv: recv, willWait: willWait)
    }

    // MARK: Reduce

    /// Reduces `count` elements of every rank's `send` with `op` into `root`'s `recv`. Only the
    /// root writes `recv` (others may pass nil).
    public func reduce(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType, op: ReduceOp, root: Int) throws(HFRError) {
        try reduceAsync(send: send, recv: recv, count: count, type: type, op: op, root: root, willWait: true).wait()
    }

    public func reduceAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType, op: ReduceOp, root: Int) throws(HFRError) -> CollectiveRequest {
        try reduceAsync(send: send, recv: recv, count: count, type: type, op: op, root: root, willWait: false)
    }

    func reduceAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, count: Int, type: DataType, op: ReduceOp, root: Int, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        try checkRoot(root)
        let bytes = try Arguments.byteCount(count: count, type: type)
        if rank == root {
            try Arguments.checkBuffers(send: send, recv: recv, bytes: bytes)
        } else if bytes > 0 && send == nil {
            throw .invalidArgument("send buffer is NULL with a size of \(bytes) bytes")
        }
        let s = RootedSchedule.reduce(rank: rank, ranks: size, root: root, count: count, type: type, op: op, chunkBytes: chunk(bytes))
        if count == 0 { return try submitEmpty(signature: s.signature, "reduce", willWait: willWait) }
        return try submit(s, "reduce", type: type, op: op, send: send, recv: rank == root ? recv : nil, willWait: willWait)
    }

    // MARK: Allgather

    /// Every rank contributes `sendCount` elements; `recv` receives all ranks' blocks in rank
    /// order (`size * sendCount` elements). In place when `send == recv + rank * sendCount`.
    public func allGather(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, sendCount: Int, type: DataType) throws(HFRError) {
        try allGatherAsync(send: send, recv: recv, sendCount: sendCount, type: type, willWait: true).wait()
    }

    public func allGatherAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, sendCount: Int, type: DataType) throws(HFRError) -> CollectiveRequest {
        try allGatherAsync(send: send, recv: recv, sendCount: sendCount, type: type, willWait: false)
    }

    func allGatherAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, sendCount: Int, type: DataType, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        let block = try Arguments.byteCount(count: sendCount, type: type)
        let total = try Arguments.byteCount(count: block, type: .uint8, times: size)
        let inPlace = recv != nil && send == UnsafeRawPointer(recv! + rank * block)
        if !inPlace { try Arguments.checkDisjoint(send: send, sendBytes: block, recv: recv, recvBytes: total) }
        let s = RingSchedule.allGather(rank: rank, ranks: size, count: sendCount, type: type, inPlace: inPlace, chunkBytes: chunk(block))
        if sendCount == 0 { return try submitEmpty(signature: s.signature, "allgather", willWait: willWait) }
        return try submit(s, "allgather", type: type, send: send, recv: recv, willWait: willWait)
    }

    // MARK: Reduce-scatter

    /// `send` holds `size` blocks of `recvCount` elements; rank r receives in `recv` the
    /// reduction of every rank's block r. In place when `recv == send + rank * recvCount`.
    public func reduceScatter(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, recvCount: Int, type: DataType, op: ReduceOp) throws(HFRError) {
        try reduceScatterAsync(send: send, recv: recv, recvCount: recvCount, type: type, op: op, willWait: true).wait()
    }

    public func reduceScatterAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, recvCount: Int, type: DataType, op: ReduceOp) throws(HFRError) -> CollectiveRequest {
        try reduceScatterAsync(send: send, recv: recv, recvCount: recvCount, type: type, op: op, willWait: false)
    }

    func reduceScatterAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, recvCount: Int, type: DataType, op: ReduceOp, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        let block = try Arguments.byteCount(count: recvCount, type: type)
        let total = try Arguments.byteCount(count: block, type: .uint8, times: size)
        // The ring's scratch holds about twice the send buffer.
        guard !total.multipliedReportingOverflow(by: 2).overflow else {
            throw .invalidArgument("recvCount \(recvCount) of \(type) for \(size) ranks overflows the byte size of the scratch memory it needs")
        }
        let inPlace = send != nil && UnsafeRawPointer(recv) == send! + rank * block
        if !inPlace { try Arguments.checkDisjoint(send: send, sendBytes: total, recv: recv, recvBytes: block) }
        let s = RingSchedule.reduceScatter(rank: rank, ranks: size, count: recvCount, type: type, op: op, chunkBytes: chunk(block))
        if recvCount == 0 { return try submitEmpty(signature: s.signature, "reduce-scatter", willWait: willWait) }
        return try submit(s, "reduce-scatter", type: type, op: op, send: send, recv: recv, willWait: willWait)
    }

    // MARK: All-to-all

    /// Sends block p of `send` (`countPerPeer` elements) to rank p, and receives rank p's block
    /// into block p of `recv`. In place when `send == recv`.
    public func allToAll(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, countPerPeer: Int, type: DataType) throws(HFRError) {
        try allToAllAsync(send: send, recv: recv, countPerPeer: countPerPeer, type: type, willWait: true).wait()
    }

    public func allToAllAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, countPerPeer: Int, type: DataType) throws(HFRError) -> CollectiveRequest {
        try allToAllAsync(send: send, recv: recv, countPerPeer: countPerPeer, type: type, willWait: false)
    }

    func allToAllAsync(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, countPerPeer: Int, type: DataType, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        _ = try Arguments.byteCount(count: countPerPeer, type: type)
        let total = try Arguments.byteCount(count: countPerPeer * 1, type: type, times: size)
        let inPlace = send != nil && send == UnsafeRawPointer(recv)
        if !inPlace { try Arguments.checkDisjoint(send: send, sendBytes: total, recv: recv, recvBytes: total) }
        let key = ScheduleKey(algorithm: nil, count: countPerPeer, type: type, op: .sum, inPlace: inPlace, chunk: 0)
        let s = cachedSchedule(key) {
            let counts = Array(repeating: countPerPeer, count: size)
            let displs = (0..<size).map { $0 * countPerPeer }
            return AllToAllSchedule.build(rank: rank, ranks: size, type: type, sendCounts: counts, sendDispls: displs,
                                          recvCounts: counts, recvDispls: displs, inPlace: inPlace, equalCount: countPerPeer)
        }
        if countPerPeer == 0 { return try submitEmpty(signature: s.schedule.signature, "all-to-all", willWait: willWait) }
        return try submit(s, "all-to-all", type: type, send: send, recv: recv, willWait: willWait)
    }

    /// All-to-all with per-peer counts and displacements (elements; zero counts allowed):
    /// `sendCounts[p]` elements at `sendDispls[p]` go to rank p, whose `recvCounts[p]` elements
    /// land at `recvDispls[p]`. Counts that disagree with the peer's are reported as invalidUsage.
    public func allToAllv(send: UnsafeRawPointer?, sendCounts: [Int], sendDispls: [Int],
                          recv: UnsafeMutableRawPointer?, recvCounts: [Int], recvDispls: [Int], type: DataType) throws(HFRError) {
        try allToAllvAsync(send: send, sendCounts: sendCounts, sendDispls: sendDispls, recv: recv, recvCounts: recvCounts,
                           recvDispls: recvDispls, type: type, willWait: true).wait()
    }

    public func allToAllvAsync(send: UnsafeRawPointer?, sendCounts: [Int], sendDispls: [Int],
                               recv: UnsafeMutableRawPointer?, recvCounts: [Int], recvDispls: [Int], type: DataType) throws(HFRError) -> CollectiveRequest {
        try allToAllvAsync(send: send, sendCounts: sendCounts, sendDispls: sendDispls, recv: recv, recvCounts: recvCounts,
                           recvDispls: recvDispls, type: type, willWait: false)
    }

    func allToAllvAsync(send: UnsafeRawPointer?, sendCounts: [Int], sendDispls: [Int], recv: UnsafeMutableRawPointer?,
                        recvCounts: [Int], recvDispls: [Int], type: DataType, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        for (name, a) in [("sendCounts", sendCounts), ("sendDispls", sendDispls), ("recvCounts", recvCounts), ("recvDispls", recvDispls)] {
            guard a.count == size else { throw .invalidArgument("\(name) has \(a.count) entries; the communicator has \(size) ranks") }
            if let i = a.firstIndex(where: { $0 < 0 }) { throw .invalidArgument("\(name)[\(i)] is \(a[i]); it must not be negative") }
        }
        guard sendCounts[rank] == recvCounts[rank] else {
            throw .invalidArgument("sendCounts[\(rank)] is \(sendCounts[rank]) and recvCounts[\(rank)] is \(recvCounts[rank]): "
                                   + "the block this rank (\(rank)) sends itself must be as long as the one it receives")
        }
        let sendExtent = try Arguments.extent(sendCounts, sendDispls, type: type, prefix: "send")
        let recvExtent = try Arguments.extent(recvCounts, recvDispls, type: type, prefix: "recv")
        try Arguments.checkBlocksDisjoint(recvCounts, recvDispls, prefix: "recv")
        if sendExtent > 0 && send == nil { throw .invalidArgument("send buffer is NULL with blocks up to \(sendExtent) bytes") }
        if recvExtent > 0 && recv == nil { throw .invalidArgument("receive buffer is NULL with blocks up to \(recvExtent) bytes") }
        try Arguments.checkDisjoint(send: send, sendBytes: sendExtent, recv: recv, recvBytes: recvExtent)
        let s = AllToAllSchedule.build(rank: rank, ranks: size, type: type, sendCounts: sendCounts, sendDispls: sendDispls,
                                       recvCounts: recvCounts, recvDispls: recvDispls, inPlace: false, equalCount: nil)
        return try submit(s, "all-to-all-v", type: type, send: send, recv: recv, willWait: willWait)
    }

    // MARK: Barrier

    /// Returns once every rank has entered the barrier.
    public func barrier() throws(HFRError) { try barrierAsync(willWait: true).wait() }

    public func barrierAsync() throws(HFRError) -> CollectiveRequest { try barrierAsync(willWait: false) }

    func barrierAsync(willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        return try submitBarrier(BarrierSchedule.build(rank: rank, ranks: size), "barrier", willWait: willWait)
    }

    // MARK: Send and receive

    /// Sends `count` elements to `peer`, which must call `recv` with the same count. Sends and
    /// receives between two ranks match in the order they are issued.
    public func send(_ buffer: UnsafeRawPointer?, count: Int, type: DataType, to peer: Int) throws(HFRError) {
        try sendAsync(buffer, count: count, type: type, to: peer, willWait: true).wait()
    }

    public func sendAsync(_ buffer: UnsafeRawPointer?, count: Int, type: DataType, to peer: Int) throws(HFRError) -> CollectiveRequest {
        try sendAsync(buffer, count: count, type: type, to: peer, willWait: false)
    }

    func sendAsync(_ buffer: UnsafeRawPointer?, count: Int, type: DataType, to peer: Int, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        try checkPeer(peer)
        let bytes = try Arguments.byteCount(count: count, type: type)
        if bytes > 0 && buffer == nil { throw .invalidArgument("send buffer is NULL with a size of \(bytes) bytes") }
        return try submit(PointToPointSchedule.send(to: peer, ranks: size, bytes: bytes, type: type), "send to rank \(peer)", type: type,
                          send: buffer, recv: nil, willWait: willWait, pointToPoint: peer, sending: true)
    }

    /// Receives `count` elements from `peer`.
    public func recv(_ buffer: UnsafeMutableRawPointer?, count: Int, type: DataType, from peer: Int) throws(HFRError) {
        try recvAsync(buffer, count: count, type: type, from: peer, willWait: true).wait()
    }

    public func recvAsync(_ buffer: UnsafeMutableRawPointer?, count: Int, type: DataType, from peer: Int) throws(HFRError) -> CollectiveRequest {
        try recvAsync(buffer, count: count, type: type, from: peer, willWait: false)
    }

    func recvAsync(_ buffer: UnsafeMutableRawPointer?, count: Int, type: DataType, from peer: Int, willWait: Bool) throws(HFRError) -> CollectiveRequest {
        try checkAlive()
        try checkPeer(peer)
        let bytes = try Arguments.byteCount(count: count, type: type)
        if bytes > 0 && buffer == nil { throw .invalidArgument("receive buffer is NULL with a size of \(bytes) bytes") }
        return try submit(PointToPointSchedule.recv(from: peer, ranks: size, bytes: bytes, type: type), "receive from rank \(peer)", type: type,
                          send: nil, recv: buffer, willWait: willWait, pointToPoint: peer)
    }
}

/// Two bytes a barrier exchanges.
final class BarrierBuffer {
    let pointer = UnsafeMutableRawPointer.allocate(byteCount: 2, alignment: 8)
    init() { pointer.storeBytes(of: 0, as: UInt16.self) }
    deinit { pointer.deallocate() }
}
