/* tools/cmd_compare.c: `effdim compare`, diagonal curvature estimates against
 * the spectrum, with a table, an HDF5 file and gnuplot figures.
 *
 *   effdim compare model.h5 [--spectrum spectrum.h5] [--diag diag.h5]
 *                  [--data SPEC] [--z LIST] -o compare.h5 [--plot-prefix out/cmp]
 *
 * What is compared (lib/compare.c; docs/diagonals.md): for every diagonal and
 * every block of coordinates (all of theta, then each layer's weight and
 * bias), N_eff(z) of the diagonal entries against N_eff of the eigenvalues;
 * traces (the diagonal's sum, the spectrum file's Hutchinson trace, the sum
 * of the top-k eigenvalues, the exact trace from the exact Hessian diagonal);
 * the sorted diagonal against the eigenvalues; Spearman's rho and relative
 * errors against the exact Hessian diagonal; the alignment of the top
 * eigenvectors with the coordinates of largest diagonal entries.
 *
 * Decisions:
 * - Missing inputs are computed with modest defaults: without --spectrum the
 *   top --k (20) eigenpairs of the exact Hessian (R-operator) by Lanczos (tol
 *   1e-6, with vectors); without --diag the diagonals --methods (ggn, ef,
 *   hessian and adam when the checkpoint has Adam state). The exact Hessian
 *   diagonal, when not in the diag file, is computed whenever its estimated
 *   cost is below --max-cost gradients (--no-exact skips it); without it the
 *   accuracy columns are empty.
 * - The z grid: --z, else the spectrum file's, else 13 values log-spaced
 *   from 1e-5 to 10 times the largest eigenvalue.
 * - Negative values in N_eff follow --neg-policy, else the spectrum file's
 *   policy, else "zero".
 * - Figures are drawn by gnuplot (Debian's gnuplot-nox, pngcairo terminal)
 *   from a script and data files in a temporary folder, which is removed:
 *   <prefix>-spectrum.png (eigenvalues and sorted diagonals, log-log) and
 *   <prefix>-neff.png (N_eff(z) curves).
 * Exit status: 0 done, 1 runtime failure (also when gnuplot is missing or
 * fails: the HDF5 file is written first), 2 bad usage.
 */
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/compare.h"
#include "effdim/data.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/sha256.h"
#include "effdim/spectrum.h"
#include "h5io.h"
#include "internal.h"

#define CMD "compare"
#define MAX_DIAGS 16
#define MAX_Z 64
#define N_FRAC 3

static const double fractions[N_FRAC] = {0.001, 0.01, 0.1};

typedef struct cmp_opts {
    const char *ckpt, *spectrum, *diag, *data, *out, *plot, *neg, *methods, *only, *save_spectrum;
    double z[MAX_Z];
    size_t nz, k, chunk;
    double max_cost;
    uint64_t seed;
    int no_exact, json, threads;
} cmp_opts;

/* The reference spectrum, loaded or computed. */
typedef struct ref_spec {
    effdim_spectrum *file;   /* when loaded (owns what the pointers below point at) */
    double *own_eig, *own_vec; /* when computed */
    double *own_res, *own_bnd; /* (k) true residuals and bounds, when computed */
    unsigned char *own_conv;   /* (k) */
    effdim_lanczos_stats stats;
    size_t k;
    const double *eig;       /* (k) descending */
    const double *vec;       /* (k, P) or NULL */
    const char *op;          /* "hessian" | "ggn" */
    const char *source;      /* the file, or "computed" */
    double seconds;
    size_t matvecs;
} ref_spec;

typedef struct cmp_run {
    cmp_opts *o;
    effdim_checkpoint *ckpt;
    effdim_dataset *ds;
    const char *spec;
    effdim_mlp_ws *ws;
    ref_spec ref;
    effdim_diag_file *dfile;
    size_t nd;
    char names[MAX_DIAGS][32];
    const double *diag[MAX_DIAGS];
    double *owned[MAX_DIAGS];
    const double *exact;     /* exact Hessian diagonal (one of diag[] or own) */
    double *exact_own;
    const char *exact_source;
    double *z;
    size_t m;
    double *bound;           /* (m) PSD upper bound on the full-spectrum N_eff, or NULL */
    const char *neg;
    size_t nblocks;
    char bname[EFFDIM_MLP_MAX_LAYERS + 1][32];
    size_t boff[EFFDIM_MLP_MAX_LAYERS + 1], blen[EFFDIM_MLP_MAX_LAYERS + 1];
    effdim_compare_result *res; /* (nd, nblocks) */
} cmp_run;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim compare CKPT [--spectrum S.h5] [--diag D.h5] -o COMPARE.h5 [options]\n\n"
            "Compare diagonal curvature estimates with the Hessian spectrum: N_eff(z), traces,\n"
            "sorted diagonals against eigenvalues, rank correlation and error against the exact\n"
            "Hessian diagonal, alignment of top eigenvectors; overall and per layer.\n\n"
            "inputs (computed when absent)\n"
            "  --spectrum FILE      from `effdim spectrum` (eigenvectors enable the alignment)\n"
            "  --diag FILE          from `effdim diag`\n"
            "  --only LIST          the diagonals of --diag to compare (default: all but\n"
            "                       adam-vhat, which is in squared-gradient units)\n"
            "  --data SPEC          data for anything computed (default: the checkpoint's)\n"
            "  --k K                eigenpairs to compute without --spectrum (default 20)\n"
            "  --save-spectrum F    save the computed spectrum (with eigenvectors) to F, an\n"
            "                       effdim.spectrum file that --spectrum reads back\n"
            "  --methods LIST       diagonals to compute without --diag (default\n"
            "                       ggn,ef,hessian,adam; adam only with Adam state)\n"
            "  --no-exact           do not compute the exact Hessian diagonal\n"
            "  --max-cost X         compute it only below X gradients of work (default 256)\n"
            "options\n"
            "  --z LIST             z values for N_eff (default: the spectrum file's)\n"
            "  --neg-policy P       zero, abs or asis for negative values in N_eff\n"
            "  --seed S             Lanczos start vector seed (default 0)\n"
            "  --chunk N            rows per pass (default: the library's, 512)\n"
            "  --threads T          OpenBLAS threads (default 2)\n"
            "  -o, --output FILE    the HDF5 file to write (atomically)\n"
            "  --plot-prefix P      write P-spectrum.png and P-neff.png with gnuplot\n"
            "  --json               print a JSON summary on stdout instead of the table\n"
            "  -h, --help           this help\n");
}

/* ======================================================================
 * Options
 * ====================================================================== */

enum {
    OPT_SPECTRUM = 256, OPT_DIAG, OPT_DATA, OPT_K, OPT_METHODS, OPT_NO_EXACT, OPT_MAX_COST, OPT_Z,
    OPT_NEG, OPT_SEED, OPT_CHUNK, OPT_THREADS, OPT_PLOT, OPT_JSON, OPT_ONLY, OPT_SAVE_SPECTRUM
};

