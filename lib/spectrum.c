/* lib/spectrum.c: the spectrum file, format "effdim.spectrum" version 1
 * (layout in effdim/spectrum.h and docs/file-formats.md).
 *
 * Writing: check the invariants, then write every object into a temporary
 * file beside the target and rename it over the target (lib/h5io.c), so a
 * failed or interrupted write never leaves a partial spectrum behind.
 * Reading: the root convention first (format, format_version), then every
 * array with its length checked against k, m, P and the grid size; messages
 * name the file and the object. The checkpoint fingerprint is SHA-256
 * (FIPS 180-4, lib/sha256.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"
#include "h5io.h"
#include "internal.h"
#include "sha256.h"

void effdim_spectrum_init(effdim_spectrum *s)
{
    if (s) memset(s, 0, sizeof *s);
}

effdim_spectrum *effdim_spectrum_new(effdim_error *err)
{
    return effdim_calloc(1, sizeof(effdim_spectrum), "spectrum", err);
}

/* ---- invariants ------------------------------------------------------------- */

static effdim_status check_descending(const double *v, size_t k, const char *what,
                                      effdim_error *err)
{
    for (size_t i = 0; i < k; ++i) {
        RETURN_ERROR_IF(!isfinite(v[i]), err, EFFDIM_EINVAL, "spectrum: %s[%zu] is not finite",
                        what, i);
        RETURN_ERROR_IF(i && v[i] > v[i - 1], err, EFFDIM_EINVAL,
                        "spectrum: %s not descending at %zu (%.17g > %.17g)", what, i, v[i],
                        v[i - 1]);
    }
    return EFFDIM_OK;
}

effdim_status effdim_spectrum_check(const effdim_spectrum *s, effdim_error *err)
{
    RETURN_ERROR_IF(!s, err, EFFDIM_EINVAL, "spectrum: NULL");
    RETURN_ERROR_IF(s->k == 0 || !s->eigenvalues || !s->residuals || !s->residual_bounds, err,
                    EFFDIM_EINVAL, "spectrum: /spectrum needs k >= 1 eigenvalues, residuals and "
                    "residual bounds (k = %zu)", s->k);
    RETURN_ERROR_IF(s->n_params == 0 || s->k > s->n_params, err, EFFDIM_EINVAL,
                    "spectrum: k = %zu eigenvalues for n_params = %llu", s->k,
                    (unsigned long long)s->n_params);
    effdim_status st = check_descending(s->eigenvalues, s->k, "eigenvalues", err);
    if (st) return st;
    RETURN_ERROR_IF(s->m == 0 || !s->z || !s->n_eff, err, EFFDIM_EINVAL,
                    "spectrum: /effdim needs m >= 1 values of z and n_eff (m = %zu)", s->m);
    for (size_t i = 0; i < s->m; ++i)
        RETURN_ERROR_IF(!(s->z[i] > 0.0) || !isfinite(s->z[i]), err, EFFDIM_EINVAL,
                        "spectrum: z[%zu] = %g, expected a finite z > 0", i, s->z[i]);
    RETURN_ERROR_IF(s->n_eff_slq_se && !s->n_eff_slq, err, EFFDIM_EINVAL,
                    "spectrum: n_eff_slq_se given without n_eff_slq");
    RETURN_ERROR_IF(s->n_eff_slq_bias && !s->n_eff_slq, err, EFFDIM_EINVAL,
                    "spectrum: n_eff_slq_bias given without n_eff_slq");
    RETURN_ERROR_IF(!s->dense_eigenvalues != !s->n_eff_dense, err, EFFDIM_EINVAL,
                    "spectrum: dense eigenvalues and n_eff_dense must be given together");
    if (s->dense_eigenvalues) {
        st = check_descending(s->dense_eigenvalues, (size_t)s->n_params, "dense eigenvalues", err);
        if (st) return st;
    }
    RETURN_ERROR_IF(s->n_grid && (!s->grid || !s->density), err, EFFDIM_EINVAL,
                    "spectrum: density of %zu points without grid or values", s->n_grid);
    RETURN_ERROR_IF(s->n_layers && !s->layers, err, EFFDIM_EINVAL,
                    "spectrum: %zu per-layer spectra but no array", s->n_layers);
    for (size_t l = 0; l < s->n_layers; ++l) {
        const effdim_spectrum_layer *ly = &s->layers[l];
        RETURN_ERROR_IF(ly->k == 0 || !ly->eigenvalues || !ly->residuals, err, EFFDIM_EINVAL,
                        "spectrum: per_layer/layer%zu has no eigenvalues", l);
        RETURN_ERROR_IF(ly->size == 0 || ly->offset + ly->size > s->n_params, err, EFFDIM_EINVAL,
                        "spectrum: per_layer/layer%zu block [%zu, %zu) outside the %llu parameters",
                        l, ly->offset, ly->offset + ly->size, (unsigned long long)s->n_params);
        char what[64];
        snprintf(what, sizeof what, "per_layer/layer%zu eigenvalues", l);
        st = check_descending(ly->eigenvalues, ly->k, what, err);
        if (st) return st;
    }
    RETURN_ERROR_IF(s->seed > (uint64_t)INT64_MAX, err, EFFDIM_EINVAL,
                    "spectrum: seed %llu does not fit the file's int64 attribute",
                    (unsigned long long)s->seed);
    return EFFDIM_OK;
}

