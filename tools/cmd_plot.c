/* tools/cmd_plot.c: `effdim plot SPECTRUM.h5 -o FIG.png`, the figure of a spectrum file.
 *
 * Three panels from the file as effdim_spectrum_load reads it (nothing is
 * recomputed): (1) the Lanczos eigenvalues by index, with their true
 * residuals ||H v - lambda v|| on a log axis beside them; (2) the spectral
 * density from `effdim spectrum --density` (the figure PyHessian draws:
 * log density against lambda), or a note that the file has none; (3) N_eff(z)
 * on a log z axis: the SLQ estimate with +- 1 SE error bars, the points the
 * spectrum job flagged as unreliable circled (/effdim/n_eff_slq_flags; files
 * without it: |bias| > 2 SE from the stored bias and SE), the Ritz sum over
 * the top k, and the exact curve when --dense ran.
 *
 * Strings from the file (checkpoint path, data spec, ...) are data: the title
 * keeps only characters that mean nothing to gnuplot inside a single-quoted
 * string with enhanced text off (letters, digits, space and . , : = + - _ / ( )
 * [ ] # %), anything else becomes '?'. Numbers go through data files.
 * Exit status: 0 written; 1 the file cannot be read or gnuplot failed; 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"
#include "plot.h"

#define CMD "plot"
#define TITLE_MAX 160

typedef struct plot_opts {
    const char *out;
} plot_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim plot SPECTRUM.h5 -o FIG.png\n\n"
            "The figure of an effdim.spectrum file: the eigenvalues with their residuals,\n"
            "the spectral density (effdim spectrum --density), and N_eff(z) with the SLQ\n"
            "estimate's +- 1 SE error bars (the points the spectrum run flagged unreliable\n"
            "circled), the Ritz sum over the top k and the exact curve (--dense). The\n"
            "title names the model and\n"
            "the data. Drawn by gnuplot (Debian: gnuplot-nox).\n\n"
            "  -o, --output FILE    the PNG (required; replaced only on success)\n"
            "  -h, --help           this help\n");
}

static int parse_one(void *ctx, int c, const char *arg)
{
    plot_opts *o = ctx;
    if (c == 'o') o->out = arg;
    return 0;
}

/* dst (cap) = src with every character outside the safe set replaced by '?',
 * cut at cap - 1 (an ellipsis marks a cut). */
static void safe_text(char *dst, size_t cap, const char *src)
{
    static const char ok[] = " .,:=+-_/()[]#%";
    size_t j = 0;
    for (const unsigned char *s = (const unsigned char *)(src ? src : "?"); *s && j + 1 < cap;
         ++s) {
        int c = *s;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c && strchr(ok, c));
        dst[j++] = keep ? (char)c : '?';
    }
    dst[j] = '\0';
    if (src && strlen(src) >= cap && cap > 4) memcpy(dst + cap - 4, "...", 4);
}

