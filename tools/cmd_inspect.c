/* tools/cmd_inspect.c: `effdim inspect FILE.h5 [--json]`, a summary of any effdim file.
 *
 * The kind comes from the root attribute 'format':
 *   effdim.checkpoint  loaded and validated by effdim_checkpoint_load, then
 *                      summarised: model shape, parameter count, optimiser
 *                      and step, per-epoch metrics, provenance;
 *   effdim.spectrum    the generic summary below, then the tables read back by
 *                      effdim_spectrum_load: eigenvalues with residuals,
 *                      bounds and convergence; N_eff by z (Ritz, exact,
 *                      SLQ +- SE); the trace;
 *   effdim.sweep       effdim_inspect_sweep: the config in a few lines, the
 *                      rows counted by status, then the table (grid
 *                      coordinates, n_params, errors, test loss, N_eff by z,
 *                      status), one line per configuration by index;
 *   effdim.<other>     (diag, ... written by other modules)
 *                      and HDF5 files without a format: the root attributes
 *                      and every data set with its shape and type, found by
 *                      walking the file, so formats added later need no code
 *                      here.
 * Exit status: 0 summarised, 1 the file is missing, not HDF5 or an invalid
 * checkpoint (one line on stderr naming the file and the object), 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "effdim/checkpoint.h"
#include "effdim/inspect.h"
#include "effdim/spectrum.h"
#include "effdim/sweep.h"

#define CMD "inspect"
#define TEXT_ARRAY_MAX 8 /* array entries shown in text output */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: effdim inspect FILE.h5 [--json]\n\n"
            "Summarise an effdim file: its kind (the root 'format' attribute) and version;\n"
            "for a checkpoint the model shape, parameter count, optimiser and step, training\n"
            "metrics and provenance (the file is fully validated); for a sweep the config,\n"
            "the rows by status and the table; for other effdim formats the root attributes\n"
            "and every data set with its shape.\n\n"
            "  --json      print a JSON summary instead of text\n"
            "  -h, --help  this help\n");
}

/* ======================================================================
 * Generic HDF5: attributes as JSON values, data sets with shapes
 * ====================================================================== */

/* One attribute as a cJSON value (string, number, or array of them). */
static cJSON *attr_json(const effdim_file_attr *a)
{
    if (a->kind == EFFDIM_ATTR_STRING) {
        if (a->scalar && a->n == 1) return cJSON_CreateString(a->strings[0]);
        cJSON *out = cJSON_CreateArray();
        for (size_t i = 0; i < a->n; ++i) cJSON_AddItemToArray(out, cJSON_CreateString(a->strings[i]));
        return out;
    }
    if (a->kind == EFFDIM_ATTR_NUMBER)
        return a->scalar ? cJSON_CreateNumber(a->values[0]) : cli_json_doubles(a->values, a->n);
    return cJSON_CreateString("(unsupported attribute type)");
}

/* All root attributes as a JSON object (name order). */
static cJSON *attrs_json(const effdim_file_summary *fs)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < fs->n_attrs; ++i)
        cJSON_AddItemToObject(o, fs->attrs[i].name, attr_json(&fs->attrs[i]));
    return o;
}

/* Every data set in the file: [{path, shape, type}], in name order. */
static cJSON *datasets_json(const effdim_file_summary *fs)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < fs->n_datasets; ++i) {
        const effdim_file_dataset *ds = &fs->datasets[i];
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "path", ds->path);
        cJSON *shape = cJSON_AddArrayToObject(d, "shape");
        for (size_t r = 0; r < ds->rank; ++r)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ds->dims[r]));
        cJSON_AddStringToObject(d, "type", ds->type);
        cJSON_AddItemToArray(a, d);
    }
    return a;
}

/* ======================================================================
 * Text output of JSON values
 * ====================================================================== */

