/* lib/mlp_curv.h: second-order passes of the MLP, one chunk at a time; not installed.
 *
 * The exact Hessian-vector product by forward-over-reverse differentiation
 * (Pearlmutter, "Fast exact multiplication by the Hessian", Neural
 * Computation 6 (1994) 147-160, the R{.} operator of Section 4) and the
 * generalised Gauss-Newton product J^T H_out J v (Schraudolph, "Fast
 * curvature matrix-vector products for second-order gradient descent",
 * Neural Computation 14 (2002) 1723-1738, Section 3), built on the forward
 * caches of lib/mlp_internal.h. lib/hvp.c drives them over the chunks of a
 * row selection; lib/mlp_curv.c implements them.
 *
 * Notation (per chunk of len rows; R{x} = d/dt x(theta + t v) at t = 0, the
 * directional derivative along v = (V_l, c_l), V_l (out, in), c_l (out)):
 *
 *   forward      Z_l = A_{l-1} W_l^T + b_l,  A_l = phi_l(Z_l),  A_{-1} = X
 *   deltas       G_l = dL/dA_l,  D_l = dL/dZ_l = G_l * phi_l'(Z_l),
 *                G_{l-1} = D_l W_l,  G_{L-1} = s dl/dF (F = A_{L-1})
 *   R-forward    R{Z_l} = R{A_{l-1}} W_l^T + A_{l-1} V_l^T + c_l,  R{A_{-1}} = 0
 *                R{A_l} = phi_l'(Z_l) * R{Z_l}
 *   R-backward   R{G_{L-1}} = s (d^2 l / dF^2) R{F}
 *                R{D_l} = R{G_l} * phi_l'(Z_l) + G_l * phi_l''(Z_l) * R{Z_l}
 *                R{G_{l-1}} = R{D_l} W_l + D_l V_l
 *   product      (H v)_{W_l} += R{D_l}^T A_{l-1} + D_l^T R{A_{l-1}}
 *                (H v)_{b_l} += column sums of R{D_l}
 *   Gauss-Newton the same R-forward, then back-propagate U = s H_out R{F}
 *                linearly: D^U_l = G^U_l * phi_l', G^U_{l-1} = D^U_l W_l,
 *                (G v)_{W_l} += D^U_l^T A_{l-1}, (G v)_{b_l} += colsum D^U_l
 *
 * s is the reduction scale (1/n for the mean, 1 for the sum), so summing the
 * chunks gives the Hessian (or GGN) of exactly the loss effdim_mlp_loss_grad
 * computes. All products are row-major cblas_dgemm.
 *
 * Cost per vector beyond the shared forward/backward, in units of one
 * layer's out*in*len multiply-adds: R-forward 1 (layer 0) or 2, R-backward
 * 1 (layer 0) or 4 (Hessian), 1 or 2 (GGN).
 */
#ifndef EFFDIM_MLP_CURV_H
#define EFFDIM_MLP_CURV_H

#include <stddef.h>

#include "effdim/mlp.h"
#include "mlp_internal.h"

/* Buffers beyond the MLP workspace, each (chunk, sizes[l+1]) row-major. */
typedef struct effdim_curv_ws {
    size_t n_layers;
    size_t chunk;
    size_t bytes;                        /* total bytes held */
    double *block;                       /* the one allocation */
    double *G[EFFDIM_MLP_MAX_LAYERS];    /* dL/dA_l of the chunk */
    double *RZ[EFFDIM_MLP_MAX_LAYERS];   /* R{Z_l} */
    double *RA[EFFDIM_MLP_MAX_LAYERS];   /* R{A_l} */
    double *RG[EFFDIM_MLP_MAX_LAYERS];   /* R{G_l}, turned into R{D_l} in place */
} effdim_curv_ws;

effdim_curv_ws *effdim_curv_ws_alloc(const effdim_mlp *m, size_t chunk, effdim_error *err);
void effdim_curv_ws_free(effdim_curv_ws *cw);

