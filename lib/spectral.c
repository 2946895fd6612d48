/* lib/spectral.c: stochastic Lanczos quadrature (tr f(A), N_eff over the whole
 * spectrum, spectral density) and the Hutchinson / Hutch++ trace estimators.
 *
 * SLQ: for each Rademacher probe z, deflate the given eigenvectors
 * (z <- z - U U^T z), run `steps` Lanczos steps from z/||z|| with every vector
 * orthogonalised against the probe's whole basis AND the deflation vectors
 * (lanczos_internal.h, the same code as lanczos.c), and keep the Gauss
 * quadrature of T: nodes theta_j, weights ||z||^2 tau_j^2 (Golub and Meurant
 * 1994; Ubaru, Chen, Saad 2017, section 3). A breakdown (beta ~ 0) ends the
 * probe early: the quadrature is then exact for that probe. Probes are run
 * `block` at a time through one block apply, each with its own basis, so the
 * result does not depend on the block size. Estimates of tr f(A) are the
 * exact deflated sum plus the mean over probes; the standard error is the
 * sample standard deviation over probes divided by sqrt(probes).
 *
 * Quadrature bias: the SE measures probe-to-probe noise only. The Gauss
 * quadrature of the leading j x j block of T is exactly the j-step estimate
 * (Golub and Meurant 1994, section 3), so each probe's quadrature is also
 * kept at h = ceil(m/2) steps; the difference of the probe means (full minus
 * half) is reported as a diagnostic of how far the quadrature is from
 * converged (large for f with a kink or jump inside the spectrum, e.g.
 * N_eff at small z under the zero policy of an indefinite matrix). Probes
 * whose Krylov space became invariant (breakdown, or all n - kd steps) are
 * exact and count as unchanged.
 *
 * Density: Ghorbani, Krishnan, Xiao (ICML 2019), section 3: Gaussian kernel
 * of width sigma at every node with its weight, normalised by n.
 *
 * Hutchinson (Comm. Stat. Simul. Comput. 18(3) 1059, 1989) and Hutch++
 * (Meyer, Musco, Musco, Woodruff, SOSA 2021, Algorithm 1).
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/spectral.h"
#include "internal.h"
#include "lanczos_internal.h"

struct effdim_slq {
    effdim_slq_info info;
    double *nodes;   /* (probes, steps) row-major, count[i] used in row i, ascending */
    double *weights; /* (probes, steps) */
    size_t *count;   /* (probes) */
    double *hnodes;  /* (probes, hsteps) the quadrature at half the steps */
    double *hweights;/* (probes, hsteps) */
    size_t *hcount;  /* (probes) nodes in row i; 0: the probe is exact (use the full row) */
    size_t hsteps;   /* ceil(steps / 2) */
    double *defl;    /* (kd) deflated eigenvalues */
};

effdim_slq_params effdim_slq_default_params(void)
{
    effdim_slq_params p;
    memset(&p, 0, sizeof p);
    p.probes = 32;
    p.steps = 150;
    p.block = 1;
    p.seed = 0;
    p.settle_neg = EFFDIM_NEG_ZERO;
    p.settle_rel = 0.0025;
    p.settle_abs = 0.125;
    p.min_steps = 20;
    p.settle_every = 5;
    return p;
}

void effdim_slq_free(effdim_slq *s)
{
    if (!s) return;
    free(s->nodes);
    free(s->weights);
    free(s->count);
    free(s->hnodes);
    free(s->hweights);
    free(s->hcount);
    free(s->defl);
    free(s);
}

void effdim_slq_get_info(const effdim_slq *s, effdim_slq_info *info)
{
    if (s && info) *info = s->info;
}

/* ---- the run ------------------------------------------------------------------ */

/* scratch for one block of probes */
typedef struct slq_run {
    size_t n, steps, block, kd, ld; /* ld = (steps + 1) * n: stride between probe bases */
    const double *U;                /* (kd, n) deflation vectors, borrowed */
    double *V;                      /* (block, steps + 1, n) bases */
    double *alpha, *beta;           /* (block, steps) recurrence coefficients */
    double *anorm, *znorm2;         /* (block) */
    double anorm0;                  /* ||A|| estimate shared by all probes: the largest
                                       |deflated eigenvalue| and column norm seen so far */
    size_t *len;                    /* (block) steps done */
    unsigned char *active;          /* (block) */
    double *h, *scratch;            /* (steps + 1 + kd) */
    double *Z, *work;               /* (steps, steps), (2 steps) */
    unsigned char *exact;           /* (block) the probe's Krylov space became invariant */
    /* adaptive steps (settle_nz > 0) */
    size_t settle_nz, min_steps, every;
    double *settle_z, *dsum;        /* (settle_nz) z, and the deflated sum of f_z */
    effdim_neg_policy neg;
    double settle_rel, settle_abs;
    double *qn, *qw;                /* (2 steps) nodes and weights of a check */
    size_t settled;                 /* probes stopped by the test */
} slq_run;

