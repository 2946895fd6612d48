/* tests/test_slq.c: N_eff from eigenvalues, stochastic Lanczos quadrature,
 * Hutchinson / Hutch++ traces, the spectral density, and the Bayesian linear
 * regression identity.
 *
 * Oracles: closed forms for N_eff on explicit lists; LAPACKE_dsyev on the
 * dense matrix for the full-spectrum N_eff (policies, known spectra); known
 * spectra fixed by construction (Q diag(lambda) Q^T, with Q Haar-random or a
 * Kronecker product of two Haar-random factors, itself checked against
 * dsyev); independent seeds for the honesty of the standard errors; the
 * Cholesky-inverse trace for the BLR identity.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/blr.h"
#include "effdim/dense.h"
#include "effdim/lanczos.h"
#include "effdim/neff.h"
#include "effdim/operator.h"
#include "effdim/spectral.h"

static effdim_operator *rotated(size_t n, const double *lam, uint64_t seed, double *Aout)
{
    effdim_error e;
    double *A = Aout ? Aout : malloc(n * n * sizeof(double));
    effdim_operator *op = NULL;
    if (effdim_dense_with_spectrum(n, lam, seed, A, &e) != EFFDIM_OK ||
        effdim_operator_dense(n, A, EFFDIM_COPY, &op, &e) != EFFDIM_OK)
        check_note("building the operator failed: %s", e.msg);
    if (!Aout) free(A);
    return op;
}

/* a reproducible uniform number in [0, 1) (a test-local LCG: independent of GSL) */
static double lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* ---- N_eff from eigenvalues ---------------------------------------------------- */

static void neff_policies_match_their_closed_forms(void)
{
    const double lam[4] = {3.0, -0.5, 0.25, -2.0};
    const double z[2] = {0.75, 2.385};
    double out[2];
    effdim_error e;
    CHECK_OK(effdim_neff(lam, 4, z, 2, EFFDIM_NEG_ZERO, out, &e), &e);
    CHECK_CLOSE(out[0], 3.0 / 3.75 + 0.25 / 1.0, 1e-15);
    CHECK_CLOSE(out[1], 3.0 / 5.385 + 0.25 / 2.635, 1e-15);
    CHECK_OK(effdim_neff(lam, 4, z, 2, EFFDIM_NEG_ABS, out, &e), &e);
    CHECK_CLOSE(out[0], 3.0 / 3.75 + 0.5 / 1.25 + 0.25 / 1.0 + 2.0 / 2.75, 1e-15);
    CHECK_OK(effdim_neff(lam, 4, z, 2, EFFDIM_NEG_ASIS, out, &e), &e);
    CHECK_CLOSE(out[0], 3.0 / 3.75 - 0.5 / 0.25 + 0.25 / 1.0 + -2.0 / -1.25, 1e-15);
    /* an eigenvalue at -z is infinite only as-is */
    const double hit[2] = {1.5, -0.75};
    CHECK_STATUS(effdim_neff(hit, 2, z, 1, EFFDIM_NEG_ASIS, out, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "eigenvalue 1", "-z[0]", "asis");
    CHECK_OK(effdim_neff(hit, 2, z, 1, EFFDIM_NEG_ZERO, out, &e), &e);
    CHECK_CLOSE(out[0], 1.5 / 2.25, 1e-15);
    const double badz[2] = {1.0, -1.0};
    CHECK_STATUS(effdim_neff(lam, 4, badz, 2, EFFDIM_NEG_ZERO, out, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "z[1] = -1", "z > 0");
    const double nanl[2] = {1.0, NAN};
    CHECK_STATUS(effdim_neff(nanl, 2, z, 1, EFFDIM_NEG_ZERO, out, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "eigenvalue 1");
    effdim_neg_policy p;
    CHECK_OK(effdim_neg_policy_parse("as-is", &p, &e), &e);
    CHECK(p == EFFDIM_NEG_ASIS && strcmp(effdim_neg_policy_name(p), "asis") == 0);
    CHECK_OK(effdim_neg_policy_parse("abs", &p, &e), &e);
    CHECK(p == EFFDIM_NEG_ABS);
    CHECK_STATUS(effdim_neg_policy_parse("clamp", &p, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "'clamp'", "zero, abs or asis");
}

static void dense_reference_recovers_a_known_spectrum(void)
{
    enum { N = 120 };
    double lam[N], A[N * N], w[N], z[3] = {1e-3, 1.0, 10.0}, got[3], want[3];
    for (size_t i = 0; i < N; ++i) lam[i] = (i % 5 == 0 ? -0.01 : 1.0) * exp(-0.1 * (double)i) * 40.0;
    effdim_error e;
    CHECK_OK(effdim_dense_with_spectrum(N, lam, 31, A, &e), &e);
    CHECK_OK(effdim_neff_dense(N, A, z, 3, EFFDIM_NEG_ZERO, got, w, &e), &e);
    CHECK_OK(effdim_neff(lam, N, z, 3, EFFDIM_NEG_ZERO, want, &e), &e);
    CHECK_VEC_CLOSE(got, want, 3, 1e-12);
    for (size_t i = 1; i < N; ++i) CHECK(w[i] <= w[i - 1]);
    CHECK_CLOSE(w[0], 40.0 * exp(-0.1), 1e-13); /* lam[0] = -0.4 */
    CHECK_CLOSE(w[N - 1], -0.4, 1e-12);
}

/* ---- SLQ accuracy ---------------------------------------------------------------- */

/* A Hessian-like spectrum: 8 outliers in [5, 45], a bulk of 40% in
   [0.005, 2.005] denser near its bottom, a near-zero mass |lambda| in
   [1e-8, 1e-5], and 2.5% small negatives in [-1e-3, -1e-6]. */
static void hessian_like(double *lam, size_t n, uint64_t seed)
{
    size_t nbulk = 2 * n / 5, nneg = n / 40;
    for (size_t i = 0; i < n; ++i) {
        double u = lcg(&seed);
        if (i < 8) lam[i] = 5.0 + 40.0 * pow(0.6, (double)i);
        else if (i < 8 + nbulk) lam[i] = 0.005 + 2.0 * u * u;
        else if (i < n - nneg) lam[i] = pow(10.0, -8.0 + 3.0 * u);
        else lam[i] = -pow(10.0, -6.0 + 3.0 * u);
    }
}

/* A = K diag(d) K^T with K = Q1 (x) Q2, Q1, Q2 Haar-random (n1, n1), (n2, n2):
 * delocalised eigenvectors like a dense rotation's, applied in O(n (n1 + n2))
 * per vector as K^T x = vec(Q1^T X Q2), K y = vec(Q1 Y Q2^T) with X (n1, n2). */
typedef struct kron_ctx {
    size_t n1, n2;
    double *Q1, *Q2, *d, *W, *Z; /* (n1,n1), (n2,n2), (n), (n1,n2) scratch x2 */
} kron_ctx;

static effdim_status kron_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                double *Y, size_t ldy, effdim_error *err)
{
    kron_ctx *c = p;
    int n1 = (int)c->n1, n2 = (int)c->n2;
    for (size_t j = 0; j < nvec; ++j) {
        /* W = Q1^T X, Z = W Q2, Z *= d, W = Q1 Z, Y = W Q2^T */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n1, n2, n1, 1.0, c->Q1, n1,
                    X + j * ldx, n2, 0.0, c->W, n2);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n1, n2, n2, 1.0, c->W, n2, c->Q2, n2,
                    0.0, c->Z, n2);
        for (size_t i = 0; i < n; ++i) c->Z[i] *= c->d[i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n1, n2, n1, 1.0, c->Q1, n1, c->Z, n2,
                    0.0, c->W, n2);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n1, n2, n2, 1.0, c->W, n2, c->Q2, n2,
                    0.0, Y + j * ldy, n2);
    }
    return EFFDIM_OK;
}

