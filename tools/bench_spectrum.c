/* tools/bench_spectrum.c: `effdim bench spectrum`, Hessian products and top eigenvalues.
 *
 * On 784-300-100-10 (relu hidden layers, softmax cross-entropy, mean; 266,610
 * parameters) and the first 10,000 Fashion-MNIST training images, float64,
 * 2 OpenBLAS threads, it measures in one run:
 *  1. one full gradient, one finite-difference Hessian-vector product and one
 *     exact (R-operator) product, timed interleaved (bench_common.h) so the
 *     machine's load falls on all three alike; the ratio FD / gradient has
 *     the target <= 1.05 x the gradients a product is made of (4 for the
 *     default Richardson FD: 4.2; 2.1 for fd-central);
 *  2. the top-20 eigenvalues to tol 1e-6 by effdim's Lanczos (thick restart,
 *     full reorthogonalisation) with exact products from the cached forward
 *     state (the fastest products; --hvp fd or --no-cache for the others):
 *     matvecs (target < 100) and wall seconds;
 *  3. the same with PyTorch double-backprop HVPs and SciPy's ARPACK eigsh
 *     (k = 20, tol 1e-6, which='LA') on the same weights and data, by
 *     tools/bench/spectrum_torch.py with Debian's /usr/bin/python3 (the
 *     checkpoint goes to a temporary folder), in two variants driven by the
 *     same eigsh: one gradient graph reused for every product (as PyHessian
 *     does; target: effdim 1.5 times faster) and the graph recomputed per
 *     product (target: 3 times faster); the eigenvalues are compared;
 *  4. peak memory (getrusage max RSS) against the bound: data + Lanczos basis
 *     ((m+1) x P doubles) + the MLP workspace + 8 gradient-sized vectors,
 *     plus 20%, over the RSS before any of them was allocated; reported
 *     without and with the cached forward state as a term of its own.
 * The model is trained in the same run for --epochs epochs of Adam (lr 1e-3,
 * batch 128, seed 1; default 10: a trained model, the state researchers
 * analyse; docs/performance.md has the matvec counts after 1, 3, 10 and 20
 * epochs) from PyTorch's default init (seed 1), or loaded from --ckpt;
 * with --slq, the spectrum job (lib/spectrum_job.c) on the same model as
 * `effdim spectrum -k K --hvp M` runs it, against itself with --probes 0
 * (target: at most 3 times the time) and its SLQ N_eff against a long
 * reference run (--slq-ref, default 200 probes x 300 steps; target: within 2
 * of its SE at every z);
 * --epochs 0 keeps the random init. Besides the headline ratio (effdim's
 * whole run, true residuals included) the solver-only ratio is printed:
 * effdim without its k true-residual products (estimated at the mean product
 * time), which eigsh does not compute.
 */
#include <getopt.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_common.h"
#include "cli.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "effdim/train.h"
#include "effdim/spectrum.h"

#define CMD "bench spectrum"
#define TORCH_SCRIPT "tools/bench/spectrum_torch.py"

typedef struct sb_opts {
    size_t n;
    const char *data;   /* spec; default fashion-mnist:train:n=N */
    const char *ckpt;   /* use this checkpoint instead of training */
    size_t epochs;
    int threads;
    size_t k;
    double tol;
    size_t repeat;
    size_t chunk;
    size_t basis;       /* Lanczos basis size m; 0 = the library default (2k + 60) */
    size_t ncv;         /* eigsh's ncv; 0 = SciPy's default */
    effdim_hvp_method hvp;
    int cache;          /* exact products for Lanczos from the cached forward state */
    int torch;
    int json;
    const char *keep;   /* write the checkpoint here and keep it */
    int slq;            /* also the spectrum job's cost and accuracy (--slq) */
    size_t ref_probes, ref_steps; /* the long reference SLQ run (0 probes: none) */
    double ref_seconds;           /* its time budget (0: none) */
    const char *ref_file;         /* a spectrum file to use as the reference instead */
} sb_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim bench spectrum [options]\n\n"
            "Times one gradient, one finite-difference and one exact Hessian-vector product,\n"
            "then the top-k Hessian eigenvalues by effdim's Lanczos against PyTorch\n"
            "double-backprop HVPs with SciPy's ARPACK eigsh, on the same model and data.\n\n"
            "  --n N          examples (default 10000)\n"
            "  --data SPEC    data spec (default fashion-mnist:train:n=N)\n"
            "  --ckpt FILE    use this checkpoint (default: 784-300-100-10 relu trained here)\n"
            "  --epochs E     Adam epochs (lr 1e-3, batch 128, seed 1) before measuring\n"
            "                 (default 10; 0 = PyTorch's random init, seed 1)\n"
            "  --k K          eigenvalues (default 20)\n"
            "  --tol T        relative residual tolerance (default 1e-6)\n"
            "  --hvp M        products for Lanczos: exact (default), fd, fd-central or\n"
            "                 fd-forward; an FD method is also the FD product timed\n"
            "                 (otherwise the library's default, fd)\n"
            "  --no-cache     exact products without the cached forward state\n"
            "  --basis M      Lanczos basis size (default 2k + 60)\n"
            "  --ncv M        eigsh's ncv (default SciPy's max(2k + 1, 20))\n"
            "  --threads T    OpenBLAS / torch threads (default 2)\n"
            "  --repeat R     timed samples of gradient and products (default 5)\n"
            "  --chunk C      rows per pass (default 512, as bench grad)\n"
            "  --keep FILE    keep the checkpoint written for the PyTorch script there\n"
            "  --no-torch     skip the PyTorch + eigsh comparison\n"
            "  --slq          also the spectrum job with its defaults (effdim spectrum -k K\n"
            "                 --hvp M) against the same with --probes 0 (target: at most 3x\n"
            "                 the time) and its SLQ N_eff against a long reference run\n"
            "                 (target: within 2 of its SE at every z)\n"
            "  --slq-ref P,S  the reference run's probes and steps (default 200,300; 0 = none);\n"
            "                 its probes are drawn from another seed, every probe runs S steps\n"
            "  --slq-ref-seconds T  stop the reference after T seconds of SLQ (default: none)\n"
            "  --slq-ref-file F     a spectrum file (same model, data and z) as the reference\n"
            "  --json         print a JSON summary\n"
            "  -h, --help     this help\n");
}

