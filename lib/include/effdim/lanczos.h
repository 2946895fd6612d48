/* effdim/lanczos.h: extreme eigenpairs of a symmetric operator by thick-restart
 * Lanczos with full reorthogonalisation.
 *
 * Finds the k largest (algebraic) eigenvalues, the k smallest (the most
 * negative curvature), or both ends (ceil(k/2) largest and floor(k/2)
 * smallest, ARPACK's "BE" convention) of an effdim_operator, with Ritz
 * vectors on request. The method (details in docs/curvature.md):
 *
 * - Lanczos three-term recurrence, every new vector orthogonalised against
 *   the whole basis: its two recurrence coefficients removed first, then
 *   classical Gram-Schmidt passes (BLAS dgemv) until one keeps at least
 *   1/sqrt(2) of the norm (the DGKS test; usually one pass);
 * - thick restart (Wu and Simon, SIAM J. Matrix Anal. Appl. 22 (2000) 602):
 *   the basis holds at most m vectors; when full, the Ritz vectors nearest
 *   the wanted end(s) are kept and the recurrence continues from the
 *   residual, so the projected matrix becomes arrowhead plus tridiagonal;
 * - after every step the small projected problem is solved (LAPACKE dstev
 *   before the first restart, dsyev after) and each wanted Ritz pair is
 *   tested by its residual bound
 *       |beta_j s_{j,i}| <= max(tol * |theta_i|, 64 * eps * ||T||),
 *   so the solver stops at the first step where all k pairs pass (the second
 *   term is the level below which no residual is resolvable in double
 *   precision; it matters only for eigenvalues within ~1e-14/tol of zero
 *   relative to the largest);
 * - at the end the Ritz vectors are formed and their TRUE residuals
 *   ||A v - lambda v|| computed by applying the operator once more to the
 *   block (k matvecs, counted separately); both residuals are reported;
 * - a breakdown (beta ~ 0: an invariant subspace was found) continues with a
 *   random vector orthogonal to the basis, as a new Krylov block coupled by
 *   zero. A breakdown from a random start means repeated eigenvalues (or a
 *   tiny operator), so the run then only stops once the newest block's
 *   extreme Ritz pair has converged and, if that block is itself invariant,
 *   lies no further out than the k-th wanted value: further copies of a
 *   repeated eigenvalue are found.
 *
 * Limitation (any single-vector Krylov method): without a breakdown, an
 * exactly repeated eigenvalue is seen through one direction of the start
 * vector; its other copies enter only through rounding errors and appear
 * when the run is long enough for them to grow. With tol <= 1e-10 the tests
 * find every copy; with tol = 1e-6 a copy sitting 5% above a dense bulk can
 * be missed (the returned values are then true eigenvalues, but not the top
 * k). The true residuals do not reveal it. Use a tighter tol when exact
 * multiplicities matter.
 *
 * Memory: the basis (m+1, n) row-major, i.e. (m+1)*n doubles, plus O(m^2)
 * for the projected problem; nothing else of size n. The Ritz vectors and the
 * block for the true residuals are formed inside the basis. Nothing is
 * allocated after _alloc.
 *
 * Default basis size: m = 2k + 60, clamped to n (100 for k = 20: 213 MB at
 * n = 266,610). Rationale: the largest gains come from not restarting at
 * all: every restart discards Krylov information and costs extra matvecs.
 * After a restart up to k + (m - k)/2 Ritz vectors are kept (k wanted plus
 * a buffer of the next ones), so each cycle adds at least 30 + k/2 new
 * vectors. On network Hessians whose top 20 reach into the bulk, m = 100
 * took 10-16% fewer matvecs than m = 60. See docs/curvature.md for the
 * measured matvec counts.
 *
 * Usage (GSL style):
 *   effdim_lanczos_params p = effdim_lanczos_default_params();
 *   p.k = 20; p.tol = 1e-8;
 *   effdim_lanczos_workspace *ws = effdim_lanczos_alloc(op->n, &p, &err);
 *   effdim_lanczos_init(ws, op, NULL, &err);
 *   while ((st = effdim_lanczos_iterate(ws, &err)) == EFFDIM_ECONTINUE) show progress;
 *   if (st == EFFDIM_OK || st == EFFDIM_EMAXITER) effdim_lanczos_result(ws, &sol, &err);
 *   effdim_lanczos_free(ws);
 * or the one-call effdim_lanczos_eigs.
 *
 * Determinism: the start vector comes from params.seed (GSL mt19937), so a
 * run is reproducible for the same operator, seed and OpenBLAS thread count.
 */
#ifndef EFFDIM_LANCZOS_H
#define EFFDIM_LANCZOS_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/operator.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_lanczos_which {
    EFFDIM_LANCZOS_LARGEST = 0,  /* the k largest (algebraic) */
    EFFDIM_LANCZOS_SMALLEST = 1, /* the k smallest (algebraic): most negative first */
    EFFDIM_LANCZOS_BOTH = 2      /* ceil(k/2) largest and floor(k/2) smallest */
} effdim_lanczos_which;

/* "top" | "bottom" | "both" */
EFFDIM_API const char *effdim_lanczos_which_name(effdim_lanczos_which w);
/* accepts "top"/"largest", "bottom"/"smallest", "both"; EINVAL otherwise */
EFFDIM_API effdim_status effdim_lanczos_which_parse(const char *s, effdim_lanczos_which *w,
                                                    effdim_error *err);

