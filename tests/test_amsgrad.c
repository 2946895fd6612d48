/* tests/test_amsgrad.c: the Reddi-Kale-Kumar counterexample as a library job
 * (effdim/amsgrad.h): Theorem 1's setting reproduces (Adam to +1, AMSGrad to
 * the optimum -1, SEEDS.md 5.4), regret has its closed form for a constant
 * point, stochastic runs are a pure function of the seed, a stop request
 * ends the run, bad parameters are refused, and the file holds the numbers. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "effdim/amsgrad.h"

static void theorem1_adam_goes_to_plus_one_and_amsgrad_to_the_optimum(void)
{
    effdim_error e;
    effdim_amsgrad_params p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_THEOREM1, 0);
    CHECK(p.sqrt_lr == 1 && p.beta1 == 0.0);
    CHECK_CLOSE(p.beta2, 0.1, 1e-15); /* 1/(1 + C^2), C = 3 */
    effdim_amsgrad_run r;
    CHECK_OK(effdim_amsgrad_simulate(&p, &r, NULL, &e), &e);
    check_note("theorem1 after %zu steps: Adam %.6f, AMSGrad %.6f", p.steps,
               r.final_x[EFFDIM_AMSGRAD_ADAM], r.final_x[EFFDIM_AMSGRAD_AMS]);
    CHECK(r.final_x[EFFDIM_AMSGRAD_ADAM] > 0.9999);
    CHECK(r.final_x[EFFDIM_AMSGRAD_AMS] < -0.999);
    CHECK(effdim_amsgrad_reproduced(&r));
    /* the trajectory: t = 0 first, every 1000 steps, the last step last */
    CHECK(r.m == p.steps / p.every + 1);
    CHECK(r.t[0] == 0.0 && r.t[r.m - 1] == (double)p.steps);
    CHECK(r.x[0][r.m - 1] == r.final_x[0]);
    effdim_amsgrad_run_free(&r);
    effdim_amsgrad_run_free(&r); /* a freed run is zeroed: freeing again is safe */
}

/* At x = +1 for a whole period of 101 steps the regret is
 * 1010 * 2 - 100 * 10 * 2 = 20 (SEEDS.md 5.4): once Adam sits near +1 its
 * regret per period is at least 20, and AMSGrad's is far smaller. */
static void online_adam_pays_at_least_20_per_period(void)
{
    effdim_error e;
    effdim_amsgrad_params p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_ONLINE, 1);
    p.steps = 101 * 3000;
    p.every = 101; /* record at the end of every period */
    effdim_amsgrad_run r;
    CHECK_OK(effdim_amsgrad_simulate(&p, &r, NULL, &e), &e);
    CHECK(r.final_x[EFFDIM_AMSGRAD_ADAM] >= 0.98);
    size_t j = r.m - 1;
    double period[2];
    for (int k = 0; k < 2; ++k) period[k] = r.avg[k][j] * r.t[j] - r.avg[k][j - 1] * r.t[j - 1];
    check_note("regret over the last period: Adam %.6f, AMSGrad %.6f", period[0], period[1]);
    /* each step's term is 1010 (x_t + 1) or -10 (x_t + 1) with x_t <= 1: a dip
     * of x below +1 after the large gradient only adds to the 20 */
    CHECK(period[EFFDIM_AMSGRAD_ADAM] >= 20.0 - 1e-9 && period[EFFDIM_AMSGRAD_ADAM] < 30.0);
    CHECK(period[EFFDIM_AMSGRAD_AMS] < 0.5 * period[EFFDIM_AMSGRAD_ADAM]);
    CHECK(r.final_avg[EFFDIM_AMSGRAD_AMS] < r.final_avg[EFFDIM_AMSGRAD_ADAM]);
    effdim_amsgrad_run_free(&r);
}

static void stochastic_runs_are_a_function_of_the_seed(void)
{
    effdim_error e;
    effdim_amsgrad_params p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_STOCHASTIC, 1);
    p.steps = 20000;
    p.n_seeds = 3;
    p.seed = 7;
    effdim_amsgrad_run a, b, c;
    CHECK_OK(effdim_amsgrad_simulate(&p, &a, NULL, &e), &e);
    CHECK_OK(effdim_amsgrad_simulate(&p, &b, NULL, &e), &e);
    p.seed = 8;
    p.n_seeds = 1;
    CHECK_OK(effdim_amsgrad_simulate(&p, &c, NULL, &e), &e);
    for (int k = 0; k < EFFDIM_AMSGRAD_N_OPT; ++k) {
        CHECK(memcmp(a.x[k], b.x[k], a.m * sizeof(double)) == 0);
        CHECK(a.seed_x[k][0] == a.final_x[k]);
        CHECK(a.seed_x[k][1] == c.final_x[k]); /* seed 8 = the second of 7, 8, 9 */
    }
    double med, lo, hi;
    effdim_amsgrad_seed_stats(&a, EFFDIM_AMSGRAD_ADAM, &med, &lo, &hi);
    CHECK(lo <= med && med <= hi);
    effdim_amsgrad_run_free(&a);
    effdim_amsgrad_run_free(&b);
    effdim_amsgrad_run_free(&c);
}

