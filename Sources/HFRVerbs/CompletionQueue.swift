import CHFRVerbs
import HFRSystem

/// A completion queue (`ibv_cq`) with a preallocated array of work completions: `poll()` fills
/// it and `self[i]` reads entry i, with no allocation.
public final class CompletionQueue: @unchecked Sendable {
    public let device: VerbsDevice
    /// The `struct ibv_cq *`.
    public let cq: UnsafeMutablePointer<ibv_cq>
    /// The number of completions the queue holds (`cqe`, as the device granted it).
    public let depth: Int
    /// The most completions one `poll()` returns.
    public let batch: Int
    private let entries: UnsafeMutablePointer<ibv_wc>
    private let pollCQ: @convention(c) (UnsafeMutablePointer<ibv_cq>?, Int32, UnsafeMutablePointer<ibv_wc>?) -> Int32

    init(device: VerbsDevice, cq: UnsafeMutablePointer<ibv_cq>, batch: Int) {
        self.device = device
        self.cq = cq
        self.batch = batch
        depth = Int(cq.pointee.cqe)
        entries = .allocate(capacity: batch)
        entries.initialize(repeating: ibv_wc(), count: batch)
        pollCQ = device.library.ops.pointee.poll_cq!
    }

    deinit {
        let rc = device.library.ops.pointee.destroy_cq!(cq)
        if rc != 0 { Log.warn("ibv_destroy_cq(\(device.name)): \(device.library.failure("ibv_destroy_cq", rc))") }
        entries.deallocate()
    }

    /// `ibv_poll_cq` for up to `batch` completions; returns how many, read with `self[i]`.
    /// Throws when the queue itself failed (an overrun), not for completions with an error
    /// status: those are entries like the others (see `WorkCompletion.isSuccess`, `failure(_:)`).
    @inline(__always) public func poll() throws(VerbsError) -> Int {
        let n = pollCQ(cq, Int32(batch), entries)
        if n < 0 { throw pollFailure(n) }
        return Int(n)
    }

    @inline(__always) public subscript(i: Int) -> WorkCompletion {
        precondition(i >= 0 && i < batch)
        return WorkCompletion(entries[i])
    }

    private func pollFailure(_ result: Int32) -> VerbsError {
        let errno = Errno.current
        let library = device.library
        if errno.rawValue == EOVERFLOW && library.kind == .soft {
            return .completionQueueOverrun(depth: depth, detail: String(cString: hfr_verbs_last_error()))
        }
        return .call("ibv_poll_cq(\(device.name))", errno, detail: "returned \(result)")
    }

    /// The error for a completion with an error status, with `ibv_wc_status_str` in it.
    public func failure(_ completion: WorkCompletion) -> VerbsError {
        .completion(CompletionFailure(status: completion.status, statusText: device.library.statusText(completion.status),
                                      workRequestID: completion.workRequestID, queuePairNumber: completion.queuePairNumber,
                                      vendorError: completion.vendorError))
    }
}

/// `enum ibv_wc_status`.
public struct CompletionStatus: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let success = CompletionStatus(rawValue: IBV_WC_SUCCESS.rawValue)
    public static let localLengthError = CompletionStatus(rawValue: IBV_WC_LOC_LEN_ERR.rawValue)
    public static let localProtectionError = CompletionStatus(rawValue: IBV_WC_LOC_PROT_ERR.rawValue)
    public static let flushed = CompletionStatus(rawValue: IBV_WC_WR_FLUSH_ERR.rawValue)
    public static let remoteInvalidRequest = CompletionStatus(rawValue: IBV_WC_REM_INV_REQ_ERR.rawValue)
    public static let remoteAccessError = CompletionStatus(rawValue: IBV_WC_REM_ACCESS_ERR.rawValue)
    public static let remoteOperationError = CompletionStatus(rawValue: IBV_WC_REM_OP_ERR.rawValue)
    public static let retryExceeded = CompletionStatus(rawValue: IBV_WC_RETRY_EXC_ERR.rawValue)
    public static let receiverNotReadyRetryExceeded = CompletionStatus(rawValue: IBV_WC_RNR_RETRY_EXC_ERR.rawValue)
}

/// `enum ibv_wc_opcode`.
public struct CompletionOpcode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let send = CompletionOpcode(rawValue: IBV_WC_SEND.rawValue)
    public static let rdmaWrite = CompletionOpcode(rawValue: IBV_WC_RDMA_WRITE.rawValue)
    public static let receive = CompletionOpcode(rawValue: IBV_WC_RECV.rawValue)
    public static let receiveRDMAWithImmediate = CompletionOpcode(rawValue: IBV_WC_RECV_RDMA_WITH_IMM.rawValue)
}

/// One work completion (`struct ibv_wc`). For an error status only the work request ID, the
/// status and the QP number are meaningful, as with the real thing.
public struct WorkCompletion: Sendable {
    public let raw: ibv_wc
    @inline(__always) init(_ raw: ibv_wc) { self.raw = raw }

    public var workRequestID: UInt64 { raw.wr_id }
    public var status: CompletionStatus { CompletionStatus(rawValue: raw.status.rawValue) }
    public var isSuccess: Bool { raw.status == IBV_WC_SUCCESS }
    public var opcode: CompletionOpcode { CompletionOpcode(rawValue: raw.opcode.rawValue) }
    /// Bytes received (for receives and writes with immediate).
    public var byteLength: Int { Int(raw.byte_len) }
    /// The immediate of a write-with-immediate or send-with-immediate, in host order (it travels
    /// in network order, as `postWriteWithImmediate` put it).
    public var immediate: UInt32? {
        raw.wc_flags & UInt32(IBV_WC_WITH_IMM.rawValue) != 0 ? UInt32(bigEndian: raw.imm_data) : nil
    }
    public var queuePairNumber: UInt32 { raw.qp_num }
    public var vendorError: UInt32 { raw.vendor_err }
}
