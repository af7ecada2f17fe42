import Foundation
import XCTest
import HFRTopology

/// NUMA buffers on this machine, read back with get_mempolicy and /proc/self/numa_maps.
final class NUMAMemoryTests: XCTestCase {
    let size = 8 << 20
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    func highestNode() throws -> Int {
        guard let n = MemoryPolicy.highestNode else { throw XCTSkip("skipped: no NUMA support here (numa_available() < 0)") }
        return n
    }

    /// The /proc/self/numa_maps line of the mapping that starts at `address`.
    func numaMapsLine(_ address: UnsafeMutableRawPointer) throws -> String {
        let start = String(UInt(bitPattern: address), radix: 16)
        let maps = try String(contentsOfFile: "/proc/self/numa_maps", encoding: .utf8)
        return try XCTUnwrap(maps.split(separator: "\n").first { $0.hasPrefix(start + " ") }.map(String.init),
                             "no numa_maps line starts at \(start)")
    }

    func touch(_ b: NUMABuffer) {
        for offset in stride(from: 0, to: b.byteCount, by: page) { b.baseAddress.storeBytes(of: 0xA5, toByteOffset: offset, as: UInt8.self) }
    }

    func testBufferBoundToEachNodeLivesThere() throws {
        for node in 0...(try highestNode()) where FileManager.default.fileExists(atPath: "/sys/devices/system/node/node\(node)") {
            let b = try NUMABuffer(byteCount: size, policy: .bind(node: node))
            touch(b)
            XCTAssertEqual(try MemoryPolicy.of(address: b.baseAddress), .bind(node: node))
            for offset in [0, size / 2, size - page] {
                XCTAssertEqual(try MemoryPolicy.node(ofPageAt: b.baseAddress + offset), node, "page at +\(offset)")
            }
            let line = try numaMapsLine(b.baseAddress)
            XCTAssert(line.contains(" bind:\(node) "), line)
            XCTAssert(line.contains(" N\(node)=\(size / page)"), "all \(size / page) pages on node \(node): \(line)")
        }
    }

    func testPreferredInterleaveAndDefaultPolicies() throws {
        let node = try highestNode()
        let preferred = try NUMABuffer(byteCount: size, policy: .preferred(node: node))
        touch(preferred)
        XCTAssertEqual(try MemoryPolicy.of(address: preferred.baseAddress), .preferred(node: node))
        XCTAssert(try numaMapsLine(preferred.baseAddress).contains(" prefer:\(node) "))
        let all = Array(0...node)
        let spread = try NUMABuffer(byteCount: size, policy: .interleave(nodes: all))
        touch(spread)
        XCTAssertEqual(try MemoryPolicy.of(address: spread.baseAddress), .interleave(nodes: all))
        XCTAssert(try numaMapsLine(spread.baseAddress).contains(" interleave:\(CPUSet(all)) "))
        let plain = try NUMABuffer(byteCount: 100, policy: .systemDefault)
        touch(plain)
        XCTAssertEqual(try MemoryPolicy.of(address: plain.baseAddress), .systemDefault)
        XCTAssertEqual(plain.byteCount, 100)
    }

    func testPlacementBuffersAreOnTheNICsNode() throws {
        _ = try highestNode()
        let t = try Topology.thisMachine()
        let nic = t.networkDevices.first?.name ?? "lo"
        let context = PlacementContext(allowedCPUs: try ThreadPinning.processAffinity(), currentCPU: try ThreadPinning.currentCPU())
        let c = try Placement.choose(nics: [nic], workers: 1, topology: t, context: context).primary
        let b = try c.allocateBuffer(byteCount: size)
        touch(b)
        XCTAssertEqual(try MemoryPolicy.of(address: b.baseAddress), .preferred(node: c.numaNode))
        XCTAssertEqual(try MemoryPolicy.node(ofPageAt: b.baseAddress + size - 1), c.numaNode)
    }

    func testBadNodesAndSizesAreErrors() throws {
        let highest = try highestNode()
        XCTAssertThrowsError(try NUMABuffer(byteCount: 4096, policy: .bind(node: highest + 1))) {
            XCTAssertEqual($0 as? TopologyError, .noSuchNode(highest + 1, highest: highest))
            XCTAssert("\($0)".contains("NUMA node \(highest + 1) does not exist"), "\($0)")
        }
        XCTAssertThrowsError(try NUMABuffer(byteCount: 4096, policy: .interleave(nodes: []))) {
            XCTAssertEqual($0 as? TopologyError, .noNodes(policy: "interleave:none"))
        }
        XCTAssertThrowsError(try NUMABuffer(byteCount: 0, policy: .bind(node: 0))) {
            guard case .memory(call: "mmap", errno: EINVAL, bytes: 0) = $0 as? TopologyError else { return XCTFail("\($0)") }
        }
    }
}
