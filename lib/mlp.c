/* lib/mlp.c: a multilayer perceptron with exact loss and gradient (see effdim/mlp.h).
 *
 * Algorithm: reverse-mode differentiation (backpropagation; Rumelhart,
 * Hinton and Williams 1986) over chunks of at most `chunk` rows, with every
 * product done by one row-major cblas_dgemm per layer:
 *
 *   forward   Z_l = A_{l-1} W_l^T          dgemm (len, out) = (len, in) (out, in)^T
 *             Z_l += b_l, A_l = act_l(Z_l) one fused pass
 *   output    l_i, dl_i/dA_{L-1}          stable log-softmax / squared error
 *   backward  D_l *= act_l'(Z_l), g_b_l += colsum(D_l)      one fused pass
 *             g_W_l += D_l^T A_{l-1}       dgemm (out, in) = (len, out)^T (len, in)
 *             D_{l-1} = D_l W_l            dgemm (len, in) = (len, out) (out, in), l >= 1
 *
 * dL/dX (the input-layer delta) is never formed. The gradient accumulates
 * across chunks (dgemm beta = 1), so memory is bounded by the workspace
 * (lib/mlp_internal.h gives the layout and the bound) whatever the number
 * of rows. Nothing allocates after effdim_mlp_ws_alloc.
 *
 * FLOPs of a full-batch gradient over n rows (the benchmark counts these):
 * forward 2 n sum_l out_l in_l, weight gradients 2 n sum_l out_l in_l,
 * delta propagation 2 n sum_{l>=1} out_l in_l.
 *
 * Data-parallel calls: a workspace allocated for T > 1 workers (by default
 * T = effdim_blas_threads() when it is allocated) splits a call of
 * loss_grad, evaluate or per_sample_grads that covers more than one chunk
 * into min(T, chunks) contiguous parts of whole chunks (part t: chunks
 * [t C / T, (t+1) C / T)). Each part runs in its own pthread (the caller
 * does part 0) on its own sub-workspace, with OpenBLAS at 1 thread for the
 * duration (the previous count is restored), and parts t >= 1 accumulate
 * their gradient into their own accumulator. The partial losses and
 * gradients are then summed in part order, so a result is bitwise the same
 * run to run for a given T, and differs from T = 1 by rounding only (sums
 * regrouped). Why: OpenBLAS's 2-thread scaling on the medium products of a
 * 512-row chunk is poor, while two 1-thread halves run at nearly twice the
 * 1-thread rate (docs/performance.md, "Full-batch gradient"). Calls of one
 * chunk (training minibatches) stay on the caller's thread with the BLAS
 * threads as set. No allocation: threads are created per call.
 *
 * Per-sample gradients (effdim_mlp_per_sample_grads): one forward and one
 * backward pass without the weight-gradient dgemms, then for each row i and
 * layer l the outer product D_l[i] A_{l-1}[i]^T (weights) and D_l[i] (bias)
 * written into row i of G. Cost: the passes (4 n sum out*in flops) plus
 * n * P multiplications and n * P doubles written; G itself is n * P doubles.
 *
 * Initialisation: PyTorch's nn.Linear.reset_parameters (kaiming_uniform with
 * a = sqrt(5), which gives W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the
 * same bound for b), or Glorot and Bengio 2010 (uniform, zero bias).
 */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/blas.h"
#include "effdim/mlp.h"
#include "internal.h"
#include "mlp_internal.h"

/* ======================================================================== */
/* names                                                                    */
/* ======================================================================== */

static const char *const act_names[] = {"identity", "relu",     "tanh",
                                        "sigmoid",  "softplus", "gelu", "elu"};
static const char *const loss_names[] = {"cross_entropy", "mse", "bce"};
static const char *const reduction_names[] = {"mean", "sum"};
static const char *const init_names[] = {"torch", "glorot"};

#define N_ACTS (sizeof act_names / sizeof act_names[0])
#define N_LOSSES (sizeof loss_names / sizeof loss_names[0])

static effdim_status parse_name(const char *name, const char *const *names, size_t n, int *out)
{
    if (!name) return EFFDIM_EINVAL;
    for (size_t i = 0; i < n; ++i)
        if (!strcmp(name, names[i])) {
            *out = (int)i;
            return EFFDIM_OK;
        }
    return EFFDIM_EINVAL;
}

/* "activation 'swish' unknown, expected one of identity, relu, ..." */
static void name_error(effdim_error *err, const char *what, const char *name,
                       const char *const *names, size_t n)
{
    char list[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof list; ++i) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    effdim_error_set(err, EFFDIM_EINVAL, "%s '%s' unknown, expected one of %s", what,
                     name ? name : "(none)", list);
}

const char *effdim_activation_name(effdim_activation a)
{
    return (size_t)a < N_ACTS ? act_names[a] : "unknown";
}

effdim_status effdim_activation_parse(const char *name, effdim_activation *a, effdim_error *err)
{
    int v = 0;
    effdim_status st = parse_name(name, act_names, N_ACTS, &v);
    if (st == EFFDIM_OK) *a = (effdim_activation)v;
    else name_error(err, "activation", name, act_names, N_ACTS);
    return st;
}

const char *effdim_loss_name(effdim_loss l)
{
    return (size_t)l < N_LOSSES ? loss_names[l] : "unknown";
}

effdim_status effdim_loss_parse(const char *name, effdim_loss *l, effdim_error *err)
{
    int v = 0;
    effdim_status st = parse_name(name, loss_names, N_LOSSES, &v);
    if (st == EFFDIM_OK) *l = (effdim_loss)v;
    else name_error(err, "loss", name, loss_names, N_LOSSES);
    return st;
}

const char *effdim_reduction_name(effdim_reduction r)
{
    return (size_t)r < 2 ? reduction_names[r] : "unknown";
}

effdim_status effdim_reduction_parse(const char *name, effdim_reduction *r, effdim_error *err)
{
    int v = 0;
    effdim_status st = parse_name(name, reduction_names, 2, &v);
    if (st == EFFDIM_OK) *r = (effdim_reduction)v;
    else name_error(err, "reduction", name, reduction_names, 2);
    return st;
}

size_t effdim_mlp_n_classes(const effdim_mlp *m)
{
    return m->loss == EFFDIM_LOSS_BCE ? 2 : m->sizes[m->n_layers];
}

