/* tools/cmd_spectrum.c: `effdim spectrum`, the dominant curvature of a checkpoint.
 *
 *   effdim spectrum CKPT [--data SPEC] [-k 20] [--which top|bottom|both]
 *       [--op hessian|ggn] [--hvp fd|fd-central|fd-forward|exact] [--z LIST] [--tol 1e-8]
 *       [--density] [--save-vectors] [--per-layer] [--subset N] [--probes 30]
 *       [--slq-steps M] [--slq-target R,A] [--slq-budget N|Ns] [--reduction mean|sum]
 *       [--neg-policy zero|abs|asis] [--prior DELTA] [--seed S] [--threads T]
 *       [--allow-partial] [--dense [--force] [--dense-limit N]] -o spectrum.h5 [--json]
 *
 * Parse, call, print, save: the options fill an effdim_spectrum_params from
 * effdim_spectrum_default_params(); the checkpoint and its data (the spec
 * recorded in /training data_spec unless --data) are loaded; one call of
 * effdim_spectrum_compute (lib/spectrum_job.c: Lanczos, Ritz N_eff, the
 * deflated SLQ with its stop at an SE target, Hutch++, density, dense,
 * per-layer) runs with cli_progress_sink as its progress line and writes the
 * file once the pairs are known (marked partial); the result is saved
 * atomically over it and printed (or --json). SIGINT/SIGTERM stop the job
 * at its next report: the file is finished with what is complete, marked
 * partial, exit 3. Exit 3 also when fewer than k pairs converged (the file
 * is written), unless --allow-partial.
 */
#include <getopt.h>
#include <libgen.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/operator.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"

#define CMD "spectrum"
#define MAX_Z 64

typedef struct sp_opts {
    const char *ckpt;
    const char *data;
    const char *out;
    effdim_spectrum_params p;  /* the job's parameters, from its defaults */
    double z[MAX_Z];           /* --z, p.z points here */
    int hvp_given;
    int no_cache;
    int allow_partial;
    int threads;
    int json;
} sp_opts;

static void usage(FILE *f)
{
    effdim_spectrum_params d = effdim_spectrum_default_params();
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
            "  --hvp M              fd | fd-central | fd-forward | exact (default fd:\n"
            "                       Richardson-extrapolated central differences, 4\n"
            "                       gradients a product; fd-central 2, fd-forward 1;\n"
            "                       ggn is always exact)\n"
            "  --prior DELTA        add DELTA * I (weight decay on the loss's scale; default 0)\n"
            "  --z LIST             z values for N_eff (default: lambda_1 x 10^-4 .. lambda_1,\n"
            "                       one per decade at 2 digits, and z = 1)\n"
            "  --reduction R        mean | sum: the loss the curvature is of (default: the\n"
            "                       checkpoint's); sum scales every eigenvalue by n\n"
            "  --tol T              relative residual tolerance (default 1e-8)\n"
            "  --probes P           at most P SLQ probes, and the trace's products (default\n"
            "                       %zu; 0 = skip both)\n"
            "  --slq-target R[,A]   stop the SLQ once SE <= max(R x N_eff, A) at every z\n"
            "                       (default %g,%g; 0 = run all P probes)\n"
            "  --slq-budget B       stop the SLQ before it passes B products, B seconds with\n"
            "                       an 's' (600s), F times the Lanczos products with an 'x'\n"
            "                       (default %gx, less the trace's products: the whole run\n"
            "                       about %g times --probes 0), or none; the summary says\n"
            "                       when it ended the SLQ before its target\n"
            "  --slq-steps M        the most Lanczos steps per SLQ probe (default %zu); more\n"
            "                       steps resolve small z on indefinite spectra (the warning)\n"
            "  --slq-settle F       a probe stops once its N_eff at every z changes by at most\n"
            "                       F x the SE target between half its steps and its steps\n"
            "                       (default %g; 0: every probe runs --slq-steps)\n",
            d.probes, d.slq_target_rel, d.slq_target_abs, d.slq_budget_factor,
            d.slq_budget_factor + 1.0, d.slq_steps, d.slq_settle);
    fprintf(f,
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
            "  --dense-limit N      the largest P --dense accepts (default %zu)\n"
            "  --force              --dense above --dense-limit anyway\n"
            "  --json               print a JSON summary instead of text\n"
            "  -h, --help           this help\n\n"
            "The file holds the Lanczos pairs before the SLQ starts (marked partial, replaced\n"
            "atomically at the end); SIGINT or SIGTERM finishes it with what is complete.\n\n"
            "Exit status: 0 ok; 1 runtime failure; 2 usage; 3 partial result: the file is\n"
            "written but fewer than k eigenpairs converged (0 with --allow-partial), or the\n"
            "run was interrupted (the file's attribute partial = 1).\n",
            d.dense_limit);
}

