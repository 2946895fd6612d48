/* tools/demo_blr.c: `effdim demo blr`, posterior contraction in Bayesian
 * linear regression as points are added (Maddox, Benton and Wilson 2020,
 * Section 4, the notebook "BLR effective dimension"; SEEDS.md 4.5).
 *
 * One library job (effdim_blr_run, lib/blr.c) over the notebook's
 * configuration by default: 200 Fourier features on 300 inputs in [0, 50],
 * noise variance 0.1, prior covariance 3 I, points added one at a time in a
 * seeded random order. It writes DIR/blr.h5 (docs/file-formats.md,
 * "effdim.blr") and DIR/blr.png (gnuplot): left, N_eff (z = 5) of the
 * posterior covariance's eigenvalues and of the function-space covariance
 * Phi S_post Phi^T against n, the band between --shade A,B (default 175,225,
 * around n = k = 200) shaded; right, N_eff(H, 1/alpha^2) beside the
 * contraction (tr S_prior - tr S_post) / alpha^2 and min(n, k). It prints a
 * table every 25 points and the largest relative error of the identity
 * tr S_prior - tr S_post = alpha^2 N_eff(H, 1/alpha^2).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "demo.h"
#include "effdim/blr.h"
#include "plot.h"

#define CMD "demo blr"

typedef struct blr_opts {
    effdim_blr_params p;
    const char *out;
    double shade[2];
    size_t every;
    int json;
} blr_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim demo blr [--out DIR] [options]\n\n"
            "Bayesian linear regression on Fourier features (Maddox et al. 2020, Section 4):\n"
            "the effective dimensionality of the posterior as points are added one at a time,\n"
            "and the identity tr(S_prior) - tr(S_post) = alpha^2 N_eff(H, 1/alpha^2).\n\n"
            "  --out DIR        folder for blr.h5 and blr.png (default effdim-demo)\n"
            "  --points N       inputs x = linspace(0, x_max, N) (default 300)\n"
            "  --x-max X        (default 50)\n"
            "  --freq F         features cos((j+1) pi x), sin((j+1) pi x), j < F (default 100)\n"
            "  --noise S2       noise variance, the divisor of Phi^T Phi (default 0.1)\n"
            "  --prior-var A2   prior covariance A2 I (default 3)\n"
            "  --z Z            z of the posterior and function-space N_eff (default 5)\n"
            "  --seed S         order in which points are added (default 0)\n"
            "  --shade A,B      shade the band A <= n <= B in the figure (default 175,225)\n"
            "  --every K        table rows every K points (default 25)\n"
            "  --json           a JSON summary on stdout instead of the table\n"
            "  -h, --help       this help\n");
}

enum { O_OUT = 'o', O_POINTS = 256, O_XMAX, O_FREQ, O_NOISE, O_PRIOR, O_Z, O_SEED, O_SHADE,
       O_EVERY, O_JSON };

static int parse_one(void *ctx, int c, const char *arg)
{
    blr_opts *o = ctx;
    size_t n = 0;
    switch (c) {
    case O_OUT: o->out = arg; return 0;
    case O_POINTS: return cli_parse_size(CMD, "--points", arg, &o->p.n_points);
    case O_XMAX: return cli_parse_double(CMD, "--x-max", arg, &o->p.x_max);
    case O_FREQ: return cli_parse_size(CMD, "--freq", arg, &o->p.n_freq);
    case O_NOISE: return cli_parse_double(CMD, "--noise", arg, &o->p.noise);
    case O_PRIOR: return cli_parse_double(CMD, "--prior-var", arg, &o->p.prior_var);
    case O_Z: return cli_parse_double(CMD, "--z", arg, &o->p.z);
    case O_SEED: return cli_parse_u64(CMD, "--seed", arg, &o->p.seed);
    case O_EVERY: {
        int rc = cli_parse_size(CMD, "--every", arg, &o->every);
        if (!rc && o->every == 0)
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--every: expected >= 1, got 0");
        return rc;
    }
    case O_SHADE: {
        int rc = cli_parse_double_list(CMD, "--shade", arg, o->shade, 2, &n);
        if (!rc && (n != 2 || !(o->shade[0] <= o->shade[1])))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--shade: expected A,B with A <= B, got '%s'", arg);
        return rc;
    }
    case O_JSON: o->json = 1; return 0;
    }
    return CLI_EXIT_USAGE;
}

/* The figure: the data (n, posterior, function, Hessian, contraction / a2, min(n, k)) and the script. */
static effdim_status write_figure(const effdim_blr_result *r, const blr_opts *o, const char *png,
                                  effdim_error *err)
{
    char what[CLI_PLOT_PATH + 16], data[CLI_PLOT_PATH + 64];
    snprintf(what, sizeof what, "%s", png);
    cli_plot pl;
    effdim_status st = cli_plot_begin(&pl, png, "blr", what, err);
    if (st) return st;
    FILE *f = cli_plot_open(&pl, "blr.dat", data, sizeof data, err);
    if (!f) st = err->code;
    for (size_t n = 0; f && n < r->n_rows; ++n)
        fprintf(f, "%zu %.12g %.12g %.12g %.12g %zu\n", n, r->neff_posterior[n], r->neff_function[n],
                r->neff_hessian[n], r->contraction[n] / r->params.prior_var, n < r->k ? n : r->k);
    if (f) st = cli_plot_close(&pl, f, err);
    FILE *gp = st ? NULL : cli_plot_open(&pl, "plot.gp", NULL, 0, err);
    if (!st && !gp) st = err->code;
    if (gp) {
        const effdim_blr_params *p = &r->params;
        fprintf(gp, "set terminal pngcairo size 1200,460 font 'DejaVu Sans,10' noenhanced\n"
                    "set output '%s'\n",
                pl.tmp_png);
        fprintf(gp, "set multiplot layout 1,2 title 'Bayesian linear regression, %zu Fourier "
                    "features, %zu inputs in [0, %g], noise %g, prior %g I (seed %llu)'\n",
                r->k, p->n_points, p->x_max, p->noise, p->prior_var, (unsigned long long)p->seed);
        fprintf(gp, "set grid\nset xlabel 'data points added n'\nset key top right\n"
                    "set xrange [0:%zu]\n", p->n_points);
        fprintf(gp, "set object 1 rect from %g, graph 0 to %g, graph 1 fc rgb '#e0e0e0' "
                    "fs solid 1.0 noborder behind\n", o->shade[0], o->shade[1]);
        fprintf(gp, "set title 'N_eff(z = %g) of the posterior'\nset ylabel 'N_eff'\nset yrange [0:*]\n",
                p->z);
        fprintf(gp, "plot '%s' u 1:2 w l lw 2 lc rgb '#1f77b4' t 'posterior covariance "
                    "eigenvalues', '' u 1:3 w l lw 2 lc rgb '#d62728' t 'function space "
                    "Phi S_post Phi^T'\n", data);
        fprintf(gp, "unset object 1\n");
        fprintf(gp, "set title 'N_eff(H, 1/alpha^2) and the posterior contraction'\n"
                    "set key bottom right\n");
        fprintf(gp, "plot '%s' u 1:6 w l lw 1 dt 2 lc rgb '#7f7f7f' t 'min(n, k)', "
                    "'' u 1:4 w l lw 3 lc rgb '#2ca02c' t 'N_eff(H, 1/alpha^2)', "
                    "'' u 1:5 w l lw 1 lc rgb '#000000' t '(tr S_prior - tr S_post) / alpha^2'\n",
                data);
        fprintf(gp, "unset multiplot\nset output\n");
        st = cli_plot_close(&pl, gp, err);
    }
    if (!st) st = cli_plot_run(&pl, err);
    cli_plot_end(&pl);
    return st;
}

