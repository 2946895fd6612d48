/* tests/test_diag.c: the diagonal curvature estimators (lib/diag.c).
 *
 * Oracles, cheapest first:
 * - the dense GGN built from Jacobians obtained independently of lib/diag.c:
 *   row c of J_i is the per-sample gradient (effdim_mlp_per_sample_grads) of
 *   an mse-sum copy of the network with target f_i - e_c / 2, whose gradient
 *   is exactly J_i^T e_c; G = s sum_i J_i^T H_i J_i with the closed-form
 *   output Hessian H_i. Also the diagonal of hvp.h's GGN operator;
 * - the exact Hessian diagonal of hvp.h's R-operator Hessian applied to unit
 *   vectors, for tanh / sigmoid / softplus / gelu networks and both losses;
 * - theory: for relu hidden layers, identity output and mse the residual term
 *   of the Hessian vanishes almost everywhere, so H == GGN;
 * - the empirical Fisher against the mean of squared per-sample gradients;
 * - Hutchinson on dense matrices with a known diagonal (rotated spectra, so
 *   Rademacher probes are not exact), checked against its own standard
 *   errors; Rademacher probes are exact on a diagonal matrix;
 * - the Monte-Carlo GGN against the exact GGN within its standard errors, and
 *   its error shrinking as the number of samples grows;
 * - PyTorch (tests/fixtures/diag_adam_torch.h5 from tests/make_fixture_diag.py):
 *   30 Adam steps on fixed minibatches, replayed with effdim's MLP and
 *   optimiser; exp_avg_sq and its bias correction agree to 1e-12;
 * - compare: N_eff of a diagonal against its closed form, Spearman against the
 *   closed form 1 - 6 sum d^2 / (n (n^2 - 1)) on a known permutation,
 *   alignment on a diagonal operator whose eigenvectors are unit vectors (= 1),
 *   the Schur-Horn majorisation of an exact diagonal by its eigenvalues;
 * - every error case (unknown method, ivon without hess, adam without
 *   exp_avg_sq, an exact Hessian too costly without force) with its message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/compare.h"
#include "effdim/data.h"
#include "effdim/dense.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/operator.h"
#include "effdim/optim.h"
#include "effdim/spectrum.h"
#include "h5io.h"

/* ---- problems ---- */

typedef struct problem {
    effdim_mlp m;
    double *theta;         /* (P) */
    effdim_dataset *ds;
} problem;

static void problem_free(problem *p)
{
    free(p->theta);
    effdim_dataset_free(p->ds);
    memset(p, 0, sizeof *p);
}

/* A network with the given widths and hidden activation (identity output),
 * on n rows of data: labels from a Gaussian mixture (cross-entropy) or real
 * targets from a teacher (mse). Parameters are PyTorch's init times `gain`
 * (a larger gain makes saturated, strongly curved units). */
static int problem_make(problem *p, size_t L, const size_t *sizes, const effdim_activation *acts,
                        effdim_loss loss, effdim_reduction red, size_t n, double gain,
                        uint64_t seed)
{
    effdim_error err;
    memset(p, 0, sizeof *p);
    int ok = CHECK_OK(effdim_mlp_init(&p->m, L, sizes, acts, loss, red, &err), &err);
    if (!ok) return 0;
    p->theta = malloc(p->m.n_params * sizeof(double));
    ok = ok && CHECK_OK(effdim_mlp_init_params(&p->m, p->theta, EFFDIM_INIT_TORCH, seed, &err), &err);
    for (size_t j = 0; ok && j < p->m.n_params; ++j) p->theta[j] *= gain;
    if (loss != EFFDIM_LOSS_MSE) /* bce: two classes for its one logit */
        ok = ok && CHECK_OK(effdim_gen_gmm(n, sizes[0], effdim_mlp_n_classes(&p->m), 1.7, seed + 11,
                                           &p->ds, &err), &err);
    else
        ok = ok && CHECK_OK(effdim_gen_teacher(n, sizes[0], 6, sizes[L], 0, 0.3, seed + 13, &p->ds,
                                               &err), &err);
    return ok;
}

/* 5 -> 7 -> 6 -> 4 (-> 1 for bce) with the given hidden activations */
static int problem_small(problem *p, effdim_activation a0, effdim_activation a1, effdim_loss loss,
                         effdim_reduction red, size_t n, uint64_t seed)
{
    size_t sizes[] = {5, 7, 6, loss == EFFDIM_LOSS_BCE ? 1 : 4};
    effdim_activation acts[] = {a0, a1, EFFDIM_ACT_IDENTITY};
    return problem_make(p, 3, sizes, acts, loss, red, n, 1.9, seed);
}

/* ---- the dense GGN from Jacobians (independent of lib/diag.c) ---- */

/* J (n, k, P): J[i][c] = dF_ic/dtheta, from per-sample gradients of an
 * mse-sum copy of the network with targets f_i - e_c / 2. */
static int jacobians(const problem *p, double *J)
{
    effdim_error err;
    const effdim_mlp *m = &p->m;
    size_t n = p->ds->n, k = m->sizes[m->n_layers], P = m->n_params, d = m->sizes[0];
    effdim_mlp mse;
    int ok = CHECK_OK(effdim_mlp_init(&mse, m->n_layers, m->sizes, m->act, EFFDIM_LOSS_MSE,
                                      EFFDIM_REDUCTION_SUM, &err), &err);
    effdim_dataset *t = NULL;
    ok = ok && CHECK_OK(effdim_dataset_alloc(n, d, k, EFFDIM_TARGET_REAL, &t, &err), &err);
    effdim_mlp_ws *ws = ok ? effdim_mlp_ws_alloc(&mse, 64, &err) : NULL;
    double *F = malloc(n * k * sizeof(double)), *G = malloc(n * P * sizeof(double));
    ok = ok && CHECK(ws && F && G);
    if (ok) memcpy(t->X, p->ds->X, n * d * sizeof(double));
    ok = ok && CHECK_OK(effdim_mlp_predict(&mse, p->theta, t->X, n, F, ws, &err), &err);
    for (size_t c = 0; ok && c < k; ++c) {
        for (size_t i = 0; i < n * k; ++i) t->Y[i] = F[i];
        for (size_t i = 0; i < n; ++i) t->Y[i * k + c] -= 0.5;
        ok = CHECK_OK(effdim_mlp_per_sample_grads(&mse, p->theta, t, NULL, n, G, NULL, ws, &err), &err);
        for (size_t i = 0; ok && i < n; ++i) memcpy(J + (i * k + c) * P, G + i * P, P * sizeof(double));
    }
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(t);
    free(F);
    free(G);
    return ok;
}

/* The output Hessian H (k, k) of row i at the outputs f (k). */
static void output_hessian(const effdim_mlp *m, const double *f, double *H)
{
    size_t k = m->sizes[m->n_layers];
    memset(H, 0, k * k * sizeof(double));
    if (m->loss == EFFDIM_LOSS_MSE) {
        double q = 2.0 * (m->reduction == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)k : 1.0);
        for (size_t a = 0; a < k; ++a) H[a * k + a] = q;
        return;
    }
    if (m->loss == EFFDIM_LOSS_BCE) { /* one logit: p (1 - p) */
        double pr = 1.0 / (1.0 + exp(-f[0]));
        H[0] = pr * (1.0 - pr);
        return;
    }
    double mx = f[0], sum = 0.0, pr[64];
    for (size_t a = 1; a < k; ++a) mx = f[a] > mx ? f[a] : mx;
    for (size_t a = 0; a < k; ++a) sum += (pr[a] = exp(f[a] - mx));
    for (size_t a = 0; a < k; ++a) pr[a] /= sum;
    for (size_t a = 0; a < k; ++a)
        for (size_t b = 0; b < k; ++b) H[a * k + b] = (a == b ? pr[a] : 0.0) - pr[a] * pr[b];
}

