/* tools/cmd_spectrum.c: `effdim spectrum`, the dominant curvature of a checkpoint.
 *
 *   effdim spectrum CKPT [--data SPEC] [-k 20] [--which top|bottom|both]
 *       [--op hessian|ggn] [--hvp fd|fd-forward|exact] [--z 1,10,100] [--tol 1e-8]
 *       [--density] [--save-vectors] [--per-layer] [--subset N] [--probes 30]
 *       [--slq-steps M] [--neg-policy zero|abs|asis] [--prior DELTA] [--seed S]
 *       [--threads T] [--allow-partial] [--dense [--force] [--dense-limit N]]
 *       -o spectrum.h5 [--json]
 *
 * Loads the checkpoint and its training data (the spec recorded in
 * /training data_spec unless --data is given), builds the curvature operator
 * (lib/hvp.c), finds the k extreme eigenpairs by thick-restart Lanczos
 * (lib/lanczos.c) with a progress line, computes N_eff(z) = sum_i lambda_i /
 * (lambda_i + z) over the Ritz values (Maddox, Benton, Wilson 2020) and, over
 * the whole spectrum, by stochastic Lanczos quadrature with the converged top
 * eigenpairs deflated, with standard errors and a quadrature-bias diagnostic
 * (the change from halving the steps) and a warning when the SLQ N_eff is
 * unreliable (effdim_slq_neff_flag); the Hutch++ trace; optionally the
 * spectral density and per-layer spectra (the operator restricted to each
 * layer's weights and bias); with --dense, the exact whole spectrum of a
 * small model: the dense matrix of the same operator by P products
 * (effdim_operator_to_dense), symmetrised, all eigenvalues by LAPACK dsyev
 * and N_eff over them (the reference SLQ estimates). Writes the spectrum file (effdim/spectrum.h)
 * atomically at the very end, so a failed run leaves no output file, and
 * prints a readable summary (or --json). Exit 3 when fewer than k pairs
 * converged (the file is written), unless --allow-partial.
 */
#include <getopt.h>
#include <gsl/gsl_rng.h>
#include <libgen.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/operator.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"
#include "internal.h"

#define CMD "spectrum"
#define MAX_Z 64
#define DENSE_LIMIT 5000 /* --dense refuses larger P unless --force */

typedef struct sp_opts {
    const char *ckpt;
    const char *data;
    const char *out;
    size_t k;
    effdim_lanczos_which which;
    effdim_curvature op;
    effdim_hvp_method hvp;
    int hvp_given;
    double z[MAX_Z];
    size_t nz;
    double tol;
    int density;
    int save_vectors;
    int per_layer;
    size_t subset;
    size_t probes;
    size_t slq_steps;
    int allow_partial;
    effdim_neg_policy neg;
    double prior;
    uint64_t seed;
    int threads;
    size_t basis;
    size_t max_matvecs;
    size_t chunk;
    int no_cache;
    int json;
    int dense;
    int force;
    size_t dense_limit;
} sp_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim spectrum CKPT -o OUT.h5 [options]\n\n"
            "Extreme eigenvalues of the loss Hessian (or Gauss-Newton matrix) of a checkpoint\n"
            "by Lanczos, effective dimensionality N_eff(z) = sum_i lambda_i/(lambda_i + z) from\n"
            "the Ritz values and over the whole spectrum (stochastic Lanczos quadrature), and\n"
            "the trace; written to an effdim.spectrum HDF5 file (docs/file-formats.md).\n\n"
            "  -o, --output FILE    the spectrum file (required; written only on success)\n"
            "  --data SPEC          data (default: the spec recorded in the checkpoint)\n"
            "  --subset N           use N rows of the data drawn at random (seeded by --seed)\n"
            "  -k, --k K            eigenpairs (default 20)\n"
            "  --which W            top | bottom | both (default top)\n"
            "  --op OP              hessian | ggn (default hessian)\n"
            "  --hvp M              fd | fd-forward | exact (default fd; ggn is always exact)\n"
            "  --prior DELTA        add DELTA * I (weight decay on the loss's scale; default 0)\n"
            "  --z LIST             z values for N_eff (default 1,10,100)\n"
            "  --tol T              relative residual tolerance (default 1e-8)\n"
            "  --probes P           probes for SLQ and the trace (default 30; 0 = skip both)\n"
            "  --slq-steps M        Lanczos steps per SLQ probe (default %zu); more steps\n"
            "                       resolve small z on indefinite spectra (see the warning)\n"
            "  --neg-policy P       negative eigenvalues in N_eff: zero | abs | asis\n"
            "                       (default zero: counted as 0)\n"
            "  --density            also the spectral density on a grid\n"
            "  --save-vectors       also store the eigenvectors (k x P doubles)\n"
            "  --per-layer          also the top eigenvalues of each layer's block\n"
            "  --basis M            Lanczos basis size (default 2k + 60)\n"
            "  --max-matvecs N      stop Lanczos after N products (default 5000)\n"
            "  --chunk C            rows per pass (default: the library's, 512)\n"
            "  --no-cache           exact/ggn: recompute the forward pass in every product\n"
            "                       instead of keeping it (the cache holds ~the widths of\n"
            "                       every layer per row; results are bitwise the same)\n"
            "  --seed S             seed for the start vector, probes and subset (default 0)\n"
            "  --threads T          OpenBLAS threads (default: OpenBLAS's own)\n"
            "  --allow-partial      exit 0 when fewer than k pairs converged (default: exit 3)\n"
            "  --dense              also the exact whole spectrum: the dense P x P operator by\n"
            "                       P products, all eigenvalues (LAPACK) and N_eff over them,\n"
            "                       beside the SLQ estimate (P^2 x 8 bytes; small models)\n"
            "  --dense-limit N      the largest P --dense accepts (default %d)\n"
            "  --force              --dense above --dense-limit anyway\n"
            "  --json               print a JSON summary instead of text\n"
            "  -h, --help           this help\n\n"
            "Exit status: 0 ok; 1 runtime failure; 2 usage; 3 partial result: the file is\n"
            "written but fewer than k eigenpairs converged (0 with --allow-partial).\n",
            effdim_slq_default_params().steps, DENSE_LIMIT);
}

