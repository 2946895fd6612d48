/* effdim/compare.h: a diagonal curvature estimate against the spectrum.
 *
 * A diagonal d (an estimate of diag(H), or of some other matrix's diagonal)
 * is itself the spectrum of a matrix: the diagonal matrix diag(d). Comparing
 * it with the spectrum of H says how much of H's curvature the diagonal
 * approximation keeps. For one block of coordinates (the whole of theta, or
 * one layer's weight and bias) this module computes:
 *
 *   traces      sum of d, sum of the exact diagonal (= the exact trace), sum
 *               of the k reference eigenvalues (a partial trace);
 *   N_eff(z)    sum_j d_j / (d_j + z) over the entries of d, against
 *               sum_i lambda_i / (lambda_i + z) over the eigenvalues, on a
 *               grid of z, with a policy for negative values (below);
 *   quantiles   the q = min(k, n) largest entries of d against the q largest
 *               eigenvalues: ratio_i = d_(i) / lambda_i and the partial-sum
 *               ratio sum_{j<=i} d_(j) / sum_{j<=i} lambda_j. For the exact
 *               diagonal of the same symmetric matrix the partial-sum ratio is
 *               at most 1 (Schur-Horn: the diagonal is majorised by the
 *               eigenvalues), so a value above 1 means the estimate puts more
 *               curvature on single coordinates than H has in any direction;
 *   accuracy    against the exact Hessian diagonal h when given: Spearman's
 *               rank correlation (gsl_stats_spearman), the relative error
 *               ||d - h|| / ||h||, the same after the best scalar fit
 *               min_c ||c d - h|| / ||h|| (the shape error, free of a scale
 *               mismatch), the median of |d_j - h_j| / |h_j| over h_j != 0,
 *               and the scale ratio sum(d) / sum(h);
 *   alignment   for each given top eigenvector v_i: its squared mass in the
 *               block, and the fraction of that mass on the block's m
 *               coordinates with the largest entries of d, for a few m
 *               (fractions of the block; the random baseline is m / n).
 *
 * Negative values (an exact Hessian diagonal and Hessian eigenvalues can be
 * negative): neg_policy "zero" (default) counts them as 0 in N_eff, "abs"
 * uses |lambda|, "asis" uses them as they are (lambda/(lambda+z) blows up
 * near lambda = -z), the same three policies as the spectrum file's
 * neg_policy attribute.
 *
 * Ownership: effdim_compare_run allocates the result's arrays;
 * effdim_compare_result_free releases them (safe on a zeroed result).
 */
#ifndef EFFDIM_COMPARE_H
#define EFFDIM_COMPARE_H

#include <stddef.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_COMPARE_MAX_TOPM 8

typedef struct effdim_compare_input {
    size_t n;                    /* entries in the block */
    const double *diag;          /* (n) the diagonal estimate's slice */
    const double *exact;         /* (n) the exact Hessian diagonal's slice, or NULL */
    size_t k;                    /* reference eigenvalues (0: none) */
    const double *eigenvalues;   /* (k) descending: the spectrum of this block's matrix */
    size_t kv;                   /* eigenvectors given (0: none) */
    const double *eigenvectors;  /* (kv, ld) row-major; this block's slice is columns [0, n) */
    size_t ld;                   /* row stride of eigenvectors (>= n) */
    size_t m;                    /* z grid */
    const double *z;             /* (m) z > 0 */
    const char *neg_policy;      /* "zero" (NULL), "abs" or "asis" */
    size_t n_topm;               /* alignment fractions (0: the default 0.001, 0.01, 0.1) */
    const double *topm_fractions; /* (n_topm) in (0, 1] */
} effdim_compare_input;

typedef struct effdim_compare_result {
    size_t n, k, kv, m, q, n_topm;
    double trace;              /* sum of d */
    double trace_exact;        /* sum of h, or NaN */
    double trace_eigs;         /* sum of the k eigenvalues (NaN when k == 0) */
    size_t negative;           /* entries of d below 0 */
    double *n_eff;             /* (m) N_eff(z) of the entries of d */
    double *n_eff_eigs;        /* (m) of the eigenvalues, or NULL when k == 0 */
    double *top;               /* (q) the largest entries of d, descending */
    double *ratio;             /* (q) top_i / lambda_i */
    double *partial;           /* (q) partial-sum ratios */
    double spearman;           /* vs h, or NaN */
    double rel_error;          /* ||d - h|| / ||h||, or NaN */
    double rel_error_fit;      /* min_c ||c d - h|| / ||h||, or NaN */
    double fit_scale;          /* that c = <d, h> / <d, d>, or NaN */
    double median_rel_error;   /* median |d_j - h_j| / |h_j|, or NaN */
    double scale_ratio;        /* sum(d) / sum(h), or NaN */
    size_t topm[EFFDIM_COMPARE_MAX_TOPM];  /* (n_topm) coordinates counted */
    double baseline[EFFDIM_COMPARE_MAX_TOPM]; /* (n_topm) topm / n */
    double *mass;              /* (kv) ||v_i restricted to the block||^2, or NULL */
    double *alignment;         /* (kv, n_topm) fraction of that mass on the top-m coordinates */
} effdim_compare_result;

/* Everything above for one block. EINVAL for inconsistent sizes, NULL
 * arrays, z <= 0, an unknown policy or fractions outside (0, 1]; EDOM for
 * non-finite entries of d. out is overwritten (free a previous result first). */
EFFDIM_API effdim_status effdim_compare_run(const effdim_compare_input *in,
                                            effdim_compare_result *out, effdim_error *err);
EFFDIM_API void effdim_compare_result_free(effdim_compare_result *r);

/* N_eff(z_i) = sum_j v_j / (v_j + z_i) over v (n), for each of the m values
 * of z, into out (m), with the negative-value policy by name (NULL = "zero";
 * see effdim/neff.h): effdim_neff after EINVAL checks of the policy and z. */
EFFDIM_API effdim_status effdim_compare_neff(const double *v, size_t n, const double *z, size_t m,
                                             const char *neg_policy, double *out,
                                             effdim_error *err);

/* An upper bound on the full-spectrum N_eff(z) from the top k eigenvalues
 * and the trace of the remaining n_rest ones (e.g. the exact trace minus the
 * top-k sum), valid when those remaining eigenvalues are >= 0 (a PSD
 * operator: the GGN, or the Hessian of a relu network with cross-entropy or
 * mse): by concavity of x/(x+z) their sum is largest when they are equal, so
 *   N_eff(z) <= sum_{i<=k} lambda_i/(lambda_i+z) + T/(T/n_rest + z).
 * The sum over the top k (policy "zero") is the matching lower bound. When
 * rest_trace <= 0 the bound is the top-k sum. */
EFFDIM_API effdim_status effdim_compare_neff_bound(const double *eig, size_t k, double rest_trace,
                                                   size_t n_rest, const double *z, size_t m,
                                                   double *out, effdim_error *err);

/* Spearman's rank correlation of a and b (n >= 2) by gsl_stats_spearman
 * (ties get their mean rank). EINVAL for n < 2; NaN when either is constant. */
EFFDIM_API effdim_status effdim_compare_spearman(const double *a, const double *b, size_t n,
                                                 double *rho, effdim_error *err);

/* Indices of the m largest entries of d (n), largest first, into idx (m). */
EFFDIM_API effdim_status effdim_compare_top_indices(const double *d, size_t n, size_t m,
                                                    size_t *idx, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_COMPARE_H */
