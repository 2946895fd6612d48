/* lib/checkpoint.c: the HDF5 checkpoint, format "effdim.checkpoint" version 1.
 *
 * What it does: holds a network description, its flat parameters, the
 * optimiser state and the training provenance in memory; writes them in the
 * layout of docs/file-formats.md (the interop contract of DESIGN.md, also
 * written by tools/torch_export.py) and reads them back, validating every
 * shape, name and value before anything reaches the network code.
 *
 * Algorithm: writing goes through lib/h5io's atomic writer (temporary file
 * beside the target, flush, fsync, rename), so the final name only ever
 * holds a complete file. Reading checks, in order: the root 'format' and
 * 'format_version'; /model's layer_sizes, activations, loss and reduction;
 * each layer's weight (out, in) and bias (out) shape, type and finiteness;
 * then the optional /optimizer (every data set a float vector of length P)
 * and /training. Unknown numeric attributes of /optimizer become
 * hyperparameters and unknown data sets state vectors, so later optimisers
 * need no format change. Every refusal names the file, the object and what
 * was expected.
 *
 * Reference: PyTorch's nn.Module.state_dict and torch.optim.Optimizer
 * state_dict (the names exp_avg, exp_avg_sq, max_exp_avg_sq,
 * momentum_buffer, step) and parameters_to_vector ordering.
 */
#include "effdim/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h5io.h"
#include "internal.h"

/* Metric arrays appended per epoch, in the order written. */
static const char *const metric_names[] = {"losses", "accuracies", "test_losses",
                                           "test_accuracies"};
#define N_METRICS (sizeof metric_names / sizeof metric_names[0])

/* ======================================================================
 * Named lists
 * ====================================================================== */

static effdim_status copy_name(char *dst, const char *name, const char *what, effdim_error *err)
{
    size_t len = name ? strlen(name) : 0;
    RETURN_ERROR_IF(len == 0, err, EFFDIM_EINVAL, "%s: empty name", what);
    RETURN_ERROR_IF(len >= EFFDIM_CKPT_NAME_MAX, err, EFFDIM_EINVAL,
                    "%s: name '%s' is longer than %d characters", what, name,
                    EFFDIM_CKPT_NAME_MAX - 1);
    RETURN_ERROR_IF(strchr(name, '/') != NULL, err, EFFDIM_EINVAL,
                    "%s: name '%s' must not contain '/'", what, name);
    memcpy(dst, name, len + 1);
    return EFFDIM_OK;
}

static void attr_clear(effdim_checkpoint_attr *a)
{
    if (a->str)
        for (size_t i = 0; i < a->n; ++i) free(a->str[i]);
    free(a->str);
    free(a->num);
    a->str = NULL;
    a->num = NULL;
    a->n = 0;
}

static void attrs_free(effdim_checkpoint_attr *a, size_t n)
{
    if (!a) return;
    for (size_t i = 0; i < n; ++i) attr_clear(&a[i]);
    free(a);
}

static void vectors_free(effdim_named_vector *v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; ++i) free(v[i].v);
    free(v);
}

static effdim_named_vector *vector_find(effdim_named_vector *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; ++i)
        if (!strcmp(v[i].name, name)) return &v[i];
    return NULL;
}

static effdim_checkpoint_attr *attr_find(effdim_checkpoint_attr *a, size_t n, const char *name)
{
    for (size_t i = 0; i < n; ++i)
        if (!strcmp(a[i].name, name)) return &a[i];
    return NULL;
}

