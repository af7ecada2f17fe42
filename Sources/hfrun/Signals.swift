import Glibc

/// Write end of the self-pipe the signal handler writes signal numbers into; the main loop
/// polls the read end. Set once by `installSignalHandlers` before any handler can run.
var signalWakeWriteFD: Int32 = -1

/// Async-signal-safe handler: records the signal number in the self-pipe.
private func recordSignal(_ sig: Int32) {
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: sig)
    _ = write(signalWakeWriteFD, &byte, 1)
    errno = saved
}

/// Signals hfrun was started with ignored (`nohup` ignores SIGHUP, a shell's background job
/// SIGINT and SIGQUIT): hfrun leaves them ignored, and so do its ranks.
var signalsIgnoredAtStart: Set<Int32> = []

/// Catches SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGCHLD through a non-blocking self-pipe, except
/// those hfrun was started with ignored, and ignores SIGPIPE (a closed stdout must not kill hfrun
/// before it has cleaned up its ranks). Returns the read end of the self-pipe, or nil with errno set.
func installSignalHandlers() -> Int32? {
    guard case .success(let (readEnd, writeEnd)) = makePipe(nonBlocking: true) else { return nil }
    signalWakeWriteFD = writeEnd
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD] {
        var old = sigaction()
        sigaction(sig, nil, &old)
        if sig != SIGCHLD && unsafeBitCast(old.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) {
            signalsIgnoredAtStart.insert(sig)
            continue
        }
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = recordSignal
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = SA_RESTART
        sigaction(sig, &sa, nil)
    }
    signal(SIGPIPE, SIG_IGN)
    return readEnd
}

/// Ends hfrun by the signal that interrupted it, as a program killed by it would, so that a shell
/// loop around hfrun stops on Ctrl-C too (its ranks are gone by now).
func dieBy(_ sig: Int32) -> Never {
    stdoutSink.flush(seconds: 5)
    stderrSink.flush(seconds: 5)
    signal(sig, SIG_DFL)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, sig)
    sigprocmask(SIG_UNBLOCK, &set, nil)
    raise(sig)
    exit(128 + sig)
}

/// Reads every signal number queued in the self-pipe.
func drainSignals(_ fd: Int32) -> [Int32] {
    var result: [Int32] = []
    var buf = [UInt8](repeating: 0, count: 64)
    while true {
        let n = read(fd, &buf, buf.count)
        if n > 0 { result += buf[0..<n].map { Int32($0) }; continue }
        if n < 0 && errno == EINTR { continue }
        return result
    }
}

/// The conventional name of a Linux signal, e.g. "SIGKILL"; "SIG<n>" for unknown numbers.
func signalName(_ sig: Int32) -> String {
    let names = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
                 "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
                 "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU",
                 "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",
                 "SIGPWR", "SIGSYS"]
    if sig >= 1 && Int(sig) <= names.count { return names[Int(sig) - 1] }
    if sig >= 34 && sig <= 64 { return "SIGRTMIN+\(sig - 34)" }
    return "SIG\(sig)"
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
