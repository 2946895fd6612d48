/* lib/data_h5.c: datasets in HDF5, the layout h5py and pandas users write by hand.
 *
 *   /X  (n, d) float64 or float32 (read as double)
 *   /y  (n) integer labels in [0, k)          -> LABELS
 *       (n) float targets                     -> REAL, k = 1
 *       (n, k) float64 or float32 targets     -> REAL
 *   /y attribute num_classes (optional, integer): k for labels (a subset may
 *       not contain the largest class); default max label + 1
 *   /   attributes format = "effdim.dataset", format_version = 1, spec
 *       (written by effdim_save_h5; not required on read)
 *
 * Only the rows asked for are allocated and read (effdim_load_h5_rows, the
 * spec's n= with subset=first, and of those one rank's share), in blocks; a data set that declares more
 * values than the file stores is refused before anything is allocated
 * (h5io.c), so memory is bounded by the rows asked for and by the data the
 * file really holds, not by the shape its header claims.
 *
 * Every error names the file and the data set ("data.h5: /y: ..."): shapes
 * that disagree, zero or absurd sizes, wrong types, NaN or Inf values, and
 * labels outside [0, 2^31).
 */
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "data_internal.h"
#include "h5io.h"
#include "internal.h"

#define DATA_FORMAT "effdim.dataset"

/* /X shape into n, d, refusing rank != 2, zero and absurd sizes */
static effdim_status x_shape(const char *path, hid_t f, size_t *n, size_t *d, effdim_error *err)
{
    int rank;
    size_t dims[EFFDIM_H5_MAX_RANK], nd;
    H5T_class_t cls;
    effdim_status st = effdim_h5_shape(f, "/X", &rank, dims, &cls, err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 2, err, EFFDIM_EFORMAT, "%s: /X: rank %d, expected 2 (n, d)", path, rank);
    RETURN_ERROR_IF(cls != H5T_FLOAT, err, EFFDIM_EFORMAT,
                    "%s: /X: expected float32 or float64 values", path);
    RETURN_ERROR_IF(dims[0] == 0 || dims[1] == 0, err, EFFDIM_EFORMAT,
                    "%s: /X: shape (%zu, %zu), expected at least one row and one column", path,
                    dims[0], dims[1]);
    RETURN_ERROR_IF(effdim_mul_size(dims[0], dims[1], &nd) || nd > EFFDIM_DATA_MAX_ELEMENTS, err,
                    EFFDIM_EFORMAT, "%s: /X: absurd shape (%zu, %zu), more than %zu values", path,
                    dims[0], dims[1], (size_t)EFFDIM_DATA_MAX_ELEMENTS);
    *n = dims[0];
    *d = dims[1];
    return EFFDIM_OK;
}

/* integer /y: all `rows` selected rows are read and checked (k from
 * num_classes or the max + 1 over them, as for the whole selection), the
 * share [first, first + ds->n) of them kept in labels */
static effdim_status read_labels(const char *path, hid_t f, size_t rows, size_t first,
                                 effdim_dataset *ds, effdim_error *err)
{
    int64_t *y = effdim_alloc(rows, sizeof *y, "/y labels", err);
    if (!y) return EFFDIM_ENOMEM;
    effdim_status st = effdim_h5_read_int64s_rows(f, "/y", 0, rows, y, rows, err);
    int64_t max = 0;
    for (size_t i = 0; !st && i < rows; ++i) {
        if (y[i] < 0 || y[i] > INT32_MAX - 1)
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /y: label at row %zu is %lld, expected 0 .. %d",
                                  path, i, (long long)y[i], INT32_MAX - 1);
        else if (y[i] > max)
            max = y[i];
    }
    for (size_t i = 0; !st && i < ds->n; ++i) ds->labels[i] = (int32_t)y[first + i];
    free(y);
    if (st) return st;
    ds->k = (size_t)max + 1;
    hid_t yd = H5Dopen2(f, "/y", H5P_DEFAULT);
    if (yd >= 0 && effdim_h5_has_attr(yd, "num_classes")) {
        int64_t k;
        st = effdim_h5_attr_read_int64(yd, "num_classes", &k, err);
        if (!st && (k <= max || k > INT32_MAX))
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: /y: attribute num_classes = %lld, but the largest label is %lld",
                                  path, (long long)k, (long long)max);
        if (!st) ds->k = (size_t)k;
    }
    if (yd >= 0) H5Dclose(yd);
    return st;
}

/* "(a, b, ...)" into buf */
static const char *shape_str(int rank, const size_t *dims, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && used < cap; ++i)
        used += (size_t)snprintf(buf + used, cap - used, "%s%zu", i ? ", " : "", dims[i]);
    if (used < cap) snprintf(buf + used, cap - used, ")");
    return buf;
}

