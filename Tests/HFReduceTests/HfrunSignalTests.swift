import Foundation
import XCTest

/// hfrun and the signals a terminal or a shell sends it: it stops its ranks and dies by the
/// signal (so a shell loop around it stops too), keeps running under `nohup`, and does not let an
/// inherited HFR_ROOT send the ranks elsewhere.
final class HfrunSignalTests: XCTestCase {
    struct Outcome {
        var output: String
        var reason: Process.TerminationReason
        var status: Int32
        var seconds: Double
    }

    /// Runs `script` under /bin/sh (which execs hfrun, so its pid is hfrun's), sends `signal`
    /// after `after` seconds, and waits (at most 30 s).
    func run(_ script: String, signal: Int32? = nil, after: Double = 1, environment: [String: String] = [:]) throws -> Outcome {
        let (p, pipe) = JobRunner.process("/bin/sh", ["-c", script], environment: environment.merging(["HFRUN": try JobRunner.tool("hfrun")]) { $1 })
        let start = Date()
        try p.run()
        if let signal {
            Thread.sleep(forTimeInterval: after)
            kill(p.processIdentifier, signal)
        }
        let watchdog = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        return Outcome(output: String(decoding: data, as: UTF8.self), reason: p.terminationReason, status: p.terminationStatus,
                       seconds: Date().timeIntervalSince(start))
    }

    /// Two ranks that write their pids and sleep, under hfrun sent `signal` after a second: the
    /// outcome and the ranks' pids, so the test can check they are gone.
    func runRanksRecordingPIDs(signal: Int32) throws -> (Outcome, [pid_t]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hfrun-signal-\(getpid())-\(signal)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run("exec \"$HFRUN\" -n 2 /bin/sh -c 'echo $$ > \(dir.path)/$RANK; exec sleep 60'", signal: signal)
        let pids = try (0..<2).map { rank in
            pid_t(try String(contentsOf: dir.appendingPathComponent("\(rank)"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        return (r, pids)
    }

    func testInterruptStopsTheRanksAndDiesByTheSignal() throws {
        for sig in [SIGINT, SIGTERM, SIGQUIT] {
            let (r, pids) = try runRanksRecordingPIDs(signal: sig)
            XCTAssertEqual(r.reason, .uncaughtSignal, "signal \(sig): \(r.output)")
            XCTAssertEqual(r.status, sig, r.output)
            XCTAssertTrue(r.output.contains("sending SIGTERM to ranks 0,1"), r.output)
            XCTAssertLessThan(r.seconds, 10, r.output)
            for (rank, pid) in pids.enumerated() {
                XCTAssertGreaterThan(pid, 0)
                XCTAssertEqual(kill(pid, 0), -1, "rank \(rank) (pid \(pid)) outlived hfrun after signal \(sig)")
            }
        }
    }

    /// kill -9 of hfrun (or the OOM killer): the ranks die with it (setpriv --pdeathsig).
    func testRanksDieWithAKilledHfrun() throws {
        guard access("/usr/bin/setpriv", X_OK) == 0 else { throw XCTSkip("skipped: /usr/bin/setpriv (util-linux) is not installed") }
        let (r, pids) = try runRanksRecordingPIDs(signal: SIGKILL)
        XCTAssertEqual(r.reason, .uncaughtSignal, r.output)
        for (rank, pid) in pids.enumerated() {
            XCTAssertGreaterThan(pid, 0)
            var gone = false
            for _ in 0..<50 where !gone {
                gone = kill(pid, 0) == -1
                if !gone { Thread.sleep(forTimeInterval: 0.1) }
            }
            XCTAssertTrue(gone, "rank \(rank) (pid \(pid)) outlived hfrun's SIGKILL")
            if !gone { kill(pid, SIGKILL) }
        }
    }

    /// A reader that stops reading hfrun's output (a paused pager) does not stop hfrun from
    /// acting on Ctrl-C: it wrote its output blocking, and sat in that write with the signal
    /// recorded and the ranks running.
    func testStalledOutputDoesNotStopSupervision() throws {
        // The pipe is not read while hfrun runs.
        let (p, pipe) = JobRunner.process(try JobRunner.tool("hfrun"), ["-n", "1", "/bin/sh", "-c", "yes output-line | head -c 2000000; exec sleep 60"])
        let start = Date()
        try p.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(p.processIdentifier, SIGINT)
        let exited = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { p.waitUntilExit(); exited.signal() }
        let inTime = exited.wait(timeout: .now() + 25) == .success
        if !inTime { kill(p.processIdentifier, SIGKILL) }
        _ = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertTrue(inTime, "hfrun did not exit within 25 s of SIGINT with its output stalled")
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertEqual(p.terminationStatus, SIGINT)
        XCTAssertLessThan(Date().timeIntervalSince(start), 25)
    }

    /// Started with SIGHUP ignored (nohup), hfrun ignores it and so do its ranks.
    func testNohupKeepsTheJob() throws {
        let r = try run("trap '' HUP; exec \"$HFRUN\" -n 2 /bin/sh -c 'sleep 2; echo rank $RANK done'", signal: SIGHUP)
        XCTAssertEqual(r.reason, .exit, r.output)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("[0] rank 0 done") && r.output.contains("[1] rank 1 done"), r.output)
    }

    /// HFR_ROOT would take precedence over the MASTER_ADDR/MASTER_PORT hfrun sets.
    func testInheritedRendezvousAddressIsDropped() throws {
        let r = try run("exec \"$HFRUN\" -n 1 /bin/sh -c 'echo root=${HFR_ROOT:-unset} port=$MASTER_PORT'", environment: ["HFR_ROOT": "10.9.8.7:1234"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("[0] root=unset port="), r.output)
    }
}
