import Glibc
import HFRVerbs

/// The blob both sides exchange: queue pair address, then the receive buffer's address, rkey
/// and length (big endian).
struct Advertisement {
    static let size = QueuePairAddress.encodedSize + 16
    var address: QueuePairAddress
    var buffer: RemoteBuffer

    var encoded: [UInt8] {
        var b = address.encoded
        withUnsafeBytes(of: buffer.address.bigEndian) { b += $0 }
        withUnsafeBytes(of: buffer.rkey.bigEndian) { b += $0 }
        withUnsafeBytes(of: UInt32(buffer.length).bigEndian) { b += $0 }
        return b
    }

    init(address: QueuePairAddress, buffer: RemoteBuffer) {
        self.address = address
        self.buffer = buffer
    }

    init(_ bytes: [UInt8]) throws {
        address = try bytes.withUnsafeBytes { raw throws(VerbsError) in try QueuePairAddress(decoding: raw) }
        let at = QueuePairAddress.encodedSize
        buffer = bytes.withUnsafeBytes { raw in
            RemoteBuffer(address: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)),
                         length: Int(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self))),
                         rkey: UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)))
        }
    }
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        check(n > 0, "write to fd \(fd) failed")
        done += n
    }
}

func readExactly(_ fd: Int32, _ count: Int) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: count), done = 0
    while done < count {
        let n = b.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
        check(n > 0, "the test closed the exchange after \(done) of \(count) bytes")
        done += n
    }
    return b
}

/// The byte at `offset` of what side `side` writes.
func pattern(side: UInt32, offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset &* 131 &+ Int(side) &* 17 &+ offset >> 12) }

let pairBytes = 1 << 20, fragment = 64 << 10

func pair(side: UInt32) throws {
    let library = try VerbsLibrary.load()
    let port = try library.activePortsFromEnvironment()[0]
    let pd = try port.device.makeProtectionDomain()
    let sendCQ = try port.device.makeCompletionQueue(depth: 64), recvCQ = try port.device.makeCompletionQueue(depth: 64)
    let qp = try pd.makeQueuePair(port: port, sendQueue: sendCQ, receiveQueue: recvCQ,
                                  capabilities: QueuePairCapabilities(sendDepth: 32, receiveDepth: 32))
    let source = UnsafeMutableRawPointer.allocate(byteCount: pairBytes, alignment: 4096)
    let target = UnsafeMutableRawPointer.allocate(byteCount: pairBytes, alignment: 4096)
    for i in 0..<pairBytes { source.storeBytes(of: pattern(side: side, offset: i), toByteOffset: i, as: UInt8.self) }
    memset(target, 0, pairBytes)
    let sourceMR = try pd.register(source, length: pairBytes, access: .localWrite)
    let targetMR = try pd.register(target, length: pairBytes, access: .rdmaTarget)
    let fragments = pairBytes / fragment
    try qp.initialize()
    for i in 0..<fragments { try qp.postReceive(workRequestID: UInt64(i)) }

    writeAll(1, Advertisement(address: qp.localAddress, buffer: targetMR.remote(target, count: pairBytes)).encoded)
    let peer = try Advertisement(readExactly(0, Advertisement.size))
    check(peer.buffer.length == pairBytes, "the peer advertises \(peer.buffer.length) bytes")
    try qp.connect(to: peer.address)

    // Fragments go out in reverse order, so that placement by offset is what is checked.
    for k in 0..<fragments {
        let i = fragments - 1 - k
        try qp.postWriteWithImmediate(local: sourceMR.local(source + i * fragment, count: fragment),
                                      remoteAddress: peer.buffer.address + UInt64(i * fragment), rkey: peer.buffer.rkey,
                                      immediate: side << 16 | UInt32(i), workRequestID: UInt64(1000 + i))
    }
    var sent = 0, received = [Bool](repeating: false, count: fragments), receivedCount = 0
    let peerSide: UInt32 = side == 1 ? 2 : 1
    let deadline = time(nil) + 60
    while sent < fragments || receivedCount < fragments {
        check(time(nil) < deadline, "timed out with \(sent) sends and \(receivedCount) receives completed")
        for j in 0..<(try sendCQ.poll()) {
            let c = sendCQ[j]
            check(c.isSuccess, "send: \(sendCQ.failure(c))")
            check(c.opcode == .rdmaWrite, "send completion opcode \(c.opcode.rawValue)")
            sent += 1
        }
        for j in 0..<(try recvCQ.poll()) {
            let c = recvCQ[j]
            check(c.isSuccess, "receive: \(recvCQ.failure(c))")
            check(c.opcode == .receiveRDMAWithImmediate, "receive completion opcode \(c.opcode.rawValue)")
            check(c.byteLength == fragment, "receive of \(c.byteLength) bytes, not \(fragment)")
            guard let imm = c.immediate else { fail("receive without an immediate") }
            check(imm >> 16 == peerSide, "immediate 0x\(String(imm, radix: 16)) is not from side \(peerSide)")
            let i = Int(imm & 0xffff)
            check(i < fragments && !received[i], "fragment \(i) received twice or out of range")
            received[i] = true
            receivedCount += 1
        }
    }
    for i in 0..<pairBytes where target.load(fromByteOffset: i, as: UInt8.self) != pattern(side: peerSide, offset: i) {
        fail("byte \(i) is \(target.load(fromByteOffset: i, as: UInt8.self)), not \(pattern(side: peerSide, offset: i))")
    }
    print("OK side \(side): wrote and received \(pairBytes) bytes in \(fragments) fragments")
    withExtendedLifetime((sourceMR, targetMR, qp)) {}
}
