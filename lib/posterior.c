/* lib/posterior.c: Gaussian posteriors over the weights from curvature
 * (BADAM's Adam second moment, the GGN diagonal, the empirical Fisher, the
 * top-k GGN eigenpairs), the low-rank-plus-diagonal algebra they share, and
 * the prior precision by MacKay's evidence fixed point or a grid of Laplace
 * marginal likelihoods.
 *
 * The one representation is the precision Lambda = diag(D) + U^T diag(s) U
 * (effdim/posterior.h). effdim_posterior_finalize whitens it once,
 * W = diag(s)^(1/2) U D^(-1/2), eigen-decomposes the k x k matrix W W^T =
 * R diag(mu) R^T (LAPACKE dsyev) and keeps B = diag(mu)^(-1/2) R^T W, whose
 * rows are orthonormal; then Lambda = D^(1/2) (I + B^T diag(mu) B) D^(1/2)
 * and its inverse, determinant and square root are diagonal in that basis.
 *
 * References: Kessler et al., "Practical Bayesian learning of neural
 * networks via adaptive optimisation methods" (arXiv 1811.03679; SEEDS.md
 * section 1); MacKay, "Bayesian interpolation" and "A practical Bayesian
 * framework for backpropagation networks" (Neural Computation 4, 1992);
 * Daxberger et al., "Laplace redux" (NeurIPS 2021) for the GGN/EF and
 * low-rank Laplace approximations; docs/posteriors.md for the derivations.
 */
#include <cblas.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/posterior.h"
#include "internal.h"
#include "lanczos_internal.h"

/* ======================================================================== */
/* names and defaults                                                       */
/* ======================================================================== */

static const char *const post_names[EFFDIM_POSTERIOR_N_METHODS] = {"badam-a", "badam-b", "ggn", "ef",
                                                              "lowrank", "ivon"};

const char *effdim_post_method_name(effdim_posterior_method m)
{
    return (unsigned)m < EFFDIM_POSTERIOR_N_METHODS ? post_names[m] : "?";
}

effdim_status effdim_post_method_parse(const char *s, effdim_posterior_method *m, effdim_error *err)
{
    for (size_t i = 0; s && i < EFFDIM_POSTERIOR_N_METHODS; ++i)
        if (!strcmp(s, post_names[i])) {
            *m = (effdim_posterior_method)i;
            return EFFDIM_OK;
        }
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "unknown posterior method '%s' (expected badam-a, badam-b, ggn, ef, "
                            "lowrank or ivon)",
                            s ? s : "(null)");
}

const char *effdim_prior_mode_name(effdim_prior_mode m)
{
    switch (m) {
    case EFFDIM_PRIOR_FIXED: return "fixed";
    case EFFDIM_PRIOR_EVIDENCE: return "evidence";
    case EFFDIM_PRIOR_GRID: return "grid";
    }
    return "?";
}

effdim_posterior_params effdim_posterior_default_params(void)
{
    effdim_posterior_params p = {
        .method = EFFDIM_POSTERIOR_GGN,
        .prior = EFFDIM_PRIOR_EVIDENCE,
        .prior_precision = 1.0,
        .grid_min = 1e-4,
        .grid_max = 1e6,
        .grid_points = 61,
        .evidence_tol = 1e-10,
        .evidence_max_iter = 1000,
        .N = 0.0,
        .noise_var = 0.0,
        .badam_eps = 1e-8,
        .badam_eps_mode = EFFDIM_BADAM_EPS_PRECISION,
        .badam_bias_correction = 0,
        .k = 20,
        .lanczos_tol = 1e-8,
        .seed = 0,
        .rest = EFFDIM_LOWRANK_REST_PRIOR,
        .progress = {NULL, NULL},
    };
    return p;
}

/* ======================================================================== */
/* the object                                                               */
/* ======================================================================== */

effdim_status effdim_posterior_alloc(const effdim_mlp *m, size_t k, effdim_posterior **out,
                                     effdim_error *err)
{
    RETURN_ERROR_IF(!m || !out, err, EFFDIM_EINVAL, "posterior: NULL argument");
    *out = NULL;
    size_t P = m->n_params;
    RETURN_ERROR_IF(k > P, err, EFFDIM_EINVAL, "posterior: rank k = %zu exceeds P = %zu", k, P);
    effdim_posterior *p = effdim_calloc(1, sizeof *p, "posterior", err);
    if (!p) return EFFDIM_ENOMEM;
    p->mlp = *m;
    p->P = P;
    p->k = k;
    p->prior_precision = NAN;
    p->noise_var = NAN;
    p->gamma = NAN;
    p->log_evidence = NAN;
    p->log_det = NAN;
    p->mean = effdim_calloc(P, sizeof(double), "posterior mean", err);
    p->var = effdim_calloc(P, sizeof(double), "posterior variances", err);
    p->prec_diag = effdim_calloc(P, sizeof(double), "posterior precision", err);
    int bad = !p->mean || !p->var || !p->prec_diag;
    if (k && !bad) {
        size_t kp;
        bad = effdim_mul_size(k, P, &kp) != 0;
        if (!bad) {
            p->U = effdim_calloc(kp, sizeof(double), "posterior U", err);
            p->B = effdim_calloc(kp, sizeof(double), "posterior factor", err);
            p->s = effdim_calloc(k, sizeof(double), "posterior s", err);
            p->mu = effdim_calloc(k, sizeof(double), "posterior mu", err);
            bad = !p->U || !p->B || !p->s || !p->mu;
        }
    }
    if (bad) {
        effdim_posterior_free(p);
        return effdim_error_set(err, EFFDIM_ENOMEM, "posterior: out of memory for P = %zu, k = %zu",
                                P, k);
    }
    *out = p;
    return EFFDIM_OK;
}

