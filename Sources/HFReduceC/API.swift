import Glibc
import CHFReduceABI
import HFRSystem
import HFRBootstrap
import HFReduce

// The C ABI of include/hfreduce.h. Every entry point checks its arguments, catches every
// error and returns a result code: no Swift error or trap crosses this boundary on bad input.

/// Records `message` as the calling thread's (and `comm`'s) last error and returns `code`.
func failure(_ code: HFRResult, _ message: String, _ comm: CommBox? = nil) -> hfrResult_t {
    ThreadErrors.set(message)
    if let comm { comm.errorLock.withLock { comm.lastError.set(message) } }
    return hfrResult_t(rawValue: UInt32(code.rawValue))
}

func failure(_ error: HFRError, _ comm: CommBox? = nil) -> hfrResult_t { failure(error.code, error.message, comm) }

let success = hfrResult_t(rawValue: 0)

func commOrFail(_ handle: OpaquePointer?, _ function: String) -> Result<CommBox, HFRError> {
    guard let handle else { return .failure(HFRError(.invalidArgument, "\(function): comm is NULL")) }
    guard let box = Handles.comm(handle) else {
        return .failure(HFRError(.invalidArgument, "\(function): comm \(handle) is not a live communicator (destroyed or aborted already?)"))
    }
    return .success(box)
}

func dataType(_ t: hfrDataType_t, _ function: String) -> Result<DataType, HFRError> {
    guard let v = Int32(exactly: t.rawValue), let d = DataType(rawValue: v) else {
        return .failure(HFRError(.invalidArgument, "\(function): datatype \(t.rawValue) is not an hfrDataType_t (0...9)"))
    }
    return .success(d)
}

func reduceOp(_ o: hfrRedOp_t, _ function: String) -> Result<ReduceOp, HFRError> {
    guard let v = Int32(exactly: o.rawValue), let op = ReduceOp(rawValue: v) else {
        return .failure(HFRError(.invalidArgument, "\(function): op \(o.rawValue) is not an hfrRedOp_t (0...4)"))
    }
    return .success(op)
}

func elementCount(_ count: Int, _ function: String, what: String = "count") -> Result<Int, HFRError> {
    // size_t arrives as Int's bit pattern: a "negative" value is a count above Int.max.
    guard count >= 0 else { return .failure(HFRError(.invalidArgument, "\(function): \(what) \(UInt(bitPattern: count)) is too large")) }
    return .success(count)
}

@_cdecl("hfrGetErrorString")
public func hfrGetErrorString(_ result: hfrResult_t) -> UnsafePointer<CChar> {
    switch result.rawValue {
    case 0: return StaticText.success
    case 2: return StaticText.system
    case 3: return StaticText.internalError
    case 4: return StaticText.invalidArgument
    case 5: return StaticText.invalidUsage
    case 6: return StaticText.remote
    case 7: return StaticText.inProgress
    case 8: return StaticText.timeout
    case 9: return StaticText.aborted
    default: return StaticText.unknown
    }
}

enum StaticText {
    static let success = UnsafePointer(strdup("no error")!)
    static let system = UnsafePointer(strdup("system error (a system call failed)")!)
    static let internalError = UnsafePointer(strdup("internal error (a bug in HFReduce)")!)
    static let invalidArgument = UnsafePointer(strdup("invalid argument")!)
    static let invalidUsage = UnsafePointer(strdup("invalid usage (wrong call sequence, or ranks disagree on arguments)")!)
    static let remote = UnsafePointer(strdup("remote error (another rank failed or disconnected)")!)
    static let inProgress = UnsafePointer(strdup("operation in progress")!)
    static let timeout = UnsafePointer(strdup("timed out (HFR_TIMEOUT)")!)
    static let aborted = UnsafePointer(strdup("communicator aborted")!)
    static let unknown = UnsafePointer(strdup("unknown result code")!)
}

@_cdecl("hfrGetLastError")
public func hfrGetLastError(_ comm: OpaquePointer?) -> UnsafePointer<CChar> {
    guard comm != nil else { return ThreadErrors.current() }
    guard let box = Handles.comm(comm) else { return ThreadErrors.current() }
    return box.errorLock.withLock { box.lastError.pointer }
}

@_cdecl("hfrGetVersion")
public func hfrGetVersion(_ version: UnsafeMutablePointer<Int32>?) -> hfrResult_t {
    guard let version else { return failure(.invalidArgument, "hfrGetVersion: version is NULL") }
    version.pointee = Int32(hfreduceVersion)
    return success
}

