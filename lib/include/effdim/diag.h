/* effdim/diag.h: diagonal curvature estimators, each a vector [P] in theta order.
 *
 * Every estimator returns the diagonal AT THE SAME LOSS SCALE AS THE HESSIAN
 * of the network's loss over the given rows: the mlp's reduction, so
 *   mean: L = (1/n) sum_i l_i      sum: L = sum_i l_i
 * with l_i the per-sample loss of mlp.h (cross-entropy l_i, or for mse
 * l_i = (1/k) sum_j r_ij^2 under mean and sum_j r_ij^2 under sum). Writing
 * s = 1/n (mean) or 1 (sum), J_i = dF_i/dtheta (k x P) the Jacobian of the
 * outputs of row i and H_i = d^2 l_i / dF_i^2 (k x k):
 *
 *   ggn        exact diag(G),  G = s sum_i J_i^T H_i J_i  (the Gauss-Newton
 *              matrix; cross-entropy H_i = diag(p_i) - p_i p_i^T, mse
 *              H_i = (2/k) I under mean, 2 I under sum).
 *   ggn-mc     Monte-Carlo GGN: H_i replaced by (1/S) sum_s q_is q_is^T with
 *              q_is = p_i - e_{y_s}, y_s ~ Cat(p_i) (cross-entropy) or
 *              q_is = sqrt(2c) eps_s, eps_s ~ N(0, I), c = 1/k (mean) or 1
 *              (mse; the model's Gaussian predictive); E[q q^T] = H_i.
 *   ef         empirical Fisher: s sum_i g_i^2 with g_i = dl_i/dtheta the
 *              gradient of the PER-SAMPLE loss. Under mean reduction this is
 *              (1/N) sum_i g_i^2. The 1/N trap: BackPACK's SumGradSquared on a
 *              mean loss squares the per-sample gradients of THE MEAN LOSS,
 *              g_i / N, and returns (1/N^2) sum_i g_i^2; dividing that by N as
 *              is commonly done is off by N^2 from this. effdim's ef equals
 *              N x BackPACK's SumGradSquared on a mean loss, and
 *              SumGradSquared itself on a sum loss.
 *   hessian    exact diag(H), by backpropagating the per-sample Hessian with
 *              respect to every pre-activation in factored form (below); no
 *              Hessian-vector products.
 *   hutchinson E[v . (H v)] over random probes v with E[v v^T] = I, through any
 *              operator (the network's Hessian from hvp.h), with per-entry
 *              standard errors; generic over effdim_operator.
 *   adam       from the optimiser state: v_hat = exp_avg_sq / (1 - beta2^t)
 *              and readings of it as curvature (effdim_diag_adam, below).
 *   ivon       IVON's Hessian estimate h (/optimizer/hess), which IVON keeps
 *              at the per-datum (mean-loss) scale.
 *
 * Algorithm for ggn, ggn-mc, ef, hessian (one engine, lib/diag.c): for a
 * chunk of rows, the forward pass caches Z_l and A_l; then per row a set of
 * signed factor rows u_c (w_l each) such that the per-sample Hessian (or GGN)
 * with respect to Z_l is sum_c sigma_c u_c u_c^T + diag(R_l) is carried from
 * the outputs down the layers (u <- (u W_l) * act'(Z_{l-1}), all rows of all
 * samples in one dgemm). The weight W_l enters only through Z_l = A_{l-1} W_l^T
 * + b_l, so
 *   diag(H)[W_l(o, j)] = s sum_i Hz_i(o, o) a_{i,j}^2,   diag(H)[b_l(o)] = s sum_i Hz_i(o, o)
 * with Hz_i(o, o) = sum_c sigma_c u_c(o)^2 + R_l(i, o): one dgemm of squared
 * quantities per layer, (Hz)^T (A_{l-1}^2), never a per-sample outer product.
 *   GGN: the factors start as C vectors per row, sqrt(p_c)(e_c - p) for
 *     cross-entropy (sum_c of their outer products is diag(p) - p p^T) or
 *     sqrt(2c) e_c for mse; no residual terms. Cost: one forward, C vector
 *     backpropagations through layers 1..L-1 and one squared dgemm per layer:
 *     about 1 to 2 gradients for 784-300-100-10 (C = 10).
 *   EF: one factor per row, the per-sample loss gradient dl_i/dF.
 *   Hessian: the GGN factors, plus at every layer whose activation has a
 *     second derivative the residual R_l = (dl_i/dA_l) * act_l''(Z_l)
 *     (Pearlmutter's second-order term), which enters the diagonal at that
 *     layer directly and is carried further down as w_l new factor rows
 *     sqrt|R_l(o)| W_l(o, :) with sign sgn R_l(o) (for l = 1, with only
 *     layer 0 below, as the dgemm (R_1 W_1.^2) .* act'_0^2 instead of rows).
 *     This is the diagonal Hessian backpropagation of Dangel, Harmeling and
 *     Hennig, "Modular block-diagonal curvature approximations for
 *     feedforward architectures" (AISTATS 2020), BackPACK's DiagHessian
 *     (Dangel, Kunstner and Hennig, ICLR 2020), written for this MLP. The
 *     factor count at Z_l is C + the widths of the curved layers above l
 *     (layer 1 excepted); relu and identity layers add none, and with relu
 *     hidden layers the Hessian diagonal IS the GGN diagonal (the residual
 *     vanishes almost everywhere). The cost relative to a gradient is estimated by
 *     effdim_diag_hessian_cost; above params.max_cost it is refused unless
 *     params.force is set.
 *
 * Memory: besides the mlp workspace, the factor rows of a block of nb rows,
 * nb chosen so that the scratch fits params.mem_budget (at least one row):
 * 8 * nb * (2 max_l(ncol_l w_l) + ...) bytes. Nothing is allocated per chunk.
 *
 * Ownership: outputs are caller arrays of P doubles, overwritten. The mlp
 * workspace ws may be NULL (one of the library's default chunk, 512 rows, is
 * allocated for the call).
 */
