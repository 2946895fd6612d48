/* lib/compare_io.c: the comparison file (format "effdim.compare", version 1)
 * that `effdim compare` writes: save and load of an effdim_compare_file
 * (effdim/compare.h; docs/file-formats.md documents every field).
 *
 * Layout:
 *   /                       attrs format, format_version, checkpoint, checkpoint_sha256,
 *                           spectrum_file, diag_file, data_spec, n_params, loss,
 *                           reduction, neg_policy, exact, diagonals (strings), blocks
 *                           (strings), block_offsets, block_sizes (int64), topm_fractions,
 *                           version, created, command_line
 *   /z                      float64 [m]
 *   /reference/             eigenvalues [k], n_eff [m], n_eff_slq [m], n_eff_slq_se [m],
 *                           n_eff_upper_psd [m] (the last three optional); attrs operator,
 *                           source, trace_eigs, trace, trace_se, trace_method (optional),
 *                           trace_exact (optional)
 *   /compare/<diag>/<block> attrs trace, trace_exact, trace_eigs, negative, spearman,
 *                           rel_error, rel_error_fit, fit_scale, median_rel_error,
 *                           scale_ratio, size, k; n_eff [m], top, ratio, partial [q],
 *                           n_eff_eigs [m] (optional), topm (int64) and baseline
 *                           [n_topm], mass [kv] and alignment (kv, n_topm) (optional)
 *
 * Reading validates every name against what it may be (diagonal names from
 * the known set, blocks "all" and "layer<i>", operator hessian or ggn, the
 * policy, loss and reduction by their parsers) and every length against the
 * others, so nothing a file says reaches a table, a path or a plotting
 * script unchecked.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/compare.h"
#include "io_provenance.h"
#include "internal.h"

void effdim_compare_file_free(effdim_compare_file *f)
{
    if (!f) return;
    for (size_t i = 0; f->results && i < f->n_diags * f->n_blocks; ++i)
        effdim_compare_result_free(&f->results[i]);
    free(f->results);
    free(f->checkpoint);
    free(f->spectrum_file);
    free(f->diag_file);
    free(f->data_spec);
    free(f->command_line);
    free(f->version);
    free(f->created);
    free(f->exact);
    free(f->ref_source);
    free(f->z);
    free(f->eigenvalues);
    free(f->n_eff);
    free(f->n_eff_slq);
    free(f->n_eff_slq_se);
    free(f->n_eff_upper_psd);
    for (size_t d = 0; d < EFFDIM_COMPARE_MAX_DIAGS; ++d) {
        free(f->sorted[d]);
        free(f->curve_diag[d]);
    }
    free(f->curve_z);
    free(f->curve_eigs);
    free(f->curve_bound);
    free(f->slq_z);
    free(f->slq_n_eff);
    free(f->slq_se);
    free(f);
}

/* ======================================================================
 * Save
 * ====================================================================== */

static effdim_status put_vec(hid_t g, const char *name, const double *v, size_t n,
                             effdim_error *err)
{
    return effdim_h5_write_doubles(g, name, 1, &n, v, err);
}

static effdim_status write_result(hid_t g, const effdim_compare_result *r, effdim_error *err)
{
    size_t dims[2] = {r->kv, r->n_topm};
    int64_t topm[EFFDIM_COMPARE_MAX_TOPM];
    for (size_t t = 0; t < r->n_topm; ++t) topm[t] = (int64_t)r->topm[t];
    struct { const char *k; double v; } a[] = {
        {"trace", r->trace}, {"trace_exact", r->trace_exact}, {"trace_eigs", r->trace_eigs},
        {"negative", (double)r->negative}, {"spearman", r->spearman}, {"rel_error", r->rel_error},
        {"rel_error_fit", r->rel_error_fit}, {"fit_scale", r->fit_scale},
        {"median_rel_error", r->median_rel_error}, {"scale_ratio", r->scale_ratio},
        {"size", (double)r->n}};
    effdim_status st = EFFDIM_OK;
    for (size_t i = 0; !st && i < sizeof a / sizeof a[0]; ++i)
        st = effdim_h5_attr_write_double(g, a[i].k, a[i].v, err);
    if (!st) st = effdim_h5_attr_write_int64(g, "k", (int64_t)r->k, err);
    if (!st) st = put_vec(g, "n_eff", r->n_eff, r->m, err);
    if (!st) st = put_vec(g, "top", r->top, r->q, err);
    if (!st) st = put_vec(g, "ratio", r->ratio, r->q, err);
    if (!st) st = put_vec(g, "partial", r->partial, r->q, err);
    if (!st && r->n_eff_eigs) st = put_vec(g, "n_eff_eigs", r->n_eff_eigs, r->m, err);
    if (!st) st = effdim_h5_write_int64s(g, "topm", 1, &r->n_topm, topm, err);
    if (!st) st = put_vec(g, "baseline", r->baseline, r->n_topm, err);
    if (!st && r->kv) st = put_vec(g, "mass", r->mass, r->kv, err);
    if (!st && r->kv) st = effdim_h5_write_doubles(g, "alignment", 2, dims, r->alignment, err);
    return st;
}

