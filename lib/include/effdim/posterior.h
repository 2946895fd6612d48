/* effdim/posterior.h: Gaussian posteriors over the weights built from
 * curvature, their samples and predictive distributions, MacKay's evidence,
 * metrics, and pruning by signal-to-noise ratio.
 *
 * Every posterior here is q(theta) = N(mean, Sigma) with a precision of the
 * form
 *
 *   Lambda = diag(D) + U^T diag(s) U,    D (P) > 0, U (k, P) orthonormal rows, s (k) >= 0
 *
 * (k = 0 for the diagonal posteriors). All curvatures are brought to the
 * scale of the SUMMED negative log-likelihood of the N training examples
 * (docs/posteriors.md derives each):
 *
 *   badam-a   D = N sqrt(v) + alpha + eps,  mean = coef * theta,
 *             coef = sqrt(v) / (sqrt(v) + alpha / N)          (SEEDS.md 1.2, variant A)
 *   badam-b   D = N sqrt(v) + eps,          mean = theta       (variant B: the prior
 *             entered through the L2 term in training; alpha is not used)
 *   ggn       D = c / scale * diag(GGN) + alpha                (exact GGN diagonal)
 *   ef        D = c^2 / scale * diag(EF) + alpha               (empirical Fisher)
 *   lowrank   U, s = the top-k eigenpairs of c / scale * GGN (Lanczos); D = alpha
 *             (rest = prior) or alpha + max(c / scale * diag(GGN) - diag(U^T s U), 0)
 *             (rest = diag)
 *   ivon      D = ess (h + delta), mean = theta: the posterior IVON trained
 *             (Shen et al. 2024; SEEDS.md 2.1), from /optimizer/hess (h) and
 *             the attributes ess and weight_decay (delta) of an IVON
 *             checkpoint; no data, and the prior is IVON's own: alpha = ess
 *             delta (prior mode fixed, N = ess, gamma = sum_j h_j / (h_j + delta))
 *
 * where v = /optimizer/exp_avg_sq of the checkpoint, scale = the loss's
 * factor in front of sum_i l_i (effdim_mlp_loss_scale: 1/n for the mean
 * reduction), and c turns the training loss into the negative
 * log-likelihood: c = 1 for cross-entropy; for mse with observation noise
 * variance sigma^2, c = K / (2 sigma^2) under the mean reduction (l_i =
 * (1/K) sum_j r_ij^2) and 1 / (2 sigma^2) under sum. BADAM keeps the
 * reference's scale (N sqrt(v), whatever the loss).
 *
 * The covariance is never formed. With W = diag(s)^(1/2) U diag(D)^(-1/2),
 * W W^T = R diag(mu) R^T and B = diag(mu)^(-1/2) R^T W (k, P) orthonormal
 * rows,
 *   Sigma = D^(-1/2) (I - B^T diag(mu / (1 + mu)) B) D^(-1/2)
 *   log det Lambda = sum_p log D_p + sum_j log(1 + mu_j)
 *   sample = mean + D^(-1/2) (e - B^T diag(1 - 1/sqrt(1 + mu)) B e),  e ~ N(0, I)
 * so the variances, the log-determinant and exact samples cost O(P k^2).
 *
 * Prior precision alpha (prior N(0, I / alpha) on the summed-NLL scale):
 *   fixed     the value given
 *   evidence  MacKay's fixed point (MacKay, Neural Computation 4 (1992) 415):
 *             gamma(alpha) = P - alpha tr(Sigma(alpha)) = N_eff(curvature, alpha),
 *             alpha <- gamma / ||mean||^2, iterated until the relative change
 *             is below tol (the iterations and the final gamma are recorded)
 *   grid      the Laplace log marginal likelihood
 *               log Z(alpha) = -NLL(theta) - alpha/2 ||theta||^2 + P/2 log alpha
 *                              - 1/2 log det Lambda(alpha)
 *             maximised over a log-spaced grid (theta held at the MAP).
 *
 * Ownership: every object returned here owns its arrays and is freed by its
 * _free (NULL-safe). Nothing prints; errors fill effdim_error.
 */
