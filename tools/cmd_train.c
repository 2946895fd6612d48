/* tools/cmd_train.c: `effdim train`, minibatch training of an MLP into a checkpoint.
 *
 *   effdim train --data SPEC [--test SPEC] --arch 784,300,100,10 --act relu
 *                --opt adam --lr 1e-3 --batch 128 --epochs 20 --seed 1 -o model.h5
 *
 * Parse the options, build the network (or load --init), call the library's
 * training job (effdim_train_run, effdim/train.h: the epoch permutations, the
 * minibatch steps, the per-epoch evaluation), print, save.
 *
 * Decisions:
 * - --arch lists every width, input and output included; the first must
 *   equal the data's feature count and the last the number of classes
 *   (cross_entropy) or target columns (mse). A mismatch is an error naming
 *   the spec and both sizes. The activation applies to hidden layers; the
 *   last layer is the identity.
 * - --init CKPT continues a run: the network, parameters, optimiser kind,
 *   hyperparameters, state vectors, step count and schedule come from the
 *   file; the epoch counter continues, and the per-epoch shuffles are those
 *   the uninterrupted run would have drawn (seed, batch size and data specs
 *   default to the file's), so 2 + 2 epochs equal 4 bitwise. Explicit --lr/--wd/--momentum/
 *   --beta1/--beta2/--eps override the file's hyperparameters.
 * - Determinism: the same arguments and thread count give bitwise the same
 *   parameters and optimiser state (the only randomness is seeded; the BLAS
 *   partitions work by the thread count).
 * - --svd KL makes the layers (all, --svd-layers, or the widths marked 'v'
 *   in --arch: 784,300v,100v,10v, KL sparsevd unless --svd says) variational
 *   (effdim/mlp_svd.h) on a fresh network only; the checkpoint then fixes
 *   them, and --init continues them with the recorded --svd-anneal and
 *   --svd-train-clip unless given again.
 * - SIGINT/SIGTERM stop the job after the current step; the checkpoint is
 *   saved with what is done (its /training epochs and epoch_rows say how
 *   far it got), and --init on it continues bitwise.
 * Exit status: 0 trained and saved, 1 runtime failure (data, files,
 * divergence), 2 bad usage, 3 interrupted (saved). Nothing is written under
 * -o unless training finished, was interrupted or a --save-every checkpoint
 * was due; every save is atomic.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "effdim/blas.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "effdim/train.h"

#define CMD "train"

typedef struct train_opts {
    const char *data, *test, *out, *init, *schedule;
    size_t arch[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t n_arch;
    const char *act, *loss, *reduction, *opt, *init_scheme;
    double lr, wd, momentum, dampening, beta1, beta2, eps;
    int has_lr, has_wd, has_momentum, has_dampening, has_beta1, has_beta2, has_eps;
    int nesterov;
    double ess, hess_init, clip_radius;       /* IVON */
    int has_ess, has_hess_init, has_clip_radius, no_debias, no_rescale_lr;
    size_t mc_samples;
    int has_mc_samples;
    const char *hess_approx;
    size_t warmup;
    int has_warmup;
    size_t batch; /* 0 = full batch */
    int has_batch;
    size_t epochs, save_every;
    uint64_t seed;
    int has_seed;
    int threads;
    int json;
    const char *svd, *svd_anneal;  /* sparse variational dropout */
    size_t svd_layers[EFFDIM_MLP_MAX_LAYERS];
    size_t n_svd_layers;
    size_t arch_svd[EFFDIM_MLP_MAX_LAYERS]; /* layers marked 'v' in --arch */
    size_t n_arch_svd;
    int svd_train_clip;
    char command[2048]; /* the command line, for provenance */
} train_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim train --data SPEC --arch A,B,...,K -o OUT.h5 [options]\n\n"
            "Train an MLP with minibatch SGD/Adam/AMSGrad/AdamW (PyTorch's update rules) or\n"
            "IVON (variational online Newton) and save a checkpoint (docs/file-formats.md).\n\n"
            "data and network\n"
            "  --data SPEC          training data (docs/data.md), e.g. spirals:n=2000\n"
            "  --test SPEC          evaluated after every epoch\n"
            "  --arch A,B,...,K     every width: input (= data features), hidden..., output\n"
            "                       (= classes for cross_entropy, 1 for bce, target columns\n"
            "                       for mse); a 'v' after a width makes the layer producing it\n"
            "                       variational (784,300v,100v,10v: --svd sparsevd on all)\n"
            "  --act NAME           hidden activation: relu (default), tanh, sigmoid, softplus,\n"
            "                       gelu, elu, identity; the output layer is always identity\n"
            "  --loss NAME          cross_entropy (default for labels), bce (labels 0/1, one\n"
            "                       output) or mse (default for real targets)\n"
            "  --reduction R        mean (default) or sum over each minibatch\n"
            "  --init-scheme S      torch (default: nn.Linear's init) or glorot\n"
            "  --init CKPT          continue from a checkpoint: network, parameters,\n"
            "                       optimiser state and step, schedule, epoch count\n"
            "sparse variational dropout (docs/reproductions.md, docs/file-formats.md)\n"
            "  --svd KL             variational layers (mean and log sigma^2 per weight, local\n"
            "                       reparameterisation) with the KL term sparsevd (Molchanov et\n"
            "                       al.'s approximation) or ard (exact, optimal Gaussian prior);\n"
            "                       the objective is N * mean NLL + beta * sum KL; evaluation\n"
            "                       and every later command use the mean weights with\n"
            "                       log alpha >= 3 dropped\n"
            "  --svd-layers LIST    which layers are variational (0-based, e.g. 0,1,2;\n"
            "                       default all; or mark them with 'v' in --arch)\n"
            "  --svd-anneal SPEC    KL weight beta at the 0-based epoch e: rw_linear[:START,LEN]\n"
            "                       (clamp((e - START)/LEN, 0, 1); default rw_linear:5,15, 1\n"
            "                       from e = 20), linear[:STEP] (min(1, STEP e); default\n"
            "                       STEP 0.02) or constant[:BETA]\n"
            "  --svd-train-clip     drop log alpha >= 3 from the mean path in training too\n");
    fprintf(f,
            "optimiser\n"
            "  --opt NAME           sgd, adam (default), amsgrad, adamw, ivon\n"
            "  --lr X               learning rate (default: PyTorch's, 1e-3 for Adam, 0.01 SGD;\n"
            "                       required for ivon, where it is rescaled by hess_init + wd)\n"
            "  --wd X               weight decay (L2 for sgd/adam, decoupled for adamw, the\n"
            "                       prior precision per datum delta for ivon, default 1e-4)\n"
            "  --momentum X, --dampening X, --nesterov       SGD\n"
            "  --beta1 X, --beta2 X, --eps X                 Adam family (and ivon's betas:\n"
            "                       0.9 and 0.99999)\n"
            "  --ess N              ivon: effective sample size (required; normally the\n"
            "                       training-set size)\n"
            "  --hess-init H        ivon: initial Hessian estimate (default 1)\n"
            "  --mc-samples S       ivon: weight samples per step (default 1)\n"
            "  --hess-approx A      ivon: price (default, reparameterisation) or gradsq\n"
            "  --clip-radius R      ivon: element-wise clip of the step (default none)\n"
            "  --no-debias, --no-rescale-lr                  ivon: turn those off\n"
            "  --schedule SPEC      const (default), step:every=K[,gamma=G],\n"
            "                       cosine:steps=T[,min=LR], sqrt (lr/sqrt(t)); per step\n"
            "  --warmup W           linear warm-up over the first W steps\n"
            "loop\n"
            "  --batch N|full       minibatch size (default 128); full = the whole data set\n"
            "  --epochs N           epochs to run (default 20; with --init: more epochs)\n"
            "  --seed S             initialisation and shuffling seed (default 1)\n"
            "  --threads T          OpenBLAS threads (default 2)\n"
            "  --save-every K       also save the checkpoint every K epochs\n"
            "  -o, --output FILE    the checkpoint to write (atomically)\n"
            "  --json               print a JSON summary on stdout at the end\n"
            "  -h, --help           this help\n\n"
            "The same arguments and thread count give bitwise the same checkpoint. Ctrl-C\n"
            "(SIGINT) or SIGTERM stops after the current step and saves what is done (exit\n"
            "status 3); --init on that file continues exactly where it stopped.\n");
}

