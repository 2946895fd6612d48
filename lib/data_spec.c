/* lib/data_spec.c: data spec strings -> datasets.
 *
 * Grammar (docs/data.md has it in full, with examples):
 *
 *   spec    = kind [ ":" body ]
 *   body    = item { "," item }                 (fashion-mnist: [part (":" | ",")] items)
 *   item    = key "=" value | positional
 *   key     = [A-Za-z_][A-Za-z0-9_]*            (anything else is positional, e.g. a path)
 *
 * Each kind takes a fixed number of positionals (csv and h5: FILE; mnist-idx:
 * IMAGES,LABELS) and a fixed set of keys; an unknown key, a repeated key, a
 * missing positional and a value that does not parse are errors naming the
 * spec and the key. After loading, the common options are applied in this
 * order: n / subset (rows), scale, standardize, label_noise.
 * File paths cannot contain commas.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comm_internal.h"
#include "data_internal.h"
#include "internal.h"

#define SPEC_MAX_ITEMS 32
#define SPEC_MAX_POS 2

typedef struct spec_item {
    char *key;
    char *value;
} spec_item;

typedef struct spec {
    const char *text; /* the whole spec, for messages */
    const char *kind;
    const char *part; /* fashion-mnist: "train" or "test"; NULL otherwise */
    char *pos[SPEC_MAX_POS];
    size_t npos;
    spec_item items[SPEC_MAX_ITEMS];
    size_t nitems;
} spec;

/* What each kind accepts. */
typedef struct spec_kind {
    const char *name;
    size_t npos;           /* positionals required */
    const char *pos_names; /* for messages */
    const char *keys;      /* comma-separated */
    int loaded;            /* 1: read from files (n subsets), 0: generated (n is the size) */
} spec_kind;

#define ROW_KEYS "n,subset,subset_seed,"
#define POST_KEYS "scale,standardize,label_noise,noise_seed"

static const spec_kind kinds[] = {
    {"spirals", 0, "", "n,noise,seed," POST_KEYS, 0},
    {"regression", 0, "", "n,d,noise,seed," POST_KEYS, 0},
    {"gmm", 0, "", "n,d,classes,sep,seed," POST_KEYS, 0},
    {"teacher", 0, "", "n,d,hidden,out,classes,noise,seed," POST_KEYS, 0},
    {"fashion-mnist", 0, "", ROW_KEYS POST_KEYS, 1},
    {"mnist-idx", 2, "IMAGES,LABELS", "classes," ROW_KEYS POST_KEYS, 1},
    {"csv", 1, "FILE", "target,targets," ROW_KEYS POST_KEYS, 1},
    {"h5", 1, "FILE", ROW_KEYS POST_KEYS, 1},
    {"boston", 0, "", "part,split,standardize_targets", 1},   /* lib/data_uci.c */
    {"diabetes", 0, "", "part,split,standardize_targets", 1},
};

/* ---- parsing ----------------------------------------------------------------- */

static int is_key(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; ++i) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static int key_listed(const char *list, const char *key)
{
    size_t len = strlen(key);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == len && strncmp(p, key, len) == 0) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

static const spec_kind *find_kind(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i)
        if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
    return NULL;
}

/* Split buf (a writable copy of text) into s. */
/* "h5:" or "csv:" when a spec without a kind looks like a file of that kind
 * (the hint of an unknown-kind error), else NULL. */
static const char *file_hint(const char *text)
{
    if (strchr(text, ':')) return NULL;
    const char *dot = strrchr(text, '.');
    if (!dot) return NULL;
    if (!strcmp(dot, ".h5") || !strcmp(dot, ".hdf5") || !strcmp(dot, ".hdf")) return "h5:";
    if (!strcmp(dot, ".csv")) return "csv:";
    return NULL;
}

