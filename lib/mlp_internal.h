/* lib/mlp_internal.h: the MLP's workspace layout and its forward/backward pieces.
 *
 * Not installed. lib/mlp.c implements these; the curvature code (exact
 * Hessian-vector products by Pearlmutter's R-operator, Gauss-Newton
 * products, diagonal estimators) drives them one chunk at a time:
 *
 *   effdim_mlp_chunk_load    gather rows [start, start+len) of a selection
 *   effdim_mlp_forward       Z_l, A_l for every layer          (the forward caches)
 *   effdim_mlp_output        per-row losses l_i, and D_{L-1} = s * dl_i/dA_{L-1}
 *   effdim_mlp_backward      D_l = dL/dZ_l for every layer; optionally grad += ...
 *
 * Workspace layout (all row-major, `chunk` rows at most; len <= chunk rows
 * are valid after a call, row i of every buffer belonging to the same example):
 *
 *   X        (chunk, d)          gathered input rows (only used when rows != NULL)
 *   Y        (chunk, k)          gathered real targets (mse, rows != NULL)
 *   labels   (chunk)             gathered labels (cross_entropy, bce; rows != NULL)
 *   Z[l]     (chunk, sizes[l+1]) pre-activation  Z_l = A_{l-1} W_l^T + b_l
 *   A[l]     (chunk, sizes[l+1]) activation      A_l = act_l(Z_l); A[L-1] = outputs
 *   D[l]     (chunk, sizes[l+1]) after effdim_mlp_backward: dL/dZ_l (scaled as
 *                                the output call asked); D[L-1] holds dL/dA_{L-1}
 *                                between effdim_mlp_output and effdim_mlp_backward
 *   rowloss  (chunk)             per-sample losses l_i (mlp.h's convention)
 *   scratch  (P)                 a gradient-sized vector free for callers
 *
 * Every buffer starts on a 64-byte boundary inside one allocation. Memory of
 * one worker's buffers:
 *   B1 = 8 * (chunk * (d + k + 3 * (sizes[1] + ... + sizes[L]) + 1) + P) + 4 * chunk
 * bytes plus padding (at most 64 bytes per buffer) plus sizeof(struct
 * effdim_mlp_ws) (about 2.5 KiB). A workspace for T workers holds T such
 * sets plus T-1 gradient accumulators: T * B1 + 8 * (T-1) * P (+ padding);
 * effdim_mlp_ws_bytes returns the exact figure. It does not depend on the
 * number of examples. For 784-300-100-10 and chunk 1024 B1 is 17.9 MiB;
 * chunk 512, 9.9 MiB (T = 2: 2 x 9.9 MiB + 2.0 MiB of accumulator = 21.9 MiB).
 *
 * The scalar activation helpers give act, act' and act'' (the R-operator
 * needs the second derivative: R{dL/dZ_l} = R{dL/dA_l} act'(Z_l)
 * + dL/dA_l act''(Z_l) R{Z_l}; Pearlmutter 1994, Section 4).
 */
#ifndef EFFDIM_MLP_INTERNAL_H
#define EFFDIM_MLP_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "effdim/data.h"
#include "effdim/mlp.h"

/* Most workers a workspace splits a call into (effdim_mlp_ws_alloc_workers clamps). */
#define EFFDIM_MLP_MAX_WORKERS 64

struct effdim_mlp_ws {
    size_t n_layers;                           /* L of the model it was sized for */
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];   /* (L+1) widths it was sized for */
    size_t n_params;                           /* P */
    size_t chunk;                              /* rows per pass */
    size_t k;                                  /* target columns room = sizes[L] */
    size_t bytes;                              /* total bytes held */
    void *block;                               /* the one allocation (doubles) */
    int32_t *label_block;                      /* (chunk) allocation for labels */
    double *X;                                 /* (chunk, sizes[0]) */
    double *Y;                                 /* (chunk, sizes[L]) */
    int32_t *labels;                           /* (chunk) */
    double *Z[EFFDIM_MLP_MAX_LAYERS];          /* (chunk, sizes[l+1]) */
    double *A[EFFDIM_MLP_MAX_LAYERS];          /* (chunk, sizes[l+1]) */
    double *D[EFFDIM_MLP_MAX_LAYERS];          /* (chunk, sizes[l+1]) */
    double *rowloss;                           /* (chunk) */
    double *scratch;                           /* (P) */
    /* Row split over workers (lib/mlp.c, "data-parallel calls"): a call that
     * covers more than one chunk is split into up to `workers` contiguous
     * parts; part 0 runs on this workspace's own buffers, part t >= 1 on
     * sub[t] (a workspace of workers = 1 owned by this one) and accumulates
     * its gradient into acc + (t-1) * P. sub[0] = this workspace. */
    size_t workers;                            /* T >= 1 */
    struct effdim_mlp_ws *sub[EFFDIM_MLP_MAX_WORKERS]; /* (T) sub[0] = self */
    double *acc;                               /* (T-1, P) or NULL when T = 1 */
};

