/* tools/cmd_train.c: `effdim train`, minibatch training of an MLP into a checkpoint.
 *
 *   effdim train --data SPEC [--test SPEC] --arch 784,300,100,10 --act relu
 *                --opt adam --lr 1e-3 --batch 128 --epochs 20 --seed 1 -o model.h5
 *
 * Algorithm (PyTorch's usual loop, DataLoader(shuffle=True, drop_last=False)):
 * for each epoch e, a permutation of the n training rows drawn from a GSL
 * mt19937 seeded with a hash of (seed, e); consecutive slices of `batch`
 * rows (the last one may be shorter) are minibatches; for each, the loss
 * (the model's reduction over the batch: mean by default) and its gradient
 * (effdim_mlp_loss_grad), then one optimiser step (effdim_optim_step) with
 * the scheduled learning rate for that step. At the end of each epoch the
 * model is evaluated on the whole training set and on --test, and these
 * numbers are recorded in the checkpoint's /training metrics.
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
 * Exit status: 0 trained and saved, 1 runtime failure (data, files,
 * divergence), 2 bad usage. Nothing is written under -o unless training
 * finished or a --save-every checkpoint was due; every save is atomic.
 */
#include <errno.h>
#include <getopt.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "effdim/optim.h"
#include "internal.h"

#define CMD "train"

typedef struct train_opts {
    const char *data, *test, *out, *init, *schedule;
    size_t arch[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t n_arch;
    const char *act, *loss, *reduction, *opt, *init_scheme;
    double lr, wd, momentum, dampening, beta1, beta2, eps;
    int has_lr, has_wd, has_momentum, has_dampening, has_beta1, has_beta2, has_eps;
    int nesterov;
    size_t warmup;
    int has_warmup;
    size_t batch; /* 0 = full batch */
    int has_batch;
    size_t epochs, save_every;
    uint64_t seed;
    int has_seed;
    int threads;
    int json;
    char command[2048]; /* the command line, for provenance */
} train_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim train --data SPEC --arch A,B,...,K -o OUT.h5 [options]\n\n"
            "Train an MLP with minibatch SGD/Adam/AMSGrad/AdamW (PyTorch's update rules) and\n"
            "save a checkpoint (docs/file-formats.md).\n\n"
            "data and network\n"
            "  --data SPEC          training data (docs/data.md), e.g. spirals:n=2000\n"
            "  --test SPEC          evaluated after every epoch\n"
            "  --arch A,B,...,K     every width: input (= data features), hidden..., output\n"
            "                       (= classes for cross_entropy, target columns for mse)\n"
            "  --act NAME           hidden activation: relu (default), tanh, sigmoid, softplus,\n"
            "                       gelu, identity; the output layer is always identity\n"
            "  --loss NAME          cross_entropy (default for labels) or mse (default for\n"
            "                       real targets)\n"
            "  --reduction R        mean (default) or sum over each minibatch\n"
            "  --init-scheme S      torch (default: nn.Linear's init) or glorot\n"
            "  --init CKPT          continue from a checkpoint: network, parameters,\n"
            "                       optimiser state and step, schedule, epoch count\n"
            "optimiser\n"
            "  --opt NAME           sgd, adam (default), amsgrad, adamw\n"
            "  --lr X               learning rate (default: PyTorch's, 1e-3 for Adam, 0.01 SGD)\n"
            "  --wd X               weight decay (L2 for sgd/adam, decoupled for adamw)\n"
            "  --momentum X, --dampening X, --nesterov       SGD\n"
            "  --beta1 X, --beta2 X, --eps X                 Adam family\n"
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
            "The same arguments and thread count give bitwise the same checkpoint.\n");
}

/* ======================================================================
 * Options
 * ====================================================================== */

