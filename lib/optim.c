/* lib/optim.c: SGD, Adam, AMSGrad, AdamW and IVON on flat parameter vectors.
 *
 * Each step reproduces torch.optim's single-tensor code path (torch 1.13,
 * foreach=False) operation by operation, in the same order and with the same
 * intermediate roundings (the update rules are written out in effdim/optim.h).
 *
 * Rounding: PyTorch's vectorised CPU kernels (AVX2 / AVX-512 builds, the
 * usual x86-64 case) compute `a.add_(b, alpha=s)` as fma(b, s, a) and
 * `a.addcmul_(b, c, value=s)` as fma(s*b, c, a). effdim calls fma() at exactly
 * those places, so a replay of PyTorch's gradients reproduces its parameters
 * and state bit for bit on such machines (tests/test_optim.c measures 0 ulp);
 * against a PyTorch build without FMA kernels the difference is one rounding
 * per operation. glibc's fma() uses the FMA instruction when the CPU has it.
 *
 * References: PyTorch torch/optim/{sgd,adam,adamw}.py; Kingma and Ba 2015
 * (Adam); Reddi, Kale and Kumar 2018 (AMSGrad); Loshchilov and Hutter 2019
 * (AdamW); Sutskever et al. 2013 (Nesterov momentum as PyTorch implements it);
 * Shen et al. 2024, arXiv 2402.17641, and ivon-opt 0.1.3 (IVON; the rules as
 * ../shared/SEEDS.md section 2.2 writes them, in effdim/optim.h; no PyTorch
 * replay exists for it, its tests use closed forms and exact posteriors).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "effdim/optim.h"
#include "internal.h"
#include "normal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EFFDIM_ADAM_AVX2 1
#endif

/* ---- names and defaults ---- */

static const char *const kind_names[] = {"sgd", "adam", "amsgrad", "adamw", "ivon"};

const char *effdim_optim_kind_name(effdim_optim_kind kind)
{
    if ((unsigned)kind < sizeof kind_names / sizeof kind_names[0]) return kind_names[kind];
    return "?";
}

effdim_status effdim_optim_kind_parse(const char *name, effdim_optim_kind *kind, effdim_error *err)
{
    RETURN_ERROR_IF(!name || !kind, err, EFFDIM_EINVAL, "optimizer: name is NULL");
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; ++i) {
        if (!strcasecmp(name, kind_names[i])) {
            *kind = (effdim_optim_kind)i;
            return EFFDIM_OK;
        }
    }
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "optimizer '%s' unknown, expected sgd, adam, amsgrad, adamw or ivon",
                            name);
}

static const char *const hess_names[] = {"price", "gradsq"};

const char *effdim_ivon_hess_name(effdim_ivon_hess h)
{
    return (unsigned)h < 2 ? hess_names[h] : "?";
}

effdim_status effdim_ivon_hess_parse(const char *name, effdim_ivon_hess *h, effdim_error *err)
{
    RETURN_ERROR_IF(!name || !h, err, EFFDIM_EINVAL, "ivon: hess_approx is NULL");
    for (int i = 0; i < 2; ++i) {
        if (!strcasecmp(name, hess_names[i])) {
            *h = (effdim_ivon_hess)i;
            return EFFDIM_OK;
        }
    }
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "ivon: hess_approx '%s' unknown, expected price or gradsq", name);
}

effdim_optim_params effdim_optim_default_params(effdim_optim_kind kind)
{
    effdim_optim_params p;
    memset(&p, 0, sizeof p);
    switch (kind) {
    case EFFDIM_OPTIM_SGD:
        p.lr = 0.01;
        break;
    case EFFDIM_OPTIM_ADAM:
    case EFFDIM_OPTIM_AMSGRAD:
    case EFFDIM_OPTIM_ADAMW:
        p.lr = 1e-3;
        p.beta1 = 0.9;
        p.beta2 = 0.999;
        p.eps = 1e-8;
        p.amsgrad = kind == EFFDIM_OPTIM_AMSGRAD;
        p.weight_decay = kind == EFFDIM_OPTIM_ADAMW ? 1e-2 : 0.0;
        break;
    case EFFDIM_OPTIM_IVON: /* ivon-opt 0.1.3's defaults; lr and ess are required */
        p.lr = (double)NAN;
        p.ess = (double)NAN;
        p.hess_init = 1.0;
        p.beta1 = 0.9;
        p.beta2 = 0.99999;
        p.weight_decay = 1e-4;
        p.mc_samples = 1;
        p.hess_approx = EFFDIM_IVON_PRICE;
        p.clip_radius = (double)INFINITY;
        p.debias = 1;
        p.rescale_lr = 1;
        break;
    }
    return p;
}

/* ---- validation ---- */

static effdim_status check_nonneg(const char *who, const char *field, double v, effdim_error *err)
{
    RETURN_ERROR_IF(!(v >= 0.0) || !isfinite(v), err, EFFDIM_EINVAL,
                    "%s: %s = %g, expected a finite value >= 0", who, field, v);
    return EFFDIM_OK;
}

static effdim_status check_beta(const char *who, const char *field, double v, effdim_error *err)
{
    RETURN_ERROR_IF(!(v >= 0.0 && v < 1.0), err, EFFDIM_EINVAL, "%s: %s = %g, expected in [0, 1)",
                    who, field, v);
    return EFFDIM_OK;
}

/* ivon-opt 0.1.3's range checks, with lr and ess required */
static effdim_status check_ivon(const effdim_optim_params *p, effdim_error *err)
{
    RETURN_ERROR_IF(isnan(p->lr), err, EFFDIM_EINVAL,
                    "ivon: lr is required (no default; of the order of an SGD learning rate "
                    "with rescale_lr)");
    RETURN_ERROR_IF(isnan(p->ess), err, EFFDIM_EINVAL,
                    "ivon: ess is required (no default; normally the training-set size N)");
    effdim_status st;
    if ((st = check_nonneg("ivon", "lr", p->lr, err))) return st;
    if ((st = check_nonneg("ivon", "weight_decay", p->weight_decay, err))) return st;
    RETURN_ERROR_IF(!(p->ess > 0.0) || !isfinite(p->ess), err, EFFDIM_EINVAL,
                    "ivon: ess = %g, expected a finite value > 0", p->ess);
    RETURN_ERROR_IF(!(p->hess_init > 0.0) || !isfinite(p->hess_init), err, EFFDIM_EINVAL,
                    "ivon: hess_init = %g, expected a finite value > 0", p->hess_init);
    RETURN_ERROR_IF(!(p->beta1 >= 0.0 && p->beta1 <= 1.0), err, EFFDIM_EINVAL,
                    "ivon: beta1 = %g, expected in [0, 1]", p->beta1);
    RETURN_ERROR_IF(!(p->beta2 >= 0.0 && p->beta2 <= 1.0), err, EFFDIM_EINVAL,
                    "ivon: beta2 = %g, expected in [0, 1]", p->beta2);
    RETURN_ERROR_IF(!(p->clip_radius > 0.0), err, EFFDIM_EINVAL,
                    "ivon: clip_radius = %g, expected > 0 (inf: no clipping)", p->clip_radius);
    RETURN_ERROR_IF(p->mc_samples < 1, err, EFFDIM_EINVAL,
                    "ivon: mc_samples = %zu, expected at least 1", p->mc_samples);
    RETURN_ERROR_IF((unsigned)p->hess_approx > EFFDIM_IVON_GRADSQ, err, EFFDIM_EINVAL,
                    "ivon: hess_approx %d unknown, expected price or gradsq", (int)p->hess_approx);
    return EFFDIM_OK;
}

