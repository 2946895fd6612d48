/* lib/train.c: the training job (effdim/train.h): epoch permutations, the
 * minibatch step, per-epoch evaluation, progress, resumable state.
 *
 * Algorithm: PyTorch's DataLoader(shuffle=True, drop_last=False) loop. For
 * the global epoch e the rows are permuted by gsl_ran_shuffle with an mt19937
 * seeded from splitmix64(seed ^ splitmix64(e + 1)) (low 32 bits, as mt19937
 * takes), so the order is a pure function of (seed, e) and a resumed run
 * draws the permutations the uninterrupted run would have drawn. The
 * position inside an epoch (rows done) is part of the state, so a run can
 * stop after any step and continue bitwise.
 *
 * IVON (an optimiser that needs several gradients at perturbed weights per
 * step): step t draws mc_samples weight samples m + sigma * eps, eps from
 * lib/normal.c's generator seeded for that step with (seed, t) (the noise
 * of step t is a pure function of (seed, t), so a resumed run draws what the
 * uninterrupted run drew), the minibatch gradient at each sample (of the
 * mean loss: a sum-reduction model's gradient is divided by the batch size,
 * since IVON's ess carries the data-set size; SEEDS.md section 6),
 * accumulated by effdim_optim_ivon_accumulate but the last, which
 * effdim_optim_step folds into the update in the same pass.
 *
 * Left out: data augmentation, gradient clipping, early stopping; the
 * caller saves the checkpoint (only the periodic saves happen here).
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/train.h"
#include "internal.h"
#include "normal.h"

/* progress events of the "train" stage at most this often (seconds) */
#define TRAIN_REPORT_INTERVAL 0.05

struct effdim_trainer {
    effdim_train_params p;      /* copy; p.schedule.lr = p.optim.lr */
    effdim_checkpoint *c;       /* borrowed: the network and theta (P) */
    const effdim_dataset *train, *test;
    effdim_optim *opt;
    effdim_mlp_ws *ws;
    double *grad;               /* (P) */
    size_t *perm;               /* (n) the current epoch's order */
    size_t n;                   /* training rows over every rank (train->n on one process) */
    size_t lo;                  /* with ranks: the first of this rank's rows, train->n of them */
    size_t *local;              /* with ranks: (batch) this rank's rows of the minibatch */
    effdim_comm_progress_state ps; /* with ranks: p.progress made collective */
    gsl_rng *rng;               /* the permutations' and IVON noise's generator */
    double *sample;             /* (P) IVON: the sampled weights, or NULL */
    int sample_ready;           /* IVON, one sample a step: the last step drew sample for
                                   the next one (effdim_optim_ivon_step_and_sample) */
    size_t batch;               /* effective: in [1, n] */
    uint64_t epoch;             /* complete epochs in the checkpoint's life */
    uint64_t epoch_end;         /* epoch at which this job ends (for "E/EE") */
    size_t pos;                 /* rows of the current epoch done */
    int perm_ready;             /* perm holds epoch's permutation */
    int epoch_ended;            /* the last step finished an epoch */
    int had_epoch_rows;         /* the checkpoint recorded epoch_rows */
    double run_loss;            /* sum of loss * rows over this epoch's steps */
    size_t run_rows;
    double last[4];             /* last epoch: loss, accuracy, test loss, test accuracy */
    size_t steps;               /* steps taken by this trainer */
    size_t epochs_done;         /* epochs finished by this trainer */
    double start, step_seconds;
    /* sparse variational dropout (c->svd); all NULL otherwise */
    double *u;                  /* (P + W) theta then log_sigma2: what the optimiser steps */
    double *eps;                /* (batch, U) the step's noise */
    double *theta_eval;         /* (P) masked mean weights for the evaluation */
    effdim_svd_ws *svd_ws;
};

/* ======================================================================
 * Parameters
 * ====================================================================== */

