/* lib/normal.c: the standard normal generator of lib/normal.h (xoshiro256++
 * lanes, Box-Muller in single precision with polynomial log, sin and cos).
 *
 * The scalar loop, the AVX2 + FMA loop and the AVX-512 loop apply the same
 * operations in the same order to the same bits; fmaf() is correctly rounded
 * like vfmadd, int-to-float conversion rounds to nearest like vcvtdq2ps, and
 * GCC does not contract a * b + c into an FMA in C11 mode, so they agree
 * bitwise (tests/test_normal.c checks it). The constants: Taylor coefficients
 * (-1)^k / (2k + 1)! and (-1)^k / (2k)!, the atanh series 1 / (2k + 1), and
 * ln 2 split as in fdlibm's logf (a 17-bit head, so e * LN2_HI is exact).
 */
#include <math.h>
#include <string.h>

#include "normal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EFFDIM_NORMAL_AVX2 1
#endif

#define ONE_BITS 0x3f800000u
#define MANT_BITS 0x007fffffu
#define SIGN_BIT 0x80000000u
#define GOLDEN 0x9e3779b97f4a7c15ULL

static const float SQRT2 = 1.41421356f;
static const float LN2_HI = 6.9313812256e-01f; /* 0x3f317180 */
static const float LN2_LO = 9.0580006145e-06f; /* 0x3717f7d1 */
static const float PIO2 = 1.57079632679f;
static const float TWO_M31 = 0x1p-31f, TWO_M32 = 0x1p-32f;

/* log f = 2 s sum_k s^(2k) / (2k + 1), k = 0..4 */
static const float LOGC[5] = {1.0f, 1.0f / 3, 1.0f / 5, 1.0f / 7, 1.0f / 9};
/* sin: (-1)^k / (2k + 1)!, k = 1..4; cos: (-1)^k / (2k)!, k = 1..5 */
static const float SINC[5] = {1.0f, -1.0f / 6.0f, 1.0f / 120.0f, -1.0f / 5040.0f,
                              1.0f / 362880.0f};
static const float COSC[6] = {1.0f,         -1.0f / 2.0f,      1.0f / 24.0f,
                              -1.0f / 720.0f, 1.0f / 40320.0f, -1.0f / 3628800.0f};