static effdim_status check_params(effdim_optim_kind kind, const effdim_optim_params *p,
                                  effdim_error *err)
{
    const char *who = effdim_optim_kind_name(kind);
    effdim_status st;
    if (kind == EFFDIM_OPTIM_IVON) return check_ivon(p, err);
    if ((st = check_nonneg(who, "lr", p->lr, err))) return st;
    if ((st = check_nonneg(who, "weight_decay", p->weight_decay, err))) return st;
    if (kind == EFFDIM_OPTIM_SGD) {
        if ((st = check_nonneg(who, "momentum", p->momentum, err))) return st;
        RETURN_ERROR_IF(!isfinite(p->dampening), err, EFFDIM_EINVAL,
                        "%s: dampening = %g, expected a finite value", who, p->dampening);
        RETURN_ERROR_IF(p->nesterov && (p->momentum <= 0.0 || p->dampening != 0.0), err,
                        EFFDIM_EINVAL,
                        "%s: nesterov needs momentum > 0 and dampening = 0 (got momentum %g, "
                        "dampening %g)",
                        who, p->momentum, p->dampening);
        return EFFDIM_OK;
    }
    if ((st = check_beta(who, "beta1", p->beta1, err))) return st;
    if ((st = check_beta(who, "beta2", p->beta2, err))) return st;
    return check_nonneg(who, "eps", p->eps, err);
}

/* ---- allocation ---- */

void effdim_optim_free(effdim_optim *opt)
{
    if (!opt) return;
    free(opt->exp_avg);
    free(opt->exp_avg_sq);
    free(opt->max_exp_avg_sq);
    free(opt->momentum_buffer);
    free(opt->hess);
    free(opt->momentum);
    free(opt->noise);
    free(opt->avg_grad);
    free(opt->avg_hess);
    free(opt);
}

static effdim_status alloc_vec(double **v, size_t n, const char *name, effdim_error *err)
{
    *v = effdim_calloc(n, sizeof(double), name, err);
    return *v ? EFFDIM_OK : EFFDIM_ENOMEM;
}

effdim_status effdim_optim_alloc(effdim_optim_kind kind, const effdim_optim_params *params,
                                 size_t n, effdim_optim **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "optimizer: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF((unsigned)kind > EFFDIM_OPTIM_IVON, err, EFFDIM_EINVAL,
                    "optimizer: kind %d unknown, expected sgd, adam, amsgrad, adamw or ivon",
                    (int)kind);
    RETURN_ERROR_IF(!params, err, EFFDIM_EINVAL, "%s: params is NULL", effdim_optim_kind_name(kind));
    RETURN_ERROR_IF(n == 0, err, EFFDIM_EINVAL, "%s: n = 0 parameters, expected at least 1",
                    effdim_optim_kind_name(kind));
    effdim_status st = check_params(kind, params, err);
    if (st) return st;

    effdim_optim *opt = effdim_calloc(1, sizeof *opt, "optimizer", err);
    if (!opt) return EFFDIM_ENOMEM;
    opt->kind = kind;
    opt->params = *params;
    opt->n = n;
    if (kind == EFFDIM_OPTIM_AMSGRAD) opt->params.amsgrad = 1;
    if (kind == EFFDIM_OPTIM_IVON) {
        opt->params.amsgrad = 0;
        opt->params.debias = params->debias != 0;
        opt->params.rescale_lr = params->rescale_lr != 0;
        if ((st = alloc_vec(&opt->hess, n, "hess", err)) ||
            (st = alloc_vec(&opt->momentum, n, "momentum", err)) ||
            (st = alloc_vec(&opt->noise, n, "ivon noise", err)) ||
            (st = alloc_vec(&opt->avg_grad, n, "ivon gradient mean", err)) ||
            (st = alloc_vec(&opt->avg_hess, n, "ivon hessian mean", err)))
            goto fail;
        for (size_t i = 0; i < n; ++i) opt->hess[i] = params->hess_init;
    } else if (kind == EFFDIM_OPTIM_SGD) {
        opt->params.amsgrad = 0;
        if (params->momentum != 0.0 && (st = alloc_vec(&opt->momentum_buffer, n, "momentum_buffer", err)))
            goto fail;
    } else {
        opt->params.amsgrad = opt->params.amsgrad != 0;
        if ((st = alloc_vec(&opt->exp_avg, n, "exp_avg", err))) goto fail;
        if ((st = alloc_vec(&opt->exp_avg_sq, n, "exp_avg_sq", err))) goto fail;
        if (opt->params.amsgrad && (st = alloc_vec(&opt->max_exp_avg_sq, n, "max_exp_avg_sq", err)))
            goto fail;
    }
    *out = opt;
    return EFFDIM_OK;
fail:
    effdim_optim_free(opt);
    return st;
}

void effdim_optim_reset(effdim_optim *opt)
{
    if (!opt) return;
    effdim_optim_state_vec v[EFFDIM_OPTIM_MAX_STATE];
    size_t k = effdim_optim_state(opt, v, EFFDIM_OPTIM_MAX_STATE);
    for (size_t i = 0; i < k; ++i) memset(v[i].data, 0, opt->n * sizeof(double));
    if (opt->hess)
        for (size_t i = 0; i < opt->n; ++i) opt->hess[i] = opt->params.hess_init;
    opt->t = 0;
    opt->momentum_ready = 0;
    opt->n_samples = 0;
    opt->sampled = 0;
}

/* ---- the steps ----
 *
 * Each update is an always-inline kernel with its branches as compile-time
 * flags; one loop function per optimiser family instantiates the variants,
 * so every loop body is branch-free. On x86-64 GCC builds the SGD loop is
 * also cloned for x86-64-v3 (AVX2 + FMA, picked at load time) and
 * auto-vectorised; the Adam loop has an explicit AVX2 + FMA version (see
 * adam_avx2). Every path gives bitwise the same results: fma, sqrt and
 * division are correctly rounded whether scalar or vector. */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define EFFDIM_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define EFFDIM_CLONES
#endif
#if defined(__GNUC__)
#define EFFDIM_INLINE static inline __attribute__((always_inline))
#else
#define EFFDIM_INLINE static inline
#endif

typedef struct sgd_coef {
    double wd;     /* L2 coefficient */
    double mom;    /* momentum */
    double keep;   /* 1 - dampening */
    double neg_lr; /* -lr */
} sgd_coef;

/* torch.optim.SGD, _single_tensor_sgd. mode: 0 no momentum, 1 first step
 * (buf = d), 2 momentum, 3 Nesterov after the first step, 4 Nesterov first. */