/* ---- writing ------------------------------------------------------------------ */

static effdim_status put_vec(hid_t g, const char *name, const double *v, size_t n,
                             effdim_error *err)
{
    size_t dims[1] = {n};
    return effdim_h5_write_doubles(g, name, 1, dims, v, err);
}

static effdim_status put_i64(hid_t g, const char *name, uint64_t v, effdim_error *err)
{
    return effdim_h5_attr_write_int64(g, name, (int64_t)v, err);
}

static effdim_status put_str(hid_t g, const char *name, const char *v, effdim_error *err)
{
    return effdim_h5_attr_write_string(g, name, v ? v : "", err);
}

static effdim_status write_root(hid_t f, const effdim_spectrum *s, effdim_error *err)
{
    char created[64];
    effdim_status st = put_str(f, "format", EFFDIM_SPECTRUM_FORMAT, err);
    if (!st) st = put_i64(f, "format_version", EFFDIM_SPECTRUM_VERSION, err);
    if (!st) st = put_str(f, "checkpoint", s->checkpoint, err);
    if (!st) st = put_str(f, "checkpoint_sha256", s->checkpoint_sha256, err);
    if (!st) st = put_str(f, "data_spec", s->data_spec, err);
    if (!st) st = put_i64(f, "n", s->n, err);
    if (!st) st = put_i64(f, "n_params", s->n_params, err);
    if (!st) st = put_str(f, "loss", s->loss, err);
    if (!st) st = put_str(f, "reduction", s->reduction, err);
    if (!st) st = effdim_h5_attr_write_double(f, "scale", s->scale, err);
    if (!st) st = put_str(f, "operator", s->op, err);
    if (!st) st = put_str(f, "hvp_method", s->hvp_method, err);
    if (!st) st = effdim_h5_attr_write_double(f, "fd_eps", s->fd_eps, err);
    if (!st) st = effdim_h5_attr_write_double(f, "prior", s->prior, err);
    if (!st) st = put_str(f, "which", s->which, err);
    if (!st) st = put_i64(f, "k", s->k, err);
    if (!st) st = effdim_h5_attr_write_double(f, "tol", s->tol, err);
    if (!st) st = put_i64(f, "seed", s->seed, err);
    if (!st) st = put_i64(f, "steps", s->steps, err);
    if (!st) st = put_i64(f, "lanczos_matvecs", s->lanczos_matvecs, err);
    if (!st) st = put_i64(f, "matvecs", s->matvecs, err);
    if (!st) st = put_i64(f, "restarts", s->restarts, err);
    if (!st) st = put_i64(f, "nconv", s->nconv, err);
    if (!st) st = put_i64(f, "nconv_true", s->nconv_true, err);
    if (!st) st = effdim_h5_attr_write_double(f, "seconds", s->seconds, err);
    if (!st) st = put_str(f, "neg_policy", s->neg_policy, err);
    if (!st) st = put_str(f, "version", s->version ? s->version : effdim_version(), err);
    if (!st)
        st = put_str(f, "created", s->created ? s->created : effdim_now_iso(created, sizeof created), err);
    if (!st && s->slq_warning && s->slq_warning[0])
        st = put_str(f, "slq_warning", s->slq_warning, err);
    if (!st) st = put_i64(f, "partial", s->partial ? 1 : 0, err);
    if (!st && s->command_line) st = put_str(f, "command_line", s->command_line, err);
    if (!st && s->dense_eigenvalues) st = put_i64(f, "dense", 1, err);
    if (!st && s->dense_eigenvalues)
        st = effdim_h5_attr_write_double(f, "dense_asymmetry", s->dense_asymmetry, err);
    return st;
}

