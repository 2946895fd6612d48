/* tools/cmd_sweep.c: `effdim sweep`: run a sweep config into a table, merge
 * shards, plot the double-descent figure.
 *
 *   effdim sweep CONFIG.json -o sweep.h5 [--keep-checkpoints DIR] [--jobs N] [--shard I/N]
 *   effdim sweep --preset quick -o sweep.h5
 *   effdim sweep merge A.h5 B.h5 ... -o all.h5
 *   effdim sweep plot sweep.h5 -o fig.png
 *   effdim sweep stats sweep.h5 [--from-width W] [--json]
 *
 * The work is effdim_sweep_run (lib/sweep.c); this file parses, claims the
 * output, shows the progress and prints a summary.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/sweep.h"

int cmd_sweep_plot(int argc, char **argv); /* tools/sweep_plot.c */


static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim sweep CONFIG.json -o SWEEP.h5 [options]\n"
            "       effdim sweep --preset quick -o SWEEP.h5 [options]\n"
            "       effdim sweep merge A.h5 B.h5 ... -o ALL.h5\n"
            "       effdim sweep plot SWEEP.h5 -o FIG.png\n"
            "       effdim sweep stats SWEEP.h5 [--from-width W] [--json]\n\n"
            "Train, evaluate and measure the curvature (top-k Hessian eigenvalues, N_eff(z)\n"
            "by Ritz values and SLQ) of every configuration of the grid in CONFIG.json\n"
            "(docs/sweeps.md lists the keys), one row per configuration in /sweep/table.\n"
            "Rerunning the same command skips the rows already in SWEEP.h5.\n\n"
            "options:\n"
            "  -o, --output FILE        the sweep file (required)\n"
            "  --preset NAME            a built-in config instead of CONFIG.json: quick\n"
            "  --shard I/N              run shard I of N (0-based: configurations i with\n"
            "                           i mod N = I); default from SLURM_ARRAY_TASK_ID and\n"
            "                           SLURM_ARRAY_TASK_COUNT when set, else 0/1\n"
            "  --jobs N                 N worker processes, the BLAS threads split between\n"
            "                           them (default 1)\n"
            "  --threads T              BLAS and row threads in all (default: the machine's)\n"
            "  --keep-checkpoints DIR   save each trained model in DIR\n"
            "  --limit N                stop after N new rows\n"
            "  --json                   a machine-readable summary on stdout\n"
            "  -h, --help               this help\n");
}

typedef struct opts {
    const char *out, *preset, *keep, *shard;
    size_t jobs, limit, from_width;
    int threads, json;
} opts;

enum { OPT_PRESET = 256, OPT_SHARD, OPT_JOBS, OPT_KEEP, OPT_LIMIT, OPT_JSON, OPT_THREADS, OPT_FROM };

static int parse_one(void *ctx, int c, const char *arg)
{
    opts *o = ctx;
    switch (c) {
    case 'o': o->out = arg; return 0;
    case OPT_PRESET: o->preset = arg; return 0;
    case OPT_SHARD: o->shard = arg; return 0;
    case OPT_KEEP: o->keep = arg; return 0;
    case OPT_JSON: o->json = 1; return 0;
    case OPT_THREADS: return cli_parse_threads("sweep", arg, &o->threads);
    case OPT_LIMIT: return cli_parse_size("sweep", "--limit", arg, &o->limit);
    case OPT_FROM: return cli_parse_size("sweep stats", "--from-width", arg, &o->from_width);
    case OPT_JOBS:
        if (cli_parse_size("sweep", "--jobs", arg, &o->jobs)) return CLI_EXIT_USAGE;
        if (o->jobs < 1 || o->jobs > 256)
            return cli_errorf("sweep", CLI_EXIT_USAGE, "--jobs: expected 1 to 256, got %s", arg);
        return 0;
    default: return CLI_EXIT_USAGE;
    }
}

