/* tests/test_ivon.c: the IVON optimiser (effdim/optim.h) and training with it.
 *
 * Oracles (../shared/SEEDS.md section 2):
 * - two steps against values computed by hand from the update of SEEDS.md
 *   2.2 as written there (two samples then one; price and gradsq; with and
 *   without element-wise clipping), to 1e-14;
 * - the positivity bound h_new + delta >= (h + delta)/2 for any estimate
 *   hhat, however negative (SEEDS.md 2.3), over 4000 heavy-tailed estimates;
 * - the exact-posterior fixed point of SEEDS.md 2.7: on the 1-D quadratic
 *   mean loss a/2 (theta - c)^2 the time averages of m, h and sigma over the
 *   second half of 2e5 steps fall in the simulated ranges given there, for
 *   three seeds and for 4 samples per step;
 * - linear-Gaussian regression: the stationary m is the exact posterior mean
 *   (A + delta I)^-1 b and h the diagonal of A (the mean-field optimum's
 *   precision is the diagonal of the exact precision N (A + delta I));
 * - training: the IVON state (hess, momentum, every hyperparameter) survives
 *   a checkpoint round trip, 2 + 2 epochs equal 4 bitwise (the noise of step
 *   t is a function of (seed, t)), and effdim_diag_ivon reads its hess;
 * - every invalid setting is refused by name.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/diag.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "effdim/train.h"
#include "normal.h"
#include "testnet.h"

static effdim_optim_params ivon_params(double lr, double ess)
{
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_IVON);
    p.lr = lr;
    p.ess = ess;
    return p;
}

/* ---- one step by hand ---- */

typedef struct hand_step {
    size_t S;
    double eps[2][2], grads[2][2]; /* (S, 2) */
    double theta_first[2], theta_last[2]; /* the first and last sample's weights */
    double g[2], h[2], m[2];       /* after the step */
} hand_step;

static void check_hand_steps(effdim_ivon_hess approx, double clip, const hand_step *steps)
{
    effdim_error err;
    effdim_optim_params p = ivon_params(0.3, 50.0);
    p.hess_init = 0.8;
    p.weight_decay = 0.05;
    p.beta2 = 0.99;
    p.hess_approx = approx;
    p.clip_radius = clip;
    effdim_optim *opt = NULL;
    if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, 2, &opt, &err), &err)) return;
    double m[2] = {0.7, -1.3};
    for (int k = 0; k < 2; ++k) {
        const hand_step *s = &steps[k];
        for (size_t j = 0; j < s->S; ++j) {
            double th[2];
            CHECK_OK(effdim_optim_ivon_sample(opt, m, s->eps[j], th, &err), &err);
            if (j == 0) CHECK_VEC_CLOSE(th, s->theta_first, 2, 1e-15);
            if (j + 1 == s->S) CHECK_VEC_CLOSE(th, s->theta_last, 2, 1e-15);
            CHECK_OK(effdim_optim_ivon_accumulate(opt, s->grads[j], &err), &err);
        }
        CHECK_OK(effdim_optim_step(opt, m, NULL, 0.3, &err), &err);
        CHECK(opt->t == (size_t)k + 1 && opt->n_samples == 0);
        CHECK_VEC_CLOSE(opt->momentum, s->g, 2, 1e-14);
        CHECK_VEC_CLOSE(opt->hess, s->h, 2, 1e-14);
        CHECK_VEC_CLOSE(m, s->m, 2, 1e-14);
    }
    effdim_optim_free(opt);
}

/* ess 50, hess_init 0.8, delta 0.05, beta1 0.9, beta2 0.99, lr 0.3 (rescaled:
 * 0.255), m0 = (0.7, -1.3); step 1 with two samples, step 2 with one. The
 * numbers: SEEDS.md 2.2 evaluated in double precision, operation by
 * operation as written there (tests/test_ivon.c's comment block below). */
static void test_two_price_steps_match_the_hand_computed_update(void)
{
    const hand_step steps[2] = {
        {2, {{0.5, -1.2}, {-0.3, 0.8}}, {{1.1, -0.4}, {0.9, 0.2}},
         {0.77669649888473702, -1.4840715973233689}, {0.65398210066915774, -1.1772856017844209},
         {0.099999999999999978, -0.0099999999999999985},
         {0.80112763034735635, 0.81295875171832721}, {0.38991137099815598, -1.2512433243000085}},
        {1, {{1.7, 0.4}}, {{-2.3, 0.6}},
         {0.65050666851706873, -1.1903485576754682}, {0.65050666851706873, -1.1903485576754682},
         {-0.13999999999999996, 0.050999999999999983},
         {0.57870532659549467, 0.82062784372658604}, {0.68086383970464526, -1.3115377617160404}},
    };
    check_hand_steps(EFFDIM_IVON_PRICE, INFINITY, steps);
}

