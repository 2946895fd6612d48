/* tools/effdim.c: the `effdim` command, one dispatcher over small subcommands.
 *
 *   effdim <command> [options]      each command has --help
 *
 * Exit status: 0 success, 1 failure at run time (one line on stderr naming
 * the file, the field and what was expected), 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "effdim/comm.h"
#include "effdim/status.h"

typedef struct command {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} command;

static const command commands[] = {
    /* the command table: one line per subcommand (tools/cmd_<name>.c) */
    {"train", cmd_train, "train an MLP (SGD/Adam/AMSGrad/AdamW/IVON) into a checkpoint"},
    {"inspect", cmd_inspect, "summarise an effdim file (checkpoint, spectrum, ...)"},
    {"spectrum", cmd_spectrum, "top eigenvalues, N_eff (Ritz and SLQ) and trace of a checkpoint's Hessian or GGN"},
    {"plot", cmd_plot, "the figure of a spectrum file: eigenvalues, density, N_eff(z) with error bars"},
    {"diag", cmd_diag, "diagonal curvature estimates (ggn, ef, adam, hutchinson, hessian, ...)"},
    {"compare", cmd_compare, "diagonal curvature estimates against the spectrum, with plots"},
    {"posterior", cmd_posterior, "a Gaussian posterior over the weights (BADAM, GGN/EF Laplace, low rank)"},
    {"predict", cmd_predict, "predictive distribution of a posterior: accuracy/RMSE, NLL, ECE, Brier"},
    {"prune", cmd_prune, "test accuracy after pruning by magnitude or posterior SNR, with a plot"},
    {"surface", cmd_surface, "the loss on random planes inside Hessian eigenspaces, with heat maps"},
    {"perturb", cmd_perturb, "training predictions changed by steps inside Hessian eigenspaces"},
    {"svd-var", cmd_svd_variances, "sparse variational dropout: learned sigma^2 against 1/(N ggn), with a plot"},
    {"sweep", cmd_sweep, "a grid of widths x depths x seeds: train, test, N_eff per row (shards, merge, plot)"},
    {"demo", cmd_demo, "the main job on two spirals (default); reproductions (amsgrad, blr)"},
    {"bench", cmd_bench, "benchmarks against this machine's dgemm rate and PyTorch (grad, train, spectrum, diag)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "effdim %s: curvature of neural-network losses\n\n"
               "usage: effdim <command> [options]   (effdim <command> --help for each)\n\n"
               "commands:\n",
            effdim_version());
    for (const command *c = commands; c->name; ++c) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\nfiles are HDF5 (docs/file-formats.md); data specs are in docs/data.md\n");
}

/* The commands that run data-parallel under mpirun or srun (docs/scaling.md). */
static int runs_distributed(const char *name)
{
    return !strcmp(name, "spectrum") || !strcmp(name, "diag") || !strcmp(name, "train");
}

/* A command, on this process or as one rank of an MPI job: MPI starts only under a
 * launcher (effdim_comm_world), so a plain run is the one-process command exactly.
 * Ranks other than 0 print nothing (their stdout and stderr go to /dev/null):
 * errors are agreed over the ranks, so rank 0 prints the one message and every
 * rank exits with the same status. */
static int run_command(const command *c, int argc, char **argv)
{
    effdim_comm *comm = NULL;
    effdim_error err;
    effdim_error_clear(&err);
    if (effdim_comm_world(&argc, &argv, &comm, &err)) {
        fprintf(stderr, "effdim %s: %s\n", c->name, err.msg);
        return CLI_EXIT_FAIL;
    }
    int rc;
    if (effdim_comm_size(comm) > 1 && !runs_distributed(c->name)) {
        if (effdim_comm_rank(comm) == 0)
            fprintf(stderr, "effdim %s: runs on one process (%d ranks started): under mpirun or "
                            "srun only spectrum, diag and train run data-parallel\n",
                    c->name, effdim_comm_size(comm));
        rc = CLI_EXIT_USAGE;
    } else {
        if (effdim_comm_rank(comm) != 0) {
            if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
                return CLI_EXIT_FAIL;
        }
        cli_set_comm(comm);
        rc = c->fn(argc - 1, argv + 1);
        cli_set_comm(NULL);
    }
    effdim_comm_free(comm);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("effdim %s\n", effdim_version());
        return CLI_EXIT_OK;
    }
    for (const command *c = commands; c->name; ++c)
        if (!strcmp(argv[1], c->name)) return run_command(c, argc, argv);
    fprintf(stderr, "effdim: unknown command '%s' (effdim --help lists the commands)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
