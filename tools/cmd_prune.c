/* tools/cmd_prune.c: `effdim prune CKPT --by snr,magnitude --posterior P
 * --test SPEC -o PRUNE.h5 [--plot FILE.png]`, test accuracy after pruning a
 * fraction of all parameters by one global threshold (SEEDS.md 1.5;
 * effdim_prune_sweep).
 *
 * Scores: magnitude |theta| (the checkpoint's weights); snr |mean| /
 * sqrt(var) from a posterior file (effdim posterior). The pruned network is
 * always the checkpoint's theta with the low-score entries zeroed, evaluated
 * at those point weights, as in the reference notebook. The table goes into
 * an effdim.prune file; --plot draws both curves with gnuplot from a data
 * file in a temporary folder (the script holds only fixed text and that
 * folder's name; gnuplot writes into the folder and the PNG is then copied to
 * the requested path). Exit status: 0 written, 1 runtime failure, 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/posterior.h"
#include "effdim/prune.h"
#include "effdim/sha256.h"
#include "effdim/spectrum.h"

#define CMD "prune"
#define MAX_FRACTIONS 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim prune CKPT --test SPEC -o PRUNE.h5 [options]\n\n"
            "Test accuracy after zeroing the lowest-scoring fraction of ALL parameters\n"
            "(weights, biases, output layer) by one global threshold.\n\n"
            "options\n"
            "  --by LIST            magnitude, snr or both (default: snr,magnitude with\n"
            "                       --posterior, else magnitude)\n"
            "  --posterior FILE     posterior for the SNR |mean| / sqrt(var) (effdim posterior)\n"
            "  --fractions LIST     fractions in [0, 1) (default 0,0.5,0.7,0.8,0.9,0.95,0.97,0.98)\n"
            "  --test SPEC          the data to evaluate on (required)\n"
            "  --plot FILE.png      draw accuracy against the fraction pruned (gnuplot)\n"
            "  --threads T          OpenBLAS threads (default 2)\n"
            "  -o, --output FILE    the file to write (atomically)\n"
            "  --json               print a JSON summary\n"
            "  -h, --help           this help\n");
}

enum { OPT_BY = 256, OPT_POST, OPT_FRAC, OPT_TEST, OPT_PLOT, OPT_THREADS, OPT_JSON };

static const struct option long_opts[] = {
    {"by", required_argument, NULL, OPT_BY},
    {"posterior", required_argument, NULL, OPT_POST},
    {"fractions", required_argument, NULL, OPT_FRAC},
    {"test", required_argument, NULL, OPT_TEST},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct prune_opts {
    const char *ckpt, *by, *post, *test, *plot, *out;
    double fr[MAX_FRACTIONS];
    size_t nf;
    int threads, json;
} prune_opts;

static int parse_one(void *ctx, int c, const char *arg)
{
    prune_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case OPT_BY: o->by = arg; break;
    case OPT_POST: o->post = arg; break;
    case OPT_FRAC:
        rc = cli_parse_double_list(CMD, "--fractions", arg, o->fr, MAX_FRACTIONS, &o->nf);
        for (size_t i = 0; !rc && i < o->nf; ++i)
            if (!(o->fr[i] >= 0.0 && o->fr[i] < 1.0))
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--fractions: %g is outside [0, 1)", o->fr[i]);
        break;
    case OPT_TEST: o->test = arg; break;
    case OPT_PLOT: o->plot = arg; break;
    case OPT_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case OPT_JSON: o->json = 1; break;
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* "snr,magnitude" into t->by; 0 or a usage exit code */
static int parse_by(const prune_opts *o, effdim_prune_table *t)
{
    char buf[64];
    const char *list = o->by ? o->by : o->post ? "snr,magnitude" : "magnitude";
    if (strlen(list) >= sizeof buf) return cli_errorf(CMD, CLI_EXIT_USAGE, "--by: too long");
    strcpy(buf, list);
    effdim_error err;
    t->nc = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        effdim_prune_by b;
        if (effdim_prune_by_parse(tok, &b, &err))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--by: %s", err.msg);
        if (t->nc == EFFDIM_PRUNE_MAX_CRITERIA || (t->nc && t->by[0] == b))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--by: '%s' repeated", tok);
        if (b == EFFDIM_PRUNE_SNR && !o->post)
            return cli_errorf(CMD, CLI_EXIT_USAGE,
                              "--by snr needs --posterior FILE (made by effdim posterior)");
        t->by[t->nc++] = b;
    }
    return t->nc ? 0 : cli_errorf(CMD, CLI_EXIT_USAGE, "--by: empty list");
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int bad = !a || !b;
    while (!bad && (n = fread(buf, 1, sizeof buf, a)) > 0) bad = fwrite(buf, 1, n, b) != n;
    if (a) fclose(a);
    if (b && fclose(b)) bad = 1;
    return bad ? -1 : 0;
}

