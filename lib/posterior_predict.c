/* lib/posterior_predict.c: weight samples from a posterior, predictive
 * distributions and their metrics.
 *
 * Samples: theta = mean + tempering^(-1/2) D^(-1/2) (e - B^T diag(1 -
 * 1/sqrt(1 + mu)) B e), e ~ N(0, I) from one seeded GSL mt19937 stream: an
 * exact draw from N(mean, Sigma / tempering) (effdim/posterior.h).
 *
 * Predictives:
 *   point         the network at the mean (softmax, or the output with the
 *                 noise variance): the MAP baseline
 *   Monte-Carlo   S weight samples; classification averages the softmax
 *                 probabilities (not the logits: IVON's and the standard
 *                 Bayesian model average), regression returns the mean of
 *                 the outputs and their variance across samples plus the
 *                 observation noise sigma^2.
 *   linearised    f(x) ~ N(f_mean(x), J(x) Sigma J(x)^T / tempering), J the
 *                 (K, P) Jacobian at the mean (lib/mlp_jac.c). Regression:
 *                 mean f, variance diag + sigma^2. Classification: the probit
 *                 approximation p = softmax(f_c / sqrt(1 + pi/8 v_c))
 *                 (MacKay 1992; laplace-torch's default for the GLM).
 * Metrics: accuracy, NLL, ECE (equal-width confidence bins), Brier;
 * RMSE and Gaussian NLL (effdim/posterior.h gives the formulas).
 */
#include <cblas.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#include <float.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/posterior.h"
#include "internal.h"
#include "lanczos_internal.h"

/* ======================================================================== */
/* samples                                                                  */
/* ======================================================================== */

struct effdim_posterior_sampler {
    const effdim_posterior *p;
    gsl_rng *rng;
    double scale;       /* 1 / sqrt(tempering) */
    size_t fix_off, fix_len;
    double *e;          /* (P) */
    double *t;          /* (k) */
};

effdim_posterior_sampler *effdim_posterior_sampler_alloc(const effdim_posterior *p, uint64_t seed,
                                                         double tempering, int fix_output_layer,
                                                         effdim_error *err)
{
    if (!p) {
        effdim_error_set(err, EFFDIM_EINVAL, "sampler: NULL posterior");
        return NULL;
    }
    if (!(tempering > 0.0) || !isfinite(tempering)) {
        effdim_error_set(err, EFFDIM_EDOM, "sampler: tempering %g, expected finite and > 0",
                         tempering);
        return NULL;
    }
    effdim_posterior_sampler *s = effdim_calloc(1, sizeof *s, "sampler", err);
    if (!s) return NULL;
    s->p = p;
    s->scale = 1.0 / sqrt(tempering);
    s->rng = gsl_rng_alloc(gsl_rng_mt19937);
    s->e = effdim_alloc(p->P + p->k + 1, sizeof(double), "sampler scratch", err);
    if (!s->rng || !s->e) {
        effdim_posterior_sampler_free(s);
        effdim_error_set(err, EFFDIM_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    s->t = s->e + p->P;
    gsl_rng_set(s->rng, (unsigned long)seed);
    if (fix_output_layer) effdim_mlp_layer_block(&p->mlp, p->mlp.n_layers - 1, &s->fix_off, &s->fix_len);
    return s;
}

void effdim_posterior_sampler_free(effdim_posterior_sampler *s)
{
    if (!s) return;
    if (s->rng) gsl_rng_free(s->rng);
    free(s->e);
    free(s);
}

void effdim_posterior_sample(effdim_posterior_sampler *s, double *theta)
{
    const effdim_posterior *p = s->p;
    size_t P = p->P, k = p->k;
    effdim_fill_gaussian(s->rng, s->e, P);
    if (k) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)P, 1.0, p->B, (int)P, s->e, 1, 0.0,
                    s->t, 1);
        for (size_t j = 0; j < k; ++j) s->t[j] *= 1.0 - 1.0 / sqrt(1.0 + p->mu[j]);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)k, (int)P, -1.0, p->B, (int)P, s->t, 1, 1.0,
                    s->e, 1);
    }
    for (size_t j = 0; j < P; ++j) theta[j] = p->mean[j] + s->scale * s->e[j] / sqrt(p->prec_diag[j]);
    if (s->fix_len) memcpy(theta + s->fix_off, p->mean + s->fix_off, s->fix_len * sizeof(double));
}

/* ======================================================================== */
/* metrics                                                                  */
/* ======================================================================== */

