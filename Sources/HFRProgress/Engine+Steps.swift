import HFRSystem
import HFRTransport
import HFRCollectives
import HFRKernels

extension Engine {
    /// Starts every step whose predecessors are done. Iterative, so long chains of inline
    /// reductions do not recurse.
    func drainReady() {
        while let cookie = ready.popLast() {
            guard let (c, i) = lookup(cookie) else { continue }
            start(c, i)
        }
    }

    @inline(__always) func start(_ c: ActiveCollective, _ i: Int) {
        let step = c.schedule.steps[i]
        if step.length == 0 && step.kind != .recv {
            // Empty sends are skipped on both sides alike; empty computations have nothing to do.
            complete(c, i)
            return
        }
        switch step.kind {
        case .recv:
            c.state[i] = 1
            // A message parked here has taken one of the sender's eager credits; the clear-to-send
            // gives the credit back, so it goes out only once the parked copy has left its slot
            // (at once if it has fully arrived, otherwise when it has). Parked messages thus never
            // outnumber the credits, however the links reorder frames. One parked for an empty
            // receive means the sender's count is not 0: delivering it says so.
            if peers[Int(step.peer)].parkedIndex(c.sequence, step.index) != nil {
                deliverParked(c, i)
                return
            }
            if step.length == 0 {
                // An empty receive between two ranks still tells the sender (a clear-to-send over
                // RDMA too: nothing is written), so that a sender of a longer message learns of
                // the disagreement instead of waiting for a clear.
                if c.pointToPointPeer >= 0 {
                    sendControl(to: Int(step.peer), FrameHeader(kind: .clearToSend, sequence: c.sequence, index: step.index, offset: 0,
                                                                length: 0, signature: c.schedule.signature))
                }
                complete(c, i)
                return
            }
            sendClear(c, i)
        case .send:
            c.state[i] = 1
            if c.cleared[i] {
                queueSend(c, i)
            } else {
                let peer = peers[Int(step.peer)]
                if step.length <= config.eagerMaxBytes && peer.phase == .connected && peer.eagerCredits > 0 {
                    peer.eagerCredits -= 1
                    peer.eagerUnacknowledged.append((c.sequence, step.index))
                    c.eager[i] = true
                    queueSend(c, i)
                } else if step.index == 0 && c.pointToPointPeer < 0 {
                    sendControl(to: peer.rank, FrameHeader(kind: .readyToSend, sequence: c.sequence, index: 0, offset: UInt64(step.length),
                                                           length: 0, signature: c.schedule.signature))
                }
            }
        case .combine, .copy, .scale:
            let bytes = step.kind == .copy ? step.length : step.length * c.type.size
            let job = ReductionJob(kind: step.kind == .combine ? 0 : step.kind == .copy ? 1 : 2,
                                   dst: c.pointer(step.dst), a: UnsafeRawPointer(c.pointer(step.a)),
                                   b: UnsafeRawPointer(c.pointer(step.kind == .combine ? step.b : step.a)),
                                   length: step.length, type: c.type, op: c.op, ranks: c.ranks, cookie: cookie(c, i),
                                   streamingCopyBytes: config.streamingCopyBytes)
            if workers.isEmpty || bytes <= config.inlineReduceBytes {
                job.run()
                complete(c, i)
            } else {
                c.state[i] = 2
                workers.submit(job)
            }
        }
    }

    /// Marks step `i` done and readies its successors.
    @inline(__always) func complete(_ c: ActiveCollective, _ i: Int) {
        if c.state[i] == 3 { return }
        c.state[i] = 3
        c.remaining -= 1
        let step = c.schedule.steps[i]
        if step.kind == .send || step.kind == .recv { c.outstanding[Int(step.peer)] -= 1 }
        let s = c.schedule
        for k in Int(s.successorStart[i])..<Int(s.successorStart[i + 1]) {
            let succ = Int(s.successors[k])
            c.pending[succ] -= 1
            if c.pending[succ] == 0 { ready.append(cookie(c, succ)) }
        }
        if c.remaining == 0 { finish(c) }
    }

