/* tests/fuzz/fuzz_diag.c: effdim_diag_file_load on a file made of the input
 * bytes; every loaded vector is read end to end (n_params values). */
#include <string.h>

#include "effdim/diag.h"
#include "fuzz.h"
#include "fuzz_touch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("diag.h5", data, size);
    effdim_diag_file *f = NULL;
    effdim_error err = {0};
    effdim_status st = effdim_diag_file_load(path, &f, &err);
    fuzz_check_verdict("diag", st, f, &err);
    if (f) {
        for (size_t i = 0; i < f->count; ++i) {
            const effdim_diag_entry *e = &f->entries[i];
            fuzz_assert(memchr(e->name, '\0', sizeof e->name) && memchr(e->method, '\0', sizeof e->method),
                        "a name without its terminating NUL");
            fuzz_touch(e->v, f->n_params);
            fuzz_touch(e->se, f->n_params);
            fuzz_assert(effdim_diag_file_find(f, e->name) != NULL, "a loaded entry that find misses");
        }
        effdim_diag_file_free(f);
    }
    return 0;
}
