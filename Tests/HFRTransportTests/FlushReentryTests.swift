import XCTest
import Glibc
import HFRTransport

/// A delegate told that a frame went out may enqueue control frames and flush the same channel
/// again (a collective that fails as the previous one completes sends abort frames): every frame
/// still reaches the other end once, whole and in order.
final class FlushReentryTests: XCTestCase {
    final class Sender: ChannelDelegate {
        weak var channel: TCPChannel?
        var reentered = 0
        func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
            throw ChannelError.protocolViolation("no data expected")
        }
        func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader) {}
        func channel(_ channel: TCPChannel, control header: FrameHeader) throws {}
        func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int) {
            guard let ch = self.channel else { return }
            ch.enqueue(control: FrameHeader(kind: .abort, sequence: 0, index: Int32(cookie), offset: 0, length: 0))
            _ = try? ch.flush()
            reentered += 1
        }
    }

    final class Receiver: ChannelDelegate {
        let target: UnsafeMutableRawPointer
        var order: [String] = []
        init(_ target: UnsafeMutableRawPointer) { self.target = target }
        func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
            (target + Int(header.offset), UInt64(header.sequence))
        }
        func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader) { order.append("data \(cookie)") }
        func channel(_ channel: TCPChannel, control header: FrameHeader) throws { order.append("abort \(header.index)") }
        func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int) {}
    }

    func testFlushFromTheSentCallbackKeepsTheStreamWhole() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        let frame = 4096, frames = 4
        let source = UnsafeMutableRawPointer.allocate(byteCount: frame * frames, alignment: 64)
        let landed = UnsafeMutableRawPointer.allocate(byteCount: frame * frames, alignment: 64)
        defer { source.deallocate(); landed.deallocate() }
        for i in 0..<(frame * frames) { source.storeBytes(of: UInt8(truncatingIfNeeded: i &* 7), toByteOffset: i, as: UInt8.self) }
        let sendSide = Sender(), receiveSide = Receiver(landed)
        let sender = TCPChannel(fd: fd0, peer: 1, link: 0, index: 0, delegate: sendSide, maxPayload: 1 << 20)
        let receiver = TCPChannel(fd: fd1, peer: 0, link: 0, index: 0, delegate: receiveSide, maxPayload: 1 << 20)
        sendSide.channel = sender
        for k in 0..<frames {
            let h = FrameHeader(kind: .data, sequence: UInt32(k), index: 0, offset: UInt64(k * frame), length: UInt32(frame))
            XCTAssertTrue(sender.enqueue(data: h, payload: source + k * frame, cookie: UInt64(k)))
        }
        for _ in 0..<100 where !(try sender.flush()) {}
        for _ in 0..<100 { _ = try receiver.readable() }
        XCTAssertEqual(sendSide.reentered, frames)
        // Each abort goes out after the data frame whose completion enqueued it.
        let datas = receiveSide.order.filter { $0.hasPrefix("data") }, aborts = receiveSide.order.filter { $0.hasPrefix("abort") }
        XCTAssertEqual(datas, (0..<frames).map { "data \($0)" })
        XCTAssertEqual(aborts, (0..<frames).map { "abort \($0)" })
        XCTAssertEqual(memcmp(source, landed, frame * frames), 0)
    }
}
