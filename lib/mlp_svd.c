/* lib/mlp_svd.c: variational linear layers (sparse variational dropout and
 * ARD; effdim/mlp_svd.h).
 *
 * Reference: D. Molchanov, A. Ashukha, D. Vetrov, "Variational Dropout
 * Sparsifies Deep Neural Networks", ICML 2017 (arXiv 1701.05369): the
 * additive reparameterisation (Section 4.1), the local reparameterisation
 * trick (Kingma, Salimans and Welling 2015), the KL approximation with
 * k1, k2, k3 (Section 4.2, eq. 14) and the threshold log alpha = 3
 * (Section 4.3). The ARD KL is the exact KL against the per-weight optimal
 * prior N(0, theta^2 + sigma^2): 0.5 log(1 + 1/alpha).
 *
 * Algorithm of effdim_svd_loss_grad, per chunk of rows:
 *   forward   Z_l = A_{l-1} Wm_l^T + b_l                  dgemm
 *             variational l: V = (A_{l-1}.^2) S2_l^T       dgemm, S2 = sigma^2 (out, in)
 *             sd = sqrt(V + 1e-8), Z_l += sd .* eps        fused
 *             A_l = act_l(Z_l)
 *   output    effdim_mlp_output with delta scale N / n_rows (lib/mlp.c)
 *   backward  D_l = dL/dA_l .* act'(Z_l), g_b += colsum(D_l), g_Wm += D_l^T A_{l-1}
 *             variational l: H = D_l .* eps ./ (2 sd), g_S2 += H^T (A_{l-1}.^2)
 *             D_{l-1} = D_l Wm_l (+ 2 A_{l-1} .* (H S2_l) when variational)
 * and once after all chunks, per variational weight, the chain rule through
 * sigma^2 = exp(clip(log sigma^2 - log(theta^2 + tiny))) theta^2 and the
 * mask of the mean path, plus beta times the KL gradient. The clip's
 * derivative is 0 outside (-L, L); inside, d sigma^2 / d log sigma^2 =
 * sigma^2 and d sigma^2 / d theta = 2 theta e^{log alpha} tiny/(theta^2 + tiny).
 *
 * Left out: convolutional layers, multi-threaded row splits (a training
 * minibatch is one chunk; full-set evaluations use the masked deterministic
 * network through lib/mlp.c, which does split).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/mlp_svd.h"
#include "internal.h"
#include "mlp_internal.h"

/* ======================================================================== */
/* settings                                                                 */
/* ======================================================================== */

static const char *const kl_names[] = {"sparsevd", "ard"};

effdim_svd effdim_svd_default(const effdim_mlp *m)
{
    effdim_svd s;
    memset(&s, 0, sizeof s);
    s.n_layers = m ? m->n_layers : 0;
    s.kl = EFFDIM_SVD_KL_SPARSEVD;
    s.clip = 10.0;
    s.tiny = 1e-15;
    s.threshold = 3.0;
    s.log_sigma2_init = -10.0;
    return s;
}

static void layout(effdim_svd *s, const effdim_mlp *m)
{
    size_t off = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        s->ls_off[l] = off;
        if (s->variational[l]) off += m->sizes[l + 1] * m->sizes[l];
    }
    s->n_weights = off;
}

effdim_status effdim_svd_set_layer(effdim_svd *s, const effdim_mlp *m, size_t l, int variational,
                                   effdim_error *err)
{
    RETURN_ERROR_IF(!s || !m, err, EFFDIM_EINVAL, "svd: NULL argument");
    RETURN_ERROR_IF(l >= m->n_layers, err, EFFDIM_EINVAL,
                    "svd: layer %zu, but the network has %zu layers", l, m->n_layers);
    s->n_layers = m->n_layers;
    s->variational[l] = variational != 0;
    layout(s, m);
    return EFFDIM_OK;
}

effdim_status effdim_svd_set_all(effdim_svd *s, const effdim_mlp *m, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !m, err, EFFDIM_EINVAL, "svd: NULL argument");
    s->n_layers = m->n_layers;
    for (size_t l = 0; l < m->n_layers; ++l) s->variational[l] = 1;
    layout(s, m);
    return EFFDIM_OK;
}

