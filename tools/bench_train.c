/* tools/bench_train.c: `effdim bench train`, training throughput against PyTorch.
 *
 * Times the training step of `effdim train` (the same calls: minibatch loss
 * and gradient by effdim_mlp_loss_grad over shuffled row indices, the
 * learning rate from the schedule, effdim_optim_step) for 784-300-100-10
 * with relu hidden layers, softmax cross-entropy (mean), Adam (lr 1e-3),
 * batch 128 on Fashion-MNIST's 60,000 training images, float64, 2 OpenBLAS
 * threads, and reports steps per second. In the same run it measures
 *  - this machine's dgemm rate on the step's own largest product and on a
 *    square 2048^3 product, timed interleaved with the steps
 *    (bench_common.h), so the step's GFLOP/s has a ceiling to compare with;
 *  - the same step in PyTorch (tools/bench/train_torch.py, run with Debian's
 *    /usr/bin/python3 when present): float64 nn.Sequential, nn.CrossEntropyLoss,
 *    torch.optim.Adam, torch.set_num_threads(T), X[idx] minibatches;
 * and prints both rates and the ratio effdim / PyTorch (target >= 1).
 *
 * FLOPs per step (multiply-adds count 2; elementwise work and Adam's O(P)
 * update are not counted): forward 2 b sum_l out_l in_l, weight gradients
 * the same, deltas 2 b sum_{l>=1} out_l in_l: 144.2 MFLOP for b = 128.
 */
#include <getopt.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "cli.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"

#define CMD "bench train"
#define TORCH_SCRIPT "tools/bench/train_torch.py"

typedef struct train_bench_opts {
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t n_sizes;
    size_t batch;
    size_t repeat;
    int threads;
    const char *data; /* spec, or "random" */
    const char *opt;
    int torch;
    int json;
} train_bench_opts;

/* The state of the timed training loop. */
typedef struct step_ctx {
    const effdim_mlp *m;
    const effdim_dataset *ds;
    double *theta, *grad;   /* (P) each */
    size_t *perm;           /* (n) shuffled rows */
    size_t batch, next;     /* next batch start in perm */
    effdim_optim *opt;
    effdim_schedule sched;
    effdim_mlp_ws *ws;
    gsl_rng *rng;
    double loss;
    size_t steps;
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
            "  --opt NAME       sgd, adam (default), amsgrad, adamw\n"
            "  --threads T      OpenBLAS and torch threads (default 2)\n"
            "  --repeat R       timed samples (default 5; best and median reported)\n"
            "  --data SPEC      training data (default fashion-mnist:train), or 'random'\n"
            "  --no-torch       do not run the PyTorch comparison\n"
            "  --json           print a JSON summary\n"
            "  -h, --help       this help\n");
}