/* ======================================================================
 * Options
 * ====================================================================== */

enum {
    OPT_DATA = 256, OPT_TEST, OPT_ARCH, OPT_ACT, OPT_LOSS, OPT_REDUCTION, OPT_OPT, OPT_LR, OPT_WD,
    OPT_MOMENTUM, OPT_DAMPENING, OPT_NESTEROV, OPT_BETA1, OPT_BETA2, OPT_EPS, OPT_SCHEDULE,
    OPT_WARMUP, OPT_BATCH, OPT_EPOCHS, OPT_SEED, OPT_INIT_SCHEME, OPT_INIT, OPT_SAVE_EVERY,
    OPT_THREADS, OPT_JSON, OPT_ESS, OPT_HESS_INIT, OPT_MC_SAMPLES, OPT_HESS_APPROX,
    OPT_CLIP_RADIUS, OPT_NO_DEBIAS, OPT_NO_RESCALE_LR, OPT_SVD, OPT_SVD_LAYERS, OPT_SVD_ANNEAL,
    OPT_SVD_TRAIN_CLIP
};

static const struct option long_opts[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"test", required_argument, NULL, OPT_TEST},
    {"arch", required_argument, NULL, OPT_ARCH},
    {"act", required_argument, NULL, OPT_ACT},
    {"loss", required_argument, NULL, OPT_LOSS},
    {"reduction", required_argument, NULL, OPT_REDUCTION},
    {"opt", required_argument, NULL, OPT_OPT},
    {"lr", required_argument, NULL, OPT_LR},
    {"wd", required_argument, NULL, OPT_WD},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"dampening", required_argument, NULL, OPT_DAMPENING},
    {"nesterov", no_argument, NULL, OPT_NESTEROV},
    {"beta1", required_argument, NULL, OPT_BETA1},
    {"beta2", required_argument, NULL, OPT_BETA2},
    {"eps", required_argument, NULL, OPT_EPS},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"init-scheme", required_argument, NULL, OPT_INIT_SCHEME},
    {"init", required_argument, NULL, OPT_INIT},
    {"save-every", required_argument, NULL, OPT_SAVE_EVERY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"ess", required_argument, NULL, OPT_ESS},
    {"hess-init", required_argument, NULL, OPT_HESS_INIT},
    {"mc-samples", required_argument, NULL, OPT_MC_SAMPLES},
    {"hess-approx", required_argument, NULL, OPT_HESS_APPROX},
    {"clip-radius", required_argument, NULL, OPT_CLIP_RADIUS},
    {"no-debias", no_argument, NULL, OPT_NO_DEBIAS},
    {"no-rescale-lr", no_argument, NULL, OPT_NO_RESCALE_LR},
    {"svd", required_argument, NULL, OPT_SVD},
    {"svd-layers", required_argument, NULL, OPT_SVD_LAYERS},
    {"svd-anneal", required_argument, NULL, OPT_SVD_ANNEAL},
    {"svd-train-clip", no_argument, NULL, OPT_SVD_TRAIN_CLIP},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A double option: parse into *v and mark it given. */
