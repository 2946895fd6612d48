/* effdim/sha256.h: the SHA-256 (FIPS 180-4) fingerprint of a file.
 *
 * Every output file records the checkpoint it was computed from by this hash
 * (attribute checkpoint_sha256), so a result can be matched to its model.
 * A small self-contained implementation (lib/sha256.c), checked against the
 * FIPS 180-4 / NIST CAVP example vectors in tests/test_spectrum.c.
 */
#ifndef EFFDIM_SHA256_PUBLIC_H
#define EFFDIM_SHA256_PUBLIC_H

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The SHA-256 of the whole file at path as 64 lower-case hex digits into hex
 * (65 bytes); EIO naming the path if it cannot be read. */
EFFDIM_API effdim_status effdim_sha256_file(const char *path, char hex[65], effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif
