import Glibc
import HFRVerbs
import XCTest

/// The failures a real HCA reports, on the soft device.
final class SoftErrorTests: XCTestCase {
    /// A write with a wrong rkey completes with IBV_WC_REM_ACCESS_ERR; the QP goes to ERROR and
    /// the work requests behind it are flushed; the responder's QP breaks too.
    func testWrongRkeyIsARemoteAccessErrorAndBreaksBothQueuePairs() throws {
        let (a, b) = try connectedPair()
        try b.qp.postReceive(workRequestID: 50)
        try b.qp.postReceive(workRequestID: 51)
        try a.qp.postWriteWithImmediate(local: a.local(0, 64), remoteAddress: b.remote.address, rkey: b.remote.rkey ^ 0x1000,
                                        immediate: 1, workRequestID: 1)
        try a.qp.postWriteWithImmediate(local: a.local(0, 64), remoteAddress: b.remote.address, rkey: b.remote.rkey,
                                        immediate: 2, workRequestID: 2, signaled: false)
        let done = try a.drain(a.sendCQ, 2)
        XCTAssertEqual(done.map(\.workRequestID), [1, 2])
        XCTAssertEqual(done.map(\.status), [.remoteAccessError, .flushed])
        XCTAssertEqual(a.sendCQ.failure(done[0]), .completion(CompletionFailure(status: .remoteAccessError, statusText: "remote access error",
                                                                               workRequestID: 1, queuePairNumber: a.qp.number, vendorError: 0)))
        XCTAssertTrue("\(a.sendCQ.failure(done[0]))".contains("remote access error"))
        XCTAssertEqual(try a.qp.state(), .error)
        let flushed = try b.drain(b.recvCQ, 2)
        XCTAssertEqual(flushed.map(\.status), [.flushed, .flushed])
        XCTAssertEqual(try b.qp.state(), .error)
        XCTAssertEqual(b.memory.load(fromByteOffset: 0, as: UInt64.self), 0, "nothing was written")
    }

