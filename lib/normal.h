/* lib/normal.h: a fast, seeded, reproducible standard normal generator for
 * IVON's weight noise (internal to the library).
 *
 * Uniforms: four independent xoshiro256++ generators (Blackman and Vigna,
 * "Scrambled linear pseudorandom number generators", ACM TOMS 47 (2021)),
 * the lanes, each seeded from splitmix64 of (seed, stream, lane). Normals:
 * the Box-Muller transform in single precision, on blocks of 16. Block b
 * draws the words A[j] of lanes j = 0..3, then their words C[j]; for
 * i = 0..7, a = the 32-bit half i % 2 (0 the low one) of A[i / 2], c the
 * same of C[i / 2], and
 *
 *   u   = (a >> 1) 2^-31 + 2^-32              in (0, 1], float
 *   r   = sqrt(-2 log u)
 *   q   = c >> 30 (the quadrant), x = ((c << 2) >> 9) 2^-23 in [0, 1)
 *   phi = q pi/2 + (x - 1/2) pi/2             uniform over one period
 *   out[16b + i] = r cos(phi),  out[16b + 8 + i] = r sin(phi)
 *
 * (phi runs over [-pi/4, 7pi/4), a full period, so (r cos phi, r sin phi)
 * are two independent N(0, 1) draws as in Box and Muller 1958; the smallest
 * u, 2^-32 rounded, puts the largest |draw| at 6.66, P(|N(0,1)| > 6.66) =
 * 3e-11.) log, sin and cos are float polynomials evaluated with fused
 * multiply-adds (log: the atanh series in s = (f - 1)/(f + 1) to s^9 for
 * the mantissa f in [sqrt(1/2), sqrt(2)); sin and cos: Taylor to theta^9
 * and theta^10 on [-pi/4, pi/4]), accurate to a few float ulps (the draws
 * are weight noise: single precision is what PyTorch's IVON uses, and the
 * perturbation IVON's estimator sees is recomputed exactly, theta_s - m).
 * Every operation is correctly rounded (add, multiply, fma, divide, sqrt,
 * int-to-float conversion) or exact (bit manipulation), so the scalar loop,
 * the AVX2 loop and the AVX-512 loop (the words of two blocks by AVX2, their
 * transform in 16 lanes) give bitwise the same numbers: the stream is a pure
 * function of (seed, stream) on any machine with IEEE-754 floats and a
 * correctly rounded fmaf().
 *
 * A fill of n numbers consumes ceil(n / 16) blocks; the unused draws of a
 * last partial block are dropped, so the stream depends on the sequence of
 * fill lengths.
 *
 * IVON's samples draw their normals by segments of EFFDIM_NORMAL_SEGMENT
 * weights: segment k of the sample (seed, stream, segment) comes from the
 * generator effdim_normal_seed_segment(seed, stream, segment + k), filled in
 * chunks of 2048: a sample is a pure function of (seed, stream, segment)
 * and the weight's index, whatever the order or grouping of the fills.
 */
#ifndef EFFDIM_NORMAL_H
#define EFFDIM_NORMAL_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/optim.h"
#include "effdim/status.h"

#define EFFDIM_NORMAL_LANES 4
#define EFFDIM_NORMAL_BLOCK (4 * EFFDIM_NORMAL_LANES)
#define EFFDIM_NORMAL_SEGMENT 65536

typedef struct effdim_normal_rng {
    uint64_t s[4][EFFDIM_NORMAL_LANES]; /* xoshiro256++ state: word w of lane j is s[w][j] */
} effdim_normal_rng;

/* Seed the four lanes from (seed, stream): lane j's words are four
 * successive splitmix64 outputs started at
 * mix64(seed) ^ mix64(stream + 0x9e3779b97f4a7c15 (j + 1)). */
void effdim_normal_seed(effdim_normal_rng *r, uint64_t seed, uint64_t stream);
/* The generator of a segment: segment 0 is effdim_normal_seed(seed, stream);
 * segment k > 0 XORs mix64(k ^ 0xd1b54a32d192ed03) into each lane's start. */
void effdim_normal_seed_segment(effdim_normal_rng *r, uint64_t seed, uint64_t stream,
                                uint64_t segment);

/* Where a weight sample's normals come from (see above); each sample of P
 * weights advances segment by ceil(P / EFFDIM_NORMAL_SEGMENT), so the samples
 * of one step (seed, stream) use disjoint generators. */
typedef struct effdim_normal_stream {
    uint64_t seed, stream, segment;
} effdim_normal_stream;

/* n standard normal draws into out (see above). */
void effdim_normal_fill(effdim_normal_rng *r, float *out, size_t n);

/* The two normals (cos, sin) of the 32-bit words a, c, as a block computes
 * them; for the accuracy test against libm. */
void effdim_normal_pair(uint32_t a, uint32_t c, float *z0, float *z1);

/* Forces the scalar loop (1) or lets the AVX2 / AVX-512 loops run where the
 * CPU has them (0, the default); for the test that they agree bitwise. */
void effdim_normal_force_scalar(int on);

/* The widest loop IVON's update may use where the CPU has it: 2 AVX-512 (the
 * default), 1 AVX2, 0 scalar; for the test that they agree bitwise. Defined
 * in lib/optim.c. */
void effdim_optim_ivon_loops(int cap);

/* splitmix64's finaliser (Steele, Lea and Flood 2014), a 64-bit mixer. */
uint64_t effdim_mix64(uint64_t x);

/* IVON's weight sample with the normals of ns drawn here, by segments,
 * without an eps array in memory: effdim_optim_ivon_sample(opt, m, eps,
 * theta_s) with eps the segments' normals, but the noise term in single
 * precision, theta_s = m + (double)(sqrtf((float)((1 / (h + delta)) (1 /
 * ess))) eps) (lib/optim.c); advances ns->segment.
 * Defined in lib/optim.c. */
effdim_status effdim_optim_ivon_sample_normal(effdim_optim *opt, const double *m,
                                              effdim_normal_stream *ns, double *theta_s,
                                              effdim_error *err);

/* effdim_optim_step(opt, m, grad, lr) and then
 * effdim_optim_ivon_sample_normal(opt, m, next, theta_s) in one pass over the
 * vectors: bitwise the same m, h, g and next sample. theta_s holds, on entry,
 * the sample grad was taken at (as the last sample call or this one left
 * it): the perturbation is theta_s - m, so the noise vector is not stored,
 * and the next step must come through this call too (effdim_optim_step and
 * effdim_optim_ivon_accumulate refuse the sample). Defined in lib/optim.c. */
effdim_status effdim_optim_ivon_step_and_sample(effdim_optim *opt, double *m, const double *grad,
                                               double lr, effdim_normal_stream *next,
                                               double *theta_s, effdim_error *err);

#endif /* EFFDIM_NORMAL_H */
