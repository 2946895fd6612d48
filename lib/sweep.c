/* lib/sweep.c: the sweep job (effdim/sweep.h): a grid of MLP configurations,
 * each trained, evaluated and measured (top-k Hessian eigenvalues, N_eff by
 * Ritz values and SLQ), one row per configuration in an HDF5 table.
 *
 * Sections: the config (JSON through cJSON, every key checked), the grid,
 * one configuration (data, model, training, curvature), the file (compound
 * table, atomic rewrite per row), the run (in process, or --jobs worker
 * processes sending rows to the parent over pipes), load and merge.
 *
 * Reference: Maddox, Benton and Wilson, "Rethinking parameter counting in
 * deep models: effective dimensionality revisited" (2020), Figure 1: test
 * loss and N_eff against width through double descent.
 */
#define _POSIX_C_SOURCE 200809L
#include "effdim/blas.h"
#include "effdim/sweep.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "effdim/checkpoint.h"
#include "effdim/compare.h"
#include "effdim/data.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/optim.h"
#include "effdim/spectrum.h"
#include "effdim/train.h"
#include "h5io.h"
#include "internal.h"

/* ---- the config ------------------------------------------------------------ */

struct effdim_sweep_config {
    char *json;       /* as given */
    char *canonical;  /* resolved, compact */
    char *data, *test;
    size_t widths[EFFDIM_SWEEP_MAX_AXIS], n_widths;
    size_t depths[EFFDIM_SWEEP_MAX_AXIS], n_depths;
    uint64_t seeds[EFFDIM_SWEEP_MAX_AXIS];
    size_t n_seeds;
    double noise[EFFDIM_SWEEP_MAX_AXIS];
    size_t n_noise;   /* 0: no label-noise axis */
    size_t ntrain[EFFDIM_SWEEP_MAX_AXIS], n_ntrain; /* 0: no size axis */
    effdim_activation act;
    int has_loss;
    effdim_loss loss;
    effdim_reduction reduction;
    effdim_init_scheme init;
    /* train */
    effdim_optim_kind opt;
    double lr, weight_decay, momentum;
    size_t batch, epochs;
    /* curvature */
    size_t k;
    double z[EFFDIM_SWEEP_MAX_Z];
    size_t nz;
    int slq, diag;
    size_t probes, slq_steps, max_matvecs, slq_budget, subset;
    double tol;
    effdim_hvp_method hvp;
    effdim_curvature op;
};

typedef struct jctx {
    const char *where;  /* file name */
    effdim_error *err;
    const char *prefix; /* "" or "train." / "curvature." for the keys inside */
} jctx;

static const char *const top_keys[] = {"data", "test", "widths", "depths", "seeds", "label_noise",
                                       "n_train", "act", "loss", "reduction", "init", "train",
                                       "curvature", NULL};
static const char *const train_keys[] = {"opt", "lr", "batch", "epochs", "weight_decay",
                                         "momentum", NULL};
static const char *const curv_keys[] = {"k", "z", "slq", "probes", "slq_steps", "hvp", "op", "tol",
                                        "max_matvecs", "slq_budget_matvecs", "subset", "diag",
                                        NULL};

static effdim_status check_keys(const jctx *j, const cJSON *obj, const char *prefix,
                                const char *const *known)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (size_t i = 0; known[i] && !ok; ++i) ok = !strcmp(it->string, known[i]);
        if (!ok) {
            char list[512] = "";
            for (size_t i = 0; known[i]; ++i) {
                strncat(list, known[i], sizeof list - strlen(list) - 3);
                if (known[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            return effdim_error_set(j->err, EFFDIM_EINVAL, "%s: unknown key '%s%s' (known: %s)",
                                    j->where, prefix, it->string, list);
        }
    }
    return EFFDIM_OK;
}

static effdim_status want_string(const jctx *j, const cJSON *obj, const char *key,
                                 const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return EFFDIM_OK;
    RETURN_ERROR_IF(!cJSON_IsString(v) || !v->valuestring[0], j->err, EFFDIM_EINVAL,
                    "%s: key '%s%s': expected a non-empty string", j->where, j->prefix, key);
    *out = v->valuestring;
    return EFFDIM_OK;
}

static effdim_status want_number(const jctx *j, const cJSON *obj, const char *key, double lo,
                                 double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return EFFDIM_OK;
    RETURN_ERROR_IF(!cJSON_IsNumber(v), j->err, EFFDIM_EINVAL, "%s: key '%s%s': expected a number",
                    j->where, j->prefix, key);
    RETURN_ERROR_IF(!(v->valuedouble >= lo && v->valuedouble <= hi), j->err, EFFDIM_EINVAL,
                    "%s: key '%s%s': %g is out of range, expected %g to %g", j->where, j->prefix, key,
                    v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return EFFDIM_OK;
}

static effdim_status check_int(const jctx *j, const char *key, const cJSON *v, double lo,
                               double hi, size_t *out)
{
    RETURN_ERROR_IF(!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble), j->err,
                    EFFDIM_EINVAL, "%s: key '%s%s': expected an integer", j->where, j->prefix, key);
    RETURN_ERROR_IF(!(v->valuedouble >= lo && v->valuedouble <= hi), j->err, EFFDIM_EINVAL,
                    "%s: key '%s%s': %.17g is out of range, expected %g to %g", j->where, j->prefix, key,
                    v->valuedouble, lo, hi);
    *out = (size_t)v->valuedouble;
    return EFFDIM_OK;
}

static effdim_status want_int(const jctx *j, const cJSON *obj, const char *key, double lo,
                              double hi, size_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v ? check_int(j, key, v, lo, hi, out) : EFFDIM_OK;
}

static effdim_status want_bool(const jctx *j, const cJSON *obj, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return EFFDIM_OK;
    RETURN_ERROR_IF(!cJSON_IsBool(v), j->err, EFFDIM_EINVAL, "%s: key '%s%s': expected true or false",
                    j->where, j->prefix, key);
    *out = cJSON_IsTrue(v);
    return EFFDIM_OK;
}

/* An array of up to cap numbers (a lone number is an array of one). Integers
 * when `integer`. */
static effdim_status want_list(const jctx *j, const cJSON *obj, const char *key, int integer,
                               double lo, double hi, size_t cap, double *out, size_t *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return EFFDIM_OK;
    const char *what = integer ? "integers" : "numbers";
    if (cJSON_IsNumber(v)) {
        size_t u = 0;
        if (integer && check_int(j, key, v, lo, hi, &u)) return j->err->code;
        double x = 0;
        if (!integer && want_number(j, obj, key, lo, hi, &x)) return j->err->code;
        out[0] = integer ? (double)u : x;
        *n = 1;
        return EFFDIM_OK;
    }
    RETURN_ERROR_IF(!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0, j->err, EFFDIM_EINVAL,
                    "%s: key '%s%s': expected a non-empty array of %s", j->where, j->prefix, key, what);
    size_t m = (size_t)cJSON_GetArraySize(v);
    RETURN_ERROR_IF(m > cap, j->err, EFFDIM_EINVAL, "%s: key '%s%s': %zu entries, at most %zu",
                    j->where, j->prefix, key, m, cap);
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, ++i) {
        RETURN_ERROR_IF(!cJSON_IsNumber(e) || (integer && e->valuedouble != floor(e->valuedouble)),
                        j->err, EFFDIM_EINVAL, "%s: key '%s%s': entry %zu: expected %s", j->where,
                        j->prefix, key, i, integer ? "an integer" : "a number");
        RETURN_ERROR_IF(!(e->valuedouble >= lo && e->valuedouble <= hi), j->err, EFFDIM_EINVAL,
                        "%s: key '%s%s': entry %zu: %g is out of range, expected %g to %g", j->where,
                        j->prefix, key, i, e->valuedouble, lo, hi);
        for (size_t q = 0; q < i; ++q)
            RETURN_ERROR_IF(out[q] == e->valuedouble, j->err, EFFDIM_EINVAL,
                            "%s: key '%s%s': %g appears twice", j->where, j->prefix, key, e->valuedouble);
        out[i] = e->valuedouble;
    }
    *n = m;
    return EFFDIM_OK;
}

static effdim_status want_object(const jctx *j, const cJSON *root, const char *key,
                                 const char *const *known, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!v) return EFFDIM_OK;
    RETURN_ERROR_IF(!cJSON_IsObject(v), j->err, EFFDIM_EINVAL, "%s: key '%s%s': expected an object",
                    j->where, j->prefix, key);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", key);
    if (check_keys(j, v, prefix, known)) return j->err->code;
    *out = v;
    return EFFDIM_OK;
}

/* A name through a library parser (parse_ok: it accepted the name), the
 * message naming the key as `label`. */
#define PARSE_NAME(j, obj, key, label, parse)                                                 \
    do {                                                                                      \
        const char *s_ = NULL;                                                                \
        if (want_string(j, obj, key, &s_)) return (j)->err->code;                            \
        if (s_ && (parse) != EFFDIM_OK)                                                       \
            return effdim_error_set((j)->err, EFFDIM_EINVAL, "%s: key '%s': unknown value '%s'", \
                                    (j)->where, label, s_);                                   \
    } while (0)

static char *dup_str(const char *s, effdim_error *err)
{
    if (!s) return NULL;
    char *d = effdim_alloc(strlen(s) + 1, 1, "sweep config", err);
    if (d) memcpy(d, s, strlen(s) + 1);
    return d;
}

