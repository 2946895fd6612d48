/* tests/test_data_uci.c: the UCI regression sets read from python3-sklearn's
 * files (lib/data_uci.c) and their data specs.
 *
 * Oracles: hand-made files in sklearn's two layouts (Boston: a counts line,
 * a header, comma-separated rows; diabetes: gzip, whitespace, the target in
 * a second file) with values checked entry by entry; the split sizes and the
 * training part's standardisation (mean 0, sd 1 per column) with the test
 * part transformed by the SAME statistics, recomputed here from the raw
 * rows; the missing package and malformed files, with their messages. When
 * Debian's python3-sklearn is installed, the real files' shapes and first
 * row as well.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "effdim/data.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void write_gz(const char *path, const char *text)
{
    gzFile g = gzopen(path, "wb");
    gzputs(g, text);
    gzclose(g);
}

static char dir[512];

/* 20 Boston-shaped rows: feature j of row i = i + 0.1 j, target 10 + i */
static void fake_files(void)
{
    snprintf(dir, sizeof dir, "%s", check_tmpdir());
    char path[600], *buf = malloc(20000), *p = buf;
    p += sprintf(p, "20,13,,,,,,,,,,,,\n\"CRIM\",\"ZN\",\"INDUS\",\"CHAS\",\"NOX\",\"RM\",\"AGE\","
                    "\"DIS\",\"RAD\",\"TAX\",\"PTRATIO\",\"B\",\"LSTAT\",\"MEDV\"\n");
    for (int i = 0; i < 20; ++i) {
        for (int j = 0; j < 13; ++j) p += sprintf(p, "%g,", i + 0.1 * j + (j == 3 ? i * i : 0));
        p += sprintf(p, "%d\n", 10 + i);
    }
    snprintf(path, sizeof path, "%s/boston_house_prices.csv", dir);
    write_text(path, buf);
    p = buf;
    for (int i = 0; i < 10; ++i) {
        for (int j = 0; j < 10; ++j) p += sprintf(p, "%g ", 2.0 * i - j + (j == 2 ? i * i : 0));
        p += sprintf(p, "\n");
    }
    snprintf(path, sizeof path, "%s/diabetes_data_raw.csv.gz", dir);
    write_gz(path, buf);
    p = buf;
    for (int i = 0; i < 10; ++i) p += sprintf(p, "%.18e\n", 100.0 + 3 * i);
    snprintf(path, sizeof path, "%s/diabetes_target.csv.gz", dir);
    write_gz(path, buf);
    free(buf);
    setenv("EFFDIM_SKLEARN_DATA_DIR", dir, 1);
}

/* row r's target in original units (the raw row index + 10 for fake_files) */
static double orig_y(const effdim_dataset *ds, size_t r)
{
    return ds->y_mean ? ds->y_mean[0] + ds->y_sd[0] * ds->Y[r] : ds->Y[r];
}

static void boston_split_is_standardised_by_the_training_part(void)
{
    fake_files();
    effdim_dataset *tr = NULL, *te = NULL;
    effdim_error err;
    if (!CHECK_OK(effdim_dataset_from_spec("boston:part=train,split=4", &tr, &err), &err)) return;
    if (!CHECK_OK(effdim_dataset_from_spec("boston:part=test,split=4", &te, &err), &err)) return;
    CHECK(tr->n == 18 && te->n == 2 && tr->d == 13 && tr->kind == EFFDIM_TARGET_REAL);
    /* targets in original units identify the raw rows: row i has target 10 + i */
    double mean[13] = {0}, var[13] = {0};
    for (size_t r = 0; r < tr->n; ++r) {
        int i = (int)lround(orig_y(tr, r)) - 10;
        CHECK(i >= 0 && i < 20);
        for (int j = 0; j < 13; ++j) mean[j] += i + 0.1 * j + (j == 3 ? i * i : 0);
    }
    for (int j = 0; j < 13; ++j) mean[j] /= (double)tr->n;
    for (size_t r = 0; r < tr->n; ++r) {
        int i = (int)lround(orig_y(tr, r)) - 10;
        for (int j = 0; j < 13; ++j) {
            double d = i + 0.1 * j + (j == 3 ? i * i : 0) - mean[j];
            var[j] += d * d / (double)tr->n;
        }
    }
    double worst = 0.0;
    for (size_t r = 0; r < tr->n + te->n; ++r) {
        const effdim_dataset *ds = r < tr->n ? tr : te;
        size_t rr = r < tr->n ? r : r - tr->n;
        int i = (int)lround(orig_y(ds, rr)) - 10;
        for (int j = 0; j < 13; ++j) {
            double want = (i + 0.1 * j + (j == 3 ? i * i : 0) - mean[j]) / sqrt(var[j]);
            worst = fmax(worst, fabs(ds->X[rr * 13 + j] - want));
        }
    }
    CHECK(worst < 1e-12);
    /* another split seed, other test rows; the same seed, the same rows */
    effdim_dataset *te2 = NULL, *te3 = NULL;
    CHECK_OK(effdim_dataset_from_spec("boston:part=test,split=5", &te2, &err), &err);
    CHECK_OK(effdim_dataset_from_spec("boston:part=test,split=4", &te3, &err), &err);
    if (te2 && te3) {
        CHECK(te2->Y[0] != te->Y[0] || te2->Y[1] != te->Y[1]);
        CHECK(te3->Y[0] == te->Y[0] && te3->Y[1] == te->Y[1]);
    }
    effdim_dataset_free(te2);
    effdim_dataset_free(te3);
    effdim_dataset_free(tr);
    effdim_dataset_free(te);
}

