/* tools/bench_diag.c: `effdim bench diag`, the cost of the diagonal estimators
 * in full gradients, measured in the same run.
 *
 * Times, interleaved round by round (bench_run), on the same network, data
 * and threads:
 *   gradient   effdim_mlp_loss_grad over all rows (the unit)
 *   ggn        effdim_diag_ggn, the exact GGN diagonal
 *   ef         effdim_diag_ef, the empirical Fisher diagonal
 *   hessian    effdim_diag_hessian, the exact Hessian diagonal
 * and reports each time as a multiple of the gradient's (best against best,
 * median against median). Default: 784-300-100-10, relu hidden layers,
 * softmax cross-entropy (mean) on the first 10,000 Fashion-MNIST training
 * images, 2 OpenBLAS threads. Target (issue 5): the GGN diagonal in at most
 * C + 1 = 11 gradients. By construction (lib/diag.c) it costs one forward
 * pass, C factor backpropagations through layers 1..L-1 (cheap: 10 x 100 x 300
 * per row) and one squared dgemm per layer (as costly as the weight
 * gradient), so about 1 to 2 gradients are expected.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "cli.h"
#include "effdim/data.h"
#include "effdim/diag.h"
#include "effdim/mlp.h"

#define CMD "bench diag"
#define N_JOBS 4


typedef struct diag_bctx {
    const effdim_mlp *m;
    const double *theta;
    const effdim_dataset *ds;
    size_t n;
    double *out; /* (P) */
    effdim_mlp_ws *ws;
    effdim_diag_params p;
    effdim_error err;
    int which;   /* 0 gradient, 1 ggn, 2 ef, 3 hessian */
} diag_bctx;

static const char *const job_names[N_JOBS] = {"gradient", "ggn", "ef", "hessian"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim bench diag [options]\n\n"
            "The exact GGN, empirical Fisher and exact Hessian diagonals, each timed against one\n"
            "full-batch gradient of the same network on the same data in the same run.\n\n"
            BENCH_HELP_COMMON
            "  --json            print a JSON summary instead of text\n"
            "  -h, --help        this help\n");
}

static int parse_one(void *ctx, int c, const char *arg)
{
    return bench_parse_common(CMD, c, arg, ctx);
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    static const struct option longopts[] = {
        BENCH_LONGOPT_N,      BENCH_LONGOPT_ARCH,  BENCH_LONGOPT_ACT,
        BENCH_LONGOPT_THREADS, BENCH_LONGOPT_REPEAT, BENCH_LONGOPT_CHUNK,
        BENCH_LONGOPT_DATA,   BENCH_LONGOPT_JSON,  BENCH_LONGOPT_HELP,
        {0, 0, 0, 0},
    };
    int rc = cli_getopt_loop(CMD, argc, argv, ":h", longopts, parse_one, o, usage);
    return rc ? rc : bench_check_operands(CMD, argc, argv, o);
}

static int run_job(void *p)
{
    diag_bctx *c = p;
    double loss;
    switch (c->which) {
    case 0: return (int)effdim_mlp_loss_grad(c->m, c->theta, c->ds, NULL, c->n, &loss, c->out, c->ws, &c->err);
    case 1: return (int)effdim_diag_ggn(c->m, c->theta, c->ds, NULL, c->n, &c->p, c->out, c->ws, &c->err);
    case 2: return (int)effdim_diag_ef(c->m, c->theta, c->ds, NULL, c->n, &c->p, c->out, c->ws, &c->err);
    default:
        return (int)effdim_diag_hessian(c->m, c->theta, c->ds, NULL, c->n, &c->p, c->out, c->ws,
                                        &c->err);
    }
}

static void print_text(const bench_opts *o, const effdim_mlp *m, const char *arch, const char *what,
                       size_t chunk, const bench_job *jobs, double cost_est)
{
    bench_print_header("diag", o->threads);
    printf("network   %s (%s hidden, identity output, cross_entropy mean), %zu parameters\n", arch,
           effdim_activation_name(o->act), m->n_params);
    printf("data      %s, %zu rows per chunk\n", what, chunk);
    printf("%-10s %10s %10s %12s %12s\n", "", "best s", "median s", "x gradient", "(median)");
    for (size_t j = 0; j < N_JOBS; ++j)
        printf("%-10s %10.4f %10.4f %12.2f %12.2f\n", job_names[j], jobs[j].t.best,
               jobs[j].t.median, jobs[j].t.best / jobs[0].t.best,
               jobs[j].t.median / jobs[0].t.median);
    printf("target    ggn <= C + 1 = %zu gradients; hessian estimated at %.2f gradients\n",
           m->sizes[m->n_layers] + 1, cost_est);
}

