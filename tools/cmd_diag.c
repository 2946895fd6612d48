/* tools/cmd_diag.c: `effdim diag`, diagonal curvature estimates of a checkpoint.
 *
 *   effdim diag model.h5 --method ggn,ef,adam,hutchinson,hessian,ggn-mc,ivon
 *               [--data SPEC] -o diag.h5
 *
 * For each method, a vector [P] in theta order at the loss scale of the
 * Hessian (lib/diag.c; docs/diagonals.md explains every estimator and its
 * scale), written to /diag/<name> of a new HDF5 file (format "effdim.diag",
 * version 1) with its attributes; standard errors, when the method has them,
 * go to /se/<name>. The adam method writes three readings of Adam's second
 * moment: adam (BADAM's sqrt(v_hat)), adam-vhat (v_hat itself) and adam-ef
 * (the empirical-Fisher reading B (N-1)/(N-B) v_hat, minibatch training only).
 *
 * Layout:
 *   /                 attrs format="effdim.diag", format_version=1, checkpoint,
 *                     checkpoint_sha256, data_spec, n, n_params, loss, reduction,
 *                     scale, seed, methods (strings), layer_offsets, layer_params
 *                     (int64 [L]: each layer's block of theta), version, created
 *   /diag/<name>      float64 [P]; attrs method, reading, reduction, scale,
 *                     seconds and method-specific ones (probes, rel_se, trace,
 *                     trace_se, samples, groups, beta2, step, batch, ...;
 *                     counts, seeds and flags int64, the rest float64)
 *   /se/<name>        float64 [P], per-entry standard error (hutchinson, ggn-mc)
 *
 * Decisions: data defaults to the checkpoint's training data spec (the
 * diagonals are of the training loss); adam and ivon need no data but use
 * its row count for their scale when there is one. hutchinson probes the
 * exact Hessian (R-operator) by default, up to --probes probes or until the
 * relative standard error --rel-se is met. The write is atomic.
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
#include "effdim/sha256.h"
#include "effdim/spectrum.h"
#include "h5io.h"
#include "internal.h"

#define CMD "diag"
#define MAX_RESULTS 12
#define MAX_ATTRS 10

typedef struct diag_opts {
    const char *ckpt, *data, *out, *methods, *probe, *hvp;
    size_t probes, min_probes, block, mc_samples, mc_groups, batch, chunk;
    double rel_se, max_cost;
    uint64_t seed;
    int force, json, threads;
} diag_opts;

/* One vector to write. */
typedef struct result {
    char name[32];            /* dataset name under /diag */
    const char *method;       /* the estimator */
    const char *reading;      /* what the vector is, one sentence */
    double *v, *se;           /* (P) owned; se may be NULL */
    double seconds;
    size_t n_num, n_str;
    const char *num_key[MAX_ATTRS];
    double num_val[MAX_ATTRS];
    unsigned char num_int[MAX_ATTRS]; /* 1: an integer, written as int64 */
    const char *str_key[MAX_ATTRS];
    const char *str_val[MAX_ATTRS];
} result;

