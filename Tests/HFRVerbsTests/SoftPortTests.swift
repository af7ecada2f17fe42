import HFRVerbs
import XCTest

/// What the soft HCAs look like to device selection: ACTIVE RoCE ports with a RoCE v2 GID.
final class SoftPortTests: XCTestCase {
    func testTwoActiveRoCEPortsAddressedByTheirRoCEv2GID() throws {
        XCTAssertEqual(soft.kind, .soft)
        XCTAssertEqual(try soft.deviceNames(), ["soft_0", "soft_1"])
        let ports = try soft.activePorts(selection: nil, gidIndex: nil)
        XCTAssertEqual(ports.map(\.name), ["soft_0:1", "soft_1:1"])
        for p in ports {
            XCTAssertEqual(p.attributes.state, .active)
            XCTAssertEqual(p.attributes.linkLayer, .ethernet)
            XCTAssertEqual(p.attributes.activeMTU, .mtu4096)
            XCTAssertEqual(p.gidIndex, 1, "index 0 is RoCE v1; the default is the RoCE v2 IPv4-mapped entry")
            XCTAssertTrue(p.gid.isIPv4Mapped)
            XCTAssertTrue(p.gid.description.hasPrefix("::ffff:127.0."), p.gid.description)
            XCTAssertEqual(try p.device.gidType(port: 1, index: 0), .roceV1)
            XCTAssertEqual(try p.device.gidType(port: 1, index: 1), .roceV2)
        }
        XCTAssertNotEqual(ports[0].gid, ports[1].gid)
        let attributes = try ports[0].device.attributes()
        XCTAssertEqual(attributes.portCount, 1)
        XCTAssertGreaterThanOrEqual(attributes.maxWorkRequests, 1024)
    }

    func testHFR_IB_HCASelection() throws {
        func names(_ spec: String?, gidIndex: Int? = nil) throws -> [String] {
            try soft.activePorts(selection: spec.map { try DeviceSelection(parsing: $0) }, gidIndex: gidIndex).map(\.name)
        }
        XCTAssertEqual(try names("soft_1"), ["soft_1:1"])
        XCTAssertEqual(try names("soft"), ["soft_0:1", "soft_1:1"])
        XCTAssertEqual(try names("soft_0:1,soft_1:1"), ["soft_0:1", "soft_1:1"])
        XCTAssertEqual(try names("^soft_0"), ["soft_1:1"])
        XCTAssertEqual(try names("^=soft_1:1"), ["soft_0:1"])
        XCTAssertEqual(try soft.activePorts(selection: nil, gidIndex: 0).map(\.gidIndex), [0, 0])
        XCTAssertThrowsError(try names("=soft")) { error in
            XCTAssertEqual("\(error)", "no ACTIVE port: HFR_IB_HCA selects no port of the devices there are (soft_0, soft_1)")
        }
        XCTAssertThrowsError(try names("soft_0:2")) { error in XCTAssertTrue("\(error)".hasPrefix("no ACTIVE port: "), "\(error)") }
        XCTAssertThrowsError(try names(nil, gidIndex: 5)) { error in
            XCTAssertTrue("\(error)".contains("HFR_IB_GID_INDEX=5 is outside the GID table of soft_0:1 (2 entries)"), "\(error)")
        }
    }

    func testFailedHCAPortIsDownAndNotSelected() throws {
        do {
            let a = try Endpoint("soft_0")
            try soft.failSoftDevice("soft_0")
            // The failure comes with the next send work request.
            try a.qp.initialize()
            XCTAssertEqual(try a.port.device.port(1).state, .active)
            let (x, _) = try connectedPair(a: a)
            try x.qp.postWrite(local: x.local(0, 8), remoteAddress: 0, rkey: 0, workRequestID: 1)
            XCTAssertEqual(try x.port.device.port(1).state, .down)
            XCTAssertEqual(try soft.activePorts(selection: nil, gidIndex: nil).map(\.name), ["soft_1:1"])
            XCTAssertThrowsError(try soft.activePorts(selection: DeviceSelection(parsing: "soft_0"), gidIndex: nil)) { error in
                XCTAssertEqual("\(error)", "no ACTIVE port: soft_0:1 is DOWN")
            }
        }
        // Closed and opened again, the HCA works.
        XCTAssertEqual(try soft.activePorts(selection: nil, gidIndex: nil).map(\.name), ["soft_0:1", "soft_1:1"])
    }
}
