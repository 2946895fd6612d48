/* tests/test_operator.c: the operator type and the generic operators.
 *
 * Oracles: explicit matrix-vector products written out in the test (loops,
 * not BLAS), dense submatrices for restriction, alpha*A + sigma*I built
 * entrywise, orthogonality Q^T Q = I and LAPACK eigenvalues for the
 * known-spectrum builder. Every error path is provoked and its message read.
 */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/dense.h"
#include "effdim/neff.h"
#include "effdim/operator.h"

/* a symmetric (n, n) matrix with high-entropy entries */
static void fill_symmetric(double *A, size_t n, double scale)
{
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j <= i; ++j) {
            double v = scale * sin(1.7 * (double)(i + 1) + 0.37 * (double)(j * j) + 0.11);
            A[i * n + j] = A[j * n + i] = v;
        }
}

static void naive_matvec(const double *A, size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; ++i) {
        double s = 0.0;
        for (size_t j = 0; j < n; ++j) s += A[i * n + j] * x[j];
        y[i] = s;
    }
}

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; ++i)
        if (fabs(a[i] - b[i]) > m) m = fabs(a[i] - b[i]);
    return m;
}

static void dense_operator_applies_a_strided_block(void)
{
    enum { N = 7, NV = 3, LDX = 9, LDY = 10 };
    double A[N * N], X[NV * LDX], Y[NV * LDY], want[N];
    fill_symmetric(A, N, 2.385);
    for (size_t i = 0; i < NV * LDX; ++i) X[i] = cos(0.9 * (double)i) - 0.25;
    for (size_t i = 0; i < NV * LDY; ++i) Y[i] = -777.0; /* padding must stay */
    effdim_error e;
    effdim_operator *op = NULL;
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_COPY, &op, &e), &e);
    CHECK(op && op->n == N && strcmp(op->name, "dense") == 0);
    CHECK_OK(effdim_operator_apply(op, NV, X, LDX, Y, LDY, &e), &e);
    for (size_t j = 0; j < NV; ++j) {
        naive_matvec(A, N, X + j * LDX, want);
        CHECK_VEC_CLOSE(Y + j * LDY, want, N, 1e-14);
        CHECK(Y[j * LDY + N] == -777.0 && Y[j * LDY + N + 2] == -777.0);
    }
    CHECK(op->applications == 1 && op->vectors == NV);
    CHECK(op->seconds >= 0.0);
    CHECK_OK(effdim_operator_apply(op, 0, NULL, LDX, NULL, LDY, &e), &e); /* no-op */
    CHECK(op->applications == 1);
    effdim_operator_reset_counters(op);
    CHECK(op->applications == 0 && op->vectors == 0 && op->seconds == 0.0);
    effdim_operator_free(op);
}

static void dense_operator_copies_or_borrows_as_asked(void)
{
    enum { N = 5 };
    double A[N * N], x[N], y1[N], y2[N];
    fill_symmetric(A, N, 1.25);
    for (size_t i = 0; i < N; ++i) x[i] = 0.5 + (double)i;
    effdim_error e;
    effdim_operator *copy = NULL, *borrow = NULL;
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_COPY, &copy, &e), &e);
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_BORROW, &borrow, &e), &e);
    A[2 * N + 3] = A[3 * N + 2] = 40.5; /* change the caller's matrix */
    CHECK_OK(effdim_operator_apply(copy, 1, x, N, y1, N, &e), &e);
    CHECK_OK(effdim_operator_apply(borrow, 1, x, N, y2, N, &e), &e);
    double want[N];
    naive_matvec(A, N, x, want);
    CHECK_VEC_CLOSE(y2, want, N, 1e-14);  /* borrowed: sees the change */
    CHECK(fabs(y1[2] - want[2]) > 1.0);   /* copied: does not */
    effdim_operator_free(copy);
    effdim_operator_free(borrow);
}

