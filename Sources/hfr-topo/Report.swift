import HFRTopology

/// The text hfr-topo prints for a topology and a placement.
enum Report {
    static func topology(_ t: Topology) -> [String] {
        var out: [String] = []
        let host = t.machineInfo["HostName"].map { ", host \($0)" } ?? ""
        out.append("topology: \(t.source) (hwloc \(Topology.hwlocVersion)\(host))")
        if let about = t.machineInfo["HFReduceTopology"] { out.append("  \(about)") }
        let perCore = t.cores.isEmpty ? 1 : t.pus.count / t.cores.count
        out.append("machine: \(plural(t.packages.count, "package")), \(plural(t.numaNodes.count, "NUMA node")), "
                   + "\(plural(t.cores.count, "core")), \(plural(t.pus.count, "PU")) (\(perCore) per core), "
                   + "\(gib(t.numaNodes.reduce(0) { $0 + $1.memoryBytes })) of memory")
        out.append("packages:")
        for p in t.packages {
            out.append("  package \(p.index): \(p.model ?? "unknown model"), PUs \(p.cpus), NUMA node \(CPUSet(p.numaNodes))")
        }
        out.append("NUMA nodes:")
        for n in t.numaNodes {
            let cores = t.cores.filter { $0.numaNode == n.osIndex }.map(\.index)
            out.append("  node \(n.osIndex): \(gib(n.memoryBytes)), \(plural(cores.count, "core")) (L#\(CPUSet(cores))), PUs \(n.cpus)")
        }
        out.append("cores:")
        for c in t.cores {
            out.append("  core L#\(c.index): PU\(c.pus.count == 1 ? "" : "s") \(c.pus.indexes.map(String.init).joined(separator: ",")), node \(c.numaNode.map(String.init) ?? "?")")
        }
        out.append("network interfaces and HCAs:")
        if t.networkDevices.isEmpty { out.append("  none known to hwloc") }
        for d in t.networkDevices {
            let pci = d.pciBusID.map { "PCI \($0) (\(className(d.pciClass ?? 0)))" } ?? "no PCI device"
            let also = d.siblings.isEmpty ? "" : ", same device as \(d.siblings.joined(separator: ", "))"
            let node = d.numaNode.map { "NUMA node \($0)" } ?? "NUMA nodes \(CPUSet(d.numaNodes))"
            out.append("  \(pad(d.name, 8)) \(pad(d.kind.rawValue, 11)) \(pci)\(also)")
            out.append("  \(pad("", 8)) \(node), nearest cores L#\(CPUSet(d.nearestCores)) (PUs \(d.nearestCPUs))")
        }
        out.append("GPUs and accelerators (PCI):")
        if t.gpus.isEmpty { out.append("  none") }
        for n in Set(t.gpus.map(\.numaNodes)).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let here = t.gpus.filter { $0.numaNodes == n }
            out.append("  NUMA node \(CPUSet(n)): \(here.count): \(here.map { "\($0.busID) (\(className($0.pciClass)))" }.joined(separator: ", "))")
        }
        return out
    }

    static func placement(_ p: Placement, context: PlacementContext, workers: Int) -> [String] {
        var out: [String] = []
        let names = p.choices.map(\.nic).joined(separator: ", ")
        var ranks = ""
        if context.localRanks > 1 { ranks = ", local rank \(context.localRank) of \(context.localRanks)" }
        out.append("placement for \(names) (\(plural(workers, "reduction worker")), affinity mask \(context.allowedCPUs)\(ranks), "
                   + "NUMA binding \(p.bindingEnabled ? "on" : "off (HFR_NUMA_BIND=0)")):")
        let off = p.bindingEnabled ? "" : " (not applied)"
        for c in p.choices {
            out.append("  \(c.nic): NUMA node \(c.numaNode) (\(c.isNICLocal ? "the NIC's own" : "fallback"))")
            out.append("    progress thread:    CPUs \(c.progressCPUs)\(off)")
            for (i, w) in c.workerCPUs.enumerated() {
                out.append("    reduction worker \(i): CPUs \(w)\(off)")
            }
            out.append("    buffers:            \(c.memoryPolicy)\(off)")
            out.append("    why: \(c.reason)")
        }
        for n in p.notes { out.append("  note: \(n)") }
        return out
    }

    static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    static func gib(_ bytes: UInt64) -> String {
        let tenths = (bytes * 10 + (1 << 29)) >> 30
        return "\(tenths / 10).\(tenths % 10) GiB"
    }

    /// PCI class names for the classes hfr-topo shows.
    static func className(_ pciClass: UInt16) -> String {
        switch pciClass {
        case 0x0200: return "Ethernet"
        case 0x0207: return "InfiniBand"
        case 0x0280: return "network"
        case 0x0300: return "VGA"
        case 0x0302: return "3D"
        case 0x1200: return "accelerator"
        default: return String(pciClass, radix: 16)
        }
    }
}