effdim_status effdim_metrics_classification(size_t n, size_t K, const double *probs,
                                            const int32_t *labels, size_t nbins, double *accuracy,
                                            double *nll, double *ece, double *brier,
                                            effdim_error *err)
{
    RETURN_ERROR_IF(!probs || !labels || n == 0 || K == 0 || nbins == 0, err, EFFDIM_EINVAL,
                    "metrics: empty or NULL predictions");
    double *bins = effdim_calloc(3 * nbins, sizeof(double), "ECE bins", err);
    if (!bins) return EFFDIM_ENOMEM;
    double *bc = bins, *bacc = bins + nbins, *bconf = bins + 2 * nbins;
    double correct = 0.0, lsum = 0.0, bsum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double *pr = probs + i * K;
        int32_t y = labels[i];
        if (y < 0 || (size_t)y >= K) {
            free(bins);
            return effdim_error_set(err, EFFDIM_EINVAL,
                                    "metrics: label %d of row %zu outside [0, %zu)", (int)y, i, K);
        }
        size_t am = 0;
        for (size_t c = 0; c < K; ++c) {
            if (pr[c] > pr[am]) am = c;
            double t = pr[c] - (c == (size_t)y ? 1.0 : 0.0);
            bsum += t * t;
        }
        int ok = am == (size_t)y;
        correct += ok;
        lsum -= log(pr[y] > DBL_MIN ? pr[y] : DBL_MIN);
        double conf = pr[am];
        size_t b = (size_t)(conf * (double)nbins);
        if (b >= nbins) b = nbins - 1;
        bc[b] += 1.0;
        bacc[b] += ok;
        bconf[b] += conf;
    }
    double e = 0.0;
    for (size_t b = 0; b < nbins; ++b)
        if (bc[b] > 0) e += fabs(bacc[b] - bconf[b]) / (double)n;
    free(bins);
    if (accuracy) *accuracy = correct / (double)n;
    if (nll) *nll = lsum / (double)n;
    if (ece) *ece = e;
    if (brier) *brier = bsum / (double)n;
    return EFFDIM_OK;
}

effdim_status effdim_metrics_regression(size_t n, size_t K, const double *mean, const double *var,
                                        const double *Y, double *rmse, double *nll,
                                        effdim_error *err)
{
    RETURN_ERROR_IF(!mean || !Y || n == 0 || K == 0, err, EFFDIM_EINVAL,
                    "metrics: empty or NULL predictions");
    double se = 0.0, l = 0.0;
    for (size_t i = 0; i < n * K; ++i) {
        double r = Y[i] - mean[i];
        se += r * r;
        if (var) {
            RETURN_ERROR_IF(!(var[i] > 0.0), err, EFFDIM_EDOM,
                            "metrics: predictive variance %g at row %zu, expected > 0", var[i],
                            i / K);
            l += 0.5 * log(2.0 * M_PI * var[i]) + r * r / (2.0 * var[i]);
        }
    }
    if (rmse) *rmse = sqrt(se / (double)(n * K));
    if (nll) *nll = var ? l / (double)(n * K) : (double)NAN;
    return EFFDIM_OK;
}

/* ======================================================================== */
/* predictive                                                               */
/* ======================================================================== */

effdim_predict_params effdim_predict_default_params(void)
{
    effdim_predict_params p = {.samples = 64, .linearised = 0, .seed = 0, .tempering = 1.0,
                               .fix_output_layer = 0, .point = 0, .progress = {NULL, NULL}};
    return p;
}

void effdim_prediction_free(effdim_prediction *r)
{
    if (!r) return;
    free(r->mean);
    free(r->var);
    free(r->target_mean);
    free(r->target_sd);
    free(r);
}

static void softmax_row(const double *f, size_t K, double *p)
{
    double mx = f[0], s = 0.0;
    for (size_t c = 1; c < K; ++c)
        if (f[c] > mx) mx = f[c];
    for (size_t c = 0; c < K; ++c) s += (p[c] = exp(f[c] - mx));
    for (size_t c = 0; c < K; ++c) p[c] /= s;
}

