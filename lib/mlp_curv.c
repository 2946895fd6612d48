/* lib/mlp_curv.c: the MLP's second-order passes over one chunk (see lib/mlp_curv.h).
 *
 * Exact Hessian-vector products by Pearlmutter's R-operator (Neural
 * Computation 6 (1994), Section 4: forward-over-reverse, one R-forward and
 * one R-backward per vector after an ordinary forward/backward that every
 * vector of a block shares) and Gauss-Newton products J^T H_out J v
 * (Schraudolph 2002, Section 3: the same R-forward, then a linear backward
 * of the output-Hessian-weighted R{F}). Every matrix product is one
 * row-major cblas_dgemm per layer; elementwise passes are fused loops.
 * Nothing allocates after effdim_curv_ws_alloc.
 *
 * Also the loss and gradient with the relu layers' on/off patterns frozen at
 * a reference point (the finite-difference operators of lib/hvp.c use it so
 * that a difference of gradients does not cross kinks; the reason and the
 * measured effect are in lib/mlp_curv.h).
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mlp_curv.h"

/* ---- workspace ------------------------------------------------------------ */

#define CURV_ALIGN 8 /* doubles: 64 bytes */

effdim_curv_ws *effdim_curv_ws_alloc(const effdim_mlp *m, size_t chunk, effdim_error *err)
{
    if (!m || m->n_layers == 0 || m->n_layers > EFFDIM_MLP_MAX_LAYERS || chunk == 0) {
        effdim_error_set(err, EFFDIM_EINVAL, "curvature workspace: network not initialised");
        return NULL;
    }
    effdim_curv_ws *cw = effdim_calloc(1, sizeof *cw, "curvature workspace", err);
    if (!cw) return NULL;
    cw->n_layers = m->n_layers;
    cw->chunk = chunk;
    size_t total = 0, per[EFFDIM_MLP_MAX_LAYERS];
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t n;
        if (effdim_mul_size(chunk, m->sizes[l + 1], &n) || n > SIZE_MAX / 8 - CURV_ALIGN)
            goto overflow;
        per[l] = (n + CURV_ALIGN - 1) / CURV_ALIGN * CURV_ALIGN;
        for (int b = 0; b < 4; ++b)
            if (effdim_add_size(total, per[l], &total)) goto overflow;
    }
    if (total > SIZE_MAX / sizeof(double)) goto overflow;
    cw->bytes = total * sizeof(double) + sizeof *cw;
    if (posix_memalign((void **)&cw->block, 64, total * sizeof(double))) {
        cw->block = NULL;
        effdim_error_set(err, EFFDIM_ENOMEM,
                         "curvature workspace: cannot allocate %zu bytes (%zu rows per chunk)",
                         total * sizeof(double), chunk);
        goto fail;
    }
    memset(cw->block, 0, total * sizeof(double));
    double *p = cw->block;
    for (size_t l = 0; l < m->n_layers; ++l) {
        cw->G[l] = p;
        cw->RZ[l] = p + per[l];
        cw->RA[l] = p + 2 * per[l];
        cw->RG[l] = p + 3 * per[l];
        p += 4 * per[l];
    }
    return cw;
overflow:
    effdim_error_set(err, EFFDIM_ENOMEM, "curvature workspace: %zu rows per chunk overflows size_t",
                     chunk);
fail:
    effdim_curv_ws_free(cw);
    return NULL;
}

void effdim_curv_ws_free(effdim_curv_ws *cw)
{
    if (!cw) return;
    free(cw->block);
    free(cw);
}

/* ---- elementwise pieces ----------------------------------------------------- */

/* dst = src * phi'(Z) elementwise; dst may equal src. Z, A, src, dst (len*w). */
static void times_deriv(effdim_activation act, const double *Z, const double *A, const double *src,
                        double *dst, size_t count)
{
    switch (act) {
    case EFFDIM_ACT_IDENTITY:
        if (dst != src) memcpy(dst, src, count * sizeof(double));
        break;
    case EFFDIM_ACT_RELU:
        for (size_t i = 0; i < count; ++i) dst[i] = Z[i] > 0.0 ? src[i] : 0.0;
        break;
    case EFFDIM_ACT_TANH:
        for (size_t i = 0; i < count; ++i) dst[i] = src[i] * (1.0 - A[i] * A[i]);
        break;
    case EFFDIM_ACT_SIGMOID:
        for (size_t i = 0; i < count; ++i) dst[i] = src[i] * (A[i] * (1.0 - A[i]));
        break;
    default:
        for (size_t i = 0; i < count; ++i) dst[i] = src[i] * effdim_act_deriv(act, Z[i], A[i]);
        break;
    }
}

