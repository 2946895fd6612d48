/* tests/test_normal.c: lib/normal.c's standard normal generator (IVON's
 * weight noise).
 *
 * Oracles: libm's double log, sqrt, cos and sin for the single-precision
 * transform of given words (the float polynomials must agree to 1e-6 of
 * the radius, 8 float epsilons); GSL's normal CDF and quantile for a
 * Kolmogorov-Smirnov test and a chi-square test on 100 equiprobable bins;
 * the exact moments and tail probabilities of N(0, 1) for the sample
 * moments and tail counts (each held to 4.5 standard errors, so a correct
 * generator fails a check with probability below 1e-5; the seeds are fixed,
 * so the verdict is the same on every run). Also: the scalar and the vector
 * loops (AVX2, and AVX-512 where the CPU has it) agree bitwise, and a stream
 * is a pure function of (seed, stream).
 */
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "normal.h"

static float *draws(uint64_t seed, uint64_t stream, size_t n)
{
    float *z = malloc(n * sizeof *z);
    if (!z) return NULL;
    effdim_normal_rng r;
    effdim_normal_seed(&r, seed, stream);
    effdim_normal_fill(&r, z, n);
    return z;
}

static void test_the_transform_matches_libm_to_1e_6(void)
{
    /* words spread over the whole range, the extreme u and quadrants included */
    uint64_t x = 12345;
    double worst = 0.0, largest = 0.0;
    for (int k = 0; k < 400000; ++k) {
        x = effdim_mix64(x);
        uint32_t a = (uint32_t)x, c = (uint32_t)(x >> 32);
        if (k == 0) a = ~0u;                    /* u rounds to 1: r = 0 */
        if (k == 1) a = 0;                      /* u = 2^-32, the largest radius */
        if (k < 6) c = (uint32_t)(k - 2) << 30; /* each quadrant's first angle */
        float z0, z1;
        effdim_normal_pair(a, c, &z0, &z1);
        const float u = fmaf((float)(int32_t)(a >> 1), 0x1p-31f, 0x1p-32f); /* exact as drawn */
        double xf = ldexp((double)((c << 2) >> 9), -23);
        double phi = (double)(c >> 30) * 3.14159265358979323846 / 2 + (xf - 0.5) * 3.14159265358979323846 / 2;
        double rad = sqrt(-2.0 * log((double)u));
        if (k == 0) CHECK(z0 == 0.0f && z1 == 0.0f);
        if (k == 1) { /* sqrt(64 ln 2) = 6.660437 at u = 2^-32 */
            check_note("largest radius %.6f", hypot((double)z0, (double)z1));
            CHECK(fabs(hypot((double)z0, (double)z1) - 6.660437) < 1e-5);
        }
        double e0 = fabs((double)z0 - rad * cos(phi)), e1 = fabs((double)z1 - rad * sin(phi));
        double rel = (e0 > e1 ? e0 : e1) / (rad > 1e-300 ? rad : 1.0);
        if (rel > worst) worst = rel;
        if (fabs((double)z0) > largest) largest = fabs((double)z0);
        if (fabs((double)z1) > largest) largest = fabs((double)z1);
    }
    check_note("worst |z - libm| / r over 400000 pairs: %.3g (float epsilon 1.19e-07); largest "
               "|z| %.4f", worst, largest);
    CHECK(worst < 1e-6);
    CHECK(largest <= 6.6605);
}

static void test_scalar_and_vector_loops_agree_bitwise(void)
{
    /* a partial last block; 6250 and 6251 whole blocks, so where the CPU has
     * AVX-512 (two blocks an iteration) the AVX2 loop does the odd one */
    for (size_t n = 100003; n <= 100019; n += 16) {
        float *a = draws(7, 3, n);
        effdim_normal_force_scalar(1);
        float *b = draws(7, 3, n);
        effdim_normal_force_scalar(0);
        if (CHECK(a && b)) CHECK(!memcmp(a, b, n * sizeof *a));
        free(a);
        free(b);
    }
}