effdim_train_params effdim_train_default_params(void)
{
    effdim_train_params p;
    memset(&p, 0, sizeof p);
    p.optimizer = EFFDIM_OPTIM_ADAM;
    p.optim = effdim_optim_default_params(EFFDIM_OPTIM_ADAM);
    p.schedule = effdim_schedule_constant(p.optim.lr);
    p.batch = 128;
    p.epochs = 20;
    p.seed = 1;
    p.chunk = 0;
    p.evaluate = 1;
    p.save_every = 0;
    p.save_path = NULL;
    p.progress.fn = NULL;
    p.progress.ctx = NULL;
    p.svd_anneal = effdim_svd_anneal_default();
    p.svd_train_clip = 0;
    return p;
}

/* The /training batch attribute: a whole number of rows >= 1. */
static effdim_status batch_from_checkpoint(const effdim_checkpoint *c, const char *where,
                                           size_t *batch, effdim_error *err)
{
    const effdim_checkpoint_attr *b = effdim_checkpoint_training_attr(c, "batch");
    if (!b) return EFFDIM_OK;
    const double v = !b->is_string && b->n == 1 ? b->num[0] : (double)NAN;
    RETURN_ERROR_IF(!(v >= 1.0 && v <= 9007199254740992.0 && v == floor(v)), err, EFFDIM_EFORMAT,
                    "%s: /training batch: %s%.17g, expected a whole number of rows in [1, 2^53]",
                    where, b->is_string ? "a string, not a number: " : "", b->is_string ? (double)NAN : v);
    *batch = (size_t)v;
    return EFFDIM_OK;
}

effdim_status effdim_train_params_from_checkpoint(const effdim_checkpoint *c, const char *path,
                                                  effdim_train_params *p, effdim_error *err)
{
    RETURN_ERROR_IF(!c || !p, err, EFFDIM_EINVAL, "train: NULL checkpoint or params");
    const char *where = path ? path : "checkpoint";
    size_t batch = p->batch;
    effdim_status st = batch_from_checkpoint(c, where, &batch, err);
    if (st) return st;
    if (c->optimizer) {
        effdim_optim *saved = NULL;
        effdim_schedule sched;
        st = effdim_checkpoint_to_optim(c, path, &saved, &sched, err);
        if (st) return st;
        p->optimizer = saved->kind;
        p->optim = saved->params;
        p->schedule = sched;
        effdim_optim_free(saved);
    }
    p->batch = batch;
    if (c->training && c->training->has_seed) p->seed = c->training->seed;
    const effdim_checkpoint_attr *an = effdim_checkpoint_training_attr(c, "svd_anneal");
    effdim_error e;
    if (an)
        RETURN_ERROR_IF(!an->is_string || an->n != 1 ||
                            effdim_svd_anneal_parse(an->str[0], &p->svd_anneal, &e),
                        err, EFFDIM_EFORMAT, "%s: /training svd_anneal: expected one string "
                        "rw_linear:START,LEN, linear:STEP or constant:BETA", where);
    const effdim_checkpoint_attr *tc = effdim_checkpoint_training_attr(c, "svd_train_clip");
    if (tc) {
        RETURN_ERROR_IF(tc->is_string || tc->n != 1 || (tc->num[0] != 0.0 && tc->num[0] != 1.0),
                        err, EFFDIM_EFORMAT, "%s: /training svd_train_clip: expected 0 or 1",
                        where);
        p->svd_train_clip = tc->num[0] != 0.0;
    }
    return EFFDIM_OK;
}

static effdim_status check_params(const effdim_train_params *p, effdim_error *err)
{
    RETURN_ERROR_IF(p->seed > (uint64_t)INT64_MAX, err, EFFDIM_EINVAL,
                    "train: seed = %llu, expected at most %lld (the checkpoint stores int64)",
                    (unsigned long long)p->seed, (long long)INT64_MAX);
    RETURN_ERROR_IF(p->save_every && (!p->save_path || !p->save_path[0]), err, EFFDIM_EINVAL,
                    "train: save_every = %zu needs a save_path", p->save_every);
    effdim_schedule s = p->schedule;
    s.lr = p->optim.lr;
    return effdim_schedule_check(&s, err);
}

/* ======================================================================
 * Permutations
 * ====================================================================== */