EFFDIM_INLINE void sgd_kernel(size_t n, double *restrict p, const double *restrict g,
                              double *restrict buf, const sgd_coef *c, const int l2, const int mode)
{
    const double wd = c->wd, mom = c->mom, keep = c->keep, neg_lr = c->neg_lr;
    for (size_t i = 0; i < n; ++i) {
        double d = l2 ? fma(p[i], wd, g[i]) : g[i]; /* grad.add(p, alpha=wd) */
        if (mode == 1 || mode == 4) buf[i] = d;     /* torch.clone(d) */
        if (mode == 2 || mode == 3) buf[i] = fma(d, keep, buf[i] * mom); /* mul_(mom).add_(d, alpha=1-damp) */
        if (mode == 3 || mode == 4) d = fma(buf[i], mom, d); /* d.add(buf, alpha=mom) */
        if (mode == 1 || mode == 2) d = buf[i];
        p[i] = fma(d, neg_lr, p[i]); /* p.add_(d, alpha=-lr) */
    }
}

EFFDIM_CLONES
static void sgd_loop(size_t n, double *restrict p, const double *restrict g, double *restrict buf,
                     const sgd_coef *c, int l2, int mode)
{
#define SGD_CASE(L, M)                          \
    case 5 * (L) + (M):                         \
        sgd_kernel(n, p, g, buf, c, (L), (M));  \
        break;
    switch (5 * (l2 != 0) + mode) {
        SGD_CASE(0, 0) SGD_CASE(0, 1) SGD_CASE(0, 2) SGD_CASE(0, 3) SGD_CASE(0, 4)
        SGD_CASE(1, 0) SGD_CASE(1, 1) SGD_CASE(1, 2) SGD_CASE(1, 3) SGD_CASE(1, 4)
    default: break;
    }
#undef SGD_CASE
}

static void sgd_step(effdim_optim *opt, double *p, const double *g, double lr)
{
    const sgd_coef c = {opt->params.weight_decay, opt->params.momentum, 1.0 - opt->params.dampening,
                        -lr};
    int mode = 0;
    if (opt->momentum_buffer) {
        if (opt->params.nesterov)
            mode = opt->momentum_ready ? 3 : 4;
        else
            mode = opt->momentum_ready ? 2 : 1;
        opt->momentum_ready = 1;
    }
    sgd_loop(opt->n, p, g, opt->momentum_buffer, &c, c.wd != 0.0, mode);
}

typedef struct adam_coef {
    double b1, b2, a1, a2; /* betas and 1 - betas */
    double wd;             /* L2 coefficient (Adam) */
    double shrink;         /* 1 - lr*wd (AdamW) */
    double neg_step_size;  /* -lr / (1 - b1^t) */
    double bc2_sqrt;       /* sqrt(1 - b2^t) */
    double eps;
} adam_coef;

/* torch.optim.Adam / AdamW, _single_tensor_adam(w), capturable = False.
 * decay: 0 none, 1 L2 in the gradient (Adam), 2 decoupled (AdamW). */
EFFDIM_INLINE void adam_kernel(size_t n, double *restrict p, const double *restrict g,
                               double *restrict m, double *restrict v, double *restrict vmax,
                               const adam_coef *c, const int decay, const int ams)
{
    const double b1 = c->b1, b2 = c->b2, a1 = c->a1, a2 = c->a2, wd = c->wd;
    const double shrink = c->shrink, neg_ss = c->neg_step_size, bc2s = c->bc2_sqrt, eps = c->eps;
    for (size_t i = 0; i < n; ++i) {
        double pi = p[i], gi = g[i];
        if (decay == 2) pi = pi * shrink;      /* param.mul_(1 - lr*wd) */
        if (decay == 1) gi = fma(pi, wd, gi);  /* grad.add(p, alpha=wd) */
        const double mi = fma(gi, a1, m[i] * b1);      /* mul_(b1).add_(g, alpha=1-b1) */
        const double vi = fma(a2 * gi, gi, v[i] * b2); /* mul_(b2).addcmul_(g, g, value=1-b2) */
        double vhat = vi;
        if (ams) { /* torch.maximum, which propagates NaN */
            const double old = vmax[i];
            vhat = (old < vi || vi != vi) ? vi : old;
            vmax[i] = vhat;
        }
        m[i] = mi;
        v[i] = vi;
        const double denom = sqrt(vhat) / bc2s + eps;
        p[i] = pi + neg_ss * mi / denom; /* addcdiv_(m, denom, value=-step_size) */
    }
}

/* The Adam loop with AVX2 + FMA intrinsics, 4 elements at a time. GCC does
 * not vectorise the scalar kernel by itself (sqrt may set errno, so it stays
 * a call); vsqrtpd, vdivpd and vfmadd are correctly rounded like their scalar
 * forms, so this gives bitwise the scalar kernel's results. Returns the
 * number of elements done (a multiple of 4); the caller finishes the tail. */
#ifdef EFFDIM_ADAM_AVX2
__attribute__((target("avx2,fma"))) static size_t adam_avx2(size_t n, double *p, const double *g,
                                                            double *m, double *v, double *vmax,
                                                            const adam_coef *c, int decay, int ams)
{
    const __m256d b1 = _mm256_set1_pd(c->b1), b2 = _mm256_set1_pd(c->b2);
    const __m256d a1 = _mm256_set1_pd(c->a1), a2 = _mm256_set1_pd(c->a2);
    const __m256d wd = _mm256_set1_pd(c->wd), shrink = _mm256_set1_pd(c->shrink);
    const __m256d neg_ss = _mm256_set1_pd(c->neg_step_size), bc2s = _mm256_set1_pd(c->bc2_sqrt);
    const __m256d eps = _mm256_set1_pd(c->eps);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d pi = _mm256_loadu_pd(p + i), gi = _mm256_loadu_pd(g + i);
        if (decay == 2) pi = _mm256_mul_pd(pi, shrink);
        if (decay == 1) gi = _mm256_fmadd_pd(pi, wd, gi);
        const __m256d mi = _mm256_fmadd_pd(gi, a1, _mm256_mul_pd(_mm256_loadu_pd(m + i), b1));
        const __m256d vi =
            _mm256_fmadd_pd(_mm256_mul_pd(a2, gi), gi, _mm256_mul_pd(_mm256_loadu_pd(v + i), b2));
        __m256d vhat = vi;
        if (ams) { /* (old < v || v is NaN) ? v : old */
            const __m256d old = _mm256_loadu_pd(vmax + i);
            const __m256d take = _mm256_or_pd(_mm256_cmp_pd(old, vi, _CMP_LT_OQ),
                                              _mm256_cmp_pd(vi, vi, _CMP_UNORD_Q));
            vhat = _mm256_blendv_pd(old, vi, take);
            _mm256_storeu_pd(vmax + i, vhat);
        }
        _mm256_storeu_pd(m + i, mi);
        _mm256_storeu_pd(v + i, vi);
        const __m256d denom = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(vhat), bc2s), eps);
        pi = _mm256_add_pd(pi, _mm256_div_pd(_mm256_mul_pd(neg_ss, mi), denom));
        _mm256_storeu_pd(p + i, pi);
    }
    return i;
}
#endif

