import Glibc
import CHFRTopology

/// A NUMA memory policy for a range of memory (`mbind(2)` modes).
public enum MemoryPolicy: Equatable, Sendable, CustomStringConvertible {
    /// The process's default: first touch (`MPOL_DEFAULT`).
    case systemDefault
    /// Only this node's memory (`MPOL_BIND`): reduction and network buffers on the NIC's node.
    case bind(node: Int)
    /// This node's memory when it has free pages, another node's otherwise (`MPOL_PREFERRED`).
    case preferred(node: Int)
    /// Pages spread round-robin over these nodes (`MPOL_INTERLEAVE`): staging buffers read by all.
    case interleave(nodes: [Int])

    /// The NUMA nodes the policy names.
    public var nodes: [Int] {
        switch self {
        case .systemDefault: return []
        case .bind(let n), .preferred(let n): return [n]
        case .interleave(let nodes): return nodes
        }
    }

    var mode: Int32 {
        switch self {
        case .systemDefault: return Int32(HFR_MPOL_DEFAULT)
        case .bind: return Int32(HFR_MPOL_BIND)
        case .preferred: return Int32(HFR_MPOL_PREFERRED)
        case .interleave: return Int32(HFR_MPOL_INTERLEAVE)
        }
    }

    /// As `/proc/self/numa_maps` spells it: `default`, `bind:0`, `prefer:1`, `interleave:0-1`.
    public var description: String {
        switch self {
        case .systemDefault: return "default"
        case .bind(let n): return "bind:\(n)"
        case .preferred(let n): return "prefer:\(n)"
        case .interleave(let nodes): return "interleave:\(CPUSet(nodes))"
        }
    }

    /// The policy of the page holding `address` (`get_mempolicy(MPOL_F_ADDR)`).
    public static func of(address: UnsafeRawPointer) throws(TopologyError) -> MemoryPolicy {
        var mode: Int32 = 0
        var nodes = [Int32](repeating: 0, count: 1024)
        let n = hfr_page_policy(UnsafeMutableRawPointer(mutating: address), &mode, &nodes, Int32(nodes.count))
        guard n >= 0 else { throw .memory(call: "get_mempolicy(MPOL_F_ADDR)", errno: errno, bytes: 1) }
        let list = nodes.prefix(Int(n)).map(Int.init)
        switch mode {
        case Int32(HFR_MPOL_BIND) where list.count == 1: return .bind(node: list[0])
        case Int32(HFR_MPOL_PREFERRED) where list.count == 1: return .preferred(node: list[0])
        case Int32(HFR_MPOL_INTERLEAVE): return .interleave(nodes: list)
        default: return .systemDefault
        }
    }

    /// The node that holds the page at `address` (`get_mempolicy(MPOL_F_ADDR | MPOL_F_NODE)`);
    /// touch the page first, or the kernel allocates it to answer.
    public static func node(ofPageAt address: UnsafeRawPointer) throws(TopologyError) -> Int {
        let node = hfr_page_node(UnsafeMutableRawPointer(mutating: address))
        guard node >= 0 else { throw .memory(call: "get_mempolicy(MPOL_F_ADDR|MPOL_F_NODE)", errno: errno, bytes: 1) }
        return Int(node)
    }

    /// The highest NUMA node number of this machine (`numa_max_node`), or nil without NUMA support.
    public static var highestNode: Int? {
        let n = hfr_numa_max_node()
        return n < 0 ? nil : Int(n)
    }
}
