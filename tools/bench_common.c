/* tools/bench_common.c: timing, the machine's own dgemm rate, and reporting
 * shared by the `effdim bench` benchmarks (see bench_common.h).
 *
 * The dgemm rate counts 2 m n k flops per product and takes the best of
 * several timed repeats after a warm-up, the convention of vendor BLAS
 * benchmarks; benchmarks then report their own rate as a ratio to it.
 */
#include "bench_common.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/mlp.h"
#include "effdim/status.h"
#include "internal.h"

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
    for (size_t j = 0; j < n_jobs && !rc; ++j) { /* warm-up, and calls per sample */
        double t0 = effdim_now();
        rc = jobs[j].fn(jobs[j].ctx);
        double once = effdim_now() - t0;
        size_t inner = once > 0 ? (size_t)ceil(min_seconds / once) : 1000;
        jobs[j].t.inner = inner < 1 ? 1 : inner > 100000 ? 100000 : inner;
    }
    for (size_t r = 0; r < repeat && !rc; ++r)
        for (size_t j = 0; j < n_jobs && !rc; ++j) {
            double t0 = effdim_now();
            for (size_t i = 0; i < jobs[j].t.inner && !rc; ++i) rc = jobs[j].fn(jobs[j].ctx);
            s[j * repeat + r] = (effdim_now() - t0) / (double)jobs[j].t.inner;
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
