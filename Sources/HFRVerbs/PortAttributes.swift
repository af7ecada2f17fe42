import CHFRVerbs

/// `enum ibv_port_state`.
public enum PortState: UInt32, Sendable, CustomStringConvertible {
    case noOperation = 0, down = 1, initializing = 2, armed = 3, active = 4, activeDefer = 5

    public var description: String {
        switch self {
        case .noOperation: return "NOP"
        case .down: return "DOWN"
        case .initializing: return "INIT"
        case .armed: return "ARMED"
        case .active: return "ACTIVE"
        case .activeDefer: return "ACTIVE_DEFER"
        }
    }
}

/// The port's link layer: InfiniBand addresses by LID, Ethernet (RoCE) by GID.
public enum LinkLayer: Sendable, CustomStringConvertible {
    case infiniband, ethernet
    public var description: String { self == .infiniband ? "InfiniBand" : "Ethernet" }
}

/// `enum ibv_mtu`: 1 = 256 bytes ... 5 = 4096 bytes.
public struct MTU: RawRepresentable, Comparable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init?(rawValue: UInt32) {
        guard (1...5).contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }
    public static let mtu1024 = MTU(rawValue: 3)!
    public static let mtu4096 = MTU(rawValue: 5)!
    public var bytes: Int { 128 << Int(rawValue) }
    public var description: String { "\(bytes)" }
    public static func < (a: MTU, b: MTU) -> Bool { a.rawValue < b.rawValue }
}

/// What `ibv_query_port` reports that the transport uses.
public struct PortAttributes: Sendable {
    public var state: PortState
    public var linkLayer: LinkLayer
    public var lid: UInt16
    public var activeMTU: MTU
    public var gidTableLength: Int
    public var maxMessageSize: UInt32

    init(_ a: ibv_port_attr) {
        state = PortState(rawValue: a.state.rawValue) ?? .noOperation
        linkLayer = a.link_layer == UInt8(IBV_LINK_LAYER_ETHERNET) ? .ethernet : .infiniband
        lid = a.lid
        activeMTU = MTU(rawValue: a.active_mtu.rawValue) ?? .mtu1024
        gidTableLength = Int(a.gid_tbl_len)
        maxMessageSize = a.max_msg_sz
    }
}
