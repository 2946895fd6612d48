/* tools/cmd_sweep.c: `effdim sweep`: run a sweep config into a table, merge
 * shards, plot the double-descent figure.
 *
 *   effdim sweep CONFIG.json -o sweep.h5 [--keep-checkpoints DIR] [--jobs N] [--shard I/N]
 *   effdim sweep --preset quick -o sweep.h5
 *   effdim sweep merge A.h5 B.h5 ... -o all.h5
 *   effdim sweep plot sweep.h5 -o fig.png
 *
 * The work is effdim_sweep_run (lib/sweep.c); this file parses, claims the
 * output, shows the progress and prints a summary.
 */
#define _POSIX_C_SOURCE 200809L
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
            "       effdim sweep plot SWEEP.h5 -o FIG.png\n\n"
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
    size_t jobs, limit;
    int threads, json;
} opts;

enum { OPT_PRESET = 256, OPT_SHARD, OPT_JOBS, OPT_KEEP, OPT_LIMIT, OPT_JSON, OPT_THREADS };

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
    return run_sweep(argc, argv);
}
