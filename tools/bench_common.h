/* tools/bench_common.h: what every `effdim bench <what>` benchmark shares.
 *
 * - timing: functions run `repeat` times after a warm-up call, interleaved
 *   round by round, reporting the best and the median wall time per call
 *   (monotonic clock);
 * - this machine's own dgemm rate, measured in the same run with the same
 *   thread count, on a list of shapes (a square 2048^3 product and the
 *   shapes the benchmark itself uses); the reference rate is the best of
 *   them, so a ratio to it is never flattered by a slow shape;
 * - JSON fragments for --json (cJSON, printed by cli_json_print).
 *
 * A benchmark is `int bench_<name>(int argc, char **argv)` in
 * tools/bench_<name>.c (argv[0] = "<name>"), declared here and listed in the
 * table of tools/cmd_bench.c. Exit codes as every command: 0, 1, 2.
 */
#ifndef EFFDIM_TOOLS_BENCH_COMMON_H
#define EFFDIM_TOOLS_BENCH_COMMON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* ---- timing ------------------------------------------------------------- */

typedef struct bench_timing {
    size_t repeat;  /* timed samples */
    size_t inner;   /* calls per sample (short calls are repeated to last >= min_seconds) */
    double best;    /* seconds per call, fastest sample */
    double median;  /* seconds per call */
    double worst;   /* seconds per call, slowest sample */
} bench_timing;

/* One thing to time: fn(ctx) returns 0 on success. */
typedef struct bench_job {
    int (*fn)(void *ctx);
    void *ctx;
    bench_timing t;   /* filled by bench_run */
} bench_job;

/* Time several jobs INTERLEAVED: one warm-up call each (which also sets
 * `inner` so that a sample lasts at least min_seconds), then `repeat`
 * rounds, each timing one sample of every job in turn. On a shared machine
 * the load then falls on all jobs alike, so ratios between them are fairer
 * than ratios of separate runs. Returns 0, or the first non-zero fn result. */
int bench_run(bench_job *jobs, size_t n_jobs, size_t repeat, double min_seconds);

/* One job alone (bench_run of one). */
int bench_time(int (*fn)(void *ctx), void *ctx, size_t repeat, double min_seconds,
               bench_timing *t);

/* ---- dgemm reference ---------------------------------------------------- */

typedef struct bench_gemm_shape {
    char label[96];  /* e.g. "(10000 x 784)^T (10000 x 300)" */
    int trans_a;     /* A stored transposed (row-major op(A) = A^T) */
    int trans_b;
    size_t m, n, k;  /* C (m, n) = op(A) (m, k) op(B) (k, n) */
    double *A, *B, *C; /* operands (bench_gemm_alloc), random in [-0.5, 0.5) */
    double gflops;   /* measured: best sample, 2 m n k flops per call */
    double seconds;  /* best time per call */
} bench_gemm_shape;

/* Set a shape's fields (label from the sizes when label is NULL). */
void bench_gemm_shape_set(bench_gemm_shape *s, const char *label, int trans_a, int trans_b,
                          size_t m, size_t n, size_t k);
/* Allocate and fill the operands; 0 or -1 when memory runs out. */
int bench_gemm_alloc(bench_gemm_shape *s, unsigned seed);
void bench_gemm_free(bench_gemm_shape *s);
/* A bench_job running one row-major cblas_dgemm of the shape. */
bench_job bench_gemm_job(bench_gemm_shape *s);
/* After bench_run: seconds and gflops of the shape from its job. */
void bench_gemm_record(bench_gemm_shape *s, const bench_job *job);

/* Measure each shape alone (allocate, time best of `repeat`, free) with the
 * current OpenBLAS thread count. Returns the reference rate (the best
 * GFLOP/s of the shapes), or a negative value when memory runs out. */
double bench_dgemm_reference(bench_gemm_shape *shapes, size_t n_shapes, size_t repeat);

/* ---- reporting ---------------------------------------------------------- */

/* "model name" from /proc/cpuinfo into buf ("unknown" if absent). */
const char *bench_cpu_model(char *buf, size_t cap);

/* A JSON object describing the machine and threads: cpu, blas config,
 * threads, effdim version. */
cJSON *bench_json_machine(int threads);

/* JSON array of the dgemm shapes with their rates. */
cJSON *bench_json_gemm(const bench_gemm_shape *shapes, size_t n);

/* Print the dgemm table (one line per shape) to stdout. */
void bench_print_gemm(const bench_gemm_shape *shapes, size_t n, double reference);

/* ---- the benchmarks ------------------------------------------------------ */

int bench_grad(int argc, char **argv);
int bench_train(int argc, char **argv);
int bench_diag(int argc, char **argv);
int bench_spectrum(int argc, char **argv);

#endif
