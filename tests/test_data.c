/* tests/test_data.c: data sets: loaders, generators, transforms, specs and every bad input.
 *
 * Loaders round-trip small files written here (IDX raw and gzip, CSV, HDF5
 * through the HDF5 API and two fixtures written by h5py). Every malformed
 * input of issue 2 is provoked on purpose and each check asserts the status
 * AND that the message names the file and the field. Generators are checked
 * against their documented rules (closed forms with noise 0, a hand-written
 * forward pass for the teacher, least squares for linear regression).
 * Transforms are checked against their definitions. One test reads Debian's
 * Fashion-MNIST test set and fails, with a note, when it is not installed.
 */
#include <hdf5.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "effdim/data.h"
#include "effdim/mlp.h"

/* ---- helpers ------------------------------------------------------------------ */

static void write_bytes(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(b, 1, len, f) == len);
    fclose(f);
}

static void write_gz(const char *path, const void *b, size_t len)
{
    gzFile g = gzopen(path, "wb9");
    CHECK(g != NULL);
    if (!g) return;
    CHECK(gzwrite(g, b, (unsigned)len) == (int)len);
    gzclose(g);
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l + 1);
    *len = fread(b, 1, (size_t)l, f);
    fclose(f);
    return b;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* the pixel value of image i at (r, c): varied, deterministic */
static unsigned char pixel(size_t i, size_t r, size_t c)
{
    return (unsigned char)((i * 131 + r * 29 + c * 7 + (i * r * c) % 17) % 256);
}

/* An IDX images file in memory: header + n*rows*cols bytes. */
static unsigned char *idx_images(uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t body = (size_t)n * rows * cols;
    unsigned char *b = malloc(16 + body);
    put_be32(b, 0x00000803);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < n; ++i)
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) b[16 + (i * rows + r) * cols + c] = pixel(i, r, c);
    *len = 16 + body;
    return b;
}

static const unsigned char small_labels[] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};

static unsigned char *idx_labels(uint32_t n, size_t *len)
{
    unsigned char *b = malloc(8 + n);
    put_be32(b, 0x00000801);
    put_be32(b + 4, n);
    for (size_t i = 0; i < n; ++i) b[8 + i] = small_labels[i % sizeof small_labels];
    *len = 8 + n;
    return b;
}

/* write images and labels (n images of rows x cols) raw or gzipped */
static void write_idx_pair(const char *img, const char *lab, uint32_t n, uint32_t rows, uint32_t cols,
                           int gz)
{
    size_t li, ll;
    unsigned char *bi = idx_images(n, rows, cols, &li), *bl = idx_labels(n, &ll);
    if (gz) {
        write_gz(img, bi, li);
        write_gz(lab, bl, ll);
    } else {
        write_bytes(img, bi, li);
        write_bytes(lab, bl, ll);
    }
    free(bi);
    free(bl);
}

static void check_idx_content(const effdim_dataset *ds, uint32_t n, uint32_t rows, uint32_t cols)
{
    CHECK(ds->n == n && ds->d == (size_t)rows * cols && ds->kind == EFFDIM_TARGET_LABELS);
    CHECK(ds->labels != NULL && ds->Y == NULL);
    int ok = 1;
    for (size_t i = 0; i < n && ok; ++i) {
        ok &= ds->labels[i] == small_labels[i % sizeof small_labels];
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) ok &= ds->X[i * ds->d + r * cols + c] == (double)pixel(i, r, c);
    }
    CHECK(ok);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* A generic HDF5 data set writer: name, file type, memory type, rank, dims. */
