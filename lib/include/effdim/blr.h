/* effdim/blr.h: posterior contraction in Bayesian linear regression as data
 * points are added one at a time (Maddox, Benton and Wilson 2020, Section 4;
 * SEEDS.md 4.5), and its file "effdim.blr".
 *
 * Model: y = Phi beta + eps, eps ~ N(0, noise I), beta ~ N(0, prior_var I_k),
 * with the Fourier design of the paper's notebook: for x on
 * linspace(0, x_max, n_points) the k = 2 n_freq features
 *     cos((j+1) pi x), j < n_freq,   then   sin((j+1) pi x), j < n_freq.
 * After the first n points of a seeded random order (n = 0 .. n_points):
 *     H_n = Phi_n^T Phi_n / noise,   Sigma_post = (H_n + I / prior_var)^-1,
 * and four numbers per n:
 *     neff_hessian    N_eff(H_n, 1/prior_var) = sum_i l_i / (l_i + 1/prior_var)
 *                     (eigenvalues of H_n, negative rounding clamped to 0);
 *     neff_posterior  N_eff of the eigenvalues of Sigma_post at z
 *                     (= 1 / (l_i + 1/prior_var));
 *     neff_function   N_eff of the eigenvalues of the function-space
 *                     covariance Phi Sigma_post Phi^T over ALL n_points inputs, at z;
 *     contraction     tr(Sigma_prior) - tr(Sigma_post), from the Cholesky
 *                     inverse of H_n + I/prior_var (not from the eigenvalues),
 * so the identity contraction = prior_var * neff_hessian (SEEDS.md 4.5) is
 * checked at every n by two independent LAPACK paths. Also the numerical
 * rank of Phi_n (eigenvalues of H_n above max(n, k) * eps * l_max).
 *
 * Cost per n: one rank-1 update, dsyevd of k x k (vectors), a dgemm
 * (n_points, k, k), a dsyrk and a dsyev of k x k, a Cholesky inverse:
 * about 30 k^3 flops; the default (k = 200, 300 steps) about 7e10 flops.
 */
#ifndef EFFDIM_BLR_H
#define EFFDIM_BLR_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_BLR_FORMAT "effdim.blr"
#define EFFDIM_BLR_VERSION 1

typedef struct effdim_blr_params {
    size_t n_points;  /* inputs x = linspace(0, x_max, n_points); default 300 */
    double x_max;     /* default 50 */
    size_t n_freq;    /* k = 2 n_freq features; default 100 */
    double noise;     /* sigma^2, the divisor of Phi^T Phi; default 0.1 */
    double prior_var; /* alpha^2, the prior covariance alpha^2 I; default 3 */
    double z;         /* the z of neff_posterior and neff_function; default 5 */
    uint64_t seed;    /* the order points are added in (GSL mt19937); default 0 */
} effdim_blr_params;

/* The notebook's configuration (above). */
EFFDIM_API effdim_blr_params effdim_blr_default_params(void);

typedef struct effdim_blr_result {
    effdim_blr_params params;
    size_t k;                /* features, 2 n_freq */
    size_t n_rows;           /* rows below: n = 0 .. n_rows - 1 points added
                                (n_points + 1 when complete) */
    int complete;            /* 1: every point was added; 0: stopped early */
    double max_identity_err; /* max over n >= 1 of |contraction - prior_var neff_hessian|
                                / contraction */
    double seconds;
    double *x;               /* (n_points) the inputs */
    int64_t *order;          /* (n_points) the input added at step t (0-based) */
    double *neff_hessian;    /* (n_rows) */
    double *neff_posterior;  /* (n_rows) */
    double *neff_function;   /* (n_rows) */
    double *contraction;     /* (n_rows) */
    int64_t *rank;           /* (n_rows) */
    char *version, *created; /* filled by effdim_blr_load; NULL otherwise */
} effdim_blr_result;

/* The design Phi (n_points, 2 n_freq) row-major and x (n_points) of p.
 * EINVAL for n_points or n_freq of 0 or x_max not finite and > 0. */
EFFDIM_API effdim_status effdim_blr_design(const effdim_blr_params *p, double *Phi, double *x,
                                           effdim_error *err);

/* Run the sweep over n. *out is allocated (free with effdim_blr_result_free)
 * and, when the progress callback asks to stop, holds the rows finished so
 * far with complete = 0 (status EFFDIM_EMAXITER, err says "interrupted").
 * EINVAL/EDOM name the parameter (n_points, n_freq >= 1, x_max, noise,
 * prior_var, z > 0 and finite). prog may be NULL (one stage "blr", one unit
 * per point added). */
EFFDIM_API effdim_status effdim_blr_run(const effdim_blr_params *p, const effdim_progress *prog,
                                        effdim_blr_result **out, effdim_error *err);

EFFDIM_API void effdim_blr_result_free(effdim_blr_result *r);

/* The file (docs/file-formats.md, "effdim.blr"): written atomically. */
EFFDIM_API effdim_status effdim_blr_save(const effdim_blr_result *r, const char *path,
                                         effdim_error *err);
/* Read it back (format and version checked; every array's length checked). */
EFFDIM_API effdim_status effdim_blr_load(const char *path, effdim_blr_result **out,
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
#endif /* EFFDIM_BLR_H */
