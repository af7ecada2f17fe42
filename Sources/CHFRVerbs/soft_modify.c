// The RC queue-pair state machine of ibv_modify_qp: which transitions are allowed, which
// attributes each requires or allows (the kernel's qp_state_table for RC), and their checks.
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

struct transition { int valid, required, optional; };

static struct transition transition_of(enum ibv_qp_state from, enum ibv_qp_state to) {
    struct transition t = {0, 0, 0};
    if (to == IBV_QPS_RESET || to == IBV_QPS_ERR) { t.valid = 1; return t; }
    if (from == IBV_QPS_RESET && to == IBV_QPS_INIT) {
        t = (struct transition){1, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, 0};
    } else if (from == IBV_QPS_INIT && to == IBV_QPS_INIT) {
        t = (struct transition){1, 0, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS};
    } else if (from == IBV_QPS_INIT && to == IBV_QPS_RTR) {
        t = (struct transition){1, IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                                   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
                                IBV_QP_ACCESS_FLAGS | IBV_QP_PKEY_INDEX};
    } else if (from == IBV_QPS_RTR && to == IBV_QPS_RTS) {
        t = (struct transition){1, IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                                   IBV_QP_TIMEOUT,
                                IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS | IBV_QP_MIN_RNR_TIMER};
    } else if (from == IBV_QPS_RTS && to == IBV_QPS_RTS) {
        t = (struct transition){1, 0, IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS | IBV_QP_MIN_RNR_TIMER};
    }
    return t;
}

static int refuse(struct soft_qp *qp, int err, const char *what) {
    hfr_verbs_set_error(err, "soft HCA %s: ibv_modify_qp of QP %u in %s: %s", qp->hca->device.name, qp->qp.qp_num,
                        soft_state_name(qp->state), what);
    return err;
}

// Finds the responder the address vector names and checks that its memory can be written.
static int resolve(struct soft_qp *qp, const struct ibv_ah_attr *ah) {
    if (ah->port_num != 1) return refuse(qp, EINVAL, "the address vector's port is not 1");
    uint32_t slot;
    if (ah->is_global) {
        int len = soft_link_layer == IBV_LINK_LAYER_ETHERNET ? 2 : 1;
        if (ah->grh.sgid_index >= len) return refuse(qp, EINVAL, "the source GID index is outside the GID table");
        slot = soft_slot_of_gid(&ah->grh.dgid);
        if (slot == 0) return refuse(qp, EHOSTUNREACH, "the destination GID is not a soft HCA's");
    } else {
        if (soft_link_layer == IBV_LINK_LAYER_ETHERNET)
            return refuse(qp, EINVAL, "RoCE needs a global route header (is_global = 1 and a destination GID)");
        slot = ah->dlid;
        if (slot == 0 || slot > SOFT_MAX_SLOT) return refuse(qp, EINVAL, "the destination LID is not a unicast LID");
    }
    struct soft_peer *peer = soft_peer_map(qp->hca, slot);
    if (peer == NULL) return errno;
    if (soft_peer_probe(qp->hca, peer) != 0) return errno;
    qp->peer = peer;
    qp->peer_pid = atomic_load(&peer->seg->pid);
    qp->peer_incarnation = peer->seg->incarnation;
    return 0;
}

static int check_values(struct soft_qp *qp, const struct ibv_qp_attr *a, int mask) {
    if ((mask & IBV_QP_PORT) && a->port_num != 1) return refuse(qp, EINVAL, "port is not 1");
    if ((mask & IBV_QP_PKEY_INDEX) && a->pkey_index != 0) return refuse(qp, EINVAL, "the P_Key table has one entry, index 0");
    if ((mask & IBV_QP_ACCESS_FLAGS) &&
        (a->qp_access_flags & ~(unsigned)(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)))
        return refuse(qp, EINVAL, "unknown QP access flags");
    if ((mask & IBV_QP_PATH_MTU) && (a->path_mtu < IBV_MTU_256 || a->path_mtu > IBV_MTU_4096))
        return refuse(qp, EINVAL, "the path MTU is not one of 256...4096 (the port's active MTU is 4096)");
    if ((mask & IBV_QP_DEST_QPN) && a->dest_qp_num > 0xffffff) return refuse(qp, EINVAL, "the destination QPN has more than 24 bits");
    if ((mask & IBV_QP_MAX_DEST_RD_ATOMIC) && a->max_dest_rd_atomic > SOFT_MAX_RD_ATOMIC) return refuse(qp, EINVAL, "max_dest_rd_atomic is above 16");
    if ((mask & IBV_QP_MAX_QP_RD_ATOMIC) && a->max_rd_atomic > SOFT_MAX_RD_ATOMIC) return refuse(qp, EINVAL, "max_rd_atomic is above 16");
    if ((mask & IBV_QP_MIN_RNR_TIMER) && a->min_rnr_timer > 31) return refuse(qp, EINVAL, "min_rnr_timer is above 31");
    if ((mask & IBV_QP_TIMEOUT) && a->timeout > 31) return refuse(qp, EINVAL, "timeout is above 31");
    if ((mask & IBV_QP_RETRY_CNT) && a->retry_cnt > 7) return refuse(qp, EINVAL, "retry_cnt is above 7");
    if ((mask & IBV_QP_RNR_RETRY) && a->rnr_retry > 7) return refuse(qp, EINVAL, "rnr_retry is above 7");
    if ((mask & IBV_QP_CUR_STATE) && a->cur_qp_state != qp->state) return refuse(qp, EINVAL, "cur_qp_state is not the current state");
    return 0;
}

