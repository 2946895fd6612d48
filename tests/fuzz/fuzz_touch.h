/* tests/fuzz/fuzz_touch.h: read every value of a loaded array at its stated
 * length, so that AddressSanitizer reports an array shorter than the loader
 * says it is. The sum goes to a volatile sink so the reads stay. (Values that
 * are there but uninitialised are not caught: that would take
 * MemorySanitizer, which needs an instrumented HDF5.) */
#ifndef EFFDIM_TESTS_FUZZ_TOUCH_H
#define EFFDIM_TESTS_FUZZ_TOUCH_H

#include <stddef.h>

static volatile double fuzz_sink;

static inline void fuzz_touch(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; v && i < n; ++i) s += v[i];
    fuzz_sink = s;
}

#endif