#ifndef EFFDIM_DIAG_H
#define EFFDIM_DIAG_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/hvp.h"
#include "effdim/operator.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_diag_method {
    EFFDIM_DIAG_GGN = 0,
    EFFDIM_DIAG_GGN_MC = 1,
    EFFDIM_DIAG_EF = 2,
    EFFDIM_DIAG_ADAM = 3,
    EFFDIM_DIAG_HUTCHINSON = 4,
    EFFDIM_DIAG_HESSIAN = 5,
    EFFDIM_DIAG_IVON = 6
} effdim_diag_method;
#define EFFDIM_DIAG_N_METHODS 7

/* "ggn", "ggn-mc", "ef", "adam", "hutchinson", "hessian", "ivon". */
EFFDIM_API const char *effdim_diag_method_name(effdim_diag_method m);
/* Parse one name (also "ggn_mc", "fisher"... are NOT accepted: one spelling
 * each); EINVAL listing the accepted names. */
EFFDIM_API effdim_status effdim_diag_method_parse(const char *name, effdim_diag_method *m,
                                                  effdim_error *err);
/* A comma-separated list ("ggn,ef,adam") into out[0..*n), no repeats
 * (EINVAL naming a repeated or unknown entry). cap >= EFFDIM_DIAG_N_METHODS. */
EFFDIM_API effdim_status effdim_diag_methods_parse(const char *list, effdim_diag_method *out,
                                                   size_t cap, size_t *n, effdim_error *err);

typedef struct effdim_diag_params {
    size_t mem_budget;  /* bytes of factor scratch (default 64 MiB) */
    size_t mc_samples;  /* ggn-mc: S label draws per row (default 1) */
    size_t mc_groups;   /* ggn-mc: draws split into this many groups whose
                           spread gives the standard error; must divide S
                           (0, the default: the largest divisor of S up to 8;
                           1 = no standard error) */
    uint64_t seed;      /* ggn-mc: sampling seed (GSL mt19937; default 0) */
    double max_cost;    /* hessian: refuse when the estimated cost exceeds this
                           many full gradients (default 256) */
    int force;          /* hessian: ignore max_cost */
} effdim_diag_params;

EFFDIM_API effdim_diag_params effdim_diag_default_params(void);

