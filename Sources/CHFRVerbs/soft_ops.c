// The software device's table, and its one-time setup (HFR_IB_SOFT_LINK, HFR_IB_SOFT_FAIL,
// /dev/shm, ptrace permission for process_vm_writev).
#define _GNU_SOURCE
#include "soft.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

// The strings of libibverbs' ibv_wc_status_str, so that messages read the same on both.
static const char *soft_wc_status_str(enum ibv_wc_status status) {
    static const char *const text[] = {
        [IBV_WC_SUCCESS] = "success",
        [IBV_WC_LOC_LEN_ERR] = "local length error",
        [IBV_WC_LOC_QP_OP_ERR] = "local QP operation error",
        [IBV_WC_LOC_EEC_OP_ERR] = "local EE context operation error",
        [IBV_WC_LOC_PROT_ERR] = "local protection error",
        [IBV_WC_WR_FLUSH_ERR] = "Work Request Flushed Error",
        [IBV_WC_MW_BIND_ERR] = "memory management operation error",
        [IBV_WC_BAD_RESP_ERR] = "bad response error",
        [IBV_WC_LOC_ACCESS_ERR] = "local access error",
        [IBV_WC_REM_INV_REQ_ERR] = "remote invalid request error",
        [IBV_WC_REM_ACCESS_ERR] = "remote access error",
        [IBV_WC_REM_OP_ERR] = "remote operation error",
        [IBV_WC_RETRY_EXC_ERR] = "transport retry counter exceeded",
        [IBV_WC_RNR_RETRY_EXC_ERR] = "RNR retry counter exceeded",
        [IBV_WC_LOC_RDD_VIOL_ERR] = "local RDD violation error",
        [IBV_WC_REM_INV_RD_REQ_ERR] = "remote invalid RD request",
        [IBV_WC_REM_ABORT_ERR] = "aborted error",
        [IBV_WC_INV_EECN_ERR] = "invalid EE context number",
        [IBV_WC_INV_EEC_STATE_ERR] = "invalid EE context state",
        [IBV_WC_FATAL_ERR] = "fatal error",
        [IBV_WC_RESP_TIMEOUT_ERR] = "response timeout error",
        [IBV_WC_GENERAL_ERR] = "general error",
        [IBV_WC_TM_ERR] = "TM error",
        [IBV_WC_TM_RNDV_INCOMPLETE] = "TM software rendezvous",
    };
    if ((unsigned)status >= sizeof text / sizeof text[0]) return "unknown";
    return text[status];
}

static const struct hfr_verbs_ops soft_ops = {
    .name = "soft",
    .is_soft = 1,
    .get_device_list = soft_get_device_list,
    .free_device_list = soft_free_device_list,
    .get_device_name = soft_get_device_name,
    .open_device = soft_open_device,
    .close_device = soft_close_device,
    .query_device = soft_query_device,
    .query_port = soft_query_port,
    .query_gid = soft_query_gid,
    .query_gid_type = soft_query_gid_type,
    .alloc_pd = soft_alloc_pd,
    .dealloc_pd = soft_dealloc_pd,
    .reg_mr = soft_reg_mr,
    .dereg_mr = soft_dereg_mr,
    .create_cq = soft_create_cq,
    .destroy_cq = soft_destroy_cq,
    .poll_cq = soft_poll_cq,
    .create_qp = soft_create_qp,
    .destroy_qp = soft_destroy_qp,
    .modify_qp = soft_modify_qp,
    .query_qp = soft_query_qp,
    .post_send = soft_post_send,
    .post_recv = soft_post_recv,
    .wc_status_str = soft_wc_status_str,
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded_count;  // 0 until loaded
static char load_message[256];

static int setup(int count) {
    const char *config = NULL;
    if (soft_configure(count, &config) != 0) {
        snprintf(load_message, sizeof load_message, "%s", config);
        return HFR_VERBS_BAD_CONFIG;
    }
    if (access("/dev/shm", W_OK | X_OK) != 0) {
        snprintf(load_message, sizeof load_message,
                 "the soft verbs device needs a writable /dev/shm for its shared memory, and this machine has none");
        return HFR_VERBS_SOFT_UNAVAILABLE;
    }
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
    int scope = 0;
    if (f != NULL) {
        if (fscanf(f, "%d", &scope) != 1) scope = 0;
        fclose(f);
    }
    if (scope >= 3) {
        snprintf(load_message, sizeof load_message,
                 "the soft verbs device moves data with process_vm_writev, which kernel.yama.ptrace_scope=3 forbids");
        return HFR_VERBS_SOFT_UNAVAILABLE;
    }
    // Under ptrace_scope 1 only a process's ancestors may write into it; the ranks of a job are
    // siblings, so each one lets any process of the user do so.
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    return HFR_VERBS_LOADED;
}

int hfr_soft_load(int count, const struct hfr_verbs_ops **ops, const char **message) {
    pthread_mutex_lock(&load_lock);
    int status;
    if (count < 1 || count > SOFT_MAX_HCAS) {
        snprintf(load_message, sizeof load_message, "%d soft HCAs asked for; between 1 and %d are possible", count, SOFT_MAX_HCAS);
        status = HFR_VERBS_BAD_CONFIG;
    } else if (loaded_count == 0) {
        status = setup(count);
        if (status == HFR_VERBS_LOADED) loaded_count = count;
    } else if (count != loaded_count) {
        snprintf(load_message, sizeof load_message, "the soft verbs device is already loaded with %d HCAs, not %d", loaded_count, count);
        status = HFR_VERBS_BAD_CONFIG;
    } else {
        status = HFR_VERBS_LOADED;
    }
    pthread_mutex_unlock(&load_lock);
    *ops = status == HFR_VERBS_LOADED ? &soft_ops : NULL;
    *message = status == HFR_VERBS_LOADED ? "" : load_message;
    return status;
}
