/* tools/demo_amsgrad.c: `effdim demo amsgrad`, the counterexample to Adam's
 * convergence of Reddi, Kale and Kumar, "On the Convergence of Adam and
 * Beyond" (ICLR 2018, arXiv 1904.09237), Section 3 and Figure 1.
 *
 * Problems, on the feasible set F = [-1, 1] with optimum x* = -1, starting at
 * x = 0 and projecting (clipping) after every step (t is 1-based):
 *   online:     f_t(x) = 1010 x if t mod 101 = 1, else -10 x
 *   stochastic: f_t(x) = 1010 x with probability 0.01, else -10 x
 *               (GSL mt19937 seeded with --seed; Adam and AMSGrad see the
 *               same gradient sequence)
 *   theorem1:   f_t(x) = C x if t mod 3 = 1, else -x, C = 3 (Theorem 1),
 *               beta1 = 0, beta2 = 1/(1+C^2), always alpha/sqrt(t)
 * Optimisers: the library's own Adam and AMSGrad (effdim_optim_step on a
 * one-element vector: PyTorch semantics, bias-corrected, eps 1e-8),
 * beta1 = 0.9, beta2 = 0.99 (online, stochastic). Step sizes:
 *   const: lr = 1e-3 for 6e6 steps (the torchbearer reproduction);
 *   sqrt:  alpha/sqrt(t), alpha = 0.5, for 2e6 steps (the paper's form).
 * Regret: R_T = sum_t f_t(x_t) - f_t(x*), x_t the point played at step t
 * (before its update); the average R_T/T is recorded.
 *
 * Output: an HDF5 file (atomic write) with the subsampled trajectories, a
 * table or JSON summary, and a PNG plot drawn by gnuplot.
 */
#include <getopt.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "demo.h"
#include "plot.h"
#include "effdim/optim.h"
#include "h5io.h"
#include "internal.h"

#define CMD "demo amsgrad"

typedef enum setting { SET_ONLINE = 0, SET_STOCHASTIC = 1, SET_THEOREM1 = 2 } setting;
static const char *const setting_names[] = {"online", "stochastic", "theorem1"};

enum { OPT_ADAM = 0, OPT_AMSGRAD = 1, N_OPT = 2 };
static const char *const opt_names[N_OPT] = {"adam", "amsgrad"};

#define THEOREM1_C 3.0
#define X_STAR (-1.0)

/* One (setting, schedule) run of both optimisers and what it recorded. */
typedef struct run {
    setting set;
    int sqrt_lr;         /* 1: alpha/sqrt(t); 0: constant */
    double alpha;        /* lr (const) or alpha (sqrt) */
    size_t steps;        /* T */
    double beta1, beta2; /* optimiser betas */
    size_t m;            /* recorded points */
    double *t;           /* (m) step index of each point */
    double *x[N_OPT];    /* (m) x after step t */
    double *avg[N_OPT];  /* (m) R_t / t */
    double final_x[N_OPT];   /* the first seed's run */
    double final_avg[N_OPT];
    double seconds;
    size_t n_seeds;          /* stochastic: seeds run (1 = just the trajectory's) */
    double *seed_x[N_OPT];   /* (n_seeds) final x for seeds seed, seed+1, ... */
    double *seed_avg[N_OPT]; /* (n_seeds) final R_T/T */
} run;