static const struct option long_opts[] = {
    {"spectrum", required_argument, NULL, OPT_SPECTRUM},
    {"diag", required_argument, NULL, OPT_DIAG},
    {"only", required_argument, NULL, OPT_ONLY},
    {"save-spectrum", required_argument, NULL, OPT_SAVE_SPECTRUM},
    {"data", required_argument, NULL, OPT_DATA},
    {"k", required_argument, NULL, OPT_K},
    {"methods", required_argument, NULL, OPT_METHODS},
    {"no-exact", no_argument, NULL, OPT_NO_EXACT},
    {"max-cost", required_argument, NULL, OPT_MAX_COST},
    {"z", required_argument, NULL, OPT_Z},
    {"neg-policy", required_argument, NULL, OPT_NEG},
    {"seed", required_argument, NULL, OPT_SEED},
    {"chunk", required_argument, NULL, OPT_CHUNK},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"plot-prefix", required_argument, NULL, OPT_PLOT},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_one(void *ctx, int c, const char *arg)
{
    cmp_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case OPT_SPECTRUM: o->spectrum = arg; break;
    case OPT_DIAG: o->diag = arg; break;
    case OPT_ONLY: o->only = arg; break;
    case OPT_SAVE_SPECTRUM: o->save_spectrum = arg; break;
    case OPT_DATA: o->data = arg; break;
    case OPT_K:
        rc = cli_parse_size(CMD, "--k", arg, &o->k);
        if (!rc && o->k == 0) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--k: expected at least 1");
        break;
    case OPT_METHODS: o->methods = arg; break;
    case OPT_NO_EXACT: o->no_exact = 1; break;
    case OPT_MAX_COST:
        rc = cli_parse_double(CMD, "--max-cost", arg, &o->max_cost);
        if (!rc && o->max_cost <= 0.0)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--max-cost: expected a positive number");
        break;
    case OPT_Z:
        rc = cli_parse_double_list(CMD, "--z", arg, o->z, MAX_Z, &o->nz);
        for (size_t i = 0; !rc && i < o->nz; ++i)
            if (!(o->z[i] > 0.0))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--z: every value must be > 0, got %g", o->z[i]);
        break;
    case OPT_NEG: o->neg = arg; break;
    case OPT_SEED: rc = cli_parse_u64(CMD, "--seed", arg, &o->seed); break;
    case OPT_CHUNK: rc = cli_parse_chunk(CMD, arg, &o->chunk); break;
    case OPT_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case OPT_PLOT: o->plot = arg; break;
    case OPT_JSON: o->json = 1; break;
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static int parse_args(cmp_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->k = 20;
    o->threads = 2;
    o->max_cost = 256.0;
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, o, usage);
    if (rc) return rc;
    if (optind >= argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "expected a checkpoint (effdim compare --help)");
    if (optind + 1 < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind + 1]);
    o->ckpt = argv[optind];
    if (!o->out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o/--output is required");
    if (o->neg && strcmp(o->neg, "zero") && strcmp(o->neg, "abs") && strcmp(o->neg, "asis"))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--neg-policy: '%s', expected zero, abs or asis",
                          o->neg);
    if (o->save_spectrum && o->spectrum)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--save-spectrum: the spectrum comes from --spectrum");
    if (o->plot && strchr(o->plot, '\''))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--plot-prefix: a path without quotes, please");
    return 0;
}

/* ======================================================================
 * Inputs
 * ====================================================================== */

static double sum_of(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += v[i];
    return s;
}

static int load_data(cmp_run *R)
{
    effdim_error err;
    if (R->ds) return 0;
    if (!R->spec)
        return cli_errorf(CMD, CLI_EXIT_USAGE,
                          "%s records no training data; give --data SPEC (or --spectrum and "
                          "--diag files)",
                          R->o->ckpt);
    if (cli_load_data(R->o->ckpt, &R->ckpt->mlp, R->spec, !R->o->data, &R->ds, &err))
        return cli_fail(CMD, &err);
    R->ws = effdim_mlp_ws_alloc(&R->ckpt->mlp, R->o->chunk, &err);
    return R->ws ? 0 : cli_fail(CMD, &err);
}

/* The spectrum must describe the same network and loss scale. */
static int check_spectrum(const cmp_run *R, const effdim_spectrum *s)
{
    const effdim_mlp *m = &R->ckpt->mlp;
    if (s->n_params != m->n_params)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: n_params %llu, but %s has %zu parameters",
                          R->o->spectrum, (unsigned long long)s->n_params, R->o->ckpt, m->n_params);
    if (strcmp(s->reduction, effdim_reduction_name(m->reduction)))
        return cli_errorf(CMD, CLI_EXIT_FAIL,
                          "%s: reduction '%s', but %s uses '%s' (the scales would differ)",
                          R->o->spectrum, s->reduction, R->o->ckpt,
                          effdim_reduction_name(m->reduction));
    if (s->k == 0) return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: no eigenvalues", R->o->spectrum);
    return 0;
}

static int load_spectrum(cmp_run *R)
{
    effdim_error err;
    ref_spec *r = &R->ref;
    if (effdim_spectrum_load(R->o->spectrum, &r->file, &err)) return cli_fail(CMD, &err);
    int rc = check_spectrum(R, r->file);
    if (rc) return rc;
    r->k = r->file->k;
    r->eig = r->file->eigenvalues;
    r->vec = r->file->eigenvectors;
    r->op = r->file->op[0] ? r->file->op : "hessian";
    r->source = R->o->spectrum;
    r->seconds = r->file->seconds;
    r->matvecs = (size_t)r->file->matvecs;
    if (r->file->data_spec && R->spec && strcmp(r->file->data_spec, R->spec) && !R->o->json)
        fprintf(stderr, "effdim compare: note: the spectrum is of data '%s', the diagonals of '%s'\n",
                r->file->data_spec, R->spec);
    return 0;
}