double effdim_mlp_loss_scale(const effdim_mlp *m, size_t n_rows)
{
    if (m->reduction != EFFDIM_REDUCTION_MEAN) return 1.0;
    return n_rows ? 1.0 / (double)n_rows : (double)NAN;
}

void effdim_mlp_layer_block(const effdim_mlp *m, size_t l, size_t *offset, size_t *size)
{
    *offset = m->w_off[l];
    *size = m->sizes[l + 1] * (m->sizes[l] + 1);
}

const char *effdim_init_scheme_name(effdim_init_scheme s)
{
    return (size_t)s < 2 ? init_names[s] : "unknown";
}

effdim_status effdim_init_scheme_parse(const char *name, effdim_init_scheme *s, effdim_error *err)
{
    int v = 0;
    effdim_status st = parse_name(name, init_names, 2, &v);
    if (st == EFFDIM_OK) *s = (effdim_init_scheme)v;
    else name_error(err, "init scheme", name, init_names, 2);
    return st;
}

/* ======================================================================== */
/* model description and initialisation                                     */
/* ======================================================================== */

effdim_status effdim_mlp_init(effdim_mlp *m, size_t n_layers, const size_t *sizes,
                              const effdim_activation *acts, effdim_loss loss,
                              effdim_reduction reduction, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !sizes || !acts, err, EFFDIM_EINVAL, "network: NULL argument");
    RETURN_ERROR_IF(n_layers == 0, err, EFFDIM_EINVAL, "network: 0 layers, expected 1 to %d",
                    EFFDIM_MLP_MAX_LAYERS);
    RETURN_ERROR_IF(n_layers > EFFDIM_MLP_MAX_LAYERS, err, EFFDIM_EINVAL,
                    "network: %zu layers, at most %d", n_layers, EFFDIM_MLP_MAX_LAYERS);
    for (size_t l = 0; l <= n_layers; ++l)
        RETURN_ERROR_IF(sizes[l] == 0, err, EFFDIM_EINVAL,
                        "network: layer sizes[%zu] = 0, expected a width >= 1", l);
    for (size_t l = 0; l < n_layers; ++l)
        RETURN_ERROR_IF((size_t)acts[l] >= N_ACTS, err, EFFDIM_EINVAL,
                        "network: activation of layer %zu is %d, not a known activation", l,
                        (int)acts[l]);
    RETURN_ERROR_IF((size_t)loss >= N_LOSSES, err, EFFDIM_EINVAL, "network: loss %d unknown",
                    (int)loss);
    RETURN_ERROR_IF((unsigned)reduction > 1u, err, EFFDIM_EINVAL, "network: reduction %d unknown",
                    (int)reduction);

    effdim_mlp t;
    memset(&t, 0, sizeof t);
    t.n_layers = n_layers;
    t.loss = loss;
    t.reduction = reduction;
    size_t p = 0;
    for (size_t l = 0; l <= n_layers; ++l) t.sizes[l] = sizes[l];
    for (size_t l = 0; l < n_layers; ++l) {
        size_t w, wb;
        t.act[l] = acts[l];
        t.w_off[l] = p;
        if (effdim_mul_size(sizes[l + 1], sizes[l], &w) || effdim_add_size(w, sizes[l + 1], &wb) ||
            effdim_add_size(p, wb, &p))
            return effdim_error_set(err, EFFDIM_ENOMEM,
                                    "network: parameter count overflows size_t at layer %zu "
                                    "(%zu x %zu)", l, sizes[l + 1], sizes[l]);
        t.b_off[l] = t.w_off[l] + w;
    }
    RETURN_ERROR_IF(p > SIZE_MAX / (4 * sizeof(double)), err, EFFDIM_ENOMEM,
                    "network: %zu parameters is absurdly large", p);
    t.n_params = p;
    *m = t;
    return EFFDIM_OK;
}

effdim_status effdim_mlp_init_params(const effdim_mlp *m, double *theta, effdim_init_scheme scheme,
                                     uint64_t seed, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta, err, EFFDIM_EINVAL, "init: NULL argument");
    RETURN_ERROR_IF((unsigned)scheme > 1u, err, EFFDIM_EINVAL,
                    "init: scheme %d unknown, expected torch or glorot", (int)scheme);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    RETURN_ERROR_IF(!rng, err, EFFDIM_ENOMEM, "init: cannot allocate the random generator");
    gsl_rng_set(rng, (unsigned long)seed);
    /* draws in theta order: layer0.weight row-major, layer0.bias, layer1.weight, ... */
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double wb, bb;
        if (scheme == EFFDIM_INIT_TORCH) {
            wb = 1.0 / sqrt((double)in);
            bb = wb;
        } else {
            wb = sqrt(6.0 / (double)(in + out));
            bb = 0.0;
        }
        double *w = theta + m->w_off[l], *b = theta + m->b_off[l];
        for (size_t i = 0; i < out * in; ++i) w[i] = wb * (2.0 * gsl_rng_uniform(rng) - 1.0);
        for (size_t i = 0; i < out; ++i) b[i] = bb > 0 ? bb * (2.0 * gsl_rng_uniform(rng) - 1.0) : 0.0;
    }
    gsl_rng_free(rng);
    return EFFDIM_OK;
}

/* ======================================================================== */
/* data checks                                                              */
/* ======================================================================== */

static const char *data_name(const effdim_dataset *ds, const char *what)
{
    if (what && what[0]) return what;
    if (ds && ds->spec && ds->spec[0]) return ds->spec;
    return "data set";
}

