/* tools/cmd_surface.c: `effdim surface` and `effdim perturb`, the loss
 * surfaces and the perturbation test of Maddox, Benton and Wilson (2020,
 * Section 5; SEEDS.md 4.6) inside eigenspaces of a checkpoint's Hessian.
 *
 * Both compute the dense eigenbasis of the exact Hessian of the training
 * loss once (P exact products, dsyevd; lib/subspace.c), then:
 *   surface  the loss on random planes inside each --subspace (a grid of
 *            --points^2 over [-range/2, range/2]^2, directions of norm
 *            --scale), written to an "effdim.surface" file and drawn as one
 *            heat-map panel per subspace with gnuplot;
 *   perturb  for each SUBSPACE:NORM of --test, --directions random
 *            directions of that norm inside the subspace: the training
 *            predictions that change, as mean, min and max.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/hvp.h"
#include "effdim/subspace.h"
#include "plot.h"

#define MAX_SUB 8

typedef struct eig_opts {
    const char *cmd;
    const char *ckpt, *data;
    int threads;
    uint64_t seed;
    effdim_eig_order order;
    int json;
} eig_opts;

/* what both commands share: the model, its data and the eigenbasis */
typedef struct eig_run {
    effdim_checkpoint *ck;
    const char *spec;
    effdim_dataset *ds;
    effdim_eigenbasis *b;
} eig_run;

static void eig_run_free(eig_run *r)
{
    effdim_eigenbasis_free(r->b);
    effdim_dataset_free(r->ds);
    effdim_checkpoint_free(r->ck);
}

/* the checkpoint and its data (first, so arguments that depend on P are
 * checked before the eigenbasis is paid for) */
static int eig_run_load(const eig_opts *o, eig_run *r)
{
    effdim_error err;
    memset(r, 0, sizeof *r);
    effdim_blas_set_threads(o->threads);
    if (cli_load_model_and_data(o->ckpt, o->data, &r->ck, &r->spec, &r->ds, &err))
        return cli_fail(o->cmd, &err);
    return 0;
}

static int eig_run_basis(const eig_opts *o, eig_run *r)
{
    effdim_error err;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.method = EFFDIM_HVP_EXACT;
    effdim_operator *op = NULL;
    if (effdim_hvp_operator(&r->ck->mlp, r->ck->theta, r->ds, NULL, r->ds->n, &hp, NULL, &op, &err))
        return cli_fail(o->cmd, &err);
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, o->cmd);
    effdim_progress prog = cli_progress_of(&sink);
    cli_catch_interrupts();
    effdim_status st = effdim_eigenbasis_dense(op, o->order, &prog, &r->b, &err);
    cli_progress_sink_done(&sink);
    effdim_operator_free(op);
    if (st) return cli_fail(o->cmd, &err);
    return 0;
}

/* options both commands take: 0, or the exit code */
static int common_opt(eig_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'd': o->data = arg; return 0;
    case 't': return cli_parse_threads(o->cmd, arg, &o->threads);
    case 's': return cli_parse_u64(o->cmd, "--seed", arg, &o->seed);
    case 'j': o->json = 1; return 0;
    case 'O': {
        effdim_error err;
        if (effdim_eig_order_parse(arg, &o->order, &err))
            return cli_errorf(o->cmd, CLI_EXIT_USAGE, "--order: %s", err.msg);
        return 0;
    }
    }
    return -1;
}

/* ======================================================================== */
/* effdim surface                                                           */
/* ======================================================================== */

typedef struct surface_opts {
    eig_opts e;
    const char *subspaces, *out, *plot;
    effdim_surface_params p;
} surface_opts;

