/* tests/test_svd.c: variational layers, sparse variational dropout and ARD
 * (lib/mlp_svd.c, the svd part of lib/checkpoint.c, the SVD path of
 * lib/train.c).
 *
 * Oracles:
 * - the exact -KL of the log-uniform prior, 0.5 log alpha - E log|1 +
 *   sqrt(alpha) eps| (up to its constant), by GSL's adaptive quadrature
 *   (qags next to the log singularity at eps = -1/sqrt(alpha), qagil/qagiu
 *   on the tails), against the k1/k2/k3 approximation on log alpha in
 *   [-10, 10]: within 0.01;
 * - the ARD KL against the Gaussian KL formula KL(N(t, s2) || N(0, l2)) at
 *   the optimal prior l2 = t^2 + s2, which a perturbed l2 must not beat;
 * - the KL derivatives and the objective's gradient (theta, log sigma^2,
 *   bias; inside and outside the clip; with train-time clipping) against
 *   central finite differences with the noise held fixed;
 * - hand-counted masks, sparsities and compression; annealing values by hand;
 * - bit-exact checkpoint round trips, and every bad-file refusal provoked
 *   with raw HDF5 calls;
 * - training 2 + 2 epochs equals 4 epochs bitwise.
 */
#include <gsl/gsl_integration.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/mlp_svd.h"
#include "effdim/train.h"
#include "testnet.h"

/* ---- the exact KL by quadrature ----------------------------------------- */

typedef struct { double sa; } kl_ctx;

/* phi(e) log|1 + sqrt(alpha) e| */
static double kl_integrand(double e, void *p)
{
    const kl_ctx *c = p;
    double v = fabs(1.0 + c->sa * e);
    return v > 0.0 ? gsl_ran_ugaussian_pdf(e) * log(v) : 0.0;
}

/* E log|1 + sqrt(alpha) eps|, eps ~ N(0, 1) */
static double expected_log(double la)
{
    kl_ctx c = {exp(0.5 * la)};
    gsl_function f = {kl_integrand, &c};
    gsl_integration_workspace *w = gsl_integration_workspace_alloc(2000);
    double s = -1.0 / c.sa, total = 0.0, r, abserr;
    /* the log singularity at s: qags on [s - 1, s] and [s, s + 1], tails qagil/qagiu */
    gsl_integration_qagil(&f, s - 1.0, 1e-13, 1e-11, 2000, w, &r, &abserr);
    total += r;
    gsl_integration_qags(&f, s - 1.0, s, 1e-13, 1e-11, 2000, w, &r, &abserr);
    total += r;
    gsl_integration_qags(&f, s, s + 1.0, 1e-13, 1e-11, 2000, w, &r, &abserr);
    total += r;
    gsl_integration_qagiu(&f, s + 1.0, 1e-13, 1e-11, 2000, w, &r, &abserr);
    total += r;
    gsl_integration_workspace_free(w);
    return total;
}

static void test_kl_approximation(void)
{
    /* The fit is of f(la) = 0.5 la - E log|1 + sqrt(alpha) eps| by
     * k1 sigmoid(k2 + k3 la) - 0.5 log1p(e^-la); the layer's -KL subtracts
     * the constant k1 so that KL -> 0 as alpha -> infinity. */
    double worst = 0.0, at = 0.0, at0 = NAN;
    for (int i = 0; i <= 200; ++i) {
        double la = -10.0 + 0.1 * i;
        double exact = 0.5 * la - expected_log(la);
        double approx = -effdim_svd_kl_value(EFFDIM_SVD_KL_SPARSEVD, la, NULL) + EFFDIM_SVD_K1;
        double d = fabs(approx - exact);
        if (d > worst) worst = d, at = la;
        if (i == 100) at0 = d;
    }
    check_note("max |approx - exact| = %.4f at log alpha = %.1f; %.4f at log alpha = 0", worst,
               at, at0);
    CHECK(worst < 0.01);
    /* the limit alpha -> infinity: -E log|eps| = (gamma_Euler + ln 2) / 2 */
    CHECK_NEAR(0.5 * 12.0 - expected_log(12.0), (0.57721566490153286 + log(2.0)) / 2.0, 2e-3);
    /* KL -> 0 as alpha grows, and is positive for the layer's use */
    CHECK_NEAR(effdim_svd_kl_value(EFFDIM_SVD_KL_SPARSEVD, 30.0, NULL), 0.0, 1e-9);
    for (int i = 0; i <= 20; ++i)
        CHECK(effdim_svd_kl_value(EFFDIM_SVD_KL_SPARSEVD, -10.0 + i, NULL) > 0.0);
}

