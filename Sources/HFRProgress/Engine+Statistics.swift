import HFRSystem
import HFRTransport

/// Traffic of one socket to a peer, for diagnostics (`hfr-bench --nic-stats`).
public struct ChannelStatistics: Sendable {
    public var peer: Int
    public var link: Int
    public var socket: Int
    public var local: SocketAddress?
    public var remote: SocketAddress?
    public var bytesSent: Int
    public var bytesReceived: Int
    public var framesSent: Int
    public var framesReceived: Int
}

extension Engine {
    /// The counters of every open socket. Takes the engine for a moment, between turns of the
    /// event loop; not for use on the data path.
    public func statistics() -> [ChannelStatistics] {
        driver.lock()
        defer { driver.unlock() }
        var out: [ChannelStatistics] = []
        for peer in peers {
            for case let ch? in peer.channels {
                out.append(ChannelStatistics(peer: ch.peer, link: ch.link, socket: ch.index,
                                             local: try? TCPSocket.localAddress(ch.fd), remote: TCPSocket.peerAddress(ch.fd),
                                             bytesSent: ch.bytesSent, bytesReceived: ch.bytesReceived,
                                             framesSent: ch.framesSent, framesReceived: ch.framesReceived))
            }
        }
        return out
    }
}
