/* tests/test_optim.c: the optimisers and learning-rate schedules.
 *
 * Oracles:
 * - PyTorch (tests/fixtures/optim_torch.h5 from tests/make_fixture_optim.py):
 *   10 steps of torch.optim SGD (plain, momentum, Nesterov, dampening + weight
 *   decay), Adam (plain, L2), AMSGrad, AdamW (plain, amsgrad) and two runs
 *   with schedules; the test replays PyTorch's gradients and compares every
 *   parameter and every state vector after every step (1e-12 relative), and
 *   torch.optim.lr_scheduler's learning rates;
 * - closed forms for the schedules and for one hand-computed Adam step;
 * - Reddi, Kale and Kumar 2018, Theorem 1: on f_t(x) = C x (t mod 3 = 1),
 *   -x otherwise, with beta1 = 0, beta2 = 1/(1+C^2), Adam drifts to +1 and
 *   AMSGrad to the optimum -1; and a short run of the online problem of their
 *   Figure 1 separates the two the same way;
 * - every invalid hyperparameter is refused with a message naming it.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/optim.h"
#include "h5io.h"

/* ---- the PyTorch fixture ---- */

#define FIX_STEPS 10
#define FIX_MAX_P 64
#define FIX_STATES 4 /* the PyTorch optimisers' state vectors */

typedef struct fixture_run {
    char name[64];
    char kind[16];
    char schedule[128];
    effdim_optim_params params;
    size_t p;                                /* parameters */
    double theta0[FIX_MAX_P];                /* (p) */
    double grads[FIX_STEPS * FIX_MAX_P];     /* (10, p) */
    double theta[FIX_STEPS * FIX_MAX_P];     /* (10, p) */
    double lr[FIX_STEPS];                    /* (10) */
    int has[FIX_STATES];
    double state[FIX_STATES][FIX_STEPS * FIX_MAX_P]; /* (10, p) each */
} fixture_run;

static const char *const state_names[FIX_STATES] = {"exp_avg", "exp_avg_sq",
                                                                "max_exp_avg_sq", "momentum_buffer"};

static int read_param(hid_t g, const char *name, double *v, effdim_error *err)
{
    return CHECK_OK(effdim_h5_attr_read_double(g, name, v, err), err);
}

static int load_run(hid_t file, const char *name, fixture_run *r)
{
    effdim_error err;
    char path[128];
    snprintf(path, sizeof path, "runs/%s", name);
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    hid_t g = H5Gopen2(file, path, H5P_DEFAULT);
    if (!CHECK(g >= 0)) return 0;
    int ok = CHECK_OK(effdim_h5_attr_read_string(g, "kind", r->kind, sizeof r->kind, &err), &err);
    ok = ok && CHECK_OK(effdim_h5_attr_read_string(g, "schedule", r->schedule, sizeof r->schedule, &err), &err);
    double nesterov = 0, amsgrad = 0;
    effdim_optim_params *p = &r->params;
    ok = ok && read_param(g, "lr", &p->lr, &err) && read_param(g, "momentum", &p->momentum, &err) &&
         read_param(g, "dampening", &p->dampening, &err) && read_param(g, "nesterov", &nesterov, &err) &&
         read_param(g, "weight_decay", &p->weight_decay, &err) && read_param(g, "beta1", &p->beta1, &err) &&
         read_param(g, "beta2", &p->beta2, &err) && read_param(g, "eps", &p->eps, &err) &&
         read_param(g, "amsgrad", &amsgrad, &err);
    p->nesterov = nesterov != 0.0;
    p->amsgrad = amsgrad != 0.0;
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    ok = ok && CHECK_OK(effdim_h5_shape(g, "theta0", &rank, dims, &cls, &err), &err);
    ok = ok && CHECK(rank == 1 && dims[0] <= FIX_MAX_P);
    if (ok) r->p = dims[0];
    ok = ok && CHECK_OK(effdim_h5_read_doubles(g, "theta0", r->theta0, r->p, &err), &err);
    ok = ok && CHECK_OK(effdim_h5_read_doubles(g, "grads", r->grads, FIX_STEPS * r->p, &err), &err);
    ok = ok && CHECK_OK(effdim_h5_read_doubles(g, "theta", r->theta, FIX_STEPS * r->p, &err), &err);
    ok = ok && CHECK_OK(effdim_h5_read_doubles(g, "lr", r->lr, FIX_STEPS, &err), &err);
    for (int s = 0; ok && s < FIX_STATES; ++s) {
        r->has[s] = effdim_h5_has_link(g, state_names[s]);
        if (r->has[s])
            ok = CHECK_OK(effdim_h5_read_doubles(g, state_names[s], r->state[s], FIX_STEPS * r->p, &err),
                          &err);
    }
    H5Gclose(g);
    return ok;
}

