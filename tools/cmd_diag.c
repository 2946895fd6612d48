/* tools/cmd_diag.c: `effdim diag`, diagonal curvature estimates of a checkpoint.
 *
 *   effdim diag model.h5 --method ggn,ef,adam,hutchinson,hessian,ggn-mc,ivon
 *               [--data SPEC] -o diag.h5
 *
 * Parse, then one library job (effdim_diag_job_run, lib/diag_job.c: every
 * estimator of lib/diag.c at the Hessian's loss scale, docs/diagonals.md),
 * print, save (effdim_diag_file_save, lib/diag_io.c; the layout is in
 * docs/file-formats.md). Defaults are the job's (effdim_diag_job_default_params).
 * Data defaults to the checkpoint's training data spec; adam and ivon need no
 * data. Hutchinson's progress shows on stderr (cli_progress_sink).
 * Exit status: 0 written, 1 runtime failure, 2 bad usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/mlp.h"
#include "effdim/spectrum.h"

#define CMD "diag"
#define MAX_RESULTS 12
#define MAX_ATTRS 10

typedef struct diag_opts {
    const char *ckpt, *data, *out, *methods, *probe, *hvp;
    size_t probes, min_probes, block, mc_samples, mc_groups, batch, chunk;
    double rel_se, max_cost;
    uint64_t seed;
    int force, json, threads;
    const char *command; /* the command line as typed, recorded in the file */
} diag_opts;

typedef struct diag_run {
    diag_opts *o;
    effdim_checkpoint *ckpt;
    effdim_dataset *ds;
    const char *spec;          /* data spec used, or NULL */
    effdim_diag_method methods[EFFDIM_DIAG_N_METHODS];
    size_t n_methods;
    effdim_diag_job_params p;
    effdim_diag_file *f;       /* the job's result */
} diag_run;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim diag CKPT --method LIST -o DIAG.h5 [options]\n\n"
            "Diagonal curvature estimates of a checkpoint's training loss, each a vector over\n"
            "the parameters at the Hessian's scale (docs/diagonals.md).\n\n"
            "methods (comma-separated)\n"
            "  ggn          exact Gauss-Newton diagonal\n"
            "  ggn-mc       Monte-Carlo GGN from labels sampled from the model\n"
            "  ef           empirical Fisher, (1/N) sum of squared per-sample gradients\n"
            "  hessian      exact Hessian diagonal (Hessian backpropagation)\n"
            "  hutchinson   E[v * Hv] with random probes, with standard errors\n"
            "  adam         from the checkpoint's Adam state: adam = sqrt(v_hat) (BADAM),\n"
            "               adam-vhat = v_hat, adam-ef = B (N-1)/(N-B) v_hat\n"
            "  ivon         IVON's Hessian estimate (/optimizer/hess)\n\n"
            "options\n"
            "  --data SPEC          data for the loss (default: the checkpoint's training data)\n"
            "  --probes N           hutchinson: at most N probes (default 64)\n"
            "  --min-probes N       hutchinson: at least N probes (default 10)\n"
            "  --rel-se X           hutchinson: stop at this relative standard error\n"
            "                       ||se|| / ||diag|| (default 0: run --probes probes)\n"
            "  --probe KIND         hutchinson: rademacher (default) or gaussian\n"
            "  --hvp METHOD         hutchinson: exact (default), fd or fd-forward\n"
            "  --block N            hutchinson: probes per operator call (default 8)\n"
            "  --mc-samples S       ggn-mc: label draws per example (default 1)\n"
            "  --mc-groups G        ggn-mc: groups for the standard error (default: auto)\n"
            "  --batch B            adam: training minibatch size (default: the checkpoint's)\n"
            "  --max-cost X         hessian: refuse above X gradients of work (default 256)\n"
            "  --force              hessian: compute whatever the cost\n"
            "  --seed S             seed for ggn-mc and hutchinson (default 0)\n"
            "  --chunk N            rows per pass (default: the library's, 512)\n"
            "  --threads T          OpenBLAS threads (default 2)\n"
            "  -o, --output FILE    the file to write (atomically)\n"
            "  --json               print a JSON summary on stdout instead of the table\n"
            "  -h, --help           this help\n");
}

/* ======================================================================
 * Options
 * ====================================================================== */

enum {
    OPT_METHOD = 256, OPT_DATA, OPT_PROBES, OPT_MIN_PROBES, OPT_REL_SE, OPT_PROBE, OPT_HVP,
    OPT_BLOCK, OPT_MC_SAMPLES, OPT_MC_GROUPS, OPT_BATCH, OPT_MAX_COST, OPT_FORCE, OPT_SEED,
    OPT_CHUNK, OPT_THREADS, OPT_JSON
};

