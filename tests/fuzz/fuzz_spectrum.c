/* tests/fuzz/fuzz_spectrum.c: effdim_spectrum_load on a file made of the
 * input bytes; a loaded spectrum passes effdim_spectrum_check and its arrays
 * are read end to end at their stated lengths. */
#include "effdim/spectrum.h"
#include "fuzz.h"
#include "fuzz_touch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("spectrum.h5", data, size);
    effdim_spectrum *s = NULL;
    effdim_error err = {0};
    effdim_status st = effdim_spectrum_load(path, &s, &err);
    fuzz_check_verdict("spectrum", st, s, &err);
    if (s) {
        effdim_error e2 = {0};
        fuzz_assert(effdim_spectrum_check(s, &e2) == EFFDIM_OK, e2.msg);
        fuzz_touch(s->eigenvalues, s->k);
        fuzz_touch(s->residuals, s->k);
        fuzz_touch(s->residual_bounds, s->k);
        fuzz_touch(s->z, s->m);
        fuzz_touch(s->n_eff, s->m);
        fuzz_touch(s->n_eff_slq, s->m);
        fuzz_touch(s->n_eff_slq_se, s->m);
        fuzz_touch(s->n_eff_dense, s->m);
        fuzz_touch(s->grid, s->n_grid);
        fuzz_touch(s->density, s->n_grid);
        if (s->eigenvectors) fuzz_touch(s->eigenvectors, s->k * s->n_params);
        if (s->dense_eigenvalues) fuzz_touch(s->dense_eigenvalues, s->n_params);
        for (size_t l = 0; l < s->n_layers; ++l) {
            fuzz_touch(s->layers[l].eigenvalues, s->layers[l].k);
            fuzz_touch(s->layers[l].residuals, s->layers[l].k);
            fuzz_touch(s->layers[l].n_eff, s->m);
        }
        effdim_spectrum_free(s);
    }
    return 0;
}