static void dense_operator_refuses_asymmetric_and_non_finite_matrices(void)
{
    enum { N = 6 };
    double A[N * N];
    fill_symmetric(A, N, 3.5);
    A[1 * N + 4] += 1e-6;
    effdim_error e;
    effdim_operator *op = (effdim_operator *)&e; /* must be reset to NULL */
    CHECK_STATUS(effdim_operator_dense(N, A, EFFDIM_COPY, &op, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "A[1][4]", "A[4][1]", "symmetric");
    CHECK(op == NULL);
    A[1 * N + 4] = A[4 * N + 1];
    A[2 * N + 2] = NAN;
    CHECK_STATUS(effdim_operator_dense(N, A, EFFDIM_COPY, &op, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "A[2][2]", "not finite");
    CHECK_STATUS(effdim_operator_dense(0, A, EFFDIM_COPY, &op, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n = 0");
}

static void diagonal_operator_scales_each_coordinate(void)
{
    enum { N = 9 };
    double d[N], x[2 * N], y[2 * N];
    for (size_t i = 0; i < N; ++i) d[i] = -3.25 + 0.875 * (double)i;
    for (size_t i = 0; i < 2 * N; ++i) x[i] = 1.0 / (1.0 + (double)i);
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_diag(N, d, &op, &e), &e);
    d[0] = 1e9; /* copied: no effect */
    CHECK_OK(effdim_operator_apply(op, 2, x, N, y, N, &e), &e);
    for (size_t j = 0; j < 2; ++j)
        for (size_t i = 0; i < N; ++i)
            CHECK_CLOSE(y[j * N + i], (-3.25 + 0.875 * (double)i) * x[j * N + i], 1e-15);
    effdim_operator_free(op);
    d[3] = INFINITY;
    CHECK_STATUS(effdim_operator_diag(N, d, &op, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "d[3]", "not finite");
}

static void shifted_operator_is_alpha_a_plus_sigma_i(void)
{
    enum { N = 8 };
    double A[N * N], S[N * N], M[N * N];
    fill_symmetric(A, N, 1.5);
    const double alpha = -0.625, sigma = 2.385;
    for (size_t i = 0; i < N; ++i)
        for (size_t j = 0; j < N; ++j) S[i * N + j] = alpha * A[i * N + j] + (i == j ? sigma : 0.0);
    effdim_error e;
    effdim_operator *op, *sh;
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_BORROW, &op, &e), &e);
    CHECK_OK(effdim_operator_shift(op, alpha, sigma, &sh, &e), &e);
    CHECK(strcmp(sh->name, "shift(dense(borrowed))") == 0);
    double asym = -1.0;
    CHECK_OK(effdim_operator_to_dense(sh, M, &asym, &e), &e);
    CHECK(max_abs_diff(M, S, N * N) <= 1e-14);
    CHECK(asym <= 1e-15);
    CHECK(sh->vectors == N && op->vectors == N); /* inner applications are counted too */
    effdim_operator_free(sh);
    effdim_operator_free(op);
    CHECK_STATUS(effdim_operator_shift(NULL, 1.0, 0.0, &sh, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "inner operator is NULL");
}

static void restricted_operator_equals_the_dense_submatrix(void)
{
    enum { N = 14, OFF = 3, LEN = 9 };
    double A[N * N], M[LEN * LEN];
    fill_symmetric(A, N, 0.75);
    effdim_error e;
    effdim_operator *op, *r;
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_COPY, &op, &e), &e);
    CHECK_OK(effdim_operator_restrict(op, OFF, LEN, &r, &e), &e);
    CHECK(r->n == LEN && r->max_block == 8);
    CHECK(strcmp(r->name, "restrict[3:12](dense)") == 0);
    CHECK_OK(effdim_operator_to_dense(r, M, NULL, &e), &e);
    double worst = 0.0;
    for (size_t i = 0; i < LEN; ++i)
        for (size_t j = 0; j < LEN; ++j)
            worst = fmax(worst, fabs(M[i * LEN + j] - A[(OFF + i) * N + OFF + j]));
    CHECK(worst <= 1e-15);
    /* a block of 11 > max_block = 8 vectors is split; results still exact */
    double X[11 * LEN], Y[11 * LEN], full[N], yfull[N];
    for (size_t i = 0; i < 11 * LEN; ++i) X[i] = sin(0.31 * (double)i + 0.2);
    effdim_operator_reset_counters(op);
    CHECK_OK(effdim_operator_apply(r, 11, X, LEN, Y, LEN, &e), &e);
    CHECK(op->applications == 2 && op->vectors == 11);
    for (size_t j = 0; j < 11; ++j) {
        memset(full, 0, sizeof full);
        memcpy(full + OFF, X + j * LEN, LEN * sizeof(double));
        naive_matvec(A, N, full, yfull);
        CHECK_VEC_CLOSE(Y + j * LEN, yfull + OFF, LEN, 1e-14);
    }
    effdim_operator_free(r);
    CHECK_STATUS(effdim_operator_restrict(op, 10, 5, &r, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "block [10, 10 + 5)", "inside [0, 14)");
    CHECK_STATUS(effdim_operator_restrict(op, 0, 0, &r, &e), EFFDIM_EINVAL, &e);
    effdim_operator_free(op);
}

/* ---- a custom operator: counts calls, fails on request ------------------------ */

typedef struct probe_ctx {
    size_t calls, max_nvec, fail_at;
    int silent; /* fail without a message */
    int *freed;
} probe_ctx;

static effdim_status probe_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                 double *Y, size_t ldy, effdim_error *err)
{
    probe_ctx *c = p;
    c->calls += 1;
    if (nvec > c->max_nvec) c->max_nvec = nvec;
    if (c->fail_at && c->calls == c->fail_at) {
        if (c->silent) return EFFDIM_EINTERNAL;
        return effdim_error_set(err, EFFDIM_EIO, "model.h5: /model/layer1/weight: read failed at call %zu",
                                c->calls);
    }
    for (size_t j = 0; j < nvec; ++j)
        for (size_t i = 0; i < n; ++i) Y[j * ldy + i] = 2.5 * X[j * ldx + i];
    return EFFDIM_OK;
}

static void probe_free(void *p)
{
    probe_ctx *c = p;
    *c->freed += 1;
    free(c);
}

static void max_block_splits_blocks_into_callback_calls(void)
{
    int freed = 0;
    probe_ctx *c = calloc(1, sizeof *c);
    c->freed = &freed;
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_alloc(4, probe_apply, c, probe_free, "probe", &op, &e), &e);
    op->max_block = 3;
    double X[40], Y[40];
    for (size_t i = 0; i < 40; ++i) X[i] = (double)i;
    CHECK_OK(effdim_operator_apply(op, 10, X, 4, Y, 4, &e), &e);
    CHECK(c->calls == 4 && c->max_nvec == 3);
    CHECK(Y[39] == 2.5 * 39.0);
    CHECK(op->applications == 1 && op->vectors == 10);
    effdim_operator_free(op);
    CHECK(freed == 1); /* the context destructor ran once */
    effdim_operator_free(NULL);
}