void effdim_posterior_free(effdim_posterior *p)
{
    if (!p) return;
    free(p->mean);
    free(p->var);
    free(p->prec_diag);
    free(p->U);
    free(p->s);
    free(p->B);
    free(p->mu);
    free(p->checkpoint);
    free(p->data_spec);
    free(p->grid_alpha);
    free(p->grid_log_evidence);
    free(p);
}

/* ======================================================================== */
/* low-rank plus diagonal algebra                                           */
/* ======================================================================== */

/* From D (P) > 0 and U (k, P), s (k) >= 0: B (k, P), mu (k) (zero rows and
 * zeros for directions without curvature), the per-entry q_p =
 * sum_j B_jp^2 mu_j / (1 + mu_j) into q (P) when non-NULL, and
 * log det Lambda. */
static effdim_status lr_factor(size_t P, const double *D, size_t k, const double *U,
                               const double *s, double *B, double *mu, double *q, double *log_det,
                               effdim_error *err)
{
    double ld = 0.0;
    for (size_t p = 0; p < P; ++p) {
        RETURN_ERROR_IF(!(D[p] > 0.0) || !isfinite(D[p]), err, EFFDIM_EDOM,
                        "posterior: precision diagonal entry %zu = %g, expected finite and > 0", p,
                        D[p]);
        ld += log(D[p]);
    }
    if (q) memset(q, 0, P * sizeof(double));
    if (k == 0) {
        *log_det = ld;
        return EFFDIM_OK;
    }
    for (size_t i = 0; i < k; ++i)
        RETURN_ERROR_IF(!(s[i] >= 0.0) || !isfinite(s[i]), err, EFFDIM_EDOM,
                        "posterior: low-rank curvature s[%zu] = %g, expected finite and >= 0", i,
                        s[i]);
    double *W = effdim_alloc(k * P, sizeof(double), "posterior whitening", err);
    double *M = effdim_alloc(k * k * 2 + k, sizeof(double), "posterior k x k", err);
    if (!W || !M) {
        free(W);
        free(M);
        return EFFDIM_ENOMEM;
    }
    double *Z = M + k * k, *ev = Z + k * k;
    for (size_t i = 0; i < k; ++i) {
        double r = sqrt(s[i]);
        for (size_t p = 0; p < P; ++p) W[i * P + p] = r * U[i * P + p] / sqrt(D[p]);
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)k, (int)P, 1.0, W, (int)P, 0.0, M,
                (int)k);
    for (size_t i = 0; i < k; ++i)
        for (size_t j = 0; j < i; ++j) M[i * k + j] = M[j * k + i];
    effdim_status st = effdim_symm_eig(k, M, ev, Z, err);
    if (st) {
        free(W);
        free(M);
        return st;
    }
    /* B = Z^T W, row j scaled by 1 / sqrt(mu_j) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)P, (int)k, 1.0, Z, (int)k, W,
                (int)P, 0.0, B, (int)P);
    double top = 0.0;
    for (size_t j = 0; j < k; ++j)
        if (ev[j] > top) top = ev[j];
    for (size_t j = 0; j < k; ++j) {
        double m = ev[j];
        if (!(m > 1e-13 * top) || top == 0.0) {
            mu[j] = 0.0;
            memset(B + j * P, 0, P * sizeof(double));
            continue;
        }
        mu[j] = m;
        ld += log1p(m);
        double sc = 1.0 / sqrt(m);
        for (size_t p = 0; p < P; ++p) B[j * P + p] *= sc;
        if (q) {
            double c = m / (1.0 + m);
            for (size_t p = 0; p < P; ++p) q[p] += c * B[j * P + p] * B[j * P + p];
        }
    }
    free(W);
    free(M);
    *log_det = ld;
    return EFFDIM_OK;
}

effdim_status effdim_posterior_finalize(effdim_posterior *p, effdim_error *err)
{
    RETURN_ERROR_IF(!p, err, EFFDIM_EINVAL, "posterior: NULL argument");
    double *q = p->var; /* q first, then var in place */
    effdim_status st = lr_factor(p->P, p->prec_diag, p->k, p->U, p->s, p->B, p->mu, q,
                                 &p->log_det, err);
    if (st) return st;
    for (size_t j = 0; j < p->P; ++j) p->var[j] = (1.0 - q[j]) / p->prec_diag[j];
    return EFFDIM_OK;
}

