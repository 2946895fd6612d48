/* lib/diag.c: diagonal curvature estimators over data (GGN, Monte-Carlo GGN,
 * empirical Fisher, exact Hessian), through an operator (Hutchinson, unit
 * vectors) and from optimiser state (Adam's v, IVON's h).
 *
 * The data estimators share one engine, "factor backpropagation" (see
 * effdim/diag.h for the derivation): for a block of nb rows of a forward
 * chunk, the per-sample curvature with respect to the pre-activation Z_l is
 * held as signed factor rows, all rows of all samples stacked FACTOR-MAJOR,
 *     F_l  (ncol_l * nb, w_l),  row c * nb + i = factor c of sample i,
 *     sg_l (ncol_l * nb)        its sign (+1 for Gauss-Newton factors),
 * plus, for the exact Hessian, a diagonal residual R_l (nb, w_l). At each
 * layer the diagonal of the per-sample curvature,
 *     S(i, o) = sum_c sg(c, i) F(c*nb + i, o)^2 + R_l(i, o),
 * is turned into the parameter diagonal by one squared dgemm,
 *     diag[W_l] += S^T (A_{l-1} .^ 2),   diag[b_l] += column sums of S,
 * and the factors move one layer down by one dgemm over all stacked rows,
 *     F_{l-1}(rows 0 .. ncol_l nb) = (F_l W_l) .* act'_{l-1}(Z_{l-1}),
 * with, for a curved layer l (tanh, sigmoid, softplus, gelu, elu), w_l new rows
 * per sample sqrt|R_l(i, o)| W_l(o, :) .* act'_{l-1}(Z_{l-1}(i)), sign of
 * R_l(i, o), appended after them (so each factor keeps its row index and the
 * Monte-Carlo groups stay contiguous). Factor-major stacking makes both the
 * propagation and the appending one contiguous write.
 *
 * References: Martens, "New insights and perspectives on the natural gradient
 * method" (JMLR 2020) for the GGN and the empirical Fisher; Dangel, Harmeling
 * and Hennig, "Modular block-diagonal curvature approximations for feedforward
 * architectures" (AISTATS 2020) for Hessian backpropagation; Kunstner, Balles
 * and Hennig, "Limitations of the empirical Fisher approximation" (NeurIPS
 * 2019) for the Fisher/empirical-Fisher distinction; Bekas, Kokiopoulou and
 * Saad (2007) for Hutchinson's diagonal estimator.
 */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/diag.h"
#include "internal.h"
#include "lanczos_internal.h" /* gsl_ran_gaussian_ziggurat, probe fills */
#include "mlp_internal.h"

/* ======================================================================== */
/* names and parameters                                                     */
/* ======================================================================== */

static const char *const method_names[EFFDIM_DIAG_N_METHODS] = {
    "ggn", "ggn-mc", "ef", "adam", "hutchinson", "hessian", "ivon"};

const char *effdim_diag_method_name(effdim_diag_method m)
{
    return (unsigned)m < EFFDIM_DIAG_N_METHODS ? method_names[m] : "?";
}

effdim_status effdim_diag_method_parse(const char *name, effdim_diag_method *m, effdim_error *err)
{
    for (size_t i = 0; name && i < EFFDIM_DIAG_N_METHODS; ++i)
        if (!strcmp(name, method_names[i])) {
            *m = (effdim_diag_method)i;
            return EFFDIM_OK;
        }
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "unknown diagonal method '%s' (expected ggn, ggn-mc, ef, adam, "
                            "hutchinson, hessian or ivon)",
                            name ? name : "(null)");
}

effdim_status effdim_diag_methods_parse(const char *list, effdim_diag_method *out, size_t cap,
                                        size_t *n, effdim_error *err)
{
    RETURN_ERROR_IF(!list || !*list, err, EFFDIM_EINVAL,
                    "empty list of diagonal methods (expected e.g. ggn,ef,adam)");
    char buf[256];
    RETURN_ERROR_IF(strlen(list) >= sizeof buf, err, EFFDIM_EINVAL,
                    "list of diagonal methods too long: '%.64s...'", list);
    strcpy(buf, list);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        effdim_diag_method m;
        effdim_status st = effdim_diag_method_parse(tok, &m, err);
        if (st) return st;
        for (size_t j = 0; j < *n; ++j)
            RETURN_ERROR_IF(out[j] == m, err, EFFDIM_EINVAL,
                            "diagonal method '%s' listed twice in '%s'", tok, list);
        RETURN_ERROR_IF(*n >= cap, err, EFFDIM_EINVAL, "too many diagonal methods in '%s'", list);
        out[(*n)++] = m;
    }
    RETURN_ERROR_IF(*n == 0, err, EFFDIM_EINVAL,
                    "empty list of diagonal methods '%s' (expected e.g. ggn,ef,adam)", list);
    return EFFDIM_OK;
}

effdim_diag_params effdim_diag_default_params(void)
{
    effdim_diag_params p;
    memset(&p, 0, sizeof p);
    p.mem_budget = (size_t)64 << 20;
    p.mc_samples = 1;
    p.mc_groups = 0; /* auto */
    p.seed = 0;
    p.max_cost = 256.0;
    p.force = 0;
    return p;
}

const char *effdim_probe_kind_name(effdim_probe_kind k)
{
    return k == EFFDIM_PROBE_GAUSSIAN ? "gaussian" : k == EFFDIM_PROBE_RADEMACHER ? "rademacher"
                                                                                   : "?";
}

effdim_status effdim_probe_kind_parse(const char *name, effdim_probe_kind *k, effdim_error *err)
{
    if (name && !strcmp(name, "rademacher")) *k = EFFDIM_PROBE_RADEMACHER;
    else if (name && !strcmp(name, "gaussian")) *k = EFFDIM_PROBE_GAUSSIAN;
    else
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "unknown probe distribution '%s' (expected rademacher or gaussian)",
                                name ? name : "(null)");
    return EFFDIM_OK;
}

/* ======================================================================== */
/* the factor-backpropagation engine                                        */
/* ======================================================================== */

typedef enum fb_kind { FB_GGN, FB_MC, FB_EF, FB_HESS } fb_kind;

