/* tests/test_data_share.c: one rank's share of a data spec
 * (effdim_dataset_from_spec_share) against the oracle: loading the whole spec
 * and keeping rows [r n / R, (r + 1) n / R). For R = 1, 2, 3, 7 and every r,
 * X, the labels or Y, n, d and k must be bitwise equal, and n_total the whole
 * n. Specs: fashion-mnist (first rows, a random subset with label noise, the
 * test part), an h5 file written here (labels and real targets, first rows
 * and random), standardize=1 and spirals (the whole-set fallbacks). Also:
 * the label-noise share function over [0, n) against the whole-set
 * algorithm written out here, and fewer rows than ranks.
 */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "effdim/comm.h"
#include "effdim/data.h"
#include "testnet.h"

static int same_share(const effdim_dataset *all, const effdim_dataset *sh, size_t b, size_t e)
{
    if (!sh || sh->n != e - b || sh->d != all->d || sh->k != all->k || sh->kind != all->kind)
        return 0;
    if (memcmp(sh->X, all->X + b * all->d, (e - b) * all->d * sizeof *sh->X)) return 0;
    if (all->labels && memcmp(sh->labels, all->labels + b, (e - b) * sizeof *sh->labels)) return 0;
    if (all->Y && memcmp(sh->Y, all->Y + b * all->k, (e - b) * all->k * sizeof *sh->Y)) return 0;
    return sh->spec && !strcmp(sh->spec, all->spec);
}

/* every share of spec for R = 1, 2, 3, 7 equals the rows of the whole load */
static void check_spec(const char *spec)
{
    effdim_error e;
    effdim_dataset *all = NULL;
    if (!CHECK_OK(effdim_dataset_from_spec(spec, &all, &e), &e)) return;
    static const int Rs[] = {1, 2, 3, 7};
    for (size_t i = 0; i < sizeof Rs / sizeof Rs[0]; ++i)
        for (int r = 0; r < Rs[i]; ++r) {
            effdim_dataset *sh = NULL;
            size_t n_total = 0, b, en;
            effdim_comm_share(all->n, Rs[i], r, &b, &en);
            if (!CHECK_OK(effdim_dataset_from_spec_share(spec, Rs[i], r, &sh, &n_total, &e), &e))
                continue;
            if (!CHECK(n_total == all->n && same_share(all, sh, b, en)))
                check_note("%s: rank %d of %d", spec, r, Rs[i]);
            effdim_dataset_free(sh);
        }
    effdim_dataset_free(all);
}

static int have_fashion(void)
{
    struct stat sb;
    const char *dir = getenv("EFFDIM_FASHION_MNIST_DIR");
    if (!dir || !*dir) dir = EFFDIM_FASHION_MNIST_DIR;
    if (stat(dir, &sb) == 0) return 1;
    check_note("%s is missing: install Debian's dataset-fashion-mnist", dir);
    CHECK(!"Fashion-MNIST is installed");
    return 0;
}

static void fashion_mnist_shares_equal_the_whole_load(void)
{
    if (!have_fashion()) return;
    check_spec("fashion-mnist:train:n=1000");
    check_spec("fashion-mnist:train:n=1000,subset=random,subset_seed=3,label_noise=0.2,noise_seed=5");
    check_spec("fashion-mnist:train:n=500,scale=none");
    check_spec("fashion-mnist:test");
}

static void h5_shares_equal_the_whole_load(void)
{
    effdim_error e;
    char spec[4200];
    const char *lab = check_tmpfile("share-labels.h5"), *real = check_tmpfile("share-real.h5");
    effdim_dataset *a = testnet_data(101, 4, 5, EFFDIM_TARGET_LABELS, 3);
    effdim_dataset *b = testnet_data(97, 3, 2, EFFDIM_TARGET_REAL, 4);
    if (!CHECK(a && b)) return;
    a->labels[100] = 4; /* k from every selected row: the last share holds the largest label */
    for (size_t i = 0; i < 100; ++i) a->labels[i] %= 3;
    CHECK_OK(effdim_save_h5(a, lab, &e), &e);
    CHECK_OK(effdim_save_h5(b, real, &e), &e);
    const char *opts[] = {"", ",n=90", ",n=40,subset=random,subset_seed=2",
                          ",label_noise=0.3,noise_seed=9", ",standardize=1"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; ++i) {
        snprintf(spec, sizeof spec, "h5:%s%s", lab, opts[i]);
        check_spec(spec);
        if (strstr(opts[i], "label_noise")) continue;
        snprintf(spec, sizeof spec, "h5:%s%s", real, opts[i]);
        check_spec(spec);
    }
    /* k of a share that lacks the largest label is the whole selection's */
    snprintf(spec, sizeof spec, "h5:%s", lab);
    effdim_dataset *sh = NULL;
    if (CHECK_OK(effdim_dataset_from_spec_share(spec, 3, 0, &sh, NULL, &e), &e)) CHECK(sh->k == 5);
    effdim_dataset_free(sh);
    effdim_dataset_free(a);
    effdim_dataset_free(b);
}