static void kron_free(void *p)
{
    kron_ctx *c = p;
    free(c->Q1);
    free(c->Q2);
    free(c->d);
    free(c->W);
    free(c->Z);
    free(c);
}

static effdim_operator *kron_operator(size_t n1, size_t n2, const double *d, uint64_t seed)
{
    size_t n = n1 * n2;
    kron_ctx *c = calloc(1, sizeof *c);
    c->n1 = n1;
    c->n2 = n2;
    c->Q1 = malloc(n1 * n1 * sizeof(double));
    c->Q2 = malloc(n2 * n2 * sizeof(double));
    c->d = malloc(n * sizeof(double));
    c->W = malloc(n * sizeof(double));
    c->Z = malloc(n * sizeof(double));
    memcpy(c->d, d, n * sizeof(double));
    effdim_error e;
    effdim_operator *op = NULL;
    if (effdim_dense_random_orthogonal(n1, seed, c->Q1, &e) != EFFDIM_OK ||
        effdim_dense_random_orthogonal(n2, seed + 1, c->Q2, &e) != EFFDIM_OK ||
        effdim_operator_alloc(n, kron_apply, c, kron_free, "kron", &op, &e) != EFFDIM_OK) {
        check_note("building the Kronecker operator failed: %s", e.msg);
        kron_free(c);
    }
    return op;
}

static void kronecker_operator_has_its_spectrum(void)
{
    enum { N1 = 9, N2 = 7, N = N1 * N2 };
    double d[N], M[N * N], w[N], asym;
    for (size_t i = 0; i < N; ++i) d[i] = 2.385 * sin(0.7 * (double)i) + 0.1 * (double)i;
    effdim_operator *op = kron_operator(N1, N2, d, 3);
    effdim_error e;
    CHECK_OK(effdim_operator_to_dense(op, M, &asym, &e), &e);
    CHECK(asym <= 1e-14);
    CHECK_OK(effdim_dense_eigenvalues(N, M, w, &e), &e);
    for (size_t i = 1; i < N; ++i)
        for (size_t j = i; j > 0 && d[j] > d[j - 1]; --j) {
            double t = d[j]; d[j] = d[j - 1]; d[j - 1] = t;
        }
    CHECK_VEC_CLOSE(w, d, N, 1e-13);
    effdim_operator_free(op);
}

static void slq_neff_within_one_percent_of_the_exact_value(void)
{
    enum { N1 = 45, N2 = 45, N = N1 * N2, KD = 8, NZ = 3 };
    double *lam = malloc(N * sizeof(double));
    hessian_like(lam, N, 2385);
    effdim_operator *op = kron_operator(N1, N2, lam, 7);
    const double z[NZ] = {1e-3, 1.0, 10.0};
    double exact[NZ], est[NZ], se[NZ];
    effdim_error e;
    CHECK_OK(effdim_neff(lam, N, z, NZ, EFFDIM_NEG_ZERO, exact, &e), &e);
    /* deflate the converged top 8 */
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = KD;
    lp.tol = 1e-8;
    double dv[KD], *dx = malloc(KD * N * sizeof(double));
    effdim_lanczos_stats ls;
    CHECK_OK(effdim_lanczos_eigs(op, &lp, dv, NULL, NULL, NULL, dx, &ls, &e), &e);
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 256;
    sp.steps = 80;
    sp.block = 16;
    sp.seed = 11;
    effdim_slq *s = NULL;
    CHECK_OK(effdim_slq_run(op, &sp, dv, dx, KD, &s, &e), &e);
    CHECK_OK(effdim_slq_neff(s, z, NZ, EFFDIM_NEG_ZERO, est, se, &e), &e);
    effdim_slq_info info;
    effdim_slq_get_info(s, &info);
    for (size_t j = 0; j < NZ; ++j) {
        double rel = (est[j] - exact[j]) / exact[j];
        check_note("z = %g: exact %.4f, SLQ %.4f +- %.4f (relative error %+.3f%%, SE %.3f%%)", z[j],
                   exact[j], est[j], se[j], 100.0 * rel, 100.0 * se[j] / exact[j]);
        CHECK(fabs(rel) <= 0.01);
        CHECK(se[j] / exact[j] <= 0.004); /* the 1% is not luck: 2.5+ standard errors */
    }
    check_note("n = %d: deflated %zu (Lanczos %zu matvecs), SLQ %zu matvecs, %.2f s", N,
               info.deflated, ls.matvecs, info.matvecs, info.seconds);
    CHECK(info.matvecs == sp.probes * sp.steps && info.breakdowns == 0);
    effdim_slq_free(s);
    free(dx);
    free(lam);
    effdim_operator_free(op);
}

