import HFRSystem

/// An ACTIVE HCA port the transport can use (one link, like a NIC), with the GID it is
/// addressed by.
public struct VerbsPort: Sendable {
    public let device: VerbsDevice
    public let number: UInt8
    public let attributes: PortAttributes
    /// The GID table entry used as source GID and sent to peers (`HFR_IB_GID_INDEX`, or found).
    public let gidIndex: Int
    public let gid: GID

    /// `mlx5_0:1`, as in `HFR_IB_HCA`.
    public var name: String { "\(device.name):\(number)" }

    /// The GID a port is addressed by. InfiniBand: entry `configured` or 0. Ethernet (RoCE):
    /// entry `configured`, or the first RoCE v2 IPv4-mapped entry of the table, as NCCL chooses.
    public static func chooseGID(device: VerbsDevice, port: UInt8, attributes: PortAttributes, configured: Int?) throws(VerbsError) -> (Int, GID) {
        if let index = configured {
            guard index >= 0, index < attributes.gidTableLength else {
                throw .configuration("HFR_IB_GID_INDEX=\(index) is outside the GID table of \(device.name):\(port) (\(attributes.gidTableLength) entries)")
            }
            let gid = try device.gid(port: port, index: index)
            guard !gid.isZero else { throw .configuration("HFR_IB_GID_INDEX=\(index): that entry of \(device.name):\(port) is empty") }
            return (index, gid)
        }
        if attributes.linkLayer == .infiniband { return (0, try device.gid(port: port, index: 0)) }
        var table: [String] = []
        for index in 0..<attributes.gidTableLength {
            guard let gid = try? device.gid(port: port, index: index), !gid.isZero,
                  let type = try? device.gidType(port: port, index: index) else { continue }
            if type == .roceV2 && gid.isIPv4Mapped { return (index, gid) }
            table.append("\(index): \(gid) \(type)")
        }
        throw .noActivePort("\(device.name):\(port) (RoCE) has no RoCE v2 IPv4-mapped GID (table: \(table.isEmpty ? "empty" : table.joined(separator: ", "))); set HFR_IB_GID_INDEX")
    }
}

extension VerbsLibrary {
    /// The ACTIVE ports `selection` allows (all when nil), each on an opened device, with its
    /// GID chosen. Throws `.noDevice` when there is no device and `.noActivePort` naming every
    /// port's state when none is usable.
    public func activePorts(selection: DeviceSelection?, gidIndex: Int?) throws(VerbsError) -> [VerbsPort] {
        let names = try deviceNames()
        var ports: [VerbsPort] = [], states: [String] = [], refusals: [String] = []
        for name in names where selection?.mayAllow(device: name) ?? true {
            let device = try open(name)
            let count = try device.attributes().portCount
            guard count > 0 else { continue }
            for number in 1...UInt8(clamping: count) where selection?.allows(device: name, port: number) ?? true {
                let attributes = try device.port(number)
                states.append("\(name):\(number) is \(attributes.state)")
                guard attributes.state == .active else { continue }
                do {
                    let (index, gid) = try VerbsPort.chooseGID(device: device, port: number, attributes: attributes, configured: gidIndex)
                    ports.append(VerbsPort(device: device, number: number, attributes: attributes, gidIndex: index, gid: gid))
                } catch {
                    refusals.append(error.description)
                }
            }
        }
        guard !ports.isEmpty else {
            if states.isEmpty {
                throw .noActivePort("no ACTIVE port: HFR_IB_HCA selects no port of the devices there are (\(names.joined(separator: ", ")))")
            }
            throw .noActivePort("no ACTIVE port: " + (states + refusals).joined(separator: "; "))
        }
        for r in refusals { Log.warn("HCA port not used: \(r)") }
        return ports
    }

    /// `activePorts` with `HFR_IB_HCA` and `HFR_IB_GID_INDEX` from the environment.
    public func activePortsFromEnvironment() throws(VerbsError) -> [VerbsPort] {
        var selection: DeviceSelection?
        if let spec = Environment.string("HFR_IB_HCA") { selection = try DeviceSelection(parsing: spec) }
        var gidIndex: Int?
        if let text = Environment.string("HFR_IB_GID_INDEX") {
            guard let v = Int(text), v >= 0 else { throw .configuration("HFR_IB_GID_INDEX=\(text) is not a GID table index (0, 1, ...)") }
            gidIndex = v
        }
        return try activePorts(selection: selection, gidIndex: gidIndex)
    }
}