/* ---- estimators over data (rows as in mlp.h: NULL = 0..n_rows-1) ---- */

/* Exact GGN diagonal into diag (P). */
EFFDIM_API effdim_status effdim_diag_ggn(const effdim_mlp *m, const double *theta,
                                         const effdim_dataset *ds, const size_t *rows,
                                         size_t n_rows, const effdim_diag_params *p, double *diag,
                                         effdim_mlp_ws *ws, effdim_error *err);

/* Monte-Carlo GGN diagonal (S = p->mc_samples draws per row, seeded) into diag
 * (P); se (P, may be NULL) receives the per-entry standard error from the
 * spread of the p->mc_groups group means (NaN when there is one group). */
EFFDIM_API effdim_status effdim_diag_ggn_mc(const effdim_mlp *m, const double *theta,
                                            const effdim_dataset *ds, const size_t *rows,
                                            size_t n_rows, const effdim_diag_params *p,
                                            double *diag, double *se, effdim_mlp_ws *ws,
                                            effdim_error *err);

/* Empirical Fisher diagonal s * sum_i g_i^2 into diag (P). */
EFFDIM_API effdim_status effdim_diag_ef(const effdim_mlp *m, const double *theta,
                                        const effdim_dataset *ds, const size_t *rows,
                                        size_t n_rows, const effdim_diag_params *p, double *diag,
                                        effdim_mlp_ws *ws, effdim_error *err);

/* Estimated cost of effdim_diag_hessian in full gradients (multiply-adds of
 * the forward, the factor backpropagation and the squared dgemms, over those
 * of a forward + backward pass), and the factor count at the first layer. */
EFFDIM_API double effdim_diag_hessian_cost(const effdim_mlp *m, size_t *max_factors);

/* The cost check alone: EINVAL when the estimated cost is above
 * p->max_cost and p->force is 0 (the message gives the cost and says how to
 * force it); p may be NULL (defaults). */
EFFDIM_API effdim_status effdim_diag_hessian_check(const effdim_mlp *m,
                                                   const effdim_diag_params *p,
                                                   effdim_error *err);

/* Exact Hessian diagonal into diag (P), after effdim_diag_hessian_check. */
EFFDIM_API effdim_status effdim_diag_hessian(const effdim_mlp *m, const double *theta,
                                             const effdim_dataset *ds, const size_t *rows,
                                             size_t n_rows, const effdim_diag_params *p,
                                             double *diag, effdim_mlp_ws *ws, effdim_error *err);

/* ---- estimators through an operator ---- */

typedef enum effdim_probe_kind {
    EFFDIM_PROBE_RADEMACHER = 0, /* entries +-1 */
    EFFDIM_PROBE_GAUSSIAN = 1    /* entries N(0, 1) */
} effdim_probe_kind;

/* "rademacher" | "gaussian" */
EFFDIM_API const char *effdim_probe_kind_name(effdim_probe_kind k);
EFFDIM_API effdim_status effdim_probe_kind_parse(const char *name, effdim_probe_kind *k,
                                                 effdim_error *err);

typedef struct effdim_hutchinson_diag_params {
    effdim_probe_kind probe; /* default Rademacher */
    size_t min_probes;       /* never stop before this many (default 10, >= 2) */
    size_t max_probes;       /* stop here (default 200) */
    size_t block;            /* probes applied per operator call (default 4) */
    double rel_se;           /* stop once the aggregated relative standard error
                                ||se||_2 / ||diag||_2 <= rel_se (default 0.05;
                                0 = always run max_probes) */
    uint64_t seed;           /* probe seed (GSL mt19937; default 0) */
    /* after every block: stage "hutchinson", probes done of max_probes, the
       relative standard error, and the time left (to the rel_se target by
       rel_se ~ 1/sqrt(probes) when one is set, else to max_probes); a
       non-zero answer stops the run (EMAXITER, "interrupted") */
    effdim_progress progress;
} effdim_hutchinson_diag_params;

EFFDIM_API effdim_hutchinson_diag_params effdim_hutchinson_diag_default_params(void);

