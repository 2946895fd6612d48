/* lib/data.c: the dataset type and its transforms.
 *
 * A dataset is X (n, d) row-major doubles plus integer labels (n) in [0, k)
 * or real targets Y (n, k). This file owns allocation, copying, validation
 * and the transforms every data spec can apply after loading:
 *   head, random subset (order kept), seeded train/test split,
 *   standardisation (population sd; constant columns centred only),
 *   scaling, label noise (a seeded fraction of labels moved to a uniformly
 *   random *other* class, as in the double-descent experiments of
 *   Nakkiran et al. 2019, Section 4).
 * Random subsets use Knuth's selection sampling (TAOCP vol. 2, 3.4.2,
 * Algorithm S); shuffles are GSL's gsl_ran_shuffle; every generator is a
 * gsl_rng_mt19937 seeded with the caller's seed.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "internal.h"

/* ---- allocation ---------------------------------------------------------- */

effdim_status effdim_dataset_alloc(size_t n, size_t d, size_t k, effdim_target_kind kind,
                                   effdim_dataset **out, effdim_error *err)
{
    size_t nd, nk;
    *out = NULL;
    RETURN_ERROR_IF(n == 0 || d == 0 || k == 0, err, EFFDIM_EINVAL,
                    "dataset shape n = %zu, d = %zu, k = %zu: every size must be at least 1", n, d, k);
    RETURN_ERROR_IF(kind != EFFDIM_TARGET_LABELS && kind != EFFDIM_TARGET_REAL, err, EFFDIM_EINVAL,
                    "dataset target kind %d: expected labels or real", (int)kind);
    RETURN_ERROR_IF(effdim_mul_size(n, d, &nd) || nd > EFFDIM_DATA_MAX_ELEMENTS, err, EFFDIM_ENOMEM,
                    "dataset shape (%zu, %zu): n*d exceeds the limit of %zu values", n, d,
                    (size_t)EFFDIM_DATA_MAX_ELEMENTS);
    RETURN_ERROR_IF(effdim_mul_size(n, k, &nk) || nk > EFFDIM_DATA_MAX_ELEMENTS, err, EFFDIM_ENOMEM,
                    "dataset targets (%zu, %zu): n*k exceeds the limit of %zu values", n, k,
                    (size_t)EFFDIM_DATA_MAX_ELEMENTS);
    effdim_dataset *ds = effdim_calloc(1, sizeof *ds, "dataset", err);
    if (!ds) return EFFDIM_ENOMEM;
    ds->n = n;
    ds->d = d;
    ds->k = k;
    ds->kind = kind;
    ds->X = effdim_calloc(nd, sizeof *ds->X, "dataset X", err);
    if (!ds->X) goto fail;
    if (kind == EFFDIM_TARGET_LABELS)
        ds->labels = effdim_calloc(n, sizeof *ds->labels, "dataset labels", err);
    else
        ds->Y = effdim_calloc(nk, sizeof *ds->Y, "dataset Y", err);
    if (!ds->labels && !ds->Y) goto fail;
    *out = ds;
    return EFFDIM_OK;
fail:
    effdim_dataset_free(ds);
    return EFFDIM_ENOMEM;
}

void effdim_dataset_free(effdim_dataset *ds)
{
    if (!ds) return;
    free(ds->X);
    free(ds->labels);
    free(ds->Y);
    free(ds->spec);
    free(ds->y_mean);
    free(ds->y_sd);
    free(ds);
}

/* The spec string and the target statistics of src into a new dst. */
static effdim_status copy_meta(const effdim_dataset *src, effdim_dataset *dst, effdim_error *err)
{
    if (src->spec && !(dst->spec = effdim_strdup(src->spec, err))) return EFFDIM_ENOMEM;
    if (src->y_mean) {
        dst->y_mean = effdim_alloc(src->k, sizeof(double), "target statistics", err);
        if (!dst->y_mean) return EFFDIM_ENOMEM;
        dst->y_sd = effdim_alloc(src->k, sizeof(double), "target statistics", err);
        if (!dst->y_sd) return EFFDIM_ENOMEM;
        memcpy(dst->y_mean, src->y_mean, src->k * sizeof(double));
        memcpy(dst->y_sd, src->y_sd, src->k * sizeof(double));
    }
    return EFFDIM_OK;
}

