// Soft HCA queue pairs (RC only): creation, destruction, queries, and the ERROR and RESET
// transitions that flush or drop their work requests.
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cap_ok(struct soft_hca *hca, const struct ibv_qp_cap *c) {
    if (c->max_send_wr < 1 || c->max_send_wr > SOFT_MAX_QP_WR || c->max_recv_wr > SOFT_MAX_QP_WR) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: queue depths %u (send) and %u (receive) must be within 1...%u and 0...%u",
                            hca->device.name, c->max_send_wr, c->max_recv_wr, SOFT_MAX_QP_WR, SOFT_MAX_QP_WR);
        return 0;
    }
    if (c->max_send_sge > SOFT_MAX_SGE || c->max_recv_sge > SOFT_MAX_SGE || c->max_inline_data > SOFT_MAX_INLINE) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: at most %u scatter/gather entries and %u inline bytes per work request",
                            hca->device.name, SOFT_MAX_SGE, SOFT_MAX_INLINE);
        return 0;
    }
    return 1;
}

struct ibv_qp *soft_create_qp(struct ibv_pd *ibpd, struct ibv_qp_init_attr *attr) {
    struct soft_pd *pd = SOFT_CONTAINER(ibpd, struct soft_pd, pd);
    struct soft_hca *hca = pd->hca;
    if (attr->qp_type != IBV_QPT_RC || attr->srq != NULL) {
        hfr_verbs_set_error(EOPNOTSUPP, "soft HCA %s implements RC queue pairs without SRQ only", hca->device.name);
        return NULL;
    }
    if (attr->send_cq == NULL || attr->recv_cq == NULL ||
        soft_hca_of(attr->send_cq->context) != hca || soft_hca_of(attr->recv_cq->context) != hca) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: a QP needs a send and a receive CQ of the same HCA", hca->device.name);
        return NULL;
    }
    if (!cap_ok(hca, &attr->cap)) return NULL;
    struct soft_qp *qp = calloc(1, sizeof *qp);
    struct soft_send_wqe *sq = calloc(attr->cap.max_send_wr, sizeof *sq);
    struct soft_recv_wqe *rq = calloc(attr->cap.max_recv_wr ? attr->cap.max_recv_wr : 1, sizeof *rq);
    if (qp == NULL || sq == NULL || rq == NULL) {
        free(qp); free(sq); free(rq);
        hfr_verbs_set_error(ENOMEM, "soft HCA %s: out of memory for a QP", hca->device.name);
        return NULL;
    }
    pthread_mutex_lock(&hca->lock);
    uint32_t index = SOFT_MAX_QP;
    for (uint32_t i = 0; i < SOFT_MAX_QP; i++) {
        uint32_t k = (hca->qp_cursor + i) % SOFT_MAX_QP;
        if (hca->qps[k] == NULL) { index = k; break; }
    }
    if (index == SOFT_MAX_QP) {
        pthread_mutex_unlock(&hca->lock);
        free(qp); free(sq); free(rq);
        hfr_verbs_set_error(ENOMEM, "soft HCA %s: all %u QPs are in use", hca->device.name, SOFT_MAX_QP);
        return NULL;
    }
    hca->qp_cursor = index + 1;
    hca->qp_generation = (hca->qp_generation + 1) & 0xffff;
    if (hca->qp_generation == 0) hca->qp_generation = 1;
    uint32_t qpn = (hca->qp_generation << 8) | index;
    qp->hca = hca;
    qp->pd = pd;
    qp->send_cq = SOFT_CONTAINER(attr->send_cq, struct soft_cq, cq);
    qp->recv_cq = SOFT_CONTAINER(attr->recv_cq, struct soft_cq, cq);
    qp->index = index;
    qp->cap = attr->cap;
    qp->sq_sig_all = attr->sq_sig_all;
    qp->state = IBV_QPS_RESET;
    qp->sq = sq;
    qp->rq = rq;
    qp->shared = &hca->seg->qp[index];
    struct soft_qp_shared *sh = qp->shared;
    atomic_store(&sh->state, IBV_QPS_RESET);
    atomic_store(&sh->peer_slot, 0);
    atomic_store(&sh->peer_qpn, 0);
    atomic_store(&sh->nak_seq, 0);
    atomic_store(&sh->rnr_seq, 0);
    atomic_store(&sh->tail, 0);
    atomic_store(&sh->head, 0);
    sh->pd = ibpd->handle;
    sh->access = 0;
    atomic_store_explicit(&sh->qpn, qpn, memory_order_release);
    qp->qp.context = ibpd->context;
    qp->qp.qp_context = attr->qp_context;
    qp->qp.pd = ibpd;
    qp->qp.send_cq = attr->send_cq;
    qp->qp.recv_cq = attr->recv_cq;
    qp->qp.handle = index;
    qp->qp.qp_num = qpn;
    qp->qp.state = IBV_QPS_RESET;
    qp->qp.qp_type = IBV_QPT_RC;
    pthread_mutex_init(&qp->qp.mutex, NULL);
    pthread_cond_init(&qp->qp.cond, NULL);
    hca->qps[index] = qp;
    if (index > hca->qp_high) hca->qp_high = index;
    hca->qp_count++;
    pd->users++;
    qp->send_cq->users++;
    qp->recv_cq->users++;
    pthread_mutex_unlock(&hca->lock);
    return &qp->qp;
}

