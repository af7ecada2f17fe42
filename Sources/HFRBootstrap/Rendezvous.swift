import Glibc
import HFRSystem
import HFRTransport

/// What the rendezvous gives every rank: where each rank listens, and the communicator's id.
public struct RendezvousResult: Sendable {
    public var addresses: [SocketAddress]
    public var commID: UInt64
}

/// Why rendezvous failed; the message names the rank or the setting at fault.
public struct RendezvousError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Rank 0 runs the rendezvous: every other rank connects to the root address, says who it is
/// (handshake with magic, version, job token, rank, size) and which port it listens on; when all
/// have checked in, rank 0 sends everyone the table of addresses and a fresh communicator id.
/// A connection that fails the handshake is closed and logged, and the rendezvous carries on.
public enum Rendezvous {
    enum Reject: UInt64 {
        case worldSize = 1, duplicateRank = 2
    }

    /// Runs the rendezvous for `rank`. `listen` is this rank's data listener: its IPv4 address
    /// is published as is, or, when 0, as rank 0 sees the rank's connection. `deadline` is monotonic.
    public static func run(rank: Int, size: Int, root: SocketAddress, jobToken: UInt64, listen: SocketAddress,
                           deadline: UInt64) throws -> RendezvousResult {
        if size == 1 {
            return RendezvousResult(addresses: [SocketAddress(ip: listen.ip == 0 ? root.ip : listen.ip, port: listen.port)], commID: randomID())
        }
        return rank == 0
            ? try serve(size: size, root: root, jobToken: jobToken, listen: listen, deadline: deadline)
            : try join(rank: rank, size: size, root: root, jobToken: jobToken, listen: listen, deadline: deadline)
    }