/* KL(N(t, s2) || N(0, l2)) */
static double gauss_kl(double t, double s2, double l2)
{
    return 0.5 * (log(l2 / s2) + (s2 + t * t) / l2 - 1.0);
}

static void test_ard_kl_closed_form(void)
{
    const double ts[] = {0.385, -1.73, 2.2e-3, 7.1};
    const double s2s[] = {1e-4, 0.0213, 3.3, 0.71};
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
            double t = ts[i], s2 = s2s[j], la = log(s2 / (t * t)), l2 = t * t + s2;
            double kl = effdim_svd_kl_value(EFFDIM_SVD_KL_ARD, la, NULL);
            CHECK_CLOSE(kl, gauss_kl(t, s2, l2), 1e-8); /* gauss_kl cancels for tiny KL */
            CHECK(gauss_kl(t, s2, 1.01 * l2) > kl && gauss_kl(t, s2, 0.99 * l2) > kl);
        }
}

static void test_kl_derivatives(void)
{
    for (int k = 0; k < 2; ++k)
        for (double la = -9.7; la < 10.0; la += 1.385) {
            double d, h = 1e-5;
            effdim_svd_kl_value((effdim_svd_kl)k, la, &d);
            double fd = (effdim_svd_kl_value((effdim_svd_kl)k, la + h, NULL) -
                         effdim_svd_kl_value((effdim_svd_kl)k, la - h, NULL)) / (2 * h);
            CHECK_NEAR(d, fd, 1e-8);
        }
}

/* ---- a small variational network ---------------------------------------- */

/* 5-7-4-3 tanh tanh identity, cross-entropy */
static void small_net(effdim_mlp *m)
{
    const size_t sizes[] = {5, 7, 4, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_error e;
    CHECK_OK(effdim_mlp_init(m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &e), &e);
}

/* theta and log sigma^2 with log alpha spread over (-4, 2), plus one weight
 * clipped above (theta ~ 0) and one clipped below, away from the clip and the
 * threshold so that finite differences stay on one branch. */
static void fill_params(const effdim_mlp *m, const effdim_svd *s, double *theta, double *ls2)
{
    for (size_t i = 0; i < m->n_params; ++i)
        theta[i] = 0.8 * sin(2.385 * (double)i + 0.3) + 0.05 * cos(1.7 * (double)i);
    size_t k = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (!s->variational[l]) continue;
        size_t nw = m->sizes[l + 1] * m->sizes[l];
        for (size_t j = 0; j < nw; ++j, ++k) {
            double t = theta[m->w_off[l] + j];
            ls2[k] = log(t * t) - 4.0 + 6.0 * (0.5 + 0.5 * sin(0.917 * (double)k));
        }
    }
    theta[m->w_off[0] + 3] = 1e-6; /* raw log alpha ~ +27: clipped at +L */
    ls2[3] = -2.0;
    ls2[5] = log(theta[m->w_off[0] + 5] * theta[m->w_off[0] + 5]) - 14.0; /* clipped at -L */
}

