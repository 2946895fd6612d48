/* lib/h5guard.c: read an untrusted HDF5 file once in a child process first.
 *
 * libhdf5 1.10 crashes or loops forever on some corrupt files (fuzzing found
 * SIGSEGV in H5F__accum_read, H5VM_memcpyvv, H5HG_read, H5A__close and an
 * endless loop in H5C_protect). effdim cannot fix HDF5, but it can refuse
 * such a file instead of dying with it: before a reader opens a file, a
 * forked child opens it and touches what readers touch (every object, every
 * attribute value, and the data sets up to a byte budget) under CPU-time and
 * address-space limits. A child that dies by a signal, exceeds its CPU time,
 * runs out of its wall-clock allowance or exits non-zero (a sanitizer's
 * report) or failed a read for want of memory (a vlen string claiming
 * gigabytes: HDF5 would allocate and clear it for a minute) makes the reader
 * fail with one line:
 *   "FILE: this file crashes the HDF5 library (SIGSEGV while reading it in a
 *    checking process); it is corrupt"
 *   "FILE: this file hangs the HDF5 library (no answer after N s of CPU ...)".
 *
 * Limits (docs/file-formats.md, "Hostile files", says what is and is not defended):
 *   - CPU: EFFDIM_H5_GUARD_SECONDS (default 10) seconds, wall clock 2x that + 5 s;
 *   - memory: the parent's address space plus 2 GiB (RLIMIT_AS);
 *   - data sets are read up to 64 MiB per file in blocks of at most 4 MiB
 *     rows; beyond that only the first and last block of each data set.
 * EFFDIM_H5_GUARD=0 switches the check off (trusted files, measurements).
 * A file that passed is remembered (device, inode, size, mtime) for the rest
 * of the process, so opening it again costs nothing. Not thread-safe, like
 * the HDF5 build it guards.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "h5io.h"

#define GUARD_DATA_BUDGET ((hsize_t)64 << 20)
#define GUARD_BLOCK ((hsize_t)4 << 20)
#define GUARD_ATTR_MAX ((size_t)16 << 20)

/* ---- the child: touch everything a reader touches ---------------------------- */

/* Set when a read failed for want of memory: under the child's limit that is
 * a file claiming absurd sizes (a string attribute of many GB), which the
 * reader, without the limit, would allocate and fill for minutes. */
static int child_out_of_memory;

static herr_t nomem_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    (void)data;
    if (e->maj_num == H5E_RESOURCE || e->min_num == H5E_CANTALLOC || e->min_num == H5E_NOSPACE)
        child_out_of_memory = 1;
    return 0;
}

static void note_failure(herr_t rs)
{
    if (rs < 0) H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, nomem_cb, NULL);
}

static void touch_attr_value(hid_t at)
{
    hid_t ft = H5Aget_type(at), sp = H5Aget_space(at);
    hssize_t np = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    size_t sz = ft < 0 ? 0 : H5Tget_size(ft);
    if (np > 0 && ft >= 0 && H5Tis_variable_str(ft) > 0 && (size_t)np <= GUARD_ATTR_MAX / 8) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft)); /* as the readers do: the same conversion path */
        char **buf = calloc((size_t)np, sizeof *buf);
        herr_t rs = buf ? H5Aread(at, mt, buf) : -1;
        note_failure(rs);
        if (rs >= 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
        free(buf);
        H5Tclose(mt);
    } else if (np > 0 && sz > 0 && H5Tdetect_class(ft, H5T_VLEN) <= 0 &&
               (size_t)np <= GUARD_ATTR_MAX / sz) {
        void *buf = malloc((size_t)np * sz);
        if (buf) note_failure(H5Aread(at, ft, buf));
        free(buf);
    }
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
}

static herr_t touch_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    (void)data;
    hid_t at = H5Aopen(loc, name, H5P_DEFAULT);
    if (at >= 0) {
        touch_attr_value(at);
        H5Aclose(at);
    }
    return 0;
}