static void slq_run_free(slq_run *r)
{
    free(r->V);
    free(r->alpha);
    free(r->beta);
    free(r->anorm);
    free(r->znorm2);
    free(r->len);
    free(r->active);
    free(r->h);
    free(r->scratch);
    free(r->Z);
    free(r->work);
    free(r->exact);
    free(r->settle_z);
    free(r->dsum);
    free(r->qn);
    free(r->qw);
}

static effdim_status slq_run_alloc(slq_run *r, effdim_error *err)
{
    size_t bs = r->block * r->steps, hs = r->steps + 1 + r->kd;
    size_t vsize;
    if (effdim_mul_size(r->block, r->ld, &vsize))
        return effdim_error_set(err, EFFDIM_ENOMEM, "SLQ: block x basis size overflows");
    if (!(r->V = effdim_alloc(vsize, sizeof(double), "SLQ probe bases (block, steps+1, n)", err)) ||
        !(r->alpha = effdim_alloc(bs, sizeof(double), "SLQ coefficients", err)) ||
        !(r->beta = effdim_alloc(bs, sizeof(double), "SLQ coefficients", err)) ||
        !(r->anorm = effdim_alloc(r->block, sizeof(double), "SLQ norms", err)) ||
        !(r->znorm2 = effdim_alloc(r->block, sizeof(double), "SLQ norms", err)) ||
        !(r->len = effdim_alloc(r->block, sizeof(size_t), "SLQ lengths", err)) ||
        !(r->active = effdim_alloc(r->block, 1, "SLQ flags", err)) ||
        !(r->h = effdim_alloc(hs, sizeof(double), "SLQ scratch", err)) ||
        !(r->scratch = effdim_alloc(hs, sizeof(double), "SLQ scratch", err)) ||
        !(r->Z = effdim_alloc(r->steps * r->steps, sizeof(double), "SLQ eigenvectors", err)) ||
        !(r->work = effdim_alloc(3 * r->steps, sizeof(double), "SLQ scratch", err)) ||
        !(r->exact = effdim_alloc(r->block, 1, "SLQ flags", err)) ||
        !(r->qn = effdim_alloc(2 * r->steps, sizeof(double), "SLQ check nodes", err)) ||
        !(r->qw = effdim_alloc(2 * r->steps, sizeof(double), "SLQ check weights", err)))
        return EFFDIM_ENOMEM;
    return EFFDIM_OK;
}

/* Start vectors for probes [0, b) of the block: Rademacher, deflated, unit. */
static void start_probes(slq_run *r, gsl_rng *rng, size_t b)
{
    size_t n = r->n;
    for (size_t q = 0; q < b; ++q) {
        double *v = r->V + q * r->ld;
        effdim_fill_rademacher(rng, v, n);
        double nz = r->kd ? effdim_cgs2(NULL, 0, r->U, r->kd, n, v, NULL, r->scratch)
                          : sqrt((double)n);
        r->znorm2[q] = nz * nz;
        r->len[q] = 0;
        r->anorm[q] = r->anorm0;
        r->active[q] = nz > 0.0;
        r->exact[q] = !(nz > 0.0);
        if (nz > 0.0) cblas_dscal((int)n, 1.0 / nz, v, 1);
    }
}

/* Apply the operator to step j of every active probe, one call per run of
 * consecutive active probes. */
static effdim_status apply_active(effdim_operator *op, slq_run *r, size_t b, size_t j,
                                  effdim_error *err)
{
    size_t q = 0;
    while (q < b) {
        if (!r->active[q]) {
            ++q;
            continue;
        }
        size_t e = q;
        while (e < b && r->active[e]) ++e;
        double *X = r->V + q * r->ld + j * r->n;
        effdim_status st = effdim_operator_apply(op, e - q, X, r->ld, X + r->n, r->ld, err);
        if (st != EFFDIM_OK) return st;
        q = e;
    }
    return EFFDIM_OK;
}

static effdim_status quadrature(slq_run *r, size_t q, size_t m, double *nodes, double *weights,
                                effdim_error *err);

/* The settle test of probe q after m steps: its N_eff quadrature at every
 * settle z against the one at ceil(m/2) steps. */
static effdim_status probe_settled(slq_run *r, size_t q, size_t m, int *settled,
                                   effdim_error *err)
{
    size_t h = (m + 1) / 2, S = r->steps;
    *settled = 0;
    effdim_status st = quadrature(r, q, m, r->qn, r->qw, err);
    if (!st) st = quadrature(r, q, h, r->qn + S, r->qw + S, err);
    if (st) return st;
    for (size_t k = 0; k < r->settle_nz; ++k) {
        double z = r->settle_z[k], full = r->dsum[k], half = r->dsum[k];
        for (size_t i = 0; i < m; ++i) full += r->qw[i] * effdim_neff_term(r->qn[i], z, r->neg);
        for (size_t i = 0; i < h; ++i)
            half += r->qw[S + i] * effdim_neff_term(r->qn[S + i], z, r->neg);
        if (!(fabs(full - half) <= fmax(r->settle_rel * fabs(full), r->settle_abs))) return EFFDIM_OK;
    }
    *settled = 1;
    return EFFDIM_OK;
}

