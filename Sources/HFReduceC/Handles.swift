import HFRSystem
import HFReduce

/// What an `hfrComm_t` points to.
final class CommBox {
    let comm: Communicator
    let lastError = ErrorText()
    let errorLock = ConditionLock()
    init(_ comm: Communicator) { self.comm = comm }
}

/// What an `hfrRequest_t` points to.
final class RequestBox {
    let request: CollectiveRequest
    /// Strong: a request may be waited on after its communicator was aborted or destroyed.
    let owner: CommBox
    init(_ request: CollectiveRequest, owner: CommBox) { self.request = request; self.owner = owner }
}

/// Live handles, so that a destroyed communicator or a released request passed back in is
/// reported as an invalid argument instead of being dereferenced (detectable as long as the
/// address has not been reused by a newer handle).
enum Handles {
    private static let lock = ConditionLock()
    nonisolated(unsafe) private static var comms: [UnsafeMutableRawPointer: CommBox] = [:]
    nonisolated(unsafe) private static var requests: [UnsafeMutableRawPointer: RequestBox] = [:]

    static func register(_ box: CommBox) -> OpaquePointer {
        let p = Unmanaged.passRetained(box).toOpaque()
        lock.withLock { comms[p] = box }
        return OpaquePointer(p)
    }

    static func comm(_ handle: OpaquePointer?) -> CommBox? {
        guard let handle else { return nil }
        return lock.withLock { comms[UnsafeMutableRawPointer(handle)] }
    }

    /// Forgets the handle and drops the reference the registration held.
    static func release(comm handle: OpaquePointer) {
        let p = UnsafeMutableRawPointer(handle)
        if lock.withLock({ comms.removeValue(forKey: p) }) != nil {
            Unmanaged<CommBox>.fromOpaque(p).release()
        }
    }

    static func register(_ box: RequestBox) -> OpaquePointer {
        let p = Unmanaged.passRetained(box).toOpaque()
        lock.withLock { requests[p] = box }
        return OpaquePointer(p)
    }

    static func request(_ handle: OpaquePointer?) -> RequestBox? {
        guard let handle else { return nil }
        return lock.withLock { requests[UnsafeMutableRawPointer(handle)] }
    }

    static func release(request handle: OpaquePointer) {
        let p = UnsafeMutableRawPointer(handle)
        if lock.withLock({ requests.removeValue(forKey: p) }) != nil {
            Unmanaged<RequestBox>.fromOpaque(p).release()
        }
    }
}
