#ifndef HFR_SOFT_H
#define HFR_SOFT_H
// The software verbs device: types shared by soft_*.c (private to CHFRVerbs).
//
// Each open soft HCA owns a shared-memory segment, /dev/shm/hfr-soft-hca-<slot>, holding its
// memory-region table and, per QP, its state and an incoming message ring. The slot (1..0xBFFF)
// is unique on the machine; it is the port's LID and is encoded in its GIDs, so a peer that learns
// the GID or LID in the connection exchange opens the segment by name. A requester checks the
// responder's rkey and bounds in that table, writes the data with process_vm_writev straight into
// the responder's registered memory, and appends a message to the responder QP's ring; the
// responder consumes a receive work request per message that needs one, in order, and publishes
// how far it got (the ring's head), which is the requester's acknowledgement. All of it is driven
// from the verbs calls themselves (post, poll, query): no thread.
#include "loaders.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SOFT_MAX_HCAS 16
#define SOFT_MAX_SLOT 0xBFFFu
#define SOFT_MAX_MR 4096u
#define SOFT_MR_INDEX_BITS 12
#define SOFT_MAX_QP 256u
#define SOFT_RING 256u
#define SOFT_MAX_QP_WR 4096u
#define SOFT_MAX_SGE 4u
#define SOFT_MAX_INLINE 64u
#define SOFT_MAX_CQE 65536
#define SOFT_MAX_MSG (1ull << 31)
#define SOFT_MAX_PEERS 64
#define SOFT_MAX_RD_ATOMIC 16
#define SOFT_MAGIC 0x4846522d534f4654ull /* "HFR-SOFT" */
#define SOFT_VERSION 1u

// ---- shared memory (read and written by other processes) ----

struct soft_mr_slot {
    _Atomic uint32_t key;  // lkey == rkey; 0 when free
    uint32_t access;
    uint32_t pd;
    uint32_t reserved;
    uint64_t addr;
    uint64_t length;
    uint64_t frame;  // HFR_IB_SOFT_PIN: the page frame under addr at registration (0: unchecked)
};

enum soft_message_kind { SOFT_MSG_WRITE = 1, SOFT_MSG_WRITE_IMM = 2, SOFT_MSG_SEND = 3, SOFT_MSG_ACCESS_ERROR = 4 };

// One request from the connected requester. A SEND's payload is inline here or read by the
// responder from the requester's buffers (process_vm_readv) when it consumes a receive.
struct soft_message {
    uint64_t seq;  // 1-based position in the ring
    uint32_t kind;
    uint32_t imm;
    uint32_t with_imm;
    uint32_t length;
    uint32_t num_sge;
    uint32_t inline_length;
    uint64_t sge_addr[SOFT_MAX_SGE];
    uint32_t sge_length[SOFT_MAX_SGE];
    uint8_t inline_data[SOFT_MAX_INLINE];
};

// Kept after the QP is destroyed (state RESET, no requester) until the entry is reused, so that
// a requester still reads the acknowledgements the QP gave, as a real requester has received them.
struct soft_qp_shared {
    _Atomic uint32_t qpn;        // the QP the entry last belonged to
    _Atomic uint32_t state;      // enum ibv_qp_state
    _Atomic uint32_t peer_slot;  // the requester it accepts (set at RTR)
    _Atomic uint32_t peer_qpn;
    uint32_t pd;
    uint32_t access;             // qp_access_flags
    uint32_t rq_psn;
    uint32_t min_rnr_timer;
    uint32_t nak_status;         // enum ibv_wc_status the requester gets for nak_seq
    uint32_t reserved;
    _Atomic uint64_t nak_seq;    // message the responder refused, 0 if none
    _Atomic uint64_t rnr_seq;    // message waiting for a receive work request, 0 if none
    _Atomic uint64_t tail __attribute__((aligned(64)));  // written by the requester
    _Atomic uint64_t head __attribute__((aligned(64)));  // messages processed: the acknowledgement
    struct soft_message ring[SOFT_RING] __attribute__((aligned(64)));
};

