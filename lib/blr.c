/* lib/blr.c: posterior contraction in Bayesian linear regression as points
 * are added one at a time (see effdim/blr.h), and the "effdim.blr" file.
 *
 * Algorithm, per point added (k features, N inputs):
 *   H += phi phi^T / noise                    cblas_dsyr (upper), k^2
 *   H = V diag(l) V^T                         LAPACKE_dsyevd on a copy, ~9 k^3
 *   Sigma_post = V diag(mu) V^T, mu_i = 1 / (max(l_i, 0) + 1/prior_var)
 *   B = Phi V diag(sqrt(mu))  (N, k)          cblas_dgemm, 2 N k^2
 *   eig(B^T B) = the non-zero eigenvalues of Phi Sigma_post Phi^T (N, N)
 *                                             cblas_dsyrk + LAPACKE_dsyev, N k^2 + 4/3 k^3
 *   tr Sigma_post from the Cholesky inverse of H + I/prior_var (LAPACKE
 *   dpotrf + dpotri), independent of the eigenvalues, for the identity
 *   tr(Sigma_prior) - tr(Sigma_post) = prior_var N_eff(H, 1/prior_var)
 *   (Maddox, Benton and Wilson 2020, Section 4; SEEDS.md 4.5).
 * The order is a Fisher-Yates shuffle of 0 .. N-1 by GSL's mt19937.
 */
#include <cblas.h>
#include <float.h>
#include <gsl/gsl_rng.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/blr.h"
#include "effdim/neff.h"
#include "h5io.h"
#include "internal.h"
#include "effdim/dense.h"

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

#define PI 3.14159265358979323846

effdim_blr_params effdim_blr_default_params(void)
{
    effdim_blr_params p;
    memset(&p, 0, sizeof p);
    p.n_points = 300;
    p.x_max = 50.0;
    p.n_freq = 100;
    p.noise = 0.1;
    p.prior_var = 3.0;
    p.z = 5.0;
    p.seed = 0;
    return p;
}

static effdim_status check_params(const effdim_blr_params *p, effdim_error *err)
{
    RETURN_ERROR_IF(!p, err, EFFDIM_EINVAL, "blr: parameters are NULL");
    RETURN_ERROR_IF(p->n_points == 0 || p->n_points > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "blr: n_points = %zu, expected 1 to %d", p->n_points, INT32_MAX);
    RETURN_ERROR_IF(p->n_freq == 0 || p->n_freq > 4096, err, EFFDIM_EINVAL,
                    "blr: n_freq = %zu, expected 1 to 4096 (k = 2 n_freq features)", p->n_freq);
    RETURN_ERROR_IF(!(p->x_max > 0.0) || !isfinite(p->x_max), err, EFFDIM_EDOM,
                    "blr: x_max = %g, expected a finite value > 0", p->x_max);
    RETURN_ERROR_IF(!(p->noise > 0.0) || !isfinite(p->noise), err, EFFDIM_EDOM,
                    "blr: noise = %g, expected a finite variance > 0", p->noise);
    RETURN_ERROR_IF(!(p->prior_var > 0.0) || !isfinite(p->prior_var), err, EFFDIM_EDOM,
                    "blr: prior_var = %g, expected a finite variance > 0", p->prior_var);
    RETURN_ERROR_IF(!(p->z > 0.0) || !isfinite(p->z), err, EFFDIM_EDOM,
                    "blr: z = %g, expected a finite value > 0", p->z);
    return EFFDIM_OK;
}

effdim_status effdim_blr_design(const effdim_blr_params *p, double *Phi, double *x,
                                effdim_error *err)
{
    effdim_status st = check_params(p, err);
    if (st) return st;
    RETURN_ERROR_IF(!Phi || !x, err, EFFDIM_EINVAL, "blr: design output is NULL");
    size_t N = p->n_points, F = p->n_freq, k = 2 * F;
    for (size_t t = 0; t < N; ++t) {
        /* numpy's linspace: start + t * step, the last point exactly x_max */
        x[t] = N == 1 ? 0.0 : t + 1 == N ? p->x_max : p->x_max * (double)t / (double)(N - 1);
        for (size_t j = 0; j < F; ++j) {
            double a = (double)(j + 1) * PI * x[t];
            Phi[t * k + j] = cos(a);
            Phi[t * k + F + j] = sin(a);
        }
    }
    return EFFDIM_OK;
}