/* The diagonal of G = s sum_i J_i^T H_i J_i. */
static int dense_ggn_diag(const problem *p, double *diag)
{
    effdim_error err;
    const effdim_mlp *m = &p->m;
    size_t n = p->ds->n, k = m->sizes[m->n_layers], P = m->n_params;
    double *J = malloc(n * k * P * sizeof(double)), *F = malloc(n * k * sizeof(double));
    double H[64 * 64];
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(m, 32, &err);
    int ok = CHECK(J && F && ws && k <= 64) && jacobians(p, J) &&
             CHECK_OK(effdim_mlp_predict(m, p->theta, p->ds->X, n, F, ws, &err), &err);
    double s = m->reduction == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
    memset(diag, 0, P * sizeof(double));
    for (size_t i = 0; ok && i < n; ++i) {
        output_hessian(m, F + i * k, H);
        const double *Ji = J + i * k * P;
        for (size_t j = 0; j < P; ++j) {
            double acc = 0.0;
            for (size_t a = 0; a < k; ++a)
                for (size_t b = 0; b < k; ++b) acc += Ji[a * P + j] * H[a * k + b] * Ji[b * P + j];
            diag[j] += s * acc;
        }
    }
    effdim_mlp_ws_free(ws);
    free(J);
    free(F);
    return ok;
}

/* The diagonal of an hvp.h operator (curvature, exact) by unit vectors. */
static int operator_diag(const problem *p, effdim_curvature curv, double *diag)
{
    effdim_error err;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.curvature = curv;
    hp.method = EFFDIM_HVP_EXACT;
    effdim_operator *op = NULL;
    int ok = CHECK_OK(effdim_hvp_operator(&p->m, p->theta, p->ds, NULL, p->ds->n, &hp, NULL, &op,
                                          &err), &err);
    ok = ok && CHECK_OK(effdim_diag_of_operator(op, 16, diag, &err), &err);
    effdim_operator_free(op);
    return ok;
}

static double rel_diff(const double *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t j = 0; j < n; ++j) {
        num = fmax(num, fabs(a[j] - b[j]));
        den = fmax(den, fabs(b[j]));
    }
    return num / den;
}

/* ======================================================================== */
/* GGN                                                                      */
/* ======================================================================== */

static void check_ggn_against_dense(effdim_activation a0, effdim_activation a1, effdim_loss loss,
                                    effdim_reduction red, uint64_t seed)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, a0, a1, loss, red, 37, seed)) return;
    size_t P = p.m.n_params;
    double *want = malloc(P * sizeof(double)), *got = malloc(P * sizeof(double));
    double *op = malloc(P * sizeof(double));
    if (dense_ggn_diag(&p, want) &&
        CHECK_OK(effdim_diag_ggn(&p.m, p.theta, p.ds, NULL, p.ds->n, NULL, got, NULL, &err), &err)) {
        CHECK_VEC_CLOSE(got, want, P, 1e-10);
        check_note("%s/%s %s %s: max rel diff vs dense Jacobian GGN %.2e",
                   effdim_activation_name(a0), effdim_activation_name(a1), effdim_loss_name(loss),
                   effdim_reduction_name(red), rel_diff(got, want, P));
    }
    if (operator_diag(&p, EFFDIM_CURV_GGN, op)) CHECK_VEC_CLOSE(got, op, P, 1e-10);
    free(want);
    free(got);
    free(op);
    problem_free(&p);
}

static void test_ggn_dense(void)
{
    check_ggn_against_dense(EFFDIM_ACT_TANH, EFFDIM_ACT_SIGMOID, EFFDIM_LOSS_CROSS_ENTROPY,
                            EFFDIM_REDUCTION_MEAN, 3);
    check_ggn_against_dense(EFFDIM_ACT_RELU, EFFDIM_ACT_GELU, EFFDIM_LOSS_CROSS_ENTROPY,
                            EFFDIM_REDUCTION_SUM, 4);
    check_ggn_against_dense(EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_TANH, EFFDIM_LOSS_MSE,
                            EFFDIM_REDUCTION_MEAN, 5);
    check_ggn_against_dense(EFFDIM_ACT_TANH, EFFDIM_ACT_RELU, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_SUM,
                            6);
}

/* The same numbers whatever the chunking, the block size and a row subset. */
static void test_ggn_chunking(void)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, EFFDIM_ACT_TANH, EFFDIM_ACT_GELU, EFFDIM_LOSS_CROSS_ENTROPY,
                       EFFDIM_REDUCTION_MEAN, 41, 8))
        return;
    size_t P = p.m.n_params;
    double *a = malloc(P * sizeof(double)), *b = malloc(P * sizeof(double));
    effdim_diag_params dp = effdim_diag_default_params();
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&p.m, 6, &err);
    CHECK_OK(effdim_diag_ggn(&p.m, p.theta, p.ds, NULL, 41, NULL, a, NULL, &err), &err);
    dp.mem_budget = 1; /* one row per block */
    CHECK_OK(effdim_diag_ggn(&p.m, p.theta, p.ds, NULL, 41, &dp, b, ws, &err), &err);
    CHECK_VEC_CLOSE(b, a, P, 1e-13);
    CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, 41, NULL, a, NULL, &err), &err);
    CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, 41, &dp, b, ws, &err), &err);
    CHECK_VEC_CLOSE(b, a, P, 1e-13);
    /* a row selection gives the diagonal of the loss over those rows:
     * rows {3, 9, 17} twice each = the mean over the three */
    size_t rows[] = {3, 9, 17, 17, 9, 3};
    effdim_dataset *sub = NULL;
    CHECK_OK(effdim_dataset_copy(p.ds, &sub, &err), &err);
    for (size_t r = 0; r < 3; ++r) {
        memcpy(sub->X + r * 5, p.ds->X + rows[r] * 5, 5 * sizeof(double));
        sub->labels[r] = p.ds->labels[rows[r]];
    }
    CHECK_OK(effdim_diag_ef(&p.m, p.theta, p.ds, rows, 6, &dp, a, ws, &err), &err);
    CHECK_OK(effdim_diag_ef(&p.m, p.theta, sub, NULL, 3, NULL, b, NULL, &err), &err);
    CHECK_VEC_CLOSE(a, b, P, 1e-13);
    effdim_dataset_free(sub);
    effdim_mlp_ws_free(ws);
    free(a);
    free(b);
    problem_free(&p);
}

/* ======================================================================== */
/* Hessian                                                                  */
/* ======================================================================== */

static void check_hessian_exact(effdim_activation a0, effdim_activation a1, effdim_loss loss,
                                effdim_reduction red, uint64_t seed)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, a0, a1, loss, red, 29, seed)) return;
    size_t P = p.m.n_params;
    double *want = malloc(P * sizeof(double)), *got = malloc(P * sizeof(double));
    if (operator_diag(&p, EFFDIM_CURV_HESSIAN, want) &&
        CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, p.ds->n, NULL, got, NULL, &err),
                 &err)) {
        CHECK_VEC_CLOSE(got, want, P, 1e-10);
        size_t neg = 0;
        for (size_t j = 0; j < P; ++j) neg += want[j] < 0.0;
        check_note("%s/%s %s %s: max rel diff vs R-operator unit vectors %.2e (%zu negative entries)",
                   effdim_activation_name(a0), effdim_activation_name(a1), effdim_loss_name(loss),
                   effdim_reduction_name(red), rel_diff(got, want, P), neg);
    }
    free(want);
    free(got);
    problem_free(&p);
}

static void test_hessian_exact(void)
{
    check_hessian_exact(EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_LOSS_CROSS_ENTROPY,
                        EFFDIM_REDUCTION_MEAN, 21);
    check_hessian_exact(EFFDIM_ACT_SIGMOID, EFFDIM_ACT_SOFTPLUS, EFFDIM_LOSS_MSE,
                        EFFDIM_REDUCTION_MEAN, 22);
    check_hessian_exact(EFFDIM_ACT_GELU, EFFDIM_ACT_RELU, EFFDIM_LOSS_CROSS_ENTROPY,
                        EFFDIM_REDUCTION_SUM, 23);
    check_hessian_exact(EFFDIM_ACT_RELU, EFFDIM_ACT_TANH, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_SUM, 24);
}

