/* effdim/mlp.h: a multilayer perceptron with exact loss and gradient.
 *
 * The model description (effdim_mlp) is a small value type: layer widths,
 * activations, loss, reduction and the parameter layout. Parameters are NOT
 * stored in it: they are one contiguous vector theta (n_params doubles) that
 * the caller owns, in PyTorch's parameters_to_vector order for an
 * nn.Sequential of Linear layers:
 *
 *   layer0.weight (sizes[1], sizes[0]) row-major, layer0.bias (sizes[1]),
 *   layer1.weight (sizes[2], sizes[1]), layer1.bias (sizes[2]), ...
 *
 * The gradient has the same layout. Layer l computes
 *   Z_l = A_{l-1} W_l^T + b_l,   A_l = act_l(Z_l),   A_{-1} = X,
 * and the loss is taken on the outputs A_{L-1} (normally act = identity).
 *
 * Loss conventions (identical to PyTorch's):
 *   cross_entropy: l_i = logsumexp(f_i) - f_i[y_i]  (softmax cross-entropy on
 *                  integer labels); mean reduction = (1/n) sum_i l_i, sum = sum_i l_i.
 *   mse:           nn.MSELoss: mean reduction = (1/(n k)) sum_ij (f_ij - y_ij)^2,
 *                  sum reduction = sum_ij (f_ij - y_ij)^2 (no factor 1/2).
 *   bce:           nn.BCEWithLogitsLoss on one output f_i (the logit) and an
 *                  integer label y_i in {0, 1}: l_i = softplus(f_i) - y_i f_i
 *                  = max(f_i, 0) - y_i f_i + log1p(e^{-|f_i|}) (stable for any
 *                  f_i), dl_i/df_i = sigmoid(f_i) - y_i, d^2 l_i/df_i^2 =
 *                  p_i (1 - p_i) with p_i = sigmoid(f_i); mean = (1/n) sum_i l_i.
 *                  The prediction is class 1 when f_i > 0 (p_i > 1/2).
 * Per-sample losses are the same loss applied to one example alone, so that
 * the full loss is (1/n) sum_i l_i (mean) or sum_i l_i (sum) in both cases;
 * for mse with mean reduction l_i = (1/k) sum_j (f_ij - y_ij)^2.
 *
 * Work is done in chunks of at most `chunk` rows (the workspace size), so the
 * memory for a pass over n examples is bounded by the workspace, whatever n:
 *   about chunk * (d + 3 * sum of widths + k) doubles plus a gradient-sized
 *   scratch vector per worker, plus a gradient-sized accumulator per worker
 *   beyond the first (lib/mlp_internal.h gives the exact layout and bound;
 *   effdim_mlp_ws_bytes reports it).
 * No call allocates after the workspace exists.
 */
#ifndef EFFDIM_MLP_H
#define EFFDIM_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/comm.h"
#include "effdim/data.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_MLP_MAX_LAYERS 64

typedef enum effdim_activation {
    EFFDIM_ACT_IDENTITY = 0,
    EFFDIM_ACT_RELU,
    EFFDIM_ACT_TANH,
    EFFDIM_ACT_SIGMOID,
    EFFDIM_ACT_SOFTPLUS, /* log(1 + e^x), PyTorch's beta = 1, threshold 20 */
    EFFDIM_ACT_GELU,     /* exact (erf) form, PyTorch's default */
    EFFDIM_ACT_ELU       /* z > 0 ? z : e^z - 1, PyTorch's nn.ELU with alpha = 1 */
} effdim_activation;

typedef enum effdim_loss {
    EFFDIM_LOSS_CROSS_ENTROPY = 0,
    EFFDIM_LOSS_MSE = 1,
    EFFDIM_LOSS_BCE = 2 /* binary cross-entropy on one logit (nn.BCEWithLogitsLoss) */
} effdim_loss;

typedef enum effdim_reduction {
    EFFDIM_REDUCTION_MEAN = 0,
    EFFDIM_REDUCTION_SUM = 1
} effdim_reduction;

typedef enum effdim_init_scheme {
    EFFDIM_INIT_TORCH = 0,  /* PyTorch Linear default: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    EFFDIM_INIT_GLOROT = 1  /* W ~ U(-sqrt(6/(fan_in+fan_out)), +), b = 0 */
} effdim_init_scheme;

typedef struct effdim_mlp {
    size_t n_layers;                            /* L, number of Linear layers */
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];    /* (L+1) widths; sizes[0] = input dim */
    effdim_activation act[EFFDIM_MLP_MAX_LAYERS]; /* (L) activation after layer l */
    effdim_loss loss;
    effdim_reduction reduction;
    size_t n_params;                            /* P */
    size_t w_off[EFFDIM_MLP_MAX_LAYERS];        /* (L) offset of layer l's weight in theta */
    size_t b_off[EFFDIM_MLP_MAX_LAYERS];        /* (L) offset of layer l's bias in theta */
} effdim_mlp;

