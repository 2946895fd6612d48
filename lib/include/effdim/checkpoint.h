/* effdim/checkpoint.h: the HDF5 checkpoint (format "effdim.checkpoint", version 1).
 *
 * A checkpoint is a network description (effdim_mlp), its parameters theta
 * (n_params doubles, PyTorch's parameters_to_vector order), optionally the
 * optimiser's state, and optionally the training provenance. The file layout
 * is an interop contract that other tools (tools/torch_export.py, h5py
 * scripts) write too; docs/file-formats.md documents every field:
 *
 *   /                      attrs format="effdim.checkpoint", format_version=1
 *   /model                 attrs layer_sizes int64[L+1], activations string[L],
 *                          loss "cross_entropy"|"mse", reduction "mean"|"sum"
 *   /model/layer{i}/weight float64 (out, in)   (float32 accepted on read)
 *   /model/layer{i}/bias   float64 (out)
 *   /optimizer             (optional) attrs name, step, and one numeric
 *                          attribute per hyperparameter (lr, beta1, ...)
 *   /optimizer/<state>     float64 [P] per state vector (exp_avg, exp_avg_sq,
 *                          max_exp_avg_sq, momentum_buffer, hess, ...)
 *   /model attrs svd_layers int64[], svd_kl, svd_log_alpha_clip, svd_tiny,
 *                          svd_threshold, svd_log_sigma2_init (variational
 *                          layers only, effdim/mlp_svd.h)
 *   /model/layer{i}/log_sigma2 float64 (out, in) for each layer in svd_layers
 *   /training              (optional) attrs data_spec, test_spec, seed, epochs,
 *                          losses, accuracies, test_losses, test_accuracies,
 *                          version, created, and free-form extras
 *
 * Optimiser state is a generic list of named vectors, each of length P in
 * theta order, and its hyperparameters a generic list of named numbers, so
 * optimisers added later (IVON's "hess", ...) need no format change.
 *
 * Ownership: an effdim_checkpoint owns everything it points to; free it with
 * effdim_checkpoint_free (NULL is safe). Setters copy their arguments.
 * Saving is atomic (temporary file beside the target, fsync, rename): a run
 * killed at any moment leaves the previous file intact.
 */
#ifndef EFFDIM_CHECKPOINT_H
#define EFFDIM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/mlp.h"
#include "effdim/mlp_svd.h"
#include "effdim/optim.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_CHECKPOINT_FORMAT "effdim.checkpoint"
#define EFFDIM_CHECKPOINT_VERSION 1
#define EFFDIM_CKPT_NAME_MAX 64

/* A named number (an optimiser hyperparameter). */
typedef struct effdim_named_value {
    char name[EFFDIM_CKPT_NAME_MAX];
    double value;
} effdim_named_value;

/* A named vector (an optimiser state vector, a per-epoch metric). */
typedef struct effdim_named_vector {
    char name[EFFDIM_CKPT_NAME_MAX];
    double *v;   /* (n) owned */
    size_t n;
} effdim_named_vector;

/* A free-form attribute: strings or numbers, a scalar or a 1-D array. */
typedef struct effdim_checkpoint_attr {
    char name[EFFDIM_CKPT_NAME_MAX];
    int is_string;  /* strings in str, else numbers in num */
    int is_scalar;  /* written as a scalar (n == 1), else a 1-D array */
    int is_integer; /* numbers written as int64, else float64 */
    size_t n;
    char **str;     /* (n) owned, when is_string */
    double *num;    /* (n) owned, otherwise */
} effdim_checkpoint_attr;

typedef struct effdim_checkpoint_optimizer {
    char name[EFFDIM_CKPT_NAME_MAX]; /* "sgd", "adam", "amsgrad", "adamw", ... */
    int64_t step;                    /* optimiser steps taken */
    size_t n_hparams;
    effdim_named_value *hparams;     /* (n_hparams) lr, beta1, beta2, eps, weight_decay, ... */
    size_t n_state;
    effdim_named_vector *state;      /* (n_state) each of length n_params, theta order */
    size_t n_extras;
    effdim_checkpoint_attr *extras;        /* (n_extras) other attributes: strings (e.g. schedule),
                                        numeric arrays */
} effdim_checkpoint_optimizer;

