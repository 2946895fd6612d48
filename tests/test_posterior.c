/* tests/test_posterior.c: posteriors from curvature (lib/posterior*.c,
 * lib/mlp_jac.c, lib/prune.c).
 *
 * Oracles:
 * - BADAM's variance, shrinkage coefficient and mean on values worked out by
 *   hand from SEEDS.md 1.2 (both eps placements, both variants);
 * - MacKay's fixed point against its closed form for an isotropic design
 *   (curvature lambda I, MAP b / (lambda + alpha): alpha* = P lambda^2 /
 *   (||b||^2 - P lambda)), and on a general Bayesian linear regression as the
 *   stationary point of the EXACT log evidence log N(y; 0, sigma^2 I +
 *   Phi Phi^T / alpha) (dense Cholesky);
 * - the Laplace log marginal likelihood of a linear-Gaussian model, built by
 *   effdim_posterior_build from a checkpoint at the MAP (lowrank with k = P,
 *   so exact), against that exact log evidence to 1e-10, for both reductions;
 * - the posterior variances and log-determinant against the dense inverse and
 *   Cholesky of the precision; samples reproducing the variances within
 *   their standard errors;
 * - the linearised predictive against the Monte-Carlo one on a linear model
 *   (where the GLM is exact), within Monte-Carlo error;
 * - ECE and Brier on hand-made predictions;
 * - the Jacobian against central differences of the outputs;
 * - the file round trip, and refusals with their messages.
 */
#include <lapacke.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/dense.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/operator.h"
#include "effdim/posterior.h"
#include "effdim/prune.h"

/* ---- BADAM ---- */

static void badam_matches_hand_computed_values(void)
{
    const double v[3] = {4e-4, 0.0, 2.25e-2}; /* sqrt: 0.02, 0, 0.15 */
    double var[3], coef[3];
    /* variant A, N = 100, prec = 2, eps = 1e-8 at the precision */
    effdim_badam_posterior(v, 3, 100.0, 2.0, 1e-8, EFFDIM_BADAM_EPS_PRECISION, 0, var, coef);
    CHECK_CLOSE(var[0], 1.0 / (2.0 + 2.0 + 1e-8), 1e-15);
    CHECK_CLOSE(var[1], 1.0 / (2.0 + 1e-8), 1e-15);
    CHECK_CLOSE(var[2], 1.0 / (15.0 + 2.0 + 1e-8), 1e-15);
    CHECK_CLOSE(coef[0], 0.5, 1e-15);
    CHECK(coef[1] == 0.0);
    CHECK_CLOSE(coef[2], 15.0 / 17.0, 1e-15);
    /* variant B: no prior, var = 1 / (N sqrt(v) + eps); a weight without
     * gradient gets 1 / eps (SEEDS.md 1.6) */
    effdim_badam_posterior(v, 3, 100.0, 2.0, 1e-8, EFFDIM_BADAM_EPS_PRECISION, 1, var, coef);
    CHECK_CLOSE(var[0], 1.0 / (2.0 + 1e-8), 1e-15);
    CHECK_CLOSE(var[1], 1e8, 1e-15);
    CHECK_CLOSE(var[2], 1.0 / (15.0 + 1e-8), 1e-15);
    CHECK(coef[0] == 1.0 && coef[2] == 1.0);
    /* eps beside sqrt(v), as in Adam's step: N (sqrt(v) + eps) */
    effdim_badam_posterior(v, 3, 100.0, 2.0, 1e-3, EFFDIM_BADAM_EPS_SQRTV, 1, var, NULL);
    CHECK_CLOSE(var[0], 1.0 / (100.0 * 0.021), 1e-14);
    CHECK_CLOSE(var[1], 1.0 / 0.1, 1e-14);
}

/* A 2-3-1 tanh network with Adam state, for the BADAM build. */
static effdim_checkpoint *badam_checkpoint(void)
{
    size_t sizes[3] = {2, 3, 1};
    effdim_activation acts[2] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_error err;
    effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &err);
    effdim_checkpoint *c = NULL;
    effdim_checkpoint_alloc(&m, NULL, &c, &err);
    double v[13];
    for (size_t j = 0; j < m.n_params; ++j) {
        c->theta[j] = 0.37 * (double)j - 1.1;
        v[j] = j == 4 ? 0.0 : 1e-4 * (double)(j + 1) * (double)(j + 1);
    }
    effdim_checkpoint_set_optimizer(c, "adam", 5000, &err);
    effdim_checkpoint_set_hparam(c, "beta2", 0.999, &err);
    effdim_checkpoint_set_state(c, "exp_avg_sq", v, m.n_params, &err);
    return c;
}

