import XCTest
import HFRCollectives

final class DoubleBinaryTreeTests: XCTestCase {
    /// Each tree is a spanning tree: one root, every other rank has exactly one parent, parent and
    /// child links agree, and following parents from any rank reaches the root.
    func testTreesAreSpanningAndConsistent() {
        for n in 1...70 {
            for (k, name) in ["A", "B"].enumerated() {
                let links = (0..<n).map { DoubleBinaryTree.trees(rank: $0, size: n)[k] }
                XCTAssertEqual(links.filter { $0.parent < 0 }.count, 1, "n=\(n) tree \(name): exactly one root")
                var childCount = [Int](repeating: 0, count: n)
                for r in 0..<n {
                    XCTAssertLessThanOrEqual(links[r].children.count, 2, "n=\(n) tree \(name) rank \(r)")
                    for c in links[r].children {
                        XCTAssertTrue((0..<n).contains(c), "n=\(n) tree \(name): child \(c) of \(r) out of range")
                        XCTAssertEqual(links[c].parent, r, "n=\(n) tree \(name): child \(c) of \(r) names parent \(links[c].parent)")
                        childCount[c] += 1
                    }
                    if links[r].parent >= 0 {
                        XCTAssertTrue(links[links[r].parent].children.contains(r), "n=\(n) tree \(name): \(links[r].parent) does not list child \(r)")
                    }
                    var seen = Set<Int>(), x = r
                    while links[x].parent >= 0 && !seen.contains(x) { seen.insert(x); x = links[x].parent }
                    XCTAssertLessThan(links[x].parent, 0, "n=\(n) tree \(name): rank \(r) does not reach the root")
                }
                for r in 0..<n where links[r].parent >= 0 {
                    XCTAssertEqual(childCount[r], 1, "n=\(n) tree \(name): rank \(r) appears \(childCount[r]) times as a child")
                }
            }
        }
    }

    func testTreeAMatchesTheReferenceConstruction() {
        // n = 8: 0 -> 4; 4 -> 2, 6; 2 -> 1, 3; 6 -> 5, 7.
        XCTAssertEqual(DoubleBinaryTree.treeA(rank: 0, size: 8), TreeLinks(parent: -1, children: [4]))
        XCTAssertEqual(DoubleBinaryTree.treeA(rank: 4, size: 8), TreeLinks(parent: 0, children: [2, 6]))
        XCTAssertEqual(DoubleBinaryTree.treeA(rank: 6, size: 8), TreeLinks(parent: 4, children: [5, 7]))
        XCTAssertEqual(DoubleBinaryTree.treeA(rank: 7, size: 8), TreeLinks(parent: 6, children: []))
        // n = 6: 4's right child halves to 5.
        XCTAssertEqual(DoubleBinaryTree.treeA(rank: 4, size: 6), TreeLinks(parent: 0, children: [2, 5]))
        XCTAssertEqual(DoubleBinaryTree.treeA(rank: 5, size: 6).parent, 4)
    }

    /// For even n every rank is a leaf in exactly one of the two trees (NCCL's property).
    func testEvenSizesMakeEveryRankALeafInOneTree() {
        for n in stride(from: 2, through: 64, by: 2) {
            for r in 0..<n {
                let t = DoubleBinaryTree.trees(rank: r, size: n), a = t[0], b = t[1]
                let leaves = (a.children.isEmpty ? 1 : 0) + (b.children.isEmpty ? 1 : 0)
                XCTAssertEqual(leaves, 1, "n=\(n) rank \(r): leaf in \(leaves) trees")
            }
        }
    }

    /// Tree edges per rank over both trees (each carries half the data up and down): at most 4,
    /// and for up to 4 ranks at most 3, so that no NIC carries more than a ring would make it.
    func testEdgesPerRankAreBalanced() {
        for n in 2...64 {
            var most = 0
            for r in 0..<n {
                let edges = DoubleBinaryTree.trees(rank: r, size: n).reduce(0) { $0 + $1.children.count + ($1.parent >= 0 ? 1 : 0) }
                most = max(most, edges)
            }
            XCTAssertLessThanOrEqual(most, n <= 4 ? 3 : 4, "n=\(n): a rank has \(most) tree edges")
        }
    }
}
