/* lib/prune.c: pruning by one global threshold over all parameters
 * (SEEDS.md 1.5, the BADAM weight-pruning notebook).
 *
 * Scores (|theta| for magnitude, |mean| / sqrt(var) for the signal-to-noise
 * ratio) are sorted once over all P entries: weights, biases and the output
 * layer together. For a fraction f the cutoff is sorted[floor(f P)] and
 * every entry with a score below it is set to zero; the network is then
 * evaluated at those point weights. With the scores fixed, this equals the
 * notebook's cumulative pruning of the same weights (a pruned entry stays
 * below every later cutoff); ties at the cutoff are kept, as there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/posterior.h"
#include "effdim/prune.h"
#include "internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

effdim_status effdim_prune_sweep(const effdim_mlp *m, const double *theta, const double *scores,
                                 const double *fractions, size_t nf, const effdim_dataset *ds,
                                 double *accuracy, double *loss, size_t *kept, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta || !scores || !fractions || !ds, err, EFFDIM_EINVAL,
                    "prune: NULL argument");
    size_t P = m->n_params;
    for (size_t i = 0; i < nf; ++i)
        RETURN_ERROR_IF(!(fractions[i] >= 0.0 && fractions[i] < 1.0), err, EFFDIM_EDOM,
                        "prune: fraction %g (entry %zu), expected in [0, 1)", fractions[i], i);
    for (size_t j = 0; j < P; ++j)
        RETURN_ERROR_IF(!(scores[j] >= 0.0), err, EFFDIM_EDOM,
                        "prune: score %g at parameter %zu, expected finite and >= 0", scores[j], j);
    effdim_status st = effdim_mlp_check_data(m, ds, ds->spec ? ds->spec : "test data", err);
    if (st) return st;
    double *sorted = effdim_alloc(2 * P, sizeof(double), "prune scores", err);
    if (!sorted) return EFFDIM_ENOMEM;
    double *w = sorted + P;
    memcpy(sorted, scores, P * sizeof(double));
    qsort(sorted, P, sizeof(double), cmp_double);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(m, 0, err);
    if (!ws) {
        free(sorted);
        return err ? err->code : EFFDIM_ENOMEM;
    }
    for (size_t i = 0; i < nf && !st; ++i) {
        size_t idx = (size_t)floor(fractions[i] * (double)P);
        if (idx >= P) idx = P - 1;
        double cut = sorted[idx];
        size_t nk = 0;
        for (size_t j = 0; j < P; ++j) {
            int keep = scores[j] >= cut;
            w[j] = keep ? theta[j] : 0.0;
            nk += (size_t)keep;
        }
        double l, a;
        st = effdim_mlp_evaluate(m, w, ds, NULL, ds->n, &l, &a, ws, err);
        if (accuracy) accuracy[i] = a;
        if (loss) loss[i] = l;
        if (kept) kept[i] = nk;
    }
    effdim_mlp_ws_free(ws);
    free(sorted);
    return st;
}