static void badam_posterior_from_a_checkpoint_has_the_shrunk_mean_and_variance(void)
{
    effdim_error err;
    effdim_checkpoint *c = badam_checkpoint();
    size_t P = c->mlp.n_params;
    const double *v = effdim_checkpoint_state(c, "exp_avg_sq");
    effdim_posterior_params pp = effdim_posterior_default_params();
    pp.method = EFFDIM_POSTERIOR_BADAM_A;
    pp.prior = EFFDIM_PRIOR_FIXED;
    pp.prior_precision = 4.0;
    pp.N = 200.0;
    effdim_posterior *post = NULL;
    if (!CHECK_OK(effdim_posterior_build(c, "ckpt.h5", NULL, &pp, &post, &err), &err)) return;
    for (size_t j = 0; j < P; ++j) {
        double r = sqrt(v[j]);
        double want_var = 1.0 / (200.0 * r + 4.0 + 1e-8);
        double coef = r > 0 ? r / (r + 4.0 / 200.0) : 0.0;
        CHECK_CLOSE(post->var[j], want_var, 1e-14);
        CHECK_CLOSE(post->mean[j], coef * c->theta[j], 1e-14);
    }
    CHECK(post->mean[4] == 0.0); /* v = 0: coef = 0, the weight is shrunk away */
    effdim_posterior_free(post);
    /* variant B with bias correction: v / (1 - 0.999^5000) */
    pp.method = EFFDIM_POSTERIOR_BADAM_B;
    pp.badam_bias_correction = 1;
    if (!CHECK_OK(effdim_posterior_build(c, "ckpt.h5", NULL, &pp, &post, &err), &err)) return;
    double bc = 1.0 - pow(0.999, 5000.0);
    CHECK_CLOSE(post->var[7], 1.0 / (200.0 * sqrt(v[7] / bc) + 1e-8), 1e-14);
    CHECK(post->mean[7] == c->theta[7]);
    CHECK(isnan(post->prior_precision));
    effdim_posterior_free(post);
    /* no Adam state: refused, naming the file and the field */
    effdim_checkpoint *plain = NULL;
    effdim_checkpoint_alloc(&c->mlp, c->theta, &plain, &err);
    CHECK_STATUS(effdim_posterior_build(plain, "plain.h5", NULL, &pp, &post, &err),
                 EFFDIM_ENOTFOUND, &err);
    CHECK_MSG(&err, "plain.h5", "exp_avg_sq");
    effdim_checkpoint_free(plain);
    /* BADAM reads v of the minibatch-mean loss: a sum-reduction model is refused */
    c->mlp.reduction = EFFDIM_REDUCTION_SUM;
    CHECK_STATUS(effdim_posterior_build(c, "sum.h5", NULL, &pp, &post, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "sum.h5", "reduction 'sum'");
    effdim_checkpoint_free(c);
}

/* IVON's posterior from a hand-made IVON checkpoint: precision ess (h + delta)
 * exactly, the mean theta, IVON's prior ess delta, gamma = sum h / (h + delta);
 * refused for an Adam checkpoint, a missing ess and an h + delta <= 0. */
static void ivon_posterior_has_precision_ess_times_h_plus_delta(void)
{
    effdim_error err;
    effdim_checkpoint *c = badam_checkpoint(); /* the network and theta; Adam state */
    const size_t P = c->mlp.n_params;
    effdim_posterior_params pp = effdim_posterior_default_params();
    pp.method = EFFDIM_POSTERIOR_IVON;
    effdim_posterior *post = NULL;
    /* an Adam checkpoint has no IVON state */
    CHECK_STATUS(effdim_posterior_build(c, "adam.h5", NULL, &pp, &post, &err), EFFDIM_ENOTFOUND,
                 &err);
    CHECK_MSG(&err, "adam.h5", "/optimizer/hess", "adam");
    effdim_checkpoint *iv = NULL;
    effdim_checkpoint_alloc(&c->mlp, c->theta, &iv, &err);
    double h[13], mom[13];
    for (size_t j = 0; j < P; ++j) {
        h[j] = 0.05 * (double)(j + 1) * (double)(j + 1);
        mom[j] = 0.01 * (double)j;
    }
    h[3] = -0.004; /* below 0 but above -delta: IVON allows it */
    effdim_checkpoint_set_optimizer(iv, "ivon", 120, &err);
    effdim_checkpoint_set_hparam(iv, "ess", 500.0, &err);
    effdim_checkpoint_set_state(iv, "hess", h, P, &err);
    effdim_checkpoint_set_state(iv, "momentum", mom, P, &err);
    CHECK_STATUS(effdim_posterior_build(iv, "iv.h5", NULL, &pp, &post, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "iv.h5", "weight_decay");
    effdim_checkpoint_set_hparam(iv, "weight_decay", 0.01, &err);
    if (CHECK_OK(effdim_posterior_build(iv, "iv.h5", NULL, &pp, &post, &err), &err)) {
        double gamma = 0.0;
        for (size_t j = 0; j < P; ++j) {
            CHECK_CLOSE(post->prec_diag[j], 500.0 * (h[j] + 0.01), 1e-15);
            CHECK_CLOSE(post->var[j], 1.0 / (500.0 * (h[j] + 0.01)), 1e-15);
            CHECK(post->mean[j] == c->theta[j]);
            gamma += h[j] / (h[j] + 0.01);
        }
        CHECK(post->method == EFFDIM_POSTERIOR_IVON && post->k == 0 && post->N == 500.0);
        CHECK_CLOSE(post->prior_precision, 5.0, 1e-15);
        CHECK_CLOSE(post->gamma, gamma, 1e-14);
        /* the file keeps the method and the precision */
        const char *path = check_tmpfile("ivon_post.h5");
        effdim_posterior *back = NULL;
        if (CHECK_OK(effdim_posterior_save(post, path, &err), &err) &&
            CHECK_OK(effdim_posterior_load(path, &back, &err), &err)) {
            CHECK(back->method == EFFDIM_POSTERIOR_IVON &&
                  !strcmp(effdim_post_method_name(back->method), "ivon"));
            CHECK(!memcmp(back->prec_diag, post->prec_diag, P * sizeof(double)));
        }
        effdim_posterior_free(back);
        effdim_posterior_free(post);
        post = NULL;
    }
    h[5] = -0.02; /* h + delta < 0 */
    effdim_checkpoint_set_state(iv, "hess", h, P, &err);
    CHECK_STATUS(effdim_posterior_build(iv, "iv.h5", NULL, &pp, &post, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "iv.h5", "hess[5]", "expected > 0");
    effdim_posterior_method m;
    CHECK_OK(effdim_post_method_parse("ivon", &m, &err), &err);
    CHECK(m == EFFDIM_POSTERIOR_IVON);
    effdim_checkpoint_free(iv);
    effdim_checkpoint_free(c);
}

/* ---- Bayesian linear regression ---- */

typedef struct blr {
    size_t n, d, P;       /* P = d + 1 (weights, then the bias) */
    double *Phi;          /* (n, P) [x, 1] */
    double *y;            /* (n) */
    double sigma2;
} blr;

static blr blr_make(size_t n, size_t d, double sigma2, unsigned seed)
{
    blr b = {.n = n, .d = d, .P = d + 1, .sigma2 = sigma2};
    b.Phi = malloc(n * b.P * sizeof(double));
    b.y = malloc(n * sizeof(double));
    unsigned s = seed;
    for (size_t i = 0; i < n; ++i) {
        double t = 0.0;
        for (size_t j = 0; j < d; ++j) {
            s = s * 1103515245u + 12345u;
            double x = ((double)(s >> 8) / 16777216.0 - 0.5) * 3.1;
            b.Phi[i * b.P + j] = x;
            t += (0.8 - 0.3 * (double)j) * x;
        }
        b.Phi[i * b.P + d] = 1.0;
        s = s * 1103515245u + 12345u;
        b.y[i] = t + 0.45 + sqrt(sigma2) * ((double)(s >> 8) / 16777216.0 - 0.5) * 3.46;
    }
    return b;
}

static void blr_free(blr *b)
{
    free(b->Phi);
    free(b->y);
}

/* H = Phi^T Phi / sigma2 (P, P) */
static void blr_hessian(const blr *b, double *H)
{
    for (size_t p = 0; p < b->P; ++p)
        for (size_t q = 0; q < b->P; ++q) {
            double s = 0.0;
            for (size_t i = 0; i < b->n; ++i) s += b->Phi[i * b->P + p] * b->Phi[i * b->P + q];
            H[p * b->P + q] = s / b->sigma2;
        }
}

/* MAP m(alpha) into m (P) */
static void blr_map(const blr *b, double alpha, double *m)
{
    size_t P = b->P;
    double *A = malloc(P * P * sizeof(double));
    blr_hessian(b, A);
    for (size_t p = 0; p < P; ++p) {
        A[p * P + p] += alpha;
        double s = 0.0;
        for (size_t i = 0; i < b->n; ++i) s += b->Phi[i * P + p] * b->y[i];
        m[p] = s / b->sigma2;
    }
    LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (int)P, 1, A, (int)P, m, 1);
    free(A);
}

/* exact log N(y; 0, sigma2 I + Phi Phi^T / alpha) */
static double blr_log_evidence(const blr *b, double alpha)
{
    size_t n = b->n, P = b->P;
    double *C = malloc(n * n * sizeof(double)), *z = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) {
            double s = 0.0;
            for (size_t p = 0; p < P; ++p) s += b->Phi[i * P + p] * b->Phi[j * P + p];
            C[i * n + j] = s / alpha + (i == j ? b->sigma2 : 0.0);
        }
    memcpy(z, b->y, n * sizeof(double));
    LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (int)n, C, (int)n);
    double ld = 0.0;
    for (size_t i = 0; i < n; ++i) ld += 2.0 * log(C[i * n + i]);
    LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'N', 'N', (int)n, 1, C, (int)n, z, 1);
    double q = 0.0;
    for (size_t i = 0; i < n; ++i) q += z[i] * z[i];
    free(C);
    free(z);
    return -0.5 * q - 0.5 * ld - 0.5 * (double)n * log(2.0 * M_PI);
}

