/* tests/test_lanczos.c: thick-restart Lanczos on operators with known spectra.
 *
 * Oracles: spectra fixed by construction (diag(1..n) under a Haar-random
 * rotation, the 1-D Laplacian's closed form 2 - 2cos(j pi/(n+1)), clustered,
 * repeated and indefinite spectra), checked to 1e-10 relative; the true
 * residual ||A v - lambda v|| recomputed here with a plain loop; Ritz-vector
 * orthonormality; determinism from the seed; every error provoked.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/dense.h"
#include "effdim/lanczos.h"
#include "effdim/operator.h"

/* a dense rotated operator with spectrum lam (n); the caller frees it */
static effdim_operator *rotated(size_t n, const double *lam, uint64_t seed)
{
    effdim_error e;
    double *A = malloc(n * n * sizeof(double));
    effdim_operator *op = NULL;
    if (effdim_dense_with_spectrum(n, lam, seed, A, &e) != EFFDIM_OK ||
        effdim_operator_dense(n, A, EFFDIM_COPY, &op, &e) != EFFDIM_OK)
        check_note("building the operator failed: %s", e.msg);
    free(A);
    return op;
}

static void sort_desc(double *x, size_t n)
{
    for (size_t i = 1; i < n; ++i)
        for (size_t j = i; j > 0 && x[j] > x[j - 1]; --j) {
            double t = x[j]; x[j] = x[j - 1]; x[j - 1] = t;
        }
}

/* the wanted eigenvalues, descending, from the full spectrum lam (n) */
static void wanted(const double *lam, size_t n, size_t k, effdim_lanczos_which which, double *out)
{
    double *s = malloc(n * sizeof(double));
    memcpy(s, lam, n * sizeof(double));
    sort_desc(s, n);
    size_t kt = which == EFFDIM_LANCZOS_LARGEST ? k : which == EFFDIM_LANCZOS_SMALLEST ? 0 : (k + 1) / 2;
    size_t kb = k - kt, q = 0;
    for (size_t i = 0; i < kt; ++i) out[q++] = s[i];
    for (size_t i = 0; i < kb; ++i) out[q++] = s[n - kb + i];
    free(s);
}

/* everything a solution must satisfy: values to rtol, bounds and TRUE
 * residuals (recomputed here) within the tolerance rule, orthonormal vectors */
static void check_solution(effdim_operator *op, const effdim_lanczos_solution *sol,
                           const double *want, double rtol, double tol, double anorm)
{
    size_t n = sol->n, k = sol->k;
    CHECK(sol->status == EFFDIM_OK);
    CHECK(sol->stats.nconv == k);
    double worst = 0.0;
    for (size_t i = 0; i < k; ++i)
        worst = fmax(worst, fabs(sol->eigenvalues[i] - want[i]) / fabs(want[i]));
    check_note("k = %zu: max relative eigenvalue error %.2e, %zu steps, %zu restarts, %zu matvecs",
               k, worst, sol->stats.steps, sol->stats.restarts, sol->stats.matvecs);
    CHECK(worst <= rtol);
    for (size_t i = 1; i < k; ++i) CHECK(sol->eigenvalues[i] <= sol->eigenvalues[i - 1]);
    CHECK(sol->vectors != NULL);
    if (!sol->vectors) return;
    double *y = malloc(n * sizeof(double));
    double worst_res = 0.0, worst_orth = 0.0, worst_bound = 0.0;
    for (size_t i = 0; i < k; ++i) {
        const double *v = sol->vectors + i * n;
        effdim_error e;
        CHECK_OK(effdim_operator_apply(op, 1, v, n, y, n, &e), &e);
        double r = 0.0;
        for (size_t t = 0; t < n; ++t) r += (y[t] - sol->eigenvalues[i] * v[t]) * (y[t] - sol->eigenvalues[i] * v[t]);
        r = sqrt(r);
        double thresh = fmax(tol * fabs(sol->eigenvalues[i]), 64.0 * DBL_EPSILON * anorm);
        /* a real bound: never below the true residual (up to the rounding of
           computing that residual), and of the tolerance's order */
        CHECK(r <= sol->residual_bounds[i] + 1e-14 * anorm);
        CHECK(sol->residual_bounds[i] <= 4.0 * thresh);
        worst_bound = fmax(worst_bound, sol->residual_bounds[i] / thresh);
        CHECK_NEAR(sol->residuals[i], r, 1e-14 * anorm + 1e-3 * r);
        CHECK(r <= 2.0 * thresh);
        worst_res = fmax(worst_res, r / thresh);
        for (size_t j = 0; j <= i; ++j) {
            double s = 0.0;
            for (size_t t = 0; t < n; ++t) s += v[t] * sol->vectors[j * n + t];
            worst_orth = fmax(worst_orth, fabs(s - (i == j ? 1.0 : 0.0)));
        }
    }
    check_note("max true residual / threshold %.2f, bound / threshold %.2f, max |V V^T - I| %.1e",
               worst_res, worst_bound, worst_orth);
    CHECK(worst_orth <= 1e-10);
    free(y);
}

