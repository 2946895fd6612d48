/* lib/data_uci.c: the UCI regression sets Debian's python3-sklearn package
 * ships, with the 90/10 train/test protocol of Hernandez-Lobato and Adams
 * (ICML 2015): Boston housing and diabetes.
 *
 *   boston    sklearn/datasets/data/boston_house_prices.csv: line 1 the counts
 *             (506,13), line 2 the header, then 506 rows of 13 features and
 *             the target MEDV (median home value, k$); comma-separated.
 *   diabetes  diabetes_data_raw.csv.gz (442 rows, 10 whitespace-separated
 *             features, no header) and diabetes_target.csv.gz (the disease
 *             progression one year later, one value per line).
 *
 * A split seed S gives the rows of effdim_dataset_split (a seeded shuffle;
 * the last round(0.1 n) rows are the test part). Inputs are standardised
 * with the TRAINING part's mean and standard deviation, for both parts, and
 * so are the targets when standardize_targets (the protocol's default): both
 * parts then carry the training part's target mean and sd in y_mean, y_sd,
 * which effdim_predict uses to report every metric in the original units.
 * Parts 3 (fit) and 4 (valid) split the training part again, 80/20, by a
 * seed derived from S, for choosing hyperparameters without the test part;
 * they are standardised by the fit part's statistics.
 * The folder is EFFDIM_SKLEARN_DATA_DIR (environment) or
 * EFFDIM_SKLEARN_DATA_DEFAULT; a missing file is an ENOTFOUND naming the
 * package to install. This parser is separate from lib/data_csv.c because
 * neither file is a plain CSV with a header row.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "effdim/data.h"
#include "internal.h"

/* Every number of a (gzip or plain) text file after `skip` lines, separated
 * by commas or white space, into *out (malloc'ed), count into *n; the row
 * count (non-empty lines) into *rows. */
static effdim_status read_numbers(const char *path, size_t skip, double **out, size_t *n,
                                  size_t *rows, effdim_error *err)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return effdim_error_set(err, EFFDIM_ENOTFOUND,
                                "%s: not found: install Debian's python3-sklearn package "
                                "(apt-get install python3-sklearn) or set EFFDIM_SKLEARN_DATA_DIR",
                                path);
    size_t cap = 4096, cnt = 0, line = 0, nr = 0;
    double *v = effdim_alloc(cap, sizeof(double), "UCI data", err);
    char buf[4096];
    effdim_status st = v ? EFFDIM_OK : EFFDIM_ENOMEM;
    while (!st && gzgets(g, buf, sizeof buf)) {
        ++line;
        if (line <= skip) continue;
        char *p = buf;
        int any = 0;
        for (;;) {
            while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') ++p;
            if (!*p) break;
            char *end;
            errno = 0;
            double x = strtod(p, &end);
            if (end == p || errno == ERANGE || !isfinite(x)) {
                st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: line %zu: '%.16s' is not a number",
                                      path, line, p);
                break;
            }
            if (cnt == cap) {
                double *w = realloc(v, 2 * cap * sizeof(double));
                if (!w) {
                    st = effdim_error_set(err, EFFDIM_ENOMEM, "%s: out of memory", path);
                    break;
                }
                v = w;
                cap *= 2;
            }
            v[cnt++] = x;
            any = 1;
            p = end;
        }
        nr += (size_t)any;
    }
    gzclose(g);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    *n = cnt;
    *rows = nr;
    return EFFDIM_OK;
}

static const char *data_dir(void)
{
    const char *d = getenv("EFFDIM_SKLEARN_DATA_DIR");
    return d && *d ? d : EFFDIM_SKLEARN_DATA_DEFAULT;
}

