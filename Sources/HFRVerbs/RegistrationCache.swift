import Glibc

/// Memory registrations kept per address range, so that a buffer used again is not registered
/// again: a lookup covered by a cached region costs a binary search (no call, no allocation).
/// Cached regions are kept disjoint: a registration that overlaps cached ones is made over their
/// union, which replaces them. At most `capacity` regions are kept; the least recently used one
/// goes first. When the device refuses a registration, `region(covering:count:)` returns nil
/// and the caller stages through `bounce`. Used from one thread (the one posting work requests).
public final class RegistrationCache: @unchecked Sendable {
    public struct Statistics: Equatable, Sendable {
        public var hits = 0, registrations = 0, refusals = 0, evictions = 0, invalidations = 0
        /// Registrations made by `registerUncached`, which the cache does not keep.
        public var uncachedRegistrations = 0
    }

    public let protectionDomain: ProtectionDomain
    public let access: MemoryAccess
    public let capacity: Int
    /// Registered staging buffers for refused registrations (nil when made with no bounce buffers).
    public let bounce: BouncePool?
    public private(set) var statistics = Statistics()
    /// Why the last refused registration was refused.
    public private(set) var lastRefusal: VerbsError?
    private var regions: [MemoryRegion] = []  // disjoint, by address
    private var lastUse: [UInt64] = []
    private var clock: UInt64 = 0
    private let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))

    public init(protectionDomain: ProtectionDomain, access: MemoryAccess = .rdmaTarget, capacity: Int = 1024,
                bounceBufferSize: Int = 1 << 20, bounceBufferCount: Int = 16) throws(VerbsError) {
        guard capacity >= 1 else { throw .invalidArgument("a registration cache of capacity \(capacity)") }
        self.protectionDomain = protectionDomain
        self.access = access
        self.capacity = capacity
        bounce = bounceBufferCount > 0
            ? try BouncePool(protectionDomain: protectionDomain, bufferSize: bounceBufferSize, count: bounceBufferCount, access: access)
            : nil
        regions.reserveCapacity(capacity + 1)
        lastUse.reserveCapacity(capacity + 1)
    }

    /// Regions cached.
    public var count: Int { regions.count }
    /// Bytes the cached regions cover.
    public var cachedBytes: Int { regions.reduce(0) { $0 + $1.length } }

    /// The pages `[address, address + count)` touches, as `[low, high)`.
    @inline(__always) private func pages(_ address: UInt, _ count: Int) -> (low: UInt, high: UInt) {
        (address & ~(pageSize - 1), (address + UInt(max(count, 1)) + pageSize - 1) & ~(pageSize - 1))
    }

    /// Index of the last region starting at or before `address`, or -1.
    @inline(__always) private func floorIndex(_ address: UInt) -> Int {
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if UInt(bitPattern: regions[mid].address) <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo - 1
    }

    /// A registered region covering `[address, address + count)`: a cached one, or one
    /// registered now (`ibv_reg_mr` of the page-aligned range, merged with overlapping cached
    /// regions). Nil when the device refuses; `lastRefusal` says why.
    public func region(covering address: UnsafeRawPointer, count: Int) -> MemoryRegion? {
        let start = UInt(bitPattern: address), length = max(count, 1)
        clock &+= 1
        let i = floorIndex(start)
        if i >= 0, regions[i].contains(address, count: length) {
            lastUse[i] = clock
            statistics.hits += 1
            return regions[i]
        }
        let own = pages(start, length)
        var (low, high) = own
        // Cached regions overlapping [low, high) are merged into the new one.
        var first = max(i, 0)
        if first < regions.count, UInt(bitPattern: regions[first].address) + UInt(regions[first].length) <= low { first += 1 }
        var last = first
        while last < regions.count, UInt(bitPattern: regions[last].address) < high {
            low = min(low, UInt(bitPattern: regions[last].address))
            high = max(high, UInt(bitPattern: regions[last].address) + UInt(regions[last].length))
            last += 1
        }
        let region: MemoryRegion
        do {
            region = try protectionDomain.register(UnsafeMutableRawPointer(bitPattern: low)!, length: Int(high - low), access: access)
        } catch {
            // The union may reach into memory a cached region covered and that has since been
            // unmapped (freed): those regions are stale. They go, and the range asked for is
            // registered alone.
            guard last > first, let alone = try? protectionDomain.register(UnsafeMutableRawPointer(bitPattern: own.low)!,
                                                                           length: Int(own.high - own.low), access: access) else {
                statistics.refusals += 1
                lastRefusal = error
                return nil
            }
            statistics.invalidations += last - first
            region = alone
        }
        statistics.registrations += 1
        regions.replaceSubrange(first..<last, with: [region])
        lastUse.replaceSubrange(first..<last, with: [clock])
        if regions.count > capacity { evictLeastRecentlyUsed(except: first) }
        return region
    }

    /// Registers the pages of `[address, address + count)` (`ibv_reg_mr`) without caching them:
    /// for memory that stays mapped only as long as the caller knows (a user's buffer, for one
    /// collective). The caller holds the region for that long; it is deregistered when the last
    /// reference goes. Nil when the device refuses; `lastRefusal` says why.
    public func registerUncached(_ address: UnsafeRawPointer, count: Int) -> MemoryRegion? {
        let (low, high) = pages(UInt(bitPattern: address), count)
        do {
            let region = try protectionDomain.register(UnsafeMutableRawPointer(bitPattern: low)!, length: Int(high - low), access: access)
            statistics.uncachedRegistrations += 1
            return region
        } catch {
            statistics.refusals += 1
            lastRefusal = error
            return nil
        }
    }

    private func evictLeastRecentlyUsed(except keep: Int) {
        var victim = keep == 0 ? 1 : 0
        for j in regions.indices where j != keep && lastUse[j] < lastUse[victim] { victim = j }
        regions.remove(at: victim)
        lastUse.remove(at: victim)
        statistics.evictions += 1
    }

    /// Forgets the cached regions overlapping `[address, address + count)`: call it when that
    /// memory is freed or remapped. A region a work request in flight still holds is
    /// deregistered when that reference goes.
    public func invalidate(_ address: UnsafeRawPointer, count: Int) {
        let low = UInt(bitPattern: address), high = low + UInt(max(count, 1))
        var j = max(floorIndex(low), 0)
        while j < regions.count, UInt(bitPattern: regions[j].address) < high {
            if UInt(bitPattern: regions[j].address) + UInt(regions[j].length) > low {
                regions.remove(at: j)
                lastUse.remove(at: j)
                statistics.invalidations += 1
            } else {
                j += 1
            }
        }
    }

    /// Forgets every cached region.
    public func invalidateAll() {
        statistics.invalidations += regions.count
        regions.removeAll(keepingCapacity: true)
        lastUse.removeAll(keepingCapacity: true)
    }
}