static void print_value(FILE *f, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        fprintf(f, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (x == floor(x) && fabs(x) < 1e15)
            fprintf(f, "%.0f", x);
        else
            fprintf(f, "%.6g", x);
    } else if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v), i = 0;
        fputc('[', f);
        for (const cJSON *c = v->child; c && i < TEXT_ARRAY_MAX; c = c->next, ++i) {
            if (i) fputs(", ", f);
            print_value(f, c);
        }
        if (n > TEXT_ARRAY_MAX) fprintf(f, ", ... (%d values)", n);
        fputc(']', f);
    } else {
        fputs("null", f);
    }
}

static void print_generic(const char *path, const char *kind, cJSON *attrs, cJSON *datasets)
{
    printf("file        %s\n", path);
    const cJSON *v = cJSON_GetObjectItem(attrs, "format_version");
    if (cJSON_IsNumber(v))
        printf("kind        %s (version %.0f)\n", kind, v->valuedouble);
    else
        printf("kind        %s\n", kind);
    printf("attributes\n");
    for (const cJSON *a = attrs->child; a; a = a->next) {
        printf("  %-22s ", a->string);
        print_value(stdout, a);
        putchar('\n');
    }
    printf("data sets\n");
    for (const cJSON *d = datasets->child; d; d = d->next) {
        const cJSON *shape = cJSON_GetObjectItem(d, "shape");
        printf("  %-30s %-8s (", cJSON_GetObjectItem(d, "path")->valuestring,
               cJSON_GetObjectItem(d, "type")->valuestring);
        int i = 0;
        for (const cJSON *s = shape->child; s; s = s->next, ++i)
            printf("%s%.0f", i ? ", " : "", s->valuedouble);
        printf("%s)\n", i == 1 ? "," : "");
    }
}

/* The tables of a spectrum file (text). */
static int print_spectrum_tables(const char *path)
{
    effdim_error err;
    effdim_spectrum *s = NULL;
    if (effdim_spectrum_load(path, &s, &err)) return cli_fail(CMD, &err);
    printf("eigenvalues (%s %zu of %s, tol %g: %llu converged%s)\n", s->which, s->k, s->op,
           s->tol, (unsigned long long)s->nconv, s->partial ? "; the file is PARTIAL" : "");
    printf("   i  eigenvalue              residual   bound      converged\n");
    for (size_t i = 0; i < s->k; ++i)
        printf("  %2zu  %-22.15g  %.2e   %.2e   %s\n", i + 1, s->eigenvalues[i], s->residuals[i],
               s->residual_bounds[i], s->converged[i] ? "yes" : "no");
    printf("N_eff (policy %s)\n  %-12s %-14s %-14s %s\n", s->neg_policy, "z", "Ritz (k terms)",
           s->n_eff_dense ? "exact (dense)" : "", s->n_eff_slq ? "SLQ +- SE (bias)" : "");
    for (size_t j = 0; j < s->m; ++j) {
        printf("  %-12g %-14.6g ", s->z[j], s->n_eff[j]);
        if (s->n_eff_dense) printf("%-14.6g ", s->n_eff_dense[j]);
        else printf("%-14s ", "");
        if (s->n_eff_slq)
            printf("%.6g +- %.2g (%.2g)", s->n_eff_slq[j],
                   s->n_eff_slq_se ? s->n_eff_slq_se[j] : (double)NAN,
                   s->n_eff_slq_bias ? s->n_eff_slq_bias[j] : (double)NAN);
        printf("\n");
    }
    if (s->n_eff_slq)
        printf("  (SLQ: %llu probes x %llu steps, %llu deflated; stopped: %s)\n",
               (unsigned long long)s->slq_probes, (unsigned long long)s->slq_steps,
               (unsigned long long)s->slq_deflated, s->slq_stop[0] ? s->slq_stop : "-");
    if (s->has_trace)
        printf("trace       %.8g +- %.2g (%s, %llu matvecs)\n", s->trace, s->trace_se,
               s->trace_method, (unsigned long long)s->trace_matvecs);
    if (s->command_line) printf("made by     %s\n", s->command_line);
    effdim_spectrum_free(s);
    return CLI_EXIT_OK;
}