static int stop_now(void *ctx, const effdim_progress_event *ev)
{
    (void)ev;
    ++*(int *)ctx;
    return 1;
}

static void a_stop_request_ends_the_run_and_bad_parameters_are_refused(void)
{
    effdim_error e;
    effdim_amsgrad_params p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_ONLINE, 0);
    p.steps = 3u << 20; /* progress is reported every 2^20 steps */
    int calls = 0;
    effdim_progress prog = {stop_now, &calls};
    effdim_amsgrad_run r;
    CHECK_STATUS(effdim_amsgrad_simulate(&p, &r, &prog, &e), EFFDIM_EMAXITER, &e);
    CHECK_MSG(&e, "interrupted");
    CHECK(calls == 1);
    CHECK(r.t == NULL); /* nothing half-made is handed back */
    p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_ONLINE, 0);
    p.every = 0;
    CHECK_STATUS(effdim_amsgrad_simulate(&p, &r, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "every");
    p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_STOCHASTIC, 0);
    p.n_seeds = EFFDIM_AMSGRAD_MAX_SEEDS + 1;
    CHECK_STATUS(effdim_amsgrad_simulate(&p, &r, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n_seeds");
    p.n_seeds = 1;
    p.alpha = NAN;
    CHECK_STATUS(effdim_amsgrad_simulate(&p, &r, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "alpha");
    effdim_amsgrad_setting s;
    CHECK_OK(effdim_amsgrad_setting_parse("stochastic", &s, &e), &e);
    CHECK(s == EFFDIM_AMSGRAD_STOCHASTIC);
    CHECK_STATUS(effdim_amsgrad_setting_parse("offline", &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "offline", "online, stochastic or theorem1");
}

static double read_attr(hid_t f, const char *obj, const char *name)
{
    double v = NAN;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Aread(a, H5T_NATIVE_DOUBLE, &v);
        H5Aclose(a);
    }
    return v;
}

static void the_file_holds_the_finals_and_the_trajectories(void)
{
    effdim_error e;
    effdim_amsgrad_params p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_THEOREM1, 1);
    p.steps = 5000;
    p.every = 100;
    effdim_amsgrad_run r;
    CHECK_OK(effdim_amsgrad_simulate(&p, &r, NULL, &e), &e);
    const char *path = check_tmpfile("amsgrad.h5");
    CHECK_OK(effdim_amsgrad_save(path, &r, 1, "effdim demo amsgrad --test", &e), &e);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    if (f >= 0) {
        CHECK(read_attr(f, "/theorem1_sqrt/adam", "final_x") == r.final_x[0]);
        CHECK(read_attr(f, "/theorem1_sqrt/amsgrad", "final_avg_regret") == r.final_avg[1]);
        CHECK(read_attr(f, "/theorem1_sqrt", "C") == 3.0);
        double x[64];
        hid_t d = H5Dopen2(f, "/theorem1_sqrt/amsgrad/x", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        CHECK(H5Sget_simple_extent_npoints(sp) == (hssize_t)r.m && r.m == 51);
        H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        CHECK(memcmp(x, r.x[1], r.m * sizeof(double)) == 0);
        H5Sclose(sp);
        H5Dclose(d);
        H5Fclose(f);
    }
    effdim_amsgrad_run_free(&r);
}

CHECK_TESTS({"theorem 1: Adam goes to +1 and AMSGrad to the optimum",
             theorem1_adam_goes_to_plus_one_and_amsgrad_to_the_optimum},
            {"online: Adam pays at least 20 per period", online_adam_pays_at_least_20_per_period},
            {"stochastic runs are a function of the seed", stochastic_runs_are_a_function_of_the_seed},
            {"a stop request ends the run and bad parameters are refused",
             a_stop_request_ends_the_run_and_bad_parameters_are_refused},
            {"the file holds the finals and the trajectories",
             the_file_holds_the_finals_and_the_trajectories})
