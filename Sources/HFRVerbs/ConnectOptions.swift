import HFRSystem

/// The transport parameters of a queue pair's connection.
public struct ConnectOptions: Equatable, Sendable {
    /// Local ACK timeout, 4.096 us x 2^timeout per try (`HFR_IB_TIMEOUT`, 1...31; NCCL's default 18).
    public var timeout: UInt8 = 18
    /// Retransmissions before IBV_WC_RETRY_EXC_ERR (`HFR_IB_RETRY_CNT`, 0...7).
    public var retryCount: UInt8 = 7
    /// Receiver-not-ready retries; 7 waits for a receive for ever.
    public var rnrRetry: UInt8 = 7
    /// The RNR timer code (12: 0.64 ms) the responder asks the requester to wait.
    public var minRnrTimer: UInt8 = 12
    public var serviceLevel: UInt8 = 0
    public var trafficClass: UInt8 = 0
    /// What the peer may do to memory through this QP.
    public var access: MemoryAccess = .rdmaTarget

    public init() {}

    /// The defaults, with `HFR_IB_TIMEOUT` and `HFR_IB_RETRY_CNT` applied.
    public static func fromEnvironment() throws(VerbsError) -> ConnectOptions {
        var o = ConnectOptions()
        if let s = Environment.string("HFR_IB_TIMEOUT") {
            guard let v = UInt8(s), (1...31).contains(v) else { throw .configuration("HFR_IB_TIMEOUT=\(s) is not between 1 and 31") }
            o.timeout = v
        }
        if let s = Environment.string("HFR_IB_RETRY_CNT") {
            guard let v = UInt8(s), v <= 7 else { throw .configuration("HFR_IB_RETRY_CNT=\(s) is not between 0 and 7") }
            o.retryCount = v
        }
        return o
    }
}
