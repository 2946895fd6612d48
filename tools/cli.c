/* tools/cli.c: shared command-line helpers (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "effdim/output.h"

int cli_fail(const char *cmd, const effdim_error *err)
{
    fprintf(stderr, "effdim %s: %s\n", cmd, err && err->msg[0] ? err->msg : "failed");
    return CLI_EXIT_FAIL;
}

int cli_errorf(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "effdim %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: expected a non-negative integer, got '%s'", opt, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: expected a non-negative integer, got '%s'", opt, s);
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t *out)
{
    uint64_t v = 0;
    int rc = cli_parse_u64(cmd, opt, s, &v);
    if (rc) return rc;
    if (v > SIZE_MAX) return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: %s is too large", opt, s);
    *out = (size_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!s || !*s) return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: expected a number, got ''", opt);
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: expected a finite number, got '%s'", opt, s);
    *out = v;
    return 0;
}

static int parse_list(const char *cmd, const char *opt, const char *s, void *out, size_t cap,
                      size_t *n, int is_double)
{
    char buf[4096];
    if (!s || strlen(s) >= sizeof buf)
        return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: expected a comma-separated list", opt);
    strcpy(buf, s);
    size_t count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (count >= cap)
            return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: at most %zu values", opt, cap);
        int rc = is_double ? cli_parse_double(cmd, opt, tok, (double *)out + count)
                           : cli_parse_size(cmd, opt, tok, (size_t *)out + count);
        if (rc) return rc;
        ++count;
    }
    if (count == 0) return cli_errorf(cmd, CLI_EXIT_USAGE, "%s: empty list", opt);
    *n = count;
    return 0;
}

int cli_parse_size_list(const char *cmd, const char *opt, const char *s, size_t *out, size_t cap,
                        size_t *n)
{
    return parse_list(cmd, opt, s, out, cap, n, 0);
}

int cli_parse_double_list(const char *cmd, const char *opt, const char *s, double *out, size_t cap,
                          size_t *n)
{
    return parse_list(cmd, opt, s, out, cap, n, 1);
}

int cli_parse_threads(const char *cmd, const char *s, int *threads)
{
    size_t v;
    int rc = cli_parse_size(cmd, "--threads", s, &v);
    if (!rc && (v < 1 || v > 256))
        rc = cli_errorf(cmd, CLI_EXIT_USAGE, "--threads: expected 1 to 256, got %zu", v);
    if (!rc) *threads = (int)v;
    return rc;
}

int cli_parse_chunk(const char *cmd, const char *s, size_t *chunk)
{
    size_t v;
    int rc = cli_parse_size(cmd, "--chunk", s, &v);
    if (!rc && (v < 1 || v > INT_MAX))
        rc = cli_errorf(cmd, CLI_EXIT_USAGE, "--chunk: expected 1 to %d, got %zu", INT_MAX, v);
    if (!rc) *chunk = v;
    return rc;
}

int cli_getopt_loop(const char *cmd, int argc, char **argv, const char *shortopts,
                    const struct option *longopts, cli_parse_one_fn parse_one, void *ctx,
                    void (*usage)(FILE *))
{
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return -1;
        }
        if (c == '?')
            return cli_errorf(cmd, CLI_EXIT_USAGE, "unknown option '%s' (effdim %s --help)",
                              argv[optind - 1], cmd);
        if (c == ':')
            return cli_errorf(cmd, CLI_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        int rc = parse_one(ctx, c, optarg);
        if (rc) return rc;
    }
    return 0;
}

effdim_status cli_load_checkpoint(const char *path, const char *given, effdim_checkpoint **ck,
                                  const char **spec, effdim_error *err)
{
    effdim_status st = effdim_checkpoint_load(path, ck, err);
    /* variational layers: the analyses see the evaluation network (masked mean weights) */
    if (!st) st = effdim_checkpoint_svd_evaluation(*ck, err);
    if (st) return st;
    const effdim_checkpoint_training *t = (*ck)->training;
    *spec = given ? given : t && t->data_spec && t->data_spec[0] ? t->data_spec : NULL;
    return EFFDIM_OK;
}

