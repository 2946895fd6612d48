/* lib/operator.c: the symmetric linear operator type and the generic operators.
 *
 * An operator is a size, a block apply callback and a context (see
 * effdim/operator.h for the layout and ownership rules). This file holds the
 * type's plumbing (allocation, the counting apply wrapper that splits blocks
 * to max_block and keeps the callback's error message) and the operators that
 * need no network: dense (one dgemm per block), diagonal, shifted/scaled
 * alpha*A + sigma*I, restriction to a contiguous block of coordinates
 * P A P^T, and the dense matrix of any operator by n unit-vector applications.
 * Composition of operators follows PETSc's shell matrices and PRIMME's matvec
 * interface: the solvers never see anything but this type.
 *
 * It also builds matrices with a known spectrum, Q diag(lambda) Q^T with a
 * Haar-random orthogonal Q (QR of a Gaussian matrix with the signs of diag(R)
 * folded in: Mezzadri, "How to generate random matrices from the classical
 * compact groups", Notices AMS 54(5), 2007, section 5).
 */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/operator.h"
#include "internal.h"
#include "lanczos_internal.h"

/* ---- the type --------------------------------------------------------------- */

static void set_name(effdim_operator *op, const char *name)
{
    snprintf(op->name, sizeof op->name, "%s", name ? name : "operator");
}

effdim_status effdim_operator_alloc(size_t n, effdim_operator_apply_fn apply, void *ctx,
                                    void (*ctx_free)(void *ctx), const char *name,
                                    effdim_operator **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "operator '%s': output pointer is NULL",
                    name ? name : "operator");
    *out = NULL;
    RETURN_ERROR_IF(n == 0, err, EFFDIM_EINVAL, "operator '%s': size n = 0, expected n > 0",
                    name ? name : "operator");
    RETURN_ERROR_IF(!apply, err, EFFDIM_EINVAL, "operator '%s': apply callback is NULL",
                    name ? name : "operator");
    effdim_operator *op = effdim_calloc(1, sizeof *op, "operator", err);
    if (!op) return EFFDIM_ENOMEM;
    op->n = n;
    op->apply = apply;
    op->ctx = ctx;
    op->ctx_free = ctx_free;
    set_name(op, name);
    *out = op;
    return EFFDIM_OK;
}

void effdim_operator_free(effdim_operator *op)
{
    if (!op) return;
    if (op->ctx_free) op->ctx_free(op->ctx);
    free(op);
}

void effdim_operator_reset_counters(effdim_operator *op)
{
    if (!op) return;
    op->applications = 0;
    op->vectors = 0;
    op->seconds = 0.0;
}

/* One callback call; a failing callback's message is kept, or written if it
 * left none. */
static effdim_status call_apply(effdim_operator *op, size_t nvec, const double *X, size_t ldx,
                                double *Y, size_t ldy, effdim_error *err)
{
    effdim_error local;
    effdim_error_clear(&local);
    effdim_status st = op->apply(op->ctx, op->n, nvec, X, ldx, Y, ldy, &local);
    if (st == EFFDIM_OK) return EFFDIM_OK;
    if (local.msg[0] == '\0')
        return effdim_error_set(err, st, "operator '%s': apply failed with status %s (no message)",
                                op->name, effdim_status_name(st));
    if (err) {
        *err = local;
        err->code = st;
    }
    return st;
}

