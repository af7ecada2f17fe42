import HFRSystem

/// One NIC address a rank publishes: its IPv4 address and the length of its subnet prefix.
public struct NICAddress: Equatable, Sendable, CustomStringConvertible {
    public var ip: UInt32
    public var prefixLength: Int

    public init(ip: UInt32, prefixLength: Int) {
        self.ip = ip; self.prefixLength = max(0, min(32, prefixLength))
    }

    /// Whether `other` lies in this address's subnet.
    public func sharesSubnet(with other: NICAddress) -> Bool {
        let bits = min(prefixLength, other.prefixLength)
        let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
        return ip & mask == other.ip & mask
    }

    public var description: String { "\(SocketAddress(ip: ip, port: 0).host)/\(prefixLength)" }
}

/// Where a rank takes data connections: one listening port on every NIC it publishes, and how
/// many ACTIVE HCA ports it offers for RDMA (0: TCP only).
public struct RankAddress: Equatable, Sendable, CustomStringConvertible {
    public var port: UInt16
    public var nics: [NICAddress]
    public var hcaPorts: Int

    public init(port: UInt16, nics: [NICAddress], hcaPorts: Int = 0) {
        self.port = port; self.nics = nics; self.hcaPorts = hcaPorts
    }

    /// The most NICs a rank may publish.
    public static let maxNICs = 16
    /// The most HCA ports a rank may publish.
    public static let maxHCAPorts = 16

    public var description: String {
        nics.map { "\(SocketAddress(ip: $0.ip, port: port))" }.joined(separator: ",") + (hcaPorts > 0 ? " + \(hcaPorts) HCA port(s)" : "")
    }
}

/// Which NIC pairs carry the links between two ranks. Both ranks compute it from the same
/// published addresses, so they agree on every link's number without talking.
public enum LinkPlan {
    /// The links between `lower` (the rank with the smaller number) and `higher`, as pairs of NIC
    /// indices (lower's, higher's). Each NIC of the lower rank, in its published order, pairs with
    /// the first unused NIC of the higher rank in the same subnet, so that two hosts with one NIC
    /// per network get one link per network. When no NIC pair shares a subnet, one link joins the
    /// first NICs and routing decides the path.
    public static func pairs(lower: RankAddress, higher: RankAddress) -> [(Int, Int)] {
        var used = [Bool](repeating: false, count: higher.nics.count)
        var out: [(Int, Int)] = []
        for (a, na) in lower.nics.enumerated() {
            guard let b = higher.nics.indices.first(where: { !used[$0] && higher.nics[$0].sharesSubnet(with: na) }) else { continue }
            used[b] = true
            out.append((a, b))
        }
        if out.isEmpty && !lower.nics.isEmpty && !higher.nics.isEmpty { out.append((0, 0)) }
        return out
    }

    /// The links of `me` to `peer`, as (my NIC index, the peer's NIC index).
    public static func links(me: Int, _ mine: RankAddress, peer: Int, _ theirs: RankAddress) -> [(local: Int, remote: Int)] {
        if me < peer {
            return pairs(lower: mine, higher: theirs).map { (local: $0.0, remote: $0.1) }
        }
        return pairs(lower: theirs, higher: mine).map { (local: $0.1, remote: $0.0) }
    }

    /// RDMA links between two ranks: link l joins HCA port l of each, so there are as many as
    /// the rank with fewer ports has (at most `WriteTarget.maxLinks`); 0 when either offers none
    /// and the ranks talk TCP. Both ranks compute the same number from the published counts.
    public static func verbsLinks(_ a: RankAddress, _ b: RankAddress) -> Int {
        min(a.hcaPorts, b.hcaPorts, WriteTarget.maxLinks)
    }
}
