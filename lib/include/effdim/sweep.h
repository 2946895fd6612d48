/* effdim/sweep.h: double-descent sweeps (format "effdim.sweep", version 1).
 *
 * A sweep is a grid of configurations, widths x depths x seeds x label-noise
 * levels x training-set sizes, over one data spec (train and test), one
 * training recipe and one curvature recipe, written as a JSON file
 * (docs/sweeps.md lists every key and its default). For each configuration
 * the job builds an MLP (depth hidden layers of `width` units), trains it
 * (effdim_train_run), takes the last epoch's train/test loss and error, runs
 * the spectrum job (effdim_spectrum_compute: the top-k Hessian eigenvalues,
 * N_eff(z) over the Ritz values and by SLQ with its SE), optionally the
 * N_eff of the exact GGN diagonal, and appends one row to the table.
 *
 * File layout (docs/file-formats.md):
 *   /                 attrs format="effdim.sweep", format_version=1, version,
 *                     created, shard_index, shard_count, grid_size
 *   /sweep            attrs config (the JSON as given), config_canonical (every
 *                     key with its resolved value: what resume and merge
 *                     compare), z float64 [nz], k
 *   /sweep/table      compound [rows], chunked, unlimited: the columns of
 *                     effdim_sweep_row (only the nz N_eff and k eigenvalue
 *                     columns the config asks for: n_eff_ritz_0 ..), rows in
 *                     the order they finished
 *
 * Crash safety: every append rewrites the file atomically (temporary file
 * beside it, fsync, rename), so the file on disk is at every moment a
 * complete effdim.sweep file with the rows finished so far; a reader holding
 * it open keeps its version. A kill -9 loses only the configurations in
 * progress. Rerunning with the same config skips the configurations already
 * in the table (whatever their status).
 *
 * Sharding: configuration i (0-based, in grid order: width fastest, then
 * depth, seed, label noise, training-set size) belongs to shard i mod n.
 *
 * Ownership: effdim_sweep_config_parse and _preset return a config freed by
 * effdim_sweep_config_free; effdim_sweep_table_load a table freed by
 * effdim_sweep_table_free (both NULL-safe).
 */
#ifndef EFFDIM_SWEEP_H
#define EFFDIM_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_SWEEP_FORMAT "effdim.sweep"
#define EFFDIM_SWEEP_VERSION 1
#define EFFDIM_SWEEP_MAX_Z 16    /* z values of the curvature recipe */
#define EFFDIM_SWEEP_MAX_K 64    /* top eigenvalues kept per row */
#define EFFDIM_SWEEP_MAX_AXIS 64 /* entries of each grid axis */
#define EFFDIM_SWEEP_MESSAGE 240

typedef struct effdim_sweep_config effdim_sweep_config;

/* One configuration of the grid. */
typedef struct effdim_sweep_point {
    size_t index;        /* position in the grid */
    size_t width, depth; /* hidden units per layer, hidden layers */
    uint64_t seed;       /* initialisation, shuffling and curvature seed */
    double label_noise;  /* NaN: the data spec's own */
    size_t n_train;      /* 0: the data spec's own */
} effdim_sweep_point;

/* One row of /sweep/table (the file holds only the nz / k columns used). */
typedef struct effdim_sweep_row {
    int64_t index, width, depth, seed;
    double label_noise;  /* NaN when the grid has no label-noise axis */
    int64_t n_train;     /* rows trained on */
    int64_t n_params;
    int64_t epochs;
    double train_loss, train_error, test_loss, test_error; /* last epoch; error = 1 - accuracy */
    double n_eff_ritz[EFFDIM_SWEEP_MAX_Z];   /* over the Ritz values */
    double n_eff_slq[EFFDIM_SWEEP_MAX_Z];    /* SLQ over the whole spectrum (NaN without) */
    double n_eff_slq_se[EFFDIM_SWEEP_MAX_Z];
    double n_eff_diag[EFFDIM_SWEEP_MAX_Z];   /* over the GGN diagonal (NaN without) */
    double eig[EFFDIM_SWEEP_MAX_K];          /* top eigenvalues, descending (NaN past nconv) */
    int64_t nconv;       /* Lanczos pairs that met tol */
    int64_t matvecs;     /* curvature products of the spectrum job */
    double seconds, seconds_train, seconds_curvature;
    double seconds_lanczos, seconds_slq; /* of the curvature: the top-k Lanczos run, the SLQ
                                            (NaN without SLQ, or in files made before these
                                            columns) */
    char status[16];     /* "ok" | "partial" (fewer than k pairs converged) | "failed" */
    char message[EFFDIM_SWEEP_MESSAGE]; /* why it failed or what is partial; "" when ok */
} effdim_sweep_row;