/* ======================================================================== */
/* BADAM                                                                    */
/* ======================================================================== */

void effdim_badam_posterior(const double *v, size_t n, double N, double prec, double eps,
                            effdim_badam_eps mode, int variant_b, double *var, double *coef)
{
    for (size_t j = 0; j < n; ++j) {
        double r = sqrt(v[j] > 0.0 ? v[j] : 0.0);
        double lik = mode == EFFDIM_BADAM_EPS_SQRTV ? N * (r + eps) : N * r + eps;
        double a = variant_b ? 0.0 : prec;
        if (var) var[j] = 1.0 / (lik + a);
        if (coef) coef[j] = variant_b ? 1.0 : (r > 0.0 ? r / (r + prec / N) : 0.0);
    }
}

/* ======================================================================== */
/* evidence                                                                 */
/* ======================================================================== */

/* gamma and log det at alpha, through scratch of k P + k + P doubles + D (P). */
typedef struct ev_ws {
    size_t P, k;
    const double *curv, *U, *s;
    double *D, *B, *mu, *q;
} ev_ws;

static effdim_status ev_ws_init(ev_ws *w, size_t P, const double *curv, size_t k, const double *U,
                                const double *s, effdim_error *err)
{
    memset(w, 0, sizeof *w);
    w->P = P;
    w->k = k;
    w->curv = curv;
    w->U = U;
    w->s = s;
    size_t n = 2 * P + k + k * P;
    w->D = effdim_alloc(n, sizeof(double), "evidence scratch", err);
    if (!w->D) return EFFDIM_ENOMEM;
    w->q = w->D + P;
    w->mu = w->q + P;
    w->B = w->mu + k;
    return EFFDIM_OK;
}

static effdim_status ev_eval(ev_ws *w, double alpha, double *gamma, double *log_det,
                             effdim_error *err)
{
    for (size_t p = 0; p < w->P; ++p) w->D[p] = (w->curv ? w->curv[p] : 0.0) + alpha;
    double ld;
    effdim_status st = lr_factor(w->P, w->D, w->k, w->U, w->s, w->B, w->mu, w->q, &ld, err);
    if (st) return st;
    /* gamma = sum_p (1 - alpha var_p), var_p = (1 - q_p) / D_p, written without
     * the cancellation: (curv_p + alpha q_p) / D_p */
    double g = 0.0;
    for (size_t p = 0; p < w->P; ++p)
        g += ((w->curv ? w->curv[p] : 0.0) + alpha * w->q[p]) / w->D[p];
    *gamma = g;
    if (log_det) *log_det = ld;
    return EFFDIM_OK;
}

effdim_status effdim_laplace_evidence(size_t P, const double *curv, size_t k, const double *U,
                                      const double *s, double alpha, double nll, double theta_sq,
                                      double *gamma, double *logz, double *log_det,
                                      effdim_error *err)
{
    RETURN_ERROR_IF(P == 0 || (k && (!U || !s)), err, EFFDIM_EINVAL,
                    "laplace evidence: empty or NULL curvature");
    RETURN_ERROR_IF(!(alpha > 0.0) || !isfinite(alpha), err, EFFDIM_EDOM,
                    "laplace evidence: prior precision %g, expected finite and > 0", alpha);
    ev_ws w;
    effdim_status st = ev_ws_init(&w, P, curv, k, U, s, err);
    if (st) return st;
    double g, ld;
    st = ev_eval(&w, alpha, &g, &ld, err);
    free(w.D);
    if (st) return st;
    if (gamma) *gamma = g;
    if (log_det) *log_det = ld;
    if (logz) *logz = -nll - 0.5 * alpha * theta_sq + 0.5 * (double)P * log(alpha) - 0.5 * ld;
    return EFFDIM_OK;
}

