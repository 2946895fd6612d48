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
 * negative): neg_policy EFFDIM_NEG_ZERO (default) counts them as 0 in N_eff,
 * _ABS uses |lambda|, _ASIS uses them as they are (lambda/(lambda+z) blows up
 * near lambda = -z), the same three policies as the spectrum file's
 * neg_policy attribute.
 *
 * Ownership: effdim_compare_run allocates the result's arrays;
 * effdim_compare_result_free releases them (safe on a zeroed result).
 */
#ifndef EFFDIM_COMPARE_H
#define EFFDIM_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/diag.h"
#include "effdim/neff.h"
#include "effdim/progress.h"
#include "effdim/spectrum.h"
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
    effdim_neg_policy neg_policy; /* EFFDIM_NEG_ZERO (0, a zeroed input), _ABS or _ASIS */
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
 * of z, into out (m), with the negative-value policy (see effdim/neff.h):
 * effdim_neff after EINVAL checks of the policy and z. */
EFFDIM_API effdim_status effdim_compare_neff(const double *v, size_t n, const double *z, size_t m,
                                             effdim_neg_policy neg_policy, double *out,
                                             effdim_error *err);

/* An upper bound on the full-spectrum N_eff(z) from the top k eigenvalues
 * and the trace of the remaining n_rest ones (e.g. the exact trace minus the
 * top-k sum), valid only when those remaining eigenvalues are >= 0: the GGN,
 * or a Hessian whose smallest eigenvalue is known to be >= 0 (a relu network's
 * Hessian is indefinite even though its diagonal equals the GGN's and is >= 0).
 * By concavity of x/(x+z) their sum is largest when they are equal, so
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

/* ======================================================================
 * The compare job: diagonals against a spectrum for a checkpoint
 * ======================================================================
 *
 * effdim_compare_compute runs what `effdim compare` runs, with the same
 * defaults: the reference spectrum is the given spectrum file's, else the
 * top params.k eigenpairs (with vectors) of the exact Hessian (R-operator)
 * by Lanczos at params.tol; the diagonals are the given diag file's (all but
 * adam-vhat, which is in squared-gradient units, or params.only), else
 * params.methods computed (default ggn, ef, hessian and adam, adam only with
 * Adam state and hessian only below params.max_cost); the exact Hessian
 * diagonal (the accuracy reference) is the "hessian" diagonal, else computed
 * when its estimated cost is at most params.max_cost gradients and
 * params.no_exact is 0. The PSD upper bound (effdim_compare_neff_bound) is
 * given only where it holds: a GGN reference with the exact GGN diagonal
 * ("ggn") for its trace, or a Hessian reference whose file also holds its
 * bottom eigenvalues (which = bottom or both), the smallest converged and >= 0,
 * with the exact Hessian diagonal for the trace. The z grid is params.z, else the spectrum file's,
 * else 13 values top * 10^(-5 + i/2). Negative values follow
 * params.neg_policy when params.neg_policy_given, else the spectrum file's
 * policy, else zero. Every diagonal is compared over every block (all of
 * theta, then each layer's weight and bias) by effdim_compare_run; block b > 0
 * uses the spectrum file's per-layer eigenvalues of that block when it has
 * them.
 *
 * The result is an effdim_compare_file, the content of the effdim.compare
 * file, which owns everything in it (nothing points into the inputs):
 * effdim_compare_file_save writes it, effdim_compare_file_load reads it back,
 * effdim_compare_file_free frees either (NULL-safe).
 */
#define EFFDIM_COMPARE_FORMAT "effdim.compare"
#define EFFDIM_COMPARE_VERSION 1
#define EFFDIM_COMPARE_MAX_DIAGS 16
#define EFFDIM_COMPARE_MAX_BLOCKS (EFFDIM_MLP_MAX_LAYERS + 1)
#define EFFDIM_COMPARE_MAX_Z 64
#define EFFDIM_COMPARE_NAME_MAX 32

