import XCTest
import Glibc
import HFRBootstrap
import HFRSystem
import HFReduce

/// hfrGetUniqueId reserves the rendezvous port by listening on it; a communicator whose rank 0
/// does not use the reservation (a single rank, or a creation that fails before the rendezvous)
/// releases it instead of keeping it bound for the life of the process.
final class RootReservationTests: XCTestCase {
    func isBindable(_ address: SocketAddress) throws -> Bool {
        let fd = try TCPSocket.make()
        defer { close(fd) }
        do { try TCPSocket.bind(fd, to: address); return true } catch { return false }
    }

    func testUnusedReservationsAreReleased() throws {
        let loopback: UInt32 = 0x7F00_0001
        let one = try RootReservation.reserve(ip: loopback)
        XCTAssertFalse(try isBindable(one), "reserved")
        let comm = try Communicator(rank: 0, size: 1, root: one, jobToken: 1)
        comm.destroy()
        XCTAssertTrue(try isBindable(one), "a communicator of one rank released the reservation")

        let failing = try RootReservation.reserve(ip: loopback)
        var config = try Configuration.fromEnvironment()
        config.timeoutSeconds = -1
        XCTAssertThrowsError(try Communicator(rank: 0, size: 2, root: failing, jobToken: 1, configuration: config))
        XCTAssertTrue(try isBindable(failing), "a creation that failed released the reservation")
    }
}