static void permute(gsl_rng *rng, uint64_t seed, uint64_t epoch, size_t n, size_t *perm)
{
    gsl_rng_set(rng, (unsigned long)(effdim_mix64(seed ^ effdim_mix64(epoch + 1)) & 0xffffffffUL));
    for (size_t i = 0; i < n; ++i) perm[i] = i;
    gsl_ran_shuffle(rng, perm, n, sizeof *perm);
}

effdim_status effdim_train_permutation(uint64_t seed, uint64_t epoch, size_t n, size_t *perm,
                                       effdim_error *err)
{
    RETURN_ERROR_IF(!perm && n, err, EFFDIM_EINVAL, "train permutation: perm is NULL");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    RETURN_ERROR_IF(!rng, err, EFFDIM_ENOMEM, "train permutation: cannot allocate the generator");
    permute(rng, seed, epoch, n, perm);
    gsl_rng_free(rng);
    return EFFDIM_OK;
}

/* ======================================================================
 * The trainer
 * ====================================================================== */

void effdim_trainer_free(effdim_trainer *T)
{
    if (!T) return;
    effdim_optim_free(T->opt);
    effdim_mlp_ws_free(T->ws);
    free(T->grad);
    free(T->perm);
    free(T->sample);
    free(T->u);
    free(T->eps);
    free(T->theta_eval);
    effdim_svd_ws_free(T->svd_ws);
    free(T->local);
    if (T->rng) gsl_rng_free(T->rng);
    free(T);
}

/* A fresh optimiser, or the checkpoint's continued with p's hyperparameters. */
static effdim_status make_optim(effdim_trainer *T, effdim_error *err)
{
    const effdim_checkpoint *c = T->c;
    const effdim_train_params *p = &T->p;
    size_t P = effdim_checkpoint_n_optim(c); /* + W for variational layers */
    if (!c->optimizer) return effdim_optim_alloc(p->optimizer, &p->optim, P, &T->opt, err);
    effdim_optim *saved = NULL;
    effdim_status st = effdim_checkpoint_to_optim(c, NULL, &saved, NULL, err);
    if (st) return st;
    if (saved->kind != p->optimizer) {
        st = effdim_error_set(err, EFFDIM_EINVAL,
                              "train: the checkpoint's optimizer is %s, the params ask for %s "
                              "(continue it with its own kind)",
                              effdim_optim_kind_name(saved->kind),
                              effdim_optim_kind_name(p->optimizer));
        effdim_optim_free(saved);
        return st;
    }
    st = effdim_optim_alloc(p->optimizer, &p->optim, P, &T->opt, err);
    if (!st) { /* carry the state vectors and the step count over */
        effdim_optim_state_vec vecs[EFFDIM_OPTIM_MAX_STATE];
        size_t k = effdim_optim_state(T->opt, vecs, EFFDIM_OPTIM_MAX_STATE);
        for (size_t i = 0; i < k; ++i) {
            const double *v = effdim_optim_state_find(saved, vecs[i].name);
            if (v) memcpy(vecs[i].data, v, P * sizeof *v);
        }
        effdim_optim_restore(T->opt, saved->t, saved->momentum_ready);
    }
    effdim_optim_free(saved);
    return st;
}

/* Where the checkpoint left off: complete epochs and rows into the next. */
static effdim_status position_from_checkpoint(effdim_trainer *T, effdim_error *err)
{
    const effdim_checkpoint_training *t = T->c->training;
    T->epoch = t ? t->epochs : 0;
    const effdim_checkpoint_attr *a = effdim_checkpoint_training_attr(T->c, "epoch_rows");
    if (!a) return EFFDIM_OK;
    T->had_epoch_rows = 1;
    const double v = !a->is_string && a->n == 1 ? a->num[0] : (double)NAN;
    RETURN_ERROR_IF(!(v >= 0.0 && v < (double)T->n && v == floor(v)), err, EFFDIM_EFORMAT,
                    "checkpoint: /training epoch_rows: %.17g, expected a whole number of rows "
                    "below the training set's %zu", v, T->n);
    T->pos = (size_t)v;
    return EFFDIM_OK;
}