/* Lanczos on the b probes of the block; alpha/beta/len filled. */
static effdim_status run_block(effdim_operator *op, slq_run *r, size_t b, size_t *breakdowns,
                               effdim_error *err)
{
    for (size_t j = 0; j < r->steps; ++j) {
        effdim_status st = apply_active(op, r, b, j, err);
        if (st != EFFDIM_OK) return st;
        int any = 0;
        for (size_t q = 0; q < b; ++q) {
            if (!r->active[q]) continue;
            double alpha, beta;
            int brk;
            st = effdim_lanczos_orth_step(r->V + q * r->ld, j, r->n, r->U, r->kd, r->anorm[q],
                                          &alpha, &beta, &brk, r->h, r->scratch, op->name, err);
            if (st != EFFDIM_OK) return st;
            double bprev = j ? r->beta[q * r->steps + j - 1] : 0.0;
            double col = sqrt(alpha * alpha + beta * beta + bprev * bprev);
            if (col > r->anorm[q]) r->anorm[q] = col;
            if (col > r->anorm0) r->anorm0 = col;
            r->alpha[q * r->steps + j] = alpha;
            r->beta[q * r->steps + j] = beta;
            r->len[q] = j + 1;
            if (brk) {
                r->active[q] = 0;
                r->exact[q] = 1;
                *breakdowns += j + 1 < r->steps;
            } else if (r->settle_nz && j + 1 >= r->min_steps && j + 1 < r->steps &&
                       (j + 1) % r->every == 0) {
                int done;
                if ((st = probe_settled(r, q, j + 1, &done, err)) != EFFDIM_OK) return st;
                if (done) {
                    r->active[q] = 0;
                    ++r->settled;
                }
            }
            any |= r->active[q];
        }
        if (!any) break;
    }
    return EFFDIM_OK;
}

/* Gauss quadrature of the leading m x m block of probe q's T into
 * nodes/weights (m of each). */
static effdim_status quadrature(slq_run *r, size_t q, size_t m, double *nodes, double *weights,
                                effdim_error *err)
{
    if (m == 0) return EFFDIM_OK;
    effdim_status st = effdim_tridiag_eig(m, r->alpha + q * r->steps, r->beta + q * r->steps, nodes,
                                          r->Z, r->work, err);
    if (st != EFFDIM_OK) return st;
    for (size_t i = 0; i < m; ++i) weights[i] = r->znorm2[q] * r->Z[i] * r->Z[i]; /* row 0 */
    return EFFDIM_OK;
}

static effdim_status check_run_args(effdim_operator *op, const effdim_slq_params *p,
                                    const double *dv, const double *dx, size_t kd,
                                    effdim_slq **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "SLQ: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF(!op || !p, err, EFFDIM_EINVAL, "SLQ: NULL %s", !op ? "operator" : "params");
    RETURN_ERROR_IF(!op->apply, err, EFFDIM_EINVAL, "SLQ: operator '%s' has a NULL apply callback",
                    op->name);
    RETURN_ERROR_IF(p->probes == 0 || p->steps == 0 || p->block == 0, err, EFFDIM_EINVAL,
                    "SLQ: probes = %zu, steps = %zu, block = %zu, expected all >= 1", p->probes,
                    p->steps, p->block);
    RETURN_ERROR_IF(kd >= op->n, err, EFFDIM_EINVAL,
                    "SLQ: %zu deflated eigenpairs for an operator of size %zu, expected fewer than n",
                    kd, op->n);
    RETURN_ERROR_IF(kd && (!dv || !dx), err, EFFDIM_EINVAL,
                    "SLQ: %zu deflated eigenpairs but NULL %s", kd, !dv ? "values" : "vectors");
    RETURN_ERROR_IF(op->n > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "SLQ: n = %zu exceeds the BLAS index range", op->n);
    RETURN_ERROR_IF(p->settle_nz && (!p->settle_z || p->settle_every == 0 ||
                                     !(p->settle_rel >= 0) || !(p->settle_abs >= 0)),
                    err, EFFDIM_EINVAL,
                    "SLQ: settle_nz = %zu with %s, expected settle_z set, settle_every >= 1 "
                    "and tolerances >= 0",
                    p->settle_nz, !p->settle_z ? "settle_z NULL" : "a bad setting");
    for (size_t j = 0; j < p->settle_nz; ++j)
        RETURN_ERROR_IF(!(p->settle_z[j] > 0) || !isfinite(p->settle_z[j]), err, EFFDIM_EDOM,
                        "SLQ: settle_z[%zu] = %g, expected a finite z > 0", j, p->settle_z[j]);
    size_t bad;
    RETURN_ERROR_IF(kd && !effdim_all_finite(dv, kd, &bad), err, EFFDIM_EDOM,
                    "SLQ: deflated eigenvalue %zu = %g is not finite", bad, dv[bad]);
    RETURN_ERROR_IF(kd && !effdim_all_finite(dx, kd * op->n, &bad), err, EFFDIM_EDOM,
                    "SLQ: deflated eigenvector %zu has a non-finite entry %zu", bad / op->n,
                    bad % op->n);
    return EFFDIM_OK;
}