struct soft_segment {
    uint64_t magic;
    uint32_t version;
    uint32_t slot;
    _Atomic int32_t pid;       // owner; 0 once closed
    _Atomic uint32_t failed;   // the HCA was failed on purpose
    uint64_t incarnation;
    uint64_t probe_address;    // &probe in the owner's address space
    uint8_t probe;             // target of the peers' process_vm_writev permission probe
    struct soft_mr_slot mr[SOFT_MAX_MR] __attribute__((aligned(64)));
    struct soft_qp_shared qp[SOFT_MAX_QP];
};

// ---- process-local ----

struct soft_peer {
    uint32_t slot;
    int fd;              // -1 for this HCA itself
    ino_t inode;
    struct soft_segment *seg;
};

struct soft_qp;

struct soft_hca {
    struct ibv_device device;  // what get_device_list hands out
    int index;
    pthread_mutex_t lock;
    int open_count;
    int fd;
    uint32_t slot;
    struct soft_segment *seg;
    uint32_t pds, cqs, qp_count, mrs;  // live objects, for close_device's EBUSY
    uint32_t next_pd;
    uint32_t qp_cursor, qp_generation, qp_high;
    struct soft_qp *qps[SOFT_MAX_QP];
    uint32_t mr_cursor;
    uint32_t mr_generation[SOFT_MAX_MR];
    long fail_after;  // -1 when not armed
    long posted;      // send work requests posted since armed
    int failed;
    int peer_count;
    struct soft_peer peers[SOFT_MAX_PEERS];
};

struct soft_context {
    struct ibv_context context;
    struct soft_hca *hca;
};

struct soft_pd {
    struct ibv_pd pd;
    struct soft_hca *hca;
    uint32_t users;
};

struct soft_mr {
    struct ibv_mr mr;
    struct soft_hca *hca;
    struct soft_pd *pd;
    uint32_t index;
};

struct soft_cqe {
    struct ibv_wc wc;
    struct soft_qp *qp;
    uint64_t wq_index;  // position in the QP's send or receive queue
    int from_send;
};

struct soft_cq {
    struct ibv_cq cq;
    struct soft_hca *hca;
    struct soft_cqe *ring;
    uint32_t capacity;
    uint64_t head, tail;
    int overrun;
    uint32_t users;
};

struct soft_send_wqe {
    uint64_t wr_id;
    uint32_t opcode;  // enum ibv_wr_opcode
    uint32_t signaled;
    uint32_t imm;
    uint32_t length;
    uint32_t num_sge;
    uint32_t inline_length;
    uint32_t status;  // enum ibv_wc_status, decided when executed
    uint32_t rkey;
    uint64_t remote_addr;
    uint64_t seq;     // message number in the responder's ring
    struct ibv_sge sge[SOFT_MAX_SGE];
    uint8_t inline_data[SOFT_MAX_INLINE];
};

struct soft_recv_wqe {
    uint64_t wr_id;
    uint32_t num_sge;
    struct ibv_sge sge[SOFT_MAX_SGE];
};

struct soft_qp {
    struct ibv_qp qp;
    struct soft_hca *hca;
    struct soft_pd *pd;
    struct soft_cq *send_cq, *recv_cq;
    struct soft_qp_shared *shared;
    uint32_t index;
    struct ibv_qp_cap cap;
    int sq_sig_all;
    // attributes set by modify_qp
    enum ibv_qp_state state;
    uint8_t port, timeout, retry_cnt, rnr_retry, min_rnr_timer, max_rd_atomic, max_dest_rd_atomic;
    uint16_t pkey_index;
    uint32_t access;
    enum ibv_mtu path_mtu;
    uint32_t rq_psn, sq_psn, dest_qpn;
    struct ibv_ah_attr ah;
    // the connected responder
    struct soft_peer *peer;
    int32_t peer_pid;
    uint64_t peer_incarnation;
    struct soft_qp_shared *remote;
    // send queue: tail <= done <= exec <= head
    struct soft_send_wqe *sq;
    uint64_t sq_head, sq_exec, sq_done, sq_tail;
    int halted;  // a work request failed; the ones after it are not executed
    uint64_t stall_since, rnr_since, probe_since;
    // receive queue: tail <= done <= head
    struct soft_recv_wqe *rq;
    uint64_t rq_head, rq_done, rq_tail;
};

