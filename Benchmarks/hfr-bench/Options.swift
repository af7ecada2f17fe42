import HFReduce

/// Which output the benchmark produces.
enum OutputFormat {
    /// nccl-tests `all_reduce_perf`: fixed `-n` iterations, out-of-place and in-place per line.
    case ncclTests
    /// The `../shared/peers` contract (`# hfr-allreduce peer=...` blocks), the method of
    /// `mpi_allreduce.c`: iterations chosen per size to last `minTime`, median of `reps`.
    case peers
}

/// Command-line options of `hfr-bench`, after validation.
struct Options {
    /// The collective (first positional argument, default allreduce).
    var operation: Operation = .allreduce
    /// Root of broadcast and reduce (`-r`, `--root`; with `--peers-format` use `--root`).
    var root = 0
    /// Smallest message in bytes (`-b`).
    var minBytes = 8
    /// Largest message in bytes (`-e`).
    var maxBytes = 32 << 20
    /// Size multiplication factor (`-f`), at least 2.
    var factor = 2
    /// Timed iterations per size (`-n`); with `--peers-format` the minimum iterations per repetition.
    var iters = 20
    /// Warm-up iterations (`-w`); with `--peers-format` the maximum.
    var warmup = 5
    /// Element type (`-d`).
    var type: DataType = .float32
    /// Reduction (`-o`) of allreduce, reduce and reducescatter.
    var op: ReduceOp = .sum
    /// Whether results are checked (`-c`).
    var check = true
    /// Allreduce algorithm name (`-a tree|ring|...`), or nil for the library's choice.
    var algorithm: String?
    /// CSV output file written by rank 0 (`--csv`).
    var csvPath: String?
    /// Print per-NIC and per-socket traffic after the run (`--nic-stats`).
    var nicStats = false
    /// Output format (`--peers-format`).
    var format: OutputFormat = .ncclTests
    /// Peers format: minimum seconds per timed repetition (`--min-time`, `-t`).
    var minTime = 0.2
    /// Peers format: maximum iterations per repetition (`--max-iters`, `-m`).
    var maxIters = 10_000
    /// Peers format: timed repetitions, the median is reported (`--reps`; `-r` in this format).
    var reps = 3
    /// Peers format: in-place instead of out-of-place (`--inplace`, `-i`).
    var inPlace = false
    /// Peers format: the `peer=` label (`--label`, `-l`).
    var label = "hfreduce"
}

/// What the command line asks for.
enum Command {
    case run(Options)
    case help
}

/// A command-line mistake: one line naming the flag and the value.
struct UsageError: Error {
    let message: String
}

/// The `-h` text.
let usageText = """
usage: hfr-bench [OPERATION] [options]     (run under a launcher: hfrun -n N hfr-bench ...)

OPERATION: allreduce (default), broadcast, reduce, allgather, reducescatter, alltoall, sendrecv
(also all_reduce, all_gather, reduce_scatter, all_to_all, send_recv).

Measures the operation like nccl-tests' *_perf: for each size from -b to -e (times -f),
out-of-place then in-place, -w warm-up calls and -n timed calls; the time is the mean per call,
the maximum over ranks. algbw = size/time (GB/s, 1 GB = 1e9 B), busbw = algbw * factor:
  allreduce 2(n-1)/n; allgather, reducescatter, alltoall (n-1)/n; broadcast, reduce, sendrecv 1.
size is nccl-tests' size: for allgather, reducescatter and alltoall the whole n-block buffer
(count = its elements, n per-rank blocks of size/n); otherwise the message. sendrecv: every
rank sends to rank+1 and receives from rank-1 (no in-place form: N/A). In place uses nccl-tests' offsets (allgather
sends from block rank of the output, reducescatter writes block rank of the input).

options:
  -b, --minbytes N       smallest size in bytes; K, M, G suffixes are powers of 1024 (default 8)
  -e, --maxbytes N       largest size in bytes (default 32M)
  -f, --stepfactor N     multiply the size by N each step, N >= 2 (default 2)
  -n, --iters N          timed iterations per size (default 20)
  -w, --warmup_iters N   warm-up iterations per size (default 5)
  -d, --datatype T       int8 uint8 int32 uint32 int64 uint64 half float16 bfloat16 float double
                         (default float)
  -o, --op OP            sum prod max min avg, for allreduce, reduce, reducescatter (default sum)
  -r, --root R           root of broadcast and reduce (default 0; the root column, -1 if rootless)
  -c, --check 0|1        check every element of the result, before and after the timed loop
                         (default 1)
  -a, --algorithm A      allreduce: tree, ring, doubling or halving (default: the library's
                         choice, HFR_ALGO)
      --csv FILE         rank 0 also writes the rows to FILE as CSV, with a header line
      --nic-stats        after the run, every rank prints the bytes and frames each NIC and
                         each socket carried, and what each HCA port wrote over RDMA
  -h, --help             show this help

peers format (--peers-format, allreduce and alltoall): the ../shared/peers contract instead,
  one block per run: `# hfr-allreduce peer=LABEL nranks=N dtype=... op=... inplace=0|1` (alltoall:
  `# hfr-alltoall ... op=alltoall inplace=0 count=per-peer size=count*N*4 busbw=algbw*(N-1)/N`)
  and rows `size count time(us) algbw busbw min(us) max(us) iters #wrong` (median of -r
  repetitions, each >= --min-time seconds; alltoall's count is per peer), for
  ../shared/peers/table.py. Also accepts mpi_allreduce's and mpi_alltoall's flags:
  -t, --min-time S       seconds per timed repetition (default 0.2)
  -n N                   minimum iterations per repetition (default 1 in this format)
  -m, --max-iters N      maximum iterations per repetition (default 10000)
  -r, --reps N           repetitions, the median is reported (default 3); -r means --reps
                         in this format (mpi_allreduce's flag)
  -i, --inplace          time in-place calls (default out-of-place)
  -l, --label LABEL      the peer= label (default hfreduce)

exit status: 0 all values correct; 1 a value was wrong or a rank failed; 2 bad usage.
HFR_CORRUPT=1 perturbs one element on the last rank after the first call (checker self-test).
"""

