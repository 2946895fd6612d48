/* effdim/train.h: the training job: minibatch training of an MLP held in a
 * checkpoint, epoch by epoch, resumable bitwise.
 *
 * The job is PyTorch's usual loop, DataLoader(shuffle=True, drop_last=False):
 * for each epoch e (counted over the checkpoint's whole life, 0-based) the n
 * training rows are permuted by effdim_train_permutation(seed, e); consecutive
 * slices of `batch` rows (the last one may be shorter) are the minibatches;
 * for each, the loss (the model's reduction over the batch) and its gradient
 * (effdim_mlp_loss_grad), then one optimiser step (effdim_optim_step) at the
 * scheduled learning rate of that step. After each epoch the model is
 * evaluated on the whole training set and on the test set (when given) and
 * the four numbers are appended to the checkpoint's /training metrics.
 *
 * IVON (an optimiser that needs several gradients at perturbed weights per
 * step): each step draws mc_samples weight samples m + sigma * eps, eps from
 * one GSL mt19937 (the run's generator) reseeded for that step from
 * (seed, t), takes the minibatch gradient at each (of the mean loss: for a
 * sum-reduction model it is divided by the batch size, as IVON's ess carries
 * the data-set size), accumulates them (effdim_optim_ivon_sample /
 * _accumulate) and then steps. The noise of step t is a pure function of
 * (seed, t), so resuming draws the same noise as the uninterrupted run; the
 * reported loss is the mean of the samples' losses (at perturbed weights).
 *
 * Sparse variational dropout (a checkpoint with variational layers,
 * c->svd): the optimiser works on u = [theta (P) | log_sigma2 (W)] and each
 * step takes the gradient of N * mean NLL + beta_e * sum KL
 * (effdim_svd_loss_grad) with N the training-set size, beta_e =
 * effdim_svd_anneal_beta(svd_anneal, e) at the step's 0-based epoch e, and
 * fresh noise per example and unit from the run's mt19937 reseeded for step
 * t from (seed, t) (so resuming draws the same noise). The reported step
 * loss is the objective divided by N. The per-epoch evaluation (and the
 * metrics recorded) use the masked mean weights (effdim_svd_masked_theta).
 * svd_anneal and svd_train_clip are recorded as /training attributes and
 * read back by effdim_train_params_from_checkpoint. IVON refuses an SVD
 * checkpoint.
 *
 * Resuming: the checkpoint is the whole state. A checkpoint with an
 * /optimizer section continues it (state vectors, step count); the epoch
 * counter continues from /training epochs, and a run that stopped inside an
 * epoch (interrupted) recorded /training epoch_rows, the rows of that epoch
 * already trained on, so the next run continues at the next minibatch of the
 * same permutation. Hence 2 + 2 epochs equal 4 epochs bitwise, interrupted or
 * not (for the same thread count: the BLAS and the row workers partition the
 * sums by it).
 *
 * Progress (effdim/progress.h), two stages:
 *   "train"  done/total = optimiser steps of this call; at most every 0.05 s
 *            and after the last step; detail "epoch E/EE  step T  loss L ..."
 *            with the running mean loss of the epoch;
 *   "epoch"  done/total = epochs of this call, after each epoch's
 *            evaluation; detail "epoch E/EE  step T  loss L  accuracy A
 *            [test loss TL  test accuracy TA]  R steps/s".
 * A callback returning non-zero stops the job after the current step: the
 * checkpoint then holds the state after that step (with epoch_rows), the
 * result says interrupted, and the call returns EFFDIM_EMAXITER ("training
 * interrupted after ...").
 *
 * Ownership: the job never takes ownership of its arguments; it writes the
 * results into the caller's checkpoint. An effdim_trainer is freed with
 * effdim_trainer_free (NULL safe).
 */
#ifndef EFFDIM_TRAIN_H
#define EFFDIM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/checkpoint.h"
#include "effdim/comm.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct effdim_train_params {
    effdim_optim_kind optimizer; /* default adam */
    effdim_optim_params optim;   /* hyperparameters; optim.lr is the base learning rate */
    effdim_schedule schedule;    /* the shape of the learning-rate schedule; its lr field is
                                    ignored (the base rate is optim.lr). Default constant */
    size_t batch;                /* rows per minibatch; 0 = the whole training set; default 128 */
    size_t epochs;               /* epochs this call runs (after those already in the
                                    checkpoint); default 20 */
    uint64_t seed;               /* shuffling and IVON noise seed, <= INT64_MAX; default 1 */
    size_t chunk;                /* rows per pass of the workspace; 0 (default): min(batch, 4096) */
    int evaluate;                /* 1 (default): evaluate train/test after each epoch; 0: the
                                    metrics are recorded as NaN (benchmarks) */
    size_t save_every;           /* > 0: also save the checkpoint to save_path every K epochs
                                    of this call (not after the last; atomic); default 0 */
    const char *save_path;       /* needed when save_every > 0 */
    effdim_progress progress;    /* default none */
    /* sparse variational dropout (checkpoints with variational layers, effdim/mlp_svd.h) */
    effdim_svd_anneal svd_anneal; /* the KL weight per epoch; default rw_linear 5, 15 */
    int svd_train_clip;           /* 1: the mean path drops log alpha >= threshold in training
                                     too; default 0 */
    effdim_comm *comm;           /* NULL (default): one process. Else every rank calls the job
                                    with its share of the training rows as `train`
                                    (effdim_comm_share; the test set whole on every rank):
                                    the epoch permutation runs over all rows, each rank
                                    computes its rows' part of each minibatch gradient and one
                                    effdim_comm_sum per gradient adds them, so theta and the
                                    optimiser state stay bitwise the same on every rank;
                                    progress comes at epoch ends only */
} effdim_train_params;