/* rows [r0, r0 + nr) of a data set (all of it for rank 0) */
static void touch_rows(hid_t ds, hid_t mt, hid_t fsp, int rank, const hsize_t *dims, hsize_t r0,
                       hsize_t nr, size_t row_bytes)
{
    hsize_t start[EFFDIM_H5_MAX_RANK] = {0}, count[EFFDIM_H5_MAX_RANK];
    for (int i = 0; i < rank; ++i) count[i] = dims[i];
    start[0] = r0;
    count[0] = nr;
    void *buf = malloc((size_t)nr * row_bytes);
    if (!buf) return;
    hid_t msp = H5Screate_simple(rank, count, NULL);
    if (H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
        note_failure(H5Dread(ds, mt, msp, fsp, H5P_DEFAULT, buf));
    H5Sclose(msp);
    free(buf);
}

static void touch_dataset(hid_t ds, hsize_t *budget)
{
    hid_t ft = H5Dget_type(ds), fsp = H5Dget_space(ds);
    int rank = fsp < 0 ? -1 : H5Sget_simple_extent_ndims(fsp);
    hsize_t dims[EFFDIM_H5_MAX_RANK];
    size_t sz = ft < 0 ? 0 : H5Tget_size(ft);
    if (rank < 0 || rank > EFFDIM_H5_MAX_RANK || sz == 0 || H5Tdetect_class(ft, H5T_VLEN) > 0 ||
        H5Tis_variable_str(ft) > 0)
        goto done;
    if (rank == 0) {
        void *buf = malloc(sz);
        if (buf) H5Dread(ds, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
        goto done;
    }
    H5Sget_simple_extent_dims(fsp, dims, NULL);
    size_t row_bytes = sz;
    for (int i = 1; i < rank; ++i) {
        if (dims[i] == 0 || row_bytes > GUARD_BLOCK / dims[i]) goto done; /* absurd rows: readers refuse */
        row_bytes *= (size_t)dims[i];
    }
    if (dims[0] == 0) goto done;
    hsize_t block = GUARD_BLOCK / row_bytes ? GUARD_BLOCK / row_bytes : 1;
    for (hsize_t r = 0; r < dims[0];) {
        hsize_t nr = dims[0] - r < block ? dims[0] - r : block;
        hsize_t bytes = nr * row_bytes;
        if (bytes > *budget && r > 0) { /* over budget: the last block only */
            hsize_t last = dims[0] - nr;
            if (last > r) touch_rows(ds, ft, fsp, rank, dims, last, nr, row_bytes);
            break;
        }
        touch_rows(ds, ft, fsp, rank, dims, r, nr, row_bytes);
        *budget = bytes > *budget ? 0 : *budget - bytes;
        r += nr;
    }
done:
    if (fsp >= 0) H5Sclose(fsp);
    if (ft >= 0) H5Tclose(ft);
}

static herr_t touch_object(hid_t loc, const char *name, const H5O_info_t *info, void *data)
{
    hid_t obj = H5Oopen(loc, name, H5P_DEFAULT);
    if (obj < 0) return 0;
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, touch_attr, NULL);
    if (info->type == H5O_TYPE_DATASET) touch_dataset(obj, data);
    H5Oclose(obj);
    return 0;
}

static void child_check(const char *path, double seconds)
{
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) { /* a sanitizer's report or HDF5's own messages are not the user's */
        dup2(devnull, STDERR_FILENO);
        dup2(devnull, STDOUT_FILENO);
    }
    struct rlimit cpu = {(rlim_t)seconds + 1, (rlim_t)seconds + 2};
    setrlimit(RLIMIT_CPU, &cpu);
    {   /* under AddressSanitizer too: its shadow is already mapped, and counted */
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
            if (fscanf(f, "%ld", &pages) != 1) pages = 0;
            fclose(f);
        }
        rlim_t as = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)2 << 30);
        struct rlimit mem = {as, as};
        if (pages > 0) setrlimit(RLIMIT_AS, &mem);
    }
    effdim_h5_quiet();
    if (H5Fis_hdf5(path) <= 0) _exit(0); /* the reader says what is wrong */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) _exit(0);
    hsize_t budget = GUARD_DATA_BUDGET;
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, touch_object, &budget, H5O_INFO_BASIC);
    H5Fclose(f);
    _exit(child_out_of_memory ? 3 : 0);
}