typedef struct effdim_lanczos_params {
    size_t k;                   /* eigenpairs wanted, 1 <= k <= n (default 20) */
    effdim_lanczos_which which; /* default EFFDIM_LANCZOS_LARGEST */
    size_t m;                   /* max basis size; 0 = 2k + 60; clamped to n;
                                   otherwise at least k + 2 (or n) */
    double tol;                 /* relative residual tolerance, 0 < tol < 1 (default 1e-8) */
    size_t max_restarts;        /* 0 = no limit (default 0) */
    size_t max_matvecs;         /* iteration matvecs; 0 = no limit (default 10000: a
                                   noisy operator, e.g. a finite-difference Hessian
                                   asked for a tol below its noise, never converges) */
    uint64_t seed;              /* start vector seed (default 0) */
    int want_vectors;           /* 1: keep the Ritz vectors for _result (default 0) */
    int true_residuals;         /* 1: compute ||A v - lambda v|| at the end (default 1) */
} effdim_lanczos_params;

EFFDIM_API effdim_lanczos_params effdim_lanczos_default_params(void);

typedef struct effdim_lanczos_workspace effdim_lanczos_workspace;

/* Statistics of a run. */
typedef struct effdim_lanczos_stats {
    size_t nconv;            /* of the k returned pairs, how many met the tolerance */
    size_t matvecs;          /* vectors applied by the solver, all included */
    size_t matvecs_residual; /* of which for the final true residuals (k or 0) */
    size_t steps;            /* Lanczos steps = iteration matvecs */
    size_t restarts;         /* thick restarts done */
    size_t breakdowns;       /* invariant subspaces met (continued with a random vector) */
    size_t basis_size;       /* m used */
    double seconds;          /* wall time from _init to the end */
    double seconds_apply;    /* of which inside the operator */
} effdim_lanczos_stats;

/* The answer; arrays point into the workspace (valid until its next _init or
 * _free). */
typedef struct effdim_lanczos_solution {
    size_t n, k;
    const double *eigenvalues;     /* (k) descending */
    const double *residual_bounds; /* (k) max(|beta_j s_{j,i}|, 64 eps ||T||) from the
                                      projected problem plus the Lanczos-relation error the
                                      Ritz vector carries (Gram-Schmidt coefficients T does
                                      not hold: rounding, an operator's asymmetry; tracked
                                      through thick restarts): a bound on the true residual
                                      for a linear operator (a pair locked by a restart has a
                                      zero coupling, not a zero residual) */
    const double *residuals;       /* (k) true ||A v_i - lambda_i v_i||; NaN if not computed */
    const unsigned char *converged; /* (k) 1 if the bound met the tolerance */
    const double *vectors;         /* (k, n) row-major unit Ritz vectors in the order of
                                      eigenvalues, or NULL unless want_vectors */
    effdim_lanczos_stats stats;
    effdim_status status;          /* EFFDIM_OK (all converged) or EFFDIM_EMAXITER */
} effdim_lanczos_solution;

/* Checks params against n and allocates (m+1)*n + O(m^2) doubles.
 * EINVAL: k == 0, k > n, m too small, tol outside (0, 1), bad which. NULL on
 * error. */
EFFDIM_API effdim_lanczos_workspace *effdim_lanczos_alloc(size_t n, const effdim_lanczos_params *p,
                                                          effdim_error *err);
EFFDIM_API void effdim_lanczos_free(effdim_lanczos_workspace *ws);

/* Start (or restart from scratch) on op (BORROWED for the run; op->n must be
 * the workspace's n). v0 (n) is the start vector, or NULL for a Gaussian one
 * from params.seed. EINVAL for a size mismatch or a NULL callback, EDOM for a
 * zero or non-finite v0. */
EFFDIM_API effdim_status effdim_lanczos_init(effdim_lanczos_workspace *ws, effdim_operator *op,
                                             const double *v0, effdim_error *err);

/* One Lanczos step (one matvec; a restart or the final residual block when
 * due). Returns EFFDIM_ECONTINUE while not converged, EFFDIM_OK once all k
 * pairs converged (results ready), EFFDIM_EMAXITER at max_matvecs or
 * max_restarts (partial results ready, err says how many converged), or the
 * operator's error (the run is then over; no results). Calling it again after
 * the end returns the same status. */
EFFDIM_API effdim_status effdim_lanczos_iterate(effdim_lanczos_workspace *ws, effdim_error *err);

/* Progress while iterating. */
typedef struct effdim_lanczos_progress {
    size_t steps, restarts, matvecs; /* so far (matvecs as in stats) */
    size_t basis;                    /* current basis size */
    size_t nconv;                    /* wanted pairs passing the test at the last check */
    size_t k;
    double worst;                    /* max over wanted pairs of bound / threshold (<= 1: converged) */
    double theta_max, theta_min;     /* current extreme Ritz values */
} effdim_lanczos_progress;
EFFDIM_API void effdim_lanczos_get_progress(const effdim_lanczos_workspace *ws,
                                            effdim_lanczos_progress *pr);

/* The results once _iterate returned EFFDIM_OK or EFFDIM_EMAXITER; EINVAL
 * before that. */
EFFDIM_API effdim_status effdim_lanczos_result(const effdim_lanczos_workspace *ws,
                                               effdim_lanczos_solution *out, effdim_error *err);

/* One call: alloc, init (random start), iterate to the end, copy out, free.
 * eigenvalues (k) descending; bounds, residuals (k), converged (k: 1 when
 * the pair met the tolerance, as in the solution) and vectors (k, n) may be
 * NULL; stats may be NULL. Returns EFFDIM_OK, EFFDIM_EMAXITER (outputs filled
 * with the partial results) or an error. */
EFFDIM_API effdim_status effdim_lanczos_eigs(effdim_operator *op, const effdim_lanczos_params *p,
                                             double *eigenvalues, double *bounds,
                                             double *residuals, unsigned char *converged,
                                             double *vectors, effdim_lanczos_stats *stats,
                                             effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_LANCZOS_H */