effdim_status effdim_svd_check(const effdim_svd *s, const effdim_mlp *m, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !m, err, EFFDIM_EINVAL, "svd: NULL argument");
    RETURN_ERROR_IF(s->n_layers != m->n_layers, err, EFFDIM_EINVAL,
                    "svd: described for %zu layers, the network has %zu", s->n_layers, m->n_layers);
    RETURN_ERROR_IF((unsigned)s->kl > 1u, err, EFFDIM_EINVAL, "svd: KL kind %d unknown", (int)s->kl);
    RETURN_ERROR_IF(!(s->clip > 0.0 && isfinite(s->clip)), err, EFFDIM_EINVAL,
                    "svd: log alpha clip %g, expected a finite positive bound", s->clip);
    RETURN_ERROR_IF(!(s->tiny >= 0.0 && isfinite(s->tiny)), err, EFFDIM_EINVAL,
                    "svd: tiny %g, expected a finite number >= 0", s->tiny);
    RETURN_ERROR_IF(!isfinite(s->threshold), err, EFFDIM_EINVAL,
                    "svd: threshold %g, expected a finite log alpha", s->threshold);
    RETURN_ERROR_IF(!isfinite(s->log_sigma2_init), err, EFFDIM_EINVAL,
                    "svd: log_sigma2_init %g, expected a finite number", s->log_sigma2_init);
    size_t off = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        RETURN_ERROR_IF(s->variational[l] && s->ls_off[l] != off, err, EFFDIM_EINVAL,
                        "svd: layer %zu's variances start at %zu, expected %zu", l, s->ls_off[l],
                        off);
        if (s->variational[l]) off += m->sizes[l + 1] * m->sizes[l];
    }
    RETURN_ERROR_IF(off != s->n_weights, err, EFFDIM_EINVAL,
                    "svd: %zu variational weights recorded, the layers hold %zu", s->n_weights, off);
    return EFFDIM_OK;
}

const char *effdim_svd_kl_name(effdim_svd_kl k) { return (unsigned)k < 2u ? kl_names[k] : "unknown"; }

effdim_status effdim_svd_kl_parse(const char *name, effdim_svd_kl *k, effdim_error *err)
{
    for (int i = 0; name && i < 2; ++i)
        if (!strcmp(name, kl_names[i])) {
            *k = (effdim_svd_kl)i;
            return EFFDIM_OK;
        }
    return effdim_error_set(err, EFFDIM_EINVAL, "svd KL '%s' unknown, expected sparsevd or ard",
                            name ? name : "(none)");
}

/* ======================================================================== */
/* per-weight quantities                                                    */
/* ======================================================================== */

/* log alpha unclipped; *inside = 1 when strictly inside (-L, L) */
static double raw_log_alpha(const effdim_svd *s, double theta, double ls2)
{
    return ls2 - log(theta * theta + s->tiny);
}

static double clip_la(const effdim_svd *s, double raw, int *inside)
{
    int in = raw > -s->clip && raw < s->clip;
    if (inside) *inside = in;
    if (in) return raw;
    return raw <= -s->clip ? -s->clip : s->clip;
}

double effdim_svd_log_alpha(const effdim_svd *s, double theta, double log_sigma2)
{
    return clip_la(s, raw_log_alpha(s, theta, log_sigma2), NULL);
}