/* Grow an array of `size`-byte items by one zeroed item; returns the new item. */
static void *list_push(void **items, size_t *n, size_t size, const char *what, effdim_error *err)
{
    size_t bytes;
    if (effdim_mul_size(*n + 1, size, &bytes)) {
        effdim_error_set(err, EFFDIM_ENOMEM, "%s: too many entries", what);
        return NULL;
    }
    void *grown = realloc(*items, bytes);
    if (!grown) {
        effdim_error_set(err, EFFDIM_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    *items = grown;
    char *item = (char *)grown + *n * size;
    memset(item, 0, size);
    ++*n;
    return item;
}

/* Add or replace the named vector (copying n values). */
static effdim_status vector_set(effdim_named_vector **list, size_t *count, const char *name,
                                const double *v, size_t n, const char *what, effdim_error *err)
{
    char key[EFFDIM_CKPT_NAME_MAX];
    effdim_status st = copy_name(key, name, what, err);
    if (st) return st;
    double *copy = effdim_alloc(n, sizeof *copy, what, err);
    if (!copy) return EFFDIM_ENOMEM;
    if (n) memcpy(copy, v, n * sizeof *copy);
    effdim_named_vector *e = vector_find(*list, *count, key);
    if (!e) e = list_push((void **)list, count, sizeof **list, what, err);
    if (!e) {
        free(copy);
        return EFFDIM_ENOMEM;
    }
    free(e->v);
    memcpy(e->name, key, sizeof key);
    e->v = copy;
    e->n = n;
    return EFFDIM_OK;
}

/* Add an attribute slot of that name (replacing an old one's content) into *slot. */
static effdim_status attr_slot(effdim_checkpoint_attr **list, size_t *count, const char *name,
                               const char *what, effdim_checkpoint_attr **slot, effdim_error *err)
{
    char key[EFFDIM_CKPT_NAME_MAX];
    effdim_status st = copy_name(key, name, what, err);
    if (st) return st;
    effdim_checkpoint_attr *a = attr_find(*list, *count, key);
    if (a)
        attr_clear(a);
    else
        a = list_push((void **)list, count, sizeof **list, what, err);
    if (!a) return EFFDIM_ENOMEM;
    memcpy(a->name, key, sizeof key);
    *slot = a;
    return EFFDIM_OK;
}

static effdim_status attr_set_string(effdim_checkpoint_attr **list, size_t *count, const char *name,
                                     const char *value, const char *what, effdim_error *err)
{
    effdim_checkpoint_attr *a = NULL;
    effdim_status st = attr_slot(list, count, name, what, &a, err);
    if (st) return st;
    a->str = effdim_calloc(1, sizeof *a->str, what, err);
    if (!a->str) return EFFDIM_ENOMEM;
    a->str[0] = effdim_strdup(value ? value : "", err);
    if (!a->str[0]) return EFFDIM_ENOMEM;
    a->n = 1;
    a->is_string = 1;
    a->is_scalar = 1;
    a->is_integer = 0;
    return EFFDIM_OK;
}

static effdim_status attr_set_number(effdim_checkpoint_attr **list, size_t *count, const char *name,
                                     double value, const char *what, effdim_error *err)
{
    effdim_checkpoint_attr *a = NULL;
    effdim_status st = attr_slot(list, count, name, what, &a, err);
    if (st) return st;
    a->num = effdim_alloc(1, sizeof *a->num, what, err);
    if (!a->num) return EFFDIM_ENOMEM;
    a->num[0] = value;
    a->n = 1;
    a->is_string = 0;
    a->is_scalar = 1;
    a->is_integer = (value == floor(value) && fabs(value) < 9.0e15);
    return EFFDIM_OK;
}

/* ======================================================================
 * Allocation
 * ====================================================================== */

static void optimizer_free(effdim_checkpoint_optimizer *o)
{
    if (!o) return;
    free(o->hparams);
    vectors_free(o->state, o->n_state);
    attrs_free(o->extras, o->n_extras);
    free(o);
}

static void training_free(effdim_checkpoint_training *t)
{
    if (!t) return;
    free(t->data_spec);
    free(t->test_spec);
    free(t->version);
    free(t->created);
    vectors_free(t->metrics, t->n_metrics);
    attrs_free(t->extras, t->n_extras);
    free(t);
}

void effdim_checkpoint_free(effdim_checkpoint *c)
{
    if (!c) return;
    free(c->theta);
    optimizer_free(c->optimizer);
    training_free(c->training);
    if (c->svd) free(c->svd->log_sigma2);
    free(c->svd);
    free(c);
}

effdim_status effdim_checkpoint_alloc(const effdim_mlp *m, const double *theta,
                                      effdim_checkpoint **out, effdim_error *err)
{
    *out = NULL;
    RETURN_ERROR_IF(!m || m->n_params == 0, err, EFFDIM_EINVAL,
                    "checkpoint: the network description is empty");
    effdim_checkpoint *c = effdim_calloc(1, sizeof *c, "checkpoint", err);
    if (!c) return EFFDIM_ENOMEM;
    c->mlp = *m;
    c->theta = effdim_calloc(m->n_params, sizeof *c->theta, "checkpoint parameters", err);
    if (!c->theta) {
        free(c);
        return EFFDIM_ENOMEM;
    }
    if (theta) memcpy(c->theta, theta, m->n_params * sizeof *theta);
    *out = c;
    return EFFDIM_OK;
}

/* ======================================================================
 * Variational layers
 * ====================================================================== */

size_t effdim_checkpoint_n_optim(const effdim_checkpoint *c)
{
    return c->mlp.n_params + (c->svd ? c->svd->svd.n_weights : 0);
}

effdim_status effdim_checkpoint_set_svd(effdim_checkpoint *c, const effdim_svd *s,
                                        const double *log_sigma2, effdim_error *err)
{
    RETURN_ERROR_IF(!c || !s, err, EFFDIM_EINVAL, "checkpoint svd: NULL argument");
    effdim_status st = effdim_svd_check(s, &c->mlp, err);
    if (st) return st;
    RETURN_ERROR_IF(s->n_weights == 0, err, EFFDIM_EINVAL,
                    "checkpoint svd: no layer is variational");
    RETURN_ERROR_IF(c->optimizer, err, EFFDIM_EINVAL,
                    "checkpoint svd: the checkpoint has an optimizer section (its state vectors "
                    "would change length); set the variational layers before training");
    effdim_checkpoint_svd *v = effdim_calloc(1, sizeof *v, "checkpoint svd", err);
    if (!v) return EFFDIM_ENOMEM;
    v->svd = *s;
    v->log_sigma2 = effdim_alloc(s->n_weights, sizeof(double), "checkpoint log_sigma2", err);
    if (!v->log_sigma2) {
        free(v);
        return EFFDIM_ENOMEM;
    }
    if (log_sigma2) memcpy(v->log_sigma2, log_sigma2, s->n_weights * sizeof *log_sigma2);
    else effdim_svd_init_params(s, v->log_sigma2);
    if (c->svd) free(c->svd->log_sigma2);
    free(c->svd);
    c->svd = v;
    return EFFDIM_OK;
}

effdim_status effdim_checkpoint_svd_evaluation(effdim_checkpoint *c, effdim_error *err)
{
    RETURN_ERROR_IF(!c, err, EFFDIM_EINVAL, "checkpoint svd: NULL checkpoint");
    if (!c->svd) return EFFDIM_OK;
    effdim_svd_masked_theta(&c->mlp, &c->svd->svd, c->theta, c->svd->log_sigma2, c->theta);
    for (size_t i = 0; c->optimizer && i < c->optimizer->n_state; ++i)
        c->optimizer->state[i].n = c->mlp.n_params; /* theta's part comes first */
    free(c->svd->log_sigma2);
    free(c->svd);
    c->svd = NULL;
    return EFFDIM_OK;
}

/* ======================================================================
 * Optimiser section: setters and lookups
 * ====================================================================== */

effdim_status effdim_checkpoint_set_optimizer(effdim_checkpoint *c, const char *name, int64_t step,
                                              effdim_error *err)
{
    RETURN_ERROR_IF(step < 0, err, EFFDIM_EINVAL, "checkpoint optimizer: step %lld is negative",
                    (long long)step);
    effdim_checkpoint_optimizer *o = effdim_calloc(1, sizeof *o, "checkpoint optimizer", err);
    if (!o) return EFFDIM_ENOMEM;
    effdim_status st = copy_name(o->name, name, "checkpoint optimizer", err);
    if (st) {
        free(o);
        return st;
    }
    o->step = step;
    optimizer_free(c->optimizer);
    c->optimizer = o;
    return EFFDIM_OK;
}

effdim_status effdim_checkpoint_set_hparam(effdim_checkpoint *c, const char *name, double value,
                                           effdim_error *err)
{
    RETURN_ERROR_IF(!c->optimizer, err, EFFDIM_EINVAL,
                    "checkpoint: hyperparameter '%s' set before the optimizer", name ? name : "");
    effdim_checkpoint_optimizer *o = c->optimizer;
    char key[EFFDIM_CKPT_NAME_MAX];
    effdim_status st = copy_name(key, name, "checkpoint hyperparameter", err);
    if (st) return st;
    RETURN_ERROR_IF(!strcmp(key, "name") || !strcmp(key, "step"), err, EFFDIM_EINVAL,
                    "checkpoint: '%s' is reserved, not a hyperparameter", key);
    for (size_t i = 0; i < o->n_hparams; ++i)
        if (!strcmp(o->hparams[i].name, key)) {
            o->hparams[i].value = value;
            return EFFDIM_OK;
        }
    effdim_named_value *v = list_push((void **)&o->hparams, &o->n_hparams, sizeof *o->hparams,
                                      "checkpoint hyperparameters", err);
    if (!v) return EFFDIM_ENOMEM;
    memcpy(v->name, key, sizeof key);
    v->value = value;
    return EFFDIM_OK;
}

effdim_status effdim_checkpoint_set_state(effdim_checkpoint *c, const char *name, const double *v,
                                          size_t n, effdim_error *err)
{
    RETURN_ERROR_IF(!c->optimizer, err, EFFDIM_EINVAL,
                    "checkpoint: state vector '%s' set before the optimizer", name ? name : "");
    RETURN_ERROR_IF(n != effdim_checkpoint_n_optim(c), err, EFFDIM_EINVAL,
                    "checkpoint: state vector '%s' has %zu values, expected %zu (the number of "
                    "parameters)", name ? name : "", n, effdim_checkpoint_n_optim(c));
    return vector_set(&c->optimizer->state, &c->optimizer->n_state, name, v, n,
                      "checkpoint optimizer state", err);
}

effdim_status effdim_checkpoint_set_optimizer_string(effdim_checkpoint *c, const char *name,
                                                     const char *value, effdim_error *err)
{
    RETURN_ERROR_IF(!c->optimizer, err, EFFDIM_EINVAL,
                    "checkpoint: optimizer attribute '%s' set before the optimizer",
                    name ? name : "");
    RETURN_ERROR_IF(name && (!strcmp(name, "name") || !strcmp(name, "step")), err, EFFDIM_EINVAL,
                    "checkpoint: '%s' is reserved", name);
    return attr_set_string(&c->optimizer->extras, &c->optimizer->n_extras, name, value,
                           "checkpoint optimizer attribute", err);
}

int effdim_checkpoint_hparam(const effdim_checkpoint *c, const char *name, double *value)
{
    if (!c || !c->optimizer) return 0;
    for (size_t i = 0; i < c->optimizer->n_hparams; ++i)
        if (!strcmp(c->optimizer->hparams[i].name, name)) {
            if (value) *value = c->optimizer->hparams[i].value;
            return 1;
        }
    return 0;
}

const double *effdim_checkpoint_state(const effdim_checkpoint *c, const char *name)
{
    if (!c || !c->optimizer) return NULL;
    effdim_named_vector *v = vector_find(c->optimizer->state, c->optimizer->n_state, name);
    return v ? v->v : NULL;
}

const char *effdim_checkpoint_optimizer_string(const effdim_checkpoint *c, const char *name)
{
    if (!c || !c->optimizer) return NULL;
    effdim_checkpoint_attr *a = attr_find(c->optimizer->extras, c->optimizer->n_extras, name);
    return a && a->is_string && a->n ? a->str[0] : NULL;
}

/* ======================================================================
 * Optimiser section <-> effdim_optim
 * ====================================================================== */

effdim_status effdim_checkpoint_set_from_optim(effdim_checkpoint *c, effdim_optim *opt,
                                               const effdim_schedule *schedule, effdim_error *err)
{
    RETURN_ERROR_IF(opt->n != effdim_checkpoint_n_optim(c), err, EFFDIM_EINVAL,
                    "checkpoint: the optimizer has %zu parameters, the network %zu", opt->n,
                    effdim_checkpoint_n_optim(c));
    const effdim_optim_params *p = &opt->params;
    effdim_status st = effdim_checkpoint_set_optimizer(c, effdim_optim_kind_name(opt->kind),
                                                       (int64_t)opt->t, err);
    if (st) return st;
    if (opt->kind == EFFDIM_OPTIM_SGD) {
        const char *names[] = {"lr", "momentum", "dampening", "nesterov", "weight_decay"};
        const double values[] = {p->lr, p->momentum, p->dampening, p->nesterov ? 1.0 : 0.0,
                                 p->weight_decay};
        for (size_t i = 0; !st && i < 5; ++i) st = effdim_checkpoint_set_hparam(c, names[i], values[i], err);
    } else if (opt->kind == EFFDIM_OPTIM_IVON) {
        const char *names[] = {"lr", "ess", "beta1", "beta2", "hess_init", "weight_decay",
                               "mc_samples", "debias", "rescale_lr", "clip_radius"};
        const double values[] = {p->lr, p->ess, p->beta1, p->beta2, p->hess_init,
                                 p->weight_decay, (double)p->mc_samples, p->debias ? 1.0 : 0.0,
                                 p->rescale_lr ? 1.0 : 0.0, p->clip_radius};
        /* clip_radius only when finite: absent means no clipping */
        size_t k = isfinite(p->clip_radius) ? 10 : 9;
        for (size_t i = 0; !st && i < k; ++i) st = effdim_checkpoint_set_hparam(c, names[i], values[i], err);
        if (!st)
            st = effdim_checkpoint_set_optimizer_string(c, "hess_approx",
                                                        effdim_ivon_hess_name(p->hess_approx), err);
    } else {
        const char *names[] = {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"};
        const double values[] = {p->lr, p->beta1, p->beta2, p->eps, p->weight_decay,
                                 p->amsgrad ? 1.0 : 0.0};
        for (size_t i = 0; !st && i < 6; ++i) st = effdim_checkpoint_set_hparam(c, names[i], values[i], err);
    }
    effdim_optim_state_vec vecs[EFFDIM_OPTIM_MAX_STATE];
    size_t n = effdim_optim_state(opt, vecs, EFFDIM_OPTIM_MAX_STATE);
    for (size_t i = 0; !st && i < n; ++i) {
        /* SGD's buffer exists in PyTorch's state only after the first step */
        if (!strcmp(vecs[i].name, "momentum_buffer") && !opt->momentum_ready) continue;
        st = effdim_checkpoint_set_state(c, vecs[i].name, vecs[i].data, opt->n, err);
    }
    if (!st && schedule) {
        char spec[256];
        st = effdim_checkpoint_set_optimizer_string(
            c, "schedule", effdim_schedule_format(schedule, spec, sizeof spec), err);
    }
    return st;
}

/* Hyperparameters from the file over the kind's defaults. */
static effdim_status params_from_checkpoint(const effdim_checkpoint *c, const char *where,
                                            effdim_optim_params *p, effdim_error *err)
{
    struct {
        const char *name;
        double *dst;
    } fields[] = {{"lr", &p->lr},       {"momentum", &p->momentum},
                  {"dampening", &p->dampening}, {"weight_decay", &p->weight_decay},
                  {"beta1", &p->beta1}, {"beta2", &p->beta2}, {"eps", &p->eps},
                  {"ess", &p->ess},     {"hess_init", &p->hess_init},
                  {"clip_radius", &p->clip_radius}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; ++i)
        effdim_checkpoint_hparam(c, fields[i].name, fields[i].dst);
    double flag;
    if (effdim_checkpoint_hparam(c, "nesterov", &flag)) p->nesterov = flag != 0.0;
    if (effdim_checkpoint_hparam(c, "amsgrad", &flag)) p->amsgrad = flag != 0.0;
    if (effdim_checkpoint_hparam(c, "debias", &flag)) p->debias = flag != 0.0;
    if (effdim_checkpoint_hparam(c, "rescale_lr", &flag)) p->rescale_lr = flag != 0.0;
    double mc;
    if (effdim_checkpoint_hparam(c, "mc_samples", &mc)) {
        RETURN_ERROR_IF(!(mc >= 1.0 && mc <= 1e9 && mc == floor(mc)), err, EFFDIM_EFORMAT,
                        "%s: /optimizer mc_samples: %g, expected a whole number of samples in "
                        "[1, 1e9]", where, mc);
        p->mc_samples = (size_t)mc;
    }
    const char *hess = effdim_checkpoint_optimizer_string(c, "hess_approx");
    effdim_error e;
    RETURN_ERROR_IF(hess && effdim_ivon_hess_parse(hess, &p->hess_approx, &e), err, EFFDIM_EFORMAT,
                    "%s: /optimizer hess_approx: '%s', expected price or gradsq", where, hess);
    return EFFDIM_OK;
}

effdim_status effdim_checkpoint_to_optim(const effdim_checkpoint *c, const char *path,
                                         effdim_optim **out, effdim_schedule *schedule,
                                         effdim_error *err)
{
    const char *where = path ? path : "checkpoint";
    *out = NULL;
    RETURN_ERROR_IF(!c->optimizer, err, EFFDIM_ENOTFOUND, "%s: /optimizer: group is missing",
                    where);
    effdim_optim_kind kind;
    effdim_error e;
    RETURN_ERROR_IF(effdim_optim_kind_parse(c->optimizer->name, &kind, &e), err, EFFDIM_EFORMAT,
                    "%s: /optimizer: name is '%s', expected sgd, adam, amsgrad, adamw or ivon",
                    where, c->optimizer->name);
    effdim_optim_params p = effdim_optim_default_params(kind);
    effdim_status pst = params_from_checkpoint(c, where, &p, err);
    if (pst) return pst;
    effdim_optim *opt = NULL;
    if (effdim_optim_alloc(kind, &p, effdim_checkpoint_n_optim(c), &opt, &e))
        return effdim_error_set(err, e.code == EFFDIM_ENOMEM ? EFFDIM_ENOMEM : EFFDIM_EFORMAT,
                                "%s: /optimizer: %s", where, e.msg);
    effdim_optim_state_vec vecs[EFFDIM_OPTIM_MAX_STATE];
    size_t n = effdim_optim_state(opt, vecs, EFFDIM_OPTIM_MAX_STATE);
    int momentum_loaded = 0;
    for (size_t i = 0; i < n; ++i) {
        const double *v = effdim_checkpoint_state(c, vecs[i].name);
        if (v) memcpy(vecs[i].data, v, opt->n * sizeof *v);
        if (v && !strcmp(vecs[i].name, "momentum_buffer")) momentum_loaded = 1;
        /* an Adam-family optimiser that has taken steps needs its moments */
        if (!v && c->optimizer->step > 0 && strcmp(vecs[i].name, "momentum_buffer") != 0) {
            effdim_optim_free(opt);
            return effdim_error_set(err, EFFDIM_EFORMAT,
                                    "%s: /optimizer/%s: missing, expected for %s after %lld steps",
                                    where, vecs[i].name, c->optimizer->name,
                                    (long long)c->optimizer->step);
        }
    }
    effdim_optim_restore(opt, (size_t)c->optimizer->step, momentum_loaded);
    if (schedule) {
        const char *spec = effdim_checkpoint_optimizer_string(c, "schedule");
        *schedule = effdim_schedule_constant(p.lr);
        if (spec && effdim_schedule_parse(spec, p.lr, schedule, &e)) {
            effdim_optim_free(opt);
            return effdim_error_set(err, EFFDIM_EFORMAT, "%s: /optimizer: schedule '%s': %s", where,
                                    spec, e.msg);
        }
    }
    *out = opt;
    return EFFDIM_OK;
}

/* ======================================================================
 * Training section: setters and lookups
 * ====================================================================== */

static effdim_status training_ensure(effdim_checkpoint *c, effdim_error *err)
{
    if (c->training) return EFFDIM_OK;
    c->training = effdim_calloc(1, sizeof *c->training, "checkpoint training", err);
    return c->training ? EFFDIM_OK : EFFDIM_ENOMEM;
}

static effdim_status replace_string(char **dst, const char *value, effdim_error *err)
{
    if (!value) return EFFDIM_OK;
    char *s = effdim_strdup(value, err);
    if (!s) return EFFDIM_ENOMEM;
    free(*dst);
    *dst = s;
    return EFFDIM_OK;
}

effdim_status effdim_checkpoint_set_provenance(effdim_checkpoint *c, const char *data_spec,
                                               const char *test_spec, uint64_t seed,
                                               effdim_error *err)
{
    RETURN_ERROR_IF(seed > (uint64_t)INT64_MAX, err, EFFDIM_EINVAL,
                    "checkpoint: seed %llu does not fit the file's int64 attribute",
                    (unsigned long long)seed);
    effdim_status st = training_ensure(c, err);
    if (!st) st = replace_string(&c->training->data_spec, data_spec, err);
    if (!st) st = replace_string(&c->training->test_spec, test_spec, err);
    if (st) return st;
    c->training->seed = seed;
    c->training->has_seed = 1;
    return EFFDIM_OK;
}

/* Append one value to the named metric array (created empty when missing). */
static effdim_status metric_append(effdim_checkpoint_training *t, const char *name, double value,
                                   effdim_error *err)
{
    effdim_named_vector *v = vector_find(t->metrics, t->n_metrics, name);
    if (!v) {
        effdim_status st = vector_set(&t->metrics, &t->n_metrics, name, NULL, 0,
                                      "checkpoint metrics", err);
        if (st) return st;
        v = vector_find(t->metrics, t->n_metrics, name);
    }
    double *grown = realloc(v->v, (v->n + 1) * sizeof *grown);
    RETURN_ERROR_IF(!grown, err, EFFDIM_ENOMEM, "checkpoint metrics: out of memory");
    grown[v->n++] = value;
    v->v = grown;
    return EFFDIM_OK;
}

effdim_status effdim_checkpoint_append_epoch(effdim_checkpoint *c, double loss, double accuracy,
                                             double test_loss, double test_accuracy,
                                             effdim_error *err)
{
    effdim_status st = training_ensure(c, err);
    const double values[N_METRICS] = {loss, accuracy, test_loss, test_accuracy};
    for (size_t i = 0; !st && i < N_METRICS; ++i)
        st = metric_append(c->training, metric_names[i], values[i], err);
    if (!st) c->training->epochs += 1;
    return st;
}

const double *effdim_checkpoint_metric(const effdim_checkpoint *c, const char *name, size_t *n)
{
    if (n) *n = 0;
    if (!c || !c->training) return NULL;
    effdim_named_vector *v = vector_find(c->training->metrics, c->training->n_metrics, name);
    if (!v) return NULL;
    if (n) *n = v->n;
    return v->v;
}

/* Names with a fixed meaning in /training (not settable as extras). */
static int training_reserved(const char *name)
{
    static const char *const fixed[] = {"data_spec", "test_spec", "seed", "epochs",
                                        "version",   "created"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; ++i)
        if (!strcmp(name, fixed[i])) return 1;
    for (size_t i = 0; i < N_METRICS; ++i)
        if (!strcmp(name, metric_names[i])) return 1;
    return 0;
}

effdim_status effdim_checkpoint_set_training_string(effdim_checkpoint *c, const char *name,
                                                    const char *value, effdim_error *err)
{
    RETURN_ERROR_IF(name && training_reserved(name), err, EFFDIM_EINVAL,
                    "checkpoint: training attribute '%s' has a fixed meaning", name);
    effdim_status st = training_ensure(c, err);
    if (st) return st;
    return attr_set_string(&c->training->extras, &c->training->n_extras, name, value,
                           "checkpoint training attribute", err);
}

effdim_status effdim_checkpoint_set_training_number(effdim_checkpoint *c, const char *name,
                                                    double value, effdim_error *err)
{
    RETURN_ERROR_IF(name && training_reserved(name), err, EFFDIM_EINVAL,
                    "checkpoint: training attribute '%s' has a fixed meaning", name);
    effdim_status st = training_ensure(c, err);
    if (st) return st;
    return attr_set_number(&c->training->extras, &c->training->n_extras, name, value,
                           "checkpoint training attribute", err);
}

const effdim_checkpoint_attr *effdim_checkpoint_training_attr(const effdim_checkpoint *c,
                                                        const char *name)
{
    if (!c || !c->training) return NULL;
    return attr_find(c->training->extras, c->training->n_extras, name);
}

/* ======================================================================
 * Saving
 * ====================================================================== */

static effdim_status write_attr(hid_t obj, const effdim_checkpoint_attr *a, effdim_error *err)
{
    if (a->is_string ? !a->str : !a->num) return EFFDIM_OK; /* a slot left empty by a failed set */
    if (a->is_string) {
        if (a->is_scalar && a->n == 1) return effdim_h5_attr_write_string(obj, a->name, a->str[0], err);
        return effdim_h5_attr_write_strings(obj, a->name, (const char *const *)a->str, a->n, err);
    }
    if (a->is_integer) {
        int64_t small[1];
        int64_t *iv = a->n <= 1 ? small : effdim_alloc(a->n, sizeof *iv, "attribute", err);
        if (!iv) return EFFDIM_ENOMEM;
        for (size_t i = 0; i < a->n; ++i) iv[i] = (int64_t)a->num[i];
        effdim_status st = a->is_scalar && a->n == 1
                               ? effdim_h5_attr_write_int64(obj, a->name, iv[0], err)
                               : effdim_h5_attr_write_int64s(obj, a->name, iv, a->n, err);
        if (iv != small) free(iv);
        return st;
    }
    if (a->is_scalar && a->n == 1) return effdim_h5_attr_write_double(obj, a->name, a->num[0], err);
    return effdim_h5_attr_write_doubles(obj, a->name, a->num, a->n, err);
}

/* /model's svd_* attributes (docs/file-formats.md, "Variational layers"). */
static effdim_status write_svd_attrs(hid_t g, const effdim_checkpoint_svd *v, size_t L,
                                     effdim_error *err)
{
    int64_t layers[EFFDIM_MLP_MAX_LAYERS];
    size_t n = 0;
    for (size_t l = 0; l < L; ++l)
        if (v->svd.variational[l]) layers[n++] = (int64_t)l;
    effdim_status st = effdim_h5_attr_write_int64s(g, "svd_layers", layers, n, err);
    if (!st) st = effdim_h5_attr_write_string(g, "svd_kl", effdim_svd_kl_name(v->svd.kl), err);
    if (!st) st = effdim_h5_attr_write_double(g, "svd_log_alpha_clip", v->svd.clip, err);
    if (!st) st = effdim_h5_attr_write_double(g, "svd_tiny", v->svd.tiny, err);
    if (!st) st = effdim_h5_attr_write_double(g, "svd_threshold", v->svd.threshold, err);
    if (!st) st = effdim_h5_attr_write_double(g, "svd_log_sigma2_init", v->svd.log_sigma2_init, err);
    return st;
}

static effdim_status write_model(hid_t file, const effdim_checkpoint *c, effdim_error *err)
{
    const effdim_mlp *m = &c->mlp;
    size_t L = m->n_layers;
    int64_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    const char *acts[EFFDIM_MLP_MAX_LAYERS];
    for (size_t i = 0; i <= L; ++i) sizes[i] = (int64_t)m->sizes[i];
    for (size_t i = 0; i < L; ++i) acts[i] = effdim_activation_name(m->act[i]);
    hid_t g;
    effdim_status st = effdim_h5_group(file, "model", &g, err);
    if (st) return st;
    st = effdim_h5_attr_write_int64s(g, "layer_sizes", sizes, L + 1, err);
    if (!st) st = effdim_h5_attr_write_strings(g, "activations", acts, L, err);
    if (!st) st = effdim_h5_attr_write_string(g, "loss", effdim_loss_name(m->loss), err);
    if (!st) st = effdim_h5_attr_write_string(g, "reduction", effdim_reduction_name(m->reduction), err);
    for (size_t l = 0; !st && l < L; ++l) {
        char name[32];
        hid_t lg;
        snprintf(name, sizeof name, "layer%zu", l);
        st = effdim_h5_group(g, name, &lg, err);
        if (st) break;
        size_t wdims[2] = {m->sizes[l + 1], m->sizes[l]};
        size_t bdims[1] = {m->sizes[l + 1]};
        st = effdim_h5_write_doubles(lg, "weight", 2, wdims, c->theta + m->w_off[l], err);
        if (!st) st = effdim_h5_write_doubles(lg, "bias", 1, bdims, c->theta + m->b_off[l], err);
        if (!st && c->svd && c->svd->svd.variational[l])
            st = effdim_h5_write_doubles(lg, "log_sigma2", 2, wdims,
                                         c->svd->log_sigma2 + c->svd->svd.ls_off[l], err);
        H5Gclose(lg);
    }
    if (!st && c->svd) st = write_svd_attrs(g, c->svd, L, err);
    H5Gclose(g);
    return st;
}

/* The on/off hyperparameters (PyTorch booleans) and counts: written as int64
 * (any numeric type is accepted on read, so files with 0.0/1.0 still load). */
static int hparam_is_integer(const char *name, double v)
{
    int named = !strcmp(name, "amsgrad") || !strcmp(name, "nesterov") || !strcmp(name, "debias") ||
                !strcmp(name, "rescale_lr") || !strcmp(name, "mc_samples");
    return named && v == floor(v) && fabs(v) <= 9007199254740992.0;
}

static effdim_status write_optimizer(hid_t file, const effdim_checkpoint_optimizer *o, size_t P,
                                     effdim_error *err)
{
    hid_t g;
    effdim_status st = effdim_h5_group(file, "optimizer", &g, err);
    if (st) return st;
    st = effdim_h5_attr_write_string(g, "name", o->name, err);
    if (!st) st = effdim_h5_attr_write_int64(g, "step", o->step, err);
    for (size_t i = 0; !st && i < o->n_hparams; ++i) {
        const effdim_named_value *h = &o->hparams[i];
        st = hparam_is_integer(h->name, h->value)
                 ? effdim_h5_attr_write_int64(g, h->name, (int64_t)h->value, err)
                 : effdim_h5_attr_write_double(g, h->name, h->value, err);
    }
    for (size_t i = 0; !st && i < o->n_extras; ++i) st = write_attr(g, &o->extras[i], err);
    for (size_t i = 0; !st && i < o->n_state; ++i) {
        size_t dims[1] = {P};
        if (o->state[i].n != P) {
            st = effdim_error_set(err, EFFDIM_EINVAL,
                                  "checkpoint: optimizer state '%s' has %zu values, expected %zu",
                                  o->state[i].name, o->state[i].n, P);
            break;
        }
        st = effdim_h5_write_doubles(g, o->state[i].name, 1, dims, o->state[i].v, err);
    }
    H5Gclose(g);
    return st;
}

static effdim_status write_training(hid_t file, const effdim_checkpoint_training *t, effdim_error *err)
{
    char created[64];
    hid_t g;
    effdim_status st = effdim_h5_group(file, "training", &g, err);
    if (st) return st;
    if (t->data_spec) st = effdim_h5_attr_write_string(g, "data_spec", t->data_spec, err);
    if (!st && t->test_spec) st = effdim_h5_attr_write_string(g, "test_spec", t->test_spec, err);
    if (!st && t->has_seed) st = effdim_h5_attr_write_int64(g, "seed", (int64_t)t->seed, err);
    if (!st) st = effdim_h5_attr_write_int64(g, "epochs", (int64_t)t->epochs, err);
    /* per-epoch arrays are data sets: an attribute stops at HDF5's 64 KiB
     * (about 8,180 epochs) and the whole save would fail after the run */
    for (size_t i = 0; !st && i < t->n_metrics; ++i) {
        size_t dims[1] = {t->metrics[i].n};
        st = effdim_h5_write_doubles(g, t->metrics[i].name, 1, dims, t->metrics[i].v, err);
    }
    if (!st)
        st = effdim_h5_attr_write_string(g, "version", t->version ? t->version : effdim_version(),
                                         err);
    if (!st)
        st = effdim_h5_attr_write_string(
            g, "created", t->created ? t->created : effdim_now_iso(created, sizeof created), err);
    for (size_t i = 0; !st && i < t->n_extras; ++i) st = write_attr(g, &t->extras[i], err);
    H5Gclose(g);
    return st;
}

/* The whole file, into an open (temporary) HDF5 file. */
static effdim_status write_all(hid_t file, const effdim_checkpoint *c, effdim_error *err)
{
    effdim_status st = effdim_h5_attr_write_string(file, "format", EFFDIM_CHECKPOINT_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(file, "format_version", EFFDIM_CHECKPOINT_VERSION, err);
    if (!st) st = write_model(file, c, err);
    if (!st && c->optimizer)
        st = write_optimizer(file, c->optimizer, effdim_checkpoint_n_optim(c), err);
    if (!st && c->training) st = write_training(file, c->training, err);
    return st;
}

effdim_status effdim_checkpoint_save(const effdim_checkpoint *c, const char *path,
                                     effdim_error *err)
{
    RETURN_ERROR_IF(!c || !c->theta, err, EFFDIM_EINVAL, "%s: no checkpoint to save",
                    path ? path : "");
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(c->theta, c->mlp.n_params, &bad), err, EFFDIM_EDOM,
                    "%s: refusing to save: parameter %zu is %g (training diverged?)", path, bad,
                    c->theta[bad]);
    RETURN_ERROR_IF(c->svd && !effdim_all_finite(c->svd->log_sigma2, c->svd->svd.n_weights, &bad),
                    err, EFFDIM_EDOM, "%s: refusing to save: log_sigma2[%zu] is %g (training "
                    "diverged?)", path, bad, c->svd->log_sigma2[bad]);
    effdim_h5_atomic a;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    st = write_all(a.file, c, err);
    if (!st) st = effdim_h5_atomic_commit(&a, err);
    if (st) effdim_h5_atomic_abort(&a);
    return st;
}

/* ======================================================================
 * Loading
 * ====================================================================== */

/* The state of one load, for messages ("path: /object: ..."). */
typedef struct loader {
    const char *path;
    hid_t file;
    effdim_checkpoint *c;
    effdim_error *err;
    effdim_status st; /* first failure inside an iteration callback */
} loader;

static effdim_status check_format(loader *ld)
{
    char fmt[128];
    effdim_error *err = ld->err;
    RETURN_ERROR_IF(!effdim_h5_has_attr(ld->file, "format"), err, EFFDIM_EFORMAT,
                    "%s: /: attribute 'format' is missing, expected \"%s\" (not an effdim checkpoint)",
                    ld->path, EFFDIM_CHECKPOINT_FORMAT);
    if (effdim_h5_attr_read_string(ld->file, "format", fmt, sizeof fmt, NULL))
        return effdim_error_set(err, EFFDIM_EFORMAT,
                                "%s: /: attribute 'format' is not a string, expected \"%s\"",
                                ld->path, EFFDIM_CHECKPOINT_FORMAT);
    RETURN_ERROR_IF(strcmp(fmt, EFFDIM_CHECKPOINT_FORMAT) != 0, err, EFFDIM_EFORMAT,
                    "%s: /: format is \"%s\", expected \"%s\"", ld->path, fmt,
                    EFFDIM_CHECKPOINT_FORMAT);
    int64_t version;
    if (effdim_h5_attr_read_int64(ld->file, "format_version", &version, NULL))
        return effdim_error_set(err, EFFDIM_EFORMAT,
                                "%s: /: attribute 'format_version' is missing or not an integer, "
                                "expected %d",
                                ld->path, EFFDIM_CHECKPOINT_VERSION);
    RETURN_ERROR_IF(version > EFFDIM_CHECKPOINT_VERSION, err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%d); upgrade effdim",
                    ld->path, (long long)version, EFFDIM_CHECKPOINT_VERSION);
    RETURN_ERROR_IF(version < 1, err, EFFDIM_EFORMAT, "%s: /: format_version %lld, expected %d",
                    ld->path, (long long)version, EFFDIM_CHECKPOINT_VERSION);
    return EFFDIM_OK;
}

/* Read a scalar string attribute of /model into buf. */
static effdim_status model_string(loader *ld, hid_t g, const char *name, char *buf, size_t cap)
{
    effdim_error e;
    effdim_status st = effdim_h5_attr_read_string(g, name, buf, cap, &e);
    if (st == EFFDIM_ENOTFOUND)
        return effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /model: attribute '%s' is missing",
                                ld->path, name);
    if (st)
        return effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /model: attribute '%s' must be a "
                                "string", ld->path, name);
    return EFFDIM_OK;
}

