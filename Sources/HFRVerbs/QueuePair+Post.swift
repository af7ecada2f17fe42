import CHFRVerbs

// Posting builds the work request and its scatter/gather entry on the stack: no allocation.
extension QueuePair {
    @inline(__always)
    private func post(_ opcode: ibv_wr_opcode, _ local: LocalBuffer, remoteAddress: UInt64, rkey: UInt32,
                      immediate: UInt32, workRequestID: UInt64, flags: UInt32) throws(VerbsError) {
        guard local.length >= 0, local.length <= Int(UInt32.max) else {
            throw .invalidArgument("a work request of \(local.length) bytes")
        }
        var sge = ibv_sge(addr: UInt64(UInt(bitPattern: local.address)), length: UInt32(local.length), lkey: local.lkey)
        var wr = ibv_send_wr()
        wr.wr_id = workRequestID
        wr.num_sge = local.length == 0 ? 0 : 1
        wr.opcode = opcode
        wr.send_flags = flags
        wr.imm_data = immediate
        wr.wr.rdma.remote_addr = remoteAddress
        wr.wr.rdma.rkey = rkey
        var bad: UnsafeMutablePointer<ibv_send_wr>?
        let rc = withUnsafeMutablePointer(to: &sge) { s in
            wr.sg_list = s
            return withUnsafeMutablePointer(to: &wr) { postSendCall(qp, $0, &bad) }
        }
        if rc != 0 { throw library.failure("ibv_post_send(QP \(number))", rc) }
    }

    @inline(__always) private func flags(signaled: Bool, inline: Bool = false) -> UInt32 {
        (signaled ? IBV_SEND_SIGNALED.rawValue : 0) | (inline ? IBV_SEND_INLINE.rawValue : 0)
    }

    /// `ibv_post_send` of an RDMA_WRITE_WITH_IMM: `local` lands at `remoteAddress` (covered by
    /// the peer's `rkey`), then the peer's next posted receive completes with `immediate` and the
    /// length. The immediate travels in network order. Unsignaled work requests keep their
    /// send-queue slots until a later signaled completion of this QP is polled.
    @inline(__always)
    public func postWriteWithImmediate(local: LocalBuffer, remoteAddress: UInt64, rkey: UInt32, immediate: UInt32,
                                       workRequestID: UInt64, signaled: Bool = true) throws(VerbsError) {
        try post(IBV_WR_RDMA_WRITE_WITH_IMM, local, remoteAddress: remoteAddress, rkey: rkey, immediate: immediate.bigEndian,
                 workRequestID: workRequestID, flags: flags(signaled: signaled))
    }

    /// `ibv_post_send` of an RDMA_WRITE: the peer is not told.
    @inline(__always)
    public func postWrite(local: LocalBuffer, remoteAddress: UInt64, rkey: UInt32, workRequestID: UInt64,
                          signaled: Bool = true) throws(VerbsError) {
        try post(IBV_WR_RDMA_WRITE, local, remoteAddress: remoteAddress, rkey: rkey, immediate: 0,
                 workRequestID: workRequestID, flags: flags(signaled: signaled))
    }

    /// `ibv_post_send` of a SEND (or SEND_WITH_IMM): the bytes land in the peer's next posted
    /// receive. `inline` copies them into the work request (up to `maxInlineData`), so `local`
    /// need not be registered (its lkey is not used) and may be reused at once.
    @inline(__always)
    public func postSend(local: LocalBuffer, immediate: UInt32? = nil, workRequestID: UInt64, signaled: Bool = true,
                         inline: Bool = false) throws(VerbsError) {
        try post(immediate == nil ? IBV_WR_SEND : IBV_WR_SEND_WITH_IMM, local, remoteAddress: 0, rkey: 0,
                 immediate: (immediate ?? 0).bigEndian, workRequestID: workRequestID, flags: flags(signaled: signaled, inline: inline))
    }

    /// `ibv_post_recv`: a receive consumed by the peer's next write-with-immediate (which needs
    /// no buffer) or send (which lands in `into`).
    @inline(__always)
    public func postReceive(workRequestID: UInt64, into local: LocalBuffer? = nil) throws(VerbsError) {
        var sge = ibv_sge()
        var wr = ibv_recv_wr()
        wr.wr_id = workRequestID
        if let local {
            guard local.length >= 0, local.length <= Int(UInt32.max) else { throw .invalidArgument("a receive of \(local.length) bytes") }
            sge = ibv_sge(addr: UInt64(UInt(bitPattern: local.address)), length: UInt32(local.length), lkey: local.lkey)
            wr.num_sge = 1
        }
        var bad: UnsafeMutablePointer<ibv_recv_wr>?
        let rc = withUnsafeMutablePointer(to: &sge) { s in
            wr.sg_list = s
            return withUnsafeMutablePointer(to: &wr) { postRecvCall(qp, $0, &bad) }
        }
        if rc != 0 { throw library.failure("ibv_post_recv(QP \(number))", rc) }
    }
}