static void set_defaults(effdim_sweep_config *c)
{
    effdim_train_params tp = effdim_train_default_params();
    effdim_spectrum_params sp = effdim_spectrum_default_params();
    c->widths[0] = 8, c->widths[1] = 16, c->widths[2] = 32, c->widths[3] = 64, c->n_widths = 4;
    c->depths[0] = 1, c->n_depths = 1;
    c->seeds[0] = 1, c->n_seeds = 1;
    c->act = EFFDIM_ACT_RELU;
    c->reduction = EFFDIM_REDUCTION_MEAN;
    c->init = EFFDIM_INIT_TORCH;
    c->opt = tp.optimizer;
    c->lr = tp.optim.lr;
    c->weight_decay = tp.optim.weight_decay;
    c->momentum = tp.optim.momentum;
    c->batch = tp.batch;
    c->epochs = tp.epochs;
    c->k = sp.k;
    c->z[0] = 0.1, c->z[1] = 1, c->z[2] = 10, c->nz = 3;
    c->slq = 1;
    c->probes = sp.probes;
    c->slq_steps = sp.slq_steps;
    c->max_matvecs = sp.max_matvecs;
    c->slq_budget = sp.slq_budget_matvecs;
    c->subset = sp.subset;
    c->tol = sp.tol;
    c->hvp = EFFDIM_HVP_EXACT;
    c->op = sp.op;
}

static effdim_status parse_train(const jctx *jr, const cJSON *t, effdim_sweep_config *c)
{
    if (!t) return EFFDIM_OK;
    jctx jt = *jr;
    jt.prefix = "train.";
    const jctx *j = &jt;
    effdim_error ignored;
    const char *name = NULL;
    if (want_string(j, t, "opt", &name)) return j->err->code;
    if (name && effdim_optim_kind_parse(name, &c->opt, &ignored))
        return effdim_error_set(j->err, EFFDIM_EINVAL, "%s: key 'train.opt': %s", j->where,
                                ignored.msg);
    if (name) c->lr = effdim_optim_default_params(c->opt).lr; /* the optimiser's own default */
    if (want_number(j, t, "lr", 0, INFINITY, &c->lr) ||
        want_number(j, t, "weight_decay", 0, INFINITY, &c->weight_decay) ||
        want_number(j, t, "momentum", 0, 1, &c->momentum) ||
        want_int(j, t, "batch", 0, 1e9, &c->batch) || want_int(j, t, "epochs", 1, 1e9, &c->epochs))
        return j->err->code;
    RETURN_ERROR_IF(!isfinite(c->lr), j->err, EFFDIM_EINVAL,
                    "%s: key 'train.lr': the optimiser has no default learning rate; set it",
                    j->where);
    return EFFDIM_OK;
}

static effdim_status parse_curvature(const jctx *jr, const cJSON *v, effdim_sweep_config *c)
{
    if (!v) return EFFDIM_OK;
    jctx jc = *jr;
    jc.prefix = "curvature.";
    const jctx *j = &jc;
    effdim_error ignored;
    if (want_int(j, v, "k", 1, EFFDIM_SWEEP_MAX_K, &c->k) ||
        want_list(j, v, "z", 0, 1e-300, 1e300, EFFDIM_SWEEP_MAX_Z, c->z, &c->nz) ||
        want_bool(j, v, "slq", &c->slq) || want_bool(j, v, "diag", &c->diag) ||
        want_int(j, v, "probes", 2, 1e6, &c->probes) ||
        want_int(j, v, "slq_steps", 2, 1e5, &c->slq_steps) ||
        want_int(j, v, "max_matvecs", 1, 1e12, &c->max_matvecs) ||
        want_int(j, v, "slq_budget_matvecs", 0, 1e12, &c->slq_budget) ||
        want_int(j, v, "subset", 0, 1e12, &c->subset) ||
        want_number(j, v, "tol", 1e-15, 0.5, &c->tol))
        return j->err->code;
    PARSE_NAME(j, v, "hvp", "curvature.hvp", effdim_hvp_method_parse(s_, &c->hvp, &ignored));
    PARSE_NAME(j, v, "op", "curvature.op", effdim_curvature_parse(s_, &c->op, &ignored));
    return EFFDIM_OK;
}

static cJSON *num_array(const double *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; ++i) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *size_array(const size_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; ++i) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

/* Every key with its resolved value, compact: what resume and merge compare. */
static char *canonical_json(const effdim_sweep_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    double seeds[EFFDIM_SWEEP_MAX_AXIS];
    for (size_t i = 0; i < c->n_seeds; ++i) seeds[i] = (double)c->seeds[i];
    cJSON_AddStringToObject(o, "data", c->data);
    if (c->test) cJSON_AddStringToObject(o, "test", c->test);
    else cJSON_AddNullToObject(o, "test");
    cJSON_AddItemToObject(o, "widths", size_array(c->widths, c->n_widths));
    cJSON_AddItemToObject(o, "depths", size_array(c->depths, c->n_depths));
    cJSON_AddItemToObject(o, "seeds", num_array(seeds, c->n_seeds));
    cJSON_AddItemToObject(o, "label_noise", num_array(c->noise, c->n_noise));
    cJSON_AddItemToObject(o, "n_train", size_array(c->ntrain, c->n_ntrain));
    cJSON_AddStringToObject(o, "act", effdim_activation_name(c->act));
    cJSON_AddStringToObject(o, "loss", c->has_loss ? effdim_loss_name(c->loss) : "auto");
    cJSON_AddStringToObject(o, "reduction", effdim_reduction_name(c->reduction));
    cJSON_AddStringToObject(o, "init", effdim_init_scheme_name(c->init));
    cJSON *t = cJSON_AddObjectToObject(o, "train");
    cJSON_AddStringToObject(t, "opt", effdim_optim_kind_name(c->opt));
    cJSON_AddNumberToObject(t, "lr", c->lr);
    cJSON_AddNumberToObject(t, "batch", (double)c->batch);
    cJSON_AddNumberToObject(t, "epochs", (double)c->epochs);
    cJSON_AddNumberToObject(t, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(t, "momentum", c->momentum);
    cJSON *v = cJSON_AddObjectToObject(o, "curvature");
    cJSON_AddNumberToObject(v, "k", (double)c->k);
    cJSON_AddItemToObject(v, "z", num_array(c->z, c->nz));
    cJSON_AddBoolToObject(v, "slq", c->slq);
    cJSON_AddNumberToObject(v, "probes", (double)c->probes);
    cJSON_AddNumberToObject(v, "slq_steps", (double)c->slq_steps);
    cJSON_AddStringToObject(v, "hvp", effdim_hvp_method_name(c->hvp));
    cJSON_AddStringToObject(v, "op", effdim_curvature_name(c->op));
    cJSON_AddNumberToObject(v, "tol", c->tol);
    cJSON_AddNumberToObject(v, "max_matvecs", (double)c->max_matvecs);
    cJSON_AddNumberToObject(v, "slq_budget_matvecs", (double)c->slq_budget);
    cJSON_AddNumberToObject(v, "subset", (double)c->subset);
    cJSON_AddBoolToObject(v, "diag", c->diag);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static effdim_status parse_root(const jctx *j, const cJSON *root, effdim_sweep_config *c)
{
    effdim_error ignored;
    double tmp[EFFDIM_SWEEP_MAX_AXIS];
    size_t n = 0;
    RETURN_ERROR_IF(!cJSON_IsObject(root), j->err, EFFDIM_EINVAL,
                    "%s: expected a JSON object at the top", j->where);
    if (check_keys(j, root, "", top_keys)) return j->err->code;
    const char *data = NULL, *test = NULL;
    if (want_string(j, root, "data", &data) || want_string(j, root, "test", &test))
        return j->err->code;
    RETURN_ERROR_IF(!data, j->err, EFFDIM_EINVAL,
                    "%s: key 'data' is missing (a data spec such as \"fashion-mnist:train:n=2000\")",
                    j->where);
    if (!(c->data = dup_str(data, j->err)) || (test && !(c->test = dup_str(test, j->err))))
        return j->err->code;
    if (want_list(j, root, "widths", 1, 1, 1e7, EFFDIM_SWEEP_MAX_AXIS, tmp, &n)) return j->err->code;
    if (n) {
        for (size_t i = 0; i < n; ++i) c->widths[i] = (size_t)tmp[i];
        c->n_widths = n, n = 0;
    }
    if (want_list(j, root, "depths", 1, 1, EFFDIM_MLP_MAX_LAYERS - 1, EFFDIM_SWEEP_MAX_AXIS, tmp,
                  &n))
        return j->err->code;
    if (n) {
        for (size_t i = 0; i < n; ++i) c->depths[i] = (size_t)tmp[i];
        c->n_depths = n, n = 0;
    }
    if (want_list(j, root, "seeds", 1, 0, 9007199254740992.0, EFFDIM_SWEEP_MAX_AXIS, tmp, &n))
        return j->err->code;
    if (n) {
        for (size_t i = 0; i < n; ++i) c->seeds[i] = (uint64_t)tmp[i];
        c->n_seeds = n, n = 0;
    }
    if (want_list(j, root, "label_noise", 0, 0, 1, EFFDIM_SWEEP_MAX_AXIS, c->noise, &c->n_noise) ||
        want_list(j, root, "n_train", 1, 1, 1e12, EFFDIM_SWEEP_MAX_AXIS, tmp, &n))
        return j->err->code;
    for (size_t i = 0; i < n; ++i) c->ntrain[i] = (size_t)tmp[i];
    c->n_ntrain = n;
    PARSE_NAME(j, root, "act", "act", effdim_activation_parse(s_, &c->act, NULL));
    const char *loss = NULL;
    if (want_string(j, root, "loss", &loss)) return j->err->code;
    if (loss && strcmp(loss, "auto")) {
        RETURN_ERROR_IF(effdim_loss_parse(loss, &c->loss, NULL), j->err, EFFDIM_EINVAL,
                        "%s: key 'loss': unknown value '%s' (cross_entropy, mse, bce or auto)",
                        j->where, loss);
        c->has_loss = 1;
    }
    PARSE_NAME(j, root, "reduction", "reduction", effdim_reduction_parse(s_, &c->reduction, NULL));
    PARSE_NAME(j, root, "init", "init", effdim_init_scheme_parse(s_, &c->init, NULL));
    (void)ignored;
    const cJSON *t = NULL, *v = NULL;
    if (want_object(j, root, "train", train_keys, &t) || parse_train(j, t, c) ||
        want_object(j, root, "curvature", curv_keys, &v) || parse_curvature(j, v, c))
        return j->err->code;
    return EFFDIM_OK;
}

effdim_status effdim_sweep_config_parse(const char *json, const char *where,
                                        effdim_sweep_config **out, effdim_error *err)
{
    *out = NULL;
    if (!where) where = "sweep config";
    RETURN_ERROR_IF(!json, err, EFFDIM_EINVAL, "%s: no JSON text", where);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - json) : 0, line = 1;
        for (size_t i = 0; i < at && json[i]; ++i) line += json[i] == '\n';
        return effdim_error_set(err, EFFDIM_EINVAL, "%s: not valid JSON (line %zu, byte %zu)", where,
                                line, at);
    }
    effdim_sweep_config *c = effdim_alloc(1, sizeof *c, "sweep config", err);
    if (!c) {
        cJSON_Delete(root);
        return err ? err->code : EFFDIM_ENOMEM;
    }
    memset(c, 0, sizeof *c);
    set_defaults(c);
    jctx j = {where, err, ""};
    effdim_error local;
    if (!err) j.err = &local;
    effdim_status st = parse_root(&j, root, c);
    cJSON_Delete(root);
    if (!st && !(c->json = dup_str(json, j.err))) st = j.err->code;
    if (!st && !(c->canonical = canonical_json(c)))
        st = effdim_error_set(j.err, EFFDIM_ENOMEM, "%s: out of memory", where);
    if (st) {
        effdim_sweep_config_free(c);
        return st;
    }
    *out = c;
    return EFFDIM_OK;
}

