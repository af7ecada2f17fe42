import Glibc

/// hfrun: starts N ranks of a program on this machine and supervises them (see `usageText`).

ensureStandardDescriptors()
let stdoutSink = OutputSink(fd: 1)
let stderrSink = OutputSink(fd: 2)
// What is still queued goes out at exit, if its reader takes it within a few seconds.
atexit {
    stdoutSink.flush(seconds: 5)
    stderrSink.flush(seconds: 5)
}

let options: Options
switch parseCommandLine(Array(CommandLine.arguments.dropFirst())) {
case .success(.help):
    stdoutSink.write(Array(usageText.utf8) + [0x0A])
    exit(0)
case .success(.run(let o)):
    options = o
case .failure(let e):
    stderrSink.line("hfrun: \(e.message)")
    stderrSink.write(Array(usageText.utf8) + [0x0A])
    exit(2)
}

/// Prints `hfrun: cannot execute NAME: <strerror>` and exits 127.
func cannotExecute(_ name: String, _ error: SpawnError) -> Never {
    stderrSink.line("hfrun: cannot execute \(name): \(error.description)")
    exit(127)
}

let programPath: String
switch resolveProgram(options.program) {
case .success(let p): programPath = p
case .failure(let e): cannotExecute(options.program, e)
}

let masterPort: Int
if let p = options.port {
    masterPort = p
} else if let p = findFreePort() {
    masterPort = p
} else {
    stderrSink.line("hfrun: cannot find a free TCP port on 127.0.0.1: \(String(cString: strerror(errno))); use --port")
    exit(1)
}

let job = JobEnvironment(worldSize: options.nproc, masterAddr: options.masterAddr ?? "127.0.0.1",
                         masterPort: masterPort, token: jobToken())

guard let signalFD = installSignalHandlers() else {
    stderrSink.line("hfrun: cannot create signal pipe: \(String(cString: strerror(errno)))")
    exit(1)
}

/// Kills and reaps the ranks started so far (used when a later rank cannot be started).
func abortStarted(_ started: [Rank]) {
    for r in started { _ = kill(-r.pid, SIGKILL) }
    for r in started {
        var status: Int32 = 0
        while waitpid(r.pid, &status, 0) < 0 && errno == EINTR {}
        r.out.finish()
        r.err.finish()
    }
}

let deathWrapper = parentDeathWrapper()
let startTime = monotonicNow()
var ranks: [Rank] = []
for r in 0..<options.nproc {
    guard case .success(let (outRead, outWrite)) = makePipe(),
          case .success(let (errRead, errWrite)) = makePipe() else {
        let e = SpawnError(code: errno)
        abortStarted(ranks)
        stderrSink.line("hfrun: cannot create pipes for rank \(r): \(e.description)")
        exit(1)
    }
    let result: Result<pid_t, SpawnError>
    var failedName = options.program
    if options.netns.isEmpty {
        let argv = (deathWrapper.map { $0 + [programPath] } ?? [options.program]) + options.arguments
        result = spawn(path: deathWrapper?[0] ?? programPath, searchPATH: false, argv: argv,
                       environment: job.fullEnvironment(rank: r), stdoutFD: outWrite, stderrFD: errWrite)
    } else {
        let ns = options.netns[r % options.netns.count]
        // `ip netns exec` and `env` exec in place, so the wrapper's setting reaches the program.
        let argv = (deathWrapper ?? []) + ["ip", "netns", "exec", ns, "env"] + job.variables(rank: r) + [programPath] + options.arguments
        failedName = "ip"
        result = spawn(path: argv[0], searchPATH: true, argv: argv,
                       environment: job.fullEnvironment(rank: r), stdoutFD: outWrite, stderrFD: errWrite)
    }
    close(outWrite)
    close(errWrite)
    switch result {
    case .success(let pid):
        ranks.append(Rank(index: r, pid: pid,
                          out: LineStream(fd: outRead, rank: r, sink: stdoutSink),
                          err: LineStream(fd: errRead, rank: r, sink: stderrSink)))
    case .failure(let e):
        close(outRead)
        close(errRead)
        abortStarted(ranks)
        if r == 0 || (e.code != EAGAIN && e.code != ENOMEM) { cannotExecute(failedName, e) }
        // The program ran for the ranks before: this is the machine's limit, not the program.
        stderrSink.line("hfrun: cannot start rank \(r) of \(options.nproc) (\(failedName)): \(e.description); ranks 0-\(r - 1) were stopped")
        exit(1)
    }
}

let supervisor = Supervisor(options: options, ranks: ranks, signalFD: signalFD,
                            stdoutSink: stdoutSink, stderrSink: stderrSink, startTime: startTime)
let status = supervisor.run()
if let sig = supervisor.interruptedBy { dieBy(sig) }
exit(status)