/* Parse a config from JSON text. `where` names it in messages (the file
 * name). EINVAL naming `where` and the key for an unknown key, a wrong type,
 * a value out of range or a missing "data". */
EFFDIM_API effdim_status effdim_sweep_config_parse(const char *json, const char *where,
                                                   effdim_sweep_config **out, effdim_error *err);
/* The same from a file (EIO naming it when unreadable). */
EFFDIM_API effdim_status effdim_sweep_config_load(const char *path, effdim_sweep_config **out,
                                                  effdim_error *err);
/* A built-in config: "quick" (docs/sweeps.md). EINVAL for an unknown name. */
EFFDIM_API effdim_status effdim_sweep_config_preset(const char *name, effdim_sweep_config **out,
                                                    effdim_error *err);
EFFDIM_API void effdim_sweep_config_free(effdim_sweep_config *c);
/* Number of configurations in the grid. */
EFFDIM_API size_t effdim_sweep_config_size(const effdim_sweep_config *c);
/* Configuration i (< size). */
EFFDIM_API effdim_sweep_point effdim_sweep_config_point(const effdim_sweep_config *c, size_t i);
/* The JSON as given, and the canonical form (every key resolved, compact). */
EFFDIM_API const char *effdim_sweep_config_json(const effdim_sweep_config *c);
EFFDIM_API const char *effdim_sweep_config_canonical(const effdim_sweep_config *c);

/* Parse "i/n" (0 <= i < n) into *index, *count; EINVAL naming `what`. */
EFFDIM_API effdim_status effdim_sweep_shard_parse(const char *s, const char *what, size_t *index,
                                                  size_t *count, effdim_error *err);

typedef struct effdim_sweep_params {
    size_t shard_index, shard_count; /* run configurations i with i mod count == index
                                        (default 0/1: all) */
    size_t jobs;                     /* worker processes (default 1: in this process);
                                        each gets max(1, threads / jobs) BLAS threads */
    const char *keep_checkpoints;    /* folder for each trained model
                                        ("i<index>-w<W>-d<D>-s<S>.h5"); NULL: none */
    size_t limit;                    /* stop after this many new rows (0: no limit) */
    effdim_progress progress;        /* stage "sweep": done/total = configurations of this
                                        shard finished; detail "config i/n (width W depth D
                                        seed S) STAGE ..." */
} effdim_sweep_params;

EFFDIM_API effdim_sweep_params effdim_sweep_default_params(void);

typedef struct effdim_sweep_result {
    size_t total;     /* configurations in this shard */
    size_t skipped;   /* already in the file */
    size_t ran;       /* rows appended by this call */
    size_t failed;    /* of which with status "failed" */
    size_t partial;   /* of which "partial" */
    int interrupted;  /* the progress callback stopped it */
} effdim_sweep_result;

/* Run the shard of the grid into the sweep file at `path` (created, or
 * continued when it holds the same canonical config and shard; a different
 * one is EINVAL naming the file). The caller claims `path` first
 * (effdim/output.h). A configuration that fails is recorded with status
 * "failed" and its message, and the sweep goes on. EMAXITER when the progress
 * callback stopped it (rows finished are in the file). res may be NULL. */
EFFDIM_API effdim_status effdim_sweep_run(const effdim_sweep_config *c, const char *path,
                                          const effdim_sweep_params *p, effdim_sweep_result *res,
                                          effdim_error *err);

/* Compute one configuration's row (no file). */
EFFDIM_API effdim_status effdim_sweep_run_point(const effdim_sweep_config *c, size_t index,
                                                const char *keep_checkpoints,
                                                const effdim_progress *progress,
                                                effdim_sweep_row *row, effdim_error *err);

/* A sweep file in memory. */
typedef struct effdim_sweep_table {
    char *config;            /* the JSON as given */
    char *config_canonical;
    size_t nz, k;
    double z[EFFDIM_SWEEP_MAX_Z];
    size_t shard_index, shard_count, grid_size;
    size_t n_rows;
    effdim_sweep_row *rows;  /* (n_rows) */
} effdim_sweep_table;