static effdim_status write_reference(hid_t file, const effdim_compare_file *f, effdim_error *err)
{
    hid_t g;
    effdim_status st = effdim_h5_group(file, "reference", &g, err);
    if (st) return st;
    st = put_vec(g, "eigenvalues", f->eigenvalues, f->k, err);
    if (!st) st = put_vec(g, "n_eff", f->n_eff, f->m, err);
    if (!st && f->n_eff_slq) st = put_vec(g, "n_eff_slq", f->n_eff_slq, f->m, err);
    if (!st && f->n_eff_slq && f->n_eff_slq_se)
        st = put_vec(g, "n_eff_slq_se", f->n_eff_slq_se, f->m, err);
    if (!st && f->n_eff_upper_psd) st = put_vec(g, "n_eff_upper_psd", f->n_eff_upper_psd, f->m, err);
    if (!st) st = effdim_h5_attr_write_string(g, "operator", f->ref_operator, err);
    if (!st) st = effdim_h5_attr_write_string(g, "source", f->ref_source ? f->ref_source : "", err);
    if (!st) st = effdim_h5_attr_write_double(g, "trace_eigs", f->trace_eigs, err);
    if (!st && f->has_trace) st = effdim_h5_attr_write_double(g, "trace", f->trace, err);
    if (!st && f->has_trace) st = effdim_h5_attr_write_double(g, "trace_se", f->trace_se, err);
    if (!st && f->has_trace) st = effdim_h5_attr_write_string(g, "trace_method", f->trace_method, err);
    if (!st && f->has_trace_exact) st = effdim_h5_attr_write_double(g, "trace_exact", f->trace_exact, err);
    H5Gclose(g);
    return st;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

static effdim_status write_sorted(hid_t file, const effdim_compare_file *f, effdim_error *err)
{
    hid_t g;
    effdim_status st = effdim_h5_group(file, "sorted", &g, err);
    if (st) return st;
    st = effdim_h5_attr_write_double(g, "floor", f->sorted_floor, err);
    for (size_t d = 0; !st && d < f->n_diags; ++d) {
        size_t dims[2] = {f->sorted_n[d], 2};
        static const double none[2] = {0.0, 0.0};
        st = effdim_h5_write_doubles(g, f->diag_names[d], 2, dims, f->sorted[d] ? f->sorted[d] : none,
                                     err);
    }
    H5Gclose(g);
    return st;
}

static effdim_status write_root(hid_t file, const effdim_compare_file *f, effdim_error *err)
{
    const char *dn[EFFDIM_COMPARE_MAX_DIAGS], *bn[EFFDIM_COMPARE_MAX_BLOCKS];
    int64_t off[EFFDIM_COMPARE_MAX_BLOCKS], len[EFFDIM_COMPARE_MAX_BLOCKS];
    for (size_t i = 0; i < f->n_diags; ++i) dn[i] = f->diag_names[i];
    for (size_t b = 0; b < f->n_blocks; ++b) {
        bn[b] = f->block_names[b];
        off[b] = (int64_t)f->block_offsets[b];
        len[b] = (int64_t)f->block_sizes[b];
    }
    effdim_status st = effdim_h5_attr_write_string(file, "format", EFFDIM_COMPARE_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(file, "format_version", EFFDIM_COMPARE_VERSION, err);
    if (!st) st = effdim_h5_attr_write_string(file, "checkpoint", or_empty(f->checkpoint), err);
    if (!st) st = effdim_h5_attr_write_string(file, "checkpoint_sha256", f->checkpoint_sha256, err);
    if (!st) st = effdim_h5_attr_write_string(file, "spectrum_file", or_empty(f->spectrum_file), err);
    if (!st) st = effdim_h5_attr_write_string(file, "diag_file", or_empty(f->diag_file), err);
    if (!st) st = effdim_h5_attr_write_string(file, "data_spec", or_empty(f->data_spec), err);
    if (!st) st = effdim_h5_attr_write_int64(file, "n_params", (int64_t)f->n_params, err);
    if (!st) st = effdim_h5_attr_write_string(file, "loss", f->loss, err);
    if (!st) st = effdim_h5_attr_write_string(file, "reduction", f->reduction, err);
    if (!st)
        st = effdim_h5_attr_write_string(file, "neg_policy", effdim_neg_policy_name(f->neg_policy),
                                         err);
    if (!st) st = effdim_h5_attr_write_string(file, "exact", or_empty(f->exact), err);
    if (!st) st = effdim_h5_attr_write_strings(file, "diagonals", dn, f->n_diags, err);
    if (!st) st = effdim_h5_attr_write_strings(file, "blocks", bn, f->n_blocks, err);
    if (!st) st = effdim_h5_attr_write_int64s(file, "block_offsets", off, f->n_blocks, err);
    if (!st) st = effdim_h5_attr_write_int64s(file, "block_sizes", len, f->n_blocks, err);
    if (!st) st = effdim_h5_attr_write_doubles(file, "topm_fractions", f->topm_fractions, f->n_topm, err);
    if (!st) st = effdim_h5_write_provenance(file, f->command_line, f->version, f->created, err);
    if (!st) st = put_vec(file, "z", f->z, f->m, err);
    return st;
}

static effdim_status write_curves(hid_t file, const effdim_compare_file *f, effdim_error *err)
{
    hid_t g;
    effdim_status st = EFFDIM_OK;
    if (f->slq_m) {
        st = effdim_h5_group(file, "slq", &g, err);
        if (st) return st;
        st = put_vec(g, "z", f->slq_z, f->slq_m, err);
        if (!st) st = put_vec(g, "n_eff", f->slq_n_eff, f->slq_m, err);
        if (!st && f->slq_se) st = put_vec(g, "se", f->slq_se, f->slq_m, err);
        H5Gclose(g);
    }
    if (st || !f->curve_m) return st;
    st = effdim_h5_group(file, "curves", &g, err);
    if (st) return st;
    st = put_vec(g, "z", f->curve_z, f->curve_m, err);
    if (!st) st = put_vec(g, "eigenvalues", f->curve_eigs, f->curve_m, err);
    if (!st && f->curve_bound) st = put_vec(g, "upper_psd", f->curve_bound, f->curve_m, err);
    if (!st) {
        hid_t gd;
        st = effdim_h5_group(g, "diagonals", &gd, err);
        for (size_t d = 0; !st && d < f->n_diags; ++d)
            if (f->curve_diag[d]) st = put_vec(gd, f->diag_names[d], f->curve_diag[d], f->curve_m, err);
        if (gd >= 0) H5Gclose(gd);
    }
    H5Gclose(g);
    return st;
}

static effdim_status check_for_save(const effdim_compare_file *f, const char *path,
                                    effdim_error *err)
{
    RETURN_ERROR_IF(!f || !path, err, EFFDIM_EINVAL, "compare file: NULL argument");
    RETURN_ERROR_IF(f->n_diags > EFFDIM_COMPARE_MAX_DIAGS || f->n_blocks == 0 ||
                        f->n_blocks > EFFDIM_COMPARE_MAX_BLOCKS || f->n_topm > EFFDIM_COMPARE_MAX_TOPM,
                    err, EFFDIM_EINVAL, "%s: %zu diagonals, %zu blocks, %zu fractions: out of range",
                    path, f->n_diags, f->n_blocks, f->n_topm);
    RETURN_ERROR_IF(!f->z || !f->m || !f->eigenvalues || !f->n_eff || (f->n_diags && !f->results),
                    err, EFFDIM_EINVAL, "%s: z grid, eigenvalues, N_eff or results missing", path);
    for (size_t i = 0; i < f->n_diags * f->n_blocks; ++i)
        RETURN_ERROR_IF(f->results[i].m != f->m, err, EFFDIM_EINVAL,
                        "%s: result %zu has %zu z values, the grid %zu", path, i, f->results[i].m,
                        f->m);
    return EFFDIM_OK;
}

effdim_status effdim_compare_file_save(const effdim_compare_file *f, const char *path,
                                       effdim_error *err)
{
    effdim_status st = check_for_save(f, path, err);
    if (st) return st;
    effdim_h5_atomic a;
    st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    st = write_root(a.file, f, err);
    if (!st) st = write_reference(a.file, f, err);
    hid_t top = -1;
    if (!st) st = effdim_h5_group(a.file, "compare", &top, err);
    for (size_t d = 0; !st && d < f->n_diags; ++d) {
        hid_t gd;
        st = effdim_h5_group(top, f->diag_names[d], &gd, err);
        for (size_t b = 0; !st && b < f->n_blocks; ++b) {
            hid_t gb;
            st = effdim_h5_group(gd, f->block_names[b], &gb, err);
            if (!st) {
                st = write_result(gb, &f->results[d * f->n_blocks + b], err);
                H5Gclose(gb);
            }
        }
        if (gd >= 0 && !st) H5Gclose(gd);
    }
    if (top >= 0) H5Gclose(top);
    if (!st) st = write_sorted(a.file, f, err);
    if (!st) st = write_curves(a.file, f, err);
    if (!st) st = effdim_h5_atomic_commit(&a, err);
    if (st) effdim_h5_atomic_abort(&a);
    return st;
}

/* ======================================================================
 * Load
 * ====================================================================== */

typedef struct creader {
    hid_t file;
    const char *path;
    effdim_error *err;
} creader;

/* A float64 vector at loc/name of exactly n values (n = 0: any length >= 1,
 * its length into *len). */
static effdim_status get_vec(creader *r, hid_t loc, const char *where, const char *name, size_t n,
                             double **out, size_t *len)
{
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    RETURN_ERROR_IF(!effdim_h5_has_link(loc, name), r->err, EFFDIM_ENOTFOUND, "%s: %s/%s: missing",
                    r->path, where, name);
    effdim_status st = effdim_h5_shape(loc, name, &rank, dims, &cls, r->err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1 || (n && dims[0] != n) || (!n && !len), r->err, EFFDIM_EFORMAT,
                    "%s: %s/%s: shape (%zu%s), expected (%zu)", r->path, where, name,
                    rank >= 1 ? dims[0] : 0, rank > 1 ? ", ..." : "", n);
    size_t cnt = dims[0];
    double *v = effdim_alloc(cnt ? cnt : 1, sizeof(double), name, r->err);
    if (!v) return EFFDIM_ENOMEM;
    st = cnt ? effdim_h5_read_doubles(loc, name, v, cnt, r->err) : EFFDIM_OK;
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    if (len) *len = cnt;
    return EFFDIM_OK;
}

static effdim_status get_opt_vec(creader *r, hid_t loc, const char *where, const char *name,
                                 size_t n, double **out)
{
    *out = NULL;
    if (!effdim_h5_has_link(loc, name)) return EFFDIM_OK;
    return get_vec(r, loc, where, name, n, out, NULL);
}

static effdim_status get_dup(creader *r, hid_t loc, const char *where, const char *name,
                             char **out)
{
    char buf[EFFDIM_PATH_MAX];
    RETURN_ERROR_IF(effdim_h5_attr_read_string(loc, name, buf, sizeof buf, NULL), r->err,
                    EFFDIM_EFORMAT, "%s: %s: attribute '%s' missing or not a string", r->path,
                    where, name);
    *out = effdim_strdup(buf, r->err);
    return *out ? EFFDIM_OK : EFFDIM_ENOMEM;
}

static effdim_status get_name(creader *r, hid_t loc, const char *where, const char *name, char *buf,
                              size_t cap)
{
    RETURN_ERROR_IF(effdim_h5_attr_read_string(loc, name, buf, cap, NULL), r->err, EFFDIM_EFORMAT,
                    "%s: %s: attribute '%s' missing or not a string", r->path, where, name);
    return EFFDIM_OK;
}

static effdim_status get_real(creader *r, hid_t loc, const char *where, const char *name, double *v)
{
    RETURN_ERROR_IF(effdim_h5_attr_read_double(loc, name, v, NULL), r->err, EFFDIM_EFORMAT,
                    "%s: %s: attribute '%s' missing or not a number", r->path, where, name);
    return EFFDIM_OK;
}

/* A block name: "all" or "layer<digits>". */
static int block_name_ok(const char *s)
{
    if (!strcmp(s, "all")) return 1;
    if (strncmp(s, "layer", 5) || !s[5]) return 0;
    for (const char *c = s + 5; *c; ++c)
        if (*c < '0' || *c > '9') return 0;
    return 1;
}

static effdim_status read_names(creader *r, const char *attr, char (*out)[EFFDIM_COMPARE_NAME_MAX],
                                size_t cap, size_t *n, int blocks)
{
    char **names = NULL;
    size_t count = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_strings(r->file, attr, &names, &count, NULL), r->err,
                    EFFDIM_EFORMAT, "%s: /: attribute '%s' is missing", r->path, attr);
    effdim_status st = count > cap ? effdim_error_set(r->err, EFFDIM_EFORMAT,
                                                      "%s: /: attribute '%s': %zu names, at most %zu",
                                                      r->path, attr, count, cap)
                                   : EFFDIM_OK;
    for (size_t i = 0; !st && i < count; ++i) {
        if (blocks && !block_name_ok(names[i]))
            st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                                  "%s: /: attribute '%s': block %zu is not 'all' or 'layer<i>'",
                                  r->path, attr, i);
        else if (!blocks) {
            effdim_status s2 = effdim_diag_name_check(names[i], r->err);
            if (s2) {
                char msg[sizeof r->err->msg];
                snprintf(msg, sizeof msg, "%s", r->err->msg);
                st = effdim_error_set(r->err, EFFDIM_EFORMAT, "%s: /: attribute '%s': %s", r->path,
                                      attr, msg);
            }
        }
        if (!st) snprintf(out[i], EFFDIM_COMPARE_NAME_MAX, "%s", names[i]);
    }
    effdim_h5_strings_free(names, count);
    *n = count;
    return st;
}