typedef struct iso_ctx {
    double b2, lambda;
} iso_ctx;

static double iso_norm2(void *ctx, double alpha)
{
    const iso_ctx *c = ctx;
    return c->b2 / ((c->lambda + alpha) * (c->lambda + alpha));
}

static void evidence_fixed_point_matches_the_isotropic_closed_form(void)
{
    size_t P = 37;
    double lambda = 2.385, b2 = 311.7;
    double *curv = malloc(P * sizeof(double));
    for (size_t p = 0; p < P; ++p) curv[p] = lambda;
    iso_ctx c = {b2, lambda};
    double a, g;
    size_t it;
    effdim_error err;
    CHECK_OK(effdim_evidence_fixed_point(P, curv, 0, NULL, NULL, 0.0, iso_norm2, &c, 1.0, 1e-13,
                                         10000, &a, &g, &it, &err),
             &err);
    double want = (double)P * lambda * lambda / (b2 - (double)P * lambda);
    CHECK_CLOSE(a, want, 1e-11);
    CHECK_CLOSE(g, (double)P * lambda / (lambda + want), 1e-11);
    check_note("alpha %.12g (closed form %.12g) after %zu iterations", a, want, it);
    /* with theta fixed the fixed point solves alpha = P lambda / (lambda + alpha) / t2 */
    double t2 = 3.3;
    CHECK_OK(effdim_evidence_fixed_point(P, curv, 0, NULL, NULL, t2, NULL, NULL, 1.0, 1e-13, 10000,
                                         &a, &g, &it, &err),
             &err);
    double fixed = (-t2 * lambda + sqrt(t2 * t2 * lambda * lambda + 4.0 * t2 * (double)P * lambda)) /
                   (2.0 * t2);
    CHECK_CLOSE(a, fixed, 1e-11);
    /* a zero mean has no fixed point */
    CHECK_STATUS(effdim_evidence_fixed_point(P, curv, 0, NULL, NULL, 0.0, NULL, NULL, 1.0, 1e-10,
                                             100, &a, &g, &it, &err),
                 EFFDIM_EDOM, &err);
    CHECK_MSG(&err, "||theta||^2");
    free(curv);
}

typedef struct blr_ctx {
    const blr *b;
    double *m;
} blr_ctx;

static double blr_norm2(void *ctx, double alpha)
{
    blr_ctx *c = ctx;
    blr_map(c->b, alpha, c->m);
    double s = 0.0;
    for (size_t p = 0; p < c->b->P; ++p) s += c->m[p] * c->m[p];
    return s;
}

static void evidence_fixed_point_is_the_maximum_of_the_exact_blr_evidence(void)
{
    blr b = blr_make(40, 4, 0.3, 7);
    size_t P = b.P;
    double *H = malloc(P * P * sizeof(double)), *lam = malloc(P * sizeof(double));
    double *U = malloc(P * P * sizeof(double)), *m = malloc(P * sizeof(double));
    blr_hessian(&b, H);
    memcpy(U, H, P * P * sizeof(double));
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (int)P, U, (int)P, lam);
    /* eigenvectors are the columns; U rows = their transpose */
    double *Ut = malloc(P * P * sizeof(double));
    for (size_t i = 0; i < P; ++i)
        for (size_t j = 0; j < P; ++j) Ut[i * P + j] = U[j * P + i];
    blr_ctx c = {&b, m};
    double a, g;
    size_t it;
    effdim_error err;
    CHECK_OK(effdim_evidence_fixed_point(P, NULL, P, Ut, lam, 0.0, blr_norm2, &c, 1.0, 1e-13, 10000,
                                         &a, &g, &it, &err),
             &err);
    double h = 1e-4;
    double dl = (blr_log_evidence(&b, a * exp(h)) - blr_log_evidence(&b, a * exp(-h))) / (2 * h);
    CHECK_NEAR(dl, 0.0, 1e-6);
    CHECK(blr_log_evidence(&b, a) > blr_log_evidence(&b, a * 1.5));
    CHECK(blr_log_evidence(&b, a) > blr_log_evidence(&b, a / 1.5));
    /* gamma IS N_eff(H, alpha) */
    double neff;
    effdim_neff(lam, P, &a, 1, EFFDIM_NEG_ZERO, &neff, &err);
    CHECK_CLOSE(g, neff, 1e-12);
    check_note("alpha %.10g, gamma %.10g = N_eff %.10g, d log Z / d log alpha %.2e, %zu iterations",
               a, g, neff, dl, it);
    free(H);
    free(lam);
    free(U);
    free(Ut);
    free(m);
    blr_free(&b);
}

