// Soft HCA completion queues: a fixed ring of `cqe` entries. A completion that finds the ring
// full overruns the CQ: the QPs using it go to ERROR and every later poll fails with EOVERFLOW.
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ibv_cq *soft_create_cq(struct ibv_context *context, int cqe, void *cq_context,
                              struct ibv_comp_channel *channel, int comp_vector) {
    struct soft_hca *hca = soft_hca_of(context);
    if (cqe < 1 || cqe > SOFT_MAX_CQE) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: CQ depth %d is outside 1...%d", hca->device.name, cqe, SOFT_MAX_CQE);
        return NULL;
    }
    if (channel != NULL || comp_vector != 0) {
        hfr_verbs_set_error(EOPNOTSUPP, "soft HCA %s: completion channels are not supported (poll the CQ)", hca->device.name);
        return NULL;
    }
    struct soft_cq *cq = calloc(1, sizeof *cq);
    struct soft_cqe *ring = calloc((size_t)cqe, sizeof *ring);
    if (cq == NULL || ring == NULL) {
        free(cq);
        free(ring);
        hfr_verbs_set_error(ENOMEM, "soft HCA %s: out of memory for a CQ of %d", hca->device.name, cqe);
        return NULL;
    }
    cq->hca = hca;
    cq->ring = ring;
    cq->capacity = (uint32_t)cqe;
    cq->cq.context = context;
    cq->cq.cq_context = cq_context;
    cq->cq.cqe = cqe;
    pthread_mutex_init(&cq->cq.mutex, NULL);
    pthread_cond_init(&cq->cq.cond, NULL);
    pthread_mutex_lock(&hca->lock);
    cq->cq.handle = hca->cqs++;
    pthread_mutex_unlock(&hca->lock);
    return &cq->cq;
}

int soft_destroy_cq(struct ibv_cq *ibcq) {
    struct soft_cq *cq = SOFT_CONTAINER(ibcq, struct soft_cq, cq);
    struct soft_hca *hca = cq->hca;
    pthread_mutex_lock(&hca->lock);
    if (cq->users != 0) {
        hfr_verbs_set_error(EBUSY, "soft HCA %s: the CQ is still used by %u QPs", hca->device.name, cq->users);
        pthread_mutex_unlock(&hca->lock);
        return EBUSY;
    }
    hca->cqs--;
    pthread_mutex_unlock(&hca->lock);
    pthread_mutex_destroy(&ibcq->mutex);
    pthread_cond_destroy(&ibcq->cond);
    free(cq->ring);
    free(cq);
    return 0;
}

void soft_cq_push(struct soft_cq *cq, struct soft_qp *qp, uint64_t wq_index, int from_send, const struct ibv_wc *wc) {
    if (cq->overrun) return;
    if (cq->tail - cq->head == cq->capacity) {
        cq->overrun = 1;
        struct soft_hca *hca = cq->hca;
        for (uint32_t i = 0; i <= hca->qp_high && i < SOFT_MAX_QP; i++) {
            struct soft_qp *q = hca->qps[i];
            if (q != NULL && (q->send_cq == cq || q->recv_cq == cq)) soft_qp_to_error(q);
        }
        return;
    }
    struct soft_cqe *e = &cq->ring[cq->tail % cq->capacity];
    e->wc = *wc;
    e->qp = qp;
    e->wq_index = wq_index;
    e->from_send = from_send;
    cq->tail++;
}

// Drops the completions of a QP being destroyed or reset (as the real drivers clean the CQ).
void soft_cq_forget(struct soft_cq *cq, const struct soft_qp *qp) {
    uint64_t kept = cq->head;
    for (uint64_t i = cq->head; i < cq->tail; i++) {
        struct soft_cqe *e = &cq->ring[i % cq->capacity];
        if (e->qp == qp) continue;
        if (kept != i) cq->ring[kept % cq->capacity] = *e;
        kept++;
    }
    cq->tail = kept;
}

int soft_poll_cq(struct ibv_cq *ibcq, int num_entries, struct ibv_wc *wc) {
    struct soft_cq *cq = SOFT_CONTAINER(ibcq, struct soft_cq, cq);
    struct soft_hca *hca = cq->hca;
    pthread_mutex_lock(&hca->lock);
    if (!cq->overrun) soft_progress(hca);
    if (cq->overrun) {
        pthread_mutex_unlock(&hca->lock);
        hfr_verbs_set_error(EOVERFLOW, "soft HCA %s: the CQ of depth %u overran: more completions were due than it holds",
                            hca->device.name, cq->capacity);
        return -1;
    }
    int n = 0;
    while (n < num_entries && cq->head < cq->tail) {
        struct soft_cqe *e = &cq->ring[cq->head % cq->capacity];
        wc[n++] = e->wc;
        // A polled completion frees its work request's slot, and for a send queue the slots of
        // the unsignaled ones before it.
        if (e->qp != NULL) {
            if (e->from_send) { if (e->qp->sq_tail < e->wq_index + 1) e->qp->sq_tail = e->wq_index + 1; }
            else if (e->qp->rq_tail < e->wq_index + 1) e->qp->rq_tail = e->wq_index + 1;
        }
        cq->head++;
    }
    pthread_mutex_unlock(&hca->lock);
    return n;
}
