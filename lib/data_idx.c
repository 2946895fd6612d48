/* lib/data_idx.c: the IDX image and label files of MNIST and Fashion-MNIST.
 *
 * Format (LeCun et al., http://yann.lecun.com/exdb/mnist/, "file formats"):
 * a big-endian 32-bit magic 0x000008DD (0x08 = unsigned bytes, DD = number
 * of dimensions), DD big-endian 32-bit sizes, then the values in row-major
 * order. Images are 0x00000803 (n, rows, cols); labels 0x00000801 (n).
 * Files may be gzip-compressed; gzip is recognised by its magic bytes
 * 1f 8b (RFC 1952, 2.3.1) and read through zlib's gzread with a 1 MiB buffer.
 *
 * Everything is checked before it is trusted: magic numbers, zero or absurd
 * sizes (n*rows*cols overflowing size_t or above EFFDIM_DATA_MAX_ELEMENTS),
 * image and label counts, truncated files, bytes after the data, gzip
 * corruption (zlib's errors, including the CRC-32 in the gzip trailer, which
 * is why the reader always reads on to the end of the stream), and labels
 * against k. Pixels are converted to doubles chunk by chunk in one pass; only
 * the selected rows (see data_internal.h), or one rank's share of them, are
 * stored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "comm_internal.h"
#include "data_internal.h"
#include "internal.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_CHUNK ((size_t)1 << 20)

/* ---- a byte reader over a raw or gzip file -------------------------------- */

typedef struct idx_reader {
    const char *path;
    FILE *f;   /* raw file, or NULL */
    gzFile gz; /* gzip file, or NULL */
    size_t pos; /* bytes of (uncompressed) content consumed */
    size_t gz_size; /* gzip: the compressed file's size in bytes (0 if unknown) */
} idx_reader;

static void reader_close(idx_reader *r)
{
    if (r->f) fclose(r->f);
    if (r->gz) gzclose(r->gz);
    r->f = NULL;
    r->gz = NULL;
}

static effdim_status reader_open(idx_reader *r, const char *path, effdim_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return effdim_error_set(err, errno == ENOENT ? EFFDIM_ENOTFOUND : EFFDIM_EIO,
                                "%s: cannot open: %s", path, strerror(errno));
    unsigned char m[2] = {0, 0};
    size_t got = fread(m, 1, 2, f);
    if (got == 2 && m[0] == 0x1f && m[1] == 0x8b) {
        struct stat sb;
        if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) r->gz_size = (size_t)sb.st_size;
        fclose(f);
        r->gz = gzopen(path, "rb");
        if (!r->gz)
            return effdim_error_set(err, EFFDIM_EIO, "%s: zlib cannot open the gzip file: %s", path,
                                    strerror(errno));
        gzbuffer(r->gz, (unsigned)IDX_CHUNK);
        return EFFDIM_OK;
    }
    rewind(f);
    r->f = f;
    return EFFDIM_OK;
}

/* zlib's message for the last error (gzerror prefixes it with the path: dropped), or NULL */
static const char *zlib_msg(const idx_reader *r)
{
    int errnum = Z_OK;
    if (!r->gz) return NULL;
    const char *m = gzerror(r->gz, &errnum);
    if (errnum == Z_OK || !m) return NULL;
    size_t l = strlen(r->path);
    if (strncmp(m, r->path, l) == 0 && strncmp(m + l, ": ", 2) == 0) m += l + 2;
    return m;
}

/* Read up to len bytes; *got receives the count (short only at the end of
 * the data). Corrupt gzip data and read errors are errors. */
static effdim_status reader_read(idx_reader *r, void *buf, size_t len, size_t *got,
                                 effdim_error *err)
{
    unsigned char *p = buf;
    size_t total = 0;
    while (total < len) {
        size_t want = len - total;
        if (want > ((size_t)1 << 30)) want = (size_t)1 << 30;
        size_t n;
        if (r->gz) {
            int k = gzread(r->gz, p + total, (unsigned)want);
            int errnum = Z_OK;
            gzerror(r->gz, &errnum);
            const char *msg = zlib_msg(r);
            if (k < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR))
                return effdim_error_set(err, EFFDIM_EFORMAT,
                                        "%s: gzip data is corrupt after %zu uncompressed bytes (zlib: %s)",
                                        r->path, r->pos + total, msg ? msg : "error");
            n = (size_t)k;
        } else {
            n = fread(p + total, 1, want, r->f);
            if (n < want && ferror(r->f))
                return effdim_error_set(err, EFFDIM_EIO, "%s: read error after %zu bytes: %s",
                                        r->path, r->pos + total, strerror(errno));
        }
        total += n;
        if (n < want) break;
    }
    r->pos += total;
    *got = total;
    return EFFDIM_OK;
}