static const struct option long_opts[] = {
    {"method", required_argument, NULL, OPT_METHOD},
    {"data", required_argument, NULL, OPT_DATA},
    {"probes", required_argument, NULL, OPT_PROBES},
    {"min-probes", required_argument, NULL, OPT_MIN_PROBES},
    {"rel-se", required_argument, NULL, OPT_REL_SE},
    {"probe", required_argument, NULL, OPT_PROBE},
    {"hvp", required_argument, NULL, OPT_HVP},
    {"block", required_argument, NULL, OPT_BLOCK},
    {"mc-samples", required_argument, NULL, OPT_MC_SAMPLES},
    {"mc-groups", required_argument, NULL, OPT_MC_GROUPS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"max-cost", required_argument, NULL, OPT_MAX_COST},
    {"force", no_argument, NULL, OPT_FORCE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"chunk", required_argument, NULL, OPT_CHUNK},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int positive(const char *opt, size_t v)
{
    return v ? 0 : cli_errorf(CMD, CLI_EXIT_USAGE, "%s: expected a positive integer", opt);
}

static int parse_one(void *ctx, int c, const char *arg)
{
    diag_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case OPT_METHOD: o->methods = arg; break;
    case OPT_DATA: o->data = arg; break;
    case OPT_PROBES:
        rc = cli_parse_size(CMD, "--probes", arg, &o->probes);
        if (!rc) rc = positive("--probes", o->probes);
        break;
    case OPT_MIN_PROBES: rc = cli_parse_size(CMD, "--min-probes", arg, &o->min_probes); break;
    case OPT_REL_SE:
        rc = cli_parse_double(CMD, "--rel-se", arg, &o->rel_se);
        if (!rc && o->rel_se < 0.0)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--rel-se: expected a value >= 0, got %s", arg);
        break;
    case OPT_PROBE: o->probe = arg; break;
    case OPT_HVP: o->hvp = arg; break;
    case OPT_BLOCK:
        rc = cli_parse_size(CMD, "--block", arg, &o->block);
        if (!rc) rc = positive("--block", o->block);
        break;
    case OPT_MC_SAMPLES:
        rc = cli_parse_size(CMD, "--mc-samples", arg, &o->mc_samples);
        if (!rc) rc = positive("--mc-samples", o->mc_samples);
        break;
    case OPT_MC_GROUPS:
        rc = cli_parse_size(CMD, "--mc-groups", arg, &o->mc_groups);
        if (!rc) rc = positive("--mc-groups", o->mc_groups);
        break;
    case OPT_BATCH:
        rc = cli_parse_size(CMD, "--batch", arg, &o->batch);
        if (!rc) rc = positive("--batch", o->batch);
        break;
    case OPT_MAX_COST:
        rc = cli_parse_double(CMD, "--max-cost", arg, &o->max_cost);
        if (!rc && o->max_cost <= 0.0)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--max-cost: expected a positive number");
        break;
    case OPT_FORCE: o->force = 1; break;
    case OPT_SEED: rc = cli_parse_u64(CMD, "--seed", arg, &o->seed); break;
    case OPT_CHUNK: rc = cli_parse_chunk(CMD, arg, &o->chunk); break;
    case OPT_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case OPT_JSON: o->json = 1; break;
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* 0 when the options parse; -1 after --help; else the exit code. */
static int parse_args(diag_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->probes = 64;
    o->min_probes = 10;
    o->block = 8;
    o->mc_samples = 1;
    o->max_cost = 256.0;
    o->threads = 2;
    o->probe = "rademacher";
    o->hvp = "exact";
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, o, usage);
    if (rc) return rc;
    if (optind >= argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "expected a checkpoint (effdim diag --help)");
    if (optind + 1 < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind + 1]);
    o->ckpt = argv[optind];
    if (!o->methods)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--method is required (e.g. --method ggn,ef,adam)");
    if (!o->out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o/--output is required");
    if (o->min_probes < 2)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--min-probes: expected at least 2, got %zu",
                          o->min_probes);
    if (o->probes < o->min_probes) o->min_probes = o->probes < 2 ? 2 : o->probes;
    if (o->probes < 2)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--probes: expected at least 2, got %zu", o->probes);
    return 0;
}

/* ======================================================================
 * Setup and the job
 * ====================================================================== */