/* dst += G * phi''(Z) * RZ elementwise (nothing for identity and relu, whose
 * second derivative is zero almost everywhere). */
static void add_curvature_term(effdim_activation act, const double *Z, const double *A,
                               const double *G, const double *RZ, double *dst, size_t count)
{
    if (act == EFFDIM_ACT_IDENTITY || act == EFFDIM_ACT_RELU) return;
    for (size_t i = 0; i < count; ++i) dst[i] += G[i] * effdim_act_deriv2(act, Z[i], A[i]) * RZ[i];
}

/* b (w) += column sums of M (len, w). */
static void add_colsums(const double *M, size_t len, size_t w, double *b)
{
    for (size_t i = 0; i < len; ++i) {
        const double *row = M + i * w;
        for (size_t j = 0; j < w; ++j) b[j] += row[j];
    }
}

/* C (m, n) = alpha op(A) op(B) + beta C, row-major, leading dimensions the
 * natural ones (columns of the stored matrices). */
static void gemm(int ta, int tb, size_t m, size_t n, size_t k, const double *A, size_t lda,
                 const double *B, size_t ldb, double beta, double *C)
{
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)n);
}

/* ---- passes ------------------------------------------------------------------ */

void effdim_curv_backward_keep(const effdim_mlp *m, const double *theta, size_t len,
                               effdim_mlp_ws *ws, effdim_curv_ws *cw)
{
    size_t L = m->n_layers;
    memcpy(cw->G[L - 1], ws->D[L - 1], len * m->sizes[L] * sizeof(double));
    for (size_t l = L; l-- > 0;) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        /* D_l (len, out) = G_l * phi'(Z_l) */
        times_deriv(m->act[l], ws->Z[l], ws->A[l], cw->G[l], ws->D[l], len * out);
        if (l) /* G_{l-1} (len, in) = D_l (len, out) W_l (out, in) */
            gemm(0, 0, len, in, out, ws->D[l], out, theta + m->w_off[l], in, 0.0, cw->G[l - 1]);
    }
}

void effdim_curv_rforward(const effdim_mlp *m, const double *theta, const double *v,
                          const double *X, size_t len, const effdim_mlp_ws *ws,
                          effdim_curv_ws *cw)
{
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        const double *W = theta + m->w_off[l], *V = v + m->w_off[l], *c = v + m->b_off[l];
        double *RZ = cw->RZ[l];
        const double *prev = l ? ws->A[l - 1] : X; /* (len, in) */
        double beta = 0.0;
        if (l) { /* R{Z_l} = R{A_{l-1}} W_l^T */
            gemm(0, 1, len, out, in, cw->RA[l - 1], in, W, in, 0.0, RZ);
            beta = 1.0;
        }
        /* R{Z_l} += A_{l-1} V_l^T + c_l */
        gemm(0, 1, len, out, in, prev, in, V, in, beta, RZ);
        for (size_t i = 0; i < len; ++i)
            for (size_t j = 0; j < out; ++j) RZ[i * out + j] += c[j];
        /* R{A_l} = phi'(Z_l) R{Z_l} */
        times_deriv(m->act[l], ws->Z[l], ws->A[l], RZ, cw->RA[l], len * out);
    }
}

void effdim_curv_hessian_accumulate(const effdim_mlp *m, const double *theta, const double *v,
                                    const double *X, size_t len, double s,
                                    const effdim_mlp_ws *ws, effdim_curv_ws *cw, double *hv)
{
    size_t L = m->n_layers;
    /* R{G_{L-1}} = s (d^2 l / dF^2) R{F} */
    effdim_mlp_output_hess_apply(m, ws, len, s, cw->RA[L - 1], cw->RG[L - 1]);
    for (size_t l = L; l-- > 0;) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double *RD = cw->RG[l];
        /* R{D_l} = R{G_l} phi'(Z_l) + G_l phi''(Z_l) R{Z_l} */
        times_deriv(m->act[l], ws->Z[l], ws->A[l], RD, RD, len * out);
        add_curvature_term(m->act[l], ws->Z[l], ws->A[l], cw->G[l], cw->RZ[l], RD, len * out);
        add_colsums(RD, len, out, hv + m->b_off[l]);
        const double *prev = l ? ws->A[l - 1] : X;
        double *hW = hv + m->w_off[l];
        /* (Hv)_W += R{D_l}^T A_{l-1} + D_l^T R{A_{l-1}} */
        gemm(1, 0, out, in, len, RD, out, prev, in, 1.0, hW);
        if (!l) continue;
        gemm(1, 0, out, in, len, ws->D[l], out, cw->RA[l - 1], in, 1.0, hW);
        /* R{G_{l-1}} = R{D_l} W_l + D_l V_l */
        gemm(0, 0, len, in, out, RD, out, theta + m->w_off[l], in, 0.0, cw->RG[l - 1]);
        gemm(0, 0, len, in, out, ws->D[l], out, v + m->w_off[l], in, 1.0, cw->RG[l - 1]);
    }
}