typedef struct effdim_compare_params {
    size_t k;                 /* eigenpairs computed without a spectrum (default 20; clamped to P) */
    double tol;               /* their Lanczos tolerance (default 1e-6) */
    uint64_t seed;            /* Lanczos start vector seed (default 0) */
    const char *methods;      /* diagonals computed without a diag file, comma-separated; NULL
                                 (default): ggn,ef,hessian,adam with adam skipped without Adam
                                 state and hessian above max_cost or with no_exact; a list
                                 given here is computed as it is */
    const char *only;         /* the diag file's diagonals to compare (NULL: all but adam-vhat) */
    int no_exact;             /* 1: never compute the exact Hessian diagonal (default 0) */
    double max_cost;          /* compute it only below this many gradients (default 256) */
    const double *z;          /* (nz) z > 0, or NULL (default): see above */
    size_t nz;
    int neg_policy_given;     /* 1: neg_policy below; 0 (default): the spectrum file's, else zero */
    effdim_neg_policy neg_policy;
    size_t chunk;             /* rows per pass of the mlp workspace (0: the library's, 512) */
    size_t curve_points;      /* points of the dense z grid of /curves (default 200; 0: none) */
    effdim_progress progress; /* stages "lanczos", "diag" (detail: the method); {NULL, NULL} */
    const char *command_line; /* recorded in the file (NULL: "") */
} effdim_compare_params;

EFFDIM_API effdim_compare_params effdim_compare_default_params(void);

/* What the job reads; everything is borrowed for the call only. */
typedef struct effdim_compare_inputs {
    const effdim_checkpoint *checkpoint; /* required */
    const char *checkpoint_path;         /* required: recorded, hashed, named in messages */
    const effdim_dataset *data;          /* the rows anything computed runs over; NULL when
                                            nothing is computed (effdim_compare_needs_data) */
    const char *data_spec;               /* recorded (NULL: the diag file's) */
    const effdim_spectrum *spectrum;     /* or NULL: computed */
    const char *spectrum_path;           /* its path (recorded, named in messages) */
    const effdim_diag_file *diag;        /* or NULL: computed */
    const char *diag_path;
} effdim_compare_inputs;

