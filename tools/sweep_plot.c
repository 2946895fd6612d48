/* tools/sweep_plot.c: `effdim sweep plot SWEEP.h5 -o FIG.png`, the
 * double-descent figure of a sweep table (tools/plot.h draws it).
 *
 * Rows are grouped by every grid coordinate but the seed (a series is one
 * depth, label-noise level and training-set size; its points are the
 * widths); each point is the mean over the seeds with error bars from the
 * smallest to the largest seed's value. Rows whose status is "failed" are
 * left out. Panels: train and test loss, test error, N_eff(z) (Ritz values;
 * SLQ dashed when present), first against the width, then against the
 * parameter count (both log scale). A grid with more than one depth and
 * width adds heat maps of test loss and N_eff(z middle) (Ritz, and SLQ when
 * present) over width x depth, with the iso-parameter curves: gnuplot's
 * contours of log10 n_params over the grid, one through each grid point of
 * the shallowest depth, labelled with its parameter count.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/sweep.h"
#include "plot.h"

int cmd_sweep_plot(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f, "usage: effdim sweep plot SWEEP.h5 -o FIG.png\n\n"
               "The double-descent figure: train/test loss, test error and N_eff(z) against\n"
               "width and against the parameter count (mean over seeds, bars from the\n"
               "smallest to the largest seed), heat maps for a width x depth grid with the\n"
               "curves of equal parameter count.\n");
}

typedef effdim_sweep_agg point; /* a series at one width, over its seeds */

static void series_title(const point *p, char *buf, size_t cap)
{
    int len = snprintf(buf, cap, "depth %lld", (long long)p->depth);
    if (!isnan(p->label_noise) && len >= 0 && (size_t)len < cap)
        len += snprintf(buf + len, cap - (size_t)len, ", noise %g", p->label_noise);
    if (len >= 0 && (size_t)len < cap) snprintf(buf + len, cap - (size_t)len, ", n %lld", (long long)p->n_train);
}

/* Data file: one block per series (blank lines between), columns
 * width n_params then (mean lo hi) per metric. */
