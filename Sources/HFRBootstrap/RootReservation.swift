import Glibc
import HFRSystem

/// Listening sockets bound ahead of time for a rendezvous root (`hfrGetUniqueId` reserves the
/// port when it makes the id, so that nothing else can take it before rank 0 joins).
public enum RootReservation {
    private static let lock = ConditionLock()
    nonisolated(unsafe) private static var reserved: [SocketAddress: Int32] = [:]

    /// Binds and listens on a free port of `ip`; returns the address the id should carry.
    public static func reserve(ip: UInt32) throws -> SocketAddress {
        let (fd, bound) = try TCPSocket.listen(on: SocketAddress(ip: ip, port: 0))
        let address = SocketAddress(ip: ip, port: bound.port)
        lock.withLock { reserved[address] = fd }
        return address
    }

    /// The reserved listener for `address`, if this process made one; the caller owns it then.
    static func take(_ address: SocketAddress) -> Int32? {
        lock.withLock { reserved.removeValue(forKey: address) }
    }

    /// Closes the reservation for `address` if the rendezvous did not take it (a communicator of
    /// one rank, or one whose creation failed before its rendezvous).
    public static func release(_ address: SocketAddress) {
        if let fd = take(address) { close(fd) }
    }
}