/* run to the end through init/iterate/result */
static effdim_lanczos_workspace *solve(effdim_operator *op, effdim_lanczos_params p,
                                       effdim_lanczos_solution *sol)
{
    effdim_error e;
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(op->n, &p, &e);
    CHECK(ws != NULL);
    if (!ws) {
        check_note("%s", e.msg);
        return NULL;
    }
    CHECK_OK(effdim_lanczos_init(ws, op, NULL, &e), &e);
    effdim_status st;
    size_t calls = 0;
    while ((st = effdim_lanczos_iterate(ws, &e)) == EFFDIM_ECONTINUE) ++calls;
    CHECK_OK(st, &e);
    CHECK_OK(effdim_lanczos_result(ws, sol, &e), &e);
    CHECK(calls + 1 == sol->stats.steps); /* one step per call */
    return ws;
}

static void rotated_diag_one_to_n_top_and_bottom(void)
{
    enum { N = 400, K = 8 };
    double lam[N], want[K];
    for (size_t i = 0; i < N; ++i) lam[i] = (double)(i + 1);
    effdim_operator *op = rotated(N, lam, 11);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-10;
    p.want_vectors = 1;
    p.seed = 2385;
    for (int w = 0; w < 2; ++w) {
        p.which = w ? EFFDIM_LANCZOS_SMALLEST : EFFDIM_LANCZOS_LARGEST;
        effdim_lanczos_solution sol;
        effdim_lanczos_workspace *ws = solve(op, p, &sol);
        wanted(lam, N, K, p.which, want);
        if (ws) check_solution(op, &sol, want, 1e-10, p.tol, (double)N);
        effdim_lanczos_free(ws);
    }
    effdim_operator_free(op);
}

/* the 1-D Laplacian tridiag(-1, 2, -1) as a custom callback */
static effdim_status laplacian_apply(void *ctx, size_t n, size_t nvec, const double *X, size_t ldx,
                                     double *Y, size_t ldy, effdim_error *err)
{
    for (size_t j = 0; j < nvec; ++j) {
        const double *x = X + j * ldx;
        double *y = Y + j * ldy;
        for (size_t i = 0; i < n; ++i)
            y[i] = 2.0 * x[i] - (i ? x[i - 1] : 0.0) - (i + 1 < n ? x[i + 1] : 0.0);
    }
    return EFFDIM_OK;
}

static void laplacian_ends_match_the_closed_form(void)
{
    enum { N = 300, K = 6 };
    double lam[N], want[K];
    const double pi = 3.14159265358979323846;
    for (size_t j = 1; j <= N; ++j) lam[j - 1] = 2.0 - 2.0 * cos((double)j * pi / (N + 1));
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_alloc(N, laplacian_apply, NULL, NULL, "laplacian", &op, &e), &e);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-10;
    p.want_vectors = 1;
    p.m = 40; /* forces thick restarts */
    for (int w = 0; w < 3; ++w) {
        p.which = (effdim_lanczos_which)w;
        effdim_lanczos_solution sol;
        effdim_lanczos_workspace *ws = solve(op, p, &sol);
        wanted(lam, N, K, p.which, want);
        if (ws) {
            check_solution(op, &sol, want, 1e-10, p.tol, 4.0);
            CHECK(sol.stats.restarts > 0);
            CHECK(sol.stats.basis_size == 40);
        }
        effdim_lanczos_free(ws);
    }
    effdim_operator_free(op);
}

