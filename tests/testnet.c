/* tests/testnet.c: set-up helpers shared by the network tests (see testnet.h). */
#include "testnet.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>

#include "check.h"

effdim_dataset *testnet_data(size_t n, size_t d, size_t k, effdim_target_kind kind,
                             unsigned long seed)
{
    effdim_dataset *ds = NULL;
    effdim_error e;
    if (!CHECK_OK(effdim_dataset_alloc(n, d, k, kind, &ds, &e), &e)) return NULL;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    for (size_t i = 0; i < n * d; ++i) ds->X[i] = 1.1 * gsl_ran_gaussian(r, 1.0);
    if (kind == EFFDIM_TARGET_LABELS)
        for (size_t i = 0; i < n; ++i) ds->labels[i] = (int32_t)gsl_rng_uniform_int(r, k);
    else
        for (size_t i = 0; i < n * k; ++i) ds->Y[i] = 0.3 + gsl_ran_gaussian(r, 1.0);
    gsl_rng_free(r);
    return ds;
}

double testnet_max_abs(const double *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}
