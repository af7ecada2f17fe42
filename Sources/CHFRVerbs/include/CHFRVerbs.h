#ifndef CHFRVERBS_H
#define CHFRVERBS_H
// The verbs calls HFReduce's RDMA transport makes, as a table of function pointers filled at run
// time, either from libibverbs.so.1 (dlopen + dlsym, never linked) or from the software verbs
// device of soft_*.c (HFR_IB_SOFT=N). Compiled against libibverbs-dev's <infiniband/verbs.h>, so
// the types are the real ones and the transport code is the same for both.
#include <infiniband/verbs.h>
#include <stdint.h>

struct hfr_verbs_ops {
    /// "libibverbs.so.1" or "soft".
    const char *name;
    /// 1 for the software device.
    int is_soft;
    struct ibv_device **(*get_device_list)(int *num_devices);
    void (*free_device_list)(struct ibv_device **list);
    const char *(*get_device_name)(struct ibv_device *device);
    struct ibv_context *(*open_device)(struct ibv_device *device);
    int (*close_device)(struct ibv_context *context);
    int (*query_device)(struct ibv_context *context, struct ibv_device_attr *attr);
    int (*query_port)(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr);
    int (*query_gid)(struct ibv_context *context, uint8_t port, int index, union ibv_gid *gid);
    /// The type of a GID table entry (enum ibv_gid_type): the real library reads sysfs'
    /// ports/<port>/gid_attrs/types/<index>, as NCCL does.
    int (*query_gid_type)(struct ibv_context *context, uint8_t port, int index, uint32_t *type);
    struct ibv_pd *(*alloc_pd)(struct ibv_context *context);
    int (*dealloc_pd)(struct ibv_pd *pd);
    struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access);
    int (*dereg_mr)(struct ibv_mr *mr);
    struct ibv_cq *(*create_cq)(struct ibv_context *context, int cqe, void *cq_context,
                                struct ibv_comp_channel *channel, int comp_vector);
    int (*destroy_cq)(struct ibv_cq *cq);
    int (*poll_cq)(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
    struct ibv_qp *(*create_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    int (*destroy_qp)(struct ibv_qp *qp);
    int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask);
    int (*query_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask, struct ibv_qp_init_attr *init_attr);
    int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr);
    int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr);
    const char *(*wc_status_str)(enum ibv_wc_status status);
};

/// Why a load failed.
enum hfr_verbs_load_status {
    HFR_VERBS_LOADED = 0,
    /// dlopen("libibverbs.so.1") failed.
    HFR_VERBS_NO_LIBRARY = 1,
    /// The library lacks a symbol the transport needs.
    HFR_VERBS_NO_SYMBOL = 2,
    /// HFR_IB_SOFT, HFR_IB_SOFT_FAIL or HFR_IB_SOFT_LINK has a value that cannot be used.
    HFR_VERBS_BAD_CONFIG = 3,
    /// The software device cannot work on this machine (no /dev/shm, ptrace forbidden).
    HFR_VERBS_SOFT_UNAVAILABLE = 4,
};

/// Loads the implementation the environment selects: the software device with HFR_IB_SOFT=N HCAs
/// when set, else libibverbs.so.1. Done once per kind; later calls return the same table.
/// On failure *ops is NULL and *message names the cause (a static string).
int hfr_verbs_load(const struct hfr_verbs_ops **ops, const char **message);
/// Loads libibverbs.so.1, whatever the environment says.
int hfr_verbs_load_real(const struct hfr_verbs_ops **ops, const char **message);
/// Loads the software device with `count` HCAs (soft_0 .. soft_{count-1}), whatever HFR_IB_SOFT
/// says. The count is fixed by the first soft load of the process.
int hfr_verbs_load_soft(int count, const struct hfr_verbs_ops **ops, const char **message);

/// A sentence about the calling thread's last failed software-device call (the errno alone says
/// less, e.g. which check refused a registration). Empty when there was none.
const char *hfr_verbs_last_error(void);

/// Fails the soft HCA `name` (e.g. "soft_1") after `after` more send work requests on it (0: at
/// the next one): its port goes DOWN and every QP of it goes to ERROR, flushing outstanding work
/// requests with IBV_WC_WR_FLUSH_ERR. Lasts until the HCA's last context is closed. The
/// environment form is HFR_IB_SOFT_FAIL="soft_1:after=N[,soft_0:after=M]", applied at each open.
/// Returns 0, or -1 with errno ENODEV when no soft HCA has that name (or none is loaded).
int hfr_soft_fail_device(const char *name, long after);

#endif