/* dir (cap) = the folder of path ("" for a bare file name). */
static void folder_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) + (slash == path) : 0;
    if (n >= cap) n = cap - 1;
    memcpy(dir, path, n);
    dir[n] = '\0';
}

effdim_status cli_spec_of_checkpoint(const char *ckpt_path, const char *spec, char **out,
                                     effdim_error *err)
{
    char dir[4096];
    folder_of(ckpt_path, dir, sizeof dir);
    return effdim_data_spec_resolve(spec, dir, out, err);
}

effdim_status cli_spec_for_checkpoint(const char *ckpt_path, const char *spec, char **out,
                                      effdim_error *err)
{
    char dir[4096];
    folder_of(ckpt_path, dir, sizeof dir);
    return effdim_data_spec_relative_to(spec, dir, out, err);
}

static effdim_comm *the_comm; /* tools/effdim.c sets it (cli_set_comm) */

effdim_status cli_load_data(const char *ckpt_path, const effdim_mlp *m, const char *spec,
                            int recorded, effdim_dataset **ds, effdim_error *err)
{
    char *resolved = NULL; /* a recorded spec's paths are relative to the checkpoint's folder */
    if (recorded && cli_spec_of_checkpoint(ckpt_path, spec, &resolved, err)) return err->code;
    /* under mpirun only this rank's share of the rows (effdim_comm_share) */
    effdim_status st = effdim_dataset_from_spec_share(resolved ? resolved : spec,
                                                      effdim_comm_size(the_comm),
                                                      effdim_comm_rank(the_comm), ds, NULL, err);
    free(resolved);
    if (st && recorded) { /* say where the spec came from */
        char msg[EFFDIM_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return effdim_error_set(err, st, "%s: /training data_spec: %s (pass --data SPEC)",
                                ckpt_path, msg);
    }
    return st ? st : effdim_mlp_check_data(m, *ds, spec, err);
}

static effdim_status load_model_and_data(const char *ckpt_path, const char *given,
                                         effdim_checkpoint **ck, const char **spec,
                                         effdim_dataset **ds, effdim_error *err)
{
    effdim_status st = cli_load_checkpoint(ckpt_path, given, ck, spec, err);
    if (st) return st;
    if (!*spec)
        return effdim_error_set(err, EFFDIM_ENOTFOUND,
                                "%s: /training: no data_spec recorded; pass --data SPEC", ckpt_path);
    return cli_load_data(ckpt_path, &(*ck)->mlp, *spec, !given, ds, err);
}

effdim_status cli_load_model_and_data(const char *ckpt_path, const char *given,
                                      effdim_checkpoint **ck, const char **spec,
                                      effdim_dataset **ds, effdim_error *err)
{
    effdim_status st = load_model_and_data(ckpt_path, given, ck, spec, ds, err);
    return effdim_comm_agree(cli_comm(), st, err);
}

/* ---- MPI ranks (tools/effdim.c sets the communicator; the_comm is declared above) ---- */

void cli_set_comm(effdim_comm *c) { the_comm = c; }
effdim_comm *cli_comm(void) { return the_comm; }
int cli_rank0(void) { return effdim_comm_rank(the_comm) == 0; }

int cli_comm_rc(int rc)
{
    if (effdim_comm_size(the_comm) <= 1) return rc;
    double v = cli_rank0() ? (double)rc : 0.0;
    effdim_error err;
    effdim_error_clear(&err);
    if (effdim_comm_sum(the_comm, &v, 1, EFFDIM_OK, &err)) return CLI_EXIT_FAIL;
    return (int)v;
}

void cli_progress_init(cli_progress *p)
{
    p->tty = isatty(fileno(stderr));
    p->start = effdim_progress_clock();
    p->last = -1e300;
    p->interval = p->tty ? 0.1 : 5.0;
    p->drawn = 0;
}

double cli_progress_elapsed(const cli_progress *p) { return effdim_progress_clock() - p->start; }

void cli_progress_update(cli_progress *p, double fraction, const char *fmt, ...)
{
    double now = effdim_progress_clock();
    if (now - p->last < p->interval && fraction < 1.0) return;
    p->last = now;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    double el = now - p->start;
    char eta[64] = "";
    if (fraction > 0 && fraction < 1) snprintf(eta, sizeof eta, ", %.0f s left", el * (1 - fraction) / fraction);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s [%.1f s%s]", msg, el, eta);
        p->drawn = 1;
    } else {
        fprintf(stderr, "%s [%.1f s%s]\n", msg, el, eta);
    }
    fflush(stderr);
}