static int opt_double(const char *name, const char *s, double *v, int *given)
{
    *given = 1;
    return cli_parse_double(CMD, name, s, v);
}

/* --arch A,B,...,K with an optional 'v' after any width but the first: the
 * layer that produces that width is variational (as --svd-layers lists it),
 * e.g. 784,300v,100v,10v for LeNet-300-100 with every layer variational. */
static int parse_arch(train_opts *o, const char *arg)
{
    char buf[1024], widths[1024];
    if (strlen(arg) >= sizeof buf)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--arch: expected a comma-separated list of widths");
    strcpy(buf, arg);
    size_t len = 0, k = 0;
    o->n_arch_svd = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), ++k) {
        size_t n = strlen(tok);
        if (n > 1 && (tok[n - 1] == 'v' || tok[n - 1] == 'V')) {
            if (k == 0)
                return cli_errorf(CMD, CLI_EXIT_USAGE, "--arch: '%s': the input width cannot be "
                                  "variational ('v' marks the layer that produces a width)", tok);
            if (o->n_arch_svd < EFFDIM_MLP_MAX_LAYERS) o->arch_svd[o->n_arch_svd++] = k - 1;
            tok[n - 1] = '\0';
        }
        len += (size_t)snprintf(widths + len, sizeof widths - len, "%s%s", k ? "," : "", tok);
    }
    return cli_parse_size_list(CMD, "--arch", widths, o->arch, EFFDIM_MLP_MAX_LAYERS + 1, &o->n_arch);
}

