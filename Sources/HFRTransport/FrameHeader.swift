/// Kinds of frame on a data connection.
public enum FrameKind: UInt8, Sendable {
    /// A fragment of a message: `length` payload bytes follow, to land at `offset` in the
    /// destination the receiver advertised for message `index` of collective `sequence`.
    case data = 1
    /// The receiver's advertisement: it has posted message `index` of collective `sequence`,
    /// `offset` bytes long, so the sender may write it. The data path never buffers anything
    /// it did not ask for.
    case clearToSend = 2
    /// The sender's communicator has failed; `index` is the rank that failed first (or -1),
    /// `offset` the reason code. The receiver fails its pending work and passes the word on.
    case abort = 3
    /// Sent back on a channel of a peer with several links: the receiver has taken the first
    /// `offset` counted frames (data, clear-to-send, abort) that came in on this channel. The
    /// sender forgets them; until then it keeps each one, to re-send it on another link if this
    /// one fails.
    case ack = 4
    /// Channel `index` of this peer connection is down (its NIC failed, its socket broke or it
    /// stalled): the sender closed it after taking `offset` counted frames from it. The receiver
    /// closes its end too, answers with its own count, and re-sends on the surviving channels
    /// exactly the frames the other side has not taken. On an RDMA link, `sequence` (high 32
    /// bits) and `signature` (low 32 bits) carry the writes with immediate the sender of the
    /// notice took from the link's queue pair, which it moved to ERROR first: the other side
    /// re-posts on the surviving links exactly the writes after that count.
    case linkDown = 5
    /// The RDMA form of a clear-to-send: the receiver has posted message `index` of collective
    /// `sequence`, `offset` bytes long, and a 32-byte `WriteTarget` follows the header (`length`
    /// is 32) naming where it lands and the rkey of every link. The sender writes it with RDMA
    /// writes with immediate.
    case clearToWrite = 6
    /// The sender's first message to this peer in collective `sequence` (`index` 0, `offset`
    /// bytes long) is ready and waits for its clear-to-send (it is too large to go eagerly, or
    /// the connection is new). The receiver checks the signature, that it receives such a
    /// message and its length: ranks that called different collectives learn it even when none
    /// of them would otherwise speak first (each rank the root of its own broadcast, say).
    case readyToSend = 7
    /// The sender is destroying its communicator gracefully, its work done, after `sequence`
    /// collectives; its sockets close next. A rank that still waits for it in one of them then
    /// reports that the ranks disagreed (different counts, or numbers of collectives), which is
    /// invalid usage, instead of a failure of the sender.
    case leaving = 8
}

/// Why a frame from the wire was rejected. Everything from the wire is untrusted.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(have: Int, need: Int)
    case badMagic(UInt32)
    case badKind(UInt8)
    case payloadTooLarge(Int, max: Int)
    case unexpectedPayload(kind: FrameKind, length: Int)
    case badWriteTarget(String)

    public var description: String {
        switch self {
        case let .truncated(have, need): return "truncated frame header (\(have) of \(need) bytes)"
        case let .badMagic(m): return "bad frame magic 0x\(String(m, radix: 16)) (expected 0x\(String(FrameHeader.magic, radix: 16)))"
        case let .badKind(k): return "unknown frame kind \(k)"
        case let .payloadTooLarge(n, max): return "frame payload of \(n) bytes exceeds the limit of \(max)"
        case let .unexpectedPayload(kind, n):
            return "\(kind) frame carries \(n) payload bytes (expected \(kind == .clearToWrite ? "\(WriteTarget.size)" : "none"))"
        case let .badWriteTarget(s): return s
        }
    }
}

/// The 32-byte header in front of every frame on a data connection (little-endian).
///
///     0  magic    u32  'HFR1'
///     4  kind     u8
///     5  flags    u8
///     6  reserved u16
///     8  sequence u32  collective number on this communicator
///    12  index    i32  message number within the collective, per peer and direction
///    16  offset   u64  data: byte offset in the message; clearToSend: message length
///    24  length   u32  payload bytes that follow (clearToWrite: its 32-byte WriteTarget)
///    28  signature u32  hash of the collective's arguments (kind, count, type, op, root,
///                       algorithm, chunk): a clear-to-send or data frame whose signature is
///                       not the receiver's means the ranks called different collectives
public struct FrameHeader: Equatable, Sendable {
    public static let size = 32
    public static let magic: UInt32 = 0x3152_4648  // "HFR1" in memory order

    /// `flags` bit of a data frame sent before its clear-to-send: the whole message in one
    /// fragment, which the receiver may have to park until it posts the receive.
    public static let eagerFlag: UInt8 = 1
    /// `flags` bit of a link-down notice that asks the receiver for its own count in return.
    public static let requestFlag: UInt8 = 2

    /// Whether a reliable channel counts, keeps and acknowledges frames of this kind (acks and
    /// link-down notices are not counted).
    @inline(__always)
    public static func isCounted(_ kind: FrameKind) -> Bool { kind != .ack && kind != .linkDown }

    public var kind: FrameKind
    public var flags: UInt8 = 0
    public var sequence: UInt32
    public var index: Int32
    public var offset: UInt64
    public var length: UInt32
    public var signature: UInt32

    public init(kind: FrameKind, sequence: UInt32, index: Int32, offset: UInt64, length: UInt32, signature: UInt32 = 0) {
        self.kind = kind; self.sequence = sequence; self.index = index; self.offset = offset; self.length = length
        self.signature = signature
    }

    /// Writes the 32 bytes at `p`.
    @inline(__always)
    public func encode(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: FrameHeader.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: kind.rawValue, toByteOffset: 4, as: UInt8.self)
        p.storeBytes(of: flags, toByteOffset: 5, as: UInt8.self)
        p.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: index.littleEndian, toByteOffset: 12, as: Int32.self)
        p.storeBytes(of: offset.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: length.littleEndian, toByteOffset: 24, as: UInt32.self)
        p.storeBytes(of: signature.littleEndian, toByteOffset: 28, as: UInt32.self)
    }

    /// Decodes and validates a header; `maxPayload` bounds the payload a data frame may announce.
    @inline(__always)
    public static func decode(_ bytes: UnsafeRawBufferPointer, maxPayload: Int) throws(WireError) -> FrameHeader {
        guard bytes.count >= size, let p = bytes.baseAddress else { throw .truncated(have: bytes.count, need: size) }
        let magic = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard magic == FrameHeader.magic else { throw .badMagic(magic) }
        let rawKind = p.load(fromByteOffset: 4, as: UInt8.self)
        guard let kind = FrameKind(rawValue: rawKind) else { throw .badKind(rawKind) }
        let length = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
        if kind == .data {
            guard Int(length) <= maxPayload else { throw .payloadTooLarge(Int(length), max: maxPayload) }
        } else if kind == .clearToWrite {
            guard Int(length) == WriteTarget.size else { throw .unexpectedPayload(kind: kind, length: Int(length)) }
        } else if length != 0 {
            throw .unexpectedPayload(kind: kind, length: Int(length))
        }
        var h = FrameHeader(kind: kind,
                            sequence: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                            index: Int32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: Int32.self)),
                            offset: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                            length: length,
                            signature: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 28, as: UInt32.self)))
        h.flags = p.load(fromByteOffset: 5, as: UInt8.self)
        return h
    }
}
