import HFRCollectives
import HFRVerbs

/// Where the RDMA keys for a collective's buffers come from. An HCA pins the pages of a region
/// it registered and writes into those pages even after the program frees the buffer and maps
/// new memory at the same address, so a caller's buffer is registered for one collective only,
/// unless the caller registered it for longer (`declare`, `Communicator.register`) or asked for
/// every registration to be cached (`HFR_IB_REG_CACHE=1`). Small messages skip registering:
/// they are copied through the ports' bounce buffers.
extension Engine {
    /// Declares `range` registered by the caller (`registered`), or no longer (`!registered`):
    /// until it is deregistered the caller keeps that memory mapped, so the ports' caches may
    /// keep its registration (made at its first use) for later collectives. Over TCP there is
    /// nothing to register.
    public func declare(_ range: Range<UInt>, registered: Bool) {
        submitLock.withLock { registeredChanges.append((registered, range)) }
        announcements.add(1, ordering: .acquiringAndReleasing)
    }

    /// Applies the registrations and deregistrations the caller declared: a deregistered range's
    /// cached regions go, so that no later collective uses them (the memory may be freed now).
    func applyRegisteredChanges() {
        for change in changesIntake {
            if change.registered {
                registeredRanges.append(change.range)
            } else {
                if let k = registeredRanges.firstIndex(of: change.range) { registeredRanges.remove(at: k) }
                for port in rdmaPorts {
                    port.cache.invalidate(UnsafeRawPointer(bitPattern: change.range.lowerBound)!, count: change.range.count)
                }
            }
        }
        changesIntake.removeAll(keepingCapacity: true)
    }

    /// Messages up to this size in a caller's buffer go through the ports' bounce buffers.
    static let bounceMessageBytes = 16 << 10

    /// Whether a message of `length` bytes at `address` in `buffer` is copied through a bounce
    /// buffer (already registered) instead of registering the caller's buffer for the collective:
    /// for small messages the copy costs less than a registration and its release. Not for the
    /// engine's scratch, memory the caller registered, nor with `HFR_IB_REG_CACHE=1`: those
    /// registrations are cached.
    @inline(__always) func bounces(_ buffer: BufferName, _ address: UnsafeRawPointer, _ length: Int) -> Bool {
        length <= Engine.bounceMessageBytes && buffer != .scratch && !config.cacheRegistrations
            && (registeredRanges.isEmpty || registeredRange(containing: address, length) == nil)
    }

    /// The range the caller registered that holds `[address, address + count)`, if any.
    @inline(__always) func registeredRange(containing address: UnsafeRawPointer, _ count: Int) -> Range<UInt>? {
        let low = UInt(bitPattern: address), high = low + UInt(count)
        return registeredRanges.first { $0.lowerBound <= low && high <= $0.upperBound }
    }

    /// The registration that gives `port`'s keys for `count` bytes at `address`, in buffer
    /// `buffer` of `c`. The engine's scratch (mapped for the engine's life) comes from the port's
    /// cache, and so does everything with `HFR_IB_REG_CACHE=1`, and memory the caller registered
    /// (`declare`). A caller's buffer is otherwise registered once per collective, over the
    /// range its messages use, and released when the collective finishes: an HCA writes into the
    /// pages it registered, so a registration kept past the collective would send a later one's
    /// data into pages the caller has since freed.
    func registration(_ c: ActiveCollective, _ port: RDMAPort, _ buffer: BufferName, _ address: UnsafeRawPointer, count: Int) -> MemoryRegion? {
        if buffer == .scratch || config.cacheRegistrations { return port.cache.region(covering: address, count: count) }
        for r in c.registrations where r.port == port.index && r.region.contains(address, count: count) { return r.region }
        let extent = c.schedule.messageExtents[Int(buffer.rawValue)]
        let low = min(UnsafeRawPointer(c.pointer(BufferRef(buffer, extent.lowerBound))), address)
        let high = max(UnsafeRawPointer(c.pointer(BufferRef(buffer, extent.upperBound))), address + count)
        let region: MemoryRegion?
        if let range = registeredRange(containing: low, high - low) {
            // Inside memory the caller registered: registered whole, once, and cached until
            // the caller deregisters it.
            region = port.cache.region(covering: UnsafeRawPointer(bitPattern: range.lowerBound)!, count: range.count)
        } else {
            region = port.cache.registerUncached(low, count: high - low)
        }
        guard let region else { return nil }
        c.registrations.append((port.index, region))
        return region
    }
}
