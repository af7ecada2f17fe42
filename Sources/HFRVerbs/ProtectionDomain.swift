import CHFRVerbs
import HFRSystem

/// A protection domain (`ibv_pd`): memory regions and queue pairs of one PD may be used together.
public final class ProtectionDomain: @unchecked Sendable {
    public let device: VerbsDevice
    /// The `struct ibv_pd *`.
    public let pd: UnsafeMutablePointer<ibv_pd>

    init(device: VerbsDevice, pd: UnsafeMutablePointer<ibv_pd>) {
        self.device = device
        self.pd = pd
    }

    deinit {
        let rc = device.library.ops.pointee.dealloc_pd!(pd)
        if rc != 0 { Log.warn("ibv_dealloc_pd(\(device.name)): \(device.library.failure("ibv_dealloc_pd", rc))") }
    }

    /// `ibv_reg_mr` of `[address, address + length)`.
    public func register(_ address: UnsafeMutableRawPointer, length: Int, access: MemoryAccess) throws(VerbsError) -> MemoryRegion {
        guard length > 0 else { throw .invalidArgument("registering \(length) bytes at \(address)") }
        guard let mr = device.library.ops.pointee.reg_mr!(pd, address, length, access.rawValue) else {
            throw device.library.failure("ibv_reg_mr(\(address), \(length) bytes)", -1)
        }
        return MemoryRegion(protectionDomain: self, mr: mr, access: access)
    }

    /// `ibv_create_qp` of a reliable-connected queue pair on `port`.
    public func makeQueuePair(port: VerbsPort, sendQueue: CompletionQueue, receiveQueue: CompletionQueue,
                              capabilities: QueuePairCapabilities) throws(VerbsError) -> QueuePair {
        guard port.device === device, sendQueue.device === device, receiveQueue.device === device else {
            throw .invalidArgument("a queue pair's port, protection domain and completion queues must be of one device")
        }
        return try QueuePair(protectionDomain: self, port: port, sendQueue: sendQueue, receiveQueue: receiveQueue,
                             capabilities: capabilities)
    }
}

/// `enum ibv_access_flags`.
public struct MemoryAccess: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let localWrite = MemoryAccess(rawValue: Int32(IBV_ACCESS_LOCAL_WRITE.rawValue))
    public static let remoteWrite = MemoryAccess(rawValue: Int32(IBV_ACCESS_REMOTE_WRITE.rawValue))
    public static let remoteRead = MemoryAccess(rawValue: Int32(IBV_ACCESS_REMOTE_READ.rawValue))
    /// What a buffer RDMA writes land in needs.
    public static let rdmaTarget: MemoryAccess = [.localWrite, .remoteWrite]
}
