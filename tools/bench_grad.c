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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "cli.h"
#include "effdim/data.h"
#include "effdim/mlp.h"

#define CMD "bench grad"

typedef struct grad_opts {
    bench_opts b; /* --n --arch --act --threads --repeat --chunk --data --json */
    int torch;
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
            BENCH_HELP_COMMON
            "  --torch           also time PyTorch float64 (tools/bench/bench_grad_torch.py)\n"
            "  --json            print a JSON summary instead of text\n"
            "  -h, --help        this help\n\n"
            "FLOPs: forward 2n*sum(out*in), weight gradients 2n*sum(out*in), deltas\n"
            "2n*sum over layers l>=1 of out*in (the input delta is not computed).\n");
}

static int parse_one(void *ctx, int c, const char *arg)
{
    grad_opts *o = ctx;
    if (c == 'T') {
        o->torch = 1;
        return 0;
    }
    return bench_parse_common(CMD, c, arg, &o->b);
}

static int parse_opts(int argc, char **argv, grad_opts *o)
{
    static const struct option longopts[] = {
        BENCH_LONGOPT_N,    BENCH_LONGOPT_ARCH, BENCH_LONGOPT_ACT,  BENCH_LONGOPT_THREADS,
        BENCH_LONGOPT_REPEAT, BENCH_LONGOPT_CHUNK, BENCH_LONGOPT_DATA, BENCH_LONGOPT_JSON,
        BENCH_LONGOPT_HELP, {"torch", no_argument, 0, 'T'}, {0, 0, 0, 0},
    };
    int rc = cli_getopt_loop(CMD, argc, argv, ":h", longopts, parse_one, o, usage);
    return rc ? rc : bench_check_operands(CMD, argc, argv, &o->b);
}

static int run_grad(void *p)
{
    grad_ctx *g = p;
    return (int)effdim_mlp_loss_grad(g->m, g->theta, g->ds, NULL, g->n, &g->loss, g->grad, g->ws,
                                     &g->err);
}

/* bench_grad_torch.py on the same data and network; its JSON summary. */
static cJSON *run_torch(const grad_opts *o, const char *arch)
{
    char args[2048];
    snprintf(args, sizeof args, "--n %zu --arch %s --act %s --threads %d --repeat %zu --data %s",
             o->b.n, arch, effdim_activation_name(o->b.act), o->b.threads, o->b.repeat,
             o->b.data && !strcmp(o->b.data, "random") ? "random" : "fashion-mnist");
    return bench_run_torch(CMD, "tools/bench/bench_grad_torch.py", args);
}

/* the data (bench_load_data), with at least --n rows */
static effdim_status load_data(const grad_opts *o, const effdim_mlp *m, effdim_dataset **ds,
                               char *what, size_t cap, effdim_error *err)
{
    char spec[64];
    snprintf(spec, sizeof spec, "fashion-mnist:train:n=%zu", o->b.n);
    effdim_status st = bench_load_data(&o->b, m, o->b.n, spec, ds, what, cap, err);
    if (!st && (*ds)->n < o->b.n)
        st = effdim_error_set(err, EFFDIM_EINVAL, "%s: %zu examples, --n asks for %zu", what,
                              (*ds)->n, o->b.n);
    return st;
}

int bench_grad(int argc, char **argv)
{
    grad_opts o = {.b = BENCH_OPTS_DEFAULT};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;

    effdim_error err;
    effdim_mlp m;
    char what[512], arch[1024];
    if (bench_mlp_setup(&o.b, &m, arch, sizeof arch, &err)) return cli_fail(CMD, &err);
    effdim_dataset *ds = NULL;
    if (load_data(&o, &m, &ds, what, sizeof what, &err)) {
        effdim_dataset_free(ds);
        cli_fail(CMD, &err);
        if (!o.b.data) fprintf(stderr, "effdim " CMD ": hint: --data random benchmarks random data of the same shape\n");
        return CLI_EXIT_FAIL;
    }
    size_t n = o.b.n;
    bench_gemm_shape shapes[3];
    memset(shapes, 0, sizeof shapes);
    double *theta = malloc(m.n_params * sizeof *theta), *grad = malloc(m.n_params * sizeof *grad);
    effdim_mlp_ws *ws = bench_ws_alloc(&m, o.b.chunk, n, &err);
    if (!theta || !grad || !ws || effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 1, &err)) {
        rc = cli_fail(CMD, &err);
        goto done;
    }
    size_t chunk = effdim_mlp_ws_chunk(ws);

    /* the dgemm reference: a square product and the benchmark's two largest
     * shapes, timed interleaved with the gradient, round by round */
    grad_ctx g = {.m = &m, .theta = theta, .ds = ds, .n = n, .grad = grad, .ws = ws};
    bench_gemm_shape_set(&shapes[0], "2048 x 2048 x 2048 (square)", 0, 0, 2048, 2048, 2048);
    bench_gemm_shape_set(&shapes[1], NULL, 1, 0, o.b.sizes[0], o.b.sizes[1], n); /* X^T D_0 */
    bench_gemm_shape_set(&shapes[2], NULL, 0, 1, chunk, o.b.sizes[1], o.b.sizes[0]); /* X W_0^T */
    bench_job jobs[4] = {{run_grad, &g, {0, 0, 0, 0, 0}}};
    double ref = 0;
    rc = bench_run_with_gemm(CMD, jobs, 1, shapes, 3, o.b.repeat, 0.05, &ref);
    if (rc) {
        rc = rc < 0 ? CLI_EXIT_FAIL : cli_fail(CMD, &g.err);
        goto done;
    }
    bench_timing t = jobs[0].t;
    double fwd, wg, dl;
    bench_mlp_flops(&m, n, &fwd, &wg, &dl);
    double flops = fwd + wg + dl, gf = flops / t.best * 1e-9, gf_med = flops / t.median * 1e-9;

    cJSON *torch = o.torch ? run_torch(&o, arch) : NULL;
    const cJSON *tg = torch ? cJSON_GetObjectItemCaseSensitive(torch, "gflops") : NULL;
    double torch_gf = cJSON_IsNumber(tg) ? tg->valuedouble : (double)NAN;

    if (o.b.json) {
        cJSON *j = bench_json_head("grad", o.b.threads, what, arch);
        cJSON_AddStringToObject(j, "activation", effdim_activation_name(o.b.act));
        cJSON_AddNumberToObject(j, "n", (double)n);
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
        bench_print_header("grad", o.b.threads);
        printf("network   %s (%s hidden, identity output, cross_entropy mean), %zu parameters\n",
               arch, effdim_activation_name(o.b.act), m.n_params);
        printf("data      %s: %zu x %zu; %zu rows per chunk, workspace %.1f MiB\n", what, n,
               o.b.sizes[0], chunk, (double)effdim_mlp_ws_bytes(ws) / 1048576.0);
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