    /// The receiver has advertised message `h.index` of `c` (with where it lands, from an RDMA
    /// peer): check it is the message this rank sends, then let it go.
    func handleClear(_ c: ActiveCollective, from peer: Int, _ h: FrameHeader, target: WriteTarget? = nil) {
        guard h.signature == c.schedule.signature else {
            signatureMismatch(c, peer: peer)
            return
        }
        guard let i = c.sendStep(peer: peer, index: h.index) else {
            fail(.mismatch("rank \(peer) expects message \(h.index) of \(c.request.name) from rank \(config.rank), which sends only \(c.sends(to: peer)): the ranks called the collective with different arguments"), notifyPeers: true)
            return
        }
        guard !c.cleared[i] else {
            fail(.protocolViolation(rank: peer, reason: "a second clear for message \(h.index) of \(c.request.name)"), notifyPeers: true)
            return
        }
        let length = c.schedule.steps[i].length
        guard h.offset == UInt64(length) else {
            fail(.mismatch("rank \(peer) expects \(h.offset) bytes in message \(h.index) of \(c.request.name), rank \(config.rank) sends \(length): the ranks called the collective with different counts or types"), notifyPeers: true)
            return
        }
        if let target {
            if c.targets.isEmpty { c.targets = Array(repeating: nil, count: c.schedule.steps.count) }
            c.targets[i] = target
        }
        c.cleared[i] = true
        if c.state[i] == 1 { queueSend(c, i) }
        if c.eager[i] && c.state[i] == 2 && c.progress[i] == length { complete(c, i) }
    }

    /// A peer's first message to this rank in collective `c` is ready (see `FrameKind.readyToSend`).
    func checkReadyToSend(_ c: ActiveCollective, from peer: Int, _ h: FrameHeader) {
        guard h.signature == c.schedule.signature else {
            signatureMismatch(c, peer: peer)
            return
        }
        guard let i = c.recvStep(peer: peer, index: h.index) else {
            fail(.mismatch("rank \(peer) sends message \(h.index) of \(c.request.name) to rank \(config.rank), which receives none from it: the ranks called the collective with different arguments (root?)"),
                 notifyPeers: true)
            return
        }
        guard h.offset == UInt64(c.schedule.steps[i].length) else {
            lengthMismatch(c, from: peer, index: h.index, sent: Int(truncatingIfNeeded: h.offset), expected: c.schedule.steps[i].length)
            return
        }
    }

    /// Rank `peer` sends `sent` bytes as message `index` of `c`, which this rank receives as `expected`.
    func lengthMismatch(_ c: ActiveCollective, from peer: Int, index: Int32, sent: Int, expected: Int) {
        fail(.mismatch("rank \(peer) sent \(sent) bytes as message \(index) of \(c.request.name), rank \(config.rank) expects \(expected): "
                       + "the ranks called the collective with different counts or types"), notifyPeers: true)
    }

    enum LateFrame {
        /// The ranks disagreed about the operation: the communicator has failed with the mismatch.
        case mismatch
        /// Late but in order: drop it.
        case late
        /// It repeats a frame, or the operation is too long gone to tell.
        case unexpected
    }