static void test_two_gradsq_steps_with_clipping_match_the_hand_computed_update(void)
{
    /* clip radius 0.4: step 1's first coordinate is clipped (0.7 - 0.255 * 0.4) */
    const hand_step steps[2] = {
        {2, {{0.5, -1.2}, {-0.3, 0.8}}, {{1.1, -0.4}, {0.9, 0.2}},
         {0.77669649888473702, -1.4840715973233689}, {0.65398210066915774, -1.1772856017844209},
         {0.099999999999999978, -0.0099999999999999985},
         {1.4422994117647068, 0.84303764705882356}, {0.59799999999999998, -1.2528855248840047}},
        {1, {{1.7, 0.4}}, {{-2.3, 0.6}},
         {0.79480491274520648, -1.1930250572267551}, {0.79480491274520648, -1.1930250572267551},
         {-0.13999999999999996, 0.050999999999999983},
         {6.3914243341452197, 1.0310881747331899}, {0.62598608312241044, -1.3014228035308013}},
    };
    check_hand_steps(EFFDIM_IVON_GRADSQ, 0.4, steps);
}
/* The reference values above come from this transcription of SEEDS.md 2.2
 * (Python, double precision):
 *   sig = 1/sqrt(ess*(h+wd)); n_s = sig*eps_s; theta_s = m + n_s
 *   gbar = mean(g_s); price: hhat = ess*(h+wd)*mean(n_s*g_s); gradsq: ess*mean(g_s^2)
 *   g = b1*g + (1-b1)*gbar
 *   h = b2*h + (1-b2)*hhat + 0.5*(1-b2)**2*(h-hhat)**2/(h+wd)
 *   m = m - lr*(h0+wd)*clip((g/(1-b1**t) + wd*m)/(h+wd), -r, r)               */

/* ---- positivity ---- */

static void test_h_plus_delta_never_falls_below_half_for_any_estimate(void)
{
    effdim_error err;
    enum { N = 8, STEPS = 500 };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 77);
    const double b2s[] = {0.0, 0.3, 0.99999};
    double worst = INFINITY;
    for (int b = 0; b < 3; ++b) {
        effdim_optim_params p = ivon_params(1e-3, 1000.0);
        p.beta2 = b2s[b];
        p.weight_decay = 0.02;
        effdim_optim *opt = NULL;
        if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, N, &opt, &err), &err)) break;
        double m[N] = {0}, eps[N], th[N], g[N], sigma[N], before[N];
        for (int t = 0; t < STEPS; ++t) {
            /* eps = 1, so n = sigma and hhat = ess (h + wd) sigma g: pick g for a
             * target hhat of either sign up to 1e12 (Cauchy tails) */
            for (size_t i = 0; i < N; ++i) eps[i] = 1.0;
            CHECK_OK(effdim_optim_ivon_sigma(opt, sigma, &err), &err);
            for (size_t i = 0; i < N; ++i) {
                double hhat = gsl_ran_cauchy(rng, 1.0 + 1e3 * (double)(i % 4));
                if (fabs(hhat) > 1e12) hhat = copysign(1e12, hhat);
                before[i] = opt->hess[i] + p.weight_decay;
                g[i] = hhat / (p.ess * before[i] * sigma[i]);
            }
            CHECK_OK(effdim_optim_ivon_sample(opt, m, eps, th, &err), &err);
            CHECK_OK(effdim_optim_ivon_accumulate(opt, g, &err), &err);
            CHECK_OK(effdim_optim_step(opt, m, NULL, 1e-3, &err), &err);
            for (size_t i = 0; i < N; ++i) {
                double ratio = (opt->hess[i] + p.weight_decay) / before[i];
                if (ratio < worst) worst = ratio;
            }
        }
        effdim_optim_free(opt);
    }
    gsl_rng_free(rng);
    check_note("smallest (h_new + delta) / (h + delta) = %.17g", worst);
    CHECK(worst >= 0.5);
}

/* ---- the exact posterior on a 1-D quadratic (SEEDS.md 2.7) ---- */

typedef struct averages {
    double m, h, sigma;
} averages;

/* loss a/2 (theta - c)^2 with a = 2, c = 1: gradient a (theta - c) */
static averages quadratic_run(unsigned long seed, size_t S, size_t steps)
{
    effdim_error err;
    averages avg = {NAN, NAN, NAN};
    effdim_optim_params p = ivon_params(0.1, 100.0);
    p.weight_decay = 0.1;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.hess_init = 1.0;
    p.mc_samples = S;
    effdim_optim *opt = NULL;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng || !CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, 1, &opt, &err), &err)) {
        if (rng) gsl_rng_free(rng);
        return avg;
    }
    gsl_rng_set(rng, seed);
    const double a = 2.0, c = 1.0;
    double m = 0.0, sm = 0, sh = 0, ss = 0;
    size_t count = 0;
    for (size_t t = 0; t < steps; ++t) {
        for (size_t s = 0; s < S; ++s) {
            double eps = gsl_ran_gaussian_ziggurat(rng, 1.0), th, g;
            effdim_optim_ivon_sample(opt, &m, &eps, &th, &err);
            g = a * (th - c);
            effdim_optim_ivon_accumulate(opt, &g, &err);
        }
        if (!CHECK_OK(effdim_optim_step(opt, &m, NULL, p.lr, &err), &err)) break;
        if (t >= steps / 2) {
            sm += m;
            sh += opt->hess[0];
            ss += 1.0 / sqrt(p.ess * (opt->hess[0] + p.weight_decay));
            ++count;
        }
    }
    avg.m = sm / (double)count;
    avg.h = sh / (double)count;
    avg.sigma = ss / (double)count;
    effdim_optim_free(opt);
    gsl_rng_free(rng);
    return avg;
}

/* The mean over `seeds` runs of 2e5 steps with S samples each; every run
 * within 4 of its own standard deviations of the exact values (measured over
 * 30 seeds: 0.00017 for m, 0.011 for h, 0.0004 for sigma at S = 1). */