static effdim_diag_job_params job_params(const diag_opts *o)
{
    effdim_diag_job_params p = effdim_diag_job_default_params();
    p.diag.mc_samples = o->mc_samples;
    p.diag.mc_groups = o->mc_groups;
    p.diag.seed = o->seed;
    p.diag.max_cost = o->max_cost;
    p.diag.force = o->force;
    p.hutchinson.min_probes = o->min_probes;
    p.hutchinson.max_probes = o->probes;
    p.hutchinson.block = o->block;
    p.hutchinson.rel_se = o->rel_se;
    p.hutchinson.seed = o->seed;
    p.batch = o->batch;
    p.seed = o->seed;
    p.chunk = o->chunk;
    p.command_line = o->command;
    p.comm = cli_comm();
    return p;
}

static int setup(diag_run *R)
{
    diag_opts *o = R->o;
    effdim_error err;
    R->p = job_params(o);
    if (effdim_diag_methods_parse(o->methods, R->methods, EFFDIM_DIAG_N_METHODS, &R->n_methods, &err) ||
        effdim_probe_kind_parse(o->probe, &R->p.hutchinson.probe, &err) ||
        effdim_hvp_method_parse(o->hvp, &R->p.hvp_method, &err)) {
        cli_fail(CMD, &err);
        return CLI_EXIT_USAGE;
    }
    effdim_blas_set_threads(o->threads);
    /* under mpirun each rank loads only its share of the rows (cli_load_data); a rank's failure reaches all */
    effdim_status st = cli_load_checkpoint(o->ckpt, o->data, &R->ckpt, &R->spec, &err);
    st = effdim_comm_agree(cli_comm(), st, &err);
    if (st) return cli_fail(CMD, &err);
    if (!R->spec && effdim_diag_job_needs_data(R->methods, R->n_methods))
        return cli_errorf(CMD, CLI_EXIT_USAGE,
                          "%s records no training data; give the data with --data SPEC",
                          o->ckpt);
    if (R->spec) st = cli_load_data(o->ckpt, &R->ckpt->mlp, R->spec, !o->data, &R->ds, &err);
    if (effdim_comm_agree(cli_comm(), st, &err)) return cli_fail(CMD, &err);
    /* refuse what cannot work before any long computation */
    if (effdim_diag_job_check(R->ckpt, o->ckpt, R->ds, R->methods, R->n_methods, &R->p, &err))
        return cli_fail(CMD, &err);
    return 0;
}

/* The notes and warnings the entries' attributes call for. */
static void print_notes(const diag_run *R)
{
    int adam = 0;
    for (size_t i = 0; i < R->n_methods; ++i) adam |= R->methods[i] == EFFDIM_DIAG_ADAM;
    if (adam && !effdim_diag_file_find(R->f, "adam-ef"))
        fprintf(stderr, "effdim diag: note: no adam-ef reading (it needs minibatch training with "
                        "a known batch size smaller than the data)\n");
    const effdim_diag_entry *h = effdim_diag_file_find(R->f, "hutchinson");
    if (!h) return;
    const effdim_diag_attr *probes = effdim_diag_entry_attr(h, "probes");
    const effdim_diag_attr *rel = effdim_diag_entry_attr(h, "rel_se");
    const effdim_diag_attr *conv = effdim_diag_entry_attr(h, "converged");
    if (!probes || !rel || !conv) return;
    if (R->o->rel_se > 0.0 && !conv->integer)
        fprintf(stderr, "effdim diag: note: hutchinson: relative standard error %.3g after %lld "
                        "probes, target %.3g not reached\n",
                rel->real, (long long)probes->integer, R->o->rel_se);
    if (rel->real > EFFDIM_DIAG_HUTCH_NOISY)
        fprintf(stderr, "effdim diag: warning: hutchinson: relative standard error %.2g after %lld "
                        "probes: single entries are noise; use more --probes or a --rel-se "
                        "target\n",
                rel->real, (long long)probes->integer);
}

static int run(diag_run *R)
{
    effdim_error err;
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    R->p.progress = cli_progress_of(&sink); /* stderr: --json keeps stdout clean */
    cli_catch_interrupts();
    effdim_status st = effdim_diag_job_run(R->ckpt, R->o->ckpt, R->ds, R->spec, R->methods,
                                           R->n_methods, &R->p, &R->f, &err);
    cli_progress_sink_done(&sink);
    if (st) return cli_fail(CMD, &err);
    print_notes(R);
    for (size_t i = 0; !R->o->json && i < R->f->count; ++i)
        fprintf(stderr, "effdim diag: %s: %.2f s\n", R->f->entries[i].name, R->f->entries[i].seconds);
    return 0;
}

static int save(const diag_run *R)
{
    effdim_error err;
    effdim_error_clear(&err);
    effdim_status st = cli_rank0() ? effdim_diag_file_save(R->f, R->o->out, &err) : EFFDIM_OK;
    return effdim_comm_agree(cli_comm(), st, &err) ? cli_fail(CMD, &err) : 0;
}

