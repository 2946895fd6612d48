/* lib/compare.c: a diagonal curvature estimate against the spectrum (see
 * effdim/compare.h for what is computed and why).
 *
 * Algorithms: one index sort of the diagonal (gsl_sort_index, O(n log n))
 * gives both the quantiles (its q largest entries) and the top-m coordinate
 * sets of the alignment (the m last indices); N_eff is effdim_neff per z;
 * Spearman's rho is GSL's (gsl_stats_spearman: Pearson correlation of the
 * ranks, mean ranks for ties); the Schur-Horn majorisation behind the
 * partial-sum ratio is in Horn and Johnson, Matrix Analysis (2nd ed.),
 * Theorem 4.3.45. N_eff(z) = sum lambda/(lambda + z) follows Maddox, Benton
 * and Wilson, "Rethinking parameter counting in deep models" (2020), eq. 2.
 */
#include <gsl/gsl_sort_double.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/compare.h"
#include "effdim/neff.h"
#include "internal.h"

/* The policy by name; NULL means "zero" (effdim/neff.h names the rest). */
static effdim_status parse_policy(const char *s, effdim_neg_policy *p, effdim_error *err)
{
    if (!s) {
        *p = EFFDIM_NEG_ZERO;
        return EFFDIM_OK;
    }
    return effdim_neg_policy_parse(s, p, err);
}

effdim_status effdim_compare_neff(const double *v, size_t n, const double *z, size_t m,
                                  const char *neg_policy, double *out, effdim_error *err)
{
    effdim_neg_policy p = EFFDIM_NEG_ZERO;
    effdim_status st = parse_policy(neg_policy, &p, err);
    if (st) return st;
    RETURN_ERROR_IF((n && !v) || (m && (!z || !out)), err, EFFDIM_EINVAL, "N_eff: NULL array");
    for (size_t i = 0; i < m; ++i)
        RETURN_ERROR_IF(!(z[i] > 0.0) || !isfinite(z[i]), err, EFFDIM_EINVAL,
                        "N_eff: z[%zu] = %g, expected a finite value > 0", i, z[i]);
    return effdim_neff(v, n, z, m, p, out, err);
}

effdim_status effdim_compare_neff_bound(const double *eig, size_t k, double rest_trace,
                                        size_t n_rest, const double *z, size_t m, double *out,
                                        effdim_error *err)
{
    effdim_status st = effdim_compare_neff(eig, k, z, m, "zero", out, err);
    if (st) return st;
    if (rest_trace > 0.0 && n_rest > 0)
        for (size_t i = 0; i < m; ++i)
            out[i] += rest_trace / (rest_trace / (double)n_rest + z[i]);
    return EFFDIM_OK;
}

effdim_status effdim_compare_spearman(const double *a, const double *b, size_t n, double *rho,
                                      effdim_error *err)
{
    RETURN_ERROR_IF(!a || !b || !rho, err, EFFDIM_EINVAL, "spearman: NULL argument");
    RETURN_ERROR_IF(n < 2, err, EFFDIM_EINVAL, "spearman: %zu values, expected at least 2", n);
    double *work = effdim_alloc(2 * n, sizeof(double), "spearman ranks", err);
    if (!work) return EFFDIM_ENOMEM;
    *rho = gsl_stats_spearman(a, 1, b, 1, n, work);
    free(work);
    return EFFDIM_OK;
}

effdim_status effdim_compare_top_indices(const double *d, size_t n, size_t m, size_t *idx,
                                         effdim_error *err)
{
    RETURN_ERROR_IF(!d || !idx, err, EFFDIM_EINVAL, "top indices: NULL argument");
    RETURN_ERROR_IF(m > n, err, EFFDIM_EINVAL, "top indices: m = %zu > n = %zu", m, n);
    size_t *perm = effdim_alloc(n, sizeof(size_t), "sort index", err);
    if (!perm) return EFFDIM_ENOMEM;
    gsl_sort_index(perm, d, 1, n); /* ascending */
    for (size_t i = 0; i < m; ++i) idx[i] = perm[n - 1 - i];
    free(perm);
    return EFFDIM_OK;
}

void effdim_compare_result_free(effdim_compare_result *r)
{
    if (!r) return;
    free(r->n_eff);
    free(r->n_eff_eigs);
    free(r->top);
    free(r->ratio);
    free(r->partial);
    free(r->mass);
    free(r->alignment);
    memset(r, 0, sizeof *r);
}

/* ---- pieces ---- */

static const double default_fractions[] = {0.001, 0.01, 0.1};

