/* lib/hvp.c: curvature operators of a network's training loss (see effdim/hvp.h).
 *
 * Three operators behind one effdim_operator callback interface:
 *
 * - Hessian by finite differences of the full gradient along u = v / ||v||,
 *   scaled back by ||v||: by default Richardson's extrapolation
 *   (4 C(h) - C(2h)) / 3 of central quotients C(h) = (g(theta + h u) -
 *   g(theta - h u)) / 2h, error O(h^4), 4 gradients, h = 5e-7 (1 + ||theta||)
 *   (measured window, docs/curvature.md); or one central quotient (2
 *   gradients, h = cbrt(macheps)(1 + ||theta||)) or a forward one
 *   (g(theta + h u) - g(theta)) / h (1 gradient, h = sqrt(macheps)(1 +
 *   ||theta||)): the minimisers of truncation + rounding if the loss varied
 *   on the length scale 1 + ||theta|| (Nocedal and Wright, Numerical
 *   Optimization, 2nd ed., Section 8.1), which trained networks do not
 *   (docs/curvature.md). effdim_hvp_fd_error_estimate measures the two error
 *   terms for a given vector: truncation by Richardson extrapolation between
 *   h and 2h, rounding from the gradient's measured noise under an
 *   ulp-sized perturbation of theta.
 * - exact Hessian by Pearlmutter's R-operator (1994) and Gauss-Newton
 *   products (Schraudolph 2002): per chunk of rows one ordinary forward (and,
 *   for the Hessian, backward) pass shared by the whole block of vectors, then
 *   the per-vector second-order passes of lib/mlp_curv.c.
 *
 * All three add an optional prior term delta v. Nothing allocates inside an
 * apply call; effdim_hvp_fd_error_estimate allocates its own scratch.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/hvp.h"
#include "internal.h"
#include "mlp_curv.h"
#include "mlp_internal.h"

#define HVP_MAX_BLOCK 64
/* vectors per exact/GGN call when the rows are split over workers: the
 * workers t >= 1 accumulate into (workers - 1) x this many P-vectors */
#define HVP_SPLIT_BLOCK 4

/* h / (1 + ||theta||) of the Richardson-extrapolated default. Measured, not
 * derived (docs/curvature.md section 7): on a trained 2-32-32-2 tanh net and a
 * 784-300-100-10 relu net the extrapolated error stayed below 1e-10 of
 * lambda_max for absolute h from 1e-7 to 3e-5; 5e-7 (1 + ||theta||) sits
 * inside that window with a decade to spare below and above for ||theta|| in
 * 1..60. */
#define FD_RICHARDSON_STEP 5e-7

typedef struct hvp_ctx {
    effdim_mlp m;
    effdim_hvp_params p;
    const effdim_dataset *ds;   /* borrowed */
    size_t *rows;               /* (n_rows) own copy, or NULL for rows 0..n_rows-1 */
    size_t n_rows;
    double scale;               /* 1/n_rows (mean) or 1 (sum) */
    double *theta;              /* (P) own copy */
    double theta_norm;
    double h;                   /* FD step; 0 for exact and GGN */
    double *theta_pert;         /* (P) FD: theta +- h u */
    double *gbuf;               /* (P) FD: the second gradient */
    double *dbuf;               /* (P) Richardson FD: D(2h) v */
    double *g0;                 /* (P) forward FD: g(theta) */
    effdim_mlp_ws *ws;
    int own_ws;
    effdim_curv_ws *cw;         /* exact and GGN (worker 0) */
    effdim_curv_ws *cws[EFFDIM_MLP_MAX_WORKERS]; /* per worker, cws[0] = cw */
    double *acc;                /* (workers - 1, HVP_SPLIT_BLOCK, P) the other workers' sums */
    size_t workers;             /* of c->ws when the operator was built */
    effdim_curv_masks *masks;   /* FD: relu patterns at theta, or NULL (no relu layer) */
    double *cache;              /* exact/GGN with cache: the one allocation for the views below */
    double *cZ[EFFDIM_MLP_MAX_LAYERS], *cA[EFFDIM_MLP_MAX_LAYERS]; /* (n_rows, sizes[l+1]) */
    double *cD[EFFDIM_MLP_MAX_LAYERS], *cG[EFFDIM_MLP_MAX_LAYERS]; /* or NULL when not needed */
    size_t gradients;
    size_t bytes;
} hvp_ctx;