static int parse_opts(int argc, char **argv, sb_opts *o)
{
    static const struct option longopts[] = {
        {"n", required_argument, 0, 'n'},      {"data", required_argument, 0, 'd'},
        {"ckpt", required_argument, 0, 'c'},   {"epochs", required_argument, 0, 'e'},
        {"k", required_argument, 0, 'k'},      {"tol", required_argument, 0, 'T'},
        {"hvp", required_argument, 0, 'H'},    {"threads", required_argument, 0, 't'},
        {"repeat", required_argument, 0, 'r'}, {"chunk", required_argument, 0, 'C'},
        {"keep", required_argument, 0, 'K'},   {"no-torch", no_argument, 0, 'N'},
        {"json", no_argument, 0, 'j'},         {"help", no_argument, 0, 'h'},
        {"no-cache", no_argument, 0, 'A'},    {"basis", required_argument, 0, 'B'},
        {"ncv", required_argument, 0, 'V'},
        {"slq", no_argument, 0, 'S'},          {"slq-ref", required_argument, 0, 'R'},
        {"slq-ref-seconds", required_argument, 0, 'Q'}, {"slq-ref-file", required_argument, 0, 'F'},
        {0, 0, 0, 0},
    };
    size_t v;
    int c, rc = 0;
    effdim_error err;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            rc = cli_parse_size(CMD, "--n", optarg, &o->n);
            if (!rc && o->n < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--n: at least 1");
            break;
        case 'd': o->data = optarg; break;
        case 'c': o->ckpt = optarg; break;
        case 'e': rc = cli_parse_size(CMD, "--epochs", optarg, &o->epochs); break;
        case 'k':
            rc = cli_parse_size(CMD, "--k", optarg, &o->k);
            if (!rc && (o->k < 1 || o->k > 1000))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--k: expected 1 to 1000");
            break;
        case 'T':
            rc = cli_parse_double(CMD, "--tol", optarg, &o->tol);
            if (!rc && !(o->tol > 0 && o->tol < 1))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--tol: expected 0 < tol < 1");
            break;
        case 'H':
            if (effdim_hvp_method_parse(optarg, &o->hvp, &err))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--hvp: %s", err.msg);
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
        case 'C':
            rc = cli_parse_size(CMD, "--chunk", optarg, &o->chunk);
            if (!rc && o->chunk < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--chunk: at least 1");
            break;
        case 'K': o->keep = optarg; break;
        case 'N': o->torch = 0; break;
        case 'A': o->cache = 0; break;
        case 'B': rc = cli_parse_size(CMD, "--basis", optarg, &o->basis); break;
        case 'V': rc = cli_parse_size(CMD, "--ncv", optarg, &o->ncv); break;
        case 'j': o->json = 1; break;
        case 'S': o->slq = 1; break;
        case 'Q':
            rc = cli_parse_double(CMD, "--slq-ref-seconds", optarg, &o->ref_seconds);
            if (!rc && !(o->ref_seconds > 0))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-ref-seconds: expected seconds > 0");
            break;
        case 'F': o->ref_file = optarg; break;
        case 'R': {
            size_t pr[2], n = 0;
            rc = cli_parse_size_list(CMD, "--slq-ref", optarg, pr, 2, &n);
            if (!rc && (n != 2 && !(n == 1 && pr[0] == 0)))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-ref: expected PROBES,STEPS or 0");
            o->ref_probes = pr[0];
            o->ref_steps = n == 2 ? pr[1] : 0;
            break;
        }
        case 'h': usage(stdout); return -1;
        case ':': return cli_errorf(CMD, CLI_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_errorf(CMD, CLI_EXIT_USAGE, "unknown option '%s' (effdim bench spectrum --help)",
                              argv[optind - 1]);
        }
        if (rc) return rc;
    }
    if (optind < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* ---- memory -------------------------------------------------------------------- */

static double max_rss_bytes(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru)) return (double)NAN;
    return (double)ru.ru_maxrss * 1024.0; /* Linux reports KiB */
}

/* Current resident set (from /proc/self/statm), bytes. */
static double current_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f) return (double)NAN;
    int ok = fscanf(f, "%ld %ld", &pages, &resident) == 2;
    fclose(f);
    return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) : (double)NAN;
}

/* ---- the model ------------------------------------------------------------------- */

typedef struct model {
    effdim_mlp m;
    double *theta;
    char source[256];   /* how it was made */
    double loss, accuracy;
} model;

static effdim_status train_model(model *md, const effdim_dataset *ds, size_t epochs,
                                 size_t chunk, effdim_error *err)
{
    const size_t sizes[] = {784, 300, 100, 10};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    effdim_status st = effdim_mlp_init(&md->m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY,
                                       EFFDIM_REDUCTION_MEAN, err);
    if (st) return st;
    md->theta = malloc(md->m.n_params * sizeof(double));
    if (!md->theta) return effdim_error_set(err, EFFDIM_ENOMEM, "out of memory for theta");
    st = effdim_mlp_init_params(&md->m, md->theta, EFFDIM_INIT_TORCH, 1, err);
    if (st) return st;
    snprintf(md->source, sizeof md->source,
             epochs ? "PyTorch init (seed 1), then %zu epoch(s) of Adam lr 1e-3 batch 128 (seed 1)"
                    : "PyTorch init (seed 1), untrained (%zu epochs)", epochs);
    if (!epochs) return EFFDIM_OK;
    /* the library's training job: Adam at its defaults, batch 128, seed 1 */
    effdim_train_params p = effdim_train_default_params();
    p.epochs = epochs;
    p.chunk = 128;
    p.evaluate = 0;
    effdim_checkpoint *c = NULL;
    st = effdim_checkpoint_alloc(&md->m, md->theta, &c, err);
    if (!st) st = effdim_train_run(&p, c, ds, NULL, NULL, err);
    if (!st) memcpy(md->theta, c->theta, md->m.n_params * sizeof(double));
    effdim_checkpoint_free(c);
    return st;
}