static int parse_opts(int argc, char **argv, train_bench_opts *o)
{
    static const struct option longopts[] = {
        {"arch", required_argument, 0, 'a'},   {"batch", required_argument, 0, 'b'},
        {"opt", required_argument, 0, 'O'},    {"threads", required_argument, 0, 't'},
        {"repeat", required_argument, 0, 'r'}, {"data", required_argument, 0, 'd'},
        {"no-torch", no_argument, 0, 'N'},     {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    size_t v;
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            rc = cli_parse_size_list(CMD, "--arch", optarg, o->sizes, EFFDIM_MLP_MAX_LAYERS + 1,
                                     &o->n_sizes);
            if (!rc && o->n_sizes < 2)
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--arch: at least two widths (input,output)");
            break;
        case 'b':
            rc = cli_parse_size(CMD, "--batch", optarg, &o->batch);
            if (!rc && o->batch < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--batch: at least 1");
            break;
        case 'O': o->opt = optarg; break;
        case 't':
            rc = cli_parse_size(CMD, "--threads", optarg, &v);
            if (!rc && (v < 1 || v > 256))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--threads: expected 1 to 256, got %zu", v);
            o->threads = (int)v;
            break;
        case 'r':
            rc = cli_parse_size(CMD, "--repeat", optarg, &o->repeat);
            if (!rc && (o->repeat < 1 || o->repeat > 1000))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--repeat: expected 1 to 1000");
            break;
        case 'd': o->data = optarg; break;
        case 'N': o->torch = 0; break;
        case 'j': o->json = 1; break;
        case 'h': usage(stdout); return -1;
        case ':': return cli_errorf(CMD, CLI_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_errorf(CMD, CLI_EXIT_USAGE, "unknown option '%s' (effdim bench train --help)",
                              argv[optind - 1]);
        }
        if (rc) return rc;
    }
    if (optind < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* One training step, exactly as effdim train's inner loop. */
static int train_step(void *p)
{
    step_ctx *s = p;
    size_t n = s->ds->n;
    if (s->next >= n) { /* a new epoch: reshuffle */
        gsl_ran_shuffle(s->rng, s->perm, n, sizeof *s->perm);
        s->next = 0;
    }
    size_t len = s->next + s->batch <= n ? s->batch : n - s->next;
    if (effdim_mlp_loss_grad(s->m, s->theta, s->ds, s->perm + s->next, len, &s->loss, s->grad,
                             s->ws, &s->err))
        return 1;
    double lr = effdim_schedule_lr(&s->sched, s->opt->t + 1);
    if (effdim_optim_step(s->opt, s->theta, s->grad, lr, &s->err)) return 1;
    s->next += len;
    ++s->steps;
    return 0;
}

/* uniform [0, 1) pixels and uniform labels, seeded */
static effdim_status random_data(size_t n, size_t d, size_t k, effdim_dataset **out,
                                 effdim_error *err)
{
    effdim_status st = effdim_dataset_alloc(n, d, k, EFFDIM_TARGET_LABELS, out, err);
    if (st) return st;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) {
        effdim_dataset_free(*out);
        *out = NULL;
        return effdim_error_set(err, EFFDIM_ENOMEM, "random data: no generator");
    }
    gsl_rng_set(r, 1);
    for (size_t i = 0; i < n * d; ++i) (*out)->X[i] = gsl_rng_uniform(r);
    for (size_t i = 0; i < n; ++i) (*out)->labels[i] = (int32_t)gsl_rng_uniform_int(r, k);
    gsl_rng_free(r);
    return EFFDIM_OK;
}

/* The PyTorch script: $EFFDIM_SOURCE_DIR, then up from the executable (a
 * build folder inside the checkout), then the current folder. */
static int find_script(char *buf, size_t cap)
{
    const char *src = getenv("EFFDIM_SOURCE_DIR");
    if (src && src[0]) {
        snprintf(buf, cap, "%s/%s", src, TORCH_SCRIPT);
        if (access(buf, R_OK) == 0) return 0;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        for (int up = 0; up < 4; ++up) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = '\0';
            snprintf(buf, cap, "%s/%s", exe, TORCH_SCRIPT);
            if (access(buf, R_OK) == 0) return 0;
        }
    }
    snprintf(buf, cap, "%s", TORCH_SCRIPT);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

/* Run the PyTorch script; its last stdout line starting with '{' is JSON. */
static cJSON *run_torch(const train_bench_opts *o, const char *arch, const char *optname)
{
    char script[PATH_MAX + 64], cmd[2 * PATH_MAX + 512];
    if (access("/usr/bin/python3", X_OK) != 0) {
        cli_errorf(CMD, 0, "/usr/bin/python3 not found; PyTorch comparison skipped");
        return NULL;
    }
    if (find_script(script, sizeof script)) {
        cli_errorf(CMD, 0, TORCH_SCRIPT " not found (set EFFDIM_SOURCE_DIR to the checkout); "
                           "PyTorch comparison skipped");
        return NULL;
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' --arch %s --batch %zu --opt %s --threads %d "
             "--repeat %zu --data %s", script, arch, o->batch, optname, o->threads, o->repeat,
             o->data && !strcmp(o->data, "random") ? "random" : "fashion-mnist");
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char line[4096], last[4096] = "";
    while (fgets(line, sizeof line, p))
        if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
    int rc = pclose(p);
    if (rc != 0 || !last[0]) {
        cli_errorf(CMD, 0, "the PyTorch script failed (status %d); comparison skipped", rc);
        return NULL;
    }
    return cJSON_Parse(last);
}

static double step_flops(const effdim_mlp *m, size_t b)
{
    double f = 0, dl = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        double oi = (double)m->sizes[l + 1] * (double)m->sizes[l];
        f += oi;
        if (l) dl += oi;
    }
    return 4.0 * (double)b * f + 2.0 * (double)b * dl;
}

static effdim_status load_data(const train_bench_opts *o, const effdim_mlp *m,
                               effdim_dataset **ds, char *what, size_t cap, effdim_error *err)
{
    if (o->data && !strcmp(o->data, "random")) {
        snprintf(what, cap, "random (60000 uniform [0,1) inputs, seed 1)");
        return random_data(60000, m->sizes[0], m->sizes[m->n_layers], ds, err);
    }
    snprintf(what, cap, "%s", o->data ? o->data : "fashion-mnist:train");
    effdim_status st = effdim_dataset_from_spec(what, ds, err);
    if (!st) st = effdim_mlp_check_data(m, *ds, what, err);
    return st;
}

static void print_text(const train_bench_opts *o, const char *arch, const char *what,
                       const effdim_mlp *m, const step_ctx *s, const bench_timing *t,
                       double flops, const bench_gemm_shape *shapes, double ref, cJSON *torch)
{
    char cpu[256];
    double sps = 1.0 / t->best, sps_med = 1.0 / t->median;
    printf("effdim bench train (preliminary unless run on a quiet machine)\n");
    printf("machine   %s, %d threads, %s\n", bench_cpu_model(cpu, sizeof cpu), o->threads,
           effdim_blas_config());
    printf("network   %s (relu hidden, cross_entropy mean), %zu parameters, %s, batch %zu\n",
           arch, m->n_params, effdim_optim_kind_name(s->opt->kind), o->batch);
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
                   cJSON_IsString(tv) ? tv->valuestring : "?", o->threads);
            printf("ratio     effdim / pytorch = %.3f (best), %.3f (median); target >= 1\n",
                   sps / ts->valuedouble,
                   cJSON_IsNumber(tm) ? sps_med / tm->valuedouble : (double)NAN);
        }
    }
}