static void gradient_check(int all_layers, int train_clip, effdim_svd_kl kl)
{
    effdim_mlp m;
    small_net(&m);
    effdim_svd s = effdim_svd_default(&m);
    s.kl = kl;
    effdim_error e;
    if (all_layers) CHECK_OK(effdim_svd_set_all(&s, &m, &e), &e);
    else {
        CHECK_OK(effdim_svd_set_layer(&s, &m, 0, 1, &e), &e);
        CHECK_OK(effdim_svd_set_layer(&s, &m, 2, 1, &e), &e);
    }
    const size_t P = m.n_params, W = s.n_weights, n = 9, U = effdim_svd_noise_per_row(&m, &s);
    effdim_dataset *ds = testnet_data(23, 5, 3, EFFDIM_TARGET_LABELS, 11);
    double *u = malloc((P + W) * sizeof *u), *g = malloc((P + W) * sizeof *g);
    double *fd = malloc((P + W) * sizeof *fd), *eps = malloc(n * U * sizeof *eps);
    size_t rows[9] = {3, 17, 0, 22, 8, 8, 11, 5, 19};
    fill_params(&m, &s, u, u + P);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7);
    for (size_t i = 0; i < n * U; ++i) eps[i] = gsl_ran_gaussian(r, 1.0);
    gsl_rng_free(r);
    effdim_svd_ws *ws = effdim_svd_ws_alloc(&m, &s, 4, &e); /* 3 chunks of rows */
    CHECK(ws != NULL);
    const double N = 57.0, beta = 0.713;
    effdim_svd_objective o0, op, om;
    CHECK_OK(effdim_svd_loss_grad(&m, &s, u, u + P, ds, rows, n, eps, N, beta, train_clip, &o0, g,
                                  ws, &e), &e);
    CHECK_CLOSE(o0.total, N * o0.nll + beta * o0.kl, 1e-14);
    for (size_t i = 0; i < P + W; ++i) {
        double keep = u[i], h = 1e-6 * fmax(1.0, fabs(keep));
        u[i] = keep + h;
        effdim_svd_loss_grad(&m, &s, u, u + P, ds, rows, n, eps, N, beta, train_clip, &op, NULL, ws, &e);
        u[i] = keep - h;
        effdim_svd_loss_grad(&m, &s, u, u + P, ds, rows, n, eps, N, beta, train_clip, &om, NULL, ws, &e);
        u[i] = keep;
        fd[i] = (op.total - om.total) / (2 * h);
    }
    CHECK_VEC_CLOSE(g, fd, P, 1e-6);         /* theta (weights and biases) */
    CHECK_VEC_CLOSE(g + P, fd + P, W, 1e-6); /* log sigma^2 */
    /* the clipped weights: no log sigma^2 gradient */
    CHECK(g[P + 3] == 0.0 && g[P + 5] == 0.0);
    effdim_svd_ws_free(ws);
    effdim_dataset_free(ds);
    free(u);
    free(g);
    free(fd);
    free(eps);
}

static void test_gradient_all_layers(void) { gradient_check(1, 0, EFFDIM_SVD_KL_SPARSEVD); }
static void test_gradient_some_layers_ard(void) { gradient_check(0, 0, EFFDIM_SVD_KL_ARD); }
static void test_gradient_train_clip(void) { gradient_check(1, 1, EFFDIM_SVD_KL_SPARSEVD); }

/* With log sigma^2 very negative the noise vanishes and the objective's data
 * term equals N times the deterministic network's mean loss. */
static void test_objective_without_noise_is_the_mlp_loss(void)
{
    effdim_mlp m;
    small_net(&m);
    effdim_svd s = effdim_svd_default(&m);
    s.clip = 40.0;
    effdim_error e;
    CHECK_OK(effdim_svd_set_all(&s, &m, &e), &e);
    const size_t P = m.n_params, W = s.n_weights, U = effdim_svd_noise_per_row(&m, &s);
    effdim_dataset *ds = testnet_data(13, 5, 3, EFFDIM_TARGET_LABELS, 5);
    double *theta = malloc(P * sizeof *theta), *ls2 = malloc(W * sizeof *ls2);
    double *eps = malloc(13 * U * sizeof *eps);
    fill_params(&m, &s, theta, ls2);
    for (size_t i = 0; i < W; ++i) ls2[i] = -60.0;
    for (size_t i = 0; i < 13 * U; ++i) eps[i] = 2.0 * sin((double)i);
    effdim_mlp_ws *mw = effdim_mlp_ws_alloc(&m, 0, &e);
    effdim_svd_ws *ws = effdim_svd_ws_alloc(&m, &s, 0, &e);
    double loss = 0.0;
    effdim_svd_objective o;
    CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, 13, &loss, NULL, mw, &e), &e);
    CHECK_OK(effdim_svd_loss_grad(&m, &s, theta, ls2, ds, NULL, 13, eps, 100.0, 0.0, 0, &o, NULL,
                                  ws, &e), &e);
    CHECK_CLOSE(o.nll, loss, 1e-4); /* the sqrt(1e-8) noise floor remains */
    /* with eps = 0 the mean path alone: exactly the network's loss */
    memset(eps, 0, 13 * U * sizeof *eps);
    for (size_t i = 0; i < W; ++i) ls2[i] = 0.385 * sin((double)i);
    CHECK_OK(effdim_svd_loss_grad(&m, &s, theta, ls2, ds, NULL, 13, eps, 100.0, 0.0, 0, &o, NULL,
                                  ws, &e), &e);
    CHECK_CLOSE(o.nll, loss, 1e-13);
    CHECK_CLOSE(o.total, 100.0 * loss, 1e-13);
    effdim_svd_ws_free(ws);
    effdim_mlp_ws_free(mw);
    effdim_dataset_free(ds);
    free(theta);
    free(ls2);
    free(eps);
}

