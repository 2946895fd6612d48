/* effdim/optim.h: first-order optimisers with PyTorch's exact update rules,
 * and learning-rate schedules.
 *
 * Optimisers work on flat vectors only: theta, grad and every state vector
 * are n doubles in the same (theta) order; they never see a network. One call
 * of effdim_optim_step is one call of PyTorch's optimizer.step() for a single
 * parameter tensor with foreach=False (torch.optim.SGD / Adam / AdamW,
 * "_single_tensor_*" code path of torch 1.13), operation by operation, so
 * results agree with PyTorch to rounding (the test replays PyTorch's
 * gradients and checks every parameter and state vector to 1e-12).
 *
 * Update rules (g = grad, p = theta, lr = the lr passed to the step, t = the
 * step count AFTER increment, so t = 1 on the first step; elementwise):
 *
 *   SGD (torch.optim.SGD):
 *     d = g + wd*p                                   (only when wd != 0)
 *     if momentum != 0:
 *        first step (no buffer yet):  buf = d        (a copy; no dampening)
 *        later:                        buf = momentum*buf + (1-dampening)*d
 *        d = nesterov ? d + momentum*buf : buf
 *     p = p - lr*d
 *
 *   Adam / AMSGrad (torch.optim.Adam, amsgrad = 0 / 1):
 *     g' = g + wd*p                                  (only when wd != 0: L2 in the gradient)
 *     m  = beta1*m + (1-beta1)*g'                    (torch: exp_avg.mul_(b1).add_(g, alpha=1-b1))
 *     v  = beta2*v + ((1-beta2)*g')*g'               (torch: mul_(b2).addcmul_(g, g, value=1-b2))
 *     bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t          (pow(beta, (double)t))
 *     step_size = lr / bc1
 *     amsgrad: vmax = max(vmax, v) and vhat = vmax, else vhat = v
 *              (the running max of the UNcorrected v; the max is then bias-corrected)
 *     denom = sqrt(vhat) / sqrt(bc2) + eps           (eps added AFTER the bias correction)
 *     p  = p + ((-step_size)*m) / denom              (torch: addcdiv_(m, denom, value=-step_size))
 *
 *   AdamW (torch.optim.AdamW): decoupled weight decay applied first, then Adam
 *   with wd = 0 in the gradient:
 *     p  = p * (1 - lr*wd)
 *     m, v, (vmax), denom, p as for Adam with g' = g.
 *
 *   IVON (Shen et al. 2024, "Variational Learning is Effective for Large
 *   Deep Networks"; ivon-opt 0.1.3's update), a variational optimiser: the
 *   weights theta are the posterior mean m, the state is a momentum g and a
 *   diagonal Hessian estimate h (init hess_init), the posterior is
 *   N(m, diag(sigma^2)) with sigma = 1/sqrt(ess (h + wd)), computed as
 *   sqrt((1/(h + wd)) (1/ess)). One step:
 *     for each of S Monte-Carlo samples:            (the caller drives this)
 *        effdim_optim_ivon_sample:     theta_s = m + sigma * eps_s,  n_s = theta_s - m
 *        (the caller computes g_s, the gradient of the MINIBATCH-MEAN loss at theta_s)
 *        effdim_optim_ivon_accumulate: gbar = mean_s g_s,
 *                                      price: hbar = mean_s n_s * g_s; gradsq: mean_s g_s^2
 *     effdim_optim_step (grad unused):
 *        hhat = price ? ess (h + wd) hbar : ess hbar
 *        g    = beta1 g + (1 - beta1) gbar
 *        h    = beta2 h + (1 - beta2) hhat + (1/2) (1 - beta2)^2 (h - hhat)^2 / (h + wd)
 *               (old h on the right), computed as
 *               h + wd = (h + wd) (1/2 + (1/2) (1 + (1 - beta2) r)^2),  r = (hhat - h)/(h + wd),
 *               the same number in exact arithmetic, and h_new + wd >= (h + wd)/2 holds
 *               after rounding too, however negative hhat is;
 *        gd   = debias ? g / (1 - beta1^t) : g           (not for beta1 = 1: g stays 0)
 *        lr'  = rescale_lr ? lr (hess_init + wd) : lr
 *        m    = m - lr' clip((gd + wd m) / (h + wd), -clip_radius, clip_radius)   (new h)
 *     The division by the new h + wd is a multiplication by its reciprocal,
 *     which also gives the next sigma, and 1/(1 - beta1^t) is one reciprocal
 *     per step: two divisions and one square root per weight and step, as
 *     Adam's.
 *
 * torch 1.13 (Debian's python3-torch) updates m with mul_/add_, not lerp_;
 * effdim does the same. (Later torch versions use exp_avg.lerp_(g, 1-b1);
 * the difference is one rounding, about 1e-16 relative.) Every "x + s*y"
 * above that PyTorch computes with add_(alpha=s) or addcmul_ is a fused
 * multiply-add, as in PyTorch's vectorised CPU kernels: results agree with
 * torch on x86-64 bit for bit (see lib/optim.c).
 *
 * State vectors (named as in the checkpoint layout, docs/file-formats.md),
 * allocated by effdim_optim_alloc as the kind needs them, NULL otherwise:
 *   SGD with momentum != 0:   momentum_buffer
 *   Adam, AdamW:              exp_avg, exp_avg_sq
 *   AMSGrad (or amsgrad = 1): exp_avg, exp_avg_sq, max_exp_avg_sq
 *   IVON:                     hess (h, starts at hess_init), momentum (g)
 * All others start at zero; the step count t starts at 0. IVON also holds
 * three scratch vectors (the current sample's noise and the two sample
 * means), which are not state: a checkpoint is taken between steps.
 *
 * Ownership: effdim_optim_alloc returns an object the caller frees with
 * effdim_optim_free (NULL is safe). The state vectors belong to it. theta and
 * grad belong to the caller. No call allocates after effdim_optim_alloc.
 */