    /// What a frame about an operation that finished here shows. A rank that receives nothing
    /// from a peer, or only empty messages, may finish before the peer's frames arrive, and a
    /// receiver whose data overtook the sender's ready-to-send on another socket too. The
    /// operation's schedule, kept for a while (`finished`, `PeerState.finishedSends`), tells:
    /// - a message this rank's arguments do not have, or have with another length: the ranks
    ///   disagreed (all-to-all-v counts of 0 here and not there). The communicator fails with the
    ///   mismatch; this rank's caller learns at its next call.
    /// - a ready-to-send for a message received whole, or the word of an empty receive between
    ///   two ranks on a send this rank made at once (empty too): late.
    /// - anything else repeats a frame: an operation finishes only once all its messages are in
    ///   and all its sends confirmed.
    func lateFrame(_ h: FrameHeader, from peer: Int) -> LateFrame {
        // Data and ready-to-sends are about messages this rank receives, clears about ones it sends.
        let receives = h.kind == .data || h.kind == .readyToSend
        guard let s = finishedSchedule(h.sequence, peer: peer, sends: !receives) else { return .unexpected }
        let (from, to) = receives ? (peer, config.rank) : (config.rank, peer)
        let name = h.sequence & Engine.pointToPointBit != 0 ? "the send from rank \(from) to rank \(to)" : "collective #\(h.sequence)"
        guard s.signature == h.signature else {
            fail(.mismatch("rank \(peer) and rank \(config.rank) called \(name) with different arguments (collective, count, type, op, root or algorithm); "
                           + "it finished here first"), notifyPeers: true)
            return .mismatch
        }
        let step = receives ? s.recvStep(from: peer, index: h.index) : s.sendStep(to: peer, index: h.index)
        let length = step.map { s.steps[$0].length }
        // The message's length by the frame; data carries it only when eager (one whole frame).
        let announced: Int? = h.kind != .data ? Int(truncatingIfNeeded: h.offset)
                                              : h.flags & FrameHeader.eagerFlag != 0 ? Int(h.length) : nil
        if length == nil || (announced != nil && announced != length) || (h.kind == .data && length == 0) {
            let what = receives ? "sends message \(h.index)" : "expects message \(h.index)"
            let here = length.map { "with \($0) bytes" } ?? "without it"
            fail(.mismatch("rank \(peer) \(what)\(announced.map { " (\($0) bytes)" } ?? "") of \(name), which finished on rank \(config.rank) \(here): "
                           + "the ranks passed different counts"), notifyPeers: true)
            return .mismatch
        }
        return h.kind == .readyToSend || (!receives && length == 0) ? .late : .unexpected
    }

    /// The schedule of an operation that finished here, if it is still kept: a collective, or a
    /// send to (`sends`) or receive from `peer`.
    func finishedSchedule(_ sequence: UInt32, peer: Int, sends: Bool) -> Schedule? {
        let records = sequence & Engine.pointToPointBit == 0 ? finished : sends ? peers[peer].finishedSends : peers[peer].finishedRecvs
        guard !records.isEmpty else { return nil }
        let f = records[Int(sequence) % records.count]
        guard f.sequence == sequence, let shared = f.schedule else { return nil }
        return shared.schedule
    }

    func signatureMismatch(_ c: ActiveCollective, peer: Int) {
        fail(.mismatch("rank \(peer) and rank \(config.rank) called \(c.request.name) with different arguments (collective, count, type, op, root or algorithm)"),
             notifyPeers: true)
    }

    /// Advertises receive step `i` to its sender (with where it lands, to an RDMA peer).
    @inline(__always) func sendClear(_ c: ActiveCollective, _ i: Int) {
        let step = c.schedule.steps[i]
        if peers[Int(step.peer)].rdma {
            sendClearToWrite(c, i)
            return
        }
        sendControl(to: Int(step.peer), FrameHeader(kind: .clearToSend, sequence: c.sequence, index: step.index,
                                                    offset: UInt64(step.length), length: 0, signature: c.schedule.signature))
    }

    /// Hands a parked eager message to receive step `i`, if it has fully arrived, and returns the
    /// sender's credit with the clear-to-send.
    func deliverParked(_ c: ActiveCollective, _ i: Int) {
        let step = c.schedule.steps[i]
        let peer = peers[Int(step.peer)]
        guard let k = peer.parkedIndex(c.sequence, step.index) else { return }
        let m = peer.parked[k]
        guard m.complete else { return }  // the payload's arrival delivers it
        peer.parked.remove(at: k)
        peer.freeSlots.append(m.slot)
        sendClear(c, i)
        guard m.signature == c.schedule.signature else {
            signatureMismatch(c, peer: peer.rank)
            return
        }
        guard m.length == step.length else {
            lengthMismatch(c, from: peer.rank, index: step.index, sent: m.length, expected: step.length)
            return
        }
        c.pointer(step.dst).copyMemory(from: peer.eagerPool! + m.slot * config.eagerMaxBytes, byteCount: m.length)
        c.progress[i] = m.length
        complete(c, i)
    }

    func queueSend(_ c: ActiveCollective, _ i: Int) {
        c.state[i] = 2
        let peer = peers[Int(c.schedule.steps[i].peer)]
        peer.sendQueue.append(cookie(c, i))
        pumpSends(peer)
    }

