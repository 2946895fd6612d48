/* tests/fuzz/fuzz_common.c: the helpers behind fuzz.h. */
#include "fuzz.h"

#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[512];

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char buf[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(buf, sizeof buf, "%s/%s", dir, e->d_name);
        unlink(buf);
    }
    closedir(d);
    rmdir(dir);
}

const char *fuzz_dir(void)
{
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/effdim-fuzz-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

__attribute__((weak)) void fuzz_setup(void) {}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_dir();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* no error stack on stderr for every refused file */
    fuzz_setup();
    return 0;
}

const char *fuzz_path(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 1024, "%s/%s", fuzz_dir(), name);
    return b;
}

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "fuzz: broken promise at %s:%d: %s\n", file, line, what);
    abort();
}

void fuzz_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    fuzz_write(path, data, size);
    return path;
}

void fuzz_write_gz(const char *path, const void *data, size_t size)
{
    gzFile g = gzopen(path, "wb1");
    if (!g || (size && gzwrite(g, data, (unsigned)size) != (int)size) || gzclose(g) != Z_OK) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
}

void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b,
                size_t *nb)
{
    size_t len = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    size_t rest = size >= 2 ? size - 2 : 0;
    if (len > rest) len = rest;
    *a = data + (size >= 2 ? 2 : size);
    *na = len;
    *b = *a + len;
    *nb = rest - len;
}

void fuzz_check_verdict(const char *target, effdim_status st, const void *out, const effdim_error *err)
{
    if (st == EFFDIM_OK) {
        fuzz_assert(out != NULL, "OK without a result");
        return;
    }
    (void)target;
    fuzz_assert(out == NULL, "a refusal that leaves a result behind");
    size_t len = strnlen(err->msg, sizeof err->msg);
    fuzz_assert(len > 0, "a refusal without a message");
    fuzz_assert(len < sizeof err->msg, "an error message without its terminating NUL");
    fuzz_assert(strchr(err->msg, '\n') == NULL, "an error message of more than one line");
}


static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void fuzz_write_idx_pair(const char *images, const char *labels, size_t n, size_t rows, size_t cols,
                         unsigned seed, int gz)
{
    size_t ni = 16 + n * rows * cols, nl = 8 + n;
    uint8_t *img = malloc(ni), *lab = malloc(nl);
    if (!img || !lab) abort();
    put_be32(img, 0x803);
    put_be32(img + 4, (uint32_t)n);
    put_be32(img + 8, (uint32_t)rows);
    put_be32(img + 12, (uint32_t)cols);
    put_be32(lab, 0x801);
    put_be32(lab + 4, (uint32_t)n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 16; i < ni; ++i) {
        x = x * 1664525u + 1013904223u;
        img[i] = (uint8_t)(x >> 24);
    }
    for (size_t i = 0; i < n; ++i) lab[8 + i] = (uint8_t)((i * 7 + seed) % 10);
    (gz ? fuzz_write_gz : fuzz_write)(images, img, ni);
    (gz ? fuzz_write_gz : fuzz_write)(labels, lab, nl);
    free(img);
    free(lab);
}
