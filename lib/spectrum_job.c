/* lib/spectrum_job.c: the spectrum job, what `effdim spectrum` runs
 * (effdim/spectrum.h).
 *
 * On the curvature operator of a network (lib/hvp.c): the k extreme
 * eigenpairs by thick-restart Lanczos (lib/lanczos.c); N_eff(z) =
 * sum_i lambda_i / (lambda_i + z) over the Ritz values (Maddox, Benton,
 * Wilson 2020); over the whole spectrum by stochastic Lanczos quadrature
 * with the converged pairs deflated (lib/slq.c), with standard errors, the
 * quadrature-bias diagnostic (the change from halving the steps) and the
 * reliability flags (effdim_slq_neff_flag); the Hutch++ trace; optionally
 * the spectral density, the exact whole spectrum of a small model (the
 * dense matrix of the same operator by P products, symmetrised, LAPACK
 * dsyev) and per-layer spectra (the operator restricted to each layer's
 * weight and bias). Every step reports through the caller's progress
 * callback. The result owns everything and is what effdim_spectrum_save
 * writes. Defaults live in effdim_spectrum_default_params, once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/operator.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"
#include "internal.h"

static const double default_z[] = {1.0, 10.0, 100.0};

effdim_spectrum_params effdim_spectrum_default_params(void)
{
    effdim_spectrum_params p;
    memset(&p, 0, sizeof p);
    p.op = EFFDIM_CURV_HESSIAN;
    p.hvp = EFFDIM_HVP_FD;
    p.cache = 1;
    p.k = 20;
    p.which = EFFDIM_LANCZOS_LARGEST;
    p.tol = 1e-8;
    p.max_matvecs = 5000;
    p.z = default_z;
    p.nz = sizeof default_z / sizeof default_z[0];
    p.neg = EFFDIM_NEG_ZERO;
    p.probes = 30;
    p.slq_steps = effdim_slq_default_params().steps;
    p.slq_mem_budget = (size_t)256 << 20;
    p.density_points = 400;
    p.dense_limit = 5000;
    return p;
}

effdim_status effdim_spectrum_check_params(const effdim_spectrum_params *p, size_t n_params,
                                           effdim_error *err)
{
    RETURN_ERROR_IF(!p, err, EFFDIM_EINVAL, "spectrum job: NULL params");
    RETURN_ERROR_IF(p->k < 1, err, EFFDIM_EINVAL, "spectrum job: k = 0, expected at least 1");
    RETURN_ERROR_IF(!(p->tol > 0 && p->tol < 1), err, EFFDIM_EINVAL,
                    "spectrum job: tol = %g, expected 0 < tol < 1", p->tol);
    RETURN_ERROR_IF(!p->nz || !p->z, err, EFFDIM_EINVAL, "spectrum job: no z values for N_eff");
    for (size_t j = 0; j < p->nz; ++j)
        RETURN_ERROR_IF(!(p->z[j] > 0) || !isfinite(p->z[j]), err, EFFDIM_EINVAL,
                        "spectrum job: z[%zu] = %g, expected a finite z > 0", j, p->z[j]);
    RETURN_ERROR_IF(p->probes && p->slq_steps < 2, err, EFFDIM_EINVAL,
                    "spectrum job: slq_steps = %zu, expected at least 2", p->slq_steps);
    RETURN_ERROR_IF(p->density && p->density_points < 2, err, EFFDIM_EINVAL,
                    "spectrum job: density_points = %zu, expected at least 2", p->density_points);
    if (p->dense && !p->force && n_params > p->dense_limit) {
        double bytes = (double)n_params * (double)n_params * 8.0;
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "--dense: P = %zu parameters is above the limit %zu "
                                "(--dense-limit); the dense matrix would take P^2 x 8 = %.0f "
                                "bytes (%.1f MiB, twice that while LAPACK runs) and %zu "
                                "matvecs; use --force to run it anyway",
                                n_params, p->dense_limit, bytes, bytes / 1048576.0, n_params);
    }
    return EFFDIM_OK;
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct job {
    const effdim_spectrum_params *p;
    effdim_spectrum *s;           /* the result being filled */
    const effdim_mlp *m;
    size_t *rows;                 /* (n_rows) sorted subset, or NULL */
    size_t n_rows;
    effdim_operator *op;
    effdim_hvp_info info;
    effdim_lanczos_workspace *lw;
    effdim_lanczos_solution sol;  /* points into lw */
    effdim_slq_info slq_info;
} job;

