/* lib/sha256.h: SHA-256 (FIPS 180-4) of a buffer or a file; not installed.
 *
 * Used to fingerprint the checkpoint a spectrum file was computed from
 * (attribute checkpoint_sha256). No C library effdim already links provides
 * SHA-256, so this is a small, self-contained implementation checked against
 * the FIPS 180-4 / NIST CAVP example vectors in tests/test_spectrum.c.
 */
#ifndef EFFDIM_SHA256_H
#define EFFDIM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/sha256.h"
#include "effdim/status.h"

typedef struct effdim_sha256 {
    uint32_t h[8];       /* chaining state */
    uint64_t bytes;      /* message length so far */
    unsigned char buf[64];
    size_t fill;         /* bytes waiting in buf */
} effdim_sha256;

void effdim_sha256_init(effdim_sha256 *s);
void effdim_sha256_update(effdim_sha256 *s, const void *data, size_t n);
/* The 32-byte digest; the state is finished (init again to reuse). */
void effdim_sha256_final(effdim_sha256 *s, unsigned char digest[32]);
/* Lower-case hex of the digest of data (n bytes) into hex (65 bytes). */
void effdim_sha256_hex(const void *data, size_t n, char hex[65]);
/* The same for a whole file: effdim_sha256_file, in effdim/sha256.h. */

#endif /* EFFDIM_SHA256_H */
