/* tools/cmd_svd.c: `effdim svd-var CKPT --diag DIAG.h5 [-o FIG.png]`, the
 * learned per-weight variances of a sparse-variational-dropout checkpoint
 * against the Laplace variances of a curvature diagonal.
 *
 *   effdim diag model.h5 --method ggn -o ggn.h5          (the masked network)
 *   effdim svd-var model.h5 --diag ggn.h5 -o fig.png
 *
 * For each kept variational weight (log alpha < threshold): sigma^2 =
 * exp(log alpha) theta^2 against 1 / (N * curv_j + prior), N the training-set
 * size (default: the diag file's n), curv_j the diagonal entry (the mean
 * loss's curvature at scale 1/n; effdim_svd_compare_variances). Prints the
 * counts, the correlation of the logs, the median log10 ratio and the binned
 * medians; the figure is a scatter (at most 20,000 points, every k-th) with
 * the binned medians and quartiles and the line sigma^2 = Laplace variance.
 * Exit status: 0 done; 1 a file cannot be read or does not fit; 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/checkpoint.h"
#include "effdim/diag.h"
#include "effdim/mlp_svd.h"
#include "plot.h"

#define CMD "svd-var"
#define MAX_POINTS 20000

typedef struct svd_opts {
    const char *diag, *entry, *out;
    double n, prior;
    int has_n;
    size_t bins;
    int json;
} svd_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim svd-var CKPT --diag DIAG.h5 [-o FIG.png] [options]\n\n"
            "The learned variances sigma^2 = exp(log alpha) theta^2 of a checkpoint trained\n"
            "with --svd against the Laplace variances 1 / (N curv + prior) of a diagonal\n"
            "from effdim diag (run on the same checkpoint: the masked network), for every\n"
            "kept variational weight (log alpha < 3).\n\n"
            "  --diag FILE          an effdim.diag file of the checkpoint (required)\n"
            "  --entry NAME         its diagonal to use (default ggn)\n"
            "  --n N                the data term's size N (default: the diag file's n)\n"
            "  --prior P            prior precision added to N curv (default 0)\n"
            "  --bins B             bins of log10 Laplace variance (default 12, at most %d)\n"
            "  -o, --output FILE    the figure (PNG, by gnuplot)\n"
            "  --json               the summary as JSON on stdout\n"
            "  -h, --help           this help\n",
            EFFDIM_SVD_CMP_MAX_BINS);
}

enum { OPT_DIAG = 256, OPT_ENTRY, OPT_N, OPT_PRIOR, OPT_BINS, OPT_JSON };

static int parse_one(void *ctx, int c, const char *arg)
{
    svd_opts *o = ctx;
    switch (c) {
    case OPT_DIAG: o->diag = arg; return 0;
    case OPT_ENTRY: o->entry = arg; return 0;
    case OPT_N: o->has_n = 1; return cli_parse_double(CMD, "--n", arg, &o->n);
    case OPT_PRIOR: return cli_parse_double(CMD, "--prior", arg, &o->prior);
    case OPT_BINS: return cli_parse_size(CMD, "--bins", arg, &o->bins);
    case OPT_JSON: o->json = 1; return 0;
    case 'o': o->out = arg; return 0;
    default: return CLI_EXIT_USAGE;
    }
}

static effdim_status write_plot(const char *png, const double *x, const double *y,
                                const effdim_svd_variance_cmp *r, size_t n_layers,
                                effdim_error *err)
{
    cli_plot p;
    char pts[CLI_PLOT_PATH + 64], bins[CLI_PLOT_PATH + 64];
    effdim_status st = cli_plot_begin(&p, png, "svd", "-o", err);
    FILE *f = st ? NULL : cli_plot_open(&p, "points.dat", pts, sizeof pts, err);
    if (!st && !f) st = err->code;
    size_t layers[EFFDIM_MLP_MAX_LAYERS], nl = 0; /* one data block per layer with pairs */
    if (!st) {
        size_t step = r->n > MAX_POINTS ? (r->n + MAX_POINTS - 1) / MAX_POINTS : 1;
        for (size_t l = 0; l < n_layers; ++l) {
            if (!r->layer_n[l]) continue;
            layers[nl++] = l;
            for (size_t i = r->layer_first[l]; i < r->layer_first[l] + r->layer_n[l]; i += step)
                fprintf(f, "%.9g %.9g\n", x[i], y[i]);
            fprintf(f, "\n\n");
        }
        st = cli_plot_close(&p, f, err);
    }
    f = st ? NULL : cli_plot_open(&p, "bins.dat", bins, sizeof bins, err);
    if (!st && !f) st = err->code;
    if (!st) {
        for (size_t b = 0; b < r->n_bins; ++b)
            if (r->bin_count[b])
                fprintf(f, "%.9g %.9g %.9g %.9g\n", r->bin_x[b], r->bin_median[b], r->bin_q1[b],
                        r->bin_q3[b]);
        st = cli_plot_close(&p, f, err);
    }
    f = st ? NULL : cli_plot_open(&p, "plot.gp", NULL, 0, err);
    if (!st && !f) st = err->code;
    if (!st) {
        fprintf(f, "set terminal pngcairo size 900,700 font ',11' noenhanced\n");
        fprintf(f, "set output '%s'\n", p.tmp_png);
        fprintf(f, "set title 'learned sigma^2 against Laplace variance 1/(N ggn + prior): %zu kept "
                   "weights, corr %.3f, median log10 ratio %.2f'\n", r->n, r->pearson,
                r->median_diff);
        fprintf(f, "set xlabel 'log10 Laplace variance 1/(N ggn_jj + prior)'\n");
        fprintf(f, "set ylabel 'log10 learned sigma^2'\nset key top left box opaque\nset grid\n");
        static const char *const colours[] = {"#b01f77b4", "#b02ca02c", "#b0ff7f0e", "#b09467bd"};
        fprintf(f, "plot ");
        for (size_t k = 0; k < nl; ++k)
            fprintf(f, "'%s' index %zu u 1:2 w p pt 7 ps 0.25 lc rgb '%s' t 'layer %zu "
                       "(corr %.2f, median log10 ratio %.2f)', ", pts, k, colours[k % 4],
                    layers[k], r->layer_pearson[layers[k]], r->layer_median_diff[layers[k]]);
        fprintf(f, "'%s' u 1:2:3:4 w yerrorlines pt 7 lw 2 lc rgb '#d62728' "
                   "t 'bin median, quartiles (all layers)', x w l dt 2 lc rgb 'black' "
                   "t 'sigma^2 = Laplace'\n", bins);
        st = cli_plot_close(&p, f, err);
    }
    if (!st) st = cli_plot_run(&p, err);
    cli_plot_end(&p);
    return st;
}