/* max_i |a_i - b_i| / |b_i| over entries with |b_i| > 0 (elementwise relative) */
static double max_rel_elem(const double *a, const double *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double d = fabs(a[i] - b[i]);
        double r = b[i] != 0.0 ? d / fabs(b[i]) : (d == 0.0 ? 0.0 : HUGE_VAL);
        if (r > worst) worst = r;
    }
    return worst;
}

/* max_i |a_i - b_i| / max_i |b_i| (relative to the vector's scale) */
static double max_rel_norm(const double *a, const double *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0.0 ? d / s : d;
}

static const char *const run_names[] = {
    "sgd_plain", "sgd_momentum", "sgd_nesterov", "sgd_dampening_wd", "adam", "adam_wd",
    "amsgrad", "adamw", "adamw_amsgrad", "adam_cosine_warmup", "sgd_momentum_step",
};

/* Replay one run with the fixture's learning rates (own_schedule = 0) or
 * with effdim's schedule for the run's spec (1); returns the largest
 * elementwise relative error seen. */
static double replay_run(const fixture_run *r, int own_schedule)
{
    effdim_error err;
    effdim_optim_kind kind;
    effdim_schedule sched;
    effdim_optim *opt = NULL;
    double worst = 0.0, worst_norm = 0.0;
    if (!CHECK_OK(effdim_optim_kind_parse(r->kind, &kind, &err), &err)) return INFINITY;
    if (!CHECK_OK(effdim_schedule_parse(r->schedule, r->params.lr, &sched, &err), &err)) return INFINITY;
    if (!CHECK_OK(effdim_optim_alloc(kind, &r->params, r->p, &opt, &err), &err)) return INFINITY;
    /* the run holds exactly the state vectors PyTorch holds */
    for (int s = 0; s < FIX_STATES; ++s)
        CHECK((effdim_optim_state_find(opt, state_names[s]) != NULL) == (r->has[s] != 0));

    double theta[FIX_MAX_P];
    memcpy(theta, r->theta0, r->p * sizeof(double));
    for (size_t k = 0; k < FIX_STEPS; ++k) {
        double lr = own_schedule ? effdim_schedule_lr(&sched, k + 1) : r->lr[k];
        CHECK_CLOSE(lr, r->lr[k], 1e-13);
        CHECK_OK(effdim_optim_step(opt, theta, r->grads + k * r->p, lr, &err), &err);
        CHECK(opt->t == k + 1);
        const double *want = r->theta + k * r->p;
        double e = max_rel_elem(theta, want, r->p);
        if (e > worst) worst = e;
        if (max_rel_norm(theta, want, r->p) > worst_norm) worst_norm = max_rel_norm(theta, want, r->p);
        CHECK_VEC_CLOSE(theta, want, r->p, 1e-12);
        for (int s = 0; s < FIX_STATES; ++s) {
            if (!r->has[s]) continue;
            const double *got = effdim_optim_state_find(opt, state_names[s]);
            want = r->state[s] + k * r->p;
            e = max_rel_elem(got, want, r->p);
            if (e > worst) worst = e;
            if (max_rel_norm(got, want, r->p) > worst_norm) worst_norm = max_rel_norm(got, want, r->p);
            CHECK_VEC_CLOSE(got, want, r->p, 1e-12);
        }
    }
    check_note("%-20s %s max rel error: elementwise %.2e, vector-scaled %.2e", r->name,
               own_schedule ? "(effdim lr)" : "(torch lr) ", worst, worst_norm);
    effdim_optim_free(opt);
    return worst;
}