/* layer_sizes, activations, loss, reduction -> ld->c->mlp */
static effdim_status read_model_attrs(loader *ld, hid_t g)
{
    effdim_error *err = ld->err;
    int64_t sizes[EFFDIM_MLP_MAX_LAYERS + 2];
    size_t n = 0;
    effdim_error e;
    if (!effdim_h5_has_attr(g, "layer_sizes"))
        return effdim_error_set(err, EFFDIM_EFORMAT,
                                "%s: /model: attribute 'layer_sizes' is missing", ld->path);
    if (effdim_h5_attr_read_int64s(g, "layer_sizes", sizes, EFFDIM_MLP_MAX_LAYERS + 1, &n, &e))
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s (layer_sizes: at most %d integers)", e.msg,
                                EFFDIM_MLP_MAX_LAYERS + 1);
    RETURN_ERROR_IF(n < 2, err, EFFDIM_EFORMAT,
                    "%s: /model: layer_sizes has %zu entries, expected at least 2 (input, output)",
                    ld->path, n);
    size_t L = n - 1, usizes[EFFDIM_MLP_MAX_LAYERS + 1];
    for (size_t i = 0; i < n; ++i) {
        RETURN_ERROR_IF(sizes[i] < 1, err, EFFDIM_EFORMAT,
                        "%s: /model: layer_sizes[%zu] is %lld, expected a positive width", ld->path,
                        i, (long long)sizes[i]);
        usizes[i] = (size_t)sizes[i];
    }
    char **acts = NULL;
    size_t n_acts = 0;
    effdim_status st = effdim_h5_attr_read_strings(g, "activations", &acts, &n_acts, &e);
    if (st)
        return effdim_error_set(err, EFFDIM_EFORMAT,
                                "%s: /model: attribute 'activations' is %s, expected %zu strings",
                                ld->path, st == EFFDIM_ENOTFOUND ? "missing" : "not strings", L);
    effdim_activation act[EFFDIM_MLP_MAX_LAYERS];
    if (n_acts != L)
        st = effdim_error_set(err, EFFDIM_EFORMAT,
                              "%s: /model: activations has %zu entries, expected %zu (one per layer "
                              "from layer_sizes)", ld->path, n_acts, L);
    for (size_t i = 0; !st && i < L; ++i)
        if (effdim_activation_parse(acts[i], &act[i], NULL))
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: /model: activations[%zu] is '%s', expected one of identity, "
                                  "relu, tanh, sigmoid, softplus, gelu, elu", ld->path, i, acts[i]);
    effdim_h5_strings_free(acts, n_acts);
    if (st) return st;
    char buf[64];
    effdim_loss loss;
    effdim_reduction red = EFFDIM_REDUCTION_MEAN;
    st = model_string(ld, g, "loss", buf, sizeof buf);
    if (st) return st;
    RETURN_ERROR_IF(effdim_loss_parse(buf, &loss, NULL), err, EFFDIM_EFORMAT,
                    "%s: /model: loss is '%s', expected cross_entropy, mse or bce", ld->path,
                    buf);
    if (effdim_h5_has_attr(g, "reduction")) {
        st = model_string(ld, g, "reduction", buf, sizeof buf);
        if (st) return st;
        RETURN_ERROR_IF(effdim_reduction_parse(buf, &red, NULL), err, EFFDIM_EFORMAT,
                        "%s: /model: reduction is '%s', expected mean or sum", ld->path, buf);
    }
    st = effdim_mlp_init(&ld->c->mlp, L, usizes, act, loss, red, &e);
    RETURN_ERROR_IF(st, err, EFFDIM_EFORMAT, "%s: /model: %s", ld->path, e.msg);
    return EFFDIM_OK;
}

