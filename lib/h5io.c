/* lib/h5io.c: HDF5 helpers (atomic writes, string attributes, float datasets).
 * See h5io.h for the conventions. */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void effdim_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* HDF5 1.10 registers H5_term_library with atexit when it initialises. After
 * an H5Fclose that failed (a full disk), that handler walks the half-closed
 * file and dies with SIGSEGV, so a failed write ended in a crash instead of
 * its message and exit status 1. effdim closes every file it opens, so the
 * handler has nothing to do: switch it off before HDF5 initialises (this
 * constructor runs before main; H5dont_atexit does not initialise HDF5). */
__attribute__((constructor)) static void effdim_h5_no_atexit(void) { H5dont_atexit(); }

const char *effdim_h5_where(hid_t obj, const char *name, char *buf, size_t cap)
{
    char file[EFFDIM_PATH_MAX] = "?";
    char path[1024] = "";
    if (H5Fget_name(obj, file, sizeof file) < 0) snprintf(file, sizeof file, "?");
    /* a file being written is "PATH.tmp-PID-XXXXXX": messages name PATH */
    char *t = strstr(file, ".tmp-");
    if (t && strlen(t) > 12 && t[strlen(t) - 7] == '-') *t = '\0';
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
    if (len < 0 || (size_t)len >= sizeof a->path)
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: path too long", path);
    int fd = effdim_output_tmp_create(path, a->tmp, sizeof a->tmp, err);
    if (fd < 0) return err ? err->code : EFFDIM_EIO;
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

/* Refuse links that are not hard links: an external link makes HDF5 open
 * another file (any path the file's author chose), a soft or user-defined
 * link stands where a data set or group is expected. effdim never writes
 * either. */
typedef struct link_check {
    const char *path;
    effdim_error *err;
    effdim_status st;
} link_check;

static herr_t link_check_cb(hid_t loc, const char *name, const H5L_info_t *info, void *data)
{
    link_check *lc = data;
    if (info->type == H5L_TYPE_HARD) return 0;
    char val[1024] = "";
    const char *target_file = NULL, *target_obj = NULL;
    if (info->u.val_size > 0 && info->u.val_size < sizeof val &&
        H5Lget_val(loc, name, val, sizeof val, H5P_DEFAULT) >= 0) {
        val[sizeof val - 1] = '\0';
        if (info->type == H5L_TYPE_EXTERNAL)
            H5Lunpack_elink_val(val, info->u.val_size, NULL, &target_file, &target_obj);
    }
    if (info->type == H5L_TYPE_EXTERNAL)
        lc->st = effdim_error_set(lc->err, EFFDIM_EFORMAT,
                                  "%s: /%s: is an external link to '%.200s:%.200s', expected data "
                                  "stored in this file (effdim does not follow links to other files)",
                                  lc->path, name, target_file ? target_file : "?",
                                  target_obj ? target_obj : "?");
    else if (info->type == H5L_TYPE_SOFT)
        lc->st = effdim_error_set(lc->err, EFFDIM_EFORMAT,
                                  "%s: /%s: is a soft link to '%.200s', expected a data set or group "
                                  "itself (effdim does not follow links)", lc->path, name, val);
    else
        lc->st = effdim_error_set(lc->err, EFFDIM_EFORMAT,
                                  "%s: /%s: is a user-defined link, expected a data set or group "
                                  "itself (effdim does not follow links)", lc->path, name);
    return 1; /* stop */
}

effdim_status effdim_h5_open_read(const char *path, hid_t *file, effdim_error *err)
{
    effdim_h5_quiet();
    *file = H5I_INVALID_HID;
    if (access(path, R_OK) != 0)
        return effdim_error_set(err, errno == ENOENT ? EFFDIM_ENOTFOUND : EFFDIM_EIO,
                                "%s: cannot open: %s", path, strerror(errno));
    effdim_status st = effdim_h5_guard(path, err);
    if (st) return st;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: not an HDF5 file (bad signature or truncated)",
                                path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) return effdim_error_set(err, EFFDIM_EFORMAT, "%s: HDF5 cannot open the file", path);
    link_check lc = {path, err, EFFDIM_OK};
    herr_t rs = H5Lvisit(*file, H5_INDEX_NAME, H5_ITER_INC, link_check_cb, &lc);
    if (rs < 0 && !lc.st)
        lc.st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot list the objects (corrupt file?)",
                                 path);
    if (lc.st) {
        H5Fclose(*file);
        *file = H5I_INVALID_HID;
    }
    return lc.st;
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

