import Glibc

/// Log levels of `HFR_DEBUG` (NCCL's names). Default: WARN.
public enum LogLevel: Int, Comparable, Sendable {
    case none = 0, warn = 1, info = 2, trace = 3
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    public init?(name: String) {
        switch name.uppercased() {
        case "NONE", "OFF": self = .none
        case "WARN", "WARNING": self = .warn
        case "INFO": self = .info
        case "TRACE", "DEBUG": self = .trace
        default: return nil
        }
    }
}

/// Diagnostics to stderr, each line prefixed `host:pid:rank HFR LEVEL`, as NCCL does,
/// so that lines from many processes can be told apart. One `write(2)` per line.
public enum Log {
    /// The level from `HFR_DEBUG` (empty: the default, as for every setting); an unknown value
    /// is reported once and treated as INFO here, and refused by a communicator's configuration.
    public static let level: LogLevel = {
        guard let v = getenv("HFR_DEBUG"), v.pointee != 0 else { return .warn }
        let s = String(cString: v)
        if let l = LogLevel(name: s) { return l }
        emit(prefix: "", "WARN", "HFR_DEBUG=\(s) is not one of NONE, WARN, INFO, TRACE; using INFO")
        return .info
    }()

    private static let host: String = {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return String(cString: buf)
    }()

    @inline(__always) public static func enabled(_ l: LogLevel) -> Bool { level >= l }

    public static func warn(rank: Int? = nil, _ message: @autoclosure () -> String) {
        if level >= .warn { emit(prefix: rankText(rank), "WARN", message()) }
    }
    public static func info(rank: Int? = nil, _ message: @autoclosure () -> String) {
        if level >= .info { emit(prefix: rankText(rank), "INFO", message()) }
    }
    public static func trace(rank: Int? = nil, _ message: @autoclosure () -> String) {
        if level >= .trace { emit(prefix: rankText(rank), "TRACE", message()) }
    }

    private static func rankText(_ rank: Int?) -> String { rank.map { ":\($0)" } ?? ":-" }

    private static func emit(prefix: String, _ tag: String, _ message: String) {
        let line = "\(host):\(getpid())\(prefix) HFR \(tag) \(message)\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