/* ---- names -------------------------------------------------------------------- */

const char *effdim_curvature_name(effdim_curvature c)
{
    switch (c) {
    case EFFDIM_CURV_HESSIAN: return "hessian";
    case EFFDIM_CURV_GGN: return "ggn";
    }
    return "unknown";
}

effdim_status effdim_curvature_parse(const char *s, effdim_curvature *c, effdim_error *err)
{
    if (s && !strcmp(s, "hessian")) *c = EFFDIM_CURV_HESSIAN;
    else if (s && !strcmp(s, "ggn")) *c = EFFDIM_CURV_GGN;
    else
        return effdim_error_set(err, EFFDIM_EINVAL, "operator '%s' unknown, expected hessian or ggn",
                                s ? s : "(null)");
    return EFFDIM_OK;
}

const char *effdim_hvp_method_name(effdim_hvp_method m)
{
    switch (m) {
    case EFFDIM_HVP_FD: return "fd";
    case EFFDIM_HVP_FD_CENTRAL: return "fd-central";
    case EFFDIM_HVP_FD_FORWARD: return "fd-forward";
    case EFFDIM_HVP_EXACT: return "exact";
    }
    return "unknown";
}

effdim_status effdim_hvp_method_parse(const char *s, effdim_hvp_method *m, effdim_error *err)
{
    if (s && !strcmp(s, "fd")) *m = EFFDIM_HVP_FD;
    else if (s && !strcmp(s, "fd-central")) *m = EFFDIM_HVP_FD_CENTRAL;
    else if (s && !strcmp(s, "fd-forward")) *m = EFFDIM_HVP_FD_FORWARD;
    else if (s && !strcmp(s, "exact")) *m = EFFDIM_HVP_EXACT;
    else
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "hvp method '%s' unknown, expected fd, fd-central, fd-forward or exact",
                                s ? s : "(null)");
    return EFFDIM_OK;
}

effdim_hvp_params effdim_hvp_default_params(void)
{
    effdim_hvp_params p;
    memset(&p, 0, sizeof p);
    p.curvature = EFFDIM_CURV_HESSIAN;
    p.method = EFFDIM_HVP_FD;
    return p;
}

double effdim_hvp_fd_auto_step(effdim_hvp_method method, double theta_norm)
{
    double L = 1.0 + theta_norm;
    if (method == EFFDIM_HVP_FD) return FD_RICHARDSON_STEP * L;
    if (method == EFFDIM_HVP_FD_CENTRAL) return cbrt(DBL_EPSILON) * L;
    if (method == EFFDIM_HVP_FD_FORWARD) return sqrt(DBL_EPSILON) * L;
    return 0.0;
}

/* ---- small vector helpers ------------------------------------------------------- */

static double norm2(const double *x, size_t n)
{
    /* scaled sum of squares: no overflow for huge entries */
    double scale = 0.0, ssq = 1.0;
    for (size_t i = 0; i < n; ++i) {
        double a = fabs(x[i]);
        if (a == 0.0) continue;
        if (scale < a) {
            ssq = 1.0 + ssq * (scale / a) * (scale / a);
            scale = a;
        } else {
            ssq += (a / scale) * (a / scale);
        }
    }
    return scale * sqrt(ssq);
}

static double dist2(const double *x, const double *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
    return sqrt(s);
}

/* ---- context --------------------------------------------------------------------- */

static void ctx_free(void *p)
{
    hvp_ctx *c = p;
    if (!c) return;
    free(c->rows);
    free(c->theta);
    free(c->theta_pert);
    free(c->gbuf);
    free(c->dbuf);
    free(c->g0);
    if (c->own_ws) effdim_mlp_ws_free(c->ws);
    effdim_curv_ws_free(c->cw);
    for (size_t t = 1; t < EFFDIM_MLP_MAX_WORKERS; ++t) effdim_curv_ws_free(c->cws[t]);
    free(c->acc);
    effdim_curv_masks_free(c->masks);
    free(c->cache);
    free(c);
}

