/* effdim/output.h: claiming an output file before the work that fills it.
 *
 * A command that will write PATH claims it first, before it trains or
 * computes anything:
 *
 *   effdim_output_lock *lock = NULL;
 *   const char *inputs[] = {checkpoint_path, data_file};   (NULL entries are skipped)
 *   if (effdim_output_claim(out, inputs, 2, &lock, &err)) ... report err, exit 1
 *   ... the work, then the atomic write of `out` ...
 *   effdim_output_release(lock);
 *
 * The claim refuses, each with one line naming the path:
 *   - an empty path, a path ending in '/', or a path that is a folder;
 *   - a folder that does not exist or cannot be written (the lock file is
 *     created there, which proves it);
 *   - a path that is the same file as one of the inputs (same device and
 *     inode, so hard links, symbolic links and relative spellings are caught);
 *   - a path another process holds a claim on: "PATH: another effdim run
 *     (PID 1234) is writing this file".
 *
 * The lock is an flock(2) on ".NAME.effdim-lock" beside the output, held
 * until effdim_output_release (or the process ends: a killed run's lock goes
 * with it; the next claim takes the file over). The lock file holds the PID
 * of its holder and is removed on release.
 *
 * Temporary files of the atomic writers are named "NAME.tmp-PID-XXXXXX"
 * beside the output. A claim (and every atomic write) removes those of NAME
 * whose PID is no longer running on this machine: what killed runs left.
 */
#ifndef EFFDIM_OUTPUT_H
#define EFFDIM_OUTPUT_H

#include <stddef.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct effdim_output_lock effdim_output_lock;

/* Check and lock `path` for writing (see above). inputs[0..n_inputs) are
 * files the run reads; NULL entries and paths that do not exist are skipped.
 * On success *lock owns the claim; on failure *lock is NULL. */
EFFDIM_API effdim_status effdim_output_claim(const char *path, const char *const *inputs,
                                             size_t n_inputs, effdim_output_lock **lock,
                                             effdim_error *err);

/* Unlock and remove the lock file; NULL is safe. */
EFFDIM_API void effdim_output_release(effdim_output_lock *lock);

/* Remove the temporary files "NAME.tmp-PID-XXXXXX" beside `path` whose PID
 * is not a running process; returns how many were removed. */
EFFDIM_API size_t effdim_output_clean_stale(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_OUTPUT_H */
