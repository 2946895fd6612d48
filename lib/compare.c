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
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/neff.h"
#include "effdim/sha256.h"
#include "internal.h"

effdim_status effdim_compare_neff(const double *v, size_t n, const double *z, size_t m,
                                  effdim_neg_policy p, double *out, effdim_error *err)
{
    RETURN_ERROR_IF(p != EFFDIM_NEG_ZERO && p != EFFDIM_NEG_ABS && p != EFFDIM_NEG_ASIS, err,
                    EFFDIM_EINVAL, "N_eff: negative-value policy %d, expected zero, abs or asis",
                    (int)p);
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
    effdim_status st = effdim_compare_neff(eig, k, z, m, EFFDIM_NEG_ZERO, out, err);
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

/* ======================================================================
 * The compare job (effdim/compare.h): inputs loaded or computed, the grid,
 * the bound, every diagonal over every block.
 * ====================================================================== */

#define N_FRAC 3
static const double job_fractions[N_FRAC] = {0.001, 0.01, 0.1};

effdim_compare_params effdim_compare_default_params(void)
{
    effdim_compare_params p;
    memset(&p, 0, sizeof p);
    p.k = 20;
    p.tol = 1e-6;
    p.max_cost = 256.0;
    p.neg_policy = EFFDIM_NEG_ZERO;
    p.curve_points = 200;
    return p;
}

typedef struct cjob {
    const effdim_compare_inputs *in;
    const effdim_compare_params *p;
    effdim_compare_file *f;
    effdim_mlp_ws *ws;
    const effdim_spectrum *spec;  /* the spectrum file, or NULL */
    /* the reference */
    size_t k;
    const double *eig;            /* (k) */
    const double *vec;            /* (k, P) or NULL */
    double *own_eig, *own_vec, *own_res, *own_bnd;
    unsigned char *own_conv;
    effdim_lanczos_stats stats;
    /* the diagonals */
    size_t nd;
    const double *diag[EFFDIM_COMPARE_MAX_DIAGS];
    double *owned[EFFDIM_COMPARE_MAX_DIAGS];
    const double *exact;
    double *exact_own;
    const char *exact_source;
} cjob;

static double vec_sum(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += v[i];
    return s;
}

static char *dup_or_empty(const char *s, effdim_error *err)
{
    return effdim_strdup(s ? s : "", err);
}

/* 1 if name is one of the comma-separated list's entries */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *q = list; q && *q;) {
        const char *e = strchr(q, ',');
        size_t len = e ? (size_t)(e - q) : strlen(q);
        if (len == n && !strncmp(q, name, n)) return 1;
        q = e ? e + 1 : NULL;
    }
    return 0;
}

/* The methods computed without a diag file, after the default list's skips. */
static effdim_status job_methods(const effdim_compare_inputs *in, const effdim_compare_params *p,
                                 effdim_diag_method *ms, size_t *n, effdim_error *err)
{
    effdim_diag_method all[EFFDIM_DIAG_N_METHODS];
    size_t na = 0;
    int given = p->methods != NULL;
    effdim_status st = effdim_diag_methods_parse(given ? p->methods : "ggn,ef,hessian,adam", all,
                                                 EFFDIM_DIAG_N_METHODS, &na, err);
    if (st) return st;
    *n = 0;
    const effdim_mlp *m = &in->checkpoint->mlp;
    for (size_t i = 0; i < na; ++i) {
        if (!given && all[i] == EFFDIM_DIAG_ADAM &&
            !effdim_checkpoint_state(in->checkpoint, "exp_avg_sq"))
            continue;
        if (!given && all[i] == EFFDIM_DIAG_HESSIAN &&
            (p->no_exact || effdim_diag_hessian_cost(m, NULL) > p->max_cost))
            continue;
        ms[(*n)++] = all[i];
    }
    return EFFDIM_OK;
}

/* 1 if the diag file's entry `name` is selected for comparison */
static int selected(const effdim_compare_params *p, const char *name)
{
    return p->only ? in_list(p->only, name) : strcmp(name, "adam-vhat") != 0;
}

static int exact_wanted(const effdim_compare_inputs *in, const effdim_compare_params *p)
{
    return !p->no_exact && effdim_diag_hessian_cost(&in->checkpoint->mlp, NULL) <= p->max_cost;
}

int effdim_compare_needs_data(const effdim_compare_inputs *in, const effdim_compare_params *p)
{
    if (!in || !in->checkpoint || !p) return 0;
    if (!in->spectrum) return 1;
    int has_hessian = 0;
    if (in->diag) {
        for (size_t i = 0; i < in->diag->count; ++i)
            if (selected(p, in->diag->entries[i].name) && !strcmp(in->diag->entries[i].name, "hessian"))
                has_hessian = 1;
    } else {
        effdim_diag_method ms[EFFDIM_DIAG_N_METHODS];
        size_t n = 0;
        if (job_methods(in, p, ms, &n, NULL)) return 1; /* the job reports the bad list */
        for (size_t i = 0; i < n; ++i) {
            if (ms[i] != EFFDIM_DIAG_ADAM && ms[i] != EFFDIM_DIAG_IVON) return 1;
            has_hessian |= ms[i] == EFFDIM_DIAG_HESSIAN;
        }
    }
    return !has_hessian && exact_wanted(in, p);
}

