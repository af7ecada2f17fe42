// Soft HCAs: the device list, open/close, and the device, port and GID queries.
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t soft_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

const char *soft_state_name(enum ibv_qp_state state) {
    switch (state) {
    case IBV_QPS_RESET: return "RESET";
    case IBV_QPS_INIT: return "INIT";
    case IBV_QPS_RTR: return "RTR";
    case IBV_QPS_RTS: return "RTS";
    case IBV_QPS_SQD: return "SQD";
    case IBV_QPS_SQE: return "SQE";
    case IBV_QPS_ERR: return "ERROR";
    default: return "UNKNOWN";
    }
}

// GID 0: fe80::6866:7273:0000:<slot> (link-local; RoCE v1 on Ethernet, the port GID on IB).
// GID 1 (Ethernet only): ::ffff:127.0.<slot>, an IPv4-mapped RoCE v2 GID.
void soft_gid(uint32_t slot, int index, union ibv_gid *gid) {
    memset(gid, 0, sizeof *gid);
    uint8_t *b = gid->raw;
    if (index == 0) {
        b[0] = 0xfe; b[1] = 0x80;
        b[8] = 'h'; b[9] = 'f'; b[10] = 'r'; b[11] = 's';
    } else {
        b[10] = 0xff; b[11] = 0xff; b[12] = 127;
    }
    b[14] = (uint8_t)(slot >> 8);
    b[15] = (uint8_t)slot;
}

uint32_t soft_slot_of_gid(const union ibv_gid *gid) {
    union ibv_gid want;
    uint32_t slot = ((uint32_t)gid->raw[14] << 8) | gid->raw[15];
    if (slot == 0 || slot > SOFT_MAX_SLOT) return 0;
    for (int i = 0; i < 2; i++) {
        soft_gid(slot, i, &want);
        if (memcmp(want.raw, gid->raw, 16) == 0) return slot;
    }
    return 0;
}

struct ibv_device **soft_get_device_list(int *num) {
    struct ibv_device **list = calloc((size_t)soft_hca_count + 1, sizeof *list);
    if (list == NULL) return NULL;
    for (int i = 0; i < soft_hca_count; i++) list[i] = &soft_hcas[i].device;
    if (num != NULL) *num = soft_hca_count;
    return list;
}

void soft_free_device_list(struct ibv_device **list) { free(list); }

const char *soft_get_device_name(struct ibv_device *device) { return device->name; }

struct ibv_context *soft_open_device(struct ibv_device *device) {
    struct soft_hca *hca = SOFT_CONTAINER(device, struct soft_hca, device);
    struct soft_context *c = calloc(1, sizeof *c);
    if (c == NULL) { hfr_verbs_set_error(ENOMEM, "soft HCA %s: out of memory", device->name); return NULL; }
    pthread_mutex_lock(&hca->lock);
    if (hca->open_count == 0) {
        if (soft_segment_open(hca) != 0) {
            pthread_mutex_unlock(&hca->lock);
            free(c);
            return NULL;
        }
        long configured = soft_configured_failure(hca);
        if (configured >= 0) { hca->fail_after = configured; hca->posted = 0; }
        hca->failed = 0;
        hca->next_pd = 0;
        hca->qp_high = 0;
        // QP numbers differ from the ones a previous owner of the slot handed out.
        hca->qp_generation = (uint32_t)(hca->seg->incarnation & 0xffff);
    }
    hca->open_count++;
    pthread_mutex_unlock(&hca->lock);
    c->hca = hca;
    c->context.device = device;
    c->context.cmd_fd = -1;
    c->context.async_fd = -1;
    c->context.num_comp_vectors = 1;
    c->context.ops.poll_cq = soft_poll_cq;
    c->context.ops.post_send = soft_post_send;
    c->context.ops.post_recv = soft_post_recv;
    pthread_mutex_init(&c->context.mutex, NULL);
    return &c->context;
}

int soft_close_device(struct ibv_context *context) {
    struct soft_hca *hca = soft_hca_of(context);
    pthread_mutex_lock(&hca->lock);
    if (hca->open_count == 1 && (hca->pds || hca->cqs || hca->qp_count || hca->mrs)) {
        hfr_verbs_set_error(EBUSY, "soft HCA %s: closing it with %u PDs, %u CQs, %u QPs and %u MRs still allocated",
                            hca->device.name, hca->pds, hca->cqs, hca->qp_count, hca->mrs);
        pthread_mutex_unlock(&hca->lock);
        return EBUSY;
    }
    if (--hca->open_count == 0) {
        soft_segment_close(hca);
        hca->fail_after = -1;
        hca->failed = 0;
    }
    pthread_mutex_unlock(&hca->lock);
    pthread_mutex_destroy(&context->mutex);
    free(SOFT_CONTAINER(context, struct soft_context, context));
    return 0;
}

