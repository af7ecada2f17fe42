import Glibc
import HFRVerbs
import XCTest

/// The soft device of the test process: 2 HCAs, RoCE.
let soft: VerbsLibrary = {
    do { return try VerbsLibrary.loadSoft(hcas: 2) } catch { fatalError("the soft verbs device does not load: \(error)") }
}()

/// One side of a connection on a soft HCA: PD, CQs, a QP, and a registered buffer.
final class Endpoint {
    let port: VerbsPort
    let pd: ProtectionDomain
    let sendCQ: CompletionQueue, recvCQ: CompletionQueue
    let qp: QueuePair
    let memory: UnsafeMutableRawPointer
    let size: Int
    let mr: MemoryRegion

    init(_ hca: String, sendCQDepth: Int = 64, sendDepth: Int = 16, receiveDepth: Int = 16, size: Int = 64 << 10,
         access: MemoryAccess = .rdmaTarget) throws {
        port = try soft.activePorts(selection: DeviceSelection(parsing: "=" + hca), gidIndex: nil)[0]
        pd = try port.device.makeProtectionDomain()
        sendCQ = try port.device.makeCompletionQueue(depth: sendCQDepth)
        recvCQ = try port.device.makeCompletionQueue(depth: 64)
        qp = try pd.makeQueuePair(port: port, sendQueue: sendCQ, receiveQueue: recvCQ,
                                  capabilities: QueuePairCapabilities(sendDepth: sendDepth, receiveDepth: receiveDepth, maxInlineData: 64))
        self.size = size
        memory = .allocate(byteCount: size, alignment: 4096)
        memset(memory, 0, size)
        mr = try pd.register(memory, length: size, access: access)
    }

    deinit { memory.deallocate() }

    func local(_ offset: Int, _ count: Int) -> LocalBuffer { mr.local(memory + offset, count: count) }
    var remote: RemoteBuffer { mr.remote(memory, count: size) }

    /// Polls `cq` until `count` completions came (bounded), polling `others` meanwhile so that
    /// their QPs make progress too.
    func drain(_ cq: CompletionQueue, _ count: Int, also others: [CompletionQueue] = [], seconds: Double = 5) throws -> [WorkCompletion] {
        var got: [WorkCompletion] = []
        let deadline = Date().addingTimeInterval(seconds)
        while got.count < count && Date() < deadline {
            for other in others { _ = try other.poll() }
            for i in 0..<(try cq.poll()) { got.append(cq[i]) }
        }
        return got
    }
}

/// A connected pair: `a` on soft_0, `b` on soft_1.
func connectedPair(options: ConnectOptions = ConnectOptions(), bOptions: ConnectOptions? = nil,
                   a: Endpoint? = nil, b: Endpoint? = nil) throws -> (Endpoint, Endpoint) {
    let a = try a ?? Endpoint("soft_0"), b = try b ?? Endpoint("soft_1")
    try a.qp.connect(to: b.qp.localAddress, options: options)
    try b.qp.connect(to: a.qp.localAddress, options: bOptions ?? options)
    return (a, b)
}

/// The errno of a failed verbs call, or nil.
func errnoOf(_ error: Error) -> Int32? {
    if case VerbsError.call(_, let errno, _) = error { return errno.rawValue }
    return nil
}