void effdim_blr_result_free(effdim_blr_result *r)
{
    if (!r) return;
    free(r->x);
    free(r->order);
    free(r->neff_hessian);
    free(r->neff_posterior);
    free(r->neff_function);
    free(r->contraction);
    free(r->rank);
    free(r->version);
    free(r->created);
    free(r);
}

/* the result's arrays for n_points inputs and n_rows rows */
static effdim_blr_result *result_alloc(size_t n_points, size_t n_rows, effdim_error *err)
{
    effdim_blr_result *r = effdim_calloc(1, sizeof *r, "blr result", err);
    if (!r) return NULL;
    r->x = effdim_alloc(n_points, sizeof(double), "blr: x", err);
    r->order = r->x ? effdim_alloc(n_points, sizeof(int64_t), "blr: order", err) : NULL;
    r->neff_hessian = r->order ? effdim_calloc(n_rows, sizeof(double), "blr: N_eff", err) : NULL;
    r->neff_posterior = r->neff_hessian ? effdim_calloc(n_rows, sizeof(double), "blr: N_eff", err)
                                        : NULL;
    r->neff_function = r->neff_posterior ? effdim_calloc(n_rows, sizeof(double), "blr: N_eff", err)
                                         : NULL;
    r->contraction = r->neff_function ? effdim_calloc(n_rows, sizeof(double), "blr: trace", err)
                                      : NULL;
    r->rank = r->contraction ? effdim_calloc(n_rows, sizeof(int64_t), "blr: rank", err) : NULL;
    if (!r->rank) {
        effdim_blr_result_free(r);
        return NULL;
    }
    r->n_rows = n_rows;
    return r;
}

/* scratch of one run */
typedef struct blr_work {
    double *Phi;   /* (N, k) design */
    double *H;     /* (k, k) Phi_n^T Phi_n / noise, upper triangle kept */
    double *V;     /* (k, k) eigenvectors (columns) of H */
    double *l;     /* (k) eigenvalues of H, ascending */
    double *B;     /* (N, k) Phi V diag(sqrt(mu)) */
    double *C;     /* (k, k) B^T B, then the Cholesky work matrix */
    double *f;     /* (k) eigenvalues of C */
} blr_work;

static void work_free(blr_work *w)
{
    free(w->Phi);
    free(w->H);
    free(w->V);
    free(w->l);
    free(w->B);
    free(w->C);
    free(w->f);
}

static effdim_status work_alloc(size_t N, size_t k, blr_work *w, effdim_error *err)
{
    memset(w, 0, sizeof *w);
    w->Phi = effdim_alloc(N * k, sizeof(double), "blr: design", err);
    w->H = w->Phi ? effdim_calloc(k * k, sizeof(double), "blr: H", err) : NULL;
    w->V = w->H ? effdim_alloc(k * k, sizeof(double), "blr: eigenvectors", err) : NULL;
    w->l = w->V ? effdim_alloc(k, sizeof(double), "blr: eigenvalues", err) : NULL;
    w->B = w->l ? effdim_alloc(N * k, sizeof(double), "blr: function-space factor", err) : NULL;
    w->C = w->B ? effdim_alloc(k * k, sizeof(double), "blr: k x k scratch", err) : NULL;
    w->f = w->C ? effdim_alloc(k, sizeof(double), "blr: eigenvalues", err) : NULL;
    if (w->f) return EFFDIM_OK;
    work_free(w);
    return EFFDIM_ENOMEM;
}