/* Activations with a non-zero second derivative (relu's is zero a.e.). */
static int act_curved(effdim_activation a)
{
    return a != EFFDIM_ACT_IDENTITY && a != EFFDIM_ACT_RELU;
}

typedef struct fb_plan {
    fb_kind kind;
    size_t L, k, P;
    size_t ntop;                         /* factor rows per sample at the outputs */
    size_t groups;                       /* accumulators (Monte-Carlo groups; else 1) */
    size_t ncol[EFFDIM_MLP_MAX_LAYERS];  /* factor rows per sample at Z_l */
    int resid[EFFDIM_MLP_MAX_LAYERS];    /* layer l contributes residual terms */
    size_t lowest_resid;                 /* lowest curved layer (L when none) */
    size_t max_cw;                       /* max_l ncol_l * w_l */
    size_t max_ncol, max_w, max_in;      /* max ncol, max width of Z, max(d, widths) */
    size_t per_row;                      /* scratch doubles per block row */
} fb_plan;

static void fb_plan_make(const effdim_mlp *m, fb_kind kind, size_t ntop, size_t groups,
                         fb_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    size_t L = m->n_layers;
    pl->kind = kind;
    pl->L = L;
    pl->k = m->sizes[L];
    pl->P = m->n_params;
    pl->ntop = ntop;
    pl->groups = groups;
    pl->lowest_resid = L;
    for (size_t l = 0; l < L; ++l) {
        pl->resid[l] = kind == FB_HESS && act_curved(m->act[l]);
        if (pl->resid[l] && pl->lowest_resid == L) pl->lowest_resid = l;
    }
    pl->ncol[L - 1] = ntop;
    for (size_t l = L - 1; l > 0; --l)
        /* a curved layer l adds w_l factor rows below it, except above layer
         * 0, where nothing propagates further: there its residual enters the
         * diagonal directly as (R_l W_l.^2) .* act'_0^2 (one dgemm) */
        pl->ncol[l - 1] = pl->ncol[l] + (pl->resid[l] && l > 1 ? m->sizes[l + 1] : 0);
    size_t sum_w = 0;
    for (size_t l = 0; l < L; ++l) {
        size_t w = m->sizes[l + 1];
        if (pl->ncol[l] * w > pl->max_cw) pl->max_cw = pl->ncol[l] * w;
        if (pl->ncol[l] > pl->max_ncol) pl->max_ncol = pl->ncol[l];
        if (w > pl->max_w) pl->max_w = w;
        sum_w += w;
    }
    pl->max_in = pl->max_w > m->sizes[0] ? pl->max_w : m->sizes[0];
    /* F0, F1, sg0, sg1, top, S, A2, dact (+ GA, R, gz for the Hessian) */
    pl->per_row = 2 * pl->max_cw + 2 * pl->max_ncol + ntop * pl->k + pl->max_w + pl->max_in +
                  pl->max_in;
    if (kind == FB_HESS) pl->per_row += 2 * sum_w + pl->max_w + pl->max_in; /* GA, R, gz, Sx */
}

typedef struct fb_scratch {
    size_t nb;                          /* rows per block */
    void *block;                        /* the one allocation */
    double *F[2];                       /* (nb * max_cw) factor rows */
    double *sg[2];                      /* (nb * max_ncol) signs */
    double *top;                        /* (ntop * nb, k) factors at the outputs */
    double *S;                          /* (nb, max_w) per-row diagonal of Hz */
    double *A2;                         /* (nb, max_in) squared layer inputs */
    double *dact;                       /* (nb, max_in) act' of the layer below */
    double *GA[EFFDIM_MLP_MAX_LAYERS];  /* (nb, w_l) dl_i/dA_l (Hessian) */
    double *R[EFFDIM_MLP_MAX_LAYERS];   /* (nb, w_l) residual (Hessian) */
    double *gz;                         /* (nb, max_w) scratch (Hessian) */
    double *Sx;                         /* (nb, sizes[1]) residual of layer 1 at layer 0 */
    double *W2;                         /* (sizes[2], sizes[1]) W_1 .^ 2, or NULL */
    double *acc;                        /* (groups - 1, P) extra accumulators or NULL */
} fb_scratch;

static void fb_scratch_free(fb_scratch *s)
{
    free(s->block);
    free(s->acc);
    free(s->W2);
    memset(s, 0, sizeof *s);
}

static effdim_status fb_scratch_alloc(const effdim_mlp *m, const fb_plan *pl, size_t chunk,
                                      size_t budget, fb_scratch *s, effdim_error *err)
{
    memset(s, 0, sizeof *s);
    size_t nb = budget / (8 * pl->per_row);
    if (nb < 1) nb = 1;
    if (nb > chunk) nb = chunk;
    /* BLAS takes int sizes: the stacked rows are ncol * nb */
    while (nb > 1 && nb * pl->max_ncol > (size_t)INT_MAX) nb /= 2;
    RETURN_ERROR_IF(nb * pl->max_ncol > (size_t)INT_MAX, err, EFFDIM_EINVAL,
                    "diagonal: %zu curvature factors per row is more than BLAS can take",
                    pl->max_ncol);
    size_t total;
    if (effdim_mul_size(nb, pl->per_row, &total))
        return effdim_error_set(err, EFFDIM_ENOMEM, "diagonal: scratch size overflows");
    s->block = effdim_alloc(total, sizeof(double), "diagonal factor scratch", err);
    if (!s->block) return EFFDIM_ENOMEM;
    s->nb = nb;
    double *p = s->block;
    for (int b = 0; b < 2; ++b) {
        s->F[b] = p;
        p += nb * pl->max_cw;
    }
    for (int b = 0; b < 2; ++b) {
        s->sg[b] = p;
        p += nb * pl->max_ncol;
    }
    s->top = p;
    p += nb * pl->ntop * pl->k;
    s->S = p;
    p += nb * pl->max_w;
    s->A2 = p;
    p += nb * pl->max_in;
    s->dact = p;
    p += nb * pl->max_in;
    if (pl->kind == FB_HESS) {
        for (size_t l = 0; l < pl->L; ++l) {
            s->GA[l] = p;
            p += nb * m->sizes[l + 1];
            s->R[l] = p;
            p += nb * m->sizes[l + 1];
        }
        s->gz = p;
        p += nb * pl->max_w;
        s->Sx = p;
        if (pl->L > 1 && pl->resid[1]) {
            size_t w1 = m->sizes[2] * m->sizes[1];
            s->W2 = effdim_alloc(w1, sizeof(double), "squared weights", err);
            if (!s->W2) {
                fb_scratch_free(s);
                return EFFDIM_ENOMEM;
            }
        }
    }
    if (pl->groups > 1) {
        s->acc = effdim_calloc((pl->groups - 1) * pl->P, sizeof(double),
                               "Monte-Carlo group accumulators", err);
        if (!s->acc) {
            fb_scratch_free(s);
            return EFFDIM_ENOMEM;
        }
    }
    return EFFDIM_OK;
}