static void surface_usage(FILE *f)
{
    fprintf(f,
            "usage: effdim surface CKPT --subspace LIST -o SURFACE.h5 [options]\n\n"
            "The training loss on random 2-D planes inside eigenspaces of the checkpoint's\n"
            "Hessian (Maddox et al. 2020, Section 5). The eigenbasis is dense (P exact\n"
            "products and dsyevd; models of a few thousand parameters).\n\n"
            "  --subspace LIST   comma-separated: top:K, bottom:K, all, range:A:B (default\n"
            "                    all,top:3)\n"
            "  --range R         the grid spans [-R/2, R/2] on both axes (default 1)\n"
            "  --scale S         the norm of both directions (default 1)\n"
            "  --points N        grid points per axis (default 100)\n"
            "  --seed S          the random plane (default 0)\n"
            "  -o FILE           the effdim.surface file (docs/file-formats.md)\n"
            "  --plot FILE.png   one heat map per subspace (gnuplot)\n"
            "  --order abs|value eigenpairs sorted by |eigenvalue| (default, as the paper's\n"
            "                    notebook: bottom = nearest zero) or by eigenvalue (bottom =\n"
            "                    most negative)\n"
            "  --data SPEC       data for the loss (default: the checkpoint's training data)\n"
            "  --threads T       OpenBLAS threads (default 1)\n"
            "  -h, --help        this help\n");
}

enum { O_SUB = 256, O_RANGE, O_SCALE, O_POINTS, O_PLOT, O_TEST, O_DIRS };

static int surface_opt(void *ctx, int c, const char *arg)
{
    surface_opts *o = ctx;
    int rc = common_opt(&o->e, c, arg);
    if (rc >= 0) return rc;
    switch (c) {
    case O_SUB: o->subspaces = arg; return 0;
    case O_RANGE: return cli_parse_double(o->e.cmd, "--range", arg, &o->p.range);
    case O_SCALE: return cli_parse_double(o->e.cmd, "--scale", arg, &o->p.scale);
    case O_POINTS: return cli_parse_size(o->e.cmd, "--points", arg, &o->p.n_pts);
    case 'o': o->out = arg; return 0;
    case O_PLOT: o->plot = arg; return 0;
    }
    return CLI_EXIT_USAGE;
}

/* up to MAX_SUB subspaces from a comma-separated list */
static int parse_subspaces(const char *cmd, const char *list, size_t P, effdim_subspace *out,
                           size_t *n)
{
    char buf[256];
    if (strlen(list) >= sizeof buf)
        return cli_errorf(cmd, CLI_EXIT_USAGE, "--subspace: list too long");
    strcpy(buf, list);
    *n = 0;
    effdim_error err;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= MAX_SUB) return cli_errorf(cmd, CLI_EXIT_USAGE, "--subspace: at most %d", MAX_SUB);
        if (effdim_subspace_parse(tok, P, &out[*n], &err))
            return cli_errorf(cmd, CLI_EXIT_USAGE, "--subspace: %s", err.msg);
        ++*n;
    }
    return *n ? 0 : cli_errorf(cmd, CLI_EXIT_USAGE, "--subspace: empty list");
}

static effdim_status surface_figure(const effdim_surface_set *s, const char *png, effdim_error *err)
{
    char what[CLI_PLOT_PATH + 16], data[CLI_PLOT_PATH + 64], name[32];
    snprintf(what, sizeof what, "--plot %s", png);
    cli_plot pl;
    effdim_status st = cli_plot_begin(&pl, png, "surface", what, err);
    if (st) return st;
    size_t n = s->params.n_pts;
    char files[MAX_SUB][CLI_PLOT_PATH + 64];
    for (size_t k = 0; !st && k < s->n_surfaces; ++k) {
        snprintf(name, sizeof name, "s%zu.dat", k);
        FILE *f = cli_plot_open(&pl, name, files[k], sizeof files[k], err);
        if (!f) {
            st = err->code;
            break;
        }
        for (size_t i = 0; i < n; ++i) {
            for (size_t j = 0; j < n; ++j)
                fprintf(f, "%.9g %.9g %.9g\n", s->alpha[i], s->alpha[j], s->loss[(k * n + i) * n + j]);
            fputc('\n', f);
        }
        st = cli_plot_close(&pl, f, err);
    }
    FILE *gp = st ? NULL : cli_plot_open(&pl, "plot.gp", data, sizeof data, err);
    if (!st && !gp) st = err->code;
    if (gp) {
        fprintf(gp, "set terminal pngcairo size %zu,440 font 'DejaVu Sans,10' noenhanced\n"
                    "set output '%s'\n", 40 + 420 * s->n_surfaces, pl.tmp_png);
        fprintf(gp, "set multiplot layout 1,%zu title 'training loss on random planes in Hessian "
                    "eigenspaces (range %g, scale %g, seed %llu; loss at the centre %.4g)'\n",
                s->n_surfaces, s->params.range, s->params.scale,
                (unsigned long long)s->params.seed, s->center_loss);
        fprintf(gp, "set view map\nset size ratio -1\nset xlabel 'a (d1)'\nset ylabel 'b (d2)'\n"
                    "set palette rgbformulae 33,13,10\nset contour base\nset cntrparam levels 10\n"
                    "unset key\n");
        for (size_t k = 0; k < s->n_surfaces; ++k)
            fprintf(gp, "set title '%s (dim %zu)'\nsplot '%s' u 1:2:3 w pm3d, '' u 1:2:3 w l "
                        "lc rgb 'black' nosurface\n",
                    s->subspaces[k].name, s->subspaces[k].count, files[k]);
        fprintf(gp, "unset multiplot\nset output\n");
        st = cli_plot_close(&pl, gp, err);
    }
    if (!st) st = cli_plot_run(&pl, err);
    cli_plot_end(&pl);
    return st;
}