static double sigmoid(double x)
{
    return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

double effdim_svd_kl_value(effdim_svd_kl k, double la, double *dkl)
{
    /* softplus(-la) and sigmoid(-la) from one exponential (the same values
     * softplus() and sigmoid() give) */
    double x = -la, e, sg, sp;
    if (x >= 0.0) {
        e = exp(-x);
        sg = 1.0 / (1.0 + e);
        sp = x > 0.0 ? x + log1p(e) : log1p(e);
    } else {
        e = exp(x);
        sg = e / (1.0 + e);
        sp = log1p(e);
    }
    double ard = 0.5 * sp, dard = -0.5 * sg;
    if (k == EFFDIM_SVD_KL_ARD) {
        if (dkl) *dkl = dard;
        return ard;
    }
    double sk = sigmoid(EFFDIM_SVD_K2 + EFFDIM_SVD_K3 * la);
    if (dkl) *dkl = -EFFDIM_SVD_K1 * EFFDIM_SVD_K3 * sk * (1.0 - sk) + dard;
    return EFFDIM_SVD_K1 - EFFDIM_SVD_K1 * sk + ard;
}

/* ======================================================================== */
/* annealing                                                                */
/* ======================================================================== */

effdim_svd_anneal effdim_svd_anneal_default(void)
{
    effdim_svd_anneal a = {EFFDIM_SVD_ANNEAL_RW_LINEAR, 5.0, 15.0};
    return a;
}

/* numbers "X" or "X,Y" after the colon */
static int parse_numbers(const char *s, double *v, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end = NULL;
        v[n++] = strtod(s, &end);
        if (end == s || !isfinite(v[n - 1])) return -1;
        s = end;
        if (*s == ',') ++s;
        else if (*s) return -1;
    }
    return *s ? -1 : n;
}

effdim_status effdim_svd_anneal_parse(const char *spec, effdim_svd_anneal *a, effdim_error *err)
{
    RETURN_ERROR_IF(!spec || !a, err, EFFDIM_EINVAL, "svd anneal: NULL argument");
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    double v[2];
    int n = colon ? parse_numbers(colon + 1, v, 2) : 0;
    effdim_svd_anneal r;
    if (len == 9 && !strncmp(spec, "rw_linear", 9) && (n == 0 || n == 2)) {
        r = effdim_svd_anneal_default();
        if (n == 2) {
            r.a = v[0];
            r.b = v[1];
        }
        if (r.a >= 0.0 && r.b > 0.0) {
            *a = r;
            return EFFDIM_OK;
        }
    } else if (len == 6 && !strncmp(spec, "linear", 6) && (n == 0 || n == 1)) {
        r.kind = EFFDIM_SVD_ANNEAL_LINEAR;
        r.a = n ? v[0] : 0.02;
        r.b = 0.0;
        if (r.a > 0.0) {
            *a = r;
            return EFFDIM_OK;
        }
    } else if (len == 8 && !strncmp(spec, "constant", 8) && (n == 0 || n == 1)) {
        r.kind = EFFDIM_SVD_ANNEAL_CONSTANT;
        r.a = n ? v[0] : 1.0;
        r.b = 0.0;
        if (r.a >= 0.0) {
            *a = r;
            return EFFDIM_OK;
        }
    }
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "KL annealing '%s' not understood, expected rw_linear[:START,LEN] "
                            "(START >= 0, LEN > 0), linear[:STEP] (STEP > 0) or constant[:BETA] "
                            "(BETA >= 0)", spec);
}

const char *effdim_svd_anneal_format(const effdim_svd_anneal *a, char *buf, size_t cap)
{
    if (a->kind == EFFDIM_SVD_ANNEAL_RW_LINEAR) snprintf(buf, cap, "rw_linear:%.17g,%.17g", a->a, a->b);
    else if (a->kind == EFFDIM_SVD_ANNEAL_LINEAR) snprintf(buf, cap, "linear:%.17g", a->a);
    else snprintf(buf, cap, "constant:%.17g", a->a);
    return buf;
}

double effdim_svd_anneal_beta(const effdim_svd_anneal *a, uint64_t epoch)
{
    double e = (double)epoch, b;
    switch (a->kind) {
    case EFFDIM_SVD_ANNEAL_RW_LINEAR: b = (e - a->a) / a->b; break;
    case EFFDIM_SVD_ANNEAL_LINEAR: b = a->a * e; break;
    default: return a->a;
    }
    return b < 0.0 ? 0.0 : b > 1.0 ? 1.0 : b;
}

/* ======================================================================== */
/* parameters, masks, metrics                                               */
/* ======================================================================== */