effdim_status effdim_dataset_copy(const effdim_dataset *src, effdim_dataset **out, effdim_error *err)
{
    effdim_dataset *ds;
    effdim_status st = effdim_dataset_alloc(src->n, src->d, src->k, src->kind, &ds, err);
    if (st) return st;
    memcpy(ds->X, src->X, src->n * src->d * sizeof *ds->X);
    if (src->labels) memcpy(ds->labels, src->labels, src->n * sizeof *ds->labels);
    if (src->Y) memcpy(ds->Y, src->Y, src->n * src->k * sizeof *ds->Y);
    if (copy_meta(src, ds, err)) {
        effdim_dataset_free(ds);
        return EFFDIM_ENOMEM;
    }
    *out = ds;
    return EFFDIM_OK;
}

/* ---- validation ---------------------------------------------------------- */

effdim_status effdim_data_check_finite(const double *a, size_t rows, size_t cols, size_t first,
                                       const char *what, const char *field, effdim_error *err)
{
    size_t bad;
    if (effdim_all_finite(a, rows * cols, &bad)) return EFFDIM_OK;
    return effdim_error_set(err, EFFDIM_EDOM, "%s: %s row %zu, column %zu: value %g is not finite",
                            what, field, first + bad / cols, bad % cols, a[bad]);
}

effdim_status effdim_dataset_validate(const effdim_dataset *ds, const char *what, effdim_error *err)
{
    if (!what) what = ds->spec ? ds->spec : "dataset";
    effdim_status st = effdim_data_check_finite(ds->X, ds->n, ds->d, 0, what, "X", err);
    if (st) return st;
    if (ds->kind == EFFDIM_TARGET_REAL) return effdim_data_check_finite(ds->Y, ds->n, ds->k, 0, what, "Y", err);
    for (size_t i = 0; i < ds->n; ++i)
        RETURN_ERROR_IF(ds->labels[i] < 0 || (size_t)ds->labels[i] >= ds->k, err, EFFDIM_EDOM,
                        "%s: label at row %zu is %d, expected 0 .. %zu", what, i,
                        (int)ds->labels[i], ds->k - 1);
    return EFFDIM_OK;
}

/* ---- row selection -------------------------------------------------------- */

gsl_rng *effdim_data_rng(uint64_t seed, effdim_error *err)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) {
        effdim_error_set(err, EFFDIM_ENOMEM, "cannot allocate a random number generator");
        return NULL;
    }
    gsl_rng_set(r, (unsigned long)seed);
    return r;
}

void effdim_data_choose_rows(gsl_rng *r, size_t n, size_t m, size_t *rows)
{
    /* Algorithm S: examine index i with (n - i) left; take it with
     * probability (m - taken) / (n - i). */
    size_t taken = 0;
    for (size_t i = 0; i < n && taken < m; ++i)
        if ((double)(n - i) * gsl_rng_uniform(r) < (double)(m - taken)) rows[taken++] = i;
}

/* shrink p to count elements of size bytes; keep p when realloc fails */
static void *shrink(void *p, size_t count, size_t size)
{
    size_t bytes = count * size;
    void *q = realloc(p, bytes > 0 ? bytes : 1);
    return q ? q : p;
}

effdim_status effdim_data_keep_rows(effdim_dataset *ds, const size_t *rows, size_t m,
                                    effdim_error *err)
{
    RETURN_ERROR_IF(m == 0, err, EFFDIM_EINVAL, "cannot keep 0 rows of a dataset");
    for (size_t j = 0; j < m; ++j) {
        size_t i = rows[j];
        RETURN_ERROR_IF(i >= ds->n || (j > 0 && i <= rows[j - 1]), err, EFFDIM_EINVAL,
                        "row selection must be increasing and below %zu", ds->n);
    }
    /* rows increase, so row i moves to j <= i and nothing is overwritten early */
    for (size_t j = 0; j < m; ++j) {
        size_t i = rows[j];
        if (i == j) continue;
        memmove(ds->X + j * ds->d, ds->X + i * ds->d, ds->d * sizeof *ds->X);
        if (ds->labels) ds->labels[j] = ds->labels[i];
        if (ds->Y) memmove(ds->Y + j * ds->k, ds->Y + i * ds->k, ds->k * sizeof *ds->Y);
    }
    ds->n = m;
    ds->X = shrink(ds->X, m * ds->d, sizeof *ds->X);
    if (ds->labels) ds->labels = shrink(ds->labels, m, sizeof *ds->labels);
    if (ds->Y) ds->Y = shrink(ds->Y, m * ds->k, sizeof *ds->Y);
    return EFFDIM_OK;
}

/* ---- transforms ------------------------------------------------------------ */