/* Deeper networks carry residual factor rows through several layers. */
static void test_hessian_deep(void)
{
    effdim_error err;
    problem p;
    size_t sizes[] = {4, 6, 5, 7, 5, 3};
    effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_SIGMOID,
                                EFFDIM_ACT_GELU, EFFDIM_ACT_IDENTITY};
    for (int loss = 0; loss < 2; ++loss) {
        if (!problem_make(&p, 5, sizes, acts, loss ? EFFDIM_LOSS_MSE : EFFDIM_LOSS_CROSS_ENTROPY,
                          EFFDIM_REDUCTION_MEAN, 31, 2.2, 91 + (uint64_t)loss))
            return;
        size_t P = p.m.n_params, nf = 0;
        effdim_diag_hessian_cost(&p.m, &nf);
        CHECK(nf == 3 + 5 + 7); /* C + widths of the curved layers 3 and 2 */
        double *want = malloc(P * sizeof(double)), *got = malloc(P * sizeof(double));
        effdim_diag_params dp = effdim_diag_default_params();
        dp.mem_budget = 4096; /* a few rows per block */
        if (operator_diag(&p, EFFDIM_CURV_HESSIAN, want) &&
            CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, p.ds->n, &dp, got, NULL, &err),
                     &err)) {
            CHECK_VEC_CLOSE(got, want, P, 1e-10);
            check_note("5 layers (tanh, softplus, sigmoid, gelu) %s: max rel diff %.2e",
                       loss ? "mse" : "cross_entropy", rel_diff(got, want, P));
        }
        free(want);
        free(got);
        problem_free(&p);
    }
}

/* A curved output activation (tanh on the outputs) adds its own residual. */
static void test_hessian_curved_output(void)
{
    effdim_error err;
    problem p;
    size_t sizes[] = {4, 6, 3};
    effdim_activation acts[] = {EFFDIM_ACT_SOFTPLUS, EFFDIM_ACT_TANH};
    if (!problem_make(&p, 2, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, 23, 1.6, 31))
        return;
    size_t P = p.m.n_params;
    double *want = malloc(P * sizeof(double)), *got = malloc(P * sizeof(double));
    if (operator_diag(&p, EFFDIM_CURV_HESSIAN, want) &&
        CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, p.ds->n, NULL, got, NULL, &err), &err))
        CHECK_VEC_CLOSE(got, want, P, 1e-10);
    free(want);
    free(got);
    problem_free(&p);
}

/* relu hidden layers, identity output, mse: H = GGN + sum_i r_i d2f_i and
 * d2f = 0 almost everywhere, so the Hessian diagonal IS the GGN diagonal. */
static void test_relu_mse_hessian_is_ggn(void)
{
    effdim_error err;
    problem p;
    size_t sizes[] = {6, 9, 8, 3};
    effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    if (!problem_make(&p, 3, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, 50, 1.3, 41))
        return;
    size_t P = p.m.n_params;
    double *h = malloc(P * sizeof(double)), *g = malloc(P * sizeof(double));
    double *gd = malloc(P * sizeof(double));
    if (operator_diag(&p, EFFDIM_CURV_HESSIAN, h) &&
        CHECK_OK(effdim_diag_ggn(&p.m, p.theta, p.ds, NULL, p.ds->n, NULL, g, NULL, &err), &err) &&
        dense_ggn_diag(&p, gd)) {
        CHECK_VEC_CLOSE(g, h, P, 1e-10);
        CHECK_VEC_CLOSE(gd, h, P, 1e-10);
        check_note("relu/mse: max rel diff GGN diagonal vs Hessian diagonal %.2e", rel_diff(g, h, P));
    }
    /* while with tanh hidden layers they differ */
    acts[0] = acts[1] = EFFDIM_ACT_TANH;
    problem q;
    if (problem_make(&q, 3, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, 50, 1.3, 41) &&
        operator_diag(&q, EFFDIM_CURV_HESSIAN, h) &&
        CHECK_OK(effdim_diag_ggn(&q.m, q.theta, q.ds, NULL, q.ds->n, NULL, g, NULL, &err), &err)) {
        CHECK(rel_diff(g, h, P) > 1e-3);
        check_note("tanh/mse: max rel diff GGN diagonal vs Hessian diagonal %.2e", rel_diff(g, h, P));
    }
    problem_free(&q);
    free(h);
    free(g);
    free(gd);
    problem_free(&p);
}

static void test_hessian_cost_limit(void)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_LOSS_CROSS_ENTROPY,
                       EFFDIM_REDUCTION_MEAN, 10, 3))
        return;
    size_t nf = 0;
    double cost = effdim_diag_hessian_cost(&p.m, &nf);
    CHECK(nf == 4); /* C: layer 1's residual enters layer 0 without factor rows */
    CHECK(cost > 1.0 && cost < 20.0);
    effdim_diag_params dp = effdim_diag_default_params();
    dp.max_cost = 0.5;
    double *d = malloc(p.m.n_params * sizeof(double));
    CHECK_STATUS(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, 10, &dp, d, NULL, &err),
                 EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "hessian", "gradients", "limit", "--force");
    dp.force = 1;
    CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, 10, &dp, d, NULL, &err), &err);
    /* relu networks need no residual factors: the cost is the GGN's */
    size_t sizes[] = {784, 300, 100, 10};
    effdim_activation relu[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    effdim_activation tanh_[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp big;
    CHECK_OK(effdim_mlp_init(&big, 3, sizes, relu, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &err), &err);
    double c_relu = effdim_diag_hessian_cost(&big, &nf);
    CHECK(nf == 10);
    CHECK_OK(effdim_mlp_init(&big, 3, sizes, tanh_, EFFDIM_LOSS_CROSS_ENTROPY,
                             EFFDIM_REDUCTION_MEAN, &err), &err);
    double c_tanh = effdim_diag_hessian_cost(&big, &nf);
    CHECK(nf == 10);
    /* deeper: each curved layer above layer 1 adds its width in factor rows */
    size_t deep[] = {784, 300, 200, 100, 10};
    effdim_activation tanh4[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_ACT_TANH,
                                 EFFDIM_ACT_IDENTITY};
    CHECK_OK(effdim_mlp_init(&big, 4, deep, tanh4, EFFDIM_LOSS_CROSS_ENTROPY,
                             EFFDIM_REDUCTION_MEAN, &err), &err);
    double c_deep = effdim_diag_hessian_cost(&big, &nf);
    CHECK(nf == 10 + 100);
    check_note("784-300-100-10: estimated exact-diagonal cost %.2f (relu), %.2f (tanh) gradients; "
               "784-300-200-100-10 tanh %.2f",
               c_relu, c_tanh, c_deep);
    free(d);
    problem_free(&p);
}

/* ======================================================================== */
/* empirical Fisher                                                         */
/* ======================================================================== */

static void check_ef(effdim_loss loss, effdim_reduction red, uint64_t seed)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, EFFDIM_ACT_TANH, EFFDIM_ACT_RELU, loss, red, 33, seed)) return;
    size_t P = p.m.n_params, n = p.ds->n;
    double *G = malloc(n * P * sizeof(double)), *want = calloc(P, sizeof(double));
    double *got = malloc(P * sizeof(double)), *g = malloc(P * sizeof(double));
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&p.m, 8, &err);
    CHECK_OK(effdim_mlp_per_sample_grads(&p.m, p.theta, p.ds, NULL, n, G, NULL, ws, &err), &err);
    double s = red == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < P; ++j) want[j] += s * G[i * P + j] * G[i * P + j];
    CHECK_OK(effdim_diag_ef(&p.m, p.theta, p.ds, NULL, n, NULL, got, ws, &err), &err);
    CHECK_VEC_CLOSE(got, want, P, 1e-12);
    check_note("ef %s %s: max rel diff vs mean of squared per-sample gradients %.2e",
               effdim_loss_name(loss), effdim_reduction_name(red), rel_diff(got, want, P));
    /* the 1/N convention: the squared per-sample gradients of the MEAN loss
     * (g_i / n) summed, as BackPACK's SumGradSquared, is ef / n */
    if (red == EFFDIM_REDUCTION_MEAN) {
        for (size_t j = 0; j < P; ++j) {
            double sgs = 0.0;
            for (size_t i = 0; i < n; ++i) sgs += (G[i * P + j] / (double)n) * (G[i * P + j] / (double)n);
            g[j] = sgs * (double)n;
        }
        CHECK_VEC_CLOSE(got, g, P, 1e-12);
    }
    effdim_mlp_ws_free(ws);
    free(G);
    free(want);
    free(got);
    free(g);
    problem_free(&p);
}

