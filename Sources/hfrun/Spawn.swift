import Glibc

/// Signals whose disposition the ranks get reset to default (hfrun catches or ignores them);
/// those hfrun was started with ignored stay ignored in the ranks.
var signalsResetInChildren: [Int32] {
    [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE].filter { !signalsIgnoredAtStart.contains($0) }
}

/// Finds the file `execve` would run for `name`: `name` itself if it contains a slash,
/// otherwise the first executable regular file `DIR/name` for DIR in PATH.
/// Returns the path, or the errno describing why there is none (ENOENT, EACCES, ...).
func resolveProgram(_ name: String) -> Result<String, SpawnError> {
    func isExecutableFile(_ path: String) -> Int32 {
        var st = stat()
        if stat(path, &st) != 0 { return errno }
        if (st.st_mode & 0o170000) != 0o100000 { return EACCES }
        return access(path, X_OK) == 0 ? 0 : errno
    }
    guard !name.isEmpty else { return .failure(SpawnError(code: ENOENT)) }
    if name.contains("/") {
        let e = isExecutableFile(name)
        return e == 0 ? .success(name) : .failure(SpawnError(code: e))
    }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
    var firstError = ENOENT
    for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
        let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
        let e = isExecutableFile(candidate)
        if e == 0 { return .success(candidate) }
        if e == EACCES { firstError = EACCES }
    }
    return .failure(SpawnError(code: firstError))
}

/// An errno from resolving or spawning a program.
struct SpawnError: Error {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
}

/// Creates a pipe whose both ends are close-on-exec (so no other child inherits them), and
/// optionally non-blocking. hfrun is single-threaded, so setting the flags after pipe(2)
/// cannot race with a spawn. Returns (read end, write end).
func makePipe(nonBlocking: Bool = false) -> Result<(Int32, Int32), SpawnError> {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return .failure(SpawnError(code: errno)) }
    for fd in fds {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }
    return .success((fds[0], fds[1]))
}

/// Starts `argv` with posix_spawn: stdin from /dev/null, stdout/stderr onto the given pipe
/// write ends, in a new process group of its own, with default signal dispositions and an
/// empty signal mask. `searchPATH` uses posix_spawnp. Returns the pid (which is also the
/// process-group id) or the errno (glibc reports exec failures such as ENOENT here).
func spawn(path: String, searchPATH: Bool, argv: [String], environment: [String],
           stdoutFD: Int32, stderrFD: Int32) -> Result<pid_t, SpawnError> {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
    posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)

    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for s in signalsResetInChildren { sigaddset(&defaults, s) }
    posix_spawnattr_setsigdefault(&attr, &defaults)
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attr, &mask)
    posix_spawnattr_setpgroup(&attr, 0)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    let cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
    defer {
        for p in cArgv { free(p) }
        for p in cEnv { free(p) }
    }
    var pid: pid_t = 0
    let rc = searchPATH
        ? posix_spawnp(&pid, path, &actions, &attr, cArgv, cEnv)
        : posix_spawn(&pid, path, &actions, &attr, cArgv, cEnv)
    return rc == 0 ? .success(pid) : .failure(SpawnError(code: rc))
}

/// `setpriv --pdeathsig KILL --` (util-linux), when it works here: ranks started through it get
/// SIGKILL when hfrun dies, even by `kill -9` or the OOM killer, which hfrun cannot catch to
/// stop them itself (they are in process groups of their own). Nil without it: then such a
/// death leaves the ranks running.
func parentDeathWrapper() -> [String]? {
    let wrapper = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"]
    guard access(wrapper[0], X_OK) == 0, case .success(let (r, w)) = makePipe() else { return nil }
    defer { close(r); close(w) }
    guard case .success(let pid) = spawn(path: wrapper[0], searchPATH: false, argv: wrapper + ["/bin/true"], environment: [],
                                         stdoutFD: w, stderrFD: w) else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status == 0 ? wrapper : nil
}

/// Makes sure fds 0, 1 and 2 are open (on /dev/null if they were closed), so that pipes
/// created later never land on them.
func ensureStandardDescriptors() {
    for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) < 0 {
        let n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY)
        if n >= 0 && n != fd { dup2(n, fd); close(n) }
    }
}
