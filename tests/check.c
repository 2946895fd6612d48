/* tests/check.c: the harness behind check.h. */
#include "check.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int current_failed;
static size_t current_checks; /* checks made by the running test */
static const char *current_name;
static char tmpdir[512];

static void fail_header(const char *file, int line)
{
    fprintf(stdout, "    check failed in '%s' at %s:%d\n", current_name ? current_name : "?", file, line);
}

int check_true(int ok, const char *expr, const char *file, int line)
{
    ++current_checks;
    if (ok) return 1;
    current_failed = 1;
    fail_header(file, line);
    fprintf(stdout, "      %s\n", expr);
    return 0;
}

int check_close(double got, double want, double rtol, double atol, const char *expr,
                const char *file, int line)
{
    double diff = fabs(got - want);
    double tol = atol + rtol * fabs(want);
    ++current_checks;
    /* NaN is close to nothing, itself included, whatever the tolerances: a test
     * that expects NaN says so with CHECK(isnan(x)). */
    if (!isnan(got) && !isnan(want) && diff <= tol) return 1;
    current_failed = 1;
    fail_header(file, line);
    fprintf(stdout, "      %s: got %.17g, want %.17g, |diff| %.3g > tol %.3g (rel %.3g)\n", expr, got,
            want, diff, tol, want != 0 ? diff / fabs(want) : diff);
    return 0;
}

int check_status(int got, int want, const effdim_error *err, const char *expr, const char *file,
                 int line)
{
    ++current_checks;
    if (got == want) return 1;
    current_failed = 1;
    fail_header(file, line);
    fprintf(stdout, "      %s returned %s, want %s; message: %s\n", expr,
            effdim_status_name((effdim_status)got), effdim_status_name((effdim_status)want),
            err ? err->msg : "(none)");
    return 0;
}

int check_msg(const effdim_error *err, const char *file, int line, ...)
{
    va_list ap;
    va_start(ap, line);
    int ok = 1;
    ++current_checks;
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL) {
        if (!err || !strstr(err->msg, s)) {
            if (ok) {
                current_failed = 1;
                fail_header(file, line);
                fprintf(stdout, "      message \"%s\"\n", err ? err->msg : "(null)");
            }
            fprintf(stdout, "      lacks \"%s\"\n", s);
            ok = 0;
        }
    }
    va_end(ap);
    return ok;
}

int check_vec_close(const double *got, const double *want, size_t n, double rtol, const char *expr,
                    const char *file, int line)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    int nan = 0;
    ++current_checks;
    for (size_t i = 0; i < n; ++i)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    if (scale == 0) scale = 1e-300;
    for (size_t i = 0; i < n; ++i) {
        double d = fabs(got[i] - want[i]);
        if (isnan(got[i]) || isnan(want[i])) { /* a NaN fails, whatever rtol is */
            if (!nan) at = i;
            nan = 1;
            worst = (double)INFINITY;
        } else if (!nan && d > worst) {
            worst = d;
            at = i;
        }
    }
    if (!nan && worst / scale <= rtol) return 1;
    current_failed = 1;
    fail_header(file, line);
    fprintf(stdout, "      %s: max rel error %.3g > %.3g at [%zu]: got %.17g, want %.17g\n", expr,
            worst / scale, rtol, at, n ? got[at] : 0.0, n ? want[at] : 0.0);
    return 0;
}

void check_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("    # ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

const char *check_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/effdim-test-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(99);
        }
    }
    return tmpdir;
}

const char *check_tmpfile(const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 1024, "%s/%s", check_tmpdir(), name);
    return b;
}

const char *check_fixture(const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    const char *dir = getenv("EFFDIM_FIXTURES");
#ifdef EFFDIM_FIXTURE_DIR
    if (!dir) dir = EFFDIM_FIXTURE_DIR;
#endif
    if (!dir) dir = "tests/fixtures";
    snprintf(b, 1024, "%s/%s", dir, name);
    return b;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    char buf[2048];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(buf, sizeof buf, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(buf, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(buf);
        else
            unlink(buf);
    }
    closedir(d);
    rmdir(path);
}

int check_main(int argc, char **argv, const check_test *tests, size_t n)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    size_t passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < n; ++i) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        current_failed = 0;
        current_checks = 0;
        current_name = tests[i].name;
        tests[i].fn();
        if (current_checks == 0) {
            ++failed;
            printf("FAIL - %s (it made no checks)\n", tests[i].name);
        } else if (current_failed) {
            ++failed;
            printf("FAIL - %s\n", tests[i].name);
        } else {
            ++passed;
            printf("ok - %s\n", tests[i].name);
        }
    }
    if (passed + failed == 0) {
        ++failed;
        if (filter) printf("FAIL - the filter '%s' matches none of the %zu tests\n", filter, n);
        else printf("FAIL - the program has no tests\n");
    }
    if (tmpdir[0] && failed == 0) remove_tree(tmpdir);
    else if (tmpdir[0]) printf("# temporary files kept in %s\n", tmpdir);
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}