static effdim_slq *slq_result_alloc(size_t probes, size_t steps, size_t kd, effdim_error *err)
{
    effdim_slq *s = effdim_calloc(1, sizeof *s, "SLQ result", err);
    if (!s) return NULL;
    size_t ps;
    if (effdim_mul_size(probes, steps, &ps)) {
        effdim_error_set(err, EFFDIM_ENOMEM, "SLQ: probes x steps overflows");
        goto fail;
    }
    if (!(s->nodes = effdim_calloc(ps, sizeof(double), "SLQ nodes", err))) goto fail;
    if (!(s->weights = effdim_calloc(ps, sizeof(double), "SLQ weights", err))) goto fail;
    if (!(s->count = effdim_calloc(probes, sizeof(size_t), "SLQ counts", err))) goto fail;
    s->hsteps = (steps + 1) / 2;
    if (!(s->hnodes = effdim_calloc(probes * s->hsteps, sizeof(double), "SLQ nodes", err)))
        goto fail;
    if (!(s->hweights = effdim_calloc(probes * s->hsteps, sizeof(double), "SLQ weights", err)))
        goto fail;
    if (!(s->hcount = effdim_calloc(probes, sizeof(size_t), "SLQ counts", err))) goto fail;
    if (!(s->defl = effdim_alloc(kd, sizeof(double), "SLQ deflated values", err))) goto fail;
    return s;
fail:
    effdim_slq_free(s);
    return NULL;
}

/* The mean over probes of the gap between the two Gauss nodes around 0 (the
 * largest < 0 and the smallest >= 0), over the probes that have both; NaN if
 * none. Where the quadrature cannot resolve features of f narrower than it. */
static double gap_at_zero(const effdim_slq *s)
{
    size_t steps = s->info.steps, used = 0;
    double acc = 0.0;
    for (size_t i = 0; i < s->info.probes; ++i) {
        const double *t = s->nodes + i * steps;
        for (size_t j = 0; j + 1 < s->count[i]; ++j)
            if (t[j] < 0.0 && t[j + 1] >= 0.0) {
                acc += t[j + 1] - t[j];
                ++used;
                break;
            }
    }
    return used ? acc / (double)used : (double)NAN;
}

/* The run, step by step: the workspace holds the operator (borrowed), the
 * probe scratch, the generator and the result being filled; probes are
 * drawn and run a block at a time in the same order as the one-call run, so
 * a result after j blocks is bitwise the first j blocks of a longer run. */
struct effdim_slq_workspace {
    effdim_operator *op;
    effdim_slq_params p;
    slq_run r;
    effdim_slq *s;    /* info.probes = probes finished */
    gsl_rng *rng;
    size_t v0;        /* op->vectors at init */
    double a0, t0;    /* op->seconds and the clock at init */
    effdim_status final; /* ECONTINUE while probes remain, OK when all ran, else the error */
};

/* info of the probes finished so far */
static void update_info(effdim_slq_workspace *ws)
{
    effdim_slq *s = ws->s;
    effdim_slq_info *info = &s->info;
    size_t steps = ws->r.steps, kd = ws->r.kd;
    info->n = ws->r.n;
    info->steps = steps;
    info->half_steps = s->hsteps;
    info->deflated = kd;
    info->matvecs = ws->op->vectors - ws->v0;
    info->seconds = effdim_now() - ws->t0;
    info->seconds_apply = ws->op->seconds - ws->a0;
    info->lambda_min = INFINITY;
    info->lambda_max = -INFINITY;
    for (size_t i = 0; i < info->probes; ++i)
        for (size_t j = 0; j < s->count[i]; ++j) {
            info->lambda_min = fmin(info->lambda_min, s->nodes[i * steps + j]);
            info->lambda_max = fmax(info->lambda_max, s->nodes[i * steps + j]);
        }
    info->gap0 = gap_at_zero(s);
    for (size_t i = 0; i < kd; ++i) {
        info->lambda_min = fmin(info->lambda_min, s->defl[i]);
        info->lambda_max = fmax(info->lambda_max, s->defl[i]);
    }
}

void effdim_slq_workspace_free(effdim_slq_workspace *ws)
{
    if (!ws) return;
    slq_run_free(&ws->r);
    if (ws->rng) gsl_rng_free(ws->rng);
    effdim_slq_free(ws->s);
    free(ws);
}

