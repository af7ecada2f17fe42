import HFRSystem
import HFRTransport
import HFRVerbs

/// RDMA data movement, sending side and advertisement: the receiver registers a message's
/// destination with every link's HCA port and sends a clear-to-write naming it (address, tag, an
/// rkey per link); the sender cuts the message into fragments and posts each as a write with
/// immediate (tag and fragment number) on the link that will deliver it soonest. Nothing here
/// allocates per fragment: the posted writes go into each link's fixed ring, registrations are
/// made once per collective and buffer (or cached: scratch, `HFR_IB_REG_CACHE=1`), small
/// messages go through the ports' bounce buffers.
extension Engine {
    /// Advertises receive step `i` to its RDMA sender: takes a tag, stages a small message in a
    /// bounce buffer or registers the destination (staging it when the HCA refuses that), and
    /// sends the clear-to-write. When every tag (or bounce buffer) is taken the advertisement
    /// waits for one to free.
    func sendClearToWrite(_ c: ActiveCollective, _ i: Int) {
        guard let receives = rdmaReceives else { return }
        let step = c.schedule.steps[i]
        let peer = peers[Int(step.peer)]
        let ck = cookie(c, i)
        let destination = c.pointer(step.dst)
        let fragment = rdmaFragmentSize(peer, step.length)
        guard let (slot, tag) = receives.take(cookie: ck, peer: peer.rank, length: step.length, fragmentBytes: fragment) else {
            deferredClears.append(ck)
            return
        }
        if bounces(step.dst.buffer, destination, step.length),
           let staged = stageReceive(peer, slot: slot, tag: tag, length: step.length, fragmentBytes: fragment, destination: destination) {
            advertise(c, i, staged)
            return
        }
        var target = WriteTarget(address: UInt64(UInt(bitPattern: destination)), tag: tag, linkCount: peer.links.count, fragmentBytes: fragment)
        var refused: (String, VerbsError?)?
        for l in 0..<peer.links.count {
            let port = rdmaPorts[l]
            guard let region = registration(c, port, step.dst.buffer, destination, count: step.length) else {
                refused = (port.name, port.cache.lastRefusal)
                break
            }
            receives.hold(slot, link: l, region)
            target.setRkey(l, region.rkey)
        }
        if let (portName, why) = refused {
            guard let staged = stageReceive(peer, slot: slot, tag: tag, length: step.length, fragmentBytes: fragment, destination: destination) else {
                _ = receives.release(slot, copyOut: false)
                if rdmaPorts.prefix(peer.links.count).allSatisfy({ ($0.cache.bounce?.bufferSize ?? 0) < step.length }) {
                    fail(.system("rank \(config.rank) cannot register the \(step.length)-byte receive buffer of \(c.request.name) at \(destination) with \(portName) (\(why.map { "\($0)" } ?? "refused")), and it does not fit a bounce buffer"),
                         notifyPeers: true)
                } else {
                    deferredClears.append(ck)
                }
                return
            }
            target = staged
        }
        advertise(c, i, target)
    }

    /// Sends the clear-to-write of receive step `i` to its sender.
    private func advertise(_ c: ActiveCollective, _ i: Int, _ target: WriteTarget) {
        let step = c.schedule.steps[i]
        sendControl(to: Int(step.peer), FrameHeader(kind: .clearToWrite, sequence: c.sequence, index: step.index, offset: UInt64(step.length),
                                                   length: UInt32(WriteTarget.size), signature: c.schedule.signature), target: target)
    }

    /// Stages a message whose destination the HCA refused to register in a bounce buffer of one
    /// link (the only link then allowed to carry it); nil when no link has a free one that fits.
    private func stageReceive(_ peer: PeerState, slot: Int, tag: UInt32, length: Int, fragmentBytes: Int,
                              destination: UnsafeMutableRawPointer) -> WriteTarget? {
        for l in 0..<peer.links.count {
            guard let r = peer.links[l].rdma, r.state == .up, let pool = rdmaPorts[l].cache.bounce,
                  length <= pool.bufferSize, let buffer = pool.take() else { continue }
            rdmaReceives?.stage(slot, in: buffer, port: l, destination: destination)
            var target = WriteTarget(address: UInt64(UInt(bitPattern: buffer.address)), tag: tag, linkCount: peer.links.count, fragmentBytes: fragmentBytes)
            target.setRkey(l, buffer.rkey)
            return target
        }
        return nil
    }