static void every_optimiser_matches_torch_optim_for_ten_steps(void)
{
    effdim_error err;
    hid_t f = -1;
    if (!CHECK_OK(effdim_h5_open_read(check_fixture("optim_torch.h5"), &f, &err), &err)) return;
    fixture_run *r = malloc(sizeof *r);
    CHECK(r != NULL);
    for (size_t i = 0; r && i < sizeof run_names / sizeof run_names[0]; ++i) {
        if (!load_run(f, run_names[i], r)) continue;
        CHECK(r->p == 23);
        /* elementwise too: no entry of any vector off by more than 1e-12 of itself */
        CHECK(replay_run(r, 0) <= 1e-12);
        if (strcmp(r->schedule, "constant") != 0) CHECK(replay_run(r, 1) <= 1e-12);
    }
    free(r);
    H5Fclose(f);
}

static void schedules_match_torch_lr_schedulers(void)
{
    static const char *const names[] = {"step", "cosine", "cosine_warmup", "step_warmup",
                                         "warmup_only"};
    effdim_error err;
    hid_t f = -1;
    if (!CHECK_OK(effdim_h5_open_read(check_fixture("optim_torch.h5"), &f, &err), &err)) return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
        char path[64], spec[128];
        double base = 0.0, want[64];
        int rank = 0;
        size_t dims[EFFDIM_H5_MAX_RANK];
        H5T_class_t cls;
        effdim_schedule s;
        snprintf(path, sizeof path, "schedules/%s", names[i]);
        hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
        if (!CHECK(g >= 0)) continue;
        CHECK_OK(effdim_h5_attr_read_string(g, "spec", spec, sizeof spec, &err), &err);
        CHECK_OK(effdim_h5_attr_read_double(g, "base_lr", &base, &err), &err);
        CHECK_OK(effdim_h5_shape(g, "lr", &rank, dims, &cls, &err), &err);
        if (CHECK(rank == 1 && dims[0] <= 64) &&
            CHECK_OK(effdim_h5_read_doubles(g, "lr", want, dims[0], &err), &err) &&
            CHECK_OK(effdim_schedule_parse(spec, base, &s, &err), &err)) {
            double worst = 0.0;
            for (size_t t = 1; t <= dims[0]; ++t) {
                double got = effdim_schedule_lr(&s, t);
                CHECK_CLOSE(got, want[t - 1], 1e-13);
                double e = fabs(got - want[t - 1]) / want[t - 1];
                if (e > worst) worst = e;
            }
            check_note("%-14s %-46s %zu steps, max rel error %.1e", names[i], spec, dims[0], worst);
        }
        H5Gclose(g);
    }
    H5Fclose(f);
}

/* ---- closed forms ---- */