/* SEEDS.md 4.8: 10 eigenvalues in [10, 100] and 990 in [0, 0.01]. */
static void seeds_lanczos_unit_test_top_ten_and_neff(void)
{
    enum { N = 1000, K = 10 };
    double lam[N];
    uint64_t seed = 4242;
    for (size_t i = 0; i < N; ++i) lam[i] = i < K ? 10.0 + 90.0 * lcg(&seed) : 0.01 * lcg(&seed);
    effdim_operator *op = rotated(N, lam, 19, NULL);
    effdim_error e;
    const double z = 1.0;
    double exact;
    CHECK_OK(effdim_neff(lam, N, &z, 1, EFFDIM_NEG_ZERO, &exact, &e), &e);
    /* Lanczos within 100 steps: the top 10 to 1e-6 */
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = K;
    lp.m = 100;
    lp.tol = 1e-10;
    lp.max_matvecs = 100;
    double w[K], *x = malloc(K * N * sizeof(double)), want[K];
    effdim_lanczos_stats ls;
    CHECK_OK(effdim_lanczos_eigs(op, &lp, w, NULL, NULL, NULL, x, &ls, &e), &e);
    memcpy(want, lam, sizeof want);
    for (size_t i = 1; i < K; ++i)
        for (size_t j = i; j > 0 && want[j] > want[j - 1]; --j) {
            double t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
        }
    double worst = 0.0;
    for (size_t i = 0; i < K; ++i) worst = fmax(worst, fabs(w[i] - want[i]) / want[i]);
    check_note("top 10 after %zu Lanczos steps: max relative error %.1e", ls.steps, worst);
    CHECK(worst <= 1e-6);
    CHECK(ls.steps <= 100);
    /* the paper's estimate: N_eff over the Ritz values of 100 Lanczos steps */
    effdim_slq_params one = effdim_slq_default_params();
    one.probes = 1;
    one.steps = 100;
    effdim_slq *s1;
    CHECK_OK(effdim_slq_run(op, &one, NULL, NULL, 0, &s1, &e), &e);
    const double *nodes, *weights;
    size_t cnt;
    CHECK_OK(effdim_slq_quadrature(s1, 0, &nodes, &weights, &cnt, &e), &e);
    double ritz_sum;
    CHECK_OK(effdim_neff(nodes, cnt, &z, 1, EFFDIM_NEG_ZERO, &ritz_sum, &e), &e);
    double wsum = 0.0;
    for (size_t i = 0; i < cnt; ++i) wsum += weights[i];
    CHECK(cnt == 100);
    CHECK_CLOSE(wsum, (double)N, 1e-12); /* weights sum to ||z||^2 = n */
    /* deflated SLQ: within 0.1 */
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 64;
    sp.steps = 30;
    sp.block = 16;
    effdim_slq *s;
    double est, se;
    CHECK_OK(effdim_slq_run(op, &sp, w, x, K, &s, &e), &e);
    CHECK_OK(effdim_slq_neff(s, &z, 1, EFFDIM_NEG_ZERO, &est, &se, &e), &e);
    check_note("N_eff(1): exact %.4f, SLQ %.4f +- %.4f, Ritz sum of 100 steps %.4f", exact, est, se,
               ritz_sum);
    CHECK_NEAR(est, exact, 0.1);
    CHECK(ritz_sum < exact - 2.0); /* the Ritz sum misses most of the small eigenvalues */
    effdim_slq_free(s);
    effdim_slq_free(s1);
    free(x);
    effdim_operator_free(op);
}

static void the_standard_error_is_honest_over_seeds(void)
{
    enum { N = 300, SEEDS = 40, P = 12 };
    double lam[N];
    hessian_like(lam, N, 99);
    effdim_operator *op = rotated(N, lam, 13, NULL);
    const double z = 0.05;
    double exact, est[SEEDS], se[SEEDS];
    effdim_error e;
    CHECK_OK(effdim_neff(lam, N, &z, 1, EFFDIM_NEG_ZERO, &exact, &e), &e);
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = P;
    sp.steps = 60;
    sp.block = P;
    size_t within = 0;
    double mean = 0.0, mean_se = 0.0;
    for (size_t r = 0; r < SEEDS; ++r) {
        sp.seed = 1000 + r;
        effdim_slq *s;
        CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
        CHECK_OK(effdim_slq_neff(s, &z, 1, EFFDIM_NEG_ZERO, est + r, se + r, &e), &e);
        effdim_slq_free(s);
        within += fabs(est[r] - exact) <= 3.0 * se[r];
        mean += est[r] / SEEDS;
        mean_se += se[r] / SEEDS;
    }
    double sd = 0.0;
    for (size_t r = 0; r < SEEDS; ++r) sd += (est[r] - mean) * (est[r] - mean);
    sd = sqrt(sd / (SEEDS - 1));
    check_note("exact %.3f, mean of %d runs %.3f, sd over runs %.3f, mean reported SE %.3f, "
               "%zu of %d within 3 SE",
               exact, SEEDS, mean, sd, mean_se, within, SEEDS);
    CHECK(within >= 36);
    CHECK(sd / mean_se > 0.7 && sd / mean_se < 1.4);
    CHECK(fabs(mean - exact) <= 3.0 * sd / sqrt((double)SEEDS));
    effdim_operator_free(op);
}

