/* tests/test_mlp.c: the MLP's loss and gradient are exact.
 *
 * Oracles, from cheapest to most trusted:
 * - central finite differences of the loss, for every activation, both
 *   losses and both reductions;
 * - closed forms: linear regression (one identity layer, mse) and logistic
 *   regression (two-class softmax on one identity layer), written with
 *   plain loops and no BLAS;
 * - a float64 PyTorch fixture (tests/fixtures/mlp_torch.h5, written by
 *   tests/make_fixture_mlp.py): loss, gradient, per-sample gradients and
 *   per-sample losses, outputs;
 * - invariants: chunked == unchunked, a row selection == the same rows as a
 *   data set, per-sample gradients average to the full gradient, accuracy
 *   equals a hand count.
 * Every error path (bad widths, too many layers, data that does not fit,
 * labels out of range, wrong loss for the targets, unknown names) is provoked.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testnet.h"
#include "effdim/blas.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "h5io.h"
#include "mlp_curv.h"
#include "mlp_internal.h"

/* ---- helpers ------------------------------------------------------------ */

static effdim_status make_mlp(effdim_mlp *m, size_t L, const size_t *sizes,
                              const effdim_activation *acts, effdim_loss loss,
                              effdim_reduction red)
{
    effdim_error e;
    effdim_status st = effdim_mlp_init(m, L, sizes, acts, loss, red, &e);
    CHECK_OK(st, &e);
    return st;
}

/* max_i |a_i - b_i| / max_i |b_i| */
static double rel_err(const double *a, const double *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; ++i) d = fabs(a[i] - b[i]) > d ? fabs(a[i] - b[i]) : d;
    double s = testnet_max_abs(b, n);
    return s > 0 ? d / s : d;
}

static double loss_at(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                      effdim_mlp_ws *ws)
{
    effdim_error e;
    double l = NAN;
    CHECK_OK(effdim_mlp_loss_grad(m, theta, ds, NULL, ds->n, &l, NULL, ws, &e), &e);
    return l;
}

/* central differences (L(theta + h e_i) - L(theta - h e_i)) / 2h for every i */
static void fd_grad(const effdim_mlp *m, const double *theta, const effdim_dataset *ds, double h,
                    double *g, effdim_mlp_ws *ws)
{
    double *t = malloc(m->n_params * sizeof *t);
    memcpy(t, theta, m->n_params * sizeof *t);
    for (size_t i = 0; i < m->n_params; ++i) {
        t[i] = theta[i] + h;
        double up = loss_at(m, t, ds, ws);
        t[i] = theta[i] - h;
        double dn = loss_at(m, t, ds, ws);
        t[i] = theta[i];
        g[i] = (up - dn) / (2 * h);
    }
    free(t);
}

/* ---- names and descriptions --------------------------------------------- */

static void names_round_trip_and_unknown_names_are_refused(void)
{
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY, EFFDIM_ACT_RELU,     EFFDIM_ACT_TANH,
                                      EFFDIM_ACT_SIGMOID,  EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_GELU,
                                      EFFDIM_ACT_ELU};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; ++i) {
        effdim_activation a = EFFDIM_ACT_IDENTITY;
        CHECK(effdim_activation_parse(effdim_activation_name(acts[i]), &a, NULL) == EFFDIM_OK);
        CHECK(a == acts[i]);
    }
    CHECK(strcmp(effdim_activation_name(EFFDIM_ACT_GELU), "gelu") == 0);
    effdim_activation a = EFFDIM_ACT_TANH;
    effdim_error e;
    CHECK(effdim_activation_parse("swish", &a, &e) == EFFDIM_EINVAL);
    CHECK_MSG(&e, "activation 'swish' unknown", "identity, relu", "elu");
    effdim_init_scheme s0;
    CHECK(effdim_init_scheme_parse("he", &s0, &e) == EFFDIM_EINVAL);
    CHECK_MSG(&e, "init scheme 'he' unknown, expected one of torch, glorot");
    CHECK(effdim_activation_parse("", &a, NULL) == EFFDIM_EINVAL);
    CHECK(effdim_activation_parse(NULL, &a, NULL) == EFFDIM_EINVAL);
    CHECK(a == EFFDIM_ACT_TANH); /* untouched on failure */
    effdim_loss l;
    CHECK(effdim_loss_parse("cross_entropy", &l, NULL) == EFFDIM_OK && l == EFFDIM_LOSS_CROSS_ENTROPY);
    CHECK(effdim_loss_parse("mse", &l, NULL) == EFFDIM_OK && l == EFFDIM_LOSS_MSE);
    CHECK(effdim_loss_parse("hinge", &l, NULL) == EFFDIM_EINVAL);
    CHECK(strcmp(effdim_loss_name(EFFDIM_LOSS_MSE), "mse") == 0);
    CHECK(effdim_loss_parse("bce", &l, NULL) == EFFDIM_OK && l == EFFDIM_LOSS_BCE);
    CHECK(strcmp(effdim_loss_name(EFFDIM_LOSS_BCE), "bce") == 0);
    CHECK(strcmp(effdim_activation_name(EFFDIM_ACT_ELU), "elu") == 0);
    CHECK(strcmp(effdim_loss_name((effdim_loss)3), "unknown") == 0);
    effdim_reduction r;
    CHECK(effdim_reduction_parse("sum", &r, NULL) == EFFDIM_OK && r == EFFDIM_REDUCTION_SUM);
    CHECK(effdim_reduction_parse("mean", &r, NULL) == EFFDIM_OK && r == EFFDIM_REDUCTION_MEAN);
    CHECK(effdim_reduction_parse("median", &r, NULL) == EFFDIM_EINVAL);
    effdim_init_scheme s;
    CHECK(effdim_init_scheme_parse("glorot", &s, NULL) == EFFDIM_OK && s == EFFDIM_INIT_GLOROT);
    CHECK(effdim_init_scheme_parse("he", &s, NULL) == EFFDIM_EINVAL);
    CHECK(strcmp(effdim_init_scheme_name(EFFDIM_INIT_TORCH), "torch") == 0);
}

static void the_parameter_layout_is_pytorch_order(void)
{
    effdim_mlp m;
    const size_t sizes[] = {784, 300, 100, 10};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN)) return;
    CHECK(m.n_params == 266610);
    CHECK(m.w_off[0] == 0 && m.b_off[0] == 235200);
    CHECK(m.w_off[1] == 235500 && m.b_off[1] == 265500);
    CHECK(m.w_off[2] == 265600 && m.b_off[2] == 266600);
}

static void bad_network_descriptions_are_refused_with_the_reason(void)
{
    effdim_mlp m;
    effdim_error e;
    effdim_activation acts[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 2];
    for (size_t i = 0; i < EFFDIM_MLP_MAX_LAYERS + 1; ++i) acts[i] = EFFDIM_ACT_TANH;
    for (size_t i = 0; i < EFFDIM_MLP_MAX_LAYERS + 2; ++i) sizes[i] = 3;

    size_t zero[] = {4, 5, 0, 2};
    CHECK_STATUS(effdim_mlp_init(&m, 3, zero, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &e),
                 EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "sizes[2] = 0", "width >= 1");
    CHECK_STATUS(effdim_mlp_init(&m, EFFDIM_MLP_MAX_LAYERS + 1, sizes, acts, EFFDIM_LOSS_MSE,
                                 EFFDIM_REDUCTION_MEAN, &e),
                 EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "65 layers", "at most 64");
    CHECK_STATUS(effdim_mlp_init(&m, 0, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &e),
                 EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "0 layers");
    CHECK_OK(effdim_mlp_init(&m, EFFDIM_MLP_MAX_LAYERS, sizes, acts, EFFDIM_LOSS_MSE,
                             EFFDIM_REDUCTION_MEAN, &e), &e);
    size_t huge[] = {(size_t)1 << 40, (size_t)1 << 40, 2};
    CHECK_STATUS(effdim_mlp_init(&m, 2, huge, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &e),
                 EFFDIM_ENOMEM, &e);
    CHECK_MSG(&e, "overflows", "layer 0");
    effdim_activation badact[] = {EFFDIM_ACT_TANH, (effdim_activation)17};
    CHECK_STATUS(effdim_mlp_init(&m, 2, sizes, badact, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &e),
                 EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "activation of layer 1", "17");
    CHECK_STATUS(effdim_mlp_init(&m, 2, sizes, acts, (effdim_loss)3, EFFDIM_REDUCTION_MEAN, &e),
                 EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "loss 3 unknown");
}

