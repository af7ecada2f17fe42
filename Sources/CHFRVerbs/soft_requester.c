// The requester side of a soft RC QP: executes posted work requests in order (checks keys and
// bounds, writes the data into the responder's memory, appends a message to its ring), completes
// them in order once the responder has processed them, and times out like a real HCA:
// IBV_WC_RETRY_EXC_ERR when the responder is gone for timeout x (retry_cnt + 1),
// IBV_WC_RNR_RETRY_EXC_ERR when it has no receive posted for long enough (never with rnr_retry 7).
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

// The IB RNR timer encodings, in microseconds.
static const uint32_t rnr_us[32] = {
    655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1280, 1920,
    2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720, 40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

// Is the connected responder there, and connected to this QP?
static int remote_ready(const struct soft_qp *qp) {
    struct soft_segment *seg = qp->peer->seg;
    struct soft_qp_shared *r = qp->remote;
    if (atomic_load_explicit(&seg->failed, memory_order_relaxed) || atomic_load_explicit(&seg->pid, memory_order_relaxed) == 0 ||
        seg->incarnation != qp->peer_incarnation)
        return 0;
    if (atomic_load_explicit(&r->qpn, memory_order_acquire) != qp->dest_qpn) return 0;
    uint32_t state = atomic_load_explicit(&r->state, memory_order_acquire);
    if (state != IBV_QPS_RTR && state != IBV_QPS_RTS) return 0;
    return atomic_load(&r->peer_slot) == qp->hca->slot && atomic_load(&r->peer_qpn) == qp->qp.qp_num &&
           r->rq_psn == qp->sq_psn;
}

// How many of this QP's messages the responder has processed (still readable after it closed:
// the mapping keeps the segment).
static uint64_t remote_acked(const struct soft_qp *qp) {
    if (qp->peer->seg->incarnation != qp->peer_incarnation ||
        atomic_load_explicit(&qp->remote->qpn, memory_order_acquire) != qp->dest_qpn)
        return 0;
    return atomic_load_explicit(&qp->remote->head, memory_order_acquire);
}

static enum ibv_wc_status write_remote(struct soft_qp *qp, const struct soft_send_wqe *w) {
    struct iovec local[SOFT_MAX_SGE];
    unsigned long n = 0;
    if (w->inline_length > 0) {
        local[n++] = (struct iovec){(void *)w->inline_data, w->inline_length};
    } else {
        for (uint32_t i = 0; i < w->num_sge; i++)
            local[n++] = (struct iovec){(void *)(uintptr_t)w->sge[i].addr, w->sge[i].length};
    }
    struct iovec remote = {(void *)(uintptr_t)w->remote_addr, w->length};
    ssize_t done = process_vm_writev(qp->peer_pid, local, n, &remote, 1, 0);
    if (done == (ssize_t)w->length) return IBV_WC_SUCCESS;
    return done < 0 && errno == ESRCH ? IBV_WC_RETRY_EXC_ERR : IBV_WC_REM_ACCESS_ERR;
}

// HFR_IB_SOFT_PIN: does the destination or a source region of `w` have other pages under its
// address than it had when registered? A real HCA would move the data between the old ones.
static int pinned_frames_moved(const struct soft_qp *qp, const struct soft_send_wqe *w) {
    if (soft_frame_moved(qp->peer_pid, &qp->peer->seg->mr[w->rkey & (SOFT_MAX_MR - 1)])) return 1;
    for (uint32_t i = 0; i < w->num_sge; i++)
        if (soft_frame_moved(0, &qp->hca->seg->mr[w->sge[i].lkey & (SOFT_MAX_MR - 1)])) return 1;
    return 0;
}

// Executes one work request; 0 when it has to wait for room in the responder's ring.
static int execute(struct soft_qp *qp, struct soft_send_wqe *w) {
    for (uint32_t i = 0; i < w->num_sge; i++) {
        if (!soft_local_sge_ok(qp->hca, qp->pd->pd.handle, &w->sge[i], 0)) {
            w->status = IBV_WC_LOC_PROT_ERR;
            return 1;
        }
    }
    struct soft_qp_shared *r = qp->remote;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - atomic_load_explicit(&r->head, memory_order_acquire) >= SOFT_RING) return 0;
    uint32_t kind = SOFT_MSG_SEND;
    if (w->opcode == IBV_WR_RDMA_WRITE || w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM) {
        kind = w->opcode == IBV_WR_RDMA_WRITE ? SOFT_MSG_WRITE : SOFT_MSG_WRITE_IMM;
        if (w->length > 0) {
            if (!(r->access & IBV_ACCESS_REMOTE_WRITE) ||
                !soft_remote_range_ok(qp->peer->seg, r->pd, w->rkey, w->remote_addr, w->length)) {
                w->status = IBV_WC_REM_ACCESS_ERR;
            } else if (soft_pin && pinned_frames_moved(qp, w)) {
                w->status = IBV_WC_SUCCESS;  // into (or from) the frames it registered: lost here
            } else {
                w->status = write_remote(qp, w);
                if (w->status == IBV_WC_RETRY_EXC_ERR) return 1;
            }
            if (w->status != IBV_WC_SUCCESS) kind = SOFT_MSG_ACCESS_ERROR;
        }
    }
    struct soft_message *m = &r->ring[tail % SOFT_RING];
    m->seq = tail + 1;
    m->kind = kind;
    m->imm = w->imm;
    m->with_imm = w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM || w->opcode == IBV_WR_SEND_WITH_IMM;
    m->length = w->length;
    m->num_sge = w->num_sge;
    m->inline_length = w->inline_length;
    for (uint32_t i = 0; i < w->num_sge; i++) {
        m->sge_addr[i] = w->sge[i].addr;
        m->sge_length[i] = w->sge[i].length;
    }
    if (kind == SOFT_MSG_SEND && w->inline_length > 0) memcpy(m->inline_data, w->inline_data, w->inline_length);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    w->seq = tail + 1;
    return 1;
}