static double *dup_doubles(const double *v, size_t n, const char *what, effdim_error *err)
{
    double *d = effdim_alloc(n, sizeof(double), what, err);
    if (d && n) memcpy(d, v, n * sizeof(double));
    return d;
}

static effdim_status build_operator(job *j, const effdim_dataset *ds, const double *theta,
                                    effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.curvature = p->op;
    hp.method = p->op == EFFDIM_CURV_GGN ? EFFDIM_HVP_EXACT : p->hvp;
    hp.prior = p->prior;
    hp.chunk = p->chunk;
    hp.cache = p->cache && hp.method == EFFDIM_HVP_EXACT;
    j->n_rows = ds->n;
    if (p->subset && p->subset < ds->n) {
        j->rows = effdim_alloc(p->subset, sizeof *j->rows, "subset rows", err);
        if (!j->rows) return EFFDIM_ENOMEM;
        effdim_status st = effdim_sample_rows(ds->n, p->subset, p->seed, j->rows, err);
        if (st) return st;
        j->n_rows = p->subset;
        j->s->random_subset = 1;
    }
    effdim_status st = effdim_hvp_operator(j->m, theta, ds, j->rows, j->n_rows, &hp, NULL, &j->op,
                                           err);
    if (!st) st = effdim_hvp_get_info(j->op, &j->info, err);
    return st;
}

static effdim_lanczos_params lanczos_params(const effdim_spectrum_params *p, size_t k, size_t n,
                                            int vectors)
{
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = k;
    lp.which = p->which;
    lp.tol = p->tol;
    lp.seed = p->seed;
    lp.m = p->basis;
    if (lp.m && lp.m > n) lp.m = n;
    lp.max_matvecs = p->max_matvecs;
    lp.want_vectors = vectors;
    return lp;
}

static effdim_status lanczos_top(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    size_t n = j->op->n;
    size_t k = p->k < n ? p->k : n;
    int vectors = p->save_vectors || p->probes > 0;
    effdim_lanczos_params lp = lanczos_params(p, k, n, vectors);
    j->lw = effdim_lanczos_alloc(n, &lp, err);
    if (!j->lw) return err->code ? err->code : EFFDIM_ENOMEM;
    double t0 = effdim_now();
    effdim_status st = effdim_lanczos_init(j->lw, j->op, NULL, err);
    while (!st || st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(j->lw, err);
        effdim_lanczos_progress pr;
        effdim_lanczos_get_progress(j->lw, &pr);
        if (isfinite(pr.theta_max))
            effdim_progress_report(&p->progress, "lanczos", t0, pr.matvecs, 0, -1.0,
                                   "matvecs, %zu restarts, %zu/%zu converged, extreme Ritz "
                                   "values %.6g .. %.6g",
                                   pr.restarts, pr.nconv, pr.k, pr.theta_min, pr.theta_max);
        if (st != EFFDIM_ECONTINUE) break;
    }
    j->s->lanczos_seconds = effdim_now() - t0;
    if (st != EFFDIM_OK && st != EFFDIM_EMAXITER) return st;
    effdim_lanczos_progress pr;
    effdim_lanczos_get_progress(j->lw, &pr);
    effdim_progress_report(&p->progress, "lanczos", t0, pr.matvecs, pr.matvecs, -1.0,
                           "matvecs, %zu restarts, %zu/%zu converged%s", pr.restarts, pr.nconv,
                           pr.k, st == EFFDIM_EMAXITER ? " (stopped at the limit)" : "");
    return effdim_lanczos_result(j->lw, &j->sol, err);
}

/* The converged Ritz vectors, compacted, for deflation (NULL when none). */
static double *converged_vectors(const job *j, size_t *kd, double **vals, effdim_error *err)
{
    size_t n = j->sol.n, c = 0;
    *kd = 0;
    *vals = NULL;
    if (!j->sol.vectors) return NULL;
    for (size_t i = 0; i < j->sol.k; ++i) c += j->sol.converged[i] != 0;
    if (!c || c >= n) return NULL;
    double *V = effdim_alloc(c * n, sizeof(double), "deflation vectors", err);
    double *w = effdim_alloc(c, sizeof(double), "deflation values", err);
    if (!V || !w) {
        free(V);
        free(w);
        return NULL;
    }
    for (size_t i = 0, c2 = 0; i < j->sol.k; ++i)
        if (j->sol.converged[i]) {
            memcpy(V + c2 * n, j->sol.vectors + i * n, n * sizeof(double));
            w[c2++] = j->sol.eigenvalues[i];
        }
    *kd = c;
    *vals = w;
    return V;
}