effdim_status effdim_slq_init(effdim_operator *op, const effdim_slq_params *p,
                              const double *defl_values, const double *defl_vectors, size_t kd,
                              effdim_slq_workspace **out, effdim_error *err)
{
    effdim_slq *dummy = NULL;
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "SLQ: workspace pointer is NULL");
    *out = NULL;
    effdim_status st = check_run_args(op, p, defl_values, defl_vectors, kd, &dummy, err);
    if (st != EFFDIM_OK) return st;
    effdim_slq_workspace *ws = effdim_calloc(1, sizeof *ws, "SLQ workspace", err);
    if (!ws) return EFFDIM_ENOMEM;
    size_t n = op->n, steps = p->steps < n - kd ? p->steps : n - kd;
    ws->op = op;
    ws->p = *p;
    ws->r.n = n;
    ws->r.steps = steps;
    ws->r.block = p->block < p->probes ? p->block : p->probes;
    ws->r.kd = kd;
    ws->r.U = kd ? defl_vectors : NULL;
    ws->r.ld = (steps + 1) * n;
    ws->s = slq_result_alloc(p->probes, steps, kd, err);
    ws->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!ws->s || !ws->rng) {
        st = ws->s ? effdim_error_set(err, EFFDIM_ENOMEM, "SLQ: cannot allocate the RNG")
                   : EFFDIM_ENOMEM;
        effdim_slq_workspace_free(ws);
        return st;
    }
    if ((st = slq_run_alloc(&ws->r, err)) != EFFDIM_OK) {
        effdim_slq_workspace_free(ws);
        return st;
    }
    if (p->settle_nz) { /* adaptive steps: the z copied, the exact deflated part once */
        slq_run *r = &ws->r;
        r->settle_nz = p->settle_nz;
        r->min_steps = p->min_steps;
        r->every = p->settle_every;
        r->neg = p->settle_neg;
        r->settle_rel = p->settle_rel;
        r->settle_abs = p->settle_abs;
        r->settle_z = effdim_alloc(p->settle_nz, sizeof(double), "SLQ settle z", err);
        r->dsum = effdim_calloc(p->settle_nz, sizeof(double), "SLQ settle sums", err);
        if (!r->settle_z || !r->dsum) {
            effdim_slq_workspace_free(ws);
            return EFFDIM_ENOMEM;
        }
        for (size_t k = 0; k < p->settle_nz; ++k) {
            r->settle_z[k] = p->settle_z[k];
            for (size_t i = 0; i < kd; ++i)
                r->dsum[k] += effdim_neff_term(defl_values[i], p->settle_z[k], p->settle_neg);
        }
    }
    gsl_rng_set(ws->rng, (unsigned long)p->seed);
    if (kd) memcpy(ws->s->defl, defl_values, kd * sizeof(double));
    for (size_t i = 0; i < kd; ++i) ws->r.anorm0 = fmax(ws->r.anorm0, fabs(defl_values[i]));
    ws->v0 = op->vectors;
    ws->a0 = op->seconds;
    ws->t0 = effdim_now();
    ws->final = EFFDIM_ECONTINUE;
    update_info(ws);
    *out = ws;
    return EFFDIM_OK;
}

effdim_status effdim_slq_iterate(effdim_slq_workspace *ws, effdim_error *err)
{
    RETURN_ERROR_IF(!ws, err, EFFDIM_EINVAL, "SLQ: NULL workspace");
    if (ws->final != EFFDIM_ECONTINUE) return ws->final;
    slq_run *r = &ws->r;
    effdim_slq *s = ws->s;
    size_t p0 = s->info.probes, steps = r->steps, n = r->n, kd = r->kd;
    size_t b = ws->p.probes - p0 < r->block ? ws->p.probes - p0 : r->block;
    start_probes(r, ws->rng, b);
    effdim_status st = run_block(ws->op, r, b, &s->info.breakdowns, err);
    for (size_t q = 0; q < b && st == EFFDIM_OK; ++q) {
        size_t i = p0 + q, m = r->len[q];
        /* exact: the Krylov space became invariant or is the whole complement */
        int exact = r->exact[q] || m >= n - kd;
        st = quadrature(r, q, m, s->nodes + i * steps, s->weights + i * steps, err);
        s->count[i] = m;
        s->hcount[i] = exact ? 0 : (m + 1) / 2;
        if (st == EFFDIM_OK && s->hcount[i])
            st = quadrature(r, q, s->hcount[i], s->hnodes + i * s->hsteps,
                            s->hweights + i * s->hsteps, err);
    }
    if (st != EFFDIM_OK) return ws->final = st;
    s->info.probes = p0 + b;
    for (size_t q = 0; q < b; ++q) s->info.steps_total += r->len[q];
    s->info.settled = r->settled;
    update_info(ws);
    return ws->final = s->info.probes < ws->p.probes ? EFFDIM_ECONTINUE : EFFDIM_OK;
}

const effdim_slq *effdim_slq_current(const effdim_slq_workspace *ws)
{
    return ws && ws->s && ws->s->info.probes ? ws->s : NULL;
}

effdim_status effdim_slq_finish(effdim_slq_workspace *ws, effdim_slq **out, effdim_error *err)
{
    RETURN_ERROR_IF(!ws || !out, err, EFFDIM_EINVAL, "SLQ finish: NULL argument");
    *out = NULL;
    RETURN_ERROR_IF(ws->final != EFFDIM_OK && ws->final != EFFDIM_ECONTINUE, err, ws->final,
                    "SLQ finish: the run failed (status %d); no result", (int)ws->final);
    RETURN_ERROR_IF(!ws->s->info.probes, err, EFFDIM_EINVAL,
                    "SLQ finish: no probe has finished yet");
    *out = ws->s;
    ws->s = NULL;
    ws->final = EFFDIM_EINVAL;
    return EFFDIM_OK;
}

