/* tests/fuzz/fuzz_spec.c: the data-spec parser (effdim_dataset_from_spec)
 * on the input as a string.
 *
 * The parser is the target, not the generators or the disk, so the harness
 * keeps every spec cheap and local: it runs in its own folder holding small
 * files for every file kind (d.csv, d.h5, i.idx and l.idx, and a tiny
 * Fashion-MNIST set that EFFDIM_FASHION_MNIST_DIR points at), and it skips
 * specs with a '/' (no file outside that folder, no /dev/zero) and numbers of
 * more than three digits (generated data sets stay below about a million
 * values). Everything else goes to the parser as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "effdim/data.h"
#include "fuzz.h"

void fuzz_setup(void)
{
    const char *dir = fuzz_dir();
    static const char csv[] = "a,b,y,t\n0.5,1.25,1,0.1\n-2,3,0,0.2\n4.5,-0.75,2,0.3\n1,1,1,0.4\n";
    fuzz_write(fuzz_path("d.csv"), csv, sizeof csv - 1);
    fuzz_write_idx_pair(fuzz_path("i.idx"), fuzz_path("l.idx"), 6, 3, 2, 1, 0);
    fuzz_write_idx_pair(fuzz_path("train-images-idx3-ubyte"), fuzz_path("train-labels-idx1-ubyte"), 8,
                        2, 2, 2, 0);
    fuzz_write_idx_pair(fuzz_path("t10k-images-idx3-ubyte.gz"), fuzz_path("t10k-labels-idx1-ubyte.gz"),
                        5, 2, 3, 3, 1);
    effdim_dataset *ds = NULL;
    effdim_error err;
    if (effdim_gen_gmm(12, 3, 3, 2.0, 5, &ds, &err) || effdim_save_h5(ds, fuzz_path("d.h5"), &err)) {
        fprintf(stderr, "fuzz_spec: cannot make d.h5: %s\n", err.msg);
        abort();
    }
    effdim_dataset_free(ds);
    if (setenv("EFFDIM_FASHION_MNIST_DIR", dir, 1) != 0 || chdir(dir) != 0) abort();
}

static int cheap_and_local(const char *s)
{
    if (strchr(s, '/')) return 0;
    size_t run = 0;
    for (; *s; ++s) {
        run = *s >= '0' && *s <= '9' ? run + 1 : 0;
        if (run > 3) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256) return 0;
    char spec[257];
    memcpy(spec, data, size);
    spec[size] = '\0'; /* a NUL inside ends the string, as it would for a caller */
    if (!cheap_and_local(spec)) return 0;
    effdim_dataset *ds = NULL;
    effdim_error err = {0};
    effdim_status st = effdim_dataset_from_spec(spec, &ds, &err);
    fuzz_check_verdict("spec", st, ds, &err);
    if (ds) {
        effdim_error e2 = {0};
        fuzz_assert(effdim_dataset_validate(ds, spec, &e2) == EFFDIM_OK, e2.msg);
        fuzz_assert(ds->spec && strcmp(ds->spec, spec) == 0, "the spec string kept in the data set");
        effdim_dataset_free(ds);
    }
    return 0;
}
