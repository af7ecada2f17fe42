/// NIC selection in NCCL's `NCCL_SOCKET_IFNAME` syntax, for `HFR_SOCKET_IFNAME`: a
/// comma-separated list of name prefixes (`eth,ib`); a leading `^` excludes the listed ones
/// (`^docker,lo`); a leading `=` matches names exactly (`=eth0`); `^=` excludes exact names.
public struct InterfaceSelection: Equatable, Sendable {
    public var exclude: Bool
    public var exact: Bool
    public var names: [String]

    public init(parsing spec: String) throws {
        var s = Substring(spec.trimmingCharacters())
        exclude = s.hasPrefix("^")
        if exclude { s = s.dropFirst() }
        exact = s.hasPrefix("=")
        if exact { s = s.dropFirst() }
        names = s.split(separator: ",").map { String($0).trimmingCharacters() }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ConfigurationError("HFR_SOCKET_IFNAME=\(spec) names no interface") }
    }

    public func matches(_ name: String) -> Bool {
        let hit = names.contains { exact ? name == $0 : name.hasPrefix($0) }
        return exclude ? !hit : hit
    }

    /// The up IPv4 interfaces `spec` selects, in the system's order. Without a spec: every up
    /// interface that is not loopback, a container or VM bridge (`docker*`, `virbr*`: they carry the
    /// same address on every host, so a link over them would reach the wrong machine) or
    /// link-local, or loopback when nothing else is up.
    /// A spec that selects nothing is an error that lists the interfaces there are.
    public static func select(_ spec: String?, from all: [InterfaceAddress]) throws -> [InterfaceAddress] {
        let up = all.filter { $0.isUp }
        guard let spec else {
            let usable = up.filter { !$0.isLoopback && !$0.name.hasPrefix("docker") && !$0.name.hasPrefix("virbr") && $0.ip >> 16 != 0xA9FE }
            return usable.isEmpty ? up.filter { $0.isLoopback } : usable
        }
        let selection = try InterfaceSelection(parsing: spec)
        let chosen = up.filter { selection.matches($0.name) }
        guard !chosen.isEmpty else {
            let there = up.map { "\($0.name) (\(SocketAddress(ip: $0.ip, port: 0).host))" }.joined(separator: ", ")
            throw ConfigurationError("HFR_SOCKET_IFNAME=\(spec) matches no interface that is up with an IPv4 address; there are: \(there.isEmpty ? "none" : there)")
        }
        return chosen
    }
}