static int compute_spectrum(cmp_run *R)
{
    effdim_error err;
    ref_spec *r = &R->ref;
    const effdim_mlp *m = &R->ckpt->mlp;
    size_t P = m->n_params, k = R->o->k < P ? R->o->k : P;
    int rc = load_data(R);
    if (rc) return rc;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.method = EFFDIM_HVP_EXACT;
    effdim_operator *op = NULL;
    if (effdim_hvp_operator(m, R->ckpt->theta, R->ds, NULL, R->ds->n, &hp, R->ws, &op, &err))
        return cli_fail(CMD, &err);
    effdim_lanczos_params lp = effdim_lanczos_default_params();
    lp.k = k;
    lp.tol = 1e-6;
    lp.want_vectors = 1;
    lp.seed = R->o->seed;
    r->own_eig = malloc(k * sizeof(double));
    r->own_vec = malloc(k * P * sizeof(double));
    r->own_res = malloc(k * sizeof(double));
    r->own_bnd = malloc(k * sizeof(double));
    r->own_conv = malloc(k);
    if (!r->own_eig || !r->own_vec || !r->own_res || !r->own_bnd || !r->own_conv) {
        effdim_operator_free(op);
        return cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory for %zu eigenvectors", k);
    }
    if (!R->o->json) fprintf(stderr, "effdim compare: top %zu Hessian eigenpairs (Lanczos) ...\n", k);
    effdim_lanczos_stats st;
    effdim_status s = effdim_lanczos_eigs(op, &lp, r->own_eig, r->own_bnd, r->own_res, NULL, r->own_vec,
                                          &st, &err);
    for (size_t i = 0; i < k; ++i) /* lanczos.h's test, with ||T|| ~ |lambda_1| */
        r->own_conv[i] = r->own_bnd[i] <= fmax(lp.tol * fabs(r->own_eig[i]),
                                               64.0 * DBL_EPSILON * fabs(r->own_eig[0]));
    r->stats = st;
    effdim_operator_free(op);
    if (s && s != EFFDIM_EMAXITER) return cli_fail(CMD, &err);
    if (s == EFFDIM_EMAXITER) fprintf(stderr, "effdim compare: note: %s\n", err.msg);
    r->k = k;
    r->eig = r->own_eig;
    r->vec = r->own_vec;
    r->op = "hessian";
    r->source = "computed";
    r->seconds = st.seconds;
    r->matvecs = st.matvecs;
    return 0;
}

static int add_diag(cmp_run *R, const char *name, const double *v, double *owned)
{
    if (R->nd >= MAX_DIAGS) {
        free(owned);
        return cli_errorf(CMD, CLI_EXIT_FAIL, "more than %d diagonals", MAX_DIAGS);
    }
    snprintf(R->names[R->nd], sizeof R->names[0], "%s", name);
    R->diag[R->nd] = v;
    R->owned[R->nd] = owned;
    ++R->nd;
    return 0;
}

/* 1 if name is one of the comma-separated list's entries */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int load_diag_file(cmp_run *R)
{
    effdim_error err;
    if (effdim_diag_file_load(R->o->diag, &R->dfile, &err)) return cli_fail(CMD, &err);
    const effdim_mlp *m = &R->ckpt->mlp;
    if (R->dfile->n_params != m->n_params)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: n_params %llu, but %s has %zu parameters",
                          R->o->diag, (unsigned long long)R->dfile->n_params, R->o->ckpt,
                          m->n_params);
    if (R->dfile->reduction[0] && strcmp(R->dfile->reduction, effdim_reduction_name(m->reduction)))
        return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: reduction '%s', but %s uses '%s'", R->o->diag,
                          R->dfile->reduction, R->o->ckpt, effdim_reduction_name(m->reduction));
    for (size_t i = 0; i < R->dfile->count; ++i) {
        const char *name = R->dfile->entries[i].name;
        if (R->o->only ? !in_list(R->o->only, name) : !strcmp(name, "adam-vhat")) continue;
        int rc = add_diag(R, name, R->dfile->entries[i].v, NULL);
        if (rc) return rc;
    }
    if (R->o->only) { /* every name asked for must exist */
        char buf[512];
        snprintf(buf, sizeof buf, "%s", R->o->only);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
            if (!effdim_diag_file_find(R->dfile, t))
                return cli_errorf(CMD, CLI_EXIT_USAGE, "--only: %s has no diagonal '%s'",
                                  R->o->diag, t);
    }
    return 0;
}

/* One diagonal computed here. */
static int compute_one(cmp_run *R, effdim_diag_method meth)
{
    effdim_error err;
    const effdim_checkpoint *c = R->ckpt;
    const effdim_mlp *m = &c->mlp;
    size_t P = m->n_params;
    effdim_diag_params p = effdim_diag_default_params();
    p.max_cost = R->o->max_cost;
    if (meth == EFFDIM_DIAG_ADAM) {
        double *v = malloc(P * sizeof(double)), *e = malloc(P * sizeof(double));
        int ef_ok = 0;
        if (!v || !e || effdim_diag_adam(c, R->o->ckpt, 0, R->ds ? R->ds->n : 0, NULL, v, e, &ef_ok, &err)) {
            free(v);
            free(e);
            return v && e ? cli_fail(CMD, &err) : cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
        }
        int rc = add_diag(R, "adam", v, v);
        if (!rc && ef_ok) return add_diag(R, "adam-ef", e, e);
        free(e);
        return rc;
    }
    int rc = load_data(R);
    if (rc) return rc;
    double *v = malloc(P * sizeof(double));
    if (!v) return cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
    if (!R->o->json) fprintf(stderr, "effdim compare: %s diagonal ...\n", effdim_diag_method_name(meth));
    effdim_status st = EFFDIM_EINVAL;
    size_t n = R->ds->n;
    switch (meth) {
    case EFFDIM_DIAG_GGN: st = effdim_diag_ggn(m, c->theta, R->ds, NULL, n, &p, v, R->ws, &err); break;
    case EFFDIM_DIAG_EF: st = effdim_diag_ef(m, c->theta, R->ds, NULL, n, &p, v, R->ws, &err); break;
    case EFFDIM_DIAG_GGN_MC: st = effdim_diag_ggn_mc(m, c->theta, R->ds, NULL, n, &p, v, NULL, R->ws, &err); break;
    case EFFDIM_DIAG_HESSIAN: st = effdim_diag_hessian(m, c->theta, R->ds, NULL, n, &p, v, R->ws, &err); break;
    case EFFDIM_DIAG_IVON: st = effdim_diag_ivon(c, R->o->ckpt, n, v, &err); break;
    default:
        effdim_error_set(&err, EFFDIM_EINVAL,
                         "--methods: %s is not computed by compare (run effdim diag, then --diag)",
                         effdim_diag_method_name(meth));
        break;
    }
    if (st) {
        free(v);
        return cli_fail(CMD, &err);
    }
    return add_diag(R, effdim_diag_method_name(meth), v, v);
}

static int compute_diags(cmp_run *R)
{
    effdim_error err;
    effdim_diag_method ms[EFFDIM_DIAG_N_METHODS];
    size_t n = 0;
    int explicit_list = R->o->methods != NULL;
    const char *list = explicit_list ? R->o->methods : "ggn,ef,hessian,adam";
    if (effdim_diag_methods_parse(list, ms, EFFDIM_DIAG_N_METHODS, &n, &err)) {
        cli_fail(CMD, &err);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; ++i) {
        if (!explicit_list && ms[i] == EFFDIM_DIAG_ADAM && !effdim_checkpoint_state(R->ckpt, "exp_avg_sq"))
            continue;
        if (!explicit_list && ms[i] == EFFDIM_DIAG_HESSIAN &&
            (R->o->no_exact || effdim_diag_hessian_cost(&R->ckpt->mlp, NULL) > R->o->max_cost))
            continue;
        int rc = compute_one(R, ms[i]);
        if (rc) return rc;
    }
    return 0;
}

