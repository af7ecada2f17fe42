import Foundation
import XCTest

/// Multi-process jobs over RDMA: `HFR_TRANSPORT=ib` on the software verbs device
/// (`HFR_IB_SOFT=2`: two soft HCAs per rank, so two RDMA links per peer), checked element by
/// element by Tests/hfr-testworker as over TCP; an HCA failed mid-loop; a corrupted rkey; and the
/// transport choice on this machine, which has libibverbs at most but no RDMA device.
final class VerbsJobTests: XCTestCase {
    static let soft = ["HFR_TRANSPORT": "ib", "HFR_IB_SOFT": "2", "HFR_TIMEOUT": "60"]

    /// Runs the worker over the soft device and expects every rank's "<mode> OK".
    func run(_ ranks: Int, _ args: [String], env: [String: String] = [:], limit: Int = 240,
             file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try JobRunner.run(ranks: ranks, limit: limit, program: "hfr-testworker", args,
                                  environment: VerbsJobTests.soft.merging(env) { $1 })
        XCTAssertEqual(r.status, 0, "hfrun -n \(ranks) hfr-testworker \(args.joined(separator: " ")):\n\(r.output)", file: file, line: line)
        XCTAssertEqual(r.output.components(separatedBy: "\(args[0]) OK").count - 1, ranks, "every rank reports OK:\n\(r.output)", file: file, line: line)
        return r.output
    }

