import CHFReduceABI
import HFRSystem
import HFReduce

// The C entry points of the collective family. Each pair shares one body: the blocking form
// runs it with the blocking Swift call, the Async form with the Async call and a request handle.

/// Runs `body` with the checked communicator, recording any error as its and the thread's last error.
func withComm(_ function: String, _ comm: OpaquePointer?, _ body: (CommBox) throws(HFRError) -> Void) -> hfrResult_t {
    let box: CommBox
    switch commOrFail(comm, function) {
    case .failure(let e): return failure(e)
    case .success(let b): box = b
    }
    do {
        try body(box)
        return success
    } catch {
        let e = error
        return failure(e.code, e.message.hasPrefix(function) ? e.message : "\(function): \(e.message)", box)
    }
}

/// The same for an Async entry point: checks `request`, and stores the new request handle in it.
func withCommAsync(_ function: String, _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?,
                   _ body: (CommBox) throws(HFRError) -> CollectiveRequest) -> hfrResult_t {
    guard let request else { return failure(.invalidArgument, "\(function): request is NULL", Handles.comm(comm)) }
    request.pointee = nil
    return withComm(function, comm) { box throws(HFRError) in
        let r = try body(box)
        request.pointee = Handles.register(RequestBox(r, owner: box))
    }
}


@_cdecl("hfrBroadcast")
public func hfrBroadcast(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ count: Int, _ datatype: hfrDataType_t,
                         _ root: Int32, _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrBroadcast", comm) { box throws(HFRError) in
        try box.comm.broadcast(send: sendbuff, recv: recvbuff, count: try elementCount(count, "hfrBroadcast").get(),
                               type: try dataType(datatype, "hfrBroadcast").get(), root: Int(root))
    }
}

@_cdecl("hfrBroadcastAsync")
public func hfrBroadcastAsync(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ count: Int, _ datatype: hfrDataType_t,
                              _ root: Int32, _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrBroadcastAsync", comm, request) { box throws(HFRError) in
        try box.comm.broadcastAsync(send: sendbuff, recv: recvbuff, count: try elementCount(count, "hfrBroadcastAsync").get(),
                                    type: try dataType(datatype, "hfrBroadcastAsync").get(), root: Int(root))
    }
}

@_cdecl("hfrReduce")
public func hfrReduce(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ count: Int, _ datatype: hfrDataType_t,
                      _ op: hfrRedOp_t, _ root: Int32, _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrReduce", comm) { box throws(HFRError) in
        try box.comm.reduce(send: sendbuff, recv: recvbuff, count: try elementCount(count, "hfrReduce").get(),
                            type: try dataType(datatype, "hfrReduce").get(), op: try reduceOp(op, "hfrReduce").get(), root: Int(root))
    }
}

@_cdecl("hfrReduceAsync")
public func hfrReduceAsync(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ count: Int, _ datatype: hfrDataType_t,
                           _ op: hfrRedOp_t, _ root: Int32, _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrReduceAsync", comm, request) { box throws(HFRError) in
        try box.comm.reduceAsync(send: sendbuff, recv: recvbuff, count: try elementCount(count, "hfrReduceAsync").get(),
                                 type: try dataType(datatype, "hfrReduceAsync").get(), op: try reduceOp(op, "hfrReduceAsync").get(), root: Int(root))
    }
}

@_cdecl("hfrAllGather")
public func hfrAllGather(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ sendcount: Int, _ datatype: hfrDataType_t,
                         _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrAllGather", comm) { box throws(HFRError) in
        try box.comm.allGather(send: sendbuff, recv: recvbuff, sendCount: try elementCount(sendcount, "hfrAllGather").get(),
                               type: try dataType(datatype, "hfrAllGather").get())
    }
}

@_cdecl("hfrAllGatherAsync")
public func hfrAllGatherAsync(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ sendcount: Int, _ datatype: hfrDataType_t,
                              _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrAllGatherAsync", comm, request) { box throws(HFRError) in
        try box.comm.allGatherAsync(send: sendbuff, recv: recvbuff, sendCount: try elementCount(sendcount, "hfrAllGatherAsync").get(),
                                    type: try dataType(datatype, "hfrAllGatherAsync").get())
    }
}

