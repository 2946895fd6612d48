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
/* ISO-8601 UTC timestamp of now into buf (cap >= 21), returned (lib/progress.c). */
const char *effdim_now_iso(char *buf, size_t cap);

/* seconds on a monotonic clock */
double effdim_now(void);

/* 1 if every entry of x[0..n) is finite, else 0; *bad gets the first bad index */
int effdim_all_finite(const double *x, size_t n, size_t *bad);

#endif /* EFFDIM_INTERNAL_H */