static double neff_of(const double *ev, size_t n, double z)
{
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += effdim_neff_term(ev[i], z, EFFDIM_NEG_ZERO);
    return s;
}

/* Row n of the result from H (the first n points added). */
static effdim_status blr_row(const effdim_blr_params *p, size_t n, size_t k, blr_work *w,
                             effdim_blr_result *r, effdim_error *err)
{
    size_t N = p->n_points;
    double a = 1.0 / p->prior_var;
    /* eigen-decomposition of H (upper triangle holds it) */
    memcpy(w->V, w->H, k * k * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)k, w->V,
                                     (lapack_int)k, w->l);
    RETURN_ERROR_IF(info != 0, err, EFFDIM_EINTERNAL,
                    "blr: eigen-decomposition of H after %zu points failed, info = %d", n,
                    (int)info);
    double lmax = w->l[k - 1] > 0.0 ? w->l[k - 1] : 0.0, tol = (double)(n > k ? n : k) * DBL_EPSILON;
    int64_t rank = 0;
    for (size_t i = 0; i < k; ++i) rank += w->l[i] > tol * lmax && lmax > 0.0;
    r->rank[n] = rank;
    r->neff_hessian[n] = neff_of(w->l, k, a);
    /* posterior covariance eigenvalues mu_i, and V diag(sqrt(mu)) in place */
    double post = 0.0;
    for (size_t j = 0; j < k; ++j) {
        double mu = 1.0 / ((w->l[j] > 0.0 ? w->l[j] : 0.0) + a);
        post += mu / (mu + p->z);
        double q = sqrt(mu);
        for (size_t i = 0; i < k; ++i) w->V[i * k + j] *= q;
    }
    r->neff_posterior[n] = post;
    /* B (N, k) = Phi V diag(sqrt(mu)); C = B^T B shares the non-zero
     * spectrum of B B^T = Phi Sigma_post Phi^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)k, (int)k, 1.0, w->Phi,
                (int)k, w->V, (int)k, 0.0, w->B, (int)k);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)N, 1.0, w->B, (int)k, 0.0,
                w->C, (int)k);
    info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)k, w->C, (lapack_int)k, w->f);
    RETURN_ERROR_IF(info != 0, err, EFFDIM_EINTERNAL,
                    "blr: eigenvalues of the function-space covariance after %zu points failed, "
                    "info = %d", n, (int)info);
    r->neff_function[n] = neff_of(w->f, k, p->z);
    /* tr Sigma_post by the Cholesky inverse of H + I/prior_var */
    memcpy(w->C, w->H, k * k * sizeof(double));
    for (size_t i = 0; i < k; ++i) w->C[i * k + i] += a;
    info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, w->C, (lapack_int)k);
    if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, w->C, (lapack_int)k);
    RETURN_ERROR_IF(info != 0, err, EFFDIM_EINTERNAL,
                    "blr: Cholesky inverse of H + I/prior_var after %zu points failed, info = %d",
                    n, (int)info);
    double tr = 0.0;
    for (size_t i = 0; i < k; ++i) tr += w->C[i * k + i];
    r->contraction[n] = (double)k * p->prior_var - tr;
    return EFFDIM_OK;
}

