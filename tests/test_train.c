/* tests/test_train.c: the training job (effdim/train.h).
 *
 * Oracles:
 * - the epoch permutation: a permutation of 0..n-1, a pure function of
 *   (seed, epoch) that changes with either, and uniform (chi-square of where
 *   row 0 lands over many epochs);
 * - one epoch replayed by hand from public pieces (the permutation, the
 *   minibatch gradients of effdim_mlp_loss_grad, theta -= lr g) equals the
 *   trainer's epoch bitwise, with a short last batch;
 * - resuming: 2 epochs, save, load, 2 more == 4 epochs bitwise (theta, every
 *   state vector, step, the metric arrays), for Adam and for SGD with
 *   momentum, and likewise for a run stopped by the progress callback inside
 *   an epoch;
 * - the progress events (stages, counts, time left) and every refusal: a
 *   diverging run, a checkpoint whose /training batch is not a whole number
 *   of rows (1e300, 0, a string), an optimiser that differs from the
 *   checkpoint's, bad seeds and save settings.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "effdim/train.h"
#include "testnet.h"

/* ---- set-up ---- */

typedef struct fixture {
    effdim_dataset *train, *test;
    effdim_checkpoint *c;
} fixture;

/* 3-7-3 tanh network on 45 rows of 3 features and 3 classes (batch 8: five
 * full batches and a short one of 5). */
static int fixture_make(fixture *f, unsigned long seed)
{
    effdim_error err;
    memset(f, 0, sizeof *f);
    f->train = testnet_data(45, 3, 3, EFFDIM_TARGET_LABELS, seed);
    f->test = testnet_data(20, 3, 3, EFFDIM_TARGET_LABELS, seed + 100);
    const size_t sizes[] = {3, 7, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    if (!f->train || !f->test ||
        !CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY,
                                  EFFDIM_REDUCTION_MEAN, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &f->c, &err), &err) ||
        !CHECK_OK(effdim_mlp_init_params(&m, f->c->theta, EFFDIM_INIT_TORCH, 3, &err), &err))
        return 0;
    return 1;
}

static void fixture_free(fixture *f)
{
    effdim_dataset_free(f->train);
    effdim_dataset_free(f->test);
    effdim_checkpoint_free(f->c);
}

static effdim_train_params small_params(effdim_optim_kind kind)
{
    effdim_train_params p = effdim_train_default_params();
    p.optimizer = kind;
    p.optim = effdim_optim_default_params(kind);
    p.optim.lr = kind == EFFDIM_OPTIM_SGD ? 0.0713 : 0.0137;
    if (kind == EFFDIM_OPTIM_SGD) p.optim.momentum = 0.85;
    p.batch = 8;
    p.seed = 29;
    return p;
}

static int same_doubles(const double *a, const double *b, size_t n)
{
    return a && b && memcmp(a, b, n * sizeof *a) == 0;
}

/* Every number two checkpoints hold after training: theta, step, state
 * vectors and per-epoch metrics, compared bitwise (NaN equal to NaN). */
static int same_training(const effdim_checkpoint *a, const effdim_checkpoint *b)
{
    size_t P = a->mlp.n_params;
    int ok = CHECK(P == b->mlp.n_params) && CHECK(same_doubles(a->theta, b->theta, P));
    ok = ok && CHECK(a->optimizer && b->optimizer && a->optimizer->step == b->optimizer->step) &&
         CHECK(a->optimizer->n_state == b->optimizer->n_state);
    for (size_t i = 0; ok && i < a->optimizer->n_state; ++i) {
        const effdim_named_vector *v = &a->optimizer->state[i];
        ok = CHECK(same_doubles(v->v, effdim_checkpoint_state(b, v->name), P));
    }
    const char *metrics[] = {"losses", "accuracies", "test_losses", "test_accuracies"};
    for (size_t i = 0; ok && i < 4; ++i) {
        size_t na = 0, nb = 0;
        const double *ma = effdim_checkpoint_metric(a, metrics[i], &na);
        const double *mb = effdim_checkpoint_metric(b, metrics[i], &nb);
        ok = CHECK(na == nb && na > 0) && CHECK(same_doubles(ma, mb, na));
    }
    return ok && CHECK(a->training->epochs == b->training->epochs);
}

