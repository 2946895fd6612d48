/* lib/amsgrad.c: the Adam-versus-AMSGrad counterexample of Reddi, Kale and
 * Kumar (ICLR 2018, arXiv 1904.09237, Section 3, Figure 1), its verdicts and
 * its file. The problems, defaults and layout are in effdim/amsgrad.h; the
 * optimisers are effdim_optim_step's (PyTorch's exact rules). */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/amsgrad.h"
#include "effdim/optim.h"
#include "h5io.h"
#include "internal.h"

static const char *const setting_names[] = {"online", "stochastic", "theorem1"};
static const char *const opt_names[EFFDIM_AMSGRAD_N_OPT] = {"adam", "amsgrad"};

const char *effdim_amsgrad_setting_name(effdim_amsgrad_setting s)
{
    return (unsigned)s <= EFFDIM_AMSGRAD_THEOREM1 ? setting_names[s] : "unknown";
}

effdim_status effdim_amsgrad_setting_parse(const char *s, effdim_amsgrad_setting *out,
                                           effdim_error *err)
{
    for (int i = 0; i <= EFFDIM_AMSGRAD_THEOREM1; ++i)
        if (s && !strcmp(s, setting_names[i])) {
            *out = (effdim_amsgrad_setting)i;
            return EFFDIM_OK;
        }
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "setting '%s' unknown, expected online, stochastic or theorem1",
                            s ? s : "(null)");
}

effdim_amsgrad_params effdim_amsgrad_default_params(effdim_amsgrad_setting s, int sqrt_lr)
{
    effdim_amsgrad_params p;
    memset(&p, 0, sizeof p);
    p.setting = s;
    p.seed = 1;
    p.n_seeds = 1;
    p.every = 1000;
    if (s == EFFDIM_AMSGRAD_THEOREM1) {
        const double C = EFFDIM_AMSGRAD_THEOREM1_C;
        p.sqrt_lr = 1;
        p.alpha = 0.1;
        p.steps = 300000;
        p.beta1 = 0.0;
        p.beta2 = 1.0 / (1.0 + C * C);
        return p;
    }
    p.sqrt_lr = sqrt_lr ? 1 : 0;
    p.alpha = sqrt_lr ? 0.5 : 1e-3;
    p.steps = sqrt_lr ? 2000000 : 6000000;
    p.beta1 = 0.9;
    p.beta2 = 0.99;
    return p;
}

/* ---- the simulation ---- */

static double gradient(effdim_amsgrad_setting set, size_t t, gsl_rng *rng)
{
    switch (set) {
    case EFFDIM_AMSGRAD_ONLINE: return t % 101 == 1 ? 1010.0 : -10.0;
    case EFFDIM_AMSGRAD_STOCHASTIC: return gsl_rng_uniform(rng) < 0.01 ? 1010.0 : -10.0;
    case EFFDIM_AMSGRAD_THEOREM1: return t % 3 == 1 ? EFFDIM_AMSGRAD_THEOREM1_C : -1.0;
    }
    return 0.0;
}

void effdim_amsgrad_run_free(effdim_amsgrad_run *r)
{
    if (!r) return;
    free(r->t);
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
        free(r->x[k]);
        free(r->avg[k]);
        free(r->seed_x[k]);
        free(r->seed_avg[k]);
    }
    memset(r, 0, sizeof *r);
}

static effdim_status run_alloc(effdim_amsgrad_run *r, effdim_error *err)
{
    size_t cap = r->p.steps / r->p.every + 2;
    r->t = effdim_alloc(cap, sizeof(double), "trajectory", err);
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT && r->t; ++k) {
        r->x[k] = effdim_alloc(cap, sizeof(double), "trajectory", err);
        r->avg[k] = effdim_alloc(cap, sizeof(double), "trajectory", err);
        r->seed_x[k] = effdim_alloc(r->p.n_seeds, sizeof(double), "final x by seed", err);
        r->seed_avg[k] = effdim_alloc(r->p.n_seeds, sizeof(double), "final regret by seed", err);
        if (!r->x[k] || !r->avg[k] || !r->seed_x[k] || !r->seed_avg[k]) return EFFDIM_ENOMEM;
    }
    return r->t ? EFFDIM_OK : EFFDIM_ENOMEM;
}

static void record(effdim_amsgrad_run *r, size_t t, const double *x, const double *regret)
{
    r->t[r->m] = (double)t;
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
        r->x[k][r->m] = x[k];
        r->avg[k][r->m] = t > 0 ? regret[k] / (double)t : 0.0; /* R_0/0 := 0 */
    }
    r->m++;
}