/* the long options (values above any character) */
enum { O_DATA = 256, O_WHICH, O_OP, O_HVP, O_Z, O_TOL, O_DENSITY, O_VECTORS, O_PER_LAYER,
       O_SUBSET, O_PROBES, O_NEG, O_PRIOR, O_SEED, O_THREADS, O_BASIS, O_MAXMV, O_CHUNK,
       O_JSON, O_NOCACHE, O_SLQ_STEPS, O_PARTIAL, O_DENSE, O_FORCE, O_DENSE_LIMIT };

static int parse_one(void *ctx, int c, const char *arg)
{
    sp_opts *o = ctx;
    effdim_error err;
    int rc = 0;
    switch (c) {
    case 'o': o->out = arg; break;
    case 'k':
        rc = cli_parse_size(CMD, "-k", arg, &o->k);
        if (!rc && o->k < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "-k: expected at least 1");
        break;
    case O_DATA: o->data = arg; break;
    case O_WHICH:
        if (effdim_lanczos_which_parse(arg, &o->which, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--which: '%s', expected top, bottom or both",
                            arg);
        break;
    case O_OP:
        if (effdim_curvature_parse(arg, &o->op, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--op: %s", err.msg);
        break;
    case O_HVP:
        if (effdim_hvp_method_parse(arg, &o->hvp, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--hvp: %s", err.msg);
        o->hvp_given = 1;
        break;
    case O_Z:
        rc = cli_parse_double_list(CMD, "--z", arg, o->z, MAX_Z, &o->nz);
        for (size_t i = 0; !rc && i < o->nz; ++i)
            if (!(o->z[i] > 0))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--z: %g, expected values > 0", o->z[i]);
        break;
    case O_TOL:
        rc = cli_parse_double(CMD, "--tol", arg, &o->tol);
        if (!rc && !(o->tol > 0 && o->tol < 1))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--tol: %s, expected 0 < tol < 1", arg);
        break;
    case O_DENSITY: o->density = 1; break;
    case O_VECTORS: o->save_vectors = 1; break;
    case O_PER_LAYER: o->per_layer = 1; break;
    case O_SUBSET:
        rc = cli_parse_size(CMD, "--subset", arg, &o->subset);
        if (!rc && o->subset < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--subset: at least 1");
        break;
    case O_PROBES: rc = cli_parse_size(CMD, "--probes", arg, &o->probes); break;
    case O_SLQ_STEPS:
        rc = cli_parse_size(CMD, "--slq-steps", arg, &o->slq_steps);
        if (!rc && o->slq_steps < 2)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-steps: %s, expected at least 2", arg);
        break;
    case O_PARTIAL: o->allow_partial = 1; break;
    case O_NEG:
        if (effdim_neg_policy_parse(arg, &o->neg, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--neg-policy: '%s', expected zero, abs or asis",
                            arg);
        break;
    case O_PRIOR:
        rc = cli_parse_double(CMD, "--prior", arg, &o->prior);
        if (!rc && o->prior < 0)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--prior: %s, expected a value >= 0", arg);
        break;
    case O_SEED: rc = cli_parse_u64(CMD, "--seed", arg, &o->seed); break;
    case O_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case O_BASIS: rc = cli_parse_size(CMD, "--basis", arg, &o->basis); break;
    case O_MAXMV: rc = cli_parse_size(CMD, "--max-matvecs", arg, &o->max_matvecs); break;
    case O_CHUNK: rc = cli_parse_chunk(CMD, arg, &o->chunk); break;
    case O_JSON: o->json = 1; break;
    case O_NOCACHE: o->no_cache = 1; break;
    case O_DENSE: o->dense = 1; break;
    case O_FORCE: o->force = 1; break;
    case O_DENSE_LIMIT:
        rc = cli_parse_size(CMD, "--dense-limit", arg, &o->dense_limit);
        if (!rc && o->dense_limit < 1)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--dense-limit: %s, expected at least 1", arg);
        break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static int parse_opts(int argc, char **argv, sp_opts *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},      {"k", required_argument, 0, 'k'},
        {"data", required_argument, 0, O_DATA},     {"which", required_argument, 0, O_WHICH},
        {"op", required_argument, 0, O_OP},         {"hvp", required_argument, 0, O_HVP},
        {"z", required_argument, 0, O_Z},           {"tol", required_argument, 0, O_TOL},
        {"density", no_argument, 0, O_DENSITY},     {"save-vectors", no_argument, 0, O_VECTORS},
        {"per-layer", no_argument, 0, O_PER_LAYER}, {"subset", required_argument, 0, O_SUBSET},
        {"probes", required_argument, 0, O_PROBES}, {"neg-policy", required_argument, 0, O_NEG},
        {"prior", required_argument, 0, O_PRIOR},   {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"basis", required_argument, 0, O_BASIS},
        {"max-matvecs", required_argument, 0, O_MAXMV}, {"chunk", required_argument, 0, O_CHUNK},
        {"json", no_argument, 0, O_JSON},           {"help", no_argument, 0, 'h'},
        {"no-cache", no_argument, 0, O_NOCACHE},   {"slq-steps", required_argument, 0, O_SLQ_STEPS},
        {"allow-partial", no_argument, 0, O_PARTIAL}, {"dense", no_argument, 0, O_DENSE},
        {"force", no_argument, 0, O_FORCE},         {"dense-limit", required_argument, 0, O_DENSE_LIMIT},
        {0, 0, 0, 0},
    };
    int rc = cli_getopt_loop(CMD, argc, argv, ":o:k:h", longopts, parse_one, o, usage);
    if (rc) return rc;
    if (optind >= argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "missing the checkpoint (effdim spectrum CKPT -o OUT.h5)");
    o->ckpt = argv[optind++];
    if (optind < argc) return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!o->out) return cli_errorf(CMD, CLI_EXIT_USAGE, "missing -o OUT.h5 (the spectrum file to write)");
    if (o->op == EFFDIM_CURV_GGN) {
        if (o->hvp_given && o->hvp != EFFDIM_HVP_EXACT)
            return cli_errorf(CMD, CLI_EXIT_USAGE,
                              "--hvp %s: Gauss-Newton products are always exact (omit --hvp or use exact)",
                              effdim_hvp_method_name(o->hvp));
        o->hvp = EFFDIM_HVP_EXACT;
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct run {
    const sp_opts *o;
    effdim_checkpoint *ck;
    const char *spec;             /* --data, or the checkpoint's (owned by ck) */
    effdim_dataset *ds;
    size_t *rows;                 /* (n_rows) sorted subset, or NULL */
    size_t n_rows;
    effdim_operator *op;
    effdim_hvp_info info;
    effdim_lanczos_workspace *lw;
    effdim_lanczos_solution sol;
    double lanczos_seconds;
    double neff[MAX_Z];
    int have_slq;
    double slq[MAX_Z], slq_se[MAX_Z], slq_bias[MAX_Z];
    unsigned slq_flags[MAX_Z];
    char slq_warning[1024];       /* "" when the SLQ N_eff looks reliable */
    double slq_lambda_min;        /* smallest Ritz value seen: SLQ nodes, Lanczos pairs */
    effdim_slq_info slq_info;
    int have_trace;
    double trace, trace_se;
    size_t trace_matvecs;
    double *grid, *density;       /* (ngrid) */
    size_t ngrid;
    double sigma;
    effdim_spectrum_layer *layers;
    size_t n_layers;
    double *dense_w;              /* (P) all eigenvalues, descending (--dense) */
    double dense_neff[MAX_Z];
    double dense_asym;
    double dense_seconds;
    size_t dense_matvecs;
    char sha[65];
    double t0;
} run;

static void run_free(run *r)
{
    effdim_lanczos_free(r->lw);
    effdim_operator_free(r->op);
    effdim_dataset_free(r->ds);
    effdim_checkpoint_free(r->ck);
    free(r->rows);
    free(r->grid);
    free(r->density);
    free(r->dense_w);
    for (size_t l = 0; l < r->n_layers; ++l) {
        free(r->layers[l].eigenvalues);
        free(r->layers[l].residuals);
        free(r->layers[l].n_eff);
    }
    free(r->layers);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* checkpoint, data (recorded spec unless --data), fit check, subset */
static effdim_status load_inputs(run *r, effdim_error *err)
{
    const sp_opts *o = r->o;
    effdim_status st = cli_load_model_and_data(o->ckpt, o->data, &r->ck, &r->spec, &r->ds, err);
    if (st) return st;
    r->n_rows = r->ds->n;
    if (o->subset && o->subset < r->ds->n) {
        r->rows = effdim_alloc(o->subset, sizeof *r->rows, "subset rows", err);
        gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
        if (!r->rows || !g) {
            if (g) gsl_rng_free(g);
            return effdim_error_set(err, EFFDIM_ENOMEM, "out of memory for the subset");
        }
        gsl_rng_set(g, (unsigned long)o->seed);
        /* selection sampling (Knuth, TAOCP vol. 2, Algorithm S): sorted, uniform */
        size_t need = o->subset;
        for (size_t i = 0, got = 0; got < need; ++i)
            if ((double)(r->ds->n - i) * gsl_rng_uniform(g) < (double)(need - got))
                r->rows[got++] = i;
        gsl_rng_free(g);
        qsort(r->rows, need, sizeof *r->rows, cmp_size);
        r->n_rows = need;
    }
    return EFFDIM_OK;
}

static effdim_status build_operator(run *r, effdim_error *err)
{
    effdim_hvp_params p = effdim_hvp_default_params();
    p.curvature = r->o->op;
    p.method = r->o->hvp;
    p.prior = r->o->prior;
    p.chunk = r->o->chunk;
    p.cache = !r->o->no_cache && r->o->hvp == EFFDIM_HVP_EXACT;
    effdim_status st = effdim_hvp_operator(&r->ck->mlp, r->ck->theta, r->ds, r->rows, r->n_rows, &p,
                                           NULL, &r->op, err);
    if (!st) st = effdim_hvp_get_info(r->op, &r->info, err);
    return st;
}

static effdim_lanczos_params lanczos_params(const sp_opts *o, size_t k, size_t n, int vectors)
{
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = k;
    lp.which = o->which;
    lp.tol = o->tol;
    lp.seed = o->seed;
    lp.m = o->basis;
    if (lp.m && lp.m > n) lp.m = n;
    lp.max_matvecs = o->max_matvecs;
    lp.want_vectors = vectors;
    return lp;
}

static effdim_status lanczos_top(run *r, effdim_error *err)
{
    const sp_opts *o = r->o;
    size_t n = r->op->n;
    size_t k = o->k < n ? o->k : n;
    int vectors = o->save_vectors || o->probes > 0;
    effdim_lanczos_params lp = lanczos_params(o, k, n, vectors);
    r->lw = effdim_lanczos_alloc(n, &lp, err);
    if (!r->lw) return err->code ? err->code : EFFDIM_ENOMEM;
    cli_progress pr;
    cli_progress_init(&pr);
    double t0 = effdim_now();
    effdim_status st = effdim_lanczos_init(r->lw, r->op, NULL, err);
    while (!st || st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(r->lw, err);
        effdim_lanczos_progress p;
        effdim_lanczos_get_progress(r->lw, &p);
        if (isfinite(p.theta_max))
            cli_progress_update(&pr, -1.0, "lanczos: %zu matvecs, %zu restarts, %zu/%zu converged, "
                                "extreme Ritz values %.6g .. %.6g",
                                p.matvecs, p.restarts, p.nconv, p.k, p.theta_min, p.theta_max);
        if (st != EFFDIM_ECONTINUE) break;
    }
    cli_progress_done(&pr);
    r->lanczos_seconds = effdim_now() - t0;
    if (st != EFFDIM_OK && st != EFFDIM_EMAXITER) return st;
    if (st == EFFDIM_EMAXITER)
        fprintf(stderr, "effdim spectrum: warning: %s; writing the partial results\n", err->msg);
    return effdim_lanczos_result(r->lw, &r->sol, err);
}

/* The converged Ritz vectors, compacted, for deflation (NULL when none). */
static double *converged_vectors(const run *r, size_t *kd, double **vals, effdim_error *err)
{
    size_t n = r->sol.n, c = 0;
    *kd = 0;
    *vals = NULL;
    if (!r->sol.vectors) return NULL;
    for (size_t i = 0; i < r->sol.k; ++i) c += r->sol.converged[i] != 0;
    if (!c || c >= n) return NULL;
    double *V = effdim_alloc(c * n, sizeof(double), "deflation vectors", err);
    double *w = effdim_alloc(c, sizeof(double), "deflation values", err);
    if (!V || !w) {
        free(V);
        free(w);
        return NULL;
    }
    for (size_t i = 0, j = 0; i < r->sol.k; ++i)
        if (r->sol.converged[i]) {
            memcpy(V + j * n, r->sol.vectors + i * n, n * sizeof(double));
            w[j++] = r->sol.eigenvalues[i];
        }
    *kd = c;
    *vals = w;
    return V;
}

/* "0.001, 0.01" into buf: the z whose flags include `flag` */
static size_t list_flagged(const run *r, unsigned flag, char *buf, size_t cap)
{
    size_t n = 0, len = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < r->o->nz; ++j)
        if ((r->slq_flags[j] & flag) && len < cap) {
            len += (size_t)snprintf(buf + len, cap - len, "%s%g", n ? ", " : "", r->o->z[j]);
            ++n;
        }
    return n;
}

/* Flags each z (effdim_slq_neff_flag) and, when any is flagged, writes the
 * warning (kept in the file and the JSON) and prints it on stderr. */
static void slq_check(run *r)
{
    const sp_opts *o = r->o;
    double lmin = r->slq_info.lambda_min;
    for (size_t i = 0; i < r->sol.k; ++i) lmin = fmin(lmin, r->sol.eigenvalues[i]);
    r->slq_lambda_min = lmin;
    for (size_t j = 0; j < o->nz; ++j)
        r->slq_flags[j] = effdim_slq_neff_flag(lmin, r->slq_info.gap0, o->z[j], o->neg,
                                               r->slq_se[j], r->slq_bias[j]);
    char neg[256], bias[256];
    size_t nn = list_flagged(r, EFFDIM_SLQ_FLAG_NEGATIVE, neg, sizeof neg);
    size_t nb = list_flagged(r, EFFDIM_SLQ_FLAG_BIAS, bias, sizeof bias);
    if (!nn && !nb) return;
    size_t len = (size_t)snprintf(r->slq_warning, sizeof r->slq_warning,
                                  "the SLQ N_eff is unreliable beyond its SE:");
    if (nn && len < sizeof r->slq_warning)
        len += (size_t)snprintf(r->slq_warning + len, sizeof r->slq_warning - len,
                                " at z = %s the smallest Ritz value %.3g is < 0 and the %s "
                                "policy puts a kink at 0 that %zu Gauss nodes per probe do not "
                                "resolve (node gap at 0: %.2g);",
                                neg, lmin, effdim_neg_policy_name(o->neg), r->slq_info.steps,
                                r->slq_info.gap0);
    if (nb && len < sizeof r->slq_warning)
        len += (size_t)snprintf(r->slq_warning + len, sizeof r->slq_warning - len,
                                " at z = %s the quadrature changes by more than 2 SE between "
                                "%zu and %zu steps;",
                                bias, r->slq_info.half_steps, r->slq_info.steps);
    if (len < sizeof r->slq_warning)
        snprintf(r->slq_warning + len, sizeof r->slq_warning - len,
                 " use more --slq-steps (now %zu), a larger z, or compare with the Ritz sum "
                 "over a larger -k",
                 r->slq_info.steps);
    fprintf(stderr, "effdim spectrum: warning: %s\n", r->slq_warning);
}

/* SLQ over the whole spectrum (deflating the converged pairs), the density,
 * and the Hutch++ trace. */
static effdim_status whole_spectrum(run *r, effdim_error *err)
{
    const sp_opts *o = r->o;
    if (o->probes == 0) return EFFDIM_OK;
    size_t n = r->op->n, kd = 0;
    double *vals = NULL, *V = converged_vectors(r, &kd, &vals, err);
    if (!V && err->code == EFFDIM_ENOMEM) return EFFDIM_ENOMEM;
    effdim_slq_params sp = effdim_slq_default_params();
    sp.probes = o->probes < 2 ? 2 : o->probes;
    sp.seed = o->seed;
    sp.steps = o->slq_steps;
    /* probes share the operator's block apply while their bases stay under 256 MiB */
    size_t per = (sp.steps + 1) * n * sizeof(double);
    sp.block = per ? (size_t)(256u << 20) / per : 1;
    sp.block = sp.block < 1 ? 1 : sp.block > 8 ? 8 : sp.block;
    if (sp.block > sp.probes) sp.block = sp.probes;
    effdim_slq *s = NULL;
    fprintf(stderr, "effdim spectrum: SLQ, %zu probes x %zu steps, %zu pairs deflated\n", sp.probes,
            sp.steps, kd);
    effdim_status st = effdim_slq_run(r->op, &sp, vals, V, kd, &s, err);
    free(V);
    free(vals);
    if (!st) st = effdim_slq_neff(s, o->z, o->nz, o->neg, r->slq, r->slq_se, err);
    if (!st) st = effdim_slq_neff_bias(s, o->z, o->nz, o->neg, r->slq_bias, err);
    if (!st) {
        effdim_slq_get_info(s, &r->slq_info);
        r->have_slq = 1;
        slq_check(r);
    }
    if (!st && o->density) {
        r->ngrid = 400;
        r->grid = effdim_alloc(r->ngrid, sizeof(double), "density grid", err);
        r->density = effdim_alloc(r->ngrid, sizeof(double), "density", err);
        double span = r->slq_info.lambda_max - r->slq_info.lambda_min;
        r->sigma = span > 0 ? 0.01 * span : 1e-3;
        st = !r->grid || !r->density ? EFFDIM_ENOMEM
                                     : effdim_slq_grid(s, r->ngrid, 3.0 * r->sigma, r->grid, err);
        if (!st) st = effdim_slq_density(s, r->grid, r->ngrid, r->sigma, r->density, err);
    }
    effdim_slq_free(s);
    if (st) return st;
    size_t before = r->op->vectors;
    r->trace_matvecs = o->probes < 3 ? 3 : o->probes;
    fprintf(stderr, "effdim spectrum: Hutch++ trace, %zu matvecs\n", r->trace_matvecs);
    st = effdim_hutchpp(r->op, r->trace_matvecs, o->seed, &r->trace, &r->trace_se, err);
    r->trace_matvecs = r->op->vectors - before;
    r->have_trace = !st;
    return st;
}

/* --dense on a model above the limit: refused before any product, naming P,
 * the limit, the memory and the products it would take. */
static int dense_refused(const run *r)
{
    const sp_opts *o = r->o;
    size_t P = r->op->n;
    if (!o->dense || o->force || P <= o->dense_limit) return 0;
    double bytes = (double)P * (double)P * 8.0;
    cli_errorf(CMD, CLI_EXIT_USAGE,
               "--dense: P = %zu parameters is above the limit %zu (--dense-limit); the dense "
               "matrix would take P^2 x 8 = %.0f bytes (%.1f MiB, twice that while LAPACK "
               "runs) and %zu matvecs; use --force to run it anyway",
               P, o->dense_limit, bytes, bytes / 1048576.0, P);
    return 1;
}

/* The exact whole spectrum (--dense): the dense matrix of the same operator
 * by P products on unit vectors, symmetrised to (A + A^T)/2 (the asymmetry
 * before is kept: rounding for exact products, the FD error otherwise), all
 * eigenvalues by LAPACK dsyev, and N_eff over them with the same z and policy. */
static effdim_status dense_spectrum(run *r, effdim_error *err)
{
    const sp_opts *o = r->o;
    size_t P = r->op->n, count;
    RETURN_ERROR_IF(effdim_mul_size(P, P, &count), err, EFFDIM_ENOMEM,
                    "--dense: a %zu x %zu matrix overflows size_t", P, P);
    fprintf(stderr, "effdim spectrum: dense, %zu matvecs, a %.1f MiB matrix\n", P,
            (double)count * 8.0 / 1048576.0);
    double t0 = effdim_now();
    size_t before = r->op->vectors;
    double *A = effdim_alloc(count, sizeof(double), "the dense operator", err);
    r->dense_w = effdim_alloc(P, sizeof(double), "dense eigenvalues", err);
    if (!A || !r->dense_w) {
        free(A);
        return EFFDIM_ENOMEM;
    }
    effdim_status st = effdim_operator_to_dense(r->op, A, &r->dense_asym, err);
    r->dense_matvecs = r->op->vectors - before;
    if (!st) {
        for (size_t i = 0; i < P; ++i)
            for (size_t j = i + 1; j < P; ++j) {
                double m = 0.5 * (A[i * P + j] + A[j * P + i]);
                A[i * P + j] = A[j * P + i] = m;
            }
        st = effdim_dense_eigenvalues(P, A, r->dense_w, err);
    }
    free(A);
    if (!st) st = effdim_neff(r->dense_w, P, o->z, o->nz, o->neg, r->dense_neff, err);
    r->dense_seconds = effdim_now() - t0;
    return st;
}

/* The operator restricted to each layer's block (weight then bias). */
static effdim_status per_layer(run *r, effdim_error *err)
{
    const effdim_mlp *m = &r->ck->mlp;
    r->layers = effdim_calloc(m->n_layers, sizeof *r->layers, "per-layer spectra", err);
    if (!r->layers) return EFFDIM_ENOMEM;
    for (size_t l = 0; l < m->n_layers; ++l) {
        effdim_spectrum_layer *ly = &r->layers[l];
        effdim_mlp_layer_block(m, l, &ly->offset, &ly->size);
        size_t k = r->o->k < ly->size ? r->o->k : ly->size;
        effdim_operator *sub = NULL;
        effdim_status st = effdim_operator_restrict(r->op, ly->offset, ly->size, &sub, err);
        if (st) return st;
        ly->eigenvalues = effdim_alloc(k, sizeof(double), "layer eigenvalues", err);
        ly->residuals = effdim_alloc(k, sizeof(double), "layer residuals", err);
        ly->n_eff = effdim_alloc(r->o->nz, sizeof(double), "layer N_eff", err);
        r->n_layers = l + 1;
        if (!ly->eigenvalues || !ly->residuals || !ly->n_eff) {
            effdim_operator_free(sub);
            return EFFDIM_ENOMEM;
        }
        fprintf(stderr, "effdim spectrum: layer %zu (%zu parameters), top %zu\n", l, ly->size, k);
        effdim_lanczos_params lp = lanczos_params(r->o, k, ly->size, 0);
        effdim_lanczos_stats stats;
        st = effdim_lanczos_eigs(sub, &lp, ly->eigenvalues, NULL, ly->residuals, NULL, &stats, err);
        effdim_operator_free(sub);
        if (st == EFFDIM_EMAXITER) {
            fprintf(stderr, "effdim spectrum: warning: layer %zu: %s\n", l, err->msg);
            st = EFFDIM_OK;
        }
        if (st) return st;
        ly->k = k;
        st = effdim_neff(ly->eigenvalues, k, r->o->z, r->o->nz, r->o->neg, ly->n_eff, err);
        if (st) return st;
    }
    return EFFDIM_OK;
}

static effdim_status write_file(run *r, effdim_error *err)
{
    const sp_opts *o = r->o;
    effdim_spectrum s;
    effdim_spectrum_init(&s);
    s.checkpoint = (char *)o->ckpt;
    snprintf(s.checkpoint_sha256, sizeof s.checkpoint_sha256, "%s", r->sha);
    s.data_spec = (char *)r->spec;
    s.n = r->n_rows;
    s.n_params = r->ck->mlp.n_params;
    snprintf(s.loss, sizeof s.loss, "%s", effdim_loss_name(r->ck->mlp.loss));
    snprintf(s.reduction, sizeof s.reduction, "%s", effdim_reduction_name(r->ck->mlp.reduction));
    s.scale = r->info.scale;
    snprintf(s.op, sizeof s.op, "%s", effdim_curvature_name(o->op));
    snprintf(s.hvp_method, sizeof s.hvp_method, "%s", effdim_hvp_method_name(o->hvp));
    s.fd_eps = r->info.fd_step;
    s.prior = o->prior;
    snprintf(s.which, sizeof s.which, "%s", effdim_lanczos_which_name(o->which));
    s.tol = o->tol;
    s.seed = o->seed;
    s.steps = r->sol.stats.steps;
    s.matvecs = r->op->vectors; /* everything: Lanczos, SLQ, trace, per-layer (borrowed op) */
    s.lanczos_matvecs = r->sol.stats.matvecs;
    s.restarts = r->sol.stats.restarts;
    s.nconv = r->sol.stats.nconv;
    s.seconds = effdim_now() - r->t0;
    snprintf(s.neg_policy, sizeof s.neg_policy, "%s", effdim_neg_policy_name(o->neg));
    s.k = r->sol.k;
    s.eigenvalues = (double *)r->sol.eigenvalues;
    s.residuals = (double *)r->sol.residuals;
    s.residual_bounds = (double *)r->sol.residual_bounds;
    s.converged = (unsigned char *)r->sol.converged;
    s.eigenvectors = o->save_vectors ? (double *)r->sol.vectors : NULL;
    s.m = o->nz;
    s.z = (double *)o->z;
    s.n_eff = r->neff;
    if (r->have_slq) {
        s.n_eff_slq = r->slq;
        s.n_eff_slq_se = r->slq_se;
        s.n_eff_slq_bias = r->slq_bias;
        s.slq_warning = r->slq_warning;
        s.slq_probes = r->slq_info.probes;
        s.slq_steps = r->slq_info.steps;
        s.slq_deflated = r->slq_info.deflated;
    }
    if (r->have_trace) {
        s.has_trace = 1;
        s.trace = r->trace;
        s.trace_se = r->trace_se;
        snprintf(s.trace_method, sizeof s.trace_method, "hutch++");
        s.trace_probes = r->trace_matvecs;
        s.trace_matvecs = r->trace_matvecs;
    }
    if (r->ngrid) {
        s.n_grid = r->ngrid;
        s.grid = r->grid;
        s.density = r->density;
        s.density_sigma = r->sigma;
        s.density_probes = r->slq_info.probes;
        s.density_steps = r->slq_info.steps;
    }
    s.n_layers = r->n_layers;
    s.layers = r->layers;
    if (r->dense_w) {
        s.dense_eigenvalues = r->dense_w;
        s.n_eff_dense = (double *)r->dense_neff;
        s.dense_asymmetry = r->dense_asym;
    }
    return effdim_spectrum_save(&s, o->out, err);
}

/* ---- output ------------------------------------------------------------------------ */

static void print_summary(const run *r)
{
    const sp_opts *o = r->o;
    const effdim_mlp *m = &r->ck->mlp;
    const effdim_lanczos_solution *s = &r->sol;
    printf("checkpoint  %s (sha256 %.16s...), %zu parameters\n", o->ckpt, r->sha, m->n_params);
    printf("data        %s: %zu rows%s, loss %s (%s: the loss is %.6g x sum of per-example losses)\n",
           r->spec, r->n_rows, r->rows ? " (random subset)" : "", effdim_loss_name(m->loss),
           effdim_reduction_name(m->reduction), r->info.scale);
    printf("operator    %s, %s products", effdim_curvature_name(o->op), effdim_hvp_method_name(o->hvp));
    if (r->info.fd_step > 0) printf(" (step h = %.3g)", r->info.fd_step);
    if (o->prior > 0) printf(", prior %g", o->prior);
    printf("\nlanczos     %s %zu, tol %g: %zu/%zu converged, %zu matvecs (%zu steps, %zu restarts), "
           "%.2f s\n",
           effdim_lanczos_which_name(o->which), s->k, o->tol, s->stats.nconv, s->k, s->stats.matvecs,
           s->stats.steps, s->stats.restarts, r->lanczos_seconds);
    printf("   i  eigenvalue              residual   bound\n");
    for (size_t i = 0; i < s->k; ++i)
        printf("  %2zu  %-22.15g  %.2e   %.2e%s\n", i + 1, s->eigenvalues[i], s->residuals[i],
               s->residual_bounds[i], s->converged[i] ? "" : "  (not converged)");
    printf("N_eff       policy %s for negative eigenvalues\n", effdim_neg_policy_name(o->neg));
    printf("  %-12s %-14s %s%s\n", "z", "Ritz (k terms)", r->dense_w ? "exact (dense)  " : "",
           r->have_slq ? "whole spectrum (SLQ) +- SE (quadrature change at half the steps)" : "");
    for (size_t j = 0; j < o->nz; ++j) {
        printf("  %-12g %-14.6g", o->z[j], r->neff[j]);
        if (r->dense_w) printf(" %-14.6g", r->dense_neff[j]);
        if (r->have_slq)
            printf(" %.6g +- %.2g (quadrature change at half the steps: %.2g)%s", r->slq[j],
                   r->slq_se[j], r->slq_bias[j], r->slq_flags[j] ? "  UNRELIABLE" : "");
        printf("\n");
    }
    if (r->have_slq)
        printf("  (SLQ: %zu probes x %zu steps, %zu pairs deflated, %zu matvecs; smallest Ritz "
               "value %.4g)\n",
               r->slq_info.probes, r->slq_info.steps, r->slq_info.deflated, r->slq_info.matvecs,
               r->slq_lambda_min);
    if (r->dense_w)
        printf("  (dense: all %zu eigenvalues %.6g .. %.6g, %zu matvecs, %.2f s; asymmetry "
               "max|A - A^T| / max|A| = %.2g before symmetrising)\n",
               r->op->n, r->dense_w[0], r->dense_w[r->op->n - 1], r->dense_matvecs,
               r->dense_seconds, r->dense_asym);
    if (r->slq_warning[0]) printf("  warning: %s\n", r->slq_warning);
    if (r->have_trace)
        printf("trace       %.8g +- %.2g (Hutch++, %zu matvecs)\n", r->trace, r->trace_se,
               r->trace_matvecs);
    if (r->ngrid)
        printf("density     %zu points on [%.4g, %.4g], sigma %.3g\n", r->ngrid, r->grid[0],
               r->grid[r->ngrid - 1], r->sigma);
    for (size_t l = 0; l < r->n_layers; ++l) {
        const effdim_spectrum_layer *ly = &r->layers[l];
        printf("layer %-5zu %zu parameters: top %.8g, N_eff(z=%g) = %.4g over %zu Ritz values\n", l,
               ly->size, ly->eigenvalues[0], o->z[0], ly->n_eff[0], ly->k);
    }
    printf("total       %zu matvecs, %.2f s; wrote %s\n", r->op->vectors,
           effdim_now() - r->t0, o->out);
}

static cJSON *summary_json(const run *r)
{
    const sp_opts *o = r->o;
    const effdim_lanczos_solution *s = &r->sol;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "checkpoint", o->ckpt);
    cJSON_AddStringToObject(j, "checkpoint_sha256", r->sha);
    cJSON_AddStringToObject(j, "data_spec", r->spec);
    cJSON_AddNumberToObject(j, "n", (double)r->n_rows);
    cJSON_AddNumberToObject(j, "n_params", (double)r->ck->mlp.n_params);
    cJSON_AddStringToObject(j, "loss", effdim_loss_name(r->ck->mlp.loss));
    cJSON_AddStringToObject(j, "reduction", effdim_reduction_name(r->ck->mlp.reduction));
    cJSON_AddNumberToObject(j, "scale", r->info.scale);
    cJSON_AddStringToObject(j, "operator", effdim_curvature_name(o->op));
    cJSON_AddStringToObject(j, "hvp_method", effdim_hvp_method_name(o->hvp));
    cJSON_AddNumberToObject(j, "fd_eps", r->info.fd_step);
    cJSON_AddNumberToObject(j, "prior", o->prior);
    cJSON_AddStringToObject(j, "which", effdim_lanczos_which_name(o->which));
    cJSON_AddNumberToObject(j, "tol", o->tol);
    cJSON_AddItemToObject(j, "eigenvalues", cli_json_doubles(s->eigenvalues, s->k));
    cJSON_AddItemToObject(j, "residuals", cli_json_doubles(s->residuals, s->k));
    cJSON_AddItemToObject(j, "residual_bounds", cli_json_doubles(s->residual_bounds, s->k));
    cJSON_AddNumberToObject(j, "nconv", (double)s->stats.nconv);
    cJSON_AddNumberToObject(j, "steps", (double)s->stats.steps);
    cJSON_AddNumberToObject(j, "restarts", (double)s->stats.restarts);
    cJSON_AddItemToObject(j, "z", cli_json_doubles(o->z, o->nz));
    cJSON_AddItemToObject(j, "n_eff", cli_json_doubles(r->neff, o->nz));
    cJSON_AddStringToObject(j, "neg_policy", effdim_neg_policy_name(o->neg));
    if (r->have_slq) {
        cJSON_AddItemToObject(j, "n_eff_slq", cli_json_doubles(r->slq, o->nz));
        cJSON_AddItemToObject(j, "n_eff_slq_se", cli_json_doubles(r->slq_se, o->nz));
        cJSON_AddItemToObject(j, "n_eff_slq_bias", cli_json_doubles(r->slq_bias, o->nz));
        cJSON_AddNumberToObject(j, "slq_steps", (double)r->slq_info.steps);
        cJSON_AddNumberToObject(j, "slq_lambda_min", r->slq_lambda_min);
        if (r->slq_warning[0]) cJSON_AddStringToObject(j, "slq_warning", r->slq_warning);
    }
    if (r->dense_w) {
        cJSON_AddItemToObject(j, "n_eff_dense", cli_json_doubles(r->dense_neff, o->nz));
        cJSON_AddNumberToObject(j, "dense_asymmetry", r->dense_asym);
        cJSON_AddNumberToObject(j, "dense_matvecs", (double)r->dense_matvecs);
        cJSON_AddNumberToObject(j, "dense_lambda_min", r->dense_w[r->op->n - 1]);
    }
    if (r->have_trace) {
        cJSON_AddNumberToObject(j, "trace", r->trace);
        cJSON_AddNumberToObject(j, "trace_se", r->trace_se);
    }
    cJSON_AddNumberToObject(j, "matvecs", (double)(r->op->vectors));
    cJSON_AddNumberToObject(j, "seconds", effdim_now() - r->t0);
    cJSON_AddStringToObject(j, "output", o->out);
    return j;
}

int cmd_spectrum(int argc, char **argv)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.k = 20;
    o.which = EFFDIM_LANCZOS_LARGEST;
    o.op = EFFDIM_CURV_HESSIAN;
    o.hvp = EFFDIM_HVP_FD;
    o.z[0] = 1.0;
    o.z[1] = 10.0;
    o.z[2] = 100.0;
    o.nz = 3;
    o.tol = 1e-8;
    o.probes = 30;
    o.slq_steps = effdim_slq_default_params().steps;
    o.neg = EFFDIM_NEG_ZERO;
    o.max_matvecs = 5000;
    o.chunk = 0; /* the MLP default */
    o.dense_limit = DENSE_LIMIT;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *claim_in[] = {o.ckpt, o.data};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 2))) return rc;
    if (o.threads) effdim_set_num_threads(o.threads);

    /* fail before the work when the output cannot be created (the file itself is
     * written atomically at the end) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o.out);
    const char *d = dirname(dir);
    if (access(d, W_OK | X_OK) != 0)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: cannot write into the folder '%s'", o.out, d);

    run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.t0 = effdim_now();
    effdim_error err;
    effdim_error_clear(&err);
    effdim_status st = load_inputs(&r, &err);
    if (!st) st = effdim_file_sha256(o.ckpt, r.sha, &err);
    if (!st) st = build_operator(&r, &err);
    if (!st && dense_refused(&r)) {
        run_free(&r);
        return CLI_EXIT_USAGE;
    }
    if (!st) st = lanczos_top(&r, &err);
    if (!st) st = effdim_neff(r.sol.eigenvalues, r.sol.k, o.z, o.nz, o.neg, r.neff, &err);
    if (!st) st = whole_spectrum(&r, &err);
    if (!st && o.dense) st = dense_spectrum(&r, &err);
    if (!st && o.per_layer) st = per_layer(&r, &err);
    if (!st) st = write_file(&r, &err);
    if (st) {
        run_free(&r);
        return cli_fail(CMD, &err);
    }
    if (o.json) cli_json_print(summary_json(&r));
    else print_summary(&r);
    rc = CLI_EXIT_OK;
    if (r.sol.stats.nconv < r.sol.k) {
        fprintf(stderr, "effdim spectrum: %s: %zu of %zu eigenpairs converged%s\n",
                o.allow_partial ? "warning" : "partial result: the file is written, but only",
                r.sol.stats.nconv, r.sol.k,
                o.allow_partial ? " (--allow-partial: exit 0)"
                                : " (exit 3; raise --max-matvecs or --basis, or --allow-partial)");
        if (!o.allow_partial) rc = CLI_EXIT_PARTIAL;
    }
    run_free(&r);
    return rc;
}
