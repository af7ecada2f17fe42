import XCTest
import HFRCollectives
import HFRKernels

/// `Schedule.messageExtents`: per buffer, the byte range the messages of a schedule touch (what
/// an RDMA rank registers of a caller's buffer for one collective).
final class MessageExtentTests: XCTestCase {
    func extent(_ s: Schedule, _ b: BufferName) -> Range<Int> { s.messageExtents[Int(b.rawValue)] }

    /// All-to-all of 5 int32 per peer over 4 ranks: a rank sends from and receives into every
    /// block but its own (copied locally, not a message).
    func testAllToAllSkipsTheOwnBlock() {
        let blk = 20
        func build(_ rank: Int, _ counts: [Int]) -> Schedule {
            let displs = [0, 5, 10, 15]
            return AllToAllSchedule.build(rank: rank, ranks: 4, type: .int32, sendCounts: counts, sendDispls: displs,
                                          recvCounts: counts, recvDispls: displs, inPlace: false, equalCount: nil)
        }
        let s0 = build(0, [5, 5, 5, 5]), s1 = build(1, [5, 5, 5, 5]), s3 = build(3, [5, 5, 5, 5])
        XCTAssertEqual(extent(s0, .send), blk..<(4 * blk))
        XCTAssertEqual(extent(s0, .recv), blk..<(4 * blk))
        XCTAssertEqual(extent(s1, .send), 0..<(4 * blk))
        XCTAssertEqual(extent(s3, .recv), 0..<(3 * blk))
        XCTAssertEqual(extent(s1, .scratch), 0..<0)
        // Zero counts are no messages: rank 1 then exchanges with rank 0 alone, or with no one.
        let v = build(1, [5, 5, 0, 0])
        XCTAssertEqual(extent(v, .send), 0..<blk)
        let none = build(1, [0, 5, 0, 0])
        XCTAssertEqual(extent(none, .send), 0..<0)
        XCTAssertEqual(extent(none, .recv), 0..<0)
    }

    /// Broadcast of 12 int32 from root 2 over 4 ranks, not in place: the root sends from its send
    /// buffer and receives nothing; the others receive the whole count.
    func testBroadcastRootAndReceivers() {
        let root = RootedSchedule.broadcast(rank: 2, ranks: 4, root: 2, count: 12, type: .int32, inPlace: false, chunkBytes: 16)
        XCTAssertEqual(extent(root, .send), 0..<48)
        XCTAssertEqual(extent(root, .recv), 0..<0)
        for r in [0, 1, 3] {
            let s = RootedSchedule.broadcast(rank: r, ranks: 4, root: 2, count: 12, type: .int32, inPlace: false, chunkBytes: 16)
            XCTAssertEqual(extent(s, .recv), 0..<48, "rank \(r)")
            XCTAssertEqual(extent(s, .send), 0..<0, "rank \(r) reads nothing of its send buffer")
        }
    }

    /// Every allreduce algorithm at awkward counts: each message lies inside its buffer's extent,
    /// and both ends of every non-empty extent are reached by some message.
    func testAllreduceMessagesSpanTheirExtents() {
        for algorithm in AllreduceAlgorithm.allCases {
            for n in [2, 3, 5, 8] {
                for count in [1, 7, 1000] {
                    for rank in 0..<n {
                        var shape = AllreduceShape(rank: rank, ranks: n, count: count, type: .float32, op: .sum, inPlace: false, chunkBytes: 0)
                        shape.chunkBytes = 256
                        let s = AllreduceSchedule.build(algorithm, shape)
                        var lows: [BufferName: Int] = [:], highs: [BufferName: Int] = [:]
                        for step in s.steps where step.length > 0 && (step.kind == .send || step.kind == .recv) {
                            let ref = step.kind == .send ? step.a : step.dst
                            let e = extent(s, ref.buffer)
                            XCTAssertTrue(e.lowerBound <= ref.offset && ref.offset + step.length <= e.upperBound,
                                          "\(algorithm) n=\(n) count=\(count) rank \(rank): message outside \(ref.buffer)'s extent \(e)")
                            lows[ref.buffer] = min(lows[ref.buffer] ?? .max, ref.offset)
                            highs[ref.buffer] = max(highs[ref.buffer] ?? 0, ref.offset + step.length)
                        }
                        for b in BufferName.allCases {
                            let want = lows[b].map { $0..<highs[b]! } ?? 0..<0
                            XCTAssertEqual(extent(s, b), want, "\(algorithm) n=\(n) count=\(count) rank \(rank) \(b)")
                        }
                    }
                }
            }
        }
    }
}
