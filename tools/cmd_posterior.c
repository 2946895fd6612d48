/* tools/cmd_posterior.c: `effdim posterior CKPT --method M -o POSTERIOR.h5`,
 * a Gaussian posterior over the weights from curvature (effdim/posterior.h,
 * docs/posteriors.md).
 *
 * Parses the options into effdim_posterior_params (defaults from
 * effdim_posterior_default_params), loads the checkpoint and its training
 * data, calls effdim_posterior_build once, records the checkpoint's sha256
 * and writes the effdim.posterior file. Prints the prior precision, gamma
 * (= N_eff at z = alpha), the evidence iterations and the log evidence.
 * Exit status: 0 written; 3 written but the evidence iteration or Lanczos
 * stopped at its limit; 1 runtime failure; 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/posterior.h"
#include "effdim/sha256.h"
#include "effdim/spectrum.h"

#define CMD "posterior"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim posterior CKPT --method M -o POSTERIOR.h5 [options]\n\n"
            "A Gaussian posterior over the weights from the curvature (docs/posteriors.md).\n\n"
            "methods\n"
            "  badam-a      BADAM variant A: precision N sqrt(v) + prior, mean coef * theta\n"
            "  badam-b      BADAM variant B: precision N sqrt(v) (prior from training's L2)\n"
            "  ggn          diagonal Laplace from the exact GGN diagonal\n"
            "  ef           diagonal Laplace from the empirical Fisher\n"
            "  lowrank      top-k GGN eigenpairs (Lanczos) plus the prior or a diagonal\n"
            "  ivon         IVON's own posterior: precision ess (h + weight_decay) from an\n"
            "               IVON checkpoint's /optimizer (no data; its prior is ess wd)\n\n"
            "options\n"
            "  --data SPEC          training data (default: the checkpoint's)\n"
            "  --prior P            evidence (MacKay's fixed point; default), grid (Laplace\n"
            "                       marginal likelihood on a log grid), or a number\n"
            "  --grid MIN,MAX,N     the grid (default 1e-4,1e6,61)\n"
            "  --k K                lowrank: eigenpairs (default 20)\n"
            "  --rest prior|diag    lowrank: the other directions (default prior)\n"
            "  --N N                training-set size (default: the data's rows); with --data\n"
            "                       of fewer rows the curvature is scaled by N / rows\n"
            "  --noise-var S2       mse: observation noise variance (default: the mean\n"
            "                       squared training residual)\n"
            "  --badam-eps E        BADAM's eps (default 1e-8, the reference's)\n"
            "  --badam-eps-at W     precision (1/(N sqrt(v) + eps), the reference; default)\n"
            "                       or sqrtv (1/(N (sqrt(v) + eps)))\n"
            "  --bias-correction    BADAM: v / (1 - beta2^t) (default: uncorrected, as the\n"
            "                       reference)\n"
            "  --seed S             Lanczos start vector (default 0)\n"
            "  --threads T          OpenBLAS threads (default 2)\n"
            "  -o, --output FILE    the file to write (atomically)\n"
            "  --json               print a JSON summary\n"
            "  -h, --help           this help\n");
}

enum {
    OPT_METHOD = 256, OPT_DATA, OPT_PRIOR, OPT_GRID, OPT_K, OPT_REST, OPT_N, OPT_NOISE,
    OPT_EPS, OPT_EPS_AT, OPT_BIAS, OPT_SEED, OPT_THREADS, OPT_JSON
};

static const struct option long_opts[] = {
    {"method", required_argument, NULL, OPT_METHOD},
    {"data", required_argument, NULL, OPT_DATA},
    {"prior", required_argument, NULL, OPT_PRIOR},
    {"grid", required_argument, NULL, OPT_GRID},
    {"k", required_argument, NULL, OPT_K},
    {"rest", required_argument, NULL, OPT_REST},
    {"N", required_argument, NULL, OPT_N},
    {"noise-var", required_argument, NULL, OPT_NOISE},
    {"badam-eps", required_argument, NULL, OPT_EPS},
    {"badam-eps-at", required_argument, NULL, OPT_EPS_AT},
    {"bias-correction", no_argument, NULL, OPT_BIAS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct post_opts {
    effdim_posterior_params p;
    const char *ckpt, *data, *out;
    int have_method, threads, json;
} post_opts;

static int parse_one(void *ctx, int c, const char *arg)
{
    post_opts *o = ctx;
    effdim_error err;
    int rc = 0;
    switch (c) {
    case OPT_METHOD:
        if (effdim_post_method_parse(arg, &o->p.method, &err))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--method: %s", err.msg);
        o->have_method = 1;
        break;
    case OPT_DATA: o->data = arg; break;
    case OPT_PRIOR:
        if (!strcmp(arg, "evidence")) o->p.prior = EFFDIM_PRIOR_EVIDENCE;
        else if (!strcmp(arg, "grid")) o->p.prior = EFFDIM_PRIOR_GRID;
        else {
            o->p.prior = EFFDIM_PRIOR_FIXED;
            rc = cli_parse_double(CMD, "--prior", arg, &o->p.prior_precision);
            if (!rc && !(o->p.prior_precision > 0.0))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE,
                                "--prior: expected evidence, grid or a positive number, got %s",
                                arg);
        }
        break;
    case OPT_GRID: {
        double g[3];
        size_t n = 0;
        rc = cli_parse_double_list(CMD, "--grid", arg, g, 3, &n);
        if (!rc && (n != 3 || !(g[0] > 0.0) || !(g[1] > g[0]) || g[2] < 2 || g[2] != floor(g[2])))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE,
                            "--grid: expected MIN,MAX,N with 0 < MIN < MAX and N >= 2, got %s", arg);
        if (!rc) {
            o->p.grid_min = g[0];
            o->p.grid_max = g[1];
            o->p.grid_points = (size_t)g[2];
        }
        break;
    }
    case OPT_K:
        rc = cli_parse_size(CMD, "--k", arg, &o->p.k);
        if (!rc && o->p.k == 0) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--k: expected >= 1");
        break;
    case OPT_REST:
        if (!strcmp(arg, "prior")) o->p.rest = EFFDIM_LOWRANK_REST_PRIOR;
        else if (!strcmp(arg, "diag")) o->p.rest = EFFDIM_LOWRANK_REST_DIAG;
        else rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--rest: expected prior or diag, got %s", arg);
        break;
    case OPT_N:
        rc = cli_parse_double(CMD, "--N", arg, &o->p.N);
        if (!rc && !(o->p.N > 0.0)) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--N: expected > 0");
        break;
    case OPT_NOISE:
        rc = cli_parse_double(CMD, "--noise-var", arg, &o->p.noise_var);
        if (!rc && !(o->p.noise_var > 0.0))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--noise-var: expected > 0");
        break;
    case OPT_EPS:
        rc = cli_parse_double(CMD, "--badam-eps", arg, &o->p.badam_eps);
        if (!rc && !(o->p.badam_eps >= 0.0))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--badam-eps: expected >= 0");
        break;
    case OPT_EPS_AT:
        if (!strcmp(arg, "precision")) o->p.badam_eps_mode = EFFDIM_BADAM_EPS_PRECISION;
        else if (!strcmp(arg, "sqrtv")) o->p.badam_eps_mode = EFFDIM_BADAM_EPS_SQRTV;
        else
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--badam-eps-at: expected precision or sqrtv, got %s",
                            arg);
        break;
    case OPT_BIAS: o->p.badam_bias_correction = 1; break;
    case OPT_SEED: rc = cli_parse_u64(CMD, "--seed", arg, &o->p.seed); break;
    case OPT_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case OPT_JSON: o->json = 1; break;
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static void print_summary(const post_opts *o, const effdim_posterior *p, int json)
{
    double vmin = INFINITY, vmax = 0.0, vsum = 0.0;
    for (size_t j = 0; j < p->P; ++j) {
        vmin = fmin(vmin, p->var[j]);
        vmax = fmax(vmax, p->var[j]);
        vsum += p->var[j];
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o->out);
        cJSON_AddStringToObject(j, "checkpoint", o->ckpt);
        if (p->data_spec) cJSON_AddStringToObject(j, "data", p->data_spec);
        cJSON_AddStringToObject(j, "method", effdim_post_method_name(p->method));
        cJSON_AddStringToObject(j, "prior", effdim_prior_mode_name(p->prior_mode));
        cJSON_AddNumberToObject(j, "n_params", (double)p->P);
        cJSON_AddNumberToObject(j, "N", p->N);
        cJSON_AddNumberToObject(j, "k", (double)p->k);
        if (isfinite(p->prior_precision))
            cJSON_AddNumberToObject(j, "prior_precision", p->prior_precision);
        if (isfinite(p->gamma)) cJSON_AddNumberToObject(j, "gamma", p->gamma);
        cJSON_AddNumberToObject(j, "evidence_iterations", (double)p->evidence_iterations);
        cJSON_AddBoolToObject(j, "evidence_converged", p->evidence_converged);
        if (isfinite(p->log_evidence)) cJSON_AddNumberToObject(j, "log_evidence", p->log_evidence);
        if (isfinite(p->noise_var)) cJSON_AddNumberToObject(j, "noise_var", p->noise_var);
        cJSON_AddNumberToObject(j, "var_min", vmin);
        cJSON_AddNumberToObject(j, "var_mean", vsum / (double)p->P);
        cJSON_AddNumberToObject(j, "var_max", vmax);
        cli_json_print(j);
        return;
    }
    printf("%s: %s posterior over %zu parameters, N = %.0f%s%s\n", o->ckpt,
           effdim_post_method_name(p->method), p->P, p->N, p->data_spec ? ", data " : "",
           p->data_spec ? p->data_spec : "");
    if (p->method == EFFDIM_POSTERIOR_BADAM_B)
        printf("prior             none (variant B: the prior entered through training's L2 term)\n");
    else if (p->method == EFFDIM_POSTERIOR_IVON)
        printf("prior precision   %.6g (IVON's own: ess x weight_decay)\n", p->prior_precision);
    else
        printf("prior precision   %.6g (%s)\n", p->prior_precision,
               effdim_prior_mode_name(p->prior_mode));
    if (p->prior_mode == EFFDIM_PRIOR_EVIDENCE && p->method != EFFDIM_POSTERIOR_BADAM_B)
        printf("evidence          %zu iterations, %s\n", p->evidence_iterations,
               p->evidence_converged ? "converged" : "NOT converged");
    if (isfinite(p->gamma)) printf("gamma             %.6g (= N_eff at z = alpha)\n", p->gamma);
    if (isfinite(p->log_evidence)) printf("log evidence      %.8g (Laplace)\n", p->log_evidence);
    if (isfinite(p->noise_var)) printf("noise variance    %.6g\n", p->noise_var);
    if (p->k) printf("low rank          k = %zu, top curvature %.6g\n", p->k, p->s[0]);
    printf("variances         min %.4g, mean %.4g, max %.4g\n", vmin, vsum / (double)p->P, vmax);
    printf("written to %s\n", o->out);
}

int cmd_posterior(int argc, char **argv)
{
    post_opts o;
    memset(&o, 0, sizeof o);
    o.p = effdim_posterior_default_params();
    o.threads = 2;
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_one_operand(CMD, argc, argv, "a checkpoint", &o.ckpt))) return rc;
    if (!o.have_method)
        return cli_errorf(CMD, CLI_EXIT_USAGE,
                          "--method is required (badam-a, badam-b, ggn, ef, lowrank or ivon)");
    if (!o.out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o/--output is required");
    const char *claim_in[] = {o.ckpt, o.data};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 2))) return rc;
    effdim_blas_set_threads(o.threads);
    cli_catch_interrupts();
    effdim_error err;
    effdim_checkpoint *ck = NULL;
    effdim_dataset *ds = NULL;
    const char *spec = NULL;
    int badam = o.p.method == EFFDIM_POSTERIOR_BADAM_A || o.p.method == EFFDIM_POSTERIOR_BADAM_B;
    effdim_status st;
    int ivon = o.p.method == EFFDIM_POSTERIOR_IVON; /* needs no data */
    if (ivon || (badam && o.p.N > 0.0 && !o.data && o.p.prior != EFFDIM_PRIOR_GRID))
        st = cli_load_checkpoint(o.ckpt, NULL, &ck, &spec, &err);
    else
        st = cli_load_model_and_data(o.ckpt, o.data, &ck, &spec, &ds, &err);
    if ((badam && o.p.N > 0.0 && !ds) || ivon) spec = NULL;
    if (st) {
        effdim_checkpoint_free(ck);
        return cli_fail(CMD, &err);
    }
    cli_progress_sink sink;
    cli_progress_sink_init(&sink, CMD);
    o.p.progress = cli_progress_of(&sink);
    effdim_posterior *post = NULL;
    st = effdim_posterior_build(ck, o.ckpt, ds, &o.p, &post, &err);
    cli_progress_sink_done(&sink);
    int partial = st == EFFDIM_EMAXITER && post;
    if (partial) fprintf(stderr, "effdim %s: warning: %s\n", CMD, err.msg);
    if (st && !partial) rc = cli_fail(CMD, &err);
    if (!rc) {
        if (effdim_sha256_file(o.ckpt, post->checkpoint_sha256, NULL)) post->checkpoint_sha256[0] = 0;
        if (effdim_posterior_save(post, o.out, &err)) rc = cli_fail(CMD, &err);
    }
    if (!rc) print_summary(&o, post, o.json);
    effdim_posterior_free(post);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(ck);
    return rc ? rc : partial ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
}
