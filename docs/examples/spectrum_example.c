/* docs/examples/spectrum_example.c: `effdim spectrum CKPT -o OUT.h5` as a C
 * program against the public API alone (libeffdim.so and <effdim/...>).
 *
 *   spectrum_example CKPT OUT.h5 [DATA_SPEC]
 *
 * Loads the checkpoint and its data (the spec its /training records unless
 * one is given), runs the spectrum job with the library's defaults (top 20
 * Hessian eigenpairs by Lanczos with finite-difference products, N_eff at
 * z = 1, 10, 100 over the Ritz values and by SLQ over the whole spectrum,
 * the Hutch++ trace) and writes the spectrum file. With the same OpenBLAS
 * thread count the file holds bitwise the numbers `effdim spectrum` writes
 * (tests/test_spectrum_job.c checks it). Prints N_eff and exits 0, or prints
 * the library's error line and exits 1.
 */
#include <stdio.h>

#include <effdim/checkpoint.h>
#include <effdim/data.h>
#include <effdim/mlp.h>
#include <effdim/spectrum.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: spectrum_example CKPT OUT.h5 [DATA_SPEC]\n");
        return 2;
    }
    effdim_error err;
    effdim_error_clear(&err);
    effdim_checkpoint *ck = NULL;
    effdim_dataset *ds = NULL;
    effdim_spectrum *s = NULL;
    effdim_status st = effdim_checkpoint_load(argv[1], &ck, &err);
    const char *spec = argc == 4 ? argv[3]
                       : !st && ck->training && ck->training->data_spec ? ck->training->data_spec
                                                                          : NULL;
    if (!st && !spec)
        st = effdim_error_set(&err, EFFDIM_ENOTFOUND, "%s: no data spec recorded", argv[1]);
    if (!st) st = effdim_dataset_from_spec(spec, &ds, &err);
    effdim_spectrum_params p = effdim_spectrum_default_params();
    p.checkpoint = argv[1]; /* recorded in the file with its SHA-256 */
    p.data_spec = spec;
    if (!st) st = effdim_spectrum_compute(&ck->mlp, ck->theta, ds, &p, &s, &err);
    if (!st) st = effdim_spectrum_save(s, argv[2], &err);
    if (!st) {
        printf("%zu eigenpairs (%llu converged), top %.10g\n", s->k,
               (unsigned long long)s->nconv, s->eigenvalues[0]);
        for (size_t j = 0; j < s->m; ++j)
            printf("z = %-6g N_eff Ritz %.6g, SLQ %.6g +- %.2g\n", s->z[j], s->n_eff[j],
                   s->n_eff_slq ? s->n_eff_slq[j] : 0.0, s->n_eff_slq ? s->n_eff_slq_se[j] : 0.0);
    } else {
        fprintf(stderr, "spectrum_example: %s\n", err.msg);
    }
    effdim_spectrum_free(s);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(ck);
    return st ? 1 : 0;
}
