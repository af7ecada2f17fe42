import HFRProgress

/// Result codes, with the C API's values (`hfrResult_t`, NCCL's numbering).
public enum HFRResult: Int32, Sendable {
    case success = 0
    case systemError = 2
    case internalError = 3
    case invalidArgument = 4
    case invalidUsage = 5
    case remoteError = 6
    case inProgress = 7
    case timeout = 8
    case aborted = 9
}

/// Every error HFReduce reports: a code and a sentence that names what was wrong (the argument
/// and its value, the rank that failed, the setting that does not parse).
public struct HFRError: Error, CustomStringConvertible, Sendable {
    public let code: HFRResult
    public let message: String
    /// The rank the error is about, when it is about one (a peer that failed).
    public let rank: Int?

    public init(_ code: HFRResult, _ message: String, rank: Int? = nil) {
        self.code = code; self.message = message; self.rank = rank
    }

    public var description: String { message }

    static func invalidArgument(_ m: String) -> HFRError { HFRError(.invalidArgument, m) }
    static func invalidUsage(_ m: String) -> HFRError { HFRError(.invalidUsage, m) }

    init(_ e: CollectiveError) {
        switch e {
        case .peerFailed, .remoteAbort, .protocolViolation: self.init(.remoteError, e.description, rank: e.failedRank)
        case .timeout: self.init(.timeout, e.description)
        case .mismatch: self.init(.invalidUsage, e.description)
        case .aborted: self.init(.aborted, e.description)
        case .system: self.init(.systemError, e.description)
        }
    }
}
