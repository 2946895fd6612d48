/* effdim/hvp.h: curvature operators of a network's training loss.
 *
 * Three symmetric operators on parameter space (R^P, theta's layout), each
 * an effdim_operator that Lanczos, SLQ and Hutchinson use as they are:
 *
 *   Hessian, finite differences (the default; EFFDIM_HVP_FD)
 *       H v ~ (4 C(h) - C(2h)) / 3 (Richardson's extrapolation, error O(h^4))
 *       of central quotients C(h) = ||v|| (g(theta + h u) - g(theta - h u)) / (2 h),
 *       u = v / ||v||, g = the full gradient over the selected rows
 *       (effdim_mlp_loss_grad); four gradient passes per vector. One central
 *       quotient (EFFDIM_HVP_FD_CENTRAL): two passes. Forward differences
 *       (EFFDIM_HVP_FD_FORWARD) use ||v|| (g(theta + h u) - g(theta)) / h with
 *       g(theta) computed once at construction: one pass per vector.
 *       ReLU layers keep the on/off pattern they have at theta during these
 *       gradient passes (stored at construction, one byte per unit per row):
 *       a raw difference of gradients crosses the kinks of every unit that
 *       switches sign inside [-h, h], which adds a term that does not vanish
 *       with h (measured: 20 times |H v| on 784-300-100-10 with 10,000
 *       Fashion-MNIST images, 34 times in tests/test_hvp.c). With the pattern
 *       frozen the quotient converges to the Hessian that autodiff and the
 *       R-operator compute (relative error ~4e-11 on the same network).
 *   Hessian, exact (EFFDIM_HVP_EXACT): forward-over-reverse differentiation,
 *       Pearlmutter's R-operator (Neural Computation 6 (1994) 147, Section 4),
 *       exact up to rounding for every activation and both losses; an
 *       ordinary forward/backward per chunk is shared by all the vectors of a
 *       block, then one R-forward and one R-backward per vector.
 *   Gauss-Newton (EFFDIM_CURV_GGN): G v = J^T H_out J v with J = dF/dtheta the
 *       Jacobian of the outputs F = A_{L-1} and H_out the Hessian of the loss
 *       in F: for softmax cross-entropy diag(p) - p p^T per example, for mse
 *       (2/k) I per example (mean) or 2 I (sum); times the reduction scale.
 *       Positive semi-definite; computed exactly (R-forward plus a linear
 *       backward).
 *
 * Scale: the operators are second derivatives of exactly the loss that
 * effdim_mlp_loss_grad returns over the same rows: for the mean reduction
 * (1/n) sum_i l_i, for the sum reduction sum_i l_i (n = the rows selected).
 * An optional prior term adds delta v (a Gaussian prior / weight decay
 * delta/2 ||theta||^2 on that same scale; for the summed loss use n * delta
 * to mean the same prior per datum). effdim_hvp_get_info reports the scale.
 *
 * The finite-difference step (docs/curvature.md, section 7):
 *   fd          h = 5e-7 (1 + ||theta||), measured: Richardson's error stayed
 *               below 1e-10 of lambda_max for h from 1e-7 to 3e-5 on a trained
 *               tanh and a trained 784-300-100-10 relu net
 *   fd-central  h = cbrt(macheps) (1 + ||theta||)   ~ 6.1e-6 (1 + ||theta||)
 *   fd-forward  h = sqrt(macheps) (1 + ||theta||)   ~ 1.5e-8 (1 + ||theta||)
 * i.e. eps = h / ||v|| in H v ~ (g(theta + eps v) - g(theta - eps v)) / (2 eps).
 * The last two balance the truncation error (h^2/6 ||g'''[u,u]|| central, h/2
 * ||g''[u,u]|| forward) against the rounding error (~ macheps ||g|| / h)
 * under the model that the loss varies on the length scale 1 + ||theta||;
 * trained networks curve on far shorter scales (fd-central errors measured
 * 1.7e-5 and 8.5e-7 of lambda_max on the two nets above, not the
 * macheps^(2/3) ~ 4e-11 that model predicts). effdim_hvp_fd_error_estimate measures
 * both terms for a given v (Richardson extrapolation for the truncation, the
 * gradient's measured rounding noise for the rounding) so a caller or a test
 * can compare an FD product with its predicted error.
 *
 * Ownership and lifetime: the operator copies the network description, theta
 * and the row selection; it BORROWS the dataset (and the MLP workspace when
 * one is passed), which must outlive it and stay unchanged. Freed by
 * effdim_operator_free. Memory (besides a borrowed or own MLP workspace of
 * `chunk` rows): FD 4 P doubles, FD central 3 P, FD forward 4 P, plus n_rows times
 * the total relu width in bytes; exact and GGN P + 4 chunk (sizes[1] + ... +
 * sizes[L]) doubles; with cache = 1 also n_rows times (the widths of every
 * layer, the widths of layers 1.. for the Hessian's deltas, and again the
 * widths of softplus/gelu layers (pre-activations) and of curved layers for
 * the Hessian's dL/dA) doubles: for 784-300-100-10 relu, 520 doubles per row
 * (42 MB for 10,000 rows), which saves the 0.5 gradient's worth of ordinary
 * forward/backward work in every apply.
 *
 * Not thread-safe (one apply at a time); OpenBLAS threads inside.
 */