static void initialisations_follow_their_bounds_and_the_seed(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {50, 40, 30};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 2, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN)) return;
    double *a = malloc(m.n_params * sizeof *a), *b = malloc(m.n_params * sizeof *b);
    CHECK_OK(effdim_mlp_init_params(&m, a, EFFDIM_INIT_TORCH, 2385, &e), &e);
    CHECK_OK(effdim_mlp_init_params(&m, b, EFFDIM_INIT_TORCH, 2385, &e), &e);
    CHECK(memcmp(a, b, m.n_params * sizeof *a) == 0);
    for (size_t l = 0; l < 2; ++l) {
        /* U(-c, c), c = 1/sqrt(fan_in): max |w| <= c, reaches near c, variance c^2/3 */
        double c = 1 / sqrt((double)sizes[l]), var = 0, mx = 0;
        size_t nw = sizes[l] * sizes[l + 1];
        for (size_t i = 0; i < nw; ++i) {
            double w = a[m.w_off[l] + i];
            var += w * w / (double)nw;
            mx = fabs(w) > mx ? fabs(w) : mx;
        }
        CHECK(mx <= c && mx > 0.99 * c);
        CHECK_CLOSE(var, c * c / 3, 0.08); /* 1200+ draws: sd of the estimate ~ 2.6% */
        double bmx = testnet_max_abs(a + m.b_off[l], sizes[l + 1]);
        CHECK(bmx <= c && bmx > 0.5 * c);
    }
    CHECK_OK(effdim_mlp_init_params(&m, b, EFFDIM_INIT_TORCH, 2386, &e), &e);
    CHECK(memcmp(a, b, m.n_params * sizeof *a) != 0);
    CHECK_OK(effdim_mlp_init_params(&m, b, EFFDIM_INIT_GLOROT, 2385, &e), &e);
    double g = sqrt(6.0 / (50 + 40));
    CHECK(testnet_max_abs(b, 2000) <= g && testnet_max_abs(b, 2000) > 0.99 * g);
    CHECK(testnet_max_abs(b + m.b_off[0], 40) == 0 && testnet_max_abs(b + m.b_off[1], 30) == 0);
    CHECK_STATUS(effdim_mlp_init_params(&m, b, (effdim_init_scheme)5, 1, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "scheme 5");
    free(a);
    free(b);
}

/* ---- finite differences -------------------------------------------------- */

/* One network 4 -> 6 -> 5 -> 3 (-> 1 for bce, labels 0/1) with `act` on
 * the hidden layers; the output layer is identity for cross_entropy and bce
 * and `act` too for mse (so the output activation's derivative is covered).
 * Returns max rel error (FD vs exact). */
static double fd_case(effdim_activation act, effdim_loss loss, effdim_reduction red, unsigned seed)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {4, 6, 5, loss == EFFDIM_LOSS_BCE ? 1 : 3};
    effdim_activation acts[] = {act, act, loss == EFFDIM_LOSS_MSE ? act : EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 3, sizes, acts, loss, red)) return INFINITY;
    effdim_dataset *ds = testnet_data(13, 4, loss == EFFDIM_LOSS_BCE ? 2 : 3,
                                   loss == EFFDIM_LOSS_MSE ? EFFDIM_TARGET_REAL : EFFDIM_TARGET_LABELS,
                                   seed);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 5, &e); /* several chunks */
    double *theta = malloc(m.n_params * sizeof *theta), *g = malloc(m.n_params * sizeof *g),
           *f = malloc(m.n_params * sizeof *f);
    double err = INFINITY, loss_v = NAN;
    if (!ds || !ws) goto done;
    CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, seed, &e), &e);
    for (size_t i = 0; i < m.n_params; ++i) theta[i] *= 1.9; /* livelier than the default */
    CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, ds->n, &loss_v, g, ws, &e), &e);
    CHECK_CLOSE(loss_at(&m, theta, ds, ws), loss_v, 1e-15);
    fd_grad(&m, theta, ds, 1e-5, f, ws);
    err = rel_err(g, f, m.n_params);
done:
    free(theta);
    free(g);
    free(f);
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);
    return err;
}

static void gradient_matches_central_differences_for_every_activation_loss_and_reduction(void)
{
    /* Predicted error of a central difference with step h = 1e-5 on a loss of
     * size O(1) with O(1) third derivatives: truncation h^2/6 |L'''| ~ 2e-11,
     * rounding eps |L| / h ~ 2e-11, so about 1e-10 relative to the largest
     * gradient entry (~0.1..1); the bound 1e-8 leaves a factor 100 margin
     * and still fails for any formula error (those are O(1)). */
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY, EFFDIM_ACT_RELU,     EFFDIM_ACT_TANH,
                                      EFFDIM_ACT_SIGMOID,  EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_GELU,
                                      EFFDIM_ACT_ELU};
    const size_t n_acts = sizeof acts / sizeof acts[0], n_loss = 3;
    double worst = 0;
    unsigned seed = 100;
    for (size_t a = 0; a < n_acts; ++a)
        for (int loss = 0; loss < (int)n_loss; ++loss)
            for (int red = 0; red < 2; ++red) {
                double r = fd_case(acts[a], (effdim_loss)loss, (effdim_reduction)red, ++seed);
                if (!CHECK(r < 1e-8))
                    check_note("%s %s %s: rel error %.3g", effdim_activation_name(acts[a]),
                               effdim_loss_name((effdim_loss)loss),
                               effdim_reduction_name((effdim_reduction)red), r);
                worst = r > worst ? r : worst;
            }
    check_note("%zu networks (7 activations x cross_entropy, mse, bce x mean, sum): max relative "
               "error vs central differences (h = 1e-5) %.2e", n_acts * n_loss * 2, worst);
}

static void activation_derivatives_match_differences(void)
{
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY, EFFDIM_ACT_RELU,     EFFDIM_ACT_TANH,
                                      EFFDIM_ACT_SIGMOID,  EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_GELU,
                                      EFFDIM_ACT_ELU};
    const double zs[] = {-7.31, -2.385, -0.417, 0.093, 0.61, 1.775, 3.9, 19.2, 23.5};
    const double h = 1e-5;
    double worst1 = 0, worst2 = 0;
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; ++a)
        for (size_t i = 0; i < sizeof zs / sizeof zs[0]; ++i) {
            effdim_activation act = acts[a];
            double z = zs[i], az = effdim_act_value(act, z);
            double d1 = (effdim_act_value(act, z + h) - effdim_act_value(act, z - h)) / (2 * h);
            double up = effdim_act_deriv(act, z + h, effdim_act_value(act, z + h));
            double dn = effdim_act_deriv(act, z - h, effdim_act_value(act, z - h));
            double d2 = (up - dn) / (2 * h);
            double e1 = fabs(effdim_act_deriv(act, z, az) - d1);
            double e2 = fabs(effdim_act_deriv2(act, z, az) - d2);
            if (!CHECK(e1 < 1e-9 && e2 < 1e-9))
                check_note("%s at %g: d1 error %.3g, d2 error %.3g", effdim_activation_name(act), z,
                           e1, e2);
            worst1 = e1 > worst1 ? e1 : worst1;
            worst2 = e2 > worst2 ? e2 : worst2;
        }
    check_note("act' vs differences %.2e, act'' vs differences %.2e (absolute)", worst1, worst2);
    /* PyTorch's softplus threshold: linear above 20; gelu's exact erf form */
    CHECK(effdim_act_value(EFFDIM_ACT_SOFTPLUS, 23.5) == 23.5);
    CHECK_CLOSE(effdim_act_value(EFFDIM_ACT_SOFTPLUS, 19.2), 19.2 + log1p(exp(-19.2)), 1e-15);
    CHECK_CLOSE(effdim_act_value(EFFDIM_ACT_GELU, -0.417), -0.417 * 0.5 * erfc(0.417 / sqrt(2.0)),
                1e-14);
    CHECK(effdim_act_value(EFFDIM_ACT_SIGMOID, -800.0) == 0.0);
    CHECK(effdim_act_value(EFFDIM_ACT_SIGMOID, 800.0) == 1.0);
    CHECK(effdim_act_deriv(EFFDIM_ACT_RELU, 0.0, 0.0) == 0.0);
    /* elu: e^z - 1 without cancellation near 0, continuous slope 1 at 0, and
     * PyTorch's branch at 0 (z <= 0 takes the exponential side) */
    CHECK_CLOSE(effdim_act_value(EFFDIM_ACT_ELU, -1e-9), -1e-9 + 5e-19, 1e-15);
    CHECK(effdim_act_value(EFFDIM_ACT_ELU, -800.0) == -1.0);
    CHECK(effdim_act_value(EFFDIM_ACT_ELU, 2.385) == 2.385);
    CHECK(effdim_act_deriv(EFFDIM_ACT_ELU, 0.0, 0.0) == 1.0);
    CHECK(effdim_act_deriv2(EFFDIM_ACT_ELU, 0.0, 0.0) == 1.0);
    CHECK(effdim_act_deriv2(EFFDIM_ACT_ELU, 1e-12, 1e-12) == 0.0);
}