/* The message for data that ends early: `what` needed `len` bytes from byte
 * `start`, the content ended at byte `end`. */
static effdim_status truncated(const idx_reader *r, const char *what, size_t len, size_t start,
                               size_t end, effdim_error *err)
{
    const char *z = zlib_msg(r);
    return effdim_error_set(err, EFFDIM_EFORMAT,
                            "%s: truncated: %s: %zu bytes expected from byte %zu, the %sfile ends after %zu%s%s%s",
                            r->path, what, len, start, r->gz ? "uncompressed " : "", end, z ? " (zlib: " : "",
                            z ? z : "", z ? ")" : "");
}

/* Read exactly len bytes of `what`; a short read is a truncated file. */
static effdim_status reader_need(idx_reader *r, void *buf, size_t len, const char *what,
                                 effdim_error *err)
{
    size_t got;
    size_t start = r->pos;
    effdim_status st = reader_read(r, buf, len, &got, err);
    if (st) return st;
    if (got < len) return truncated(r, what, len, start, start + got, err);
    return EFFDIM_OK;
}

/* The data must end here: anything after it is an error. Reading on also
 * makes zlib check the gzip trailer (CRC-32 and length). */
static effdim_status reader_expect_end(idx_reader *r, const char *what, effdim_error *err)
{
    unsigned char extra;
    size_t got;
    size_t at = r->pos;
    effdim_status st = reader_read(r, &extra, 1, &got, err);
    if (st) return st;
    const char *z = zlib_msg(r);
    RETURN_ERROR_IF(z != NULL, err, EFFDIM_EFORMAT, "%s: truncated gzip stream after %s (zlib: %s)",
                    r->path, what, z);
    RETURN_ERROR_IF(got != 0, err, EFFDIM_EFORMAT,
                    "%s: unexpected bytes after %s (which end at byte %zu): not an IDX file of "
                    "these dimensions", r->path, what, at);
    return EFFDIM_OK;
}

/* For a raw file, compare its size with header + payload before anything is
 * allocated (gzip sizes are only known by reading on). */
/* Deflate cannot expand data by more than 1032:1 (a 258-byte match coded in
 * 2 bits is its best case; RFC 1951), so a gzip file of S bytes holds at
 * most 1032 S bytes; 1040 S + 64 KiB leaves room for the headers. */
#define GZIP_MAX_RATIO 1040u

static effdim_status reader_check_size(idx_reader *r, size_t header, size_t payload, const char *what,
                                       effdim_error *err)
{
    struct stat sb;
    if (r->gz && r->gz_size) {
        size_t want = header + payload, cap;
        if (effdim_mul_size(r->gz_size, GZIP_MAX_RATIO, &cap)) cap = SIZE_MAX;
        cap = cap > SIZE_MAX - 65536 ? SIZE_MAX : cap + 65536;
        RETURN_ERROR_IF(payload > SIZE_MAX - header || want > cap, err, EFFDIM_EFORMAT,
                        "%s: header claims %zu bytes of %s, but a gzip file of %zu bytes holds at "
                        "most %zu (deflate expands at most 1032:1): truncated or forged header",
                        r->path, payload, what, r->gz_size, cap);
        return EFFDIM_OK;
    }
    if (!r->f || fstat(fileno(r->f), &sb) != 0 || !S_ISREG(sb.st_mode)) return EFFDIM_OK;
    size_t size = (size_t)sb.st_size, want = header + payload;
    if (size < want) return truncated(r, what, payload, header, size, err);
    RETURN_ERROR_IF(size > want, err, EFFDIM_EFORMAT,
                    "%s: unexpected bytes after %s: the file has %zu bytes, its header implies %zu",
                    r->path, what, size, want);
    return EFFDIM_OK;
}

/* ---- headers --------------------------------------------------------------- */

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Read the magic and `ndims` sizes; each size must be >= 1. */
static effdim_status read_header(idx_reader *r, uint32_t want_magic, const char *kind,
                                 const char *const *names, size_t *dims, effdim_error *err)
{
    unsigned char b[4];
    effdim_status st = reader_need(r, b, 4, "the magic number", err);
    if (st) return st;
    uint32_t magic = be32(b);
    RETURN_ERROR_IF(magic != want_magic, err, EFFDIM_EFORMAT,
                    "%s: magic number 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, %u dimension%s)%s",
                    r->path, magic, want_magic, kind, want_magic & 0xffu,
                    (want_magic & 0xffu) == 1 ? "" : "s",
                    (magic >> 16) != 0 ? "; not an IDX file" : "");
    unsigned nd = want_magic & 0xffu;
    for (unsigned i = 0; i < nd; ++i) {
        char what[64];
        snprintf(what, sizeof what, "the %s in the header", names[i]);
        st = reader_need(r, b, 4, what, err);
        if (st) return st;
        dims[i] = be32(b);
        RETURN_ERROR_IF(dims[i] == 0, err, EFFDIM_EFORMAT, "%s: header: %s is 0, expected at least 1",
                        r->path, names[i]);
    }
    return EFFDIM_OK;
}

