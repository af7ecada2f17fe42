import Glibc
import CHFRShims

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A joinable POSIX thread (`pthread_create(3)`), named with `pthread_setname_np` for debuggers and `top -H`.
public final class PosixThread {
    private var handle: pthread_t = 0
    private var joined = false

    public init(name: String, _ body: @escaping () -> Void) throws {
        let threadName = String(name.prefix(15))
        let box = Unmanaged.passRetained(ThreadBody { hfr_set_thread_name(threadName); body() }).toOpaque()
        let rc = pthread_create(&handle, nil, { arg in
            let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            body.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw SystemCallError("pthread_create", Errno(rawValue: rc))
        }
    }

    /// `pthread_join(3)`; a second call does nothing.
    public func join() {
        if joined { return }
        joined = true
        pthread_join(handle, nil)
    }

    /// True when called from this thread.
    public var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }
}

/// A mutex and condition variable pair (`pthread_mutex_t`, `pthread_cond_t` on CLOCK_MONOTONIC),
/// for the few places that block a caller until another thread finishes something.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }
    deinit {
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        cond.deallocate(); mutex.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }
    /// `pthread_mutex_trylock(3)`: true when the lock was taken.
    @inline(__always) public func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }
    @inline(__always) public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }
    /// Wakes every waiter; call with the lock held or not.
    @inline(__always) public func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits (lock held) until woken or until the monotonic deadline passes. Returns false on timeout.
    @discardableResult
    public func wait(untilNanoseconds deadline: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT
    }
}
