/* effdim/mlp_svd.h: variational linear layers of the MLP (sparse variational
 * dropout, Molchanov, Ashukha and Vetrov 2017, and its ARD variant).
 *
 * A variational layer l of an effdim_mlp keeps its mean weights theta_l
 * (the usual (out, in) block of theta, PyTorch order, unchanged) and one
 * more number per weight, log sigma^2 (additive reparameterisation: both are
 * optimised directly). Biases are not variational. Per weight
 *
 *   log alpha = clip(log sigma^2 - log(theta^2 + tiny), -L, +L)
 *   sigma^2   = exp(log alpha) theta^2          (from the CLIPPED alpha)
 *
 * Training (local reparameterisation trick), input rows A (len, in):
 *   gamma = A Wm^T + b,  delta = (A.^2) (sigma^2)^T,
 *   Z     = gamma + sqrt(delta + 1e-8) .* eps,  eps ~ N(0, 1) per example and unit,
 * with Wm = theta, or theta .* [log alpha < threshold] under train-time
 * clipping. Objective (the negative SGVLB):
 *   N * (1/len) sum_i l_i + beta * sum_weights KL(log alpha),
 * l_i the per-sample loss of effdim/mlp.h, N the training-set size, beta the
 * annealed KL weight.
 *
 * KL per weight (evaluated on the clipped log alpha):
 *   sparsevd: -KL = k1 sigmoid(k2 + k3 log alpha) - 0.5 log1p(exp(-log alpha)) - k1,
 *             k1 = 0.63576, k2 = 1.87320, k3 = 1.48695 (log-uniform prior);
 *   ard:      KL = 0.5 log1p(exp(-log alpha)) (the prior N(0, theta^2 + sigma^2)
 *             optimised per weight; exact).
 *
 * Evaluation: deterministic with the masked mean weights theta .* [log alpha
 * < threshold] (threshold 3: the weights with log alpha >= 3 are dropped).
 * Everything downstream (evaluate, spectrum, diag, Hessian-vector products)
 * sees that masked theta as an ordinary MLP's parameters.
 *
 * Defaults (effdim_svd_default): pytorch_ard's dense layer, L = 10,
 * tiny = 1e-15, log sigma^2 initialised to -10; threshold 3.
 *
 * Layout of the variances: one vector log_sigma2 of n_weights doubles, the
 * variational layers' (out, in) row-major blocks in layer order (ls_off[l]).
 * For training, the optimiser works on u = [theta (P) | log_sigma2 (W)]:
 * theta first in PyTorch order, so the first P entries of every optimiser
 * state vector are theta's.
 */
#ifndef EFFDIM_MLP_SVD_H
#define EFFDIM_MLP_SVD_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_SVD_K1 0.63576
#define EFFDIM_SVD_K2 1.87320
#define EFFDIM_SVD_K3 1.48695
#define EFFDIM_SVD_SQRT_EPS 1e-8 /* inside sqrt(delta + .) */

typedef enum effdim_svd_kl {
    EFFDIM_SVD_KL_SPARSEVD = 0, /* Molchanov et al.'s approximation, log-uniform prior */
    EFFDIM_SVD_KL_ARD = 1       /* exact KL with the per-weight optimal Gaussian prior */
} effdim_svd_kl;

typedef struct effdim_svd {
    size_t n_layers;                           /* L of the network */
    int variational[EFFDIM_MLP_MAX_LAYERS];    /* (L) 1: layer l is variational */
    size_t ls_off[EFFDIM_MLP_MAX_LAYERS];      /* (L) offset of layer l's block in log_sigma2 */
    size_t n_weights;                          /* W: variational weights in all */
    effdim_svd_kl kl;
    double clip;            /* L: log alpha is clipped to [-L, L]; default 10 */
    double tiny;            /* inside log(theta^2 + tiny); default 1e-15 */
    double threshold;       /* dropped when log alpha >= threshold; default 3 */
    double log_sigma2_init; /* initial log sigma^2; default -10 */
} effdim_svd;

/* KL-weight annealing over epochs e (0-based, the checkpoint's whole life). */
typedef enum effdim_svd_anneal_kind {
    EFFDIM_SVD_ANNEAL_RW_LINEAR = 0, /* 0 for e < start, (e - start)/len until 1 (5, 15) */
    EFFDIM_SVD_ANNEAL_LINEAR = 1,    /* min(1, step * e) (the seed: step 0.02) */
    EFFDIM_SVD_ANNEAL_CONSTANT = 2   /* value */
} effdim_svd_anneal_kind;