/* ---- masks, metrics, annealing ------------------------------------------ */

static void test_mask_drops_log_alpha_at_least_3(void)
{
    const size_t sizes[] = {3, 2, 2};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_error e;
    CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &e), &e);
    effdim_svd s = effdim_svd_default(&m);
    CHECK_OK(effdim_svd_set_layer(&s, &m, 0, 1, &e), &e); /* layer 1 deterministic */
    CHECK(s.n_weights == 6);
    /* layer 0: weights 2.0 with log alpha 2.99, 3.01, -5, 9; 0.0 (clipped: +10); 1.5 at 2.5 */
    double theta[6 + 2 + 4 + 2] = {2.0, 2.0, 2.0, 2.0, 0.0, 1.5, 0.11, -0.2,
                                   0.7, 0.0, -0.3, 0.4, 0.5, 0.6};
    const double las[6] = {2.99, 3.01, -5.0, 9.0, 0.0, 2.5};
    double ls2[6], out[14];
    for (int k = 0; k < 6; ++k) ls2[k] = las[k] + log(theta[k] * theta[k] + s.tiny);
    ls2[4] = -3.0;
    effdim_svd_masked_theta(&m, &s, theta, ls2, out);
    const double want[14] = {2.0, 0.0, 2.0, 0.0, 0.0, 1.5, 0.11, -0.2,
                             0.7, 0.0, -0.3, 0.4, 0.5, 0.6};
    for (int i = 0; i < 14; ++i) CHECK(out[i] == want[i]);
    CHECK(effdim_svd_log_alpha(&s, 0.0, -3.0) == 10.0);
    effdim_svd_metrics sm;
    effdim_svd_compute_metrics(&m, &s, theta, ls2, &sm);
    CHECK(sm.dropped[0] == 3);
    CHECK_CLOSE(sm.sparsity[0], 0.5, 1e-15);
    CHECK(isnan(sm.sparsity[1]));
    CHECK(sm.weights == 10);
    /* kept: 2.0, 2.0, 1.5 in layer 0; 0.7, -0.3, 0.4 in layer 1 (its 0.0 counts as zero) */
    CHECK(sm.nonzero == 6);
    CHECK_CLOSE(sm.compression, 10.0 / 6.0, 1e-15);
}