void effdim_svd_init_params(const effdim_svd *s, double *log_sigma2)
{
    for (size_t i = 0; i < s->n_weights; ++i) log_sigma2[i] = s->log_sigma2_init;
}

void effdim_svd_masked_theta(const effdim_mlp *m, const effdim_svd *s, const double *theta,
                             const double *log_sigma2, double *out)
{
    if (out != theta) memcpy(out, theta, m->n_params * sizeof *out);
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (!s->variational[l]) continue;
        size_t nw = m->sizes[l + 1] * m->sizes[l];
        const double *ls = log_sigma2 + s->ls_off[l];
        double *w = out + m->w_off[l];
        for (size_t k = 0; k < nw; ++k)
            if (effdim_svd_log_alpha(s, w[k], ls[k]) >= s->threshold) w[k] = 0.0;
    }
}

void effdim_svd_compute_metrics(const effdim_mlp *m, const effdim_svd *s, const double *theta,
                                const double *log_sigma2, effdim_svd_metrics *out)
{
    memset(out, 0, sizeof *out);
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t nw = m->sizes[l + 1] * m->sizes[l];
        const double *w = theta + m->w_off[l];
        out->weights += nw;
        out->sparsity[l] = (double)NAN;
        if (!s->variational[l]) {
            for (size_t k = 0; k < nw; ++k) out->nonzero += w[k] != 0.0;
            continue;
        }
        const double *ls = log_sigma2 + s->ls_off[l];
        size_t drop = 0;
        for (size_t k = 0; k < nw; ++k) {
            double la = effdim_svd_log_alpha(s, w[k], ls[k]);
            out->kl += effdim_svd_kl_value(s->kl, la, NULL);
            if (la >= s->threshold) ++drop;
            else out->nonzero += w[k] != 0.0;
        }
        out->dropped[l] = drop;
        out->sparsity[l] = (double)drop / (double)nw;
    }
    out->compression = out->nonzero ? (double)out->weights / (double)out->nonzero : (double)INFINITY;
}

/* ======================================================================== */
/* learned variances against a curvature diagonal                           */
/* ======================================================================== */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the q-quantile of sorted v (n >= 1), linear interpolation */
static double quantile(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* Pearson correlation of x and y and the median of y - x over n >= 1 pairs
 * (tmp: n doubles of scratch). */
static void pair_stats(const double *x, const double *y, size_t n, double *tmp, double *pearson,
                       double *median_diff)
{
    double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; ++i) {
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
        sxy += (x[i] - mx) * (y[i] - my);
        tmp[i] = y[i] - x[i];
    }
    *pearson = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : (double)NAN;
    qsort(tmp, n, sizeof *tmp, cmp_double);
    *median_diff = quantile(tmp, n, 0.5);
}