effdim_status effdim_operator_apply(effdim_operator *op, size_t nvec, const double *X, size_t ldx,
                                    double *Y, size_t ldy, effdim_error *err)
{
    RETURN_ERROR_IF(!op, err, EFFDIM_EINVAL, "operator apply: operator is NULL");
    RETURN_ERROR_IF(!op->apply, err, EFFDIM_EINVAL, "operator '%s': apply callback is NULL",
                    op->name);
    if (nvec == 0) return EFFDIM_OK;
    RETURN_ERROR_IF(!X || !Y, err, EFFDIM_EINVAL, "operator '%s': NULL %s block", op->name,
                    !X ? "input" : "output");
    RETURN_ERROR_IF(ldx < op->n || ldy < op->n, err, EFFDIM_EINVAL,
                    "operator '%s': leading dimensions ldx = %zu, ldy = %zu, expected >= n = %zu",
                    op->name, ldx, ldy, op->n);
    size_t block = op->max_block ? op->max_block : nvec;
    double t0 = effdim_now();
    for (size_t j = 0; j < nvec; j += block) {
        size_t b = nvec - j < block ? nvec - j : block;
        effdim_status st = call_apply(op, b, X + j * ldx, ldx, Y + j * ldy, ldy, err);
        if (st != EFFDIM_OK) {
            op->seconds += effdim_now() - t0;
            return st;
        }
    }
    op->seconds += effdim_now() - t0;
    op->applications += 1;
    op->vectors += nvec;
    return EFFDIM_OK;
}

/* ---- dense ------------------------------------------------------------------ */

typedef struct dense_ctx {
    const double *A; /* (n, n) row-major, symmetric */
    double *owned;   /* == A when copied, else NULL */
} dense_ctx;

static void dense_free(void *p)
{
    dense_ctx *c = p;
    if (!c) return;
    free(c->owned);
    free(c);
}

static effdim_status dense_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                 double *Y, size_t ldy, effdim_error *err)
{
    const dense_ctx *c = p;
    /* rows: Y (nvec, n) = X (nvec, n) A^T = X A */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nvec, (int)n, (int)n, 1.0, X,
                (int)ldx, c->A, (int)n, 0.0, Y, (int)ldy);
    return EFFDIM_OK;
}

/* EDOM unless A is finite and symmetric to 1e-12 relative. */
static effdim_status check_symmetric(size_t n, const double *A, effdim_error *err)
{
    double amax = 0.0;
    for (size_t i = 0; i < n * n; ++i) {
        RETURN_ERROR_IF(!isfinite(A[i]), err, EFFDIM_EDOM,
                        "dense operator: A[%zu][%zu] = %g is not finite", i / n, i % n, A[i]);
        if (fabs(A[i]) > amax) amax = fabs(A[i]);
    }
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
            double a = A[i * n + j], b = A[j * n + i];
            RETURN_ERROR_IF(fabs(a - b) > 1e-12 * amax, err, EFFDIM_EDOM,
                            "dense operator: A[%zu][%zu] = %.17g but A[%zu][%zu] = %.17g, "
                            "expected a symmetric matrix",
                            i, j, a, j, i, b);
        }
    return EFFDIM_OK;
}

effdim_status effdim_operator_dense(size_t n, const double *A, effdim_ownership own,
                                    effdim_operator **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "dense operator: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF(n == 0 || !A, err, EFFDIM_EINVAL,
                    "dense operator: n = %zu and A = %s, expected n > 0 and a matrix", n,
                    A ? "set" : "NULL");
    RETURN_ERROR_IF(n > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "dense operator: n = %zu exceeds the BLAS index range", n);
    effdim_status st = check_symmetric(n, A, err);
    if (st != EFFDIM_OK) return st;
    dense_ctx *c = effdim_calloc(1, sizeof *c, "dense operator", err);
    if (!c) return EFFDIM_ENOMEM;
    c->A = A;
    if (own == EFFDIM_COPY) {
        c->owned = effdim_alloc(n * n, sizeof(double), "dense operator matrix copy", err);
        if (!c->owned) goto fail;
        memcpy(c->owned, A, n * n * sizeof(double));
        c->A = c->owned;
    }
    st = effdim_operator_alloc(n, dense_apply, c, dense_free,
                               own == EFFDIM_COPY ? "dense" : "dense(borrowed)", out, err);
    if (st != EFFDIM_OK) goto fail;
    return EFFDIM_OK;
fail:
    dense_free(c);
    return err ? err->code : EFFDIM_ENOMEM;
}

/* ---- diagonal --------------------------------------------------------------- */

