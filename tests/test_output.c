/* tests/test_output.c: claiming outputs (lib/output.c) and reading files that
 * crash or hang HDF5 (lib/h5guard.c).
 *
 * Outputs: folders, missing and read-only folders and outputs equal to an
 * input are refused before any work; a second claim names the holder's PID;
 * a killed holder's lock is taken over; temporary files of killed runs are
 * removed and those of live runs kept. Hostile files: three corrupt
 * checkpoints (tests/fixtures/hostile, found by mutating bytes of a real
 * checkpoint) that kill or hang libhdf5 1.10 when read directly are refused
 * with one line, and the cost of the check per file is measured.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/output.h"
#include "h5io.h"
#include "internal.h"

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("effdim\n", f);
        fclose(f);
    }
}

#define EXPECT_CLAIM_REFUSED(path, inputs, n, code, ...)                            \
    do {                                                                              \
        effdim_error e_;                                                              \
        effdim_output_lock *l_ = (effdim_output_lock *)1;                             \
        CHECK_STATUS(effdim_output_claim((path), (inputs), (n), &l_, &e_), (code), &e_); \
        CHECK(l_ == NULL);                                                            \
        CHECK_MSG(&e_, __VA_ARGS__);                                                  \
        check_note("%s", e_.msg);                                                     \
    } while (0)

static void folders_and_missing_folders_are_refused_before_any_work(void)
{
    char dir[4200], missing[4300];
    snprintf(dir, sizeof dir, "%s/sub", check_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    EXPECT_CLAIM_REFUSED(dir, NULL, 0, EFFDIM_EINVAL, dir, "is a folder");
    char slash[4300];
    snprintf(slash, sizeof slash, "%s/", dir);
    EXPECT_CLAIM_REFUSED(slash, NULL, 0, EFFDIM_EINVAL, "ends in '/'");
    snprintf(missing, sizeof missing, "%s/nowhere/x.h5", check_tmpdir());
    EXPECT_CLAIM_REFUSED(missing, NULL, 0, EFFDIM_ENOTFOUND, "nowhere", "does not exist");
    EXPECT_CLAIM_REFUSED("", NULL, 0, EFFDIM_EINVAL, "empty");
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo", check_tmpdir());
    CHECK(mkfifo(fifo, 0644) == 0);
    EXPECT_CLAIM_REFUSED(fifo, NULL, 0, EFFDIM_EINVAL, "not a regular file");
}

static void a_read_only_folder_is_refused(void)
{
    /* root writes through permission bits: a read-only tmpfs shows the case */
    char ro[4200], out[4300];
    snprintf(ro, sizeof ro, "%s/ro", check_tmpdir());
    CHECK(mkdir(ro, 0755) == 0);
    if (mount("tmpfs", ro, "tmpfs", MS_RDONLY, "size=64k") != 0) {
        check_note("skipped: cannot mount a read-only tmpfs here (%s)", strerror(errno));
        return;
    }
    snprintf(out, sizeof out, "%s/x.h5", ro);
    EXPECT_CLAIM_REFUSED(out, NULL, 0, EFFDIM_EIO, "cannot write in folder", ro);
    CHECK(umount(ro) == 0);
}

