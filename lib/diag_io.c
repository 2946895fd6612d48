/* lib/diag_io.c: the diag file (format "effdim.diag", version 1) that
 * `effdim diag` writes: save and load of an effdim_diag_file; the layout is
 * in effdim/diag.h and docs/file-formats.md.
 *
 * Reading follows the root convention of every effdim file: 'format' first
 * (a spectrum or checkpoint file is refused by name), then 'format_version'
 * (newer is EVERSION), then the 'methods' list, each name a float64 [P]
 * dataset under /diag with an optional /se/<name> twin. Every name is
 * checked against the known ones (effdim_diag_name_check), the loss and
 * reduction against their parsers and the entries' string attributes
 * against plain name characters, so nothing a file says reaches a table, a
 * path or a plotting script unchecked. Optional attributes that older files
 * lack read as empty or NaN.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/diag.h"
#include "io_provenance.h"
#include "internal.h"

void effdim_diag_file_free(effdim_diag_file *f)
{
    if (!f) return;
    for (size_t i = 0; f->entries && i < f->count; ++i) {
        free(f->entries[i].v);
        free(f->entries[i].se);
    }
    free(f->entries);
    free(f->checkpoint);
    free(f->data_spec);
    free(f->command_line);
    free(f->version);
    free(f->created);
    free(f);
}

const effdim_diag_entry *effdim_diag_file_find(const effdim_diag_file *f, const char *name)
{
    for (size_t i = 0; f && name && i < f->count; ++i)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

const effdim_diag_attr *effdim_diag_entry_attr(const effdim_diag_entry *e, const char *key)
{
    for (size_t i = 0; e && key && i < e->n_attrs; ++i)
        if (!strcmp(e->attrs[i].key, key)) return &e->attrs[i];
    return NULL;
}

effdim_status effdim_diag_name_check(const char *name, effdim_error *err)
{
    effdim_diag_method m;
    if (name && (!strcmp(name, "adam-vhat") || !strcmp(name, "adam-ef") ||
                 !effdim_diag_method_parse(name, &m, NULL)))
        return EFFDIM_OK;
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "diagonal name is not one of ggn, ggn-mc, ef, adam, adam-vhat, "
                            "adam-ef, hutchinson, hessian, ivon");
}

/* The method-specific attributes an entry may carry, with their kinds. */
static const struct { const char *key; effdim_diag_attr_kind kind; } known_attrs[] = {
    {"probes", EFFDIM_DIAG_ATTR_INT},      {"rel_se", EFFDIM_DIAG_ATTR_REAL},
    {"rel_se_target", EFFDIM_DIAG_ATTR_REAL}, {"trace", EFFDIM_DIAG_ATTR_REAL},
    {"trace_se", EFFDIM_DIAG_ATTR_REAL},   {"seed", EFFDIM_DIAG_ATTR_INT},
    {"converged", EFFDIM_DIAG_ATTR_INT},   {"probe", EFFDIM_DIAG_ATTR_STRING},
    {"hvp_method", EFFDIM_DIAG_ATTR_STRING}, {"samples", EFFDIM_DIAG_ATTR_INT},
    {"groups", EFFDIM_DIAG_ATTR_INT},      {"cost_gradients", EFFDIM_DIAG_ATTR_REAL},
    {"factors", EFFDIM_DIAG_ATTR_INT},     {"beta2", EFFDIM_DIAG_ATTR_REAL},
    {"step", EFFDIM_DIAG_ATTR_INT},        {"batch", EFFDIM_DIAG_ATTR_INT},
    {"n_train", EFFDIM_DIAG_ATTR_INT},     {"optimizer", EFFDIM_DIAG_ATTR_STRING},
};
#define N_KNOWN (sizeof known_attrs / sizeof known_attrs[0])

static int known_attr(const char *key, effdim_diag_attr_kind kind)
{
    for (size_t i = 0; i < N_KNOWN; ++i)
        if (!strcmp(known_attrs[i].key, key)) return known_attrs[i].kind == kind;
    return 0;
}

/* 1 if s is a plain name: letters, digits, '_', '-', '+', '.' (at least one) */
static int plain_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '+' || *s == '.'))
            return 0;
    return 1;
}

/* ======================================================================
 * Save
 * ====================================================================== */