static void hutchinson_and_hutchpp_are_honest_and_hutchpp_wins_on_low_rank(void)
{
    enum { N = 400, R = 30, BUDGET = 60 };
    double lam[N];
    uint64_t seed = 5;
    double tr = 0.0;
    for (size_t i = 0; i < N; ++i) {
        lam[i] = i < 12 ? 50.0 + 150.0 * lcg(&seed) : 0.05 * lcg(&seed);
        tr += lam[i];
    }
    effdim_operator *op = rotated(N, lam, 21, NULL);
    effdim_error e;
    double h[R], hs[R], pp[R], ps[R];
    size_t in_h = 0, in_pp = 0;
    for (size_t r = 0; r < R; ++r) {
        CHECK_OK(effdim_hutchinson(op, BUDGET, 7, 500 + r, h + r, hs + r, &e), &e);
        CHECK_OK(effdim_hutchpp(op, BUDGET, 500 + r, pp + r, ps + r, &e), &e);
        in_h += fabs(h[r] - tr) <= 3.0 * hs[r];
        in_pp += fabs(pp[r] - tr) <= 3.0 * ps[r];
    }
    double vh = 0.0, vp = 0.0, mh = 0.0, mp = 0.0;
    for (size_t r = 0; r < R; ++r) {
        mh += h[r] / R;
        mp += pp[r] / R;
    }
    for (size_t r = 0; r < R; ++r) {
        vh += (h[r] - mh) * (h[r] - mh) / (R - 1);
        vp += (pp[r] - mp) * (pp[r] - mp) / (R - 1);
    }
    check_note("trace %.3f: Hutchinson mean %.3f sd %.3f (%zu/%d within 3 SE), Hutch++ mean %.4f "
               "sd %.4f (%zu/%d within 3 SE)",
               tr, mh, sqrt(vh), in_h, R, mp, sqrt(vp), in_pp, R);
    CHECK(in_h >= 26 && in_pp >= 26);
    CHECK(vp < vh / 100.0);
    CHECK(fabs(mp - tr) <= 4.0 * sqrt(vp / R) + 1e-9 * tr);
    /* a rank-deficient sketch: an operator of rank 3 with budget 30 */
    double low[50] = {0};
    low[0] = 4.5;
    low[1] = 2.25;
    low[2] = -1.5;
    effdim_operator *lr = rotated(50, low, 3, NULL);
    double t, se;
    CHECK_OK(effdim_hutchpp(lr, 30, 1, &t, &se, &e), &e);
    CHECK_NEAR(t, 5.25, 1e-12);
    CHECK(se <= 1e-12);
    effdim_operator_free(lr);
    CHECK_STATUS(effdim_hutchpp(op, 2, 1, &t, &se, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "2 matvecs", "at least 3");
    CHECK_STATUS(effdim_hutchinson(op, 0, 1, 1, &t, &se, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "probes = 0");
    effdim_operator_free(op);
}

static void deflating_the_exact_range_of_a_low_rank_operator_is_exact(void)
{
    enum { N = 200, R = 6 };
    double lam[N] = {0};
    const double top[R] = {9.5, 4.25, 2.385, 1.0625, -0.75, -3.125};
    memcpy(lam, top, sizeof top);
    double *A = malloc(N * N * sizeof(double));
    effdim_operator *op = rotated(N, lam, 41, A);
    effdim_error e;
    /* the 4 positive and the 2 negative eigenpairs, by two runs */
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = 4;
    lp.tol = 1e-12;
    double w[R], *x = malloc(R * N * sizeof(double));
    CHECK_OK(effdim_lanczos_eigs(op, &lp, w, NULL, NULL, NULL, x, NULL, &e), &e);
    lp.k = 2;
    lp.which = EFFDIM_LANCZOS_SMALLEST;
    CHECK_OK(effdim_lanczos_eigs(op, &lp, w + 4, NULL, NULL, NULL, x + 4 * N, NULL, &e), &e);
    CHECK_VEC_CLOSE(w, top, R, 1e-12);
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 4;
    sp.steps = 10;
    effdim_slq *s;
    CHECK_OK(effdim_slq_run(op, &sp, w, x, R, &s, &e), &e);
    const double z[2] = {0.5, 3.0};
    double est[2], se[2], want[2];
    for (int pol = 0; pol < 3; ++pol) {
        CHECK_OK(effdim_slq_neff(s, z, 2, (effdim_neg_policy)pol, est, se, &e), &e);
        CHECK_OK(effdim_neff(top, R, z, 2, (effdim_neg_policy)pol, want, &e), &e);
        CHECK_VEC_CLOSE(est, want, 2, 1e-10);
        CHECK(se[0] <= 1e-10 && se[1] <= 1e-10);
    }
    effdim_slq_info info;
    effdim_slq_get_info(s, &info);
    /* the complement is the null space: every node is zero up to the
       deflation error (the Ritz vectors' residuals, ~1e-12 * ||A||) */
    double big = 0.0;
    for (size_t i = 0; i < sp.probes; ++i) {
        const double *nodes, *weights;
        size_t cnt;
        CHECK_OK(effdim_slq_quadrature(s, i, &nodes, &weights, &cnt, &e), &e);
        for (size_t j = 0; j < cnt; ++j) big = fmax(big, fabs(nodes[j]));
    }
    check_note("largest |node| on the complement %.1e, %zu breakdowns", big, info.breakdowns);
    CHECK(big <= 1e-10);
    CHECK(info.breakdowns == 4 && info.matvecs == 4); /* one step per probe */
    CHECK_CLOSE(info.lambda_max, 9.5, 1e-12);
    CHECK_CLOSE(info.lambda_min, -3.125, 1e-12);
    effdim_slq_free(s);
    free(x);
    free(A);
    effdim_operator_free(op);
}

static void policies_on_an_indefinite_operator_match_the_dense_reference(void)
{
    enum { N = 400 };
    double lam[N], *A = malloc(N * N * sizeof(double));
    uint64_t seed = 77;
    for (size_t i = 0; i < N; ++i) lam[i] = -1.5 + 4.0 * lcg(&seed);
    effdim_operator *op = rotated(N, lam, 2, A);
    effdim_error e;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 48;
    sp.steps = 60;
    sp.block = 16;
    effdim_slq *s;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    const double z = 2.0; /* keeps lambda + z > 0, so asis is finite */
    for (int pol = 0; pol < 3; ++pol) {
        double est, se, exact;
        CHECK_OK(effdim_slq_neff(s, &z, 1, (effdim_neg_policy)pol, &est, &se, &e), &e);
        CHECK_OK(effdim_neff_dense(N, A, &z, 1, (effdim_neg_policy)pol, &exact, NULL, &e), &e);
        check_note("policy %s: exact %.3f, SLQ %.3f +- %.3f", effdim_neg_policy_name((effdim_neg_policy)pol),
                   exact, est, se);
        CHECK(fabs(est - exact) <= 4.0 * se + 0.005 * fabs(exact));
    }
    effdim_slq_free(s);
    free(A);
    effdim_operator_free(op);
}

static void results_do_not_depend_on_the_block_size(void)
{
    enum { N = 150 };
    double lam[N];
    for (size_t i = 0; i < N; ++i) lam[i] = 3.0 * exp(-0.05 * (double)i) - 0.1;
    effdim_operator *op = rotated(N, lam, 6, NULL);
    effdim_error e;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 10;
    sp.steps = 25;
    const double z[3] = {0.01, 0.3, 2.0};
    double a[3], b[3], sa[3], sb[3];
    effdim_slq *s;
    sp.block = 1;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    CHECK_OK(effdim_slq_neff(s, z, 3, EFFDIM_NEG_ABS, a, sa, &e), &e);
    effdim_slq_free(s);
    sp.block = 7; /* 7 + 3 */
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    CHECK_OK(effdim_slq_neff(s, z, 3, EFFDIM_NEG_ABS, b, sb, &e), &e);
    effdim_slq_free(s);
    CHECK_VEC_CLOSE(b, a, 3, 1e-12);
    CHECK_VEC_CLOSE(sb, sa, 3, 1e-9);
    effdim_operator_free(op);
}

/* The bias diagnostic is the change from halving the steps: equal to the
 * estimate of an independent run with ceil(m/2) steps (same seed, so the
 * same probes) subtracted from the m-step estimate, because the Gauss
 * quadrature of the leading j x j block of T is the j-step quadrature. It
 * is 0 when every probe's quadrature is exact (Krylov space = the whole
 * complement), of the order of the SE at a small z below |lambda_min| of an
 * indefinite operator under the zero policy, and negligible at a large z. */
static void the_bias_is_the_change_from_halving_the_steps(void)
{
    enum { N = 300 };
    double lam[N];
    for (size_t i = 0; i < N; ++i) lam[i] = 2.385 * cos(3.1 * (double)i / (double)N) + 0.4;
    effdim_operator *op = rotated(N, lam, 17, NULL);
    effdim_error e;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 12;
    sp.seed = 5;
    sp.block = 4;
    const double z[3] = {1e-3, 0.05, 40.0};
    double full[3], half[3], bias[3], se[3], sh[3];
    effdim_slq *s = NULL, *h = NULL;
    sp.steps = 31;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    sp.steps = 16; /* ceil(31 / 2) */
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &h, &e), &e);
    if (s && h) {
        effdim_slq_info info;
        effdim_slq_get_info(s, &info);
        CHECK(info.steps == 31 && info.half_steps == 16);
        CHECK(info.lambda_min < 0.0 && isfinite(info.gap0) && info.gap0 > 0.0);
        CHECK_OK(effdim_slq_neff(s, z, 3, EFFDIM_NEG_ZERO, full, se, &e), &e);
        CHECK_OK(effdim_slq_neff(h, z, 3, EFFDIM_NEG_ZERO, half, sh, &e), &e);
        CHECK_OK(effdim_slq_neff_bias(s, z, 3, EFFDIM_NEG_ZERO, bias, &e), &e);
        for (int j = 0; j < 3; ++j) {
            check_note("z = %-6g N_eff %8.3f +- %.3f, at half the steps %8.3f: bias %+.4f",
                       z[j], full[j], se[j], half[j], bias[j]);
            CHECK_NEAR(bias[j], full[j] - half[j], 1e-9 * (double)N);
        }
        /* the kink at 0 converges slowly, 40 / (x + 40) at once */
        CHECK(fabs(bias[0]) > 1.0 * se[0] && fabs(bias[0]) > 100.0 * fabs(bias[2]));
        CHECK(fabs(bias[2]) < 0.1 * se[2]);
        CHECK(effdim_slq_neff_flag(info.lambda_min, info.gap0, z[0], EFFDIM_NEG_ZERO, se[0],
                                   bias[0]) != 0);
        CHECK(effdim_slq_neff_flag(info.lambda_min, info.gap0, z[2], EFFDIM_NEG_ZERO, se[2],
                                   bias[2]) == 0);
        /* a positive definite operator: no node below 0, gap0 is NaN */
        CHECK(!(info.lambda_min >= 0.0) || isnan(info.gap0));
    }
    effdim_slq_free(s);
    effdim_slq_free(h);
    /* exact probes (steps reach n): the change is 0 */
    sp.steps = N;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    if (s) {
        CHECK_OK(effdim_slq_neff_bias(s, z, 3, EFFDIM_NEG_ZERO, bias, &e), &e);
        CHECK(bias[0] == 0.0 && bias[1] == 0.0 && bias[2] == 0.0);
        CHECK_STATUS(effdim_slq_neff_bias(s, (const double[]){-1.0}, 1, EFFDIM_NEG_ZERO, bias, &e),
                     EFFDIM_EDOM, &e);
        CHECK_MSG(&e, "z[0] = -1");
        CHECK_STATUS(effdim_slq_trace_bias(s, NULL, NULL, bias, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "NULL");
    }
    effdim_slq_free(s);
    /* a positive definite operator has no node below 0 */
    for (size_t i = 0; i < N; ++i) lam[i] = 1.5 + cos((double)i);
    effdim_operator_free(op);
    op = rotated(N, lam, 18, NULL);
    sp.steps = 20;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    if (s) {
        effdim_slq_info info;
        effdim_slq_get_info(s, &info);
        CHECK(info.lambda_min > 0.0 && isnan(info.gap0));
    }
    effdim_slq_free(s);
    effdim_operator_free(op);
}

static double identity_fn(double x, void *ctx)
{
    (void)ctx;
    return x;
}

static void density_integrates_to_one_and_sits_on_the_spectrum(void)
{
    enum { N = 500, NG = 4001 };
    double lam[N], tr = 0.0;
    for (size_t i = 0; i < N; ++i) {
        lam[i] = i < 100 ? 5.0 + 0.2 * sin((double)i) : 0.5 + 0.1 * cos((double)i);
        tr += lam[i];
    }
    effdim_operator *op = rotated(N, lam, 12, NULL);
    effdim_error e;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 20;
    sp.steps = 40;
    sp.block = 10;
    effdim_slq *s;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    const double sigma = 0.05;
    double *grid = malloc(NG * sizeof(double)), *d = malloc(NG * sizeof(double));
    CHECK_OK(effdim_slq_grid(s, NG, 6.0 * sigma, grid, &e), &e);
    CHECK_OK(effdim_slq_density(s, grid, NG, sigma, d, &e), &e);
    double total = 0.0, high = 0.0, h = grid[1] - grid[0];
    for (size_t g = 0; g + 1 < NG; ++g) {
        double piece = 0.5 * h * (d[g] + d[g + 1]);
        total += piece;
        if (grid[g] > 3.0) high += piece;
    }
    check_note("integral %.6f, mass above 3: %.4f (exact 0.2)", total, high);
    CHECK_NEAR(total, 1.0, 1e-6); /* Rademacher: weights sum to n exactly */
    CHECK_NEAR(high, 0.2, 0.02);
    CHECK(grid[0] < 0.4 - 5.0 * sigma && grid[NG - 1] > 5.2 + 5.0 * sigma);
    double est, se;
    CHECK_OK(effdim_slq_trace(s, identity_fn, NULL, &est, &se, &e), &e);
    CHECK(fabs(est - tr) <= 4.0 * se);
    CHECK_STATUS(effdim_slq_density(s, grid, NG, 0.0, d, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "sigma = 0");
    CHECK_STATUS(effdim_slq_grid(s, 1, 0.1, grid, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "1 points", "at least 2");
    CHECK_STATUS(effdim_slq_grid(s, 10, -1.0, grid, &e), EFFDIM_EDOM, &e);
    free(grid);
    free(d);
    effdim_slq_free(s);
    effdim_operator_free(op);
}

/* ---- BLR: SEEDS.md 4.5 ------------------------------------------------------------ */

static void blr_posterior_contraction_identity_holds_to_1e_10(void)
{
    enum { NX = 300, D = 200 };
    double *Phi = malloc(NX * D * sizeof(double));
    const double pi = 3.14159265358979323846;
    for (size_t i = 0; i < NX; ++i) {
        double x = 50.0 * (double)i / (NX - 1);
        for (size_t j = 0; j < D / 2; ++j) {
            Phi[i * D + 2 * j] = cos((double)(j + 1) * pi * x);
            Phi[i * D + 2 * j + 1] = sin((double)(j + 1) * pi * x);
        }
    }
    /* rows added in a fixed scrambled order */
    double *rows = malloc(NX * D * sizeof(double));
    for (size_t i = 0; i < NX; ++i) memcpy(rows + i * D, Phi + ((i * 181) % NX) * D, D * sizeof(double));
    effdim_error e;
    double prev = 0.0;
    const size_t counts[6] = {10, 60, 150, 175, 225, 300};
    for (size_t c = 0; c < 6; ++c) {
        size_t n = counts[c];
        double lhs, rhs, neff;
        CHECK_OK(effdim_blr_contraction(rows, n, D, 0.1, 3.0, &lhs, &rhs, &neff, &e), &e);
        CHECK_CLOSE(lhs, rhs, 1e-10);
        CHECK(neff <= (double)(n < D ? n : D) + 1e-9);
        CHECK(neff > prev);
        if (c == 3) check_note("n = %zu: tr(prior) - tr(post) = %.14f, alpha^2 N_eff = %.14f", n, lhs, rhs);
        prev = neff;
    }
    double lhs;
    CHECK_STATUS(effdim_blr_contraction(rows, 10, D, 0.0, 3.0, &lhs, NULL, NULL, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "noise variance 0");
    CHECK_STATUS(effdim_blr_contraction(rows, 0, D, 0.1, 3.0, &lhs, NULL, NULL, &e), EFFDIM_EINVAL, &e);
    free(rows);
    free(Phi);
}

/* ---- errors ------------------------------------------------------------------------- */

typedef struct flaky {
    size_t calls, fail_at;
} flaky;

static effdim_status flaky_apply(void *ctx, size_t n, size_t nvec, const double *X, size_t ldx,
                                 double *Y, size_t ldy, effdim_error *err)
{
    flaky *f = ctx;
    if (++f->calls == f->fail_at)
        return effdim_error_set(err, EFFDIM_EIO, "batch 17 of train.h5: short read");
    for (size_t j = 0; j < nvec; ++j)
        for (size_t i = 0; i < n; ++i) Y[j * ldy + i] = (0.5 + (double)(i % 7)) * X[j * ldx + i];
    return EFFDIM_OK;
}

static void bad_arguments_and_failing_operators_are_reported(void)
{
    enum { N = 30 };
    flaky f = {0, 0};
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_alloc(N, flaky_apply, &f, NULL, "hvp", &op, &e), &e);
    effdim_slq_params sp = effdim_slq_default_params();
    sp.steps = 5;
    sp.probes = 3;
    effdim_slq *s = (effdim_slq *)&e;
    sp.probes = 0;
    CHECK_STATUS(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "probes = 0");
    CHECK(s == NULL);
    sp.probes = 3;
    double dv[N], dx[N * N];
    memset(dx, 0, sizeof dx);
    for (size_t i = 0; i < N; ++i) dv[i] = 1.0;
    CHECK_STATUS(effdim_slq_run(op, &sp, dv, dx, N, &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "30 deflated eigenpairs", "size 30");
    CHECK_STATUS(effdim_slq_run(op, &sp, NULL, dx, 2, &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "NULL values");
    dx[N + 4] = INFINITY;
    CHECK_STATUS(effdim_slq_run(op, &sp, dv, dx, 2, &s, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "eigenvector 1", "entry 4");
    f.fail_at = 4;
    CHECK_STATUS(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "batch 17 of train.h5: short read");
    CHECK(s == NULL);
    f.calls = 0;
    f.fail_at = 0;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &s, &e), &e);
    const double z[2] = {1.0, 0.0};
    double out[2];
    CHECK_STATUS(effdim_slq_neff(s, z, 2, EFFDIM_NEG_ZERO, out, NULL, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "z[1] = 0");
    const double *nodes, *weights;
    size_t cnt;
    CHECK_STATUS(effdim_slq_quadrature(s, 3, &nodes, &weights, &cnt, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "probe 3", "< 3");
    effdim_slq_free(s);
    effdim_slq_free(NULL);
    f.calls = 0;
    f.fail_at = 2;
    double t, se;
    CHECK_STATUS(effdim_hutchinson(op, 10, 4, 1, &t, &se, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "short read");
    f.calls = 0;
    CHECK_STATUS(effdim_hutchpp(op, 9, 1, &t, &se, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "short read");
    effdim_operator_free(op);
}

/* init / iterate / finish: the same bits as the one-call run, and the
 * estimate after j blocks is that of a run asked for j blocks of probes. */
static void slq_step_by_step_equals_the_one_call_run(void)
{
    enum { S1 = 10, S2 = 12, SN = S1 * S2 };
    double lam[SN];
    hessian_like(lam, SN, 2385);
    effdim_operator *op = kron_operator(S1, S2, lam, 7);
    effdim_error e;
    const double z[2] = {0.01, 1.0};
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = 10;
    sp.steps = 30;
    sp.block = 3;
    sp.seed = 5;
    effdim_slq *one = NULL, *six = NULL, *steps = NULL;
    effdim_slq_workspace *ws = NULL;
    double a[2], ase[2], b[2], bse[2];
    effdim_slq_params s6 = sp;
    s6.probes = 6;
    CHECK_OK(effdim_slq_run(op, &sp, NULL, NULL, 0, &one, &e), &e);
    CHECK_OK(effdim_slq_run(op, &s6, NULL, NULL, 0, &six, &e), &e);
    CHECK_OK(effdim_slq_init(op, &sp, NULL, NULL, 0, &ws, &e), &e);
    CHECK(effdim_slq_current(ws) == NULL);
    CHECK_STATUS(effdim_slq_finish(ws, &steps, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "no probe has finished");
    size_t calls = 0;
    effdim_status st;
    while ((st = effdim_slq_iterate(ws, &e)) == EFFDIM_ECONTINUE) {
        if (++calls == 2) { /* 6 probes done: the same as a run of 6 probes */
            effdim_slq_info ci;
            effdim_slq_get_info(effdim_slq_current(ws), &ci);
            CHECK(ci.probes == 6);
            CHECK_OK(effdim_slq_neff(effdim_slq_current(ws), z, 2, EFFDIM_NEG_ZERO, a, ase, &e), &e);
            CHECK_OK(effdim_slq_neff(six, z, 2, EFFDIM_NEG_ZERO, b, bse, &e), &e);
            CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ase, bse, sizeof ase) == 0);
        }
    }
    CHECK_OK(st, &e);
    CHECK(calls == 3); /* 4 blocks: 3, 3, 3, 1 */
    CHECK_OK(effdim_slq_finish(ws, &steps, &e), &e);
    CHECK(effdim_slq_current(ws) == NULL);
    effdim_slq_workspace_free(ws);
    effdim_slq_info i1, i2;
    effdim_slq_get_info(one, &i1);
    effdim_slq_get_info(steps, &i2);
    CHECK(i1.probes == 10 && i2.probes == 10 && i1.matvecs == i2.matvecs &&
          i1.lambda_min == i2.lambda_min && i1.lambda_max == i2.lambda_max);
    CHECK_OK(effdim_slq_neff(one, z, 2, EFFDIM_NEG_ZERO, a, ase, &e), &e);
    CHECK_OK(effdim_slq_neff(steps, z, 2, EFFDIM_NEG_ZERO, b, bse, &e), &e);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ase, bse, sizeof ase) == 0);
    effdim_slq_free(one);
    effdim_slq_free(six);
    effdim_slq_free(steps);
    effdim_slq_workspace_free(NULL);
    effdim_operator_free(op);
}

/* Adaptive steps: on a smooth problem (a positive spectrum in [0.5, 2]
 * under a random rotation, z = 1) every probe settles long before the cap,
 * and the estimate is the fixed-steps one to the settle tolerance and the
 * closed form within 3 SE. */
static void probes_stop_once_their_quadrature_settles(void)
{
    enum { NS = 400 };
    double d[NS], z = 1.0, exact = 0.0;
    for (size_t i = 0; i < NS; ++i) {
        d[i] = 0.5 + 1.5 * (double)i / (double)(NS - 1);
        exact += d[i] / (d[i] + z);
    }
    effdim_operator *op = NULL;
    effdim_error e;
    double *A = malloc(NS * NS * sizeof(double));
    int built = CHECK_OK(effdim_dense_with_spectrum(NS, d, 5, A, &e), &e) &&
                CHECK_OK(effdim_operator_dense(NS, A, EFFDIM_COPY, &op, &e), &e);
    free(A);
    if (!built) return;
    effdim_slq_params p = effdim_slq_default_params();
    p.probes = 16;
    p.steps = 120;
    p.seed = 3;
    effdim_slq *fixed = NULL, *adapt = NULL;
    CHECK_OK(effdim_slq_run(op, &p, NULL, NULL, 0, &fixed, &e), &e);
    p.settle_z = &z;
    p.settle_nz = 1;
    p.settle_rel = 0.0;
    p.settle_abs = 1e-6;
    CHECK_OK(effdim_slq_run(op, &p, NULL, NULL, 0, &adapt, &e), &e);
    if (fixed && adapt) {
        effdim_slq_info fi, ai;
        effdim_slq_get_info(fixed, &fi);
        effdim_slq_get_info(adapt, &ai);
        double nf, sf, na, sa;
        CHECK_OK(effdim_slq_neff(fixed, &z, 1, EFFDIM_NEG_ZERO, &nf, &sf, &e), &e);
        CHECK_OK(effdim_slq_neff(adapt, &z, 1, EFFDIM_NEG_ZERO, &na, &sa, &e), &e);
        check_note("fixed %zu steps: %.10g +- %.3g; adaptive: %zu probes settled, %zu steps "
                   "(%zu products), %.10g; exact %.10g",
                   fi.steps_total, nf, sf, ai.settled, ai.steps_total, ai.matvecs, na, exact);
        CHECK(ai.settled == p.probes && ai.steps_total < p.probes * 40);
        CHECK(ai.matvecs == ai.steps_total && fi.steps_total == p.probes * p.steps);
        CHECK(fabs(na - nf) <= 2e-6);
        CHECK(fabs(na - exact) <= 3.0 * sa && sa > 0.0);
    }
    effdim_slq_free(fixed);
    effdim_slq_free(adapt);
    effdim_operator_free(op);
}

CHECK_TESTS({"probes stop once their quadrature settles at every z",
             probes_stop_once_their_quadrature_settles},
            {"N_eff policies match their closed forms", neff_policies_match_their_closed_forms},
            {"SLQ step by step equals the one-call run, and a prefix of blocks a shorter run",
             slq_step_by_step_equals_the_one_call_run},
            {"dense reference recovers a known spectrum", dense_reference_recovers_a_known_spectrum},
            {"Kronecker test operator has its spectrum", kronecker_operator_has_its_spectrum},
            {"SLQ N_eff within 1% of the exact value at z = 1e-3, 1, 10",
             slq_neff_within_one_percent_of_the_exact_value},
            {"SEEDS 4.8: top ten in 100 steps and N_eff(1) within 0.1",
             seeds_lanczos_unit_test_top_ten_and_neff},
            {"the standard error is honest over seeds", the_standard_error_is_honest_over_seeds},
            {"Hutchinson and Hutch++ are honest and Hutch++ wins on low rank",
             hutchinson_and_hutchpp_are_honest_and_hutchpp_wins_on_low_rank},
            {"deflating the exact range of a low-rank operator is exact",
             deflating_the_exact_range_of_a_low_rank_operator_is_exact},
            {"policies on an indefinite operator match the dense reference",
             policies_on_an_indefinite_operator_match_the_dense_reference},
            {"results do not depend on the block size", results_do_not_depend_on_the_block_size},
            {"the bias is the change from halving the steps",
             the_bias_is_the_change_from_halving_the_steps},
            {"density integrates to one and sits on the spectrum",
             density_integrates_to_one_and_sits_on_the_spectrum},
            {"BLR posterior contraction identity holds to 1e-10",
             blr_posterior_contraction_identity_holds_to_1e_10},
            {"bad arguments and failing operators are reported",
             bad_arguments_and_failing_operators_are_reported})
