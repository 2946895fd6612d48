/* tests/test_sweep.c: the sweep job (lib/sweep.c).
 *
 * Oracles: the config's documented defaults and its errors provoked one key
 * at a time; the grid order written out by hand; each row against the
 * library's own jobs run separately on the kept checkpoint (the spectrum job
 * bitwise, the loss by effdim_mlp_evaluate) and N_eff against the closed form
 * sum lambda/(lambda+z) over the row's eigenvalues; resume, shards and merge
 * against one uninterrupted run (bitwise, one thread); the Spearman
 * correlations past the test-loss peak against rankings worked out by hand;
 * the inspect summary against the rows the runs wrote.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/inspect.h"
#include "effdim/mlp.h"
#include "effdim/spectrum.h"
#include "effdim/sweep.h"

static const char small_json[] =
    "{\"data\": \"spirals:n=120,seed=3\", \"test\": \"spirals:n=80,seed=9\",\n"
    " \"widths\": [3, 6], \"depths\": [1, 2], \"seeds\": [5],\n"
    " \"train\": {\"epochs\": 6, \"batch\": 40, \"lr\": 0.02},\n"
    " \"curvature\": {\"k\": 4, \"z\": [0.05, 0.5], \"probes\": 4, \"diag\": true}}";

static effdim_sweep_config *parse_ok(const char *json)
{
    effdim_sweep_config *c = NULL;
    effdim_error e;
    CHECK_OK(effdim_sweep_config_parse(json, "t.json", &c, &e), &e);
    return c;
}

#define EXPECT_BAD(json, ...)                                                              \
    do {                                                                                   \
        effdim_sweep_config *c_ = NULL;                                                    \
        effdim_error e_;                                                                   \
        CHECK_STATUS(effdim_sweep_config_parse(json, "bad.json", &c_, &e_), EFFDIM_EINVAL, &e_); \
        CHECK_MSG(&e_, "bad.json", __VA_ARGS__);                                           \
        CHECK(c_ == NULL);                                                                 \
    } while (0)

static void a_config_with_only_data_takes_the_documented_defaults(void)
{
    effdim_sweep_config *c = parse_ok("{\"data\": \"spirals:n=50\"}");
    if (!c) return;
    /* docs/sweeps.md: widths [8,16,32,64], depths [1], seeds [1], relu, adam lr 1e-3,
       batch 128, 20 epochs, k 20, z [0.1,1,10], slq with 30 probes, exact Hessian */
    CHECK(effdim_sweep_config_size(c) == 4);
    CHECK(strstr(effdim_sweep_config_canonical(c),
                 "\"widths\":[8,16,32,64],\"depths\":[1],\"seeds\":[1]") != NULL);
    CHECK(strstr(effdim_sweep_config_canonical(c),
                 "\"train\":{\"opt\":\"adam\",\"lr\":0.001,\"batch\":128,\"epochs\":20") != NULL);
    CHECK(strstr(effdim_sweep_config_canonical(c),
                 "\"curvature\":{\"k\":20,\"z\":[0.1,1,10],\"slq\":true,\"probes\":30,\"slq_steps\":150,"
                 "\"hvp\":\"exact\",\"op\":\"hessian\"") != NULL);
    CHECK(strstr(effdim_sweep_config_canonical(c), "\"act\":\"relu\"") != NULL);
    effdim_sweep_config_free(c);
    effdim_sweep_config_free(NULL);
}