static averages quadratic_mean(size_t S, unsigned long seeds)
{
    averages mean = {0, 0, 0};
    const double m_exact = 2.0 / 2.1, s_exact = 1.0 / sqrt(210.0);
    for (unsigned long k = 1; k <= seeds; ++k) {
        averages r = quadratic_run(k, S, 200000);
        CHECK_NEAR(r.m, m_exact, 4 * 0.00017);
        CHECK_NEAR(r.h, 2.0, 4 * 0.011);
        CHECK_NEAR(r.sigma, s_exact, 4 * 0.0004);
        mean.m += r.m / (double)seeds;
        mean.h += r.h / (double)seeds;
        mean.sigma += r.sigma / (double)seeds;
    }
    check_note("%zu sample(s), mean of %lu seeds: m %.6f  h %.5f  sigma %.6f", S, seeds, mean.m,
               mean.h, mean.sigma);
    return mean;
}

static void test_on_a_quadratic_m_h_and_sigma_reach_the_exact_posterior(void)
{
    /* SEEDS.md 2.7: a = 2, c = 1, delta = 0.1, ess 100, lr 0.1 (rescaled), beta1 0.9,
     * beta2 0.999, h0 1; exact m = ac/(a + delta) = 0.95238, h = a = 2,
     * sigma = 1/sqrt(ess (a + delta)) = 0.06901; simulated (three seeds, time average
     * over the second half of 2e5 steps): m 0.9523-0.9525, h 1.995-2.010, sigma
     * 0.0688-0.0691. Those ranges are narrower than one run's own spread (the
     * time average of m has sd ~ sigma a/(a + delta)/sqrt(1e5) = 0.0002), so the
     * check is on the mean of 30 seeds, against the ranges at the 4 decimals they
     * are given to. IVON's m sits slightly below the exact mean at S = 1 (the
     * estimate hhat and the gradient noise are correlated: -8e-5 over 30 seeds) and
     * closer at S = 4; SEEDS.md's h range for S = 4 (2.003-2.006) is also three
     * seeds, inside one seed's spread (0.005), so S = 4 is held to the S = 1 ranges. */
    averages one = quadratic_mean(1, 30);
    CHECK(one.m >= 0.95225 && one.m < 0.95255);
    CHECK(one.h >= 1.9945 && one.h < 2.0105);
    CHECK(one.sigma >= 0.06875 && one.sigma < 0.06915);
    averages four = quadratic_mean(4, 10);
    CHECK(four.m >= 0.95225 && four.m < 0.95255);
    CHECK(four.h >= 1.9945 && four.h < 2.0105);
    CHECK(four.sigma >= 0.06875 && four.sigma < 0.06915);
}

/* ---- linear-Gaussian regression ---- */

static void test_on_linear_gaussian_regression_m_and_h_match_the_exact_posterior(void)
{
    /* mean loss (1/2N) |y - X theta|^2 = (1/2) theta' A theta - b' theta + const,
     * A = X'X/N, b = X'y/N; gradient A theta - b (full batch). Posterior with
     * prior precision N delta: precision N (A + delta I), mean (A + delta I)^-1 b.
     * IVON with ess = N: m -> that mean, ess (h + delta) -> N (A_ii + delta). */
    effdim_error err;
    enum { D = 3 };
    const double A[D][D] = {{2.3, 0.6, -0.4}, {0.6, 1.1, 0.25}, {-0.4, 0.25, 0.7}};
    const double b[D] = {0.9, -0.35, 0.5};
    const double delta = 0.05;
    /* exact mean: solve (A + delta I) mu = b by Gaussian elimination */
    double M[D][D + 1];
    for (int i = 0; i < D; ++i) {
        for (int j = 0; j < D; ++j) M[i][j] = A[i][j] + (i == j ? delta : 0.0);
        M[i][D] = b[i];
    }
    for (int k = 0; k < D; ++k)
        for (int i = k + 1; i < D; ++i) {
            double f = M[i][k] / M[k][k];
            for (int j = k; j <= D; ++j) M[i][j] -= f * M[k][j];
        }
    double mu[D];
    for (int i = D - 1; i >= 0; --i) {
        double s = M[i][D];
        for (int j = i + 1; j < D; ++j) s -= M[i][j] * mu[j];
        mu[i] = s / M[i][i];
    }
    effdim_optim_params p = ivon_params(0.05, 400.0);
    p.weight_decay = delta;
    p.beta2 = 0.999;
    p.hess_init = 1.0;
    effdim_optim *opt = NULL;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!CHECK(rng) || !CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, D, &opt, &err), &err))
        goto done;
    gsl_rng_set(rng, 8);
    double m[D] = {0}, sm[D] = {0}, sh[D] = {0};
    const size_t steps = 200000;
    for (size_t t = 0; t < steps; ++t) {
        double eps[D], th[D], g[D];
        for (int i = 0; i < D; ++i) eps[i] = gsl_ran_gaussian_ziggurat(rng, 1.0);
        effdim_optim_ivon_sample(opt, m, eps, th, &err);
        for (int i = 0; i < D; ++i) {
            g[i] = -b[i];
            for (int j = 0; j < D; ++j) g[i] += A[i][j] * th[j];
        }
        effdim_optim_ivon_accumulate(opt, g, &err);
        effdim_optim_step(opt, m, NULL, p.lr, &err);
        if (t >= steps / 2)
            for (int i = 0; i < D; ++i) {
                sm[i] += m[i];
                sh[i] += opt->hess[i];
            }
    }
    for (int i = 0; i < D; ++i) {
        double am = sm[i] / (double)(steps / 2), ah = sh[i] / (double)(steps / 2);
        check_note("coordinate %d: m %.5f (exact %.5f), h %.4f (exact A_ii %.4f)", i, am, mu[i], ah,
                   A[i][i]);
        CHECK_NEAR(am, mu[i], 2e-3);
        CHECK_CLOSE(ah, A[i][i], 0.01);
    }