    /// Advertisements that waited for a tag or a bounce buffer, tried again once one freed.
    func retryDeferredClears() {
        var waiting: [UInt64] = []
        swap(&waiting, &deferredClears)
        for ck in waiting {
            if let (c, i) = lookup(ck), c.state[i] == 1 { sendClearToWrite(c, i) }
        }
    }

    /// Fragment size for an RDMA message of `length` bytes, chosen by its receiver and named in
    /// the clear-to-write (`WriteTarget.fragmentBytes`): `HFR_FRAGMENT_MAX` (512 KiB by
    /// default) over one link; over several, small enough that the message spreads over every
    /// link a few times over, but not below `HFR_FRAGMENT_MIN`. (The 64 KiB cap of TCP links does
    /// not apply: an RDMA write overfills no switch queue.) Never so small that the message needs
    /// more fragments than an immediate can number.
    @inline(__always) func rdmaFragmentSize(_ peer: PeerState, _ length: Int) -> Int {
        var size = config.fragmentBytes
        if peer.links.count > 1 {
            let per = (length / (4 * peer.links.count) + 4095) & ~4095
            size = max(min(config.fragmentMinBytes, size), min(size, per))
        }
        let least = (length + WriteTarget.maxFragments - 1) / WriteTarget.maxFragments
        return max(size, (least + 4095) & ~4095)
    }

    /// Posts queued sends to an RDMA peer as writes with immediate until its links are full:
    /// first the writes a failed link gave back, then new fragments, the collectives taking
    /// turns as over TCP (`nextSend`).
    func pumpWrites(_ peer: PeerState) {
        while peer.rdmaResendHead < peer.rdmaResend.count {
            let w = peer.rdmaResend[peer.rdmaResendHead]
            guard let (c, i) = lookup(w.cookie), i < c.targets.count, let target = c.targets[i] else {
                // Its collective failed meanwhile: the buffer may be gone.
                peer.rdmaResendHead += 1
                continue
            }
            guard let l = pickLink(peer, bytes: w.length, target: target) else {
                if cannotDeliver(peer, target) { undeliverable(peer, c) }
                return
            }
            guard postFragment(peer, link: l, c, i, target, offset: w.offset, length: w.length, fragment: w.fragment) else { return }
            peer.rdmaResendHead += 1
        }
        if peer.rdmaResendHead > 0 { peer.rdmaResend.removeAll(keepingCapacity: true); peer.rdmaResendHead = 0 }
        while peer.sendHead < peer.sendQueue.count {
            let e = nextSend(peer)
            let ck = peer.sendQueue[e]
            guard let (c, i) = lookup(ck) else { finishQueued(peer, e); continue }
            let step = c.schedule.steps[i]
            // A send is queued only once its clear-to-write has come, so its target is known.
            guard c.queued[i] < step.length, i < c.targets.count, let target = c.targets[i] else { finishQueued(peer, e); continue }
            let size = target.fragmentBytes
            let frag = min(step.length - c.queued[i], size)
            guard let l = pickLink(peer, bytes: frag, target: target) else {
                if cannotDeliver(peer, target) { undeliverable(peer, c) }
                return
            }
            guard postFragment(peer, link: l, c, i, target, offset: c.queued[i], length: frag, fragment: c.queued[i] / size) else { return }
            c.queued[i] += frag
            if peer.turnQuota > 0 { peer.turnQuota -= 1 }
            if c.queued[i] >= step.length { finishQueued(peer, e) }
        }
        peer.sendQueue.removeAll(keepingCapacity: true)
        peer.sendHead = 0
    }

    /// The link the next fragment of `bytes` goes to, or nil when every link the receiver allowed
    /// is full or not up: the one that will deliver it soonest, judged by its bytes in flight and
    /// the rate its writes have been completing at, among the links below `HFR_MAX_INFLIGHT`
    /// writes in flight. Faster links thus carry proportionally more.
    @inline(__always) func pickLink(_ peer: PeerState, bytes: Int, target: WriteTarget) -> Int? {
        var fastest = 0.0
        for link in peer.links where link.rate > fastest { fastest = link.rate }
        // Ties go round robin, so that small messages take turns on idle links.
        var best = -1, bestScore = Double.infinity
        let n = peer.links.count
        for k in 0..<n {
            let l = (peer.nextChannel + k) % n
            guard let r = peer.links[l].rdma, r.state == .up, target.rkey(l) != 0,
                  r.count < config.maxInflightFragments, r.hasRoom else { continue }
            // Links not measured yet count as fast as the fastest one, so they get tried.
            let rate = peer.links[l].rate > 0 ? peer.links[l].rate : (fastest > 0 ? fastest : 1)
            let score = Double(r.bytesInFlight + bytes) / rate
            if score < bestScore { bestScore = score; best = l }
        }
        guard best >= 0 else { return nil }
        peer.nextChannel = (best + 1) % n
        if peer.links[best].rdma!.count == 0 {
            peer.links[best].windowStart = MonotonicClock.nanoseconds()
            peer.links[best].windowBytes = 0
        }
        return best
    }