/* The rows of one block: pointers into the forward caches (row strides are
 * the widths). */
typedef struct fb_rows {
    size_t nb;                             /* rows */
    const double *X;                       /* (nb, d) */
    const double *Z[EFFDIM_MLP_MAX_LAYERS]; /* (nb, w_l) */
    const double *A[EFFDIM_MLP_MAX_LAYERS]; /* (nb, w_l) */
    const double *GF;                      /* (nb, k) dl_i/dF or NULL */
} fb_rows;

/* dact (nb, w) = act'(Z) */
static void act_deriv_rows(effdim_activation act, const double *Z, const double *A, size_t n,
                           double *dact)
{
    for (size_t t = 0; t < n; ++t) dact[t] = effdim_act_deriv(act, Z[t], A[t]);
}

/* Every stacked row r = c * nb + i (ncol * nb rows of width w) times dact[i]. */
static void rows_times_dact(double *F, size_t ncol, size_t nb, size_t w, const double *dact)
{
    for (size_t c = 0; c < ncol; ++c)
        for (size_t i = 0; i < nb; ++i) {
            double *restrict f = F + (c * nb + i) * w;
            const double *restrict d = dact + i * w;
            for (size_t o = 0; o < w; ++o) f[o] *= d[o];
        }
}

/* S (nb, w) = sum over factor rows c in [c0, c1) of sg * F^2 */
static void factor_squares(const double *F, const double *sg, size_t c0, size_t c1, size_t nb,
                           size_t w, double *S)
{
    memset(S, 0, nb * w * sizeof(double));
    for (size_t c = c0; c < c1; ++c)
        for (size_t i = 0; i < nb; ++i) {
            const double *restrict f = F + (c * nb + i) * w;
            double *restrict srow = S + i * w;
            double q = sg[c * nb + i];
            if (q == 1.0)
                for (size_t o = 0; o < w; ++o) srow[o] += f[o] * f[o];
            else
                for (size_t o = 0; o < w; ++o) srow[o] += q * f[o] * f[o];
        }
}

/* acc[W_l] += S^T (A2), acc[b_l] += column sums of S. */
static void accumulate_layer(const effdim_mlp *m, size_t l, size_t nb, const double *S,
                             const double *A2, double *acc)
{
    size_t in = m->sizes[l], w = m->sizes[l + 1];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)w, (int)in, (int)nb, 1.0, S, (int)w,
                A2, (int)in, 1.0, acc + m->w_off[l], (int)in);
    double *restrict gb = acc + m->b_off[l];
    for (size_t i = 0; i < nb; ++i)
        for (size_t o = 0; o < w; ++o) gb[o] += S[i * w + o];
}

/* Hessian: dl_i/dA_l for the layers down to the lowest curved one, and the
 * residuals R_l = dl_i/dA_l * act_l''(Z_l) of the curved layers. */
static void hess_residuals(const effdim_mlp *m, const double *theta, const fb_plan *pl,
                           const fb_rows *r, fb_scratch *s)
{
    size_t L = pl->L, nb = r->nb;
    memcpy(s->GA[L - 1], r->GF, nb * pl->k * sizeof(double));
    for (size_t l = L; l-- > pl->lowest_resid;) {
        size_t w = m->sizes[l + 1];
        if (pl->resid[l]) {
            for (size_t t = 0; t < nb * w; ++t)
                s->R[l][t] = s->GA[l][t] * effdim_act_deriv2(m->act[l], r->Z[l][t], r->A[l][t]);
        }
        if (l == pl->lowest_resid) break;
        /* dl/dA_{l-1} (nb, in) = (dl/dA_l .* act'_l) (nb, w) W_l (w, in) */
        size_t in = m->sizes[l];
        for (size_t t = 0; t < nb * w; ++t)
            s->gz[t] = s->GA[l][t] * effdim_act_deriv(m->act[l], r->Z[l][t], r->A[l][t]);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)in, (int)w, 1.0,
                    s->gz, (int)w, theta + m->w_off[l], (int)in, 0.0, s->GA[l - 1], (int)in);
    }
}

/* Group g's accumulator: group 0 writes the caller's diag. */
static double *group_acc(const fb_plan *pl, fb_scratch *s, double *diag, size_t g)
{
    return g == 0 ? diag : s->acc + (g - 1) * pl->P;
}

/* The factors in s->top (ntop * nb, k) are carried down through one block of
 * rows, accumulating the diagonal. */