void effdim_curv_ggn_accumulate(const effdim_mlp *m, const double *theta, const double *X,
                                size_t len, double s, const effdim_mlp_ws *ws,
                                effdim_curv_ws *cw, double *gv)
{
    size_t L = m->n_layers;
    /* U = s H_out J v at the outputs, then J^T U by a linear backward pass */
    effdim_mlp_output_hess_apply(m, ws, len, s, cw->RA[L - 1], cw->RG[L - 1]);
    for (size_t l = L; l-- > 0;) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double *DU = cw->RG[l];
        times_deriv(m->act[l], ws->Z[l], ws->A[l], DU, DU, len * out);
        add_colsums(DU, len, out, gv + m->b_off[l]);
        const double *prev = l ? ws->A[l - 1] : X;
        gemm(1, 0, out, in, len, DU, out, prev, in, 1.0, gv + m->w_off[l]);
        if (l) gemm(0, 0, len, in, out, DU, out, theta + m->w_off[l], in, 0.0, cw->RG[l - 1]);
    }
}

/* ---- frozen ReLU patterns ------------------------------------------------------ */

static int has_relu(const effdim_mlp *m)
{
    for (size_t l = 0; l < m->n_layers; ++l)
        if (m->act[l] == EFFDIM_ACT_RELU) return 1;
    return 0;
}

void effdim_curv_masks_free(effdim_curv_masks *mk)
{
    if (!mk) return;
    for (size_t l = 0; l < mk->n_layers; ++l) free(mk->on[l]);
    free(mk);
}

effdim_curv_masks *effdim_curv_masks_alloc(const effdim_mlp *m, const double *theta,
                                           const effdim_dataset *ds, const size_t *rows,
                                           size_t n_rows, effdim_mlp_ws *ws, effdim_error *err)
{
    if (!has_relu(m)) return NULL;
    effdim_curv_masks *mk = effdim_calloc(1, sizeof *mk, "relu patterns", err);
    if (!mk) return NULL;
    mk->n_layers = m->n_layers;
    mk->n_rows = n_rows;
    mk->bytes = sizeof *mk;
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (m->act[l] != EFFDIM_ACT_RELU) continue;
        mk->on[l] = effdim_alloc(n_rows, m->sizes[l + 1], "relu patterns", err);
        if (!mk->on[l]) goto fail;
        mk->bytes += n_rows * m->sizes[l + 1];
    }
    for (size_t start = 0; start < n_rows; start += ws->chunk) {
        size_t len = n_rows - start < ws->chunk ? n_rows - start : ws->chunk;
        effdim_mlp_chunk c;
        if (effdim_mlp_chunk_load(ds, rows, start, len, ws, &c, err)) goto fail;
        effdim_mlp_forward(m, theta, c.X, len, ws);
        for (size_t l = 0; l < m->n_layers; ++l) {
            if (!mk->on[l]) continue;
            size_t w = m->sizes[l + 1];
            const double *Z = ws->Z[l];
            unsigned char *on = mk->on[l] + start * w;
            for (size_t i = 0; i < len * w; ++i) on[i] = Z[i] > 0.0;
        }
    }
    return mk;
fail:
    effdim_curv_masks_free(mk);
    return NULL;
}

