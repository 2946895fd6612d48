/* lib/diag_io.c: reading the diag file (format "effdim.diag", version 1) that
 * `effdim diag` writes; the layout is in effdim/diag.h and docs/diagonals.md.
 *
 * Reading follows the root convention of every effdim file: 'format' first
 * (a spectrum or checkpoint file is refused by name), then 'format_version'
 * (newer is EVERSION), then the 'methods' list, each name a float64 [P]
 * dataset under /diag with an optional /se/<name> twin.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/diag.h"
#include "h5io.h"
#include "internal.h"

void effdim_diag_file_free(effdim_diag_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->count; ++i) {
        free(f->entries[i].v);
        free(f->entries[i].se);
    }
    free(f->entries);
    free(f->checkpoint);
    free(f->data_spec);
    free(f);
}

const effdim_diag_entry *effdim_diag_file_find(const effdim_diag_file *f, const char *name)
{
    for (size_t i = 0; f && name && i < f->count; ++i)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

static effdim_status read_root(hid_t file, const char *path, effdim_diag_file *f, effdim_error *err)
{
    char fmt[64] = "", buf[4096];
    int64_t version = 0, n = 0, P = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_string(file, "format", fmt, sizeof fmt, NULL) ||
                        strcmp(fmt, EFFDIM_DIAG_FORMAT),
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'format' is '%s', expected '%s'", path,
                    fmt, EFFDIM_DIAG_FORMAT);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(file, "format_version", &version, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'format_version' is missing", path);
    RETURN_ERROR_IF(version > EFFDIM_DIAG_VERSION, err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%d)", path,
                    (long long)version, EFFDIM_DIAG_VERSION);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(file, "n_params", &P, NULL) || P < 1, err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'n_params' missing or < 1", path);
    effdim_h5_attr_read_int64(file, "n", &n, NULL);
    f->n_params = (uint64_t)P;
    f->n = n > 0 ? (uint64_t)n : 0;
    if (effdim_h5_attr_read_string(file, "loss", f->loss, sizeof f->loss, NULL)) f->loss[0] = 0;
    if (effdim_h5_attr_read_string(file, "reduction", f->reduction, sizeof f->reduction, NULL))
        f->reduction[0] = 0;
    if (effdim_h5_attr_read_string(file, "checkpoint", buf, sizeof buf, NULL)) buf[0] = 0;
    f->checkpoint = effdim_strdup(buf, err);
    if (effdim_h5_attr_read_string(file, "data_spec", buf, sizeof buf, NULL)) buf[0] = 0;
    f->data_spec = effdim_strdup(buf, err);
    return f->checkpoint && f->data_spec ? EFFDIM_OK : EFFDIM_ENOMEM;
}

/* One vector named `name` under group g (its path for messages is grp/name). */
static effdim_status read_vector(hid_t g, const char *path, const char *grp, const char *name,
                                 size_t P, double **out, effdim_error *err)
{
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    RETURN_ERROR_IF(!effdim_h5_has_link(g, name), err, EFFDIM_EFORMAT,
                    "%s: /%s/%s: listed in 'methods' but missing", path, grp, name);
    effdim_status st = effdim_h5_shape(g, name, &rank, dims, &cls, err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1 || dims[0] != P, err, EFFDIM_EFORMAT,
                    "%s: /%s/%s: shape (%zu%s), expected (%zu)", path, grp, name,
                    rank >= 1 ? dims[0] : 0, rank > 1 ? ", ..." : "", P);
    *out = effdim_alloc(P, sizeof(double), name, err);
    if (!*out) return EFFDIM_ENOMEM;
    return effdim_h5_read_doubles(g, name, *out, P, err);
}

static effdim_status read_entries(hid_t file, const char *path, effdim_diag_file *f,
                                  effdim_error *err)
{
    char **names = NULL;
    size_t count = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_strings(file, "methods", &names, &count, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'methods' is missing", path);
    hid_t g = effdim_h5_has_link(file, "diag") ? H5Gopen2(file, "diag", H5P_DEFAULT) : -1;
    hid_t gse = effdim_h5_has_link(file, "se") ? H5Gopen2(file, "se", H5P_DEFAULT) : -1;
    effdim_status st = g < 0 && count ? effdim_error_set(err, EFFDIM_EFORMAT,
                                                         "%s: /diag: missing", path)
                                      : EFFDIM_OK;
    f->entries = st ? NULL : effdim_calloc(count ? count : 1, sizeof *f->entries, "entries", err);
    if (!st && !f->entries) st = EFFDIM_ENOMEM;
    for (size_t i = 0; !st && i < count; ++i) {
        effdim_diag_entry *e = &f->entries[i];
        ++f->count;
        snprintf(e->name, sizeof e->name, "%s", names[i]);
        e->trace_se = (double)NAN;
        st = read_vector(g, path, "diag", names[i], (size_t)f->n_params, &e->v, err);
        if (!st && gse >= 0 && effdim_h5_has_link(gse, names[i]))
            st = read_vector(gse, path, "se", names[i], (size_t)f->n_params, &e->se, err);
        if (st) break;
        hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT);
        if (d >= 0) {
            if (effdim_h5_attr_read_string(d, "method", e->method, sizeof e->method, NULL))
                snprintf(e->method, sizeof e->method, "%s", names[i]);
            if (effdim_h5_attr_read_double(d, "trace_se", &e->trace_se, NULL))
                e->trace_se = (double)NAN;
            H5Dclose(d);
        }
    }
    if (g >= 0) H5Gclose(g);
    if (gse >= 0) H5Gclose(gse);
    effdim_h5_strings_free(names, count);
    return st;
}

effdim_status effdim_diag_file_load(const char *path, effdim_diag_file **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "diag file: NULL argument");
    *out = NULL;
    hid_t file;
    effdim_status st = effdim_h5_open_read(path, &file, err);
    if (st) return st;
    effdim_diag_file *f = effdim_calloc(1, sizeof *f, "diag file", err);
    if (!f) st = EFFDIM_ENOMEM;
    if (!st) st = read_root(file, path, f, err);
    if (!st) st = read_entries(file, path, f, err);
    H5Fclose(file);
    if (st) {
        effdim_diag_file_free(f);
        return st;
    }
    *out = f;
    return EFFDIM_OK;
}
