// hfr-bench: nccl-tests-style benchmark of HFReduce's collectives.
//
//   hfrun -n 2 hfr-bench [allreduce] -b 8 -e 1M -f 4 -c 1
//   hfrun -n 3 hfr-bench broadcast -r 2 -b 8 -e 1M -f 4 -c 1
//   hfrun -n 2 hfr-bench --peers-format -b 4096 -e 64M -f 4           (../shared/peers contract)
//   hfrun -n 4 hfr-bench alltoall --peers-format -b 4096 -e 64M -f 4  (its all-to-all variant)
//
// Rank 0 prints; every rank checks its own results. Exit status: 0 all correct, 1 a wrong value
// or a failed rank, 2 bad usage. `hfr-bench -h` lists the options.

import Glibc
import HFReduce

/// The launcher's rank, for messages before (or without) a communicator.
let environmentRank = getenv("RANK").map { String(cString: $0) }

/// Prints `hfr-bench: rank R: message` to stderr and exits with `status`.
func fail(rank: String, _ message: String, status: Int32) -> Never {
    fputs("hfr-bench: rank \(rank): \(message)\n", stderr)
    exit(status)
}

/// The text of an error: an `HFRError`'s message, otherwise its description.
func text(_ error: any Error) -> String {
    if let e = error as? HFRError { return e.message }
    if let e = error as? UsageError { return e.message }
    return String(describing: error)
}

let options: Options
switch parseCommandLine(Array(CommandLine.arguments.dropFirst())) {
case .failure(let e):
    // Every rank gets the same arguments; one message is enough.
    if environmentRank == nil || environmentRank == "0" { fputs("hfr-bench: \(e.message)\n", stderr) }
    exit(2)
case .success(.help):
    if environmentRank == nil || environmentRank == "0" { print(usageText) }
    exit(0)
case .success(.run(let o)):
    options = o
}

let comm: Communicator
do {
    comm = try Communicator.fromEnvironment()
} catch {
    fail(rank: environmentRank ?? "?", text(error), status: 1)
}
let rankName = String(comm.rank)

// Set-up that can fail on one rank only (rank 0's CSV file, memory): agree before any data call,
// so that no rank is left waiting in a collective.
var report: Report?
var setupError = ""
var status: Int32 = 0
/// The error is the same on every rank (a usage error that needs nranks): rank 0 reports it.
var everyRank = false
do {
    report = try Report(enabled: comm.rank == 0, options: options)
} catch {
    setupError = text(error)
    status = 2
}
if options.operation.isRooted && options.root >= comm.size {
    setupError = "invalid value '\(options.root)' for -r: the root must be below nranks \(comm.size)"
    status = 2
    everyRank = true
} else if options.operation == .sendrecv && comm.size < 2 {
    setupError = "sendrecv needs at least 2 ranks (each rank sends to rank+1 and receives from rank-1)"
    status = 2
    everyRank = true
}
let bufferBytes = options.maxBytes / options.type.size * options.type.size
let send = AlignedBuffer(byteCount: bufferBytes)
let recv = AlignedBuffer(byteCount: bufferBytes)
let scratch = AlignedBuffer(byteCount: 64)
if status == 0 && (send == nil || recv == nil || scratch == nil) {
    setupError = "cannot allocate 2 x \(bufferBytes) bytes"
    status = 1
}
do {
    let cell = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    defer { cell.deallocate() }
    cell.pointee = status
    try comm.allReduce(send: cell, recv: cell, count: 1, type: .int32, op: .max)
    let agreed = cell.pointee
    if agreed != 0 {
        if status != 0 && !(everyRank && comm.rank != 0) { fail(rank: rankName, setupError, status: status) }
        comm.destroy()
        exit(agreed)
    }
} catch {
    fail(rank: rankName, text(error), status: 1)
}

let algorithmName = options.algorithm ?? comm.configuration.algorithm?.rawValue ?? "auto"
let benchmark = Benchmark(comm: comm, options: options, report: report!, send: send!, recv: recv!,
                          scratch: scratch!)
do {
    switch options.format {
    case .ncclTests: try benchmark.runNcclTests(algorithmName: algorithmName)
    case .peers: try benchmark.runPeers(algorithmName: algorithmName)
    }
} catch {
    fail(rank: rankName, text(error), status: 1)
}
// This rank's own count decides its status too: the total is summed by the library under test.
let wrong = report!.totalWrong + benchmark.ownWrong
if options.nicStats { printNICStatistics(comm) }
comm.destroy()
exit(wrong > 0 ? 1 : 0)
