import Glibc
import HFRSystem
import HFRTransport

extension Engine {
    /// A socket failed or the peer closed it. If work with that peer is outstanding, the peer has
    /// failed; otherwise it has simply finished and left, and is only an error if needed later.
    func channelFailed(_ ch: TCPChannel, _ error: Error) {
        let rank = ch.peer
        if peers[rank].rdma && !rdmaPorts.isEmpty {
            // A peer that finished closes its sockets once it has every write this rank sent it;
            // their completions may still be on their way (an HCA's acknowledgement can trail the
            // socket's FIN): take them first, waiting briefly, so that they do not count as work
            // pending with it.
            let until = MonotonicClock.nanoseconds() &+ 100_000_000
            repeat {
                pollCompletions()
                guard peers[rank].channels[ch.index] === ch else { return }
            } while peers[rank].links.contains(where: { ($0.rdma?.count ?? 0) > 0 && $0.rdma?.state == .up }) && MonotonicClock.nanoseconds() < until
        }
        let reason: String
        if let e = error as? ChannelError {
            if case let .protocolViolation(why) = e {
                closePeer(rank, phase: .failed, reason: "\(e)")
                fail(.protocolViolation(rank: rank, reason: why), notifyPeers: true)
                return
            }
            reason = "\(e)"
        } else {
            reason = "\(error)"
        }
        // A peer that failed on purpose sent an abort frame first, perhaps on another socket:
        // read what its other sockets hold, so that its own account of the failure wins.
        var otherFailed: (TCPChannel, Error)?
        if broken == nil {
            for case let other? in peers[rank].channels where other !== ch {
                do { if try other.readable() { markDirty(other) } } catch { otherFailed = (other, error); break }
                if broken != nil { break }
            }
        }
        // A socket that failed while it was read goes the same way, once this one is dealt with
        // (its stream may be cut in the middle of a frame).
        defer {
            if let (other, e) = otherFailed, peers[rank].channels[other.index] === other { channelFailed(other, e) }
        }
        if broken != nil {
            closePeer(rank, phase: .closed, reason: reason)
            return
        }
        let busy = workPending(with: peers[rank]) || peers[rank].links.contains { ($0.rdma?.count ?? 0) > 0 }
        if peers[rank].reliable {
            // One link failing is not the peer failing: the others carry on. The last one going
            // fails the peer if work is pending with it, and closes it quietly otherwise; frames
            // still unacknowledged on the other sockets make it worth a warning, unless the peer
            // said it is leaving (those are control frames it had no reason to acknowledge).
            let unfinished = peers[rank].channels.contains { $0?.hasUnfinishedFrames ?? false }
            channelDown(ch, reason, quietly: !busy && (peers[rank].departedAfter != nil || !unfinished))
        } else if busy {
            if case ChannelError.closedByPeer = error, peers[rank].channels.contains(where: { $0 != nil && $0 !== ch }) {
                // A peer closes all its sockets together, and what it wrote on the others before
                // their end may still be on its way (a finished root's last fragments): judge once
                // the last one closes.
                peers[rank].retire(ch, from: epoll)
                peers[rank].channels[ch.index] = nil
                return
            }
            peerFailed(rank, reason)
        } else {
            Log.info(rank: config.rank, "rank \(rank) closed its connection (\(reason))")
            closePeer(rank, phase: .closed, reason: "its connection closed while no work was pending with it (\(reason))")
        }
    }

    /// Whether a collective in flight still owes or expects a message of `peer`, or sends to it wait.
    func workPending(with peer: PeerState) -> Bool {
        order.contains { !$0.finished && $0.outstanding[peer.rank] > 0 } || peer.hasQueuedSends
    }

    /// The connection to `rank` broke while work with it was pending. The communicator fails
    /// after a short grace, in which an abort frame from another rank (one that knows why `rank`
    /// went away, a mismatch say) takes precedence over the bare "connection lost".
    func peerFailed(_ rank: Int, _ reason: String) {
        closePeer(rank, phase: .failed, reason: reason)
        if broken == nil && peers[rank].departedAfter != nil {
            // It left on purpose and said so: its own account, no grace needed.
            fail(lossError(rank, reason), notifyPeers: true)
            return
        }
        if broken == nil && suspected == nil {
            suspected = (rank, reason, MonotonicClock.nanoseconds() &+ 250_000_000)
            nextTimerCheck = 0
        }
    }