static void adam_loop(size_t n, double *p, const double *g, double *m, double *v, double *vmax,
                      const adam_coef *c, int decay, int ams)
{
    size_t done = 0;
#ifdef EFFDIM_ADAM_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        done = adam_avx2(n, p, g, m, v, vmax, c, decay, ams);
    if (done == n) return;
    p += done;
    g += done;
    m += done;
    v += done;
    if (vmax) vmax += done;
    n -= done;
#endif
#define ADAM_CASE(D, A)                                 \
    case 2 * (D) + (A):                                 \
        adam_kernel(n, p, g, m, v, vmax, c, (D), (A));  \
        break;
    switch (2 * decay + (ams != 0)) {
        ADAM_CASE(0, 0) ADAM_CASE(0, 1) ADAM_CASE(1, 0) ADAM_CASE(1, 1) ADAM_CASE(2, 0) ADAM_CASE(2, 1)
    default: break;
    }
#undef ADAM_CASE
}

static void adam_step(effdim_optim *opt, double *p, const double *g, double lr)
{
    const effdim_optim_params *hp = &opt->params;
    const double step = (double)opt->t; /* already incremented */
    adam_coef c;
    c.b1 = hp->beta1;
    c.b2 = hp->beta2;
    c.a1 = 1.0 - hp->beta1;
    c.a2 = 1.0 - hp->beta2;
    c.wd = hp->weight_decay;
    c.shrink = 1.0 - lr * hp->weight_decay;
    c.neg_step_size = -(lr / (1.0 - pow(hp->beta1, step)));
    c.bc2_sqrt = sqrt(1.0 - pow(hp->beta2, step));
    c.eps = hp->eps;
    int decay = 0;
    if (opt->kind == EFFDIM_OPTIM_ADAMW)
        decay = 2; /* torch applies it even when wd = 0: p * 1.0 == p */
    else if (hp->weight_decay != 0.0)
        decay = 1;
    adam_loop(opt->n, p, g, opt->exp_avg, opt->exp_avg_sq, opt->max_exp_avg_sq, &c, decay,
              hp->amsgrad);
}

/* ---- IVON ----
 *
 * Every operation is element-wise. The definitions every path shares:
 *
 *   sigma   = sqrt((1 / (h + wd)) (1 / ess))     the sample's scale
 *   theta_s = m + sigma eps
 *   n_s     = theta_s - m                         the perturbation the gradient
 *                                                 saw, exactly as rounded
 *
 * With eps from lib/normal.c's single-precision stream the noise term is
 * formed in single precision too: theta_s = m + (double)(sqrtf((float)((1 /
 * (h + wd)) (1 / ess))) eps), one float square root and multiply instead of
 * a double square root (the state m, h, g and n_s stay double; a user's
 * double eps, effdim_optim_ivon_sample, keeps the double formula). The
 * variance is capped at FLT_MAX before the conversion, so sigma is at most
 * sqrt(FLT_MAX) = 1.8e19 instead of infinite (h + wd below 3e-39 / ess).
 *
 * and the step divides once by the old h + wd (r = (hhat - h)/(h + wd)) and
 * takes one reciprocal 1/(h_new + wd), which gives both the update and the
 * next sigma: two divisions and one (single-precision) square root per weight.
 * sqrt, division, multiplication and addition are correctly rounded in
 * scalar and vector forms alike and C11 mode keeps GCC from contracting into
 * FMAs, so the scalar loops, their x86-64-v3 clones and the AVX2 update give
 * bitwise the same numbers.
 *
 * Cost. With one sample a step the training loop calls
 * effdim_optim_ivon_step_and_sample: one pass that reads m, h, g, the
 * gradient and the sample it was taken at (n_s = theta_s - m from these, so
 * no noise or sigma vector goes through memory), writes m, h, g and the next
 * sample over the old one, and draws the next sample's normals in L1-sized
 * chunks straight into the loop: 5 vectors read and 4 written, against
 * Adam's 4 and 3. A sample's normals come by segments of
 * EFFDIM_NORMAL_SEGMENT weights, segment k from its own generator (seed,
 * stream, k): the sample is a pure function of (seed, stream, weight index).
 * The update is latency-bound (two divisions and a square root in one
 * chain): its AVX-512 loop keeps 8 weights an iteration in flight.
 * (Splitting these passes over a second thread was measured and dropped:
 * with OpenBLAS's pool threads spinning on the other core between the
 * gradient's products, a second thread there slowed both IVON's and Adam's
 * steps down, 2026-12-02, docs/performance.md.) */

#if defined(__GNUC__) && !defined(__clang__)
#define EFFDIM_NO_ERRNO __attribute__((optimize("no-math-errno")))
#else
#define EFFDIM_NO_ERRNO
#endif

EFFDIM_CLONES EFFDIM_NO_ERRNO
static void ivon_sigma_loop(size_t n, const double *restrict h, double iess, double wd,
                            double *restrict sigma)
{
    for (size_t i = 0; i < n; ++i) sigma[i] = sqrt((1.0 / (h[i] + wd)) * iess);
}

/* theta_s = m + sigma eps (sigma from h), noise = theta_s - m; eps and
 * theta_s may alias (eps[i] is read before theta_s[i] is written) */
EFFDIM_CLONES EFFDIM_NO_ERRNO
static void ivon_sample_loop(size_t n, const double *restrict h, double iess, double wd,
                             const double *restrict m, const double *eps, double *restrict noise,
                             double *theta_s)
{
    for (size_t i = 0; i < n; ++i) {
        const double t = m[i] + sqrt((1.0 / (h[i] + wd)) * iess) * eps[i];
        theta_s[i] = t;
        noise[i] = t - m[i];
    }
}

/* x as a float, capped at FLT_MAX (a variance 1/((h + wd) ess) above it
 * would give sigma = inf; NaN stays NaN), as the vector loops do */
static inline float to_float_capped(double x) { return (float)(x > (double)FLT_MAX ? (double)FLT_MAX : x); }

/* ivon_sample_loop with single-precision normals (the noise term in single
 * precision, as the step's next sample: see above) */
EFFDIM_CLONES EFFDIM_NO_ERRNO
static void ivon_sample_loop_f(size_t n, const double *restrict h, double iess, double wd,
                               const double *restrict m, const float *restrict eps,
                               double *restrict noise, double *restrict theta_s)
{
    for (size_t i = 0; i < n; ++i) {
        const float sg = sqrtf(to_float_capped((1.0 / (h[i] + wd)) * iess));
        const double t = m[i] + (double)(sg * eps[i]);
        theta_s[i] = t;
        noise[i] = t - m[i];
    }
}

/* The running means after one more sample: first = the first sample of the
 * step (the means are then the sample's own values, stored, not added). */
EFFDIM_INLINE void accumulate_kernel(size_t n, const double *restrict g,
                                     const double *restrict noise, double inv,
                                     double *restrict ag, double *restrict ah, const int gradsq,
                                     const int first)
{
    for (size_t i = 0; i < n; ++i) {
        const double x = gradsq ? g[i] * g[i] : noise[i] * g[i];
        if (first) {
            ag[i] = g[i];
            ah[i] = x;
        } else {
            ag[i] += (g[i] - ag[i]) * inv;
            ah[i] += (x - ah[i]) * inv;
        }
    }
}