/* ---- invariants --------------------------------------------------------- */

static void chunked_and_unchunked_passes_agree(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {7, 9, 5, 4};
    const effdim_activation acts[] = {EFFDIM_ACT_GELU, EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    for (int loss = 0; loss < 2; ++loss) {
        if (make_mlp(&m, 3, sizes, acts, (effdim_loss)loss, EFFDIM_REDUCTION_MEAN)) return;
        effdim_dataset *ds = testnet_data(101, 7, 4,
                                       loss ? EFFDIM_TARGET_REAL : EFFDIM_TARGET_LABELS, 7 + loss);
        effdim_mlp_ws *small = effdim_mlp_ws_alloc(&m, 7, &e), *big = effdim_mlp_ws_alloc(&m, 1024, &e);
        size_t P = m.n_params;
        double *theta = malloc(P * sizeof *theta), *g1 = malloc(P * sizeof *g1),
               *g2 = malloc(P * sizeof *g2), *G1 = malloc(101 * P * sizeof *G1),
               *G2 = malloc(101 * P * sizeof *G2);
        double l1, l2, a1, a2;
        CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 31, &e), &e);
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, 101, &l1, g1, small, &e), &e);
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, 101, &l2, g2, big, &e), &e);
        CHECK_CLOSE(l1, l2, 1e-13);
        CHECK_VEC_CLOSE(g1, g2, P, 1e-13);
        CHECK_OK(effdim_mlp_evaluate(&m, theta, ds, NULL, 101, &l1, &a1, small, &e), &e);
        CHECK_OK(effdim_mlp_evaluate(&m, theta, ds, NULL, 101, &l2, &a2, big, &e), &e);
        CHECK_CLOSE(l1, l2, 1e-13);
        CHECK(a1 == a2 || (isnan(a1) && isnan(a2)));
        CHECK_OK(effdim_mlp_per_sample_grads(&m, theta, ds, NULL, 101, G1, NULL, small, &e), &e);
        CHECK_OK(effdim_mlp_per_sample_grads(&m, theta, ds, NULL, 101, G2, NULL, big, &e), &e);
        CHECK_VEC_CLOSE(G1, G2, 101 * P, 1e-13);
        free(theta);
        free(g1);
        free(g2);
        free(G1);
        free(G2);
        effdim_mlp_ws_free(small);
        effdim_mlp_ws_free(big);
        effdim_dataset_free(ds);
    }
}

static void a_row_selection_equals_the_same_rows_as_a_data_set(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {5, 8, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_IDENTITY};
    const size_t rows[] = {17, 3, 40, 3, 29, 0, 41, 8, 12, 33, 5};
    const size_t nr = sizeof rows / sizeof rows[0];
    for (int loss = 0; loss < 2; ++loss) {
        if (make_mlp(&m, 2, sizes, acts, (effdim_loss)loss, EFFDIM_REDUCTION_SUM)) return;
        effdim_target_kind kind = loss ? EFFDIM_TARGET_REAL : EFFDIM_TARGET_LABELS;
        effdim_dataset *ds = testnet_data(42, 5, 3, kind, 90 + loss), *sub = NULL;
        CHECK_OK(effdim_dataset_alloc(nr, 5, 3, kind, &sub, &e), &e);
        if (!ds || !sub) return;
        for (size_t i = 0; i < nr; ++i) {
            memcpy(sub->X + i * 5, ds->X + rows[i] * 5, 5 * sizeof(double));
            if (loss)
                memcpy(sub->Y + i * 3, ds->Y + rows[i] * 3, 3 * sizeof(double));
            else
                sub->labels[i] = ds->labels[rows[i]];
        }
        effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 4, &e);
        size_t P = m.n_params;
        double *theta = malloc(P * sizeof *theta), *g1 = malloc(P * sizeof *g1),
               *g2 = malloc(P * sizeof *g2), l1, l2;
        CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_GLOROT, 3, &e), &e);
        for (size_t i = 0; i < P; ++i) theta[i] += 0.01 * (double)(i % 7);
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, rows, nr, &l1, g1, ws, &e), &e);
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, sub, NULL, nr, &l2, g2, ws, &e), &e);
        CHECK_CLOSE(l1, l2, 1e-15);
        CHECK_VEC_CLOSE(g1, g2, P, 1e-15);
        /* rows == NULL with n_rows < n: the first n_rows */
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, 6, &l1, NULL, ws, &e), &e);
        const size_t first6[] = {0, 1, 2, 3, 4, 5};
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, first6, 6, &l2, NULL, ws, &e), &e);
        CHECK_CLOSE(l1, l2, 1e-15);
        free(theta);
        free(g1);
        free(g2);
        effdim_mlp_ws_free(ws);
        effdim_dataset_free(ds);
        effdim_dataset_free(sub);
    }
}

static void per_sample_gradients_average_to_the_full_gradient(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {6, 10, 7, 4};
    const effdim_activation acts[] = {EFFDIM_ACT_SIGMOID, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    const size_t n = 23;
    for (int loss = 0; loss < 2; ++loss)
        for (int red = 0; red < 2; ++red) {
            if (make_mlp(&m, 3, sizes, acts, (effdim_loss)loss, (effdim_reduction)red)) return;
            effdim_dataset *ds = testnet_data(n, 6, 4, loss ? EFFDIM_TARGET_REAL : EFFDIM_TARGET_LABELS,
                                           50 + (unsigned long)(2 * loss + red));
            effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 6, &e);
            size_t P = m.n_params;
            double *theta = malloc(P * sizeof *theta), *g = malloc(P * sizeof *g),
                   *avg = calloc(P, sizeof *avg), *G = malloc(n * P * sizeof *G),
                   *li = malloc(n * sizeof *li), l, lsum = 0;
            CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 8, &e), &e);
            CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, n, &l, g, ws, &e), &e);
            CHECK_OK(effdim_mlp_per_sample_grads(&m, theta, ds, NULL, n, G, li, ws, &e), &e);
            double c = red == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
            for (size_t i = 0; i < n; ++i) {
                lsum += c * li[i];
                for (size_t j = 0; j < P; ++j) avg[j] += c * G[i * P + j];
            }
            CHECK_CLOSE(lsum, l, 1e-14);
            CHECK_VEC_CLOSE(avg, g, P, 1e-14);
            free(theta);
            free(g);
            free(avg);
            free(G);
            free(li);
            effdim_mlp_ws_free(ws);
            effdim_dataset_free(ds);
        }
}