/* The shard from --shard, else SLURM's array variables, else 0/1. */
static int pick_shard(const char *given, effdim_sweep_params *p)
{
    effdim_error err;
    if (given) {
        if (effdim_sweep_shard_parse(given, "--shard", &p->shard_index, &p->shard_count, &err))
            return cli_errorf("sweep", CLI_EXIT_USAGE, "%s", err.msg);
        return 0;
    }
    const char *id = getenv("SLURM_ARRAY_TASK_ID"), *count = getenv("SLURM_ARRAY_TASK_COUNT");
    if (!id || !count) return 0;
    const char *min = getenv("SLURM_ARRAY_TASK_MIN");
    char *e1 = NULL, *e2 = NULL, *e3 = NULL;
    long long i = strtoll(id, &e1, 10), n = strtoll(count, &e2, 10), lo = min ? strtoll(min, &e3, 10) : 0;
    if (*e1 || *e2 || (min && *e3) || n < 1 || i - lo < 0 || i - lo >= n)
        return cli_errorf("sweep", CLI_EXIT_USAGE,
                          "SLURM_ARRAY_TASK_ID=%s, SLURM_ARRAY_TASK_COUNT=%s, SLURM_ARRAY_TASK_MIN=%s: "
                          "expected MIN <= ID < MIN + COUNT (or pass --shard I/N)",
                          id, count, min ? min : "unset");
    p->shard_index = (size_t)(i - lo);
    p->shard_count = (size_t)n;
    return 0;
}