    /// Cuts queued sends into fragments and hands each to a socket, until the sockets are full.
    ///
    /// Frames taken back from a channel that went down go first. Then, when the queue holds sends
    /// of several collectives, they take turns, each turn worth fragments in proportion to what
    /// the collective still has to send to this peer, so that none starves; within a collective
    /// sends go in order, which keeps pipelines moving. See `pickChannel` for where each goes.
    func pumpSends(_ peer: PeerState) {
        guard peer.phase == .connected else { return }
        if peer.rdma {
            pumpWrites(peer)
            return
        }
        while peer.resendHead < peer.resend.count {
            let f = peer.resend[peer.resendHead]
            if lookup(f.cookie) == nil {
                // Its collective failed meanwhile: the buffer may be gone.
                peer.resendHead += 1
                continue
            }
            guard let ch = pickChannel(peer, bytes: Int(f.header.length)) else { return }
            _ = ch.enqueue(data: f.header, payload: f.payload, cookie: f.cookie)
            markDirty(ch)
            peer.resendHead += 1
        }
        if peer.resendHead > 0 { peer.resend.removeAll(keepingCapacity: true); peer.resendHead = 0 }
        while peer.sendHead < peer.sendQueue.count {
            let e = nextSend(peer)
            let ck = peer.sendQueue[e]
            guard let (c, i) = lookup(ck) else { finishQueued(peer, e); continue }
            let step = c.schedule.steps[i]
            if c.queued[i] >= step.length { finishQueued(peer, e); continue }
            let frag = c.eager[i] ? step.length : min(step.length - c.queued[i], fragmentSize(peer, step.length))
            guard let ch = pickChannel(peer, bytes: frag) else { return }
            var h = FrameHeader(kind: .data, sequence: c.sequence, index: step.index,
                                offset: UInt64(c.queued[i]), length: UInt32(frag), signature: c.schedule.signature)
            if c.eager[i] { h.flags = FrameHeader.eagerFlag }
            _ = ch.enqueue(data: h, payload: UnsafeRawPointer(c.pointer(step.a)) + c.queued[i], cookie: ck)
            c.queued[i] += frag
            markDirty(ch)
            if peer.turnQuota > 0 { peer.turnQuota -= 1 }
            if c.queued[i] >= step.length { finishQueued(peer, e) }
        }
        peer.sendQueue.removeAll(keepingCapacity: true)
        peer.sendHead = 0
    }

    /// Removes the fully queued send at `e` from the queue.
    @inline(__always) func finishQueued(_ peer: PeerState, _ e: Int) {
        if e == peer.sendHead { peer.sendHead += 1 } else { peer.sendQueue.remove(at: e) }
    }

    /// The queue position of the send whose fragment goes next: the head while one collective
    /// sends to this peer; otherwise the first send of the collective whose turn it is.
    func nextSend(_ peer: PeerState) -> Int {
        let q = peer.sendQueue
        let headSeq = UInt32(truncatingIfNeeded: q[peer.sendHead] >> 32)
        var single = true
        for k in (peer.sendHead + 1)..<q.count where UInt32(truncatingIfNeeded: q[k] >> 32) != headSeq { single = false; break }
        if single { return peer.sendHead }
        if peer.turnQuota > 0, let k = (peer.sendHead..<q.count).first(where: { UInt32(truncatingIfNeeded: q[$0] >> 32) == peer.turn }) {
            return k
        }
        // Next turn: the collective after the current one, in queue order, wrapping around
        // (the per-peer arrays keep their capacity: no allocation once warm).
        peer.turnOrder.removeAll(keepingCapacity: true)
        peer.turnPending.removeAll(keepingCapacity: true)
        for k in peer.sendHead..<q.count {
            let seq = UInt32(truncatingIfNeeded: q[k] >> 32)
            var left = 0
            if let (c, i) = lookup(q[k]) { left = c.schedule.steps[i].length - c.queued[i] }
            if let j = peer.turnOrder.firstIndex(of: seq) { peer.turnPending[j] += left } else { peer.turnOrder.append(seq); peer.turnPending.append(left) }
        }
        let at = peer.turnOrder.firstIndex(of: peer.turn).map { ($0 + 1) % peer.turnOrder.count } ?? 0
        peer.turn = peer.turnOrder[at]
        var least = Int.max
        for p in peer.turnPending where p > 0 && p < least { least = p }
        if least == Int.max { least = 1 }
        peer.turnQuota = min(16, max(1, peer.turnPending[at] / least))
        return (peer.sendHead..<q.count).first { UInt32(truncatingIfNeeded: q[$0] >> 32) == peer.turn }!
    }