static void apply(struct soft_qp *qp, const struct ibv_qp_attr *a, int mask) {
    struct soft_qp_shared *sh = qp->shared;
    if (mask & IBV_QP_PORT) qp->port = a->port_num;
    if (mask & IBV_QP_PKEY_INDEX) qp->pkey_index = a->pkey_index;
    if (mask & IBV_QP_ACCESS_FLAGS) { qp->access = a->qp_access_flags; sh->access = a->qp_access_flags; }
    if (mask & IBV_QP_AV) qp->ah = a->ah_attr;
    if (mask & IBV_QP_PATH_MTU) qp->path_mtu = a->path_mtu;
    if (mask & IBV_QP_DEST_QPN) qp->dest_qpn = a->dest_qp_num;
    if (mask & IBV_QP_RQ_PSN) { qp->rq_psn = a->rq_psn & 0xffffff; sh->rq_psn = qp->rq_psn; }
    if (mask & IBV_QP_SQ_PSN) qp->sq_psn = a->sq_psn & 0xffffff;
    if (mask & IBV_QP_MAX_DEST_RD_ATOMIC) qp->max_dest_rd_atomic = a->max_dest_rd_atomic;
    if (mask & IBV_QP_MAX_QP_RD_ATOMIC) qp->max_rd_atomic = a->max_rd_atomic;
    if (mask & IBV_QP_MIN_RNR_TIMER) { qp->min_rnr_timer = a->min_rnr_timer; sh->min_rnr_timer = a->min_rnr_timer; }
    if (mask & IBV_QP_TIMEOUT) qp->timeout = a->timeout;
    if (mask & IBV_QP_RETRY_CNT) qp->retry_cnt = a->retry_cnt;
    if (mask & IBV_QP_RNR_RETRY) qp->rnr_retry = a->rnr_retry;
}

int soft_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask) {
    struct soft_qp *qp = SOFT_CONTAINER(ibqp, struct soft_qp, qp);
    struct soft_hca *hca = qp->hca;
    pthread_mutex_lock(&hca->lock);
    soft_progress(hca);
    enum ibv_qp_state to = (mask & IBV_QP_STATE) ? attr->qp_state : qp->state;
    struct transition t = transition_of(qp->state, to);
    int err = 0;
    if (to == IBV_QPS_SQD || to == IBV_QPS_SQE) {
        err = refuse(qp, EOPNOTSUPP, "the soft device has no SQD or SQE state");
    } else if (!t.valid || to > IBV_QPS_ERR) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: QP %u cannot go from %s to %s", hca->device.name, qp->qp.qp_num,
                            soft_state_name(qp->state), soft_state_name(to));
        err = EINVAL;
    } else if ((mask & t.required) != t.required) {
        err = refuse(qp, EINVAL, "an attribute the transition requires is missing from the mask");
    } else if (mask & ~(t.required | t.optional | IBV_QP_STATE)) {
        err = refuse(qp, EINVAL, "the mask has an attribute the transition does not take");
    } else {
        err = check_values(qp, attr, mask);
    }
    if (err == 0 && to == IBV_QPS_RTR) {
        err = resolve(qp, &attr->ah_attr);
        if (err == 0) qp->remote = &qp->peer->seg->qp[attr->dest_qp_num % SOFT_MAX_QP];
    }
    if (err == 0) {
        if (to == IBV_QPS_RESET) {
            soft_qp_reset(qp);
        } else if (to == IBV_QPS_ERR) {
            soft_qp_to_error(qp);
        } else {
            apply(qp, attr, mask);
            if (to == IBV_QPS_RTR) {
                // The requester it accepts messages from: the QP it connects to.
                atomic_store(&qp->shared->peer_slot, qp->peer->slot);
                atomic_store(&qp->shared->peer_qpn, qp->dest_qpn);
            }
            qp->state = to;
            qp->qp.state = to;
            atomic_store_explicit(&qp->shared->state, to, memory_order_release);
        }
    }
    pthread_mutex_unlock(&hca->lock);
    return err;
}