/* "0.001, 0.01" into buf: the z whose flags include `flag` */
static size_t list_flagged(const effdim_spectrum *s, unsigned flag, char *buf, size_t cap)
{
    size_t n = 0, len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->m; ++i)
        if ((s->slq_flags[i] & flag) && len < cap) {
            len += (size_t)snprintf(buf + len, cap - len, "%s%g", n ? ", " : "", s->z[i]);
            ++n;
        }
    return n;
}

/* Flags each z (effdim_slq_neff_flag) and, when any is flagged, writes the
 * warning kept in the result. */
static effdim_status slq_check(job *j, effdim_error *err)
{
    effdim_spectrum *s = j->s;
    const effdim_slq_info *si = &j->slq_info;
    double lmin = si->lambda_min;
    for (size_t i = 0; i < j->sol.k; ++i) lmin = fmin(lmin, j->sol.eigenvalues[i]);
    s->slq_lambda_min = lmin;
    s->slq_gap0 = si->gap0;
    s->slq_flags = effdim_calloc(s->m, sizeof *s->slq_flags, "SLQ flags", err);
    if (!s->slq_flags) return EFFDIM_ENOMEM;
    for (size_t i = 0; i < s->m; ++i)
        s->slq_flags[i] = effdim_slq_neff_flag(lmin, si->gap0, s->z[i], j->p->neg,
                                               s->n_eff_slq_se[i], s->n_eff_slq_bias[i]);
    char neg[256], bias[256], w[1024];
    size_t nn = list_flagged(s, EFFDIM_SLQ_FLAG_NEGATIVE, neg, sizeof neg);
    size_t nb = list_flagged(s, EFFDIM_SLQ_FLAG_BIAS, bias, sizeof bias);
    if (!nn && !nb) return EFFDIM_OK;
    size_t len = (size_t)snprintf(w, sizeof w, "the SLQ N_eff is unreliable beyond its SE:");
    if (nn && len < sizeof w)
        len += (size_t)snprintf(w + len, sizeof w - len,
                                " at z = %s the smallest Ritz value %.3g is < 0 and the %s "
                                "policy puts a kink at 0 that %zu Gauss nodes per probe do not "
                                "resolve (node gap at 0: %.2g);",
                                neg, lmin, effdim_neg_policy_name(j->p->neg), si->steps,
                                si->gap0);
    if (nb && len < sizeof w)
        len += (size_t)snprintf(w + len, sizeof w - len,
                                " at z = %s the quadrature changes by more than 2 SE between "
                                "%zu and %zu steps;",
                                bias, si->half_steps, si->steps);
    if (len < sizeof w)
        snprintf(w + len, sizeof w - len,
                 " use more --slq-steps (now %zu), a larger z, or compare with the Ritz sum "
                 "over a larger -k",
                 si->steps);
    s->slq_warning = effdim_strdup(w, err);
    return s->slq_warning ? EFFDIM_OK : EFFDIM_ENOMEM;
}

/* the probes run together: as many bases as slq_mem_budget holds, 1..8 */
static size_t slq_block(const effdim_spectrum_params *p, size_t probes, size_t n)
{
    size_t per = (p->slq_steps + 1) * n * sizeof(double);
    size_t block = per ? p->slq_mem_budget / per : 1;
    block = block < 1 ? 1 : block > 8 ? 8 : block;
    return block > probes ? probes : block;
}

/* The SLQ run, a block of probes at a time, reporting the current N_eff at
 * the first z after each. */
static effdim_status slq_run(job *j, const effdim_slq_params *sp, const double *vals,
                             const double *V, size_t kd, effdim_slq **out, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_slq_workspace *ws = NULL;
    double t0 = effdim_now();
    effdim_status st = effdim_slq_init(j->op, sp, vals, V, kd, &ws, err);
    while (!st && (st = effdim_slq_iterate(ws, err)) == EFFDIM_ECONTINUE) {
        st = EFFDIM_OK;
        if (!p->progress.fn) continue;
        const effdim_slq *cur = effdim_slq_current(ws);
        effdim_slq_info ci;
        effdim_slq_get_info(cur, &ci);
        double ne = NAN, se = NAN;
        effdim_error ignore;
        effdim_slq_neff(cur, p->z, 1, p->neg, &ne, &se, &ignore);
        effdim_progress_report(&p->progress, "slq", t0, ci.probes, sp->probes, -1.0,
                               "probes x %zu steps, N_eff(z=%g) %.6g +- %.2g", ci.steps, p->z[0],
                               ne, se);
    }
    if (st == EFFDIM_OK) {
        effdim_progress_report(&p->progress, "slq", t0, sp->probes, sp->probes, -1.0,
                               "probes x %zu steps, %zu pairs deflated",
                               sp->steps, kd);
        st = effdim_slq_finish(ws, out, err);
    }
    effdim_slq_workspace_free(ws);
    return st;
}