/* Read one float array of the given shape into dst, refusing NaN/Inf; with
 * dst == NULL only check that it exists with that shape and stores its values. */
static effdim_status read_tensor(loader *ld, hid_t g, const char *obj, const char *name, int rank,
                                 const size_t *want, double *dst)
{
    effdim_error *err = ld->err;
    int r = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_error e;
    effdim_status st = effdim_h5_shape(g, name, &r, dims, &cls, &e);
    if (st == EFFDIM_ENOTFOUND)
        return effdim_error_set(err, EFFDIM_ENOTFOUND, "%s: %s/%s: data set is missing", ld->path,
                                obj, name);
    if (st) return effdim_error_set(err, EFFDIM_EFORMAT, "%s", e.msg);
    if (r != rank || dims[0] != want[0] || (rank == 2 && dims[1] != want[1])) {
        char got[96] = "(";
        for (int i = 0; i < r; ++i)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", i ? ", " : "", dims[i]);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s)", r == 1 ? "," : "");
        if (rank == 2)
            return effdim_error_set(err, EFFDIM_EFORMAT,
                                    "%s: %s/%s: shape %s, expected (%zu, %zu) from layer_sizes",
                                    ld->path, obj, name, got, want[0], want[1]);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: %s/%s: shape %s, expected (%zu,) from "
                                "layer_sizes", ld->path, obj, name, got, want[0]);
    }
    RETURN_ERROR_IF(cls != H5T_FLOAT, err, EFFDIM_EFORMAT,
                    "%s: %s/%s: type is not floating point, expected float64 or float32", ld->path,
                    obj, name);
    if (!dst) return EFFDIM_OK;
    size_t count = rank == 2 ? want[0] * want[1] : want[0];
    if (effdim_h5_read_doubles(g, name, dst, count, &e))
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: %s/%s: cannot read (corrupt or "
                                "truncated file?)", ld->path, obj, name);
    size_t bad;
    if (!effdim_all_finite(dst, count, &bad)) {
        if (rank == 2)
            return effdim_error_set(err, EFFDIM_EDOM, "%s: %s/%s: value %g at index (%zu, %zu), "
                                    "expected finite numbers", ld->path, obj, name, dst[bad],
                                    bad / want[1], bad % want[1]);
        return effdim_error_set(err, EFFDIM_EDOM, "%s: %s/%s: value %g at index %zu, expected "
                                "finite numbers", ld->path, obj, name, dst[bad], bad);
    }
    return EFFDIM_OK;
}