/* widths and target kinds; constant time */
static effdim_status check_shapes(const effdim_mlp *m, const effdim_dataset *ds, const char *what,
                                  effdim_error *err)
{
    RETURN_ERROR_IF(!m || !ds, err, EFFDIM_EINVAL, "network or data set is NULL");
    const char *w = data_name(ds, what);
    size_t L = m->n_layers, out = m->sizes[L];
    RETURN_ERROR_IF(L == 0 || L > EFFDIM_MLP_MAX_LAYERS, err, EFFDIM_EINVAL,
                    "network: not initialised (%zu layers)", L);
    RETURN_ERROR_IF(!ds->X, err, EFFDIM_EINVAL, "%s: no inputs X", w);
    RETURN_ERROR_IF(ds->d != m->sizes[0], err, EFFDIM_EINVAL,
                    "%s: %zu input features, but the network's input width sizes[0] is %zu", w,
                    ds->d, m->sizes[0]);
    if (ds->kind == EFFDIM_TARGET_LABELS && m->loss == EFFDIM_LOSS_BCE) {
        RETURN_ERROR_IF(!ds->labels, err, EFFDIM_EINVAL, "%s: no labels", w);
        RETURN_ERROR_IF(out != 1, err, EFFDIM_EINVAL,
                        "%s: loss bce needs one output (the logit), the network has %zu "
                        "(sizes[%zu])", w, out, L);
        RETURN_ERROR_IF(ds->k > 2, err, EFFDIM_EINVAL,
                        "%s: %zu classes, but loss bce takes two (labels 0 and 1)", w, ds->k);
    } else if (ds->kind == EFFDIM_TARGET_LABELS) {
        RETURN_ERROR_IF(m->loss != EFFDIM_LOSS_CROSS_ENTROPY, err, EFFDIM_EINVAL,
                        "%s: integer class labels need loss cross_entropy or bce, the network has "
                        "loss %s", w, effdim_loss_name(m->loss));
        RETURN_ERROR_IF(!ds->labels, err, EFFDIM_EINVAL, "%s: no labels", w);
        RETURN_ERROR_IF(ds->k > out, err, EFFDIM_EINVAL,
                        "%s: %zu classes, but the network has %zu outputs (sizes[%zu])", w, ds->k,
                        out, L);
    } else if (ds->kind == EFFDIM_TARGET_REAL) {
        RETURN_ERROR_IF(m->loss != EFFDIM_LOSS_MSE, err, EFFDIM_EINVAL,
                        "%s: real-valued targets need loss mse, the network has loss %s", w,
                        effdim_loss_name(m->loss));
        RETURN_ERROR_IF(!ds->Y, err, EFFDIM_EINVAL, "%s: no targets Y", w);
        RETURN_ERROR_IF(ds->k != out, err, EFFDIM_EINVAL,
                        "%s: %zu target columns, but the network has %zu outputs (sizes[%zu])", w,
                        ds->k, out, L);
    } else {
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: unknown target kind %d", w, (int)ds->kind);
    }
    return EFFDIM_OK;
}

effdim_status effdim_mlp_check_data(const effdim_mlp *m, const effdim_dataset *ds, const char *what,
                                    effdim_error *err)
{
    effdim_status st = check_shapes(m, ds, what, err);
    if (st) return st;
    if (ds->kind == EFFDIM_TARGET_LABELS) {
        size_t out = effdim_mlp_n_classes(m);
        for (size_t i = 0; i < ds->n; ++i)
            RETURN_ERROR_IF(ds->labels[i] < 0 || (size_t)ds->labels[i] >= out, err, EFFDIM_EINVAL,
                            "%s: row %zu: label %d, but the network has %zu outputs (labels must "
                            "be in [0, %zu))",
                            data_name(ds, what), i, (int)ds->labels[i], out, out);
    }
    return EFFDIM_OK;
}

effdim_status effdim_mlp_check_call(const effdim_mlp *m, const effdim_dataset *ds,
                                    const size_t *rows, size_t n_rows, effdim_error *err)
{
    effdim_status st = check_shapes(m, ds, NULL, err);
    if (st) return st;
    RETURN_ERROR_IF(n_rows == 0, err, EFFDIM_EINVAL, "%s: no rows selected (n_rows = 0)",
                    data_name(ds, NULL));
    RETURN_ERROR_IF(!rows && n_rows > ds->n, err, EFFDIM_EINVAL,
                    "%s: %zu rows requested, the data set has %zu", data_name(ds, NULL), n_rows,
                    ds->n);
    return EFFDIM_OK;
}

/* ======================================================================== */
/* workspace                                                                */
/* ======================================================================== */

#define WS_ALIGN_DOUBLES 8 /* 64 bytes */

static size_t round_up(size_t x) { return (x + WS_ALIGN_DOUBLES - 1) / WS_ALIGN_DOUBLES * WS_ALIGN_DOUBLES; }

/* Doubles needed for (rows, cols) at offset *off, rounded for alignment; -1 on overflow. */
static int ws_carve(size_t rows, size_t cols, size_t *off, size_t *at)
{
    size_t n;
    if (effdim_mul_size(rows, cols, &n) || n > SIZE_MAX - 2 * WS_ALIGN_DOUBLES) return -1;
    *at = *off;
    n = round_up(n);
    return effdim_add_size(*off, n, off);
}

/* One worker's buffers (workers = 1, sub[0] = itself). chunk >= 1. */
static effdim_mlp_ws *ws_alloc_one(const effdim_mlp *m, size_t chunk, effdim_error *err)
{
    effdim_mlp_ws *ws = effdim_calloc(1, sizeof *ws, "workspace", err);
    if (!ws) return NULL;
    size_t L = m->n_layers;
    ws->n_layers = L;
    memcpy(ws->sizes, m->sizes, (L + 1) * sizeof(size_t));
    ws->n_params = m->n_params;
    ws->chunk = chunk;
    ws->k = m->sizes[L];

    /* offsets in doubles into one block */
    size_t off = 0, at_x, at_y, at_z[EFFDIM_MLP_MAX_LAYERS], at_a[EFFDIM_MLP_MAX_LAYERS],
           at_d[EFFDIM_MLP_MAX_LAYERS], at_loss, at_scratch;
    int bad = ws_carve(chunk, m->sizes[0], &off, &at_x) || ws_carve(chunk, ws->k, &off, &at_y);
    for (size_t l = 0; l < L && !bad; ++l)
        bad = ws_carve(chunk, m->sizes[l + 1], &off, &at_z[l]) ||
              ws_carve(chunk, m->sizes[l + 1], &off, &at_a[l]) ||
              ws_carve(chunk, m->sizes[l + 1], &off, &at_d[l]);
    bad = bad || ws_carve(chunk, 1, &off, &at_loss) || ws_carve(m->n_params, 1, &off, &at_scratch);
    size_t bytes = 0;
    if (bad || effdim_mul_size(off, sizeof(double), &bytes)) {
        effdim_error_set(err, EFFDIM_ENOMEM, "workspace: %zu rows per chunk overflows size_t", chunk);
        goto fail;
    }
    if (posix_memalign(&ws->block, 64, bytes ? bytes : 64)) {
        ws->block = NULL;
        effdim_error_set(err, EFFDIM_ENOMEM, "workspace: cannot allocate %zu bytes (%zu rows per chunk)",
                         bytes, chunk);
        goto fail;
    }
    memset(ws->block, 0, bytes);
    ws->label_block = effdim_calloc(chunk, sizeof(int32_t), "workspace labels", err);
    if (!ws->label_block) goto fail;

    double *base = ws->block;
    ws->X = base + at_x;
    ws->Y = base + at_y;
    ws->labels = ws->label_block;
    for (size_t l = 0; l < L; ++l) {
        ws->Z[l] = base + at_z[l];
        ws->A[l] = base + at_a[l];
        ws->D[l] = base + at_d[l];
    }
    ws->rowloss = base + at_loss;
    ws->scratch = base + at_scratch;
    ws->bytes = sizeof *ws + bytes + chunk * sizeof(int32_t);
    ws->workers = 1;
    ws->sub[0] = ws;
    return ws;
fail:
    effdim_mlp_ws_free(ws);
    return NULL;
}