typedef struct effdim_checkpoint_training {
    char *data_spec;      /* owned or NULL */
    char *test_spec;      /* owned or NULL */
    uint64_t seed;
    int has_seed;
    uint64_t epochs;      /* epochs trained in total */
    char *version;        /* effdim version that wrote it, owned or NULL */
    char *created;        /* ISO-8601 UTC time, owned or NULL */
    size_t n_metrics;
    effdim_named_vector *metrics; /* per-epoch arrays: losses, accuracies, test_losses, test_accuracies */
    size_t n_extras;
    effdim_checkpoint_attr *extras;     /* any other attribute */
} effdim_checkpoint_training;

/* The variational layers of a sparse-variational-dropout network. */
typedef struct effdim_checkpoint_svd {
    effdim_svd svd;          /* which layers, KL kind, clip, tiny, threshold */
    double *log_sigma2;      /* (svd.n_weights) owned, layer blocks (out, in) in layer order */
} effdim_checkpoint_svd;

typedef struct effdim_checkpoint {
    effdim_mlp mlp;                   /* the network description */
    double *theta;                    /* (mlp.n_params) owned */
    effdim_checkpoint_optimizer *optimizer; /* owned; NULL when the file has none */
    effdim_checkpoint_training *training;   /* owned; NULL when the file has none */
    effdim_checkpoint_svd *svd;       /* owned; NULL for a deterministic network. With it,
                                         optimiser state vectors have P + W entries: theta's
                                         P (theta order), then log_sigma2's W */
} effdim_checkpoint;

/* A checkpoint for network m with theta copied from `theta` (zeros when
 * theta is NULL), without optimiser or training sections. */
EFFDIM_API effdim_status effdim_checkpoint_alloc(const effdim_mlp *m, const double *theta,
                                                 effdim_checkpoint **out, effdim_error *err);
EFFDIM_API void effdim_checkpoint_free(effdim_checkpoint *c);

/* Write exactly the layout above, atomically. Refuses non-finite theta. */
EFFDIM_API effdim_status effdim_checkpoint_save(const effdim_checkpoint *c, const char *path,
                                                effdim_error *err);

/* Read a checkpoint (float32 or float64 weights, fixed- or variable-length
 * strings, /optimizer and /training optional; other root objects are
 * ignored). Refuses, naming the file, the object and the expectation:
 *   EFORMAT   wrong or missing 'format', bad shapes, unknown activation or
 *             loss, optimiser vectors of the wrong length
 *   EVERSION  format_version newer than EFFDIM_CHECKPOINT_VERSION
 *   ENOTFOUND the file, /model or a layer is missing
 *   EDOM      NaN or Inf in weights, biases or optimiser state (names the index)
 *   EIO       the file cannot be opened */
EFFDIM_API effdim_status effdim_checkpoint_load(const char *path, effdim_checkpoint **out,
                                                effdim_error *err);

/* ---- variational layers (sparse variational dropout) ---- */

/* Make the checkpoint an SVD network with settings s (checked against the
 * network) and log_sigma2 copied (NULL: s->log_sigma2_init everywhere).
 * Refuses (EINVAL) when an optimiser section exists (its vectors would
 * change length) or when s has no variational layer. */
EFFDIM_API effdim_status effdim_checkpoint_set_svd(effdim_checkpoint *c, const effdim_svd *s,
                                                   const double *log_sigma2, effdim_error *err);
/* Entries of an optimiser state vector: n_params, plus svd.n_weights for an
 * SVD checkpoint. */
EFFDIM_API size_t effdim_checkpoint_n_optim(const effdim_checkpoint *c);
/* Turn an SVD checkpoint into its evaluation network, an ordinary
 * checkpoint: theta <- the masked mean weights (effdim_svd_masked_theta),
 * the svd section dropped, optimiser vectors cut to theta's P entries. A
 * checkpoint without svd is left as it is. */
EFFDIM_API effdim_status effdim_checkpoint_svd_evaluation(effdim_checkpoint *c, effdim_error *err);

/* ---- optimiser section ---- */

/* Start (or restart, discarding the old one) the optimiser section. */
EFFDIM_API effdim_status effdim_checkpoint_set_optimizer(effdim_checkpoint *c, const char *name,
                                                         int64_t step, effdim_error *err);
/* Add or replace a hyperparameter (needs an optimiser section). */
EFFDIM_API effdim_status effdim_checkpoint_set_hparam(effdim_checkpoint *c, const char *name,
                                                      double value, effdim_error *err);
