import XCTest
import HFRSystem

final class InterfaceSelectionTests: XCTestCase {
    let interfaces = [
        InterfaceAddress(name: "lo", ip: 0x7F00_0001, isUp: true, isLoopback: true),
        InterfaceAddress(name: "eth0", ip: 0x0A00_0001, isUp: true, isLoopback: false),
        InterfaceAddress(name: "eth1", ip: 0x0A01_0001, isUp: true, isLoopback: false),
        InterfaceAddress(name: "ib0", ip: 0x0B00_0001, isUp: true, isLoopback: false),
        InterfaceAddress(name: "docker0", ip: 0xAC11_0001, isUp: true, isLoopback: false),
        InterfaceAddress(name: "eth2", ip: 0x0A02_0001, isUp: false, isLoopback: false),
        InterfaceAddress(name: "wlan0", ip: 0xA9FE_0101, isUp: true, isLoopback: false),  // link-local
        InterfaceAddress(name: "virbr0", ip: 0xC0A8_7A01, isUp: true, isLoopback: false),  // libvirt's bridge, 192.168.122.1 on every host
    ]

    func names(_ spec: String?) throws -> [String] { try InterfaceSelection.select(spec, from: interfaces).map(\.name) }

    func testDefaultSkipsLoopbackBridgesLinkLocalAndDown() throws {
        XCTAssertEqual(try names(nil), ["eth0", "eth1", "ib0"])
        let onlyLo = [interfaces[0], interfaces[4]].map { i -> InterfaceAddress in var j = i; if j.name == "docker0" { j.isUp = false }; return j }
        XCTAssertEqual(try InterfaceSelection.select(nil, from: onlyLo).map(\.name), ["lo"])
    }

    func testPrefixesExclusionAndExactNames() throws {
        XCTAssertEqual(try names("eth"), ["eth0", "eth1"])
        XCTAssertEqual(try names("eth,ib"), ["eth0", "eth1", "ib0"])
        XCTAssertEqual(try names("^docker,lo"), ["eth0", "eth1", "ib0", "wlan0", "virbr0"])
        XCTAssertEqual(try names("=eth1"), ["eth1"])
        XCTAssertEqual(try names("^=eth0,lo"), ["eth1", "ib0", "docker0", "wlan0", "virbr0"])
        XCTAssertEqual(try names("lo"), ["lo"])
    }

    func testNoMatchListsTheInterfaces() {
        XCTAssertThrowsError(try names("=eth")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("HFR_SOCKET_IFNAME==eth matches no interface"), text)
            XCTAssertTrue(text.contains("eth0 (10.0.0.1)") && text.contains("lo (127.0.0.1)"), text)
            XCTAssertFalse(text.contains("eth2"), "down interfaces are not offered: \(text)")
        }
        XCTAssertThrowsError(try names("eth2"))
        XCTAssertThrowsError(try names(" , "))
    }
}