/* Every layer's weight and bias (check_only: their shapes and storage, so
 * that theta is allocated only for what the file really holds). */
static effdim_status read_layers(loader *ld, hid_t g, int check_only)
{
    const effdim_mlp *m = &ld->c->mlp;
    effdim_status st = EFFDIM_OK;
    for (size_t l = 0; !st && l < m->n_layers; ++l) {
        char name[32], obj[48];
        snprintf(name, sizeof name, "layer%zu", l);
        snprintf(obj, sizeof obj, "/model/%s", name);
        if (!effdim_h5_has_link(g, name))
            return effdim_error_set(ld->err, EFFDIM_ENOTFOUND,
                                    "%s: %s: layer is missing, expected %zu layers from layer_sizes",
                                    ld->path, obj, m->n_layers);
        hid_t lg = H5Gopen2(g, name, H5P_DEFAULT);
        if (lg < 0)
            return effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: %s: not a group", ld->path, obj);
        size_t wdims[2] = {m->sizes[l + 1], m->sizes[l]};
        size_t bdims[1] = {m->sizes[l + 1]};
        st = read_tensor(ld, lg, obj, "weight", 2, wdims,
                         check_only ? NULL : ld->c->theta + m->w_off[l]);
        if (!st)
            st = read_tensor(ld, lg, obj, "bias", 1, bdims,
                             check_only ? NULL : ld->c->theta + m->b_off[l]);
        H5Gclose(lg);
    }
    if (st) return st;
    char extra[32];
    snprintf(extra, sizeof extra, "layer%zu", m->n_layers);
    RETURN_ERROR_IF(effdim_h5_has_link(g, extra), ld->err, EFFDIM_EFORMAT,
                    "%s: /model/%s: present, but layer_sizes describes only %zu layers", ld->path,
                    extra, m->n_layers);
    return EFFDIM_OK;
}

