import Glibc
import HFRSystem
import HFRTransport

extension Engine {
    /// Connections are made when a collective first needs a peer: the higher rank dials the lower
    /// one's listener, once per socket of every link, from the link's local NIC to the peer's; the
    /// lower rank waits for them.
    func ensureConnected(_ peer: PeerState) {
        guard peer.phase == .idle else { return }
        peer.phase = .connecting
        guard config.rank > peer.rank else { return }
        if peer.links.isEmpty {
            peerFailed(peer.rank, "no link: rank \(peer.rank) published no NIC address")
            return
        }
        let mine = config.peerAddresses[config.rank], theirs = config.peerAddresses[peer.rank]
        for (l, link) in peer.links.enumerated() {
            let address = SocketAddress(ip: theirs.nics[link.remote].ip, port: theirs.port)
            for s in 0..<peer.socketsPerLink {
                let channel = l * peer.socketsPerLink + s
                do {
                    let fd = try TCPSocket.make()
                    do {
                        try TCPSocket.setNonBlocking(fd)
                        TCPSocket.configureForData(fd, bufferBytes: config.socketBufferBytes)
                        // Leave through the link's own NIC (only when this rank published its NICs).
                        if !config.nicNames.isEmpty { try TCPSocket.bind(fd, to: SocketAddress(ip: mine.nics[link.local].ip, port: 0)) }
                        let connected = try TCPSocket.startConnect(fd, to: address)
                        let p = PendingConnection(id: nextPendingID, fd: fd, phase: .connecting, peer: peer.rank, socket: channel,
                                                  deadline: MonotonicClock.nanoseconds() &+ config.timeoutNanoseconds,
                                                  remote: "rank \(peer.rank) at \(address)")
                        nextPendingID += 1
                        pending[p.id] = p
                        try epoll.add(fd, events: Epoll.readable | Epoll.writable, token: Engine.tokenPending | UInt64(p.id))
                        if connected { advance(p, events: Epoll.writable) }
                    } catch {
                        close(fd)
                        throw error
                    }
                } catch {
                    connectionLost(peer.rank, channel: channel, "cannot connect to \(address) over link \(l) (\(link.name)): \(error)")
                }
            }
        }
    }