#ifndef EFFDIM_POSTERIOR_H
#define EFFDIM_POSTERIOR_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_posterior_method {
    EFFDIM_POSTERIOR_BADAM_A = 0,
    EFFDIM_POSTERIOR_BADAM_B = 1,
    EFFDIM_POSTERIOR_GGN = 2,
    EFFDIM_POSTERIOR_EF = 3,
    EFFDIM_POSTERIOR_LOWRANK = 4,
    EFFDIM_POSTERIOR_IVON = 5
} effdim_posterior_method;
#define EFFDIM_POSTERIOR_N_METHODS 6

/* "badam-a" | "badam-b" | "ggn" | "ef" | "lowrank" | "ivon" */
EFFDIM_API const char *effdim_post_method_name(effdim_posterior_method m);
EFFDIM_API effdim_status effdim_post_method_parse(const char *s, effdim_posterior_method *m,
                                                  effdim_error *err);

typedef enum effdim_prior_mode {
    EFFDIM_PRIOR_FIXED = 0,
    EFFDIM_PRIOR_EVIDENCE = 1,
    EFFDIM_PRIOR_GRID = 2
} effdim_prior_mode;
/* "fixed" | "evidence" | "grid" */
EFFDIM_API const char *effdim_prior_mode_name(effdim_prior_mode m);

/* Where BADAM's eps enters the precision. */
typedef enum effdim_badam_eps {
    EFFDIM_BADAM_EPS_PRECISION = 0, /* 1 / (N sqrt(v) [+ alpha] + eps): the reference */
    EFFDIM_BADAM_EPS_SQRTV = 1      /* 1 / (N (sqrt(v) + eps) [+ alpha]): Adam's step's place */
} effdim_badam_eps;

/* What the low-rank posterior puts in the directions outside span(U). */
typedef enum effdim_lowrank_rest {
    EFFDIM_LOWRANK_REST_PRIOR = 0, /* the prior alone: D = alpha */
    EFFDIM_LOWRANK_REST_DIAG = 1   /* the GGN diagonal left over by the top k, plus alpha */
} effdim_lowrank_rest;

typedef struct effdim_posterior_params {
    effdim_posterior_method method;   /* default EFFDIM_POSTERIOR_GGN */
    effdim_prior_mode prior;     /* default EFFDIM_PRIOR_EVIDENCE */
    double prior_precision;      /* fixed: alpha; evidence: the start (default 1) */
    double grid_min, grid_max;   /* grid: alpha range (default 1e-4, 1e6) */
    size_t grid_points;          /* default 61 (10 per decade) */
    double evidence_tol;         /* relative change of alpha (default 1e-10) */
    size_t evidence_max_iter;    /* default 1000 */
    double N;                    /* training-set size; 0 = the rows of the data (default).
                                    With data of n rows, the curvature and the NLL are
                                    scaled by N / n (a subset standing for N rows) */
    double noise_var;            /* mse: sigma^2; 0 = the mean squared training residual
                                    (the maximum-likelihood value; default 0) */
    /* BADAM (SEEDS.md 1.2 and 1.6) */
    double badam_eps;            /* default 1e-8, the reference's */
    effdim_badam_eps badam_eps_mode; /* default EFFDIM_BADAM_EPS_PRECISION (the reference) */
    int badam_bias_correction;   /* 1: v / (1 - beta2^t). Default 0: the reference reads
                                    the uncorrected v; the two differ by beta2^t, i.e.
                                    only in the first few thousand steps */
    /* low rank */
    size_t k;                    /* eigenpairs (default 20) */
    double lanczos_tol;          /* default 1e-8 */
    uint64_t seed;               /* Lanczos start vector (default 0) */
    effdim_lowrank_rest rest;    /* default EFFDIM_LOWRANK_REST_PRIOR */
    effdim_progress progress;    /* default {NULL, NULL} */
} effdim_posterior_params;

