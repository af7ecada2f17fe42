// Soft HCA protection domains and memory regions, and the key and bounds checks made with them.
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SUPPORTED_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
                          IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_RELAXED_ORDERING)

struct ibv_pd *soft_alloc_pd(struct ibv_context *context) {
    struct soft_hca *hca = soft_hca_of(context);
    struct soft_pd *pd = calloc(1, sizeof *pd);
    if (pd == NULL) { hfr_verbs_set_error(ENOMEM, "soft HCA %s: out of memory", hca->device.name); return NULL; }
    pthread_mutex_lock(&hca->lock);
    pd->pd.context = context;
    pd->pd.handle = ++hca->next_pd;
    pd->hca = hca;
    hca->pds++;
    pthread_mutex_unlock(&hca->lock);
    return &pd->pd;
}

int soft_dealloc_pd(struct ibv_pd *ibpd) {
    struct soft_pd *pd = SOFT_CONTAINER(ibpd, struct soft_pd, pd);
    struct soft_hca *hca = pd->hca;
    pthread_mutex_lock(&hca->lock);
    if (pd->users != 0) {
        hfr_verbs_set_error(EBUSY, "soft HCA %s: PD %u still has %u memory regions or QPs", hca->device.name, ibpd->handle, pd->users);
        pthread_mutex_unlock(&hca->lock);
        return EBUSY;
    }
    hca->pds--;
    pthread_mutex_unlock(&hca->lock);
    free(pd);
    return 0;
}

// Is every page of [addr, addr + length) mapped? (What pinning the pages would find out.)
static int mapped(void *addr, size_t length) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)addr + length + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    unsigned char vec[4096];
    for (uintptr_t p = start; p < end; ) {
        size_t n = (end - p) / (uintptr_t)page;
        if (n > sizeof vec) n = sizeof vec;
        if (mincore((void *)p, n * (size_t)page, vec) != 0 && errno == ENOMEM) return 0;
        p += n * (uintptr_t)page;
    }
    return 1;
}

struct ibv_mr *soft_reg_mr(struct ibv_pd *ibpd, void *addr, size_t length, int access) {
    struct soft_pd *pd = SOFT_CONTAINER(ibpd, struct soft_pd, pd);
    struct soft_hca *hca = pd->hca;
    if (length == 0) { hfr_verbs_set_error(EINVAL, "soft HCA %s: registering 0 bytes", hca->device.name); return NULL; }
    if (access & ~SUPPORTED_ACCESS) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: access flags 0x%x are not supported", hca->device.name, access & ~SUPPORTED_ACCESS);
        return NULL;
    }
    if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) && !(access & IBV_ACCESS_LOCAL_WRITE)) {
        hfr_verbs_set_error(EINVAL, "soft HCA %s: remote write access needs local write access too", hca->device.name);
        return NULL;
    }
    if ((uintptr_t)addr + length < (uintptr_t)addr || !mapped(addr, length)) {
        hfr_verbs_set_error(EFAULT, "soft HCA %s: [%p, +%zu) is not all mapped in this process", hca->device.name, addr, length);
        return NULL;
    }
    struct soft_mr *mr = calloc(1, sizeof *mr);
    if (mr == NULL) { hfr_verbs_set_error(ENOMEM, "soft HCA %s: out of memory", hca->device.name); return NULL; }
    pthread_mutex_lock(&hca->lock);
    struct soft_mr_slot *slot = NULL;
    uint32_t index = 0;
    for (uint32_t i = 0; i < SOFT_MAX_MR; i++) {
        index = (hca->mr_cursor + i) % SOFT_MAX_MR;
        if (atomic_load_explicit(&hca->seg->mr[index].key, memory_order_relaxed) == 0) { slot = &hca->seg->mr[index]; break; }
    }
    if (slot == NULL) {
        pthread_mutex_unlock(&hca->lock);
        free(mr);
        hfr_verbs_set_error(ENOMEM, "soft HCA %s: all %u memory regions are registered", hca->device.name, SOFT_MAX_MR);
        return NULL;
    }
    hca->mr_cursor = index + 1;
    uint32_t generation = (hca->mr_generation[index] + 1) & ((1u << (32 - SOFT_MR_INDEX_BITS)) - 1);
    if (generation == 0) generation = 1;
    hca->mr_generation[index] = generation;
    uint32_t key = (generation << SOFT_MR_INDEX_BITS) | index;
    slot->addr = (uint64_t)(uintptr_t)addr;
    slot->length = length;
    slot->access = (uint32_t)access;
    slot->pd = ibpd->handle;
    slot->frame = soft_pin ? soft_page_frame(0, (uint64_t)(uintptr_t)addr) : 0;
    atomic_store_explicit(&slot->key, key, memory_order_release);
    pd->users++;
    hca->mrs++;
    pthread_mutex_unlock(&hca->lock);
    mr->hca = hca;
    mr->pd = pd;
    mr->index = index;
    mr->mr.context = ibpd->context;
    mr->mr.pd = ibpd;
    mr->mr.addr = addr;
    mr->mr.length = length;
    mr->mr.handle = index;
    mr->mr.lkey = key;
    mr->mr.rkey = key;
    return &mr->mr;
}

int soft_dereg_mr(struct ibv_mr *ibmr) {
    struct soft_mr *mr = SOFT_CONTAINER(ibmr, struct soft_mr, mr);
    struct soft_hca *hca = mr->hca;
    pthread_mutex_lock(&hca->lock);
    atomic_store_explicit(&hca->seg->mr[mr->index].key, 0, memory_order_release);
    mr->pd->users--;
    hca->mrs--;
    pthread_mutex_unlock(&hca->lock);
    free(mr);
    return 0;
}

// Reads a slot consistently: the key is stored last at registration and cleared first at
// deregistration, so a key that reads the same before and after covers the fields in between.
static int range_ok(struct soft_mr_slot *slot, uint32_t key, uint32_t pd, uint32_t access, uint64_t addr, uint64_t length) {
    if (key == 0 || atomic_load_explicit(&slot->key, memory_order_acquire) != key) return 0;
    int ok = slot->pd == pd && (slot->access & access) == access && addr >= slot->addr &&
             length <= slot->length && addr - slot->addr <= slot->length - length;
    atomic_thread_fence(memory_order_acquire);
    return ok && atomic_load_explicit(&slot->key, memory_order_relaxed) == key;
}

int soft_local_sge_ok(struct soft_hca *hca, uint32_t pd, const struct ibv_sge *sge, uint32_t need_access) {
    struct soft_mr_slot *slot = &hca->seg->mr[sge->lkey & (SOFT_MAX_MR - 1)];
    return range_ok(slot, sge->lkey, pd, need_access, sge->addr, sge->length);
}

int soft_remote_range_ok(struct soft_segment *seg, uint32_t pd, uint32_t rkey, uint64_t addr, uint64_t length) {
    struct soft_mr_slot *slot = &seg->mr[rkey & (SOFT_MAX_MR - 1)];
    return range_ok(slot, rkey, pd, IBV_ACCESS_REMOTE_WRITE, addr, length);
}