static effdim_status write_data(cli_plot *p, const effdim_spectrum *s, int *n_flagged,
                                effdim_error *err)
{
    FILE *f = cli_plot_open(p, "eig.dat", NULL, 0, err);
    if (!f) return err->code;
    for (size_t i = 0; i < s->k; ++i)
        fprintf(f, "%zu %.17g %.17g\n", i + 1, s->eigenvalues[i],
                s->residuals && s->residuals[i] > 0.0 ? s->residuals[i] : (double)NAN);
    effdim_status st = cli_plot_close(p, f, err);
    if (st) return st;
    if (!(f = cli_plot_open(p, "density.dat", NULL, 0, err))) return err->code;
    for (size_t i = 0; i < s->n_grid; ++i)
        fprintf(f, "%.17g %.17g\n", s->grid[i], s->density[i] > 0.0 ? s->density[i] : (double)NAN);
    if ((st = cli_plot_close(p, f, err))) return st;
    /* z, Ritz, SLQ, SE, dense, flagged SLQ (NaN when not flagged) */
    *n_flagged = 0;
    if (!(f = cli_plot_open(p, "neff.dat", NULL, 0, err))) return err->code;
    for (size_t j = 0; j < s->m; ++j) {
        double slq = s->n_eff_slq ? s->n_eff_slq[j] : (double)NAN;
        double se = s->n_eff_slq_se ? s->n_eff_slq_se[j] : (double)NAN;
        unsigned flag = 0;
        if (s->n_eff_slq && s->slq_flags)
            flag = s->slq_flags[j];
        else if (s->n_eff_slq && s->n_eff_slq_bias && isfinite(se)) /* older files: the bias flag */
            flag = effdim_slq_neff_flag(0.0, (double)NAN, s->z[j], EFFDIM_NEG_ASIS, se,
                                        s->n_eff_slq_bias[j]);
        if (flag) ++*n_flagged;
        fprintf(f, "%.17g %.17g %.17g %.17g %.17g %.17g\n", s->z[j], s->n_eff[j], slq, se,
                s->n_eff_dense ? s->n_eff_dense[j] : (double)NAN, flag ? slq : (double)NAN);
    }
    return cli_plot_close(p, f, err);
}

static effdim_status write_script(cli_plot *p, const effdim_spectrum *s, int n_flagged,
                                  effdim_error *err)
{
    char model[TITLE_MAX], data[TITLE_MAX], op[64], hvp[64], red[64], which[64], pol[64];
    safe_text(model, sizeof model, s->checkpoint);
    safe_text(data, sizeof data, s->data_spec);
    safe_text(op, sizeof op, s->op);
    safe_text(hvp, sizeof hvp, s->hvp_method);
    safe_text(red, sizeof red, s->reduction);
    safe_text(which, sizeof which, s->which);
    safe_text(pol, sizeof pol, s->neg_policy);
    FILE *f = cli_plot_open(p, "plot.gp", NULL, 0, err);
    if (!f) return err->code;
    fprintf(f, "set terminal pngcairo size 1500,500 font ',10' noenhanced\n");
    fprintf(f, "set output '%s'\n", p->tmp_png);
    fprintf(f, "cd '%s'\n", p->dir);
    fprintf(f, "set datafile missing NaN\n");
    fprintf(f, "set multiplot layout 1,3 title '%s  |  data %s  |  %s %s (%s), P = %llu, n = %llu'\n",
            model, data, op, hvp, red, (unsigned long long)s->n_params,
            (unsigned long long)s->n);
    /* panel 1: eigenvalues and residuals */
    fprintf(f, "set title 'top-%zu Lanczos eigenvalues (%s)'\n", s->k, which);
    fprintf(f, "set xlabel 'index i'\nset ylabel 'lambda_i'\nset y2label 'residual ||Hv - lambda v||'\n");
    fprintf(f, "set logscale y2\nset format y2 '%%.0e'\nset y2tics\nset ytics nomirror\n");
    fprintf(f, "set key top right box opaque\n");
    fprintf(f, "plot 'eig.dat' u 1:2 w lp pt 7 ps 0.8 lc rgb '#1f77b4' t 'eigenvalue', "
               "'' u 1:3 axes x1y2 w p pt 2 lc rgb '#d62728' t 'residual (right axis)'\n");
    fprintf(f, "unset logscale y2\nunset y2tics\nunset y2label\nset ytics mirror\n");
    /* panel 2: density */
    if (s->n_grid) {
        fprintf(f, "set title 'spectral density (SLQ, %llu probes, sigma %.3g)'\n",
                (unsigned long long)s->density_probes, s->density_sigma);
        double dmax = 0.0; /* the axis shows eight decades below the peak */
        for (size_t i = 0; i < s->n_grid; ++i) dmax = fmax(dmax, s->density[i]);
        fprintf(f, "set xlabel 'eigenvalue'\nset ylabel 'density (log)'\nset logscale y\n");
        if (dmax > 0.0 && isfinite(dmax)) fprintf(f, "set yrange [%.6g:%.6g]\n", dmax * 1e-8, dmax * 3.0);
        fprintf(f, "set format y '%%.0e'\nunset key\n");
        fprintf(f, "plot 'density.dat' u 1:2 w l lw 2 lc rgb '#2ca02c'\n");
        fprintf(f, "unset logscale y\nset format y '%%g'\nset autoscale y\n");
    } else {
        fprintf(f, "set title 'spectral density'\nunset key\nset xrange [0:1]\nset yrange [0:1]\n");
        fprintf(f, "unset xtics\nunset ytics\nset xlabel ''\nset ylabel ''\n");
        fprintf(f, "set label 1 'not in this file: run effdim spectrum --density' at 0.5,0.5 center\n");
        fprintf(f, "plot NaN notitle\n");
        fprintf(f, "unset label 1\nset xtics\nset ytics\nset autoscale x\nset autoscale y\n");
    }
    /* panel 3: N_eff(z) */
    fprintf(f, "set title 'effective dimensionality N_eff(z) (%s policy)'\n", pol);
    fprintf(f, "set xlabel 'z'\nset ylabel 'N_eff(z)'\nset logscale x\nset logscale y\n");
    fprintf(f, "set format x '%%.0e'\nset format y '%%g'\nset key top right box opaque\n");
    fprintf(f, "plot 'neff.dat' u 1:2 w lp pt 5 ps 0.7 lc rgb '#ff7f0e' t 'Ritz sum, top %zu'", s->k);
    if (s->n_eff_slq)
        fprintf(f, ", '' u 1:3:4 w yerrorlines pt 7 ps 0.8 lc rgb '#1f77b4' "
                   "t 'SLQ (%llu probes x %llu steps) +- 1 SE'",
                (unsigned long long)s->slq_probes, (unsigned long long)s->slq_steps);
    if (s->n_eff_slq && n_flagged)
        fprintf(f, ", '' u 1:6 w p pt 6 ps 2.5 lw 2 lc rgb '#d62728' t 'flagged unreliable'");
    if (s->n_eff_dense)
        fprintf(f, ", '' u 1:5 w l lw 2 dt 2 lc rgb 'black' t 'exact (dense)'");
    fprintf(f, "\nunset multiplot\n");
    return cli_plot_close(p, f, err);
}

