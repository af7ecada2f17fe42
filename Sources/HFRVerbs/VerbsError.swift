import CHFRVerbs
import HFRSystem

/// A verbs failure, worded so that the message alone says what went wrong.
public enum VerbsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `dlopen("libibverbs.so.1")` failed; the text says why (dlerror).
    case libraryNotFound(String)
    /// libibverbs.so.1 lacks a call the transport needs.
    case missingSymbol(String)
    /// `ibv_get_device_list` failed or found nothing; the text starts "no RDMA device".
    case noDevice(String)
    /// There are devices, but no ACTIVE port the selection allows; the text names each port's state.
    case noActivePort(String)
    /// An `HFR_IB_*` variable with a value that cannot be used.
    case configuration(String)
    /// The software verbs device cannot work on this machine (no /dev/shm, ptrace forbidden).
    case unavailable(String)
    /// An argument outside what the call accepts (checked before the call is made).
    case invalidArgument(String)
    /// A verbs call failed: its name, the errno, and the soft device's sentence about it (empty
    /// for libibverbs).
    case call(String, Errno, detail: String)
    /// A work request completed with an error status.
    case completion(CompletionFailure)
    /// The completion queue received more completions than its depth and is unusable.
    case completionQueueOverrun(depth: Int, detail: String)

    public var description: String {
        switch self {
        case .libraryNotFound(let s), .missingSymbol(let s), .noDevice(let s), .noActivePort(let s),
             .configuration(let s), .unavailable(let s), .invalidArgument(let s):
            return s
        case .call(let call, let errno, let detail):
            return detail.isEmpty ? "\(call): \(errno)" : "\(call): \(errno) (\(detail))"
        case .completion(let failure):
            return failure.description
        case .completionQueueOverrun(let depth, let detail):
            let base = "completion queue of depth \(depth) overran: more completions were due than it holds"
            return detail.isEmpty ? base : "\(base) (\(detail))"
        }
    }
}

/// A work completion with an error status, as `ibv_wc_status_str` words it.
public struct CompletionFailure: Equatable, Sendable, CustomStringConvertible {
    public let status: CompletionStatus
    /// `ibv_wc_status_str(status)`, e.g. "remote access error".
    public let statusText: String
    public let workRequestID: UInt64
    public let queuePairNumber: UInt32
    public let vendorError: UInt32

    public init(status: CompletionStatus, statusText: String, workRequestID: UInt64, queuePairNumber: UInt32, vendorError: UInt32) {
        self.status = status
        self.statusText = statusText
        self.workRequestID = workRequestID
        self.queuePairNumber = queuePairNumber
        self.vendorError = vendorError
    }

    public var description: String {
        "work request \(workRequestID) on QP \(queuePairNumber) failed: \(statusText) (status \(status.rawValue)"
            + (vendorError != 0 ? ", vendor error 0x\(String(vendorError, radix: 16)))" : ")")
    }
}