effdim_status effdim_evidence_fixed_point(size_t P, const double *curv, size_t k, const double *U,
                                          const double *s, double theta_sq,
                                          effdim_theta_norm2_fn fn, void *ctx, double alpha0,
                                          double tol, size_t max_iter, double *alpha,
                                          double *gamma, size_t *iterations, effdim_error *err)
{
    RETURN_ERROR_IF(P == 0 || (k && (!U || !s)) || !alpha, err, EFFDIM_EINVAL,
                    "evidence: empty or NULL curvature");
    RETURN_ERROR_IF(!(alpha0 > 0.0) || !isfinite(alpha0), err, EFFDIM_EDOM,
                    "evidence: start value alpha0 = %g, expected finite and > 0", alpha0);
    RETURN_ERROR_IF(!(tol > 0.0), err, EFFDIM_EDOM, "evidence: tol = %g, expected > 0", tol);
    ev_ws w;
    effdim_status st = ev_ws_init(&w, P, curv, k, U, s, err);
    if (st) return st;
    double a = alpha0, g = NAN;
    size_t it = 0;
    st = EFFDIM_EMAXITER;
    while (it < max_iter) {
        effdim_status e = ev_eval(&w, a, &g, NULL, err);
        if (e) {
            st = e;
            break;
        }
        double t2 = fn ? fn(ctx, a) : theta_sq;
        if (!(t2 > 0.0) || !isfinite(t2)) {
            st = effdim_error_set(err, EFFDIM_EDOM,
                                  "evidence: ||theta||^2 = %g at alpha = %g; the fixed point "
                                  "alpha = gamma / ||theta||^2 needs a non-zero mean",
                                  t2, a);
            break;
        }
        double next = g / t2;
        ++it;
        if (!(next > 0.0)) {
            st = effdim_error_set(err, EFFDIM_EDOM,
                                  "evidence: gamma = %g at alpha = %g (no curvature: the evidence "
                                  "has no maximum)",
                                  g, a);
            break;
        }
        double change = fabs(next - a) / a;
        a = next;
        if (change <= tol) {
            st = ev_eval(&w, a, &g, NULL, err);
            break;
        }
    }
    free(w.D);
    *alpha = a;
    if (gamma) *gamma = g;
    if (iterations) *iterations = it;
    if (st == EFFDIM_EMAXITER)
        effdim_error_set(err, EFFDIM_EMAXITER,
                         "evidence: no fixed point within %zu iterations (alpha = %g, gamma = %g)",
                         max_iter, a, g);
    return st;
}

/* ======================================================================== */
/* building from a checkpoint                                               */
/* ======================================================================== */

typedef struct badam_a_ctx {
    const double *theta, *v;
    size_t P;
    double N;
} badam_a_ctx;

/* ||coef(alpha) theta||^2: variant A's mean moves with the prior */
static double badam_a_norm2(void *vctx, double alpha)
{
    const badam_a_ctx *c = vctx;
    double s = 0.0;
    for (size_t j = 0; j < c->P; ++j) {
        double r = sqrt(c->v[j] > 0.0 ? c->v[j] : 0.0);
        double m = r > 0.0 ? r / (r + alpha / c->N) * c->theta[j] : 0.0;
        s += m * m;
    }
    return s;
}

/* variant A's extra evidence term: the likelihood is the Gaussian around
 * theta with precision C, evaluated at the shrunk mean: 1/2 (m - theta)^T C (m - theta) */
static double badam_a_quad(const badam_a_ctx *c, const double *curv, double alpha)
{
    double s = 0.0;
    for (size_t j = 0; j < c->P; ++j) {
        double r = sqrt(c->v[j] > 0.0 ? c->v[j] : 0.0);
        double m = r > 0.0 ? r / (r + alpha / c->N) * c->theta[j] : 0.0;
        double d = m - c->theta[j];
        s += 0.5 * curv[j] * d * d;
    }
    return s;
}

typedef struct build_ctx {
    const effdim_checkpoint *c;
    const char *path;
    const effdim_dataset *ds;
    const effdim_posterior_params *p;
    size_t P;
    double N, lik, scale, nll, noise_var;
    double *curv;    /* (P) data curvature on the summed-NLL scale */
    size_t k;
    double *U, *s;   /* lowrank */
    const double *v; /* BADAM's v (possibly bias-corrected copy in vbuf) */
    double *vbuf;
} build_ctx;

static const char *nm(const char *path)
{
    return path ? path : "checkpoint";
}

/* the likelihood factor c and the summed NLL at theta (needs data) */
static effdim_status likelihood(build_ctx *b, effdim_mlp_ws *ws, effdim_error *err)
{
    const effdim_mlp *m = &b->c->mlp;
    double loss = NAN, acc;
    effdim_status st =
        effdim_mlp_evaluate(m, b->c->theta, b->ds, NULL, b->ds->n, &loss, &acc, ws, err);
    if (st) return st;
    b->scale = effdim_mlp_loss_scale(m, b->ds->n);
    double sum_l = loss / b->scale;
    if (m->loss == EFFDIM_LOSS_CROSS_ENTROPY) {
        b->lik = 1.0;
        b->nll = sum_l;
        b->noise_var = NAN;
        return EFFDIM_OK;
    }
    double K = (double)m->sizes[m->n_layers], n = (double)b->ds->n;
    double kmult = m->reduction == EFFDIM_REDUCTION_MEAN ? K : 1.0;
    double rss = sum_l * kmult;
    double s2 = b->p->noise_var > 0.0 ? b->p->noise_var : rss / (n * K);
    RETURN_ERROR_IF(!(s2 > 0.0) || !isfinite(s2), err, EFFDIM_EDOM,
                    "%s: the training residuals are all zero, so the noise variance estimate is "
                    "%g; pass a noise variance",
                    nm(b->path), s2);
    b->noise_var = s2;
    b->lik = kmult / (2.0 * s2);
    b->nll = rss / (2.0 * s2) + 0.5 * n * K * log(2.0 * M_PI * s2);
    return EFFDIM_OK;
}