effdim_status effdim_slq_run(effdim_operator *op, const effdim_slq_params *p,
                             const double *defl_values, const double *defl_vectors, size_t kd,
                             effdim_slq **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "SLQ: output pointer is NULL");
    *out = NULL;
    effdim_slq_workspace *ws = NULL;
    effdim_status st = effdim_slq_init(op, p, defl_values, defl_vectors, kd, &ws, err);
    while (st == EFFDIM_OK && (st = effdim_slq_iterate(ws, err)) == EFFDIM_ECONTINUE) st = EFFDIM_OK;
    if (st == EFFDIM_OK) st = effdim_slq_finish(ws, out, err);
    effdim_slq_workspace_free(ws);
    return st;
}

/* ---- estimates from the quadratures ------------------------------------------- */

effdim_status effdim_slq_quadrature(const effdim_slq *s, size_t i, const double **nodes,
                                    const double **weights, size_t *count, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !nodes || !weights || !count, err, EFFDIM_EINVAL,
                    "SLQ quadrature: NULL argument");
    RETURN_ERROR_IF(i >= s->info.probes, err, EFFDIM_EINVAL,
                    "SLQ quadrature: probe %zu, expected < %zu", i, s->info.probes);
    *nodes = s->nodes + i * s->info.steps;
    *weights = s->weights + i * s->info.steps;
    *count = s->count[i];
    return EFFDIM_OK;
}

/* mean and standard error of x (P) */
static void mean_se(const double *x, size_t P, double *mean, double *se)
{
    double m = 0.0;
    for (size_t i = 0; i < P; ++i) m += x[i];
    m /= (double)P;
    double v = 0.0;
    for (size_t i = 0; i < P; ++i) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    if (se) *se = P > 1 ? sqrt(v / (double)(P - 1) / (double)P) : (double)NAN;
}

/* sum_j w_j f(theta_j) over `count` nodes and weights */
static double quad_sum(const double *nodes, const double *weights, size_t count,
                       effdim_spectral_fn f, void *ctx)
{
    double acc = 0.0;
    for (size_t j = 0; j < count; ++j) acc += weights[j] * f(nodes[j], ctx);
    return acc;
}

/* probe i's quadrature of f at all its steps */
static double probe_full(const effdim_slq *s, size_t i, effdim_spectral_fn f, void *ctx)
{
    size_t steps = s->info.steps;
    return quad_sum(s->nodes + i * steps, s->weights + i * steps, s->count[i], f, ctx);
}

effdim_status effdim_slq_trace(const effdim_slq *s, effdim_spectral_fn f, void *ctx,
                               double *estimate, double *se, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !f || !estimate, err, EFFDIM_EINVAL, "SLQ trace: NULL argument");
    size_t P = s->info.probes;
    double *q = effdim_alloc(P, sizeof(double), "SLQ trace: per-probe values", err);
    if (!q) return EFFDIM_ENOMEM;
    for (size_t i = 0; i < P; ++i) q[i] = probe_full(s, i, f, ctx);
    double exact = 0.0;
    for (size_t i = 0; i < s->info.deflated; ++i) exact += f(s->defl[i], ctx);
    mean_se(q, P, estimate, se);
    *estimate += exact;
    free(q);
    RETURN_ERROR_IF(!isfinite(*estimate), err, EFFDIM_EDOM,
                    "SLQ trace: the estimate is not finite (f is infinite at a node)");
    return EFFDIM_OK;
}

effdim_status effdim_slq_trace_bias(const effdim_slq *s, effdim_spectral_fn f, void *ctx,
                                    double *bias, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !f || !bias, err, EFFDIM_EINVAL, "SLQ bias: NULL argument");
    size_t P = s->info.probes, hs = s->hsteps;
    double acc = 0.0;
    for (size_t i = 0; i < P; ++i) {
        if (!s->hcount[i]) continue; /* exact probe: no change */
        acc += probe_full(s, i, f, ctx) -
               quad_sum(s->hnodes + i * hs, s->hweights + i * hs, s->hcount[i], f, ctx);
    }
    *bias = acc / (double)P;
    RETURN_ERROR_IF(!isfinite(*bias), err, EFFDIM_EDOM,
                    "SLQ bias: the change is not finite (f is infinite at a node)");
    return EFFDIM_OK;
}

typedef struct neff_ctx {
    double z;
    effdim_neg_policy policy;
} neff_ctx;

static double neff_fn(double x, void *p)
{
    const neff_ctx *c = p;
    return effdim_neff_term(x, c->z, c->policy);
}

