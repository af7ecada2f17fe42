/// Where an RDMA message lands: the 32-byte extension a clear-to-write frame carries after its
/// header (little-endian). The receiver registers the destination with every link's HCA port and
/// names it here, with the size of the fragments it takes; the sender writes fragment k of the
/// message, `fragmentBytes` bytes at offset k * fragmentBytes (the last one the rest), with the
/// link's rkey and the immediate `tag << fragmentBits | k`. The receiver chooses the size so that
/// it can check each write: its fragment number within the message, its byte count.
///
///     0  address  u64  the message's first byte in the receiver's memory
///     8  tag      u32  receiver-chosen, below 1 << tagBits
///    12  links    u8   rkeys that follow (1...maxLinks): one per link to the sender
///    13  fragment u24  fragment size in 4 KiB units, at least 1
///    16  rkey     u32 x 4  per link; 0: that link may not carry this message
public struct WriteTarget: Equatable, Sendable {
    public static let size = 32
    /// The most links an RDMA peer connection has (rkeys in the extension).
    public static let maxLinks = 4
    /// Immediate bits naming the fragment; a message has at most `maxFragments` fragments.
    public static let fragmentBits = 10
    public static let maxFragments = 1 << fragmentBits
    /// Immediate bits naming the receiver's tag.
    public static let tagBits = 32 - fragmentBits

    /// Fragment sizes are whole multiples of this.
    public static let fragmentUnit = 4096
    /// The largest fragment size the extension can name.
    public static let maxFragmentBytes = ((1 << 24) - 1) * fragmentUnit

    public var address: UInt64
    public var tag: UInt32
    public var linkCount: Int
    /// The size of every fragment but the message's last (a multiple of `fragmentUnit`).
    public var fragmentBytes: Int
    private var keys: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)

    public init(address: UInt64, tag: UInt32, linkCount: Int, fragmentBytes: Int) {
        precondition(linkCount >= 1 && linkCount <= WriteTarget.maxLinks && tag < 1 << WriteTarget.tagBits)
        precondition(fragmentBytes > 0 && fragmentBytes % WriteTarget.fragmentUnit == 0 && fragmentBytes <= WriteTarget.maxFragmentBytes)
        self.address = address; self.tag = tag; self.linkCount = linkCount; self.fragmentBytes = fragmentBytes
    }

    public static func == (a: WriteTarget, b: WriteTarget) -> Bool {
        a.address == b.address && a.tag == b.tag && a.linkCount == b.linkCount && a.fragmentBytes == b.fragmentBytes
            && (0..<maxLinks).allSatisfy { a.rkey($0) == b.rkey($0) }
    }

    /// The rkey of link `l` (0 when the link may not carry the message).
    @inline(__always) public func rkey(_ l: Int) -> UInt32 {
        switch l {
        case 0: return keys.0
        case 1: return keys.1
        case 2: return keys.2
        case 3: return keys.3
        default: return 0
        }
    }

    public mutating func setRkey(_ l: Int, _ key: UInt32) {
        precondition(l >= 0 && l < linkCount)
        switch l {
        case 0: keys.0 = key
        case 1: keys.1 = key
        case 2: keys.2 = key
        default: keys.3 = key
        }
    }

    /// The immediate of fragment `fragment` of the message tagged `tag`.
    @inline(__always) public static func immediate(tag: UInt32, fragment: Int) -> UInt32 {
        tag << UInt32(fragmentBits) | UInt32(truncatingIfNeeded: fragment)
    }

    /// The tag and the fragment number an immediate carries.
    @inline(__always) public static func split(_ immediate: UInt32) -> (tag: UInt32, fragment: Int) {
        (immediate >> UInt32(fragmentBits), Int(immediate & UInt32(maxFragments - 1)))
    }

    /// Writes the `size` bytes at `p`.
    public func encode(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: address.littleEndian, toByteOffset: 0, as: UInt64.self)
        p.storeBytes(of: tag.littleEndian, toByteOffset: 8, as: UInt32.self)
        let units = UInt32(fragmentBytes / WriteTarget.fragmentUnit)
        p.storeBytes(of: (UInt32(linkCount) | units << 8).littleEndian, toByteOffset: 12, as: UInt32.self)
        for l in 0..<WriteTarget.maxLinks {
            p.storeBytes(of: rkey(l).littleEndian, toByteOffset: 16 + 4 * l, as: UInt32.self)
        }
    }

    /// Decodes and validates an extension from the wire: its length, the tag's range, the link
    /// count, the fragment size, and that no rkey is given for a link beyond the links.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> WriteTarget {
        guard bytes.count >= size, let p = bytes.baseAddress else { throw .badWriteTarget("clear-to-write extension of \(bytes.count) bytes (expected \(size))") }
        let tag = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard tag < 1 << tagBits else { throw .badWriteTarget("clear-to-write tag \(tag) is not below 2^\(tagBits)") }
        let word = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let links = word & 0xFF, units = Int(word >> 8)
        guard links >= 1 && links <= UInt32(maxLinks) else {
            throw .badWriteTarget("clear-to-write names \(links) links (1...\(maxLinks))")
        }
        guard units >= 1 else { throw .badWriteTarget("clear-to-write names fragments of 0 bytes") }
        var t = WriteTarget(address: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self)), tag: tag, linkCount: Int(links),
                            fragmentBytes: units * fragmentUnit)
        for l in 0..<maxLinks {
            let key = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 16 + 4 * l, as: UInt32.self))
            if l >= t.linkCount {
                guard key == 0 else { throw .badWriteTarget("clear-to-write gives an rkey for link \(l) of \(links)") }
            } else {
                t.setRkey(l, key)
            }
        }
        return t
    }
}
