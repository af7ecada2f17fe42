import Glibc
import HFRSystem
import HFRTransport

/// Link failover for peers reached over several links: a channel that breaks or stalls is closed
/// on both sides, and the frames the other side did not take are sent again on the channels
/// left. Only when no channel to a peer is left does the peer fail.
extension Engine {
    /// Takes channel `ch` out of service: closes its socket, tells the peer on another channel how
    /// many frames this side took from it, and re-sends its frames once the peer's count is known.
    func channelDown(_ ch: TCPChannel, _ reason: String) {
        let peer = peers[ch.peer]
        guard peer.channels[ch.index] === ch else { return }
        peer.channels[ch.index] = nil
        peer.writeInterest[ch.index] = false
        peer.lost += 1
        epoll.remove(ch.fd)
        ch.closeSocket()
        peer.down[ch.index] = ch
        let link = peer.links[ch.link]
        guard let other = peer.controlChannel else {
            peerFailed(ch.peer, "every link to rank \(ch.peer) is down (the last: link \(ch.link), \(link.name): \(reason))")
            return
        }
        Log.warn(rank: config.rank, "socket \(ch.index % peer.socketsPerLink) of link \(ch.link) to rank \(ch.peer) (\(link.name)) is down: \(reason); its unacknowledged frames go to the other links")
        other.enqueue(control: FrameHeader(kind: .linkDown, sequence: 0, index: Int32(ch.index), offset: ch.received, length: 0))
        markDirty(other)
        if let count = peer.downCounts.removeValue(forKey: ch.index) {
            resolveDown(peer, channel: ch.index, peerReceived: count)
        }
    }

    /// The peer reports that it took `count` frames from channel `index` before closing it.
    func linkDownReceived(from rank: Int, channel index: Int, count: UInt64) throws {
        let peer = peers[rank]
        guard index >= 0 && index < peer.channels.count else {
            throw ChannelError.protocolViolation("rank \(rank) reports channel \(index) down; it has \(peer.channels.count)")
        }
        if let ch = peer.channels[index] {
            peer.downCounts[index] = count
            channelDown(ch, "rank \(rank) closed it")
        } else if peer.down[index] != nil {
            resolveDown(peer, channel: index, peerReceived: count)
        }
        // Otherwise the channel never connected here: nothing was sent on it.
    }

    /// Both sides have closed channel `index`: re-sends what the peer did not take.
    func resolveDown(_ peer: PeerState, channel index: Int, peerReceived: UInt64) {
        guard let ch = peer.down.removeValue(forKey: index) else { return }
        let frames: [PendingFrame]
        do { frames = try ch.takeBack(peerReceived: peerReceived) } catch {
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
                control.enqueue(control: f.header)
            }
        }
        markDirty(control)
        Log.info(rank: config.rank, "re-sending \(data) data and \(frames.count - data) control frame(s) of channel \(index) to rank \(peer.rank) on the links left")
        pumpSends(peer)
    }

    /// Declares down every channel that has had frames in flight for `HFR_LINK_TIMEOUT` without
    /// an acknowledgement (a NIC that went down loses packets silently; TCP alone would retry for
    /// minutes).
    func checkStalledLinks(_ now: UInt64) {
        for peer in peers where peer.reliable && peer.phase == .connected {
            for case let ch? in peer.channels where ch.hasUnfinishedFrames && now &- ch.lastProgress > config.linkTimeoutNanoseconds {
                channelDown(ch, "no acknowledgement for \(Double(config.linkTimeoutNanoseconds) / 1e9) s (HFR_LINK_TIMEOUT)")
                if peer.phase != .connected { break }
            }
        }
    }
}
