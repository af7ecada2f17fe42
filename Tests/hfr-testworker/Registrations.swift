import Glibc
import HFReduce

/// Buffers freed and mapped again at the same address between collectives, as a program that
/// frees its tensors and allocates new ones does: an all-to-all and an allgather into fresh
/// pages every round, checked element by element. Over RDMA a registration kept from an
/// earlier round would name the freed pages. Returns the wrong elements and the rounds whose
/// buffers came back at the same address.
///
/// Each buffer's pages come from a tmpfs file (/dev/shm, unlinked at once) that stays open until
/// the end: its frames outlive the mapping, as frames an HCA pinned do, so the new pages at the
/// old address never reuse them (which the soft device's `HFR_IB_SOFT_PIN` check needs).
func checkRemap(_ comm: Communicator, rounds: Int, countPerPeer: Int) throws -> (wrong: Int, sameAddress: Int) {
    let n = comm.size
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let length = (countPerPeer * n * 4 + page - 1) / page * page
    var files: [Int32] = []
    defer { for fd in files { close(fd) } }
    /// mmap(2) of a fresh tmpfs file's pages, at `hint` exactly when given (MAP_FIXED_NOREPLACE,
    /// 0x100000, which the Glibc module does not export) or anywhere when that address is taken.
    func map(_ hint: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer {
        var name = Array("/dev/shm/hfr-remap-XXXXXX".utf8CString)
        let fd = mkstemp(&name)
        guard fd >= 0 else { fail("mkstemp in /dev/shm: errno \(errno)") }
        unlink(name)
        guard ftruncate(fd, off_t(length)) == 0 else { fail("ftruncate of \(length) bytes: errno \(errno)") }
        files.append(fd)
        let fixed: Int32 = hint == nil ? 0 : 0x100000
        if let p = mmap(hint, length, PROT_READ | PROT_WRITE, MAP_SHARED | fixed, fd, 0), p != MAP_FAILED { return p }
        if hint != nil, errno == EEXIST { return map(nil) }
        fail("mmap of \(length) bytes: errno \(errno)")
    }
    var send = map(nil), recv = map(nil)
    var wrong = 0, same = 0
    for round in 0..<rounds {
        if round > 0 {
            let (oldSend, oldRecv) = (send, recv)
            munmap(send, length); munmap(recv, length)
            send = map(oldSend); recv = map(oldRecv)
            if send == oldSend && recv == oldRecv { same += 1 }
        }
        wrong += try exchange(comm, send, recv, countPerPeer: countPerPeer, round: round, wrongSoFar: wrong)
    }
    munmap(send, length); munmap(recv, length)
    return (wrong, same)
}

/// One round of the buffer checks: an all-to-all and an allgather of int32 values that name
/// the round, checked element by element. Returns the wrong elements (the first few printed).
func exchange(_ comm: Communicator, _ send: UnsafeMutableRawPointer, _ recv: UnsafeMutableRawPointer, countPerPeer: Int,
              round: Int, wrongSoFar: Int = 0) throws -> Int {
    let n = comm.size, rank = comm.rank
    var wrong = 0
    func expect(_ what: String, _ i: Int, _ got: Int32, _ want: Int32) {
        if got != want {
            if wrongSoFar + wrong < 5 { print("rank \(rank): round \(round) \(what): element \(i) is \(got), expected \(want)") }
            wrong += 1
        }
    }
    let s = send.bindMemory(to: Int32.self, capacity: countPerPeer * n)
    let r = recv.bindMemory(to: Int32.self, capacity: countPerPeer * n)
    func value(_ from: Int, _ to: Int, _ i: Int) -> Int32 { Int32(round * 100_000 + from * 1000 + to * 100 + i % 100) }
    for d in 0..<n { for i in 0..<countPerPeer { s[d * countPerPeer + i] = value(rank, d, i) } }
    memset(recv, 0x5A, countPerPeer * n * 4)
    try comm.allToAll(send: send, recv: recv, countPerPeer: countPerPeer, type: .int32)
    for src in 0..<n { for i in 0..<countPerPeer { expect("all-to-all from rank \(src)", src * countPerPeer + i, r[src * countPerPeer + i], value(src, rank, i)) } }
    memset(recv, 0x5A, countPerPeer * n * 4)
    try comm.allGather(send: send, recv: recv, sendCount: countPerPeer, type: .int32)
    for src in 0..<n { for i in 0..<countPerPeer { expect("allgather from rank \(src)", src * countPerPeer + i, r[src * countPerPeer + i], value(src, 0, i)) } }
    return wrong
}

/// Buffers registered with the communicator (`Communicator.register`): `rounds` rounds of
/// `exchange` in them, then the registrations of each HCA port printed ("registered: ..."),
/// then both deregistered, one round more, and the registrations printed again
/// ("deregistered: ..."); over RDMA, memory with a hole must be refused as invalidArgument.
/// Returns the wrong elements.
func checkRegistered(_ comm: Communicator, rounds: Int, countPerPeer: Int) throws -> Int {
    let bytes = countPerPeer * comm.size * 4
    let send = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
    let recv = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
    defer { send.deallocate(); recv.deallocate() }
    let registered = [try comm.register(send, count: bytes), try comm.register(recv, count: bytes)]
    var wrong = 0
    for round in 0..<rounds { wrong += try exchange(comm, send, recv, countPerPeer: countPerPeer, round: round, wrongSoFar: wrong) }
    printRegistrations(comm, "registered: ")
    for m in registered { try comm.deregister(m) }
    if let code = deregisterError(comm, registered[0]), code == .invalidUsage {} else {
        print("rank \(comm.rank): deregistering twice was not refused as invalidUsage")
        wrong += 1
    }
    wrong += try exchange(comm, send, recv, countPerPeer: countPerPeer, round: rounds, wrongSoFar: wrong)
    printRegistrations(comm, "deregistered: ")
    if !comm.registrationStatistics().isEmpty {
        // Over RDMA: memory with a hole is refused at once, naming the problem.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let holed = mmap(nil, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), holed != MAP_FAILED else {
            fail("mmap: errno \(errno)")
        }
        munmap(holed + page, page)
        defer { munmap(holed, page); munmap(holed + 2 * page, page) }
        do {
            _ = try comm.register(holed, count: 3 * page)
            print("rank \(comm.rank): memory with an unmapped page was registered")
            wrong += 1
        } catch where error.code == .invalidArgument && error.message.contains("cannot be registered for RDMA") {
        } catch {
            print("rank \(comm.rank): registering memory with an unmapped page: \(error.code): \(error.message)")
            wrong += 1
        }
    }
    return wrong
}

/// The error code of deregistering `memory`, nil when it succeeds.
func deregisterError(_ comm: Communicator, _ memory: RegisteredMemory) -> HFRResult? {
    do { try comm.deregister(memory) } catch { return error.code }
    return nil
}

/// One line per HCA port: what its registration cache holds and the registrations made.
func printRegistrations(_ comm: Communicator, _ label: String = "") {
    for r in comm.registrationStatistics() {
        print("rank \(comm.rank): \(label)registrations on \(r.port): \(r.cachedRegions) cached (\(r.cachedBytes) B), \(r.hits) hits, "
              + "\(r.cachedRegistrations) cached registrations, \(r.collectiveRegistrations) per collective, \(r.refusals) refused, "
              + "\(r.callerRanges) registered by the caller (\(r.callerBytes) B)")
    }
}
