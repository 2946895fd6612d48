/* tools/cmd_bench.c: `effdim bench <what> [options]`, a dispatcher over benchmarks.
 *
 * Each benchmark lives in tools/bench_<what>.c and reports its rate as a
 * ratio to figures measured in the same run (this machine's own dgemm rate,
 * reference tools), never as a lone absolute time. To add one: write
 * bench_<what>.c, declare it in bench_common.h, add one line to the table.
 */
#include <stdio.h>
#include <string.h>

#include "bench_common.h"
#include "cli.h"

typedef struct bench_entry {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} bench_entry;

static const bench_entry benches[] = {
    {"grad", bench_grad, "full-batch gradient of 784-300-100-10 on Fashion-MNIST vs dgemm"},
    {"diag", bench_diag, "GGN / empirical Fisher / Hessian diagonals of 784-300-100-10 in gradients"},
    {"train", bench_train, "training steps/s of 784-300-100-10 (Adam, batch 128) vs PyTorch"},
    {"spectrum", bench_spectrum, "top-20 Hessian eigenvalues of 784-300-100-10: FD/exact HVPs, Lanczos vs PyTorch+eigsh"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: effdim bench <what> [options]   (effdim bench <what> --help for each)\n\n"
               "Benchmarks report GFLOP/s and their ratio to this machine's dgemm rate,\n"
               "measured in the same run with the same thread count.\n\nbenchmarks:\n");
    for (const bench_entry *b = benches; b->name; ++b) fprintf(f, "  %-10s %s\n", b->name, b->summary);
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (const bench_entry *b = benches; b->name; ++b)
        if (!strcmp(argv[1], b->name)) return b->fn(argc - 1, argv + 1);
    return cli_errorf("bench", CLI_EXIT_USAGE,
                      "unknown benchmark '%s' (effdim bench --help lists them)", argv[1]);
}
