import Glibc
import CHFRShims

/// A POSIX error number, as returned through `errno` by a failed system call.
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    @inlinable public static var current: Errno { Errno(rawValue: hfr_errno()) }

    public static let again = Errno(rawValue: EAGAIN)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let inProgress = Errno(rawValue: EINPROGRESS)

    /// `strerror(3)` text, e.g. "Connection refused".
    public var description: String { String(cString: strerror(rawValue)) }
}

/// A failed system call: which call, and the errno it set.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Errno
    public init(_ call: String, _ errno: Errno = .current) { self.call = call; self.errno = errno }
    public var description: String { "\(call): \(errno)" }
}
