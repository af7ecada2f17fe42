import CHFReduceABI
import HFReduce

// hfrCommRegister and hfrCommDeregister: memory kept registered for a communicator's RDMA
// transfers (Communicator.register).

@_cdecl("hfrCommRegister")
public func hfrCommRegister(_ comm: OpaquePointer?, _ buff: UnsafeMutableRawPointer?, _ size: Int,
                            _ handle: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> hfrResult_t {
    guard let handle else { return failure(.invalidArgument, "hfrCommRegister: handle is NULL", Handles.comm(comm)) }
    handle.pointee = nil
    return withComm("hfrCommRegister", comm) { box throws(HFRError) in
        let memory = try box.comm.register(buff, count: try elementCount(size, "hfrCommRegister", what: "size").get())
        handle.pointee = Handles.register(RegistrationBox(memory, owner: box))
    }
}

@_cdecl("hfrCommDeregister")
public func hfrCommDeregister(_ comm: OpaquePointer?, _ handle: UnsafeMutableRawPointer?) -> hfrResult_t {
    withComm("hfrCommDeregister", comm) { box throws(HFRError) in
        guard let registration = Handles.registration(handle) else {
            throw HFRError(.invalidArgument, "handle \(handle.map { "\($0)" } ?? "NULL") is not a live registration (deregistered already?)")
        }
        guard registration.owner === box else { throw HFRError(.invalidUsage, "the registration belongs to another communicator") }
        try box.comm.deregister(registration.memory)
        Handles.release(registration: handle!)
    }
}