static void test_ef(void)
{
    check_ef(EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, 61);
    check_ef(EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_SUM, 62);
    check_ef(EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, 63);
}

/* ======================================================================== */
/* Monte-Carlo GGN                                                          */
/* ======================================================================== */

/* mean of ((est - exact) / se)^2 over entries with se > 0, and ||est - exact|| / ||exact|| */
static void mc_errors(const double *est, const double *se, const double *exact, size_t P,
                      double *z2, double *rel)
{
    double s = 0.0, num = 0.0, den = 0.0;
    size_t cnt = 0;
    for (size_t j = 0; j < P; ++j) {
        num += (est[j] - exact[j]) * (est[j] - exact[j]);
        den += exact[j] * exact[j];
        if (se[j] > 0.0) {
            double z = (est[j] - exact[j]) / se[j];
            s += z * z;
            ++cnt;
        }
    }
    *z2 = cnt ? s / (double)cnt : (double)NAN;
    *rel = sqrt(num / den);
}

static void check_mc(effdim_loss loss, uint64_t seed)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, EFFDIM_ACT_TANH, EFFDIM_ACT_SIGMOID, loss, EFFDIM_REDUCTION_MEAN, 60,
                       seed))
        return;
    size_t P = p.m.n_params;
    double *exact = malloc(P * sizeof(double)), *est = malloc(P * sizeof(double));
    double *se = malloc(P * sizeof(double)), rel[3] = {0}, z2[3] = {0};
    size_t S[3] = {8, 64, 512};
    CHECK_OK(effdim_diag_ggn(&p.m, p.theta, p.ds, NULL, p.ds->n, NULL, exact, NULL, &err), &err);
    for (int r = 0; r < 3; ++r) {
        effdim_diag_params dp = effdim_diag_default_params();
        dp.mc_samples = S[r];
        dp.seed = 77 + (uint64_t)r;
        CHECK_OK(effdim_diag_ggn_mc(&p.m, p.theta, p.ds, NULL, p.ds->n, &dp, est, se, NULL, &err),
                 &err);
        mc_errors(est, se, exact, P, &z2[r], &rel[r]);
        /* batch means over 8 groups: z is t-distributed with 7 degrees of
         * freedom, E z^2 = 7/5 */
        CHECK(z2[r] > 0.5 && z2[r] < 3.0);
    }
    check_note("ggn-mc %s: rel error %.3g (S=8), %.3g (S=64), %.3g (S=512); mean z^2 %.2f %.2f %.2f",
               effdim_loss_name(loss), rel[0], rel[1], rel[2], z2[0], z2[1], z2[2]);
    /* 1/sqrt(S): 8x the samples, about 2.8x smaller error (64x: 8x) */
    CHECK(rel[1] < rel[0] / 1.5 && rel[2] < rel[1] / 1.2 && rel[2] < rel[0] / 4.0);
    /* seeded: the same seed gives the same estimate, bit for bit */
    effdim_diag_params dp = effdim_diag_default_params();
    dp.mc_samples = 3;
    dp.seed = 5;
    double *again = malloc(P * sizeof(double));
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&p.m, 7, &err);
    CHECK_OK(effdim_diag_ggn_mc(&p.m, p.theta, p.ds, NULL, p.ds->n, &dp, est, NULL, NULL, &err), &err);
    CHECK_OK(effdim_diag_ggn_mc(&p.m, p.theta, p.ds, NULL, p.ds->n, &dp, again, se, ws, &err), &err);
    CHECK(memcmp(est, again, P * sizeof(double)) == 0 || rel_diff(est, again, P) < 1e-14);
    CHECK(se[0] > 0.0); /* 3 samples: 3 groups of 1 */
    dp.mc_groups = 2;
    CHECK_STATUS(effdim_diag_ggn_mc(&p.m, p.theta, p.ds, NULL, p.ds->n, &dp, est, se, NULL, &err),
                 EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "2 groups", "3 samples");
    effdim_mlp_ws_free(ws);
    free(again);
    free(exact);
    free(est);
    free(se);
    problem_free(&p);
}

static void test_mc_ggn(void)
{
    check_mc(EFFDIM_LOSS_CROSS_ENTROPY, 71);
    check_mc(EFFDIM_LOSS_MSE, 72);
}

/* elu and bce through the GGN (dense Jacobians), exact Hessian (R-operator
 * unit vectors), empirical Fisher and Monte-Carlo GGN (Bernoulli labels) */
static void test_elu_bce(void)
{
    check_ggn_against_dense(EFFDIM_ACT_ELU, EFFDIM_ACT_ELU, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_MEAN,
                            81);
    check_ggn_against_dense(EFFDIM_ACT_TANH, EFFDIM_ACT_ELU, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_SUM,
                            82);
    check_ggn_against_dense(EFFDIM_ACT_ELU, EFFDIM_ACT_GELU, EFFDIM_LOSS_CROSS_ENTROPY,
                            EFFDIM_REDUCTION_MEAN, 83);
    check_hessian_exact(EFFDIM_ACT_ELU, EFFDIM_ACT_ELU, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_MEAN, 84);
    check_hessian_exact(EFFDIM_ACT_ELU, EFFDIM_ACT_RELU, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_SUM, 85);
    check_hessian_exact(EFFDIM_ACT_SIGMOID, EFFDIM_ACT_ELU, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN,
                        86);
    check_ef(EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_MEAN, 87);
    check_mc(EFFDIM_LOSS_BCE, 88);
}

/* ======================================================================== */
/* Hutchinson                                                               */
/* ======================================================================== */

/* A = Q diag(lambda) Q^T with a spread spectrum (some negative); its diagonal. */
static effdim_operator *rotated_operator(size_t n, uint64_t seed, double *diag)
{
    effdim_error err;
    double *lam = malloc(n * sizeof(double)), *A = malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n; ++i) lam[i] = 3.785 * exp(-0.13 * (double)i) - 0.21 * (i % 7 == 3);
    effdim_operator *op = NULL;
    if (CHECK_OK(effdim_dense_with_spectrum(n, lam, seed, A, &err), &err)) {
        for (size_t i = 0; i < n; ++i) diag[i] = A[i * n + i];
        CHECK_OK(effdim_operator_dense(n, A, EFFDIM_COPY, &op, &err), &err);
    }
    free(lam);
    free(A);
    return op;
}

static void check_hutch(effdim_probe_kind kind)
{
    effdim_error err;
    size_t n = 80;
    double *want = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double));
    double *se = malloc(n * sizeof(double));
    effdim_operator *op = rotated_operator(n, 99, want);
    effdim_hutchinson_diag_params hp = effdim_hutchinson_diag_default_params();
    hp.probe = kind;
    hp.rel_se = 0.02;
    hp.max_probes = 20000;
    hp.block = 16;
    hp.seed = 4;
    effdim_hutchinson_diag_result res;
    if (op && CHECK_OK(effdim_diag_hutchinson(op, &hp, got, se, &res, &err), &err)) {
        CHECK(res.converged && res.rel_se <= 0.02);
        CHECK(res.probes >= hp.min_probes && res.probes < hp.max_probes);
        CHECK(res.matvecs == res.probes);
        double z2 = 0.0, zmax = 0.0, tr = 0.0;
        for (size_t j = 0; j < n; ++j) {
            double z = (got[j] - want[j]) / se[j];
            z2 += z * z;
            zmax = fmax(zmax, fabs(z));
            tr += want[j];
        }
        z2 /= (double)n;
        CHECK(z2 > 0.6 && z2 < 1.5);
        CHECK(zmax < 4.5);
        CHECK(fabs(res.trace - tr) < 4.0 * res.trace_se);
        check_note("hutchinson %s: %zu probes, rel se %.4f, mean z^2 %.3f, max |z| %.2f, trace %.4f "
                   "+- %.4f (exact %.4f)",
                   effdim_probe_kind_name(kind), res.probes, res.rel_se, z2, zmax, res.trace,
                   res.trace_se, tr);
    }
    /* max_probes reached before the target: EMAXITER with partial results */
    hp.rel_se = 1e-6;
    hp.max_probes = 12;
    CHECK_STATUS(effdim_diag_hutchinson(op, &hp, got, se, &res, &err), EFFDIM_EMAXITER, &err);
    CHECK_MSG(&err, "12 probes", "not reached");
    CHECK(res.probes == 12 && !res.converged && isfinite(got[0]));
    /* no target: max_probes are run, nothing was tested, so not converged
       (even though the estimate may be poor: rel_se far above any target) */
    hp.rel_se = 0.0;
    hp.max_probes = 16;
    CHECK_OK(effdim_diag_hutchinson(op, &hp, got, se, &res, &err), &err);
    CHECK(res.probes == 16 && !res.converged && res.rel_se > 0.05);
    effdim_operator_free(op);
    free(want);
    free(got);
    free(se);
}