#ifndef EFFDIM_OPTIM_H
#define EFFDIM_OPTIM_H

#include <stddef.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_optim_kind {
    EFFDIM_OPTIM_SGD = 0,
    EFFDIM_OPTIM_ADAM = 1,
    EFFDIM_OPTIM_AMSGRAD = 2, /* torch.optim.Adam(amsgrad=True) */
    EFFDIM_OPTIM_ADAMW = 3,
    EFFDIM_OPTIM_IVON = 4
} effdim_optim_kind;

/* IVON's Hessian estimator. */
typedef enum effdim_ivon_hess {
    EFFDIM_IVON_PRICE = 0, /* reparameterisation (Price / Stein): ess (h + wd) n * g */
    EFFDIM_IVON_GRADSQ = 1 /* squared gradients: ess g^2 */
} effdim_ivon_hess;

/* Hyperparameters. Fields a kind does not use are ignored (but still
 * validated when they would matter). */
typedef struct effdim_optim_params {
    double lr;           /* base learning rate (> = 0); the step call takes the lr to use */
    double momentum;     /* SGD: >= 0 (0 = no momentum buffer) */
    double dampening;    /* SGD: dampening of the momentum update */
    int nesterov;        /* SGD: 1 = Nesterov (needs momentum > 0 and dampening == 0) */
    double weight_decay; /* >= 0; SGD/Adam: L2 added to the gradient; AdamW: decoupled */
    double beta1;        /* Adam family: in [0, 1) */
    double beta2;        /* Adam family: in [0, 1) */
    double eps;          /* Adam family: >= 0, added to sqrt(vhat)/sqrt(bc2) */
    int amsgrad;         /* Adam family: 1 = keep max_exp_avg_sq (forced to 1 for AMSGRAD) */
    /* IVON (beta1, beta2 in [0, 1]; weight_decay is the prior precision per datum delta) */
    double ess;          /* effective sample size lambda, > 0, normally the training-set size */
    double hess_init;    /* h0 > 0 */
    size_t mc_samples;   /* >= 1 weight samples per step */
    effdim_ivon_hess hess_approx;
    double clip_radius;  /* > 0; +inf = no clipping */
    int debias;          /* 1: g / (1 - beta1^t) */
    int rescale_lr;      /* 1: the effective lr is lr (hess_init + weight_decay) */
} effdim_optim_params;