effdim_status effdim_blr_run(const effdim_blr_params *p, const effdim_progress *prog,
                             effdim_blr_result **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "blr: output is NULL");
    *out = NULL;
    effdim_status st = check_params(p, err);
    if (st) return st;
    size_t N = p->n_points, k = 2 * p->n_freq;
    double t0 = effdim_now(), start = effdim_progress_clock();
    blr_work w;
    st = work_alloc(N, k, &w, err);
    if (st) return st;
    effdim_blr_result *r = result_alloc(N, N + 1, err);
    gsl_rng *rng = r ? gsl_rng_alloc(gsl_rng_mt19937) : NULL;
    if (!rng) {
        if (r) st = effdim_error_set(err, EFFDIM_ENOMEM, "blr: cannot allocate the random generator");
        else st = EFFDIM_ENOMEM;
        goto done;
    }
    r->params = *p;
    r->k = k;
    st = effdim_blr_design(p, w.Phi, r->x, err);
    if (st) goto done;
    /* the order: Fisher-Yates over 0 .. N-1 */
    gsl_rng_set(rng, (unsigned long)p->seed);
    for (size_t t = 0; t < N; ++t) r->order[t] = (int64_t)t;
    for (size_t t = N - 1; t > 0; --t) {
        size_t j = (size_t)gsl_rng_uniform_int(rng, (unsigned long)(t + 1));
        int64_t tmp = r->order[t];
        r->order[t] = r->order[j];
        r->order[j] = tmp;
    }
    size_t rows = 0;
    for (size_t n = 0; n <= N; ++n) {
        if (n) /* add point order[n-1] */
            cblas_dsyr(CblasRowMajor, CblasUpper, (int)k, 1.0 / p->noise,
                       w.Phi + (size_t)r->order[n - 1] * k, 1, w.H, (int)k);
        st = blr_row(p, n, k, &w, r, err);
        if (st) goto done;
        rows = n + 1;
        if (effdim_progress_report(prog, "blr", start, n, N, -1.0,
                                   "N_eff posterior %.4g, function %.4g, Hessian %.4g",
                                   r->neff_posterior[n], r->neff_function[n],
                                   r->neff_hessian[n]) &&
            n < N) {
            st = effdim_error_set(err, EFFDIM_EMAXITER, "blr: interrupted after %zu of %zu points",
                                  n, N);
            break;
        }
    }
    r->n_rows = rows;
    r->complete = rows == N + 1;
    r->max_identity_err = 0.0;
    for (size_t n = 1; n < rows; ++n) {
        double e = fabs(r->contraction[n] - p->prior_var * r->neff_hessian[n]) / r->contraction[n];
        if (e > r->max_identity_err) r->max_identity_err = e;
    }
    r->seconds = effdim_now() - t0;
done:
    gsl_rng_free(rng);
    work_free(&w);
    if (st && st != EFFDIM_EMAXITER) {
        effdim_blr_result_free(r);
        r = NULL;
    }
    *out = r;
    return st;
}

/* ======================================================================== */
/* the file                                                                 */
/* ======================================================================== */

