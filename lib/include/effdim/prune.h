/* effdim/prune.h: pruning by one global threshold (SEEDS.md 1.5: BADAM's
 * SNR pruning and the magnitude baseline), and the effdim.prune file.
 * Scores come from a posterior (effdim/posterior.h: |mean| / sqrt(var)) or
 * from |theta|; lib/prune.c. */
#ifndef EFFDIM_PRUNE_H
#define EFFDIM_PRUNE_H

#include <stddef.h>

#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_prune_by {
    EFFDIM_PRUNE_MAGNITUDE = 0, /* |theta| */
    EFFDIM_PRUNE_SNR = 1        /* |mean| / sqrt(var) */
} effdim_prune_by;

/* One global threshold over all P entries (weights, biases, output layer):
 * for each fraction f (in [0, 1)), sort the scores, cutoff = sorted[floor(f P)],
 * zero every entry of theta with score < cutoff, evaluate on ds. Results
 * (nf each): accuracy (NaN for regression), loss, kept (entries left). */
EFFDIM_API effdim_status effdim_prune_sweep(const effdim_mlp *m, const double *theta,
                                            const double *scores, const double *fractions,
                                            size_t nf, const effdim_dataset *ds,
                                            double *accuracy, double *loss, size_t *kept,
                                            effdim_error *err);

/* ---- the prune file (format "effdim.prune", version 1) ----
 *   /                      attrs format, format_version, checkpoint, checkpoint_sha256,
 *                          posterior, test_spec, n_params, criteria (names, in order),
 *                          version, created
 *   /prune/fraction        float64 [f]
 *   /prune/<criterion>/accuracy, loss  float64 [f];  /prune/<criterion>/kept int64 [f]
 * criterion = "magnitude" | "snr". */
#define EFFDIM_PRUNE_FORMAT "effdim.prune"
#define EFFDIM_PRUNE_VERSION 1
#define EFFDIM_PRUNE_MAX_CRITERIA 2
typedef struct effdim_prune_table {
    size_t nf;
    double *fraction;                              /* (nf) */
    size_t nc;
    effdim_prune_by by[EFFDIM_PRUNE_MAX_CRITERIA];  /* (nc) */
    double *accuracy[EFFDIM_PRUNE_MAX_CRITERIA];   /* (nf) each */
    double *loss[EFFDIM_PRUNE_MAX_CRITERIA];
    size_t *kept[EFFDIM_PRUNE_MAX_CRITERIA];
    size_t n_params;
    char *checkpoint, *checkpoint_sha256, *posterior, *test_spec; /* may be NULL */
} effdim_prune_table;
/* "magnitude" | "snr" */
EFFDIM_API const char *effdim_prune_by_name(effdim_prune_by b);
EFFDIM_API effdim_status effdim_prune_by_parse(const char *s, effdim_prune_by *b,
                                               effdim_error *err);
/* Saving reads the table (the caller's arrays); loading allocates one that
 * effdim_prune_table_free frees (NULL-safe). */
EFFDIM_API effdim_status effdim_prune_save(const effdim_prune_table *t, const char *path,
                                           effdim_error *err);
EFFDIM_API effdim_status effdim_prune_load(const char *path, effdim_prune_table **out,
                                           effdim_error *err);
EFFDIM_API void effdim_prune_table_free(effdim_prune_table *t);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_PRUNE_H */