typedef struct effdim_svd_anneal {
    effdim_svd_anneal_kind kind;
    double a; /* rw_linear: start epoch (5); linear: step (0.02); constant: value (1) */
    double b; /* rw_linear: epochs to reach 1 (15); unused otherwise */
} effdim_svd_anneal;

/* The defaults above, no layer variational, n_layers = m->n_layers. */
EFFDIM_API effdim_svd effdim_svd_default(const effdim_mlp *m);
/* Mark layer l variational (or not) and recompute ls_off and n_weights. */
EFFDIM_API effdim_status effdim_svd_set_layer(effdim_svd *s, const effdim_mlp *m, size_t l,
                                              int variational, effdim_error *err);
/* Every layer variational. */
EFFDIM_API effdim_status effdim_svd_set_all(effdim_svd *s, const effdim_mlp *m, effdim_error *err);
/* s agrees with m (layer count) and its settings are in range (clip > 0,
 * tiny >= 0, finite threshold): EINVAL naming the field otherwise. */
EFFDIM_API effdim_status effdim_svd_check(const effdim_svd *s, const effdim_mlp *m,
                                          effdim_error *err);

EFFDIM_API const char *effdim_svd_kl_name(effdim_svd_kl k);
EFFDIM_API effdim_status effdim_svd_kl_parse(const char *name, effdim_svd_kl *k, effdim_error *err);

/* log alpha of one weight (clipped). */
EFFDIM_API double effdim_svd_log_alpha(const effdim_svd *s, double theta, double log_sigma2);
/* KL of one weight at a (clipped) log alpha, and dKL/dlog alpha into *dkl
 * when dkl != NULL. The sparsevd value includes the constant k1 (so KL -> 0
 * as alpha -> infinity). */
EFFDIM_API double effdim_svd_kl_value(effdim_svd_kl k, double log_alpha, double *dkl);

/* Annealing: names "rw_linear[:START,LEN]", "linear[:STEP]", "constant[:B]". */
EFFDIM_API effdim_svd_anneal effdim_svd_anneal_default(void); /* rw_linear 5, 15 */
EFFDIM_API effdim_status effdim_svd_anneal_parse(const char *spec, effdim_svd_anneal *a,
                                                 effdim_error *err);
/* "rw_linear:5,15" etc. into buf (cap bytes); returns buf. */
EFFDIM_API const char *effdim_svd_anneal_format(const effdim_svd_anneal *a, char *buf, size_t cap);
/* beta_KL at 0-based epoch e. */
EFFDIM_API double effdim_svd_anneal_beta(const effdim_svd_anneal *a, uint64_t epoch);

/* log_sigma2 (n_weights) = log_sigma2_init everywhere. */
EFFDIM_API void effdim_svd_init_params(const effdim_svd *s, double *log_sigma2);

/* The evaluation network's parameters: out (P) = theta with every weight of
 * a variational layer whose log alpha >= threshold set to 0 (biases and
 * deterministic layers copied). out may equal theta. */
EFFDIM_API void effdim_svd_masked_theta(const effdim_mlp *m, const effdim_svd *s,
                                        const double *theta, const double *log_sigma2,
                                        double *out);

/* Sparsity and compression (biases excluded). */
typedef struct effdim_svd_metrics {
    double sparsity[EFFDIM_MLP_MAX_LAYERS]; /* (L) fraction of layer l's weights dropped; NaN
                                               for a deterministic layer */
    size_t dropped[EFFDIM_MLP_MAX_LAYERS];  /* (L) weights with log alpha >= threshold */
    size_t weights;                         /* |W|: weights of all layers (deterministic too) */
    size_t nonzero;                         /* |W != 0| after masking */
    double compression;                     /* weights / nonzero (inf when all dropped) */
    double kl;                              /* sum of KL over variational weights */
} effdim_svd_metrics;
EFFDIM_API void effdim_svd_compute_metrics(const effdim_mlp *m, const effdim_svd *s,
                                           const double *theta, const double *log_sigma2,
                                           effdim_svd_metrics *out);

/* ---- learned variances against a curvature diagonal ------------------------ */

#define EFFDIM_SVD_CMP_MAX_BINS 64

