/* tests/testnet.h: set-up helpers shared by the network tests (test_mlp.c,
 * test_hvp.c): seeded random data sets and small vector measures. */
#ifndef EFFDIM_TESTS_TESTNET_H
#define EFFDIM_TESTS_TESTNET_H

#include <stddef.h>

#include "effdim/data.h"

/* n rows, X (n, d) ~ 1.1 N(0, 1); labels uniform in [0, k) or Y (n, k) ~
 * N(0.3, 1); gsl_rng_mt19937 seeded with seed. NULL (a failed CHECK) when the
 * allocation fails. */
effdim_dataset *testnet_data(size_t n, size_t d, size_t k, effdim_target_kind kind,
                             unsigned long seed);

/* max_i |x_i| (0 for n = 0) */
double testnet_max_abs(const double *x, size_t n);

#endif