/* After effdim_mlp_forward and effdim_mlp_output(want_delta, scale s) on the
 * chunk: G[l] = dL/dA_l and ws->D[l] = dL/dZ_l for every layer (no parameter
 * gradient). */
void effdim_curv_backward_keep(const effdim_mlp *m, const double *theta, size_t len,
                               effdim_mlp_ws *ws, effdim_curv_ws *cw);

/* R-forward along v (n_params, theta layout): RZ[l], RA[l] for every layer.
 * X (len, sizes[0]) is the chunk's input; needs the forward caches. */
void effdim_curv_rforward(const effdim_mlp *m, const double *theta, const double *v,
                          const double *X, size_t len, const effdim_mlp_ws *ws,
                          effdim_curv_ws *cw);

/* After backward_keep and rforward(v): hv (n_params) += the chunk's part of
 * H v, with s the reduction scale used for the output deltas. */
void effdim_curv_hessian_accumulate(const effdim_mlp *m, const double *theta, const double *v,
                                    const double *X, size_t len, double s,
                                    const effdim_mlp_ws *ws, effdim_curv_ws *cw, double *hv);

/* After rforward(v) (the forward caches are enough: no deltas needed):
 * gv (n_params) += the chunk's part of J^T (s H_out) J v. */
void effdim_curv_ggn_accumulate(const effdim_mlp *m, const double *theta, const double *X,
                                size_t len, double s, const effdim_mlp_ws *ws,
                                effdim_curv_ws *cw, double *gv);

/* ---- gradients with frozen ReLU patterns (finite-difference products) ------
 *
 * A ReLU network's gradient jumps where a unit switches on or off, so a
 * difference of gradients g(theta + h u) - g(theta - h u) picks up one jump
 * for every unit of every example that changes sign inside [-h, h]: their
 * number grows like h, so their contribution to the quotient does not vanish
 * as h -> 0 (on 784-300-100-10 with 10,000 Fashion-MNIST images it is about
 * 20 times the norm of H v). The finite-difference operators therefore
 * differentiate the network whose relu units keep the on/off pattern they
 * have at theta: the same function and gradient at theta, smooth around it,
 * with the Hessian that autodiff (and the R-operator) computes. */

/* Patterns of the relu layers at theta for every row of a selection:
 * on[l] (n_rows, sizes[l+1]) bytes, 1 where Z_l > 0 (NULL for other
 * activations). */
typedef struct effdim_curv_masks {
    size_t n_layers;
    size_t n_rows;
    size_t bytes;
    unsigned char *on[EFFDIM_MLP_MAX_LAYERS];
} effdim_curv_masks;

/* NULL with *err untouched when the network has no relu layer (nothing to
 * freeze); NULL with an error on failure. One forward pass over the rows. */
effdim_curv_masks *effdim_curv_masks_alloc(const effdim_mlp *m, const double *theta,
                                           const effdim_dataset *ds, const size_t *rows,
                                           size_t n_rows, effdim_mlp_ws *ws, effdim_error *err);
void effdim_curv_masks_free(effdim_curv_masks *mk);

/* effdim_mlp_loss_grad over the same rows with the relu layers' patterns
 * taken from mk instead of from Z_l (grad (n_params) overwritten; loss may
 * be NULL). At the theta the masks were computed at, identical to
 * effdim_mlp_loss_grad. Like it, split over the workspace's workers when
 * the rows span more than one chunk (effdim_mlp_split). */
effdim_status effdim_curv_frozen_loss_grad(const effdim_mlp *m, const double *theta,
                                           const effdim_dataset *ds, const size_t *rows,
                                           size_t n_rows, const effdim_curv_masks *mk,
                                           double *loss, double *grad, effdim_mlp_ws *ws,
                                           effdim_error *err);

#endif /* EFFDIM_MLP_CURV_H */