static effdim_status spec_parse(const char *text, char *buf, spec *s, const spec_kind **kind,
                                effdim_error *err)
{
    memset(s, 0, sizeof *s);
    s->text = text;
    char *body = strchr(buf, ':');
    if (body) *body++ = '\0';
    s->kind = buf;
    *kind = find_kind(buf);
    if (!*kind) {
        const char *hint = file_hint(text);
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "spec '%s': unknown data set '%s' (known: spirals, regression, gmm, "
                                "teacher, fashion-mnist, mnist-idx, csv, h5, boston, diabetes)%s%s%s",
                                text, buf, hint ? "; for a file write " : "", hint ? hint : "",
                                hint ? text : "");
    }
    if (!body || !*body) body = NULL;
    if (body && strcmp(buf, "fashion-mnist") == 0) {
        size_t l = strcspn(body, ":,");
        if ((l == 5 && strncmp(body, "train", 5) == 0) || (l == 4 && strncmp(body, "test", 4) == 0)) {
            s->part = l == 4 ? "test" : "train";
            body = body[l] ? body + l + 1 : NULL;
        } else {
            size_t eq = strcspn(body, "=,:");
            RETURN_ERROR_IF(body[eq] != '=' || !is_key(body, eq), err, EFFDIM_EINVAL,
                            "spec '%s': fashion-mnist part '%.*s', expected train or test", text,
                            (int)l, body);
        }
    }
    for (char *item = body; item;) {
        char *comma = strchr(item, ',');
        if (comma) *comma = '\0';
        RETURN_ERROR_IF(!*item, err, EFFDIM_EINVAL, "spec '%s': empty item (two commas, or a comma at "
                        "the end)", text);
        char *eq = strchr(item, '=');
        if (eq && is_key(item, (size_t)(eq - item))) {
            *eq = '\0';
            if (!key_listed((*kind)->keys, item)) {
                char known[256];
                size_t j = 0;
                for (const char *k = (*kind)->keys; *k && j + 3 < sizeof known; ++k) {
                    known[j++] = *k;
                    if (*k == ',') known[j++] = ' ';
                }
                known[j] = '\0';
                return effdim_error_set(err, EFFDIM_EINVAL, "spec '%s': unknown key '%s' for %s (known: %s)",
                                        text, item, s->kind, known);
            }
            for (size_t i = 0; i < s->nitems; ++i)
                RETURN_ERROR_IF(strcmp(s->items[i].key, item) == 0, err, EFFDIM_EINVAL,
                                "spec '%s': key '%s' given twice", text, item);
            RETURN_ERROR_IF(s->nitems == SPEC_MAX_ITEMS, err, EFFDIM_EINVAL,
                            "spec '%s': too many items", text);
            s->items[s->nitems].key = item;
            s->items[s->nitems++].value = eq + 1;
        } else {
            RETURN_ERROR_IF(s->npos >= (*kind)->npos, err, EFFDIM_EINVAL,
                            "spec '%s': unexpected '%s' (%s takes %s%s; options are key=value)", text,
                            item, s->kind, (*kind)->npos ? (*kind)->pos_names : "no file names",
                            (*kind)->npos ? " and options" : "");
            s->pos[s->npos++] = item;
        }
        item = comma ? comma + 1 : NULL;
    }
    RETURN_ERROR_IF(s->npos < (*kind)->npos, err, EFFDIM_EINVAL,
                    "spec '%s': %s needs %s, e.g. %s:%s", text, s->kind, (*kind)->pos_names, s->kind,
                    (*kind)->npos == 2 ? "images.gz,labels.gz" : "data.file");
    return EFFDIM_OK;
}

/* ---- values --------------------------------------------------------------------- */

static const char *get(const spec *s, const char *key)
{
    for (size_t i = 0; i < s->nitems; ++i)
        if (strcmp(s->items[i].key, key) == 0) return s->items[i].value;
    return NULL;
}

/* An unsigned integer in [lo, hi], default def when absent. */
static effdim_status get_size(const spec *s, const char *key, uint64_t def, uint64_t lo, uint64_t hi,
                              uint64_t *v, effdim_error *err)
{
    const char *t = get(s, key);
    *v = def;
    if (!t) return EFFDIM_OK;
    char *end;
    errno = 0;
    unsigned long long x = *t >= '0' && *t <= '9' ? strtoull(t, &end, 10) : 0;
    RETURN_ERROR_IF(*t < '0' || *t > '9' || *end || errno, err, EFFDIM_EINVAL,
                    "spec '%s': key '%s': '%s' is not a non-negative integer", s->text, key, t);
    RETURN_ERROR_IF(x < lo, err, EFFDIM_EINVAL, "spec '%s': key '%s': %llu is out of range, expected at least %llu",
                    s->text, key, x, (unsigned long long)lo);
    RETURN_ERROR_IF(x > hi, err, EFFDIM_EINVAL, "spec '%s': key '%s': %llu is out of range, expected at most %llu",
                    s->text, key, x, (unsigned long long)hi);
    *v = x;
    return EFFDIM_OK;
}

