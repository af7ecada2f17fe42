import XCTest
import HFRTopology

/// Placement decisions on the shipped topologies: the NIC's node, a core of it for the progress
/// thread, other cores for the workers, PU 0's core kept free, the affinity mask honored, one
/// choice per NIC, and a stated fallback for NICs hwloc does not know.
final class PlacementTests: XCTestCase {
    func place(_ t: Topology, _ nics: [String], workers: Int = 4, allowed: CPUSet? = nil, current: Int? = nil,
               localRank: Int = 0, localRanks: Int = 1, binding: Bool = true) throws -> Placement {
        let context = PlacementContext(allowedCPUs: allowed ?? t.pus, currentCPU: current, bindingEnabled: binding,
                                       localRank: localRank, localRanks: localRanks)
        return try Placement.choose(nics: nics, workers: workers, topology: t, context: context)
    }

    /// Progress and workers on distinct cores of `node`, none of them the core of the node's first PU.
    func assertOwnCores(_ c: Placement.Choice, node: Int, in t: Topology, workers: Int,
                        file: StaticString = #filePath, line: UInt = #line) {
        let firstPU = t.node(node)!.cpus.first!
        let sets = [c.progressCPUs] + c.workerCPUs
        XCTAssertEqual(c.workerCPUs.count, workers, file: file, line: line)
        let cores = sets.map { t.core(ofCPU: $0.first!) }
        for (set, core) in zip(sets, cores) {
            XCTAssertEqual(core?.pus, set, "each thread gets one whole core", file: file, line: line)
            XCTAssertEqual(core?.numaNode, node, "\(set) is not on node \(node)", file: file, line: line)
            XCTAssertFalse(set.contains(firstPU), "PU \(firstPU)'s core is used although the node has cores to spare", file: file, line: line)
        }
        XCTAssertEqual(Set(cores.map { $0?.index }).count, 1 + workers, "threads share a core: \(sets)", file: file, line: line)
    }

    func testFireFlyer2PlacesEverythingOnTheHCAsNode() throws {
        let t = try Topologies.fireFlyer2()
        for nic in ["mlx5_0", "ib0", "mlx5_0:1"] {
            let p = try place(t, [nic], current: 20)
            XCTAssertEqual(p.choices.count, 1)
            let c = p.primary
            XCTAssertEqual(c.nic, nic)
            XCTAssertEqual(c.numaNode, 0, "\(nic) hangs off socket 0")
            XCTAssertTrue(c.isNICLocal)
            XCTAssertEqual(c.memoryPolicy, .preferred(node: 0))
            XCTAssert(c.reason.contains("local to NUMA node 0"), c.reason)
            assertOwnCores(c, node: 0, in: t, workers: 4)
            XCTAssertEqual(p.notes, [])
        }
    }

    func testFireFlyer2RankMaskOnTheHCAsNodeIsHonored() throws {
        let t = try Topologies.fireFlyer2()
        // The rank was launched on cores L#8-11 (PUs 8-11 and their siblings 40-43).
        let mask = CPUSet(Array(8...11) + Array(40...43))
        let c = try place(t, ["mlx5_0"], workers: 3, allowed: mask).primary
        XCTAssertEqual(c.numaNode, 0)
        assertInside(c, mask)
        XCTAssertEqual(c.progressCPUs, [8, 40])
        XCTAssertEqual(c.workerCPUs, [[9, 41], [10, 42], [11, 43]])
    }

    func testFireFlyer2RankMaskOnTheOtherSocketStaysInside() throws {
        let t = try Topologies.fireFlyer2()
        let mask = CPUSet(16...23)
        let p = try place(t, ["mlx5_0"], workers: 2, allowed: mask)
        let c = p.primary
        XCTAssertEqual(c.numaNode, 0, "buffers stay next to the HCA")
        XCTAssertEqual(c.memoryPolicy, .preferred(node: 0))
        assertInside(c, mask)
        XCTAssertEqual(Set(([c.progressCPUs] + c.workerCPUs).map(\.count)), [1], "the mask holds one PU per core")
        XCTAssertEqual(p.notes.count, 1)
        XCTAssert(p.notes[0].contains("no CPU on NUMA node 0"), p.notes[0])
    }

    func testTooFewCoresUsesTheFirstPUsCoreLast() throws {
        let t = try Topologies.fireFlyer2()
        // Two cores of node 0: L#0 (PUs 0, 32) and L#1 (PUs 1, 33); one worker.
        let c = try place(t, ["mlx5_0"], workers: 1, allowed: [0, 1, 32, 33]).primary
        XCTAssertEqual(c.progressCPUs, [1, 33])
        XCTAssertEqual(c.workerCPUs, [[0, 32]])
        // Three workers on two cores: the workers share what the progress thread leaves.
        let d = try place(t, ["mlx5_0"], workers: 3, allowed: [0, 1, 32, 33]).primary
        XCTAssertEqual(d.progressCPUs, [1, 33])
        XCTAssertEqual(d.workerCPUs, Array(repeating: [0, 32], count: 3))
        XCTAssert(d.reason.contains("share CPUs 0,32"), d.reason)
        // One CPU: everything on it, and the reason says so.
        let e = try place(t, ["mlx5_0"], workers: 2, allowed: [5]).primary
        XCTAssertEqual(e.progressCPUs, [5])
        XCTAssertEqual(e.workerCPUs, [[5], [5]])
        XCTAssert(e.reason.contains("every thread shares them"), e.reason)
    }

