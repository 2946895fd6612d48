/* tests/fuzz/fuzz.h: what the libFuzzer harnesses in tests/fuzz share.
 *
 * Each harness (fuzz_<target>.c) defines LLVMFuzzerTestOneInput: it turns
 * libFuzzer's bytes into the file (or string) one public loader reads, calls
 * the loader, and checks what every loader promises whatever the input: a
 * refusal leaves *out NULL and one non-empty line in the error; a success
 * passes the object's own validation. A broken promise aborts (fuzz_assert),
 * so libFuzzer records the input like a crash. docs/fuzzing.md tells how to
 * build and run them.
 */
#ifndef EFFDIM_TESTS_FUZZ_H
#define EFFDIM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_common.c's LLVMFuzzerInitialize makes the private folder, silences
 * HDF5's error stacks and then calls fuzz_setup, which a harness may define
 * for its own set-up (the default does nothing). */
void fuzz_setup(void);

/* A folder of this process's own (made at the first call, removed at exit),
 * and name inside it, in a static rotating buffer. */
const char *fuzz_dir(void);
const char *fuzz_path(const char *name);

/* Write size bytes to path, plain or gzip-compressed; abort on failure (the
 * harness cannot go on without its file). */
void fuzz_write(const char *path, const void *data, size_t size);
void fuzz_write_gz(const char *path, const void *data, size_t size);
/* fuzz_write to fuzz_path(name); returns the path */
const char *fuzz_file(const char *name, const uint8_t *data, size_t size);

/* Cut data into two parts: the first two bytes (little-endian) give the
 * length of the first part (clamped to what is there), the rest is the second. */
void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b,
                size_t *nb);

/* The loader's verdict: st == OK and out != NULL, or st != OK, out == NULL and
 * err one non-empty line. Aborts naming the target otherwise. */
void fuzz_check_verdict(const char *target, effdim_status st, const void *out, const effdim_error *err);

/* abort with a message when cond is false (a broken promise, reported as a crash) */
#define fuzz_assert(cond, what) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, (what)))
void fuzz_fail(const char *file, int line, const char *what);

/* A small IDX pair (MNIST layout, big-endian header): n images of rows x
 * cols bytes and n labels in 0..9, made from seed; gzip-compressed when gz. */
void fuzz_write_idx_pair(const char *images, const char *labels, size_t n, size_t rows, size_t cols,
                         unsigned seed, int gz);

#endif
