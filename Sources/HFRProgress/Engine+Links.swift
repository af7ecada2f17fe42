import Glibc
import HFRSystem
import HFRTransport

/// Link failover for peers reached over several links: a channel that breaks or stalls is closed
/// on both sides, and the frames the other side did not take are sent again on the channels
/// left. An RDMA link goes down with its socket: both sides stop its queue pair and count the
/// writes they took from it, and each re-posts on the other links exactly the writes the other
/// side did not take. Only when no channel to a peer is left does the peer fail.
///
/// The two sides agree through `linkDown` notices (channel, frames taken from it, and writes
/// taken from its queue pair on an RDMA link). A notice that expects an answer carries
/// `FrameHeader.requestFlag`; a side that has closed a channel and not heard back repeats its
/// notice every `linkDownRepeatNanoseconds`, since a notice can be lost with the channel that
/// carried it. A side that has already settled a channel answers repeated
/// requests with its final count, and a side that never had the channel answers 0.
extension Engine {
    static let linkDownRepeatNanoseconds: UInt64 = 250_000_000

    /// Takes channel `ch` out of service: closes its socket, tells the peer on another channel how
    /// many frames this side took from it, and re-sends its frames once the peer's count is known.
    /// `quietly`: the peer closed the socket with no work pending (it finished): said at INFO.
    func channelDown(_ ch: TCPChannel, _ reason: String, quietly: Bool = false) {
        let peer = peers[ch.peer]
        guard peer.channels[ch.index] === ch else { return }
        peer.channels[ch.index] = nil
        peer.writeInterest[ch.index] = false
        peer.lost += 1
        epoll.remove(ch.fd)
        ch.closeSocket()
        releasePartialPayload(ch)
        peer.down[ch.index] = ch
        let link = peer.links[ch.link]
        // The writes this side took from the link's queue pair, final once it is stopped.
        let writes = link.rdma.map { quiesce($0) } ?? 0
        peer.finalCounts[ch.index] = (ch.received, writes)
        guard let other = peer.controlChannel else {
            if workPending(with: peer) {
                peerFailed(ch.peer, "every link to rank \(ch.peer) is down (the last: link \(ch.link), \(link.name): \(reason))")
            } else {
                Log.info(rank: config.rank, "rank \(ch.peer) closed its last link (\(reason))")
                closePeer(ch.peer, phase: .closed, reason: "its connections closed while no work was pending with it (\(reason))")
            }
            return
        }
        if quietly {
            Log.info(rank: config.rank, "link \(ch.link) to rank \(ch.peer) (\(link.name)) closed with no work pending: \(reason)")
        } else if link.rdma != nil {
            Log.warn(rank: config.rank, "link \(ch.link) to rank \(ch.peer) (\(link.name)) is down: \(reason); the writes rank \(ch.peer) did not take go to the other links")
        } else {
            Log.warn(rank: config.rank, "socket \(ch.index % peer.socketsPerLink) of link \(ch.link) to rank \(ch.peer) (\(link.name)) is down: \(reason); its unacknowledged frames go to the other links")
        }
        // The peer's own notice, if it came first, needs no answer; otherwise ask for its count.
        if let counts = peer.downCounts.removeValue(forKey: ch.index) {
            sendLinkDown(other, channel: ch.index, count: ch.received, writes: writes, request: false)
            resolveDown(peer, channel: ch.index, peerReceived: counts.frames, peerWrites: counts.writes)
        }
        // This notice (when it needs an answer), and those of other channels still unsettled,
        // which may have been lost with this one.
        repeatLinkDowns(peer, MonotonicClock.nanoseconds())
    }

    /// A link-down notice for `channel`: the frames (and RDMA writes) this side took from it.
    func sendLinkDown(_ ch: TCPChannel, channel: Int, count: UInt64, writes: UInt64, request: Bool) {
        var h = FrameHeader(kind: .linkDown, sequence: UInt32(truncatingIfNeeded: writes >> 32), index: Int32(channel), offset: count,
                            length: 0, signature: UInt32(truncatingIfNeeded: writes))
        if request { h.flags = FrameHeader.requestFlag }
        ch.enqueue(control: h)
        markDirty(ch)
    }

    /// Forgets a payload half read when `ch` closed: the frame was not taken, so the sender sends
    /// it again. A parked message frees its eager-pool slot (it parks afresh); a fragment of a
    /// receive step gives back its bytes' coverage.
    func releasePartialPayload(_ ch: TCPChannel) {
        guard let ck = ch.partialPayloadCookie, ck != Engine.discardCookie else { return }
        if ck & Engine.parkedCookie == 0 {
            // A fragment of a receive step: its bytes come again, in the frame sent again.
            if let (c, i) = lookup(ck), let h = ch.partialPayloadHeader { c.unclaim(i, offset: Int(h.offset), length: Int(h.length)) }
            return
        }
        let peer = peers[ch.peer]
        let slot = Int(ck & 0xFF)
        guard let k = peer.parked.firstIndex(where: { $0.slot == slot && !$0.complete }) else { return }
        let m = peer.parked.remove(at: k)
        peer.freeSlots.append(slot)
        // A receive posted while this copy was arriving waited for it to send its clear-to-send
        // (`deliverParked`); the copy sent again lands in the receive buffer itself, which sends
        // none: send it now, or the sender's eager message is never confirmed.
        if let c = collective(m.sequence, peer: ch.peer), let i = c.recvStep(peer: ch.peer, index: m.index), c.state[i] == 1 {
            sendClear(c, i)
        }
    }

