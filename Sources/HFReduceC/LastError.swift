import Glibc
import CHFRShims
import HFRSystem

/// A C string owned by HFReduce, replaced when a newer error comes. The replaced ones are kept
/// for the next `kept - 1` errors: another thread of the caller may be reading the string it
/// just got while this one fails (the header promises the string until the next failing call,
/// and a thread cannot know when another one fails).
final class ErrorText {
    static let kept = 8
    private var texts = [UnsafeMutablePointer<CChar>?](repeating: nil, count: ErrorText.kept)
    private var newest = 0
    init() {}
    deinit { for t in texts { free(t) } }

    func set(_ message: String) {
        newest = (newest + 1) % ErrorText.kept
        free(texts[newest])
        texts[newest] = strdup(message)
    }

    var pointer: UnsafePointer<CChar> { UnsafePointer(texts[newest]) ?? ErrorText.empty }
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