static void a_failing_callback_keeps_its_status_and_message(void)
{
    int freed = 0;
    probe_ctx *c = calloc(1, sizeof *c);
    c->freed = &freed;
    c->fail_at = 2;
    effdim_error e;
    effdim_operator *op;
    CHECK_OK(effdim_operator_alloc(4, probe_apply, c, probe_free, "hessian-fd", &op, &e), &e);
    double X[8] = {1, 2, 3, 4, 5, 6, 7, 8}, Y[8];
    CHECK_OK(effdim_operator_apply(op, 1, X, 4, Y, 4, &e), &e);
    CHECK_STATUS(effdim_operator_apply(op, 1, X, 4, Y, 4, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "model.h5: /model/layer1/weight: read failed at call 2");
    CHECK(op->applications == 1 && op->vectors == 1); /* the failed call is not counted */
    /* a callback that fails without a message gets one naming the operator */
    c->calls = 0;
    c->silent = 1;
    c->fail_at = 1;
    CHECK_STATUS(effdim_operator_apply(op, 2, X, 4, Y, 4, &e), EFFDIM_EINTERNAL, &e);
    CHECK_MSG(&e, "operator 'hessian-fd'", "EINTERNAL", "no message");
    /* wrappers pass the inner error through */
    effdim_operator *sh, *r;
    c->calls = 0;
    c->silent = 0;
    c->fail_at = 1;
    CHECK_OK(effdim_operator_shift(op, 2.0, 1.0, &sh, &e), &e);
    CHECK_STATUS(effdim_operator_apply(sh, 1, X, 4, Y, 4, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "read failed at call 1");
    c->calls = 0;
    CHECK_OK(effdim_operator_restrict(op, 1, 2, &r, &e), &e);
    CHECK_STATUS(effdim_operator_apply(r, 1, X, 2, Y, 2, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "model.h5");
    effdim_operator_free(r);
    effdim_operator_free(sh);
    effdim_operator_free(op);
    CHECK(freed == 1);
}

static void constructors_and_apply_refuse_bad_arguments(void)
{
    effdim_error e;
    effdim_operator *op = NULL;
    int freed = 0;
    probe_ctx *c = calloc(1, sizeof *c);
    c->freed = &freed;
    CHECK_STATUS(effdim_operator_alloc(4, NULL, c, probe_free, "net", &op, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "operator 'net'", "apply callback is NULL");
    CHECK(op == NULL && freed == 0); /* on failure the context stays the caller's */
    CHECK_STATUS(effdim_operator_alloc(0, probe_apply, c, probe_free, NULL, &op, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "size n = 0");
    CHECK_OK(effdim_operator_alloc(4, probe_apply, c, probe_free, NULL, &op, &e), &e);
    CHECK(strcmp(op->name, "operator") == 0);
    double X[4] = {1, 2, 3, 4}, Y[4];
    CHECK_STATUS(effdim_operator_apply(op, 1, X, 3, Y, 4, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "ldx = 3", "n = 4");
    CHECK_STATUS(effdim_operator_apply(op, 1, NULL, 4, Y, 4, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "NULL input block");
    CHECK_STATUS(effdim_operator_apply(NULL, 1, X, 4, Y, 4, &e), EFFDIM_EINVAL, &e);
    /* an operator whose callback was cleared */
    effdim_operator_apply_fn keep = op->apply;
    op->apply = NULL;
    CHECK_STATUS(effdim_operator_apply(op, 1, X, 4, Y, 4, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "apply callback is NULL");
    op->apply = keep;
    effdim_operator_free(op);
    CHECK(freed == 1);
}

static void random_orthogonal_and_known_spectrum_builders_are_exact(void)
{
    enum { N = 60 };
    double *Q = malloc(N * N * sizeof(double)), *A = malloc(N * N * sizeof(double));
    double lam[N], w[N];
    effdim_error e;
    CHECK_OK(effdim_dense_random_orthogonal(N, 2385, Q, &e), &e);
    double worst = 0.0;
    for (size_t i = 0; i < N; ++i)
        for (size_t j = 0; j < N; ++j) {
            double s = 0.0;
            for (size_t r = 0; r < N; ++r) s += Q[r * N + i] * Q[r * N + j];
            worst = fmax(worst, fabs(s - (i == j ? 1.0 : 0.0)));
        }
    CHECK(worst <= 1e-13);
    /* deterministic from the seed */
    double q0 = Q[7 * N + 11];
    CHECK_OK(effdim_dense_random_orthogonal(N, 2385, Q, &e), &e);
    CHECK(Q[7 * N + 11] == q0);
    for (size_t i = 0; i < N; ++i) lam[i] = (i % 3 == 0 ? -1.0 : 1.0) * (0.5 + 0.173 * (double)(i * i));
    CHECK_OK(effdim_dense_with_spectrum(N, lam, 17, A, &e), &e);
    CHECK_OK(effdim_dense_eigenvalues(N, A, w, &e), &e);
    /* sort lam descending to compare */
    for (size_t i = 1; i < N; ++i)
        for (size_t j = i; j > 0 && lam[j] > lam[j - 1]; --j) {
            double t = lam[j]; lam[j] = lam[j - 1]; lam[j - 1] = t;
        }
    CHECK_VEC_CLOSE(w, lam, N, 1e-13);
    effdim_operator *op;
    CHECK_OK(effdim_operator_dense(N, A, EFFDIM_BORROW, &op, &e), &e); /* exactly symmetric */
    effdim_operator_free(op);
    CHECK_STATUS(effdim_dense_random_orthogonal(0, 1, Q, &e), EFFDIM_EINVAL, &e);
    lam[4] = NAN;
    CHECK_STATUS(effdim_dense_with_spectrum(N, lam, 1, A, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "lambda[4]");
    free(Q);
    free(A);
}

CHECK_TESTS({"dense operator applies a strided block", dense_operator_applies_a_strided_block},
            {"dense operator copies or borrows as asked", dense_operator_copies_or_borrows_as_asked},
            {"dense operator refuses asymmetric and non-finite matrices",
             dense_operator_refuses_asymmetric_and_non_finite_matrices},
            {"diagonal operator scales each coordinate", diagonal_operator_scales_each_coordinate},
            {"shifted operator is alpha A plus sigma I", shifted_operator_is_alpha_a_plus_sigma_i},
            {"restricted operator equals the dense submatrix",
             restricted_operator_equals_the_dense_submatrix},
            {"max_block splits blocks into callback calls", max_block_splits_blocks_into_callback_calls},
            {"a failing callback keeps its status and message",
             a_failing_callback_keeps_its_status_and_message},
            {"constructors and apply refuse bad arguments", constructors_and_apply_refuse_bad_arguments},
            {"random orthogonal and known-spectrum builders are exact",
             random_orthogonal_and_known_spectrum_builders_are_exact})
