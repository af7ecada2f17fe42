import XCTest
import HFRTransport

/// The receiver's record of which grains of a message fragments have announced: fragments in any
/// order that tile the message are taken; a repeat, an overlap or one off the grid is refused.
final class FragmentGridTests: XCTestCase {
    let g = FragmentGrid.grain

    func withBits(_ length: Int, _ body: (UnsafeMutablePointer<UInt64>) -> Void) {
        let n = FragmentGrid.words(forMessageOf: length)
        let bits = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
        bits.initialize(repeating: 0, count: n)
        defer { bits.deallocate() }
        body(bits)
    }

    func testFragmentsInAnyOrderTileTheMessage() {
        // 10 grains and a half: fragments of 3 grains, the last one short, arriving out of order.
        let length = 10 * g + g / 2
        withBits(length) { bits in
            let fragments = [(9 * g, g + g / 2), (0, 3 * g), (6 * g, 3 * g), (3 * g, 3 * g)]
            for (o, l) in fragments {
                XCTAssertTrue(FragmentGrid.claim(bits, offset: o, length: l, messageLength: length), "[\(o), +\(l))")
            }
            // Every grain is taken now: any fragment at all is a repeat.
            for o in stride(from: 0, to: length, by: g) {
                XCTAssertFalse(FragmentGrid.claim(bits, offset: o, length: min(g, length - o), messageLength: length), "grain at \(o)")
            }
        }
    }

    func testRepeatsAndOverlapsAreRefusedWithoutMarking() {
        let length = 16 * g
        withBits(length) { bits in
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 0, length: 8 * g, messageLength: length))
            XCTAssertFalse(FragmentGrid.claim(bits, offset: 0, length: 8 * g, messageLength: length), "the same fragment twice")
            XCTAssertFalse(FragmentGrid.claim(bits, offset: 4 * g, length: 8 * g, messageLength: length), "overlaps the first's tail")
            // The refused overlap marked nothing: its part beyond the first fragment is still free.
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 8 * g, length: 8 * g, messageLength: length))
        }
    }

    func testFragmentsOffTheGridAreRefused() {
        let length = 8 * g + 100
        withBits(length) { bits in
            XCTAssertFalse(FragmentGrid.claim(bits, offset: 100, length: g, messageLength: length), "start off the grid")
            XCTAssertFalse(FragmentGrid.claim(bits, offset: 0, length: g + 1, messageLength: length), "length off the grid, not the last")
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 4 * g, length: 4 * g + 100, messageLength: length), "the last may be short of the grid")
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 0, length: 4 * g, messageLength: length))
        }
    }

    func testUnclaimLetsTheResentFragmentIn() {
        let length = 4 * g
        withBits(length) { bits in
            XCTAssertTrue(FragmentGrid.claim(bits, offset: g, length: 2 * g, messageLength: length))
            FragmentGrid.unclaim(bits, offset: g, length: 2 * g)
            XCTAssertTrue(FragmentGrid.claim(bits, offset: g, length: 2 * g, messageLength: length), "sent again after its link went down")
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 0, length: g, messageLength: length))
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 3 * g, length: g, messageLength: length))
        }
    }

    func testSmallAndEmptyMessages() {
        withBits(100) { bits in
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 0, length: 100, messageLength: 100), "a whole eager message")
            XCTAssertFalse(FragmentGrid.claim(bits, offset: 0, length: 100, messageLength: 100))
        }
        // A message of exactly 64 grains needs its 65th bit only for an empty fragment at its end.
        withBits(64 * g) { bits in
            XCTAssertTrue(FragmentGrid.claim(bits, offset: 0, length: 64 * g, messageLength: 64 * g))
        }
    }
}