static effdim_status read_root(creader *r, effdim_compare_file *f)
{
    char fmt[64] = "", pol[EFFDIM_COMPARE_NAME_MAX];
    hid_t h = r->file;
    if (effdim_h5_attr_read_string(h, "format", fmt, sizeof fmt, NULL) ||
        strcmp(fmt, EFFDIM_COMPARE_FORMAT) != 0)
        return effdim_error_set(r->err, EFFDIM_EFORMAT,
                                "%s: /: attribute 'format' is '%s', expected '%s'", r->path, fmt,
                                EFFDIM_COMPARE_FORMAT);
    int64_t version = 0, P = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(h, "format_version", &version, NULL), r->err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'format_version' is missing", r->path);
    RETURN_ERROR_IF(version > EFFDIM_COMPARE_VERSION, r->err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%d)", r->path,
                    (long long)version, EFFDIM_COMPARE_VERSION);
    RETURN_ERROR_IF(version < 1, r->err, EFFDIM_EFORMAT, "%s: /: format_version %lld, expected 1",
                    r->path, (long long)version);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(h, "n_params", &P, NULL) || P < 1, r->err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'n_params' missing or < 1", r->path);
    f->n_params = (uint64_t)P;
    effdim_status st = get_dup(r, h, "/", "checkpoint", &f->checkpoint);
    if (!st) st = get_name(r, h, "/", "checkpoint_sha256", f->checkpoint_sha256,
                           sizeof f->checkpoint_sha256);
    if (!st) st = get_dup(r, h, "/", "spectrum_file", &f->spectrum_file);
    if (!st) st = get_dup(r, h, "/", "diag_file", &f->diag_file);
    if (!st) st = get_dup(r, h, "/", "data_spec", &f->data_spec);
    if (!st) st = get_dup(r, h, "/", "exact", &f->exact);
    if (!st) st = get_dup(r, h, "/", "version", &f->version);
    if (!st) st = get_dup(r, h, "/", "created", &f->created);
    if (!st && effdim_h5_has_attr(h, "command_line"))
        st = get_dup(r, h, "/", "command_line", &f->command_line);
    else if (!st && !(f->command_line = effdim_strdup("", r->err))) st = EFFDIM_ENOMEM;
    if (!st) st = get_name(r, h, "/", "loss", f->loss, sizeof f->loss);
    if (!st) st = get_name(r, h, "/", "reduction", f->reduction, sizeof f->reduction);
    if (!st) st = get_name(r, h, "/", "neg_policy", pol, sizeof pol);
    if (st) return st;
    effdim_loss loss;
    effdim_reduction red;
    RETURN_ERROR_IF(effdim_loss_parse(f->loss, &loss, NULL), r->err, EFFDIM_EFORMAT,
                    "%s: /: attribute 'loss' is not a known loss", r->path);
    RETURN_ERROR_IF(effdim_reduction_parse(f->reduction, &red, NULL), r->err, EFFDIM_EFORMAT,
                    "%s: /: attribute 'reduction' is '%s', expected mean or sum", r->path,
                    f->reduction);
    RETURN_ERROR_IF(effdim_neg_policy_parse(pol, &f->neg_policy, NULL), r->err, EFFDIM_EFORMAT,
                    "%s: /: attribute 'neg_policy' is not zero, abs or asis", r->path);
    st = read_names(r, "diagonals", f->diag_names, EFFDIM_COMPARE_MAX_DIAGS, &f->n_diags, 0);
    if (!st) st = read_names(r, "blocks", f->block_names, EFFDIM_COMPARE_MAX_BLOCKS, &f->n_blocks, 1);
    if (st) return st;
    RETURN_ERROR_IF(f->n_blocks == 0, r->err, EFFDIM_EFORMAT, "%s: /: attribute 'blocks' is empty",
                    r->path);
    int64_t off[EFFDIM_COMPARE_MAX_BLOCKS], len[EFFDIM_COMPARE_MAX_BLOCKS];
    size_t no = 0, nl = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64s(h, "block_offsets", off, EFFDIM_COMPARE_MAX_BLOCKS,
                                               &no, NULL) ||
                        effdim_h5_attr_read_int64s(h, "block_sizes", len,
                                                   EFFDIM_COMPARE_MAX_BLOCKS, &nl, NULL) ||
                        no != f->n_blocks || nl != f->n_blocks,
                    r->err, EFFDIM_EFORMAT,
                    "%s: /: attributes 'block_offsets' and 'block_sizes' must have one value per "
                    "block (%zu)",
                    r->path, f->n_blocks);
    for (size_t b = 0; b < f->n_blocks; ++b) {
        RETURN_ERROR_IF(off[b] < 0 || len[b] < 1 || off[b] + len[b] > P, r->err, EFFDIM_EFORMAT,
                        "%s: /: block %zu [%lld, +%lld) is outside the %lld parameters", r->path, b,
                        (long long)off[b], (long long)len[b], (long long)P);
        f->block_offsets[b] = (size_t)off[b];
        f->block_sizes[b] = (size_t)len[b];
    }
    RETURN_ERROR_IF(effdim_h5_attr_read_doubles(h, "topm_fractions", f->topm_fractions,
                                                EFFDIM_COMPARE_MAX_TOPM, &f->n_topm, NULL),
                    r->err, EFFDIM_EFORMAT, "%s: /: attribute 'topm_fractions' missing or too long",
                    r->path);
    return get_vec(r, h, "", "z", 0, &f->z, &f->m);
}