/// Parses a byte count: decimal digits with an optional K, M or G suffix (powers of 1024).
func parseBytes(_ text: String) -> Int? {
    var digits = Substring(text)
    var scale = 1
    if let last = digits.last, !last.isNumber {
        switch last {
        case "k", "K": scale = 1 << 10
        case "m", "M": scale = 1 << 20
        case "g", "G": scale = 1 << 30
        default: return nil
        }
        digits = digits.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(digits) else { return nil }
    let (product, overflow) = v.multipliedReportingOverflow(by: scale)
    return overflow ? nil : product
}

/// Parses the arguments after the program name.
func parseCommandLine(_ args: [String]) -> Result<Command, UsageError> {
    var o = Options()
    var sawIters = false, sawMinBytes = false, sawMaxBytes = false, sawFactor = false
    var i = 0
    var operationSeen = false
    /// `-r`: the root, or the repetitions with --peers-format (known only after all flags).
    var rFlag: (text: String, value: Int)?

    func fail(_ message: String) -> Result<Command, UsageError> { .failure(UsageError(message: message)) }

    while i < args.count {
        var arg = args[i]
        var inline: String?
        // `--flag=value` and `-bVALUE`.
        if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
            inline = String(arg[arg.index(after: eq)...])
            arg = String(arg[..<eq])
        } else if arg.hasPrefix("-"), !arg.hasPrefix("--"), arg.count > 2 {
            inline = String(arg.dropFirst(2))
            arg = String(arg.prefix(2))
        }

        /// The value of the current flag (inline or the next word), or nil when missing.
        func value() -> String? {
            if let inline { return inline }
            guard i + 1 < args.count else { return nil }
            i += 1
            return args[i]
        }
        func missing() -> Result<Command, UsageError> { fail("option \(arg) needs a value") }
        func bad(_ v: String, _ what: String) -> Result<Command, UsageError> {
            fail("invalid value '\(v)' for \(arg): \(what)")
        }
        func integer(_ v: String, atLeast lo: Int) -> Int? {
            guard let n = Int(v), n >= lo else { return nil }
            return n
        }

        switch arg {
        case "-h", "--help":
            return .success(.help)
        case "-b", "--minbytes", "-e", "--maxbytes":
            guard let v = value() else { return missing() }
            guard let n = parseBytes(v), n >= 1 else { return bad(v, "expected a byte count >= 1 (K, M, G suffixes allowed)") }
            if arg == "-b" || arg == "--minbytes" { o.minBytes = n; sawMinBytes = true } else { o.maxBytes = n; sawMaxBytes = true }
        case "-f", "--stepfactor":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 2) else { return bad(v, "expected an integer >= 2") }
            o.factor = n; sawFactor = true
        case "-n", "--iters":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 1) else { return bad(v, "expected an integer >= 1") }
            o.iters = n; sawIters = true
        case "-w", "--warmup_iters", "--warmup":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 0) else { return bad(v, "expected an integer >= 0") }
            o.warmup = n
        case "-d", "--datatype":
            guard let v = value() else { return missing() }
            guard let t = DataType(name: v) else {
                return bad(v, "expected one of int8 uint8 int32 uint32 int64 uint64 half float16 bfloat16 float double")
            }
            o.type = t
        case "-o", "--op":
            guard let v = value() else { return missing() }
            guard let op = ReduceOp(name: v) else { return bad(v, "expected one of sum prod max min avg") }
            o.op = op
        case "-c", "--check":
            guard let v = value() else { return missing() }
            switch v {
            case "0": o.check = false
            case "1": o.check = true
            default: return bad(v, "expected 0 or 1")
            }
        case "-a", "--algorithm", "--algo":
            guard let v = value() else { return missing() }
            switch v.lowercased() {
            case "tree", "ring", "doubling", "halving": o.algorithm = v.lowercased()
            case "auto", "default": o.algorithm = nil
            default: return bad(v, "expected tree or ring")
            }
        case "--csv":
            guard let v = value() else { return missing() }
            guard !v.isEmpty else { return bad(v, "expected a file name") }
            o.csvPath = v
        case "--nic-stats":
            if let inline { return fail("option \(arg) takes no value (got '\(inline)')") }
            o.nicStats = true
        case "--peers-format":
            if let inline { return fail("option \(arg) takes no value (got '\(inline)')") }
            o.format = .peers
        case "-t", "--min-time":
            guard let v = value() else { return missing() }
            guard let s = Double(v), s.isFinite, s >= 0, s < 1e6 else { return bad(v, "expected seconds >= 0") }
            o.minTime = s
        case "-m", "--max-iters":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 1) else { return bad(v, "expected an integer >= 1") }
            o.maxIters = n
        case "-r":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 0) else { return bad(v, "expected an integer >= 0") }
            rFlag = (v, n)
        case "--root":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 0) else { return bad(v, "expected a rank >= 0") }
            o.root = n
        case "--reps":
            guard let v = value() else { return missing() }
            guard let n = integer(v, atLeast: 1) else { return bad(v, "expected an integer >= 1") }
            o.reps = n
        case "-i", "--inplace":
            if let inline { return fail("option \(arg) takes no value (got '\(inline)')") }
            o.inPlace = true
        case "-l", "--label":
            guard let v = value() else { return missing() }
            guard !v.isEmpty, !v.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) else {
                return bad(v, "expected a label without blanks")
            }
            o.label = v
        default:
            if arg.hasPrefix("-") && arg != "-" {
                return fail("unknown option \(args[i])")
            }
            guard !operationSeen, i == 0 else { return fail("unexpected argument '\(arg)'") }
            guard let operation = Operation(name: arg) else {
                return fail("unknown operation '\(arg)' (valid: \(Operation.names))")
            }
            o.operation = operation
            operationSeen = true
        }
        i += 1
    }

    if let (v, n) = rFlag {
        if o.format == .peers {
            guard n >= 1 else { return fail("invalid value '\(v)' for -r: expected an integer >= 1 (repetitions)") }
            o.reps = n
        } else {
            o.root = n
        }
    }
    if o.format == .peers {
        guard o.operation == .allreduce || o.operation == .alltoall else {
            return fail("option --peers-format supports allreduce and alltoall, not \(o.operation)")
        }
        // mpi_allreduce.c's defaults and meaning of -n (minimum iterations per repetition).
        if !sawIters { o.iters = 1 }
        if !sawMinBytes { o.minBytes = 4096 }
        if !sawMaxBytes { o.maxBytes = 64 << 20 }
        if !sawFactor { o.factor = 4 }
        if o.maxIters < o.iters {
            return fail("invalid value '\(o.maxIters)' for -m: smaller than -n \(o.iters)")
        }
    } else if o.inPlace {
        return fail("option -i/--inplace needs --peers-format (nccl-tests output has both columns)")
    }
    if o.maxBytes < o.minBytes {
        return fail("invalid value '\(o.maxBytes)' for -e: smaller than -b \(o.minBytes)")
    }
    return .success(.run(o))
}