/* ---- closed forms ------------------------------------------------------- */

static void linear_regression_gradient_matches_the_closed_form(void)
{
    /* f = X W^T + b, loss = c sum_ij r_ij^2, r = f - Y, c = 1/(n k) (mean) or 1 (sum):
     * dL/dW = 2 c r^T X, dL/db = 2 c colsum(r). Loops, no BLAS. */
    effdim_mlp m;
    effdim_error e;
    const size_t n = 17, d = 3, k = 2, sizes[] = {3, 2};
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY};
    double worst = 0;
    for (int red = 0; red < 2; ++red) {
        if (make_mlp(&m, 1, sizes, acts, EFFDIM_LOSS_MSE, (effdim_reduction)red)) return;
        effdim_dataset *ds = testnet_data(n, d, k, EFFDIM_TARGET_REAL, 77);
        effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 0, &e);
        double theta[8] = {0.385, -1.25, 2.07, 0.61, -0.093, 1.44, /* W (2,3) */ -0.71, 0.238};
        double g[8], want[8] = {0}, l, lw = 0;
        double c = red == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)(n * k) : 1.0;
        for (size_t i = 0; i < n; ++i)
            for (size_t o = 0; o < k; ++o) {
                double f = theta[6 + o];
                for (size_t j = 0; j < d; ++j) f += theta[o * d + j] * ds->X[i * d + j];
                double r = f - ds->Y[i * k + o];
                lw += c * r * r;
                for (size_t j = 0; j < d; ++j) want[o * d + j] += 2 * c * r * ds->X[i * d + j];
                want[6 + o] += 2 * c * r;
            }
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, n, &l, g, ws, &e), &e);
        CHECK_CLOSE(l, lw, 1e-14);
        CHECK_VEC_CLOSE(g, want, 8, 1e-14);
        double r = rel_err(g, want, 8);
        worst = r > worst ? r : worst;
        effdim_mlp_ws_free(ws);
        effdim_dataset_free(ds);
    }
    check_note("linear regression: max relative error vs closed form %.2e", worst);
}

static void logistic_regression_gradient_matches_the_closed_form(void)
{
    /* Two-class softmax on f = X W^T + b is logistic regression in u = f_1 - f_0:
     * l_i = log(1 + e^{u_i}) - t_i u_i, dl_i/du_i = sigmoid(u_i) - t_i,
     * so dL/dW_1 = c sum_i (s_i - t_i) x_i = -dL/dW_0 (same for b). */
    effdim_mlp m;
    effdim_error e;
    const size_t n = 19, d = 4, sizes[] = {4, 2};
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY};
    double worst = 0;
    for (int red = 0; red < 2; ++red) {
        if (make_mlp(&m, 1, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, (effdim_reduction)red)) return;
        effdim_dataset *ds = testnet_data(n, d, 2, EFFDIM_TARGET_LABELS, 78);
        effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 8, &e);
        double theta[10] = {0.52, -1.385, 0.27, 0.9, -0.33, 0.72, 1.05, -0.46, 0.155, -0.62};
        double g[10], want[10] = {0}, l, lw = 0;
        double c = red == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
        for (size_t i = 0; i < n; ++i) {
            double u = theta[9] - theta[8];
            for (size_t j = 0; j < d; ++j) u += (theta[4 + j] - theta[j]) * ds->X[i * d + j];
            double t = ds->labels[i] == 1 ? 1.0 : 0.0, s = 1 / (1 + exp(-u));
            lw += c * (log1p(exp(u)) - t * u);
            for (size_t j = 0; j < d; ++j) {
                want[4 + j] += c * (s - t) * ds->X[i * d + j];
                want[j] -= c * (s - t) * ds->X[i * d + j];
            }
            want[9] += c * (s - t);
            want[8] -= c * (s - t);
        }
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, n, &l, g, ws, &e), &e);
        CHECK_CLOSE(l, lw, 1e-14);
        CHECK_VEC_CLOSE(g, want, 10, 1e-14);
        double r = rel_err(g, want, 10);
        worst = r > worst ? r : worst;
        effdim_mlp_ws_free(ws);
        effdim_dataset_free(ds);
    }
    check_note("logistic regression: max relative error vs closed form %.2e", worst);
}

/* ---- the PyTorch fixture ------------------------------------------------ */

/* one case: returns the worst relative error over loss, grad, per-sample
 * grads and losses, outputs; INFINITY when it could not be read */
static double torch_case(hid_t file, const char *name)
{
    effdim_error e;
    hid_t g = H5Gopen2(file, name, H5P_DEFAULT);
    if (!CHECK(g >= 0)) return INFINITY;
    int64_t s64[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t ns = 0, nacts = 0, sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    char **actn = NULL, lossn[32], redn[32];
    effdim_activation acts[EFFDIM_MLP_MAX_LAYERS];
    effdim_loss loss = EFFDIM_LOSS_MSE;
    effdim_reduction red = EFFDIM_REDUCTION_MEAN;
    double want_loss = NAN, worst = INFINITY;
    effdim_mlp m;
    effdim_dataset *ds = NULL;
    effdim_mlp_ws *ws = NULL;
    double *theta = NULL, *grad = NULL, *wgrad = NULL, *G = NULL, *wG = NULL, *li = NULL,
           *wli = NULL, *out = NULL, *wout = NULL;
    int ok = CHECK_OK(effdim_h5_attr_read_int64s(g, "layer_sizes", s64, EFFDIM_MLP_MAX_LAYERS + 1,
                                                 &ns, &e), &e) &&
             CHECK_OK(effdim_h5_attr_read_strings(g, "activations", &actn, &nacts, &e), &e) &&
             CHECK_OK(effdim_h5_attr_read_string(g, "loss", lossn, sizeof lossn, &e), &e) &&
             CHECK_OK(effdim_h5_attr_read_string(g, "reduction", redn, sizeof redn, &e), &e) &&
             CHECK_OK(effdim_h5_attr_read_double(g, "loss_value", &want_loss, &e), &e) &&
             CHECK(nacts + 1 == ns);
    if (!ok) goto done;
    for (size_t i = 0; i < ns; ++i) sizes[i] = (size_t)s64[i];
    for (size_t i = 0; i < nacts; ++i) ok = ok && CHECK(effdim_activation_parse(actn[i], &acts[i], NULL) == 0);
    ok = ok && CHECK(effdim_loss_parse(lossn, &loss, NULL) == 0) && CHECK(effdim_reduction_parse(redn, &red, NULL) == 0);
    if (!ok || make_mlp(&m, nacts, sizes, acts, loss, red)) goto done;
    int rank;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    if (!CHECK_OK(effdim_h5_shape(g, "X", &rank, dims, &cls, &e), &e)) goto done;
    size_t n = dims[0], d = dims[1], k = sizes[nacts], P = m.n_params;
    effdim_target_kind kind = loss == EFFDIM_LOSS_MSE ? EFFDIM_TARGET_REAL : EFFDIM_TARGET_LABELS;
    if (!CHECK_OK(effdim_dataset_alloc(n, d, kind == EFFDIM_TARGET_REAL ? k : effdim_mlp_n_classes(&m),
                                       kind, &ds, &e), &e))
        goto done;
    theta = malloc(P * sizeof *theta);
    grad = malloc(P * sizeof *grad);
    wgrad = malloc(P * sizeof *wgrad);
    G = malloc(n * P * sizeof *G);
    wG = malloc(n * P * sizeof *wG);
    li = malloc(n * sizeof *li);
    wli = malloc(n * sizeof *wli);
    out = malloc(n * k * sizeof *out);
    wout = malloc(n * k * sizeof *wout);
    ok = CHECK_OK(effdim_h5_read_doubles(g, "theta", theta, P, &e), &e) &&
         CHECK_OK(effdim_h5_read_doubles(g, "X", ds->X, n * d, &e), &e) &&
         CHECK_OK(effdim_h5_read_doubles(g, "grad", wgrad, P, &e), &e) &&
         CHECK_OK(effdim_h5_read_doubles(g, "per_sample_grads", wG, n * P, &e), &e) &&
         CHECK_OK(effdim_h5_read_doubles(g, "per_sample_losses", wli, n, &e), &e) &&
         CHECK_OK(effdim_h5_read_doubles(g, "outputs", wout, n * k, &e), &e);
    if (ok && kind == EFFDIM_TARGET_REAL) {
        ok = CHECK_OK(effdim_h5_read_doubles(g, "Y", ds->Y, n * k, &e), &e);
    } else if (ok) {
        int64_t *lab = malloc(n * sizeof *lab);
        ok = CHECK_OK(effdim_h5_read_int64s(g, "labels", lab, n, &e), &e);
        for (size_t i = 0; ok && i < n; ++i) ds->labels[i] = (int32_t)lab[i];
        free(lab);
    }
    ws = effdim_mlp_ws_alloc(&m, 4, &e);
    if (!ok || !CHECK(ws != NULL)) goto done;
    double l;
    ok = CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, n, &l, grad, ws, &e), &e) &&
         CHECK_OK(effdim_mlp_per_sample_grads(&m, theta, ds, NULL, n, G, li, ws, &e), &e) &&
         CHECK_OK(effdim_mlp_predict(&m, theta, ds->X, n, out, ws, &e), &e);
    if (!ok) goto done;
    double r[5] = {fabs(l - want_loss) / fabs(want_loss), rel_err(grad, wgrad, P),
                   rel_err(G, wG, n * P), rel_err(li, wli, n), rel_err(out, wout, n * k)};
    static const char *what[5] = {"loss", "gradient", "per-sample gradients", "per-sample losses",
                                  "outputs"};
    worst = 0;
    for (int i = 0; i < 5; ++i) {
        if (!CHECK(r[i] <= 1e-12)) check_note("%s: %s rel error %.3g", name, what[i], r[i]);
        worst = r[i] > worst ? r[i] : worst;
    }
