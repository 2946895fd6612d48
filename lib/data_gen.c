/* lib/data_gen.c: seeded synthetic data sets (datasets/README.md gives each rule).
 *
 * Every generator draws from one gsl_rng_mt19937 seeded with gsl_rng_set(r,
 * seed) (the teacher's weights come from effdim_mlp_init_params(seed); its
 * inputs from mt19937 seeded with seed + 0x9e3779b9), normals by
 * gsl_ran_gaussian (Box-Muller polar method). The order of the draws is part
 * of the definition and is listed with each generator, so a data set is
 * reproducible from its spec string alone.
 *
 * Rows alternate between classes (row i of a mixture has class i mod
 * classes; spirals pair a point with its negation), so the first m rows of
 * any generated set stay balanced.
 *
 * Two spirals: Maddox, Benton and Wilson 2020, "Rethinking parameter counting
 * in deep models: effective dimensionality revisited", Section 5 (the
 * two-spirals loss surfaces), after the twospirals() function of their code.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>

#include "data_internal.h"
#include "effdim/mlp.h"
#include "internal.h"

static effdim_status check_noise(const char *gen, const char *name, double v, effdim_error *err)
{
    RETURN_ERROR_IF(!(v >= 0) || !isfinite(v), err, EFFDIM_EDOM,
                    "%s: %s = %g, expected a finite value >= 0", gen, name, v);
    return EFFDIM_OK;
}

/* Allocate the dataset and the generator together. */
static effdim_status start(size_t n, size_t d, size_t k, effdim_target_kind kind, uint64_t seed,
                           effdim_dataset **ds, gsl_rng **r, effdim_error *err)
{
    effdim_status st = effdim_dataset_alloc(n, d, k, kind, ds, err);
    if (st) return st;
    *r = effdim_data_rng(seed, err);
    if (!*r) {
        effdim_dataset_free(*ds);
        *ds = NULL;
        return EFFDIM_ENOMEM;
    }
    return EFFDIM_OK;
}

/* ---- two spirals ------------------------------------------------------------ */

/* Pair i (rows 2i, 2i+1): u ~ U[0,1), e1, e2 ~ N(0,1), in that order;
 * r = sqrt(u) * 600 * 2pi / 360 (radians, up to 10.47);
 * row 2i   = (-1.5 cos(r) r + noise e1, 1.5 sin(r) r + noise e2), class 0;
 * row 2i+1 = minus row 2i, class 1 (for odd n the last pair has no row 2i+1). */
effdim_status effdim_gen_spirals(size_t n, double noise, uint64_t seed, effdim_dataset **out,
                                 effdim_error *err)
{
    effdim_dataset *ds;
    gsl_rng *r;
    *out = NULL;
    RETURN_ERROR_IF(n < 2, err, EFFDIM_EINVAL, "spirals: n = %zu, expected at least 2", n);
    effdim_status st = check_noise("spirals", "noise", noise, err);
    if (!st) st = start(n, 2, 2, EFFDIM_TARGET_LABELS, seed, &ds, &r, err);
    if (st) return st;
    const double turn = 600.0 * 2.0 * 3.14159265358979323846 / 360.0;
    for (size_t i = 0; i < n; i += 2) {
        double rad = sqrt(gsl_rng_uniform(r)) * turn;
        double e1 = gsl_ran_gaussian(r, 1.0), e2 = gsl_ran_gaussian(r, 1.0);
        double *x = ds->X + i * 2;
        x[0] = -1.5 * cos(rad) * rad + noise * e1;
        x[1] = 1.5 * sin(rad) * rad + noise * e2;
        ds->labels[i] = 0;
        if (i + 1 < n) {
            x[2] = -x[0];
            x[3] = -x[1];
            ds->labels[i + 1] = 1;
        }
    }
    gsl_rng_free(r);
    *out = ds;
    return EFFDIM_OK;
}

/* ---- regression ---------------------------------------------------------------- */

/* d == 1: per row u ~ U[0,1), e ~ N(0,1); x = 2u - 1, y = sin(3x) + x/2 + noise e.
 * d > 1: first w_j ~ N(0, 1/d) for j < d; then per row x_j ~ N(0,1) for
 * j < d, e ~ N(0,1); y = x . w + noise e. */