static effdim_status load_all(const char *name, effdim_dataset **out, effdim_error *err)
{
    char path[4096], tpath[4096];
    double *x = NULL, *t = NULL;
    size_t nx = 0, rx = 0, nt = 0, rt = 0, d;
    effdim_status st;
    if (!strcmp(name, "boston")) {
        snprintf(path, sizeof path, "%s/boston_house_prices.csv", data_dir());
        st = read_numbers(path, 2, &x, &nx, &rx, err);
        d = 13;
        if (!st && (rx == 0 || nx != rx * (d + 1)))
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: %zu numbers in %zu rows, expected 14 per row", path, nx, rx);
    } else if (!strcmp(name, "diabetes")) {
        snprintf(path, sizeof path, "%s/diabetes_data_raw.csv.gz", data_dir());
        snprintf(tpath, sizeof tpath, "%s/diabetes_target.csv.gz", data_dir());
        d = 10;
        st = read_numbers(path, 0, &x, &nx, &rx, err);
        if (!st) st = read_numbers(tpath, 0, &t, &nt, &rt, err);
        if (!st && (rx == 0 || nx != rx * d || nt != rx))
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: %zu rows of %zu numbers and %zu targets, expected 10 "
                                  "features per row and one target each",
                                  path, rx, nx, nt);
    } else {
        return effdim_error_set(err, EFFDIM_EINVAL, "unknown UCI data set '%s' (boston, diabetes)",
                                name);
    }
    if (!st) st = effdim_dataset_alloc(rx, d, 1, EFFDIM_TARGET_REAL, out, err);
    for (size_t i = 0; !st && i < rx; ++i) {
        if (t) {
            memcpy((*out)->X + i * d, x + i * d, d * sizeof(double));
            (*out)->Y[i] = t[i];
        } else {
            memcpy((*out)->X + i * d, x + i * (d + 1), d * sizeof(double));
            (*out)->Y[i] = x[i * (d + 1) + d];
        }
    }
    free(x);
    free(t);
    return st;
}

/* Standardise ref's inputs (and targets when ystd) by its own statistics,
 * and other (may be NULL) by the same. */
static effdim_status standardize_by(effdim_dataset *ref, effdim_dataset *other, int ystd,
                                    effdim_error *err)
{
    size_t d = ref->d;
    double *mean = effdim_alloc(2 * d, sizeof(double), "UCI statistics", err);
    if (!mean) return EFFDIM_ENOMEM;
    double *sd = mean + d, ym, ys;
    effdim_status st = effdim_dataset_standardize(ref, mean, sd, err);
    if (!st && other) st = effdim_dataset_apply_standardize(other, mean, sd, err);
    if (!st && ystd) st = effdim_dataset_target_stats(ref, &ym, &ys, err);
    if (!st && ystd) st = effdim_dataset_standardize_targets(ref, &ym, &ys, err);
    if (!st && ystd && other) st = effdim_dataset_standardize_targets(other, &ym, &ys, err);
    free(mean);
    return st;
}

effdim_status effdim_load_uci(const char *name, int part, uint64_t split,
                              int standardize_targets, effdim_dataset **out, effdim_error *err)
{
    RETURN_ERROR_IF(!name || !out || part < 0 || part > 4, err, EFFDIM_EINVAL,
                    "UCI loader: bad arguments");
    *out = NULL;
    effdim_dataset *all = NULL, *a = NULL, *b = NULL;
    effdim_status st = load_all(name, &all, err);
    if (st) return st;
    if (part == 0) {
        a = all;
        all = NULL;
    } else {
        st = effdim_dataset_split(all, (size_t)llround(0.1 * (double)all->n), split, &a, &b, err);
        if (!st && part >= 3) {
            /* the inner split of the training part, by a seed of its own */
            effdim_dataset *train = a;
            effdim_dataset_free(b); /* the test part: not used here */
            a = b = NULL;
            effdim_dataset_free(all);
            all = train;
            st = effdim_dataset_split(train, (size_t)llround(0.2 * (double)train->n),
                                      split ^ UINT64_C(0x9e3779b97f4a7c15), &a, &b, err);
        }
    }
    if (!st) st = standardize_by(a, b, standardize_targets, err);
    if (!st) {
        effdim_dataset **keep = part == 2 || part == 4 ? &b : &a;
        *out = *keep;
        *keep = NULL;
    }
    effdim_dataset_free(all);
    effdim_dataset_free(a);
    effdim_dataset_free(b);
    return st;
}
