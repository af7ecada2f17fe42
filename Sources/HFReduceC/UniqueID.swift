import HFRSystem

/// The 128 bytes of an `hfrUniqueId`: magic "HFRU", version, rank 0's rendezvous address, a
/// random job token and a checksum, so that an id not made by `hfrGetUniqueId` is recognised.
///
///     0 magic u32 | 4 version u16 | 6 reserved u16 | 8 ip u32 | 12 port u16 | 14 reserved u16
///    16 token u64 | 24 checksum u64 (FNV-1a of bytes 0..<24) | 32..<128 zero
struct UniqueID: Equatable {
    static let magic: UInt32 = 0x5552_4648  // "HFRU"
    static let version: UInt16 = 1

    var root: SocketAddress
    var token: UInt64

    func encode(to p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        p.storeBytes(of: UniqueID.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: UniqueID.version.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: root.ip.littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: root.port.littleEndian, toByteOffset: 12, as: UInt16.self)
        p.storeBytes(of: token.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: UniqueID.checksum(UnsafeRawPointer(p)).littleEndian, toByteOffset: 24, as: UInt64.self)
    }

    static func checksum(_ p: UnsafeRawPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<24 { h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3 }
        return h
    }

    /// Decodes an id, or says why it is not one.
    static func decode(_ p: UnsafeRawPointer) -> Result<UniqueID, IDError> {
        let magic = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard magic == UniqueID.magic else { return .failure(IDError("id was not made by hfrGetUniqueId (magic 0x\(String(magic, radix: 16)))")) }
        let version = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        guard version == UniqueID.version else { return .failure(IDError("id has version \(version), this library makes version \(UniqueID.version)")) }
        let sum = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        guard sum == checksum(p) else { return .failure(IDError("id is corrupted (checksum mismatch)")) }
        let ip = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let port = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        guard port != 0 else { return .failure(IDError("id carries port 0")) }
        return .success(UniqueID(root: SocketAddress(ip: ip, port: port),
                                 token: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self))))
    }
}

/// Why 128 bytes are not a usable unique id.
struct IDError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
