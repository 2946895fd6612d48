/* tools/cli.h: what every `effdim` subcommand shares.
 *
 * - one clear error line on stderr ("effdim train: model.h5: /model: ...")
 *   and the exit codes: 0 success, 1 failure at run time, 2 bad usage;
 * - number and list parsing with errors that name the option;
 * - a progress line: redrawn in place on a terminal, plain log lines
 *   (at most one every few seconds) otherwise;
 * - JSON summaries through cJSON (Debian's libcjson).
 */
#ifndef EFFDIM_TOOLS_CLI_H
#define EFFDIM_TOOLS_CLI_H

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "effdim/checkpoint.h"
#include "effdim/comm.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
/* the output is written but incomplete (effdim spectrum: fewer than k pairs converged) */
#define CLI_EXIT_PARTIAL 3

/* A subcommand: argv[0] is the subcommand's name. */
typedef int (*cli_command_fn)(int argc, char **argv);

/* Print "effdim <cmd>: <message>" to stderr; return CLI_EXIT_FAIL. */
int cli_fail(const char *cmd, const effdim_error *err);
/* printf-style variant; returns `code`. */
int cli_errorf(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Parsers: return 0 on success, else print an error naming the option and
 * return CLI_EXIT_USAGE. */
int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);
/* "784,300,10" -> sizes; *n receives the count (<= cap). */
int cli_parse_size_list(const char *cmd, const char *opt, const char *s, size_t *out, size_t cap,
                        size_t *n);
int cli_parse_double_list(const char *cmd, const char *opt, const char *s, double *out, size_t cap,
                          size_t *n);

/* --threads T: 1 to 256 ("--threads: expected 1 to 256, got N"). */
int cli_parse_threads(const char *cmd, const char *s, int *threads);
/* --chunk C: rows per pass, 1 to INT_MAX; 0 (the default everywhere)
 * leaves the choice to the library (effdim_mlp_ws_alloc: 512 rows). */
int cli_parse_chunk(const char *cmd, const char *s, size_t *chunk);

/* One option for cli_getopt_loop: 0, or an exit code (message printed). */
typedef int (*cli_parse_one_fn)(void *ctx, int c, const char *arg);

/* The getopt_long loop of a command: resets getopt (opterr off), then per
 * option: 'h' prints usage(stdout) and returns -1; a missing value returns 2
 * after "option '--x' needs a value"; an unknown option returns 2 after
 * "unknown option '--x' (effdim <cmd> --help)"; any other goes to
 * parse_one(ctx, c, optarg), whose non-zero result is returned. Returns 0
 * with optind at the first operand. shortopts must start with ':'. */
int cli_getopt_loop(const char *cmd, int argc, char **argv, const char *shortopts,
                    const struct option *longopts, cli_parse_one_fn parse_one, void *ctx,
                    void (*usage)(FILE *));

/* After cli_getopt_loop: exactly one operand (argv[optind]) into *operand,
 * else "expected WHAT (effdim CMD --help)" or "unexpected argument" and
 * CLI_EXIT_USAGE. */
int cli_one_operand(const char *cmd, int argc, char **argv, const char *what,
                    const char **operand);

/* The checkpoint at path (an SVD checkpoint as its evaluation network:
 * effdim_checkpoint_svd_evaluation); *spec = given (--data) when non-NULL, else the
 * data spec its /training records, else NULL. */
effdim_status cli_load_checkpoint(const char *path, const char *given, effdim_checkpoint **ck,
                                  const char **spec, effdim_error *err);
/* An SVD checkpoint's variational layers (c->svd != NULL): KL kind, layers,
 * sparsity per layer (null for deterministic layers), weights, nonzero
 * weights after masking, compression, KL sum, settings, and test_error =
 * 1 - the last recorded test accuracy (measured with the masked weights). */
cJSON *cli_svd_json(const effdim_checkpoint *c);
/* The data set of spec, checked to fit the network m (effdim_mlp_check_data).
 * When the spec is the one the checkpoint at ckpt_path records (recorded
 * non-zero), a spec that does not load is reported as
 * "<ckpt>: /training data_spec: <why> (pass --data SPEC)". */
/* A data spec recorded in the checkpoint at ckpt_path, its relative file
 * paths resolved against the checkpoint's folder (effdim_data_spec_resolve);
 * and the spec to record in a checkpoint written to ckpt_path, its paths made
 * relative to that folder (effdim_data_spec_relative_to). *out malloc'ed. */
effdim_status cli_spec_of_checkpoint(const char *ckpt_path, const char *spec, char **out,
                                     effdim_error *err);
effdim_status cli_spec_for_checkpoint(const char *ckpt_path, const char *spec, char **out,
                                      effdim_error *err);
