/* tools/cmd_compare.c: `effdim compare`, diagonal curvature estimates against
 * the spectrum, with a table, an HDF5 file and gnuplot figures.
 *
 *   effdim compare model.h5 [--spectrum spectrum.h5] [--diag diag.h5]
 *                  [--data SPEC] [--z LIST] -o compare.h5 [--plot-prefix out/cmp]
 *
 * Parse, then one library job (effdim_compare_compute, lib/compare.c, with
 * effdim_compare_default_params: what is compared and what is computed when
 * an input is missing are documented in effdim/compare.h and
 * docs/diagonals.md), print, save (effdim_compare_file_save, and the computed
 * spectrum with --save-spectrum), then the figures.
 *
 * Decisions:
 * - Figures are drawn by gnuplot (Debian's gnuplot-nox, pngcairo terminal)
 *   from a script and data files in a temporary folder, which is removed:
 *   <prefix>-spectrum.png (eigenvalues and sorted diagonals, log-log) and
 *   <prefix>-neff.png (N_eff(z) curves).
 * Exit status: 0 done, 1 runtime failure (also when gnuplot is missing or
 * fails: the HDF5 file is written first), 2 bad usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/compare.h"
#include "effdim/data.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/mlp.h"
#include "effdim/spectrum.h"

#define CMD "compare"
#define MAX_Z EFFDIM_COMPARE_MAX_Z

typedef struct cmp_opts {
    const char *ckpt, *spectrum, *diag, *data, *out, *plot, *methods, *only, *save_spectrum;
    double z[MAX_Z];
    size_t nz, k, chunk;
    double max_cost;
    uint64_t seed;
    int no_exact, json, threads;
    int neg_given;
    effdim_neg_policy neg_policy;
    const char *command; /* the command line as typed, recorded in the file */
} cmp_opts;

typedef struct cmp_run {
    cmp_opts *o;
    effdim_checkpoint *ckpt;
    effdim_dataset *ds;
    const char *spec;            /* data spec, or NULL */
    effdim_spectrum *sfile;      /* --spectrum, loaded */
    effdim_diag_file *dfile;     /* --diag, loaded */
    effdim_spectrum *computed;   /* the spectrum the job computed, or NULL */
    effdim_compare_file *f;      /* the job's result */
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
    case OPT_NEG:
        o->neg_given = 1;
        if (effdim_neg_policy_parse(arg, &o->neg_policy, NULL))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--neg-policy: '%s', expected zero, abs or asis",
                            arg);
        break;
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
    if (o->save_spectrum && o->spectrum)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--save-spectrum: the spectrum comes from --spectrum");
    return 0;
}

/* ======================================================================
 * Inputs and the job
 * ====================================================================== */

static int load_inputs(cmp_run *R)
{
    effdim_error err;
    cmp_opts *o = R->o;
    effdim_blas_set_threads(o->threads);
    if (cli_load_checkpoint(o->ckpt, o->data, &R->ckpt, &R->spec, &err)) return cli_fail(CMD, &err);
    /* the given files first, so a bad file fails before any computing */
    if (o->spectrum && effdim_spectrum_load(o->spectrum, &R->sfile, &err)) return cli_fail(CMD, &err);
    if (o->diag && effdim_diag_file_load(o->diag, &R->dfile, &err)) return cli_fail(CMD, &err);
    return 0;
}

static effdim_compare_params job_params(const cmp_opts *o)
{
    effdim_compare_params p = effdim_compare_default_params();
    p.k = o->k;
    p.seed = o->seed;
    p.methods = o->methods;
    p.only = o->only;
    p.no_exact = o->no_exact;
    p.max_cost = o->max_cost;
    p.z = o->nz ? o->z : NULL;
    p.nz = o->nz;
    p.neg_policy_given = o->neg_given;
    p.neg_policy = o->neg_policy;
    p.chunk = o->chunk;
    p.command_line = o->command;
    return p;
}