static void print_table(const effdim_blr_result *r, const blr_opts *o)
{
    const effdim_blr_params *p = &r->params;
    printf("%6s %6s %16s %16s %16s %18s\n", "n", "rank", "N_eff posterior", "N_eff function",
           "N_eff(H,1/a2)", "contraction / a2");
    for (size_t n = 0; n < r->n_rows; ++n) {
        int shade = (double)n == o->shade[0] || (double)n == o->shade[1];
        if (n % o->every != 0 && n + 1 != r->n_rows && !shade) continue;
        printf("%6zu %6lld %16.6f %16.6f %16.6f %18.6f\n", n, (long long)r->rank[n],
               r->neff_posterior[n], r->neff_function[n], r->neff_hessian[n],
               r->contraction[n] / p->prior_var);
    }
    printf("identity  tr S_prior - tr S_post = a2 N_eff(H, 1/a2): max relative error %.2e over "
           "n = 1..%zu\n", r->max_identity_err, r->n_rows - 1);
}

static void print_json(const effdim_blr_result *r, const char *h5, const char *png)
{
    cJSON *j = cJSON_CreateObject();
    const effdim_blr_params *p = &r->params;
    size_t N = r->n_rows - 1;
    cJSON_AddStringToObject(j, "file", h5);
    cJSON_AddStringToObject(j, "plot", png);
    cJSON_AddNumberToObject(j, "n_points", (double)p->n_points);
    cJSON_AddNumberToObject(j, "n_features", (double)r->k);
    cJSON_AddNumberToObject(j, "noise", p->noise);
    cJSON_AddNumberToObject(j, "prior_var", p->prior_var);
    cJSON_AddNumberToObject(j, "z", p->z);
    cJSON_AddNumberToObject(j, "seed", (double)p->seed);
    cJSON_AddNumberToObject(j, "max_identity_err", r->max_identity_err);
    cJSON_AddItemToObject(j, "neff_posterior", cli_json_doubles(r->neff_posterior, r->n_rows));
    cJSON_AddItemToObject(j, "neff_function", cli_json_doubles(r->neff_function, r->n_rows));
    cJSON_AddItemToObject(j, "neff_hessian", cli_json_doubles(r->neff_hessian, r->n_rows));
    cJSON_AddNumberToObject(j, "final_contraction", r->contraction[N]);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cli_json_print(j);
}

