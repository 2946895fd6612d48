/* tools/bench_common.h: what every `effdim bench <what>` benchmark shares.
 *
 * - timing: functions run `repeat` times after a warm-up call, interleaved
 *   round by round, reporting the best and the median wall time per call
 *   (monotonic clock);
 * - this machine's own dgemm rate, measured in the same run with the same
 *   thread count, on a list of shapes (a square 2048^3 product and the
 *   shapes the benchmark itself uses); the reference rate is the best of
 *   them, so a ratio to it is never flattered by a slow shape;
 * - JSON fragments for --json (cJSON, printed by cli_json_print);
 * - the options, network and data set-up, FLOP counts and the PyTorch
 *   comparison that the MLP benchmarks (grad, train, diag) share.
 *
 * A benchmark is `int bench_<name>(int argc, char **argv)` in
 * tools/bench_<name>.c (argv[0] = "<name>"), declared here and listed in the
 * table of tools/cmd_bench.c. Exit codes as every command: 0, 1, 2.
 */
#ifndef EFFDIM_TOOLS_BENCH_COMMON_H
#define EFFDIM_TOOLS_BENCH_COMMON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "effdim/data.h"
#include "effdim/mlp.h"

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

/* ---- options, network and data of the MLP benchmarks ------------------------ */

/* What the MLP benchmarks share. Defaults: 784-300-100-10, relu hidden
 * layers, 2 threads, 5 repeats, chunk 0 (the library's default, 512). */
typedef struct bench_opts {
    size_t n;                                /* --n: examples */
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1]; /* --arch */
    size_t n_sizes;
    effdim_activation act;                   /* --act: hidden activation */
    int threads;                             /* --threads */
    size_t repeat;                           /* --repeat: timed samples */
    size_t chunk;                            /* --chunk: rows per pass, 0 = library default */
    const char *data;                        /* --data: spec, "random" or NULL */
    int json;                                /* --json */
} bench_opts;

#define BENCH_OPTS_DEFAULT                                                                  \
    {.n = 10000, .sizes = {784, 300, 100, 10}, .n_sizes = 4, .act = EFFDIM_ACT_RELU,     \
     .threads = 2, .repeat = 5}

/* --help lines of the options above (for --n --arch --act --threads
 * --repeat --chunk --data). */
#define BENCH_HELP_COMMON                                                                   \
    "  --n N             examples (default 10000)\n"                                       \
    "  --arch A,B,...    layer widths (default 784,300,100,10)\n"                          \
    "  --act NAME        hidden activation (default relu; output is identity)\n"           \
    "  --threads T       OpenBLAS threads (default 2)\n"                                   \
    "  --repeat R        timed runs (default 5; best and median reported)\n"               \
    "  --chunk C         rows per pass (default: the library's, 512)\n"                    \
    "  --data SPEC       data spec (default fashion-mnist:train:n=N), or 'random'\n"       \
    "                    (uniform [0,1) inputs and uniform labels, seed 1)\n"

/* The long options of bench_parse_common, for a benchmark's option table. */
#define BENCH_LONGOPT_N {"n", required_argument, 0, 'n'}
#define BENCH_LONGOPT_ARCH {"arch", required_argument, 0, 'a'}
#define BENCH_LONGOPT_ACT {"act", required_argument, 0, 'A'}
#define BENCH_LONGOPT_THREADS {"threads", required_argument, 0, 't'}
#define BENCH_LONGOPT_REPEAT {"repeat", required_argument, 0, 'r'}
#define BENCH_LONGOPT_CHUNK {"chunk", required_argument, 0, 'c'}
#define BENCH_LONGOPT_DATA {"data", required_argument, 0, 'd'}
#define BENCH_LONGOPT_JSON {"json", no_argument, 0, 'j'}
#define BENCH_LONGOPT_HELP {"help", no_argument, 0, 'h'}

/* One of the shared options (the values above) into o: 0 or an exit code
 * (message printed); CLI_EXIT_USAGE for any other option. */
int bench_parse_common(const char *cmd, int c, const char *arg, bench_opts *o);

/* After the options: no operand, and --n of at least 1. 0 or exit code 2. */
int bench_check_operands(const char *cmd, int argc, char **argv, const bench_opts *o);

/* The benchmarked network: o's widths, o->act on the hidden layers and
 * identity on the output, softmax cross-entropy with mean reduction; arch
 * receives the widths as "784,300,100,10". Also sets the OpenBLAS threads. */
effdim_status bench_mlp_setup(const bench_opts *o, effdim_mlp *m, char *arch, size_t arch_cap,
                              effdim_error *err);

/* The data: "random" (n_random rows of uniform [0, 1) inputs and uniform
 * labels, gsl_rng_mt19937 seed 1), else o->data, else default_spec; checked
 * to fit m. `what` receives the description. */
effdim_status bench_load_data(const bench_opts *o, const effdim_mlp *m, size_t n_random,
                              const char *default_spec, effdim_dataset **ds, char *what,
                              size_t cap, effdim_error *err);

/* An MLP workspace of `chunk` rows (0: the library's default), but of no
 * more than n rows. NULL (err set) when memory runs out. */
effdim_mlp_ws *bench_ws_alloc(const effdim_mlp *m, size_t chunk, size_t n, effdim_error *err);

/* FLOPs over `rows` rows (multiply-adds count 2): forward 2 rows sum_l
 * out_l in_l, weight gradients the same, deltas 2 rows sum_{l>=1} out_l in_l
 * (the input delta is not formed). */
void bench_mlp_flops(const effdim_mlp *m, size_t rows, double *fwd, double *wgrad,
                     double *delta);

/* Time jobs[0..n_jobs) interleaved with one dgemm job per shape (appended at
 * jobs[n_jobs..n_jobs + n_shapes): the array must have room), after
 * allocating the shapes' operands (seeds 1, 2, ...); record the shapes'
 * rates and set *ref to the best. 0; -1 after printing "out of memory for
 * the dgemm reference"; else the first failing job's result (not printed). */
int bench_run_with_gemm(const char *cmd, bench_job *jobs, size_t n_jobs, bench_gemm_shape *shapes,
                        size_t n_shapes, size_t repeat, double min_seconds, double *ref);

/* Run a PyTorch script of the checkout (script: its path from the top,
 * e.g. "tools/bench/train_torch.py", found under $EFFDIM_SOURCE_DIR, then up
 * from the executable, then in the current folder) with Debian's
 * /usr/bin/python3 and the arguments args; its last stdout line starting
 * with '{' (up to 64 KiB) is parsed as JSON. NULL, after a note on stderr,
 * when python, the script or its run fails. */
cJSON *bench_run_torch(const char *cmd, const char *script, const char *args);
/* The same, printing "effdim <cmd>: <note>" on stderr just before the
 * script starts (when note is not NULL). */
cJSON *bench_run_torch_note(const char *cmd, const char *script, const char *args,
                            const char *note);

/* The first lines of a text report: "effdim bench <name> (preliminary ...)"
 * and the machine (cpu, threads, BLAS). */
void bench_print_header(const char *name, int threads);

/* A JSON summary's start: benchmark, machine, data, arch. */
cJSON *bench_json_head(const char *name, int threads, const char *what, const char *arch);

/* ---- the benchmarks ------------------------------------------------------ */

int bench_grad(int argc, char **argv);
int bench_train(int argc, char **argv);
int bench_diag(int argc, char **argv);
int bench_spectrum(int argc, char **argv);

#endif