/* The SVD buffers: u = [theta | log_sigma2], the noise, the evaluation theta. */
static effdim_status svd_alloc(effdim_trainer *T, effdim_error *err)
{
    const effdim_checkpoint *c = T->c;
    const size_t P = c->mlp.n_params, W = c->svd->svd.n_weights;
    const size_t U = effdim_svd_noise_per_row(&c->mlp, &c->svd->svd);
    RETURN_ERROR_IF(T->p.optimizer == EFFDIM_OPTIM_IVON, err, EFFDIM_EINVAL,
                    "train: IVON does not train variational (svd) layers; use adam or sgd");
    T->svd_ws = effdim_svd_ws_alloc(&c->mlp, &c->svd->svd, T->batch < 4096 ? T->batch : 4096, err);
    if (!T->svd_ws) return err ? err->code : EFFDIM_ENOMEM;
    T->u = effdim_alloc(P + W, sizeof *T->u, "svd parameters", err);
    T->eps = effdim_alloc(T->batch * U > 0 ? T->batch * U : 1, sizeof *T->eps, "svd noise", err);
    T->theta_eval = effdim_alloc(P, sizeof *T->theta_eval, "svd evaluation weights", err);
    if (!T->u || !T->eps || !T->theta_eval) return EFFDIM_ENOMEM;
    memcpy(T->u, c->theta, P * sizeof *T->u);
    memcpy(T->u + P, c->svd->log_sigma2, W * sizeof *T->u);
    return EFFDIM_OK;
}

effdim_status effdim_trainer_alloc(const effdim_train_params *p, effdim_checkpoint *c,
                                   const effdim_dataset *train, const effdim_dataset *test,
                                   effdim_trainer **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "train: output pointer is NULL");
    *out = NULL;
    RETURN_ERROR_IF(!p || !c || !train, err, EFFDIM_EINVAL,
                    "train: NULL params, checkpoint or training data");
    RETURN_ERROR_IF(train->n == 0, err, EFFDIM_EINVAL, "train: the training set has no rows");
    effdim_status st = check_params(p, err);
    if (!st) st = effdim_mlp_check_data(&c->mlp, train, "training data", err);
    if (!st && test) st = effdim_mlp_check_data(&c->mlp, test, "test data", err);
    if (st) return st;
    effdim_trainer *T = effdim_calloc(1, sizeof *T, "trainer", err);
    if (!T) return EFFDIM_ENOMEM;
    T->p = *p;
    T->p.schedule.lr = p->optim.lr;
    T->c = c;
    T->train = train;
    T->test = test;
    for (int i = 0; i < 4; ++i) T->last[i] = NAN;
    T->n = train->n;
    if (effdim_comm_size(p->comm) > 1) { /* this rank holds rows [lo, lo + train->n) */
        double all = (double)train->n;
        if ((st = effdim_comm_sum(p->comm, &all, 1, EFFDIM_OK, err))) goto fail;
        T->n = (size_t)all;
        size_t hi;
        effdim_comm_share(T->n, effdim_comm_size(p->comm), effdim_comm_rank(p->comm), &T->lo, &hi);
        T->p.progress = effdim_comm_progress(&T->ps, p->comm, p->progress);
    }
    if (c->svd && effdim_comm_size(p->comm) > 1) {
        /* every rank holds the same checkpoint, so every rank stops here alike */
        effdim_error_set(err, EFFDIM_EINVAL,
                         "train: a checkpoint with variational (svd) layers trains in one process "
                         "only, not over %d ranks", effdim_comm_size(p->comm));
        st = EFFDIM_EINVAL;
        goto fail;
    }
    size_t n = T->n, P = c->mlp.n_params;
    T->batch = p->batch && p->batch < n ? p->batch : n;
    size_t chunk = p->chunk ? p->chunk : T->batch < 4096 ? T->batch : 4096;
    if ((st = position_from_checkpoint(T, err)) || (st = make_optim(T, err))) goto fail;
    T->epoch_end = T->epoch + p->epochs;
    T->ws = effdim_mlp_ws_alloc(&c->mlp, chunk, err);
    T->grad = effdim_alloc(effdim_checkpoint_n_optim(c), sizeof *T->grad, "gradient", err);
    T->perm = effdim_alloc(n, sizeof *T->perm, "permutation", err);
    T->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (c->svd && (st = svd_alloc(T, err))) goto fail;
    if (p->optimizer == EFFDIM_OPTIM_IVON)
        T->sample = effdim_alloc(P, sizeof *T->sample, "weight sample", err);
    if (effdim_comm_size(p->comm) > 1)
        T->local = effdim_alloc(T->batch, sizeof *T->local, "minibatch rows", err);
    st = EFFDIM_ENOMEM;
    if (!T->ws || !T->grad || !T->perm || (p->optimizer == EFFDIM_OPTIM_IVON && !T->sample) ||
        (effdim_comm_size(p->comm) > 1 && !T->local))
        goto fail;
    if (!T->rng) {
        effdim_error_set(err, st, "train: cannot allocate the random generator");
        goto fail;
    }
    T->start = effdim_now();
    /* with ranks: a rank's own failure (an allocation) reaches every rank */
    if ((st = effdim_comm_agree(p->comm, EFFDIM_OK, err))) goto agreed;
    *out = T;
    return EFFDIM_OK;
