/* tools/plot.c: figures drawn by gnuplot (see tools/plot.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"

effdim_status cli_plot_begin(cli_plot *p, const char *png, const char *tag, const char *what,
                             effdim_error *err)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    if (strchr(png, '\'') || strchr(png, '\n'))
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "%s: the path may not contain quotes or newlines", what);
    if (strlen(png) >= sizeof p->png)
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: the path is too long", what);
    const char *base = getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/effdim-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(p->dir)) {
        effdim_status st = effdim_error_set(err, EFFDIM_EIO,
                                            "%s: cannot create a temporary folder for the plot",
                                            p->dir);
        p->dir[0] = '\0';
        return st;
    }
    snprintf(p->png, sizeof p->png, "%s", png);
    snprintf(p->tmp_png, sizeof p->tmp_png, "%s.tmp-%ld", png, (long)getpid());
    return EFFDIM_OK;
}

FILE *cli_plot_open(cli_plot *p, const char *name, char *path, size_t cap, effdim_error *err)
{
    if (p->n_files >= CLI_PLOT_FILES) {
        effdim_error_set(err, EFFDIM_EINVAL, "%s: more than %d plot files", p->what,
                         CLI_PLOT_FILES);
        return NULL;
    }
    char *slot = p->files[p->n_files];
    snprintf(slot, sizeof p->files[0], "%s/%s", p->dir, name);
    FILE *f = fopen(slot, "w");
    if (!f) {
        effdim_error_set(err, EFFDIM_EIO, "%s: cannot write %s", p->what, slot);
        return NULL;
    }
    ++p->n_files;
    if (path) snprintf(path, cap, "%s", slot);
    return f;
}

effdim_status cli_plot_close(cli_plot *p, FILE *f, effdim_error *err)
{
    if (fclose(f) != 0)
        return effdim_error_set(err, EFFDIM_EIO, "%s: cannot write the plot files in %s",
                                p->what, p->dir);
    return EFFDIM_OK;
}

int cli_gnuplot(const char *dir, char *last, size_t cap)
{
    char script[CLI_PLOT_PATH + 16];
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    if (cap) last[0] = '\0';
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) { /* no shell: the script's path is an argument, never parsed */
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]);
        close(fd[1]);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) { /* keep the last non-empty message line */
        line[strcspn(line, "\n")] = '\0';
        const char *t = line + strspn(line, " \t");
        if (t[strspn(t, "^ ")] && cap) snprintf(last, cap, "%s", t);
    }
    if (f) fclose(f);
    else close(fd[0]);
    int status;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

effdim_status cli_plot_run(cli_plot *p, effdim_error *err)
{
    char last[256];
    int code = cli_gnuplot(p->dir, last, sizeof last);
    effdim_status st = EFFDIM_OK;
    if (code != 0) {
        st = effdim_error_set(err, EFFDIM_EIO, "%s: gnuplot failed (exit %d)%s%s%s", p->what, code,
                              last[0] ? ": " : "", last,
                              code == 127 ? " (is gnuplot installed? Debian: gnuplot-nox)" : "");
        remove(p->tmp_png);
    } else if (rename(p->tmp_png, p->png) != 0) {
        st = effdim_error_set(err, EFFDIM_EIO, "%s: cannot rename %s into place", p->what,
                              p->tmp_png);
        remove(p->tmp_png);
    }
    return st;
}

void cli_plot_end(cli_plot *p)
{
    for (size_t i = 0; i < p->n_files; ++i) remove(p->files[i]);
    p->n_files = 0;
    if (p->dir[0]) rmdir(p->dir);
    p->dir[0] = '\0';
}
