import HFRSystem

/// The handle of one submitted collective. Completed by the progress thread, waited for by the caller.
public final class Request: @unchecked Sendable {
    public let sequence: UInt32
    /// What was submitted ("all-to-all"); `name` adds the sequence number, built only when a
    /// message needs it (string interpolation on every call would allocate).
    public let operation: String
    /// Sends and receives between two ranks are numbered per peer and direction, apart from the
    /// collectives (the top bit of `sequence` marks them).
    public var name: String { "\(operation) #\(sequence & ~Engine.pointToPointBit)" }
    let completion: ConditionLock
    // Guarded by `completion`.
    var finished = false
    var error: CollectiveError?
    let timeoutNanoseconds: UInt64

    /// The engine, so that a blocking wait can drive it; a request keeps its engine alive.
    var engine: Engine?
    /// Waited for asleep: its caller sleeps instead of driving the engine, and it does not keep the
    /// progress thread polling (see `EngineConfiguration.sleepMessageBytes`).
    var sleeps = false

    init(sequence: UInt32, operation: String, completion: ConditionLock, timeoutNanoseconds: UInt64) {
        self.sequence = sequence; self.operation = operation; self.completion = completion
        self.timeoutNanoseconds = timeoutNanoseconds
    }

    /// True when the collective has completed (or failed: then `wait` throws its error).
    public func test() -> Bool {
        completion.withLock { finished }
    }

    /// Blocks until the collective completes; throws its error, or a timeout when the progress
    /// engine has not finished it within `HFR_TIMEOUT` plus a grace period.
    public func wait() throws(CollectiveError) {
        if !test(), let engine { _ = engine.drive(until: self) }
        let start = MonotonicClock.nanoseconds()
        let deadline = start &+ timeoutNanoseconds &+ 5_000_000_000
        completion.lock()
        while !finished {
            if !completion.wait(untilNanoseconds: deadline), MonotonicClock.nanoseconds() >= deadline {
                completion.unlock()
                throw .timeout(seconds: Double(timeoutNanoseconds) / 1e9, operation: name, waitingFor: [])
            }
        }
        let e = error
        completion.unlock()
        if let e { throw e }
    }
}