done:
    effdim_optim_free(opt);
    if (rng) gsl_rng_free(rng);
}

/* ---- refusals ---- */

static void check_refused(effdim_optim_params p, const char *field)
{
    effdim_error err;
    effdim_optim *opt = NULL;
    CHECK_STATUS(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, 3, &opt, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "ivon", field);
    CHECK(!opt);
}

/* The last sample's gradient handed to the step equals accumulating it and
 * stepping on the means, bitwise (the same operations in one pass), for one
 * and three samples, both estimators, on 37 weights (vector loop and tail),
 * with the normals of lib/normal.c drawn by effdim_optim_ivon_sample_normal;
 * a step with a gradient but no sample drawn for it is refused. */
static void test_the_step_folds_the_last_gradient_in_as_accumulate_would(void)
{
    enum { N = 37, STEPS = 5 };
    effdim_error err;
    for (int approx = 0; approx < 2; ++approx)
        for (size_t S = 1; S <= 3; S += 2) {
            effdim_optim_params p = ivon_params(0.2, 300.0);
            p.beta2 = 0.9;
            p.hess_approx = (effdim_ivon_hess)approx;
            p.mc_samples = S;
            p.clip_radius = 0.05;
            effdim_optim *a = NULL, *b = NULL;
            if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, N, &a, &err), &err) ||
                !CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, N, &b, &err), &err)) {
                effdim_optim_free(a);
                return;
            }
            double ma[N], mb[N], tha[N], thb[N], g[N];
            for (int i = 0; i < N; ++i) ma[i] = mb[i] = 0.1 * (i - 18);
            for (int t = 0; t < STEPS; ++t) {
                effdim_normal_stream ra = {3, (uint64_t)t, 0}, rb = ra;
                for (size_t s = 0; s < S; ++s) {
                    CHECK_OK(effdim_optim_ivon_sample_normal(a, ma, &ra, tha, &err), &err);
                    CHECK_OK(effdim_optim_ivon_sample_normal(b, mb, &rb, thb, &err), &err);
                    for (int i = 0; i < N; ++i) g[i] = 3.0 * tha[i] * tha[i] - 0.5 + 0.01 * i;
                    CHECK_OK(effdim_optim_ivon_accumulate(a, g, &err), &err);
                    if (s + 1 < S) CHECK_OK(effdim_optim_ivon_accumulate(b, g, &err), &err);
                }
                CHECK_OK(effdim_optim_step(a, ma, NULL, 0.2, &err), &err);
                CHECK_OK(effdim_optim_step(b, mb, g, 0.2, &err), &err);
            }
            CHECK(!memcmp(ma, mb, sizeof ma) && !memcmp(a->hess, b->hess, sizeof ma) &&
                  !memcmp(a->momentum, b->momentum, sizeof ma));
            /* the step that also draws the next sample: the same step, then the same
             * sample as effdim_optim_ivon_sample_normal draws after it; twice, the
             * second time on the sample the first drew (its perturbation theta_s - m,
             * with no noise vector stored) */
            effdim_normal_stream ra = {3, 99, 0}, rb = ra;
            CHECK_OK(effdim_optim_ivon_sample_normal(a, ma, &ra, tha, &err), &err);
            CHECK_OK(effdim_optim_ivon_sample_normal(b, mb, &rb, thb, &err), &err);
            for (int round = 0; round < 2; ++round) {
                for (int i = 0; i < N; ++i) g[i] = 2.0 * tha[i] - 0.3;
                ra = rb = (effdim_normal_stream){4, 100 + (uint64_t)round, 0};
                CHECK_OK(effdim_optim_step(a, ma, g, 0.2, &err), &err);
                CHECK_OK(effdim_optim_ivon_sample_normal(a, ma, &ra, tha, &err), &err);
                CHECK_OK(effdim_optim_ivon_step_and_sample(b, mb, g, 0.2, &rb, thb, &err), &err);
                CHECK(!memcmp(ma, mb, sizeof ma) && !memcmp(a->hess, b->hess, sizeof ma) &&
                      !memcmp(a->momentum, b->momentum, sizeof ma) &&
                      !memcmp(tha, thb, sizeof ma) && a->t == b->t && b->sampled == 2 &&
                      ra.segment == 1 && rb.segment == 1);
            }
            CHECK(memcmp(a->hess, (double[N]){0}, sizeof ma) != 0);
            /* the sample drawn inside the step goes to the next such step only */
            CHECK_STATUS(effdim_optim_step(b, mb, g, 0.2, &err), EFFDIM_EINVAL, &err);
            CHECK_MSG(&err, "drawn by effdim_optim_ivon_step_and_sample");
            CHECK_STATUS(effdim_optim_ivon_accumulate(b, g, &err), EFFDIM_EINVAL, &err);
            CHECK_MSG(&err, "drawn by the step");
            /* no sample drawn since the step: a gradient cannot be folded in */
            CHECK_OK(effdim_optim_step(a, ma, g, 0.2, &err), &err);
            CHECK_STATUS(effdim_optim_step(a, ma, g, 0.2, &err), EFFDIM_EINVAL, &err);
            CHECK_MSG(&err, "no weight sample drawn");
            effdim_optim_free(a);
            effdim_optim_free(b);
        }
}