/* ======================================================================
 * Checkpoints
 * ====================================================================== */

static cJSON *attr_to_json(const effdim_checkpoint_attr *a)
{
    if (a->is_string) {
        if (a->is_scalar && a->n == 1) return cJSON_CreateString(a->str[0]);
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < a->n; ++i) cJSON_AddItemToArray(arr, cJSON_CreateString(a->str[i]));
        return arr;
    }
    if (a->is_scalar && a->n == 1) return cJSON_CreateNumber(a->num[0]);
    return cli_json_doubles(a->num, a->n);
}

/* FNV-1a 64-bit hash of the bytes of n doubles, continuing from h (start
 * with FNV_OFFSET): a fingerprint to tell whether two checkpoints hold
 * bitwise the same numbers (the determinism checks compare it). */
#define FNV_OFFSET 0xcbf29ce484222325ULL
static uint64_t fnv1a(uint64_t h, const double *v, size_t n)
{
    const unsigned char *p = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof *v; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static const char *hex64(uint64_t h, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016llx", (unsigned long long)h);
    return buf;
}

/* Fingerprint of every optimiser state vector, in the file's (name) order. */
static uint64_t state_hash(const effdim_checkpoint_optimizer *o)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < o->n_state; ++i) h = fnv1a(h, o->state[i].v, o->state[i].n);
    return h;
}

static cJSON *checkpoint_json(const char *path, const effdim_checkpoint *c)
{
    char hex[32];
    const effdim_mlp *m = &c->mlp;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "kind", EFFDIM_CHECKPOINT_FORMAT);
    cJSON_AddNumberToObject(o, "format_version", EFFDIM_CHECKPOINT_VERSION);
    cJSON *mj = cJSON_AddObjectToObject(o, "model");
    cJSON *sizes = cJSON_AddArrayToObject(mj, "layer_sizes");
    cJSON *acts = cJSON_AddArrayToObject(mj, "activations");
    for (size_t i = 0; i <= m->n_layers; ++i)
        cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)m->sizes[i]));
    for (size_t i = 0; i < m->n_layers; ++i)
        cJSON_AddItemToArray(acts, cJSON_CreateString(effdim_activation_name(m->act[i])));
    cJSON_AddStringToObject(mj, "loss", effdim_loss_name(m->loss));
    cJSON_AddStringToObject(mj, "reduction", effdim_reduction_name(m->reduction));
    cJSON_AddNumberToObject(mj, "n_params", (double)m->n_params);
    cJSON_AddStringToObject(mj, "params_fnv1a64", hex64(fnv1a(FNV_OFFSET, c->theta, m->n_params), hex, sizeof hex));
    if (c->svd) {
        cJSON *sv = cli_svd_json(c);
        cJSON_AddStringToObject(sv, "log_sigma2_fnv1a64",
                                hex64(fnv1a(FNV_OFFSET, c->svd->log_sigma2, c->svd->svd.n_weights),
                                      hex, sizeof hex));
        cJSON_AddItemToObject(o, "svd", sv);
    }
    if (c->optimizer) {
        const effdim_checkpoint_optimizer *op = c->optimizer;
        cJSON *oj = cJSON_AddObjectToObject(o, "optimizer");
        cJSON_AddStringToObject(oj, "name", op->name);
        cJSON_AddNumberToObject(oj, "step", (double)op->step);
        cJSON *hp = cJSON_AddObjectToObject(oj, "hyperparameters");
        for (size_t i = 0; i < op->n_hparams; ++i)
            cJSON_AddNumberToObject(hp, op->hparams[i].name, op->hparams[i].value);
        for (size_t i = 0; i < op->n_extras; ++i)
            cJSON_AddItemToObject(oj, op->extras[i].name, attr_to_json(&op->extras[i]));
        cJSON *st = cJSON_AddArrayToObject(oj, "state");
        for (size_t i = 0; i < op->n_state; ++i)
            cJSON_AddItemToArray(st, cJSON_CreateString(op->state[i].name));
        cJSON_AddStringToObject(oj, "state_fnv1a64", hex64(state_hash(op), hex, sizeof hex));
    } else {
        cJSON_AddNullToObject(o, "optimizer");
    }
    if (c->training) {
        const effdim_checkpoint_training *t = c->training;
        cJSON *tj = cJSON_AddObjectToObject(o, "training");
        if (t->data_spec) cJSON_AddStringToObject(tj, "data_spec", t->data_spec);
        if (t->test_spec) cJSON_AddStringToObject(tj, "test_spec", t->test_spec);
        if (t->has_seed) cJSON_AddNumberToObject(tj, "seed", (double)t->seed);
        cJSON_AddNumberToObject(tj, "epochs", (double)t->epochs);
        for (size_t i = 0; i < t->n_metrics; ++i) {
            const effdim_named_vector *v = &t->metrics[i];
            /* JSON has no NaN: unmeasured values become null */
            cJSON *arr = cJSON_AddArrayToObject(tj, v->name);
            for (size_t k = 0; k < v->n; ++k)
                cJSON_AddItemToArray(arr, isfinite(v->v[k]) ? cJSON_CreateNumber(v->v[k])
                                                            : cJSON_CreateNull());
        }
        if (t->version) cJSON_AddStringToObject(tj, "version", t->version);
        if (t->created) cJSON_AddStringToObject(tj, "created", t->created);
        for (size_t i = 0; i < t->n_extras; ++i)
            cJSON_AddItemToObject(tj, t->extras[i].name, attr_to_json(&t->extras[i]));
    } else {
        cJSON_AddNullToObject(o, "training");
    }
    return o;
}