done:
    effdim_h5_strings_free(actn, nacts);
    free(theta);
    free(grad);
    free(wgrad);
    free(G);
    free(wG);
    free(li);
    free(wli);
    free(out);
    free(wout);
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);
    H5Gclose(g);
    return worst;
}

static void pytorch_fixture_loss_gradient_and_per_sample_gradients_agree(void)
{
    effdim_error e;
    hid_t file;
    if (!CHECK_OK(effdim_h5_open_read(check_fixture("mlp_torch.h5"), &file, &e), &e)) return;
    char **cases = NULL;
    size_t nc = 0;
    if (CHECK_OK(effdim_h5_attr_read_strings(file, "cases", &cases, &nc, &e), &e)) {
        CHECK(nc == 12); /* 7 cases of the first fixture, 5 of elu and bce */
        size_t bce = 0, elu = 0;
        for (size_t i = 0; i < nc; ++i) {
            bce += strstr(cases[i], "_bce") != NULL;
            elu += strncmp(cases[i], "elu_", 4) == 0;
        }
        CHECK(bce == 3 && elu == 4);
        double worst = 0;
        for (size_t i = 0; i < nc; ++i) {
            double w = torch_case(file, cases[i]);
            worst = w > worst ? w : worst;
        }
        check_note("%zu PyTorch cases: max relative error %.2e", nc, worst);
        effdim_h5_strings_free(cases, nc);
    }
    H5Fclose(file);
}

/* ---- evaluate, output Hessian ------------------------------------------- */

static void evaluate_accuracy_equals_a_hand_count(void)
{
    /* f = 2.385 x (identity weights, zero bias): the argmax is the largest x */
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {3, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 1, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN)) return;
    effdim_dataset *ds = NULL;
    if (!CHECK_OK(effdim_dataset_alloc(8, 3, 3, EFFDIM_TARGET_LABELS, &ds, &e), &e)) return;
    const double X[24] = {0.9, 0.1, 0.2,  0.1, 0.7, 0.3,  0.2, 0.3, 0.8,  1.5, -0.2, 0.4,
                          -0.5, -0.1, -0.3, 0.33, 0.31, 0.35, 0.6, 0.61, 0.2, 0.0, -1.0, 0.05};
    /* the argmaxes of the rows are 0 1 2 0 1 2 1 2; against y: rows 0, 1, 3, 5, 6 right -> 5/8 */
    const int32_t y[8] = {0, 1, 0, 0, 2, 2, 1, 1};
    memcpy(ds->X, X, sizeof X);
    memcpy(ds->labels, y, sizeof y);
    double theta[12] = {2.385, 0, 0, 0, 2.385, 0, 0, 0, 2.385, 0, 0, 0};
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 3, &e);
    double loss, acc, want = 0;
    CHECK_OK(effdim_mlp_evaluate(&m, theta, ds, NULL, 8, &loss, &acc, ws, &e), &e);
    CHECK(acc == 5.0 / 8.0);
    for (size_t i = 0; i < 8; ++i) {
        double s = 0;
        for (int j = 0; j < 3; ++j) s += exp(2.385 * X[i * 3 + j]);
        want += (log(s) - 2.385 * X[i * 3 + y[i]]) / 8;
    }
    CHECK_CLOSE(loss, want, 1e-14);
    const size_t rows[] = {2, 5, 6};
    CHECK_OK(effdim_mlp_evaluate(&m, theta, ds, rows, 3, NULL, &acc, ws, &e), &e);
    CHECK(acc == 2.0 / 3.0);
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);

    /* bce on one logit f = 2.385 x_0 - 0.5: class 1 when f > 0, i.e. x_0 > 0.2096 */
    {
        const size_t bs[] = {3, 1};
        effdim_mlp mb;
        if (make_mlp(&mb, 1, bs, acts, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_SUM)) return;
        if (!CHECK_OK(effdim_dataset_alloc(8, 3, 2, EFFDIM_TARGET_LABELS, &ds, &e), &e)) return;
        memcpy(ds->X, X, sizeof X);
        /* x_0 = 0.9 0.1 0.2 1.5 -0.5 0.33 0.6 0.0 -> predicted 1 0 0 1 0 1 1 0 */
        const int32_t yb[8] = {1, 0, 1, 1, 1, 1, 0, 0}; /* right: rows 0 1 3 5 7 -> 5/8 */
        memcpy(ds->labels, yb, sizeof yb);
        double tb[4] = {2.385, 0, 0, -0.5}, lb = 0;
        ws = effdim_mlp_ws_alloc(&mb, 3, &e);
        CHECK_OK(effdim_mlp_evaluate(&mb, tb, ds, NULL, 8, &loss, &acc, ws, &e), &e);
        CHECK(acc == 5.0 / 8.0);
        for (size_t i = 0; i < 8; ++i) {
            double f = 2.385 * X[i * 3] - 0.5, p = 1.0 / (1.0 + exp(-f));
            lb -= yb[i] ? log(p) : log(1.0 - p);
        }
        CHECK_CLOSE(loss, lb, 1e-14);
        effdim_mlp_ws_free(ws);
        effdim_dataset_free(ds);
    }

    /* real targets: accuracy is NaN */
    const size_t rs[] = {3, 2};
    if (make_mlp(&m, 1, rs, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN)) return;
    ds = testnet_data(5, 3, 2, EFFDIM_TARGET_REAL, 4);
    ws = effdim_mlp_ws_alloc(&m, 3, &e);
    CHECK_OK(effdim_mlp_evaluate(&m, theta, ds, NULL, 5, &loss, &acc, ws, &e), &e);
    CHECK(isnan(acc) && isfinite(loss));
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);
}