int demo_blr(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, O_OUT},         {"points", required_argument, NULL, O_POINTS},
        {"x-max", required_argument, NULL, O_XMAX},      {"freq", required_argument, NULL, O_FREQ},
        {"noise", required_argument, NULL, O_NOISE},     {"prior-var", required_argument, NULL, O_PRIOR},
        {"z", required_argument, NULL, O_Z},             {"seed", required_argument, NULL, O_SEED},
        {"shade", required_argument, NULL, O_SHADE},     {"every", required_argument, NULL, O_EVERY},
        {"json", no_argument, NULL, O_JSON},             {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    blr_opts o = {.p = effdim_blr_default_params(), .out = "effdim-demo", .shade = {175, 225},
                  .every = 25};
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", longopts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (optind < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s' (effdim demo blr --help)",
                          argv[optind]);
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "--out %s: cannot create the folder: %s", o.out,
                          strerror(errno));
    char h5[CLI_PLOT_PATH], png[CLI_PLOT_PATH];
    snprintf(h5, sizeof h5, "%s/blr.h5", o.out);
    snprintf(png, sizeof png, "%s/blr.png", o.out);
    if ((rc = cli_claim_output(CMD, h5, NULL, 0)) || (rc = cli_claim_output(CMD, png, NULL, 0)))
        return rc;

    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    effdim_progress prog = cli_progress_of(&sink);
    cli_catch_interrupts();
    effdim_error err;
    effdim_blr_result *r = NULL;
    effdim_status st = effdim_blr_run(&o.p, &prog, &r, &err);
    cli_progress_sink_done(&sink);
    if (st && st != EFFDIM_EMAXITER) return cli_fail(CMD, &err);
    int exit_code = st ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
    if (st) fprintf(stderr, "effdim %s: %s; writing the rows done\n", CMD, err.msg);
    st = effdim_blr_save(r, h5, &err);
    if (!st) st = write_figure(r, &o, png, &err);
    if (st) {
        effdim_blr_result_free(r);
        return cli_fail(CMD, &err);
    }
    if (o.json)
        print_json(r, h5, png);
    else {
        print_table(r, &o);
        printf("wrote %s and %s (%.1f s)\n", h5, png, r->seconds);
    }
    effdim_blr_result_free(r);
    return exit_code;
}