static effdim_status grad_at(hvp_ctx *c, const double *theta, double *g, effdim_error *err)
{
    c->gradients++;
    if (c->masks)
        return effdim_curv_frozen_loss_grad(&c->m, theta, c->ds, c->rows, c->n_rows, c->masks, NULL,
                                            g, c->ws, err);
    return effdim_mlp_loss_grad(&c->m, theta, c->ds, c->rows, c->n_rows, NULL, g, c->ws, err);
}

static effdim_status check_vector(const char *opname, const double *x, size_t n, size_t j,
                                  effdim_error *err)
{
    size_t bad = 0;
    RETURN_ERROR_IF(!effdim_all_finite(x, n, &bad), err, EFFDIM_EDOM,
                    "operator %s: input vector %zu has a non-finite entry at index %zu", opname, j,
                    bad);
    return EFFDIM_OK;
}

/* y (P) = one difference quotient of step h along v: central
 * ||v|| (g(theta + h u) - g(theta - h u)) / 2h or forward
 * ||v|| (g(theta + h u) - g(theta)) / h. */
static effdim_status fd_quotient(hvp_ctx *c, const double *v, double nv, double h, int central,
                                 double *y, effdim_error *err)
{
    size_t P = c->m.n_params;
    double t = h / nv; /* theta +- t v moves by exactly h (up to rounding) */
    for (size_t i = 0; i < P; ++i) c->theta_pert[i] = c->theta[i] + t * v[i];
    effdim_status st = grad_at(c, c->theta_pert, y, err);
    if (st) return st;
    const double *gm = c->g0;
    if (central) {
        for (size_t i = 0; i < P; ++i) c->theta_pert[i] = c->theta[i] - t * v[i];
        st = grad_at(c, c->theta_pert, c->gbuf, err);
        if (st) return st;
        gm = c->gbuf;
    }
    double q = central ? 1.0 / (2.0 * t) : 1.0 / t;
    for (size_t i = 0; i < P; ++i) y[i] = (y[i] - gm[i]) * q;
    return EFFDIM_OK;
}

/* y (P) = D(h) v by the operator's method, plus no prior: the central or
 * forward quotient, or (EFFDIM_HVP_FD) Richardson's extrapolation
 * (4 C(h) - C(2h)) / 3 of two central quotients C, whose h^2 error terms
 * cancel (4 gradients). */
static effdim_status fd_product(hvp_ctx *c, const double *v, double h, double *y, effdim_error *err)
{
    size_t P = c->m.n_params;
    double nv = norm2(v, P);
    if (nv == 0.0) {
        memset(y, 0, P * sizeof(double));
        return EFFDIM_OK;
    }
    if (c->p.method != EFFDIM_HVP_FD)
        return fd_quotient(c, v, nv, h, c->p.method == EFFDIM_HVP_FD_CENTRAL, y, err);
    effdim_status st = fd_quotient(c, v, nv, h, 1, y, err);
    if (!st) st = fd_quotient(c, v, nv, 2.0 * h, 1, c->dbuf, err);
    if (st) return st;
    for (size_t i = 0; i < P; ++i) y[i] = (4.0 * y[i] - c->dbuf[i]) / 3.0;
    return EFFDIM_OK;
}

static effdim_status fd_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx, double *Y,
                              size_t ldy, effdim_error *err)
{
    hvp_ctx *c = p;
    const char *name = c->p.method == EFFDIM_HVP_FD           ? "hessian-fd"
                       : c->p.method == EFFDIM_HVP_FD_CENTRAL ? "hessian-fd-central"
                                                              : "hessian-fd-forward";
    for (size_t j = 0; j < nvec; ++j) {
        const double *x = X + j * ldx;
        double *y = Y + j * ldy;
        effdim_status st = check_vector(name, x, n, j, err);
        if (!st) st = fd_product(c, x, c->h, y, err);
        if (st) return st;
        if (c->p.prior != 0.0)
            for (size_t i = 0; i < n; ++i) y[i] += c->p.prior * x[i];
    }
    return EFFDIM_OK;
}

/* ---- cached forward state (params.cache) ---------------------------------------------- */

/* Whether the cache keeps Z_l itself: only softplus, gelu and elu need the
 * pre-activation (elu' = e^z below 0); relu, identity, tanh and sigmoid read
 * their derivatives from A_l (relu: A > 0 iff Z > 0), so Z_l is aliased to A_l. */