/* The linear model as an effdim network: 1 layer, identity, mse. */
static effdim_checkpoint *blr_checkpoint(const blr *b, effdim_reduction red, const double *theta,
                                         effdim_dataset **ds)
{
    size_t sizes[2] = {b->d, 1};
    effdim_activation act[1] = {EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_error err;
    effdim_mlp_init(&m, 1, sizes, act, EFFDIM_LOSS_MSE, red, &err);
    effdim_checkpoint *c = NULL;
    effdim_checkpoint_alloc(&m, theta, &c, &err);
    effdim_dataset_alloc(b->n, b->d, 1, EFFDIM_TARGET_REAL, ds, &err);
    for (size_t i = 0; i < b->n; ++i) {
        for (size_t j = 0; j < b->d; ++j) (*ds)->X[i * b->d + j] = b->Phi[i * b->P + j];
        (*ds)->Y[i] = b->y[i];
    }
    return c;
}

static void laplace_evidence_of_a_linear_gaussian_model_is_exact(void)
{
    blr b = blr_make(30, 3, 0.25, 11);
    double alpha = 0.731;
    double *m = malloc(b.P * sizeof(double));
    blr_map(&b, alpha, m);
    double exact = blr_log_evidence(&b, alpha);
    for (int r = 0; r < 3; ++r) { /* mean, sum, and mean with the rest = the GGN diagonal
                                     (left over by k = P pairs: zero up to rounding) */
        effdim_dataset *ds = NULL;
        effdim_checkpoint *c =
            blr_checkpoint(&b, r == 1 ? EFFDIM_REDUCTION_SUM : EFFDIM_REDUCTION_MEAN, m, &ds);
        effdim_posterior_params pp = effdim_posterior_default_params();
        pp.method = EFFDIM_POSTERIOR_LOWRANK;
        pp.k = b.P;
        pp.lanczos_tol = 1e-12;
        pp.prior = EFFDIM_PRIOR_FIXED;
        pp.prior_precision = alpha;
        pp.noise_var = b.sigma2;
        pp.rest = r == 2 ? EFFDIM_LOWRANK_REST_DIAG : EFFDIM_LOWRANK_REST_PRIOR;
        effdim_posterior *post = NULL;
        effdim_error err;
        if (CHECK_OK(effdim_posterior_build(c, NULL, ds, &pp, &post, &err), &err)) {
            CHECK_CLOSE(post->log_evidence, exact, 1e-10);
            check_note("%s: Laplace %.15g, exact %.15g", r == 1 ? "sum" : r ? "mean, rest diag" : "mean",
                       post->log_evidence, exact);
        }
        effdim_posterior_free(post);
        effdim_checkpoint_free(c);
        effdim_dataset_free(ds);
    }
    free(m);
    blr_free(&b);
}

/* ---- the Gaussian algebra ---- */

/* A posterior on a 1-layer net of P = 8 with a rank-3 part. */
static effdim_posterior *lowrank_posterior(void)
{
    size_t sizes[2] = {7, 1};
    effdim_activation act[1] = {EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_error err;
    effdim_mlp_init(&m, 1, sizes, act, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_SUM, &err);
    effdim_posterior *p = NULL;
    effdim_posterior_alloc(&m, 3, &p, &err);
    size_t P = p->P;
    double Q[64];
    effdim_dense_random_orthogonal(P, 5, Q, &err);
    for (size_t i = 0; i < 3; ++i)
        for (size_t j = 0; j < P; ++j) p->U[i * P + j] = Q[j * P + i];
    p->s[0] = 40.2;
    p->s[1] = 3.3;
    p->s[2] = 0.0; /* a direction without curvature */
    for (size_t j = 0; j < P; ++j) {
        p->prec_diag[j] = 0.5 + 0.37 * (double)j;
        p->mean[j] = 0.1 * (double)j - 0.2;
    }
    p->noise_var = 0.04;
    effdim_posterior_finalize(p, &err);
    return p;
}

static void dense_precision(const effdim_posterior *p, double *L)
{
    size_t P = p->P;
    for (size_t a = 0; a < P; ++a)
        for (size_t b = 0; b < P; ++b) {
            double s = a == b ? p->prec_diag[a] : 0.0;
            for (size_t i = 0; i < p->k; ++i) s += p->s[i] * p->U[i * P + a] * p->U[i * P + b];
            L[a * P + b] = s;
        }
}

static void variances_and_log_det_match_the_dense_inverse(void)
{
    effdim_posterior *p = lowrank_posterior();
    size_t P = p->P;
    double L[64];
    dense_precision(p, L);
    LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (int)P, L, (int)P);
    double ld = 0.0;
    for (size_t j = 0; j < P; ++j) ld += 2.0 * log(L[j * P + j]);
    CHECK_CLOSE(p->log_det, ld, 1e-13);
    LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (int)P, L, (int)P);
    for (size_t j = 0; j < P; ++j) CHECK_CLOSE(p->var[j], L[j * P + j], 1e-12);
    effdim_posterior_free(p);
}