/* Opaque workspace for forward/backward over chunks of rows. */
typedef struct effdim_mlp_ws effdim_mlp_ws;

/* Describe a network. sizes has n_layers + 1 entries, acts n_layers. Refuses
 * zero widths, more than EFFDIM_MLP_MAX_LAYERS layers, and parameter counts
 * that overflow. */
EFFDIM_API effdim_status effdim_mlp_init(effdim_mlp *m, size_t n_layers, const size_t *sizes,
                                         const effdim_activation *acts, effdim_loss loss,
                                         effdim_reduction reduction, effdim_error *err);

/* Check that a dataset fits the network: d == sizes[0]; LABELS needs
 * cross_entropy and k <= sizes[L] (every label < sizes[L]), or bce with
 * sizes[L] == 1 and k <= 2 (every label 0 or 1); REAL needs mse and
 * k == sizes[L]. err names `what` (the data spec) and both sizes. */
EFFDIM_API effdim_status effdim_mlp_check_data(const effdim_mlp *m, const effdim_dataset *ds,
                                               const char *what, effdim_error *err);

/* Names <-> enums ("relu", "cross_entropy", "mean", "torch", ...). The parse
 * functions return EFFDIM_EINVAL for an unknown name. */
EFFDIM_API const char *effdim_activation_name(effdim_activation a);
EFFDIM_API effdim_status effdim_activation_parse(const char *name, effdim_activation *a,
                                          effdim_error *err);
EFFDIM_API const char *effdim_loss_name(effdim_loss l);
EFFDIM_API effdim_status effdim_loss_parse(const char *name, effdim_loss *l,
                                          effdim_error *err);
EFFDIM_API const char *effdim_reduction_name(effdim_reduction r);
EFFDIM_API effdim_status effdim_reduction_parse(const char *name, effdim_reduction *r,
                                          effdim_error *err);

/* Classes the network predicts: 2 for bce (one logit), sizes[L] for
 * cross_entropy (labels must lie in [0, classes)); sizes[L] for mse. */
EFFDIM_API size_t effdim_mlp_n_classes(const effdim_mlp *m);

/* The factor the loss puts in front of the sum of per-example losses over
 * n_rows examples: 1/n_rows for mean reduction, 1 for sum. Every operator,
 * diagonal and output file uses this one definition ("scale"). NaN for a
 * mean over zero rows. */
EFFDIM_API double effdim_mlp_loss_scale(const effdim_mlp *m, size_t n_rows);

/* The weight of a share's loss (or gradient, product, diagonal) computed
 * over its own n_rows rows in the loss over all n_all rows: n_rows / n_all
 * for mean reduction (a share's mean scaled to the global mean), 1 for sum.
 * Every data-parallel path (ranks, effdim/comm.h) uses this one definition. */
EFFDIM_API double effdim_mlp_share_weight(const effdim_mlp *m, size_t n_rows, size_t n_all);

/* Layer l's block of theta: its weight then its bias, contiguous, starting at
 * *offset (= w_off[l]) with *size = sizes[l+1] * (sizes[l] + 1) entries.
 * l must be < n_layers. */
EFFDIM_API void effdim_mlp_layer_block(const effdim_mlp *m, size_t l, size_t *offset,
                                       size_t *size);

/* "torch" | "glorot" (added by the MLP helper). */
EFFDIM_API const char *effdim_init_scheme_name(effdim_init_scheme s);
EFFDIM_API effdim_status effdim_init_scheme_parse(const char *name, effdim_init_scheme *s,
                                          effdim_error *err);

/* Fill theta (n_params) from a seed (GSL mt19937). Draws in theta order
 * (layer0.weight row-major, layer0.bias, ...); glorot draws no bias. */
EFFDIM_API effdim_status effdim_mlp_init_params(const effdim_mlp *m, double *theta,
                                                effdim_init_scheme scheme, uint64_t seed,
                                                effdim_error *err);

/* Workspace for up to `chunk` rows per pass (chunk >= 1; 0 means 512, which
 * measured fastest for 784-300-100-10 on 2 cores: docs/performance.md), for
 * T = effdim_blas_threads() workers AT THE TIME OF THIS CALL (see
 * effdim_mlp_ws_alloc_workers). */
EFFDIM_API effdim_mlp_ws *effdim_mlp_ws_alloc(const effdim_mlp *m, size_t chunk, effdim_error *err);
/* Workspace for `workers` workers (0 or 1: one; clamped to 64). With T > 1, a
 * call of loss_grad, evaluate or per_sample_grads that covers more than one
 * chunk of rows splits the rows into min(T, chunks) contiguous parts of whole
 * chunks, runs each in its own thread (the caller does part 0) with OpenBLAS
 * set to 1 thread meanwhile (restored after), and sums the parts' losses and
 * gradients in part order. Results are bitwise reproducible for a given T and
 * chunk, and differ from T = 1 by rounding only (the sums are regrouped).
 * Calls of at most one chunk (minibatches) always run on the calling thread
 * with OpenBLAS's threads as set. Memory grows about T-fold plus T-1
 * gradient-sized accumulators (effdim_mlp_ws_bytes). A multi-worker
 * workspace must not be used by two calls at once (neither may any). */
