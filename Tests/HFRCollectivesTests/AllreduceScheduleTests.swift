import XCTest
import HFRCollectives
import HFRKernels

final class AllreduceScheduleTests: XCTestCase {
    func schedules(_ algo: AllreduceAlgorithm, n: Int, count: Int, type: DataType = .int32, op: ReduceOp = .sum,
                   inPlace: Bool, chunk: Int) -> [Schedule] {
        (0..<n).map { r in
            var shape = AllreduceShape(rank: r, ranks: n, count: count, type: type, op: op, inPlace: inPlace, chunkBytes: chunk)
            shape.slots = 2
            return AllreduceSchedule.build(algo, shape)
        }
    }

    /// The k-th message from a to b has the same length on both sides, for every pair.
    func testMessagesMatchAcrossRanks() {
        for algo in AllreduceAlgorithm.allCases {
            for n in 1...9 {
                for count in [0, 1, 2, 5, 97, 1000] {
                    let s = schedules(algo, n: n, count: count, inPlace: false, chunk: 64)
                    for a in 0..<n {
                        for b in 0..<n {
                            XCTAssertEqual(s[a].sendCount[b], s[b].recvCount[a], "\(algo) n=\(n) count=\(count): \(a)->\(b) message counts")
                            let sends = s[a].steps.filter { $0.kind == .send && $0.peer == b }.sorted { $0.index < $1.index }.map(\.length)
                            let recvs = s[b].steps.filter { $0.kind == .recv && $0.peer == a }.sorted { $0.index < $1.index }.map(\.length)
                            XCTAssertEqual(sends, recvs, "\(algo) n=\(n) count=\(count): \(a)->\(b) message lengths")
                        }
                    }
                }
            }
        }
    }

    /// Runs all ranks' schedules under many random orders and checks every element against the
    /// sum computed directly.
    func testSimulatedAllreduceIsCorrectUnderRandomOrders() {
        var sim = ScheduleSimulator(rng: SplitMix(state: 42))
        for algo in AllreduceAlgorithm.allCases {
            for n in [1, 2, 3, 4, 5, 7, 8] {
                for count in [1, 3, 17, 61, 130] {
                    for inPlace in [false, true] {
                        for op in [ReduceOp.sum, .avg] {
                            let s = schedules(algo, n: n, count: count, op: op, inPlace: inPlace, chunk: 32)
                            let inputs = (0..<n).map { r in (0..<count).flatMap { i in withUnsafeBytes(of: Int32(r * 1000 + i)) { Array($0) } } }
                            for _ in 0..<2 {
                                let out = sim.run(schedules: s, inputs: inputs, inPlace: inPlace, type: .int32, op: op)
                                for r in 0..<n {
                                    out[r].withUnsafeBytes { p in
                                        for i in 0..<count {
                                            let sum = (0..<n).reduce(0) { $0 + $1 * 1000 + i }
                                            let want = op == .avg ? sum / n : sum
                                            let got = Int(p.load(fromByteOffset: i * 4, as: Int32.self))
                                            if got != want {
                                                XCTFail("\(algo) \(op) n=\(n) count=\(count) inPlace=\(inPlace): rank \(r) element \(i) = \(got), want \(want)")
                                                return
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The tree splits the data in two halves, one per tree, and pipelines them in chunks.
    func testTreeSplitsDataBetweenTheTwoTrees() {
        let s = schedules(.tree, n: 4, count: 1024, inPlace: false, chunk: 256)
        let total = s.map { $0.steps.filter { $0.kind == .send }.reduce(0) { $0 + $1.length } }.reduce(0, +)
        // Each tree carries half (512 elements): reduced up over its n-1 edges and broadcast back down.
        XCTAssertEqual(total, 2 * 2 * 3 * 512 * 4)
        // Chunks of 256 bytes: every message is at most one chunk.
        XCTAssertEqual(s.flatMap { $0.steps.filter { $0.kind == .send }.map(\.length) }.max(), 256)
    }

    /// Every rank ends with the same bits, also where the op is not bit-commutative: max and min
    /// of -0 and +0, and NaNs with different payloads (which one survives depends on the
    /// operand order). Any order of operands is fine as long as all ranks use the same one.
    func testEveryRankHoldsTheSameBits() {
        var sim = ScheduleSimulator(rng: SplitMix(state: 7))
        let values: [UInt32] = [0x8000_0000, 0x0000_0000, 0x7FC0_0001, 0xFFC0_0002, 0x3F80_0000, 0x7FC0_0003]
        for algo in AllreduceAlgorithm.allCases {
            for n in [2, 3, 4, 5, 8] {
                for op in [ReduceOp.max, .min, .sum] {
                    let count = 24
                    let s = schedules(algo, n: n, count: count, type: .float32, op: op, inPlace: false, chunk: 32)
                    // Element i: rank r holds values[(i + r) % 6] or values[(i * r) % 6], so ranks differ.
                    func value(_ r: Int, _ i: Int) -> UInt32 {
                        let k = i / 2 % 2 == 0 ? i + r : i * (r + 1)
                        return values[k % values.count]
                    }
                    let inputs: [[UInt8]] = (0..<n).map { r in (0..<count).flatMap { i in withUnsafeBytes(of: value(r, i)) { Array($0) } } }
                    let out = sim.run(schedules: s, inputs: inputs, inPlace: false, type: .float32, op: op)
                    for r in 1..<n where out[r] != out[0] {
                        XCTFail("\(algo) \(op) n=\(n): rank \(r) holds other bits than rank 0")
                        break
                    }
                }
            }
        }
    }
}
