import HFRKernels

/// Argument checks shared by every collective; each error names the argument and its value.
enum Arguments {
    static func byteCount(count: Int, type: DataType) throws(HFRError) -> Int {
        guard count >= 0 else { throw .invalidArgument("count is \(count); it must not be negative") }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: type.size)
        guard !overflow else { throw .invalidArgument("count \(count) of \(type) overflows the byte size") }
        return bytes
    }

    static func checkBuffers(send: UnsafeRawPointer?, recv: UnsafeMutableRawPointer?, bytes: Int) throws(HFRError) {
        guard bytes > 0 else { return }
        guard let send else { throw .invalidArgument("send buffer is NULL with a size of \(bytes) bytes") }
        guard let recv else { throw .invalidArgument("receive buffer is NULL with a size of \(bytes) bytes") }
        let s = UInt(bitPattern: send), r = UInt(bitPattern: recv)
        if s != r && s < r &+ UInt(bytes) && r < s &+ UInt(bytes) {
            throw .invalidArgument("send buffer \(send) and receive buffer \(recv) overlap without being the same (\(bytes) bytes each)")
        }
    }

    /// `count * type.size * times`, checked for overflow.
    static func byteCount(count: Int, type: DataType, times: Int) throws(HFRError) -> Int {
        let one = try byteCount(count: count, type: type)
        let (bytes, overflow) = one.multipliedReportingOverflow(by: times)
        guard !overflow else { throw .invalidArgument("count \(count) of \(type) for \(times) ranks overflows the byte size") }
        return bytes
    }

    /// The bytes that blocks at `displs` of `counts` elements reach.
    /// `counts` and `displs` are named `<prefix>Counts` and `<prefix>Displs` in errors.
    static func extent(_ counts: [Int], _ displs: [Int], type: DataType, prefix: String) throws(HFRError) -> Int {
        var end = 0
        for i in counts.indices where counts[i] > 0 {
            let (e, o1) = displs[i].addingReportingOverflow(counts[i])
            let (bytes, o2) = e.multipliedReportingOverflow(by: type.size)
            guard !o1 && !o2 else {
                throw .invalidArgument("\(prefix)Displs[\(i)] = \(displs[i]) plus \(prefix)Counts[\(i)] = \(counts[i]) elements of \(type) overflows the byte size")
            }
            end = max(end, bytes)
        }
        return end
    }

    /// The non-empty blocks at `displs` of `counts` elements must not overlap (two peers' data
    /// would land on the same bytes, and which one stays would depend on timing).
    static func checkBlocksDisjoint(_ counts: [Int], _ displs: [Int], prefix: String) throws(HFRError) {
        let blocks = counts.indices.filter { counts[$0] > 0 }.sorted { displs[$0] < displs[$1] }
        for (a, b) in zip(blocks, blocks.dropFirst()) where displs[a] + counts[a] > displs[b] {
            throw .invalidArgument("the blocks of ranks \(a) and \(b) overlap: \(prefix)Displs[\(a)] = \(displs[a]) with \(prefix)Counts[\(a)] = \(counts[a]) "
                                   + "reaches past \(prefix)Displs[\(b)] = \(displs[b])")
        }
    }

    /// Send and receive regions must not overlap (out-of-place operations).
    static func checkDisjoint(send: UnsafeRawPointer?, sendBytes: Int, recv: UnsafeMutableRawPointer?, recvBytes: Int) throws(HFRError) {
        if sendBytes > 0 && send == nil { throw .invalidArgument("send buffer is NULL with a size of \(sendBytes) bytes") }
        if recvBytes > 0 && recv == nil { throw .invalidArgument("receive buffer is NULL with a size of \(recvBytes) bytes") }
        guard let send, let recv, sendBytes > 0, recvBytes > 0 else { return }
        let s = UInt(bitPattern: send), r = UInt(bitPattern: recv)
        if s < r &+ UInt(recvBytes) && r < s &+ UInt(sendBytes) {
            throw .invalidArgument("send buffer \(send) (\(sendBytes) bytes) and receive buffer \(recv) (\(recvBytes) bytes) overlap, and this is not the in-place form")
        }
    }
}
