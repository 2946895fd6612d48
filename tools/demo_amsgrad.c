/* tools/demo_amsgrad.c: `effdim demo amsgrad`, the counterexample to Adam's
 * convergence of Reddi, Kale and Kumar, "On the Convergence of Adam and
 * Beyond" (ICLR 2018, arXiv 1904.09237), Section 3 and Figure 1.
 *
 * The problems, optimisers and verdicts are the library's (effdim/amsgrad.h,
 * lib/amsgrad.c); this file parses the options, runs the planned settings
 * through effdim_amsgrad_simulate with a progress line, prints the table or
 * JSON and draws the figure.
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
#include "effdim/amsgrad.h"

#define CMD "demo amsgrad"

typedef effdim_amsgrad_run run;
#define N_OPT EFFDIM_AMSGRAD_N_OPT
#define OPT_ADAM EFFDIM_AMSGRAD_ADAM
#define OPT_AMSGRAD EFFDIM_AMSGRAD_AMS
#define SET_ONLINE EFFDIM_AMSGRAD_ONLINE
#define SET_STOCHASTIC EFFDIM_AMSGRAD_STOCHASTIC
#define SET_THEOREM1 EFFDIM_AMSGRAD_THEOREM1
#define MAX_SEEDS EFFDIM_AMSGRAD_MAX_SEEDS

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

static void run_title(const run *r, char *buf, size_t cap)
{
    if (r->p.setting == SET_THEOREM1)
        snprintf(buf, cap, "theorem 1 (C = %g, betas 0, %.3g), %g/sqrt(t)", EFFDIM_AMSGRAD_THEOREM1_C, r->p.beta2,
                 r->p.alpha);
    else if (r->p.sqrt_lr)
        snprintf(buf, cap, "%s, step size %g/sqrt(t)", effdim_amsgrad_setting_name(r->p.setting), r->p.alpha);
    else
        snprintf(buf, cap, "%s, constant lr %g", effdim_amsgrad_setting_name(r->p.setting), r->p.alpha);
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
            int early = r->t[j] < 0.02 * (double)r->p.steps;
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
        if (r->p.sqrt_lr)
            snprintf(lr, sizeof lr, "%g/sqrt(t)", r->p.alpha);
        else
            snprintf(lr, sizeof lr, "constant %g", r->p.alpha);
        printf("%-11s %-18s %9zu %9.4f %10.4f %11.4f %12.4f  %-10s %s\n", effdim_amsgrad_setting_name(r->p.setting), lr,
               r->p.steps, r->final_x[OPT_ADAM], r->final_avg[OPT_ADAM], r->final_x[OPT_AMSGRAD],
               r->final_avg[OPT_AMSGRAD], effdim_amsgrad_meets(r->final_x[OPT_ADAM], r->final_x[OPT_AMSGRAD]) ? "met" : "not met",
               effdim_amsgrad_finding(r->p.setting, r->final_x[OPT_ADAM], r->final_x[OPT_AMSGRAD])
                   ? (r->p.setting == SET_STOCHASTIC ? "reproduced (order)" : "reproduced")
                   : "NOT reproduced");
    }
    for (size_t i = 0; i < n; ++i) {
        const run *r = &runs[i];
        if (r->p.n_seeds <= 1) continue;
        double a[3], m[3];
        effdim_amsgrad_seed_stats(r, OPT_ADAM, &a[0], &a[1], &a[2]);
        effdim_amsgrad_seed_stats(r, OPT_AMSGRAD, &m[0], &m[1], &m[2]);
        printf("%s, %s, %zu seeds (%lu..%lu): final x median [min, max]: Adam %.4f [%.4f, %.4f], "
               "AMSGrad %.4f [%.4f, %.4f]; %.0f%% of seeds meet both thresholds; medians: %s\n",
               effdim_amsgrad_setting_name(r->p.setting), r->p.sqrt_lr ? "alpha/sqrt(t)" : "constant lr", r->p.n_seeds,
               seed, seed + (unsigned long)r->p.n_seeds - 1, a[0], a[1], a[2], m[0], m[1], m[2],
               100.0 * effdim_amsgrad_fraction_meeting(r), effdim_amsgrad_reproduced(r) ? "reproduced" : "NOT reproduced");
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
        cJSON_AddStringToObject(j, "setting", effdim_amsgrad_setting_name(r->p.setting));
        cJSON_AddStringToObject(j, "lr_schedule", r->p.sqrt_lr ? "sqrt" : "const");
        cJSON_AddNumberToObject(j, "alpha", r->p.alpha);
        cJSON_AddNumberToObject(j, "steps", (double)r->p.steps);
        for (int k = 0; k < N_OPT; ++k) {
            cJSON *q = cJSON_AddObjectToObject(j, k ? "amsgrad" : "adam");
            cJSON_AddNumberToObject(q, "final_x", r->final_x[k]);
            cJSON_AddNumberToObject(q, "final_avg_regret", r->final_avg[k]);
        }
        if (r->p.n_seeds > 1) {
            cJSON *q = cJSON_AddObjectToObject(j, "seeds");
            cJSON_AddNumberToObject(q, "first", (double)o->seed);
            cJSON_AddNumberToObject(q, "count", (double)r->p.n_seeds);
            for (int k = 0; k < N_OPT; ++k) {
                double v[3];
                effdim_amsgrad_seed_stats(r, k, &v[0], &v[1], &v[2]);
                cJSON *w = cJSON_AddObjectToObject(q, k ? "amsgrad" : "adam");
                cJSON_AddNumberToObject(w, "final_x_median", v[0]);
                cJSON_AddNumberToObject(w, "final_x_min", v[1]);
                cJSON_AddNumberToObject(w, "final_x_max", v[2]);
            }
            cJSON_AddNumberToObject(q, "fraction_meeting_thresholds", effdim_amsgrad_fraction_meeting(r));
        }
        cJSON_AddBoolToObject(j, "reproduced", effdim_amsgrad_reproduced(r));
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        all = all && effdim_amsgrad_reproduced(r);
        cJSON_AddItemToArray(arr, j);
    }
    cJSON_AddBoolToObject(root, "reproduced", all);
    return root;
}

/* 0 if the folder that will hold `path` exists and is writable, so a long
 * run does not end in a write error; else a usage message naming opt. */