typedef struct effdim_hutchinson_diag_result {
    size_t probes;    /* probes used */
    double rel_se;    /* achieved ||se||_2 / ||diag||_2 */
    double trace;     /* mean of v^T A v over the probes (= sum of diag) */
    double trace_se;  /* its standard error from the per-probe values */
    size_t matvecs;   /* operator applications (vectors) */
    double seconds;
    int converged;    /* 1 if rel_se met the target; 0 if it did not or no target was
                         set (rel_se = 0: max_probes run, nothing tested) */
} effdim_hutchinson_diag_result;

/* Hutchinson's diagonal estimator (Bekas, Kokiopoulou and Saad, "An
 * estimator for the diagonal of a matrix", Appl. Numer. Math. 57 (2007)):
 * diag_j = mean_p v_p(j) (A v_p)(j), se_j = its standard error (sample
 * standard deviation / sqrt(probes)), running (Welford) means per entry.
 * Returns EFFDIM_OK when the target was met (or rel_se == 0 and max_probes
 * were run), EFFDIM_EMAXITER when max_probes ran out first (diag, se and
 * res are still filled; err says how far it got), or the operator's error.
 * se and res may be NULL. Rademacher probes are exact on a diagonal matrix
 * (every se is then 0). Memory: 2 * block * n + 2 * n doubles. */
EFFDIM_API effdim_status effdim_diag_hutchinson(effdim_operator *op,
                                                const effdim_hutchinson_diag_params *p,
                                                double *diag, double *se,
                                                effdim_hutchinson_diag_result *res,
                                                effdim_error *err);

/* The exact diagonal of any operator by n applications to unit vectors, in
 * blocks of `block` (0 = 16). For tests and small models. */
EFFDIM_API effdim_status effdim_diag_of_operator(effdim_operator *op, size_t block, double *diag,
                                                 effdim_error *err);

/* ---- estimators from optimiser state ---- */

/* Adam's second moment read as curvature. From the checkpoint's
 * /optimizer/exp_avg_sq v, step t and beta2 (PyTorch's 0.999 when absent):
 *
 *   v_hat = v / (1 - beta2^t)                     (PyTorch's bias correction)
 *
 * What v_hat estimates: Adam's v is an exponential moving average (over about
 * 1/(1 - beta2) steps) of g_B^2, g_B the gradient of the MINIBATCH loss with
 * the model's reduction (mean over B rows by default). For a minibatch drawn
 * without replacement from N rows, with per-sample gradients g_i, mean gbar
 * and spread sigma^2 = (1/N) sum_i (g_i - gbar)^2:
 *   E[g_B^2] = gbar^2 + (sigma^2 / B) (N - B) / (N - 1).
 * Near a minimum (gbar ~ 0) and with theta nearly constant over the averaging
 * window, the empirical Fisher diagonal of the mean loss
 * ef = (1/N) sum_i g_i^2 = sigma^2 + gbar^2 is therefore
 *   ef ~ v_hat * B (N - 1) / (N - B)              (ef reading)
 * which is undefined for full-batch training (B = N: v_hat = gbar^2 holds no
 * spread). BADAM (Kessler et al., arXiv 1811.03679) reads instead
 *   curv ~ sqrt(v_hat)                            (BADAM reading)
 * as the diagonal curvature of the mean loss (the precision per datum; the
 * posterior precision is N sqrt(v)). Scales: both readings are first brought
 * to the mean loss (a model trained with sum reduction has g_B = B x the
 * mean-loss gradient, so v is divided by B^2), then multiplied by N when the
 * model's reduction is sum, like the Hessian.
 *
 * Outputs (each P doubles, any may be NULL): vhat (v_hat exactly as above,
 * unscaled), badam (the BADAM reading at the loss scale), ef (the ef
 * reading at the loss scale; left untouched and *ef_ok = 0 when batch == 0,
 * batch >= n or n == 0). batch = the training minibatch size B (the
 * checkpoint's /training batch attribute when the caller passes 0), n = N the
 * number of training rows. ENOTFOUND when the checkpoint has no optimiser
 * section or no exp_avg_sq (the message names `path` and says what was
 * found); EDOM for a step count < 1. */