/* The shape and kind /y implies, given n rows. */
static effdim_status y_shape(const char *path, hid_t f, size_t n, effdim_target_kind *kind,
                             size_t *k, effdim_error *err)
{
    int rank;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    char shp[128];
    effdim_status st = effdim_h5_shape(f, "/y", &rank, dims, &cls, err);
    if (st) return st;
    RETURN_ERROR_IF(cls != H5T_INTEGER && cls != H5T_FLOAT, err, EFFDIM_EFORMAT,
                    "%s: /y: expected integer labels or float targets", path);
    RETURN_ERROR_IF(rank < 1 || rank > 2 || dims[0] != n || (cls == H5T_INTEGER && rank != 1), err,
                    EFFDIM_EFORMAT, "%s: /y: shape %s, expected (%zu) %s to match /X", path,
                    shape_str(rank, dims, shp, sizeof shp), n,
                    cls == H5T_INTEGER ? "integer labels" : "or (n, k) float targets");
    *kind = cls == H5T_INTEGER ? EFFDIM_TARGET_LABELS : EFFDIM_TARGET_REAL;
    *k = rank == 2 ? dims[1] : 1;
    RETURN_ERROR_IF(*k == 0 || *k > EFFDIM_DATA_MAX_ELEMENTS / n, err, EFFDIM_EFORMAT,
                    "%s: /y: shape %s: zero or absurd number of target columns", path,
                    shape_str(rank, dims, shp, sizeof shp));
    return EFFDIM_OK;
}

effdim_status effdim_load_h5_rows(const char *path, size_t rows, int ranks, int rank,
                                  effdim_dataset **out, size_t *n_sel, effdim_error *err)
{
    hid_t f;
    size_t n = 0, d = 0, k = 0, b = 0, e = 0;
    effdim_target_kind kind = EFFDIM_TARGET_LABELS;
    effdim_dataset *ds = NULL;
    *out = NULL;
    if (n_sel) *n_sel = 0;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (st) return st;
    st = x_shape(path, f, &n, &d, err);
    if (!st) st = y_shape(path, f, n, &kind, &k, err);
    if (!st && rows > n)
        st = effdim_error_set(err, EFFDIM_EINVAL, "%s: %zu rows requested, the file has %zu", path,
                              rows, n);
    if (!st && rows) n = rows; /* the selection: the first n rows */
    if (!st && n_sel) *n_sel = n;
    if (!st && ranks > 1) st = effdim_rows_for_ranks(n, ranks, path, err);
    /* only this share of the selection is allocated and read (all of it for one rank) */
    if (!st) effdim_comm_share(n, ranks > 1 ? ranks : 1, ranks > 1 ? rank : 0, &b, &e);
    if (!st) st = effdim_dataset_alloc(e - b, d, k, kind, &ds, err);
    if (!st) st = effdim_h5_read_doubles_rows(f, "/X", b, e - b, ds->X, (e - b) * d, err);
    if (!st) st = effdim_data_check_finite(ds->X, e - b, d, b, path, "/X", err);
    if (!st && kind == EFFDIM_TARGET_REAL) {
        st = effdim_h5_read_doubles_rows(f, "/y", b, e - b, ds->Y, (e - b) * k, err);
        if (!st) st = effdim_data_check_finite(ds->Y, e - b, k, b, path, "/y", err);
    }
    if (!st && kind == EFFDIM_TARGET_LABELS) st = read_labels(path, f, n, b, ds, err);
    H5Fclose(f);
    if (st) {
        effdim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return EFFDIM_OK;
}

effdim_status effdim_load_h5(const char *path, effdim_dataset **out, effdim_error *err)
{
    return effdim_load_h5_rows(path, 0, 1, 0, out, NULL, err);
}

effdim_status effdim_save_h5(const effdim_dataset *ds, const char *path, effdim_error *err)
{
    effdim_h5_atomic a;
    int64_t *y = NULL;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    size_t xd[2] = {ds->n, ds->d}, yd[2] = {ds->n, ds->k};
    st = effdim_h5_attr_write_string(a.file, "format", DATA_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(a.file, "format_version", 1, err);
    if (!st && ds->spec) st = effdim_h5_attr_write_string(a.file, "spec", ds->spec, err);
    if (!st) st = effdim_h5_write_doubles(a.file, "X", 2, xd, ds->X, err);
    if (!st && ds->kind == EFFDIM_TARGET_REAL) st = effdim_h5_write_doubles(a.file, "y", 2, yd, ds->Y, err);
    if (!st && ds->kind == EFFDIM_TARGET_LABELS) {
        y = effdim_alloc(ds->n, sizeof *y, "/y labels", err);
        if (!y) st = EFFDIM_ENOMEM;
        for (size_t i = 0; y && i < ds->n; ++i) y[i] = ds->labels[i];
        if (!st) st = effdim_h5_write_int64s(a.file, "y", 1, yd, y, err);
        hid_t yds = st ? H5I_INVALID_HID : H5Dopen2(a.file, "y", H5P_DEFAULT);
        if (yds >= 0) {
            st = effdim_h5_attr_write_int64(yds, "num_classes", (int64_t)ds->k, err);
            H5Dclose(yds);
        }
    }
    free(y);
    if (!st) return effdim_h5_atomic_commit(&a, err);
    effdim_h5_atomic_abort(&a);
    return st;
}