/* The kept variational weights' learned sigma^2 against the Laplace
 * variance 1 / (precision_j + prior) with precision_j = N * curv_j, curv a
 * diagonal (P, theta order) of the mean loss's curvature (e.g. the GGN of
 * effdim diag at scale 1/n over the training set), so N * curv_j is the
 * curvature of the data term N * mean NLL. Weights with log alpha >=
 * threshold and those whose precision + prior is not > 0 are left out
 * (counted). x_j = log10 Laplace variance, y_j = log10 sigma^2. */
typedef struct effdim_svd_variance_cmp {
    size_t n;               /* pairs compared */
    size_t n_dropped;       /* variational weights with log alpha >= threshold */
    size_t n_flat;          /* kept weights with precision + prior <= 0 */
    double pearson;         /* correlation of x and y */
    double median_diff;     /* median of y - x (log10 of sigma^2 / Laplace variance) */
    double frac_above;      /* fraction with y > x */
    size_t n_bins;          /* equal-width bins of x over [min x, max x] */
    double bin_x[EFFDIM_SVD_CMP_MAX_BINS];      /* (n_bins) bin centres */
    double bin_median[EFFDIM_SVD_CMP_MAX_BINS]; /* (n_bins) median y in the bin, NaN if empty */
    double bin_q1[EFFDIM_SVD_CMP_MAX_BINS], bin_q3[EFFDIM_SVD_CMP_MAX_BINS]; /* quartiles */
    size_t bin_count[EFFDIM_SVD_CMP_MAX_BINS];
    /* per layer (0 and NaN for deterministic layers); layer l's pairs are
     * x[layer_first[l] .. layer_first[l] + layer_n[l]) */
    size_t layer_first[EFFDIM_MLP_MAX_LAYERS], layer_n[EFFDIM_MLP_MAX_LAYERS];
    double layer_pearson[EFFDIM_MLP_MAX_LAYERS], layer_median_diff[EFFDIM_MLP_MAX_LAYERS];
} effdim_svd_variance_cmp;

/* The comparison above with n_bins in [1, EFFDIM_SVD_CMP_MAX_BINS]; x and y
 * (n_weights each, may be NULL) receive the pairs (the first out->n
 * entries). EINVAL for bad arguments, EDOM when no pair remains. */
EFFDIM_API effdim_status effdim_svd_compare_variances(const effdim_mlp *m, const effdim_svd *s,
                                                      const double *theta,
                                                      const double *log_sigma2,
                                                      const double *curv, double N, double prior,
                                                      size_t n_bins, double *x, double *y,
                                                      effdim_svd_variance_cmp *out,
                                                      effdim_error *err);

/* ---- the training objective ------------------------------------------------ */

typedef struct effdim_svd_ws effdim_svd_ws;

/* Workspace for at most `chunk` rows per pass (0 means 512). */
EFFDIM_API effdim_svd_ws *effdim_svd_ws_alloc(const effdim_mlp *m, const effdim_svd *s,
                                              size_t chunk, effdim_error *err);
EFFDIM_API void effdim_svd_ws_free(effdim_svd_ws *ws);

/* Noise values one row needs: the sum of the variational layers' widths. */
EFFDIM_API size_t effdim_svd_noise_per_row(const effdim_mlp *m, const effdim_svd *s);

typedef struct effdim_svd_objective {
    double total;   /* N * mean NLL + beta * kl: what the gradient is of */
    double nll;     /* mean per-sample loss over the rows (with noise) */
    double kl;      /* sum of KL over the variational weights */
} effdim_svd_objective;

/* The objective over the selected rows (rows == NULL: 0..n_rows-1), with
 * the noise eps (n_rows, effdim_svd_noise_per_row) row-major: row i holds
 * the noise of example i, layer by layer (variational layers only, in
 * order). N > 0 the data-set size, beta >= 0 the KL weight, train_clip 1 to
 * mask the mean path by [log alpha < threshold]. When grad != NULL it
 * receives the gradient (P + W, overwritten): theta's part in theta order,
 * then log_sigma2's. Runs on the caller's thread. */
EFFDIM_API effdim_status effdim_svd_loss_grad(const effdim_mlp *m, const effdim_svd *s,
                                              const double *theta, const double *log_sigma2,
                                              const effdim_dataset *ds, const size_t *rows,
                                              size_t n_rows, const double *eps, double N,
                                              double beta, int train_clip,
                                              effdim_svd_objective *obj, double *grad,
                                              effdim_svd_ws *ws, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_MLP_SVD_H */
