import Glibc

/// Memory registered with a communicator (`Communicator.register`). Until it is deregistered,
/// every collective whose buffers lie inside it uses one RDMA registration of the whole range per
/// HCA port, made by `register`, instead of registering its buffers for each collective (see
/// README, RDMA). The memory must stay mapped until `Communicator.deregister`. Over TCP
/// registering changes nothing. (NCCL's `ncclCommRegister`.)
public final class RegisteredMemory: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    /// The communicator it was registered with.
    weak var owner: Communicator?
    /// Guarded by the owner's stateLock.
    var deregistered = false

    init(base: UnsafeRawPointer, count: Int, owner: Communicator) {
        self.base = base; self.count = count; self.owner = owner
    }

    var range: Range<UInt> { UInt(bitPattern: base)..<(UInt(bitPattern: base) + UInt(count)) }
}

extension Communicator {
    /// Registers `count` bytes at `base` for the communicator's collectives: the memory is
    /// registered with every HCA port now and stays so until `deregister`, so collectives on
    /// buffers inside it register nothing themselves. Keep the memory mapped until then. Memory
    /// the HCA refuses (not all mapped, not writable) is `invalidArgument`.
    public func register(_ base: UnsafeRawPointer?, count: Int) throws(HFRError) -> RegisteredMemory {
        try checkAlive()
        guard let base else { throw .invalidArgument("register: the buffer is NULL") }
        guard count > 0 else { throw .invalidArgument("register: size is \(count); it must be at least 1 byte") }
        guard !UInt(bitPattern: base).addingReportingOverflow(UInt(count)).overflow else {
            throw .invalidArgument("register: \(count) bytes at \(base) pass the end of the address space")
        }
        let memory = RegisteredMemory(base: base, count: count, owner: self)
        do {
            try engine.register(memory.range)
        } catch {
            // Memory that is not (all) mapped, or not writable, is the caller's mistake.
            var code = HFRResult.systemError
            if case let .call(_, errno, _) = error, [EFAULT, EINVAL, EACCES, EPERM].contains(errno.rawValue) { code = .invalidArgument }
            throw HFRError(code, "register: \(count) bytes at \(base) cannot be registered for RDMA: \(error)")
        }
        return memory
    }

    /// Ends a registration: collectives submitted after this register their buffers themselves
    /// again, and the memory may be freed once the collectives that use it have completed.
    /// Deregistering twice, or with another communicator, is `invalidUsage`. A communicator that
    /// failed still deregisters (the memory is released all the same); a destroyed one has
    /// released every registration already.
    public func deregister(_ memory: RegisteredMemory) throws(HFRError) {
        if isDestroyed { throw .invalidUsage("deregister: the communicator has been destroyed, which released its registrations") }
        guard memory.owner === self else {
            throw .invalidUsage("deregister: \(memory.count) bytes at \(memory.base) were not registered with this communicator")
        }
        let first = stateLock.withLock { () -> Bool in
            defer { memory.deregistered = true }
            return !memory.deregistered
        }
        guard first else { throw .invalidUsage("deregister: \(memory.count) bytes at \(memory.base) were deregistered already") }
        engine.deregister(memory.range)
    }
}
