import XCTest
import HFRSystem

/// Multi-process tests: real processes under `hfrun`, talking TCP over loopback. The worker
/// (Tests/hfr-testworker) checks every element against values computed independently.
final class AllreduceJobTests: XCTestCase {
    func expectSuccess(_ ranks: Int, _ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try JobRunner.run(ranks: ranks, program: "hfr-testworker", args, environment: env)
        XCTAssertEqual(r.status, 0, "hfrun -n \(ranks) hfr-testworker \(args.joined(separator: " ")):\n\(r.output)", file: file, line: line)
        XCTAssertEqual(r.output.components(separatedBy: " OK").count - 1, ranks, "every rank reports OK:\n\(r.output)", file: file, line: line)
    }

    /// Every type and op, both algorithms, in place and out of place, counts 0, 1, 7 and 1031.
    func testEveryTypeAndOpAtManyRankCounts() throws {
        for n in 1...8 { try expectSuccess(n, ["matrix", "quick"]) }
    }

    /// Without polling (HFR_SPIN=0) every wait sleeps and the progress thread alone drives the
    /// engine: the same results.
    func testSleepingWaitsWithoutPolling() throws {
        try expectSuccess(3, ["matrix", "quick"], env: ["HFR_SPIN": "0"])
        try expectSuccess(4, ["async"], env: ["HFR_SPIN": "0", "HFR_REDUCE_THREADS": "0"])
    }

    /// The progress and reduction threads run on the CPUs the placement chose for the rank (read
    /// back from /proc by thread name), and with HFR_NUMA_BIND=0 on every CPU of the process.
    func testThreadsRunWherePlacementSays() throws {
        try expectSuccess(2, ["placement"])
        try expectSuccess(1, ["placement"])
        try expectSuccess(2, ["placement"], env: ["HFR_NUMA_BIND": "0"])
    }

    /// The full matrix (also 2, 13, 65537 and 300007 elements) at 2 and 3 ranks.
    func testFullMatrix() throws {
        for n in [2, 3] { try expectSuccess(n, ["matrix"]) }
    }

    /// Deep pipelines: millions of elements in small chunks, several reduction threads.
    func testLargeBuffersWithSmallChunks() throws {
        try expectSuccess(4, ["large"], env: ["HFR_CHUNK_SIZE": "64K", "HFR_REDUCE_THREADS": "2", "HFR_NSOCKS": "3"])
        try expectSuccess(3, ["large"], env: ["HFR_INLINE_REDUCE": "0", "HFR_FRAGMENT_MAX": "16K"])
    }

    func testOutstandingAsyncCollectivesCompleteCorrectly() throws {
        for n in [2, 3, 5] { try expectSuccess(n, ["async"]) }
        // One eager credit and tiny eager messages: early arrivals park and wait for their receive.
        try expectSuccess(4, ["async"], env: ["HFR_EAGER_CREDITS": "1", "HFR_EAGER_MAX": "4K", "HFR_FRAGMENT_MAX": "4K"])
        try expectSuccess(3, ["matrix", "quick"], env: ["HFR_EAGER_MAX": "0"])
    }

    /// Sends issued before blocking receives and collectives, with no eager sends: a send that
    /// waits for its receiver does not hold back the calls that receiver waits for.
    func testSendsDoNotHoldBackLaterCalls() throws {
        try expectSuccess(3, ["sends-first"], env: ["HFR_EAGER_MAX": "0"])
        try expectSuccess(2, ["sends-first", "--count", "1000"])
        // Empty sends and receives that agree: the receive's clear-to-send (sent for an empty
        // message too) reaches a send that finished at once, and is taken as late, not wrong.
        try expectSuccess(3, ["p2p", "0"])
    }

    /// A send that went eagerly is over once written: its rank may destroy the communicator before
    /// the receiver posts the receive, which still gets the message.
    func testReceivePostedAfterTheSenderLeft() throws {
        try expectSuccess(2, ["send-and-leave"])
    }

    func testTwoCommunicatorsInOneProcess() throws {
        try expectSuccess(3, ["two-comms"])
    }