static int needs_z(effdim_activation a)
{
    return a == EFFDIM_ACT_SOFTPLUS || a == EFFDIM_ACT_GELU || a == EFFDIM_ACT_ELU;
}
static int curved(effdim_activation a) { return a != EFFDIM_ACT_IDENTITY && a != EFFDIM_ACT_RELU; }

/* Doubles per row the cache needs. */
static size_t cache_width(const effdim_mlp *m, int hessian)
{
    size_t w = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t o = m->sizes[l + 1];
        w += o;                                   /* A_l */
        if (needs_z(m->act[l])) w += o;           /* Z_l */
        if (hessian && l) w += o;                 /* D_l */
        if (hessian && curved(m->act[l])) w += o; /* G_l */
    }
    return w;
}

/* One forward (and backward) pass over the rows into the cache. */
/* The forward half shared by building the cache and by an uncached product:
 * load rows [start, start+len) into the workspace, run the forward pass and the
 * output layer (its loss Hessian for the GGN, residual for the Hessian) and, for
 * the Hessian, the backward pass that keeps what the R-backward needs. */
static effdim_status forward_chunk(hvp_ctx *c, size_t start, size_t len, int hessian,
                                   effdim_mlp_ws *ws, effdim_curv_ws *cw, effdim_mlp_chunk *ch,
                                   effdim_error *err)
{
    const effdim_mlp *m = &c->m;
    double part = 0.0;
    effdim_status st = effdim_mlp_chunk_load(c->ds, c->rows, start, len, ws, ch, err);
    if (st) return st;
    effdim_mlp_forward(m, c->theta, ch->X, len, ws);
    st = effdim_mlp_output(m, ch, c->scale, hessian, ws, &part, err);
    if (st) return st;
    if (hessian) effdim_curv_backward_keep(m, c->theta, len, ws, cw);
    return EFFDIM_OK;
}

static effdim_status cache_build(hvp_ctx *c, effdim_error *err)
{
    const effdim_mlp *m = &c->m;
    int hessian = c->p.curvature == EFFDIM_CURV_HESSIAN;
    size_t per = cache_width(m, hessian), total;
    if (effdim_mul_size(per, c->n_rows, &total))
        return effdim_error_set(err, EFFDIM_ENOMEM, "curvature cache: %zu rows overflow", c->n_rows);
    c->cache = effdim_alloc(total, sizeof(double), "curvature cache", err);
    if (!c->cache) return EFFDIM_ENOMEM;
    c->bytes += total * sizeof(double);
    double *p = c->cache;
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t o = m->sizes[l + 1] * c->n_rows;
        c->cA[l] = p;
        p += o;
        c->cZ[l] = c->cA[l];
        if (needs_z(m->act[l])) {
            c->cZ[l] = p;
            p += o;
        }
        if (hessian && l) {
            c->cD[l] = p;
            p += o;
        }
        if (hessian && curved(m->act[l])) {
            c->cG[l] = p;
            p += o;
        }
    }
    size_t chunk = c->ws->chunk;
    for (size_t start = 0; start < c->n_rows; start += chunk) {
        size_t len = c->n_rows - start < chunk ? c->n_rows - start : chunk;
        effdim_mlp_chunk ch;
        effdim_status st = forward_chunk(c, start, len, hessian, c->ws, c->cw, &ch, err);
        if (st) return st;
        for (size_t l = 0; l < m->n_layers; ++l) {
            size_t w = m->sizes[l + 1], bytes = len * w * sizeof(double);
            memcpy(c->cA[l] + start * w, c->ws->A[l], bytes);
            if (c->cZ[l] != c->cA[l]) memcpy(c->cZ[l] + start * w, c->ws->Z[l], bytes);
            if (c->cD[l]) memcpy(c->cD[l] + start * w, c->ws->D[l], bytes);
            if (c->cG[l]) memcpy(c->cG[l] + start * w, c->cw->G[l], bytes);
        }
    }
    return EFFDIM_OK;
}

/* One part of an exact/GGN product: rows [begin, end) (whole chunks) of
 * the selection for every vector of the block, on the part's workspaces,
 * each vector's sum accumulated into out + j * ldo (zeroed here). From the
 * cache (views whose forward-state pointers point at the chunk's rows of
 * it) or, without, one forward (and backward) pass per chunk shared by the
 * vectors. */