/* PyTorch's defaults, by value:
 *   SGD:     lr 0.01 (PyTorch requires lr; effdim's default), momentum 0,
 *            dampening 0, nesterov 0, weight_decay 0;
 *   Adam:    lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad 0;
 *   AMSGrad: as Adam with amsgrad 1;
 *   AdamW:   as Adam with weight_decay 1e-2;
 *   IVON:    ivon-opt's: lr and ess have no default (NaN: effdim_optim_alloc
 *            refuses them until set), hess_init 1, beta1 0.9, beta2 0.99999,
 *            weight_decay 1e-4, mc_samples 1, price, clip_radius +inf,
 *            debias 1, rescale_lr 1.
 * Unused fields are 0 (beta/eps fields are 0 for SGD). */
EFFDIM_API effdim_optim_params effdim_optim_default_params(effdim_optim_kind kind);

/* "sgd", "adam", "amsgrad", "adamw", "ivon" (case-insensitive) -> kind.
 * EFFDIM_EINVAL with a message listing the accepted names otherwise. */
EFFDIM_API effdim_status effdim_optim_kind_parse(const char *name, effdim_optim_kind *kind,
                                                 effdim_error *err);
/* kind -> "sgd" | "adam" | "amsgrad" | "adamw" | "ivon" ("?" for an unknown value). */
EFFDIM_API const char *effdim_optim_kind_name(effdim_optim_kind kind);
/* "price" | "gradsq" <-> effdim_ivon_hess (EFFDIM_EINVAL naming both otherwise). */
EFFDIM_API effdim_status effdim_ivon_hess_parse(const char *name, effdim_ivon_hess *h,
                                                effdim_error *err);
EFFDIM_API const char *effdim_ivon_hess_name(effdim_ivon_hess h);

/* Optimiser state. Read the fields freely; change them only through the
 * functions below (or by writing into the state vectors when loading). */
typedef struct effdim_optim {
    effdim_optim_kind kind;
    effdim_optim_params params; /* validated copy; amsgrad forced to 1 for AMSGRAD */
    size_t n;                   /* number of parameters */
    size_t t;                   /* steps taken (PyTorch's state['step']) */
    int momentum_ready;         /* SGD: 1 once momentum_buffer holds a value
                                   (after the first step or a restore) */
    double *exp_avg;            /* (n) first moment m, or NULL */
    double *exp_avg_sq;         /* (n) second moment v, or NULL */
    double *max_exp_avg_sq;     /* (n) running max of v (amsgrad), or NULL */
    double *momentum_buffer;    /* (n) SGD momentum buffer, or NULL */
    double *hess;               /* (n) IVON's h, or NULL */
    double *momentum;           /* (n) IVON's g, or NULL */
    double *noise;              /* (n) IVON scratch: the last sample's n_s = theta_s - m */
    double *avg_grad;           /* (n) IVON scratch: mean of the samples' gradients */
    double *avg_hess;           /* (n) IVON scratch: mean of n_s * g_s (price) or g_s^2 */
    size_t n_samples;           /* IVON: samples accumulated for the next step */
    int sampled;                /* IVON: 1 noise holds a sample not yet accumulated; 2 the
                                   sample was drawn inside the last step (lib/normal.h) */
} effdim_optim;

/* Allocate an optimiser for n parameters with zeroed state.
 * Validation (EFFDIM_EINVAL, message naming the field and the accepted range,
 * e.g. "adam: beta2 = 1.5, expected in [0, 1)"): lr, momentum, weight_decay,
 * eps >= 0 and finite; beta1, beta2 in [0, 1); dampening finite; nesterov
 * needs momentum > 0 and dampening == 0; n >= 1. IVON (ivon-opt 0.1.3's
 * checks): lr >= 0 and ess > 0 given ("ivon: lr is required"), weight_decay
 * >= 0, hess_init > 0, beta1 and beta2 in [0, 1], clip_radius > 0,
 * mc_samples >= 1, hess_approx price or gradsq. EFFDIM_ENOMEM on allocation
 * failure. On failure *out is NULL. */