/* "final" value of a metric (last entry), NaN when absent. */
static double last_metric(const effdim_checkpoint *c, const char *name)
{
    size_t n;
    const double *v = effdim_checkpoint_metric(c, name, &n);
    return v && n ? v[n - 1] : (double)NAN;
}

/* The variational layers: sparsity per layer, compression, masked test error. */
static void print_svd(const effdim_checkpoint *c)
{
    const effdim_mlp *m = &c->mlp;
    const effdim_svd *s = &c->svd->svd;
    effdim_svd_metrics sm;
    effdim_svd_compute_metrics(m, s, c->theta, c->svd->log_sigma2, &sm);
    printf("svd         %s KL, log alpha clipped to [-%g, %g], tiny %g, dropped at log alpha "
           ">= %g\n            sparsity per layer:", effdim_svd_kl_name(s->kl), s->clip, s->clip,
           s->tiny, s->threshold);
    for (size_t l = 0; l < m->n_layers; ++l) {
        if (isnan(sm.sparsity[l])) printf(" (deterministic)");
        else printf(" %.4f", sm.sparsity[l]);
    }
    printf("\n            compression %.4gx (%zu of %zu weights kept), KL sum %.6g\n",
           sm.compression, sm.nonzero, sm.weights, sm.kl);
    double ta = last_metric(c, "test_accuracies");
    if (!isnan(ta)) printf("            test error %.4f (masked mean weights, last epoch)\n", 1.0 - ta);
}