/* ": no space left on device" when HDF5 failed on a full disk, else "" */
static const char *write_hint(int e)
{
    return e == ENOSPC ? ": no space left on device" : e == EDQUOT ? ": disk quota exceeded" : "";
}

static effdim_status attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                                const void *buf, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    errno = 0;
    hid_t at = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = at < 0 ? -1 : H5Awrite(at, mtype, buf);
    int e = errno;
    if (at >= 0) H5Aclose(at);
    if (st < 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot write attribute '%s'%s",
                                effdim_h5_where(obj, NULL, where, sizeof where), name, write_hint(e));
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

/* Numbers of an attribute into v (cap values of mtype). `exact` asks for
 * exactly that many (a scalar is one value: an empty attribute, H5S_NULL or
 * a 0-length array, is refused rather than leaving v unset). Integers read
 * from a float attribute must be whole numbers in range: 4.7 is not 4. */
static effdim_status attr_read_num(hid_t obj, const char *name, hid_t mtype, void *v, size_t cap,
                                   int exact, size_t *n, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    hid_t at;
    hssize_t np;
    effdim_status st = attr_open(obj, name, &at, &np, err);
    if (st) return st;
    hid_t ft = H5Aget_type(at);
    H5T_class_t cls = H5Tget_class(ft);
    H5Tclose(ft);
    const char *what = cls == H5T_STRING ? "a string" : "not a number";
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        H5Aclose(at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' is %s, expected %s",
                                effdim_h5_where(obj, NULL, where, sizeof where), name, what,
                                exact ? "one number" : "numbers");
    }
    if (exact && (size_t)np != cap) {
        H5Aclose(at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' has %lld values, expected "
                                "exactly %zu", effdim_h5_where(obj, NULL, where, sizeof where),
                                name, (long long)np, cap);
    }
    if ((size_t)np > cap) {
        H5Aclose(at);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' has %lld values, at most %zu expected",
                                effdim_h5_where(obj, NULL, where, sizeof where), name, (long long)np, cap);
    }
    herr_t rs;
    size_t bad = SIZE_MAX;
    double badv = 0.0;
    if (mtype == H5T_NATIVE_INT64 && cls == H5T_FLOAT) {
        double *d = effdim_alloc(np > 0 ? (size_t)np : 1, sizeof *d, "attribute", err);
        rs = d ? H5Aread(at, H5T_NATIVE_DOUBLE, d) : -1;
        for (size_t i = 0; rs >= 0 && i < (size_t)np; ++i) {
            if (!(d[i] == floor(d[i]) && fabs(d[i]) < 9.2e18)) {
                bad = i;
                badv = d[i];
                break;
            }
            ((int64_t *)v)[i] = (int64_t)d[i];
        }
        free(d);
        if (!d) {
            H5Aclose(at);
            return EFFDIM_ENOMEM;
        }
    } else {
        rs = np > 0 ? H5Aread(at, mtype, v) : 0;
    }
    H5Aclose(at);
    if (rs < 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read attribute '%s'",
                                effdim_h5_where(obj, NULL, where, sizeof where), name);
    if (bad != SIZE_MAX)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: attribute '%s' value %.15g at index %zu "
                                "is not a whole number, expected integers",
                                effdim_h5_where(obj, NULL, where, sizeof where), name, badv, bad);
    if (n) *n = (size_t)np;
    return EFFDIM_OK;
}

effdim_status effdim_h5_attr_read_double(hid_t obj, const char *name, double *v, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_DOUBLE, v, 1, 1, NULL, err);
}

effdim_status effdim_h5_attr_read_int64(hid_t obj, const char *name, int64_t *v, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_INT64, v, 1, 1, NULL, err);
}

effdim_status effdim_h5_attr_read_int64s(hid_t obj, const char *name, int64_t *v, size_t cap,
                                         size_t *n, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_INT64, v, cap, 0, n, err);
}