static effdim_status read_reference(creader *r, effdim_compare_file *f)
{
    RETURN_ERROR_IF(!effdim_h5_has_link(r->file, "reference"), r->err, EFFDIM_ENOTFOUND,
                    "%s: /reference: missing", r->path);
    hid_t g = H5Gopen2(r->file, "reference", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /reference: not a group", r->path);
    const char *w = "/reference";
    effdim_status st = get_vec(r, g, w, "eigenvalues", 0, &f->eigenvalues, &f->k);
    if (!st) st = get_vec(r, g, w, "n_eff", f->m, &f->n_eff, NULL);
    if (!st) st = get_opt_vec(r, g, w, "n_eff_slq", f->m, &f->n_eff_slq);
    if (!st) st = get_opt_vec(r, g, w, "n_eff_slq_se", f->m, &f->n_eff_slq_se);
    if (!st) st = get_opt_vec(r, g, w, "n_eff_upper_psd", f->m, &f->n_eff_upper_psd);
    if (!st) st = get_name(r, g, w, "operator", f->ref_operator, sizeof f->ref_operator);
    if (!st && strcmp(f->ref_operator, "hessian") && strcmp(f->ref_operator, "ggn"))
        st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                              "%s: /reference: attribute 'operator' is not hessian or ggn", r->path);
    if (!st) st = get_dup(r, g, w, "source", &f->ref_source);
    if (!st) st = get_real(r, g, w, "trace_eigs", &f->trace_eigs);
    f->has_trace = effdim_h5_has_attr(g, "trace");
    if (!st && f->has_trace) st = get_real(r, g, w, "trace", &f->trace);
    if (!st && f->has_trace) st = get_real(r, g, w, "trace_se", &f->trace_se);
    if (!st && f->has_trace)
        st = get_name(r, g, w, "trace_method", f->trace_method, sizeof f->trace_method);
    if (!st && f->has_trace && strcmp(f->trace_method, "hutchinson") &&
        strcmp(f->trace_method, "hutch++"))
        st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                              "%s: /reference: attribute 'trace_method' is not hutchinson or hutch++",
                              r->path);
    f->has_trace_exact = effdim_h5_has_attr(g, "trace_exact");
    if (!st && f->has_trace_exact) st = get_real(r, g, w, "trace_exact", &f->trace_exact);
    H5Gclose(g);
    return st;
}

