/* effdim/spectrum.h: the spectrum file (format "effdim.spectrum", version 1).
 *
 * What `effdim spectrum` computed from a checkpoint: the extreme eigenvalues
 * of a curvature operator with their residuals, effective dimensionality
 * N_eff(z) from the Ritz values and over the whole spectrum (SLQ), the trace,
 * the spectral density, per-layer spectra, and the provenance needed to
 * reproduce it. Layout (docs/file-formats.md documents every field):
 *
 *   /                       attrs format="effdim.spectrum", format_version=1,
 *                           checkpoint, checkpoint_sha256, data_spec, n, n_params,
 *                           loss, reduction, scale, operator, hvp_method, fd_eps,
 *                           prior, which, k, tol, seed, steps, lanczos_matvecs,
 *                           matvecs, restarts, nconv, seconds, neg_policy, version,
 *                           created, partial (0/1); slq_warning, command_line
 *                           (optional strings);
 *                           dense=1, dense_asymmetry (only with /dense)
 *   /spectrum/eigenvalues      float64 [k], descending
 *   /spectrum/residuals        float64 [k], true ||H v - lambda v|| (NaN if not computed)
 *   /spectrum/residual_bounds  float64 [k], |beta_j s_{j,i}| from the projected problem,
 *                              at least 64 eps ||T|| (the recurrence's rounding level)
 *   /spectrum/converged        int64 [k], 1 when the pair met tol
 *   /spectrum/eigenvectors     float64 (k, P), optional, theta order, unit norm
 *   /effdim/z                  float64 [m]
 *   /effdim/n_eff              float64 [m], sum over the k Ritz values
 *   /effdim/n_eff_slq          float64 [m], optional: SLQ over the whole spectrum
 *   /effdim/n_eff_slq_se       float64 [m], optional: its standard error
 *   /effdim/n_eff_slq_bias     float64 [m], optional: full-step minus half-step
 *                              quadrature (a bias diagnostic; effdim/spectral.h)
 *                              (group attrs slq_probes, slq_steps, slq_deflated,
 *                               slq_stop, slq_target_rel, slq_target_abs)
 *   /effdim/n_eff_dense        float64 [m], optional: over all P eigenvalues of
 *                              the dense operator (only with /dense)
 *   /dense/eigenvalues         float64 [P], optional, descending: the whole
 *                              spectrum of the symmetrised dense operator
 *   /trace                     optional group: attrs estimate, se, method, probes, matvecs
 *   /density/grid, /density/values   float64 [g], optional (attrs sigma, probes, steps)
 *   /per_layer/layer{i}/eigenvalues, residuals   float64 [k_i], optional
 *                              (group attrs offset, size: the block of theta;
 *                               /per_layer/layer{i}/n_eff [m] over the Ritz values)
 *
 * Ownership, one rule: an effdim_spectrum owns every array and string it
 * points to. effdim_spectrum_new, effdim_spectrum_load and
 * effdim_spectrum_compute return one on the heap; effdim_spectrum_free
 * frees it and everything it points to (NULL-safe). effdim_spectrum_save
 * and effdim_spectrum_check only read. (A caller may still describe its own
 * arrays in a zeroed struct on the stack, effdim_spectrum_init, to save
 * them; such a struct is a view and is never passed to _free.)
 * Saving is atomic (temporary file beside the target, fsync, rename).
 *
 * The spectrum job (effdim_spectrum_compute, below) is what `effdim
 * spectrum` runs: a C program calling it with effdim_spectrum_default_params()
 * on the same checkpoint and data gets bitwise the command's numbers.
 */
#ifndef EFFDIM_SPECTRUM_H
#define EFFDIM_SPECTRUM_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/comm.h"
#include "effdim/data.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_SPECTRUM_FORMAT "effdim.spectrum"
#define EFFDIM_SPECTRUM_VERSION 2 /* 2: /effdim/n_eff_slq_flags may hold bit 4 (few probes) */
#define EFFDIM_SPECTRUM_NAME_MAX 32