/* The normals of a sample come by segments of EFFDIM_NORMAL_SEGMENT weights,
 * segment k from effdim_normal_seed_segment(seed, stream, k) filled in chunks
 * of 2048 (lib/normal.h); segment 0 is effdim_normal_seed's generator. And
 * IVON's update by its AVX-512, AVX2 and scalar loops (where the CPU has
 * them) gives bitwise the same m, h, g and samples over 3 steps, on 3
 * segments and a tail (P = 3 mod 8, so every loop has a tail). */
static void test_samples_come_by_segments_and_the_update_loops_agree_bitwise(void)
{
    enum { P = 3 * EFFDIM_NORMAL_SEGMENT + 1003, STEPS = 3 };
    effdim_error err;
    float *eps = malloc(P * sizeof *eps);
    double *want = malloc(P * sizeof *want);
    double *m = malloc(P * sizeof *m), *th = malloc(P * sizeof *th);
    double *ref[3] = {NULL}, *g = malloc(P * sizeof *g);
    for (int k = 0; k < 3; ++k) ref[k] = malloc(4 * (size_t)P * sizeof(double));
    if (!eps || !want || !m || !th || !g || !ref[0] || !ref[1] || !ref[2]) {
        CHECK(0);
        goto done;
    }
    {
        effdim_normal_rng r0, r1;
        effdim_normal_seed(&r0, 5, 7);
        effdim_normal_seed_segment(&r1, 5, 7, 0);
        CHECK(!memcmp(&r0, &r1, sizeof r0));
        effdim_normal_seed_segment(&r1, 5, 7, 1);
        CHECK(memcmp(&r0, &r1, sizeof r0) != 0);
    }
    /* sample_normal against sample with eps drawn segment by segment; the
     * second sample of the stream starts at segment 4 */
    effdim_optim_params p = ivon_params(0.1, 1000.0);
    effdim_optim *opt = NULL;
    if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, P, &opt, &err), &err)) goto done;
    for (size_t i = 0; i < P; ++i) m[i] = 1e-3 * (double)(i % 101) - 0.05;
    for (uint64_t first = 0; first <= 4; first += 4) {
        for (size_t s0 = 0; s0 < P; s0 += EFFDIM_NORMAL_SEGMENT) {
            effdim_normal_rng r;
            effdim_normal_seed_segment(&r, 11, 12, first + s0 / EFFDIM_NORMAL_SEGMENT);
            const size_t s1 = P - s0 < EFFDIM_NORMAL_SEGMENT ? P : s0 + EFFDIM_NORMAL_SEGMENT;
            for (size_t i = s0; i < s1; i += 2048)
                effdim_normal_fill(&r, eps + i, s1 - i < 2048 ? s1 - i : 2048);
        }
        /* the single-precision noise term of lib/optim.c's stream samples */
        double *noise = malloc(P * sizeof *noise);
        for (size_t i = 0; i < P; ++i) {
            const float sg = sqrtf((float)((1.0 / (opt->hess[i] + p.weight_decay)) * (1.0 / p.ess)));
            want[i] = m[i] + (double)(sg * eps[i]);
            if (noise) noise[i] = want[i] - m[i];
        }
        effdim_normal_stream ns = {11, 12, first};
        CHECK_OK(effdim_optim_ivon_sample_normal(opt, m, &ns, th, &err), &err);
        CHECK(!memcmp(want, th, P * sizeof *th) && ns.segment == first + 4);
        CHECK(noise && !memcmp(noise, opt->noise, P * sizeof *noise));
        free(noise);
    }
    effdim_optim_free(opt);
    /* IVON's steps by each loop: 0 the default (AVX-512 where the CPU has
     * it), 1 AVX2 at most, 2 scalar */
    for (int L = 0; L < 3; ++L) {
        effdim_optim_ivon_loops(2 - L);
        effdim_optim_params q = ivon_params(0.1, 1000.0);
        q.weight_decay = 1e-3;
        q.clip_radius = 0.5;
        effdim_optim *o = NULL;
        if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &q, P, &o, &err), &err)) break;
        for (size_t i = 0; i < P; ++i) m[i] = 1e-3 * (double)(i % 101) - 0.05;
        effdim_normal_stream ns = {2, 1, 0};
        CHECK_OK(effdim_optim_ivon_sample_normal(o, m, &ns, th, &err), &err);
        for (int t = 0; t < STEPS; ++t) {
            for (size_t i = 0; i < P; ++i) g[i] = 3.0 * th[i] - 0.01 * (double)(i % 7);
            ns = (effdim_normal_stream){2, (uint64_t)t + 2, 0};
            if (t == 0) { /* a plain step on the stored noise, then a sample */
                CHECK_OK(effdim_optim_step(o, m, g, 0.1, &err), &err);
                CHECK_OK(effdim_optim_ivon_sample_normal(o, m, &ns, th, &err), &err);
            } else
                CHECK_OK(effdim_optim_ivon_step_and_sample(o, m, g, 0.1, &ns, th, &err), &err);
        }
        double *r = ref[L];
        memcpy(r, m, P * sizeof *m);
        memcpy(r + P, th, P * sizeof *m);
        memcpy(r + 2 * (size_t)P, o->hess, P * sizeof *m);
        memcpy(r + 3 * (size_t)P, o->momentum, P * sizeof *m);
        effdim_optim_free(o);
    }
    effdim_optim_ivon_loops(2);
    const size_t bytes = 4 * (size_t)P * sizeof(double);
    check_note("against the default loop: AVX2 %s, scalar %s",
               memcmp(ref[0], ref[1], bytes) ? "differ" : "bitwise",
               memcmp(ref[0], ref[2], bytes) ? "differ" : "bitwise");
    CHECK(!memcmp(ref[0], ref[1], bytes) && !memcmp(ref[0], ref[2], bytes));
