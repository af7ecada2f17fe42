import Glibc

/// Everything HFRTopology can fail with; `description` is a sentence naming what went wrong.
public enum TopologyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An hwloc call failed while loading a topology (`source`: "this machine" or the XML path).
    case hwloc(call: String, errno: Int32, source: String)
    /// A loaded topology has no PU or no NUMA node to place anything on.
    case emptyTopology(source: String)
    /// A CPU list (`--cpus`, a cpuset) that does not parse.
    case invalidCPUList(String)
    /// Pinning to or reading an affinity mask failed (`pthread_setaffinity_np`, `sched_getaffinity`).
    case affinity(call: String, errno: Int32, cpus: CPUSet)
    /// A thread or buffer was to be placed with nothing to place it on.
    case emptyCPUSet(purpose: String)
    /// The kernel or libnuma has no NUMA support (`numa_available` < 0).
    case numaUnavailable
    /// A memory policy names a node this machine does not have.
    case noSuchNode(Int, highest: Int)
    /// A memory policy other than the default that names no node.
    case noNodes(policy: String)
    /// `mmap`, `mbind` or `get_mempolicy` failed.
    case memory(call: String, errno: Int32, bytes: Int)
    /// An environment variable with a value HFRTopology does not accept.
    case configuration(variable: String, value: String, expected: String)
    /// No NIC name was given to place for.
    case noNICs
    /// The process's affinity mask has no CPU in the topology being placed on.
    case affinityOutsideTopology(allowed: CPUSet, topologyPUs: CPUSet)

    public var description: String {
        switch self {
        case let .hwloc(call, errno, source):
            return "loading the hwloc topology of \(source) failed in \(call): \(Self.text(errno))"
        case let .emptyTopology(source):
            return "the hwloc topology of \(source) has no PU or no NUMA node"
        case let .invalidCPUList(list):
            return "'\(list)' is not a CPU list (expected numbers and ranges such as 0-3,8)"
        case let .affinity(call, errno, cpus):
            return "\(call) for CPUs \(cpus) failed: \(Self.text(errno))"
        case let .emptyCPUSet(purpose):
            return "no CPU is left to pin the \(purpose) to"
        case .numaUnavailable:
            return "this kernel or libnuma has no NUMA support (numa_available() < 0), so memory cannot be placed on a node"
        case let .noSuchNode(node, highest):
            return "NUMA node \(node) does not exist on this machine (nodes are 0-\(highest))"
        case let .noNodes(policy):
            return "the memory policy \(policy) names no NUMA node"
        case let .memory(call, errno, bytes):
            return "\(call) of \(bytes) bytes failed: \(Self.text(errno))"
        case let .configuration(variable, value, expected):
            return "\(variable)=\(value) is not accepted: expected \(expected)"
        case .noNICs:
            return "no NIC or HCA name was given to place the library's threads and buffers for"
        case let .affinityOutsideTopology(allowed, pus):
            return "the process may only run on CPUs \(allowed), none of which is in the topology (PUs \(pus))"
        }
    }

    static func text(_ errno: Int32) -> String { String(cString: strerror(errno)) }
}
