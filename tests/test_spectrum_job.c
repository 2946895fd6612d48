/* tests/test_spectrum_job.c: the spectrum job (effdim_spectrum_compute) is
 * what `effdim spectrum` runs.
 *
 * The oracle is the command itself: a small tanh network is trained with
 * `effdim train`, `effdim spectrum` writes its file with every default, and
 * the job called from the public API with effdim_spectrum_default_params()
 * must give bitwise the same eigenvalues, residuals, Ritz and SLQ N_eff (with
 * SE and bias) and trace. The example program docs/examples/spectrum_example.c
 * (built against the public shared library) must write a file whose every
 * dataset and attribute equals the command's, but for seconds and created.
 * Bad parameters are refused before any product. The programs come from the
 * environment (EFFDIM, EFFDIM_SPECTRUM_EXAMPLE; tests/meson.build sets both).
 */
#include <math.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"

#define DATA "spirals:n=160,seed=4"

/* run a shell command line; its exit status */
static int sh(const char *cmd)
{
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* the checkpoint and the command's file, made once */
static const char *model_path(void)
{
    static int made = 0;
    static char path[1024];
    if (!made) {
        made = 1;
        const char *exe = getenv("EFFDIM");
        snprintf(path, sizeof path, "%s", check_tmpfile("model.h5"));
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "%s train --data " DATA " --arch 2,10,10,2 --act tanh --opt adam --lr 0.01 "
                 "--batch 40 --epochs 15 --seed 2 --threads 1 -o %s >/dev/null 2>&1",
                 exe ? exe : "false", path);
        if (!exe || sh(cmd) != 0) path[0] = '\0';
    }
    return path[0] ? path : NULL;
}

static const char *command_file(void)
{
    static int made = 0;
    static char path[1024];
    if (!made) {
        made = 1;
        const char *exe = getenv("EFFDIM"), *model = model_path();
        snprintf(path, sizeof path, "%s", check_tmpfile("command.h5"));
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "%s spectrum %s -o %s --threads 1 >/dev/null 2>&1",
                 exe ? exe : "false", model ? model : "", path);
        int rc = exe && model ? sh(cmd) : -1;
        if (rc != 0 && rc != 3) path[0] = '\0'; /* 3: fewer than k converged, file written */
    }
    return path[0] ? path : NULL;
}

static int same_bits(const double *a, const double *b, size_t n)
{
    return (!a && !b) || (a && b && memcmp(a, b, n * sizeof *a) == 0);
}

static void job_with_defaults_reproduces_the_command_bitwise(void)
{
    const char *model = model_path(), *file = command_file();
    if (!CHECK(model && file)) return;
    effdim_error e;
    effdim_checkpoint *ck = NULL;
    effdim_dataset *ds = NULL;
    effdim_spectrum *s = NULL, *c = NULL;
    effdim_blas_set_threads(1);
    if (!CHECK_OK(effdim_checkpoint_load(model, &ck, &e), &e)) return;
    if (CHECK_OK(effdim_dataset_from_spec(DATA, &ds, &e), &e) &&
        CHECK_OK(effdim_spectrum_load(file, &c, &e), &e)) {
        effdim_spectrum_params p = effdim_spectrum_default_params();
        p.checkpoint = model;
        p.data_spec = DATA;
        if (CHECK_OK(effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &p, &s, &e), &e)) {
            size_t m = s->m;
            CHECK(s->k == 20 && c->k == 20 && m == c->m && m >= 5 && m <= 6);
            CHECK(same_bits(s->eigenvalues, c->eigenvalues, 20));
            CHECK(same_bits(s->residuals, c->residuals, 20));
            CHECK(m == c->m && same_bits(s->z, c->z, m));
            CHECK(m == c->m && same_bits(s->n_eff, c->n_eff, m));
            CHECK(s->n_eff_slq && c->n_eff_slq);
            CHECK(same_bits(s->n_eff_slq, c->n_eff_slq, m));
            CHECK(same_bits(s->n_eff_slq_se, c->n_eff_slq_se, m));
            CHECK(same_bits(s->n_eff_slq_bias, c->n_eff_slq_bias, m));
            CHECK(s->slq_probes == c->slq_probes && s->slq_probes <= 30 &&
                  s->slq_steps == c->slq_steps && !strcmp(s->slq_stop, c->slq_stop));
            /* the default z: lambda_1 x 10^-4 .. lambda_1 at 2 digits, ascending, with 1 */
            int one = 0, up = 1;
            for (size_t i = 0; i < m; ++i) {
                one |= s->z[i] == 1.0;
                if (i) up &= s->z[i] > s->z[i - 1];
            }
            CHECK(one && up);
            CHECK_CLOSE(s->z[m - 1] >= 1.0 ? s->z[m - 1] : 1.0, s->eigenvalues[0] > 1 ? s->eigenvalues[0] : 1.0, 0.05);
            CHECK_CLOSE(s->z[0], s->eigenvalues[0] * 1e-4, 0.05);
            CHECK(!c->partial && c->command_line && strstr(c->command_line, "effdim spectrum "));
            CHECK(s->has_trace && c->has_trace && same_bits(&s->trace, &c->trace, 1) &&
                  same_bits(&s->trace_se, &c->trace_se, 1));
            CHECK(s->matvecs == c->matvecs && s->lanczos_matvecs == c->lanczos_matvecs);
            CHECK(strcmp(s->checkpoint_sha256, c->checkpoint_sha256) == 0);
            check_note("N_eff(1) Ritz %.10g, SLQ %.10g +- %.2g; %llu matvecs", s->n_eff[0],
                       s->n_eff_slq[0], s->n_eff_slq_se[0], (unsigned long long)s->matvecs);
        }
    }
    effdim_spectrum_free(s);
    effdim_spectrum_free(c);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(ck);
}