typedef struct exact_call {
    hvp_ctx *c;
    size_t nvec;
    const double *X;
    size_t ldx;
    double *Y; /* part 0's sums (the result) */
    size_t ldy;
} exact_call;

static effdim_status exact_range(hvp_ctx *c, size_t begin, size_t end, effdim_mlp_ws *ws,
                                 effdim_curv_ws *cw, size_t nvec, const double *X, size_t ldx,
                                 double *out, size_t ldo, effdim_error *err)
{
    const effdim_mlp *m = &c->m;
    int hessian = c->p.curvature == EFFDIM_CURV_HESSIAN;
    size_t chunk = ws->chunk, P = m->n_params;
    for (size_t j = 0; j < nvec; ++j) memset(out + j * ldo, 0, P * sizeof(double));
    for (size_t start = begin; start < end; start += chunk) {
        size_t len = end - start < chunk ? end - start : chunk;
        effdim_mlp_chunk ch;
        effdim_mlp_ws view = *ws;
        effdim_curv_ws cview = *cw;
        effdim_status st;
        if (c->cache) {
            st = effdim_mlp_chunk_load(c->ds, c->rows, start, len, ws, &ch, err);
            for (size_t l = 0; l < m->n_layers; ++l) {
                size_t w = m->sizes[l + 1];
                view.A[l] = c->cA[l] + start * w;
                view.Z[l] = c->cZ[l] + start * w;
                if (c->cD[l]) view.D[l] = c->cD[l] + start * w;
                if (c->cG[l]) cview.G[l] = c->cG[l] + start * w;
            }
        } else {
            st = forward_chunk(c, start, len, hessian, ws, cw, &ch, err);
        }
        if (st) return st;
        for (size_t j = 0; j < nvec; ++j) {
            const double *v = X + j * ldx;
            effdim_curv_rforward(m, c->theta, v, ch.X, len, &view, &cview);
            if (hessian)
                effdim_curv_hessian_accumulate(m, c->theta, v, ch.X, len, c->scale, &view, &cview,
                                               out + j * ldo);
            else
                effdim_curv_ggn_accumulate(m, c->theta, ch.X, len, c->scale, &view, &cview,
                                           out + j * ldo);
        }
    }
    return EFFDIM_OK;
}

/* effdim_mlp_range_fn: the part's worker is the index of its workspace */
static effdim_status exact_part(void *arg, size_t begin, size_t end, effdim_mlp_ws *ws,
                                double *grad, double *total, size_t *count, effdim_error *err)
{
    const exact_call *e = arg;
    hvp_ctx *c = e->c;
    size_t t = 0, P = c->m.n_params;
    (void)grad;
    *total = 0.0;
    *count = 0;
    while (t + 1 < c->workers && c->ws->sub[t] != ws) ++t;
    if (t == 0) return exact_range(c, begin, end, ws, c->cws[0], e->nvec, e->X, e->ldx, e->Y, e->ldy, err);
    return exact_range(c, begin, end, ws, c->cws[t], e->nvec, e->X, e->ldx,
                       c->acc + (t - 1) * HVP_SPLIT_BLOCK * P, P, err);
}

/* Exact Hessian and GGN: the rows split over the workspace's workers as the
 * gradient is (effdim_mlp_split: contiguous parts of whole chunks, one
 * thread each, OpenBLAS at 1 thread meanwhile), each part running every
 * vector of the block, then the parts' sums added in part order (bitwise
 * the same run to run for a given worker count; against one worker the sums
 * are regrouped: rounding only). */