/* ---- labels ----------------------------------------------------------------- */

/* All n labels into a new byte array; *k from k_hint or max + 1 (at least 10).
 * The buffer grows with the data actually read, so a forged header claiming
 * billions of labels costs no more memory than the file holds. */
static effdim_status read_labels(idx_reader *r, size_t n, size_t k_hint, unsigned char **out,
                                 size_t *k, effdim_error *err)
{
    size_t cap = n < IDX_CHUNK ? n : IDX_CHUNK, have = 0;
    unsigned char *lab = effdim_alloc(cap, 1, "IDX labels", err);
    if (!lab) return EFFDIM_ENOMEM;
    effdim_status st = EFFDIM_OK;
    while (!st && have < n) {
        if (have == cap) {
            size_t ncap = cap > n / 2 ? n : 2 * cap;
            unsigned char *nl = realloc(lab, ncap);
            if (!nl) {
                st = effdim_error_set(err, EFFDIM_ENOMEM, "%s: cannot allocate %zu labels", r->path, n);
                break;
            }
            lab = nl;
            cap = ncap;
        }
        size_t got, want = cap - have;
        size_t start = r->pos;
        st = reader_read(r, lab + have, want, &got, err);
        have += got;
        if (!st && got < want) st = truncated(r, "the labels", n, 8, start + got, err);
    }
    if (!st) st = reader_expect_end(r, "the labels", err);
    if (st) goto fail;
    size_t max = 0;
    for (size_t i = 0; i < n; ++i) {
        if (k_hint && lab[i] >= k_hint) {
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: label at index %zu is %u, expected 0 .. %zu",
                                  r->path, i, (unsigned)lab[i], k_hint - 1);
            goto fail;
        }
        if (lab[i] > max) max = lab[i];
    }
    *k = k_hint ? k_hint : (max + 1 > 10 ? max + 1 : 10);
    *out = lab;
    return EFFDIM_OK;
fail:
    free(lab);
    return st;
}

/* ---- images ------------------------------------------------------------------ */

/* Make *X hold at least `need` doubles (need <= full), growing by doubling:
 * the buffer follows the pixels that really arrived, not the header's claim. */
static effdim_status grow_pixels(idx_reader *r, double **X, size_t *cap, size_t need, size_t full,
                                 effdim_error *err)
{
    if (need <= *cap) return EFFDIM_OK;
    size_t ncap = *cap ? *cap : IDX_CHUNK;
    while (ncap < need) ncap = ncap > full / 2 ? full : 2 * ncap;
    if (ncap > full) ncap = full;
    double *nx = realloc(*X, ncap * sizeof *nx);
    RETURN_ERROR_IF(!nx, err, EFFDIM_ENOMEM, "%s: cannot allocate %zu doubles for the pixels",
                    r->path, ncap);
    *X = nx;
    *cap = ncap;
    return EFFDIM_OK;
}

/* Stream n*d pixel bytes; row i goes to X row dst when it is kept: without
 * a list rows [first, first + keep), else the rows[0..keep) (increasing).
 * *X (keep, d) is allocated here, growing as pixels arrive. */
static effdim_status read_pixels(idx_reader *r, size_t n, size_t d, const size_t *rows,
                                 size_t first, size_t keep, double **Xp, effdim_error *err)
{
    unsigned char *buf = effdim_alloc(IDX_CHUNK, 1, "IDX read buffer", err);
    if (!buf) return EFFDIM_ENOMEM;
    double *X = NULL;
    size_t xcap = 0, full = keep * d;
    size_t total = n * d, off = 0, next = 0; /* next: index into rows[] */
    effdim_status st = EFFDIM_OK;
    while (off < total) {
        size_t len = total - off < IDX_CHUNK ? total - off : IDX_CHUNK, got;
        st = reader_read(r, buf, len, &got, err);
        if (!st && got < len) st = truncated(r, "the pixel data", total, 16, 16 + off + got, err);
        if (st) break;
        for (size_t p = 0; p < len;) {
            size_t row = (off + p) / d, col = (off + p) % d;
            size_t seg = d - col < len - p ? d - col : len - p;
            size_t dst = SIZE_MAX;
            if (!rows && row >= first && row - first < keep) dst = row - first;
            if (rows && next < keep && rows[next] == row) dst = next;
            if (dst != SIZE_MAX && (st = grow_pixels(r, &X, &xcap, dst * d + col + seg, full, err)))
                break;
            if (dst != SIZE_MAX) {
                double *x = X + dst * d + col;
                for (size_t j = 0; j < seg; ++j) x[j] = (double)buf[p + j];
                if (rows && col + seg == d) ++next;
            }
            p += seg;
        }
        if (st) break;
        off += len;
    }
    free(buf);
    if (!st) st = reader_expect_end(r, "the pixel data", err);
    if (!st && xcap < full) st = grow_pixels(r, &X, &xcap, full, full, err); /* never short; for safety */
    if (st) {
        free(X);
        return st;
    }
    *Xp = X;
    return EFFDIM_OK;
}