effdim_status effdim_svd_compare_variances(const effdim_mlp *m, const effdim_svd *s,
                                           const double *theta, const double *log_sigma2,
                                           const double *curv, double N, double prior,
                                           size_t n_bins, double *x, double *y,
                                           effdim_svd_variance_cmp *out, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !s || !theta || !log_sigma2 || !curv || !out, err, EFFDIM_EINVAL,
                    "svd variances: NULL argument");
    RETURN_ERROR_IF(!(N > 0.0) || !(prior >= 0.0) || !isfinite(prior), err, EFFDIM_EINVAL,
                    "svd variances: N = %g, prior = %g, expected N > 0 and a finite prior >= 0", N,
                    prior);
    RETURN_ERROR_IF(n_bins < 1 || n_bins > EFFDIM_SVD_CMP_MAX_BINS, err, EFFDIM_EINVAL,
                    "svd variances: %zu bins, expected 1 to %d", n_bins, EFFDIM_SVD_CMP_MAX_BINS);
    memset(out, 0, sizeof *out);
    size_t W = s->n_weights;
    double *buf = effdim_alloc(3 * (W ? W : 1), sizeof *buf, "svd variance pairs", err);
    if (!buf) return EFFDIM_ENOMEM;
    double *px = x ? x : buf, *py = y ? y : buf + W, *tmp = buf + 2 * W;
    size_t n = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        out->layer_first[l] = n;
        if (!s->variational[l]) continue;
        size_t nw = m->sizes[l + 1] * m->sizes[l];
        const double *w = theta + m->w_off[l], *ls = log_sigma2 + s->ls_off[l];
        const double *c = curv + m->w_off[l];
        for (size_t k = 0; k < nw; ++k) {
            double la = effdim_svd_log_alpha(s, w[k], ls[k]);
            if (la >= s->threshold) {
                ++out->n_dropped;
                continue;
            }
            double prec = N * c[k] + prior, s2 = exp(la) * w[k] * w[k];
            if (!(prec > 0.0) || !(s2 > 0.0)) {
                ++out->n_flat;
                continue;
            }
            px[n] = -log10(prec);
            py[n] = log10(s2);
            ++n;
        }
        out->layer_n[l] = n - out->layer_first[l];
    }
    out->n = n;
    if (n == 0) {
        free(buf);
        return effdim_error_set(err, EFFDIM_EDOM, "svd variances: no kept weight with positive "
                                "curvature to compare (%zu dropped, %zu flat)", out->n_dropped,
                                out->n_flat);
    }
    double lo = px[0], hi = px[0];
    size_t above = 0;
    for (size_t i = 0; i < n; ++i) {
        lo = px[i] < lo ? px[i] : lo;
        hi = px[i] > hi ? px[i] : hi;
        above += py[i] > px[i];
    }
    pair_stats(px, py, n, tmp, &out->pearson, &out->median_diff);
    for (size_t l = 0; l < m->n_layers; ++l) {
        out->layer_pearson[l] = out->layer_median_diff[l] = (double)NAN;
        size_t f = out->layer_first[l];
        if (out->layer_n[l])
            pair_stats(px + f, py + f, out->layer_n[l], tmp, &out->layer_pearson[l],
                       &out->layer_median_diff[l]);
    }
    out->frac_above = (double)above / (double)n;
    out->n_bins = n_bins;
    double width = hi > lo ? (hi - lo) / (double)n_bins : 1.0;
    for (size_t b = 0; b < n_bins; ++b) {
        size_t k = 0;
        double a0 = lo + width * (double)b, a1 = a0 + width;
        for (size_t i = 0; i < n; ++i)
            if (px[i] >= a0 && (px[i] < a1 || (b + 1 == n_bins && px[i] <= hi))) tmp[k++] = py[i];
        out->bin_x[b] = a0 + 0.5 * width;
        out->bin_count[b] = k;
        if (k == 0) {
            out->bin_median[b] = out->bin_q1[b] = out->bin_q3[b] = (double)NAN;
            continue;
        }
        qsort(tmp, k, sizeof *tmp, cmp_double);
        out->bin_median[b] = quantile(tmp, k, 0.5);
        out->bin_q1[b] = quantile(tmp, k, 0.25);
        out->bin_q3[b] = quantile(tmp, k, 0.75);
    }
    free(buf);
    return EFFDIM_OK;
}

/* ======================================================================== */
/* workspace                                                                */
/* ======================================================================== */

struct effdim_svd_ws {
    effdim_mlp_ws *mw;                   /* Z, A, D, gathered rows, rowloss (one worker) */
    size_t chunk, P, W, U;               /* rows per pass, params, variances, noise per row */
    size_t n_layers;
    size_t uoff[EFFDIM_MLP_MAX_LAYERS];  /* (L) offset of layer l's noise in a row of eps */
    double *wm;                          /* (P) mean-path parameters (masked under train clip) */
    double *s2;                          /* (W) sigma^2 */
    double *raw;                         /* (W) log alpha before the clip */
    double *ea;                          /* (W) exp(clipped log alpha) */
    double *gs2;                         /* (W) accumulated dObjective/dsigma^2 */
    double *sd[EFFDIM_MLP_MAX_LAYERS];   /* (chunk, out) sqrt(delta + 1e-8), variational layers */
    double *t1, *t2;                     /* (chunk, max in) A.^2 and H S2 */
    double *h;                           /* (chunk, max out) */
    double *block;                       /* the one allocation */
};