int soft_destroy_qp(struct ibv_qp *ibqp) {
    struct soft_qp *qp = SOFT_CONTAINER(ibqp, struct soft_qp, qp);
    struct soft_hca *hca = qp->hca;
    pthread_mutex_lock(&hca->lock);
    struct soft_qp_shared *sh = qp->shared;
    atomic_store_explicit(&sh->state, IBV_QPS_RESET, memory_order_release);
    atomic_store(&sh->peer_slot, 0);
    atomic_store(&sh->peer_qpn, 0);
    soft_cq_forget(qp->send_cq, qp);
    soft_cq_forget(qp->recv_cq, qp);
    hca->qps[qp->index] = NULL;
    hca->qp_count--;
    qp->pd->users--;
    qp->send_cq->users--;
    qp->recv_cq->users--;
    pthread_mutex_unlock(&hca->lock);
    pthread_mutex_destroy(&ibqp->mutex);
    pthread_cond_destroy(&ibqp->cond);
    free(qp->sq);
    free(qp->rq);
    free(qp);
    return 0;
}

static void set_state(struct soft_qp *qp, enum ibv_qp_state state) {
    qp->state = state;
    qp->qp.state = state;
    atomic_store_explicit(&qp->shared->state, state, memory_order_release);
}

void soft_qp_flush_send(struct soft_qp *qp, uint64_t i) {
    struct soft_send_wqe *w = &qp->sq[i % qp->cap.max_send_wr];
    struct ibv_wc wc = {0};
    wc.wr_id = w->wr_id;
    wc.status = IBV_WC_WR_FLUSH_ERR;
    wc.opcode = w->opcode == IBV_WR_SEND || w->opcode == IBV_WR_SEND_WITH_IMM ? IBV_WC_SEND : IBV_WC_RDMA_WRITE;
    wc.qp_num = qp->qp.qp_num;
    soft_cq_push(qp->send_cq, qp, i, 1, &wc);
}

void soft_qp_flush_recv(struct soft_qp *qp, uint64_t i) {
    struct ibv_wc wc = {0};
    wc.wr_id = qp->rq[i % qp->cap.max_recv_wr].wr_id;
    wc.status = IBV_WC_WR_FLUSH_ERR;
    wc.opcode = IBV_WC_RECV;
    wc.qp_num = qp->qp.qp_num;
    soft_cq_push(qp->recv_cq, qp, i, 0, &wc);
}

