import HFRSystem
import HFRTransport

/// Traffic of one socket to a peer, for diagnostics (`hfr-bench --nic-stats`), with the RDMA
/// writes of the link when the socket is an RDMA link's control channel.
public struct ChannelStatistics: Sendable {
    public var peer: Int
    public var link: Int
    public var socket: Int
    public var local: SocketAddress?
    public var remote: SocketAddress?
    /// False once the socket went down (its counters stay).
    public var isUp: Bool
    public var bytesSent: Int
    public var bytesReceived: Int
    public var framesSent: Int
    public var framesReceived: Int
    /// For the control socket of an RDMA link: the link's writes (the data it carried).
    public var rdma: RDMACounters?
}

extension Engine {
    /// The counters of every open socket. Takes the engine for a moment, between turns of the
    /// event loop; not for use on the data path.
    public func statistics() -> [ChannelStatistics] {
        driver.lock()
        defer { driver.unlock() }
        var out: [ChannelStatistics] = []
        for peer in peers {
            for ch in peer.channels.compactMap({ $0 }) + peer.down.values + peer.retired {
                let link = peer.links[ch.link]
                let mine = config.peerAddresses[config.rank].nics[link.local], theirs = config.peerAddresses[peer.rank]
                out.append(ChannelStatistics(peer: ch.peer, link: ch.link, socket: ch.index % peer.socketsPerLink,
                                             local: SocketAddress(ip: mine.ip, port: 0),
                                             remote: SocketAddress(ip: theirs.nics[link.remote].ip, port: theirs.port),
                                             isUp: peer.channels[ch.index] === ch,
                                             bytesSent: ch.bytesSent, bytesReceived: ch.bytesReceived,
                                             framesSent: ch.framesSent, framesReceived: ch.framesReceived,
                                             rdma: peer.rdma ? link.rdma?.counters ?? link.finalCounters : nil))
            }
        }
        return out
    }
}