EFFDIM_API effdim_status effdim_optim_alloc(effdim_optim_kind kind, const effdim_optim_params *params,
                                            size_t n, effdim_optim **out, effdim_error *err);
EFFDIM_API void effdim_optim_free(effdim_optim *opt);

/* Zero every state vector (IVON's hess: hess_init) and set t = 0 (a fresh
 * optimiser, same params). */
EFFDIM_API void effdim_optim_reset(effdim_optim *opt);

/* Apply ONE step in place to theta (n) given grad (n), with learning rate lr
 * (the scheduled value; params.lr is only the base). t is incremented first.
 * lr must be finite and >= 0 (EFFDIM_EINVAL otherwise; nothing changes).
 * grad is not modified. theta and grad must not overlap the state vectors.
 * IVON: grad NULL steps on the accumulated samples (EFFDIM_EINVAL when none
 * was accumulated); grad non-NULL is the gradient at the last sample drawn
 * and not yet accumulated (EFFDIM_EINVAL without one), folded into the means
 * in the update's own pass: the same step as effdim_optim_ivon_accumulate
 * (grad) and then a step with NULL, one pass over the vectors fewer.
 * No allocation; cost O(n) plus two pow() calls for the Adam family. */
EFFDIM_API effdim_status effdim_optim_step(effdim_optim *opt, double *theta, const double *grad,
                                           double lr, effdim_error *err);

/* ---- IVON's sampling (see the update rules above) ----
 *
 * sigma (n) = 1/sqrt(ess (h + weight_decay)): the posterior's standard
 * deviations, the noise scale of the next sample. */
EFFDIM_API effdim_status effdim_optim_ivon_sigma(const effdim_optim *opt, double *sigma,
                                                 effdim_error *err);
/* One weight sample: theta_s = m + sigma * eps and n_s = theta_s - m (kept
 * for the accumulation), from the mean m (= theta) and standard normal draws eps
 * (n, drawn by the caller: one fresh draw per weight and sample). eps and
 * theta_s may be the same array; m must not overlap them. */
EFFDIM_API effdim_status effdim_optim_ivon_sample(effdim_optim *opt, const double *m,
                                                  const double *eps, double *theta_s,
                                                  effdim_error *err);
/* Add the gradient (n) of the minibatch-mean loss at the last sample's
 * theta_s to the running means (mean += (x - mean) / count). EFFDIM_EINVAL
 * without a sample drawn since the last accumulation. */
EFFDIM_API effdim_status effdim_optim_ivon_accumulate(effdim_optim *opt, const double *grad,
                                                      effdim_error *err);

/* ---- generic access to the state, for checkpoints ----
 *
 * The state vectors this optimiser holds, in a fixed order, by their
 * checkpoint names: "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
 * "momentum_buffer", "hess", "momentum" (only those allocated for the kind). */
#define EFFDIM_OPTIM_MAX_STATE 6
typedef struct effdim_optim_state_vec {
    const char *name; /* static string */
    double *data;     /* (n) owned by the optimiser */
} effdim_optim_state_vec;

/* Fill vecs[0..*count) (cap >= EFFDIM_OPTIM_MAX_STATE entries suffices).
 * Returns the count. A save writes each vecs[i].data of n doubles under
 * /optimizer/<name>; a load reads into the same pointers. */
EFFDIM_API size_t effdim_optim_state(effdim_optim *opt, effdim_optim_state_vec *vecs, size_t cap);

/* The state vector with this name, or NULL if this optimiser has none. */
EFFDIM_API double *effdim_optim_state_find(effdim_optim *opt, const char *name);

/* After loading the state vectors from a checkpoint: set the step count to t
 * and say whether the momentum buffer was loaded (momentum_loaded = 1: the
 * next SGD step continues the buffer; 0: the next step starts it afresh from
 * d, as PyTorch does when state has no momentum_buffer). */
EFFDIM_API void effdim_optim_restore(effdim_optim *opt, size_t t, int momentum_loaded);