EFFDIM_API effdim_status effdim_diag_adam(const effdim_checkpoint *c, const char *path,
                                          size_t batch, size_t n, double *vhat, double *badam,
                                          double *ef, int *ef_ok, effdim_error *err);

/* IVON's h (/optimizer/hess), at the loss scale (x n when the model's
 * reduction is sum). ENOTFOUND naming `path` when absent. */
EFFDIM_API effdim_status effdim_diag_ivon(const effdim_checkpoint *c, const char *path, size_t n,
                                          double *diag, effdim_error *err);

/* ---- the diag file (format "effdim.diag", version 1) ----
 *
 * Written by effdim_diag_file_save (`effdim diag`), read back by
 * effdim_diag_file_load; docs/file-formats.md documents every field:
 *   /              attrs format, format_version, checkpoint, checkpoint_sha256,
 *                  data_spec, n, n_params, loss, reduction, scale, seed,
 *                  methods (the names under /diag, in order), layer_offsets,
 *                  layer_params, version, created, command_line
 *   /diag/<name>   float64 [P]  attrs method, reading, reduction, scale, seconds and the
 *                  entry's own (probes, rel_se, trace, ...: effdim_diag_attr)
 *   /se/<name>     float64 [P]  per-entry standard errors (optional)
 * An effdim_diag_file owns everything in it (from the load, the job or a
 * caller that fills one with malloc'ed arrays) and is freed by
 * effdim_diag_file_free (NULL-safe). */
#define EFFDIM_DIAG_FORMAT "effdim.diag"
#define EFFDIM_DIAG_VERSION 1
#define EFFDIM_DIAG_MAX_ENTRIES 12
#define EFFDIM_DIAG_MAX_ATTRS 12

/* The names an entry may have: the method names and the adam readings
 * "adam-vhat" and "adam-ef". EINVAL naming the accepted ones otherwise (the
 * loaders refuse any other name, so none reaches a table, path or script). */
EFFDIM_API effdim_status effdim_diag_name_check(const char *name, effdim_error *err);

typedef enum effdim_diag_attr_kind {
    EFFDIM_DIAG_ATTR_REAL = 0,   /* float64 */
    EFFDIM_DIAG_ATTR_INT = 1,    /* int64: counts, seeds, flags */
    EFFDIM_DIAG_ATTR_STRING = 2  /* a name (probe, hvp_method, optimizer) */
} effdim_diag_attr_kind;

/* One method-specific attribute of an entry; only the keys of the known
 * table (diag_io.c) are written and read. */
typedef struct effdim_diag_attr {
    char key[32];
    effdim_diag_attr_kind kind;
    double real;
    int64_t integer;
    char text[64];
} effdim_diag_attr;

typedef struct effdim_diag_entry {
    char name[32];       /* dataset name under /diag ("ggn", "adam-vhat", ...) */
    char method[32];     /* estimator ('method' attribute) */
    char reading[256];   /* what the vector is, one sentence */
    double scale;        /* the loss scale s it is at */
    double seconds;
    double *v;           /* (n_params) */
    double *se;          /* (n_params) or NULL */
    double trace_se;     /* 'trace_se' attribute (hutchinson), else NaN */
    size_t n_attrs;
    effdim_diag_attr attrs[EFFDIM_DIAG_MAX_ATTRS];
} effdim_diag_entry;

typedef struct effdim_diag_file {
    char *checkpoint, *data_spec; /* owned (may be empty strings) */
    char *command_line;           /* owned, "" when unknown */
    char *version, *created;      /* owned; NULL on save: effdim_version() and now */
    char checkpoint_sha256[65];
    char loss[32], reduction[32];
    uint64_t n, n_params, seed;
    double scale;
    size_t n_layers;
    uint64_t layer_offsets[EFFDIM_MLP_MAX_LAYERS], layer_params[EFFDIM_MLP_MAX_LAYERS];
    size_t count;
    effdim_diag_entry *entries;   /* (count) */
} effdim_diag_file;

/* EIO (cannot open), EFORMAT (not an effdim.diag file, a vector of the wrong
 * length, a name in 'methods' without its dataset or outside the known
 * names), EVERSION (newer version); messages name the file and the object. */