done:
    free(eps);
    free(want);
    free(m);
    free(th);
    free(g);
    for (int k = 0; k < 3; ++k) free(ref[k]);
}

static void test_ivon_refuses_missing_and_out_of_range_settings(void)
{
    effdim_error err;
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_IVON);
    CHECK(isnan(p.lr) && isnan(p.ess) && p.hess_init == 1.0 && p.beta1 == 0.9 &&
          p.beta2 == 0.99999 && p.weight_decay == 1e-4 && p.mc_samples == 1 &&
          p.hess_approx == EFFDIM_IVON_PRICE && isinf(p.clip_radius) && p.debias && p.rescale_lr);
    p.ess = 10;
    check_refused(p, "lr is required");
    p = ivon_params(0.1, NAN);
    check_refused(p, "ess is required");
    p = ivon_params(0.1, 0.0);
    check_refused(p, "ess = 0");
    p = ivon_params(-0.1, 10);
    check_refused(p, "lr = -0.1");
    static const struct {
        const char *field, *msg;
        double value;
    } bad[] = {{"hess_init", "hess_init = 0", 0},     {"beta2", "beta2 = 1.5", 1.5},
               {"beta1", "beta1 = -0.1", -0.1},       {"clip_radius", "clip_radius = 0", 0},
               {"mc_samples", "mc_samples = 0", 0},   {"weight_decay", "weight_decay = -1", -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        p = ivon_params(0.1, 10);
        const char *f = bad[i].field;
        double v = bad[i].value;
        if (!strcmp(f, "hess_init")) p.hess_init = v;
        if (!strcmp(f, "beta2")) p.beta2 = v;
        if (!strcmp(f, "beta1")) p.beta1 = v;
        if (!strcmp(f, "clip_radius")) p.clip_radius = v;
        if (!strcmp(f, "mc_samples")) p.mc_samples = (size_t)v;
        if (!strcmp(f, "weight_decay")) p.weight_decay = v;
        check_refused(p, bad[i].msg);
    }
    /* beta1 = beta2 = 1 are allowed (h frozen at h0, as SEEDS.md 2.6 says) */
    p = ivon_params(0.1, 10);
    p.beta2 = 1.0;
    effdim_optim *opt = NULL;
    CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, 3, &opt, &err), &err);
    double m[3] = {0.1, 0.2, 0.3}, e[3] = {1, 1, 1}, g[3] = {5, 5, 5};
    CHECK_STATUS(effdim_optim_step(opt, m, NULL, 0.1, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "ivon", "without a sampled gradient");
    CHECK_STATUS(effdim_optim_ivon_accumulate(opt, g, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "no weight sample");
    CHECK_OK(effdim_optim_ivon_sample(opt, m, e, e, &err), &err);
    CHECK_OK(effdim_optim_ivon_accumulate(opt, g, &err), &err);
    CHECK_OK(effdim_optim_step(opt, m, NULL, 0.1, &err), &err);
    CHECK(opt->hess[0] == 1.0 && opt->hess[2] == 1.0); /* beta2 = 1 freezes h */
    CHECK(effdim_optim_state(opt, (effdim_optim_state_vec[EFFDIM_OPTIM_MAX_STATE]){{0}},
                             EFFDIM_OPTIM_MAX_STATE) == 2);
    CHECK(effdim_optim_state_find(opt, "hess") == opt->hess &&
          effdim_optim_state_find(opt, "momentum") == opt->momentum);
    effdim_optim_reset(opt);
    CHECK(opt->t == 0 && opt->hess[1] == 1.0 && opt->momentum[1] == 0.0);
    effdim_optim_free(opt);
    effdim_ivon_hess h;
    CHECK_OK(effdim_ivon_hess_parse("GradSq", &h, &err), &err);
    CHECK(h == EFFDIM_IVON_GRADSQ && !strcmp(effdim_ivon_hess_name(h), "gradsq"));
    CHECK_STATUS(effdim_ivon_hess_parse("fisher", &h, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "fisher", "price or gradsq");
    effdim_optim_kind k;
    CHECK_OK(effdim_optim_kind_parse("IVON", &k, &err), &err);
    CHECK(k == EFFDIM_OPTIM_IVON && !strcmp(effdim_optim_kind_name(k), "ivon"));
}

/* ---- training with IVON, checkpoints ---- */

typedef struct net {
    effdim_dataset *train;
    effdim_checkpoint *c;
} net;

static int net_make(net *f, effdim_reduction red)
{
    effdim_error err;
    memset(f, 0, sizeof *f);
    f->train = testnet_data(37, 3, 3, EFFDIM_TARGET_LABELS, 5);
    const size_t sizes[] = {3, 6, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    return f->train &&
           CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, red, &err), &err) &&
           CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &f->c, &err), &err) &&
           CHECK_OK(effdim_mlp_init_params(&m, f->c->theta, EFFDIM_INIT_TORCH, 4, &err), &err);
}

static void net_free(net *f)
{
    effdim_dataset_free(f->train);
    effdim_checkpoint_free(f->c);
}

