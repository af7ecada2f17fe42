import Glibc
import HFRSystem
import HFRTransport

/// What the rendezvous gives every rank: where each rank listens, and the communicator's id.
public struct RendezvousResult: Sendable {
    public var addresses: [RankAddress]
    public var commID: UInt64
}

/// Why rendezvous failed; the message names the rank or the setting at fault.
public struct RendezvousError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Rank 0 runs the rendezvous: every other rank connects to the root address, says who it is
/// (handshake with magic, version, job token, rank, size), which port it listens on, the
/// addresses of its NICs and how many ACTIVE HCA ports it offers for RDMA; when all have checked in, rank 0 sends everyone the table of addresses
/// and a fresh communicator id. A rank that publishes no NIC is reached at the address rank 0
/// sees its connection come from.
/// A connection that fails the handshake is closed and logged, and the rendezvous carries on.
public enum Rendezvous {
    enum Reject: UInt64 {
        case worldSize = 1, duplicateRank = 2
    }

    /// Runs the rendezvous for `rank`. `listen` is this rank's data listener: the port on every
    /// NIC in its `nics`, or, when that is empty, on the address rank 0 sees the rank connect
    /// from. `deadline` is monotonic.
    public static func run(rank: Int, size: Int, root: SocketAddress, jobToken: UInt64, listen: RankAddress,
                           deadline: UInt64) throws -> RendezvousResult {
        guard listen.hcaPorts >= 0 && listen.hcaPorts <= RankAddress.maxHCAPorts else {
            throw RendezvousError("rank \(rank) publishes \(listen.hcaPorts) HCA ports; at most \(RankAddress.maxHCAPorts) are allowed (narrow HFR_IB_HCA)")
        }
        guard listen.nics.count <= RankAddress.maxNICs else {
            throw RendezvousError("rank \(rank) publishes \(listen.nics.count) NIC addresses; at most \(RankAddress.maxNICs) are allowed (narrow HFR_SOCKET_IFNAME)")
        }
        if size == 1 {
            return RendezvousResult(addresses: [listen.nics.isEmpty ? RankAddress(port: listen.port, nics: [NICAddress(ip: root.ip, prefixLength: 32)], hcaPorts: listen.hcaPorts) : listen],
                                    commID: randomID())
        }
        return rank == 0
            ? try serve(size: size, root: root, jobToken: jobToken, listen: listen, deadline: deadline)
            : try join(rank: rank, size: size, root: root, jobToken: jobToken, listen: listen, deadline: deadline)
    }