effdim_mlp_ws *effdim_mlp_ws_alloc_workers(const effdim_mlp *m, size_t chunk, size_t workers,
                                           effdim_error *err)
{
    if (!m || m->n_layers == 0 || m->n_layers > EFFDIM_MLP_MAX_LAYERS) {
        effdim_error_set(err, EFFDIM_EINVAL, "workspace: network not initialised");
        return NULL;
    }
    if (chunk == 0) chunk = 512;
    if (workers == 0) workers = 1;
    if (workers > EFFDIM_MLP_MAX_WORKERS) workers = EFFDIM_MLP_MAX_WORKERS;
    effdim_mlp_ws *ws = ws_alloc_one(m, chunk, err);
    if (!ws || workers == 1) return ws;
    size_t P = m->n_params, acc_bytes = 0;
    /* P <= SIZE_MAX / 32 (effdim_mlp_init), workers <= 64: no overflow */
    acc_bytes = (workers - 1) * P * sizeof(double);
    if (posix_memalign((void **)&ws->acc, 64, acc_bytes ? acc_bytes : 64)) {
        ws->acc = NULL;
        effdim_error_set(err, EFFDIM_ENOMEM,
                         "workspace: cannot allocate %zu bytes of gradient accumulators (%zu workers)",
                         acc_bytes, workers);
        goto fail;
    }
    ws->bytes += acc_bytes;
    for (size_t t = 1; t < workers; ++t) {
        ws->sub[t] = ws_alloc_one(m, chunk, err);
        if (!ws->sub[t]) goto fail;
        ws->workers = t + 1; /* what effdim_mlp_ws_free must release */
        ws->bytes += ws->sub[t]->bytes;
    }
    return ws;
fail:
    effdim_mlp_ws_free(ws);
    return NULL;
}

effdim_mlp_ws *effdim_mlp_ws_alloc(const effdim_mlp *m, size_t chunk, effdim_error *err)
{
    int t = effdim_blas_threads();
    return effdim_mlp_ws_alloc_workers(m, chunk, t > 1 ? (size_t)t : 1, err);
}

void effdim_mlp_ws_free(effdim_mlp_ws *ws)
{
    if (!ws) return;
    for (size_t t = 1; t < ws->workers; ++t) effdim_mlp_ws_free(ws->sub[t]);
    free(ws->acc);
    free(ws->block);
    free(ws->label_block);
    free(ws);
}

size_t effdim_mlp_ws_workers(const effdim_mlp_ws *ws) { return ws ? ws->workers : 0; }

size_t effdim_mlp_ws_chunk(const effdim_mlp_ws *ws) { return ws ? ws->chunk : 0; }

size_t effdim_mlp_ws_bytes(const effdim_mlp_ws *ws) { return ws ? ws->bytes : 0; }

effdim_status effdim_mlp_ws_check(const effdim_mlp *m, const effdim_mlp_ws *ws, effdim_error *err)
{
    RETURN_ERROR_IF(!ws, err, EFFDIM_EINVAL, "workspace is NULL");
    int same = m->n_layers == ws->n_layers && m->n_params == ws->n_params;
    for (size_t l = 0; same && l <= m->n_layers; ++l) same = m->sizes[l] == ws->sizes[l];
    RETURN_ERROR_IF(!same, err, EFFDIM_EINVAL,
                    "workspace: sized for a network of %zu layers and %zu parameters, used with "
                    "%zu layers and %zu parameters",
                    ws->n_layers, ws->n_params, m->n_layers, m->n_params);
    return EFFDIM_OK;
}

/* ======================================================================== */
/* chunks of a row selection                                                */
/* ======================================================================== */

effdim_status effdim_mlp_chunk_load(const effdim_dataset *ds, const size_t *rows, size_t start,
                                    size_t len, effdim_mlp_ws *ws, effdim_mlp_chunk *c,
                                    effdim_error *err)
{
    size_t d = ds->d, k = ds->k;
    c->len = len;
    c->first = start;
    if (!rows) { /* contiguous: point into the data set */
        c->X = ds->X + start * d;
        c->labels = ds->labels ? ds->labels + start : NULL;
        c->Y = ds->kind == EFFDIM_TARGET_REAL ? ds->Y + start * k : NULL;
        return EFFDIM_OK;
    }
    int real = ds->kind == EFFDIM_TARGET_REAL;
    for (size_t i = 0; i < len; ++i) {
        size_t r = rows[start + i];
        RETURN_ERROR_IF(r >= ds->n, err, EFFDIM_EINVAL,
                        "%s: rows[%zu] = %zu, but the data set has %zu rows", data_name(ds, NULL),
                        start + i, r, ds->n);
        memcpy(ws->X + i * d, ds->X + r * d, d * sizeof(double));
        if (real)
            memcpy(ws->Y + i * k, ds->Y + r * k, k * sizeof(double));
        else
            ws->labels[i] = ds->labels[r];
    }
    c->X = ws->X;
    c->labels = real ? NULL : ws->labels;
    c->Y = real ? ws->Y : NULL;
    return EFFDIM_OK;
}

/* ======================================================================== */
/* forward                                                                  */
/* ======================================================================== */