/* A curvature and NLL over n rows stand for N training rows: both scaled by
 * N / n (the data may be a subset of the training set). */
static void to_training_size(build_ctx *b)
{
    double ratio = b->N / (double)b->ds->n;
    b->scale /= ratio;
    b->nll *= ratio;
}

static effdim_status curv_badam(build_ctx *b, effdim_error *err)
{
    const effdim_checkpoint *c = b->c;
    RETURN_ERROR_IF(!c->optimizer || !effdim_checkpoint_state(c, "exp_avg_sq"), err,
                    EFFDIM_ENOTFOUND,
                    "%s: /optimizer/exp_avg_sq: not found (BADAM reads Adam's second moment; "
                    "train with adam, amsgrad or adamw)",
                    nm(b->path));
    RETURN_ERROR_IF(c->mlp.reduction != EFFDIM_REDUCTION_MEAN, err, EFFDIM_EINVAL,
                    "%s: /model reduction 'sum': BADAM reads v of the minibatch-MEAN loss "
                    "(SEEDS.md 6); train with the mean reduction",
                    nm(b->path));
    const double *v = effdim_checkpoint_state(c, "exp_avg_sq");
    if (b->p->badam_bias_correction) {
        double beta2;
        RETURN_ERROR_IF(!effdim_checkpoint_hparam(c, "beta2", &beta2) || c->optimizer->step < 1,
                        err, EFFDIM_ENOTFOUND,
                        "%s: /optimizer: bias correction needs 'beta2' and 'step' >= 1",
                        nm(b->path));
        double bc = 1.0 - pow(beta2, (double)c->optimizer->step);
        b->vbuf = effdim_alloc(b->P, sizeof(double), "bias-corrected v", err);
        if (!b->vbuf) return EFFDIM_ENOMEM;
        for (size_t j = 0; j < b->P; ++j) b->vbuf[j] = v[j] / bc;
        v = b->vbuf;
    }
    b->v = v;
    for (size_t j = 0; j < b->P; ++j) {
        double r = sqrt(v[j] > 0.0 ? v[j] : 0.0);
        b->curv[j] = b->p->badam_eps_mode == EFFDIM_BADAM_EPS_SQRTV ? b->N * (r + b->p->badam_eps)
                                                                    : b->N * r + b->p->badam_eps;
    }
    return EFFDIM_OK;
}

static effdim_status curv_lowrank(build_ctx *b, effdim_mlp_ws *ws, effdim_error *err)
{
    const effdim_mlp *m = &b->c->mlp;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.curvature = EFFDIM_CURV_GGN;
    hp.method = EFFDIM_HVP_EXACT;
    effdim_operator *op = NULL;
    effdim_status st =
        effdim_hvp_operator(m, b->c->theta, b->ds, NULL, b->ds->n, &hp, ws, &op, err);
    if (st) return st;
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = b->p->k;
    lp.tol = b->p->lanczos_tol;
    lp.seed = b->p->seed;
    lp.want_vectors = 1;
    effdim_lanczos_workspace *lw = effdim_lanczos_alloc(b->P, &lp, err);
    if (!lw) {
        effdim_operator_free(op);
        return err ? err->code : EFFDIM_EINVAL;
    }
    st = effdim_lanczos_init(lw, op, NULL, err);
    double t0 = effdim_progress_clock();
    while (!st || st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(lw, err);
        if (st != EFFDIM_ECONTINUE) break;
        effdim_lanczos_progress pr;
        effdim_lanczos_get_progress(lw, &pr);
        if (effdim_progress_report(&b->p->progress, "lanczos", t0, pr.nconv, pr.k, -1.0,
                                   "steps %zu, top Ritz value %.4g", pr.steps,
                                   pr.steps > 1 ? pr.theta_max : 0.0)) {
            st = effdim_error_set(err, EFFDIM_EMAXITER, "lanczos: interrupted after %zu steps",
                                  pr.steps);
            break;
        }
    }
    effdim_status lst = st;
    if (st == EFFDIM_OK || st == EFFDIM_EMAXITER) {
        effdim_lanczos_solution sol;
        effdim_error e2;
        if (effdim_lanczos_result(lw, &sol, &e2) == EFFDIM_OK) {
            double f = b->lik / b->scale;
            for (size_t i = 0; i < b->k; ++i) {
                double lam = sol.eigenvalues[i] * f;
                b->s[i] = lam > 0.0 ? lam : 0.0;
            }
            memcpy(b->U, sol.vectors, b->k * b->P * sizeof(double));
            st = EFFDIM_OK;
        } else {
            st = effdim_error_set(err, EFFDIM_EINVAL, "%s",
                                  "lanczos: stopped before any result (interrupted)");
            lst = st;
        }
    }
    effdim_lanczos_free(lw);
    effdim_operator_free(op);
    if (st) return st;
    if (b->p->rest == EFFDIM_LOWRANK_REST_DIAG) {
        effdim_diag_params dp = effdim_diag_default_params();
        st = effdim_diag_ggn(m, b->c->theta, b->ds, NULL, b->ds->n, &dp, b->curv, ws, err);
        if (st) return st;
        double f = b->lik / b->scale;
        for (size_t p = 0; p < b->P; ++p) {
            double low = 0.0;
            for (size_t i = 0; i < b->k; ++i) low += b->s[i] * b->U[i * b->P + p] * b->U[i * b->P + p];
            double r = b->curv[p] * f - low;
            b->curv[p] = r > 0.0 ? r : 0.0;
        }
    } else {
        memset(b->curv, 0, b->P * sizeof(double));
    }
    return lst == EFFDIM_EMAXITER ? effdim_error_set(err, EFFDIM_EMAXITER, "%s",
                                                     "lanczos: not every eigenpair converged")
                                  : EFFDIM_OK;
}

