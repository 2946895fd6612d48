/* lib/h5io.c: HDF5 helpers (atomic writes, string attributes, float datasets).
 * See h5io.h for the conventions. */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void effdim_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

const char *effdim_h5_where(hid_t obj, const char *name, char *buf, size_t cap)
{
    char file[EFFDIM_PATH_MAX] = "?";
    char path[1024] = "";
    if (H5Fget_name(obj, file, sizeof file) < 0) snprintf(file, sizeof file, "?");
    if (H5Iget_name(obj, path, sizeof path) < 0) path[0] = '\0';
    if (strcmp(path, "/") == 0) path[0] = '\0';
    if (name && name[0] == '/')
        snprintf(buf, cap, "%s: %s", file, name);
    else if (name)
        snprintf(buf, cap, "%s: %s/%s", file, path, name);
    else
        snprintf(buf, cap, "%s: %s", file, path[0] ? path : "/");
    return buf;
}

/* ---- atomic writes ----------------------------------------------------- */

effdim_status effdim_h5_atomic_begin(const char *path, effdim_h5_atomic *a, effdim_error *err)
{
    effdim_h5_quiet();
    a->file = H5I_INVALID_HID;
    a->tmp[0] = '\0';
    if (!path || !path[0]) return effdim_error_set(err, EFFDIM_EINVAL, "output path is empty");
    int len = snprintf(a->path, sizeof a->path, "%s", path);
    int tlen = snprintf(a->tmp, sizeof a->tmp, "%s.tmp-XXXXXX", path);
    if (len < 0 || (size_t)len >= sizeof a->path || tlen < 0 || (size_t)tlen >= sizeof a->tmp)
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: path too long", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        effdim_error_set(err, EFFDIM_EIO, "%s: cannot create a temporary file beside it: %s", path,
                         strerror(errno));
        a->tmp[0] = '\0';
        return EFFDIM_EIO;
    }
    /* mkstemp makes the file 0600; give it the mode a plain create would */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal: the file is still ours */
    }
    close(fd);
    a->file = H5Fcreate(a->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (a->file < 0) {
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return effdim_error_set(err, EFFDIM_EIO, "%s: HDF5 cannot create the file", path);
    }
    return EFFDIM_OK;
}

effdim_status effdim_h5_atomic_commit(effdim_h5_atomic *a, effdim_error *err)
{
    if (a->file < 0) return effdim_error_set(err, EFFDIM_EINVAL, "%s: file is not open", a->path);
    herr_t st = H5Fflush(a->file, H5F_SCOPE_GLOBAL);
    st |= H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    if (st < 0) {
        effdim_h5_atomic_abort(a);
        return effdim_error_set(err, EFFDIM_EIO, "%s: writing failed (disk full?)", a->path);
    }
    int fd = open(a->tmp, O_RDONLY);
    if (fd >= 0) {
        if (fsync(fd) != 0) {
            close(fd);
            effdim_h5_atomic_abort(a);
            return effdim_error_set(err, EFFDIM_EIO, "%s: fsync failed: %s", a->path, strerror(errno));
        }
        close(fd);
    }
    if (rename(a->tmp, a->path) != 0) {
        int e = errno;
        effdim_h5_atomic_abort(a);
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot rename the finished file into place: %s",
                                a->path, strerror(e));
    }
    a->tmp[0] = '\0';
    return EFFDIM_OK;
}

void effdim_h5_atomic_abort(effdim_h5_atomic *a)
{
    if (!a) return;
    if (a->file >= 0) H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    if (a->tmp[0]) unlink(a->tmp);
    a->tmp[0] = '\0';
}

effdim_status effdim_h5_open_read(const char *path, hid_t *file, effdim_error *err)
{
    effdim_h5_quiet();
    *file = H5I_INVALID_HID;
    if (access(path, R_OK) != 0)
        return effdim_error_set(err, errno == ENOENT ? EFFDIM_ENOTFOUND : EFFDIM_EIO,
                                "%s: cannot open: %s", path, strerror(errno));
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: not an HDF5 file (bad signature or truncated)",
                                path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) return effdim_error_set(err, EFFDIM_EFORMAT, "%s: HDF5 cannot open the file", path);
    return EFFDIM_OK;
}

