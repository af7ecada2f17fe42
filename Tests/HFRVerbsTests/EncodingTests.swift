import HFRVerbs
import XCTest

final class EncodingTests: XCTestCase {
    func testQueuePairAddressRoundTripsInItsFixedSize() throws {
        let address = QueuePairAddress(lid: 0x1234, gid: GID(bytes: Array(0..<16)), queuePairNumber: 0xABCDEF,
                                       packetSequenceNumber: 0x123456, mtu: .mtu4096)
        let bytes = address.encoded
        XCTAssertEqual(bytes.count, QueuePairAddress.encodedSize)
        XCTAssertEqual(Array(bytes[0..<8]), [0x48, 0x51, 1, 5, 0x12, 0x34, 0, 0])
        XCTAssertEqual(try bytes.withUnsafeBytes { try QueuePairAddress(decoding: $0) }, address)
        var bad = bytes
        bad[0] = 0
        XCTAssertThrowsError(try bad.withUnsafeBytes { try QueuePairAddress(decoding: $0) }) { XCTAssertTrue("\($0)".hasPrefix("not a queue pair address")) }
        bad = bytes
        bad[3] = 9
        XCTAssertThrowsError(try bad.withUnsafeBytes { try QueuePairAddress(decoding: $0) })
        bad = bytes
        bad[8] = 1
        XCTAssertThrowsError(try bad.withUnsafeBytes { try QueuePairAddress(decoding: $0) })
        XCTAssertThrowsError(try Array(bytes.prefix(31)).withUnsafeBytes { try QueuePairAddress(decoding: $0) })
    }

    func testDeviceSelectionInNCCLSyntax() throws {
        let s = try DeviceSelection(parsing: "mlx5_0:1,mlx5_1:1")
        XCTAssertEqual(s.entries, [.init(name: "mlx5_0", port: 1), .init(name: "mlx5_1", port: 1)])
        XCTAssertTrue(s.allows(device: "mlx5_0", port: 1))
        XCTAssertFalse(s.allows(device: "mlx5_0", port: 2))
        XCTAssertFalse(s.allows(device: "mlx5_2", port: 1))
        XCTAssertTrue(s.allows(device: "mlx5_10", port: 1), "names are prefixes")
        let exact = try DeviceSelection(parsing: "=mlx5_1")
        XCTAssertTrue(exact.allows(device: "mlx5_1", port: 2))
        XCTAssertFalse(exact.allows(device: "mlx5_10", port: 1))
        let excluded = try DeviceSelection(parsing: "^mlx5_1:2")
        XCTAssertTrue(excluded.allows(device: "mlx5_1", port: 1))
        XCTAssertFalse(excluded.allows(device: "mlx5_1", port: 2))
        XCTAssertTrue(excluded.mayAllow(device: "mlx5_1"))
        XCTAssertFalse(try DeviceSelection(parsing: "^mlx5").mayAllow(device: "mlx5_3"))
        XCTAssertThrowsError(try DeviceSelection(parsing: "mlx5_0:x")) { XCTAssertEqual("\($0)", "HFR_IB_HCA=mlx5_0:x: x is not a port number (1, 2, ...)") }
        XCTAssertThrowsError(try DeviceSelection(parsing: "^")) { XCTAssertEqual("\($0)", "HFR_IB_HCA=^ names no device") }
    }

    func testGIDNotation() {
        XCTAssertEqual(GID(bytes: [0xfe, 0x80] + Array(repeating: 0, count: 6) + [0x68, 0x66, 0x72, 0x73, 0, 0, 0, 1]).description, "fe80::6866:7273:0:1")
        XCTAssertEqual(GID(bytes: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 7]).description, "::ffff:10.0.0.7")
        XCTAssertEqual(GID.zero.description, "::")
        XCTAssertEqual(GID(bytes: (0..<16).map { UInt8($0 % 2) }).description, "1:1:1:1:1:1:1:1")
    }
}
