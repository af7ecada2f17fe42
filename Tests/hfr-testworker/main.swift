import Glibc
import HFReduce
import HFRTopology
import HFRBootstrap
import HFRSystem

// A program run under `hfrun` by the multi-process tests. Each mode exits 0 when every check
// held and prints one line per failed check; the tests assert on exit status and output.

setvbuf(stdout, nil, _IOLBF, 0)
let args = CommandLine.arguments
let mode = args.count > 1 ? args[1] : "matrix"
func arg(_ name: String, _ def: Int) -> Int {
    if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
    return def
}
func fail(_ msg: String) -> Never {
    print("FAIL: \(msg)")
    exit(1)
}

// `idle-at-rendezvous`: rank 1 first opens 30 silent connections to the rendezvous port.
nonisolated(unsafe) var silentConnections: [Int32] = []
if mode == "idle-at-rendezvous", let r = getenv("RANK"), String(cString: r) == "1" {
    silentConnections = idleConnections(30)
    print("rank 1: \(silentConnections.count) silent connections to the rendezvous port")
}

if mode == "intruder", let r = getenv("RANK"), String(cString: r) == "1" {
    // Before joining, knock on rank 0's rendezvous port with a wrong job token: rank 0 must close
    // the connection (and log it), and the real job must still form.
    intrude()
}

// `--fail-hca SPEC --fail-rank R`: rank R fails a soft HCA (HFR_IB_SOFT_FAIL=SPEC, e.g.
// soft_1:after=300: after 300 more send work requests on it), set before the communicator opens it.
if let i = args.firstIndex(of: "--fail-hca"), i + 1 < args.count, let r = getenv("RANK"), Int(String(cString: r)) == arg("--fail-rank", 1) {
    setenv("HFR_IB_SOFT_FAIL", args[i + 1], 1)
    print("rank \(arg("--fail-rank", 1)): HFR_IB_SOFT_FAIL=\(args[i + 1])")
}

// `--bad-rkey-rank R`: rank R corrupts the rkey of every RDMA write it posts (HFR_IB_TEST_BAD_RKEY);
// `--bad-fragment-rank R`: rank R misnumbers their fragments (HFR_IB_TEST_BAD_FRAGMENT).
if args.contains("--bad-rkey-rank"), let r = getenv("RANK"), Int(String(cString: r)) == arg("--bad-rkey-rank", 1) {
    setenv("HFR_IB_TEST_BAD_RKEY", "1", 1)
}
if args.contains("--bad-fragment-rank"), let r = getenv("RANK"), Int(String(cString: r)) == arg("--bad-fragment-rank", 1) {
    setenv("HFR_IB_TEST_BAD_FRAGMENT", "1", 1)
}

if mode == "rogue", let r = getenv("RANK"), String(cString: r) == "1" {
    do { try roguePeer(args.count > 2 ? args[2] : "") } catch { fail("rogue: \(error)") }
    exit(0)
}

let comm: Communicator
do { comm = try Communicator.fromEnvironment() } catch { fail("init: \(error)") }
let rank = comm.rank, n = comm.size

/// `--link-stats`: after the mode, every rank prints what each RDMA link (or socket) carried.
func printLinkStatistics() {
    for s in comm.linkStatistics().sorted(by: { ($0.peer, $0.link, $0.socket) < ($1.peer, $1.link, $1.socket) }) {
        if let r = s.rdma {
            print("rank \(rank): link \(s.link) to rank \(s.peer) via \(r.device) \(r.isUp ? "up" : "down"): wrote \(r.bytesWritten) B in \(r.writes) writes, received \(r.bytesReceived) B in \(r.writesReceived) writes")
        } else {
            print("rank \(rank): link \(s.link) socket \(s.socket) to rank \(s.peer) \(s.isUp ? "up" : "down"): sent \(s.bytesSent) B, received \(s.bytesReceived) B")
        }
    }
    printRegistrations(comm)
}