effdim_status effdim_sweep_config_load(const char *path, effdim_sweep_config **out,
                                       effdim_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    RETURN_ERROR_IF(!f, err, EFFDIM_EIO, "%s: cannot open (%s)", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *nb = cap <= (1u << 24) ? realloc(buf, cap) : NULL;
            if (!nb) {
                free(buf);
                fclose(f);
                return effdim_error_set(err, EFFDIM_EINVAL, "%s: too large for a sweep config",
                                        path);
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (r < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    buf[len] = '\0';
    if (bad) {
        free(buf);
        return effdim_error_set(err, EFFDIM_EIO, "%s: read error", path);
    }
    effdim_status st = effdim_sweep_config_parse(buf, path, out, err);
    free(buf);
    return st;
}

/* The quick preset: Fashion-MNIST, 20% label noise, one hidden layer across
 * the interpolation threshold (docs/sweeps.md). */
static const char quick_json[] =
    "{\"data\": \"fashion-mnist:train:n=1000,label_noise=0.2,noise_seed=1\",\n"
    " \"test\": \"fashion-mnist:test:n=2000\",\n"
    " \"widths\": [2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 128], \"depths\": [1],\n"
    " \"seeds\": [1], \"act\": \"relu\",\n"
    " \"train\": {\"opt\": \"adam\", \"lr\": 3e-3, \"batch\": 128, \"epochs\": 250},\n"
    " \"curvature\": {\"k\": 10, \"z\": [0.1, 1, 10], \"slq\": true, \"probes\": 8,\n"
    "               \"slq_steps\": 30, \"tol\": 1e-3, \"max_matvecs\": 300, \"hvp\": \"exact\",\n"
    "               \"subset\": 500}}\n";

effdim_status effdim_sweep_config_preset(const char *name, effdim_sweep_config **out,
                                         effdim_error *err)
{
    *out = NULL;
    if (name && !strcmp(name, "quick")) return effdim_sweep_config_parse(quick_json, "preset quick", out, err);
    return effdim_error_set(err, EFFDIM_EINVAL, "--preset: unknown preset '%s' (known: quick)",
                            name ? name : "");
}

void effdim_sweep_config_free(effdim_sweep_config *c)
{
    if (!c) return;
    free(c->json);
    free(c->canonical); /* cJSON's allocator is malloc */
    free(c->data);
    free(c->test);
    free(c);
}

const char *effdim_sweep_config_json(const effdim_sweep_config *c) { return c->json; }
const char *effdim_sweep_config_canonical(const effdim_sweep_config *c) { return c->canonical; }

/* ---- the grid ------------------------------------------------------------------ */

static size_t axis(size_t n) { return n ? n : 1; }

size_t effdim_sweep_config_size(const effdim_sweep_config *c)
{
    return c->n_widths * c->n_depths * c->n_seeds * axis(c->n_noise) * axis(c->n_ntrain);
}

effdim_sweep_point effdim_sweep_config_point(const effdim_sweep_config *c, size_t i)
{
    effdim_sweep_point p = {i, 0, 0, 0, NAN, 0};
    p.width = c->widths[i % c->n_widths], i /= c->n_widths;
    p.depth = c->depths[i % c->n_depths], i /= c->n_depths;
    p.seed = c->seeds[i % c->n_seeds], i /= c->n_seeds;
    if (c->n_noise) p.label_noise = c->noise[i % c->n_noise];
    i /= axis(c->n_noise);
    if (c->n_ntrain) p.n_train = c->ntrain[i % c->n_ntrain];
    return p;
}

effdim_status effdim_sweep_shard_parse(const char *s, const char *what, size_t *index,
                                       size_t *count, effdim_error *err)
{
    unsigned long long i = 0, n = 0;
    int used = 0;
    if (!s || sscanf(s, "%llu/%llu%n", &i, &n, &used) != 2 || s[used] || !(s[0] >= '0' && s[0] <= '9') ||
        n == 0 || i >= n || n > 1000000)
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "%s: expected I/N with 0 <= I < N (shard I of N, 0-based), got '%s'",
                                what, s ? s : "");
    *index = (size_t)i;
    *count = (size_t)n;
    return EFFDIM_OK;
}

effdim_sweep_params effdim_sweep_default_params(void)
{
    effdim_sweep_params p;
    memset(&p, 0, sizeof p);
    p.shard_index = 0;
    p.shard_count = 1;
    p.jobs = 1;
    return p;
}

/* ---- one configuration ------------------------------------------------------------ */

typedef struct data_cache {
    char *spec;            /* the training spec of ds */
    effdim_dataset *ds;
    effdim_dataset *test;  /* loaded once */
    int test_loaded;
} data_cache;

static void data_cache_free(data_cache *d)
{
    free(d->spec);
    effdim_dataset_free(d->ds);
    effdim_dataset_free(d->test);
    memset(d, 0, sizeof *d);
}

/* The training spec of a point: the config's, with n= and label_noise= of the
 * grid appended (the spec parser refuses a key given twice). */
static void train_spec(const effdim_sweep_config *c, const effdim_sweep_point *p, char *buf,
                       size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s", c->data);
    int colon = strchr(c->data, ':') != NULL;
    if (p->n_train && len < cap)
        len += (size_t)snprintf(buf + len, cap - len, "%sn=%zu", colon ? "," : ":", p->n_train),
            colon = 1;
    if (!isnan(p->label_noise) && len < cap)
        snprintf(buf + len, cap - len, "%slabel_noise=%.17g", colon ? "," : ":", p->label_noise);
}

static effdim_status load_data(const effdim_sweep_config *c, const effdim_sweep_point *p,
                               data_cache *d, effdim_error *err)
{
    char spec[8192];
    train_spec(c, p, spec, sizeof spec);
    if (!d->spec || strcmp(d->spec, spec)) {
        effdim_dataset_free(d->ds);
        d->ds = NULL;
        free(d->spec);
        d->spec = NULL;
        if (effdim_dataset_from_spec(spec, &d->ds, err)) return err->code;
        if (!(d->spec = dup_str(spec, err))) return err->code;
    }
    if (c->test && !d->test_loaded) {
        if (effdim_dataset_from_spec(c->test, &d->test, err)) return err->code;
        d->test_loaded = 1;
    }
    return EFFDIM_OK;
}

/* The network of a point on data ds. */
static effdim_status build_mlp(const effdim_sweep_config *c, const effdim_sweep_point *p,
                               const effdim_dataset *ds, effdim_mlp *m, effdim_error *err)
{
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    effdim_activation acts[EFFDIM_MLP_MAX_LAYERS];
    effdim_loss loss = c->has_loss ? c->loss
                       : ds->kind == EFFDIM_TARGET_LABELS ? EFFDIM_LOSS_CROSS_ENTROPY
                                                          : EFFDIM_LOSS_MSE;
    sizes[0] = ds->d;
    for (size_t l = 0; l < p->depth; ++l) sizes[l + 1] = p->width, acts[l] = c->act;
    sizes[p->depth + 1] = loss == EFFDIM_LOSS_BCE ? 1 : ds->k;
    acts[p->depth] = EFFDIM_ACT_IDENTITY;
    if (effdim_mlp_init(m, p->depth + 1, sizes, acts, loss, c->reduction, err)) return err->code;
    return effdim_mlp_check_data(m, ds, ds->spec, err);
}

typedef struct point_progress {
    const effdim_progress *outer;
    const effdim_sweep_point *p;
    const char *stage;
} point_progress;

/* Inner stages reported to the caller as stage "point". */
static int point_cb(void *ctx, const effdim_progress_event *ev)
{
    point_progress *pp = ctx;
    size_t n = strlen(ev->stage);
    int named = !strncmp(ev->detail, ev->stage, n); /* the detail already names its stage */
    return effdim_progress_report(pp->outer, ev->stage, effdim_progress_clock() - ev->elapsed,
                                  ev->done, ev->total, ev->eta, "%s%s%s", named ? "" : ev->stage,
                                  named ? "" : " ", ev->detail);
}

static void row_fail(effdim_sweep_row *row, const char *stage, const effdim_error *e)
{
    snprintf(row->status, sizeof row->status, "failed");
    char buf[EFFDIM_ERROR_MAX + 64];
    snprintf(buf, sizeof buf, "%s: %s", stage, e->msg);
    size_t len = strlen(buf);
    if (len >= sizeof row->message) len = sizeof row->message - 1;
    memcpy(row->message, buf, len);
    row->message[len] = '\0';
}

static void fill_nan(double *v, size_t n)
{
    for (size_t i = 0; i < n; ++i) v[i] = NAN;
}

static void row_init(const effdim_sweep_point *p, effdim_sweep_row *row)
{
    memset(row, 0, sizeof *row);
    row->index = (int64_t)p->index;
    row->width = (int64_t)p->width;
    row->depth = (int64_t)p->depth;
    row->seed = (int64_t)p->seed;
    row->label_noise = p->label_noise;
    row->train_loss = row->train_error = row->test_loss = row->test_error = NAN;
    fill_nan(row->n_eff_ritz, EFFDIM_SWEEP_MAX_Z);
    fill_nan(row->n_eff_slq, EFFDIM_SWEEP_MAX_Z);
    fill_nan(row->n_eff_slq_se, EFFDIM_SWEEP_MAX_Z);
    fill_nan(row->n_eff_diag, EFFDIM_SWEEP_MAX_Z);
    fill_nan(row->eig, EFFDIM_SWEEP_MAX_K);
    row->seconds = row->seconds_train = row->seconds_curvature = NAN;
    row->seconds_lanczos = row->seconds_slq = NAN;
    snprintf(row->status, sizeof row->status, "ok");
}

static effdim_status curvature(const effdim_sweep_config *c, const effdim_checkpoint *ck,
                               const effdim_dataset *ds, const effdim_progress *pr,
                               effdim_sweep_row *row, effdim_error *err)
{
    const effdim_mlp *m = &ck->mlp;
    effdim_spectrum_params sp = effdim_spectrum_default_params();
    sp.op = c->op;
    sp.hvp = c->hvp;
    sp.k = c->k < m->n_params ? c->k : m->n_params;
    sp.tol = c->tol;
    sp.max_matvecs = c->max_matvecs;
    sp.seed = (uint64_t)row->seed;
    sp.z = c->z;
    sp.nz = c->nz;
    sp.probes = c->slq ? c->probes : 0;
    sp.slq_steps = c->slq_steps;
    sp.slq_budget_matvecs = c->slq_budget;
    sp.subset = c->subset < ds->n ? c->subset : 0;
    sp.data_spec = ds->spec;
    sp.progress = *pr;
    effdim_spectrum *s = NULL;
    effdim_status st = effdim_spectrum_compute(m, ck->theta, ds, &sp, &s, err);
    if (st) {
        effdim_spectrum_free(s);
        return st;
    }
    for (size_t i = 0; i < s->k && i < EFFDIM_SWEEP_MAX_K; ++i) row->eig[i] = s->eigenvalues[i];
    for (size_t j = 0; j < c->nz && j < s->m; ++j) {
        row->n_eff_ritz[j] = s->n_eff[j];
        if (s->n_eff_slq) row->n_eff_slq[j] = s->n_eff_slq[j];
        if (s->n_eff_slq_se) row->n_eff_slq_se[j] = s->n_eff_slq_se[j];
    }
    row->nconv = (int64_t)s->nconv;
    row->matvecs = (int64_t)s->matvecs;
    row->seconds_lanczos = s->lanczos_seconds;
    if (s->n_eff_slq) row->seconds_slq = s->slq_seconds;
    if (s->nconv < sp.k) {
        snprintf(row->status, sizeof row->status, "partial");
        snprintf(row->message, sizeof row->message,
                 "%llu of %zu eigenpairs met tol %g within %zu products",
                 (unsigned long long)s->nconv, sp.k, sp.tol, sp.max_matvecs);
    }
    effdim_spectrum_free(s);
    if (!c->diag) return EFFDIM_OK;
    double *dg = effdim_alloc(m->n_params, sizeof *dg, "GGN diagonal", err);
    if (!dg) return err->code;
    effdim_diag_params dp = effdim_diag_default_params();
    st = effdim_diag_ggn(m, ck->theta, ds, NULL, ds->n, &dp, dg, NULL, err);
    if (!st) st = effdim_neff(dg, m->n_params, c->z, c->nz, EFFDIM_NEG_ZERO, row->n_eff_diag, err);
    free(dg);
    return st;
}

static effdim_status keep_checkpoint(const char *dir, const effdim_sweep_point *p,
                                     const effdim_checkpoint *ck, effdim_error *err)
{
    char path[EFFDIM_PATH_MAX];
    snprintf(path, sizeof path, "%s/i%zu-w%zu-d%zu-s%llu.h5", dir, p->index, p->width, p->depth,
             (unsigned long long)p->seed);
    return effdim_checkpoint_save(ck, path, err);
}

/* Row of point i. Returns EMAXITER when the progress callback stopped it
 * (the row is then not to be recorded); any other failure is in the row. */
static effdim_status run_point(const effdim_sweep_config *c, size_t index, const char *keep,
                               const effdim_progress *outer, data_cache *d, effdim_sweep_row *row)
{
    effdim_sweep_point p = effdim_sweep_config_point(c, index);
    row_init(&p, row);
    double t0 = effdim_progress_clock();
    point_progress pp = {outer, &p, ""};
    effdim_progress pr = {outer && outer->fn ? point_cb : NULL, &pp};
    effdim_error e;
    effdim_error_clear(&e);
    effdim_mlp m;
    effdim_checkpoint *ck = NULL;
    effdim_status st = EFFDIM_OK;
    if (load_data(c, &p, d, &e)) {
        row_fail(row, "data", &e);
        goto done;
    }
    row->n_train = (int64_t)d->ds->n;
    if (build_mlp(c, &p, d->ds, &m, &e) || (d->test && effdim_mlp_check_data(&m, d->test, c->test, &e)) ||
        effdim_checkpoint_alloc(&m, NULL, &ck, &e) ||
        effdim_mlp_init_params(&m, ck->theta, c->init, p.seed, &e) ||
        effdim_checkpoint_set_provenance(ck, d->ds->spec, c->test, p.seed, &e)) {
        row_fail(row, "model", &e);
        goto done;
    }
    row->n_params = (int64_t)m.n_params;
    effdim_train_params tp = effdim_train_default_params();
    tp.optimizer = c->opt;
    tp.optim = effdim_optim_default_params(c->opt);
    tp.optim.lr = c->lr;
    tp.optim.weight_decay = c->weight_decay;
    tp.optim.momentum = c->momentum;
    if (c->opt == EFFDIM_OPTIM_IVON) tp.optim.ess = (double)d->ds->n;
    tp.batch = c->batch;
    tp.epochs = c->epochs;
    tp.seed = p.seed;
    tp.schedule = effdim_schedule_constant(c->lr);
    tp.progress = pr;
    effdim_train_result tr;
    st = effdim_train_run(&tp, ck, d->ds, d->test, &tr, &e);
    row->seconds_train = effdim_progress_clock() - t0;
    if (st == EFFDIM_EMAXITER && tr.interrupted) goto done;
    st = EFFDIM_OK;
    if (e.code) {
        row_fail(row, "training", &e);
        goto done;
    }
    row->epochs = (int64_t)tr.epochs_total;
    row->train_loss = tr.loss;
    row->train_error = 1 - tr.accuracy;
    row->test_loss = tr.test_loss;
    row->test_error = 1 - tr.test_accuracy;
    if (keep && keep_checkpoint(keep, &p, ck, &e)) {
        row_fail(row, "--keep-checkpoints", &e);
        goto done;
    }
    double t1 = effdim_progress_clock();
    effdim_error_clear(&e);
    st = curvature(c, ck, d->ds, &pr, row, &e);
    row->seconds_curvature = effdim_progress_clock() - t1;
    if (st == EFFDIM_EMAXITER && strstr(e.msg, "interrupt")) goto done;
    if (st) row_fail(row, "curvature", &e);
    st = EFFDIM_OK;
done:
    effdim_checkpoint_free(ck);
    row->seconds = effdim_progress_clock() - t0;
    return st;
}

effdim_status effdim_sweep_run_point(const effdim_sweep_config *c, size_t index,
                                     const char *keep_checkpoints, const effdim_progress *progress,
                                     effdim_sweep_row *row, effdim_error *err)
{
    RETURN_ERROR_IF(index >= effdim_sweep_config_size(c), err, EFFDIM_EINVAL,
                    "sweep: configuration %zu is outside the grid of %zu", index,
                    effdim_sweep_config_size(c));
    data_cache d;
    memset(&d, 0, sizeof d);
    effdim_status st = run_point(c, index, keep_checkpoints, progress, &d, row);
    data_cache_free(&d);
    RETURN_ERROR_IF(st, err, st, "sweep: configuration %zu interrupted", index);
    return EFFDIM_OK;
}

/* ---- the file ------------------------------------------------------------------- */

/* The compound type of rows with nz N_eff and k eigenvalue columns, laid out
 * over effdim_sweep_row (the same names in memory and on file). */
static hid_t row_type(size_t nz, size_t k)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(effdim_sweep_row));
    if (t < 0) return t;
    char name[64];
#define I64(f) H5Tinsert(t, #f, HOFFSET(effdim_sweep_row, f), H5T_NATIVE_INT64)
#define F64(f) H5Tinsert(t, #f, HOFFSET(effdim_sweep_row, f), H5T_NATIVE_DOUBLE)
    I64(index), I64(width), I64(depth), I64(seed), F64(label_noise), I64(n_train), I64(n_params),
        I64(epochs), F64(train_loss), F64(train_error), F64(test_loss), F64(test_error);
    static const struct {
        const char *name;
        size_t off;
    } zcols[] = {{"n_eff_ritz", offsetof(effdim_sweep_row, n_eff_ritz)},
                 {"n_eff_slq", offsetof(effdim_sweep_row, n_eff_slq)},
                 {"n_eff_slq_se", offsetof(effdim_sweep_row, n_eff_slq_se)},
                 {"n_eff_diag", offsetof(effdim_sweep_row, n_eff_diag)}};
    for (size_t c = 0; c < 4; ++c)
        for (size_t j = 0; j < nz; ++j) {
            snprintf(name, sizeof name, "%s_%zu", zcols[c].name, j);
            H5Tinsert(t, name, zcols[c].off + j * sizeof(double), H5T_NATIVE_DOUBLE);
        }
    for (size_t i = 0; i < k; ++i) {
        snprintf(name, sizeof name, "eig_%zu", i);
        H5Tinsert(t, name, offsetof(effdim_sweep_row, eig) + i * sizeof(double), H5T_NATIVE_DOUBLE);
    }
    I64(nconv), I64(matvecs), F64(seconds), F64(seconds_train), F64(seconds_curvature),
        F64(seconds_lanczos), F64(seconds_slq);
#undef I64
#undef F64
    hid_t s1 = H5Tcopy(H5T_C_S1), s2 = H5Tcopy(H5T_C_S1);
    H5Tset_size(s1, sizeof(((effdim_sweep_row *)0)->status));
    H5Tset_size(s2, EFFDIM_SWEEP_MESSAGE);
    H5Tset_strpad(s1, H5T_STR_NULLTERM);
    H5Tset_strpad(s2, H5T_STR_NULLTERM);
    H5Tinsert(t, "status", HOFFSET(effdim_sweep_row, status), s1);
    H5Tinsert(t, "message", HOFFSET(effdim_sweep_row, message), s2);
    H5Tclose(s1);
    H5Tclose(s2);
    return t;
}