    /// Per rank and HCA port, the bytes its RDMA links wrote, from `--link-stats` lines
    /// ("[0] rank 0: link 1 to rank 2 via soft_1:1 up: wrote 123 B in 4 writes, received ...").
    func written(_ output: String) -> [Int: [String: Int]] {
        var out: [Int: [String: Int]] = [:]
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let via = words.firstIndex(of: "via"), via + 1 < words.count, let w = words.firstIndex(of: "wrote"), w + 1 < words.count,
                  words.count > 2, let rank = Int(words[2].dropLast()), let bytes = Int(words[w + 1]) else { continue }
            out[rank, default: [:]][String(words[via + 1]), default: 0] += bytes
        }
        return out
    }

    /// Every type and op, every algorithm, and the rest of the family (all-to-all included) at 2,
    /// 3 and 4 ranks over two soft HCAs per rank; INFO names both RDMA links, every rank's
    /// writes went out on both HCAs, and nothing was worth a warning (ranks that leave after
    /// their work close their links quietly).
    func testCollectivesOverTwoSoftHCAs() throws {
        for n in [2, 3, 4] {
            for mode in [["matrix", "quick"], ["family", "quick"]] {
                let out = try run(n, mode + ["--link-stats"], env: ["HFR_DEBUG": "INFO"])
                XCTAssertTrue(out.contains("transport ib (HFR_TRANSPORT=ib): 2 ACTIVE HCA port(s) of the software verbs device"), out)
                XCTAssertTrue(out.contains("link 1 to rank 1: RDMA soft_1:1 QP"), "INFO names the second RDMA link\n\(out)")
                XCTAssertEqual(JobRunner.warnings(in: out), [], "\(mode) at \(n) ranks: a clean run warns about nothing\n\(out)")
                let w = written(out)
                XCTAssertEqual(w.count, n, "every rank printed its links\n\(out)")
                for (rank, perHCA) in w {
                    XCTAssertGreaterThan(perHCA["soft_0:1"] ?? 0, 0, "\(mode) at \(n) ranks: rank \(rank) wrote on soft_0:1\n\(out)")
                    XCTAssertGreaterThan(perHCA["soft_1:1"] ?? 0, 0, "\(mode) at \(n) ranks: rank \(rank) wrote on soft_1:1\n\(out)")
                }
            }
        }
    }

    /// Point-to-point: sends issued before blocking receives (RDMA has no eager sends, so each
    /// waits for its receiver's clear-to-write), and the send/receive ring of the family.
    func testSendsBeforeReceivesOverRDMA() throws {
        _ = try run(3, ["sends-first"])
        _ = try run(2, ["p2p", "300000"])
        _ = try run(3, ["p2p", "0"])  // an empty receive's clear-to-send over RDMA
    }

    /// Large messages are striped: both links to every peer a rank exchanges with carry a real
    /// share of the bytes (at 3 ranks, halving-doubling pairs ranks 0-1 and 1-2).
    func testLargeMessagesSplitBetweenTheHCAs() throws {
        let out = try run(3, ["loop", "20", "--count", "1048576", "--link-stats"])
        var checked = 0
        for line in out.split(separator: "\n") where line.contains(" via soft_") {
            let words = line.split(separator: " ")
            guard let w = words.firstIndex(of: "wrote"), let bytes = Int(words[w + 1]) else { continue }
            XCTAssertGreaterThan(bytes, 8 << 20, "a link carried little: \(line)\n\(out)")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 2 * 2 * 2, "2 rank pairs x 2 directions x 2 links\n\(out)")
    }

    /// One HCA of one rank fails in the middle of a 200-iteration allreduce loop (the soft device
    /// fails soft_1 after some hundred work requests): its links go down on both sides, the writes
    /// the peers did not take go to the other HCA, and every result is right.
    func testHCAFailedMidLoop() throws {
        for (n, after) in [(2, 300), (3, 500)] {
            let out = try run(n, ["loop", "200", "--count", "262144", "--fail-hca", "soft_1:after=\(after)", "--fail-rank", "1", "--link-stats"],
                              env: ["HFR_DEBUG": "WARN"])
            XCTAssertTrue(out.contains("[1] rank 1: HFR_IB_SOFT_FAIL=soft_1:after=\(after)"), out)
            XCTAssertTrue(out.contains("Work Request Flushed Error"), "ibv_wc_status_str in the log\n\(out)")
            for peer in 0..<n where peer != 1 {
                XCTAssertTrue(out.contains("[1] rank 1: link 1 to rank \(peer) via soft_1:1 down:"), "rank 1's link 1 to rank \(peer) is down\n\(out)")
                XCTAssertTrue(out.contains("link 1 to rank 1 (soft_1:1) is down"), "rank \(peer) takes its link to rank 1 down\n\(out)")
            }
        }
    }

    /// Completion queues that could overrun (17 ranks, 1024 writes in flight per link: 16 peers
    /// x 4096 receives exceed the soft HCA's 65536 entries) are refused at creation, naming the
    /// limit and the setting to lower; they were clamped silently, and an overrun is fatal to
    /// every queue pair on a real HCA.
    func testCompletionQueuesThatCouldOverrunAreRefused() throws {
        let r = try JobRunner.run(ranks: 17, limit: 60, program: "hfr-bench", ["-b", "8", "-e", "8", "-c", "1"],
                                  environment: VerbsJobTests.soft.merging(["HFR_TIMEOUT": "20", "HFR_MAX_INFLIGHT": "1024"]) { $1 })
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("holds at most 4096 work requests per queue pair and 65536 completions per queue; 16 peers with 1024 writes and 4096 receives each need 65600 (lower HFR_MAX_INFLIGHT)"), r.output)
        XCTAssertLessThan(r.seconds, 20, r.output)
    }

    /// A rank whose writes name the wrong fragments (each the next one's number): the receiver
    /// checks each write against the fragment size it advertised and refuses the one beyond the
    /// message as a protocol violation naming the writer, instead of counting its bytes.
    func testMisnumberedFragmentIsAProtocolViolation() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["loop", "3", "--count", "262144", "--bad-fragment-rank", "1"],
                                  environment: VerbsJobTests.soft.merging(["HFR_TIMEOUT": "20"]) { $1 })
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("HFR_IB_TEST_BAD_FRAGMENT=1"), r.output)
        let line = r.output.split(separator: "\n").first { $0.hasPrefix("[0] FAIL: ") }
        XCTAssertTrue(line?.contains("protocol violation by rank 1: rank 1 wrote") ?? false, "rank 0 names the writer: \(line ?? "")\n\(r.output)")
        XCTAssertTrue(line?.contains("which that message does not have in that size") ?? false, line.map(String.init) ?? r.output)
        XCTAssertTrue(r.output.contains("[1] FAIL: "), "rank 1 fails too\n\(r.output)")
        XCTAssertLessThan(r.seconds, 20, r.output)
    }

    /// A rank whose writes carry a corrupted rkey: the receiver's HCA refuses them (remote access
    /// error), and the job ends with an error naming the peer on that rank, well within the timeout.
    func testWrongRkeyIsAnErrorNamingThePeer() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["loop", "3", "--count", "262144", "--bad-rkey-rank", "1"],
                                  environment: VerbsJobTests.soft.merging(["HFR_TIMEOUT": "20"]) { $1 })
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("HFR_IB_TEST_BAD_RKEY=1"), r.output)
        let line = r.output.split(separator: "\n").first { $0.hasPrefix("[1] FAIL: ") }
        XCTAssertNotNil(line, r.output)
        XCTAssertTrue(line?.contains("rank 0") ?? false, "the error names the peer: \(line ?? "")")
        XCTAssertTrue(line?.contains("remote access error") ?? false, "with ibv_wc_status_str: \(line ?? "")")
        XCTAssertTrue(r.output.contains("[0] FAIL: "), "rank 0 fails too\n\(r.output)")
        XCTAssertLessThan(r.seconds, 20, r.output)
    }

    /// kill -9 of one rank in an allreduce loop over RDMA: its sockets close, and every other
    /// rank fails naming it, well within HFR_TIMEOUT.
    func testKilledRankIsNamedByEveryOtherRank() throws {
        let r = try JobRunner.run(ranks: 4, limit: 60, hfrunArgs: ["--grace", "25"], program: "hfr-testworker", ["kill", "--victim", "2"],
                                  environment: VerbsJobTests.soft.merging(["HFR_TIMEOUT": "20"]) { $1 })
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("SIGKILL"), r.output)
        for rank in [0, 1, 3] {
            let line = r.output.split(separator: "\n").first { $0.hasPrefix("[\(rank)] rank \(rank): failed after") }
            XCTAssertNotNil(line, "rank \(rank) did not report the failure:\n\(r.output)")
            XCTAssertTrue(line?.contains("rank 2") ?? false, "rank \(rank) does not name rank 2: \(line ?? "")")
        }
        XCTAssertLessThan(r.seconds, 30, r.output)
    }

    /// HFR_TRANSPORT=ib without the soft device: this machine has no RDMA device, and creating
    /// the communicator fails on every rank with a sentence naming the cause.
    func testIBWithoutADeviceFailsNamingTheCause() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["matrix", "quick"],
                                  environment: ["HFR_TRANSPORT": "ib", "HFR_TIMEOUT": "10"])
        if r.status == 0 { throw XCTSkip("this machine has an ACTIVE RDMA port: \(r.output)") }
        for rank in 0..<2 {
            let line = r.output.split(separator: "\n").first { $0.hasPrefix("[\(rank)] FAIL: init: rank \(rank): HFR_TRANSPORT=ib, but RDMA cannot be used here: ") }
            XCTAssertNotNil(line, r.output)
            let cause = ["libibverbs.so.1 not found", "no RDMA device", "no ACTIVE port"]
            XCTAssertTrue(cause.contains { line?.contains($0) ?? false }, "the cause is named: \(line ?? "")")
        }
    }

    /// HFR_TRANSPORT=auto (the default) without the soft device runs over TCP and says why at
    /// INFO; with the soft device it picks RDMA.
    func testAutoChoosesByWhatThereIs() throws {
        let tcp = try JobRunner.run(ranks: 2, limit: 120, program: "hfr-testworker", ["matrix", "quick"], environment: ["HFR_DEBUG": "INFO"])
        XCTAssertEqual(tcp.status, 0, tcp.output)
        for rank in 0..<2 {
            XCTAssertTrue(tcp.output.contains("[\(rank)] rank \(rank): matrix OK"), tcp.output)
            if !tcp.output.contains("transport ib (HFR_TRANSPORT=auto)") {
                XCTAssertTrue(tcp.output.contains(":\(rank) HFR INFO transport tcp: HFR_TRANSPORT=auto found no usable RDMA port ("), tcp.output)
                XCTAssertTrue(tcp.output.contains(":\(rank) HFR INFO HFReduce 0.1.0: rank \(rank) of 2, transport tcp,"), tcp.output)
            }
        }
        let ib = try run(2, ["matrix", "quick"], env: ["HFR_TRANSPORT": "auto", "HFR_DEBUG": "INFO"])
        XCTAssertTrue(ib.contains("transport ib (HFR_TRANSPORT=auto): 2 ACTIVE HCA port(s)"), ib)
        XCTAssertTrue(ib.contains("connected to rank 1 over 2 RDMA link(s)"), ib)
    }

    /// hfr-bench over RDMA checks its results; --nic-stats reports each HCA port's writes.
    func testBenchmarkOverRDMAReportsHCATraffic() throws {
        let r = try JobRunner.run(ranks: 2, limit: 120, program: "hfr-bench", ["alltoall", "-b", "8", "-e", "4M", "-f", "8", "-c", "1", "--nic-stats"],
                                  environment: VerbsJobTests.soft)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("# Out of bounds values : 0 OK"), r.output)
        for rank in 0..<2 {
            for hca in ["soft_0:1", "soft_1:1"] {
                XCTAssertTrue(r.output.contains("[\(rank)] #   hca \(hca): wrote "), r.output)
                // The callers' buffers are registered per collective (HFR_IB_REG_CACHE unset); only
                // the scratch of the in-place calls stays cached.
                let line = r.output.split(separator: "\n").first { $0.hasPrefix("[\(rank)] #   hca \(hca) registrations: ") }
                XCTAssertNotNil(line, r.output)
                XCTAssertFalse(line?.contains(", 0 per collective") ?? true, r.output)
            }
        }
    }

    /// Buffers freed and mapped again at the same address between collectives (hfr-testworker
    /// remap: an all-to-all and an allgather into new pages every round), with the soft device
    /// keeping to the pages a region had when it was registered, as an HCA does
    /// (`HFR_IB_SOFT_PIN=1`). By default every collective registers the callers' buffers and
    /// releases them at its end: every element arrives and nothing stays cached. With
    /// `HFR_IB_REG_CACHE=1` the registrations kept from the first round name the old pages, and
    /// the later rounds' data never reaches the new ones.
    func testBuffersFreedAndMappedAgain() throws {
        guard VerbsJobTests.pageFramesVisible() else {
            throw XCTSkip("skipped: HFR_IB_SOFT_PIN reads page frames from /proc/<pid>/pagemap, which shows them to CAP_SYS_ADMIN only")
        }
        let out = try run(3, ["remap", "--link-stats"], env: ["HFR_IB_SOFT_PIN": "1", "HFR_DEBUG": "INFO"])
        XCTAssertTrue(out.contains("registered for each collective and released at its end (HFR_IB_REG_CACHE=0)"), out)
        var ports = 0
        for line in out.split(separator: "\n") where line.contains(" registrations on soft_") {
            XCTAssertTrue(line.contains(": 0 cached (0 B), 0 hits, 0 cached registrations, "), "a caller's buffer stayed registered: \(line)")
            XCTAssertFalse(line.contains(", 0 per collective"), "no registration per collective: \(line)")
            ports += 1
        }
        XCTAssertEqual(ports, 3 * 2, "every rank printed both ports\n\(out)")
        for rank in 0..<3 {
            XCTAssertFalse(out.contains("rank \(rank): remap: 0 round(s) had their buffers back at the same address"),
                           "rank \(rank) never got its buffers back at the old address, so nothing was tested\n\(out)")
        }

        let cached = try JobRunner.run(ranks: 3, limit: 240, program: "hfr-testworker", ["remap"],
                                       environment: VerbsJobTests.soft.merging(["HFR_IB_SOFT_PIN": "1", "HFR_IB_REG_CACHE": "1"]) { $1 })
        XCTAssertNotEqual(cached.status, 0, "with registrations cached the remapped buffers must miss their data\n\(cached.output)")
        XCTAssertTrue(cached.output.contains("wrong elements"), cached.output)
    }

    /// Memory registered with the communicator (hfr-testworker registered): while registered,
    /// collectives in it register nothing themselves; once deregistered the engine lets its
    /// registrations go and collectives register per collective again (large messages) or
    /// bounce (small ones). Deregistering twice is refused, and so is registering memory with a
    /// hole (invalidArgument).
    func testRegisteredMemoryIsRegisteredOnce() throws {
        for (count, small) in [(50_000, false), (500, true)] {
            let out = try run(3, ["registered", "--count", "\(count)"])
            var phases: [String: Int] = [:]
            for line in out.split(separator: "\n") where line.contains("registrations on soft_") {
                let registered = line.contains(" registered: ")
                phases[registered ? "registered" : "deregistered", default: 0] += 1
                let bytes = count * 3 * 4
                if registered {
                    XCTAssertTrue(line.contains(", 0 per collective"), "count \(count): registered memory was registered per collective: \(line)")
                    XCTAssertTrue(line.hasSuffix(", 2 registered by the caller (\(2 * bytes) B)"), "count \(count): \(line)")
                } else {
                    XCTAssertTrue(line.hasSuffix(", 0 registered by the caller (0 B)"), "count \(count): deregistered memory stayed: \(line)")
                    XCTAssertEqual(line.contains(", 0 per collective"), small,
                                   "count \(count): \(small ? "small messages bounce" : "large ones register per collective"): \(line)")
                }
            }
            XCTAssertEqual(phases, ["registered": 6, "deregistered": 6], "3 ranks x 2 ports, both phases\n\(out)")
        }
    }

    /// Whether /proc/self/pagemap shows page frames to this process (CAP_SYS_ADMIN).
    static func pageFramesVisible() -> Bool {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let p = UnsafeMutableRawPointer.allocate(byteCount: page, alignment: page)
        defer { p.deallocate() }
        memset(p, 1, page)
        let fd = open("/proc/self/pagemap", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var entry: UInt64 = 0
        guard pread(fd, &entry, 8, off_t(UInt(bitPattern: p) / UInt(page) * 8)) == 8 else { return false }
        return entry & ((1 << 55) - 1) != 0
    }

    /// libhfreduce.so and the tools start on a machine without libibverbs: they do not link it
    /// (CHFRVerbs loads it with dlopen when RDMA is asked for).
    func testNothingLinksLibibverbs() throws {
        var checked = 0
        for name in ["libhfreduce.so", "hfr-bench", "hfrun", "hfr-topo", "kernel-bench", "hfr-testworker"] {
            let path = JobRunner.binDir.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
            p.arguments = [path]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "ldd \(name): \(out)")
            XCTAssertFalse(out.contains("libibverbs"), "\(name) links libibverbs:\n\(out)")
            XCTAssertFalse(out.contains("libmlx"), "\(name) links a verbs provider:\n\(out)")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 2, "libhfreduce.so and hfr-bench are built in \(JobRunner.binDir.path)")
    }
}
