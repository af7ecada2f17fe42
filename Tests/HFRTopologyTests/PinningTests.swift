import Foundation
import XCTest
import HFRTopology

/// Pinning threads on this machine, read back from the kernel.
final class PinningTests: XCTestCase {
    func testPinEachAllowedCPUAndReadItBack() throws {
        let allowed = try ThreadPinning.processAffinity()
        XCTAssertFalse(allowed.isEmpty)
        XCTAssertEqual(allowed, try procAllowedCPUs(), "sched_getaffinity disagrees with /proc")
        for cpu in allowed {
            let (mask, running, proc) = try onNewThread { () throws -> (CPUSet, Int, CPUSet) in
                try ThreadPinning.pinCurrentThread(to: [cpu])
                return (try ThreadPinning.currentThreadAffinity(), try ThreadPinning.currentCPU(), try procAllowedCPUs())
            }
            XCTAssertEqual(mask, [cpu], "sched_getaffinity after pinning to \(cpu)")
            XCTAssertEqual(proc, [cpu], "/proc/thread-self/status after pinning to \(cpu)")
            XCTAssertEqual(running, cpu, "sched_getcpu after pinning to \(cpu)")
        }
        XCTAssertEqual(try ThreadPinning.processAffinity(), allowed, "pinning other threads changed the process's mask")
    }

    func testPinningToNoOrAbsentCPUsIsAnError() throws {
        XCTAssertThrowsError(try ThreadPinning.pinCurrentThread(to: [])) {
            XCTAssertEqual($0 as? TopologyError, .emptyCPUSet(purpose: "calling thread"))
        }
        let absent = (try Topology.thisMachine().pus.indexes.last ?? 0) + 1000
        let error = try onNewThread { () -> (any Error)? in
            do { try ThreadPinning.pinCurrentThread(to: [absent]); return nil } catch { return error }
        }
        guard case .affinity(let call, let errno, let cpus) = error as? TopologyError else {
            return XCTFail("pinning to CPU \(absent) gave \(String(describing: error))")
        }
        XCTAssertEqual(call, "pthread_setaffinity_np")
        XCTAssertEqual(errno, EINVAL)
        XCTAssertEqual(cpus, [absent])
    }

    /// What the engine does: decide for this process, pin a progress thread and a worker each on
    /// a fresh thread, and read both masks back.
    func testThisProcessPlacementPinsWhereItSays() throws {
        let t = try Topology.thisMachine()
        let nic = t.networkDevices.first?.name ?? "lo"
        let p = try Placement.forThisProcess(nics: [nic], workers: 1)
        if !p.bindingEnabled { throw XCTSkip("skipped: HFR_NUMA_BIND=0 is set in this environment") }
        let c = p.primary
        XCTAssert(c.progressCPUs.isSubset(of: try ThreadPinning.processAffinity()))
        let progress = try onNewThread { () throws -> CPUSet in
            try c.pinProgressThread()
            return try ThreadPinning.currentThreadAffinity()
        }
        XCTAssertEqual(progress, c.progressCPUs)
        let worker = try onNewThread { () throws -> CPUSet in
            try c.pinWorkerThread(0)
            return try ThreadPinning.currentThreadAffinity()
        }
        XCTAssertEqual(worker, c.workerCPUs[0])
        if t.pus.count >= 2 && t.numaNodes.count == 1 {
            XCTAssertEqual(c.progressCPUs.intersection(c.workerCPUs[0]), [], "two cores, yet progress and worker share one")
        }
    }

    func testNUMABindEnvironmentVariable() throws {
        defer { unsetenv("HFR_NUMA_BIND") }
        unsetenv("HFR_NUMA_BIND")
        XCTAssertTrue(try PlacementContext.bindingFromEnvironment())
        setenv("HFR_NUMA_BIND", "0", 1)
        XCTAssertFalse(try PlacementContext.bindingFromEnvironment())
        XCTAssertFalse(try PlacementContext.thisProcess().bindingEnabled)
        setenv("HFR_NUMA_BIND", "1", 1)
        XCTAssertTrue(try PlacementContext.bindingFromEnvironment())
        setenv("HFR_NUMA_BIND", "yes", 1)
        XCTAssertThrowsError(try PlacementContext.bindingFromEnvironment()) { error in
            XCTAssert("\(error)".hasPrefix("HFR_NUMA_BIND=yes is not accepted"), "\(error)")
        }
    }
}