static void an_output_equal_to_an_input_is_refused_through_links(void)
{
    char in[4200], hard[4200], sym[4200], rel[4200], other[4200];
    snprintf(in, sizeof in, "%s/in.h5", check_tmpdir());
    snprintf(hard, sizeof hard, "%s/hard.h5", check_tmpdir());
    snprintf(sym, sizeof sym, "%s/sym.h5", check_tmpdir());
    snprintf(rel, sizeof rel, "%s/sub2/../in.h5", check_tmpdir());
    snprintf(other, sizeof other, "%s/other.h5", check_tmpdir());
    char sub2[4200];
    snprintf(sub2, sizeof sub2, "%s/sub2", check_tmpdir());
    CHECK(mkdir(sub2, 0755) == 0);
    touch(in);
    touch(other);
    CHECK(link(in, hard) == 0);
    CHECK(symlink(in, sym) == 0);
    const char *inputs[] = {NULL, other, in};
    EXPECT_CLAIM_REFUSED(in, inputs, 3, EFFDIM_EINVAL, "same file as the input", in);
    EXPECT_CLAIM_REFUSED(hard, inputs, 3, EFFDIM_EINVAL, hard, "same file as the input");
    EXPECT_CLAIM_REFUSED(sym, inputs, 3, EFFDIM_EINVAL, sym, "same file as the input");
    EXPECT_CLAIM_REFUSED(rel, inputs, 3, EFFDIM_EINVAL, "same file as the input");
    /* a new file and a different existing file are fine */
    char fresh[4200];
    snprintf(fresh, sizeof fresh, "%s/fresh.h5", check_tmpdir());
    const char *just_in[] = {in};
    effdim_output_lock *l = NULL;
    effdim_error e;
    CHECK_OK(effdim_output_claim(fresh, just_in, 1, &l, &e), &e);
    effdim_output_release(l);
    CHECK_OK(effdim_output_claim(other, just_in, 1, &l, &e), &e);
    effdim_output_release(l);
}

/* A child that claims `out`, says so, and holds the claim until *release is
 * written to (or it is killed); returns its PID, -1 when the claim failed. */
static pid_t claim_holder(const char *out, int *release)
{
    int go[2], done[2];
    if (!CHECK(pipe(go) == 0 && pipe(done) == 0)) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        effdim_output_lock *l = NULL;
        char c = effdim_output_claim(out, NULL, 0, &l, NULL) ? 'n' : 'y';
        if (write(go[1], &c, 1) != 1 || read(done[0], &c, 1) != 1) _exit(2);
        effdim_output_release(l);
        _exit(0);
    }
    char c = 0;
    int ok = CHECK(read(go[0], &c, 1) == 1 && c == 'y');
    close(go[0]);
    close(go[1]);
    close(done[0]);
    *release = done[1];
    return ok ? pid : -1;
}

static void a_second_claim_names_the_first_runs_pid(void)
{
    char out[4200], lockf[4300];
    snprintf(out, sizeof out, "%s/locked.h5", check_tmpdir());
    snprintf(lockf, sizeof lockf, "%s/.locked.h5.effdim-lock", check_tmpdir());
    int release = -1;
    pid_t pid = claim_holder(out, &release);
    char want[64];
    snprintf(want, sizeof want, "(PID %ld)", (long)pid);
    EXPECT_CLAIM_REFUSED(out, NULL, 0, EFFDIM_EIO, out, "another effdim run", want);
    CHECK(write(release, "x", 1) == 1);
    close(release);
    waitpid(pid, NULL, 0);
    struct stat sb;
    CHECK(stat(lockf, &sb) != 0); /* release removed the lock file */
    effdim_output_lock *l = NULL;
    effdim_error e;
    CHECK_OK(effdim_output_claim(out, NULL, 0, &l, &e), &e);
    CHECK(stat(lockf, &sb) == 0);
    effdim_output_release(l);
}

static void a_killed_holders_lock_is_taken_over(void)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/killed-holder.h5", check_tmpdir());
    int release = -1;
    pid_t pid = claim_holder(out, &release);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(release);
    effdim_output_lock *l = NULL;
    effdim_error e;
    CHECK_OK(effdim_output_claim(out, NULL, 0, &l, &e), &e);
    effdim_output_release(l);
}

/* A child that creates a temporary of `out` as the atomic writers do, tells
 * its name, and waits; returns its PID. */
static pid_t temporary_maker(const char *out, char *tmp, size_t cap)
{
    int fds[2];
    if (!CHECK(pipe(fds) == 0)) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char name[4300];
        int fd = effdim_output_tmp_create(out, name, sizeof name, NULL);
        if (fd < 0) _exit(2);
        close(fd);
        if (write(fds[1], name, sizeof name) != (ssize_t)sizeof name) _exit(2);
        pause();
        _exit(0);
    }
    tmp[0] = '\0';
    char name[4300] = "";
    CHECK(read(fds[0], name, sizeof name) == (ssize_t)sizeof name);
    snprintf(tmp, cap, "%s", name);
    close(fds[0]);
    close(fds[1]);
    return pid;
}

