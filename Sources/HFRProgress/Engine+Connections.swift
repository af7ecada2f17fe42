import Glibc
import HFRSystem
import HFRTransport

extension Engine {
    /// Connections are made when a collective first needs a peer: the higher rank dials the lower
    /// one's listener, once per socket; the lower rank waits for it.
    func ensureConnected(_ peer: PeerState) {
        guard peer.phase == .idle else { return }
        peer.phase = .connecting
        guard config.rank > peer.rank else { return }
        let address = config.peerAddresses[peer.rank]
        for s in 0..<config.socketsPerPeer {
            do {
                let fd = try TCPSocket.make()
                try TCPSocket.setNonBlocking(fd)
                TCPSocket.configureForData(fd, bufferBytes: config.socketBufferBytes)
                let connected = try TCPSocket.startConnect(fd, to: address)
                let p = PendingConnection(id: nextPendingID, fd: fd, phase: .connecting, peer: peer.rank, socket: s,
                                          deadline: MonotonicClock.nanoseconds() &+ config.timeoutNanoseconds,
                                          remote: "rank \(peer.rank) at \(address)")
                nextPendingID += 1
                pending[p.id] = p
                try epoll.add(fd, events: Epoll.readable | Epoll.writable, token: Engine.tokenPending | UInt64(p.id))
                if connected { advance(p, events: Epoll.writable) }
            } catch {
                peerFailed(peer.rank, "cannot connect to \(address): \(error)")
                return
            }
        }
    }

    func acceptIncoming() {
        while true {
            let fd: Int32?
            do { fd = try TCPSocket.accept(config.listenFD) } catch {
                Log.warn(rank: config.rank, "accept on the data listener failed: \(error)")
                return
            }
            guard let fd else { return }
            let remote = TCPSocket.peerAddress(fd).map { "\($0)" } ?? "unknown address"
            let p = PendingConnection(id: nextPendingID, fd: fd, phase: .awaitingHello, peer: -1, socket: -1,
                                      deadline: MonotonicClock.nanoseconds() &+ min(config.timeoutNanoseconds, 30_000_000_000),
                                      remote: remote)
            nextPendingID += 1
            pending[p.id] = p
            do { try epoll.add(fd, events: Epoll.readable, token: Engine.tokenPending | UInt64(p.id)) } catch {
                dropPending(p, reason: "epoll: \(error)")
            }
        }
    }

    /// Moves a connection through its handshake.
    func advance(_ p: PendingConnection, events: UInt32) {
        switch p.phase {
        case .connecting:
            guard events & (Epoll.writable | Epoll.error | Epoll.hangup) != 0 else { return }
            if let e = TCPSocket.pendingError(p.fd) {
                dropPending(p, reason: nil)
                peerFailed(p.peer, "cannot connect to \(p.remote): \(e)")
                return
            }
            var hello = Handshake(kind: .hello, jobToken: config.jobToken, commID: config.commID,
                                  fromRank: config.rank, toRank: p.peer, ranks: config.ranks)
            hello.socket = UInt16(p.socket)
            let bytes = hello.bytes
            let sent = bytes.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == Handshake.size else {
                dropPending(p, reason: nil)
                peerFailed(p.peer, "cannot send the handshake to \(p.remote): \(Errno.current)")
                return
            }
            p.phase = .awaitingReply
            try? epoll.modify(p.fd, events: Epoll.readable, token: Engine.tokenPending | UInt64(p.id))
        case .awaitingReply, .awaitingHello:
            let n = p.buffer.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress! + p.filled, Handshake.size - p.filled, Int32(MSG_DONTWAIT)) }
            if n == 0 || (n < 0 && Errno.current != .again && Errno.current != .interrupted) {
                let why = n == 0 ? "closed during the handshake" : "\(Errno.current)"
                dropPending(p, reason: p.phase == .awaitingHello ? "connection from \(p.remote) \(why)" : nil)
                if p.phase == .awaitingReply { peerFailed(p.peer, "\(p.remote) \(why)") }
                return
            }
            if n < 0 { return }
            p.filled += n
            if p.filled < Handshake.size { return }
            let h: Handshake
            do { h = try p.buffer.withUnsafeBytes { raw throws(HandshakeError) in try Handshake.decode(raw) } } catch {
                dropPending(p, reason: "rejected connection from \(p.remote): \(error)")
                if p.phase == .awaitingReply { peerFailed(p.peer, "bad handshake reply: \(error)") }
                return
            }
            if p.phase == .awaitingReply {
                guard h.kind == .accept, Int(h.fromRank) == p.peer, h.jobToken == config.jobToken, h.commID == config.commID else {
                    dropPending(p, reason: nil)
                    peerFailed(p.peer, "\(p.remote) refused the connection")
                    return
                }
                attach(p, peer: p.peer, socket: p.socket)
            } else {
                if h.kind != .hello {
                    dropPending(p, reason: "rejected connection from \(p.remote): expected a hello, got \(h.kind)"); return
                }
                if let why = h.mismatch(jobToken: config.jobToken, commID: config.commID, myRank: config.rank,
                                        ranks: config.ranks, sockets: config.socketsPerPeer) {
                    dropPending(p, reason: "rejected connection from \(p.remote): \(why)"); return
                }
                let peer = peers[Int(h.fromRank)]
                if peer.channels[Int(h.socket)] != nil || peer.phase == .failed || peer.phase == .closed {
                    dropPending(p, reason: "rejected connection from \(p.remote): rank \(h.fromRank) socket \(h.socket) is already connected"); return
                }
                var reply = Handshake(kind: .accept, jobToken: config.jobToken, commID: config.commID,
                                      fromRank: config.rank, toRank: Int(h.fromRank), ranks: config.ranks)
                reply.socket = h.socket
                let bytes = reply.bytes
                let sent = bytes.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent == Handshake.size else { dropPending(p, reason: "cannot answer \(p.remote): \(Errno.current)"); return }
                TCPSocket.configureForData(p.fd, bufferBytes: config.socketBufferBytes)
                if peer.phase == .idle { peer.phase = .connecting }
                attach(p, peer: Int(h.fromRank), socket: Int(h.socket))
            }
        }
    }

    func dropPending(_ p: PendingConnection, reason: String?) {
        if let reason { Log.warn(rank: config.rank, reason) }
        pending[p.id] = nil
        epoll.remove(p.fd)
        close(p.fd)
    }

    /// Turns a finished handshake into a data channel; the peer is connected once all its sockets are.
    func attach(_ p: PendingConnection, peer rank: Int, socket: Int) {
        pending[p.id] = nil
        let peer = peers[rank]
        let ch = TCPChannel(fd: p.fd, peer: rank, link: 0, index: socket, delegate: self, maxPayload: config.fragmentBytes)
        peer.channels[socket] = ch
        peer.attached += 1
        try? epoll.modify(p.fd, events: Epoll.readable, token: channelToken(ch))
        guard peer.attached == config.socketsPerPeer else { return }
        peer.phase = .connected
        peer.eagerCredits = config.eagerCredits
        Log.info(rank: config.rank, "connected to rank \(rank) at \(config.peerAddresses[rank]) with \(config.socketsPerPeer) socket(s)")
        if let ch0 = peer.channels[0] {
            for h in peer.pendingControl { ch0.enqueue(control: h) }
            peer.pendingControl.removeAll()
            markDirty(ch0)
        }
        pumpSends(peer)
        // Data may already be waiting on sockets attached earlier.
        for case let c? in peer.channels { do { try c.readable() } catch { channelFailed(c, error); return } }
    }
}
