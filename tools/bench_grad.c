/* tools/bench_grad.c: `effdim bench grad`, the full-batch gradient benchmark.
 *
 * Times effdim_mlp_loss_grad over the whole data set (default: 784-300-100-10,
 * relu hidden layers, softmax cross-entropy with mean reduction, on the first
 * 10,000 Fashion-MNIST training images, 2 OpenBLAS threads) and reports
 * GFLOP/s and the ratio to this machine's own dgemm rate measured in the same
 * run (bench_common.h). Target: ratio >= 0.80.
 *
 * FLOPs of one gradient over n rows (multiply-adds count 2; elementwise
 * work, the bias terms and the loss are not counted):
 *   forward                 2 n sum_l out_l in_l
 *   weight gradients        2 n sum_l out_l in_l
 *   delta propagation       2 n sum_{l>=1} out_l in_l   (dL/dX is not formed)
 * For 784-300-100-10 and n = 10,000: 5.324 + 5.324 + 0.620 = 11.268 GFLOP.
 *
 * --torch also runs tools/bench/bench_grad_torch.py (Debian's /usr/bin/python3
 * with python3-torch) on the same data and network in float64 with the same
 * threads, and reports its rate against the same dgemm reference.
 */
#include <getopt.h>
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

#define CMD "bench grad"

typedef struct grad_opts {
    size_t n;
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t n_sizes;
    effdim_activation act;
    int threads;
    size_t repeat;
    size_t chunk;
    const char *data; /* spec, "random", or NULL for the default */
    int json;
    int torch;
    int n_given;
} grad_opts;

typedef struct grad_ctx {
    const effdim_mlp *m;
    const double *theta;
    const effdim_dataset *ds;
    size_t n;
    double *grad;
    double loss;
    effdim_mlp_ws *ws;
    effdim_error err;
} grad_ctx;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim bench grad [options]\n\n"
            "Full-batch loss and gradient of an MLP (softmax cross-entropy, mean), timed and\n"
            "compared with this machine's dgemm rate measured in the same run.\n\n"
            "  --n N             examples (default 10000)\n"
            "  --arch A,B,...    layer widths (default 784,300,100,10)\n"
            "  --act NAME        hidden activation (default relu; output is identity)\n"
            "  --threads T       OpenBLAS threads (default 2)\n"
            "  --repeat R        timed runs (default 5; best and median reported)\n"
            "  --chunk C         rows per pass (default 512)\n"
            "  --data SPEC       data spec (default fashion-mnist:train:n=N), or 'random'\n"
            "                    (uniform [0,1) inputs and uniform labels, seed 1)\n"
            "  --torch           also time PyTorch float64 (tools/bench/bench_grad_torch.py)\n"
            "  --json            print a JSON summary instead of text\n"
            "  -h, --help        this help\n\n"
            "FLOPs: forward 2n*sum(out*in), weight gradients 2n*sum(out*in), deltas\n"
            "2n*sum over layers l>=1 of out*in (the input delta is not computed).\n");
}

