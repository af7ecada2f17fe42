import XCTest
import Glibc
import HFRTransport

/// The receive path of a channel: frames that arrive in pieces of any size, split inside headers
/// and payloads, small payloads taken from the read-ahead stage and large ones received straight
/// into place with the next frames read behind them, all land intact and in order.
final class ChannelReadTests: XCTestCase {
    final class Sink: ChannelDelegate {
        /// Destination of each data frame, by its sequence number.
        var buffers: [UInt32: UnsafeMutableRawPointer] = [:]
        var completed: [UInt32] = []
        var controls: [FrameHeader] = []
        deinit { for b in buffers.values { b.deallocate() } }
        func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
            let b = UnsafeMutableRawPointer.allocate(byteCount: max(1, Int(header.length)), alignment: 64)
            buffers[header.sequence] = b
            return (b, UInt64(header.sequence))
        }
        func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader) {
            completed.append(UInt32(cookie))
        }
        func channel(_ channel: TCPChannel, control header: FrameHeader) throws { controls.append(header) }
        func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int) {}
    }

    /// The byte a payload of frame `seq` holds at `i` (differs between frames and positions).
    static func byte(_ seq: UInt32, _ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: Int(seq) &* 131 &+ i &* 7 &+ i >> 9) }

    func testFramesSplitAnywhereArriveIntact() throws {
        // Small and large payloads (around the 64 KiB read-ahead bound and the 8 KiB one), empty
        // ones, and control frames between them.
        let lengths = [16384, 0, 100, 65536, 65537, 300_000, 8192, 8160, 1, 70_000, 16384, 16384, 524_288, 33]
        var wire: [UInt8] = []
        var expectedControls: [Int32] = []
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size, alignment: 8)
        defer { scratch.deallocate() }
        func append(_ h: FrameHeader) {
            h.encode(to: scratch)
            wire.append(contentsOf: UnsafeRawBufferPointer(start: scratch, count: FrameHeader.size))
        }
        for (k, length) in lengths.enumerated() {
            let seq = UInt32(k)
            append(FrameHeader(kind: .data, sequence: seq, index: 0, offset: 0, length: UInt32(length)))
            for i in 0..<length { wire.append(Self.byte(seq, i)) }
            if k % 3 == 0 {
                append(FrameHeader(kind: .clearToSend, sequence: seq, index: Int32(k), offset: 64, length: 0))
                expectedControls.append(Int32(k))
            }
        }

        // Pieces of pseudo-random sizes from 1 byte to 200 KB, the reader called after each.
        for pattern in 0..<4 {
            let (fd0, fd1) = nonBlockingSocketPair()
            defer { close(fd0) }
            let sink = Sink()
            let channel = TCPChannel(fd: fd1, peer: 1, link: 0, index: 0, delegate: sink, maxPayload: 1 << 20)
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(pattern + 1)
            var at = 0
            while at < wire.count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let limits = [7, 40, 9000, 200_000]
                let piece = min(wire.count - at, 1 + Int(state >> 33) % limits[pattern])
                let n = wire.withUnsafeBytes { write(fd0, $0.baseAddress! + at, piece) }
                if n > 0 { at += n }
                try channel.readable()
            }
            try channel.readable()
            XCTAssertEqual(sink.completed, (0..<UInt32(lengths.count)).map { $0 }, "pattern \(pattern): every frame, in order")
            XCTAssertEqual(sink.controls.map(\.index), expectedControls, "pattern \(pattern)")
            for (k, length) in lengths.enumerated() {
                guard let b = sink.buffers[UInt32(k)] else { XCTFail("frame \(k) not received"); continue }
                let bytes = UnsafeRawBufferPointer(start: b, count: length)
                let bad = (0..<length).first { bytes[$0] != Self.byte(UInt32(k), $0) }
                XCTAssertNil(bad, "pattern \(pattern): frame \(k) (\(length) B) differs at byte \(bad ?? -1)")
            }
        }
    }

    /// A read that reaches its budget still hands over every frame it staged. Level-triggered
    /// epoll reports a socket again only while the kernel holds bytes: frames left in the
    /// stage of an emptied socket would wait forever (a 3-rank allreduce hung on 4 fragments
    /// of 16 KiB, one read-ahead's worth, that way).
    func testBudgetNeverStrandsStagedFrames() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        defer { close(fd0) }
        let sink = Sink()
        let channel = TCPChannel(fd: fd1, peer: 1, link: 0, index: 0, delegate: sink, maxPayload: 1 << 20)
        let frames = 12, length = 16384
        let raw = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size + length, alignment: 8)
        defer { raw.deallocate() }
        var written = 0
        for seq in 0..<UInt32(frames) {
            FrameHeader(kind: .data, sequence: seq, index: 0, offset: 0, length: UInt32(length)).encode(to: raw)
            for i in 0..<length { raw.storeBytes(of: Self.byte(seq, i), toByteOffset: FrameHeader.size + i, as: UInt8.self) }
            var at = 0
            while at < FrameHeader.size + length {
                let n = write(fd0, raw + at, FrameHeader.size + length - at)
                if n > 0 { at += n; written += n; continue }
                // The socket buffer is full: let the channel take some before writing on.
                try channel.readable(budget: 1)
            }
        }
        // Each call may stop reading once past its budget, but must not return with whole frames
        // staged: once the socket is empty, no more calls would come.
        var calls = 0
        while true {
            try channel.readable(budget: 1)
            calls += 1
            var pfd = pollfd(fd: fd1, events: Int16(POLLIN), revents: 0)
            let more = poll(&pfd, 1, 0) > 0
            if !more || calls > 10_000 { break }
        }
        XCTAssertEqual(sink.completed, (0..<UInt32(frames)).map { $0 },
                       "every frame whose bytes left the socket is delivered (\(written) bytes written, \(calls) calls)")
        for seq in sink.completed {
            let bytes = UnsafeRawBufferPointer(start: sink.buffers[seq]!, count: length)
            XCTAssertNil((0..<length).first { bytes[$0] != Self.byte(seq, $0) }, "frame \(seq) intact")
        }
    }

    /// A peer that closes the connection mid-frame is reported, not taken for an empty socket.
    func testCloseInsidePayloadIsReported() throws {
        let (fd0, fd1) = nonBlockingSocketPair()
        let sink = Sink()
        let channel = TCPChannel(fd: fd1, peer: 3, link: 0, index: 0, delegate: sink, maxPayload: 1 << 20)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size + 20000, alignment: 8)
        defer { raw.deallocate() }
        FrameHeader(kind: .data, sequence: 1, index: 0, offset: 0, length: 100_000).encode(to: raw)
        XCTAssertEqual(write(fd0, raw, FrameHeader.size + 20000), FrameHeader.size + 20000)
        try channel.readable()
        XCTAssertTrue(sink.completed.isEmpty)
        close(fd0)
        XCTAssertThrowsError(try channel.readable()) { XCTAssertTrue("\($0)".contains("closed by peer"), "\($0)") }
    }
}