/* One layer's block of the operator (the Hessian restricted to its weight
 * and bias: theta[offset, offset + size)). */
typedef struct effdim_spectrum_layer {
    size_t offset, size;
    size_t k;
    double *eigenvalues;   /* (k) descending */
    double *residuals;     /* (k) */
    double *n_eff;         /* (m of the file's z) Ritz-sum N_eff of this block, or NULL */
    size_t nconv;          /* pairs that met tol (the job fills it; not in the file) */
} effdim_spectrum_layer;

typedef struct effdim_spectrum {
    /* provenance: root attributes */
    char *checkpoint;                  /* path as given */
    char checkpoint_sha256[65];        /* lower-case hex; "" when unknown */
    char *data_spec;
    uint64_t n;                        /* examples the loss runs over */
    uint64_t n_params;                 /* P */
    char loss[EFFDIM_SPECTRUM_NAME_MAX];       /* "cross_entropy" | "mse" */
    char reduction[EFFDIM_SPECTRUM_NAME_MAX];  /* "mean" | "sum" */
    double scale;                      /* the loss is scale * sum_i l_i */
    char op[EFFDIM_SPECTRUM_NAME_MAX];         /* "hessian" | "ggn" (attribute 'operator') */
    char hvp_method[EFFDIM_SPECTRUM_NAME_MAX]; /* "fd" | "fd-central" | "fd-forward" | "exact" */
    double fd_eps;                     /* FD step h along unit vectors (0 for exact) */
    double prior;                      /* delta added to the operator */
    char which[EFFDIM_SPECTRUM_NAME_MAX];      /* "top" | "bottom" | "both" */
    double tol;
    uint64_t seed;
    uint64_t steps;                    /* Lanczos steps of the main run */
    uint64_t lanczos_matvecs;          /* its products, true residuals included */
    uint64_t matvecs;                  /* every product of the run (Lanczos, SLQ, trace, layers) */
    uint64_t restarts, nconv;
    uint64_t nconv_true;               /* pairs whose TRUE residual meets max(tol |lambda_i|,
                                          64 eps |lambda_1|) (attribute 'nconv_true') */
    double seconds;
    char neg_policy[EFFDIM_SPECTRUM_NAME_MAX]; /* "zero" | "abs" | "asis" */
    char *version, *created;           /* NULL: written as effdim_version() and now */
    char *slq_warning;                 /* why the SLQ N_eff may be unreliable, or NULL
                                          (root attribute written only when non-empty) */
    int partial;                       /* 1: the run was stopped (interrupted, or the file
                                          was written after Lanczos while the rest ran);
                                          what is present is complete (attribute 'partial') */
    char *command_line;                /* the command that made it, or NULL (not written) */

    /* /spectrum */
    size_t k;
    double *eigenvalues;               /* (k) descending */
    double *residuals;                 /* (k) */
    double *residual_bounds;           /* (k) */
    unsigned char *converged;          /* (k) 0/1, may be NULL on save (all written 0) */
    double *eigenvectors;              /* (k, n_params) or NULL */

    /* /effdim */
    size_t m;
    double *z;                         /* (m) */
    double *n_eff;                     /* (m) Ritz sum */
    double *n_eff_slq;                 /* (m) or NULL */
    double *n_eff_slq_se;              /* (m) or NULL (only with n_eff_slq) */
    double *n_eff_slq_bias;            /* (m) or NULL (only with n_eff_slq) */
    uint64_t slq_probes, slq_steps, slq_deflated;
    char slq_stop[EFFDIM_SPECTRUM_NAME_MAX]; /* why the SLQ stopped: "target" (the SE of
                                          N_eff met the target at every z), "probes" (the
                                          probe limit), "budget", "interrupted" */
    double slq_target_rel, slq_target_abs; /* the SE target: max(rel * |N_eff|, abs) */
    double *n_eff_dense;               /* (m) over dense_eigenvalues, or NULL */

    /* /dense (--dense): both arrays set or both NULL */
    double *dense_eigenvalues;         /* (n_params) descending, or NULL */
    double dense_asymmetry;            /* max|A - A^T| / max|A| before symmetrising */

    /* /trace */
    int has_trace;
    double trace, trace_se;
    char trace_method[EFFDIM_SPECTRUM_NAME_MAX]; /* "hutchinson" | "hutch++" */
    uint64_t trace_probes, trace_matvecs;

    /* /density */
    size_t n_grid;                     /* 0: no density */
    double *grid, *density;            /* (n_grid) */
    double density_sigma;
    uint64_t density_probes, density_steps;

    /* /per_layer */
    size_t n_layers;                   /* 0: none */
    effdim_spectrum_layer *layers;     /* (n_layers) */

    /* Details of the run: filled by effdim_spectrum_compute for the summary,
       not stored in the file (zero after _load), slq_flags excepted. */
    int random_subset;                 /* the loss ran over params.subset random rows */
    double lanczos_seconds;            /* wall time of the main Lanczos run */
    double product_seconds;            /* wall time inside the operator's products, all of
                                          the run (with ranks: the reductions included) */
    unsigned *slq_flags;               /* (m) effdim_slq_neff_flag per z, or NULL; stored
                                          as /effdim/n_eff_slq_flags (with n_eff_slq) */
    double slq_lambda_min;             /* smallest Ritz value seen (SLQ nodes, Lanczos pairs) */
    double slq_gap0;                   /* effdim_slq_info.gap0 */
    uint64_t slq_half_steps;           /* steps of the comparison quadrature */
    uint64_t slq_matvecs;              /* products of the SLQ */
    uint64_t dense_matvecs;            /* products of the dense build */
    double dense_seconds;              /* its wall time, eigenvalues and N_eff included */
    double slq_seconds;                /* wall time of the SLQ */
    double fd_rel_error;               /* finite-difference error predicted for the top
                                          Ritz vector, relative to its eigenvalue (0: not
                                          estimated) */
    uint64_t slq_max_probes;           /* the probe limit the SLQ ran under */
    uint64_t slq_budget;               /* the product budget it ran under (0: none) */
    uint64_t slq_steps_total;          /* Lanczos steps over its probes */
    uint64_t slq_settled;              /* probes stopped early by the settle test */
    double slq_estimate_seconds;       /* its cost announced before it began */
    char *notes;                       /* what the caller should be told, one line per
                                          note ("k = 40 is above P = 17: clamped", ...), or
                                          NULL */
} effdim_spectrum;