    func testLocalRanksTakeSeparateSlicesOfTheNode() throws {
        let t = try Topologies.fireFlyer2()
        let a = try place(t, ["mlx5_0"], workers: 3, localRank: 0, localRanks: 4).primary
        let b = try place(t, ["mlx5_0"], workers: 3, localRank: 3, localRanks: 4).primary
        let cpusA = ([a.progressCPUs] + a.workerCPUs).reduce(CPUSet()) { $0.union($1) }
        let cpusB = ([b.progressCPUs] + b.workerCPUs).reduce(CPUSet()) { $0.union($1) }
        XCTAssertEqual(cpusA.count, 8)
        XCTAssertEqual(cpusB.count, 8)
        XCTAssertEqual(cpusA.intersection(cpusB), [], "local ranks 0 and 3 overlap")
        XCTAssert(cpusA.union(cpusB).isSubset(of: t.node(0)!.cpus))
        // 20 ranks on 16 cores: no core of its own, so each rank is bound to the node.
        let crowded = try place(t, ["mlx5_0"], workers: 1, localRank: 7, localRanks: 20)
        XCTAssertEqual(crowded.primary.progressCPUs, t.node(0)!.cpus)
        XCTAssert(crowded.notes[0].contains("bound to the node's CPUs"), crowded.notes[0])
    }

    func testNICPerSocketIsPlacedPerNIC() throws {
        let t = try Topologies.nicPerSocket()
        for pair in [["mlx5_0", "mlx5_1"], ["eth0", "eth1"]] {
            let p = try place(t, pair, workers: 2)
            XCTAssertEqual(p.choices.map(\.nic), pair)
            XCTAssertEqual(p.choices.map(\.numaNode), [0, 1])
            XCTAssertEqual(p.choices.map(\.memoryPolicy), [.preferred(node: 0), .preferred(node: 1)])
            assertOwnCores(try XCTUnwrap(p.choice(for: pair[0])), node: 0, in: t, workers: 2)
            assertOwnCores(try XCTUnwrap(p.choice(for: pair[1])), node: 1, in: t, workers: 2)
            XCTAssertEqual(p.choices[0].progressCPUs, [1], "PU 0's core is left free")
            XCTAssertEqual(p.choices[1].progressCPUs, [11], "PU 10 is node 1's first PU")
            XCTAssertEqual(p.notes.count, 1)
            XCTAssert(p.notes[0].contains("2 NUMA nodes"), p.notes[0])
        }
        let one = try place(t, ["eth1"], workers: 2)
        XCTAssertEqual(one.primary.numaNode, 1)
        let same = try place(t, ["eth0", "mlx5_0"], workers: 2)
        for c in same.choices {
            XCTAssertEqual(c.numaNode, 0)
            XCTAssertEqual(c.progressCPUs, [1])
            XCTAssertEqual(c.workerCPUs, [[2], [3]])
        }
        XCTAssert(same.notes[0].contains("served from NUMA node 0"), same.notes[0])
    }

    func testUnknownNICFallsBackToTheCurrentCPUsNodeAndSaysWhy() throws {
        let t = try Topologies.nicPerSocket()
        for nic in ["veth3a9f", "lo", "docker0"] {
            let p = try place(t, [nic], workers: 2, current: 17)
            let c = p.primary
            XCTAssertFalse(c.isNICLocal)
            XCTAssertEqual(c.numaNode, 1, "PU 17 is on node 1")
            XCTAssertEqual(c.memoryPolicy, .preferred(node: 1))
            assertOwnCores(c, node: 1, in: t, workers: 2)
            XCTAssert(c.reason.contains("hwloc knows no device named \(nic)"), c.reason)
            XCTAssert(c.reason.contains("the CPU this process runs on (PU 17)"), c.reason)
        }
        // Outside the mask or unknown: the first CPU of the mask decides.
        let c = try place(t, ["veth0"], workers: 0, allowed: CPUSet(12...15), current: 3).primary
        XCTAssertEqual(c.numaNode, 1)
        XCTAssert(c.reason.contains("the first CPU of the affinity mask (PU 12)"), c.reason)
        XCTAssertEqual(c.workerCPUs, [])
        // A known NIC next to an unknown one: each gets its own decision.
        let mixed = try place(t, ["mlx5_0", "veth0"], workers: 1, current: 15)
        XCTAssertEqual(mixed.choices.map(\.isNICLocal), [true, false])
        XCTAssertEqual(mixed.choices.map(\.numaNode), [0, 1])
    }

    func testBindingOffStillDecidesButNeitherPinsNorBinds() throws {
        let t = try Topologies.fireFlyer2()
        let p = try place(t, ["mlx5_0"], workers: 1, binding: false)
        XCTAssertFalse(p.bindingEnabled)
        XCTAssert(p.notes.contains { $0.hasPrefix("HFR_NUMA_BIND=0") }, "\(p.notes)")
        let c = p.primary
        XCTAssertEqual(c.numaNode, 0)
        let before = try onNewThread { () throws -> (CPUSet?, CPUSet) in
            (try c.pinProgressThread(), try ThreadPinning.currentThreadAffinity())
        }
        XCTAssertNil(before.0)
        XCTAssertEqual(before.1, try ThreadPinning.processAffinity(), "an unpinned thread keeps the process's mask")
        let buffer = try c.allocateBuffer(byteCount: 4096)
        XCTAssertEqual(buffer.policy, .systemDefault)
    }

    func testNoNICAndForeignMaskAreErrors() throws {
        let t = try Topologies.nicPerSocket()
        XCTAssertThrowsError(try place(t, [])) { XCTAssertEqual($0 as? TopologyError, .noNICs) }
        XCTAssertThrowsError(try place(t, ["eth0"], allowed: [40, 41])) { error in
            XCTAssertEqual(error as? TopologyError, .affinityOutsideTopology(allowed: [40, 41], topologyPUs: CPUSet(0..<20)))
            XCTAssert("\(error)".contains("40-41"), "\(error)")
        }
    }
}