enum {
    OPT_DATA = 256, OPT_TEST, OPT_ARCH, OPT_ACT, OPT_LOSS, OPT_REDUCTION, OPT_OPT, OPT_LR, OPT_WD,
    OPT_MOMENTUM, OPT_DAMPENING, OPT_NESTEROV, OPT_BETA1, OPT_BETA2, OPT_EPS, OPT_SCHEDULE,
    OPT_WARMUP, OPT_BATCH, OPT_EPOCHS, OPT_SEED, OPT_INIT_SCHEME, OPT_INIT, OPT_SAVE_EVERY,
    OPT_THREADS, OPT_JSON
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

static int parse_one(void *ctx, int c, const char *arg)
{
    train_opts *o = ctx;
    int rc = 0;
    switch (c) {
    case OPT_DATA: o->data = arg; break;
    case OPT_TEST: o->test = arg; break;
    case OPT_ARCH:
        rc = cli_parse_size_list(CMD, "--arch", arg, o->arch, EFFDIM_MLP_MAX_LAYERS + 1, &o->n_arch);
        break;
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
    case 'o': o->out = arg; break;
    default: rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static void join_command(train_opts *o, int argc, char **argv)
{
    size_t len = 0;
    o->command[0] = '\0';
    for (int i = 0; i < argc; ++i) {
        int w = snprintf(o->command + len, sizeof o->command - len, "%s%s", i ? " " : "effdim ",
                         argv[i]);
        if (w < 0 || (size_t)w >= sizeof o->command - len) break;
        len += (size_t)w;
    }
}

/* 0 when the options parse and agree; else the exit code (message printed). */
static int parse_args(train_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->batch = 128;
    o->epochs = 20;
    o->seed = 1;
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
 * Setup: network, optimiser, schedule
 * ====================================================================== */

typedef struct trainer {
    train_opts *o;
    effdim_dataset *train, *test;
    effdim_checkpoint *ckpt;   /* the model, theta, provenance; saved at the end */
    effdim_optim *opt;
    effdim_schedule sched;
    effdim_mlp_ws *ws;
    double *grad;              /* (P) */
    size_t *perm;              /* (n) this epoch's order */
    gsl_rng *rng;
    char *data_owned, *test_owned; /* specs copied from the --init checkpoint */
    uint64_t epoch0;           /* epochs done before this run (from --init) */
    double seconds, step_seconds;
    size_t steps;              /* steps taken in this run */
    double last[4];            /* last epoch's loss, accuracy, test loss, test accuracy */
} trainer;

/* A fresh network from --arch/--act/--loss/--reduction, checked against the data. */
static int build_network(trainer *T, effdim_mlp *m)
{
    train_opts *o = T->o;
    effdim_error err;
    effdim_activation hidden = EFFDIM_ACT_RELU, acts[EFFDIM_MLP_MAX_LAYERS];
    effdim_loss loss = T->train->kind == EFFDIM_TARGET_REAL ? EFFDIM_LOSS_MSE : EFFDIM_LOSS_CROSS_ENTROPY;
    effdim_reduction red = EFFDIM_REDUCTION_MEAN;
    if (o->act && effdim_activation_parse(o->act, &hidden))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--act: unknown activation '%s', expected relu, tanh, "
                          "sigmoid, softplus, gelu or identity", o->act);
    if (o->loss && effdim_loss_parse(o->loss, &loss))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--loss: unknown loss '%s', expected cross_entropy "
                          "or mse", o->loss);
    if (o->reduction && effdim_reduction_parse(o->reduction, &red))
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
    if (o->loss && (effdim_loss_parse(o->loss, &loss) || loss != m->loss))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--loss %s differs from %s's loss %s", o->loss,
                          o->init, effdim_loss_name(m->loss));
    effdim_activation a;
    if (o->act && m->n_layers > 1 && (effdim_activation_parse(o->act, &a) || a != m->act[0]))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--act %s differs from %s's hidden activation %s",
                          o->act, o->init, effdim_activation_name(m->act[0]));
    return 0;
}

/* Hyperparameters given on the command line over p. */
static void override_params(const train_opts *o, effdim_optim_params *p)
{
    if (o->has_lr) p->lr = o->lr;
    if (o->has_wd) p->weight_decay = o->wd;
    if (o->has_momentum) p->momentum = o->momentum;
    if (o->has_dampening) p->dampening = o->dampening;
    if (o->nesterov) p->nesterov = 1;
    if (o->has_beta1) p->beta1 = o->beta1;
    if (o->has_beta2) p->beta2 = o->beta2;
    if (o->has_eps) p->eps = o->eps;
}