/* The exact Hessian diagonal: the diag set's "hessian", else computed. */
static int find_exact(cmp_run *R)
{
    for (size_t i = 0; i < R->nd; ++i)
        if (!strcmp(R->names[i], "hessian")) {
            R->exact = R->diag[i];
            R->exact_source = R->dfile ? R->o->diag : "computed";
            return 0;
        }
    if (R->o->no_exact || effdim_diag_hessian_cost(&R->ckpt->mlp, NULL) > R->o->max_cost) return 0;
    int rc = load_data(R);
    if (rc) return rc;
    effdim_error err;
    const effdim_mlp *m = &R->ckpt->mlp;
    R->exact_own = malloc(m->n_params * sizeof(double));
    effdim_diag_params p = effdim_diag_default_params();
    p.max_cost = R->o->max_cost;
    if (!R->o->json) fprintf(stderr, "effdim compare: exact Hessian diagonal ...\n");
    if (!R->exact_own || effdim_diag_hessian(m, R->ckpt->theta, R->ds, NULL, R->ds->n, &p,
                                             R->exact_own, R->ws, &err))
        return R->exact_own ? cli_fail(CMD, &err) : cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
    R->exact = R->exact_own;
    R->exact_source = "computed";
    return 0;
}

static int setup_grid(cmp_run *R)
{
    const effdim_spectrum *f = R->ref.file;
    if (R->o->nz) {
        R->m = R->o->nz;
        R->z = malloc(R->m * sizeof(double));
        if (R->z) memcpy(R->z, R->o->z, R->m * sizeof(double));
    } else if (f && f->m) {
        R->m = f->m;
        R->z = malloc(R->m * sizeof(double));
        if (R->z) memcpy(R->z, f->z, R->m * sizeof(double));
    } else {
        double top = R->ref.k && R->ref.eig[0] > 0.0 ? R->ref.eig[0] : 1.0;
        R->m = 13;
        R->z = malloc(R->m * sizeof(double));
        for (size_t i = 0; R->z && i < R->m; ++i) R->z[i] = top * pow(10.0, -5.0 + 0.5 * (double)i);
    }
    if (!R->z) return cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
    R->neg = R->o->neg ? R->o->neg : f && f->neg_policy[0] ? f->neg_policy : "zero";
    size_t P = R->ckpt->mlp.n_params;
    /* the bound needs a PSD matrix: a negative diagonal entry e_j^T H e_j < 0
     * proves H indefinite, so there is no bound then */
    double hmin = 0.0;
    for (size_t j = 0; R->exact && j < P; ++j) hmin = fmin(hmin, R->exact[j]);
    if (R->exact && hmin >= 0.0 && R->ref.k < P && (R->bound = malloc(R->m * sizeof(double)))) {
        double rest = sum_of(R->exact, P) - sum_of(R->ref.eig, R->ref.k);
        effdim_compare_neff_bound(R->ref.eig, R->ref.k, rest, P - R->ref.k, R->z, R->m, R->bound,
                                  NULL);
    }
    return 0;
}

static void setup_blocks(cmp_run *R)
{
    const effdim_mlp *m = &R->ckpt->mlp;
    snprintf(R->bname[0], sizeof R->bname[0], "all");
    R->boff[0] = 0;
    R->blen[0] = m->n_params;
    for (size_t l = 0; l < m->n_layers; ++l) {
        snprintf(R->bname[l + 1], sizeof R->bname[0], "layer%zu", l);
        R->boff[l + 1] = m->w_off[l];
        R->blen[l + 1] = m->sizes[l + 1] * m->sizes[l] + m->sizes[l + 1];
    }
    R->nblocks = m->n_layers + 1;
}

/* The reference eigenvalues of block b: the whole spectrum, or the spectrum
 * file's per-layer spectrum of that block when it has one. */
static void block_eigs(const cmp_run *R, size_t b, size_t *k, const double **eig)
{
    *k = 0;
    *eig = NULL;
    if (b == 0) {
        *k = R->ref.k;
        *eig = R->ref.eig;
        return;
    }
    const effdim_spectrum *f = R->ref.file;
    for (size_t i = 0; f && i < f->n_layers; ++i)
        if (f->layers[i].offset == R->boff[b] && f->layers[i].size == R->blen[b]) {
            *k = f->layers[i].k;
            *eig = f->layers[i].eigenvalues;
        }
}

static int run_compare(cmp_run *R)
{
    size_t P = R->ckpt->mlp.n_params;
    R->res = calloc(R->nd * R->nblocks, sizeof *R->res);
    if (!R->res) return cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
    for (size_t d = 0; d < R->nd; ++d)
        for (size_t b = 0; b < R->nblocks; ++b) {
            effdim_error err;
            effdim_compare_input in;
            memset(&in, 0, sizeof in);
            in.n = R->blen[b];
            in.diag = R->diag[d] + R->boff[b];
            in.exact = R->exact ? R->exact + R->boff[b] : NULL;
            block_eigs(R, b, &in.k, &in.eigenvalues);
            in.kv = R->ref.vec ? R->ref.k : 0;
            in.eigenvectors = R->ref.vec ? R->ref.vec + R->boff[b] : NULL;
            in.ld = P;
            in.m = R->m;
            in.z = R->z;
            in.neg_policy = R->neg;
            in.n_topm = N_FRAC;
            in.topm_fractions = fractions;
            if (effdim_compare_run(&in, &R->res[d * R->nblocks + b], &err)) {
                return cli_errorf(CMD, CLI_EXIT_FAIL, "%s, %s: %s", R->names[d], R->bname[b],
                                  err.msg);
            }
        }
    return 0;
}

/* ======================================================================
 * Output: HDF5
 * ====================================================================== */

static effdim_status put_vec(hid_t g, const char *name, const double *v, size_t n,
                             effdim_error *err)
{
    return effdim_h5_write_doubles(g, name, 1, &n, v, err);
}