static effdim_status slq_density(job *j, const effdim_slq *q, effdim_error *err)
{
    effdim_spectrum *s = j->s;
    s->n_grid = j->p->density_points;
    s->grid = effdim_alloc(s->n_grid, sizeof(double), "density grid", err);
    s->density = effdim_alloc(s->n_grid, sizeof(double), "density", err);
    if (!s->grid || !s->density) return EFFDIM_ENOMEM;
    double span = j->slq_info.lambda_max - j->slq_info.lambda_min;
    s->density_sigma = span > 0 ? 0.01 * span : 1e-3;
    s->density_probes = j->slq_info.probes;
    s->density_steps = j->slq_info.steps;
    effdim_status st = effdim_slq_grid(q, s->n_grid, 3.0 * s->density_sigma, s->grid, err);
    if (!st) st = effdim_slq_density(q, s->grid, s->n_grid, s->density_sigma, s->density, err);
    return st;
}

/* SLQ over the whole spectrum (deflating the converged pairs), the density,
 * and the Hutch++ trace. */
static effdim_status whole_spectrum(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    if (p->probes == 0) return EFFDIM_OK;
    size_t n = j->op->n, kd = 0;
    double *vals = NULL, *V = converged_vectors(j, &kd, &vals, err);
    if (!V && err->code == EFFDIM_ENOMEM) return EFFDIM_ENOMEM;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = p->probes < 2 ? 2 : p->probes;
    sp.seed = p->seed;
    sp.steps = p->slq_steps;
    sp.block = slq_block(p, sp.probes, n);
    effdim_slq *q = NULL;
    effdim_status st = slq_run(j, &sp, vals, V, kd, &q, err);
    free(V);
    free(vals);
    if (st) return st;
    effdim_slq_get_info(q, &j->slq_info);
    s->n_eff_slq = effdim_alloc(s->m, sizeof(double), "SLQ N_eff", err);
    s->n_eff_slq_se = effdim_alloc(s->m, sizeof(double), "SLQ N_eff SE", err);
    s->n_eff_slq_bias = effdim_alloc(s->m, sizeof(double), "SLQ N_eff bias", err);
    if (!s->n_eff_slq || !s->n_eff_slq_se || !s->n_eff_slq_bias) st = EFFDIM_ENOMEM;
    if (!st) st = effdim_slq_neff(q, s->z, s->m, p->neg, s->n_eff_slq, s->n_eff_slq_se, err);
    if (!st) st = effdim_slq_neff_bias(q, s->z, s->m, p->neg, s->n_eff_slq_bias, err);
    if (!st) {
        s->slq_probes = j->slq_info.probes;
        s->slq_steps = j->slq_info.steps;
        s->slq_deflated = j->slq_info.deflated;
        s->slq_half_steps = j->slq_info.half_steps;
        s->slq_matvecs = j->slq_info.matvecs;
        st = slq_check(j, err);
    }
    if (!st && p->density) st = slq_density(j, q, err);
    effdim_slq_free(q);
    if (st) return st;
    size_t before = j->op->vectors, budget = p->probes < 3 ? 3 : p->probes;
    double t0 = effdim_now();
    effdim_progress_report(&p->progress, "trace", t0, 0, budget, -1.0, "Hutch++ matvecs");
    st = effdim_hutchpp(j->op, budget, p->seed, &s->trace, &s->trace_se, err);
    if (st) return st;
    s->has_trace = 1;
    snprintf(s->trace_method, sizeof s->trace_method, "hutch++");
    s->trace_matvecs = s->trace_probes = j->op->vectors - before;
    effdim_progress_report(&p->progress, "trace", t0, budget, budget, -1.0, "Hutch++ matvecs");
    return EFFDIM_OK;
}

/* The exact whole spectrum: the dense matrix of the same operator by P
 * products on unit vectors, symmetrised to (A + A^T)/2 (the asymmetry
 * before is kept: rounding for exact products, the FD error otherwise), all
 * eigenvalues by LAPACK dsyev, and N_eff over them with the same z and policy. */