static int build_schedule(trainer *T, double lr)
{
    train_opts *o = T->o;
    effdim_error err;
    char spec[512];
    snprintf(spec, sizeof spec, "%s", o->schedule ? o->schedule : "const");
    if (o->has_warmup && o->warmup > 0) {
        size_t len = strlen(spec);
        snprintf(spec + len, sizeof spec - len, "%swarmup=%zu", strchr(spec, ':') ? "," : ":",
                 o->warmup);
    }
    if (effdim_schedule_parse(spec, lr, &T->sched, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--schedule: %s", err.msg);
    return 0;
}

/* A fresh optimiser from --opt and the hyperparameter options. */
static int fresh_optimizer(trainer *T)
{
    train_opts *o = T->o;
    effdim_error err;
    effdim_optim_kind kind = EFFDIM_OPTIM_ADAM;
    if (o->opt && effdim_optim_kind_parse(o->opt, &kind, &err))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--opt: %s", err.msg);
    effdim_optim_params p = effdim_optim_default_params(kind);
    override_params(o, &p);
    if (effdim_optim_alloc(kind, &p, T->ckpt->mlp.n_params, &T->opt, &err))
        return err.code == EFFDIM_ENOMEM ? cli_fail(CMD, &err)
                                         : cli_errorf(CMD, CLI_EXIT_USAGE, "%s", err.msg);
    return build_schedule(T, p.lr);
}

/* The optimiser saved in the --init checkpoint, with command-line overrides. */
static int resumed_optimizer(trainer *T)
{
    train_opts *o = T->o;
    effdim_error err;
    effdim_schedule sched;
    effdim_optim *saved = NULL;
    if (effdim_checkpoint_to_optim(T->ckpt, o->init, &saved, &sched, &err)) return cli_fail(CMD, &err);
    effdim_optim_kind kind;
    if (o->opt && (effdim_optim_kind_parse(o->opt, &kind, &err) || kind != saved->kind)) {
        int rc = cli_errorf(CMD, CLI_EXIT_USAGE, "--opt %s differs from the optimizer %s saved in "
                            "%s; drop --opt to continue it", o->opt, T->ckpt->optimizer->name,
                            o->init);
        effdim_optim_free(saved);
        return rc;
    }
    effdim_optim_params p = saved->params;
    override_params(o, &p);
    if (effdim_optim_alloc(saved->kind, &p, saved->n, &T->opt, &err)) {
        effdim_optim_free(saved);
        return cli_errorf(CMD, CLI_EXIT_USAGE, "%s", err.msg);
    }
    /* carry the state vectors and the step count over */
    effdim_optim_state_vec vecs[EFFDIM_OPTIM_MAX_STATE];
    size_t n = effdim_optim_state(T->opt, vecs, EFFDIM_OPTIM_MAX_STATE);
    for (size_t i = 0; i < n; ++i) {
        const double *v = effdim_optim_state_find(saved, vecs[i].name);
        if (v) memcpy(vecs[i].data, v, saved->n * sizeof *v);
    }
    effdim_optim_restore(T->opt, saved->t, saved->momentum_ready);
    effdim_optim_free(saved);
    if (o->schedule || o->has_warmup || o->has_lr) return build_schedule(T, p.lr);
    T->sched = sched;
    return 0;
}

static int load_data(trainer *T)
{
    effdim_error err;
    train_opts *o = T->o;
    if (effdim_dataset_from_spec(o->data, &T->train, &err)) return cli_fail(CMD, &err);
    if (o->test && effdim_dataset_from_spec(o->test, &T->test, &err)) return cli_fail(CMD, &err);
    if (T->test && (T->test->d != T->train->d || T->test->kind != T->train->kind))
        return cli_errorf(CMD, CLI_EXIT_USAGE, "--test %s: %zu features (%s), but --data has %zu "
                          "(%s)", o->test, T->test->d,
                          T->test->kind == EFFDIM_TARGET_LABELS ? "labels" : "real targets",
                          T->train->d,
                          T->train->kind == EFFDIM_TARGET_LABELS ? "labels" : "real targets");
    return 0;
}

/* The output folder must exist and be writable before hours of training. */
static int check_output(const char *out)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", out);
    const char *dir = dirname(buf);
    if (access(dir, W_OK) != 0)
        return cli_errorf(CMD, CLI_EXIT_FAIL, "%s: cannot write into folder %s: %s", out, dir,
                          strerror(errno));
    return 0;
}

static int setup(trainer *T)
{
    train_opts *o = T->o;
    effdim_error err;
    int rc = check_output(o->out);
    if (rc) return rc;
    if (o->init) {
        if (effdim_checkpoint_load(o->init, &T->ckpt, &err)) return cli_fail(CMD, &err);
        rc = check_init_agrees(o, &T->ckpt->mlp);
        if (rc) return rc;
        effdim_ckpt_training *t = T->ckpt->training;
        if (!o->data && (!t || !t->data_spec))
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--data is required: %s records no data spec",
                              o->init);
        /* copies: saving replaces the checkpoint's own strings */
        if (!o->data) o->data = T->data_owned = effdim_strdup(t->data_spec, &err);
        if (!o->test && t && t->test_spec) o->test = T->test_owned = effdim_strdup(t->test_spec, &err);
        if (!o->data || (t && t->test_spec && !o->test)) return cli_fail(CMD, &err);
        if (!o->has_seed && t && t->has_seed) o->seed = t->seed;
        T->epoch0 = t ? t->epochs : 0;
        const effdim_ckpt_attr *b = effdim_checkpoint_training_attr(T->ckpt, "batch");
        if (!o->has_batch && b && !b->is_string && b->n == 1 && b->num[0] >= 1)
            o->batch = (size_t)b->num[0];
    }
    rc = load_data(T);
    if (rc) return rc;
    if (!T->ckpt) {
        effdim_mlp m;
        rc = build_network(T, &m);
        if (rc) return rc;
        if (effdim_checkpoint_alloc(&m, NULL, &T->ckpt, &err)) return cli_fail(CMD, &err);
        effdim_init_scheme scheme = EFFDIM_INIT_TORCH;
        if (o->init_scheme && !strcmp(o->init_scheme, "glorot"))
            scheme = EFFDIM_INIT_GLOROT;
        else if (o->init_scheme && strcmp(o->init_scheme, "torch") != 0)
            return cli_errorf(CMD, CLI_EXIT_USAGE, "--init-scheme: unknown scheme '%s', expected "
                              "torch or glorot", o->init_scheme);
        if (effdim_mlp_init_params(&m, T->ckpt->theta, scheme, o->seed, &err)) return cli_fail(CMD, &err);
    }
    const effdim_mlp *m = &T->ckpt->mlp;
    rc = check_arch(m, T->train, o->data, "--data");
    if (!rc && T->test) rc = check_arch(m, T->test, o->test, "--test");
    if (rc) return rc;
    rc = o->init && T->ckpt->optimizer ? resumed_optimizer(T) : fresh_optimizer(T);
    if (rc) return rc;
    size_t n = T->train->n, batch = o->batch ? o->batch : n;
    if (batch > n) batch = n;
    o->batch = batch;
    T->ws = effdim_mlp_ws_alloc(m, batch < 4096 ? batch : 4096, &err);
    T->grad = effdim_alloc(m->n_params, sizeof *T->grad, "gradient", &err);
    T->perm = effdim_alloc(n, sizeof *T->perm, "permutation", &err);
    T->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!T->ws || !T->grad || !T->perm || !T->rng) {
        if (!T->rng) effdim_error_set(&err, EFFDIM_ENOMEM, "cannot allocate the random generator");
        return cli_fail(CMD, &err);
    }
    effdim_set_num_threads(o->threads);
    return 0;
}

