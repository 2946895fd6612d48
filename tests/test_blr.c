/* tests/test_blr.c: posterior contraction in Bayesian linear regression
 * (lib/blr.c; Maddox, Benton and Wilson 2020, Section 4; SEEDS.md 4.5-4.8).
 *
 * Oracles:
 * - the identity tr(S_prior) - tr(S_post) = alpha^2 N_eff(H, 1/alpha^2) to
 *   1e-10 at every n in the notebook's configuration (two LAPACK paths:
 *   Cholesky inverse against eigenvalues), and against the independent
 *   effdim_blr_contraction on the first n rows of the shuffled design;
 * - N_eff(H) <= min(n, k), non-decreasing in n; the posterior N_eff
 *   non-increasing;
 * - closed forms at n = 0: N_eff of the prior covariance k alpha^2 /
 *   (alpha^2 + z); the function-space N_eff against the (N, N) matrix
 *   Phi S_post Phi^T formed densely and eigen-decomposed (dsyev);
 * - the order is a seeded permutation; the file round trips; bad
 *   parameters and bad files are refused naming the field; an interrupt
 *   from the progress callback returns the rows done.
 */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/blr.h"
#include "effdim/neff.h"
#include "h5io.h"

/* a small configuration for the tests that need no notebook sizes */
static effdim_blr_params small_params(void)
{
    effdim_blr_params p = effdim_blr_default_params();
    p.n_points = 41;
    p.x_max = 7.3;
    p.n_freq = 12;
    p.seed = 2385;
    return p;
}

/* N_eff at z of the eigenvalues of Phi S Phi^T (N, N) with S = (Phi_n^T
 * Phi_n / noise + I / a2)^-1 from the first n rows of order, formed densely. */
static double dense_function_neff(const effdim_blr_params *p, const double *Phi,
                                  const int64_t *order, size_t n)
{
    size_t N = p->n_points, k = 2 * p->n_freq;
    double *S = calloc(k * k, sizeof(double)), *T = malloc(N * k * sizeof(double));
    double *F = malloc(N * N * sizeof(double)), *w = malloc(N * sizeof(double)), out = NAN;
    for (size_t t = 0; t < n; ++t) {
        const double *ph = Phi + (size_t)order[t] * k;
        for (size_t i = 0; i < k; ++i)
            for (size_t j = 0; j < k; ++j) S[i * k + j] += ph[i] * ph[j] / p->noise;
    }
    for (size_t i = 0; i < k; ++i) S[i * k + i] += 1.0 / p->prior_var;
    if (CHECK(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)k, S, (lapack_int)k) == 0) &&
        CHECK(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)k, S, (lapack_int)k) == 0)) {
        for (size_t i = 0; i < k; ++i)
            for (size_t j = i + 1; j < k; ++j) S[i * k + j] = S[j * k + i];
        for (size_t a = 0; a < N; ++a)
            for (size_t j = 0; j < k; ++j) {
                double s = 0.0;
                for (size_t i = 0; i < k; ++i) s += Phi[a * k + i] * S[i * k + j];
                T[a * k + j] = s;
            }
        for (size_t a = 0; a < N; ++a)
            for (size_t b = 0; b < N; ++b) {
                double s = 0.0;
                for (size_t j = 0; j < k; ++j) s += T[a * k + j] * Phi[b * k + j];
                F[a * N + b] = s;
            }
        if (CHECK(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)N, F, (lapack_int)N, w) == 0)) {
            out = 0.0;
            for (size_t a = 0; a < N; ++a)
                if (w[a] > 0.0) out += w[a] / (w[a] + p->z);
        }
    }
    free(S);
    free(T);
    free(F);
    free(w);
    return out;
}

