/* lib/effdim_neff.c: effective dimensionality N_eff(z) = sum_i lambda_i / (lambda_i + z)
 * from a list of eigenvalues, the dense reference, and the Bayesian linear
 * regression posterior-contraction identity.
 *
 * N_eff is Maddox, Benton and Wilson (arXiv 2003.02139) eq. 2, after MacKay
 * (1992)'s "number of well-determined parameters". Negative eigenvalues go
 * through a policy (effdim/neff.h). The dense reference is LAPACKE_dsyev on
 * the whole matrix. The identity (SEEDS.md 4.5, the paper's section 4):
 * for y = Phi beta + eps, eps ~ N(0, s2 I), beta ~ N(0, a2 I), H = Phi^T Phi / s2,
 * Sigma_post = (H + I/a2)^-1 has eigenvalues 1/(lambda_i + 1/a2), so
 *   tr(a2 I) - tr(Sigma_post) = sum_i (a2 - 1/(lambda_i + 1/a2))
 *                             = a2 sum_i lambda_i / (lambda_i + 1/a2).
 * The left side is computed without eigenvalues (Cholesky inverse), the right
 * side from them, so the two are independent evaluations.
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/neff.h"
#include "internal.h"

const char *effdim_neg_policy_name(effdim_neg_policy p)
{
    switch (p) {
    case EFFDIM_NEG_ZERO: return "zero";
    case EFFDIM_NEG_ABS: return "abs";
    case EFFDIM_NEG_ASIS: return "asis";
    }
    return "unknown";
}

effdim_status effdim_neg_policy_parse(const char *s, effdim_neg_policy *p, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !p, err, EFFDIM_EINVAL, "negative-eigenvalue policy: NULL argument");
    if (!strcmp(s, "zero")) *p = EFFDIM_NEG_ZERO;
    else if (!strcmp(s, "abs")) *p = EFFDIM_NEG_ABS;
    else if (!strcmp(s, "asis") || !strcmp(s, "as-is")) *p = EFFDIM_NEG_ASIS;
    else
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "negative-eigenvalue policy '%s', expected zero, abs or asis", s);
    return EFFDIM_OK;
}

double effdim_neff_term(double lambda, double z, effdim_neg_policy p)
{
    double x = lambda;
    if (x < 0.0) {
        if (p == EFFDIM_NEG_ZERO) return 0.0;
        if (p == EFFDIM_NEG_ABS) x = -x;
    }
    return x / (x + z);
}

effdim_status effdim_neff(const double *lambda, size_t k, const double *z, size_t nz,
                          effdim_neg_policy p, double *out, effdim_error *err)
{
    RETURN_ERROR_IF((k && !lambda) || (nz && (!z || !out)), err, EFFDIM_EINVAL,
                    "N_eff: NULL eigenvalues, z or output");
    RETURN_ERROR_IF(p != EFFDIM_NEG_ZERO && p != EFFDIM_NEG_ABS && p != EFFDIM_NEG_ASIS, err,
                    EFFDIM_EINVAL, "N_eff: negative-eigenvalue policy %d, expected zero, abs or asis",
                    (int)p);
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(lambda, k, &bad), err, EFFDIM_EDOM,
                    "N_eff: eigenvalue %zu = %g is not finite", bad, lambda[bad]);
    for (size_t j = 0; j < nz; ++j) {
        RETURN_ERROR_IF(!(z[j] > 0.0) || !isfinite(z[j]), err, EFFDIM_EDOM,
                        "N_eff: z[%zu] = %g, expected a finite z > 0", j, z[j]);
        double s = 0.0;
        for (size_t i = 0; i < k; ++i) {
            RETURN_ERROR_IF(p == EFFDIM_NEG_ASIS && lambda[i] + z[j] == 0.0, err, EFFDIM_EDOM,
                            "N_eff: eigenvalue %zu = %g equals -z[%zu]: lambda/(lambda+z) is "
                            "infinite under policy asis",
                            i, lambda[i], j);
            s += effdim_neff_term(lambda[i], z[j], p);
        }
        out[j] = s;
    }
    return EFFDIM_OK;
}

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

effdim_status effdim_neff_dense(size_t n, const double *A, const double *z, size_t nz,
                                effdim_neg_policy p, double *out, double *w, effdim_error *err)
{
    double *ev = w ? w : effdim_alloc(n ? n : 1, sizeof(double), "N_eff dense: eigenvalues", err);
    if (!ev) return EFFDIM_ENOMEM;
    effdim_status st = effdim_dense_eigenvalues(n, A, ev, err);
    if (st == EFFDIM_OK) st = effdim_neff(ev, n, z, nz, p, out, err);
    if (ev != w) free(ev);
    return st;
}

effdim_status effdim_blr_contraction(const double *Phi, size_t N, size_t d, double sigma2,
                                     double alpha2, double *contraction, double *alpha2_neff,
                                     double *neff, effdim_error *err)
{
    RETURN_ERROR_IF(!Phi || N == 0 || d == 0, err, EFFDIM_EINVAL,
                    "BLR contraction: design matrix Phi (%zu, %zu), expected a non-empty matrix", N,
                    d);
    RETURN_ERROR_IF(!(sigma2 > 0.0) || !(alpha2 > 0.0) || !isfinite(sigma2) || !isfinite(alpha2),
                    err, EFFDIM_EDOM,
                    "BLR contraction: noise variance %g and prior variance %g, expected both > 0",
                    sigma2, alpha2);
    RETURN_ERROR_IF(N > (size_t)INT32_MAX || d > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "BLR contraction: Phi (%zu, %zu) exceeds the BLAS index range", N, d);
    effdim_status st = EFFDIM_OK;
    double *H = effdim_calloc(d * d, sizeof(double), "BLR contraction: H", err);
    double *M = H ? effdim_alloc(d * d, sizeof(double), "BLR contraction: H + I/alpha2", err) : NULL;
    double *w = M ? effdim_alloc(d, sizeof(double), "BLR contraction: eigenvalues", err) : NULL;
    if (!w) {
        st = EFFDIM_ENOMEM;
        goto done;
    }
    /* H = Phi^T Phi / sigma2, upper triangle, then mirrored */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)N, 1.0 / sigma2, Phi, (int)d,
                0.0, H, (int)d);
    for (size_t i = 0; i < d; ++i)
        for (size_t j = 0; j < i; ++j) H[i * d + j] = H[j * d + i];
    /* left side: d * alpha2 - tr((H + I/alpha2)^-1) */
    memcpy(M, H, d * d * sizeof(double));
    for (size_t i = 0; i < d; ++i) M[i * d + i] += 1.0 / alpha2;
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, M, (lapack_int)d);
    if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, M, (lapack_int)d);
    if (info != 0) {
        st = effdim_error_set(err, EFFDIM_EINTERNAL,
                              "BLR contraction: Cholesky inverse of H + I/alpha2 failed, info = %d",
                              (int)info);
        goto done;
    }
    double tr_post = 0.0;
    for (size_t i = 0; i < d; ++i) tr_post += M[i * d + i];
    if (contraction) *contraction = (double)d * alpha2 - tr_post;
    /* right side: alpha2 * N_eff(H, 1/alpha2) from the spectrum (H is PSD, so
       every lambda + 1/alpha2 > 0 and the policy is the plain formula) */
    st = effdim_dense_eigenvalues(d, H, w, err);
    if (st != EFFDIM_OK) goto done;
    double z = 1.0 / alpha2, ne;
    st = effdim_neff(w, d, &z, 1, EFFDIM_NEG_ASIS, &ne, err);
    if (st != EFFDIM_OK) goto done;
    if (neff) *neff = ne;
    if (alpha2_neff) *alpha2_neff = alpha2 * ne;
done:
    free(H);
    free(M);
    free(w);
    return st;
}