/* ---- inputs ---- */

static effdim_status need_data(cjob *J, const char *what, effdim_error *err)
{
    const effdim_compare_inputs *in = J->in;
    RETURN_ERROR_IF(!in->data, err, EFFDIM_EINVAL,
                    "%s: no data for %s; give the data (or the spectrum and diag files)",
                    in->checkpoint_path, what);
    if (J->ws) return EFFDIM_OK;
    J->ws = effdim_mlp_ws_alloc(&in->checkpoint->mlp, J->p->chunk, err);
    return J->ws ? EFFDIM_OK : (err && err->code ? err->code : EFFDIM_ENOMEM);
}

/* The spectrum file must describe the same network and loss scale. */
static effdim_status check_spectrum(const cjob *J, effdim_error *err)
{
    const effdim_spectrum *s = J->spec;
    const effdim_mlp *m = &J->in->checkpoint->mlp;
    const char *sp = J->in->spectrum_path ? J->in->spectrum_path : "spectrum";
    RETURN_ERROR_IF(s->n_params != m->n_params, err, EFFDIM_EINVAL,
                    "%s: n_params %llu, but %s has %zu parameters", sp,
                    (unsigned long long)s->n_params, J->in->checkpoint_path, m->n_params);
    RETURN_ERROR_IF(strcmp(s->reduction, effdim_reduction_name(m->reduction)), err, EFFDIM_EINVAL,
                    "%s: reduction '%s', but %s uses '%s' (the scales would differ)", sp,
                    s->reduction, J->in->checkpoint_path, effdim_reduction_name(m->reduction));
    RETURN_ERROR_IF(s->k == 0, err, EFFDIM_EINVAL, "%s: no eigenvalues", sp);
    return EFFDIM_OK;
}

static effdim_status add_diag(cjob *J, const char *name, const double *v, double *owned,
                              effdim_error *err)
{
    if (J->nd >= EFFDIM_COMPARE_MAX_DIAGS) {
        free(owned);
        return effdim_error_set(err, EFFDIM_EINVAL, "compare: more than %d diagonals",
                                EFFDIM_COMPARE_MAX_DIAGS);
    }
    snprintf(J->f->diag_names[J->nd], EFFDIM_COMPARE_NAME_MAX, "%s", name);
    J->diag[J->nd] = v;
    J->owned[J->nd] = owned;
    ++J->nd;
    return EFFDIM_OK;
}

static effdim_status select_diag_file(cjob *J, effdim_error *err)
{
    const effdim_diag_file *df = J->in->diag;
    const effdim_mlp *m = &J->in->checkpoint->mlp;
    const char *dp = J->in->diag_path ? J->in->diag_path : "diag";
    RETURN_ERROR_IF(df->n_params != m->n_params, err, EFFDIM_EINVAL,
                    "%s: n_params %llu, but %s has %zu parameters", dp,
                    (unsigned long long)df->n_params, J->in->checkpoint_path, m->n_params);
    RETURN_ERROR_IF(df->reduction[0] && strcmp(df->reduction, effdim_reduction_name(m->reduction)),
                    err, EFFDIM_EINVAL, "%s: reduction '%s', but %s uses '%s'", dp, df->reduction,
                    J->in->checkpoint_path, effdim_reduction_name(m->reduction));
    for (size_t i = 0; i < df->count; ++i) {
        if (!selected(J->p, df->entries[i].name)) continue;
        effdim_status st = add_diag(J, df->entries[i].name, df->entries[i].v, NULL, err);
        if (st) return st;
    }
    if (J->p->only) { /* every name asked for must exist */
        char buf[512];
        snprintf(buf, sizeof buf, "%s", J->p->only);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
            RETURN_ERROR_IF(!effdim_diag_file_find(df, t), err, EFFDIM_ENOTFOUND,
                            "only: %s has no diagonal '%s'", dp, t);
    }
    return EFFDIM_OK;
}

static int lanczos_report(const cjob *J, effdim_lanczos_workspace *lw, double t0)
{
    effdim_lanczos_progress pr;
    effdim_lanczos_get_progress(lw, &pr);
    return effdim_progress_report(&J->p->progress, "lanczos", t0, pr.matvecs, 0, -1.0,
                                  "products, %zu restarts, %zu/%zu converged", pr.restarts,
                                  pr.nconv, pr.k);
}

/* The top k eigenpairs of the exact Hessian, with vectors, by Lanczos driven
 * step by step (the solution's own converged flags are kept). */