fail:
    st = effdim_comm_agree(p->comm, st, err);
agreed:
    effdim_trainer_free(T);
    return st;
}

const effdim_optim *effdim_trainer_optim(const effdim_trainer *T) { return T ? T->opt : NULL; }

static effdim_status evaluate_epoch(effdim_trainer *T, effdim_error *err)
{
    const effdim_mlp *m = &T->c->mlp;
    const double *theta = T->c->theta;
    if (T->c->svd) { /* the deterministic network of masked mean weights */
        effdim_svd_masked_theta(m, &T->c->svd->svd, T->c->theta, T->c->svd->log_sigma2,
                                T->theta_eval);
        theta = T->theta_eval;
    }
    double *r = T->last;
    r[0] = r[1] = r[2] = r[3] = NAN;
    effdim_status st = EFFDIM_OK;
    if (T->p.evaluate) {
        st = effdim_mlp_evaluate_comm(m, theta, T->train, NULL, T->train->n, T->n, T->p.comm, &r[0],
                                      &r[1], T->ws, err);
        if (!st && T->test)
            st = effdim_mlp_evaluate(m, theta, T->test, NULL, T->test->n, &r[2], &r[3], T->ws, err);
    }
    if (!st) st = effdim_checkpoint_append_epoch(T->c, r[0], r[1], r[2], r[3], err);
    return st;
}

static effdim_status svd_gradient(effdim_trainer *T, const size_t *rows, size_t len,
                                  double *loss, effdim_error *err);
/* With ranks: this rank's rows of the minibatch rows[0..len) (global indices, in
 * their order) as local indices into T->local; their count. */
static size_t local_rows(effdim_trainer *T, const size_t *rows, size_t len)
{
    size_t cnt = 0;
    for (size_t i = 0; i < len; ++i)
        if (rows[i] >= T->lo && rows[i] - T->lo < T->train->n) T->local[cnt++] = rows[i] - T->lo;
    return cnt;
}

/* The gradient of the minibatch at rows (len of them over every rank) at theta, into
 * T->grad; *loss its loss. With ranks, each computes its rows' part, and one sum
 * adds them (effdim_mlp_loss_grad_comm). */
static effdim_status minibatch_grad(effdim_trainer *T, const double *theta, const size_t *rows,
                                    size_t len, double *loss, effdim_error *err)
{
    if (!T->local)
        return effdim_mlp_loss_grad(&T->c->mlp, theta, T->train, rows, len, loss, T->grad, T->ws,
                                    err);
    size_t cnt = local_rows(T, rows, len);
    return effdim_mlp_loss_grad_comm(&T->c->mlp, theta, T->train, T->local, cnt, len, T->p.comm,
                                     loss, T->grad, T->ws, err);
}

/* The gradient of the minibatch at rows, into T->grad; *loss its loss. */
static effdim_status batch_gradient(effdim_trainer *T, const size_t *rows, size_t len,
                                    double *loss, effdim_error *err)
{
    if (T->c->svd) return svd_gradient(T, rows, len, loss, err);
    return minibatch_grad(T, T->c->theta, rows, len, loss, err);
}