/* ======================================================================
 * The loop
 * ====================================================================== */

/* A 64-bit mix (splitmix64's finaliser) so each epoch gets its own seed. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* This epoch's permutation of the training rows (global epoch index e). */
static void shuffle_epoch(trainer *T, uint64_t e)
{
    size_t n = T->train->n;
    gsl_rng_set(T->rng, (unsigned long)(mix64(T->o->seed ^ mix64(e + 1)) & 0xffffffffUL));
    for (size_t i = 0; i < n; ++i) T->perm[i] = i;
    gsl_ran_shuffle(T->rng, T->perm, n, sizeof *T->perm);
}

static int evaluate_epoch(trainer *T)
{
    effdim_error err;
    const effdim_mlp *m = &T->ckpt->mlp;
    double *r = T->last;
    r[0] = r[1] = r[2] = r[3] = NAN;
    if (effdim_mlp_evaluate(m, T->ckpt->theta, T->train, NULL, T->train->n, &r[0], &r[1], T->ws, &err))
        return cli_fail(CMD, &err);
    if (T->test &&
        effdim_mlp_evaluate(m, T->ckpt->theta, T->test, NULL, T->test->n, &r[2], &r[3], T->ws, &err))
        return cli_fail(CMD, &err);
    if (effdim_checkpoint_append_epoch(T->ckpt, r[0], r[1], r[2], r[3], &err)) return cli_fail(CMD, &err);
    return 0;
}

