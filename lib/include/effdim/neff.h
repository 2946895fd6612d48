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

/* All eigenvalues of the dense symmetric A (n, n) row-major (not modified),
 * by LAPACKE_dsyev, into w (n) in DESCENDING order. */
EFFDIM_API effdim_status effdim_dense_eigenvalues(size_t n, const double *A, double *w,
                                                  effdim_error *err);

/* The exact reference: out[j] = N_eff(z[j]) over all eigenvalues of the dense
 * symmetric A (n, n); if w is non-NULL it receives them (n, descending). */
EFFDIM_API effdim_status effdim_neff_dense(size_t n, const double *A, const double *z, size_t nz,
                                           effdim_neg_policy p, double *out, double *w,
                                           effdim_error *err);

/* Posterior contraction in Bayesian linear regression (SEEDS.md 4.5; paper
 * section 4): y = Phi beta + eps, eps ~ N(0, sigma2 I), beta ~ N(0, alpha2 I).
 * With H = Phi^T Phi / sigma2 and Sigma_post = (H + I/alpha2)^-1,
 *
 *   tr(Sigma_prior) - tr(Sigma_post) = alpha2 * N_eff(H, 1/alpha2).
 *
 * Phi (N, d) row-major. *contraction gets the left side, computed from
 * the Cholesky factor of H + I/alpha2 (LAPACKE dpotrf/dpotri); *alpha2_neff
 * the right side from the eigenvalues of H (LAPACKE dsyev). Either pointer
 * may be NULL. If neff is non-NULL it receives N_eff(H, 1/alpha2).
 * EDOM for sigma2 <= 0 or alpha2 <= 0; EINVAL for N == 0 or d == 0. */
EFFDIM_API effdim_status effdim_blr_contraction(const double *Phi, size_t N, size_t d,
                                                double sigma2, double alpha2, double *contraction,
                                                double *alpha2_neff, double *neff,
                                                effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_NEFF_H */