static effdim_status dense_spectrum(job *j, effdim_error *err)
{
    effdim_spectrum *s = j->s;
    size_t P = j->op->n, count;
    RETURN_ERROR_IF(effdim_mul_size(P, P, &count), err, EFFDIM_ENOMEM,
                    "--dense: a %zu x %zu matrix overflows size_t", P, P);
    double t0 = effdim_now();
    effdim_progress_report(&j->p->progress, "dense", t0, 0, P, -1.0,
                           "columns of the %zu x %zu matrix (%.1f MiB)", P, P,
                           (double)count * 8.0 / 1048576.0);
    size_t before = j->op->vectors;
    double *A = effdim_alloc(count, sizeof(double), "the dense operator", err);
    s->dense_eigenvalues = effdim_alloc(P, sizeof(double), "dense eigenvalues", err);
    s->n_eff_dense = effdim_alloc(s->m, sizeof(double), "dense N_eff", err);
    if (!A || !s->dense_eigenvalues || !s->n_eff_dense) {
        free(A);
        return EFFDIM_ENOMEM;
    }
    effdim_status st =
        effdim_operator_to_dense_progress(j->op, A, &s->dense_asymmetry, &j->p->progress, err);
    s->dense_matvecs = j->op->vectors - before;
    if (!st) {
        for (size_t a = 0; a < P; ++a)
            for (size_t b = a + 1; b < P; ++b) {
                double v = 0.5 * (A[a * P + b] + A[b * P + a]);
                A[a * P + b] = A[b * P + a] = v;
            }
        st = effdim_dense_eigenvalues(P, A, s->dense_eigenvalues, err);
    }
    free(A);
    if (!st) st = effdim_neff(s->dense_eigenvalues, P, s->z, s->m, j->p->neg, s->n_eff_dense, err);
    s->dense_seconds = effdim_now() - t0;
    return st;
}

/* The operator restricted to each layer's block (weight then bias). */
static effdim_status per_layer(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    size_t L = j->m->n_layers;
    s->layers = effdim_calloc(L, sizeof *s->layers, "per-layer spectra", err);
    if (!s->layers) return EFFDIM_ENOMEM;
    double t0 = effdim_now();
    for (size_t l = 0; l < L; ++l) {
        effdim_spectrum_layer *ly = &s->layers[l];
        effdim_mlp_layer_block(j->m, l, &ly->offset, &ly->size);
        size_t k = p->k < ly->size ? p->k : ly->size;
        effdim_progress_report(&p->progress, "layer", t0, l, L, -1.0,
                               "layers; layer %zu (%zu parameters), top %zu", l, ly->size, k);
        effdim_operator *sub = NULL;
        effdim_status st = effdim_operator_restrict(j->op, ly->offset, ly->size, &sub, err);
        if (st) return st;
        ly->eigenvalues = effdim_alloc(k, sizeof(double), "layer eigenvalues", err);
        ly->residuals = effdim_alloc(k, sizeof(double), "layer residuals", err);
        ly->n_eff = effdim_alloc(s->m, sizeof(double), "layer N_eff", err);
        unsigned char *conv = effdim_alloc(k, 1, "layer convergence flags", err);
        s->n_layers = l + 1;
        if (!ly->eigenvalues || !ly->residuals || !ly->n_eff || !conv) {
            free(conv);
            effdim_operator_free(sub);
            return EFFDIM_ENOMEM;
        }
        effdim_lanczos_params lp = lanczos_params(p, k, ly->size, 0);
        effdim_lanczos_stats stats;
        st = effdim_lanczos_eigs(sub, &lp, ly->eigenvalues, NULL, ly->residuals, conv, NULL,
                                 &stats, err);
        effdim_operator_free(sub);
        free(conv);
        if (st == EFFDIM_EMAXITER) st = EFFDIM_OK; /* ly->nconv < k says so */
        if (st) return st;
        ly->k = k;
        ly->nconv = stats.nconv;
        st = effdim_neff(ly->eigenvalues, k, s->z, s->m, p->neg, ly->n_eff, err);
        if (st) return st;
    }
    effdim_progress_report(&p->progress, "layer", t0, L, L, -1.0, "layers");
    return EFFDIM_OK;
}

