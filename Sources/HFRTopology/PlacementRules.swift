extension Placement {
    /// Decides where `workers` reduction threads, the progress thread and the buffers serving
    /// each of `nics` go on `topology`:
    /// - the node is the NIC's local NUMA node (its PCI device's CPU-side ancestor); a NIC hwloc
    ///   does not know (virtual, veth, loopback) or not local to one node falls back to the node of
    ///   the CPU the process runs on, and the reason says so;
    /// - the progress thread gets one core of that node and each worker another, the NIC's nearest
    ///   cores first and the core of the node's first PU (where interrupts and housekeeping land)
    ///   last, so it stays free when the node has cores enough;
    /// - only CPUs of the process's affinity mask are used; ranks sharing the host with an
    ///   unrestricted mask take separate slices of the node's cores;
    /// - buffers are bound to the node; NICs on different nodes are placed per NIC.
    public static func choose(nics: [String], workers: Int, topology: Topology,
                              context: PlacementContext) throws(TopologyError) -> Placement {
        var unique: [String] = []
        for nic in nics where !nic.isEmpty && !unique.contains(nic) { unique.append(nic) }
        guard !unique.isEmpty else { throw .noNICs }
        let allowed = context.allowedCPUs.intersection(topology.pus)
        guard !allowed.isEmpty else { throw .affinityOutsideTopology(allowed: context.allowedCPUs, topologyPUs: topology.pus) }
        var notes: [String] = []
        var choices: [Choice] = []
        for nic in unique {
            let (choice, note) = try Rules(topology: topology, context: context, allowed: allowed, workers: max(0, workers))
                .choice(for: nic)
            choices.append(choice)
            if let note, !notes.contains(note) { notes.append(note) }
        }
        let nodes = Set(choices.map(\.numaNode))
        if nodes.count > 1 {
            let list = choices.map { "\($0.nic) on node \($0.numaNode)" }.joined(separator: ", ")
            notes.append("The NICs are on \(nodes.count) NUMA nodes (\(list)): each NIC gets threads and buffers on its own node.")
        } else if choices.count > 1 {
            notes.append("\(choices.map(\.nic).joined(separator: ", ")) are all served from NUMA node \(choices[0].numaNode) and share its cores.")
        }
        if !context.bindingEnabled {
            notes.append("HFR_NUMA_BIND=0: nothing is pinned or bound; this is what would be chosen.")
        }
        return Placement(choices: choices, notes: notes, bindingEnabled: context.bindingEnabled)
    }
}

/// The rules for one NIC.
private struct Rules {
    let topology: Topology
    let context: PlacementContext
    let allowed: CPUSet
    let workers: Int

    func choice(for nic: String) throws(TopologyError) -> (Placement.Choice, String?) {
        let (node, local, why) = locate(nic)
        let device = topology.device(named: deviceName(nic))
        let (cores, sharing) = candidateCores(node: node, nearest: device?.nearestCores ?? [])
        guard let progress = cores.first else { throw .emptyCPUSet(purpose: "progress thread serving \(nic)") }
        var workerSets: [CPUSet]
        var reason = why
        if cores.count >= 1 + workers {
            workerSets = Array(cores[1..<(1 + workers)])
            reason += workers == 0 ? " The progress thread gets its own core." : " The progress thread gets its own core and each reduction worker another."
        } else if cores.count >= 2 {
            let rest = cores.dropFirst().reduce(CPUSet()) { $0.union($1) }
            workerSets = Array(repeating: rest, count: workers)
            reason += " \(cores.count) cores for 1 progress thread and \(workers) workers: the workers share CPUs \(rest)."
        } else {
            workerSets = Array(repeating: progress, count: workers)
            reason += " Only CPUs \(progress) are available: every thread shares them."
        }
        let used = workerSets.reduce(progress) { $0.union($1) }
        if let first = topology.node(node)?.cpus.first, allowed.contains(first), !used.contains(first) {
            reason += " PU \(first), the node's first, is left to interrupts and system work."
        }
        let choice = Placement.Choice(nic: nic, numaNode: node, isNICLocal: local, progressCPUs: progress,
                                      workerCPUs: workerSets, memoryPolicy: .preferred(node: node), reason: reason,
                                      bindingEnabled: context.bindingEnabled)
        return (choice, sharing)
    }

    /// `mlx5_0:1` names port 1 of HCA `mlx5_0` (HFR_IB_HCA syntax).
    func deviceName(_ nic: String) -> String {
        nic.split(separator: ":", maxSplits: 1).first.map(String.init) ?? nic
    }

    /// The NIC's node, whether it is local to it, and why.
    func locate(_ nic: String) -> (Int, Bool, String) {
        let name = deviceName(nic)
        let missing: String
        if let device = topology.device(named: name) {
            let pci = device.pciBusID.map { " (PCI \($0))" } ?? ""
            if let node = device.numaNode, topology.node(node) != nil {
                return (node, true, "\(nic)\(pci) is local to NUMA node \(node).")
            }
            missing = device.numaNodes.isEmpty
                ? "hwloc knows \(name)\(pci) but not which NUMA node it is near"
                : "hwloc places \(name)\(pci) near NUMA nodes \(CPUSet(device.numaNodes)), not one node"
        } else {
            missing = "hwloc knows no device named \(name) (it is no PCI NIC or HCA of this machine; virtual, veth and loopback interfaces never are)"
        }
        let (here, which): (Int, String)
        if let cpu = context.currentCPU, allowed.contains(cpu) {
            (here, which) = (cpu, "the CPU this process runs on")
        } else {
            (here, which) = (allowed.indexes[0], "the first CPU of the affinity mask")
        }
        let node = topology.numaNode(ofCPU: here) ?? topology.numaNodes[0].osIndex
        return (node, false, "\(missing), so \(nic) is served from NUMA node \(node), the node of \(which) (PU \(here)).")
    }

    /// The allowed PUs of each usable core, in the order threads take them, and a note when
    /// the affinity mask or other local ranks changed what the node offers.
    func candidateCores(node: Int, nearest: [Int]) -> ([CPUSet], String?) {
        let nodeCPUs = topology.node(node)?.cpus ?? []
        let firstPU = nodeCPUs.first
        var note: String?
        var cores = topology.cores.filter { $0.numaNode == node && !$0.pus.intersection(allowed).isEmpty }
        if cores.isEmpty {
            cores = topology.cores.filter { !$0.pus.intersection(allowed).isEmpty }
            note = "The affinity mask (CPUs \(allowed)) has no CPU on NUMA node \(node): threads stay inside the mask, buffers stay on node \(node)."
        }
        cores.sort { a, b in
            let key = { (c: Core) in (firstPU.map { c.pus.contains($0) } ?? false ? 1 : 0, nearest.contains(c.index) ? 0 : 1) }
            let (ka, kb) = (key(a), key(b))
            return ka != kb ? ka < kb : a.index < b.index
        }
        var sets = cores.map { $0.pus.intersection(allowed) }
        let unrestricted = allowed == topology.pus
        if context.localRanks > 1 && unrestricted {
            let per = sets.count / context.localRanks
            if per >= 1 {
                let start = min(context.localRank, context.localRanks - 1) * per
                sets = Array(sets[start..<(start + per)])
                note = "\(context.localRanks) ranks on this host share node \(node)'s \(cores.count) cores: local rank \(context.localRank) uses \(per) of them."
            } else {
                sets = [sets.reduce(CPUSet()) { $0.union($1) }]
                note = "\(context.localRanks) ranks on this host share node \(node)'s \(cores.count) cores: threads are bound to the node's CPUs, not to single cores."
            }
        }
        return (sets, note)
    }
}
