import Glibc
import HFRVerbs
import XCTest

final class RegistrationTests: XCTestCase {
    func testRegistrationChecks() throws {
        let a = try Endpoint("soft_0")
        XCTAssertThrowsError(try a.pd.register(a.memory, length: 64, access: .remoteWrite)) { error in
            XCTAssertEqual(errnoOf(error), EINVAL)
            XCTAssertTrue("\(error)".contains("remote write access needs local write access too"), "\(error)")
        }
        XCTAssertThrowsError(try a.pd.register(a.memory, length: 0, access: .localWrite))
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let hole = try Hole(pages: 3)
        XCTAssertThrowsError(try a.pd.register(hole.base, length: 3 * page, access: .rdmaTarget)) { error in
            XCTAssertEqual(errnoOf(error), EFAULT)
            XCTAssertTrue("\(error)".contains("is not all mapped in this process"), "\(error)")
        }
        let first = try a.pd.register(hole.base, length: page, access: .rdmaTarget)
        XCTAssertNotEqual(first.lkey, a.mr.lkey)
        XCTAssertTrue(first.contains(hole.base + 100, count: 100))
        XCTAssertFalse(first.contains(hole.base + page - 10, count: 11))
    }

    func testRegistrationCacheReusesMergesInvalidatesAndFallsBackToBounce() throws {
        let a = try Endpoint("soft_0", size: 1 << 20)
        let cache = try RegistrationCache(protectionDomain: a.pd, capacity: 2, bounceBufferSize: 4096, bounceBufferCount: 2)
        let r1 = try XCTUnwrap(cache.region(covering: a.memory + 100, count: 1000))
        XCTAssertEqual(UInt(bitPattern: r1.address) % 4096, 0, "registered page-aligned")
        XCTAssertTrue(r1.contains(a.memory + 100, count: 1000))
        XCTAssertTrue(cache.region(covering: a.memory + 2000, count: 100) === r1, "covered: the cached region")
        XCTAssertEqual(cache.statistics.hits, 1)
        XCTAssertEqual(cache.statistics.registrations, 1)
        // Overlapping the cached region and beyond: one region over the union replaces it.
        let r2 = try XCTUnwrap(cache.region(covering: a.memory + 3000, count: 10000))
        XCTAssertEqual(cache.count, 1)
        XCTAssertTrue(r2.contains(a.memory + 100, count: 12900))
        // Disjoint ones; the least recently used goes when the capacity is passed.
        _ = try XCTUnwrap(cache.region(covering: a.memory + 100_000, count: 10))
        _ = cache.region(covering: a.memory + 5, count: 5)
        _ = try XCTUnwrap(cache.region(covering: a.memory + 500_000, count: 10))
        XCTAssertEqual(cache.count, 2)
        XCTAssertEqual(cache.statistics.evictions, 1)
        XCTAssertTrue(cache.region(covering: a.memory + 5, count: 5) === r2, "the recently used one stayed")
        cache.invalidate(a.memory + 4096, count: 1)
        XCTAssertEqual(cache.count, 1)
        XCTAssertFalse(cache.region(covering: a.memory + 5, count: 5) === r2)
        cache.invalidateAll()
        XCTAssertEqual(cache.count, 0)
        // A region still referenced (a work request in flight) stays registered after invalidation.
        XCTAssertTrue(r2.contains(a.memory + 100, count: 10))

        // Refused: memory with a hole. The bounce pool stands in.
        let hole = try Hole(pages: 3)
        XCTAssertNil(cache.region(covering: hole.base, count: 3 * 4096))
        XCTAssertEqual(cache.statistics.refusals, 1)
        XCTAssertEqual(errnoOf(try XCTUnwrap(cache.lastRefusal)), EFAULT)
        let pool = try XCTUnwrap(cache.bounce)
        let b1 = try XCTUnwrap(pool.take()), b2 = try XCTUnwrap(pool.take())
        XCTAssertNil(pool.take())
        XCTAssertNotEqual(b1.address, b2.address)
        XCTAssertEqual(b1.lkey, pool.region.lkey)
        XCTAssertTrue(pool.region.contains(b2.address, count: b2.length))
        pool.giveBack(b1)
        XCTAssertEqual(pool.available, 1)
        XCTAssertEqual(try XCTUnwrap(pool.take()).index, b1.index)
    }

