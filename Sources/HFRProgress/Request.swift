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

    /// Memory the collective uses that no caller owns (a barrier's bytes): it goes with the
    /// request, which the engine holds until the collective is over.
    public var keepAlive: AnyObject?

    /// Waits at most `nanoseconds` for the collective: true when it completed (throws its error
    /// if it failed), false when it is still running (the engine goes on with it). For callers
    /// that must come back now and then, such as Python, which handles Ctrl-C only between calls.
    public func wait(forNanoseconds nanoseconds: UInt64) throws(CollectiveError) -> Bool {
        let deadline = MonotonicClock.nanoseconds() &+ nanoseconds
        if !test(), let engine { _ = engine.drive(until: self, deadline: deadline) }
        completion.lock()
        while !finished {
            if !completion.wait(untilNanoseconds: deadline), MonotonicClock.nanoseconds() >= deadline {
                completion.unlock()
                return false
            }
        }
        let e = error
        completion.unlock()
        if let e { throw e }
        return true
    }

    /// Blocks until the collective completes; throws its error. The engine's own timers fail a
    /// collective `HFR_TIMEOUT` after it started; one queued behind others starts when they end.
    /// So the wait gives up only on an engine whose loop stood still for `HFR_TIMEOUT` plus a
    /// grace period: it fails the communicator with a timeout, which releases the collective's
    /// buffers, and throws once that is done (or after a last grace period, if the loop is stuck
    /// for good: then the caller must not free the buffers).
    public func wait() throws(CollectiveError) {
        if !test(), let engine { _ = engine.drive(until: self) }
        let slice = timeoutNanoseconds &+ 5_000_000_000
        var deadline = MonotonicClock.nanoseconds() &+ slice
        var beat = engine?.heartbeat.load(ordering: .relaxed)
        var failing = false
        completion.lock()
        while !finished {
            if !completion.wait(untilNanoseconds: deadline), MonotonicClock.nanoseconds() >= deadline {
                let now = engine?.heartbeat.load(ordering: .relaxed)
                if !failing && now != beat {
                    beat = now  // slow, not stuck
                } else if !failing, let engine {
                    failing = true
                    completion.unlock()
                    engine.failFromOutside(.timeout(seconds: Double(timeoutNanoseconds) / 1e9, operation: name, waitingFor: []))
                    completion.lock()
                } else {
                    completion.unlock()
                    throw .timeout(seconds: Double(timeoutNanoseconds) / 1e9, operation: name, waitingFor: [])
                }
                deadline = MonotonicClock.nanoseconds() &+ (failing ? 5_000_000_000 : slice)
            }
        }
        let e = error
        completion.unlock()
        if let e { throw e }
    }
}
