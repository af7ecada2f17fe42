import XCTest
import HFRTransport

final class LinkPlanTests: XCTestCase {
    func nic(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ prefix: Int = 24) -> NICAddress {
        NICAddress(ip: a << 24 | b << 16 | c << 8 | d, prefixLength: prefix)
    }

    /// One link per network both hosts are on, in the lower rank's NIC order, whatever order the
    /// higher rank lists its NICs in; both ranks compute the same links.
    func testPairsNICsBySubnet() {
        let lower = RankAddress(port: 1, nics: [nic(198, 18, 0, 1), nic(198, 18, 1, 1)])
        let higher = RankAddress(port: 2, nics: [nic(198, 18, 1, 2), nic(198, 18, 0, 2)])
        let pairs = LinkPlan.pairs(lower: lower, higher: higher)
        XCTAssertEqual(pairs.map { [$0.0, $0.1] }, [[0, 1], [1, 0]])
        let fromLower = LinkPlan.links(me: 0, lower, peer: 5, higher).map { [$0.local, $0.remote] }
        let fromHigher = LinkPlan.links(me: 5, higher, peer: 0, lower).map { [$0.remote, $0.local] }
        XCTAssertEqual(fromLower, fromHigher, "both ends agree on every link")
    }

    /// A NIC with no partner in its subnet gets no link; with no shared subnet at all, one link
    /// joins the first NICs and routing decides.
    func testUnmatchedNICsAndRoutedFallback() {
        let a = RankAddress(port: 1, nics: [nic(198, 18, 0, 1), nic(198, 18, 1, 1), nic(198, 18, 2, 1)])
        let b = RankAddress(port: 2, nics: [nic(198, 18, 1, 2)])
        XCTAssertEqual(LinkPlan.pairs(lower: a, higher: b).map { [$0.0, $0.1] }, [[1, 0]])
        let c = RankAddress(port: 3, nics: [nic(10, 0, 0, 7, 8)])
        XCTAssertEqual(LinkPlan.pairs(lower: a, higher: c).map { [$0.0, $0.1] }, [[0, 0]])
        XCTAssertTrue(LinkPlan.pairs(lower: a, higher: RankAddress(port: 4, nics: [])).isEmpty)
    }

    func testSubnetMatchUsesTheShorterPrefix() {
        XCTAssertTrue(nic(10, 1, 2, 3, 8).sharesSubnet(with: nic(10, 9, 9, 9, 16)))
        XCTAssertFalse(nic(10, 1, 2, 3, 16).sharesSubnet(with: nic(10, 2, 2, 3, 16)))
        XCTAssertTrue(nic(1, 2, 3, 4, 0).sharesSubnet(with: nic(200, 1, 1, 1, 0)))
    }

    /// RDMA links: link l joins HCA port l of both ranks, as many as the rank with fewer ports
    /// has (at most 4, the rkeys a clear-to-write carries); none when either has no port.
    func testVerbsLinksPairPortsByIndex() {
        func rank(_ ports: Int) -> RankAddress { RankAddress(port: 1, nics: [nic(127, 0, 0, 1)], hcaPorts: ports) }
        XCTAssertEqual(LinkPlan.verbsLinks(rank(2), rank(2)), 2)
        XCTAssertEqual(LinkPlan.verbsLinks(rank(3), rank(1)), 1)
        XCTAssertEqual(LinkPlan.verbsLinks(rank(1), rank(3)), 1)
        XCTAssertEqual(LinkPlan.verbsLinks(rank(0), rank(2)), 0)
        XCTAssertEqual(LinkPlan.verbsLinks(rank(8), rank(16)), WriteTarget.maxLinks)
    }
}