static int parse_one(void *ctx, int c, const char *arg)
{
    train_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case OPT_DATA: o->data = arg; break;
    case OPT_TEST: o->test = arg; break;
    case OPT_ARCH: rc = parse_arch(o, arg); break;
    case OPT_ACT: o->act = arg; break;
    case OPT_LOSS: o->loss = arg; break;
    case OPT_REDUCTION: o->reduction = arg; break;
    case OPT_OPT: o->opt = arg; break;
    case OPT_LR: rc = opt_double("--lr", arg, &o->lr, &o->has_lr); break;
    case OPT_WD: rc = opt_double("--wd", arg, &o->wd, &o->has_wd); break;
    case OPT_MOMENTUM: rc = opt_double("--momentum", arg, &o->momentum, &o->has_momentum); break;
    case OPT_DAMPENING: rc = opt_double("--dampening", arg, &o->dampening, &o->has_dampening); break;
    case OPT_NESTEROV: o->nesterov = 1; break;
    case OPT_BETA1: rc = opt_double("--beta1", arg, &o->beta1, &o->has_beta1); break;
    case OPT_BETA2: rc = opt_double("--beta2", arg, &o->beta2, &o->has_beta2); break;
    case OPT_EPS: rc = opt_double("--eps", arg, &o->eps, &o->has_eps); break;
    case OPT_SCHEDULE: o->schedule = arg; break;
    case OPT_WARMUP:
        rc = cli_parse_size(CMD, "--warmup", arg, &o->warmup);
        o->has_warmup = 1;
        break;
    case OPT_BATCH:
        o->has_batch = 1;
        if (!strcmp(arg, "full")) {
            o->batch = 0;
        } else {
            rc = cli_parse_size(CMD, "--batch", arg, &o->batch);
            if (!rc && o->batch == 0)
                rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--batch: expected a positive size or 'full'");
        }
        break;
    case OPT_EPOCHS: rc = cli_parse_size(CMD, "--epochs", arg, &o->epochs); break;
    case OPT_SEED:
        rc = cli_parse_u64(CMD, "--seed", arg, &o->seed);
        if (!rc && o->seed > (uint64_t)INT64_MAX)
            rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--seed: at most %lld", (long long)INT64_MAX);
        o->has_seed = 1;
        break;
    case OPT_INIT_SCHEME: o->init_scheme = arg; break;
    case OPT_INIT: o->init = arg; break;
    case OPT_SAVE_EVERY: rc = cli_parse_size(CMD, "--save-every", arg, &o->save_every); break;
    case OPT_THREADS: rc = cli_parse_threads(CMD, arg, &o->threads); break;
    case OPT_JSON: o->json = 1; break;
    case OPT_ESS: rc = opt_double("--ess", arg, &o->ess, &o->has_ess); break;
    case OPT_HESS_INIT: rc = opt_double("--hess-init", arg, &o->hess_init, &o->has_hess_init); break;
    case OPT_CLIP_RADIUS: rc = opt_double("--clip-radius", arg, &o->clip_radius, &o->has_clip_radius); break;
    case OPT_MC_SAMPLES:
        rc = cli_parse_size(CMD, "--mc-samples", arg, &o->mc_samples);
        o->has_mc_samples = 1;
        break;
    case OPT_HESS_APPROX: o->hess_approx = arg; break;
    case OPT_NO_DEBIAS: o->no_debias = 1; break;
    case OPT_NO_RESCALE_LR: o->no_rescale_lr = 1; break;
    case OPT_SVD: o->svd = arg; break;
    case OPT_SVD_LAYERS:
        rc = cli_parse_size_list(CMD, "--svd-layers", arg, o->svd_layers, EFFDIM_MLP_MAX_LAYERS,
                                 &o->n_svd_layers);
        break;
    case OPT_SVD_ANNEAL: o->svd_anneal = arg; break;
    case OPT_SVD_TRAIN_CLIP: o->svd_train_clip = 1; break;
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static void join_command(train_opts *o, int argc, char **argv)
{
    cli_command_line(argc, argv, o->command, sizeof o->command);
}

/* 0 when the options parse and agree; else the exit code (message printed). */
static int parse_args(train_opts *o, int argc, char **argv)
{
    const effdim_train_params def = effdim_train_default_params();
    memset(o, 0, sizeof *o);
    o->batch = def.batch;
    o->epochs = def.epochs;
    o->seed = def.seed;
    o->threads = 2;
    join_command(o, argc, argv);
    int rc = cli_getopt_loop(CMD, argc, argv, ":ho:", long_opts, parse_one, o, usage);
    if (rc) return rc;
    if (optind < argc)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "unexpected argument '%s' (effdim train --help)",
                          argv[optind]);
    if (!o->out) return cli_errorf(CMD, CLI_EXIT_USAGE, "-o OUT.h5 is required");
    if (!o->init && !o->data) return cli_errorf(CMD, CLI_EXIT_USAGE, "--data SPEC is required");
    if (!o->init && !o->n_arch)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--arch is required (e.g. --arch 2,64,64,2)");
    if (o->n_arch == 1)
        return cli_errorf(CMD, CLI_EXIT_USAGE,
                          "--arch: expected at least input and output widths, got one");
    for (size_t i = 0; i < o->n_arch; ++i)
        if (o->arch[i] == 0)
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--arch: width %zu is 0", i);
    return 0;
}

/* ======================================================================
 * Setup: the network, the job's parameters, the data
 * ====================================================================== */

typedef struct run {
    train_opts *o;
    effdim_train_params p;
    effdim_dataset *train, *test;    /* train: this rank's share under mpirun */
    size_t n_train;                  /* the training set's rows (all ranks') */
    effdim_checkpoint *ckpt;         /* the model, theta, state, provenance; saved at the end */
    char *data_spec, *test_spec;     /* copied from --init (saving replaces its strings) */
    cli_progress_sink sink;
    double line_interval, last_line; /* permanent epoch lines: at most one per interval */
    effdim_train_result res;
} run;

