/* tools/bench_train.c: `effdim bench train`, training throughput against PyTorch.
 *
 * Times the training step of `effdim train` (the library's training job,
 * effdim_trainer_step: minibatch loss and gradient over the epoch's
 * permutation, the scheduled learning rate, the optimiser step) for 784-300-100-10
 * with relu hidden layers, softmax cross-entropy (mean), Adam (lr 1e-3),
 * batch 128 on Fashion-MNIST's 60,000 training images, float64, 2 OpenBLAS
 * threads, and reports steps per second. In the same run it measures
 *  - this machine's dgemm rate on the step's own largest product and on a
 *    square 2048^3 product, timed interleaved with the steps
 *    (bench_common.h), so the step's GFLOP/s has a ceiling to compare with;
 *  - the same step in PyTorch (tools/bench/train_torch.py, run with Debian's
 *    /usr/bin/python3 when present): float64 nn.Sequential, nn.CrossEntropyLoss,
 *    torch.optim.Adam, torch.set_num_threads(T), X[idx] minibatches;
 * and prints both rates and the ratio effdim / PyTorch (target >= 1). It
 * also times, interleaved, the other side of IVON against Adam: one IVON
 * step with one weight sample (P normal draws, the sample, the gradient at
 * it, the accumulation, the update) against one Adam step on the same
 * network and batches; target: IVON / Adam <= 1.2 (issue 13). With --opt
 * other than adam or ivon the IVON step is compared with that optimiser's.
 *
 * FLOPs per step (multiply-adds count 2; elementwise work and Adam's O(P)
 * update are not counted): forward 2 b sum_l out_l in_l, weight gradients
 * the same, deltas 2 b sum_{l>=1} out_l in_l: 144.2 MFLOP for b = 128.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "cli.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "effdim/train.h"

#define CMD "bench train"
#define TORCH_SCRIPT "tools/bench/train_torch.py"

typedef struct train_bench_opts {
    bench_opts b; /* --arch --threads --repeat --data --json */
    size_t batch;
    const char *opt;
    int torch;
} train_bench_opts;

/* The state of the timed training loop. */
typedef struct step_ctx {
    const effdim_dataset *ds;
    effdim_checkpoint *ckpt; /* the network and theta */
    effdim_trainer *trainer;
    size_t batch;
    double loss;
    effdim_error err;
} step_ctx;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim bench train [options]\n\n"
            "Training throughput (steps/s) of effdim train's step against the same step in\n"
            "PyTorch float64, measured in the same run, and the step's GFLOP/s against this\n"
            "machine's dgemm rate.\n\n"
            "  --arch A,B,...   layer widths (default 784,300,100,10; relu hidden layers)\n"
            "  --batch B        minibatch size (default 128)\n"
            "  --opt NAME       sgd, adam (default), amsgrad, adamw, ivon (the other job is\n"
            "                   then adam); an IVON step (1 sample) is timed beside it\n"
            "  --threads T      OpenBLAS and torch threads (default 2)\n"
            "  --repeat R       timed samples (default 5; best and median reported)\n"
            "  --data SPEC      training data (default fashion-mnist:train), or 'random'\n"
            "  --no-torch       do not run the PyTorch comparison\n"
            "  --json           print a JSON summary\n"
            "  -h, --help       this help\n");
}

static int parse_one(void *ctx, int c, const char *arg)
{
    train_bench_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case 'b':
        rc = cli_parse_size(CMD, "--batch", arg, &o->batch);
        if (!rc && o->batch < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--batch: at least 1");
        return rc;
    case 'O': o->opt = arg; return 0;
    case 'N': o->torch = 0; return 0;
    default: return bench_parse_common(CMD, c, arg, &o->b);
    }
}

static int parse_opts(int argc, char **argv, train_bench_opts *o)
{
    static const struct option longopts[] = {
        BENCH_LONGOPT_ARCH, {"batch", required_argument, 0, 'b'},
        {"opt", required_argument, 0, 'O'}, BENCH_LONGOPT_THREADS,
        BENCH_LONGOPT_REPEAT, BENCH_LONGOPT_DATA,
        {"no-torch", no_argument, 0, 'N'}, BENCH_LONGOPT_JSON,
        BENCH_LONGOPT_HELP, {0, 0, 0, 0},
    };
    int rc = cli_getopt_loop(CMD, argc, argv, ":h", longopts, parse_one, o, usage);
    return rc ? rc : bench_check_operands(CMD, argc, argv, &o->b);
}

/* A trainer for kind on a fresh checkpoint of m (PyTorch init, seed 1):
 * batch, seed 1, no evaluation (an epoch's end appends NaN metrics); IVON
 * with lr 0.1, ess n and one sample, Adam-family and SGD at their defaults. */
