// Soft HCA configuration: how many, their link layer (HFR_IB_SOFT_LINK), pinning emulated
// (HFR_IB_SOFT_PIN, soft_pin.c), and failing one on purpose (HFR_IB_SOFT_FAIL,
// hfr_soft_fail_device).
#define _GNU_SOURCE
#include "soft.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct soft_hca soft_hcas[SOFT_MAX_HCAS];
int soft_hca_count;
uint8_t soft_link_layer = IBV_LINK_LAYER_ETHERNET;

static int parse_fail(const char *spec, int count, const char **message) {
    static char bad[256];
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item) goto invalid;
        memcpy(item, p, len);
        item[len] = 0;
        long after = 0;
        char *colon = strchr(item, ':');
        if (colon != NULL) {
            *colon = 0;
            char *num_end = NULL;
            if (strncmp(colon + 1, "after=", 6) != 0) goto invalid;
            errno = 0;
            after = strtol(colon + 7, &num_end, 10);
            if (errno != 0 || num_end == colon + 7 || *num_end != 0 || after < 0) goto invalid;
        }
        int found = 0;
        for (int i = 0; i < count; i++) found |= strcmp(soft_hcas[i].device.name, item) == 0;
        if (!found) {
            snprintf(bad, sizeof bad, "HFR_IB_SOFT_FAIL=%.80s names %.40s, which is not one of soft_0..soft_%d",
                     spec, item, count - 1);
            *message = bad;
            return -1;
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
invalid:
    snprintf(bad, sizeof bad, "HFR_IB_SOFT_FAIL=%.80s is not a list of soft_<n>[:after=<work requests>]", spec);
    *message = bad;
    return -1;
}

// The failure HFR_IB_SOFT_FAIL asks for on `hca`, or -1.
long soft_configured_failure(const struct soft_hca *hca) {
    const char *spec = getenv("HFR_IB_SOFT_FAIL");
    size_t name_len = strlen(hca->device.name);
    for (const char *p = spec; p != NULL && *p; ) {
        if (strncmp(p, hca->device.name, name_len) == 0 && (p[name_len] == 0 || p[name_len] == ',' || p[name_len] == ':'))
            return p[name_len] == ':' ? strtol(p + name_len + 7, NULL, 10) : 0;
        p = strchr(p, ',');
        if (p != NULL) p++;
    }
    return -1;
}

int soft_configure(int count, const char **message) {
    static char bad[160];
    const char *link = getenv("HFR_IB_SOFT_LINK");
    if (link == NULL || *link == 0 || strcmp(link, "roce") == 0 || strcmp(link, "eth") == 0 || strcmp(link, "ethernet") == 0) {
        soft_link_layer = IBV_LINK_LAYER_ETHERNET;
    } else if (strcmp(link, "ib") == 0 || strcmp(link, "infiniband") == 0) {
        soft_link_layer = IBV_LINK_LAYER_INFINIBAND;
    } else {
        snprintf(bad, sizeof bad, "HFR_IB_SOFT_LINK=%.40s is not roce or ib", link);
        *message = bad;
        return -1;
    }
    for (int i = 0; i < count; i++) {
        struct soft_hca *h = &soft_hcas[i];
        memset(h, 0, sizeof *h);
        h->index = i;
        h->fd = -1;
        h->fail_after = -1;
        pthread_mutex_init(&h->lock, NULL);
        h->device.node_type = IBV_NODE_CA;
        h->device.transport_type = IBV_TRANSPORT_IB;
        snprintf(h->device.name, sizeof h->device.name, "soft_%d", i);
        snprintf(h->device.dev_name, sizeof h->device.dev_name, "uverbs_soft%d", i);
    }
    soft_hca_count = count;
    const char *pin = getenv("HFR_IB_SOFT_PIN");
    soft_pin = pin != NULL && strcmp(pin, "1") == 0;
    const char *fail = getenv("HFR_IB_SOFT_FAIL");
    if (fail != NULL && *fail != 0 && parse_fail(fail, count, message) != 0) return -1;
    return 0;
}

void soft_fail_hca(struct soft_hca *hca) {
    hca->failed = 1;
    if (hca->seg != NULL) atomic_store(&hca->seg->failed, 1);
    for (uint32_t i = 0; i <= hca->qp_high && i < SOFT_MAX_QP; i++)
        if (hca->qps[i] != NULL) soft_qp_to_error(hca->qps[i]);
}

int hfr_soft_fail_device(const char *name, long after) {
    for (int i = 0; i < soft_hca_count; i++) {
        struct soft_hca *h = &soft_hcas[i];
        if (strcmp(h->device.name, name) != 0) continue;
        pthread_mutex_lock(&h->lock);
        h->fail_after = after < 0 ? 0 : after;
        h->posted = 0;
        pthread_mutex_unlock(&h->lock);
        return 0;
    }
    hfr_verbs_set_error(ENODEV, "no soft HCA is named %s", name);
    return -1;
}