static void epoch_line(trainer *T, cli_progress *pr, uint64_t e, double steps_per_s)
{
    const double *r = T->last;
    char acc[64] = "", test[96] = "";
    if (!isnan(r[1])) snprintf(acc, sizeof acc, "  accuracy %.4f", r[1]);
    if (T->test) {
        int w = snprintf(test, sizeof test, "  test loss %.6g", r[2]);
        if (!isnan(r[3]) && w > 0) snprintf(test + w, sizeof test - (size_t)w, "  test accuracy %.4f", r[3]);
    }
    cli_progress_done(pr);
    fprintf(stderr, "epoch %llu/%llu  step %zu  loss %.6g%s%s  %.1f steps/s  [%.1f s]\n",
            (unsigned long long)(e + 1), (unsigned long long)(T->epoch0 + T->o->epochs),
            T->opt->t, r[0], acc, test, steps_per_s, cli_progress_elapsed(pr));
}

static int save(trainer *T)
{
    effdim_error err;
    char when[64];
    effdim_checkpoint *c = T->ckpt;
    train_opts *o = T->o;
    if (effdim_checkpoint_set_from_optim(c, T->opt, &T->sched, &err) ||
        effdim_checkpoint_set_provenance(c, o->data, o->test, o->seed, &err) ||
        effdim_checkpoint_set_training_string(c, "command", o->command, &err) ||
        effdim_checkpoint_set_training_number(c, "batch", (double)o->batch, &err) ||
        effdim_checkpoint_set_training_number(c, "threads", (double)o->threads, &err) ||
        effdim_checkpoint_set_training_number(c, "seconds", T->seconds, &err))
        return cli_fail(CMD, &err);
    free(c->training->created);
    c->training->created = effdim_strdup(cli_now_iso(when, sizeof when), &err);
    free(c->training->version);
    c->training->version = effdim_strdup(effdim_version(), &err);
    if (effdim_checkpoint_save(c, o->out, &err)) return cli_fail(CMD, &err);
    return 0;
}

/* One epoch of minibatch steps. */
static int run_epoch(trainer *T, cli_progress *pr, uint64_t e, size_t total_steps)
{
    effdim_error err;
    train_opts *o = T->o;
    const effdim_mlp *m = &T->ckpt->mlp;
    size_t n = T->train->n, batch = o->batch;
    size_t nb = (n + batch - 1) / batch;
    double run_loss = 0;
    size_t run_rows = 0;
    shuffle_epoch(T, e);
    for (size_t b = 0; b < nb; ++b) {
        size_t start = b * batch, len = start + batch <= n ? batch : n - start;
        double loss, t0 = effdim_now();
        if (effdim_mlp_loss_grad(m, T->ckpt->theta, T->train, T->perm + start, len, &loss,
                                 T->grad, T->ws, &err))
            return cli_fail(CMD, &err);
        if (!isfinite(loss)) {
            cli_progress_done(pr);
            return cli_errorf(CMD, CLI_EXIT_FAIL, "loss became %g at epoch %llu, step %zu: training "
                              "diverged (lower --lr?); %s not written", loss,
                              (unsigned long long)(e + 1), T->opt->t + 1, o->out);
        }
        double lr = effdim_schedule_lr(&T->sched, T->opt->t + 1);
        if (effdim_optim_step(T->opt, T->ckpt->theta, T->grad, lr, &err)) return cli_fail(CMD, &err);
        T->step_seconds += effdim_now() - t0;
        ++T->steps;
        run_loss += loss * (double)len;
        run_rows += len;
        if (b + 1 < nb) { /* the epoch's own line follows the last batch */
            char acc[48] = "";
            if (isfinite(T->last[1])) snprintf(acc, sizeof acc, "  accuracy %.4f (last epoch)", T->last[1]);
            cli_progress_update(pr, (double)T->steps / (double)total_steps,
                                "epoch %llu/%llu  step %zu  loss %.5g%s  %.1f steps/s",
                                (unsigned long long)(e + 1),
                                (unsigned long long)(T->epoch0 + o->epochs), T->opt->t,
                                run_loss / (double)run_rows, acc, (double)T->steps / T->step_seconds);
        }
    }
    return 0;
}