static effdim_status compute_spectrum(cjob *J, effdim_error *err)
{
    const effdim_checkpoint *c = J->in->checkpoint;
    const effdim_mlp *m = &c->mlp;
    size_t P = m->n_params, k = J->p->k < P ? J->p->k : P;
    RETURN_ERROR_IF(k == 0, err, EFFDIM_EINVAL, "compare: k = 0, expected at least 1");
    effdim_status st = need_data(J, "the spectrum", err);
    if (st) return st;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.method = EFFDIM_HVP_EXACT;
    effdim_operator *op = NULL;
    st = effdim_hvp_operator(m, c->theta, J->in->data, NULL, J->in->data->n, &hp, J->ws, &op, err);
    if (st) return st;
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = k;
    lp.tol = J->p->tol;
    lp.want_vectors = 1;
    lp.seed = J->p->seed;
    J->own_eig = effdim_alloc(k, sizeof(double), "eigenvalues", err);
    J->own_vec = J->own_eig ? effdim_alloc(k * P, sizeof(double), "eigenvectors", err) : NULL;
    J->own_res = J->own_vec ? effdim_alloc(k, sizeof(double), "residuals", err) : NULL;
    J->own_bnd = J->own_res ? effdim_alloc(k, sizeof(double), "residual bounds", err) : NULL;
    J->own_conv = J->own_bnd ? effdim_alloc(k, 1, "converged flags", err) : NULL;
    effdim_lanczos_workspace *lw = J->own_conv ? effdim_lanczos_alloc(P, &lp, err) : NULL;
    st = lw ? effdim_lanczos_init(lw, op, NULL, err) : err && err->code ? err->code : EFFDIM_ENOMEM;
    double t0 = effdim_progress_clock();
    int stopped = 0;
    if (st == EFFDIM_OK) st = EFFDIM_ECONTINUE;
    while (st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(lw, err);
        if (st == EFFDIM_ECONTINUE && lanczos_report(J, lw, t0)) {
            stopped = 1;
            st = effdim_error_set(err, EFFDIM_EMAXITER, "compare: interrupted during Lanczos");
        }
    }
    if (!stopped && (st == EFFDIM_OK || st == EFFDIM_EMAXITER)) { /* a limit keeps the partial pairs */
        effdim_lanczos_solution sol;
        effdim_status rs = effdim_lanczos_result(lw, &sol, err);
        if (rs) {
            st = rs;
        } else {
            memcpy(J->own_eig, sol.eigenvalues, k * sizeof(double));
            memcpy(J->own_bnd, sol.residual_bounds, k * sizeof(double));
            memcpy(J->own_res, sol.residuals, k * sizeof(double));
            memcpy(J->own_conv, sol.converged, k);
            memcpy(J->own_vec, sol.vectors, k * P * sizeof(double));
            J->stats = sol.stats;
            st = EFFDIM_OK;
        }
    }
    effdim_lanczos_free(lw);
    effdim_operator_free(op);
    if (st) return st;
    J->k = k;
    J->eig = J->own_eig;
    J->vec = J->own_vec;
    snprintf(J->f->ref_operator, sizeof J->f->ref_operator, "hessian");
    return EFFDIM_OK;
}

/* One diagonal computed here. */
static effdim_status compute_one(cjob *J, effdim_diag_method meth, effdim_error *err)
{
    const effdim_checkpoint *c = J->in->checkpoint;
    const effdim_mlp *m = &c->mlp;
    const effdim_dataset *ds = J->in->data;
    size_t P = m->n_params;
    effdim_diag_params dp = effdim_diag_default_params();
    dp.max_cost = J->p->max_cost;
    if (meth == EFFDIM_DIAG_ADAM) {
        double *v = effdim_alloc(P, sizeof(double), "adam", err);
        double *e = v ? effdim_alloc(P, sizeof(double), "adam-ef", err) : NULL;
        int ef_ok = 0;
        effdim_status st = e ? effdim_diag_adam(c, J->in->checkpoint_path, 0, ds ? ds->n : 0, NULL,
                                                v, e, &ef_ok, err)
                             : EFFDIM_ENOMEM;
        if (st) {
            free(v);
            free(e);
            return st;
        }
        st = add_diag(J, "adam", v, v, err);
        if (!st && ef_ok) return add_diag(J, "adam-ef", e, e, err);
        free(e);
        return st;
    }
    effdim_status st = meth == EFFDIM_DIAG_IVON ? EFFDIM_OK : need_data(J, "the diagonals", err);
    if (st) return st;
    double *v = effdim_alloc(P, sizeof(double), "diagonal", err);
    if (!v) return EFFDIM_ENOMEM;
    size_t n = ds ? ds->n : 0;
    switch (meth) {
    case EFFDIM_DIAG_GGN: st = effdim_diag_ggn(m, c->theta, ds, NULL, n, &dp, v, J->ws, err); break;
    case EFFDIM_DIAG_EF: st = effdim_diag_ef(m, c->theta, ds, NULL, n, &dp, v, J->ws, err); break;
    case EFFDIM_DIAG_GGN_MC:
        st = effdim_diag_ggn_mc(m, c->theta, ds, NULL, n, &dp, v, NULL, J->ws, err);
        break;
    case EFFDIM_DIAG_HESSIAN:
        st = effdim_diag_hessian(m, c->theta, ds, NULL, n, &dp, v, J->ws, err);
        break;
    case EFFDIM_DIAG_IVON: st = effdim_diag_ivon(c, J->in->checkpoint_path, n, v, err); break;
    default:
        st = effdim_error_set(err, EFFDIM_EINVAL,
                              "methods: %s is not computed by compare (run effdim diag, then "
                              "give its file)",
                              effdim_diag_method_name(meth));
        break;
    }
    if (st) {
        free(v);
        return st;
    }
    return add_diag(J, effdim_diag_method_name(meth), v, v, err);
}

