#ifndef HFR_VERBS_LOADERS_H
#define HFR_VERBS_LOADERS_H
// Shared between the loaders (private to CHFRVerbs).
#include "CHFRVerbs.h"

/// Fills the table from libibverbs.so.1, once.
int hfr_real_load(const struct hfr_verbs_ops **ops, const char **message);
/// Sets up `count` soft HCAs, once.
int hfr_soft_load(int count, const struct hfr_verbs_ops **ops, const char **message);
/// Records the sentence hfr_verbs_last_error() returns, and sets errno to `err`.
void hfr_verbs_set_error(int err, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