static void print_result(const char *ckpt, const svd_opts *o, double N, size_t n_layers,
                         const effdim_svd_variance_cmp *r)
{
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "checkpoint", ckpt);
        cJSON_AddStringToObject(j, "diag", o->diag);
        cJSON_AddStringToObject(j, "entry", o->entry);
        cJSON_AddNumberToObject(j, "N", N);
        cJSON_AddNumberToObject(j, "prior", o->prior);
        cJSON_AddNumberToObject(j, "pairs", (double)r->n);
        cJSON_AddNumberToObject(j, "dropped", (double)r->n_dropped);
        cJSON_AddNumberToObject(j, "flat", (double)r->n_flat);
        cJSON_AddNumberToObject(j, "pearson_log", r->pearson);
        cJSON_AddNumberToObject(j, "median_log10_ratio", r->median_diff);
        cJSON_AddNumberToObject(j, "fraction_sigma2_above", r->frac_above);
        cJSON *ly = cJSON_AddArrayToObject(j, "layers");
        for (size_t l = 0; l < n_layers; ++l) {
            if (!r->layer_n[l]) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "layer", (double)l);
            cJSON_AddNumberToObject(e, "pairs", (double)r->layer_n[l]);
            cJSON_AddNumberToObject(e, "pearson_log", r->layer_pearson[l]);
            cJSON_AddNumberToObject(e, "median_log10_ratio", r->layer_median_diff[l]);
            cJSON_AddItemToArray(ly, e);
        }
        cJSON *bins = cJSON_AddArrayToObject(j, "bins");
        for (size_t b = 0; b < r->n_bins; ++b) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "log10_laplace", r->bin_x[b]);
            cJSON_AddNumberToObject(e, "count", (double)r->bin_count[b]);
            if (r->bin_count[b]) {
                cJSON_AddNumberToObject(e, "median_log10_sigma2", r->bin_median[b]);
                cJSON_AddNumberToObject(e, "q1", r->bin_q1[b]);
                cJSON_AddNumberToObject(e, "q3", r->bin_q3[b]);
            }
            cJSON_AddItemToArray(bins, e);
        }
        cli_json_print(j);
        return;
    }
    printf("%zu kept weights compared (%zu dropped at log alpha >= threshold, %zu with zero "
           "curvature left out); N = %g, prior %g\n", r->n, r->n_dropped, r->n_flat, N, o->prior);
    printf("correlation of log10 sigma^2 and log10 Laplace variance %.3f; median log10 ratio "
           "%.3f; sigma^2 above the Laplace variance for %.1f%%\n", r->pearson, r->median_diff,
           100.0 * r->frac_above);
    for (size_t l = 0; l < n_layers; ++l)
        if (r->layer_n[l])
            printf("  layer %zu: %zu weights, correlation %.3f, median log10 ratio %.3f\n", l,
                   r->layer_n[l], r->layer_pearson[l], r->layer_median_diff[l]);
    printf("%14s %8s %14s %10s %10s\n", "log10 laplace", "count", "median log10 s2", "q1", "q3");
    for (size_t b = 0; b < r->n_bins; ++b)
        printf("%14.3f %8zu %14.3f %10.3f %10.3f\n", r->bin_x[b], r->bin_count[b],
               r->bin_median[b], r->bin_q1[b], r->bin_q3[b]);
}

