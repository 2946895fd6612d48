/* lib/neff.c: effective dimensionality N_eff(z) = sum_i lambda_i / (lambda_i + z)
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

#include "effdim/dense.h"
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