/* The packed file type (no padding), from the memory type. */
static hid_t file_type(hid_t mem)
{
    hid_t f = H5Tcopy(mem);
    if (f >= 0 && H5Tpack(f) < 0) {
        H5Tclose(f);
        return -1;
    }
    return f;
}

typedef struct sweep_file {
    const char *config, *canonical;
    size_t nz, k;
    const double *z;
    size_t shard_index, shard_count, grid_size;
    size_t n_rows;
    const effdim_sweep_row *rows;
} sweep_file;

static effdim_status write_file(const char *path, const sweep_file *f, effdim_error *err)
{
    effdim_h5_atomic a;
    if (effdim_h5_atomic_begin(path, &a, err)) return err->code;
    hid_t g = H5I_INVALID_HID, mem = row_type(f->nz, f->k), ft = file_type(mem), sp = -1, dcpl = -1,
          ds = -1;
    effdim_status st = EFFDIM_OK;
    if (mem < 0 || ft < 0) {
        st = effdim_error_set(err, EFFDIM_EIO, "%s: cannot build the table type", path);
        goto fail;
    }
    if (effdim_h5_attr_write_string(a.file, "format", EFFDIM_SWEEP_FORMAT, err) ||
        effdim_h5_attr_write_int64(a.file, "format_version", EFFDIM_SWEEP_VERSION, err) ||
        effdim_h5_attr_write_string(a.file, "version", effdim_version(), err) ||
        effdim_h5_attr_write_int64(a.file, "shard_index", (int64_t)f->shard_index, err) ||
        effdim_h5_attr_write_int64(a.file, "shard_count", (int64_t)f->shard_count, err) ||
        effdim_h5_attr_write_int64(a.file, "grid_size", (int64_t)f->grid_size, err)) {
        st = err->code;
        goto fail;
    }
    char now[64];
    if (effdim_h5_attr_write_string(a.file, "created", effdim_now_iso(now, sizeof now), err) ||
        effdim_h5_group(a.file, "sweep", &g, err) ||
        effdim_h5_attr_write_string(g, "config", f->config, err) ||
        effdim_h5_attr_write_string(g, "config_canonical", f->canonical, err) ||
        effdim_h5_attr_write_doubles(g, "z", f->z, f->nz, err) ||
        effdim_h5_attr_write_int64(g, "k", (int64_t)f->k, err)) {
        st = err->code;
        goto fail;
    }
    hsize_t dims[1] = {f->n_rows}, maxd[1] = {H5S_UNLIMITED}, chunk[1] = {64};
    sp = H5Screate_simple(1, dims, maxd);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 1, chunk) < 0 ||
        (ds = H5Dcreate2(g, "table", ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0 ||
        (f->n_rows && H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->rows) < 0)) {
        st = effdim_error_set(err, EFFDIM_EIO, "%s: /sweep/table: cannot write", path);
        goto fail;
    }