static void test_annealing_schedules(void)
{
    effdim_svd_anneal a = effdim_svd_anneal_default();
    effdim_error e;
    const uint64_t ep[] = {0, 4, 5, 6, 12, 20, 21, 200};
    const double rw[] = {0, 0, 0, 1.0 / 15, 7.0 / 15, 1, 1, 1};
    for (int i = 0; i < 8; ++i) CHECK_CLOSE(effdim_svd_anneal_beta(&a, ep[i]) + 1, rw[i] + 1, 1e-15);
    CHECK_OK(effdim_svd_anneal_parse("linear", &a, &e), &e);
    const uint64_t ep2[] = {0, 1, 2, 49, 50, 51, 100};
    const double lin[] = {0, 0.02, 0.04, 0.98, 1, 1, 1};
    for (int i = 0; i < 7; ++i) CHECK_CLOSE(effdim_svd_anneal_beta(&a, ep2[i]) + 1, lin[i] + 1, 1e-15);
    CHECK_OK(effdim_svd_anneal_parse("constant:0.385", &a, &e), &e);
    CHECK(effdim_svd_anneal_beta(&a, 0) == 0.385 && effdim_svd_anneal_beta(&a, 99) == 0.385);
    CHECK_OK(effdim_svd_anneal_parse("rw_linear:2,4", &a, &e), &e);
    CHECK(effdim_svd_anneal_beta(&a, 4) == 0.5);
    char buf[96];
    effdim_svd_anneal b;
    CHECK_OK(effdim_svd_anneal_parse(effdim_svd_anneal_format(&a, buf, sizeof buf), &b, &e), &e);
    CHECK(b.kind == a.kind && b.a == a.a && b.b == a.b);
    const char *bad[] = {"rw_linear:5", "linear:-1", "constant:x", "cosine", "linear:0.1,2", ""};
    for (int i = 0; i < 6; ++i) {
        CHECK_STATUS(effdim_svd_anneal_parse(bad[i], &b, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "rw_linear", "constant");
    }
}

/* sigma^2 built equal to 2x the Laplace variance: ratio log10 2 everywhere,
 * correlation 1; zero curvatures and dropped weights counted, not compared. */
static void test_variances_against_a_curvature_diagonal(void)
{
    effdim_mlp m;
    small_net(&m);
    effdim_svd s = effdim_svd_default(&m);
    effdim_error e;
    CHECK_OK(effdim_svd_set_layer(&s, &m, 0, 1, &e), &e);
    CHECK_OK(effdim_svd_set_layer(&s, &m, 1, 1, &e), &e);
    const size_t P = m.n_params, W = s.n_weights;
    double *theta = malloc(P * sizeof *theta), *ls2 = malloc(W * sizeof *ls2);
    double *curv = malloc(P * sizeof *curv), *x = malloc(W * sizeof *x), *y = malloc(W * sizeof *y);
    fill_params(&m, &s, theta, ls2);
    for (size_t i = 0; i < P; ++i) curv[i] = 0.0;
    const double N = 250.0;
    size_t dropped = 0, flat = 0;
    for (size_t l = 0; l < 2; ++l)
        for (size_t k = 0; k < m.sizes[l + 1] * m.sizes[l]; ++k) {
            double w = theta[m.w_off[l] + k], *ls = &ls2[s.ls_off[l] + k];
            double la = effdim_svd_log_alpha(&s, w, *ls);
            if (la >= 3.0) { ++dropped; continue; }
            if (k % 7 == 3) { ++flat; continue; } /* zero curvature */
            curv[m.w_off[l] + k] = 1.0 / (2.0 * N * exp(la) * w * w); /* Laplace = 2 sigma^2 */
        }
    effdim_svd_variance_cmp r;
    CHECK_OK(effdim_svd_compare_variances(&m, &s, theta, ls2, curv, N, 0.0, 4, x, y, &r, &e), &e);
    CHECK(r.n_dropped == dropped && r.n_flat == flat && r.n == W - dropped - flat);
    CHECK_NEAR(r.median_diff, -log10(2.0), 1e-12);
    CHECK_NEAR(r.pearson, 1.0, 1e-12);
    CHECK(r.frac_above == 0.0);
    CHECK(r.layer_n[0] + r.layer_n[1] == r.n && r.layer_n[2] == 0 && isnan(r.layer_pearson[2]));
    CHECK_NEAR(r.layer_median_diff[1], -log10(2.0), 1e-12);
    size_t total = 0;
    for (size_t b = 0; b < r.n_bins; ++b) total += r.bin_count[b];
    CHECK(total == r.n);
    for (size_t i = 0; i < r.n; ++i) CHECK_NEAR(y[i] - x[i], -log10(2.0), 1e-12);
    CHECK_STATUS(effdim_svd_compare_variances(&m, &s, theta, ls2, curv, N, 0.0, 0, x, y, &r, &e),
                 EFFDIM_EINVAL, &e);
    memset(curv, 0, P * sizeof *curv);
    CHECK_STATUS(effdim_svd_compare_variances(&m, &s, theta, ls2, curv, N, 0.0, 4, x, y, &r, &e),
                 EFFDIM_EDOM, &e);
    free(theta);
    free(ls2);
    free(curv);
    free(x);
    free(y);
}

/* ---- checkpoints ---------------------------------------------------------- */

static effdim_checkpoint *svd_checkpoint(int with_optimizer)
{
    effdim_mlp m;
    small_net(&m);
    effdim_svd s = effdim_svd_default(&m);
    s.kl = EFFDIM_SVD_KL_ARD;
    s.clip = 8.0;
    s.tiny = 1e-8;
    effdim_error e;
    CHECK_OK(effdim_svd_set_layer(&s, &m, 0, 1, &e), &e);
    CHECK_OK(effdim_svd_set_layer(&s, &m, 2, 1, &e), &e);
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &c, &e), &e);
    if (!c) return NULL;
    double *ls2 = malloc(s.n_weights * sizeof *ls2);
    fill_params(&m, &s, c->theta, ls2);
    CHECK_OK(effdim_checkpoint_set_svd(c, &s, ls2, &e), &e);
    free(ls2);
    if (with_optimizer) {
        size_t n = effdim_checkpoint_n_optim(c);
        CHECK(n == m.n_params + s.n_weights);
        double *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; ++i) v[i] = 1e-3 * (1.0 + sin(0.3 * (double)i));
        CHECK_OK(effdim_checkpoint_set_optimizer(c, "adam", 12, &e), &e);
        CHECK_OK(effdim_checkpoint_set_state(c, "exp_avg", v, n, &e), &e);
        CHECK_OK(effdim_checkpoint_set_state(c, "exp_avg_sq", v, n, &e), &e);
        CHECK_STATUS(effdim_checkpoint_set_state(c, "x", v, m.n_params, &e), EFFDIM_EINVAL, &e);
        free(v);
    }
    return c;
}