/* the long options (values above any character) */
enum { O_DATA = 256, O_WHICH, O_OP, O_HVP, O_Z, O_TOL, O_DENSITY, O_VECTORS, O_PER_LAYER,
       O_SUBSET, O_PROBES, O_NEG, O_PRIOR, O_SEED, O_THREADS, O_BASIS, O_MAXMV, O_CHUNK,
       O_JSON, O_NOCACHE, O_SLQ_STEPS, O_PARTIAL, O_DENSE, O_FORCE, O_DENSE_LIMIT,
       O_SLQ_TARGET, O_SLQ_BUDGET, O_REDUCTION, O_SLQ_SETTLE };

/* --slq-target R[,A] */
static int parse_target(sp_opts *o, const char *arg)
{
    double v[2];
    size_t n = 0;
    int rc = cli_parse_double_list(CMD, "--slq-target", arg, v, 2, &n);
    if (rc) return rc;
    if (!(v[0] >= 0) || (n == 2 && !(v[1] >= 0)))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-target: %s, expected R[,A] >= 0", arg);
    o->p.slq_target_rel = v[0];
    o->p.slq_target_abs = n == 2 ? v[1] : v[0] == 0 ? 0.0 : o->p.slq_target_abs;
    return 0;
}

/* --slq-budget N (products), Ns (seconds), Fx (F x the Lanczos products) or none */
static int parse_budget(sp_opts *o, const char *arg)
{
    size_t len = strlen(arg);
    o->p.slq_budget_matvecs = 0;
    o->p.slq_budget_seconds = 0.0;
    if (!strcmp(arg, "none")) {
        o->p.slq_budget_factor = 0.0;
        return 0;
    }
    if (len > 1 && arg[len - 1] == 'x') {
        char num[64];
        snprintf(num, sizeof num, "%.*s", (int)(len - 1), arg);
        int rc = cli_parse_double(CMD, "--slq-budget", num, &o->p.slq_budget_factor);
        if (!rc && !(o->p.slq_budget_factor > 0 && isfinite(o->p.slq_budget_factor)))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-budget: %s, expected a factor > 0", arg);
        return rc;
    }
    if (len > 1 && arg[len - 1] == 's') {
        char num[64];
        snprintf(num, sizeof num, "%.*s", (int)(len - 1), arg);
        int rc = cli_parse_double(CMD, "--slq-budget", num, &o->p.slq_budget_seconds);
        if (!rc && !(o->p.slq_budget_seconds > 0))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-budget: %s, expected seconds > 0", arg);
        return rc;
    }
    int rc = cli_parse_size(CMD, "--slq-budget", arg, &o->p.slq_budget_matvecs);
    if (!rc && o->p.slq_budget_matvecs < 1)
        rc = cli_errorf(CMD, CLI_EXIT_USAGE,
                        "--slq-budget: %s, expected products >= 1, Ns, Fx or none", arg);
    return rc;
}

