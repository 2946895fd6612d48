/* lib/output.c: claiming an output before the work, the writer lock, and the
 * temporary files of atomic writes (see effdim/output.h for the contract).
 *
 * The lock is flock(2) on ".NAME.effdim-lock" beside the output. Removing a
 * lock file on release races with a second run that opened it just before:
 * that run would lock an unlinked inode while a third run creates a new file.
 * So after flock succeeds, the holder checks that the path still names the
 * inode it locked, and starts over when it does not (the usual lock-file
 * protocol). flock locks are released by the kernel when the holder dies.
 *
 * Temporary files are "NAME.tmp-PID-XXXXXX" (mkstemp). A file of that shape
 * whose PID is not running (kill(pid, 0) fails with ESRCH) is a leftover of a
 * killed run and is removed; anything else is left alone. PIDs are those of
 * this machine: on a folder shared by several machines a stale file may be
 * kept (never wrongly removed while its writer runs here; a writer on another
 * machine is protected only by the lock, which NFS honours with flock emulation).
 */
#include "effdim/output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define OUT_PATH_MAX 4096

struct effdim_output_lock {
    int fd;
    char lock_path[OUT_PATH_MAX];
};

/* dir and base of path ("x.h5" -> ".", "x.h5"; "a/b/x.h5" -> "a/b", "x.h5") */
static int split_path(const char *path, char *dir, size_t dcap, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return snprintf(dir, dcap, ".") < 0 ? -1 : 0;
    }
    *base = slash + 1;
    size_t len = (size_t)(slash - path);
    if (len == 0) len = 1; /* "/x.h5" -> "/" */
    if (len >= dcap) return -1;
    memcpy(dir, path, len);
    dir[len] = '\0';
    return 0;
}

/* "PID-XXXXXX" after "NAME.tmp-": the PID, or -1 when the name has another shape */
static long tmp_pid(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp-", 5) != 0) return -1;
    const char *p = name + bl + 5;
    char *end;
    errno = 0;
    long pid = strtol(p, &end, 10);
    if (errno || end == p || pid <= 0 || *end != '-' || strlen(end + 1) != 6) return -1;
    return pid;
}

static int pid_is_dead(long pid)
{
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

size_t effdim_output_clean_stale(const char *path)
{
    char dir[OUT_PATH_MAX], full[2 * OUT_PATH_MAX];
    const char *base;
    if (!path || split_path(path, dir, sizeof dir, &base) != 0 || !base[0]) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t removed = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        long pid = tmp_pid(ent->d_name, base);
        if (pid < 0 || !pid_is_dead(pid)) continue;
        snprintf(full, sizeof full, "%s/%s", dir, ent->d_name);
        struct stat sb;
        if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
            unlink(full) == 0)
            ++removed;
    }
    closedir(d);
    return removed;
}

int effdim_output_tmp_create(const char *path, char *tmp, size_t cap, effdim_error *err)
{
    effdim_output_clean_stale(path);
    int len = snprintf(tmp, cap, "%s.tmp-%ld-XXXXXX", path, (long)getpid());
    if (len < 0 || (size_t)len >= cap) {
        tmp[0] = '\0';
        effdim_error_set(err, EFFDIM_EINVAL, "%s: path too long", path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        effdim_error_set(err, EFFDIM_EIO, "%s: cannot create a temporary file beside it: %s", path,
                         strerror(errno));
        tmp[0] = '\0';
        return -1;
    }
    /* mkstemp makes the file 0600; give it the mode a plain create would */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal: the file is still ours */
    }
    return fd;
}

/* ---- the claim --------------------------------------------------------------- */

static effdim_status check_target(const char *path, char *dir, size_t dcap, const char **base,
                                  effdim_error *err)
{
    RETURN_ERROR_IF(!path || !path[0], err, EFFDIM_EINVAL, "output path is empty");
    size_t len = strlen(path);
    RETURN_ERROR_IF(len >= OUT_PATH_MAX - 32, err, EFFDIM_EINVAL, "%s: output path too long", path);
    RETURN_ERROR_IF(path[len - 1] == '/', err, EFFDIM_EINVAL,
                    "%s: is a folder name (ends in '/'), expected a file name for the output", path);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        RETURN_ERROR_IF(S_ISDIR(sb.st_mode), err, EFFDIM_EINVAL,
                        "%s: is a folder, expected a file name for the output", path);
        RETURN_ERROR_IF(!S_ISREG(sb.st_mode), err, EFFDIM_EINVAL,
                        "%s: exists and is not a regular file, expected a file the output may "
                        "replace", path);
    }
    RETURN_ERROR_IF(split_path(path, dir, dcap, base) != 0 || !(*base)[0], err, EFFDIM_EINVAL,
                    "%s: expected a file name for the output", path);
    if (stat(dir, &sb) != 0)
        return effdim_error_set(err, errno == ENOENT ? EFFDIM_ENOTFOUND : EFFDIM_EIO,
                                "%s: folder '%s' %s", path, dir,
                                errno == ENOENT ? "does not exist" : strerror(errno));
    RETURN_ERROR_IF(!S_ISDIR(sb.st_mode), err, EFFDIM_EINVAL, "%s: '%s' is not a folder", path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot write in folder '%s': %s", path, dir,
                                strerror(errno));
    return EFFDIM_OK;
}

