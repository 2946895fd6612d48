/* lib/normal.c: the standard normal generator of lib/normal.h (xoshiro256++
 * lanes, Box-Muller with polynomial log, sin and cos).
 *
 * The scalar loop, the AVX2 + FMA loop and the AVX-512 loop apply the same
 * operations in the same order to the same bits; fma() is correctly rounded like vfmadd, and
 * GCC does not contract a * b + c into an FMA in C11 mode, so the two agree
 * bitwise (tests/test_normal.c checks it). The constants: Taylor coefficients
 * (-1)^k / (2k + 1)! and (-1)^k / (2k)!, the atanh series 1 / (2k + 1), and
 * ln 2 split as in fdlibm (a 32-bit head, so e * LN2_HI is exact).
 */
#include <math.h>
#include <string.h>

#include "normal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EFFDIM_NORMAL_AVX2 1
#endif

#define ONE_BITS 0x3ff0000000000000ULL
#define MANT_BITS 0x000fffffffffffffULL
#define SIGN_BIT 0x8000000000000000ULL
#define EXP_MAGIC 0x4330000000000000ULL /* the bits of 2^52 */
#define GOLDEN 0x9e3779b97f4a7c15ULL

static const double SQRT2 = 1.41421356237309504880;
static const double LN2_HI = 6.93147180369123816490e-01; /* 0x3fe62e42fee00000 */
static const double LN2_LO = 1.90821492927058770002e-10; /* 0x3dea39ef35793c76 */
static const double PIO2 = 1.57079632679489661923;

/* log f = 2 s sum_k s^(2k) / (2k + 1), k = 0..10 */
static const double LOGC[11] = {1.0,       1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9, 1.0 / 11,
                                1.0 / 13,  1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21};
/* sin: (-1)^k / (2k + 1)!, k = 1..7; cos: (-1)^k / (2k)!, k = 1..8 */
static const double SINC[8] = {1.0,
                               -1.0 / 6.0,
                               1.0 / 120.0,
                               -1.0 / 5040.0,
                               1.0 / 362880.0,
                               -1.0 / 39916800.0,
                               1.0 / 6227020800.0,
                               -1.0 / 1307674368000.0};
static const double COSC[9] = {1.0,
                               -1.0 / 2.0,
                               1.0 / 24.0,
                               -1.0 / 720.0,
                               1.0 / 40320.0,
                               -1.0 / 3628800.0,
                               1.0 / 479001600.0,
                               -1.0 / 87178291200.0,
                               1.0 / 20922789888000.0};

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