@_cdecl("hfrGetUniqueId")
public func hfrGetUniqueId(_ id: UnsafeMutablePointer<hfrUniqueId>?) -> hfrResult_t {
    guard let id else { return failure(.invalidArgument, "hfrGetUniqueId: id is NULL") }
    // The interface the data path would use too (HFR_SOCKET_IFNAME), not just the first one up:
    // on a host with several NICs that may be one the other ranks cannot reach.
    var ip = InterfaceAddress.defaultAddress()
    if let spec = Environment.string("HFR_SOCKET_IFNAME") {
        do {
            guard let first = try InterfaceSelection.select(spec, from: InterfaceAddress.all()).first else {
                return failure(.invalidArgument, "hfrGetUniqueId: HFR_SOCKET_IFNAME=\(spec) selects no interface with an IPv4 address")
            }
            ip = first.ip
        } catch {
            return failure(.invalidArgument, "hfrGetUniqueId: HFR_SOCKET_IFNAME=\(spec): \(error)")
        }
    }
    if let root = Environment.string("HFR_ROOT") {
        do { ip = try SocketAddress(parsing: root).ip } catch {
            return failure(.invalidArgument, "hfrGetUniqueId: HFR_ROOT=\(root) is not host:port (\(error))")
        }
    }
    do {
        let address = try RootReservation.reserve(ip: ip)
        var g = SystemRandomNumberGenerator()
        UniqueID(root: address, token: g.next()).encode(to: UnsafeMutableRawPointer(id))
        Log.info("hfrGetUniqueId: rendezvous reserved at \(address)")
        return success
    } catch {
        return failure(.systemError, "hfrGetUniqueId: cannot reserve a rendezvous port: \(error)")
    }
}

@_cdecl("hfrCommInitRank")
public func hfrCommInitRank(_ comm: UnsafeMutablePointer<OpaquePointer?>?, _ nranks: Int32, _ id: hfrUniqueId, _ rank: Int32) -> hfrResult_t {
    guard let comm else { return failure(.invalidArgument, "hfrCommInitRank: comm is NULL") }
    comm.pointee = nil
    guard nranks >= 1 else { return failure(.invalidArgument, "hfrCommInitRank: nranks is \(nranks); it must be at least 1") }
    guard rank >= 0 && rank < nranks else { return failure(.invalidArgument, "hfrCommInitRank: rank is \(rank); it must be in 0...\(nranks - 1)") }
    var copy = id
    let decoded = withUnsafeBytes(of: &copy) { UniqueID.decode($0.baseAddress!) }
    let uid: UniqueID
    switch decoded {
    case .success(let u): uid = u
    case .failure(let why): return failure(.invalidArgument, "hfrCommInitRank: \(why)")
    }
    do {
        let c = try Communicator(rank: Int(rank), size: Int(nranks), root: uid.root, jobToken: uid.token)
        comm.pointee = Handles.register(CommBox(c))
        return success
    } catch {
        return failure(error)
    }
}

@_cdecl("hfrCommInitFromEnv")
public func hfrCommInitFromEnv(_ comm: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    guard let comm else { return failure(.invalidArgument, "hfrCommInitFromEnv: comm is NULL") }
    comm.pointee = nil
    do {
        comm.pointee = Handles.register(CommBox(try Communicator.fromEnvironment()))
        return success
    } catch {
        return failure(error)
    }
}

@_cdecl("hfrCommCount")
public func hfrCommCount(_ comm: OpaquePointer?, _ count: UnsafeMutablePointer<Int32>?) -> hfrResult_t {
    switch commOrFail(comm, "hfrCommCount") {
    case .failure(let e): return failure(e)
    case .success(let box):
        guard let count else { return failure(.invalidArgument, "hfrCommCount: count is NULL", box) }
        count.pointee = Int32(box.comm.size)
        return success
    }
}

@_cdecl("hfrCommUserRank")
public func hfrCommUserRank(_ comm: OpaquePointer?, _ rank: UnsafeMutablePointer<Int32>?) -> hfrResult_t {
    switch commOrFail(comm, "hfrCommUserRank") {
    case .failure(let e): return failure(e)
    case .success(let box):
        guard let rank else { return failure(.invalidArgument, "hfrCommUserRank: rank is NULL", box) }
        rank.pointee = Int32(box.comm.rank)
        return success
    }
}