static void test_a_stream_is_a_function_of_seed_and_stream(void)
{
    const size_t n = 1000;
    float *a = draws(1, 5, n), *b = draws(1, 5, n), *c = draws(1, 6, n), *d = draws(2, 5, n);
    if (CHECK(a && b && c && d)) {
        CHECK(!memcmp(a, b, n * sizeof *a));
        CHECK(memcmp(a, c, n * sizeof *a) != 0);
        CHECK(memcmp(a, d, n * sizeof *a) != 0);
        /* fills of multiples of the block continue one stream */
        effdim_normal_rng r;
        effdim_normal_seed(&r, 1, 5);
        float e[1000];
        effdim_normal_fill(&r, e, 512);
        effdim_normal_fill(&r, e + 512, 488);
        CHECK(!memcmp(a, e, n * sizeof *a));
    }
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_moments_and_tails_match_the_standard_normal(void)
{
    const size_t n = 4000000;
    float *z = draws(2026, 1, n);
    if (!CHECK(z)) return;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, pair = 0, lag = 0;
    size_t t3 = 0, t4 = 0, t45 = 0, neg = 0;
    for (size_t i = 0; i < n; ++i) {
        const double v = (double)z[i], v2 = v * v;
        s1 += v;
        s2 += v2;
        s3 += v2 * v;
        s4 += v2 * v2;
        t3 += fabs(v) > 3.0;
        t4 += fabs(v) > 4.0;
        t45 += fabs(v) > 4.5;
        neg += v < 0.0;
        if (i + 1 < n) lag += v * (double)z[i + 1];
        if (i % 16 < 8) pair += v * (double)z[i + 8]; /* the cos and sin of one pair */
    }
    const double N = (double)n;
    const double mean = s1 / N, var = s2 / N - mean * mean;
    check_note("mean %.5f var %.5f skew %.4f kurt %.4f", mean, var, s3 / N, s4 / N);
    CHECK(fabs(mean) < 4.5 / sqrt(N));
    CHECK(fabs(var - 1.0) < 4.5 * sqrt(2.0 / N));
    CHECK(fabs(s3 / N) < 4.5 * sqrt(15.0 / N));          /* Var z^3 = 15 */
    CHECK(fabs(s4 / N - 3.0) < 4.5 * sqrt(96.0 / N));    /* Var z^4 = 105 - 9 */
    CHECK(fabs(lag / (N - 1)) < 4.5 / sqrt(N - 1));
    CHECK(fabs(pair / (N / 2)) < 4.5 / sqrt(N / 2));
    CHECK(fabs((double)neg / N - 0.5) < 4.5 * sqrt(0.25 / N));
    const double p[3] = {2 * gsl_cdf_ugaussian_Q(3.0), 2 * gsl_cdf_ugaussian_Q(4.0),
                         2 * gsl_cdf_ugaussian_Q(4.5)};
    const size_t got[3] = {t3, t4, t45};
    for (int k = 0; k < 3; ++k) {
        const double want = N * p[k], sd = sqrt(N * p[k] * (1 - p[k]));
        check_note("|z| > %.1f: %zu draws, expected %.1f +- %.1f", k == 0 ? 3.0 : k == 1 ? 4.0 : 4.5,
                   got[k], want, sd);
        CHECK(fabs((double)got[k] - want) < 4.5 * sd);
    }
    free(z);
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_kolmogorov_smirnov_and_chi_square_accept_the_normal_cdf(void)
{
    const size_t n = 1000000;
    float *z = draws(99, 42, n);
    if (!CHECK(z)) return;
    /* chi-square on 100 equiprobable bins (edges from GSL's quantile) */
    enum { BINS = 100 };
    double edge[BINS - 1];
    for (int b = 0; b < BINS - 1; ++b) edge[b] = gsl_cdf_ugaussian_Pinv((double)(b + 1) / BINS);
    size_t count[BINS] = {0};
    for (size_t i = 0; i < n; ++i) {
        int lo = 0, hi = BINS - 1; /* the first edge above z, by bisection */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if ((double)z[i] < edge[mid]) hi = mid;
            else lo = mid + 1;
        }
        count[lo] += 1;
    }
    double chi2 = 0.0, want = (double)n / BINS;
    for (int b = 0; b < BINS; ++b) chi2 += ((double)count[b] - want) * ((double)count[b] - want) / want;
    const double chi2_p = gsl_cdf_chisq_Q(chi2, BINS - 1);
    /* Kolmogorov-Smirnov: sqrt(n) D below 1.95 (p = 0.001 for the limit law) */
    qsort(z, n, sizeof *z, cmp_float);
    double D = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double F = gsl_cdf_ugaussian_P((double)z[i]);
        const double lo = F - (double)i / (double)n, hi = (double)(i + 1) / (double)n - F;
        if (lo > D) D = lo;
        if (hi > D) D = hi;
    }
    check_note("chi-square %.1f on 99 dof (p %.3f); KS sqrt(n) D = %.3f; min %.3f max %.3f", chi2,
               chi2_p, sqrt((double)n) * D, (double)z[0], (double)z[n - 1]);
    CHECK(chi2_p > 1e-4);
    CHECK(sqrt((double)n) * D < 1.95);
    free(z);
}

CHECK_TESTS({"the transform matches libm to 1e-6", test_the_transform_matches_libm_to_1e_6},
            {"scalar and vector loops agree bitwise", test_scalar_and_vector_loops_agree_bitwise},
            {"a stream is a function of seed and stream",
             test_a_stream_is_a_function_of_seed_and_stream},
            {"moments and tails match the standard normal",
             test_moments_and_tails_match_the_standard_normal},
            {"kolmogorov-smirnov and chi-square accept the normal cdf",
             test_kolmogorov_smirnov_and_chi_square_accept_the_normal_cdf})
