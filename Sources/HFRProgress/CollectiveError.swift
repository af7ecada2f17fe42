/// Why a collective did not complete. Every case that involves another rank names it.
public enum CollectiveError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The connection to `rank` failed (the process died, the network broke, or it closed early).
    case peerFailed(rank: Int, reason: String)
    /// Another rank reported that `rank` failed; `reportedBy` is the rank that told us.
    case remoteAbort(rank: Int, reportedBy: Int, reason: String, code: UInt64)
    /// The collective did not finish within `HFR_TIMEOUT`; `waitingFor` are the ranks it still
    /// had messages outstanding with.
    case timeout(seconds: Double, operation: String, waitingFor: [Int])
    /// The ranks called the collective with different arguments (count, type, root, ...).
    case mismatch(String)
    /// A peer sent something that violates the protocol.
    case protocolViolation(rank: Int, reason: String)
    /// The communicator was aborted or destroyed.
    case aborted(String)
    /// A local system call failed.
    case system(String)

    public var description: String {
        switch self {
        case let .peerFailed(rank, reason): return "rank \(rank) failed: \(reason)"
        case let .remoteAbort(rank, by, reason, _):
            return rank >= 0 ? "rank \(rank) failed (reported by rank \(by)): \(reason)" : "rank \(by) aborted: \(reason)"
        case let .timeout(s, op, ranks):
            let who = ranks.isEmpty ? "" : "; still waiting for rank" + (ranks.count > 1 ? "s " : " ") + ranks.map(String.init).joined(separator: ", ")
            return "\(op) timed out after \(s) s (HFR_TIMEOUT)\(who)"
        case let .mismatch(s): return s
        case let .protocolViolation(rank, reason): return "protocol violation by rank \(rank): \(reason)"
        case let .aborted(s): return s
        case let .system(s): return s
        }
    }

    /// Reason codes carried by abort frames, so that the ranks that hear of a failure second-hand can say what kind it was.
    var abortCode: UInt64 {
        switch self {
        case .peerFailed: return 1
        case let .remoteAbort(_, _, _, code): return code
        case .timeout: return 3
        case .mismatch: return 4
        case .protocolViolation: return 5
        case .aborted: return 6
        case .system: return 7
        }
    }

    static func describeAbortCode(_ code: UInt64) -> String {
        switch code {
        case 1: return "connection lost"
        case 3: return "timed out"
        case 4: return "ranks called the collective with different arguments"
        case 5: return "protocol violation"
        case 6: return "communicator aborted"
        default: return "failure"
        }
    }

    /// The rank this error is about, when there is one.
    public var failedRank: Int? {
        switch self {
        case let .peerFailed(rank, _): return rank
        case let .remoteAbort(rank, by, _, _): return rank >= 0 ? rank : by
        case let .protocolViolation(rank, _): return rank
        default: return nil
        }
    }
}
