/* tools/cmd_predict.c: `effdim predict POSTERIOR --data SPEC -o PRED.h5`, the
 * predictive distribution of a posterior file on a data set (Monte-Carlo
 * over weight samples, or the linearised GLM predictive; effdim/posterior.h).
 *
 * Loads the posterior (which carries the network), the data set, calls
 * effdim_predict once, writes the effdim.predictions file and prints
 * accuracy, NLL, ECE and Brier (classification) or RMSE and NLL
 * (regression; in the original units when the data's targets were
 * standardised, effdim_prediction target_mean / target_sd). Exit status: 0 written, 1 runtime failure, 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/posterior.h"

#define CMD "predict"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim predict POSTERIOR.h5 --data SPEC -o PREDICTIONS.h5 [options]\n\n"
            "The predictive distribution of a posterior (effdim posterior) on a data set, and\n"
            "its accuracy / RMSE, negative log-likelihood, ECE (15 bins) and Brier score.\n\n"
            "options\n"
            "  --data SPEC          the data to predict (required)\n"
            "  --samples S          Monte-Carlo weight samples (default 64)\n"
            "  --linearised         the linearised (GLM) predictive instead of samples\n"
            "                       (classification: probit approximation)\n"
            "  --point              the point prediction at the posterior mean (the MAP network;\n"
            "                       regression adds only the noise variance)\n"
            "  --tempering NS       divide the covariance by NS (the BADAM reference's N_s;\n"
            "                       default 1: the posterior as it is)\n"
            "  --fix-output-layer   keep the last layer at its mean (the reference's script)\n"
            "  --seed S             sampling seed (default 0)\n"
            "  --threads T          OpenBLAS threads (default 2)\n"
            "  -o, --output FILE    the file to write (atomically)\n"
            "  --json               print a JSON summary\n"
            "  -h, --help           this help\n");
}

enum { OPT_DATA = 256, OPT_SAMPLES, OPT_LIN, OPT_POINT, OPT_TEMPER, OPT_FIX, OPT_SEED, OPT_THREADS, OPT_JSON };

static const struct option long_opts[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"linearised", no_argument, NULL, OPT_LIN},
    {"linearized", no_argument, NULL, OPT_LIN},
    {"point", no_argument, NULL, OPT_POINT},
    {"tempering", required_argument, NULL, OPT_TEMPER},
    {"fix-output-layer", no_argument, NULL, OPT_FIX},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct pred_opts {
    effdim_predict_params p;
    const char *post, *data, *out;
    int threads, json;
} pred_opts;

static int parse_one(void *ctx, int c, const char *arg)
{
    pred_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case OPT_DATA: o->data = arg; break;
    case OPT_SAMPLES:
        rc = cli_parse_size(CMD, "--samples", arg, &o->p.samples);
        if (!rc && o->p.samples == 0) rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--samples: expected >= 1");
        break;
    case OPT_LIN: o->p.linearised = 1; break;
    case OPT_POINT: o->p.point = 1; break;
    case OPT_TEMPER:
        rc = cli_parse_double(CMD, "--tempering", arg, &o->p.tempering);
        if (!rc && !(o->p.tempering > 0.0))
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--tempering: expected > 0, got %s", arg);
        break;
    case OPT_FIX: o->p.fix_output_layer = 1; break;
    case OPT_SEED: rc = cli_parse_u64(CMD, "--seed", arg, &o->p.seed); break;
    case OPT_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case OPT_JSON: o->json = 1; break;
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static void print_summary(const pred_opts *o, const effdim_prediction *r)
{
    const char *kind = o->p.point ? "point" : o->p.linearised ? "linearised" : "mc";
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o->out);
        cJSON_AddStringToObject(j, "posterior", o->post);
        cJSON_AddStringToObject(j, "data", o->data);
        cJSON_AddStringToObject(j, "predictive", kind);
        cJSON_AddNumberToObject(j, "samples",
                                o->p.linearised || o->p.point ? 0 : (double)o->p.samples);
        cJSON_AddNumberToObject(j, "n", (double)r->n);
        if (r->classification) {
            cJSON_AddNumberToObject(j, "accuracy", r->accuracy);
            cJSON_AddNumberToObject(j, "nll", r->nll);
            cJSON_AddNumberToObject(j, "ece", r->ece);
            cJSON_AddNumberToObject(j, "brier", r->brier);
        } else {
            cJSON_AddNumberToObject(j, "rmse", r->rmse);
            cJSON_AddNumberToObject(j, "nll", r->nll);
            if (r->target_mean) {
                cJSON_AddItemToObject(j, "target_mean", cli_json_doubles(r->target_mean, r->K));
                cJSON_AddItemToObject(j, "target_sd", cli_json_doubles(r->target_sd, r->K));
            }
        }
        cli_json_print(j);
        return;
    }
    printf("%s on %s: %s predictive", o->post, o->data, kind);
    if (!o->p.linearised && !o->p.point) printf(", %zu samples", o->p.samples);
    printf(", %zu rows\n", r->n);
    if (r->classification)
        printf("accuracy %.4f  nll %.4f  ece %.4f  brier %.4f\n", r->accuracy, r->nll, r->ece,
               r->brier);
    else
        printf("rmse %.6g  nll %.6g%s\n", r->rmse, r->nll,
               r->target_mean ? "  (original units: targets were standardised on the training split)"
                              : "");
    printf("written to %s\n", o->out);
}

int cmd_predict(int argc, char **argv)
{
    pred_opts o;
    memset(&o, 0, sizeof o);
    o.p = effdim_predict_default_params();
    o.threads = 2;
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_one_operand(CMD, argc, argv, "a posterior file", &o.post))) return rc;
    if (!o.data) return cli_errorf(CMD, CLI_EXIT_USAGE, "--data is required");
    if (!o.out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o/--output is required");
    const char *claim_in[] = {o.post, o.data};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 2))) return rc;
    effdim_blas_set_threads(o.threads);
    cli_catch_interrupts();
    effdim_error err;
    effdim_posterior *post = NULL;
    effdim_dataset *ds = NULL;
    effdim_prediction *r = NULL;
    if (effdim_posterior_load(o.post, &post, &err) || effdim_dataset_from_spec(o.data, &ds, &err)) {
        rc = cli_fail(CMD, &err);
    } else {
        cli_progress_sink sink;
        cli_progress_sink_init(&sink, CMD);
        o.p.progress = cli_progress_of(&sink);
        effdim_status st = effdim_predict(post, ds, &o.p, &r, &err);
        cli_progress_sink_done(&sink);
        effdim_prediction_info info = {o.post, o.data, &o.p};
        if (st || effdim_prediction_save(r, &info, o.out, &err)) rc = cli_fail(CMD, &err);
    }
    if (!rc) print_summary(&o, r);
    effdim_prediction_free(r);
    effdim_dataset_free(ds);
    effdim_posterior_free(post);
    return rc;
}