static cJSON *summary_json(const train_bench_opts *o, const char *arch, const char *what,
                           const effdim_mlp *m, const step_ctx *s, const bench_timing *t,
                           double flops, const bench_gemm_shape *shapes, double ref, cJSON *torch)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "benchmark", "train");
    cJSON_AddItemToObject(j, "machine", bench_json_machine(o->threads));
    cJSON_AddStringToObject(j, "data", what);
    cJSON_AddStringToObject(j, "arch", arch);
    cJSON_AddNumberToObject(j, "params", (double)m->n_params);
    cJSON_AddStringToObject(j, "optimizer", effdim_optim_kind_name(s->opt->kind));
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
    return j;
}

int bench_train(int argc, char **argv)
{
    train_bench_opts o = {.sizes = {784, 300, 100, 10}, .n_sizes = 4, .batch = 128, .repeat = 5,
                          .threads = 2, .opt = "adam", .torch = 1};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    effdim_error err;
    effdim_mlp m;
    effdim_activation acts[EFFDIM_MLP_MAX_LAYERS];
    size_t L = o.n_sizes - 1;
    for (size_t l = 0; l < L; ++l) acts[l] = l + 1 < L ? EFFDIM_ACT_RELU : EFFDIM_ACT_IDENTITY;
    if (effdim_mlp_init(&m, L, o.sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &err))
        return cli_fail(CMD, &err);
    effdim_optim_kind kind;
    if (effdim_optim_kind_parse(o.opt, &kind, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--opt: %s", err.msg);
    effdim_set_num_threads(o.threads);
    char what[512], arch[1024] = "";
    for (size_t l = 0; l <= L; ++l)
        snprintf(arch + strlen(arch), sizeof arch - strlen(arch), "%s%zu", l ? "," : "", o.sizes[l]);

    step_ctx s;
    memset(&s, 0, sizeof s);
    bench_gemm_shape shapes[2];
    memset(shapes, 0, sizeof shapes);
    effdim_dataset *ds = NULL;
    rc = CLI_EXIT_FAIL;
    if (load_data(&o, &m, &ds, what, sizeof what, &err)) {
        cli_fail(CMD, &err);
        goto done;
    }
    effdim_optim_params p = effdim_optim_default_params(kind);
    s.m = &m;
    s.ds = ds;
    s.batch = o.batch < ds->n ? o.batch : ds->n;
    s.next = ds->n; /* shuffle before the first step */
    s.theta = malloc(m.n_params * sizeof *s.theta);
    s.grad = malloc(m.n_params * sizeof *s.grad);
    s.perm = malloc(ds->n * sizeof *s.perm);
    s.rng = gsl_rng_alloc(gsl_rng_mt19937);
    s.sched = effdim_schedule_constant(p.lr);
    s.ws = effdim_mlp_ws_alloc(&m, s.batch < 4096 ? s.batch : 4096, &err);
    if (!s.theta || !s.grad || !s.perm || !s.rng || !s.ws ||
        effdim_optim_alloc(kind, &p, m.n_params, &s.opt, &err) ||
        effdim_mlp_init_params(&m, s.theta, EFFDIM_INIT_TORCH, 1, &err)) {
        cli_fail(CMD, &err);
        goto done;
    }
    for (size_t i = 0; i < ds->n; ++i) s.perm[i] = i;
    gsl_rng_set(s.rng, 1);

    /* the step interleaved with two dgemm references: the step's largest
     * product (b x 784)(784 x 300)^T and a square 2048^3 product */
    bench_gemm_shape_set(&shapes[0], "2048 x 2048 x 2048 (square)", 0, 0, 2048, 2048, 2048);
    bench_gemm_shape_set(&shapes[1], NULL, 0, 1, s.batch, o.sizes[1], o.sizes[0]);
    bench_job jobs[3] = {{train_step, &s, {0, 0, 0, 0, 0}}};
    for (size_t i = 0; i < 2; ++i) {
        if (bench_gemm_alloc(&shapes[i], 1 + (unsigned)i)) {
            cli_errorf(CMD, 1, "out of memory for the dgemm reference");
            goto done;
        }
        jobs[1 + i] = bench_gemm_job(&shapes[i]);
    }
    if (bench_run(jobs, 3, o.repeat, 0.5)) {
        cli_fail(CMD, &s.err);
        goto done;
    }
    double ref = 0;
    for (size_t i = 0; i < 2; ++i) {
        bench_gemm_record(&shapes[i], &jobs[1 + i]);
        ref = shapes[i].gflops > ref ? shapes[i].gflops : ref;
    }
    bench_timing t = jobs[0].t;
    double flops = step_flops(&m, s.batch);
    cJSON *torch = o.torch ? run_torch(&o, arch, o.opt) : NULL;
    if (o.json)
        cli_json_print(summary_json(&o, arch, what, &m, &s, &t, flops, shapes, ref, torch));
    else {
        print_text(&o, arch, what, &m, &s, &t, flops, shapes, ref, torch);
        cJSON_Delete(torch);
    }
    rc = CLI_EXIT_OK;
done:
    for (size_t i = 0; i < 2; ++i) bench_gemm_free(&shapes[i]);
    effdim_optim_free(s.opt);
    effdim_mlp_ws_free(s.ws);
    if (s.rng) gsl_rng_free(s.rng);
    free(s.theta);
    free(s.grad);
    free(s.perm);
    effdim_dataset_free(ds);
    return rc;
}
