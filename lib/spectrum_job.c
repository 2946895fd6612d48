/* lib/spectrum_job.c: the spectrum job, what `effdim spectrum` runs
 * (effdim/spectrum.h).
 *
 * On the curvature operator of a network (lib/hvp.c): the k extreme
 * eigenpairs by thick-restart Lanczos (lib/lanczos.c); N_eff(z) =
 * sum_i lambda_i / (lambda_i + z) over the Ritz values (Maddox, Benton,
 * Wilson 2020); over the whole spectrum by stochastic Lanczos quadrature
 * with the converged pairs deflated (lib/spectral.c), with standard errors, the
 * quadrature-bias diagnostic (the change from halving the steps) and the
 * reliability flags (effdim_slq_neff_flag); the Hutch++ trace; optionally
 * the spectral density, the exact whole spectrum of a small model (the
 * dense matrix of the same operator by P products, symmetrised, LAPACK
 * dsyev) and per-layer spectra (the operator restricted to each layer's
 * weight and bias). Every step reports through the caller's progress
 * callback. The result owns everything and is what effdim_spectrum_save
 * writes. Defaults live in effdim_spectrum_default_params, once.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/dense.h"
#include "effdim/operator.h"
#include "effdim/sha256.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"
#include "internal.h"


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
    p.z = NULL; /* the grid relative to the top eigenvalue */
    p.nz = 0;
    p.reduction = EFFDIM_REDUCTION_MEAN;
    p.neg = EFFDIM_NEG_ZERO;
    p.probes = 30;
    p.slq_steps = effdim_slq_default_params().steps;
    p.slq_mem_budget = (size_t)256 << 20;
    p.slq_target_rel = 0.01;
    p.slq_target_abs = 0.5;
    p.slq_min_probes = 8;
    p.slq_budget_factor = 2.0;
    p.slq_settle = 0.25;
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
    RETURN_ERROR_IF(p->nz && !p->z, err, EFFDIM_EINVAL, "spectrum job: nz = %zu but z is NULL",
                    p->nz);
    RETURN_ERROR_IF(!(p->slq_target_rel >= 0) || !(p->slq_target_abs >= 0) ||
                        !(p->slq_budget_seconds >= 0) || !(p->slq_budget_factor >= 0) ||
                        !(p->slq_settle >= 0),
                    err, EFFDIM_EINVAL,
                    "spectrum job: slq_target_rel = %g, slq_target_abs = %g, slq_budget_seconds "
                    "= %g, slq_budget_factor = %g, slq_settle = %g, expected values >= 0",
                    p->slq_target_rel, p->slq_target_abs, p->slq_budget_seconds,
                    p->slq_budget_factor, p->slq_settle);
    RETURN_ERROR_IF(p->set_reduction && p->reduction != EFFDIM_REDUCTION_MEAN &&
                        p->reduction != EFFDIM_REDUCTION_SUM,
                    err, EFFDIM_EINVAL, "spectrum job: reduction %d, expected mean or sum",
                    (int)p->reduction);
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
    int stopped;                  /* the progress callback asked to stop */
} job;