EFFDIM_API effdim_mlp_ws *effdim_mlp_ws_alloc_workers(const effdim_mlp *m, size_t chunk,
                                                      size_t workers, effdim_error *err);
EFFDIM_API size_t effdim_mlp_ws_workers(const effdim_mlp_ws *ws);
EFFDIM_API void effdim_mlp_ws_free(effdim_mlp_ws *ws);
EFFDIM_API size_t effdim_mlp_ws_chunk(const effdim_mlp_ws *ws);
/* Bytes the workspace holds (for the documented memory bound). */
EFFDIM_API size_t effdim_mlp_ws_bytes(const effdim_mlp_ws *ws);

/* Rows of a dataset to work on: rows == NULL means rows 0 .. n_rows-1;
 * otherwise n_rows indices into the dataset (a minibatch). */

/* Loss (reduced over the given rows) and, if grad != NULL, its gradient
 * (n_params, overwritten, not accumulated). */
EFFDIM_API effdim_status effdim_mlp_loss_grad(const effdim_mlp *m, const double *theta,
                                              const effdim_dataset *ds, const size_t *rows,
                                              size_t n_rows, double *loss, double *grad,
                                              effdim_mlp_ws *ws, effdim_error *err);

/* effdim_mlp_loss_grad over rows shared out between the ranks of comm
 * (effdim/comm.h): this rank's n_rows rows (0 allowed: it adds nothing) of a
 * loss over n_all rows in all. The ranks' losses and gradients are added in
 * the fixed order of effdim_comm_sum, each weighted by n_rows / n_all (mean
 * reduction) or 1 (sum), so every rank receives bitwise the same loss and
 * gradient, which equal the one-process ones over all n_all rows to
 * rounding. comm NULL or of one rank: effdim_mlp_loss_grad (n_all must then
 * be n_rows). Collective (one or two effdim_comm_sum). */
EFFDIM_API effdim_status effdim_mlp_loss_grad_comm(const effdim_mlp *m, const double *theta,
                                                   const effdim_dataset *ds, const size_t *rows,
                                                   size_t n_rows, size_t n_all, effdim_comm *comm,
                                                   double *loss, double *grad, effdim_mlp_ws *ws,
                                                   effdim_error *err);

/* Loss and accuracy (fraction of argmax == label, for bce of (f > 0) ==
 * label; NaN for REAL targets). */
EFFDIM_API effdim_status effdim_mlp_evaluate(const effdim_mlp *m, const double *theta,
                                             const effdim_dataset *ds, const size_t *rows,
                                             size_t n_rows, double *loss, double *accuracy,
                                             effdim_mlp_ws *ws, effdim_error *err);

/* effdim_mlp_evaluate over rows shared out between the ranks (as
 * effdim_mlp_loss_grad_comm): the loss and accuracy over all n_all rows, the
 * same on every rank. Collective. */
EFFDIM_API effdim_status effdim_mlp_evaluate_comm(const effdim_mlp *m, const double *theta,
                                                  const effdim_dataset *ds, const size_t *rows,
                                                  size_t n_rows, size_t n_all, effdim_comm *comm,
                                                  double *loss, double *accuracy,
                                                  effdim_mlp_ws *ws, effdim_error *err);

/* Network outputs (n, sizes[L]) for inputs X (n, sizes[0]). */
EFFDIM_API effdim_status effdim_mlp_predict(const effdim_mlp *m, const double *theta,
                                            const double *X, size_t n, double *out,
                                            effdim_mlp_ws *ws, effdim_error *err);

/* Per-sample gradients: G (n_rows, n_params) row-major, row i = gradient of
 * the per-sample loss l_i (see the conventions above), so the full gradient
 * is the mean (mean reduction) or sum (sum reduction) of the rows. losses
 * (n_rows) receives l_i when non-NULL. */
EFFDIM_API effdim_status effdim_mlp_per_sample_grads(const effdim_mlp *m, const double *theta,
                                                     const effdim_dataset *ds, const size_t *rows,
                                                     size_t n_rows, double *G, double *losses,
                                                     effdim_mlp_ws *ws, effdim_error *err);

/* Jacobian of the network outputs (lib/mlp_jac.c):
 * J (n, K, P): J[i][o][p] = d out_o(x_i) / d theta_p for the rows X (n, d);
 * out (n, K) receives the outputs when non-NULL. ws: any workspace of m. */
EFFDIM_API effdim_status effdim_mlp_jacobian(const effdim_mlp *m, const double *theta,
                                             const double *X, size_t n, double *J, double *out,
                                             effdim_mlp_ws *ws, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_MLP_H */