static effdim_train_params ivon_train_params(size_t epochs)
{
    effdim_train_params p = effdim_train_default_params();
    p.optimizer = EFFDIM_OPTIM_IVON;
    p.optim = ivon_params(0.2, 37.0);
    p.optim.beta2 = 0.999;
    p.optim.hess_init = 0.5;
    p.optim.weight_decay = 2e-3;
    p.optim.mc_samples = 3;
    p.optim.hess_approx = EFFDIM_IVON_GRADSQ;
    p.optim.clip_radius = 0.7;
    p.optim.debias = 0;
    p.batch = 10;
    p.seed = 13;
    p.epochs = epochs;
    return p;
}

static void test_ivon_state_and_settings_survive_a_checkpoint_round_trip(void)
{
    effdim_error err;
    net f;
    effdim_checkpoint *back = NULL;
    if (!net_make(&f, EFFDIM_REDUCTION_MEAN)) goto done;
    effdim_train_params p = ivon_train_params(2);
    effdim_train_result r;
    CHECK_OK(effdim_train_run(&p, f.c, f.train, NULL, &r, &err), &err);
    CHECK(r.steps == 8 && r.step == 8);
    const char *path = check_tmpfile("ivon.h5");
    if (!CHECK_OK(effdim_checkpoint_save(f.c, path, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_load(path, &back, &err), &err))
        goto done;
    size_t P = f.c->mlp.n_params;
    const double *h = effdim_checkpoint_state(back, "hess"), *g = effdim_checkpoint_state(back, "momentum");
    CHECK(h && g && !memcmp(h, effdim_checkpoint_state(f.c, "hess"), P * sizeof *h) &&
          !memcmp(g, effdim_checkpoint_state(f.c, "momentum"), P * sizeof *g));
    CHECK(!strcmp(back->optimizer->name, "ivon") && back->optimizer->step == 8);
    const char *names[] = {"lr", "ess", "beta1", "beta2", "hess_init", "weight_decay",
                           "mc_samples", "clip_radius", "debias", "rescale_lr"};
    const double want[] = {0.2, 37.0, 0.9, 0.999, 0.5, 2e-3, 3, 0.7, 0, 1};
    for (int i = 0; i < 10; ++i) {
        double v = NAN;
        CHECK(effdim_checkpoint_hparam(back, names[i], &v) && v == want[i]);
    }
    const char *approx = effdim_checkpoint_optimizer_string(back, "hess_approx");
    CHECK(approx && !strcmp(approx, "gradsq"));
    effdim_train_params q = effdim_train_default_params();
    CHECK_OK(effdim_train_params_from_checkpoint(back, path, &q, &err), &err);
    CHECK(q.optimizer == EFFDIM_OPTIM_IVON && q.optim.ess == 37.0 && q.optim.mc_samples == 3 &&
          q.optim.hess_approx == EFFDIM_IVON_GRADSQ && q.optim.clip_radius == 0.7 &&
          !q.optim.debias && q.optim.rescale_lr && q.optim.hess_init == 0.5 && q.batch == 10 &&
          q.seed == 13);
    /* effdim diag --method ivon reads this hess (x n for a sum-reduction model) */
    double *d = malloc(P * sizeof *d);
    if (CHECK(d)) {
        CHECK_OK(effdim_diag_ivon(back, path, 37, d, &err), &err);
        CHECK(!memcmp(d, h, P * sizeof *d));
    }
    free(d);
    /* a bad recorded estimator or sample count is refused naming the field */
    CHECK_OK(effdim_checkpoint_set_optimizer_string(back, "hess_approx", "fisher", &err), &err);
    CHECK_STATUS(effdim_train_params_from_checkpoint(back, path, &q, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, path, "hess_approx", "fisher", "price or gradsq");
    CHECK_OK(effdim_checkpoint_set_optimizer_string(back, "hess_approx", "price", &err), &err);
    CHECK_OK(effdim_checkpoint_set_hparam(back, "mc_samples", 1e300, &err), &err);
    CHECK_STATUS(effdim_train_params_from_checkpoint(back, path, &q, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, path, "mc_samples", "whole number");
done:
    effdim_checkpoint_free(back);
    net_free(&f);
}

static effdim_checkpoint *ivon_epochs(size_t epochs, effdim_reduction red)
{
    effdim_error err;
    net f;
    effdim_checkpoint *out = NULL;
    if (net_make(&f, red)) {
        effdim_train_params p = ivon_train_params(epochs);
        if (CHECK_OK(effdim_train_run(&p, f.c, f.train, NULL, NULL, &err), &err)) {
            out = f.c;
            f.c = NULL;
        }
    }
    net_free(&f);
    return out;
}

static void test_ivon_training_resumed_after_two_epochs_equals_four_bitwise(void)
{
    effdim_error err;
    net f;
    effdim_checkpoint *four = ivon_epochs(4, EFFDIM_REDUCTION_MEAN), *two = ivon_epochs(2, EFFDIM_REDUCTION_MEAN);
    effdim_checkpoint *back = NULL;
    const char *path = check_tmpfile("ivon2.h5");
    if (!net_make(&f, EFFDIM_REDUCTION_MEAN) || !four || !two ||
        !CHECK_OK(effdim_checkpoint_save(two, path, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_load(path, &back, &err), &err))
        goto done;
    effdim_train_params p = effdim_train_default_params();
    CHECK_OK(effdim_train_params_from_checkpoint(back, path, &p, &err), &err);
    p.epochs = 2;
    CHECK_OK(effdim_train_run(&p, back, f.train, NULL, NULL, &err), &err);
    size_t P = four->mlp.n_params;
    CHECK(back->optimizer->step == 16 && four->optimizer->step == 16);
    CHECK(!memcmp(back->theta, four->theta, P * sizeof(double)));
    CHECK(!memcmp(effdim_checkpoint_state(back, "hess"), effdim_checkpoint_state(four, "hess"),
                  P * sizeof(double)));
    CHECK(!memcmp(effdim_checkpoint_state(back, "momentum"),
                  effdim_checkpoint_state(four, "momentum"), P * sizeof(double)));
    /* the weights moved and h moved off hess_init */
    CHECK(memcmp(back->theta, two->theta, P * sizeof(double)) != 0);
    CHECK(effdim_checkpoint_state(back, "hess")[0] != 0.5);
done:
    effdim_checkpoint_free(four);
    effdim_checkpoint_free(two);
    effdim_checkpoint_free(back);
    net_free(&f);
}

static void test_a_sum_reduction_model_trains_on_the_mean_gradient(void)
{
    /* IVON sees the minibatch-mean gradient whatever the model's reduction:
     * the same run under sum and mean gives the same weights (to rounding) */
    effdim_checkpoint *mean = ivon_epochs(2, EFFDIM_REDUCTION_MEAN);
    effdim_checkpoint *sum = ivon_epochs(2, EFFDIM_REDUCTION_SUM);
    if (CHECK(mean && sum)) {
        size_t P = mean->mlp.n_params;
        CHECK_VEC_CLOSE(sum->theta, mean->theta, P, 1e-12);
        CHECK_VEC_CLOSE(effdim_checkpoint_state(sum, "hess"), effdim_checkpoint_state(mean, "hess"),
                        P, 1e-12);
    }
    effdim_checkpoint_free(mean);
    effdim_checkpoint_free(sum);
}

/* A variance 1/((h + delta) ess) beyond float's range (h0 = 1e-39, delta = 0,
 * ess = 1: 1e39) gives sigma = sqrt(FLT_MAX) = 1.8e19 in the single-precision
 * noise term, not inf: the sample is finite, by every update loop alike. */
static void test_a_variance_beyond_float_range_gives_a_finite_sample(void)
{
    enum { N = 37 };
    effdim_error err;
    effdim_optim_params p = ivon_params(0.1, 1.0);
    p.hess_init = 1e-39;
    p.weight_decay = 0.0;
    double ref[N];
    for (int L = 0; L < 3; ++L) {
        effdim_optim_ivon_loops(2 - L);
        effdim_optim *o = NULL;
        if (!CHECK_OK(effdim_optim_alloc(EFFDIM_OPTIM_IVON, &p, N, &o, &err), &err)) break;
        double m[N], th[N], g[N];
        for (int i = 0; i < N; ++i) m[i] = 0.01 * i;
        effdim_normal_stream ns = {9, 1, 0};
        CHECK_OK(effdim_optim_ivon_sample_normal(o, m, &ns, th, &err), &err);
        int finite = 1;
        double big = 0.0;
        for (int i = 0; i < N; ++i) {
            finite &= isfinite(th[i]);
            big = fmax(big, fabs(th[i] - m[i]));
        }
        CHECK(finite && big > 1e18 && big <= 6.67 * sqrt((double)FLT_MAX));
        /* the step that draws the next sample: h stays tiny for a zero gradient */
        for (int i = 0; i < N; ++i) g[i] = 0.0;
        ns = (effdim_normal_stream){9, 2, 0};
        CHECK_OK(effdim_optim_ivon_step_and_sample(o, m, g, 0.1, &ns, th, &err), &err);
        for (int i = 0; i < N; ++i) finite &= isfinite(th[i]);
        CHECK(finite);
        if (L == 0) memcpy(ref, th, sizeof ref);
        else CHECK(!memcmp(ref, th, sizeof ref));
        effdim_optim_free(o);
    }
    effdim_optim_ivon_loops(2);
}

CHECK_TESTS({"a variance beyond float's range gives a finite sample",
             test_a_variance_beyond_float_range_gives_a_finite_sample},
            {"two price steps match the hand-computed update",
             test_two_price_steps_match_the_hand_computed_update},
            {"two gradsq steps with clipping match the hand-computed update",
             test_two_gradsq_steps_with_clipping_match_the_hand_computed_update},
            {"h plus delta never falls below half for any estimate",
             test_h_plus_delta_never_falls_below_half_for_any_estimate},
            {"on a quadratic m, h and sigma reach the exact posterior",
             test_on_a_quadratic_m_h_and_sigma_reach_the_exact_posterior},
            {"on linear-Gaussian regression m and h match the exact posterior",
             test_on_linear_gaussian_regression_m_and_h_match_the_exact_posterior},
            {"the step folds the last gradient in as accumulate would",
             test_the_step_folds_the_last_gradient_in_as_accumulate_would},
            {"samples come by segments and the update loops agree bitwise",
             test_samples_come_by_segments_and_the_update_loops_agree_bitwise},
            {"ivon refuses missing and out-of-range settings",
             test_ivon_refuses_missing_and_out_of_range_settings},
            {"ivon state and settings survive a checkpoint round trip",
             test_ivon_state_and_settings_survive_a_checkpoint_round_trip},
            {"ivon training resumed after two epochs equals four bitwise",
             test_ivon_training_resumed_after_two_epochs_equals_four_bitwise},
            {"a sum-reduction model trains on the mean gradient",
             test_a_sum_reduction_model_trains_on_the_mean_gradient})
