import HFRCollectives
import HFRVerbs

/// Memory the caller registered (`Engine.register(_:)`), with its registration on each HCA port
/// (indexed like `rdmaPorts`).
struct RegisteredRange {
    let range: Range<UInt>
    let regions: [MemoryRegion]
}

/// Where the RDMA keys for a collective's buffers come from. An HCA pins the pages of a region
/// it registered and writes into those pages even after the program frees the buffer and maps
/// new memory at the same address, so a caller's buffer is registered for one collective only,
/// unless the caller registered it for longer (`register(_:)`, `Communicator.register`) or
/// asked for every registration to be cached (`HFR_IB_REG_CACHE=1`). Small messages skip
/// registering: they are copied through the ports' bounce buffers.
extension Engine {
    /// Registers `range` with every HCA port now (`ibv_reg_mr`) and keeps the registrations
    /// until `deregister(_:)`: collectives whose buffers lie inside it use them instead of
    /// registering their buffers themselves. The caller keeps the memory mapped until then. Takes
    /// the engine between turns of its loop, so that every collective submitted after this
    /// returns sees the range. Over TCP there is nothing to register. Throws the first port's
    /// refusal (the call, the port and the errno).
    public func register(_ range: Range<UInt>) throws(VerbsError) {
        driver.lock()
        defer { driver.unlock() }
        var regions: [MemoryRegion] = []
        for port in rdmaPorts {
            do {
                regions.append(try port.pd.register(UnsafeMutableRawPointer(bitPattern: range.lowerBound)!, length: range.count,
                                                    access: port.cache.access))
            } catch {
                if case let .call(call, errno, detail) = error { throw .call("\(call) on \(port.name)", errno, detail: detail) }
                throw error
            }
        }
        registeredRanges.append(RegisteredRange(range: range, regions: regions))
    }

    /// Ends the registration of `range` made by `register(_:)` (one of them, when it was
    /// registered more than once): collectives submitted after this returns register their
    /// buffers themselves again; those in flight keep the registrations they hold.
    public func deregister(_ range: Range<UInt>) {
        driver.lock()
        defer { driver.unlock() }
        if let k = registeredRanges.firstIndex(where: { $0.range == range }) { registeredRanges.remove(at: k) }
    }

    /// Messages up to this size in a caller's buffer go through the ports' bounce buffers.
    static let bounceMessageBytes = 16 << 10

    /// Whether a message of `length` bytes at `address` in `buffer` is copied through a bounce
    /// buffer (already registered) instead of registering the caller's buffer for the collective:
    /// for small messages the copy costs less than a registration and its release. Not for the
    /// engine's scratch, memory the caller registered, nor with `HFR_IB_REG_CACHE=1`: those are
    /// registered already, or cached.
    @inline(__always) func bounces(_ buffer: BufferName, _ address: UnsafeRawPointer, _ length: Int) -> Bool {
        length <= Engine.bounceMessageBytes && buffer != .scratch && !config.cacheRegistrations
            && (registeredRanges.isEmpty || registeredRange(containing: address, length) == nil)
    }

    /// The memory the caller registered that holds `[address, address + count)`, if any.
    @inline(__always) func registeredRange(containing address: UnsafeRawPointer, _ count: Int) -> RegisteredRange? {
        let low = UInt(bitPattern: address), high = low + UInt(count)
        return registeredRanges.first { $0.range.lowerBound <= low && high <= $0.range.upperBound }
    }

    /// The registration that gives `port`'s keys for `count` bytes at `address`, in buffer
    /// `buffer` of `c`. The engine's scratch (mapped for the engine's life) comes from the port's
    /// cache, and so does everything with `HFR_IB_REG_CACHE=1`; memory the caller registered has
    /// its own (`register(_:)`). A caller's buffer is otherwise registered once per collective,
    /// over the range its messages use, and released when the collective finishes: an HCA
    /// writes into the pages it registered, so a registration kept past the collective would
    /// send a later one's data into pages the caller has since freed.
    func registration(_ c: ActiveCollective, _ port: RDMAPort, _ buffer: BufferName, _ address: UnsafeRawPointer, count: Int) -> MemoryRegion? {
        if buffer == .scratch || config.cacheRegistrations { return port.cache.region(covering: address, count: count) }
        for r in c.registrations where r.port == port.index && r.region.contains(address, count: count) { return r.region }
        let extent = c.schedule.messageExtents[Int(buffer.rawValue)]
        let low = min(UnsafeRawPointer(c.pointer(BufferRef(buffer, extent.lowerBound))), address)
        let high = max(UnsafeRawPointer(c.pointer(BufferRef(buffer, extent.upperBound))), address + count)
        let region: MemoryRegion?
        if let registered = registeredRange(containing: low, high - low) {
            region = registered.regions[port.index]
        } else {
            region = port.cache.registerUncached(low, count: high - low)
        }
        guard let region else { return nil }
        c.registrations.append((port.index, region))
        return region
    }
}