typedef struct sim_clock {
    const effdim_progress *progress;
    double start;
    size_t done_before; /* steps of the seeds already run */
    size_t total;
} sim_clock;

/* One pass over T steps of both optimisers with the stochastic stream seeded
 * by `seed`; records the trajectory when trace != 0. Final x and R_T/T into
 * fx and favg. */
static effdim_status simulate_once(effdim_amsgrad_run *r, uint64_t seed, int trace,
                                   const sim_clock *clk, double *fx, double *favg,
                                   effdim_error *err)
{
    const effdim_amsgrad_params *p = &r->p;
    effdim_optim *opt[EFFDIM_AMSGRAD_N_OPT] = {NULL, NULL};
    gsl_rng *rng = NULL;
    effdim_status st = EFFDIM_OK;
    effdim_schedule sched = effdim_schedule_constant(p->alpha);
    if (p->sqrt_lr) sched.kind = EFFDIM_SCHEDULE_INV_SQRT;
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
        effdim_optim_kind kind = k == EFFDIM_AMSGRAD_ADAM ? EFFDIM_OPTIM_ADAM : EFFDIM_OPTIM_AMSGRAD;
        effdim_optim_params op = effdim_optim_default_params(kind);
        op.lr = p->alpha;
        op.beta1 = p->beta1;
        op.beta2 = p->beta2;
        if ((st = effdim_optim_alloc(kind, &op, 1, &opt[k], err))) goto done;
    }
    if (p->setting == EFFDIM_AMSGRAD_STOCHASTIC) {
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            st = effdim_error_set(err, EFFDIM_ENOMEM, "out of memory for the random generator");
            goto done;
        }
        gsl_rng_set(rng, (unsigned long)seed);
    }

    double x[EFFDIM_AMSGRAD_N_OPT] = {0.0, 0.0}, regret[EFFDIM_AMSGRAD_N_OPT] = {0.0, 0.0};
    if (trace) record(r, 0, x, regret);
    for (size_t t = 1; t <= p->steps; ++t) {
        double g = gradient(p->setting, t, rng);
        double lr = effdim_schedule_lr(&sched, t);
        for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
            regret[k] += g * (x[k] - EFFDIM_AMSGRAD_X_STAR); /* f_t(x_t) - f_t(x*), linear f_t */
            if ((st = effdim_optim_step(opt[k], &x[k], &g, lr, err))) goto done;
            x[k] = x[k] > 1.0 ? 1.0 : x[k] < -1.0 ? -1.0 : x[k]; /* project after the step */
        }
        if (trace && (t % p->every == 0 || t == p->steps)) record(r, t, x, regret);
        if ((t & 0xFFFFF) == 0 &&
            effdim_progress_report(clk->progress, "amsgrad", clk->start, clk->done_before + t,
                                   clk->total, -1.0, "%s, %s, seed %llu",
                                   setting_names[p->setting],
                                   p->sqrt_lr ? "alpha/sqrt(t)" : "constant lr",
                                   (unsigned long long)seed)) {
            st = effdim_error_set(err, EFFDIM_EMAXITER, "interrupted at step %zu of %zu", t,
                                  p->steps);
            goto done;
        }
    }
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
        fx[k] = x[k];
        favg[k] = regret[k] / (double)p->steps;
    }
done:
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) effdim_optim_free(opt[k]);
    if (rng) gsl_rng_free(rng);
    return st;
}