static int parse_opts(int argc, char **argv, grad_opts *o)
{
    static const struct option longopts[] = {
        {"n", required_argument, 0, 'n'},      {"arch", required_argument, 0, 'a'},
        {"act", required_argument, 0, 'A'},    {"threads", required_argument, 0, 't'},
        {"repeat", required_argument, 0, 'r'}, {"chunk", required_argument, 0, 'c'},
        {"data", required_argument, 0, 'd'},   {"torch", no_argument, 0, 'T'},
        {"json", no_argument, 0, 'j'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    size_t v;
    int c, rc = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            rc = cli_parse_size(CMD, "--n", optarg, &o->n);
            o->n_given = 1;
            break;
        case 'a':
            rc = cli_parse_size_list(CMD, "--arch", optarg, o->sizes, EFFDIM_MLP_MAX_LAYERS + 1,
                                     &o->n_sizes);
            if (!rc && o->n_sizes < 2)
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--arch: at least two widths (input,output)");
            break;
        case 'A':
            if (effdim_activation_parse(optarg, &o->act))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE,
                                "--act: unknown activation '%s' (identity, relu, tanh, sigmoid, "
                                "softplus, gelu)", optarg);
            break;
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
        case 'c':
            rc = cli_parse_size(CMD, "--chunk", optarg, &o->chunk);
            if (!rc && (o->chunk < 1 || o->chunk > INT_MAX))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--chunk: expected 1 to %d", INT_MAX);
            break;
        case 'd': o->data = optarg; break;
        case 'T': o->torch = 1; break;
        case 'j': o->json = 1; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
        if (rc) return rc;
    }
    if (optind < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (o->n == 0) return cli_errorf(CMD, CLI_EXIT_USAGE, "--n: expected at least 1 example");
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

static int run_grad(void *p)
{
    grad_ctx *g = p;
    return (int)effdim_mlp_loss_grad(g->m, g->theta, g->ds, NULL, g->n, &g->loss, g->grad, g->ws,
                                     &g->err);
}

/* The script beside the sources: $EFFDIM_SOURCE_DIR, then <exe>/../../
 * (a build folder inside the checkout), then the current folder. */
static int find_torch_script(char *buf, size_t cap)
{
    const char *rel = "tools/bench/bench_grad_torch.py";
    const char *src = getenv("EFFDIM_SOURCE_DIR");
    if (src && src[0]) {
        snprintf(buf, cap, "%s/%s", src, rel);
        if (access(buf, R_OK) == 0) return 0;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        for (int up = 0; up < 3; ++up) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = '\0';
            if (up >= 1) {
                snprintf(buf, cap, "%s/%s", exe, rel);
                if (access(buf, R_OK) == 0) return 0;
            }
        }
    }
    snprintf(buf, cap, "%s", rel);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

/* Run the PyTorch script; its last stdout line is a JSON object. */
static cJSON *run_torch(const grad_opts *o, const char *arch)
{
    char script[PATH_MAX + 64], cmd[2 * PATH_MAX + 512];
    if (access("/usr/bin/python3", X_OK) != 0) {
        cli_errorf(CMD, 0, "--torch: /usr/bin/python3 not found; skipped");
        return NULL;
    }
    if (find_torch_script(script, sizeof script)) {
        cli_errorf(CMD, 0, "--torch: tools/bench/bench_grad_torch.py not found (set "
                           "EFFDIM_SOURCE_DIR to the checkout); skipped");
        return NULL;
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' --n %zu --arch %s --act %s --threads %d "
             "--repeat %zu --data %s",
             script, o->n, arch, effdim_activation_name(o->act), o->threads, o->repeat,
             o->data && !strcmp(o->data, "random") ? "random" : "fashion-mnist");
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char line[4096], last[4096] = "";
    while (fgets(line, sizeof line, p))
        if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
    int rc = pclose(p);
    if (rc != 0 || !last[0]) {
        cli_errorf(CMD, 0, "--torch: the PyTorch script failed (exit %d); skipped", rc);
        return NULL;
    }
    return cJSON_Parse(last);
}

static void flop_counts(const effdim_mlp *m, size_t n, double *fwd, double *wgrad, double *delta)
{
    double f = 0, dl = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        double oi = (double)m->sizes[l + 1] * (double)m->sizes[l];
        f += oi;
        if (l) dl += oi;
    }
    *fwd = 2.0 * (double)n * f;
    *wgrad = 2.0 * (double)n * f;
    *delta = 2.0 * (double)n * dl;
}

static effdim_status load_data(const grad_opts *o, const effdim_mlp *m, effdim_dataset **ds,
                               char *what, size_t cap, effdim_error *err)
{
    size_t d = m->sizes[0], k = m->sizes[m->n_layers];
    if (o->data && !strcmp(o->data, "random")) {
        snprintf(what, cap, "random (uniform [0,1) inputs, seed 1)");
        return random_data(o->n, d, k, ds, err);
    }
    if (o->data)
        snprintf(what, cap, "%s", o->data);
    else
        snprintf(what, cap, "fashion-mnist:train:n=%zu", o->n);
    effdim_status st = effdim_dataset_from_spec(what, ds, err);
    if (st) return st;
    if ((*ds)->n < o->n) {
        effdim_status e = effdim_error_set(err, EFFDIM_EINVAL, "%s: %zu examples, --n asks for %zu",
                                           what, (*ds)->n, o->n);
        effdim_dataset_free(*ds);
        *ds = NULL;
        return e;
    }
    return effdim_mlp_check_data(m, *ds, what, err);
}

int bench_grad(int argc, char **argv)
{
    grad_opts o = {.n = 10000, .sizes = {784, 300, 100, 10}, .n_sizes = 4,
                   .act = EFFDIM_ACT_RELU, .threads = 2, .repeat = 5, .chunk = 512};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;

    effdim_error err;
    effdim_mlp m;
    effdim_activation acts[EFFDIM_MLP_MAX_LAYERS];
    size_t L = o.n_sizes - 1;
    for (size_t l = 0; l < L; ++l) acts[l] = l + 1 < L ? o.act : EFFDIM_ACT_IDENTITY;
    if (effdim_mlp_init(&m, L, o.sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &err))
        return cli_fail(CMD, &err);

    effdim_set_num_threads(o.threads);
    char what[512], arch[1024] = "";
    for (size_t l = 0; l <= L; ++l)
        snprintf(arch + strlen(arch), sizeof arch - strlen(arch), "%s%zu", l ? "," : "", o.sizes[l]);
    effdim_dataset *ds = NULL;
    if (load_data(&o, &m, &ds, what, sizeof what, &err)) {
        effdim_dataset_free(ds);
        cli_fail(CMD, &err);
        if (!o.data) fprintf(stderr, "effdim " CMD ": hint: --data random benchmarks random data of the same shape\n");
        return CLI_EXIT_FAIL;
    }
    size_t chunk = o.chunk < o.n ? o.chunk : o.n;
    bench_gemm_shape shapes[3];
    memset(shapes, 0, sizeof shapes);
    double *theta = malloc(m.n_params * sizeof *theta), *grad = malloc(m.n_params * sizeof *grad);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, chunk, &err);
    if (!theta || !grad || !ws || effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 1, &err)) {
        rc = cli_fail(CMD, &err);
        goto done;
    }

    /* the dgemm reference: a square product and the benchmark's two largest
     * shapes, timed interleaved with the gradient, round by round */
    grad_ctx g = {.m = &m, .theta = theta, .ds = ds, .n = o.n, .grad = grad, .ws = ws};
    bench_gemm_shape_set(&shapes[0], "2048 x 2048 x 2048 (square)", 0, 0, 2048, 2048, 2048);
    bench_gemm_shape_set(&shapes[1], NULL, 1, 0, o.sizes[0], o.sizes[1], o.n); /* X^T D_0 */
    bench_gemm_shape_set(&shapes[2], NULL, 0, 1, chunk, o.sizes[1], o.sizes[0]); /* X W_0^T */
    bench_job jobs[4] = {{run_grad, &g, {0, 0, 0, 0, 0}}};
    for (size_t i = 0; i < 3; ++i) {
        if (bench_gemm_alloc(&shapes[i], 1 + (unsigned)i)) {
            rc = cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory for the dgemm reference");
            goto done;
        }
        jobs[1 + i] = bench_gemm_job(&shapes[i]);
    }
    if (bench_run(jobs, 4, o.repeat, 0.05)) {
        rc = cli_fail(CMD, &g.err);
        goto done;
    }
    double ref = 0;
    for (size_t i = 0; i < 3; ++i) {
        bench_gemm_record(&shapes[i], &jobs[1 + i]);
        ref = shapes[i].gflops > ref ? shapes[i].gflops : ref;
    }
    bench_timing t = jobs[0].t;
    double fwd, wg, dl;
    flop_counts(&m, o.n, &fwd, &wg, &dl);
    double flops = fwd + wg + dl, gf = flops / t.best * 1e-9, gf_med = flops / t.median * 1e-9;

    cJSON *torch = o.torch ? run_torch(&o, arch) : NULL;
    const cJSON *tg = torch ? cJSON_GetObjectItemCaseSensitive(torch, "gflops") : NULL;
    double torch_gf = cJSON_IsNumber(tg) ? tg->valuedouble : (double)NAN;

    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "benchmark", "grad");
        cJSON_AddItemToObject(j, "machine", bench_json_machine(o.threads));
        cJSON_AddStringToObject(j, "data", what);
        cJSON_AddStringToObject(j, "arch", arch);
        cJSON_AddStringToObject(j, "activation", effdim_activation_name(o.act));
        cJSON_AddNumberToObject(j, "n", (double)o.n);
        cJSON_AddNumberToObject(j, "params", (double)m.n_params);
        cJSON_AddNumberToObject(j, "chunk", (double)chunk);
        cJSON_AddNumberToObject(j, "workspace_bytes", (double)effdim_mlp_ws_bytes(ws));
        cJSON_AddNumberToObject(j, "loss", g.loss);
        cJSON_AddNumberToObject(j, "flops", flops);
        cJSON_AddNumberToObject(j, "repeat", (double)t.repeat);
        cJSON_AddNumberToObject(j, "seconds_best", t.best);
        cJSON_AddNumberToObject(j, "seconds_median", t.median);
        cJSON_AddNumberToObject(j, "gflops", gf);
        cJSON_AddNumberToObject(j, "gflops_median", gf_med);
        cJSON_AddItemToObject(j, "dgemm", bench_json_gemm(shapes, 3));
        cJSON_AddNumberToObject(j, "dgemm_reference_gflops", ref);
        cJSON_AddNumberToObject(j, "ratio", gf / ref);
        cJSON_AddNumberToObject(j, "target_ratio", 0.80);
        if (torch) {
            cJSON_AddItemToObject(j, "torch", torch);
            if (isfinite(torch_gf)) cJSON_AddNumberToObject(j, "torch_ratio", torch_gf / ref);
            torch = NULL;
        }
        cli_json_print(j);
    } else {
        char cpu[256];
        printf("effdim bench grad (preliminary unless run on a quiet machine)\n");
        printf("machine   %s, %d threads, %s\n", bench_cpu_model(cpu, sizeof cpu), o.threads,
               effdim_blas_config());
        printf("network   %s (%s hidden, identity output, cross_entropy mean), %zu parameters\n",
               arch, effdim_activation_name(o.act), m.n_params);
        printf("data      %s: %zu x %zu; %zu rows per chunk, workspace %.1f MiB\n", what, o.n,
               o.sizes[0], chunk, (double)effdim_mlp_ws_bytes(ws) / 1048576.0);
        printf("FLOPs     forward %.3f G + weight gradients %.3f G + deltas %.3f G = %.3f G\n",
               fwd * 1e-9, wg * 1e-9, dl * 1e-9, flops * 1e-9);
        printf("gradient  best %.4f s, median %.4f s over %zu runs (loss %.6f)\n", t.best, t.median,
               t.repeat, g.loss);
        printf("rate      %.2f GFLOP/s (median %.2f)\n", gf, gf_med);
        bench_print_gemm(shapes, 3, ref);
        printf("ratio     %.3f of the dgemm reference %.2f GFLOP/s (target >= 0.80)\n", gf / ref,
               ref);
        if (torch) {
            printf("pytorch   float64 %s: %.2f GFLOP/s, ratio %.3f to the same reference\n",
                   cJSON_IsString(cJSON_GetObjectItemCaseSensitive(torch, "version"))
                       ? cJSON_GetObjectItemCaseSensitive(torch, "version")->valuestring
                       : "?",
                   torch_gf, torch_gf / ref);
            const cJSON *mm = cJSON_GetObjectItemCaseSensitive(torch, "torch_mm_2048_gflops");
            if (cJSON_IsNumber(mm))
                printf("          (its own torch.mm 2048^3 float64: %.2f GFLOP/s)\n", mm->valuedouble);
            printf("          effdim / pytorch = %.3f\n", gf / torch_gf);
        }
    }
    cJSON_Delete(torch);
    rc = CLI_EXIT_OK;
done:
    for (size_t i = 0; i < 3; ++i) bench_gemm_free(&shapes[i]);
    effdim_mlp_ws_free(ws);
    free(theta);
    free(grad);
    effdim_dataset_free(ds);
    return rc;
}
