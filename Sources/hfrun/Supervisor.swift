import Glibc

/// One started rank: its process (also its process-group leader) and its two output pipes.
final class Rank {
    let index: Int
    let pid: pid_t
    let out: LineStream
    let err: LineStream
    /// The raw wait status once the rank has been reaped.
    var status: Int32?

    init(index: Int, pid: pid_t, out: LineStream, err: LineStream) {
        self.index = index
        self.pid = pid
        self.out = out
        self.err = err
    }

    var isRunning: Bool { status == nil }
    var succeeded: Bool { status == 0 }

    /// "exited with status 3" or "was killed by signal SIGKILL (9)".
    var outcome: String {
        guard let s = status else { return "is still running" }
        let sig = s & 0x7f
        if sig == 0 { return "exited with status \((s >> 8) & 0xff)" }
        return "was killed by signal \(signalName(sig)) (\(sig))" + (s & 0x80 != 0 ? " (core dumped)" : "")
    }
}

/// Runs the poll loop over all ranks' pipes and the signal self-pipe until every rank has
/// been reaped and its output drained, enforcing the grace period, timeout and signal
/// forwarding. Returns hfrun's exit status.
final class Supervisor {
    /// Seconds between SIGTERM and SIGKILL.
    static let killDelay = 3.0
    /// After the last rank is reaped, how long to wait for its pipes to reach EOF.
    static let drainDelay = 2.0

    let options: Options
    let ranks: [Rank]
    let signalFD: Int32
    let stdoutSink: OutputSink
    let stderrSink: OutputSink

    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var firstFailure: Rank?
    private var graceDeadline: Double?
    private var timeoutDeadline: Double?
    private var termSentAt: Double?
    private var killDeadline: Double?
    private var killSent = false
    private var drainDeadline: Double?
    private var timedOut = false
    /// The signal that ended the job (hfrun then dies by it, see `dieBy`).
    private(set) var interruptedBy: Int32?
    /// After SIGKILL, how long to wait for ranks to be reaped before giving up on them (a process
    /// in uninterruptible sleep, in a driver, outlives SIGKILL).
    static let abandonDelay = 5.0
    private var abandonDeadline: Double?

    init(options: Options, ranks: [Rank], signalFD: Int32, stdoutSink: OutputSink, stderrSink: OutputSink,
         startTime: Double) {
        self.options = options
        self.ranks = ranks
        self.signalFD = signalFD
        self.stdoutSink = stdoutSink
        self.stderrSink = stderrSink
        if let t = options.timeout { timeoutDeadline = startTime + t }
    }