static int check_writable_dir(const char *opt, const char *path)
{
    char dir[4096];
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

/* The runs the options ask for: the library's defaults, overridden by the options. */
static size_t plan_runs(const options *o, effdim_amsgrad_params *runs)
{
    size_t n = 0;
    for (int s = SET_ONLINE; s <= SET_THEOREM1; ++s) {
        if (!o->settings[s]) continue;
        for (int q = 0; q < 2; ++q) {
            if (s == SET_THEOREM1 ? q == 0 : !o->schedules[q]) continue; /* theorem1: sqrt only */
            effdim_amsgrad_params *p = &runs[n++];
            *p = effdim_amsgrad_default_params((effdim_amsgrad_setting)s, q);
            if (q && o->alpha > 0) p->alpha = o->alpha;
            if (!q && o->lr > 0) p->alpha = o->lr;
            if (o->steps) p->steps = o->steps;
            p->seed = o->seed;
            p->every = o->every;
            if (s == SET_STOCHASTIC) p->n_seeds = o->seeds;
        }
    }
    return n;
}

int demo_amsgrad(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_claim_output(CMD, o.out, NULL, 0)) ||
        (o.plot && (rc = cli_claim_output(CMD, o.plot, NULL, 0))))
        return rc;

    char cmdline[1024] = "effdim demo";
    for (int i = 0; i < argc; ++i) {
        size_t len = strlen(cmdline);
        snprintf(cmdline + len, sizeof cmdline - len, " %s", argv[i]);
    }
    effdim_amsgrad_params plan[5];
    run runs[5];
    memset(runs, 0, sizeof runs);
    size_t n = plan_runs(&o, plan);
    effdim_error err;
    effdim_error_clear(&err);
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    effdim_progress prog = cli_progress_of(&sink);
    effdim_status st = EFFDIM_OK;
    for (size_t i = 0; i < n && !st; ++i) st = effdim_amsgrad_simulate(&plan[i], &runs[i], &prog, &err);
    cli_progress_sink_done(&sink);
    if (!st) st = effdim_amsgrad_save(o.out, runs, n, cmdline, &err);
    if (!st && o.plot) st = write_plot(o.plot, runs, n, &err);
    int all = 1;
    for (size_t i = 0; i < n; ++i) all = all && effdim_amsgrad_reproduced(&runs[i]);
    if (!st) {
        if (o.json)
            cli_json_print(json_summary(runs, n, &o));
        else {
            print_table(runs, n, o.seed);
            printf("trajectories: %s%s%s\n", o.out, o.plot ? ", plot: " : "", o.plot ? o.plot : "");
        }
    }
    for (size_t i = 0; i < n; ++i) effdim_amsgrad_run_free(&runs[i]);
    if (st) return cli_fail(CMD, &err);
    if (o.check && !all)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "the finding was not reproduced in every run (see the table)");
    return CLI_EXIT_OK;
}