static int run_job(cmp_run *R)
{
    effdim_error err;
    const cmp_opts *o = R->o;
    effdim_compare_params p = job_params(o);
    effdim_compare_inputs in = {R->ckpt, o->ckpt, NULL, R->spec, R->sfile, o->spectrum, R->dfile,
                                o->diag};
    if (effdim_compare_needs_data(&in, &p)) {
        if (!R->spec)
            return cli_errorf(CMD, CLI_EXIT_USAGE,
                              "%s records no training data; give --data SPEC (or --spectrum and "
                              "--diag files)",
                              o->ckpt);
        if (cli_load_data(o->ckpt, &R->ckpt->mlp, R->spec, !o->data, &R->ds, &err))
            return cli_fail(CMD, &err);
        in.data = R->ds;
    }
    if (R->sfile && R->sfile->data_spec && R->spec && strcmp(R->sfile->data_spec, R->spec) && !o->json)
        fprintf(stderr, "effdim compare: note: the spectrum is of data '%s', the diagonals of '%s'\n",
                R->sfile->data_spec, R->spec);
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    p.progress = cli_progress_of(&sink); /* stderr: --json keeps stdout clean */
    cli_catch_interrupts();
    effdim_status st = effdim_compare_compute(&in, &p, &R->f, &R->computed, &err);
    cli_progress_sink_done(&sink);
    if (st == EFFDIM_ENOTFOUND && o->only) {
        cli_fail(CMD, &err);
        return CLI_EXIT_USAGE;
    }
    if (st) return cli_fail(CMD, &err);
    if (R->computed && R->computed->nconv < R->computed->k)
        fprintf(stderr, "effdim compare: note: %llu of %zu eigenpairs met the tolerance %g\n",
                (unsigned long long)R->computed->nconv, R->computed->k, R->computed->tol);
    return 0;
}

static int save(const cmp_run *R)
{
    effdim_error err;
    if (effdim_compare_file_save(R->f, R->o->out, &err)) return cli_fail(CMD, &err);
    if (!R->o->save_spectrum || !R->computed) return 0;
    if (effdim_spectrum_save(R->computed, R->o->save_spectrum, &err)) return cli_fail(CMD, &err);
    if (!R->o->json) fprintf(stderr, "effdim compare: saved the spectrum to %s\n", R->o->save_spectrum);
    return 0;
}

/* ======================================================================
 * Output: table and JSON
 * ====================================================================== */

static const effdim_compare_result *res_of(const cmp_run *R, size_t d, size_t b)
{
    return effdim_compare_file_result(R->f, d, b);
}

static void print_reference(const cmp_run *R)
{
    const effdim_compare_file *f = R->f;
    const effdim_mlp *m = &R->ckpt->mlp;
    printf("%s: %zu parameters, %s loss (%s)%s%s\n", R->o->ckpt, m->n_params,
           effdim_loss_name(m->loss), effdim_reduction_name(m->reduction), R->spec ? ", data " : "",
           R->spec ? R->spec : "");
    printf("reference: %s spectrum (%s), top %zu eigenvalues %.5g ... %.5g%s\n", f->ref_operator,
           f->ref_source, f->k, f->eigenvalues[0], f->eigenvalues[f->k - 1],
           f->ref_has_vectors ? ", with eigenvectors" : "");
    printf("traces: top-%zu eigenvalues %.5g", f->k, f->trace_eigs);
    if (f->has_trace) printf(", %s %.5g +- %.2g", f->trace_method, f->trace, f->trace_se);
    if (f->has_trace_exact) printf(", exact (Hessian diagonal) %.5g", f->trace_exact);
    printf("\n");
}

static void fmt_num(char *buf, size_t cap, double v)
{
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.3g", v);
}

