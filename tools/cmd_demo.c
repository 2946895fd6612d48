/* tools/cmd_demo.c: `effdim demo <name> [options]`, small self-contained
 * reproductions of published findings. One table of {name, function, summary};
 * each demo lives in tools/demo_<name>.c and has its own --help. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "demo.h"

typedef struct demo_entry {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} demo_entry;

static const demo_entry demos[] = {
    {"spirals", demo_spirals, "the main job: train on two spirals, Hessian spectrum and N_eff (default)"},
    {"amsgrad", demo_amsgrad, "Reddi et al. 2018: Adam converges to the worst point, AMSGrad to the best"},
    {"blr", demo_blr, "Maddox et al. 2020, Section 4: N_eff of the BLR posterior as points are added"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: effdim demo <name> [options]   (effdim demo <name> --help for each)\n\n"
               "demos:\n");
    for (const demo_entry *d = demos; d->name; ++d) fprintf(f, "  %-10s %s\n", d->name, d->summary);
}

int cmd_demo(int argc, char **argv)
{
    if (argc < 2) { /* `effdim demo` alone runs the main job */
        char *args[] = {"spirals", NULL};
        return demo_spirals(1, args);
    }
    if (argv[1][0] == '-' && strcmp(argv[1], "--help") && strcmp(argv[1], "-h")) {
        argv[0] = "spirals"; /* `effdim demo --out DIR`: the main job's options */
        return demo_spirals(argc, argv);
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (const demo_entry *d = demos; d->name; ++d)
        if (!strcmp(argv[1], d->name)) return d->fn(argc - 1, argv + 1);
    return cli_errorf("demo", CLI_EXIT_USAGE, "unknown demo '%s' (effdim demo --help lists them)", argv[1]);
}