#define SAME_ARRAY(f, n) CHECK(same_bits(a->f, b->f, (n)))

static void the_example_program_writes_the_commands_file(void)
{
    const char *model = model_path(), *file = command_file(), *ex = getenv("EFFDIM_SPECTRUM_EXAMPLE");
    if (!CHECK(model && file && ex)) return;
    const char *out = check_tmpfile("example.h5");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 %s %s %s >/dev/null", ex, model, out);
    if (!CHECK(sh(cmd) == 0)) return;
    effdim_error e;
    effdim_spectrum *a = NULL, *b = NULL;
    if (CHECK_OK(effdim_spectrum_load(file, &a, &e), &e) &&
        CHECK_OK(effdim_spectrum_load(out, &b, &e), &e)) {
        CHECK(a->k == b->k && a->m == b->m && a->n_params == b->n_params && a->n == b->n);
        CHECK(strcmp(a->checkpoint, b->checkpoint) == 0 && strcmp(a->data_spec, b->data_spec) == 0);
        CHECK(strcmp(a->checkpoint_sha256, b->checkpoint_sha256) == 0);
        CHECK(strcmp(a->op, b->op) == 0 && strcmp(a->hvp_method, b->hvp_method) == 0 &&
              strcmp(a->loss, b->loss) == 0 && strcmp(a->reduction, b->reduction) == 0 &&
              strcmp(a->which, b->which) == 0 && strcmp(a->neg_policy, b->neg_policy) == 0);
        CHECK(same_bits(&a->scale, &b->scale, 1) && same_bits(&a->fd_eps, &b->fd_eps, 1) &&
              same_bits(&a->tol, &b->tol, 1) && same_bits(&a->prior, &b->prior, 1));
        CHECK(a->seed == b->seed && a->steps == b->steps && a->matvecs == b->matvecs &&
              a->lanczos_matvecs == b->lanczos_matvecs && a->restarts == b->restarts &&
              a->nconv == b->nconv);
        if (a->k == b->k && a->m == b->m) {
            SAME_ARRAY(eigenvalues, a->k);
            SAME_ARRAY(residuals, a->k);
            SAME_ARRAY(residual_bounds, a->k);
            CHECK(memcmp(a->converged, b->converged, a->k) == 0);
            SAME_ARRAY(z, a->m);
            SAME_ARRAY(n_eff, a->m);
            SAME_ARRAY(n_eff_slq, a->m);
            SAME_ARRAY(n_eff_slq_se, a->m);
            SAME_ARRAY(n_eff_slq_bias, a->m);
        }
        CHECK(a->slq_probes == b->slq_probes && a->slq_steps == b->slq_steps &&
              a->slq_deflated == b->slq_deflated);
        CHECK(a->has_trace == b->has_trace && same_bits(&a->trace, &b->trace, 1) &&
              same_bits(&a->trace_se, &b->trace_se, 1) && a->trace_matvecs == b->trace_matvecs);
        CHECK(!strcmp(a->slq_stop, b->slq_stop) && a->partial == b->partial &&
          a->nconv_true == b->nconv_true);
    CHECK((!a->slq_warning && !b->slq_warning) ||
              (a->slq_warning && b->slq_warning && !strcmp(a->slq_warning, b->slq_warning)));
        CHECK(!a->dense_eigenvalues && !b->dense_eigenvalues && !a->n_grid && !b->n_grid &&
              !a->n_layers && !b->n_layers && !a->eigenvectors && !b->eigenvectors);
    }
    effdim_spectrum_free(a);
    effdim_spectrum_free(b);
}