static int train_loop(trainer *T)
{
    train_opts *o = T->o;
    size_t nb = (T->train->n + o->batch - 1) / o->batch;
    size_t total = nb * (o->epochs ? o->epochs : 1);
    cli_progress pr;
    cli_progress_init(&pr);
    pr.last = pr.start; /* first progress line after one interval: short epochs log only their own line */
    double t0 = effdim_now();
    /* A permanent line for the first and the last epoch and at most one per
     * interval in between (1 s on a terminal, 5 s in a log), so thousands of
     * short full-batch epochs do not flood the log; every epoch's metrics are
     * in the checkpoint's /training arrays. */
    const double line_interval = pr.tty ? 1.0 : 5.0;
    double last_line = -1e300;
    for (size_t k = 0; k < o->epochs; ++k) {
        uint64_t e = T->epoch0 + k;
        int rc = run_epoch(T, &pr, e, total);
        if (!rc) rc = evaluate_epoch(T);
        if (rc) return rc;
        T->seconds = effdim_now() - t0;
        double now = effdim_now(), rate = T->step_seconds > 0 ? (double)T->steps / T->step_seconds : 0;
        if (k == 0 || k + 1 == o->epochs || now - last_line >= line_interval) {
            epoch_line(T, &pr, e, rate);
            last_line = now;
        } else if (pr.tty) {
            cli_progress_update(&pr, (double)T->steps / (double)total, "epoch %llu/%llu  step %zu  loss %.6g  %.1f steps/s",
                                (unsigned long long)(e + 1), (unsigned long long)(T->epoch0 + o->epochs),
                                T->opt->t, T->last[0], rate);
        }
        if (o->save_every && (k + 1) % o->save_every == 0 && k + 1 < o->epochs) {
            rc = save(T);
            if (rc) return rc;
        }
    }
    T->seconds = effdim_now() - t0;
    cli_progress_done(&pr);
    return 0;
}

static void print_summary(const trainer *T)
{
    const effdim_mlp *m = &T->ckpt->mlp;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "output", T->o->out);
    cJSON_AddStringToObject(o, "data", T->o->data);
    if (T->o->test) cJSON_AddStringToObject(o, "test", T->o->test);
    cJSON *arch = cJSON_AddArrayToObject(o, "layer_sizes");
    for (size_t i = 0; i <= m->n_layers; ++i)
        cJSON_AddItemToArray(arch, cJSON_CreateNumber((double)m->sizes[i]));
    cJSON_AddNumberToObject(o, "n_params", (double)m->n_params);
    cJSON_AddStringToObject(o, "optimizer", effdim_optim_kind_name(T->opt->kind));
    cJSON_AddNumberToObject(o, "epochs", (double)(T->epoch0 + T->o->epochs));
    cJSON_AddNumberToObject(o, "steps", (double)T->opt->t);
    cJSON_AddNumberToObject(o, "batch", (double)T->o->batch);
    cJSON_AddNumberToObject(o, "seed", (double)T->o->seed);
    cJSON_AddNumberToObject(o, "threads", T->o->threads);
    const char *names[4] = {"loss", "accuracy", "test_loss", "test_accuracy"};
    cJSON *fin = cJSON_AddObjectToObject(o, "final");
    for (int i = 0; i < 4; ++i)
        if (isfinite(T->last[i])) cJSON_AddNumberToObject(fin, names[i], T->last[i]);
    cJSON_AddNumberToObject(o, "seconds", T->seconds);
    cJSON_AddNumberToObject(o, "steps_per_second",
                            T->step_seconds > 0 ? (double)T->steps / T->step_seconds : 0);
    cli_json_print(o);
}

static void trainer_free(trainer *T)
{
    effdim_dataset_free(T->train);
    effdim_dataset_free(T->test);
    effdim_checkpoint_free(T->ckpt);
    effdim_optim_free(T->opt);
    effdim_mlp_ws_free(T->ws);
    free(T->grad);
    free(T->perm);
    free(T->data_owned);
    free(T->test_owned);
    if (T->rng) gsl_rng_free(T->rng);
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    const char *claim_in[] = {o.data, o.test}; /* not --init: `--init X -o X` continues X */
    if ((rc = cli_claim_output(CMD, o.out, claim_in, 2))) return rc;
    trainer T;
    memset(&T, 0, sizeof T);
    T.o = &o;
    for (int i = 0; i < 4; ++i) T.last[i] = NAN;
    rc = setup(&T);
    if (!rc) rc = train_loop(&T);
    if (!rc) rc = save(&T);
    if (!rc && o.json) print_summary(&T);
    trainer_free(&T);
    return rc;
}