/* -- variational layers: /model svd_* attributes, layer{i}/log_sigma2 -- */

/* An optional numeric svd_* attribute of /model into *v (left at its default). */
static effdim_status svd_number(loader *ld, hid_t g, const char *name, double *v)
{
    if (!effdim_h5_has_attr(g, name)) return EFFDIM_OK;
    effdim_error e;
    RETURN_ERROR_IF(effdim_h5_attr_read_double(g, name, v, &e) || !isfinite(*v), ld->err,
                    EFFDIM_EFORMAT, "%s: /model: attribute '%s' must be one finite number",
                    ld->path, name);
    return EFFDIM_OK;
}

/* svd_layers and the settings into s; a layer that is not listed must not
 * hold log_sigma2. Returns 0 layers (s untouched) for a deterministic file. */
static effdim_status read_svd_attrs(loader *ld, hid_t g, effdim_svd *s, size_t *n_var)
{
    const effdim_mlp *m = &ld->c->mlp;
    effdim_error e;
    *n_var = 0;
    *s = effdim_svd_default(m);
    if (!effdim_h5_has_attr(g, "svd_layers")) {
        for (size_t l = 0; l < m->n_layers; ++l) {
            char name[48];
            snprintf(name, sizeof name, "layer%zu/log_sigma2", l);
            RETURN_ERROR_IF(effdim_h5_has_link(g, name), ld->err, EFFDIM_EFORMAT,
                            "%s: /model/%s: present, but /model has no attribute 'svd_layers' "
                            "(expected the variational layers' indices)", ld->path, name);
        }
        return EFFDIM_OK;
    }
    int64_t layers[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t n = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64s(g, "svd_layers", layers, EFFDIM_MLP_MAX_LAYERS,
                                               &n, &e) || n == 0,
                    ld->err, EFFDIM_EFORMAT,
                    "%s: /model: attribute 'svd_layers' must be 1 to %zu layer indices", ld->path,
                    m->n_layers);
    for (size_t i = 0; i < n; ++i) {
        RETURN_ERROR_IF(layers[i] < 0 || (size_t)layers[i] >= m->n_layers ||
                            (i && layers[i] <= layers[i - 1]),
                        ld->err, EFFDIM_EFORMAT,
                        "%s: /model: svd_layers[%zu] is %lld, expected increasing layer indices "
                        "in [0, %zu)", ld->path, i, (long long)layers[i], m->n_layers);
        s->variational[layers[i]] = 1;
    }
    char kl[32];
    effdim_status st = model_string(ld, g, "svd_kl", kl, sizeof kl);
    if (st) return st;
    RETURN_ERROR_IF(effdim_svd_kl_parse(kl, &s->kl, &e), ld->err, EFFDIM_EFORMAT,
                    "%s: /model: svd_kl is '%s', expected sparsevd or ard", ld->path, kl);
    if ((st = svd_number(ld, g, "svd_log_alpha_clip", &s->clip)) ||
        (st = svd_number(ld, g, "svd_tiny", &s->tiny)) ||
        (st = svd_number(ld, g, "svd_threshold", &s->threshold)) ||
        (st = svd_number(ld, g, "svd_log_sigma2_init", &s->log_sigma2_init)))
        return st;
    for (size_t l = 0; l < m->n_layers; ++l) s->ls_off[l] = 0;
    size_t off = 0;
    for (size_t l = 0; l < m->n_layers; ++l) {
        s->ls_off[l] = off;
        if (s->variational[l]) off += m->sizes[l + 1] * m->sizes[l];
    }
    s->n_weights = off;
    RETURN_ERROR_IF(effdim_svd_check(s, m, &e), ld->err, EFFDIM_EFORMAT, "%s: /model: %s",
                    ld->path, e.msg);
    *n_var = n;
    return EFFDIM_OK;
}

static effdim_status read_svd(loader *ld, hid_t g)
{
    const effdim_mlp *m = &ld->c->mlp;
    effdim_svd s;
    size_t n_var = 0;
    effdim_status st = read_svd_attrs(ld, g, &s, &n_var);
    if (st || n_var == 0) return st;
    effdim_checkpoint_svd *v = effdim_calloc(1, sizeof *v, "checkpoint svd", ld->err);
    if (!v) return EFFDIM_ENOMEM;
    ld->c->svd = v; /* freed with the checkpoint on failure */
    v->svd = s;
    v->log_sigma2 = effdim_alloc(s.n_weights, sizeof(double), "checkpoint log_sigma2", ld->err);
    if (!v->log_sigma2) return EFFDIM_ENOMEM;
    for (size_t l = 0; !st && l < m->n_layers; ++l) {
        char name[32], obj[48];
        snprintf(name, sizeof name, "layer%zu", l);
        snprintf(obj, sizeof obj, "/model/%s", name);
        hid_t lg = H5Gopen2(g, name, H5P_DEFAULT);
        if (lg < 0)
            return effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: %s: not a group", ld->path, obj);
        int has = effdim_h5_has_link(lg, "log_sigma2");
        size_t wdims[2] = {m->sizes[l + 1], m->sizes[l]};
        if (s.variational[l] && !has)
            st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                  "%s: %s/log_sigma2: data set is missing, expected float64 "
                                  "(%zu, %zu) (svd_layers lists layer %zu as variational)",
                                  ld->path, obj, wdims[0], wdims[1], l);
        else if (!s.variational[l] && has)
            st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                  "%s: %s/log_sigma2: present, but svd_layers does not list layer "
                                  "%zu", ld->path, obj, l);
        else if (s.variational[l])
            st = read_tensor(ld, lg, obj, "log_sigma2", 2, wdims, v->log_sigma2 + s.ls_off[l]);
        H5Gclose(lg);
    }
    return st;
}