static void fb_block(const effdim_mlp *m, const double *theta, const fb_plan *pl,
                     const fb_rows *r, fb_scratch *s, double *diag)
{
    size_t L = pl->L, nb = r->nb, k = pl->k;
    int cur = 0;
    /* factors at Z_{L-1}: top .* act'_{L-1} */
    memcpy(s->F[cur], s->top, pl->ntop * nb * k * sizeof(double));
    for (size_t t = 0; t < pl->ntop * nb; ++t) s->sg[cur][t] = 1.0;
    if (m->act[L - 1] != EFFDIM_ACT_IDENTITY) {
        act_deriv_rows(m->act[L - 1], r->Z[L - 1], r->A[L - 1], nb * k, s->dact);
        rows_times_dact(s->F[cur], pl->ntop, nb, k, s->dact);
    }
    for (size_t l = L; l-- > 0;) {
        size_t w = m->sizes[l + 1], in = m->sizes[l], ncol = pl->ncol[l];
        /* squared inputs of layer l */
        const double *a = l ? r->A[l - 1] : r->X;
        for (size_t t = 0; t < nb * in; ++t) s->A2[t] = a[t] * a[t];
        size_t per = pl->ntop / pl->groups;
        for (size_t g = 0; g < pl->groups; ++g) {
            size_t c0 = g * per, c1 = pl->groups == 1 ? ncol : (g + 1) * per;
            factor_squares(s->F[cur], s->sg[cur], c0, c1, nb, w, s->S);
            if (pl->resid[l])
                for (size_t t = 0; t < nb * w; ++t) s->S[t] += s->R[l][t];
            if (l == 0 && s->W2) /* layer 1's residual, not materialised */
                for (size_t t = 0; t < nb * w; ++t) s->S[t] += s->Sx[t];
            accumulate_layer(m, l, nb, s->S, s->A2, group_acc(pl, s, diag, g));
        }
        if (l == 0) break;
        /* one layer down: F' (ncol * nb, in) = F (ncol * nb, w) W_l (w, in) */
        int nxt = 1 - cur;
        const double *W = theta + m->w_off[l];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(ncol * nb), (int)in, (int)w,
                    1.0, s->F[cur], (int)w, W, (int)in, 0.0, s->F[nxt], (int)in);
        memcpy(s->sg[nxt], s->sg[cur], ncol * nb * sizeof(double));
        if (pl->resid[l] && l == 1) /* Sx (nb, in) = R_1 (nb, w) (W_1 .^ 2) (w, in) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)in, (int)w, 1.0,
                        s->R[l], (int)w, s->W2, (int)in, 0.0, s->Sx, (int)in);
        if (pl->resid[l] && l > 1) { /* w new rows per sample: sqrt|R(i, o)| W(o, :) */
            for (size_t o = 0; o < w; ++o)
                for (size_t i = 0; i < nb; ++i) {
                    size_t row = (ncol + o) * nb + i;
                    double rv = s->R[l][i * w + o], q = sqrt(fabs(rv));
                    double *restrict f = s->F[nxt] + row * in;
                    const double *restrict wr = W + o * in;
                    for (size_t j = 0; j < in; ++j) f[j] = q * wr[j];
                    s->sg[nxt][row] = rv < 0.0 ? -1.0 : 1.0;
                }
        }
        effdim_activation act = m->act[l - 1];
        if (act != EFFDIM_ACT_IDENTITY) {
            act_deriv_rows(act, r->Z[l - 1], r->A[l - 1], nb * in, s->dact);
            rows_times_dact(s->F[nxt], pl->ncol[l - 1], nb, in, s->dact);
            if (pl->resid[l] && l == 1)
                for (size_t t = 0; t < nb * in; ++t) s->Sx[t] *= s->dact[t] * s->dact[t];
        }
        cur = nxt;
    }
}

/* ---- the factors at the outputs, per estimator ---- */

/* p (k) = softmax(f) */
static void softmax(const double *f, size_t k, double *p)
{
    double mx = f[0], sum = 0.0;
    for (size_t j = 1; j < k; ++j) mx = f[j] > mx ? f[j] : mx;
    for (size_t j = 0; j < k; ++j) sum += (p[j] = exp(f[j] - mx));
    for (size_t j = 0; j < k; ++j) p[j] /= sum;
}

/* 2c: the mse per-sample loss Hessian is 2c I, c = 1/k (mean) or 1 (sum) */
static double mse_curv(const effdim_mlp *m)
{
    return 2.0 * (m->reduction == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)m->sizes[m->n_layers] : 1.0);
}

/* GGN (and the Hessian's Gauss-Newton part): C = k factors per row,
 * cross-entropy sqrt(p_c)(e_c - p), mse sqrt(2c) e_c, bce (k = 1)
 * sqrt(p (1 - p)). */
static void top_ggn(const effdim_mlp *m, const fb_rows *r, double *top, double *p)
{
    size_t k = m->sizes[m->n_layers], nb = r->nb;
    if (m->loss == EFFDIM_LOSS_BCE) {
        for (size_t i = 0; i < nb; ++i) {
            double q = effdim_act_value(EFFDIM_ACT_SIGMOID, r->A[m->n_layers - 1][i]);
            top[i] = sqrt(q * (1.0 - q));
        }
        return;
    }
    if (m->loss == EFFDIM_LOSS_MSE) {
        double q = sqrt(mse_curv(m));
        memset(top, 0, k * nb * k * sizeof(double));
        for (size_t c = 0; c < k; ++c)
            for (size_t i = 0; i < nb; ++i) top[(c * nb + i) * k + c] = q;
        return;
    }
    for (size_t i = 0; i < nb; ++i) {
        softmax(r->A[m->n_layers - 1] + i * k, k, p);
        for (size_t c = 0; c < k; ++c) {
            double *t = top + (c * nb + i) * k, q = sqrt(p[c]);
            for (size_t j = 0; j < k; ++j) t[j] = -q * p[j];
            t[c] += q;
        }
    }
}

/* Monte-Carlo: S factors per row, drawn row by row in selection order so the
 * draws do not depend on the chunking. bce: y ~ Bernoulli(p), factor p - y
 * (E[(p - y)^2] = p (1 - p)). */
static void top_mc(const effdim_mlp *m, const fb_rows *r, size_t S, gsl_rng *rng, double *top,
                   double *p)
{
    size_t k = m->sizes[m->n_layers], nb = r->nb;
    double q = sqrt(mse_curv(m));
    for (size_t i = 0; i < nb; ++i) {
        if (m->loss == EFFDIM_LOSS_CROSS_ENTROPY) softmax(r->A[m->n_layers - 1] + i * k, k, p);
        for (size_t smp = 0; smp < S; ++smp) {
            double *t = top + (smp * nb + i) * k;
            if (m->loss == EFFDIM_LOSS_BCE) {
                double pb = effdim_act_value(EFFDIM_ACT_SIGMOID, r->A[m->n_layers - 1][i]);
                t[0] = pb - (gsl_rng_uniform(rng) < pb ? 1.0 : 0.0);
                continue;
            }
            if (m->loss == EFFDIM_LOSS_MSE) {
                for (size_t j = 0; j < k; ++j) t[j] = q * gsl_ran_gaussian_ziggurat(rng, 1.0);
                continue;
            }
            double u = gsl_rng_uniform(rng), cum = 0.0;
            size_t y = k - 1;
            for (size_t j = 0; j < k; ++j) {
                cum += p[j];
                if (u < cum) {
                    y = j;
                    break;
                }
            }
            for (size_t j = 0; j < k; ++j) t[j] = p[j];
            t[y] -= 1.0;
        }
    }
}

