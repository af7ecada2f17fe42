import XCTest
import HFRCollectives
import HFRKernels

/// The rest of the family under the schedule simulator: random orders, results against a direct
/// computation on int32 values.
final class FamilyScheduleTests: XCTestCase {
    var sim = ScheduleSimulator(rng: SplitMix(state: 7))

    func bytes(_ v: [Int32]) -> [UInt8] { v.flatMap { x in withUnsafeBytes(of: x) { Array($0) } } }
    func ints(_ b: [UInt8]) -> [Int32] { b.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) } }

    func testBroadcastAndReduceFromEveryRoot() {
        for n in [1, 2, 3, 5, 8] {
            for count in [1, 9, 40] {
                for root in 0..<n {
                    let inputs = (0..<n).map { r in bytes((0..<count).map { Int32(r * 100 + $0) }) }
                    let bs = (0..<n).map { RootedSchedule.broadcast(rank: $0, ranks: n, root: root, count: count, type: .int32, inPlace: false, chunkBytes: 8) }
                    for _ in 0..<2 {
                        let out = sim.run(schedules: bs, inputs: inputs, inPlace: false, type: .int32, op: .sum)
                        for r in 0..<n { XCTAssertEqual(ints(out[r]), ints(inputs[root]), "broadcast n=\(n) root=\(root) rank \(r)") }
                    }
                    let rs = (0..<n).map { RootedSchedule.reduce(rank: $0, ranks: n, root: root, count: count, type: .int32, op: .sum, chunkBytes: 8, slots: 2) }
                    let out = sim.run(schedules: rs, inputs: inputs, inPlace: false, type: .int32, op: .sum)
                    let want = (0..<count).map { i in Int32((0..<n).reduce(0) { $0 + $1 * 100 + i }) }
                    XCTAssertEqual(ints(out[root]), want, "reduce n=\(n) root=\(root)")
                    for r in 0..<n where r != root {
                        XCTAssertEqual(out[r], [UInt8](repeating: 0xEE, count: count * 4), "reduce wrote rank \(r)'s receive buffer")
                    }
                }
            }
        }
    }

    func testAllGatherReduceScatterAndAllToAll() {
        for n in [1, 2, 3, 4, 7] {
            for count in [1, 5, 33] {
                // Allgather: rank r contributes r*1000 + i.
                let gin = (0..<n).map { r in bytes((0..<count).map { Int32(r * 1000 + $0) }) }
                let gs = (0..<n).map { RingSchedule.allGather(rank: $0, ranks: n, count: count, type: .int32, inPlace: false, chunkBytes: 8) }
                let gout = sim.run(schedules: gs, inputs: gin, inPlace: false, type: .int32, op: .sum, recvBytes: n * count * 4)
                let gwant = (0..<n).flatMap { p in (0..<count).map { Int32(p * 1000 + $0) } }
                for r in 0..<n { XCTAssertEqual(ints(gout[r]), gwant, "allgather n=\(n) count=\(count) rank \(r)") }

                // Reduce-scatter: element j of rank r is r + j.
                let rin = (0..<n).map { r in bytes((0..<(n * count)).map { Int32(r + $0) }) }
                let rss = (0..<n).map { RingSchedule.reduceScatter(rank: $0, ranks: n, count: count, type: .int32, op: .sum, chunkBytes: 8) }
                let rout = sim.run(schedules: rss, inputs: rin, inPlace: false, type: .int32, op: .sum, recvBytes: count * 4)
                for r in 0..<n {
                    let want = (0..<count).map { i in Int32((0..<n).reduce(0) { $0 + $1 + r * count + i }) }
                    XCTAssertEqual(ints(rout[r]), want, "reduce-scatter n=\(n) count=\(count) rank \(r)")
                }

                // All-to-all: rank s sends s*100 + d*10 + i to rank d.
                func block(_ s: Int, _ d: Int) -> [Int32] { (0..<count).map { i -> Int32 in Int32(s * 100 + d * 10 + i) } }
                var ain: [[UInt8]] = []
                for s in 0..<n {
                    var v: [Int32] = []
                    for d in 0..<n { v += block(s, d) }
                    ain.append(bytes(v))
                }
                let counts = Array(repeating: count, count: n), displs = (0..<n).map { $0 * count }
                for inPlace in [false, true] {
                    let a2 = (0..<n).map { AllToAllSchedule.build(rank: $0, ranks: n, type: .int32, sendCounts: counts, sendDispls: displs,
                                                                 recvCounts: counts, recvDispls: displs, inPlace: inPlace, equalCount: count) }
                    let aout = sim.run(schedules: a2, inputs: ain, inPlace: inPlace, type: .int32, op: .sum)
                    for r in 0..<n {
                        var want: [Int32] = []
                        for s in 0..<n { want += block(s, r) }
                        XCTAssertEqual(ints(aout[r]), want, "all-to-all n=\(n) count=\(count) inPlace=\(inPlace) rank \(r)")
                    }
                }
            }
        }
    }
}