static effdim_status check_input(const effdim_compare_input *in, effdim_error *err)
{
    RETURN_ERROR_IF(!in || !in->diag || in->n == 0, err, EFFDIM_EINVAL,
                    "compare: no diagonal entries");
    RETURN_ERROR_IF(in->k && !in->eigenvalues, err, EFFDIM_EINVAL, "compare: eigenvalues NULL");
    RETURN_ERROR_IF(in->kv && (!in->eigenvectors || in->ld < in->n), err, EFFDIM_EINVAL,
                    "compare: eigenvectors NULL or their stride %zu < %zu entries", in->ld, in->n);
    RETURN_ERROR_IF(in->m && !in->z, err, EFFDIM_EINVAL, "compare: z grid NULL");
    RETURN_ERROR_IF(in->n_topm > EFFDIM_COMPARE_MAX_TOPM || (in->n_topm && !in->topm_fractions),
                    err, EFFDIM_EINVAL, "compare: at most %d alignment fractions",
                    EFFDIM_COMPARE_MAX_TOPM);
    for (size_t i = 0; i < in->n_topm; ++i)
        RETURN_ERROR_IF(!(in->topm_fractions[i] > 0.0 && in->topm_fractions[i] <= 1.0), err,
                        EFFDIM_EINVAL, "compare: alignment fraction %g, expected in (0, 1]",
                        in->topm_fractions[i]);
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(in->diag, in->n, &bad), err, EFFDIM_EDOM,
                    "compare: diagonal entry %zu is %g, expected a finite value", bad,
                    in->diag[bad]);
    for (size_t i = 1; i < in->k; ++i)
        RETURN_ERROR_IF(in->eigenvalues[i] > in->eigenvalues[i - 1], err, EFFDIM_EINVAL,
                        "compare: eigenvalues not descending at %zu", i);
    return EFFDIM_OK;
}

/* trace, negatives, exact-diagonal accuracy figures */
static effdim_status accuracy(const effdim_compare_input *in, effdim_compare_result *r,
                              effdim_error *err)
{
    size_t n = in->n;
    const double *d = in->diag, *h = in->exact;
    r->trace = 0.0;
    for (size_t j = 0; j < n; ++j) {
        r->trace += d[j];
        r->negative += d[j] < 0.0;
    }
    r->trace_exact = r->spearman = r->rel_error = r->rel_error_fit = r->fit_scale =
        r->median_rel_error = r->scale_ratio = (double)NAN;
    if (!h) return EFFDIM_OK;
    double th = 0.0, dd = 0.0, dh = 0.0, hh = 0.0, ee = 0.0;
    for (size_t j = 0; j < n; ++j) {
        th += h[j];
        dd += d[j] * d[j];
        dh += d[j] * h[j];
        hh += h[j] * h[j];
        ee += (d[j] - h[j]) * (d[j] - h[j]);
    }
    r->trace_exact = th;
    r->scale_ratio = th != 0.0 ? r->trace / th : (double)NAN;
    if (hh > 0.0) {
        r->rel_error = sqrt(ee / hh);
        double c = dd > 0.0 ? dh / dd : 0.0, res = 0.0;
        for (size_t j = 0; j < n; ++j) /* directly: hh - dh^2/dd cancels */
            res += (c * d[j] - h[j]) * (c * d[j] - h[j]);
        r->fit_scale = c;
        r->rel_error_fit = sqrt(res / hh);
    }
    if (n >= 2) {
        effdim_status st = effdim_compare_spearman(d, h, n, &r->spearman, err);
        if (st) return st;
    }
    double *rel = effdim_alloc(n, sizeof(double), "relative errors", err);
    if (!rel) return EFFDIM_ENOMEM;
    size_t c = 0;
    for (size_t j = 0; j < n; ++j)
        if (h[j] != 0.0) rel[c++] = fabs(d[j] - h[j]) / fabs(h[j]);
    if (c) {
        gsl_sort(rel, 1, c);
        r->median_rel_error = gsl_stats_median_from_sorted_data(rel, 1, c);
    }
    free(rel);
    return EFFDIM_OK;
}

/* quantiles from the ascending sort index perm (n) */
static void quantiles(const effdim_compare_input *in, const size_t *perm, effdim_compare_result *r)
{
    double sd = 0.0, sl = 0.0;
    for (size_t i = 0; i < r->q; ++i) {
        double v = in->diag[perm[in->n - 1 - i]], lam = in->eigenvalues[i];
        r->top[i] = v;
        r->ratio[i] = v / lam;
        sd += v;
        sl += lam;
        r->partial[i] = sd / sl;
    }
}