static effdim_status load_model(model *md, const char *path, effdim_error *err)
{
    effdim_checkpoint *c = NULL;
    effdim_status st = effdim_checkpoint_load(path, &c, err);
    if (st) return st;
    md->m = c->mlp;
    md->theta = c->theta;
    c->theta = NULL;
    effdim_checkpoint_free(c);
    snprintf(md->source, sizeof md->source, "checkpoint %s", path);
    return EFFDIM_OK;
}

/* ---- timed jobs ---------------------------------------------------------------------- */

typedef struct timed {
    const model *md;
    const effdim_dataset *ds;
    effdim_mlp_ws *ws;
    effdim_operator *op;
    const double *v;
    double *out;
    effdim_error err;
} timed;

static int job_grad(void *p)
{
    timed *t = p;
    return effdim_mlp_loss_grad(&t->md->m, t->md->theta, t->ds, NULL, t->ds->n, NULL, t->out, t->ws,
                                &t->err) != EFFDIM_OK;
}

static int job_hvp(void *p)
{
    timed *t = p;
    size_t P = t->md->m.n_params;
    return effdim_operator_apply(t->op, 1, t->v, P, t->out, P, &t->err) != EFFDIM_OK;
}

/* ---- PyTorch + eigsh ------------------------------------------------------------------ */

static cJSON *run_torch(const sb_opts *o, const char *ckpt, const effdim_dataset *ds)
{
    char args[PATH_MAX + 256];
    snprintf(args, sizeof args, "--ckpt '%s' --n %zu --k %zu --tol %g --threads %d --ncv %zu", ckpt,
             ds->n, o->k, o->tol, o->threads, o->ncv);
    return bench_run_torch_note(CMD, TORCH_SCRIPT, args,
                                "running PyTorch + eigsh (" TORCH_SCRIPT ")");
}

static double json_num(const cJSON *o, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(x) ? x->valuedouble : (double)NAN;
}

/* max_i |a_i - b_i| / |b_i| over the eigenvalues both lists have (descending). */
static double compare_eigenvalues(const double *a, size_t k, const cJSON *torch, size_t *count)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(torch, "eigenvalues");
    double worst = 0.0;
    size_t n = 0;
    if (!cJSON_IsArray(arr)) return (double)NAN;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        if (n >= k || !cJSON_IsNumber(x)) break;
        worst = fmax(worst, fabs(a[n] - x->valuedouble) / fabs(x->valuedouble));
        ++n;
    }
    *count = n;
    return n ? worst : (double)NAN;
}

/* ---- the run -------------------------------------------------------------------------- */

typedef struct results {
    bench_timing grad, fd, exact, cached, cached1; /* cached1: one worker, rows not split */
    size_t workers;
    double cache_bytes;
    double *eig, *res;
    effdim_lanczos_stats stats;
    effdim_status lanczos_status;
    double lanczos_seconds;
    double rss_base, rss_peak, bound, data_bytes, basis_bytes, ws_bytes, vec_bytes;
    double fd_step;
    double fd_gradients;               /* gradients per FD product */
    effdim_spectrum *job0, *job, *ref; /* --slq: --probes 0, the defaults, the reference */
    double job0_seconds, job_seconds, ref_seconds;
    const char *ref_file;              /* the reference came from this file */
    double op_ws_bytes;                /* the operator's curvature workspaces and row-split sums */
} results;

static void print_slq(const results *r);
static cJSON *slq_json(const results *r);

static effdim_status run_lanczos(const sb_opts *o, effdim_operator *op, results *r,
                                 effdim_error *err)
{
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = o->k;
    lp.tol = o->tol;
    lp.seed = 1;
    lp.max_matvecs = 2000;
    lp.m = o->basis;
    effdim_lanczos_workspace *lw = effdim_lanczos_alloc(op->n, &lp, err);
    if (!lw) return err->code ? err->code : EFFDIM_ENOMEM;
    cli_progress pr;
    cli_progress_init(&pr);
    double t0 = effdim_progress_clock();
    effdim_status st = effdim_lanczos_init(lw, op, NULL, err);
    while (!st || st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(lw, err);
        effdim_lanczos_progress p;
        effdim_lanczos_get_progress(lw, &p);
        cli_progress_update(&pr, -1.0, "lanczos: %zu matvecs, %zu/%zu converged, top %.6g",
                            p.matvecs, p.nconv, p.k, p.theta_max);
        if (st != EFFDIM_ECONTINUE) break;
    }
    cli_progress_done(&pr);
    r->lanczos_seconds = effdim_progress_clock() - t0;
    r->lanczos_status = st;
    if (st == EFFDIM_OK || st == EFFDIM_EMAXITER) {
        effdim_lanczos_solution sol;
        effdim_status s2 = effdim_lanczos_result(lw, &sol, err);
        if (!s2) {
            memcpy(r->eig, sol.eigenvalues, o->k * sizeof(double));
            memcpy(r->res, sol.residuals, o->k * sizeof(double));
            r->stats = sol.stats;
            r->basis_bytes = (double)(sol.stats.basis_size + 1) * (double)op->n * 8.0;
        }
        st = s2;
    }
    effdim_lanczos_free(lw);
    return st;
}

/* The time of the true-residual products, estimated at the mean product time. */
static double residual_seconds(const results *r)
{
    if (!r->stats.matvecs) return 0.0;
    return r->stats.seconds_apply * (double)r->stats.matvecs_residual / (double)r->stats.matvecs;
}

