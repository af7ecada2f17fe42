import Glibc

/// An IPv4 address of a network interface (`getifaddrs(3)`).
public struct InterfaceAddress: Sendable, CustomStringConvertible {
    public var name: String
    public var ip: UInt32
    public var isUp: Bool
    public var isLoopback: Bool
    /// Length of the subnet prefix (from the netmask).
    public var prefixLength: Int = 32
    public var description: String { "\(name)=\(SocketAddress(ip: ip, port: 0).host)" }

    public init(name: String, ip: UInt32, isUp: Bool, isLoopback: Bool) {
        self.name = name; self.ip = ip; self.isUp = isUp; self.isLoopback = isLoopback
    }

    /// Every interface's IPv4 addresses.
    public static func all() -> [InterfaceAddress] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out: [InterfaceAddress] = []
        var p = head
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let ip = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let flags = Int32(bitPattern: ifa.pointee.ifa_flags)
            var a = InterfaceAddress(name: String(cString: ifa.pointee.ifa_name), ip: ip,
                                     isUp: flags & Int32(IFF_UP) != 0,
                                     isLoopback: flags & Int32(IFF_LOOPBACK) != 0)
            if let nm = ifa.pointee.ifa_netmask, nm.pointee.sa_family == sa_family_t(AF_INET) {
                let mask = nm.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                a.prefixLength = mask.nonzeroBitCount
            }
            out.append(a)
        }
        return out
    }

    /// The first up, non-loopback IPv4 address that is not docker's or link-local, or 127.0.0.1.
    public static func defaultAddress() -> UInt32 {
        ((try? InterfaceSelection.select(nil, from: all())) ?? []).first?.ip ?? 0x7F00_0001
    }
}