static effdim_status diag_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                double *Y, size_t ldy, effdim_error *err)
{
    const double *d = p;
    for (size_t j = 0; j < nvec; ++j) {
        const double *x = X + j * ldx;
        double *y = Y + j * ldy;
        for (size_t i = 0; i < n; ++i) y[i] = d[i] * x[i];
    }
    return EFFDIM_OK;
}

effdim_status effdim_operator_diag(size_t n, const double *d, effdim_operator **out,
                                   effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "diagonal operator: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF(n == 0 || !d, err, EFFDIM_EINVAL,
                    "diagonal operator: n = %zu and d = %s, expected n > 0 and a vector", n,
                    d ? "set" : "NULL");
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(d, n, &bad), err, EFFDIM_EDOM,
                    "diagonal operator: d[%zu] = %g is not finite", bad, d[bad]);
    double *copy = effdim_alloc(n, sizeof(double), "diagonal operator", err);
    if (!copy) return EFFDIM_ENOMEM;
    memcpy(copy, d, n * sizeof(double));
    effdim_status st = effdim_operator_alloc(n, diag_apply, copy, free, "diag", out, err);
    if (st != EFFDIM_OK) free(copy);
    return st;
}

/* ---- shifted and scaled ----------------------------------------------------- */

typedef struct shift_ctx {
    effdim_operator *inner; /* borrowed */
    double alpha, sigma;
} shift_ctx;

static effdim_status shift_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                 double *Y, size_t ldy, effdim_error *err)
{
    const shift_ctx *c = p;
    effdim_status st = effdim_operator_apply(c->inner, nvec, X, ldx, Y, ldy, err);
    if (st != EFFDIM_OK) return st;
    for (size_t j = 0; j < nvec; ++j) {
        const double *x = X + j * ldx;
        double *y = Y + j * ldy;
        for (size_t i = 0; i < n; ++i) y[i] = c->alpha * y[i] + c->sigma * x[i];
    }
    return EFFDIM_OK;
}

effdim_status effdim_operator_shift(effdim_operator *A, double alpha, double sigma,
                                    effdim_operator **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "shifted operator: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF(!A, err, EFFDIM_EINVAL, "shifted operator: inner operator is NULL");
    RETURN_ERROR_IF(!isfinite(alpha) || !isfinite(sigma), err, EFFDIM_EDOM,
                    "shifted operator: alpha = %g, sigma = %g, expected finite values", alpha,
                    sigma);
    shift_ctx *c = effdim_alloc(1, sizeof *c, "shifted operator", err);
    if (!c) return EFFDIM_ENOMEM;
    c->inner = A;
    c->alpha = alpha;
    c->sigma = sigma;
    char name[EFFDIM_OPERATOR_NAME_MAX];
    snprintf(name, sizeof name, "shift(%.40s)", A->name);
    effdim_status st = effdim_operator_alloc(A->n, shift_apply, c, free, name, out, err);
    if (st != EFFDIM_OK) {
        free(c);
        return st;
    }
    (*out)->max_block = A->max_block;
    return EFFDIM_OK;
}

/* ---- restriction to a block of coordinates ---------------------------------- */

typedef struct restrict_ctx {
    effdim_operator *inner; /* borrowed, size N */
    size_t offset, block;   /* coordinates [offset, offset + n) of the inner space */
    double *xin;            /* (block, N): zero outside the block, always */
    double *yout;           /* (block, N) */
} restrict_ctx;

static void restrict_free(void *p)
{
    restrict_ctx *c = p;
    if (!c) return;
    free(c->xin);
    free(c->yout);
    free(c);
}

static effdim_status restrict_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                    double *Y, size_t ldy, effdim_error *err)
{
    restrict_ctx *c = p;
    size_t N = c->inner->n;
    /* effdim_operator_apply never passes more than max_block = c->block vectors */
    for (size_t j = 0; j < nvec; ++j) memcpy(c->xin + j * N + c->offset, X + j * ldx, n * sizeof(double));
    effdim_status st = effdim_operator_apply(c->inner, nvec, c->xin, N, c->yout, N, err);
    if (st != EFFDIM_OK) return st;
    for (size_t j = 0; j < nvec; ++j) memcpy(Y + j * ldy, c->yout + j * N + c->offset, n * sizeof(double));
    return EFFDIM_OK;
}

