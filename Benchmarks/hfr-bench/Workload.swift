import Glibc
import HFReduce

/// One operation at one size on the benchmark's two buffers: where its inputs and outputs are,
/// how they are filled, poisoned and checked, and the call itself.
///
/// Placements follow nccl-tests: out-of-place reads the send buffer and writes the receive
/// buffer; in-place uses the receive buffer for both, at nccl-tests' in-place offsets:
/// allgather sends from block `rank` of the receive buffer, reducescatter receives into block
/// `rank` of the send data, the others use the same address for both.
struct Workload {
    let operation: Operation
    let comm: Communicator
    let type: DataType
    let op: ReduceOp
    let root: Int
    let algorithm: AllreduceAlgorithm?
    /// Elements of one rank's block (the message for unblocked operations).
    let blockCount: Int
    let send: UnsafeMutableRawPointer
    let recv: UnsafeMutableRawPointer
    /// Check data of the reductions (allreduce, reduce, reducescatter).
    let pattern: CheckPattern
    /// Check data of the data movers (broadcast, allgather, alltoall, sendrecv).
    let blocks: BlockValues

    var n: Int { comm.size }
    var rank: Int { comm.rank }
    var elementSize: Int { type.size }
    /// nccl-tests' `count` column.
    var reportedCount: Int { operation.reportedCount(blockCount: blockCount, ranks: n) }
    /// nccl-tests' `size` column, in bytes.
    var reportedBytes: Int { reportedCount * elementSize }

    // MARK: - Regions

    /// The data a rank contributes: (address, elements).
    func input(inPlace: Bool) -> (UnsafeMutableRawPointer, Int) {
        let base = inPlace ? recv : send
        switch operation {
        case .allreduce, .broadcast, .reduce, .sendrecv: return (base, blockCount)
        case .allgather: return (inPlace ? recv + rank * blockCount * elementSize : send, blockCount)
        case .reducescatter, .alltoall: return (base, n * blockCount)
        }
    }

    /// The result a rank receives (for reduce on a non-root rank: the buffer that must stay as it was).
    func output(inPlace: Bool) -> (UnsafeMutableRawPointer, Int) {
        switch operation {
        case .allreduce, .broadcast, .reduce, .sendrecv: return (recv, blockCount)
        case .allgather, .alltoall: return (recv, n * blockCount)
        case .reducescatter: return (inPlace ? recv + rank * blockCount * elementSize : recv, blockCount)
        }
    }

    // MARK: - Call

    /// One collective call (sendrecv: a receive from rank-1 and a send to rank+1, both in flight).
    func call(inPlace: Bool) throws {
        let s = UnsafeRawPointer(input(inPlace: inPlace).0), r = output(inPlace: inPlace).0, c = blockCount
        switch operation {
        case .allreduce:
            try comm.allReduce(send: s, recv: r, count: c, type: type, op: op, algorithm: algorithm)
        case .broadcast:
            try comm.broadcast(send: s, recv: r, count: c, type: type, root: root)
        case .reduce:
            try comm.reduce(send: s, recv: r, count: c, type: type, op: op, root: root)
        case .allgather:
            try comm.allGather(send: s, recv: r, sendCount: c, type: type)
        case .reducescatter:
            try comm.reduceScatter(send: s, recv: r, recvCount: c, type: type, op: op)
        case .alltoall:
            try comm.allToAll(send: s, recv: r, countPerPeer: c, type: type)
        case .sendrecv:
            let incoming = try comm.recvAsync(r, count: c, type: type, from: (rank + n - 1) % n)
            let outgoing = try comm.sendAsync(s, count: c, type: type, to: (rank + 1) % n)
            try incoming.wait()
            try outgoing.wait()
        }
    }

    // MARK: - Data

    /// The poison byte of output buffers: NaN for floating point; 0x5A (reductions) or 0xA5
    /// (data movers, never a check value) for integers.
    var poisonByte: Int32 { operation.reduces ? (type.isFloatingPoint ? 0xFF : 0x5A) : blocks.poisonByte }

    /// The raw bits of one poisoned element.
    var poisonBits: UInt64 { UInt64(UInt8(poisonByte)) &* 0x0101_0101_0101_0101 }

    /// Poisons the output, then writes this rank's input (which in place may lie inside it).
    func prepareCheck(inPlace: Bool) {
        let (out, outCount) = output(inPlace: inPlace)
        memset(out, poisonByte, outCount * elementSize)
        fillInput(inPlace: inPlace)
    }

    /// Poisons the output only (before a timed loop whose last result is checked).
    func poisonOutput(inPlace: Bool) {
        let (out, outCount) = output(inPlace: inPlace)
        memset(out, poisonByte, outCount * elementSize)
    }

    /// Writes this rank's input: the reduction pattern, or the tagged blocks it sends.
    func fillInput(inPlace: Bool) {
        let (p, count) = input(inPlace: inPlace)
        switch operation {
        case .allreduce, .reduce, .reducescatter:
            fillPattern(p, count: count, size: elementSize, pattern: pattern.fill)
        case .broadcast:
            if rank == root { blocks.fill(p, count: count, tag: root) }
        case .allgather, .sendrecv:
            blocks.fill(p, count: count, tag: rank)
        case .alltoall:
            for q in 0..<n { blocks.fill(p + q * blockCount * elementSize, count: blockCount, tag: rank * n + q) }
        }
    }

    /// Input for timed in-place loops: for the reductions a value the reduction maps to itself
    /// when there is one (so repeated calls stay finite), otherwise the check input.
    func prepareTiming(inPlace: Bool) {
        if inPlace, operation.reduces, let steady = CheckValues.steadyInPlaceValue(type: type, op: op) {
            let (p, count) = input(inPlace: true)
            fillValue(p, count: count, size: elementSize, value: steady)
        } else {
            fillInput(inPlace: inPlace)
        }
    }

    /// This rank's wrong output elements. Reduce on a non-root rank: elements that changed.
    func wrong(inPlace: Bool) -> Int {
        let (out, count) = output(inPlace: inPlace)
        let es = elementSize
        switch operation {
        case .allreduce:
            return countWrong(out, count: count, size: es, pattern: pattern.expected)
        case .reduce:
            if rank == root { return countWrong(out, count: count, size: es, pattern: pattern.expected) }
            return countWrong(out, count: count, size: es, pattern: inPlace ? pattern.fill : [poisonBits])
        case .reducescatter:
            let shift = rank * blockCount % pattern.period
            let expected = Array(pattern.expected[shift...] + pattern.expected[..<shift])
            return countWrong(out, count: count, size: es, pattern: expected)
        case .broadcast:
            return blocks.wrong(out, count: count, tag: root)
        case .allgather:
            return (0..<n).reduce(0) { $0 + blocks.wrong(out + $1 * blockCount * es, count: blockCount, tag: $1) }
        case .alltoall:
            return (0..<n).reduce(0) { $0 + blocks.wrong(out + $1 * blockCount * es, count: blockCount, tag: $1 * n + rank) }
        case .sendrecv:
            return blocks.wrong(out, count: count, tag: (rank + n - 1) % n)
        }
    }

    /// Self-test of the checker (HFR_CORRUPT=1): flips the low bit of the middle output element.
    func corrupt(inPlace: Bool) {
        let (out, count) = output(inPlace: inPlace)
        guard count > 0 else { return }
        out.assumingMemoryBound(to: UInt8.self)[(count / 2) * elementSize] ^= 1
    }
}