static effdim_status choose_prior(build_ctx *b, effdim_posterior *post, effdim_error *err)
{
    const effdim_posterior_params *p = b->p;
    const double *theta = b->c->theta;
    int a_variant = p->method == EFFDIM_POSTERIOR_BADAM_A;
    badam_a_ctx ac = {.theta = theta, .v = b->v, .P = b->P, .N = b->N};
    double t2 = 0.0;
    for (size_t j = 0; j < b->P; ++j) t2 += theta[j] * theta[j];
    post->prior_mode = p->prior;
    if (p->prior == EFFDIM_PRIOR_FIXED) {
        RETURN_ERROR_IF(!(p->prior_precision > 0.0) || !isfinite(p->prior_precision), err,
                        EFFDIM_EDOM, "prior precision %g, expected finite and > 0",
                        p->prior_precision);
        post->prior_precision = p->prior_precision;
        return EFFDIM_OK;
    }
    if (p->prior == EFFDIM_PRIOR_EVIDENCE) {
        double a, g;
        size_t it;
        effdim_status st = effdim_evidence_fixed_point(
            b->P, b->curv, b->k, b->U, b->s, t2, a_variant ? badam_a_norm2 : NULL, &ac,
            p->prior_precision, p->evidence_tol, p->evidence_max_iter, &a, &g, &it, err);
        post->prior_precision = a;
        post->evidence_iterations = it;
        post->evidence_converged = st == EFFDIM_OK;
        if (st && st != EFFDIM_EMAXITER) return st;
        return st;
    }
    /* grid */
    size_t n = p->grid_points;
    RETURN_ERROR_IF(n < 2 || !(p->grid_min > 0.0) || !(p->grid_max > p->grid_min), err,
                    EFFDIM_EINVAL,
                    "prior grid: %zu points over [%g, %g], expected >= 2 points and 0 < min < max",
                    n, p->grid_min, p->grid_max);
    RETURN_ERROR_IF(!isfinite(b->nll), err, EFFDIM_EINVAL,
                    "prior grid: the Laplace marginal likelihood needs the training data");
    post->grid_alpha = effdim_alloc(n, sizeof(double), "prior grid", err);
    post->grid_log_evidence = effdim_alloc(n, sizeof(double), "prior grid", err);
    if (!post->grid_alpha || !post->grid_log_evidence) return EFFDIM_ENOMEM;
    post->grid_n = n;
    double best = -INFINITY, besta = NAN;
    double l0 = log(p->grid_min), l1 = log(p->grid_max);
    for (size_t i = 0; i < n; ++i) {
        double a = exp(l0 + (l1 - l0) * (double)i / (double)(n - 1));
        double nll = b->nll + (a_variant ? badam_a_quad(&ac, b->curv, a) : 0.0);
        double ts = a_variant ? badam_a_norm2(&ac, a) : t2, lz;
        effdim_status st =
            effdim_laplace_evidence(b->P, b->curv, b->k, b->U, b->s, a, nll, ts, NULL, &lz, NULL, err);
        if (st) return st;
        post->grid_alpha[i] = a;
        post->grid_log_evidence[i] = lz;
        if (lz > best) {
            best = lz;
            besta = a;
        }
    }
    post->prior_precision = besta;
    return EFFDIM_OK;
}