static void test_checkpoint_round_trip(void)
{
    effdim_checkpoint *c = svd_checkpoint(1), *d = NULL;
    effdim_error e;
    const char *path = check_tmpfile("svd.h5");
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    CHECK_OK(effdim_checkpoint_load(path, &d, &e), &e);
    if (!c || !d) return;
    CHECK(d->svd != NULL);
    if (!d->svd) return;
    const effdim_svd *a = &c->svd->svd, *b = &d->svd->svd;
    CHECK(b->kl == EFFDIM_SVD_KL_ARD && b->clip == 8.0 && b->tiny == 1e-8 && b->threshold == 3.0);
    CHECK(b->log_sigma2_init == -10.0 && b->n_weights == a->n_weights);
    CHECK(b->variational[0] && !b->variational[1] && b->variational[2]);
    CHECK(!memcmp(c->theta, d->theta, c->mlp.n_params * sizeof *c->theta));
    CHECK(!memcmp(c->svd->log_sigma2, d->svd->log_sigma2, a->n_weights * sizeof(double)));
    const double *v0 = effdim_checkpoint_state(c, "exp_avg_sq"), *v1 = effdim_checkpoint_state(d, "exp_avg_sq");
    CHECK(v0 && v1 && !memcmp(v0, v1, effdim_checkpoint_n_optim(c) * sizeof *v0));
    /* the raw layout: /model/layer2/log_sigma2 (3, 4), svd_layers [0, 2] */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "model/layer2/log_sigma2", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    CHECK(H5Sget_simple_extent_ndims(sp) == 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    CHECK(dims[0] == 3 && dims[1] == 4);
    H5Sclose(sp);
    H5Dclose(ds);
    CHECK(H5Lexists(f, "model/layer1/log_sigma2", H5P_DEFAULT) == 0);
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    hid_t at = H5Aopen(g, "svd_layers", H5P_DEFAULT);
    long long layers[2] = {-1, -1};
    H5Aread(at, H5T_NATIVE_LLONG, layers);
    CHECK(layers[0] == 0 && layers[1] == 2);
    H5Aclose(at);
    H5Gclose(g);
    H5Fclose(f);
    /* the evaluation network: masked theta, an ordinary checkpoint */
    double *want = malloc(c->mlp.n_params * sizeof *want);
    effdim_svd_masked_theta(&c->mlp, a, c->theta, c->svd->log_sigma2, want);
    CHECK_OK(effdim_checkpoint_svd_evaluation(d, &e), &e);
    CHECK(d->svd == NULL && effdim_checkpoint_n_optim(d) == d->mlp.n_params);
    CHECK(!memcmp(d->theta, want, d->mlp.n_params * sizeof *want));
    size_t zeros = 0;
    for (size_t i = 0; i < d->mlp.n_params; ++i) zeros += want[i] == 0.0 && c->theta[i] != 0.0;
    CHECK(zeros > 0);
    const char *path2 = check_tmpfile("svd_eval.h5");
    CHECK_OK(effdim_checkpoint_save(d, path2, &e), &e);
    effdim_checkpoint *d2 = NULL;
    CHECK_OK(effdim_checkpoint_load(path2, &d2, &e), &e);
    CHECK(d2 && !d2->svd);
    effdim_checkpoint_free(d2);
    /* set_svd refuses once an optimiser section exists */
    CHECK_STATUS(effdim_checkpoint_set_svd(c, a, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "optimizer");
    free(want);
    effdim_checkpoint_free(c);
    effdim_checkpoint_free(d);
}

/* A saved SVD checkpoint edited with raw HDF5 calls by edit(f), then loaded:
 * one refusal naming the file, the object and the expectation. */
static void bad_file(const char *name, void (*edit)(hid_t f), effdim_status want,
                     const char *m1, const char *m2)
{
    effdim_checkpoint *c = svd_checkpoint(1), *d = NULL;
    effdim_error e;
    const char *path = check_tmpfile(name);
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    edit(f);
    H5Fclose(f);
    CHECK_STATUS(effdim_checkpoint_load(path, &d, &e), want, &e);
    CHECK(d == NULL);
    CHECK_MSG(&e, path, m1, m2);
    check_note("%s", e.msg);
    effdim_checkpoint_free(c);
}

static void drop_ls2(hid_t f) { CHECK(H5Ldelete(f, "model/layer2/log_sigma2", H5P_DEFAULT) >= 0); }

/* a zero float64 data set of rank 1 or 2 at path (at most 128 values) */
static void put_zeros(hid_t f, const char *path, int rank, hsize_t d0, hsize_t d1)
{
    hsize_t dims[2] = {d0, d1};
    double v[128] = {0};
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, path, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

static void reshape_ls2(hid_t f)
{
    CHECK(H5Ldelete(f, "model/layer0/log_sigma2", H5P_DEFAULT) >= 0);
    put_zeros(f, "model/layer0/log_sigma2", 2, 5, 7);
}

static void extra_ls2(hid_t f) { put_zeros(f, "model/layer1/log_sigma2", 2, 4, 7); }

static void drop_layers_attr(hid_t f) { CHECK(H5Adelete_by_name(f, "model", "svd_layers", H5P_DEFAULT) >= 0); }
static void drop_kl_attr(hid_t f) { CHECK(H5Adelete_by_name(f, "model", "svd_kl", H5P_DEFAULT) >= 0); }

static void nan_ls2(hid_t f)
{
    hid_t ds = H5Dopen2(f, "model/layer0/log_sigma2", H5P_DEFAULT);
    double v[35];
    H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    v[9] = NAN;
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
}

/* an optimiser vector of P entries, not P + W */
static void short_state(hid_t f)
{
    CHECK(H5Ldelete(f, "optimizer/exp_avg", H5P_DEFAULT) >= 0);
    put_zeros(f, "optimizer/exp_avg", 1, 75, 1);
}

static void test_bad_svd_checkpoints_are_refused(void)
{
    bad_file("missing.h5", drop_ls2, EFFDIM_EFORMAT, "/model/layer2/log_sigma2", "missing");
    bad_file("shape.h5", reshape_ls2, EFFDIM_EFORMAT, "/model/layer0/log_sigma2", "(7, 5)");
    bad_file("extra.h5", extra_ls2, EFFDIM_EFORMAT, "/model/layer1/log_sigma2", "svd_layers");
    bad_file("nolayers.h5", drop_layers_attr, EFFDIM_EFORMAT, "log_sigma2", "svd_layers");
    bad_file("nokl.h5", drop_kl_attr, EFFDIM_EFORMAT, "/model", "svd_kl");
    bad_file("nan.h5", nan_ls2, EFFDIM_EDOM, "/model/layer0/log_sigma2", "finite");
    bad_file("short.h5", short_state, EFFDIM_EFORMAT, "/optimizer/exp_avg", "length 75");
}

/* ---- training ------------------------------------------------------------- */

static effdim_checkpoint *train_ckpt(void)
{
    const size_t sizes[] = {5, 8, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_error e;
    CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &e), &e);
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &c, &e), &e);
    CHECK_OK(effdim_mlp_init_params(&m, c->theta, EFFDIM_INIT_TORCH, 3, &e), &e);
    effdim_svd s = effdim_svd_default(&m);
    CHECK_OK(effdim_svd_set_all(&s, &m, &e), &e);
    CHECK_OK(effdim_checkpoint_set_svd(c, &s, NULL, &e), &e);
    return c;
}

