import Glibc

/// An IPv4 address and port. HFReduce publishes one of these per NIC at rendezvous.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in host byte order.
    public var ip: UInt32
    public var port: UInt16

    public init(ip: UInt32, port: UInt16) { self.ip = ip; self.port = port }

    /// Parses a dotted IPv4 address, or resolves a host name with `getaddrinfo(3)` (IPv4 only).
    public init(host: String, port: UInt16) throws {
        var addr = in_addr()
        if inet_pton(AF_INET, host, &addr) == 1 {
            self.init(ip: UInt32(bigEndian: addr.s_addr), port: port)
            return
        }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result, let sa = first.pointee.ai_addr else {
            throw ConfigurationError("cannot resolve host '\(host)': \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        let ip = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
        self.init(ip: ip, port: port)
    }

    /// Parses `host:port`.
    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ConfigurationError("'\(text)' is not host:port")
        }
        try self.init(host: String(text[..<colon]), port: port)
    }

    public var sockaddr: sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = ip.bigEndian
        return sa
    }

    public init(_ sa: sockaddr_in) {
        self.init(ip: UInt32(bigEndian: sa.sin_addr.s_addr), port: UInt16(bigEndian: sa.sin_port))
    }

    public var host: String { "\(ip >> 24).\((ip >> 16) & 255).\((ip >> 8) & 255).\(ip & 255)" }
    public var description: String { "\(host):\(port)" }
    public var isLoopback: Bool { ip >> 24 == 127 }
    public var isAny: Bool { ip == 0 }
}