/* Sparse variational dropout: the objective's gradient at u with fresh
 * noise for step t (a pure function of (seed, t)); *loss = objective / N. */
static effdim_status svd_gradient(effdim_trainer *T, const size_t *rows, size_t len, double *loss,
                                  effdim_error *err)
{
    const effdim_checkpoint *c = T->c;
    const size_t P = c->mlp.n_params, U = effdim_svd_noise_per_row(&c->mlp, &c->svd->svd);
    const uint64_t t = T->opt->t + 1;
    gsl_rng_set(T->rng, (unsigned long)(effdim_mix64(T->p.seed ^ effdim_mix64(t) ^ 0x5d3a9c71e4b2f608ULL) &
                                        0xffffffffUL));
    for (size_t i = 0; i < len * U; ++i) T->eps[i] = gsl_ran_gaussian_ziggurat(T->rng, 1.0);
    const double N = (double)T->train->n, beta = effdim_svd_anneal_beta(&T->p.svd_anneal, T->epoch);
    effdim_svd_objective obj;
    effdim_status st = effdim_svd_loss_grad(&c->mlp, &c->svd->svd, T->u, T->u + P, T->train, rows,
                                            len, T->eps, N, beta, T->p.svd_train_clip, &obj,
                                            T->grad, T->svd_ws, err);
    if (!st) *loss = obj.total / N;
    return st;
}

/* IVON's samples for the coming step: each a gradient at m + sigma * eps,
 * accumulated in the optimiser but the last, which stays in T->grad for the
 * step to fold in; *loss the mean of the samples' losses. */
static effdim_status ivon_samples(effdim_trainer *T, const size_t *rows, size_t len, double *loss,
                                  effdim_error *err)
{
    const effdim_mlp *m = &T->c->mlp;
    const size_t P = m->n_params, S = T->opt->params.mc_samples;
    const double to_mean = m->reduction == EFFDIM_REDUCTION_SUM ? 1.0 / (double)len : 1.0;
    effdim_normal_stream rng = {T->p.seed, T->opt->t + 1, 0};
    double sum = 0.0;
    for (size_t s = 0; s < S; ++s) {
        double ls = NAN;
        double *theta_s = T->sample;
        effdim_status st = EFFDIM_OK;
        if (!(s == 0 && T->sample_ready))
            st = effdim_optim_ivon_sample_normal(T->opt, T->c->theta, &rng, theta_s, err);
        T->sample_ready = 0;
        if (!st)
            st = minibatch_grad(T, theta_s, rows, len, &ls, err);
        if (st) return st;
        if (to_mean != 1.0)
            for (size_t i = 0; i < P; ++i) T->grad[i] *= to_mean;
        if (s + 1 < S && (st = effdim_optim_ivon_accumulate(T->opt, T->grad, err))) return st;
        sum += ls;
    }
    *loss = sum / (double)S;
    return EFFDIM_OK;
}

