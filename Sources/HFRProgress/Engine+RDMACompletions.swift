import HFRSystem
import HFRTransport
import HFRVerbs

/// RDMA completions, polled every turn of the event loop: a write's completion is the sending
/// step's progress; a receive's (a write with immediate that landed) marks the fragment in the
/// receiver's table and completes the message when all its bytes are in. A completion with an
/// error status fails its link (`noteLinkFailure`).
extension Engine {
    /// Polls the send and receive completion queues of every HCA port, then takes down the links
    /// that failed and pumps the peers whose links have room again.
    func pollCompletions() {
        for port in rdmaPorts {
            do {
                while true {
                    let n = try port.sendCQ.poll()
                    for k in 0..<n { writeCompleted(port.sendCQ[k], port) }
                    if n < port.sendCQ.batch { break }
                }
                while true {
                    let n = try port.recvCQ.poll()
                    for k in 0..<n { receiveCompleted(port.recvCQ[k], port) }
                    if n < port.recvCQ.batch { break }
                }
            } catch {
                fail(.system("rank \(config.rank): the completion queue of HCA port \(port.name) failed: \(error)"), notifyPeers: true)
                return
            }
        }
        if !linkFailures.isEmpty { takeDownFailedLinks() }
        for peer in peers where peer.needsPump {
            peer.needsPump = false
            pumpSends(peer)
        }
    }

    /// The link a work request ID names, if it is still this port's.
    @inline(__always) private func link(_ id: UInt64, on port: RDMAPort) -> (Bool, Int, Int, UInt64, RDMALink)? {
        let (receive, p, l, ordinal) = RDMALink.decode(id)
        guard p < peers.count, l < peers[p].links.count, let r = peers[p].links[l].rdma, r.port === port else { return nil }
        return (receive, p, l, ordinal, r)
    }

    @inline(__always) func writeCompleted(_ wc: WorkCompletion, _ port: RDMAPort) {
        guard let (receive, p, l, ordinal, r) = link(wc.workRequestID, on: port), !receive else { return }
        guard wc.isSuccess else {
            if r.state == .up {
                let hint = wc.status == .remoteAccessError ? " (rank \(p)'s HCA refused the rkey or the address range of the write)" : ""
                noteLinkFailure(p, l, "RDMA write to rank \(p) over link \(l) (\(port.name)) failed: \(port.sendCQ.failure(wc))\(hint)")
            }
            return
        }
        // Writes resolved after a failure complete late, or never: only the ring's head counts.
        guard let w = r.completeHead(ordinal: ordinal) else { return }
        if let b = w.bounce { port.cache.bounce?.giveBack(b) }
        let peer = peers[p]
        if peer.reliable { peer.links[l].record(w.length, now: MonotonicClock.nanoseconds(), busy: r.count > 0) }
        writeDelivered(w.cookie, w.length)
        if peer.hasQueuedSends { peer.needsPump = true }
    }

    @inline(__always) func receiveCompleted(_ wc: WorkCompletion, _ port: RDMAPort) {
        guard let (receive, p, l, _, r) = link(wc.workRequestID, on: port), receive else { return }
        r.receivesPosted -= 1
        guard wc.isSuccess else {
            if r.state == .up {
                noteLinkFailure(p, l, "RDMA receive from rank \(p) over link \(l) (\(port.name)) failed: \(port.recvCQ.failure(wc))")
            }
            return
        }
        r.received += 1
        r.writesReceived += 1
        r.bytesReceived += wc.byteLength
        if r.state == .up {
            do { try r.postReceive() } catch {
                noteLinkFailure(p, l, "posting a receive on link \(l) to rank \(p) (\(port.name)) failed: \(error)")
            }
        }
        guard wc.opcode == .receiveRDMAWithImmediate, let immediate = wc.immediate else {
            rdmaProtocolFailure(p, "rank \(p) sent a message over link \(l) (\(port.name)) that is not a write with immediate")
            return
        }
        writeArrived(from: p, immediate: immediate, bytes: wc.byteLength)
    }

    /// A write with immediate from `peer` landed: counts its fragment (once) and completes the
    /// message when all its bytes are in.
    @inline(__always) func writeArrived(from peer: Int, immediate: UInt32, bytes: Int) {
        guard let receives = rdmaReceives else { return }
        let (tag, fragment) = WriteTarget.split(immediate)
        let (mark, slot) = receives.mark(tag: tag, fragment: fragment, bytes: bytes, peer: peer)
        switch mark {
        case .partial:
            return
        case .complete:
            let ck = receives.cookie(slot)
            if let (buffer, port) = receives.release(slot, copyOut: true) { rdmaPorts[port].cache.bounce?.giveBack(buffer) }
            if let (c, i) = lookup(ck) {
                c.progress[i] = c.schedule.steps[i].length
                complete(c, i)
            }
            if !deferredClears.isEmpty { retryDeferredClears() }
        case .stale, .duplicate:
            Log.trace(rank: config.rank, "ignored a \(mark == .stale ? "stale" : "repeated") RDMA write from rank \(peer) (tag \(tag), fragment \(fragment))")
        case .wrongPeer:
            rdmaProtocolFailure(peer, "rank \(peer) wrote fragment \(fragment) of a message advertised to another rank (tag \(tag))")
        case .misfit:
            rdmaProtocolFailure(peer, "rank \(peer) wrote \(bytes) bytes as fragment \(fragment) of the message tagged \(tag), "
                                + "which that message does not have in that size")
        }
    }