static effdim_status check_inputs(const char *path, const char *const *inputs, size_t n,
                                  effdim_error *err)
{
    struct stat out, in;
    if (stat(path, &out) != 0) return EFFDIM_OK; /* a new file cannot be an input */
    for (size_t i = 0; i < n; ++i) {
        if (!inputs || !inputs[i] || stat(inputs[i], &in) != 0) continue;
        RETURN_ERROR_IF(in.st_dev == out.st_dev && in.st_ino == out.st_ino, err, EFFDIM_EINVAL,
                        "%s: is the same file as the input '%s'; writing it would replace the "
                        "input: choose another output path", path, inputs[i]);
    }
    return EFFDIM_OK;
}

/* The PID written in a lock file, or 0. */
static long holder_pid(int fd)
{
    char buf[32] = "";
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    if (got <= 0) return 0;
    buf[got] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

static effdim_status take_lock(const char *path, effdim_output_lock *lk, effdim_error *err)
{
    for (int attempt = 0; attempt < 16; ++attempt) {
        int fd = open(lk->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0)
            return effdim_error_set(err, EFFDIM_EIO, "%s: cannot create the lock file '%s': %s",
                                    path, lk->lock_path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            long pid = holder_pid(fd);
            close(fd);
            if (e == EWOULDBLOCK) {
                if (pid)
                    return effdim_error_set(err, EFFDIM_EIO,
                                            "%s: another effdim run (PID %ld) is writing this file; "
                                            "wait for it to finish or choose another output",
                                            path, pid);
                return effdim_error_set(err, EFFDIM_EIO,
                                        "%s: another effdim run is writing this file (lock '%s'); "
                                        "wait for it to finish or choose another output",
                                        path, lk->lock_path);
            }
            return effdim_error_set(err, EFFDIM_EIO, "%s: cannot lock '%s': %s", path,
                                    lk->lock_path, strerror(e));
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lk->lock_path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            char pid[32];
            int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
                /* the lock holds without the PID; a second run then names the lock file */
            }
            lk->fd = fd;
            return EFFDIM_OK;
        }
        close(fd); /* the previous holder removed the file meanwhile: start over */
    }
    return effdim_error_set(err, EFFDIM_EIO, "%s: cannot take the lock '%s' (it keeps changing)",
                            path, lk->lock_path);
}

effdim_status effdim_output_claim(const char *path, const char *const *inputs, size_t n_inputs,
                                  effdim_output_lock **lock, effdim_error *err)
{
    char dir[OUT_PATH_MAX];
    const char *base = NULL;
    RETURN_ERROR_IF(!lock, err, EFFDIM_EINVAL, "effdim_output_claim: lock is NULL");
    *lock = NULL;
    effdim_status st = check_target(path, dir, sizeof dir, &base, err);
    if (!st) st = check_inputs(path, inputs, n_inputs, err);
    if (st) return st;
    effdim_output_lock *lk = effdim_calloc(1, sizeof *lk, "output lock", err);
    if (!lk) return EFFDIM_ENOMEM;
    lk->fd = -1;
    int len = snprintf(lk->lock_path, sizeof lk->lock_path, "%s/.%s.effdim-lock", dir, base);
    if (len < 0 || (size_t)len >= sizeof lk->lock_path) {
        free(lk);
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: output path too long", path);
    }
    st = take_lock(path, lk, err);
    if (st) {
        free(lk);
        return st;
    }
    effdim_output_clean_stale(path);
    *lock = lk;
    return EFFDIM_OK;
}

void effdim_output_release(effdim_output_lock *lock)
{
    if (!lock) return;
    if (lock->fd >= 0) {
        unlink(lock->lock_path); /* while still holding the lock: see the top of the file */
        close(lock->fd);
    }
    free(lock);
}