static effdim_status write_spectrum_group(hid_t f, const effdim_spectrum *s, effdim_error *err)
{
    hid_t g;
    effdim_status st = effdim_h5_group(f, "spectrum", &g, err);
    if (st) return st;
    int64_t *conv = effdim_alloc(s->k, sizeof(int64_t), "spectrum converged flags", err);
    if (!conv) {
        H5Gclose(g);
        return EFFDIM_ENOMEM;
    }
    for (size_t i = 0; i < s->k; ++i) conv[i] = s->converged ? (s->converged[i] != 0) : 0;
    size_t dims[2] = {s->k, (size_t)s->n_params};
    st = put_vec(g, "eigenvalues", s->eigenvalues, s->k, err);
    if (!st) st = put_vec(g, "residuals", s->residuals, s->k, err);
    if (!st) st = put_vec(g, "residual_bounds", s->residual_bounds, s->k, err);
    if (!st) st = effdim_h5_write_int64s(g, "converged", 1, dims, conv, err);
    if (!st && s->eigenvectors) st = effdim_h5_write_doubles(g, "eigenvectors", 2, dims, s->eigenvectors, err);
    free(conv);
    H5Gclose(g);
    return st;
}

/* /effdim/n_eff_slq_flags: effdim_slq_neff_flag per z as int64. */
static effdim_status put_flags(hid_t g, const unsigned *flags, size_t m, effdim_error *err)
{
    int64_t *v = effdim_alloc(m, sizeof(int64_t), "SLQ flags", err);
    if (!v) return EFFDIM_ENOMEM;
    for (size_t i = 0; i < m; ++i) v[i] = (int64_t)flags[i];
    size_t dims[1] = {m};
    effdim_status st = effdim_h5_write_int64s(g, "n_eff_slq_flags", 1, dims, v, err);
    free(v);
    return st;
}

static effdim_status write_effdim_group(hid_t f, const effdim_spectrum *s, effdim_error *err)
{
    hid_t g;
    effdim_status st = effdim_h5_group(f, "effdim", &g, err);
    if (st) return st;
    st = put_vec(g, "z", s->z, s->m, err);
    if (!st) st = put_vec(g, "n_eff", s->n_eff, s->m, err);
    if (!st) st = put_str(g, "neg_policy", s->neg_policy, err);
    if (!st && s->n_eff_slq) {
        st = put_vec(g, "n_eff_slq", s->n_eff_slq, s->m, err);
        if (!st && s->n_eff_slq_se) st = put_vec(g, "n_eff_slq_se", s->n_eff_slq_se, s->m, err);
        if (!st && s->n_eff_slq_bias)
            st = put_vec(g, "n_eff_slq_bias", s->n_eff_slq_bias, s->m, err);
        if (!st && s->slq_flags) st = put_flags(g, s->slq_flags, s->m, err);
        if (!st) st = put_i64(g, "slq_probes", s->slq_probes, err);
        if (!st) st = put_i64(g, "slq_steps", s->slq_steps, err);
        if (!st) st = put_i64(g, "slq_deflated", s->slq_deflated, err);
        if (!st) st = put_str(g, "slq_stop", s->slq_stop, err);
        if (!st) st = effdim_h5_attr_write_double(g, "slq_target_rel", s->slq_target_rel, err);
        if (!st) st = effdim_h5_attr_write_double(g, "slq_target_abs", s->slq_target_abs, err);
    }
    if (!st && s->n_eff_dense) st = put_vec(g, "n_eff_dense", s->n_eff_dense, s->m, err);
    H5Gclose(g);
    return st;
}