static void output_hessian_matches_differences_of_output_deltas(void)
{
    /* internal piece for Gauss-Newton products: d/dF of (dl/dF) applied to v */
    effdim_error e;
    const effdim_activation acts[] = {EFFDIM_ACT_IDENTITY};
    for (int loss = 0; loss < 3; ++loss)
        for (int red = 0; red < 2; ++red) {
            effdim_mlp m;
            int bce = loss == EFFDIM_LOSS_BCE;
            const size_t sizes[] = {3, bce ? 1 : 4}, nk = 5 * sizes[1];
            if (make_mlp(&m, 1, sizes, acts, (effdim_loss)loss, (effdim_reduction)red)) return;
            effdim_dataset *ds = testnet_data(5, 3, bce ? 2 : 4,
                                              loss == EFFDIM_LOSS_MSE ? EFFDIM_TARGET_REAL
                                                                      : EFFDIM_TARGET_LABELS,
                                              12);
            effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 8, &e);
            double theta[16], v[20], F[20], up[20], dn[20], hv[20], fd[20], sum;
            for (int i = 0; i < 16; ++i) theta[i] = (bce ? 1.9 : 0.37) * sin(1.7 * i + 0.3);
            for (int i = 0; i < 20; ++i) v[i] = cos(0.9 * i - 0.2);
            effdim_mlp_chunk c;
            CHECK_OK(effdim_mlp_chunk_load(ds, NULL, 0, 5, ws, &c, &e), &e);
            effdim_mlp_forward(&m, theta, c.X, 5, ws);
            memcpy(F, ws->A[0], nk * sizeof(double));
            effdim_mlp_output_hess_apply(&m, ws, 5, 0.75, v, hv);
            const double h = 1e-5;
            for (size_t i = 0; i < nk; ++i) ws->A[0][i] = F[i] + h * v[i];
            CHECK_OK(effdim_mlp_output(&m, &c, 0.75, 1, ws, &sum, &e), &e);
            memcpy(up, ws->D[0], nk * sizeof(double));
            for (size_t i = 0; i < nk; ++i) ws->A[0][i] = F[i] - h * v[i];
            CHECK_OK(effdim_mlp_output(&m, &c, 0.75, 1, ws, &sum, &e), &e);
            memcpy(dn, ws->D[0], nk * sizeof(double));
            for (size_t i = 0; i < nk; ++i) fd[i] = (up[i] - dn[i]) / (2 * h);
            CHECK_VEC_CLOSE(hv, fd, nk, 1e-8);
            if (bce) /* closed form: 0.75 p (1 - p) v */
                for (size_t i = 0; i < 5; ++i) {
                    double p = 1.0 / (1.0 + exp(-F[i]));
                    CHECK_CLOSE(hv[i], 0.75 * p * (1.0 - p) * v[i], 1e-14);
                }
            effdim_mlp_ws_free(ws);
            effdim_dataset_free(ds);
        }
}

/* ---- errors ------------------------------------------------------------- */