static void print_checkpoint(const char *path, const effdim_checkpoint *c)
{
    const effdim_mlp *m = &c->mlp;
    printf("file        %s\n", path);
    printf("kind        %s (version %d)\n", EFFDIM_CHECKPOINT_FORMAT, EFFDIM_CHECKPOINT_VERSION);
    printf("model       ");
    for (size_t i = 0; i <= m->n_layers; ++i) printf("%s%zu", i ? "-" : "", m->sizes[i]);
    printf(", activations");
    for (size_t i = 0; i < m->n_layers; ++i) printf(" %s", effdim_activation_name(m->act[i]));
    printf(", loss %s (%s)\n", effdim_loss_name(m->loss), effdim_reduction_name(m->reduction));
    char hex[32];
    printf("parameters  %zu (fnv1a64 %s)\n", m->n_params,
           hex64(fnv1a(FNV_OFFSET, c->theta, m->n_params), hex, sizeof hex));
    if (c->svd) print_svd(c);
    if (c->optimizer) {
        const effdim_checkpoint_optimizer *o = c->optimizer;
        printf("optimizer   %s, step %lld", o->name, (long long)o->step);
        for (size_t i = 0; i < o->n_hparams; ++i)
            printf(", %s %.6g", o->hparams[i].name, o->hparams[i].value);
        for (size_t i = 0; i < o->n_extras; ++i)
            if (o->extras[i].is_string && o->extras[i].n == 1)
                printf(", %s %s", o->extras[i].name, o->extras[i].str[0]);
        printf("\n            state:");
        for (size_t i = 0; i < o->n_state; ++i) printf(" %s", o->state[i].name);
        if (o->n_state)
            printf(" (fnv1a64 %s)\n", hex64(state_hash(o), hex, sizeof hex));
        else
            printf(" (none)\n");
    } else {
        printf("optimizer   (none)\n");
    }
    if (!c->training) {
        printf("training    (no provenance)\n");
        return;
    }
    const effdim_checkpoint_training *t = c->training;
    printf("training    %llu epochs", (unsigned long long)t->epochs);
    double fl = last_metric(c, "losses"), fa = last_metric(c, "accuracies");
    double tl = last_metric(c, "test_losses"), ta = last_metric(c, "test_accuracies");
    if (!isnan(fl)) printf("; final loss %.6g", fl);
    if (!isnan(fa)) printf(", accuracy %.4f", fa);
    if (!isnan(tl)) printf("; test loss %.6g", tl);
    if (!isnan(ta)) printf(", test accuracy %.4f", ta);
    putchar('\n');
    for (size_t i = 0; i < t->n_metrics; ++i) {
        printf("  %-20s ", t->metrics[i].name);
        cJSON *arr = cli_json_doubles(t->metrics[i].v, t->metrics[i].n);
        print_value(stdout, arr);
        cJSON_Delete(arr);
        putchar('\n');
    }
    printf("provenance  data %s", t->data_spec ? t->data_spec : "(unknown)");
    if (t->test_spec) printf(", test %s", t->test_spec);
    if (t->has_seed) printf(", seed %llu", (unsigned long long)t->seed);
    printf("\n            effdim %s, created %s\n", t->version ? t->version : "?",
           t->created ? t->created : "?");
    for (size_t i = 0; i < t->n_extras; ++i) {
        printf("  %-20s ", t->extras[i].name);
        cJSON *v = attr_to_json(&t->extras[i]);
        print_value(stdout, v);
        cJSON_Delete(v);
        putchar('\n');
    }
}

/* ======================================================================
 * Sweep files
 * ====================================================================== */