static size_t write_data(FILE *f, const point *pts, size_t n, size_t m, char titles[][96],
                         size_t cap)
{
    size_t series = 0;
    for (size_t q = 0; q < n; ++q) {
        if (q == 0 || pts[q - 1].depth != pts[q].depth || pts[q - 1].n_train != pts[q].n_train ||
            !(pts[q - 1].label_noise == pts[q].label_noise ||
              (isnan(pts[q - 1].label_noise) && isnan(pts[q].label_noise)))) {
            if (q) fprintf(f, "\n\n");
            if (series < cap) series_title(&pts[q], titles[series], sizeof titles[series]);
            series++;
        }
        fprintf(f, "%lld %lld", (long long)pts[q].width, (long long)pts[q].n_params);
        for (size_t j = 0; j < m; ++j) fprintf(f, " %.10g %.10g %.10g", pts[q].mean[j], pts[q].lo[j], pts[q].hi[j]);
        fprintf(f, "\n");
    }
    return series < cap ? series : cap;
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f"};

/* One panel: metric column c (0-based metric index) of every series. */
static void panel(FILE *gp, const char *data, size_t xcol, size_t metric, size_t color,
                  size_t series, char titles[][96], const char *what, int dashed, int first)
{
    size_t col = 3 + 3 * metric;
    for (size_t s = 0; s < series; ++s)
        fprintf(gp, "%s'%s' index %zu u %zu:%zu:%zu:%zu w yerrorlines lw 2 pt 7 ps 0.6 %s lc rgb '%s' t '%s%s%s'",
                first && s == 0 ? "plot " : ", ", data, s, xcol, col, col + 1, col + 2,
                dashed ? "dt 2" : "dt 1", colors[(series > 1 ? s : color) % 8], what, series > 1 ? ", " : "",
                series > 1 ? titles[s] : "");
}

static effdim_status draw(const effdim_sweep_table *t, const char *png, effdim_error *err)
{
    point *pts = NULL;
    size_t n = 0, m = 4 + 2 * t->nz;
    effdim_status st = effdim_sweep_aggregate(t, &pts, &n, err);
    if (st) return st;
    if (n == 0) {
        free(pts);
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: no finished rows to plot", png);
    }
    int has_slq = 0;
    for (size_t q = 0; q < n; ++q) has_slq |= !isnan(pts[q].mean[4 + t->nz]);
    int64_t widths[64], depths[64];
    size_t nw = 0, nd = 0;
    for (size_t q = 0; q < n; ++q) {
        size_t a = 0, b = 0;
        while (a < nw && widths[a] != pts[q].width) ++a;
        if (a == nw && nw < 64) widths[nw++] = pts[q].width;
        while (b < nd && depths[b] != pts[q].depth) ++b;
        if (b == nd && nd < 64) depths[nd++] = pts[q].depth;
    }
    int heat = nw > 1 && nd > 1;
    cli_plot pl;
    char what[4200];
    snprintf(what, sizeof what, "-o %s", png);
    st = cli_plot_begin(&pl, png, "sweep", what, err);
    if (st) {
        free(pts);
        return st;
    }
    char data[CLI_PLOT_PATH + 64], heatf[CLI_PLOT_PATH + 64], paramf[CLI_PLOT_PATH + 64],
        isof[CLI_PLOT_PATH + 64];
    char titles[16][96];
    size_t series = 0;
    FILE *f = cli_plot_open(&pl, "sweep.dat", data, sizeof data, err);
    if (!f) st = err->code;
    if (f) {
        series = write_data(f, pts, n, m, titles, 16);
        st = cli_plot_close(&pl, f, err);
    }
    size_t zmid = t->nz / 2;
    /* the grid's parameter counts, for the iso-parameter curves (only when
     * every width x depth point of the first series is there) */
    int64_t grid_params[64][64];
    int full = heat;
    for (size_t a = 0; a < nw; ++a)
        for (size_t b = 0; b < nd; ++b) grid_params[a][b] = -1;
    if (!st && heat) {
        FILE *h = cli_plot_open(&pl, "heat.dat", heatf, sizeof heatf, err);
        if (!h) st = err->code;
        for (size_t q = 0; h && q < n; ++q) {
            size_t a = 0, b = 0;
            while (widths[a] != pts[q].width) ++a;
            while (depths[b] != pts[q].depth) ++b;
            if (grid_params[a][b] < 0) grid_params[a][b] = pts[q].n_params;
            fprintf(h, "%zu %zu %.10g %.10g %.10g\n", a, b, pts[q].mean[1], pts[q].mean[4 + zmid],
                    pts[q].mean[4 + t->nz + zmid]);
        }
        if (h) st = cli_plot_close(&pl, h, err);
        for (size_t a = 0; a < nw; ++a)
            for (size_t b = 0; b < nd; ++b) full &= grid_params[a][b] > 0;
    }
    /* log10 of n_params on the width x depth index grid, one block per depth:
     * gnuplot's contouring draws the curves of equal parameter count */
    if (!st && full) {
        FILE *h = cli_plot_open(&pl, "params.dat", paramf, sizeof paramf, err);
        if (!h) st = err->code;
        for (size_t b = 0; h && b < nd; ++b) {
            for (size_t a = 0; a < nw; ++a) fprintf(h, "%zu %zu %.10g\n", a, b, log10((double)grid_params[a][b]));
            fprintf(h, "\n");
        }
        if (h) st = cli_plot_close(&pl, h, err);
        /* gnuplot writes the curves into iso.dat (made here so that cli_plot_end removes it) */
        FILE *iso = st ? NULL : cli_plot_open(&pl, "iso.dat", isof, sizeof isof, err);
        if (!st && !iso) st = err->code;
        if (iso) st = cli_plot_close(&pl, iso, err);
    }
    FILE *gp = st ? NULL : cli_plot_open(&pl, "plot.gp", NULL, 0, err);
    if (!st && !gp) st = err->code;
    if (gp) {
        fprintf(gp, "set terminal pngcairo size 1500,%d font 'DejaVu Sans,10' noenhanced\nset output '%s'\n",
                heat ? 1260 : 860, pl.tmp_png);
        if (full) { /* the iso-parameter curves through every shallowest grid point */
            fprintf(gp, "set table '%s'\nset contour base\nunset surface\nset view map\n"
                        "set cntrparam linear\nset cntrparam levels discrete ", isof);
            for (size_t a = 0; a < nw; ++a)
                fprintf(gp, "%s%.10g", a ? ", " : "", log10((double)grid_params[a][0]));
            fprintf(gp, "\nsplot '%s' u 1:2:3 w l\nunset table\nunset contour\nset surface\n", paramf);
        }
        fprintf(gp, "set multiplot layout %d,3 title 'effdim sweep: %zu rows, %zu points (mean over "
                    "seeds, bars: smallest to largest seed)'\n",
                heat ? 3 : 2, t->n_rows, n);
        /* several series: a colour per series (train dashed, test solid), the key below the
         * panel and N_eff at the middle z only, so that no key covers the data */
        fprintf(gp, "set grid\nset logscale x 2\nset key %s\nset offsets graph 0.04, graph 0.04, 0, 0\n",
                series > 1 ? "below maxrows 3 samplen 2" : "top right");
        for (int axis = 0; axis < 2; ++axis) {
            size_t xcol = axis ? 2 : 1;
            const char *xl = axis ? "parameters" : "width (hidden units)";
            if (axis) fprintf(gp, "set logscale x 10\n");
            fprintf(gp, "set xlabel '%s'\nset title 'loss'\nset ylabel 'loss'\n", xl);
            panel(gp, data, xcol, 0, 0, series, titles, "train", 1, 1);
            panel(gp, data, xcol, 1, 1, series, titles, "test", 0, 0);
            fprintf(gp, "\nset title 'test error'\nset ylabel 'error'\n");
            panel(gp, data, xcol, 2, 1, series, titles, "test", 0, 1);
            panel(gp, data, xcol, 3, 0, series, titles, "train", 1, 0);
            fprintf(gp, "\nset title 'effective dimensionality'\nset ylabel 'N_eff(z)'\nset logscale y 10\n");
            for (size_t j = series > 1 ? zmid : 0; j < (series > 1 ? zmid + 1 : t->nz); ++j) {
                char label[64];
                snprintf(label, sizeof label, "Ritz z=%g", t->z[j]);
                panel(gp, data, xcol, 4 + j, 2 + j * series, series, titles, label, 0,
                      j == (series > 1 ? zmid : 0));
                if (has_slq) {
                    snprintf(label, sizeof label, "SLQ z=%g", t->z[j]);
                    panel(gp, data, xcol, 4 + t->nz + j, 2 + j * series, series, titles, label, 1, 0);
                }
            }
            fprintf(gp, "\nunset logscale y\n");
        }
        if (heat) {
            fprintf(gp, "unset logscale x\nset xlabel 'width'\nset ylabel 'depth'\nset key off\n"
                        "set palette rgb 33,13,10\nset xtics (");
            for (size_t a = 0; a < nw; ++a) fprintf(gp, "%s'%lld' %zu", a ? ", " : "", (long long)widths[a], a);
            fprintf(gp, ")\nset ytics (");
            for (size_t b = 0; b < nd; ++b) fprintf(gp, "%s'%lld' %zu", b ? ", " : "", (long long)depths[b], b);
            fprintf(gp, ")\nset offsets 0, 0, 0, 0\nset xrange [-0.5:%zu.5]\nset yrange [-0.5:%zu.5]\n",
                    nw - 1, nd - 1);
            /* the iso-parameter curves: white lines, each labelled where it
             * leaves the shallowest row (the n_params of that grid point) */
            char iso_plot[CLI_PLOT_PATH + 200] = "";
            if (full) {
                snprintf(iso_plot, sizeof iso_plot, ", '%s' u 1:2 w l lw 1.2 lc rgb 'white' notitle", isof);
                for (size_t a = 0; a < nw; ++a) {
                    double pc = (double)grid_params[a][0];
                    char lab[32];
                    if (pc < 1000) snprintf(lab, sizeof lab, "%.0f", pc);
                    else snprintf(lab, sizeof lab, "%.3gk", pc / 1000.0);
                    fprintf(gp, "set label %zu '%s' at %zu, -0.3 center front tc rgb 'white' font ',8'\n",
                            a + 1, lab, a);
                }
            }
            const char *iso_title = full ? " (white: equal parameter counts)" : "";
            fprintf(gp, "set title 'test loss%s'\nplot '%s' u 1:2:3 w image%s\n", iso_title, heatf, iso_plot);
            fprintf(gp, "set title 'N_eff(z=%g), Ritz%s'\nplot '%s' u 1:2:4 w image%s\n", t->z[zmid],
                    iso_title, heatf, iso_plot);
            if (has_slq)
                fprintf(gp, "set title 'N_eff(z=%g), SLQ%s'\nplot '%s' u 1:2:5 w image%s\n", t->z[zmid],
                        iso_title, heatf, iso_plot);
        }
        fprintf(gp, "unset multiplot\nset output\n");
        st = cli_plot_close(&pl, gp, err);
    }
    if (!st) st = cli_plot_run(&pl, err);
    cli_plot_end(&pl);
    free(pts);
    return st;
}

typedef struct plot_opts {
    const char *out;
} plot_opts;

static int parse_one(void *ctx, int c, const char *arg)
{
    plot_opts *o = ctx;
    if (c == 'o') {
        o->out = arg;
        return 0;
    }
    return CLI_EXIT_USAGE;
}

int cmd_sweep_plot(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    plot_opts o = {NULL};
    int rc = cli_getopt_loop("sweep plot", argc, argv, ":o:h", longopts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *in = NULL;
    if (cli_one_operand("sweep plot", argc, argv, "SWEEP.h5", &in)) return CLI_EXIT_USAGE;
    if (!o.out) return cli_errorf("sweep plot", CLI_EXIT_USAGE, "-o FIG.png is required");
    effdim_error err;
    effdim_sweep_table *t = NULL;
    if (effdim_sweep_table_load(in, &t, &err)) return cli_fail("sweep plot", &err);
    effdim_status st = draw(t, o.out, &err);
    size_t rows = t->n_rows;
    effdim_sweep_table_free(t);
    if (st) return cli_fail("sweep plot", &err);
    printf("%s: %zu rows of %s\n", o.out, rows, in);
    return CLI_EXIT_OK;
}