int cmd_surface(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subspace", required_argument, NULL, O_SUB}, {"range", required_argument, NULL, O_RANGE},
        {"scale", required_argument, NULL, O_SCALE},  {"points", required_argument, NULL, O_POINTS},
        {"seed", required_argument, NULL, 's'},       {"output", required_argument, NULL, 'o'},
        {"plot", required_argument, NULL, O_PLOT},    {"data", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},    {"order", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    surface_opts o = {.e = {.cmd = "surface", .threads = 1}, .subspaces = "all,top:3",
                      .p = effdim_surface_default_params()};
    int rc = cli_getopt_loop("surface", argc, argv, ":ho:", longopts, surface_opt, &o, surface_usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (optind + 1 != argc)
        return cli_errorf("surface", CLI_EXIT_USAGE, "expected one checkpoint (effdim surface --help)");
    if (!o.out) return cli_errorf("surface", CLI_EXIT_USAGE, "-o FILE is required");
    o.e.ckpt = argv[optind];
    const char *claim_in[] = {o.e.ckpt, o.e.data, o.out};
    if ((rc = cli_claim_output("surface", o.out, claim_in, 2)) ||
        (o.plot && (rc = cli_claim_output("surface", o.plot, claim_in, 3))))
        return rc;
    o.p.seed = o.e.seed;
    eig_run r;
    effdim_subspace sub[MAX_SUB];
    size_t ns = 0, n = o.p.n_pts;
    if ((rc = eig_run_load(&o.e, &r)) ||
        (rc = parse_subspaces("surface", o.subspaces, r.ck->mlp.n_params, sub, &ns)) ||
        (rc = eig_run_basis(&o.e, &r))) {
        eig_run_free(&r);
        return rc;
    }
    size_t P = r.ck->mlp.n_params;
    effdim_error err;
    effdim_status st = EFFDIM_OK;
    effdim_surface_set s = {.n_surfaces = ns, .params = o.p, .P = P, .eigenvalues = r.b->values,
                            .subspaces = sub, .checkpoint = (char *)o.e.ckpt,
                            .data_spec = (char *)r.spec};
    s.alpha = calloc(n + 1, sizeof(double));
    s.loss = calloc(ns * n * n + 1, sizeof(double));
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&r.ck->mlp, 0, &err);
    if (!s.alpha || !s.loss || !ws) st = effdim_error_set(&err, EFFDIM_ENOMEM, "surface: out of memory");
    if (!st) st = effdim_mlp_loss_grad(&r.ck->mlp, r.ck->theta, r.ds, NULL, r.ds->n, &s.center_loss,
                                       NULL, ws, &err);
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, "surface");
    effdim_progress prog = cli_progress_of(&sink);
    for (size_t k = 0; !st && k < ns; ++k)
        st = effdim_loss_surface(&r.ck->mlp, r.ck->theta, r.ds, r.b, &sub[k], &o.p, &prog, s.alpha,
                                 s.loss + k * n * n, &err);
    cli_progress_sink_done(&sink);
    if (!st) st = effdim_surface_save(&s, o.out, &err);
    if (!st && o.plot) st = surface_figure(&s, o.plot, &err);
    if (!st) {
        printf("%s: %zu parameters; eigenvalues by %s: first %.6g, last %.6g; asymmetry %.1e\n",
               o.e.ckpt, P, effdim_eig_order_name(r.b->order), r.b->values[0], r.b->values[P - 1],
               r.b->asymmetry);
        printf("%-14s %6s %12s %12s %12s\n", "subspace", "dim", "loss min", "loss max", "loss corner");
        for (size_t k = 0; k < ns; ++k) {
            const double *L = s.loss + k * n * n;
            double lo = L[0], hi = L[0];
            for (size_t i = 1; i < n * n; ++i) lo = fmin(lo, L[i]), hi = fmax(hi, L[i]);
            printf("%-14s %6zu %12.6g %12.6g %12.6g\n", sub[k].name, sub[k].count, lo, hi, L[0]);
        }
        printf("centre loss %.6g; wrote %s%s%s\n", s.center_loss, o.out, o.plot ? " and " : "",
               o.plot ? o.plot : "");
    }
    effdim_mlp_ws_free(ws);
    free(s.alpha);
    free(s.loss);
    eig_run_free(&r);
    return st ? cli_fail("surface", &err) : CLI_EXIT_OK;
}