/* Z += b (broadcast over rows), A = act(Z); Z, A (len, w). */
static void bias_activate(effdim_activation act, const double *restrict b, double *restrict Z,
                          double *restrict A, size_t len, size_t w)
{
    for (size_t i = 0; i < len; ++i) {
        double *restrict z = Z + i * w, *restrict a = A + i * w;
        switch (act) {
        case EFFDIM_ACT_RELU:
            for (size_t j = 0; j < w; ++j) {
                double v = z[j] + b[j];
                z[j] = v;
                a[j] = v > 0.0 ? v : 0.0;
            }
            break;
        case EFFDIM_ACT_IDENTITY:
            for (size_t j = 0; j < w; ++j) {
                double v = z[j] + b[j];
                z[j] = v;
                a[j] = v;
            }
            break;
        default:
            for (size_t j = 0; j < w; ++j) {
                double v = z[j] + b[j];
                z[j] = v;
                a[j] = effdim_act_value(act, v);
            }
            break;
        }
    }
}

void effdim_mlp_forward(const effdim_mlp *m, const double *theta, const double *X, size_t len,
                        effdim_mlp_ws *ws)
{
    const double *in_act = X;
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        /* Z_l (len, out) = A_{l-1} (len, in) W_l^T, W_l (out, in) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)len, (int)out, (int)in, 1.0,
                    in_act, (int)in, theta + m->w_off[l], (int)in, 0.0, ws->Z[l], (int)out);
        bias_activate(m->act[l], theta + m->b_off[l], ws->Z[l], ws->A[l], len, out);
        in_act = ws->A[l];
    }
}

/* ======================================================================== */
/* loss at the outputs                                                      */
/* ======================================================================== */

static effdim_status output_cross_entropy(const effdim_mlp *m, const effdim_mlp_chunk *c,
                                          double s, int want_delta, effdim_mlp_ws *ws,
                                          double *loss_sum, effdim_error *err)
{
    size_t k = m->sizes[m->n_layers];
    const double *F = ws->A[m->n_layers - 1];
    double *D = ws->D[m->n_layers - 1], total = 0.0;
    for (size_t i = 0; i < c->len; ++i) {
        const double *f = F + i * k;
        int32_t y = c->labels[i];
        RETURN_ERROR_IF(y < 0 || (size_t)y >= k, err, EFFDIM_EINVAL,
                        "row %zu: label %d, but the network has %zu outputs (labels must be in "
                        "[0, %zu))", c->first + i, (int)y, k, k);
        double mx = f[0];
        for (size_t j = 1; j < k; ++j) mx = f[j] > mx ? f[j] : mx;
        double sum = 0.0;
        if (want_delta) {
            double *d = D + i * k;
            for (size_t j = 0; j < k; ++j) sum += (d[j] = exp(f[j] - mx));
            double q = s / sum; /* d = s * (softmax - onehot) */
            for (size_t j = 0; j < k; ++j) d[j] *= q;
            d[y] -= s;
        } else {
            for (size_t j = 0; j < k; ++j) sum += exp(f[j] - mx);
        }
        double li = mx + log(sum) - f[y];
        ws->rowloss[i] = li;
        total += li;
    }
    *loss_sum = total;
    return EFFDIM_OK;
}

static void output_mse(const effdim_mlp *m, const effdim_mlp_chunk *c, double s, int want_delta,
                       effdim_mlp_ws *ws, double *loss_sum)
{
    size_t k = m->sizes[m->n_layers];
    const double *F = ws->A[m->n_layers - 1];
    double *D = ws->D[m->n_layers - 1], total = 0.0;
    /* per-sample l_i = c_l sum_j r_ij^2, dl_i/df = 2 c_l r_i */
    double cl = m->reduction == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)k : 1.0;
    double q = 2.0 * cl * s;
    for (size_t i = 0; i < c->len; ++i) {
        const double *f = F + i * k, *y = c->Y + i * k;
        double sq = 0.0;
        for (size_t j = 0; j < k; ++j) {
            double r = f[j] - y[j];
            sq += r * r;
        }
        if (want_delta) {
            double *d = D + i * k;
            for (size_t j = 0; j < k; ++j) d[j] = q * (f[j] - y[j]);
        }
        ws->rowloss[i] = cl * sq;
        total += cl * sq;
    }
    *loss_sum = total;
}

/* l_i = softplus(f) - y f in the form that neither overflows nor cancels:
 * max(f, 0) - y f + log1p(e^{-|f|}); dl_i/df = sigmoid(f) - y. */
static effdim_status output_bce(const effdim_mlp *m, const effdim_mlp_chunk *c, double s,
                                int want_delta, effdim_mlp_ws *ws, double *loss_sum,
                                effdim_error *err)
{
    const double *F = ws->A[m->n_layers - 1];
    double *D = ws->D[m->n_layers - 1], total = 0.0;
    for (size_t i = 0; i < c->len; ++i) {
        double f = F[i];
        int32_t y = c->labels[i];
        RETURN_ERROR_IF(y < 0 || y > 1, err, EFFDIM_EINVAL,
                        "row %zu: label %d, but loss bce takes labels 0 and 1", c->first + i,
                        (int)y);
        double e = exp(-fabs(f)); /* in (0, 1] */
        double li = (f > 0.0 ? f : 0.0) - (double)y * f + log1p(e);
        if (want_delta) {
            double p = f >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            D[i] = s * (p - (double)y);
        }
        ws->rowloss[i] = li;
        total += li;
    }
    *loss_sum = total;
    return EFFDIM_OK;
}

effdim_status effdim_mlp_output(const effdim_mlp *m, const effdim_mlp_chunk *c, double delta_scale,
                                int want_delta, effdim_mlp_ws *ws, double *loss_sum,
                                effdim_error *err)
{
    if (m->loss == EFFDIM_LOSS_CROSS_ENTROPY)
        return output_cross_entropy(m, c, delta_scale, want_delta, ws, loss_sum, err);
    if (m->loss == EFFDIM_LOSS_BCE) return output_bce(m, c, delta_scale, want_delta, ws, loss_sum, err);
    output_mse(m, c, delta_scale, want_delta, ws, loss_sum);
    return EFFDIM_OK;
}

