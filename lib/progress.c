/* lib/progress.c: the progress callback every long job reports through
 * (effdim/progress.h): fills an event (fraction, elapsed time, a linear
 * estimate of the time left) and hands it to the caller's function. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "effdim/progress.h"
#include "internal.h"

double effdim_progress_clock(void)
{
    return effdim_now();
}

int effdim_progress_report(const effdim_progress *p, const char *stage, double start, size_t done,
                           size_t total, double eta_hint, const char *fmt, ...)
{
    if (!p || !p->fn) return 0;
    char detail[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    double elapsed = effdim_now() - start;
    if (elapsed < 0) elapsed = 0;
    effdim_progress_event ev = {
        .stage = stage ? stage : "",
        .done = done,
        .total = total,
        .fraction = total ? (done >= total ? 1.0 : (double)done / (double)total) : -1.0,
        .elapsed = elapsed,
        .eta = -1.0,
        .detail = detail,
    };
    if (eta_hint >= 0) ev.eta = eta_hint;
    else if (total && done) ev.eta = done >= total ? 0.0 : elapsed * (double)(total - done) / (double)done;
    return p->fn(p->ctx, &ev);
}