    /// Fragment size for a message of `length` bytes: `HFR_FRAGMENT_MAX` over one link. Over
    /// several, about a quarter of the message per link, within `HFR_FRAGMENT_MIN` and the
    /// multi-link maximum (`HFR_FRAGMENT_MAX` if set, else 64 KiB): small fragments, few in flight
    /// (`HFR_MAX_INFLIGHT`), keep each link busy without overfilling the queue in front of a NIC
    /// that several peers send to, where a lost tail costs a 200 ms TCP retransmission timeout.
    @inline(__always) func fragmentSize(_ peer: PeerState, _ length: Int) -> Int {
        guard peer.reliable else { return config.fragmentBytes }
        let per = (length / (4 * peer.links.count) + 4095) & ~4095
        return max(config.fragmentMinBytes, min(config.linkFragmentBytes, per))
    }

    /// The socket the next fragment of `bytes` goes to, or nil when every socket is full.
    ///
    /// Over one link: the socket with the fewest bytes queued, below `HFR_SOCKET_INFLIGHT`.
    /// Over several: the link that will deliver it soonest, judged by the bytes it has in flight
    /// (written or queued, not yet acknowledged) and the rate at which its receiver has been
    /// acknowledging, among the links below `HFR_MAX_INFLIGHT` fragments in flight; then that
    /// link's least loaded socket. Faster links thus carry proportionally more.
    @inline(__always) func pickChannel(_ peer: PeerState, bytes: Int) -> TCPChannel? {
        let nsock = peer.channels.count
        if !peer.reliable {
            // Small messages stay on the first socket while it has room: spreading them makes the
            // receiver poll and wake for more sockets, for no bandwidth (4 ranks, 64 KiB
            // all-to-all: 87 -> 62 us a call).
            if bytes <= config.eagerMaxBytes, let first = peer.channels[0], first.hasRoom,
               first.queuedBytes < config.maxQueuedBytesPerSocket {
                return first
            }
            var best: TCPChannel?
            for k in 0..<nsock {
                guard let ch = peer.channels[(peer.nextChannel + k) % nsock] else { continue }
                if !ch.hasRoom || ch.queuedBytes >= config.maxQueuedBytesPerSocket { continue }
                if best == nil || ch.queuedBytes < best!.queuedBytes { best = ch }
            }
            if let best { peer.nextChannel = (best.index + 1) % nsock }
            return best
        }
        var fastest = 0.0
        for link in peer.links where link.rate > fastest { fastest = link.rate }
        var bestLink = -1, bestScore = Double.infinity, bestChannel: TCPChannel?
        let spl = peer.socketsPerLink
        for l in 0..<peer.links.count {
            var frames = 0, inflight = 0
            var pick: TCPChannel?
            for s in 0..<spl {
                guard let ch = peer.channels[l * spl + s] else { continue }
                frames += ch.framesInFlight
                inflight += ch.bytesInFlight
                if ch.hasRoom && (pick == nil || ch.bytesInFlight < pick!.bytesInFlight) { pick = ch }
            }
            guard let pick, frames < config.maxInflightFragments else { continue }
            // Links not measured yet count as fast as the fastest one, so they get tried.
            let rate = peer.links[l].rate > 0 ? peer.links[l].rate : (fastest > 0 ? fastest : 1)
            let score = Double(inflight + bytes) / rate
            if score < bestScore { bestScore = score; bestLink = l; bestChannel = pick }
        }
        if let ch = bestChannel, ch.bytesInFlight == 0 {
            let link = peer.links[bestLink]
            var idle = true
            for s in 0..<spl where (peer.channels[bestLink * spl + s]?.bytesInFlight ?? 0) > 0 { idle = false }
            if idle { link.windowStart = MonotonicClock.nanoseconds(); link.windowBytes = 0 }
        }
        return bestChannel
    }

    func sendControl(to rank: Int, _ h: FrameHeader, target: WriteTarget? = nil) {
        let peer = peers[rank]
        switch peer.phase {
        case .connected:
            if let ch = peer.controlChannel { ch.enqueue(control: h, target: target); markDirty(ch) }
        case .idle, .connecting:
            peer.pendingControl.append(ControlFrame(header: h, target: target))
            ensureConnected(peer)
        case .closed, .failed:
            break
        }
    }

