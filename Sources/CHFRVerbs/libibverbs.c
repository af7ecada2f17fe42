// The table filled from libibverbs.so.1 by dlopen + dlsym, once. Calls that <infiniband/verbs.h>
// defines as static inline (poll_cq, post_send, post_recv go through the context's ops;
// query_port picks the extended or compat entry point) are wrapped here so that nothing refers
// to a libibverbs symbol at link time.
#define _GNU_SOURCE
#include "loaders.h"
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct hfr_verbs_ops real_ops;
static int real_status;
static char real_message[512];
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static int (*compat_query_port)(struct ibv_context *, uint8_t, struct _compat_ibv_port_attr *);

static int real_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc) {
    return cq->context->ops.poll_cq(cq, n, wc);
}

static int real_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad) {
    return qp->context->ops.post_send(qp, wr, bad);
}

static int real_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad) {
    return qp->context->ops.post_recv(qp, wr, bad);
}

// ___ibv_query_port of verbs.h, with the compat entry point looked up instead of linked.
static int real_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr) {
    struct verbs_context *vctx = verbs_get_ctx_op(context, query_port);
    if (vctx == NULL) {
        memset(attr, 0, sizeof *attr);
        return compat_query_port(context, port, (struct _compat_ibv_port_attr *)attr);
    }
    return vctx->query_port(context, port, attr, sizeof *attr);
}

// sysfs ports/<port>/gid_attrs/types/<index>: "IB/RoCE v1" or "RoCE v2" (empty for unused entries).
static int real_query_gid_type(struct ibv_context *context, uint8_t port, int index, uint32_t *type) {
    char path[IBV_SYSFS_PATH_MAX + 64], text[32] = {0};
    snprintf(path, sizeof path, "%s/ports/%u/gid_attrs/types/%d", context->device->ibdev_path, port, index);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err != 0) { errno = err; return -1; }
    text[n] = 0;
    if (strncmp(text, "RoCE v2", 7) == 0) *type = IBV_GID_TYPE_ROCE_V2;
    else if (strncmp(text, "IB/RoCE v1", 10) == 0) {
        struct ibv_port_attr attr;
        if (real_query_port(context, port, &attr) != 0) return -1;
        *type = attr.link_layer == IBV_LINK_LAYER_ETHERNET ? IBV_GID_TYPE_ROCE_V1 : IBV_GID_TYPE_IB;
    } else { errno = ENODATA; return -1; }
    return 0;
}

static void *symbol(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (p == NULL && real_status == HFR_VERBS_LOADED) {
        snprintf(real_message, sizeof real_message,
                 "libibverbs.so.1 has no symbol %s (the installed rdma-core is too old for HFReduce)", name);
        real_status = HFR_VERBS_NO_SYMBOL;
    }
    return p;
}

static void load_once(void) {
    void *lib = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        snprintf(real_message, sizeof real_message,
                 "libibverbs.so.1 not found (%s); install rdma-core's libibverbs1 or use TCP", why ? why : "dlopen failed");
        real_status = HFR_VERBS_NO_LIBRARY;
        return;
    }
    struct hfr_verbs_ops o = {0};
    o.name = "libibverbs.so.1";
    o.get_device_list = symbol(lib, "ibv_get_device_list");
    o.free_device_list = symbol(lib, "ibv_free_device_list");
    o.get_device_name = symbol(lib, "ibv_get_device_name");
    o.open_device = symbol(lib, "ibv_open_device");
    o.close_device = symbol(lib, "ibv_close_device");
    o.query_device = symbol(lib, "ibv_query_device");
    compat_query_port = symbol(lib, "ibv_query_port");
    o.query_port = real_query_port;
    o.query_gid = symbol(lib, "ibv_query_gid");
    o.query_gid_type = real_query_gid_type;
    o.alloc_pd = symbol(lib, "ibv_alloc_pd");
    o.dealloc_pd = symbol(lib, "ibv_dealloc_pd");
    o.reg_mr = symbol(lib, "ibv_reg_mr");
    o.dereg_mr = symbol(lib, "ibv_dereg_mr");
    o.create_cq = symbol(lib, "ibv_create_cq");
    o.destroy_cq = symbol(lib, "ibv_destroy_cq");
    o.poll_cq = real_poll_cq;
    o.create_qp = symbol(lib, "ibv_create_qp");
    o.destroy_qp = symbol(lib, "ibv_destroy_qp");
    o.modify_qp = symbol(lib, "ibv_modify_qp");
    o.query_qp = symbol(lib, "ibv_query_qp");
    o.post_send = real_post_send;
    o.post_recv = real_post_recv;
    o.wc_status_str = symbol(lib, "ibv_wc_status_str");
    if (real_status != HFR_VERBS_LOADED) {
        dlclose(lib);
        return;
    }
    /* Pages an HCA pinned must not turn copy-on-write in the parent when the program forks (a
       Python DataLoader, subprocess): the HCA would go on with the old pages. Kernels with
       copy-on-fork for pinned pages (5.13+) need nothing (IBV_FORK_UNNEEDED, 2); otherwise
       ibv_fork_init has libibverbs keep registered memory out of children (MADV_DONTFORK).
       It must come before any other verbs call, as here. */
    int (*fork_init)(void) = (int (*)(void))dlsym(lib, "ibv_fork_init");
    int (*fork_status)(void) = (int (*)(void))dlsym(lib, "ibv_is_fork_initialized");
    if (fork_init != NULL && !(fork_status != NULL && fork_status() == 2)) fork_init();
    real_ops = o;
}

int hfr_real_load(const struct hfr_verbs_ops **ops, const char **message) {
    pthread_once(&real_once, load_once);
    *ops = real_status == HFR_VERBS_LOADED ? &real_ops : NULL;
    *message = real_status == HFR_VERBS_LOADED ? "" : real_message;
    return real_status;
}