static effdim_status get_double(const spec *s, const char *key, double def, double lo, double hi,
                                double *v, effdim_error *err)
{
    const char *t = get(s, key);
    *v = def;
    if (!t) return EFFDIM_OK;
    char *end;
    double x = strtod(t, &end);
    RETURN_ERROR_IF(end == t || *end || !isfinite(x), err, EFFDIM_EINVAL,
                    "spec '%s': key '%s': '%s' is not a finite number", s->text, key, t);
    RETURN_ERROR_IF(x < lo && hi == HUGE_VAL, err, EFFDIM_EINVAL,
                    "spec '%s': key '%s': %g is out of range, expected at least %g", s->text, key, x, lo);
    RETURN_ERROR_IF(x < lo || x > hi, err, EFFDIM_EINVAL,
                    "spec '%s': key '%s': %g is out of range, expected %g .. %g", s->text, key, x, lo, hi);
    *v = x;
    return EFFDIM_OK;
}

/* One of the '|'-separated words in choices; *v its index (def when absent). */
static effdim_status get_choice(const spec *s, const char *key, const char *choices, int def, int *v,
                                effdim_error *err)
{
    const char *t = get(s, key);
    *v = def;
    if (!t) return EFFDIM_OK;
    int i = 0;
    size_t len = strlen(t);
    for (const char *p = choices; *p; ++i) {
        size_t l = strcspn(p, "|");
        if (l == len && strncmp(p, t, len) == 0) {
            *v = i;
            return EFFDIM_OK;
        }
        p += l + (p[l] ? 1 : 0);
    }
    return effdim_error_set(err, EFFDIM_EINVAL, "spec '%s': key '%s': '%s', expected one of %s",
                            s->text, key, t, choices);
}

/* Prefix err's message with "spec '<text>': " (and "key '<key>': " when key is
 * non-NULL), unless it already names the spec. */
static effdim_status prefix_key(const char *text, const char *key, effdim_status st, effdim_error *err)
{
    if (!err || st == EFFDIM_OK) return st;
    char tmp[EFFDIM_ERROR_MAX];
    memcpy(tmp, err->msg, sizeof tmp);
    size_t l = strlen(text);
    const char *rest = tmp;
    if (strncmp(tmp, "spec '", 6) == 0 && strncmp(tmp + 6, text, l) == 0 && strncmp(tmp + 6 + l, "': ", 3) == 0)
        rest = tmp + 6 + l + 3;
    else if (!key)
        return effdim_error_set(err, st, "spec '%s': %s", text, tmp);
    if (!key) return st;
    return effdim_error_set(err, st, "spec '%s': key '%s': %s", text, key, rest);
}

/* ---- generators ------------------------------------------------------------------- */

#define NMAX EFFDIM_DATA_MAX_ELEMENTS