/* A fresh network from --arch/--act/--loss/--reduction, checked against the data. */
static int build_network(run *R, effdim_mlp *m)
{
    train_opts *o = R->o;
    effdim_error err;
    effdim_activation hidden = EFFDIM_ACT_RELU, acts[EFFDIM_MLP_MAX_LAYERS];
    effdim_loss loss = R->train->kind == EFFDIM_TARGET_REAL ? EFFDIM_LOSS_MSE : EFFDIM_LOSS_CROSS_ENTROPY;
    effdim_reduction red = EFFDIM_REDUCTION_MEAN;
    if (o->act && effdim_activation_parse(o->act, &hidden, NULL))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--act: unknown activation '%s', expected relu, tanh, "
                          "sigmoid, softplus, gelu or identity", o->act);
    if (o->loss && effdim_loss_parse(o->loss, &loss, NULL))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--loss: unknown loss '%s', expected cross_entropy "
                          "or mse", o->loss);
    if (o->reduction && effdim_reduction_parse(o->reduction, &red, NULL))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--reduction: unknown reduction '%s', expected mean "
                          "or sum", o->reduction);
    size_t L = o->n_arch - 1;
    for (size_t l = 0; l < L; ++l) acts[l] = l + 1 < L ? hidden : EFFDIM_ACT_IDENTITY;
    if (effdim_mlp_init(m, L, o->arch, acts, loss, red, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--arch: %s", err.msg);
    return 0;
}

/* The --arch's input and output widths against a dataset. */
static int check_arch(const effdim_mlp *m, const effdim_dataset *ds, const char *spec,
                      const char *what)
{
    effdim_error err;
    size_t out = m->sizes[m->n_layers];
    if (ds->d != m->sizes[0])
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s %s: %zu input features, but the network's "
                          "input width is %zu (--arch must start with %zu)", what, spec, ds->d,
                          m->sizes[0], ds->d);
    if (ds->kind == EFFDIM_TARGET_LABELS && m->loss == EFFDIM_LOSS_CROSS_ENTROPY && ds->k > out)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s %s: %zu classes, but the network has %zu "
                          "outputs (--arch must end with %zu)", what, spec, ds->k, out, ds->k);
    if (ds->kind == EFFDIM_TARGET_REAL && ds->k != out)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s %s: %zu target columns, but the network has "
                          "%zu outputs (--arch must end with %zu)", what, spec, ds->k, out, ds->k);
    if (effdim_mlp_check_data(m, ds, spec, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s %s", what, err.msg);
    return 0;
}

/* --arch/--act/--loss given with --init must agree with the checkpoint. */
static int check_init_agrees(const train_opts *o, const effdim_mlp *m)
{
    int same = o->n_arch == 0 || o->n_arch == m->n_layers + 1;
    for (size_t i = 0; same && i < o->n_arch; ++i) same = o->arch[i] == m->sizes[i];
    if (!same)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--arch differs from the network in %s; drop "
                          "--arch to continue that network", o->init);
    effdim_loss loss;
    if (o->loss && (effdim_loss_parse(o->loss, &loss, NULL) || loss != m->loss))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--loss %s differs from %s's loss %s", o->loss,
                          o->init, effdim_loss_name(m->loss));
    effdim_activation a;
    if (o->act && m->n_layers > 1 && (effdim_activation_parse(o->act, &a, NULL) || a != m->act[0]))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--act %s differs from %s's hidden activation %s",
                          o->act, o->init, effdim_activation_name(m->act[0]));
    return 0;
}