    @inline(__always) func markDirty(_ ch: TCPChannel) {
        dirty.append(ch)
    }

    /// Writes what the dirty sockets have queued; asks epoll for writability where the kernel
    /// buffer is full, and drops that interest again once it drains.
    func flushDirty() {
        while let ch = dirty.popLast() {
            let peer = peers[ch.peer]
            guard peer.channels[ch.index] === ch else { continue }
            let drained: Bool
            do { drained = try ch.flush() } catch { channelFailed(ch, error); continue }
            if peer.hasQueuedSends { pumpSends(peer) }
            let want = !drained
            if want != peer.writeInterest[ch.index] {
                peer.writeInterest[ch.index] = want
                try? epoll.modify(ch.fd, events: Epoll.readable | (want ? Epoll.writable : 0), token: channelToken(ch))
            }
        }
    }

    @inline(__always) func channelToken(_ ch: TCPChannel) -> UInt64 {
        Engine.tokenChannel | UInt64(ch.peer) << 16 | UInt64(ch.index)
    }
}

extension Engine: ChannelDelegate {
    public func channel(_ channel: TCPChannel, dataHeader h: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64) {
        if peers[channel.peer].rdma {
            throw ChannelError.protocolViolation("a data frame over TCP from rank \(channel.peer), which writes by RDMA")
        }
        let eager = h.flags & FrameHeader.eagerFlag != 0
        guard let c = collective(h.sequence, peer: channel.peer) else {
            // After a failure, peers still send for collectives that failed here: drop it, and
            // keep the connection for the abort frame going out on it.
            if broken != nil { return discardTarget() }
            if eager && isFuture(h.sequence, peer: channel.peer) { return try park(h, from: channel.peer) }
            if lateFrame(h, from: channel.peer) == .mismatch { return discardTarget() }
            throw ChannelError.protocolViolation("data for operation #\(h.sequence & ~Engine.pointToPointBit)\(h.sequence & Engine.pointToPointBit != 0 ? " between two ranks" : ""), which is not in progress here")
        }
        if h.signature != c.schedule.signature {
            // Checked before the message itself: ranks that called different collectives, or
            // one with other arguments, disagree on the messages too.
            signatureMismatch(c, peer: channel.peer)
            return discardTarget()
        }
        guard let i = c.recvStep(peer: channel.peer, index: h.index) else {
            throw ChannelError.protocolViolation("data for message \(h.index) of \(c.request.name), which this rank does not receive")
        }
        guard c.state[i] == 1 else {
            if eager && c.state[i] == 0 { return try park(h, from: channel.peer) }
            if eager && c.schedule.steps[i].length == 0 {
                lengthMismatch(c, from: channel.peer, index: h.index, sent: Int(h.length), expected: 0)
                return discardTarget()
            }
            throw ChannelError.protocolViolation("data for message \(h.index) of \(c.request.name) before it was advertised")
        }
        if peers[channel.peer].parkedIndex(h.sequence, h.index) != nil {
            // Posted while its eager copy is still arriving: that copy is the message.
            throw ChannelError.protocolViolation("data for message \(h.index) of \(c.request.name), which is arriving as an eager message already")
        }
        if eager && Int(h.length) != c.schedule.steps[i].length {
            lengthMismatch(c, from: channel.peer, index: h.index, sent: Int(h.length), expected: c.schedule.steps[i].length)
            return discardTarget()
        }
        let length = c.schedule.steps[i].length
        guard h.offset <= UInt64(length), Int(h.offset) + Int(h.length) <= length else {
            throw ChannelError.protocolViolation("fragment [\(h.offset), +\(h.length)) lies outside message \(h.index) of \(length) bytes")
        }
        guard c.claim(i, offset: Int(h.offset), length: Int(h.length)) else {
            throw ChannelError.protocolViolation("fragment [\(h.offset), +\(h.length)) of message \(h.index) of \(c.request.name) repeats bytes of another "
                                                 + "or is not on the \(FragmentGrid.grain)-byte grid")
        }
        return (c.pointer(c.schedule.steps[i].dst) + Int(h.offset), cookie(c, i))
    }

