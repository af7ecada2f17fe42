/// A set of CPU (PU) numbers as the kernel counts them: the numbers `sched_setaffinity(2)` and
/// `/proc/cpuinfo` use, and hwloc's PU `os_index`. Printed in the kernel's list form (`0-3,8`).
public struct CPUSet: Hashable, Sendable, Sequence, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// The CPU numbers, increasing, without repeats.
    public private(set) var indexes: [Int]

    public init<S: Sequence>(_ cpus: S) where S.Element == Int {
        indexes = Array(Set(cpus)).sorted()
    }

    public init(arrayLiteral cpus: Int...) { self.init(cpus) }

    /// Parses the kernel's list form: `0-3,8,10-11` (as in `taskset -c` and cpuset.cpus).
    public init(parsing list: String) throws(TopologyError) {
        var cpus: [Int] = []
        for part in list.split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2, let low = Int(bounds[0].trimmed), low >= 0 else { throw .invalidCPUList(list) }
            let high = bounds.count == 2 ? Int(bounds[1].trimmed) : low
            guard let high, high >= low else { throw .invalidCPUList(list) }
            cpus.append(contentsOf: low...high)
        }
        guard !cpus.isEmpty else { throw .invalidCPUList(list) }
        self.init(cpus)
    }

    public var isEmpty: Bool { indexes.isEmpty }
    public var count: Int { indexes.count }
    public var first: Int? { indexes.first }
    public func makeIterator() -> IndexingIterator<[Int]> { indexes.makeIterator() }
    public func contains(_ cpu: Int) -> Bool { indexes.contains(cpu) }
    public func intersection(_ other: CPUSet) -> CPUSet { CPUSet(Set(indexes).intersection(other.indexes)) }
    public func union(_ other: CPUSet) -> CPUSet { CPUSet(indexes + other.indexes) }
    public func subtracting(_ other: CPUSet) -> CPUSet { CPUSet(Set(indexes).subtracting(other.indexes)) }
    public func isSubset(of other: CPUSet) -> Bool { Set(indexes).isSubset(of: other.indexes) }

    /// `0-3,8`: runs of consecutive numbers as ranges; `none` when empty.
    public var description: String {
        guard var start = indexes.first else { return "none" }
        var parts: [String] = []
        var previous = start
        for cpu in indexes.dropFirst() + [Int.min] {
            if cpu == previous + 1 { previous = cpu; continue }
            parts.append(start == previous ? "\(start)" : "\(start)-\(previous)")
            start = cpu; previous = cpu
        }
        return parts.joined(separator: ",")
    }
}

extension Substring {
    var trimmed: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