    /// Whether no link the receiver allowed for a message can ever carry it (they are down, while
    /// others are not: a message staged in one link's bounce buffer whose link failed).
    func cannotDeliver(_ peer: PeerState, _ target: WriteTarget) -> Bool {
        var allowedAlive = false, anyAlive = false
        for l in 0..<peer.links.count {
            guard let r = peer.links[l].rdma, r.state == .up || r.state == .connecting else { continue }
            anyAlive = true
            if target.rkey(l) != 0 { allowedAlive = true }
        }
        return anyAlive && !allowedAlive
    }

    func undeliverable(_ peer: PeerState, _ c: ActiveCollective) {
        peerFailed(peer.rank, "every RDMA link rank \(peer.rank) allowed for a message of \(c.request.name) is down")
    }

    /// Posts fragment `fragment` ([offset, +length) of send step `i`) on link `l` as a write with
    /// immediate. A small message's source is copied to a bounce buffer while one is free; others
    /// are registered (`registration`), or copied to a bounce buffer when the HCA refuses to
    /// register them. False when nothing was posted: every bounce
    /// buffer is in flight, or the post failed (the link then goes down at the end of the turn).
    func postFragment(_ peer: PeerState, link l: Int, _ c: ActiveCollective, _ i: Int, _ target: WriteTarget,
                      offset: Int, length: Int, fragment: Int) -> Bool {
        let step = c.schedule.steps[i]
        let link = peer.links[l].rdma!
        let port = link.port
        let base = UnsafeRawPointer(c.pointer(step.a))
        var w = PostedWrite(cookie: cookie(c, i), offset: offset, length: length, fragment: fragment, region: nil, bounce: nil)
        let local: LocalBuffer
        if bounces(step.a.buffer, base, step.length), let pool = port.cache.bounce, let buffer = pool.take() {
            buffer.address.copyMemory(from: base + offset, byteCount: length)
            local = buffer.local(count: length)
            w.bounce = buffer
        } else if let region = registration(c, port, step.a.buffer, base, count: step.length) {
            local = region.local(base + offset, count: length)
            w.region = region
        } else if let pool = port.cache.bounce, length <= pool.bufferSize {
            guard let buffer = pool.take() else { return false }  // completions give them back
            buffer.address.copyMemory(from: base + offset, byteCount: length)
            local = buffer.local(count: length)
            w.bounce = buffer
        } else {
            fail(.system("rank \(config.rank) cannot register the send buffer of \(c.request.name) at \(base) with \(port.name) (\(port.cache.lastRefusal.map { "\($0)" } ?? "refused")), and a fragment of \(length) bytes does not fit a bounce buffer"),
                 notifyPeers: true)
            return false
        }
        var rkey = target.rkey(l)
        if config.corruptRemoteKeys { rkey ^= 0x8000_0000 }
        do {
            try link.post(w, local: local, remoteAddress: target.address &+ UInt64(offset), rkey: rkey,
                          immediate: WriteTarget.immediate(tag: target.tag, fragment: config.misnumberFragments ? fragment + 1 : fragment))
        } catch {
            if let b = w.bounce { port.cache.bounce?.giveBack(b) }
            noteLinkFailure(peer.rank, l, "posting an RDMA write to rank \(peer.rank) over link \(l) (\(port.name)) failed: \(error)")
            return false
        }
        return true
    }

    /// `bytes` of send step `ck` reached the receiver.
    @inline(__always) func writeDelivered(_ ck: UInt64, _ bytes: Int) {
        guard let (c, i) = lookup(ck) else { return }
        c.progress[i] += bytes
        if c.progress[i] == c.schedule.steps[i].length { complete(c, i) }
    }
}