    /// Receives an eager message whose receive is not posted yet into a free slot of the peer's pool.
    func park(_ h: FrameHeader, from rank: Int) throws -> (UnsafeMutableRawPointer, UInt64) {
        let peer = peers[rank]
        guard peer.parkedIndex(h.sequence, h.index) == nil else {
            throw ChannelError.protocolViolation("a second eager message \(h.index) of operation #\(h.sequence & ~Engine.pointToPointBit)")
        }
        guard h.offset == 0, Int(h.length) <= config.eagerMaxBytes else {
            throw ChannelError.protocolViolation("eager fragment [\(h.offset), +\(h.length)) is not a whole message of at most \(config.eagerMaxBytes) bytes")
        }
        if peer.eagerPool == nil {
            peer.eagerPool = .allocate(byteCount: max(1, config.eagerCredits * config.eagerMaxBytes), alignment: 64)
            peer.freeSlots = Array((0..<config.eagerCredits).reversed())
        }
        guard let slot = peer.freeSlots.popLast() else {
            throw ChannelError.protocolViolation("more than \(config.eagerCredits) eager messages outstanding (HFR_EAGER_CREDITS differs?)")
        }
        peer.parked.append(ParkedMessage(sequence: h.sequence, index: h.index, length: Int(h.length), slot: slot, complete: false,
                                         signature: h.signature))
        Log.trace(rank: config.rank, "parked eager message \(h.index) of collective #\(h.sequence) from rank \(rank) (\(h.length) B)")
        return (peer.eagerPool! + slot * config.eagerMaxBytes, Engine.parkedCookie | UInt64(rank) << 8 | UInt64(slot))
    }

    // Step cookies keep bit 31 clear (step numbers, or a peer and direction), so it marks
    // the payloads that do not belong to a step.
    static let parkedCookie: UInt64 = 1 << 31
    static let discardCookie: UInt64 = 3 << 30

    /// Where the payload of a frame that belongs to a failed collective is read and dropped, so
    /// the stream stays in step.
    func discardTarget() -> (UnsafeMutableRawPointer, UInt64) {
        if discard == nil { discard = .allocate(byteCount: max(config.fragmentBytes, config.eagerMaxBytes, 1), alignment: 64) }
        return (discard!, Engine.discardCookie)
    }

    public func channel(_ channel: TCPChannel, receivedPayloadOf ck: UInt64, header h: FrameHeader) {
        if ck == Engine.discardCookie { return }
        if ck & Engine.parkedCookie != 0 {
            let peer = peers[channel.peer]
            let slot = Int(ck & 0xFF)
            guard let k = peer.parked.firstIndex(where: { $0.slot == slot }) else { return }
            peer.parked[k].complete = true
            // Its receive may have been posted while the payload was arriving.
            if let c = collective(h.sequence, peer: channel.peer), let i = c.recvStep(peer: channel.peer, index: h.index), c.state[i] == 1 {
                deliverParked(c, i)
            }
            return
        }
        guard let (c, i) = lookup(ck) else { return }
        c.progress[i] += Int(h.length)
        if c.progress[i] == c.schedule.steps[i].length { complete(c, i) }
    }