int soft_query_device(struct ibv_context *context, struct ibv_device_attr *attr) {
    struct soft_hca *hca = soft_hca_of(context);
    memset(attr, 0, sizeof *attr);
    snprintf(attr->fw_ver, sizeof attr->fw_ver, "hfr-soft %u", SOFT_VERSION);
    pthread_mutex_lock(&hca->lock);
    uint64_t guid = 0x6866727300000000ull | hca->slot;
    pthread_mutex_unlock(&hca->lock);
    attr->node_guid = __builtin_bswap64(guid);
    attr->sys_image_guid = attr->node_guid;
    attr->max_mr_size = SOFT_MAX_MSG << 8;
    attr->page_size_cap = 4096;
    attr->max_qp = SOFT_MAX_QP;
    attr->max_qp_wr = SOFT_MAX_QP_WR;
    attr->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN;
    attr->max_sge = SOFT_MAX_SGE;
    attr->max_cq = 1 << 16;
    attr->max_cqe = SOFT_MAX_CQE;
    attr->max_mr = SOFT_MAX_MR;
    attr->max_pd = 1 << 16;
    attr->max_qp_rd_atom = SOFT_MAX_RD_ATOMIC;
    attr->max_qp_init_rd_atom = SOFT_MAX_RD_ATOMIC;
    attr->atomic_cap = IBV_ATOMIC_NONE;
    attr->max_pkeys = 1;
    attr->phys_port_cnt = 1;
    return 0;
}

int soft_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr) {
    struct soft_hca *hca = soft_hca_of(context);
    if (port != 1) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s has one port, 1; asked for port %u", hca->device.name, port);
        return EINVAL;
    }
    memset(attr, 0, sizeof *attr);
    pthread_mutex_lock(&hca->lock);
    int failed = hca->failed;
    uint32_t slot = hca->slot;
    pthread_mutex_unlock(&hca->lock);
    attr->state = failed ? IBV_PORT_DOWN : IBV_PORT_ACTIVE;
    attr->phys_state = failed ? 3 /* Disabled */ : 5 /* LinkUp */;
    attr->max_mtu = IBV_MTU_4096;
    attr->active_mtu = IBV_MTU_4096;
    attr->gid_tbl_len = soft_link_layer == IBV_LINK_LAYER_ETHERNET ? 2 : 1;
    attr->max_msg_sz = (uint32_t)SOFT_MAX_MSG;
    attr->pkey_tbl_len = 1;
    attr->lid = soft_link_layer == IBV_LINK_LAYER_INFINIBAND ? (uint16_t)slot : 0;
    attr->sm_lid = soft_link_layer == IBV_LINK_LAYER_INFINIBAND ? 1 : 0;
    attr->max_vl_num = 1;
    attr->active_width = 2;   /* 4X */
    attr->active_speed = 32;  /* EDR */
    attr->link_layer = soft_link_layer;
    return 0;
}

int soft_query_gid(struct ibv_context *context, uint8_t port, int index, union ibv_gid *gid) {
    struct soft_hca *hca = soft_hca_of(context);
    int len = soft_link_layer == IBV_LINK_LAYER_ETHERNET ? 2 : 1;
    if (port != 1 || index < 0 || index >= len) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: no GID %d on port %u (the table has %d)", hca->device.name, index, port, len);
        return -1;
    }
    pthread_mutex_lock(&hca->lock);
    soft_gid(hca->slot, index, gid);
    pthread_mutex_unlock(&hca->lock);
    return 0;
}

int soft_query_gid_type(struct ibv_context *context, uint8_t port, int index, uint32_t *type) {
    union ibv_gid gid;
    if (soft_query_gid(context, port, index, &gid) != 0) return -1;
    if (soft_link_layer == IBV_LINK_LAYER_INFINIBAND) *type = IBV_GID_TYPE_IB;
    else *type = index == 0 ? IBV_GID_TYPE_ROCE_V1 : IBV_GID_TYPE_ROCE_V2;
    return 0;
}