effdim_status effdim_amsgrad_simulate(const effdim_amsgrad_params *p, effdim_amsgrad_run *out,
                                      const effdim_progress *progress, effdim_error *err)
{
    memset(out, 0, sizeof *out);
    RETURN_ERROR_IF(!p, err, EFFDIM_EINVAL, "amsgrad: no parameters");
    RETURN_ERROR_IF((unsigned)p->setting > EFFDIM_AMSGRAD_THEOREM1, err, EFFDIM_EINVAL,
                    "amsgrad: setting %d unknown", (int)p->setting);
    RETURN_ERROR_IF(p->steps < 1, err, EFFDIM_EINVAL, "amsgrad: steps: expected at least 1");
    RETURN_ERROR_IF(p->every < 1, err, EFFDIM_EINVAL, "amsgrad: every: expected at least 1");
    RETURN_ERROR_IF(p->n_seeds < 1 || p->n_seeds > EFFDIM_AMSGRAD_MAX_SEEDS, err, EFFDIM_EINVAL,
                    "amsgrad: n_seeds: expected 1 to %d, got %zu", EFFDIM_AMSGRAD_MAX_SEEDS,
                    p->n_seeds);
    RETURN_ERROR_IF(!(p->alpha > 0) || !isfinite(p->alpha), err, EFFDIM_EINVAL,
                    "amsgrad: alpha: expected a finite value > 0, got %g", p->alpha);
    out->p = *p;
    if (p->setting != EFFDIM_AMSGRAD_STOCHASTIC) out->p.n_seeds = 1;
    effdim_status st = run_alloc(out, err);
    if (st) {
        effdim_amsgrad_run_free(out);
        return st;
    }
    sim_clock clk = {progress, effdim_now(), 0, out->p.steps * out->p.n_seeds};
    for (size_t i = 0; i < out->p.n_seeds && !st; ++i) {
        double fx[EFFDIM_AMSGRAD_N_OPT], favg[EFFDIM_AMSGRAD_N_OPT];
        st = simulate_once(out, p->seed + i, i == 0, &clk, fx, favg, err);
        for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT && !st; ++k) {
            out->seed_x[k][i] = fx[k];
            out->seed_avg[k][i] = favg[k];
            if (i == 0) {
                out->final_x[k] = fx[k];
                out->final_avg[k] = favg[k];
            }
        }
        clk.done_before += out->p.steps;
    }
    out->seconds = effdim_now() - clk.start;
    if (st) effdim_amsgrad_run_free(out);
    return st;
}

/* ---- verdicts ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void effdim_amsgrad_seed_stats(const effdim_amsgrad_run *r, int k, double *median, double *min,
                               double *max)
{
    double buf[EFFDIM_AMSGRAD_MAX_SEEDS];
    size_t n = r->p.n_seeds > EFFDIM_AMSGRAD_MAX_SEEDS ? EFFDIM_AMSGRAD_MAX_SEEDS : r->p.n_seeds;
    memcpy(buf, r->seed_x[k], n * sizeof(double));
    qsort(buf, n, sizeof(double), cmp_double);
    *median = n % 2 ? buf[n / 2] : 0.5 * (buf[n / 2 - 1] + buf[n / 2]);
    *min = buf[0];
    *max = buf[n - 1];
}

int effdim_amsgrad_meets(double adam_x, double ams_x) { return adam_x >= 0.98 && ams_x <= -0.9; }

int effdim_amsgrad_finding(effdim_amsgrad_setting s, double adam_x, double ams_x)
{
    if (s == EFFDIM_AMSGRAD_STOCHASTIC) return adam_x > 0.0 && ams_x < 0.0;
    return effdim_amsgrad_meets(adam_x, ams_x);
}

double effdim_amsgrad_fraction_meeting(const effdim_amsgrad_run *r)
{
    size_t ok = 0;
    for (size_t i = 0; i < r->p.n_seeds; ++i)
        ok += (size_t)effdim_amsgrad_meets(r->seed_x[EFFDIM_AMSGRAD_ADAM][i],
                                           r->seed_x[EFFDIM_AMSGRAD_AMS][i]);
    return (double)ok / (double)r->p.n_seeds;
}

int effdim_amsgrad_reproduced(const effdim_amsgrad_run *r)
{
    if (r->p.n_seeds <= 1)
        return effdim_amsgrad_finding(r->p.setting, r->final_x[EFFDIM_AMSGRAD_ADAM],
                                      r->final_x[EFFDIM_AMSGRAD_AMS]);
    double ma, mm, lo, hi;
    effdim_amsgrad_seed_stats(r, EFFDIM_AMSGRAD_ADAM, &ma, &lo, &hi);
    effdim_amsgrad_seed_stats(r, EFFDIM_AMSGRAD_AMS, &mm, &lo, &hi);
    return effdim_amsgrad_finding(r->p.setting, ma, mm);
}

/* ---- the file ---- */

