import CHFRVerbs
import HFRSystem

/// An open RDMA device (an `ibv_context`), closed when the last object made from it goes.
public final class VerbsDevice: @unchecked Sendable {
    public let library: VerbsLibrary
    public let name: String
    /// The `struct ibv_context *`.
    public let context: UnsafeMutablePointer<ibv_context>

    init(library: VerbsLibrary, name: String, context: UnsafeMutablePointer<ibv_context>) {
        self.library = library
        self.name = name
        self.context = context
    }

    deinit {
        let rc = library.ops.pointee.close_device!(context)
        if rc != 0 { Log.warn("ibv_close_device(\(name)): \(library.failure("ibv_close_device", rc))") }
    }

    /// `ibv_query_device`.
    public func attributes() throws(VerbsError) -> DeviceAttributes {
        var a = ibv_device_attr()
        let rc = library.ops.pointee.query_device!(context, &a)
        if rc != 0 { throw library.failure("ibv_query_device(\(name))", rc) }
        return DeviceAttributes(a)
    }

    /// `ibv_query_port`.
    public func port(_ number: UInt8) throws(VerbsError) -> PortAttributes {
        var a = ibv_port_attr()
        let rc = library.ops.pointee.query_port!(context, number, &a)
        if rc != 0 { throw library.failure("ibv_query_port(\(name), \(number))", rc) }
        return PortAttributes(a)
    }

    /// `ibv_query_gid`: entry `index` of the port's GID table.
    public func gid(port: UInt8, index: Int) throws(VerbsError) -> GID {
        var g = ibv_gid()
        let rc = library.ops.pointee.query_gid!(context, port, Int32(index), &g)
        if rc != 0 { throw library.failure("ibv_query_gid(\(name), \(port), \(index))", rc) }
        return GID(g)
    }

    /// The type of GID table entry `index` (sysfs `gid_attrs/types/<index>` for libibverbs).
    public func gidType(port: UInt8, index: Int) throws(VerbsError) -> GIDType {
        var t: UInt32 = 0
        let rc = library.ops.pointee.query_gid_type!(context, port, Int32(index), &t)
        if rc != 0 { throw library.failure("GID type of \(name) port \(port) index \(index)", rc) }
        switch t {
        case IBV_GID_TYPE_ROCE_V2.rawValue: return .roceV2
        case IBV_GID_TYPE_ROCE_V1.rawValue: return .roceV1
        default: return .infiniband
        }
    }

    /// `ibv_alloc_pd`.
    public func makeProtectionDomain() throws(VerbsError) -> ProtectionDomain {
        guard let pd = library.ops.pointee.alloc_pd!(context) else { throw library.failure("ibv_alloc_pd(\(name))", -1) }
        return ProtectionDomain(device: self, pd: pd)
    }

    /// `ibv_create_cq` with `depth` entries, and an array of `batch` work completions that
    /// `poll()` fills (allocated here, once).
    public func makeCompletionQueue(depth: Int, batch: Int = 64) throws(VerbsError) -> CompletionQueue {
        guard depth >= 1, depth <= Int(Int32.max), batch >= 1 else {
            throw .invalidArgument("completion queue depth \(depth) and batch \(batch) must be at least 1")
        }
        guard let cq = library.ops.pointee.create_cq!(context, Int32(depth), nil, nil, 0) else {
            throw library.failure("ibv_create_cq(\(name), \(depth))", -1)
        }
        return CompletionQueue(device: self, cq: cq, batch: batch)
    }
}

/// What `ibv_query_device` reports that the transport uses.
public struct DeviceAttributes: Equatable, Sendable {
    public var portCount: Int
    public var maxQueuePairs: Int
    public var maxWorkRequests: Int
    public var maxScatterGather: Int
    public var maxCompletionQueueEntries: Int
    public var maxMemoryRegions: Int
    public var maxMemoryRegionSize: UInt64
    public var firmware: String

    init(_ a: ibv_device_attr) {
        portCount = Int(a.phys_port_cnt)
        maxQueuePairs = Int(a.max_qp)
        maxWorkRequests = Int(a.max_qp_wr)
        maxScatterGather = Int(a.max_sge)
        maxCompletionQueueEntries = Int(a.max_cqe)
        maxMemoryRegions = Int(a.max_mr)
        maxMemoryRegionSize = a.max_mr_size
        var fw = a.fw_ver
        firmware = withUnsafeBytes(of: &fw) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