static void fallback_specs_equal_the_whole_load(void)
{
    check_spec("spirals:n=200,seed=3");
    check_spec("spirals:n=100,label_noise=0.25,noise_seed=2");
    check_spec("gmm:n=50,d=3,classes=3,seed=1,standardize=1");
    if (have_fashion()) check_spec("fashion-mnist:train:n=300,standardize=1");
}

static void fewer_rows_than_ranks_is_the_comm_message(void)
{
    effdim_error e;
    effdim_dataset *ds = NULL;
    CHECK_STATUS(effdim_dataset_from_spec_share("spirals:n=2", 3, 1, &ds, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "spirals:n=2: 2 rows for 3 ranks: every rank needs at least one row");
    CHECK(ds == NULL);
    if (have_fashion()) {
        CHECK_STATUS(effdim_dataset_from_spec_share("fashion-mnist:train:n=2", 3, 0, &ds, NULL, &e),
                     EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "fashion-mnist:train:n=2: 2 rows for 3 ranks");
    }
    const char *path = check_tmpfile("share-few.h5");
    effdim_dataset *a = testnet_data(2, 2, 2, EFFDIM_TARGET_LABELS, 1);
    char spec[4200];
    snprintf(spec, sizeof spec, "h5:%s", path);
    CHECK_OK(effdim_save_h5(a, path, &e), &e);
    CHECK_STATUS(effdim_dataset_from_spec_share(spec, 7, 6, &ds, NULL, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "2 rows for 7 ranks");
    CHECK_STATUS(effdim_dataset_from_spec_share(spec, 2, 2, &ds, NULL, &e), EFFDIM_EINVAL, &e);
    effdim_dataset_free(a);
}

/* the whole-set algorithm as it was before shares: choose m rows, then one
 * class draw per chosen row */
static void label_noise_oracle(int32_t *labels, size_t n, size_t k, double f, uint64_t seed)
{
    size_t m = (size_t)llround(f * (double)n), taken = 0;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, (unsigned long)seed);
    size_t *rows = malloc((m ? m : 1) * sizeof *rows);
    for (size_t i = 0; i < n && taken < m; ++i)
        if ((double)(n - i) * gsl_rng_uniform(r) < (double)(m - taken)) rows[taken++] = i;
    for (size_t j = 0; j < m; ++j) {
        int32_t c = (int32_t)gsl_rng_uniform_int(r, (unsigned long)(k - 1));
        labels[rows[j]] = c >= labels[rows[j]] ? c + 1 : c;
    }
    free(rows);
    gsl_rng_free(r);
}

static void label_noise_share_matches_the_whole_set_algorithm(void)
{
    effdim_error e;
    const double fr[] = {0.0, 0.1, 0.5, 1.0};
    for (size_t t = 0; t < 4; ++t) {
        effdim_dataset *ds = testnet_data(203, 2, 7, EFFDIM_TARGET_LABELS, 8);
        int32_t *want = malloc(ds->n * sizeof *want);
        memcpy(want, ds->labels, ds->n * sizeof *want);
        label_noise_oracle(want, ds->n, ds->k, fr[t], 77);
        effdim_dataset *whole = NULL;
        CHECK_OK(effdim_dataset_copy(ds, &whole, &e), &e);
        size_t changed = 0;
        CHECK_OK(effdim_dataset_label_noise_share(ds, ds->n, 0, fr[t], 77, &changed, &e), &e);
        CHECK(!memcmp(ds->labels, want, ds->n * sizeof *want));
        CHECK(changed == (size_t)llround(fr[t] * 203.0));
        CHECK_OK(effdim_dataset_label_noise(whole, fr[t], 77, NULL, &e), &e);
        CHECK(!memcmp(whole->labels, want, ds->n * sizeof *want));
        effdim_dataset_free(whole);
        free(want);
        effdim_dataset_free(ds);
    }
    effdim_dataset *ds = testnet_data(10, 2, 3, EFFDIM_TARGET_LABELS, 8);
    CHECK_STATUS(effdim_dataset_label_noise_share(ds, 12, 3, 0.5, 1, NULL, &e), EFFDIM_EINVAL, &e);
    effdim_dataset_free(ds);
}

CHECK_TESTS({"fashion-mnist shares equal the whole load", fashion_mnist_shares_equal_the_whole_load},
            {"h5 shares equal the whole load", h5_shares_equal_the_whole_load},
            {"fallback specs equal the whole load", fallback_specs_equal_the_whole_load},
            {"fewer rows than ranks is the comm message", fewer_rows_than_ranks_is_the_comm_message},
            {"label noise share matches the whole-set algorithm",
             label_noise_share_matches_the_whole_set_algorithm})