static effdim_status write_run(hid_t file, const effdim_amsgrad_run *r, effdim_error *err)
{
    const effdim_amsgrad_params *p = &r->p;
    char name[64];
    hid_t g = -1, sub = -1;
    snprintf(name, sizeof name, "%s_%s", setting_names[p->setting], p->sqrt_lr ? "sqrt" : "const");
    effdim_status st = effdim_h5_group(file, name, &g, err);
    if (st) return st;
    size_t dims[1] = {r->m}, sd[1] = {p->n_seeds};
    if ((st = effdim_h5_attr_write_string(g, "setting", setting_names[p->setting], err)) ||
        (st = effdim_h5_attr_write_string(g, "lr_schedule",
                                          p->sqrt_lr ? "alpha/sqrt(t)" : "constant", err)) ||
        (st = effdim_h5_attr_write_double(g, "alpha", p->alpha, err)) ||
        (st = effdim_h5_attr_write_int64(g, "steps", (int64_t)p->steps, err)) ||
        (st = effdim_h5_attr_write_int64(g, "every", (int64_t)p->every, err)) ||
        (st = effdim_h5_attr_write_double(g, "beta1", p->beta1, err)) ||
        (st = effdim_h5_attr_write_double(g, "beta2", p->beta2, err)) ||
        (st = effdim_h5_attr_write_double(g, "eps", 1e-8, err)) ||
        (st = effdim_h5_attr_write_double(g, "x0", 0.0, err)) ||
        (st = effdim_h5_attr_write_double(g, "x_star", EFFDIM_AMSGRAD_X_STAR, err)) ||
        (st = effdim_h5_attr_write_double(g, "seconds", r->seconds, err)) ||
        (st = effdim_h5_attr_write_int64(g, "reproduced", effdim_amsgrad_reproduced(r), err)) ||
        (st = effdim_h5_write_doubles(g, "t", 1, dims, r->t, err)))
        goto done;
    if (p->setting == EFFDIM_AMSGRAD_STOCHASTIC) {
        int64_t seeds[EFFDIM_AMSGRAD_MAX_SEEDS];
        for (size_t i = 0; i < p->n_seeds; ++i) seeds[i] = (int64_t)(p->seed + i);
        if ((st = effdim_h5_attr_write_int64(g, "seed", (int64_t)p->seed, err)) ||
            (st = effdim_h5_write_int64s(g, "seeds", 1, sd, seeds, err)))
            goto done;
    }
    if (p->setting == EFFDIM_AMSGRAD_THEOREM1 &&
        (st = effdim_h5_attr_write_double(g, "C", EFFDIM_AMSGRAD_THEOREM1_C, err)))
        goto done;
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
        if ((st = effdim_h5_group(g, opt_names[k], &sub, err))) goto done;
        if ((st = effdim_h5_write_doubles(sub, "x", 1, dims, r->x[k], err)) ||
            (st = effdim_h5_write_doubles(sub, "avg_regret", 1, dims, r->avg[k], err)) ||
            (st = effdim_h5_attr_write_double(sub, "final_x", r->final_x[k], err)) ||
            (st = effdim_h5_attr_write_double(sub, "final_avg_regret", r->final_avg[k], err)))
            goto done;
        if (p->setting == EFFDIM_AMSGRAD_STOCHASTIC &&
            ((st = effdim_h5_write_doubles(sub, "final_x_by_seed", 1, sd, r->seed_x[k], err)) ||
             (st = effdim_h5_write_doubles(sub, "final_avg_regret_by_seed", 1, sd, r->seed_avg[k],
                                           err))))
            goto done;
        H5Gclose(sub);
        sub = -1;
    }
done:
    if (sub >= 0) H5Gclose(sub);
    H5Gclose(g);
    return st;
}

effdim_status effdim_amsgrad_save(const char *path, const effdim_amsgrad_run *runs, size_t n,
                                  const char *cmdline, effdim_error *err)
{
    effdim_h5_atomic a;
    char now[64];
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    if ((st = effdim_h5_attr_write_string(a.file, "format", "effdim.demo.amsgrad", err)) ||
        (st = effdim_h5_attr_write_int64(a.file, "format_version", 1, err)) ||
        (st = effdim_h5_attr_write_string(a.file, "version", effdim_version(), err)) ||
        (st = effdim_h5_attr_write_string(a.file, "created", effdim_now_iso(now, sizeof now),
                                          err)) ||
        (st = effdim_h5_attr_write_string(a.file, "command", cmdline ? cmdline : "", err)) ||
        (st = effdim_h5_attr_write_string(a.file, "reference",
                                          "Reddi, Kale, Kumar, On the Convergence of Adam and "
                                          "Beyond, ICLR 2018 (arXiv 1904.09237)",
                                          err)))
        goto fail;
    for (size_t i = 0; i < n; ++i)
        if ((st = write_run(a.file, &runs[i], err))) goto fail;
    return effdim_h5_atomic_commit(&a, err);
fail:
    effdim_h5_atomic_abort(&a);
    return st;
}
