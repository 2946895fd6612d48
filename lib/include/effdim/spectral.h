/* effdim/spectral.h: the whole spectrum of a symmetric operator, estimated:
 * stochastic Lanczos quadrature (SLQ) for tr f(A), in particular
 * N_eff(z) = tr(A (A + zI)^-1) for a list of z from one run, with deflation
 * of known top eigenpairs and a standard error; the Hutchinson and Hutch++
 * trace estimators; the smoothed spectral density.
 *
 * SLQ (Golub and Meurant, "Matrices, moments and quadrature", 1994; Ubaru,
 * Chen, Saad, SIAM J. Matrix Anal. Appl. 38(4) 1075, 2017): for a probe z
 * with E[z z^T] = I, z^T f(A) z is the integral of f against the spectral
 * measure of A seen from z, which m Lanczos steps from z turn into an m-node
 * Gauss quadrature: z^T f(A) z ~ ||z||^2 sum_j tau_j^2 f(theta_j), theta_j
 * the eigenvalues of the tridiagonal T and tau_j the first components of its
 * eigenvectors. Averaging over Rademacher probes gives tr f(A); the spread
 * over probes gives the standard error (SE = sample sd / sqrt(probes)).
 *
 * The SE is probe-to-probe noise only; it says nothing about the quadrature
 * error, which is large when f is not smooth over the spectrum (N_eff at a z
 * small against |lambda_min| of an indefinite matrix under the zero or abs
 * policy: a kink at 0 of width ~z). Since the Gauss quadrature of the
 * leading j x j block of T is exactly the j-step estimate, each probe is also
 * evaluated at half its steps and the change (full minus half, mean over
 * probes) is reported as a bias diagnostic (effdim_slq_trace_bias,
 * effdim_slq_neff_bias); effdim_slq_neff_flag turns it and lambda_min into
 * a warning.
 *
 * Deflation: given converged eigenpairs (lambda_i, u_i), i < kd (Lanczos
 * results), the probes and every Lanczos vector are kept orthogonal to the
 * u_i, so the quadrature runs on the complement and
 *   tr f(A) = sum_i f(lambda_i) + tr(P f(A) P),   P = I - U U^T,
 * where the first sum is exact and only the second is estimated. This removes
 * the outliers from the stochastic part (where they dominate the variance of
 * N_eff at large z) and from the quadrature interval.
 *
 * The spectral density (Ghorbani, Krishnan, Xiao, "An investigation into
 * neural net optimization via Hessian eigenvalue density", ICML 2019,
 * section 3): each node becomes a Gaussian of width sigma with its weight,
 *   phi(t) = (1/n) [ sum_i g(t - lambda_i) + mean_probes sum_j w_j g(t - theta_j) ],
 * g the N(0, sigma^2) density; phi integrates to ~1 (exactly 1 in
 * expectation).
 *
 * Memory: block * (steps + 1) * n doubles for the Lanczos bases of the probes
 * run together, plus probes * steps * 2 doubles of nodes and weights kept in
 * the result. The deflation vectors are borrowed during the run only.
 */
#ifndef EFFDIM_SPECTRAL_H
#define EFFDIM_SPECTRAL_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/neff.h"
#include "effdim/operator.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct effdim_slq_params {
    size_t probes; /* Rademacher probes, >= 2 for a standard error (default 32) */
    size_t steps;  /* Lanczos steps per probe, >= 1; clamped to n - deflated (default 150:
                      80 left N_eff(0.01) of the spirals demo 3.9 SE low and of a
                      barely trained ReLU net 31 SE high; 150 brought both within
                      2.4 SE at 1.9x the SLQ time; docs/curvature.md) */
    size_t block;  /* probes run together through one block apply (default 1: least
                      memory; larger blocks use the operator's block apply, e.g. dgemm) */
    uint64_t seed; /* probe seed (default 0) */
    /* Adaptive steps per probe (off when settle_nz = 0, the default): every
       settle_every steps from min_steps on, a probe's N_eff quadrature
       (deflated sum + its Gauss quadrature) at each settle_z[j] under
       settle_neg is compared with the one at half its steps (the bias
       diagnostic's comparison); once every change is at most
       max(settle_rel x |N_eff|, settle_abs) the probe stops: its error is
       then about the change at half the steps or less (Gauss quadrature
       converges at least as fast when the steps double). `steps` is the cap. */
    const double *settle_z;       /* (settle_nz) z > 0, borrowed during the run */
    size_t settle_nz;
    effdim_neg_policy settle_neg; /* default EFFDIM_NEG_ZERO */
    double settle_rel, settle_abs;/* default 0.0025 and 0.125 */
    size_t min_steps;             /* default 20 */
    size_t settle_every;          /* default 5 */
} effdim_slq_params;

EFFDIM_API effdim_slq_params effdim_slq_default_params(void);

/* The result of a run: quadrature nodes and weights of every probe. */
typedef struct effdim_slq effdim_slq;

