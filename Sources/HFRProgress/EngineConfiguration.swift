import HFRSystem
import HFRTransport
import HFRTopology
import HFRVerbs

/// Everything the progress engine of one communicator needs to know, resolved from the
/// environment and the rendezvous by the layer above.
public struct EngineConfiguration: Sendable {
    public var rank: Int
    public var ranks: Int
    public var jobToken: UInt64
    public var commID: UInt64
    /// Where every rank listens for data connections (a port and its NICs), indexed by rank.
    public var peerAddresses: [RankAddress]
    /// Interface names of this rank's published NICs, in `peerAddresses[rank]`'s order (for logs).
    public var nicNames: [String] = []
    /// This rank's listening socket (already bound and listening); the engine owns it from now on.
    public var listenFD: Int32
    /// TCP sockets per peer (`HFR_NSOCKS`).
    public var socketsPerPeer: Int = 2
    /// TCP sockets per link for a peer over several links (`HFR_NSOCKS` if set, else 1: the
    /// links already spread the load, and fewer flows into a NIC lose fewer packets).
    public var socketsPerLink: Int = 1
    /// SO_SNDBUF / SO_RCVBUF (`HFR_SOCKET_BUFFER`); 0 leaves the kernel's autotuning alone.
    public var socketBufferBytes: Int = 0
    /// Largest fragment a message is cut into (`HFR_FRAGMENT_MAX`).
    public var fragmentBytes: Int = 512 << 10
    /// Payload bytes queued per socket before the scheduler holds back (`HFR_SOCKET_INFLIGHT`).
    public var maxQueuedBytesPerSocket: Int = 2 << 20
    /// Reductions of at most this many bytes run on the progress thread itself (`HFR_INLINE_REDUCE`).
    public var inlineReduceBytes: Int = 256 << 10
    /// Copies into a collective's output of at least this many bytes use non-temporal stores
    /// (`HFR_STREAMING_COPY`; 0: never).
    public var streamingCopyBytes: Int = 8 << 20
    /// Reduction worker threads (`HFR_REDUCE_THREADS`); 0 reduces on the progress thread.
    public var reduceThreads: Int = 1
    /// Deadline for every collective and connection (`HFR_TIMEOUT`).
    public var timeoutNanoseconds: UInt64 = 300_000_000_000
    /// How long the progress thread keeps polling after the last collective finished (`HFR_SPIN`);
    /// it polls without sleeping while collectives are in flight. 0 always sleeps in epoll_wait.
    public var spinNanoseconds: UInt64 = 0
    /// Whether the polling progress thread yields its core between polls (`HFR_SPIN_YIELD`).
    public var yieldWhilePolling = false
    /// With yielding on (ranks outnumber cores), a collective whose messages average at least
    /// this many bytes, and whose fragments can be as large, is waited for asleep: its caller
    /// sleeps and the progress thread blocks in epoll_wait while only such collectives are in
    /// flight (`HFR_SLEEP_BYTES`; 0: never). A wake-up costs tens of microseconds, small against
    /// a large fragment, and a rank that polls takes the core from the ranks whose copies it
    /// waits for. Over several links fragments are small and few in flight: each refill of the
    /// window waits on a wake-up there, so those keep polling.
    public var sleepMessageBytes: Int = 512 << 10
    /// Messages up to this size go out before the receiver's clear-to-send (`HFR_EAGER_MAX`);
    /// the receiver parks early arrivals in a small per-peer pool. 0 turns eager sends off.
    public var eagerMaxBytes: Int = 64 << 10
    /// Eager messages per peer that may be unacknowledged at once (`HFR_EAGER_CREDITS`).
    public var eagerCredits: Int = 4
    /// Where the progress and reduction threads run and the engine's buffers live (the NIC's NUMA
    /// node, from HFRTopology); nil leaves them to the scheduler and the default memory policy.
    public var placement: Placement.Choice?
    /// Collectives in flight at once; later submissions wait in a backlog. A power of two (a
    /// collective's slot is its sequence number modulo this, across the numbers' wrap at 2^31),
    /// and the same on every rank: a rank refuses frames for more operations than this that it
    /// has not started (`Engine.holdEarly`).
    public var maxActive: Int = 64

    /// Largest fragment when a peer has several links (`HFR_FRAGMENT_MAX` if set, else 64 KiB).
    public var linkFragmentBytes: Int = 64 << 10
    /// Smallest fragment when a peer has several links (`HFR_FRAGMENT_MIN`).
    public var fragmentMinBytes: Int = 32 << 10
    /// Fragments per link sent and not yet acknowledged (`HFR_MAX_INFLIGHT`), peers with several links.
    public var maxInflightFragments: Int = 4
    /// A link that acknowledges nothing this long with fragments in flight is down (`HFR_LINK_TIMEOUT`).
    public var linkTimeoutNanoseconds: UInt64 = 2_000_000_000

    /// The ACTIVE HCA ports this rank offers for RDMA, in order: link l to an RDMA peer uses port
    /// l (`LinkPlan.verbsLinks`). Empty: every peer is reached over TCP.
    public var verbsPorts: [VerbsPort] = []
    /// How RDMA queue pairs connect (`HFR_IB_TIMEOUT`, `HFR_IB_RETRY_CNT`).
    public var connectOptions = ConnectOptions()
    /// Keep registrations of callers' buffers in the ports' caches after their collective
    /// (`HFR_IB_REG_CACHE=1`); by default each collective registers the range of a caller's
    /// buffer its messages use and releases it when it finishes.
    public var cacheRegistrations = false
    /// Test hook (`HFR_IB_TEST_BAD_RKEY=1`): every RDMA write this rank posts carries a corrupted
    /// rkey, so that the receiver's HCA refuses it with a remote access error.
    public var corruptRemoteKeys = false
    /// Test hook (`HFR_IB_TEST_BAD_FRAGMENT=1`): every RDMA write this rank posts names the
    /// fragment after its own, so that the receiver refuses the one beyond the message.
    public var misnumberFragments = false

    public init(rank: Int, ranks: Int, jobToken: UInt64, commID: UInt64, peerAddresses: [RankAddress], listenFD: Int32) {
        self.rank = rank; self.ranks = ranks; self.jobToken = jobToken; self.commID = commID
        self.peerAddresses = peerAddresses; self.listenFD = listenFD
    }
}
