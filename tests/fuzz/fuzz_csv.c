/* tests/fuzz/fuzz_csv.c: effdim_load_csv_as on a CSV file. The input's first
 * byte picks the target kind (automatic, labels, real), the rest up to the
 * first newline is the target argument, and what follows is the file. */
#include <stdlib.h>
#include <string.h>

#include "effdim/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const int kinds[3] = {-1, EFFDIM_TARGET_LABELS, EFFDIM_TARGET_REAL};
    int kind = kinds[data[0] % 3];
    const uint8_t *t = data + 1, *nl = memchr(t, '\n', size - 1);
    size_t tl = nl ? (size_t)(nl - t) : size - 1;
    if (tl > 200) return 0;
    char target[201];
    memcpy(target, t, tl);
    target[tl] = '\0';
    if (strlen(target) != tl) return 0; /* a NUL inside: not a string a caller can pass */
    const uint8_t *body = nl ? nl + 1 : data + size;
    const char *path = fuzz_path("data.csv");
    fuzz_write(path, body, (size_t)(data + size - body));
    effdim_dataset *ds = NULL;
    effdim_error err = {0};
    effdim_status st = effdim_load_csv_as(path, target, kind, &ds, &err);
    fuzz_check_verdict("csv", st, ds, &err);
    if (ds) {
        effdim_error e2 = {0};
        fuzz_assert(effdim_dataset_validate(ds, "fuzzed csv", &e2) == EFFDIM_OK, e2.msg);
        fuzz_assert(kind < 0 || (int)ds->kind == kind, "the target kind asked for");
        effdim_dataset_free(ds);
    }
    return 0;
}