static int run_merge(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    opts o = {0};
    int rc = cli_getopt_loop("sweep merge", argc, argv, ":o:h", longopts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (!o.out) return cli_errorf("sweep merge", CLI_EXIT_USAGE, "-o ALL.h5 is required");
    if (optind >= argc)
        return cli_errorf("sweep merge", CLI_EXIT_USAGE, "expected shard files (effdim sweep --help)");
    const char *const *inputs = (const char *const *)argv + optind;
    size_t n = (size_t)(argc - optind);
    if (cli_claim_output("sweep merge", o.out, inputs, n)) return CLI_EXIT_FAIL;
    effdim_error err;
    if (effdim_sweep_merge(inputs, n, o.out, &err)) return cli_fail("sweep merge", &err);
    effdim_sweep_table *t = NULL;
    if (effdim_sweep_table_load(o.out, &t, &err)) return cli_fail("sweep merge", &err);
    printf("%s: %zu of %zu configurations from %zu files\n", o.out, t->n_rows, t->grid_size, n);
    effdim_sweep_table_free(t);
    return CLI_EXIT_OK;
}

static void stats_usage(FILE *f)
{
    fprintf(f,
            "usage: effdim sweep stats SWEEP.h5 [--from-width W] [--json]\n\n"
            "Per series (depth, label noise, training-set size): the mean over seeds of the\n"
            "train error, test loss and N_eff(z) at each width; the first width that\n"
            "interpolates (train error 0 for every seed); the test-loss peak (the largest\n"
            "mean test loss past the classical minimum, the smallest one up to that width);\n"
            "and Spearman's rank correlation of the test loss with the parameter count and\n"
            "with N_eff(z) (Ritz and SLQ) over the rows (one per seed) whose width is at\n"
            "least the peak's (or W). First, where the time went: the rows' seconds summed\n"
            "(training, curvature, and within it the Lanczos run and the SLQ).\n\n"
            "  --from-width W  count the widths from W instead of from the peak\n"
            "  --json          a machine-readable summary on stdout\n"
            "  -h, --help      this help\n");
}

static void series_name(const effdim_sweep_corr *c, char *buf, size_t cap)
{
    int len = snprintf(buf, cap, "depth %lld, n_train %lld", (long long)c->depth, (long long)c->n_train);
    if (!isnan(c->label_noise) && len >= 0 && (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, ", label noise %g", c->label_noise);
}

/* Where the time went: the sums of the rows' seconds columns (rows without
 * them left out), configuration time, not wall time (workers overlap). */
typedef struct times {
    size_t n, n_split;
    double all, train, curv, lanczos, slq, curv_split;
    double matvecs;
} times;

static times sum_times(const effdim_sweep_table *t)
{
    times m = {0};
    for (size_t i = 0; i < t->n_rows; ++i) {
        const effdim_sweep_row *r = &t->rows[i];
        if (!isfinite(r->seconds) || !isfinite(r->seconds_train) || !isfinite(r->seconds_curvature)) continue;
        m.n++;
        m.all += r->seconds, m.train += r->seconds_train, m.curv += r->seconds_curvature;
        m.matvecs += r->matvecs > 0 ? (double)r->matvecs : 0;
        if (isfinite(r->seconds_lanczos)) {
            m.n_split++;
            m.curv_split += r->seconds_curvature;
            m.lanczos += r->seconds_lanczos;
            if (isfinite(r->seconds_slq)) m.slq += r->seconds_slq;
        }
    }
    return m;
}

static void print_times(const effdim_sweep_table *t)
{
    times m = sum_times(t);
    if (!m.n || !(m.all > 0)) return;
    printf("time        %zu rows, %.1f s of configuration time (summed over rows; workers overlap): "
           "training (data and model included) %.1f s (%.1f%%), curvature %.1f s (%.1f%%); "
           "%.0f curvature products\n",
           m.n, m.all, m.train, 100 * m.train / m.all, m.curv, 100 * m.curv / m.all, m.matvecs);
    if (m.n_split)
        printf("            curvature of the %zu rows with the split: %.1f s = Lanczos %.1f s + SLQ %.1f s "
               "+ other %.1f s (data subset, N_eff)\n",
               m.n_split, m.curv_split, m.lanczos, m.slq, m.curv_split - m.lanczos - m.slq);
}

static cJSON *times_json(const effdim_sweep_table *t)
{
    times m = sum_times(t);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rows", (double)m.n);
    cJSON_AddNumberToObject(o, "seconds", m.all);
    cJSON_AddNumberToObject(o, "seconds_train", m.train);
    cJSON_AddNumberToObject(o, "seconds_curvature", m.curv);
    cJSON_AddNumberToObject(o, "rows_with_split", (double)m.n_split);
    cJSON_AddNumberToObject(o, "seconds_curvature_of_split", m.curv_split);
    cJSON_AddNumberToObject(o, "seconds_lanczos", m.lanczos);
    cJSON_AddNumberToObject(o, "seconds_slq", m.slq);
    cJSON_AddNumberToObject(o, "matvecs", m.matvecs);
    return o;
}

/* NaN printed as "nan", whatever its sign bit (a constant column) */
static double fabs_nan(double x) { return isnan(x) ? fabs(x) : x; }

static void print_stats(const effdim_sweep_table *t, const effdim_sweep_agg *a, size_t na,
                        const effdim_sweep_corr *c, size_t nc)
{
    int has_slq = 0;
    for (size_t q = 0; q < na; ++q) has_slq |= !isnan(a[q].mean[4 + t->nz]);
    print_times(t);
    size_t q = 0;
    for (size_t s = 0; s < nc; ++s) {
        char name[128];
        series_name(&c[s], name, sizeof name);
        printf("series %s\n", name);
        printf("  %6s %9s %5s %9s %9s", "width", "n_params", "seeds", "train_err", "test_loss");
        cli_print_neff_heads(t->z, t->nz, has_slq);
        printf("   (means over seeds)\n");
        for (; q < na && a[q].depth == c[s].depth && a[q].n_train == c[s].n_train &&
               ((isnan(a[q].label_noise) && isnan(c[s].label_noise)) || a[q].label_noise == c[s].label_noise);
             ++q) {
            printf("  %6lld %9lld %5zu %9.4f %9.4f", (long long)a[q].width, (long long)a[q].n_params,
                   a[q].n, a[q].mean[EFFDIM_SWEEP_M_TRAIN_ERROR], a[q].mean[EFFDIM_SWEEP_M_TEST_LOSS]);
            for (size_t j = 0; j < t->nz; ++j) printf(" %9.4g", a[q].mean[4 + j]);
            for (size_t j = 0; has_slq && j < t->nz; ++j) printf(" %9.4g", a[q].mean[4 + t->nz + j]);
            printf("%s\n", a[q].width == c[s].peak_width ? "   <- test-loss peak" : "");
        }
        printf("  test-loss peak %.4f at width %lld (%lld parameters); interpolates (train error 0, "
               "every seed) from width ",
               c[s].peak_test_loss, (long long)c[s].peak_width, (long long)c[s].peak_params);
        if (c[s].interp_width >= 0) printf("%lld\n", (long long)c[s].interp_width);
        else printf("(none)\n");
        printf("  Spearman rho with the test loss over widths >= %lld (%zu widths, %zu rows):\n",
               (long long)c[s].from_width, c[s].n_widths, c[s].n_rows);
        printf("    %-18s %7.3f\n", "n_params", fabs_nan(c[s].rho_params));
        char head[32];
        for (size_t j = 0; j < t->nz; ++j) {
            snprintf(head, sizeof head, "N_eff(%g) Ritz", t->z[j]);
            printf("    %-18s %7.3f", head, fabs_nan(c[s].rho_ritz[j]));
            if (has_slq) printf("    N_eff(%g) SLQ %7.3f", t->z[j], fabs_nan(c[s].rho_slq[j]));
            printf("\n");
        }
    }
}

static cJSON *stats_json(const char *path, const effdim_sweep_table *t, const effdim_sweep_agg *a,
                         size_t na, const effdim_sweep_corr *c, size_t nc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddItemToObject(o, "z", cli_json_doubles(t->z, t->nz));
    cJSON_AddItemToObject(o, "time", times_json(t));
    cJSON *series = cJSON_AddArrayToObject(o, "series");
    size_t q = 0;
    for (size_t s = 0; s < nc; ++s) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "depth", (double)c[s].depth);
        cJSON_AddNumberToObject(j, "n_train", (double)c[s].n_train);
        cJSON_AddItemToObject(j, "label_noise", cJSON_CreateNumber(c[s].label_noise));
        cJSON_AddNumberToObject(j, "peak_width", (double)c[s].peak_width);
        cJSON_AddNumberToObject(j, "peak_params", (double)c[s].peak_params);
        cJSON_AddItemToObject(j, "peak_test_loss", cJSON_CreateNumber(c[s].peak_test_loss));
        cJSON_AddItemToObject(j, "interp_width", c[s].interp_width >= 0 ? cJSON_CreateNumber((double)c[s].interp_width) : cJSON_CreateNull());
        cJSON_AddNumberToObject(j, "from_width", (double)c[s].from_width);
        cJSON_AddNumberToObject(j, "n_widths", (double)c[s].n_widths);
        cJSON_AddNumberToObject(j, "n_rows", (double)c[s].n_rows);
        cJSON_AddItemToObject(j, "rho_params", cJSON_CreateNumber(c[s].rho_params));
        cJSON_AddItemToObject(j, "rho_ritz", cli_json_doubles(c[s].rho_ritz, t->nz));
        cJSON_AddItemToObject(j, "rho_slq", cli_json_doubles(c[s].rho_slq, t->nz));
        cJSON *pts = cJSON_AddArrayToObject(j, "widths");
        for (; q < na && a[q].depth == c[s].depth && a[q].n_train == c[s].n_train &&
               ((isnan(a[q].label_noise) && isnan(c[s].label_noise)) || a[q].label_noise == c[s].label_noise);
             ++q) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "width", (double)a[q].width);
            cJSON_AddNumberToObject(p, "n_params", (double)a[q].n_params);
            cJSON_AddNumberToObject(p, "seeds", (double)a[q].n);
            cJSON_AddItemToObject(p, "train_error", cJSON_CreateNumber(a[q].mean[EFFDIM_SWEEP_M_TRAIN_ERROR]));
            cJSON_AddItemToObject(p, "test_loss", cJSON_CreateNumber(a[q].mean[EFFDIM_SWEEP_M_TEST_LOSS]));
            cJSON_AddItemToObject(p, "n_eff_ritz", cli_json_doubles(a[q].mean + 4, t->nz));
            cJSON_AddItemToObject(p, "n_eff_slq", cli_json_doubles(a[q].mean + 4 + t->nz, t->nz));
            cJSON_AddItemToArray(pts, p);
        }
        cJSON_AddItemToArray(series, j);
    }
    return o;
}