static void schedules_follow_their_closed_forms(void)
{
    effdim_schedule s = effdim_schedule_constant(0.2385);
    CHECK(effdim_schedule_lr(&s, 1) == 0.2385 && effdim_schedule_lr(&s, 1000000) == 0.2385);

    s.kind = EFFDIM_SCHEDULE_STEP;
    s.step_size = 7;
    s.gamma = 0.613;
    CHECK(effdim_schedule_lr(&s, 7) == 0.2385);             /* e = 6: no decay yet */
    CHECK_CLOSE(effdim_schedule_lr(&s, 8), 0.2385 * 0.613, 1e-15); /* e = 7 */
    CHECK_CLOSE(effdim_schedule_lr(&s, 22), 0.2385 * 0.613 * 0.613 * 0.613, 1e-15);

    s.kind = EFFDIM_SCHEDULE_COSINE;
    s.t_max = 40;
    s.lr_min = 0.0117;
    CHECK(effdim_schedule_lr(&s, 1) == 0.2385);
    CHECK_CLOSE(effdim_schedule_lr(&s, 21), (0.2385 + 0.0117) / 2, 1e-15); /* e = T/2 */
    CHECK_CLOSE(effdim_schedule_lr(&s, 11), 0.0117 + (0.2385 - 0.0117) * (1 + sqrt(0.5)) / 2, 1e-15);
    CHECK_CLOSE(effdim_schedule_lr(&s, 41), 0.0117, 1e-15); /* e = T */
    CHECK(effdim_schedule_lr(&s, 500) == 0.0117);           /* held after T */

    s.kind = EFFDIM_SCHEDULE_INV_SQRT;
    CHECK(effdim_schedule_lr(&s, 1) == 0.2385);
    CHECK_CLOSE(effdim_schedule_lr(&s, 4), 0.2385 / 2, 1e-15);
    CHECK_CLOSE(effdim_schedule_lr(&s, 2000000), 0.2385 / sqrt(2e6), 1e-15);
    CHECK(effdim_schedule_lr(&s, 0) == effdim_schedule_lr(&s, 1));

    /* warm-up: linear from s*lr over w steps, then the main schedule from its start */
    s.warmup = 8;
    s.warmup_start = 0.125;
    CHECK_CLOSE(effdim_schedule_lr(&s, 1), 0.2385 * 0.125, 1e-15);
    CHECK_CLOSE(effdim_schedule_lr(&s, 5), 0.2385 * (0.125 + 0.875 * 4 / 8), 1e-15);
    CHECK(effdim_schedule_lr(&s, 9) == 0.2385);                   /* main at e' = 0 */
    CHECK_CLOSE(effdim_schedule_lr(&s, 12), 0.2385 / 2, 1e-15);   /* main at e' = 3 */
}

static void one_adam_step_matches_the_hand_computed_update(void)
{
    /* t = 1: m = (1-b1) g, v = (1-b2) g^2, bias-corrected m/sqrt(v) = sign(g) */
    effdim_error err;
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_ADAM);
    effdim_optim *opt = NULL;
    double theta[3] = {0.731, -1.294, 2.385}, g[3] = {0.0413, -3.77, 1e-9};
    if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_ADAM, &p, 3, &opt, &err), &err)) return;
    CHECK_OK(effdim_optim_step(opt, theta, g, 0.0371, &err), &err);
    for (int i = 0; i < 3; ++i) {
        double ghat = fabs(g[i]) / (fabs(g[i]) + 1e-8); /* |m_hat| / (sqrt(v_hat) + eps) */
        double want = (i == 0 ? 0.731 : i == 1 ? -1.294 : 2.385) - 0.0371 * (g[i] > 0 ? ghat : -ghat);
        CHECK_CLOSE(theta[i], want, 1e-14);
    }
    CHECK_CLOSE(opt->exp_avg[1], 0.1 * -3.77, 1e-15);
    CHECK_CLOSE(opt->exp_avg_sq[1], 0.001 * 3.77 * 3.77, 1e-14);
    effdim_optim_free(opt);
}

static void amsgrad_max_propagates_nan_like_torch_maximum(void)
{
    /* element 1 is in the 4-wide vector part, element 5 in the scalar tail */
    effdim_error err;
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_AMSGRAD);
    effdim_optim *opt = NULL;
    double theta[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, g[6] = {0.5, NAN, -0.25, 1.5, 2.0, NAN};
    if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_AMSGRAD, &p, 6, &opt, &err), &err)) return;
    CHECK_OK(effdim_optim_step(opt, theta, g, 1e-3, &err), &err);
    g[1] = g[5] = 0.75; /* finite again: the max stays NaN, as torch.maximum keeps it */
    g[3] = 0.01;        /* v falls; the max keeps step 1's v */
    CHECK_OK(effdim_optim_step(opt, theta, g, 1e-3, &err), &err);
    CHECK(isnan(opt->max_exp_avg_sq[1]) && isnan(opt->max_exp_avg_sq[5]));
    CHECK(isnan(theta[1]) && isnan(theta[5]));
    CHECK(isfinite(opt->max_exp_avg_sq[0]) && isfinite(theta[4]));
    CHECK_CLOSE(opt->max_exp_avg_sq[3], 0.001 * 1.5 * 1.5, 1e-14);
    CHECK(opt->exp_avg_sq[3] < opt->max_exp_avg_sq[3]);
    effdim_optim_free(opt);
}