typedef struct effdim_slq_info {
    size_t n;             /* operator size */
    size_t probes;        /* probes run */
    size_t steps;         /* Lanczos steps per probe asked (after clamping) */
    size_t half_steps;    /* steps of the comparison quadrature, ceil(steps / 2) */
    size_t deflated;      /* eigenpairs deflated */
    size_t breakdowns;    /* probes whose Krylov space became invariant early (exact) */
    size_t settled;       /* probes stopped early because their quadrature settled */
    size_t steps_total;   /* Lanczos steps over all probes (steps_total / probes: the mean) */
    size_t matvecs;       /* operator vectors applied */
    double seconds;       /* wall time of the run */
    double seconds_apply; /* of which inside the operator */
    double lambda_min;    /* smallest node or deflated eigenvalue */
    double lambda_max;    /* largest */
    double gap0;          /* mean over probes of the gap between the Gauss nodes on either
                             side of 0 (NaN when no probe has a node < 0): features of f
                             narrower than this at 0 are not resolved */
} effdim_slq_info;

/* Run SLQ on op. defl_values (kd) and defl_vectors (kd, n) row-major
 * (orthonormal: Lanczos Ritz vectors) may be NULL when kd == 0; they are
 * only read during the call. EINVAL: probes or steps 0, block 0, kd >= n;
 * EDOM: a non-finite deflated value or vector, or a non-finite operator
 * output; the operator's own errors pass through. */
EFFDIM_API effdim_status effdim_slq_run(effdim_operator *op, const effdim_slq_params *p,
                                        const double *defl_values, const double *defl_vectors,
                                        size_t kd, effdim_slq **out, effdim_error *err);
EFFDIM_API void effdim_slq_free(effdim_slq *s);

/* The same run step by step (GSL style), so a caller can show progress after
 * every block of probes, look at the estimates so far and stop early:
 *   effdim_slq_workspace *ws;
 *   effdim_slq_init(op, &p, values, vectors, kd, &ws, &err);
 *   while ((st = effdim_slq_iterate(ws, &err)) == EFFDIM_ECONTINUE)
 *       effdim_slq_neff(effdim_slq_current(ws), ...);   estimates of the probes so far
 *   effdim_slq_finish(ws, &s, &err);                   the result (all probes, or those
 *   effdim_slq_workspace_free(ws);                     done when the caller stopped)
 * Probes are drawn and run in the same order as effdim_slq_run, so the first
 * j blocks give bitwise the same quadratures as a run asked for fewer
 * probes with the same seed and block. The deflation vectors and the
 * operator are borrowed until _finish.
 * _init: the errors of effdim_slq_run's checks. _iterate: one block of
 * probes (`block` probes, fewer at the end); EFFDIM_ECONTINUE while probes
 * remain, EFFDIM_OK when all ran, or the operator's error (the run is then
 * over). _current: the result of the probes finished (info.probes says how
 * many), owned by the workspace, NULL before the first block. _finish: hands
 * over that result (EINVAL before the first block or after a failure). */
typedef struct effdim_slq_workspace effdim_slq_workspace;
EFFDIM_API effdim_status effdim_slq_init(effdim_operator *op, const effdim_slq_params *p,
                                         const double *defl_values, const double *defl_vectors,
                                         size_t kd, effdim_slq_workspace **ws, effdim_error *err);
EFFDIM_API effdim_status effdim_slq_iterate(effdim_slq_workspace *ws, effdim_error *err);
EFFDIM_API const effdim_slq *effdim_slq_current(const effdim_slq_workspace *ws);
EFFDIM_API effdim_status effdim_slq_finish(effdim_slq_workspace *ws, effdim_slq **out,
                                           effdim_error *err);
EFFDIM_API void effdim_slq_workspace_free(effdim_slq_workspace *ws);

EFFDIM_API void effdim_slq_get_info(const effdim_slq *s, effdim_slq_info *info);

/* Probe i's quadrature: *count nodes (ascending) and weights (summing to
 * ||P z_i||^2, about n - kd). Pointers into s. EINVAL for i >= probes. */
EFFDIM_API effdim_status effdim_slq_quadrature(const effdim_slq *s, size_t i, const double **nodes,
                                               const double **weights, size_t *count,
                                               effdim_error *err);

/* A spectral function f(x; ctx). */
typedef double (*effdim_spectral_fn)(double x, void *ctx);

/* tr f(A) ~ sum_i f(lambda_i) (deflated, exact) + mean over probes of the
 * quadratures; *se = sample sd over probes / sqrt(probes) (NaN for 1 probe).
 * se may be NULL. */
EFFDIM_API effdim_status effdim_slq_trace(const effdim_slq *s, effdim_spectral_fn f, void *ctx,
                                          double *estimate, double *se, effdim_error *err);

/* The quadrature-bias diagnostic of tr f(A): the mean over probes of each
 * probe's quadrature at all its steps minus the one at half_steps (the
 * leading block of its T); probes that are exact (breakdown, or all n - kd
 * steps) count 0. A value large against the SE means the estimate has not
 * converged in the number of steps (and its error is likely of that order
 * or more); a small value is necessary, not sufficient, for convergence. */