/* ---- the driver ---- */

typedef struct fb_call {
    const effdim_mlp *m;
    const double *theta;
    const effdim_dataset *ds;
    const size_t *rows;
    size_t n_rows;
    const effdim_diag_params *p;
    effdim_mlp_ws *ws;
} fb_call;

static effdim_status fb_check(const fb_call *c, double *diag, effdim_error *err)
{
    RETURN_ERROR_IF(!c->m || !c->theta || !c->ds || !diag, err, EFFDIM_EINVAL,
                    "diagonal: network, parameters, data or output is NULL");
    RETURN_ERROR_IF(c->n_rows == 0, err, EFFDIM_EINVAL, "diagonal: no rows to work on");
    effdim_status st = effdim_mlp_check_call(c->m, c->ds, c->rows, c->n_rows, err);
    if (st) return st;
    for (size_t l = 0; l <= c->m->n_layers; ++l)
        RETURN_ERROR_IF(c->m->sizes[l] > (size_t)INT_MAX, err, EFFDIM_EINVAL,
                        "network: sizes[%zu] = %zu, BLAS takes at most %d", l, c->m->sizes[l],
                        INT_MAX);
    return c->ws ? effdim_mlp_ws_check(c->m, c->ws, err) : EFFDIM_OK;
}

/* One pass over the rows: forward per chunk, the estimator's output factors
 * per block, fb_block. acc[0] = diag receives s * sum (not yet divided by the
 * per-group factor count). */
static effdim_status fb_run(const fb_call *c, const fb_plan *pl, fb_scratch *s, gsl_rng *rng,
                            double *diag, effdim_mlp_ws *ws, effdim_error *err)
{
    const effdim_mlp *m = c->m;
    size_t L = m->n_layers, k = pl->k, chunk = effdim_mlp_ws_chunk(ws);
    int want_delta = pl->kind == FB_EF || pl->kind == FB_HESS;
    double *prob = effdim_alloc(k, sizeof(double), "class probabilities", err);
    if (!prob) return EFFDIM_ENOMEM;
    effdim_status st = EFFDIM_OK;
    memset(diag, 0, pl->P * sizeof(double));
    for (size_t start = 0; start < c->n_rows && !st; start += chunk) {
        size_t len = c->n_rows - start < chunk ? c->n_rows - start : chunk;
        effdim_mlp_chunk ch;
        double part = 0.0;
        st = effdim_mlp_chunk_load(c->ds, c->rows, start, len, ws, &ch, err);
        if (st) break;
        effdim_mlp_forward(m, c->theta, ch.X, len, ws);
        st = effdim_mlp_output(m, &ch, 1.0, want_delta, ws, &part, err);
        if (st) break;
        for (size_t b0 = 0; b0 < len; b0 += s->nb) {
            fb_rows r;
            r.nb = len - b0 < s->nb ? len - b0 : s->nb;
            r.X = ch.X + b0 * m->sizes[0];
            for (size_t l = 0; l < L; ++l) {
                r.Z[l] = ws->Z[l] + b0 * m->sizes[l + 1];
                r.A[l] = ws->A[l] + b0 * m->sizes[l + 1];
            }
            r.GF = want_delta ? ws->D[L - 1] + b0 * k : NULL;
            switch (pl->kind) {
            case FB_GGN: top_ggn(m, &r, s->top, prob); break;
            case FB_HESS:
                top_ggn(m, &r, s->top, prob);
                hess_residuals(m, c->theta, pl, &r, s);
                break;
            case FB_MC: top_mc(m, &r, pl->ntop, rng, s->top, prob); break;
            case FB_EF: memcpy(s->top, r.GF, r.nb * k * sizeof(double)); break;
            }
            fb_block(m, c->theta, pl, &r, s, diag);
        }
    }
    free(prob);
    return st;
}

static effdim_status fb_estimate(const fb_call *c, fb_kind kind, size_t ntop, size_t groups,
                                 gsl_rng *rng, double *diag, double *se, effdim_error *err)
{
    effdim_status st = fb_check(c, diag, err);
    if (st) return st;
    fb_plan pl;
    fb_plan_make(c->m, kind, ntop, groups, &pl);
    effdim_mlp_ws *ws = c->ws, *own = NULL;
    if (!ws && !(ws = own = effdim_mlp_ws_alloc(c->m, 0, err))) return err ? err->code : EFFDIM_ENOMEM;
    size_t budget = c->p ? c->p->mem_budget : effdim_diag_default_params().mem_budget;
    fb_scratch s;
    st = fb_scratch_alloc(c->m, &pl, effdim_mlp_ws_chunk(ws), budget, &s, err);
    if (!st && s.W2) {
        const double *W1 = c->theta + c->m->w_off[1];
        for (size_t j = 0; j < c->m->sizes[2] * c->m->sizes[1]; ++j) s.W2[j] = W1[j] * W1[j];
    }
    if (!st) st = fb_run(c, &pl, &s, rng, diag, ws, err);
    if (!st) {
        size_t P = pl.P, per = ntop / groups;
        double scale = effdim_mlp_loss_scale(c->m, c->n_rows) / (kind == FB_MC ? (double)per : 1.0);
        for (size_t g = 0; g < groups; ++g) {
            double *a = group_acc(&pl, &s, diag, g);
            for (size_t j = 0; j < P; ++j) a[j] *= scale;
        }
        if (groups > 1) { /* diag = mean of the group means; se from their spread */
            for (size_t j = 0; j < P; ++j) {
                double mean = diag[j];
                for (size_t g = 1; g < groups; ++g) mean += s.acc[(g - 1) * P + j];
                mean /= (double)groups;
                double ss = (diag[j] - mean) * (diag[j] - mean);
                for (size_t g = 1; g < groups; ++g) {
                    double d = s.acc[(g - 1) * P + j] - mean;
                    ss += d * d;
                }
                diag[j] = mean;
                if (se) se[j] = sqrt(ss / (double)(groups - 1) / (double)groups);
            }
        } else if (se) {
            for (size_t j = 0; j < P; ++j) se[j] = (double)NAN;
        }
    }
    fb_scratch_free(&s);
    effdim_mlp_ws_free(own);
    return st;
}