/* One chunk of a row selection, ready for the forward pass. X, labels and Y
 * point either into the dataset (contiguous rows) or into the workspace
 * (gathered rows). */
typedef struct effdim_mlp_chunk {
    size_t len;              /* rows in this chunk */
    size_t first;            /* position of its first row in the selection */
    const double *X;         /* (len, d) */
    const int32_t *labels;   /* (len) or NULL (REAL targets) */
    const double *Y;         /* (len, k) or NULL (LABELS) */
} effdim_mlp_chunk;

/* The workspace was sized for this model's widths (else EINVAL). */
effdim_status effdim_mlp_ws_check(const effdim_mlp *m, const effdim_mlp_ws *ws, effdim_error *err);

/* The constant-time part of effdim_mlp_check_data (widths, kinds), plus
 * n_rows >= 1 and, for rows == NULL, n_rows <= ds->n. Messages name
 * ds->spec (or "data set"). */
effdim_status effdim_mlp_check_call(const effdim_mlp *m, const effdim_dataset *ds,
                                    const size_t *rows, size_t n_rows, effdim_error *err);

/* Rows start .. start+len-1 of the selection (rows, or 0..n-1 when rows is
 * NULL) into c, gathering into ws when rows != NULL. len <= ws->chunk.
 * Refuses row indices >= ds->n. */
effdim_status effdim_mlp_chunk_load(const effdim_dataset *ds, const size_t *rows, size_t start,
                                    size_t len, effdim_mlp_ws *ws, effdim_mlp_chunk *c,
                                    effdim_error *err);

/* Forward pass over X (len, sizes[0]): fills ws->Z[l], ws->A[l] for every layer. */
void effdim_mlp_forward(const effdim_mlp *m, const double *theta, const double *X, size_t len,
                        effdim_mlp_ws *ws);

/* After effdim_mlp_forward on c->X: per-sample losses l_i into ws->rowloss
 * (mlp.h's convention), their sum into *loss_sum, and when want_delta,
 * ws->D[L-1] = delta_scale * dl_i/dA_{L-1} row by row. Refuses labels
 * outside [0, sizes[L]) (EINVAL naming the row). */
effdim_status effdim_mlp_output(const effdim_mlp *m, const effdim_mlp_chunk *c, double delta_scale,
                                int want_delta, effdim_mlp_ws *ws, double *loss_sum,
                                effdim_error *err);

/* Backward pass after effdim_mlp_output(want_delta): turns ws->D[L-1] into
 * dL/dZ_{L-1} and propagates D_l = (D_{l+1} W_{l+1}) * act_l'(Z_l) down to
 * layer 0 (dL/dX is not formed). When grad != NULL it ACCUMULATES the
 * parameter gradient of these rows: grad_W_l += D_l^T A_{l-1} (A_{-1} = X),
 * grad_b_l += column sums of D_l. X (len, sizes[0]) is the chunk's input. */
void effdim_mlp_backward(const effdim_mlp *m, const double *theta, const double *X, size_t len,
                         double *grad, effdim_mlp_ws *ws);

/* Work on rows [begin, end) of a call's selection with workspace ws:
 * ACCUMULATE a gradient into grad when grad != NULL (it arrives zeroed),
 * and set *total (e.g. a loss sum) and *count (e.g. correct predictions). */
typedef effdim_status (*effdim_mlp_range_fn)(void *arg, size_t begin, size_t end,
                                             effdim_mlp_ws *ws, double *grad, double *total,
                                             size_t *count, effdim_error *err);