EFFDIM_API effdim_posterior_params effdim_posterior_default_params(void);

typedef struct effdim_posterior {
    effdim_mlp mlp;              /* the network the weights belong to */
    effdim_posterior_method method;
    size_t P;
    double *mean;                /* (P) */
    double *var;                 /* (P) diagonal of Sigma */
    double *prec_diag;           /* (P) D */
    size_t k;
    double *U;                   /* (k, P) orthonormal rows, or NULL when k = 0 */
    double *s;                   /* (k) curvature along U (summed-NLL scale) */
    double prior_precision;      /* alpha (NaN for badam-b) */
    effdim_prior_mode prior_mode;
    double N;
    double noise_var;            /* mse: sigma^2; NaN for cross-entropy */
    size_t evidence_iterations;  /* 0 unless prior = evidence */
    int evidence_converged;
    double gamma;                /* P - alpha tr(Sigma) = N_eff at z = alpha (NaN for badam-b) */
    double log_evidence;         /* Laplace log Z at alpha (NaN when not computed) */
    double log_det;              /* log det Lambda */
    char checkpoint_sha256[65];  /* "" when unknown */
    char *checkpoint;            /* owned path or NULL */
    char *data_spec;             /* owned or NULL */
    /* derived by effdim_posterior_finalize, not stored in files */
    double *B;                   /* (k, P) whitened orthonormal factor */
    double *mu;                  /* (k) */
    size_t grid_n;
    double *grid_alpha, *grid_log_evidence; /* (grid_n) for prior = grid, else NULL */
} effdim_posterior;

/* Allocate an empty posterior for network m with rank k (mean, var,
 * prec_diag zero; U, s zero when k > 0). */
EFFDIM_API effdim_status effdim_posterior_alloc(const effdim_mlp *m, size_t k,
                                                effdim_posterior **out, effdim_error *err);
EFFDIM_API void effdim_posterior_free(effdim_posterior *p);

/* From prec_diag, U and s: the whitened factor B, mu, var and log_det.
 * EDOM for a prec_diag entry <= 0 or non-finite, or a negative s. */
EFFDIM_API effdim_status effdim_posterior_finalize(effdim_posterior *p, effdim_error *err);

/* Build a posterior from a checkpoint (and, except for BADAM and IVON, the
 * training data ds; for BADAM ds may be NULL when params.N > 0; ivon reads
 * neither ds nor params.prior and N). path names the checkpoint in messages
 * and is recorded; its sha256 is not computed here (callers set
 * checkpoint_sha256). ENOTFOUND when BADAM finds no exp_avg_sq or ivon no
 * /optimizer/hess (a checkpoint not trained with IVON); EFORMAT for an ivon
 * checkpoint with a bad ess, weight_decay or h + delta <= 0; EMAXITER when the evidence iteration or Lanczos stopped at its
 * limit (the posterior is still returned). */
EFFDIM_API effdim_status effdim_posterior_build(const effdim_checkpoint *c, const char *path,
                                                const effdim_dataset *ds,
                                                const effdim_posterior_params *params,
                                                effdim_posterior **out, effdim_error *err);

/* ---- BADAM (SEEDS.md 1.2), element-wise, exposed for tests ---- */
/* var, coef (either may be NULL) from v (n) at dataset size N and prior
 * precision prec; variant B when variant_b (coef = 1, no prec). */
EFFDIM_API void effdim_badam_posterior(const double *v, size_t n, double N, double prec,
                                       double eps, effdim_badam_eps mode, int variant_b,
                                       double *var, double *coef);

/* ---- evidence ---- */

/* ||theta(alpha)||^2 for a MAP that moves with alpha (Bayesian linear
 * regression); NULL in effdim_evidence_fixed_point means theta is fixed. */
typedef double (*effdim_theta_norm2_fn)(void *ctx, double alpha);