effdim_status effdim_diag_ggn(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                              const size_t *rows, size_t n_rows, const effdim_diag_params *p,
                              double *diag, effdim_mlp_ws *ws, effdim_error *err)
{
    fb_call c = {m, theta, ds, rows, n_rows, p, ws};
    RETURN_ERROR_IF(!m, err, EFFDIM_EINVAL, "diagonal: network is NULL");
    return fb_estimate(&c, FB_GGN, m->sizes[m->n_layers], 1, NULL, diag, NULL, err);
}

effdim_status effdim_diag_ef(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                             const size_t *rows, size_t n_rows, const effdim_diag_params *p,
                             double *diag, effdim_mlp_ws *ws, effdim_error *err)
{
    fb_call c = {m, theta, ds, rows, n_rows, p, ws};
    RETURN_ERROR_IF(!m, err, EFFDIM_EINVAL, "diagonal: network is NULL");
    return fb_estimate(&c, FB_EF, 1, 1, NULL, diag, NULL, err);
}

/* Largest divisor of S that is at most 8. */
static size_t auto_groups(size_t S)
{
    for (size_t g = 8; g > 1; --g)
        if (S % g == 0) return g;
    return 1;
}

effdim_status effdim_diag_ggn_mc(const effdim_mlp *m, const double *theta,
                                 const effdim_dataset *ds, const size_t *rows, size_t n_rows,
                                 const effdim_diag_params *p, double *diag, double *se,
                                 effdim_mlp_ws *ws, effdim_error *err)
{
    effdim_diag_params d = p ? *p : effdim_diag_default_params();
    RETURN_ERROR_IF(!m, err, EFFDIM_EINVAL, "diagonal: network is NULL");
    RETURN_ERROR_IF(d.mc_samples == 0, err, EFFDIM_EINVAL,
                    "ggn-mc: mc_samples = 0, expected at least 1");
    size_t groups = d.mc_groups ? d.mc_groups : auto_groups(d.mc_samples);
    RETURN_ERROR_IF(d.mc_samples % groups != 0, err, EFFDIM_EINVAL,
                    "ggn-mc: %zu groups do not divide %zu samples", groups, d.mc_samples);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    RETURN_ERROR_IF(!rng, err, EFFDIM_ENOMEM, "ggn-mc: cannot allocate the random generator");
    gsl_rng_set(rng, (unsigned long)d.seed);
    fb_call c = {m, theta, ds, rows, n_rows, &d, ws};
    effdim_status st = fb_estimate(&c, FB_MC, d.mc_samples, groups, rng, diag, se, err);
    gsl_rng_free(rng);
    return st;
}

double effdim_diag_hessian_cost(const effdim_mlp *m, size_t *max_factors)
{
    fb_plan pl;
    fb_plan_make(m, FB_HESS, m->sizes[m->n_layers], 1, &pl);
    double fwd = 0.0, prop = 0.0, ga = 0.0, deltas = 0.0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        double wi = (double)m->sizes[l + 1] * (double)m->sizes[l];
        fwd += wi;
        prop += 2.0 * (double)pl.ncol[l] * (double)m->sizes[l + 1]; /* act' and squares */
        if (l > 0) {
            prop += (double)pl.ncol[l] * wi;
            if (l == 1 && pl.resid[1]) prop += wi; /* layer 1's residual at layer 0 */
            deltas += wi;
            if (l > pl.lowest_resid) ga += wi;
        }
    }
    if (max_factors) *max_factors = pl.ncol[0];
    /* forward + squared dgemms + propagation (with the elementwise work on
     * the factor rows) + dl/dA, over forward + weight gradients + deltas */
    return (fwd + fwd + prop + ga) / (2.0 * fwd + deltas);
}

effdim_status effdim_diag_hessian_check(const effdim_mlp *m, const effdim_diag_params *p,
                                        effdim_error *err)
{
    effdim_diag_params d = p ? *p : effdim_diag_default_params();
    RETURN_ERROR_IF(!m, err, EFFDIM_EINVAL, "diagonal: network is NULL");
    size_t nf = 0;
    double cost = effdim_diag_hessian_cost(m, &nf);
    RETURN_ERROR_IF(!d.force && cost > d.max_cost, err, EFFDIM_EINVAL,
                    "hessian: the exact diagonal of this network (%zu parameters, %zu curvature "
                    "factors per row at the first layer) costs about %.3g gradients, more than "
                    "the limit of %g; force it (--force) or use hutchinson",
                    m->n_params, nf, cost, d.max_cost);
    return EFFDIM_OK;
}

effdim_status effdim_diag_hessian(const effdim_mlp *m, const double *theta,
                                  const effdim_dataset *ds, const size_t *rows, size_t n_rows,
                                  const effdim_diag_params *p, double *diag, effdim_mlp_ws *ws,
                                  effdim_error *err)
{
    effdim_diag_params d = p ? *p : effdim_diag_default_params();
    effdim_status st = effdim_diag_hessian_check(m, &d, err);
    if (st) return st;
    fb_call c = {m, theta, ds, rows, n_rows, &d, ws};
    return fb_estimate(&c, FB_HESS, m->sizes[m->n_layers], 1, NULL, diag, NULL, err);
}

/* ======================================================================== */
/* through an operator                                                      */
/* ======================================================================== */

effdim_hutchinson_diag_params effdim_hutchinson_diag_default_params(void)
{
    effdim_hutchinson_diag_params p;
    memset(&p, 0, sizeof p);
    p.probe = EFFDIM_PROBE_RADEMACHER;
    p.min_probes = 10;
    p.max_probes = 200;
    p.block = 4;
    p.rel_se = 0.05;
    p.seed = 0;
    return p;
}

