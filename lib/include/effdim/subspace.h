/* effdim/subspace.h: loss surfaces and perturbations inside eigenspaces of
 * the Hessian (Maddox, Benton and Wilson 2020, Section 5, the two-spirals
 * loss surfaces and perturbation test; SEEDS.md 4.6), and the
 * "effdim.surface" file.
 *
 * The eigenbasis is the dense one: P products of a curvature operator with
 * unit vectors, symmetrised, LAPACKE_dsyevd, the pairs sorted DESCENDING
 * (index 0 the largest) either by |eigenvalue|, as the paper's notebook
 * sorts them (so "bottom" means nearest zero, of either sign), or by the
 * eigenvalue itself (so "bottom" means most negative). For models of
 * a few thousand parameters (the paper's 2,181): P^2 doubles of memory and
 * about 9 P^3 flops.
 *
 * A subspace is a contiguous range of that order: "top:K" (the K largest),
 * "bottom:K" (the K smallest), "all", or "range:A:B" (indices A .. B-1).
 * Random directions in a subspace U (P, m) are U g with g ~ N(0, I_m)
 * (GSL mt19937, seeded), Gram-Schmidt orthogonalised against each other and
 * scaled to the requested norm, so they stay in span(U) exactly up to
 * rounding.
 */
#ifndef EFFDIM_SUBSPACE_H
#define EFFDIM_SUBSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/operator.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_eig_order {
    EFFDIM_EIG_BY_ABS = 0,  /* |lambda| descending (the paper's notebook; default) */
    EFFDIM_EIG_BY_VALUE = 1 /* lambda descending */
} effdim_eig_order;

/* "abs" | "value" */
EFFDIM_API const char *effdim_eig_order_name(effdim_eig_order o);
EFFDIM_API effdim_status effdim_eig_order_parse(const char *s, effdim_eig_order *o,
                                                effdim_error *err);

typedef struct effdim_eigenbasis {
    size_t P;
    effdim_eig_order order;
    double *values;   /* (P) eigenvalues in that order */
    double *vectors;  /* (P, P) row i = the unit eigenvector of values[i] */
    double asymmetry; /* max|A - A^T| / max|A| of the dense operator before symmetrising */
} effdim_eigenbasis;

/* The dense eigenbasis of op (n = P) in the given order (ties keep the
 * value order), reporting one "dense" unit per block of products and "eigh"
 * once. */
EFFDIM_API effdim_status effdim_eigenbasis_dense(effdim_operator *op, effdim_eig_order order,
                                                 const effdim_progress *prog,
                                                 effdim_eigenbasis **out, effdim_error *err);
EFFDIM_API void effdim_eigenbasis_free(effdim_eigenbasis *b);

typedef struct effdim_subspace {
    size_t first; /* index of its first eigenvector in the basis order */
    size_t count; /* dimension */
    char name[32];/* as parsed ("top:3") */
} effdim_subspace;

/* "top:K", "bottom:K", "all" or "range:A:B" for a basis of P vectors;
 * EINVAL naming the text for anything else or a range outside [0, P). */
EFFDIM_API effdim_status effdim_subspace_parse(const char *s, size_t P, effdim_subspace *out,
                                               effdim_error *err);

/* ndir (<= s.count) orthogonal random directions in span(s), each of norm
 * `norm`, into D (ndir, P) row-major. */
EFFDIM_API effdim_status effdim_subspace_directions(const effdim_eigenbasis *b,
                                                    const effdim_subspace *s, size_t ndir,
                                                    double norm, uint64_t seed, double *D,
                                                    effdim_error *err);

typedef struct effdim_surface_params {
    double range;  /* the grid is linspace(-range/2, range/2, n_pts) on both axes; default 1 */
    double scale;  /* the norm of both directions; default 1 */
    size_t n_pts;  /* default 100 */
    uint64_t seed; /* default 0 */
} effdim_surface_params;

EFFDIM_API effdim_surface_params effdim_surface_default_params(void);

/* The loss (m's reduction, over all rows of ds) on the plane theta + a d1 + b d2,
 * d1, d2 = effdim_subspace_directions(b, s, 2, scale, seed): alpha (n_pts)
 * receives the grid, loss (n_pts, n_pts) row i = alpha_i along d1, column j
 * along d2. One "surface" progress unit per row. */
EFFDIM_API effdim_status effdim_loss_surface(const effdim_mlp *m, const double *theta,
                                             const effdim_dataset *ds, const effdim_eigenbasis *b,
                                             const effdim_subspace *s,
                                             const effdim_surface_params *p,
                                             const effdim_progress *prog, double *alpha,
                                             double *loss, effdim_error *err);

/* The predicted class of every row of ds (bce: f > 0; cross_entropy: argmax;
 * EINVAL for mse) at theta + d for n_dirs random unit directions d of span(s)
 * times norm (seeded, drawn independently, not orthogonalised): changed[r]
 * = rows whose prediction differs from theta's; loss[r] (may be NULL) = the
 * loss there. */
EFFDIM_API effdim_status effdim_perturb_predictions(const effdim_mlp *m, const double *theta,
                                                    const effdim_dataset *ds,
                                                    const effdim_eigenbasis *b,
                                                    const effdim_subspace *s, double norm,
                                                    size_t n_dirs, uint64_t seed, size_t *changed,
                                                    double *loss, effdim_error *err);

/* ---- the file "effdim.surface" (docs/file-formats.md) ---- */

typedef struct effdim_surface_set {
    size_t n_surfaces;
    effdim_surface_params params;
    size_t P;
    double *eigenvalues;          /* (P) descending */
    effdim_subspace *subspaces;   /* (n_surfaces) */
    double *alpha;                /* (n_pts) */
    double *loss;                 /* (n_surfaces, n_pts, n_pts) */
    double center_loss;           /* the loss at theta */
    char *checkpoint, *data_spec; /* provenance (may be NULL) */
} effdim_surface_set;

EFFDIM_API effdim_status effdim_surface_save(const effdim_surface_set *s, const char *path,
                                             effdim_error *err);
EFFDIM_API effdim_status effdim_surface_load(const char *path, effdim_surface_set **out,
                                             effdim_error *err);
EFFDIM_API void effdim_surface_set_free(effdim_surface_set *s);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_SUBSPACE_H */