/* gamma and, when logz != NULL, the Laplace log evidence at alpha for the
 * curvature (curv (P) data diagonal or NULL = 0; k, U, s the low-rank part),
 * nll = the summed negative log-likelihood at theta, theta_sq = ||theta||^2.
 * log_det (may be NULL) receives log det Lambda. */
EFFDIM_API effdim_status effdim_laplace_evidence(size_t P, const double *curv, size_t k,
                                                 const double *U, const double *s, double alpha,
                                                 double nll, double theta_sq, double *gamma,
                                                 double *logz, double *log_det,
                                                 effdim_error *err);

/* MacKay's fixed point alpha = gamma(alpha) / ||theta(alpha)||^2 from
 * alpha0 > 0. Returns EFFDIM_OK, or EFFDIM_EMAXITER after max_iter (the last
 * values returned), EDOM when ||theta|| = 0. */
EFFDIM_API effdim_status effdim_evidence_fixed_point(size_t P, const double *curv, size_t k,
                                                     const double *U, const double *s,
                                                     double theta_sq, effdim_theta_norm2_fn fn,
                                                     void *ctx, double alpha0, double tol,
                                                     size_t max_iter, double *alpha,
                                                     double *gamma, size_t *iterations,
                                                     effdim_error *err);

/* ---- samples ---- */

typedef struct effdim_posterior_sampler effdim_posterior_sampler;

/* Draws theta = mean + sqrt(1 / tempering) Sigma^(1/2) e (seeded GSL
 * mt19937). tempering = the reference's N_s divisor (1: the posterior as it
 * is). fix_output_layer = 1 keeps the last layer at the mean (the reference's
 * regression script). */
EFFDIM_API effdim_posterior_sampler *effdim_posterior_sampler_alloc(const effdim_posterior *p,
                                                                    uint64_t seed,
                                                                    double tempering,
                                                                    int fix_output_layer,
                                                                    effdim_error *err);
EFFDIM_API void effdim_posterior_sampler_free(effdim_posterior_sampler *s);
/* One sample into theta (P). */
EFFDIM_API void effdim_posterior_sample(effdim_posterior_sampler *s, double *theta);

/* ---- predictive distributions ---- */

typedef struct effdim_predict_params {
    size_t samples;         /* Monte-Carlo weight samples (default 64, IVON's BMA) */
    int linearised;         /* 1: the GLM predictive f ~ N(f_mean(x), J Sigma J^T) instead */
    uint64_t seed;          /* default 0 */
    double tempering;       /* N_s (default 1: no tempering; the reference's N_s in the
                               hundreds has no Bayesian reading, it narrows the posterior) */
    int fix_output_layer;   /* default 0: every weight is sampled (the posterior as
                               written down; the reference's script fixes the last layer) */
    int point;              /* 1: the point prediction at the mean (the MAP network for
                               ggn, ef, lowrank, badam-b; regression adds only the
                               noise variance); overrides samples and linearised */
    effdim_progress progress;
} effdim_predict_params;

EFFDIM_API effdim_predict_params effdim_predict_default_params(void);

typedef struct effdim_prediction {
    size_t n, K;
    int classification;
    double *mean;           /* (n, K) class probabilities or predictive means */
    double *var;            /* (n, K) predictive variances incl. noise (regression), else NULL */
    double accuracy, rmse;  /* NaN when not applicable */
    double nll;             /* mean over rows (and outputs for regression) */
    double ece, brier;      /* classification only, else NaN */
    double *target_mean, *target_sd; /* (K) each, or NULL: the data's targets were
                               standardised (effdim_dataset y_mean, y_sd) and mean, var and
                               every metric above are in the ORIGINAL units:
                               mean = m + s mu, var = s^2 v, the log-likelihood lower by
                               log s, for mu, v the network's standardised predictive */
} effdim_prediction;

EFFDIM_API effdim_status effdim_predict(const effdim_posterior *p, const effdim_dataset *ds,
                                        const effdim_predict_params *params,
                                        effdim_prediction **out, effdim_error *err);
