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
}