static effdim_status write_optional(hid_t f, const effdim_spectrum *s, effdim_error *err)
{
    hid_t g;
    effdim_status st = EFFDIM_OK;
    if (s->dense_eigenvalues) {
        st = effdim_h5_group(f, "dense", &g, err);
        if (st) return st;
        st = put_vec(g, "eigenvalues", s->dense_eigenvalues, (size_t)s->n_params, err);
        H5Gclose(g);
        if (st) return st;
    }
    if (s->has_trace) {
        st = effdim_h5_group(f, "trace", &g, err);
        if (st) return st;
        st = effdim_h5_attr_write_double(g, "estimate", s->trace, err);
        if (!st) st = effdim_h5_attr_write_double(g, "se", s->trace_se, err);
        if (!st) st = put_str(g, "method", s->trace_method, err);
        if (!st) st = put_i64(g, "probes", s->trace_probes, err);
        if (!st) st = put_i64(g, "matvecs", s->trace_matvecs, err);
        H5Gclose(g);
        if (st) return st;
    }
    if (s->n_grid) {
        st = effdim_h5_group(f, "density", &g, err);
        if (st) return st;
        st = put_vec(g, "grid", s->grid, s->n_grid, err);
        if (!st) st = put_vec(g, "values", s->density, s->n_grid, err);
        if (!st) st = effdim_h5_attr_write_double(g, "sigma", s->density_sigma, err);
        if (!st) st = put_i64(g, "probes", s->density_probes, err);
        if (!st) st = put_i64(g, "steps", s->density_steps, err);
        H5Gclose(g);
        if (st) return st;
    }
    if (s->n_layers) {
        st = effdim_h5_group(f, "per_layer", &g, err);
        if (st) return st;
        for (size_t l = 0; l < s->n_layers && !st; ++l) {
            const effdim_spectrum_layer *ly = &s->layers[l];
            char name[32];
            hid_t lg;
            snprintf(name, sizeof name, "layer%zu", l);
            st = effdim_h5_group(g, name, &lg, err);
            if (st) break;
            st = put_i64(lg, "offset", ly->offset, err);
            if (!st) st = put_i64(lg, "size", ly->size, err);
            if (!st) st = put_vec(lg, "eigenvalues", ly->eigenvalues, ly->k, err);
            if (!st) st = put_vec(lg, "residuals", ly->residuals, ly->k, err);
            if (!st && ly->n_eff) st = put_vec(lg, "n_eff", ly->n_eff, s->m, err);
            H5Gclose(lg);
        }
        H5Gclose(g);
    }
    return st;
}

effdim_status effdim_spectrum_save(const effdim_spectrum *s, const char *path, effdim_error *err)
{
    effdim_status st = effdim_spectrum_check(s, err);
    if (st) return st;
    effdim_h5_atomic a;
    st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    st = write_root(a.file, s, err);
    if (!st) st = write_spectrum_group(a.file, s, err);
    if (!st) st = write_effdim_group(a.file, s, err);
    if (!st) st = write_optional(a.file, s, err);
    if (!st) st = effdim_h5_atomic_commit(&a, err);
    if (st) effdim_h5_atomic_abort(&a);
    return st;
}

/* ---- reading -------------------------------------------------------------------- */

typedef struct reader {
    const char *path;
    hid_t file;
    effdim_error *err;
} reader;

/* A 1-D float data set into a new array; *n receives its length, which must
 * equal want when want > 0. */
static effdim_status get_vec(reader *r, const char *name, size_t want, double **out, size_t *n)
{
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_status st = effdim_h5_shape(r->file, name, &rank, dims, &cls, r->err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1, r->err, EFFDIM_EFORMAT, "%s: /%s: rank %d, expected a 1-D array",
                    r->path, name, rank);
    RETURN_ERROR_IF(want && dims[0] != want, r->err, EFFDIM_EFORMAT,
                    "%s: /%s: %zu values, expected %zu", r->path, name, dims[0], want);
    double *v = effdim_alloc(dims[0], sizeof(double), name, r->err);
    if (!v) return EFFDIM_ENOMEM;
    st = effdim_h5_read_doubles(r->file, name, v, dims[0], r->err);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    if (n) *n = dims[0];
    return EFFDIM_OK;
}

static effdim_status get_str(reader *r, hid_t obj, const char *name, char *buf, size_t cap)
{
    return effdim_h5_attr_read_string(obj, name, buf, cap, r->err);
}

static effdim_status get_dup(reader *r, const char *name, char **out)
{
    char buf[EFFDIM_PATH_MAX];
    effdim_status st = get_str(r, r->file, name, buf, sizeof buf);
    if (st) return st;
    *out = effdim_strdup(buf, r->err);
    return *out ? EFFDIM_OK : EFFDIM_ENOMEM;
}

static effdim_status get_u64(reader *r, hid_t obj, const char *name, uint64_t *v)
{
    int64_t x = 0;
    effdim_status st = effdim_h5_attr_read_int64(obj, name, &x, r->err);
    if (st) return st;
    *v = (uint64_t)x;
    return EFFDIM_OK;
}