static void bad_parameters_are_refused_before_any_product(void)
{
    effdim_error e;
    effdim_spectrum_params p = effdim_spectrum_default_params();
    CHECK(p.k == 20 && p.nz == 0 && !p.z && p.slq_target_rel == 0.01 && p.slq_target_abs == 0.5 &&
          p.tol == 1e-8 && p.probes == 30 && p.max_matvecs == 5000 && p.dense_limit == 5000 &&
          p.slq_mem_budget == (size_t)256 << 20 && p.cache == 1);
    CHECK_OK(effdim_spectrum_check_params(&p, 218, &e), &e);
    p.k = 0;
    CHECK_STATUS(effdim_spectrum_check_params(&p, 218, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "k = 0");
    p = effdim_spectrum_default_params();
    double z[2] = {0.5, -1.0};
    p.z = z;
    p.nz = 2;
    CHECK_STATUS(effdim_spectrum_check_params(&p, 218, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "z[1] = -1");
    p = effdim_spectrum_default_params();
    p.tol = 1.5;
    CHECK_STATUS(effdim_spectrum_check_params(&p, 218, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "tol = 1.5");
    p = effdim_spectrum_default_params();
    p.dense = 1;
    p.dense_limit = 100;
    CHECK_STATUS(effdim_spectrum_check_params(&p, 218, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "P = 218", "limit 100", "--force");
    p.force = 1;
    CHECK_OK(effdim_spectrum_check_params(&p, 218, &e), &e);

    /* the job itself refuses them too, and a data set that does not fit */
    size_t sizes[3] = {2, 3, 2};
    effdim_activation act[2] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_dataset *ds = NULL;
    effdim_spectrum *s = (effdim_spectrum *)&e; /* must be reset to NULL */
    if (!CHECK_OK(effdim_mlp_init(&m, 2, sizes, act, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &e), &e)) return;
    double theta[17] = {0.3, -0.2, 0.5, 0.1, -0.4, 0.25, 0.05, -0.1, 0.2,
                        0.7, -0.3, 0.15, -0.6, 0.45, 0.35, 0.0, -0.05};
    if (!CHECK(m.n_params == 17)) return;
    if (!CHECK_OK(effdim_dataset_alloc(5, 3, 2, EFFDIM_TARGET_LABELS, &ds, &e), &e)) return;
    p = effdim_spectrum_default_params();
    p.k = 0;
    CHECK_STATUS(effdim_spectrum_compute(&m, theta, ds, &p, &s, &e), EFFDIM_EINVAL, &e);
    CHECK(s == NULL);
    p.k = 3;
    CHECK_STATUS(effdim_spectrum_compute(&m, theta, ds, &p, &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "3 input features", "is 2");
    CHECK(s == NULL);
    effdim_dataset_free(ds);
}

/* the trained checkpoint and its data, one thread (as the command runs); 0 on failure */
static int load_model(effdim_checkpoint **ck, effdim_dataset **ds)
{
    const char *model = model_path();
    effdim_error e;
    *ck = NULL;
    *ds = NULL;
    effdim_blas_set_threads(1);
    if (!CHECK(model) || !CHECK_OK(effdim_checkpoint_load(model, ck, &e), &e)) return 0;
    if (CHECK_OK(effdim_dataset_from_spec(DATA, ds, &e), &e)) return 1;
    effdim_checkpoint_free(*ck);
    *ck = NULL;
    return 0;
}

/* small settings the stop tests share: top 4, exact products, 20-step probes */
static effdim_spectrum_params small_params(void)
{
    effdim_spectrum_params p = effdim_spectrum_default_params();
    p.k = 4;
    p.hvp = EFFDIM_HVP_EXACT;
    p.slq_steps = 20;
    return p;
}

/* a progress callback that asks to stop at the second SLQ report after a probe */
static int stop_in_slq(void *ctx, const effdim_progress_event *ev)
{
    int *seen = ctx;
    if (!strcmp(ev->stage, "slq") && ev->done > 0) ++*seen;
    return *seen >= 2;
}

static void an_interrupt_keeps_what_is_complete_and_the_early_file(void)
{
    effdim_error e;
    effdim_checkpoint *ck;
    effdim_dataset *ds;
    effdim_spectrum *s = NULL, *f = NULL;
    if (!load_model(&ck, &ds)) return;
    effdim_spectrum_params p = small_params();
    int seen = 0;
    const char *early = check_tmpfile("early.h5");
    p.probes = 1000;
    p.slq_mem_budget = 1; /* one probe per block: a report after each */
    p.slq_target_rel = p.slq_target_abs = 0.0;
    p.partial_path = early;
    p.progress.fn = stop_in_slq;
    p.progress.ctx = &seen;
    CHECK_STATUS(effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &p, &s, &e), EFFDIM_EMAXITER, &e);
    CHECK_MSG(&e, "interrupted");
    if (CHECK(s != NULL)) {
        CHECK(s->partial && !strcmp(s->slq_stop, "interrupted") && s->n_eff_slq);
        CHECK(s->slq_probes == 2 && s->slq_max_probes == 1000);
        CHECK(!s->has_trace); /* the trace had not started */
        CHECK_OK(effdim_spectrum_check(s, &e), &e);
    }
    /* the file written before the SLQ: complete, the pairs and Ritz N_eff, partial */
    if (CHECK_OK(effdim_spectrum_load(early, &f, &e), &e)) {
        CHECK(f->partial && f->k == 4 && !f->n_eff_slq && !f->has_trace);
        CHECK(s && !memcmp(f->eigenvalues, s->eigenvalues, 4 * sizeof(double)));
    }
    effdim_spectrum_free(s);
    effdim_spectrum_free(f);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(ck);
}

/* the most probes any SLQ report's time left implies: done + eta / (elapsed / done) */
static int slq_implied_probes(void *ctx, const effdim_progress_event *ev)
{
    double *most = ctx;
    if (!strcmp(ev->stage, "slq") && ev->done > 0 && ev->eta >= 0 && ev->elapsed > 0) {
        double implied = (double)ev->done + ev->eta / (ev->elapsed / (double)ev->done);
        if (implied > *most) *most = implied;
    }
    return 0;
}

static void the_slq_stops_at_its_target_or_its_budget(void)
{
    effdim_error e;
    effdim_checkpoint *ck;
    effdim_dataset *ds;
    effdim_spectrum *a = NULL, *b = NULL;
    if (!load_model(&ck, &ds)) return;
    effdim_spectrum_params p = small_params();
    double z[2] = {0.1, 1.0};
    p.z = z;
    p.nz = 2;
    p.probes = 400;
    p.slq_target_rel = 0.05;
    p.slq_target_abs = 0.25;
    p.slq_budget_factor = 0.0; /* no default budget: the target ends it */
    if (CHECK_OK(effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &p, &a, &e), &e)) {
        CHECK(!strcmp(a->slq_stop, "target") && a->slq_probes >= 8 && a->slq_probes < 400);
        for (size_t j = 0; j < 2; ++j)
            CHECK(a->n_eff_slq_se[j] <= fmax(0.05 * fabs(a->n_eff_slq[j]), 0.25));
        check_note("target met after %llu probes: N_eff(0.1) %.4g +- %.2g",
                   (unsigned long long)a->slq_probes, a->n_eff_slq[0], a->n_eff_slq_se[0]);
        /* enough probes for the SE: no few-probes flag */
        for (size_t j = 0; j < 2; ++j)
            CHECK(a->slq_flags && !(a->slq_flags[j] & EFFDIM_SLQ_FLAG_FEW_PROBES));
        CHECK(!a->slq_warning || !strstr(a->slq_warning, "probes (fewer than"));
    }
    p.slq_target_rel = 1e-6;
    p.slq_target_abs = 0.0;
    p.slq_budget_matvecs = 150;
    p.slq_mem_budget = 1; /* blocks of one probe: 20 products each */
    double implied = 0;
    p.progress.fn = slq_implied_probes;
    p.progress.ctx = &implied;
    if (CHECK_OK(effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &p, &b, &e), &e)) {
        CHECK(!strcmp(b->slq_stop, "budget") && b->slq_matvecs <= 150 && b->slq_probes == 7);
        CHECK(!b->partial);
        /* the time left counts the probes the budget allows (7), not the 400 asked */
        check_note("the time left implied at most %.2f probes", implied);
        CHECK(implied > 0 && implied <= 7.0 + 1e-9);
    }
    p.progress.fn = NULL;
    /* the default budget: 2 x the Lanczos products less the trace's (at least
       the Lanczos products), and the summary's fields say it ended the SLQ */
    effdim_spectrum *c = NULL;
    p.slq_budget_matvecs = 0;
    p.slq_budget_factor = 2.0;
    p.probes = 30;
    if (CHECK_OK(effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &p, &c, &e), &e)) {
        uint64_t L = c->lanczos_matvecs, want = 2 * L >= L + 30 ? 2 * L - 30 : L;
        check_note("Lanczos %llu products: budget %llu, SLQ %llu products in %llu probes (%llu "
                   "steps, %llu settled), stop %s",
                   (unsigned long long)L, (unsigned long long)c->slq_budget,
                   (unsigned long long)c->slq_matvecs, (unsigned long long)c->slq_probes,
                   (unsigned long long)c->slq_steps_total, (unsigned long long)c->slq_settled,
                   c->slq_stop);
        CHECK(c->slq_budget == want);
        CHECK(!strcmp(c->slq_stop, "budget") && c->slq_probes >= 2 && c->slq_probes < 30);
        /* the next probe would have passed it (mean products per probe so far) */
        double per = (double)c->slq_matvecs / (double)c->slq_probes;
        CHECK(c->slq_probes == 2 || (double)c->slq_matvecs <= (double)want);
        CHECK((double)c->slq_matvecs + per > (double)want);
        CHECK(c->slq_steps_total == c->slq_matvecs); /* one product a step, block of 1 */
        /* fewer than EFFDIM_SLQ_MIN_PROBES probes: every z flagged, the warning says why */
        int few = c->slq_probes < EFFDIM_SLQ_MIN_PROBES;
        for (size_t j = 0; j < 2; ++j)
            CHECK(c->slq_flags && !!(c->slq_flags[j] & EFFDIM_SLQ_FLAG_FEW_PROBES) == few);
        if (few) {
            char want_msg[64];
            snprintf(want_msg, sizeof want_msg, "the SE comes from %llu probes (fewer than 5)",
                     (unsigned long long)c->slq_probes);
            CHECK(c->slq_warning && strstr(c->slq_warning, want_msg));
        }
    }
    effdim_spectrum_free(c);
    effdim_spectrum_free(a);
    effdim_spectrum_free(b);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(ck);
}

CHECK_TESTS({"the job with default parameters reproduces `effdim spectrum` bitwise",
             job_with_defaults_reproduces_the_command_bitwise},
            {"the example program writes the command's file (datasets and attributes)",
             the_example_program_writes_the_commands_file},
            {"bad parameters are refused before any product",
             bad_parameters_are_refused_before_any_product},
            {"an interrupt keeps what is complete, and the file written before the SLQ",
             an_interrupt_keeps_what_is_complete_and_the_early_file},
            {"the SLQ stops at its SE target, or at its product budget",
             the_slq_stops_at_its_target_or_its_budget})