static effdim_status check_neff_args(const effdim_slq *s, const double *z, size_t nz,
                                     effdim_neg_policy policy, const double *out,
                                     effdim_error *err)
{
    RETURN_ERROR_IF(!s || (nz && (!z || !out)), err, EFFDIM_EINVAL, "SLQ N_eff: NULL argument");
    RETURN_ERROR_IF(policy != EFFDIM_NEG_ZERO && policy != EFFDIM_NEG_ABS &&
                        policy != EFFDIM_NEG_ASIS,
                    err, EFFDIM_EINVAL,
                    "SLQ N_eff: negative-eigenvalue policy %d, expected zero, abs or asis",
                    (int)policy);
    for (size_t j = 0; j < nz; ++j)
        RETURN_ERROR_IF(!(z[j] > 0.0) || !isfinite(z[j]), err, EFFDIM_EDOM,
                        "SLQ N_eff: z[%zu] = %g, expected a finite z > 0", j, z[j]);
    return EFFDIM_OK;
}

effdim_status effdim_slq_neff(const effdim_slq *s, const double *z, size_t nz,
                              effdim_neg_policy policy, double *neff, double *se,
                              effdim_error *err)
{
    effdim_status st = check_neff_args(s, z, nz, policy, neff, err);
    for (size_t j = 0; j < nz && st == EFFDIM_OK; ++j) {
        neff_ctx c = {z[j], policy};
        st = effdim_slq_trace(s, neff_fn, &c, neff + j, se ? se + j : NULL, err);
    }
    return st;
}

effdim_status effdim_slq_neff_bias(const effdim_slq *s, const double *z, size_t nz,
                                   effdim_neg_policy policy, double *bias, effdim_error *err)
{
    effdim_status st = check_neff_args(s, z, nz, policy, bias, err);
    for (size_t j = 0; j < nz && st == EFFDIM_OK; ++j) {
        neff_ctx c = {z[j], policy};
        st = effdim_slq_trace_bias(s, neff_fn, &c, bias + j, err);
    }
    return st;
}

unsigned effdim_slq_neff_flag(double lambda_min, double gap0, double z, effdim_neg_policy policy,
                              double se, double bias)
{
    unsigned f = 0;
    if (policy != EFFDIM_NEG_ASIS && lambda_min < 0.0 && z <= -lambda_min &&
        !(z >= EFFDIM_SLQ_GAP_FACTOR * gap0)) /* NaN gap0: no node below 0 seen, flag */
        f |= EFFDIM_SLQ_FLAG_NEGATIVE;
    if (fabs(bias) > 2.0 * se) f |= EFFDIM_SLQ_FLAG_BIAS;
    return f;
}

effdim_status effdim_slq_grid(const effdim_slq *s, size_t ngrid, double pad, double *grid,
                              effdim_error *err)
{
    RETURN_ERROR_IF(!s || !grid, err, EFFDIM_EINVAL, "SLQ grid: NULL argument");
    RETURN_ERROR_IF(ngrid < 2, err, EFFDIM_EINVAL, "SLQ grid: %zu points, expected at least 2",
                    ngrid);
    RETURN_ERROR_IF(!(pad >= 0.0) || !isfinite(pad), err, EFFDIM_EDOM,
                    "SLQ grid: pad = %g, expected a finite pad >= 0", pad);
    double lo = s->info.lambda_min - pad, hi = s->info.lambda_max + pad;
    if (hi <= lo) hi = lo + 1.0; /* a single point mass and no pad */
    for (size_t i = 0; i < ngrid; ++i)
        grid[i] = lo + (hi - lo) * (double)i / (double)(ngrid - 1);
    return EFFDIM_OK;
}

effdim_status effdim_slq_density(const effdim_slq *s, const double *grid, size_t ngrid,
                                 double sigma, double *density, effdim_error *err)
{
    RETURN_ERROR_IF(!s || (ngrid && (!grid || !density)), err, EFFDIM_EINVAL,
                    "SLQ density: NULL argument");
    RETURN_ERROR_IF(!(sigma > 0.0) || !isfinite(sigma), err, EFFDIM_EDOM,
                    "SLQ density: sigma = %g, expected a finite sigma > 0", sigma);
    size_t P = s->info.probes, steps = s->info.steps;
    const double sqrt_2pi = 2.5066282746310002;
    double c = 1.0 / (sigma * sqrt_2pi * (double)s->info.n);
    for (size_t g = 0; g < ngrid; ++g) {
        double t = grid[g], acc = 0.0, exact = 0.0;
        for (size_t i = 0; i < P; ++i)
            for (size_t j = 0; j < s->count[i]; ++j) {
                double u = (t - s->nodes[i * steps + j]) / sigma;
                acc += s->weights[i * steps + j] * exp(-0.5 * u * u);
            }
        for (size_t i = 0; i < s->info.deflated; ++i) {
            double u = (t - s->defl[i]) / sigma;
            exact += exp(-0.5 * u * u);
        }
        density[g] = c * (exact + acc / (double)P);
    }
    return EFFDIM_OK;
}

/* ---- Hutchinson and Hutch++ ------------------------------------------------------ */