static effdim_status read_result(creader *r, hid_t g, const char *w, size_t m,
                                 effdim_compare_result *res)
{
    struct { const char *k; double *v; } a[] = {
        {"trace", &res->trace}, {"trace_exact", &res->trace_exact}, {"trace_eigs", &res->trace_eigs},
        {"spearman", &res->spearman}, {"rel_error", &res->rel_error},
        {"rel_error_fit", &res->rel_error_fit}, {"fit_scale", &res->fit_scale},
        {"median_rel_error", &res->median_rel_error}, {"scale_ratio", &res->scale_ratio}};
    effdim_status st = EFFDIM_OK;
    for (size_t i = 0; !st && i < sizeof a / sizeof a[0]; ++i) st = get_real(r, g, w, a[i].k, a[i].v);
    double neg = 0.0, size = 0.0;
    int64_t k = 0;
    if (!st) st = get_real(r, g, w, "negative", &neg);
    if (!st) st = get_real(r, g, w, "size", &size);
    if (!st && effdim_h5_attr_read_int64(g, "k", &k, NULL)) k = -1;
    if (st) return st;
    RETURN_ERROR_IF(!(size >= 1.0 && size <= 9.0e15) || !(neg >= 0.0 && neg <= size), r->err,
                    EFFDIM_EFORMAT, "%s: %s: attributes 'size' and 'negative' out of range", r->path,
                    w);
    res->n = (size_t)size;
    res->negative = (size_t)neg;
    res->m = m;
    st = get_vec(r, g, w, "n_eff", m, &res->n_eff, NULL);
    if (!st) st = get_vec(r, g, w, "top", 0, &res->top, &res->q);
    size_t nr = 0, np = 0;
    if (!st) st = get_vec(r, g, w, "ratio", 0, &res->ratio, &nr);
    if (!st) st = get_vec(r, g, w, "partial", 0, &res->partial, &np);
    if (!st && (nr != res->q || np != res->q))
        st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                              "%s: %s: 'ratio' and 'partial' must have as many values as 'top' (%zu)",
                              r->path, w, res->q);
    if (!st) st = get_opt_vec(r, g, w, "n_eff_eigs", m, &res->n_eff_eigs);
    if (st) return st;
    res->k = k >= 0 ? (size_t)k : res->n_eff_eigs ? res->q : 0;
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    st = effdim_h5_shape(g, "topm", &rank, dims, &cls, r->err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1 || dims[0] > EFFDIM_COMPARE_MAX_TOPM, r->err, EFFDIM_EFORMAT,
                    "%s: %s/topm: expected at most %d values", r->path, w, EFFDIM_COMPARE_MAX_TOPM);
    res->n_topm = dims[0];
    int64_t topm[EFFDIM_COMPARE_MAX_TOPM];
    if (res->n_topm) st = effdim_h5_read_int64s(g, "topm", topm, res->n_topm, r->err);
    for (size_t t = 0; !st && t < res->n_topm; ++t) {
        RETURN_ERROR_IF(topm[t] < 1 || (size_t)topm[t] > res->n, r->err, EFFDIM_EFORMAT,
                        "%s: %s/topm: value %lld outside [1, %zu]", r->path, w, (long long)topm[t],
                        res->n);
        res->topm[t] = (size_t)topm[t];
    }
    double *base = NULL;
    if (!st && res->n_topm) st = get_vec(r, g, w, "baseline", res->n_topm, &base, NULL);
    if (base) memcpy(res->baseline, base, res->n_topm * sizeof(double));
    free(base);
    if (!st && effdim_h5_has_link(g, "mass")) {
        st = get_vec(r, g, w, "mass", 0, &res->mass, &res->kv);
        size_t want = res->kv * res->n_topm;
        if (!st) st = effdim_h5_shape(g, "alignment", &rank, dims, &cls, r->err);
        if (!st && (rank != 2 || dims[0] != res->kv || dims[1] != res->n_topm))
            st = effdim_error_set(r->err, EFFDIM_EFORMAT, "%s: %s/alignment: expected (%zu, %zu)",
                                  r->path, w, res->kv, res->n_topm);
        if (!st && !(res->alignment = effdim_alloc(want ? want : 1, sizeof(double), "alignment",
                                                   r->err)))
            st = EFFDIM_ENOMEM;
        if (!st && want) st = effdim_h5_read_doubles(g, "alignment", res->alignment, want, r->err);
    }
    return st;
}