effdim_status cli_load_data(const char *ckpt_path, const effdim_mlp *m, const char *spec,
                            int recorded, effdim_dataset **ds, effdim_error *err);
/* Both of the above; ENOTFOUND "<ckpt>: /training: no data_spec recorded;
 * pass --data SPEC" when there is no spec. */
effdim_status cli_load_model_and_data(const char *ckpt_path, const char *given,
                                      effdim_checkpoint **ck, const char **spec,
                                      effdim_dataset **ds, effdim_error *err);

/* Progress reporting on stderr. */
typedef struct cli_progress {
    int tty;           /* stderr is a terminal: redraw one line */
    double start;      /* seconds */
    double last;       /* last print */
    double interval;   /* seconds between plain log lines */
    int drawn;         /* a line is on screen */
} cli_progress;
void cli_progress_init(cli_progress *p);
/* fraction in [0, 1] (or < 0 when unknown) and a message; prints when due. */
void cli_progress_update(cli_progress *p, double fraction, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Finish the line (newline on a terminal). */
void cli_progress_done(cli_progress *p);
/* Elapsed seconds since init. */
double cli_progress_elapsed(const cli_progress *p);

/* The library's progress callback (effdim/progress.h) drawn on this
 * cli_progress: "effdim CMD: STAGE done/total DETAIL [elapsed, N s left]",
 * redrawn on a terminal, a plain line at most every few seconds otherwise; a
 * new stage finishes the previous stage's line, and its first event with
 * done = 0 (the stage's announcement: its cost) keeps a line of its own. ctx is a cli_progress_sink.
 * Returns non-zero (stop early) once SIGINT or SIGTERM arrived after
 * cli_catch_interrupts(). */
typedef struct cli_progress_sink {
    const char *cmd;     /* "spectrum", ... */
    cli_progress line;
    char stage[32];      /* the stage on the line now */
} cli_progress_sink;
void cli_progress_sink_init(cli_progress_sink *s, const char *cmd);
int cli_progress_cb(void *ctx, const effdim_progress_event *ev);
/* An effdim_progress bound to the sink. */
effdim_progress cli_progress_of(cli_progress_sink *s);
/* Finish the sink's line. */
void cli_progress_sink_done(cli_progress_sink *s);

/* Install SIGINT/SIGTERM handlers that only set a flag (the job then stops at
 * its next progress report and finishes what is done); a second signal ends
 * the process at once. cli_interrupted() is that flag: 0, or the signal. */
void cli_catch_interrupts(void);
int cli_interrupted(void);

/* Print a cJSON object on stdout (pretty), then free it. */
void cli_json_print(cJSON *obj);
/* cJSON array of doubles. */
cJSON *cli_json_doubles(const double *v, size_t n);

/* "effdim " followed by argv joined by spaces (argv[0] is the subcommand), cut
 * at cap; for the provenance a file records. */
const char *cli_command_line(int argc, char **argv, char *buf, size_t cap);

/* The subcommands (tools/cmd_*.c). */
/* Claim the output before the work (effdim/output.h): a folder, an
 * unwritable folder, an output equal to an input (files or data specs, NULL
 * skipped) or another run's lock is one error line; returns CLI_EXIT_FAIL
 * then, 0 on success. The claim is released when the process exits. A run
 * may claim up to 4 outputs (-o and --plot), one call each. */
int cli_claim_output(const char *cmd, const char *out, const char *const *inputs, size_t n);

/* MPI ranks (effdim/comm.h): the communicator of this run (NULL: one
 * process), set once by main; cli_load_model_and_data keeps this rank's
 * share of the rows and agrees on its status over the ranks. */
void cli_set_comm(effdim_comm *c);
effdim_comm *cli_comm(void);
int cli_rank0(void);
/* Collective: rank 0's exit code on every rank (the others pass theirs, ignored). */
int cli_comm_rc(int rc);

int cmd_train(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_spectrum(int argc, char **argv);
int cmd_plot(int argc, char **argv); /* tools/cmd_plot.c */
int cmd_svd_variances(int argc, char **argv); /* tools/cmd_svd.c */
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_diag(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_posterior(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_surface(int argc, char **argv); /* tools/cmd_surface.c */
int cmd_perturb(int argc, char **argv); /* tools/cmd_surface.c */
int cmd_sweep(int argc, char **argv);   /* tools/cmd_sweep.c */

/* The column heads " ritz(z)" for every z, then " slq(z)" when slq, 9 wide
 * each (the sweep tables of `inspect` and `sweep stats`). */
void cli_print_neff_heads(const double *z, size_t nz, int slq);

#endif