size_t effdim_svd_noise_per_row(const effdim_mlp *m, const effdim_svd *s)
{
    size_t u = 0;
    for (size_t l = 0; l < m->n_layers; ++l)
        if (s->variational[l]) u += m->sizes[l + 1];
    return u;
}

void effdim_svd_ws_free(effdim_svd_ws *ws)
{
    if (!ws) return;
    effdim_mlp_ws_free(ws->mw);
    free(ws->block);
    free(ws);
}

effdim_svd_ws *effdim_svd_ws_alloc(const effdim_mlp *m, const effdim_svd *s, size_t chunk,
                                   effdim_error *err)
{
    if (effdim_svd_check(s, m, err)) return NULL;
    if (chunk == 0) chunk = 512;
    effdim_svd_ws *ws = effdim_calloc(1, sizeof *ws, "svd workspace", err);
    if (!ws) return NULL;
    ws->mw = effdim_mlp_ws_alloc_workers(m, chunk, 1, err);
    if (!ws->mw) goto fail;
    ws->chunk = chunk;
    ws->P = m->n_params;
    ws->W = s->n_weights;
    ws->n_layers = m->n_layers;
    size_t max_in = 1, max_out = 1, sdn = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        max_in = m->sizes[l] > max_in ? m->sizes[l] : max_in;
        max_out = m->sizes[l + 1] > max_out ? m->sizes[l + 1] : max_out;
        ws->uoff[l] = ws->U;
        if (s->variational[l]) {
            ws->U += m->sizes[l + 1];
            sdn += chunk * m->sizes[l + 1];
        }
    }
    /* sizes are bounded by the workspace of lib/mlp.c just allocated */
    size_t total = ws->P + 4 * ws->W + sdn + 2 * chunk * max_in + chunk * max_out;
    ws->block = effdim_alloc(total ? total : 1, sizeof(double), "svd workspace buffers", err);
    if (!ws->block) goto fail;
    double *p = ws->block;
    ws->wm = p, p += ws->P;
    ws->s2 = p, p += ws->W;
    ws->gs2 = p, p += ws->W;
    ws->raw = p, p += ws->W;
    ws->ea = p, p += ws->W;
    for (size_t l = 0; l < m->n_layers; ++l)
        if (s->variational[l]) ws->sd[l] = p, p += chunk * m->sizes[l + 1];
    ws->t1 = p, p += chunk * max_in;
    ws->t2 = p, p += chunk * max_in;
    ws->h = p;
    return ws;
fail:
    effdim_svd_ws_free(ws);
    return NULL;
}

/* ======================================================================== */
/* the objective                                                            */
/* ======================================================================== */

/* t (len, in) = A .^ 2 */
static void square(const double *restrict A, size_t n, double *restrict t)
{
    for (size_t i = 0; i < n; ++i) t[i] = A[i] * A[i];
}

/* Forward over one chunk; eps rows of this chunk start at er (stride U). */
static void svd_forward(const effdim_mlp *m, const effdim_svd *s, const double *X, size_t len,
                        const double *er, effdim_svd_ws *ws)
{
    effdim_mlp_ws *mw = ws->mw;
    const double *in_act = X;
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double *Z = mw->Z[l], *A = mw->A[l];
        const double *b = ws->wm + m->b_off[l];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)len, (int)out, (int)in, 1.0,
                    in_act, (int)in, ws->wm + m->w_off[l], (int)in, 0.0, Z, (int)out);
        if (s->variational[l]) {
            double *sd = ws->sd[l];
            square(in_act, len * in, ws->t1);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)len, (int)out, (int)in, 1.0,
                        ws->t1, (int)in, ws->s2 + s->ls_off[l], (int)in, 0.0, sd, (int)out);
            for (size_t i = 0; i < len; ++i) {
                const double *e = er + i * ws->U + ws->uoff[l];
                for (size_t j = 0; j < out; ++j) {
                    double v = sqrt(sd[i * out + j] + EFFDIM_SVD_SQRT_EPS);
                    sd[i * out + j] = v;
                    Z[i * out + j] += v * e[j];
                }
            }
        }
        for (size_t i = 0; i < len; ++i)
            for (size_t j = 0; j < out; ++j) {
                double z = Z[i * out + j] + b[j];
                Z[i * out + j] = z;
                A[i * out + j] = effdim_act_value(m->act[l], z);
            }
        in_act = A;
    }
}

