import XCTest
import HFRTransport

final class FrameHeaderTests: XCTestCase {
    func decode(_ bytes: [UInt8], max: Int = 1 << 20) -> Result<FrameHeader, WireError> {
        bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try FrameHeader.decode(raw, maxPayload: max) } }
    }

    func encoded(_ h: FrameHeader) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: FrameHeader.size)
        b.withUnsafeMutableBytes { h.encode(to: $0.baseAddress!) }
        return b
    }

    func testRoundTrip() {
        let h = FrameHeader(kind: .data, sequence: 0xDEAD_BEEF, index: 1234, offset: 1 << 40, length: 65536)
        XCTAssertEqual(try decode(encoded(h)).get(), h)
        let c = FrameHeader(kind: .clearToSend, sequence: 7, index: -1, offset: 99, length: 0)
        XCTAssertEqual(try decode(encoded(c)).get(), c)
    }

    func testTruncatedHeadersAreRejected() {
        let full = encoded(FrameHeader(kind: .data, sequence: 1, index: 2, offset: 3, length: 4))
        for n in 0..<FrameHeader.size {
            XCTAssertEqual(decode(Array(full.prefix(n))), .failure(.truncated(have: n, need: FrameHeader.size)), "\(n) bytes")
        }
    }

    func testBadMagicKindAndLengthsAreRejected() {
        var b = encoded(FrameHeader(kind: .data, sequence: 1, index: 2, offset: 3, length: 4))
        b[0] ^= 0xFF
        guard case .failure(.badMagic) = decode(b) else { return XCTFail("bad magic accepted") }
        b = encoded(FrameHeader(kind: .data, sequence: 1, index: 2, offset: 3, length: 4))
        b[4] = 0x77
        XCTAssertEqual(decode(b), .failure(.badKind(0x77)))
        let big = encoded(FrameHeader(kind: .data, sequence: 1, index: 2, offset: 0, length: UInt32.max))
        XCTAssertEqual(decode(big, max: 1 << 20), .failure(.payloadTooLarge(Int(UInt32.max), max: 1 << 20)))
        let cts = encoded(FrameHeader(kind: .clearToSend, sequence: 1, index: 2, offset: 0, length: 5))
        XCTAssertEqual(decode(cts), .failure(.unexpectedPayload(kind: .clearToSend, length: 5)))
    }

    /// Random bytes never crash the decoder, and whatever it accepts respects the payload limit.
    func testRandomHeadersNeverCrash() {
        var state: UInt64 = 0x1234_5678
        var accepted = 0
        for round in 0..<200_000 {
            var b = [UInt8](repeating: 0, count: FrameHeader.size)
            for i in 0..<b.count { state = state &* 6364136223846793005 &+ 1442695040888963407; b[i] = UInt8(truncatingIfNeeded: state >> 33) }
            if round % 2 == 0 { b.withUnsafeMutableBytes { $0.storeBytes(of: FrameHeader.magic.littleEndian, toByteOffset: 0, as: UInt32.self) } }
            if round % 4 == 0 {
                // Plausible kinds and lengths too, so the checks after the magic are exercised.
                b[4] = b[4] % 5
                b.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(state >> 47), toByteOffset: 24, as: UInt32.self) }
                if round % 8 == 0 { b.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(0), toByteOffset: 24, as: UInt32.self) } }
            }
            if case let .success(h) = decode(b, max: 1 << 16) {
                accepted += 1
                XCTAssertTrue(h.kind == .data ? h.length <= 1 << 16 : h.length == 0)
            }
        }
        XCTAssertGreaterThan(accepted, 0, "with the magic right, some random headers are valid")
    }
}

final class HandshakeTests: XCTestCase {
    func testRoundTripAndMismatches() throws {
        var h = Handshake(kind: .hello, jobToken: 0xABC, commID: 0x123, fromRank: 3, toRank: 1, ranks: 4)
        h.socket = 1
        let back = try h.bytes.withUnsafeBytes { raw throws(HandshakeError) in try Handshake.decode(raw) }
        XCTAssertEqual(back, h)
        XCTAssertNil(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 }))
        XCTAssertNotNil(h.mismatch(jobToken: 0xABD, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 })?.description.range(of: "job token"))
        XCTAssertNotNil(h.mismatch(jobToken: 0xABC, commID: 0x124, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 })?.description.range(of: "communicator"))
        XCTAssertNotNil(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 2, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 })?.description.range(of: "this is rank 2"))
        XCTAssertNotNil(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 5, sockets: { _ in 2 }, links: { _ in 1 })?.description.range(of: "ranks"))
        XCTAssertNotNil(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 1 }, links: { _ in 1 })?.description.range(of: "HFR_NSOCKS"))
        XCTAssertEqual(h.mismatch(jobToken: 0xABD, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 })?.reason, .jobToken)
        XCTAssertEqual(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 1 }, links: { _ in 1 })?.reason, .socket)
        XCTAssertEqual(HandshakeRefusal.Reason.describe(1), HandshakeRefusal.Reason.jobToken.summary)
        XCTAssertEqual(HandshakeRefusal.Reason.describe(99), "reason code 99")
        var low = h
        low.fromRank = 0
        XCTAssertNotNil(low.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 })?.description.range(of: "the higher rank dials"))
        h.link = 1
        XCTAssertNil(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { $0 == 3 ? 2 : 1 }))
        XCTAssertNotNil(h.mismatch(jobToken: 0xABC, commID: 0x123, myRank: 1, ranks: 4, sockets: { _ in 2 }, links: { _ in 1 })?.description.range(of: "link number 1"))
    }

    func testBadHandshakesAreRejected() {
        var b = Handshake(kind: .hello, jobToken: 1, commID: 2, fromRank: 0, toRank: 1, ranks: 2).bytes
        func dec(_ x: [UInt8]) -> Result<Handshake, HandshakeError> {
            x.withUnsafeBytes { raw in Result { () throws(HandshakeError) in try Handshake.decode(raw) } }
        }
        XCTAssertEqual(dec(Array(b.prefix(47))), .failure(.truncated(47)))
        b[4] = 9
        XCTAssertEqual(dec(b), .failure(.versionMismatch(9)))
        let http = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789abcdefghijk".utf8)
        guard case .failure(.badMagic) = dec(http) else { return XCTFail("HTTP accepted as a handshake") }
    }
}