#ifndef EFFDIM_HVP_H
#define EFFDIM_HVP_H

#include <stddef.h>

#include "effdim/comm.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/operator.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_curvature {
    EFFDIM_CURV_HESSIAN = 0, /* the loss Hessian */
    EFFDIM_CURV_GGN = 1      /* the generalised Gauss-Newton matrix J^T H_out J */
} effdim_curvature;

typedef enum effdim_hvp_method {
    EFFDIM_HVP_FD = 0,         /* Richardson-extrapolated central differences (4 gradients) */
    EFFDIM_HVP_FD_FORWARD = 1, /* forward finite differences of the gradient */
    EFFDIM_HVP_EXACT = 2,      /* Pearlmutter's R-operator */
    EFFDIM_HVP_FD_CENTRAL = 3  /* one central difference of the gradient (2 gradients; the
                                  default before Richardson, ~1e-5 less exact on trained nets) */
} effdim_hvp_method;

/* "hessian" | "ggn" */
EFFDIM_API const char *effdim_curvature_name(effdim_curvature c);
EFFDIM_API effdim_status effdim_curvature_parse(const char *s, effdim_curvature *c,
                                                effdim_error *err);
/* "fd" | "fd-central" | "fd-forward" | "exact" */
EFFDIM_API const char *effdim_hvp_method_name(effdim_hvp_method m);
EFFDIM_API effdim_status effdim_hvp_method_parse(const char *s, effdim_hvp_method *m,
                                                 effdim_error *err);

typedef struct effdim_hvp_params {
    effdim_curvature curvature; /* default EFFDIM_CURV_HESSIAN */
    effdim_hvp_method method;   /* default EFFDIM_HVP_FD; GGN takes EFFDIM_HVP_EXACT only */
    double fd_step;             /* h (see above); 0 = the automatic rule (default) */
    double prior;               /* delta >= 0: adds delta v (default 0) */
    size_t chunk;               /* rows per pass for an own MLP workspace; 0 = the MLP default (512) */
    int cache;                  /* exact and GGN: 1 = keep the forward (and backward) state
                                   of every row between products, so an apply runs only the
                                   second-order passes (default 0; memory below) */
} effdim_hvp_params;

EFFDIM_API effdim_hvp_params effdim_hvp_default_params(void);

/* The operator of params->curvature / method over the rows of ds (rows ==
 * NULL: rows 0 .. n_rows-1; else n_rows indices), at theta (n_params).
 * ws: an MLP workspace to use (borrowed; its chunk size is used), or NULL to
 * allocate one of params->chunk rows. The name is "hessian-fd",
 * "hessian-fd-forward", "hessian-exact" or "ggn". The operator applies up to
 * 64 vectors per callback call (max_block).
 * Errors: EINVAL (NULL arguments, data that does not fit the network, a row
 * index out of range, GGN with a finite-difference method, an unknown
 * method), EDOM (non-finite theta, negative or non-finite prior or step),
 * ENOMEM. Apply fails with EDOM (naming the vector) for a non-finite input
 * vector. */
EFFDIM_API effdim_status effdim_hvp_operator(const effdim_mlp *m, const double *theta,
                                             const effdim_dataset *ds, const size_t *rows,
                                             size_t n_rows, const effdim_hvp_params *params,
                                             effdim_mlp_ws *ws, effdim_operator **out,
                                             effdim_error *err);