static effdim_status read_results(creader *r, effdim_compare_file *f)
{
    size_t nr = f->n_diags * f->n_blocks;
    f->results = effdim_calloc(nr ? nr : 1, sizeof *f->results, "results", r->err);
    if (!f->results) return EFFDIM_ENOMEM;
    if (!nr) return EFFDIM_OK;
    hid_t top = effdim_h5_has_link(r->file, "compare") ? H5Gopen2(r->file, "compare", H5P_DEFAULT)
                                                       : -1;
    RETURN_ERROR_IF(top < 0, r->err, EFFDIM_ENOTFOUND, "%s: /compare: missing", r->path);
    effdim_status st = EFFDIM_OK;
    for (size_t d = 0; !st && d < f->n_diags; ++d)
        for (size_t b = 0; !st && b < f->n_blocks; ++b) {
            char name[2 * EFFDIM_COMPARE_NAME_MAX + 2], w[2 * EFFDIM_COMPARE_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s/%s", f->diag_names[d], f->block_names[b]);
            snprintf(w, sizeof w, "/compare/%s", name);
            hid_t g = effdim_h5_has_link(top, f->diag_names[d]) && H5Lexists(top, name, H5P_DEFAULT) > 0
                          ? H5Gopen2(top, name, H5P_DEFAULT)
                          : -1;
            if (g < 0) {
                st = effdim_error_set(r->err, EFFDIM_ENOTFOUND, "%s: %s: missing", r->path, w);
                break;
            }
            st = read_result(r, g, w, f->m, &f->results[d * f->n_blocks + b]);
            H5Gclose(g);
            if (!st && f->results[d * f->n_blocks + b].n != f->block_sizes[b])
                st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                                      "%s: %s: attribute 'size' is not the block's %zu", r->path, w,
                                      f->block_sizes[b]);
        }
    H5Gclose(top);
    return st;
}