static void print_json(const bench_opts *o, const effdim_mlp *m, const char *arch, const char *what,
                       const bench_job *jobs, double cost_est)
{
    cJSON *j = bench_json_head("diag", o->threads, what, arch);
    cJSON_AddStringToObject(j, "activation", effdim_activation_name(o->act));
    cJSON_AddNumberToObject(j, "n", (double)o->n);
    cJSON_AddNumberToObject(j, "params", (double)m->n_params);
    cJSON_AddNumberToObject(j, "repeat", (double)o->repeat);
    for (size_t i = 0; i < N_JOBS; ++i) {
        cJSON *x = cJSON_AddObjectToObject(j, job_names[i]);
        cJSON_AddNumberToObject(x, "seconds_best", jobs[i].t.best);
        cJSON_AddNumberToObject(x, "seconds_median", jobs[i].t.median);
        cJSON_AddNumberToObject(x, "ratio", jobs[i].t.best / jobs[0].t.best);
        cJSON_AddNumberToObject(x, "ratio_median", jobs[i].t.median / jobs[0].t.median);
    }
    cJSON_AddNumberToObject(j, "target_ggn_ratio", (double)(m->sizes[m->n_layers] + 1));
    cJSON_AddNumberToObject(j, "hessian_cost_estimate", cost_est);
    cli_json_print(j);
}

int bench_diag(int argc, char **argv)
{
    bench_opts o = BENCH_OPTS_DEFAULT;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    effdim_error err;
    effdim_mlp m;
    char what[512], arch[1024], spec[64];
    if (bench_mlp_setup(&o, &m, arch, sizeof arch, &err)) return cli_fail(CMD, &err);
    snprintf(spec, sizeof spec, "fashion-mnist:train:n=%zu", o.n);
    effdim_dataset *ds = NULL;
    if (bench_load_data(&o, &m, o.n, spec, &ds, what, sizeof what, &err)) {
        effdim_dataset_free(ds);
        return cli_fail(CMD, &err);
    }
    if (ds->n < o.n) o.n = ds->n;
    double *theta = malloc(m.n_params * sizeof(double));
    double *out = malloc(N_JOBS * m.n_params * sizeof(double));
    effdim_mlp_ws *ws = bench_ws_alloc(&m, o.chunk, o.n, &err);
    diag_bctx ctx[N_JOBS];
    bench_job jobs[N_JOBS];
    if (!theta || !out || !ws || effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 1, &err)) {
        rc = cli_fail(CMD, &err);
        goto done;
    }
    for (int j = 0; j < N_JOBS; ++j) {
        ctx[j] = (diag_bctx){.m = &m, .theta = theta, .ds = ds, .n = o.n,
                             .out = out + (size_t)j * m.n_params, .ws = ws,
                             .p = effdim_diag_default_params(), .which = j};
        ctx[j].p.force = 1;
        jobs[j] = (bench_job){run_job, &ctx[j], {0, 0, 0, 0, 0}};
    }
    if (bench_run(jobs, N_JOBS, o.repeat, 0.05)) {
        for (int j = 0; j < N_JOBS; ++j)
            if (ctx[j].err.msg[0]) {
                rc = cli_fail(CMD, &ctx[j].err);
                goto done;
            }
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "a timed call failed");
        goto done;
    }
    double cost = effdim_diag_hessian_cost(&m, NULL);
    if (o.json) print_json(&o, &m, arch, what, jobs, cost);
    else print_text(&o, &m, arch, what, effdim_mlp_ws_chunk(ws), jobs, cost);
    rc = CLI_EXIT_OK;
done:
    effdim_mlp_ws_free(ws);
    free(theta);
    free(out);
    effdim_dataset_free(ds);
    return rc;
}