typedef struct diag_run {
    diag_opts *o;
    effdim_checkpoint *ckpt;
    effdim_dataset *ds;
    const char *spec;          /* data spec used, or NULL */
    effdim_mlp_ws *ws;
    effdim_diag_method methods[EFFDIM_DIAG_N_METHODS];
    size_t n_methods;
    result res[MAX_RESULTS];
    size_t n_res;
    cli_progress pr;
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
 * Setup
 * ====================================================================== */

static int needs_data(const diag_run *R)
{
    for (size_t i = 0; i < R->n_methods; ++i)
        if (R->methods[i] != EFFDIM_DIAG_ADAM && R->methods[i] != EFFDIM_DIAG_IVON) return 1;
    return 0;
}

static effdim_diag_params diag_params(const diag_opts *o);

/* Refuse what cannot work before any long computation: an exact Hessian
 * above its cost limit, adam or ivon without their optimiser state. */
static effdim_status preflight(const diag_run *R, effdim_error *err)
{
    const effdim_checkpoint *c = R->ckpt;
    effdim_diag_params p = diag_params(R->o);
    effdim_status st = EFFDIM_OK;
    double *tmp = NULL;
    for (size_t i = 0; !st && i < R->n_methods; ++i) {
        if (R->methods[i] == EFFDIM_DIAG_HESSIAN) st = effdim_diag_hessian_check(&c->mlp, &p, err);
        if (R->methods[i] == EFFDIM_DIAG_ADAM) /* no outputs: the checks only */
            st = effdim_diag_adam(c, R->o->ckpt, R->o->batch, R->ds ? R->ds->n : 0, NULL, NULL,
                                  NULL, NULL, err);
        if (R->methods[i] == EFFDIM_DIAG_IVON) {
            if (!tmp && !(tmp = effdim_alloc(c->mlp.n_params, sizeof(double), "ivon", err)))
                return EFFDIM_ENOMEM;
            st = effdim_diag_ivon(c, R->o->ckpt, R->ds ? R->ds->n : 0, tmp, err);
        }
    }
    free(tmp);
    return st;
}

static int setup(diag_run *R)
{
    diag_opts *o = R->o;
    effdim_error err;
    effdim_probe_kind pk;
    effdim_hvp_method hm;
    if (effdim_diag_methods_parse(o->methods, R->methods, EFFDIM_DIAG_N_METHODS, &R->n_methods, &err) ||
        effdim_probe_kind_parse(o->probe, &pk, &err) || effdim_hvp_method_parse(o->hvp, &hm, &err)) {
        cli_fail(CMD, &err);
        return CLI_EXIT_USAGE;
    }
    effdim_blas_set_threads(o->threads);
    if (cli_load_checkpoint(o->ckpt, o->data, &R->ckpt, &R->spec, &err)) return cli_fail(CMD, &err);
    if (!R->spec && needs_data(R))
        return cli_errorf(CMD, CLI_EXIT_USAGE,
                          "%s records no training data; give the data with --data SPEC",
                          o->ckpt);
    if (R->spec) {
        if (cli_load_data(o->ckpt, &R->ckpt->mlp, R->spec, !o->data, &R->ds, &err))
            return cli_fail(CMD, &err);
        R->ws = effdim_mlp_ws_alloc(&R->ckpt->mlp, o->chunk, &err);
        if (!R->ws) return cli_fail(CMD, &err);
    }
    return preflight(R, &err) ? cli_fail(CMD, &err) : 0;
}

/* ======================================================================
 * Methods
 * ====================================================================== */

static result *new_result(diag_run *R, const char *name, const char *method, const char *reading,
                          int with_se, effdim_error *err)
{
    if (R->n_res >= MAX_RESULTS) {
        effdim_error_set(err, EFFDIM_EINTERNAL, "too many results");
        return NULL;
    }
    result *r = &R->res[R->n_res];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->method = method;
    r->reading = reading;
    size_t P = R->ckpt->mlp.n_params;
    r->v = effdim_alloc(P, sizeof(double), name, err);
    r->se = with_se ? effdim_alloc(P, sizeof(double), name, err) : NULL;
    if (!r->v || (with_se && !r->se)) {
        free(r->v);
        free(r->se);
        return NULL;
    }
    ++R->n_res;
    return r;
}

static void add_num(result *r, const char *k, double v)
{
    if (r->n_num < MAX_ATTRS) {
        r->num_key[r->n_num] = k;
        r->num_int[r->n_num] = 0;
        r->num_val[r->n_num++] = v;
    }
}

/* an integer-valued attribute (counts, seeds, flags): written as int64 */
static void add_int(result *r, const char *k, int64_t v)
{
    if (r->n_num < MAX_ATTRS) {
        r->num_key[r->n_num] = k;
        r->num_int[r->n_num] = 1;
        r->num_val[r->n_num++] = (double)v;
    }
}

static void add_str(result *r, const char *k, const char *v)
{
    if (r->n_str < MAX_ATTRS) {
        r->str_key[r->n_str] = k;
        r->str_val[r->n_str++] = v;
    }
}

static effdim_diag_params diag_params(const diag_opts *o)
{
    effdim_diag_params p = effdim_diag_default_params();
    p.mc_samples = o->mc_samples;
    p.mc_groups = o->mc_groups;
    p.seed = o->seed;
    p.max_cost = o->max_cost;
    p.force = o->force;
    return p;
}

static void hutch_progress(void *ctx, size_t probes, double rel_se)
{
    diag_run *R = ctx;
    cli_progress_update(&R->pr, (double)probes / (double)R->o->probes,
                        "hutchinson: %zu/%zu probes, relative se %.3g", probes, R->o->probes,
                        rel_se);
}

/* above this relative standard error ||se|| / ||diag|| a Hutchinson diagonal is
 * mostly noise entry by entry (its sum, the trace, may still be fine) */
#define HUTCH_NOISY 0.2

static effdim_status run_hutchinson(diag_run *R, result *r, effdim_error *err)
{
    const diag_opts *o = R->o;
    const effdim_mlp *m = &R->ckpt->mlp;
    effdim_hvp_params hp = effdim_hvp_default_params();
    effdim_hvp_method_parse(o->hvp, &hp.method, err);
    effdim_operator *op = NULL;
    effdim_status st = effdim_hvp_operator(m, R->ckpt->theta, R->ds, NULL, R->ds->n, &hp, R->ws,
                                           &op, err);
    if (st) return st;
    effdim_hutchinson_diag_params p = effdim_hutchinson_diag_default_params();
    effdim_probe_kind_parse(o->probe, &p.probe, err);
    p.min_probes = o->min_probes;
    p.max_probes = o->probes;
    p.block = o->block;
    p.rel_se = o->rel_se;
    p.seed = o->seed;
    p.progress = hutch_progress;
    p.progress_ctx = R;
    effdim_hutchinson_diag_result hr;
    memset(&hr, 0, sizeof hr);
    st = effdim_diag_hutchinson(op, &p, r->v, r->se, &hr, err);
    cli_progress_done(&R->pr);
    effdim_operator_free(op);
    if (st == EFFDIM_EMAXITER) { /* partial results are still results */
        fprintf(stderr, "effdim diag: note: %s\n", err->msg);
        st = EFFDIM_OK;
    }
    if (st) return st;
    if (hr.rel_se > HUTCH_NOISY)
        fprintf(stderr, "effdim diag: warning: hutchinson: relative standard error %.2g after %zu "
                        "probes: single entries are noise; use more --probes or a --rel-se "
                        "target\n",
                hr.rel_se, hr.probes);
    add_int(r, "probes", (int64_t)hr.probes);
    add_num(r, "rel_se", hr.rel_se);
    add_num(r, "rel_se_target", o->rel_se);
    add_num(r, "trace", hr.trace);
    add_num(r, "trace_se", hr.trace_se);
    add_int(r, "seed", (int64_t)o->seed);
    add_int(r, "converged", hr.converged);
    add_str(r, "probe", effdim_probe_kind_name(p.probe));
    add_str(r, "hvp_method", effdim_hvp_method_name(hp.method));
    return EFFDIM_OK;
}

static effdim_status run_adam(diag_run *R, effdim_error *err)
{
    const effdim_checkpoint *c = R->ckpt;
    size_t n = R->ds ? R->ds->n : 0;
    double t0 = effdim_now();
    result *b = new_result(R, "adam", "adam",
                           "sqrt(v_hat), BADAM's reading of Adam's preconditioner as the "
                           "curvature of the mean loss", 0, err);
    result *v = b ? new_result(R, "adam-vhat", "adam",
                               "v_hat = exp_avg_sq / (1 - beta2^t), PyTorch's bias-corrected "
                               "second moment (squared gradient units, not rescaled)", 0, err)
                  : NULL;
    result *e = v ? new_result(R, "adam-ef", "adam",
                               "B (N-1)/(N-B) v_hat, the empirical-Fisher reading (assumes a "
                               "near-zero mean gradient over the averaging window)", 0, err)
                  : NULL;
    if (!e) return EFFDIM_ENOMEM;
    int ef_ok = 0;
    effdim_status st = effdim_diag_adam(c, R->o->ckpt, R->o->batch, n, v->v, b->v, e->v, &ef_ok, err);
    if (st) return st;
    if (!ef_ok) { /* no ef reading: drop it */
        free(e->v);
        --R->n_res;
        fprintf(stderr, "effdim diag: note: no adam-ef reading (it needs minibatch training with "
                        "a known batch size smaller than the data)\n");
    }
    double beta2 = NAN; /* present: effdim_diag_adam refuses a checkpoint without it */
    effdim_checkpoint_hparam(c, "beta2", &beta2);
    int64_t t = c->optimizer->step;
    const effdim_checkpoint_attr *ba = effdim_checkpoint_training_attr(c, "batch");
    int64_t batch = R->o->batch ? (int64_t)R->o->batch
                    : ba && !ba->is_string && ba->n == 1 ? (int64_t)ba->num[0] : 0;
    for (size_t i = 0; i < (ef_ok ? 3u : 2u); ++i) {
        result *r = i == 0 ? b : i == 1 ? v : e;
        r->seconds = effdim_now() - t0;
        add_num(r, "beta2", beta2);
        add_int(r, "step", t);
        add_int(r, "batch", batch);
        add_int(r, "n_train", (int64_t)n);
        add_str(r, "optimizer", c->optimizer->name);
    }
    return EFFDIM_OK;
}

static effdim_status run_method(diag_run *R, effdim_diag_method meth, effdim_error *err)
{
    const effdim_checkpoint *c = R->ckpt;
    const effdim_mlp *m = &c->mlp;
    effdim_diag_params p = diag_params(R->o);
    size_t n = R->ds ? R->ds->n : 0;
    if (meth == EFFDIM_DIAG_ADAM) return run_adam(R, err);
    static const char *const readings[EFFDIM_DIAG_N_METHODS] = {
        "exact generalised Gauss-Newton diagonal, s sum_i diag(J_i^T H_i J_i)",
        "Monte-Carlo GGN diagonal from labels sampled from the model's predictive",
        "empirical Fisher diagonal, s sum_i g_i^2 with g_i the per-sample loss gradient "
        "(s = 1/N for the mean loss)",
        "",
        "Hutchinson's estimate mean_p v_p * (H v_p) of the Hessian diagonal",
        "exact Hessian diagonal by Hessian backpropagation",
        "IVON's Hessian estimate h (/optimizer/hess) at the loss scale"};
    int with_se = meth == EFFDIM_DIAG_HUTCHINSON || meth == EFFDIM_DIAG_GGN_MC;
    const char *name = effdim_diag_method_name(meth);
    result *r = new_result(R, name, name, readings[meth], with_se, err);
    if (!r) return EFFDIM_ENOMEM;
    double t0 = effdim_now();
    effdim_status st = EFFDIM_OK;
    switch (meth) {
    case EFFDIM_DIAG_GGN:
        st = effdim_diag_ggn(m, c->theta, R->ds, NULL, n, &p, r->v, R->ws, err);
        break;
    case EFFDIM_DIAG_EF: st = effdim_diag_ef(m, c->theta, R->ds, NULL, n, &p, r->v, R->ws, err); break;
    case EFFDIM_DIAG_GGN_MC:
        st = effdim_diag_ggn_mc(m, c->theta, R->ds, NULL, n, &p, r->v, r->se, R->ws, err);
        add_int(r, "samples", (int64_t)p.mc_samples);
        add_int(r, "groups", (int64_t)p.mc_groups);
        add_int(r, "seed", (int64_t)p.seed);
        break;
    case EFFDIM_DIAG_HESSIAN: {
        size_t nf = 0;
        double cost = effdim_diag_hessian_cost(m, &nf);
        st = effdim_diag_hessian(m, c->theta, R->ds, NULL, n, &p, r->v, R->ws, err);
        add_num(r, "cost_gradients", cost);
        add_int(r, "factors", (int64_t)nf);
        break;
    }
    case EFFDIM_DIAG_HUTCHINSON: st = run_hutchinson(R, r, err); break;
    case EFFDIM_DIAG_IVON: st = effdim_diag_ivon(c, R->o->ckpt, n, r->v, err); break;
    case EFFDIM_DIAG_ADAM: break;
    }
    r->seconds = effdim_now() - t0;
    if (!st && !R->o->json) fprintf(stderr, "effdim diag: %s: %.2f s\n", name, r->seconds);
    return st;
}

/* ======================================================================
 * Output
 * ====================================================================== */

static effdim_status write_result(hid_t g, hid_t gse, const diag_run *R, const result *r,
                                  effdim_error *err)
{
    const effdim_mlp *m = &R->ckpt->mlp;
    size_t P = m->n_params, n = R->ds ? R->ds->n : 0;
    double scale = effdim_mlp_loss_scale(m, n);
    effdim_status st = effdim_h5_write_doubles(g, r->name, 1, &P, r->v, err);
    if (!st && r->se) st = effdim_h5_write_doubles(gse, r->name, 1, &P, r->se, err);
    if (st) return st;
    hid_t d = H5Dopen2(g, r->name, H5P_DEFAULT);
    if (d < 0) return effdim_error_set(err, EFFDIM_EIO, "%s: /diag/%s: cannot reopen", R->o->out, r->name);
    st = effdim_h5_attr_write_string(d, "method", r->method, err);
    if (!st) st = effdim_h5_attr_write_string(d, "reading", r->reading, err);
    if (!st) st = effdim_h5_attr_write_string(d, "reduction", effdim_reduction_name(m->reduction), err);
    if (!st) st = effdim_h5_attr_write_double(d, "scale", scale, err);
    if (!st) st = effdim_h5_attr_write_double(d, "seconds", r->seconds, err);
    for (size_t i = 0; !st && i < r->n_num; ++i)
        st = r->num_int[i]
                 ? effdim_h5_attr_write_int64(d, r->num_key[i], (int64_t)r->num_val[i], err)
                 : effdim_h5_attr_write_double(d, r->num_key[i], r->num_val[i], err);
    for (size_t i = 0; !st && i < r->n_str; ++i)
        st = effdim_h5_attr_write_string(d, r->str_key[i], r->str_val[i], err);
    H5Dclose(d);
    return st;
}

static effdim_status write_root(hid_t f, const diag_run *R, effdim_error *err)
{
    const effdim_mlp *m = &R->ckpt->mlp;
    size_t n = R->ds ? R->ds->n : 0, L = m->n_layers;
    char sha[65] = "", now[64];
    if (effdim_sha256_file(R->o->ckpt, sha, NULL)) sha[0] = '\0';
    const char *names[MAX_RESULTS];
    int64_t off[EFFDIM_MLP_MAX_LAYERS], len[EFFDIM_MLP_MAX_LAYERS];
    for (size_t i = 0; i < R->n_res; ++i) names[i] = R->res[i].name;
    for (size_t l = 0; l < L; ++l) {
        size_t o, sz;
        effdim_mlp_layer_block(m, l, &o, &sz);
        off[l] = (int64_t)o;
        len[l] = (int64_t)sz;
    }
    double scale = effdim_mlp_loss_scale(m, n);
    effdim_status st = effdim_h5_attr_write_string(f, "format", "effdim.diag", err);
    if (!st) st = effdim_h5_attr_write_int64(f, "format_version", 1, err);
    if (!st) st = effdim_h5_attr_write_string(f, "checkpoint", R->o->ckpt, err);
    if (!st) st = effdim_h5_attr_write_string(f, "checkpoint_sha256", sha, err);
    if (!st) st = effdim_h5_attr_write_string(f, "data_spec", R->spec ? R->spec : "", err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n", (int64_t)n, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_params", (int64_t)m->n_params, err);
    if (!st) st = effdim_h5_attr_write_string(f, "loss", effdim_loss_name(m->loss), err);
    if (!st) st = effdim_h5_attr_write_string(f, "reduction", effdim_reduction_name(m->reduction), err);
    if (!st) st = effdim_h5_attr_write_double(f, "scale", scale, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "seed", (int64_t)R->o->seed, err);
    if (!st) st = effdim_h5_attr_write_strings(f, "methods", names, R->n_res, err);
    if (!st) st = effdim_h5_attr_write_int64s(f, "layer_offsets", off, L, err);
    if (!st) st = effdim_h5_attr_write_int64s(f, "layer_params", len, L, err);
    if (!st) st = effdim_h5_attr_write_string(f, "version", effdim_version(), err);
    if (!st) st = effdim_h5_attr_write_string(f, "created", effdim_now_iso(now, sizeof now), err);
    return st;
}

static int save(const diag_run *R)
{
    effdim_error err;
    effdim_h5_atomic a;
    if (effdim_h5_atomic_begin(R->o->out, &a, &err)) return cli_fail(CMD, &err);
    hid_t g = -1, gse = -1;
    effdim_status st = write_root(a.file, R, &err);
    if (!st) st = effdim_h5_group(a.file, "diag", &g, &err);
    if (!st) st = effdim_h5_group(a.file, "se", &gse, &err);
    for (size_t i = 0; !st && i < R->n_res; ++i) st = write_result(g, gse, R, &R->res[i], &err);
    if (g >= 0) H5Gclose(g);
    if (gse >= 0) H5Gclose(gse);
    if (!st) st = effdim_h5_atomic_commit(&a, &err);
    if (st) {
        effdim_h5_atomic_abort(&a);
        return cli_fail(CMD, &err);
    }
    return 0;
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
    for (size_t i = 0; i < R->n_res; ++i) {
        vstats s = stats_of(R->res[i].v, P, tmp);
        printf("%-12s %12.5g %12.5g %12.5g %12.5g %9zu %9.2f\n", R->res[i].name, s.sum, s.min,
               s.median, s.max, s.negative, R->res[i].seconds);
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
    cJSON_AddNumberToObject(o, "n", R->ds ? (double)R->ds->n : 0);
    cJSON_AddNumberToObject(o, "n_params", (double)P);
    cJSON_AddStringToObject(o, "reduction", effdim_reduction_name(R->ckpt->mlp.reduction));
    cJSON *arr = cJSON_AddArrayToObject(o, "diagonals");
    for (size_t i = 0; i < R->n_res; ++i) {
        const result *r = &R->res[i];
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
        for (size_t a = 0; a < r->n_num; ++a)
            if (isfinite(r->num_val[a])) cJSON_AddNumberToObject(e, r->num_key[a], r->num_val[a]);
        cJSON_AddItemToArray(arr, e);
    }
    cli_json_print(o);
}

static void run_free(diag_run *R)
{
    for (size_t i = 0; i < R->n_res; ++i) {
        free(R->res[i].v);
        free(R->res[i].se);
    }
    effdim_mlp_ws_free(R->ws);
    effdim_dataset_free(R->ds);
    effdim_checkpoint_free(R->ckpt);
}

int cmd_diag(int argc, char **argv)
{
    diag_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *claim_in[] = {o.ckpt, o.data};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 2))) return rc;
    diag_run R;
    memset(&R, 0, sizeof R);
    R.o = &o;
    cli_progress_init(&R.pr);
    effdim_h5_quiet();
    rc = setup(&R);
    for (size_t i = 0; !rc && i < R.n_methods; ++i) {
        effdim_error err;
        if (run_method(&R, R.methods[i], &err)) rc = cli_fail(CMD, &err);
    }
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
