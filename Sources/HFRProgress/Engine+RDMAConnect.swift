import Glibc
import HFRSystem
import HFRTransport
import HFRVerbs

/// Setting up the queue pair of an RDMA link: the link's TCP socket does the usual handshake, then
/// carries the queue pair addresses (LID, GID, QPN, PSN, MTU; `QueuePairAddress`), the dialer's
/// first. Each side connects its queue pair (RTR, RTS) once it has the other's, the acceptor
/// before it answers, so that the dialer's first write finds a queue pair ready to receive. The
/// socket then stays open as the link's control channel.
extension Engine {
    /// After the handshake of a socket to an RDMA peer: makes the link's queue pair (in INIT, its
    /// receives posted) and starts the exchange.
    func beginQueuePairExchange(_ p: PendingConnection) {
        let peer = peers[p.peer]
        let l = p.socket / peer.socketsPerLink
        let port = rdmaPorts[l]
        do {
            let qp = try port.makeQueuePair(options: config.connectOptions)
            let link = RDMALink(port: port, qp: qp, peer: peer.rank, link: l)
            for _ in 0..<port.receiveDepth { try link.postReceive() }
            peer.links[l].rdma = link
            if p.dialed { try sendQueuePairAddress(p, link) }
        } catch {
            dropPending(p, reason: nil)
            connectionLost(peer.rank, channel: p.socket, "cannot set up the queue pair of link \(l) to rank \(peer.rank) on \(port.name): \(error)")
            return
        }
        p.phase = .awaitingQueuePair
        p.filled = 0
        try? epoll.modify(p.fd, events: Epoll.readable, token: Engine.tokenPending | UInt64(p.id))
    }

    func sendQueuePairAddress(_ p: PendingConnection, _ link: RDMALink) throws(SystemCallError) {
        let bytes = link.qp.localAddress.encoded
        let sent = bytes.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == QueuePairAddress.encodedSize else {
            throw SystemCallError("sending the queue pair address to \(p.remote)", sent < 0 ? Errno.current : .again)
        }
    }

    /// Reads the peer's queue pair address and connects the link's queue pair to it; the acceptor
    /// answers with its own. Then the socket becomes the link's control channel.
    func receiveQueuePairAddress(_ p: PendingConnection) {
        let size = QueuePairAddress.encodedSize
        let n = p.buffer.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress! + p.filled, size - p.filled, Int32(MSG_DONTWAIT)) }
        if n == 0 || (n < 0 && Errno.current != .again && Errno.current != .interrupted) {
            let why = n == 0 ? "closed the connection" : "\(Errno.current)"
            dropPending(p, reason: nil)
            connectionLost(p.peer, channel: p.socket, "\(p.remote) \(why) during the queue pair exchange")
            return
        }
        if n < 0 { return }
        p.filled += n
        if p.filled < size { return }
        let peer = peers[p.peer]
        guard let link = peer.links[p.socket / peer.socketsPerLink].rdma else { return }
        do {
            let remote = try p.buffer.withUnsafeBytes { raw throws(VerbsError) in
                try QueuePairAddress(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<size]))
            }
            try link.qp.connect(to: remote, options: config.connectOptions)
            link.remote = remote
            if !p.dialed { try sendQueuePairAddress(p, link) }
        } catch {
            dropPending(p, reason: nil)
            connectionLost(p.peer, channel: p.socket, "cannot connect the queue pair of link \(link.link) (\(link.port.name)) to \(p.remote): \(error)")
            return
        }
        attach(p, peer: p.peer, socket: p.socket)
    }

    /// Destroys every queue pair and port resource (the engine stops). The links keep their
    /// traffic counters for `statistics()`.
    func releaseRDMA() {
        guard !rdmaPorts.isEmpty else { return }
        for peer in peers where peer.rdma {
            for link in peer.links {
                if let r = link.rdma { link.finalCounters = r.counters }
                link.rdma = nil
            }
            peer.rdmaResend.removeAll()
            peer.rdmaResendHead = 0
        }
        if let receives = rdmaReceives { _ = receives.releaseAll() }
        deferredClears.removeAll()
        registeredRanges.removeAll()
        rdmaPorts.removeAll()
    }
}
