/* tests/check.h: effdim's small test harness.
 *
 * A test program is a table of named test functions. Each function makes
 * checks; a failed check prints where it failed and the values involved, and
 * marks its test failed (the test goes on, so one run shows every failure).
 * check_main runs the table (or the tests whose names contain argv[1]),
 * prints "ok - name" / "FAIL - name" per test and ends with its own line
 * "N passed, M failed"; it returns non-zero when any test failed.
 * A test that makes no checks fails (a test that cannot fail proves nothing),
 * and so does a run where no test ran: a filter that matches no name, or an
 * empty table. NaN is close to nothing, itself included, whatever the
 * tolerances (check_close, check_vec_close): a test that expects NaN says so
 * with CHECK(isnan(x)).
 * Test names read as sentences: "gradient matches central differences".
 */
#ifndef EFFDIM_TESTS_CHECK_H
#define EFFDIM_TESTS_CHECK_H

#include <stddef.h>

#include "effdim/status.h"

typedef struct check_test {
    const char *name;
    void (*fn)(void);
} check_test;

int check_main(int argc, char **argv, const check_test *tests, size_t n);

/* Each returns 1 when the check passed. */
int check_true(int ok, const char *expr, const char *file, int line);
int check_close(double got, double want, double rtol, double atol, const char *expr,
                const char *file, int line);
int check_status(int got, int want, const effdim_error *err, const char *expr, const char *file,
                 int line);
/* the error message contains every one of the NULL-terminated substrings */
int check_msg(const effdim_error *err, const char *file, int line, ...);
/* max_i |a_i - b_i| / max(max_i |b_i|, tiny) <= rtol, and no NaN in either */
int check_vec_close(const double *got, const double *want, size_t n, double rtol,
                    const char *expr, const char *file, int line);
/* printf-style note, indented under the current test */
void check_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* A fresh temporary folder for this program (removed at exit when all passed). */
const char *check_tmpdir(void);
/* check_tmpdir()/name into a static rotating buffer */
const char *check_tmpfile(const char *name);
/* Folder holding committed fixtures (tests/fixtures), from the build. */
const char *check_fixture(const char *name);

#define CHECK(cond) check_true(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_CLOSE(got, want, rtol) check_close((got), (want), (rtol), 0.0, #got " ~ " #want, __FILE__, __LINE__)
#define CHECK_NEAR(got, want, atol) check_close((got), (want), 0.0, (atol), #got " ~ " #want, __FILE__, __LINE__)
#define CHECK_OK(expr, errp) check_status((expr), EFFDIM_OK, (errp), #expr, __FILE__, __LINE__)
#define CHECK_STATUS(expr, code, errp) check_status((expr), (code), (errp), #expr, __FILE__, __LINE__)
#define CHECK_MSG(errp, ...) check_msg((errp), __FILE__, __LINE__, __VA_ARGS__, (const char *)0)
#define CHECK_VEC_CLOSE(got, want, n, rtol) check_vec_close((got), (want), (n), (rtol), #got " ~ " #want, __FILE__, __LINE__)

#define CHECK_TESTS(...)                                                     \
    int main(int argc, char **argv)                                          \
    {                                                                        \
        static const check_test tests_[] = {__VA_ARGS__};                    \
        return check_main(argc, argv, tests_, sizeof tests_ / sizeof tests_[0]); \
    }

#endif
