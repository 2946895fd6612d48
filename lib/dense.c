/* lib/dense.c: dense symmetric linear algebra (effdim/dense.h): all
 * eigenvalues by LAPACKE dsyev, Haar-random orthogonal matrices (QR of a
 * Gaussian matrix, Mezzadri 2007), and matrices with a known spectrum for
 * the tests, demos and benchmarks. */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/dense.h"
#include "internal.h"
#include "lanczos_internal.h"

effdim_status effdim_dense_eigenvalues(size_t n, const double *A, double *w, effdim_error *err)
{
    RETURN_ERROR_IF(n == 0 || !A || !w, err, EFFDIM_EINVAL,
                    "dense eigenvalues: n = %zu, expected n > 0, a matrix and an output", n);
    RETURN_ERROR_IF(n > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "dense eigenvalues: n = %zu exceeds the LAPACK index range", n);
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(A, n * n, &bad), err, EFFDIM_EDOM,
                    "dense eigenvalues: A[%zu][%zu] = %g is not finite", bad / n, bad % n, A[bad]);
    double *M = effdim_alloc(n * n, sizeof(double), "dense eigenvalues: matrix copy", err);
    if (!M) return EFFDIM_ENOMEM;
    memcpy(M, A, n * n * sizeof(double));
    lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)n, M, (lapack_int)n, w);
    free(M);
    RETURN_ERROR_IF(info != 0, err, EFFDIM_EINTERNAL,
                    "dense eigenvalues: LAPACKE_dsyev on the %zu x %zu matrix failed, info = %d", n,
                    n, (int)info);
    for (size_t i = 0; i < n / 2; ++i) { /* ascending -> descending */
        double t = w[i];
        w[i] = w[n - 1 - i];
        w[n - 1 - i] = t;
    }
    return EFFDIM_OK;
}

effdim_status effdim_dense_random_orthogonal(size_t n, uint64_t seed, double *Q, effdim_error *err)
{
    RETURN_ERROR_IF(n == 0 || !Q, err, EFFDIM_EINVAL,
                    "random orthogonal: n = %zu and Q = %s, expected n > 0 and a matrix", n,
                    Q ? "set" : "NULL");
    RETURN_ERROR_IF(n > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "random orthogonal: n = %zu exceeds the LAPACK index range", n);
    effdim_status st = EFFDIM_ENOMEM;
    double *tau = effdim_alloc(2 * n, sizeof(double), "random orthogonal: tau", err);
    double *sign = tau ? tau + n : NULL; /* (n) sign of diag(R) */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!tau) goto done;
    if (!rng) {
        st = effdim_error_set(err, EFFDIM_ENOMEM, "random orthogonal: cannot allocate the RNG");
        goto done;
    }
    gsl_rng_set(rng, (unsigned long)seed);
    effdim_fill_gaussian(rng, Q, n * n);
    lapack_int N = (lapack_int)n;
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, N, N, Q, N, tau);
    for (size_t i = 0; i < n; ++i) sign[i] = Q[i * n + i] < 0.0 ? -1.0 : 1.0;
    if (info == 0) info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, N, N, N, Q, N, tau);
    if (info != 0) {
        st = effdim_error_set(err, EFFDIM_EINTERNAL,
                              "random orthogonal: LAPACKE dgeqrf/dorgqr failed, info = %d",
                              (int)info);
        goto done;
    }
    /* Q diag(sign(R_ii)) is Haar-distributed */
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) Q[i * n + j] *= sign[j];
    st = EFFDIM_OK;
done:
    free(tau);
    if (rng) gsl_rng_free(rng);
    return st;
}

effdim_status effdim_dense_with_spectrum(size_t n, const double *lambda, uint64_t seed, double *A,
                                         effdim_error *err)
{
    RETURN_ERROR_IF(n == 0 || !lambda || !A, err, EFFDIM_EINVAL,
                    "dense with spectrum: n = %zu, expected n > 0, eigenvalues and an output matrix",
                    n);
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(lambda, n, &bad), err, EFFDIM_EDOM,
                    "dense with spectrum: lambda[%zu] = %g is not finite", bad, lambda[bad]);
    double *Q = effdim_alloc(n * n, sizeof(double), "dense with spectrum: Q", err);
    double *QD = Q ? effdim_alloc(n * n, sizeof(double), "dense with spectrum: Q diag", err) : NULL;
    effdim_status st = QD ? effdim_dense_random_orthogonal(n, seed, Q, err) : EFFDIM_ENOMEM;
    if (st == EFFDIM_OK) {
        for (size_t i = 0; i < n; ++i)
            for (size_t j = 0; j < n; ++j) QD[i * n + j] = Q[i * n + j] * lambda[j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, QD,
                    (int)n, Q, (int)n, 0.0, A, (int)n);
        for (size_t i = 0; i < n; ++i)
            for (size_t j = i + 1; j < n; ++j) {
                double a = 0.5 * (A[i * n + j] + A[j * n + i]);
                A[i * n + j] = a;
                A[j * n + i] = a;
            }
    }
    free(Q);
    free(QD);
    return st;
}