static effdim_status read_model(loader *ld)
{
    RETURN_ERROR_IF(!effdim_h5_has_link(ld->file, "model"), ld->err, EFFDIM_ENOTFOUND,
                    "%s: /model: group is missing", ld->path);
    hid_t g = H5Gopen2(ld->file, "model", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, ld->err, EFFDIM_EFORMAT, "%s: /model: not a group", ld->path);
    effdim_status st = read_model_attrs(ld, g);
    if (!st) st = read_layers(ld, g, 1); /* before the allocation layer_sizes asks for */
    if (!st) {
        ld->c->theta = effdim_calloc(ld->c->mlp.n_params, sizeof(double), "checkpoint parameters",
                                     ld->err);
        if (!ld->c->theta) st = EFFDIM_ENOMEM;
    }
    if (!st) st = read_layers(ld, g, 0);
    if (!st) st = read_svd(ld, g);
    H5Gclose(g);
    return st;
}

/* The integer behind one enum value of `size` bytes (native byte order). */
static double enum_value(const unsigned char *p, size_t size, int is_signed)
{
    int64_t s = 0;
    uint64_t u = 0;
    if (size == 1) {
        s = (int8_t)p[0];
        u = p[0];
    } else if (size == 2) {
        int16_t a;
        uint16_t b;
        memcpy(&a, p, 2);
        memcpy(&b, p, 2);
        s = a;
        u = b;
    } else if (size == 4) {
        int32_t a;
        uint32_t b;
        memcpy(&a, p, 4);
        memcpy(&b, p, 4);
        s = a;
        u = b;
    } else {
        memcpy(&s, p, 8);
        memcpy(&u, p, 8);
    }
    return is_signed ? (double)s : (double)u;
}

/* Numbers (any integer or float type) of an open attribute into out->num. */
static herr_t read_numbers(hid_t at, H5T_class_t cls, effdim_checkpoint_attr *out, effdim_error *err)
{
    out->is_integer = cls == H5T_INTEGER;
    out->num = effdim_alloc(out->n ? out->n : 1, sizeof(double), "attribute", err);
    if (!out->num) return -1;
    return H5Aread(at, H5T_NATIVE_DOUBLE, out->num);
}

/* An enum attribute (h5py writes numpy bools as an enum over int8) as the
 * integers behind its values. */
static herr_t read_enum(hid_t at, hid_t ft, effdim_checkpoint_attr *out, effdim_error *err)
{
    unsigned char raw[64 * 8];
    hid_t base = H5Tget_super(ft);
    size_t size = H5Tget_size(base);
    int is_signed = H5Tget_sign(base) == H5T_SGN_2;
    H5Tclose(base);
    if (size > 8 || out->n > 64) return -1;
    out->is_integer = 1;
    out->num = effdim_alloc(out->n ? out->n : 1, sizeof(double), "attribute", err);
    if (!out->num) return -1;
    hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
    herr_t rs = H5Aread(at, mt, raw);
    H5Tclose(mt);
    for (size_t i = 0; rs >= 0 && i < out->n; ++i) out->num[i] = enum_value(raw + i * size, size, is_signed);
    return rs;
}

/* Any attribute into a generic effdim_checkpoint_attr: strings, numbers, or
 * h5py's boolean enums; a scalar or a 1-D array. */
static effdim_status read_any_attr(loader *ld, hid_t obj, const char *objname, const char *name,
                                   effdim_checkpoint_attr *out)
{
    effdim_error e;
    memset(out, 0, sizeof *out);
    if (copy_name(out->name, name, objname, &e))
        return effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: %s: attribute name '%.80s' is too "
                                "long", ld->path, objname, name);
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT);
    RETURN_ERROR_IF(at < 0, ld->err, EFFDIM_EFORMAT, "%s: %s: cannot open attribute '%s'",
                    ld->path, objname, name);
    hid_t ft = H5Aget_type(at), sp = H5Aget_space(at);
    H5T_class_t cls = H5Tget_class(ft);
    int rank = H5Sget_simple_extent_ndims(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    out->is_scalar = rank == 0 && np == 1; /* H5S_NULL also has rank 0, but no value */
    out->n = np > 0 ? (size_t)np : 0;
    herr_t rs = -1;
    effdim_status st = EFFDIM_OK;
    effdim_error_clear(&e);
    if (rank <= 1 && np >= 0 && cls == H5T_STRING) {
        out->is_string = 1;
        st = effdim_h5_attr_read_strings(obj, name, &out->str, &out->n, &e);
        if (st) st = effdim_error_set(ld->err, st, "%s", e.msg);
        rs = 0;
    } else if (rank <= 1 && np >= 0 && (cls == H5T_INTEGER || cls == H5T_FLOAT)) {
        rs = read_numbers(at, cls, out, &e);
    } else if (rank <= 1 && np >= 0 && cls == H5T_ENUM) {
        rs = read_enum(at, ft, out, &e);
    }
    H5Tclose(ft);
    H5Aclose(at);
    if (!st && rs < 0 && e.code == EFFDIM_ENOMEM) st = effdim_error_set(ld->err, EFFDIM_ENOMEM, "%s", e.msg);
    if (!st && rs < 0)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: %s: attribute '%s': cannot read it, "
                              "expected a string or numbers, a scalar or 1-D", ld->path, objname,
                              name);
    if (st) attr_clear(out);
    return st;
}

/* A scalar number attribute that must be a non-negative integer. */
static effdim_status attr_count(loader *ld, const char *objname, const effdim_checkpoint_attr *a,
                                uint64_t *v)
{
    RETURN_ERROR_IF(a->is_string || a->n != 1 || !(a->num[0] >= 0) || a->num[0] != floor(a->num[0])
                        || a->num[0] > 9.2e18,
                    ld->err, EFFDIM_EFORMAT,
                    "%s: %s: attribute '%s' must be one non-negative integer", ld->path, objname,
                    a->name);
    *v = (uint64_t)a->num[0];
    return EFFDIM_OK;
}

/* -- /optimizer -- */

/* The hyperparameters effdim's optimisers read: each must be one number. */
static int hparam_is_number(const char *name)
{
    static const char *const names[] = {"lr",    "momentum", "dampening", "weight_decay", "beta1",
                                        "beta2", "eps",      "nesterov",  "amsgrad"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

/* "a string", "empty", "3 values" for messages */
static const char *attr_shape(const effdim_checkpoint_attr *a)
{
    static _Thread_local char buf[48];
    if (a->is_string) return a->n == 1 ? "a string" : "strings";
    if (a->n == 0) return "empty (no value)";
    if (a->n == 1) return "a number";
    snprintf(buf, sizeof buf, "%zu values", a->n);
    return buf;
}

/* Optimiser state that is a running mean of squares: never negative (a
 * negative entry turns into a NaN diagonal or a NaN step). */
static int state_is_nonnegative(const char *name)
{
    return !strcmp(name, "exp_avg_sq") || !strcmp(name, "max_exp_avg_sq");
}

static herr_t optimizer_attr_cb(hid_t g, const char *name, const H5A_info_t *info, void *data)
{
    loader *ld = data;
    effdim_checkpoint_optimizer *o = ld->c->optimizer;
    effdim_checkpoint_attr a;
    effdim_status st = read_any_attr(ld, g, "/optimizer", name, &a);
    if (!st && !strcmp(name, "name")) {
        if (!a.is_string || a.n != 1 || !a.str[0][0] || strlen(a.str[0]) >= EFFDIM_CKPT_NAME_MAX)
            st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                  "%s: /optimizer: attribute 'name' must be a short string",
                                  ld->path);
        else
            snprintf(o->name, sizeof o->name, "%s", a.str[0]);
        attr_clear(&a);
    } else if (!st && !strcmp(name, "step")) {
        uint64_t step = 0;
        st = attr_count(ld, "/optimizer", &a, &step);
        o->step = (int64_t)step;
        attr_clear(&a);
    } else if (!st && hparam_is_number(name) && (a.is_string || !a.is_scalar)) {
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                              "%s: /optimizer: attribute '%s' is %s, expected one number", ld->path,
                              name, attr_shape(&a));
        attr_clear(&a);
    } else if (!st && !strcmp(name, "schedule") && (!a.is_string || a.n != 1)) {
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                              "%s: /optimizer: attribute 'schedule' is %s, expected one string "
                              "such as \"cosine:steps=1000\"", ld->path, attr_shape(&a));
        attr_clear(&a);
    } else if (!st && !a.is_string && a.is_scalar) {
        effdim_named_value *v = list_push((void **)&o->hparams, &o->n_hparams, sizeof *o->hparams,
                                          "optimizer hyperparameters", ld->err);
        if (!v) st = EFFDIM_ENOMEM;
        if (v) {
            memcpy(v->name, a.name, sizeof v->name);
            v->value = a.num[0];
        }
        attr_clear(&a);
    } else if (!st) {
        effdim_checkpoint_attr *slot = list_push((void **)&o->extras, &o->n_extras, sizeof *o->extras,
                                           "optimizer attributes", ld->err);
        if (!slot) {
            attr_clear(&a);
            st = EFFDIM_ENOMEM;
        } else {
            *slot = a;
        }
    }
    ld->st = st;
    return st ? -1 : 0;
}

