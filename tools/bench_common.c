/* tools/bench_common.c: timing, the machine's own dgemm rate, and reporting
 * shared by the `effdim bench` benchmarks (see bench_common.h).
 *
 * The dgemm rate counts 2 m n k flops per product and takes the best of
 * several timed repeats after a warm-up, the convention of vendor BLAS
 * benchmarks; benchmarks then report their own rate as a ratio to it.
 */
#include "bench_common.h"

#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#include "effdim/blas.h"
#include "effdim/mlp.h"
#include "effdim/status.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarise(double *s, size_t repeat, bench_timing *t)
{
    qsort(s, repeat, sizeof *s, cmp_double);
    t->repeat = repeat;
    t->best = s[0];
    t->worst = s[repeat - 1];
    t->median = repeat % 2 ? s[repeat / 2] : 0.5 * (s[repeat / 2 - 1] + s[repeat / 2]);
}

int bench_run(bench_job *jobs, size_t n_jobs, size_t repeat, double min_seconds)
{
    if (repeat == 0) repeat = 1;
    double *s = calloc(n_jobs * repeat + 1, sizeof *s);
    if (!s) return -1;
    int rc = 0;
    for (size_t j = 0; j < n_jobs && !rc; ++j) {
        /* warm-up (the first call pays for page faults and pool start-up),
         * then calls per sample from the rate over at least min_seconds / 5:
         * the first call alone can be several times slower than the rest and
         * would leave samples of a few calls */
        rc = jobs[j].fn(jobs[j].ctx);
        double t0 = effdim_progress_clock(), spent = 0;
        size_t calls = 0;
        while (!rc && (spent = effdim_progress_clock() - t0) < min_seconds / 5 && calls < 100000) {
            rc = jobs[j].fn(jobs[j].ctx);
            ++calls;
        }
        double once = calls ? spent / (double)calls : 0;
        size_t inner = !(min_seconds > 0) ? 1 : once > 0 ? (size_t)ceil(min_seconds / once) : 1000;
        jobs[j].t.inner = inner < 1 ? 1 : inner > 100000 ? 100000 : inner;
    }
    for (size_t r = 0; r < repeat && !rc; ++r)
        for (size_t j = 0; j < n_jobs && !rc; ++j) {
            /* Let OpenBLAS's pool threads go idle first: after a multi-threaded
             * call they spin for about 0.1 s and would take a core from the
             * next job (effdim's row workers), which no real run of that job
             * alone suffers. */
            const struct timespec settle = {0, 250000000};
            nanosleep(&settle, NULL);
            double t0 = effdim_progress_clock();
            for (size_t i = 0; i < jobs[j].t.inner && !rc; ++i) rc = jobs[j].fn(jobs[j].ctx);
            s[j * repeat + r] = (effdim_progress_clock() - t0) / (double)jobs[j].t.inner;
        }
    for (size_t j = 0; j < n_jobs && !rc; ++j) summarise(s + j * repeat, repeat, &jobs[j].t);
    free(s);
    return rc;
}

int bench_time(int (*fn)(void *ctx), void *ctx, size_t repeat, double min_seconds,
               bench_timing *t)
{
    bench_job job = {fn, ctx, {0, 0, 0, 0, 0}};
    int rc = bench_run(&job, 1, repeat, min_seconds);
    if (!rc) *t = job.t;
    return rc;
}

void bench_gemm_shape_set(bench_gemm_shape *s, const char *label, int trans_a, int trans_b,
                          size_t m, size_t n, size_t k)
{
    memset(s, 0, sizeof *s);
    s->trans_a = trans_a;
    s->trans_b = trans_b;
    s->m = m;
    s->n = n;
    s->k = k;
    if (label)
        snprintf(s->label, sizeof s->label, "%s", label);
    else
        snprintf(s->label, sizeof s->label, "(%zu x %zu)%s (%zu x %zu)%s", trans_a ? k : m,
                 trans_a ? m : k, trans_a ? "^T" : "", trans_b ? n : k, trans_b ? k : n,
                 trans_b ? "^T" : "");
}