@_cdecl("hfrReduceScatter")
public func hfrReduceScatter(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ recvcount: Int, _ datatype: hfrDataType_t,
                             _ op: hfrRedOp_t, _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrReduceScatter", comm) { box throws(HFRError) in
        try box.comm.reduceScatter(send: sendbuff, recv: recvbuff, recvCount: try elementCount(recvcount, "hfrReduceScatter").get(),
                                   type: try dataType(datatype, "hfrReduceScatter").get(), op: try reduceOp(op, "hfrReduceScatter").get())
    }
}

@_cdecl("hfrReduceScatterAsync")
public func hfrReduceScatterAsync(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ recvcount: Int, _ datatype: hfrDataType_t,
                                  _ op: hfrRedOp_t, _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrReduceScatterAsync", comm, request) { box throws(HFRError) in
        try box.comm.reduceScatterAsync(send: sendbuff, recv: recvbuff, recvCount: try elementCount(recvcount, "hfrReduceScatterAsync").get(),
                                        type: try dataType(datatype, "hfrReduceScatterAsync").get(), op: try reduceOp(op, "hfrReduceScatterAsync").get())
    }
}

@_cdecl("hfrAllToAll")
public func hfrAllToAll(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ countPerPeer: Int, _ datatype: hfrDataType_t,
                        _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrAllToAll", comm) { box throws(HFRError) in
        try box.comm.allToAll(send: sendbuff, recv: recvbuff, countPerPeer: try elementCount(countPerPeer, "hfrAllToAll").get(),
                              type: try dataType(datatype, "hfrAllToAll").get())
    }
}

@_cdecl("hfrAllToAllAsync")
public func hfrAllToAllAsync(_ sendbuff: UnsafeRawPointer?, _ recvbuff: UnsafeMutableRawPointer?, _ countPerPeer: Int, _ datatype: hfrDataType_t,
                             _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrAllToAllAsync", comm, request) { box throws(HFRError) in
        try box.comm.allToAllAsync(send: sendbuff, recv: recvbuff, countPerPeer: try elementCount(countPerPeer, "hfrAllToAllAsync").get(),
                                   type: try dataType(datatype, "hfrAllToAllAsync").get())
    }
}

/// Reads `n` size_t entries, each checked to fit in Int; names the array on failure.
func sizes(_ p: UnsafePointer<Int>?, _ n: Int, _ name: String, _ function: String) throws(HFRError) -> [Int] {
    guard let p else { throw HFRError(.invalidArgument, "\(function): \(name) is NULL") }
    var out: [Int] = []
    out.reserveCapacity(n)
    for i in 0..<n {
        guard p[i] >= 0 else { throw HFRError(.invalidArgument, "\(function): \(name)[\(i)] is \(UInt(bitPattern: p[i])), too large") }
        out.append(p[i])
    }
    return out
}

/// Runs an all-to-all-v call with the Swift API's argument names in its errors turned into the
/// header's (`sendDispls` is `sdispls` there), so a C caller reads the names it passed.
func withCArgumentNames<T>(_ body: () throws(HFRError) -> T) throws(HFRError) -> T {
    do {
        return try body()
    } catch {
        var m = error.message
        for (swift, c) in [("sendCounts", "sendcounts"), ("sendDispls", "sdispls"), ("recvCounts", "recvcounts"), ("recvDispls", "rdispls")] {
            m = m.replacing(swift, with: c)
        }
        throw HFRError(error.code, m, rank: error.rank)
    }
}

@_cdecl("hfrAllToAllv")
public func hfrAllToAllv(_ sendbuff: UnsafeRawPointer?, _ sendcounts: UnsafePointer<Int>?, _ sdispls: UnsafePointer<Int>?,
                         _ recvbuff: UnsafeMutableRawPointer?, _ recvcounts: UnsafePointer<Int>?, _ rdispls: UnsafePointer<Int>?,
                         _ datatype: hfrDataType_t, _ comm: OpaquePointer?) -> hfrResult_t {
    let f = "hfrAllToAllv"
    return withComm(f, comm) { box throws(HFRError) in
        let n = box.comm.size
        try withCArgumentNames { () throws(HFRError) in
            try box.comm.allToAllv(send: sendbuff, sendCounts: try sizes(sendcounts, n, "sendcounts", f), sendDispls: try sizes(sdispls, n, "sdispls", f),
                                   recv: recvbuff, recvCounts: try sizes(recvcounts, n, "recvcounts", f), recvDispls: try sizes(rdispls, n, "rdispls", f),
                                   type: try dataType(datatype, f).get())
        }
    }
}