@_cdecl("hfrCommGetAsyncError")
public func hfrCommGetAsyncError(_ comm: OpaquePointer?, _ asyncError: UnsafeMutablePointer<hfrResult_t>?) -> hfrResult_t {
    switch commOrFail(comm, "hfrCommGetAsyncError") {
    case .failure(let e): return failure(e)
    case .success(let box):
        guard let asyncError else { return failure(.invalidArgument, "hfrCommGetAsyncError: asyncError is NULL", box) }
        if let e = box.comm.asyncError {
            box.errorLock.withLock { box.lastError.set(e.message) }
            asyncError.pointee = hfrResult_t(rawValue: UInt32(e.code.rawValue))
        } else {
            asyncError.pointee = success
        }
        return success
    }
}

@_cdecl("hfrCommAbort")
public func hfrCommAbort(_ comm: OpaquePointer?) -> hfrResult_t {
    switch commOrFail(comm, "hfrCommAbort") {
    case .failure(let e): return failure(e)
    case .success(let box):
        box.comm.abort()
        Handles.release(comm: comm!)
        Handles.releaseRegistrations(of: box)
        return success
    }
}

@_cdecl("hfrCommDestroy")
public func hfrCommDestroy(_ comm: OpaquePointer?) -> hfrResult_t {
    switch commOrFail(comm, "hfrCommDestroy") {
    case .failure(let e): return failure(e)
    case .success(let box):
        box.comm.destroy()
        Handles.release(comm: comm!)
        Handles.releaseRegistrations(of: box)
        return success
    }
}

@_cdecl("hfrAllReduce")
public func hfrAllReduce(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ count: Int,
                         _ datatype: hfrDataType_t, _ op: hfrRedOp_t, _ comm: OpaquePointer?) -> hfrResult_t {
    let f = "hfrAllReduce"
    return withComm(f, comm) { box throws(HFRError) in
        try box.comm.allReduce(send: sendbuff, recv: recvbuff, count: try elementCount(count, f).get(),
                               type: try dataType(datatype, f).get(), op: try reduceOp(op, f).get())
    }
}

@_cdecl("hfrAllReduceAsync")
public func hfrAllReduceAsync(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ count: Int,
                              _ datatype: hfrDataType_t, _ op: hfrRedOp_t, _ comm: OpaquePointer?,
                              _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    let f = "hfrAllReduceAsync"
    return withCommAsync(f, comm, request) { box throws(HFRError) in
        try box.comm.allReduceAsync(send: sendbuff, recv: recvbuff, count: try elementCount(count, f).get(),
                                    type: try dataType(datatype, f).get(), op: try reduceOp(op, f).get())
    }
}

@_cdecl("hfrTest")
public func hfrTest(_ request: OpaquePointer?, _ done: UnsafeMutablePointer<Int32>?) -> hfrResult_t {
    guard let request else { return failure(.invalidArgument, "hfrTest: request is NULL") }
    guard let box = Handles.request(request) else {
        return failure(.invalidArgument, "hfrTest: request \(request) is not a live request (already waited?)")
    }
    guard let done else { return failure(.invalidArgument, "hfrTest: done is NULL") }
    done.pointee = box.request.test() ? 1 : 0
    return success
}

@_cdecl("hfrWaitFor")
public func hfrWaitFor(_ request: OpaquePointer?, _ seconds: Double, _ done: UnsafeMutablePointer<Int32>?) -> hfrResult_t {
    guard let request else { return failure(.invalidArgument, "hfrWaitFor: request is NULL") }
    guard let box = Handles.request(request) else {
        return failure(.invalidArgument, "hfrWaitFor: request \(request) is not a live request (already waited?)")
    }
    guard let done else { return failure(.invalidArgument, "hfrWaitFor: done is NULL") }
    guard seconds >= 0 else { return failure(.invalidArgument, "hfrWaitFor: seconds is \(seconds); it must not be negative") }
    done.pointee = 0
    do {
        guard try box.request.wait(timeout: seconds) else { return success }
        done.pointee = 1
        Handles.release(request: request)
        return success
    } catch {
        done.pointee = 1
        Handles.release(request: request)
        return failure(error, box.owner)
    }
}

@_cdecl("hfrWait")
public func hfrWait(_ request: OpaquePointer?) -> hfrResult_t {
    guard let request else { return failure(.invalidArgument, "hfrWait: request is NULL") }
    guard let box = Handles.request(request) else {
        return failure(.invalidArgument, "hfrWait: request \(request) is not a live request (already waited?)")
    }
    defer { Handles.release(request: request) }
    do {
        try box.request.wait()
        return success
    } catch {
        return failure(error, box.owner)
    }
}
