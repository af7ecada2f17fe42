/// The first 48 bytes on every connection, in both directions: who is calling whom, for which
/// job and communicator. A connection whose handshake does not match is closed and logged.
///
///     0  magic      u32 'HFRH'
///     4  version    u16
///     6  kind       u16 (1 hello, 2 accept, 3 reject)
///     8  jobToken   u64
///    16  commID     u64
///    24  fromRank   u32
///    28  toRank     u32
///    32  ranks      u32
///    36  socket     u16 socket number within the link
///    38  link       u16 link (NIC pair) number
///    40  value      u64 kind-specific (rendezvous hello: HCA ports << 32 | NIC count << 16 |
///                       port of the data listener, the NIC addresses following; reject: reason code)
public struct Handshake: Equatable, Sendable {
    public static let size = 48
    public static let magic: UInt32 = 0x4852_4648  // "HFRH"
    /// Bumped whenever the wire format changes; peers of another version are refused.
    public static let protocolVersion: UInt16 = 7  // 5: data fragments on the 4 KiB grid; 6: leaving frames; 7: receivers name RDMA fragment sizes, empty receives between two ranks send a clear-to-send

    public enum Kind: UInt16, Sendable { case hello = 1, accept = 2, reject = 3 }

    public var kind: Kind
    public var version: UInt16 = Handshake.protocolVersion
    public var jobToken: UInt64
    public var commID: UInt64
    public var fromRank: UInt32
    public var toRank: UInt32
    public var ranks: UInt32
    public var socket: UInt16 = 0
    public var link: UInt16 = 0
    public var value: UInt64 = 0

    public init(kind: Kind, jobToken: UInt64, commID: UInt64, fromRank: Int, toRank: Int, ranks: Int) {
        self.kind = kind; self.jobToken = jobToken; self.commID = commID
        self.fromRank = UInt32(truncatingIfNeeded: fromRank); self.toRank = UInt32(truncatingIfNeeded: toRank)
        self.ranks = UInt32(truncatingIfNeeded: ranks)
    }

    public func encode(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Handshake.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: version.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: kind.rawValue.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: jobToken.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: commID.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: fromRank.littleEndian, toByteOffset: 24, as: UInt32.self)
        p.storeBytes(of: toRank.littleEndian, toByteOffset: 28, as: UInt32.self)
        p.storeBytes(of: ranks.littleEndian, toByteOffset: 32, as: UInt32.self)
        p.storeBytes(of: socket.littleEndian, toByteOffset: 36, as: UInt16.self)
        p.storeBytes(of: link.littleEndian, toByteOffset: 38, as: UInt16.self)
        p.storeBytes(of: value.littleEndian, toByteOffset: 40, as: UInt64.self)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Handshake.size)
        out.withUnsafeMutableBytes { encode(to: $0.baseAddress!) }
        return out
    }

    /// Decodes the fields and checks magic, version and kind. Job token, communicator and
    /// ranks are checked by the caller, which knows what to expect.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(HandshakeError) -> Handshake {
        guard bytes.count >= size, let p = bytes.baseAddress else { throw .truncated(bytes.count) }
        let magic = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard magic == Handshake.magic else { throw .badMagic(magic) }
        let version = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        guard version == protocolVersion else { throw .versionMismatch(version) }
        let rawKind = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        guard let kind = Kind(rawValue: rawKind) else { throw .badKind(rawKind) }
        var h = Handshake(kind: kind,
                          jobToken: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                          commID: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                          fromRank: 0, toRank: 0, ranks: 0)
        h.fromRank = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
        h.toRank = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        h.ranks = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 32, as: UInt32.self))
        h.socket = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 36, as: UInt16.self))
        h.link = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 38, as: UInt16.self))
        h.value = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        return h
    }

    /// Checks a hello against what this rank expects; returns the mismatch, or nil.
    public func mismatch(jobToken: UInt64, commID: UInt64, myRank: Int, ranks: Int, sockets: (Int) -> Int, links: (Int) -> Int) -> HandshakeRefusal? {
        if self.jobToken != jobToken { return HandshakeRefusal(.jobToken, "job token differs (HFR_JOB_TOKEN of another job?)") }
        if self.commID != commID { return HandshakeRefusal(.communicator, "communicator id 0x\(String(self.commID, radix: 16)) is not this communicator's") }
        if Int(self.ranks) != ranks { return HandshakeRefusal(.ranks, "peer says the job has \(self.ranks) ranks, this rank has \(ranks)") }
        if Int(toRank) != myRank { return HandshakeRefusal(.toRank, "peer called rank \(toRank), this is rank \(myRank)") }
        if Int(fromRank) >= ranks || Int(fromRank) == myRank { return HandshakeRefusal(.fromRank, "peer claims to be rank \(fromRank)") }
        if Int(fromRank) < myRank {
            return HandshakeRefusal(.fromRank, "peer claims to be rank \(fromRank), which this rank dials itself (the higher rank dials)")
        }
        let k = sockets(Int(fromRank))
        if Int(socket) >= k { return HandshakeRefusal(.socket, "socket number \(socket) is outside 0..<\(k) (HFR_NSOCKS differs?)") }
        let n = links(Int(fromRank))
        if Int(link) >= n { return HandshakeRefusal(.link, "link number \(link) is outside 0..<\(n) (the ranks disagree about their NICs)") }
        return nil
    }
}

/// Why a rank refused a data connection: the sentence for its own log, and a code that goes back
/// to the dialing rank in the `reject` handshake's `value`, so that both sides say what was wrong.
public struct HandshakeRefusal: Error, Sendable, CustomStringConvertible {
    public enum Reason: UInt64, Sendable {
        case jobToken = 1, communicator, ranks, toRank, fromRank, socket, link, alreadyConnected

        /// What the dialing rank reports for a reject with this code.
        public var summary: String {
            switch self {
            case .jobToken: return "the job token differs (another job's HFR_JOB_TOKEN?)"
            case .communicator: return "the communicator id differs"
            case .ranks: return "the ranks disagree about the number of ranks"
            case .toRank: return "the address belongs to another rank"
            case .fromRank: return "it does not accept connections from this rank"
            case .socket: return "the socket number is out of range (HFR_NSOCKS differs?)"
            case .link: return "the link number is out of range (the ranks disagree about their NICs)"
            case .alreadyConnected: return "that socket is already connected"
            }
        }

        /// The summary for a reject's `value`, whatever it holds.
        public static func describe(_ code: UInt64) -> String {
            Reason(rawValue: code)?.summary ?? "reason code \(code)"
        }
    }

    public let reason: Reason
    public let description: String
    public init(_ reason: Reason, _ description: String) { self.reason = reason; self.description = description }
}

public enum HandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(Int)
    case badMagic(UInt32)
    case versionMismatch(UInt16)
    case badKind(UInt16)

    public var description: String {
        switch self {
        case let .truncated(n): return "handshake truncated (\(n) of \(Handshake.size) bytes)"
        case let .badMagic(m): return "not an HFReduce connection (magic 0x\(String(m, radix: 16)))"
        case let .versionMismatch(v): return "protocol version \(v), this library speaks \(Handshake.protocolVersion)"
        case let .badKind(k): return "unknown handshake kind \(k)"
        }
    }
}