effdim_status effdim_h5_write_provenance(hid_t obj, const char *command_line, const char *version,
                                         const char *created, effdim_error *err)
{
    char now[64];
    effdim_status st = effdim_h5_attr_write_string(obj, "command_line",
                                                   command_line ? command_line : "", err);
    if (!st) st = effdim_h5_attr_write_string(obj, "version", version ? version : effdim_version(), err);
    if (!st)
        st = effdim_h5_attr_write_string(obj, "created",
                                         created ? created : effdim_now_iso(now, sizeof now), err);
    return st;
}

static effdim_status check_for_save(const effdim_diag_file *f, const char *path,
                                    effdim_error *err)
{
    RETURN_ERROR_IF(!f || !path, err, EFFDIM_EINVAL, "diag file: NULL argument");
    RETURN_ERROR_IF(f->count > EFFDIM_DIAG_MAX_ENTRIES || (f->count && !f->entries) ||
                        f->n_layers > EFFDIM_MLP_MAX_LAYERS || f->n_params == 0,
                    err, EFFDIM_EINVAL, "%s: %zu entries, %zu layers, %llu parameters: out of range",
                    path, f->count, f->n_layers, (unsigned long long)f->n_params);
    for (size_t i = 0; i < f->count; ++i) {
        const effdim_diag_entry *e = &f->entries[i];
        effdim_status st = effdim_diag_name_check(e->name, err);
        if (st) return st;
        RETURN_ERROR_IF(!e->v, err, EFFDIM_EINVAL, "%s: /diag/%s: no values", path, e->name);
        for (size_t a = 0; a < e->n_attrs; ++a)
            RETURN_ERROR_IF(!known_attr(e->attrs[a].key, e->attrs[a].kind) ||
                                (e->attrs[a].kind == EFFDIM_DIAG_ATTR_STRING &&
                                 !plain_name(e->attrs[a].text)),
                            err, EFFDIM_EINVAL, "%s: /diag/%s: attribute '%s' is not a known one",
                            path, e->name, e->attrs[a].key);
    }
    return EFFDIM_OK;
}

static effdim_status write_entry(hid_t g, hid_t gse, const effdim_diag_file *f,
                                 const effdim_diag_entry *e, effdim_error *err)
{
    size_t P = (size_t)f->n_params;
    effdim_status st = effdim_h5_write_doubles(g, e->name, 1, &P, e->v, err);
    if (!st && e->se) st = effdim_h5_write_doubles(gse, e->name, 1, &P, e->se, err);
    if (st) return st;
    hid_t d = H5Dopen2(g, e->name, H5P_DEFAULT);
    if (d < 0) return effdim_error_set(err, EFFDIM_EIO, "/diag/%s: cannot reopen", e->name);
    st = effdim_h5_attr_write_string(d, "method", e->method, err);
    if (!st) st = effdim_h5_attr_write_string(d, "reading", e->reading, err);
    if (!st) st = effdim_h5_attr_write_string(d, "reduction", f->reduction, err);
    if (!st) st = effdim_h5_attr_write_double(d, "scale", e->scale, err);
    if (!st) st = effdim_h5_attr_write_double(d, "seconds", e->seconds, err);
    for (size_t i = 0; !st && i < e->n_attrs; ++i) {
        const effdim_diag_attr *a = &e->attrs[i];
        if (a->kind == EFFDIM_DIAG_ATTR_INT) st = effdim_h5_attr_write_int64(d, a->key, a->integer, err);
        else if (a->kind == EFFDIM_DIAG_ATTR_REAL) st = effdim_h5_attr_write_double(d, a->key, a->real, err);
        else st = effdim_h5_attr_write_string(d, a->key, a->text, err);
    }
    H5Dclose(d);
    return st;
}