static effdim_status hutch_check(const effdim_operator *op, const effdim_hutchinson_diag_params *p,
                                 const double *diag, effdim_error *err)
{
    RETURN_ERROR_IF(!op || !p || !diag, err, EFFDIM_EINVAL,
                    "hutchinson: operator, parameters or output is NULL");
    RETURN_ERROR_IF(p->min_probes < 2, err, EFFDIM_EINVAL,
                    "hutchinson: min_probes = %zu, expected at least 2 (for a standard error)",
                    p->min_probes);
    RETURN_ERROR_IF(p->max_probes < p->min_probes, err, EFFDIM_EINVAL,
                    "hutchinson: max_probes = %zu, expected at least min_probes = %zu",
                    p->max_probes, p->min_probes);
    RETURN_ERROR_IF(p->block == 0, err, EFFDIM_EINVAL, "hutchinson: block = 0, expected >= 1");
    RETURN_ERROR_IF(!(p->rel_se >= 0.0) || !isfinite(p->rel_se), err, EFFDIM_EINVAL,
                    "hutchinson: rel_se = %g, expected a finite value >= 0", p->rel_se);
    RETURN_ERROR_IF(p->probe != EFFDIM_PROBE_RADEMACHER && p->probe != EFFDIM_PROBE_GAUSSIAN, err,
                    EFFDIM_EINVAL, "hutchinson: unknown probe distribution %d", (int)p->probe);
    return EFFDIM_OK;
}

static void fill_probes(gsl_rng *rng, effdim_probe_kind kind, double *V, size_t count)
{
    if (kind == EFFDIM_PROBE_GAUSSIAN) effdim_fill_gaussian(rng, V, count);
    else effdim_fill_rademacher(rng, V, count);
}

/* ||se||_2 / ||mean||_2 from the Welford sums after np probes */
static double hutch_rel_se(const double *mean, const double *M2, size_t n, size_t np)
{
    double se2 = 0.0, nrm2 = 0.0;
    for (size_t j = 0; j < n; ++j) {
        se2 += M2[j] / ((double)(np - 1) * (double)np);
        nrm2 += mean[j] * mean[j];
    }
    if (nrm2 == 0.0) return se2 == 0.0 ? 0.0 : (double)INFINITY;
    return sqrt(se2 / nrm2);
}

/* One progress event after np probes. The time left: to the rel_se target
 * when one is set (the relative standard error falls as 1/sqrt(probes), so
 * about np (rel/target)^2 probes in all, at most max_probes), else to
 * max_probes. */
static int hutch_report(const effdim_hutchinson_diag_params *p, double t0, size_t np, double rel)
{
    if (!p->progress.fn) return 0;
    double want = (double)p->max_probes;
    if (p->rel_se > 0.0 && isfinite(rel)) {
        double need = (double)np * (rel / p->rel_se) * (rel / p->rel_se);
        want = fmin(want, fmax(need, (double)p->min_probes));
    }
    double el = effdim_progress_clock() - t0;
    double eta = want > (double)np ? el * (want - (double)np) / (double)np : 0.0;
    return effdim_progress_report(&p->progress, "hutchinson", t0, np, p->max_probes, eta,
                                  "probes, relative se %.3g", rel);
}

effdim_status effdim_diag_hutchinson(effdim_operator *op, const effdim_hutchinson_diag_params *p,
                                     double *diag, double *se, effdim_hutchinson_diag_result *res,
                                     effdim_error *err)
{
    effdim_status st = hutch_check(op, p, diag, err);
    if (st) return st;
    size_t n = op->n, b = p->block < p->max_probes ? p->block : p->max_probes;
    double t0 = effdim_now();
    size_t vecs0 = op->vectors;
    double *V = effdim_alloc(2 * b * n + n, sizeof(double), "hutchinson probes", err);
    if (!V) return EFFDIM_ENOMEM;
    double *Y = V + b * n, *M2 = Y + b * n;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        free(V);
        return effdim_error_set(err, EFFDIM_ENOMEM, "hutchinson: cannot allocate the generator");
    }
    gsl_rng_set(rng, (unsigned long)p->seed);
    memset(diag, 0, n * sizeof(double));
    memset(M2, 0, n * sizeof(double));
    size_t np = 0;
    double tmean = 0.0, tM2 = 0.0, rel = (double)INFINITY;
    int converged = 0, interrupted = 0;
    while (np < p->max_probes) {
        size_t nv = p->max_probes - np < b ? p->max_probes - np : b;
        fill_probes(rng, p->probe, V, nv * n);
        st = effdim_operator_apply(op, nv, V, n, Y, n, err);
        if (st) break;
        for (size_t r = 0; r < nv; ++r) {
            const double *v = V + r * n, *y = Y + r * n;
            double tr = 0.0;
            ++np;
            for (size_t j = 0; j < n; ++j) {
                double x = v[j] * y[j], delta = x - diag[j];
                diag[j] += delta / (double)np;
                M2[j] += delta * (x - diag[j]);
                tr += x;
            }
            double dt = tr - tmean;
            tmean += dt / (double)np;
            tM2 += dt * (tr - tmean);
        }
        rel = hutch_rel_se(diag, M2, n, np);
        int stop = hutch_report(p, t0, np, rel);
        if (np >= p->min_probes && p->rel_se > 0.0 && rel <= p->rel_se) {
            converged = 1;
            break;
        }
        if (stop) {
            interrupted = 1;
            break;
        }
    }
    if (!st) {
        if (se)
            for (size_t j = 0; j < n; ++j) se[j] = sqrt(M2[j] / ((double)(np - 1) * (double)np));
        if (res) {
            res->probes = np;
            res->rel_se = rel;
            res->trace = tmean;
            res->trace_se = sqrt(tM2 / ((double)(np - 1) * (double)np));
            res->matvecs = op->vectors - vecs0;
            res->seconds = effdim_now() - t0;
            res->converged = converged; /* 0 without a target: nothing was tested */
        }
        if (interrupted)
            st = effdim_error_set(err, EFFDIM_EMAXITER, "hutchinson: interrupted after %zu probes",
                                  np);
        else if (!converged && p->rel_se > 0.0)
            st = effdim_error_set(err, EFFDIM_EMAXITER,
                                  "hutchinson: relative standard error %.3g after %zu probes, "
                                  "target %.3g not reached",
                                  rel, np, p->rel_se);
    }
    gsl_rng_free(rng);
    free(V);
    return st;
}

