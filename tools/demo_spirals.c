/* tools/demo_spirals.c: `effdim demo spirals`, the main job on built-in data.
 *
 * The two-spirals experiment of Maddox, Benton and Wilson (2020, Section 5),
 * end to end through the same subcommands a user runs:
 *   1. effdim train     a tanh MLP on 1000 two-spirals points, full-batch Adam;
 *   2. effdim spectrum  the top and bottom Hessian eigenvalues by Lanczos with
 *                       exact Hessian-vector products, N_eff(z) from the Ritz
 *                       values and over the whole spectrum (SLQ), beside the
 *                       exact whole spectrum (--dense: P = 1218, 1218 products).
 * Files land in --out (default ./effdim-demo): model.h5 and spectrum.h5.
 * It calls cmd_train and cmd_spectrum in-process with built argument lists,
 * so it exercises exactly the code paths of the documented commands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "demo.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: effdim demo spirals [--out DIR] [--epochs N] [--seed S]\n\n"
               "Train a 2-32-32-2 tanh MLP on two spirals (Maddox et al. 2020, Section 5),\n"
               "then compute its Hessian spectrum and effective dimensionality.\n\n"
               "  --out DIR     folder for model.h5 and spectrum.h5 (default effdim-demo)\n"
               "  --epochs N    full-batch Adam steps (default 3000)\n"
               "  --seed S      initialisation and data seed (default 1)\n"
               "  -h, --help    this help\n");
}

/* run a subcommand with a NULL-terminated argument list */
static int run(cli_command_fn fn, char **args)
{
    int argc = 0;
    while (args[argc]) ++argc;
    optind = 0; /* getopt_long: reinitialise for the next parser */
    fputs("\n$ effdim", stdout);
    for (int i = 0; i < argc; ++i) printf(" %s", args[i]);
    fputc('\n', stdout);
    fflush(stdout);
    return fn(argc, args);
}

int demo_spirals(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"epochs", required_argument, NULL, 'e'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = "effdim-demo";
    const char *epochs = "3000", *seed = "1";
    size_t tmp;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'e':
            if (cli_parse_size("demo spirals", "--epochs", optarg, &tmp)) return CLI_EXIT_USAGE;
            epochs = optarg;
            break;
        case 's':
            if (cli_parse_size("demo spirals", "--seed", optarg, &tmp)) return CLI_EXIT_USAGE;
            seed = optarg;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_errorf("demo spirals", CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        return cli_errorf("demo spirals", CLI_EXIT_FAIL, "%s: cannot create the folder: %s", out, strerror(errno));

    char model[4096], spectrum[4096], data[256];
    snprintf(model, sizeof model, "%s/model.h5", out);
    snprintf(spectrum, sizeof spectrum, "%s/spectrum.h5", out);
    snprintf(data, sizeof data, "spirals:n=1000,seed=%s", seed);

    printf("effdim demo: two spirals (Maddox, Benton and Wilson 2020, Section 5)\n");
    char *train[] = {"train", "--data", data, "--arch", "2,32,32,2", "--act", "tanh",
                     "--opt", "adam", "--lr", "0.01", "--batch", "full", "--epochs", (char *)epochs,
                     "--seed", (char *)seed, "-o", model, NULL};
    int rc = run(cmd_train, train);
    if (rc) return rc;
    char *spec[] = {"spectrum", model, "-k", "20", "--which", "both", "--hvp", "exact",
                    "--z", "0.001,0.01,0.1,1", "--dense", "--seed", (char *)seed,
                    /* every probe: the model is small and the point is SLQ's accuracy
                       against the dense spectrum, not its default cost */
                    "--slq-budget", "none", "-o", spectrum, NULL};
    rc = run(cmd_spectrum, spec);
    if (rc) return rc;
    printf("\nfiles: %s (checkpoint), %s (spectrum); `effdim inspect FILE` summarises either\n", model,
           spectrum);
    return CLI_EXIT_OK;
}