    /// A cached region over memory that was freed (unmapped) since: a registration overlapping
    /// it cannot cover the union, so the stale region is dropped and the new range registered alone.
    func testStaleRegionOverFreedMemoryIsDropped() throws {
        let a = try Endpoint("soft_0")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let cache = try RegistrationCache(protectionDomain: a.pd, capacity: 8, bounceBufferCount: 0)
        guard let p = mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw XCTSkip("mmap failed")
        }
        defer { munmap(p, page); munmap(p + 2 * page, 2 * page) }
        let old = try XCTUnwrap(cache.region(covering: p, count: 3 * page))
        XCTAssertTrue(old.contains(p, count: 3 * page))
        munmap(p + page, page)  // part of it freed: the cached region is stale
        // Pages 2 and 3 are mapped; the union with the stale region is not.
        let fresh = try XCTUnwrap(cache.region(covering: p + 3 * page - 100, count: 200), "\(String(describing: cache.lastRefusal))")
        XCTAssertFalse(fresh === old)
        XCTAssertTrue(fresh.contains(p + 3 * page - 100, count: 200))
        XCTAssertFalse(fresh.contains(p + page, count: 1), "registered alone")
        XCTAssertEqual(cache.statistics.invalidations, 1)
        XCTAssertEqual(cache.statistics.refusals, 0)
        XCTAssertEqual(cache.count, 1)
        XCTAssertTrue(cache.region(covering: p + 3 * page + 10, count: 10) === fresh, "the new region is cached")
    }

    /// Registrations for one collective: page-aligned over the range, counted, never cached (a
    /// later lookup registers anew), and refused ranges say why like cached ones.
    func testUncachedRegistrationsStayOutOfTheCache() throws {
        let a = try Endpoint("soft_0", size: 1 << 20)
        let cache = try RegistrationCache(protectionDomain: a.pd, capacity: 8, bounceBufferCount: 0)
        let r = try XCTUnwrap(cache.registerUncached(a.memory + 5000, count: 10_000))
        XCTAssertEqual(UInt(bitPattern: r.address) % 4096, 0, "registered page-aligned")
        XCTAssertTrue(r.contains(a.memory + 5000, count: 10_000))
        XCTAssertFalse(r.contains(a.memory, count: 1), "only the pages asked for")
        XCTAssertEqual(cache.count, 0)
        XCTAssertEqual(cache.cachedBytes, 0)
        XCTAssertEqual(cache.statistics.uncachedRegistrations, 1)
        let cached = try XCTUnwrap(cache.region(covering: a.memory + 5000, count: 100))
        XCTAssertFalse(cached === r, "the cache does not know the uncached region")
        XCTAssertEqual(cache.statistics.registrations, 1)
        XCTAssertEqual(cache.cachedBytes, cached.length)
        let hole = try Hole(pages: 3)
        XCTAssertNil(cache.registerUncached(hole.base, count: 3 * 4096))
        XCTAssertEqual(cache.statistics.refusals, 1)
        XCTAssertEqual(errnoOf(try XCTUnwrap(cache.lastRefusal)), EFAULT)
    }

    /// A bounce buffer is a registered RDMA target like any region.
    func testBounceBuffersCarryWrites() throws {
        let (a, b) = try connectedPair()
        let pool = try BouncePool(protectionDomain: b.pd, bufferSize: 8192, count: 4)
        let target = try XCTUnwrap(pool.take())
        memset(a.memory, 0x5C, 8192)
        try b.qp.postReceive(workRequestID: 1)
        try a.qp.postWriteWithImmediate(local: a.local(0, 8192), remoteAddress: target.remote(count: 8192).address, rkey: target.rkey,
                                        immediate: 3, workRequestID: 1)
        XCTAssertEqual(try b.drain(b.recvCQ, 1, also: [a.sendCQ]).map(\.status), [.success])
        XCTAssertEqual(memcmp(a.memory, target.address, 8192), 0)
    }
}

/// `pages` pages of which the middle one is unmapped.
final class Hole {
    let base: UnsafeMutableRawPointer
    let pages: Int
    init(pages: Int) throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let p = mmap(nil, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw XCTSkip("mmap failed")
        }
        base = p
        self.pages = pages
        munmap(base + page, page)
    }
    deinit {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        munmap(base, page)
        munmap(base + 2 * page, (pages - 2) * page)
    }
}