effdim_status effdim_diag_of_operator(effdim_operator *op, size_t block, double *diag,
                                      effdim_error *err)
{
    RETURN_ERROR_IF(!op || !diag, err, EFFDIM_EINVAL, "diagonal of operator: NULL argument");
    size_t n = op->n, b = block ? block : 16;
    if (b > n) b = n;
    double *E = effdim_calloc(2 * b * n, sizeof(double), "unit vectors", err);
    if (!E) return EFFDIM_ENOMEM;
    double *Y = E + b * n;
    effdim_status st = EFFDIM_OK;
    for (size_t j0 = 0; j0 < n && !st; j0 += b) {
        size_t nv = n - j0 < b ? n - j0 : b;
        for (size_t r = 0; r < nv; ++r) E[r * n + j0 + r] = 1.0;
        st = effdim_operator_apply(op, nv, E, n, Y, n, err);
        for (size_t r = 0; r < nv; ++r) {
            E[r * n + j0 + r] = 0.0;
            if (!st) diag[j0 + r] = Y[r * n + j0 + r];
        }
    }
    free(E);
    return st;
}

/* ======================================================================== */
/* from optimiser state                                                     */
/* ======================================================================== */

static const char *name_or(const char *path) { return path ? path : "checkpoint"; }

/* Training minibatch size: the caller's, else the checkpoint's /training batch. */
static size_t ckpt_batch(const effdim_checkpoint *c, size_t batch)
{
    if (batch) return batch;
    const effdim_checkpoint_attr *a = effdim_checkpoint_training_attr(c, "batch");
    if (a && !a->is_string && a->n == 1 && a->num[0] >= 1.0) return (size_t)a->num[0];
    return 0;
}

effdim_status effdim_diag_adam(const effdim_checkpoint *c, const char *path, size_t batch,
                               size_t n, double *vhat, double *badam, double *ef, int *ef_ok,
                               effdim_error *err)
{
    RETURN_ERROR_IF(!c, err, EFFDIM_EINVAL, "adam diagonal: checkpoint is NULL");
    if (ef_ok) *ef_ok = 0;
    RETURN_ERROR_IF(!c->optimizer, err, EFFDIM_ENOTFOUND,
                    "%s: /optimizer: not found (the adam diagonal needs a checkpoint trained "
                    "with adam, amsgrad or adamw)",
                    name_or(path));
    const double *v = effdim_checkpoint_state(c, "exp_avg_sq");
    RETURN_ERROR_IF(!v, err, EFFDIM_ENOTFOUND,
                    "%s: /optimizer/exp_avg_sq: not found (optimizer '%s' keeps no second "
                    "moment; the adam diagonal needs adam, amsgrad or adamw)",
                    name_or(path), c->optimizer->name);
    int64_t t = c->optimizer->step;
    RETURN_ERROR_IF(t < 1, err, EFFDIM_EDOM,
                    "%s: /optimizer: attribute 'step' = %lld, expected >= 1 (the adam diagonal "
                    "needs it for the bias correction 1 - beta2^step)",
                    name_or(path), (long long)t);
    double beta2 = NAN;
    RETURN_ERROR_IF(!effdim_checkpoint_hparam(c, "beta2", &beta2), err, EFFDIM_ENOTFOUND,
                    "%s: /optimizer: attribute 'beta2' is missing (the adam diagonal needs it for "
                    "the bias correction 1 - beta2^step; no default is assumed)",
                    name_or(path));
    RETURN_ERROR_IF(!(beta2 >= 0.0 && beta2 < 1.0), err, EFFDIM_EDOM,
                    "%s: /optimizer: beta2 = %g, expected in [0, 1)", name_or(path), beta2);
    double bc2 = 1.0 - pow(beta2, (double)t);
    size_t B = ckpt_batch(c, batch), P = c->mlp.n_params;
    int sum = c->mlp.reduction == EFFDIM_REDUCTION_SUM;
    /* v of the mean-loss gradient, and the factor to the loss scale */
    double to_mean = 1.0, to_loss = 1.0;
    if (sum) {
        RETURN_ERROR_IF((badam || ef) && (B == 0 || n == 0), err, EFFDIM_EINVAL,
                        "%s: sum reduction: the adam diagonal needs the training batch size "
                        "(/training batch) and the number of rows to reach the loss scale",
                        name_or(path));
        to_mean = B ? 1.0 / ((double)B * (double)B) : 1.0;
        to_loss = (double)n;
    }
    int ef_possible = ef && B > 0 && n > 0 && B < n;
    double ef_factor = ef_possible ? (double)B * (double)(n - 1) / (double)(n - B) : 0.0;
    for (size_t j = 0; j < P; ++j) {
        double vh = v[j] / bc2;
        if (vhat) vhat[j] = vh;
        if (badam) badam[j] = sqrt(vh * to_mean) * to_loss;
        if (ef_possible) ef[j] = vh * to_mean * ef_factor * to_loss;
    }
    if (ef_ok) *ef_ok = ef_possible;
    return EFFDIM_OK;
}

effdim_status effdim_diag_ivon(const effdim_checkpoint *c, const char *path, size_t n,
                               double *diag, effdim_error *err)
{
    RETURN_ERROR_IF(!c || !diag, err, EFFDIM_EINVAL, "ivon diagonal: NULL argument");
    const double *h = c->optimizer ? effdim_checkpoint_state(c, "hess") : NULL;
    RETURN_ERROR_IF(!h, err, EFFDIM_ENOTFOUND,
                    "%s: /optimizer/hess: not found (the ivon diagonal needs a checkpoint "
                    "trained with IVON; this one has %s%s)",
                    name_or(path), c->optimizer ? "optimizer " : "no optimizer section",
                    c->optimizer ? c->optimizer->name : "");
    int sum = c->mlp.reduction == EFFDIM_REDUCTION_SUM;
    RETURN_ERROR_IF(sum && n == 0, err, EFFDIM_EINVAL,
                    "%s: sum reduction: the ivon diagonal needs the number of rows", name_or(path));
    double f = sum ? (double)n : 1.0;
    for (size_t j = 0; j < c->mlp.n_params; ++j) diag[j] = f * h[j];
    return EFFDIM_OK;
}
