import CHFRVerbs
import HFRSystem

/// The sizes a queue pair is created with (`struct ibv_qp_cap`).
public struct QueuePairCapabilities: Equatable, Sendable {
    /// Work requests posted and not yet completed (and, when unsignaled, not yet followed by a
    /// polled signaled completion): the bound on fragments in flight.
    public var sendDepth: Int
    public var receiveDepth: Int
    public var maxScatterGather: Int = 1
    public var maxInlineData: Int = 0

    public init(sendDepth: Int, receiveDepth: Int, maxScatterGather: Int = 1, maxInlineData: Int = 0) {
        self.sendDepth = sendDepth
        self.receiveDepth = receiveDepth
        self.maxScatterGather = maxScatterGather
        self.maxInlineData = maxInlineData
    }
}

/// `enum ibv_qp_state`.
public enum QueuePairState: UInt32, Sendable, CustomStringConvertible {
    case reset = 0, initialized, readyToReceive, readyToSend, sendQueueDrained, sendQueueError, error
    public var description: String { ["RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERROR"][Int(rawValue)] }
}

/// A reliable-connected queue pair (`ibv_qp`, IBV_QPT_RC) on one HCA port.
public final class QueuePair: @unchecked Sendable {
    public let protectionDomain: ProtectionDomain
    public let port: VerbsPort
    public let sendQueue: CompletionQueue
    public let receiveQueue: CompletionQueue
    public let capabilities: QueuePairCapabilities
    /// The `struct ibv_qp *`.
    public let qp: UnsafeMutablePointer<ibv_qp>
    /// What the peer connects to: this port's LID and GID, the QP number, a random first PSN.
    public let localAddress: QueuePairAddress
    let library: VerbsLibrary
    let postSendCall: @convention(c) (UnsafeMutablePointer<ibv_qp>?, UnsafeMutablePointer<ibv_send_wr>?,
                                      UnsafeMutablePointer<UnsafeMutablePointer<ibv_send_wr>?>?) -> Int32
    let postRecvCall: @convention(c) (UnsafeMutablePointer<ibv_qp>?, UnsafeMutablePointer<ibv_recv_wr>?,
                                      UnsafeMutablePointer<UnsafeMutablePointer<ibv_recv_wr>?>?) -> Int32

    public var number: UInt32 { qp.pointee.qp_num }

    init(protectionDomain: ProtectionDomain, port: VerbsPort, sendQueue: CompletionQueue, receiveQueue: CompletionQueue,
         capabilities: QueuePairCapabilities) throws(VerbsError) {
        library = protectionDomain.device.library
        var attr = ibv_qp_init_attr()
        attr.send_cq = sendQueue.cq
        attr.recv_cq = receiveQueue.cq
        attr.qp_type = IBV_QPT_RC
        attr.cap.max_send_wr = UInt32(clamping: capabilities.sendDepth)
        attr.cap.max_recv_wr = UInt32(clamping: capabilities.receiveDepth)
        attr.cap.max_send_sge = UInt32(clamping: capabilities.maxScatterGather)
        attr.cap.max_recv_sge = UInt32(clamping: capabilities.maxScatterGather)
        attr.cap.max_inline_data = UInt32(clamping: capabilities.maxInlineData)
        guard let qp = library.ops.pointee.create_qp!(protectionDomain.pd, &attr) else {
            throw library.failure("ibv_create_qp(\(port.name), send \(capabilities.sendDepth), receive \(capabilities.receiveDepth))", -1)
        }
        self.qp = qp
        self.protectionDomain = protectionDomain
        self.port = port
        self.sendQueue = sendQueue
        self.receiveQueue = receiveQueue
        self.capabilities = QueuePairCapabilities(sendDepth: Int(attr.cap.max_send_wr), receiveDepth: Int(attr.cap.max_recv_wr),
                                                  maxScatterGather: Int(attr.cap.max_send_sge), maxInlineData: Int(attr.cap.max_inline_data))
        postSendCall = library.ops.pointee.post_send!
        postRecvCall = library.ops.pointee.post_recv!
        localAddress = QueuePairAddress(lid: port.attributes.lid, gid: port.gid, queuePairNumber: qp.pointee.qp_num,
                                        packetSequenceNumber: UInt32.random(in: 0..<(1 << 24)), mtu: port.attributes.activeMTU)
    }

    deinit {
        let rc = library.ops.pointee.destroy_qp!(qp)
        if rc != 0 { Log.warn("ibv_destroy_qp(\(port.name)): \(library.failure("ibv_destroy_qp", rc))") }
    }

    /// `ibv_query_qp`: the state the QP is in now (an error completion moves it to ERROR).
    public func state() throws(VerbsError) -> QueuePairState {
        var attr = ibv_qp_attr()
        var initAttr = ibv_qp_init_attr()
        let rc = library.ops.pointee.query_qp!(qp, &attr, Int32(IBV_QP_STATE.rawValue), &initAttr)
        if rc != 0 { throw library.failure("ibv_query_qp(QP \(number))", rc) }
        return QueuePairState(rawValue: attr.qp_state.rawValue) ?? .error
    }

    /// `ibv_modify_qp` with the attributes `mask` (`enum ibv_qp_attr_mask` bits) names.
    public func modify(_ attr: inout ibv_qp_attr, mask: Int32, _ what: String) throws(VerbsError) {
        let rc = library.ops.pointee.modify_qp!(qp, &attr, mask)
        if rc != 0 { throw library.failure("ibv_modify_qp(QP \(number), \(what))", rc) }
    }
}
