/* effdim/blas.h: OpenBLAS's threads and configuration.
 *
 * Every dense product in effdim is OpenBLAS's (Debian's libopenblas0-pthread).
 * The number of threads also decides how many row workers a full-data pass
 * of the network uses (effdim/mlp.h: effdim_mlp_ws_alloc), so set it before
 * allocating workspaces.
 */
#ifndef EFFDIM_BLAS_H
#define EFFDIM_BLAS_H

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

EFFDIM_API void effdim_blas_set_threads(int n);
EFFDIM_API int effdim_blas_threads(void);
/* OpenBLAS's configuration string (core, threads). */
EFFDIM_API const char *effdim_blas_config(void);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_BLAS_H */
