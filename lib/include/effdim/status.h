/* effdim/status.h: return codes and the error message every library call can fill.
 *
 * The library never prints and never exits. Every fallible call returns an
 * effdim_status and, when the caller passes a non-NULL effdim_error, writes one
 * line into it that names the file, the field and what was expected. The
 * command-line tool prints that line; tests compare it.
 *
 * Status codes (the one table; every module uses these and only these):
 *
 *   EFFDIM_OK          0  success
 *   EFFDIM_EINVAL      1  an argument or option is invalid (bad spec, bad size)
 *   EFFDIM_ENOMEM      2  an allocation failed, or a size would overflow size_t
 *   EFFDIM_EIO         3  a file could not be opened, read, written or renamed
 *   EFFDIM_EFORMAT     4  a file was read but its content is malformed
 *   EFFDIM_ENOTFOUND   5  a file, field, column or data set does not exist
 *   EFFDIM_EDOM        6  a value is outside its domain (NaN, Inf, negative size)
 *   EFFDIM_EMAXITER    7  an iterative method stopped at its limit before
 *                         converging; partial results are still returned
 *   EFFDIM_ECONTINUE   8  an iterative method wants more iterations (a status,
 *                         not an error: "not converged yet")
 *   EFFDIM_EVERSION    9  a file was written by a newer format version
 *   EFFDIM_EINTERNAL  10  a dependency (LAPACK, HDF5) reported a failure
 */
#ifndef EFFDIM_STATUS_H
#define EFFDIM_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EFFDIM_BUILDING_LIBRARY) && defined(__GNUC__)
#define EFFDIM_API __attribute__((visibility("default")))
#else
#define EFFDIM_API
#endif

typedef enum effdim_status {
    EFFDIM_OK = 0,
    EFFDIM_EINVAL = 1,
    EFFDIM_ENOMEM = 2,
    EFFDIM_EIO = 3,
    EFFDIM_EFORMAT = 4,
    EFFDIM_ENOTFOUND = 5,
    EFFDIM_EDOM = 6,
    EFFDIM_EMAXITER = 7,
    EFFDIM_ECONTINUE = 8,
    EFFDIM_EVERSION = 9,
    EFFDIM_EINTERNAL = 10
} effdim_status;

/* The message a failed call leaves behind. Callers own it (usually on the
 * stack); the library only writes into it. */
#define EFFDIM_ERROR_MAX 512
typedef struct effdim_error {
    effdim_status code;
    char msg[EFFDIM_ERROR_MAX]; /* one line, no trailing newline */
} effdim_error;

/* A short name for a status code ("EINVAL", ...). Never NULL. */
EFFDIM_API const char *effdim_status_name(effdim_status code);

/* Clear an error (code EFFDIM_OK, empty message). err may be NULL. */
EFFDIM_API void effdim_error_clear(effdim_error *err);

/* Fill err with code and a printf-style message, returning code so a caller
 * can write `return effdim_error_set(err, EFFDIM_EINVAL, "...", ...)`.
 * err may be NULL (the message is then dropped). */
EFFDIM_API effdim_status effdim_error_set(effdim_error *err, effdim_status code,
                                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Now as ISO-8601 UTC ("2026-12-02T01:02:03Z") into buf (cap >= 21); returns
 * buf. Every file's "created" attribute uses it. */
EFFDIM_API const char *effdim_now_iso(char *buf, size_t cap);

/* The library version string, e.g. "0.1.0". */
EFFDIM_API const char *effdim_version(void);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_STATUS_H */