static void print_text(const sb_opts *o, const model *md, const effdim_dataset *ds,
                       const results *r, const cJSON *torch)
{
    char cpu[256];
    size_t P = md->m.n_params;
    printf("effdim bench spectrum (preliminary unless run on a quiet machine)\n");
    printf("machine    %s, %d threads, %s\n", bench_cpu_model(cpu, sizeof cpu), o->threads,
           effdim_blas_config());
    printf("model      784-300-100-10 relu, cross_entropy mean, %zu parameters: %s\n", P,
           md->source);
    printf("           training loss %.4f, accuracy %.4f on the %zu images\n", md->loss,
           md->accuracy, ds->n);
    printf("data       %s: %zu x %zu, float64\n", ds->spec ? ds->spec : "?", ds->n, ds->d);
    printf("products   best / median of %zu interleaved samples, seconds per call\n",
           r->grad.repeat);
    printf("  gradient      %8.4f / %8.4f\n", r->grad.best, r->grad.median);
    printf("  FD HVP        %8.4f / %8.4f   ratio to gradient %.3f (median %.3f); target <= %.2f "
           "(%.0f gradients a product)\n",
           r->fd.best, r->fd.median, r->fd.best / r->grad.best, r->fd.median / r->grad.median,
           1.05 * r->fd_gradients, r->fd_gradients);
    printf("  exact HVP     %8.4f / %8.4f   ratio to gradient %.3f (median %.3f)\n", r->exact.best,
           r->exact.median, r->exact.best / r->grad.best, r->exact.median / r->grad.median);
    printf("  exact, cached %8.4f / %8.4f   ratio to gradient %.3f (median %.3f); cache %.1f MiB\n",
           r->cached.best, r->cached.median, r->cached.best / r->grad.best,
           r->cached.median / r->grad.median, r->cache_bytes / 1048576.0);
    printf("  exact, cached, rows not split (1 worker) %8.4f / %8.4f: the split over %zu workers is "
           "%.2f x faster (median %.2f x)\n",
           r->cached1.best, r->cached1.median, r->workers, r->cached1.best / r->cached.best,
           r->cached1.median / r->cached.median);
    printf("  FD step h = %.3e\n", r->fd_step);
    printf("lanczos    top %zu to tol %g with %s%s products: %zu matvecs (%zu steps + %zu for the "
           "true residuals, %zu restarts, basis %zu), %zu/%zu converged, %.2f s (%.2f s in products)"
           "; target < 100 matvecs\n",
           o->k, o->tol, effdim_hvp_method_name(o->hvp),
           o->cache && o->hvp == EFFDIM_HVP_EXACT ? " (cached)" : "", r->stats.matvecs, r->stats.steps,
           r->stats.matvecs_residual, r->stats.restarts, r->stats.basis_size, r->stats.nconv, o->k,
           r->lanczos_seconds, r->stats.seconds_apply);
    if (o->hvp != EFFDIM_HVP_EXACT)
        printf("  whole run / (%zu matvecs x %.0f gradients of %.4f s) = %.3f; target <= 1.1\n",
               r->stats.matvecs, r->fd_gradients, r->grad.best,
               r->lanczos_seconds / ((double)r->stats.matvecs * r->fd_gradients * r->grad.best));
    printf("  eigenvalues (true residuals):\n");
    for (size_t i = 0; i < o->k; ++i)
        printf("    %2zu  %.10g  (%.2e)\n", i + 1, r->eig[i], r->res[i]);
    if (torch) {
        double ts = json_num(torch, "seconds"), th = json_num(torch, "hvp_seconds");
        size_t cnt = 0;
        double diff = compare_eigenvalues(r->eig, o->k, torch, &cnt);
        printf("pytorch    torch %s, scipy %s: one HVP %.4f s (ratio to effdim's gradient %.2f); "
               "eigsh %g matvecs, %.2f s\n",
               cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(torch, "torch_version")),
               cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(torch, "scipy_version")), th,
               th / r->grad.best, json_num(torch, "matvecs"), ts);
        printf("ratio      effdim / (pytorch + eigsh, one gradient graph reused as PyHessian does) "
               "wall time = %.3f (%.2f x faster); target: 1.5 x faster\n",
               r->lanczos_seconds / ts, ts / r->lanczos_seconds);
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(torch, "recompute");
        if (cJSON_IsObject(rc)) {
            double rs = json_num(rc, "seconds");
            size_t rcnt = 0;
            double rdiff = compare_eigenvalues(r->eig, o->k, rc, &rcnt);
            printf("           pytorch recomputing the graph per product: one HVP %.4f s, eigsh %g "
                   "matvecs, %.2f s; effdim / it = %.3f (%.2f x faster); target: 3 x faster "
                   "(eigenvalues within %.2e)\n",
                   json_num(rc, "hvp_seconds"), json_num(rc, "matvecs"), rs,
                   r->lanczos_seconds / rs, rs / r->lanczos_seconds, rdiff);
        }
        printf("           solver only (without effdim's %zu true-residual products, ~%.2f s): "
               "%.3f, %zu matvecs against eigsh's %g\n",
               r->stats.matvecs_residual, residual_seconds(r),
               (r->lanczos_seconds - residual_seconds(r)) / ts, r->stats.steps,
               json_num(torch, "matvecs"));
        printf("agreement  max relative difference of the %zu eigenvalues: %.2e\n", cnt, diff);
    }
    printf("memory     peak RSS %.1f MiB; before data and model %.1f MiB; growth %.1f MiB\n",
           r->rss_peak / 1048576.0, r->rss_base / 1048576.0, (r->rss_peak - r->rss_base) / 1048576.0);
    double growth = r->rss_peak - r->rss_base, with = r->bound + 1.2 * r->cache_bytes;
    printf("           bound 1.2 x (data %.1f + basis %.1f + workspaces %.1f (MLP and, for exact "
           "products, the operator's: %.1f) + 8 vectors %.1f) = %.1f MiB: %s\n",
           r->data_bytes / 1048576.0, r->basis_bytes / 1048576.0, r->ws_bytes / 1048576.0,
           o->hvp == EFFDIM_HVP_EXACT ? r->op_ws_bytes / 1048576.0 : 0.0,
           r->vec_bytes / 1048576.0, r->bound / 1048576.0,
           growth <= r->bound ? "within" : "exceeded");
    if (o->cache && o->hvp == EFFDIM_HVP_EXACT)
        printf("           with the cached forward state as a term (1.2 x %.1f MiB more) = %.1f MiB: %s\n",
               r->cache_bytes / 1048576.0, with / 1048576.0, growth <= with ? "within" : "exceeded");
    if (r->job) print_slq(r);
}

