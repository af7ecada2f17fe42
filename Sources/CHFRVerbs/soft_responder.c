// The responder side of a soft RC QP: processes the messages its requester appended, in order.
// A WRITE needs nothing more (the data is already in place); a WRITE_WITH_IMM or SEND consumes
// the next receive work request and completes it; with no receive posted the message waits
// (receive-not-ready) until one is. The ring's head is the acknowledgement the requester reads.
#define _GNU_SOURCE
#include "soft.h"
#include <string.h>
#include <sys/uio.h>

// Copies a SEND's payload into the receive work request's buffers. On failure returns the
// receive's status and sets *nak to the status the requester's work request completes with.
static enum ibv_wc_status deliver(struct soft_qp *qp, const struct soft_recv_wqe *r, const struct soft_message *m,
                                  enum ibv_wc_status *nak) {
    struct iovec local[SOFT_MAX_SGE];
    unsigned long n = 0;
    uint64_t remaining = m->length;
    for (uint32_t i = 0; i < r->num_sge && remaining > 0; i++) {
        struct ibv_sge sge = r->sge[i];
        if (sge.length > remaining) sge.length = (uint32_t)remaining;
        if (!soft_local_sge_ok(qp->hca, qp->pd->pd.handle, &sge, IBV_ACCESS_LOCAL_WRITE)) {
            *nak = IBV_WC_REM_OP_ERR;
            return IBV_WC_LOC_PROT_ERR;
        }
        local[n++] = (struct iovec){(void *)(uintptr_t)sge.addr, sge.length};
        remaining -= sge.length;
    }
    if (remaining > 0) {
        *nak = IBV_WC_REM_INV_REQ_ERR;
        return IBV_WC_LOC_LEN_ERR;
    }
    if (m->inline_length > 0) {
        const uint8_t *p = m->inline_data;
        for (unsigned long i = 0; i < n; i++) {
            memcpy(local[i].iov_base, p, local[i].iov_len);
            p += local[i].iov_len;
        }
        return IBV_WC_SUCCESS;
    }
    struct iovec remote[SOFT_MAX_SGE];
    for (uint32_t i = 0; i < m->num_sge; i++) remote[i] = (struct iovec){(void *)(uintptr_t)m->sge_addr[i], m->sge_length[i]};
    if (m->length == 0 || process_vm_readv(qp->peer_pid, local, n, remote, m->num_sge, 0) == (ssize_t)m->length)
        return IBV_WC_SUCCESS;
    *nak = IBV_WC_LOC_PROT_ERR;  // the requester's buffer could not be read
    return IBV_WC_REM_INV_REQ_ERR;
}

void soft_responder_progress(struct soft_qp *qp) {
    if (qp->state != IBV_QPS_RTR && qp->state != IBV_QPS_RTS) return;
    struct soft_qp_shared *sh = qp->shared;
    uint64_t head = atomic_load_explicit(&sh->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
    for (; head < tail; atomic_store_explicit(&sh->head, ++head, memory_order_release)) {
        const struct soft_message *m = &sh->ring[head % SOFT_RING];
        if (m->seq != head + 1 || m->kind == SOFT_MSG_ACCESS_ERROR) {
            // A remote access violation (or a ring that is not in order) breaks the responder too.
            atomic_store_explicit(&sh->head, head + 1, memory_order_release);
            soft_qp_to_error(qp);
            return;
        }
        if (m->kind == SOFT_MSG_WRITE) continue;
        if (qp->rq_done == qp->rq_head) {
            atomic_store_explicit(&sh->rnr_seq, m->seq, memory_order_release);
            return;
        }
        uint64_t index = qp->rq_done++;
        const struct soft_recv_wqe *r = &qp->rq[index % qp->cap.max_recv_wr];
        enum ibv_wc_status nak = IBV_WC_SUCCESS, status = IBV_WC_SUCCESS;
        if (m->kind == SOFT_MSG_SEND) status = deliver(qp, r, m, &nak);
        struct ibv_wc wc = {0};
        wc.wr_id = r->wr_id;
        wc.status = status;
        wc.opcode = m->kind == SOFT_MSG_WRITE_IMM ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
        wc.byte_len = m->length;
        if (m->with_imm) {
            wc.imm_data = m->imm;
            wc.wc_flags = IBV_WC_WITH_IMM;
        }
        wc.qp_num = qp->qp.qp_num;
        wc.src_qp = qp->dest_qpn;
        wc.slid = soft_link_layer == IBV_LINK_LAYER_INFINIBAND ? (uint16_t)qp->peer->slot : 0;
        atomic_store_explicit(&sh->rnr_seq, 0, memory_order_relaxed);
        soft_cq_push(qp->recv_cq, qp, index, 0, &wc);
        // An overrun receive CQ broke the QP: the message is not acknowledged.
        if (qp->state == IBV_QPS_ERR) return;
        if (status != IBV_WC_SUCCESS) {
            sh->nak_status = nak;
            atomic_store_explicit(&sh->nak_seq, m->seq, memory_order_release);
            atomic_store_explicit(&sh->head, head + 1, memory_order_release);
            soft_qp_to_error(qp);
            return;
        }
    }
}