static int run_gemm(void *p)
{
    const bench_gemm_shape *s = p;
    /* row-major: A stored (m, k), or (k, m) when transposed; B (k, n) or (n, k) */
    int lda = (int)(s->trans_a ? s->m : s->k), ldb = (int)(s->trans_b ? s->k : s->n);
    cblas_dgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans,
                s->trans_b ? CblasTrans : CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1.0, s->A,
                lda, s->B, ldb, 0.0, s->C, (int)s->n);
    return 0;
}

static void fill(double *v, size_t n, unsigned seed)
{
    unsigned x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        v[i] = (double)(x >> 8) / 16777216.0 - 0.5;
    }
}

int bench_gemm_alloc(bench_gemm_shape *s, unsigned seed)
{
    s->A = malloc(s->m * s->k * sizeof *s->A);
    s->B = malloc(s->k * s->n * sizeof *s->B);
    s->C = malloc(s->m * s->n * sizeof *s->C);
    if (!s->A || !s->B || !s->C) {
        bench_gemm_free(s);
        return -1;
    }
    fill(s->A, s->m * s->k, seed);
    fill(s->B, s->k * s->n, seed + 7919u);
    memset(s->C, 0, s->m * s->n * sizeof *s->C);
    return 0;
}

void bench_gemm_free(bench_gemm_shape *s)
{
    free(s->A);
    free(s->B);
    free(s->C);
    s->A = s->B = s->C = NULL;
}

bench_job bench_gemm_job(bench_gemm_shape *s)
{
    bench_job j = {run_gemm, s, {0, 0, 0, 0, 0}};
    return j;
}

void bench_gemm_record(bench_gemm_shape *s, const bench_job *job)
{
    s->seconds = job->t.best;
    s->gflops = 2.0 * (double)s->m * (double)s->n * (double)s->k / job->t.best * 1e-9;
}

double bench_dgemm_reference(bench_gemm_shape *shapes, size_t n_shapes, size_t repeat)
{
    double best = 0;
    for (size_t i = 0; i < n_shapes; ++i) {
        bench_gemm_shape *s = &shapes[i];
        if (bench_gemm_alloc(s, 1 + (unsigned)i)) return -1;
        bench_job j = bench_gemm_job(s);
        bench_run(&j, 1, repeat, 0.05);
        bench_gemm_record(s, &j);
        if (s->gflops > best) best = s->gflops;
        bench_gemm_free(s);
    }
    return best;
}

const char *bench_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *c = strchr(line, ':');
        if (!c) continue;
        c += 1 + (c[1] == ' ');
        c[strcspn(c, "\n")] = '\0';
        snprintf(buf, cap, "%s", c);
        break;
    }
    fclose(f);
    return buf;
}

cJSON *bench_json_machine(int threads)
{
    char cpu[256];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "cpu", bench_cpu_model(cpu, sizeof cpu));
    cJSON_AddStringToObject(o, "blas", effdim_blas_config());
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddStringToObject(o, "effdim_version", effdim_version());
    return o;
}

cJSON *bench_json_gemm(const bench_gemm_shape *shapes, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; ++i) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "shape", shapes[i].label);
        cJSON_AddNumberToObject(o, "m", (double)shapes[i].m);
        cJSON_AddNumberToObject(o, "n", (double)shapes[i].n);
        cJSON_AddNumberToObject(o, "k", (double)shapes[i].k);
        cJSON_AddNumberToObject(o, "seconds", shapes[i].seconds);
        cJSON_AddNumberToObject(o, "gflops", shapes[i].gflops);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

void bench_print_gemm(const bench_gemm_shape *shapes, size_t n, double reference)
{
    printf("dgemm on this machine (same run, same threads, best of repeats):\n");
    for (size_t i = 0; i < n; ++i)
        printf("  %-44s %8.2f GFLOP/s%s\n", shapes[i].label, shapes[i].gflops,
               shapes[i].gflops == reference ? "  <- reference" : "");
}

