/* tests/fuzz/fuzz_h5_data.c: effdim_load_h5 (the h5: data set layout) on a
 * file made of the input bytes. */
#include "effdim/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("data.h5", data, size);
    effdim_dataset *ds = NULL;
    effdim_error err = {0};
    effdim_status st = effdim_load_h5(path, &ds, &err);
    fuzz_check_verdict("h5_data", st, ds, &err);
    if (ds) {
        effdim_error e2 = {0};
        fuzz_assert(effdim_dataset_validate(ds, "fuzzed h5", &e2) == EFFDIM_OK, e2.msg);
        effdim_dataset_free(ds);
    }
    return 0;
}