static cJSON *sweep_json(const char *path, const effdim_sweep_summary *s)
{
    const effdim_sweep_table *t = s->table;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "kind", EFFDIM_SWEEP_FORMAT);
    cJSON_AddNumberToObject(o, "format_version", EFFDIM_SWEEP_VERSION);
    cJSON_AddNumberToObject(o, "shard_index", (double)t->shard_index);
    cJSON_AddNumberToObject(o, "shard_count", (double)t->shard_count);
    cJSON_AddNumberToObject(o, "grid_size", (double)t->grid_size);
    cJSON *cfg = cJSON_Parse(t->config_canonical);
    cJSON_AddItemToObject(o, "config", cfg ? cfg : cJSON_CreateString(t->config_canonical));
    cJSON_AddStringToObject(o, "config_text", s->config_text);
    cJSON *counts = cJSON_AddObjectToObject(o, "rows_by_status");
    cJSON_AddNumberToObject(counts, "ok", (double)s->n_ok);
    cJSON_AddNumberToObject(counts, "partial", (double)s->n_partial);
    cJSON_AddNumberToObject(counts, "failed", (double)s->n_failed);
    cJSON_AddNumberToObject(counts, "not_run", (double)s->n_missing);
    cJSON_AddItemToObject(o, "z", cli_json_doubles(t->z, t->nz));
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    for (size_t i = 0; i < t->n_rows; ++i) {
        const effdim_sweep_row *r = &t->rows[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "index", (double)r->index);
        cJSON_AddNumberToObject(j, "width", (double)r->width);
        cJSON_AddNumberToObject(j, "depth", (double)r->depth);
        cJSON_AddNumberToObject(j, "seed", (double)r->seed);
        cJSON_AddItemToObject(j, "label_noise", cJSON_CreateNumber(r->label_noise));
        cJSON_AddNumberToObject(j, "n_train", (double)r->n_train);
        cJSON_AddNumberToObject(j, "n_params", (double)r->n_params);
        cJSON_AddItemToObject(j, "train_loss", cJSON_CreateNumber(r->train_loss));
        cJSON_AddItemToObject(j, "train_error", cJSON_CreateNumber(r->train_error));
        cJSON_AddItemToObject(j, "test_loss", cJSON_CreateNumber(r->test_loss));
        cJSON_AddItemToObject(j, "test_error", cJSON_CreateNumber(r->test_error));
        cJSON_AddItemToObject(j, "n_eff_ritz", cli_json_doubles(r->n_eff_ritz, t->nz));
        cJSON_AddItemToObject(j, "n_eff_slq", cli_json_doubles(r->n_eff_slq, t->nz));
        cJSON_AddItemToObject(j, "n_eff_slq_se", cli_json_doubles(r->n_eff_slq_se, t->nz));
        cJSON_AddNumberToObject(j, "matvecs", (double)r->matvecs);
        cJSON_AddItemToObject(j, "seconds", cJSON_CreateNumber(r->seconds));
        cJSON_AddItemToObject(j, "seconds_train", cJSON_CreateNumber(r->seconds_train));
        cJSON_AddItemToObject(j, "seconds_curvature", cJSON_CreateNumber(r->seconds_curvature));
        cJSON_AddItemToObject(j, "seconds_lanczos", cJSON_CreateNumber(r->seconds_lanczos));
        cJSON_AddItemToObject(j, "seconds_slq", cJSON_CreateNumber(r->seconds_slq));
        cJSON_AddStringToObject(j, "status", r->status);
        cJSON_AddStringToObject(j, "message", r->message);
        cJSON_AddItemToArray(rows, j);
    }
    return o;
}

