/// What a peer needs to connect its queue pair to this one, exchanged over the bootstrap
/// connection: the port's LID (InfiniBand) and GID (RoCE, or routed IB), the QP number, the
/// first packet sequence number and the port's MTU.
public struct QueuePairAddress: Equatable, Sendable {
    public var lid: UInt16
    public var gid: GID
    public var queuePairNumber: UInt32
    public var packetSequenceNumber: UInt32
    public var mtu: MTU

    public init(lid: UInt16, gid: GID, queuePairNumber: UInt32, packetSequenceNumber: UInt32, mtu: MTU) {
        self.lid = lid
        self.gid = gid
        self.queuePairNumber = queuePairNumber
        self.packetSequenceNumber = packetSequenceNumber
        self.mtu = mtu
    }

    /// Bytes of the encoding: magic "HQ", version, MTU, LID, 2 zero bytes, QPN, PSN (all big
    /// endian), GID.
    public static let encodedSize = 32
    static let magic: UInt16 = 0x4851
    static let version: UInt8 = 1

    /// Writes the `encodedSize` bytes at `to`.
    public func encode(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Self.magic.bigEndian, toByteOffset: 0, as: UInt16.self)
        p.storeBytes(of: Self.version, toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: UInt8(mtu.rawValue), toByteOffset: 3, as: UInt8.self)
        p.storeBytes(of: lid.bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: queuePairNumber.bigEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: packetSequenceNumber.bigEndian, toByteOffset: 12, as: UInt32.self)
        for i in 0..<16 { p.storeBytes(of: gid.bytes[i], toByteOffset: 16 + i, as: UInt8.self) }
    }

    public var encoded: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.encodedSize)
        b.withUnsafeMutableBytes { encode(to: $0.baseAddress!) }
        return b
    }

    /// Reads an address a peer sent; anything that is not one is an error saying what is wrong.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(VerbsError) {
        guard bytes.count >= Self.encodedSize else {
            throw .invalidArgument("a queue pair address is \(Self.encodedSize) bytes; got \(bytes.count)")
        }
        let magic = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt16.self))
        let version = bytes[2]
        guard magic == Self.magic, version == Self.version else {
            throw .invalidArgument("not a queue pair address (magic 0x\(String(magic, radix: 16)), version \(version))")
        }
        guard let mtu = MTU(rawValue: UInt32(bytes[3])) else { throw .invalidArgument("queue pair address with MTU code \(bytes[3])") }
        let qpn = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let psn = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard qpn < 1 << 24, psn < 1 << 24 else { throw .invalidArgument("queue pair address with QPN \(qpn) or PSN \(psn) above 24 bits") }
        self.init(lid: UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
                  gid: GID(bytes: Array(bytes[16..<32])), queuePairNumber: qpn, packetSequenceNumber: psn, mtu: mtu)
    }
}
