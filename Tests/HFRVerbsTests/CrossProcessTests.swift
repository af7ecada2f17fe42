import Foundation
import Glibc
import HFRVerbs
import XCTest

/// The soft device between separate processes, and how the library loads in one.
final class CrossProcessTests: XCTestCase {
    static let total = 1 << 20, fragment = 64 << 10

    static func pattern(side: UInt32, offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset &* 131 &+ Int(side) &* 17 &+ offset >> 12) }

    /// This process (side 1, soft_0) and hfr-verbs-testpeer (side 2, soft_1 of its own soft
    /// device) exchange their queue pair address and receive buffer (address, rkey, length) over
    /// pipes, then each writes 1 MiB into the other in 16 fragments with immediates.
    func testOneMiBWrittenBothWaysBetweenTwoProcesses() throws {
        let peer = try PeerProcess(["pair", "2"], environment: ["HFR_IB_SOFT": "2", "HFR_IB_HCA": "soft_1"])
        let a = try Endpoint("soft_0", sendDepth: 32, receiveDepth: 32, size: Self.total)
        let source = UnsafeMutableRawPointer.allocate(byteCount: Self.total, alignment: 4096)
        defer { source.deallocate() }
        for i in 0..<Self.total { source.storeBytes(of: Self.pattern(side: 1, offset: i), toByteOffset: i, as: UInt8.self) }
        let sourceMR = try a.pd.register(source, length: Self.total, access: .localWrite)
        let fragments = Self.total / Self.fragment
        try a.qp.initialize()
        for i in 0..<fragments { try a.qp.postReceive(workRequestID: UInt64(i)) }

        var blob = a.qp.localAddress.encoded
        withUnsafeBytes(of: a.remote.address.bigEndian) { blob += $0 }
        withUnsafeBytes(of: a.remote.rkey.bigEndian) { blob += $0 }
        withUnsafeBytes(of: UInt32(Self.total).bigEndian) { blob += $0 }
        peer.write(blob)
        let theirs = peer.read(QueuePairAddress.encodedSize + 16)
        guard theirs.count == QueuePairAddress.encodedSize + 16 else {
            let (text, status) = peer.finish()
            return XCTFail("the peer sent \(theirs.count) bytes and exited with \(status): \(text)")
        }
        let address = try theirs.withUnsafeBytes { try QueuePairAddress(decoding: $0) }
        let (remoteAddress, rkey, length) = theirs.withUnsafeBytes { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self)),
             UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 40, as: UInt32.self)),
             Int(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 44, as: UInt32.self))))
        }
        XCTAssertEqual(length, Self.total)
        XCTAssertNotEqual(address.gid, a.qp.localAddress.gid)
        try a.qp.connect(to: address, options: ConnectOptions())
        for i in 0..<fragments {
            try a.qp.postWriteWithImmediate(local: sourceMR.local(source + i * Self.fragment, count: Self.fragment),
                                            remoteAddress: remoteAddress + UInt64(i * Self.fragment), rkey: rkey,
                                            immediate: 1 << 16 | UInt32(i), workRequestID: UInt64(100 + i))
        }
        var sent: [UInt64] = [], immediates: [UInt32] = []
        let deadline = Date().addingTimeInterval(60)
        while (sent.count < fragments || immediates.count < fragments) && Date() < deadline {
            for j in 0..<(try a.sendCQ.poll()) {
                XCTAssertTrue(a.sendCQ[j].isSuccess, "\(a.sendCQ.failure(a.sendCQ[j]))")
                sent.append(a.sendCQ[j].workRequestID)
            }
            for j in 0..<(try a.recvCQ.poll()) {
                let c = a.recvCQ[j]
                XCTAssertTrue(c.isSuccess, "\(a.recvCQ.failure(c))")
                XCTAssertEqual(c.opcode, .receiveRDMAWithImmediate)
                XCTAssertEqual(c.byteLength, Self.fragment)
                immediates.append(c.immediate ?? 0)
            }
        }
        let (text, status) = peer.finish()
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.hasPrefix("OK side 2: wrote and received 1048576 bytes in 16 fragments"), text)
        XCTAssertEqual(sent, (0..<UInt64(fragments)).map { 100 + $0 })
        XCTAssertEqual(immediates.sorted(), (0..<UInt32(fragments)).map { 2 << 16 | (UInt32(fragments) - 1 - $0) }.sorted())
        var wrong = 0
        for i in 0..<Self.total where a.memory.load(fromByteOffset: i, as: UInt8.self) != Self.pattern(side: 2, offset: i) { wrong += 1 }
        XCTAssertEqual(wrong, 0, "bytes written by the other process")
    }

    /// Two peer processes on InfiniBand-like soft ports (addressed by LID), relayed by the test.
    func testInfiniBandLinkLayerBetweenTwoOtherProcesses() throws {
        let env = ["HFR_IB_SOFT": "2", "HFR_IB_SOFT_LINK": "ib"]
        let one = try PeerProcess(["pair", "1"], environment: env.merging(["HFR_IB_HCA": "soft_0"]) { $1 })
        let two = try PeerProcess(["pair", "2"], environment: env.merging(["HFR_IB_HCA": "soft_1"]) { $1 })
        let a = one.read(48), b = two.read(48)
        XCTAssertEqual(a.count, 48)
        XCTAssertEqual(b.count, 48)
        let lidA = try a.withUnsafeBytes { try QueuePairAddress(decoding: $0) }.lid
        XCTAssertNotEqual(lidA, 0, "an InfiniBand port has a LID")
        one.write(b)
        two.write(a)
        let (t1, s1) = one.finish(), (t2, s2) = two.finish()
        XCTAssertEqual(s1, 0, t1)
        XCTAssertEqual(s2, 0, t2)
        XCTAssertTrue(t1.hasPrefix("OK side 1"), t1)
        XCTAssertTrue(t2.hasPrefix("OK side 2"), t2)
    }

    func testHCAFailedThroughTheEnvironment() throws {
        let peer = try PeerProcess(["fail"], environment: ["HFR_IB_SOFT": "2", "HFR_IB_SOFT_FAIL": "soft_0:after=3"])
        let (text, status) = peer.finish()
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(text, "OK: 3 writes completed, the 4th was flushed, soft_0:1 is DOWN\n")
    }

    func testTheEnvironmentSelectsTheImplementationAndBadValuesAreNamed() throws {
        func load(_ env: [String: String]) throws -> String { try PeerProcess(["load"], environment: env).finish().0 }
        XCTAssertEqual(try load(["HFR_IB_SOFT": "3"]), "loaded soft, devices: soft_0,soft_1,soft_2\n")
        XCTAssertEqual(try load(["HFR_IB_SOFT": "two"]), "error: HFR_IB_SOFT=two is not a number of soft HCAs between 1 and 16\n")
        XCTAssertEqual(try load(["HFR_IB_SOFT": "2", "HFR_IB_SOFT_FAIL": "soft_2:after=1"]),
                       "error: HFR_IB_SOFT_FAIL=soft_2:after=1 names soft_2, which is not one of soft_0..soft_1\n")
        XCTAssertEqual(try load(["HFR_IB_SOFT": "2", "HFR_IB_SOFT_FAIL": "soft_1:before=1"]),
                       "error: HFR_IB_SOFT_FAIL=soft_1:before=1 is not a list of soft_<n>[:after=<work requests>]\n")
        XCTAssertEqual(try load(["HFR_IB_SOFT": "1", "HFR_IB_SOFT_LINK": "fddi"]), "error: HFR_IB_SOFT_LINK=fddi is not roce or ib\n")
        // Without HFR_IB_SOFT: libibverbs.so.1, which on a machine without RDMA says why it cannot be used.
        let real = try load([:])
        if !FileManager.default.fileExists(atPath: "/sys/class/infiniband") {
            XCTAssertTrue(real.hasPrefix("error: no RDMA device: ") || real.hasPrefix("error: libibverbs.so.1 not found ("), real)
        }
    }

    /// libibverbs is loaded with dlopen, never linked.
    func testNothingLinksLibibverbs() throws {
        for binary in [try PeerProcess.path("hfr-verbs-testpeer"), URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path] {
            let ldd = Process(), out = Pipe()
            ldd.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
            ldd.arguments = [binary]
            ldd.standardOutput = out
            try ldd.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            ldd.waitUntilExit()
            XCTAssertEqual(ldd.terminationStatus, 0, text)
            XCTAssertTrue(text.contains("libc.so"), text)
            XCTAssertFalse(text.contains("libibverbs"), "\(binary) links libibverbs:\n\(text)")
        }
    }
}