static cJSON *timing_json(const bench_timing *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "best", t->best);
    cJSON_AddNumberToObject(j, "median", t->median);
    cJSON_AddNumberToObject(j, "repeat", (double)t->repeat);
    return j;
}

static cJSON *summary_json(const sb_opts *o, const model *md, const effdim_dataset *ds,
                           const results *r, cJSON *torch)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "benchmark", "spectrum");
    cJSON_AddItemToObject(j, "machine", bench_json_machine(o->threads));
    cJSON_AddStringToObject(j, "data", ds->spec ? ds->spec : "");
    cJSON_AddNumberToObject(j, "n", (double)ds->n);
    cJSON_AddNumberToObject(j, "params", (double)md->m.n_params);
    cJSON_AddStringToObject(j, "model", md->source);
    cJSON_AddNumberToObject(j, "train_loss", md->loss);
    cJSON_AddItemToObject(j, "gradient", timing_json(&r->grad));
    cJSON_AddItemToObject(j, "fd_hvp", timing_json(&r->fd));
    cJSON_AddItemToObject(j, "exact_hvp", timing_json(&r->exact));
    cJSON_AddItemToObject(j, "exact_hvp_cached", timing_json(&r->cached));
    cJSON_AddItemToObject(j, "exact_hvp_cached_one_worker", timing_json(&r->cached1));
    cJSON_AddNumberToObject(j, "workers", (double)r->workers);
    cJSON_AddNumberToObject(j, "cache_bytes", r->cache_bytes);
    cJSON_AddBoolToObject(j, "lanczos_cache", o->cache);
    cJSON_AddNumberToObject(j, "fd_over_gradient", r->fd.best / r->grad.best);
    cJSON_AddNumberToObject(j, "exact_over_gradient", r->exact.best / r->grad.best);
    cJSON_AddNumberToObject(j, "target_fd_over_gradient", 1.05 * r->fd_gradients);
    cJSON_AddNumberToObject(j, "fd_gradients_per_product", r->fd_gradients);
    cJSON_AddStringToObject(j, "lanczos_hvp", effdim_hvp_method_name(o->hvp));
    cJSON_AddNumberToObject(j, "k", (double)o->k);
    cJSON_AddNumberToObject(j, "tol", o->tol);
    cJSON_AddNumberToObject(j, "matvecs", (double)r->stats.matvecs);
    cJSON_AddNumberToObject(j, "restarts", (double)r->stats.restarts);
    cJSON_AddNumberToObject(j, "steps", (double)r->stats.steps);
    cJSON_AddNumberToObject(j, "matvecs_residual", (double)r->stats.matvecs_residual);
    cJSON_AddNumberToObject(j, "seconds_apply", r->stats.seconds_apply);
    cJSON_AddNumberToObject(j, "residual_seconds_estimate", residual_seconds(r));
    cJSON_AddNumberToObject(j, "nconv", (double)r->stats.nconv);
    if (o->hvp != EFFDIM_HVP_EXACT)
        cJSON_AddNumberToObject(j, "fd_run_over_products_x_gradients",
                                r->lanczos_seconds /
                                    ((double)r->stats.matvecs * r->fd_gradients * r->grad.best));
    cJSON_AddNumberToObject(j, "seconds", r->lanczos_seconds);
    cJSON_AddItemToObject(j, "eigenvalues", cli_json_doubles(r->eig, o->k));
    cJSON_AddItemToObject(j, "residuals", cli_json_doubles(r->res, o->k));
    cJSON_AddNumberToObject(j, "peak_rss_bytes", r->rss_peak);
    cJSON_AddNumberToObject(j, "base_rss_bytes", r->rss_base);
    cJSON_AddNumberToObject(j, "memory_bound_bytes", r->bound);
    cJSON_AddNumberToObject(j, "memory_bound_with_cache_bytes", r->bound + 1.2 * r->cache_bytes);
    cJSON_AddNumberToObject(j, "basis", (double)r->stats.basis_size);
    if (torch) {
        size_t cnt = 0;
        cJSON_AddNumberToObject(j, "wall_ratio_to_torch",
                                r->lanczos_seconds / json_num(torch, "seconds"));
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(torch, "recompute");
        if (cJSON_IsObject(rc))
            cJSON_AddNumberToObject(j, "wall_ratio_to_torch_recompute",
                                    r->lanczos_seconds / json_num(rc, "seconds"));
        cJSON_AddNumberToObject(j, "solver_wall_ratio_to_torch",
                                (r->lanczos_seconds - residual_seconds(r)) /
                                    json_num(torch, "seconds"));
        cJSON_AddNumberToObject(j, "eigenvalue_max_rel_diff",
                                compare_eigenvalues(r->eig, o->k, torch, &cnt));
        cJSON_AddItemToObject(j, "torch", torch);
    }
    cJSON_AddNumberToObject(j, "target_wall_ratio", 1.0 / 1.5); /* against the graph reused */
    cJSON_AddNumberToObject(j, "target_wall_ratio_recompute", 1.0 / 3.0);
    if (r->job) cJSON_AddItemToObject(j, "spectrum_job", slq_json(r));
    return j;
}