static void test_hutchinson(void)
{
    check_hutch(EFFDIM_PROBE_GAUSSIAN);
    check_hutch(EFFDIM_PROBE_RADEMACHER);
}

static void test_hutchinson_diagonal_exact(void)
{
    effdim_error err;
    double d[7] = {2.385, -0.71, 4.2, 0.0, 1e-3, 13.5, 0.66}, got[7], se[7];
    effdim_operator *op = NULL;
    CHECK_OK(effdim_operator_diag(7, d, &op, &err), &err);
    effdim_hutchinson_diag_params hp = effdim_hutchinson_diag_default_params();
    effdim_hutchinson_diag_result res;
    CHECK_OK(effdim_diag_hutchinson(op, &hp, got, se, &res, &err), &err);
    CHECK_VEC_CLOSE(got, d, 7, 1e-15);
    /* it stops at the first block boundary past min_probes */
    CHECK(res.probes >= hp.min_probes && res.probes < hp.min_probes + hp.block);
    CHECK(res.rel_se == 0.0 && res.converged);
    for (int j = 0; j < 7; ++j) CHECK(se[j] == 0.0);
    /* exact diagonal by unit vectors */
    CHECK_OK(effdim_diag_of_operator(op, 3, got, &err), &err);
    CHECK_VEC_CLOSE(got, d, 7, 0.0);
    /* bad parameters */
    hp.min_probes = 1;
    CHECK_STATUS(effdim_diag_hutchinson(op, &hp, got, se, &res, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "min_probes");
    hp = effdim_hutchinson_diag_default_params();
    hp.rel_se = -1.0;
    CHECK_STATUS(effdim_diag_hutchinson(op, &hp, got, se, &res, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "rel_se");
    effdim_operator_free(op);
}

/* Hutchinson through the network's exact Hessian converges to the exact
 * Hessian diagonal within its standard errors. */
static void test_hutchinson_network(void)
{
    effdim_error err;
    problem p;
    if (!problem_small(&p, EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_LOSS_CROSS_ENTROPY,
                       EFFDIM_REDUCTION_MEAN, 30, 81))
        return;
    size_t P = p.m.n_params;
    double *exact = malloc(P * sizeof(double)), *est = malloc(P * sizeof(double));
    double *se = malloc(P * sizeof(double));
    effdim_hvp_params hv = effdim_hvp_default_params();
    hv.method = EFFDIM_HVP_EXACT;
    effdim_operator *op = NULL;
    CHECK_OK(effdim_diag_hessian(&p.m, p.theta, p.ds, NULL, p.ds->n, NULL, exact, NULL, &err), &err);
    CHECK_OK(effdim_hvp_operator(&p.m, p.theta, p.ds, NULL, p.ds->n, &hv, NULL, &op, &err), &err);
    effdim_hutchinson_diag_params hp = effdim_hutchinson_diag_default_params();
    hp.probe = EFFDIM_PROBE_GAUSSIAN;
    hp.rel_se = 0.03;
    hp.max_probes = 20000;
    hp.block = 32;
    hp.seed = 12;
    effdim_hutchinson_diag_result res;
    if (op && CHECK_OK(effdim_diag_hutchinson(op, &hp, est, se, &res, &err), &err)) {
        double z2 = 0.0;
        size_t cnt = 0;
        for (size_t j = 0; j < P; ++j)
            if (se[j] > 0.0) {
                double z = (est[j] - exact[j]) / se[j];
                z2 += z * z;
                ++cnt;
            }
        z2 /= (double)cnt;
        CHECK(z2 > 0.6 && z2 < 1.6);
        check_note("hutchinson on the tanh network's Hessian: %zu probes, rel se %.4f, mean z^2 %.3f",
                   res.probes, res.rel_se, z2);
    }
    effdim_operator_free(op);
    free(exact);
    free(est);
    free(se);
    problem_free(&p);
}

/* ======================================================================== */
/* Adam and IVON                                                            */
/* ======================================================================== */

static void test_adam_torch(void)
{
    effdim_error err;
    effdim_h5_quiet();
    const char *path = check_fixture("diag_adam_torch.h5");
    effdim_dataset *ds = NULL;
    if (!CHECK_OK(effdim_load_h5(path, &ds, &err), &err)) return;
    size_t sizes[] = {5, 7, 4};
    effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &err), &err);
    size_t P = m.n_params;
    CHECK(P == 74);
    hid_t f;
    if (!CHECK_OK(effdim_h5_open_read(path, &f, &err), &err)) return;
    double theta[74], theta_want[74], v_want[74], vh_want[74], lr, b1, b2, eps, step, batch, nrow;
    int64_t batches[30 * 8];
    int ok = CHECK_OK(effdim_h5_read_doubles(f, "theta0", theta, P, &err), &err) &&
             CHECK_OK(effdim_h5_read_doubles(f, "theta", theta_want, P, &err), &err) &&
             CHECK_OK(effdim_h5_read_doubles(f, "exp_avg_sq", v_want, P, &err), &err) &&
             CHECK_OK(effdim_h5_read_doubles(f, "v_hat", vh_want, P, &err), &err) &&
             CHECK_OK(effdim_h5_read_int64s(f, "batches", batches, 30 * 8, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "lr", &lr, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "beta1", &b1, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "beta2", &b2, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "eps", &eps, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "step", &step, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "batch", &batch, &err), &err) &&
             CHECK_OK(effdim_h5_attr_read_double(f, "n", &nrow, &err), &err);
    H5Fclose(f);
    if (!ok) return;
    effdim_optim_params op = effdim_optim_default_params(EFFDIM_OPTIM_ADAM);
    op.lr = lr;
    op.beta1 = b1;
    op.beta2 = b2;
    op.eps = eps;
    effdim_optim *opt = NULL;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 8, &err);
    CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_ADAM, &op, P, &opt, &err), &err);
    double grad[74], loss;
    for (size_t t = 0; opt && t < (size_t)step; ++t) {
        size_t rows[8];
        for (int r = 0; r < 8; ++r) rows[r] = (size_t)batches[t * 8 + (size_t)r];
        CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, rows, 8, &loss, grad, ws, &err), &err);
        CHECK_OK(effdim_optim_step(opt, theta, grad, lr, &err), &err);
    }
    CHECK_VEC_CLOSE(theta, theta_want, P, 1e-12);
    CHECK_VEC_CLOSE(opt->exp_avg_sq, v_want, P, 1e-12);
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_alloc(&m, theta, &c, &err), &err);
    CHECK_OK(effdim_checkpoint_set_from_optim(c, opt, NULL, &err), &err);
    CHECK_OK(effdim_checkpoint_set_provenance(c, "h5:diag_adam_torch.h5", NULL, 1, &err), &err);
    CHECK_OK(effdim_checkpoint_set_training_number(c, "batch", batch, &err), &err);
    double vh[74], badam[74], ef[74];
    int ef_ok = 0;
    CHECK_OK(effdim_diag_adam(c, "fixture.h5", 0, (size_t)nrow, vh, badam, ef, &ef_ok, &err), &err);
    CHECK_VEC_CLOSE(vh, vh_want, P, 1e-12);
    check_note("adam: v_hat vs PyTorch's exp_avg_sq / (1 - beta2^%g): max rel diff %.2e", step,
               rel_diff(vh, vh_want, P));
    CHECK(ef_ok);
    double f_ef = batch * (nrow - 1.0) / (nrow - batch);
    for (size_t j = 0; j < P; ++j) {
        CHECK_CLOSE(badam[j], sqrt(vh_want[j]), 1e-12);
        CHECK_CLOSE(ef[j], vh_want[j] * f_ef, 1e-12);
    }
    /* full batch: no ef reading */
    CHECK_OK(effdim_diag_adam(c, "fixture.h5", 40, 40, vh, badam, ef, &ef_ok, &err), &err);
    CHECK(!ef_ok);
    /* sum reduction: g_B is B x the mean-loss gradient, the loss N x */
    c->mlp.reduction = EFFDIM_REDUCTION_SUM;
    CHECK_OK(effdim_diag_adam(c, "fixture.h5", 8, 40, vh, badam, ef, &ef_ok, &err), &err);
    CHECK_CLOSE(badam[3], sqrt(vh_want[3]) / 8.0 * 40.0, 1e-12);
    CHECK_CLOSE(ef[3], vh_want[3] / 64.0 * f_ef * 40.0, 1e-12);
    effdim_checkpoint_free(c);
    effdim_optim_free(opt);
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);
}