static int parse_one(void *ctx, int c, const char *arg)
{
    sp_opts *o = ctx;
    effdim_error err;
    int rc = 0;
    switch (c) {
    case 'o': o->out = arg; break;
    case 'k':
        rc = cli_parse_size(CMD, "-k", arg, &o->p.k);
        if (!rc && o->p.k < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "-k: expected at least 1");
        break;
    case O_DATA: o->data = arg; break;
    case O_WHICH:
        if (effdim_lanczos_which_parse(arg, &o->p.which, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--which: '%s', expected top, bottom or both",
                            arg);
        break;
    case O_OP:
        if (effdim_curvature_parse(arg, &o->p.op, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--op: %s", err.msg);
        break;
    case O_HVP:
        if (effdim_hvp_method_parse(arg, &o->p.hvp, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--hvp: %s", err.msg);
        o->hvp_given = 1;
        break;
    case O_Z:
        rc = cli_parse_double_list(CMD, "--z", arg, o->z, MAX_Z, &o->p.nz);
        o->p.z = o->z;
        for (size_t i = 0; !rc && i < o->p.nz; ++i)
            if (!(o->z[i] > 0))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--z: %g, expected values > 0", o->z[i]);
        break;
    case O_TOL:
        rc = cli_parse_double(CMD, "--tol", arg, &o->p.tol);
        if (!rc && !(o->p.tol > 0 && o->p.tol < 1))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--tol: %s, expected 0 < tol < 1", arg);
        break;
    case O_DENSITY: o->p.density = 1; break;
    case O_VECTORS: o->p.save_vectors = 1; break;
    case O_PER_LAYER: o->p.per_layer = 1; break;
    case O_SUBSET:
        rc = cli_parse_size(CMD, "--subset", arg, &o->p.subset);
        if (!rc && o->p.subset < 1) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--subset: at least 1");
        break;
    case O_PROBES: rc = cli_parse_size(CMD, "--probes", arg, &o->p.probes); break;
    case O_SLQ_STEPS:
        rc = cli_parse_size(CMD, "--slq-steps", arg, &o->p.slq_steps);
        if (!rc && o->p.slq_steps < 2)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-steps: %s, expected at least 2", arg);
        break;
    case O_PARTIAL: o->allow_partial = 1; break;
    case O_NEG:
        if (effdim_neg_policy_parse(arg, &o->p.neg, &err))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--neg-policy: '%s', expected zero, abs or asis",
                            arg);
        break;
    case O_PRIOR:
        rc = cli_parse_double(CMD, "--prior", arg, &o->p.prior);
        if (!rc && o->p.prior < 0)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--prior: %s, expected a value >= 0", arg);
        break;
    case O_SEED: rc = cli_parse_u64(CMD, "--seed", arg, &o->p.seed); break;
    case O_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case O_BASIS: rc = cli_parse_size(CMD, "--basis", arg, &o->p.basis); break;
    case O_MAXMV: rc = cli_parse_size(CMD, "--max-matvecs", arg, &o->p.max_matvecs); break;
    case O_CHUNK: rc = cli_parse_chunk(CMD, arg, &o->p.chunk); break;
    case O_JSON: o->json = 1; break;
    case O_NOCACHE: o->no_cache = 1; break;
    case O_DENSE: o->p.dense = 1; break;
    case O_SLQ_TARGET: rc = parse_target(o, arg); break;
    case O_SLQ_BUDGET: rc = parse_budget(o, arg); break;
    case O_SLQ_SETTLE:
        rc = cli_parse_double(CMD, "--slq-settle", arg, &o->p.slq_settle);
        if (!rc && !(o->p.slq_settle >= 0 && isfinite(o->p.slq_settle)))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--slq-settle: %s, expected a value >= 0", arg);
        break;
    case O_REDUCTION:
        if (effdim_reduction_parse(arg, &o->p.reduction, NULL))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--reduction: '%s', expected mean or sum", arg);
        o->p.set_reduction = 1;
        break;
    case O_FORCE: o->p.force = 1; break;
    case O_DENSE_LIMIT:
        rc = cli_parse_size(CMD, "--dense-limit", arg, &o->p.dense_limit);
        if (!rc && o->p.dense_limit < 1)
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
        {"slq-target", required_argument, 0, O_SLQ_TARGET},
        {"slq-budget", required_argument, 0, O_SLQ_BUDGET},
        {"slq-settle", required_argument, 0, O_SLQ_SETTLE},
        {"reduction", required_argument, 0, O_REDUCTION},
        {0, 0, 0, 0},
    };
    int rc = cli_getopt_loop(CMD, argc, argv, ":o:k:h", longopts, parse_one, o, usage);
    if (rc) return rc;
    if (optind >= argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "missing the checkpoint (effdim spectrum CKPT -o OUT.h5)");
    o->ckpt = argv[optind++];
    if (optind < argc) return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!o->out) return cli_errorf(CMD, CLI_EXIT_USAGE, "missing -o OUT.h5 (the spectrum file to write)");
    if (o->p.op == EFFDIM_CURV_GGN) {
        if (o->hvp_given && o->p.hvp != EFFDIM_HVP_EXACT)
            return cli_errorf(CMD, CLI_EXIT_USAGE,
                              "--hvp %s: Gauss-Newton products are always exact (omit --hvp or use exact)",
                              effdim_hvp_method_name(o->p.hvp));
        o->p.hvp = EFFDIM_HVP_EXACT;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------ */

/* why the SLQ stopped, and whether the SE target was reached */
static void print_slq_stop(const sp_opts *o, const effdim_spectrum *s)
{
    size_t worst = 0, missed = 0;
    double ratio = -1.0;
    for (size_t j = 0; j < s->m; ++j) {
        double t = fmax(s->slq_target_rel * fabs(s->n_eff_slq[j]), s->slq_target_abs);
        double r = t > 0 ? s->n_eff_slq_se[j] / t : 0.0;
        missed += !(r <= 1.0) && t > 0;
        if (r > ratio) {
            ratio = r;
            worst = j;
        }
    }
    const char *why = s->slq_stop;
    char budget[160];
    if (o->p.slq_budget_seconds > 0)
        snprintf(budget, sizeof budget, "the time budget (--slq-budget %gs)", o->p.slq_budget_seconds);
    else if (o->p.slq_budget_matvecs)
        snprintf(budget, sizeof budget, "the product budget (--slq-budget %zu)",
                 o->p.slq_budget_matvecs);
    else
        snprintf(budget, sizeof budget,
                 "the product budget (%llu: %g x the Lanczos products less the trace's; "
                 "--slq-budget sets it)",
                 (unsigned long long)s->slq_budget, o->p.slq_budget_factor);
    if (!strcmp(why, "target"))
        printf("  (SLQ stopped at the SE target max(%g x N_eff, %g), met at every z)\n",
               s->slq_target_rel, s->slq_target_abs);
    else if (!(s->slq_target_rel > 0 || s->slq_target_abs > 0))
        printf("  (SLQ ran all %llu probes: no SE target)\n", (unsigned long long)s->slq_probes);
    else
        printf("  (SLQ stopped by %s before the SE target: %zu of %zu z miss it, worst z = %g: "
               "SE %.2g against %.2g)\n",
               !strcmp(why, "budget")        ? budget
               : !strcmp(why, "interrupted") ? "the interrupt"
                                             : "the probe limit (--probes)",
               missed, s->m, s->z[worst], s->n_eff_slq_se[worst],
               fmax(s->slq_target_rel * fabs(s->n_eff_slq[worst]), s->slq_target_abs));
}

static void print_summary(const sp_opts *o, const effdim_spectrum *s)
{
    printf("checkpoint  %s (sha256 %.16s...), %llu parameters\n", o->ckpt, s->checkpoint_sha256,
           (unsigned long long)s->n_params);
    printf("data        %s: %llu rows%s, loss %s (%s: the loss is %.6g x sum of per-example losses)\n",
           s->data_spec, (unsigned long long)s->n, s->random_subset ? " (random subset)" : "",
           s->loss, s->reduction, s->scale);
    printf("operator    %s, %s products", s->op, s->hvp_method);
    if (s->fd_eps > 0) printf(" (step h = %.3g)", s->fd_eps);
    if (s->prior > 0) printf(", prior %g", s->prior);
    printf("\nlanczos     %s %zu, tol %g: %llu/%zu converged, %llu matvecs (%llu steps, %llu restarts), "
           "%.2f s\n",
           s->which, s->k, s->tol, (unsigned long long)s->nconv, s->k,
           (unsigned long long)s->lanczos_matvecs, (unsigned long long)s->steps,
           (unsigned long long)s->restarts, s->lanczos_seconds);
    printf("            %llu/%zu meet tol by their true residual ||H v - lambda v|| <= tol |lambda|\n",
           (unsigned long long)s->nconv_true, s->k);
    printf("   i  eigenvalue              residual   bound\n");
    for (size_t i = 0; i < s->k; ++i)
        printf("  %2zu  %-22.15g  %.2e   %.2e%s\n", i + 1, s->eigenvalues[i], s->residuals[i],
               s->residual_bounds[i], s->converged[i] ? "" : "  (not converged)");
    printf("N_eff       policy %s for negative eigenvalues\n", s->neg_policy);
    int slq = s->n_eff_slq != NULL, dense = s->dense_eigenvalues != NULL;
    printf("  %-12s %-14s %s%s\n", "z", "Ritz (k terms)", dense ? "exact (dense)  " : "",
           slq ? "whole spectrum (SLQ) +- SE (quadrature change at half the steps)" : "");
    for (size_t j = 0; j < s->m; ++j) {
        printf("  %-12g %-14.6g", s->z[j], s->n_eff[j]);
        if (dense) printf(" %-14.6g", s->n_eff_dense[j]);
        if (slq)
            printf(" %.6g +- %.2g (quadrature change at half the steps: %.2g)%s", s->n_eff_slq[j],
                   s->n_eff_slq_se[j], s->n_eff_slq_bias[j], s->slq_flags[j] ? "  UNRELIABLE" : "");
        printf("\n");
    }
    if (slq) {
        printf("  (SLQ: %llu probes x at most %llu steps (mean %.1f, %llu settled early), %llu "
               "pairs deflated, %llu matvecs, %.1f s; smallest Ritz value %.4g)\n",
               (unsigned long long)s->slq_probes, (unsigned long long)s->slq_steps,
               s->slq_probes ? (double)s->slq_steps_total / (double)s->slq_probes : 0.0,
               (unsigned long long)s->slq_settled, (unsigned long long)s->slq_deflated,
               (unsigned long long)s->slq_matvecs, s->slq_seconds, s->slq_lambda_min);
        print_slq_stop(o, s);
    }
    if (dense)
        printf("  (dense: all %llu eigenvalues %.6g .. %.6g, %llu matvecs, %.2f s; asymmetry "
               "max|A - A^T| / max|A| = %.2g before symmetrising)\n",
               (unsigned long long)s->n_params, s->dense_eigenvalues[0],
               s->dense_eigenvalues[s->n_params - 1], (unsigned long long)s->dense_matvecs,
               s->dense_seconds, s->dense_asymmetry);
    if (s->slq_warning) printf("  warning: %s\n", s->slq_warning);
    if (s->has_trace)
        printf("trace       %.8g +- %.2g (Hutch++, %llu matvecs)\n", s->trace, s->trace_se,
               (unsigned long long)s->trace_matvecs);
    if (s->n_grid)
        printf("density     %zu points on [%.4g, %.4g], sigma %.3g\n", s->n_grid, s->grid[0],
               s->grid[s->n_grid - 1], s->density_sigma);
    for (size_t l = 0; l < s->n_layers; ++l) {
        const effdim_spectrum_layer *ly = &s->layers[l];
        printf("layer %-5zu %zu parameters: top %.8g, N_eff(z=%g) = %.4g over %zu Ritz values\n", l,
               ly->size, ly->eigenvalues[0], s->z[0], ly->n_eff[0], ly->k);
    }
    printf("total       %llu matvecs, %.2f s; wrote %s\n", (unsigned long long)s->matvecs,
           s->seconds, o->out);
    if (effdim_comm_size(cli_comm()) > 1) {
        effdim_comm_stats cs = effdim_comm_get_stats(cli_comm());
        printf("ranks       %d MPI ranks; rank 0: %zu sums of %.3g doubles in all, %.2f s inside "
               "them (%.1f%% of the run)\n",
               effdim_comm_size(cli_comm()), cs.sums, (double)cs.doubles, cs.seconds,
               s->seconds > 0 ? 100.0 * cs.seconds / s->seconds : 0.0);
    }
}

static cJSON *summary_json(const sp_opts *o, const effdim_spectrum *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "checkpoint", o->ckpt);
    cJSON_AddStringToObject(j, "checkpoint_sha256", s->checkpoint_sha256);
    cJSON_AddStringToObject(j, "data_spec", s->data_spec);
    cJSON_AddNumberToObject(j, "n", (double)s->n);
    cJSON_AddNumberToObject(j, "n_params", (double)s->n_params);
    cJSON_AddStringToObject(j, "loss", s->loss);
    cJSON_AddStringToObject(j, "reduction", s->reduction);
    cJSON_AddNumberToObject(j, "scale", s->scale);
    cJSON_AddStringToObject(j, "operator", s->op);
    cJSON_AddStringToObject(j, "hvp_method", s->hvp_method);
    cJSON_AddNumberToObject(j, "fd_eps", s->fd_eps);
    cJSON_AddNumberToObject(j, "prior", s->prior);
    cJSON_AddStringToObject(j, "which", s->which);
    cJSON_AddNumberToObject(j, "tol", s->tol);
    cJSON_AddNumberToObject(j, "k", (double)s->k);
    cJSON_AddNumberToObject(j, "nconv_true", (double)s->nconv_true);
    cJSON_AddBoolToObject(j, "partial", s->partial);
    cJSON_AddItemToObject(j, "eigenvalues", cli_json_doubles(s->eigenvalues, s->k));
    cJSON_AddItemToObject(j, "residuals", cli_json_doubles(s->residuals, s->k));
    cJSON_AddItemToObject(j, "residual_bounds", cli_json_doubles(s->residual_bounds, s->k));
    cJSON_AddNumberToObject(j, "nconv", (double)s->nconv);
    cJSON_AddNumberToObject(j, "steps", (double)s->steps);
    cJSON_AddNumberToObject(j, "lanczos_matvecs", (double)s->lanczos_matvecs);
    cJSON_AddNumberToObject(j, "restarts", (double)s->restarts);
    cJSON_AddItemToObject(j, "z", cli_json_doubles(s->z, s->m));
    cJSON_AddItemToObject(j, "n_eff", cli_json_doubles(s->n_eff, s->m));
    cJSON_AddStringToObject(j, "neg_policy", s->neg_policy);
    if (s->n_eff_slq) {
        cJSON_AddItemToObject(j, "n_eff_slq", cli_json_doubles(s->n_eff_slq, s->m));
        cJSON_AddItemToObject(j, "n_eff_slq_se", cli_json_doubles(s->n_eff_slq_se, s->m));
        cJSON_AddItemToObject(j, "n_eff_slq_bias", cli_json_doubles(s->n_eff_slq_bias, s->m));
        cJSON_AddNumberToObject(j, "slq_steps", (double)s->slq_steps);
        cJSON_AddNumberToObject(j, "slq_probes", (double)s->slq_probes);
        cJSON_AddNumberToObject(j, "slq_max_probes", (double)s->slq_max_probes);
        cJSON_AddNumberToObject(j, "slq_deflated", (double)s->slq_deflated);
        cJSON_AddNumberToObject(j, "slq_matvecs", (double)s->slq_matvecs);
        cJSON_AddStringToObject(j, "slq_stop", s->slq_stop);
        cJSON_AddNumberToObject(j, "slq_target_rel", s->slq_target_rel);
        cJSON_AddNumberToObject(j, "slq_target_abs", s->slq_target_abs);
        cJSON_AddNumberToObject(j, "slq_budget_matvecs", (double)o->p.slq_budget_matvecs);
        cJSON_AddNumberToObject(j, "slq_budget_seconds", o->p.slq_budget_seconds);
        cJSON_AddNumberToObject(j, "slq_budget_factor", o->p.slq_budget_factor);
        cJSON_AddNumberToObject(j, "slq_budget", (double)s->slq_budget);
        cJSON_AddNumberToObject(j, "slq_settle", o->p.slq_settle);
        cJSON_AddNumberToObject(j, "slq_steps_total", (double)s->slq_steps_total);
        cJSON_AddNumberToObject(j, "slq_settled", (double)s->slq_settled);
        cJSON_AddNumberToObject(j, "slq_lambda_min", s->slq_lambda_min);
        if (s->slq_warning) cJSON_AddStringToObject(j, "slq_warning", s->slq_warning);
    }
    if (s->dense_eigenvalues) {
        cJSON_AddItemToObject(j, "n_eff_dense", cli_json_doubles(s->n_eff_dense, s->m));
        cJSON_AddNumberToObject(j, "dense_asymmetry", s->dense_asymmetry);
        cJSON_AddNumberToObject(j, "dense_matvecs", (double)s->dense_matvecs);
        cJSON_AddNumberToObject(j, "dense_lambda_min", s->dense_eigenvalues[s->n_params - 1]);
    }
    if (s->has_trace) {
        cJSON_AddNumberToObject(j, "trace", s->trace);
        cJSON_AddNumberToObject(j, "trace_se", s->trace_se);
    }
    if (s->notes) cJSON_AddStringToObject(j, "notes", s->notes);
    cJSON_AddNumberToObject(j, "matvecs", (double)s->matvecs);
    cJSON_AddNumberToObject(j, "seconds", s->seconds);
    cJSON_AddNumberToObject(j, "lanczos_seconds", s->lanczos_seconds);
    cJSON_AddNumberToObject(j, "lanczos_matvecs", (double)s->lanczos_matvecs);
    cJSON_AddNumberToObject(j, "product_seconds", s->product_seconds);
    if (effdim_comm_size(cli_comm()) > 1) {
        effdim_comm_stats cs = effdim_comm_get_stats(cli_comm());
        cJSON_AddNumberToObject(j, "ranks", effdim_comm_size(cli_comm()));
        cJSON_AddNumberToObject(j, "comm_sums", (double)cs.sums);
        cJSON_AddNumberToObject(j, "comm_seconds", cs.seconds);
    }
    cJSON_AddStringToObject(j, "output", o->out);
    return j;
}

/* the warnings of a finished run, on stderr */
static void print_warnings(const effdim_spectrum *s)
{
    for (const char *n = s->notes; n && *n;) {
        const char *e = strchr(n, '\n');
        int len = e ? (int)(e - n) : (int)strlen(n);
        fprintf(stderr, "effdim spectrum: note: %.*s\n", len, n);
        n += len + (e != NULL);
    }
    if (s->slq_warning) fprintf(stderr, "effdim spectrum: warning: %s\n", s->slq_warning);
    for (size_t l = 0; l < s->n_layers; ++l)
        if (s->layers[l].nconv < s->layers[l].k)
            fprintf(stderr, "effdim spectrum: warning: layer %zu: %zu of %zu eigenpairs met tol\n",
                    l, s->layers[l].nconv, s->layers[l].k);
}

int cmd_spectrum(int argc, char **argv)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.p = effdim_spectrum_default_params();
    char cmdline[4096]; /* before getopt permutes argv */
    cli_command_line(argc, argv, cmdline, sizeof cmdline);
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *claim_in[] = {o.ckpt, o.data};
    if (cli_rank0()) rc = cli_claim_output(CMD, o.out, claim_in, 2); /* rank 0 alone writes */
    if ((rc = cli_comm_rc(rc))) return rc;
    if (o.threads) effdim_blas_set_threads(o.threads);
    o.p.cache = !o.no_cache;
    o.p.checkpoint = o.ckpt;

    /* fail before the work when the output cannot be created (the file itself is
     * written atomically at the end) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o.out);
    const char *dn = dirname(dir);
    if (cli_rank0() && access(dn, W_OK | X_OK) != 0) /* rank 0 alone writes */
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "%s: cannot write into the folder '%s'", o.out, dn);
    if ((rc = cli_comm_rc(rc))) return rc;

    effdim_error err;
    effdim_error_clear(&err);
    effdim_checkpoint *ck = NULL;
    effdim_dataset *ds = NULL;
    effdim_spectrum *s = NULL;
    const char *spec = NULL;
    effdim_status st = cli_load_model_and_data(o.ckpt, o.data, &ck, &spec, &ds, &err);
    o.p.comm = cli_comm();
    if (!st && effdim_spectrum_check_params(&o.p, ck->mlp.n_params, &err)) {
        effdim_dataset_free(ds);
        effdim_checkpoint_free(ck);
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s", err.msg);
    }
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    cli_catch_interrupts();
    o.p.progress = cli_progress_of(&sink);
    o.p.data_spec = spec;
    o.p.command_line = cmdline;
    o.p.partial_path = o.out;
    if (!st) st = effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &o.p, &s, &err);
    cli_progress_sink_done(&sink);
    int interrupted = st == EFFDIM_EMAXITER && s; /* what is complete, marked partial */
    if (interrupted) st = EFFDIM_OK;
    if (!st && cli_rank0()) st = effdim_spectrum_save(s, o.out, &err);
    st = effdim_comm_agree(cli_comm(), st, &err);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(ck);
    if (st) {
        effdim_spectrum_free(s);
        return cli_fail(CMD, &err);
    }
    print_warnings(s);
    if (o.json) cli_json_print(summary_json(&o, s));
    else print_summary(&o, s);
    rc = CLI_EXIT_OK;
    if (interrupted) {
        fprintf(stderr, "effdim spectrum: interrupted: %s is written with what was complete "
                        "(attribute partial = 1; exit 3)\n", o.out);
        rc = CLI_EXIT_PARTIAL;
    }
    if (s->nconv < s->k) {
        fprintf(stderr, "effdim spectrum: %s: %llu of %zu eigenpairs converged%s\n",
                o.allow_partial ? "warning" : "partial result: the file is written, but only",
                (unsigned long long)s->nconv, s->k,
                o.allow_partial ? " (--allow-partial: exit 0)"
                                : " (exit 3; raise --max-matvecs or --basis, or --allow-partial)");
        if (!o.allow_partial) rc = CLI_EXIT_PARTIAL;
    }
    effdim_spectrum_free(s);
    return rc;
}