/* sum, min, median, max and negative count of v (P) */
typedef struct vstats {
    double sum, min, median, max;
    size_t negative;
} vstats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static vstats stats_of(const double *v, size_t P, double *tmp)
{
    vstats s = {0.0, v[0], 0.0, v[0], 0};
    for (size_t j = 0; j < P; ++j) {
        s.sum += v[j];
        s.min = fmin(s.min, v[j]);
        s.max = fmax(s.max, v[j]);
        s.negative += v[j] < 0.0;
        tmp[j] = v[j];
    }
    qsort(tmp, P, sizeof(double), cmp_double);
    s.median = P % 2 ? tmp[P / 2] : 0.5 * (tmp[P / 2 - 1] + tmp[P / 2]);
    return s;
}

static void print_table(const diag_run *R, double *tmp)
{
    size_t P = R->ckpt->mlp.n_params;
    printf("%s: %zu parameters, %s loss (%s)%s%s\n", R->o->ckpt, P,
           effdim_loss_name(R->ckpt->mlp.loss), effdim_reduction_name(R->ckpt->mlp.reduction),
           R->spec ? ", data " : "", R->spec ? R->spec : "");
    printf("%-12s %12s %12s %12s %12s %9s %9s\n", "diagonal", "sum", "min", "median", "max",
           "negative", "seconds");
    for (size_t i = 0; i < R->f->count; ++i) {
        const effdim_diag_entry *e = &R->f->entries[i];
        vstats s = stats_of(e->v, P, tmp);
        printf("%-12s %12.5g %12.5g %12.5g %12.5g %9zu %9.2f\n", e->name, s.sum, s.min,
               s.median, s.max, s.negative, e->seconds);
    }
    printf("written to %s\n", R->o->out);
}

static void print_json(const diag_run *R, double *tmp)
{
    size_t P = R->ckpt->mlp.n_params;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "output", R->o->out);
    cJSON_AddStringToObject(o, "checkpoint", R->o->ckpt);
    if (R->spec) cJSON_AddStringToObject(o, "data", R->spec);
    cJSON_AddNumberToObject(o, "n", R->ds ? (double)R->f->n : 0);
    cJSON_AddNumberToObject(o, "n_params", (double)P);
    cJSON_AddStringToObject(o, "reduction", effdim_reduction_name(R->ckpt->mlp.reduction));
    cJSON *arr = cJSON_AddArrayToObject(o, "diagonals");
    for (size_t i = 0; i < R->f->count; ++i) {
        const effdim_diag_entry *r = &R->f->entries[i];
        vstats s = stats_of(r->v, P, tmp);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", r->name);
        cJSON_AddStringToObject(e, "method", r->method);
        cJSON_AddNumberToObject(e, "sum", s.sum);
        cJSON_AddNumberToObject(e, "min", s.min);
        cJSON_AddNumberToObject(e, "median", s.median);
        cJSON_AddNumberToObject(e, "max", s.max);
        cJSON_AddNumberToObject(e, "negative", (double)s.negative);
        cJSON_AddNumberToObject(e, "seconds", r->seconds);
        for (size_t a = 0; a < r->n_attrs; ++a) {
            const effdim_diag_attr *x = &r->attrs[a];
            double v = x->kind == EFFDIM_DIAG_ATTR_INT ? (double)x->integer : x->real;
            if (x->kind != EFFDIM_DIAG_ATTR_STRING && isfinite(v))
                cJSON_AddNumberToObject(e, x->key, v);
        }
        cJSON_AddItemToArray(arr, e);
    }
    cli_json_print(o);
}

static void run_free(diag_run *R)
{
    effdim_diag_file_free(R->f);
    effdim_dataset_free(R->ds);
    effdim_checkpoint_free(R->ckpt);
}

int cmd_diag(int argc, char **argv)
{
    diag_opts o;
    char command[4096]; /* before getopt permutes argv */
    cli_command_line(argc, argv, command, sizeof command);
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    o.command = command;
    const char *claim_in[] = {o.ckpt, o.data};
    if (cli_rank0()) rc = cli_claim_output(CMD, o.out, claim_in, 2); /* rank 0 alone writes */
    if ((rc = cli_comm_rc(rc))) return rc;
    diag_run R;
    memset(&R, 0, sizeof R);
    R.o = &o;
    rc = setup(&R);
    if (!rc) rc = run(&R);
    if (!rc) rc = save(&R);
    if (!rc) {
        double *tmp = malloc(R.ckpt->mlp.n_params * sizeof(double));
        if (tmp && o.json) print_json(&R, tmp);
        else if (tmp) print_table(&R, tmp);
        free(tmp);
    }
    run_free(&R);
    return rc;
}
