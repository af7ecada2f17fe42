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
    ///
    /// For 4 ranks the pair above makes ranks 1 and 2 carry 4 tree edges each (2S of traffic per
    /// direction for S bytes reduced) and ranks 0 and 3 only 2. The two chains 0-1-2-3 rooted at
    /// 1 and 1-0-3-2 rooted at 0 have the same depth, still make every rank interior in exactly
    /// one tree, and give every rank 3 edges: 1.5S per direction, what a ring moves, so the
    /// busiest NIC carries a quarter less.
    public static func trees(rank: Int, size: Int) -> [TreeLinks] {
        if size == 4 {
            let a = [TreeLinks(parent: 1, children: []), TreeLinks(parent: -1, children: [0, 2]),
                     TreeLinks(parent: 1, children: [3]), TreeLinks(parent: 2, children: [])]
            let b = [TreeLinks(parent: -1, children: [1, 3]), TreeLinks(parent: 0, children: []),
                     TreeLinks(parent: 3, children: []), TreeLinks(parent: 0, children: [2])]
            return [a[rank], b[rank]]
        }
        return [treeA(rank: rank, size: size), treeB(rank: rank, size: size)]
    }
}