static void print_block_table(const cmp_run *R, size_t b)
{
    const effdim_compare_file *f = R->f;
    printf("\n%s (%zu coordinates)\n", f->block_names[b], f->block_sizes[b]);
    printf("  %-11s %10s %8s %9s %9s %8s %8s %8s", "diagonal", "trace", "/exact", "top/l1",
           "partial", "spearman", "relerr", "fit-err");
    for (size_t t = 0; t < f->n_topm; ++t) {
        char h[32];
        snprintf(h, sizeof h, "top%g%%", 100.0 * f->topm_fractions[t]);
        printf(" %9s", h);
    }
    printf(" %8s\n", "negative");
    for (size_t d = 0; d < f->n_diags; ++d) {
        const effdim_compare_result *r = res_of(R, d, b);
        char c[8][32];
        fmt_num(c[0], 32, r->scale_ratio);
        fmt_num(c[1], 32, r->q ? r->ratio[0] : (double)NAN);
        fmt_num(c[2], 32, r->q ? r->partial[r->q - 1] : (double)NAN);
        fmt_num(c[3], 32, r->spearman);
        fmt_num(c[4], 32, r->rel_error);
        fmt_num(c[5], 32, r->rel_error_fit);
        printf("  %-11s %10.4g %8s %9s %9s %8s %8s %8s", f->diag_names[d], r->trace, c[0], c[1],
               c[2], c[3], c[4], c[5]);
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
    const effdim_compare_file *f = R->f;
    printf("\nN_eff(z) = sum v/(v+z) (negative values: %s)\n  %-11s",
           effdim_neg_policy_name(f->neg_policy), "z");
    printf(" %12s", "eigs(top-k)");
    if (f->n_eff_upper_psd) printf(" %12s", "bound(PSD)");
    if (f->n_eff_slq) printf(" %12s", "SLQ");
    for (size_t d = 0; d < f->n_diags; ++d) printf(" %12s", f->diag_names[d]);
    printf("\n");
    for (size_t i = 0; i < f->m; ++i) {
        printf("  %-11.3g %12.5g", f->z[i], f->n_eff[i]);
        if (f->n_eff_upper_psd) printf(" %12.5g", f->n_eff_upper_psd[i]);
        if (f->n_eff_slq) printf(" %12.5g", f->n_eff_slq[i]);
        for (size_t d = 0; d < f->n_diags; ++d) printf(" %12.5g", res_of(R, d, 0)->n_eff[i]);
        printf("\n");
    }
}

static void print_table(const cmp_run *R)
{
    print_reference(R);
    for (size_t b = 0; b < R->f->n_blocks; ++b) print_block_table(R, b);
    print_neff_table(R);
    if (R->f->n_eff_upper_psd)
        printf("\nbound(PSD): the top-k eigenvalues plus the largest N_eff the remaining %zu\n"
               "eigenvalues can have given their trace (exact trace - top-k sum); shown because the\n"
               "%s is PSD, so the full-spectrum N_eff lies between eigs(top-k) and bound(PSD).\n",
               R->ckpt->mlp.n_params - R->f->k,
               !strcmp(R->f->ref_operator, "ggn") ? "GGN" : "Hessian's bottom eigenvalue is >= 0: it");
    printf("\ncolumns: trace/exact = sum(d)/sum(h); top/l1 = largest entry / largest eigenvalue;\n"
           "partial = sum of the k largest entries / sum of the k eigenvalues (<= 1 for the exact\n"
           "diagonal); spearman, relerr = ||d-h||/||h||, fit-err = min_c ||c d - h||/||h|| against\n"
           "the exact Hessian diagonal h; topX%% = mean share of the top eigenvectors' mass (in the\n"
           "block) on the X%% of its coordinates with the largest entries (random: X/100).\n");
    printf("written to %s\n", R->o->out);
}

static void print_json(const cmp_run *R)
{
    const effdim_compare_file *f = R->f;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "output", R->o->out);
    cJSON_AddStringToObject(o, "checkpoint", R->o->ckpt);
    cJSON_AddStringToObject(o, "reference", f->ref_operator);
    cJSON_AddItemToObject(o, "eigenvalues", cli_json_doubles(f->eigenvalues, f->k));
    cJSON_AddItemToObject(o, "z", cli_json_doubles(f->z, f->m));
    if (f->has_trace_exact) cJSON_AddNumberToObject(o, "trace_exact", f->trace_exact);
    cJSON *arr = cJSON_AddArrayToObject(o, "diagonals");
    for (size_t d = 0; d < f->n_diags; ++d) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", f->diag_names[d]);
        cJSON *blocks = cJSON_AddObjectToObject(e, "blocks");
        for (size_t b = 0; b < f->n_blocks; ++b) {
            const effdim_compare_result *r = res_of(R, d, b);
            cJSON *x = cJSON_AddObjectToObject(blocks, f->block_names[b]);
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
 *
 * Nothing read from a file and no path reaches the gnuplot script: names
 * (the diagonals', already validated by the readers) go into the data files'
 * header lines, which gnuplot reads as titles (columnheader, noenhanced);
 * the script names only files of the private temporary folder, and the
 * figures are copied from there to the --plot-prefix paths by this program;
 * gnuplot runs by fork/exec, without a shell.
 * ====================================================================== */

static const char *const plot_files[] = {"sorted.dat", "curves.dat", "slq.dat", "plot.gp",
                                         "spectrum.png", "neff.png"};
#define N_PLOT_FILES (sizeof plot_files / sizeof plot_files[0])

static FILE *open_in(const char *dir, const char *name, const char *mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return fopen(path, mode);
}

static int write_plot_data(const cmp_run *R, const char *dir)
{
    const effdim_compare_file *f = R->f;
    FILE *fp = open_in(dir, "sorted.dat", "w");
    if (!fp) return -1;
    /* index 0: the eigenvalues */
    for (size_t i = 0; i < f->k; ++i)
        if (f->eigenvalues[i] > f->sorted_floor) fprintf(fp, "%zu %.10g\n", i + 1, f->eigenvalues[i]);
    fprintf(fp, "\n\n");
    for (size_t d = 0; d < f->n_diags; ++d) {
        fprintf(fp, "rank %s\n", f->diag_names[d]);
        for (size_t i = 0; i < f->sorted_n[d]; ++i)
            fprintf(fp, "%zu %.10g\n", (size_t)f->sorted[d][2 * i], f->sorted[d][2 * i + 1]);
        fprintf(fp, "\n\n");
    }
    fclose(fp);
    if (!(fp = open_in(dir, "curves.dat", "w"))) return -1;
    fprintf(fp, "z top-k upper_bound");
    for (size_t d = 0; d < f->n_diags; ++d) fprintf(fp, " %s", f->diag_names[d]);
    fprintf(fp, "\n");
    for (size_t i = 0; i < f->curve_m; ++i) { /* z, top-k, bound, diagonals... */
        fprintf(fp, "%.10g %.10g %.10g", f->curve_z[i], f->curve_eigs[i],
                f->curve_bound ? f->curve_bound[i] : (double)NAN);
        for (size_t d = 0; d < f->n_diags; ++d) fprintf(fp, " %.10g", f->curve_diag[d][i]);
        fprintf(fp, "\n");
    }
    fclose(fp);
    if (!(fp = open_in(dir, "slq.dat", "w"))) return -1;
    for (size_t i = 0; i < f->slq_m; ++i)
        fprintf(fp, "%.10g %.10g %.10g\n", f->slq_z[i], f->slq_n_eff[i],
                f->slq_se ? f->slq_se[i] : 0.0);
    fclose(fp);
    return 0;
}

static int write_plot_script(const cmp_run *R, const char *dir)
{
    const effdim_compare_file *f = R->f;
    FILE *fp = open_in(dir, "plot.gp", "w");
    if (!fp) return -1;
    const char *op = !strcmp(f->ref_operator, "ggn") ? "GGN" : "Hessian"; /* no file text */
    static const char *const colors[8] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e",
                                          "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    fprintf(fp, "cd '%s'\n", dir); /* mkdtemp's name: /tmp/effdim-compare-XXXXXX */
    fprintf(fp, "set terminal pngcairo size 1100,620 font 'sans,11'\n"
                "set logscale xy\nset grid\nset key outside right top box opaque\n"
                "set format y '10^{%%L}'\nset format x '10^{%%L}'\n");
    for (int i = 0; i < 8; ++i) /* dash types 1-4 keep coinciding curves visible */
        fprintf(fp, "set linetype %d lc rgb '%s' lw 2 dt %d\n", i + 1, colors[i], 1 + i % 4);
    fprintf(fp, "set linetype cycle 8\n");
    fprintf(fp, "set output 'spectrum.png'\n");
    fprintf(fp, "set title 'Top %zu %s eigenvalues and sorted diagonal entries (positive ones)'\n",
            f->k, op);
    fprintf(fp, "set xlabel 'rank'\nset ylabel 'value'\n");
    fprintf(fp, "plot 'sorted.dat' index 0 using 1:2 with points pt 7 ps 1.1 lc rgb 'black' "
                "title 'eigenvalues'");
    for (size_t d = 0; d < f->n_diags; ++d)
        fprintf(fp, ", '' index %zu using 1:2 with lines lt %zu title columnheader(2) noenhanced",
                d + 1, d % 8 + 1);
    fprintf(fp, "\n");
    fprintf(fp, "set output 'neff.png'\n");
    fprintf(fp, "set title 'Effective dimensionality N_{eff}(z) = {/Symbol S} v/(v+z)'\n");
    fprintf(fp, "set xlabel 'z'\nset ylabel 'N_{eff}(z)'\n");
    fprintf(fp, "plot 'curves.dat' using 1:2 with lines lw 3 dt 1 lc rgb 'black' title "
                "'top-%zu eigenvalues'", f->k);
    if (f->curve_bound)
        fprintf(fp, ", '' using 1:3 with lines lw 2 dt 2 lc rgb 'black' title 'upper bound (PSD, "
                    "exact trace)'");
    for (size_t d = 0; d < f->n_diags; ++d)
        fprintf(fp, ", '' using 1:%zu with lines lt %zu title columnheader(%zu) noenhanced", d + 4,
                d % 8 + 1, d + 4);
    if (f->slq_m)
        fprintf(fp, ", 'slq.dat' using 1:2:3 with yerrorlines lw 2 pt 7 ps 0.9 lc rgb 'gray30' "
                    "dt 1 title 'SLQ, whole spectrum (+- SE)'");
    fprintf(fp, "\n");
    fclose(fp);
    return 0;
}

static void remove_dir(const char *dir)
{
    char path[4200];
    for (size_t i = 0; i < N_PLOT_FILES; ++i) {
        snprintf(path, sizeof path, "%s/%s", dir, plot_files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Copy DIR/name to prefix-name. */
static int copy_figure(const char *dir, const char *name, const char *prefix)
{
    char out[4200];
    snprintf(out, sizeof out, "%s-%s", prefix, name);
    FILE *in = open_in(dir, name, "rb"), *o = in ? fopen(out, "wb") : NULL;
    char buf[65536];
    size_t n;
    int bad = !o;
    while (o && (n = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, n, o) != n;
    if (in) fclose(in);
    if (o) bad |= fclose(o) != 0;
    return bad ? cli_errorf(CMD, CLI_EXIT_FAIL, "cannot write %s", out) : 0;
}

static int plot(const cmp_run *R)
{
    char dir[] = "/tmp/effdim-compare-XXXXXX";
    if (!mkdtemp(dir)) return cli_errorf(CMD, CLI_EXIT_FAIL, "cannot create a temporary folder");
    if (write_plot_data(R, dir) || write_plot_script(R, dir)) {
        remove_dir(dir);
        return cli_errorf(CMD, CLI_EXIT_FAIL, "cannot write the plot files in %s", dir);
    }
    char last[256];
    int status = cli_gnuplot(dir, last, sizeof last);
    int rc = status != 0 ? cli_errorf(CMD, CLI_EXIT_FAIL,
                                      "gnuplot failed (status %d%s%s); is it installed (Debian: "
                                      "gnuplot-nox)? The numbers are in %s",
                                      status, last[0] ? ": " : "", last, R->o->out)
                         : 0;
    if (!rc) rc = copy_figure(dir, "spectrum.png", R->o->plot);
    if (!rc) rc = copy_figure(dir, "neff.png", R->o->plot);
    remove_dir(dir);
    if (!rc && !R->o->json)
        fprintf(stderr, "effdim compare: wrote %s-spectrum.png and %s-neff.png\n", R->o->plot,
                R->o->plot);
    return rc;
}

/* ======================================================================
 * main
 * ====================================================================== */

static void run_free(cmp_run *R)
{
    effdim_compare_file_free(R->f);
    effdim_spectrum_free(R->computed);
    effdim_spectrum_free(R->sfile);
    effdim_diag_file_free(R->dfile);
    effdim_dataset_free(R->ds);
    effdim_checkpoint_free(R->ckpt);
}

int cmd_compare(int argc, char **argv)
{
    cmp_opts o;
    char command[4096]; /* before getopt permutes argv */
    cli_command_line(argc, argv, command, sizeof command);
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    o.command = command;
    const char *claim_in[] = {o.ckpt, o.spectrum, o.diag, o.data, o.out};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 4)) ||
        (o.save_spectrum && (rc = cli_claim_output(CMD, o.save_spectrum, claim_in, 5))))
        return rc;
    cmp_run R;
    memset(&R, 0, sizeof R);
    R.o = &o;
    rc = load_inputs(&R);
    if (!rc) rc = run_job(&R);
    if (!rc) rc = save(&R);
    if (!rc) {
        if (o.json) print_json(&R);
        else print_table(&R);
    }
    if (!rc && o.plot) rc = plot(&R);
    run_free(&R);
    return rc;
}
