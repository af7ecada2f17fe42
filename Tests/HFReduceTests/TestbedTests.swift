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
}
