import CHFRVerbs

/// A 16-byte port GID (`union ibv_gid`), printed in IPv6 notation.
public struct GID: Hashable, Sendable, CustomStringConvertible {
    /// The bytes in network order.
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a GID has 16 bytes")
        self.bytes = bytes
    }

    init(_ g: ibv_gid) {
        var raw = g.raw
        bytes = withUnsafeBytes(of: &raw) { Array($0) }
    }

    var raw: ibv_gid {
        var g = ibv_gid()
        withUnsafeMutableBytes(of: &g.raw) { $0.copyBytes(from: bytes) }
        return g
    }

    public static let zero = GID(bytes: [UInt8](repeating: 0, count: 16))

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    /// `::ffff:a.b.c.d`, the form RoCE v2 GIDs of IPv4 addresses take.
    public var isIPv4Mapped: Bool { bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff }

    public var description: String {
        if isIPv4Mapped { return "::ffff:\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])" }
        let groups = (0..<8).map { Int(bytes[2 * $0]) << 8 | Int(bytes[2 * $0 + 1]) }
        // The longest run of two or more zero groups becomes "::".
        var best = (start: -1, count: 0), i = 0
        while i < 8 {
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > best.count && j - i >= 2 { best = (i, j - i) }
            i = j == i ? i + 1 : j
        }
        let hex = groups.map { String($0, radix: 16) }
        if best.start < 0 { return hex.joined(separator: ":") }
        let head = hex[0..<best.start].joined(separator: ":"), tail = hex[(best.start + best.count)...].joined(separator: ":")
        return "\(head)::\(tail)"
    }
}

/// The type of a GID table entry: how packets addressed with it are carried.
public enum GIDType: Sendable, CustomStringConvertible {
    case infiniband, roceV1, roceV2
    public var description: String {
        switch self {
        case .infiniband: return "IB"
        case .roceV1: return "RoCE v1"
        case .roceV2: return "RoCE v2"
        }
    }
}
