import Glibc
import CHFRTopology

/// Page-aligned memory placed by a NUMA policy: `mmap(2)` of anonymous memory, then `mbind(2)`
/// with the policy before any page is touched, so every page is allocated where the policy says.
/// Freed (`munmap`) when the last reference goes.
public final class NUMABuffer: @unchecked Sendable {
    public let baseAddress: UnsafeMutableRawPointer
    /// The bytes asked for; the mapping is rounded up to whole pages.
    public let byteCount: Int
    /// The policy the memory was bound with.
    public let policy: MemoryPolicy
    private let mappedBytes: Int

    /// Allocates `byteCount` bytes (at least 1) under `policy`; nodes the machine does not have
    /// and a kernel without NUMA support are errors, except for `.systemDefault`.
    public init(byteCount: Int, policy: MemoryPolicy) throws(TopologyError) {
        guard byteCount > 0 else { throw .memory(call: "mmap", errno: EINVAL, bytes: byteCount) }
        if policy != .systemDefault {
            guard let highest = MemoryPolicy.highestNode else { throw .numaUnavailable }
            guard !policy.nodes.isEmpty else { throw .noNodes(policy: policy.description) }
            if let bad = policy.nodes.first(where: { $0 < 0 || $0 > highest }) { throw .noSuchNode(bad, highest: highest) }
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = (byteCount + page - 1) / page * page
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw .memory(call: "mmap", errno: errno, bytes: byteCount)
        }
        if policy != .systemDefault {
            let nodes = policy.nodes.map(Int32.init)
            let rc = hfr_mbind(p, length, policy.mode, nodes, Int32(nodes.count))
            guard rc == 0 else {
                munmap(p, length)
                throw .memory(call: "mbind(\(policy))", errno: rc, bytes: byteCount)
            }
        }
        baseAddress = p
        self.byteCount = byteCount
        self.policy = policy
        mappedBytes = length
    }

    deinit { munmap(baseAddress, mappedBytes) }
}