    /// The peer reports that it took `count` frames from channel `index` (and `writes` writes from
    /// its queue pair, on an RDMA link) before closing it.
    func linkDownReceived(from rank: Int, on carrier: TCPChannel, _ h: FrameHeader) throws {
        let peer = peers[rank]
        let index = Int(h.index), count = h.offset, writes = UInt64(h.sequence) << 32 | UInt64(h.signature)
        guard carrier.reliable, index >= 0, index < peer.channels.count, index != carrier.index else {
            throw ChannelError.protocolViolation("rank \(rank) reports channel \(h.index) down on channel \(carrier.index) of \(peer.channels.count)")
        }
        let request = h.flags & FrameHeader.requestFlag != 0
        if let ch = peer.channels[index] {
            peer.downCounts[index] = (count, writes)
            channelDown(ch, "rank \(rank) closed it")
        } else if peer.down[index] != nil {
            resolveDown(peer, channel: index, peerReceived: count, peerWrites: writes)
        } else if request {
            // Settled here already (answer again: the answer was lost), or never connected here
            // (nothing taken; a half-made connection for it is dropped, its queue pair stopped).
            for p in pending.values where p.peer == rank && p.socket == index { dropPending(p, reason: nil) }
            let final = peer.finalCounts[index] ?? (0, peer.links[index / peer.socketsPerLink].rdma.map { quiesce($0) } ?? 0)
            sendLinkDown(carrier, channel: index, count: final.frames, writes: final.writes, request: false)
        }
    }

    /// Both sides have closed channel `index`: re-sends what the peer did not take.
    func resolveDown(_ peer: PeerState, channel index: Int, peerReceived: UInt64, peerWrites: UInt64) {
        guard let ch = peer.down.removeValue(forKey: index) else { return }
        // An answer came back: the carrier of the notices is alive.
        peer.noticeCarrier = -1
        let frames: [PendingFrame]
        do {
            frames = try ch.takeBack(peerReceived: peerReceived)
            if let r = peer.links[ch.link].rdma { try resolveWrites(peer, r, peerWrites: peerWrites) }
        } catch {
            closePeer(peer.rank, phase: .failed, reason: "\(error)")
            fail(.protocolViolation(rank: peer.rank, reason: "\(error)"), notifyPeers: true)
            return
        }
        peer.retired.append(ch)
        guard peer.phase == .connected, let control = peer.controlChannel else { return }
        var data = 0
        for f in frames {
            if f.header.kind == .data {
                peer.resend.append(f)
                data += 1
            } else {
                control.enqueue(control: f.header, target: f.target)
            }
        }
        markDirty(control)
        Log.info(rank: config.rank, "re-sending \(data) data and \(frames.count - data) control frame(s) of channel \(index) to rank \(peer.rank) on the links left")
        pumpSends(peer)
    }

    /// Repeats the notices of channels this side closed and the peer has not answered.
    func repeatLinkDowns(_ peer: PeerState, _ now: UInt64) {
        guard !peer.down.isEmpty, let carrier = peer.controlChannel else { return }
        peer.lastLinkDownNotice = now
        if peer.noticeCarrier != carrier.index {
            // Unanswered notices on one channel for HFR_LINK_TIMEOUT mean it is dead too.
            peer.noticeCarrier = carrier.index
            peer.noticesSince = now
        }
        for (index, ch) in peer.down.sorted(by: { $0.key < $1.key }) {
            sendLinkDown(carrier, channel: index, count: ch.received, writes: peer.links[ch.link].rdma?.received ?? 0, request: true)
        }
    }

    /// Declares down every channel that has had frames in flight for `HFR_LINK_TIMEOUT` with
    /// neither an acknowledgement nor bytes leaving (a NIC that went down loses packets silently;
    /// TCP alone would retry for minutes), and repeats unanswered link-down notices.
    func checkStalledLinks(_ now: UInt64) {
        for peer in peers where peer.rdma && peer.reliable && peer.phase == .connected {
            for link in peer.links {
                guard let r = link.rdma, r.state == .up, r.count > 0, r.lastProgress &+ config.linkTimeoutNanoseconds < now else { continue }
                noteLinkFailure(peer.rank, r.link, "no RDMA write to rank \(peer.rank) over link \(r.link) (\(link.name)) completed for \(Double(config.linkTimeoutNanoseconds) / 1e9) s (HFR_LINK_TIMEOUT)")
            }
        }
        if !linkFailures.isEmpty { takeDownFailedLinks() }
        for peer in peers where peer.reliable && peer.phase == .connected {
            // `lastProgress` may be later than `now` (set while this loop runs): never a stall then.
            for case let ch? in peer.channels where ch.hasUnfinishedFrames && ch.lastProgress &+ config.linkTimeoutNanoseconds < now {
                channelDown(ch, "no acknowledgement for \(Double(config.linkTimeoutNanoseconds) / 1e9) s (HFR_LINK_TIMEOUT)")
                if peer.phase != .connected { break }
            }
            guard peer.phase == .connected, !peer.down.isEmpty else { continue }
            if peer.noticesSince &+ config.linkTimeoutNanoseconds < now, peer.noticeCarrier >= 0, let carrier = peer.channels[peer.noticeCarrier] {
                channelDown(carrier, "link-down notices sent on it were not answered for \(Double(config.linkTimeoutNanoseconds) / 1e9) s (HFR_LINK_TIMEOUT)")
            } else if peer.lastLinkDownNotice &+ Engine.linkDownRepeatNanoseconds < now {
                repeatLinkDowns(peer, now)
            }
        }
    }
}