static effdim_status exact_apply(void *p, size_t n, size_t nvec, const double *X, size_t ldx,
                                 double *Y, size_t ldy, effdim_error *err)
{
    hvp_ctx *c = p;
    int hessian = c->p.curvature == EFFDIM_CURV_HESSIAN;
    const char *name = hessian ? "hessian-exact" : "ggn";
    for (size_t j = 0; j < nvec; ++j) {
        effdim_status st = check_vector(name, X + j * ldx, n, j, err);
        if (st) return st;
    }
    size_t chunk = c->ws->chunk, chunks = c->n_rows / chunk + (c->n_rows % chunk != 0);
    size_t T = c->workers < chunks ? c->workers : chunks;
    exact_call e = {c, nvec, X, ldx, Y, ldy};
    effdim_status st;
    if (T <= 1) {
        st = exact_range(c, 0, c->n_rows, c->ws, c->cw, nvec, X, ldx, Y, ldy, err);
    } else {
        st = effdim_mlp_split(c->ws, c->n_rows, n, exact_part, &e, NULL, NULL, NULL, err);
        for (size_t t = 1; !st && t < T; ++t) /* fixed order: part 0 + part 1 + ... */
            for (size_t j = 0; j < nvec; ++j) {
                const double *a = c->acc + ((t - 1) * HVP_SPLIT_BLOCK + j) * n;
                double *y = Y + j * ldy;
                for (size_t i = 0; i < n; ++i) y[i] += a[i];
            }
    }
    if (st) return st;
    if (c->p.prior != 0.0)
        for (size_t j = 0; j < nvec; ++j)
            for (size_t i = 0; i < n; ++i) Y[j * ldy + i] += c->p.prior * X[j * ldx + i];
    return EFFDIM_OK;
}

/* ---- construction ------------------------------------------------------------------ */

static effdim_status check_params(const effdim_hvp_params *p, effdim_error *err)
{
    RETURN_ERROR_IF((unsigned)p->curvature > 1u, err, EFFDIM_EINVAL,
                    "curvature operator %d unknown, expected hessian or ggn", (int)p->curvature);
    RETURN_ERROR_IF((unsigned)p->method > 3u, err, EFFDIM_EINVAL,
                    "hvp method %d unknown, expected fd, fd-central, fd-forward or exact",
                    (int)p->method);
    RETURN_ERROR_IF(p->curvature == EFFDIM_CURV_GGN && p->method != EFFDIM_HVP_EXACT, err,
                    EFFDIM_EINVAL,
                    "Gauss-Newton products are computed exactly: hvp method %s does not apply "
                    "(use exact)", effdim_hvp_method_name(p->method));
    RETURN_ERROR_IF(!isfinite(p->prior) || p->prior < 0.0, err, EFFDIM_EDOM,
                    "prior (weight decay) %g, expected a finite value >= 0", p->prior);
    RETURN_ERROR_IF(!isfinite(p->fd_step) || p->fd_step < 0.0, err, EFFDIM_EDOM,
                    "finite-difference step %g, expected a finite value > 0 (or 0 for automatic)",
                    p->fd_step);
    return EFFDIM_OK;
}

static effdim_status check_inputs(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                                  const size_t *rows, size_t n_rows, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta || !ds, err, EFFDIM_EINVAL,
                    "curvature operator: network, parameters or data is NULL");
    effdim_status st = effdim_mlp_check_call(m, ds, rows, n_rows, err);
    if (st) return st;
    if (rows)
        for (size_t i = 0; i < n_rows; ++i)
            RETURN_ERROR_IF(rows[i] >= ds->n, err, EFFDIM_EINVAL,
                            "%s: rows[%zu] = %zu, but the data set has %zu rows",
                            ds->spec ? ds->spec : "data set", i, rows[i], ds->n);
    size_t bad = 0;
    RETURN_ERROR_IF(!effdim_all_finite(theta, m->n_params, &bad), err, EFFDIM_EDOM,
                    "curvature operator: parameter %zu of %zu is not finite", bad, m->n_params);
    return EFFDIM_OK;
}

static const char *op_name(const effdim_hvp_params *p)
{
    if (p->curvature == EFFDIM_CURV_GGN) return "ggn";
    if (p->method == EFFDIM_HVP_EXACT) return "hessian-exact";
    if (p->method == EFFDIM_HVP_FD_CENTRAL) return "hessian-fd-central";
    return p->method == EFFDIM_HVP_FD ? "hessian-fd" : "hessian-fd-forward";
}

static double *alloc_vec(size_t P, const char *what, size_t *bytes, effdim_error *err)
{
    double *v = effdim_alloc(P, sizeof(double), what, err);
    if (v) *bytes += P * sizeof(double);
    return v;
}