extern struct soft_hca soft_hcas[SOFT_MAX_HCAS];
extern int soft_hca_count;
extern uint8_t soft_link_layer;  // IBV_LINK_LAYER_ETHERNET or IBV_LINK_LAYER_INFINIBAND
extern int soft_pin;             // HFR_IB_SOFT_PIN=1 (soft_pin.c)

#define SOFT_CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline struct soft_hca *soft_hca_of(struct ibv_context *context) {
    return SOFT_CONTAINER(context, struct soft_context, context)->hca;
}

uint64_t soft_now_ns(void);
const char *soft_state_name(enum ibv_qp_state state);

// soft_segment.c
int soft_segment_open(struct soft_hca *hca);
void soft_segment_close(struct soft_hca *hca);
struct soft_peer *soft_peer_map(struct soft_hca *hca, uint32_t slot);
int soft_peer_alive(const struct soft_peer *peer);
int soft_peer_probe(struct soft_hca *hca, const struct soft_peer *peer);

// soft_config.c
int soft_configure(int count, const char **message);
long soft_configured_failure(const struct soft_hca *hca);
void soft_fail_hca(struct soft_hca *hca);

// soft_pin.c
uint64_t soft_page_frame(pid_t pid, uint64_t addr);
int soft_frame_moved(pid_t pid, const struct soft_mr_slot *slot);

// soft_device.c
void soft_gid(uint32_t slot, int index, union ibv_gid *gid);
uint32_t soft_slot_of_gid(const union ibv_gid *gid);
struct ibv_device **soft_get_device_list(int *num);
void soft_free_device_list(struct ibv_device **list);
const char *soft_get_device_name(struct ibv_device *device);
struct ibv_context *soft_open_device(struct ibv_device *device);
int soft_close_device(struct ibv_context *context);
int soft_query_device(struct ibv_context *context, struct ibv_device_attr *attr);
int soft_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr);
int soft_query_gid(struct ibv_context *context, uint8_t port, int index, union ibv_gid *gid);
int soft_query_gid_type(struct ibv_context *context, uint8_t port, int index, uint32_t *type);

// soft_memory.c
struct ibv_pd *soft_alloc_pd(struct ibv_context *context);
int soft_dealloc_pd(struct ibv_pd *pd);
struct ibv_mr *soft_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);
int soft_dereg_mr(struct ibv_mr *mr);
int soft_local_sge_ok(struct soft_hca *hca, uint32_t pd, const struct ibv_sge *sge, uint32_t need_access);
int soft_remote_range_ok(struct soft_segment *seg, uint32_t pd, uint32_t rkey, uint64_t addr, uint64_t length);

// soft_cq.c
struct ibv_cq *soft_create_cq(struct ibv_context *context, int cqe, void *cq_context,
                              struct ibv_comp_channel *channel, int comp_vector);
int soft_destroy_cq(struct ibv_cq *cq);
int soft_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
void soft_cq_push(struct soft_cq *cq, struct soft_qp *qp, uint64_t wq_index, int from_send, const struct ibv_wc *wc);
void soft_cq_forget(struct soft_cq *cq, const struct soft_qp *qp);

// soft_qp.c
struct ibv_qp *soft_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
int soft_destroy_qp(struct ibv_qp *qp);
int soft_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask, struct ibv_qp_init_attr *init);
void soft_qp_to_error(struct soft_qp *qp);
void soft_qp_flush_send(struct soft_qp *qp, uint64_t index);
void soft_qp_flush_recv(struct soft_qp *qp, uint64_t index);
void soft_qp_reset(struct soft_qp *qp);
void soft_progress(struct soft_hca *hca);

// soft_modify.c
int soft_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);

// soft_post.c
int soft_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
int soft_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

// soft_requester.c / soft_responder.c
void soft_requester_progress(struct soft_qp *qp);
void soft_responder_progress(struct soft_qp *qp);

#endif