void cli_progress_done(cli_progress *p)
{
    if (p->tty && p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}

static volatile sig_atomic_t cli_signal_seen = 0;

static void cli_on_signal(int sig)
{
    if (cli_signal_seen) { /* a second signal: leave now, as the user insists */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_signal_seen = sig;
}

void cli_catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void) { return (int)cli_signal_seen; }

void cli_progress_sink_init(cli_progress_sink *s, const char *cmd)
{
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    cli_progress_init(&s->line);
}

int cli_progress_cb(void *ctx, const effdim_progress_event *ev)
{
    cli_progress_sink *s = ctx;
    if (strncmp(s->stage, ev->stage, sizeof s->stage - 1)) { /* a new stage: a new line */
        cli_progress_done(&s->line);
        cli_progress_init(&s->line);
        snprintf(s->stage, sizeof s->stage, "%s", ev->stage);
    }
    double now = effdim_progress_clock();
    int final = ev->total && ev->done >= ev->total;
    if (final || now - s->line.last >= s->line.interval) {
        s->line.last = now;
        char count[64] = "", eta[48] = "";
        if (ev->total) snprintf(count, sizeof count, " %zu/%zu", ev->done, ev->total);
        else snprintf(count, sizeof count, " %zu", ev->done);
        if (ev->eta >= 0 && !final) snprintf(eta, sizeof eta, ", %.0f s left", ev->eta);
        fprintf(stderr, "%seffdim %s: %s%s%s%s [%.1f s%s]%s", s->line.tty ? "\r\033[K" : "",
                s->cmd, ev->stage, count, ev->detail[0] ? " " : "", ev->detail, ev->elapsed, eta,
                s->line.tty ? "" : "\n");
        s->line.drawn = s->line.tty;
        if (ev->done == 0 && ev->total && s->line.tty) { /* a stage's announcement stays */
            fputc('\n', stderr);
            s->line.drawn = 0;
        }
        fflush(stderr);
    }
    return cli_interrupted();
}

effdim_progress cli_progress_of(cli_progress_sink *s)
{
    effdim_progress p = {cli_progress_cb, s};
    return p;
}

void cli_progress_sink_done(cli_progress_sink *s) { cli_progress_done(&s->line); }

void cli_json_print(cJSON *obj)
{
    char *s = cJSON_Print(obj);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        cJSON_free(s);
    }
    cJSON_Delete(obj);
}

cJSON *cli_json_doubles(const double *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; ++i) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

const char *cli_command_line(int argc, char **argv, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc; ++i) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? " " : "effdim ", argv[i]);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
    return buf;
}

int cli_one_operand(const char *cmd, int argc, char **argv, const char *what,
                    const char **operand)
{
    if (optind >= argc)
        return cli_errorf(cmd, CLI_EXIT_USAGE, "expected %s (effdim %s --help)", what, cmd);
    if (optind + 1 < argc)
        return cli_errorf(cmd, CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind + 1]);
    *operand = argv[optind];
    return 0;
}

/* ---- the output claim ---------------------------------------------------------------- */

/* a run claims at most a few outputs (-o and --plot) */
enum { CLI_MAX_CLAIMS = 4 };
static effdim_output_lock *cli_output_locks[CLI_MAX_CLAIMS];
static char cli_claimed[CLI_MAX_CLAIMS][4096];
static size_t cli_n_claims;