EFFDIM_API void effdim_prediction_free(effdim_prediction *r);

/* Metrics. Classification: probs (n, K) rows summing to 1, labels (n);
 * accuracy, mean NLL -log p_y, ECE over nbins equal-width confidence bins
 * (sum_b n_b/n |acc_b - conf_b|, conf = max_c p_c), Brier = mean over rows
 * of sum_c (p_c - [y = c])^2. Regression: mean, var (n, K) > 0, Y (n, K):
 * RMSE over all entries, mean Gaussian NLL 1/2 log(2 pi var) + r^2/(2 var).
 * effdim_predict on data with standardised targets (y_mean, y_sd) maps the
 * predictive and the targets back to the original units before computing
 * them (effdim_prediction target_mean, target_sd). */
EFFDIM_API effdim_status effdim_metrics_classification(size_t n, size_t K, const double *probs,
                                                       const int32_t *labels, size_t nbins,
                                                       double *accuracy, double *nll,
                                                       double *ece, double *brier,
                                                       effdim_error *err);
EFFDIM_API effdim_status effdim_metrics_regression(size_t n, size_t K, const double *mean,
                                                   const double *var, const double *Y,
                                                   double *rmse, double *nll, effdim_error *err);

/* ---- the posterior file (format "effdim.posterior", version 1) ----
 *   /                      attrs format, format_version, method, prior, prior_precision, N,
 *                          noise_var, evidence_iterations, evidence_converged, gamma,
 *                          log_evidence, log_det, checkpoint, checkpoint_sha256, data_spec,
 *                          n_params, k, layer_sizes, activations, loss, reduction,
 *                          version, created
 *   /posterior/mean        float64 [P]
 *   /posterior/var         float64 [P]   diagonal of the covariance
 *   /posterior/prec_diag   float64 [P]   D
 *   /posterior/lowrank/U   float64 (k, P)   (lowrank only)
 *   /posterior/lowrank/s   float64 [k]
 *   /posterior/grid/alpha, /posterior/grid/log_evidence  float64 [g] (prior = grid)
 * Saving is atomic. Loading checks every shape and refinalises. */
#define EFFDIM_POSTERIOR_FORMAT "effdim.posterior"
#define EFFDIM_POSTERIOR_VERSION 1
EFFDIM_API effdim_status effdim_posterior_save(const effdim_posterior *p, const char *path,
                                               effdim_error *err);
EFFDIM_API effdim_status effdim_posterior_load(const char *path, effdim_posterior **out,
                                               effdim_error *err);

/* ---- the predictions file (format "effdim.predictions", version 1) ----
 *   /                      attrs format, format_version, posterior, data_spec, predictive
 *                          ("mc" | "linearised"), samples, seed, tempering, fix_output_layer,
 *                          n, K, task ("classification" | "regression"), accuracy, rmse,
 *                          nll, ece, brier (NaN where not applicable), version, created;
 *                          target_mean, target_sd float64 [K] when the data's targets were
 *                          standardised (mean, var and metrics are then in original units)
 *   /predictions/mean      float64 (n, K) class probabilities or predictive means
 *   /predictions/var       float64 (n, K) predictive variances (regression only)
 * The loader fills an effdim_prediction (metrics from the attributes). */
#define EFFDIM_PREDICTIONS_FORMAT "effdim.predictions"
#define EFFDIM_PREDICTIONS_VERSION 1
typedef struct effdim_prediction_info {
    const char *posterior;   /* path of the posterior file (may be NULL) */
    const char *data_spec;   /* may be NULL */
    const effdim_predict_params *params;
} effdim_prediction_info;
EFFDIM_API effdim_status effdim_prediction_save(const effdim_prediction *r,
                                                const effdim_prediction_info *info,
                                                const char *path, effdim_error *err);
EFFDIM_API effdim_status effdim_prediction_load(const char *path, effdim_prediction **out,
                                                effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_POSTERIOR_H */