static void test_state_errors(void)
{
    effdim_error err;
    size_t sizes[] = {3, 4, 2};
    effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &err), &err);
    size_t P = m.n_params;
    double d[32], h[32];
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &c, &err), &err);
    /* no optimiser section */
    CHECK_STATUS(effdim_diag_adam(c, "plain.h5", 0, 10, d, d, NULL, NULL, &err), EFFDIM_ENOTFOUND,
                 &err);
    CHECK_MSG(&err, "plain.h5", "/optimizer", "adam");
    CHECK_STATUS(effdim_diag_ivon(c, "plain.h5", 10, d, &err), EFFDIM_ENOTFOUND, &err);
    CHECK_MSG(&err, "plain.h5", "/optimizer/hess", "IVON");
    /* an SGD checkpoint: no exp_avg_sq */
    for (size_t j = 0; j < P; ++j) h[j] = 0.125 + 0.01 * (double)j;
    CHECK_OK(effdim_checkpoint_set_optimizer(c, "sgd", 17, &err), &err);
    CHECK_OK(effdim_checkpoint_set_state(c, "momentum_buffer", h, P, &err), &err);
    CHECK_STATUS(effdim_diag_adam(c, "sgd.h5", 0, 10, d, d, NULL, NULL, &err), EFFDIM_ENOTFOUND, &err);
    CHECK_MSG(&err, "sgd.h5", "/optimizer/exp_avg_sq", "sgd");
    CHECK_STATUS(effdim_diag_ivon(c, "sgd.h5", 10, d, &err), EFFDIM_ENOTFOUND, &err);
    CHECK_MSG(&err, "sgd.h5", "/optimizer/hess", "sgd");
    /* an IVON-like state: hess is returned at the loss scale */
    CHECK_OK(effdim_checkpoint_set_optimizer(c, "ivon", 17, &err), &err);
    CHECK_OK(effdim_checkpoint_set_state(c, "hess", h, P, &err), &err);
    CHECK_OK(effdim_diag_ivon(c, "ivon.h5", 10, d, &err), &err);
    CHECK_VEC_CLOSE(d, h, P, 0.0);
    c->mlp.reduction = EFFDIM_REDUCTION_SUM;
    CHECK_OK(effdim_diag_ivon(c, "ivon.h5", 10, d, &err), &err);
    CHECK_CLOSE(d[5], 10.0 * h[5], 1e-15);
    /* adam with step 0 */
    CHECK_OK(effdim_checkpoint_set_optimizer(c, "adam", 0, &err), &err);
    CHECK_OK(effdim_checkpoint_set_state(c, "exp_avg_sq", h, P, &err), &err);
    c->mlp.reduction = EFFDIM_REDUCTION_MEAN;
    CHECK_STATUS(effdim_diag_adam(c, "a.h5", 0, 10, d, d, NULL, NULL, &err), EFFDIM_EDOM, &err);
    CHECK_MSG(&err, "a.h5", "/optimizer", "'step' = 0", "adam diagonal");
    /* adam without beta2: refused, no 0.999 assumed */
    CHECK_OK(effdim_checkpoint_set_optimizer(c, "adam", 23, &err), &err);
    CHECK_OK(effdim_checkpoint_set_state(c, "exp_avg_sq", h, P, &err), &err);
    CHECK(!effdim_checkpoint_hparam(c, "beta2", NULL));
    CHECK_STATUS(effdim_diag_adam(c, "nob2.h5", 0, 10, d, d, NULL, NULL, &err), EFFDIM_ENOTFOUND,
                 &err);
    CHECK_MSG(&err, "nob2.h5", "/optimizer", "'beta2'", "adam diagonal needs it");
    /* with beta2 it works: v_hat = v / (1 - beta2^23) */
    CHECK_OK(effdim_checkpoint_set_hparam(c, "beta2", 0.9385, &err), &err);
    CHECK_OK(effdim_diag_adam(c, "b2.h5", 0, 10, d, NULL, NULL, NULL, &err), &err);
    CHECK_CLOSE(d[3], h[3] / (1.0 - pow(0.9385, 23.0)), 1e-14);
    effdim_checkpoint_free(c);
}