int effdim_h5_has_link(hid_t loc, const char *name)
{
    /* check each path component so a missing parent is not an error */
    char buf[1024];
    size_t len = strlen(name);
    if (len >= sizeof buf) return 0;
    memcpy(buf, name, len + 1);
    for (size_t i = 1; i <= len; ++i) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            buf[i] = c;
        }
    }
    return 1;
}

int effdim_h5_has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

effdim_status effdim_h5_group(hid_t loc, const char *name, hid_t *group, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    if (effdim_h5_has_link(loc, name))
        *group = H5Gopen2(loc, name, H5P_DEFAULT);
    else
        *group = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (*group < 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot create group",
                                effdim_h5_where(loc, name, where, sizeof where));
    return EFFDIM_OK;
}

/* ---- attributes: write --------------------------------------------------- */

static effdim_status attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                                const void *buf, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t at = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = at < 0 ? -1 : H5Awrite(at, mtype, buf);
    if (at >= 0) H5Aclose(at);
    if (st < 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot write attribute '%s'",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    return EFFDIM_OK;
}

static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

effdim_status effdim_h5_attr_write_string(hid_t obj, const char *name, const char *value,
                                          effdim_error *err)
{
    hid_t t = vlen_str_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    const char *v = value ? value : "";
    effdim_status st = attr_write(obj, name, t, t, sp, &v, err);
    H5Sclose(sp);
    H5Tclose(t);
    return st;
}

effdim_status effdim_h5_attr_write_strings(hid_t obj, const char *name, const char *const *values,
                                           size_t n, effdim_error *err)
{
    hid_t t = vlen_str_type();
    hsize_t dim = n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    effdim_status st = attr_write(obj, name, t, t, sp, values, err);
    H5Sclose(sp);
    H5Tclose(t);
    return st;
}

static effdim_status attr_write_num(hid_t obj, const char *name, hid_t ftype, hid_t mtype,
                                    const void *v, size_t n, int scalar, effdim_error *err)
{
    hsize_t dim = n;
    hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    effdim_status st = attr_write(obj, name, ftype, mtype, sp, v, err);
    H5Sclose(sp);
    return st;
}

effdim_status effdim_h5_attr_write_double(hid_t obj, const char *name, double v, effdim_error *err)
{
    return attr_write_num(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 1, 1, err);
}

effdim_status effdim_h5_attr_write_doubles(hid_t obj, const char *name, const double *v, size_t n,
                                           effdim_error *err)
{
    return attr_write_num(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, n, 0, err);
}

effdim_status effdim_h5_attr_write_int64(hid_t obj, const char *name, int64_t v, effdim_error *err)
{
    return attr_write_num(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 1, 1, err);
}

effdim_status effdim_h5_attr_write_int64s(hid_t obj, const char *name, const int64_t *v, size_t n,
                                          effdim_error *err)
{
    return attr_write_num(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n, 0, err);
}

/* ---- attributes: read ---------------------------------------------------- */