typedef struct options {
    size_t steps;      /* 0 = the setting's default */
    int settings[3];   /* which settings to run */
    int schedules[2];  /* [0] const, [1] sqrt */
    double alpha;      /* < 0: default */
    double lr;         /* < 0: default */
    unsigned long seed;
    size_t seeds;      /* stochastic: run seeds seed .. seed+seeds-1 */
    size_t every;
    const char *out;
    const char *plot;
    int json;
    int check;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim demo amsgrad [options]\n\n"
            "Reddi, Kale and Kumar (2018): on f_t(x) = 1010x if t mod 101 = 1 else -10x over\n"
            "[-1, 1], Adam (beta 0.9, 0.99) drifts to x = +1, the worst point, while AMSGrad\n"
            "reaches the optimum x = -1. Runs effdim's own Adam and AMSGrad (PyTorch semantics).\n\n"
            "options:\n"
            "  --setting S        online | stochastic | theorem1 | all (default all)\n"
            "  --lr-schedule L    const | sqrt | both (default both)\n"
            "  --steps N          steps per run (default 6000000 const, 2000000 sqrt,\n"
            "                     300000 theorem1)\n"
            "  --lr LR            constant step size (default 1e-3)\n"
            "  --alpha A          alpha of alpha/sqrt(t) (default 0.5; theorem1 0.1)\n"
            "  --seed S           seed of the stochastic setting (default 1)\n"
            "  --seeds K          stochastic: also run seeds S+1 .. S+K-1 and judge the\n"
            "                     finding on the medians of the final x (default 1)\n"
            "  --every K          record every K steps (default 1000)\n"
            "  -o, --output FILE  HDF5 file of the trajectories (default amsgrad.h5)\n"
            "  --plot FILE.png    draw x_t and R_t/t with gnuplot\n"
            "  --check            exit 1 unless every run reproduces the finding: online\n"
            "                     and theorem1: Adam's final x >= 0.98 and AMSGrad's <= -0.9;\n"
            "                     stochastic: the same order (Adam's x > 0 > AMSGrad's),\n"
            "                     the thresholds are reported beside it\n"
            "  --json             print a JSON summary instead of the table\n"
            "  -h, --help         this help\n");
}

/* ---- the simulation ---- */

static double gradient(setting set, size_t t, gsl_rng *rng)
{
    switch (set) {
    case SET_ONLINE: return t % 101 == 1 ? 1010.0 : -10.0;
    case SET_STOCHASTIC: return gsl_rng_uniform(rng) < 0.01 ? 1010.0 : -10.0;
    case SET_THEOREM1: return t % 3 == 1 ? THEOREM1_C : -1.0;
    }
    return 0.0;
}

static void run_free(run *r)
{
    free(r->t);
    for (int k = 0; k < N_OPT; ++k) {
        free(r->x[k]);
        free(r->avg[k]);
        free(r->seed_x[k]);
        free(r->seed_avg[k]);
    }
}

static effdim_status run_alloc(run *r, size_t every, effdim_error *err)
{
    r->m = 0;
    size_t cap = r->steps / every + 2;
    r->t = effdim_alloc(cap, sizeof(double), "trajectory", err);
    for (int k = 0; k < N_OPT && r->t; ++k) {
        r->x[k] = effdim_alloc(cap, sizeof(double), "trajectory", err);
        r->avg[k] = effdim_alloc(cap, sizeof(double), "trajectory", err);
        r->seed_x[k] = effdim_alloc(r->n_seeds, sizeof(double), "final x by seed", err);
        r->seed_avg[k] = effdim_alloc(r->n_seeds, sizeof(double), "final regret by seed", err);
        if (!r->x[k] || !r->avg[k] || !r->seed_x[k] || !r->seed_avg[k]) return EFFDIM_ENOMEM;
    }
    return r->t ? EFFDIM_OK : EFFDIM_ENOMEM;
}

static void record(run *r, size_t t, const double *x, const double *regret)
{
    r->t[r->m] = (double)t;
    for (int k = 0; k < N_OPT; ++k) {
        r->x[k][r->m] = x[k];
        r->avg[k][r->m] = t > 0 ? regret[k] / (double)t : 0.0; /* R_0/0 := 0 */
    }
    r->m++;
}

/* One pass over T steps of both optimisers with the stochastic stream seeded
 * by `seed`; records the trajectory when trace != 0. Final x and R_T/T into
 * fx and favg. */