/* ---- the permutation ---- */

static void test_permutation_is_a_pure_function_of_seed_and_epoch(void)
{
    effdim_error err;
    enum { N = 257 };
    size_t a[N], b[N], c[N], d[N];
    CHECK_OK(effdim_train_permutation(41, 6, N, a, &err), &err);
    CHECK_OK(effdim_train_permutation(41, 6, N, b, &err), &err);
    CHECK_OK(effdim_train_permutation(41, 7, N, c, &err), &err);
    CHECK_OK(effdim_train_permutation(42, 6, N, d, &err), &err);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
    int seen[N] = {0}, moved = 0;
    for (size_t i = 0; i < N; ++i) {
        if (a[i] < N) seen[a[i]]++;
        moved += a[i] != i;
    }
    int once = 1;
    for (size_t i = 0; i < N; ++i) once = once && seen[i] == 1;
    CHECK(once);
    CHECK(moved > N / 2);
}

static void test_permutation_puts_a_row_anywhere_with_equal_chance(void)
{
    /* where row 0 lands over 4000 epochs, 8 bins of 5 positions: chi-square
     * with 7 degrees of freedom, below 24.3 with probability 0.999 */
    effdim_error err;
    enum { N = 40, E = 4000, BINS = 8 };
    size_t perm[N];
    double count[BINS] = {0};
    for (uint64_t e = 0; e < E; ++e) {
        CHECK_OK(effdim_train_permutation(5, e, N, perm, &err), &err);
        for (size_t i = 0; i < N; ++i)
            if (perm[i] == 0) count[i / (N / BINS)] += 1;
    }
    double chi2 = 0, expect = (double)E / BINS;
    for (int b = 0; b < BINS; ++b) chi2 += (count[b] - expect) * (count[b] - expect) / expect;
    check_note("chi-square %.2f (7 dof)", chi2);
    CHECK(chi2 < 24.3);
}

/* ---- one epoch against a replay ---- */

static void test_an_epoch_is_sgd_over_the_permuted_slices(void)
{
    effdim_error err;
    fixture f;
    if (!fixture_make(&f, 11)) goto done;
    effdim_train_params p = small_params(EFFDIM_OPTIM_SGD);
    p.optim.momentum = 0;
    p.epochs = 1;
    size_t P = f.c->mlp.n_params, n = f.train->n;
    double *theta = malloc(P * sizeof *theta), *g = malloc(P * sizeof *g);
    size_t *perm = malloc(n * sizeof *perm);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&f.c->mlp, 8, &err);
    if (!CHECK(theta && g && perm && ws)) goto free_all;
    memcpy(theta, f.c->theta, P * sizeof *theta);
    /* the replay: global epoch 0, slices of 8 rows, the last of 5 */
    CHECK_OK(effdim_train_permutation(p.seed, 0, n, perm, &err), &err);
    size_t steps = 0;
    for (size_t at = 0; at < n; at += 8, ++steps) {
        size_t len = n - at < 8 ? n - at : 8;
        double loss;
        CHECK_OK(effdim_mlp_loss_grad(&f.c->mlp, theta, f.train, perm + at, len, &loss, g, ws, &err),
                 &err);
        for (size_t j = 0; j < P; ++j) theta[j] = fma(g[j], -p.optim.lr, theta[j]);
    }
    effdim_train_result r;
    CHECK_OK(effdim_train_run(&p, f.c, f.train, f.test, &r, &err), &err);
    CHECK(steps == 6 && r.steps == 6 && r.step == 6 && r.epochs_run == 1 && r.batch == 8);
    CHECK(same_doubles(theta, f.c->theta, P));
    /* the epoch's evaluation is the whole training set's loss at the new theta */
    double loss, acc;
    CHECK_OK(effdim_mlp_evaluate(&f.c->mlp, theta, f.train, NULL, n, &loss, &acc, ws, &err), &err);
    size_t k = 0;
    const double *losses = effdim_checkpoint_metric(f.c, "losses", &k);
    CHECK(k == 1 && losses && losses[0] == loss && r.loss == loss && r.accuracy == acc);
    CHECK(isfinite(r.test_loss) && r.test_accuracy >= 0 && r.test_accuracy <= 1);
    CHECK(f.c->training->has_seed && f.c->training->seed == p.seed && f.c->training->epochs == 1);