    static func randomID() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }

    static func serve(size: Int, root: SocketAddress, jobToken: UInt64, listen: RankAddress, deadline: UInt64) throws -> RendezvousResult {
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
        var addresses = [RankAddress?](repeating: nil, count: size)
        addresses[0] = listen.nics.isEmpty ? RankAddress(port: listen.port, nics: [NICAddress(ip: root.ip, prefixLength: 32)], hcaPorts: listen.hcaPorts) : listen
        var conns: [(rank: Int, fd: Int32)] = []
        defer { for c in conns { close(c.fd) } }
        // Connections still saying who they are, read side by side: one that sends nothing, or
        // slowly, holds up nobody; each has 10 s, and beyond `limit` of them the oldest goes.
        var joining: [Joining] = []
        defer { for j in joining { close(j.fd) } }
        let limit = 64 + size
        var joined = 1
        while joined < size {
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else {
                let missing = (0..<size).filter { addresses[$0] == nil }
                throw RendezvousError("rendezvous timed out (HFR_TIMEOUT) waiting for rank\(missing.count > 1 ? "s" : "") \(missing.map(String.init).joined(separator: ", ")) to connect to \(root)")
            }
            for j in joining where j.deadline <= now {
                Log.warn(rank: 0, "rendezvous: closed connection from \(j.remote): its handshake did not arrive within 10 s")
                close(j.fd)
            }
            joining.removeAll { $0.deadline <= now }
            var fds = [pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)] + joining.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let until = joining.map(\.deadline).reduce(deadline, min)
            let ms = Int32(min(1000, (until - now + 999_999) / 1_000_000))
            guard poll(&fds, nfds_t(fds.count), ms) >= 0 || Errno.current == .interrupted else {
                throw RendezvousError("rendezvous: poll failed: \(Errno.current)")
            }
            // Read what arrived before accepting more: indices stay those of `fds`.
            var done: [Int] = []
            for k in joining.indices where fds[k + 1].revents != 0 {
                switch joining[k].read() {
                case .more: continue
                case .failed(let why):
                    Log.warn(rank: 0, "rendezvous: closed connection from \(joining[k].remote): \(why)")
                    close(joining[k].fd)
                case .complete(let hello, let nicBytes):
                    if let address = admit(hello, nicBytes, joining[k], size: size, jobToken: jobToken, root: root, addresses: addresses, deadline: deadline) {
                        addresses[Int(hello.fromRank)] = address
                        conns.append((Int(hello.fromRank), joining[k].fd))
                        joined += 1
                    }
                }
                done.append(k)
            }
            for k in done.reversed() { joining.remove(at: k) }
            if fds[0].revents != 0 {
                while let fd = try TCPSocket.accept(lfd) {
                    joining.append(Joining(fd: fd, remote: TCPSocket.peerAddress(fd).map { "\($0)" } ?? "?",
                                           deadline: min(deadline, MonotonicClock.nanoseconds() + 10_000_000_000)))
                    if joining.count > limit {
                        Log.warn(rank: 0, "rendezvous: closed connection from \(joining[0].remote): \(joining.count) connections are waiting to say who they are")
                        close(joining.removeFirst().fd)
                    }
                }
            }
        }
        let commID = randomID()
        // The table: per rank, port u16, NIC count u16, HCA ports u16 and 2 zero bytes, then 8
        // bytes per NIC.
        var table: [UInt8] = []
        for a in addresses {
            let a = a!
            table += withUnsafeBytes(of: a.port.littleEndian) { Array($0) }
            table += withUnsafeBytes(of: UInt16(a.nics.count).littleEndian) { Array($0) }
            table += withUnsafeBytes(of: UInt16(a.hcaPorts).littleEndian) { Array($0) }
            table += [0, 0]
            table += encodeNICs(a.nics)
        }
        for (rank, fd) in conns {
            var ok = Handshake(kind: .accept, jobToken: jobToken, commID: commID, fromRank: 0, toRank: 0, ranks: size)
            ok.value = commID
            let msg = ok.bytes + withUnsafeBytes(of: UInt32(table.count).littleEndian) { Array($0) } + table
            do { try msg.withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) } } catch {
                throw RendezvousError("rendezvous: cannot send the address table to rank \(rank): \(error)")
            }
        }
        return RendezvousResult(addresses: addresses.map { $0! }, commID: commID)
    }

    /// Checks a complete hello: the address of the rank it names, or nil when the connection was
    /// closed (another job's token) or refused (world size, rank taken or out of range; the
    /// rank is told why).
    static func admit(_ hello: Handshake, _ nicBytes: [UInt8], _ j: Joining, size: Int, jobToken: UInt64, root: SocketAddress,
                      addresses: [RankAddress?], deadline: UInt64) -> RankAddress? {
        let from = Int(hello.fromRank)
        let nicCount = nicBytes.count / 8
        let hcaPorts = min(Int((hello.value >> 32) & 0xFFFF), RankAddress.maxHCAPorts)
        var reject: Reject?
        if hello.kind != .hello || hello.jobToken != jobToken {
            Log.warn(rank: 0, "rendezvous: closed connection from \(j.remote): job token differs (another job, or HFR_JOB_TOKEN unset on one side)")
            close(j.fd)
            return nil
        } else if Int(hello.ranks) != size {
            Log.warn(rank: 0, "rendezvous: rank \(from) (from \(j.remote)) says the world size is \(hello.ranks), rank 0 has \(size)")
            reject = .worldSize
        } else if from <= 0 || from >= size {
            Log.warn(rank: 0, "rendezvous: a process at \(j.remote) claims rank \(from), outside 1..<\(size)")
            reject = .duplicateRank
        } else if addresses[from] != nil {
            Log.warn(rank: 0, "rendezvous: a second process claims rank \(from) (from \(j.remote))")
            reject = .duplicateRank
        }
        if let reject {
            var r = Handshake(kind: .reject, jobToken: jobToken, commID: 0, fromRank: 0, toRank: from, ranks: size)
            r.value = reject.rawValue
            let bytes = r.bytes
            _ = try? bytes.withUnsafeBytes { try TCPSocket.sendAll(j.fd, $0, deadline: min(deadline, MonotonicClock.nanoseconds() + 1_000_000_000)) }
            close(j.fd)
            return nil
        }
        // Without published NICs, the address the root sees the rank at is one that routes
        // from the other ranks too.
        let port = UInt16(truncatingIfNeeded: hello.value)
        if nicCount == 0 {
            let seen = TCPSocket.peerAddress(j.fd)?.ip ?? root.ip
            return RankAddress(port: port, nics: [NICAddress(ip: seen == 0 ? root.ip : seen, prefixLength: 32)], hcaPorts: hcaPorts)
        }
        return RankAddress(port: port, nics: decodeNICs(nicBytes, count: nicCount), hcaPorts: hcaPorts)
    }

    static func join(rank: Int, size: Int, root: SocketAddress, jobToken: UInt64, listen: RankAddress, deadline: UInt64) throws -> RendezvousResult {
        let fd: Int32
        do { fd = try TCPSocket.connect(to: root, deadline: deadline) } catch {
            throw RendezvousError("rank \(rank) cannot reach rank 0 at \(root) for rendezvous: \(error)"
                                  + " (rank 0 listens on what MASTER_ADDR or HFR_ROOT resolves to on its own host; a loopback address there, such as "
                                  + "127.0.1.1 for the host's own name, cannot be reached from other hosts)")
        }
        defer { close(fd) }
        var hello = Handshake(kind: .hello, jobToken: jobToken, commID: 0, fromRank: rank, toRank: 0, ranks: size)
        hello.value = UInt64(listen.hcaPorts) << 32 | UInt64(listen.nics.count) << 16 | UInt64(listen.port)
        var reply = [UInt8](repeating: 0, count: Handshake.size)
        let h: Handshake
        do {
            try (hello.bytes + encodeNICs(listen.nics)).withUnsafeBytes { try TCPSocket.sendAll(fd, $0, deadline: deadline) }
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
        var lengthBytes = [UInt8](repeating: 0, count: 4)
        var table: [UInt8] = []
        do {
            try lengthBytes.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: deadline) }
            let length = Int(lengthBytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
            guard length <= size * (8 + 8 * RankAddress.maxNICs) else {
                throw RendezvousError("rank \(rank): rank 0 announced an address table of \(length) bytes, more than \(size) ranks can fill")
            }
            table = [UInt8](repeating: 0, count: length)
            try table.withUnsafeMutableBytes { try TCPSocket.receiveAll(fd, $0, deadline: deadline) }
        } catch let e as RendezvousError { throw e } catch {
            throw RendezvousError("rank \(rank): the address table from rank 0 did not arrive: \(error)")
        }
        var addresses: [RankAddress] = []
        var at = 0
        for r in 0..<size {
            guard at + 8 <= table.count else { throw RendezvousError("rank \(rank): the address table from rank 0 ends before rank \(r)'s entry") }
            let (port, count, hcaPorts) = table.withUnsafeBytes {
                (UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt16.self)),
                 Int(UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self))),
                 Int(UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: at + 4, as: UInt16.self))))
            }
            at += 8
            guard count >= 1, count <= RankAddress.maxNICs, at + count * 8 <= table.count else {
                throw RendezvousError("rank \(rank): the address table from rank 0 gives rank \(r) \(count) NICs in \(table.count - at) bytes")
            }
            guard hcaPorts <= RankAddress.maxHCAPorts else {
                throw RendezvousError("rank \(rank): the address table from rank 0 gives rank \(r) \(hcaPorts) HCA ports (at most \(RankAddress.maxHCAPorts))")
            }
            addresses.append(RankAddress(port: port, nics: decodeNICs(Array(table[at..<(at + count * 8)]), count: count), hcaPorts: hcaPorts))
            at += count * 8
        }
        return RendezvousResult(addresses: addresses, commID: h.value)
    }

    /// 8 bytes per NIC: IPv4 address u32, prefix length u8, 3 bytes zero.
    static func encodeNICs(_ nics: [NICAddress]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: nics.count * 8)
        out.withUnsafeMutableBytes { p in
            for (k, n) in nics.enumerated() {
                p.storeBytes(of: n.ip.littleEndian, toByteOffset: k * 8, as: UInt32.self)
                p.storeBytes(of: UInt8(n.prefixLength), toByteOffset: k * 8 + 4, as: UInt8.self)
            }
        }
        return out
    }

    static func decodeNICs(_ bytes: [UInt8], count: Int) -> [NICAddress] {
        bytes.withUnsafeBytes { p in
            (0..<count).map { k in
                NICAddress(ip: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: k * 8, as: UInt32.self)),
                           prefixLength: Int(p.load(fromByteOffset: k * 8 + 4, as: UInt8.self)))
            }
        }
    }
}