effdim_status effdim_hvp_operator(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                                  const size_t *rows, size_t n_rows,
                                  const effdim_hvp_params *params, effdim_mlp_ws *ws,
                                  effdim_operator **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "curvature operator: output pointer is NULL");
    *out = NULL;
    effdim_hvp_params p = params ? *params : effdim_hvp_default_params();
    effdim_status st = check_params(&p, err);
    if (!st) st = check_inputs(m, theta, ds, rows, n_rows, err);
    if (!st && ws) st = effdim_mlp_ws_check(m, ws, err);
    if (st) return st;

    hvp_ctx *c = effdim_calloc(1, sizeof *c, "curvature operator", err);
    if (!c) return EFFDIM_ENOMEM;
    size_t P = m->n_params;
    c->m = *m;
    c->p = p;
    c->ds = ds;
    c->n_rows = n_rows;
    c->scale = effdim_mlp_loss_scale(m, n_rows);
    c->bytes = sizeof *c;
    st = EFFDIM_ENOMEM;
    if (rows) {
        c->rows = effdim_alloc(n_rows, sizeof(size_t), "curvature operator rows", err);
        if (!c->rows) goto fail;
        memcpy(c->rows, rows, n_rows * sizeof(size_t));
        c->bytes += n_rows * sizeof(size_t);
    }
    if (!(c->theta = alloc_vec(P, "curvature operator theta", &c->bytes, err))) goto fail;
    memcpy(c->theta, theta, P * sizeof(double));
    c->theta_norm = norm2(theta, P);
    if (ws) {
        c->ws = ws;
    } else {
        c->ws = effdim_mlp_ws_alloc(m, p.chunk, err);
        if (!c->ws) goto fail;
        c->own_ws = 1;
        c->bytes += effdim_mlp_ws_bytes(c->ws);
    }
    int fd = p.method != EFFDIM_HVP_EXACT;
    if (fd) {
        c->h = p.fd_step > 0.0 ? p.fd_step : effdim_hvp_fd_auto_step(p.method, c->theta_norm);
        /* relu patterns at theta, frozen for every gradient (lib/mlp_curv.h says why) */
        effdim_error local;
        effdim_error_clear(&local);
        c->masks = effdim_curv_masks_alloc(m, theta, ds, c->rows, n_rows, c->ws, &local);
        if (!c->masks && local.code) {
            if (err) *err = local;
            st = local.code;
            goto fail;
        }
        if (c->masks) c->bytes += c->masks->bytes;
        if (!(c->theta_pert = alloc_vec(P, "finite-difference point", &c->bytes, err)) ||
            !(c->gbuf = alloc_vec(P, "finite-difference gradient", &c->bytes, err)))
            goto fail;
        if (p.method == EFFDIM_HVP_FD &&
            !(c->dbuf = alloc_vec(P, "finite-difference quotient", &c->bytes, err)))
            goto fail;
        if (p.method == EFFDIM_HVP_FD_FORWARD) {
            if (!(c->g0 = alloc_vec(P, "gradient at theta", &c->bytes, err))) goto fail;
            st = grad_at(c, c->theta, c->g0, err);
            if (st) goto fail;
            st = EFFDIM_ENOMEM;
        }
    } else {
        c->cw = effdim_curv_ws_alloc(m, c->ws->chunk, err);
        if (!c->cw) goto fail;
        c->bytes += c->cw->bytes;
        c->cws[0] = c->cw;
        c->workers = effdim_mlp_ws_workers(c->ws);
        for (size_t t = 1; t < c->workers; ++t) { /* the row split's other workers */
            if (!(c->cws[t] = effdim_curv_ws_alloc(m, c->ws->chunk, err))) goto fail;
            c->bytes += c->cws[t]->bytes;
        }
        if (c->workers > 1) {
            size_t count = (c->workers - 1) * HVP_SPLIT_BLOCK;
            if (!(c->acc = effdim_alloc(count, P * sizeof(double), "row-split accumulators", err)))
                goto fail;
            c->bytes += count * P * sizeof(double);
        }
        if (p.cache) {
            st = cache_build(c, err);
            if (st) goto fail;
            st = EFFDIM_ENOMEM;
        }
    }
    st = effdim_operator_alloc(P, fd ? fd_apply : exact_apply, c, ctx_free, op_name(&p), out, err);
    if (st) goto fail;
    (*out)->max_block = !fd && c->workers > 1 ? HVP_SPLIT_BLOCK : HVP_MAX_BLOCK;
    return EFFDIM_OK;
fail:
    ctx_free(c);
    return st;
}