free_all:
    free(theta);
    free(g);
    free(perm);
    effdim_mlp_ws_free(ws);
done:
    fixture_free(&f);
}

/* ---- resuming ---- */

/* n epochs from the fixture's start into a fresh checkpoint */
static effdim_checkpoint *train_epochs(effdim_optim_kind kind, size_t epochs)
{
    effdim_error err;
    fixture f;
    effdim_checkpoint *out = NULL;
    if (fixture_make(&f, 17)) {
        effdim_train_params p = small_params(kind);
        p.epochs = epochs;
        if (CHECK_OK(effdim_train_run(&p, f.c, f.train, f.test, NULL, &err), &err)) {
            out = f.c;
            f.c = NULL;
        }
    }
    fixture_free(&f);
    return out;
}

/* Save c, load it, continue for `epochs` with the parameters it records. */
static effdim_checkpoint *resume(effdim_checkpoint *c, const char *name, size_t epochs)
{
    effdim_error err;
    fixture f;
    effdim_checkpoint *back = NULL;
    const char *path = check_tmpfile(name);
    if (!fixture_make(&f, 17) || !CHECK_OK(effdim_checkpoint_save(c, path, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_load(path, &back, &err), &err)) {
        fixture_free(&f);
        return back;
    }
    effdim_train_params p = effdim_train_default_params();
    CHECK_OK(effdim_train_params_from_checkpoint(back, path, &p, &err), &err);
    CHECK(p.batch == 8 && p.seed == 29);
    p.epochs = epochs;
    CHECK_OK(effdim_train_run(&p, back, f.train, f.test, NULL, &err), &err);
    fixture_free(&f);
    return back;
}

static void check_two_plus_two(effdim_optim_kind kind, const char *name)
{
    effdim_checkpoint *four = train_epochs(kind, 4);
    effdim_checkpoint *two = train_epochs(kind, 2);
    effdim_checkpoint *resumed = two ? resume(two, name, 2) : NULL;
    if (CHECK(four && resumed)) {
        same_training(four, resumed);
        CHECK(resumed->optimizer->step == 24 && resumed->training->epochs == 4);
        CHECK(!effdim_checkpoint_training_attr(resumed, "epoch_rows"));
    }
    effdim_checkpoint_free(four);
    effdim_checkpoint_free(two);
    effdim_checkpoint_free(resumed);
}

static void test_two_epochs_saved_and_resumed_for_two_equal_four_bitwise_with_adam(void)
{
    check_two_plus_two(EFFDIM_OPTIM_ADAM, "adam2.h5");
}

static void test_two_epochs_saved_and_resumed_for_two_equal_four_bitwise_with_sgd_momentum(void)
{
    check_two_plus_two(EFFDIM_OPTIM_SGD, "sgd2.h5");
}

/* Stops at the first "train" event after the first epoch (the epoch event
 * waits out the report interval so that event comes one step later). */
typedef struct stopper {
    int epochs_seen, train_after, calls;
    size_t last_done, last_total;
    int bad_event;
} stopper;

static int stop_in_epoch_two(void *ctx, const effdim_progress_event *ev)
{
    stopper *s = ctx;
    ++s->calls;
    if (!ev->detail || ev->fraction > 1.0 || (ev->done > 0 && ev->total && ev->eta < 0))
        s->bad_event = 1;
    if (!strcmp(ev->stage, "epoch")) {
        ++s->epochs_seen;
        s->last_done = ev->done;
        s->last_total = ev->total;
        struct timespec ts = {0, 60 * 1000 * 1000};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (strcmp(ev->stage, "train") != 0) s->bad_event = 1;
    return s->epochs_seen >= 1 ? (s->train_after = 1) : 0;
}

static void test_a_run_stopped_inside_an_epoch_resumes_bitwise(void)
{
    effdim_error err;
    fixture f;
    effdim_checkpoint *four = train_epochs(EFFDIM_OPTIM_ADAM, 4), *back = NULL;
    if (!fixture_make(&f, 17) || !four) goto done;
    stopper s = {0};
    effdim_train_params p = small_params(EFFDIM_OPTIM_ADAM);
    p.epochs = 4;
    p.progress.fn = stop_in_epoch_two;
    p.progress.ctx = &s;
    effdim_train_result r;
    CHECK_STATUS(effdim_train_run(&p, f.c, f.train, f.test, &r, &err), EFFDIM_EMAXITER, &err);
    CHECK_MSG(&err, "interrupted", "1 of 4 epochs");
    CHECK(!s.bad_event && s.epochs_seen == 1 && s.last_done == 1 && s.last_total == 4);
    CHECK(r.interrupted && r.epochs_run == 1 && r.steps == 7 && r.step == 7);
    const effdim_checkpoint_attr *rows = effdim_checkpoint_training_attr(f.c, "epoch_rows");
    CHECK(rows && rows->n == 1 && rows->num[0] == 8.0);
    CHECK(f.c->training->epochs == 1 && f.c->optimizer->step == 7);
    back = resume(f.c, "stopped.h5", 3);
    if (CHECK(back)) {
        same_training(four, back);
        const effdim_checkpoint_attr *a = effdim_checkpoint_training_attr(back, "epoch_rows");
        CHECK(a && a->num[0] == 0.0); /* finished: no rows into a next epoch */
    }
done:
    effdim_checkpoint_free(four);
    effdim_checkpoint_free(back);
    fixture_free(&f);
}

/* ---- progress and refusals ---- */

typedef struct counter {
    size_t epochs, last_done, total;
} counter;

static int count_epochs(void *ctx, const effdim_progress_event *ev)
{
    counter *c = ctx;
    if (!strcmp(ev->stage, "epoch")) {
        c->epochs++;
        c->last_done = ev->done;
        c->total = ev->total;
    }
    return 0;
}

static void test_every_epoch_reports_its_count_and_saves_when_due(void)
{
    effdim_error err;
    fixture f;
    effdim_checkpoint *mid = NULL;
    if (!fixture_make(&f, 17)) goto done;
    counter c = {0};
    effdim_train_params p = small_params(EFFDIM_OPTIM_ADAM);
    p.epochs = 3;
    p.progress.fn = count_epochs;
    p.progress.ctx = &c;
    p.save_every = 2;
    p.save_path = check_tmpfile("every.h5");
    CHECK_OK(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), &err);
    CHECK(c.epochs == 3 && c.last_done == 3 && c.total == 3);
    if (CHECK_OK(effdim_checkpoint_load(p.save_path, &mid, &err), &err))
        CHECK(mid->training->epochs == 2 && mid->optimizer->step == 12);
    size_t k = 0;
    const double *tl = effdim_checkpoint_metric(f.c, "test_losses", &k);
    CHECK(k == 3 && tl && isnan(tl[2])); /* no test set: NaN */
done:
    effdim_checkpoint_free(mid);
    fixture_free(&f);
}

static void test_a_diverging_run_is_refused_with_the_step(void)
{
    effdim_error err;
    fixture f;
    if (!fixture_make(&f, 17)) goto done;
    effdim_train_params p = small_params(EFFDIM_OPTIM_SGD);
    p.optim.lr = 1e307; /* theta overflows to inf within a few steps */
    p.epochs = 3;
    CHECK_STATUS(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), EFFDIM_EDOM, &err);
    CHECK_MSG(&err, "loss became", "step", "diverged");
done:
    fixture_free(&f);
}