static void complete(struct soft_qp *qp, uint64_t index) {
    struct soft_send_wqe *w = &qp->sq[index % qp->cap.max_send_wr];
    qp->sq_done = index + 1;
    if (w->status == IBV_WC_SUCCESS && !w->signaled) return;
    struct ibv_wc wc = {0};
    wc.wr_id = w->wr_id;
    wc.status = w->status;
    wc.opcode = w->opcode == IBV_WR_SEND || w->opcode == IBV_WR_SEND_WITH_IMM ? IBV_WC_SEND : IBV_WC_RDMA_WRITE;
    wc.byte_len = w->length;
    wc.qp_num = qp->qp.qp_num;
    soft_cq_push(qp->send_cq, qp, index, 1, &wc);
    if (w->status != IBV_WC_SUCCESS) soft_qp_to_error(qp);
}

// The oldest outstanding request waits on the responder. Returns the status to fail it with,
// or IBV_WC_SUCCESS to keep waiting.
static enum ibv_wc_status waiting(struct soft_qp *qp, int ready) {
    uint64_t now = soft_now_ns();
    uint64_t limit = qp->timeout == 0 ? 0 : (4096ull << qp->timeout) * (qp->retry_cnt + 1u);
    if (!ready) {
        if (qp->stall_since == 0) qp->stall_since = now;
        return limit != 0 && now - qp->stall_since > limit ? IBV_WC_RETRY_EXC_ERR : IBV_WC_SUCCESS;
    }
    qp->stall_since = 0;
    if (atomic_load_explicit(&qp->remote->rnr_seq, memory_order_acquire) == remote_acked(qp) + 1 && qp->rnr_retry < 7) {
        if (qp->rnr_since == 0) qp->rnr_since = now;
        uint64_t rnr_limit = (uint64_t)(qp->rnr_retry + 1u) * rnr_us[qp->remote->min_rnr_timer & 31] * 1000ull;
        if (now - qp->rnr_since > rnr_limit) return IBV_WC_RNR_RETRY_EXC_ERR;
    } else {
        qp->rnr_since = 0;
    }
    // Connected and not refusing: a responder that has not polled yet, or a process that died.
    if (qp->probe_since == 0) qp->probe_since = now;
    if (limit != 0 && now - qp->probe_since > limit) {
        qp->probe_since = now;
        if (!soft_peer_alive(qp->peer)) return IBV_WC_RETRY_EXC_ERR;
    }
    return IBV_WC_SUCCESS;
}

void soft_requester_progress(struct soft_qp *qp) {
    if (qp->state != IBV_QPS_RTS) return;
    if (qp->sq_done == qp->sq_head) {
        qp->stall_since = qp->rnr_since = qp->probe_since = 0;
        return;
    }
    int ready = remote_ready(qp);
    while (ready && !qp->halted && qp->sq_exec < qp->sq_head) {
        struct soft_send_wqe *w = &qp->sq[qp->sq_exec % qp->cap.max_send_wr];
        if (!execute(qp, w)) break;
        if (w->status != IBV_WC_SUCCESS) qp->halted = 1;
        qp->sq_exec++;
    }
    while (qp->sq_done < qp->sq_exec) {
        struct soft_send_wqe *w = &qp->sq[qp->sq_done % qp->cap.max_send_wr];
        if (w->status == IBV_WC_SUCCESS) {
            if (remote_acked(qp) < w->seq) break;
            if (atomic_load_explicit(&qp->remote->nak_seq, memory_order_acquire) == w->seq)
                w->status = qp->remote->nak_status;
        }
        qp->rnr_since = qp->probe_since = 0;
        complete(qp, qp->sq_done);
        if (qp->state != IBV_QPS_RTS) return;
    }
    if (qp->sq_done == qp->sq_head) {
        qp->stall_since = qp->rnr_since = qp->probe_since = 0;
        return;
    }
    enum ibv_wc_status status = waiting(qp, ready);
    if (status != IBV_WC_SUCCESS) {
        qp->sq[qp->sq_done % qp->cap.max_send_wr].status = status;
        if (qp->sq_exec == qp->sq_done) qp->sq_exec++;
        complete(qp, qp->sq_done);
    }
}