/* Backward over one chunk after effdim_mlp_output(want_delta): accumulates
 * the mean-path gradient into grad (P) and dObjective/dsigma^2 into ws->gs2. */
static void svd_backward(const effdim_mlp *m, const effdim_svd *s, const double *X, size_t len,
                         const double *er, double *grad, effdim_svd_ws *ws)
{
    effdim_mlp_ws *mw = ws->mw;
    for (size_t l = m->n_layers; l-- > 0;) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double *D = mw->D[l], *gb = grad + m->b_off[l];
        const double *Z = mw->Z[l], *A = mw->A[l];
        for (size_t i = 0; i < len; ++i)
            for (size_t j = 0; j < out; ++j) {
                double d = D[i * out + j] * effdim_act_deriv(m->act[l], Z[i * out + j], A[i * out + j]);
                D[i * out + j] = d;
                gb[j] += d;
            }
        const double *prev = l ? mw->A[l - 1] : X;
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)len, 1.0, D,
                    (int)out, prev, (int)in, 1.0, grad + m->w_off[l], (int)in);
        int var = s->variational[l];
        if (var) {
            const double *sd = ws->sd[l];
            for (size_t i = 0; i < len; ++i) {
                const double *e = er + i * ws->U + ws->uoff[l];
                for (size_t j = 0; j < out; ++j)
                    ws->h[i * out + j] = D[i * out + j] * e[j] / (2.0 * sd[i * out + j]);
            }
            square(prev, len * in, ws->t1);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)len, 1.0,
                        ws->h, (int)out, ws->t1, (int)in, 1.0, ws->gs2 + s->ls_off[l], (int)in);
        }
        if (!l) continue;
        double *Dp = mw->D[l - 1];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)len, (int)in, (int)out, 1.0, D,
                    (int)out, ws->wm + m->w_off[l], (int)in, 0.0, Dp, (int)in);
        if (var) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)len, (int)in, (int)out, 1.0,
                        ws->h, (int)out, ws->s2 + s->ls_off[l], (int)in, 0.0, ws->t2, (int)in);
            for (size_t k = 0; k < len * in; ++k) Dp[k] += 2.0 * prev[k] * ws->t2[k];
        }
    }
}

/* Mean-path weights, sigma^2, raw log alpha and exp(log alpha) from
 * (theta, log sigma^2). */
static void prepare(const effdim_mlp *m, const effdim_svd *s, const double *theta,
                    const double *ls2, int train_clip, effdim_svd_ws *ws)
{
    memcpy(ws->wm, theta, m->n_params * sizeof *theta);
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (!s->variational[l]) continue;
        size_t nw = m->sizes[l + 1] * m->sizes[l], o = s->ls_off[l];
        const double *w = theta + m->w_off[l], *ls = ls2 + o;
        double *wm = ws->wm + m->w_off[l], *s2 = ws->s2 + o, *raw = ws->raw + o, *ea = ws->ea + o;
        for (size_t k = 0; k < nw; ++k) {
            raw[k] = raw_log_alpha(s, w[k], ls[k]);
            double la = clip_la(s, raw[k], NULL);
            ea[k] = exp(la);
            s2[k] = ea[k] * w[k] * w[k];
            if (train_clip && la >= s->threshold) wm[k] = 0.0;
        }
    }
}

/* The chain rule through sigma^2, the mask and the KL, per variational
 * weight, from the raw log alpha and exp(log alpha) that prepare() left in
 * ws; returns the KL sum. grad (P + W). */