static effdim_status make_generated(const spec *s, effdim_dataset **ds, effdim_error *err)
{
    uint64_t n, d, seed, classes, hidden, out;
    double noise, sep;
    effdim_status st = get_size(s, "seed", 0, 0, UINT64_MAX, &seed, err);
    if (st) return st;
    if (strcmp(s->kind, "spirals") == 0) {
        if ((st = get_size(s, "n", 1000, 2, NMAX, &n, err)) ||
            (st = get_double(s, "noise", 1.3, 0, HUGE_VAL, &noise, err)))
            return st;
        return effdim_gen_spirals(n, noise, seed, ds, err);
    }
    if (strcmp(s->kind, "regression") == 0) {
        if ((st = get_size(s, "n", 200, 1, NMAX, &n, err)) || (st = get_size(s, "d", 1, 1, NMAX, &d, err)) ||
            (st = get_double(s, "noise", 0.1, 0, HUGE_VAL, &noise, err)))
            return st;
        return effdim_gen_regression(n, d, noise, seed, ds, err);
    }
    if (strcmp(s->kind, "gmm") == 0) {
        if ((st = get_size(s, "n", 1000, 1, NMAX, &n, err)) || (st = get_size(s, "d", 10, 1, NMAX, &d, err)) ||
            (st = get_size(s, "classes", 5, 2, INT32_MAX, &classes, err)) ||
            (st = get_double(s, "sep", 3.0, 0, HUGE_VAL, &sep, err)))
            return st;
        return effdim_gen_gmm(n, d, classes, sep, seed, ds, err);
    }
    /* teacher */
    if ((st = get_size(s, "n", 1000, 1, NMAX, &n, err)) || (st = get_size(s, "d", 10, 1, NMAX, &d, err)) ||
        (st = get_size(s, "hidden", 16, 1, NMAX, &hidden, err)) ||
        (st = get_size(s, "classes", 0, 0, INT32_MAX, &classes, err)) ||
        (st = get_size(s, "out", classes ? 0 : 1, 0, NMAX, &out, err)) ||
        (st = get_double(s, "noise", 0.0, 0, HUGE_VAL, &noise, err)))
        return st;
    RETURN_ERROR_IF(classes == 1, err, EFFDIM_EINVAL,
                    "spec '%s': key 'classes': 1, expected 0 (real targets) or at least 2", s->text);
    return effdim_gen_teacher(n, d, hidden, out, classes, noise, seed, ds, err);
}

/* ---- loaders ------------------------------------------------------------------------ */

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* dir/name(.gz), preferring the .gz Debian ships */
static effdim_status fashion_file(const spec *s, const char *dir, const char *name, char *path,
                                  size_t cap, effdim_error *err)
{
    snprintf(path, cap, "%s/%s.gz", dir, name);
    if (file_exists(path)) return EFFDIM_OK;
    snprintf(path, cap, "%s/%s", dir, name);
    if (file_exists(path)) return EFFDIM_OK;
    return effdim_error_set(err, EFFDIM_ENOTFOUND,
                            "spec '%s': %s/%s.gz not found: install Debian's dataset-fashion-mnist "
                            "package (apt-get install dataset-fashion-mnist)%s",
                            s->text, dir, name,
                            getenv("EFFDIM_FASHION_MNIST_DIR") ? " or fix EFFDIM_FASHION_MNIST_DIR" : "");
}

static effdim_status load_idx(const spec *s, const effdim_idx_select *sel, effdim_dataset **ds,
                              size_t *n_total, effdim_error *err)
{
    char images[4096], labels[4096];
    uint64_t classes = 0;
    effdim_status st;
    if (strcmp(s->kind, "mnist-idx") == 0) {
        if ((st = get_size(s, "classes", 0, 1, 256, &classes, err))) return st;
        snprintf(images, sizeof images, "%s", s->pos[0]);
        snprintf(labels, sizeof labels, "%s", s->pos[1]);
    } else {
        const char *dir = getenv("EFFDIM_FASHION_MNIST_DIR");
        const char *part = s->part ? s->part : "train";
        char name[64];
        if (!dir || !*dir) dir = EFFDIM_FASHION_MNIST_DIR;
        classes = 10;
        snprintf(name, sizeof name, "%s-images-idx3-ubyte", strcmp(part, "test") == 0 ? "t10k" : "train");
        if ((st = fashion_file(s, dir, name, images, sizeof images, err))) return st;
        snprintf(name, sizeof name, "%s-labels-idx1-ubyte", strcmp(part, "test") == 0 ? "t10k" : "train");
        if ((st = fashion_file(s, dir, name, labels, sizeof labels, err))) return st;
    }
    st = effdim_idx_load_select(images, labels, (size_t)classes, sel, ds, n_total, err);
    /* the only EINVAL from the loader is n above the file's count */
    return st == EFFDIM_EINVAL ? prefix_key(s->text, "n", st, err) : st;
}

