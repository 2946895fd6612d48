/* lib/status.c: status names, error messages, small shared helpers. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#ifndef EFFDIM_VERSION_STRING
#define EFFDIM_VERSION_STRING "unknown"
#endif

const char *effdim_version(void) { return EFFDIM_VERSION_STRING; }

const char *effdim_status_name(effdim_status code)
{
    switch (code) {
    case EFFDIM_OK: return "OK";
    case EFFDIM_EINVAL: return "EINVAL";
    case EFFDIM_ENOMEM: return "ENOMEM";
    case EFFDIM_EIO: return "EIO";
    case EFFDIM_EFORMAT: return "EFORMAT";
    case EFFDIM_ENOTFOUND: return "ENOTFOUND";
    case EFFDIM_EDOM: return "EDOM";
    case EFFDIM_EMAXITER: return "EMAXITER";
    case EFFDIM_ECONTINUE: return "ECONTINUE";
    case EFFDIM_EVERSION: return "EVERSION";
    case EFFDIM_EINTERNAL: return "EINTERNAL";
    }
    return "UNKNOWN";
}

void effdim_error_clear(effdim_error *err)
{
    if (!err) return;
    err->code = EFFDIM_OK;
    err->msg[0] = '\0';
}

effdim_status effdim_error_set(effdim_error *err, effdim_status code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* keep it one line */
    for (char *p = err->msg; *p; ++p)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return code;
}

void *effdim_alloc(size_t count, size_t size, const char *what, effdim_error *err)
{
    size_t bytes;
    if (effdim_mul_size(count, size, &bytes)) {
        effdim_error_set(err, EFFDIM_ENOMEM, "%s: %zu x %zu bytes overflows size_t", what, count, size);
        return NULL;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) effdim_error_set(err, EFFDIM_ENOMEM, "%s: cannot allocate %zu bytes", what, bytes);
    return p;
}

void *effdim_calloc(size_t count, size_t size, const char *what, effdim_error *err)
{
    size_t bytes;
    if (effdim_mul_size(count, size, &bytes)) {
        effdim_error_set(err, EFFDIM_ENOMEM, "%s: %zu x %zu bytes overflows size_t", what, count, size);
        return NULL;
    }
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) effdim_error_set(err, EFFDIM_ENOMEM, "%s: cannot allocate %zu bytes", what, bytes);
    return p;
}

char *effdim_strdup(const char *s, effdim_error *err)
{
    size_t n = strlen(s) + 1;
    char *p = effdim_alloc(n, 1, "string copy", err);
    if (p) memcpy(p, s, n);
    return p;
}

double effdim_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *effdim_now_iso(char *buf, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int effdim_all_finite(const double *x, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n; ++i) {
        if (!isfinite(x[i])) {
            if (bad) *bad = i;
            return 0;
        }
    }
    return 1;
}
