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
    func fullEnvironment(rank: Int) -> [String] {
        let ours = variables(rank: rank)
        let names = Set(ours.map { String($0.prefix(while: { $0 != "=" })) })
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

/// A TCP port that is free right now on 127.0.0.1: binds port 0, reads the port back, closes.
/// Returns nil (with errno set) if no socket can be bound.
func findFreePort() -> Int? {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { return nil }
    defer { close(s) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
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