/* The spec's rows (n=, subset=) of a file; with ranks > 1 only rank's share
 * of them (the IDX kinds, and h5 with the first rows: the callers fall back
 * for the others). *n_total: the selected rows' count. */
static effdim_status make_loaded(const spec *s, int ranks, int rank, effdim_dataset **ds,
                                 size_t *n_total, effdim_error *err)
{
    uint64_t n, sseed;
    int random, kind;
    effdim_status st;
    if ((st = get_size(s, "n", 0, 1, NMAX, &n, err)) ||
        (st = get_choice(s, "subset", "first|random", 0, &random, err)) ||
        (st = get_size(s, "subset_seed", 0, 0, UINT64_MAX, &sseed, err)))
        return st;
    if (strcmp(s->kind, "boston") == 0 || strcmp(s->kind, "diabetes") == 0) {
        int part, ystd;
        if ((st = get_choice(s, "part", "all|train|test|fit|valid", 0, &part, err)) ||
            (st = get_size(s, "split", 0, 0, UINT64_MAX, &sseed, err)) ||
            (st = get_choice(s, "standardize_targets", "0|1", 1, &ystd, err)))
            return st;
        return effdim_load_uci(s->kind, part, sseed, ystd, ds, err);
    }
    if (strcmp(s->kind, "fashion-mnist") == 0 || strcmp(s->kind, "mnist-idx") == 0) {
        effdim_idx_select sel = {(size_t)n, random, sseed, ranks, rank};
        return load_idx(s, &sel, ds, n_total, err);
    }
    if (strcmp(s->kind, "csv") == 0) {
        const char *target = get(s, "target");
        RETURN_ERROR_IF(!target || !*target, err, EFFDIM_EINVAL,
                        "spec '%s': csv needs target=NAME (a header name, #INDEX, or NAME;NAME)", s->text);
        if ((st = get_choice(s, "targets", "labels|real|auto", 2, &kind, err))) return st;
        st = effdim_load_csv_as(s->pos[0], target,
                                kind == 2 ? -1 : kind == 0 ? EFFDIM_TARGET_LABELS : EFFDIM_TARGET_REAL, ds,
                                err);
    } else {
        /* the first n rows: read only those (a header may claim any shape), of
         * them only this rank's share */
        st = effdim_load_h5_rows(s->pos[0], random ? 0 : (size_t)n, random ? 1 : ranks, rank, ds,
                                 n_total, err);
        if (st == EFFDIM_EINVAL) return prefix_key(s->text, "n", st, err);
        if (!st && !random) return EFFDIM_OK;
    }
    if (st || n == 0) return st;
    if (n > (*ds)->n)
        return effdim_error_set(err, EFFDIM_EINVAL, "spec '%s': key 'n': %llu rows requested, %s has %zu",
                                s->text, (unsigned long long)n, s->pos[0], (*ds)->n);
    return random ? effdim_dataset_random_subset(*ds, n, sseed, err) : effdim_dataset_head(*ds, n, err);
}

/* ---- post-processing and the entry point ------------------------------------------------- */

/* ds holds rows [first, first + ds->n) of the n_total rows the spec selects
 * (the whole selection unless standardize=1 is off: see from_spec_share). */
static effdim_status post(const spec *s, effdim_dataset *ds, size_t n_total, size_t first,
                          effdim_error *err)
{
    int idx = strcmp(s->kind, "fashion-mnist") == 0 || strcmp(s->kind, "mnist-idx") == 0;
    int scale, standardize;
    double fraction;
    uint64_t nseed;
    effdim_status st;
    if ((st = get_choice(s, "scale", "none|pixel", idx ? 1 : 0, &scale, err)) ||
        (st = get_choice(s, "standardize", "0|1", 0, &standardize, err)) ||
        (st = get_double(s, "label_noise", 0.0, 0.0, 1.0, &fraction, err)) ||
        (st = get_size(s, "noise_seed", 0, 0, UINT64_MAX, &nseed, err)))
        return st;
    /* x / 255 exactly (as torchvision's ToTensor), not x * (1/255), which can differ by an ulp */
    for (size_t i = 0; scale && i < ds->n * ds->d; ++i) ds->X[i] /= 255.0;
    if (standardize && (st = effdim_dataset_standardize(ds, NULL, NULL, err))) return st;
    if (get(s, "label_noise")) {
        RETURN_ERROR_IF(ds->kind != EFFDIM_TARGET_LABELS, err, EFFDIM_EINVAL,
                        "spec '%s': key 'label_noise': the data set has real targets, label noise needs "
                        "class labels", s->text);
        st = effdim_dataset_label_noise_share(ds, n_total, first, fraction, nseed, NULL, err);
        if (st) return st;
    }
    return effdim_dataset_validate(ds, s->text, err);
}