effdim_status effdim_h5_attr_read_doubles(hid_t obj, const char *name, double *v, size_t cap,
                                          size_t *n, effdim_error *err)
{
    return attr_read_num(obj, name, H5T_NATIVE_DOUBLE, v, cap, 0, n, err);
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
    errno = 0;
    hid_t ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = ds < 0 ? -1 : H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    int e = errno;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    if (st < 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot write data set%s",
                                effdim_h5_where(loc, name, where, sizeof where), write_hint(e));
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

/* Where the values of a data set live, checked before anything is allocated
 * for them: a data set whose values are in another file (external raw
 * storage, a virtual data set) is refused like an external link, and one
 * that declares more values than it stores (a 1.7 KB file claiming (2^17,
 * 2^17) through unallocated chunks, a truncated contiguous block) is refused
 * instead of being read as gigabytes of fill values. */
static effdim_status check_storage(hid_t ds, const char *where, int rank, const hsize_t *dims,
                                   effdim_error *err)
{
    hid_t dcpl = H5Dget_create_plist(ds), ft = H5Dget_type(ds);
    effdim_status st = EFFDIM_OK;
    size_t elsize = ft >= 0 ? H5Tget_size(ft) : 0;
    hsize_t declared = elsize, chunks_want = 1;
    int overflow = 0;
    for (int i = 0; i < rank; ++i) {
        if (dims[i] && declared > (hsize_t)-1 / dims[i]) overflow = 1;
        else declared *= dims[i];
    }
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    if (dcpl < 0 || ft < 0 || layout == H5D_LAYOUT_ERROR) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read the storage layout (corrupt file?)",
                              where);
    } else if (H5Pget_external_count(dcpl) > 0) {
        char name[256] = "?";
        off_t off;
        hsize_t size;
        H5Pget_external(dcpl, 0, sizeof name, name, &off, &size);
        name[sizeof name - 1] = '\0';
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: stores its values in the external file "
                              "'%s', expected them in this file (effdim does not read other files)",
                              where, name);
    } else if (layout == H5D_VIRTUAL) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: is a virtual data set (its values are in "
                              "other files), expected the values in this file", where);
    } else if (overflow) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: absurd dimensions", where);
    } else if (layout == H5D_CONTIGUOUS && declared > 0) {
        hsize_t stored = H5Dget_storage_size(ds);
        if (stored < declared)
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: declares %llu bytes of values but stores %llu (truncated or "
                                  "never written)", where, (unsigned long long)declared,
                                  (unsigned long long)stored);
    } else if (layout == H5D_CHUNKED && declared > 0) {
        hsize_t chunk[H5S_MAX_RANK], have = 0;
        int cr = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        for (int i = 0; cr == rank && i < rank; ++i) {
            hsize_t c = chunk[i] ? (dims[i] + chunk[i] - 1) / chunk[i] : 0;
            chunks_want = c && chunks_want > (hsize_t)-1 / c ? (hsize_t)-1 : chunks_want * c;
        }
        /* no chunk written yet: HDF5 1.10 has no chunk index to count in */
        if (cr == rank && H5Dget_num_chunks(ds, H5S_ALL, &have) < 0 && H5Dget_storage_size(ds) == 0)
            have = 0;
        else if (cr == rank && H5Dget_num_chunks(ds, H5S_ALL, &have) < 0)
            cr = -1;
        if (cr != rank)
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read the chunk index (corrupt "
                                  "file?)", where);
        else if (have < chunks_want)
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: declares %llu bytes of values in %llu chunks but stores only "
                                  "%llu chunks (a sparse or unfinished data set; effdim reads data "
                                  "sets whose values are all written)", where,
                                  (unsigned long long)declared, (unsigned long long)chunks_want,
                                  (unsigned long long)have);
    }
    if (ft >= 0) H5Tclose(ft);
    if (dcpl >= 0) H5Pclose(dcpl);
    return st;
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
        st = check_storage(ds, effdim_h5_where(loc, name, where, sizeof where), r, hd, err);
        *rank = r;
        if (!st && cls) {
            hid_t t = H5Dget_type(ds);
            *cls = H5Tget_class(t);
            H5Tclose(t);
        }
    }
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}