static int run_stats(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"from-width", required_argument, NULL, OPT_FROM}, {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    opts o = {0};
    int rc = cli_getopt_loop("sweep stats", argc, argv, ":h", longopts, parse_one, &o, stats_usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *in = NULL;
    if (cli_one_operand("sweep stats", argc, argv, "SWEEP.h5", &in)) return CLI_EXIT_USAGE;
    effdim_error err;
    effdim_sweep_table *t = NULL;
    if (effdim_sweep_table_load(in, &t, &err)) return cli_fail("sweep stats", &err);
    effdim_sweep_agg *a = NULL;
    effdim_sweep_corr *c = NULL;
    size_t na = 0, nc = 0;
    effdim_status st = effdim_sweep_aggregate(t, &a, &na, &err);
    if (!st) st = effdim_sweep_correlations(t, (int64_t)o.from_width, &c, &nc, &err);
    if (!st && nc == 0)
        st = effdim_error_set(&err, EFFDIM_EINVAL, "%s: no finished rows (every row failed or none ran)", in);
    if (!st) {
        if (o.json) cli_json_print(stats_json(in, t, a, na, c, nc));
        else print_stats(t, a, na, c, nc);
    }
    free(a);
    free(c);
    effdim_sweep_table_free(t);
    return st ? cli_fail("sweep stats", &err) : CLI_EXIT_OK;
}

static int run_sweep(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"preset", required_argument, NULL, OPT_PRESET},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"keep-checkpoints", required_argument, NULL, OPT_KEEP},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    opts o = {0};
    o.jobs = 1;
    int rc = cli_getopt_loop("sweep", argc, argv, ":o:h", longopts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *config_path = NULL;
    if (o.preset) {
        if (optind < argc)
            return cli_errorf("sweep", CLI_EXIT_USAGE, "--preset and CONFIG.json: give one of them");
    } else if (cli_one_operand("sweep", argc, argv, "CONFIG.json", &config_path)) {
        return CLI_EXIT_USAGE;
    }
    if (!o.out) return cli_errorf("sweep", CLI_EXIT_USAGE, "-o SWEEP.h5 is required");
    effdim_sweep_params p = effdim_sweep_default_params();
    if ((rc = pick_shard(o.shard, &p))) return rc;
    p.jobs = o.jobs;
    p.limit = o.limit;
    p.keep_checkpoints = o.keep;
    if (o.threads) effdim_blas_set_threads(o.threads);
    effdim_error err;
    effdim_sweep_config *c = NULL;
    if (o.preset ? effdim_sweep_config_preset(o.preset, &c, &err)
                 : effdim_sweep_config_load(config_path, &c, &err))
        return cli_fail("sweep", &err);
    const char *inputs[] = {config_path};
    if (cli_claim_output("sweep", o.out, inputs, 1)) {
        effdim_sweep_config_free(c);
        return CLI_EXIT_FAIL;
    }
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, "sweep");
    cli_catch_interrupts();
    p.progress = cli_progress_of(&sink);
    effdim_sweep_result res;
    effdim_status st = effdim_sweep_run(c, o.out, &p, &res, &err);
    cli_progress_sink_done(&sink);
    effdim_sweep_config_free(c);
    if (st && st != EFFDIM_EMAXITER) return cli_fail("sweep", &err);
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o.out);
        cJSON_AddNumberToObject(j, "shard_index", (double)p.shard_index);
        cJSON_AddNumberToObject(j, "shard_count", (double)p.shard_count);
        cJSON_AddNumberToObject(j, "configurations", (double)res.total);
        cJSON_AddNumberToObject(j, "skipped", (double)res.skipped);
        cJSON_AddNumberToObject(j, "ran", (double)res.ran);
        cJSON_AddNumberToObject(j, "failed", (double)res.failed);
        cJSON_AddNumberToObject(j, "partial", (double)res.partial);
        cJSON_AddBoolToObject(j, "interrupted", res.interrupted);
        cli_json_print(j);
    } else {
        printf("%s: shard %zu/%zu: %zu configurations, %zu already done, %zu run (%zu failed, %zu partial)%s\n",
               o.out, p.shard_index, p.shard_count, res.total, res.skipped, res.ran, res.failed,
               res.partial, res.interrupted ? "; interrupted: rerun to continue" : "");
    }
    if (st) return cli_fail("sweep", &err);
    return res.failed ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
}

int cmd_sweep(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "merge")) return run_merge(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "plot")) return cmd_sweep_plot(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "stats")) return run_stats(argc - 1, argv + 1);
    return run_sweep(argc, argv);
}