effdim_status effdim_gen_regression(size_t n, size_t d, double noise, uint64_t seed,
                                    effdim_dataset **out, effdim_error *err)
{
    effdim_dataset *ds;
    gsl_rng *r;
    double *w = NULL;
    *out = NULL;
    effdim_status st = check_noise("regression", "noise", noise, err);
    if (!st) st = start(n, d, 1, EFFDIM_TARGET_REAL, seed, &ds, &r, err);
    if (st) return st;
    if (d == 1) {
        for (size_t i = 0; i < n; ++i) {
            double x = 2.0 * gsl_rng_uniform(r) - 1.0;
            ds->X[i] = x;
            ds->Y[i] = sin(3.0 * x) + 0.5 * x + noise * gsl_ran_gaussian(r, 1.0);
        }
    } else {
        w = effdim_alloc(d, sizeof *w, "regression weights", err);
        if (!w) {
            st = EFFDIM_ENOMEM;
            goto done;
        }
        for (size_t j = 0; j < d; ++j) w[j] = gsl_ran_gaussian(r, 1.0 / sqrt((double)d));
        for (size_t i = 0; i < n; ++i) {
            double *x = ds->X + i * d, y = 0;
            for (size_t j = 0; j < d; ++j) {
                x[j] = gsl_ran_gaussian(r, 1.0);
                y += x[j] * w[j];
            }
            ds->Y[i] = y + noise * gsl_ran_gaussian(r, 1.0);
        }
    }
done:
    free(w);
    gsl_rng_free(r);
    if (st) {
        effdim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return EFFDIM_OK;
}

/* ---- Gaussian mixture ---------------------------------------------------------------- */

/* First the means: mu_{c,j} ~ N(0, sep^2 / d) for c < classes, j < d (so
 * E|mu_a - mu_b|^2 = 2 sep^2); then per row i: class c = i mod classes,
 * x_j = mu_{c,j} + N(0,1) for j < d. */
effdim_status effdim_gen_gmm(size_t n, size_t d, size_t classes, double sep, uint64_t seed,
                             effdim_dataset **out, effdim_error *err)
{
    effdim_dataset *ds;
    gsl_rng *r;
    *out = NULL;
    RETURN_ERROR_IF(classes < 2 || classes > INT32_MAX, err, EFFDIM_EINVAL,
                    "gmm: classes = %zu, expected at least 2", classes);
    effdim_status st = check_noise("gmm", "sep", sep, err);
    if (!st) st = start(n, d, classes, EFFDIM_TARGET_LABELS, seed, &ds, &r, err);
    if (st) return st;
    double *mu = effdim_alloc(classes, d * sizeof *mu, "gmm means", err);
    if (!mu) {
        gsl_rng_free(r);
        effdim_dataset_free(ds);
        return EFFDIM_ENOMEM;
    }
    for (size_t i = 0; i < classes * d; ++i) mu[i] = gsl_ran_gaussian(r, sep / sqrt((double)d));
    for (size_t i = 0; i < n; ++i) {
        size_t c = i % classes;
        double *x = ds->X + i * d;
        for (size_t j = 0; j < d; ++j) x[j] = mu[c * d + j] + gsl_ran_gaussian(r, 1.0);
        ds->labels[i] = (int32_t)c;
    }
    free(mu);
    gsl_rng_free(r);
    *out = ds;
    return EFFDIM_OK;
}

/* ---- teacher-student ------------------------------------------------------------------ */

/* The teacher is the MLP d -> hidden (tanh) -> width (identity), width =
 * classes when classes > 0, else out; theta from effdim_mlp_init_params(seed,
 * PyTorch default). From mt19937(seed + 0x9e3779b9): all of X (n, d), row by
 * row, x ~ N(0, I); then per row and output e ~ N(0,1).
 * classes == 0: REAL targets y = f(x) + noise e (n, out).
 * classes > 0:  LABELS y = argmax_j (f_j(x) + noise e_j) (first on ties). */
effdim_status effdim_gen_teacher(size_t n, size_t d, size_t hidden, size_t out, size_t classes,
                                 double noise, uint64_t seed, effdim_dataset **outp,
                                 effdim_error *err)
{
    effdim_dataset *ds = NULL;
    gsl_rng *r = NULL;
    double *theta = NULL, *f = NULL;
    effdim_mlp_ws *ws = NULL;
    effdim_mlp m;
    *outp = NULL;
    RETURN_ERROR_IF(hidden == 0, err, EFFDIM_EINVAL, "teacher: hidden = 0, expected at least 1");
    RETURN_ERROR_IF(classes == 1 || classes > INT32_MAX, err, EFFDIM_EINVAL,
                    "teacher: classes = %zu, expected 0 (real targets) or at least 2", classes);
    RETURN_ERROR_IF(classes == 0 && out == 0, err, EFFDIM_EINVAL,
                    "teacher: out = 0 and classes = 0, expected out >= 1 or classes >= 2");
    RETURN_ERROR_IF(classes > 0 && out != 0 && out != classes, err, EFFDIM_EINVAL,
                    "teacher: out = %zu and classes = %zu: with classes, out must be 0 or equal", out,
                    classes);
    effdim_status st = check_noise("teacher", "noise", noise, err);
    if (st) return st;
    size_t width = classes ? classes : out;
    size_t sizes[3] = {d, hidden, width};
    effdim_activation acts[2] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_target_kind kind = classes ? EFFDIM_TARGET_LABELS : EFFDIM_TARGET_REAL;
    st = effdim_mlp_init(&m, 2, sizes, acts, classes ? EFFDIM_LOSS_CROSS_ENTROPY : EFFDIM_LOSS_MSE,
                         EFFDIM_REDUCTION_MEAN, err);
    if (!st) st = start(n, d, width, kind, seed + 0x9e3779b9u, &ds, &r, err);
    if (st) return st;
    theta = effdim_alloc(m.n_params, sizeof *theta, "teacher parameters", err);
    f = theta ? effdim_alloc(n, width * sizeof *f, "teacher outputs", err) : NULL;
    ws = f ? effdim_mlp_ws_alloc(&m, 0, err) : NULL;
    if (!ws) {
        st = EFFDIM_ENOMEM;
        goto done;
    }
    st = effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, seed, err);
    if (st) goto done;
    for (size_t i = 0; i < n * d; ++i) ds->X[i] = gsl_ran_gaussian(r, 1.0);
    st = effdim_mlp_predict(&m, theta, ds->X, n, f, ws, err);
    if (st) goto done;
    for (size_t i = 0; i < n; ++i) {
        double *fi = f + i * width, best = -INFINITY;
        for (size_t j = 0; j < width; ++j) {
            double v = fi[j] + noise * gsl_ran_gaussian(r, 1.0);
            if (!classes) ds->Y[i * width + j] = v;
            if (classes && v > best) {
                best = v;
                ds->labels[i] = (int32_t)j;
            }
        }
    }
done:
    effdim_mlp_ws_free(ws);
    free(f);
    free(theta);
    gsl_rng_free(r);
    if (st) {
        effdim_dataset_free(ds);
        return st;
    }
    *outp = ds;
    return EFFDIM_OK;
}