static void unknown_keys_and_wrong_types_name_the_key_and_the_file(void)
{
    EXPECT_BAD("{\"data\": \"spirals\", \"widht\": [3]}", "unknown key 'widht'", "widths");
    EXPECT_BAD("{\"data\": \"spirals\", \"train\": {\"epoch\": 3}}", "unknown key 'train.epoch'");
    EXPECT_BAD("{\"data\": \"spirals\", \"curvature\": {\"k\": \"20\"}}", "key 'curvature.k'",
               "integer");
    EXPECT_BAD("{\"data\": \"spirals\", \"widths\": [4, 2.5]}", "key 'widths'", "entry 1");
    EXPECT_BAD("{\"data\": \"spirals\", \"widths\": [4, 4]}", "key 'widths'", "twice");
    EXPECT_BAD("{\"data\": \"spirals\", \"widths\": []}", "key 'widths'", "non-empty");
    EXPECT_BAD("{\"data\": \"spirals\", \"train\": {\"lr\": -1}}", "key 'train.lr'", "out of range");
    EXPECT_BAD("{\"data\": \"spirals\", \"train\": {\"opt\": \"adamx\"}}", "key 'train.opt'");
    EXPECT_BAD("{\"data\": \"spirals\", \"act\": \"swish\"}", "key 'act'", "swish");
    EXPECT_BAD("{\"data\": \"spirals\", \"curvature\": {\"z\": [1, 0]}}", "key 'curvature.z'");
    EXPECT_BAD("{\"data\": \"spirals\", \"curvature\": {\"slq\": 1}}", "key 'curvature.slq'",
               "true or false");
    EXPECT_BAD("{\"data\": \"spirals\", \"train\": 3}", "key 'train'", "object");
    EXPECT_BAD("{\"data\": \"spirals\", \"label_noise\": [1.5]}", "key 'label_noise'");
    EXPECT_BAD("{\"test\": \"spirals\"}", "key 'data' is missing");
    EXPECT_BAD("{\"data\": \"spirals\",\n \"widths\": [3,]}", "not valid JSON", "line 2");
    EXPECT_BAD("[1, 2]", "JSON object");
    effdim_sweep_config *c = NULL;
    effdim_error e;
    CHECK_STATUS(effdim_sweep_config_load("/nonexistent/s.json", &c, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "/nonexistent/s.json");
    CHECK_STATUS(effdim_sweep_config_preset("slow", &c, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "slow", "quick");
}

static void the_grid_runs_width_fastest_then_depth_seed_noise_and_size(void)
{
    effdim_sweep_config *c = parse_ok("{\"data\": \"spirals\", \"widths\": [3, 7], \"depths\": [1, 2],"
                                      " \"seeds\": [11, 12, 13], \"label_noise\": [0, 0.25],"
                                      " \"n_train\": [50, 90]}");
    if (!c) return;
    CHECK(effdim_sweep_config_size(c) == 2 * 2 * 3 * 2 * 2);
    size_t i = 0;
    int all = 1;
    for (size_t a = 0; a < 2; ++a)
        for (size_t b = 0; b < 2; ++b)
            for (size_t s = 0; s < 3; ++s)
                for (size_t d = 0; d < 2; ++d)
                    for (size_t w = 0; w < 2; ++w, ++i) {
                        effdim_sweep_point p = effdim_sweep_config_point(c, i);
                        all &= p.index == i && p.width == (w ? 7u : 3u) && p.depth == d + 1 &&
                               p.seed == 11 + s && p.label_noise == (b ? 0.25 : 0.0) &&
                               p.n_train == (a ? 90u : 50u);
                    }
    CHECK(all);
    effdim_sweep_config_free(c);
    size_t si = 9, sn = 9;
    effdim_error e;
    CHECK_OK(effdim_sweep_shard_parse("1/3", "--shard", &si, &sn, &e), &e);
    CHECK(si == 1 && sn == 3);
    CHECK_STATUS(effdim_sweep_shard_parse("3/3", "--shard", &si, &sn, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "--shard", "3/3");
    CHECK_STATUS(effdim_sweep_shard_parse("-1/3", "--shard", &si, &sn, &e), EFFDIM_EINVAL, &e);
    CHECK_STATUS(effdim_sweep_shard_parse("1/0", "--shard", &si, &sn, &e), EFFDIM_EINVAL, &e);
    CHECK_STATUS(effdim_sweep_shard_parse("1/3x", "--shard", &si, &sn, &e), EFFDIM_EINVAL, &e);
}

static effdim_sweep_table *run_to(const effdim_sweep_config *c, const char *name,
                                  effdim_sweep_params p, effdim_status want)
{
    effdim_error e;
    const char *path = check_tmpfile(name);
    CHECK_STATUS(effdim_sweep_run(c, path, &p, NULL, &e), want, &e);
    effdim_sweep_table *t = NULL;
    CHECK_OK(effdim_sweep_table_load(path, &t, &e), &e);
    return t;
}

static const effdim_sweep_row *find_row(const effdim_sweep_table *t, int64_t index)
{
    for (size_t i = 0; t && i < t->n_rows; ++i)
        if (t->rows[i].index == index) return &t->rows[i];
    return NULL;
}

/* The fields a rerun must reproduce bitwise (not the times). */
static int same_numbers(const effdim_sweep_row *a, const effdim_sweep_row *b, size_t nz, size_t k)
{
    if (!a || !b) return 0;
    int ok = a->width == b->width && a->depth == b->depth && a->seed == b->seed &&
             a->n_params == b->n_params && a->train_loss == b->train_loss &&
             a->test_loss == b->test_loss && a->test_error == b->test_error &&
             a->nconv == b->nconv && a->matvecs == b->matvecs && !strcmp(a->status, b->status);
    for (size_t j = 0; j < nz; ++j)
        ok &= a->n_eff_ritz[j] == b->n_eff_ritz[j] && a->n_eff_slq[j] == b->n_eff_slq[j] &&
              a->n_eff_diag[j] == b->n_eff_diag[j];
    for (size_t i = 0; i < k; ++i) ok &= a->eig[i] == b->eig[i] || (isnan(a->eig[i]) && isnan(b->eig[i]));
    return ok;
}

static void each_row_agrees_with_the_jobs_run_on_its_kept_checkpoint(void)
{
    effdim_blas_set_threads(1);
    effdim_sweep_config *c = parse_ok(small_json);
    if (!c) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", check_tmpfile("kept"));
    CHECK(mkdir(dir, 0700) == 0);
    effdim_sweep_params p = effdim_sweep_default_params();
    p.keep_checkpoints = dir;
    effdim_sweep_table *t = run_to(c, "rows.h5", p, EFFDIM_OK);
    CHECK(t && t->n_rows == 4 && t->nz == 2 && t->k == 4 && t->grid_size == 4);
    CHECK(t && t->z[0] == 0.05 && t->z[1] == 0.5);
    CHECK(t && !strcmp(t->config, small_json));
    effdim_dataset *train = NULL, *test = NULL;
    effdim_error e;
    CHECK_OK(effdim_dataset_from_spec("spirals:n=120,seed=3", &train, &e), &e);
    CHECK_OK(effdim_dataset_from_spec("spirals:n=80,seed=9", &test, &e), &e);
    for (size_t r = 0; t && train && test && r < t->n_rows; ++r) {
        const effdim_sweep_row *row = &t->rows[r];
        CHECK(!strcmp(row->status, "ok") && row->index == (int64_t)r);
        size_t w = (size_t)row->width, d = (size_t)row->depth;
        CHECK(row->n_params == (int64_t)(d == 1 ? (2 * w + w + w * 2 + 2)
                                                : (2 * w + w + w * w + w + w * 2 + 2)));
        char path[4200];
        snprintf(path, sizeof path, "%s/i%zu-w%zu-d%zu-s5.h5", dir, r, w, d);
        effdim_checkpoint *ck = NULL;
        if (!CHECK_OK(effdim_checkpoint_load(path, &ck, &e), &e)) continue;
        double loss = NAN, acc = NAN, tl = NAN, ta = NAN;
        effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&ck->mlp, 0, &e);
        CHECK_OK(effdim_mlp_evaluate(&ck->mlp, ck->theta, train, NULL, train->n, &loss, &acc, ws, &e), &e);
        CHECK_OK(effdim_mlp_evaluate(&ck->mlp, ck->theta, test, NULL, test->n, &tl, &ta, ws, &e), &e);
        CHECK_CLOSE(row->train_loss, loss, 1e-12);
        CHECK_CLOSE(row->train_error, 1 - acc, 1e-12);
        CHECK_CLOSE(row->test_loss, tl, 1e-12);
        CHECK_CLOSE(row->test_error, 1 - ta, 1e-12);
        CHECK(row->epochs == 6);
        effdim_spectrum_params sp = effdim_spectrum_default_params();
        double z[2] = {0.05, 0.5};
        sp.hvp = EFFDIM_HVP_EXACT;
        sp.k = 4, sp.z = z, sp.nz = 2, sp.probes = 4, sp.seed = 5;
        effdim_spectrum *s = NULL;
        if (CHECK_OK(effdim_spectrum_compute(&ck->mlp, ck->theta, train, &sp, &s, &e), &e)) {
            for (size_t i = 0; i < 4; ++i) CHECK(row->eig[i] == s->eigenvalues[i]);
            CHECK(row->n_eff_slq[0] == s->n_eff_slq[0] && row->n_eff_slq_se[1] == s->n_eff_slq_se[1]);
            CHECK(row->matvecs == (int64_t)s->matvecs && row->nconv == (int64_t)s->nconv);
        }
        effdim_spectrum_free(s);
        for (size_t j = 0; j < 2; ++j) { /* the closed form over the Ritz values */
            double want = 0;
            for (size_t i = 0; i < 4; ++i)
                want += fmax(row->eig[i], 0) / (fmax(row->eig[i], 0) + z[j]);
            CHECK_CLOSE(row->n_eff_ritz[j], want, 1e-13);
            CHECK(row->n_eff_diag[j] > 0 && row->n_eff_diag[j] <= (double)row->n_params);
        }
        CHECK(row->seconds >= row->seconds_train && row->seconds_train > 0);
        CHECK(row->seconds_lanczos > 0 && row->seconds_slq > 0 &&
              row->seconds_lanczos + row->seconds_slq <= row->seconds_curvature);
        effdim_mlp_ws_free(ws);
        effdim_checkpoint_free(ck);
    }
    effdim_dataset_free(train);
    effdim_dataset_free(test);
    effdim_sweep_table_free(t);
    effdim_sweep_config_free(c);
}

static void a_rerun_skips_finished_rows_and_ends_as_one_run_would(void)
{
    effdim_blas_set_threads(1);
    effdim_sweep_config *c = parse_ok(small_json);
    if (!c) return;
    effdim_sweep_params p = effdim_sweep_default_params();
    effdim_sweep_table *full = run_to(c, "full.h5", p, EFFDIM_OK);
    p.limit = 1;
    effdim_sweep_table *one = run_to(c, "resumed.h5", p, EFFDIM_OK);
    CHECK(one && one->n_rows == 1);
    p.limit = 0;
    effdim_sweep_result res;
    effdim_error e;
    CHECK_OK(effdim_sweep_run(c, check_tmpfile("resumed.h5"), &p, &res, &e), &e);
    CHECK(res.total == 4 && res.skipped == 1 && res.ran == 3);
    effdim_sweep_table *t = NULL;
    CHECK_OK(effdim_sweep_table_load(check_tmpfile("resumed.h5"), &t, &e), &e);
    int same = t && full && t->n_rows == 4;
    for (int64_t i = 0; same && i < 4; ++i)
        same &= same_numbers(find_row(t, i), find_row(full, i), 2, 4);
    CHECK(same);
    CHECK_OK(effdim_sweep_run(c, check_tmpfile("resumed.h5"), &p, &res, &e), &e);
    CHECK(res.skipped == 4 && res.ran == 0);
    /* another config into the same file is refused */
    effdim_sweep_config *other = parse_ok("{\"data\": \"spirals:n=120,seed=3\", \"widths\": [3]}");
    if (other) {
        CHECK_STATUS(effdim_sweep_run(other, check_tmpfile("resumed.h5"), &p, &res, &e),
                     EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "resumed.h5", "another config");
    }
    p.shard_index = 1, p.shard_count = 2;
    CHECK_STATUS(effdim_sweep_run(c, check_tmpfile("resumed.h5"), &p, &res, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "resumed.h5", "shard 0/1");
    effdim_sweep_config_free(other);
    effdim_sweep_table_free(t);
    effdim_sweep_table_free(one);
    effdim_sweep_table_free(full);
    effdim_sweep_config_free(c);
}

static void shards_merge_into_the_whole_and_other_configs_are_refused(void)
{
    effdim_blas_set_threads(1);
    effdim_sweep_config *c = parse_ok(small_json);
    if (!c) return;
    effdim_sweep_params p = effdim_sweep_default_params();
    effdim_sweep_table *full = run_to(c, "whole.h5", p, EFFDIM_OK);
    p.shard_count = 3;
    p.shard_index = 0;
    effdim_sweep_table *s0 = run_to(c, "s0.h5", p, EFFDIM_OK);
    p.shard_index = 2;
    effdim_sweep_table *s2 = run_to(c, "s2.h5", p, EFFDIM_OK);
    p.shard_index = 1;
    effdim_sweep_table *s1 = run_to(c, "s1.h5", p, EFFDIM_OK);
    CHECK(s0 && s0->n_rows == 2 && s1 && s1->n_rows == 1 && s2 && s2->n_rows == 1);
    CHECK(s0 && s0->rows[0].index == 0 && s0->rows[1].index == 3 && s0->shard_count == 3);
    const char *in[3];
    char b0[4096], b1[4096], b2[4096];
    snprintf(b0, sizeof b0, "%s", check_tmpfile("s2.h5"));
    snprintf(b1, sizeof b1, "%s", check_tmpfile("s0.h5"));
    snprintf(b2, sizeof b2, "%s", check_tmpfile("s1.h5"));
    in[0] = b0, in[1] = b1, in[2] = b2;
    effdim_error e;
    CHECK_OK(effdim_sweep_merge(in, 3, check_tmpfile("all.h5"), &e), &e);
    effdim_sweep_table *all = NULL;
    CHECK_OK(effdim_sweep_table_load(check_tmpfile("all.h5"), &all, &e), &e);
    int same = all && full && all->n_rows == 4 && all->shard_count == 1;
    for (size_t i = 0; same && i < 4; ++i)
        same &= all->rows[i].index == (int64_t)i && same_numbers(&all->rows[i], find_row(full, (int64_t)i), 2, 4);
    CHECK(same);
    effdim_sweep_config *other = parse_ok("{\"data\": \"spirals:n=120,seed=3\", \"widths\": [3],"
                                          " \"train\": {\"epochs\": 1}, \"curvature\": {\"k\": 2, \"slq\": false}}");
    if (other) {
        effdim_sweep_params q = effdim_sweep_default_params();
        effdim_sweep_table_free(run_to(other, "other.h5", q, EFFDIM_OK));
        char bo[4096];
        snprintf(bo, sizeof bo, "%s", check_tmpfile("other.h5"));
        in[1] = bo;
        CHECK_STATUS(effdim_sweep_merge(in, 2, check_tmpfile("bad.h5"), &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "other.h5", "another config");
        CHECK(access(check_tmpfile("bad.h5"), F_OK) != 0);
    }
    effdim_sweep_config_free(other);
    effdim_sweep_table_free(all);
    effdim_sweep_table_free(s0);
    effdim_sweep_table_free(s1);
    effdim_sweep_table_free(s2);
    effdim_sweep_table_free(full);
    effdim_sweep_config_free(c);
}

static void worker_processes_give_the_rows_of_one_process(void)
{
    effdim_blas_set_threads(2);
    effdim_sweep_config *c = parse_ok(small_json);
    if (!c) return;
    effdim_sweep_params p = effdim_sweep_default_params();
    effdim_blas_set_threads(1);
    effdim_sweep_table *serial = run_to(c, "serial.h5", p, EFFDIM_OK);
    p.jobs = 2; /* each worker gets max(1, 1 / 2) = 1 thread: the same sums */
    effdim_sweep_table *par = run_to(c, "par.h5", p, EFFDIM_OK);
    int same = par && serial && par->n_rows == 4;
    for (int64_t i = 0; same && i < 4; ++i) same &= same_numbers(find_row(par, i), find_row(serial, i), 2, 4);
    CHECK(same);
    effdim_sweep_table_free(par);
    effdim_sweep_table_free(serial);
    effdim_sweep_config_free(c);
}

static void a_configuration_that_fails_is_a_row_with_its_message(void)
{
    effdim_blas_set_threads(1);
    /* mse on labels does not fit: the model step fails for every row, the sweep goes on */
    effdim_sweep_config *c = parse_ok("{\"data\": \"spirals:n=60\", \"widths\": [2, 3], \"loss\": \"mse\","
                                      " \"train\": {\"epochs\": 1}, \"curvature\": {\"k\": 2}}");
    if (!c) return;
    effdim_sweep_params p = effdim_sweep_default_params();
    effdim_sweep_result res;
    effdim_error e;
    CHECK_OK(effdim_sweep_run(c, check_tmpfile("failed.h5"), &p, &res, &e), &e);
    CHECK(res.ran == 2 && res.failed == 2);
    effdim_sweep_table *t = NULL;
    CHECK_OK(effdim_sweep_table_load(check_tmpfile("failed.h5"), &t, &e), &e);
    CHECK(t && t->n_rows == 2 && !strcmp(t->rows[1].status, "failed"));
    CHECK(t && strstr(t->rows[1].message, "model: ") == t->rows[1].message);
    CHECK(t && isnan(t->rows[1].test_loss));
    check_note("message: %s", t ? t->rows[1].message : "");
    effdim_sweep_table_free(t);
    effdim_sweep_config_free(c);
    /* a Lanczos run that cannot converge in its products is a partial row */
    c = parse_ok("{\"data\": \"spirals:n=60\", \"widths\": [6], \"train\": {\"epochs\": 1},"
                 " \"curvature\": {\"k\": 5, \"max_matvecs\": 6, \"tol\": 1e-12, \"slq\": false}}");
    if (!c) return;
    CHECK_OK(effdim_sweep_run(c, check_tmpfile("partial.h5"), &p, &res, &e), &e);
    CHECK(res.partial == 1);
    CHECK_OK(effdim_sweep_table_load(check_tmpfile("partial.h5"), &t, &e), &e);
    CHECK(t && !strcmp(t->rows[0].status, "partial") && t->rows[0].nconv < 5);
    CHECK(t && strstr(t->rows[0].message, "eigenpairs met tol") != NULL);
    CHECK(t && isnan(t->rows[0].n_eff_slq[0]));
    effdim_sweep_table_free(t);
    effdim_sweep_config_free(c);
}

/* A hand-made table: one series (depth 1) of widths 1..5 x seeds 1, 2 plus a
 * failed row, and a second series (depth 2) of one row. */
static void fill_row(effdim_sweep_row *r, int64_t width, int64_t depth, int64_t seed, int64_t params,
                     double train_err, double test_loss, double ritz, double slq, const char *status)
{
    memset(r, 0, sizeof *r);
    r->index = width + 10 * seed + 100 * depth, r->width = width, r->depth = depth, r->seed = seed;
    r->label_noise = NAN, r->n_train = 50, r->n_params = params;
    r->train_loss = test_loss / 2, r->train_error = train_err, r->test_loss = test_loss;
    r->test_error = 0.5, r->n_eff_ritz[0] = ritz, r->n_eff_slq[0] = slq;
    snprintf(r->status, sizeof r->status, "%s", status);
}

static void correlations_past_the_peak_match_rankings_by_hand(void)
{
    effdim_sweep_row rows[16];
    size_t n = 0;
    /* width, seed, n_params, train error, test loss, N_eff Ritz, N_eff SLQ */
    fill_row(&rows[n++], 1, 1, 1, 10, 0.3, 1.0, 1, 0, "ok");
    fill_row(&rows[n++], 1, 1, 2, 10, 0.3, 1.1, 2, 0, "ok");
    fill_row(&rows[n++], 2, 1, 1, 20, 0.3, 1.2, 3, 0, "ok");
    fill_row(&rows[n++], 2, 1, 2, 20, 0.3, 1.3, 4, 0, "ok");
    fill_row(&rows[n++], 3, 1, 1, 30, 0.0, 2.0, 10, 1, "ok");
    fill_row(&rows[n++], 3, 1, 2, 30, 0.01, 2.2, 12, 2, "partial");
    fill_row(&rows[n++], 4, 1, 1, 40, 0.0, 1.8, 9, 3, "ok");
    fill_row(&rows[n++], 4, 1, 2, 40, 0.0, 1.6, 11, 4, "ok");
    fill_row(&rows[n++], 5, 1, 1, 50, 0.0, 1.5, 7, 5, "ok");
    fill_row(&rows[n++], 5, 1, 2, 50, 0.0, 1.4, 8, NAN, "ok");
    fill_row(&rows[n++], 5, 1, 3, 50, 0.0, 100.0, 100, 100, "failed"); /* left out */
    fill_row(&rows[n++], 8, 2, 1, 99, 0.0, 1.0, 1, 1, "ok");
    /* depth 3: the largest test loss is at the smallest width, before the
     * classical minimum (width 2); the peak is the largest after it */
    fill_row(&rows[n++], 1, 3, 1, 5, 0.5, 3.0, 1, 1, "ok");
    fill_row(&rows[n++], 2, 3, 1, 6, 0.1, 1.0, 1, 1, "ok");
    fill_row(&rows[n++], 3, 3, 1, 7, 0.0, 2.0, 1, 1, "ok");
    fill_row(&rows[n++], 4, 3, 1, 8, 0.0, 1.5, 1, 1, "ok");
    effdim_sweep_table t;
    memset(&t, 0, sizeof t);
    t.nz = 1, t.z[0] = 1.0, t.k = 1, t.n_rows = n, t.rows = rows, t.grid_size = 1000;
    t.shard_count = 1;
    effdim_error e;
    effdim_sweep_agg *a = NULL;
    size_t na = 0;
    CHECK_OK(effdim_sweep_aggregate(&t, &a, &na, &e), &e);
    CHECK(na == 10 && a);
    if (a && na == 10) {
        CHECK(a[2].width == 3 && a[2].n == 2);
        CHECK_CLOSE(a[2].mean[EFFDIM_SWEEP_M_TEST_LOSS], 2.1, 1e-15);
        CHECK(a[2].lo[EFFDIM_SWEEP_M_TEST_LOSS] == 2.0 && a[2].hi[EFFDIM_SWEEP_M_TEST_LOSS] == 2.2);
        CHECK(a[4].width == 5 && a[4].n == 2); /* the failed row is not counted */
        CHECK(a[5].depth == 2 && a[5].width == 8);
        CHECK(isnan(a[4].mean[4 + 1])); /* the mean of SLQ over a NaN is NaN */
    }
    free(a);
    effdim_sweep_corr *c = NULL;
    size_t nc = 0;
    CHECK_OK(effdim_sweep_correlations(&t, 0, &c, &nc, &e), &e);
    CHECK(nc == 3 && c);
    if (c && nc == 3) {
        /* peak: the mean test losses 1.05, 1.25, 2.1, 1.7, 1.45 */
        CHECK(c[0].peak_width == 3 && c[0].peak_params == 30 && c[0].from_width == 3);
        CHECK_CLOSE(c[0].peak_test_loss, 2.1, 1e-15);
        CHECK(c[0].interp_width == 4); /* width 3 has a seed with train error 0.01 */
        CHECK(c[0].n_rows == 6 && c[0].n_widths == 3);
        /* test loss 2.0 2.2 1.8 1.6 1.5 1.4 ranks 5 6 4 3 2 1; n_params 30 30 40 40
         * 50 50 ranks 1.5 1.5 3.5 3.5 5.5 5.5: rho = -16 / sqrt(17.5 * 16) */
        CHECK_CLOSE(c[0].rho_params, -16.0 / sqrt(17.5 * 16.0), 1e-14);
        /* Ritz 10 12 9 11 7 8 ranks 4 6 3 5 1 2: rho = 13.5 / 17.5 */
        CHECK_CLOSE(c[0].rho_ritz[0], 13.5 / 17.5, 1e-14);
        /* SLQ over the five finite pairs: ranks 4 5 3 2 1 against 1 2 3 4 5,
         * sum d^2 = 38: rho = 1 - 6 * 38 / (5 * 24) */
        CHECK_CLOSE(c[0].rho_slq[0], 1.0 - 6.0 * 38.0 / 120.0, 1e-14);
        CHECK(isnan(c[0].rho_ritz[1])); /* past nz */
        CHECK(c[1].depth == 2 && c[1].n_rows == 1 && isnan(c[1].rho_params));
        CHECK(c[2].depth == 3 && c[2].interp_width == 3 && c[2].peak_width == 3 && c[2].n_rows == 2);
        CHECK_CLOSE(c[2].peak_test_loss, 2.0, 1e-15);
    }
    free(c);
    /* from width 4: loss 1.8 1.6 1.5 1.4 against n_params 40 40 50 50 */
    CHECK_OK(effdim_sweep_correlations(&t, 4, &c, &nc, &e), &e);
    if (c && nc == 3) {
        CHECK(c[0].from_width == 4 && c[0].n_rows == 4 && c[0].peak_width == 3);
        CHECK_CLOSE(c[0].rho_params, -4.0 / sqrt(20.0), 1e-14);
    }
    free(c);
}

static void inspect_summarises_a_sweep_file_by_status(void)
{
    effdim_blas_set_threads(1);
    effdim_sweep_config *c = parse_ok(small_json);
    if (!c) return;
    effdim_sweep_params p = effdim_sweep_default_params();
    p.limit = 3;
    effdim_sweep_table *t = run_to(c, "three.h5", p, EFFDIM_OK);
    effdim_error e;
    effdim_sweep_summary *s = NULL;
    CHECK_OK(effdim_inspect_sweep(check_tmpfile("three.h5"), &s, &e), &e);
    if (s && t) {
        CHECK(s->n_ok == 3 && s->n_partial == 0 && s->n_failed == 0 && s->n_missing == 1);
        CHECK(s->shard_total == 4 && s->table->n_rows == 3);
        for (size_t i = 0; i < s->table->n_rows; ++i) {
            CHECK(s->table->rows[i].index == (int64_t)i); /* sorted by index */
            CHECK(same_numbers(&s->table->rows[i], find_row(t, (int64_t)i), 2, 4));
        }
        check_note("config text:\n%s", s->config_text);
        CHECK(strstr(s->config_text, "data        spirals:n=120,seed=3\n") == s->config_text);
        CHECK(strstr(s->config_text, "grid        2 widths [3, 6] x 2 depths [1, 2] x 1 seed [5] = 4 configurations\n"));
        CHECK(strstr(s->config_text, "training    adam, lr 0.02, batch 40, 6 epochs\n"));
        CHECK(strstr(s->config_text, "top 4,") && strstr(s->config_text, "z [0.05, 0.5]") &&
              strstr(s->config_text, "GGN diagonal"));
    }
    effdim_sweep_summary_free(s);
    effdim_sweep_table_free(t);
    effdim_sweep_config_free(c);
    /* the failed and partial rows of the runs above are counted as such */
    s = NULL;
    CHECK_OK(effdim_inspect_sweep(check_tmpfile("failed.h5"), &s, &e), &e);
    CHECK(s && s->n_failed == 2 && s->n_ok == 0 && s->n_missing == 0);
    effdim_sweep_summary_free(s);
    s = NULL;
    CHECK_OK(effdim_inspect_sweep(check_tmpfile("partial.h5"), &s, &e), &e);
    CHECK(s && s->n_partial == 1 && s->n_ok == 0);
    effdim_sweep_summary_free(s);
    s = NULL;
    CHECK_STATUS(effdim_inspect_sweep(check_tmpfile("no-such.h5"), &s, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "no-such.h5");
    CHECK(s == NULL);
}

static void files_that_are_not_sweeps_are_refused_naming_them(void)
{
    effdim_error e;
    effdim_sweep_table *t = NULL;
    CHECK_STATUS(effdim_sweep_table_load(check_tmpfile("none.h5"), &t, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "none.h5");
    effdim_mlp m;
    size_t sizes[2] = {2, 2};
    effdim_activation act[1] = {EFFDIM_ACT_IDENTITY};
    CHECK_OK(effdim_mlp_init(&m, 1, sizes, act, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &e), &e);
    effdim_checkpoint *ck = NULL;
    CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &ck, &e), &e);
    CHECK_OK(effdim_checkpoint_save(ck, check_tmpfile("ckpt.h5"), &e), &e);
    effdim_checkpoint_free(ck);
    CHECK_STATUS(effdim_sweep_table_load(check_tmpfile("ckpt.h5"), &t, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "ckpt.h5", "not an effdim.sweep file");
    CHECK(t == NULL);
}

typedef struct seen_events {
    size_t n, sweep_events, last_done, eta_positive, stages_train, stages_lanczos, backwards;
    char first_detail[256];
} seen_events;

static int collect(void *ctx, const effdim_progress_event *ev)
{
    seen_events *s = ctx;
    s->n++;
    if (strcmp(ev->stage, "sweep")) return 0;
    if (s->sweep_events++ == 0) snprintf(s->first_detail, sizeof s->first_detail, "%s", ev->detail);
    if (ev->done < s->last_done || ev->total != 4) s->backwards++;
    s->last_done = ev->done;
    s->eta_positive += ev->eta > 0;
    s->stages_train += strstr(ev->detail, "  epoch ") != NULL;
    s->stages_lanczos += strstr(ev->detail, "  lanczos") != NULL;
    return 0;
}

static int stop_after_first_row(void *ctx, const effdim_progress_event *ev)
{
    (void)ctx;
    return !strcmp(ev->stage, "sweep") && ev->done >= 1;
}

static void progress_names_the_configuration_its_stage_and_the_time_left(void)
{
    effdim_blas_set_threads(1);
    effdim_sweep_config *c = parse_ok(small_json);
    if (!c) return;
    seen_events s;
    memset(&s, 0, sizeof s);
    effdim_sweep_params p = effdim_sweep_default_params();
    p.progress.fn = collect;
    p.progress.ctx = &s;
    effdim_sweep_table_free(run_to(c, "progress.h5", p, EFFDIM_OK));
    check_note("%zu sweep events; first: %s", s.sweep_events, s.first_detail);
    CHECK(s.sweep_events > 8 && s.backwards == 0 && s.last_done == 4);
    CHECK(strstr(s.first_detail, "config 1/4 (width 3 depth 1 seed 5)") == s.first_detail);
    CHECK(s.stages_train > 0 && s.stages_lanczos > 0 && s.eta_positive > 0);
    /* a callback answering non-zero stops the sweep with the finished rows kept */
    p.progress.fn = stop_after_first_row;
    effdim_sweep_table *t = run_to(c, "stopped.h5", p, EFFDIM_EMAXITER);
    CHECK(t && t->n_rows == 1);
    effdim_sweep_table_free(t);
    effdim_sweep_config_free(c);
}

CHECK_TESTS({"progress names the configuration, its stage and the time left",
             progress_names_the_configuration_its_stage_and_the_time_left},
            {"a config with only data takes the documented defaults",
             a_config_with_only_data_takes_the_documented_defaults},
            {"unknown keys and wrong types name the key and the file",
             unknown_keys_and_wrong_types_name_the_key_and_the_file},
            {"the grid runs width fastest, then depth, seed, noise and size",
             the_grid_runs_width_fastest_then_depth_seed_noise_and_size},
            {"each row agrees with the jobs run on its kept checkpoint",
             each_row_agrees_with_the_jobs_run_on_its_kept_checkpoint},
            {"a rerun skips finished rows and ends as one run would",
             a_rerun_skips_finished_rows_and_ends_as_one_run_would},
            {"shards merge into the whole and other configs are refused",
             shards_merge_into_the_whole_and_other_configs_are_refused},
            {"worker processes give the rows of one process",
             worker_processes_give_the_rows_of_one_process},
            {"a configuration that fails is a row with its message",
             a_configuration_that_fails_is_a_row_with_its_message},
            {"files that are not sweeps are refused naming them",
             files_that_are_not_sweeps_are_refused_naming_them},
            {"correlations past the peak match rankings by hand",
             correlations_past_the_peak_match_rankings_by_hand},
            {"inspect summarises a sweep file by status",
             inspect_summarises_a_sweep_file_by_status})
