import Glibc

/// What a placement decision needs besides the topology: where this process may run, where it
/// runs now, whether binding is on, and how many ranks of the job share this host.
public struct PlacementContext: Equatable, Sendable {
    /// The process's affinity mask; threads are only ever pinned inside it.
    public var allowedCPUs: CPUSet
    /// The CPU the process runs on now, for NICs hwloc does not know (nil: the first allowed CPU).
    public var currentCPU: Int?
    /// False with `HFR_NUMA_BIND=0`: the decision is still made (and printed) but nothing is pinned or bound.
    public var bindingEnabled: Bool
    /// This rank's index among the ranks on this host (`LOCAL_RANK`), and how many there are.
    /// With an unrestricted affinity mask, ranks sharing a node take separate slices of its cores.
    public var localRank: Int
    public var localRanks: Int

    public init(allowedCPUs: CPUSet, currentCPU: Int? = nil, bindingEnabled: Bool = true,
                localRank: Int = 0, localRanks: Int = 1) {
        self.allowedCPUs = allowedCPUs
        self.currentCPU = currentCPU
        self.bindingEnabled = bindingEnabled
        self.localRank = max(0, localRank)
        self.localRanks = max(1, localRanks)
    }

    /// This process: `sched_getaffinity(getpid())`, `sched_getcpu()` and `HFR_NUMA_BIND`.
    public static func thisProcess(localRank: Int = 0, localRanks: Int = 1) throws(TopologyError) -> PlacementContext {
        PlacementContext(allowedCPUs: try ThreadPinning.processAffinity(), currentCPU: try ThreadPinning.currentCPU(),
                         bindingEnabled: try bindingFromEnvironment(), localRank: localRank, localRanks: localRanks)
    }

    /// `HFR_NUMA_BIND`: unset or `1` pins threads and binds buffers; `0` turns both off.
    public static func bindingFromEnvironment() throws(TopologyError) -> Bool {
        guard let raw = getenv("HFR_NUMA_BIND") else { return true }
        let value = String(cString: raw)
        switch value {
        case "", "1": return true
        case "0": return false
        default: throw .configuration(variable: "HFR_NUMA_BIND", value: value, expected: "0 (no pinning or binding) or 1 (the default)")
        }
    }
}