static effdim_status setup_steps(step_ctx *s, effdim_optim_kind kind, const effdim_mlp *m,
                                 size_t batch, effdim_error *err)
{
    effdim_train_params p = effdim_train_default_params();
    p.optimizer = kind;
    p.optim = effdim_optim_default_params(kind);
    if (kind == EFFDIM_OPTIM_IVON) {
        p.optim.lr = 0.1;
        p.optim.ess = (double)s->ds->n;
    }
    p.batch = batch;
    p.seed = 1;
    p.evaluate = 0;
    p.epochs = 0;
    effdim_status st = effdim_checkpoint_alloc(m, NULL, &s->ckpt, err);
    if (!st) st = effdim_mlp_init_params(m, s->ckpt->theta, EFFDIM_INIT_TORCH, 1, err);
    if (!st) st = effdim_trainer_alloc(&p, s->ckpt, s->ds, NULL, &s->trainer, err);
    return st;
}

/* One training step, exactly as effdim train's inner loop (no evaluation). */
static int train_step(void *p)
{
    step_ctx *s = p;
    return effdim_trainer_step(s->trainer, &s->loss, &s->err) != EFFDIM_OK;
}

/* train_torch.py on the same data, network and optimiser; its JSON summary. */
static cJSON *run_torch(const train_bench_opts *o, const char *arch, const char *optname)
{
    char args[2048];
    snprintf(args, sizeof args, "--arch %s --batch %zu --opt %s --threads %d --repeat %zu --data %s",
             arch, o->batch, optname, o->b.threads, o->b.repeat,
             o->b.data && !strcmp(o->b.data, "random") ? "random" : "fashion-mnist");
    return bench_run_torch(CMD, TORCH_SCRIPT, args);
}

/* The IVON-against-Adam comparison: IVON's step time over the other's. */
typedef struct ivon_cmp {
    const char *other;  /* the optimiser IVON is compared with */
    double ivon_s, other_s; /* seconds per step, best sample */
} ivon_cmp;

static void print_text(const train_bench_opts *o, const char *arch, const char *what,
                       const effdim_mlp *m, const step_ctx *s, const bench_timing *t,
                       double flops, const bench_gemm_shape *shapes, double ref, cJSON *torch,
                       const ivon_cmp *iv)
{
    double sps = 1.0 / t->best, sps_med = 1.0 / t->median;
    bench_print_header("train", o->b.threads);
    printf("network   %s (relu hidden, cross_entropy mean), %zu parameters, %s, batch %zu\n",
           arch, m->n_params, effdim_optim_kind_name(effdim_trainer_optim(s->trainer)->kind), o->batch);
    printf("data      %s: %zu x %zu\n", what, s->ds->n, s->ds->d);
    printf("effdim    %.1f steps/s (median %.1f) over %zu samples of %zu steps; %.2f GFLOP/s\n",
           sps, sps_med, t->repeat, t->inner, flops * sps * 1e-9);
    bench_print_gemm(shapes, 2, ref);
    printf("          the step runs at %.3f of the dgemm reference %.2f GFLOP/s\n",
           flops * sps * 1e-9 / ref, ref);
    if (torch) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(torch, "steps_per_second");
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(torch, "steps_per_second_median");
        const cJSON *tv = cJSON_GetObjectItemCaseSensitive(torch, "version");
        if (cJSON_IsNumber(ts)) {
            printf("pytorch   %.1f steps/s (median %.1f), torch %s float64, %d threads\n",
                   ts->valuedouble, cJSON_IsNumber(tm) ? tm->valuedouble : (double)NAN,
                   cJSON_IsString(tv) ? tv->valuestring : "?", o->b.threads);
            printf("ratio     effdim / pytorch = %.3f (best), %.3f (median); target >= 1\n",
                   sps / ts->valuedouble,
                   cJSON_IsNumber(tm) ? sps_med / tm->valuedouble : (double)NAN);
        }
    }
    printf("ivon      one step (1 sample) costs %.3f %s steps (%.1f vs %.1f steps/s); target <= 1.2\n",
           iv->ivon_s / iv->other_s, iv->other, 1.0 / iv->ivon_s, 1.0 / iv->other_s);
}

static cJSON *summary_json(const train_bench_opts *o, const char *arch, const char *what,
                           const effdim_mlp *m, const step_ctx *s, const bench_timing *t,
                           double flops, const bench_gemm_shape *shapes, double ref, cJSON *torch,
                           const ivon_cmp *iv)
{
    cJSON *j = bench_json_head("train", o->b.threads, what, arch);
    cJSON_AddNumberToObject(j, "params", (double)m->n_params);
    cJSON_AddStringToObject(j, "optimizer", effdim_optim_kind_name(effdim_trainer_optim(s->trainer)->kind));
    cJSON_AddNumberToObject(j, "batch", (double)o->batch);
    cJSON_AddNumberToObject(j, "flops_per_step", flops);
    cJSON_AddNumberToObject(j, "repeat", (double)t->repeat);
    cJSON_AddNumberToObject(j, "steps_per_sample", (double)t->inner);
    cJSON_AddNumberToObject(j, "steps_per_second", 1.0 / t->best);
    cJSON_AddNumberToObject(j, "steps_per_second_median", 1.0 / t->median);
    cJSON_AddNumberToObject(j, "gflops", flops / t->best * 1e-9);
    cJSON_AddItemToObject(j, "dgemm", bench_json_gemm(shapes, 2));
    cJSON_AddNumberToObject(j, "dgemm_reference_gflops", ref);
    cJSON_AddNumberToObject(j, "dgemm_ratio", flops / t->best * 1e-9 / ref);
    if (torch) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(torch, "steps_per_second");
        if (cJSON_IsNumber(ts)) cJSON_AddNumberToObject(j, "torch_ratio", 1.0 / t->best / ts->valuedouble);
        cJSON_AddItemToObject(j, "torch", torch);
    }
    cJSON_AddNumberToObject(j, "target_torch_ratio", 1.0);
    cJSON *jv = cJSON_AddObjectToObject(j, "ivon");
    cJSON_AddStringToObject(jv, "against", iv->other);
    cJSON_AddNumberToObject(jv, "steps_per_second", 1.0 / iv->ivon_s);
    cJSON_AddNumberToObject(jv, "other_steps_per_second", 1.0 / iv->other_s);
    cJSON_AddNumberToObject(jv, "step_cost_ratio", iv->ivon_s / iv->other_s);
    cJSON_AddNumberToObject(jv, "target_step_cost_ratio", 1.2);
    return j;
}

