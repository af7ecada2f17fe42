import XCTest
import Glibc
import HFRTransport

/// A reliable channel over a socketpair: frames are kept until acknowledged, and a channel that
/// goes down gives back exactly the frames the receiver did not take.
final class ReliableChannelTests: XCTestCase {
    final class Recorder: ChannelDelegate {
        var done: [UInt64] = []
        var received: [UInt64] = []
        var controls: [FrameHeader] = []
        let sink = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
        deinit { sink.deallocate() }
        func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
            (sink + Int(header.offset), header.offset)
        }
        func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader) { received.append(cookie) }
        func channel(_ channel: TCPChannel, control header: FrameHeader) throws { controls.append(header) }
        func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int) { done.append(cookie) }
    }

    func testFramesAreKeptUntilAcknowledgedAndTakenBackAfterTheReceiversCount() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        let fds = [fd0, fd1]
        let da = Recorder(), db = Recorder()
        let a = TCPChannel(fd: fds[0], peer: 1, link: 0, index: 0, delegate: da, maxPayload: 1 << 16, reliable: true)
        let b = TCPChannel(fd: fds[1], peer: 0, link: 0, index: 0, delegate: db, maxPayload: 1 << 16, reliable: true)
        let payload = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
        defer { payload.deallocate() }
        func data(_ k: Int) -> FrameHeader { FrameHeader(kind: .data, sequence: 7, index: 0, offset: UInt64(k * 1024), length: 1024) }

        for k in 0..<3 { XCTAssertTrue(a.enqueue(data: data(k), payload: payload + k * 1024, cookie: UInt64(k * 1024))) }
        a.enqueue(control: FrameHeader(kind: .clearToSend, sequence: 7, index: 1, offset: 99, length: 0))
        XCTAssertTrue(try a.flush())
        XCTAssertTrue(da.done.isEmpty, "written frames are not done until acknowledged")
        XCTAssertEqual(a.framesInFlight, 3)

        XCTAssertTrue(try b.readable(), "the receiver has an ack to send")
        XCTAssertEqual(db.received.count, 3)
        XCTAssertEqual(db.controls.count, 1)
        XCTAssertEqual(b.received, 4)
        XCTAssertTrue(try b.flush())
        XCTAssertFalse(try a.readable())
        XCTAssertEqual(da.done, [0, 1024, 2048], "the ack completes the data frames")
        XCTAssertEqual(a.acknowledged, 4)
        XCTAssertEqual(a.framesInFlight, 0)

        // Two more frames go out and one stays queued; the receiver takes none of them before the
        // channel goes down, so all three come back, in order.
        for k in 3..<5 { XCTAssertTrue(a.enqueue(data: data(k), payload: payload + k * 1024, cookie: UInt64(k * 1024))) }
        XCTAssertTrue(try a.flush())
        XCTAssertTrue(a.enqueue(data: data(5), payload: payload + 5 * 1024, cookie: 5 * 1024))
        XCTAssertThrowsError(try a.takeBack(peerReceived: 7), "a count beyond what was written is a protocol violation")
        let back = try a.takeBack(peerReceived: 5)
        XCTAssertEqual(back.map(\.cookie), [4 * 1024, 5 * 1024], "frame 3 was taken (count 5), frames 4 and 5 were not")
        XCTAssertEqual(da.done, [0, 1024, 2048, 3 * 1024])
        XCTAssertFalse(a.hasUnfinishedFrames)
    }

    /// Control frames go ahead of data frames not yet started, and the log keeps that wire order:
    /// a receiver that took one frame took the clear-to-send, and all three data frames come back.
    func testTakeBackFollowsWireOrder() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        let fds = [fd0, fd1]
        let d = Recorder()
        let a = TCPChannel(fd: fds[0], peer: 1, link: 0, index: 0, delegate: d, maxPayload: 1 << 16, reliable: true)
        defer { close(fds[1]) }
        let payload = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        defer { payload.deallocate() }
        for k in 0..<3 {
            XCTAssertTrue(a.enqueue(data: FrameHeader(kind: .data, sequence: 1, index: 0, offset: UInt64(k * 1024), length: 1024),
                                    payload: payload + k * 1024, cookie: UInt64(k)))
        }
        a.enqueue(control: FrameHeader(kind: .clearToSend, sequence: 1, index: 2, offset: 4096, length: 0))
        XCTAssertTrue(try a.flush())
        let back = try a.takeBack(peerReceived: 1)
        XCTAssertEqual(back.map(\.header.kind), [.data, .data, .data])
        XCTAssertEqual(back.map(\.cookie), [0, 1, 2])
        XCTAssertTrue(d.done.isEmpty, "no data frame was taken")
    }

    /// An ack on a channel that does not count frames is a protocol violation, not a silent loss.
    func testAckOnAnUncountedChannelIsRejected() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        let fds = [fd0, fd1]
        let d = Recorder()
        let plain = TCPChannel(fd: fds[0], peer: 1, link: 0, index: 0, delegate: d, maxPayload: 1 << 16, reliable: false)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size, alignment: 8)
        defer { raw.deallocate(); close(fds[1]) }
        FrameHeader(kind: .ack, sequence: 0, index: 0, offset: 5, length: 0).encode(to: raw)
        XCTAssertEqual(write(fds[1], raw, FrameHeader.size), FrameHeader.size)
        XCTAssertThrowsError(try plain.readable()) { XCTAssertTrue("\($0)".contains("does not count them"), "\($0)") }
    }
}