static int plot(const prune_opts *o, const effdim_prune_table *t)
{
    char dir[] = "/tmp/effdim-prune-XXXXXX", path[256], png[256];
    if (!mkdtemp(dir)) return cli_errorf(CMD, CLI_EXIT_FAIL, "cannot create a temporary folder");
    snprintf(path, sizeof path, "%s/prune.dat", dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; f && i < t->nf; ++i) {
        fprintf(f, "%.6g", t->fraction[i]);
        for (size_t c = 0; c < t->nc; ++c) fprintf(f, " %.6g", 100.0 * t->accuracy[c][i]);
        fprintf(f, "\n");
    }
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "set terminal pngcairo size 800,560 font 'sans,11'\n"
                   "set output '%s/prune.png'\nset grid\nset key left bottom box\n"
                   "set xlabel 'fraction of parameters pruned'\nset ylabel 'test accuracy (%%)'\n"
                   "set title 'One global threshold over all parameters'\n"
                   "plot ",
                dir);
        for (size_t c = 0; c < t->nc; ++c)
            fprintf(f, "%s'%s/prune.dat' using 1:%zu with linespoints lw 2 pt 7 title '%s'",
                    c ? ", " : "", dir, c + 2, effdim_prune_by_name(t->by[c]));
        fprintf(f, "\n");
        fclose(f);
    }
    char cmd[320];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", path);
    FILE *p = f ? popen(cmd, "r") : NULL;
    char line[512];
    size_t said = 0;
    while (p && fgets(line, sizeof line, p))
        if (said++ < 5) fprintf(stderr, "gnuplot: %s", line);
    int status = p ? pclose(p) : -1;
    snprintf(png, sizeof png, "%s/prune.png", dir);
    int copied = status == 0 ? copy_file(png, o->plot) : -1;
    unlink(png);
    unlink(path);
    snprintf(path, sizeof path, "%s/prune.dat", dir);
    unlink(path);
    rmdir(dir);
    if (status != 0)
        return cli_errorf(CMD, CLI_EXIT_FAIL,
                          "gnuplot failed (status %d); is it installed (Debian: gnuplot-nox)? The "
                          "numbers are in %s",
                          status, o->out);
    if (copied) return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: cannot write the plot", o->plot);
    return 0;
}

static void print_summary(const prune_opts *o, const effdim_prune_table *t)
{
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o->out);
        cJSON_AddStringToObject(j, "checkpoint", o->ckpt);
        cJSON_AddItemToObject(j, "fraction", cli_json_doubles(t->fraction, t->nf));
        for (size_t c = 0; c < t->nc; ++c)
            cJSON_AddItemToObject(j, effdim_prune_by_name(t->by[c]),
                                  cli_json_doubles(t->accuracy[c], t->nf));
        cli_json_print(j);
        return;
    }
    printf("%s: %zu parameters, test %s\n%-9s", o->ckpt, t->n_params, o->test, "pruned");
    for (size_t c = 0; c < t->nc; ++c) printf(" %12s", effdim_prune_by_name(t->by[c]));
    printf("\n");
    for (size_t i = 0; i < t->nf; ++i) {
        printf("%-9.4g", t->fraction[i]);
        for (size_t c = 0; c < t->nc; ++c) printf(" %11.2f%%", 100.0 * t->accuracy[c][i]);
        printf("\n");
    }
    printf("written to %s\n", o->out);
}