/* ---- the parent ------------------------------------------------------------------- */

static double guard_seconds(void)
{
    const char *s = getenv("EFFDIM_H5_GUARD_SECONDS");
    char *end;
    double v = s ? strtod(s, &end) : 0.0;
    return s && end != s && v >= 0.1 && v <= 3600.0 ? v : 10.0;
}

int effdim_h5_guard_enabled(void)
{
    const char *s = getenv("EFFDIM_H5_GUARD");
    return !(s && (!strcmp(s, "0") || !strcmp(s, "off")));
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Files this process already checked, unchanged since (device, inode, size,
 * modification time): a command that opens its input twice pays once. */
#define GUARD_CACHE 16
typedef struct checked_file {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} checked_file;
static checked_file guard_cache[GUARD_CACHE];
static size_t guard_cache_n, guard_cache_next;

static int same_file(const checked_file *c, const struct stat *sb)
{
    return c->dev == sb->st_dev && c->ino == sb->st_ino && c->size == sb->st_size &&
           c->mtime.tv_sec == sb->st_mtim.tv_sec && c->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

static int already_checked(const struct stat *sb)
{
    for (size_t i = 0; i < guard_cache_n; ++i)
        if (same_file(&guard_cache[i], sb)) return 1;
    return 0;
}

static void remember_checked(const struct stat *sb)
{
    checked_file c = {sb->st_dev, sb->st_ino, sb->st_size, sb->st_mtim};
    guard_cache[guard_cache_next] = c;
    guard_cache_next = (guard_cache_next + 1) % GUARD_CACHE;
    if (guard_cache_n < GUARD_CACHE) ++guard_cache_n;
}

effdim_status effdim_h5_guard(const char *path, effdim_error *err)
{
    if (!effdim_h5_guard_enabled()) return EFFDIM_OK;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: not a regular file, expected an HDF5 file",
                                path);
    if (already_checked(&sb)) return EFFDIM_OK;
    double seconds = guard_seconds();
    int done[2];
    if (pipe(done) != 0) return EFFDIM_OK; /* no pipe to be had: read as before */
    fcntl(done[0], F_SETFD, FD_CLOEXEC);
    fcntl(done[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(done[0]);
        close(done[1]);
        return EFFDIM_OK; /* no child to be had: read as before */
    }
    if (pid == 0) {
        close(done[0]); /* done[1] stays open until the child ends, however it ends */
        child_check(path, seconds);
    }
    close(done[1]);
    /* wait for the end of the pipe (the child's exit or death), at most the wall allowance */
    double t0 = mono_now(), wall = 2.0 * seconds + 5.0;
    int killed = 0;
    for (;;) {
        double left = wall - (mono_now() - t0);
        if (left <= 0.0) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        struct pollfd pfd = {done[0], POLLIN, 0};
        int r = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (r > 0) break;
        if (r < 0 && errno != EINTR) break;
    }
    close(done[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return EFFDIM_OK; /* SIGCHLD ignored by the caller: no verdict */
    if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        remember_checked(&sb);
        return EFFDIM_OK;
    }
    char why[96];
    if (killed || (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU || WTERMSIG(status) == SIGKILL)))
        snprintf(why, sizeof why, "no answer after %.0f s", killed ? wall : seconds);
    else if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "%s", strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) == 3)
        snprintf(why, sizeof why, "it asks for more than 2 GiB of memory");
    else
        snprintf(why, sizeof why, "failed with status %d", WEXITSTATUS(status));
    return effdim_error_set(err, EFFDIM_EFORMAT,
                            "%s: this file crashes or hangs the HDF5 library (%s while a checking "
                            "process read it); it is corrupt or made to attack HDF5 readers",
                            path, why);
}