/* Hyperparameters given on the command line over p. */
static int override_params(const train_opts *o, effdim_optim_params *p)
{
    effdim_error err;
    if (o->has_ess) p->ess = o->ess;
    if (o->has_hess_init) p->hess_init = o->hess_init;
    if (o->has_mc_samples) p->mc_samples = o->mc_samples;
    if (o->has_clip_radius) p->clip_radius = o->clip_radius;
    if (o->no_debias) p->debias = 0;
    if (o->no_rescale_lr) p->rescale_lr = 0;
    if (o->hess_approx && effdim_ivon_hess_parse(o->hess_approx, &p->hess_approx, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--hess-approx: %s", err.msg);
    if (o->has_lr) p->lr = o->lr;
    if (o->has_wd) p->weight_decay = o->wd;
    if (o->has_momentum) p->momentum = o->momentum;
    if (o->has_dampening) p->dampening = o->dampening;
    if (o->nesterov) p->nesterov = 1;
    if (o->has_beta1) p->beta1 = o->beta1;
    if (o->has_beta2) p->beta2 = o->beta2;
    if (o->has_eps) p->eps = o->eps;
    return 0;
}

/* --schedule and --warmup into p->schedule. */
static int build_schedule(const train_opts *o, effdim_train_params *p)
{
    effdim_error err;
    char spec[512];
    snprintf(spec, sizeof spec, "%s", o->schedule ? o->schedule : "const");
    if (o->has_warmup && o->warmup > 0) {
        size_t len = strlen(spec);
        snprintf(spec + len, sizeof spec - len, "%swarmup=%zu", strchr(spec, ':') ? "," : ":",
                 o->warmup);
    }
    if (effdim_schedule_parse(spec, p->optim.lr, &p->schedule, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--schedule: %s", err.msg);
    return 0;
}

/* The optimiser: fresh from --opt, or the --init checkpoint's (already in
 * R->p) with the command line's overrides. */
static int choose_optimizer(run *R)
{
    train_opts *o = R->o;
    effdim_train_params *p = &R->p;
    effdim_error err;
    effdim_optim_kind kind = EFFDIM_OPTIM_ADAM;
    if (o->opt && effdim_optim_kind_parse(o->opt, &kind, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--opt: %s", err.msg);
    int resumed = R->ckpt->optimizer != NULL;
    if (resumed && o->opt && kind != p->optimizer)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--opt %s differs from the optimizer %s saved in "
                          "%s; drop --opt to continue it", o->opt, R->ckpt->optimizer->name,
                          o->init);
    if (!resumed) {
        p->optimizer = kind;
        p->optim = effdim_optim_default_params(kind);
    }
    int rc = override_params(o, &p->optim);
    if (rc) return rc;
    if (p->optimizer == EFFDIM_OPTIM_IVON && (isnan(p->optim.lr) || isnan(p->optim.ess)))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--opt ivon needs --lr X (of the order of an SGD "
                          "rate, e.g. 0.1) and --ess N (normally the training-set size, here "
                          "%zu)", R->n_train);
    effdim_optim *check = NULL; /* the hyperparameters' range checks, as a usage error */
    if (effdim_optim_alloc(p->optimizer, &p->optim, 1, &check, &err))
        return err.code == EFFDIM_ENOMEM ? cli_fail(CMD, &err)
                                         : cli_errorf(CMD, CLI_EXIT_USAGE, "%s", err.msg);
    effdim_optim_free(check);
    if (!resumed || o->schedule || o->has_warmup || o->has_lr) return build_schedule(o, p);
    return 0;
}

/* --svd/--svd-layers on a fresh network; --svd-anneal/--svd-train-clip
 * over the checkpoint's recorded ones. */
static int setup_svd(run *R, int fresh)
{
    train_opts *o = R->o;
    effdim_checkpoint *c = R->ckpt;
    effdim_error err;
    if (o->svd_anneal && effdim_svd_anneal_parse(o->svd_anneal, &R->p.svd_anneal, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--svd-anneal: %s", err.msg);
    if (o->svd_train_clip) R->p.svd_train_clip = 1;
    if (o->n_arch_svd && o->n_svd_layers)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--svd-layers and the 'v' widths of --arch both "
                          "choose the variational layers; use one of them");
    const char *kl = o->svd ? o->svd : o->n_arch_svd ? "sparsevd" : NULL;
    const size_t *layers = o->n_arch_svd ? o->arch_svd : o->svd_layers;
    const size_t n_layers = o->n_arch_svd ? o->n_arch_svd : o->n_svd_layers;
    if (!kl && (o->n_svd_layers || ((o->svd_anneal || o->svd_train_clip) && !c->svd)))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--svd-layers, --svd-anneal and --svd-train-clip "
                          "need variational layers (--svd sparsevd|ard)");
    if (!kl) return 0;
    if (!fresh)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--svd: %s already fixes the network; drop --svd "
                          "to continue it", o->init);
    effdim_svd s = effdim_svd_default(&c->mlp);
    if (effdim_svd_kl_parse(kl, &s.kl, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--svd: %s", err.msg);
    if (!n_layers && effdim_svd_set_all(&s, &c->mlp, &err)) return cli_fail(CMD, &err);
    for (size_t i = 0; i < n_layers; ++i)
        if (effdim_svd_set_layer(&s, &c->mlp, layers[i], 1, &err))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "%s: %s",
                              o->n_arch_svd ? "--arch" : "--svd-layers", err.msg);
    if (R->p.optimizer == EFFDIM_OPTIM_IVON)
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--svd: IVON does not train variational layers; "
                          "use --opt adam (the original's) or sgd");
    if (effdim_checkpoint_set_svd(c, &s, NULL, &err)) return cli_fail(CMD, &err);
    return 0;
}

static int load_data(run *R)
{
    effdim_error err;
    train_opts *o = R->o;
    /* under mpirun: only this rank's share of the training rows (the test set whole) */
    effdim_status st = effdim_dataset_from_spec_share(o->data, effdim_comm_size(cli_comm()),
                                                      effdim_comm_rank(cli_comm()), &R->train,
                                                      &R->n_train, &err);
    if (!st && o->test) st = effdim_dataset_from_spec(o->test, &R->test, &err);
    if (effdim_comm_agree(cli_comm(), st, &err)) return cli_fail(CMD, &err); /* any rank's */
    if (R->test && (R->test->d != R->train->d || R->test->kind != R->train->kind))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--test %s: %zu features (%s), but --data has %zu "
                          "(%s)", o->test, R->test->d,
                          R->test->kind == EFFDIM_TARGET_LABELS ? "labels" : "real targets",
                          R->train->d,
                          R->train->kind == EFFDIM_TARGET_LABELS ? "labels" : "real targets");
    return 0;
}

/* The --init checkpoint: its network, the job's parameters it records, and
 * the data specs unless given. */
static int load_init(run *R)
{
    train_opts *o = R->o;
    effdim_error err;
    effdim_status st = effdim_checkpoint_load(o->init, &R->ckpt, &err);
    if (effdim_comm_agree(cli_comm(), st, &err)) return cli_fail(CMD, &err); /* any rank's */
    int rc = check_init_agrees(o, &R->ckpt->mlp);
    if (rc) return rc;
    const effdim_checkpoint_training *t = R->ckpt->training;
    if (!o->data && (!t || !t->data_spec))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--data is required: %s records no data spec",
                          o->init);
    /* recorded paths are relative to the checkpoint's folder */
    if (!o->data && cli_spec_of_checkpoint(o->init, t->data_spec, &R->data_spec, &err))
        return cli_fail(CMD, &err);
    if (!o->data) o->data = R->data_spec;
    if (!o->test && t && t->test_spec &&
        cli_spec_of_checkpoint(o->init, t->test_spec, &R->test_spec, &err))
        return cli_fail(CMD, &err);
    if (!o->test && R->test_spec) o->test = R->test_spec;
    size_t batch = R->p.batch;
    uint64_t seed = R->p.seed;
    if (effdim_train_params_from_checkpoint(R->ckpt, o->init, &R->p, &err))
        return cli_fail(CMD, &err);
    if (o->has_batch) R->p.batch = batch;
    if (o->has_seed) R->p.seed = seed;
    return 0;
}

static int setup(run *R)
{
    train_opts *o = R->o;
    effdim_error err;
    R->p = effdim_train_default_params();
    R->p.batch = o->batch;
    R->p.epochs = o->epochs;
    R->p.seed = o->seed;
    int rc = o->init ? load_init(R) : 0;
    if (!rc) rc = load_data(R);
    if (rc) return rc;
    if (!R->ckpt) {
        effdim_mlp m;
        effdim_init_scheme scheme = EFFDIM_INIT_TORCH;
        if ((rc = build_network(R, &m))) return rc;
        if (o->init_scheme && effdim_init_scheme_parse(o->init_scheme, &scheme, NULL))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--init-scheme: unknown scheme '%s', expected "
                              "torch or glorot", o->init_scheme);
        if (effdim_checkpoint_alloc(&m, NULL, &R->ckpt, &err) ||
            effdim_mlp_init_params(&m, R->ckpt->theta, scheme, R->p.seed, &err))
            return cli_fail(CMD, &err);
    }
    const effdim_mlp *m = &R->ckpt->mlp;
    rc = check_arch(m, R->train, o->data, "--data");
    if (!rc && R->test) rc = check_arch(m, R->test, o->test, "--test");
    if (!rc) rc = choose_optimizer(R);
    if (!rc) rc = setup_svd(R, !o->init);
    if (rc) return rc;
    char *rec_data = NULL, *rec_test = NULL; /* paths relative to the checkpoint's folder */
    if (cli_spec_for_checkpoint(o->out, o->data, &rec_data, &err) ||
        (o->test && cli_spec_for_checkpoint(o->out, o->test, &rec_test, &err)))
        return cli_fail(CMD, &err);
    effdim_status pst = effdim_checkpoint_set_provenance(R->ckpt, rec_data, rec_test, R->p.seed, &err);
    free(rec_data);
    free(rec_test);
    if (pst ||
        effdim_checkpoint_set_training_string(R->ckpt, "command", o->command, &err) ||
        effdim_checkpoint_set_training_number(R->ckpt, "threads", (double)o->threads, &err))
        return cli_fail(CMD, &err);
    return 0;
}

/* ======================================================================
 * Progress, the summary, the save
 * ====================================================================== */

/* The job's events: a permanent line for the first and the last epoch and at
 * most one per interval in between (1 s on a terminal, 5 s in a log), so
 * thousands of short full-batch epochs do not flood the log (every epoch's
 * metrics are in the checkpoint's /training arrays); the redrawn progress
 * line otherwise. Non-zero after SIGINT/SIGTERM: the job stops. */
static int on_progress(void *ctx, const effdim_progress_event *ev)
{
    run *R = ctx;
    if (strcmp(ev->stage, "epoch") != 0) return cli_progress_cb(&R->sink, ev);
    if (ev->done == 1 || ev->done == ev->total || ev->elapsed - R->last_line >= R->line_interval) {
        cli_progress_sink_done(&R->sink);
        fprintf(stderr, "%s  [%.1f s]\n", ev->detail, ev->elapsed);
        R->last_line = ev->elapsed;
    }
    return cli_interrupted();
}

static double steps_per_second(const effdim_train_result *r)
{
    return r->step_seconds > 0 ? (double)r->steps / r->step_seconds : 0;
}

static void print_summary(const run *R)
{
    const effdim_mlp *m = &R->ckpt->mlp;
    const effdim_train_result *r = &R->res;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "output", R->o->out);
    cJSON_AddStringToObject(o, "data", R->o->data);
    if (R->o->test) cJSON_AddStringToObject(o, "test", R->o->test);
    cJSON *arch = cJSON_AddArrayToObject(o, "layer_sizes");
    for (size_t i = 0; i <= m->n_layers; ++i)
        cJSON_AddItemToArray(arch, cJSON_CreateNumber((double)m->sizes[i]));
    cJSON_AddNumberToObject(o, "n_params", (double)m->n_params);
    cJSON_AddStringToObject(o, "optimizer", effdim_optim_kind_name(R->p.optimizer));
    cJSON_AddNumberToObject(o, "epochs", (double)r->epochs_total);
    cJSON_AddNumberToObject(o, "steps", (double)r->step);
    cJSON_AddNumberToObject(o, "batch", (double)r->batch);
    cJSON_AddNumberToObject(o, "seed", (double)R->p.seed);
    cJSON_AddNumberToObject(o, "threads", R->o->threads);
    if (r->interrupted) cJSON_AddTrueToObject(o, "interrupted");
    const char *names[4] = {"loss", "accuracy", "test_loss", "test_accuracy"};
    const double last[4] = {r->loss, r->accuracy, r->test_loss, r->test_accuracy};
    cJSON *fin = cJSON_AddObjectToObject(o, "final");
    for (int i = 0; i < 4; ++i)
        if (isfinite(last[i])) cJSON_AddNumberToObject(fin, names[i], last[i]);
    if (R->ckpt->svd) cJSON_AddItemToObject(o, "svd", cli_svd_json(R->ckpt));
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "steps_per_second", steps_per_second(r));
    cli_json_print(o);
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *claim_in[] = {o.data, o.test}; /* not --init: `--init X -o X` continues X */
    if (cli_rank0()) rc = cli_claim_output(CMD, o.out, claim_in, 2); /* rank 0 alone writes */
    if ((rc = cli_comm_rc(rc))) return rc;
    run R;
    memset(&R, 0, sizeof R);
    R.o = &o;
    effdim_blas_set_threads(o.threads);
    rc = setup(&R);
    effdim_error err;
    effdim_status st = EFFDIM_OK;
    R.p.comm = cli_comm(); /* R.train is this rank's share (load_data) */
    if (!rc) { /* the job */
        cli_progress_sink_init(&R.sink, CMD);
        snprintf(R.sink.stage, sizeof R.sink.stage, "train");
        R.sink.line.last = R.sink.line.start; /* the first progress line after one interval */
        R.line_interval = R.sink.line.tty ? 1.0 : 5.0;
        R.last_line = -1e300;
        R.p.progress.fn = on_progress;
        R.p.progress.ctx = &R;
        R.p.save_every = o.save_every;
        R.p.save_path = o.out;
        cli_catch_interrupts();
        st = effdim_train_run(&R.p, R.ckpt, R.train, R.test, &R.res, &err);
        cli_progress_sink_done(&R.sink);
        if (st == EFFDIM_EDOM)
            rc = cli_errorf(CMD, CLI_EXIT_FAIL, "%s; %s not written", err.msg, o.out);
        else if (st && st != EFFDIM_EMAXITER)
            rc = cli_fail(CMD, &err);
    }
    if (!rc) {
        effdim_status sv = cli_rank0() ? effdim_checkpoint_save(R.ckpt, o.out, &err) : EFFDIM_OK;
        if (effdim_comm_agree(cli_comm(), sv, &err)) rc = cli_fail(CMD, &err);
    }
    if (!rc && st == EFFDIM_EMAXITER) {
        fprintf(stderr, "effdim %s: %s; saved %s (continue with --init %s)\n", CMD, err.msg, o.out,
                o.out);
        rc = CLI_EXIT_PARTIAL;
    }
    if ((!rc || rc == CLI_EXIT_PARTIAL) && o.json) print_summary(&R);
    effdim_dataset_free(R.train);
    effdim_dataset_free(R.test);
    effdim_checkpoint_free(R.ckpt);
    free(R.data_spec);
    free(R.test_spec);
    return rc;
}