static effdim_status simulate_once(run *r, unsigned long seed, int trace, const options *o,
                                   cli_progress *prog, double *fx, double *favg, effdim_error *err)
{
    effdim_optim *opt[N_OPT] = {NULL, NULL};
    gsl_rng *rng = NULL;
    effdim_status st = EFFDIM_OK;
    effdim_schedule sched = effdim_schedule_constant(r->alpha);
    if (r->sqrt_lr) sched.kind = EFFDIM_SCHEDULE_INV_SQRT;
    for (int k = 0; k < N_OPT; ++k) {
        effdim_optim_kind kind = k == OPT_ADAM ? EFFDIM_OPTIM_ADAM : EFFDIM_OPTIM_AMSGRAD;
        effdim_optim_params p = effdim_optim_default_params(kind);
        p.lr = r->alpha;
        p.beta1 = r->beta1;
        p.beta2 = r->beta2;
        if ((st = effdim_optim_alloc(kind, &p, 1, &opt[k], err))) goto done;
    }
    if (r->set == SET_STOCHASTIC) {
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            st = effdim_error_set(err, EFFDIM_ENOMEM, "out of memory for the random generator");
            goto done;
        }
        gsl_rng_set(rng, seed);
    }

    double x[N_OPT] = {0.0, 0.0}, regret[N_OPT] = {0.0, 0.0};
    if (trace) record(r, 0, x, regret);
    for (size_t t = 1; t <= r->steps; ++t) {
        double g = gradient(r->set, t, rng);
        double lr = effdim_schedule_lr(&sched, t);
        for (int k = 0; k < N_OPT; ++k) {
            regret[k] += g * (x[k] - X_STAR); /* f_t(x_t) - f_t(x*) for linear f_t */
            if ((st = effdim_optim_step(opt[k], &x[k], &g, lr, err))) goto done;
            x[k] = x[k] > 1.0 ? 1.0 : x[k] < -1.0 ? -1.0 : x[k]; /* project after the step */
        }
        if (trace && (t % o->every == 0 || t == r->steps)) record(r, t, x, regret);
        if ((t & 0xFFFFF) == 0)
            cli_progress_update(prog, (double)t / (double)r->steps, "%s, %s, seed %lu: step %zu of %zu",
                                setting_names[r->set], r->sqrt_lr ? "alpha/sqrt(t)" : "constant lr", seed,
                                t, r->steps);
    }
    for (int k = 0; k < N_OPT; ++k) {
        fx[k] = x[k];
        favg[k] = regret[k] / (double)r->steps;
    }
done:
    for (int k = 0; k < N_OPT; ++k) effdim_optim_free(opt[k]);
    if (rng) gsl_rng_free(rng);
    return st;
}