void effdim_data_spec_files(const char *text, char (*paths)[4096], size_t cap, size_t *n)
{
    spec s;
    const spec_kind *kind;
    *n = 0;
    char *buf = text ? strdup(text) : NULL;
    if (buf && !spec_parse(text, buf, &s, &kind, NULL) && kind->loaded)
        for (size_t i = 0; i < s.npos && *n < cap; ++i) snprintf(paths[(*n)++], 4096, "%s", s.pos[i]);
    free(buf);
}

/* ---- file paths inside a spec ------------------------------------------------------ */

typedef int (*path_map_fn)(const char *path, const char *dir, char *out, size_t cap);

/* *out = text with every file positional p (csv, h5, mnist-idx) replaced by
 * map(p, dir) when map returns 1; other specs are copied unchanged. */
static effdim_status spec_map_paths(const char *text, const char *dir, path_map_fn map, char **out,
                                    effdim_error *err)
{
    *out = NULL;
    RETURN_ERROR_IF(!text || !dir, err, EFFDIM_EINVAL, "data spec paths: NULL argument");
    char *buf = effdim_strdup(text, err);
    if (!buf) return EFFDIM_ENOMEM;
    spec sp;
    const spec_kind *kind;
    size_t len = strlen(text), cap = len + 1 + SPEC_MAX_POS * 8192;
    char *res = effdim_alloc(cap, 1, "data spec", err);
    if (!res) {
        free(buf);
        return EFFDIM_ENOMEM;
    }
    size_t done = 0, w = 0;
    if (!spec_parse(text, buf, &sp, &kind, NULL) && kind->loaded) {
        for (size_t i = 0; i < sp.npos; ++i) {
            size_t at = (size_t)(sp.pos[i] - buf), pl = strlen(sp.pos[i]);
            char mapped[8192];
            if (!map(sp.pos[i], dir, mapped, sizeof mapped)) continue;
            memcpy(res + w, text + done, at - done);
            w += at - done;
            size_t ml = strlen(mapped);
            memcpy(res + w, mapped, ml);
            w += ml;
            done = at + pl;
        }
    }
    memcpy(res + w, text + done, len - done + 1);
    free(buf);
    *out = res;
    return EFFDIM_OK;
}

/* dir/path; but path itself when dir/path does not exist and path does (the
 * checkpoints effdim train wrote before it recorded paths relative to the
 * checkpoint's folder hold paths relative to the folder it ran in). */