static void targets_are_standardised_by_the_training_part_and_recorded(void)
{
    fake_files();
    effdim_dataset *tr = NULL, *te = NULL, *raw = NULL, *rawte = NULL;
    effdim_error err;
    if (!CHECK_OK(effdim_dataset_from_spec("boston:part=train,split=4", &tr, &err), &err) ||
        !CHECK_OK(effdim_dataset_from_spec("boston:part=test,split=4", &te, &err), &err) ||
        !CHECK_OK(effdim_dataset_from_spec("boston:part=train,split=4,standardize_targets=0",
                                           &raw, &err), &err) ||
        !CHECK_OK(effdim_dataset_from_spec("boston:part=test,split=4,standardize_targets=0",
                                           &rawte, &err), &err))
        goto done;
    /* the unstandardised parts hold the raw targets 10 + i and no statistics */
    CHECK(raw->y_mean == NULL && raw->y_sd == NULL && rawte->y_mean == NULL);
    double m = 0.0, q = 0.0;
    for (size_t r = 0; r < raw->n; ++r) {
        CHECK(raw->Y[r] == floor(raw->Y[r]) && raw->Y[r] >= 10 && raw->Y[r] < 30);
        m += raw->Y[r];
    }
    m /= (double)raw->n;
    for (size_t r = 0; r < raw->n; ++r) q += (raw->Y[r] - m) * (raw->Y[r] - m);
    double sd = sqrt(q / (double)raw->n);
    /* both parts carry the TRAINING part's mean and population sd */
    if (!CHECK(tr->y_mean && tr->y_sd && te->y_mean && te->y_sd)) goto done;
    CHECK_CLOSE(tr->y_mean[0], m, 1e-15);
    CHECK_CLOSE(tr->y_sd[0], sd, 1e-15);
    CHECK(te->y_mean[0] == tr->y_mean[0] && te->y_sd[0] == tr->y_sd[0]);
    for (size_t r = 0; r < tr->n; ++r) CHECK_NEAR(tr->Y[r], (raw->Y[r] - m) / sd, 1e-14);
    for (size_t r = 0; r < te->n; ++r) CHECK_NEAR(te->Y[r], (rawte->Y[r] - m) / sd, 1e-14);
    /* the training targets now have mean 0 and sd 1 */
    double m2 = 0.0, q2 = 0.0;
    for (size_t r = 0; r < tr->n; ++r) m2 += tr->Y[r] / (double)tr->n;
    for (size_t r = 0; r < tr->n; ++r) q2 += (tr->Y[r] - m2) * (tr->Y[r] - m2) / (double)tr->n;
    CHECK_NEAR(m2, 0.0, 1e-14);
    CHECK_CLOSE(q2, 1.0, 1e-13);
    /* a copy keeps the statistics; a second standardisation is refused */
    effdim_dataset *cp = NULL;
    if (CHECK_OK(effdim_dataset_copy(te, &cp, &err), &err))
        CHECK(cp->y_mean && cp->y_mean[0] == m && cp->y_sd[0] == te->y_sd[0]);
    effdim_dataset_free(cp);
    CHECK_STATUS(effdim_dataset_standardize_targets(tr, &m, &sd, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "already standardised");
    double zero = 0.0;
    CHECK_STATUS(effdim_dataset_standardize_targets(raw, &m, &zero, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "sd > 0");
    CHECK_STATUS(effdim_dataset_from_spec("boston:part=test,standardize_targets=yes", &cp, &err),
                 EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "standardize_targets", "0|1");
done:
    effdim_dataset_free(tr);
    effdim_dataset_free(te);
    effdim_dataset_free(raw);
    effdim_dataset_free(rawte);
}

/* fit and valid partition the training part (no test row), 14 + 4 of 18 */
static void fit_and_valid_partition_the_training_part(void)
{
    fake_files();
    effdim_dataset *tr = NULL, *te = NULL, *fit = NULL, *val = NULL;
    effdim_error err;
    if (!CHECK_OK(effdim_dataset_from_spec("boston:part=train,split=4", &tr, &err), &err) ||
        !CHECK_OK(effdim_dataset_from_spec("boston:part=test,split=4", &te, &err), &err) ||
        !CHECK_OK(effdim_dataset_from_spec("boston:part=fit,split=4", &fit, &err), &err) ||
        !CHECK_OK(effdim_dataset_from_spec("boston:part=valid,split=4", &val, &err), &err))
        goto done;
    CHECK(fit->n == 14 && val->n == 4);
    int seen[20] = {0};
    for (size_t r = 0; r < fit->n + val->n; ++r) {
        const effdim_dataset *ds = r < fit->n ? fit : val;
        int i = (int)lround(orig_y(ds, r < fit->n ? r : r - fit->n)) - 10;
        if (CHECK(i >= 0 && i < 20)) seen[i]++;
    }
    for (size_t r = 0; r < tr->n; ++r) CHECK(seen[lround(orig_y(tr, r)) - 10] == 1);
    for (size_t r = 0; r < te->n; ++r) CHECK(seen[lround(orig_y(te, r)) - 10] == 0);
    /* standardised by the fit part: its targets have mean 0 */
    double m = 0.0;
    for (size_t r = 0; r < fit->n; ++r) m += fit->Y[r] / (double)fit->n;
    CHECK_NEAR(m, 0.0, 1e-14);
    CHECK(val->y_mean && val->y_mean[0] == fit->y_mean[0] && val->y_sd[0] == fit->y_sd[0]);
done:
    effdim_dataset_free(tr);
    effdim_dataset_free(te);
    effdim_dataset_free(fit);
    effdim_dataset_free(val);
}

static void diabetes_reads_the_gzip_features_and_targets(void)
{
    fake_files();
    effdim_dataset *ds = NULL;
    effdim_error err;
    if (!CHECK_OK(effdim_dataset_from_spec("diabetes:standardize_targets=0", &ds, &err), &err))
        return;
    CHECK(ds->n == 10 && ds->d == 10);
    for (size_t i = 0; i < 10; ++i) CHECK(ds->Y[i] == 100.0 + 3.0 * (double)i);
    /* part=all: standardised over all rows; column 0 = 2i has mean 9, sd sqrt(33) */
    CHECK_CLOSE(ds->X[0], (0.0 - 9.0) / sqrt(33.0), 1e-14);
    CHECK_CLOSE(ds->X[9 * 10], (18.0 - 9.0) / sqrt(33.0), 1e-14);
    effdim_dataset_free(ds);
}

static void missing_package_and_bad_files_are_refused(void)
{
    effdim_dataset *ds = NULL;
    effdim_error err;
    setenv("EFFDIM_SKLEARN_DATA_DIR", "/nonexistent-sklearn", 1);
    CHECK_STATUS(effdim_dataset_from_spec("boston:part=train", &ds, &err), EFFDIM_ENOTFOUND, &err);
    CHECK_MSG(&err, "boston_house_prices.csv", "python3-sklearn");
    fake_files();
    CHECK_STATUS(effdim_dataset_from_spec("boston:part=validation", &ds, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "part");
    CHECK_STATUS(effdim_dataset_from_spec("boston:split=1,n=5", &ds, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "'n'");
    char path[600];
    snprintf(path, sizeof path, "%s/boston_house_prices.csv", dir);
    write_text(path, "2,13\nheader\n1,2,3\n");
    CHECK_STATUS(effdim_dataset_from_spec("boston", &ds, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "expected 14 per row");
    write_text(path, "2,13\nheader\n1,2,x3\n");
    CHECK_STATUS(effdim_dataset_from_spec("boston", &ds, &err), EFFDIM_EFORMAT, &err);
    CHECK_MSG(&err, "line 3", "not a number");
}

static void installed_sklearn_files_have_the_published_shapes(void)
{
    unsetenv("EFFDIM_SKLEARN_DATA_DIR");
    effdim_dataset *ds = NULL;
    effdim_error err;
    effdim_status st = effdim_dataset_from_spec("boston:part=train,split=0", &ds, &err);
    if (st == EFFDIM_ENOTFOUND) {
        check_note("python3-sklearn is not installed: %s", err.msg);
        CHECK_MSG(&err, "python3-sklearn");
        return;
    }
    CHECK_OK(st, &err);
    CHECK(ds && ds->n == 455 && ds->d == 13);
    effdim_dataset_free(ds);
    ds = NULL;
    CHECK_OK(effdim_dataset_from_spec("boston:standardize_targets=0", &ds, &err), &err);
    if (ds) CHECK(ds->n == 506 && ds->Y[0] == 24.0 && ds->Y[505] == 11.9);
    effdim_dataset_free(ds);
    ds = NULL;
    CHECK_OK(effdim_dataset_from_spec("diabetes:part=test,split=0", &ds, &err), &err);
    if (ds) CHECK(ds->n == 44 && ds->d == 10);
    effdim_dataset_free(ds);
}

CHECK_TESTS({"boston split is standardised by the training part",
             boston_split_is_standardised_by_the_training_part},
            {"targets are standardised by the training part and recorded",
             targets_are_standardised_by_the_training_part_and_recorded},
            {"fit and valid partition the training part", fit_and_valid_partition_the_training_part},
            {"diabetes reads the gzip features and targets", diabetes_reads_the_gzip_features_and_targets},
            {"missing package and bad files are refused", missing_package_and_bad_files_are_refused},
            {"installed sklearn files have the published shapes",
             installed_sklearn_files_have_the_published_shapes})