static void data_that_does_not_fit_is_refused_naming_the_spec_and_sizes(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {5, 6, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN)) return;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 4, &e);
    double theta[60] = {0}, loss, g[60];
    CHECK(m.n_params == 57);

    /* input width */
    effdim_dataset *ds = testnet_data(10, 4, 3, EFFDIM_TARGET_LABELS, 1);
    CHECK_STATUS(effdim_mlp_check_data(&m, ds, "gmm:n=10,d=4", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "gmm:n=10,d=4", "4 input features", "sizes[0] is 5");
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, NULL, 10, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "4 input features", "5");
    effdim_dataset_free(ds);

    /* labels >= outputs: by k, and by a value */
    ds = testnet_data(10, 5, 4, EFFDIM_TARGET_LABELS, 2);
    CHECK_STATUS(effdim_mlp_check_data(&m, ds, "spirals:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "spirals:n=10", "4 classes", "3 outputs");
    ds->k = 3;
    for (size_t i = 0; i < 10; ++i) ds->labels[i] = (int32_t)(i % 3);
    CHECK_OK(effdim_mlp_check_data(&m, ds, "spirals:n=10", &e), &e);
    CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, 10, &loss, g, ws, &e), &e);
    CHECK_CLOSE(loss, log(3.0), 1e-15); /* zero weights: uniform softmax */
    ds->labels[7] = 3;
    CHECK_STATUS(effdim_mlp_check_data(&m, ds, "spirals:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "spirals:n=10", "row 7", "label 3", "3 outputs");
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, NULL, 10, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 7", "label 3");
    ds->labels[7] = -2;
    CHECK_STATUS(effdim_mlp_evaluate(&m, theta, ds, NULL, 10, &loss, NULL, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 7", "label -2");
    ds->labels[7] = 1;

    /* row selections */
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, NULL, 0, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "no rows");
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, NULL, 11, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "11 rows requested", "has 10");
    const size_t rows[] = {2, 9, 10};
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, rows, 3, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "rows[2] = 10", "10 rows");

    /* wrong loss for the target kind */
    effdim_mlp mm;
    if (make_mlp(&mm, 2, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN)) return;
    ds->spec = malloc(32);
    strcpy(ds->spec, "csv:house.csv,target=y");
    CHECK_STATUS(effdim_mlp_loss_grad(&mm, theta, ds, NULL, 10, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "csv:house.csv,target=y", "labels need loss cross_entropy", "mse");
    effdim_dataset_free(ds);
    ds = testnet_data(10, 5, 3, EFFDIM_TARGET_REAL, 3);
    CHECK_STATUS(effdim_mlp_check_data(&m, ds, "regression:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "regression:n=10", "real-valued targets need loss mse", "cross_entropy");
    CHECK_OK(effdim_mlp_check_data(&mm, ds, "regression:n=10", &e), &e);
    effdim_dataset_free(ds);
    ds = testnet_data(10, 5, 2, EFFDIM_TARGET_REAL, 3);
    CHECK_STATUS(effdim_mlp_check_data(&mm, ds, "regression:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "regression:n=10", "2 target columns", "3 outputs");

    /* bce: one output, two classes, labels 0/1 */
    effdim_mlp mb1, mb3;
    const size_t s1[] = {5, 6, 1};
    if (make_mlp(&mb1, 2, s1, acts, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_MEAN) ||
        make_mlp(&mb3, 2, sizes, acts, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_MEAN))
        return;
    CHECK(effdim_mlp_n_classes(&mb1) == 2 && effdim_mlp_n_classes(&m) == 3);
    effdim_dataset_free(ds);
    ds = testnet_data(10, 5, 2, EFFDIM_TARGET_LABELS, 5);
    CHECK_OK(effdim_mlp_check_data(&mb1, ds, "spirals:n=10", &e), &e);
    CHECK_STATUS(effdim_mlp_check_data(&mb3, ds, "spirals:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "spirals:n=10", "bce needs one output", "has 3");
    ds->labels[4] = 2;
    CHECK_STATUS(effdim_mlp_check_data(&mb1, ds, "spirals:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "spirals:n=10", "row 4", "label 2");
    effdim_mlp_ws *wb = effdim_mlp_ws_alloc(&mb1, 4, &e);
    double tb[43] = {0};
    CHECK(mb1.n_params == 43);
    CHECK_STATUS(effdim_mlp_loss_grad(&mb1, tb, ds, NULL, 10, &loss, tb, wb, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 4", "label 2", "bce takes labels 0 and 1");
    ds->labels[4] = 1;
    CHECK_OK(effdim_mlp_loss_grad(&mb1, tb, ds, NULL, 10, &loss, NULL, wb, &e), &e);
    CHECK_CLOSE(loss, log(2.0), 1e-15); /* zero weights: p = 1/2 */
    ds->k = 3;
    CHECK_STATUS(effdim_mlp_check_data(&mb1, ds, "gmm:n=10,k=3", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "gmm:n=10,k=3", "3 classes", "bce takes two");
    effdim_mlp_ws_free(wb);
    effdim_dataset_free(ds);
    ds = testnet_data(10, 5, 1, EFFDIM_TARGET_REAL, 6);
    CHECK_STATUS(effdim_mlp_check_data(&mb1, ds, "regression:n=10", &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "real-valued targets need loss mse", "bce");

    /* a workspace sized for another network */
    const size_t other[] = {5, 7, 3};
    effdim_mlp mo;
    if (make_mlp(&mo, 2, other, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN)) return;
    CHECK_STATUS(effdim_mlp_predict(&mo, theta, ds->X, 10, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "workspace", "57 parameters", "66 parameters");
    effdim_dataset_free(ds);
    effdim_mlp_ws_free(ws);
}

/* ---- data-parallel calls (workspace of T > 1 workers) ------------------- */

/* One net, one data set: T = 2 and T = 3 against T = 1 for loss_grad,
 * evaluate and per_sample_grads, over all rows and over an index subset. */
static void compare_workers(const effdim_mlp *m, const effdim_dataset *ds, size_t n,
                            const size_t *rows, size_t chunk, unsigned long seed)
{
    effdim_error e;
    size_t P = m->n_params;
    effdim_mlp_ws *w1 = effdim_mlp_ws_alloc_workers(m, chunk, 1, &e),
                  *w2 = effdim_mlp_ws_alloc_workers(m, chunk, 2, &e),
                  *w3 = effdim_mlp_ws_alloc_workers(m, chunk, 3, &e);
    double *theta = malloc(P * sizeof *theta), *g1 = malloc(P * sizeof *g1),
           *g2 = malloc(P * sizeof *g2), *g2b = malloc(P * sizeof *g2b), *g3 = malloc(P * sizeof *g3),
           *G1 = malloc(n * P * sizeof *G1), *G2 = malloc(n * P * sizeof *G2),
           *r1 = malloc(n * sizeof *r1), *r2 = malloc(n * sizeof *r2);
    if (!CHECK(w1 && w2 && w3 && theta && g1 && g2 && g2b && g3 && G1 && G2 && r1 && r2)) goto done;
    CHECK(effdim_mlp_ws_workers(w1) == 1 && effdim_mlp_ws_workers(w2) == 2 &&
          effdim_mlp_ws_workers(w3) == 3);
    CHECK_OK(effdim_mlp_init_params(m, theta, EFFDIM_INIT_TORCH, seed, &e), &e);
    for (size_t i = 0; i < P; ++i) theta[i] *= 2.385; /* larger weights: larger, varied gradients */
    double l1 = NAN, l2 = NAN, l2b = NAN, l3 = NAN, a1 = NAN, a2 = NAN;
    int threads = effdim_blas_threads();
    CHECK_OK(effdim_mlp_loss_grad(m, theta, ds, rows, n, &l1, g1, w1, &e), &e);
    CHECK_OK(effdim_mlp_loss_grad(m, theta, ds, rows, n, &l2, g2, w2, &e), &e);
    CHECK_OK(effdim_mlp_loss_grad(m, theta, ds, rows, n, &l2b, g2b, w2, &e), &e);
    CHECK_OK(effdim_mlp_loss_grad(m, theta, ds, rows, n, &l3, g3, w3, &e), &e);
    CHECK(effdim_blas_threads() == threads); /* BLAS threads restored */
    CHECK_CLOSE(l2, l1, 1e-13);
    CHECK_CLOSE(l3, l1, 1e-13);
    CHECK_VEC_CLOSE(g2, g1, P, 1e-13);
    CHECK_VEC_CLOSE(g3, g1, P, 1e-13);
    /* bitwise reproducible for a given worker count */
    CHECK(memcmp(&l2, &l2b, sizeof l2) == 0 && memcmp(g2, g2b, P * sizeof *g2) == 0);
    /* loss only (grad NULL) is the same loss */
    CHECK_OK(effdim_mlp_loss_grad(m, theta, ds, rows, n, &l2b, NULL, w2, &e), &e);
    CHECK(memcmp(&l2, &l2b, sizeof l2) == 0);
    CHECK_OK(effdim_mlp_evaluate(m, theta, ds, rows, n, &l1, &a1, w1, &e), &e);
    CHECK_OK(effdim_mlp_evaluate(m, theta, ds, rows, n, &l2, &a2, w2, &e), &e);
    CHECK_CLOSE(l2, l1, 1e-13);
    CHECK(a1 == a2 || (isnan(a1) && isnan(a2)));
    CHECK_OK(effdim_mlp_per_sample_grads(m, theta, ds, rows, n, G1, r1, w1, &e), &e);
    CHECK_OK(effdim_mlp_per_sample_grads(m, theta, ds, rows, n, G2, r2, w2, &e), &e);
    /* same rows, same per-row arithmetic: identical */
    CHECK(memcmp(G1, G2, n * P * sizeof *G1) == 0 && memcmp(r1, r2, n * sizeof *r1) == 0);
done:
    free(theta);
    free(g1);
    free(g2);
    free(g2b);
    free(g3);
    free(G1);
    free(G2);
    free(r1);
    free(r2);
    effdim_mlp_ws_free(w1);
    effdim_mlp_ws_free(w2);
    effdim_mlp_ws_free(w3);
}

static void two_workers_give_the_one_worker_results_up_to_rounding(void)
{
    effdim_mlp m;
    const size_t s1[] = {7, 9, 5, 4}, s2[] = {5, 8, 3}, s3[] = {6, 11, 10, 7, 3};
    const effdim_activation a1[] = {EFFDIM_ACT_GELU, EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY},
                            a2[] = {EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_IDENTITY},
                            a3[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_SIGMOID, EFFDIM_ACT_RELU,
                                    EFFDIM_ACT_IDENTITY};
    const struct { size_t L; const size_t *sizes; const effdim_activation *acts; } nets[] = {
        {3, s1, a1}, {2, s2, a2}, {4, s3, a3}};
    /* row counts with chunk 8: 13 chunks (last partial), 8 whole chunks, 2
     * chunks, one chunk exactly, less than one chunk */
    const size_t counts[] = {101, 64, 9, 8, 5};
    size_t sub[47];
    for (size_t i = 0; i < 47; ++i) sub[i] = (i * 37 + 11) % 90; /* a shuffled subset, repeats */
    sub[40] = sub[3];
    for (size_t ni = 0; ni < 3; ++ni)
        for (int loss = 0; loss < 2; ++loss)
            for (int red = 0; red < 2; ++red) {
                size_t L = nets[ni].L, k = nets[ni].sizes[L], d = nets[ni].sizes[0];
                if (make_mlp(&m, L, nets[ni].sizes, nets[ni].acts, (effdim_loss)loss,
                             (effdim_reduction)red))
                    return;
                effdim_target_kind kind = loss ? EFFDIM_TARGET_REAL : EFFDIM_TARGET_LABELS;
                effdim_dataset *ds = testnet_data(101, d, k, kind, 300 + 4 * ni + 2 * loss + red);
                if (!ds) return;
                for (size_t c = 0; c < sizeof counts / sizeof counts[0]; ++c)
                    compare_workers(&m, ds, counts[c], NULL, 8, 17 + c);
                compare_workers(&m, ds, 47, sub, 8, 29);  /* rows != NULL, 6 chunks */
                compare_workers(&m, ds, 47, sub, 64, 31); /* rows != NULL, one chunk */
                effdim_dataset_free(ds);
            }
}

static void errors_in_a_later_part_are_reported_with_their_row(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {4, 6, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN)) return;
    effdim_dataset *ds = testnet_data(40, 4, 3, EFFDIM_TARGET_LABELS, 77);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc_workers(&m, 8, 2, &e);
    size_t P = m.n_params;
    double *theta = malloc(P * sizeof *theta), *g = malloc(P * sizeof *g), *G = malloc(40 * P * sizeof *G);
    double loss = 0, acc = 0;
    if (!CHECK(ds && ws && theta && g && G)) goto done;
    CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 5, &e), &e);
    int threads = effdim_blas_threads();
    /* 5 chunks of 8: part 0 = rows 0..15, part 1 = rows 16..39 */
    ds->labels[35] = 3; /* = sizes[L]: out of range, in the second part */
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, NULL, 40, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 35", "label 3", "3 outputs");
    CHECK_STATUS(effdim_mlp_evaluate(&m, theta, ds, NULL, 40, &loss, &acc, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 35", "label 3");
    CHECK_STATUS(effdim_mlp_per_sample_grads(&m, theta, ds, NULL, 40, G, NULL, ws, &e),
                 EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 35", "label 3");
    /* errors in both parts: the first part's is reported (deterministic) */
    ds->labels[2] = -4;
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, NULL, 40, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "row 2", "label -4");
    ds->labels[2] = 1;
    ds->labels[35] = 2;
    /* a row index out of range in the second part of a selection */
    size_t rows[30];
    for (size_t i = 0; i < 30; ++i) rows[i] = (i * 7) % 40;
    rows[27] = 41;
    CHECK_STATUS(effdim_mlp_loss_grad(&m, theta, ds, rows, 30, &loss, g, ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "rows[27] = 41", "40 rows");
    CHECK(effdim_blas_threads() == threads); /* restored after a failure too */
    rows[27] = 39;
    CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, rows, 30, &loss, g, ws, &e), &e);
    CHECK(isfinite(loss) && loss > 0);
done:
    free(theta);
    free(g);
    free(G);
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);
}

static void frozen_relu_gradients_split_over_workers_too(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {6, 12, 9, 4};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN)) return;
    effdim_dataset *ds = testnet_data(101, 6, 4, EFFDIM_TARGET_LABELS, 606);
    effdim_mlp_ws *w1 = effdim_mlp_ws_alloc_workers(&m, 8, 1, &e),
                  *w2 = effdim_mlp_ws_alloc_workers(&m, 8, 2, &e);
    size_t P = m.n_params;
    double *theta = malloc(P * sizeof *theta), *g1 = malloc(P * sizeof *g1),
           *g2 = malloc(P * sizeof *g2), *gf = malloc(P * sizeof *gf);
    effdim_curv_masks *mk = NULL;
    double l1 = 0, l2 = 0, lf = 0;
    if (!CHECK(ds && w1 && w2 && theta && g1 && g2 && gf)) goto done;
    CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 12, &e), &e);
    mk = effdim_curv_masks_alloc(&m, theta, ds, NULL, 101, w2, &e);
    if (!CHECK(mk != NULL)) goto done;
    CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, 101, &l1, g1, w1, &e), &e);
    CHECK_OK(effdim_curv_frozen_loss_grad(&m, theta, ds, NULL, 101, mk, &l2, g2, w2, &e), &e);
    CHECK_OK(effdim_curv_frozen_loss_grad(&m, theta, ds, NULL, 101, mk, &lf, gf, w1, &e), &e);
    CHECK_CLOSE(l2, l1, 1e-13);
    CHECK_VEC_CLOSE(g2, g1, P, 1e-13);
    CHECK_VEC_CLOSE(g2, gf, P, 1e-13);
    /* away from theta the frozen patterns matter: T = 2 still equals T = 1 */
    for (size_t i = 0; i < P; ++i) theta[i] += 0.0137 * sin(2.385 * (double)i);
    CHECK_OK(effdim_curv_frozen_loss_grad(&m, theta, ds, NULL, 101, mk, &l2, g2, w2, &e), &e);
    CHECK_OK(effdim_curv_frozen_loss_grad(&m, theta, ds, NULL, 101, mk, &lf, gf, w1, &e), &e);
    CHECK_CLOSE(l2, lf, 1e-13);
    CHECK_VEC_CLOSE(g2, gf, P, 1e-13);
done:
    effdim_curv_masks_free(mk);
    free(theta);
    free(g1);
    free(g2);
    free(gf);
    effdim_mlp_ws_free(w1);
    effdim_mlp_ws_free(w2);
    effdim_dataset_free(ds);
}

static void workspace_memory_is_bounded_by_the_chunk(void)
{
    effdim_mlp m;
    effdim_error e;
    const size_t sizes[] = {784, 300, 100, 10};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    if (make_mlp(&m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN)) return;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 0, &e);
    if (!CHECK(ws != NULL)) return;
    CHECK(effdim_mlp_ws_chunk(ws) == 512); /* the documented default */
    int threads = effdim_blas_threads(); /* the default worker count */
    CHECK(effdim_mlp_ws_workers(ws) == (size_t)(threads > 1 ? threads : 1));
    effdim_mlp_ws_free(ws);
    ws = effdim_mlp_ws_alloc_workers(&m, 1024, 1, &e);
    if (!CHECK(ws != NULL)) return;
    CHECK(effdim_mlp_ws_chunk(ws) == 1024 && effdim_mlp_ws_workers(ws) == 1);
    /* one worker: 8 (chunk (d + k + 3 sum widths + 1) + P) + 4 chunk + the
     * struct, plus < 64 bytes padding per buffer (13 buffers) */
    size_t bound = 8 * (1024 * (784 + 10 + 3 * 410 + 1) + 266610) + 4 * 1024 + sizeof(effdim_mlp_ws);
    size_t bytes = effdim_mlp_ws_bytes(ws);
    check_note("workspace for 784-300-100-10, chunk 1024: %zu bytes (formula %zu)", bytes, bound);
    CHECK(bytes >= bound && bytes <= bound + 64 * 13);
    effdim_mlp_ws_free(ws);
    /* T workers: T times that plus T-1 gradient accumulators (8 P bytes each) */
    for (size_t T = 2; T <= 3; ++T) {
        ws = effdim_mlp_ws_alloc_workers(&m, 1024, T, &e);
        if (!CHECK(ws != NULL)) return;
        size_t bound_t = T * bound + (T - 1) * 8 * 266610;
        bytes = effdim_mlp_ws_bytes(ws);
        check_note("%zu workers: %zu bytes (formula %zu)", T, bytes, bound_t);
        CHECK(effdim_mlp_ws_workers(ws) == T);
        CHECK(bytes >= bound_t && bytes <= bound_t + T * 64 * 13);
        effdim_mlp_ws_free(ws);
    }
    ws = effdim_mlp_ws_alloc_workers(&m, 4, 1000, &e); /* clamped */
    CHECK(ws && effdim_mlp_ws_workers(ws) == 64);
    effdim_mlp_ws_free(ws);
    effdim_mlp_ws_free(NULL);
    CHECK(effdim_mlp_ws_alloc(NULL, 4, &e) == NULL);
    CHECK_MSG(&e, "not initialised");
}

CHECK_TESTS({"names round trip and unknown names are refused", names_round_trip_and_unknown_names_are_refused},
            {"the parameter layout is PyTorch order", the_parameter_layout_is_pytorch_order},
            {"bad network descriptions are refused with the reason", bad_network_descriptions_are_refused_with_the_reason},
            {"initialisations follow their bounds and the seed", initialisations_follow_their_bounds_and_the_seed},
            {"gradient matches central differences for every activation, loss and reduction",
             gradient_matches_central_differences_for_every_activation_loss_and_reduction},
            {"activation derivatives match differences", activation_derivatives_match_differences},
            {"chunked and unchunked passes agree", chunked_and_unchunked_passes_agree},
            {"a row selection equals the same rows as a data set", a_row_selection_equals_the_same_rows_as_a_data_set},
            {"per-sample gradients average to the full gradient", per_sample_gradients_average_to_the_full_gradient},
            {"linear regression gradient matches the closed form", linear_regression_gradient_matches_the_closed_form},
            {"logistic regression gradient matches the closed form", logistic_regression_gradient_matches_the_closed_form},
            {"PyTorch fixture: loss, gradient and per-sample gradients agree",
             pytorch_fixture_loss_gradient_and_per_sample_gradients_agree},
            {"evaluate's accuracy equals a hand count", evaluate_accuracy_equals_a_hand_count},
            {"output Hessian matches differences of output deltas", output_hessian_matches_differences_of_output_deltas},
            {"data that does not fit is refused naming the spec and sizes",
             data_that_does_not_fit_is_refused_naming_the_spec_and_sizes},
            {"two workers give the one-worker results up to rounding",
             two_workers_give_the_one_worker_results_up_to_rounding},
            {"errors in a later part are reported with their row",
             errors_in_a_later_part_are_reported_with_their_row},
            {"frozen relu gradients split over workers too", frozen_relu_gradients_split_over_workers_too},
            {"workspace memory is bounded by the chunk", workspace_memory_is_bounded_by_the_chunk})