static effdim_status predict_mc(const effdim_posterior *post, const effdim_dataset *ds,
                                const effdim_predict_params *pp, effdim_prediction *r,
                                effdim_mlp_ws *ws, double noise, effdim_error *err)
{
    size_t n = ds->n, K = r->K, P = post->P;
    effdim_posterior_sampler *s =
        effdim_posterior_sampler_alloc(post, pp->seed, pp->tempering, pp->fix_output_layer, err);
    if (!s) return err ? err->code : EFFDIM_ENOMEM;
    double *theta = effdim_alloc(P + n * K + K, sizeof(double), "sample", err);
    if (!theta) {
        effdim_posterior_sampler_free(s);
        return EFFDIM_ENOMEM;
    }
    double *F = theta + P, *pr = F + n * K;
    effdim_status st = EFFDIM_OK;
    double t0 = effdim_progress_clock();
    size_t S = pp->samples;
    for (size_t j = 0; j < S && !st; ++j) {
        effdim_posterior_sample(s, theta);
        st = effdim_mlp_predict(&post->mlp, theta, ds->X, n, F, ws, err);
        for (size_t i = 0; !st && i < n; ++i) {
            if (r->classification) {
                softmax_row(F + i * K, K, pr);
                for (size_t c = 0; c < K; ++c) r->mean[i * K + c] += pr[c];
            } else {
                for (size_t c = 0; c < K; ++c) {
                    double f = F[i * K + c];
                    r->mean[i * K + c] += f;
                    r->var[i * K + c] += f * f;
                }
            }
        }
        if (!st && effdim_progress_report(&pp->progress, "samples", t0, j + 1, S, -1.0, "%s", ""))
            st = effdim_error_set(err, EFFDIM_EMAXITER, "predict: interrupted after %zu samples",
                                  j + 1);
    }
    if (!st) {
        for (size_t i = 0; i < n * K; ++i) {
            r->mean[i] /= (double)S;
            if (!r->classification) {
                double v = r->var[i] / (double)S - r->mean[i] * r->mean[i];
                r->var[i] = (v > 0.0 ? v : 0.0) + noise;
            }
        }
    }
    free(theta);
    effdim_posterior_sampler_free(s);
    return st;
}

static effdim_status predict_glm(const effdim_posterior *post, const effdim_dataset *ds,
                                 const effdim_predict_params *pp, effdim_prediction *r,
                                 effdim_mlp_ws *ws, double noise, effdim_error *err)
{
    size_t n = ds->n, K = r->K, P = post->P, k = post->k, d = ds->d;
    size_t fix_off = 0, fix_len = 0;
    if (pp->fix_output_layer)
        effdim_mlp_layer_block(&post->mlp, post->mlp.n_layers - 1, &fix_off, &fix_len);
    double *J = effdim_alloc(K * P, sizeof(double), "jacobian", err);
    double *JB = effdim_alloc(K * (k + 1) + 3 * K, sizeof(double), "jacobian products", err);
    if (!J || !JB) {
        free(J);
        free(JB);
        return EFFDIM_ENOMEM;
    }
    double *f = JB + K * (k + 1), *vv = f + K, *pr = vv + K;
    double t0 = effdim_progress_clock();
    effdim_status st = EFFDIM_OK;
    for (size_t i = 0; i < n && !st; ++i) {
        st = effdim_mlp_jacobian(&post->mlp, post->mean, ds->X + i * d, 1, J, f, ws, err);
        if (st) break;
        for (size_t o = 0; o < K; ++o) {
            double *jr = J + o * P;
            if (fix_len) memset(jr + fix_off, 0, fix_len * sizeof(double));
            double a = 0.0;
            for (size_t p = 0; p < P; ++p) {
                jr[p] /= sqrt(post->prec_diag[p]);
                a += jr[p] * jr[p];
            }
            vv[o] = a;
        }
        if (k) {
            /* JB (K, k) = Jw B^T; subtract sum_j c_j JB(o, j)^2 */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)K, (int)k, (int)P, 1.0, J,
                        (int)P, post->B, (int)P, 0.0, JB, (int)k);
            for (size_t o = 0; o < K; ++o)
                for (size_t j = 0; j < k; ++j) {
                    double c = post->mu[j] / (1.0 + post->mu[j]);
                    vv[o] -= c * JB[o * k + j] * JB[o * k + j];
                }
        }
        for (size_t o = 0; o < K; ++o) {
            double v = vv[o] / pp->tempering;
            vv[o] = v > 0.0 ? v : 0.0;
        }
        if (r->classification) {
            for (size_t o = 0; o < K; ++o) pr[o] = f[o] / sqrt(1.0 + M_PI / 8.0 * vv[o]);
            softmax_row(pr, K, r->mean + i * K);
        } else {
            for (size_t o = 0; o < K; ++o) {
                r->mean[i * K + o] = f[o];
                r->var[i * K + o] = vv[o] + noise;
            }
        }
        if ((i + 1) % 64 == 0 || i + 1 == n)
            if (effdim_progress_report(&pp->progress, "linearised", t0, i + 1, n, -1.0, "%s", ""))
                st = effdim_error_set(err, EFFDIM_EMAXITER,
                                      "predict: interrupted after %zu rows", i + 1);
    }
    free(J);
    free(JB);
    return st;
}