/* The run: the trajectory for o->seed, then the other seeds' finals. */
static effdim_status simulate(run *r, const options *o, cli_progress *prog, effdim_error *err)
{
    effdim_status st = run_alloc(r, o->every, err);
    if (st) return st;
    const double t0 = effdim_now();
    for (size_t i = 0; i < r->n_seeds && !st; ++i) {
        double fx[N_OPT], favg[N_OPT];
        st = simulate_once(r, o->seed + i, i == 0, o, prog, fx, favg, err);
        for (int k = 0; k < N_OPT && !st; ++k) {
            r->seed_x[k][i] = fx[k];
            r->seed_avg[k][i] = favg[k];
            if (i == 0) {
                r->final_x[k] = fx[k];
                r->final_avg[k] = favg[k];
            }
        }
    }
    r->seconds = effdim_now() - t0;
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_SEEDS 1000

/* median, min and max of v (n <= MAX_SEEDS) */
static void stats(const double *v, size_t n, double *med, double *lo, double *hi)
{
    double buf[MAX_SEEDS];
    if (n > MAX_SEEDS) n = MAX_SEEDS;
    memcpy(buf, v, n * sizeof(double));
    qsort(buf, n, sizeof(double), cmp_double);
    *med = n % 2 ? buf[n / 2] : 0.5 * (buf[n / 2 - 1] + buf[n / 2]);
    *lo = buf[0];
    *hi = buf[n - 1];
}

/* The thresholds of the online finding: Adam at or above +0.98, AMSGrad at or below -0.9. */
static int meets(double adam_x, double ams_x) { return adam_x >= 0.98 && ams_x <= -0.9; }

/* The finding a setting is judged by (issue 3): the thresholds in the online
 * and Theorem 1 problems; in the stochastic one "the same order": Adam ends on
 * the wrong side (x > 0, towards +1) and AMSGrad on the right side (x < 0,
 * towards the optimum -1). A single stochastic run depends on its random
 * stream (SEEDS.md 5.5), so the thresholds are reported there too, but they
 * are not the verdict. */
static int finding(setting set, double adam_x, double ams_x)
{
    if (set == SET_STOCHASTIC) return adam_x > 0.0 && ams_x < 0.0;
    return meets(adam_x, ams_x);
}

/* fraction of seeds whose finals meet the thresholds */
static double fraction_meeting(const run *r)
{
    size_t ok = 0;
    for (size_t i = 0; i < r->n_seeds; ++i) ok += (size_t)meets(r->seed_x[OPT_ADAM][i], r->seed_x[OPT_AMSGRAD][i]);
    return (double)ok / (double)r->n_seeds;
}

/* The finding (see finding()); over several seeds, the medians of the final
 * x must show it. */
static int reproduced(const run *r)
{
    if (r->n_seeds <= 1) return finding(r->set, r->final_x[OPT_ADAM], r->final_x[OPT_AMSGRAD]);
    double ma, mm, lo, hi;
    stats(r->seed_x[OPT_ADAM], r->n_seeds, &ma, &lo, &hi);
    stats(r->seed_x[OPT_AMSGRAD], r->n_seeds, &mm, &lo, &hi);
    return finding(r->set, ma, mm);
}

/* ---- output ---- */

static void group_name(const run *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s_%s", setting_names[r->set], r->sqrt_lr ? "sqrt" : "const");
}

static effdim_status write_run(hid_t file, const run *r, const options *o, effdim_error *err)
{
    char name[64];
    hid_t g = -1, sub = -1;
    group_name(r, name, sizeof name);
    effdim_status st = effdim_h5_group(file, name, &g, err);
    if (st) return st;
    size_t dims[1] = {r->m};
    if ((st = effdim_h5_attr_write_string(g, "setting", setting_names[r->set], err)) ||
        (st = effdim_h5_attr_write_string(g, "lr_schedule", r->sqrt_lr ? "alpha/sqrt(t)" : "constant", err)) ||
        (st = effdim_h5_attr_write_double(g, "alpha", r->alpha, err)) ||
        (st = effdim_h5_attr_write_int64(g, "steps", (int64_t)r->steps, err)) ||
        (st = effdim_h5_attr_write_int64(g, "every", (int64_t)o->every, err)) ||
        (st = effdim_h5_attr_write_double(g, "beta1", r->beta1, err)) ||
        (st = effdim_h5_attr_write_double(g, "beta2", r->beta2, err)) ||
        (st = effdim_h5_attr_write_double(g, "eps", 1e-8, err)) ||
        (st = effdim_h5_attr_write_double(g, "x0", 0.0, err)) ||
        (st = effdim_h5_attr_write_double(g, "x_star", X_STAR, err)) ||
        (st = effdim_h5_attr_write_double(g, "seconds", r->seconds, err)) ||
        (st = effdim_h5_attr_write_int64(g, "reproduced", reproduced(r), err)) ||
        (st = effdim_h5_write_doubles(g, "t", 1, dims, r->t, err)))
        goto done;
    if (r->set == SET_STOCHASTIC) {
        int64_t seeds[MAX_SEEDS];
        size_t sd[1] = {r->n_seeds};
        for (size_t i = 0; i < r->n_seeds; ++i) seeds[i] = (int64_t)(o->seed + i);
        if ((st = effdim_h5_attr_write_int64(g, "seed", (int64_t)o->seed, err)) ||
            (st = effdim_h5_write_int64s(g, "seeds", 1, sd, seeds, err)))
            goto done;
    }
    if (r->set == SET_THEOREM1 && (st = effdim_h5_attr_write_double(g, "C", THEOREM1_C, err))) goto done;
    for (int k = 0; k < N_OPT; ++k) {
        if ((st = effdim_h5_group(g, opt_names[k], &sub, err))) goto done;
        if ((st = effdim_h5_write_doubles(sub, "x", 1, dims, r->x[k], err)) ||
            (st = effdim_h5_write_doubles(sub, "avg_regret", 1, dims, r->avg[k], err)) ||
            (st = effdim_h5_attr_write_double(sub, "final_x", r->final_x[k], err)) ||
            (st = effdim_h5_attr_write_double(sub, "final_avg_regret", r->final_avg[k], err)))
            goto done;
        size_t sd[1] = {r->n_seeds};
        if (r->set == SET_STOCHASTIC &&
            ((st = effdim_h5_write_doubles(sub, "final_x_by_seed", 1, sd, r->seed_x[k], err)) ||
             (st = effdim_h5_write_doubles(sub, "final_avg_regret_by_seed", 1, sd, r->seed_avg[k], err))))
            goto done;
        H5Gclose(sub);
        sub = -1;
    }
done:
    if (sub >= 0) H5Gclose(sub);
    H5Gclose(g);
    return st;
}

static effdim_status write_h5(const char *path, const run *runs, size_t n, const options *o,
                              const char *cmdline, effdim_error *err)
{
    effdim_h5_atomic a;
    char now[64];
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    if ((st = effdim_h5_attr_write_string(a.file, "format", "effdim.demo.amsgrad", err)) ||
        (st = effdim_h5_attr_write_int64(a.file, "format_version", 1, err)) ||
        (st = effdim_h5_attr_write_string(a.file, "version", effdim_version(), err)) ||
        (st = effdim_h5_attr_write_string(a.file, "created", cli_now_iso(now, sizeof now), err)) ||
        (st = effdim_h5_attr_write_string(a.file, "command", cmdline, err)) ||
        (st = effdim_h5_attr_write_string(a.file, "reference",
                                          "Reddi, Kale, Kumar, On the Convergence of Adam and Beyond, "
                                          "ICLR 2018 (arXiv 1904.09237)",
                                          err)))
        goto fail;
    for (size_t i = 0; i < n; ++i)
        if ((st = write_run(a.file, &runs[i], o, err))) goto fail;
    return effdim_h5_atomic_commit(&a, err);
fail:
    effdim_h5_atomic_abort(&a);
    return st;
}

static void run_title(const run *r, char *buf, size_t cap)
{
    if (r->set == SET_THEOREM1)
        snprintf(buf, cap, "theorem 1 (C = %g, betas 0, %.3g), %g/sqrt(t)", THEOREM1_C, r->beta2,
                 r->alpha);
    else if (r->sqrt_lr)
        snprintf(buf, cap, "%s, step size %g/sqrt(t)", setting_names[r->set], r->alpha);
    else
        snprintf(buf, cap, "%s, constant lr %g", setting_names[r->set], r->alpha);
}

/* Plot: one row per run, x_t on the left and R_t/t on the right. */
static effdim_status write_plot(const char *png, const run *runs, size_t n, effdim_error *err)
{
    char what[CLI_PLOT_PATH + 16], path[CLI_PLOT_PATH + 64], name[32];
    snprintf(what, sizeof what, "--plot %s", png);
    cli_plot pl;
    effdim_status st = cli_plot_begin(&pl, png, "amsgrad", what, err);
    if (st) return st;

    /* data: t/1e6, x_adam, x_ams, avg_adam, avg_ams; at most ~2000 rows per run
     * (enough for the eye, and it keeps the PNG small); the average regret is
     * left out (NaN) over the first 2% of steps, where it is large and noisy. */
    for (size_t i = 0; i < n && !st; ++i) {
        const run *r = &runs[i];
        snprintf(name, sizeof name, "run%zu.dat", i);
        FILE *f = cli_plot_open(&pl, name, path, sizeof path, err);
        if (!f) {
            st = err ? err->code : EFFDIM_EIO;
            break;
        }
        size_t stride = r->m / 2000 + 1;
        for (size_t j = 1; j < r->m; ++j) { /* skip t = 0 */
            if (j % stride != 0 && j != r->m - 1) continue;
            int early = r->t[j] < 0.02 * (double)r->steps;
            fprintf(f, "%.9g %.9g %.9g ", r->t[j] / 1e6, r->x[0][j], r->x[1][j]);
            if (early)
                fprintf(f, "NaN NaN\n");
            else
                fprintf(f, "%.9g %.9g\n", r->avg[0][j], r->avg[1][j]);
        }
        st = cli_plot_close(&pl, f, err);
    }
    FILE *gp = st ? NULL : cli_plot_open(&pl, "plot.gp", NULL, 0, err);
    if (!st && !gp) st = err ? err->code : EFFDIM_EIO;
    if (gp) {
        fprintf(gp, "set terminal png size 1100,%zu font 'DejaVu Sans,10'\n", 60 + 250 * n);
        fprintf(gp, "set output '%s'\n", pl.tmp_png);
        fprintf(gp, "set multiplot layout %zu,2 title 'Adam vs AMSGrad on the counterexample of Reddi, Kale "
                    "and Kumar (2018); optimum x* = -1'\n", n);
        fprintf(gp, "set grid\nset xlabel 't (millions of steps)'\nset format x '%%g'\n");
        for (size_t i = 0; i < n; ++i) {
            char title[128];
            run_title(&runs[i], title, sizeof title);
            fprintf(gp, "set title '%s: x_t'\nset yrange [-1.1:1.1]\nset ylabel 'x_t'\n"
                        "set key at graph 0.98, 0.65 right\n", title);
            fprintf(gp, "plot '%s/run%zu.dat' u 1:2 w l lw 2 lc rgb '#d62728' t 'Adam', '' u 1:3 w l lw 2 "
                        "lc rgb '#1f77b4' t 'AMSGrad'\n", pl.dir, i);
            fprintf(gp, "set title '%s: average regret R_t/t'\nset yrange [*:*]\n"
                        "set ylabel 'R_t/t'\nset key at graph 0.98, 0.8 right\n", title);
            fprintf(gp, "plot '%s/run%zu.dat' u 1:4 w l lw 2 lc rgb '#d62728' t 'Adam', '' u 1:5 w l lw 2 "
                        "lc rgb '#1f77b4' t 'AMSGrad'\n", pl.dir, i);
        }
        fprintf(gp, "unset multiplot\nset output\n");
        st = cli_plot_close(&pl, gp, err);
    }
    if (!st) st = cli_plot_run(&pl, err);
    cli_plot_end(&pl);
    return st;
}

static void print_table(const run *runs, size_t n, unsigned long seed)
{
    printf("%-11s %-18s %9s %9s %10s %11s %12s  %-10s %s\n", "setting", "step size", "steps", "Adam x",
           "Adam R/T", "AMSGrad x", "AMSGrad R/T", "thresholds", "finding");
    for (size_t i = 0; i < n; ++i) {
        const run *r = &runs[i];
        char lr[32];
        if (r->sqrt_lr)
            snprintf(lr, sizeof lr, "%g/sqrt(t)", r->alpha);
        else
            snprintf(lr, sizeof lr, "constant %g", r->alpha);
        printf("%-11s %-18s %9zu %9.4f %10.4f %11.4f %12.4f  %-10s %s\n", setting_names[r->set], lr,
               r->steps, r->final_x[OPT_ADAM], r->final_avg[OPT_ADAM], r->final_x[OPT_AMSGRAD],
               r->final_avg[OPT_AMSGRAD], meets(r->final_x[OPT_ADAM], r->final_x[OPT_AMSGRAD]) ? "met" : "not met",
               finding(r->set, r->final_x[OPT_ADAM], r->final_x[OPT_AMSGRAD])
                   ? (r->set == SET_STOCHASTIC ? "reproduced (order)" : "reproduced")
                   : "NOT reproduced");
    }
    for (size_t i = 0; i < n; ++i) {
        const run *r = &runs[i];
        if (r->n_seeds <= 1) continue;
        double a[3], m[3];
        stats(r->seed_x[OPT_ADAM], r->n_seeds, &a[0], &a[1], &a[2]);
        stats(r->seed_x[OPT_AMSGRAD], r->n_seeds, &m[0], &m[1], &m[2]);
        printf("%s, %s, %zu seeds (%lu..%lu): final x median [min, max]: Adam %.4f [%.4f, %.4f], "
               "AMSGrad %.4f [%.4f, %.4f]; %.0f%% of seeds meet both thresholds; medians: %s\n",
               setting_names[r->set], r->sqrt_lr ? "alpha/sqrt(t)" : "constant lr", r->n_seeds,
               seed, seed + (unsigned long)r->n_seeds - 1, a[0], a[1], a[2], m[0], m[1], m[2],
               100.0 * fraction_meeting(r), reproduced(r) ? "reproduced" : "NOT reproduced");
    }
}

static cJSON *json_summary(const run *runs, size_t n, const options *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", CMD);
    cJSON_AddStringToObject(root, "output", o->out);
    if (o->plot) cJSON_AddStringToObject(root, "plot", o->plot);
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    cJSON *arr = cJSON_AddArrayToObject(root, "runs");
    int all = 1;
    for (size_t i = 0; i < n; ++i) {
        const run *r = &runs[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "setting", setting_names[r->set]);
        cJSON_AddStringToObject(j, "lr_schedule", r->sqrt_lr ? "sqrt" : "const");
        cJSON_AddNumberToObject(j, "alpha", r->alpha);
        cJSON_AddNumberToObject(j, "steps", (double)r->steps);
        for (int k = 0; k < N_OPT; ++k) {
            cJSON *q = cJSON_AddObjectToObject(j, opt_names[k]);
            cJSON_AddNumberToObject(q, "final_x", r->final_x[k]);
            cJSON_AddNumberToObject(q, "final_avg_regret", r->final_avg[k]);
        }
        if (r->n_seeds > 1) {
            cJSON *q = cJSON_AddObjectToObject(j, "seeds");
            cJSON_AddNumberToObject(q, "first", (double)o->seed);
            cJSON_AddNumberToObject(q, "count", (double)r->n_seeds);
            for (int k = 0; k < N_OPT; ++k) {
                double v[3];
                stats(r->seed_x[k], r->n_seeds, &v[0], &v[1], &v[2]);
                cJSON *w = cJSON_AddObjectToObject(q, opt_names[k]);
                cJSON_AddNumberToObject(w, "final_x_median", v[0]);
                cJSON_AddNumberToObject(w, "final_x_min", v[1]);
                cJSON_AddNumberToObject(w, "final_x_max", v[2]);
            }
            cJSON_AddNumberToObject(q, "fraction_meeting_thresholds", fraction_meeting(r));
        }
        cJSON_AddBoolToObject(j, "reproduced", reproduced(r));
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        all = all && reproduced(r);
        cJSON_AddItemToArray(arr, j);
    }
    cJSON_AddBoolToObject(root, "reproduced", all);
    return root;
}

/* 0 if the folder that will hold `path` exists and is writable, so a long
 * run does not end in a write error; else a usage message naming opt. */
static int check_writable_dir(const char *opt, const char *path)
{
    char dir[EFFDIM_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK) != 0)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s %s: folder '%s' does not exist or is not writable", opt,
                          path, dir);
    return 0;
}