static effdim_status write_result(hid_t g, const effdim_compare_result *r, effdim_error *err)
{
    size_t dims[2] = {r->kv, r->n_topm};
    int64_t topm[EFFDIM_COMPARE_MAX_TOPM];
    for (size_t t = 0; t < r->n_topm; ++t) topm[t] = (int64_t)r->topm[t];
    struct { const char *k; double v; } a[] = {
        {"trace", r->trace}, {"trace_exact", r->trace_exact}, {"trace_eigs", r->trace_eigs},
        {"negative", (double)r->negative}, {"spearman", r->spearman}, {"rel_error", r->rel_error},
        {"rel_error_fit", r->rel_error_fit}, {"fit_scale", r->fit_scale},
        {"median_rel_error", r->median_rel_error}, {"scale_ratio", r->scale_ratio},
        {"size", (double)r->n}};
    effdim_status st = EFFDIM_OK;
    for (size_t i = 0; !st && i < sizeof a / sizeof a[0]; ++i)
        st = effdim_h5_attr_write_double(g, a[i].k, a[i].v, err);
    if (!st) st = put_vec(g, "n_eff", r->n_eff, r->m, err);
    if (!st) st = put_vec(g, "top", r->top, r->q, err);
    if (!st) st = put_vec(g, "ratio", r->ratio, r->q, err);
    if (!st) st = put_vec(g, "partial", r->partial, r->q, err);
    if (!st && r->n_eff_eigs) st = put_vec(g, "n_eff_eigs", r->n_eff_eigs, r->m, err);
    if (!st) st = effdim_h5_write_int64s(g, "topm", 1, &r->n_topm, topm, err);
    if (!st) st = put_vec(g, "baseline", r->baseline, r->n_topm, err);
    if (!st && r->kv) st = put_vec(g, "mass", r->mass, r->kv, err);
    if (!st && r->kv) st = effdim_h5_write_doubles(g, "alignment", 2, dims, r->alignment, err);
    return st;
}

static effdim_status write_reference(hid_t f, const cmp_run *R, effdim_error *err)
{
    hid_t g;
    effdim_status st = effdim_h5_group(f, "reference", &g, err);
    if (st) return st;
    const effdim_spectrum *s = R->ref.file;
    double *ritz = malloc(R->m * sizeof(double)), teig = 0.0;
    for (size_t i = 0; i < R->ref.k; ++i) teig += R->ref.eig[i];
    st = ritz ? effdim_compare_neff(R->ref.eig, R->ref.k, R->z, R->m, R->neg, ritz, err) : EFFDIM_ENOMEM;
    if (!st) st = put_vec(g, "eigenvalues", R->ref.eig, R->ref.k, err);
    if (!st) st = put_vec(g, "n_eff", ritz, R->m, err);
    int same_grid = s && s->n_eff_slq && s->m == R->m && !memcmp(s->z, R->z, R->m * sizeof(double));
    if (!st && same_grid) st = put_vec(g, "n_eff_slq", s->n_eff_slq, R->m, err);
    if (!st && same_grid && s->n_eff_slq_se) st = put_vec(g, "n_eff_slq_se", s->n_eff_slq_se, R->m, err);
    if (!st && R->bound) st = put_vec(g, "n_eff_upper_psd", R->bound, R->m, err);
    if (!st) st = effdim_h5_attr_write_string(g, "operator", R->ref.op, err);
    if (!st) st = effdim_h5_attr_write_string(g, "source", R->ref.source, err);
    if (!st) st = effdim_h5_attr_write_double(g, "trace_eigs", teig, err);
    if (!st && s && s->has_trace) st = effdim_h5_attr_write_double(g, "trace", s->trace, err);
    if (!st && s && s->has_trace) st = effdim_h5_attr_write_double(g, "trace_se", s->trace_se, err);
    if (!st && s && s->has_trace) st = effdim_h5_attr_write_string(g, "trace_method", s->trace_method, err);
    if (!st && R->exact) {
        double tr = 0.0;
        for (size_t j = 0; j < R->ckpt->mlp.n_params; ++j) tr += R->exact[j];
        st = effdim_h5_attr_write_double(g, "trace_exact", tr, err);
    }
    free(ritz);
    H5Gclose(g);
    return st;
}