static effdim_status compute_diags(cjob *J, effdim_error *err)
{
    effdim_diag_method ms[EFFDIM_DIAG_N_METHODS];
    size_t n = 0;
    double t0 = effdim_progress_clock();
    effdim_status st = job_methods(J->in, J->p, ms, &n, err);
    for (size_t i = 0; !st && i < n; ++i) {
        if (effdim_progress_report(&J->p->progress, "diag", t0, i, n, -1.0, "%s",
                                   effdim_diag_method_name(ms[i])))
            return effdim_error_set(err, EFFDIM_EMAXITER, "compare: interrupted");
        st = compute_one(J, ms[i], err);
    }
    if (!st) effdim_progress_report(&J->p->progress, "diag", t0, n, n, -1.0, "done");
    return st;
}

/* The exact Hessian diagonal: the diagonals' "hessian", else computed. */
static effdim_status find_exact(cjob *J, effdim_error *err)
{
    for (size_t i = 0; i < J->nd; ++i)
        if (!strcmp(J->f->diag_names[i], "hessian")) {
            J->exact = J->diag[i];
            J->exact_source = J->in->diag ? (J->in->diag_path ? J->in->diag_path : "diag")
                                          : "computed";
            return EFFDIM_OK;
        }
    if (!exact_wanted(J->in, J->p)) return EFFDIM_OK;
    effdim_status st = need_data(J, "the exact Hessian diagonal", err);
    if (st) return st;
    const effdim_mlp *m = &J->in->checkpoint->mlp;
    J->exact_own = effdim_alloc(m->n_params, sizeof(double), "exact diagonal", err);
    if (!J->exact_own) return EFFDIM_ENOMEM;
    effdim_diag_params dp = effdim_diag_default_params();
    dp.max_cost = J->p->max_cost;
    double t0 = effdim_progress_clock();
    if (effdim_progress_report(&J->p->progress, "diag", t0, 0, 1, -1.0, "exact hessian"))
        return effdim_error_set(err, EFFDIM_EMAXITER, "compare: interrupted");
    st = effdim_diag_hessian(m, J->in->checkpoint->theta, J->in->data, NULL, J->in->data->n, &dp,
                             J->exact_own, J->ws, err);
    if (st) return st;
    effdim_progress_report(&J->p->progress, "diag", t0, 1, 1, -1.0, "exact hessian");
    J->exact = J->exact_own;
    J->exact_source = "computed";
    return EFFDIM_OK;
}

/* ---- the grid, the reference, the bound ---- */

static int same_grid(const effdim_spectrum *s, const double *z, size_t m)
{
    return s && s->n_eff_slq && s->m == m && !memcmp(s->z, z, m * sizeof(double));
}

static effdim_status setup_grid(cjob *J, effdim_error *err)
{
    effdim_compare_file *f = J->f;
    const effdim_spectrum *s = J->spec;
    if (J->p->nz) {
        RETURN_ERROR_IF(!J->p->z, err, EFFDIM_EINVAL, "compare: z grid NULL");
        f->m = J->p->nz;
        f->z = effdim_alloc(f->m, sizeof(double), "z grid", err);
        if (f->z) memcpy(f->z, J->p->z, f->m * sizeof(double));
    } else if (s && s->m) {
        f->m = s->m;
        f->z = effdim_alloc(f->m, sizeof(double), "z grid", err);
        if (f->z) memcpy(f->z, s->z, f->m * sizeof(double));
    } else {
        double top = J->k && J->eig[0] > 0.0 ? J->eig[0] : 1.0;
        f->m = 13;
        f->z = effdim_alloc(f->m, sizeof(double), "z grid", err);
        for (size_t i = 0; f->z && i < f->m; ++i) f->z[i] = top * pow(10.0, -5.0 + 0.5 * (double)i);
    }
    if (!f->z) return EFFDIM_ENOMEM;
    if (J->p->neg_policy_given) f->neg_policy = J->p->neg_policy;
    else if (s && s->neg_policy[0]) {
        effdim_status st = effdim_neg_policy_parse(s->neg_policy, &f->neg_policy, err);
        if (st) return st;
    } else f->neg_policy = EFFDIM_NEG_ZERO;
    return EFFDIM_OK;
}

