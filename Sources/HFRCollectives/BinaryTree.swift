/// One rank's place in a binary tree over ranks 0..<n: its parent (-1 at the root) and up to two children.
public struct TreeLinks: Equatable, Sendable {
    public var parent: Int
    public var children: [Int]
    public init(parent: Int, children: [Int]) { self.parent = parent; self.children = children }
}

/// The double binary tree of NCCL 2.4 (Sanders, Speck and Träff): two complementary
/// binary trees over the same ranks, each carrying half of the data, so that for even n every
/// rank is interior in one tree and a leaf in the other and sends about 2x the data in total,
/// like a ring, with log(n) depth.
public enum DoubleBinaryTree {
    /// Tree A, the in-order tree built with bit tricks: rank 0 is the root and its single child is
    /// the largest power of two below n; odd ranks are leaves.
    public static func treeA(rank r: Int, size n: Int) -> TreeLinks {
        precondition(n >= 1 && r >= 0 && r < n)
        if n == 1 { return TreeLinks(parent: -1, children: []) }
        if r == 0 {
            var top = 1
            while top * 2 < n { top *= 2 }
            return TreeLinks(parent: -1, children: [top])
        }
        let bit = r & -r
        var parent = (r ^ bit) | (bit << 1)
        if parent >= n { parent = r ^ bit }
        var children: [Int] = []
        var offset = bit >> 1
        // Children are r - bit/2 and r + bit/2; the right one halves its offset until it fits.
        if offset > 0 {
            children.append(r - offset)
            while offset > 0 && r + offset >= n { offset >>= 1 }
            if offset > 0 { children.append(r + offset) }
        }
        return TreeLinks(parent: parent, children: children)
    }

    /// Tree B: for even n the mirror of tree A (rank r plays n-1-r), for odd n tree A shifted by one.
    public static func treeB(rank r: Int, size n: Int) -> TreeLinks {
        if n == 1 { return TreeLinks(parent: -1, children: []) }
        if n % 2 == 0 {
            let m = treeA(rank: n - 1 - r, size: n)
            return TreeLinks(parent: m.parent < 0 ? -1 : n - 1 - m.parent, children: m.children.map { n - 1 - $0 })
        }
        let m = treeA(rank: (r - 1 + n) % n, size: n)
        return TreeLinks(parent: m.parent < 0 ? -1 : (m.parent + 1) % n, children: m.children.map { ($0 + 1) % n })
    }

    /// Both trees for `rank`.
    public static func trees(rank: Int, size: Int) -> [TreeLinks] {
        [treeA(rank: rank, size: size), treeB(rank: rank, size: size)]
    }
}
