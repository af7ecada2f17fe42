import Glibc
import CHFRShims
import HFRSystem

/// A C string owned by HFReduce, replaced (and the old one freed) when a newer error comes.
final class ErrorText {
    private var text: UnsafeMutablePointer<CChar>?
    init() {}
    deinit { free(text) }

    func set(_ message: String) {
        free(text)
        text = strdup(message)
    }

    var pointer: UnsafePointer<CChar> { UnsafePointer(text) ?? ErrorText.empty }
    static let empty: UnsafePointer<CChar> = UnsafePointer(strdup("")!)
}

/// The calling thread's last error, for `hfrGetLastError(NULL)`. Kept per thread id; the text of
/// a thread that has exited is replaced when its id is reused.
enum ThreadErrors {
    private static let lock = ConditionLock()
    nonisolated(unsafe) private static var texts: [Int32: ErrorText] = [:]

    static func set(_ message: String) {
        let tid = hfr_gettid()
        lock.withLock {
            let t = texts[tid] ?? ErrorText()
            t.set(message)
            texts[tid] = t
        }
        Log.trace("C API error: \(message)")
    }

    static func current() -> UnsafePointer<CChar> {
        lock.withLock { texts[hfr_gettid()]?.pointer ?? ErrorText.empty }
    }
}