/* The trace of the reference operator when the PSD bound holds for it (see
 * effdim/compare.h): 1 and *trace, or 0 (no bound). */
static int bound_trace(const cjob *J, double *trace)
{
    size_t P = J->in->checkpoint->mlp.n_params;
    const effdim_spectrum *s = J->spec;
    if (!strcmp(J->f->ref_operator, "ggn")) { /* PSD by construction; its trace: the GGN diagonal */
        const double *g = NULL;
        for (size_t d = 0; d < J->nd; ++d)
            if (!strcmp(J->f->diag_names[d], "ggn")) g = J->diag[d];
        const effdim_diag_entry *e = J->in->diag ? effdim_diag_file_find(J->in->diag, "ggn") : NULL;
        if (!g && e) g = e->v;
        if (!g) return 0;
        *trace = vec_sum(g, P);
        return 1;
    }
    /* a Hessian: PSD only if its smallest eigenvalue is known and >= 0 */
    if (!J->exact || !s || (strcmp(s->which, "bottom") && strcmp(s->which, "both")) || !s->k)
        return 0;
    size_t lo = s->k - 1; /* descending: the smallest is last */
    if (s->eigenvalues[lo] < 0.0 || (s->converged && !s->converged[lo])) return 0;
    *trace = vec_sum(J->exact, P);
    return 1;
}

static effdim_status setup_reference(cjob *J, effdim_error *err)
{
    effdim_compare_file *f = J->f;
    const effdim_spectrum *s = J->spec;
    size_t P = J->in->checkpoint->mlp.n_params, m = f->m;
    f->k = J->k;
    f->ref_has_vectors = J->vec != NULL;
    f->eigenvalues = effdim_alloc(J->k, sizeof(double), "eigenvalues", err);
    f->n_eff = effdim_alloc(m, sizeof(double), "N_eff", err);
    if (!f->eigenvalues || !f->n_eff) return EFFDIM_ENOMEM;
    memcpy(f->eigenvalues, J->eig, J->k * sizeof(double));
    f->trace_eigs = vec_sum(J->eig, J->k);
    effdim_status st = effdim_compare_neff(J->eig, J->k, f->z, m, f->neg_policy, f->n_eff, err);
    if (st) return st;
    if (same_grid(s, f->z, m)) {
        f->n_eff_slq = effdim_alloc(m, sizeof(double), "SLQ N_eff", err);
        if (!f->n_eff_slq) return EFFDIM_ENOMEM;
        memcpy(f->n_eff_slq, s->n_eff_slq, m * sizeof(double));
        if (s->n_eff_slq_se) {
            f->n_eff_slq_se = effdim_alloc(m, sizeof(double), "SLQ N_eff", err);
            if (!f->n_eff_slq_se) return EFFDIM_ENOMEM;
            memcpy(f->n_eff_slq_se, s->n_eff_slq_se, m * sizeof(double));
        }
    }
    if (s && s->has_trace) {
        RETURN_ERROR_IF(strcmp(s->trace_method, "hutchinson") && strcmp(s->trace_method, "hutch++"),
                        err, EFFDIM_EINVAL, "%s: /trace: 'method' is not hutchinson or hutch++",
                        J->in->spectrum_path ? J->in->spectrum_path : "spectrum");
        f->has_trace = 1;
        f->trace = s->trace;
        f->trace_se = s->trace_se;
        snprintf(f->trace_method, sizeof f->trace_method, "%s", s->trace_method);
    }
    if (J->exact) {
        f->has_trace_exact = 1;
        f->trace_exact = vec_sum(J->exact, P);
    }
    double trace_rest;
    if (bound_trace(J, &trace_rest) && J->k < P) {
        f->n_eff_upper_psd = effdim_alloc(m, sizeof(double), "bound", err);
        if (!f->n_eff_upper_psd) return EFFDIM_ENOMEM;
        st = effdim_compare_neff_bound(J->eig, J->k, trace_rest - vec_sum(J->eig, J->k), P - J->k,
                                       f->z, m, f->n_eff_upper_psd, err);
    }
    return st;
}