static void defaults_are_pytorchs(void)
{
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_SGD);
    CHECK(p.lr == 0.01 && p.momentum == 0 && p.dampening == 0 && !p.nesterov && p.weight_decay == 0);
    p = effdim_optim_default_params(EFFDIM_OPTIM_ADAM);
    CHECK(p.lr == 1e-3 && p.beta1 == 0.9 && p.beta2 == 0.999 && p.eps == 1e-8 && p.weight_decay == 0 &&
          !p.amsgrad);
    p = effdim_optim_default_params(EFFDIM_OPTIM_AMSGRAD);
    CHECK(p.lr == 1e-3 && p.beta2 == 0.999 && p.amsgrad);
    p = effdim_optim_default_params(EFFDIM_OPTIM_ADAMW);
    CHECK(p.lr == 1e-3 && p.weight_decay == 1e-2 && p.eps == 1e-8 && !p.amsgrad);
}

static void names_parse_both_ways(void)
{
    effdim_error err;
    effdim_optim_kind k;
    static const char *const names[] = {"sgd", "adam", "amsgrad", "adamw", "ivon"};
    for (int i = 0; i < 5; ++i) {
        CHECK_OK(effdim_optim_kind_parse(names[i], &k, &err), &err);
        CHECK((int)k == i && !strcmp(effdim_optim_kind_name(k), names[i]));
    }
    CHECK_OK(effdim_optim_kind_parse("AdamW", &k, &err), &err);
    CHECK(k == EFFDIM_OPTIM_ADAMW);
    CHECK_STATUS(effdim_optim_kind_parse("rmsprop", &k, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "rmsprop", "sgd, adam, amsgrad, adamw or ivon");
    CHECK(!strcmp(effdim_optim_kind_name((effdim_optim_kind)17), "?"));
}

static void invalid_hyperparameters_are_refused_by_name(void)
{
    effdim_error err;
    effdim_optim *opt = (effdim_optim *)&err; /* must come back NULL */
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_ADAM);
    p.beta2 = 1.5;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_ADAM, &p, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "adam", "beta2 = 1.5", "[0, 1)");
    CHECK(opt == NULL);
    p.beta2 = 0.999;
    p.beta1 = -0.25;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_ADAMW, &p, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "adamw", "beta1 = -0.25");
    p.beta1 = 0.9;
    p.eps = NAN;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_AMSGRAD, &p, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "amsgrad", "eps", ">= 0");
    p.eps = 1e-8;
    p.lr = -0.003;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_ADAM, &p, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "lr = -0.003", ">= 0");
    p.lr = 1e-3;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_ADAM, &p, 0, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "n = 0");

    effdim_optim_params s = effdim_optim_default_params(EFFDIM_OPTIM_SGD);
    s.nesterov = 1;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_SGD, &s, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "sgd", "nesterov", "momentum > 0");
    s.momentum = 0.9;
    s.dampening = 0.1;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_SGD, &s, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "dampening = 0");
    s.nesterov = 0;
    s.weight_decay = -1e-4;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_SGD, &s, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "weight_decay = -0.0001");
    s.weight_decay = 0;
    s.momentum = -0.5;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_SGD, &s, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "momentum = -0.5");
    CHECK_STATUS(effdim_optim_alloc((effdim_optim_kind)9, &s, 5, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "kind 9 unknown");

    /* a bad step lr changes nothing */
    double theta[2] = {1.25, -0.5}, g[2] = {0.3, 0.7};
    p = effdim_optim_default_params(EFFDIM_OPTIM_ADAM);
    if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_ADAM, &p, 2, &opt, &err), &err)) return;
    CHECK_STATUS(effdim_optim_step(opt, theta, g, NAN, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "adam", "step lr = nan");
    CHECK_STATUS(effdim_optim_step(opt, theta, g, -1.0, &err), EFFDIM_EINVAL, &err);
    CHECK(opt->t == 0 && theta[0] == 1.25 && opt->exp_avg[0] == 0.0);
    CHECK_STATUS(effdim_optim_step(opt, NULL, g, 0.1, &err), EFFDIM_EINVAL, &err);
    effdim_optim_free(opt);
    effdim_optim_free(NULL);
}

