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

/// What a registration handle (`hfrCommRegister`) points to.
final class RegistrationBox {
    let memory: RegisteredMemory
    let owner: CommBox
    init(_ memory: RegisteredMemory, owner: CommBox) { self.memory = memory; self.owner = owner }
}

/// Live handles. A handle is a number drawn from one counter and never handed out twice (not an
/// object's address, which a newer object could reuse), so a destroyed communicator or a released
/// request passed back in is always reported as an invalid argument, never taken for another
/// one, and a request handle is never taken for a communicator or the other way round.
enum Handles {
    private static let lock = ConditionLock()
    // Starts away from 0 and small integers a caller might pass by mistake; steps by 16 so that
    // handles look like aligned pointers to tools that print them.
    nonisolated(unsafe) private static var next: UInt = 0x4846_5200_0000
    nonisolated(unsafe) private static var comms: [UInt: CommBox] = [:]
    nonisolated(unsafe) private static var requests: [UInt: RequestBox] = [:]
    nonisolated(unsafe) private static var registrations: [UInt: RegistrationBox] = [:]

    private static func newKey() -> UInt {
        next &+= 16
        return next
    }

    static func register(_ box: CommBox) -> OpaquePointer {
        let key = lock.withLock { () -> UInt in
            let k = newKey()
            comms[k] = box
            return k
        }
        return OpaquePointer(bitPattern: key)!
    }

    static func comm(_ handle: OpaquePointer?) -> CommBox? {
        guard let handle else { return nil }
        return lock.withLock { comms[UInt(bitPattern: UnsafeRawPointer(handle))] }
    }

    /// Forgets the handle.
    static func release(comm handle: OpaquePointer) {
        _ = lock.withLock { comms.removeValue(forKey: UInt(bitPattern: UnsafeRawPointer(handle))) }
    }

    static func register(_ box: RequestBox) -> OpaquePointer {
        let key = lock.withLock { () -> UInt in
            let k = newKey()
            requests[k] = box
            return k
        }
        return OpaquePointer(bitPattern: key)!
    }

    static func request(_ handle: OpaquePointer?) -> RequestBox? {
        guard let handle else { return nil }
        return lock.withLock { requests[UInt(bitPattern: UnsafeRawPointer(handle))] }
    }

    static func release(request handle: OpaquePointer) {
        _ = lock.withLock { requests.removeValue(forKey: UInt(bitPattern: UnsafeRawPointer(handle))) }
    }

    static func register(_ box: RegistrationBox) -> UnsafeMutableRawPointer {
        let key = lock.withLock { () -> UInt in
            let k = newKey()
            registrations[k] = box
            return k
        }
        return UnsafeMutableRawPointer(bitPattern: key)!
    }

    static func registration(_ handle: UnsafeMutableRawPointer?) -> RegistrationBox? {
        guard let handle else { return nil }
        return lock.withLock { registrations[UInt(bitPattern: handle)] }
    }

    static func release(registration handle: UnsafeMutableRawPointer) {
        _ = lock.withLock { registrations.removeValue(forKey: UInt(bitPattern: handle)) }
    }

    /// Forgets the registrations of a communicator being destroyed or aborted: its engine and
    /// the registrations with it are gone, and their handles with it.
    static func releaseRegistrations(of owner: CommBox) {
        lock.withLock { registrations = registrations.filter { $0.value.owner !== owner } }
    }
}