void effdim_mlp_output_hess_apply(const effdim_mlp *m, const effdim_mlp_ws *ws, size_t len,
                                  double s, const double *v, double *out)
{
    size_t k = m->sizes[m->n_layers];
    const double *F = ws->A[m->n_layers - 1];
    if (m->loss == EFFDIM_LOSS_MSE) {
        double q = s * 2.0 * (m->reduction == EFFDIM_REDUCTION_MEAN ? 1.0 / (double)k : 1.0);
        for (size_t i = 0; i < len * k; ++i) out[i] = q * v[i];
        return;
    }
    if (m->loss == EFFDIM_LOSS_BCE) { /* one output: s p (1 - p) */
        for (size_t i = 0; i < len; ++i) {
            double p = effdim_act_value(EFFDIM_ACT_SIGMOID, F[i]);
            out[i] = s * p * (1.0 - p) * v[i];
        }
        return;
    }
    for (size_t i = 0; i < len; ++i) {
        const double *f = F + i * k, *vi = v + i * k;
        double *o = out + i * k;
        double mx = f[0], sum = 0.0, pv = 0.0;
        for (size_t j = 1; j < k; ++j) mx = f[j] > mx ? f[j] : mx;
        for (size_t j = 0; j < k; ++j) sum += exp(f[j] - mx);
        for (size_t j = 0; j < k; ++j) pv += exp(f[j] - mx) / sum * vi[j];
        for (size_t j = 0; j < k; ++j) {
            double p = exp(f[j] - mx) / sum;
            o[j] = s * p * (vi[j] - pv);
        }
    }
}

/* ======================================================================== */
/* backward                                                                 */
/* ======================================================================== */

/* D *= act'(Z) elementwise and, when gb != NULL, gb += column sums of D.
 * Z, A, D (len, w). */
static void act_backward(effdim_activation act, const double *restrict Z, const double *restrict A,
                         double *restrict D, size_t len, size_t w, double *restrict gb)
{
    for (size_t i = 0; i < len; ++i) {
        const double *restrict z = Z + i * w, *restrict a = A + i * w;
        double *restrict d = D + i * w;
        switch (act) {
        case EFFDIM_ACT_IDENTITY: break;
        case EFFDIM_ACT_RELU:
            for (size_t j = 0; j < w; ++j) d[j] = z[j] > 0.0 ? d[j] : 0.0;
            break;
        case EFFDIM_ACT_TANH:
            for (size_t j = 0; j < w; ++j) d[j] *= 1.0 - a[j] * a[j];
            break;
        case EFFDIM_ACT_SIGMOID:
            for (size_t j = 0; j < w; ++j) d[j] *= a[j] * (1.0 - a[j]);
            break;
        default:
            for (size_t j = 0; j < w; ++j) d[j] *= effdim_act_deriv(act, z[j], a[j]);
            break;
        }
        if (gb)
            for (size_t j = 0; j < w; ++j) gb[j] += d[j];
    }
}

void effdim_mlp_backward(const effdim_mlp *m, const double *theta, const double *X, size_t len,
                         double *grad, effdim_mlp_ws *ws)
{
    for (size_t l = m->n_layers; l-- > 0;) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        /* D_l (len, out) = dL/dA_l * act_l'(Z_l); bias gradient = its column sums */
        act_backward(m->act[l], ws->Z[l], ws->A[l], ws->D[l], len, out,
                     grad ? grad + m->b_off[l] : NULL);
        const double *prev = l ? ws->A[l - 1] : X; /* (len, in) */
        if (grad) /* g_W_l (out, in) += D_l^T (out, len) A_{l-1} (len, in) */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)len, 1.0,
                        ws->D[l], (int)out, prev, (int)in, 1.0, grad + m->w_off[l], (int)in);
        if (l) /* dL/dA_{l-1} (len, in) = D_l (len, out) W_l (out, in) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)len, (int)in, (int)out, 1.0,
                        ws->D[l], (int)out, theta + m->w_off[l], (int)in, 0.0, ws->D[l - 1],
                        (int)in);
    }
}

/* ======================================================================== */
/* drivers                                                                  */
/* ======================================================================== */

static effdim_status check_args(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                                const size_t *rows, size_t n_rows, effdim_mlp_ws *ws,
                                effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta || !ds, err, EFFDIM_EINVAL, "network, parameters or data is NULL");
    effdim_status st = effdim_mlp_ws_check(m, ws, err);
    if (st) return st;
    return effdim_mlp_check_call(m, ds, rows, n_rows, err);
}

/* BLAS takes int dimensions: the largest is max(chunk, widths). */
static effdim_status check_int_dims(const effdim_mlp *m, const effdim_mlp_ws *ws, effdim_error *err)
{
    RETURN_ERROR_IF(ws->chunk > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                    "workspace: %zu rows per chunk, BLAS takes at most %d", ws->chunk, INT32_MAX);
    for (size_t l = 0; l <= m->n_layers; ++l)
        RETURN_ERROR_IF(m->sizes[l] > (size_t)INT32_MAX, err, EFFDIM_EINVAL,
                        "network: sizes[%zu] = %zu, BLAS takes at most %d", l, m->sizes[l],
                        INT32_MAX);
    return EFFDIM_OK;
}

/* ---- one contiguous range of the selection, on one workspace ------------- */

/* Rows [begin, end) of the selection: loss sum into *total and, when
 * grad != NULL, the gradient ACCUMULATED into grad (scale = the reduction's
 * 1/n or 1 for the whole call). */
static effdim_status lossgrad_range(const effdim_mlp *m, const double *theta,
                                    const effdim_dataset *ds, const size_t *rows, size_t begin,
                                    size_t end, double scale, double *grad, effdim_mlp_ws *ws,
                                    double *total, effdim_error *err)
{
    double sum = 0.0;
    for (size_t start = begin; start < end; start += ws->chunk) {
        size_t len = end - start < ws->chunk ? end - start : ws->chunk;
        effdim_mlp_chunk c = {.len = 0};
        double part = 0.0;
        effdim_status st = effdim_mlp_chunk_load(ds, rows, start, len, ws, &c, err);
        if (st) return st;
        effdim_mlp_forward(m, theta, c.X, len, ws);
        st = effdim_mlp_output(m, &c, scale, grad != NULL, ws, &part, err);
        if (st) return st;
        sum += part;
        if (grad) effdim_mlp_backward(m, theta, c.X, len, grad, ws);
    }
    *total = sum;
    return EFFDIM_OK;
}

static size_t argmax(const double *f, size_t k)
{
    size_t best = 0;
    for (size_t j = 1; j < k; ++j)
        if (f[j] > f[best]) best = j;
    return best;
}

