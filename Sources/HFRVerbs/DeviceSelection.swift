import HFRSystem

/// HCA port selection in NCCL's `NCCL_IB_HCA` syntax, for `HFR_IB_HCA`: a comma-separated list
/// of device names with an optional port (`mlx5_0:1,mlx5_1:1`); names match as prefixes
/// (`mlx5` selects every mlx5 device), or exactly after a leading `=`; a leading `^` excludes
/// the listed ones instead (`^mlx5_2`, `^=mlx5_1:2`).
public struct DeviceSelection: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var name: String
        /// Nil: every port of the device.
        public var port: UInt8?
        public init(name: String, port: UInt8?) {
            self.name = name
            self.port = port
        }
    }

    public var exclude: Bool
    public var exact: Bool
    public var entries: [Entry]

    public init(parsing spec: String) throws(VerbsError) {
        var s = Substring(spec.filter { $0 != " " && $0 != "\t" })
        exclude = s.hasPrefix("^")
        if exclude { s = s.dropFirst() }
        exact = s.hasPrefix("=")
        if exact { s = s.dropFirst() }
        var entries: [Entry] = []
        for item in s.split(separator: ",") {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else {
                throw .configuration("HFR_IB_HCA=\(spec): \(item) is not <device>[:<port>]")
            }
            var port: UInt8?
            if parts.count == 2 {
                guard let p = UInt8(parts[1]), p >= 1 else {
                    throw .configuration("HFR_IB_HCA=\(spec): \(parts[1]) is not a port number (1, 2, ...)")
                }
                port = p
            }
            entries.append(Entry(name: String(parts[0]), port: port))
        }
        guard !entries.isEmpty else { throw .configuration("HFR_IB_HCA=\(spec) names no device") }
        self.entries = entries
    }

    private func listed(device: String, port: UInt8?) -> Bool {
        entries.contains { e in
            (exact ? device == e.name : device.hasPrefix(e.name)) && (e.port == nil || port == nil || e.port == port)
        }
    }

    /// Whether port `port` of `device` is selected.
    public func allows(device: String, port: UInt8) -> Bool {
        let hit = listed(device: device, port: port)
        return exclude ? !hit : hit
    }

    /// Whether any port of `device` can be selected (so that it is worth opening).
    public func mayAllow(device: String) -> Bool {
        exclude ? !entries.contains { $0.port == nil && (exact ? device == $0.name : device.hasPrefix($0.name)) }
                : listed(device: device, port: nil)
    }
}