/* Adam at PyTorch's defaults (lr 1e-3), constant schedule, batch 128,
 * 20 epochs, seed 1, chunk 0, evaluate 1, no periodic saves, no progress. */
EFFDIM_API effdim_train_params effdim_train_default_params(void);

/* The hyperparameters a checkpoint records for continuing it: optimiser
 * kind, hyperparameters and schedule from /optimizer when it has one
 * (missing ones at their defaults), seed and batch from /training when
 * recorded; other fields of *p are left as they are. EFFDIM_EFORMAT naming
 * `path` (may be NULL), the field and the expectation for an unknown
 * optimiser, an unparsable schedule, or a batch that is not a whole number
 * in [1, 2^53]. */
EFFDIM_API effdim_status effdim_train_params_from_checkpoint(const effdim_checkpoint *c,
                                                             const char *path,
                                                             effdim_train_params *p,
                                                             effdim_error *err);

/* This epoch's order of the n rows: the identity permuted by gsl_ran_shuffle
 * with a GSL mt19937 seeded from a 64-bit mix of (seed, epoch). A pure
 * function of (seed, epoch, n). perm holds n entries. */
EFFDIM_API effdim_status effdim_train_permutation(uint64_t seed, uint64_t epoch, size_t n,
                                                  size_t *perm, effdim_error *err);

typedef struct effdim_train_result {
    size_t epochs_run;      /* complete epochs in this call */
    uint64_t epochs_total;  /* complete epochs in the checkpoint's life */
    size_t steps;           /* optimiser steps in this call */
    size_t step;            /* the optimiser's step count after the call */
    size_t batch;           /* the minibatch size used (p->batch clamped to [1, n]) */
    double loss, accuracy;  /* the last evaluated epoch, training set (NaN if none) */
    double test_loss, test_accuracy; /* the same on the test set (NaN without one) */
    double seconds;         /* wall time of the call */
    double step_seconds;    /* of which in minibatch steps */
    int interrupted;        /* 1: the progress callback stopped it */
} effdim_train_result;

/* Train the network of checkpoint c on `train` (and evaluate on `test`, may be
 * NULL) for p->epochs epochs. On success (and on an interruption) c holds the
 * new theta, the optimiser section (effdim_checkpoint_set_from_optim with the
 * schedule), the appended metrics and epochs, /training seed, batch, seconds
 * (of this call) and epoch_rows when the run stopped inside an epoch; version
 * and created are cleared so the next save writes fresh ones. res may be
 * NULL. Statuses: EFFDIM_EINVAL for bad params (naming the field), data that
 * does not fit the network, or a checkpoint whose optimiser differs from
 * p->optimizer; EFFDIM_EDOM when the loss becomes NaN or infinite ("training
 * diverged"; c is then unchanged but for theta's partial steps);
 * EFFDIM_EMAXITER when interrupted; I/O errors of periodic saves. */
EFFDIM_API effdim_status effdim_train_run(const effdim_train_params *p, effdim_checkpoint *c,
                                          const effdim_dataset *train, const effdim_dataset *test,
                                          effdim_train_result *res, effdim_error *err);

/* ---- step by step (what effdim_train_run is made of; benchmarks time it) ---- */

typedef struct effdim_trainer effdim_trainer;

/* A trainer over c (borrowed: theta is updated in place), train and test
 * (borrowed), with the optimiser built fresh or continued from c. */
EFFDIM_API effdim_status effdim_trainer_alloc(const effdim_train_params *p, effdim_checkpoint *c,
                                              const effdim_dataset *train,
                                              const effdim_dataset *test, effdim_trainer **out,
                                              effdim_error *err);
EFFDIM_API void effdim_trainer_free(effdim_trainer *T);
/* One minibatch step at the current position (a new epoch's permutation when
 * the position is at an epoch's start); when it ends an epoch, the epoch's
 * evaluation and metrics follow. *loss (may be NULL): the minibatch loss (the
 * mean over IVON's samples). */
EFFDIM_API effdim_status effdim_trainer_step(effdim_trainer *T, double *loss, effdim_error *err);
/* The optimiser (read it; do not step it). */
EFFDIM_API const effdim_optim *effdim_trainer_optim(const effdim_trainer *T);
/* Write the optimiser state and the /training attributes into the checkpoint. */
EFFDIM_API effdim_status effdim_trainer_sync(effdim_trainer *T, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_TRAIN_H */