/* ======================================================================== */
/* effdim perturb                                                           */
/* ======================================================================== */

typedef struct perturb_opts {
    eig_opts e;
    const char *tests;
    size_t dirs;
} perturb_opts;

static void perturb_usage(FILE *f)
{
    fprintf(f,
            "usage: effdim perturb CKPT --test SUBSPACE:NORM[,...] [options]\n\n"
            "The perturbation test of Maddox et al. 2020, Section 5: steps of a given norm\n"
            "in random directions inside an eigenspace of the checkpoint's Hessian, and how\n"
            "many training predictions they change (bce: sign of the logit; cross_entropy:\n"
            "argmax). The eigenbasis is dense (P exact products and dsyevd).\n\n"
            "  --test LIST       comma-separated SUBSPACE:NORM, SUBSPACE as in effdim surface\n"
            "                    (default bottom:500:10,top:3:0.1, the paper's pair)\n"
            "  --directions N    random directions per test (default 20)\n"
            "  --seed S          direction r of a test uses seed S + r (default 0)\n"
            "  --order abs|value eigenpairs sorted by |eigenvalue| (default, as the paper's\n"
            "                    notebook: bottom = nearest zero) or by eigenvalue (bottom =\n"
            "                    most negative)\n"
            "  --data SPEC       data (default: the checkpoint's training data)\n"
            "  --threads T       OpenBLAS threads (default 1)\n"
            "  --json            a JSON summary on stdout\n"
            "  -h, --help        this help\n");
}

static int perturb_opt(void *ctx, int c, const char *arg)
{
    perturb_opts *o = ctx;
    int rc = common_opt(&o->e, c, arg);
    if (rc >= 0) return rc;
    switch (c) {
    case O_TEST: o->tests = arg; return 0;
    case O_DIRS: return cli_parse_size(o->e.cmd, "--directions", arg, &o->dirs);
    }
    return CLI_EXIT_USAGE;
}