/* Zero a spectrum (all optional parts absent). */
EFFDIM_API void effdim_spectrum_init(effdim_spectrum *s);
/* A zeroed spectrum on the heap (free with effdim_spectrum_free); NULL and
 * ENOMEM when out of memory. */
EFFDIM_API effdim_spectrum *effdim_spectrum_new(effdim_error *err);

/* Check the invariants the file promises (lengths set, eigenvalues
 * descending, finite values where required, n_eff_slq_se only with
 * n_eff_slq); EINVAL naming the field. */
EFFDIM_API effdim_status effdim_spectrum_check(const effdim_spectrum *s, effdim_error *err);

/* Write the layout above atomically (an existing file is replaced only when
 * the write succeeded). Checks first with effdim_spectrum_check. */
EFFDIM_API effdim_status effdim_spectrum_save(const effdim_spectrum *s, const char *path,
                                              effdim_error *err);

/* Read a spectrum file. Refuses, naming the file, the object and the
 * expectation: EIO (cannot open or read), EFORMAT (not an effdim.spectrum file,
 * lengths that disagree, eigenvalues not descending), EVERSION (newer
 * format_version), ENOTFOUND (the file or a required object missing). */
EFFDIM_API effdim_status effdim_spectrum_load(const char *path, effdim_spectrum **out,
                                              effdim_error *err);