static inline double as_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static inline uint64_t as_bits(double d)
{
    uint64_t b;
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

/* the two normals of the words a, c (lib/normal.h) */
static inline void box_muller(uint64_t a, uint64_t c, double *z0, double *z1)
{
    const double u = 2.0 - as_double((a >> 12) | ONE_BITS); /* (0, 1], exact */
    /* log u = e ln 2 + log f, f in [sqrt(1/2), sqrt(2)) */
    const uint64_t ub = as_bits(u);
    double f = as_double((ub & MANT_BITS) | ONE_BITS);
    double e = as_double((ub >> 52) | EXP_MAGIC) - (0x1p52 + 1023.0);
    const int big = f > SQRT2;
    f = big ? f * 0.5 : f;
    e = e + (big ? 1.0 : 0.0);
    const double s = (f - 1.0) / (f + 1.0);
    const double z = s * s;
    double p = LOGC[10];
    for (int k = 9; k >= 0; --k) p = fma(p, z, LOGC[k]);
    const double lf = (s + s) * p;
    const double lu = fma(e, LN2_HI, fma(e, LN2_LO, lf));
    const double rad = sqrt(-2.0 * lu);
    /* cos and sin of phi = q pi/2 + theta */
    const double x = as_double(((c << 2) >> 12) | ONE_BITS) - 1.0;
    const double th = (x - 0.5) * PIO2;
    const double t2 = th * th;
    double ps = SINC[7];
    for (int k = 6; k >= 1; --k) ps = fma(ps, t2, SINC[k]);
    const double sn = fma(th * t2, ps, th);
    double pc = COSC[8];
    for (int k = 7; k >= 1; --k) pc = fma(pc, t2, COSC[k]);
    const double cs = fma(t2, pc, 1.0);
    const int swap = (int)((c >> 62) & 1);
    const double xs = swap ? sn : cs, ys = swap ? cs : sn;
    const double cphi = as_double(as_bits(xs) ^ ((c ^ (c << 1)) & SIGN_BIT));
    const double sphi = as_double(as_bits(ys) ^ (c & SIGN_BIT));
    *z0 = rad * cphi;
    *z1 = rad * sphi;
}

void effdim_normal_pair(uint64_t a, uint64_t c, double *z0, double *z1)
{
    box_muller(a, c, z0, z1);
}

static void block_scalar(effdim_normal_rng *r, double *out)
{
    for (int j = 0; j < EFFDIM_NORMAL_LANES; ++j) {
        const uint64_t a = next_lane(r, j);
        const uint64_t c = next_lane(r, j);
        box_muller(a, c, &out[j], &out[EFFDIM_NORMAL_LANES + j]);
    }
}

/* ---- AVX2 + FMA: the four lanes at once ---- */

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

NTARGET static size_t fill_avx2(effdim_normal_rng *r, double *out, size_t blocks)
{
    __m256i s[4];
    for (int w = 0; w < 4; ++w) s[w] = _mm256_loadu_si256((const __m256i *)r->s[w]);
    const __m256i one = _mm256_set1_epi64x((long long)ONE_BITS);
    const __m256i mant = _mm256_set1_epi64x((long long)MANT_BITS);
    const __m256i sign = _mm256_set1_epi64x((long long)SIGN_BIT);
    const __m256i magic = _mm256_set1_epi64x((long long)EXP_MAGIC);
    const __m256d two = _mm256_set1_pd(2.0), onep = _mm256_set1_pd(1.0);
    const __m256d half = _mm256_set1_pd(0.5), sqrt2 = _mm256_set1_pd(SQRT2);
    const __m256d ebias = _mm256_set1_pd(0x1p52 + 1023.0), m2 = _mm256_set1_pd(-2.0);
    const __m256d ln2hi = _mm256_set1_pd(LN2_HI), ln2lo = _mm256_set1_pd(LN2_LO);
    const __m256d pio2 = _mm256_set1_pd(PIO2);
    for (size_t b = 0; b < blocks; ++b) {
        const __m256i a = next4(s);
        const __m256i c = next4(s);
        const __m256d u = _mm256_sub_pd(
            two, _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(a, 12), one)));
        const __m256i ub = _mm256_castpd_si256(u);
        __m256d f = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(ub, mant), one));
        __m256d e = _mm256_sub_pd(
            _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(ub, 52), magic)), ebias);
        const __m256d big = _mm256_cmp_pd(f, sqrt2, _CMP_GT_OQ);
        f = _mm256_blendv_pd(f, _mm256_mul_pd(f, half), big);
        e = _mm256_add_pd(e, _mm256_and_pd(big, onep));
        const __m256d sv = _mm256_div_pd(_mm256_sub_pd(f, onep), _mm256_add_pd(f, onep));
        const __m256d z = _mm256_mul_pd(sv, sv);
        __m256d p = _mm256_set1_pd(LOGC[10]);
        for (int k = 9; k >= 0; --k) p = _mm256_fmadd_pd(p, z, _mm256_set1_pd(LOGC[k]));
        const __m256d lf = _mm256_mul_pd(_mm256_add_pd(sv, sv), p);
        const __m256d lu = _mm256_fmadd_pd(e, ln2hi, _mm256_fmadd_pd(e, ln2lo, lf));
        const __m256d rad = _mm256_sqrt_pd(_mm256_mul_pd(m2, lu));
        const __m256d x = _mm256_sub_pd(
            _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(_mm256_slli_epi64(c, 2), 12), one)),
            onep);
        const __m256d th = _mm256_mul_pd(_mm256_sub_pd(x, half), pio2);
        const __m256d t2 = _mm256_mul_pd(th, th);
        __m256d ps = _mm256_set1_pd(SINC[7]);
        for (int k = 6; k >= 1; --k) ps = _mm256_fmadd_pd(ps, t2, _mm256_set1_pd(SINC[k]));
        const __m256d sn = _mm256_fmadd_pd(_mm256_mul_pd(th, t2), ps, th);
        __m256d pc = _mm256_set1_pd(COSC[8]);
        for (int k = 7; k >= 1; --k) pc = _mm256_fmadd_pd(pc, t2, _mm256_set1_pd(COSC[k]));
        const __m256d cs = _mm256_fmadd_pd(t2, pc, onep);
        const __m256d swap = _mm256_castsi256_pd(_mm256_slli_epi64(c, 1)); /* sign bit = bit 62 */
        const __m256d xs = _mm256_blendv_pd(cs, sn, swap), ys = _mm256_blendv_pd(sn, cs, swap);
        const __m256d cphi = _mm256_xor_pd(
            xs, _mm256_castsi256_pd(_mm256_and_si256(_mm256_xor_si256(c, _mm256_slli_epi64(c, 1)), sign)));
        const __m256d sphi = _mm256_xor_pd(ys, _mm256_castsi256_pd(_mm256_and_si256(c, sign)));
        _mm256_storeu_pd(out + EFFDIM_NORMAL_BLOCK * b, _mm256_mul_pd(rad, cphi));
        _mm256_storeu_pd(out + EFFDIM_NORMAL_BLOCK * b + 4, _mm256_mul_pd(rad, sphi));
    }
    for (int w = 0; w < 4; ++w) _mm256_storeu_si256((__m256i *)r->s[w], s[w]);
    return blocks;
}