int cmd_perturb(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"test", required_argument, NULL, O_TEST},    {"directions", required_argument, NULL, O_DIRS},
        {"seed", required_argument, NULL, 's'},       {"data", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},    {"json", no_argument, NULL, 'j'},
        {"order", required_argument, NULL, 'O'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    perturb_opts o = {.e = {.cmd = "perturb", .threads = 1}, .tests = "bottom:500:10,top:3:0.1",
                      .dirs = 20};
    int rc = cli_getopt_loop("perturb", argc, argv, ":h", longopts, perturb_opt, &o, perturb_usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (optind + 1 != argc)
        return cli_errorf("perturb", CLI_EXIT_USAGE, "expected one checkpoint (effdim perturb --help)");
    if (o.dirs == 0) return cli_errorf("perturb", CLI_EXIT_USAGE, "--directions: expected >= 1");
    o.e.ckpt = argv[optind];
    eig_run r;
    if ((rc = eig_run_load(&o.e, &r))) {
        eig_run_free(&r);
        return rc;
    }
    size_t P = r.ck->mlp.n_params, nt = 0, n = r.ds->n;
    effdim_subspace sub[MAX_SUB];
    double norm[MAX_SUB];
    char buf[256];
    snprintf(buf, sizeof buf, "%s", o.tests);
    effdim_error err;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && !rc;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (nt >= MAX_SUB || !colon) {
            rc = cli_errorf("perturb", CLI_EXIT_USAGE, "--test '%s': expected SUBSPACE:NORM, at most "
                            "%d of them", tok, MAX_SUB);
            break;
        }
        *colon = '\0';
        if ((rc = cli_parse_double("perturb", "--test", colon + 1, &norm[nt]))) break;
        if (effdim_subspace_parse(tok, P, &sub[nt], &err))
            rc = cli_errorf("perturb", CLI_EXIT_USAGE, "--test: %s", err.msg);
        ++nt;
    }
    if (!rc) rc = eig_run_basis(&o.e, &r);
    size_t *changed = calloc(o.dirs, sizeof(size_t));
    double *loss = calloc(o.dirs, sizeof(double));
    cJSON *j = o.e.json && !rc ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (j) {
        cJSON_AddStringToObject(j, "checkpoint", o.e.ckpt);
        cJSON_AddNumberToObject(j, "n_params", (double)P);
        cJSON_AddNumberToObject(j, "n_rows", (double)n);
        cJSON_AddItemToObject(j, "tests", arr = cJSON_CreateArray());
    } else if (!rc) {
        printf("%s: %zu parameters, %zu training rows; eigenvalues by %s: first %.6g, last %.6g\n",
               o.e.ckpt, P, n, effdim_eig_order_name(r.b->order), r.b->values[0],
               r.b->values[P - 1]);
        printf("%-14s %6s %8s %5s %14s %6s %6s %12s\n", "subspace", "dim", "norm", "dirs",
               "changed mean", "min", "max", "mean loss");
    }
    for (size_t t = 0; !rc && t < nt; ++t) {
        if (effdim_perturb_predictions(&r.ck->mlp, r.ck->theta, r.ds, r.b, &sub[t], norm[t], o.dirs,
                                       o.e.seed, changed, loss, &err)) {
            rc = cli_fail("perturb", &err);
            break;
        }
        size_t lo = changed[0], hi = changed[0];
        double mean = 0.0, ml = 0.0;
        for (size_t d = 0; d < o.dirs; ++d) {
            lo = changed[d] < lo ? changed[d] : lo;
            hi = changed[d] > hi ? changed[d] : hi;
            mean += (double)changed[d] / (double)o.dirs;
            ml += loss[d] / (double)o.dirs;
        }
        if (j) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "subspace", sub[t].name);
            cJSON_AddNumberToObject(x, "dim", (double)sub[t].count);
            cJSON_AddNumberToObject(x, "norm", norm[t]);
            cJSON_AddNumberToObject(x, "changed_mean", mean);
            cJSON_AddNumberToObject(x, "changed_min", (double)lo);
            cJSON_AddNumberToObject(x, "changed_max", (double)hi);
            cJSON_AddNumberToObject(x, "loss_mean", ml);
            cJSON_AddItemToArray(arr, x);
        } else {
            printf("%-14s %6zu %8g %5zu %14.2f %6zu %6zu %12.6g\n", sub[t].name, sub[t].count,
                   norm[t], o.dirs, mean, lo, hi, ml);
        }
    }
    if (j && !rc) cli_json_print(j);
    else cJSON_Delete(j);
    free(changed);
    free(loss);
    eig_run_free(&r);
    return rc;
}