static effdim_status read_format(reader *r)
{
    char fmt[64] = "";
    if (effdim_h5_attr_read_string(r->file, "format", fmt, sizeof fmt, NULL) ||
        strcmp(fmt, EFFDIM_SPECTRUM_FORMAT) != 0)
        return effdim_error_set(r->err, EFFDIM_EFORMAT,
                                "%s: /: attribute 'format' is '%s', expected '%s'", r->path, fmt,
                                EFFDIM_SPECTRUM_FORMAT);
    int64_t version = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(r->file, "format_version", &version, NULL), r->err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'format_version' is missing or not an integer",
                    r->path);
    RETURN_ERROR_IF(version > EFFDIM_SPECTRUM_VERSION, r->err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%d); upgrade effdim",
                    r->path, (long long)version, EFFDIM_SPECTRUM_VERSION);
    RETURN_ERROR_IF(version < 1, r->err, EFFDIM_EFORMAT, "%s: /: format_version %lld, expected %d",
                    r->path, (long long)version, EFFDIM_SPECTRUM_VERSION);
    return EFFDIM_OK;
}

static effdim_status read_root(reader *r, effdim_spectrum *s)
{
    hid_t f = r->file;
    effdim_status st = get_dup(r, "checkpoint", &s->checkpoint);
    if (!st) st = get_str(r, f, "checkpoint_sha256", s->checkpoint_sha256, sizeof s->checkpoint_sha256);
    if (!st) st = get_dup(r, "data_spec", &s->data_spec);
    if (!st) st = get_u64(r, f, "n", &s->n);
    if (!st) st = get_u64(r, f, "n_params", &s->n_params);
    if (!st) st = get_str(r, f, "loss", s->loss, sizeof s->loss);
    if (!st) st = get_str(r, f, "reduction", s->reduction, sizeof s->reduction);
    if (!st) st = effdim_h5_attr_read_double(f, "scale", &s->scale, r->err);
    if (!st) st = get_str(r, f, "operator", s->op, sizeof s->op);
    if (!st) st = get_str(r, f, "hvp_method", s->hvp_method, sizeof s->hvp_method);
    if (!st) st = effdim_h5_attr_read_double(f, "fd_eps", &s->fd_eps, r->err);
    if (!st) st = effdim_h5_attr_read_double(f, "prior", &s->prior, r->err);
    if (!st) st = get_str(r, f, "which", s->which, sizeof s->which);
    if (!st) st = effdim_h5_attr_read_double(f, "tol", &s->tol, r->err);
    if (!st) st = get_u64(r, f, "seed", &s->seed);
    if (!st) st = get_u64(r, f, "steps", &s->steps);
    if (!st) st = get_u64(r, f, "lanczos_matvecs", &s->lanczos_matvecs);
    if (!st) st = get_u64(r, f, "matvecs", &s->matvecs);
    if (!st) st = get_u64(r, f, "restarts", &s->restarts);
    if (!st) st = get_u64(r, f, "nconv", &s->nconv);
    if (!st && effdim_h5_has_attr(f, "nconv_true")) st = get_u64(r, f, "nconv_true", &s->nconv_true);
    if (!st) st = effdim_h5_attr_read_double(f, "seconds", &s->seconds, r->err);
    if (!st) st = get_str(r, f, "neg_policy", s->neg_policy, sizeof s->neg_policy);
    if (!st) st = get_dup(r, "version", &s->version);
    if (!st) st = get_dup(r, "created", &s->created);
    if (!st && effdim_h5_has_attr(f, "slq_warning"))
        st = get_dup(r, "slq_warning", &s->slq_warning);
    uint64_t partial = 0;
    if (!st && effdim_h5_has_attr(f, "partial")) st = get_u64(r, f, "partial", &partial);
    s->partial = partial != 0;
    if (!st && effdim_h5_has_attr(f, "command_line"))
        st = get_dup(r, "command_line", &s->command_line);
    return st;
}

/* The names the root records must be ones effdim writes: they reach tables,
 * paths and plotting scripts (an empty one is an older file's "unknown"). */
static effdim_status check_names(reader *r, const effdim_spectrum *s)
{
    effdim_loss loss;
    effdim_reduction red;
    effdim_hvp_method hm;
    effdim_lanczos_which wh;
    effdim_neg_policy np;
    struct { const char *field, *value, *expected; int ok; } f[] = {
        {"operator", s->op, "hessian or ggn", !strcmp(s->op, "hessian") || !strcmp(s->op, "ggn")},
        {"hvp_method", s->hvp_method, "fd, fd-forward or exact",
         !effdim_hvp_method_parse(s->hvp_method, &hm, NULL)},
        {"which", s->which, "top, bottom or both", !effdim_lanczos_which_parse(s->which, &wh, NULL)},
        {"neg_policy", s->neg_policy, "zero, abs or asis",
         !effdim_neg_policy_parse(s->neg_policy, &np, NULL)},
        {"loss", s->loss, "a loss effdim knows", !effdim_loss_parse(s->loss, &loss, NULL)},
        {"reduction", s->reduction, "mean or sum", !effdim_reduction_parse(s->reduction, &red, NULL)}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; ++i)
        RETURN_ERROR_IF(f[i].value[0] && !f[i].ok, r->err, EFFDIM_EFORMAT,
                        "%s: /: attribute '%s' is not %s", r->path, f[i].field, f[i].expected);
    return EFFDIM_OK;
}

