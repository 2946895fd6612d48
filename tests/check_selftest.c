/* tests/check_selftest.c: the harness (tests/check.c) tested on itself.
 *
 * Each test below is one case of the harness's rules. tests/meson.build runs
 * this program once per case with the case's name as the filter: the cases
 * that must fail run with should_fail (a test that makes no checks, NaN
 * compared with NaN or with a number whatever the tolerances, a filter that
 * matches nothing), the others must pass. Run with no filter, the program
 * fails, as it should.
 */
#include <math.h>

#include "check.h"

/* must fail: a test that cannot fail proves nothing */
static void makes_no_checks(void) {}

/* must fail, even with infinite tolerances */
static void nan_is_not_close_to_nan(void)
{
    CHECK_CLOSE(NAN, NAN, INFINITY);
}

static void nan_got_is_not_close_to_a_number(void)
{
    check_close(NAN, 1.0, INFINITY, INFINITY, "nan ~ 1", __FILE__, __LINE__);
}

static void nan_want_is_not_close_to_a_number(void)
{
    check_close(1.0, NAN, INFINITY, INFINITY, "1 ~ nan", __FILE__, __LINE__);
}

static void a_nan_in_a_vector_fails_whatever_rtol(void)
{
    double got[3] = {1.0, NAN, 3.0}, want[3] = {1.0, NAN, 3.0};
    CHECK_VEC_CLOSE(got, want, 3, INFINITY);
}

static void a_nan_only_in_want_fails(void)
{
    double got[2] = {1.0, 2.0}, want[2] = {NAN, 2.0};
    CHECK_VEC_CLOSE(got, want, 2, INFINITY);
}

/* must pass: the same values said the right way */
static void nan_is_expected_with_isnan(void)
{
    double x = NAN;
    CHECK(isnan(x));
    CHECK_CLOSE(2.385, 2.385 * (1 + 1e-12), 1e-10);
    double a[2] = {1.5, -2.25}, b[2] = {1.5, -2.25};
    CHECK_VEC_CLOSE(a, b, 2, 0.0);
}

/* must pass: a passing check still counts when it is the only one */
static void one_passing_check_is_enough(void)
{
    CHECK(1 + 1 == 2);
}

CHECK_TESTS({"makes no checks", makes_no_checks},
            {"nan is not close to nan", nan_is_not_close_to_nan},
            {"nan got is not close to a number", nan_got_is_not_close_to_a_number},
            {"nan want is not close to a number", nan_want_is_not_close_to_a_number},
            {"a nan in a vector fails whatever rtol", a_nan_in_a_vector_fails_whatever_rtol},
            {"a nan only in want fails", a_nan_only_in_want_fails},
            {"nan is expected with isnan", nan_is_expected_with_isnan},
            {"one passing check is enough", one_passing_check_is_enough})
