/* lib/inspect.c: the summary of any HDF5 file (effdim/inspect.h): root
 * attributes with their values and every data set with shape and type,
 * through effdim_h5_open_read (the defended open of every loader). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/inspect.h"
#include "h5io.h"
#include "internal.h"

typedef struct collect {
    effdim_file_summary *s;
    size_t cap;
    effdim_status st;
    effdim_error *err;
} collect;

static void attr_free(effdim_file_attr *a)
{
    free(a->name);
    if (a->strings) effdim_h5_strings_free(a->strings, a->n);
    free(a->values);
}

void effdim_file_summary_free(effdim_file_summary *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_attrs; ++i) attr_free(&s->attrs[i]);
    for (size_t i = 0; i < s->n_datasets; ++i) free(s->datasets[i].path);
    free(s->attrs);
    free(s->datasets);
    free(s->format);
    free(s);
}

const effdim_file_attr *effdim_file_summary_attr(const effdim_file_summary *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_attrs; ++i)
        if (!strcmp(s->attrs[i].name, name)) return &s->attrs[i];
    return NULL;
}

/* One attribute's values (what the summary reads; anything else is OTHER). */
static void read_attr(hid_t obj, const char *name, effdim_file_attr *a)
{
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT);
    if (at < 0) return;
    hid_t ft = H5Aget_type(at), sp = H5Aget_space(at);
    H5T_class_t cls = H5Tget_class(ft);
    int rank = H5Sget_simple_extent_ndims(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    a->scalar = rank == 0;
    if (cls == H5T_STRING) {
        char **s = NULL;
        size_t n = 0;
        if (!effdim_h5_attr_read_strings(obj, name, &s, &n, NULL)) {
            a->kind = EFFDIM_ATTR_STRING;
            a->strings = s;
            a->n = n;
        }
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && np >= 1 && rank <= 1) {
        double *v = malloc((size_t)np * sizeof *v);
        if (v && H5Aread(at, H5T_NATIVE_DOUBLE, v) >= 0) {
            a->kind = EFFDIM_ATTR_NUMBER;
            a->values = v;
            a->n = (size_t)np;
        } else {
            free(v);
        }
    }
    H5Tclose(ft);
    H5Sclose(sp);
    H5Aclose(at);
}

static herr_t attr_cb(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    collect *c = data;
    effdim_file_summary *s = c->s;
    if (s->n_attrs == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        effdim_file_attr *p = realloc(s->attrs, cap * sizeof *p);
        if (!p) {
            c->st = effdim_error_set(c->err, EFFDIM_ENOMEM, "out of memory for the attributes");
            return -1;
        }
        s->attrs = p;
        c->cap = cap;
    }
    effdim_file_attr *a = &s->attrs[s->n_attrs];
    memset(a, 0, sizeof *a);
    a->kind = EFFDIM_ATTR_OTHER;
    a->name = effdim_strdup(name, c->err);
    if (!a->name) {
        c->st = EFFDIM_ENOMEM;
        return -1;
    }
    s->n_attrs++;
    read_attr(obj, name, a);
    return 0;
}

static const char *type_name(hid_t t)
{
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (cls == H5T_FLOAT) return size == 4 ? "float32" : size == 8 ? "float64" : "float";
    if (cls == H5T_INTEGER) {
        int sgn = H5Tget_sign(t) == H5T_SGN_2;
        switch (size) {
        case 1: return sgn ? "int8" : "uint8";
        case 2: return sgn ? "int16" : "uint16";
        case 4: return sgn ? "int32" : "uint32";
        case 8: return sgn ? "int64" : "uint64";
        default: return "integer";
        }
    }
    if (cls == H5T_STRING) return "string";
    if (cls == H5T_COMPOUND) return "compound";
    if (cls == H5T_ENUM) return "enum";
    return "other";
}

