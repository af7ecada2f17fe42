import Glibc
import HFRVerbs
import XCTest

/// Data movement on the soft device between two HCAs of this process.
final class SoftTransferTests: XCTestCase {
    func testWriteWithImmediateLandsAndCompletesOnBothSides() throws {
        let (a, b) = try connectedPair()
        for i in 0..<4096 { a.memory.storeBytes(of: UInt8(truncatingIfNeeded: i * 7), toByteOffset: i, as: UInt8.self) }
        for i in 0..<3 { try b.qp.postReceive(workRequestID: UInt64(100 + i)) }
        // Three fragments of 1 KiB to offsets 8K, 9K, 10K, the middle one unsignaled.
        for i in 0..<3 {
            try a.qp.postWriteWithImmediate(local: a.local(i * 1024, 1024), remoteAddress: b.remote.address + UInt64(8192 + i * 1024),
                                            rkey: b.remote.rkey, immediate: 0xABCD_0000 | UInt32(i), workRequestID: UInt64(i), signaled: i != 1)
        }
        let received = try b.drain(b.recvCQ, 3, also: [a.sendCQ])
        XCTAssertEqual(received.map(\.workRequestID), [100, 101, 102])
        XCTAssertEqual(received.map(\.opcode), [.receiveRDMAWithImmediate, .receiveRDMAWithImmediate, .receiveRDMAWithImmediate])
        XCTAssertEqual(received.map(\.immediate), [0xABCD_0000, 0xABCD_0001, 0xABCD_0002])
        XCTAssertEqual(received.map(\.byteLength), [1024, 1024, 1024])
        XCTAssertEqual(received.map(\.queuePairNumber), [b.qp.number, b.qp.number, b.qp.number])
        let sent = try a.drain(a.sendCQ, 2)
        XCTAssertEqual(sent.map(\.workRequestID), [0, 2], "the unsignaled write has no completion")
        XCTAssertEqual(sent.map(\.opcode), [.rdmaWrite, .rdmaWrite])
        XCTAssertEqual(memcmp(a.memory, b.memory + 8192, 3072), 0)
        XCTAssertEqual(b.memory.load(fromByteOffset: 8191, as: UInt8.self), 0)
        XCTAssertEqual(b.memory.load(fromByteOffset: 8192 + 3072, as: UInt8.self), 0)
    }

    func testPlainWriteConsumesNoReceiveAndSendLandsInTheReceiveBuffer() throws {
        let (a, b) = try connectedPair()
        memset(a.memory, 0x11, 256)
        try a.qp.postWrite(local: a.local(0, 256), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.success])
        XCTAssertEqual(b.memory.load(fromByteOffset: 255, as: UInt8.self), 0x11)
        // A SEND lands in the posted receive's buffer; an inline SEND too, from unregistered memory.
        try b.qp.postReceive(workRequestID: 5, into: b.local(4096, 64))
        try b.qp.postReceive(workRequestID: 6, into: b.local(8192, 64))
        memcpy(a.memory + 1024, "hello, receiver", 15)
        try a.qp.postSend(local: a.local(1024, 15), immediate: 42, workRequestID: 2)
        var note: [UInt8] = Array("inline!".utf8)
        try note.withUnsafeBytes { try a.qp.postSend(local: LocalBuffer(address: $0.baseAddress!, length: 7, lkey: 0), workRequestID: 3, inline: true) }
        note = [0, 0, 0, 0, 0, 0, 0]
        let received = try b.drain(b.recvCQ, 2, also: [a.sendCQ])
        XCTAssertEqual(received.map(\.workRequestID), [5, 6], "the plain write consumed no receive")
        XCTAssertEqual(received.map(\.opcode), [.receive, .receive])
        XCTAssertEqual(received.map(\.byteLength), [15, 7])
        XCTAssertEqual(received.map(\.immediate), [42, nil])
        XCTAssertEqual(String(decoding: UnsafeRawBufferPointer(start: b.memory + 4096, count: 15), as: UTF8.self), "hello, receiver")
        XCTAssertEqual(String(decoding: UnsafeRawBufferPointer(start: b.memory + 8192, count: 7), as: UTF8.self), "inline!")
        XCTAssertEqual(try a.drain(a.sendCQ, 2).map(\.opcode), [.send, .send])
    }

    func testSendQueueSlotsFreeOnlyWithAPolledSignaledCompletion() throws {
        let (a, b) = try connectedPair(a: Endpoint("soft_0", sendDepth: 4))
        for i in 0..<4 {
            try a.qp.postWrite(local: a.local(0, 8), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: UInt64(i), signaled: false)
        }
        _ = try b.drain(b.recvCQ, 0)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, seconds: 0.05).count, 0)
        XCTAssertThrowsError(try a.qp.postWrite(local: a.local(0, 8), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: 4)) { error in
            XCTAssertEqual(errnoOf(error), ENOMEM)
            XCTAssertTrue("\(error)".contains("the send queue is full"), "\(error)")
        }
        let c = try Endpoint("soft_0", sendDepth: 4)
        let (x, y) = try connectedPair(a: c, b: Endpoint("soft_1"))
        for i in 0..<4 {
            try x.qp.postWrite(local: x.local(0, 8), remoteAddress: y.remote.address, rkey: y.remote.rkey, workRequestID: UInt64(i), signaled: i == 3)
        }
        XCTAssertEqual(try x.drain(x.sendCQ, 1, also: [y.recvCQ]).map(\.workRequestID), [3])
        for i in 4..<8 {
            try x.qp.postWrite(local: x.local(0, 8), remoteAddress: y.remote.address, rkey: y.remote.rkey, workRequestID: UInt64(i), signaled: i == 7)
        }
        XCTAssertEqual(try x.drain(x.sendCQ, 1, also: [y.recvCQ]).map(\.workRequestID), [7])
    }
}