uint64_t effdim_mix64(uint64_t x)
{
    x += GOLDEN;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void effdim_normal_seed_segment(effdim_normal_rng *r, uint64_t seed, uint64_t stream,
                                uint64_t segment)
{
    const uint64_t k = effdim_mix64(seed);
    const uint64_t seg = segment ? effdim_mix64(segment ^ 0xd1b54a32d192ed03ull) : 0;
    for (int j = 0; j < EFFDIM_NORMAL_LANES; ++j) {
        const uint64_t x = k ^ seg ^ effdim_mix64(stream + GOLDEN * (uint64_t)(j + 1));
        uint64_t any = 0;
        for (int w = 0; w < 4; ++w) any |= r->s[w][j] = effdim_mix64(x + GOLDEN * (uint64_t)w);
        if (!any) r->s[0][j] = 1; /* xoshiro's one forbidden state */
    }
}

void effdim_normal_seed(effdim_normal_rng *r, uint64_t seed, uint64_t stream)
{
    effdim_normal_seed_segment(r, seed, stream, 0);
}

static int force_scalar;

void effdim_normal_force_scalar(int on) { force_scalar = on != 0; }

/* ---- scalar ---- */

static inline float as_float(uint32_t b)
{
    float d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static inline uint32_t as_bits(float d)
{
    uint32_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256++ step of lane j */
static inline uint64_t next_lane(effdim_normal_rng *r, int j)
{
    uint64_t s0 = r->s[0][j], s1 = r->s[1][j], s2 = r->s[2][j], s3 = r->s[3][j];
    const uint64_t out = rotl(s0 + s3, 23) + s0;
    const uint64_t t = s1 << 17;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 45);
    r->s[0][j] = s0;
    r->s[1][j] = s1;
    r->s[2][j] = s2;
    r->s[3][j] = s3;
    return out;
}

/* the two normals of the 32-bit words a, c (lib/normal.h) */
static inline void box_muller(uint32_t a, uint32_t c, float *z0, float *z1)
{
    const float u = fmaf((float)(int32_t)(a >> 1), TWO_M31, TWO_M32); /* (0, 1] */
    /* log u = e ln 2 + log f, f in [sqrt(1/2), sqrt(2)) */
    const uint32_t ub = as_bits(u);
    float f = as_float((ub & MANT_BITS) | ONE_BITS);
    float e = (float)((int32_t)(ub >> 23) - 127);
    const int big = f > SQRT2;
    f = big ? f * 0.5f : f;
    e = big ? e + 1.0f : e;
    const float s = (f - 1.0f) / (f + 1.0f);
    const float z = s * s;
    float p = LOGC[4];
    for (int k = 3; k >= 0; --k) p = fmaf(p, z, LOGC[k]);
    const float lf = (s + s) * p;
    const float lu = fmaf(e, LN2_HI, fmaf(e, LN2_LO, lf));
    const float rad = sqrtf(-2.0f * lu);
    /* cos and sin of phi = q pi/2 + theta */
    const float x = as_float(((c << 2) >> 9) | ONE_BITS) - 1.0f;
    const float th = (x - 0.5f) * PIO2;
    const float t2 = th * th;
    float ps = SINC[4];
    for (int k = 3; k >= 1; --k) ps = fmaf(ps, t2, SINC[k]);
    const float sn = fmaf(th * t2, ps, th);
    float pc = COSC[5];
    for (int k = 4; k >= 1; --k) pc = fmaf(pc, t2, COSC[k]);
    const float cs = fmaf(t2, pc, 1.0f);
    const int swap = (int)((c >> 30) & 1);
    const float xs = swap ? sn : cs, ys = swap ? cs : sn;
    const float cphi = as_float(as_bits(xs) ^ ((c ^ (c << 1)) & SIGN_BIT));
    const float sphi = as_float(as_bits(ys) ^ (c & SIGN_BIT));
    *z0 = rad * cphi;
    *z1 = rad * sphi;
}

void effdim_normal_pair(uint32_t a, uint32_t c, float *z0, float *z1)
{
    box_muller(a, c, z0, z1);
}

/* one block: 4 words a then 4 words c from the lanes, their 8 halves each */
static void block_scalar(effdim_normal_rng *r, float *out)
{
    uint64_t A[EFFDIM_NORMAL_LANES], C[EFFDIM_NORMAL_LANES];
    for (int j = 0; j < EFFDIM_NORMAL_LANES; ++j) A[j] = next_lane(r, j);
    for (int j = 0; j < EFFDIM_NORMAL_LANES; ++j) C[j] = next_lane(r, j);
    for (int i = 0; i < EFFDIM_NORMAL_BLOCK / 2; ++i) {
        const int sh = 32 * (i & 1);
        box_muller((uint32_t)(A[i / 2] >> sh), (uint32_t)(C[i / 2] >> sh), &out[i],
                   &out[EFFDIM_NORMAL_BLOCK / 2 + i]);
    }
}

#ifdef EFFDIM_NORMAL_AVX2
#define NTARGET __attribute__((target("avx2,fma")))

NTARGET static inline __m256i rotl4(__m256i x, int k)
{
    return _mm256_or_si256(_mm256_slli_epi64(x, k), _mm256_srli_epi64(x, 64 - k));
}

NTARGET static inline __m256i next4(__m256i *s)
{
    const __m256i out = _mm256_add_epi64(rotl4(_mm256_add_epi64(s[0], s[3]), 23), s[0]);
    const __m256i t = _mm256_slli_epi64(s[1], 17);
    s[2] = _mm256_xor_si256(s[2], s[0]);
    s[3] = _mm256_xor_si256(s[3], s[1]);
    s[1] = _mm256_xor_si256(s[1], s[2]);
    s[0] = _mm256_xor_si256(s[0], s[3]);
    s[2] = _mm256_xor_si256(s[2], t);
    s[3] = rotl4(s[3], 45);
    return out;
}

/* ---- AVX2 + FMA: the 8 pairs of a block at once ---- */

NTARGET static size_t fill_avx2(effdim_normal_rng *r, float *out, size_t blocks)
{
    __m256i s[4];
    for (int w = 0; w < 4; ++w) s[w] = _mm256_loadu_si256((const __m256i *)r->s[w]);
    const __m256i one = _mm256_set1_epi32((int)ONE_BITS), mant = _mm256_set1_epi32(MANT_BITS);
    const __m256i sign = _mm256_set1_epi32((int)SIGN_BIT), bias = _mm256_set1_epi32(127);
    const __m256 onep = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 sqrt2 = _mm256_set1_ps(SQRT2), m2 = _mm256_set1_ps(-2.0f);
    const __m256 ln2hi = _mm256_set1_ps(LN2_HI), ln2lo = _mm256_set1_ps(LN2_LO);
    const __m256 pio2 = _mm256_set1_ps(PIO2);
    const __m256 two31 = _mm256_set1_ps(TWO_M31), two32 = _mm256_set1_ps(TWO_M32);
    for (size_t b = 0; b < blocks; ++b) {
        const __m256i a = next4(s);
        const __m256i c = next4(s);
        const __m256 u = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(a, 1)), two31, two32);
        const __m256i ub = _mm256_castps_si256(u);
        __m256 f = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(ub, mant), one));
        __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(ub, 23), bias));
        const __m256 big = _mm256_cmp_ps(f, sqrt2, _CMP_GT_OQ);
        f = _mm256_blendv_ps(f, _mm256_mul_ps(f, half), big);
        e = _mm256_blendv_ps(e, _mm256_add_ps(e, onep), big);
        const __m256 sv = _mm256_div_ps(_mm256_sub_ps(f, onep), _mm256_add_ps(f, onep));
        const __m256 z = _mm256_mul_ps(sv, sv);
        __m256 p = _mm256_set1_ps(LOGC[4]);
        for (int k = 3; k >= 0; --k) p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(LOGC[k]));
        const __m256 lf = _mm256_mul_ps(_mm256_add_ps(sv, sv), p);
        const __m256 lu = _mm256_fmadd_ps(e, ln2hi, _mm256_fmadd_ps(e, ln2lo, lf));
        const __m256 rad = _mm256_sqrt_ps(_mm256_mul_ps(m2, lu));
        const __m256 x = _mm256_sub_ps(
            _mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(_mm256_slli_epi32(c, 2), 9), one)),
            onep);
        const __m256 th = _mm256_mul_ps(_mm256_sub_ps(x, half), pio2);
        const __m256 t2 = _mm256_mul_ps(th, th);
        __m256 ps = _mm256_set1_ps(SINC[4]);
        for (int k = 3; k >= 1; --k) ps = _mm256_fmadd_ps(ps, t2, _mm256_set1_ps(SINC[k]));
        const __m256 sn = _mm256_fmadd_ps(_mm256_mul_ps(th, t2), ps, th);
        __m256 pc = _mm256_set1_ps(COSC[5]);
        for (int k = 4; k >= 1; --k) pc = _mm256_fmadd_ps(pc, t2, _mm256_set1_ps(COSC[k]));
        const __m256 cs = _mm256_fmadd_ps(t2, pc, onep);
        const __m256 swap = _mm256_castsi256_ps(_mm256_slli_epi32(c, 1)); /* sign bit = bit 30 */
        const __m256 xs = _mm256_blendv_ps(cs, sn, swap), ys = _mm256_blendv_ps(sn, cs, swap);
        const __m256 cphi = _mm256_xor_ps(
            xs, _mm256_castsi256_ps(_mm256_and_si256(_mm256_xor_si256(c, _mm256_slli_epi32(c, 1)), sign)));
        const __m256 sphi = _mm256_xor_ps(ys, _mm256_castsi256_ps(_mm256_and_si256(c, sign)));
        _mm256_storeu_ps(out + EFFDIM_NORMAL_BLOCK * b, _mm256_mul_ps(rad, cphi));
        _mm256_storeu_ps(out + EFFDIM_NORMAL_BLOCK * b + 8, _mm256_mul_ps(rad, sphi));
    }
    for (int w = 0; w < 4; ++w) _mm256_storeu_si256((__m256i *)r->s[w], s[w]);
    return blocks;
}