static effdim_status write_root(hid_t f, const cmp_run *R, effdim_error *err)
{
    const effdim_mlp *m = &R->ckpt->mlp;
    char sha[65] = "", now[64];
    if (effdim_sha256_file(R->o->ckpt, sha, NULL)) sha[0] = '\0';
    const char *dn[MAX_DIAGS], *bn[EFFDIM_MLP_MAX_LAYERS + 1];
    int64_t off[EFFDIM_MLP_MAX_LAYERS + 1], len[EFFDIM_MLP_MAX_LAYERS + 1];
    for (size_t i = 0; i < R->nd; ++i) dn[i] = R->names[i];
    for (size_t b = 0; b < R->nblocks; ++b) {
        bn[b] = R->bname[b];
        off[b] = (int64_t)R->boff[b];
        len[b] = (int64_t)R->blen[b];
    }
    const char *spec = R->spec ? R->spec : R->dfile ? R->dfile->data_spec : "";
    effdim_status st = effdim_h5_attr_write_string(f, "format", "effdim.compare", err);
    if (!st) st = effdim_h5_attr_write_int64(f, "format_version", 1, err);
    if (!st) st = effdim_h5_attr_write_string(f, "checkpoint", R->o->ckpt, err);
    if (!st) st = effdim_h5_attr_write_string(f, "checkpoint_sha256", sha, err);
    if (!st) st = effdim_h5_attr_write_string(f, "spectrum_file", R->o->spectrum ? R->o->spectrum : "", err);
    if (!st) st = effdim_h5_attr_write_string(f, "diag_file", R->o->diag ? R->o->diag : "", err);
    if (!st) st = effdim_h5_attr_write_string(f, "data_spec", spec ? spec : "", err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_params", (int64_t)m->n_params, err);
    if (!st) st = effdim_h5_attr_write_string(f, "loss", effdim_loss_name(m->loss), err);
    if (!st) st = effdim_h5_attr_write_string(f, "reduction", effdim_reduction_name(m->reduction), err);
    if (!st) st = effdim_h5_attr_write_string(f, "neg_policy", R->neg, err);
    if (!st) st = effdim_h5_attr_write_string(f, "exact", R->exact ? R->exact_source : "", err);
    if (!st) st = effdim_h5_attr_write_strings(f, "diagonals", dn, R->nd, err);
    if (!st) st = effdim_h5_attr_write_strings(f, "blocks", bn, R->nblocks, err);
    if (!st) st = effdim_h5_attr_write_int64s(f, "block_offsets", off, R->nblocks, err);
    if (!st) st = effdim_h5_attr_write_int64s(f, "block_sizes", len, R->nblocks, err);
    if (!st) st = effdim_h5_attr_write_doubles(f, "topm_fractions", fractions, N_FRAC, err);
    if (!st) st = effdim_h5_attr_write_string(f, "version", effdim_version(), err);
    if (!st) st = effdim_h5_attr_write_string(f, "created", effdim_now_iso(now, sizeof now), err);
    if (!st) st = put_vec(f, "z", R->z, R->m, err);
    return st;
}

static int save(const cmp_run *R)
{
    effdim_error err;
    effdim_h5_atomic a;
    if (effdim_h5_atomic_begin(R->o->out, &a, &err)) return cli_fail(CMD, &err);
    effdim_status st = write_root(a.file, R, &err);
    if (!st) st = write_reference(a.file, R, &err);
    hid_t top = -1;
    if (!st) st = effdim_h5_group(a.file, "compare", &top, &err);
    for (size_t d = 0; !st && d < R->nd; ++d) {
        hid_t gd;
        st = effdim_h5_group(top, R->names[d], &gd, &err);
        for (size_t b = 0; !st && b < R->nblocks; ++b) {
            hid_t gb;
            st = effdim_h5_group(gd, R->bname[b], &gb, &err);
            if (!st) {
                st = write_result(gb, &R->res[d * R->nblocks + b], &err);
                H5Gclose(gb);
            }
        }
        if (gd >= 0 && !st) H5Gclose(gd);
    }
    if (top >= 0) H5Gclose(top);
    if (!st) st = effdim_h5_atomic_commit(&a, &err);
    if (st) {
        effdim_h5_atomic_abort(&a);
        return cli_fail(CMD, &err);
    }
    return 0;
}

/* The spectrum computed here as an effdim.spectrum file (--save-spectrum). */
static int save_spectrum(const cmp_run *R)
{
    effdim_error err;
    const ref_spec *r = &R->ref;
    const effdim_mlp *m = &R->ckpt->mlp;
    effdim_spectrum s;
    effdim_spectrum_init(&s);
    double *ritz = malloc(R->m * sizeof(double));
    if (!ritz) return cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
    effdim_compare_neff(r->eig, r->k, R->z, R->m, R->neg, ritz, NULL);
    if (effdim_sha256_file(R->o->ckpt, s.checkpoint_sha256, NULL)) s.checkpoint_sha256[0] = 0;
    s.checkpoint = (char *)R->o->ckpt;
    s.data_spec = (char *)(R->spec ? R->spec : "");
    s.n = R->ds->n;
    s.n_params = m->n_params;
    snprintf(s.loss, sizeof s.loss, "%s", effdim_loss_name(m->loss));
    snprintf(s.reduction, sizeof s.reduction, "%s", effdim_reduction_name(m->reduction));
    s.scale = effdim_mlp_loss_scale(m, R->ds->n);
    snprintf(s.op, sizeof s.op, "hessian");
    snprintf(s.hvp_method, sizeof s.hvp_method, "exact");
    snprintf(s.which, sizeof s.which, "top");
    snprintf(s.neg_policy, sizeof s.neg_policy, "%s", R->neg);
    s.tol = 1e-6;
    s.seed = R->o->seed;
    s.steps = r->stats.steps;
    s.matvecs = r->stats.matvecs;
    s.restarts = r->stats.restarts;
    s.nconv = r->stats.nconv;
    s.seconds = r->stats.seconds;
    s.k = r->k;
    s.eigenvalues = r->own_eig;
    s.residuals = r->own_res;
    s.residual_bounds = r->own_bnd;
    s.converged = r->own_conv;
    s.eigenvectors = r->own_vec;
    s.m = R->m;
    s.z = R->z;
    s.n_eff = ritz;
    effdim_status st = effdim_spectrum_save(&s, R->o->save_spectrum, &err);
    free(ritz);
    if (st) return cli_fail(CMD, &err);
    if (!R->o->json) fprintf(stderr, "effdim compare: saved the spectrum to %s\n", R->o->save_spectrum);
    return 0;
}

/* ======================================================================
 * Output: table and JSON
 * ====================================================================== */

static void print_reference(const cmp_run *R)
{
    const ref_spec *r = &R->ref;
    const effdim_mlp *m = &R->ckpt->mlp;
    printf("%s: %zu parameters, %s loss (%s)%s%s\n", R->o->ckpt, m->n_params,
           effdim_loss_name(m->loss), effdim_reduction_name(m->reduction), R->spec ? ", data " : "",
           R->spec ? R->spec : "");
    printf("reference: %s spectrum (%s), top %zu eigenvalues %.5g ... %.5g%s\n", r->op, r->source,
           r->k, r->eig[0], r->eig[r->k - 1], r->vec ? ", with eigenvectors" : "");
    printf("traces: top-%zu eigenvalues %.5g", r->k, sum_of(r->eig, r->k));
    if (r->file && r->file->has_trace)
        printf(", %s %.5g +- %.2g", r->file->trace_method, r->file->trace, r->file->trace_se);
    if (R->exact) printf(", exact (Hessian diagonal) %.5g", sum_of(R->exact, m->n_params));
    printf("\n");
}

static void fmt_num(char *buf, size_t cap, double v)
{
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.3g", v);
}

static void print_block_table(const cmp_run *R, size_t b)
{
    printf("\n%s (%zu coordinates)\n", R->bname[b], R->blen[b]);
    printf("  %-11s %10s %8s %9s %9s %8s %8s %8s", "diagonal", "trace", "/exact", "top/l1",
           "partial", "spearman", "relerr", "fit-err");
    for (size_t t = 0; t < N_FRAC; ++t) {
        char h[32];
        snprintf(h, sizeof h, "top%g%%", 100.0 * fractions[t]);
        printf(" %9s", h);
    }
    printf(" %8s\n", "negative");
    for (size_t d = 0; d < R->nd; ++d) {
        const effdim_compare_result *r = &R->res[d * R->nblocks + b];
        char c[8][32];
        fmt_num(c[0], 32, r->scale_ratio);
        fmt_num(c[1], 32, r->q ? r->ratio[0] : (double)NAN);
        fmt_num(c[2], 32, r->q ? r->partial[r->q - 1] : (double)NAN);
        fmt_num(c[3], 32, r->spearman);
        fmt_num(c[4], 32, r->rel_error);
        fmt_num(c[5], 32, r->rel_error_fit);
        printf("  %-11s %10.4g %8s %9s %9s %8s %8s %8s", R->names[d], r->trace, c[0], c[1], c[2],
               c[3], c[4], c[5]);
        for (size_t t = 0; t < r->n_topm; ++t) {
            double mean = 0.0;
            for (size_t i = 0; i < r->kv; ++i) mean += r->alignment[i * r->n_topm + t];
            fmt_num(c[6], 32, r->kv ? mean / (double)r->kv : (double)NAN);
            printf(" %9s", c[6]);
        }
        printf(" %8zu\n", r->negative);
    }
}

static void print_neff_table(const cmp_run *R)
{
    const effdim_spectrum *s = R->ref.file;
    int slq = s && s->n_eff_slq && s->m == R->m && !memcmp(s->z, R->z, R->m * sizeof(double));
    printf("\nN_eff(z) = sum v/(v+z) (negative values: %s)\n  %-11s", R->neg, "z");
    printf(" %12s", "eigs(top-k)");
    if (R->bound) printf(" %12s", "bound(PSD)");
    if (slq) printf(" %12s", "SLQ");
    for (size_t d = 0; d < R->nd; ++d) printf(" %12s", R->names[d]);
    printf("\n");
    for (size_t i = 0; i < R->m; ++i) {
        double ritz = 0.0;
        effdim_compare_neff(R->ref.eig, R->ref.k, R->z + i, 1, R->neg, &ritz, NULL);
        printf("  %-11.3g %12.5g", R->z[i], ritz);
        if (R->bound) printf(" %12.5g", R->bound[i]);
        if (slq) printf(" %12.5g", s->n_eff_slq[i]);
        for (size_t d = 0; d < R->nd; ++d) printf(" %12.5g", R->res[d * R->nblocks].n_eff[i]);
        printf("\n");
    }
}

static void print_table(const cmp_run *R)
{
    print_reference(R);
    for (size_t b = 0; b < R->nblocks; ++b) print_block_table(R, b);
    print_neff_table(R);
    if (R->bound)
        printf("\nbound(PSD): the top-k eigenvalues plus the largest N_eff the remaining %zu\n"
               "eigenvalues can have given their trace (exact trace - top-k sum), if they are >= 0;\n"
               "the full-spectrum N_eff lies between eigs(top-k) and bound(PSD) for a PSD matrix.\n",
               R->ckpt->mlp.n_params - R->ref.k);
    printf("\ncolumns: trace/exact = sum(d)/sum(h); top/l1 = largest entry / largest eigenvalue;\n"
           "partial = sum of the k largest entries / sum of the k eigenvalues (<= 1 for the exact\n"
           "diagonal); spearman, relerr = ||d-h||/||h||, fit-err = min_c ||c d - h||/||h|| against\n"
           "the exact Hessian diagonal h; topX%% = mean share of the top eigenvectors' mass (in the\n"
           "block) on the X%% of its coordinates with the largest entries (random: X/100).\n");
    printf("written to %s\n", R->o->out);
}

static void print_json(const cmp_run *R)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "output", R->o->out);
    cJSON_AddStringToObject(o, "checkpoint", R->o->ckpt);
    cJSON_AddStringToObject(o, "reference", R->ref.op);
    cJSON_AddItemToObject(o, "eigenvalues", cli_json_doubles(R->ref.eig, R->ref.k));
    cJSON_AddItemToObject(o, "z", cli_json_doubles(R->z, R->m));
    if (R->exact) cJSON_AddNumberToObject(o, "trace_exact", sum_of(R->exact, R->ckpt->mlp.n_params));
    cJSON *arr = cJSON_AddArrayToObject(o, "diagonals");
    for (size_t d = 0; d < R->nd; ++d) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", R->names[d]);
        cJSON *blocks = cJSON_AddObjectToObject(e, "blocks");
        for (size_t b = 0; b < R->nblocks; ++b) {
            const effdim_compare_result *r = &R->res[d * R->nblocks + b];
            cJSON *x = cJSON_AddObjectToObject(blocks, R->bname[b]);
            cJSON_AddNumberToObject(x, "trace", r->trace);
            if (!isnan(r->spearman)) cJSON_AddNumberToObject(x, "spearman", r->spearman);
            if (!isnan(r->rel_error)) cJSON_AddNumberToObject(x, "rel_error", r->rel_error);
            if (!isnan(r->rel_error_fit)) cJSON_AddNumberToObject(x, "rel_error_fit", r->rel_error_fit);
            if (!isnan(r->scale_ratio)) cJSON_AddNumberToObject(x, "scale_ratio", r->scale_ratio);
            if (r->q) cJSON_AddNumberToObject(x, "top_ratio", r->ratio[0]);
            cJSON_AddItemToObject(x, "n_eff", cli_json_doubles(r->n_eff, r->m));
        }
        cJSON_AddItemToArray(arr, e);
    }
    cli_json_print(o);
}