EFFDIM_CLONES
static void ivon_accumulate_loop(size_t n, const double *restrict g, const double *restrict noise,
                                 double inv, int gradsq, int first, double *restrict ag,
                                 double *restrict ah)
{
    switch (2 * (gradsq != 0) + (first != 0)) {
    case 0: accumulate_kernel(n, g, noise, inv, ag, ah, 0, 0); break;
    case 1: accumulate_kernel(n, g, noise, inv, ag, ah, 0, 1); break;
    case 2: accumulate_kernel(n, g, noise, inv, ag, ah, 1, 0); break;
    default: accumulate_kernel(n, g, noise, inv, ag, ah, 1, 1); break;
    }
}

typedef struct ivon_coef {
    double b1, a1, a2;  /* beta1, 1 - beta1, 1 - beta2 */
    double wd, ess, r;  /* delta, lambda, clip radius */
    double iess;        /* 1 / ess */
    double idebias;     /* 1 / (1 - beta1^t), or 1 */
    double step;        /* the effective lr */
    double inv;         /* 1 / samples, for a gradient folded in by the step */
} ivon_coef;

/* One step over n weights. fold: 0 the means are in ag, ah; 1 grad is the
 * step's only sample; 2 grad is its last sample, folded into ag, ah (inv =
 * 1/count). The sample's perturbation (price, fold != 0): noise[i], or, with
 * noise NULL, theta_s[i] - m[i] (theta_s then holds the sample grad was taken
 * at). eps non-NULL: the next sample, theta_s = m + sigma eps with the new m
 * and h, written over the old one. The scalar loop; ivon_update_avx2 does the
 * same operations 4 at a time (GCC does not vectorise this loop: its sqrt
 * keeps an errno branch). */
static void ivon_update_scalar(size_t n, const ivon_coef *c, const int price, const int fold,
                               double *restrict m, double *restrict h, double *restrict g,
                               const double *restrict ag, const double *restrict ah,
                               const double *restrict grad, const double *restrict noise,
                               const float *restrict eps, double *restrict theta_s)
{
    const double b1 = c->b1, a1 = c->a1, a2 = c->a2, wd = c->wd, ess = c->ess, r = c->r;
    const double iess = c->iess, idebias = c->idebias, step = c->step, inv = c->inv;
    for (size_t i = 0; i < n; ++i) {
        double gb, hb;
        if (fold == 0) {
            gb = ag[i];
            hb = ah[i];
        } else {
            double x = grad[i] * grad[i];
            if (price) x = (noise ? noise[i] : theta_s[i] - m[i]) * grad[i];
            if (fold == 1) {
                gb = grad[i];
                hb = x;
            } else {
                gb = ag[i] + (grad[i] - ag[i]) * inv;
                hb = ah[i] + (x - ah[i]) * inv;
            }
        }
        const double hd = h[i] + wd; /* old h + delta > 0 */
        const double hhat = price ? ess * hd * hb : ess * hb;
        const double gi = b1 * g[i] + a1 * gb;
        /* h + wd <- (h + wd)(1/2 + (1/2)(1 + a r)^2), r = (hhat - h)/(h + wd) */
        const double q = 1.0 + a2 * ((hhat - h[i]) / hd);
        const double hn = hd * (0.5 + 0.5 * q * q) - wd; /* the new h */
        const double ihn = 1.0 / (hn + wd);
        double d = (gi * idebias + wd * m[i]) * ihn;
        d = d > r ? r : d < -r ? -r : d;
        const double mn = m[i] - step * d;
        g[i] = gi;
        h[i] = hn;
        m[i] = mn;
        if (eps) theta_s[i] = mn + (double)(sqrtf(to_float_capped(ihn * iess)) * eps[i]); /* as ivon_sample_loop_f */
    }
}

#ifdef EFFDIM_ADAM_AVX2
/* ivon_update_scalar's operations on 4 elements at a time (mul and add, no
 * fma, as the scalar code: bitwise the same); returns the elements done. */
__attribute__((target("avx2,fma"))) static size_t
ivon_update_avx2(size_t n, const ivon_coef *c, int price, int fold, double *m, double *h,
                 double *g, const double *ag, const double *ah, const double *grad,
                 const double *noise, const float *eps, double *theta_s)
{
    const __m256d b1 = _mm256_set1_pd(c->b1), a1 = _mm256_set1_pd(c->a1);
    const __m256d a2 = _mm256_set1_pd(c->a2), wd = _mm256_set1_pd(c->wd);
    const __m256d ess = _mm256_set1_pd(c->ess), r = _mm256_set1_pd(c->r);
    const __m256d nr = _mm256_set1_pd(-c->r), idebias = _mm256_set1_pd(c->idebias);
    const __m256d step = _mm256_set1_pd(c->step), inv = _mm256_set1_pd(c->inv);
    const __m256d iess = _mm256_set1_pd(c->iess), fmax4 = _mm256_set1_pd((double)FLT_MAX);
    const __m256d one = _mm256_set1_pd(1.0), half = _mm256_set1_pd(0.5);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d mi = _mm256_loadu_pd(m + i);
        __m256d gb, hb;
        if (fold == 0) {
            gb = _mm256_loadu_pd(ag + i);
            hb = _mm256_loadu_pd(ah + i);
        } else {
            const __m256d gr = _mm256_loadu_pd(grad + i);
            __m256d x = _mm256_mul_pd(gr, gr);
            if (price) {
                const __m256d e = noise ? _mm256_loadu_pd(noise + i)
                                        : _mm256_sub_pd(_mm256_loadu_pd(theta_s + i), mi);
                x = _mm256_mul_pd(e, gr);
            }
            if (fold == 1) {
                gb = gr;
                hb = x;
            } else {
                const __m256d ag0 = _mm256_loadu_pd(ag + i), ah0 = _mm256_loadu_pd(ah + i);
                gb = _mm256_add_pd(ag0, _mm256_mul_pd(_mm256_sub_pd(gr, ag0), inv));
                hb = _mm256_add_pd(ah0, _mm256_mul_pd(_mm256_sub_pd(x, ah0), inv));
            }
        }
        const __m256d hi = _mm256_loadu_pd(h + i);
        const __m256d hd = _mm256_add_pd(hi, wd);
        const __m256d hhat = price ? _mm256_mul_pd(_mm256_mul_pd(ess, hd), hb) : _mm256_mul_pd(ess, hb);
        const __m256d gi =
            _mm256_add_pd(_mm256_mul_pd(b1, _mm256_loadu_pd(g + i)), _mm256_mul_pd(a1, gb));
        const __m256d q =
            _mm256_add_pd(one, _mm256_mul_pd(a2, _mm256_div_pd(_mm256_sub_pd(hhat, hi), hd)));
        const __m256d hn = _mm256_sub_pd(
            _mm256_mul_pd(hd, _mm256_add_pd(half, _mm256_mul_pd(_mm256_mul_pd(half, q), q))), wd);
        const __m256d ihn = _mm256_div_pd(one, _mm256_add_pd(hn, wd));
        __m256d d = _mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(gi, idebias), _mm256_mul_pd(wd, mi)),
                                  ihn);
        /* d > r ? r : d < -r ? -r : d (NaN stays) */
        d = _mm256_blendv_pd(d, r, _mm256_cmp_pd(d, r, _CMP_GT_OQ));
        d = _mm256_blendv_pd(d, nr, _mm256_cmp_pd(d, nr, _CMP_LT_OQ));
        const __m256d mn = _mm256_sub_pd(mi, _mm256_mul_pd(step, d));
        _mm256_storeu_pd(g + i, gi);
        _mm256_storeu_pd(h + i, hn);
        _mm256_storeu_pd(m + i, mn);
        if (eps) {
            const __m256d v = _mm256_mul_pd(ihn, iess); /* capped at FLT_MAX, NaN kept */
            const __m256d vc = _mm256_blendv_pd(v, fmax4, _mm256_cmp_pd(v, fmax4, _CMP_GT_OQ));
            const __m128 sn = _mm_sqrt_ps(_mm256_cvtpd_ps(vc));
            const __m256d nz = _mm256_cvtps_pd(_mm_mul_ps(sn, _mm_loadu_ps(eps + i)));
            _mm256_storeu_pd(theta_s + i, _mm256_add_pd(mn, nz));
        }
    }
    return i;
}
#endif

