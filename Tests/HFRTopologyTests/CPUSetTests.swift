import XCTest
import HFRTopology

final class CPUSetTests: XCTestCase {
    func testListFormRoundTrips() throws {
        XCTAssertEqual(CPUSet([3, 0, 1, 2, 8, 8, 10, 11]).description, "0-3,8,10-11")
        XCTAssertEqual(try CPUSet(parsing: "0-3,8,10-11"), CPUSet([0, 1, 2, 3, 8, 10, 11]))
        XCTAssertEqual(try CPUSet(parsing: " 5 "), [5])
        XCTAssertEqual(CPUSet().description, "none")
        XCTAssertEqual(CPUSet([1, 33]).description, "1,33")
    }

    func testBadListsAreErrors() {
        for bad in ["", "a", "3-1", "1-2-3", "-1", "1,,x"] {
            XCTAssertThrowsError(try CPUSet(parsing: bad), bad) { XCTAssertEqual($0 as? TopologyError, .invalidCPUList(bad)) }
        }
    }

    func testSetOperations() {
        let a: CPUSet = [0, 1, 2, 3]
        let b: CPUSet = [2, 3, 4]
        XCTAssertEqual(a.intersection(b), [2, 3])
        XCTAssertEqual(a.union(b), CPUSet(0...4))
        XCTAssertEqual(a.subtracting(b), [0, 1])
        XCTAssert(CPUSet([1, 2]).isSubset(of: a))
        XCTAssertFalse(b.isSubset(of: a))
    }
}