static void test_method_names(void)
{
    effdim_error err;
    effdim_diag_method ms[EFFDIM_DIAG_N_METHODS];
    size_t n = 0;
    CHECK_OK(effdim_diag_methods_parse("ggn,ef,adam,hutchinson,hessian,ggn-mc,ivon", ms,
                                       EFFDIM_DIAG_N_METHODS, &n, &err), &err);
    CHECK(n == 7 && ms[0] == EFFDIM_DIAG_GGN && ms[5] == EFFDIM_DIAG_GGN_MC && ms[6] == EFFDIM_DIAG_IVON);
    for (int i = 0; i < EFFDIM_DIAG_N_METHODS; ++i) {
        effdim_diag_method back;
        CHECK_OK(effdim_diag_method_parse(effdim_diag_method_name((effdim_diag_method)i), &back, &err),
                 &err);
        CHECK(back == (effdim_diag_method)i);
    }
    CHECK_STATUS(effdim_diag_methods_parse("ggn,fisher", ms, EFFDIM_DIAG_N_METHODS, &n, &err),
                 EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "'fisher'", "ggn-mc");
    CHECK_STATUS(effdim_diag_methods_parse("ef,ggn,ef", ms, EFFDIM_DIAG_N_METHODS, &n, &err),
                 EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "'ef'", "twice");
    CHECK_STATUS(effdim_diag_methods_parse(",", ms, EFFDIM_DIAG_N_METHODS, &n, &err), EFFDIM_EINVAL,
                 &err);
    effdim_probe_kind k;
    CHECK_STATUS(effdim_probe_kind_parse("uniform", &k, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "uniform", "rademacher", "gaussian");
}

/* ======================================================================== */
/* compare                                                                  */
/* ======================================================================== */

static void test_compare_neff_closed_form(void)
{
    effdim_error err;
    double d[6] = {2.385, 0.5, -0.3, 7.1, 0.0, 1e-4}, z[3] = {0.1, 1.0, 10.0}, got[3];
    const effdim_neg_policy pol[3] = {EFFDIM_NEG_ZERO, EFFDIM_NEG_ABS, EFFDIM_NEG_ASIS};
    for (int p = 0; p < 3; ++p) {
        CHECK_OK(effdim_compare_neff(d, 6, z, 3, pol[p], got, &err), &err);
        for (int i = 0; i < 3; ++i) {
            double want = 2.385 / (2.385 + z[i]) + 0.5 / (0.5 + z[i]) + 7.1 / (7.1 + z[i]) +
                          1e-4 / (1e-4 + z[i]);
            if (p == 1) want += 0.3 / (0.3 + z[i]);
            if (p == 2) want += -0.3 / (-0.3 + z[i]);
            CHECK_CLOSE(got[i], want, 1e-15);
        }
    }
    /* the default policy (a zeroed input's) is zero */
    CHECK_OK(effdim_compare_neff(d, 6, z, 3, (effdim_neg_policy)0, got, &err), &err);
    CHECK_CLOSE(got[1], 2.385 / 3.385 + 0.5 / 1.5 + 7.1 / 8.1 + 1e-4 / (1.0 + 1e-4), 1e-15);
    /* through effdim_compare_run, against the eigenvalues of diag(d) */
    double lam[6] = {7.1, 2.385, 0.5, 1e-4, 0.0, -0.3};
    effdim_compare_input in;
    memset(&in, 0, sizeof in);
    in.n = 6;
    in.diag = d;
    in.exact = d;
    in.k = 6;
    in.eigenvalues = lam;
    in.m = 3;
    in.z = z;
    effdim_compare_result r;
    if (CHECK_OK(effdim_compare_run(&in, &r, &err), &err)) {
        CHECK_VEC_CLOSE(r.n_eff, r.n_eff_eigs, 3, 1e-15);
        CHECK_VEC_CLOSE(r.top, lam, 6, 0.0);
        CHECK_CLOSE(r.partial[5], 1.0, 1e-15);
        CHECK(r.negative == 1);
        CHECK_CLOSE(r.trace, r.trace_exact, 1e-15);
        CHECK_CLOSE(r.spearman, 1.0, 1e-15);
        CHECK_NEAR(r.rel_error, 0.0, 1e-300);
    }
    effdim_compare_result_free(&r);
    /* errors */
    z[0] = 0.0;
    CHECK_STATUS(effdim_compare_neff(d, 6, z, 3, EFFDIM_NEG_ZERO, got, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "z[0]", "> 0");
    z[0] = 0.1;
    CHECK_STATUS(effdim_compare_neff(d, 6, z, 3, (effdim_neg_policy)7, got, &err), EFFDIM_EINVAL,
                 &err);
    CHECK_MSG(&err, "policy 7", "zero, abs or asis");
    d[2] = NAN;
    CHECK_STATUS(effdim_compare_run(&in, &r, &err), EFFDIM_EDOM, &err);
    CHECK_MSG(&err, "entry 2");
    effdim_compare_result_free(&r);
}

static void test_compare_spearman(void)
{
    effdim_error err;
    enum { N = 23 };
    double a[N], b[N], rho;
    size_t perm[N];
    /* b's ranks are a known permutation of a's: perm[i] = (7 i + 3) mod 23 */
    double d2 = 0.0;
    for (size_t i = 0; i < N; ++i) {
        perm[i] = (7 * i + 3) % N;
        a[i] = exp(0.31 * (double)i) - 2.385;     /* rank i */
        b[i] = 1.7 * pow((double)perm[i], 1.3); /* rank perm[i] */
        double dd = (double)i - (double)perm[i];
        d2 += dd * dd;
    }
    CHECK_OK(effdim_compare_spearman(a, b, N, &rho, &err), &err);
    CHECK_CLOSE(rho, 1.0 - 6.0 * d2 / ((double)N * ((double)N * N - 1.0)), 1e-13);
    check_note("spearman on a known permutation: %.6f", rho);
    CHECK_OK(effdim_compare_spearman(a, a, N, &rho, &err), &err);
    CHECK_CLOSE(rho, 1.0, 1e-15);
    for (size_t i = 0; i < N; ++i) b[i] = -a[i];
    CHECK_OK(effdim_compare_spearman(a, b, N, &rho, &err), &err);
    CHECK_CLOSE(rho, -1.0, 1e-15);
    CHECK_STATUS(effdim_compare_spearman(a, b, 1, &rho, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "at least 2");
    /* a scaled copy: perfect rank agreement, fitted error 0, scale ratio 3.7 */
    effdim_compare_input in;
    memset(&in, 0, sizeof in);
    for (size_t i = 0; i < N; ++i) b[i] = 3.7 * a[i];
    in.n = N;
    in.diag = b;
    in.exact = a;
    effdim_compare_result r;
    if (CHECK_OK(effdim_compare_run(&in, &r, &err), &err)) {
        CHECK_CLOSE(r.spearman, 1.0, 1e-15);
        CHECK_CLOSE(r.rel_error, 2.7, 1e-14);
        CHECK_NEAR(r.rel_error_fit, 0.0, 1e-7);
        CHECK_CLOSE(r.fit_scale, 1.0 / 3.7, 1e-14);
        CHECK_CLOSE(r.scale_ratio, 3.7, 1e-14);
        CHECK_CLOSE(r.median_rel_error, 2.7, 1e-14);
        CHECK(isnan(r.trace_eigs) && r.n_eff_eigs == NULL && r.q == 0);
    }
    effdim_compare_result_free(&r);
}

/* On diag(d) the eigenvectors are unit vectors at the largest entries: all
 * their mass is on the top coordinates of d. */
static void test_compare_alignment(void)
{
    effdim_error err;
    enum { N = 300, K = 3 };
    double d[N], lam[K], V[K * N], z[2] = {0.01, 1.0};
    for (size_t j = 0; j < N; ++j) d[j] = 0.05 + 0.9 * sin(0.37 * (double)j) * sin(0.37 * (double)j);
    d[17] = 9.3;
    d[201] = 7.7;
    d[88] = 5.2;
    effdim_operator *op = NULL;
    CHECK_OK(effdim_operator_diag(N, d, &op, &err), &err);
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = K;
    lp.tol = 1e-12;
    lp.want_vectors = 1;
    lp.seed = 3;
    if (!op || !CHECK_OK(effdim_lanczos_eigs(op, &lp, lam, NULL, NULL, NULL, V, NULL, &err), &err)) {
        effdim_operator_free(op);
        return;
    }
    double frac[3] = {1.0 / N, (double)K / N, 0.5};
    effdim_compare_input in;
    memset(&in, 0, sizeof in);
    in.n = N;
    in.diag = d;
    in.k = K;
    in.eigenvalues = lam;
    in.kv = K;
    in.eigenvectors = V;
    in.ld = N;
    in.m = 2;
    in.z = z;
    in.n_topm = 3;
    in.topm_fractions = frac;
    effdim_compare_result r;
    if (CHECK_OK(effdim_compare_run(&in, &r, &err), &err)) {
        CHECK(r.n_topm == 3 && r.topm[0] == 1 && r.topm[1] == 3 && r.topm[2] == 150);
        for (size_t i = 0; i < K; ++i) {
            CHECK_CLOSE(r.mass[i], 1.0, 1e-12);
            CHECK_CLOSE(r.alignment[i * 3 + 1], 1.0, 1e-12); /* top-3 coordinates */
            CHECK_CLOSE(r.alignment[i * 3 + 2], 1.0, 1e-12);
        }
        CHECK_CLOSE(r.alignment[0], 1.0, 1e-12); /* v_1 = e_17 */
        CHECK_NEAR(r.alignment[3], 0.0, 1e-12);  /* v_2 = e_201 is not on coordinate 17 */
        CHECK_VEC_CLOSE(r.top, lam, K, 1e-12);
        CHECK_CLOSE(r.partial[K - 1], 1.0, 1e-12);
        check_note("alignment on diag(d): %.15f %.15f %.15f (top-3 coordinates)", r.alignment[1],
                   r.alignment[4], r.alignment[7]);
    }
    effdim_compare_result_free(&r);
    /* the exact unit vectors: exactly 1 */
    memset(V, 0, sizeof V);
    V[0 * N + 17] = V[1 * N + 201] = V[2 * N + 88] = 1.0;
    if (CHECK_OK(effdim_compare_run(&in, &r, &err), &err))
        for (size_t i = 0; i < K; ++i) CHECK(r.alignment[i * 3 + 1] == 1.0);
    effdim_compare_result_free(&r);
    /* a block of coordinates: the slice [100, 300) holds v_2's mass only */
    in.n = 200;
    in.diag = d + 100;
    in.eigenvectors = V + 100;
    in.k = 0;
    if (CHECK_OK(effdim_compare_run(&in, &r, &err), &err)) {
        CHECK(r.mass[0] == 0.0 && r.mass[1] == 1.0 && r.mass[2] == 0.0);
        CHECK(r.alignment[1 * 3 + 0] == 1.0 && isnan(r.alignment[0]));
    }
    effdim_compare_result_free(&r);
    effdim_operator_free(op);
}

/* Schur-Horn: the exact diagonal of a symmetric matrix is majorised by its
 * eigenvalues, so the partial-sum ratio never exceeds 1 and ends at 1. */
static void test_compare_majorisation(void)
{
    effdim_error err;
    enum { N = 60 };
    double lam[N], *A = malloc(N * N * sizeof(double)), d[N];
    for (size_t i = 0; i < N; ++i) lam[i] = 5.3 * exp(-0.2 * (double)i) - 0.4 * (i > 50);
    if (!CHECK_OK(effdim_dense_with_spectrum(N, lam, 8, A, &err), &err)) {
        free(A);
        return;
    }
    for (size_t i = 0; i < N; ++i) d[i] = A[i * N + i];
    effdim_compare_input in;
    memset(&in, 0, sizeof in);
    in.n = N;
    in.diag = d;
    in.k = N;
    in.eigenvalues = lam;
    effdim_compare_result r;
    if (CHECK_OK(effdim_compare_run(&in, &r, &err), &err)) {
        double worst = 0.0;
        for (size_t i = 0; i < N; ++i) worst = fmax(worst, r.partial[i]);
        CHECK(worst <= 1.0 + 1e-12);
        CHECK_CLOSE(r.partial[N - 1], 1.0, 1e-12);
        CHECK(r.ratio[0] < 1.0);
        check_note("Schur-Horn: largest partial-sum ratio %.3f, top entry / lambda_1 %.3f", worst,
                   r.ratio[0]);
    }
    effdim_compare_result_free(&r);
    free(A);
}

/* ======================================================================== */
/* the diag file                                                            */
/* ======================================================================== */

/* A diag file written by hand with the h5io helpers (the layout of
 * effdim/diag.h), optionally broken in one way. */
static int write_diag_file(const char *path, const char *format, int64_t version, size_t len,
                           int list_missing)
{
    effdim_error err;
    effdim_h5_atomic a;
    double v[9] = {2.385, 0.5, 1e-3, 0.0, 7.25, 0.125, 3.0, 0.75, 1.5};
    const char *names[2] = {"ggn", list_missing ? "ef" : "hutchinson"};
    hid_t g = -1, gse = -1;
    int ok = CHECK_OK(effdim_h5_atomic_begin(path, &a, &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_string(a.file, "format", format, &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_int64(a.file, "format_version", version, &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_int64(a.file, "n_params", 8, &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_int64(a.file, "n", 100, &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_string(a.file, "reduction", "mean", &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_string(a.file, "data_spec", "spirals:n=100", &err), &err) &&
             CHECK_OK(effdim_h5_attr_write_strings(a.file, "methods", names, 2, &err), &err) &&
             CHECK_OK(effdim_h5_group(a.file, "diag", &g, &err), &err) &&
             CHECK_OK(effdim_h5_group(a.file, "se", &gse, &err), &err) &&
             CHECK_OK(effdim_h5_write_doubles(g, "ggn", 1, &len, v, &err), &err) &&
             CHECK_OK(effdim_h5_write_doubles(g, "hutchinson", 1, &len, v + 1, &err), &err) &&
             CHECK_OK(effdim_h5_write_doubles(gse, "hutchinson", 1, &len, v, &err), &err);
    if (g >= 0) H5Gclose(g);
    if (gse >= 0) H5Gclose(gse);
    ok = ok && CHECK_OK(effdim_h5_atomic_commit(&a, &err), &err);
    if (!ok) effdim_h5_atomic_abort(&a);
    return ok;
}

static void test_diag_file(void)
{
    effdim_error err;
    effdim_diag_file *f = NULL;
    const char *good = check_tmpfile("good_diag.h5");
    if (write_diag_file(good, "effdim.diag", 1, 8, 0) &&
        CHECK_OK(effdim_diag_file_load(good, &f, &err), &err)) {
        CHECK(f->count == 2 && f->n_params == 8 && f->n == 100);
        CHECK(!strcmp(f->reduction, "mean") && !strcmp(f->data_spec, "spirals:n=100"));
        const effdim_diag_entry *e = effdim_diag_file_find(f, "hutchinson");
        CHECK(e && e->se && e->v[0] == 0.5 && e->se[0] == 2.385);
        e = effdim_diag_file_find(f, "ggn");
        CHECK(e && !e->se && e->v[4] == 7.25);
        CHECK(effdim_diag_file_find(f, "ef") == NULL);
    }
    effdim_diag_file_free(f);
    f = NULL;
    const char *bad = check_tmpfile("bad_diag.h5");
    if (write_diag_file(bad, "effdim.spectrum", 1, 8, 0)) {
        CHECK_STATUS(effdim_diag_file_load(bad, &f, &err), EFFDIM_EFORMAT, &err);
        CHECK_MSG(&err, "bad_diag.h5", "'format'", "'effdim.spectrum'", "expected 'effdim.diag'");
    }
    if (write_diag_file(bad, "effdim.diag", 2, 8, 0)) {
        CHECK_STATUS(effdim_diag_file_load(bad, &f, &err), EFFDIM_EVERSION, &err);
        CHECK_MSG(&err, "bad_diag.h5", "format_version 2");
    }
    if (write_diag_file(bad, "effdim.diag", 1, 7, 0)) {
        CHECK_STATUS(effdim_diag_file_load(bad, &f, &err), EFFDIM_EFORMAT, &err);
        CHECK_MSG(&err, "bad_diag.h5", "/diag/ggn", "(7)", "expected (8)");
    }
    if (write_diag_file(bad, "effdim.diag", 1, 8, 1)) {
        CHECK_STATUS(effdim_diag_file_load(bad, &f, &err), EFFDIM_EFORMAT, &err);
        CHECK_MSG(&err, "bad_diag.h5", "/diag/ef", "missing");
    }
    CHECK_STATUS(effdim_diag_file_load(check_tmpfile("absent.h5"), &f, &err), EFFDIM_ENOTFOUND,
                 &err);
    CHECK_MSG(&err, "absent.h5", "cannot open");
    CHECK(f == NULL);
    /* a spectrum file: missing, or a diag file in its place */
    effdim_spectrum *s = NULL;
    CHECK_STATUS(effdim_spectrum_load(check_tmpfile("absent_spectrum.h5"), &s, &err),
                 EFFDIM_ENOTFOUND, &err);
    CHECK_MSG(&err, "absent_spectrum.h5");
    CHECK(effdim_spectrum_load(good, &s, &err) == EFFDIM_EFORMAT);
    CHECK_MSG(&err, "good_diag.h5", "'effdim.diag'", "effdim.spectrum");
    effdim_spectrum_free(s);
}

CHECK_TESTS({"GGN diagonal equals the diagonal of the dense Jacobian GGN", test_ggn_dense},
            {"ELU and BCE diagonals (GGN, Hessian, EF, MC) equal their dense references",
             test_elu_bce},
            {"chunking, blocks and row selections do not change the diagonals", test_ggn_chunking},
            {"exact Hessian diagonal equals R-operator Hessian on unit vectors", test_hessian_exact},
            {"a curved output activation is handled exactly", test_hessian_curved_output},
            {"deep networks with several curved layers are handled exactly", test_hessian_deep},
            {"relu network with mse: Hessian diagonal equals GGN diagonal", test_relu_mse_hessian_is_ggn},
            {"the exact Hessian diagonal is refused above its cost limit unless forced",
             test_hessian_cost_limit},
            {"empirical Fisher equals the mean of squared per-sample gradients", test_ef},
            {"Monte-Carlo GGN converges to the exact GGN within its standard errors", test_mc_ggn},
            {"Hutchinson converges to a rotated matrix's diagonal within its standard errors",
             test_hutchinson},
            {"Hutchinson with Rademacher probes is exact on a diagonal matrix",
             test_hutchinson_diagonal_exact},
            {"Hutchinson on a network's Hessian agrees with the exact diagonal",
             test_hutchinson_network},
            {"Adam diagonal equals PyTorch's exp_avg_sq for the same training run", test_adam_torch},
            {"adam and ivon refuse checkpoints without their state", test_state_errors},
            {"method names parse and unknown or repeated ones are refused", test_method_names},
            {"compare: N_eff from a diagonal equals the closed form", test_compare_neff_closed_form},
            {"compare: Spearman equals the closed form on a known permutation",
             test_compare_spearman},
            {"compare: alignment is 1 on a diagonal operator's eigenvectors", test_compare_alignment},
            {"compare: an exact diagonal is majorised by its eigenvalues", test_compare_majorisation},
            {"diag files load, and wrong, newer, short or missing files are refused", test_diag_file})