static void temporaries_of_killed_runs_are_removed_and_live_ones_kept(void)
{
    char out[4200], dead_tmp[4300], live_tmp[4300], alien[4300], odd[4300];
    snprintf(out, sizeof out, "%s/tmp-owner.h5", check_tmpdir());
    pid_t dead = temporary_maker(out, dead_tmp, sizeof dead_tmp);
    pid_t live = temporary_maker(out, live_tmp, sizeof live_tmp);
    kill(dead, SIGKILL);
    waitpid(dead, NULL, 0);
    /* names of another shape are never touched */
    snprintf(alien, sizeof alien, "%s.tmp-AbC123", out);
    snprintf(odd, sizeof odd, "%s.tmp-%ld-ABCDEFG", out, (long)dead);
    touch(alien);
    touch(odd);
    struct stat sb;
    CHECK(stat(dead_tmp, &sb) == 0 && stat(live_tmp, &sb) == 0);
    check_note("killed run's %s, live run's %s", strrchr(dead_tmp, '/') + 1, strrchr(live_tmp, '/') + 1);
    size_t removed = effdim_output_clean_stale(out);
    CHECK(removed == 1);
    CHECK(stat(dead_tmp, &sb) != 0);
    CHECK(stat(live_tmp, &sb) == 0);
    CHECK(stat(alien, &sb) == 0 && stat(odd, &sb) == 0);
    /* a claim and an atomic write clean up the same way */
    pid_t dead2 = temporary_maker(out, dead_tmp, sizeof dead_tmp);
    kill(dead2, SIGKILL);
    waitpid(dead2, NULL, 0);
    effdim_h5_atomic a;
    effdim_error e;
    CHECK_OK(effdim_h5_atomic_begin(out, &a, &e), &e);
    CHECK(stat(dead_tmp, &sb) != 0);
    CHECK_OK(effdim_h5_atomic_commit(&a, &e), &e);
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    effdim_output_lock *l = NULL;
    CHECK_OK(effdim_output_claim(out, NULL, 0, &l, &e), &e);
    CHECK(stat(live_tmp, &sb) != 0);
    effdim_output_release(l);
}

/* ---- files that crash or hang HDF5 ------------------------------------------------ */

/* h5dump's way: every attribute of every object, read in its own type */
static herr_t read_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    (void)data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np > 0 && np < 4096 && H5Tis_variable_str(t) > 0) {
        char *v[4096];
        if (H5Aread(a, t, v) >= 0) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
    } else if (np > 0 && np < 4096 && H5Tget_size(t) <= 64) {
        unsigned char buf[4096 * 64];
        H5Aread(a, t, buf);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static herr_t visit_attrs(hid_t loc, const char *name, const H5O_info_t *info, void *data)
{
    (void)info;
    (void)data;
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) return 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, read_attr, NULL);
    H5Oclose(o);
    return 0;
}

/* What reading the fixture directly (no guard) does to a child process:
 * "signal N", "no end in T s" or "exit N". walk = 0: effdim_checkpoint_load;
 * walk = 1: every attribute of every object, as h5dump or effdim inspect 0.1
 * read them. */
static void unguarded_fate(const char *path, int walk, char *buf, size_t cap)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, STDERR_FILENO);
        setenv("EFFDIM_H5_GUARD", "0", 1);
        alarm(3); /* the huge string grows by about 0.2 GB/s: at most about 0.6 GB */
        if (walk) {
            H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
            hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
            if (f >= 0) H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit_attrs, NULL, H5O_INFO_BASIC);
            _exit(0);
        }
        effdim_checkpoint *c = NULL;
        effdim_checkpoint_load(path, &c, NULL);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(buf, cap, "no end in 3 s");
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "%s", strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "exit %d", WEXITSTATUS(status));
}