    func testOutOfBoundsAndWriteProtectedTargetsAreRemoteAccessErrors() throws {
        // Beyond the end of the region.
        var (a, b) = try connectedPair()
        try a.qp.postWrite(local: a.local(0, 64), remoteAddress: b.remote.address + UInt64(b.size - 32), rkey: b.remote.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.remoteAccessError])
        // Before the start of the region.
        (a, b) = try connectedPair()
        try a.qp.postWrite(local: a.local(0, 64), remoteAddress: b.remote.address - 8, rkey: b.remote.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.remoteAccessError])
        // A region registered without remote write access.
        (a, b) = try connectedPair(b: Endpoint("soft_1", access: .localWrite))
        try a.qp.postWrite(local: a.local(0, 64), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.remoteAccessError])
        // A region of another protection domain of the responder's HCA.
        (a, b) = try connectedPair()
        let otherPD = try b.port.device.makeProtectionDomain()
        let other = try otherPD.register(b.memory, length: 4096, access: .rdmaTarget)
        try a.qp.postWrite(local: a.local(0, 64), remoteAddress: UInt64(UInt(bitPattern: b.memory)), rkey: other.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.remoteAccessError])
        // A wrong lkey is the requester's own protection error.
        (a, b) = try connectedPair()
        try a.qp.postWrite(local: LocalBuffer(address: a.memory, length: 64, lkey: a.mr.lkey ^ 0x1000), remoteAddress: b.remote.address,
                           rkey: b.remote.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.localProtectionError])
    }

    func testSendLongerThanTheReceiveBuffer() throws {
        let (a, b) = try connectedPair()
        try b.qp.postReceive(workRequestID: 1, into: b.local(0, 16))
        try a.qp.postSend(local: a.local(0, 64), workRequestID: 2)
        XCTAssertEqual(try b.drain(b.recvCQ, 1, also: [a.sendCQ]).map(\.status), [.localLengthError])
        XCTAssertEqual(try a.drain(a.sendCQ, 1).map(\.status), [.remoteInvalidRequest])
    }

    /// With no receive posted, a write with immediate waits (rnr_retry 7) until one is.
    func testReceiverNotReadyWaitsForAReceive() throws {
        let (a, b) = try connectedPair()
        try a.qp.postWriteWithImmediate(local: a.local(0, 128), remoteAddress: b.remote.address, rkey: b.remote.rkey, immediate: 9, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ], seconds: 0.2).count, 0)
        XCTAssertEqual(try b.drain(b.recvCQ, 1, seconds: 0.05).count, 0)
        try b.qp.postReceive(workRequestID: 77)
        let received = try b.drain(b.recvCQ, 1)
        XCTAssertEqual(received.map(\.workRequestID), [77])
        XCTAssertEqual(received.map(\.immediate), [9])
        XCTAssertEqual(try a.drain(a.sendCQ, 1).map(\.status), [.success])
    }

    /// With rnr_retry below 7 the requester gives up: IBV_WC_RNR_RETRY_EXC_ERR.
    func testReceiverNotReadyRetriesRunOut() throws {
        var requester = ConnectOptions(), responder = ConnectOptions()
        requester.rnrRetry = 1
        responder.minRnrTimer = 1  // 0.01 ms
        let (a, b) = try connectedPair(options: requester, bOptions: responder)
        try a.qp.postWriteWithImmediate(local: a.local(0, 8), remoteAddress: b.remote.address, rkey: b.remote.rkey, immediate: 1, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1, also: [b.recvCQ]).map(\.status), [.receiverNotReadyRetryExceeded])
    }

    /// A requester whose responder never comes up gives up after timeout x (retry_cnt + 1).
    func testRetryExceededWhenTheResponderIsNotThere() throws {
        let a = try Endpoint("soft_0"), b = try Endpoint("soft_1")
        var options = ConnectOptions()
        options.timeout = 8  // 1 ms
        options.retryCount = 1
        try a.qp.connect(to: b.qp.localAddress, options: options)
        try a.qp.postWrite(local: a.local(0, 8), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: 1)
        XCTAssertEqual(try a.drain(a.sendCQ, 1).map(\.status), [.retryExceeded])
        XCTAssertEqual(try a.qp.state(), .error)
    }

    /// More completions than the CQ holds: the next poll reports the overrun, the QP is broken.
    func testCompletionQueueOverrun() throws {
        let (a, b) = try connectedPair(a: Endpoint("soft_0", sendCQDepth: 2))
        XCTAssertEqual(a.sendCQ.depth, 2)
        for i in 0..<3 {
            try a.qp.postWrite(local: a.local(0, 8), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: UInt64(i))
        }
        _ = try b.recvCQ.poll()
        XCTAssertThrowsError(try a.sendCQ.poll()) { error in
            guard case VerbsError.completionQueueOverrun(let depth, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(depth, 2)
            XCTAssertTrue("\(error)".hasPrefix("completion queue of depth 2 overran"), "\(error)")
        }
        XCTAssertThrowsError(try a.sendCQ.poll(), "the overrun is sticky")
        XCTAssertEqual(try a.qp.state(), .error)
    }

    /// An HCA failed mid-loop: the writes before complete, the ones after are flushed, the port is
    /// DOWN, and its peer's requests toward it fail with retry exceeded.
    func testHCAFailedAfterNWorkRequests() throws {
        var options = ConnectOptions()
        options.timeout = 8
        options.retryCount = 0
        let (a, b) = try connectedPair(options: options)
        try soft.failSoftDevice("soft_0", after: 5)
        for i in 0..<5 { try b.qp.postReceive(workRequestID: UInt64(i)) }
        for i in 0..<5 {
            try a.qp.postWriteWithImmediate(local: a.local(0, 512), remoteAddress: b.remote.address, rkey: b.remote.rkey,
                                            immediate: UInt32(i), workRequestID: UInt64(i))
        }
        XCTAssertEqual(try b.drain(b.recvCQ, 5).map(\.status), Array(repeating: .success, count: 5))
        XCTAssertEqual(try a.drain(a.sendCQ, 5).map(\.status), Array(repeating: .success, count: 5))
        try a.qp.postWriteWithImmediate(local: a.local(0, 512), remoteAddress: b.remote.address, rkey: b.remote.rkey, immediate: 5, workRequestID: 5)
        try a.qp.postWrite(local: a.local(0, 512), remoteAddress: b.remote.address, rkey: b.remote.rkey, workRequestID: 6, signaled: false)
        let after = try a.drain(a.sendCQ, 2)
        XCTAssertEqual(after.map(\.workRequestID), [5, 6])
        XCTAssertEqual(after.map(\.status), [.flushed, .flushed])
        XCTAssertEqual(try a.qp.state(), .error)
        XCTAssertEqual(try a.port.device.port(1).state, .down)
        try b.qp.postWrite(local: b.local(0, 8), remoteAddress: a.remote.address, rkey: a.remote.rkey, workRequestID: 9)
        XCTAssertEqual(try b.drain(b.sendCQ, 1).map(\.status), [.retryExceeded])
    }
}