static herr_t optimizer_link_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    loader *ld = data;
    size_t P = effdim_checkpoint_n_optim(ld->c);
    char obj[EFFDIM_CKPT_NAME_MAX + 64];
    snprintf(obj, sizeof obj, "/optimizer/%.*s", EFFDIM_CKPT_NAME_MAX + 8, name);
    effdim_error e;
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_status st = EFFDIM_OK;
    if (strlen(name) >= EFFDIM_CKPT_NAME_MAX)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: %s: state vector name is too long",
                              ld->path, obj);
    else if (effdim_h5_shape(g, name, &rank, dims, &cls, &e))
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s (expected a float vector of length %zu)",
                              e.msg, P);
    else if (rank != 1)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                              "%s: %s: rank %d, expected a vector of length %zu (the number of "
                              "parameters)", ld->path, obj, rank, P);
    else if (dims[0] != P)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                              "%s: %s: length %zu, expected %zu (the number of parameters)",
                              ld->path, obj, dims[0], P);
    else if (cls != H5T_FLOAT)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                              "%s: %s: not floating point, expected float64 or float32", ld->path,
                              obj);
    double *v = NULL;
    if (!st) {
        v = effdim_alloc(P, sizeof *v, "optimizer state", ld->err);
        if (!v) st = EFFDIM_ENOMEM;
    }
    if (!st && effdim_h5_read_doubles(g, name, v, P, &e))
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: %s: cannot read (corrupt or truncated "
                              "file?)", ld->path, obj);
    size_t bad;
    if (!st && !effdim_all_finite(v, P, &bad))
        st = effdim_error_set(ld->err, EFFDIM_EDOM, "%s: %s: value %g at index %zu, expected finite "
                              "numbers", ld->path, obj, v[bad], bad);
    for (size_t i = 0; !st && state_is_nonnegative(name) && i < P; ++i)
        if (v[i] < 0.0)
            st = effdim_error_set(ld->err, EFFDIM_EDOM, "%s: %s: value %g at index %zu, expected "
                                  ">= 0 (a running mean of squared gradients)", ld->path, obj, v[i], i);
    if (!st) {
        effdim_checkpoint_optimizer *o = ld->c->optimizer;
        effdim_named_vector *nv = list_push((void **)&o->state, &o->n_state, sizeof *o->state,
                                            "optimizer state", ld->err);
        if (!nv) st = EFFDIM_ENOMEM;
        if (nv) {
            snprintf(nv->name, sizeof nv->name, "%s", name);
            nv->v = v;
            nv->n = P;
            v = NULL;
        }
    }
    free(v);
    ld->st = st;
    return st ? -1 : 0;
}

static effdim_status read_optimizer(loader *ld)
{
    hid_t g = H5Gopen2(ld->file, "optimizer", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, ld->err, EFFDIM_EFORMAT, "%s: /optimizer: not a group", ld->path);
    effdim_status st = EFFDIM_OK;
    ld->c->optimizer = effdim_calloc(1, sizeof *ld->c->optimizer, "optimizer", ld->err);
    if (!ld->c->optimizer) st = EFFDIM_ENOMEM;
    if (!st && !effdim_h5_has_attr(g, "name"))
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /optimizer: attribute 'name' is missing",
                              ld->path);
    if (!st && !effdim_h5_has_attr(g, "step"))
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /optimizer: attribute 'step' is missing",
                              ld->path);
    hsize_t idx = 0;
    ld->st = EFFDIM_OK;
    if (!st && H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, optimizer_attr_cb, ld) < 0)
        st = ld->st ? ld->st
                    : effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                       "%s: /optimizer: cannot list the attributes", ld->path);
    idx = 0;
    if (!st && H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, optimizer_link_cb, ld) < 0)
        st = ld->st ? ld->st
                    : effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                       "%s: /optimizer: cannot list the state vectors", ld->path);
    H5Gclose(g);
    return st;
}

/* -- /training -- */

static int is_metric(const char *name)
{
    for (size_t i = 0; i < N_METRICS; ++i)
        if (!strcmp(name, metric_names[i])) return 1;
    return 0;
}

/* Move a one-string attribute into *dst. */
static effdim_status take_string(loader *ld, effdim_checkpoint_attr *a, char **dst)
{
    if (!a->is_string || a->n != 1)
        return effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /training: attribute '%s' must be "
                                "one string", ld->path, a->name);
    free(*dst);
    *dst = a->str[0];
    a->str[0] = NULL;
    return EFFDIM_OK;
}

static herr_t training_attr_cb(hid_t g, const char *name, const H5A_info_t *info, void *data)
{
    loader *ld = data;
    effdim_checkpoint_training *t = ld->c->training;
    effdim_checkpoint_attr a;
    effdim_status st = read_any_attr(ld, g, "/training", name, &a);
    int keep = 0;
    if (st) {
        /* nothing read */
    } else if (!strcmp(name, "data_spec")) {
        st = take_string(ld, &a, &t->data_spec);
    } else if (!strcmp(name, "test_spec")) {
        st = take_string(ld, &a, &t->test_spec);
    } else if (!strcmp(name, "version")) {
        st = take_string(ld, &a, &t->version);
    } else if (!strcmp(name, "created")) {
        st = take_string(ld, &a, &t->created);
    } else if (!strcmp(name, "seed")) {
        st = attr_count(ld, "/training", &a, &t->seed);
        t->has_seed = !st;
    } else if (!strcmp(name, "epochs")) {
        st = attr_count(ld, "/training", &a, &t->epochs);
    } else if (is_metric(name)) {
        if (a.is_string)
            st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /training: attribute '%s' must be "
                                  "numbers (one per epoch)", ld->path, name);
        else
            st = vector_set(&t->metrics, &t->n_metrics, name, a.num, a.n, "training metrics",
                            ld->err);
    } else {
        effdim_checkpoint_attr *slot = list_push((void **)&t->extras, &t->n_extras, sizeof *t->extras,
                                           "training attributes", ld->err);
        if (!slot) st = EFFDIM_ENOMEM;
        if (slot) {
            *slot = a;
            keep = 1;
        }
    }
    if (!keep) attr_clear(&a);
    ld->st = st;
    return st ? -1 : 0;
}

/* A per-epoch array stored as a data set /training/NAME (float, 1-D). */
static herr_t training_link_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    loader *ld = data;
    effdim_checkpoint_training *t = ld->c->training;
    effdim_error e;
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    effdim_status st = EFFDIM_OK;
    if (strlen(name) >= EFFDIM_CKPT_NAME_MAX)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s: /training/%.80s: name is too long",
                              ld->path, name);
    else if (effdim_h5_shape(g, name, &rank, dims, &cls, &e) || rank != 1 || cls != H5T_FLOAT)
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT,
                              "%s: /training/%s: expected a 1-D float data set (one value per epoch)",
                              ld->path, name);
    double *v = NULL;
    if (!st) {
        v = effdim_alloc(dims[0] ? dims[0] : 1, sizeof *v, "training history", ld->err);
        if (!v) st = EFFDIM_ENOMEM;
    }
    if (!st && dims[0] && effdim_h5_read_doubles(g, name, v, dims[0], &e))
        st = effdim_error_set(ld->err, EFFDIM_EFORMAT, "%s", e.msg);
    if (!st)
        st = vector_set(&t->metrics, &t->n_metrics, name, v, dims[0], "training metrics", ld->err);
    free(v);
    ld->st = st;
    return st ? -1 : 0;
}

static effdim_status read_training(loader *ld)
{
    hid_t g = H5Gopen2(ld->file, "training", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, ld->err, EFFDIM_EFORMAT, "%s: /training: not a group", ld->path);
    effdim_status st = EFFDIM_OK;
    ld->c->training = effdim_calloc(1, sizeof *ld->c->training, "training", ld->err);
    if (!ld->c->training) st = EFFDIM_ENOMEM;
    hsize_t idx = 0;
    ld->st = EFFDIM_OK;
    if (!st && H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, training_attr_cb, ld) < 0)
        st = ld->st ? ld->st
                    : effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                       "%s: /training: cannot list the attributes", ld->path);
    idx = 0;
    if (!st && H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, training_link_cb, ld) < 0)
        st = ld->st ? ld->st
                    : effdim_error_set(ld->err, EFFDIM_EFORMAT,
                                       "%s: /training: cannot list the histories", ld->path);
    H5Gclose(g);
    return st;
}

effdim_status effdim_checkpoint_load(const char *path, effdim_checkpoint **out, effdim_error *err)
{
    *out = NULL;
    loader ld = {path, H5I_INVALID_HID, NULL, err, EFFDIM_OK};
    effdim_status st = effdim_h5_open_read(path, &ld.file, err);
    if (st) return st;
    ld.c = effdim_calloc(1, sizeof *ld.c, "checkpoint", err);
    if (!ld.c) st = EFFDIM_ENOMEM;
    if (!st) st = check_format(&ld);
    if (!st) st = read_model(&ld);
    if (!st && effdim_h5_has_link(ld.file, "optimizer")) st = read_optimizer(&ld);
    if (!st && effdim_h5_has_link(ld.file, "training")) st = read_training(&ld);
    H5Fclose(ld.file);
    if (st) {
        effdim_checkpoint_free(ld.c);
        return st;
    }
    *out = ld.c;
    return EFFDIM_OK;
}
