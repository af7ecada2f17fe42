#define _GNU_SOURCE
#include "CHFRTopology.h"
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

int hfr_set_thread_affinity(const int *cpus, int n) {
    int top = 0;
    for (int i = 0; i < n; i++) {
        if (cpus[i] < 0) return EINVAL;
        if (cpus[i] > top) top = cpus[i];
    }
    cpu_set_t *set = CPU_ALLOC(top + 1);
    if (set == NULL) return ENOMEM;
    size_t size = CPU_ALLOC_SIZE(top + 1);
    CPU_ZERO_S(size, set);
    for (int i = 0; i < n; i++) CPU_SET_S(cpus[i], size, set);
    int rc = pthread_setaffinity_np(pthread_self(), size, set);
    CPU_FREE(set);
    return rc;
}

int hfr_get_affinity(pid_t tid, int *out, int cap) {
    // The kernel refuses a mask smaller than its own (EINVAL): grow until it fits.
    for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpus);
        if (set == NULL) { errno = ENOMEM; return -1; }
        size_t size = CPU_ALLOC_SIZE(ncpus);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(tid, size, set) != 0) {
            int e = errno;
            CPU_FREE(set);
            if (e == EINVAL) continue;
            errno = e;
            return -1;
        }
        int n = 0;
        for (int c = 0; c < ncpus; c++) {
            if (CPU_ISSET_S(c, size, set)) {
                if (n < cap) out[n] = c;
                n++;
            }
        }
        CPU_FREE(set);
        return n;
    }
    errno = EINVAL;
    return -1;
}

int hfr_current_cpu(void) { return sched_getcpu(); }

int hfr_numa_max_node(void) {
    if (numa_available() < 0) return -1;
    return numa_max_node();
}

/// A node mask for mbind/get_mempolicy: one bit per node, `maxnode` bits in whole longs.
static unsigned long *node_mask(const int *nodes, int n, unsigned long *maxnode) {
    int top = 0;
    for (int i = 0; i < n; i++) if (nodes[i] > top) top = nodes[i];
    size_t bits = 8 * sizeof(unsigned long);
    size_t words = (size_t)top / bits + 1;
    unsigned long *mask = calloc(words, sizeof(unsigned long));
    if (mask == NULL) return NULL;
    for (int i = 0; i < n; i++) mask[(size_t)nodes[i] / bits] |= 1UL << ((size_t)nodes[i] % bits);
    // The kernel reads maxnode - 1 bits.
    *maxnode = words * bits + 1;
    return mask;
}

int hfr_mbind(void *addr, size_t len, int mode, const int *nodes, int n) {
    for (int i = 0; i < n; i++) if (nodes[i] < 0) return EINVAL;
    if (n == 0) return mbind(addr, len, mode, NULL, 0, 0) == 0 ? 0 : errno;
    unsigned long maxnode = 0;
    unsigned long *mask = node_mask(nodes, n, &maxnode);
    if (mask == NULL) return ENOMEM;
    int rc = mbind(addr, len, mode, mask, maxnode, 0) == 0 ? 0 : errno;
    free(mask);
    return rc;
}

int hfr_page_policy(void *addr, int *mode, int *nodes, int cap) {
    size_t bits = 8 * sizeof(unsigned long);
    // get_mempolicy wants room for every node the kernel could have (EINVAL otherwise).
    int possible = numa_available() < 0 ? (int)bits : numa_num_possible_nodes();
    size_t words = (size_t)possible / bits + 1;
    unsigned long *mask = calloc(words, sizeof(unsigned long));
    if (mask == NULL) { errno = ENOMEM; return -1; }
    if (get_mempolicy(mode, mask, words * bits, addr, MPOL_F_ADDR) != 0) {
        int e = errno;
        free(mask);
        errno = e;
        return -1;
    }
    int n = 0;
    for (size_t node = 0; node < words * bits; node++) {
        if (mask[node / bits] & (1UL << (node % bits))) {
            if (n < cap) nodes[n] = (int)node;
            n++;
        }
    }
    free(mask);
    return n;
}

int hfr_page_node(void *addr) {
    int node = -1;
    if (get_mempolicy(&node, NULL, 0, addr, MPOL_F_ADDR | MPOL_F_NODE) != 0) return -1;
    return node;
}