/* Add or replace a state vector of length n == mlp.n_params (copied). */
EFFDIM_API effdim_status effdim_checkpoint_set_state(effdim_checkpoint *c, const char *name,
                                                     const double *v, size_t n, effdim_error *err);
/* Add or replace a string attribute of the optimiser section. */
EFFDIM_API effdim_status effdim_checkpoint_set_optimizer_string(effdim_checkpoint *c,
                                                                const char *name,
                                                                const char *value,
                                                                effdim_error *err);
/* Lookups: 1 and *value when present, else 0. */
EFFDIM_API int effdim_checkpoint_hparam(const effdim_checkpoint *c, const char *name, double *value);
/* The state vector (n_params) of that name, or NULL. */
EFFDIM_API const double *effdim_checkpoint_state(const effdim_checkpoint *c, const char *name);
/* An optimiser string attribute, or NULL. */
EFFDIM_API const char *effdim_checkpoint_optimizer_string(const effdim_checkpoint *c,
                                                          const char *name);

/* From a live optimiser: set the optimiser section to its kind's name
 * ("sgd", "adam", "amsgrad", "adamw", "ivon"), its step count, the
 * hyperparameters that apply (SGD: lr, momentum, dampening, nesterov,
 * weight_decay; Adam family: lr, beta1, beta2, eps, weight_decay, amsgrad;
 * IVON: lr, ess, beta1, beta2, hess_init, weight_decay, mc_samples, debias,
 * rescale_lr, clip_radius when finite, and the string hess_approx) and a copy of every
 * state vector it holds; with a schedule (may be NULL) also the string
 * attribute 'schedule' (effdim_schedule_format). opt->n must equal n_params.
 * opt is not modified (non-const only for effdim_optim_state). */
EFFDIM_API effdim_status effdim_checkpoint_set_from_optim(effdim_checkpoint *c, effdim_optim *opt,
                                                          const effdim_schedule *schedule,
                                                          effdim_error *err);
/* The reverse: a new optimiser with the checkpoint's kind, hyperparameters
 * (missing ones take PyTorch's defaults), step count and state vectors, so
 * training continues exactly where it stopped; when schedule != NULL and the
 * file has a 'schedule' attribute it is parsed into *schedule (with the
 * file's lr), else *schedule is constant at lr. EFFDIM_ENOTFOUND when the
 * checkpoint has no optimiser section; the messages name `path` (may be NULL). */
EFFDIM_API effdim_status effdim_checkpoint_to_optim(const effdim_checkpoint *c, const char *path,
                                                    effdim_optim **out, effdim_schedule *schedule,
                                                    effdim_error *err);

/* ---- training section ---- */

/* Create the training section if missing and set the provenance (strings
 * copied; NULL leaves a field unset). version and created are filled by
 * effdim_checkpoint_save when unset. */
EFFDIM_API effdim_status effdim_checkpoint_set_provenance(effdim_checkpoint *c,
                                                          const char *data_spec,
                                                          const char *test_spec, uint64_t seed,
                                                          effdim_error *err);
/* Append one epoch's metrics (NaN for a metric that is not measured, e.g.
 * accuracy under mse or test metrics without a test set) and count it in
 * `epochs`. Creates losses, accuracies, test_losses, test_accuracies. */
EFFDIM_API effdim_status effdim_checkpoint_append_epoch(effdim_checkpoint *c, double loss,
                                                        double accuracy, double test_loss,
                                                        double test_accuracy, effdim_error *err);
/* A per-epoch metric array by name (n receives its length), or NULL. */
EFFDIM_API const double *effdim_checkpoint_metric(const effdim_checkpoint *c, const char *name,
                                                  size_t *n);
/* Free-form training attributes (added or replaced). */
EFFDIM_API effdim_status effdim_checkpoint_set_training_string(effdim_checkpoint *c,
                                                               const char *name, const char *value,
                                                               effdim_error *err);
EFFDIM_API effdim_status effdim_checkpoint_set_training_number(effdim_checkpoint *c,
                                                               const char *name, double value,
                                                               effdim_error *err);
/* A training extra attribute, or NULL. */
EFFDIM_API const effdim_checkpoint_attr *effdim_checkpoint_training_attr(const effdim_checkpoint *c,
                                                                   const char *name);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_CHECKPOINT_H */