static double finish(const effdim_mlp *m, const effdim_svd *s, const double *theta,
                     double beta, int train_clip, double *grad, const effdim_svd_ws *ws)
{
    double kl = 0.0;
    double *gls = grad ? grad + m->n_params : NULL;
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (!s->variational[l]) continue;
        size_t nw = m->sizes[l + 1] * m->sizes[l];
        const double *w = theta + m->w_off[l];
        const double *gs2 = ws->gs2 + s->ls_off[l], *raw = ws->raw + s->ls_off[l];
        const double *eas = ws->ea + s->ls_off[l];
        double *gw = grad ? grad + m->w_off[l] : NULL, *gl = grad ? gls + s->ls_off[l] : NULL;
        for (size_t k = 0; k < nw; ++k) {
            int inside = 0;
            double q = w[k] * w[k] + s->tiny;
            double la = clip_la(s, raw[k], &inside);
            double dkl = 0.0;
            kl += effdim_svd_kl_value(s->kl, la, grad ? &dkl : NULL);
            if (!grad) continue;
            double ea = eas[k], s2 = ea * w[k] * w[k];
            double g_mean = train_clip && la >= s->threshold ? 0.0 : gw[k];
            double dw, dl;
            if (inside) {
                dw = gs2[k] * 2.0 * w[k] * ea * (s->tiny / q) + beta * dkl * (-2.0 * w[k] / q);
                dl = gs2[k] * s2 + beta * dkl;
            } else {
                dw = gs2[k] * 2.0 * w[k] * ea;
                dl = 0.0;
            }
            gw[k] = g_mean + dw;
            gl[k] = dl;
        }
    }
    return kl;
}

effdim_status effdim_svd_loss_grad(const effdim_mlp *m, const effdim_svd *s, const double *theta,
                                   const double *log_sigma2, const effdim_dataset *ds,
                                   const size_t *rows, size_t n_rows, const double *eps, double N,
                                   double beta, int train_clip, effdim_svd_objective *obj,
                                   double *grad, effdim_svd_ws *ws, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !s || !theta || !log_sigma2 || !ds || !ws || !obj, err, EFFDIM_EINVAL,
                    "svd objective: NULL argument");
    RETURN_ERROR_IF(ws->U && !eps, err, EFFDIM_EINVAL, "svd objective: no noise given");
    RETURN_ERROR_IF(!(N > 0.0) || !(beta >= 0.0), err, EFFDIM_EINVAL,
                    "svd objective: N = %g, beta = %g, expected N > 0 and beta >= 0", N, beta);
    RETURN_ERROR_IF(ws->P != m->n_params || ws->W != s->n_weights, err, EFFDIM_EINVAL,
                    "svd objective: the workspace was sized for another network");
    effdim_status st = effdim_mlp_check_call(m, ds, rows, n_rows, err);
    if (st) return st;
    prepare(m, s, theta, log_sigma2, train_clip, ws);
    if (grad) {
        memset(grad, 0, (ws->P + ws->W) * sizeof *grad);
        memset(ws->gs2, 0, ws->W * sizeof *ws->gs2);
    }
    const double scale = N / (double)n_rows;
    double sum = 0.0;
    for (size_t start = 0; start < n_rows; start += ws->chunk) {
        size_t len = n_rows - start < ws->chunk ? n_rows - start : ws->chunk;
        effdim_mlp_chunk c = {.len = 0};
        double part = 0.0;
        const double *er = eps ? eps + start * ws->U : NULL;
        if ((st = effdim_mlp_chunk_load(ds, rows, start, len, ws->mw, &c, err))) return st;
        svd_forward(m, s, c.X, len, er, ws);
        if ((st = effdim_mlp_output(m, &c, scale, grad != NULL, ws->mw, &part, err))) return st;
        sum += part;
        if (grad) svd_backward(m, s, c.X, len, er, grad, ws);
    }
    double kl = finish(m, s, theta, beta, train_clip, grad, ws);
    obj->nll = sum / (double)n_rows;
    obj->kl = kl;
    obj->total = scale * sum + beta * kl;
    return EFFDIM_OK;
}
