// ibv_post_send / ibv_post_recv on a soft HCA: the checks a real HCA makes when a work request
// is posted, then the work request is queued (copied, no allocation) and the QP progressed.
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <string.h>

static int refuse(struct soft_qp *qp, int err, const char *what) {
    hfr_verbs_set_error(err, "soft HCA %s: QP %u in %s: %s", qp->hca->device.name, qp->qp.qp_num,
                        soft_state_name(qp->state), what);
    return err;
}

static int check_send(struct soft_qp *qp, const struct ibv_send_wr *wr, uint64_t *length) {
    if (qp->state == IBV_QPS_RESET || qp->state == IBV_QPS_INIT || qp->state == IBV_QPS_RTR)
        return refuse(qp, EINVAL, "posting a send needs the QP in RTS");
    if (wr->opcode != IBV_WR_RDMA_WRITE && wr->opcode != IBV_WR_RDMA_WRITE_WITH_IMM &&
        wr->opcode != IBV_WR_SEND && wr->opcode != IBV_WR_SEND_WITH_IMM)
        return refuse(qp, EINVAL, "the soft device supports RDMA_WRITE, RDMA_WRITE_WITH_IMM, SEND and SEND_WITH_IMM");
    if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_send_sge)
        return refuse(qp, EINVAL, "more scatter/gather entries than the QP's max_send_sge");
    uint64_t total = 0;
    for (int i = 0; i < wr->num_sge; i++) total += wr->sg_list[i].length;
    if (total > SOFT_MAX_MSG) return refuse(qp, EINVAL, "message longer than 2 GiB");
    if ((wr->send_flags & IBV_SEND_INLINE) && total > qp->cap.max_inline_data)
        return refuse(qp, EINVAL, "inline data longer than the QP's max_inline_data");
    if (qp->sq_head - qp->sq_tail == qp->cap.max_send_wr)
        return refuse(qp, ENOMEM, "the send queue is full (work requests not yet completed, or whose completions are not yet polled)");
    *length = total;
    return 0;
}

int soft_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr, struct ibv_send_wr **bad) {
    struct soft_qp *qp = SOFT_CONTAINER(ibqp, struct soft_qp, qp);
    struct soft_hca *hca = qp->hca;
    int err = 0;
    pthread_mutex_lock(&hca->lock);
    for (; wr != NULL; wr = wr->next) {
        uint64_t length = 0;
        if ((err = check_send(qp, wr, &length)) != 0) break;
        if (hca->fail_after >= 0 && hca->posted++ >= hca->fail_after && !hca->failed) soft_fail_hca(hca);
        if (hca->failed) soft_qp_to_error(qp);
        struct soft_send_wqe *w = &qp->sq[qp->sq_head % qp->cap.max_send_wr];
        w->wr_id = wr->wr_id;
        w->opcode = wr->opcode;
        w->signaled = qp->sq_sig_all || (wr->send_flags & IBV_SEND_SIGNALED);
        w->imm = wr->imm_data;
        w->length = (uint32_t)length;
        w->status = IBV_WC_SUCCESS;
        w->seq = 0;
        w->rkey = wr->wr.rdma.rkey;
        w->remote_addr = wr->wr.rdma.remote_addr;
        w->num_sge = 0;
        w->inline_length = 0;
        if (wr->send_flags & IBV_SEND_INLINE) {
            for (int i = 0; i < wr->num_sge; i++) {
                memcpy(w->inline_data + w->inline_length, (void *)(uintptr_t)wr->sg_list[i].addr, wr->sg_list[i].length);
                w->inline_length += wr->sg_list[i].length;
            }
        } else {
            w->num_sge = (uint32_t)wr->num_sge;
            memcpy(w->sge, wr->sg_list, (size_t)wr->num_sge * sizeof *w->sge);
        }
        qp->sq_head++;
        if (qp->state == IBV_QPS_ERR) {
            // Accepted and flushed, as on a real HCA.
            soft_qp_flush_send(qp, qp->sq_head - 1);
            qp->sq_done = qp->sq_exec = qp->sq_head;
        }
    }
    soft_requester_progress(qp);
    pthread_mutex_unlock(&hca->lock);
    if (err != 0 && bad != NULL) *bad = wr;
    return err;
}

int soft_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad) {
    struct soft_qp *qp = SOFT_CONTAINER(ibqp, struct soft_qp, qp);
    struct soft_hca *hca = qp->hca;
    int err = 0;
    pthread_mutex_lock(&hca->lock);
    for (; wr != NULL; wr = wr->next) {
        if (qp->state == IBV_QPS_RESET) { err = refuse(qp, EINVAL, "posting a receive needs the QP in INIT or later"); break; }
        if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_recv_sge) {
            err = refuse(qp, EINVAL, "more scatter/gather entries than the QP's max_recv_sge");
            break;
        }
        if (qp->rq_head - qp->rq_tail == qp->cap.max_recv_wr) {
            err = refuse(qp, ENOMEM, "the receive queue is full");
            break;
        }
        struct soft_recv_wqe *r = &qp->rq[qp->rq_head % qp->cap.max_recv_wr];
        r->wr_id = wr->wr_id;
        r->num_sge = (uint32_t)wr->num_sge;
        memcpy(r->sge, wr->sg_list, (size_t)wr->num_sge * sizeof *r->sge);
        qp->rq_head++;
        if (qp->state == IBV_QPS_ERR) {
            soft_qp_flush_recv(qp, qp->rq_head - 1);
            qp->rq_done = qp->rq_head;
        }
    }
    soft_responder_progress(qp);
    pthread_mutex_unlock(&hca->lock);
    if (err != 0 && bad != NULL) *bad = wr;
    return err;
}