static void test_training_resumes_bitwise(void)
{
    effdim_dataset *ds = testnet_data(90, 5, 3, EFFDIM_TARGET_LABELS, 21);
    effdim_train_params p = effdim_train_default_params();
    p.batch = 16;
    p.optim.lr = 0.01;
    p.svd_anneal.kind = EFFDIM_SVD_ANNEAL_LINEAR;
    p.svd_anneal.a = 0.3;
    p.svd_train_clip = 1;
    effdim_error e;
    effdim_checkpoint *a = train_ckpt(), *b = train_ckpt(), *b2 = NULL;
    p.epochs = 4;
    CHECK_OK(effdim_train_run(&p, a, ds, NULL, NULL, &e), &e);
    p.epochs = 2;
    CHECK_OK(effdim_train_run(&p, b, ds, NULL, NULL, &e), &e);
    const char *path = check_tmpfile("half.h5");
    CHECK_OK(effdim_checkpoint_save(b, path, &e), &e);
    CHECK_OK(effdim_checkpoint_load(path, &b2, &e), &e);
    effdim_train_params q = effdim_train_default_params();
    CHECK_OK(effdim_train_params_from_checkpoint(b2, path, &q, &e), &e);
    CHECK(q.svd_anneal.kind == EFFDIM_SVD_ANNEAL_LINEAR && q.svd_anneal.a == 0.3 && q.svd_train_clip);
    q.epochs = 2;
    CHECK_OK(effdim_train_run(&q, b2, ds, NULL, NULL, &e), &e);
    if (a && b2 && b2->svd) {
        CHECK(!memcmp(a->theta, b2->theta, a->mlp.n_params * sizeof(double)));
        CHECK(!memcmp(a->svd->log_sigma2, b2->svd->log_sigma2,
                      a->svd->svd.n_weights * sizeof(double)));
        /* the variances moved from their initial value */
        CHECK(a->svd->log_sigma2[0] != -10.0);
    }
    /* IVON refuses variational layers */
    effdim_checkpoint *c = train_ckpt();
    effdim_train_params iv = effdim_train_default_params();
    iv.optimizer = EFFDIM_OPTIM_IVON;
    iv.optim = effdim_optim_default_params(EFFDIM_OPTIM_IVON);
    iv.optim.lr = 0.1;
    iv.optim.ess = 90;
    iv.epochs = 1;
    CHECK_STATUS(effdim_train_run(&iv, c, ds, NULL, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "IVON");
    effdim_checkpoint_free(c);
    effdim_checkpoint_free(a);
    effdim_checkpoint_free(b);
    effdim_checkpoint_free(b2);
    effdim_dataset_free(ds);
}

CHECK_TESTS({"the sparsevd KL approximation is within 0.01 of the integrated exact KL",
             test_kl_approximation},
            {"the ard KL is the Gaussian KL at the optimal prior", test_ard_kl_closed_form},
            {"the KL derivatives match central differences", test_kl_derivatives},
            {"the gradient matches central differences (all layers variational)",
             test_gradient_all_layers},
            {"the gradient matches central differences (two layers, ard)",
             test_gradient_some_layers_ard},
            {"the gradient matches central differences (train-time clipping)",
             test_gradient_train_clip},
            {"without noise the objective is N times the network's loss",
             test_objective_without_noise_is_the_mlp_loss},
            {"weights with log alpha >= 3 are dropped; sparsity and compression",
             test_mask_drops_log_alpha_at_least_3},
            {"annealing schedules give the documented weights", test_annealing_schedules},
            {"learned variances against a curvature diagonal: counts, ratios, correlation",
             test_variances_against_a_curvature_diagonal},
            {"an svd checkpoint round-trips bit for bit", test_checkpoint_round_trip},
            {"bad svd checkpoints are refused with one clear error",
             test_bad_svd_checkpoints_are_refused},
            {"svd training for 2 + 2 epochs equals 4 epochs", test_training_resumes_bitwise})