static void files_that_crash_or_hang_hdf5_are_refused_with_one_line(void)
{
    static const char *const names[] = {"hostile/crashes-hdf5.h5", "hostile/hangs-hdf5.h5", "hostile/huge-string-hdf5.h5"};
    setenv("EFFDIM_H5_GUARD_SECONDS", "1", 1);
    for (size_t i = 0; i < 3; ++i) {
        const char *path = check_fixture(names[i]);
        char fate[64];
        unguarded_fate(path, i == 1, fate, sizeof fate);
        /* the fixture really provokes HDF5: read directly it does not end normally
         * (the huge string allocates gigabytes: under a sanitizer that is an abort,
         * without one a long stall, cut by the alarm) */
        CHECK(strcmp(fate, "exit 0") != 0);
        effdim_checkpoint *c = (effdim_checkpoint *)1;
        effdim_error e;
        double t0 = effdim_now();
        CHECK_STATUS(effdim_checkpoint_load(path, &c, &e), EFFDIM_EFORMAT, &e);
        double dt = effdim_now() - t0;
        CHECK(c == NULL);
        CHECK_MSG(&e, path, "this file crashes or hangs the HDF5 library");
        CHECK(strchr(e.msg, '\n') == NULL);
        check_note("%s: %s directly: %s; guarded: refused in %.2f s: %s", names[i], i == 1 ? "walked" : "loaded", fate, dt,
                   strstr(e.msg, "this file"));
        CHECK(dt < 10.0);
    }
    unsetenv("EFFDIM_H5_GUARD_SECONDS");
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n);
    if (in) fclose(in);
    if (out) fclose(out);
}

static void the_check_costs_little_per_file(void)
{
    /* a PyTorch-written checkpoint (36 KB); each copy is a new file to the check,
     * whose verdicts are remembered per device, inode, size and mtime */
    const int reps = 30;
    double t_plain = 0.0, t_checked = 0.0, t_again = 0.0;
    effdim_error e;
    for (int r = 0; r < reps; ++r) {
        char path[4200];
        snprintf(path, sizeof path, "%s/cost-%d.h5", check_tmpdir(), r);
        copy_file(check_fixture("torch_written.h5"), path);
        effdim_checkpoint *c = NULL;
        setenv("EFFDIM_H5_GUARD", "0", 1);
        double t0 = effdim_now();
        CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
        t_plain += effdim_now() - t0;
        effdim_checkpoint_free(c);
        unsetenv("EFFDIM_H5_GUARD");
        t0 = effdim_now();
        CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
        t_checked += effdim_now() - t0;
        effdim_checkpoint_free(c);
        t0 = effdim_now();
        CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
        t_again += effdim_now() - t0;
        effdim_checkpoint_free(c);
        unlink(path);
    }
    t_plain /= reps;
    t_checked /= reps;
    t_again /= reps;
    check_note("loading a 36 KB checkpoint: %.2f ms unchecked, %.2f ms with the check in a child "
               "(+%.2f ms), %.2f ms when opened again (verdict remembered); machine load included",
               1e3 * t_plain, 1e3 * t_checked, 1e3 * (t_checked - t_plain), 1e3 * t_again);
    CHECK(t_checked - t_plain < 0.25); /* the bound: 250 ms per file on a loaded machine, sanitizers included */
    CHECK(t_again < t_checked);
}

CHECK_TESTS({"folders and missing folders are refused before any work",
             folders_and_missing_folders_are_refused_before_any_work},
            {"a read-only folder is refused", a_read_only_folder_is_refused},
            {"an output equal to an input is refused through links and relative paths",
             an_output_equal_to_an_input_is_refused_through_links},
            {"a second claim names the first run's PID", a_second_claim_names_the_first_runs_pid},
            {"a killed holder's lock is taken over", a_killed_holders_lock_is_taken_over},
            {"temporaries of killed runs are removed and live ones kept",
             temporaries_of_killed_runs_are_removed_and_live_ones_kept},
            {"files that crash or hang HDF5 are refused with one line",
             files_that_crash_or_hang_hdf5_are_refused_with_one_line},
            {"the check costs little per file", the_check_costs_little_per_file})
