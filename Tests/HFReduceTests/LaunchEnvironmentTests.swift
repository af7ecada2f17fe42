import XCTest
import HFRBootstrap
import HFRSystem

final class LaunchEnvironmentTests: XCTestCase {
    func detect(_ env: [String: String]) -> Result<LaunchEnvironment, Error> {
        Result { try LaunchEnvironment.detect { env[$0] } }
    }

    func testTorchrunVariables() throws {
        let e = try detect(["RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
                            "HFR_JOB_TOKEN": "00ff"]).get()
        XCTAssertEqual(e.rank, 3); XCTAssertEqual(e.size, 4); XCTAssertEqual(e.localRank, 1)
        XCTAssertEqual(e.root, try SocketAddress(host: "127.0.0.1", port: 29500))
        XCTAssertEqual(e.jobToken, 0xff)
        XCTAssertEqual(e.source, "torchrun")
    }

    /// Without HFR_JOB_TOKEN, two runs on one rendezvous address differ by the launcher's run id,
    /// and the ranks of one run agree.
    func testDefaultTokenTakesTheLaunchersRunID() throws {
        let base = ["RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"]
        func token(_ extra: [String: String]) throws -> UInt64 { try detect(base.merging(extra) { $1 }).get().jobToken }
        XCTAssertNotEqual(try token(["TORCHELASTIC_RUN_ID": "a"]), try token(["TORCHELASTIC_RUN_ID": "b"]))
        XCTAssertEqual(try token(["TORCHELASTIC_RUN_ID": "a"]), try token(["TORCHELASTIC_RUN_ID": "a", "RANK": "1"]))
        XCTAssertNotEqual(try token(["SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0"]), try token(["SLURM_JOB_ID": "7", "SLURM_STEP_ID": "1"]))
        XCTAssertNotEqual(try token([:]), try token(["MASTER_PORT": "29501"]))
    }

    func testOpenMPIAndSlurmVariablesWithHFRRoot() throws {
        let o = try detect(["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "HFR_ROOT": "127.0.0.1:4000"]).get()
        XCTAssertEqual(o.rank, 1); XCTAssertEqual(o.size, 2); XCTAssertEqual(o.root.port, 4000); XCTAssertEqual(o.source, "Open MPI")
        let s = try detect(["SLURM_PROCID": "0", "SLURM_NTASKS": "8", "MASTER_ADDR": "localhost", "MASTER_PORT": "1234"]).get()
        XCTAssertEqual(s.size, 8); XCTAssertEqual(s.source, "Slurm"); XCTAssertTrue(s.root.isLoopback)
    }

    func testErrorsNameTheVariable() {
        func message(_ env: [String: String]) -> String {
            if case let .failure(e) = detect(env) { return "\(e)" }
            return "no error"
        }
        XCTAssertTrue(message([:]).contains("RANK and WORLD_SIZE"))
        XCTAssertTrue(message(["RANK": "x", "WORLD_SIZE": "2"]).contains("RANK=x"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2", "HFR_ROOT": "nohost"]).contains("HFR_ROOT=nohost"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "", "MASTER_PORT": "1"]).contains("MASTER_ADDR=:"))
        XCTAssertTrue(message(["RANK": "1"]).contains("WORLD_SIZE is not set"))
        XCTAssertTrue(message(["RANK": "2", "WORLD_SIZE": "2", "HFR_ROOT": "127.0.0.1:1"]).contains("rank 2 is outside"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2"]).contains("MASTER_ADDR"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "99999"]).contains("MASTER_PORT=99999"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2", "HFR_ROOT": "nocolon"]).contains("host:port"))
    }

    func testTokensParseHexOrHashText() {
        XCTAssertEqual(LaunchEnvironment.parseToken("deadbeef"), 0xdeadbeef)
        XCTAssertNotEqual(LaunchEnvironment.parseToken("job-a"), LaunchEnvironment.parseToken("job-b"))
    }
}