EFFDIM_API effdim_status effdim_diag_file_load(const char *path, effdim_diag_file **out,
                                               effdim_error *err);
/* Write f atomically (the names are checked first). */
EFFDIM_API effdim_status effdim_diag_file_save(const effdim_diag_file *f, const char *path,
                                               effdim_error *err);
EFFDIM_API void effdim_diag_file_free(effdim_diag_file *f);
/* The entry of that name, or NULL. */
EFFDIM_API const effdim_diag_entry *effdim_diag_file_find(const effdim_diag_file *f,
                                                          const char *name);
/* The entry's attribute of that key, or NULL. */
EFFDIM_API const effdim_diag_attr *effdim_diag_entry_attr(const effdim_diag_entry *e,
                                                          const char *key);

/* ---- the diag job: what `effdim diag` runs ----
 *
 * For each method in order, its vector(s) at the loss scale with their
 * attributes, into a new effdim_diag_file ready for effdim_diag_file_save:
 * "adam" gives adam, adam-vhat and adam-ef (the last only for minibatch
 * training with a known batch, effdim_diag_adam); hutchinson probes the
 * network's Hessian (hvp_method) with the hutchinson parameters and reports
 * progress (stage "hutchinson", probes done of max_probes, the relative
 * standard error and an estimate of the time left); the other estimators
 * report one event per method (stage "diag"). A Hutchinson run whose
 * rel_se target was not met is kept (its 'converged' attribute is 0). */
typedef struct effdim_diag_job_params {
    effdim_diag_params diag;             /* ggn-mc, hessian (effdim_diag_default_params) */
    effdim_hutchinson_diag_params hutchinson; /* default: 64 probes at most, 10 at least,
                                            8 per operator call, no rel_se target */
    effdim_hvp_method hvp_method;        /* hutchinson's Hessian products (default exact) */
    size_t batch;                        /* adam: minibatch size (0: the checkpoint's) */
    uint64_t seed;                       /* recorded; the caller sets diag.seed and
                                            hutchinson.seed (default 0 for all three) */
    size_t chunk;                        /* rows per pass (0: the library's, 512) */
    effdim_progress progress;            /* {NULL, NULL}: none */
    const char *command_line;            /* recorded (NULL: "") */
    effdim_comm *comm;                   /* NULL (default): one process. Else every rank
                                            runs the job (and its check) with its share of
                                            the rows as ds (effdim_comm_share): ggn, ef and
                                            hessian add the ranks' weighted sums, hutchinson
                                            runs on effdim_hvp_operator_comm, adam and ivon
                                            see the global row count; ggn-mc is refused with
                                            more than one rank (its label samples follow the
                                            row order of one process). Every rank returns
                                            the same file */
} effdim_diag_job_params;

EFFDIM_API effdim_diag_job_params effdim_diag_job_default_params(void);

/* Above this relative standard error ||se|| / ||diag|| a Hutchinson diagonal
 * is mostly noise entry by entry (its sum, the trace, may still be fine). */
#define EFFDIM_DIAG_HUTCH_NOISY 0.2

/* Refuse what cannot work before any long computation: an exact Hessian
 * above its cost limit, adam or ivon without their optimiser state, data
 * missing for a method that needs it (ds NULL). path names the checkpoint. */
EFFDIM_API effdim_status effdim_diag_job_check(const effdim_checkpoint *c, const char *path,
                                               const effdim_dataset *ds,
                                               const effdim_diag_method *methods, size_t n_methods,
                                               const effdim_diag_job_params *p, effdim_error *err);

/* 1 when some method needs the data set (all but adam and ivon). */
EFFDIM_API int effdim_diag_job_needs_data(const effdim_diag_method *methods, size_t n_methods);

/* The job (after effdim_diag_job_check); data_spec is recorded. */
EFFDIM_API effdim_status effdim_diag_job_run(const effdim_checkpoint *c, const char *path,
                                             const effdim_dataset *ds, const char *data_spec,
                                             const effdim_diag_method *methods, size_t n_methods,
                                             const effdim_diag_job_params *p,
                                             effdim_diag_file **out, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_DIAG_H */