static void check_bad_batch(fixture *f, int as_string, double v, const char *want)
{
    effdim_error err;
    effdim_train_params p = small_params(EFFDIM_OPTIM_ADAM);
    p.epochs = 1;
    CHECK_OK(effdim_train_run(&p, f->c, f->train, NULL, NULL, &err), &err);
    if (as_string)
        CHECK_OK(effdim_checkpoint_set_training_string(f->c, "batch", "many", &err), &err);
    else
        CHECK_OK(effdim_checkpoint_set_training_number(f->c, "batch", v, &err), &err);
    effdim_train_params q = effdim_train_default_params();
    CHECK_STATUS(effdim_train_params_from_checkpoint(f->c, "run.h5", &q, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "run.h5", "/training batch", want, "whole number of rows");
    CHECK(q.batch == 128);
}

static void test_a_recorded_batch_that_is_not_a_row_count_is_refused(void)
{
    fixture f;
    if (fixture_make(&f, 17)) {
        check_bad_batch(&f, 0, 1e300, "1e+300");
        check_bad_batch(&f, 0, 0.0, "0");
        check_bad_batch(&f, 0, 2.5, "2.5");
        check_bad_batch(&f, 1, 0, "string");
    }
    fixture_free(&f);
}

static void test_a_checkpoint_without_an_optimizer_still_gives_its_seed_and_batch(void)
{
    /* e.g. tools/torch_export.py without optimiser state: a fresh optimiser
     * from the params, the recorded seed and batch */
    effdim_error err;
    fixture f;
    if (fixture_make(&f, 17) &&
        CHECK_OK(effdim_checkpoint_set_provenance(f.c, "spirals:n=45", NULL, 71, &err), &err) &&
        CHECK_OK(effdim_checkpoint_set_training_number(f.c, "batch", 9, &err), &err)) {
        effdim_train_params p = effdim_train_default_params();
        p.optimizer = EFFDIM_OPTIM_SGD;
        CHECK_OK(effdim_train_params_from_checkpoint(f.c, "plain.h5", &p, &err), &err);
        CHECK(p.seed == 71 && p.batch == 9 && p.optimizer == EFFDIM_OPTIM_SGD);
    }
    fixture_free(&f);
}

static void test_bad_params_and_a_different_optimizer_are_refused(void)
{
    effdim_error err;
    fixture f;
    if (!fixture_make(&f, 17)) goto done;
    effdim_train_params p = small_params(EFFDIM_OPTIM_ADAM);
    p.seed = (uint64_t)INT64_MAX + 1;
    CHECK_STATUS(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "seed");
    p = small_params(EFFDIM_OPTIM_ADAM);
    p.save_every = 1;
    CHECK_STATUS(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "save_every", "save_path");
    p = small_params(EFFDIM_OPTIM_ADAM);
    p.optim.beta2 = 1.5;
    CHECK_STATUS(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "beta2");
    p = small_params(EFFDIM_OPTIM_ADAM);
    p.epochs = 1;
    CHECK_OK(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), &err);
    p = small_params(EFFDIM_OPTIM_SGD);
    CHECK_STATUS(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "adam", "sgd");
    effdim_dataset *wide = testnet_data(10, 4, 3, EFFDIM_TARGET_LABELS, 3);
    p = small_params(EFFDIM_OPTIM_ADAM);
    if (CHECK(wide)) {
        CHECK_STATUS(effdim_train_run(&p, f.c, wide, NULL, NULL, &err), EFFDIM_EINVAL, &err);
        CHECK_MSG(&err, "training data");
    }
    effdim_dataset_free(wide);
    CHECK_STATUS(effdim_train_permutation(1, 0, 3, NULL, &err), EFFDIM_EINVAL, &err);
done:
    fixture_free(&f);
}