/* ---- the loader ------------------------------------------------------------------ */

effdim_status effdim_idx_load_select(const char *images_path, const char *labels_path,
                                     size_t k_hint, const effdim_idx_select *sel,
                                     effdim_dataset **out, size_t *n_sel, effdim_error *err)
{
    static const char *const image_dims[] = {"image count", "rows", "columns"};
    static const char *const label_dims[] = {"label count"};
    idx_reader ri, rl;
    size_t idims[3], n_labels, d, nd, k = 0;
    unsigned char *lab = NULL;
    size_t *rows = NULL;
    effdim_dataset *ds = NULL;
    *out = NULL;
    if (n_sel) *n_sel = 0;
    memset(&rl, 0, sizeof rl);
    effdim_status st = reader_open(&ri, images_path, err);
    if (st) return st;
    st = reader_open(&rl, labels_path, err);
    if (!st) st = read_header(&ri, IDX_MAGIC_IMAGES, "images", image_dims, idims, err);
    if (!st) st = read_header(&rl, IDX_MAGIC_LABELS, "labels", label_dims, &n_labels, err);
    if (st) goto done;
    size_t n = idims[0];
    if (effdim_mul_size(idims[1], idims[2], &d) || effdim_mul_size(n, d, &nd) ||
        nd > EFFDIM_DATA_MAX_ELEMENTS) {
        st = effdim_error_set(err, EFFDIM_EFORMAT,
                              "%s: header: absurd dimensions %zu x %zu x %zu (more than %zu values)",
                              images_path, idims[0], idims[1], idims[2], (size_t)EFFDIM_DATA_MAX_ELEMENTS);
        goto done;
    }
    if (n_labels != n) {
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: label count %zu differs from image count %zu in %s",
                              labels_path, n_labels, n, images_path);
        goto done;
    }
    st = reader_check_size(&rl, 8, n, "the labels", err);
    if (!st) st = reader_check_size(&ri, 16, nd, "the pixel data", err);
    if (st) goto done;
    size_t keep = sel && sel->keep ? sel->keep : n;
    if (keep > n) {
        st = effdim_error_set(err, EFFDIM_EINVAL, "%s: %zu rows requested, the file has %zu",
                              images_path, keep, n);
        goto done;
    }
    if (n_sel) *n_sel = keep;
    int ranks = sel && sel->ranks > 1 ? sel->ranks : 1;
    size_t b = 0, e = keep;
    if ((st = effdim_rows_for_ranks(keep, ranks, images_path, err))) goto done;
    effdim_comm_share(keep, ranks, ranks > 1 ? sel->rank : 0, &b, &e);
    st = read_labels(&rl, n, k_hint, &lab, &k, err);
    if (st) goto done;
    if (sel && sel->random && keep < n) {
        gsl_rng *g;
        rows = effdim_alloc(keep, sizeof *rows, "IDX row selection", err);
        if (!rows || !(g = effdim_data_rng(sel->seed, err))) {
            st = EFFDIM_ENOMEM;
            goto done;
        }
        effdim_data_choose_rows(g, n, keep, rows);
        gsl_rng_free(g);
    }
    /* labels now, pixels as they arrive (a header claiming 28.8 GB of pixels
     * costs nothing until the pixels are there) */
    st = effdim_dataset_alloc(e - b, 1, k, EFFDIM_TARGET_LABELS, &ds, err);
    if (st) {
        effdim_error_set(err, st, "%s: %zu images: cannot allocate the labels", images_path, e - b);
        goto done;
    }
    for (size_t j = 0; j < e - b; ++j) ds->labels[j] = lab[rows ? rows[b + j] : b + j];
    free(ds->X);
    ds->X = NULL;
    ds->d = d;
    st = read_pixels(&ri, n, d, rows ? rows + b : NULL, b, e - b, &ds->X, err);
done:
    reader_close(&ri);
    reader_close(&rl);
    free(lab);
    free(rows);
    if (st) {
        effdim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return EFFDIM_OK;
}

effdim_status effdim_load_idx(const char *images_path, const char *labels_path, size_t k_hint,
                              effdim_dataset **out, effdim_error *err)
{
    return effdim_idx_load_select(images_path, labels_path, k_hint, NULL, out, NULL, err);
}