static herr_t visit_cb(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    collect *c = data;
    effdim_file_summary *s = c->s;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t ds = H5Dopen2(root, name, H5P_DEFAULT);
    if (ds < 0) return 0;
    if (s->n_datasets == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        effdim_file_dataset *p = realloc(s->datasets, cap * sizeof *p);
        if (!p) {
            H5Dclose(ds);
            c->st = effdim_error_set(c->err, EFFDIM_ENOMEM, "out of memory for the data sets");
            return -1;
        }
        s->datasets = p;
        c->cap = cap;
    }
    effdim_file_dataset *d = &s->datasets[s->n_datasets];
    memset(d, 0, sizeof *d);
    size_t len = strlen(name) + 2;
    d->path = effdim_alloc(len, 1, "a data set's path", c->err);
    if (!d->path) {
        H5Dclose(ds);
        c->st = EFFDIM_ENOMEM;
        return -1;
    }
    snprintf(d->path, len, "/%s", name);
    s->n_datasets++;
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK];
    if (rank > 0 && rank <= EFFDIM_INSPECT_MAX_RANK) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        d->rank = (size_t)rank;
        for (int i = 0; i < rank; ++i) d->dims[i] = (uint64_t)dims[i];
    }
    snprintf(d->type, sizeof d->type, "%s", type_name(t));
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(ds);
    return 0;
}

effdim_status effdim_inspect_file(const char *path, effdim_file_summary **out, effdim_error *err)
{
    *out = NULL;
    hid_t file;
    effdim_status st = effdim_h5_open_read(path, &file, err);
    if (st) return st;
    effdim_file_summary *s = effdim_calloc(1, sizeof *s, "file summary", err);
    if (!s) {
        H5Fclose(file);
        return EFFDIM_ENOMEM;
    }
    collect c = {s, 0, EFFDIM_OK, err};
    hsize_t idx = 0;
    H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &c);
    if (!c.st) {
        c.cap = 0;
#if H5_VERSION_GE(1, 12, 0)
        H5Ovisit3(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &c, H5O_INFO_BASIC);
#else
        H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &c);
#endif
    }
    H5Fclose(file);
    const effdim_file_attr *f = c.st ? NULL : effdim_file_summary_attr(s, "format");
    if (f && f->kind == EFFDIM_ATTR_STRING && f->n == 1 && !(s->format = effdim_strdup(f->strings[0], err)))
        c.st = EFFDIM_ENOMEM;
    if (c.st) {
        effdim_file_summary_free(s);
        return c.st;
    }
    *out = s;
    return EFFDIM_OK;
}

/* ---- sweep files ------------------------------------------------------------- */

void effdim_sweep_summary_free(effdim_sweep_summary *s)
{
    if (!s) return;
    effdim_sweep_table_free(s->table);
    free(s->config_text);
    free(s);
}

static int row_by_index(const void *a, const void *b)
{
    int64_t x = ((const effdim_sweep_row *)a)->index, y = ((const effdim_sweep_row *)b)->index;
    return (x > y) - (x < y);
}

effdim_status effdim_inspect_sweep(const char *path, effdim_sweep_summary **out, effdim_error *err)
{
    *out = NULL;
    effdim_sweep_summary *s = effdim_calloc(1, sizeof *s, "sweep summary", err);
    if (!s) return EFFDIM_ENOMEM;
    effdim_status st = effdim_sweep_table_load(path, &s->table, err);
    effdim_sweep_config *c = NULL;
    if (!st) {
        effdim_error pe;
        if (effdim_sweep_config_parse(s->table->config, "config", &c, &pe))
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /sweep attribute %s", path, pe.msg);
    }
    if (!st) {
        size_t len = effdim_sweep_config_describe(c, NULL, 0) + 1;
        if (!(s->config_text = effdim_alloc(len, 1, "sweep config text", err))) st = EFFDIM_ENOMEM;
        else effdim_sweep_config_describe(c, s->config_text, len);
    }
    if (!st) {
        effdim_sweep_table *t = s->table;
        if (effdim_sweep_config_size(c) != t->grid_size)
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: grid_size %zu, but the stored config has %zu configurations",
                                  path, t->grid_size, effdim_sweep_config_size(c));
        for (size_t i = t->shard_index; i < t->grid_size; i += t->shard_count) s->shard_total++;
        qsort(t->rows, t->n_rows, sizeof *t->rows, row_by_index);
        for (size_t i = 0; i < t->n_rows; ++i) {
            const char *status = t->rows[i].status;
            if (!strcmp(status, "ok")) s->n_ok++;
            else if (!strcmp(status, "partial")) s->n_partial++;
            else s->n_failed++;
        }
        s->n_missing = s->shard_total > t->n_rows ? s->shard_total - t->n_rows : 0;
    }
    effdim_sweep_config_free(c);
    if (st) {
        effdim_sweep_summary_free(s);
        return st;
    }
    *out = s;
    return EFFDIM_OK;
}