/* ======================================================================
 * Output: gnuplot figures
 * ====================================================================== */

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The sorted entries of v (P) above floor (> 0) at about 400 log-spaced ranks. */
static void write_sorted(FILE *f, const double *v, size_t P, double floor, double *tmp)
{
    memcpy(tmp, v, P * sizeof(double));
    qsort(tmp, P, sizeof(double), cmp_desc);
    size_t npos = 0;
    while (npos < P && tmp[npos] > floor) ++npos;
    size_t last = 0;
    for (int t = 0; t <= 400 && npos; ++t) {
        size_t r = (size_t)llround(pow((double)npos, (double)t / 400.0));
        if (r <= last) continue;
        fprintf(f, "%zu %.10g\n", r, tmp[r - 1]);
        last = r;
    }
    fprintf(f, "\n\n");
}

static int write_plot_data(const cmp_run *R, const char *dir)
{
    char path[EFFDIM_PATH_MAX];
    size_t P = R->ckpt->mlp.n_params;
    double *tmp = malloc(P * sizeof(double));
    snprintf(path, sizeof path, "%s/sorted.dat", dir);
    FILE *f = tmp ? fopen(path, "w") : NULL;
    if (!f) {
        free(tmp);
        return -1;
    }
    /* show eight decades below the largest value (a diagonal's tail of
     * near-zero entries would otherwise squash the figure) */
    double top = R->ref.eig[0];
    for (size_t d = 0; d < R->nd; ++d)
        for (size_t j = 0; j < P; ++j) top = fmax(top, R->diag[d][j]);
    double floor = top > 0.0 ? top * 1e-8 : 0.0;
    for (size_t i = 0; i < R->ref.k; ++i) /* index 0: the eigenvalues */
        if (R->ref.eig[i] > floor) fprintf(f, "%zu %.10g\n", i + 1, R->ref.eig[i]);
    fprintf(f, "\n\n");
    for (size_t d = 0; d < R->nd; ++d) write_sorted(f, R->diag[d], P, floor, tmp);
    fclose(f);
    free(tmp);
    snprintf(path, sizeof path, "%s/neff.dat", dir);
    if (!(f = fopen(path, "w"))) return -1;
    const effdim_spectrum *s = R->ref.file;
    int slq = s && s->n_eff_slq && s->m == R->m && !memcmp(s->z, R->z, R->m * sizeof(double));
    for (size_t i = 0; i < R->m; ++i) { /* z, ritz, slq, slq_se, bound, diagonals... */
        double ritz = 0.0;
        effdim_compare_neff(R->ref.eig, R->ref.k, R->z + i, 1, R->neg, &ritz, NULL);
        fprintf(f, "%.10g %.10g %.10g %.10g %.10g", R->z[i], ritz,
                slq ? s->n_eff_slq[i] : (double)NAN,
                slq && s->n_eff_slq_se ? s->n_eff_slq_se[i] : 0.0,
                R->bound ? R->bound[i] : (double)NAN);
        for (size_t d = 0; d < R->nd; ++d) fprintf(f, " %.10g", R->res[d * R->nblocks].n_eff[i]);
        fprintf(f, "\n");
    }
    fclose(f);
    return slq;
}

