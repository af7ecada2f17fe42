import Glibc

/// Command-line options of `hfrun`, after validation.
struct Options {
    /// Number of ranks to start (`-n`).
    var nproc: Int = 0
    /// Whole-job time limit in seconds (`--timeout`), or nil for none.
    var timeout: Double?
    /// Seconds the surviving ranks get to exit on their own after a rank fails (`--grace`).
    var grace: Double = 10
    /// MASTER_PORT (`--port`), or nil to pick a free port.
    var port: Int?
    /// Network namespaces (`--netns`); rank r runs in `netns[r % netns.count]`.
    var netns: [String] = []
    /// MASTER_ADDR (`--master-addr`); required with `--netns`.
    var masterAddr: String?
    /// The program to run and its arguments.
    var program: String = ""
    var arguments: [String] = []
}

/// What the command line asks for.
enum Command {
    case run(Options)
    case help
}

/// A command-line mistake; `message` is one line naming the problem.
struct UsageError: Error {
    let message: String
}

/// The `--help` text (also printed after a usage error).
let usageText = """
usage: hfrun -n N [options] [--] PROGRAM [ARGS...]

Starts N ranks of PROGRAM (looked up in PATH if it has no slash) on this machine and
prefixes every line of their stdout/stderr with "[RANK] ".

options:
  -n, --nproc N            number of ranks to start (required, N >= 1)
      --timeout S          if the job still runs after S seconds: SIGTERM all ranks,
                           SIGKILL 3 s later, exit 124
      --grace S            after a rank fails, give the other ranks S seconds (default 10)
                           to exit on their own, then SIGTERM them (SIGKILL 3 s later)
      --port P             MASTER_PORT for the ranks (default: a free TCP port on 127.0.0.1, outside
                           the kernel's ephemeral port range)
      --master-addr A      MASTER_ADDR for the ranks (default 127.0.0.1; required with --netns)
      --netns NS0,NS1,...  run rank r inside network namespace NS[r mod count] via
                           `ip netns exec NS env ... PROGRAM ARGS` (needs root)
  -h, --help               show this help
      --                   end of hfrun options; everything after it is PROGRAM ARGS

Each rank's environment is hfrun's plus RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT and HFR_JOB_TOKEN (random, or passed through if already set);
an inherited HFR_ROOT is removed (it would override MASTER_ADDR/MASTER_PORT).
Ranks get /dev/null as stdin and run in their own process group.
SIGINT/SIGTERM/SIGHUP/SIGQUIT to hfrun are forwarded to the ranks as SIGTERM (SIGKILL 3 s
later, or at a second signal); once they are gone hfrun dies by that signal. Signals hfrun
was started with ignored (nohup) stay ignored, by hfrun and its ranks. Ranks start through
`setpriv --pdeathsig KILL` (util-linux) when it is there, so they die with hfrun even when it
is killed with SIGKILL.

exit status: 0 all ranks exited 0; 1 a rank failed or could not be started; 2 bad usage;
             124 timeout; 127 PROGRAM cannot be executed; killed by SIG when interrupted by SIG.
"""

/// Parses the arguments after the program name. Options end at the first non-option
/// argument (or `--`); everything from there on is PROGRAM and its ARGS, passed verbatim.
func parseCommandLine(_ args: [String]) -> Result<Command, UsageError> {
    var o = Options()
    var sawN = false
    var i = 0

    /// The value of option `name`: either after `=` in the same word, or the next word.
    func value(_ name: String, _ inline: String?) -> Result<String, UsageError> {
        if let inline { return .success(inline) }
        guard i + 1 < args.count else { return .failure(UsageError(message: "option \(name) needs a value")) }
        i += 1
        return .success(args[i])
    }
    func seconds(_ name: String, _ text: String, allowZero: Bool) -> Result<Double, UsageError> {
        guard let v = Double(text), v.isFinite, allowZero ? v >= 0 : v > 0, v < 1e9 else {
            return .failure(UsageError(message: "option \(name): '\(text)' is not a valid number of seconds"))
        }
        return .success(v)
    }

    while i < args.count {
        let arg = args[i]
        if arg == "--" { i += 1; break }
        if !arg.hasPrefix("-") || arg == "-" { break }

        var name = arg
        var inline: String?
        if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
            name = String(arg[..<eq])
            inline = String(arg[arg.index(after: eq)...])
        } else if arg.hasPrefix("-n"), arg.count > 2, !arg.hasPrefix("--") {
            name = "-n"
            inline = String(arg.dropFirst(2))
        }

        switch name {
        case "-h", "--help":
            return .success(.help)
        case "-n", "--nproc":
            switch value(name, inline) {
            case .failure(let e): return .failure(e)
            case .success(let s):
                guard let n = Int(s) else { return .failure(UsageError(message: "-n: '\(s)' is not an integer")) }
                guard n >= 1 else { return .failure(UsageError(message: "-n: number of ranks must be at least 1 (got \(n))")) }
                guard n <= 4096 else { return .failure(UsageError(message: "-n: at most 4096 ranks are supported (got \(n))")) }
                o.nproc = n
                sawN = true
            }
        case "--timeout", "--grace":
            switch value(name, inline).flatMap({ seconds(name, $0, allowZero: name == "--grace") }) {
            case .failure(let e): return .failure(e)
            case .success(let v): if name == "--timeout" { o.timeout = v } else { o.grace = v }
            }
        case "--port":
            switch value(name, inline) {
            case .failure(let e): return .failure(e)
            case .success(let s):
                guard let p = Int(s), (1...65535).contains(p) else {
                    return .failure(UsageError(message: "--port: '\(s)' is not a port number (1-65535)"))
                }
                o.port = p
            }
        case "--master-addr":
            switch value(name, inline) {
            case .failure(let e): return .failure(e)
            case .success(let s):
                guard !s.isEmpty else { return .failure(UsageError(message: "--master-addr: empty address")) }
                o.masterAddr = s
            }
        case "--netns":
            switch value(name, inline) {
            case .failure(let e): return .failure(e)
            case .success(let s):
                let list = s.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !list.isEmpty, !list.contains(where: { $0.isEmpty }) else {
                    return .failure(UsageError(message: "--netns: '\(s)' is not a comma-separated list of namespace names"))
                }
                o.netns = list
            }
        default:
            return .failure(UsageError(message: "unknown option '\(arg)'"))
        }
        i += 1
    }

    guard sawN else { return .failure(UsageError(message: "missing -n N (number of ranks)")) }
    guard i < args.count, !args[i].isEmpty else { return .failure(UsageError(message: "missing PROGRAM to run")) }
    if !o.netns.isEmpty && o.masterAddr == nil {
        return .failure(UsageError(message: "--netns requires --master-addr A (the address rank 0 listens on inside its namespace)"))
    }
    o.program = args[i]
    o.arguments = Array(args[(i + 1)...])
    return .success(.run(o))
}