/// One allreduce checked element by element against `Expected`; returns the number of wrong elements.
func checkOne(_ c: Communicator, count: Int, type: DataType, op: ReduceOp, algorithm: AllreduceAlgorithm?, inPlace: Bool) throws -> Int {
    let bytes = max(count * type.size, 1)
    let send = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    let recv = inPlace ? send : UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    defer { send.deallocate(); if !inPlace { recv.deallocate() } }
    for i in 0..<count { Expected.store(Expected.input(rank: rank, index: i, op: op, type: type), at: send, i, type) }
    if !inPlace { memset(recv, 0x5A, bytes) }
    try c.allReduce(send: send, recv: recv, count: count, type: type, op: op, algorithm: algorithm)
    var wrong = 0
    for i in 0..<count {
        let got = Expected.load(recv, i, type), want = Expected.result(ranks: n, index: i, op: op, type: type)
        if got != want && !(type == .uint64 && got == Double(UInt64(bitPattern: Int64(want)))) {
            if wrong < 3 { print("rank \(rank): \(type) \(op) \(algorithm.map { "\($0)" } ?? "auto") inPlace=\(inPlace) count=\(count): element \(i) is \(got), expected \(want)") }
            wrong += 1
        }
    }
    return wrong
}

do {
    switch mode {
    case "matrix":
        // Every type and op, both algorithms, in place and out of place, awkward counts.
        let counts = args.count > 2 && args[2] == "quick" ? [0, 1, 7, 1031] : [0, 1, 2, 7, 13, 1031, 65537, 300007]
        var wrong = 0
        for type in DataType.allCases {
            for op in ReduceOp.allCases {
                for algo in AllreduceAlgorithm.allCases {
                    for count in counts {
                        for inPlace in [false, true] {
                            wrong += try checkOne(comm, count: count, type: type, op: op, algorithm: algo, inPlace: inPlace)
                        }
                    }
                }
            }
        }
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): matrix OK")
    case "loop":
        // `loop N [--count C] [--down-at K --down-nic NIC --down-rank R]`: N float32 sum allreduces,
        // each result checked in full, values changing every iteration. Rank R (default 1) takes
        // its NIC down (`ip link set NIC down`, inside its own network namespace) at iteration K,
        // so the loop must finish over the links left.
        let iterations = args.count > 2 ? Int(args[2]) ?? 200 : 200
        let count = arg("--count", 1 << 20)
        let downAt = arg("--down-at", -1), downRank = arg("--down-rank", 1)
        let nic = args.firstIndex(of: "--down-nic").flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } ?? "nic1"
        let send = UnsafeMutablePointer<Float>.allocate(capacity: count), recv = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { send.deallocate(); recv.deallocate() }
        var wrong = 0
        for it in 0..<iterations {
            if it == downAt && rank == downRank {
                let rc = system("ip link set \(nic) down")
                print("rank \(rank): ip link set \(nic) down at iteration \(it): status \(rc)")
                if rc != 0 { fail("could not take \(nic) down") }
            }
            for i in 0..<count { send[i] = Float((i &* 7 &+ it &* 13 &+ rank &* 101) % 1000) }
            for i in 0..<count { recv[i] = -1 }
            try comm.allReduce(send: send, recv: recv, count: count, type: .float32, op: .sum)
            for i in 0..<count {
                var want = 0
                for r in 0..<n { want += (i &* 7 &+ it &* 13 &+ r &* 101) % 1000 }
                if recv[i] != Float(want) {
                    if wrong < 3 { print("rank \(rank): iteration \(it) element \(i) is \(recv[i]), expected \(want)") }
                    wrong += 1
                }
            }
        }
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): loop OK \(iterations)")
    case "placement":
        // The engine's threads run where the placement says: read back each thread's affinity from
        // /proc (by thread name) and compare with the decision for this rank, made independently.
        var probe = [Float](repeating: 1, count: 1 << 20)
        try probe.withUnsafeMutableBytes { try comm.allReduce(send: $0.baseAddress!, recv: $0.baseAddress!, count: 1 << 20, type: .float32, op: .sum) }
        let env = { (k: String) in getenv(k).map { Int(String(cString: $0)) ?? 0 } ?? 0 }
        let decided = try Placement.forThisProcess(nics: ["lo"], workers: 1, localRank: env("LOCAL_RANK"), localRanks: max(1, env("LOCAL_WORLD_SIZE"))).primary
        let all = try ThreadPinning.processAffinity()
        func trim(_ s: String) -> String { String(s.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == "\n" || $0 == " " }.reversed()) }
        func affinity(ofThreadNamed name: String) -> String? {
            guard let dir = opendir("/proc/self/task") else { return nil }
            defer { closedir(dir) }
            while let e = readdir(dir) {
                let tid = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                guard let f = fopen("/proc/self/task/\(tid)/comm", "r") else { continue }
                var buf = [CChar](repeating: 0, count: 64)
                _ = fgets(&buf, 64, f); fclose(f)
                guard trim(String(cString: buf)) == name, let s = fopen("/proc/self/task/\(tid)/status", "r") else { continue }
                defer { fclose(s) }
                var line = [CChar](repeating: 0, count: 512)
                while fgets(&line, 512, s) != nil {
                    let l = String(cString: line)
                    if l.hasPrefix("Cpus_allowed_list:") { return trim(String(l.dropFirst("Cpus_allowed_list:".count))) }
                }
            }
            return nil
        }
        let bind = getenv("HFR_NUMA_BIND").map { String(cString: $0) } != "0"
        for (name, want) in [("hfr\(rank)-progress", decided.progressCPUs), ("hfr\(rank)-red0", decided.workerCPUs.first ?? decided.progressCPUs)] {
            guard let got = affinity(ofThreadNamed: name) else { fail("no thread named \(name)") }
            let expected = bind ? want : all
            if got != expected.description { fail("\(name) may run on CPUs \(got), expected \(expected.description) (HFR_NUMA_BIND=\(bind ? 1 : 0))") }
            print("rank \(rank): \(name) on CPUs \(got)")
        }
        print("rank \(rank): placement OK")
    case "large":
        // Large buffers with small chunks, so the pipelines run deep.
        var wrong = 0
        for algo in AllreduceAlgorithm.allCases {
            for (type, op) in [(DataType.float32, ReduceOp.sum), (.bfloat16, .sum), (.int64, .prod), (.float32, .avg)] {
                wrong += try checkOne(comm, count: 3_000_017, type: type, op: op, algorithm: algo, inPlace: false)
                wrong += try checkOne(comm, count: 1_000_003, type: type, op: op, algorithm: algo, inPlace: true)
            }
        }
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): large OK")
    case "async":
        // Several outstanding collectives of different sizes, types and algorithms, waited in reverse.
        let shapes: [(Int, DataType, ReduceOp, AllreduceAlgorithm)] = [
            (1000, .float32, .sum, .tree), (70001, .int32, .max, .ring), (5, .float64, .min, .tree),
            (250_000, .bfloat16, .sum, .ring), (0, .float32, .sum, .tree), (131072, .int64, .prod, .tree),
        ]
        var buffers: [(UnsafeMutableRawPointer, Int, DataType, ReduceOp)] = []
        var requests: [CollectiveRequest] = []
        for round in 0..<3 {
            for (count, type, op, algo) in shapes {
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(count * type.size, 1), alignment: 64)
                for i in 0..<count { Expected.store(Expected.input(rank: rank, index: i, op: op, type: type), at: p, i, type) }
                requests.append(try comm.allReduceAsync(send: p, recv: p, count: count, type: type, op: op, algorithm: algo))
                buffers.append((p, count, type, op))
            }
            _ = round
        }
        for r in requests.reversed() { try r.wait() }
        for r in requests where !r.test() { fail("a waited request does not test as done") }
        var wrong = 0
        for (p, count, type, op) in buffers {
            for i in 0..<count where Expected.load(p, i, type) != Expected.result(ranks: n, index: i, op: op, type: type) { wrong += 1 }
            p.deallocate()
        }
        if wrong > 0 { fail("\(wrong) wrong elements in async collectives") }
        print("rank \(rank): async OK")
    case "two-comms":
        // A second communicator in the same process, used interleaved with the first. Rank 0
        // reserves its rendezvous port (a listener kept open, as hfrGetUniqueId does) and tells
        // the others over the first communicator: a guessed port may be taken.
        let portBox = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        portBox.pointee = rank == 0 ? Int32(try RootReservation.reserve(ip: 0x7F00_0001).port) : 0
        try comm.broadcast(send: portBox, recv: portBox, count: 1, type: .int32, root: 0)
        let root = SocketAddress(ip: 0x7F00_0001, port: UInt16(portBox.pointee))
        portBox.deallocate()
        let second = try Communicator(rank: rank, size: n, root: root, jobToken: 0x5EC0_4D)
        var wrong = 0
        for _ in 0..<5 {
            wrong += try checkOne(comm, count: 10007, type: .float32, op: .sum, algorithm: .tree, inPlace: false)
            wrong += try checkOne(second, count: 20011, type: .int32, op: .max, algorithm: .ring, inPlace: true)
        }
        second.destroy()
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): two-comms OK")
    case "errors":
        // Bad arguments give typed errors naming the argument, and leave the communicator usable.
        func expect(_ code: HFRResult, _ mention: String, _ body: () throws -> Void) {
            do { try body(); fail("expected \(code) mentioning '\(mention)', got success") } catch let e as HFRError {
                if e.code != code || !e.message.contains(mention) { fail("expected \(code) mentioning '\(mention)', got \(e.code): \(e.message)") }
            } catch { fail("unexpected error \(error)") }
        }
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        expect(.invalidArgument, "send buffer is NULL") { try comm.allReduce(send: nil, recv: buf, count: 4, type: .float32, op: .sum) }
        expect(.invalidArgument, "receive buffer is NULL") { try comm.allReduce(send: buf, recv: nil, count: 4, type: .float32, op: .sum) }
        expect(.invalidArgument, "count is -1") { try comm.allReduce(send: buf, recv: buf, count: -1, type: .float32, op: .sum) }
        expect(.invalidArgument, "overflows") { try comm.allReduce(send: buf, recv: buf, count: Int.max / 2, type: .float64, op: .sum) }
        expect(.invalidArgument, "overlap") { try comm.allReduce(send: buf, recv: buf + 4, count: 16, type: .float32, op: .sum) }
        try comm.allReduce(send: nil, recv: nil, count: 0, type: .float32, op: .sum)
        if try checkOne(comm, count: 100, type: .float32, op: .sum, algorithm: nil, inPlace: false) != 0 { fail("wrong result after bad calls") }
        comm.destroy()
        expect(.invalidUsage, "destroyed") { try comm.allReduce(send: buf, recv: buf, count: 4, type: .float32, op: .sum) }
        buf.deallocate()
        print("rank \(rank): errors OK")
        exit(0)
    case "mismatch":
        // The ranks disagree: every rank must get an error, not a hang or corruption. Variants:
        // "count" (rank 0 passes 1000 elements, the others 1001), "op" (sum vs max, same bytes),
        // "type" (float32 vs int32, same bytes), "algorithm" (tree vs ring); "root" and
        // "root-large": every rank broadcasts as its own root, so no rank receives (1001 and 1M
        // elements); "p2p-type": rank 0 sends float32, rank 1 receives as many bytes of int32,
        // the others wait in a barrier; "zero" and "zero-last": rank 0 (or the last rank) passes
        // a count of 0, which runs as a barrier under the collective's signature, so every rank
        // fails in the call itself; "a2av-counts": rank 0 sends 2 elements to rank 1, which
        // expects none from it, and 4 to rank 2, which expects 3: the ranks that finished their
        // part learn at their next call; "a2av-zero-large": rank 0 sends 100,000 elements (more
        // than an eager message) to rank 1, which neither receives nor sends anything and so
        // finishes at once; "p2p-zero-recv", "p2p-zero-recv-eager" and "p2p-zero-send": rank 0 sends 100,000
        // elements (1001, eagerly; none) to rank 1, which receives none (none; 1001), the
        // others wait in a barrier and all call one more; "leaves-early": rank 1 destroys its
        // communicator after one allreduce, the others call a second one.
        let variant = args.count > 2 ? args[2] : "count"
        let elements = variant == "root-large" ? 1 << 20 : variant.hasPrefix("a2av-zero") || variant.hasPrefix("p2p-zero") ? 400_000 : 1001
        let buf = UnsafeMutableRawPointer.allocate(byteCount: elements * 4, alignment: 64)
        memset(buf, 0, elements * 4)
        let odd = rank == 0
        do {
            switch variant {
            case "root", "root-large":
                try comm.broadcast(send: buf, recv: buf, count: elements, type: .float32, root: rank)
            case "p2p-type":
                // A send is over once written (the receiver checks it): rank 0 learns at its next
                // call at the latest.
                switch rank {
                case 0: try comm.send(buf, count: elements, type: .float32, to: 1); try comm.barrier()
                case 1: try comm.recv(buf, count: elements, type: .int32, from: 0)
                default: try comm.barrier()
                }
            case "zero", "zero-last":
                let zero = variant == "zero" ? odd : rank == n - 1
                try comm.allReduce(send: buf, recv: buf, count: zero ? 0 : elements, type: .float32, op: .sum)
            case "a2av-zero-large":
                var sendCounts = Array(repeating: 4, count: n), recvCounts = sendCounts
                sendCounts[1] = rank == 0 ? 100_000 : 0
                recvCounts[1] = 0
                if rank == 1 { sendCounts = Array(repeating: 0, count: n); recvCounts = sendCounts }
                let recv = UnsafeMutableRawPointer.allocate(byteCount: 4 * n * 4, alignment: 64)
                let sendDispls = (0..<n).map { $0 * 100_000 }, recvDispls = (0..<n).map { $0 * 4 }
                try comm.allToAllv(send: buf, sendCounts: sendCounts, sendDispls: sendDispls, recv: recv, recvCounts: recvCounts,
                                   recvDispls: recvDispls, type: .float32)
                try comm.barrier()
            case "p2p-zero-recv", "p2p-zero-recv-eager", "p2p-zero-send":
                let sent = ["p2p-zero-recv": 100_000, "p2p-zero-recv-eager": 1001, "p2p-zero-send": 0][variant]!
                switch rank {
                case 0: try comm.send(buf, count: sent, type: .float32, to: 1)
                case 1: try comm.recv(buf, count: sent == 0 ? 1001 : 0, type: .float32, from: 0)
                default: try comm.barrier()
                }
                try comm.barrier()
            case "leaves-early":
                try comm.allReduce(send: buf, recv: buf, count: elements, type: .float32, op: .sum)
                if rank == 1 {
                    comm.destroy()
                    print("rank 1: left after one allreduce")
                    exit(0)
                }
                try comm.allReduce(send: buf, recv: buf, count: elements, type: .float32, op: .sum)
            case "a2av-counts":
                var sendCounts = Array(repeating: 4, count: n), recvCounts = sendCounts
                if rank == 0 { sendCounts[1] = 2 }
                if rank == 1 { recvCounts[0] = 0 }
                if rank == 2 { recvCounts[0] = 3 }
                let displs = (0..<n).map { $0 * 4 }
                try comm.allToAllv(send: buf, sendCounts: sendCounts, sendDispls: displs, recv: buf + 4 * n * 4, recvCounts: recvCounts,
                                   recvDispls: displs, type: .float32)
                try comm.barrier()
            default:
                try comm.allReduce(send: buf, recv: buf, count: variant == "count" && odd ? 1000 : 1001,
                                   type: variant == "type" && odd ? .int32 : .float32, op: variant == "op" && odd ? .max : .sum,
                                   algorithm: variant == "algorithm" && odd ? .ring : .tree)
            }
            fail("\(variant): completed without an error")
        } catch {
            print("rank \(rank): mismatch detected: \(error.code): \(error.message)")
            comm.destroy()
            exit(3)
        }
    case "threaded-p2p":
        // Two threads of rank 0 talk to rank 1: thread A waits in a receive that rank 1 answers
        // only after it got both sends of thread B. B's first send is done while A drives the
        // engine; B must return from it (not wait for A) to issue its second.
        let count = 1000
        let a = UnsafeMutablePointer<Float>.allocate(capacity: count), b = UnsafeMutablePointer<Float>.allocate(capacity: count)
        for i in 0..<count { b[i] = Float(i) }
        if rank == 0 {
            let done = ConditionLock()
            var failure: HFRError?
            let receiver = try PosixThread(name: "receiver") {
                do { try comm.recv(a, count: count, type: .float32, from: 1) } catch let e as HFRError { done.withLock { failure = e } } catch {}
            }
            usleep(200_000)  // A is waiting (and driving) first
            try comm.send(b, count: count, type: .float32, to: 1)
            try comm.send(b, count: count, type: .float32, to: 1)
            receiver.join()
            if let failure { throw failure }
            for i in 0..<count where a[i] != Float(2 * i) { fail("element \(i) is \(a[i])") }
        } else if rank == 1 {
            try comm.recv(a, count: count, type: .float32, from: 0)
            try comm.recv(a, count: count, type: .float32, from: 0)
            for i in 0..<count { a[i] = Float(2 * i) }
            try comm.send(a, count: count, type: .float32, to: 0)
        }
        print("rank \(rank): threaded-p2p OK")
    case "abort-during-destroy":
        // Rank 0 destroys its communicator with a receive pending that rank 1 never answers: the
        // destroy waits for it, and an abort from another thread cuts that short.
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 16)
        if rank == 0 {
            let pending = try comm.recvAsync(a, count: 16, type: .float32, from: 1)
            let aborter = try PosixThread(name: "aborter") {
                usleep(500_000)
                comm.abort()
            }
            let t0 = MonotonicClock.nanoseconds()
            comm.destroy()
            aborter.join()
            let seconds = Double(MonotonicClock.nanoseconds() - t0) / 1e9
            do { try pending.wait(); fail("the pending receive completed") } catch {
                print("rank 0: destroy returned after \(seconds) s; the receive failed: \(error.code)")
            }
        } else {
            usleep(3_000_000)
            comm.abort()
        }
    case "scratch-limit":
        // A reduce-scatter whose scratch (3 blocks of 256 MiB at 3 ranks) the address space
        // cannot hold (RLIMIT_AS: what is mapped now plus 256 MiB): the collective fails with an
        // error, on every rank, and the process lives on.
        let block = 256 << 20
        let send = UnsafeMutableRawPointer.allocate(byteCount: n * block, alignment: 4096)
        let recv = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 4096)
        // /proc/self/statm starts with the mapped size in pages.
        var text = [UInt8](repeating: 0, count: 256)
        let fd = open("/proc/self/statm", O_RDONLY)
        let got = text.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard got > 0, let pages = Int(String(decoding: text[..<got], as: UTF8.self).split(separator: " ").first ?? "") else { fail("no /proc/self/statm") }
        var limit = rlimit(rlim_cur: rlim_t(pages * Int(getpagesize()) + (256 << 20)), rlim_max: rlim_t.max)
        guard setrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0 else { fail("setrlimit: \(errno)") }
        do {
            try comm.reduceScatter(send: send, recv: recv, recvCount: block / 4, type: .float32, op: .sum)
            fail("a reduce-scatter with too little address space for its scratch completed")
        } catch {
            print("rank \(rank): scratch-limit: \(error.code): \(error.message)")
        }
    case "idle-at-rendezvous":
        if try checkOne(comm, count: 1000, type: .float32, op: .sum, algorithm: nil, inPlace: true) != 0 { fail("wrong result") }
        print("rank \(rank): idle-at-rendezvous OK")
    case "rogue":
        // Rank 0 beside the rogue rank 1 (RoguePeer.swift).
        do {
            try comm.barrier()
            print("rank 0: barrier done")
        } catch {
            print("rank 0: failed: \(error.code): \(error.message)")
        }
    case "remap":
        let (wrong, same) = try checkRemap(comm, rounds: arg("--rounds", 6), countPerPeer: arg("--count", 50_000))
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): remap: \(same) round(s) had their buffers back at the same address")
        print("rank \(rank): remap OK")
    case "registered":
        let wrong = try checkRegistered(comm, rounds: arg("--rounds", 4), countPerPeer: arg("--count", 50_000))
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): registered OK")
    case "family":
        let counts = args.count > 2 && args[2] == "quick" ? [0, 1, 7, 1031] : [0, 1, 2, 7, 1031, 20011]
        let wrong = try checkFamily(comm, counts: counts)
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): family OK")
    case "p2p":
        let count = args.count > 2 ? Int(args[2]) ?? 1001 : 1001
        let s = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        let r = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        let q1 = try comm.recvAsync(r, count: count, type: .int32, from: (rank - 1 + n) % n)
        let q2 = try comm.sendAsync(s, count: count, type: .int32, to: (rank + 1) % n)
        try q1.wait(); try q2.wait()
        print("rank \(rank): p2p OK")
    case "sends-first":
        // Sends issued first, then blocking receives: each send waits for a receive its peer
        // posts only after its own earlier blocking calls returned, so a send must never hold
        // back the completion of a later receive or collective (no eager send helps over RDMA,
        // or with HFR_EAGER_MAX=0).
        let right = (rank + 1) % n, left = (rank - 1 + n) % n
        let count = arg("--count", 100_000), rounds = 3
        let out = (0..<rounds).map { _ in UnsafeMutablePointer<Int32>.allocate(capacity: count) }
        let into = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        defer { out.forEach { $0.deallocate() }; into.deallocate() }
        func value(_ from: Int, _ k: Int, _ i: Int) -> Int32 { Int32(truncatingIfNeeded: from &* 1000 &+ k &* 7 &+ i % 97) }
        var wrong = 0
        for (k, p) in out.enumerated() { for i in 0..<count { p[i] = value(rank, k, i) } }
        let sends = try out.map { try comm.sendAsync($0, count: count, type: .int32, to: right) }
        for k in 0..<rounds {
            for i in 0..<count { into[i] = -1 }
            try comm.recv(into, count: count, type: .int32, from: left)
            for i in 0..<count where into[i] != value(left, k, i) { wrong += 1 }
            // A collective between the receives: done on every rank, it must return here too.
            if try checkOne(comm, count: 1000, type: .float32, op: .sum, algorithm: nil, inPlace: true) != 0 { wrong += 1 }
        }
        for s in sends { try s.wait() }
        if wrong > 0 { fail("\(wrong) wrong elements") }
        print("rank \(rank): sends-first OK")
    case "send-and-leave":
        // Rank 0 sends a message small enough to go eagerly (over once written) and destroys its
        // communicator; rank 1 posts the receive only afterwards: the parked message is delivered.
        let count = 1000
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        defer { p.deallocate() }
        if try checkOne(comm, count: 10, type: .float32, op: .sum, algorithm: nil, inPlace: true) != 0 { fail("wrong result") }
        if rank == 0 {
            for i in 0..<count { p[i] = Int32(i * 3 + 1) }
            try comm.send(p, count: count, type: .int32, to: 1)
            comm.destroy()
        } else if rank == 1 {
            usleep(300_000)
            try comm.recv(p, count: count, type: .int32, from: 0)
            for i in 0..<count where p[i] != Int32(i * 3 + 1) { fail("element \(i) is \(p[i])") }
        }
        print("rank \(rank): send-and-leave OK")
    case "intruder":
        if try checkOne(comm, count: 1000, type: .float32, op: .sum, algorithm: nil, inPlace: false) != 0 { fail("wrong result") }
        print("rank \(rank): intruder OK")
    case "kill":
        // Allreduce in a loop; the victim rank SIGKILLs itself part way. Survivors must fail naming it.
        let victim = arg("--victim", n - 1)
        let count = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        memset(buf, 0, count * 4)
        var iteration = 0
        var failedAt = 0.0
        var ts = timespec()
        func now() -> Double { clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }
        while true {
            if rank == victim && iteration == 20 { kill(getpid(), SIGKILL) }
            if iteration == 20 { failedAt = now() }
            do {
                try comm.allReduce(send: buf, recv: buf, count: count, type: .float32, op: .sum)
            } catch {
                let e = error
                let waited = failedAt > 0 ? now() - failedAt : -1
                print("rank \(rank): failed after \("\(Double(Int(waited * 100)) / 100)") s with \(e.code) rank=\(e.rank.map(String.init) ?? "nil"): \(e.message)")
                exit(e.message.contains("rank \(victim)") ? 3 : 4)
            }
            iteration += 1
            if iteration > 100_000 { fail("the victim never died") }
        }
    case "late-writes":
        // A large allreduce is under way when the last rank aborts. Once a survivor's call has
        // failed, its buffer is the caller's again: nothing may land in it any more, neither the
        // rest of a fragment still streaming in nor a reduction a worker thread had in hand.
        let count = 16 << 20
        let send = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        let recv = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        for i in 0..<count { send.storeBytes(of: Float(i % 1000), toByteOffset: i * 4, as: Float.self) }
        memset(recv, 0, count * 4)
        // The survivors mark in a file that their allreduce is under way; the last rank aborts
        // only once every mark is there (the abort must not come before a survivor starts).
        let job = getenv("MASTER_PORT").map { String(cString: $0) } ?? "0"
        func mark(_ r: Int) -> String { "/tmp/hfr-late-writes-\(job)-\(r)" }
        let request = try comm.allReduceAsync(send: send, recv: recv, count: count, type: .float32, op: .sum)
        if rank == n - 1 {
            var waited = 0
            while (0..<(n - 1)).contains(where: { access(mark($0), F_OK) != 0 }) {
                usleep(1000)
                waited += 1
                if waited > 20_000 { fail("the other ranks did not start the allreduce within 20 s") }
            }
            usleep(UInt32(arg("--abort-after-us", 3000)))
            comm.abort()
            for r in 0..<(n - 1) { unlink(mark(r)) }
            print("rank \(rank): aborted")
            exit(0)
        }
        close(open(mark(rank), O_CREAT | O_WRONLY, 0o600))
        do {
            try request.wait()
            fail("the allreduce succeeded although rank \(n - 1) aborted")
        } catch {
            memset(recv, 0xA5, count * 4)
            usleep(300_000)
            let bytes = UnsafeRawBufferPointer(start: recv, count: count * 4)
            if let k = bytes.firstIndex(where: { $0 != 0xA5 }) {
                fail("byte \(k) of the receive buffer changed after the allreduce failed (\(error))")
            }
            print("rank \(rank): late-writes OK: nothing landed after \(error.code)")
        }
    default:
        fail("unknown mode \(mode)")
    }
} catch {
    fail("\(error)")
}
if args.contains("--link-stats") { printLinkStatistics() }
comm.destroy()
