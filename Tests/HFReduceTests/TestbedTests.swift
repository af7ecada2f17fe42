import Foundation
import XCTest

/// Jobs across emulated hosts (network namespaces with rate-limited NICs, scripts/testbed.sh).
/// Needs root and iproute2; says "skipped: <reason>" otherwise. Traffic stays inside the
/// namespaces (198.18.0.0/15), and every job is bounded by hfrun --timeout.
final class TestbedTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testbed(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [TestbedTests.root.appendingPathComponent("scripts/testbed.sh").path] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("skipped: the test bed needs root for network namespaces") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip") ||
              FileManager.default.isExecutableFile(atPath: "/usr/bin/ip") else {
            throw XCTSkip("skipped: iproute2 (ip) is not installed")
        }
        let (status, out) = try testbed(["up", "2", "2", "1gbit,500mbit"])
        guard status == 0 else { throw XCTSkip("skipped: cannot build the test bed here: \(out)") }
    }

    override func tearDownWithError() throws {
        _ = try? testbed(["down"])
    }

    /// Two emulated hosts: every type and op over the first NIC, and the same with the second
    /// NIC selected by name, across the emulated network.
    func testAllreduceAcrossEmulatedHosts() throws {
        for nic in ["nic0", "=nic1"] {
            let master = nic == "nic0" ? "198.18.0.1" : "198.18.1.1"
            let r = try JobRunner.run(ranks: 2, limit: 120, hfrunArgs: ["--netns", "hfrtb-h0,hfrtb-h1", "--master-addr", master],
                                      program: "hfr-testworker", ["matrix", "quick"],
                                      environment: ["HFR_SOCKET_IFNAME": nic, "HFR_TIMEOUT": "60"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(r.output.components(separatedBy: "matrix OK").count - 1, 2, r.output)
        }
    }

    /// Both NICs by default: every collective over two links per peer, and the bytes split by
    /// the NICs' rates (nic0 1 Gbit/s, nic1 0.5 Gbit/s), each carrying a real share.
    func testStripesOverBothNICs() throws {
        let env = ["HFR_TIMEOUT": "60", "HFR_DEBUG": "INFO"]
        let hosts = ["--netns", "hfrtb-h0,hfrtb-h1", "--master-addr", "198.18.0.1"]
        let family = try JobRunner.run(ranks: 2, limit: 120, hfrunArgs: hosts, program: "hfr-testworker", ["family", "quick"], environment: env)
        XCTAssertEqual(family.status, 0, family.output)
        XCTAssertEqual(family.output.components(separatedBy: "family OK").count - 1, 2, family.output)
        XCTAssertTrue(family.output.contains("link 1 to rank 1: nic1"), "INFO names the second link\n\(family.output)")
        // Several collectives outstanding at once share the links (their sends take turns).
        let async = try JobRunner.run(ranks: 2, limit: 120, hfrunArgs: hosts, program: "hfr-testworker", ["async"], environment: ["HFR_TIMEOUT": "60"])
        XCTAssertEqual(async.status, 0, async.output)
        XCTAssertEqual(async.output.components(separatedBy: "async OK").count - 1, 2, async.output)

        let bench = try JobRunner.run(ranks: 2, limit: 120, hfrunArgs: hosts, program: "hfr-bench",
                                      ["-b", "1M", "-e", "16M", "-f", "4", "-n", "4", "-w", "1", "-c", "1", "--nic-stats"],
                                      environment: ["HFR_TIMEOUT": "60"])
        XCTAssertEqual(bench.status, 0, bench.output)
        XCTAssertTrue(bench.output.contains("Out of bounds values : 0 OK"), bench.output)
        func sent(_ nic: String) -> Double {
            // "[0] #   nic nic0 (198.18.0.1): sent 123 B, ..."
            guard let line = bench.output.split(separator: "\n").first(where: { $0.hasPrefix("[0]") && $0.contains("nic \(nic) (") }),
                  let r = line.range(of: "sent "), let n = Double(line[r.upperBound...].prefix { $0.isNumber }) else { return 0 }
            return n
        }
        let a = sent("nic0"), b = sent("nic1")
        XCTAssertGreaterThan(b, 0.15 * (a + b), "nic1 carries a share: nic0 \(a) B, nic1 \(b) B\n\(bench.output)")
        XCTAssertGreaterThan(a, b, "the 1 Gbit/s NIC carries more than the 0.5 Gbit/s one: nic0 \(a) B, nic1 \(b) B")
    }

    /// A NIC taken down in the middle of a 200-iteration allreduce loop: its links' unacknowledged
    /// fragments go to the other NIC and every result is right.
    func testNICDownMidLoop() throws {
        let r = try JobRunner.run(ranks: 2, limit: 150, hfrunArgs: ["--netns", "hfrtb-h0,hfrtb-h1", "--master-addr", "198.18.0.1"],
                                  program: "hfr-testworker", ["loop", "200", "--count", "262144", "--down-at", "50", "--down-nic", "nic1"],
                                  environment: ["HFR_TIMEOUT": "60", "HFR_LINK_TIMEOUT": "1", "HFR_DEBUG": "WARN"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "loop OK 200").count - 1, 2, r.output)
        XCTAssertTrue(r.output.contains("ip link set nic1 down at iteration 50: status 0"), r.output)
        XCTAssertTrue(r.output.contains("of link 1 to rank") && r.output.contains("is down"), "the failover is logged\n\(r.output)")

        // Small messages go eagerly, before the receiver asks: a NIC failing under them must not
        // lose one or leave a parked copy behind. (nic1 comes back first; new links are made
        // for the new job.)
        let (up, upOut) = try testbed(["nic-up", "1", "1"])
        XCTAssertEqual(up, 0, upOut)
        let small = try JobRunner.run(ranks: 2, limit: 150, hfrunArgs: ["--netns", "hfrtb-h0,hfrtb-h1", "--master-addr", "198.18.0.1"],
                                      program: "hfr-testworker", ["loop", "2000", "--count", "3000", "--down-at", "300", "--down-nic", "nic0"],
                                      environment: ["HFR_TIMEOUT": "60", "HFR_LINK_TIMEOUT": "1", "HFR_DEBUG": "INFO"])
        XCTAssertEqual(small.status, 0, small.output)
        XCTAssertEqual(small.output.components(separatedBy: "loop OK 2000").count - 1, 2, small.output)
        XCTAssertTrue(small.output.contains("re-sending"), "both sides settled the failed link\n\(small.output)")
    }

    /// Four hosts with two NICs each: allreduce (every type, op and algorithm) and the rest of the
    /// family over two links per peer, with no warning (ranks that leave after their work close
    /// their links quietly).
    func testFourHostsTwoNICs() throws {
        let (status, out) = try testbed(["up", "4", "2", "500mbit"])
        XCTAssertEqual(status, 0, out)
        let hosts = ["--netns", "hfrtb-h0,hfrtb-h1,hfrtb-h2,hfrtb-h3", "--master-addr", "198.18.0.1"]
        for mode in [["matrix", "quick"], ["family", "quick"]] {
            let r = try JobRunner.run(ranks: 4, limit: 240, hfrunArgs: hosts, program: "hfr-testworker", mode, environment: ["HFR_TIMEOUT": "60"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(r.output.components(separatedBy: "\(mode[0]) OK").count - 1, 4, r.output)
            XCTAssertEqual(r.warnings, [], "a clean run warns about nothing\n\(r.output)")
        }
    }

    /// kill -9 of a rank reached over two links: losing one link is not a failure, losing all of
    /// them is, and the survivors name the dead rank at once.
    func testKilledRankOverTwoLinksIsNamed() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, hfrunArgs: ["--grace", "25", "--netns", "hfrtb-h0,hfrtb-h1", "--master-addr", "198.18.0.1"],
                                  program: "hfr-testworker", ["kill", "--victim", "1"], environment: ["HFR_TIMEOUT": "20"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("SIGKILL"), r.output)
        let line = r.output.split(separator: "\n").first { $0.hasPrefix("[0] rank 0: failed after") }
        XCTAssertNotNil(line, "rank 0 did not report the failure:\n\(r.output)")
        XCTAssertTrue(line?.contains("rank=1") ?? false, "rank 0 does not name rank 1: \(line ?? "")")
        XCTAssertTrue(line?.contains("every link to rank 1 is down") ?? false, line.map(String.init) ?? "")
        if let line, let s = line.split(separator: " ").firstIndex(of: "after").map({ line.split(separator: " ")[$0 + 1] }), let secs = Double(s) {
            XCTAssertLessThan(secs, 10, "rank 0 took \(secs) s to notice")
        }
    }
}