/* ---- information and error estimates -------------------------------------------------- */

static hvp_ctx *ctx_of(const effdim_operator *op)
{
    if (!op || (op->apply != fd_apply && op->apply != exact_apply)) return NULL;
    return op->ctx;
}

effdim_status effdim_hvp_get_info(const effdim_operator *op, effdim_hvp_info *info,
                                  effdim_error *err)
{
    hvp_ctx *c = ctx_of(op);
    RETURN_ERROR_IF(!c || !info, err, EFFDIM_EINVAL,
                    "operator '%s' is not a curvature operator of a network",
                    op ? op->name : "(null)");
    memset(info, 0, sizeof *info);
    info->curvature = c->p.curvature;
    info->method = c->p.method;
    info->loss = c->m.loss;
    info->reduction = c->m.reduction;
    info->n_rows = c->n_rows;
    info->n_params = c->m.n_params;
    info->scale = c->scale;
    info->prior = c->p.prior;
    info->fd_step = c->h;
    info->theta_norm = c->theta_norm;
    info->gradients = c->gradients;
    info->chunk = c->ws->chunk;
    info->bytes = c->bytes;
    return EFFDIM_OK;
}

/* theta' = theta with entry i moved by macheps |theta_i| up or down (a fixed
 * pseudo-random sign pattern): one or two units in the last place. */
static void ulp_perturb(const double *theta, double *out, size_t n)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; ++i) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double d = DBL_EPSILON * fabs(theta[i]);
        out[i] = theta[i] + ((s >> 63) ? d : -d);
    }
}

effdim_status effdim_hvp_fd_error_estimate(effdim_operator *op, const double *v, double *hv,
                                           effdim_hvp_fd_error *out, effdim_error *err)
{
    hvp_ctx *c = ctx_of(op);
    RETURN_ERROR_IF(!c || c->p.method == EFFDIM_HVP_EXACT, err, EFFDIM_EINVAL,
                    "operator '%s' is not a finite-difference Hessian operator",
                    op ? op->name : "(null)");
    RETURN_ERROR_IF(!v || !out, err, EFFDIM_EINVAL, "FD error estimate: NULL argument");
    size_t P = c->m.n_params;
    effdim_status st = check_vector(op->name, v, P, 0, err);
    if (st) return st;
    double nv = norm2(v, P);
    RETURN_ERROR_IF(nv == 0.0, err, EFFDIM_EDOM, "FD error estimate: v is the zero vector");
    double *buf = effdim_alloc(4 * P, sizeof(double), "FD error estimate scratch", err);
    if (!buf) return EFFDIM_ENOMEM;
    double *d1 = buf, *d2 = buf + P, *ga = buf + 2 * P, *gb = buf + 3 * P;
    size_t saved = c->gradients;
    st = fd_product(c, v, c->h, d1, err);
    if (!st) st = fd_product(c, v, 2.0 * c->h, d2, err);
    if (!st) st = grad_at(c, c->theta, ga, err);
    if (!st) {
        ulp_perturb(c->theta, c->theta_pert, P);
        st = grad_at(c, c->theta_pert, gb, err);
    }
    c->gradients = saved;
    if (st) {
        free(buf);
        return st;
    }
    memset(out, 0, sizeof *out);
    out->step = c->h;
    double diff = dist2(d2, d1, P);
    /* the leading error term grows 16-fold (h^4, Richardson), 4-fold (h^2,
     * central) or 2-fold (h, forward) from h to 2h */
    out->truncation = c->p.method == EFFDIM_HVP_FD           ? diff / 15.0
                      : c->p.method == EFFDIM_HVP_FD_CENTRAL ? diff / 3.0
                                                             : diff;
    out->noise = dist2(gb, ga, P);
    /* central C(h) carries nu / 2h of noise; Richardson's 4/3 C(h) - 1/3 C(2h)
     * at most (4/3)(1/2) + (1/3)(1/4) = 3/4 of nu / h; both doubled */
    out->rounding = (c->p.method == EFFDIM_HVP_FD ? 1.5 : 1.0) * out->noise * nv / c->h;
    out->predicted = out->truncation + out->rounding;
    out->norm_hv = norm2(d1, P);
    if (hv) memcpy(hv, d1, P * sizeof(double));
    free(buf);
    return EFFDIM_OK;
}
