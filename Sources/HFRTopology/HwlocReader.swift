import Glibc
import CHFRTopology

/// Copies an hwloc topology into a `Topology`, then destroys it.
enum HwlocReader {
    static func read(_ source: Topology.Source) throws(TopologyError) -> Topology {
        var handle: hwloc_topology_t?
        var failedCall: UnsafePointer<CChar>?
        let rc: Int32
        switch source {
        case .thisMachine: rc = hfr_topology_load(nil, &handle, &failedCall)
        case .xmlFile(let path): rc = hfr_topology_load(path, &handle, &failedCall)
        }
        guard rc == 0, let topo = handle else {
            let call = failedCall.map { String(cString: $0) } ?? "hwloc_topology_load"
            throw .hwloc(call: call, errno: errno, source: source.description)
        }
        defer { hwloc_topology_destroy(topo) }
        let reader = Walk(topo: topo)
        let nodes = reader.numaNodes()
        let pus = reader.cpus(of: reader.objects(HWLOC_OBJ_PU).map { $0.pointee.cpuset })
        guard !nodes.isEmpty, !pus.isEmpty else { throw .emptyTopology(source: source.description) }
        let cores = reader.cores(nodes: nodes)
        return Topology(source: source, machineInfo: reader.infos(of: reader.objects(HWLOC_OBJ_MACHINE).first),
                        packages: reader.packages(), numaNodes: nodes, cores: cores, pus: pus,
                        networkDevices: reader.networkDevices(cores: cores), gpus: reader.gpus())
    }
}

/// The hwloc calls, one object type at a time.
private struct Walk {
    let topo: hwloc_topology_t

    func objects(_ type: hwloc_obj_type_t) -> [hwloc_obj_t] {
        (0..<max(0, Int(hfr_object_count(topo, type)))).compactMap { hfr_object(topo, type, UInt32($0)) }
    }

    /// The set bits of an hwloc bitmap (`hwloc_bitmap_foreach`).
    func indexes(_ set: hwloc_const_bitmap_t?) -> [Int] {
        guard let set else { return [] }
        let n = Int(hfr_bitmap_indexes(set, nil, 0))
        guard n > 0 else { return [] }
        var out = [Int32](repeating: 0, count: n)
        _ = hfr_bitmap_indexes(set, &out, Int32(n))
        return out.map(Int.init)
    }

    func cpus(of sets: [hwloc_cpuset_t?]) -> CPUSet { CPUSet(sets.flatMap { indexes($0) }) }

    func infos(of obj: hwloc_obj_t?) -> [String: String] {
        guard let obj, let infos = obj.pointee.infos else { return [:] }
        var out: [String: String] = [:]
        for i in 0..<Int(obj.pointee.infos_count) {
            guard let name = infos[i].name, let value = infos[i].value else { continue }
            out[String(cString: name)] = String(cString: value)
        }
        return out
    }

    func numaNodes() -> [NUMANode] {
        objects(HWLOC_OBJ_NUMANODE).map {
            NUMANode(osIndex: Int($0.pointee.os_index), cpus: CPUSet(indexes($0.pointee.cpuset)),
                     memoryBytes: hfr_numa_local_memory($0))
        }
    }

    func packages() -> [Package] {
        objects(HWLOC_OBJ_PACKAGE).map {
            Package(index: Int($0.pointee.logical_index), cpus: CPUSet(indexes($0.pointee.cpuset)),
                    numaNodes: indexes($0.pointee.nodeset), model: infos(of: $0)["CPUModel"])
        }
    }

    /// Cores, or one per PU when hwloc reports no Core objects (some VMs and XML files).
    func cores(nodes: [NUMANode]) -> [Core] {
        let coreObjects = objects(HWLOC_OBJ_CORE)
        let units = coreObjects.isEmpty ? objects(HWLOC_OBJ_PU) : coreObjects
        return units.map { obj in
            let pus = CPUSet(indexes(obj.pointee.cpuset))
            let node = nodes.first { !$0.cpus.intersection(pus).isEmpty }?.osIndex
            return Core(index: Int(obj.pointee.logical_index), pus: pus, numaNode: node)
        }
    }

    /// Network and openfabrics OS devices, located through their PCI device's CPU-side ancestor.
    func networkDevices(cores: [Core]) -> [NetworkDevice] {
        let wanted = [Int32(HWLOC_OBJ_OSDEV_NETWORK.rawValue): NetworkDevice.Kind.network,
                      Int32(HWLOC_OBJ_OSDEV_OPENFABRICS.rawValue): .openFabrics]
        return objects(HWLOC_OBJ_OS_DEVICE).compactMap { obj in
            guard let kind = wanted[hfr_osdev_type(obj)], let cName = obj.pointee.name else { return nil }
            let pci = pciAncestor(obj)
            let near = hfr_non_io_ancestor(topo, obj)
            let nearCPUs = CPUSet(indexes(near?.pointee.cpuset))
            let siblings = pci.map { osDeviceNames(under: $0) } ?? []
            let name = String(cString: cName)
            return NetworkDevice(
                name: name, kind: kind, pciBusID: pci.map(busID), pciClass: pci.map { UInt16(hfr_pci_class($0)) },
                siblings: siblings.filter { $0 != name }, numaNodes: indexes(near?.pointee.nodeset),
                nearestCPUs: nearCPUs, nearestCores: cores.filter { $0.pus.isSubset(of: nearCPUs) }.map(\.index))
        }
    }

    /// PCI devices of class display (03xx) or processing accelerator (12xx).
    func gpus() -> [PCIDevice] {
        objects(HWLOC_OBJ_PCI_DEVICE).compactMap { obj in
            let pciClass = UInt16(hfr_pci_class(obj))
            guard pciClass >> 8 == 0x03 || pciClass >> 8 == 0x12 else { return nil }
            return PCIDevice(busID: busID(obj), pciClass: pciClass,
                             numaNodes: indexes(hfr_non_io_ancestor(topo, obj)?.pointee.nodeset))
        }
    }

    private func pciAncestor(_ obj: hwloc_obj_t) -> hwloc_obj_t? {
        var p = obj.pointee.parent
        while let o = p, o.pointee.type != HWLOC_OBJ_PCI_DEVICE {
            guard o.pointee.type == HWLOC_OBJ_OS_DEVICE || o.pointee.type == HWLOC_OBJ_BRIDGE else { return nil }
            p = o.pointee.parent
        }
        return p
    }

    private func osDeviceNames(under pci: hwloc_obj_t) -> [String] {
        var names: [String] = []
        var child = pci.pointee.io_first_child
        while let c = child {
            if c.pointee.type == HWLOC_OBJ_OS_DEVICE, let n = c.pointee.name { names.append(String(cString: n)) }
            child = c.pointee.next_sibling
        }
        return names
    }

    private func busID(_ pci: hwloc_obj_t) -> String {
        var buf = [CChar](repeating: 0, count: 32)
        hfr_pci_busid(pci, &buf, buf.count)
        return String(cString: buf)
    }
}
