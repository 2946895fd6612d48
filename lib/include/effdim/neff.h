/* effdim/neff.h: effective dimensionality from eigenvalues, its dense
 * reference, and the Bayesian-linear-regression identity that motivates it.
 *
 *   N_eff(z) = sum_i f(lambda_i) / (f(lambda_i) + z),   z > 0
 *
 * (Maddox, Benton, Wilson, "Rethinking parameter counting in deep models:
 * effective dimensionality revisited", arXiv 2003.02139, eq. 2; MacKay 1992),
 * where f applies the negative-eigenvalue policy:
 *
 *   zero   (default)  f(x) = max(x, 0): a negative eigenvalue adds nothing.
 *                     An eigenvalue near -z would otherwise make the term
 *                     explode, and N_eff counts directions the data
 *                     determine, which negative curvature does not.
 *   abs               f(x) = |x|: negative curvature counts as curvature.
 *   asis              f(x) = x: the formula as written, as the paper's code
 *                     computes it on Lanczos Ritz values (hessian-eff-dim's
 *                     eff_dim); EDOM if some lambda_i = -z exactly.
 *
 * Every output that carries N_eff records the policy by its name
 * (effdim_neg_policy_name).
 */
#ifndef EFFDIM_NEFF_H
#define EFFDIM_NEFF_H

#include <stddef.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_neg_policy {
    EFFDIM_NEG_ZERO = 0, /* negative eigenvalues count as zero (default) */
    EFFDIM_NEG_ABS = 1,  /* their absolute value */
    EFFDIM_NEG_ASIS = 2  /* as they are (the reference code's behaviour) */
} effdim_neg_policy;

/* "zero" | "abs" | "asis" */
EFFDIM_API const char *effdim_neg_policy_name(effdim_neg_policy p);
/* accepts "zero", "abs", "asis" (and "as-is"); EINVAL naming the value otherwise */
EFFDIM_API effdim_status effdim_neg_policy_parse(const char *s, effdim_neg_policy *p,
                                                 effdim_error *err);

/* One term f(lambda) / (f(lambda) + z) under the policy (no checks). */
EFFDIM_API double effdim_neff_term(double lambda, double z, effdim_neg_policy p);

/* out[j] = N_eff(z[j]) over the eigenvalues lambda (k), for j < nz.
 * EDOM: a z[j] <= 0 or non-finite, a non-finite eigenvalue, or (asis) an
 * eigenvalue equal to -z[j]; each message names the index. */
EFFDIM_API effdim_status effdim_neff(const double *lambda, size_t k, const double *z, size_t nz,
                                     effdim_neg_policy p, double *out, effdim_error *err);

/* The exact reference: out[j] = N_eff(z[j]) over all eigenvalues of the dense
 * symmetric A (n, n); if w is non-NULL it receives them (n, descending). */
EFFDIM_API effdim_status effdim_neff_dense(size_t n, const double *A, const double *z, size_t nz,
                                           effdim_neg_policy p, double *out, double *w,
                                           effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_NEFF_H */