static void the_identity_holds_to_1e_10_at_every_n_in_the_notebook_configuration(void)
{
    effdim_error e;
    effdim_blr_params p = effdim_blr_default_params();
    CHECK(p.n_points == 300 && p.n_freq == 100 && p.noise == 0.1 && p.prior_var == 3.0 &&
          p.z == 5.0 && p.x_max == 50.0);
    effdim_blr_result *r = NULL;
    if (!CHECK_OK(effdim_blr_run(&p, NULL, &r, &e), &e)) return;
    size_t N = p.n_points, k = 200;
    CHECK(r->k == k && r->n_rows == N + 1 && r->complete);
    double worst = 0.0;
    int mono_h = 1, mono_p = 1, bounded = 1;
    for (size_t n = 1; n <= N; ++n) {
        double rhs = p.prior_var * r->neff_hessian[n];
        double rel = fabs(r->contraction[n] - rhs) / r->contraction[n];
        worst = rel > worst ? rel : worst;
        mono_h = mono_h && r->neff_hessian[n] >= r->neff_hessian[n - 1] - 1e-12;
        mono_p = mono_p && r->neff_posterior[n] <= r->neff_posterior[n - 1] + 1e-12;
        bounded = bounded && r->neff_hessian[n] <= (double)(n < k ? n : k) + 1e-9 &&
                  r->rank[n] <= (int64_t)(n < k ? n : k);
    }
    CHECK(worst <= 1e-10);
    CHECK_CLOSE(r->max_identity_err, worst, 0.0);
    CHECK(mono_h && mono_p && bounded);
    /* at n = 0 the prior: every covariance eigenvalue is alpha^2 */
    CHECK(r->neff_hessian[0] == 0.0 && r->rank[0] == 0);
    CHECK(fabs(r->contraction[0]) < 1e-12);
    CHECK_CLOSE(r->neff_posterior[0], (double)k * 3.0 / 8.0, 1e-13);
    /* all 300 points: H has full rank 200 (no aliasing at this grid) */
    CHECK(r->rank[N] == (int64_t)k);
    /* the notebook's number at n = 300 (SEEDS.md: 599.8665185564...) */
    CHECK_CLOSE(r->contraction[N], 599.866518556440, 1e-12);
    check_note("n = 1..300: max |contraction - a2 N_eff| / contraction = %.1e; N_eff(H, 1/3) at "
               "n = 50, 150, 200, 300: %.4f %.4f %.4f %.4f; posterior N_eff(5): %.4f -> %.4f; "
               "function-space N_eff(5): %.4f -> %.4f; %.2f s",
               worst, r->neff_hessian[50], r->neff_hessian[150], r->neff_hessian[200],
               r->neff_hessian[300], r->neff_posterior[0], r->neff_posterior[N],
               r->neff_function[0], r->neff_function[N], r->seconds);
    /* the independent helper on the first n rows of the shuffled design */
    double *Phi = malloc(N * k * sizeof(double)), *x = malloc(N * sizeof(double));
    double *rows = malloc(N * k * sizeof(double));
    CHECK_OK(effdim_blr_design(&p, Phi, x, &e), &e);
    CHECK_VEC_CLOSE(x, r->x, N, 0.0);
    for (size_t t = 0; t < N; ++t) memcpy(rows + t * k, Phi + (size_t)r->order[t] * k, k * sizeof(double));
    const size_t at[] = {1, 37, 150, 199, 200, 201, 300};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; ++i) {
        double c = NAN, a2n = NAN, ne = NAN;
        CHECK_OK(effdim_blr_contraction(rows, at[i], k, p.noise, p.prior_var, &c, &a2n, &ne, &e), &e);
        CHECK_CLOSE(r->contraction[at[i]], c, 1e-12);
        CHECK_CLOSE(r->neff_hessian[at[i]], ne, 1e-10);
    }
    free(Phi);
    free(x);
    free(rows);
    effdim_blr_result_free(r);
}

static void the_function_space_neff_equals_the_dense_n_by_n_covariance(void)
{
    effdim_error e;
    effdim_blr_params p = small_params();
    effdim_blr_result *r = NULL;
    if (!CHECK_OK(effdim_blr_run(&p, NULL, &r, &e), &e)) return;
    size_t N = p.n_points, k = 2 * p.n_freq;
    double *Phi = malloc(N * k * sizeof(double)), *x = malloc(N * sizeof(double));
    CHECK_OK(effdim_blr_design(&p, Phi, x, &e), &e);
    const size_t at[] = {0, 1, 9, 24, 25, 41};
    double worst = 0.0;
    for (size_t i = 0; i < sizeof at / sizeof at[0]; ++i) {
        double want = dense_function_neff(&p, Phi, r->order, at[i]);
        CHECK_CLOSE(r->neff_function[at[i]], want, 1e-11);
        worst = fmax(worst, fabs(r->neff_function[at[i]] - want) / want);
    }
    /* at n = 0: the prior; the posterior N_eff is k a2 / (a2 + z) */
    CHECK_CLOSE(r->neff_posterior[0], (double)k * p.prior_var / (p.prior_var + p.z), 1e-13);
    CHECK(r->max_identity_err <= 1e-10);
    check_note("41 points, 24 features: function-space N_eff vs dense (41, 41) covariance "
               "max rel diff %.1e", worst);
    free(Phi);
    free(x);
    effdim_blr_result_free(r);
}