int cmd_prune(int argc, char **argv)
{
    prune_opts o;
    memset(&o, 0, sizeof o);
    o.threads = 2;
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, &o, usage);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_one_operand(CMD, argc, argv, "a checkpoint", &o.ckpt))) return rc;
    if (!o.test) return cli_errorf(CMD, CLI_EXIT_USAGE, "--test is required");
    if (!o.out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o/--output is required");
    if (!o.nf) {
        static const double def[8] = {0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98};
        memcpy(o.fr, def, sizeof def);
        o.nf = 8;
    }
    effdim_prune_table t;
    memset(&t, 0, sizeof t);
    if ((rc = parse_by(&o, &t))) return rc;
    const char *claim_in[] = {o.ckpt, o.post, o.test, o.out};
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 3)) ||
        (o.plot && (rc = cli_claim_output(CMD, o.plot, claim_in, 4))))
        return rc;
    effdim_blas_set_threads(o.threads);
    effdim_error err;
    effdim_checkpoint *ck = NULL;
    effdim_posterior *post = NULL;
    effdim_dataset *ds = NULL;
    double *scores = NULL;
    char sha[65] = "";
    if (effdim_checkpoint_load(o.ckpt, &ck, &err) ||
        effdim_checkpoint_svd_evaluation(ck, &err) || /* variational layers: the masked network */
        (o.post && effdim_posterior_load(o.post, &post, &err)) ||
        effdim_dataset_from_spec(o.test, &ds, &err)) {
        rc = cli_fail(CMD, &err);
        goto done;
    }
    size_t P = ck->mlp.n_params;
    if (post && post->P != P) {
        rc = cli_errorf(CMD, CLI_EXIT_FAIL, "%s: /posterior/mean: %zu parameters, but %s has %zu",
                        o.post, post->P, o.ckpt, P);
        goto done;
    }
    if (effdim_sha256_file(o.ckpt, sha, NULL)) sha[0] = 0;
    t.nf = o.nf;
    t.fraction = o.fr;
    t.n_params = P;
    t.checkpoint = (char *)o.ckpt;
    t.checkpoint_sha256 = sha;
    t.posterior = (char *)o.post;
    t.test_spec = (char *)o.test;
    scores = malloc(P * sizeof(double));
    for (size_t c = 0; scores && c < t.nc; ++c) {
        t.accuracy[c] = malloc(o.nf * sizeof(double));
        t.loss[c] = malloc(o.nf * sizeof(double));
        t.kept[c] = malloc(o.nf * sizeof(size_t));
    }
    for (size_t c = 0; !rc && c < t.nc; ++c) {
        if (!scores || !t.accuracy[c] || !t.loss[c] || !t.kept[c]) {
            rc = cli_errorf(CMD, CLI_EXIT_FAIL, "out of memory");
            break;
        }
        for (size_t j = 0; j < P; ++j)
            scores[j] = t.by[c] == EFFDIM_PRUNE_SNR ? fabs(post->mean[j]) / sqrt(post->var[j])
                                                    : fabs(ck->theta[j]);
        if (effdim_prune_sweep(&ck->mlp, ck->theta, scores, o.fr, o.nf, ds, t.accuracy[c],
                               t.loss[c], t.kept[c], &err))
            rc = cli_fail(CMD, &err);
    }
    if (!rc && effdim_prune_save(&t, o.out, &err)) rc = cli_fail(CMD, &err);
    if (!rc && o.plot) rc = plot(&o, &t);
    if (!rc) print_summary(&o, &t);
done:
    for (size_t c = 0; c < t.nc; ++c) {
        free(t.accuracy[c]);
        free(t.loss[c]);
        free(t.kept[c]);
    }
    free(scores);
    effdim_dataset_free(ds);
    effdim_posterior_free(post);
    effdim_checkpoint_free(ck);
    return rc;
}