/* ---- AVX-512: the uniforms of two blocks by AVX2, their transform at once ---- */

#define NTARGET512 __attribute__((target("avx2,fma,avx512f")))

NTARGET512 static size_t fill_avx512(effdim_normal_rng *r, double *out, size_t pairs)
{
    __m256i s[4];
    for (int w = 0; w < 4; ++w) s[w] = _mm256_loadu_si256((const __m256i *)r->s[w]);
    const __m512i one = _mm512_set1_epi64((long long)ONE_BITS);
    const __m512i mant = _mm512_set1_epi64((long long)MANT_BITS);
    const __m512i sign = _mm512_set1_epi64((long long)SIGN_BIT);
    const __m512i magic = _mm512_set1_epi64((long long)EXP_MAGIC);
    const __m512i bit62 = _mm512_set1_epi64((long long)(1ULL << 62));
    const __m512d two = _mm512_set1_pd(2.0), onep = _mm512_set1_pd(1.0);
    const __m512d half = _mm512_set1_pd(0.5), sqrt2 = _mm512_set1_pd(SQRT2);
    const __m512d ebias = _mm512_set1_pd(0x1p52 + 1023.0), m2 = _mm512_set1_pd(-2.0);
    const __m512d ln2hi = _mm512_set1_pd(LN2_HI), ln2lo = _mm512_set1_pd(LN2_LO);
    const __m512d pio2 = _mm512_set1_pd(PIO2);
    for (size_t b = 0; b < pairs; ++b) {
        const __m256i a0 = next4(s);
        const __m256i c0 = next4(s);
        const __m256i a1 = next4(s);
        const __m256i c1 = next4(s);
        const __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(a0), a1, 1);
        const __m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);
        const __m512d u = _mm512_sub_pd(
            two, _mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64(a, 12), one)));
        const __m512i ub = _mm512_castpd_si512(u);
        __m512d f = _mm512_castsi512_pd(_mm512_or_si512(_mm512_and_si512(ub, mant), one));
        __m512d e = _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64(ub, 52), magic)), ebias);
        const __mmask8 big = _mm512_cmp_pd_mask(f, sqrt2, _CMP_GT_OQ);
        f = _mm512_mask_blend_pd(big, f, _mm512_mul_pd(f, half));
        e = _mm512_add_pd(e, _mm512_maskz_mov_pd(big, onep)); /* + 1 or + 0, as AVX2 */
        const __m512d sv = _mm512_div_pd(_mm512_sub_pd(f, onep), _mm512_add_pd(f, onep));
        const __m512d z = _mm512_mul_pd(sv, sv);
        __m512d p = _mm512_set1_pd(LOGC[10]);
        for (int k = 9; k >= 0; --k) p = _mm512_fmadd_pd(p, z, _mm512_set1_pd(LOGC[k]));
        const __m512d lf = _mm512_mul_pd(_mm512_add_pd(sv, sv), p);
        const __m512d lu = _mm512_fmadd_pd(e, ln2hi, _mm512_fmadd_pd(e, ln2lo, lf));
        const __m512d rad = _mm512_sqrt_pd(_mm512_mul_pd(m2, lu));
        const __m512d x = _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64(_mm512_slli_epi64(c, 2), 12), one)),
            onep);
        const __m512d th = _mm512_mul_pd(_mm512_sub_pd(x, half), pio2);
        const __m512d t2 = _mm512_mul_pd(th, th);
        __m512d ps = _mm512_set1_pd(SINC[7]);
        for (int k = 6; k >= 1; --k) ps = _mm512_fmadd_pd(ps, t2, _mm512_set1_pd(SINC[k]));
        const __m512d sn = _mm512_fmadd_pd(_mm512_mul_pd(th, t2), ps, th);
        __m512d pc = _mm512_set1_pd(COSC[8]);
        for (int k = 7; k >= 1; --k) pc = _mm512_fmadd_pd(pc, t2, _mm512_set1_pd(COSC[k]));
        const __m512d cs = _mm512_fmadd_pd(t2, pc, onep);
        const __mmask8 swap = _mm512_test_epi64_mask(c, bit62);
        const __m512d xs = _mm512_mask_blend_pd(swap, cs, sn), ys = _mm512_mask_blend_pd(swap, sn, cs);
        const __m512i cm = _mm512_and_si512(_mm512_xor_si512(c, _mm512_slli_epi64(c, 1)), sign);
        const __m512d cphi = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(xs), cm));
        const __m512d sphi = _mm512_castsi512_pd(
            _mm512_xor_si512(_mm512_castpd_si512(ys), _mm512_and_si512(c, sign)));
        const __m512d z0 = _mm512_mul_pd(rad, cphi), z1 = _mm512_mul_pd(rad, sphi);
        double *o = out + 2 * EFFDIM_NORMAL_BLOCK * b;
        _mm256_storeu_pd(o, _mm512_castpd512_pd256(z0));
        _mm256_storeu_pd(o + 4, _mm512_castpd512_pd256(z1));
        _mm256_storeu_pd(o + 8, _mm512_extractf64x4_pd(z0, 1));
        _mm256_storeu_pd(o + 12, _mm512_extractf64x4_pd(z1, 1));
    }
    for (int w = 0; w < 4; ++w) _mm256_storeu_si256((__m256i *)r->s[w], s[w]);
    return 2 * pairs;
}
#endif

void effdim_normal_fill(effdim_normal_rng *r, double *out, size_t n)
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
        double last[EFFDIM_NORMAL_BLOCK];
        block_scalar(r, last);
        memcpy(out + EFFDIM_NORMAL_BLOCK * whole, last, (n % EFFDIM_NORMAL_BLOCK) * sizeof *out);
    }
}