#ifdef EFFDIM_ADAM_AVX2
/* The same operations 8 at a time (AVX-512F; bitwise the scalar loop), with
 * the flags as compile-time constants: the loop is latency-bound (two
 * divisions and a square root in one chain), and 8 lanes an iteration keep
 * twice the weights in flight. (Drawing the normals inside this loop, 16 an
 * iteration, instead of into an L1 buffer first was tried and measured no
 * faster, 2026-12-02.) */
#define IVON_T512 __attribute__((target("avx2,fma,avx512f")))
#define IVON_INLINE static inline __attribute__((always_inline))

typedef struct ivon512 {
    __m512d b1, a1, a2, wd, ess, r, nr, idebias, step, inv, iess, one, half, fmax;
} ivon512;

IVON_T512 IVON_INLINE ivon512 ivon512_set(const ivon_coef *c)
{
    ivon512 k;
    k.b1 = _mm512_set1_pd(c->b1);
    k.a1 = _mm512_set1_pd(c->a1);
    k.a2 = _mm512_set1_pd(c->a2);
    k.wd = _mm512_set1_pd(c->wd);
    k.ess = _mm512_set1_pd(c->ess);
    k.r = _mm512_set1_pd(c->r);
    k.nr = _mm512_set1_pd(-c->r);
    k.idebias = _mm512_set1_pd(c->idebias);
    k.step = _mm512_set1_pd(c->step);
    k.inv = _mm512_set1_pd(c->inv);
    k.iess = _mm512_set1_pd(c->iess);
    k.one = _mm512_set1_pd(1.0);
    k.half = _mm512_set1_pd(0.5);
    k.fmax = _mm512_set1_pd((double)FLT_MAX);
    return k;
}

IVON_T512 IVON_INLINE size_t ivon_avx512_kernel(size_t n, const ivon_coef *c, const int price,
                                                const int fold, double *m, double *h, double *g,
                                                const double *ag, const double *ah,
                                                const double *grad, const double *noise,
                                                const float *eps, double *theta_s,
                                                const int has_noise, const int has_eps)
{
    const ivon512 k = ivon512_set(c);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512d mi = _mm512_loadu_pd(m + i);
        __m512d gb, hb;
        if (fold == 0) {
            gb = _mm512_loadu_pd(ag + i);
            hb = _mm512_loadu_pd(ah + i);
        } else {
            const __m512d gr = _mm512_loadu_pd(grad + i);
            __m512d x = _mm512_mul_pd(gr, gr);
            if (price) {
                const __m512d e = has_noise ? _mm512_loadu_pd(noise + i)
                                            : _mm512_sub_pd(_mm512_loadu_pd(theta_s + i), mi);
                x = _mm512_mul_pd(e, gr);
            }
            if (fold == 1) {
                gb = gr;
                hb = x;
            } else {
                const __m512d ag0 = _mm512_loadu_pd(ag + i), ah0 = _mm512_loadu_pd(ah + i);
                gb = _mm512_add_pd(ag0, _mm512_mul_pd(_mm512_sub_pd(gr, ag0), k.inv));
                hb = _mm512_add_pd(ah0, _mm512_mul_pd(_mm512_sub_pd(x, ah0), k.inv));
            }
        }
        const __m512d hi = _mm512_loadu_pd(h + i);
        const __m512d hd = _mm512_add_pd(hi, k.wd);
        const __m512d hhat =
            price ? _mm512_mul_pd(_mm512_mul_pd(k.ess, hd), hb) : _mm512_mul_pd(k.ess, hb);
        const __m512d gi =
            _mm512_add_pd(_mm512_mul_pd(k.b1, _mm512_loadu_pd(g + i)), _mm512_mul_pd(k.a1, gb));
        const __m512d q =
            _mm512_add_pd(k.one, _mm512_mul_pd(k.a2, _mm512_div_pd(_mm512_sub_pd(hhat, hi), hd)));
        const __m512d hn = _mm512_sub_pd(
            _mm512_mul_pd(hd, _mm512_add_pd(k.half, _mm512_mul_pd(_mm512_mul_pd(k.half, q), q))),
            k.wd);
        const __m512d ihn = _mm512_div_pd(k.one, _mm512_add_pd(hn, k.wd));
        __m512d d = _mm512_mul_pd(
            _mm512_add_pd(_mm512_mul_pd(gi, k.idebias), _mm512_mul_pd(k.wd, mi)), ihn);
        /* d > r ? r : d < -r ? -r : d (NaN stays) */
        d = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(d, k.r, _CMP_GT_OQ), d, k.r);
        d = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(d, k.nr, _CMP_LT_OQ), d, k.nr);
        const __m512d mn = _mm512_sub_pd(mi, _mm512_mul_pd(k.step, d));
        _mm512_storeu_pd(g + i, gi);
        _mm512_storeu_pd(h + i, hn);
        _mm512_storeu_pd(m + i, mn);
        if (has_eps) {
            const __m512d v = _mm512_mul_pd(ihn, k.iess); /* capped at FLT_MAX, NaN kept */
            const __m512d vc =
                _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, k.fmax, _CMP_GT_OQ), v, k.fmax);
            const __m256 sn = _mm256_sqrt_ps(_mm512_cvtpd_ps(vc));
            const __m512d nz = _mm512_cvtps_pd(_mm256_mul_ps(sn, _mm256_loadu_ps(eps + i)));
            _mm512_storeu_pd(theta_s + i, _mm512_add_pd(mn, nz));
        }
    }
    return i;
}