static void state_vectors_are_listed_by_checkpoint_name(void)
{
    effdim_error err;
    effdim_optim_state_vec v[EFFDIM_OPTIM_MAX_STATE];
    effdim_optim *opt = NULL;
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_SGD);
    CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_SGD, &p, 4, &opt, &err), &err);
    CHECK(effdim_optim_state(opt, v, EFFDIM_OPTIM_MAX_STATE) == 0); /* plain SGD has no state */
    effdim_optim_free(opt);
    p.momentum = 0.9;
    CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_SGD, &p, 4, &opt, &err), &err);
    CHECK(effdim_optim_state(opt, v, EFFDIM_OPTIM_MAX_STATE) == 1 && !strcmp(v[0].name, "momentum_buffer") &&
          v[0].data == opt->momentum_buffer);
    effdim_optim_free(opt);

    p = effdim_optim_default_params(EFFDIM_OPTIM_ADAMW);
    CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_ADAMW, &p, 4, &opt, &err), &err);
    CHECK(effdim_optim_state(opt, v, EFFDIM_OPTIM_MAX_STATE) == 2 && !strcmp(v[0].name, "exp_avg") &&
          !strcmp(v[1].name, "exp_avg_sq") && v[1].data == opt->exp_avg_sq);
    CHECK(effdim_optim_state_find(opt, "max_exp_avg_sq") == NULL);
    effdim_optim_free(opt);

    p = effdim_optim_default_params(EFFDIM_OPTIM_ADAM); /* amsgrad 0, but the kind forces it */
    CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_AMSGRAD, &p, 4, &opt, &err), &err);
    CHECK(opt->params.amsgrad == 1);
    CHECK(effdim_optim_state(opt, v, EFFDIM_OPTIM_MAX_STATE) == 3 && !strcmp(v[2].name, "max_exp_avg_sq"));
    CHECK(effdim_optim_state_find(opt, "max_exp_avg_sq") == opt->max_exp_avg_sq);
    CHECK(effdim_optim_state_find(opt, "momentum_buffer") == NULL);
    CHECK(effdim_optim_state(opt, v, 1) == 1); /* cap respected */
    effdim_optim_free(opt);
}

/* 5 steps, save state through the accessor, load into a fresh optimiser,
 * restore, 5 more: bitwise the same as 10 uninterrupted steps. */