    /// Broadcast, reduce, allgather, reduce-scatter, all-to-all(v), barrier, send/recv: every type,
    /// awkward counts, roots other than 0, in place and out of place, blocking and asynchronous
    /// collectives of different kinds interleaved.
    func testCollectiveFamily() throws {
        for n in 1...8 { try expectSuccess(n, ["family", "quick"]) }
        try expectSuccess(3, ["family"])
        try expectSuccess(4, ["family", "quick"], env: ["HFR_EAGER_MAX": "0", "HFR_SPIN": "0"])
    }

    /// Bad arguments give typed errors naming the argument.
    func testBadArgumentsGiveTypedErrors() throws {
        try expectSuccess(3, ["errors"])
    }

    /// Ranks that disagree (count, op, type, algorithm, root; also when no rank receives, the type
    /// of a send and its receive, a count of 0 on the first or the last rank, all-to-all-v counts,
    /// a rendezvous-sized message to a rank that expects none and has finished; a send and its
    /// receive of which one is empty): every rank fails with invalidUsage, none hangs.
    func testMismatchedArgumentsFailOnEveryRank() throws {
        for variant in ["count", "op", "type", "algorithm", "root", "root-large", "p2p-type", "zero", "zero-last", "a2av-counts",
                        "a2av-zero-large", "p2p-zero-recv", "p2p-zero-recv-eager", "p2p-zero-send"] {
            let r = try JobRunner.run(ranks: 3, limit: 60, program: "hfr-testworker", ["mismatch", variant], environment: ["HFR_TIMEOUT": "20"])
            XCTAssertNotEqual(r.status, 0)
            for rank in 0..<3 {
                XCTAssertTrue(r.output.contains("[\(rank)] rank \(rank): mismatch detected: invalidUsage"), "\(variant), rank \(rank):\n\(r.output)")
            }
            XCTAssertTrue(r.output.contains("different"), r.output)
            XCTAssertLessThan(r.seconds, 20, "detected well before the timeout")
        }
    }