static void cli_release_output(void)
{
    for (size_t i = 0; i < cli_n_claims; ++i) effdim_output_release(cli_output_locks[i]);
    cli_n_claims = 0;
}

int cli_claim_output(const char *cmd, const char *out, const char *const *inputs, size_t n)
{
    enum { MAX_FILES = 32 };
    static char paths[MAX_FILES][4096];
    const char *files[MAX_FILES];
    size_t nf = 0;
    for (size_t i = 0; i < n && nf < MAX_FILES; ++i) {
        if (!inputs[i]) continue;
        files[nf++] = inputs[i]; /* a file, or a data spec naming files */
        size_t got = 0;
        effdim_data_spec_files(inputs[i], paths + nf, MAX_FILES - nf, &got);
        for (size_t j = 0; j < got; ++j, ++nf) files[nf] = paths[nf];
    }
    effdim_error err;
    if (cli_n_claims == CLI_MAX_CLAIMS)
        return cli_errorf(cmd, CLI_EXIT_FAIL, "%s: more than %d outputs claimed", out,
                          (int)CLI_MAX_CLAIMS);
    for (size_t i = 0; out && i < cli_n_claims; ++i)
        if (!strcmp(out, cli_claimed[i]))
            return cli_errorf(cmd, CLI_EXIT_FAIL,
                              "%s: named as two outputs of this run (e.g. -o and --plot)", out);
    effdim_output_lock *lock = NULL;
    if (effdim_output_claim(out, files, nf, &lock, &err)) return cli_fail(cmd, &err);
    if (cli_n_claims == 0) atexit(cli_release_output);
    snprintf(cli_claimed[cli_n_claims], sizeof cli_claimed[0], "%s", out);
    cli_output_locks[cli_n_claims++] = lock;
    return 0;
}

cJSON *cli_svd_json(const effdim_checkpoint *c)
{
    const effdim_mlp *m = &c->mlp;
    const effdim_svd *s = &c->svd->svd;
    effdim_svd_metrics sm;
    effdim_svd_compute_metrics(m, s, c->theta, c->svd->log_sigma2, &sm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kl", effdim_svd_kl_name(s->kl));
    cJSON *ly = cJSON_AddArrayToObject(o, "layers");
    cJSON *sp = cJSON_AddArrayToObject(o, "sparsity");
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (s->variational[l]) cJSON_AddItemToArray(ly, cJSON_CreateNumber((double)l));
        cJSON_AddItemToArray(sp, isnan(sm.sparsity[l]) ? cJSON_CreateNull()
                                                       : cJSON_CreateNumber(sm.sparsity[l]));
    }
    cJSON_AddNumberToObject(o, "weights", (double)sm.weights);
    cJSON_AddNumberToObject(o, "nonzero_weights", (double)sm.nonzero);
    if (isfinite(sm.compression)) cJSON_AddNumberToObject(o, "compression", sm.compression);
    else cJSON_AddNullToObject(o, "compression");
    cJSON_AddNumberToObject(o, "kl_sum", sm.kl);
    cJSON_AddNumberToObject(o, "log_alpha_clip", s->clip);
    cJSON_AddNumberToObject(o, "tiny", s->tiny);
    cJSON_AddNumberToObject(o, "threshold", s->threshold);
    size_t n = 0;
    const double *ta = effdim_checkpoint_metric(c, "test_accuracies", &n);
    if (ta && n && isfinite(ta[n - 1])) cJSON_AddNumberToObject(o, "test_error", 1.0 - ta[n - 1]);
    return o;
}

void cli_print_neff_heads(const double *z, size_t nz, int slq)
{
    char head[32];
    for (int pass = 0; pass < (slq ? 2 : 1); ++pass)
        for (size_t j = 0; j < nz; ++j) {
            snprintf(head, sizeof head, "%s(%g)", pass ? "slq" : "ritz", z[j]);
            printf(" %9s", head);
        }
}