/* provenance and the Lanczos results into the result */
static effdim_status fill_header(job *j, const effdim_dataset *ds, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    const char *spec = p->data_spec ? p->data_spec : ds->spec ? ds->spec : "";
    if (!(s->checkpoint = effdim_strdup(p->checkpoint ? p->checkpoint : "", err)) ||
        !(s->data_spec = effdim_strdup(spec, err)))
        return EFFDIM_ENOMEM;
    s->n = j->n_rows;
    s->n_params = j->m->n_params;
    snprintf(s->loss, sizeof s->loss, "%s", effdim_loss_name(j->m->loss));
    snprintf(s->reduction, sizeof s->reduction, "%s", effdim_reduction_name(j->m->reduction));
    s->scale = j->info.scale;
    snprintf(s->op, sizeof s->op, "%s", effdim_curvature_name(p->op));
    snprintf(s->hvp_method, sizeof s->hvp_method, "%s",
             effdim_hvp_method_name(p->op == EFFDIM_CURV_GGN ? EFFDIM_HVP_EXACT : p->hvp));
    s->fd_eps = j->info.fd_step;
    s->prior = p->prior;
    snprintf(s->which, sizeof s->which, "%s", effdim_lanczos_which_name(p->which));
    s->tol = p->tol;
    s->seed = p->seed;
    snprintf(s->neg_policy, sizeof s->neg_policy, "%s", effdim_neg_policy_name(p->neg));
    s->m = p->nz;
    if (!(s->z = dup_doubles(p->z, p->nz, "z", err))) return EFFDIM_ENOMEM;
    return EFFDIM_OK;
}

static effdim_status fill_lanczos(job *j, effdim_error *err)
{
    effdim_spectrum *s = j->s;
    const effdim_lanczos_solution *sol = &j->sol;
    size_t k = sol->k, n = sol->n;
    s->k = k;
    s->steps = sol->stats.steps;
    s->lanczos_matvecs = sol->stats.matvecs;
    s->restarts = sol->stats.restarts;
    s->nconv = sol->stats.nconv;
    if (!(s->eigenvalues = dup_doubles(sol->eigenvalues, k, "eigenvalues", err)) ||
        !(s->residuals = dup_doubles(sol->residuals, k, "residuals", err)) ||
        !(s->residual_bounds = dup_doubles(sol->residual_bounds, k, "residual bounds", err)) ||
        !(s->converged = effdim_alloc(k, 1, "convergence flags", err)) ||
        !(s->n_eff = effdim_alloc(s->m, sizeof(double), "N_eff", err)))
        return EFFDIM_ENOMEM;
    memcpy(s->converged, sol->converged, k);
    if (j->p->save_vectors &&
        !(s->eigenvectors = dup_doubles(sol->vectors, k * n, "eigenvectors", err)))
        return EFFDIM_ENOMEM;
    return effdim_neff(s->eigenvalues, k, s->z, s->m, j->p->neg, s->n_eff, err);
}

effdim_status effdim_spectrum_compute(const effdim_mlp *m, const double *theta,
                                      const effdim_dataset *ds, const effdim_spectrum_params *p,
                                      effdim_spectrum **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "spectrum job: NULL output");
    *out = NULL;
    RETURN_ERROR_IF(!m || !theta || !ds, err, EFFDIM_EINVAL, "spectrum job: NULL %s",
                    !m ? "network" : !theta ? "theta" : "data set");
    effdim_status st = effdim_spectrum_check_params(p, m->n_params, err);
    if (!st) st = effdim_mlp_check_data(m, ds, p->data_spec ? p->data_spec : ds->spec, err);
    if (st) return st;
    double t0 = effdim_now();
    job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.m = m;
    j.s = effdim_spectrum_new(err);
    if (!j.s) return EFFDIM_ENOMEM;
    if (p->checkpoint) st = effdim_file_sha256(p->checkpoint, j.s->checkpoint_sha256, err);
    if (!st) st = build_operator(&j, ds, theta, err);
    if (!st) st = fill_header(&j, ds, err);
    if (!st) st = lanczos_top(&j, err);
    if (!st) st = fill_lanczos(&j, err);
    if (!st) st = whole_spectrum(&j, err);
    if (!st && p->dense) st = dense_spectrum(&j, err);
    if (!st && p->per_layer) st = per_layer(&j, err);
    if (!st) {
        j.s->matvecs = j.op->vectors; /* everything: Lanczos, SLQ, trace, dense, layers */
        j.s->seconds = effdim_now() - t0;
    }
    effdim_lanczos_free(j.lw);
    effdim_operator_free(j.op);
    free(j.rows);
    if (st) {
        effdim_spectrum_free(j.s);
        return st;
    }
    *out = j.s;
    return EFFDIM_OK;
}
