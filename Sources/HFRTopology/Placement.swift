/// Where the library's threads run and its buffers live, for the NICs (interfaces or HCAs) it
/// uses: each NIC's local NUMA node, a core of that node for the progress thread, other cores of
/// it for the reduction workers, and buffers bound to the node. Decided by `choose` (the rules
/// are in PlacementRules.swift); applied by the engine through `Choice`'s methods.
public struct Placement: Equatable, Sendable {
    /// The decision for one NIC.
    public struct Choice: Equatable, Sendable {
        /// The NIC as given (`eth0`, `mlx5_0`, `mlx5_0:1`).
        public var nic: String
        /// The NUMA node whose cores and memory serve it.
        public var numaNode: Int
        /// True when hwloc places the NIC on `numaNode`; false for a fallback (see `reason`).
        public var isNICLocal: Bool
        /// The CPUs the progress thread is pinned to (one core's PUs when there are cores enough).
        public var progressCPUs: CPUSet
        /// The CPUs of each reduction worker thread, one entry per worker.
        public var workerCPUs: [CPUSet]
        /// The policy its staging, reduction and bounce buffers are allocated with.
        public var memoryPolicy: MemoryPolicy
        /// Why this node and these cores, as a sentence.
        public var reason: String
        /// False with `HFR_NUMA_BIND=0`: the methods below then neither pin nor bind.
        public var bindingEnabled: Bool

        /// Pins the calling thread (the progress thread) to `progressCPUs`; returns what it did.
        @discardableResult
        public func pinProgressThread() throws(TopologyError) -> CPUSet? {
            guard bindingEnabled else { return nil }
            try ThreadPinning.pinCurrentThread(to: progressCPUs)
            return progressCPUs
        }

        /// Pins the calling thread (reduction worker `index`) to its CPUs; indexes past the
        /// planned workers wrap around. Returns what it did.
        @discardableResult
        public func pinWorkerThread(_ index: Int) throws(TopologyError) -> CPUSet? {
            guard bindingEnabled else { return nil }
            let cpus = workerCPUs.isEmpty ? progressCPUs : workerCPUs[index % workerCPUs.count]
            try ThreadPinning.pinCurrentThread(to: cpus)
            return cpus
        }

        /// A buffer on this NIC's node (`memoryPolicy`), or under the default policy when binding is off.
        public func allocateBuffer(byteCount: Int) throws(TopologyError) -> NUMABuffer {
            try NUMABuffer(byteCount: byteCount, policy: bindingEnabled ? memoryPolicy : .systemDefault)
        }
    }

    /// One choice per NIC, in the order the NICs were given.
    public var choices: [Choice]
    /// Facts about the decision as a whole, as sentences (NICs on several nodes, shared cores, ...).
    public var notes: [String]
    public var bindingEnabled: Bool

    /// The choice for `nic`, or nil when it was not among the NICs placed.
    public func choice(for nic: String) -> Choice? { choices.first { $0.nic == nic } }

    /// The first NIC's choice: where a single progress thread serving every NIC runs.
    public var primary: Choice { choices[0] }

    /// Loads this machine's topology and decides for this process (`PlacementContext.thisProcess`).
    public static func forThisProcess(nics: [String], workers: Int, localRank: Int = 0,
                                      localRanks: Int = 1) throws(TopologyError) -> Placement {
        try choose(nics: nics, workers: workers, topology: try Topology.thisMachine(),
                   context: try PlacementContext.thisProcess(localRank: localRank, localRanks: localRanks))
    }
}
