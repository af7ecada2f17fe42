import HFRVerbs

/// One ACTIVE HCA port this rank uses, and what every queue pair on it shares: a protection
/// domain, a send and a receive completion queue, and the registration cache (with its bounce
/// pool) that gives local and remote keys for the buffers written from and into.
final class RDMAPort {
    /// The link number this port serves for every RDMA peer.
    let index: Int
    let port: VerbsPort
    let pd: ProtectionDomain
    let sendCQ: CompletionQueue
    let recvCQ: CompletionQueue
    let cache: RegistrationCache
    /// Work requests one queue pair may have posted (sends; receives).
    let sendDepth: Int, receiveDepth: Int

    /// Opens what the port's queue pairs need for `peers` peers, each queue pair with `sendDepth`
    /// writes and `receiveDepth` receives outstanding; the completion queues hold all of them.
    init(index: Int, port: VerbsPort, peers: Int, sendDepth: Int, receiveDepth: Int, bounceBufferSize: Int) throws(VerbsError) {
        self.index = index
        self.port = port
        self.sendDepth = sendDepth
        self.receiveDepth = receiveDepth
        pd = try port.device.makeProtectionDomain()
        // Every work request of every queue pair may complete at once (a port going down flushes
        // them all): a completion queue smaller than that overruns, which is fatal to it and to
        // every queue pair on it. Refused here, with the device's own limits.
        let n = max(1, peers)
        let limits = try port.device.attributes()
        let sendEntries = n * sendDepth + 64, receiveEntries = n * receiveDepth + 64
        guard max(sendDepth, receiveDepth) <= limits.maxWorkRequests,
              max(sendEntries, receiveEntries) <= limits.maxCompletionQueueEntries else {
            throw .configuration("\(port.name) holds at most \(limits.maxWorkRequests) work requests per queue pair and \(limits.maxCompletionQueueEntries) "
                                 + "completions per queue; \(n) peers with \(sendDepth) writes and \(receiveDepth) receives each need \(max(sendEntries, receiveEntries)) "
                                 + "(lower HFR_MAX_INFLIGHT)")
        }
        sendCQ = try port.device.makeCompletionQueue(depth: sendEntries)
        recvCQ = try port.device.makeCompletionQueue(depth: receiveEntries)
        cache = try RegistrationCache(protectionDomain: pd, access: .rdmaTarget, capacity: 1024,
                                      bounceBufferSize: bounceBufferSize, bounceBufferCount: 8)
    }

    var name: String { port.name }

    /// A reliable-connected queue pair on this port, initialized (INIT) so that receives can be
    /// posted before it connects.
    func makeQueuePair(options: ConnectOptions) throws(VerbsError) -> QueuePair {
        let qp = try pd.makeQueuePair(port: port, sendQueue: sendCQ, receiveQueue: recvCQ,
                                      capabilities: QueuePairCapabilities(sendDepth: sendDepth, receiveDepth: receiveDepth))
        try qp.initialize(access: options.access)
        return qp
    }
}