    static func randomID() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }

    static func serve(size: Int, root: SocketAddress, jobToken: UInt64, listen: SocketAddress, deadline: UInt64) throws -> RendezvousResult {
        let lfd: Int32
        if let reserved = RootReservation.take(root) {
            lfd = reserved
        } else {
            do { lfd = try TCPSocket.listen(on: root).0 } catch {
                throw RendezvousError("rank 0 cannot listen on the rendezvous address \(root): \(error) (is MASTER_PORT/HFR_ROOT in use, or not an address of this host?)")
            }
        }
        defer { close(lfd) }
        try TCPSocket.setNonBlocking(lfd)
        var addresses = [SocketAddress?](repeating: nil, count: size)
        addresses[0] = SocketAddress(ip: listen.ip == 0 ? root.ip : listen.ip, port: listen.port)
        var conns: [Int32] = []
        defer { for fd in conns { close(fd) } }
        var joined = 1
        while joined < size {
            do { try TCPSocket.poll(lfd, events: Int16(POLLIN), deadline: deadline) } catch {
                let missing = (0..<size).filter { addresses[$0] == nil }
                throw RendezvousError("rendezvous timed out (HFR_TIMEOUT) waiting for rank\(missing.count > 1 ? "s" : "") \(missing.map(String.init).joined(separator: ", ")) to connect to \(root)")
            }
            guard let fd = try TCPSocket.accept(lfd) else { continue }
            let remote = TCPSocket.peerAddress(fd)
            var buf = [UInt8](repeating: 0, count: Handshake.size)
            let hello: Handshake
            do {
                try buf.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: min(deadline, MonotonicClock.nanoseconds() + 10_000_000_000)) }
                hello = try buf.withUnsafeBytes { raw throws(HandshakeError) in try Handshake.decode(raw) }
            } catch {
                Log.warn(rank: 0, "rendezvous: closed connection from \(remote.map { "\($0)" } ?? "?"): \(error)")
                close(fd); continue
            }
            let from = Int(hello.fromRank)
            var reject: Reject?
            if hello.kind != .hello || hello.jobToken != jobToken {
                Log.warn(rank: 0, "rendezvous: closed connection from \(remote.map { "\($0)" } ?? "?"): job token differs (another job, or HFR_JOB_TOKEN unset on one side)")
                close(fd); continue
            } else if Int(hello.ranks) != size {
                Log.warn(rank: 0, "rendezvous: rank \(from) says the world size is \(hello.ranks), rank 0 has \(size)")
                reject = .worldSize
            } else if from <= 0 || from >= size || addresses[from] != nil {
                Log.warn(rank: 0, "rendezvous: a second process claims rank \(from) (from \(remote.map { "\($0)" } ?? "?"))")
                reject = .duplicateRank
            }
            if let reject {
                var r = Handshake(kind: .reject, jobToken: jobToken, commID: 0, fromRank: 0, toRank: from, ranks: size)
                r.value = reject.rawValue
                let bytes = r.bytes
                _ = try? bytes.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) }
                close(fd); continue
            }
            // The address the root sees the rank at is one that routes from the other ranks too.
            let published = UInt32(truncatingIfNeeded: hello.value >> 16)
            let seen = remote?.ip ?? root.ip
            addresses[from] = SocketAddress(ip: published != 0 ? published : (seen == 0 ? root.ip : seen),
                                            port: UInt16(truncatingIfNeeded: hello.value))
            conns.append(fd)
            joined += 1
        }
        let commID = randomID()
        var table = [UInt8](repeating: 0, count: size * 8)
        for (r, a) in addresses.enumerated() {
            let a = a!
            table.withUnsafeMutableBytes {
                $0.storeBytes(of: a.ip.littleEndian, toByteOffset: r * 8, as: UInt32.self)
                $0.storeBytes(of: a.port.littleEndian, toByteOffset: r * 8 + 4, as: UInt16.self)
            }
        }
        for fd in conns {
            var ok = Handshake(kind: .accept, jobToken: jobToken, commID: commID, fromRank: 0, toRank: 0, ranks: size)
            ok.value = commID
            let msg = ok.bytes + table
            do { try msg.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) } } catch {
                throw RendezvousError("rendezvous: cannot send the address table: \(error)")
            }
        }
        return RendezvousResult(addresses: addresses.map { $0! }, commID: commID)
    }

    static func join(rank: Int, size: Int, root: SocketAddress, jobToken: UInt64, listen: SocketAddress, deadline: UInt64) throws -> RendezvousResult {
        let fd: Int32
        do { fd = try TCPSocket.connect(to: root, deadline: deadline) } catch {
            throw RendezvousError("rank \(rank) cannot reach rank 0 at \(root) for rendezvous: \(error)")
        }
        defer { close(fd) }
        var hello = Handshake(kind: .hello, jobToken: jobToken, commID: 0, fromRank: rank, toRank: 0, ranks: size)
        hello.value = UInt64(listen.ip) << 16 | UInt64(listen.port)
        var reply = [UInt8](repeating: 0, count: Handshake.size)
        let h: Handshake
        do {
            try hello.bytes.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) }
            try reply.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: deadline) }
            h = try reply.withUnsafeBytes { raw throws(HandshakeError) in try Handshake.decode(raw) }
        } catch let e as SystemCallError where e.errno.rawValue == ETIMEDOUT {
            throw RendezvousError("rank \(rank): rendezvous with rank 0 at \(root) timed out (HFR_TIMEOUT); some rank has not joined")
        } catch let e as SystemCallError where e.errno.rawValue == ECONNRESET {
            throw RendezvousError("rank \(rank): rank 0 at \(root) closed the rendezvous connection (job token differs, or rank 0 failed)")
        } catch {
            throw RendezvousError("rank \(rank): rendezvous with rank 0 at \(root) failed: \(error)")
        }
        if h.kind == .reject {
            switch Reject(rawValue: h.value) {
            case .worldSize: throw RendezvousError("rank \(rank): rank 0 has a different world size than \(size)")
            case .duplicateRank: throw RendezvousError("rank \(rank): another process already joined as rank \(rank)")
            case nil: throw RendezvousError("rank \(rank): rank 0 refused the rendezvous")
            }
        }
        guard h.kind == .accept, h.jobToken == jobToken else {
            throw RendezvousError("rank \(rank): unexpected rendezvous reply from \(root)")
        }
        var table = [UInt8](repeating: 0, count: size * 8)
        do { try table.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: deadline) } } catch {
            throw RendezvousError("rank \(rank): the address table from rank 0 did not arrive: \(error)")
        }
        let addresses = (0..<size).map { r in
            table.withUnsafeBytes {
                SocketAddress(ip: UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: r * 8, as: UInt32.self)),
                              port: UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: r * 8 + 4, as: UInt16.self)))
            }
        }
        return RendezvousResult(addresses: addresses, commID: h.value)
    }
}