/* one more line in s->notes */
static effdim_status add_note(effdim_spectrum *s, effdim_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static effdim_status add_note(effdim_spectrum *s, effdim_error *err, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t old = s->notes ? strlen(s->notes) : 0, add = strlen(line);
    char *n = realloc(s->notes, old + add + 2);
    if (!n) return effdim_error_set(err, EFFDIM_ENOMEM, "out of memory for a note");
    if (old) n[old++] = '\n';
    memcpy(n + old, line, add + 1);
    s->notes = n;
    return EFFDIM_OK;
}

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
    if (effdim_comm_size(p->comm) > 1) { /* this rank's share; the ranks' products summed */
        effdim_status st = effdim_hvp_operator_comm(j->m, theta, ds, &hp, NULL, p->comm, &j->op,
                                                    &j->info, err);
        j->n_rows = j->info.n_rows;
        return st;
    }
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
    int vectors = p->save_vectors || p->probes > 0 || j->info.fd_step > 0; /* FD: its check */
    effdim_lanczos_params lp = lanczos_params(p, k, n, vectors);
    j->lw = effdim_lanczos_alloc(n, &lp, err);
    if (!j->lw) return err->code ? err->code : EFFDIM_ENOMEM;
    double t0 = effdim_now();
    effdim_status st = effdim_lanczos_init(j->lw, j->op, NULL, err);
    while (!st || st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(j->lw, err);
        effdim_lanczos_progress pr;
        effdim_lanczos_get_progress(j->lw, &pr);
        if (isfinite(pr.theta_max) &&
            effdim_progress_report(&p->progress, "lanczos", t0, pr.matvecs, 0, -1.0,
                                   "matvecs, %zu restarts, %zu/%zu converged, extreme Ritz "
                                   "values %.6g .. %.6g",
                                   pr.restarts, pr.nconv, pr.k, pr.theta_min, pr.theta_max) &&
            st == EFFDIM_ECONTINUE)
            return effdim_error_set(err, EFFDIM_EMAXITER,
                                    "interrupted during the Lanczos run after %zu matvecs (%zu/%zu "
                                    "pairs converged); nothing is complete yet",
                                    pr.matvecs, pr.nconv, pr.k);
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

/* What gives the SLQ more probes, by what stopped it (slq_stop). */
static const char *few_remedy(const char *stop)
{
    if (!strcmp(stop, "budget")) return "a larger --slq-budget gives it more probes";
    if (!strcmp(stop, "probes")) return "more --probes give it more";
    if (!strcmp(stop, "interrupted")) return "a run to the end gives it more probes";
    return "a smaller --slq-target or a larger --slq-budget gives it more probes";
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
    const int few = si->probes < EFFDIM_SLQ_MIN_PROBES;
    for (size_t i = 0; i < s->m; ++i)
        s->slq_flags[i] = effdim_slq_neff_flag(lmin, si->gap0, s->z[i], j->p->neg,
                                               s->n_eff_slq_se[i], s->n_eff_slq_bias[i]) |
                          (few ? EFFDIM_SLQ_FLAG_FEW_PROBES : 0u);
    char neg[256], bias[256], w[1280];
    size_t nn = list_flagged(s, EFFDIM_SLQ_FLAG_NEGATIVE, neg, sizeof neg);
    size_t nb = list_flagged(s, EFFDIM_SLQ_FLAG_BIAS, bias, sizeof bias);
    if (!nn && !nb && !few) return EFFDIM_OK;
    size_t len = (size_t)snprintf(w, sizeof w, "the SLQ N_eff is unreliable beyond its SE:");
    if (few && len < sizeof w)
        len += (size_t)snprintf(w + len, sizeof w - len,
                                " at every z the SE comes from %zu probes (fewer than %d), so it "
                                "is itself a rough estimate (a 2-SE band covers the truth with "
                                "probability %s, not 0.95); %s;",
                                si->probes, EFFDIM_SLQ_MIN_PROBES,
                                si->probes <= 2 ? "0.70" : si->probes == 3 ? "0.82" : "0.86",
                                few_remedy(s->slq_stop));
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
    if ((nn || nb) && len < sizeof w)
        snprintf(w + len, sizeof w - len,
                 " use more --slq-steps (now %zu), a larger z, or compare with the Ritz sum "
                 "over a larger -k",
                 si->steps);
    s->slq_warning = effdim_strdup(w, err);
    return s->slq_warning ? EFFDIM_OK : EFFDIM_ENOMEM;
}

/* the products of the Hutch++ trace: 3 floor(probes / 3), at least 6 */
static size_t trace_products(const effdim_spectrum_params *p)
{
    return 3 * (p->probes / 3 < 2 ? 2 : p->probes / 3);
}

/* The SLQ's product budget: the caller's, or slq_budget_factor x the Lanczos
 * products less the trace's, but at least half of factor x the Lanczos
 * products (a large --probes makes the trace large) (0: none). */
static size_t slq_budget(const job *j)
{
    const effdim_spectrum_params *p = j->p;
    if (p->slq_budget_matvecs) return p->slq_budget_matvecs;
    if (p->slq_budget_seconds > 0 || !(p->slq_budget_factor > 0)) return 0;
    double f = p->slq_budget_factor * (double)j->sol.stats.matvecs;
    double b = fmax(f - (double)trace_products(p), 0.5 * f);
    return b >= 1.0 ? (size_t)b : 1;
}

/* the probes run together: as many bases as slq_mem_budget holds, 1..8 */
static size_t slq_block(const effdim_spectrum_params *p, size_t probes, size_t n)
{
    size_t per = (p->slq_steps + 1) * n * sizeof(double);
    size_t block = per ? p->slq_mem_budget / per : 1;
    block = block < 1 ? 1 : block > 8 ? 8 : block;
    return block > probes ? probes : block;
}

/* The estimate after the probes so far: N_eff and SE at every z, and the
 * worst z (the largest SE / target); returns whether every SE meets its
 * target (never with fewer than min_probes, or when the target is off). */
typedef struct slq_state {
    double *ne, *se;   /* (m) */
    size_t worst;      /* the z furthest from its target */
    double ratio;      /* its SE / target (NaN: no SE yet) */
} slq_state;

static double se_target(const effdim_spectrum_params *p, double neff)
{
    return fmax(p->slq_target_rel * fabs(neff), p->slq_target_abs);
}

static int slq_target_met(const job *j, const effdim_slq *cur, slq_state *q)
{
    const effdim_spectrum_params *p = j->p;
    const effdim_spectrum *s = j->s;
    effdim_error ignore;
    effdim_slq_info ci;
    effdim_slq_get_info(cur, &ci);
    q->worst = 0;
    q->ratio = NAN;
    if (effdim_slq_neff(cur, s->z, s->m, p->neg, q->ne, q->se, &ignore)) return 0;
    int met = 1;
    for (size_t i = 0; i < s->m; ++i) {
        double t = se_target(p, q->ne[i]), r = t > 0 ? q->se[i] / t : (double)INFINITY;
        if (!(r <= 1.0)) met = 0;
        if (i == 0 || !(r <= q->ratio)) {
            q->ratio = r;
            q->worst = i;
        }
    }
    int on = p->slq_target_rel > 0 || p->slq_target_abs > 0;
    return on && met && ci.probes >= p->slq_min_probes && ci.probes >= 2;
}

/* The SLQ run, a block of probes at a time: after each block the estimate
 * at every z, a progress event (probes done, N_eff and SE at the z furthest
 * from its target, the time left to the target), then the stop tests: the
 * SE target, the budget, the caller. */
static effdim_status slq_run(job *j, const effdim_slq_params *sp, const double *vals,
                             const double *V, size_t kd, effdim_slq **out, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    size_t m = s->m, steps = sp->steps;
    slq_state q = {effdim_alloc(m, sizeof(double), "SLQ estimates", err),
                   effdim_alloc(m, sizeof(double), "SLQ estimates", err), 0, NAN};
    if (!q.ne || !q.se) {
        free(q.ne);
        free(q.se);
        return EFFDIM_ENOMEM;
    }
    /* the cost announced: at the Lanczos run's measured time per product */
    const effdim_lanczos_stats *ls = &j->sol.stats;
    double per = ls->matvecs ? ls->seconds_apply / (double)ls->matvecs : 0.0;
    size_t most = sp->probes * steps, budget = slq_budget(j);
    if (budget && budget < most) most = budget;
    s->slq_estimate_seconds = per * (double)most;
    s->slq_max_probes = sp->probes;
    s->slq_budget = budget;
    s->slq_target_rel = p->slq_target_rel;
    s->slq_target_abs = p->slq_target_abs;
    double t0 = effdim_now();
    if (effdim_progress_report(&p->progress, "slq", t0, 0, sp->probes, s->slq_estimate_seconds,
                               "probes x %s%zu steps: at most %zu products%s, ~%.0f s at %.3g s "
                               "per product; stops at SE <= max(%g x N_eff, %g) at every z",
                               sp->settle_nz ? "at most " : "", steps, most,
                               budget == most ? " (the budget)" : "", s->slq_estimate_seconds,
                               per, p->slq_target_rel, p->slq_target_abs))
        j->stopped = 1;
    effdim_slq_workspace *ws = NULL;
    effdim_status st = effdim_slq_init(j->op, sp, vals, V, kd, &ws, err);
    snprintf(s->slq_stop, sizeof s->slq_stop, "probes");
    while (!st && !j->stopped) {
        st = effdim_slq_iterate(ws, err);
        if (st != EFFDIM_OK && st != EFFDIM_ECONTINUE) break;
        const effdim_slq *cur = effdim_slq_current(ws);
        effdim_slq_info ci;
        effdim_slq_get_info(cur, &ci);
        int met = slq_target_met(j, cur, &q);
        /* time left: the probes the worst z needs at SE ~ 1/sqrt(probes) */
        double per_probe = ci.seconds / (double)ci.probes, need = (double)sp->probes;
        if (isfinite(q.ratio)) need = fmin(need, fmax((double)ci.probes, ceil(
                                                    (double)ci.probes * q.ratio * q.ratio)));
        /* ... and no more than the budget allows (the loop below stops there) */
        const double mv_per_probe = (double)ci.matvecs / (double)ci.probes;
        if (budget && mv_per_probe > 0)
            need = fmin(need, fmax(2.0, floor((double)budget / mv_per_probe)));
        if (p->slq_budget_seconds > 0 && per_probe > 0)
            need = fmin(need, fmax(2.0, floor(p->slq_budget_seconds / per_probe)));
        double eta = met || st == EFFDIM_OK ? 0.0 : (need - (double)ci.probes) * per_probe;
        if (eta < 0) eta = 0;
        if (effdim_progress_report(&p->progress, "slq", t0, ci.probes, sp->probes, eta,
                                   "probes x %zu steps, N_eff(z=%g) %.6g +- %.2g (target %.2g)",
                                   ci.steps, s->z[q.worst], q.ne[q.worst], q.se[q.worst],
                                   se_target(p, q.ne[q.worst])))
            j->stopped = 1;
        if (st == EFFDIM_OK) break; /* every probe ran */
        st = EFFDIM_OK;
        if (met) {
            snprintf(s->slq_stop, sizeof s->slq_stop, "target");
            break;
        }
        size_t next = sp->probes - ci.probes < sp->block ? sp->probes - ci.probes : sp->block;
        /* the next block's cost at the mean so far (adaptive steps vary) */
        double next_s = per_probe * (double)next;
        double next_mv = (double)ci.matvecs / (double)ci.probes * (double)next;
        if (ci.probes >= 2 &&
            ((budget && (double)ci.matvecs + next_mv > (double)budget) ||
             (p->slq_budget_seconds > 0 && ci.seconds + next_s > p->slq_budget_seconds))) {
            snprintf(s->slq_stop, sizeof s->slq_stop, "budget");
            break;
        }
    }
    if (!st && j->stopped) snprintf(s->slq_stop, sizeof s->slq_stop, "interrupted");
    const effdim_slq *cur = st ? NULL : effdim_slq_current(ws);
    effdim_slq_info ci = {0};
    if (cur) effdim_slq_get_info(cur, &ci);
    if (!st && ci.probes >= 2) st = effdim_slq_finish(ws, out, err);
    free(q.ne);
    free(q.se);
    effdim_slq_workspace_free(ws);
    s->slq_seconds = effdim_now() - t0;
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

/* The Hutch++ trace with 3 floor(probes / 3) products, at least 6 (two
 * Hutchinson samples: the least that gives a standard error). */
static effdim_status trace(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    size_t budget = trace_products(p);
    effdim_status st = EFFDIM_OK;
    if (budget != p->probes)
        st = add_note(s, err,
                      "Hutch++ trace: %zu probes give %zu products in thirds (sketch, its "
                      "product, Hutchinson); it uses %zu%s",
                      p->probes, 3 * (p->probes / 3), budget,
                      p->probes < 6 ? ", the least that gives a standard error" : "");
    if (st) return st;
    size_t before = j->op->vectors;
    double t0 = effdim_now();
    if (effdim_progress_report(&p->progress, "trace", t0, 0, budget, -1.0, "Hutch++ matvecs"))
        j->stopped = 1;
    if (j->stopped) return EFFDIM_OK;
    st = effdim_hutchpp(j->op, budget, p->seed, &s->trace, &s->trace_se, err);
    if (st) return st;
    s->has_trace = 1;
    snprintf(s->trace_method, sizeof s->trace_method, "hutch++");
    s->trace_matvecs = s->trace_probes = j->op->vectors - before;
    if (effdim_progress_report(&p->progress, "trace", t0, budget, budget, -1.0, "Hutch++ matvecs"))
        j->stopped = 1;
    return EFFDIM_OK;
}

/* SLQ over the whole spectrum (deflating the converged pairs), the density,
 * and the Hutch++ trace. */
static effdim_status whole_spectrum(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    if (p->probes == 0 || j->stopped) return EFFDIM_OK;
    size_t n = j->op->n, kd = 0;
    double *vals = NULL, *V = converged_vectors(j, &kd, &vals, err);
    if (!V && err->code == EFFDIM_ENOMEM) return EFFDIM_ENOMEM;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = p->probes < 2 ? 2 : p->probes;
    sp.seed = p->seed;
    sp.steps = p->slq_steps;
    sp.block = slq_block(p, sp.probes, n);
    size_t budget = slq_budget(j), fit = budget / sp.steps; /* the probes the budget holds */
    if (budget && sp.block > 2 && sp.block > fit) sp.block = fit < 2 ? 2 : fit;
    if (p->slq_settle > 0) { /* adaptive steps: a fraction of the SE target */
        sp.settle_z = s->z;
        sp.settle_nz = s->m;
        sp.settle_neg = p->neg;
        sp.settle_rel = p->slq_settle * p->slq_target_rel;
        sp.settle_abs = p->slq_settle * p->slq_target_abs;
        if (!(sp.settle_rel > 0 || sp.settle_abs > 0)) sp.settle_nz = 0; /* no target */
    }
    effdim_slq *q = NULL;
    effdim_status st = slq_run(j, &sp, vals, V, kd, &q, err);
    free(V);
    free(vals);
    if (st) return st;
    if (!q) return EFFDIM_OK; /* stopped before two probes finished: no SLQ */
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
        s->slq_steps_total = j->slq_info.steps_total;
        s->slq_settled = j->slq_info.settled;
        st = slq_check(j, err);
    }
    if (!st && p->density) st = slq_density(j, q, err);
    effdim_slq_free(q);
    if (st) return st;
    return trace(j, err);
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
    if (st == EFFDIM_EMAXITER) { /* stopped by the caller: no dense part */
        free(A);
        free(s->dense_eigenvalues);
        free(s->n_eff_dense);
        s->dense_eigenvalues = s->n_eff_dense = NULL;
        j->stopped = 1;
        return add_note(s, err, "dense: %s", err->msg);
    }
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
        if (effdim_progress_report(&p->progress, "layer", t0, l, L, -1.0,
                                   "layers; layer %zu (%zu parameters), top %zu", l, ly->size, k)) {
            j->stopped = 1;
            return EFFDIM_OK; /* the layers done are complete */
        }
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
    if (p->command_line && !(s->command_line = effdim_strdup(p->command_line, err)))
        return EFFDIM_ENOMEM;
    return EFFDIM_OK;
}

/* x to 2 significant digits */
static double round2(double x)
{
    double e = pow(10.0, floor(log10(x)) - 1.0);
    return round(x / e) * e;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the z of N_eff: the caller's, or the log grid relative to the largest
 * |Ritz value| with z = 1 in it */
static effdim_status choose_z(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    if (p->nz) {
        s->m = p->nz;
        s->z = dup_doubles(p->z, p->nz, "z", err);
        return s->z ? EFFDIM_OK : EFFDIM_ENOMEM;
    }
    double top = 0.0;
    for (size_t i = 0; i < j->sol.k; ++i) top = fmax(top, fabs(j->sol.eigenvalues[i]));
    s->z = effdim_alloc(6, sizeof(double), "z", err);
    if (!s->z) return EFFDIM_ENOMEM;
    size_t m = 0;
    if (!(top > 0) || !isfinite(top)) {
        s->z[m++] = 1.0;
        s->z[m++] = 10.0;
        s->z[m++] = 100.0;
    } else {
        int one = 0;
        for (int d = -4; d <= 0; ++d) {
            double z = round2(top * pow(10.0, d));
            if (!(z > 0)) continue;
            s->z[m++] = z;
            one |= z == 1.0;
        }
        if (!one) s->z[m++] = 1.0;
        qsort(s->z, m, sizeof *s->z, cmp_double);
    }
    s->m = m;
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
    double top = 0.0;
    for (size_t i = 0; i < k; ++i) top = fmax(top, fabs(sol->eigenvalues[i]));
    s->nconv_true = 0;
    for (size_t i = 0; i < k; ++i)
        s->nconv_true += sol->residuals[i] <=
                         fmax(j->p->tol * fabs(sol->eigenvalues[i]), 64.0 * DBL_EPSILON * top);
    if (j->p->save_vectors &&
        !(s->eigenvectors = dup_doubles(sol->vectors, k * n, "eigenvectors", err)))
        return EFFDIM_ENOMEM;
    return effdim_neff(s->eigenvalues, k, s->z, s->m, j->p->neg, s->n_eff, err);
}

/* -k above P, and a tolerance below what finite-difference products resolve */
static effdim_status lanczos_notes(job *j, effdim_error *err)
{
    const effdim_spectrum_params *p = j->p;
    effdim_spectrum *s = j->s;
    effdim_status st = EFFDIM_OK;
    if (p->k > j->op->n)
        st = add_note(s, err, "k = %zu is above the %zu parameters: clamped to k = %zu", p->k,
                      j->op->n, j->op->n);
    if (st || j->info.fd_step <= 0 || !j->sol.vectors || !(fabs(s->eigenvalues[0]) > 0)) return st;
    /* the FD error predicted for the top Ritz vector, relative to the top eigenvalue */
    effdim_hvp_fd_error fe;
    effdim_error ignore;
    size_t i = 0;
    for (size_t a = 1; a < j->sol.k; ++a)
        if (fabs(j->sol.eigenvalues[a]) > fabs(j->sol.eigenvalues[i])) i = a;
    if (effdim_hvp_fd_error_estimate(j->op, j->sol.vectors + i * j->sol.n, NULL, &fe, &ignore))
        return EFFDIM_OK;
    double rel = fe.predicted / fabs(j->sol.eigenvalues[i]);
    s->fd_rel_error = rel;
    if (p->tol < rel)
        st = add_note(s, err,
                      "tol %g is below the accuracy of the finite-difference products (error "
                      "%.2g relative to the top eigenvalue, predicted for its Ritz vector): "
                      "residuals below that are noise; %llu of %zu pairs meet tol by their true "
                      "residual; use --hvp exact, or --tol %.1g",
                      p->tol, rel, (unsigned long long)s->nconv_true, s->k, 2.0 * rel);
    return st;
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
    effdim_comm *comm = p->comm;
    int distributed = effdim_comm_size(comm) > 1;
    RETURN_ERROR_IF(distributed && p->subset && p->subset < ds->n, err, EFFDIM_EINVAL,
                    "spectrum job: subset = %zu with %d ranks: a random subset runs on one "
                    "process only (each rank already holds a share of the rows)",
                    p->subset, effdim_comm_size(comm));
    RETURN_ERROR_IF(distributed && p->slq_budget_seconds > 0, err, EFFDIM_EINVAL,
                    "spectrum job: slq_budget_seconds = %g with %d ranks: a time budget is not "
                    "the same on every rank (use slq_budget_matvecs)",
                    p->slq_budget_seconds, effdim_comm_size(comm));
    effdim_mlp net = *m; /* a value type: the reduction may differ from the checkpoint's */
    if (p->set_reduction) net.reduction = p->reduction;
    double t0 = effdim_now();
    /* every rank's stop request stops every rank at the same report */
    effdim_spectrum_params pc = *p;
    effdim_comm_progress_state ps;
    pc.progress = effdim_comm_progress(&ps, comm, p->progress);
    p = &pc;
    job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.m = &net;
    j.s = effdim_spectrum_new(err);
    if (!j.s) return EFFDIM_ENOMEM;
    /* with ranks, each step ends agreed: a rank that failed on its own (a local
     * allocation) takes every rank out before the next collective product */
    if (p->checkpoint) st = effdim_sha256_file(p->checkpoint, j.s->checkpoint_sha256, err);
    st = effdim_comm_agree(comm, st, err);
    if (!st) st = build_operator(&j, ds, theta, err);
    if (!st) st = fill_header(&j, ds, err);
    st = effdim_comm_agree(comm, st, err);
    if (!st) st = lanczos_top(&j, err);
    if (!st) st = choose_z(&j, err);
    if (!st) st = fill_lanczos(&j, err);
    if (!st) st = lanczos_notes(&j, err);
    st = effdim_comm_agree(comm, st, err);
    if (!st && p->partial_path) { /* the pairs are safe before the long part begins */
        j.s->partial = 1;
        j.s->matvecs = j.op->vectors;
        j.s->seconds = effdim_now() - t0;
        if (effdim_comm_rank(comm) == 0) st = effdim_spectrum_save(j.s, p->partial_path, err);
        st = effdim_comm_agree(comm, st, err);
        j.s->partial = 0;
    }
    if (!st) st = whole_spectrum(&j, err);
    st = effdim_comm_agree(comm, st, err);
    if (!st && p->dense && !j.stopped) st = dense_spectrum(&j, err);
    st = effdim_comm_agree(comm, st, err);
    if (!st && p->per_layer && !j.stopped) st = per_layer(&j, err);
    st = effdim_comm_agree(comm, st, err);
    if (!st) {
        j.s->matvecs = j.op->vectors; /* everything: Lanczos, SLQ, trace, dense, layers */
        j.s->product_seconds = j.op->seconds;
        j.s->seconds = effdim_now() - t0;
        j.s->partial = j.stopped;
    }
    effdim_lanczos_free(j.lw);
    effdim_operator_free(j.op);
    free(j.rows);
    if (st) {
        effdim_spectrum_free(j.s);
        return st;
    }
    *out = j.s;
    if (j.stopped)
        return effdim_error_set(err, EFFDIM_EMAXITER,
                                "interrupted: the result holds what was complete (marked partial)");
    return EFFDIM_OK;
}