static void print_sweep(const char *path, const effdim_sweep_summary *s)
{
    const effdim_sweep_table *t = s->table;
    printf("file        %s\n", path);
    printf("kind        %s (version %d), shard %zu/%zu of a grid of %zu configurations\n",
           EFFDIM_SWEEP_FORMAT, EFFDIM_SWEEP_VERSION, t->shard_index, t->shard_count, t->grid_size);
    fputs(s->config_text, stdout);
    printf("rows        %zu of %zu: %zu ok, %zu partial, %zu failed, %zu not run yet\n", t->n_rows,
           s->shard_total, s->n_ok, s->n_partial, s->n_failed, s->n_missing);
    int noise = 0, slq = 0;
    for (size_t i = 0; i < t->n_rows; ++i) {
        noise |= !isnan(t->rows[i].label_noise);
        for (size_t j = 0; j < t->nz; ++j) slq |= !isnan(t->rows[i].n_eff_slq[j]);
    }
    printf("table       N_eff(z) over the top-%zu Ritz values%s\n", t->k, slq ? "; SLQ over the whole spectrum" : "");
    printf("  %5s %6s %5s %5s%s %7s %9s %9s %9s %8s", "index", "width", "depth", "seed",
           noise ? "  noise" : "", "n_train", "n_params", "train_err", "test_loss", "test_err");
    cli_print_neff_heads(t->z, t->nz, slq);
    printf("  status\n");
    for (size_t i = 0; i < t->n_rows; ++i) {
        const effdim_sweep_row *r = &t->rows[i];
        printf("  %5lld %6lld %5lld %5lld", (long long)r->index, (long long)r->width,
               (long long)r->depth, (long long)r->seed);
        if (noise) printf(" %6.3g", r->label_noise);
        printf(" %7lld %9lld %9.4f %9.4f %8.4f", (long long)r->n_train, (long long)r->n_params,
               r->train_error, r->test_loss, r->test_error);
        for (size_t j = 0; j < t->nz; ++j) printf(" %9.4g", r->n_eff_ritz[j]);
        for (size_t j = 0; slq && j < t->nz; ++j) printf(" %9.4g", r->n_eff_slq[j]);
        printf("  %s%s%s\n", r->status, r->message[0] ? ": " : "", r->message);
    }
}

static int inspect_sweep(const char *path, int json)
{
    effdim_error err;
    effdim_sweep_summary *s = NULL;
    if (effdim_inspect_sweep(path, &s, &err)) return cli_fail(CMD, &err);
    if (json)
        cli_json_print(sweep_json(path, s));
    else
        print_sweep(path, s);
    effdim_sweep_summary_free(s);
    return CLI_EXIT_OK;
}

/* ======================================================================
 * The command
 * ====================================================================== */

static int inspect_file(const char *path, int json)
{
    effdim_error err;
    effdim_file_summary *fs = NULL;
    if (effdim_inspect_file(path, &fs, &err)) return cli_fail(CMD, &err);
    char kind[256] = "";
    int has_format = fs->format != NULL;
    if (has_format) snprintf(kind, sizeof kind, "%s", fs->format);
    if (has_format && !strcmp(kind, EFFDIM_CHECKPOINT_FORMAT)) {
        effdim_file_summary_free(fs);
        effdim_checkpoint *c = NULL;
        if (effdim_checkpoint_load(path, &c, &err)) return cli_fail(CMD, &err);
        if (json)
            cli_json_print(checkpoint_json(path, c));
        else
            print_checkpoint(path, c);
        effdim_checkpoint_free(c);
        return CLI_EXIT_OK;
    }
    if (has_format && !strcmp(kind, EFFDIM_SWEEP_FORMAT)) {
        effdim_file_summary_free(fs);
        return inspect_sweep(path, json);
    }
    if (!has_format) snprintf(kind, sizeof kind, "HDF5 file without an effdim 'format' attribute");
    cJSON *attrs = attrs_json(fs);
    cJSON *datasets = datasets_json(fs);
    effdim_file_summary_free(fs);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", path);
        if (has_format)
            cJSON_AddStringToObject(o, "kind", kind);
        else
            cJSON_AddNullToObject(o, "kind");
        const cJSON *v = cJSON_GetObjectItem(attrs, "format_version");
        if (cJSON_IsNumber(v))
            cJSON_AddNumberToObject(o, "format_version", v->valuedouble);
        cJSON_AddItemToObject(o, "attributes", attrs);
        cJSON_AddItemToObject(o, "datasets", datasets);
        cli_json_print(o);
    } else {
        print_generic(path, kind, attrs, datasets);
        cJSON_Delete(attrs);
        cJSON_Delete(datasets);
        if (has_format && !strcmp(kind, EFFDIM_SPECTRUM_FORMAT)) return print_spectrum_tables(path);
    }
    return CLI_EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        return cli_errorf(CMD, CLI_EXIT_USAGE, "expected one FILE.h5 (effdim inspect --help)");
    }
    return inspect_file(argv[optind], json);
}