static void clustered_and_repeated_eigenvalues_are_all_found(void)
{
    enum { N = 500, K = 9 };
    double lam[N], want[K];
    /* 50.25 three times, 40.5 twice, a cluster 30 + {0, 1e-6, 2e-6}, a bulk in [0, 10] */
    const double top[8] = {50.25, 50.25, 50.25, 40.5, 40.5, 30.0, 30.000001, 30.000002};
    for (size_t i = 0; i < N; ++i) lam[i] = i < 8 ? top[i] : 10.0 * (double)(i - 8) / (double)(N - 8);
    effdim_operator *op = rotated(N, lam, 5);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-10;
    p.want_vectors = 1;
    effdim_lanczos_solution sol;
    effdim_lanczos_workspace *ws = solve(op, p, &sol);
    wanted(lam, N, K, p.which, want);
    if (ws) check_solution(op, &sol, want, 1e-10, p.tol, 50.25);
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

static void indefinite_operator_both_ends(void)
{
    enum { N = 350, K = 7 };
    double lam[N], want[K];
    /* eigenvalues in [-3.7, 12.4], most negative ones well separated */
    for (size_t i = 0; i < N; ++i) {
        double u = (double)i / (double)(N - 1);
        lam[i] = -3.7 + 16.1 * u * u * (3.0 - 2.0 * u);
    }
    effdim_operator *op = rotated(N, lam, 23);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-10;
    p.want_vectors = 1;
    p.which = EFFDIM_LANCZOS_BOTH;
    effdim_lanczos_solution sol;
    effdim_lanczos_workspace *ws = solve(op, p, &sol);
    wanted(lam, N, K, p.which, want);
    if (ws) {
        check_solution(op, &sol, want, 1e-10, p.tol, 12.4);
        CHECK(sol.eigenvalues[3] > 0.0 && sol.eigenvalues[4] < 0.0); /* 4 top, 3 bottom */
    }
    effdim_lanczos_free(ws);
    p.which = EFFDIM_LANCZOS_SMALLEST;
    ws = solve(op, p, &sol);
    wanted(lam, N, K, p.which, want);
    if (ws) check_solution(op, &sol, want, 1e-10, p.tol, 12.4);
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

static void hessian_like_top_twenty_in_few_matvecs(void)
{
    /* 10 outliers, then a bulk with a square-root edge (Marchenko-Pastur
       like), many near-zero eigenvalues, a few small negative ones */
    enum { N = 2000, K = 20 };
    double *lam = malloc(N * sizeof(double)), want[K];
    for (size_t i = 0; i < N; ++i) {
        if (i < 10) lam[i] = 20.0 + 200.0 * pow(0.7, (double)i);
        else if (i < 210) lam[i] = 5.0 * (1.0 - pow((double)(i - 9) / 200.0, 2.0 / 3.0));
        else if (i < N - 20) lam[i] = 1e-5 * (double)(i % 13);
        else lam[i] = -0.02 * (double)(N - i) / 20.0;
    }
    effdim_operator *op = rotated(N, lam, 3);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-6;
    p.want_vectors = 1;
    effdim_lanczos_solution sol;
    effdim_lanczos_workspace *ws = solve(op, p, &sol);
    wanted(lam, N, K, p.which, want);
    if (ws) {
        check_solution(op, &sol, want, 1e-9, p.tol, lam[0]);
        check_note("top-20 of a 2000-dim Hessian-like spectrum at tol 1e-6: %zu iteration matvecs "
                   "+ %zu for true residuals, %zu restarts, m = %zu",
                   sol.stats.steps, sol.stats.matvecs_residual, sol.stats.restarts,
                   sol.stats.basis_size);
        CHECK(sol.stats.steps < 150);
        CHECK(sol.stats.matvecs == sol.stats.steps + K);
        CHECK(sol.stats.seconds >= sol.stats.seconds_apply && sol.stats.seconds_apply > 0.0);
    }
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
    free(lam);
}

static void few_distinct_eigenvalues_break_down_and_continue(void)
{
    /* three distinct values: the Krylov space of any start vector is 3-dim,
       so steps 3 breaks down; the copies are found from random restarts */
    enum { N = 60, K = 6 };
    double d[N], want[K];
    for (size_t i = 0; i < N; ++i) d[i] = i % 3 == 0 ? 7.25 : i % 3 == 1 ? 3.5 : -1.125;
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_diag(N, d, &op, &e), &e);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-12;
    p.want_vectors = 1;
    effdim_lanczos_solution sol;
    effdim_lanczos_workspace *ws = solve(op, p, &sol);
    wanted(d, N, K, p.which, want);
    if (ws) {
        CHECK(sol.stats.breakdowns >= 1);
        check_note("%zu breakdowns", sol.stats.breakdowns);
        check_solution(op, &sol, want, 1e-13, p.tol, 7.25);
    }
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

static void k_equal_to_n_is_solved_exactly(void)
{
    enum { N = 5 };
    double A[N * N], w[N];
    const double lam[N] = {4.5, -2.25, 1.125, 0.0625, -7.75};
    effdim_error e;
    CHECK_OK(effdim_dense_with_spectrum(N, lam, 9, A, &e), &e);
    effdim_operator *op;
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_COPY, &op, &e), &e);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = N;
    double v[N * N], res[N];
    effdim_lanczos_stats st;
    CHECK_OK(effdim_lanczos_eigs(op, &p, w, NULL, res, NULL, v, &st, &e), &e);
    double want[N];
    memcpy(want, lam, sizeof want);
    sort_desc(want, N);
    CHECK_VEC_CLOSE(w, want, N, 1e-14);
    CHECK(st.basis_size == N && st.nconv == N);
    for (size_t i = 0; i < N; ++i) CHECK(res[i] <= 1e-13);
    effdim_operator_free(op);
}

