/* lib/data_csv.c: CSV files with a header row, as pandas' to_csv(index=False) writes them.
 *
 * The file is read whole, then parsed line by line (RFC 4180 fields: comma
 * separated, optionally double-quoted with "" for a quote; a quoted field
 * cannot span lines). The header names the columns; the target column(s)
 * are chosen by name, by 0-based index "#3", or by a plain integer when no
 * header matches; several targets are written "a;b". Every other column is
 * a feature, in file order. Values are parsed with strtod and must be
 * finite: a missing field, an extra field, an empty field, text, NaN or Inf
 * each stop the load with a message naming the file, the line (1-based,
 * the header is line 1) and the column. Blank lines (including a trailing
 * one), CRLF line ends and a UTF-8 byte-order mark are accepted.
 *
 * Target kind: a single target whose values are all integers in
 * [0, 65536) gives LABELS with k = max + 1; otherwise REAL
 * (k = number of targets). effdim_load_csv_as forces either kind.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "internal.h"

/* ---- reading and splitting -------------------------------------------------- */

static effdim_status read_whole(const char *path, char **out, size_t *len, effdim_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return effdim_error_set(err, errno == ENOENT ? EFFDIM_ENOTFOUND : EFFDIM_EIO,
                                "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = effdim_alloc(cap, 1, "CSV file", err);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1) break;
        char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            effdim_error_set(err, EFFDIM_ENOMEM, "%s: cannot allocate memory for the file", path);
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = buf && ferror(f);
    fclose(f);
    if (!buf) return EFFDIM_ENOMEM;
    if (bad) {
        free(buf);
        return effdim_error_set(err, EFFDIM_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        free(buf);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: contains a NUL byte: not a text CSV file", path);
    }
    *out = buf;
    *len = n;
    return EFFDIM_OK;
}

/* Split a NUL-terminated line into fields in place (quotes removed).
 * Stores at most cap pointers; returns the number of fields, or -1 for an
 * unterminated quoted field, -2 for text after a closing quote. */
static long split_fields(char *line, char **fields, size_t cap)
{
    size_t nf = 0;
    char *p = line;
    for (;;) {
        char *start = p, end;
        char *q = p;
        while (*q == ' ' || *q == '\t') ++q;
        if (*q == '"') p = q; /* spaces before a quoted field are dropped */
        if (*p == '"') {
            char *w = p++;
            start = w;
            for (;;) {
                if (*p == '\0') return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    ++p;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            while (*p == ' ' || *p == '\t') ++p;
            if (*p != ',' && *p != '\0') return -2;
            end = *p;
            *w = '\0';
        } else {
            while (*p != ',' && *p != '\0') ++p;
            end = *p;
            *p = '\0';
        }
        if (nf < cap) fields[nf] = start;
        ++nf;
        if (end == '\0') break;
        ++p;
    }
    return (long)nf;
}

/* Next line of the buffer: NUL-terminate it (dropping a trailing CR) and
 * advance *pos; NULL at the end. */
static char *next_line(char *buf, size_t len, size_t *pos)
{
    if (*pos >= len) return NULL;
    char *line = buf + *pos;
    char *nl = memchr(line, '\n', len - *pos);
    size_t l = nl ? (size_t)(nl - line) : len - *pos;
    *pos += l + (nl ? 1 : 0);
    line[l] = '\0';
    if (l > 0 && line[l - 1] == '\r') line[l - 1] = '\0';
    return line;
}

/* 1 when the l bytes at s are only spaces, tabs and carriage returns */
static int blank_range(const char *s, size_t l)
{
    for (size_t i = 0; i < l; ++i)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static int is_blank(const char *s) { return blank_range(s, strlen(s)); }

/* ---- values and columns -------------------------------------------------------- */

static effdim_status parse_value(const char *field, const char *path, size_t line, const char *col,
                                 double *v, effdim_error *err)
{
    const char *s = field;
    while (*s == ' ' || *s == '\t') ++s;
    RETURN_ERROR_IF(*s == '\0', err, EFFDIM_EFORMAT,
                    "%s: line %zu, column '%s': empty field (missing value)", path, line, col);
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    while (*end == ' ' || *end == '\t') ++end;
    RETURN_ERROR_IF(end == s || *end != '\0', err, EFFDIM_EFORMAT,
                    "%s: line %zu, column '%s': '%.40s' is not a number", path, line, col, field);
    RETURN_ERROR_IF(!isfinite(x), err, EFFDIM_EDOM,
                    "%s: line %zu, column '%s': value '%.40s' is not finite", path, line, col, field);
    *v = x;
    return EFFDIM_OK;
}

/* 1 and *idx when s is a non-negative decimal integer (optionally after '#') */
static int parse_index(const char *s, size_t *idx)
{
    if (*s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0') return 0;
    *idx = (size_t)v;
    return 1;
}

/* Resolve one target name to a column index. */
static effdim_status find_column(const char *path, char **names, size_t ncols, const char *t,
                                 size_t *col, effdim_error *err)
{
    size_t found = SIZE_MAX, idx;
    for (size_t c = 0; c < ncols; ++c) {
        if (strcmp(names[c], t) != 0) continue;
        RETURN_ERROR_IF(found != SIZE_MAX, err, EFFDIM_EINVAL,
                        "%s: target '%s' names columns %zu and %zu: ambiguous, use \"#%zu\"", path,
                        t, found, c, found);
        found = c;
    }
    if (found == SIZE_MAX && (parse_index(t[0] == '#' ? t + 1 : t, &idx))) {
        RETURN_ERROR_IF(idx >= ncols, err, EFFDIM_ENOTFOUND,
                        "%s: target column index %zu, the header has %zu columns (0 .. %zu)", path,
                        idx, ncols, ncols - 1);
        found = idx;
    }
    if (found == SIZE_MAX) {
        char list[256] = "";
        size_t used = 0;
        for (size_t c = 0; c < ncols && used < sizeof list - 8; ++c) {
            int w = snprintf(list + used, sizeof list - used, "%s'%s'", c ? ", " : "", names[c]);
            if (w < 0) break;
            used += (size_t)w < sizeof list - used ? (size_t)w : sizeof list - used - 1;
        }
        return effdim_error_set(err, EFFDIM_ENOTFOUND, "%s: target column '%s' not found (columns: %s)",
                                path, t, list);
    }
    *col = found;
    return EFFDIM_OK;
}

/* Parse "a;b;#3" into target column indices (tcol, up to ncols); role[c] =
 * target number or -1. */
static effdim_status resolve_targets(const char *path, char **names, size_t ncols,
                                     const char *target, long *role, size_t *nt, effdim_error *err)
{
    RETURN_ERROR_IF(!target || !target[0], err, EFFDIM_EINVAL,
                    "%s: no target column given (target=NAME, #INDEX or NAME;NAME)", path);
    for (size_t c = 0; c < ncols; ++c) role[c] = -1;
    char buf[1024];
    RETURN_ERROR_IF(strlen(target) >= sizeof buf, err, EFFDIM_EINVAL, "%s: target list too long", path);
    strcpy(buf, target);
    *nt = 0;
    for (char *save = NULL, *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        size_t c = 0;
        effdim_status st = find_column(path, names, ncols, t, &c, err);
        if (st) return st;
        RETURN_ERROR_IF(role[c] >= 0, err, EFFDIM_EINVAL, "%s: target column '%s' given twice", path,
                        names[c]);
        role[c] = (long)(*nt)++;
    }
    RETURN_ERROR_IF(*nt == 0, err, EFFDIM_EINVAL, "%s: target '%s' names no column", path, target);
    RETURN_ERROR_IF(*nt >= ncols, err, EFFDIM_EINVAL,
                    "%s: every column is a target: no feature columns left", path);
    return EFFDIM_OK;
}

/* ---- the loader -------------------------------------------------------------------- */

typedef struct csv_parse {
    const char *path;
    char *buf;
    size_t len;
    char **names;   /* (ncols) header names, into buf */
    size_t ncols;
    size_t header_line;
    size_t body;    /* offset of the first data line */
    size_t nrows;
    char **fields;  /* (ncols + 1) scratch */
    long *role;     /* (ncols) target number or -1 */
    size_t nt;
} csv_parse;

static effdim_status parse_header(csv_parse *p, effdim_error *err)
{
    size_t pos = 0, line_no = 0;
    char *line;
    /* skip a UTF-8 byte-order mark and leading blank lines */
    if (p->len >= 3 && memcmp(p->buf, "\xef\xbb\xbf", 3) == 0) pos = 3;
    while ((line = next_line(p->buf, p->len, &pos)) != NULL && (++line_no, is_blank(line))) {
    }
    RETURN_ERROR_IF(!line, err, EFFDIM_EFORMAT, "%s: empty file, expected a header row", p->path);
    size_t commas = 0;
    for (const char *s = line; *s; ++s) commas += *s == ',';
    p->names = effdim_alloc(commas + 2, sizeof *p->names, "CSV header", err);
    p->fields = effdim_alloc(commas + 2, sizeof *p->fields, "CSV fields", err);
    p->role = effdim_alloc(commas + 2, sizeof *p->role, "CSV columns", err);
    if (!p->names || !p->fields || !p->role) return EFFDIM_ENOMEM;
    long nf = split_fields(line, p->names, commas + 1);
    RETURN_ERROR_IF(nf < 0, err, EFFDIM_EFORMAT, "%s: line %zu (header): %s", p->path, line_no,
                    nf == -1 ? "unterminated quoted field" : "text after a closing quote");
    p->ncols = (size_t)nf;
    for (size_t c = 0; c < p->ncols; ++c) { /* trim spaces around names */
        char *s = p->names[c];
        while (*s == ' ' || *s == '\t') ++s;
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t')) s[--l] = '\0';
        p->names[c] = s;
    }
    RETURN_ERROR_IF(p->ncols < 2, err, EFFDIM_EFORMAT,
                    "%s: header has %zu column, expected a target and at least one feature", p->path,
                    p->ncols);
    p->header_line = line_no;
    p->body = pos;
    /* count the data rows without touching the buffer */
    for (size_t q = pos; q < p->len;) {
        const char *s = p->buf + q;
        const char *nl = memchr(s, '\n', p->len - q);
        size_t l = nl ? (size_t)(nl - s) : p->len - q;
        p->nrows += !blank_range(s, l);
        q += l + 1;
    }
    RETURN_ERROR_IF(p->nrows == 0, err, EFFDIM_EFORMAT, "%s: no data rows after the header", p->path);
    return EFFDIM_OK;
}

/* Parse the data rows into X (nrows, ncols - nt) and T (nrows, nt). */
static effdim_status parse_rows(csv_parse *p, double *X, double *T, effdim_error *err)
{
    size_t pos = p->body, line_no = p->header_line, row = 0, d = p->ncols - p->nt;
    char *line;
    while ((line = next_line(p->buf, p->len, &pos)) != NULL) {
        ++line_no;
        if (is_blank(line)) continue;
        long nf = split_fields(line, p->fields, p->ncols + 1);
        RETURN_ERROR_IF(nf < 0, err, EFFDIM_EFORMAT, "%s: line %zu: %s", p->path, line_no,
                        nf == -1 ? "unterminated quoted field" : "text after a closing quote");
        RETURN_ERROR_IF((size_t)nf < p->ncols, err, EFFDIM_EFORMAT,
                        "%s: line %zu has %ld fields, the header has %zu: column '%s' is missing",
                        p->path, line_no, nf, p->ncols, p->names[nf]);
        RETURN_ERROR_IF((size_t)nf > p->ncols, err, EFFDIM_EFORMAT,
                        "%s: line %zu has %ld fields, the header has %zu: extra field after column '%s'",
                        p->path, line_no, nf, p->ncols, p->names[p->ncols - 1]);
        size_t j = 0;
        for (size_t c = 0; c < p->ncols; ++c) {
            double *dst = p->role[c] >= 0 ? &T[row * p->nt + (size_t)p->role[c]] : &X[row * d + j++];
            effdim_status st = parse_value(p->fields[c], p->path, line_no, p->names[c], dst, err);
            if (st) return st;
        }
        ++row;
    }
    return EFFDIM_OK;
}

/* integer labels in [0, max) when every value is one; *k = max + 1 */
#define EFFDIM_CSV_MAX_CLASSES 65536
static int integer_labels(const double *t, size_t n, size_t *k)
{
    double max = 0;
    for (size_t i = 0; i < n; ++i) {
        if (t[i] < 0 || t[i] >= EFFDIM_CSV_MAX_CLASSES || t[i] != floor(t[i])) return 0;
        if (t[i] > max) max = t[i];
    }
    *k = (size_t)max + 1;
    return 1;
}

static effdim_status build(csv_parse *p, int kind, effdim_dataset **out, effdim_error *err)
{
    size_t d = p->ncols - p->nt, k = p->nt;
    effdim_dataset *ds = NULL;
    double *T = effdim_alloc(p->nrows, p->nt * sizeof *T, "CSV targets", err);
    double *X = T ? effdim_alloc(p->nrows, d * sizeof *X, "CSV features", err) : NULL;
    effdim_status st = X ? parse_rows(p, X, T, err) : EFFDIM_ENOMEM;
    if (st) goto done;
    int labels = p->nt == 1 && kind != EFFDIM_TARGET_REAL && integer_labels(T, p->nrows, &k);
    if (kind == EFFDIM_TARGET_LABELS && !labels) {
        size_t c = 0;
        while (p->role[c] != 0) ++c;
        st = effdim_error_set(err, EFFDIM_EFORMAT,
                              "%s: column '%s': labels requested, but %s", p->path, p->names[c],
                              p->nt > 1 ? "several target columns were given"
                                        : "the values are not all integers in 0 .. 65535");
        goto done;
    }
    st = effdim_dataset_alloc(p->nrows, d, k, labels ? EFFDIM_TARGET_LABELS : EFFDIM_TARGET_REAL, &ds,
                              err);
    if (st) goto done;
    free(ds->X);
    ds->X = X;
    X = NULL;
    if (labels)
        for (size_t i = 0; i < p->nrows; ++i) ds->labels[i] = (int32_t)T[i];
    else
        memcpy(ds->Y, T, p->nrows * k * sizeof *T);
done:
    free(T);
    free(X);
    if (st) {
        effdim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return EFFDIM_OK;
}

effdim_status effdim_load_csv_as(const char *path, const char *target, int kind,
                                 effdim_dataset **out, effdim_error *err)
{
    csv_parse p;
    memset(&p, 0, sizeof p);
    p.path = path;
    *out = NULL;
    effdim_status st = read_whole(path, &p.buf, &p.len, err);
    if (!st) st = parse_header(&p, err);
    if (!st) st = resolve_targets(path, p.names, p.ncols, target, p.role, &p.nt, err);
    if (!st) st = build(&p, kind, out, err);
    free(p.buf);
    free(p.names);
    free(p.fields);
    free(p.role);
    return st;
}

effdim_status effdim_load_csv(const char *path, const char *target, effdim_dataset **out,
                              effdim_error *err)
{
    return effdim_load_csv_as(path, target, -1, out, err);
}