int cmd_svd_variances(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"diag", required_argument, 0, OPT_DIAG}, {"entry", required_argument, 0, OPT_ENTRY},
        {"n", required_argument, 0, OPT_N},       {"prior", required_argument, 0, OPT_PRIOR},
        {"bins", required_argument, 0, OPT_BINS}, {"json", no_argument, 0, OPT_JSON},
        {"output", required_argument, 0, 'o'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    svd_opts o = {.entry = "ggn", .bins = 12};
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, &o, usage);
    if (rc) return rc < 0 ? 0 : rc;
    const char *ckpt = NULL;
    if ((rc = cli_one_operand(CMD, argc, argv, "a checkpoint", &ckpt))) return rc;
    if (!o.diag) return cli_errorf(CMD, CLI_EXIT_USAGE, "--diag DIAG.h5 is required");
    if (o.bins < 1 || o.bins > EFFDIM_SVD_CMP_MAX_BINS)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--bins: %zu, expected 1 to %d", o.bins,
                          EFFDIM_SVD_CMP_MAX_BINS);
    if (o.out) {
        const char *in[] = {ckpt, o.diag};
        if ((rc = cli_claim_output(CMD, o.out, in, 2))) return rc;
    }
    effdim_error err;
    effdim_checkpoint *c = NULL;
    effdim_diag_file *d = NULL;
    double *x = NULL, *y = NULL;
    if (effdim_checkpoint_load(ckpt, &c, &err) || effdim_diag_file_load(o.diag, &d, &err)) {
        rc = cli_fail(CMD, &err);
        goto done;
    }
    if (!c->svd) {
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "%s: no variational layers (/model svd_layers); train "
                        "it with effdim train --svd", ckpt);
        goto done;
    }
    const effdim_diag_entry *e = effdim_diag_file_find(d, o.entry);
    if (!e) {
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "%s: /diag/%s: missing, expected the diagonal named "
                        "by --entry", o.diag, o.entry);
        goto done;
    }
    if (d->n_params != c->mlp.n_params) {
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "%s: %llu parameters, but %s has %zu", o.diag,
                        (unsigned long long)d->n_params, ckpt, c->mlp.n_params);
        goto done;
    }
    /* the diagonal is at the file's scale (1/n for the mean): curv = v / (scale n) */
    double N = o.has_n ? o.n : (double)d->n;
    double to_mean = d->scale > 0 && d->n ? 1.0 / (d->scale * (double)d->n) : 1.0;
    size_t W = c->svd->svd.n_weights;
    x = malloc(W * sizeof *x);
    y = malloc(W * sizeof *y);
    double *curv = malloc(c->mlp.n_params * sizeof *curv);
    if (!x || !y || !curv) {
        free(curv);
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory (%zu weights)", W);
        goto done;
    }
    for (size_t i = 0; i < c->mlp.n_params; ++i) curv[i] = e->v[i] * to_mean;
    effdim_svd_variance_cmp r;
    effdim_status st = effdim_svd_compare_variances(&c->mlp, &c->svd->svd, c->theta,
                                                    c->svd->log_sigma2, curv, N, o.prior, o.bins,
                                                    x, y, &r, &err);
    free(curv);
    if (st) {
        rc = cli_errorf(CMD, st == EFFDIM_EDOM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE, "%s", err.msg);
        goto done;
    }
    if (o.out && write_plot(o.out, x, y, &r, c->mlp.n_layers, &err)) {
        rc = cli_fail(CMD, &err);
        goto done;
    }
    print_result(ckpt, &o, N, c->mlp.n_layers, &r);
    if (o.out && !o.json) printf("wrote %s\n", o.out);
done:
    free(x);
    free(y);
    effdim_diag_file_free(d);
    effdim_checkpoint_free(c);
    return rc;
}