    func rdmaProtocolFailure(_ rank: Int, _ reason: String) {
        closePeer(rank, phase: .failed, reason: reason)
        fail(.protocolViolation(rank: rank, reason: reason), notifyPeers: true)
    }

    /// Records that link `l` to `peer` failed (a completion with an error status, a post that
    /// failed, a stall): it carries nothing more, and goes down at the end of the turn.
    func noteLinkFailure(_ peer: Int, _ l: Int, _ reason: String) {
        guard let r = peers[peer].links[l].rdma, r.state == .up || r.state == .connecting else { return }
        r.state = .failing
        linkFailures.append((peer, l, reason))
    }

    /// Takes down the links that failed: over the peer's other links when it has some (the writes
    /// the peer did not take go to them, see `resolveDown`); otherwise the peer has failed.
    func takeDownFailedLinks() {
        var failures: [(peer: Int, link: Int, reason: String)] = []
        swap(&failures, &linkFailures)
        for (p, l, reason) in failures {
            let peer = peers[p]
            if !peer.reliable { Log.warn(rank: config.rank, reason) }  // channelDown says it otherwise
            if let ch = peer.channels[l * peer.socketsPerLink] {
                if peer.reliable { channelDown(ch, reason) } else { peerFailed(p, reason) }
            } else if let r = peer.links[l].rdma {
                _ = quiesce(r)
            }
        }
    }

    /// Stops link `r`'s queue pair (ERROR: the peer's writes are refused from now on) and takes
    /// the receive completions that came before, so that the count of writes taken from it,
    /// returned, is final.
    func quiesce(_ r: RDMALink) -> UInt64 {
        guard r.state != .down else { return r.received }
        r.state = .down
        do { try r.qp.moveToError() } catch {
            Log.warn(rank: config.rank, "cannot stop the queue pair of link \(r.link) to rank \(r.peer): \(error)")
        }
        var rounds = 0
        while r.receivesPosted > 0 && rounds < 100_000 {
            guard let n = try? r.port.recvCQ.poll() else { break }
            for k in 0..<n { receiveCompleted(r.port.recvCQ[k], r.port) }
            rounds += 1
        }
        if r.receivesPosted > 0 {
            Log.warn(rank: config.rank, "\(r.receivesPosted) receive(s) of link \(r.link) to rank \(r.peer) did not flush after its queue pair stopped")
        }
        return r.received
    }

    /// Writes of `r` the peer took (`peerWrites` of them, counted from the link's first) are
    /// delivered; the rest are posted again on the peer's other links.
    func resolveWrites(_ peer: PeerState, _ r: RDMALink, peerWrites: UInt64) throws(ChannelError) {
        guard peerWrites >= r.completedOrdinal, peerWrites <= r.postedOrdinal else {
            throw .protocolViolation("rank \(peer.rank) says it took \(peerWrites) writes from link \(r.link); \(r.completedOrdinal) completed here and \(r.postedOrdinal) were posted")
        }
        var again = 0
        while let (ordinal, w) = r.popHead() {
            if let b = w.bounce { r.port.cache.bounce?.giveBack(b) }
            if ordinal < peerWrites {
                writeDelivered(w.cookie, w.length)
            } else {
                peer.rdmaResend.append(PendingWrite(cookie: w.cookie, offset: w.offset, length: w.length, fragment: w.fragment))
                again += 1
            }
        }
        Log.info(rank: config.rank, "link \(r.link) to rank \(peer.rank) (\(r.port.name)) is down after \(peerWrites) write(s) taken: posting \(again) write(s) again on the links left")
    }

    /// Moves every queue pair of `peer` to ERROR and drops its posted writes (the peer failed or
    /// the communicator did): nothing lands in this rank's memory from it any more.
    func stopRDMA(_ peer: PeerState) {
        for link in peer.links {
            guard let r = link.rdma else { continue }
            if r.state != .down {
                r.state = .down
                try? r.qp.moveToError()
            }
            while let (_, w) = r.popHead() {
                if let b = w.bounce { r.port.cache.bounce?.giveBack(b) }
            }
        }
        peer.rdmaResend.removeAll()
        peer.rdmaResendHead = 0
    }
}