static effdim_status attr_open(hid_t obj, const char *name, hid_t *at, hssize_t *npoints,
                               effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    if (H5Aexists(obj, name) <= 0)
        return effdim_error_set(err, EFFDIM_ENOTFOUND, "%s: attribute '%s' is missing",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    *at = H5Aopen(obj, name, H5P_DEFAULT);
    if (*at < 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot open attribute '%s'",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    hid_t sp = H5Aget_space(*at);
    int rank = H5Sget_simple_extent_ndims(sp);
    *npoints = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (rank > 1 || *npoints < 0) {
        H5Aclose(*at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' must be a scalar or 1-D",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    }
    return EFFDIM_OK;
}

effdim_status effdim_h5_attr_read_strings(hid_t obj, const char *name, char ***out, size_t *n,
                                          effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    hid_t at;
    hssize_t np;
    *out = NULL;
    *n = 0;
    effdim_status st = attr_open(obj, name, &at, &np, err);
    if (st) return st;
    hid_t ft = H5Aget_type(at);
    if (H5Tget_class(ft) != H5T_STRING) {
        H5Tclose(ft);
        H5Aclose(at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' must be a string",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    }
    size_t count = (size_t)np;
    char **res = effdim_calloc(count ? count : 1, sizeof *res, "string attribute", err);
    if (!res) {
        H5Tclose(ft);
        H5Aclose(at);
        return EFFDIM_ENOMEM;
    }
    herr_t rs = 0;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char **tmp = effdim_calloc(count ? count : 1, sizeof *tmp, "string attribute", err);
        if (!tmp) rs = -1;
        if (tmp) rs = H5Aread(at, mt, tmp);
        if (rs >= 0) {
            for (size_t i = 0; i < count; ++i) {
                res[i] = effdim_strdup(tmp[i] ? tmp[i] : "", err);
                if (!res[i]) rs = -1;
            }
            hid_t sp = H5Aget_space(at);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, tmp); /* H5Treclaim from HDF5 1.12 on */
            H5Sclose(sp);
        }
        free(tmp);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        char *raw = effdim_calloc(count ? count : 1, sz + 1, "string attribute", err);
        if (!raw) rs = -1;
        if (raw) rs = H5Aread(at, mt, raw);
        for (size_t i = 0; rs >= 0 && i < count; ++i) {
            char *s = effdim_calloc(sz + 1, 1, "string attribute", err);
            if (!s) {
                rs = -1;
                break;
            }
            memcpy(s, raw + i * sz, sz);
            /* trim space padding (H5T_STR_SPACEPAD) */
            size_t l = strlen(s);
            while (l > 0 && s[l - 1] == ' ') s[--l] = '\0';
            res[i] = s;
        }
        free(raw);
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(at);
    if (rs < 0) {
        effdim_h5_strings_free(res, count);
        if (err && err->code == EFFDIM_ENOMEM) return EFFDIM_ENOMEM;
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read string attribute '%s'",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    }
    *out = res;
    *n = count;
    return EFFDIM_OK;
}

void effdim_h5_strings_free(char **s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; ++i) free(s[i]);
    free(s);
}

effdim_status effdim_h5_attr_read_string(hid_t obj, const char *name, char *buf, size_t cap,
                                         effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    char **s;
    size_t n;
    effdim_status st = effdim_h5_attr_read_strings(obj, name, &s, &n, err);
    if (st) return st;
    if (n != 1) {
        effdim_h5_strings_free(s, n);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' must be one string, has %zu",
                                effdim_h5_where(obj, NULL, where, sizeof where), name, n);
    }
    snprintf(buf, cap, "%s", s[0]);
    effdim_h5_strings_free(s, n);
    return EFFDIM_OK;
}

static effdim_status attr_read_num(hid_t obj, const char *name, hid_t mtype, void *v, size_t cap,
                                   size_t *n, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    hid_t at;
    hssize_t np;
    effdim_status st = attr_open(obj, name, &at, &np, err);
    if (st) return st;
    hid_t ft = H5Aget_type(at);
    H5T_class_t cls = H5Tget_class(ft);
    H5Tclose(ft);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        H5Aclose(at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' must be numeric",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    }
    if ((size_t)np > cap) {
        H5Aclose(at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' has %lld values, at most %zu expected",
                                effdim_h5_where(obj, NULL, where, sizeof where), name, (long long)np, cap);
    }
    herr_t rs = H5Aread(at, mtype, v);
    H5Aclose(at);
    if (rs < 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read attribute '%s'",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    if (n) *n = (size_t)np;
    return EFFDIM_OK;
}

effdim_status effdim_h5_attr_read_double(hid_t obj, const char *name, double *v, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_DOUBLE, v, 1, NULL, err);
}

effdim_status effdim_h5_attr_read_int64(hid_t obj, const char *name, int64_t *v, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_INT64, v, 1, NULL, err);
}

effdim_status effdim_h5_attr_read_int64s(hid_t obj, const char *name, int64_t *v, size_t cap,
                                         size_t *n, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_INT64, v, cap, n, err);
}

effdim_status effdim_h5_attr_read_doubles(hid_t obj, const char *name, double *v, size_t cap,
                                          size_t *n, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_DOUBLE, v, cap, n, err);
}

/* ---- datasets ---------------------------------------------------------- */

static effdim_status write_dataset(hid_t loc, const char *name, int rank, const size_t *dims,
                                   hid_t ftype, hid_t mtype, const void *data, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    hsize_t hd[EFFDIM_H5_MAX_RANK];
    if (rank < 1 || rank > EFFDIM_H5_MAX_RANK)
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: rank %d unsupported",
                                effdim_h5_where(loc, name, where, sizeof where), rank);
    for (int i = 0; i < rank; ++i) hd[i] = dims[i];
    hid_t sp = H5Screate_simple(rank, hd, NULL);
    hid_t ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = ds < 0 ? -1 : H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    if (st < 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot write data set",
                                effdim_h5_where(loc, name, where, sizeof where));
    return EFFDIM_OK;
}

effdim_status effdim_h5_write_doubles(hid_t loc, const char *name, int rank, const size_t *dims,
                                      const double *data, effdim_error *err)
{
    return write_dataset(loc, name, rank, dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, err);
}

effdim_status effdim_h5_write_int64s(hid_t loc, const char *name, int rank, const size_t *dims,
                                     const int64_t *data, effdim_error *err)
{
    return write_dataset(loc, name, rank, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, data, err);
}

effdim_status effdim_h5_shape(hid_t loc, const char *name, int *rank, size_t *dims,
                              H5T_class_t *cls, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    if (!effdim_h5_has_link(loc, name))
        return effdim_error_set(err, EFFDIM_ENOTFOUND, "%s: data set is missing",
                                effdim_h5_where(loc, name, where, sizeof where));
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: not a data set",
                                effdim_h5_where(loc, name, where, sizeof where));
    hid_t sp = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(sp);
    hsize_t hd[EFFDIM_H5_MAX_RANK];
    effdim_status st = EFFDIM_OK;
    if (r < 0 || r > EFFDIM_H5_MAX_RANK) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: rank %d unsupported",
                              effdim_h5_where(loc, name, where, sizeof where), r);
    } else {
        H5Sget_simple_extent_dims(sp, hd, NULL);
        for (int i = 0; i < r; ++i) dims[i] = (size_t)hd[i];
        *rank = r;
        if (cls) {
            hid_t t = H5Dget_type(ds);
            *cls = H5Tget_class(t);
            H5Tclose(t);
        }
    }
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}