static int path_under(const char *path, const char *dir, char *out, size_t cap)
{
    if (path[0] == '/' || !dir[0] || !strcmp(dir, ".")) return 0;
    int n = snprintf(out, cap, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", path);
    if (n <= 0 || (size_t)n >= cap) return 0;
    return file_exists(out) || !file_exists(path);
}

/* out = the path of `path` (relative to the current folder) seen from the
 * folder `dir`: both made absolute by realpath, the common leading folders
 * dropped, one ".." per remaining folder of dir. 0 (unchanged) when either
 * does not exist or path is absolute. */
static int path_from(const char *path, const char *dir, char *out, size_t cap)
{
    if (path[0] == '/') return 0;
    char f[4096], d[4096];
    if (!realpath(path, f) || !realpath(dir[0] ? dir : ".", d)) return 0;
    size_t common = 0, i = 0;
    for (; f[i] && f[i] == d[i]; ++i)
        if (f[i] == '/') common = i;
    if (!d[i] && f[i] == '/') common = i; /* dir is a prefix of the file's folder */
    size_t w = 0;
    for (const char *q = d + common; *q; ++q) /* one ".." per folder of d after common */
        if (*q == '/' && w + 3 < cap) {
            memcpy(out + w, "../", 3);
            w += 3;
        }
    if (!strcmp(d, "/")) w = 0;
    int n = snprintf(out + w, cap - w, "%s", f + common + 1);
    return n > 0 && (size_t)n < cap - w;
}

effdim_status effdim_data_spec_resolve(const char *text, const char *dir, char **out,
                                       effdim_error *err)
{
    return spec_map_paths(text, dir, path_under, out, err);
}

effdim_status effdim_data_spec_relative_to(const char *text, const char *dir, char **out,
                                           effdim_error *err)
{
    return spec_map_paths(text, dir, path_from, out, err);
}

/* 1 when a share of the spec can be loaded without the other rows: the IDX
 * kinds with any selection, h5 with the first rows; not with standardize=1
 * (its column statistics need every row). The rest loads the whole set. */
static int reads_share(const spec *s)
{
    const char *st = get(s, "standardize"), *sub = get(s, "subset");
    if (st && strcmp(st, "1") == 0) return 0;
    if (strcmp(s->kind, "fashion-mnist") == 0 || strcmp(s->kind, "mnist-idx") == 0) return 1;
    return strcmp(s->kind, "h5") == 0 && !(sub && strcmp(sub, "random") == 0);
}

effdim_status effdim_dataset_from_spec_share(const char *text, int ranks, int rank,
                                             effdim_dataset **out, size_t *n_total,
                                             effdim_error *err)
{
    spec s;
    const spec_kind *kind;
    effdim_dataset *ds = NULL;
    size_t total = 0, b = 0, e = 0;
    *out = NULL;
    if (n_total) *n_total = 0;
    if (ranks < 1) ranks = 1;
    RETURN_ERROR_IF(!text || !*text, err, EFFDIM_EINVAL,
                    "empty data spec (e.g. spirals:n=2000, fashion-mnist:train:n=4000, csv:FILE,target=y)");
    RETURN_ERROR_IF(rank < 0 || rank >= ranks, err, EFFDIM_EINVAL,
                    "spec '%s': rank %d of %d ranks, expected 0 .. %d", text, rank, ranks, ranks - 1);
    char *buf = effdim_strdup(text, err);
    if (!buf) return EFFDIM_ENOMEM;
    effdim_status st = spec_parse(text, buf, &s, &kind, err);
    int share = !st && ranks > 1 && kind->loaded && reads_share(&s);
    if (!st && share) { /* only this rank's rows are read */
        st = make_loaded(&s, ranks, rank, &ds, &total, err);
        if (!st) effdim_comm_share(total, ranks, rank, &b, &e);
        if (!st) st = post(&s, ds, total, b, err);
    } else if (!st) { /* the whole set, then the share */
        st = kind->loaded ? make_loaded(&s, 1, 0, &ds, &total, err) : make_generated(&s, &ds, err);
        if (!st) total = ds->n;
        if (!st) st = post(&s, ds, total, 0, err);
    }
    if (st && total && total < (size_t)ranks) /* fewer rows than ranks, as effdim_comm_check_rows */
        st = effdim_rows_for_ranks(total, ranks, text, err);
    else if (st)
        prefix_key(text, NULL, st, err); /* every message names the spec */
    if (!st && !share && ranks > 1) {
        st = effdim_rows_for_ranks(total, ranks, text, err);
        if (!st) effdim_comm_share(total, ranks, rank, &b, &e);
        if (!st) st = effdim_data_keep_range(ds, b, e, err);
    }
    if (!st) {
        ds->spec = effdim_strdup(text, err);
        if (!ds->spec) st = EFFDIM_ENOMEM;
    }
    free(buf);
    if (st) {
        effdim_dataset_free(ds);
        return st;
    }
    *out = ds;
    if (n_total) *n_total = total;
    return EFFDIM_OK;
}

effdim_status effdim_dataset_from_spec(const char *text, effdim_dataset **out, effdim_error *err)
{
    return effdim_dataset_from_spec_share(text, 1, 0, out, NULL, err);
}