@_cdecl("hfrAllToAllvAsync")
public func hfrAllToAllvAsync(_ sendbuff: UnsafeRawPointer?, _ sendcounts: UnsafePointer<Int>?, _ sdispls: UnsafePointer<Int>?,
                              _ recvbuff: UnsafeMutableRawPointer?, _ recvcounts: UnsafePointer<Int>?, _ rdispls: UnsafePointer<Int>?,
                              _ datatype: hfrDataType_t, _ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    let f = "hfrAllToAllvAsync"
    return withCommAsync(f, comm, request) { box throws(HFRError) in
        let n = box.comm.size
        return try withCArgumentNames { () throws(HFRError) in
            try box.comm.allToAllvAsync(send: sendbuff, sendCounts: try sizes(sendcounts, n, "sendcounts", f), sendDispls: try sizes(sdispls, n, "sdispls", f),
                                        recv: recvbuff, recvCounts: try sizes(recvcounts, n, "recvcounts", f), recvDispls: try sizes(rdispls, n, "rdispls", f),
                                        type: try dataType(datatype, f).get())
        }
    }
}

@_cdecl("hfrBarrier")
public func hfrBarrier(_ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrBarrier", comm) { box throws(HFRError) in try box.comm.barrier() }
}

@_cdecl("hfrBarrierAsync")
public func hfrBarrierAsync(_ comm: OpaquePointer?, _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrBarrierAsync", comm, request) { box throws(HFRError) in try box.comm.barrierAsync() }
}

@_cdecl("hfrSend")
public func hfrSend(_ sendbuff: UnsafeRawPointer?, _ count: Int, _ datatype: hfrDataType_t, _ peer: Int32, _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrSend", comm) { box throws(HFRError) in
        try box.comm.send(sendbuff, count: try elementCount(count, "hfrSend").get(), type: try dataType(datatype, "hfrSend").get(), to: Int(peer))
    }
}

@_cdecl("hfrSendAsync")
public func hfrSendAsync(_ sendbuff: UnsafeRawPointer?, _ count: Int, _ datatype: hfrDataType_t, _ peer: Int32, _ comm: OpaquePointer?,
                         _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrSendAsync", comm, request) { box throws(HFRError) in
        try box.comm.sendAsync(sendbuff, count: try elementCount(count, "hfrSendAsync").get(), type: try dataType(datatype, "hfrSendAsync").get(), to: Int(peer))
    }
}

@_cdecl("hfrRecv")
public func hfrRecv(_ recvbuff: UnsafeMutableRawPointer?, _ count: Int, _ datatype: hfrDataType_t, _ peer: Int32, _ comm: OpaquePointer?) -> hfrResult_t {
    withComm("hfrRecv", comm) { box throws(HFRError) in
        try box.comm.recv(recvbuff, count: try elementCount(count, "hfrRecv").get(), type: try dataType(datatype, "hfrRecv").get(), from: Int(peer))
    }
}

@_cdecl("hfrRecvAsync")
public func hfrRecvAsync(_ recvbuff: UnsafeMutableRawPointer?, _ count: Int, _ datatype: hfrDataType_t, _ peer: Int32, _ comm: OpaquePointer?,
                         _ request: UnsafeMutablePointer<OpaquePointer?>?) -> hfrResult_t {
    withCommAsync("hfrRecvAsync", comm, request) { box throws(HFRError) in
        try box.comm.recvAsync(recvbuff, count: try elementCount(count, "hfrRecvAsync").get(), type: try dataType(datatype, "hfrRecvAsync").get(), from: Int(peer))
    }
}
