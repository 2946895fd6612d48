/* lib/internal.h: helpers shared by libeffdim's sources; not installed.
 *
 * Overflow-checked sizes, allocation that reports through effdim_error,
 * a monotonic clock, and the RETURN_ERROR_IF macro that turns a failed
 * condition into a status plus a one-line message.
 */
#ifndef EFFDIM_INTERNAL_H
#define EFFDIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"

/* if (cond) fill err with code and the message, and return code. */
#define RETURN_ERROR_IF(cond, err, code, ...)                  \
    do {                                                       \
        if (cond) return effdim_error_set((err), (code), __VA_ARGS__); \
    } while (0)

/* a*b into *out; returns 0 on success, -1 if it would overflow size_t. */
static inline int effdim_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

/* a+b into *out; returns 0 on success, -1 on overflow. */
static inline int effdim_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

/* malloc(count * size) with overflow check; on failure fills err (naming
 * what) and returns NULL. count == 0 allocates one byte so the result is a
 * valid pointer to free. */
void *effdim_alloc(size_t count, size_t size, const char *what, effdim_error *err);
/* the same, zero-filled */
void *effdim_calloc(size_t count, size_t size, const char *what, effdim_error *err);
/* strdup that reports */
char *effdim_strdup(const char *s, effdim_error *err);

/* seconds on a monotonic clock */
double effdim_now(void);

/* 1 if every entry of x[0..n) is finite, else 0; *bad gets the first bad index */
int effdim_all_finite(const double *x, size_t n, size_t *bad);

/* Create the temporary file "PATH.tmp-PID-XXXXXX" beside path (mode as a
 * plain create would give), after removing stale ones of killed runs
 * (lib/output.c). Returns the open descriptor and the name in tmp, or -1 with
 * err filled and tmp empty. */
int effdim_output_tmp_create(const char *path, char *tmp, size_t cap, effdim_error *err);

#endif /* EFFDIM_INTERNAL_H */