static void small_basis_restarts_many_times_and_still_converges(void)
{
    enum { N = 300, K = 4 };
    double lam[N], want[K];
    for (size_t i = 0; i < N; ++i) lam[i] = 0.5 + sqrt((double)i);
    effdim_operator *op = rotated(N, lam, 8);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.m = K + 8;
    p.tol = 1e-10;
    p.want_vectors = 1;
    effdim_lanczos_solution sol;
    effdim_lanczos_workspace *ws = solve(op, p, &sol);
    wanted(lam, N, K, p.which, want);
    if (ws) {
        check_solution(op, &sol, want, 1e-10, p.tol, lam[N - 1]);
        CHECK(sol.stats.restarts >= 5);
    }
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

static void the_same_seed_gives_the_same_run(void)
{
    enum { N = 200, K = 5 };
    double lam[N];
    for (size_t i = 0; i < N; ++i) lam[i] = 1.0 / (1.0 + 0.05 * (double)i);
    effdim_operator *op = rotated(N, lam, 4);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-9;
    p.seed = 77;
    double a[K], b[K], c[K], ba[K], bb[K], bc[K];
    effdim_lanczos_stats sa, sb, sc;
    effdim_error e;
    CHECK_OK(effdim_lanczos_eigs(op, &p, a, ba, NULL, NULL, NULL, &sa, &e), &e);
    CHECK_OK(effdim_lanczos_eigs(op, &p, b, bb, NULL, NULL, NULL, &sb, &e), &e);
    p.seed = 78;
    CHECK_OK(effdim_lanczos_eigs(op, &p, c, bc, NULL, NULL, NULL, &sc, &e), &e);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ba, bb, sizeof ba) == 0 && sa.steps == sb.steps);
    CHECK(memcmp(ba, bc, sizeof ba) != 0); /* another start vector: another path */
    CHECK_VEC_CLOSE(c, a, K, 1e-12);       /* ... to the same eigenvalues */
    effdim_operator_free(op);
}