static effdim_status check_subset_size(const effdim_dataset *ds, size_t m, effdim_error *err)
{
    RETURN_ERROR_IF(m == 0 || m > ds->n, err, EFFDIM_EINVAL,
                    "%s: subset of %zu rows requested, expected 1 .. %zu",
                    ds->spec ? ds->spec : "dataset", m, ds->n);
    return EFFDIM_OK;
}

effdim_status effdim_data_keep_range(effdim_dataset *ds, size_t b, size_t e, effdim_error *err)
{
    RETURN_ERROR_IF(b >= e || e > ds->n, err, EFFDIM_EINVAL,
                    "%s: rows [%zu, %zu) requested, expected a non-empty range in [0, %zu)",
                    ds->spec ? ds->spec : "dataset", b, e, ds->n);
    size_t m = e - b;
    if (b) {
        memmove(ds->X, ds->X + b * ds->d, m * ds->d * sizeof *ds->X);
        if (ds->labels) memmove(ds->labels, ds->labels + b, m * sizeof *ds->labels);
        if (ds->Y) memmove(ds->Y, ds->Y + b * ds->k, m * ds->k * sizeof *ds->Y);
    }
    if (m == ds->n) return EFFDIM_OK;
    ds->n = m;
    ds->X = shrink(ds->X, m * ds->d, sizeof *ds->X);
    if (ds->labels) ds->labels = shrink(ds->labels, m, sizeof *ds->labels);
    if (ds->Y) ds->Y = shrink(ds->Y, m * ds->k, sizeof *ds->Y);
    return EFFDIM_OK;
}

effdim_status effdim_dataset_head(effdim_dataset *ds, size_t m, effdim_error *err)
{
    effdim_status st = check_subset_size(ds, m, err);
    return st ? st : effdim_data_keep_range(ds, 0, m, err);
}

effdim_status effdim_sample_rows(size_t n, size_t m, uint64_t seed, size_t *rows,
                                 effdim_error *err)
{
    RETURN_ERROR_IF(!rows, err, EFFDIM_EINVAL, "sample rows: NULL output");
    RETURN_ERROR_IF(m == 0 || m > n, err, EFFDIM_EINVAL,
                    "sample rows: %zu of %zu rows, expected 1 to %zu", m, n, n);
    gsl_rng *r = effdim_data_rng(seed, err);
    if (!r) return EFFDIM_ENOMEM;
    effdim_data_choose_rows(r, n, m, rows);
    gsl_rng_free(r);
    return EFFDIM_OK;
}

effdim_status effdim_dataset_random_subset(effdim_dataset *ds, size_t m, uint64_t seed,
                                           effdim_error *err)
{
    effdim_status st = check_subset_size(ds, m, err);
    if (st) return st;
    size_t *rows = effdim_alloc(m, sizeof *rows, "subset rows", err);
    if (!rows) return EFFDIM_ENOMEM;
    st = effdim_sample_rows(ds->n, m, seed, rows, err);
    if (!st) st = effdim_data_keep_rows(ds, rows, m, err);
    free(rows);
    return st;
}

/* dst row j = src row idx[j], for j < m */
static effdim_status gather(const effdim_dataset *src, const size_t *idx, size_t m,
                            effdim_dataset **out, effdim_error *err)
{
    effdim_dataset *ds;
    effdim_status st = effdim_dataset_alloc(m, src->d, src->k, src->kind, &ds, err);
    if (st) return st;
    for (size_t j = 0; j < m; ++j) {
        size_t i = idx[j];
        memcpy(ds->X + j * src->d, src->X + i * src->d, src->d * sizeof *ds->X);
        if (src->labels) ds->labels[j] = src->labels[i];
        if (src->Y) memcpy(ds->Y + j * src->k, src->Y + i * src->k, src->k * sizeof *ds->Y);
    }
    if (copy_meta(src, ds, err)) {
        effdim_dataset_free(ds);
        return EFFDIM_ENOMEM;
    }
    *out = ds;
    return EFFDIM_OK;
}

effdim_status effdim_dataset_split(const effdim_dataset *ds, size_t n_test, uint64_t seed,
                                   effdim_dataset **train, effdim_dataset **test, effdim_error *err)
{
    *train = *test = NULL;
    RETURN_ERROR_IF(n_test == 0 || n_test >= ds->n, err, EFFDIM_EINVAL,
                    "%s: test split of %zu rows requested, expected 1 .. %zu",
                    ds->spec ? ds->spec : "dataset", n_test, ds->n - 1);
    size_t *idx = effdim_alloc(ds->n, sizeof *idx, "split rows", err);
    gsl_rng *r = idx ? effdim_data_rng(seed, err) : NULL;
    if (!r) {
        free(idx);
        return EFFDIM_ENOMEM;
    }
    for (size_t i = 0; i < ds->n; ++i) idx[i] = i;
    gsl_ran_shuffle(r, idx, ds->n, sizeof *idx);
    gsl_rng_free(r);
    size_t n_train = ds->n - n_test;
    effdim_status st = gather(ds, idx, n_train, train, err);
    if (!st) st = gather(ds, idx + n_train, n_test, test, err);
    free(idx);
    if (st) {
        effdim_dataset_free(*train);
        *train = NULL;
    }
    return st;
}