static void samples_reproduce_the_posterior_variances(void)
{
    effdim_posterior *p = lowrank_posterior();
    size_t P = p->P, S = 20000;
    effdim_error err;
    effdim_posterior_sampler *s = effdim_posterior_sampler_alloc(p, 3, 1.0, 0, &err);
    double th[8], sum[8] = {0}, sq[8] = {0};
    for (size_t i = 0; i < S; ++i) {
        effdim_posterior_sample(s, th);
        for (size_t j = 0; j < P; ++j) {
            double d = th[j] - p->mean[j];
            sum[j] += d;
            sq[j] += d * d;
        }
    }
    double worst = 0.0;
    for (size_t j = 0; j < P; ++j) {
        double v = sq[j] / (double)S, se = p->var[j] * sqrt(2.0 / (double)(S - 1));
        double z = fabs(v - p->var[j]) / se;
        if (z > worst) worst = z;
        CHECK(z < 4.5);
        CHECK(fabs(sum[j] / (double)S) < 4.5 * sqrt(p->var[j] / (double)S));
    }
    check_note("worst |sample var - var| = %.2f standard errors over %zu samples", worst, S);
    /* the tempering divisor N_s scales every variance by 1/N_s; the output
     * layer stays fixed on request (here: the whole net is one layer) */
    effdim_posterior_sampler_free(s);
    s = effdim_posterior_sampler_alloc(p, 3, 1.0, 1, &err);
    effdim_posterior_sample(s, th);
    CHECK_VEC_CLOSE(th, p->mean, P, 0.0);
    effdim_posterior_sampler_free(s);
    CHECK(effdim_posterior_sampler_alloc(p, 3, 0.0, 0, &err) == NULL);
    CHECK_MSG(&err, "tempering");
    effdim_posterior_free(p);
}

static void linearised_and_sampled_predictives_agree_on_a_linear_model(void)
{
    effdim_posterior *p = lowrank_posterior();
    effdim_dataset *ds = NULL;
    effdim_error err;
    effdim_dataset_alloc(5, 7, 1, EFFDIM_TARGET_REAL, &ds, &err);
    for (size_t i = 0; i < 5 * 7; ++i) ds->X[i] = sin(1.7 * (double)i);
    for (size_t i = 0; i < 5; ++i) ds->Y[i] = 0.3 * (double)i;
    effdim_predict_params pp = effdim_predict_default_params();
    pp.linearised = 1;
    effdim_prediction *lin = NULL, *mc = NULL;
    CHECK_OK(effdim_predict(p, ds, &pp, &lin, &err), &err);
    pp.linearised = 0;
    pp.samples = 20000;
    CHECK_OK(effdim_predict(p, ds, &pp, &mc, &err), &err);
    if (lin && mc) {
        for (size_t i = 0; i < 5; ++i) {
            double fv = lin->var[i] - p->noise_var; /* the function-space part */
            CHECK(fabs(mc->mean[i] - lin->mean[i]) < 4.5 * sqrt(fv / 20000.0));
            CHECK(fabs((mc->var[i] - p->noise_var) - fv) < 4.5 * fv * sqrt(2.0 / 19999.0));
        }
        /* the linearised variance is x^T Sigma x exactly: check row 0 densely */
        double L[64], x[8];
        dense_precision(p, L);
        LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', 8, L, 8);
        LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', 8, L, 8);
        for (size_t a = 0; a < 8; ++a)
            for (size_t b = 0; b < a; ++b) L[a * 8 + b] = L[b * 8 + a];
        for (size_t j = 0; j < 7; ++j) x[j] = ds->X[j];
        x[7] = 1.0;
        double q = 0.0;
        for (size_t a = 0; a < 8; ++a)
            for (size_t b = 0; b < 8; ++b) q += x[a] * L[a * 8 + b] * x[b];
        CHECK_CLOSE(lin->var[0], q + p->noise_var, 1e-12);
        CHECK(isfinite(lin->rmse) && isfinite(lin->nll) && isnan(lin->ece));
        /* the point predictive: the mean's output and the noise alone */
        effdim_prediction *pt = NULL;
        pp.point = 1;
        if (CHECK_OK(effdim_predict(p, ds, &pp, &pt, &err), &err)) {
            double f = p->mean[7];
            for (size_t j = 0; j < 7; ++j) f += p->mean[j] * x[j];
            CHECK_CLOSE(pt->mean[0], f, 1e-14);
            CHECK_CLOSE(pt->mean[0], lin->mean[0], 1e-14);
            CHECK(pt->var[0] == p->noise_var);
        }
        effdim_prediction_free(pt);
    }
    effdim_prediction_free(lin);
    effdim_prediction_free(mc);
    effdim_dataset_free(ds);
    effdim_posterior_free(p);
}

/* Targets standardised by (m, s): the point predictive f (standardised units)
 * with noise v is N(m + s f, s^2 v) in the original ones; RMSE and NLL are
 * recomputed here from the hand-computed outputs and the raw targets, the
 * NLL is the standardised one plus log s, and the predictions file carries
 * (m, s) and values from which the same metrics follow. */