int bench_train(int argc, char **argv)
{
    train_bench_opts o = {.b = BENCH_OPTS_DEFAULT, .batch = 128, .opt = "adam", .torch = 1};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    effdim_error err;
    effdim_mlp m;
    effdim_optim_kind kind;
    char what[512], arch[1024];
    if (effdim_optim_kind_parse(o.opt, &kind, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--opt: %s", err.msg);
    if (bench_mlp_setup(&o.b, &m, arch, sizeof arch, &err)) return cli_fail(CMD, &err);

    step_ctx s, s2; /* the --opt step; the comparison: IVON, or Adam when --opt ivon */
    memset(&s, 0, sizeof s);
    memset(&s2, 0, sizeof s2);
    bench_gemm_shape shapes[2];
    memset(shapes, 0, sizeof shapes);
    effdim_dataset *ds = NULL;
    rc = CLI_EXIT_FAIL;
    if (bench_load_data(&o.b, &m, 60000, "fashion-mnist:train", &ds, what, sizeof what, &err)) {
        cli_fail(CMD, &err);
        goto done;
    }
    effdim_optim_kind kind2 = kind == EFFDIM_OPTIM_IVON ? EFFDIM_OPTIM_ADAM : EFFDIM_OPTIM_IVON;
    s.ds = s2.ds = ds;
    s.batch = s2.batch = o.batch < ds->n ? o.batch : ds->n;
    if (setup_steps(&s, kind, &m, o.batch, &err) || setup_steps(&s2, kind2, &m, o.batch, &err)) {
        cli_fail(CMD, &err);
        goto done;
    }

    /* the step interleaved with two dgemm references: the step's largest
     * product (b x 784)(784 x 300)^T and a square 2048^3 product */
    bench_gemm_shape_set(&shapes[0], "2048 x 2048 x 2048 (square)", 0, 0, 2048, 2048, 2048);
    bench_gemm_shape_set(&shapes[1], NULL, 0, 1, s.batch, o.b.sizes[1], o.b.sizes[0]);
    bench_job jobs[4] = {{train_step, &s, {0, 0, 0, 0, 0}}, {train_step, &s2, {0, 0, 0, 0, 0}}};
    double ref = 0;
    rc = bench_run_with_gemm(CMD, jobs, 2, shapes, 2, o.b.repeat, 0.5, &ref);
    if (rc) {
        if (rc > 0) cli_fail(CMD, s.err.msg[0] ? &s.err : &s2.err);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    bench_timing t = jobs[0].t;
    ivon_cmp iv;
    iv.other = effdim_optim_kind_name(kind == EFFDIM_OPTIM_IVON ? EFFDIM_OPTIM_ADAM : kind);
    iv.ivon_s = kind == EFFDIM_OPTIM_IVON ? jobs[0].t.best : jobs[1].t.best;
    iv.other_s = kind == EFFDIM_OPTIM_IVON ? jobs[1].t.best : jobs[0].t.best;
    double fwd, wg, dl;
    bench_mlp_flops(&m, s.batch, &fwd, &wg, &dl);
    double flops = fwd + wg + dl;
    cJSON *torch = o.torch && kind != EFFDIM_OPTIM_IVON ? run_torch(&o, arch, o.opt) : NULL; /* torch has no IVON */
    if (o.b.json)
        cli_json_print(summary_json(&o, arch, what, &m, &s, &t, flops, shapes, ref, torch, &iv));
    else {
        print_text(&o, arch, what, &m, &s, &t, flops, shapes, ref, torch, &iv);
        cJSON_Delete(torch);
    }
    rc = CLI_EXIT_OK;
done:
    for (size_t i = 0; i < 2; ++i) bench_gemm_free(&shapes[i]);
    effdim_trainer_free(s.trainer);
    effdim_checkpoint_free(s.ckpt);
    effdim_trainer_free(s2.trainer);
    effdim_checkpoint_free(s2.ckpt);
    effdim_dataset_free(ds);
    return rc;
}