static void a_restored_optimiser_continues_bitwise(void)
{
    static const effdim_optim_kind kinds[] = {EFFDIM_OPTIM_SGD, EFFDIM_OPTIM_AMSGRAD, EFFDIM_OPTIM_ADAMW};
    enum { N = 6 };
    effdim_error err;
    for (int k = 0; k < 3; ++k) {
        effdim_optim_params p = effdim_optim_default_params(kinds[k]);
        p.momentum = kinds[k] == EFFDIM_OPTIM_SGD ? 0.83 : 0.0;
        p.weight_decay = 0.0213;
        effdim_optim *a = NULL, *b = NULL;
        double ta[N], tb[N], g[N];
        for (int i = 0; i < N; ++i) ta[i] = 0.37 * i - 0.91;
        if (!CHECK_OK(effdim_optim_alloc(kinds[k], &p, N, &a, &err), &err)) return;
        if (!CHECK_OK(effdim_optim_alloc(kinds[k], &p, N, &b, &err), &err)) return;
        for (int step = 0; step < 10; ++step) {
            for (int i = 0; i < N; ++i) g[i] = sin(1.7 * ta[i] + step) * (i + 1); /* depends on theta */
            if (step == 5) {
                effdim_optim_state_vec va[EFFDIM_OPTIM_MAX_STATE], vb[EFFDIM_OPTIM_MAX_STATE];
                size_t na = effdim_optim_state(a, va, EFFDIM_OPTIM_MAX_STATE);
                CHECK(effdim_optim_state(b, vb, EFFDIM_OPTIM_MAX_STATE) == na);
                for (size_t s = 0; s < na; ++s) memcpy(vb[s].data, va[s].data, N * sizeof(double));
                effdim_optim_restore(b, a->t, 1);
                memcpy(tb, ta, sizeof ta);
            }
            CHECK_OK(effdim_optim_step(a, ta, g, 0.0317, &err), &err);
            if (step >= 5) CHECK_OK(effdim_optim_step(b, tb, g, 0.0317, &err), &err);
        }
        CHECK(memcmp(ta, tb, sizeof ta) == 0 && a->t == 10 && b->t == 10);
        /* a reset optimiser is a fresh one */
        effdim_optim_reset(a);
        CHECK(a->t == 0 && !a->momentum_ready);
        double *v = a->exp_avg ? a->exp_avg : a->momentum_buffer;
        CHECK(v[0] == 0.0 && v[N - 1] == 0.0);
        effdim_optim_free(a);
        effdim_optim_free(b);
    }
}