static effdim_status write_root(hid_t f, const effdim_blr_result *r, effdim_error *err)
{
    const effdim_blr_params *p = &r->params;
    char created[64];
    effdim_status st = effdim_h5_attr_write_string(f, "format", EFFDIM_BLR_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "format_version", EFFDIM_BLR_VERSION, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_points", (int64_t)p->n_points, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_freq", (int64_t)p->n_freq, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_features", (int64_t)r->k, err);
    if (!st) st = effdim_h5_attr_write_double(f, "x_max", p->x_max, err);
    if (!st) st = effdim_h5_attr_write_double(f, "noise", p->noise, err);
    if (!st) st = effdim_h5_attr_write_double(f, "prior_var", p->prior_var, err);
    if (!st) st = effdim_h5_attr_write_double(f, "z", p->z, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "seed", (int64_t)p->seed, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "complete", r->complete, err);
    if (!st) st = effdim_h5_attr_write_double(f, "max_identity_err", r->max_identity_err, err);
    if (!st) st = effdim_h5_attr_write_double(f, "seconds", r->seconds, err);
    if (!st)
        st = effdim_h5_attr_write_string(f, "version", r->version ? r->version : effdim_version(),
                                         err);
    if (!st)
        st = effdim_h5_attr_write_string(
            f, "created", r->created ? r->created : effdim_now_iso(created, sizeof created), err);
    return st;
}

effdim_status effdim_blr_save(const effdim_blr_result *r, const char *path, effdim_error *err)
{
    RETURN_ERROR_IF(!r || !path, err, EFFDIM_EINVAL, "blr save: NULL argument");
    RETURN_ERROR_IF(r->n_rows == 0 || r->n_rows > r->params.n_points + 1 ||
                        r->k != 2 * r->params.n_freq,
                    err, EFFDIM_EINVAL, "%s: blr result with %zu rows for %zu points, k = %zu",
                    path, r->n_rows, r->params.n_points, r->k);
    effdim_h5_atomic a;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    hid_t g = -1;
    int64_t *n = effdim_alloc(r->n_rows, sizeof(int64_t), "blr save: n", err);
    if (!n) st = EFFDIM_ENOMEM;
    if (!st) st = write_root(a.file, r, err);
    if (!st) st = effdim_h5_group(a.file, "blr", &g, err);
    size_t np[1] = {r->params.n_points}, nr[1] = {r->n_rows};
    for (size_t i = 0; n && i < r->n_rows; ++i) n[i] = (int64_t)i;
    if (!st) st = effdim_h5_write_doubles(g, "x", 1, np, r->x, err);
    if (!st) st = effdim_h5_write_int64s(g, "order", 1, np, r->order, err);
    if (!st) st = effdim_h5_write_int64s(g, "n", 1, nr, n, err);
    if (!st) st = effdim_h5_write_doubles(g, "neff_hessian", 1, nr, r->neff_hessian, err);
    if (!st) st = effdim_h5_write_doubles(g, "neff_posterior", 1, nr, r->neff_posterior, err);
    if (!st) st = effdim_h5_write_doubles(g, "neff_function", 1, nr, r->neff_function, err);
    if (!st) st = effdim_h5_write_doubles(g, "contraction", 1, nr, r->contraction, err);
    if (!st) st = effdim_h5_write_int64s(g, "rank", 1, nr, r->rank, err);
    if (g >= 0) H5Gclose(g);
    free(n);
    if (!st) st = effdim_h5_atomic_commit(&a, err);
    if (st) effdim_h5_atomic_abort(&a);
    return st;
}

/* a 1-D dataset of exactly n elements */
static effdim_status check_len(hid_t g, const char *path, const char *name, size_t n,
                               effdim_error *err)
{
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_status st = effdim_h5_shape(g, name, &rank, dims, &cls, err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1 || dims[0] != n, err, EFFDIM_EFORMAT,
                    "%s: /blr/%s: %d-D of %zu, expected 1-D of %zu", path, name, rank,
                    rank ? dims[0] : 0, n);
    return EFFDIM_OK;
}

static effdim_status read_size(hid_t f, const char *path, const char *name, size_t *v,
                               effdim_error *err)
{
    int64_t x = 0;
    effdim_status st = effdim_h5_attr_read_int64(f, name, &x, err);
    if (st) return st;
    RETURN_ERROR_IF(x < 0, err, EFFDIM_EFORMAT, "%s: /: %s = %lld, expected >= 0", path, name,
                    (long long)x);
    *v = (size_t)x;
    return EFFDIM_OK;
}

effdim_status effdim_blr_load(const char *path, effdim_blr_result **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "blr load: NULL argument");
    *out = NULL;
    hid_t f = -1, g = -1;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (st) return st;
    char buf[64] = "";
    int64_t ver = 0, complete = 0, seed = 0;
    effdim_blr_params p = effdim_blr_default_params();
    size_t k = 0, n_rows = 0;
    effdim_blr_result *r = NULL;
    st = effdim_h5_attr_read_string(f, "format", buf, sizeof buf, err);
    if (!st && strcmp(buf, EFFDIM_BLR_FORMAT))
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /: format is '%s', expected '%s'", path,
                              buf, EFFDIM_BLR_FORMAT);
    if (!st) st = effdim_h5_attr_read_int64(f, "format_version", &ver, err);
    if (!st && ver > EFFDIM_BLR_VERSION)
        st = effdim_error_set(err, EFFDIM_EVERSION, "%s: /: format_version %lld is newer than "
                              "this effdim reads (%d); upgrade effdim", path, (long long)ver,
                              EFFDIM_BLR_VERSION);
    if (!st && ver < 1)
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /: format_version %lld, expected %d", path,
                              (long long)ver, EFFDIM_BLR_VERSION);
    if (!st) st = read_size(f, path, "n_points", &p.n_points, err);
    if (!st) st = read_size(f, path, "n_freq", &p.n_freq, err);
    if (!st) st = read_size(f, path, "n_features", &k, err);
    if (!st) st = effdim_h5_attr_read_double(f, "x_max", &p.x_max, err);
    if (!st) st = effdim_h5_attr_read_double(f, "noise", &p.noise, err);
    if (!st) st = effdim_h5_attr_read_double(f, "prior_var", &p.prior_var, err);
    if (!st) st = effdim_h5_attr_read_double(f, "z", &p.z, err);
    if (!st) st = effdim_h5_attr_read_int64(f, "seed", &seed, err);
    if (!st) st = effdim_h5_attr_read_int64(f, "complete", &complete, err);
    if (!st) st = check_params(&p, err);
    if (!st && k != 2 * p.n_freq)
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /: n_features %zu, expected 2 n_freq = %zu",
                              path, k, 2 * p.n_freq);
    if (!st) {
        int rank = 0;
        size_t dims[EFFDIM_H5_MAX_RANK];
        H5T_class_t cls;
        g = H5Gopen2(f, "blr", H5P_DEFAULT);
        if (g < 0) st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /blr: group is missing", path);
        if (!st) st = effdim_h5_shape(g, "n", &rank, dims, &cls, err);
        if (!st && (rank != 1 || dims[0] == 0 || dims[0] > p.n_points + 1))
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /blr/n: expected 1 to %zu rows", path,
                                  p.n_points + 1);
        if (!st) n_rows = dims[0];
    }
    if (!st) {
        r = result_alloc(p.n_points, n_rows, err);
        if (!r) st = EFFDIM_ENOMEM;
    }
    const char *const vecs[] = {"neff_hessian", "neff_posterior", "neff_function", "contraction"};
    for (int i = 0; !st && i < 4; ++i) st = check_len(g, path, vecs[i], n_rows, err);
    if (!st) st = check_len(g, path, "rank", n_rows, err);
    if (!st) st = check_len(g, path, "x", p.n_points, err);
    if (!st) st = check_len(g, path, "order", p.n_points, err);
    if (!st) st = effdim_h5_read_doubles(g, "neff_hessian", r->neff_hessian, n_rows, err);
    if (!st) st = effdim_h5_read_doubles(g, "neff_posterior", r->neff_posterior, n_rows, err);
    if (!st) st = effdim_h5_read_doubles(g, "neff_function", r->neff_function, n_rows, err);
    if (!st) st = effdim_h5_read_doubles(g, "contraction", r->contraction, n_rows, err);
    if (!st) st = effdim_h5_read_int64s(g, "rank", r->rank, n_rows, err);
    if (!st) st = effdim_h5_read_doubles(g, "x", r->x, p.n_points, err);
    if (!st) st = effdim_h5_read_int64s(g, "order", r->order, p.n_points, err);
    if (!st) {
        p.seed = (uint64_t)seed;
        r->params = p;
        r->k = k;
        r->complete = complete != 0;
        r->n_rows = n_rows;
        st = effdim_h5_attr_read_double(f, "max_identity_err", &r->max_identity_err, err);
    }
    if (!st) st = effdim_h5_attr_read_double(f, "seconds", &r->seconds, err);
    effdim_error optional; /* version and created may be missing */
    if (!st && effdim_h5_attr_read_string(f, "version", buf, sizeof buf, &optional) == EFFDIM_OK)
        r->version = effdim_strdup(buf, err);
    if (!st && effdim_h5_attr_read_string(f, "created", buf, sizeof buf, &optional) == EFFDIM_OK)
        r->created = effdim_strdup(buf, err);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    if (st) {
        effdim_blr_result_free(r);
        return st;
    }
    *out = r;
    return EFFDIM_OK;
}