IVON_T512 static size_t ivon_update_avx512(size_t n, const ivon_coef *c, int price, int fold,
                                           double *m, double *h, double *g, const double *ag,
                                           const double *ah, const double *grad,
                                           const double *noise, const float *eps,
                                           double *theta_s)
{
    const int hn = noise != NULL, he = eps != NULL;
#define IVON512(P, F, N, E)                                                                     \
    if (price == (P) && fold == (F) && hn == (N) && he == (E))                                 \
        return ivon_avx512_kernel(n, c, (P), (F), m, h, g, ag, ah, grad, noise, eps, theta_s, \
                                  (N), (E));
    /* the training loop's cases: one sample a step with the next drawn in
     * the pass (either estimator), and the plain steps */
    IVON512(1, 1, 0, 1) IVON512(0, 1, 0, 1) IVON512(1, 1, 1, 0) IVON512(0, 1, 1, 0)
    IVON512(1, 2, 1, 0) IVON512(0, 2, 1, 0) IVON512(1, 0, 1, 0) IVON512(0, 0, 1, 0)
#undef IVON512
    return 0; /* other combinations: the AVX2 loop */
}

#endif

static int ivon_loop_cap = 2;

void effdim_optim_ivon_loops(int cap) { ivon_loop_cap = cap < 0 ? 0 : cap > 2 ? 2 : cap; }