fail:
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (mem >= 0) H5Tclose(mem);
    if (g >= 0) H5Gclose(g);
    if (st) {
        effdim_h5_atomic_abort(&a);
        return st;
    }
    return effdim_h5_atomic_commit(&a, err);
}

static char *read_string_attr(hid_t obj, const char *name, effdim_error *err)
{
    char **v = NULL;
    size_t n = 0;
    if (effdim_h5_attr_read_strings(obj, name, &v, &n, err)) return NULL;
    char *s = n == 1 ? v[0] : NULL;
    if (n == 1) v[0] = NULL;
    effdim_h5_strings_free(v, n);
    if (!s) effdim_error_set(err, EFFDIM_EFORMAT, "attribute '%s': expected one string", name);
    return s;
}

void effdim_sweep_table_free(effdim_sweep_table *t)
{
    if (!t) return;
    free(t->config);
    free(t->config_canonical);
    free(t->rows);
    free(t);
}

static effdim_status table_read(hid_t file, const char *path, effdim_sweep_table *t,
                                effdim_error *err)
{
    char buf[64];
    int64_t v = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_string(file, "format", buf, sizeof buf, err) ||
                        strcmp(buf, EFFDIM_SWEEP_FORMAT),
                    err, EFFDIM_EFORMAT, "%s: not an effdim.sweep file (attribute 'format')", path);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(file, "format_version", &v, err), err, EFFDIM_EFORMAT,
                    "%s: attribute 'format_version' missing", path);
    RETURN_ERROR_IF(v > EFFDIM_SWEEP_VERSION, err, EFFDIM_EVERSION,
                    "%s: format_version %lld is newer than this effdim reads (%d)", path,
                    (long long)v, EFFDIM_SWEEP_VERSION);
    int64_t si = 0, sc = 1, gs = 0, k = 0;
    if (effdim_h5_attr_read_int64(file, "shard_index", &si, err) ||
        effdim_h5_attr_read_int64(file, "shard_count", &sc, err) ||
        effdim_h5_attr_read_int64(file, "grid_size", &gs, err)) {
        char why[EFFDIM_ERROR_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: %s", path, why);
    }
    RETURN_ERROR_IF(sc < 1 || si < 0 || si >= sc || gs < 0, err, EFFDIM_EFORMAT,
                    "%s: shard_index/shard_count/grid_size out of range", path);
    t->shard_index = (size_t)si, t->shard_count = (size_t)sc, t->grid_size = (size_t)gs;
    hid_t g = H5Gopen2(file, "sweep", H5P_DEFAULT);
    RETURN_ERROR_IF(g < 0, err, EFFDIM_ENOTFOUND, "%s: /sweep is missing", path);
    effdim_status st = EFFDIM_OK;
    hid_t ds = -1, sp = -1, mem = -1;
    if (!(t->config = read_string_attr(g, "config", err)) ||
        !(t->config_canonical = read_string_attr(g, "config_canonical", err)) ||
        effdim_h5_attr_read_doubles(g, "z", t->z, EFFDIM_SWEEP_MAX_Z, &t->nz, err) ||
        effdim_h5_attr_read_int64(g, "k", &k, err)) {
        char why[EFFDIM_ERROR_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /sweep: %s", path, why);
        goto out;
    }
    if (k < 0 || k > EFFDIM_SWEEP_MAX_K) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /sweep k out of range", path);
        goto out;
    }
    t->k = (size_t)k;
    hsize_t dims[1] = {0};
    if ((ds = H5Dopen2(g, "table", H5P_DEFAULT)) < 0 || (sp = H5Dget_space(ds)) < 0 ||
        H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
        dims[0] > (hsize_t)1 << 20 || dims[0] > (hsize_t)t->grid_size) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /sweep/table: expected a 1-D table of at most grid_size (and 2^20) rows", path);
        goto out;
    }
    t->n_rows = (size_t)dims[0];
    if (!(t->rows = effdim_alloc(t->n_rows, sizeof *t->rows, "sweep table", err))) {
        st = err->code;
        goto out;
    }
    mem = row_type(t->nz, t->k);
    for (size_t i = 0; i < t->n_rows; ++i) {
        effdim_sweep_point p = {0, 0, 0, 0, NAN, 0};
        row_init(&p, &t->rows[i]);
    }
    if (mem < 0 || (t->n_rows && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->rows) < 0)) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /sweep/table: cannot read the rows", path);
        goto out;
    }
    for (size_t i = 0; i < t->n_rows; ++i) {
        t->rows[i].status[sizeof t->rows[i].status - 1] = '\0';
        t->rows[i].message[EFFDIM_SWEEP_MESSAGE - 1] = '\0';
        if (t->rows[i].index < 0 || (size_t)t->rows[i].index >= t->grid_size) {
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /sweep/table row %zu: index %lld outside the grid of %zu",
                                  path, i, (long long)t->rows[i].index, t->grid_size);
            goto out;
        }
    }