static effdim_status read_spectrum_group(reader *r, effdim_spectrum *s)
{
    effdim_status st = get_vec(r, "spectrum/eigenvalues", 0, &s->eigenvalues, &s->k);
    if (st) return st;
    RETURN_ERROR_IF(s->k == 0, r->err, EFFDIM_EFORMAT, "%s: /spectrum/eigenvalues is empty",
                    r->path);
    for (size_t i = 1; i < s->k; ++i)
        RETURN_ERROR_IF(s->eigenvalues[i] > s->eigenvalues[i - 1], r->err, EFFDIM_EFORMAT,
                        "%s: /spectrum/eigenvalues: not descending at index %zu", r->path, i);
    st = get_vec(r, "spectrum/residuals", s->k, &s->residuals, NULL);
    if (!st) st = get_vec(r, "spectrum/residual_bounds", s->k, &s->residual_bounds, NULL);
    if (st) return st;
    int64_t *conv = effdim_alloc(s->k, sizeof(int64_t), "converged flags", r->err);
    s->converged = effdim_calloc(s->k, 1, "converged flags", r->err);
    if (!conv || !s->converged) {
        free(conv);
        return EFFDIM_ENOMEM;
    }
    st = effdim_h5_read_int64s(r->file, "spectrum/converged", conv, s->k, r->err);
    for (size_t i = 0; !st && i < s->k; ++i) s->converged[i] = conv[i] != 0;
    free(conv);
    if (st || !effdim_h5_has_link(r->file, "spectrum/eigenvectors")) return st;
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK], count;
    st = effdim_h5_shape(r->file, "spectrum/eigenvectors", &rank, dims, NULL, r->err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 2 || dims[0] != s->k || dims[1] != s->n_params, r->err, EFFDIM_EFORMAT,
                    "%s: /spectrum/eigenvectors: expected shape (%zu, %llu)", r->path, s->k,
                    (unsigned long long)s->n_params);
    RETURN_ERROR_IF(effdim_mul_size(dims[0], dims[1], &count), r->err, EFFDIM_EFORMAT,
                    "%s: /spectrum/eigenvectors: absurd shape", r->path);
    s->eigenvectors = effdim_alloc(count, sizeof(double), "eigenvectors", r->err);
    if (!s->eigenvectors) return EFFDIM_ENOMEM;
    return effdim_h5_read_doubles(r->file, "spectrum/eigenvectors", s->eigenvectors, count, r->err);
}

/* /effdim/n_eff_slq_flags (m) int64, each a combination of the
 * EFFDIM_SLQ_FLAG_* bits (0..7). */
static effdim_status get_flags(reader *r, effdim_spectrum *s)
{
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    effdim_status st = effdim_h5_shape(r->file, "effdim/n_eff_slq_flags", &rank, dims, NULL, r->err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1 || dims[0] != s->m, r->err, EFFDIM_EFORMAT,
                    "%s: /effdim/n_eff_slq_flags: expected %zu values (one per z)", r->path, s->m);
    int64_t *v = effdim_alloc(s->m ? s->m : 1, sizeof(int64_t), "SLQ flags", r->err);
    s->slq_flags = effdim_calloc(s->m ? s->m : 1, sizeof *s->slq_flags, "SLQ flags", r->err);
    if (!v || !s->slq_flags) {
        free(v);
        return EFFDIM_ENOMEM;
    }
    st = effdim_h5_read_int64s(r->file, "effdim/n_eff_slq_flags", v, s->m, r->err);
    for (size_t i = 0; !st && i < s->m; ++i) {
        if (v[i] < 0 || v[i] > (int64_t)EFFDIM_SLQ_FLAG_ALL) {
            st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                                  "%s: /effdim/n_eff_slq_flags[%zu] = %lld, expected 0..7 "
                                  "(1 negative kink, 2 bias, 4 few probes)", r->path, i,
                                  (long long)v[i]);
            break;
        }
        s->slq_flags[i] = (unsigned)v[i];
    }
    free(v);
    return st;
}