/* ---- learning-rate schedules ----
 *
 * The lr for the t-th optimiser step, t = 1, 2, ... (1-based). In PyTorch
 * terms, with scheduler.step() called once after every optimizer.step(), the
 * t-th optimizer.step() uses the scheduler at last_epoch e = t - 1. All
 * formulas below are written with e = t - 1 (the caller may equally advance a
 * schedule per epoch; t is then the 1-based epoch).
 *
 *   CONSTANT:  lr(e) = lr
 *   STEP:      lr(e) = lr * gamma^floor(e / step_size)       (StepLR)
 *   COSINE:    lr(e) = lr_min + (lr - lr_min) * (1 + cos(pi * e / t_max)) / 2
 *              for e <= t_max (CosineAnnealingLR's closed form), and lr_min
 *              for e > t_max (PyTorch's would rise again; effdim holds).
 *   INV_SQRT:  lr(e) = lr / sqrt(e + 1) = alpha / sqrt(t)   (no torch class;
 *              the paper form alpha_t = alpha/sqrt(t) of Reddi et al. 2018)
 *
 * Linear warm-up of w = warmup steps composes with any of them the way
 * torch's SequentialLR([LinearLR(start_factor=s, end_factor=1, total_iters=w),
 * main], milestones=[w]) does:
 *   e < w:   lr(e) = lr * (s + (1 - s) * e / w)
 *   e >= w:  the main schedule at e - w   (so it starts at its full lr).
 */
typedef enum effdim_schedule_kind {
    EFFDIM_SCHEDULE_CONSTANT = 0,
    EFFDIM_SCHEDULE_STEP = 1,
    EFFDIM_SCHEDULE_COSINE = 2,
    EFFDIM_SCHEDULE_INV_SQRT = 3
} effdim_schedule_kind;

typedef struct effdim_schedule {
    effdim_schedule_kind kind;
    double lr;           /* base lr (alpha for INV_SQRT), >= 0 */
    size_t step_size;    /* STEP: multiply by gamma every step_size steps (>= 1) */
    double gamma;        /* STEP: factor (default 0.1, as StepLR) */
    size_t t_max;        /* COSINE: steps to reach lr_min (>= 1) */
    double lr_min;       /* COSINE: final lr (eta_min, default 0) */
    size_t warmup;       /* steps of linear warm-up (0 = none) */
    double warmup_start; /* warm-up start factor s in (0, 1] (default 1/3, as LinearLR) */
} effdim_schedule;

/* A constant schedule at lr with the defaults above (gamma 0.1, step_size 1,
 * t_max 1, lr_min 0, warmup 0, warmup_start 1/3). */
EFFDIM_API effdim_schedule effdim_schedule_constant(double lr);

/* Check the fields (EFFDIM_EINVAL naming the field and the accepted range). */
EFFDIM_API effdim_status effdim_schedule_check(const effdim_schedule *s, effdim_error *err);

/* The lr for step t (1-based; t = 0 is treated as t = 1). Assumes a schedule
 * that passed effdim_schedule_check. */
EFFDIM_API double effdim_schedule_lr(const effdim_schedule *s, size_t t);

/* Parse a schedule spec with base lr `lr`:
 *   "const" | "constant"
 *   "step:every=K[,gamma=G]"
 *   "cosine:steps=T[,min=LRMIN]"
 *   "sqrt" | "invsqrt"                     (lr / sqrt(t))
 * each optionally followed by ",warmup=W[,start=S]" (or "warmup=W" as the
 * first key). Example: "cosine:steps=10000,min=1e-5,warmup=500".
 * EFFDIM_EINVAL with a message naming the bad key or value. */
EFFDIM_API effdim_status effdim_schedule_parse(const char *spec, double lr, effdim_schedule *out,
                                               effdim_error *err);

/* A spec string that effdim_schedule_parse reads back to the same schedule
 * (for provenance attributes), into buf of cap bytes; returns buf. */
EFFDIM_API const char *effdim_schedule_format(const effdim_schedule *s, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_OPTIM_H */