static void h5_put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                   const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(ds >= 0);
    CHECK(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

static hid_t h5_new(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    return f;
}

static int same_data(const effdim_dataset *a, const effdim_dataset *b)
{
    if (a->n != b->n || a->d != b->d || a->k != b->k || a->kind != b->kind) return 0;
    if (memcmp(a->X, b->X, a->n * a->d * sizeof *a->X) != 0) return 0;
    if (a->labels && memcmp(a->labels, b->labels, a->n * sizeof *a->labels) != 0) return 0;
    if (a->Y && memcmp(a->Y, b->Y, a->n * a->k * sizeof *a->Y) != 0) return 0;
    return 1;
}

/* ---- IDX ------------------------------------------------------------------------ */

static void idx_files_round_trip_raw_and_gzipped(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *img = check_tmpfile("rt-images.idx"), *lab = check_tmpfile("rt-labels.idx");
    const char *imgz = check_tmpfile("rt-images.idx.gz"), *labz = check_tmpfile("rt-labels.idx.gz");
    write_idx_pair(img, lab, 13, 5, 7, 0);
    write_idx_pair(imgz, labz, 13, 5, 7, 1);
    CHECK_OK(effdim_load_idx(img, lab, 0, &ds, &e), &e);
    if (ds) {
        check_idx_content(ds, 13, 5, 7);
        CHECK(ds->k == 10); /* max label 9 + 1, and at least 10 */
    }
    effdim_dataset_free(ds);
    CHECK_OK(effdim_load_idx(imgz, labz, 0, &ds, &e), &e);
    if (ds) check_idx_content(ds, 13, 5, 7);
    effdim_dataset_free(ds);
    /* mixed: gzip images, raw labels; k from the hint */
    CHECK_OK(effdim_load_idx(imgz, lab, 12, &ds, &e), &e);
    if (ds) {
        check_idx_content(ds, 13, 5, 7);
        CHECK(ds->k == 12);
    }
    effdim_dataset_free(ds);
    /* a file bigger than the 1 MiB read chunk, rows straddling chunk borders */
    write_idx_pair(img, lab, 1500, 29, 31, 1);
    CHECK_OK(effdim_load_idx(img, lab, 0, &ds, &e), &e);
    if (ds) check_idx_content(ds, 1500, 29, 31);
    effdim_dataset_free(ds);
}

static void truncated_idx_files_are_refused(void)
{
    effdim_error e;
    effdim_dataset *ds;
    size_t li, ll;
    unsigned char *bi = idx_images(9, 4, 6, &li), *bl = idx_labels(9, &ll);
    const char *img = check_tmpfile("trunc-images.idx"), *lab = check_tmpfile("trunc-labels.idx");
    const char *good_img = check_tmpfile("trunc-good-images.idx");
    const char *good_lab = check_tmpfile("trunc-good-labels.idx");
    write_bytes(good_img, bi, li);
    write_bytes(good_lab, bl, ll);
    /* pixel data cut short */
    write_bytes(img, bi, li - 5);
    CHECK_STATUS(effdim_load_idx(img, good_lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "trunc-images.idx", "truncated", "pixel data");
    CHECK(ds == NULL);
    /* header cut inside the row count */
    write_bytes(img, bi, 10);
    CHECK_STATUS(effdim_load_idx(img, good_lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "trunc-images.idx", "truncated", "rows in the header");
    /* empty file */
    write_bytes(img, bi, 0);
    CHECK_STATUS(effdim_load_idx(img, good_lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "trunc-images.idx", "truncated", "magic number");
    /* labels cut short */
    write_bytes(lab, bl, ll - 1);
    CHECK_STATUS(effdim_load_idx(good_img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "trunc-labels.idx", "truncated", "labels");
    /* a gzip file cut in half */
    const char *gz = check_tmpfile("trunc-images.idx.gz");
    write_gz(gz, bi, li);
    size_t lz = 0;
    unsigned char *bz = read_bytes(gz, &lz);
    write_bytes(gz, bz, lz / 2);
    CHECK_STATUS(effdim_load_idx(gz, good_lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "trunc-images.idx.gz", "truncated");
    /* a gzip file missing only its 8-byte trailer (CRC and length) */
    write_bytes(gz, bz, lz - 8);
    CHECK_STATUS(effdim_load_idx(gz, good_lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "trunc-images.idx.gz", "truncated gzip stream");
    free(bz);
    free(bi);
    free(bl);
}

static void gzip_corrupt_idx_files_are_refused(void)
{
    effdim_error e;
    effdim_dataset *ds;
    size_t li, ll, lz = 0;
    unsigned char *bi = idx_images(200, 28, 28, &li), *bl = idx_labels(200, &ll);
    const char *gz = check_tmpfile("corrupt-images.idx.gz"), *lab = check_tmpfile("corrupt-labels.idx");
    write_bytes(lab, bl, ll);
    write_gz(gz, bi, li);
    unsigned char *good = read_bytes(gz, &lz);
    CHECK(good && lz > 200);
    /* flip bytes at several places in the middle of the deflate stream */
    const double where[] = {0.3, 0.5, 0.62, 0.8};
    for (size_t t = 0; good && t < sizeof where / sizeof where[0]; ++t) {
        unsigned char *bad = malloc(lz);
        memcpy(bad, good, lz);
        size_t at = (size_t)(where[t] * (double)lz);
        for (size_t j = 0; j < 4; ++j) bad[at + j] ^= 0x5a;
        write_bytes(gz, bad, lz);
        CHECK_STATUS(effdim_load_idx(gz, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
        CHECK_MSG(&e, "corrupt-images.idx.gz", "gzip data is corrupt", "zlib");
        CHECK(ds == NULL);
        free(bad);
    }
    /* the intact file loads */
    write_bytes(gz, good, lz);
    CHECK_OK(effdim_load_idx(gz, lab, 0, &ds, &e), &e);
    effdim_dataset_free(ds);
    free(good);
    free(bi);
    free(bl);
}

static void wrong_idx_magic_numbers_are_refused(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *img = check_tmpfile("magic-images.idx"), *lab = check_tmpfile("magic-labels.idx");
    write_idx_pair(img, lab, 4, 3, 3, 0);
    /* images and labels swapped */
    CHECK_STATUS(effdim_load_idx(lab, img, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "magic-labels.idx", "magic number 0x00000801", "expected 0x00000803");
    /* labels magic wrong */
    CHECK_STATUS(effdim_load_idx(img, img, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "magic-images.idx", "magic number 0x00000803", "expected 0x00000801");
    /* float images (type 0x0d) are not unsigned bytes */
    size_t li;
    unsigned char *bi = idx_images(4, 3, 3, &li);
    bi[2] = 0x0d;
    write_bytes(img, bi, li);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "magic-images.idx", "magic number 0x00000d03");
    free(bi);
    /* not an IDX file at all */
    write_text(img, "P5\n28 28\n255\n");
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "magic-images.idx", "magic number", "not an IDX file");
}

static void idx_image_and_label_counts_must_agree(void)
{
    effdim_error e;
    effdim_dataset *ds;
    size_t li, ll;
    unsigned char *bi = idx_images(7, 2, 3, &li), *bl = idx_labels(6, &ll);
    const char *img = check_tmpfile("count-images.idx"), *lab = check_tmpfile("count-labels.idx");
    write_bytes(img, bi, li);
    write_bytes(lab, bl, ll);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "count-labels.idx", "label count 6", "image count 7", "count-images.idx");
    free(bi);
    free(bl);
}

static void zero_and_absurd_idx_dimensions_are_refused(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *img = check_tmpfile("dims-images.idx"), *lab = check_tmpfile("dims-labels.idx");
    unsigned char h[16];
    size_t ll;
    unsigned char *bl = idx_labels(5, &ll);
    write_bytes(lab, bl, ll);
    put_be32(h, 0x00000803);
    /* zero rows */
    put_be32(h + 4, 5);
    put_be32(h + 8, 0);
    put_be32(h + 12, 28);
    write_bytes(img, h, 16);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "dims-images.idx", "rows is 0");
    /* zero images */
    put_be32(h + 4, 0);
    put_be32(h + 8, 28);
    write_bytes(img, h, 16);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "dims-images.idx", "image count is 0");
    /* n*rows*cols overflows 64 bits: refused from the header, nothing allocated */
    put_be32(h + 4, 0xffffffffu);
    put_be32(h + 8, 0xffffffffu);
    put_be32(h + 12, 0xffffffffu);
    write_bytes(img, h, 16);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "dims-images.idx", "absurd dimensions", "4294967295 x 4294967295 x 4294967295");
    /* no overflow, but above EFFDIM_DATA_MAX_ELEMENTS */
    put_be32(h + 4, 0x80000000u);
    put_be32(h + 8, 28);
    put_be32(h + 12, 28);
    write_bytes(img, h, 16);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "dims-images.idx", "absurd dimensions", "2147483648 x 28 x 28");
    /* a label file claiming 4 billion labels, paired with 4 billion tiny images */
    put_be32(h + 4, 0xffffffffu);
    put_be32(h + 8, 1);
    put_be32(h + 12, 1);
    write_bytes(img, h, 16);
    unsigned char hl[8];
    put_be32(hl, 0x00000801);
    put_be32(hl + 4, 0xffffffffu);
    write_bytes(lab, hl, 8);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "dims-labels.idx", "truncated", "labels");
    /* the same claim gzipped: deflate expands at most 1032:1, so a 26-byte
     * gzip file cannot hold 4 GB: refused before reading */
    const char *labz = check_tmpfile("dims-labels.idx.gz"), *imgz = check_tmpfile("dims-images.idx.gz");
    write_gz(labz, hl, 8);
    write_gz(imgz, h, 16);
    CHECK_STATUS(effdim_load_idx(imgz, labz, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "dims-labels.idx.gz", "header claims 4294967295 bytes", "gzip file of 26 bytes");
    free(bl);
}

static void idx_labels_above_k_and_trailing_bytes_are_refused(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *img = check_tmpfile("k-images.idx"), *lab = check_tmpfile("k-labels.idx");
    write_idx_pair(img, lab, 8, 2, 2, 0);
    /* small_labels[5] = 9 is the first label >= 6 */
    CHECK_STATUS(effdim_load_idx(img, lab, 6, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "k-labels.idx", "label at index 5 is 9", "expected 0 .. 5");
    size_t li;
    unsigned char *bi = idx_images(8, 2, 2, &li);
    unsigned char *more = malloc(li + 3);
    memcpy(more, bi, li);
    memset(more + li, 0x7f, 3);
    write_bytes(img, more, li + 3);
    CHECK_STATUS(effdim_load_idx(img, lab, 0, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "k-images.idx", "unexpected bytes after the pixel data");
    CHECK_STATUS(effdim_load_idx(check_tmpfile("no-such.idx"), lab, 0, &ds, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "no-such.idx", "cannot open");
    free(more);
    free(bi);
}

/* ---- CSV ------------------------------------------------------------------------ */

static void csv_loads_labels_real_targets_quotes_crlf_and_blank_lines(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *path = check_tmpfile("iris.csv");
    write_text(path, "\xef\xbb\xbf\"sepal length\",width,\"the \"\"label\"\"\",z\r\n"
                     "5.125,3.5,2,0.25\r\n"
                     "4.875,-3.0,0,1e-3\r\n"
                     "\r\n"
                     " 6.25 , \"2.75\",1,-7.5\r\n"
                     "\r\n");
    CHECK_OK(effdim_load_csv(path, "the \"label\"", &ds, &e), &e);
    if (ds) {
        CHECK(ds->n == 3 && ds->d == 3 && ds->kind == EFFDIM_TARGET_LABELS && ds->k == 3);
        const double X[9] = {5.125, 3.5, 0.25, 4.875, -3.0, 1e-3, 6.25, 2.75, -7.5};
        CHECK_VEC_CLOSE(ds->X, X, 9, 0);
        CHECK(ds->labels[0] == 2 && ds->labels[1] == 0 && ds->labels[2] == 1);
    }
    effdim_dataset_free(ds);
    /* by index: "#3" is z (not integers: real) */
    CHECK_OK(effdim_load_csv(path, "#3", &ds, &e), &e);
    if (ds) {
        CHECK(ds->kind == EFFDIM_TARGET_REAL && ds->k == 1 && ds->d == 3);
        const double Y[3] = {0.25, 1e-3, -7.5}, X0[3] = {5.125, 3.5, 2};
        CHECK_VEC_CLOSE(ds->Y, Y, 3, 0);
        CHECK_VEC_CLOSE(ds->X, X0, 3, 0);
    }
    effdim_dataset_free(ds);
    /* a plain integer index when no header matches; two targets */
    CHECK_OK(effdim_load_csv(path, "1", &ds, &e), &e);
    if (ds) CHECK(ds->kind == EFFDIM_TARGET_REAL && ds->Y[1] == -3.0 && ds->X[1] == 2);
    effdim_dataset_free(ds);
    CHECK_OK(effdim_load_csv(path, "z;sepal length", &ds, &e), &e);
    if (ds) {
        CHECK(ds->kind == EFFDIM_TARGET_REAL && ds->k == 2 && ds->d == 2);
        const double Y[6] = {0.25, 5.125, 1e-3, 4.875, -7.5, 6.25};
        CHECK_VEC_CLOSE(ds->Y, Y, 6, 0);
    }
    effdim_dataset_free(ds);
    /* forced real targets on an integer column */
    CHECK_OK(effdim_load_csv_as(path, "#2", EFFDIM_TARGET_REAL, &ds, &e), &e);
    if (ds) CHECK(ds->kind == EFFDIM_TARGET_REAL && ds->Y[0] == 2.0 && ds->Y[2] == 1.0);
    effdim_dataset_free(ds);
    CHECK_STATUS(effdim_load_csv_as(path, "z", EFFDIM_TARGET_LABELS, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "iris.csv", "column 'z'", "labels requested");
    /* no trailing newline, LF line ends */
    write_text(path, "a,b,y\n1.5,2.5,1\n-0.5,0.125,0");
    CHECK_OK(effdim_load_csv(path, "y", &ds, &e), &e);
    if (ds) CHECK(ds->n == 2 && ds->k == 2 && ds->X[3] == 0.125 && ds->labels[0] == 1);
    effdim_dataset_free(ds);
}

/* load path with target and expect code, with each string in the message */
#define CSV_BAD(text, target, code, ...)                                       \
    do {                                                                       \
        write_text(path, text);                                                \
        CHECK_STATUS(effdim_load_csv(path, target, &ds, &e), code, &e);        \
        CHECK_MSG(&e, "bad.csv", __VA_ARGS__);                                 \
        CHECK(ds == NULL);                                                     \
    } while (0)

static void csv_missing_extra_non_numeric_and_non_finite_fields_are_refused(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *path = check_tmpfile("bad.csv");
    const char *head = "x1,x2,x3,y\n0.5,1.5,2.5,1\n";
    char text[512];
#define ROW(r) (snprintf(text, sizeof text, "%s%s", head, r), text)
    CSV_BAD(ROW("1,2,3\n"), "y", EFFDIM_EFORMAT, "line 3 has 3 fields", "header has 4", "column 'y' is missing");
    CSV_BAD(ROW("1,2,3,0,9\n"), "y", EFFDIM_EFORMAT, "line 3 has 5 fields", "extra field after column 'y'");
    CSV_BAD(ROW("1,abc,3,0\n"), "y", EFFDIM_EFORMAT, "line 3", "column 'x2'", "'abc' is not a number");
    CSV_BAD(ROW("1,2.5kg,3,0\n"), "y", EFFDIM_EFORMAT, "line 3", "column 'x2'", "'2.5kg' is not a number");
    CSV_BAD(ROW("1,2,,0\n"), "y", EFFDIM_EFORMAT, "line 3", "column 'x3'", "missing value");
    CSV_BAD(ROW("1,2,3,\n"), "y", EFFDIM_EFORMAT, "line 3", "column 'y'", "missing value");
    CSV_BAD(ROW("nan,2,3,0\n"), "y", EFFDIM_EDOM, "line 3", "column 'x1'", "'nan' is not finite");
    CSV_BAD(ROW("1,2,-inf,0\n"), "y", EFFDIM_EDOM, "line 3", "column 'x3'", "not finite");
    CSV_BAD(ROW("1,2,3,1e999\n"), "y", EFFDIM_EDOM, "line 3", "column 'y'", "'1e999' is not finite");
    CSV_BAD(ROW("1,2,3,NaN\n"), "#3", EFFDIM_EDOM, "line 3", "column 'y'", "not finite");
    CSV_BAD(ROW("1,\"2,3,0\n"), "y", EFFDIM_EFORMAT, "line 3", "unterminated quoted field");
    CSV_BAD(ROW("\n\n1,2,3,0\n1,2\n"), "y", EFFDIM_EFORMAT, "line 6 has 2 fields");
    CSV_BAD(head, "price", EFFDIM_ENOTFOUND, "target column 'price' not found", "'x1', 'x2', 'x3', 'y'");
    CSV_BAD(head, "#4", EFFDIM_ENOTFOUND, "target column index 4", "4 columns");
    CSV_BAD(head, "y;y", EFFDIM_EINVAL, "target column 'y' given twice");
    CSV_BAD("x1,y\n", "y", EFFDIM_EFORMAT, "no data rows");
    CSV_BAD("", "y", EFFDIM_EFORMAT, "empty file", "header");
    CSV_BAD("y\n1\n", "y", EFFDIM_EFORMAT, "header has 1 column");
    CSV_BAD("a,a,y\n1,2,3\n", "a", EFFDIM_EINVAL, "'a' names columns 0 and 1", "#0");
#undef ROW
    CHECK_STATUS(effdim_load_csv(check_tmpfile("absent.csv"), "y", &ds, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "absent.csv", "cannot open");
}

/* ---- HDF5 ----------------------------------------------------------------------- */

static void h5_save_and_load_round_trip(void)
{
    effdim_error e;
    effdim_dataset *a, *b;
    const char *path = check_tmpfile("rt.h5");
    CHECK_OK(effdim_gen_gmm(57, 4, 6, 2.385, 11, &a, &e), &e);
    if (!a) return;
    a->spec = strdup("gmm:n=57");
    /* a subset without class 5 keeps k = 6 through num_classes */
    for (size_t i = 0; i < a->n; ++i)
        if (a->labels[i] == 5) a->labels[i] = 4;
    CHECK_OK(effdim_save_h5(a, path, &e), &e);
    CHECK_OK(effdim_load_h5(path, &b, &e), &e);
    if (b) CHECK(same_data(a, b) && b->k == 6);
    effdim_dataset_free(b);
    effdim_dataset_free(a);
    CHECK_OK(effdim_gen_regression(31, 3, 0.5, 2, &a, &e), &e);
    if (!a) return;
    CHECK_OK(effdim_save_h5(a, path, &e), &e);
    CHECK_OK(effdim_load_h5(path, &b, &e), &e);
    if (b) CHECK(same_data(a, b) && b->kind == EFFDIM_TARGET_REAL && b->k == 1);
    effdim_dataset_free(b);
    effdim_dataset_free(a);
}

static void h5_files_written_by_h5py_load(void)
{
    effdim_error e;
    effdim_dataset *ds;
    CHECK_OK(effdim_load_h5(check_fixture("data_h5py_labels.h5"), &ds, &e), &e);
    if (ds) {
        const double X[15] = {0.125, -2.5, 3.75, 1.5, 0.0625, -7.25, -0.375, 4.5, 2.125,
                              6.0, -1.875, 0.5, -3.25, 2.75, -0.625};
        const int32_t y[5] = {2, 0, 3, 1, 2};
        CHECK(ds->n == 5 && ds->d == 3 && ds->k == 4 && ds->kind == EFFDIM_TARGET_LABELS);
        CHECK_VEC_CLOSE(ds->X, X, 15, 0);
        CHECK(memcmp(ds->labels, y, sizeof y) == 0);
    }
    effdim_dataset_free(ds);
    CHECK_OK(effdim_load_h5(check_fixture("data_h5py_targets.h5"), &ds, &e), &e);
    if (ds) {
        const double X[8] = {2.385, -1.125, 0.5, 3.0, -4.75, 1.0625, 7.5, -0.25};
        const double Y[8] = {0.5, -1.25, 2.0, 0.375, -3.5, 1.5, 0.0, -0.0625};
        CHECK(ds->n == 4 && ds->d == 2 && ds->k == 2 && ds->kind == EFFDIM_TARGET_REAL);
        CHECK_VEC_CLOSE(ds->X, X, 8, 0);
        CHECK_VEC_CLOSE(ds->Y, Y, 8, 0);
    }
    effdim_dataset_free(ds);
}

static void h5_float32_x_uint8_labels_and_1d_float_targets_load(void)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *path = check_tmpfile("layouts.h5");
    const float X[6] = {1.5f, -0.25f, 3.125f, 2.0f, -7.5f, 0.375f};
    const unsigned char y8[3] = {1, 4, 0};
    const double y1[3] = {0.5, -2.385, 8.0};
    hsize_t dx[2] = {3, 2}, dy[1] = {3};
    hid_t f = h5_new(path);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dx, X);
    h5_put(f, "y", H5T_STD_U8LE, H5T_NATIVE_UCHAR, 1, dy, y8);
    H5Fclose(f);
    CHECK_OK(effdim_load_h5(path, &ds, &e), &e);
    if (ds) {
        CHECK(ds->kind == EFFDIM_TARGET_LABELS && ds->k == 5 && ds->labels[1] == 4);
        CHECK(ds->X[2] == 3.125 && ds->X[4] == -7.5);
    }
    effdim_dataset_free(ds);
    f = h5_new(path);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dx, X);
    h5_put(f, "y", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dy, y1);
    H5Fclose(f);
    CHECK_OK(effdim_load_h5(path, &ds, &e), &e);
    if (ds) CHECK(ds->kind == EFFDIM_TARGET_REAL && ds->k == 1 && ds->Y[1] == -2.385);
    effdim_dataset_free(ds);
}

/* write /X (rx, cx) doubles and /y given by the caller, then expect failure */
static void h5_bad(const char *name, const double *X, hsize_t rx, hsize_t cx, int xrank, hid_t ytype,
                   hid_t ymem, int yrank, const hsize_t *ydims, const void *y, effdim_status code,
                   const char *m1, const char *m2, const char *m3)
{
    effdim_error e;
    effdim_dataset *ds;
    const char *path = check_tmpfile(name);
    hid_t f = h5_new(path);
    hsize_t dx[2] = {rx, cx};
    if (X) h5_put(f, "X", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, xrank, dx, X);
    if (y) h5_put(f, "y", ytype, ymem, yrank, ydims, y);
    H5Fclose(f);
    CHECK_STATUS(effdim_load_h5(path, &ds, &e), code, &e);
    CHECK_MSG(&e, name, m1, m2, m3);
    CHECK(ds == NULL);
}

static void h5_non_finite_values_and_bad_shapes_are_refused(void)
{
    double X[6] = {1.5, -2.25, 0.5, 3.0, 4.125, -1.0};
    const int64_t y[3] = {1, 0, 2}, yneg[3] = {1, -3, 0};
    const double Y[6] = {0.5, 1.5, -2.5, 3.5, 4.5, -5.5};
    hsize_t d3[1] = {3}, d2[1] = {2}, d32[2] = {3, 2};
    X[5] = NAN;
    h5_bad("nan-x.h5", X, 3, 2, 2, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, y, EFFDIM_EDOM, "/X",
           "row 2, column 1", "not finite");
    X[5] = -1.0;
    double Yinf[6];
    memcpy(Yinf, Y, sizeof Y);
    Yinf[3] = INFINITY;
    h5_bad("inf-y.h5", X, 3, 2, 2, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d32, Yinf, EFFDIM_EDOM, "/y",
           "row 1, column 1", "inf is not finite");
    h5_bad("no-y.h5", X, 3, 2, 2, 0, 0, 0, NULL, NULL, EFFDIM_ENOTFOUND, "/y", "missing", "");
    h5_bad("no-x.h5", NULL, 0, 0, 0, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, y, EFFDIM_ENOTFOUND, "/X",
           "missing", "");
    h5_bad("short-y.h5", X, 3, 2, 2, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d2, y, EFFDIM_EFORMAT, "/y",
           "shape (2)", "expected (3)");
    h5_bad("neg-y.h5", X, 3, 2, 2, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, yneg, EFFDIM_EFORMAT, "/y",
           "label at row 1 is -3", "");
    h5_bad("rank1-x.h5", X, 6, 0, 1, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, y, EFFDIM_EFORMAT, "/X",
           "rank 1", "expected 2");
    h5_bad("empty-x.h5", X, 0, 2, 2, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, y, EFFDIM_EFORMAT, "/X",
           "shape (0, 2)", "at least one row");
    const int64_t y2d[6] = {0, 1, 1, 0, 2, 2};
    h5_bad("int2d-y.h5", X, 3, 2, 2, H5T_STD_I64LE, H5T_NATIVE_INT64, 2, d32, y2d, EFFDIM_EFORMAT, "/y",
           "shape (3, 2)", "integer labels");
    /* integer X */
    effdim_error e;
    effdim_dataset *ds;
    const char *path = check_tmpfile("int-x.h5");
    hid_t f = h5_new(path);
    hsize_t dx[2] = {3, 2};
    h5_put(f, "X", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, dx, y2d);
    h5_put(f, "y", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, y);
    H5Fclose(f);
    CHECK_STATUS(effdim_load_h5(path, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "int-x.h5", "/X", "float32 or float64");
    /* num_classes smaller than the labels */
    path = check_tmpfile("k-small.h5");
    f = h5_new(path);
    h5_put(f, "X", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dx, X);
    h5_put(f, "y", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d3, y);
    hid_t yd = H5Dopen2(f, "y", H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(yd, "num_classes", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int64_t two = 2;
    H5Awrite(at, H5T_NATIVE_INT64, &two);
    H5Aclose(at);
    H5Sclose(sp);
    H5Dclose(yd);
    H5Fclose(f);
    CHECK_STATUS(effdim_load_h5(path, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "k-small.h5", "/y", "num_classes = 2", "largest label is 2");
    /* not HDF5 */
    path = check_tmpfile("text.h5");
    write_text(path, "X,y\n1,2\n");
    CHECK_STATUS(effdim_load_h5(path, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "text.h5", "not an HDF5 file");
}

/* ---- generators ----------------------------------------------------------------------- */

static void spirals_follow_the_maddox_rule(void)
{
    effdim_error e;
    effdim_dataset *clean, *noisy, *again, *other;
    const size_t n = 1001;
    CHECK_OK(effdim_gen_spirals(n, 0.0, 42, &clean, &e), &e);
    CHECK_OK(effdim_gen_spirals(n, 0.7, 42, &noisy, &e), &e);
    CHECK_OK(effdim_gen_spirals(n, 0.7, 42, &again, &e), &e);
    CHECK_OK(effdim_gen_spirals(n, 0.7, 43, &other, &e), &e);
    if (!clean || !noisy || !again || !other) return;
    CHECK(clean->n == n && clean->d == 2 && clean->k == 2 && clean->kind == EFFDIM_TARGET_LABELS);
    CHECK(same_data(noisy, again));
    CHECK(!same_data(noisy, other));
    const double rmax = 600.0 * 2.0 * 3.14159265358979323846 / 360.0;
    double worst = 0, top = 0, zsum = 0, zsq = 0;
    size_t count[2] = {0, 0}, nz = 0;
    int neg_ok = 1;
    for (size_t i = 0; i < n; ++i) {
        const double *p = clean->X + 2 * i;
        count[clean->labels[i]]++;
        CHECK(clean->labels[i] == (int32_t)(i % 2));
        if (i % 2 == 1) {
            neg_ok &= p[0] == -p[-2] && p[1] == -p[-1];
            neg_ok &= noisy->X[2 * i] == -noisy->X[2 * i - 2];
            continue;
        }
        double r = hypot(p[0], p[1]) / 1.5; /* |1.5 r (-cos r, sin r)| = 1.5 r */
        worst = fmax(worst, fmax(fabs(p[0] + 1.5 * cos(r) * r), fabs(p[1] - 1.5 * sin(r) * r)));
        top = fmax(top, r);
        CHECK(r <= rmax);
        /* the noise is noise * N(0, 1) on top of the same radius */
        for (int j = 0; j < 2; ++j) {
            double z = (noisy->X[2 * i + j] - p[j]) / 0.7;
            zsum += z;
            zsq += z * z;
            ++nz;
        }
    }
    CHECK(neg_ok);
    CHECK(count[0] == 501 && count[1] == 500);
    CHECK(worst < 1e-12);
    CHECK(top > 0.99 * rmax);
    double zm = zsum / (double)nz, zsd = sqrt(zsq / (double)nz - zm * zm);
    check_note("radius max %.4f of %.4f; noise mean %.3f sd %.3f over %zu draws", top, rmax, zm, zsd, nz);
    CHECK(fabs(zm) < 4.0 / sqrt((double)nz));
    CHECK(fabs(zsd - 1.0) < 0.08);
    effdim_dataset_free(clean);
    effdim_dataset_free(noisy);
    effdim_dataset_free(again);
    effdim_dataset_free(other);
    effdim_dataset *ds;
    CHECK_STATUS(effdim_gen_spirals(100, -0.5, 1, &ds, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "spirals", "noise = -0.5");
    CHECK_STATUS(effdim_gen_spirals(1, 0.5, 1, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "spirals", "n = 1");
}

static void regression_follows_its_rule(void)
{
    effdim_error e;
    effdim_dataset *a, *b;
    CHECK_OK(effdim_gen_regression(300, 1, 0.0, 5, &a, &e), &e);
    CHECK_OK(effdim_gen_regression(300, 1, 0.0, 5, &b, &e), &e);
    if (!a || !b) return;
    CHECK(same_data(a, b) && a->kind == EFFDIM_TARGET_REAL && a->k == 1 && a->d == 1);
    double worst = 0, lo = 1, hi = -1;
    for (size_t i = 0; i < a->n; ++i) {
        double x = a->X[i];
        lo = fmin(lo, x);
        hi = fmax(hi, x);
        worst = fmax(worst, fabs(a->Y[i] - (sin(3 * x) + x / 2)));
    }
    CHECK(worst < 1e-15 && lo >= -1 && hi < 1 && lo < -0.95 && hi > 0.95);
    effdim_dataset_free(a);
    effdim_dataset_free(b);
    /* d > 1, noise 0: exactly linear (least squares residual ~ 0); noise 0.5: residual sd 0.5 */
    const size_t n = 400, d = 6;
    for (int noisy = 0; noisy < 2; ++noisy) {
        CHECK_OK(effdim_gen_regression(n, d, noisy ? 0.5 : 0.0, 9, &a, &e), &e);
        if (!a) return;
        double *A = malloc(n * d * sizeof *A), *y = malloc(n * sizeof *y);
        memcpy(A, a->X, n * d * sizeof *A);
        memcpy(y, a->Y, n * sizeof *y);
        CHECK(LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', (lapack_int)n, (lapack_int)d, 1, A, (lapack_int)d, y, 1) == 0);
        double ss = 0, wn = 0;
        for (size_t i = d; i < n; ++i) ss += y[i] * y[i];
        for (size_t j = 0; j < d; ++j) wn += y[j] * y[j];
        double res_sd = sqrt(ss / (double)(n - d));
        check_note("d = %zu, noise %.1f: residual sd %.3g, |w|^2 = %.3f (expected about 1)", d,
                   noisy ? 0.5 : 0.0, res_sd, wn);
        if (noisy)
            CHECK(fabs(res_sd - 0.5) < 0.05);
        else
            CHECK(res_sd < 1e-12);
        CHECK(wn > 0.1 && wn < 4);
        free(A);
        free(y);
        effdim_dataset_free(a);
    }
}

static void gmm_is_balanced_seeded_and_unit_variance(void)
{
    effdim_error e;
    effdim_dataset *a, *b, *c;
    const size_t n = 3000, d = 8, K = 3;
    CHECK_OK(effdim_gen_gmm(n, d, K, 3.0, 17, &a, &e), &e);
    CHECK_OK(effdim_gen_gmm(n, d, K, 3.0, 17, &b, &e), &e);
    CHECK_OK(effdim_gen_gmm(n, d, K, 3.0, 18, &c, &e), &e);
    if (!a || !b || !c) return;
    CHECK(same_data(a, b) && !same_data(a, c));
    CHECK(a->k == K && a->d == d && a->kind == EFFDIM_TARGET_LABELS);
    double mean[3][8] = {{0}}, var = 0;
    for (size_t i = 0; i < n; ++i) {
        CHECK(a->labels[i] == (int32_t)(i % K));
        for (size_t j = 0; j < d; ++j) mean[i % K][j] += a->X[i * d + j] / (double)(n / K);
    }
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j) {
            double z = a->X[i * d + j] - mean[i % K][j];
            var += z * z / (double)(n * d);
        }
    double sep01 = 0;
    for (size_t j = 0; j < d; ++j) sep01 += (mean[0][j] - mean[1][j]) * (mean[0][j] - mean[1][j]);
    check_note("within-class variance %.4f (expected 1), |mu0 - mu1| = %.3f (expected about 3 sqrt 2)", var,
               sqrt(sep01));
    CHECK(fabs(var - 1) < 0.06);
    CHECK(sqrt(sep01) > 1.0 && sqrt(sep01) < 8.0);
    effdim_dataset_free(a);
    effdim_dataset_free(b);
    effdim_dataset_free(c);
    effdim_dataset *ds;
    CHECK_STATUS(effdim_gen_gmm(10, 2, 1, 3.0, 1, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "gmm", "classes = 1");
}

/* the teacher by hand: tanh(W1 x + b1) then W2 h + b2, with theta in PyTorch order */
static void teacher_by_hand(const double *theta, const double *x, size_t d, size_t h, size_t o, double *f)
{
    const double *W1 = theta, *b1 = W1 + h * d, *W2 = b1 + h, *b2 = W2 + o * h;
    double hid[64];
    for (size_t i = 0; i < h; ++i) {
        double z = b1[i];
        for (size_t j = 0; j < d; ++j) z += W1[i * d + j] * x[j];
        hid[i] = tanh(z);
    }
    for (size_t i = 0; i < o; ++i) {
        f[i] = b2[i];
        for (size_t j = 0; j < h; ++j) f[i] += W2[i * h + j] * hid[j];
    }
}

static void teacher_targets_match_a_hand_written_forward_pass(void)
{
    effdim_error e;
    effdim_dataset *a, *b, *c;
    const size_t n = 257, d = 5, h = 11, o = 3;
    CHECK_OK(effdim_gen_teacher(n, d, h, o, 0, 0.0, 23, &a, &e), &e);
    CHECK_OK(effdim_gen_teacher(n, d, h, o, 0, 0.0, 23, &b, &e), &e);
    CHECK_OK(effdim_gen_teacher(n, d, h, 0, 4, 0.0, 23, &c, &e), &e);
    if (!a || !b || !c) return;
    CHECK(same_data(a, b) && a->kind == EFFDIM_TARGET_REAL && a->k == o && a->d == d);
    CHECK(c->kind == EFFDIM_TARGET_LABELS && c->k == 4);
    effdim_mlp m;
    size_t sizes[3] = {d, h, o}, sizes4[3] = {d, h, 4};
    effdim_activation acts[2] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &e), &e);
    double *theta = malloc(m.n_params * sizeof *theta);
    CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 23, &e), &e);
    double worst = 0, f[4];
    for (size_t i = 0; i < n; ++i) {
        teacher_by_hand(theta, a->X + i * d, d, h, o, f);
        for (size_t j = 0; j < o; ++j) worst = fmax(worst, fabs(a->Y[i * o + j] - f[j]));
    }
    CHECK(worst < 1e-13);
    free(theta);
    /* labels: argmax of the 4-output teacher */
    CHECK_OK(effdim_mlp_init(&m, 2, sizes4, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &e), &e);
    theta = malloc(m.n_params * sizeof *theta);
    CHECK_OK(effdim_mlp_init_params(&m, theta, EFFDIM_INIT_TORCH, 23, &e), &e);
    size_t agree = 0, used[4] = {0};
    for (size_t i = 0; i < n; ++i) {
        teacher_by_hand(theta, c->X + i * d, d, h, 4, f);
        size_t best = 0;
        for (size_t j = 1; j < 4; ++j)
            if (f[j] > f[best]) best = j;
        agree += (int32_t)best == c->labels[i];
        used[c->labels[i]]++;
    }
    CHECK(agree == n);
    check_note("teacher class counts %zu %zu %zu %zu", used[0], used[1], used[2], used[3]);
    free(theta);
    /* noise is added: targets move, inputs do not */
    effdim_dataset *noisy;
    CHECK_OK(effdim_gen_teacher(n, d, h, o, 0, 0.25, 23, &noisy, &e), &e);
    if (noisy) {
        CHECK(memcmp(noisy->X, a->X, n * d * sizeof *a->X) == 0);
        double ss = 0;
        for (size_t i = 0; i < n * o; ++i) ss += (noisy->Y[i] - a->Y[i]) * (noisy->Y[i] - a->Y[i]);
        CHECK(fabs(sqrt(ss / (double)(n * o)) - 0.25) < 0.03);
    }
    effdim_dataset_free(noisy);
    effdim_dataset_free(a);
    effdim_dataset_free(b);
    effdim_dataset_free(c);
    effdim_dataset *ds;
    CHECK_STATUS(effdim_gen_teacher(10, 2, 4, 3, 5, 0.0, 1, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "teacher", "out = 3", "classes = 5");
    CHECK_STATUS(effdim_gen_teacher(10, 2, 0, 1, 0, 0.0, 1, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "teacher", "hidden = 0");
}

/* ---- transforms ------------------------------------------------------------------------- */

/* a gmm data set whose column 0 is the row index (to follow rows through transforms) */
static effdim_dataset *tagged(size_t n, size_t d, size_t K, uint64_t seed)
{
    effdim_error e;
    effdim_dataset *ds;
    if (effdim_gen_gmm(n, d, K, 2.5, seed, &ds, &e)) return NULL;
    for (size_t i = 0; i < n; ++i) ds->X[i * d] = (double)i;
    return ds;
}

static void standardize_gives_zero_mean_and_unit_sd(void)
{
    effdim_error e;
    effdim_dataset *ds = tagged(733, 5, 3, 4);
    if (!ds) return;
    const size_t n = ds->n, d = ds->d;
    for (size_t i = 0; i < n; ++i) {
        ds->X[i * d + 1] = ds->X[i * d + 1] * 3.7e4 + 1.25e6; /* large offset and scale */
        ds->X[i * d + 2] = 0.1;                                /* constant, not exact in binary */
    }
    effdim_dataset *test;
    CHECK_OK(effdim_dataset_copy(ds, &test, &e), &e);
    double mean[5], sd[5];
    CHECK_OK(effdim_dataset_standardize(ds, mean, sd, &e), &e);
    for (size_t j = 0; j < d; ++j) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; ++i) m += ds->X[i * d + j] / (double)n;
        for (size_t i = 0; i < n; ++i) v += (ds->X[i * d + j] - m) * (ds->X[i * d + j] - m) / (double)n;
        CHECK_NEAR(m, 0.0, 1e-12);
        if (j == 2) {
            CHECK(sd[2] == 0 && mean[2] == 0.1 && v == 0);
        } else {
            CHECK_NEAR(sqrt(v), 1.0, 1e-12);
        }
    }
    /* column 0 is 0..n-1: mean (n-1)/2, population sd sqrt((n^2-1)/12) */
    CHECK_CLOSE(mean[0], (double)(n - 1) / 2, 1e-14);
    CHECK_CLOSE(sd[0], sqrt(((double)n * (double)n - 1) / 12), 1e-14);
    /* the same statistics applied to a copy reproduce the result */
    CHECK_OK(effdim_dataset_apply_standardize(test, mean, sd, &e), &e);
    if (test) CHECK_VEC_CLOSE(test->X, ds->X, n * d, 0);
    sd[1] = -1;
    CHECK_STATUS(effdim_dataset_apply_standardize(test, mean, sd, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "column 1", "sd -1");
    effdim_dataset_free(test);
    effdim_dataset_free(ds);
}

static void label_noise_changes_exactly_round_f_n_labels_to_other_classes(void)
{
    effdim_error e;
    const double fractions[] = {0.25, 0.3333, 0.0, 1.0};
    for (size_t t = 0; t < 4; ++t) {
        effdim_dataset *ds = tagged(1001, 3, 7, 8), *orig, *again;
        if (!ds) return;
        CHECK_OK(effdim_dataset_copy(ds, &orig, &e), &e);
        CHECK_OK(effdim_dataset_copy(ds, &again, &e), &e);
        size_t changed = 99999, moved = 0, per_class[7] = {0};
        CHECK_OK(effdim_dataset_label_noise(ds, fractions[t], 123, &changed, &e), &e);
        CHECK_OK(effdim_dataset_label_noise(again, fractions[t], 123, NULL, &e), &e);
        for (size_t i = 0; i < ds->n; ++i) {
            moved += ds->labels[i] != orig->labels[i];
            CHECK(ds->labels[i] >= 0 && ds->labels[i] < 7);
            if (ds->labels[i] != orig->labels[i]) per_class[ds->labels[i]]++;
        }
        size_t want = (size_t)llround(fractions[t] * 1001);
        CHECK(changed == want && moved == want); /* never to the same class */
        CHECK(same_data(ds, again));
        CHECK(memcmp(ds->X, orig->X, ds->n * ds->d * sizeof *ds->X) == 0);
        if (t == 3) { /* 1001 moves into 7 classes: each gets about 143 */
            for (size_t c = 0; c < 7; ++c) CHECK(per_class[c] > 100 && per_class[c] < 190);
        }
        effdim_dataset_free(ds);
        effdim_dataset_free(orig);
        effdim_dataset_free(again);
    }
    effdim_dataset *r, *l = tagged(50, 2, 3, 1);
    CHECK_OK(effdim_gen_regression(10, 1, 0.1, 1, &r, &e), &e);
    if (r) {
        CHECK_STATUS(effdim_dataset_label_noise(r, 0.1, 1, NULL, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "label noise needs class labels");
    }
    if (l) {
        CHECK_STATUS(effdim_dataset_label_noise(l, 1.5, 1, NULL, &e), EFFDIM_EDOM, &e);
        CHECK_MSG(&e, "fraction 1.5");
    }
    effdim_dataset_free(r);
    effdim_dataset_free(l);
}

static void random_subset_keeps_order_and_follows_its_seed(void)
{
    effdim_error e;
    const size_t n = 200, m = 60;
    size_t hits[200] = {0};
    effdim_dataset *first = NULL;
    for (uint64_t seed = 0; seed < 200; ++seed) {
        effdim_dataset *ds = tagged(n, 3, 4, 2);
        if (!ds) return;
        CHECK_OK(effdim_dataset_random_subset(ds, m, seed, &e), &e);
        CHECK(ds->n == m);
        for (size_t j = 0; j < m; ++j) {
            size_t i = (size_t)ds->X[j * 3];
            hits[i]++;
            if (j) CHECK(ds->X[j * 3] > ds->X[(j - 1) * 3]); /* order kept */
            CHECK(ds->labels[j] == (int32_t)(i % 4));         /* rows stay whole */
        }
        if (seed == 0) first = ds;
        else effdim_dataset_free(ds);
    }
    /* the same seed again gives the same rows, another seed others */
    effdim_dataset *b = tagged(n, 3, 4, 2), *c = tagged(n, 3, 4, 2);
    CHECK_OK(effdim_dataset_random_subset(b, m, 0, &e), &e);
    CHECK_OK(effdim_dataset_random_subset(c, m, 1, &e), &e);
    CHECK(first && same_data(first, b) && !same_data(first, c));
    /* each row is kept with probability m/n = 0.3: 60 of 200 seeds on average */
    size_t lo = SIZE_MAX, hi = 0;
    for (size_t i = 0; i < n; ++i) {
        lo = hits[i] < lo ? hits[i] : lo;
        hi = hits[i] > hi ? hits[i] : hi;
    }
    check_note("row inclusion counts over 200 seeds: %zu .. %zu (expected mean 60)", lo, hi);
    CHECK(lo > 30 && hi < 95);
    CHECK_STATUS(effdim_dataset_random_subset(b, 61, 0, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "61 rows", "1 .. 60");
    /* the public row sampler draws exactly the rows the subset keeps */
    size_t rows[60];
    CHECK_OK(effdim_sample_rows(n, m, 0, rows, &e), &e);
    int same = 1;
    for (size_t j = 0; j < m; ++j) {
        same &= first && rows[j] == (size_t)first->X[j * 3];
        if (j) same &= rows[j] > rows[j - 1];
    }
    CHECK(same);
    CHECK_STATUS(effdim_sample_rows(n, 0, 0, rows, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "0 of 200 rows", "1 to 200");
    CHECK_STATUS(effdim_sample_rows(10, 11, 0, rows, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "11 of 10 rows");
    CHECK_STATUS(effdim_sample_rows(10, 5, 0, NULL, &e), EFFDIM_EINVAL, &e);
    effdim_dataset_free(first);
    effdim_dataset_free(b);
    effdim_dataset_free(c);
    /* head keeps the first rows */
    effdim_dataset *h = tagged(n, 3, 4, 2);
    CHECK_OK(effdim_dataset_head(h, 17, &e), &e);
    CHECK(h->n == 17 && h->X[16 * 3] == 16.0 && h->labels[16] == 0);
    CHECK_STATUS(effdim_dataset_head(h, 0, &e), EFFDIM_EINVAL, &e);
    double x1 = h->X[16 * 3 + 1];
    effdim_dataset_scale(h, 2.385);
    CHECK(h->X[16 * 3] == 16.0 * 2.385 && h->X[16 * 3 + 1] == x1 * 2.385);
    effdim_dataset_free(h);
}

static void split_sizes_are_exact_and_rows_are_partitioned(void)
{
    effdim_error e;
    effdim_dataset *ds = tagged(101, 3, 4, 6), *tr, *te, *tr2, *te2;
    if (!ds) return;
    CHECK_OK(effdim_dataset_split(ds, 26, 77, &tr, &te, &e), &e);
    CHECK_OK(effdim_dataset_split(ds, 26, 77, &tr2, &te2, &e), &e);
    if (!tr || !te) return;
    CHECK(tr->n == 75 && te->n == 26 && tr->d == 3 && te->k == 4);
    CHECK(same_data(tr, tr2) && same_data(te, te2));
    int seen[101] = {0}, in_order = 1;
    for (size_t j = 0; j < tr->n; ++j) {
        seen[(size_t)tr->X[j * 3]]++;
        if (j) in_order &= tr->X[j * 3] > tr->X[(j - 1) * 3];
    }
    for (size_t j = 0; j < te->n; ++j) seen[(size_t)te->X[j * 3]]++;
    int all_once = 1;
    for (size_t i = 0; i < 101; ++i) all_once &= seen[i] == 1;
    CHECK(all_once);
    CHECK(!in_order); /* shuffled */
    effdim_dataset_free(tr);
    effdim_dataset_free(te);
    effdim_dataset_free(tr2);
    effdim_dataset_free(te2);
    CHECK_STATUS(effdim_dataset_split(ds, 101, 1, &tr, &te, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "101 rows", "1 .. 100");
    CHECK(tr == NULL && te == NULL);
    effdim_dataset_free(ds);
}

static void alloc_and_validate_refuse_bad_shapes_and_values(void)
{
    effdim_error e;
    effdim_dataset *ds;
    CHECK_STATUS(effdim_dataset_alloc(0, 3, 2, EFFDIM_TARGET_LABELS, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n = 0");
    CHECK_STATUS(effdim_dataset_alloc(5, 0, 2, EFFDIM_TARGET_LABELS, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "d = 0");
    CHECK_STATUS(effdim_dataset_alloc(SIZE_MAX / 2, 4, 2, EFFDIM_TARGET_LABELS, &ds, &e), EFFDIM_ENOMEM, &e);
    CHECK_MSG(&e, "n*d exceeds");
    CHECK_STATUS(effdim_dataset_alloc((size_t)1 << 20, (size_t)1 << 15, 1, EFFDIM_TARGET_REAL, &ds, &e),
                 EFFDIM_ENOMEM, &e);
    CHECK_MSG(&e, "(1048576, 32768)", "n*d exceeds");
    CHECK_STATUS(effdim_dataset_alloc(10, 2, (size_t)1 << 40, EFFDIM_TARGET_REAL, &ds, &e), EFFDIM_ENOMEM, &e);
    CHECK_MSG(&e, "n*k exceeds");
    CHECK_OK(effdim_dataset_alloc(4, 3, 5, EFFDIM_TARGET_LABELS, &ds, &e), &e);
    if (!ds) return;
    CHECK_OK(effdim_dataset_validate(ds, "mine", &e), &e);
    ds->X[7] = NAN;
    CHECK_STATUS(effdim_dataset_validate(ds, "mine", &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "mine", "X row 2, column 1", "not finite");
    ds->X[7] = 0;
    ds->labels[3] = 5;
    CHECK_STATUS(effdim_dataset_validate(ds, "mine", &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "mine", "label at row 3 is 5", "0 .. 4");
    effdim_dataset_free(ds);
    effdim_dataset_free(NULL);
}

/* ---- specs -------------------------------------------------------------------------------- */

static void specs_equal_the_direct_calls(void)
{
    effdim_error e;
    effdim_dataset *s, *d;
    CHECK_OK(effdim_dataset_from_spec("spirals:n=300,noise=0.2,seed=7", &s, &e), &e);
    CHECK_OK(effdim_gen_spirals(300, 0.2, 7, &d, &e), &e);
    if (s && d) CHECK(same_data(s, d) && strcmp(s->spec, "spirals:n=300,noise=0.2,seed=7") == 0);
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    /* defaults: n 1000, noise 1.3, seed 0 */
    CHECK_OK(effdim_dataset_from_spec("spirals", &s, &e), &e);
    CHECK_OK(effdim_gen_spirals(1000, 1.3, 0, &d, &e), &e);
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    CHECK_OK(effdim_dataset_from_spec("regression:n=50,d=3,noise=0.05,seed=2", &s, &e), &e);
    CHECK_OK(effdim_gen_regression(50, 3, 0.05, 2, &d, &e), &e);
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    CHECK_OK(effdim_dataset_from_spec("teacher:n=40,d=3,hidden=5,classes=3,seed=4", &s, &e), &e);
    CHECK_OK(effdim_gen_teacher(40, 3, 5, 0, 3, 0.0, 4, &d, &e), &e);
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    /* options in order: standardize, then label noise */
    CHECK_OK(effdim_dataset_from_spec("gmm:n=500,d=4,classes=3,sep=2,seed=9,standardize=1,"
                                      "label_noise=0.2,noise_seed=5", &s, &e), &e);
    CHECK_OK(effdim_gen_gmm(500, 4, 3, 2.0, 9, &d, &e), &e);
    CHECK_OK(effdim_dataset_standardize(d, NULL, NULL, &e), &e);
    CHECK_OK(effdim_dataset_label_noise(d, 0.2, 5, NULL, &e), &e);
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
}

static void file_specs_apply_subsets_and_scaling(void)
{
    effdim_error e;
    effdim_dataset *s, *d;
    char spec[2048];
    const char *img = check_tmpfile("spec-images.idx.gz"), *lab = check_tmpfile("spec-labels.idx");
    write_idx_pair(img, lab, 300, 6, 5, 1);
    write_idx_pair(check_tmpfile("spec-unused.idx"), lab, 300, 6, 5, 0); /* labels raw */
    /* the IDX loader converting only a random subset equals loading all, then subsetting */
    snprintf(spec, sizeof spec, "mnist-idx:%s,%s,n=40,subset=random,subset_seed=31,scale=none", img, lab);
    CHECK_OK(effdim_dataset_from_spec(spec, &s, &e), &e);
    CHECK_OK(effdim_load_idx(img, lab, 0, &d, &e), &e);
    CHECK_OK(effdim_dataset_random_subset(d, 40, 31, &e), &e);
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    /* first rows, scaled to [0, 1] by default */
    snprintf(spec, sizeof spec, "mnist-idx:%s,%s,n=25", img, lab);
    CHECK_OK(effdim_dataset_from_spec(spec, &s, &e), &e);
    CHECK_OK(effdim_load_idx(img, lab, 0, &d, &e), &e);
    CHECK_OK(effdim_dataset_head(d, 25, &e), &e);
    for (size_t i = 0; d && i < d->n * d->d; ++i) d->X[i] /= 255.0;
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    snprintf(spec, sizeof spec, "mnist-idx:%s,%s,n=301", img, lab);
    CHECK_STATUS(effdim_dataset_from_spec(spec, &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, spec, "key 'n'", "301 rows requested", "the file has 300");
    /* csv and h5 with n and subset */
    const char *csv = check_tmpfile("spec.csv");
    write_text(csv, "a,b,label\n0.5,1.5,0\n2.5,-1,1\n3.25,4,2\n-2,0.75,1\n9,8,0\n");
    snprintf(spec, sizeof spec, "csv:%s,target=label,n=3,subset=random,subset_seed=2,standardize=1", csv);
    CHECK_OK(effdim_dataset_from_spec(spec, &s, &e), &e);
    CHECK_OK(effdim_load_csv(csv, "label", &d, &e), &e);
    CHECK_OK(effdim_dataset_random_subset(d, 3, 2, &e), &e);
    CHECK_OK(effdim_dataset_standardize(d, NULL, NULL, &e), &e);
    if (s && d) CHECK(same_data(s, d) && s->k == 3);
    effdim_dataset_free(s);
    effdim_dataset_free(d);
    snprintf(spec, sizeof spec, "csv:%s,target=label,targets=real", csv);
    CHECK_OK(effdim_dataset_from_spec(spec, &s, &e), &e);
    if (s) CHECK(s->kind == EFFDIM_TARGET_REAL && s->Y[2] == 2.0);
    effdim_dataset_free(s);
    snprintf(spec, sizeof spec, "csv:%s,target=label,n=6", csv);
    CHECK_STATUS(effdim_dataset_from_spec(spec, &s, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, spec, "key 'n'", "6 rows requested", "has 5");
    const char *h5 = check_tmpfile("spec.h5");
    CHECK_OK(effdim_gen_gmm(90, 3, 4, 2.0, 3, &d, &e), &e);
    if (d) CHECK_OK(effdim_save_h5(d, h5, &e), &e);
    snprintf(spec, sizeof spec, "h5:%s,n=30,label_noise=0.1,noise_seed=4", h5);
    CHECK_OK(effdim_dataset_from_spec(spec, &s, &e), &e);
    CHECK_OK(effdim_dataset_head(d, 30, &e), &e);
    CHECK_OK(effdim_dataset_label_noise(d, 0.1, 4, NULL, &e), &e);
    if (s && d) CHECK(same_data(s, d));
    effdim_dataset_free(s);
    effdim_dataset_free(d);
}

/* from_spec(text) fails with code, naming the spec and each string */
static void spec_bad(const char *text, effdim_status code, const char *m1, const char *m2)
{
    effdim_error e;
    effdim_dataset *ds = (effdim_dataset *)&e; /* must be reset to NULL */
    CHECK_STATUS(effdim_dataset_from_spec(text, &ds, &e), code, &e);
    CHECK_MSG(&e, text, m1, m2);
    CHECK(ds == NULL);
}

static void bad_specs_name_the_spec_and_the_key(void)
{
    spec_bad("spirals:n=100,colour=red", EFFDIM_EINVAL, "unknown key 'colour'", "known: n, noise, seed");
    spec_bad("spirals:n=100,n=200", EFFDIM_EINVAL, "key 'n' given twice", "");
    spec_bad("spirals:n=abc", EFFDIM_EINVAL, "key 'n'", "'abc' is not a non-negative integer");
    spec_bad("spirals:n=-5", EFFDIM_EINVAL, "key 'n'", "'-5'");
    spec_bad("spirals:n=12x", EFFDIM_EINVAL, "key 'n'", "'12x'");
    spec_bad("spirals:n=1", EFFDIM_EINVAL, "key 'n'", "out of range");
    spec_bad("spirals:n=99999999999999999999999", EFFDIM_EINVAL, "key 'n'", "not a non-negative integer");
    spec_bad("spirals:noise=nan", EFFDIM_EINVAL, "key 'noise'", "not a finite number");
    spec_bad("spirals:noise=-0.5", EFFDIM_EINVAL, "key 'noise'", "out of range");
    spec_bad("spirals:seed=1.5", EFFDIM_EINVAL, "key 'seed'", "'1.5'");
    spec_bad("spirals:subset=random", EFFDIM_EINVAL, "unknown key 'subset'", "");
    spec_bad("spirals:label_noise=1.5", EFFDIM_EINVAL, "key 'label_noise'", "out of range");
    spec_bad("spirals:standardize=yes", EFFDIM_EINVAL, "key 'standardize'", "one of 0|1");
    spec_bad("spirals:scale=bytes", EFFDIM_EINVAL, "key 'scale'", "one of none|pixel");
    spec_bad("spirals:n=100,,seed=1", EFFDIM_EINVAL, "empty item", "");
    spec_bad("spirals:extra.csv", EFFDIM_EINVAL, "unexpected 'extra.csv'", "no file names");
    spec_bad("regression:label_noise=0.1", EFFDIM_EINVAL, "key 'label_noise'", "real targets");
    spec_bad("gmm:classes=1", EFFDIM_EINVAL, "key 'classes'", "out of range");
    spec_bad("teacher:classes=1", EFFDIM_EINVAL, "key 'classes'", "");
    spec_bad("teacher:out=2,classes=3", EFFDIM_EINVAL, "out = 2", "classes = 3");
    spec_bad("moons:n=10", EFFDIM_EINVAL, "unknown data set 'moons'", "spirals");
    spec_bad("", EFFDIM_EINVAL, "empty data spec", "");
    spec_bad("csv:", EFFDIM_EINVAL, "csv needs FILE", "");
    spec_bad("csv:/tmp/x.csv", EFFDIM_EINVAL, "csv needs target=NAME", "");
    spec_bad("csv:/tmp/x.csv,target=y,subset=all", EFFDIM_EINVAL, "key 'subset'", "first|random");
    spec_bad("h5:/nonexistent/data.h5", EFFDIM_ENOTFOUND, "/nonexistent/data.h5", "cannot open");
    spec_bad("h5:a.h5,b.h5", EFFDIM_EINVAL, "unexpected 'b.h5'", "");
    spec_bad("mnist-idx:only-images.gz", EFFDIM_EINVAL, "mnist-idx needs IMAGES,LABELS", "");
    spec_bad("fashion-mnist:validation", EFFDIM_EINVAL, "part 'validation'", "train or test");
    spec_bad("fashion-mnist:train:target=y", EFFDIM_EINVAL, "unknown key 'target'", "");
}

static void missing_fashion_mnist_names_the_debian_package(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", check_tmpfile("empty-fashion-dir"));
    CHECK(mkdir(dir, 0755) == 0);
    const char *old = getenv("EFFDIM_FASHION_MNIST_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("EFFDIM_FASHION_MNIST_DIR", dir, 1);
    effdim_error e;
    effdim_dataset *ds;
    CHECK_STATUS(effdim_dataset_from_spec("fashion-mnist:test", &ds, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "fashion-mnist:test", "t10k-images-idx3-ubyte.gz not found", dir,
              "install Debian's dataset-fashion-mnist package",
              "apt-get install dataset-fashion-mnist");
    CHECK(ds == NULL);
    CHECK_STATUS(effdim_dataset_from_spec("fashion-mnist:train:n=10", &ds, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "train-images-idx3-ubyte.gz", "dataset-fashion-mnist");
    /* a folder with the files (here small stand-ins, uncompressed) is read */
    char img[1100], lab[1100];
    snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx_pair(img, lab, 12, 28, 28, 0);
    CHECK_OK(effdim_dataset_from_spec("fashion-mnist:test", &ds, &e), &e);
    if (ds) CHECK(ds->n == 12 && ds->d == 784 && ds->k == 10 && ds->X[1] == pixel(0, 0, 1) / 255.0);
    effdim_dataset_free(ds);
    if (saved) setenv("EFFDIM_FASHION_MNIST_DIR", saved, 1);
    else unsetenv("EFFDIM_FASHION_MNIST_DIR");
    free(saved);
}

static void real_fashion_mnist_test_set_loads(void)
{
    struct stat sb;
    const char *dir = getenv("EFFDIM_FASHION_MNIST_DIR");
    if (!dir || !*dir) dir = EFFDIM_FASHION_MNIST_DIR;
    if (stat(dir, &sb) != 0) {
        check_note("%s is missing: install Debian's dataset-fashion-mnist (README command 1 or 2 "
                   "does: apt-get install dataset-fashion-mnist)", dir);
        CHECK(!"Fashion-MNIST is installed");
        return;
    }
    effdim_error e;
    effdim_dataset *ds;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    CHECK_OK(effdim_dataset_from_spec("fashion-mnist:test", &ds, &e), &e);
    double t1 = (double)clock() / CLOCKS_PER_SEC;
    if (!ds) return;
    CHECK(ds->n == 10000 && ds->d == 784 && ds->k == 10 && ds->kind == EFFDIM_TARGET_LABELS);
    double lo = 1, hi = 0;
    size_t count[10] = {0}, non_grid = 0;
    for (size_t i = 0; i < ds->n * ds->d; ++i) {
        lo = fmin(lo, ds->X[i]);
        hi = fmax(hi, ds->X[i]);
        double b = nearbyint(ds->X[i] * 255.0);
        non_grid += ds->X[i] != b / 255.0; /* exactly byte / 255 */
    }
    for (size_t i = 0; i < ds->n; ++i) count[ds->labels[i]]++;
    int balanced = 1;
    for (size_t c = 0; c < 10; ++c) balanced &= count[c] == 1000;
    CHECK(lo == 0.0 && hi == 1.0 && non_grid == 0);
    CHECK(balanced);              /* the test set has 1000 images per class */
    CHECK(ds->labels[0] == 9);    /* the first test image is an ankle boot */
    check_note("fashion-mnist:test: 10000 x 784 loaded in %.2f s CPU", t1 - t0);
    effdim_dataset_free(ds);
    /* a random subset of the training set converts only the rows it keeps */
    CHECK_OK(effdim_dataset_from_spec("fashion-mnist:train:n=3000,subset=random,subset_seed=1,"
                                      "label_noise=0.1", &ds, &e), &e);
    if (ds) {
        size_t tc[10] = {0};
        for (size_t i = 0; i < ds->n; ++i) tc[ds->labels[i]]++;
        CHECK(ds->n == 3000 && ds->d == 784 && ds->k == 10);
        for (size_t c = 0; c < 10; ++c) CHECK(tc[c] > 220 && tc[c] < 380);
    }
    effdim_dataset_free(ds);
}

/* ---- resources bounded by the data, not by a header's claim (issue 9) ------ */

/* Run fn(arg) in a child; *peak_kb receives how far its peak RSS rose above
 * its size at the start (getrusage maxrss), *st its status. */
typedef effdim_status (*load_fn)(const void *arg, effdim_error *e);

static void in_child(load_fn fn, const void *arg, long *peak_kb, effdim_status *st, char *msg,
                     size_t cap)
{
    int fds[2];
    *peak_kb = -1;
    *st = EFFDIM_EINTERNAL;
    msg[0] = '\0';
    if (!CHECK(pipe(fds) == 0)) return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rusage r0, r1;
        effdim_error e;
        effdim_error_clear(&e);
        getrusage(RUSAGE_SELF, &r0);
        long rss0 = 0, pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f && fscanf(f, "%*s %ld", &pages) == 1) rss0 = pages * (sysconf(_SC_PAGESIZE) / 1024);
        if (f) fclose(f);
        effdim_status s = fn(arg, &e);
        getrusage(RUSAGE_SELF, &r1);
        long base = rss0 > r0.ru_maxrss ? rss0 : r0.ru_maxrss;
        long out[2] = {r1.ru_maxrss - base, (long)s};
        if (write(fds[1], out, sizeof out) != sizeof out || write(fds[1], e.msg, sizeof e.msg) < 0) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    long in[2] = {-1, EFFDIM_EINTERNAL};
    char m[EFFDIM_ERROR_MAX] = "";
    if (read(fds[0], in, sizeof in) == sizeof in && read(fds[0], m, sizeof m) > 0) {
        *peak_kb = in[0];
        *st = (effdim_status)in[1];
        snprintf(msg, cap, "%s", m);
    }
    close(fds[0]);
    waitpid(pid, NULL, 0);
}

static effdim_status load_spec(const void *arg, effdim_error *e)
{
    effdim_dataset *ds = NULL;
    effdim_status st = effdim_dataset_from_spec(arg, &ds, e);
    effdim_dataset_free(ds);
    return st;
}

static void h5_file_claiming_a_huge_shape_is_refused_in_bounded_memory(void)
{
    /* 2^17 x 2^17 doubles (128 GiB) declared through chunks never written */
    const char *path = check_tmpfile("sparse.h5");
    hid_t f = h5_new(path);
    hsize_t dims[2] = {(hsize_t)1 << 17, (hsize_t)1 << 17}, chunk[2] = {16, 1024};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, "X", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(ds >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
    hsize_t yd = dims[0], yc = 1024;
    H5Pset_chunk(dcpl, 1, &yc);
    sp = H5Screate_simple(1, &yd, NULL);
    ds = H5Dcreate2(f, "y", H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Fclose(f);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size < 16384);
    char spec[4200], msg[EFFDIM_ERROR_MAX];
    snprintf(spec, sizeof spec, "h5:%s,n=4", path);
    long peak;
    effdim_status st;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    in_child(load_spec, spec, &peak, &st, msg, sizeof msg);
    double cpu = (double)clock() / CLOCKS_PER_SEC - t0;
    check_note("%lld-byte file declaring (%llu, %llu): %s; peak RSS rose %ld KiB",
               (long long)sb.st_size, (unsigned long long)dims[0], (unsigned long long)dims[1], msg,
               peak);
    CHECK(st == EFFDIM_EFORMAT);
    CHECK(strstr(msg, "/X") && strstr(msg, "stores only 0 chunks"));
    CHECK(peak >= 0 && peak < 16 * 1024); /* the bound: 16 MiB */
    CHECK(cpu < 5.0);
}

static void reading_n_rows_of_an_h5_file_reads_only_those_rows(void)
{
    const size_t n = 40000, d = 64;
    double *X = malloc(n * d * sizeof *X);
    int64_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n * d; ++i) X[i] = sin(0.731 * (double)i);
    for (size_t i = 0; i < n; ++i) y[i] = (int64_t)(i % 7);
    const char *path = check_tmpfile("rows.h5");
    hid_t f = h5_new(path);
    hsize_t xd[2] = {n, d}, ydim = n;
    h5_put(f, "X", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, xd, X);
    h5_put(f, "y", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &ydim, y);
    H5Fclose(f);
    char spec[4200], msg[EFFDIM_ERROR_MAX];
    long peak_head, peak_all;
    effdim_status st;
    snprintf(spec, sizeof spec, "h5:%s,n=4", path);
    in_child(load_spec, spec, &peak_head, &st, msg, sizeof msg);
    CHECK(st == EFFDIM_OK);
    snprintf(spec, sizeof spec, "h5:%s", path);
    in_child(load_spec, spec, &peak_all, &st, msg, sizeof msg);
    CHECK(st == EFFDIM_OK);
    check_note("(%zu, %zu) float64 (%.1f MiB): n=4 raised the peak RSS by %ld KiB, all rows by %ld KiB",
               n, d, (double)(n * d * 8) / 1048576.0, peak_head, peak_all);
    CHECK(peak_all > 20 * 1024);              /* the measurement sees a full read */
    CHECK(peak_head >= 0 && peak_head < 8 * 1024); /* n=4: under 8 MiB */
    /* and the rows are the right ones */
    effdim_dataset *ds = NULL;
    effdim_error e;
    snprintf(spec, sizeof spec, "h5:%s,n=4", path);
    CHECK_OK(effdim_dataset_from_spec(spec, &ds, &e), &e);
    CHECK(ds && ds->n == 4 && ds->d == d && ds->X[3 * d + 5] == X[3 * d + 5] && ds->labels[3] == 3);
    effdim_dataset_free(ds);
    snprintf(spec, sizeof spec, "h5:%s,n=40001", path);
    CHECK_STATUS(effdim_dataset_from_spec(spec, &ds, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "key 'n'", "40001 rows requested", "40000");
    free(X);
    free(y);
}

static void empty_num_classes_is_refused(void)
{
    const char *path = check_tmpfile("empty_k.h5");
    hid_t f = h5_new(path);
    const double X[8] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};
    const int64_t y[4] = {0, 1, 1, 0};
    hsize_t xd[2] = {4, 2}, ydim = 4;
    h5_put(f, "X", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, xd, X);
    h5_put(f, "y", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &ydim, y);
    hid_t yds = H5Dopen2(f, "y", H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_NULL);
    hid_t a = H5Acreate2(yds, "num_classes", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Aclose(a);
    H5Sclose(sp);
    H5Dclose(yds);
    H5Fclose(f);
    effdim_dataset *ds = NULL;
    effdim_error e;
    CHECK_STATUS(effdim_load_h5(path, &ds, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "empty_k.h5", "/y", "num_classes", "0 values", "exactly 1");
}

static effdim_status load_idx_pair(const void *arg, effdim_error *e)
{
    const char *const *p = arg;
    effdim_dataset *ds = NULL;
    effdim_status st = effdim_load_idx(p[0], p[1], 0, &ds, e);
    effdim_dataset_free(ds);
    return st;
}

static void gzip_idx_header_claiming_gigabytes_costs_only_what_arrives(void)
{
    /* one 60000 x 60000 image (28.8 GB of doubles) in a gzip file of a few hundred bytes */
    unsigned char head[16 + 100] = {0};
    put_be32(head, 0x00000803);
    put_be32(head + 4, 1);
    put_be32(head + 8, 60000);
    put_be32(head + 12, 60000);
    const char *img = check_tmpfile("forged-images.gz"), *lab = check_tmpfile("forged-labels");
    write_gz(img, head, sizeof head);
    unsigned char lb[9];
    put_be32(lb, 0x00000801);
    put_be32(lb + 4, 1);
    lb[8] = 3;
    write_bytes(lab, lb, sizeof lb);
    const char *pair[2] = {img, lab};
    long peak;
    effdim_status st;
    char msg[EFFDIM_ERROR_MAX];
    in_child(load_idx_pair, pair, &peak, &st, msg, sizeof msg);
    check_note("%s; peak RSS rose %ld KiB", msg, peak);
    CHECK(st == EFFDIM_EFORMAT && strstr(msg, "forged-images.gz") && strstr(msg, "gzip file of"));
    CHECK(peak >= 0 && peak < 16 * 1024);
    /* a claim the file size allows (random pixels do not compress), cut short: the
     * buffer follows the pixels that arrived (1 image of 2000 x 2000 = 30.5 MiB of
     * doubles claimed, 40,000 pixels present) */
    size_t have = 40000;
    unsigned char *b = malloc(16 + have);
    put_be32(b, 0x00000803);
    put_be32(b + 4, 1);
    put_be32(b + 8, 2000);
    put_be32(b + 12, 2000);
    unsigned x = 2385;
    for (size_t i = 0; i < have; ++i) b[16 + i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 23);
    write_gz(img, b, 16 + have);
    free(b);
    in_child(load_idx_pair, pair, &peak, &st, msg, sizeof msg);
    check_note("%s; peak RSS rose %ld KiB", msg, peak);
    CHECK(st == EFFDIM_EFORMAT && strstr(msg, "truncated"));
    CHECK(peak >= 0 && peak < 16 * 1024);
}

CHECK_TESTS({"IDX files round trip raw and gzipped", idx_files_round_trip_raw_and_gzipped},
            {"an h5 file claiming a huge shape is refused in bounded memory",
             h5_file_claiming_a_huge_shape_is_refused_in_bounded_memory},
            {"reading n rows of an h5 file reads only those rows",
             reading_n_rows_of_an_h5_file_reads_only_those_rows},
            {"an empty num_classes attribute is refused", empty_num_classes_is_refused},
            {"a gzip IDX header claiming gigabytes costs only what arrives",
             gzip_idx_header_claiming_gigabytes_costs_only_what_arrives},
            {"truncated IDX files are refused", truncated_idx_files_are_refused},
            {"gzip-corrupt IDX files are refused", gzip_corrupt_idx_files_are_refused},
            {"wrong IDX magic numbers are refused", wrong_idx_magic_numbers_are_refused},
            {"IDX image and label counts must agree", idx_image_and_label_counts_must_agree},
            {"zero and absurd IDX dimensions are refused", zero_and_absurd_idx_dimensions_are_refused},
            {"IDX labels above k and trailing bytes are refused", idx_labels_above_k_and_trailing_bytes_are_refused},
            {"CSV loads labels, real targets, quotes, CRLF and blank lines",
             csv_loads_labels_real_targets_quotes_crlf_and_blank_lines},
            {"CSV missing, extra, non-numeric and non-finite fields are refused",
             csv_missing_extra_non_numeric_and_non_finite_fields_are_refused},
            {"HDF5 save and load round trip", h5_save_and_load_round_trip},
            {"HDF5 files written by h5py load", h5_files_written_by_h5py_load},
            {"HDF5 float32 X, uint8 labels and 1-D float targets load",
             h5_float32_x_uint8_labels_and_1d_float_targets_load},
            {"HDF5 non-finite values and bad shapes are refused", h5_non_finite_values_and_bad_shapes_are_refused},
            {"spirals follow the Maddox rule", spirals_follow_the_maddox_rule},
            {"regression follows its rule", regression_follows_its_rule},
            {"gmm is balanced, seeded and unit variance", gmm_is_balanced_seeded_and_unit_variance},
            {"teacher targets match a hand-written forward pass", teacher_targets_match_a_hand_written_forward_pass},
            {"standardize gives zero mean and unit sd", standardize_gives_zero_mean_and_unit_sd},
            {"label noise changes exactly round(f n) labels to other classes",
             label_noise_changes_exactly_round_f_n_labels_to_other_classes},
            {"random subset keeps order and follows its seed", random_subset_keeps_order_and_follows_its_seed},
            {"split sizes are exact and rows are partitioned", split_sizes_are_exact_and_rows_are_partitioned},
            {"alloc and validate refuse bad shapes and values", alloc_and_validate_refuse_bad_shapes_and_values},
            {"specs equal the direct calls", specs_equal_the_direct_calls},
            {"file specs apply subsets and scaling", file_specs_apply_subsets_and_scaling},
            {"bad specs name the spec and the key", bad_specs_name_the_spec_and_the_key},
            {"missing Fashion-MNIST names the Debian package", missing_fashion_mnist_names_the_debian_package},
            {"real Fashion-MNIST test set loads", real_fashion_mnist_test_set_loads})