/// A connection to the rendezvous port still sending its hello and NIC addresses, read without
/// blocking as its bytes arrive.
struct Joining {
    let fd: Int32
    let remote: String
    let deadline: UInt64
    var bytes: [UInt8] = []
    /// Handshake.size, then that plus 8 bytes per NIC once the hello says how many.
    var wanted = Handshake.size
    var hello: Handshake?

    enum Progress {
        case more
        case failed(String)
        case complete(Handshake, [UInt8])
    }

    init(fd: Int32, remote: String, deadline: UInt64) {
        self.fd = fd; self.remote = remote; self.deadline = deadline
        bytes.reserveCapacity(Handshake.size)
    }

    mutating func read() -> Progress {
        var chunk = [UInt8](repeating: 0, count: wanted - bytes.count)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n == 0 { return .failed("closed during the handshake") }
        if n < 0 { return Errno.current == .again || Errno.current == .interrupted ? .more : .failed("\(Errno.current)") }
        bytes += chunk[0..<n]
        if bytes.count < wanted { return .more }
        if hello == nil {
            let h: Handshake
            do { h = try bytes.withUnsafeBytes { raw throws(HandshakeError) in try Handshake.decode(raw) } } catch { return .failed("\(error)") }
            let nics = Int((h.value >> 16) & 0xFFFF)
            guard nics <= RankAddress.maxNICs else { return .failed("it publishes \(nics) NICs (at most \(RankAddress.maxNICs))") }
            hello = h
            wanted = Handshake.size + nics * 8
            if bytes.count < wanted { return .more }
        }
        return .complete(hello!, Array(bytes[Handshake.size...]))
    }
}