/* Run fn over rows [0, n_rows): on the caller's thread over all rows when
 * ws has one worker or n_rows fits one chunk; otherwise split into
 * min(workers, chunks) contiguous parts of whole chunks, each on its own
 * pthread and sub-workspace with OpenBLAS at 1 thread (restored after).
 * grad (n_params, overwritten, or NULL) = the parts' gradients summed in
 * part order; *total and *count likewise (either may be NULL). On failure,
 * the status and message of the lowest failing part. */
effdim_status effdim_mlp_split(effdim_mlp_ws *ws, size_t n_rows, size_t n_params,
                               effdim_mlp_range_fn fn, void *arg, double *grad, double *total,
                               size_t *count, effdim_error *err);

/* Loss-Hessian with respect to the outputs, applied row by row (for
 * Gauss-Newton products): out_i = s * (d^2 l_i / dF_i^2) v_i, F = A_{L-1}
 * from the last forward pass, v and out (len, sizes[L]); out may equal v.
 * cross_entropy: diag(p_i) - p_i p_i^T with p_i = softmax(F_i);
 * mse: (2/k) I (mean) or 2 I (sum); bce: p_i (1 - p_i), p_i = sigmoid(F_i). */
void effdim_mlp_output_hess_apply(const effdim_mlp *m, const effdim_mlp_ws *ws, size_t len,
                                  double s, const double *v, double *out);

/* ---- activations, scalar: z is the pre-activation, a = act(z) ----------- */

static inline double effdim_act_value(effdim_activation act, double z)
{
    switch (act) {
    case EFFDIM_ACT_RELU: return z > 0.0 ? z : 0.0;
    case EFFDIM_ACT_TANH: return tanh(z);
    case EFFDIM_ACT_SIGMOID: return z >= 0.0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
    case EFFDIM_ACT_SOFTPLUS: return z > 20.0 ? z : log1p(exp(z));
    case EFFDIM_ACT_GELU: return 0.5 * z * (1.0 + erf(z * 0.70710678118654752440));
    case EFFDIM_ACT_ELU: return z > 0.0 ? z : expm1(z);
    case EFFDIM_ACT_IDENTITY: break;
    }
    return z;
}

/* act'(z); a = act(z) is passed so tanh and sigmoid need no transcendental.
 * relu'(0) = 0 as in PyTorch; softplus' = 1 above the threshold 20; elu'
 * = e^z for z <= 0 (PyTorch's branch; continuous at 0). elu reads z, so the
 * caches that alias Z to A (lib/hvp.c) must keep Z for it. */
static inline double effdim_act_deriv(effdim_activation act, double z, double a)
{
    switch (act) {
    case EFFDIM_ACT_RELU: return z > 0.0 ? 1.0 : 0.0;
    case EFFDIM_ACT_TANH: return 1.0 - a * a;
    case EFFDIM_ACT_SIGMOID: return a * (1.0 - a);
    case EFFDIM_ACT_SOFTPLUS: return z > 20.0 ? 1.0 : 1.0 / (1.0 + exp(-z));
    case EFFDIM_ACT_GELU:
        return 0.5 * (1.0 + erf(z * 0.70710678118654752440)) +
               z * 0.39894228040143267794 * exp(-0.5 * z * z);
    case EFFDIM_ACT_ELU: return z > 0.0 ? 1.0 : exp(z);
    case EFFDIM_ACT_IDENTITY: break;
    }
    return 1.0;
}

/* act''(z): 0 for identity and relu (almost everywhere); elu'' = e^z for
 * z <= 0 and 0 above (a jump at 0, as PyTorch's double backward has it). */
static inline double effdim_act_deriv2(effdim_activation act, double z, double a)
{
    switch (act) {
    case EFFDIM_ACT_TANH: return -2.0 * a * (1.0 - a * a);
    case EFFDIM_ACT_SIGMOID: return a * (1.0 - a) * (1.0 - 2.0 * a);
    case EFFDIM_ACT_SOFTPLUS: {
        if (z > 20.0) return 0.0;
        double s = 1.0 / (1.0 + exp(-z));
        return s * (1.0 - s);
    }
    case EFFDIM_ACT_GELU: return 0.39894228040143267794 * exp(-0.5 * z * z) * (2.0 - z * z);
    case EFFDIM_ACT_ELU: return z > 0.0 ? 0.0 : exp(z);
    case EFFDIM_ACT_RELU:
    case EFFDIM_ACT_IDENTITY: break;
    }
    return 0.0;
}

#endif /* EFFDIM_MLP_INTERNAL_H */