static void a_given_start_vector_is_used_and_a_zero_one_refused(void)
{
    enum { N = 50 };
    double d[N], v0[N];
    for (size_t i = 0; i < N; ++i) d[i] = (double)(i + 1);
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_diag(N, d, &op, &e), &e);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = 1;
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(N, &p, &e);
    /* the top eigenvector itself: converged after one step */
    memset(v0, 0, sizeof v0);
    v0[N - 1] = -3.0;
    CHECK_OK(effdim_lanczos_init(ws, op, v0, &e), &e);
    CHECK_OK(effdim_lanczos_iterate(ws, &e), &e);
    effdim_lanczos_solution sol;
    CHECK_OK(effdim_lanczos_result(ws, &sol, &e), &e);
    CHECK(sol.stats.steps == 1 && sol.eigenvalues[0] == (double)N);
    memset(v0, 0, sizeof v0);
    CHECK_STATUS(effdim_lanczos_init(ws, op, v0, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "start vector", "zero");
    v0[3] = NAN;
    CHECK_STATUS(effdim_lanczos_init(ws, op, v0, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "v0[3]");
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

static void the_matvec_limit_returns_partial_results(void)
{
    enum { N = 300, K = 6 };
    double lam[N];
    for (size_t i = 0; i < N; ++i) lam[i] = 2.0 - 2.0 * cos((double)(i + 1) * 3.14159265358979 / (N + 1));
    effdim_operator *op = rotated(N, lam, 2);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = K;
    p.tol = 1e-12;
    p.max_matvecs = 45;
    effdim_error e;
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(N, &p, &e);
    CHECK_OK(effdim_lanczos_init(ws, op, NULL, &e), &e);
    effdim_lanczos_solution sol;
    CHECK_STATUS(effdim_lanczos_result(ws, &sol, &e), EFFDIM_EINVAL, &e); /* not finished */
    CHECK_MSG(&e, "has not finished");
    effdim_status st;
    effdim_lanczos_progress pr;
    while ((st = effdim_lanczos_iterate(ws, &e)) == EFFDIM_ECONTINUE) {
        effdim_lanczos_get_progress(ws, &pr);
        CHECK(pr.k == K && pr.nconv <= K);
    }
    CHECK(pr.steps == 44 && pr.matvecs == 44 && pr.basis == 44);
    CHECK(pr.theta_max > pr.theta_min && pr.worst > 1.0);
    CHECK_STATUS(st, EFFDIM_EMAXITER, &e);
    CHECK_MSG(&e, "of 6 eigenpairs converged", "max_matvecs = 45");
    CHECK_OK(effdim_lanczos_result(ws, &sol, &e), &e);
    CHECK(sol.status == EFFDIM_EMAXITER && sol.stats.nconv < K && sol.stats.steps == 45);
    CHECK(sol.eigenvalues[0] <= 4.0 && sol.eigenvalues[0] > 3.99);
    for (size_t i = 0; i < K; ++i) CHECK(sol.residuals[i] > 0.0 && isfinite(sol.residuals[i]));
    /* iterating again keeps the verdict */
    CHECK_STATUS(effdim_lanczos_iterate(ws, &e), EFFDIM_EMAXITER, &e);
    effdim_lanczos_free(ws);
    /* a limit below k leaves nothing to return, and says so */
    p.max_matvecs = 4;
    ws = effdim_lanczos_alloc(N, &p, &e);
    CHECK_OK(effdim_lanczos_init(ws, op, NULL, &e), &e);
    while ((st = effdim_lanczos_iterate(ws, &e)) == EFFDIM_ECONTINUE) {
    }
    CHECK_STATUS(st, EFFDIM_EMAXITER, &e);
    CHECK_MSG(&e, "max_matvecs = 4 is below k = 6");
    CHECK_STATUS(effdim_lanczos_result(ws, &sol, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "before k Ritz values existed");
    effdim_lanczos_free(ws);
    p.max_matvecs = 45;
    /* the one-call wrapper fills the partial results too */
    double w[K], b[K];
    unsigned char conv[K];
    memset(conv, 7, sizeof conv);
    effdim_lanczos_stats s;
    CHECK_STATUS(effdim_lanczos_eigs(op, &p, w, b, NULL, conv, NULL, &s, &e), EFFDIM_EMAXITER, &e);
    CHECK(w[0] > 3.99 && s.steps == 45);
    /* converged[] says which pairs met tol: as many as nconv, not all of them here */
    size_t nc = 0;
    for (size_t i = 0; i < K; ++i) {
        CHECK(conv[i] == 0 || conv[i] == 1);
        nc += conv[i] == 1;
    }
    check_note("%zu of %d pairs converged after 45 steps", nc, K);
    CHECK(nc == s.nconv && nc < K);
    effdim_operator_free(op);
}

static void bad_parameters_are_refused_with_their_values(void)
{
    effdim_error e;
    effdim_lanczos_params p = effdim_lanczos_default_params();
    CHECK(p.k == 20 && p.tol == 1e-8 && p.true_residuals == 1 && p.m == 0);
    p.k = 11;
    CHECK(effdim_lanczos_alloc(10, &p, &e) == NULL);
    CHECK(e.code == EFFDIM_EINVAL);
    CHECK_MSG(&e, "k = 11", "size n = 10", "k <= n");
    p.k = 0;
    CHECK(effdim_lanczos_alloc(10, &p, &e) == NULL);
    CHECK_MSG(&e, "k = 0");
    p.k = 5;
    p.m = 6;
    CHECK(effdim_lanczos_alloc(100, &p, &e) == NULL);
    CHECK_MSG(&e, "m = 6", "too small", "m >= k + 2 = 7");
    p.m = 6; /* ... but m = n = 6 is allowed: the basis spans everything */
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(6, &p, &e);
    CHECK(ws != NULL);
    effdim_lanczos_free(ws);
    p.m = 0;
    p.tol = 0.0;
    CHECK(effdim_lanczos_alloc(100, &p, &e) == NULL);
    CHECK_MSG(&e, "tol = 0", "0 < tol < 1");
    p.tol = 1e-8;
    p.which = (effdim_lanczos_which)9;
    CHECK(effdim_lanczos_alloc(100, &p, &e) == NULL);
    CHECK_MSG(&e, "which = 9");
    effdim_lanczos_which w;
    CHECK_OK(effdim_lanczos_which_parse("bottom", &w, &e), &e);
    CHECK(w == EFFDIM_LANCZOS_SMALLEST && strcmp(effdim_lanczos_which_name(w), "bottom") == 0);
    CHECK_STATUS(effdim_lanczos_which_parse("middle", &w, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "'middle'", "top, bottom or both");
    effdim_lanczos_free(NULL);
}

static void init_refuses_a_mismatched_or_callbackless_operator(void)
{
    effdim_error e;
    double d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    effdim_operator *op;
    CHECK_OK(effdim_operator_diag(8, d, &op, &e), &e);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = 2;
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(9, &p, &e);
    CHECK_STATUS(effdim_lanczos_init(ws, op, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "size 8", "n = 9");
    CHECK_STATUS(effdim_lanczos_iterate(ws, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "before effdim_lanczos_init");
    effdim_lanczos_free(ws);
    ws = effdim_lanczos_alloc(8, &p, &e);
    effdim_operator_apply_fn keep = op->apply;
    op->apply = NULL;
    CHECK_STATUS(effdim_lanczos_init(ws, op, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "NULL apply callback");
    op->apply = keep;
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

/* fails on a chosen call, or returns NaN */
typedef struct failing {
    size_t calls, fail_at;
    int nan;
} failing;

static effdim_status failing_apply(void *ctx, size_t n, size_t nvec, const double *X, size_t ldx,
                                   double *Y, size_t ldy, effdim_error *err)
{
    failing *f = ctx;
    f->calls += 1;
    if (f->calls == f->fail_at && !f->nan)
        return effdim_error_set(err, EFFDIM_EIO, "data.h5: /X: read error at row %zu", 4242 + f->calls);
    for (size_t j = 0; j < nvec; ++j)
        for (size_t i = 0; i < n; ++i)
            Y[j * ldy + i] = (1.0 + (double)i) * X[j * ldx + i];
    if (f->calls == f->fail_at && f->nan) Y[3] = NAN;
    return EFFDIM_OK;
}

static void a_failing_operator_stops_the_run_with_its_message(void)
{
    failing f = {0, 7, 0};
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_alloc(40, failing_apply, &f, NULL, "hessian-fd", &op, &e), &e);
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = 3;
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(40, &p, &e);
    CHECK_OK(effdim_lanczos_init(ws, op, NULL, &e), &e);
    effdim_status st;
    while ((st = effdim_lanczos_iterate(ws, &e)) == EFFDIM_ECONTINUE) {
    }
    CHECK_STATUS(st, EFFDIM_EIO, &e);
    CHECK_MSG(&e, "data.h5: /X: read error at row 4249");
    effdim_error_clear(&e);
    CHECK_STATUS(effdim_lanczos_iterate(ws, &e), EFFDIM_EIO, &e); /* the verdict stays */
    CHECK_MSG(&e, "read error at row 4249");
    effdim_lanczos_solution sol;
    CHECK_STATUS(effdim_lanczos_result(ws, &sol, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "failed");
    /* a non-finite product is refused with the step */
    f.calls = 0;
    f.fail_at = 5;
    f.nan = 1;
    CHECK_OK(effdim_lanczos_init(ws, op, NULL, &e), &e);
    while ((st = effdim_lanczos_iterate(ws, &e)) == EFFDIM_ECONTINUE) {
    }
    CHECK_STATUS(st, EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "operator 'hessian-fd'", "step 4", "non-finite");
    /* a failure while computing the true residuals at the end */
    f.calls = 0;
    f.nan = 0;
    f.fail_at = 41; /* after the basis spans R^40 */
    p.k = 40;
    effdim_lanczos_free(ws);
    ws = effdim_lanczos_alloc(40, &p, &e);
    CHECK_OK(effdim_lanczos_init(ws, op, NULL, &e), &e);
    while ((st = effdim_lanczos_iterate(ws, &e)) == EFFDIM_ECONTINUE) {
    }
    CHECK_STATUS(st, EFFDIM_EIO, &e);
    CHECK_MSG(&e, "read error at row 4283");
    effdim_lanczos_free(ws);
    effdim_operator_free(op);
}

/* After thick restarts the pairs kept from earlier cycles have an exactly
 * zero coupling to the residual; their bound is still a real one: at least
 * the recurrence's rounding level, and never below the true residual. */
static void locked_pairs_after_restarts_report_a_nonzero_bound(void)
{
    enum { NL = 300, KL = 8 };
    double d[NL];
    for (size_t i = 0; i < NL; ++i) d[i] = 2.385 * (double)(i + 1) / (double)NL;
    effdim_operator *op = NULL;
    effdim_error e;
    if (!CHECK_OK(effdim_operator_diag(NL, d, &op, &e), &e)) return;
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = KL;
    p.m = KL + 6;
    p.tol = 1e-10;
    double w[KL], b[KL], r[KL];
    effdim_lanczos_stats s;
    CHECK_OK(effdim_lanczos_eigs(op, &p, w, b, r, NULL, NULL, &s, &e), &e);
    CHECK(s.restarts > 0);
    double floor = 64.0 * 2.220446049250313e-16 * d[NL - 1] * 0.5;
    int all = 1;
    for (size_t i = 0; i < KL; ++i) all &= b[i] >= floor && r[i] <= b[i] + 1e-14 * d[NL - 1];
    check_note("%zu restarts; bounds %.2e .. %.2e, true residuals %.2e .. %.2e", s.restarts,
               b[0], b[KL - 1], r[0], r[KL - 1]);
    CHECK(all);
    effdim_operator_free(op);
}

/* An operator symmetric only up to a perturbation (as a finite-difference
 * Hessian is): y = D x + delta N x with N a fixed random nonsymmetric
 * matrix. The projected bound cannot see the asymmetry (T is symmetric by
 * construction); the bound reported adds the relation errors the Ritz
 * vectors carry, so it stays above the true residual after restarts. */
typedef struct asym_op {
    size_t n;
    double delta, *d, *N;
} asym_op;

static effdim_status asym_apply(void *ctx, size_t n, size_t nvec, const double *X, size_t ldx,
                                double *Y, size_t ldy, effdim_error *err)
{
    (void)err;
    const asym_op *a = ctx;
    for (size_t v = 0; v < nvec; ++v)
        for (size_t i = 0; i < n; ++i) {
            double acc = 0.0;
            for (size_t j = 0; j < n; ++j) acc += a->N[i * n + j] * X[v * ldx + j];
            Y[v * ldy + i] = a->d[i] * X[v * ldx + i] + a->delta * acc;
        }
    return EFFDIM_OK;
}

static void bounds_cover_an_asymmetric_operator_after_restarts(void)
{
    enum { NA = 200, KA = 6 };
    asym_op a = {NA, 1e-7, malloc(NA * sizeof(double)), malloc(NA * NA * sizeof(double))};
    uint64_t x = 12345;
    for (size_t i = 0; i < NA; ++i) a.d[i] = 1.0 + (double)i / (double)NA;
    for (size_t i = 0; i < NA * NA; ++i) { /* xorshift, uniform in [-1, 1) */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a.N[i] = (double)(x >> 11) / 4503599627370496.0 - 1.0;
    }
    effdim_operator *op = NULL;
    effdim_error e;
    if (!CHECK_OK(effdim_operator_alloc(NA, asym_apply, &a, NULL, "asym", &op, &e), &e)) goto done;
    effdim_lanczos_params p = effdim_lanczos_default_params();
    p.k = KA;
    p.m = KA + 8;
    p.tol = 1e-4;
    p.max_matvecs = 3000;
    double w[KA], b[KA], r[KA];
    effdim_lanczos_stats s;
    effdim_status st = effdim_lanczos_eigs(op, &p, w, b, r, NULL, NULL, &s, &e);
    CHECK(st == EFFDIM_OK || st == EFFDIM_EMAXITER);
    CHECK(s.restarts > 0);
    int all = 1;
    double worst = 0.0;
    for (size_t i = 0; i < KA; ++i) {
        all &= r[i] <= b[i] + 1e-14 * 2.0;
        worst = fmax(worst, r[i] / b[i]);
    }
    check_note("%zu restarts; true residual / bound at most %.3f (true %.2e .. %.2e)", s.restarts,
               worst, r[0], r[KA - 1]);
    CHECK(all);
done:
    effdim_operator_free(op);
    free(a.d);
    free(a.N);
}

CHECK_TESTS({"an asymmetric operator: bounds above the true residuals after restarts",
             bounds_cover_an_asymmetric_operator_after_restarts},
            {"locked pairs after thick restarts report a nonzero residual bound",
             locked_pairs_after_restarts_report_a_nonzero_bound},
            {"rotated diag(1..n): top and bottom k to 1e-10", rotated_diag_one_to_n_top_and_bottom},
            {"1-D Laplacian ends match the closed form", laplacian_ends_match_the_closed_form},
            {"clustered and repeated eigenvalues are all found",
             clustered_and_repeated_eigenvalues_are_all_found},
            {"indefinite operator: both ends and the bottom", indefinite_operator_both_ends},
            {"Hessian-like top 20 in few matvecs", hessian_like_top_twenty_in_few_matvecs},
            {"few distinct eigenvalues break down and continue",
             few_distinct_eigenvalues_break_down_and_continue},
            {"k equal to n is solved exactly", k_equal_to_n_is_solved_exactly},
            {"a small basis restarts many times and still converges",
             small_basis_restarts_many_times_and_still_converges},
            {"the same seed gives the same run", the_same_seed_gives_the_same_run},
            {"a given start vector is used and a zero one refused",
             a_given_start_vector_is_used_and_a_zero_one_refused},
            {"the matvec limit returns partial results", the_matvec_limit_returns_partial_results},
            {"bad parameters are refused with their values", bad_parameters_are_refused_with_their_values},
            {"init refuses a mismatched or callbackless operator",
             init_refuses_a_mismatched_or_callbackless_operator},
            {"a failing operator stops the run with its message",
             a_failing_operator_stops_the_run_with_its_message})