static void standardised_targets_are_reported_in_original_units(void)
{
    effdim_posterior *p = lowrank_posterior();
    effdim_dataset *raw = NULL, *std = NULL;
    effdim_error err;
    effdim_dataset_alloc(5, 7, 1, EFFDIM_TARGET_REAL, &raw, &err);
    for (size_t i = 0; i < 5 * 7; ++i) raw->X[i] = sin(1.7 * (double)i);
    for (size_t i = 0; i < 5; ++i) raw->Y[i] = 20.0 + 3.0 * cos((double)i);
    effdim_dataset_copy(raw, &std, &err);
    const double m = 21.5, s = 4.0;
    if (!CHECK_OK(effdim_dataset_standardize_targets(std, &m, &s, &err), &err)) goto done;
    effdim_dataset *plain = NULL; /* standardised values, no statistics */
    effdim_dataset_copy(raw, &plain, &err);
    for (size_t i = 0; i < 5; ++i) plain->Y[i] = std->Y[i];
    effdim_predict_params pp = effdim_predict_default_params();
    pp.point = 1;
    effdim_prediction *r = NULL, *rs = NULL, *q = NULL;
    if (CHECK_OK(effdim_predict(p, std, &pp, &r, &err), &err) &&
        CHECK_OK(effdim_predict(p, plain, &pp, &rs, &err), &err)) {
        double v = p->noise_var, se = 0.0, l = 0.0;
        for (size_t i = 0; i < 5; ++i) {
            double f = p->mean[7];
            for (size_t j = 0; j < 7; ++j) f += p->mean[j] * raw->X[i * 7 + j];
            CHECK_CLOSE(r->mean[i], m + s * f, 1e-14);
            CHECK_CLOSE(r->var[i], s * s * v, 1e-14);
            double e = raw->Y[i] - (m + s * f);
            se += e * e;
            l += 0.5 * log(2.0 * M_PI * s * s * v) + e * e / (2.0 * s * s * v);
        }
        CHECK_CLOSE(r->rmse, sqrt(se / 5.0), 1e-13);
        CHECK_CLOSE(r->nll, l / 5.0, 1e-13);
        CHECK_CLOSE(r->rmse, s * rs->rmse, 1e-13);
        CHECK_CLOSE(r->nll, rs->nll + log(s), 1e-13);
        CHECK(r->target_mean && r->target_mean[0] == m && r->target_sd[0] == s);
        CHECK(rs->target_mean == NULL && rs->target_sd == NULL);
        const char *path = check_tmpfile("pred-std.h5");
        effdim_prediction_info info = {"post.h5", "boston:part=test", &pp};
        CHECK_OK(effdim_prediction_save(r, &info, path, &err), &err);
        if (CHECK_OK(effdim_prediction_load(path, &q, &err), &err)) {
            CHECK(q->target_mean && q->target_mean[0] == m && q->target_sd[0] == s);
            double rmse, nll;
            effdim_metrics_regression(5, 1, q->mean, q->var, raw->Y, &rmse, &nll, &err);
            CHECK_CLOSE(rmse, q->rmse, 1e-15);
            CHECK_CLOSE(nll, q->nll, 1e-15);
        }
    }
    effdim_prediction_free(q);
    effdim_prediction_free(r);
    effdim_prediction_free(rs);
    effdim_dataset_free(plain);
done:
    effdim_dataset_free(raw);
    effdim_dataset_free(std);
    effdim_posterior_free(p);
}

/* ---- metrics ---- */

static void ece_and_brier_match_hand_computed_values(void)
{
    /* 4 rows, 2 classes, 15 bins:
     *   p = (0.9, 0.1) y=0: conf 0.9 bin 13, correct
     *   p = (0.8, 0.2) y=1: conf 0.8 bin 12, wrong
     *   p = (0.3, 0.7) y=1: conf 0.7 bin 10, correct
     *   p = (0.45,0.55) y=0: conf 0.55 bin 8, wrong
     * ECE = (|1-.9| + |0-.8| + |1-.7| + |0-.55|) / 4 = 1.75 / 4 = 0.4375
     * Brier = (2*.01 + 2*.64 + 2*.09 + 2*.3025) / 4 = 2.085 / 4 = 0.52125 */
    const double pr[8] = {0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.45, 0.55};
    const int32_t y[4] = {0, 1, 1, 0};
    double acc, nll, ece, brier;
    effdim_error err;
    CHECK_OK(effdim_metrics_classification(4, 2, pr, y, 15, &acc, &nll, &ece, &brier, &err), &err);
    CHECK_CLOSE(acc, 0.5, 1e-15);
    CHECK_CLOSE(ece, 0.4375, 1e-14);
    CHECK_CLOSE(brier, 0.52125, 1e-14);
    CHECK_CLOSE(nll, -(log(0.9) + log(0.2) + log(0.7) + log(0.45)) / 4.0, 1e-14);
    /* two rows in one bin: |mean acc - mean conf| weighted by the bin's count */
    const double p2[4] = {0.62, 0.38, 0.64, 0.36};
    const int32_t y2[2] = {0, 1};
    CHECK_OK(effdim_metrics_classification(2, 2, p2, y2, 15, NULL, NULL, &ece, NULL, &err), &err);
    CHECK_CLOSE(ece, fabs(0.5 - 0.63), 1e-14);
    const int32_t bad[2] = {0, 2};
    CHECK_STATUS(effdim_metrics_classification(2, 2, p2, bad, 15, NULL, NULL, &ece, NULL, &err),
                 EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "label 2", "row 1");
    double rmse, gnll;
    const double mu[2] = {1.0, 2.0}, var[2] = {0.25, 4.0}, Y[2] = {1.5, 0.0};
    CHECK_OK(effdim_metrics_regression(2, 1, mu, var, Y, &rmse, &gnll, &err), &err);
    CHECK_CLOSE(rmse, sqrt((0.25 + 4.0) / 2.0), 1e-15);
    CHECK_CLOSE(gnll,
                (0.5 * log(2 * M_PI * 0.25) + 0.25 / 0.5 + 0.5 * log(2 * M_PI * 4.0) + 4.0 / 8.0) / 2,
                1e-14);
}

/* ---- Jacobian ---- */

static void jacobian_matches_central_differences(void)
{
    size_t sizes[4] = {3, 5, 4, 2};
    effdim_activation acts[3] = {EFFDIM_ACT_TANH, EFFDIM_ACT_SIGMOID, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_error err;
    effdim_mlp_init(&m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &err);
    size_t P = m.n_params, n = 3, K = 2;
    double *theta = malloc(P * sizeof(double)), *J = malloc(n * K * P * sizeof(double));
    double X[9], fp[6], fm[6];
    effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 4, &err);
    for (size_t i = 0; i < 9; ++i) X[i] = cos(0.9 * (double)i) * 1.3;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc_workers(&m, 2, 1, &err); /* chunk 2 < n rows */
    CHECK_OK(effdim_mlp_jacobian(&m, theta, X, n, J, NULL, ws, &err), &err);
    double worst = 0.0;
    for (size_t p = 0; p < P; ++p) {
        double t = theta[p], h = 1e-5;
        theta[p] = t + h;
        effdim_mlp_predict(&m, theta, X, n, fp, ws, &err);
        theta[p] = t - h;
        effdim_mlp_predict(&m, theta, X, n, fm, ws, &err);
        theta[p] = t;
        for (size_t i = 0; i < n; ++i)
            for (size_t o = 0; o < K; ++o) {
                double fd = (fp[i * K + o] - fm[i * K + o]) / (2 * h);
                double e = fabs(fd - J[(i * K + o) * P + p]);
                if (e > worst) worst = e;
            }
    }
    CHECK(worst < 1e-9);
    check_note("max |J - central difference| = %.2e over %zu entries", worst, n * K * P);
    effdim_mlp_ws_free(ws);
    free(theta);
    free(J);
}