out:
    if (mem >= 0) H5Tclose(mem);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    H5Gclose(g);
    return st;
}

effdim_status effdim_sweep_table_load(const char *path, effdim_sweep_table **out,
                                      effdim_error *err)
{
    *out = NULL;
    effdim_sweep_table *t = effdim_alloc(1, sizeof *t, "sweep table", err);
    if (!t) return err->code;
    memset(t, 0, sizeof *t);
    hid_t f = H5I_INVALID_HID;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (!st) {
        st = table_read(f, path, t, err);
        H5Fclose(f);
    }
    if (st) {
        effdim_sweep_table_free(t);
        return st;
    }
    *out = t;
    return EFFDIM_OK;
}

/* ---- the run -------------------------------------------------------------------- */

typedef struct run_state {
    const effdim_sweep_config *c;
    const char *path;
    const effdim_sweep_params *p;
    effdim_sweep_row *rows;  /* (cap) finished */
    size_t n_rows, cap;
    unsigned char *done;     /* (grid) 1 when in rows */
    size_t total, finished;  /* of this shard */
    double start;            /* clock */
    size_t ran_here;         /* rows this call */
    char detail[256];
    effdim_progress outer;
} run_state;

static effdim_status append_row(run_state *s, const effdim_sweep_row *row, effdim_error *err)
{
    if (s->n_rows == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        effdim_sweep_row *nr = realloc(s->rows, cap * sizeof *nr);
        RETURN_ERROR_IF(!nr, err, EFFDIM_ENOMEM, "sweep: out of memory for the table");
        s->rows = nr, s->cap = cap;
    }
    s->rows[s->n_rows++] = *row;
    s->done[row->index] = 1;
    sweep_file f = {s->c->json, s->c->canonical, s->c->nz, s->c->k, s->c->z, s->p->shard_index,
                    s->p->shard_count, effdim_sweep_config_size(s->c), s->n_rows, s->rows};
    return write_file(s->path, &f, err);
}

static double eta_of(const run_state *s, double inner_fraction)
{
    double el = effdim_progress_clock() - s->start;
    double units = (double)s->ran_here + (inner_fraction > 0 ? inner_fraction : 0);
    size_t left = s->total - s->finished;
    if (units <= 0.05) return -1;
    return el / units * ((double)left - (inner_fraction > 0 ? inner_fraction : 0));
}

/* Inner progress of the point in flight, shown as stage "sweep". */
static int sweep_cb(void *ctx, const effdim_progress_event *ev)
{
    run_state *s = ctx;
    double frac = ev->fraction;
    int training = !strcmp(ev->stage, "train") || !strcmp(ev->stage, "epoch");
    if (!training && frac >= 0) frac = 0.5 + 0.5 * frac; /* curvature: the second half */
    else if (frac >= 0) frac *= 0.5;
    return effdim_progress_report(&s->p->progress, "sweep", s->start, s->finished, s->total,
                                  eta_of(s, frac), "%s  %s", s->detail, ev->detail);
}

static void point_detail(run_state *s, size_t index)
{
    effdim_sweep_point pt = effdim_sweep_config_point(s->c, index);
    snprintf(s->detail, sizeof s->detail, "config %zu/%zu (width %zu depth %zu seed %llu)",
             s->finished + 1, s->total, pt.width, pt.depth, (unsigned long long)pt.seed);
}

static int report_done(run_state *s, const effdim_sweep_row *row)
{
    return effdim_progress_report(&s->p->progress, "sweep", s->start, s->finished, s->total,
                                  eta_of(s, 0), "config %zu/%zu done (width %lld: %s, test loss %.4g, N_eff(z=%g) %.4g)",
                                  s->finished, s->total, (long long)row->width, row->status,
                                  row->test_loss, s->c->z[0], row->n_eff_ritz[0]);
}

static int in_shard(const run_state *s, size_t i)
{
    return i % s->p->shard_count == s->p->shard_index && !s->done[i];
}

static effdim_status run_serial(run_state *s, effdim_sweep_result *res, effdim_error *err)
{
    data_cache d;
    memset(&d, 0, sizeof d);
    effdim_progress pr = {s->p->progress.fn ? sweep_cb : NULL, s};
    effdim_status st = EFFDIM_OK;
    size_t grid = effdim_sweep_config_size(s->c);
    for (size_t i = 0; i < grid && !st; ++i) {
        if (!in_shard(s, i)) continue;
        if (s->p->limit && s->ran_here >= s->p->limit) break;
        point_detail(s, i);
        effdim_sweep_row row;
        if (run_point(s->c, i, s->p->keep_checkpoints, &pr, &d, &row)) {
            res->interrupted = 1;
            st = effdim_error_set(err, EFFDIM_EMAXITER, "%s: sweep interrupted (%zu of %zu configurations done)",
                                  s->path, s->finished, s->total);
            break;
        }
        if ((st = append_row(s, &row, err))) break;
        s->finished++, s->ran_here++, res->ran++;
        res->failed += !strcmp(row.status, "failed");
        res->partial += !strcmp(row.status, "partial");
        if (report_done(s, &row)) {
            res->interrupted = 1;
            st = effdim_error_set(err, EFFDIM_EMAXITER, "%s: sweep interrupted (%zu of %zu configurations done)",
                                  s->path, s->finished, s->total);
        }
    }
    data_cache_free(&d);
    return st;
}

/* --jobs: worker w computes the shard's pending configurations w, w + N, ...
 * (in its own process, with its share of the BLAS threads) and writes each
 * row to its pipe; the parent alone writes the file. */
static void worker_main(const run_state *s, const size_t *todo, size_t n_todo, size_t w,
                        size_t jobs, int fd)
{
    data_cache d;
    memset(&d, 0, sizeof d);
    for (size_t q = w; q < n_todo; q += jobs) {
        effdim_sweep_row row;
        if (run_point(s->c, todo[q], s->p->keep_checkpoints, NULL, &d, &row)) break;
        const char *b = (const char *)&row;
        size_t left = sizeof row;
        while (left) {
            ssize_t r = write(fd, b, left);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) _exit(1);
            b += r, left -= (size_t)r;
        }
    }
    data_cache_free(&d);
    _exit(0);
}

