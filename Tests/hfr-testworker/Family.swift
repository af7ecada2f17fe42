import Glibc
import HFReduce

/// Checks every collective of the family against values computed here, for every type,
/// awkward counts, several roots, in place and out of place. Returns the number of wrong elements.
func checkFamily(_ comm: Communicator, counts: [Int]) throws -> Int {
    let n = comm.size, rank = comm.rank
    var wrong = 0
    func buffer(_ elements: Int, _ type: DataType) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(elements * type.size, 1), alignment: 64)
        memset(p, 0x5A, max(elements * type.size, 1))
        return p
    }
    func expect(_ what: String, _ got: Double, _ want: Double) {
        if got != want && !(got.isNaN && want.isNaN) {
            if wrong < 5 { print("rank \(rank): \(what): got \(got), expected \(want)") }
            wrong += 1
        }
    }
    func a2a(_ src: Int, _ dst: Int, _ i: Int) -> Int { (src * 7 + dst * 3 + i) % 23 }
    let poison = Expected.load(buffer(1, .float64), 0, .float64)  // a 0x5A.. pattern, as read back
    _ = poison

    for type in DataType.allCases {
        for count in counts {
            // Broadcast from several roots, out of place and in place at the root.
            for root in Set([0, n - 1, n / 2]).sorted() {
                for inPlace in [false, true] {
                    let recv = buffer(count, type)
                    let send = inPlace ? recv : buffer(count, type)
                    if rank == root { for i in 0..<count { Expected.store(Expected.input(rank: root, index: i, op: .sum, type: type), at: send, i, type) } }
                    try comm.broadcast(send: rank == root ? send : nil, recv: recv, count: count, type: type, root: root)
                    for i in 0..<count {
                        expect("broadcast \(type) root \(root) count \(count) [\(i)]", Expected.load(recv, i, type),
                               Expected.load(UnsafeRawPointer(bufferValue(Expected.input(rank: root, index: i, op: .sum, type: type), type)), 0, type))
                    }
                    if !inPlace { send.deallocate() }
                    recv.deallocate()
                }
            }
            // Reduce to several roots with every op; only the root's receive buffer changes.
            for op in ReduceOp.allCases {
                for root in Set([0, n - 1]).sorted() {
                    let send = buffer(count, type), recv = buffer(count, type)
                    for i in 0..<count { Expected.store(Expected.input(rank: rank, index: i, op: op, type: type), at: send, i, type) }
                    try comm.reduce(send: send, recv: recv, count: count, type: type, op: op, root: root)
                    let untouched = buffer(count, type)
                    for i in 0..<count {
                        let want = rank == root ? Expected.result(ranks: n, index: i, op: op, type: type) : Expected.load(untouched, i, type)
                        expect("reduce \(type) \(op) root \(root) count \(count) [\(i)]", normalized(Expected.load(recv, i, type), type), normalized(want, type))
                    }
                    send.deallocate(); recv.deallocate(); untouched.deallocate()
                }
            }
            // Allgather, out of place and in place (send is this rank's block of recv).
            for inPlace in [false, true] {
                let recv = buffer(count * n, type)
                let send = inPlace ? recv + rank * count * type.size : buffer(count, type)
                for i in 0..<count { Expected.store(Expected.input(rank: rank, index: i, op: .sum, type: type), at: send, i, type) }
                try comm.allGather(send: send, recv: recv, sendCount: count, type: type)
                for p in 0..<n {
                    for i in 0..<count {
                        expect("allgather \(type) count \(count) block \(p) [\(i)]", Expected.load(recv, p * count + i, type),
                               Expected.load(UnsafeRawPointer(bufferValue(Expected.input(rank: p, index: i, op: .sum, type: type), type)), 0, type))
                    }
                }
                if !inPlace { send.deallocate() }
                recv.deallocate()
            }
            // Reduce-scatter with sum and max, out of place and in place.
            for op in [ReduceOp.sum, .max, .avg] {
                for inPlace in [false, true] {
                    let send = buffer(count * n, type)
                    let recv = inPlace ? send + rank * count * type.size : buffer(count, type)
                    for j in 0..<(count * n) { Expected.store(Expected.input(rank: rank, index: j, op: op, type: type), at: send, j, type) }
                    try comm.reduceScatter(send: send, recv: recv, recvCount: count, type: type, op: op)
                    for i in 0..<count {
                        expect("reduce-scatter \(type) \(op) count \(count) [\(i)]", Expected.load(recv, i, type),
                               Expected.result(ranks: n, index: rank * count + i, op: op, type: type))
                    }
                    if !inPlace { recv.deallocate() }
                    send.deallocate()
                }
            }
            // All-to-all, out of place and in place.
            for inPlace in [false, true] {
                let recv = buffer(count * n, type)
                let send = inPlace ? recv : buffer(count * n, type)
                for p in 0..<n { for i in 0..<count { Expected.store(a2a(rank, p, i), at: send, p * count + i, type) } }
                try comm.allToAll(send: send, recv: recv, countPerPeer: count, type: type)
                for p in 0..<n {
                    for i in 0..<count {
                        expect("all-to-all \(type) count \(count) from \(p) [\(i)]", Expected.load(recv, p * count + i, type),
                               Expected.load(UnsafeRawPointer(bufferValue(a2a(p, rank, i), type)), 0, type))
                    }
                }
                if !inPlace { send.deallocate() }
                recv.deallocate()
            }
            // All-to-all-v: rank s sends (s + d) % 3 * count elements to d (zero for some pairs),
            // packed with a gap of 3 elements between blocks.
            func vcount(_ s: Int, _ d: Int) -> Int { (s + d) % 3 * count }
            let sendCounts = (0..<n).map { vcount(rank, $0) }, recvCounts = (0..<n).map { vcount($0, rank) }
            var sendDispls = [Int](), recvDispls = [Int](), at = 0
            for c in sendCounts { sendDispls.append(at); at += c + 3 }
            let sendTotal = at
            at = 0
            for c in recvCounts { recvDispls.append(at); at += c + 3 }
            let send = buffer(sendTotal, type), recv = buffer(at, type)
            for p in 0..<n { for i in 0..<sendCounts[p] { Expected.store(a2a(rank, p, i), at: send, sendDispls[p] + i, type) } }
            try comm.allToAllv(send: send, sendCounts: sendCounts, sendDispls: sendDispls, recv: recv, recvCounts: recvCounts, recvDispls: recvDispls, type: type)
            for p in 0..<n {
                for i in 0..<recvCounts[p] {
                    expect("all-to-all-v \(type) from \(p) [\(i)]", Expected.load(recv, recvDispls[p] + i, type),
                           Expected.load(UnsafeRawPointer(bufferValue(a2a(p, rank, i), type)), 0, type))
                }
            }
            send.deallocate(); recv.deallocate()
            try comm.barrier()
        }
    }

    // Send and receive around the ring, asynchronously, several messages in flight.
    if n > 1 {
        let count = 1001
        let right = (rank + 1) % n, left = (rank - 1 + n) % n
        var sends: [UnsafeMutableRawPointer] = [], recvs: [UnsafeMutableRawPointer] = [], requests: [CollectiveRequest] = []
        for m in 0..<3 {
            let s = buffer(count, .int32), r = buffer(count, .int32)
            for i in 0..<count { s.storeBytes(of: Int32(rank * 100_000 + m * 10_000 + i), toByteOffset: i * 4, as: Int32.self) }
            requests.append(try comm.recvAsync(r, count: count, type: .int32, from: left))
            requests.append(try comm.sendAsync(s, count: count, type: .int32, to: right))
            sends.append(s); recvs.append(r)
        }
        for q in requests { try q.wait() }
        for m in 0..<3 {
            for i in 0..<count {
                expect("recv from \(left) message \(m) [\(i)]", Double(recvs[m].load(fromByteOffset: i * 4, as: Int32.self)), Double(left * 100_000 + m * 10_000 + i))
            }
            sends[m].deallocate(); recvs[m].deallocate()
        }
    }

    // Blocking and asynchronous collectives of different kinds interleaved.
    let count = 40_000
    let ar = buffer(count, .float32), bc = buffer(count, .float32), ag = buffer(count * n, .int32), agIn = buffer(count, .int32)
    for i in 0..<count {
        Expected.store(Expected.input(rank: rank, index: i, op: .sum, type: .float32), at: ar, i, .float32)
        Expected.store(i % 1000, at: bc, i, .float32)
        Expected.store(rank * 3 + i % 17, at: agIn, i, .int32)
    }
    let r1 = try comm.allReduceAsync(send: ar, recv: ar, count: count, type: .float32, op: .sum)
    let r2 = try comm.allGatherAsync(send: agIn, recv: ag, sendCount: count, type: .int32)
    try comm.broadcast(send: bc, recv: bc, count: count, type: .float32, root: n - 1)
    let r3 = try comm.barrierAsync()
    try r3.wait(); try r2.wait(); try r1.wait()
    for i in 0..<count {
        expect("interleaved allreduce [\(i)]", Expected.load(ar, i, .float32), Expected.result(ranks: n, index: i, op: .sum, type: .float32))
        expect("interleaved broadcast [\(i)]", Expected.load(bc, i, .float32), Double(i % 1000))
        for p in 0..<n { expect("interleaved allgather [\(p)][\(i)]", Expected.load(ag, p * count + i, .int32), Double(p * 3 + i % 17)) }
    }
    return wrong
}

/// The value `v` as stored in `type` (wrapped for integers, rounded for halves), in a scratch buffer.
func bufferValue(_ v: Int, _ type: DataType) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
    Expected.store(v, at: p, 0, type)
    return p
}

/// uint64 results come back as UInt64 and are compared through their bit pattern.
func normalized(_ v: Double, _ type: DataType) -> Double {
    if type == .uint64 && v < 0 { return Double(UInt64(bitPattern: Int64(v))) }
    return v
}