    func run() -> Int32 {
        var pfds: [pollfd] = []
        while true {
            let now = monotonicNow()
            let streams = ranks.flatMap { [$0.out, $0.err] }.filter { $0.isOpen }
            if !ranks.contains(where: { $0.isRunning }) {
                if streams.isEmpty { break }
                if drainDeadline == nil { drainDeadline = now + Supervisor.drainDelay }
                if let d = drainDeadline, now >= d {
                    for s in streams { s.finish() }
                    break
                }
            }

            pfds.removeAll(keepingCapacity: true)
            pfds.append(pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0))
            // Rank output is read only while hfrun's own output keeps up (see OutputSink).
            let sinks = [stdoutSink, stderrSink]
            let reading = sinks.allSatisfy { $0.queuedBytes < OutputSink.backlogLimit }
            for s in streams { pfds.append(pollfd(fd: s.fd, events: reading ? Int16(POLLIN) : 0, revents: 0)) }
            for sink in sinks where sink.queuedBytes > 0 { pfds.append(pollfd(fd: sink.fd, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&pfds, nfds_t(pfds.count), pollTimeoutMilliseconds(now: now))
            if ready < 0 && errno != EINTR {
                stderrSink.line("hfrun: poll failed: \(String(cString: strerror(errno))); terminating ranks")
                terminate(now: monotonicNow())
                killAll()
            }
            if ready > 0 {
                if pfds[0].revents != 0 { handleSignals(drainSignals(signalFD)) }
                for (i, s) in streams.enumerated() where pfds[i + 1].revents != 0 {
                    s.readOnce(buffer: &buffer)
                }
                for sink in sinks { sink.pump() }
            }
            reapExited()
            checkDeadlines(now: monotonicNow())
        }
        return finalStatus()
    }

    // MARK: - Events

    /// Reaps every rank that has exited. While the exited rank is still a zombie (so its pid,
    /// which is its process-group id, cannot be reused), anything left in its process group
    /// is SIGKILLed: no orphan of a rank outlives it.
    private func reapExited() {
        for rank in ranks where rank.isRunning {
            var info = siginfo_t()
            let rc = waitid(P_PID, id_t(rank.pid), &info, WEXITED | WNOHANG | WNOWAIT)
            if rc != 0 {
                if errno == ECHILD { rank.status = 0x7f00 } // cannot happen; treat as failure
                continue
            }
            if info.si_signo != SIGCHLD { continue }     // still running
            _ = kill(-rank.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(rank.pid, &status, 0) < 0 && errno == EINTR {}
            rank.status = status
            rank.out.drainAvailable(buffer: &buffer)
            rank.err.drainAvailable(buffer: &buffer)
            if !rank.succeeded { rankFailed(rank) }
        }
    }

    private func rankFailed(_ rank: Rank) {
        stderrSink.line("hfrun: rank \(rank.index) (pid \(rank.pid)) \(rank.outcome)")
        // Failures caused by hfrun's own SIGTERM/SIGKILL (timeout, interrupt) are not "the" failure.
        guard firstFailure == nil, termSentAt == nil else { return }
        firstFailure = rank
        let others = runningList()
        if !others.isEmpty {
            stderrSink.line("hfrun: waiting up to \(formatSeconds(options.grace)) s for ranks \(others) to exit")
            graceDeadline = monotonicNow() + options.grace
        }
    }

    private func handleSignals(_ signals: [Int32]) {
        for sig in signals where sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT {
            if interruptedBy == nil {
                interruptedBy = sig
                stderrSink.line("hfrun: received \(signalName(sig)); sending SIGTERM to ranks \(runningList())")
                terminate(now: monotonicNow())
            } else if !killSent {
                stderrSink.line("hfrun: received \(signalName(sig)) again; sending SIGKILL to ranks \(runningList())")
                killAll()
            }
        }
    }

    private func checkDeadlines(now: Double) {
        let anyRunning = ranks.contains { $0.isRunning }
        if let d = timeoutDeadline, !timedOut, now >= d, anyRunning {
            timedOut = true
            stderrSink.line("hfrun: timeout after \(formatSeconds(options.timeout ?? 0)) s; ranks still running: \(runningList())")
            terminate(now: now)
        }
        if let g = graceDeadline, termSentAt == nil, now >= g, anyRunning {
            stderrSink.line("hfrun: grace period over; sending SIGTERM to ranks \(runningList())")
            terminate(now: now)
        }
        if let k = killDeadline, !killSent, now >= k, anyRunning {
            stderrSink.line("hfrun: sending SIGKILL to ranks \(runningList())")
            killAll()
        }
        if let a = abandonDeadline, now >= a, anyRunning {
            for rank in ranks where rank.isRunning {
                stderrSink.line("hfrun: rank \(rank.index) (pid \(rank.pid)) did not exit \(formatSeconds(Supervisor.abandonDelay)) s after SIGKILL; leaving it")
                rank.status = 0x7f00 | SIGKILL
                rank.out.finish()
                rank.err.finish()
            }
        }
    }

    // MARK: - Signalling ranks

    /// Sends SIGTERM to every running rank's process group (once) and arms the SIGKILL timer.
    private func terminate(now: Double) {
        guard termSentAt == nil else { return }
        termSentAt = now
        killDeadline = now + Supervisor.killDelay
        for rank in ranks where rank.isRunning { _ = kill(-rank.pid, SIGTERM) }
    }

    private func killAll() {
        killSent = true
        abandonDeadline = monotonicNow() + Supervisor.abandonDelay
        for rank in ranks where rank.isRunning { _ = kill(-rank.pid, SIGKILL) }
    }

    // MARK: - Helpers

    private func pollTimeoutMilliseconds(now: Double) -> Int32 {
        var next = now + 1.0   // wake at least once a second as a safety net
        if let d = timeoutDeadline, !timedOut { next = min(next, d) }
        if let g = graceDeadline, termSentAt == nil { next = min(next, g) }
        if let k = killDeadline, !killSent { next = min(next, k) }
        if let a = abandonDeadline { next = min(next, a) }
        if let d = drainDeadline { next = min(next, d) }
        return Int32(max(0, min(1000, ((next - now) * 1000).rounded(.up))))
    }

    private func runningList() -> String {
        ranks.filter { $0.isRunning }.map { String($0.index) }.joined(separator: ",")
    }

    private func finalStatus() -> Int32 {
        if let f = firstFailure, interruptedBy != nil || timedOut {
            stderrSink.line("hfrun: job failed: first failure was rank \(f.index) (pid \(f.pid) \(f.outcome))")
        }
        if let sig = interruptedBy {
            stderrSink.line("hfrun: interrupted by \(signalName(sig))")
            return 128 + sig
        }
        if timedOut { return 124 }
        if let f = firstFailure {
            stderrSink.line("hfrun: job failed: first failure was rank \(f.index) (pid \(f.pid) \(f.outcome))")
            return 1
        }
        if let r = ranks.first(where: { !$0.succeeded }) {
            stderrSink.line("hfrun: job failed: rank \(r.index) (pid \(r.pid)) \(r.outcome)")
            return 1
        }
        return 0
    }
}

/// "10", "2.5": seconds as given on the command line, without a pointless ".0".
func formatSeconds(_ s: Double) -> String {
    s == s.rounded() && abs(s) < 1e15 ? String(Int(s)) : String(s)
}
