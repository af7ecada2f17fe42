import XCTest

/// A rank that joins properly (job token, communicator id) and then sends frames no rank of the
/// library sends (hfr-testworker's RoguePeer.swift): rank 0 refuses each as a protocol violation
/// naming rank 1, promptly, instead of storing without end, overwriting state or hanging.
final class RoguePeerTests: XCTestCase {
    func testFramesNoRankSendsAreProtocolViolations() throws {
        let expected = [
            "too-many-early": "clears for more than 64 operations this rank has not started",
            "p2p-ready": "a ready-to-send for message 0 of operation #0 between two ranks",
            "eager-twice": "a second eager message 0 of operation #5",
            "clear-twice": "a second clear for message 0 of barrier #0",
        ]
        for (variant, reason) in expected {
            let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["rogue", variant],
                                      environment: ["HFR_NSOCKS": "1", "HFR_TIMEOUT": "20"])
            XCTAssertTrue(r.output.contains("[0] rank 0: failed: remoteError: protocol violation by rank 1: \(reason)"), "\(variant):\n\(r.output)")
            XCTAssertTrue(r.output.contains("[1] rank 1: rogue \(variant) done"), "\(variant):\n\(r.output)")
            XCTAssertLessThan(r.seconds, 15, "\(variant): refused at once, not at the timeout")
        }
    }

    /// 80 connections that never send a hello: rank 0 drops the oldest beyond its limit (64 plus
    /// one per socket of its peers), and the job's own connection still works.
    func testSilentConnectionsAreDroppedAndTheJobCarriesOn() throws {
        let r = try JobRunner.run(ranks: 2, limit: 60, program: "hfr-testworker", ["rogue", "silent-connections"],
                                  environment: ["HFR_NSOCKS": "1", "HFR_TIMEOUT": "20"])
        XCTAssertTrue(r.output.contains("[0] rank 0: barrier done"), r.output)
        XCTAssertTrue(r.output.contains("[1] rank 1: rank 0 closed 15 of 80 silent connections"), r.output)
        XCTAssertTrue(r.output.contains("no handshake from it yet"), r.output)
        XCTAssertLessThan(r.output.components(separatedBy: "no handshake from it yet").count - 1, 6, "drops are logged at 1, 2, 4, 8: \(r.output)")
    }
}