effdim_status effdim_hutchinson(effdim_operator *op, size_t probes, size_t block, uint64_t seed,
                                double *trace, double *se, effdim_error *err)
{
    RETURN_ERROR_IF(!op || !trace, err, EFFDIM_EINVAL, "Hutchinson: NULL %s",
                    !op ? "operator" : "output");
    RETURN_ERROR_IF(probes == 0 || block == 0, err, EFFDIM_EINVAL,
                    "Hutchinson: probes = %zu, block = %zu, expected both >= 1", probes, block);
    size_t n = op->n;
    if (block > probes) block = probes;
    double *Z = effdim_alloc(2 * block, n * sizeof(double), "Hutchinson probes (2 block, n)", err);
    double *q = Z ? effdim_alloc(probes, sizeof(double), "Hutchinson samples", err) : NULL;
    gsl_rng *rng = q ? gsl_rng_alloc(gsl_rng_mt19937) : NULL;
    effdim_status st = EFFDIM_OK;
    if (!rng) {
        st = q ? effdim_error_set(err, EFFDIM_ENOMEM, "Hutchinson: cannot allocate the RNG")
               : EFFDIM_ENOMEM;
        goto done;
    }
    gsl_rng_set(rng, (unsigned long)seed);
    double *AZ = Z + block * n;
    for (size_t p0 = 0; p0 < probes && st == EFFDIM_OK; p0 += block) {
        size_t b = probes - p0 < block ? probes - p0 : block;
        for (size_t i = 0; i < b; ++i) effdim_fill_rademacher(rng, Z + i * n, n);
        st = effdim_operator_apply(op, b, Z, n, AZ, n, err);
        for (size_t i = 0; i < b && st == EFFDIM_OK; ++i)
            q[p0 + i] = cblas_ddot((int)n, Z + i * n, 1, AZ + i * n, 1);
    }
    if (st == EFFDIM_OK) mean_se(q, probes, trace, se);
done:
    free(Z);
    free(q);
    if (rng) gsl_rng_free(rng);
    return st;
}

effdim_status effdim_hutchpp(effdim_operator *op, size_t matvecs, uint64_t seed, double *trace,
                             double *se, effdim_error *err)
{
    RETURN_ERROR_IF(!op || !trace, err, EFFDIM_EINVAL, "Hutch++: NULL %s",
                    !op ? "operator" : "output");
    RETURN_ERROR_IF(matvecs < 3, err, EFFDIM_EINVAL,
                    "Hutch++: budget of %zu matvecs, expected at least 3", matvecs);
    size_t n = op->n, s = matvecs / 3;
    if (s > n) s = n;
    double *Q = effdim_alloc(3 * s, n * sizeof(double), "Hutch++ sketches (3 s, n)", err);
    double *q = Q ? effdim_alloc(2 * s + 1, sizeof(double), "Hutch++ scratch", err) : NULL;
    gsl_rng *rng = q ? gsl_rng_alloc(gsl_rng_mt19937) : NULL;
    effdim_status st = EFFDIM_OK;
    if (!rng) {
        st = q ? effdim_error_set(err, EFFDIM_ENOMEM, "Hutch++: cannot allocate the RNG")
               : EFFDIM_ENOMEM;
        goto done;
    }
    gsl_rng_set(rng, (unsigned long)seed);
    double *S = Q + s * n, *G = Q + 2 * s * n, *scratch = q + s;
    /* Q = orth(A S): sketch, apply, orthonormalise the rows (CGS2), dropping
       rows that vanish (A S rank deficient) */
    for (size_t i = 0; i < s; ++i) effdim_fill_rademacher(rng, S + i * n, n);
    for (size_t i = 0; i < s; ++i) effdim_fill_rademacher(rng, G + i * n, n);
    if ((st = effdim_operator_apply(op, s, S, n, Q, n, err)) != EFFDIM_OK) goto done;
    size_t r = 0;
    for (size_t i = 0; i < s; ++i) {
        double before = effdim_norm2(Q + i * n, n);
        if (r != i) memcpy(Q + r * n, Q + i * n, n * sizeof(double));
        double after = effdim_cgs2(Q, r, NULL, 0, n, Q + r * n, NULL, scratch);
        if (after > 1e-12 * before && after > 0.0) {
            cblas_dscal((int)n, 1.0 / after, Q + r * n, 1);
            ++r;
        }
    }
    /* tr(Q^T A Q), the A Q block in S (no longer needed) */
    double t_low = 0.0;
    if (r) {
        if ((st = effdim_operator_apply(op, r, Q, n, S, n, err)) != EFFDIM_OK) goto done;
        for (size_t i = 0; i < r; ++i) t_low += cblas_ddot((int)n, Q + i * n, 1, S + i * n, 1);
    }
    /* Hutchinson on the complement: g <- (I - QQ^T) g, samples g^T A g */
    for (size_t i = 0; i < s; ++i) effdim_cgs2(Q, r, NULL, 0, n, G + i * n, NULL, scratch);
    if ((st = effdim_operator_apply(op, s, G, n, S, n, err)) != EFFDIM_OK) goto done;
    for (size_t i = 0; i < s; ++i) q[i] = cblas_ddot((int)n, G + i * n, 1, S + i * n, 1);
    double t_rest;
    mean_se(q, s, &t_rest, se);
    *trace = t_low + t_rest;
done:
    free(Q);
    free(q);
    if (rng) gsl_rng_free(rng);
    return st;
}