/* What an operator built here computes. */
typedef struct effdim_hvp_info {
    effdim_curvature curvature;
    effdim_hvp_method method;
    effdim_loss loss;
    effdim_reduction reduction;
    size_t n_rows;        /* examples the loss runs over */
    size_t n_params;      /* P */
    double scale;         /* the loss is scale * sum_i l_i: 1/n_rows (mean) or 1 (sum) */
    double prior;         /* delta */
    double fd_step;       /* h for FD methods (0 for exact and GGN) */
    double theta_norm;    /* ||theta|| */
    size_t gradients;     /* full gradient passes done so far (FD; includes g(theta) for forward) */
    size_t chunk;         /* rows per pass */
    size_t bytes;         /* memory the operator holds (own buffers and own workspaces) */
} effdim_hvp_info;

/* EINVAL if op was not built by effdim_hvp_operator. */
EFFDIM_API effdim_status effdim_hvp_get_info(const effdim_operator *op, effdim_hvp_info *info,
                                             effdim_error *err);

/* The automatic finite-difference step h for a method at ||theta||:
 * 5e-7 (1 + ||theta||) fd (Richardson), cbrt(macheps)(1 + ||theta||)
 * fd-central, sqrt(macheps)(1 + ||theta||) forward, 0 for exact. */
EFFDIM_API double effdim_hvp_fd_auto_step(effdim_hvp_method method, double theta_norm);

/* Predicted error of a finite-difference product D(h) v (|| . || of the
 * difference from the exact H v), measured for one v:
 *   truncation  by Richardson between h and 2h: ||D(2h) v - D(h) v|| / 15
 *               (fd; h^4 error terms), / 3 (fd-central; h^2 terms), / 1
 *               (forward; h terms)
 *   rounding    nu ||v|| / h, where nu = ||g(theta') - g(theta)|| for theta'
 *               = theta with every entry moved by a few units in the last
 *               place: the rounding noise of a difference of two computed
 *               gradients at this theta (it includes the rounding of
 *               theta + h u itself and of the gradient's own sums); a
 *               safety factor of 2 over the point estimate for central,
 *               1.5 nu ||v|| / h for fd (its weights 4/3 and 1/3)
 *   predicted   truncation + rounding
 * Costs 10 gradient passes (fd), 6 (fd-central) or 4 (forward). The operator's counters
 * are not changed. */
typedef struct effdim_hvp_fd_error {
    double step;       /* h */
    double truncation;
    double rounding;
    double predicted;
    double norm_hv;    /* ||D(h) v|| */
    double noise;      /* nu */
} effdim_hvp_fd_error;

/* v (n_params) finite and nonzero; op an FD operator from effdim_hvp_operator
 * (EINVAL otherwise). hv (n_params, may be NULL) receives D(h) v. */
EFFDIM_API effdim_status effdim_hvp_fd_error_estimate(effdim_operator *op, const double *v,
                                                      double *hv, effdim_hvp_fd_error *out,
                                                      effdim_error *err);

/* The operator of params over the rows of a data set shared out over the
 * ranks of comm (effdim/comm.h): ds holds this rank's rows (all of them for
 * comm NULL or of one rank, where this is effdim_hvp_operator over every row
 * of ds, bitwise). Each rank builds its local operator without the prior,
 * and the returned one (which owns it) adds the ranks' products in the fixed
 * order of effdim_comm_sum, weighted by n_local / n (the mean reduction over
 * all n rows of all ranks) or 1 (sum), and adds the prior once. Collective:
 * every rank calls it, and applies the result with the same vectors. info
 * (may be NULL) receives what the operator computes, n_rows and scale over
 * all ranks' rows (the counter `gradients` is this rank's).
 * Errors: those of effdim_hvp_operator, agreed over the ranks. */
EFFDIM_API effdim_status effdim_hvp_operator_comm(const effdim_mlp *m, const double *theta,
                                                  const effdim_dataset *ds,
                                                  const effdim_hvp_params *params,
                                                  effdim_mlp_ws *ws, effdim_comm *comm,
                                                  effdim_operator **out, effdim_hvp_info *info,
                                                  effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_HVP_H */