EFFDIM_API effdim_status effdim_slq_trace_bias(const effdim_slq *s, effdim_spectral_fn f,
                                               void *ctx, double *bias, effdim_error *err);

/* N_eff(z[j]) = tr f_z(A) with f_z(x) = x/(x + z) under the negative-
 * eigenvalue policy (applied to the deflated eigenvalues and to the nodes),
 * for j < nz, from the one run; se (nz) may be NULL. EDOM for z <= 0. */
EFFDIM_API effdim_status effdim_slq_neff(const effdim_slq *s, const double *z, size_t nz,
                                         effdim_neg_policy policy, double *neff, double *se,
                                         effdim_error *err);

/* bias[j] = effdim_slq_trace_bias of f_{z[j]} (nz values); EDOM for z <= 0. */
EFFDIM_API effdim_status effdim_slq_neff_bias(const effdim_slq *s, const double *z, size_t nz,
                                              effdim_neg_policy policy, double *bias,
                                              effdim_error *err);

/* Why an SLQ N_eff(z) may be unreliable (0: no reason found):
 * NEGATIVE: under the zero or abs policy, lambda_min (the smallest Ritz
 *   value seen: SLQ nodes, deflated or bottom Lanczos eigenvalues) is < 0,
 *   z <= |lambda_min| and z < EFFDIM_SLQ_GAP_FACTOR * gap0 (info.gap0, the
 *   Gauss-node gap around 0; NaN counts as unresolved): f has a kink at 0
 *   inside the spectrum, of width ~z, narrower than the quadrature resolves
 *   there. Measured (docs/curvature.md): errors of 3-30 SE at z up to ~10
 *   gaps on barely trained ReLU nets, below 2.5 SE at z = 18 gaps on a
 *   trained tanh net;
 * BIAS: |bias| > 2 se (the change from halving the steps exceeds twice the
 *   probe noise);
 * FEW_PROBES (set by the spectrum job, which knows the count; not by
 *   effdim_slq_neff_flag): fewer than EFFDIM_SLQ_MIN_PROBES probes ran, so
 *   the SE is itself a rough estimate from probes - 1 degrees of freedom. For
 *   Gaussian probe noise a band of 2 SE covers the true value with
 *   probability 0.70, 0.82 and 0.86 after 2, 3 and 4 probes (Student's t;
 *   0.95 for many). Measured (docs/curvature.md): 2 probes on a relu net
 *   with a dense reference were more than 2 SE off at 4 of 6 z, 40 probes
 *   within 0.17-0.75 SE at every z. */
#define EFFDIM_SLQ_FLAG_NEGATIVE 1u
#define EFFDIM_SLQ_FLAG_BIAS 2u
#define EFFDIM_SLQ_FLAG_FEW_PROBES 4u
#define EFFDIM_SLQ_FLAG_ALL 7u
#define EFFDIM_SLQ_MIN_PROBES 5
#define EFFDIM_SLQ_GAP_FACTOR 10.0
EFFDIM_API unsigned effdim_slq_neff_flag(double lambda_min, double gap0, double z,
                                         effdim_neg_policy policy, double se, double bias);

/* ngrid >= 2 equally spaced points over [lambda_min - pad, lambda_max + pad]
 * into grid (ngrid). pad >= 0 (3 sigma is a good choice). */
EFFDIM_API effdim_status effdim_slq_grid(const effdim_slq *s, size_t ngrid, double pad,
                                         double *grid, effdim_error *err);

/* The Gaussian-smoothed spectral density at grid (ngrid) into density
 * (ngrid); sigma > 0 in eigenvalue units. */
EFFDIM_API effdim_status effdim_slq_density(const effdim_slq *s, const double *grid, size_t ngrid,
                                            double sigma, double *density, effdim_error *err);

/* ---- trace estimators ------------------------------------------------------ */

/* Hutchinson (1989): tr A ~ mean of z^T A z over probes Rademacher z, applied
 * in blocks of `block` vectors; *se = sample sd / sqrt(probes) (NaN for one
 * probe; se may be NULL). Memory 2 * block * n doubles. */
EFFDIM_API effdim_status effdim_hutchinson(effdim_operator *op, size_t probes, size_t block,
                                           uint64_t seed, double *trace, double *se,
                                           effdim_error *err);

/* Hutch++ (Meyer, Musco, Musco, Woodruff, "Hutch++: optimal stochastic trace
 * estimation", SOSA 2021, Algorithm 1) with a budget of `matvecs` (>= 3)
 * applications: s = matvecs / 3 Rademacher sketches S, Q = orth(A S) (rows
 * dropped when A S is rank deficient), tr(Q^T A Q) exactly, plus Hutchinson
 * with s probes on (I - QQ^T) A (I - QQ^T). *se is the Hutchinson part's
 * standard error (the first part is exact given Q). Memory 3 s n doubles. */
EFFDIM_API effdim_status effdim_hutchpp(effdim_operator *op, size_t matvecs, uint64_t seed,
                                        double *trace, double *se, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_SPECTRAL_H */