    /// A connection of `channel` to `rank` could not be made. With other links to the peer the job
    /// goes on without it; the peer fails only when no channel is left.
    func connectionLost(_ rank: Int, channel: Int, _ reason: String) {
        let peer = peers[rank]
        guard peer.phase != .failed && peer.phase != .closed else { return }
        peer.lost += 1
        if peer.reliable && peer.lost < peer.channels.count {
            Log.warn(rank: config.rank, "\(reason); carrying on over the other links to rank \(rank)")
            return
        }
        peerFailed(rank, reason)
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
            limitUnidentified()
        }
    }

    /// Connections that have not said who they are yet hold a descriptor each until their
    /// handshake deadline. Ranks send their hello as soon as they connect, so more of them than
    /// every socket of every peer at once are not ranks of this job: the oldest are dropped, and
    /// whoever opens connections without a word cannot use up the descriptors.
    func limitUnidentified() {
        let waiting = pending.values.filter { $0.phase == .awaitingHello }
        let limit = 64 + peers.reduce(0) { $0 + $1.channels.count }
        guard waiting.count > limit else { return }
        for p in waiting.sorted(by: { $0.id < $1.id }).prefix(waiting.count - limit) {
            silentDropped += 1
            // Logged at 1, 2, 4, 8, ... drops: a flood of connections is not a flood of lines.
            let log = silentDropped & (silentDropped - 1) == 0
            dropPending(p, reason: log ? "dropped the connection from \(p.remote): no handshake from it yet, and \(waiting.count) connections are waiting for one "
                                       + "(\(silentDropped) dropped so far)" : nil)
        }
    }

    /// Moves a connection through its handshake.
    func advance(_ p: PendingConnection, events: UInt32) {
        switch p.phase {
        case .connecting:
            guard events & (Epoll.writable | Epoll.error | Epoll.hangup) != 0 else { return }
            if let e = TCPSocket.pendingError(p.fd) {
                dropPending(p, reason: nil)
                connectionLost(p.peer, channel: p.socket, "cannot connect to \(p.remote): \(e)")
                return
            }
            var hello = Handshake(kind: .hello, jobToken: config.jobToken, commID: config.commID,
                                  fromRank: config.rank, toRank: p.peer, ranks: config.ranks)
            let spl = peers[p.peer].socketsPerLink
            hello.socket = UInt16(p.socket % spl)
            hello.link = UInt16(p.socket / spl)
            let bytes = hello.bytes
            let sent = bytes.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == Handshake.size else {
                dropPending(p, reason: nil)
                connectionLost(p.peer, channel: p.socket, "cannot send the handshake to \(p.remote): \(Errno.current)")
                return
            }
            p.phase = .awaitingReply
            try? epoll.modify(p.fd, events: Epoll.readable, token: Engine.tokenPending | UInt64(p.id))
        case .awaitingQueuePair:
            receiveQueuePairAddress(p)
        case .awaitingReply, .awaitingHello:
            let n = p.buffer.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress! + p.filled, Handshake.size - p.filled, Int32(MSG_DONTWAIT)) }
            if n == 0 || (n < 0 && Errno.current != .again && Errno.current != .interrupted) {
                let why = n == 0 ? "closed during the handshake" : "\(Errno.current)"
                if p.phase == .awaitingHello && p.filled == 0 {
                    // Said nothing at all: a port scan or a health check, not a rank.
                    Log.info(rank: config.rank, "connection from \(p.remote) \(why) without a word")
                    dropPending(p, reason: nil)
                    return
                }
                dropPending(p, reason: p.phase == .awaitingHello ? "connection from \(p.remote) \(why)" : nil)
                if p.phase == .awaitingReply { connectionLost(p.peer, channel: p.socket, "\(p.remote) \(why)") }
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
                let wrong: String?
                if h.kind == .reject {
                    wrong = "refused the connection: \(HandshakeRefusal.Reason.describe(h.value)) (its log says more)"
                } else if h.kind != .accept {
                    wrong = "answered the handshake with a \(h.kind)"
                } else if h.jobToken != config.jobToken || h.commID != config.commID {
                    wrong = "accepted with another job token or communicator id"
                } else if Int(h.fromRank) != p.peer {
                    wrong = "accepted as rank \(h.fromRank)"
                } else if Int(h.toRank) != config.rank || Int(h.ranks) != config.ranks {
                    wrong = "accepted a connection from rank \(h.toRank) of \(h.ranks), not from rank \(config.rank) of \(config.ranks)"
                } else if Int(h.link) * peers[p.peer].socketsPerLink + Int(h.socket) != p.socket {
                    wrong = "accepted for link \(h.link) socket \(h.socket), not the one dialed"
                } else {
                    wrong = nil
                }
                if let wrong {
                    dropPending(p, reason: nil)
                    connectionLost(p.peer, channel: p.socket, "\(p.remote) \(wrong)")
                    return
                }
                if peers[p.peer].rdma { beginQueuePairExchange(p) } else { attach(p, peer: p.peer, socket: p.socket) }
            } else {
                if h.kind != .hello {
                    dropPending(p, reason: "rejected connection from \(p.remote): expected a hello, got \(h.kind)"); return
                }
                if let why = h.mismatch(jobToken: config.jobToken, commID: config.commID, myRank: config.rank,
                                        ranks: config.ranks, sockets: { self.peers[$0].socketsPerLink }, links: { self.peers[$0].links.count }) {
                    refuse(p, h, why)
                    return
                }
                let peer = peers[Int(h.fromRank)]
                let channel = Int(h.link) * peer.socketsPerLink + Int(h.socket)
                if peer.channels[channel] != nil || peer.down[channel] != nil || peer.phase == .failed || peer.phase == .closed
                    || (peer.rdma && peer.links[Int(h.link)].rdma != nil) {
                    refuse(p, h, HandshakeRefusal(.alreadyConnected, "rank \(h.fromRank) link \(h.link) socket \(h.socket) is already connected"))
                    return
                }
                var reply = Handshake(kind: .accept, jobToken: config.jobToken, commID: config.commID,
                                      fromRank: config.rank, toRank: Int(h.fromRank), ranks: config.ranks)
                reply.socket = h.socket
                reply.link = h.link
                let bytes = reply.bytes
                let sent = bytes.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent == Handshake.size else { dropPending(p, reason: "cannot answer \(p.remote): \(Errno.current)"); return }
                TCPSocket.configureForData(p.fd, bufferBytes: config.socketBufferBytes)
                if peer.phase == .idle { peer.phase = .connecting }
                p.peer = Int(h.fromRank)
                p.socket = channel
                if peer.rdma { beginQueuePairExchange(p) } else { attach(p, peer: Int(h.fromRank), socket: channel) }
            }
        }
    }

    /// Answers a hello that does not match with a reject naming the reason (best effort: the
    /// socket is new, its buffer empty), so the dialing rank can say what was wrong; logs it here.
    /// The reject carries no job token or communicator id: a caller without them learns nothing.
    func refuse(_ p: PendingConnection, _ hello: Handshake, _ why: HandshakeRefusal) {
        var reply = Handshake(kind: .reject, jobToken: 0, commID: 0, fromRank: config.rank,
                              toRank: Int(hello.fromRank), ranks: config.ranks)
        reply.value = why.reason.rawValue
        _ = reply.bytes.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        dropPending(p, reason: "rejected connection from \(p.remote): \(why)")
    }

    func dropPending(_ p: PendingConnection, reason: String?) {
        if let reason { Log.warn(rank: config.rank, reason) }
        pending[p.id] = nil
        epoll.remove(p.fd)
        close(p.fd)
    }

    /// Turns a finished handshake into a data channel. A peer over one link is connected once all
    /// its sockets are; a peer over several links as soon as one is, the others joining as they come.
    func attach(_ p: PendingConnection, peer rank: Int, socket channel: Int) {
        let peer = peers[rank]
        guard peer.channels[channel] == nil else {
            // Cannot happen with the checks on both sides of the handshake; a second socket in the
            // slot would leave the first registered with epoll under the same token.
            dropPending(p, reason: "dropped a second connection for rank \(rank) socket \(channel) (\(p.remote))")
            return
        }
        pending[p.id] = nil
        let l = channel / peer.socketsPerLink
        let ch = TCPChannel(fd: p.fd, peer: rank, link: l, index: channel, delegate: self,
                            maxPayload: config.fragmentBytes, reliable: peer.reliable)
        peer.channels[channel] = ch
        peer.attached += 1
        try? epoll.modify(p.fd, events: Epoll.readable, token: channelToken(ch))
        let link = peer.links[l]
        if let r = link.rdma {
            r.state = .up
            link.announced = true
            let port = r.port.port
            Log.info(rank: config.rank, "link \(l) to rank \(rank): RDMA \(r.description) (RC, \(port.attributes.linkLayer == .ethernet ? "RoCE, GID \(port.gid)" : "InfiniBand, LID \(port.attributes.lid)"), "
                     + "MTU \(min(r.qp.localAddress.mtu, r.remote?.mtu ?? r.qp.localAddress.mtu))), control over \(link.control)"
                     + (peer.reliable ? " (one of \(peer.links.count) links: at most \(config.maxInflightFragments) writes in flight per link)" : ""))
        } else if !link.announced && (l * peer.socketsPerLink..<(l + 1) * peer.socketsPerLink).allSatisfy({ peer.channels[$0] != nil }) {
            link.announced = true
            Log.info(rank: config.rank, "link \(l) to rank \(rank): \(link.name), \(peer.socketsPerLink) socket(s)"
                     + (peer.reliable ? " (one of \(peer.links.count) links: fragments acknowledged, at most \(config.maxInflightFragments) in flight per link)" : ""))
        }
        if peer.phase == .connected {
            pumpSends(peer)
            do { if try ch.readable() { markDirty(ch) } } catch { channelFailed(ch, error) }
            return
        }
        guard peer.reliable || peer.attached == peer.channels.count else { return }
        peer.phase = .connected
        // RDMA peers take no eager data: every message waits for its clear-to-write.
        peer.eagerCredits = peer.rdma ? 0 : config.eagerCredits
        Log.info(rank: config.rank, peer.rdma ? "connected to rank \(rank) over \(peer.links.count) RDMA link(s), each a queue pair and a control socket"
                                               : "connected to rank \(rank) over \(peer.links.count) link(s) x \(peer.socketsPerLink) socket(s) (HFR_NSOCKS)")
        if let ch0 = peer.controlChannel {
            for f in peer.pendingControl { ch0.enqueue(control: f.header, target: f.target) }
            peer.pendingControl.removeAll()
            markDirty(ch0)
        }
        pumpSends(peer)
        // Data may already be waiting on sockets attached earlier.
        for case let c? in peer.channels { do { if try c.readable() { markDirty(c) } } catch { channelFailed(c, error); return } }
    }
}
