import CHFRVerbs
import HFRVerbs
import XCTest

/// RESET → INIT → RTR → RTS → ERROR, and what each state refuses, as a real HCA does.
final class QueuePairStateTests: XCTestCase {
    func testPostingAndTransitionsFollowTheStateMachine() throws {
        let a = try Endpoint("soft_0"), b = try Endpoint("soft_1")
        let qp = a.qp, options = ConnectOptions()
        XCTAssertEqual(try qp.state(), .reset)
        XCTAssertThrowsError(try qp.postWrite(local: a.local(0, 8), remoteAddress: 0, rkey: 0, workRequestID: 1)) { error in
            XCTAssertEqual(errnoOf(error), EINVAL)
            XCTAssertTrue("\(error)".contains("posting a send needs the QP in RTS"), "\(error)")
        }
        XCTAssertThrowsError(try qp.postReceive(workRequestID: 1)) { XCTAssertEqual(errnoOf($0), EINVAL) }
        XCTAssertThrowsError(try qp.readyToReceive(from: b.qp.localAddress, options: options)) { error in
            XCTAssertEqual(errnoOf(error), EINVAL)
            XCTAssertTrue("\(error)".contains("cannot go from RESET to RTR"), "\(error)")
        }
        XCTAssertThrowsError(try qp.readyToSend(options: options)) { XCTAssertEqual(errnoOf($0), EINVAL) }

        try qp.initialize()
        XCTAssertEqual(try qp.state(), .initialized)
        try qp.postReceive(workRequestID: 7)
        XCTAssertThrowsError(try qp.postWrite(local: a.local(0, 8), remoteAddress: 0, rkey: 0, workRequestID: 1)) { XCTAssertEqual(errnoOf($0), EINVAL) }
        XCTAssertThrowsError(try qp.readyToSend(options: options)) { XCTAssertEqual(errnoOf($0), EINVAL) }
        // INIT → RTR without the attributes it requires.
        var attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_RTR
        XCTAssertThrowsError(try qp.modify(&attr, mask: Int32(IBV_QP_STATE.rawValue), "RTR")) { error in
            XCTAssertEqual(errnoOf(error), EINVAL)
            XCTAssertTrue("\(error)".contains("an attribute the transition requires is missing"), "\(error)")
        }
        var bad = options
        bad.timeout = 32
        try qp.readyToReceive(from: b.qp.localAddress, options: options)
        XCTAssertEqual(try qp.state(), .readyToReceive)
        XCTAssertThrowsError(try qp.postWrite(local: a.local(0, 8), remoteAddress: 0, rkey: 0, workRequestID: 1)) { XCTAssertEqual(errnoOf($0), EINVAL) }
        XCTAssertThrowsError(try qp.readyToSend(options: bad)) { error in
            XCTAssertEqual(errnoOf(error), EINVAL)
            XCTAssertTrue("\(error)".contains("timeout is above 31"), "\(error)")
        }
        try qp.readyToSend(options: options)
        XCTAssertEqual(try qp.state(), .readyToSend)
        XCTAssertThrowsError(try qp.readyToReceive(from: b.qp.localAddress, options: options)) { XCTAssertEqual(errnoOf($0), EINVAL) }

        // ERROR flushes the posted receive; a send posted in ERROR is accepted and flushed.
        try qp.moveToError()
        XCTAssertEqual(try qp.state(), .error)
        let flushed = try a.drain(a.recvCQ, 1)
        XCTAssertEqual(flushed.map(\.workRequestID), [7])
        XCTAssertEqual(flushed.map(\.status), [.flushed])
        try qp.postWrite(local: a.local(0, 8), remoteAddress: 0, rkey: 0, workRequestID: 9, signaled: false)
        let sendFlushed = try a.drain(a.sendCQ, 1)
        XCTAssertEqual(sendFlushed.map(\.workRequestID), [9])
        XCTAssertEqual(sendFlushed.map(\.status), [.flushed])
        XCTAssertEqual(a.sendCQ.failure(sendFlushed[0]).description, "work request 9 on QP \(qp.number) failed: Work Request Flushed Error (status 5)")
        XCTAssertThrowsError(try qp.readyToSend(options: options)) { error in
            XCTAssertTrue("\(error)".contains("cannot go from ERROR to RTS"), "\(error)")
        }
        // RESET forgets everything; the QP can be connected again.
        try qp.reset()
        XCTAssertEqual(try qp.state(), .reset)
        try qp.connect(to: b.qp.localAddress, options: options)
        try b.qp.connect(to: qp.localAddress, options: options)
        XCTAssertEqual(try qp.state(), .readyToSend)
    }

    func testRTRToAnAddressThatIsNoSoftHCAIsRefused() throws {
        let a = try Endpoint("soft_0")
        var stranger = a.qp.localAddress
        stranger.gid = GID(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3])
        XCTAssertThrowsError(try a.qp.connect(to: stranger, options: ConnectOptions())) { error in
            XCTAssertEqual(errnoOf(error), EHOSTUNREACH)
            XCTAssertTrue("\(error)".contains("the destination GID is not a soft HCA's"), "\(error)")
        }
        // A soft HCA GID whose HCA is not open (no process has that slot).
        stranger.gid = GID(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0xbf, 0xfe])
        XCTAssertThrowsError(try a.qp.readyToReceive(from: stranger, options: ConnectOptions())) { error in
            XCTAssertEqual(errnoOf(error), EHOSTUNREACH)
            XCTAssertTrue("\(error)".contains("no soft HCA with LID 49150 is open on this machine"), "\(error)")
        }
    }
}
