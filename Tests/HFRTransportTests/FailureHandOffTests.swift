import XCTest
import Glibc
import HFRTransport

/// What a channel does when the collectives its frames belong to fail, before the failure is
/// published (the caller may free its buffers as soon as it sees it): queued frames stop reading
/// the caller's memory, and the payload being received stops landing in it.
final class FailureHandOffTests: XCTestCase {
    /// Receives every data frame into `target` (by offset), counting completions by cookie.
    final class Receiver: ChannelDelegate {
        let target: UnsafeMutableRawPointer
        var completed: [UInt64] = []
        init(_ target: UnsafeMutableRawPointer) { self.target = target }
        func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
            (target + Int(header.offset), UInt64(header.sequence))
        }
        func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader) { completed.append(cookie) }
        func channel(_ channel: TCPChannel, control header: FrameHeader) throws {}
        func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int) {}
    }

    func testQueuedFramesGoOutFromTheirOwnCopy() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        // A small send buffer, so that the first write leaves a frame half written.
        var small: Int32 = 4096
        setsockopt(fd0, SOL_SOCKET, SO_SNDBUF, &small, 4)
        let frame = 64 << 10, frames = 6
        let source = UnsafeMutableRawPointer.allocate(byteCount: frame * frames, alignment: 64)
        let landed = UnsafeMutableRawPointer.allocate(byteCount: frame * frames, alignment: 64)
        defer { source.deallocate(); landed.deallocate() }
        for i in 0..<(frame * frames) { source.storeBytes(of: UInt8(truncatingIfNeeded: i &* 31 &+ i >> 12), toByteOffset: i, as: UInt8.self) }
        let expected = Array(UnsafeRawBufferPointer(start: source, count: frame * frames))
        let sendSide = Receiver(landed), receiveSide = Receiver(landed)
        let sender = TCPChannel(fd: fd0, peer: 1, link: 0, index: 0, delegate: sendSide, maxPayload: 1 << 20)
        let receiver = TCPChannel(fd: fd1, peer: 0, link: 0, index: 0, delegate: receiveSide, maxPayload: 1 << 20)
        for k in 0..<frames {
            let h = FrameHeader(kind: .data, sequence: UInt32(k), index: 0, offset: UInt64(k * frame), length: UInt32(frame))
            XCTAssertTrue(sender.enqueue(data: h, payload: source + k * frame, cookie: UInt64(k)))
        }
        XCTAssertFalse(try sender.flush(), "the socket buffer is smaller than what is queued")
        XCTAssertGreaterThan(sender.queuedBytes, 0)

        sender.detachPayloads()
        // The caller frees its buffer (here: overwrites it) the moment the failure is published.
        source.initializeMemory(as: UInt8.self, repeating: 0xEE, count: frame * frames)

        let deadline = time(nil) + 10
        while receiveSide.completed.count < frames && time(nil) < deadline {
            _ = try sender.flush()
            try receiver.readable()
        }
        XCTAssertEqual(receiveSide.completed, (0..<UInt64(frames)).map { $0 }, "every frame arrived")
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: landed, count: frame * frames)), expected,
                       "what went out after the hand-off is what the frames held when they were queued")
        close(fd0)
    }

    func testPayloadBeingReceivedIsRedirected() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        defer { close(fd0) }
        let length = 32 << 10
        let caller = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 64)
        let discard = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { caller.deallocate(); discard.deallocate() }
        caller.initializeMemory(as: UInt8.self, repeating: 0xEE, count: length)
        let delegate = Receiver(caller)
        let receiver = TCPChannel(fd: fd1, peer: 0, link: 0, index: 0, delegate: delegate, maxPayload: 1 << 20)

        let header = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size, alignment: 8)
        defer { header.deallocate() }
        FrameHeader(kind: .data, sequence: 7, index: 0, offset: 0, length: UInt32(length)).encode(to: header)
        let payload = [UInt8](repeating: 0x11, count: length)
        let half = length / 2
        XCTAssertEqual(write(fd0, header, FrameHeader.size), FrameHeader.size)
        XCTAssertEqual(payload.withUnsafeBytes { write(fd0, $0.baseAddress!, half) }, half)
        try receiver.readable()
        XCTAssertEqual(receiver.partialPayloadCookie, 7, "half the payload is in")
        XCTAssertEqual(receiver.partialPayloadHeader?.length, UInt32(length))

        receiver.redirectPayload(to: discard, cookie: 99)
        XCTAssertEqual(payload.withUnsafeBytes { write(fd0, $0.baseAddress! + half, length - half) }, length - half)
        try receiver.readable()
        XCTAssertNil(receiver.partialPayloadCookie)
        XCTAssertEqual(delegate.completed, [99], "the frame completes under the cookie it was redirected to")
        let bytes = UnsafeRawBufferPointer(start: caller, count: length)
        XCTAssertTrue(bytes[..<half].allSatisfy { $0 == 0x11 }, "the first half landed before the failure")
        XCTAssertTrue(bytes[half...].allSatisfy { $0 == 0xEE }, "nothing landed in the caller's buffer after the redirect")
        XCTAssertTrue(UnsafeRawBufferPointer(start: discard, count: length - half).allSatisfy { $0 == 0x11 })
    }
}
