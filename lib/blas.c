/* lib/blas.c: OpenBLAS thread control and configuration string.
 *
 * effdim uses OpenBLAS (Debian's libopenblas0-pthread) for every dgemm. These
 * wrappers keep the OpenBLAS-specific symbols in one place.
 */
#include "effdim/blas.h"
#include "effdim/mlp.h"

/* OpenBLAS extensions (declared in its cblas.h; repeated here so this file
 * does not depend on which cblas.h comes first on the include path). */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);

void effdim_blas_set_threads(int n)
{
    if (n < 1) n = 1;
    openblas_set_num_threads(n);
}

int effdim_blas_threads(void) { return openblas_get_num_threads(); }

const char *effdim_blas_config(void) { return openblas_get_config(); }