    /// A thread that waits for a message while another thread's send is done: the sender returns
    /// (it does not wait for the driving thread), so a peer that answers only after the second
    /// send gets it; this hung until HFR_TIMEOUT.
    func testThreadsOfOneRankWaitIndependently() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["threaded-p2p"], environment: ["HFR_TIMEOUT": "15"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("[0] rank 0: threaded-p2p OK"), r.output)
        XCTAssertLessThan(r.seconds, 10, r.output)
    }

    /// destroy() waits for pending work; abort() from another thread cuts that wait short.
    func testAbortCutsADestroyShort() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["abort-during-destroy"], environment: ["HFR_TIMEOUT": "30"])
        let line = r.output.split(separator: "\n").first { $0.hasPrefix("[0] rank 0: destroy returned after ") }
        XCTAssertNotNil(line, r.output)
        let seconds = line.flatMap { Double($0.split(separator: " ")[6]) } ?? 99
        XCTAssertLessThan(seconds, 3, r.output)
        XCTAssertTrue(line?.hasSuffix("the receive failed: aborted") ?? false, r.output)
    }

    /// A collective whose scratch memory cannot be allocated (the address space limited under
    /// it): every rank's call fails with an error (naming the allocation, or the rank that
    /// reported it first), and no process dies.
    func testScratchThatCannotBeAllocatedFailsTheCollective() throws {
        let r = try JobRunner.run(ranks: 3, limit: 60, program: "hfr-testworker", ["scratch-limit"], environment: ["HFR_TIMEOUT": "20"])
        XCTAssertEqual(r.status, 0, r.output)
        let lines = (0..<3).map { rank in r.output.split(separator: "\n").first { $0.hasPrefix("[\(rank)] rank \(rank): scratch-limit: ") } }
        XCTAssertFalse(lines.contains(nil), r.output)
        XCTAssertTrue(lines.contains { $0?.contains("cannot allocate the 805306368 bytes of scratch memory reduce-scatter #0 needs") ?? false }, r.output)
        XCTAssertLessThan(r.seconds, 20, r.output)
    }

    /// A rank that destroys its communicator while the others still call collectives: they get
    /// invalidUsage naming it (it said it was leaving), not a failed peer or a timeout.
    func testRankThatLeavesEarlyIsNamed() throws {
        let r = try JobRunner.run(ranks: 3, limit: 60, program: "hfr-testworker", ["mismatch", "leaves-early"], environment: ["HFR_TIMEOUT": "20"])
        XCTAssertTrue(r.output.contains("[1] rank 1: left after one allreduce"), r.output)
        for rank in [0, 2] {
            XCTAssertTrue(r.output.contains("[\(rank)] rank \(rank): mismatch detected: invalidUsage"), "rank \(rank):\n\(r.output)")
        }
        XCTAssertTrue(r.output.contains("rank 1 destroyed its communicator after 1 collective(s)"), r.output)
        XCTAssertLessThan(r.seconds, 20, "detected well before the timeout")
    }

    /// kill -9 of one rank in an allreduce loop: every other rank fails with an error naming it,
    /// well within HFR_TIMEOUT, and hfrun exits non-zero naming it.
    func testKilledRankIsNamedByEveryOtherRank() throws {
        for (n, victim) in [(4, 2), (3, 0)] {
            let r = try JobRunner.run(ranks: n, limit: 60, hfrunArgs: ["--grace", "25"], program: "hfr-testworker",
                                      ["kill", "--victim", "\(victim)"], environment: ["HFR_TIMEOUT": "20"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.output.contains("hfrun: rank \(victim) (pid"), r.output)
            XCTAssertTrue(r.output.contains("SIGKILL"), r.output)
            for rank in 0..<n where rank != victim {
                let line = r.output.split(separator: "\n").first { $0.hasPrefix("[\(rank)] rank \(rank): failed after") }
                XCTAssertNotNil(line, "rank \(rank) did not report the failure:\n\(r.output)")
                XCTAssertTrue(line?.contains("rank \(victim)") ?? false, "rank \(rank) does not name rank \(victim): \(line ?? "")")
                if let line, let s = line.split(separator: " ").firstIndex(of: "after").map({ line.split(separator: " ")[$0 + 1] }), let secs = Double(s) {
                    XCTAssertLessThan(secs, 10, "rank \(rank) took \(secs) s to notice")
                }
            }
            XCTAssertLessThan(r.seconds, 30, "the whole job ends within 30 s")
        }
    }

    /// A rank aborts during a large allreduce (1 MiB chunks: reductions go to the worker thread).
    /// Every survivor's call fails, and nothing lands in its receive buffer once it has.
    func testNothingLandsAfterACollectiveFailed() throws {
        for (n, delay) in [(2, 1000), (3, 5000), (3, 30000)] {
            let r = try JobRunner.run(ranks: n, limit: 60, program: "hfr-testworker", ["late-writes", "--abort-after-us", "\(delay)"],
                                      environment: ["HFR_CHUNK_SIZE": "1M", "HFR_ALGO": "tree", "HFR_TIMEOUT": "20"])
            XCTAssertFalse(r.output.contains("FAIL"), r.output)
            for rank in 0..<(n - 1) {
                XCTAssertTrue(r.output.contains("rank \(rank): late-writes OK"), "ranks \(n), abort after \(delay) us:\n\(r.output)")
            }
        }
    }

    /// HFR_SOCKET_IFNAME picks the published interface; a name that matches nothing fails every
    /// rank at init with the list of interfaces.
    func testInterfaceSelection() throws {
        try expectSuccess(3, ["matrix", "quick"], env: ["HFR_SOCKET_IFNAME": "lo"])
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["matrix", "quick"],
                                  environment: ["HFR_SOCKET_IFNAME": "nosuchnic", "HFR_TIMEOUT": "10"])
        XCTAssertNotEqual(r.status, 0)
        for rank in 0..<2 {
            XCTAssertTrue(r.output.contains("[\(rank)] FAIL: init: rank \(rank): HFR_SOCKET_IFNAME=nosuchnic matches no interface"), r.output)
        }
        XCTAssertTrue(r.output.contains("lo (127.0.0.1)"), r.output)
    }

    /// With more ranks than cores (forced here), all-to-all blocks of 512 KiB and more are waited
    /// for asleep: the same values, in and out of place.
    func testLargeAllToAllWaitedForAsleep() throws {
        let r = try JobRunner.run(ranks: 3, limit: 120, program: "hfr-bench", ["alltoall", "-b", "1536K", "-e", "12M", "-f", "2", "-c", "1", "-n", "3"],
                                  environment: ["HFR_SPIN_YIELD": "1", "HFR_DEBUG": "INFO"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("asleep for messages of 524288 B or more on average (HFR_SLEEP_BYTES)"), r.output)
        XCTAssertTrue(r.output.contains("# Out of bounds values : 0 OK"), r.output)
    }

    /// hfr-bench checks its results and, with --nic-stats, reports the traffic of every NIC and socket.
    func testBenchmarkChecksAndReportsNICTraffic() throws {
        let r = try JobRunner.run(ranks: 2, limit: 120, program: "hfr-bench", ["alltoall", "-b", "8", "-e", "1M", "-f", "8", "-c", "1", "--nic-stats"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("# Out of bounds values : 0 OK"), r.output)
        for rank in 0..<2 {
            XCTAssertTrue(r.output.contains("[\(rank)] #   nic lo (127.0.0.1): sent "), r.output)
            XCTAssertTrue(r.output.contains("[\(rank)] #   peer \(1 - rank) link 0 socket 0 127.0.0.1:"), r.output)
        }
    }

    /// Small socket buffers (HFR_SOCKET_BUFFER) hold on both ends of a connection from its
    /// handshake on. Set on an accepted socket only after the handshake, they shrank its window
    /// below the segment size its dialer had settled on, and every full window waited for the
    /// dialer's persist timer: a 32 KiB allreduce took 0.4 s and a 2 MiB one longer than the
    /// 5 s HFR_TIMEOUT here.
    func testSmallSocketBuffersDoNotStall() throws {
        let r = try JobRunner.run(ranks: 3, limit: 90, program: "hfr-bench", ["allreduce", "-b", "32K", "-e", "2M", "-f", "4", "-c", "1", "-n", "3", "-w", "1"],
                                  environment: ["HFR_SOCKET_BUFFER": "8192", "HFR_TIMEOUT": "5"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("# Out of bounds values : 0 OK"), r.output)
    }

    /// A connection with a wrong job token at rendezvous is refused and logged; the job carries on.
    /// Silent connections to the rendezvous port, made before the ranks join, hold nobody up:
    /// rank 0 reads all joining connections side by side (it read them one at a time, up to
    /// 10 s each, so 30 of them outlasted HFR_TIMEOUT).
    func testSilentConnectionsAtRendezvousHoldNobodyUp() throws {
        let r = try JobRunner.run(ranks: 3, limit: 60, program: "hfr-testworker", ["idle-at-rendezvous"], environment: ["HFR_TIMEOUT": "20"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("[1] rank 1: 30 silent connections to the rendezvous port"), r.output)
        XCTAssertEqual(r.output.components(separatedBy: "idle-at-rendezvous OK").count - 1, 3, r.output)
        XCTAssertLessThan(r.seconds, 8, r.output)
    }

    /// MASTER_ADDR set to a host name that resolves to loopback on rank 0 (/etc/hosts maps the
    /// machine's own name to 127.0.x.1 on Debian): rank 0 says that ranks on other hosts cannot
    /// join, and the one-host job still runs.
    func testHostNameOnLoopbackIsPointedOut() throws {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(cString: name)
        guard let resolved = try? SocketAddress(host: host, port: 1), resolved.ip >> 24 == 127 else {
            throw XCTSkip("skipped: this host's name (\(host)) does not resolve to a loopback address here")
        }
        let r = try JobRunner.run(ranks: 2, limit: 60, hfrunArgs: ["--master-addr", host], program: "hfr-bench", ["-b", "8", "-e", "8", "-c", "1"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("MASTER_ADDR=\(host) is the loopback address \(resolved.host) here"), r.output)
    }

    func testIntruderAtRendezvousIsRefusedAndJobCarriesOn() throws {
        let r = try JobRunner.run(ranks: 3, limit: 60, program: "hfr-testworker", ["intruder"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("job token differs"), r.output)
        XCTAssertEqual(r.output.components(separatedBy: " OK").count - 1, 3, r.output)
    }
}