static void the_order_is_a_seeded_permutation(void)
{
    effdim_error e;
    effdim_blr_params p = small_params();
    effdim_blr_result *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(effdim_blr_run(&p, NULL, &a, &e), &e);
    CHECK_OK(effdim_blr_run(&p, NULL, &b, &e), &e);
    p.seed = 2386;
    CHECK_OK(effdim_blr_run(&p, NULL, &c, &e), &e);
    if (!a || !b || !c) goto done;
    size_t N = p.n_points;
    int *seen = calloc(N, sizeof(int)), perm = 1, differs = 0;
    for (size_t t = 0; t < N; ++t) {
        perm = perm && a->order[t] >= 0 && (size_t)a->order[t] < N && !seen[a->order[t]]++;
        differs += a->order[t] != c->order[t];
    }
    free(seen);
    CHECK(perm);
    CHECK(memcmp(a->order, b->order, N * sizeof(int64_t)) == 0);
    CHECK(memcmp(a->neff_function, b->neff_function, a->n_rows * sizeof(double)) == 0);
    CHECK(differs > 0);
    /* the end point does not depend on the order; the path does */
    CHECK_CLOSE(c->neff_hessian[N], a->neff_hessian[N], 1e-12);
    CHECK_CLOSE(c->contraction[N], a->contraction[N], 1e-12);
done:
    effdim_blr_result_free(a);
    effdim_blr_result_free(b);
    effdim_blr_result_free(c);
}