static void schedule_specs_parse_format_and_refuse_bad_keys(void)
{
    effdim_error err;
    effdim_schedule s, s2;
    char buf[256];
    static const char *const good[] = {"const", "constant", "sqrt", "invsqrt", "step:every=30",
                                       "step:every=30,gamma=0.5,warmup=10",
                                       "cosine:steps=1000,min=1e-5,warmup=50,start=0.01",
                                       "warmup=7", "sqrt:warmup=3"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; ++i) {
        if (!CHECK_OK(effdim_schedule_parse(good[i], 0.0713, &s, &err), &err)) continue;
        effdim_schedule_format(&s, buf, sizeof buf);
        CHECK_OK(effdim_schedule_parse(buf, 0.0713, &s2, &err), &err);
        for (size_t t = 1; t < 2000; t += 37) CHECK(effdim_schedule_lr(&s, t) == effdim_schedule_lr(&s2, t));
    }
    CHECK_OK(effdim_schedule_parse("cosine:steps=1000,min=1e-5,warmup=50,start=0.01", 0.5, &s, &err), &err);
    CHECK(s.kind == EFFDIM_SCHEDULE_COSINE && s.t_max == 1000 && s.lr_min == 1e-5 && s.warmup == 50 &&
          s.warmup_start == 0.01 && s.lr == 0.5);

    CHECK_STATUS(effdim_schedule_parse("exp", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "'exp' unknown", "cosine:steps=T");
    CHECK_STATUS(effdim_schedule_parse("step:gamma=0.5", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "every=K", "missing");
    CHECK_STATUS(effdim_schedule_parse("cosine:min=0", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "steps=T", "missing");
    CHECK_STATUS(effdim_schedule_parse("cosine:steps=10,gamma=2", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "key 'gamma' unknown", "steps, min");
    CHECK_STATUS(effdim_schedule_parse("step:every=2.5", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "every = '2.5'", "whole number");
    CHECK_STATUS(effdim_schedule_parse("step:every=abc", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "every = 'abc'", "number");
    CHECK_STATUS(effdim_schedule_parse("step:every=0", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "every = 0");
    CHECK_STATUS(effdim_schedule_parse("sqrt:warmup=5,start=0", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "warm-up start = 0", "(0, 1]");
    CHECK_STATUS(effdim_schedule_parse("const:lr", 0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "'lr' is not key=value");
    CHECK_STATUS(effdim_schedule_parse("const", -0.1, &s, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "lr = -0.1");
}

/* ---- Reddi, Kale and Kumar 2018 ---- */

/* Run `steps` steps of x <- clip(x - step(grad), -1, 1) from x = 0 with
 * gradient big if t mod period == 1 (1-based t), else small, lr alpha/sqrt(t)
 * (sqrt = 1) or alpha. Returns the final x. */
static double run_online(effdim_optim_kind kind, double beta1, double beta2, double big, double small,
                         size_t period, double alpha, int sqrt_lr, size_t steps)
{
    effdim_error err;
    effdim_optim_params p = effdim_optim_default_params(kind);
    p.beta1 = beta1;
    p.beta2 = beta2;
    effdim_optim *opt = NULL;
    if (!CHECK_OK(effdim_optim_alloc(kind, &p, 1, &opt, &err), &err)) return NAN;
    effdim_schedule s = effdim_schedule_constant(alpha);
    if (sqrt_lr) s.kind = EFFDIM_SCHEDULE_INV_SQRT;
    double x = 0.0;
    for (size_t t = 1; t <= steps; ++t) {
        double g = t % period == 1 ? big : small;
        effdim_optim_step(opt, &x, &g, effdim_schedule_lr(&s, t), &err);
        x = x > 1.0 ? 1.0 : x < -1.0 ? -1.0 : x;
    }
    effdim_optim_free(opt);
    return x;
}

static void theorem1_drives_adam_to_plus_one_and_amsgrad_to_minus_one(void)
{
    /* C = 3: f_t = 3x (t mod 3 = 1), else -x; optimum -1; beta1 = 0, beta2 = 1/(1+C^2) */
    const double C = 3.0, b2 = 1.0 / (1.0 + C * C);
    double adam = run_online(EFFDIM_OPTIM_ADAM, 0.0, b2, C, -1.0, 3, 0.1, 1, 300000);
    double ams = run_online(EFFDIM_OPTIM_AMSGRAD, 0.0, b2, C, -1.0, 3, 0.1, 1, 300000);
    check_note("Theorem 1, C = 3, alpha 0.1/sqrt(t), 3e5 steps: Adam x = %.6f, AMSGrad x = %.6f", adam, ams);
    CHECK(adam >= 0.999);
    CHECK(ams <= -0.999);
}

static void the_online_problem_separates_adam_from_amsgrad(void)
{
    /* Figure 1's online problem, alpha = 0.5/sqrt(t), beta (0.9, 0.99), 2e5 steps */
    double adam = run_online(EFFDIM_OPTIM_ADAM, 0.9, 0.99, 1010.0, -10.0, 101, 0.5, 1, 200000);
    double ams = run_online(EFFDIM_OPTIM_AMSGRAD, 0.9, 0.99, 1010.0, -10.0, 101, 0.5, 1, 200000);
    check_note("online, alpha 0.5/sqrt(t), 2e5 steps: Adam x = %.4f, AMSGrad x = %.4f", adam, ams);
    CHECK(adam >= 0.98);
    CHECK(ams <= -0.9);
}

CHECK_TESTS({"every optimiser matches torch.optim for ten steps", every_optimiser_matches_torch_optim_for_ten_steps},
            {"schedules match torch lr_schedulers", schedules_match_torch_lr_schedulers},
            {"schedules follow their closed forms", schedules_follow_their_closed_forms},
            {"one Adam step matches the hand-computed update", one_adam_step_matches_the_hand_computed_update},
            {"AMSGrad's max propagates NaN like torch.maximum", amsgrad_max_propagates_nan_like_torch_maximum},
            {"defaults are PyTorch's", defaults_are_pytorchs},
            {"optimiser names parse both ways", names_parse_both_ways},
            {"invalid hyperparameters are refused by name", invalid_hyperparameters_are_refused_by_name},
            {"state vectors are listed by checkpoint name", state_vectors_are_listed_by_checkpoint_name},
            {"a restored optimiser continues bitwise", a_restored_optimiser_continues_bitwise},
            {"schedule specs parse, format and refuse bad keys", schedule_specs_parse_format_and_refuse_bad_keys},
            {"Theorem 1 drives Adam to +1 and AMSGrad to -1", theorem1_drives_adam_to_plus_one_and_amsgrad_to_minus_one},
            {"the online problem separates Adam from AMSGrad", the_online_problem_separates_adam_from_amsgrad})