static void setup_blocks(cjob *J)
{
    const effdim_mlp *m = &J->in->checkpoint->mlp;
    effdim_compare_file *f = J->f;
    snprintf(f->block_names[0], EFFDIM_COMPARE_NAME_MAX, "all");
    f->block_offsets[0] = 0;
    f->block_sizes[0] = m->n_params;
    for (size_t l = 0; l < m->n_layers; ++l) {
        snprintf(f->block_names[l + 1], EFFDIM_COMPARE_NAME_MAX, "layer%zu", l);
        effdim_mlp_layer_block(m, l, &f->block_offsets[l + 1], &f->block_sizes[l + 1]);
    }
    f->n_blocks = m->n_layers + 1;
    f->n_topm = N_FRAC;
    memcpy(f->topm_fractions, job_fractions, sizeof job_fractions);
}

/* The reference eigenvalues of block b: the whole spectrum, or the spectrum
 * file's per-layer spectrum of that block when it has one. */
static void block_eigs(const cjob *J, size_t b, size_t *k, const double **eig)
{
    *k = 0;
    *eig = NULL;
    if (b == 0) {
        *k = J->k;
        *eig = J->eig;
        return;
    }
    const effdim_spectrum *s = J->spec;
    for (size_t i = 0; s && i < s->n_layers; ++i)
        if (s->layers[i].offset == J->f->block_offsets[b] && s->layers[i].size == J->f->block_sizes[b]) {
            *k = s->layers[i].k;
            *eig = s->layers[i].eigenvalues;
        }
}

static effdim_status run_blocks(cjob *J, effdim_error *err)
{
    effdim_compare_file *f = J->f;
    size_t P = J->in->checkpoint->mlp.n_params;
    f->results = effdim_calloc(J->nd * f->n_blocks, sizeof *f->results, "results", err);
    if (!f->results) return EFFDIM_ENOMEM;
    for (size_t d = 0; d < J->nd; ++d)
        for (size_t b = 0; b < f->n_blocks; ++b) {
            effdim_compare_input in;
            memset(&in, 0, sizeof in);
            in.n = f->block_sizes[b];
            in.diag = J->diag[d] + f->block_offsets[b];
            in.exact = J->exact ? J->exact + f->block_offsets[b] : NULL;
            block_eigs(J, b, &in.k, &in.eigenvalues);
            in.kv = J->vec ? J->k : 0;
            in.eigenvectors = J->vec ? J->vec + f->block_offsets[b] : NULL;
            in.ld = P;
            in.m = f->m;
            in.z = f->z;
            in.neg_policy = f->neg_policy;
            in.n_topm = f->n_topm;
            in.topm_fractions = f->topm_fractions;
            effdim_status st = effdim_compare_run(&in, &f->results[d * f->n_blocks + b], err);
            if (st) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                return effdim_error_set(err, st, "%s, %s: %s", f->diag_names[d], f->block_names[b],
                                        msg);
            }
        }
    return EFFDIM_OK;
}

static double *copy_of(const double *v, size_t n, effdim_error *err)
{
    double *c = effdim_alloc(n ? n : 1, sizeof(double), "copy", err);
    if (c && n) memcpy(c, v, n * sizeof(double));
    return c;
}