    public func channel(_ channel: TCPChannel, control h: FrameHeader) throws {
        switch h.kind {
        case .clearToSend:
            let peer = peers[channel.peer]
            if let k = peer.eagerUnacknowledged.firstIndex(where: { $0.0 == h.sequence && $0.1 == h.index }) {
                // The message went out eagerly: this clear-to-send hands the credit back, and in a
                // collective still running here it is the receiver's word on the message (its
                // arguments), which the send waits for (a send and receive between two ranks are
                // over once written, and only take the credit back).
                peer.eagerUnacknowledged.remove(at: k)
                peer.eagerCredits += 1
                if let c = collective(h.sequence, peer: channel.peer, sends: true), c.pointToPointPeer < 0 { handleClear(c, from: channel.peer, h) }
            } else if peer.rdma && h.offset != 0 {
                throw ChannelError.protocolViolation("a clear-to-send for \(h.offset) bytes from rank \(channel.peer), which takes data by RDMA (clear-to-write)")
            } else if let c = collective(h.sequence, peer: channel.peer, sends: true) {
                handleClear(c, from: channel.peer, h)
            } else if isFuture(h.sequence, peer: channel.peer, sends: true) {
                try holdEarly(ControlFrame(header: h, target: nil), from: channel.peer)
            } else if broken == nil && lateFrame(h, from: channel.peer) == .unexpected {
                throw ChannelError.protocolViolation("clear-to-send for operation #\(h.sequence & ~Engine.pointToPointBit), which has already finished here")
            }
        case .abort:
            let failed = Int(Int32(truncatingIfNeeded: h.index))
            guard failed >= -1 && failed < config.ranks else {
                throw ChannelError.protocolViolation("an abort frame from rank \(channel.peer) names rank \(failed), outside 0..<\(config.ranks)")
            }
            if broken == nil {
                if h.offset == CollectiveError.mismatch("").abortCode {
                    fail(.mismatch("rank \(channel.peer) reports that the ranks called a collective with different arguments (count, type, op or algorithm)"),
                         notifyPeers: true)
                } else {
                    fail(.remoteAbort(rank: failed, reportedBy: channel.peer, reason: CollectiveError.describeAbortCode(h.offset), code: h.offset),
                         notifyPeers: true)
                }
            }
        case .linkDown:
            try linkDownReceived(from: channel.peer, on: channel, h)
        case .readyToSend:
            // Sent for a collective's first message only (see `start`).
            guard h.sequence & Engine.pointToPointBit == 0, h.index == 0 else {
                throw ChannelError.protocolViolation("a ready-to-send for message \(h.index) of operation #\(h.sequence & ~Engine.pointToPointBit)"
                                                     + (h.sequence & Engine.pointToPointBit != 0 ? " between two ranks" : ""))
            }
            if let c = collective(h.sequence, peer: channel.peer) {
                checkReadyToSend(c, from: channel.peer, h)
            } else if isFuture(h.sequence, peer: channel.peer) {
                try holdEarly(ControlFrame(header: h, target: nil), from: channel.peer)
            } else if broken == nil {
                // The collective is over here: its data overtook this notice on another socket,
                // or this rank finished it with other arguments.
                _ = lateFrame(h, from: channel.peer)
            }
        case .leaving:
            // Its work is done and its sockets close next: if work with it is still pending here
            // then, the ranks disagreed (see `lossError`).
            peers[channel.peer].departedAfter = h.sequence
        case .data, .ack, .clearToWrite:
            break
        }
    }

    public func channel(_ channel: TCPChannel, clearToWrite h: FrameHeader, target: WriteTarget) throws {
        let peer = peers[channel.peer]
        guard peer.rdma else {
            throw ChannelError.protocolViolation("a clear-to-write from rank \(channel.peer), which is reached over TCP")
        }
        guard target.linkCount == peer.links.count else {
            throw ChannelError.protocolViolation("rank \(channel.peer) advertises a message over \(target.linkCount) RDMA links; there are \(peer.links.count)")
        }
        if let c = collective(h.sequence, peer: channel.peer, sends: true) {
            handleClear(c, from: channel.peer, h, target: target)
        } else if isFuture(h.sequence, peer: channel.peer, sends: true) {
            try holdEarly(ControlFrame(header: h, target: target), from: channel.peer)
        } else if broken == nil && lateFrame(h, from: channel.peer) == .unexpected {
            throw ChannelError.protocolViolation("clear-to-write for operation #\(h.sequence & ~Engine.pointToPointBit), which has already finished here")
        }
    }

    public func channel(_ channel: TCPChannel, sent ck: UInt64, bytes: Int) {
        if channel.reliable {
            let peer = peers[channel.peer]
            var busy = false
            let spl = peer.socketsPerLink
            for s in 0..<spl where (peer.channels[channel.link * spl + s]?.bytesInFlight ?? 0) > 0 { busy = true }
            peer.links[channel.link].record(bytes, now: MonotonicClock.nanoseconds(), busy: busy)
            // The acknowledgement freed room in flight: the flush of this channel pumps the queue.
            if peer.hasQueuedSends { markDirty(channel) }
        }
        guard let (c, i) = lookup(ck) else { return }
        c.progress[i] += bytes
        if c.progress[i] == c.schedule.steps[i].length && c.sendConfirmed(i) { complete(c, i) }
    }
}