    /// The error for work pending with `rank` once its connection is gone. A peer that sent a
    /// leaving frame destroyed its communicator gracefully, its own work done: the ranks
    /// disagreed about the collectives (invalid usage), it did not fail.
    func lossError(_ rank: Int, _ reason: String) -> CollectiveError {
        guard let after = peers[rank].departedAfter else { return .peerFailed(rank: rank, reason: reason) }
        let me = config.rank
        guard let c = order.first(where: { !$0.finished && $0.outstanding[rank] > 0 }) ?? order.first(where: { !$0.finished }) else {
            return .mismatch("rank \(rank) destroyed its communicator after \(after) collective(s) while rank \(me) had work pending with it")
        }
        if c.pointToPointPeer >= 0 {
            return .mismatch("rank \(rank) destroyed its communicator with \(c.request.name) pending on rank \(me): "
                             + "it did not call the matching \(c.pointToPointSends ? "receive" : "send")")
        }
        if c.sequence < after {
            return .mismatch("rank \(rank) finished \(c.request.name) and destroyed its communicator without the messages rank \(me) "
                             + "exchanges with it there: the ranks passed different counts, displacements or roots")
        }
        return .mismatch("rank \(rank) destroyed its communicator after \(after) collective(s) while rank \(me) waits for it in "
                         + "\(c.request.name): the ranks called different numbers of collectives")
    }

    func checkSuspected(_ now: UInt64) {
        guard let s = suspected, now >= s.deadline else { return }
        suspected = nil
        if broken == nil { fail(.peerFailed(rank: s.rank, reason: s.reason), notifyPeers: true) }
    }

    func closePeer(_ rank: Int, phase: PeerState.Phase, reason: String) {
        let peer = peers[rank]
        if peer.phase == .failed { return }
        peer.phase = phase
        peer.closeReason = reason
        for case let ch? in peer.channels { peer.retire(ch, from: epoll) }
        for ch in peer.down.values { _ = ch.drainQueue(); peer.retired.append(ch) }
        peer.down.removeAll()
        peer.downCounts.removeAll()
        peer.channels = peer.channels.map { _ in nil }
        peer.attached = 0
        peer.sendQueue.removeAll()
        peer.sendHead = 0
        peer.resend.removeAll()
        peer.resendHead = 0
        if peer.rdma && phase == .failed { stopRDMA(peer) }
        for p in pending.values where p.peer == rank { dropPending(p, reason: nil) }
    }

    /// Makes sure nothing more reads or writes the buffers of collectives about to fail (the
    /// caller may free them once it sees the error): every queue pair stops (no RDMA write lands
    /// any more) and the advertised messages are forgotten; reductions not started are dropped
    /// and the running ones waited for; a payload half received goes on into the discard
    /// buffer; frames queued for sending get their own copy of their payload.
    func releaseBuffers() {
        if !rdmaPorts.isEmpty {
            for peer in peers where peer.rdma { stopRDMA(peer) }
            if let receives = rdmaReceives {
                for (buffer, port) in receives.releaseAll() { rdmaPorts[port].cache.bounce?.giveBack(buffer) }
            }
            deferredClears.removeAll()
        }
        if !workers.isEmpty { workers.cancelAndWait() }
        for peer in peers {
            for case let ch? in peer.channels { release(ch) }
            for ch in peer.down.values { release(ch) }
        }
    }

    private func release(_ ch: TCPChannel) {
        if let ck = ch.partialPayloadCookie, ck & Engine.parkedCookie == 0 {
            // A fragment of a receive step (parked messages and discards land in engine memory).
            let (target, discardCookie) = discardTarget()
            ch.redirectPayload(to: target, cookie: discardCookie)
        }
        ch.detachPayloads()
    }

    /// Breaks the communicator: fails every pending collective with `error` and (once) tells
    /// every connected peer, so that ranks not connected to the culprit learn of it too.
    func fail(_ error: CollectiveError, notifyPeers: Bool) {
        let first = broken == nil
        let victims = order + backlog
        order.removeAll()
        backlog.removeAll()
        if first {
            broken = error
            releaseBuffers()
            // Only now may the caller learn of it (and free its buffers).
            completion.withLock { stickyError = error }
            Log.warn(rank: config.rank, "communicator failed: \(error)")
        }
        for c in victims where !c.request.finished {
            unregister(c)
            publish(c, error: broken!)
        }
        ready.removeAll()
        guard first && notifyPeers else { return }
        let failed: Int32
        switch error {
        case let .peerFailed(rank, _): failed = Int32(rank)
        case let .remoteAbort(rank, _, _, _): failed = Int32(rank)
        case let .protocolViolation(rank, _): failed = Int32(rank)
        case .aborted, .timeout: failed = Int32(config.rank)  // this rank gave up: name it
        default: failed = -1
        }
        for peer in peers where peer.rank != config.rank && (peer.phase == .connecting || peer.phase == .idle) {
            // Delivered when the handshake completes; shutdown waits a little for that. A rank
            // not talked to yet learns it too: this rank dials the lower ones now, the higher
            // ones get it when they dial this one.
            peer.pendingControl = [ControlFrame(header: FrameHeader(kind: .abort, sequence: 0, index: failed, offset: error.abortCode, length: 0))]
            if peer.phase == .idle && config.rank > peer.rank { ensureConnected(peer) }
        }
        for peer in peers where peer.phase == .connected {
            guard let ch = peer.controlChannel else { continue }
            ch.enqueue(control: FrameHeader(kind: .abort, sequence: 0, index: failed, offset: error.abortCode, length: 0))
            // Best effort, without waiting: the kernel buffer is all we use.
            _ = try? ch.flush()
        }
    }
}