/* ---- options ---- */

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_SETTING = 256, O_SCHED, O_STEPS, O_LR, O_ALPHA, O_SEED, O_SEEDS, O_EVERY, O_PLOT, O_JSON, O_CHECK };
    static const struct option longs[] = {
        {"setting", required_argument, NULL, O_SETTING}, {"lr-schedule", required_argument, NULL, O_SCHED},
        {"steps", required_argument, NULL, O_STEPS},     {"lr", required_argument, NULL, O_LR},
        {"alpha", required_argument, NULL, O_ALPHA},     {"seed", required_argument, NULL, O_SEED},
        {"seeds", required_argument, NULL, O_SEEDS},
        {"every", required_argument, NULL, O_EVERY},     {"output", required_argument, NULL, 'o'},
        {"plot", required_argument, NULL, O_PLOT},       {"json", no_argument, NULL, O_JSON},
        {"check", no_argument, NULL, O_CHECK},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->settings[SET_ONLINE] = o->settings[SET_STOCHASTIC] = o->settings[SET_THEOREM1] = 1;
    o->schedules[0] = o->schedules[1] = 1;
    o->alpha = -1.0;
    o->lr = -1.0;
    o->seed = 1;
    o->seeds = 1;
    o->every = 1000;
    o->out = "amsgrad.h5";
    opterr = 0;
    int c, rc = 0;
    uint64_t u = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longs, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return -1;
        case 'o': o->out = optarg; break;
        case O_SETTING:
            memset(o->settings, 0, sizeof o->settings);
            if (!strcmp(optarg, "all")) o->settings[0] = o->settings[1] = o->settings[2] = 1;
            else if (!strcmp(optarg, "online")) o->settings[SET_ONLINE] = 1;
            else if (!strcmp(optarg, "stochastic")) o->settings[SET_STOCHASTIC] = 1;
            else if (!strcmp(optarg, "theorem1")) o->settings[SET_THEOREM1] = 1;
            else
                return cli_errorf(CMD, CLI_EXIT_USAGE,
                                  "--setting: '%s' unknown, expected online, stochastic, theorem1 or all", optarg);
            break;
        case O_SCHED:
            o->schedules[0] = !strcmp(optarg, "const") || !strcmp(optarg, "both");
            o->schedules[1] = !strcmp(optarg, "sqrt") || !strcmp(optarg, "both");
            if (!o->schedules[0] && !o->schedules[1])
                return cli_errorf(CMD, CLI_EXIT_USAGE, "--lr-schedule: '%s' unknown, expected const, sqrt or both",
                                  optarg);
            break;
        case O_STEPS:
            if ((rc = cli_parse_size(CMD, "--steps", optarg, &o->steps))) return rc;
            if (o->steps == 0) return cli_errorf(CMD, CLI_EXIT_USAGE, "--steps: expected at least 1 step");
            break;
        case O_LR:
            if ((rc = cli_parse_double(CMD, "--lr", optarg, &o->lr))) return rc;
            if (!(o->lr > 0)) return cli_errorf(CMD, CLI_EXIT_USAGE, "--lr: expected a value > 0, got %s", optarg);
            break;
        case O_ALPHA:
            if ((rc = cli_parse_double(CMD, "--alpha", optarg, &o->alpha))) return rc;
            if (!(o->alpha > 0))
                return cli_errorf(CMD, CLI_EXIT_USAGE, "--alpha: expected a value > 0, got %s", optarg);
            break;
        case O_SEED:
            if ((rc = cli_parse_u64(CMD, "--seed", optarg, &u))) return rc;
            o->seed = (unsigned long)u;
            break;
        case O_SEEDS:
            if ((rc = cli_parse_size(CMD, "--seeds", optarg, &o->seeds))) return rc;
            if (o->seeds == 0 || o->seeds > MAX_SEEDS)
                return cli_errorf(CMD, CLI_EXIT_USAGE, "--seeds: expected 1 to %d, got %s", MAX_SEEDS, optarg);
            break;
        case O_EVERY:
            if ((rc = cli_parse_size(CMD, "--every", optarg, &o->every))) return rc;
            if (o->every == 0) return cli_errorf(CMD, CLI_EXIT_USAGE, "--every: expected at least 1");
            break;
        case O_PLOT: o->plot = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_CHECK: o->check = 1; break;
        case ':': return cli_errorf(CMD, CLI_EXIT_USAGE, "%s needs a value (see --help)", argv[optind - 1]);
        default: return cli_errorf(CMD, CLI_EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if ((rc = check_writable_dir("-o", o->out))) return rc;
    if (o->plot && (rc = check_writable_dir("--plot", o->plot))) return rc;
    return 0;
}

/* The runs the options ask for, with their defaults. */
static size_t plan_runs(const options *o, run *runs)
{
    size_t n = 0;
    for (int s = SET_ONLINE; s <= SET_STOCHASTIC; ++s) {
        if (!o->settings[s]) continue;
        for (int q = 0; q < 2; ++q) {
            if (!o->schedules[q]) continue;
            run *r = &runs[n++];
            memset(r, 0, sizeof *r);
            r->set = (setting)s;
            r->sqrt_lr = q;
            r->alpha = q ? (o->alpha > 0 ? o->alpha : 0.5) : (o->lr > 0 ? o->lr : 1e-3);
            r->steps = o->steps ? o->steps : q ? 2000000 : 6000000;
            r->beta1 = 0.9;
            r->beta2 = 0.99;
            r->n_seeds = s == SET_STOCHASTIC ? o->seeds : 1;
        }
    }
    if (o->settings[SET_THEOREM1]) {
        run *r = &runs[n++];
        memset(r, 0, sizeof *r);
        r->set = SET_THEOREM1;
        r->sqrt_lr = 1;
        r->alpha = o->alpha > 0 ? o->alpha : 0.1;
        r->steps = o->steps ? o->steps : 300000;
        r->beta1 = 0.0;
        r->beta2 = 1.0 / (1.0 + THEOREM1_C * THEOREM1_C);
        r->n_seeds = 1;
    }
    return n;
}

int demo_amsgrad(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;

    char cmdline[1024] = "effdim demo";
    for (int i = 0; i < argc; ++i) {
        size_t len = strlen(cmdline);
        snprintf(cmdline + len, sizeof cmdline - len, " %s", argv[i]);
    }
    run runs[5];
    size_t n = plan_runs(&o, runs);
    effdim_error err;
    effdim_error_clear(&err);
    cli_progress prog;
    cli_progress_init(&prog);
    effdim_status st = EFFDIM_OK;
    for (size_t i = 0; i < n && !st; ++i) st = simulate(&runs[i], &o, &prog, &err);
    cli_progress_done(&prog);
    if (!st) st = write_h5(o.out, runs, n, &o, cmdline, &err);
    if (!st && o.plot) st = write_plot(o.plot, runs, n, &err);
    int all = 1;
    for (size_t i = 0; i < n; ++i) all = all && reproduced(&runs[i]);
    if (!st) {
        if (o.json)
            cli_json_print(json_summary(runs, n, &o));
        else {
            print_table(runs, n, o.seed);
            printf("trajectories: %s%s%s\n", o.out, o.plot ? ", plot: " : "", o.plot ? o.plot : "");
        }
    }
    for (size_t i = 0; i < n; ++i) run_free(&runs[i]);
    if (st) return cli_fail(CMD, &err);
    if (o.check && !all)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "the finding was not reproduced in every run (see the table)");
    return CLI_EXIT_OK;
}