effdim_status effdim_trainer_step(effdim_trainer *T, double *loss_out, effdim_error *err)
{
    RETURN_ERROR_IF(!T, err, EFFDIM_EINVAL, "train step: NULL trainer");
    const size_t n = T->n;
    T->epoch_ended = 0;
    if (!T->perm_ready) {
        permute(T->rng, T->p.seed, T->epoch, n, T->perm);
        T->perm_ready = 1;
    }
    const size_t len = n - T->pos < T->batch ? n - T->pos : T->batch;
    double loss = NAN, t0 = effdim_now();
    effdim_status st = T->sample ? ivon_samples(T, T->perm + T->pos, len, &loss, err)
                                 : batch_gradient(T, T->perm + T->pos, len, &loss, err);
    if (st) return st;
    RETURN_ERROR_IF(!isfinite(loss), err, EFFDIM_EDOM,
                    "train: loss became %g at epoch %llu, step %zu: training diverged (lower the "
                    "learning rate?)", loss, (unsigned long long)(T->epoch + 1), T->opt->t + 1);
    double lr = effdim_schedule_lr(&T->p.schedule, T->opt->t + 1);
    if (T->sample && T->opt->params.mc_samples == 1) {
        /* one sample a step: draw the next step's sample in the update's pass */
        effdim_normal_stream next = {T->p.seed, T->opt->t + 2, 0};
        st = effdim_optim_ivon_step_and_sample(T->opt, T->c->theta, T->grad, lr, &next, T->sample,
                                               err);
        T->sample_ready = !st;
    } else {
        st = effdim_optim_step(T->opt, T->u ? T->u : T->c->theta, T->grad, lr, err);
    }
    if (st) return st;
    if (T->u) { /* theta and log_sigma2 back into the checkpoint */
        const size_t P = T->c->mlp.n_params;
        memcpy(T->c->theta, T->u, P * sizeof *T->u);
        memcpy(T->c->svd->log_sigma2, T->u + P, T->c->svd->svd.n_weights * sizeof *T->u);
    }
    T->step_seconds += effdim_now() - t0;
    ++T->steps;
    T->run_loss += loss * (double)len;
    T->run_rows += len;
    T->pos += len;
    if (loss_out) *loss_out = loss;
    if (T->pos < n) return EFFDIM_OK;
    /* the epoch is complete */
    st = evaluate_epoch(T, err);
    if (st) return st;
    T->epoch += 1;
    T->pos = 0;
    T->perm_ready = 0;
    T->run_loss = 0;
    T->run_rows = 0;
    T->epoch_ended = 1;
    ++T->epochs_done;
    return EFFDIM_OK;
}

effdim_status effdim_trainer_sync(effdim_trainer *T, effdim_error *err)
{
    RETURN_ERROR_IF(!T, err, EFFDIM_EINVAL, "train sync: NULL trainer");
    effdim_checkpoint *c = T->c;
    effdim_status st = effdim_checkpoint_set_from_optim(c, T->opt, &T->p.schedule, err);
    if (!st) st = effdim_checkpoint_set_provenance(c, NULL, NULL, T->p.seed, err);
    if (!st) st = effdim_checkpoint_set_training_number(c, "batch", (double)T->batch, err);
    if (!st) st = effdim_checkpoint_set_training_number(c, "seconds", effdim_now() - T->start, err);
    if (!st && (T->pos > 0 || T->had_epoch_rows))
        st = effdim_checkpoint_set_training_number(c, "epoch_rows", (double)T->pos, err);
    if (!st && c->svd) {
        char spec[96];
        st = effdim_checkpoint_set_training_string(
            c, "svd_anneal", effdim_svd_anneal_format(&T->p.svd_anneal, spec, sizeof spec), err);
        if (!st)
            st = effdim_checkpoint_set_training_number(c, "svd_train_clip",
                                                       T->p.svd_train_clip ? 1.0 : 0.0, err);
    }
    if (st) return st;
    free(c->training->created); /* the save writes the time and version of now */
    c->training->created = NULL;
    free(c->training->version);
    c->training->version = NULL;
    return EFFDIM_OK;
}

/* ======================================================================
 * The job
 * ====================================================================== */

static double steps_per_second(const effdim_trainer *T)
{
    return T->step_seconds > 0 ? (double)T->steps / T->step_seconds : 0.0;
}

/* The "epoch" event after an epoch's evaluation. */
static int report_epoch(const effdim_trainer *T, double start)
{
    const double *r = T->last;
    char acc[64] = "", test[96] = "";
    if (!isnan(r[1])) snprintf(acc, sizeof acc, "  accuracy %.4f", r[1]);
    if (T->test && T->p.evaluate) {
        int w = snprintf(test, sizeof test, "  test loss %.6g", r[2]);
        if (!isnan(r[3]) && w > 0)
            snprintf(test + w, sizeof test - (size_t)w, "  test accuracy %.4f", r[3]);
    }
    return effdim_progress_report(&T->p.progress, "epoch", start, T->epochs_done, T->p.epochs, -1.0,
                                  "epoch %llu/%llu  step %zu  loss %.6g%s%s  %.1f steps/s",
                                  (unsigned long long)T->epoch, (unsigned long long)T->epoch_end,
                                  T->opt->t, r[0], acc, test, steps_per_second(T));
}