static effdim_status build_run(build_ctx *b, effdim_posterior **out, effdim_error *err)
{
    const effdim_posterior_params *p = b->p;
    const effdim_checkpoint *c = b->c;
    const effdim_mlp *m = &c->mlp;
    int badam = p->method == EFFDIM_POSTERIOR_BADAM_A || p->method == EFFDIM_POSTERIOR_BADAM_B;
    effdim_mlp_ws *ws = NULL;
    effdim_posterior *post = NULL;
    effdim_status st = EFFDIM_OK;
    double t0 = effdim_progress_clock();
    if (b->ds) {
        st = effdim_mlp_check_data(m, b->ds, b->ds->spec ? b->ds->spec : "data", err);
        if (st) return st;
        ws = effdim_mlp_ws_alloc(m, 0, err);
        if (!ws) return err ? err->code : EFFDIM_ENOMEM;
        st = likelihood(b, ws, err);
        if (!st) to_training_size(b);
    }
    b->k = p->method == EFFDIM_POSTERIOR_LOWRANK ? p->k : 0;
    if (!st) st = effdim_posterior_alloc(m, b->k, &post, err);
    if (st) goto done;
    b->curv = post->prec_diag; /* curvature first, then D = curv + alpha in place */
    b->U = post->U;
    b->s = post->s;
    effdim_status soft = EFFDIM_OK;
    if (badam) {
        st = curv_badam(b, err);
    } else if (p->method == EFFDIM_POSTERIOR_LOWRANK) {
        st = curv_lowrank(b, ws, err);
        if (st == EFFDIM_EMAXITER) soft = st, st = EFFDIM_OK;
    } else {
        effdim_diag_params dp = effdim_diag_default_params();
        double f;
        if (p->method == EFFDIM_POSTERIOR_GGN) {
            st = effdim_diag_ggn(m, c->theta, b->ds, NULL, b->ds->n, &dp, b->curv, ws, err);
            f = b->lik / b->scale;
        } else {
            st = effdim_diag_ef(m, c->theta, b->ds, NULL, b->ds->n, &dp, b->curv, ws, err);
            f = b->lik * b->lik / b->scale;
        }
        for (size_t j = 0; !st && j < b->P; ++j) b->curv[j] *= f;
    }
    if (st) goto done;
    effdim_progress_report(&p->progress, "curvature", t0, 1, 1, -1.0, "%s",
                           effdim_post_method_name(p->method));
    post->method = p->method;
    post->N = b->N;
    post->noise_var = b->noise_var;
    if (p->method == EFFDIM_POSTERIOR_BADAM_B) {
        memcpy(post->mean, c->theta, b->P * sizeof(double));
        post->prior_mode = p->prior;
        st = effdim_posterior_finalize(post, err);
        goto done;
    }
    st = choose_prior(b, post, err);
    if (st == EFFDIM_EMAXITER) soft = st, st = EFFDIM_OK;
    if (st) goto done;
    double a = post->prior_precision;
    double nll = b->nll;
    if (p->method == EFFDIM_POSTERIOR_BADAM_A) {
        badam_a_ctx ac = {.theta = c->theta, .v = b->v, .P = b->P, .N = b->N};
        effdim_badam_posterior(b->v, b->P, b->N, a, p->badam_eps, p->badam_eps_mode, 0, NULL,
                               post->mean);
        for (size_t j = 0; j < b->P; ++j) post->mean[j] *= c->theta[j];
        nll += badam_a_quad(&ac, b->curv, a);
    } else {
        memcpy(post->mean, c->theta, b->P * sizeof(double));
    }
    double t2 = 0.0;
    for (size_t j = 0; j < b->P; ++j) t2 += post->mean[j] * post->mean[j];
    st = effdim_laplace_evidence(b->P, b->curv, b->k, b->U, b->s, a, isfinite(nll) ? nll : 0.0,
                                 t2, &post->gamma, &post->log_evidence, NULL, err);
    if (st) goto done;
    if (!isfinite(nll)) post->log_evidence = NAN;
    for (size_t j = 0; j < b->P; ++j) post->prec_diag[j] += a;
    st = effdim_posterior_finalize(post, err);
done:
    effdim_mlp_ws_free(ws);
    if (st) {
        effdim_posterior_free(post);
        return st;
    }
    post->checkpoint = b->path ? effdim_strdup(b->path, NULL) : NULL;
    post->data_spec = b->ds && b->ds->spec ? effdim_strdup(b->ds->spec, NULL) : NULL;
    *out = post;
    if (soft) return err && err->code == soft ? soft
                                              : effdim_error_set(err, soft, "%s", "partial result");
    return EFFDIM_OK;
}

/* IVON's own posterior N(theta, 1/(ess (h + delta))) from its checkpoint
 * (SEEDS.md 2.1): no data, no prior choice (delta is IVON's prior precision
 * per datum, so alpha = ess delta on the summed scale). */
