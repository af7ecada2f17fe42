import Glibc

/// The variables hfrun adds to each rank's environment.
struct JobEnvironment {
    let worldSize: Int
    let masterAddr: String
    let masterPort: Int
    let token: String

    /// The variables for rank `rank`, as `NAME=VALUE` strings.
    func variables(rank: Int) -> [String] {
        [
            "RANK=\(rank)",
            "LOCAL_RANK=\(rank)",
            "WORLD_SIZE=\(worldSize)",
            "LOCAL_WORLD_SIZE=\(worldSize)",
            "MASTER_ADDR=\(masterAddr)",
            "MASTER_PORT=\(masterPort)",
            "HFR_JOB_TOKEN=\(token)",
        ]
    }

    /// hfrun's own environment with the job variables for `rank` replacing any inherited ones.
    /// An inherited HFR_ROOT goes too: it takes precedence over MASTER_ADDR/MASTER_PORT, and would
    /// send the ranks to another job's rendezvous.
    func fullEnvironment(rank: Int) -> [String] {
        let ours = variables(rank: rank)
        let names = Set(ours.map { String($0.prefix(while: { $0 != "=" })) } + ["HFR_ROOT"])
        var env: [String] = []
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if !names.contains(String(s.prefix(while: { $0 != "=" }))) { env.append(s) }
            p += 1
        }
        return env + ours
    }
}

/// HFR_JOB_TOKEN: inherited from hfrun's environment if set, otherwise 64 random bits as 16 hex digits.
func jobToken() -> String {
    if let v = getenv("HFR_JOB_TOKEN"), v.pointee != 0 { return String(cString: v) }
    var g = SystemRandomNumberGenerator()
    let hex = String(g.next() as UInt64, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// A TCP port free right now on 127.0.0.1, outside the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), where the ranks' own sockets take their ports: a port from
/// inside it could go to one of them (a listener bound to port 0, or a dial to rank 0 that
/// connected to itself) before rank 0 binds it for the rendezvous. Tries random ports below the
/// range (or above it when there is no room below) with the option rank 0 binds with
/// (SO_REUSEADDR); falls back to a port the kernel picks. Nil (errno set) if nothing binds.
func findFreePort() -> Int? {
    let ephemeral = ephemeralPorts()
    let candidates = ephemeral.lowerBound - 10000 >= 1000 ? 10000..<ephemeral.lowerBound
        : ephemeral.upperBound + 1000 < 65535 ? (ephemeral.upperBound + 1)..<65535 : 0..<0
    var g = SystemRandomNumberGenerator()
    if !candidates.isEmpty {
        for _ in 0..<64 {
            if let p = bindLoopback(port: Int.random(in: candidates, using: &g)) { return p }
        }
    }
    return bindLoopback(port: 0)
}

/// The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`; Linux's default
/// when it cannot be read).
func ephemeralPorts() -> ClosedRange<Int> {
    let fallback = 32768...60999
    let fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY)
    guard fd >= 0 else { return fallback }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = read(fd, &buffer, buffer.count)
    let fields = String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self)
        .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
    guard fields.count == 2, fields[0] <= fields[1] else { return fallback }
    return fields[0]...fields[1]
}

/// Binds a TCP socket to 127.0.0.1:`port` with SO_REUSEADDR, as rank 0's rendezvous listener
/// does, then closes it; returns the port bound (the kernel's pick for 0), or nil (errno set).
func bindLoopback(port: Int) -> Int? {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { return nil }
    defer { close(s) }
    var one: Int32 = 1
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 4)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(s, sa, len) == 0 && getsockname(s, sa, &len) == 0
        }
    }
    guard ok else { return nil }
    return Int(UInt16(bigEndian: addr.sin_port))
}