/* Column means and population sds of X, row by row (cache friendly), by the
 * corrected two-pass algorithm (Chan, Golub and LeVeque 1983, eq. 1.7).
 * A column whose values are all equal gets mean = that value and sd = 0
 * exactly, so it is centred to exact zeros and never divided. work: (d). */
static void column_stats(const effdim_dataset *ds, double *mean, double *sd, double *work)
{
    size_t n = ds->n, d = ds->d;
    const double *x0 = ds->X;
    for (size_t j = 0; j < d; ++j) mean[j] = sd[j] = work[j] = 0;
    for (size_t i = 0; i < n; ++i) {
        const double *x = ds->X + i * d;
        for (size_t j = 0; j < d; ++j) {
            mean[j] += x[j];
            if (x[j] != x0[j]) work[j] = 1; /* not constant */
        }
    }
    for (size_t j = 0; j < d; ++j) mean[j] /= (double)n;
    /* sd[] accumulates squared deviations; work[] the deviations for varying
     * columns and stays NaN for constant ones */
    for (size_t j = 0; j < d; ++j) work[j] = work[j] != 0 ? 0.0 : (double)NAN;
    for (size_t i = 0; i < n; ++i) {
        const double *x = ds->X + i * d;
        for (size_t j = 0; j < d; ++j) {
            double dev = x[j] - mean[j];
            sd[j] += dev * dev;
            work[j] += dev;
        }
    }
    for (size_t j = 0; j < d; ++j) {
        if (isnan(work[j])) { /* constant column */
            mean[j] = x0[j];
            sd[j] = 0;
            continue;
        }
        double c = work[j];
        double var = (sd[j] - c * c / (double)n) / (double)n;
        mean[j] += c / (double)n;
        sd[j] = sqrt(var > 0 ? var : 0);
    }
}

effdim_status effdim_dataset_standardize(effdim_dataset *ds, double *mean, double *sd,
                                         effdim_error *err)
{
    double *mu = effdim_alloc(ds->d, 3 * sizeof *mu, "standardize statistics", err);
    if (!mu) return EFFDIM_ENOMEM;
    double *sigma = mu + ds->d;
    column_stats(ds, mu, sigma, sigma + ds->d);
    effdim_status st = effdim_dataset_apply_standardize(ds, mu, sigma, err);
    if (!st && mean) memcpy(mean, mu, ds->d * sizeof *mean);
    if (!st && sd) memcpy(sd, sigma, ds->d * sizeof *sd);
    free(mu);
    return st;
}

effdim_status effdim_dataset_apply_standardize(effdim_dataset *ds, const double *mean,
                                               const double *sd, effdim_error *err)
{
    for (size_t j = 0; j < ds->d; ++j)
        RETURN_ERROR_IF(!isfinite(mean[j]) || !isfinite(sd[j]) || sd[j] < 0, err, EFFDIM_EDOM,
                        "standardize: column %zu has mean %g and sd %g, expected finite values "
                        "and sd >= 0", j, mean[j], sd[j]);
    for (size_t i = 0; i < ds->n; ++i) {
        double *x = ds->X + i * ds->d;
        for (size_t j = 0; j < ds->d; ++j)
            x[j] = sd[j] > 0 ? (x[j] - mean[j]) / sd[j] : x[j] - mean[j];
    }
    return EFFDIM_OK;
}

effdim_status effdim_dataset_target_stats(const effdim_dataset *ds, double *mean, double *sd,
                                          effdim_error *err)
{
    RETURN_ERROR_IF(!ds || !ds->Y || !mean || !sd, err, EFFDIM_EINVAL,
                    "%s: target statistics need real targets",
                    ds && ds->spec ? ds->spec : "dataset");
    for (size_t c = 0; c < ds->k; ++c) {
        double m = 0.0, q = 0.0;
        for (size_t i = 0; i < ds->n; ++i) m += ds->Y[i * ds->k + c];
        m /= (double)ds->n;
        for (size_t i = 0; i < ds->n; ++i) {
            double r = ds->Y[i * ds->k + c] - m;
            q += r * r;
        }
        double s = sqrt(q / (double)ds->n);
        mean[c] = m;
        sd[c] = s > 0.0 ? s : 1.0;
    }
    return EFFDIM_OK;
}