/* The "train" event inside an epoch: the running loss of the epoch. */
static int report_step(const effdim_trainer *T, double start, size_t total)
{
    char acc[48] = "";
    if (isfinite(T->last[1])) snprintf(acc, sizeof acc, "  accuracy %.4f (last epoch)", T->last[1]);
    return effdim_progress_report(&T->p.progress, "train", start, T->steps, total, -1.0,
                                  "epoch %llu/%llu  step %zu  loss %.5g%s  %.1f steps/s",
                                  (unsigned long long)(T->epoch + 1),
                                  (unsigned long long)T->epoch_end, T->opt->t,
                                  T->run_rows ? T->run_loss / (double)T->run_rows : (double)NAN,
                                  acc, steps_per_second(T));
}

static void fill_result(const effdim_trainer *T, effdim_train_result *res, int interrupted)
{
    if (!res) return;
    res->epochs_run = T->epochs_done;
    res->epochs_total = T->epoch;
    res->steps = T->steps;
    res->step = T->opt->t;
    res->batch = T->batch;
    res->loss = T->last[0];
    res->accuracy = T->last[1];
    res->test_loss = T->last[2];
    res->test_accuracy = T->last[3];
    res->seconds = effdim_now() - T->start;
    res->step_seconds = T->step_seconds;
    res->interrupted = interrupted;
}

/* The epochs of the job: one step at a time, events, periodic saves. */
static effdim_status run_epochs(effdim_trainer *T, int *stopped, effdim_error *err)
{
    const effdim_train_params *p = &T->p;
    const size_t n = T->n, nb = (n + T->batch - 1) / T->batch;
    size_t total = 0;
    if (p->epochs) total = (n - T->pos + T->batch - 1) / T->batch + (p->epochs - 1) * nb;
    const double start = effdim_now();
    double last_report = start;
    *stopped = 0;
    while (T->epochs_done < p->epochs && !*stopped) {
        effdim_status st = effdim_trainer_step(T, NULL, err);
        if (st) return st;
        if (T->epoch_ended) {
            *stopped = report_epoch(T, start) != 0;
            if (p->save_every && T->epochs_done % p->save_every == 0 && T->epochs_done < p->epochs) {
                st = effdim_trainer_sync(T, err);
                if (!st && effdim_comm_rank(p->comm) == 0) /* with ranks, rank 0 alone writes */
                    st = effdim_checkpoint_save(T->c, p->save_path, err);
                if ((st = effdim_comm_agree(p->comm, st, err))) return st;
            }
        } else if (p->progress.fn && effdim_comm_size(p->comm) <= 1) { /* ranks: epochs only */
            double now = effdim_now();
            if (now - last_report >= TRAIN_REPORT_INTERVAL) {
                last_report = now;
                *stopped = report_step(T, start, total) != 0;
            }
        }
    }
    return EFFDIM_OK;
}

effdim_status effdim_train_run(const effdim_train_params *p, effdim_checkpoint *c,
                               const effdim_dataset *train, const effdim_dataset *test,
                               effdim_train_result *res, effdim_error *err)
{
    effdim_trainer *T = NULL;
    effdim_status st = effdim_trainer_alloc(p, c, train, test, &T, err);
    if (st) return st;
    int stopped = 0;
    st = run_epochs(T, &stopped, err);
    stopped = stopped && T->epochs_done < p->epochs; /* a stop after the last epoch is no stop */
    if (!st) st = effdim_trainer_sync(T, err);
    fill_result(T, res, stopped);
    if (!st && stopped) {
        char rows[64] = "";
        if (T->pos) snprintf(rows, sizeof rows, ", %zu rows into the next", T->pos);
        st = effdim_error_set(err, EFFDIM_EMAXITER,
                              "training interrupted after %zu steps (%zu of %zu epochs complete%s)",
                              T->steps, T->epochs_done, p->epochs, rows);
    }
    effdim_trainer_free(T);
    return st;
}
