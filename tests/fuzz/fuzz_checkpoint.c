/* tests/fuzz/fuzz_checkpoint.c: effdim_checkpoint_load on a file made of the
 * input bytes; a loaded checkpoint's theta and optimiser vectors are read
 * end to end (P values each). */
#include <math.h>

#include "effdim/checkpoint.h"
#include "fuzz.h"
#include "fuzz_touch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("checkpoint.h5", data, size);
    effdim_checkpoint *c = NULL;
    effdim_error err = {0};
    effdim_status st = effdim_checkpoint_load(path, &c, &err);
    fuzz_check_verdict("checkpoint", st, c, &err);
    if (c) {
        size_t P = c->mlp.n_params;
        fuzz_touch(c->theta, P);
        for (size_t i = 0; i < P; ++i) fuzz_assert(isfinite(c->theta[i]), "a non-finite weight accepted");
        static const char *const states[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                                             "momentum_buffer", "hess"};
        for (size_t j = 0; j < sizeof states / sizeof states[0]; ++j)
            fuzz_touch(effdim_checkpoint_state(c, states[j]), P);
        effdim_checkpoint_free(c);
    }
    return 0;
}