effdim_status effdim_dataset_standardize_targets(effdim_dataset *ds, const double *mean,
                                                 const double *sd, effdim_error *err)
{
    const char *what = ds && ds->spec ? ds->spec : "dataset";
    RETURN_ERROR_IF(!ds || !ds->Y || !mean || !sd, err, EFFDIM_EINVAL,
                    "%s: standardising targets needs real targets", what);
    RETURN_ERROR_IF(ds->y_mean, err, EFFDIM_EINVAL, "%s: targets are already standardised", what);
    for (size_t c = 0; c < ds->k; ++c)
        RETURN_ERROR_IF(!isfinite(mean[c]) || !isfinite(sd[c]) || !(sd[c] > 0.0), err,
                        EFFDIM_EINVAL,
                        "%s: target column %zu has mean %g and sd %g, expected finite values "
                        "and sd > 0",
                        what, c, mean[c], sd[c]);
    ds->y_mean = effdim_alloc(ds->k, sizeof(double), "target statistics", err);
    ds->y_sd = ds->y_mean ? effdim_alloc(ds->k, sizeof(double), "target statistics", err) : NULL;
    if (!ds->y_sd) {
        free(ds->y_mean);
        ds->y_mean = NULL;
        return EFFDIM_ENOMEM;
    }
    memcpy(ds->y_mean, mean, ds->k * sizeof(double));
    memcpy(ds->y_sd, sd, ds->k * sizeof(double));
    for (size_t i = 0; i < ds->n; ++i)
        for (size_t c = 0; c < ds->k; ++c)
            ds->Y[i * ds->k + c] = (ds->Y[i * ds->k + c] - mean[c]) / sd[c];
    return EFFDIM_OK;
}

void effdim_dataset_scale(effdim_dataset *ds, double factor)
{
    size_t nd = ds->n * ds->d;
    for (size_t i = 0; i < nd; ++i) ds->X[i] *= factor;
}

effdim_status effdim_dataset_label_noise_share(effdim_dataset *ds, size_t n_total, size_t first,
                                               double fraction, uint64_t seed, size_t *changed,
                                               effdim_error *err)
{
    const char *what = ds->spec ? ds->spec : "dataset";
    if (changed) *changed = 0;
    RETURN_ERROR_IF(ds->kind != EFFDIM_TARGET_LABELS, err, EFFDIM_EINVAL,
                    "%s: label noise needs class labels, the targets are real", what);
    RETURN_ERROR_IF(!(fraction >= 0 && fraction <= 1), err, EFFDIM_EDOM,
                    "%s: label noise fraction %g, expected 0 .. 1", what, fraction);
    RETURN_ERROR_IF(ds->k < 2, err, EFFDIM_EINVAL,
                    "%s: label noise needs at least 2 classes, k = %zu", what, ds->k);
    RETURN_ERROR_IF(first > n_total || ds->n > n_total - first, err, EFFDIM_EINVAL,
                    "%s: label noise on rows [%zu, %zu) of %zu rows", what, first, first + ds->n,
                    n_total);
    size_t m = (size_t)llround(fraction * (double)n_total), done = 0;
    if (m == 0) return EFFDIM_OK;
    size_t *rows = effdim_alloc(m, sizeof *rows, "label noise rows", err);
    gsl_rng *r = rows ? effdim_data_rng(seed, err) : NULL;
    if (!r) {
        free(rows);
        return EFFDIM_ENOMEM;
    }
    /* the draws of the whole set, in order; the class draw does not depend on
     * the label, so the share applies those of its own rows */
    effdim_data_choose_rows(r, n_total, m, rows);
    for (size_t j = 0; j < m; ++j) {
        /* uniform over the k - 1 other classes */
        int32_t c = (int32_t)gsl_rng_uniform_int(r, (unsigned long)(ds->k - 1));
        if (rows[j] < first || rows[j] - first >= ds->n) continue;
        int32_t *y = &ds->labels[rows[j] - first];
        *y = c >= *y ? c + 1 : c;
        ++done;
    }
    gsl_rng_free(r);
    free(rows);
    if (changed) *changed = done;
    return EFFDIM_OK;
}

effdim_status effdim_dataset_label_noise(effdim_dataset *ds, double fraction, uint64_t seed,
                                         size_t *changed, effdim_error *err)
{
    return effdim_dataset_label_noise_share(ds, ds->n, 0, fraction, seed, changed, err);
}
