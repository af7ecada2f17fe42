import CHFRTopology

/// What hwloc knows about a machine, copied out of hwloc into plain values: packages, NUMA nodes
/// with their memory, cores and PUs, network devices and HCAs with their locality, and GPUs.
/// Load it from this machine or from an hwloc XML file (`lstopo --of xml`).
public struct Topology: Sendable {
    public enum Source: Equatable, Sendable, CustomStringConvertible {
        case thisMachine
        case xmlFile(String)
        public var description: String {
            switch self {
            case .thisMachine: return "this machine"
            case .xmlFile(let path): return path
            }
        }
    }

    public var source: Source
    /// The root object's infos (`HostName`, `OSName`, ...).
    public var machineInfo: [String: String]
    public var packages: [Package]
    public var numaNodes: [NUMANode]
    public var cores: [Core]
    /// Every PU (hardware thread) in the topology.
    public var pus: CPUSet
    public var networkDevices: [NetworkDevice]
    public var gpus: [PCIDevice]

    /// The topology of this machine: `hwloc_topology_load` with I/O devices kept.
    public static func thisMachine() throws(TopologyError) -> Topology {
        try HwlocReader.read(.thisMachine)
    }

    /// A topology from an hwloc XML file (`hwloc_topology_set_xml`), with its I/O devices.
    public static func load(xmlFile path: String) throws(TopologyError) -> Topology {
        try HwlocReader.read(.xmlFile(path))
    }

    /// The hwloc release HFRTopology was built against (`HWLOC_VERSION`), e.g. "2.9.0".
    public static var hwlocVersion: String { String(cString: hfr_hwloc_version()) }

    /// The device (interface or HCA) with this name, if hwloc knows it.
    public func device(named name: String) -> NetworkDevice? {
        networkDevices.first { $0.name == name }
    }

    /// The NUMA node whose PUs include `cpu`.
    public func numaNode(ofCPU cpu: Int) -> Int? {
        numaNodes.first { $0.cpus.contains(cpu) }?.osIndex
    }

    /// The NUMA node with this OS number.
    public func node(_ osIndex: Int) -> NUMANode? {
        numaNodes.first { $0.osIndex == osIndex }
    }

    /// The core with this logical index.
    public func core(_ index: Int) -> Core? {
        cores.first { $0.index == index }
    }

    /// The core holding PU `cpu`.
    public func core(ofCPU cpu: Int) -> Core? {
        cores.first { $0.pus.contains(cpu) }
    }
}