/* eigenvector mass and alignment from the ascending sort index perm (n) */
static void alignment(const effdim_compare_input *in, const size_t *perm, effdim_compare_result *r)
{
    size_t n = in->n;
    for (size_t i = 0; i < in->kv; ++i) {
        const double *v = in->eigenvectors + i * in->ld;
        double mass = 0.0;
        for (size_t j = 0; j < n; ++j) mass += v[j] * v[j];
        r->mass[i] = mass;
        /* cumulative mass over the coordinates by decreasing diagonal */
        double cum = 0.0;
        size_t done = 0;
        for (size_t t = 0; t < r->n_topm; ++t) {
            for (; done < r->topm[t]; ++done) {
                double x = v[perm[n - 1 - done]];
                cum += x * x;
            }
            r->alignment[i * r->n_topm + t] = mass > 0.0 ? cum / mass : (double)NAN;
        }
    }
}

/* the m values of the alignment: round(f n), at least 1, ascending (one per
 * fraction, so tables keep their columns even when a small block repeats one) */
static void topm_sizes(const effdim_compare_input *in, effdim_compare_result *r)
{
    const double *f = in->n_topm ? in->topm_fractions : default_fractions;
    size_t nf = in->n_topm ? in->n_topm : sizeof default_fractions / sizeof *default_fractions;
    r->n_topm = 0;
    for (size_t i = 0; i < nf; ++i) {
        size_t mm = (size_t)llround(f[i] * (double)in->n);
        if (mm < 1) mm = 1;
        if (mm > in->n) mm = in->n;
        size_t pos = r->n_topm;
        while (pos > 0 && r->topm[pos - 1] > mm) { /* keep ascending */
            r->topm[pos] = r->topm[pos - 1];
            --pos;
        }
        r->topm[pos] = mm;
        ++r->n_topm;
    }
    for (size_t t = 0; t < r->n_topm; ++t) r->baseline[t] = (double)r->topm[t] / (double)in->n;
}

static effdim_status alloc_result(const effdim_compare_input *in, effdim_compare_result *r,
                                  effdim_error *err)
{
    size_t q = r->q, m = in->m;
    r->n_eff = effdim_calloc(m ? m : 1, sizeof(double), "compare N_eff", err);
    r->n_eff_eigs = in->k ? effdim_calloc(m ? m : 1, sizeof(double), "compare N_eff", err) : NULL;
    r->top = effdim_calloc(q ? q : 1, sizeof(double), "compare quantiles", err);
    r->ratio = effdim_calloc(q ? q : 1, sizeof(double), "compare quantiles", err);
    r->partial = effdim_calloc(q ? q : 1, sizeof(double), "compare quantiles", err);
    r->mass = in->kv ? effdim_calloc(in->kv, sizeof(double), "compare mass", err) : NULL;
    r->alignment = in->kv ? effdim_calloc(in->kv * r->n_topm, sizeof(double), "alignment", err)
                          : NULL;
    int ok = r->n_eff && (!in->k || r->n_eff_eigs) && r->top && r->ratio && r->partial &&
             (!in->kv || (r->mass && r->alignment));
    return ok ? EFFDIM_OK : EFFDIM_ENOMEM;
}

effdim_status effdim_compare_run(const effdim_compare_input *in, effdim_compare_result *out,
                                 effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "compare: result is NULL");
    memset(out, 0, sizeof *out);
    effdim_status st = check_input(in, err);
    if (st) return st;
    effdim_compare_result *r = out;
    r->n = in->n;
    r->k = in->k;
    r->kv = in->kv;
    r->m = in->m;
    r->q = in->k < in->n ? in->k : in->n;
    topm_sizes(in, r);
    size_t *perm = NULL;
    st = alloc_result(in, r, err);
    if (!st && !(perm = effdim_alloc(in->n, sizeof(size_t), "sort index", err))) st = EFFDIM_ENOMEM;
    if (!st) st = effdim_compare_neff(in->diag, in->n, in->z, in->m, in->neg_policy, r->n_eff, err);
    if (!st && in->k)
        st = effdim_compare_neff(in->eigenvalues, in->k, in->z, in->m, in->neg_policy,
                                 r->n_eff_eigs, err);
    if (!st) st = accuracy(in, r, err);
    if (!st) {
        r->trace_eigs = in->k ? 0.0 : (double)NAN;
        for (size_t i = 0; i < in->k; ++i) r->trace_eigs += in->eigenvalues[i];
        gsl_sort_index(perm, in->diag, 1, in->n);
        quantiles(in, perm, r);
        alignment(in, perm, r);
    }
    free(perm);
    if (st) effdim_compare_result_free(r);
    return st;
}
