/* lib/h5io.h: small HDF5 helpers every file format in effdim shares.
 *
 * - atomic writes: create "<path>.tmp-XXXXXX" beside the target, write, flush,
 *   fsync, rename over the target; on any failure the temporary is removed
 *   and the old file stays untouched;
 * - attributes: strings are written as variable-length UTF-8 (h5py reads them
 *   as str); reading accepts fixed- or variable-length strings and arrays;
 * - datasets: float64 written; float32 or float64 read as double.
 * Every error message names the file and the object ("model.h5: /model/layer0/weight: ...").
 * HDF5's own error printing is switched off: the library never prints.
 */
#ifndef EFFDIM_H5IO_H
#define EFFDIM_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"

#define EFFDIM_H5_MAX_RANK 4
#define EFFDIM_PATH_MAX 4096

typedef struct effdim_h5_atomic {
    hid_t file;                   /* open on the temporary file */
    char tmp[EFFDIM_PATH_MAX];    /* temporary path */
    char path[EFFDIM_PATH_MAX];   /* final path */
} effdim_h5_atomic;

/* Switch off HDF5's automatic error printing (idempotent). */
void effdim_h5_quiet(void);

/* Begin an atomic write of `path`. */
effdim_status effdim_h5_atomic_begin(const char *path, effdim_h5_atomic *a, effdim_error *err);
/* Flush, close, fsync, rename. On failure the temporary is removed. */
effdim_status effdim_h5_atomic_commit(effdim_h5_atomic *a, effdim_error *err);
/* Close and remove the temporary (safe after a failed commit, and twice). */
void effdim_h5_atomic_abort(effdim_h5_atomic *a);

/* Open an existing file read-only; the message names the path. The file is
 * first read in a child process (effdim_h5_guard), and a file holding an
 * external, soft or user-defined link anywhere is refused (effdim never
 * writes links; following one would read another file or another object). */
effdim_status effdim_h5_open_read(const char *path, hid_t *file, effdim_error *err);

/* lib/h5guard.c: read `path` once in a forked child under CPU and memory
 * limits; EFFDIM_EFORMAT with "this file crashes or hangs the HDF5 library"
 * when the child dies or hangs. EFFDIM_H5_GUARD=0 in the environment turns it
 * off; EFFDIM_H5_GUARD_SECONDS sets the CPU limit (default 10). */
effdim_status effdim_h5_guard(const char *path, effdim_error *err);
int effdim_h5_guard_enabled(void);

/* The "file: /object" prefix of messages, into buf. */
const char *effdim_h5_where(hid_t obj, const char *name, char *buf, size_t cap);

/* 1 if loc has a link or attribute of that name (no error). */
int effdim_h5_has_link(hid_t loc, const char *name);
int effdim_h5_has_attr(hid_t obj, const char *name);

/* Create (or open when it exists) a group. */
effdim_status effdim_h5_group(hid_t loc, const char *name, hid_t *group, effdim_error *err);

/* ---- attributes: write ---- */
effdim_status effdim_h5_attr_write_string(hid_t obj, const char *name, const char *value,
                                          effdim_error *err);
effdim_status effdim_h5_attr_write_strings(hid_t obj, const char *name, const char *const *values,
                                           size_t n, effdim_error *err);
effdim_status effdim_h5_attr_write_double(hid_t obj, const char *name, double v, effdim_error *err);
effdim_status effdim_h5_attr_write_doubles(hid_t obj, const char *name, const double *v, size_t n,
                                           effdim_error *err);
effdim_status effdim_h5_attr_write_int64(hid_t obj, const char *name, int64_t v, effdim_error *err);
effdim_status effdim_h5_attr_write_int64s(hid_t obj, const char *name, const int64_t *v, size_t n,
                                          effdim_error *err);

/* ---- attributes: read ---- */
/* A scalar string (fixed or variable length) into buf (cap bytes, NUL-terminated). */
effdim_status effdim_h5_attr_read_string(hid_t obj, const char *name, char *buf, size_t cap,
                                         effdim_error *err);
/* A 1-D array (or scalar) of strings: *out receives n malloc'ed strings in a
 * malloc'ed array; free with effdim_h5_strings_free. */
effdim_status effdim_h5_attr_read_strings(hid_t obj, const char *name, char ***out, size_t *n,
                                          effdim_error *err);
void effdim_h5_strings_free(char **s, size_t n);
/* A numeric scalar (any integer or float type) as double / int64. */
effdim_status effdim_h5_attr_read_double(hid_t obj, const char *name, double *v, effdim_error *err);
effdim_status effdim_h5_attr_read_int64(hid_t obj, const char *name, int64_t *v, effdim_error *err);
/* A 1-D numeric array: up to cap values into v, count into *n (error if more than cap). */
effdim_status effdim_h5_attr_read_int64s(hid_t obj, const char *name, int64_t *v, size_t cap,
                                         size_t *n, effdim_error *err);
effdim_status effdim_h5_attr_read_doubles(hid_t obj, const char *name, double *v, size_t cap,
                                          size_t *n, effdim_error *err);

/* ---- datasets ---- */
/* Write a float64 dataset of the given rank and dims (contiguous). */
effdim_status effdim_h5_write_doubles(hid_t loc, const char *name, int rank, const size_t *dims,
                                      const double *data, effdim_error *err);
effdim_status effdim_h5_write_int64s(hid_t loc, const char *name, int rank, const size_t *dims,
                                     const int64_t *data, effdim_error *err);
/* Shape of a dataset; *rank <= EFFDIM_H5_MAX_RANK. *cls receives its type class.
 * Refuses (EFORMAT) a data set whose values live in other files (external
 * storage, virtual) or that declares more values than it stores. */
effdim_status effdim_h5_shape(hid_t loc, const char *name, int *rank, size_t *dims,
                              H5T_class_t *cls, effdim_error *err);
/* Read a float (32 or 64 bit) dataset into caller memory of `count` doubles,
 * which must equal the number of elements; refuses integer or string types. */
effdim_status effdim_h5_read_doubles(hid_t loc, const char *name, double *out, size_t count,
                                     effdim_error *err);
/* Read an integer dataset into int64 memory of `count` elements. */
effdim_status effdim_h5_read_int64s(hid_t loc, const char *name, int64_t *out, size_t count,
                                    effdim_error *err);
/* Rows [first, first + rows) only (count = rows times the other dimensions;
 * rows = 0 with first = 0: all of them), in blocks of at most 4 MiB; EINVAL
 * when the data set has fewer rows. */
effdim_status effdim_h5_read_doubles_rows(hid_t loc, const char *name, size_t first, size_t rows,
                                          double *out, size_t count, effdim_error *err);
effdim_status effdim_h5_read_int64s_rows(hid_t loc, const char *name, size_t first, size_t rows,
                                         int64_t *out, size_t count, effdim_error *err);

#endif /* EFFDIM_H5IO_H */
