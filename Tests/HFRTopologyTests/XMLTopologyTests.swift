import XCTest
import HFRTopology

/// The shipped XML topologies load through hwloc with their I/O devices, and what is read out of
/// them matches what the files describe.
final class XMLTopologyTests: XCTestCase {
    func testFireFlyer2Node() throws {
        let t = try Topologies.fireFlyer2()
        XCTAssertEqual(t.source, .xmlFile(Topologies.fireFlyer2Path))
        XCTAssertEqual(t.packages.count, 2)
        XCTAssertEqual(t.numaNodes.map(\.osIndex), [0, 1])
        XCTAssertEqual(t.cores.count, 32)
        XCTAssertEqual(t.pus, CPUSet(0..<64))
        XCTAssertEqual(t.node(0)?.cpus, CPUSet(Array(0..<16) + Array(32..<48)))
        XCTAssertEqual(t.node(1)?.memoryBytes, 256 << 30)
        // SMT: core L#1 holds PUs 1 and 33.
        XCTAssertEqual(t.core(1)?.pus, [1, 33])
        XCTAssertEqual(t.core(ofCPU: 49)?.index, 17)
        XCTAssertEqual(t.gpus.count, 8)
        XCTAssertEqual(t.gpus.filter { $0.numaNodes == [0] }.count, 4)
        XCTAssertEqual(t.gpus.filter { $0.numaNodes == [1] }.count, 4)
        XCTAssert(t.gpus.allSatisfy { $0.pciClass == 0x0302 })

        let hca = try XCTUnwrap(t.device(named: "mlx5_0"))
        XCTAssertEqual(hca.kind, .openFabrics)
        XCTAssertEqual(hca.pciBusID, "0000:31:00.0")
        XCTAssertEqual(hca.pciClass, 0x0207)
        XCTAssertEqual(hca.siblings, ["ib0"])
        XCTAssertEqual(hca.numaNode, 0)
        XCTAssertEqual(hca.nearestCPUs, t.node(0)?.cpus)
        XCTAssertEqual(hca.nearestCores, Array(0..<16))
        let ib0 = try XCTUnwrap(t.device(named: "ib0"))
        XCTAssertEqual(ib0.kind, .network)
        XCTAssertEqual(ib0.numaNode, 0)
        XCTAssertEqual(t.networkDevices.count, 2, "one HCA: mlx5_0 and its interface ib0")
    }

    func testNICPerSocketServer() throws {
        let t = try Topologies.nicPerSocket()
        XCTAssertEqual(t.numaNodes.count, 2)
        XCTAssertEqual(t.cores.count, 20)
        XCTAssertEqual(t.pus, CPUSet(0..<20))
        XCTAssertEqual(t.gpus, [])
        for (hca, interface, node) in [("mlx5_0", "eth0", 0), ("mlx5_1", "eth1", 1)] {
            let d = try XCTUnwrap(t.device(named: hca))
            let e = try XCTUnwrap(t.device(named: interface))
            XCTAssertEqual(d.numaNode, node, hca)
            XCTAssertEqual(e.numaNode, node, interface)
            XCTAssertEqual(d.pciBusID, e.pciBusID, "\(hca) and \(interface) are one PCI device")
            XCTAssertEqual(d.nearestCores, Array(node * 10..<(node * 10 + 10)))
        }
    }

    func testMissingFileIsAnErrorNamingIt() {
        let path = Topologies.directory + "/no-such-topology.xml"
        XCTAssertThrowsError(try Topology.load(xmlFile: path)) { error in
            guard case .hwloc(let call, _, let source) = error as? TopologyError else { return XCTFail("\(error)") }
            XCTAssert(call.hasPrefix("hwloc_topology_"), call)
            XCTAssertEqual(source, path)
            XCTAssert("\(error)".contains(path), "\(error)")
        }
    }

    func testMalformedFileIsAnError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hfr-topo-bad-\(getpid()).xml").path
        try "<topology version=\"2.0\"><object type=\"Machine\"".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try Topology.load(xmlFile: path)) { error in
            guard case .hwloc = error as? TopologyError else { return XCTFail("\(error)") }
        }
    }
}