/* ---- options, network and data of the MLP benchmarks ------------------------ */

int bench_parse_common(const char *cmd, int c, const char *arg, bench_opts *o)
{
    int rc = 0;
    switch (c) {
    case 'n': return cli_parse_size(cmd, "--n", arg, &o->n);
    case 'a':
        rc = cli_parse_size_list(cmd, "--arch", arg, o->sizes, EFFDIM_MLP_MAX_LAYERS + 1,
                                 &o->n_sizes);
        if (!rc && o->n_sizes < 2)
            rc = cli_errorf(cmd, CLI_EXIT_USAGE, "--arch: at least two widths (input,output)");
        return rc;
    case 'A':
        if (effdim_activation_parse(arg, &o->act, NULL))
            rc = cli_errorf(cmd, CLI_EXIT_USAGE,
                            "--act: unknown activation '%s' (identity, relu, tanh, sigmoid, "
                            "softplus, gelu)", arg);
        return rc;
    case 't': return cli_parse_threads(cmd, arg, &o->threads);
    case 'r':
        rc = cli_parse_size(cmd, "--repeat", arg, &o->repeat);
        if (!rc && (o->repeat < 1 || o->repeat > 1000))
            rc = cli_errorf(cmd, CLI_EXIT_USAGE, "--repeat: expected 1 to 1000");
        return rc;
    case 'c': return cli_parse_chunk(cmd, arg, &o->chunk);
    case 'd': o->data = arg; return 0;
    case 'j': o->json = 1; return 0;
    default: return CLI_EXIT_USAGE;
    }
}

int bench_check_operands(const char *cmd, int argc, char **argv, const bench_opts *o)
{
    if (optind < argc)
        return cli_errorf(cmd, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (o->n == 0) return cli_errorf(cmd, CLI_EXIT_USAGE, "--n: expected at least 1 example");
    return 0;
}

effdim_status bench_mlp_setup(const bench_opts *o, effdim_mlp *m, char *arch, size_t arch_cap,
                              effdim_error *err)
{
    effdim_activation acts[EFFDIM_MLP_MAX_LAYERS] = {EFFDIM_ACT_IDENTITY};
    size_t L = o->n_sizes - 1;
    for (size_t l = 0; l < L; ++l) acts[l] = l + 1 < L ? o->act : EFFDIM_ACT_IDENTITY;
    effdim_status st = effdim_mlp_init(m, L, o->sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY,
                                       EFFDIM_REDUCTION_MEAN, err);
    if (st) return st;
    effdim_blas_set_threads(o->threads);
    size_t len = 0;
    arch[0] = '\0';
    for (size_t l = 0; l <= L; ++l) {
        snprintf(arch + len, arch_cap - len, "%s%zu", l ? "," : "", o->sizes[l]);
        len = strlen(arch);
    }
    return EFFDIM_OK;
}

/* uniform [0, 1) inputs and uniform labels, seed 1 */
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

effdim_status bench_load_data(const bench_opts *o, const effdim_mlp *m, size_t n_random,
                              const char *default_spec, effdim_dataset **ds, char *what,
                              size_t cap, effdim_error *err)
{
    if (o->data && !strcmp(o->data, "random")) {
        snprintf(what, cap, "random (%zu uniform [0,1) inputs, seed 1)", n_random);
        return random_data(n_random, m->sizes[0], m->sizes[m->n_layers], ds, err);
    }
    snprintf(what, cap, "%s", o->data ? o->data : default_spec);
    effdim_status st = effdim_dataset_from_spec(what, ds, err);
    return st ? st : effdim_mlp_check_data(m, *ds, what, err);
}

effdim_mlp_ws *bench_ws_alloc(const effdim_mlp *m, size_t chunk, size_t n, effdim_error *err)
{
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(m, chunk > n ? n : chunk, err);
    if (ws && effdim_mlp_ws_chunk(ws) > n) { /* the default is more than the data */
        effdim_mlp_ws_free(ws);
        ws = effdim_mlp_ws_alloc(m, n, err);
    }
    return ws;
}

void bench_mlp_flops(const effdim_mlp *m, size_t rows, double *fwd, double *wgrad, double *delta)
{
    double f = 0, dl = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        double oi = (double)m->sizes[l + 1] * (double)m->sizes[l];
        f += oi;
        if (l) dl += oi;
    }
    *fwd = 2.0 * (double)rows * f;
    *wgrad = 2.0 * (double)rows * f;
    *delta = 2.0 * (double)rows * dl;
}