/* Everything the run measures, effdim's side. */
static effdim_status measure(const sb_opts *o, model *md, const effdim_dataset *ds,
                             results *r, effdim_error *err)
{
    size_t P = md->m.n_params;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&md->m, o->chunk, err);
    effdim_mlp_ws *ws1 = ws ? effdim_mlp_ws_alloc_workers(&md->m, o->chunk, 1, err) : NULL;
    double *v = malloc(P * sizeof *v), *out = malloc(P * sizeof *out);
    effdim_operator *fd = NULL, *ex = NULL, *cx = NULL, *cx1 = NULL;
    effdim_status st = EFFDIM_ENOMEM;
    if (!ws || !ws1 || !v || !out) goto done;
    r->workers = effdim_mlp_ws_workers(ws);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) goto done;
    gsl_rng_set(rng, 7);
    for (size_t i = 0; i < P; ++i) v[i] = gsl_ran_gaussian(rng, 1.0);
    gsl_rng_free(rng);
    effdim_hvp_params hp = effdim_hvp_default_params();
    /* the FD product timed: the one --hvp names, else the library's default (fd) */
    if (o->hvp != EFFDIM_HVP_EXACT) hp.method = o->hvp;
    st = effdim_hvp_operator(&md->m, md->theta, ds, NULL, ds->n, &hp, ws, &fd, err);
    if (st) goto done;
    hp.method = EFFDIM_HVP_EXACT;
    st = effdim_hvp_operator(&md->m, md->theta, ds, NULL, ds->n, &hp, ws, &ex, err);
    if (st) goto done;
    hp.cache = 1;
    st = effdim_hvp_operator(&md->m, md->theta, ds, NULL, ds->n, &hp, ws, &cx, err);
    if (st) goto done;
    st = effdim_hvp_operator(&md->m, md->theta, ds, NULL, ds->n, &hp, ws1, &cx1, err);
    if (st) goto done;
    effdim_hvp_info cinfo, xinfo;
    effdim_hvp_get_info(cx, &cinfo, NULL);
    effdim_hvp_get_info(ex, &xinfo, NULL);
    r->cache_bytes = (double)(cinfo.bytes - xinfo.bytes);
    /* the exact operator's own buffers but its theta copy (one of the 8 vectors) */
    r->op_ws_bytes = (double)xinfo.bytes - (double)P * 8.0;
    effdim_hvp_info info, info2;
    effdim_hvp_get_info(fd, &info, NULL);
    r->fd_step = info.fd_step;
    /* gradients per FD product (4: Richardson), the unit of its target */
    st = effdim_operator_apply(fd, 1, v, P, out, P, err);
    if (st) goto done;
    effdim_hvp_get_info(fd, &info2, NULL);
    r->fd_gradients = (double)(info2.gradients - info.gradients);
    st = effdim_mlp_evaluate(&md->m, md->theta, ds, NULL, ds->n, &md->loss,
                             &md->accuracy, ws, err);
    if (st) goto done;

    fprintf(stderr, "effdim bench spectrum: timing gradient, FD HVP, exact HVP, cached exact HVP "
                    "(rows split over %zu workers, and on 1) (%zu samples)\n",
            r->workers, o->repeat);
    timed tg = {md, ds, ws, NULL, v, out, {0, ""}}, tf = tg, te = tg, tc = tg, t1 = tg;
    tf.op = fd;
    te.op = ex;
    tc.op = cx;
    t1.op = cx1;
    bench_job jobs[5] = {{job_grad, &tg, {0, 0, 0, 0, 0}},
                         {job_hvp, &tf, {0, 0, 0, 0, 0}},
                         {job_hvp, &te, {0, 0, 0, 0, 0}},
                         {job_hvp, &tc, {0, 0, 0, 0, 0}},
                         {job_hvp, &t1, {0, 0, 0, 0, 0}}};
    if (bench_run(jobs, 5, o->repeat, 0.0)) {
        *err = tg.err.code ? tg.err : tf.err.code ? tf.err : te.err.code ? te.err
             : tc.err.code ? tc.err : t1.err;
        st = err->code ? err->code : EFFDIM_EINTERNAL;
        goto done;
    }
    r->grad = jobs[0].t;
    r->fd = jobs[1].t;
    r->exact = jobs[2].t;
    r->cached = jobs[3].t;
    r->cached1 = jobs[4].t;
    effdim_operator_free(cx1);
    cx1 = NULL;
    effdim_mlp_ws_free(ws1);
    ws1 = NULL;
    /* only the operator Lanczos uses keeps its memory during the run */
    effdim_operator *lop = o->hvp != EFFDIM_HVP_EXACT ? fd : o->cache ? cx : ex;
    if (lop != fd) {
        effdim_operator_free(fd);
        fd = NULL;
    }
    if (lop != ex) {
        effdim_operator_free(ex);
        ex = NULL;
    }
    if (lop != cx) {
        effdim_operator_free(cx);
        cx = NULL;
    }
    effdim_operator_reset_counters(lop);
    fprintf(stderr, "effdim bench spectrum: Lanczos, top %zu to tol %g (%s products)\n", o->k,
            o->tol, effdim_hvp_method_name(o->hvp));
    st = run_lanczos(o, lop, r, err);
    r->rss_peak = max_rss_bytes(RUSAGE_SELF);
    r->ws_bytes = (double)effdim_mlp_ws_bytes(ws) + (o->hvp == EFFDIM_HVP_EXACT ? r->op_ws_bytes : 0.0);
done:
    effdim_operator_free(fd);
    effdim_operator_free(ex);
    effdim_operator_free(cx);
    effdim_operator_free(cx1);
    effdim_mlp_ws_free(ws);
    effdim_mlp_ws_free(ws1);
    free(v);
    free(out);
    return st;
}

/* --slq: the spectrum job as `effdim spectrum -k K --hvp M` runs it, with
 * --probes 0 and with its defaults (the SLQ stopping at its SE target), and
 * the long reference SLQ on the same z. */
static effdim_status run_job(const sb_opts *o, const model *md, const effdim_dataset *ds,
                             const effdim_spectrum_params *p, const char *what,
                             effdim_spectrum **out, double *seconds, effdim_error *err)
{
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    effdim_spectrum_params q = *p;
    q.k = o->k;
    q.hvp = o->hvp;
    q.cache = o->cache;
    q.chunk = o->chunk;
    q.progress = cli_progress_of(&sink);
    fprintf(stderr, "effdim bench spectrum: the spectrum job, %s\n", what);
    double t0 = effdim_progress_clock();
    effdim_status st = effdim_spectrum_compute(&md->m, md->theta, ds, &q, out, err);
    *seconds = effdim_progress_clock() - t0;
    cli_progress_sink_done(&sink);
    return st;
}