/* /slq (the spectrum file's own grid) and /curves (dense log grid). */
static effdim_status setup_curves(cjob *J, effdim_error *err)
{
    effdim_compare_file *f = J->f;
    const effdim_spectrum *s = J->spec;
    size_t P = J->in->checkpoint->mlp.n_params;
    if (s && s->n_eff_slq && s->m) {
        f->slq_m = s->m;
        f->slq_z = copy_of(s->z, s->m, err);
        f->slq_n_eff = copy_of(s->n_eff_slq, s->m, err);
        f->slq_se = s->n_eff_slq_se ? copy_of(s->n_eff_slq_se, s->m, err) : NULL;
        if (!f->slq_z || !f->slq_n_eff || (s->n_eff_slq_se && !f->slq_se)) return EFFDIM_ENOMEM;
    }
    size_t nc = J->p->curve_points;
    if (nc == 0) return EFFDIM_OK;
    double lo = f->z[0], hi = f->z[0];
    for (size_t i = 0; i < f->m; ++i) lo = fmin(lo, f->z[i]), hi = fmax(hi, f->z[i]);
    for (size_t i = 0; i < f->slq_m; ++i) lo = fmin(lo, f->slq_z[i]), hi = fmax(hi, f->slq_z[i]);
    if (!(hi > lo)) lo /= 10.0, hi *= 10.0;
    if (nc < 2) nc = 2;
    f->curve_m = nc;
    f->curve_z = effdim_alloc(nc, sizeof(double), "curve grid", err);
    f->curve_eigs = effdim_alloc(nc, sizeof(double), "curve", err);
    if (!f->curve_z || !f->curve_eigs) return EFFDIM_ENOMEM;
    for (size_t i = 0; i < nc; ++i)
        f->curve_z[i] = lo * pow(hi / lo, (double)i / (double)(nc - 1));
    effdim_status st = effdim_compare_neff(J->eig, J->k, f->curve_z, nc, f->neg_policy,
                                           f->curve_eigs, err);
    for (size_t d = 0; !st && d < J->nd; ++d) {
        if (!(f->curve_diag[d] = effdim_alloc(nc, sizeof(double), "curve", err))) return EFFDIM_ENOMEM;
        st = effdim_compare_neff(J->diag[d], P, f->curve_z, nc, f->neg_policy, f->curve_diag[d], err);
    }
    double trace;
    if (!st && f->n_eff_upper_psd && bound_trace(J, &trace)) {
        if (!(f->curve_bound = effdim_alloc(nc, sizeof(double), "curve", err))) return EFFDIM_ENOMEM;
        st = effdim_compare_neff_bound(J->eig, J->k, trace - vec_sum(J->eig, J->k), P - J->k,
                                       f->curve_z, nc, f->curve_bound, err);
    }
    return st;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The sorted profiles (see effdim_compare_file's /sorted). */
static effdim_status sorted_profiles(cjob *J, effdim_error *err)
{
    effdim_compare_file *f = J->f;
    size_t P = J->in->checkpoint->mlp.n_params;
    /* eight decades below the largest value (a diagonal's tail of near-zero
     * entries would otherwise squash the figure) */
    double top = J->eig[0];
    for (size_t d = 0; d < J->nd; ++d)
        for (size_t j = 0; j < P; ++j) top = fmax(top, J->diag[d][j]);
    f->sorted_floor = top > 0.0 ? top * 1e-8 : 0.0;
    double *tmp = effdim_alloc(P, sizeof(double), "sorted diagonal", err);
    if (!tmp) return EFFDIM_ENOMEM;
    effdim_status st = EFFDIM_OK;
    for (size_t d = 0; !st && d < J->nd; ++d) {
        memcpy(tmp, J->diag[d], P * sizeof(double));
        qsort(tmp, P, sizeof(double), cmp_desc);
        size_t npos = 0, last = 0, c = 0;
        while (npos < P && tmp[npos] > f->sorted_floor) ++npos;
        f->sorted[d] = effdim_alloc(2 * 401, sizeof(double), "sorted diagonal", err);
        if (!f->sorted[d]) {
            st = EFFDIM_ENOMEM;
            break;
        }
        for (int t = 0; t <= 400 && npos; ++t) {
            size_t r = (size_t)llround(pow((double)npos, (double)t / 400.0));
            if (r <= last) continue;
            f->sorted[d][2 * c] = (double)r;
            f->sorted[d][2 * c + 1] = tmp[r - 1];
            ++c;
            last = r;
        }
        f->sorted_n[d] = c;
    }
    free(tmp);
    return st;
}

static effdim_status fill_provenance(cjob *J, effdim_error *err)
{
    const effdim_compare_inputs *in = J->in;
    const effdim_mlp *m = &in->checkpoint->mlp;
    effdim_compare_file *f = J->f;
    if (effdim_sha256_file(in->checkpoint_path, f->checkpoint_sha256, NULL))
        f->checkpoint_sha256[0] = '\0';
    const char *spec = in->data_spec ? in->data_spec : in->diag ? in->diag->data_spec : "";
    f->checkpoint = dup_or_empty(in->checkpoint_path, err);
    f->spectrum_file = dup_or_empty(in->spectrum ? in->spectrum_path : NULL, err);
    f->diag_file = dup_or_empty(in->diag ? in->diag_path : NULL, err);
    f->data_spec = dup_or_empty(spec, err);
    f->command_line = dup_or_empty(J->p->command_line, err);
    f->exact = dup_or_empty(J->exact ? J->exact_source : NULL, err);
    f->ref_source = dup_or_empty(J->spec ? (in->spectrum_path ? in->spectrum_path : "spectrum")
                                         : "computed",
                                 err);
    if (!f->checkpoint || !f->spectrum_file || !f->diag_file || !f->data_spec ||
        !f->command_line || !f->exact || !f->ref_source)
        return EFFDIM_ENOMEM;
    f->n_params = m->n_params;
    snprintf(f->loss, sizeof f->loss, "%s", effdim_loss_name(m->loss));
    snprintf(f->reduction, sizeof f->reduction, "%s", effdim_reduction_name(m->reduction));
    f->n_diags = J->nd;
    return EFFDIM_OK;
}

/* The spectrum computed here as a spectrum that owns its arrays. */
static effdim_status computed_spectrum(cjob *J, effdim_spectrum **out, effdim_error *err)
{
    const effdim_compare_inputs *in = J->in;
    const effdim_mlp *m = &in->checkpoint->mlp;
    const effdim_compare_file *f = J->f;
    effdim_spectrum *s = effdim_calloc(1, sizeof *s, "spectrum", err);
    if (!s) return EFFDIM_ENOMEM;
    effdim_spectrum_init(s);
    memcpy(s->checkpoint_sha256, f->checkpoint_sha256, sizeof s->checkpoint_sha256);
    s->checkpoint = dup_or_empty(in->checkpoint_path, err);
    s->data_spec = dup_or_empty(in->data_spec, err);
    s->z = effdim_alloc(f->m, sizeof(double), "z", err);
    s->n_eff = effdim_alloc(f->m, sizeof(double), "N_eff", err);
    if (!s->checkpoint || !s->data_spec || !s->z || !s->n_eff) {
        effdim_spectrum_free(s);
        return EFFDIM_ENOMEM;
    }
    s->n = in->data->n;
    s->n_params = m->n_params;
    snprintf(s->loss, sizeof s->loss, "%s", effdim_loss_name(m->loss));
    snprintf(s->reduction, sizeof s->reduction, "%s", effdim_reduction_name(m->reduction));
    s->scale = effdim_mlp_loss_scale(m, in->data->n);
    snprintf(s->op, sizeof s->op, "hessian");
    snprintf(s->hvp_method, sizeof s->hvp_method, "exact");
    snprintf(s->which, sizeof s->which, "top");
    snprintf(s->neg_policy, sizeof s->neg_policy, "%s", effdim_neg_policy_name(f->neg_policy));
    s->tol = J->p->tol;
    s->seed = J->p->seed;
    s->steps = J->stats.steps;
    s->matvecs = J->stats.matvecs;
    s->restarts = J->stats.restarts;
    s->nconv = J->stats.nconv;
    s->seconds = J->stats.seconds;
    s->k = J->k;
    s->eigenvalues = J->own_eig;
    s->residuals = J->own_res;
    s->residual_bounds = J->own_bnd;
    s->converged = J->own_conv;
    s->eigenvectors = J->own_vec;
    J->own_eig = J->own_res = J->own_bnd = J->own_vec = NULL;
    J->own_conv = NULL;
    s->m = f->m;
    memcpy(s->z, f->z, f->m * sizeof(double));
    memcpy(s->n_eff, f->n_eff, f->m * sizeof(double));
    *out = s;
    return EFFDIM_OK;
}

static void job_free(cjob *J)
{
    for (size_t i = 0; i < J->nd; ++i) free(J->owned[i]);
    free(J->exact_own);
    free(J->own_eig);
    free(J->own_vec);
    free(J->own_res);
    free(J->own_bnd);
    free(J->own_conv);
    effdim_mlp_ws_free(J->ws);
}

effdim_status effdim_compare_compute(const effdim_compare_inputs *in, const effdim_compare_params *p,
                                     effdim_compare_file **out, effdim_spectrum **computed,
                                     effdim_error *err)
{
    RETURN_ERROR_IF(!in || !in->checkpoint || !in->checkpoint_path || !p || !out, err,
                    EFFDIM_EINVAL, "compare: NULL inputs, parameters or output");
    *out = NULL;
    if (computed) *computed = NULL;
    cjob J;
    memset(&J, 0, sizeof J);
    J.in = in;
    J.p = p;
    J.spec = in->spectrum;
    J.f = effdim_calloc(1, sizeof *J.f, "comparison", err);
    if (!J.f) return EFFDIM_ENOMEM;
    effdim_status st = EFFDIM_OK;
    /* the given files first, so a bad file fails before any computing */
    if (J.spec) {
        st = check_spectrum(&J, err);
        if (!st) {
            J.k = J.spec->k;
            J.eig = J.spec->eigenvalues;
            J.vec = J.spec->eigenvectors;
            snprintf(J.f->ref_operator, sizeof J.f->ref_operator, "%s",
                     J.spec->op[0] ? J.spec->op : "hessian");
        }
    }
    if (!st && in->diag) st = select_diag_file(&J, err);
    if (!st && !J.spec) st = compute_spectrum(&J, err);
    if (!st && !in->diag) st = compute_diags(&J, err);
    if (!st) st = find_exact(&J, err);
    if (!st) st = setup_grid(&J, err);
    if (!st) setup_blocks(&J);
    if (!st && J.nd == 0) st = effdim_error_set(err, EFFDIM_EINVAL, "no diagonals to compare");
    if (!st) st = fill_provenance(&J, err);
    if (!st) st = setup_reference(&J, err);
    if (!st) st = run_blocks(&J, err);
    if (!st) st = sorted_profiles(&J, err);
    if (!st) st = setup_curves(&J, err);
    if (!st && computed && !J.spec) st = computed_spectrum(&J, computed, err);
    job_free(&J);
    if (st) {
        effdim_compare_file_free(J.f);
        return st;
    }
    *out = J.f;
    return EFFDIM_OK;
}

const effdim_compare_result *effdim_compare_file_result(const effdim_compare_file *f, size_t d,
                                                        size_t b)
{
    if (!f || !f->results || d >= f->n_diags || b >= f->n_blocks) return NULL;
    return &f->results[d * f->n_blocks + b];
}