static effdim_status predict_point(const effdim_posterior *post, const effdim_dataset *ds,
                                   effdim_prediction *r, effdim_mlp_ws *ws, double noise,
                                   effdim_error *err)
{
    size_t n = ds->n, K = r->K;
    effdim_status st = effdim_mlp_predict(&post->mlp, post->mean, ds->X, n, r->mean, ws, err);
    for (size_t i = 0; !st && i < n; ++i) {
        if (r->classification) {
            softmax_row(r->mean + i * K, K, r->mean + i * K); /* in place: each f read first */
        } else {
            for (size_t c = 0; c < K; ++c) r->var[i * K + c] = noise;
        }
    }
    return st;
}

/* Targets standardised by (m, s) per column: the predictive N(mu, v) in
 * standardised units is N(m + s mu, s^2 v) in the original ones; r's mean and
 * var are mapped, the metrics computed against the original targets (the
 * mean log-likelihood thereby drops by mean log s), and (m, s) recorded. */
static effdim_status to_original_units(const effdim_dataset *ds, effdim_prediction *r,
                                       effdim_error *err)
{
    size_t n = r->n, K = r->K;
    double *y = effdim_alloc(n * K, sizeof(double), "targets in original units", err);
    r->target_mean = effdim_alloc(K, sizeof(double), "target statistics", err);
    r->target_sd = effdim_alloc(K, sizeof(double), "target statistics", err);
    if (!y || !r->target_mean || !r->target_sd) {
        free(y);
        return EFFDIM_ENOMEM;
    }
    memcpy(r->target_mean, ds->y_mean, K * sizeof(double));
    memcpy(r->target_sd, ds->y_sd, K * sizeof(double));
    for (size_t i = 0; i < n; ++i)
        for (size_t c = 0; c < K; ++c) {
            double m = ds->y_mean[c], s = ds->y_sd[c];
            y[i * K + c] = m + s * ds->Y[i * K + c];
            r->mean[i * K + c] = m + s * r->mean[i * K + c];
            r->var[i * K + c] *= s * s;
        }
    effdim_status st = effdim_metrics_regression(n, K, r->mean, r->var, y, &r->rmse, &r->nll, err);
    free(y);
    return st;
}

effdim_status effdim_predict(const effdim_posterior *post, const effdim_dataset *ds,
                             const effdim_predict_params *params, effdim_prediction **out,
                             effdim_error *err)
{
    RETURN_ERROR_IF(!post || !ds || !out, err, EFFDIM_EINVAL, "predict: NULL argument");
    *out = NULL;
    effdim_predict_params dp = effdim_predict_default_params();
    const effdim_predict_params *pp = params ? params : &dp;
    RETURN_ERROR_IF(!pp->point && !pp->linearised && pp->samples == 0, err, EFFDIM_EINVAL,
                    "predict: samples = 0, expected >= 1 (or the linearised predictive)");
    RETURN_ERROR_IF(!(pp->tempering > 0.0), err, EFFDIM_EDOM,
                    "predict: tempering %g, expected > 0", pp->tempering);
    const effdim_mlp *m = &post->mlp;
    effdim_status st = effdim_mlp_check_data(m, ds, ds->spec ? ds->spec : "data", err);
    if (st) return st;
    size_t n = ds->n, K = m->sizes[m->n_layers];
    effdim_prediction *r = effdim_calloc(1, sizeof *r, "prediction", err);
    if (!r) return EFFDIM_ENOMEM;
    r->n = n;
    r->K = K;
    r->classification = m->loss == EFFDIM_LOSS_CROSS_ENTROPY;
    r->accuracy = r->rmse = r->nll = r->ece = r->brier = NAN;
    r->mean = effdim_calloc(n * K, sizeof(double), "predictive mean", err);
    if (!r->classification) r->var = effdim_calloc(n * K, sizeof(double), "predictive var", err);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(m, 0, err);
    if (!r->mean || (!r->classification && !r->var) || !ws) {
        effdim_mlp_ws_free(ws);
        effdim_prediction_free(r);
        return EFFDIM_ENOMEM;
    }
    double noise = isfinite(post->noise_var) ? post->noise_var : 0.0;
    st = pp->point ? predict_point(post, ds, r, ws, noise, err)
         : pp->linearised ? predict_glm(post, ds, pp, r, ws, noise, err)
                        : predict_mc(post, ds, pp, r, ws, noise, err);
    effdim_mlp_ws_free(ws);
    if (!st && r->classification)
        st = effdim_metrics_classification(n, K, r->mean, ds->labels, 15, &r->accuracy, &r->nll,
                                           &r->ece, &r->brier, err);
    else if (!st && ds->y_mean)
        st = to_original_units(ds, r, err);
    else if (!st)
        st = effdim_metrics_regression(n, K, r->mean, r->var, ds->Y, &r->rmse, &r->nll, err);
    if (st) {
        effdim_prediction_free(r);
        return st;
    }
    *out = r;
    return EFFDIM_OK;
}
