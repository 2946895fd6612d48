/* effdim/progress.h: the one progress mechanism of every long library job.
 *
 * Every long loop in libeffdim (Lanczos, SLQ probes, Hutchinson/Hutch++,
 * the dense build, per-layer runs, the diagonal estimators, training epochs,
 * sweeps) reports through the same callback, so a command shows one progress
 * line for each step and a C program can watch or stop any job the same way.
 * The library never prints: it hands the callback an event and the caller
 * decides what to show.
 *
 * A job calls the callback at most once per unit of work (a matvec block, a
 * probe, an epoch), with the stage name, units done and expected, the time
 * spent in the stage and the stage's estimate of the time left. The callback
 * returns 0 to go on or non-zero to ask the job to stop early: the job then
 * finishes what is done (a probe in flight is dropped), returns its partial
 * results marked as such (status EFFDIM_EMAXITER, err saying "interrupted"),
 * and writes nothing it cannot stand behind. That is how a command turns
 * SIGINT/SIGTERM into a partial but valid output file.
 *
 * Ownership: an effdim_progress is a plain value (a function pointer and a
 * context the caller owns). {NULL, NULL} means "no progress": jobs then skip
 * the reporting entirely.
 */
#ifndef EFFDIM_PROGRESS_H
#define EFFDIM_PROGRESS_H

#include <stddef.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct effdim_progress_event {
    const char *stage;  /* short name of the step: "lanczos", "slq", "trace", "dense",
                           "layer", "diag", "train", ...; never NULL */
    size_t done;        /* units finished in this stage */
    size_t total;       /* units expected (0: unknown) */
    double fraction;    /* in [0, 1]; negative when unknown */
    double elapsed;     /* seconds since the stage began */
    double eta;         /* seconds left by the stage's estimate; negative when unknown */
    const char *detail; /* one line the stage composes (current estimate, loss, ...); may
                           be "" but never NULL; valid only during the call */
} effdim_progress_event;

/* Return 0 to continue, non-zero to ask the job to stop early. */
typedef int (*effdim_progress_fn)(void *ctx, const effdim_progress_event *ev);

typedef struct effdim_progress {
    effdim_progress_fn fn; /* NULL: no reporting */
    void *ctx;             /* the caller's, passed back to fn */
} effdim_progress;

/* Fill an event for a stage that began at `start` (effdim_progress_clock()
 * seconds) and call p->fn. fraction = done/total (or -1 for total 0); eta is
 * extrapolated linearly from the elapsed time when done > 0 and total > 0,
 * unless eta_hint >= 0 is given (a stage that knows better, e.g. an adaptive
 * stop). detail is printf-formatted (truncated to 512 bytes). Returns the
 * callback's answer, 0 when p or p->fn is NULL. */
EFFDIM_API int effdim_progress_report(const effdim_progress *p, const char *stage, double start,
                                      size_t done, size_t total, double eta_hint,
                                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;

/* Seconds on the monotonic clock the events' times come from. */
EFFDIM_API double effdim_progress_clock(void);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_PROGRESS_H */
