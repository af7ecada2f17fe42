import Foundation
import XCTest
import HFRTopology

/// This machine's topology, as hwloc reads it, against what the kernel says in /sys.
final class MachineTests: XCTestCase {
    func testThisMachineMatchesSysfs() throws {
        let t = try Topology.thisMachine()
        XCTAssertEqual(t.source, .thisMachine)
        let online = try String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8)
        // hwloc drops the PUs a cgroup forbids; the affinity mask lies within what is left.
        XCTAssert(t.pus.isSubset(of: try CPUSet(parsing: online.trimmingCharacters(in: .whitespacesAndNewlines))), "\(t.pus) vs \(online)")
        XCTAssert(try ThreadPinning.processAffinity().isSubset(of: t.pus))
        let nodes = try FileManager.default.contentsOfDirectory(atPath: "/sys/devices/system/node")
            .filter { $0.hasPrefix("node") }.compactMap { Int($0.dropFirst(4)) }.sorted()
        if nodes.isEmpty { throw XCTSkip("skipped: this kernel shows no /sys/devices/system/node/node* (no NUMA support)") }
        XCTAssertEqual(t.numaNodes.map(\.osIndex), nodes)
        XCTAssert(t.numaNodes.allSatisfy { $0.memoryBytes > 0 })
        XCTAssertEqual(t.cores.reduce(CPUSet()) { $0.union($1.pus) }, t.pus, "every PU belongs to a core")
    }

    /// Every interface backed by a device (/sys/class/net/NAME/device) is one hwloc reports, with
    /// the NUMA node the kernel gives for it (/sys/class/net/NAME/device/numa_node, -1: none).
    func testInterfacesWithADeviceAreKnownWithTheirNode() throws {
        let t = try Topology.thisMachine()
        let names = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net").sorted()
        let physical = names.filter { FileManager.default.fileExists(atPath: "/sys/class/net/\($0)/device") }
        if physical.isEmpty { throw XCTSkip("skipped: no network interface here has a device in /sys/class/net") }
        for name in physical {
            let d = try XCTUnwrap(t.device(named: name), "hwloc does not report \(name)")
            XCTAssertEqual(d.kind, .network)
            XCTAssertFalse(d.nearestCPUs.isEmpty)
            let raw = (try? String(contentsOfFile: "/sys/class/net/\(name)/device/numa_node", encoding: .utf8)) ?? "-1"
            if let node = Int(raw.trimmingCharacters(in: .whitespacesAndNewlines)), node >= 0 {
                XCTAssertEqual(d.numaNode, node, name)
            } else if t.numaNodes.count == 1 {
                XCTAssertEqual(d.numaNode, t.numaNodes[0].osIndex, name)
            }
        }
        // Loopback and other virtual interfaces have no PCI device: hwloc does not list them.
        XCTAssertNil(t.device(named: "lo"))
    }
}
