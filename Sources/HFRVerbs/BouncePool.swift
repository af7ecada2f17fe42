import Glibc

/// Registered staging buffers for memory the device refuses to register: a fragment is copied
/// into a bounce buffer and sent from there (or received there and copied out). One region
/// covers the whole pool; taking and giving back a buffer allocates nothing. Used from one thread.
public final class BouncePool: @unchecked Sendable {
    public let bufferSize: Int
    public let count: Int
    public let region: MemoryRegion
    private let free: UnsafeMutablePointer<Int32>
    private var freeCount: Int
    private var inUse: [Bool]

    public init(protectionDomain: ProtectionDomain, bufferSize: Int, count: Int, access: MemoryAccess = .rdmaTarget) throws(VerbsError) {
        guard bufferSize > 0, count > 0, bufferSize <= Int.max / count else {
            throw .invalidArgument("a bounce pool of \(count) buffers of \(bufferSize) bytes")
        }
        let memory = PageMemory(byteCount: bufferSize * count)
        region = try protectionDomain.register(memory.pointer, length: bufferSize * count, access: access)
        region.keepAlive = memory
        self.bufferSize = bufferSize
        self.count = count
        free = .allocate(capacity: count)
        for i in 0..<count { free[i] = Int32(count - 1 - i) }
        freeCount = count
        inUse = [Bool](repeating: false, count: count)
    }

    deinit { free.deallocate() }

    /// Buffers not taken.
    public var available: Int { freeCount }

    /// A free buffer, or nil when all are taken.
    @inline(__always) public func take() -> BounceBuffer? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        let index = Int(free[freeCount])
        inUse[index] = true
        return BounceBuffer(index: index, address: region.address + index * bufferSize, length: bufferSize,
                            lkey: region.lkey, rkey: region.rkey)
    }

    @inline(__always) public func giveBack(_ buffer: BounceBuffer) {
        precondition(inUse[buffer.index], "bounce buffer \(buffer.index) given back twice")
        inUse[buffer.index] = false
        free[freeCount] = Int32(buffer.index)
        freeCount += 1
    }
}

/// One buffer of a `BouncePool`.
public struct BounceBuffer: @unchecked Sendable {
    public let index: Int
    public let address: UnsafeMutableRawPointer
    public let length: Int
    public let lkey: UInt32
    public let rkey: UInt32

    /// The first `count` bytes as the local side of a work request.
    @inline(__always) public func local(count: Int) -> LocalBuffer {
        precondition(count >= 0 && count <= length)
        return LocalBuffer(address: address, length: count, lkey: lkey)
    }

    /// The first `count` bytes as the target of a peer's write.
    @inline(__always) public func remote(count: Int) -> RemoteBuffer {
        precondition(count >= 0 && count <= length)
        return RemoteBuffer(address: UInt64(UInt(bitPattern: address)), length: count, rkey: rkey)
    }
}

/// Page-aligned memory freed when the last owner goes (after the region over it is deregistered).
final class PageMemory {
    let pointer: UnsafeMutableRawPointer
    init(byteCount: Int) {
        pointer = .allocate(byteCount: byteCount, alignment: Int(sysconf(Int32(_SC_PAGESIZE))))
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }
    deinit { pointer.deallocate() }
}
