import CHFRVerbs
import HFRSystem

/// A registered memory region (`ibv_mr`), deregistered (`ibv_dereg_mr`) when the last
/// reference goes: a work request in flight keeps its region alive by holding it.
public final class MemoryRegion: @unchecked Sendable {
    public let protectionDomain: ProtectionDomain
    /// The `struct ibv_mr *`.
    public let mr: UnsafeMutablePointer<ibv_mr>
    public let address: UnsafeMutableRawPointer
    public let length: Int
    public let lkey: UInt32
    public let rkey: UInt32
    public let access: MemoryAccess
    /// Whatever must outlive the registration (the memory of a bounce pool).
    var keepAlive: AnyObject?

    init(protectionDomain: ProtectionDomain, mr: UnsafeMutablePointer<ibv_mr>, access: MemoryAccess) {
        self.protectionDomain = protectionDomain
        self.mr = mr
        address = mr.pointee.addr
        length = mr.pointee.length
        lkey = mr.pointee.lkey
        rkey = mr.pointee.rkey
        self.access = access
    }

    deinit {
        let library = protectionDomain.device.library
        let rc = library.ops.pointee.dereg_mr!(mr)
        if rc != 0 { Log.warn("ibv_dereg_mr: \(library.failure("ibv_dereg_mr", rc))") }
    }

    /// Whether `[start, start + count)` lies inside the region.
    @inline(__always) public func contains(_ start: UnsafeRawPointer, count: Int) -> Bool {
        let s = UInt(bitPattern: start), base = UInt(bitPattern: address)
        return count >= 0 && s >= base && UInt(count) <= UInt(length) && s - base <= UInt(length) - UInt(count)
    }

    /// `count` bytes at `start` (inside the region) as the local side of a work request.
    @inline(__always) public func local(_ start: UnsafeRawPointer, count: Int) -> LocalBuffer {
        precondition(contains(start, count: count), "the buffer lies outside the memory region")
        return LocalBuffer(address: start, length: count, lkey: lkey)
    }

    /// `count` bytes at `start` (inside the region) as the target of a peer's RDMA write.
    @inline(__always) public func remote(_ start: UnsafeRawPointer, count: Int) -> RemoteBuffer {
        precondition(contains(start, count: count), "the buffer lies outside the memory region")
        return RemoteBuffer(address: UInt64(UInt(bitPattern: start)), length: count, rkey: rkey)
    }
}

/// Registered local memory a work request reads from or receives into (an `ibv_sge`).
public struct LocalBuffer: Equatable, @unchecked Sendable {
    public var address: UnsafeRawPointer
    public var length: Int
    public var lkey: UInt32
    public init(address: UnsafeRawPointer, length: Int, lkey: UInt32) {
        self.address = address
        self.length = length
        self.lkey = lkey
    }
}

/// Memory of a peer that RDMA writes may target: what a receiver advertises.
public struct RemoteBuffer: Equatable, Sendable {
    public var address: UInt64
    public var length: Int
    public var rkey: UInt32
    public init(address: UInt64, length: Int, rkey: UInt32) {
        self.address = address
        self.length = length
        self.rkey = rkey
    }
}