static effdim_status read_effdim_group(reader *r, effdim_spectrum *s)
{
    effdim_status st = get_vec(r, "effdim/z", 0, &s->z, &s->m);
    if (!st) st = get_vec(r, "effdim/n_eff", s->m, &s->n_eff, NULL);
    if (!st && effdim_h5_has_link(r->file, "effdim/n_eff_dense"))
        st = get_vec(r, "effdim/n_eff_dense", s->m, &s->n_eff_dense, NULL);
    if (st || !effdim_h5_has_link(r->file, "effdim/n_eff_slq")) return st;
    st = get_vec(r, "effdim/n_eff_slq", s->m, &s->n_eff_slq, NULL);
    if (!st && effdim_h5_has_link(r->file, "effdim/n_eff_slq_se"))
        st = get_vec(r, "effdim/n_eff_slq_se", s->m, &s->n_eff_slq_se, NULL);
    if (!st && effdim_h5_has_link(r->file, "effdim/n_eff_slq_bias"))
        st = get_vec(r, "effdim/n_eff_slq_bias", s->m, &s->n_eff_slq_bias, NULL);
    if (!st && effdim_h5_has_link(r->file, "effdim/n_eff_slq_flags")) st = get_flags(r, s);
    if (st) return st;
    hid_t g = H5Gopen2(r->file, "effdim", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /effdim: not a group", r->path);
    st = get_u64(r, g, "slq_probes", &s->slq_probes);
    if (!st) st = get_u64(r, g, "slq_steps", &s->slq_steps);
    if (!st) st = get_u64(r, g, "slq_deflated", &s->slq_deflated);
    if (!st && effdim_h5_has_attr(g, "slq_stop"))
        st = get_str(r, g, "slq_stop", s->slq_stop, sizeof s->slq_stop);
    if (!st && effdim_h5_has_attr(g, "slq_target_rel"))
        st = effdim_h5_attr_read_double(g, "slq_target_rel", &s->slq_target_rel, r->err);
    if (!st && effdim_h5_has_attr(g, "slq_target_abs"))
        st = effdim_h5_attr_read_double(g, "slq_target_abs", &s->slq_target_abs, r->err);
    H5Gclose(g);
    return st;
}

/* /dense/eigenvalues [P] with /effdim/n_eff_dense and the root attributes */
static effdim_status read_dense(reader *r, effdim_spectrum *s)
{
    int has = effdim_h5_has_link(r->file, "dense/eigenvalues") != 0;
    RETURN_ERROR_IF(has != (s->n_eff_dense != NULL), r->err, EFFDIM_EFORMAT,
                    "%s: %s without %s", r->path, has ? "/dense/eigenvalues" : "/effdim/n_eff_dense",
                    has ? "/effdim/n_eff_dense" : "/dense/eigenvalues");
    if (!has) return EFFDIM_OK;
    effdim_status st = get_vec(r, "dense/eigenvalues", (size_t)s->n_params, &s->dense_eigenvalues,
                               NULL);
    if (st) return st;
    for (size_t i = 1; i < (size_t)s->n_params; ++i)
        RETURN_ERROR_IF(s->dense_eigenvalues[i] > s->dense_eigenvalues[i - 1], r->err,
                        EFFDIM_EFORMAT, "%s: /dense/eigenvalues: not descending at index %zu",
                        r->path, i);
    return effdim_h5_attr_read_double(r->file, "dense_asymmetry", &s->dense_asymmetry, r->err);
}

static effdim_status read_trace_density(reader *r, effdim_spectrum *s)
{
    effdim_status st = EFFDIM_OK;
    if (effdim_h5_has_link(r->file, "trace")) {
        hid_t g = H5Gopen2(r->file, "trace", H5P_DEFAULT);
        RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /trace: not a group", r->path);
        s->has_trace = 1;
        st = effdim_h5_attr_read_double(g, "estimate", &s->trace, r->err);
        if (!st) st = effdim_h5_attr_read_double(g, "se", &s->trace_se, r->err);
        if (!st) st = get_str(r, g, "method", s->trace_method, sizeof s->trace_method);
        if (!st) st = get_u64(r, g, "probes", &s->trace_probes);
        if (!st) st = get_u64(r, g, "matvecs", &s->trace_matvecs);
        H5Gclose(g);
        if (st) return st;
    }
    if (effdim_h5_has_link(r->file, "density")) {
        st = get_vec(r, "density/grid", 0, &s->grid, &s->n_grid);
        if (!st) st = get_vec(r, "density/values", s->n_grid, &s->density, NULL);
        if (st) return st;
        hid_t g = H5Gopen2(r->file, "density", H5P_DEFAULT);
        st = effdim_h5_attr_read_double(g, "sigma", &s->density_sigma, r->err);
        if (!st) st = get_u64(r, g, "probes", &s->density_probes);
        if (!st) st = get_u64(r, g, "steps", &s->density_steps);
        H5Gclose(g);
    }
    return st;
}

static effdim_status read_layer(reader *r, size_t l, effdim_spectrum_layer *ly, size_t m)
{
    char name[96], g_name[64];
    snprintf(g_name, sizeof g_name, "per_layer/layer%zu", l);
    hid_t g = H5Gopen2(r->file, g_name, H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /%s: not a group", r->path, g_name);
    uint64_t off = 0, size = 0;
    effdim_status st = get_u64(r, g, "offset", &off);
    if (!st) st = get_u64(r, g, "size", &size);
    H5Gclose(g);
    if (st) return st;
    ly->offset = (size_t)off;
    ly->size = (size_t)size;
    snprintf(name, sizeof name, "%s/eigenvalues", g_name);
    st = get_vec(r, name, 0, &ly->eigenvalues, &ly->k);
    snprintf(name, sizeof name, "%s/residuals", g_name);
    if (!st) st = get_vec(r, name, ly->k, &ly->residuals, NULL);
    snprintf(name, sizeof name, "%s/n_eff", g_name);
    if (!st && effdim_h5_has_link(r->file, name)) st = get_vec(r, name, m, &ly->n_eff, NULL);
    return st;
}

static effdim_status read_per_layer(reader *r, effdim_spectrum *s)
{
    if (!effdim_h5_has_link(r->file, "per_layer")) return EFFDIM_OK;
    size_t count = 0;
    char name[64];
    for (;; ++count) {
        snprintf(name, sizeof name, "per_layer/layer%zu", count);
        if (!effdim_h5_has_link(r->file, name)) break;
    }
    if (!count) return EFFDIM_OK;
    s->layers = effdim_calloc(count, sizeof *s->layers, "per-layer spectra", r->err);
    if (!s->layers) return EFFDIM_ENOMEM;
    s->n_layers = count;
    for (size_t l = 0; l < count; ++l) {
        effdim_status st = read_layer(r, l, &s->layers[l], s->m);
        if (st) return st;
    }
    return EFFDIM_OK;
}

effdim_status effdim_spectrum_load(const char *path, effdim_spectrum **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "spectrum: NULL argument");
    *out = NULL;
    reader r = {path, H5I_INVALID_HID, err};
    effdim_status st = effdim_h5_open_read(path, &r.file, err);
    if (st) return st;
    effdim_spectrum *s = effdim_calloc(1, sizeof *s, "spectrum", err);
    if (!s) {
        H5Fclose(r.file);
        return EFFDIM_ENOMEM;
    }
    st = read_format(&r);
    if (!st) st = read_root(&r, s);
    if (!st) st = check_names(&r, s);
    if (!st) st = read_spectrum_group(&r, s);
    if (!st) st = read_effdim_group(&r, s);
    if (!st) st = read_dense(&r, s);
    if (!st) st = read_trace_density(&r, s);
    if (!st) st = read_per_layer(&r, s);
    H5Fclose(r.file);
    if (st) {
        effdim_spectrum_free(s);
        return st;
    }
    *out = s;
    return EFFDIM_OK;
}

void effdim_spectrum_free(effdim_spectrum *s)
{
    if (!s) return;
    free(s->checkpoint);
    free(s->data_spec);
    free(s->version);
    free(s->created);
    free(s->slq_warning);
    free(s->command_line);
    free(s->notes);
    free(s->eigenvalues);
    free(s->residuals);
    free(s->residual_bounds);
    free(s->converged);
    free(s->eigenvectors);
    free(s->z);
    free(s->n_eff);
    free(s->n_eff_slq);
    free(s->n_eff_slq_se);
    free(s->n_eff_slq_bias);
    free(s->n_eff_dense);
    free(s->dense_eigenvalues);
    free(s->grid);
    free(s->density);
    for (size_t l = 0; l < s->n_layers; ++l) {
        free(s->layers[l].eigenvalues);
        free(s->layers[l].residuals);
        free(s->layers[l].n_eff);
    }
    free(s->layers);
    free(s->slq_flags);
    free(s);
}