int bench_run_with_gemm(const char *cmd, bench_job *jobs, size_t n_jobs, bench_gemm_shape *shapes,
                        size_t n_shapes, size_t repeat, double min_seconds, double *ref)
{
    for (size_t i = 0; i < n_shapes; ++i) {
        if (bench_gemm_alloc(&shapes[i], 1 + (unsigned)i)) {
            cli_errorf(cmd, CLI_EXIT_FAIL, "out of memory for the dgemm reference");
            return -1;
        }
        jobs[n_jobs + i] = bench_gemm_job(&shapes[i]);
    }
    int rc = bench_run(jobs, n_jobs + n_shapes, repeat, min_seconds);
    if (rc) return rc;
    *ref = 0;
    for (size_t i = 0; i < n_shapes; ++i) {
        bench_gemm_record(&shapes[i], &jobs[n_jobs + i]);
        *ref = shapes[i].gflops > *ref ? shapes[i].gflops : *ref;
    }
    return 0;
}

/* The script: $EFFDIM_SOURCE_DIR, then up from the executable (a build
 * folder inside the checkout), then the current folder. */
static int find_script(const char *rel, char *buf, size_t cap)
{
    const char *src = getenv("EFFDIM_SOURCE_DIR");
    if (src && src[0]) {
        snprintf(buf, cap, "%s/%s", src, rel);
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
            snprintf(buf, cap, "%s/%s", exe, rel);
            if (access(buf, R_OK) == 0) return 0;
        }
    }
    snprintf(buf, cap, "%s", rel);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

cJSON *bench_run_torch(const char *cmd, const char *script, const char *args)
{
    return bench_run_torch_note(cmd, script, args, NULL);
}

cJSON *bench_run_torch_note(const char *cmd, const char *script, const char *args,
                            const char *note)
{
    char path[PATH_MAX + 64], cmdline[2 * PATH_MAX + 1024], line[65536], last[65536] = "";
    if (access("/usr/bin/python3", X_OK) != 0) {
        cli_errorf(cmd, 0, "/usr/bin/python3 not found; PyTorch comparison skipped");
        return NULL;
    }
    if (find_script(script, path, sizeof path)) {
        cli_errorf(cmd, 0, "%s not found (set EFFDIM_SOURCE_DIR to the checkout); "
                           "PyTorch comparison skipped", script);
        return NULL;
    }
    snprintf(cmdline, sizeof cmdline, "/usr/bin/python3 '%s' %s", path, args);
    if (note) fprintf(stderr, "effdim %s: %s\n", cmd, note);
    FILE *p = popen(cmdline, "r");
    if (!p) return NULL;
    while (fgets(line, sizeof line, p))
        if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
    int rc = pclose(p);
    if (rc != 0 || !last[0]) {
        cli_errorf(cmd, 0, "the PyTorch script failed (status %d); comparison skipped", rc);
        return NULL;
    }
    return cJSON_Parse(last);
}

void bench_print_header(const char *name, int threads)
{
    char cpu[256];
    printf("effdim bench %s (preliminary unless run on a quiet machine)\n", name);
    printf("machine   %s, %d threads, %s\n", bench_cpu_model(cpu, sizeof cpu), threads,
           effdim_blas_config());
}

cJSON *bench_json_head(const char *name, int threads, const char *what, const char *arch)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "benchmark", name);
    cJSON_AddItemToObject(j, "machine", bench_json_machine(threads));
    cJSON_AddStringToObject(j, "data", what);
    cJSON_AddStringToObject(j, "arch", arch);
    return j;
}
