/* tests/fuzz/fuzz_seeds.c OUTDIR: the seed inputs of the data targets, made
 * with the library's own writers and generators (make_seeds.sh adds the
 * checkpoint, spectrum and diag seeds with the effdim command):
 *   OUTDIR/idx       IDX pairs, raw and gzip, in fuzz_split's layout
 *   OUTDIR/idx_gzip  IDX pairs uncompressed (the harness compresses them)
 *   OUTDIR/csv       kind byte, target line, CSV text (fuzz_csv.c's layout)
 *   OUTDIR/spec      data specs over the files fuzz_spec.c makes
 *   OUTDIR/h5_data   h5: data sets written by effdim_save_h5
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "effdim/data.h"
#include "fuzz.h"

static const char *out;

static void put(const char *target, const char *name, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, target);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", out, target, name);
    fuzz_write(path, data, size);
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = f ? malloc(1 << 20) : NULL;
    if (!b) abort();
    *size = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* images and labels joined as fuzz_split cuts them */
static void put_pair(const char *target, const char *name, const char *ip, const char *lp)
{
    size_t ni, nl;
    uint8_t *i = slurp(ip, &ni), *l = slurp(lp, &nl);
    uint8_t *b = malloc(2 + ni + nl);
    if (!b || ni > 65535) abort();
    b[0] = (uint8_t)(ni & 0xff);
    b[1] = (uint8_t)(ni >> 8);
    memcpy(b + 2, i, ni);
    memcpy(b + 2 + ni, l, nl);
    put(target, name, b, 2 + ni + nl);
    free(b);
    free(i);
    free(l);
}

static void idx_seeds(void)
{
    const char *ip = fuzz_path("images"), *lp = fuzz_path("labels");
    fuzz_write_idx_pair(ip, lp, 4, 3, 3, 1, 0);
    put_pair("idx", "raw-4x3x3", ip, lp);
    put_pair("idx_gzip", "4x3x3", ip, lp);
    fuzz_write_idx_pair(ip, lp, 10, 2, 5, 2, 0);
    put_pair("idx", "raw-10x2x5", ip, lp);
    put_pair("idx_gzip", "10x2x5", ip, lp);
    fuzz_write_idx_pair(ip, lp, 4, 3, 3, 1, 1);
    put_pair("idx", "gzip-4x3x3", ip, lp);
    fuzz_write_idx_pair(ip, lp, 6, 4, 2, 3, 1);
    put_pair("idx", "gzip-6x4x2", ip, lp);
}

static void csv_seeds(void)
{
    static const char *const seeds[][2] = {
        {"labels-by-name", "\x00y\na,b,y\n0.5,1.25,1\n-2,3,0\n4.5,-0.75,2\n"},
        {"labels-forced", "\x01#2\na,b,c\n1,2,0\n3,4,1\n"},
        {"real-two-targets", "\x02t;u\nx,t,u\n1e-3,2.5,-1\n4,5.5,6\n-7.25,8,9e2\n"},
        {"index-target", "\x00" "0\nlabel,p1,p2\n3,0.1,0.2\n1,0.3,0.4\n"},
        {"quoted-crlf", "\x00y\r\n\"a\",\"y\"\r\n1.5,2\r\n2.5,1\r\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; ++i)
        put("csv", seeds[i][0], seeds[i][1], 1 + strlen(seeds[i][1] + 1));
}

static void spec_seeds(void)
{
    static const char *const seeds[] = {
        "spirals:n=50,noise=0.2,seed=3",
        "regression:n=20,d=2,noise=0.5",
        "gmm:n=30,d=3,classes=3,sep=2.5,standardize=1",
        "teacher:n=10,d=3,hidden=4,classes=3,seed=9",
        "teacher:n=10,d=2,hidden=3,out=2,noise=0.1",
        "csv:d.csv,target=y,n=3,subset=random,subset_seed=4",
        "csv:d.csv,target=a;t,targets=real,scale=none",
        "h5:d.h5,n=4,standardize=1,label_noise=0.5,noise_seed=2",
        "mnist-idx:i.idx,l.idx,classes=10,n=3,scale=pixel",
        "fashion-mnist:test:n=2,label_noise=0.5,noise_seed=3",
        "fashion-mnist:train,subset=random,n=4",
        "fashion-mnist:n=3",
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; ++i) {
        char name[32];
        snprintf(name, sizeof name, "spec-%02zu", i);
        put("spec", name, seeds[i], strlen(seeds[i]));
    }
}

static void h5_seeds(void)
{
    effdim_dataset *ds = NULL;
    effdim_error err;
    const char *tmp = fuzz_path("data.h5");
    for (int i = 0; i < 3; ++i) {
        effdim_status st = i == 0   ? effdim_gen_spirals(8, 0.3, 1, &ds, &err)
                           : i == 1 ? effdim_gen_regression(6, 2, 0.1, 2, &ds, &err)
                                    : effdim_gen_gmm(9, 3, 3, 2.0, 3, &ds, &err);
        if (st || effdim_save_h5(ds, tmp, &err)) {
            fprintf(stderr, "fuzz_seeds: %s\n", err.msg);
            exit(1);
        }
        effdim_dataset_free(ds);
        size_t n;
        uint8_t *b = slurp(tmp, &n);
        static const char *const names[] = {"spirals-8", "regression-6x2", "gmm-9x3"};
        put("h5_data", names[i], b, n);
        free(b);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
        return 2;
    }
    out = argv[1];
    mkdir(out, 0777);
    idx_seeds();
    csv_seeds();
    spec_seeds();
    h5_seeds();
    return 0;
}