static effdim_status run_parallel(run_state *s, effdim_sweep_result *res, effdim_error *err)
{
    size_t grid = effdim_sweep_config_size(s->c), n_todo = 0;
    size_t *todo = effdim_alloc(grid, sizeof *todo, "sweep", err);
    if (!todo) return err->code;
    for (size_t i = 0; i < grid; ++i)
        if (in_shard(s, i) && (!s->p->limit || n_todo < s->p->limit)) todo[n_todo++] = i;
    size_t jobs = s->p->jobs < n_todo ? s->p->jobs : n_todo;
    pid_t pids[256];
    int fds[256];
    size_t have[256];
    if (jobs > 256) jobs = 256;
    int threads = effdim_blas_threads();
    int share = threads / (int)(jobs ? jobs : 1);
    effdim_status st = EFFDIM_OK;
    size_t started = 0;
    pid_t parent = getpid();
    for (size_t w = 0; w < jobs; ++w) {
        int pf[2];
        if (pipe(pf)) {
            st = effdim_error_set(err, EFFDIM_EIO, "sweep: pipe: %s", strerror(errno));
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(pf[0]), close(pf[1]);
            st = effdim_error_set(err, EFFDIM_EIO, "sweep: fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            close(pf[0]);
            for (size_t q = 0; q < started; ++q) close(fds[q]);
            signal(SIGINT, SIG_IGN); /* the parent stops the workers */
#ifdef __linux__
            /* a parent killed with -9 takes its workers along (they hold its lock's fd) */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
            if (getppid() != parent) _exit(1);
            effdim_blas_set_threads(share > 0 ? share : 1);
            worker_main(s, todo, n_todo, w, jobs, pf[1]);
        }
        close(pf[1]);
        pids[w] = pid, fds[w] = pf[0], have[w] = 0, started++;
    }
    effdim_sweep_row *buf = effdim_alloc(started ? started : 1, sizeof *buf, "sweep", err);
    if (!buf && !st) st = err->code;
    size_t open = started;
    snprintf(s->detail, sizeof s->detail, "%zu workers", started);
    while (!st && open) {
        fd_set set;
        FD_ZERO(&set);
        int maxfd = -1;
        for (size_t w = 0; w < started; ++w)
            if (fds[w] >= 0) FD_SET(fds[w], &set), maxfd = fds[w] > maxfd ? fds[w] : maxfd;
        struct timeval tv = {1, 0};
        int r = select(maxfd + 1, &set, NULL, NULL, &tv);
        if (r < 0 && errno != EINTR) {
            st = effdim_error_set(err, EFFDIM_EIO, "sweep: select: %s", strerror(errno));
            break;
        }
        if (effdim_progress_report(&s->p->progress, "sweep", s->start, s->finished, s->total,
                                   eta_of(s, 0), "%zu of %zu configurations done (workers running: %zu)",
                                   s->finished, s->total, open)) {
            res->interrupted = 1;
            st = effdim_error_set(err, EFFDIM_EMAXITER, "%s: sweep interrupted (%zu of %zu configurations done)",
                                  s->path, s->finished, s->total);
            break;
        }
        if (r <= 0) continue;
        for (size_t w = 0; w < started && !st; ++w) {
            if (fds[w] < 0 || !FD_ISSET(fds[w], &set)) continue;
            ssize_t g = read(fds[w], (char *)&buf[w] + have[w], sizeof *buf - have[w]);
            if (g < 0 && errno == EINTR) continue;
            if (g <= 0) {
                close(fds[w]);
                fds[w] = -1, open--;
                continue;
            }
            have[w] += (size_t)g;
            if (have[w] < sizeof *buf) continue;
            have[w] = 0;
            if ((st = append_row(s, &buf[w], err))) break;
            s->finished++, s->ran_here++, res->ran++;
            res->failed += !strcmp(buf[w].status, "failed");
            res->partial += !strcmp(buf[w].status, "partial");
            report_done(s, &buf[w]);
        }
    }
    for (size_t w = 0; w < started; ++w) {
        if (st) kill(pids[w], SIGKILL);
        if (fds[w] >= 0) close(fds[w]);
        int ws = 0;
        while (waitpid(pids[w], &ws, 0) < 0 && errno == EINTR) {
        }
        if (!st && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
            st = effdim_error_set(err, EFFDIM_EIO, "sweep: worker %zu (PID %ld) ended abnormally",
                                  w, (long)pids[w]);
    }
    free(buf);
    free(todo);
    return st;
}

/* Rows already in the file, after checking it is this sweep. */
static effdim_status resume(run_state *s, effdim_error *err)
{
    struct stat sb;
    if (stat(s->path, &sb) != 0) return EFFDIM_OK;
    effdim_sweep_table *t = NULL;
    if (effdim_sweep_table_load(s->path, &t, err)) return err->code;
    effdim_status st = EFFDIM_OK;
    if (strcmp(t->config_canonical, s->c->canonical))
        st = effdim_error_set(err, EFFDIM_EINVAL,
                              "%s: holds a sweep of another config (remove it, or choose another -o)",
                              s->path);
    else if (t->shard_index != s->p->shard_index || t->shard_count != s->p->shard_count)
        st = effdim_error_set(err, EFFDIM_EINVAL, "%s: holds shard %zu/%zu, not %zu/%zu", s->path,
                              t->shard_index, t->shard_count, s->p->shard_index, s->p->shard_count);
    if (!st) {
        s->rows = t->rows, s->n_rows = s->cap = t->n_rows;
        t->rows = NULL;
        for (size_t i = 0; i < s->n_rows; ++i) s->done[s->rows[i].index] = 1;
    }
    effdim_sweep_table_free(t);
    return st;
}

effdim_status effdim_sweep_run(const effdim_sweep_config *c, const char *path,
                               const effdim_sweep_params *p, effdim_sweep_result *res,
                               effdim_error *err)
{
    effdim_sweep_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    RETURN_ERROR_IF(!p->shard_count || p->shard_index >= p->shard_count, err, EFFDIM_EINVAL,
                    "sweep: shard %zu/%zu: expected 0 <= I < N", p->shard_index, p->shard_count);
    RETURN_ERROR_IF(!p->jobs, err, EFFDIM_EINVAL, "sweep: jobs: expected at least 1");
    if (p->keep_checkpoints) {
        struct stat sb;
        RETURN_ERROR_IF(stat(p->keep_checkpoints, &sb) != 0 || !S_ISDIR(sb.st_mode), err,
                        EFFDIM_EINVAL, "--keep-checkpoints %s: not a folder", p->keep_checkpoints);
    }
    size_t grid = effdim_sweep_config_size(c);
    run_state s;
    memset(&s, 0, sizeof s);
    s.c = c, s.path = path, s.p = p;
    s.done = effdim_alloc(grid, 1, "sweep", err);
    if (!s.done) return err->code;
    memset(s.done, 0, grid);
    effdim_status st = resume(&s, err);
    for (size_t i = p->shard_index; i < grid; i += p->shard_count) {
        res->total++;
        res->skipped += s.done[i];
    }
    s.total = res->total, s.finished = res->skipped;
    s.start = effdim_progress_clock();
    if (!st && s.n_rows == 0) { /* the file exists from the start, empty */
        sweep_file f = {c->json, c->canonical, c->nz, c->k, c->z, p->shard_index, p->shard_count,
                        grid, 0, NULL};
        st = write_file(path, &f, err);
    }
    if (!st) st = p->jobs > 1 ? run_parallel(&s, res, err) : run_serial(&s, res, err);
    free(s.rows);
    free(s.done);
    return st;
}

/* ---- merge ---------------------------------------------------------------------- */

static int by_index(const void *a, const void *b)
{
    int64_t x = ((const effdim_sweep_row *)a)->index, y = ((const effdim_sweep_row *)b)->index;
    return (x > y) - (x < y);
}

effdim_status effdim_sweep_merge(const char *const *inputs, size_t n_inputs, const char *out,
                                 effdim_error *err)
{
    RETURN_ERROR_IF(n_inputs == 0, err, EFFDIM_EINVAL, "sweep merge: no input files");
    effdim_sweep_table *first = NULL, *t = NULL;
    effdim_sweep_row *rows = NULL;
    unsigned char *seen = NULL;
    size_t n = 0;
    effdim_status st = effdim_sweep_table_load(inputs[0], &first, err);
    if (st) return st;
    rows = effdim_alloc(first->grid_size, sizeof *rows, "sweep merge", err);
    seen = effdim_alloc(first->grid_size, 1, "sweep merge", err);
    if (!rows || !seen) {
        st = err->code;
        goto out;
    }
    memset(seen, 0, first->grid_size);
    for (size_t f = 0; f < n_inputs; ++f) {
        if (f && (st = effdim_sweep_table_load(inputs[f], &t, err))) goto out;
        const effdim_sweep_table *cur = f ? t : first;
        if (strcmp(cur->config_canonical, first->config_canonical) || cur->grid_size != first->grid_size) {
            st = effdim_error_set(err, EFFDIM_EINVAL,
                                  "%s: a shard of another config than %s; refusing to merge",
                                  inputs[f], inputs[0]);
            goto out;
        }
        for (size_t i = 0; i < cur->n_rows; ++i) {
            size_t ix = (size_t)cur->rows[i].index;
            if (seen[ix]) continue; /* the same configuration from two files: the first wins */
            seen[ix] = 1;
            rows[n++] = cur->rows[i];
        }
        effdim_sweep_table_free(t);
        t = NULL;
    }
    qsort(rows, n, sizeof *rows, by_index);
    sweep_file sf = {first->config, first->config_canonical, first->nz, first->k, first->z, 0, 1,
                     first->grid_size, n, rows};
    st = write_file(out, &sf, err);
out:
    effdim_sweep_table_free(t);
    effdim_sweep_table_free(first);
    free(rows);
    free(seen);
    return st;
}

/* ---- the config described, the table summarised ----------------------------------- */

typedef struct textbuf {
    char *buf;
    size_t cap, len;
} textbuf;

static void tb_printf(textbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void tb_printf(textbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *at = b->len < b->cap ? b->buf + b->len : NULL;
    int n = vsnprintf(at, at ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
}

static void tb_sizes(textbuf *b, const char *what, const size_t *v, size_t n)
{
    tb_printf(b, "%zu %s%s [", n, what, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; ++i) tb_printf(b, "%s%zu", i ? ", " : "", v[i]);
    tb_printf(b, "]");
}

size_t effdim_sweep_config_describe(const effdim_sweep_config *c, char *buf, size_t cap)
{
    textbuf b = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    tb_printf(&b, "data        %s\ntest        %s\ngrid        ", c->data, c->test ? c->test : "(none)");
    tb_sizes(&b, "width", c->widths, c->n_widths);
    tb_printf(&b, " x ");
    tb_sizes(&b, "depth", c->depths, c->n_depths);
    tb_printf(&b, " x %zu seed%s [", c->n_seeds, c->n_seeds == 1 ? "" : "s");
    for (size_t i = 0; i < c->n_seeds; ++i)
        tb_printf(&b, "%s%llu", i ? ", " : "", (unsigned long long)c->seeds[i]);
    tb_printf(&b, "]");
    if (c->n_noise) {
        tb_printf(&b, " x %zu label-noise levels [", c->n_noise);
        for (size_t i = 0; i < c->n_noise; ++i) tb_printf(&b, "%s%g", i ? ", " : "", c->noise[i]);
        tb_printf(&b, "]");
    }
    if (c->n_ntrain) {
        tb_printf(&b, " x ");
        tb_sizes(&b, "training-set size", c->ntrain, c->n_ntrain);
    }
    tb_printf(&b, " = %zu configurations\n", effdim_sweep_config_size(c));
    tb_printf(&b, "model       %s hidden layers, loss %s (%s), init %s\n",
              effdim_activation_name(c->act), c->has_loss ? effdim_loss_name(c->loss) : "auto",
              effdim_reduction_name(c->reduction), effdim_init_scheme_name(c->init));
    tb_printf(&b, "training    %s, lr %g, batch %zu, %zu epochs", effdim_optim_kind_name(c->opt),
              c->lr, c->batch, c->epochs);
    if (c->weight_decay > 0) tb_printf(&b, ", weight decay %g", c->weight_decay);
    if (c->momentum > 0) tb_printf(&b, ", momentum %g", c->momentum);
    tb_printf(&b, "\ncurvature   %s (%s products), top %zu, tol %g, at most %zu products, z [",
              effdim_curvature_name(c->op), effdim_hvp_method_name(c->hvp), c->k, c->tol,
              c->max_matvecs);
    for (size_t j = 0; j < c->nz; ++j) tb_printf(&b, "%s%g", j ? ", " : "", c->z[j]);
    tb_printf(&b, "]");
    if (c->slq) tb_printf(&b, ", SLQ %zu probes x %zu steps", c->probes, c->slq_steps);
    if (c->slq && c->slq_budget) tb_printf(&b, " (budget %zu products)", c->slq_budget);
    if (c->subset) tb_printf(&b, ", on %zu rows", c->subset);
    if (c->diag) tb_printf(&b, ", GGN diagonal");
    tb_printf(&b, "\n");
    return b.len;
}

static int same_noise(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static int agg_order(const void *pa, const void *pb)
{
    const effdim_sweep_agg *x = pa, *y = pb;
    if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
    if (x->n_train != y->n_train) return x->n_train < y->n_train ? -1 : 1;
    if (!same_noise(x->label_noise, y->label_noise))
        return isnan(x->label_noise) ? -1 : isnan(y->label_noise) ? 1 : x->label_noise < y->label_noise ? -1 : 1;
    return (x->width > y->width) - (x->width < y->width);
}

static void row_metrics(const effdim_sweep_row *r, size_t nz, double *v)
{
    v[EFFDIM_SWEEP_M_TRAIN_LOSS] = r->train_loss;
    v[EFFDIM_SWEEP_M_TEST_LOSS] = r->test_loss;
    v[EFFDIM_SWEEP_M_TEST_ERROR] = r->test_error;
    v[EFFDIM_SWEEP_M_TRAIN_ERROR] = r->train_error;
    for (size_t j = 0; j < nz; ++j) v[4 + j] = r->n_eff_ritz[j], v[4 + nz + j] = r->n_eff_slq[j];
}

effdim_status effdim_sweep_aggregate(const effdim_sweep_table *t, effdim_sweep_agg **out, size_t *n,
                                     effdim_error *err)
{
    *out = NULL;
    *n = 0;
    RETURN_ERROR_IF(t->nz > EFFDIM_SWEEP_MAX_Z, err, EFFDIM_EINVAL, "sweep: %zu z values, at most %d",
                    t->nz, EFFDIM_SWEEP_MAX_Z);
    if (t->n_rows == 0) return EFFDIM_OK;
    effdim_sweep_agg *a = effdim_alloc(t->n_rows, sizeof *a, "sweep points", err);
    if (!a) return err->code;
    size_t np = 0, m = 4 + 2 * t->nz;
    for (size_t i = 0; i < t->n_rows; ++i) {
        const effdim_sweep_row *r = &t->rows[i];
        if (!strcmp(r->status, "failed")) continue;
        size_t q = 0;
        while (q < np && !(a[q].depth == r->depth && a[q].n_train == r->n_train &&
                           same_noise(a[q].label_noise, r->label_noise) && a[q].width == r->width))
            ++q;
        if (q == np) {
            memset(&a[np], 0, sizeof a[np]);
            a[np].depth = r->depth, a[np].n_train = r->n_train, a[np].width = r->width;
            a[np].label_noise = r->label_noise, a[np].n_params = r->n_params;
            for (size_t j = 0; j < EFFDIM_SWEEP_METRICS; ++j) a[np].lo[j] = INFINITY, a[np].hi[j] = -INFINITY;
            ++np;
        }
        double v[EFFDIM_SWEEP_METRICS];
        row_metrics(r, t->nz, v);
        effdim_sweep_agg *p = &a[q];
        p->n++;
        for (size_t j = 0; j < m; ++j) {
            p->mean[j] += v[j];
            p->lo[j] = fmin(p->lo[j], v[j]);
            p->hi[j] = fmax(p->hi[j], v[j]);
        }
    }
    for (size_t q = 0; q < np; ++q)
        for (size_t j = 0; j < EFFDIM_SWEEP_METRICS; ++j) {
            if (j < m) a[q].mean[j] /= (double)a[q].n;
            else a[q].mean[j] = a[q].lo[j] = a[q].hi[j] = NAN;
        }
    qsort(a, np, sizeof *a, agg_order);
    if (np == 0) {
        free(a);
        a = NULL;
    }
    *out = a;
    *n = np;
    return EFFDIM_OK;
}

/* Spearman's rho of x against y over the n pairs where both are finite (NaN
 * with fewer than two). */
static effdim_status rho_finite(const double *x, const double *y, size_t n, double *xs, double *ys,
                                double *rho, effdim_error *err)
{
    size_t m = 0;
    for (size_t i = 0; i < n; ++i)
        if (isfinite(x[i]) && isfinite(y[i])) xs[m] = x[i], ys[m] = y[i], ++m;
    *rho = NAN;
    return m >= 2 ? effdim_compare_spearman(xs, ys, m, rho, err) : EFFDIM_OK;
}

static int same_series(const effdim_sweep_agg *a, const effdim_sweep_agg *b)
{
    return a->depth == b->depth && a->n_train == b->n_train && same_noise(a->label_noise, b->label_noise);
}

/* A row counted by the correlations of series r. */
static int counted(const effdim_sweep_corr *r, const effdim_sweep_row *w)
{
    return strcmp(w->status, "failed") && w->depth == r->depth && w->n_train == r->n_train &&
           same_noise(w->label_noise, r->label_noise) && r->from_width >= 0 &&
           w->width >= r->from_width && isfinite(w->test_loss);
}

/* The column c of a row: 0 n_params, 1 + j N_eff Ritz, 1 + nz + j N_eff SLQ. */
static double corr_column(const effdim_sweep_row *w, size_t c, size_t nz)
{
    return c == 0 ? (double)w->n_params : c <= nz ? w->n_eff_ritz[c - 1] : w->n_eff_slq[c - 1 - nz];
}

/* One series (points a[0 .. n-1]) of t into r. work: 4 * t->n_rows. */
static effdim_status series_corr(const effdim_sweep_table *t, const effdim_sweep_agg *a, size_t n,
                                 int64_t from_width, double *work, effdim_sweep_corr *r,
                                 effdim_error *err)
{
    double *loss = work, *x = work + t->n_rows, *xs = work + 2 * t->n_rows, *ys = work + 3 * t->n_rows;
    memset(r, 0, sizeof *r);
    r->depth = a[0].depth, r->n_train = a[0].n_train, r->label_noise = a[0].label_noise;
    r->peak_width = r->peak_params = r->interp_width = -1;
    r->peak_test_loss = NAN;
    for (size_t q = 0; q < n && r->interp_width < 0; ++q)
        if (a[q].hi[EFFDIM_SWEEP_M_TRAIN_ERROR] == 0.0) r->interp_width = a[q].width;
    /* the classical minimum: the smallest mean test loss up to the interpolating
     * width (all widths when none interpolates); the peak: the largest after it */
    size_t qmin = n;
    for (size_t q = 0; q < n; ++q) {
        double tl = a[q].mean[EFFDIM_SWEEP_M_TEST_LOSS];
        if ((r->interp_width < 0 || a[q].width <= r->interp_width) && isfinite(tl) &&
            (qmin == n || tl < a[qmin].mean[EFFDIM_SWEEP_M_TEST_LOSS]))
            qmin = q;
    }
    for (size_t q = qmin + 1; qmin < n && q < n; ++q) {
        double tl = a[q].mean[EFFDIM_SWEEP_M_TEST_LOSS];
        if (isfinite(tl) && !(tl <= r->peak_test_loss))
            r->peak_test_loss = tl, r->peak_width = a[q].width, r->peak_params = a[q].n_params;
    }
    if (qmin < n && r->peak_width < 0) /* nothing after the minimum: the minimum itself */
        r->peak_test_loss = a[qmin].mean[EFFDIM_SWEEP_M_TEST_LOSS], r->peak_width = a[qmin].width,
        r->peak_params = a[qmin].n_params;
    r->from_width = from_width > 0 ? from_width : r->peak_width;
    for (size_t q = 0; q < n; ++q) r->n_widths += r->from_width >= 0 && a[q].width >= r->from_width;
    for (size_t i = 0; i < t->n_rows; ++i)
        if (counted(r, &t->rows[i])) loss[r->n_rows++] = t->rows[i].test_loss;
    for (size_t j = 0; j < EFFDIM_SWEEP_MAX_Z; ++j) r->rho_ritz[j] = r->rho_slq[j] = NAN;
    for (size_t c = 0; c < 1 + 2 * t->nz; ++c) {
        size_t k = 0;
        for (size_t i = 0; i < t->n_rows; ++i)
            if (counted(r, &t->rows[i])) x[k++] = corr_column(&t->rows[i], c, t->nz);
        double *dst = c == 0 ? &r->rho_params : c <= t->nz ? &r->rho_ritz[c - 1] : &r->rho_slq[c - 1 - t->nz];
        effdim_status st = rho_finite(x, loss, r->n_rows, xs, ys, dst, err);
        if (st) return st;
    }
    return EFFDIM_OK;
}

effdim_status effdim_sweep_correlations(const effdim_sweep_table *t, int64_t from_width,
                                        effdim_sweep_corr **out, size_t *n, effdim_error *err)
{
    *out = NULL;
    *n = 0;
    effdim_sweep_agg *a = NULL;
    size_t na = 0;
    effdim_status st = effdim_sweep_aggregate(t, &a, &na, err);
    if (st || na == 0) return st;
    size_t ns = 0;
    for (size_t q = 0; q < na; ++q) ns += q == 0 || !same_series(&a[q - 1], &a[q]);
    effdim_sweep_corr *c = effdim_alloc(ns, sizeof *c, "sweep correlations", err);
    double *work = c ? effdim_alloc(4 * t->n_rows, sizeof *work, "sweep correlations", err) : NULL;
    if (!work) {
        free(c);
        free(a);
        return EFFDIM_ENOMEM;
    }
    size_t s = 0;
    for (size_t q0 = 0; q0 < na && !st; ++s) {
        size_t q1 = q0 + 1;
        while (q1 < na && same_series(&a[q1], &a[q0])) ++q1;
        st = series_corr(t, a + q0, q1 - q0, from_width, work, &c[s], err);
        q0 = q1;
    }
    free(work);
    free(a);
    if (st) {
        free(c);
        return st;
    }
    *out = c;
    *n = s;
    return EFFDIM_OK;
}