// Every outstanding work request completes with IBV_WC_WR_FLUSH_ERR, signaled or not.
void soft_qp_to_error(struct soft_qp *qp) {
    if (qp->state == IBV_QPS_ERR) return;
    set_state(qp, IBV_QPS_ERR);
    for (uint64_t i = qp->sq_done; i < qp->sq_head; i++) soft_qp_flush_send(qp, i);
    qp->sq_exec = qp->sq_done = qp->sq_head;
    for (uint64_t i = qp->rq_done; i < qp->rq_head; i++) soft_qp_flush_recv(qp, i);
    qp->rq_done = qp->rq_head;
}

// RESET drops the queues without completions and forgets the connection.
void soft_qp_reset(struct soft_qp *qp) {
    struct soft_qp_shared *sh = qp->shared;
    set_state(qp, IBV_QPS_RESET);
    atomic_store(&sh->peer_slot, 0);
    atomic_store(&sh->peer_qpn, 0);
    atomic_store(&sh->nak_seq, 0);
    atomic_store(&sh->rnr_seq, 0);
    atomic_store(&sh->tail, 0);
    atomic_store(&sh->head, 0);
    sh->access = 0;
    soft_cq_forget(qp->send_cq, qp);
    soft_cq_forget(qp->recv_cq, qp);
    qp->sq_head = qp->sq_exec = qp->sq_done = qp->sq_tail = 0;
    qp->rq_head = qp->rq_done = qp->rq_tail = 0;
    qp->halted = 0;
    qp->stall_since = qp->rnr_since = qp->probe_since = 0;
    qp->peer = NULL;
    qp->remote = NULL;
    qp->peer_pid = 0;
    qp->peer_incarnation = 0;
}

int soft_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask, struct ibv_qp_init_attr *init) {
    (void)mask;  // every attribute is filled, as the drivers do
    struct soft_qp *qp = SOFT_CONTAINER(ibqp, struct soft_qp, qp);
    struct soft_hca *hca = qp->hca;
    pthread_mutex_lock(&hca->lock);
    soft_progress(hca);
    memset(attr, 0, sizeof *attr);
    attr->qp_state = qp->state;
    attr->cur_qp_state = qp->state;
    attr->path_mtu = qp->path_mtu;
    attr->rq_psn = qp->rq_psn;
    attr->sq_psn = qp->sq_psn;
    attr->dest_qp_num = qp->dest_qpn;
    attr->qp_access_flags = qp->access;
    attr->cap = qp->cap;
    attr->ah_attr = qp->ah;
    attr->pkey_index = qp->pkey_index;
    attr->max_rd_atomic = qp->max_rd_atomic;
    attr->max_dest_rd_atomic = qp->max_dest_rd_atomic;
    attr->min_rnr_timer = qp->min_rnr_timer;
    attr->port_num = qp->port;
    attr->timeout = qp->timeout;
    attr->retry_cnt = qp->retry_cnt;
    attr->rnr_retry = qp->rnr_retry;
    if (init != NULL) {
        memset(init, 0, sizeof *init);
        init->qp_context = ibqp->qp_context;
        init->send_cq = ibqp->send_cq;
        init->recv_cq = ibqp->recv_cq;
        init->cap = qp->cap;
        init->qp_type = IBV_QPT_RC;
        init->sq_sig_all = qp->sq_sig_all;
    }
    pthread_mutex_unlock(&hca->lock);
    return 0;
}

// The HCA's work: each QP first answers its requester (so that peers see acknowledgements),
// then executes and completes its own requests.
void soft_progress(struct soft_hca *hca) {
    for (uint32_t i = 0; i <= hca->qp_high && i < SOFT_MAX_QP; i++) {
        struct soft_qp *qp = hca->qps[i];
        if (qp == NULL) continue;
        soft_responder_progress(qp);
        soft_requester_progress(qp);
    }
}
