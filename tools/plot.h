/* tools/plot.h: figures drawn by gnuplot (Debian's gnuplot-nox), shared by
 * the commands that write a PNG.
 *
 * A figure is a temporary folder holding its data files and plot.gp; gnuplot
 * writes "<png>.tmp-<pid>", which is renamed over the PNG only when gnuplot
 * succeeds, so a failed plot never leaves a half-written file. On failure
 * the error names the option, the exit status and gnuplot's last message.
 * cli_plot_end removes the folder and everything cli_plot_open made in it.
 */
#ifndef EFFDIM_TOOLS_PLOT_H
#define EFFDIM_TOOLS_PLOT_H

#include <stdio.h>

#include "effdim/status.h"

#define CLI_PLOT_PATH 4096
#define CLI_PLOT_FILES 16

typedef struct cli_plot {
    const char *what;                      /* "--plot x.png": the prefix of messages */
    char dir[CLI_PLOT_PATH];               /* the temporary folder */
    char png[CLI_PLOT_PATH];               /* the final PNG */
    char tmp_png[CLI_PLOT_PATH + 32];      /* gnuplot's output before the rename */
    char files[CLI_PLOT_FILES][CLI_PLOT_PATH + 64]; /* made in dir, removed by cli_plot_end */
    size_t n_files;
} cli_plot;

/* A folder under $TMPDIR (or /tmp) named effdim-<tag>-XXXXXX for the PNG at
 * png; refuses paths with quotes or newlines (they go into the script). */
effdim_status cli_plot_begin(cli_plot *p, const char *png, const char *tag, const char *what,
                             effdim_error *err);
/* Open dir/name for writing; *path (cap bytes) receives its path for the
 * script. NULL (and err set) when it cannot be created. */
FILE *cli_plot_open(cli_plot *p, const char *name, char *path, size_t cap, effdim_error *err);
/* Close a file from cli_plot_open, reporting a failed write. */
effdim_status cli_plot_close(cli_plot *p, FILE *f, effdim_error *err);
/* Run gnuplot on DIR/plot.gp by fork/exec, without a shell; last (cap bytes)
 * receives gnuplot's last non-empty message line. The exit status (127: no
 * gnuplot), or -1 when it could not be run. */
int cli_gnuplot(const char *dir, char *last, size_t cap);
/* Run gnuplot on dir/plot.gp (made with cli_plot_open, writing to
 * p->tmp_png) and rename the PNG into place. */
effdim_status cli_plot_run(cli_plot *p, effdim_error *err);
/* Remove the files and the folder. */
void cli_plot_end(cli_plot *p);

#endif