/* Rows [begin, end): loss sum and the count of argmax == label. */
static effdim_status evaluate_range(const effdim_mlp *m, const double *theta,
                                    const effdim_dataset *ds, const size_t *rows, size_t begin,
                                    size_t end, effdim_mlp_ws *ws, double *total, size_t *correct,
                                    effdim_error *err)
{
    size_t k = m->sizes[m->n_layers], hits = 0;
    double sum = 0.0;
    for (size_t start = begin; start < end; start += ws->chunk) {
        size_t len = end - start < ws->chunk ? end - start : ws->chunk;
        effdim_mlp_chunk c = {.len = 0};
        double part = 0.0;
        effdim_status st = effdim_mlp_chunk_load(ds, rows, start, len, ws, &c, err);
        if (st) return st;
        effdim_mlp_forward(m, theta, c.X, len, ws);
        st = effdim_mlp_output(m, &c, 1.0, 0, ws, &part, err);
        if (st) return st;
        sum += part;
        if (c.labels && m->loss == EFFDIM_LOSS_BCE)
            for (size_t i = 0; i < len; ++i)
                hits += (ws->A[m->n_layers - 1][i] > 0.0) == (c.labels[i] == 1);
        else if (c.labels)
            for (size_t i = 0; i < len; ++i)
                hits += argmax(ws->A[m->n_layers - 1] + i * k, k) == (size_t)c.labels[i];
    }
    *total = sum;
    *correct = hits;
    return EFFDIM_OK;
}

/* Row i of G (P) from the deltas of row i of the chunk: outer products. */
static void write_sample_grad(const effdim_mlp *m, const effdim_mlp_ws *ws, const double *X,
                              size_t i, double *restrict g)
{
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        const double *restrict a = (l ? ws->A[l - 1] : X) + i * in; /* (in) */
        const double *restrict dl = ws->D[l] + i * out;               /* (out) */
        double *restrict gw = g + m->w_off[l], *restrict gb = g + m->b_off[l];
        for (size_t o = 0; o < out; ++o) {
            double v = dl[o];
            double *restrict row = gw + o * in;
            for (size_t j = 0; j < in; ++j) row[j] = v * a[j];
            gb[o] = v;
        }
    }
}

/* Rows [begin, end): rows begin.. of G (n_rows, P) and of losses. */
static effdim_status per_sample_range(const effdim_mlp *m, const double *theta,
                                      const effdim_dataset *ds, const size_t *rows, size_t begin,
                                      size_t end, double *G, double *losses, effdim_mlp_ws *ws,
                                      effdim_error *err)
{
    size_t P = m->n_params;
    for (size_t start = begin; start < end; start += ws->chunk) {
        size_t len = end - start < ws->chunk ? end - start : ws->chunk;
        effdim_mlp_chunk c = {.len = 0};
        double part = 0.0;
        effdim_status st = effdim_mlp_chunk_load(ds, rows, start, len, ws, &c, err);
        if (st) return st;
        effdim_mlp_forward(m, theta, c.X, len, ws);
        /* scale 1: each row's delta is that of its own per-sample loss l_i */
        st = effdim_mlp_output(m, &c, 1.0, 1, ws, &part, err);
        if (st) return st;
        effdim_mlp_backward(m, theta, c.X, len, NULL, ws);
        for (size_t i = 0; i < len; ++i) write_sample_grad(m, ws, c.X, i, G + (start + i) * P);
        if (losses) memcpy(losses + start, ws->rowloss, len * sizeof(double));
    }
    return EFFDIM_OK;
}

/* ---- data-parallel calls: contiguous parts of whole chunks, one thread each */

typedef struct part_job {
    effdim_mlp_range_fn fn;
    void *arg;
    size_t begin, end; /* positions in the selection */
    effdim_mlp_ws *ws; /* this part's workspace */
    double *grad;      /* this part's gradient accumulator (zeroed here) or NULL */
    size_t n_params;
    double total;      /* out: fn's sum */
    size_t count;      /* out: fn's count */
    effdim_status st;
    effdim_error err;
} part_job;

static void *part_run(void *arg)
{
    part_job *j = arg;
    if (j->grad) memset(j->grad, 0, j->n_params * sizeof(double));
    j->st = j->fn(j->arg, j->begin, j->end, j->ws, j->grad, &j->total, &j->count, &j->err);
    return NULL;
}

/* Split rows [0, n_rows) into T = min(workers, chunks) parts balanced in
 * whole chunks (part t: chunks [t C / T, (t+1) C / T)) and run fn on each:
 * parts 1.. in their own threads, part 0 on the caller's, OpenBLAS at 1
 * thread meanwhile (restored after). A part whose thread cannot be created
 * runs on the caller's thread after part 0 (same result). Then grad = the
 * parts' accumulators summed in part order, total and count likewise. The
 * status and message are those of the lowest failing part. */
effdim_status effdim_mlp_split(effdim_mlp_ws *ws, size_t n_rows, size_t n_params,
                               effdim_mlp_range_fn fn, void *arg, double *grad, double *total,
                               size_t *count, effdim_error *err)
{
    size_t chunks = n_rows / ws->chunk + (n_rows % ws->chunk != 0);
    size_t T = ws->workers < chunks ? ws->workers : chunks;
    double sum = 0.0;
    size_t hits = 0;
    if (T <= 1) { /* serial: the caller's thread, BLAS threads as they are */
        if (grad) memset(grad, 0, n_params * sizeof(double));
        effdim_status st = fn(arg, 0, n_rows, ws, grad, &sum, &hits, err);
        if (st) return st;
        if (total) *total = sum;
        if (count) *count = hits;
        return EFFDIM_OK;
    }
    part_job jobs[EFFDIM_MLP_MAX_WORKERS];
    pthread_t tid[EFFDIM_MLP_MAX_WORKERS];
    int started[EFFDIM_MLP_MAX_WORKERS] = {0};
    for (size_t t = 0; t < T; ++t) {
        size_t c0 = t * chunks / T, c1 = (t + 1) * chunks / T;
        part_job *j = &jobs[t];
        j->fn = fn;
        j->arg = arg;
        j->begin = c0 * ws->chunk;
        j->end = c1 * ws->chunk < n_rows ? c1 * ws->chunk : n_rows;
        j->ws = ws->sub[t];
        j->grad = !grad ? NULL : t ? ws->acc + (t - 1) * n_params : grad;
        j->n_params = n_params;
        j->total = 0.0;
        j->count = 0;
        j->st = EFFDIM_OK;
        j->err.code = EFFDIM_OK;
        j->err.msg[0] = '\0';
    }
    int blas_threads = effdim_blas_threads();
    if (blas_threads != 1) effdim_blas_set_threads(1);
    for (size_t t = 1; t < T; ++t) started[t] = pthread_create(&tid[t], NULL, part_run, &jobs[t]) == 0;
    part_run(&jobs[0]);
    for (size_t t = 1; t < T; ++t) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            part_run(&jobs[t]);
    }
    if (blas_threads != 1) effdim_blas_set_threads(blas_threads);
    for (size_t t = 0; t < T; ++t)
        if (jobs[t].st) {
            if (err) *err = jobs[t].err;
            return jobs[t].st;
        }
    /* fixed order: part 0 + part 1 + ... (bitwise reproducible for a given T) */
    for (size_t t = 0; t < T; ++t) {
        sum += jobs[t].total;
        hits += jobs[t].count;
    }
    for (size_t t = 1; grad && t < T; ++t) {
        const double *a = jobs[t].grad;
        for (size_t i = 0; i < n_params; ++i) grad[i] += a[i];
    }
    if (total) *total = sum;
    if (count) *count = hits;
    return EFFDIM_OK;
}