static effdim_status write_root(hid_t file, const effdim_diag_file *f, effdim_error *err)
{
    const char *names[EFFDIM_DIAG_MAX_ENTRIES];
    int64_t off[EFFDIM_MLP_MAX_LAYERS], len[EFFDIM_MLP_MAX_LAYERS];
    for (size_t i = 0; i < f->count; ++i) names[i] = f->entries[i].name;
    for (size_t l = 0; l < f->n_layers; ++l) {
        off[l] = (int64_t)f->layer_offsets[l];
        len[l] = (int64_t)f->layer_params[l];
    }
    effdim_status st = effdim_h5_attr_write_string(file, "format", EFFDIM_DIAG_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(file, "format_version", EFFDIM_DIAG_VERSION, err);
    if (!st) st = effdim_h5_attr_write_string(file, "checkpoint", f->checkpoint ? f->checkpoint : "", err);
    if (!st) st = effdim_h5_attr_write_string(file, "checkpoint_sha256", f->checkpoint_sha256, err);
    if (!st) st = effdim_h5_attr_write_string(file, "data_spec", f->data_spec ? f->data_spec : "", err);
    if (!st) st = effdim_h5_attr_write_int64(file, "n", (int64_t)f->n, err);
    if (!st) st = effdim_h5_attr_write_int64(file, "n_params", (int64_t)f->n_params, err);
    if (!st) st = effdim_h5_attr_write_string(file, "loss", f->loss, err);
    if (!st) st = effdim_h5_attr_write_string(file, "reduction", f->reduction, err);
    if (!st) st = effdim_h5_attr_write_double(file, "scale", f->scale, err);
    if (!st) st = effdim_h5_attr_write_int64(file, "seed", (int64_t)f->seed, err);
    if (!st) st = effdim_h5_attr_write_strings(file, "methods", names, f->count, err);
    if (!st) st = effdim_h5_attr_write_int64s(file, "layer_offsets", off, f->n_layers, err);
    if (!st) st = effdim_h5_attr_write_int64s(file, "layer_params", len, f->n_layers, err);
    if (!st) st = effdim_h5_write_provenance(file, f->command_line, f->version, f->created, err);
    return st;
}

effdim_status effdim_diag_file_save(const effdim_diag_file *f, const char *path, effdim_error *err)
{
    effdim_status st = check_for_save(f, path, err);
    if (st) return st;
    effdim_h5_atomic a;
    st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    hid_t g = -1, gse = -1;
    st = write_root(a.file, f, err);
    if (!st) st = effdim_h5_group(a.file, "diag", &g, err);
    if (!st) st = effdim_h5_group(a.file, "se", &gse, err);
    for (size_t i = 0; !st && i < f->count; ++i) st = write_entry(g, gse, f, &f->entries[i], err);
    if (g >= 0) H5Gclose(g);
    if (gse >= 0) H5Gclose(gse);
    if (!st) st = effdim_h5_atomic_commit(&a, err);
    if (st) effdim_h5_atomic_abort(&a);
    return st;
}

/* ======================================================================
 * Load
 * ====================================================================== */

static char *read_dup(hid_t obj, const char *name, effdim_error *err)
{
    char buf[4096];
    if (effdim_h5_attr_read_string(obj, name, buf, sizeof buf, NULL)) buf[0] = 0;
    return effdim_strdup(buf, err);
}

static effdim_status read_root(hid_t file, const char *path, effdim_diag_file *f, effdim_error *err)
{
    char fmt[64] = "";
    int64_t version = 0, n = 0, P = 0, seed = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_string(file, "format", fmt, sizeof fmt, NULL) ||
                        strcmp(fmt, EFFDIM_DIAG_FORMAT),
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'format' is '%s', expected '%s'", path,
                    fmt, EFFDIM_DIAG_FORMAT);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(file, "format_version", &version, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'format_version' is missing", path);
    RETURN_ERROR_IF(version > EFFDIM_DIAG_VERSION, err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%d)", path,
                    (long long)version, EFFDIM_DIAG_VERSION);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(file, "n_params", &P, NULL) || P < 1, err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'n_params' missing or < 1", path);
    effdim_h5_attr_read_int64(file, "n", &n, NULL);
    f->n_params = (uint64_t)P;
    f->n = n > 0 ? (uint64_t)n : 0;
    if (!effdim_h5_attr_read_int64(file, "seed", &seed, NULL)) f->seed = (uint64_t)seed;
    if (effdim_h5_attr_read_double(file, "scale", &f->scale, NULL)) f->scale = (double)NAN;
    if (effdim_h5_attr_read_string(file, "loss", f->loss, sizeof f->loss, NULL)) f->loss[0] = 0;
    if (effdim_h5_attr_read_string(file, "reduction", f->reduction, sizeof f->reduction, NULL))
        f->reduction[0] = 0;
    effdim_loss loss;
    effdim_reduction red;
    RETURN_ERROR_IF(f->loss[0] && effdim_loss_parse(f->loss, &loss, NULL), err, EFFDIM_EFORMAT,
                    "%s: /: attribute 'loss' is not a known loss", path);
    RETURN_ERROR_IF(f->reduction[0] && effdim_reduction_parse(f->reduction, &red, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'reduction' is not mean or sum", path);
    if (effdim_h5_attr_read_string(file, "checkpoint_sha256", f->checkpoint_sha256,
                                   sizeof f->checkpoint_sha256, NULL))
        f->checkpoint_sha256[0] = 0;
    int64_t off[EFFDIM_MLP_MAX_LAYERS], len[EFFDIM_MLP_MAX_LAYERS];
    size_t no = 0, nl = 0;
    if (!effdim_h5_attr_read_int64s(file, "layer_offsets", off, EFFDIM_MLP_MAX_LAYERS, &no, NULL) &&
        !effdim_h5_attr_read_int64s(file, "layer_params", len, EFFDIM_MLP_MAX_LAYERS, &nl, NULL)) {
        RETURN_ERROR_IF(no != nl, err, EFFDIM_EFORMAT,
                        "%s: /: 'layer_offsets' has %zu values, 'layer_params' %zu", path, no, nl);
        for (size_t l = 0; l < no; ++l) {
            RETURN_ERROR_IF(off[l] < 0 || len[l] < 1 || off[l] + len[l] > P, err, EFFDIM_EFORMAT,
                            "%s: /: layer %zu block is outside the %lld parameters", path, l,
                            (long long)P);
            f->layer_offsets[l] = (uint64_t)off[l];
            f->layer_params[l] = (uint64_t)len[l];
        }
        f->n_layers = no;
    }
    f->checkpoint = read_dup(file, "checkpoint", err);
    f->data_spec = read_dup(file, "data_spec", err);
    f->command_line = read_dup(file, "command_line", err);
    f->version = read_dup(file, "version", err);
    f->created = read_dup(file, "created", err);
    return f->checkpoint && f->data_spec && f->command_line && f->version && f->created
               ? EFFDIM_OK
               : EFFDIM_ENOMEM;
}

/* One vector named `name` under group g (its path for messages is grp/name). */
static effdim_status read_vector(hid_t g, const char *path, const char *grp, const char *name,
                                 size_t P, double **out, effdim_error *err)
{
    int rank = 0;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    RETURN_ERROR_IF(!effdim_h5_has_link(g, name), err, EFFDIM_EFORMAT,
                    "%s: /%s/%s: listed in 'methods' but missing", path, grp, name);
    effdim_status st = effdim_h5_shape(g, name, &rank, dims, &cls, err);
    if (st) return st;
    RETURN_ERROR_IF(rank != 1 || dims[0] != P, err, EFFDIM_EFORMAT,
                    "%s: /%s/%s: shape (%zu%s), expected (%zu)", path, grp, name,
                    rank >= 1 ? dims[0] : 0, rank > 1 ? ", ..." : "", P);
    *out = effdim_alloc(P, sizeof(double), name, err);
    if (!*out) return EFFDIM_ENOMEM;
    return effdim_h5_read_doubles(g, name, *out, P, err);
}

/* The dataset's attributes: method, reading, scale, seconds and the known
 * method-specific ones. */
static effdim_status read_entry_attrs(hid_t d, const char *path, effdim_diag_entry *e,
                                      effdim_error *err)
{
    if (effdim_h5_attr_read_string(d, "method", e->method, sizeof e->method, NULL))
        snprintf(e->method, sizeof e->method, "%s", e->name);
    effdim_diag_method m;
    RETURN_ERROR_IF(effdim_diag_method_parse(e->method, &m, NULL), err, EFFDIM_EFORMAT,
                    "%s: /diag/%s: attribute 'method' is not a known diagonal method", path,
                    e->name);
    if (effdim_h5_attr_read_string(d, "reading", e->reading, sizeof e->reading, NULL))
        e->reading[0] = 0;
    if (effdim_h5_attr_read_double(d, "scale", &e->scale, NULL)) e->scale = (double)NAN;
    if (effdim_h5_attr_read_double(d, "seconds", &e->seconds, NULL)) e->seconds = (double)NAN;
    for (size_t i = 0; i < N_KNOWN && e->n_attrs < EFFDIM_DIAG_MAX_ATTRS; ++i) {
        const char *k = known_attrs[i].key;
        if (!effdim_h5_has_attr(d, k)) continue;
        effdim_diag_attr *a = &e->attrs[e->n_attrs];
        memset(a, 0, sizeof *a);
        snprintf(a->key, sizeof a->key, "%s", k);
        a->kind = known_attrs[i].kind;
        int bad = a->kind == EFFDIM_DIAG_ATTR_INT    ? effdim_h5_attr_read_int64(d, k, &a->integer, NULL) != 0
                  : a->kind == EFFDIM_DIAG_ATTR_REAL ? effdim_h5_attr_read_double(d, k, &a->real, NULL) != 0
                                                     : effdim_h5_attr_read_string(d, k, a->text, sizeof a->text,
                                                                                  NULL) != 0 ||
                                                           !plain_name(a->text);
        RETURN_ERROR_IF(bad, err, EFFDIM_EFORMAT, "%s: /diag/%s: attribute '%s' is not %s", path,
                        e->name, k,
                        a->kind == EFFDIM_DIAG_ATTR_INT    ? "an integer"
                        : a->kind == EFFDIM_DIAG_ATTR_REAL ? "a number"
                                                           : "a plain name");
        if (!strcmp(k, "trace_se")) e->trace_se = a->real;
        ++e->n_attrs;
    }
    return EFFDIM_OK;
}

static effdim_status read_entries(hid_t file, const char *path, effdim_diag_file *f,
                                  effdim_error *err)
{
    char **names = NULL;
    size_t count = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_strings(file, "methods", &names, &count, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'methods' is missing", path);
    effdim_status st = count > EFFDIM_DIAG_MAX_ENTRIES
                           ? effdim_error_set(err, EFFDIM_EFORMAT,
                                              "%s: /: attribute 'methods' has %zu names, at most %d",
                                              path, count, EFFDIM_DIAG_MAX_ENTRIES)
                           : EFFDIM_OK;
    for (size_t i = 0; !st && i < count; ++i) {
        if (effdim_diag_name_check(names[i], NULL))
            st = effdim_error_set(err, EFFDIM_EFORMAT,
                                  "%s: /: attribute 'methods': entry %zu is not a known diagonal "
                                  "name (ggn, ggn-mc, ef, adam, adam-vhat, adam-ef, hutchinson, "
                                  "hessian, ivon)",
                                  path, i);
        for (size_t j = 0; !st && j < i; ++j)
            if (!strcmp(names[i], names[j]))
                st = effdim_error_set(err, EFFDIM_EFORMAT,
                                      "%s: /: attribute 'methods': '%s' appears twice", path,
                                      names[i]);
    }
    hid_t g = !st && effdim_h5_has_link(file, "diag") ? H5Gopen2(file, "diag", H5P_DEFAULT) : -1;
    hid_t gse = !st && effdim_h5_has_link(file, "se") ? H5Gopen2(file, "se", H5P_DEFAULT) : -1;
    if (!st && g < 0 && count) st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /diag: missing", path);
    f->entries = st ? NULL : effdim_calloc(count ? count : 1, sizeof *f->entries, "entries", err);
    if (!st && !f->entries) st = EFFDIM_ENOMEM;
    for (size_t i = 0; !st && i < count; ++i) {
        effdim_diag_entry *e = &f->entries[i];
        ++f->count;
        snprintf(e->name, sizeof e->name, "%s", names[i]);
        e->trace_se = (double)NAN;
        st = read_vector(g, path, "diag", names[i], (size_t)f->n_params, &e->v, err);
        if (!st && gse >= 0 && effdim_h5_has_link(gse, names[i]))
            st = read_vector(gse, path, "se", names[i], (size_t)f->n_params, &e->se, err);
        if (st) break;
        hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT);
        if (d >= 0) {
            st = read_entry_attrs(d, path, e, err);
            H5Dclose(d);
        }
    }
    if (g >= 0) H5Gclose(g);
    if (gse >= 0) H5Gclose(gse);
    effdim_h5_strings_free(names, count);
    return st;
}

effdim_status effdim_diag_file_load(const char *path, effdim_diag_file **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "diag file: NULL argument");
    *out = NULL;
    hid_t file;
    effdim_status st = effdim_h5_open_read(path, &file, err);
    if (st) return st;
    effdim_diag_file *f = effdim_calloc(1, sizeof *f, "diag file", err);
    if (!f) st = EFFDIM_ENOMEM;
    if (!st) st = read_root(file, path, f, err);
    if (!st) st = read_entries(file, path, f, err);
    H5Fclose(file);
    if (st) {
        effdim_diag_file_free(f);
        return st;
    }
    *out = f;
    return EFFDIM_OK;
}