static effdim_status build_ivon(const effdim_checkpoint *c, const char *path,
                                effdim_posterior **out, effdim_error *err)
{
    const double *h = c->optimizer ? effdim_checkpoint_state(c, "hess") : NULL;
    RETURN_ERROR_IF(!h || strcmp(c->optimizer->name, "ivon") != 0, err, EFFDIM_ENOTFOUND,
                    "%s: /optimizer/hess: not found (the ivon posterior reads IVON's Hessian "
                    "estimate; train with --opt ivon; this checkpoint has %s%s)",
                    nm(path), c->optimizer ? "optimizer " : "no optimizer section",
                    c->optimizer ? c->optimizer->name : "");
    double ess = NAN, wd = NAN;
    RETURN_ERROR_IF(!effdim_checkpoint_hparam(c, "ess", &ess) || !(ess > 0.0) || !isfinite(ess),
                    err, EFFDIM_EFORMAT,
                    "%s: /optimizer: attribute 'ess' = %g, expected a finite number > 0", nm(path),
                    ess);
    RETURN_ERROR_IF(!effdim_checkpoint_hparam(c, "weight_decay", &wd) || !(wd >= 0.0) ||
                        !isfinite(wd),
                    err, EFFDIM_EFORMAT,
                    "%s: /optimizer: attribute 'weight_decay' = %g, expected a finite number >= 0",
                    nm(path), wd);
    const size_t P = c->mlp.n_params;
    for (size_t j = 0; j < P; ++j)
        RETURN_ERROR_IF(!(h[j] + wd > 0.0) || !isfinite(ess * (h[j] + wd)), err, EFFDIM_EFORMAT,
                        "%s: /optimizer/hess[%zu] = %g: h + weight_decay = %g, expected > 0 "
                        "(IVON keeps it positive)",
                        nm(path), j, h[j], h[j] + wd);
    effdim_posterior *post = NULL;
    effdim_status st = effdim_posterior_alloc(&c->mlp, 0, &post, err);
    if (st) return st;
    double gamma = 0.0;
    for (size_t j = 0; j < P; ++j) {
        post->prec_diag[j] = ess * (h[j] + wd);
        gamma += h[j] / (h[j] + wd);
    }
    memcpy(post->mean, c->theta, P * sizeof(double));
    post->method = EFFDIM_POSTERIOR_IVON;
    post->N = ess;
    post->prior_precision = ess * wd;
    post->prior_mode = EFFDIM_PRIOR_FIXED;
    post->noise_var = NAN;
    post->gamma = gamma; /* P - alpha tr(Sigma) */
    post->log_evidence = NAN;
    st = effdim_posterior_finalize(post, err);
    if (!st && path && !(post->checkpoint = effdim_strdup(path, err))) st = EFFDIM_ENOMEM;
    if (st) {
        effdim_posterior_free(post);
        return st;
    }
    *out = post;
    return EFFDIM_OK;
}

effdim_status effdim_posterior_build(const effdim_checkpoint *c, const char *path,
                                     const effdim_dataset *ds,
                                     const effdim_posterior_params *params,
                                     effdim_posterior **out, effdim_error *err)
{
    RETURN_ERROR_IF(!c || !out, err, EFFDIM_EINVAL, "posterior: NULL argument");
    *out = NULL;
    effdim_posterior_params dp = effdim_posterior_default_params();
    const effdim_posterior_params *p = params ? params : &dp;
    RETURN_ERROR_IF((unsigned)p->method >= EFFDIM_POSTERIOR_N_METHODS, err, EFFDIM_EINVAL,
                    "posterior: unknown method %d", (int)p->method);
    if (p->method == EFFDIM_POSTERIOR_IVON) return build_ivon(c, path, out, err);
    int badam = p->method == EFFDIM_POSTERIOR_BADAM_A || p->method == EFFDIM_POSTERIOR_BADAM_B;
    RETURN_ERROR_IF(!ds && !(badam && p->N > 0.0), err, EFFDIM_EINVAL,
                    "posterior %s: needs the training data (or, for BADAM, N)",
                    effdim_post_method_name(p->method));
    RETURN_ERROR_IF(p->prior == EFFDIM_PRIOR_GRID && !ds, err, EFFDIM_EINVAL,
                    "posterior: the grid prior needs the training data (the likelihood)");
    RETURN_ERROR_IF(p->method == EFFDIM_POSTERIOR_LOWRANK &&
                        (p->k == 0 || p->k > c->mlp.n_params),
                    err, EFFDIM_EINVAL, "posterior lowrank: k = %zu, expected 1 to P = %zu", p->k,
                    c->mlp.n_params);
    RETURN_ERROR_IF(!(p->N >= 0.0) || !isfinite(p->N), err, EFFDIM_EDOM,
                    "posterior: N = %g, expected >= 0", p->N);
    build_ctx b = {.c = c, .path = path, .ds = ds, .p = p, .P = c->mlp.n_params,
                   .nll = NAN, .noise_var = NAN, .lik = 1.0, .scale = 1.0};
    b.N = p->N > 0.0 ? p->N : (double)ds->n;
    effdim_status st = build_run(&b, out, err);
    free(b.vbuf);
    return st;
}
