/* effdim/amsgrad.h: the counterexample to Adam's convergence of Reddi, Kale
 * and Kumar, "On the Convergence of Adam and Beyond" (ICLR 2018, arXiv
 * 1904.09237), Section 3 and Figure 1, run with effdim's own optimisers.
 *
 * Problems, on the feasible set F = [-1, 1] with optimum x* = -1, starting at
 * x = 0 and projecting (clipping) after every step (t is 1-based):
 *   online:     f_t(x) = 1010 x if t mod 101 = 1, else -10 x
 *   stochastic: f_t(x) = 1010 x with probability 0.01, else -10 x
 *               (GSL mt19937 seeded with the run's seed; Adam and AMSGrad see
 *               the same gradient sequence)
 *   theorem1:   f_t(x) = C x if t mod 3 = 1, else -x, C = 3 (Theorem 1),
 *               beta1 = 0, beta2 = 1/(1+C^2), always alpha/sqrt(t)
 * Optimisers: effdim_optim_step's Adam and AMSGrad on a one-element vector
 * (PyTorch semantics, bias-corrected, eps 1e-8). Step sizes: constant lr, or
 * alpha/sqrt(t). Regret: R_T = sum_t f_t(x_t) - f_t(x*), x_t the point played
 * at step t (before its update).
 *
 * The finding a run is judged by: online and theorem1: Adam's final x >= 0.98
 * and AMSGrad's <= -0.9 (the thresholds); stochastic: the same order (Adam's
 * x > 0 > AMSGrad's), since one stochastic run depends on its random stream
 * (SEEDS.md 5.5); over several seeds, on the medians of the final x.
 *
 * The file (format "effdim.demo.amsgrad", version 1; docs/file-formats.md):
 *   /   attrs format, format_version, version, created, command, reference
 *   /<setting>_<const|sqrt>  attrs setting, lr_schedule, alpha, steps, every,
 *        beta1, beta2, eps, x0, x_star, seconds, reproduced; seed (stochastic),
 *        C (theorem1); datasets t [m], seeds [n_seeds] (stochastic)
 *   /<...>/adam, /<...>/amsgrad  datasets x [m], avg_regret [m]
 *        (+ final_x_by_seed, final_avg_regret_by_seed [n_seeds], stochastic);
 *        attrs final_x, final_avg_regret
 *
 * Ownership: a run owns its arrays after effdim_amsgrad_simulate;
 * effdim_amsgrad_run_free frees them (a zeroed run is safe to free).
 */
#ifndef EFFDIM_AMSGRAD_H
#define EFFDIM_AMSGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_amsgrad_setting {
    EFFDIM_AMSGRAD_ONLINE = 0,
    EFFDIM_AMSGRAD_STOCHASTIC = 1,
    EFFDIM_AMSGRAD_THEOREM1 = 2
} effdim_amsgrad_setting;

/* "online" | "stochastic" | "theorem1"; parse: EINVAL otherwise. */
EFFDIM_API const char *effdim_amsgrad_setting_name(effdim_amsgrad_setting s);
EFFDIM_API effdim_status effdim_amsgrad_setting_parse(const char *s, effdim_amsgrad_setting *out,
                                                      effdim_error *err);

#define EFFDIM_AMSGRAD_MAX_SEEDS 1000
#define EFFDIM_AMSGRAD_THEOREM1_C 3.0
#define EFFDIM_AMSGRAD_X_STAR (-1.0)

typedef struct effdim_amsgrad_params {
    effdim_amsgrad_setting setting;
    int sqrt_lr;          /* 1: alpha/sqrt(t); 0: constant lr */
    double alpha;         /* the constant lr, or alpha of alpha/sqrt(t) */
    size_t steps;         /* T */
    double beta1, beta2;
    uint64_t seed;        /* stochastic: the first seed */
    size_t n_seeds;       /* stochastic: seeds seed .. seed + n_seeds - 1 (1 to MAX_SEEDS) */
    size_t every;         /* record the trajectory every `every` steps */
} effdim_amsgrad_params;

/* The defaults of a setting and schedule: online/stochastic: betas (0.9,
 * 0.99), constant lr 1e-3 for 6e6 steps (the torchbearer reproduction) or
 * 0.5/sqrt(t) for 2e6 steps (the paper's form); theorem1: betas (0,
 * 1/(1+C^2)), 0.1/sqrt(t) for 3e5 steps (sqrt_lr is forced to 1). Seed 1,
 * one seed, every 1000 steps. */
EFFDIM_API effdim_amsgrad_params effdim_amsgrad_default_params(effdim_amsgrad_setting s,
                                                               int sqrt_lr);

enum { EFFDIM_AMSGRAD_ADAM = 0, EFFDIM_AMSGRAD_AMS = 1, EFFDIM_AMSGRAD_N_OPT = 2 };

typedef struct effdim_amsgrad_run {
    effdim_amsgrad_params p;
    size_t m;                                /* recorded points */
    double *t;                               /* (m) step of each point (0 first) */
    double *x[EFFDIM_AMSGRAD_N_OPT];         /* (m) x after step t; [0] Adam, [1] AMSGrad */
    double *avg[EFFDIM_AMSGRAD_N_OPT];       /* (m) R_t / t (0 at t = 0) */
    double final_x[EFFDIM_AMSGRAD_N_OPT];    /* the first seed's run */
    double final_avg[EFFDIM_AMSGRAD_N_OPT];
    double *seed_x[EFFDIM_AMSGRAD_N_OPT];    /* (n_seeds) final x per seed */
    double *seed_avg[EFFDIM_AMSGRAD_N_OPT];  /* (n_seeds) final R_T/T per seed */
    double seconds;
} effdim_amsgrad_run;

/* Run both optimisers for every seed of p (the trajectory for the first).
 * EINVAL for steps, every or n_seeds out of range or a non-positive alpha.
 * Progress: stage "amsgrad", units are steps over all seeds; a stop request
 * ends the run with EFFDIM_EMAXITER ("interrupted"). */
EFFDIM_API effdim_status effdim_amsgrad_simulate(const effdim_amsgrad_params *p,
                                                 effdim_amsgrad_run *out,
                                                 const effdim_progress *progress,
                                                 effdim_error *err);
EFFDIM_API void effdim_amsgrad_run_free(effdim_amsgrad_run *r);

/* Both thresholds met: Adam's x >= 0.98 and AMSGrad's x <= -0.9. */
EFFDIM_API int effdim_amsgrad_meets(double adam_x, double ams_x);
/* The finding of the setting for these finals (thresholds, or order for stochastic). */
EFFDIM_API int effdim_amsgrad_finding(effdim_amsgrad_setting s, double adam_x, double ams_x);
/* The run's verdict: the first seed's finals, or the medians over seeds. */
EFFDIM_API int effdim_amsgrad_reproduced(const effdim_amsgrad_run *r);
/* Fraction of seeds whose finals meet both thresholds. */
EFFDIM_API double effdim_amsgrad_fraction_meeting(const effdim_amsgrad_run *r);
/* Median, minimum and maximum of optimiser k's final x over the seeds. */
EFFDIM_API void effdim_amsgrad_seed_stats(const effdim_amsgrad_run *r, int k, double *median,
                                          double *min, double *max);

/* Write the runs to path in the layout above, atomically; cmdline is stored
 * as the root attribute "command" (may be NULL). */
EFFDIM_API effdim_status effdim_amsgrad_save(const char *path, const effdim_amsgrad_run *runs,
                                             size_t n, const char *cmdline, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_AMSGRAD_H */