static effdim_status measure_slq(const sb_opts *o, const model *md, const effdim_dataset *ds,
                                 results *r, effdim_error *err)
{
    effdim_spectrum_params p = effdim_spectrum_default_params();
    p.probes = 0;
    effdim_status st = run_job(o, md, ds, &p, "--probes 0", &r->job0, &r->job0_seconds, err);
    p = effdim_spectrum_default_params();
    if (!st) st = run_job(o, md, ds, &p, "its defaults", &r->job, &r->job_seconds, err);
    if (st || !r->job->n_eff_slq) return st;
    if (o->ref_file) { /* a reference run before, on the same model, data and z */
        st = effdim_spectrum_load(o->ref_file, &r->ref, err);
        if (st) return st;
        int same = r->ref->n_eff_slq && r->ref->m == r->job->m;
        for (size_t j = 0; same && j < r->job->m; ++j) same = r->ref->z[j] == r->job->z[j];
        if (!same)
            return effdim_error_set(err, EFFDIM_EINVAL,
                                    "%s: /effdim/z or n_eff_slq: expected the SLQ N_eff at the "
                                    "same %zu z as this run",
                                    o->ref_file, r->job->m);
        r->ref_seconds = 0.0; /* not in the file */
        r->ref_file = o->ref_file;
        return EFFDIM_OK;
    }
    if (!o->ref_probes) return EFFDIM_OK;
    p.z = r->job->z;
    p.nz = r->job->m;
    p.probes = o->ref_probes;
    p.slq_steps = o->ref_steps;
    p.slq_target_rel = p.slq_target_abs = 0.0;
    p.slq_settle = 0.0;          /* every probe runs all its steps */
    p.slq_budget_factor = 0.0;   /* no product budget */
    p.slq_budget_seconds = o->ref_seconds;
    p.seed = 1000;               /* probes independent of the default run's */
    return run_job(o, md, ds, &p, "the reference SLQ", &r->ref, &r->ref_seconds, err);
}

/* the largest |job - reference| / job SE over z (NaN without a reference) */
static double worst_se_distance(const results *r, size_t *at)
{
    double worst = NAN;
    *at = 0;
    if (!r->ref || !r->ref->n_eff_slq || !r->job || !r->job->n_eff_slq) return worst;
    for (size_t j = 0; j < r->job->m; ++j) {
        double d = fabs(r->job->n_eff_slq[j] - r->ref->n_eff_slq[j]) / r->job->n_eff_slq_se[j];
        if (!(d <= worst)) {
            worst = d;
            *at = j;
        }
    }
    return worst;
}

static void print_slq(const results *r)
{
    const effdim_spectrum *a = r->job0, *b = r->job, *c = r->ref;
    printf("spectrum job  --probes 0: %.2f s, %llu matvecs (Lanczos %llu); defaults: %.2f s, %llu "
           "matvecs (SLQ %llu probes x at most %llu steps, mean %.1f, %llu settled early, %llu "
           "matvecs, budget %llu, stopped: %s); ratio %.2f, target <= 3\n",
           r->job0_seconds, (unsigned long long)a->matvecs, (unsigned long long)a->lanczos_matvecs,
           r->job_seconds, (unsigned long long)b->matvecs, (unsigned long long)b->slq_probes,
           (unsigned long long)b->slq_steps,
           b->slq_probes ? (double)b->slq_steps_total / (double)b->slq_probes : 0.0,
           (unsigned long long)b->slq_settled, (unsigned long long)b->slq_matvecs,
           (unsigned long long)b->slq_budget, b->slq_stop, r->job_seconds / r->job0_seconds);
    printf("  matvec ratio %.2f; seconds: Lanczos %.2f / %.2f, SLQ %.2f\n",
           (double)b->matvecs / (double)a->matvecs, a->lanczos_seconds, b->lanczos_seconds,
           b->slq_seconds);
    printf("  z            SLQ (defaults) +- SE   change at half steps   reference%s\n",
           c ? "" : " (none: --slq-ref 0)");
    for (size_t j = 0; b->n_eff_slq && j < b->m; ++j) {
        printf("  %-12g %-10.6g +- %-8.2g %-10.2g%s", b->z[j], b->n_eff_slq[j], b->n_eff_slq_se[j],
               b->n_eff_slq_bias[j], b->slq_flags && b->slq_flags[j] ? " (flagged)" : "          ");
        if (c && c->n_eff_slq) {
            double d = b->n_eff_slq[j] - c->n_eff_slq[j];
            printf("   %.6g +- %.2g (%llu x %llu): %.2f SE (%.2f combined SE)", c->n_eff_slq[j],
                   c->n_eff_slq_se[j], (unsigned long long)c->slq_probes,
                   (unsigned long long)c->slq_steps, fabs(d) / b->n_eff_slq_se[j],
                   fabs(d) / hypot(b->n_eff_slq_se[j], c->n_eff_slq_se[j]));
        }
        printf("\n");
    }
    size_t at;
    double w = worst_se_distance(r, &at);
    if (isfinite(w))
        printf("  worst |defaults - reference| = %.2f SE at z = %g; target <= 2 (reference %s)\n",
               w, b->z[at], r->ref_file ? r->ref_file : "run here, see the seconds above");
    if (c && !r->ref_file)
        printf("  reference: %.1f s, %llu products\n", r->ref_seconds,
               (unsigned long long)c->matvecs);
}

