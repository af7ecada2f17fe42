import Glibc
import HFRVerbs

/// HFR_IB_SOFT_FAIL=soft_0:after=3, with a QP on soft_0 writing to one on soft_1 in this process.
func failMidway() throws {
    let library = try VerbsLibrary.load()
    let ports = try library.activePortsFromEnvironment()
    check(ports.count == 2, "\(ports.count) soft HCAs, not 2")
    let a = try Endpoint(port: ports[0]), b = try Endpoint(port: ports[1])
    try a.qp.connect(to: b.qp.localAddress, options: ConnectOptions())
    try b.qp.connect(to: a.qp.localAddress, options: ConnectOptions())
    for i in 0..<4 { try b.qp.postReceive(workRequestID: UInt64(i)) }
    for i in 0..<3 {
        try a.qp.postWriteWithImmediate(local: a.mr.local(a.memory, count: 64), remoteAddress: b.remote.address, rkey: b.remote.rkey,
                                        immediate: UInt32(i), workRequestID: UInt64(i))
    }
    var done = 0
    while done < 3 {
        _ = try b.recvCQ.poll()
        for j in 0..<(try a.sendCQ.poll()) {
            check(a.sendCQ[j].isSuccess, "write \(a.sendCQ[j].workRequestID) before the failure: \(a.sendCQ.failure(a.sendCQ[j]))")
            done += 1
        }
    }
    try a.qp.postWriteWithImmediate(local: a.mr.local(a.memory, count: 64), remoteAddress: b.remote.address, rkey: b.remote.rkey,
                                    immediate: 3, workRequestID: 3)
    check(try a.sendCQ.poll() == 1, "the fourth write did not complete at once")
    check(a.sendCQ[0].status == .flushed, "the fourth write completed with \(a.sendCQ.failure(a.sendCQ[0]))")
    let state = try a.qp.state()
    check(state == .error, "the QP of the failed HCA is \(state)")
    check(try ports[0].device.port(1).state == .down, "the failed HCA's port is not DOWN")
    check(try ports[1].device.port(1).state == .active, "the other HCA's port is not ACTIVE")
    print("OK: 3 writes completed, the 4th was flushed, \(ports[0].name) is DOWN")
}

final class Endpoint {
    let pd: ProtectionDomain, sendCQ: CompletionQueue, recvCQ: CompletionQueue, qp: QueuePair
    let memory: UnsafeMutableRawPointer, mr: MemoryRegion, remote: RemoteBuffer

    init(port: VerbsPort) throws {
        pd = try port.device.makeProtectionDomain()
        sendCQ = try port.device.makeCompletionQueue(depth: 16)
        recvCQ = try port.device.makeCompletionQueue(depth: 16)
        qp = try pd.makeQueuePair(port: port, sendQueue: sendCQ, receiveQueue: recvCQ,
                                  capabilities: QueuePairCapabilities(sendDepth: 8, receiveDepth: 8))
        memory = .allocate(byteCount: 4096, alignment: 4096)
        mr = try pd.register(memory, length: 4096, access: .rdmaTarget)
        remote = mr.remote(memory, count: 4096)
    }
}