CHECK_TESTS({"permutation is a pure function of seed and epoch",
             test_permutation_is_a_pure_function_of_seed_and_epoch},
            {"permutation puts a row anywhere with equal chance",
             test_permutation_puts_a_row_anywhere_with_equal_chance},
            {"an epoch is SGD over the permuted slices", test_an_epoch_is_sgd_over_the_permuted_slices},
            {"two epochs saved and resumed for two equal four bitwise with adam",
             test_two_epochs_saved_and_resumed_for_two_equal_four_bitwise_with_adam},
            {"two epochs saved and resumed for two equal four bitwise with sgd momentum",
             test_two_epochs_saved_and_resumed_for_two_equal_four_bitwise_with_sgd_momentum},
            {"a run stopped inside an epoch resumes bitwise",
             test_a_run_stopped_inside_an_epoch_resumes_bitwise},
            {"every epoch reports its count and saves when due",
             test_every_epoch_reports_its_count_and_saves_when_due},
            {"a diverging run is refused with the step", test_a_diverging_run_is_refused_with_the_step},
            {"a recorded batch that is not a row count is refused",
             test_a_recorded_batch_that_is_not_a_row_count_is_refused},
            {"a checkpoint without an optimizer still gives its seed and batch",
             test_a_checkpoint_without_an_optimizer_still_gives_its_seed_and_batch},
            {"bad params and a different optimizer are refused",
             test_bad_params_and_a_different_optimizer_are_refused})