/* what the three drivers' range functions need */
typedef struct call_ctx {
    const effdim_mlp *m;
    const double *theta;
    const effdim_dataset *ds;
    const size_t *rows;
    double scale;         /* loss_grad */
    double *G, *losses;   /* per_sample_grads */
} call_ctx;

static effdim_status lossgrad_part(void *arg, size_t begin, size_t end, effdim_mlp_ws *ws,
                                   double *grad, double *total, size_t *count, effdim_error *err)
{
    const call_ctx *c = arg;
    *count = 0;
    return lossgrad_range(c->m, c->theta, c->ds, c->rows, begin, end, c->scale, grad, ws, total,
                          err);
}

static effdim_status evaluate_part(void *arg, size_t begin, size_t end, effdim_mlp_ws *ws,
                                   double *grad, double *total, size_t *count, effdim_error *err)
{
    const call_ctx *c = arg;
    return evaluate_range(c->m, c->theta, c->ds, c->rows, begin, end, ws, total, count, err);
}

static effdim_status per_sample_part(void *arg, size_t begin, size_t end, effdim_mlp_ws *ws,
                                     double *grad, double *total, size_t *count, effdim_error *err)
{
    const call_ctx *c = arg;
    *total = 0.0;
    *count = 0;
    return per_sample_range(c->m, c->theta, c->ds, c->rows, begin, end, c->G, c->losses, ws, err);
}

/* ---- the public drivers --------------------------------------------------- */

effdim_status effdim_mlp_loss_grad(const effdim_mlp *m, const double *theta,
                                   const effdim_dataset *ds, const size_t *rows, size_t n_rows,
                                   double *loss, double *grad, effdim_mlp_ws *ws, effdim_error *err)
{
    effdim_status st = check_args(m, theta, ds, rows, n_rows, ws, err);
    if (!st) st = check_int_dims(m, ws, err);
    if (st) return st;
    int mean = m->reduction == EFFDIM_REDUCTION_MEAN;
    call_ctx c = {.m = m, .theta = theta, .ds = ds, .rows = rows,
                  .scale = mean ? 1.0 / (double)n_rows : 1.0};
    double total = 0.0;
    st = effdim_mlp_split(ws, n_rows, m->n_params, lossgrad_part, &c, grad, &total, NULL, err);
    if (st) return st;
    if (loss) *loss = mean ? total / (double)n_rows : total;
    return EFFDIM_OK;
}

effdim_status effdim_mlp_evaluate(const effdim_mlp *m, const double *theta,
                                  const effdim_dataset *ds, const size_t *rows, size_t n_rows,
                                  double *loss, double *accuracy, effdim_mlp_ws *ws,
                                  effdim_error *err)
{
    effdim_status st = check_args(m, theta, ds, rows, n_rows, ws, err);
    if (!st) st = check_int_dims(m, ws, err);
    if (st) return st;
    call_ctx c = {.m = m, .theta = theta, .ds = ds, .rows = rows};
    size_t correct = 0;
    double total = 0.0;
    st = effdim_mlp_split(ws, n_rows, m->n_params, evaluate_part, &c, NULL, &total, &correct, err);
    if (st) return st;
    if (loss) *loss = m->reduction == EFFDIM_REDUCTION_MEAN ? total / (double)n_rows : total;
    if (accuracy)
        *accuracy = ds->kind == EFFDIM_TARGET_LABELS ? (double)correct / (double)n_rows : (double)NAN;
    return EFFDIM_OK;
}

effdim_status effdim_mlp_predict(const effdim_mlp *m, const double *theta, const double *X,
                                 size_t n, double *out, effdim_mlp_ws *ws, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta || !X || !out, err, EFFDIM_EINVAL, "predict: NULL argument");
    effdim_status st = effdim_mlp_ws_check(m, ws, err);
    if (!st) st = check_int_dims(m, ws, err);
    if (st) return st;
    size_t d = m->sizes[0], k = m->sizes[m->n_layers];
    for (size_t start = 0; start < n; start += ws->chunk) {
        size_t len = n - start < ws->chunk ? n - start : ws->chunk;
        effdim_mlp_forward(m, theta, X + start * d, len, ws);
        memcpy(out + start * k, ws->A[m->n_layers - 1], len * k * sizeof(double));
    }
    return EFFDIM_OK;
}

effdim_status effdim_mlp_per_sample_grads(const effdim_mlp *m, const double *theta,
                                          const effdim_dataset *ds, const size_t *rows,
                                          size_t n_rows, double *G, double *losses,
                                          effdim_mlp_ws *ws, effdim_error *err)
{
    effdim_status st = check_args(m, theta, ds, rows, n_rows, ws, err);
    if (!st) st = check_int_dims(m, ws, err);
    if (st) return st;
    RETURN_ERROR_IF(!G, err, EFFDIM_EINVAL, "per-sample gradients: G is NULL");
    call_ctx c = {.m = m, .theta = theta, .ds = ds, .rows = rows, .G = G, .losses = losses};
    return effdim_mlp_split(ws, n_rows, m->n_params, per_sample_part, &c, NULL, NULL, NULL, err);
}
