// Chooses between libibverbs.so.1 and the software device, and keeps the last error sentence.
#define _GNU_SOURCE
#include "loaders.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static __thread char last_error[512];

void hfr_verbs_set_error(int err, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    vsnprintf(last_error, sizeof last_error, format, ap);
    va_end(ap);
    errno = err;
}

const char *hfr_verbs_last_error(void) { return last_error; }

int hfr_verbs_load(const struct hfr_verbs_ops **ops, const char **message) {
    const char *soft = getenv("HFR_IB_SOFT");
    if (soft == NULL || *soft == 0) return hfr_real_load(ops, message);
    char *end = NULL;
    errno = 0;
    long n = strtol(soft, &end, 10);
    if (errno != 0 || end == soft || *end != 0 || n < 1 || n > 16) {
        static char bad[160];
        snprintf(bad, sizeof bad, "HFR_IB_SOFT=%.40s is not a number of soft HCAs between 1 and 16", soft);
        *ops = NULL;
        *message = bad;
        return HFR_VERBS_BAD_CONFIG;
    }
    return hfr_soft_load((int)n, ops, message);
}

int hfr_verbs_load_real(const struct hfr_verbs_ops **ops, const char **message) {
    return hfr_real_load(ops, message);
}

int hfr_verbs_load_soft(int count, const struct hfr_verbs_ops **ops, const char **message) {
    return hfr_soft_load(count, ops, message);
}
