import HFRSystem
import HFRKernels

/// A reduction handed to a worker thread.
struct ReductionJob {
    var kind: UInt8  // 0 combine, 1 copy (non-temporal stores from `streamingCopyBytes`), 2 scale
    var dst: UnsafeMutableRawPointer
    var a: UnsafeRawPointer
    var b: UnsafeRawPointer
    var length: Int
    var type: DataType
    var op: ReduceOp
    var ranks: Int
    var cookie: UInt64
    var streamingCopyBytes = 0

    @inline(__always) func run() {
        switch kind {
        case 0: ReductionKernels.combine(dst, a, b, count: length, type: type, op: op)
        case 1: StreamingCopy.copy(dst, from: a, bytes: length, threshold: streamingCopyBytes)
        default: ReductionKernels.finishAverage(dst, count: length, type: type, ranks: ranks)
        }
    }
}

/// CPU reduction threads: the progress thread hands them large reductions, so that the network
/// keeps moving the next chunks while this one is added; finished jobs come back through a
/// queue and an eventfd that wakes the progress thread.
final class ReductionWorkers {
    private let lock = ConditionLock()
    private var jobs: [ReductionJob] = []
    private var jobHead = 0
    private var done: [UInt64] = []
    private var stopping = false
    /// Jobs taken by a thread and not finished.
    private var running = 0
    /// Set while `cancelAndWait` waits for `running` to reach 0.
    private var cancelling = false
    private var threads: [PosixThread] = []
    private let wake: EventFD

    /// Starts `count` threads; each first calls `pin` with its index (placement on the NIC's node).
    init(count: Int, wake: EventFD, name: String, pin: @escaping @Sendable (Int) -> Void = { _ in }) throws {
        self.wake = wake
        jobs.reserveCapacity(1024)
        done.reserveCapacity(1024)
        for i in 0..<count {
            threads.append(try PosixThread(name: "\(name)-red\(i)") { [unowned self] in pin(i); self.loop() })
        }
    }

    var isEmpty: Bool { threads.isEmpty }

    func submit(_ job: ReductionJob) {
        lock.lock()
        jobs.append(job)
        lock.unlock()
        lock.broadcast()
    }

    /// Moves finished cookies into `into` (progress thread).
    func collect(into out: inout [UInt64]) {
        lock.lock()
        if !done.isEmpty { out.append(contentsOf: done); done.removeAll(keepingCapacity: true) }
        lock.unlock()
    }

    private func loop() {
        lock.lock()
        while true {
            while jobHead == jobs.count && !stopping {
                lock.wait(untilNanoseconds: MonotonicClock.nanoseconds() + 1_000_000_000)
            }
            if stopping && jobHead == jobs.count { break }
            let job = jobs[jobHead]
            jobHead += 1
            if jobHead == jobs.count { jobs.removeAll(keepingCapacity: true); jobHead = 0 }
            running += 1
            lock.unlock()
            job.run()
            lock.lock()
            done.append(job.cookie)
            running -= 1
            if running == 0 && cancelling { lock.broadcast() }
            lock.unlock()
            wake.signal()
            lock.lock()
        }
        lock.unlock()
    }

    /// Drops the jobs no thread has started and waits for the ones running (after a failure,
    /// before it is published: once the caller sees it, it may free the buffers they write). A
    /// job is one chunk's reduction, so the wait is short and does not depend on any peer.
    func cancelAndWait() {
        lock.lock()
        jobs.removeAll(keepingCapacity: true)
        jobHead = 0
        cancelling = true
        while running > 0 { _ = lock.wait(untilNanoseconds: MonotonicClock.nanoseconds() &+ 10_000_000) }
        cancelling = false
        lock.unlock()
    }

    func stop() {
        lock.withLock { stopping = true }
        lock.broadcast()
        for t in threads { t.join() }
        threads.removeAll()
    }
}