static void the_file_round_trips(void)
{
    effdim_error e;
    effdim_blr_params p = small_params();
    effdim_blr_result *r = NULL, *back = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/blr.h5", check_tmpdir());
    if (!CHECK_OK(effdim_blr_run(&p, NULL, &r, &e), &e)) return;
    if (CHECK_OK(effdim_blr_save(r, path, &e), &e) && CHECK_OK(effdim_blr_load(path, &back, &e), &e)) {
        CHECK(back->n_rows == r->n_rows && back->k == r->k && back->complete == 1);
        CHECK(back->params.n_points == p.n_points && back->params.n_freq == p.n_freq &&
              back->params.x_max == p.x_max && back->params.noise == p.noise &&
              back->params.prior_var == p.prior_var && back->params.z == p.z &&
              back->params.seed == p.seed);
        CHECK(memcmp(back->order, r->order, p.n_points * sizeof(int64_t)) == 0);
        CHECK(memcmp(back->rank, r->rank, r->n_rows * sizeof(int64_t)) == 0);
        CHECK_VEC_CLOSE(back->x, r->x, p.n_points, 0.0);
        CHECK_VEC_CLOSE(back->neff_hessian, r->neff_hessian, r->n_rows, 0.0);
        CHECK_VEC_CLOSE(back->neff_posterior, r->neff_posterior, r->n_rows, 0.0);
        CHECK_VEC_CLOSE(back->neff_function, r->neff_function, r->n_rows, 0.0);
        CHECK_VEC_CLOSE(back->contraction, r->contraction, r->n_rows, 0.0);
        CHECK(back->max_identity_err == r->max_identity_err && back->seconds == r->seconds);
        CHECK(back->version && back->created && strlen(back->created) == 20);
    }
    effdim_blr_result_free(back);
    back = NULL;
    /* a wrong format, a newer version, a short array */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0);
    H5Adelete(f, "format");
    CHECK_OK(effdim_h5_attr_write_string(f, "format", "effdim.spectrum", &e), &e);
    H5Fclose(f);
    CHECK_STATUS(effdim_blr_load(path, &back, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, path, "format is 'effdim.spectrum'", "effdim.blr");
    CHECK(back == NULL);
    CHECK_OK(effdim_blr_save(r, path, &e), &e);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "format_version");
    CHECK_OK(effdim_h5_attr_write_int64(f, "format_version", 2, &e), &e);
    H5Fclose(f);
    CHECK_STATUS(effdim_blr_load(path, &back, &e), EFFDIM_EVERSION, &e);
    CHECK_MSG(&e, "format_version 2 is newer");
    CHECK_OK(effdim_blr_save(r, path, &e), &e);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "blr/neff_function", H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "blr", H5P_DEFAULT);
    size_t dims[1] = {5};
    double five[5] = {1, 2, 3, 4, 5};
    CHECK_OK(effdim_h5_write_doubles(g, "neff_function", 1, dims, five, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    CHECK_STATUS(effdim_blr_load(path, &back, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "/blr/neff_function", "of 5", "of 42");
    CHECK_STATUS(effdim_blr_load("/nonexistent/blr.h5", &back, &e), EFFDIM_ENOTFOUND, &e);
    effdim_blr_result_free(r);
}

static int stop_after_ten(void *ctx, const effdim_progress_event *ev)
{
    size_t *calls = ctx;
    ++*calls;
    CHECK(!strcmp(ev->stage, "blr") && ev->total == 41);
    return ev->done >= 10;
}

static void an_interrupt_returns_the_rows_done(void)
{
    effdim_error e;
    effdim_blr_params p = small_params();
    size_t calls = 0;
    effdim_progress prog = {stop_after_ten, &calls};
    effdim_blr_result *r = NULL;
    CHECK_STATUS(effdim_blr_run(&p, &prog, &r, &e), EFFDIM_EMAXITER, &e);
    CHECK_MSG(&e, "interrupted after 10 of 41 points");
    if (!CHECK(r != NULL)) return;
    CHECK(r->n_rows == 11 && !r->complete && calls == 11);
    effdim_blr_result *full = NULL;
    CHECK_OK(effdim_blr_run(&p, NULL, &full, &e), &e);
    if (full) CHECK_VEC_CLOSE(r->neff_function, full->neff_function, 11, 0.0);
    effdim_blr_result_free(full);
    effdim_blr_result_free(r);
}

static void bad_parameters_are_refused_naming_the_field(void)
{
    effdim_error e;
    effdim_blr_result *r = NULL;
    effdim_blr_params p = small_params();
    p.n_points = 0;
    CHECK_STATUS(effdim_blr_run(&p, NULL, &r, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n_points = 0");
    p = small_params();
    p.n_freq = 0;
    CHECK_STATUS(effdim_blr_run(&p, NULL, &r, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n_freq = 0");
    p = small_params();
    p.noise = -0.1;
    CHECK_STATUS(effdim_blr_run(&p, NULL, &r, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "noise = -0.1");
    p = small_params();
    p.prior_var = 0.0;
    CHECK_STATUS(effdim_blr_run(&p, NULL, &r, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "prior_var = 0");
    p = small_params();
    p.z = NAN;
    CHECK_STATUS(effdim_blr_run(&p, NULL, &r, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "z = nan");
    p = small_params();
    p.x_max = INFINITY;
    CHECK_STATUS(effdim_blr_run(&p, NULL, &r, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "x_max = inf");
    CHECK(r == NULL);
    CHECK_STATUS(effdim_blr_run(NULL, NULL, &r, &e), EFFDIM_EINVAL, &e);
    effdim_blr_result_free(NULL);
}

CHECK_TESTS({"the identity holds to 1e-10 at every n in the notebook configuration",
             the_identity_holds_to_1e_10_at_every_n_in_the_notebook_configuration},
            {"the function-space N_eff equals that of the dense N x N covariance",
             the_function_space_neff_equals_the_dense_n_by_n_covariance},
            {"the order is a seeded permutation", the_order_is_a_seeded_permutation},
            {"the file round trips and bad files are refused", the_file_round_trips},
            {"an interrupt returns the rows done", an_interrupt_returns_the_rows_done},
            {"bad parameters are refused naming the field",
             bad_parameters_are_refused_naming_the_field})