/* /sorted (optional): (n, 2) per diagonal, ranks ascending in [1, P] */
static effdim_status read_sorted(creader *r, effdim_compare_file *f)
{
    if (!effdim_h5_has_link(r->file, "sorted")) return EFFDIM_OK;
    hid_t g = H5Gopen2(r->file, "sorted", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /sorted: not a group", r->path);
    effdim_status st = get_real(r, g, "/sorted", "floor", &f->sorted_floor);
    for (size_t d = 0; !st && d < f->n_diags; ++d) {
        const char *name = f->diag_names[d];
        int rank = 0;
        size_t dims[EFFDIM_H5_MAX_RANK];
        H5T_class_t cls;
        if (!effdim_h5_has_link(g, name)) continue;
        st = effdim_h5_shape(g, name, &rank, dims, &cls, r->err);
        if (!st && (rank != 2 || dims[1] != 2 || dims[0] > 401))
            st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                                  "%s: /sorted/%s: expected (n, 2) with n <= 401", r->path, name);
        if (!st && !(f->sorted[d] = effdim_alloc(2 * dims[0] + 2, sizeof(double), name, r->err)))
            st = EFFDIM_ENOMEM;
        if (!st && dims[0]) st = effdim_h5_read_doubles(g, name, f->sorted[d], 2 * dims[0], r->err);
        for (size_t i = 0; !st && i < dims[0]; ++i) {
            double rk = f->sorted[d][2 * i];
            if (!(rk >= 1.0 && rk <= (double)f->n_params) || (i && !(rk > f->sorted[d][2 * i - 2])))
                st = effdim_error_set(r->err, EFFDIM_EFORMAT,
                                      "%s: /sorted/%s: ranks must ascend within [1, %llu]", r->path,
                                      name, (unsigned long long)f->n_params);
        }
        if (!st) f->sorted_n[d] = dims[0];
    }
    H5Gclose(g);
    return st;
}

