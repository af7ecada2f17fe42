import HFRSystem
import HFRTransport
import HFRVerbs

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

/// What one HCA port's registration cache holds and has done, for diagnostics.
public struct RegistrationStatistics: Sendable {
    /// The port, as `device:port`.
    public var port: String
    /// Regions the cache holds now, and the bytes they cover.
    public var cachedRegions: Int
    public var cachedBytes: Int
    /// Lookups the cache answered, and registrations made for it.
    public var hits: Int
    public var cachedRegistrations: Int
    /// Registrations made for one collective each (callers' buffers, `HFR_IB_REG_CACHE=0`).
    public var collectiveRegistrations: Int
    /// Registrations the device refused (those messages went through bounce buffers).
    public var refusals: Int
    /// Ranges the caller registered (`Communicator.register`) and still holds, and their bytes.
    public var callerRanges: Int
    public var callerBytes: Int
}

extension Engine {
    /// Per HCA port (none over TCP), its registration cache. Takes the engine for a moment,
    /// between turns of the event loop; not for use on the data path.
    public func registrationStatistics() -> [RegistrationStatistics] {
        driver.lock()
        defer { driver.unlock() }
        let callerBytes = registeredRanges.reduce(0) { $0 + $1.range.count }
        return rdmaPorts.map {
            let s = $0.cache.statistics
            return RegistrationStatistics(port: $0.name, cachedRegions: $0.cache.count, cachedBytes: $0.cache.cachedBytes, hits: s.hits,
                                          cachedRegistrations: s.registrations, collectiveRegistrations: s.uncachedRegistrations,
                                          refusals: s.refusals, callerRanges: registeredRanges.count, callerBytes: callerBytes)
        }
    }
}