/* ---- AVX-512: two blocks' words by AVX2, their transform in 16 lanes ---- */

#define NTARGET512 __attribute__((target("avx2,fma,avx512f")))

NTARGET512 static size_t fill_avx512(effdim_normal_rng *r, float *out, size_t pairs)
{
    __m256i s[4];
    for (int w = 0; w < 4; ++w) s[w] = _mm256_loadu_si256((const __m256i *)r->s[w]);
    const __m512i one = _mm512_set1_epi32((int)ONE_BITS), mant = _mm512_set1_epi32(MANT_BITS);
    const __m512i sign = _mm512_set1_epi32((int)SIGN_BIT), bias = _mm512_set1_epi32(127);
    const __m512i bit30 = _mm512_set1_epi32(1 << 30);
    const __m512 onep = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 sqrt2 = _mm512_set1_ps(SQRT2), m2 = _mm512_set1_ps(-2.0f);
    const __m512 ln2hi = _mm512_set1_ps(LN2_HI), ln2lo = _mm512_set1_ps(LN2_LO);
    const __m512 pio2 = _mm512_set1_ps(PIO2);
    const __m512 two31 = _mm512_set1_ps(TWO_M31), two32 = _mm512_set1_ps(TWO_M32);
    for (size_t b = 0; b < pairs; ++b) {
        const __m256i a0 = next4(s);
        const __m256i c0 = next4(s);
        const __m256i a1 = next4(s);
        const __m256i c1 = next4(s);
        const __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(a0), a1, 1);
        const __m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);
        const __m512 u = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(a, 1)), two31, two32);
        const __m512i ub = _mm512_castps_si512(u);
        __m512 f = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(ub, mant), one));
        __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(ub, 23), bias));
        const __mmask16 big = _mm512_cmp_ps_mask(f, sqrt2, _CMP_GT_OQ);
        f = _mm512_mask_mul_ps(f, big, f, half);
        e = _mm512_mask_add_ps(e, big, e, onep);
        const __m512 sv = _mm512_div_ps(_mm512_sub_ps(f, onep), _mm512_add_ps(f, onep));
        const __m512 z = _mm512_mul_ps(sv, sv);
        __m512 p = _mm512_set1_ps(LOGC[4]);
        for (int k = 3; k >= 0; --k) p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(LOGC[k]));
        const __m512 lf = _mm512_mul_ps(_mm512_add_ps(sv, sv), p);
        const __m512 lu = _mm512_fmadd_ps(e, ln2hi, _mm512_fmadd_ps(e, ln2lo, lf));
        const __m512 rad = _mm512_sqrt_ps(_mm512_mul_ps(m2, lu));
        const __m512 x = _mm512_sub_ps(
            _mm512_castsi512_ps(_mm512_or_si512(_mm512_srli_epi32(_mm512_slli_epi32(c, 2), 9), one)),
            onep);
        const __m512 th = _mm512_mul_ps(_mm512_sub_ps(x, half), pio2);
        const __m512 t2 = _mm512_mul_ps(th, th);
        __m512 ps = _mm512_set1_ps(SINC[4]);
        for (int k = 3; k >= 1; --k) ps = _mm512_fmadd_ps(ps, t2, _mm512_set1_ps(SINC[k]));
        const __m512 sn = _mm512_fmadd_ps(_mm512_mul_ps(th, t2), ps, th);
        __m512 pc = _mm512_set1_ps(COSC[5]);
        for (int k = 4; k >= 1; --k) pc = _mm512_fmadd_ps(pc, t2, _mm512_set1_ps(COSC[k]));
        const __m512 cs = _mm512_fmadd_ps(t2, pc, onep);
        const __mmask16 swap = _mm512_test_epi32_mask(c, bit30);
        const __m512 xs = _mm512_mask_blend_ps(swap, cs, sn), ys = _mm512_mask_blend_ps(swap, sn, cs);
        const __m512i cm = _mm512_and_si512(_mm512_xor_si512(c, _mm512_slli_epi32(c, 1)), sign);
        const __m512 cphi = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(xs), cm));
        const __m512 sphi = _mm512_castsi512_ps(
            _mm512_xor_si512(_mm512_castps_si512(ys), _mm512_and_si512(c, sign)));
        const __m512 z0 = _mm512_mul_ps(rad, cphi), z1 = _mm512_mul_ps(rad, sphi);
        float *o = out + 2 * EFFDIM_NORMAL_BLOCK * b;
        _mm256_storeu_ps(o, _mm512_castps512_ps256(z0));
        _mm256_storeu_ps(o + 8, _mm512_castps512_ps256(z1));
        _mm256_storeu_ps(o + 16, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z0), 1)));
        _mm256_storeu_ps(o + 24, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z1), 1)));
    }
    for (int w = 0; w < 4; ++w) _mm256_storeu_si256((__m256i *)r->s[w], s[w]);
    return 2 * pairs;
}
#endif

void effdim_normal_fill(effdim_normal_rng *r, float *out, size_t n)
{
    const size_t whole = n / EFFDIM_NORMAL_BLOCK;
    size_t done = 0;
#ifdef EFFDIM_NORMAL_AVX2
    if (!force_scalar && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        if (__builtin_cpu_supports("avx512f")) done = fill_avx512(r, out, whole / 2);
        done += fill_avx2(r, out + EFFDIM_NORMAL_BLOCK * done, whole - done);
    }
#endif
    for (size_t b = done; b < whole; ++b) block_scalar(r, out + EFFDIM_NORMAL_BLOCK * b);
    if (n % EFFDIM_NORMAL_BLOCK) {
        float last[EFFDIM_NORMAL_BLOCK];
        block_scalar(r, last);
        memcpy(out + EFFDIM_NORMAL_BLOCK * whole, last, (n % EFFDIM_NORMAL_BLOCK) * sizeof *out);
    }
}
