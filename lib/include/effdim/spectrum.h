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
 *                           created; slq_warning (optional string);
 *                           dense=1, dense_asymmetry (only with /dense)
 *   /spectrum/eigenvalues      float64 [k], descending
 *   /spectrum/residuals        float64 [k], true ||H v - lambda v|| (NaN if not computed)
 *   /spectrum/residual_bounds  float64 [k], |beta_j s_{j,i}| from the projected problem
 *   /spectrum/converged        int64 [k], 1 when the pair met tol
 *   /spectrum/eigenvectors     float64 (k, P), optional, theta order, unit norm
 *   /effdim/z                  float64 [m]
 *   /effdim/n_eff              float64 [m], sum over the k Ritz values
 *   /effdim/n_eff_slq          float64 [m], optional: SLQ over the whole spectrum
 *   /effdim/n_eff_slq_se       float64 [m], optional: its standard error
 *   /effdim/n_eff_slq_bias     float64 [m], optional: full-step minus half-step
 *                              quadrature (a bias diagnostic; effdim/spectral.h)
 *                              (group attrs slq_probes, slq_steps, slq_deflated)
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
 * Ownership: effdim_spectrum_load returns a spectrum that owns every array
 * and string; effdim_spectrum_free frees them (NULL-safe). For saving, a
 * caller fills a struct on the stack with pointers to its own arrays (the
 * save never takes ownership) and must not pass that struct to _free.
 * Saving is atomic (temporary file beside the target, fsync, rename).
 */
#ifndef EFFDIM_SPECTRUM_H
#define EFFDIM_SPECTRUM_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_SPECTRUM_FORMAT "effdim.spectrum"
#define EFFDIM_SPECTRUM_VERSION 1
#define EFFDIM_SPECTRUM_NAME_MAX 32

/* One layer's block of the operator (the Hessian restricted to its weight
 * and bias: theta[offset, offset + size)). */
typedef struct effdim_spectrum_layer {
    size_t offset, size;
    size_t k;
    double *eigenvalues;   /* (k) descending */
    double *residuals;     /* (k) */
    double *n_eff;         /* (m of the file's z) Ritz-sum N_eff of this block, or NULL */
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
    char hvp_method[EFFDIM_SPECTRUM_NAME_MAX]; /* "fd" | "fd-forward" | "exact" */
    double fd_eps;                     /* FD step h along unit vectors (0 for exact) */
    double prior;                      /* delta added to the operator */
    char which[EFFDIM_SPECTRUM_NAME_MAX];      /* "top" | "bottom" | "both" */
    double tol;
    uint64_t seed;
    uint64_t steps;                    /* Lanczos steps of the main run */
    uint64_t lanczos_matvecs;          /* its products, true residuals included */
    uint64_t matvecs;                  /* every product of the run (Lanczos, SLQ, trace, layers) */
    uint64_t restarts, nconv;
    double seconds;
    char neg_policy[EFFDIM_SPECTRUM_NAME_MAX]; /* "zero" | "abs" | "asis" */
    char *version, *created;           /* NULL: written as effdim_version() and now */
    char *slq_warning;                 /* why the SLQ N_eff may be unreliable, or NULL
                                          (root attribute written only when non-empty) */

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
} effdim_spectrum;

/* A zeroed spectrum (all optional parts absent). */
EFFDIM_API void effdim_spectrum_init(effdim_spectrum *s);

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

/* Frees a spectrum from effdim_spectrum_load and everything it owns. */
EFFDIM_API void effdim_spectrum_free(effdim_spectrum *s);

/* SHA-256 (FIPS 180-4) of a file as 64 lower-case hex digits into hex (65
 * bytes); EIO naming the path if it cannot be read. */
EFFDIM_API effdim_status effdim_file_sha256(const char *path, char hex[65], effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_SPECTRUM_H */