EFFDIM_API effdim_status effdim_sweep_table_load(const char *path, effdim_sweep_table **out,
                                                 effdim_error *err);
EFFDIM_API void effdim_sweep_table_free(effdim_sweep_table *t);

/* Join shard files into `out` (written atomically; the caller claims it):
 * the rows of all, one per configuration (sorted by index), shard 0/1.
 * EINVAL naming the file whose canonical config differs from the first's. */
EFFDIM_API effdim_status effdim_sweep_merge(const char *const *inputs, size_t n_inputs,
                                            const char *out, effdim_error *err);

/* The config in a few lines of text (data, test, grid, model, training,
 * curvature), each "name  value" and ending in a newline, into buf (cap
 * bytes, truncated to fit, always NUL-terminated). Returns the length it
 * needed. */
EFFDIM_API size_t effdim_sweep_config_describe(const effdim_sweep_config *c, char *buf, size_t cap);

/* ---- the table summarised: means over seeds, the Spearman correlations --------- */

/* Metrics of a row, by index m in effdim_sweep_agg's mean/lo/hi: 0 train
 * loss, 1 test loss, 2 test error, 3 train error, 4 + j N_eff(z_j) over the
 * Ritz values, 4 + nz + j N_eff(z_j) by SLQ (j < nz). */
#define EFFDIM_SWEEP_METRICS (4 + 2 * EFFDIM_SWEEP_MAX_Z)
#define EFFDIM_SWEEP_M_TRAIN_LOSS 0
#define EFFDIM_SWEEP_M_TEST_LOSS 1
#define EFFDIM_SWEEP_M_TEST_ERROR 2
#define EFFDIM_SWEEP_M_TRAIN_ERROR 3

/* One point of the figure: a series (every grid coordinate but width and
 * seed) at one width, over the seeds' rows whose status is not "failed". */
typedef struct effdim_sweep_agg {
    int64_t depth, n_train, width, n_params;
    double label_noise;  /* NaN without that axis */
    size_t n;            /* rows (seeds) */
    double mean[EFFDIM_SWEEP_METRICS], lo[EFFDIM_SWEEP_METRICS], hi[EFFDIM_SWEEP_METRICS];
} effdim_sweep_agg;

/* The points of a table, sorted by series (depth, training-set size, label
 * noise) then width, into *out (malloc'ed, freed by free; NULL when *n is 0). */
EFFDIM_API effdim_status effdim_sweep_aggregate(const effdim_sweep_table *t, effdim_sweep_agg **out,
                                                size_t *n, effdim_error *err);

/* Spearman rank correlations with the test loss past the test-loss peak, for
 * one series: over the rows (each seed its own point; failed rows and rows
 * without a test loss left out) whose width is at least from_width, the
 * correlation of the test loss with n_params and with N_eff(z_j) (Ritz and
 * SLQ). By gsl_stats_spearman (ties get their mean rank). */
typedef struct effdim_sweep_corr {
    int64_t depth, n_train;
    double label_noise;
    int64_t peak_width;       /* the test-loss peak: the width of the largest mean test loss
                                 past the classical minimum (the smallest mean test loss at
                                 widths up to interp_width, or at any width when none
                                 interpolates); the minimum itself when no width follows it */
    int64_t peak_params;      /* its n_params */
    double peak_test_loss;    /* that mean */
    int64_t interp_width;     /* the smallest width whose every seed's train error is 0
                                 (-1: none) */
    int64_t from_width;       /* the first width counted: the peak's, or the one asked for */
    size_t n_rows, n_widths;  /* rows and distinct widths counted */
    double rho_params;        /* NaN with fewer than 2 rows or a constant column */
    double rho_ritz[EFFDIM_SWEEP_MAX_Z], rho_slq[EFFDIM_SWEEP_MAX_Z];
} effdim_sweep_corr;

/* One effdim_sweep_corr per series into *out (malloc'ed, freed by free).
 * from_width 0: from each series' test-loss peak; else from that width. */
EFFDIM_API effdim_status effdim_sweep_correlations(const effdim_sweep_table *t, int64_t from_width,
                                                   effdim_sweep_corr **out, size_t *n,
                                                   effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_SWEEP_H */