/* /slq and /curves (optional) */
static effdim_status read_curves(creader *r, effdim_compare_file *f)
{
    effdim_status st = EFFDIM_OK;
    if (effdim_h5_has_link(r->file, "slq")) {
        hid_t g = H5Gopen2(r->file, "slq", H5P_DEFAULT);
        RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /slq: not a group", r->path);
        st = get_vec(r, g, "/slq", "z", 0, &f->slq_z, &f->slq_m);
        if (!st) st = get_vec(r, g, "/slq", "n_eff", f->slq_m, &f->slq_n_eff, NULL);
        if (!st) st = get_opt_vec(r, g, "/slq", "se", f->slq_m, &f->slq_se);
        H5Gclose(g);
        if (st) return st;
    }
    if (!effdim_h5_has_link(r->file, "curves")) return EFFDIM_OK;
    hid_t g = H5Gopen2(r->file, "curves", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, r->err, EFFDIM_EFORMAT, "%s: /curves: not a group", r->path);
    st = get_vec(r, g, "/curves", "z", 0, &f->curve_z, &f->curve_m);
    if (!st) st = get_vec(r, g, "/curves", "eigenvalues", f->curve_m, &f->curve_eigs, NULL);
    if (!st) st = get_opt_vec(r, g, "/curves", "upper_psd", f->curve_m, &f->curve_bound);
    hid_t gd = !st && effdim_h5_has_link(g, "diagonals") ? H5Gopen2(g, "diagonals", H5P_DEFAULT) : -1;
    for (size_t d = 0; !st && gd >= 0 && d < f->n_diags; ++d)
        st = get_opt_vec(r, gd, "/curves/diagonals", f->diag_names[d], f->curve_m, &f->curve_diag[d]);
    if (gd >= 0) H5Gclose(gd);
    H5Gclose(g);
    return st;
}

effdim_status effdim_compare_file_load(const char *path, effdim_compare_file **out,
                                       effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "compare file: NULL argument");
    *out = NULL;
    hid_t file;
    effdim_status st = effdim_h5_open_read(path, &file, err);
    if (st) return st;
    creader r = {file, path, err};
    effdim_compare_file *f = effdim_calloc(1, sizeof *f, "comparison", err);
    if (!f) st = EFFDIM_ENOMEM;
    if (!st) st = read_root(&r, f);
    if (!st) st = read_reference(&r, f);
    if (!st) st = read_results(&r, f);
    if (!st) st = read_sorted(&r, f);
    if (!st) st = read_curves(&r, f);
    H5Fclose(file);
    if (st) {
        effdim_compare_file_free(f);
        return st;
    }
    *out = f;
    return EFFDIM_OK;
}