static cJSON *slq_json(const results *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "probes0_seconds", r->job0_seconds);
    cJSON_AddNumberToObject(j, "default_seconds", r->job_seconds);
    cJSON_AddNumberToObject(j, "ratio", r->job_seconds / r->job0_seconds);
    cJSON_AddNumberToObject(j, "default_matvecs", (double)r->job->matvecs);
    cJSON_AddNumberToObject(j, "slq_probes", (double)r->job->slq_probes);
    cJSON_AddNumberToObject(j, "slq_steps_total", (double)r->job->slq_steps_total);
    cJSON_AddNumberToObject(j, "slq_settled", (double)r->job->slq_settled);
    cJSON_AddNumberToObject(j, "slq_matvecs", (double)r->job->slq_matvecs);
    cJSON_AddNumberToObject(j, "slq_budget", (double)r->job->slq_budget);
    cJSON_AddNumberToObject(j, "probes0_matvecs", (double)r->job0->matvecs);
    cJSON_AddStringToObject(j, "slq_stop", r->job->slq_stop);
    cJSON_AddItemToObject(j, "z", cli_json_doubles(r->job->z, r->job->m));
    if (r->job->n_eff_slq) {
        cJSON_AddItemToObject(j, "n_eff_slq", cli_json_doubles(r->job->n_eff_slq, r->job->m));
        cJSON_AddItemToObject(j, "n_eff_slq_se", cli_json_doubles(r->job->n_eff_slq_se, r->job->m));
    }
    if (r->ref && r->ref->n_eff_slq) {
        size_t at;
        cJSON_AddItemToObject(j, "reference_n_eff_slq",
                              cli_json_doubles(r->ref->n_eff_slq, r->ref->m));
        cJSON_AddNumberToObject(j, "reference_seconds", r->ref_seconds);
        cJSON_AddNumberToObject(j, "reference_probes", (double)r->ref->slq_probes);
        cJSON_AddNumberToObject(j, "reference_steps", (double)r->ref->slq_steps);
        cJSON_AddItemToObject(j, "reference_n_eff_slq_se",
                              cli_json_doubles(r->ref->n_eff_slq_se, r->ref->m));
        cJSON_AddNumberToObject(j, "worst_se_distance", worst_se_distance(r, &at));
    }
    return j;
}

int bench_spectrum(int argc, char **argv)
{
    sb_opts o = {.n = 10000, .epochs = 10, .threads = 2, .k = 20, .tol = 1e-6, .repeat = 5,
                 .chunk = 512, .hvp = EFFDIM_HVP_EXACT, .cache = 1, .torch = 1,
                 .ref_probes = 200, .ref_steps = 300};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    effdim_blas_set_threads(o.threads);
    effdim_error err;
    memset(&err, 0, sizeof err);
    results r;
    memset(&r, 0, sizeof r);
    model md;
    memset(&md, 0, sizeof md);
    effdim_dataset *ds = NULL;
    cJSON *torch = NULL;
    char spec[512], tmpdir[] = "/tmp/effdim-bench-spectrum-XXXXXX", ckpt_path[PATH_MAX];
    int have_tmp = 0;
    rc = CLI_EXIT_FAIL;
    r.rss_base = current_rss_bytes();
    r.eig = calloc(o.k, sizeof(double));
    r.res = calloc(o.k, sizeof(double));
    if (o.data) snprintf(spec, sizeof spec, "%s", o.data);
    else snprintf(spec, sizeof spec, "fashion-mnist:train:n=%zu", o.n);
    fprintf(stderr, "effdim bench spectrum: loading %s\n", spec);
    if (effdim_dataset_from_spec(spec, &ds, &err)) goto fail;
    effdim_status st = o.ckpt ? load_model(&md, o.ckpt, &err) : EFFDIM_OK;
    if (!st && !o.ckpt) {
        fprintf(stderr, "effdim bench spectrum: training %zu epoch(s) of Adam\n", o.epochs);
        st = train_model(&md, ds, o.epochs, o.chunk, &err);
    }
    if (st || effdim_mlp_check_data(&md.m, ds, spec, &err)) goto fail;
    r.data_bytes = (double)(ds->n * ds->d * sizeof(double) + ds->n * sizeof(int32_t));
    if (measure(&o, &md, ds, &r, &err)) goto fail;
    if (r.lanczos_status == EFFDIM_EMAXITER)
        cli_errorf(CMD, 0, "Lanczos stopped at its matvec limit: %zu of %zu converged",
                   r.stats.nconv, o.k);
    /* the bound: data + basis + workspace + 8 gradient-sized vectors (theta copies,
     * FD points and gradients, the probe and result), plus 20% */
    r.vec_bytes = 8.0 * (double)md.m.n_params * 8.0;
    r.bound = 1.2 * (r.data_bytes + r.basis_bytes + r.ws_bytes + r.vec_bytes);
    if (o.slq && measure_slq(&o, &md, ds, &r, &err)) goto fail;

    if (o.torch) {
        if (o.keep) {
            snprintf(ckpt_path, sizeof ckpt_path, "%s", o.keep);
        } else if (mkdtemp(tmpdir)) {
            have_tmp = 1;
            snprintf(ckpt_path, sizeof ckpt_path, "%s/model.h5", tmpdir);
        }
        effdim_checkpoint *c = NULL;
        if (effdim_checkpoint_alloc(&md.m, md.theta, &c, &err) ||
            effdim_checkpoint_set_provenance(c, spec, NULL, 1, &err) ||
            effdim_checkpoint_save(c, ckpt_path, &err)) {
            effdim_checkpoint_free(c);
            goto fail;
        }
        effdim_checkpoint_free(c);
        torch = run_torch(&o, ckpt_path, ds);
    }
    if (o.json) {
        cli_json_print(summary_json(&o, &md, ds, &r, torch));
        torch = NULL;
    } else {
        print_text(&o, &md, ds, &r, torch);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    cli_fail(CMD, &err);
done:
    if (have_tmp) {
        unlink(ckpt_path);
        rmdir(tmpdir);
    }
    cJSON_Delete(torch);
    effdim_dataset_free(ds);
    free(md.theta);
    free(r.eig);
    free(r.res);
    effdim_spectrum_free(r.job0);
    effdim_spectrum_free(r.job);
    effdim_spectrum_free(r.ref);
    return rc;
}