/* Rows [first, first + rows) of a data set (rows = 0: all of it, first 0)
 * into out, which holds `count` elements: rows times the product of the
 * other dimensions. Read in blocks of at most 4 MiB of rows (hyperslabs
 * from row `first`), so a read of some rows touches only those. */
static effdim_status read_dataset(hid_t loc, const char *name, H5T_class_t want, hid_t mtype,
                                  size_t elsize, void *out, size_t count, size_t first,
                                  size_t rows, effdim_error *err)
{
    char where[EFFDIM_PATH_MAX + 64];
    int rank;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_status st = effdim_h5_shape(loc, name, &rank, dims, &cls, err);
    if (st) return st;
    size_t total = 1, per_row = 1;
    for (int i = 0; i < rank; ++i)
        if (effdim_mul_size(total, dims[i], &total) || (i > 0 && effdim_mul_size(per_row, dims[i], &per_row)))
            return effdim_error_set(err, EFFDIM_EFORMAT, "%s: absurd dimensions",
                                    effdim_h5_where(loc, name, where, sizeof where));
    if (cls != want)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: expected %s values",
                                effdim_h5_where(loc, name, where, sizeof where),
                                want == H5T_FLOAT ? "float32 or float64" : "integer");
    if ((rows || first) && (rank == 0 || rows > dims[0] || first > dims[0] - rows))
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: %zu rows asked from row %zu, the data "
                                "set has %zu", effdim_h5_where(loc, name, where, sizeof where),
                                rows, first, rank ? dims[0] : (size_t)0);
    size_t want_count = rows ? rows * per_row : total;
    if (want_count != count)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: has %zu values, expected %zu",
                                effdim_h5_where(loc, name, where, sizeof where), want_count, count);
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    herr_t rs = ds < 0 ? -1 : 0;
    if (rs >= 0 && (rank == 0 || total == 0)) {
        rs = total ? H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) : 0;
    } else if (rs >= 0) {
        size_t nrows = rows ? rows : dims[0];
        size_t row_bytes = per_row * elsize;
        size_t block = row_bytes ? ((size_t)4 << 20) / row_bytes : 0;
        if (block == 0) block = 1;
        hid_t fsp = H5Dget_space(ds);
        hsize_t start[EFFDIM_H5_MAX_RANK] = {0}, cnt[EFFDIM_H5_MAX_RANK];
        for (int i = 0; i < rank; ++i) cnt[i] = dims[i];
        for (size_t r = 0; rs >= 0 && r < nrows; r += block) {
            size_t nr = nrows - r < block ? nrows - r : block;
            start[0] = first + r;
            cnt[0] = nr;
            hid_t msp = H5Screate_simple(rank, cnt, NULL);
            rs = H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, cnt, NULL);
            if (rs >= 0)
                rs = H5Dread(ds, mtype, msp, fsp, H5P_DEFAULT, (char *)out + r * row_bytes);
            H5Sclose(msp);
        }
        H5Sclose(fsp);
    }
    if (ds >= 0) H5Dclose(ds);
    if (rs < 0)
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: cannot read (corrupt or truncated file?)",
                                effdim_h5_where(loc, name, where, sizeof where));
    return EFFDIM_OK;
}

effdim_status effdim_h5_read_doubles(hid_t loc, const char *name, double *out, size_t count,
                                     effdim_error *err)
{
    return read_dataset(loc, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, sizeof *out, out, count, 0, 0, err);
}

effdim_status effdim_h5_read_int64s(hid_t loc, const char *name, int64_t *out, size_t count,
                                    effdim_error *err)
{
    return read_dataset(loc, name, H5T_INTEGER, H5T_NATIVE_INT64, sizeof *out, out, count, 0, 0, err);
}

effdim_status effdim_h5_read_doubles_rows(hid_t loc, const char *name, size_t first, size_t rows,
                                          double *out, size_t count, effdim_error *err)
{
    return read_dataset(loc, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, sizeof *out, out, count, first,
                        rows, err);
}

effdim_status effdim_h5_read_int64s_rows(hid_t loc, const char *name, size_t first, size_t rows,
                                         int64_t *out, size_t count, effdim_error *err)
{
    return read_dataset(loc, name, H5T_INTEGER, H5T_NATIVE_INT64, sizeof *out, out, count, first,
                        rows, err);
}
