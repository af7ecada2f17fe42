import XCTest
import Glibc
import HFRTransport

/// The clear-to-write frame: its 32-byte extension, validated as untrusted input, carried by a
/// reliable channel and taken back with its frame when the channel goes down.
final class WriteTargetTests: XCTestCase {
    func encoded(_ t: WriteTarget) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: WriteTarget.size)
        b.withUnsafeMutableBytes { t.encode(to: $0.baseAddress!) }
        return b
    }

    func decode(_ b: [UInt8]) -> Result<WriteTarget, WireError> {
        b.withUnsafeBytes { raw in Result { () throws(WireError) in try WriteTarget.decode(raw) } }
    }

    func testRoundTripAndImmediates() throws {
        var t = WriteTarget(address: 0x7F12_3456_7000, tag: (1 << WriteTarget.tagBits) - 1, linkCount: 3,
                            fragmentBytes: WriteTarget.maxFragmentBytes)
        t.setRkey(0, 0x1234); t.setRkey(1, 0xFFFF_FFFF); t.setRkey(2, 7)
        XCTAssertEqual(try decode(encoded(t)).get(), t)
        XCTAssertEqual(t.rkey(3), 0)
        let imm = WriteTarget.immediate(tag: t.tag, fragment: WriteTarget.maxFragments - 1)
        XCTAssertEqual(WriteTarget.split(imm).tag, t.tag)
        XCTAssertEqual(WriteTarget.split(imm).fragment, WriteTarget.maxFragments - 1)
        XCTAssertEqual(WriteTarget.split(WriteTarget.immediate(tag: 5, fragment: 0)).tag, 5)
    }

    func testBadExtensionsAreRejectedWithASentence() {
        let good = encoded(WriteTarget(address: 64, tag: 9, linkCount: 2, fragmentBytes: 1 << 19))
        guard case .failure(.badWriteTarget(let s)) = decode(Array(good.prefix(31))) else { return XCTFail("short extension accepted") }
        XCTAssertTrue(s.contains("31 bytes"), s)
        var b = good
        b.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(1 << WriteTarget.tagBits).littleEndian, toByteOffset: 8, as: UInt32.self) }
        guard case .failure(.badWriteTarget(let s2)) = decode(b) else { return XCTFail("tag out of range accepted") }
        XCTAssertTrue(s2.contains("tag"), s2)
        for (word, complaint): (UInt32, String) in [(0x8000, "0 links"), (0x8005, "5 links"), (0x0002, "fragments of 0 bytes")] {
            b = good
            b.withUnsafeMutableBytes { $0.storeBytes(of: word.littleEndian, toByteOffset: 12, as: UInt32.self) }
            guard case .failure(.badWriteTarget(let why)) = decode(b) else { return XCTFail("\(complaint) accepted") }
            XCTAssertTrue(why.contains(complaint), why)
        }
        b = good
        b.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(42).littleEndian, toByteOffset: 16 + 4 * 3, as: UInt32.self) }
        guard case .failure(.badWriteTarget(let s3)) = decode(b) else { return XCTFail("rkey beyond the link count accepted") }
        XCTAssertTrue(s3.contains("link 3"), s3)
    }

    /// A clear-to-write header must announce exactly its 32-byte extension.
    func testHeaderLengthIsChecked() {
        for length: UInt32 in [0, 31, 33, 1 << 20] {
            var b = [UInt8](repeating: 0, count: FrameHeader.size)
            b.withUnsafeMutableBytes { FrameHeader(kind: .clearToWrite, sequence: 1, index: 0, offset: 8, length: length).encode(to: $0.baseAddress!) }
            let r = b.withUnsafeBytes { raw in Result { () throws(WireError) in try FrameHeader.decode(raw, maxPayload: 1 << 20) } }
            XCTAssertEqual(r, .failure(.unexpectedPayload(kind: .clearToWrite, length: Int(length))), "length \(length)")
        }
    }

    final class Recorder: ChannelDelegate {
        var targets: [WriteTarget] = []
        var controls: [FrameHeader] = []
        func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
            throw ChannelError.protocolViolation("no data expected")
        }
        func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader) {}
        func channel(_ channel: TCPChannel, control header: FrameHeader) throws { controls.append(header) }
        func channel(_ channel: TCPChannel, clearToWrite header: FrameHeader, target: WriteTarget) throws {
            controls.append(header)
            targets.append(target)
        }
        func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int) {}
    }

    /// Clear-to-writes between plain control frames, more than the control buffer first holds:
    /// they arrive in order with their extensions, are counted and acknowledged, and those the
    /// receiver did not take come back with their extensions when the channel goes down.
    func testClearToWriteFramesCrossAReliableChannelAndComeBackWhole() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        let fds = [fd0, fd1]
        let da = Recorder(), db = Recorder()
        let a = TCPChannel(fd: fds[0], peer: 1, link: 0, index: 0, delegate: da, maxPayload: 1 << 16, reliable: true)
        let b = TCPChannel(fd: fds[1], peer: 0, link: 0, index: 0, delegate: db, maxPayload: 1 << 16, reliable: true)
        func target(_ k: Int) -> WriteTarget {
            var t = WriteTarget(address: UInt64(k) << 12, tag: UInt32(k), linkCount: 2, fragmentBytes: 4096 * (k + 1))
            t.setRkey(0, UInt32(100 + k)); t.setRkey(1, UInt32(200 + k))
            return t
        }
        let n = 100
        for k in 0..<n {
            if k % 3 == 0 { a.enqueue(control: FrameHeader(kind: .abort, sequence: 0, index: Int32(k), offset: 0, length: 0)) }
            a.enqueue(control: FrameHeader(kind: .clearToWrite, sequence: 7, index: Int32(k), offset: 4096, length: 0), target: target(k))
        }
        XCTAssertTrue(try a.flush())
        XCTAssertTrue(try b.readable())
        XCTAssertEqual(db.targets, (0..<n).map(target))
        XCTAssertEqual(db.controls.count, n + (n + 2) / 3)
        XCTAssertEqual(db.controls.filter { $0.kind == .clearToWrite }.map(\.index), (0..<Int32(n)).map { $0 })
        XCTAssertTrue(try b.flush())
        XCTAssertFalse(try a.readable())
        XCTAssertEqual(a.acknowledged, UInt64(n + (n + 2) / 3))

        // Two more go out; the receiver takes the first before the channel goes down.
        a.enqueue(control: FrameHeader(kind: .clearToWrite, sequence: 8, index: 0, offset: 64, length: 0), target: target(1000))
        XCTAssertTrue(try a.flush())
        a.enqueue(control: FrameHeader(kind: .clearToWrite, sequence: 8, index: 1, offset: 64, length: 0), target: target(1001))
        let back = try a.takeBack(peerReceived: a.acknowledged)
        XCTAssertEqual(back.map(\.header.index), [0, 1])
        XCTAssertEqual(back.map(\.target), [target(1000), target(1001)])
        XCTAssertEqual(back.map(\.header.length), [UInt32(WriteTarget.size), UInt32(WriteTarget.size)])
    }
}