/* Frees a spectrum (from _new, _load or _compute) and everything it owns. */
EFFDIM_API void effdim_spectrum_free(effdim_spectrum *s);

/* ---- the spectrum job ------------------------------------------------------

   effdim_spectrum_compute runs, on the curvature operator of a network at
   theta over a data set (lib/hvp.c):
     1. thick-restart Lanczos for the k extreme eigenpairs (effdim/lanczos.h),
        progress stage "lanczos";
     2. N_eff(z) over the Ritz values (effdim/neff.h);
     3. with probes > 0: SLQ over the whole spectrum with the converged
        pairs deflated (effdim/spectral.h), N_eff with its SE and the
        quadrature-bias diagnostic, the reliability flags and warning,
        optionally the density; stage "slq" (probes done of probes, the
        current N_eff +- SE); then the Hutch++ trace, stage "trace";
     4. with dense: every eigenvalue of the dense operator (P products,
        stage "dense") and N_eff over them;
     5. with per_layer: the top eigenpairs of each layer's block, stage
        "layer".
   The probes of the SLQ run `block` at a time through one block apply,
   block = slq_mem_budget / ((slq_steps + 1) P 8 bytes), clamped to 1..8 and
   to the probes (the results do not depend on it). */

typedef struct effdim_spectrum_params {
    /* the operator (effdim/hvp.h) */
    effdim_curvature op;         /* default EFFDIM_CURV_HESSIAN */
    effdim_hvp_method hvp;       /* default EFFDIM_HVP_FD; the GGN is always exact */
    double prior;                /* delta * I added (default 0) */
    size_t chunk;                /* rows per pass; 0 = the MLP default (512) */
    int cache;                   /* exact/GGN: keep the forward pass (default 1; bitwise
                                    the same products) */
    size_t subset;               /* 0: every row; else this many random rows
                                    (effdim_sample_rows with seed) */
    /* Lanczos */
    size_t k;                    /* eigenpairs (default 20; clamped to P) */
    effdim_lanczos_which which;  /* default EFFDIM_LANCZOS_LARGEST */
    double tol;                  /* relative residual tolerance (default 1e-8) */
    size_t basis;                /* basis size m; 0 = 2k + 60 (clamped to P) */
    size_t max_matvecs;          /* iteration products (default 5000) */
    uint64_t seed;               /* start vector, probes, trace, subset (default 0) */
    int save_vectors;            /* keep the Ritz vectors in the result (default 0) */
    int set_reduction;           /* 1: use `reduction` instead of the network's (default 0) */
    effdim_reduction reduction;  /* mean or sum: the scale of every eigenvalue and N_eff */
    /* N_eff */
    const double *z;             /* (nz) z > 0, borrowed during the call; nz = 0 (the
                                    default): the grid lambda_1 x 10^-6 .. lambda_1 x 10^0,
                                    one point per decade at 2 significant digits, with
                                    z = 1 added (lambda_1 = max |Ritz value|; 1, 10, 100
                                    when it is 0) */
    size_t nz;
    effdim_neg_policy neg;       /* default EFFDIM_NEG_ZERO */
    /* the whole spectrum */
    size_t probes;               /* the most SLQ probes, and the trace's products (default
                                    30; 0 skips both; 1 runs 2 probes) */
    size_t slq_steps;            /* Lanczos steps per probe (default effdim_slq_default_params) */
    size_t slq_mem_budget;       /* bytes for the probe bases run together (default 256 MiB) */
    double slq_target_rel;       /* the SLQ stops once, at every z, SE <= max(slq_target_rel
                                    x |N_eff|, slq_target_abs) (default 0.01 and 0.5; both 0:
                                    run every probe) */
    double slq_target_abs;
    size_t slq_min_probes;       /* probes before the target is trusted (default 8) */
    size_t slq_budget_matvecs;   /* stop before a block of probes would pass this many
                                    SLQ products (0: slq_budget_factor decides; the first
                                    two probes always run) */
    double slq_budget_seconds;   /* or this much SLQ time (0: none, the default) */
    double slq_budget_factor;    /* with neither budget set: the SLQ and the trace together
                                    take at most this many times the Lanczos run's products
                                    (the SLQ at least half of it, however large the trace)
                                    (default 2: the whole job about 3 times --probes 0;
                                    0: no budget, every probe up to the target) */
    double slq_settle;           /* adaptive steps per probe: a probe stops once its
                                    quadrature at every z changes by at most slq_settle x
                                    the SE target between half its steps and its steps
                                    (effdim_slq_params.settle_*; default 0.25; 0: every
                                    probe runs slq_steps) */
    int density;                 /* also the density on density_points (default 0) */
    size_t density_points;       /* default 400 */
    /* the exact spectrum and the layers */
    int dense;                   /* default 0 */
    size_t dense_limit;          /* the largest P dense accepts unless force (default 5000) */
    int force;                   /* default 0 */
    int per_layer;               /* default 0 */
    /* provenance recorded in the result (borrowed during the call) */
    const char *checkpoint;      /* path: recorded, and its SHA-256 computed; NULL: none */
    const char *data_spec;       /* NULL: the data set's own spec */
    const char *command_line;    /* recorded as the attribute command_line (NULL: none) */
    const char *partial_path;    /* when set, the result so far (the Lanczos pairs and the
                                    Ritz N_eff, marked partial) is saved there atomically
                                    before the SLQ starts (NULL: not, the default) */
    effdim_progress progress;    /* default {NULL, NULL}; a non-zero answer stops the job:
                                    see effdim_spectrum_compute */
    effdim_comm *comm;           /* NULL (default): one process. Else every rank of it calls
                                    the job with its share of the rows as ds
                                    (effdim_comm_share), the same network, theta and params;
                                    the products are summed over the ranks
                                    (effdim_hvp_operator_comm), every rank returns the same
                                    result and only rank 0 writes partial_path. With more than
                                    one rank, subset and slq_budget_seconds are refused (a
                                    random subset of the whole set and a time budget are not
                                    the same on every rank) and the finite-difference error
                                    estimate is skipped (fd_rel_error 0) */
} effdim_spectrum_params;

