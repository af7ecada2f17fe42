import Glibc

/// Reads configuration from the process environment (`getenv(3)`).
public enum Environment {
    public static func string(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    /// An integer variable; a value that does not parse is an error naming the variable.
    public static func int(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s.trimmingCharacters()) else {
            throw ConfigurationError("\(name)=\(s) is not an integer")
        }
        return v
    }

    /// A size with an optional K/M/G suffix (powers of 1024), e.g. `HFR_CHUNK_SIZE=512K`.
    public static func bytes(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = parseBytes(s) else { throw ConfigurationError("\(name)=\(s) is not a byte size (e.g. 65536, 64K, 4M)") }
        return v
    }

    /// Parses `123`, `64K`, `4M`, `1G` (binary multiples).
    public static func parseBytes(_ text: String) -> Int? {
        var s = text.trimmingCharacters()
        var mult = 1
        if let last = s.last, !last.isNumber {
            switch last {
            case "k", "K": mult = 1 << 10
            case "m", "M": mult = 1 << 20
            case "g", "G": mult = 1 << 30
            default: return nil
            }
            s.removeLast()
            if s.hasSuffix("i") || s.hasSuffix("I") { return nil }
        }
        guard let v = Int(s), v >= 0 else { return nil }
        let (r, o) = v.multipliedReportingOverflow(by: mult)
        return o ? nil : r
    }
}

/// A configuration value that cannot be used; the message names the variable and the value.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" { s.removeLast() }
        return String(s)
    }
}