/* ---- the file ---- */

static void posterior_file_round_trips(void)
{
    effdim_posterior *p = lowrank_posterior();
    p->method = EFFDIM_POSTERIOR_LOWRANK;
    p->prior_precision = 0.5;
    p->prior_mode = EFFDIM_PRIOR_EVIDENCE;
    p->evidence_iterations = 17;
    p->evidence_converged = 1;
    p->gamma = 2.75;
    p->N = 120;
    memset(p->checkpoint_sha256, 'a', 64);
    p->checkpoint = strdup("model.h5");
    p->data_spec = strdup("regression:n=120");
    effdim_error err;
    const char *path = check_tmpfile("post.h5");
    CHECK_OK(effdim_posterior_save(p, path, &err), &err);
    effdim_posterior *q = NULL;
    if (CHECK_OK(effdim_posterior_load(path, &q, &err), &err)) {
        CHECK(q->P == p->P && q->k == 3 && q->method == EFFDIM_POSTERIOR_LOWRANK);
        CHECK_VEC_CLOSE(q->mean, p->mean, p->P, 0.0);
        CHECK_VEC_CLOSE(q->var, p->var, p->P, 0.0);
        CHECK_VEC_CLOSE(q->U, p->U, 3 * p->P, 0.0);
        CHECK_VEC_CLOSE(q->s, p->s, 3, 0.0);
        CHECK(q->prior_precision == 0.5 && q->gamma == 2.75 && q->evidence_iterations == 17);
        CHECK(q->prior_mode == EFFDIM_PRIOR_EVIDENCE && q->N == 120 && q->noise_var == 0.04);
        CHECK(!strcmp(q->checkpoint_sha256, p->checkpoint_sha256));
        CHECK(q->data_spec && !strcmp(q->data_spec, "regression:n=120"));
        CHECK(q->mlp.n_layers == 1 && q->mlp.sizes[0] == 7 && q->mlp.loss == EFFDIM_LOSS_MSE);
    }
    effdim_posterior_free(q);
    /* a checkpoint is not a posterior file */
    effdim_checkpoint *c = badam_checkpoint();
    const char *cp = check_tmpfile("ckpt.h5");
    effdim_checkpoint_save(c, cp, &err);
    CHECK_STATUS(effdim_posterior_load(cp, &q, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "ckpt.h5", "effdim.posterior");
    effdim_checkpoint_free(c);
    effdim_posterior_free(p);
}

/* ---- evidence and grid on a network ---- */

static void grid_prior_picks_the_best_laplace_evidence(void)
{
    blr b = blr_make(25, 2, 0.2, 3);
    double *m = malloc(b.P * sizeof(double));
    blr_map(&b, 1.0, m);
    effdim_dataset *ds = NULL;
    effdim_checkpoint *c = blr_checkpoint(&b, EFFDIM_REDUCTION_MEAN, m, &ds);
    effdim_posterior_params pp = effdim_posterior_default_params();
    pp.method = EFFDIM_POSTERIOR_GGN;
    pp.prior = EFFDIM_PRIOR_GRID;
    pp.noise_var = b.sigma2;
    effdim_posterior *post = NULL;
    effdim_error err;
    if (CHECK_OK(effdim_posterior_build(c, NULL, ds, &pp, &post, &err), &err)) {
        CHECK(post->grid_n == 61);
        size_t best = 0;
        for (size_t i = 0; i < post->grid_n; ++i)
            if (post->grid_log_evidence[i] > post->grid_log_evidence[best]) best = i;
        CHECK(post->prior_precision == post->grid_alpha[best]);
        CHECK(best > 0 && best + 1 < post->grid_n);
    }
    effdim_posterior_free(post);
    /* the evidence prior satisfies alpha ||theta||^2 = gamma */
    pp.prior = EFFDIM_PRIOR_EVIDENCE;
    if (CHECK_OK(effdim_posterior_build(c, NULL, ds, &pp, &post, &err), &err)) {
        double t2 = 0.0;
        for (size_t j = 0; j < post->P; ++j) t2 += m[j] * m[j];
        CHECK_CLOSE(post->prior_precision * t2, post->gamma, 1e-9);
        CHECK(post->evidence_converged && post->evidence_iterations > 1);
    }
    effdim_posterior_free(post);
    /* N = 3 n: the data stand for three times as many rows, curvature x 3 */
    effdim_posterior *p3 = NULL;
    pp.prior = EFFDIM_PRIOR_FIXED;
    pp.prior_precision = 0.7;
    CHECK_OK(effdim_posterior_build(c, NULL, ds, &pp, &post, &err), &err);
    pp.N = 3.0 * (double)ds->n;
    CHECK_OK(effdim_posterior_build(c, NULL, ds, &pp, &p3, &err), &err);
    if (post && p3)
        for (size_t j = 0; j < post->P; ++j)
            CHECK_CLOSE(p3->prec_diag[j] - 0.7, 3.0 * (post->prec_diag[j] - 0.7), 1e-13);
    effdim_posterior_free(post);
    effdim_posterior_free(p3);
    post = NULL;
    pp.N = 0.0;
    pp.prior = EFFDIM_PRIOR_EVIDENCE;
    CHECK_STATUS(effdim_posterior_build(c, NULL, NULL, &pp, &post, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "training data");
    effdim_checkpoint_free(c);
    effdim_dataset_free(ds);
    free(m);
    blr_free(&b);
}

/* ---- pruning ---- */

static void pruning_zeroes_the_lowest_scores_by_one_global_threshold(void)
{
    blr b = blr_make(20, 4, 0.1, 9);
    double theta[5] = {0.5, -0.01, 2.0, 0.2, -1.0};
    effdim_dataset *ds = NULL;
    effdim_checkpoint *c = blr_checkpoint(&b, EFFDIM_REDUCTION_MEAN, theta, &ds);
    double scores[5], fr[3] = {0.0, 0.4, 0.8}, loss[3];
    size_t kept[3];
    for (size_t j = 0; j < 5; ++j) scores[j] = fabs(theta[j]);
    effdim_error err;
    CHECK_OK(effdim_prune_sweep(&c->mlp, theta, scores, fr, 3, ds, NULL, loss, kept, &err), &err);
    CHECK(kept[0] == 5 && kept[1] == 3 && kept[2] == 1);
    /* loss at 80% pruned equals the loss of theta with only 2.0 kept */
    double only[5] = {0, 0, 2.0, 0, 0}, l, a;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&c->mlp, 0, &err);
    effdim_mlp_evaluate(&c->mlp, only, ds, NULL, ds->n, &l, &a, ws, &err);
    CHECK_CLOSE(loss[2], l, 1e-15);
    double badf = 1.0;
    CHECK_STATUS(effdim_prune_sweep(&c->mlp, theta, scores, &badf, 1, ds, NULL, loss, kept, &err),
                 EFFDIM_EDOM, &err);
    CHECK_MSG(&err, "fraction 1");
    effdim_mlp_ws_free(ws);
    effdim_checkpoint_free(c);
    effdim_dataset_free(ds);
    blr_free(&b);
}


static void prediction_and_prune_files_round_trip(void)
{
    effdim_error err;
    double mean[6] = {0.1, 0.9, 0.4, 0.6, 0.75, 0.25};
    int32_t y[3] = {1, 0, 0};
    effdim_prediction r = {.n = 3, .K = 2, .classification = 1, .mean = mean, .rmse = NAN};
    effdim_metrics_classification(3, 2, mean, y, 15, &r.accuracy, &r.nll, &r.ece, &r.brier, &err);
    effdim_predict_params pp = effdim_predict_default_params();
    pp.samples = 16;
    effdim_prediction_info info = {"post.h5", "gmm:n=3", &pp};
    const char *path = check_tmpfile("pred.h5");
    CHECK_OK(effdim_prediction_save(&r, &info, path, &err), &err);
    effdim_prediction *q = NULL;
    if (CHECK_OK(effdim_prediction_load(path, &q, &err), &err)) {
        CHECK(q->n == 3 && q->K == 2 && q->classification && !q->var);
        CHECK_VEC_CLOSE(q->mean, mean, 6, 0.0);
        CHECK(q->accuracy == r.accuracy && q->ece == r.ece && q->brier == r.brier);
        CHECK(isnan(q->rmse));
    }
    effdim_prediction_free(q);
    double fr[2] = {0.5, 0.9}, acc[2][2] = {{0.9, 0.5}, {0.95, 0.8}}, loss[2][2] = {{1, 2}, {3, 4}};
    size_t kept[2][2] = {{50, 10}, {50, 10}};
    effdim_prune_table t = {.nf = 2, .fraction = fr, .nc = 2,
                            .by = {EFFDIM_PRUNE_MAGNITUDE, EFFDIM_PRUNE_SNR},
                            .accuracy = {acc[0], acc[1]}, .loss = {loss[0], loss[1]},
                            .kept = {kept[0], kept[1]}, .n_params = 100, .checkpoint = "m.h5",
                            .test_spec = "fashion-mnist:test"};
    const char *pp2 = check_tmpfile("prune.h5");
    CHECK_OK(effdim_prune_save(&t, pp2, &err), &err);
    effdim_prune_table *u = NULL;
    if (CHECK_OK(effdim_prune_load(pp2, &u, &err), &err)) {
        CHECK(u->nf == 2 && u->nc == 2 && u->by[1] == EFFDIM_PRUNE_SNR && u->n_params == 100);
        CHECK_VEC_CLOSE(u->accuracy[1], acc[1], 2, 0.0);
        CHECK_VEC_CLOSE(u->loss[0], loss[0], 2, 0.0);
        CHECK(u->kept[1][1] == 10);
        CHECK(u->test_spec && !strcmp(u->test_spec, "fashion-mnist:test"));
    }
    effdim_prune_table_free(u);
    /* each reader refuses the other's file by its format name */
    CHECK_STATUS(effdim_prune_load(path, &u, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "pred.h5", "effdim.prune");
}

static void unknown_method_names_are_refused(void)
{
    effdim_posterior_method m;
    effdim_error err;
    CHECK_STATUS(effdim_post_method_parse("kfac", &m, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "kfac", "badam-a");
    CHECK_OK(effdim_post_method_parse("lowrank", &m, &err), &err);
    CHECK(m == EFFDIM_POSTERIOR_LOWRANK);
}

CHECK_TESTS({"badam matches hand-computed values", badam_matches_hand_computed_values},
            {"badam posterior from a checkpoint has the shrunk mean and variance",
             badam_posterior_from_a_checkpoint_has_the_shrunk_mean_and_variance},
            {"ivon posterior has precision ess times h plus delta",
             ivon_posterior_has_precision_ess_times_h_plus_delta},
            {"evidence fixed point matches the isotropic closed form",
             evidence_fixed_point_matches_the_isotropic_closed_form},
            {"evidence fixed point is the maximum of the exact BLR evidence",
             evidence_fixed_point_is_the_maximum_of_the_exact_blr_evidence},
            {"laplace evidence of a linear-Gaussian model is exact",
             laplace_evidence_of_a_linear_gaussian_model_is_exact},
            {"variances and log det match the dense inverse",
             variances_and_log_det_match_the_dense_inverse},
            {"samples reproduce the posterior variances", samples_reproduce_the_posterior_variances},
            {"linearised and sampled predictives agree on a linear model",
             linearised_and_sampled_predictives_agree_on_a_linear_model},
            {"standardised targets are reported in original units",
             standardised_targets_are_reported_in_original_units},
            {"ECE and Brier match hand-computed values", ece_and_brier_match_hand_computed_values},
            {"jacobian matches central differences", jacobian_matches_central_differences},
            {"posterior file round trips", posterior_file_round_trips},
            {"grid prior picks the best laplace evidence", grid_prior_picks_the_best_laplace_evidence},
            {"pruning zeroes the lowest scores by one global threshold",
             pruning_zeroes_the_lowest_scores_by_one_global_threshold},
            {"prediction and prune files round trip", prediction_and_prune_files_round_trip},
            {"unknown method names are refused", unknown_method_names_are_refused})