static void ivon_update_loop(size_t n, const ivon_coef *c, int price, int fold, double *m,
                             double *h, double *g, const double *ag, const double *ah,
                             const double *grad, const double *noise, const float *eps,
                             double *theta_s)
{
    size_t i = 0;
#ifdef EFFDIM_ADAM_AVX2
    if (ivon_loop_cap >= 2 && __builtin_cpu_supports("avx512f"))
        i = ivon_update_avx512(n, c, price, fold, m, h, g, ag, ah, grad, noise, eps, theta_s);
    if (ivon_loop_cap >= 1 && i + 4 <= n && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        i += ivon_update_avx2(n - i, c, price, fold, m + i, h + i, g + i, ag ? ag + i : NULL,
                              ah ? ah + i : NULL, grad ? grad + i : NULL,
                              noise ? noise + i : NULL, eps ? eps + i : NULL,
                              theta_s ? theta_s + i : NULL);
#endif
    if (i < n)
        ivon_update_scalar(n - i, c, price, fold, m + i, h + i, g + i, ag ? ag + i : NULL,
                           ah ? ah + i : NULL, grad ? grad + i : NULL, noise ? noise + i : NULL,
                           eps ? eps + i : NULL, theta_s ? theta_s + i : NULL);
}

effdim_status effdim_optim_ivon_sigma(const effdim_optim *opt, double *sigma, effdim_error *err)
{
    RETURN_ERROR_IF(!opt || !sigma || opt->kind != EFFDIM_OPTIM_IVON, err, EFFDIM_EINVAL,
                    "ivon sigma: needs an ivon optimizer and an output vector");
    ivon_sigma_loop(opt->n, opt->hess, 1.0 / opt->params.ess, opt->params.weight_decay, sigma);
    return EFFDIM_OK;
}

effdim_status effdim_optim_ivon_sample(effdim_optim *opt, const double *m, const double *eps,
                                       double *theta_s, effdim_error *err)
{
    RETURN_ERROR_IF(!opt || !m || !eps || !theta_s || opt->kind != EFFDIM_OPTIM_IVON, err,
                    EFFDIM_EINVAL, "ivon sample: needs an ivon optimizer, m, eps and theta_s");
    ivon_sample_loop(opt->n, opt->hess, 1.0 / opt->params.ess, opt->params.weight_decay, m, eps,
                     opt->noise, theta_s);
    opt->sampled = 1;
    return EFFDIM_OK;
}

/* normals drawn in L1-sized blocks (a multiple of EFFDIM_NORMAL_BLOCK that
 * divides EFFDIM_NORMAL_SEGMENT), so no eps array goes through memory */
#define IVON_NORMAL_CHUNK 2048
_Static_assert(EFFDIM_NORMAL_SEGMENT % IVON_NORMAL_CHUNK == 0 &&
                   IVON_NORMAL_CHUNK % EFFDIM_NORMAL_BLOCK == 0,
               "IVON's chunks tile a segment in whole blocks");

static size_t ivon_segments(size_t n)
{
    return n / EFFDIM_NORMAL_SEGMENT + (n % EFFDIM_NORMAL_SEGMENT != 0);
}

/* One IVON pass over weights [begin, end) (whole segments but the last):
 * the step (c non-NULL), the sample (ns non-NULL: its normals by segment),
 * or both. */
typedef struct ivon_pass {
    effdim_optim *opt;
    const ivon_coef *c;
    int price, fold;
    double *m;
    const double *grad, *noise; /* noise NULL: theta_s - m */
    const effdim_normal_stream *ns;
    double *theta_s;
} ivon_pass;

static void ivon_pass_range(void *arg, size_t begin, size_t end)
{
    const ivon_pass *a = arg;
    effdim_optim *o = a->opt;
    if (!a->ns) { /* the step alone */
        ivon_update_loop(end - begin, a->c, a->price, a->fold, a->m + begin, o->hess + begin,
                         o->momentum + begin, o->avg_grad + begin, o->avg_hess + begin,
                         a->grad ? a->grad + begin : NULL, a->noise ? a->noise + begin : NULL,
                         NULL, NULL);
        return;
    }
    const double iess = 1.0 / o->params.ess, wd = o->params.weight_decay;
    float eps[IVON_NORMAL_CHUNK];
    for (size_t s0 = begin; s0 < end; s0 += EFFDIM_NORMAL_SEGMENT) {
        effdim_normal_rng rng;
        effdim_normal_seed_segment(&rng, a->ns->seed, a->ns->stream,
                                   a->ns->segment + s0 / EFFDIM_NORMAL_SEGMENT);
        const size_t s1 = end - s0 < EFFDIM_NORMAL_SEGMENT ? end : s0 + EFFDIM_NORMAL_SEGMENT;
        for (size_t i = s0; i < s1; i += IVON_NORMAL_CHUNK) {
            const size_t len = s1 - i < IVON_NORMAL_CHUNK ? s1 - i : IVON_NORMAL_CHUNK;
            effdim_normal_fill(&rng, eps, len);
            if (a->c)
                ivon_update_loop(len, a->c, a->price, a->fold, a->m + i, o->hess + i,
                                 o->momentum + i, o->avg_grad + i, o->avg_hess + i,
                                 a->grad ? a->grad + i : NULL, NULL, eps, a->theta_s + i);
            else
                ivon_sample_loop_f(len, o->hess + i, iess, wd, a->m + i, eps, o->noise + i,
                                 a->theta_s + i);
        }
    }
}

effdim_status effdim_optim_ivon_sample_normal(effdim_optim *opt, const double *m,
                                              effdim_normal_stream *ns, double *theta_s,
                                              effdim_error *err)
{
    RETURN_ERROR_IF(!opt || !m || !ns || !theta_s || opt->kind != EFFDIM_OPTIM_IVON, err,
                    EFFDIM_EINVAL, "ivon sample: needs an ivon optimizer, m, a generator and theta_s");
    ivon_pass a = {opt, NULL, 0, 0, (double *)m, NULL, NULL, ns, theta_s};
    ivon_pass_range(&a, 0, opt->n);
    ns->segment += ivon_segments(opt->n);
    opt->sampled = 1;
    return EFFDIM_OK;
}

effdim_status effdim_optim_ivon_accumulate(effdim_optim *opt, const double *grad, effdim_error *err)
{
    RETURN_ERROR_IF(!opt || !grad || opt->kind != EFFDIM_OPTIM_IVON, err, EFFDIM_EINVAL,
                    "ivon accumulate: needs an ivon optimizer and a gradient");
    RETURN_ERROR_IF(opt->sampled == 2, err, EFFDIM_EINVAL,
                    "ivon accumulate: the last sample was drawn by the step (one sample a step); "
                    "step with its gradient instead");
    RETURN_ERROR_IF(!opt->sampled, err, EFFDIM_EINVAL,
                    "ivon accumulate: no weight sample drawn since the last gradient "
                    "(call effdim_optim_ivon_sample first)");
    opt->sampled = 0;
    const double inv = 1.0 / (double)(++opt->n_samples);
    ivon_accumulate_loop(opt->n, grad, opt->noise, inv,
                         opt->params.hess_approx == EFFDIM_IVON_GRADSQ, opt->n_samples == 1,
                         opt->avg_grad, opt->avg_hess);
    return EFFDIM_OK;
}

/* grad: NULL (the samples are accumulated) or the last sample's gradient;
 * ns: NULL, or the next step's sample, drawn into theta_s in the same pass
 * (theta_s holding, on entry, the sample grad was taken at) */
static void ivon_step(effdim_optim *opt, double *m, const double *grad, double lr,
                      effdim_normal_stream *ns, double *theta_s)
{
    const effdim_optim_params *p = &opt->params;
    ivon_coef c;
    c.b1 = p->beta1;
    c.a1 = 1.0 - p->beta1;
    c.a2 = 1.0 - p->beta2;
    c.wd = p->weight_decay;
    c.ess = p->ess;
    c.iess = 1.0 / p->ess;
    c.r = p->clip_radius;
    /* beta1 = 1 keeps g at 0: no debiasing then (it would be 0/0) */
    c.idebias = p->debias && p->beta1 < 1.0 ? 1.0 / (1.0 - pow(p->beta1, (double)opt->t)) : 1.0;
    c.step = p->rescale_lr ? lr * (p->hess_init + p->weight_decay) : lr;
    c.inv = 1.0 / (double)(opt->n_samples + 1);
    const int fold = !grad ? 0 : opt->n_samples == 0 ? 1 : 2;
    /* with the next sample drawn in the pass, the perturbation is theta_s - m
     * (the same number as the stored noise of a sample call) */
    ivon_pass a = {opt, &c, p->hess_approx == EFFDIM_IVON_PRICE, fold, m, grad,
                   ns ? NULL : opt->noise, ns, theta_s};
    ivon_pass_range(&a, 0, opt->n);
    if (ns) ns->segment += ivon_segments(opt->n);
    opt->n_samples = 0;
    opt->sampled = ns ? 2 : 0;
}

effdim_status effdim_optim_step(effdim_optim *opt, double *theta, const double *grad, double lr,
                                effdim_error *err)
{
    int ivon = opt && opt->kind == EFFDIM_OPTIM_IVON;
    RETURN_ERROR_IF(!opt || !theta || (!grad && !ivon), err, EFFDIM_EINVAL,
                    "optimizer step: NULL optimizer, theta or grad");
    RETURN_ERROR_IF(!(lr >= 0.0) || !isfinite(lr), err, EFFDIM_EINVAL,
                    "%s: step lr = %g, expected a finite value >= 0", effdim_optim_kind_name(opt->kind),
                    lr);
    RETURN_ERROR_IF(ivon && !grad && opt->n_samples == 0, err, EFFDIM_EINVAL,
                    "ivon: step without a sampled gradient (effdim_optim_ivon_sample, the gradient "
                    "at the sample, effdim_optim_ivon_accumulate, then the step)");
    RETURN_ERROR_IF(ivon && grad && opt->sampled == 2, err, EFFDIM_EINVAL,
                    "ivon: the last sample was drawn by effdim_optim_ivon_step_and_sample; step "
                    "with its gradient through that call");
    RETURN_ERROR_IF(ivon && grad && !opt->sampled, err, EFFDIM_EINVAL,
                    "ivon: step with a gradient but no weight sample drawn for it since the last "
                    "accumulation (effdim_optim_ivon_sample first)");
    opt->t += 1;
    if (opt->kind == EFFDIM_OPTIM_SGD)
        sgd_step(opt, theta, grad, lr);
    else if (ivon)
        ivon_step(opt, theta, grad, lr, NULL, NULL);
    else
        adam_step(opt, theta, grad, lr);
    return EFFDIM_OK;
}

effdim_status effdim_optim_ivon_step_and_sample(effdim_optim *opt, double *m, const double *grad,
                                               double lr, effdim_normal_stream *next,
                                               double *theta_s, effdim_error *err)
{
    RETURN_ERROR_IF(!opt || opt->kind != EFFDIM_OPTIM_IVON || !m || !next || !theta_s, err,
                    EFFDIM_EINVAL, "ivon step and sample: needs an ivon optimizer, m, a generator "
                    "and theta_s");
    RETURN_ERROR_IF(!(lr >= 0.0) || !isfinite(lr), err, EFFDIM_EINVAL,
                    "ivon: step lr = %g, expected a finite value >= 0", lr);
    RETURN_ERROR_IF(!grad && opt->n_samples == 0, err, EFFDIM_EINVAL,
                    "ivon: step without a sampled gradient");
    RETURN_ERROR_IF(grad && !opt->sampled, err, EFFDIM_EINVAL,
                    "ivon: step with a gradient but no weight sample drawn for it since the last "
                    "accumulation (effdim_optim_ivon_sample first)");
    opt->t += 1;
    ivon_step(opt, m, grad, lr, next, theta_s);
    return EFFDIM_OK;
}

/* ---- state access ---- */

size_t effdim_optim_state(effdim_optim *opt, effdim_optim_state_vec *vecs, size_t cap)
{
    if (!opt || !vecs) return 0;
    const effdim_optim_state_vec all[EFFDIM_OPTIM_MAX_STATE] = {
        {"exp_avg", opt->exp_avg},
        {"exp_avg_sq", opt->exp_avg_sq},
        {"max_exp_avg_sq", opt->max_exp_avg_sq},
        {"momentum_buffer", opt->momentum_buffer},
        {"hess", opt->hess},
        {"momentum", opt->momentum},
    };
    size_t k = 0;
    for (size_t i = 0; i < EFFDIM_OPTIM_MAX_STATE && k < cap; ++i)
        if (all[i].data) vecs[k++] = all[i];
    return k;
}

double *effdim_optim_state_find(effdim_optim *opt, const char *name)
{
    effdim_optim_state_vec v[EFFDIM_OPTIM_MAX_STATE];
    size_t k = effdim_optim_state(opt, v, EFFDIM_OPTIM_MAX_STATE);
    for (size_t i = 0; name && i < k; ++i)
        if (!strcmp(v[i].name, name)) return v[i].data;
    return NULL;
}

void effdim_optim_restore(effdim_optim *opt, size_t t, int momentum_loaded)
{
    if (!opt) return;
    opt->t = t;
    opt->momentum_ready = opt->momentum_buffer && momentum_loaded;
}
