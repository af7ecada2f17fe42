/// A processor package (socket).
public struct Package: Equatable, Sendable {
    /// hwloc's logical index (`L#`), 0-based in topology order.
    public var index: Int
    /// The PUs it holds.
    public var cpus: CPUSet
    /// OS numbers of the NUMA nodes in it.
    public var numaNodes: [Int]
    /// hwloc's `CPUModel` info, when known.
    public var model: String?
}

/// A NUMA node: memory and the PUs closest to it.
public struct NUMANode: Equatable, Sendable {
    /// The OS number, the one `mbind(2)`, `numa_alloc_onnode(3)` and `/proc/self/numa_maps` use.
    public var osIndex: Int
    /// The PUs local to it.
    public var cpus: CPUSet
    /// Its local memory in bytes (hwloc's `local_memory`).
    public var memoryBytes: UInt64
}

/// A core and its hardware threads.
public struct Core: Equatable, Sendable {
    /// hwloc's logical index (`L#`), unique in the machine (the OS core id repeats per package).
    public var index: Int
    /// Its PUs (two or more with SMT).
    public var pus: CPUSet
    /// The NUMA node whose PUs include this core's, when one does.
    public var numaNode: Int?
}

/// A network interface or an RDMA device as hwloc sees it: an OS device of type network
/// (`eth0`, `ib0`) or openfabrics (`mlx5_0`) under a PCI device.
public struct NetworkDevice: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// A kernel network interface (`HWLOC_OBJ_OSDEV_NETWORK`).
        case network
        /// An RDMA device, HCA (`HWLOC_OBJ_OSDEV_OPENFABRICS`).
        case openFabrics = "openfabrics"
    }
    public var name: String
    public var kind: Kind
    /// The PCI device it belongs to (`0000:31:00.0`), when hwloc found one.
    public var pciBusID: String?
    /// PCI class of that device (0x0200 Ethernet, 0x0207 InfiniBand).
    public var pciClass: UInt16?
    /// Other OS devices on the same PCI device (the interface of an HCA, the HCA of an interface).
    public var siblings: [String]
    /// NUMA nodes of its closest CPU-side object (the PCI device's non-I/O ancestor).
    public var numaNodes: [Int]
    /// The PUs of that object: the CPUs nearest the device.
    public var nearestCPUs: CPUSet
    /// Logical indexes of the cores whose PUs all lie in `nearestCPUs`.
    public var nearestCores: [Int]

    /// The one NUMA node the device is local to, or nil when its locality spans several (or none).
    public var numaNode: Int? { numaNodes.count == 1 ? numaNodes[0] : nil }
}

/// A PCI device that is a GPU or accelerator (PCI class 03xx or 12xx), with its locality.
public struct PCIDevice: Equatable, Sendable {
    public var busID: String
    public var pciClass: UInt16
    public var numaNodes: [Int]
}