static effdim_status read_dataset(hid_t loc, const char *name, H5T_class_t want, hid_t mtype,
                                  void *out, size_t count, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    int rank;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_status st = effdim_h5_shape(loc, name, &rank, dims, &cls, err);
    if (st) return st;
    size_t total = 1;
    for (int i = 0; i < rank; ++i)
        if (effdim_mul_size(total, dims[i], &total))
            return effdim_error_set(err, EFFDIM_EFORMAT, "%s: absurd dimensions",
                                    effdim_h5_where(loc, name, where, sizeof where));
    if (cls != want)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: expected %s values",
                                effdim_h5_where(loc, name, where, sizeof where),
                                want == H5T_FLOAT ? "float32 or float64" : "integer");
    if (total != count)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: has %zu values, expected %zu",
                                effdim_h5_where(loc, name, where, sizeof where), total, count);
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    herr_t rs = ds < 0 ? -1 : H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    if (ds >= 0) H5Dclose(ds);
    if (rs < 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read (corrupt or truncated file?)",
                                effdim_h5_where(loc, name, where, sizeof where));
    return EFFDIM_OK;
}

effdim_status effdim_h5_read_doubles(hid_t loc, const char *name, double *out, size_t count,
                                     effdim_error *err)
{
    return read_dataset(loc, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, out, count, err);
}

effdim_status effdim_h5_read_int64s(hid_t loc, const char *name, int64_t *out, size_t count,
                                    effdim_error *err)
{
    return read_dataset(loc, name, H5T_INTEGER, H5T_NATIVE_INT64, out, count, err);
}