int cmd_plot(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    plot_opts o = {0};
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, &o, usage);
    if (rc) return rc < 0 ? 0 : rc;
    const char *in = NULL;
    if ((rc = cli_one_operand(CMD, argc, argv, "a spectrum file", &in))) return rc;
    if (!o.out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o/--output is required");
    effdim_error err;
    effdim_error_clear(&err);
    effdim_spectrum *s = NULL;
    if (effdim_spectrum_load(in, &s, &err)) return cli_fail(CMD, &err);
    cli_plot p;
    int n_flagged = 0;
    effdim_status st = cli_plot_begin(&p, o.out, "plot", "-o", &err);
    if (!st) st = write_data(&p, s, &n_flagged, &err);
    if (!st) st = write_script(&p, s, n_flagged, &err);
    if (!st) st = cli_plot_run(&p, &err);
    cli_plot_end(&p);
    if (st) {
        effdim_spectrum_free(s);
        return cli_fail(CMD, &err);
    }
    printf("wrote %s: %zu eigenvalues, %s, N_eff at %zu z values%s%s\n", o.out, s->k,
           s->n_grid ? "density" : "no density (--density)", s->m,
           s->n_eff_slq ? " with SLQ error bars" : "", s->n_eff_dense ? " and the dense curve" : "");
    if (n_flagged) printf("  %d SLQ point(s) flagged unreliable (circled)\n", n_flagged);
    effdim_spectrum_free(s);
    return 0;
}