/* The diagonal entries ("ggn", "adam-ef", ...) and blocks of one comparison. */
typedef struct effdim_compare_file {
    /* provenance (root attributes) */
    char *checkpoint, *spectrum_file, *diag_file, *data_spec; /* "" when absent */
    char checkpoint_sha256[65];
    char *command_line;         /* "" when unknown */
    char *version, *created;    /* NULL on save: effdim_version() and now */
    uint64_t n_params;
    char loss[EFFDIM_COMPARE_NAME_MAX], reduction[EFFDIM_COMPARE_NAME_MAX];
    effdim_neg_policy neg_policy;
    char *exact;                /* where the exact Hessian diagonal came from: the diag
                                   file, "computed", or "" (none: accuracy columns NaN) */
    size_t n_diags;
    char diag_names[EFFDIM_COMPARE_MAX_DIAGS][EFFDIM_COMPARE_NAME_MAX];
    size_t n_blocks;            /* 1 + layers */
    char block_names[EFFDIM_COMPARE_MAX_BLOCKS][EFFDIM_COMPARE_NAME_MAX]; /* "all", "layer0" */
    size_t block_offsets[EFFDIM_COMPARE_MAX_BLOCKS], block_sizes[EFFDIM_COMPARE_MAX_BLOCKS];
    size_t n_topm;
    double topm_fractions[EFFDIM_COMPARE_MAX_TOPM];
    size_t m;
    double *z;                  /* (m) */

    /* /reference */
    char ref_operator[EFFDIM_COMPARE_NAME_MAX]; /* "hessian" | "ggn" */
    char *ref_source;           /* the spectrum file, or "computed" */
    int ref_has_vectors;        /* the alignment columns were computed */
    size_t k;
    double *eigenvalues;        /* (k) descending */
    double *n_eff;              /* (m) over the k eigenvalues, under neg_policy */
    double *n_eff_slq;          /* (m) the spectrum file's SLQ N_eff when its z grid is z, or NULL */
    double *n_eff_slq_se;       /* (m) or NULL */
    double *n_eff_upper_psd;    /* (m) the PSD upper bound (effdim_compare_neff_bound), or NULL */
    double trace_eigs;          /* sum of the k eigenvalues */
    int has_trace;              /* the spectrum file's stochastic trace: */
    double trace, trace_se;
    char trace_method[EFFDIM_COMPARE_NAME_MAX];
    int has_trace_exact;
    double trace_exact;         /* sum of the exact Hessian diagonal */

    /* /compare/<diag>/<block> */
    effdim_compare_result *results; /* (n_diags, n_blocks) row-major */

    /* /sorted: each diagonal's entries sorted (descending), above floor =
       1e-8 x the largest value among the eigenvalues and the diagonals, at
       about 400 log-spaced ranks (what the figure of the sorted diagonal
       against the eigenvalues draws) */
    double sorted_floor;
    size_t sorted_n[EFFDIM_COMPARE_MAX_DIAGS];
    double *sorted[EFFDIM_COMPARE_MAX_DIAGS]; /* (sorted_n[d], 2): rank (1-based), value */

    /* /curves: what the N_eff figure draws, on a dense log grid spanning the
       z grid and the SLQ points (a decade either side of a single z) */
    size_t curve_m;                      /* 0: none (params.curve_points = 0) */
    double *curve_z;                     /* (curve_m) */
    double *curve_eigs;                  /* (curve_m) N_eff over the k eigenvalues */
    double *curve_bound;                 /* (curve_m) the PSD bound, or NULL */
    double *curve_diag[EFFDIM_COMPARE_MAX_DIAGS]; /* (curve_m) each diagonal, block all */
    /* /slq: the spectrum file's whole-spectrum SLQ N_eff on its own z grid
       (whatever the comparison's grid), with standard errors */
    size_t slq_m;                        /* 0: the spectrum file has none */
    double *slq_z, *slq_n_eff, *slq_se;  /* (slq_m); slq_se may be NULL */
} effdim_compare_file;

/* 1 when the job will compute something over the data (a spectrum, a
 * diagonal or the exact Hessian diagonal), so inputs->data must be given. */
EFFDIM_API int effdim_compare_needs_data(const effdim_compare_inputs *in,
                                         const effdim_compare_params *p);

/* The job. *out receives a new comparison (free with effdim_compare_file_free).
 * If computed is non-NULL and the spectrum was computed, *computed receives it
 * as an effdim_spectrum that owns its arrays (eigenvectors included; free with
 * effdim_spectrum_free), ready for effdim_spectrum_save; else NULL.
 * Errors: EINVAL (a spectrum or diag file of another network or loss scale, an
 * --only name the diag file lacks, no diagonals, data missing), the
 * estimators' and Lanczos' errors; EMAXITER from Lanczos is not an error (the
 * partial pairs are used; their converged flags say so). */
EFFDIM_API effdim_status effdim_compare_compute(const effdim_compare_inputs *in,
                                                const effdim_compare_params *p,
                                                effdim_compare_file **out,
                                                effdim_spectrum **computed, effdim_error *err);

/* The result of diagonal d over block b (NULL when out of range). */
EFFDIM_API const effdim_compare_result *effdim_compare_file_result(const effdim_compare_file *f,
                                                                   size_t d, size_t b);

/* Write / read the effdim.compare file (docs/file-formats.md). The save is
 * atomic; the load refuses, naming the file and the object: EFORMAT (not an
 * effdim.compare file, lengths that disagree, a name outside the known
 * set), EVERSION (newer), ENOTFOUND. */
EFFDIM_API effdim_status effdim_compare_file_save(const effdim_compare_file *f, const char *path,
                                                  effdim_error *err);
EFFDIM_API effdim_status effdim_compare_file_load(const char *path, effdim_compare_file **out,
                                                  effdim_error *err);
EFFDIM_API void effdim_compare_file_free(effdim_compare_file *f);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_COMPARE_H */
