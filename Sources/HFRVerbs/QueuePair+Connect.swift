import CHFRVerbs

extension QueuePair {
    private func mask(_ parts: ibv_qp_attr_mask...) -> Int32 {
        Int32(bitPattern: parts.reduce(0) { $0 | $1.rawValue })
    }

    /// RESET → INIT (`ibv_modify_qp`: port, P_Key index 0, and what the peer may do to memory).
    /// Receives may be posted from here on.
    public func initialize(access: MemoryAccess = .rdmaTarget) throws(VerbsError) {
        var a = ibv_qp_attr()
        a.qp_state = IBV_QPS_INIT
        a.pkey_index = 0
        a.port_num = port.number
        a.qp_access_flags = UInt32(bitPattern: access.rawValue)
        try modify(&a, mask: mask(IBV_QP_STATE, IBV_QP_PKEY_INDEX, IBV_QP_PORT, IBV_QP_ACCESS_FLAGS), "INIT")
    }

    /// INIT → RTR toward `remote` (`ibv_modify_qp`): the path MTU is the smaller of both ports';
    /// on Ethernet (RoCE), or toward a peer without a LID, the peer is addressed by GID through
    /// a global route header from this port's GID; on InfiniBand by LID.
    public func readyToReceive(from remote: QueuePairAddress, options: ConnectOptions) throws(VerbsError) {
        var a = ibv_qp_attr()
        a.qp_state = IBV_QPS_RTR
        a.path_mtu = ibv_mtu(rawValue: min(localAddress.mtu, remote.mtu).rawValue)
        a.dest_qp_num = remote.queuePairNumber
        a.rq_psn = remote.packetSequenceNumber
        a.max_dest_rd_atomic = 1
        a.min_rnr_timer = options.minRnrTimer
        a.ah_attr.port_num = port.number
        a.ah_attr.sl = options.serviceLevel
        if port.attributes.linkLayer == .ethernet || remote.lid == 0 {
            a.ah_attr.is_global = 1
            a.ah_attr.grh.dgid = remote.gid.raw
            a.ah_attr.grh.sgid_index = UInt8(clamping: port.gidIndex)
            a.ah_attr.grh.hop_limit = 255
            a.ah_attr.grh.traffic_class = options.trafficClass
        } else {
            a.ah_attr.dlid = remote.lid
        }
        let to = port.attributes.linkLayer == .ethernet || remote.lid == 0 ? "GID \(remote.gid)" : "LID \(remote.lid)"
        try modify(&a, mask: mask(IBV_QP_STATE, IBV_QP_AV, IBV_QP_PATH_MTU, IBV_QP_DEST_QPN, IBV_QP_RQ_PSN,
                                  IBV_QP_MAX_DEST_RD_ATOMIC, IBV_QP_MIN_RNR_TIMER),
                   "RTR toward QP \(remote.queuePairNumber) at \(to)")
    }

    /// RTR → RTS (`ibv_modify_qp`): this QP's first PSN, the ACK timeout and retry counts.
    public func readyToSend(options: ConnectOptions) throws(VerbsError) {
        var a = ibv_qp_attr()
        a.qp_state = IBV_QPS_RTS
        a.sq_psn = localAddress.packetSequenceNumber
        a.timeout = options.timeout
        a.retry_cnt = options.retryCount
        a.rnr_retry = options.rnrRetry
        a.max_rd_atomic = 1
        try modify(&a, mask: mask(IBV_QP_STATE, IBV_QP_SQ_PSN, IBV_QP_TIMEOUT, IBV_QP_RETRY_CNT, IBV_QP_RNR_RETRY,
                                  IBV_QP_MAX_QP_RD_ATOMIC), "RTS")
    }

    /// Connects to the peer QP at `remote`: INIT (unless already there), RTR, RTS.
    public func connect(to remote: QueuePairAddress, options: ConnectOptions) throws(VerbsError) {
        if try state() == .reset { try initialize(access: options.access) }
        try readyToReceive(from: remote, options: options)
        try readyToSend(options: options)
    }

    /// Connects with the defaults and `HFR_IB_TIMEOUT` / `HFR_IB_RETRY_CNT` from the environment.
    public func connect(to remote: QueuePairAddress) throws(VerbsError) {
        try connect(to: remote, options: ConnectOptions.fromEnvironment())
    }

    /// → ERROR: every outstanding work request completes with IBV_WC_WR_FLUSH_ERR.
    public func moveToError() throws(VerbsError) {
        var a = ibv_qp_attr()
        a.qp_state = IBV_QPS_ERR
        try modify(&a, mask: mask(IBV_QP_STATE), "ERROR")
    }

    /// → RESET: outstanding work requests are dropped without completions.
    public func reset() throws(VerbsError) {
        var a = ibv_qp_attr()
        a.qp_state = IBV_QPS_RESET
        try modify(&a, mask: mask(IBV_QP_STATE), "RESET")
    }
}