static int write_plot_script(const cmp_run *R, const char *dir, int slq)
{
    char path[EFFDIM_PATH_MAX];
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const char *ttl = R->ref.op;
    static const char *const colors[8] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e",
                                          "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    fprintf(f, "set terminal pngcairo size 900,620 font 'sans,11'\n"
               "set logscale xy\nset grid\nset key left bottom box opaque\n"
               "set format y '10^{%%L}'\nset format x '10^{%%L}'\n");
    for (int i = 0; i < 8; ++i) /* dash types 1-4 keep coinciding curves visible */
        fprintf(f, "set linetype %d lc rgb '%s' lw 2 dt %d\n", i + 1, colors[i], 1 + i % 4);
    fprintf(f, "set linetype cycle 8\n");
    fprintf(f, "set output '%s-spectrum.png'\n", R->o->plot);
    fprintf(f, "set title 'Top %zu %s eigenvalues and sorted diagonal entries (positive ones)'\n",
            R->ref.k, ttl);
    fprintf(f, "set xlabel 'rank'\nset ylabel 'value'\n");
    fprintf(f, "plot '%s/sorted.dat' index 0 with points pt 7 ps 1.1 lc rgb 'black' title "
               "'eigenvalues'",
            dir);
    for (size_t d = 0; d < R->nd; ++d)
        fprintf(f, ", '' index %zu with lines lt %zu title '%s'", d + 1, d % 8 + 1, R->names[d]);
    fprintf(f, "\n");
    fprintf(f, "set output '%s-neff.png'\n", R->o->plot);
    fprintf(f, "set title 'Effective dimensionality N_{eff}(z) = {/Symbol S} v/(v+z)'\n");
    fprintf(f, "set xlabel 'z'\nset ylabel 'N_{eff}(z)'\n");
    fprintf(f, "plot '%s/neff.dat' using 1:2 with linespoints pt 7 lw 2 lc rgb 'black' title "
               "'top-%zu eigenvalues'",
            dir, R->ref.k);
    if (R->bound)
        fprintf(f, ", '' using 1:5 with lines lw 2 dt 2 lc rgb 'black' title 'upper bound (PSD, "
                   "exact trace)'");
    if (slq)
        fprintf(f, ", '' using 1:3:4 with yerrorlines lw 2 lc rgb 'gray40' title 'SLQ (full "
                   "spectrum)'");
    for (size_t d = 0; d < R->nd; ++d)
        fprintf(f, ", '' using 1:%zu with linespoints lt %zu pt %zu title '%s diagonal'", d + 6,
                d % 8 + 1, d % 8 + 4, R->names[d]);
    fprintf(f, "\n");
    fclose(f);
    return 0;
}

static void remove_dir(const char *dir)
{
    const char *files[] = {"sorted.dat", "neff.dat", "plot.gp"};
    char path[EFFDIM_PATH_MAX];
    for (size_t i = 0; i < 3; ++i) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int plot(const cmp_run *R)
{
    char dir[] = "/tmp/effdim-compare-XXXXXX";
    if (!mkdtemp(dir)) return cli_errorf(CMD, CLI_EXIT_FAIL, "cannot create a temporary folder");
    int slq = write_plot_data(R, dir);
    int rc = slq < 0 || write_plot_script(R, dir, slq);
    if (rc) {
        remove_dir(dir);
        return cli_errorf(CMD, CLI_EXIT_FAIL, "cannot write the plot files in %s", dir);
    }
    char cmd[EFFDIM_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "gnuplot '%s/plot.gp' 2>&1", dir);
    FILE *p = popen(cmd, "r");
    char line[512];
    size_t said = 0;
    while (p && fgets(line, sizeof line, p))
        if (said++ < 5) fprintf(stderr, "gnuplot: %s", line);
    int status = p ? pclose(p) : -1;
    remove_dir(dir);
    if (status != 0)
        return cli_errorf(CMD, CLI_EXIT_FAIL,
                          "gnuplot failed (status %d); is it installed (Debian: gnuplot-nox)? The "
                          "numbers are in %s",
                          status, R->o->out);
    if (!R->o->json)
        fprintf(stderr, "effdim compare: wrote %s-spectrum.png and %s-neff.png\n", R->o->plot,
                R->o->plot);
    return 0;
}

/* ======================================================================
 * main
 * ====================================================================== */

static void run_free(cmp_run *R)
{
    for (size_t i = 0; R->res && i < R->nd * R->nblocks; ++i) effdim_compare_result_free(&R->res[i]);
    free(R->res);
    for (size_t i = 0; i < R->nd; ++i) free(R->owned[i]);
    free(R->exact_own);
    free(R->z);
    free(R->bound);
    free(R->ref.own_eig);
    free(R->ref.own_res);
    free(R->ref.own_bnd);
    free(R->ref.own_conv);
    free(R->ref.own_vec);
    effdim_spectrum_free(R->ref.file);
    effdim_diag_file_free(R->dfile);
    effdim_mlp_ws_free(R->ws);
    effdim_dataset_free(R->ds);
    effdim_checkpoint_free(R->ckpt);
}

static int setup(cmp_run *R)
{
    effdim_error err;
    cmp_opts *o = R->o;
    effdim_blas_set_threads(o->threads);
    if (cli_load_checkpoint(o->ckpt, o->data, &R->ckpt, &R->spec, &err)) return cli_fail(CMD, &err);
    /* the given files first, so a bad file fails before any computing */
    int rc = o->spectrum ? load_spectrum(R) : 0;
    if (!rc && o->diag) rc = load_diag_file(R);
    if (!rc && !o->spectrum) rc = compute_spectrum(R);
    if (!rc && !o->diag) rc = compute_diags(R);
    if (!rc) rc = find_exact(R);
    if (!rc) rc = setup_grid(R);
    if (!rc) setup_blocks(R);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    cmp_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *claim_in[] = {o.ckpt, o.spectrum, o.diag, o.data};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 4))) return rc;
    cmp_run R;
    memset(&R, 0, sizeof R);
    R.o = &o;
    effdim_h5_quiet();
    rc = setup(&R);
    if (!rc && R.nd == 0) rc = cli_errorf(CMD, CLI_EXIT_FAIL, "no diagonals to compare");
    if (!rc) rc = run_compare(&R);
    if (!rc) rc = save(&R);
    if (!rc && o.save_spectrum && !o.spectrum) rc = save_spectrum(&R);
    if (!rc) {
        if (o.json) print_json(&R);
        else print_table(&R);
    }
    if (!rc && o.plot) rc = plot(&R);
    run_free(&R);
    return rc;
}
