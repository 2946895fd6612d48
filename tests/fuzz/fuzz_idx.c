/* tests/fuzz/fuzz_idx.c: effdim_load_idx on an image file and a label file.
 * The input is cut by fuzz_split: images, then labels. Written as they are,
 * so raw IDX and (corrupt or not) gzip streams both come through; fuzz_idx_gzip
 * compresses well-formed gzip around the bytes instead. */
#include <stdlib.h>

#include "effdim/data.h"
#include "fuzz.h"

#ifdef FUZZ_IDX_GZIP
#define WRITE fuzz_write_gz
#define TARGET "idx_gzip"
#else
#define WRITE fuzz_write
#define TARGET "idx"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *img, *lab;
    size_t ni, nl;
    fuzz_split(data, size, &img, &ni, &lab, &nl);
    const char *ip = fuzz_path("images"), *lp = fuzz_path("labels");
    WRITE(ip, img, ni);
    WRITE(lp, lab, nl);
    effdim_dataset *ds = NULL;
    effdim_error err = {0};
    /* k_hint from the last byte, so both the automatic and the given class count run */
    size_t k_hint = size ? data[size - 1] % 4 == 0 ? 0 : (size_t)data[size - 1] : 0;
    effdim_status st = effdim_load_idx(ip, lp, k_hint, &ds, &err);
    fuzz_check_verdict(TARGET, st, ds, &err);
    if (ds) {
        effdim_error e2 = {0};
        fuzz_assert(effdim_dataset_validate(ds, "fuzzed idx", &e2) == EFFDIM_OK, e2.msg);
        effdim_dataset_free(ds);
    }
    return 0;
}