effdim_status effdim_operator_restrict(effdim_operator *A, size_t offset, size_t len,
                                       effdim_operator **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "restricted operator: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF(!A, err, EFFDIM_EINVAL, "restricted operator: inner operator is NULL");
    RETURN_ERROR_IF(len == 0 || offset >= A->n || len > A->n - offset, err, EFFDIM_EINVAL,
                    "restricted operator: block [%zu, %zu + %zu) of '%s', expected a non-empty "
                    "block inside [0, %zu)",
                    offset, offset, len, A->name, A->n);
    restrict_ctx *c = effdim_calloc(1, sizeof *c, "restricted operator", err);
    if (!c) return EFFDIM_ENOMEM;
    c->inner = A;
    c->offset = offset;
    c->block = A->max_block ? A->max_block : 8;
    c->xin = effdim_calloc(c->block * A->n, sizeof(double), "restricted operator scratch", err);
    c->yout = effdim_alloc(c->block * A->n, sizeof(double), "restricted operator scratch", err);
    if (!c->xin || !c->yout) goto fail;
    char name[EFFDIM_OPERATOR_NAME_MAX];
    snprintf(name, sizeof name, "restrict[%zu:%zu](%.40s)", offset, offset + len, A->name);
    if (effdim_operator_alloc(len, restrict_apply, c, restrict_free, name, out, err) != EFFDIM_OK)
        goto fail;
    (*out)->max_block = c->block;
    return EFFDIM_OK;
fail:
    restrict_free(c);
    return err ? err->code : EFFDIM_ENOMEM;
}

/* ---- dense matrix of an operator -------------------------------------------- */

effdim_status effdim_operator_to_dense(effdim_operator *op, double *M, double *asymmetry,
                                       effdim_error *err)
{
    return effdim_operator_to_dense_progress(op, M, asymmetry, NULL, err);
}

effdim_status effdim_operator_to_dense_progress(effdim_operator *op, double *M, double *asymmetry,
                                                const effdim_progress *progress,
                                                effdim_error *err)
{
    RETURN_ERROR_IF(!op || !M, err, EFFDIM_EINVAL, "operator to dense: NULL %s",
                    !op ? "operator" : "output matrix");
    size_t n = op->n, block = op->max_block ? op->max_block : 64;
    if (block > n) block = n;
    double *E = effdim_calloc(block * n, sizeof(double), "operator to dense: unit vectors", err);
    if (!E) return EFFDIM_ENOMEM;
    effdim_status st = EFFDIM_OK;
    double t0 = effdim_progress_clock();
    for (size_t j0 = 0; j0 < n && st == EFFDIM_OK; j0 += block) {
        size_t b = n - j0 < block ? n - j0 : block;
        for (size_t j = 0; j < b; ++j) E[j * n + j0 + j] = 1.0;
        st = effdim_operator_apply(op, b, E, n, M + j0 * n, n, err);
        for (size_t j = 0; j < b; ++j) E[j * n + j0 + j] = 0.0;
        if (st == EFFDIM_OK && effdim_progress_report(progress, "dense", t0, j0 + b, n, -1.0,
                                                      "columns of the %zu x %zu matrix", n, n))
            st = effdim_error_set(err, EFFDIM_EMAXITER,
                                  "operator to dense: interrupted after %zu of %zu columns",
                                  j0 + b, n);
    }
    free(E);
    if (st != EFFDIM_OK || !asymmetry) return st;
    double amax = 0.0, dmax = 0.0;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) {
            if (fabs(M[i * n + j]) > amax) amax = fabs(M[i * n + j]);
            if (fabs(M[i * n + j] - M[j * n + i]) > dmax) dmax = fabs(M[i * n + j] - M[j * n + i]);
        }
    *asymmetry = amax > 0.0 ? dmax / amax : 0.0;
    return EFFDIM_OK;
}