EFFDIM_API effdim_spectrum_params effdim_spectrum_default_params(void);

/* EINVAL naming the field when p is unusable for a model of n_params
 * parameters: k = 0, tol outside (0, 1), z missing or not > 0, slq_steps <
 * 2, dense above dense_limit without force (the message gives P, the memory
 * and the products it would take). effdim_spectrum_compute checks the same
 * before any product. */
EFFDIM_API effdim_status effdim_spectrum_check_params(const effdim_spectrum_params *p,
                                                      size_t n_params, effdim_error *err);

/* The job above for network m at theta (m->n_params) over ds (rows used:
 * all, or params.subset random ones). On success *out owns the result (free
 * with effdim_spectrum_free) ready for effdim_spectrum_save; fewer than k
 * converged pairs is a success (see nconv). When the progress callback
 * answers non-zero after the Lanczos run, the job keeps what is complete
 * (the SLQ over the probes finished, if at least 2; layers done), skips the
 * rest, marks the result partial and returns EFFDIM_EMAXITER ("interrupted")
 * with *out set; during the Lanczos run it returns EFFDIM_EMAXITER with *out
 * NULL (no pair is complete yet). Errors: those of
 * effdim_spectrum_check_params, the data check (effdim_mlp_check_data), the
 * operator, the solvers and the partial save; *out is then NULL. */
EFFDIM_API effdim_status effdim_spectrum_compute(const effdim_mlp *m, const double *theta,
                                                 const effdim_dataset *ds,
                                                 const effdim_spectrum_params *p,
                                                 effdim_spectrum **out, effdim_error *err);


#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_SPECTRUM_H */