/* forward with the relu layers' patterns from `on` (rows start..start+len-1) */
static void frozen_forward(const effdim_mlp *m, const double *theta, const double *X, size_t len,
                           const effdim_curv_masks *mk, size_t start, effdim_mlp_ws *ws)
{
    const double *prev = X;
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        const double *restrict b = theta + m->b_off[l];
        double *restrict Z = ws->Z[l], *restrict A = ws->A[l];
        gemm(0, 1, len, out, in, prev, in, theta + m->w_off[l], in, 0.0, Z);
        const unsigned char *restrict on = mk->on[l] ? mk->on[l] + start * out : NULL;
        for (size_t i = 0; i < len; ++i) {
            double *restrict z = Z + i * out, *restrict a = A + i * out;
            if (on) {
                const unsigned char *restrict o = on + i * out;
                for (size_t j = 0; j < out; ++j) {
                    z[j] += b[j];
                    a[j] = (double)o[j] * z[j];
                }
            } else if (m->act[l] == EFFDIM_ACT_IDENTITY) {
                for (size_t j = 0; j < out; ++j) a[j] = z[j] += b[j];
            } else {
                for (size_t j = 0; j < out; ++j) a[j] = effdim_act_value(m->act[l], z[j] += b[j]);
            }
        }
        prev = A;
    }
}

/* backward with the same frozen patterns; grad accumulates */
static void frozen_backward(const effdim_mlp *m, const double *theta, const double *X, size_t len,
                            const effdim_curv_masks *mk, size_t start, double *grad,
                            effdim_mlp_ws *ws)
{
    for (size_t l = m->n_layers; l-- > 0;) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double *restrict D = ws->D[l], *restrict gb = grad + m->b_off[l];
        if (mk->on[l]) { /* D *= pattern and the bias gradient in one pass */
            const unsigned char *restrict on = mk->on[l] + start * out;
            for (size_t i = 0; i < len; ++i) {
                double *restrict d = D + i * out;
                const unsigned char *restrict o = on + i * out;
                for (size_t j = 0; j < out; ++j) gb[j] += d[j] *= (double)o[j];
            }
        } else {
            times_deriv(m->act[l], ws->Z[l], ws->A[l], D, D, len * out);
            add_colsums(D, len, out, gb);
        }
        const double *prev = l ? ws->A[l - 1] : X;
        gemm(1, 0, out, in, len, D, out, prev, in, 1.0, grad + m->w_off[l]);
        if (l) gemm(0, 0, len, in, out, D, out, theta + m->w_off[l], in, 0.0, ws->D[l - 1]);
    }
}

typedef struct frozen_ctx {
    const effdim_mlp *m;
    const double *theta;
    const effdim_dataset *ds;
    const size_t *rows;
    const effdim_curv_masks *mk;
    double scale;
} frozen_ctx;

/* rows [begin, end) of the selection: loss sum, gradient accumulated into grad */
static effdim_status frozen_part(void *arg, size_t begin, size_t end, effdim_mlp_ws *ws,
                                 double *grad, double *total, size_t *count, effdim_error *err)
{
    const frozen_ctx *f = arg;
    double sum = 0.0;
    for (size_t start = begin; start < end; start += ws->chunk) {
        size_t len = end - start < ws->chunk ? end - start : ws->chunk;
        effdim_mlp_chunk c = {.len = 0};
        double part = 0.0;
        effdim_status st = effdim_mlp_chunk_load(f->ds, f->rows, start, len, ws, &c, err);
        if (st) return st;
        frozen_forward(f->m, f->theta, c.X, len, f->mk, start, ws);
        st = effdim_mlp_output(f->m, &c, f->scale, 1, ws, &part, err);
        if (st) return st;
        sum += part;
        frozen_backward(f->m, f->theta, c.X, len, f->mk, start, grad, ws);
    }
    *total = sum;
    *count = 0;
    return EFFDIM_OK;
}

/* Split over the workspace's workers like effdim_mlp_loss_grad (effdim_mlp_split). */
effdim_status effdim_curv_frozen_loss_grad(const effdim_mlp *m, const double *theta,
                                           const effdim_dataset *ds, const size_t *rows,
                                           size_t n_rows, const effdim_curv_masks *mk,
                                           double *loss, double *grad, effdim_mlp_ws *ws,
                                           effdim_error *err)
{
    RETURN_ERROR_IF(!mk || mk->n_rows != n_rows, err, EFFDIM_EINVAL,
                    "frozen gradient: patterns for %zu rows, called with %zu",
                    mk ? mk->n_rows : 0, n_rows);
    frozen_ctx f = {.m = m, .theta = theta, .ds = ds, .rows = rows, .mk = mk,
                    .scale = effdim_mlp_loss_scale(m, n_rows)};
    double total = 0.0;
    effdim_status st = effdim_mlp_split(ws, n_rows, m->n_params, frozen_part, &f, grad, &total,
                                        NULL, err);
    if (st) return st;
    if (loss) *loss = m->reduction == EFFDIM_REDUCTION_MEAN ? total / (double)n_rows : total;
    return EFFDIM_OK;
}
