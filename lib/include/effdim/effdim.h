/* effdim/effdim.h: the whole public API of libeffdim in one include.
 *
 * Each header is one module, named after its functions' prefix
 * (effdim_<module>_...); docs/architecture.md lists them by layer:
 *   core      status.h progress.h blas.h sha256.h output.h
 *   data      data.h
 *   spectral  operator.h dense.h lanczos.h spectral.h neff.h  (never see a network)
 *   nn        mlp.h hvp.h optim.h train.h checkpoint.h diag.h
 *   jobs      spectrum.h compare.h posterior.h prune.h subspace.h blr.h amsgrad.h
 * Link with -leffdim (pkg-config is not provided; the library and headers
 * install under meson's libdir and includedir).
 */
#ifndef EFFDIM_EFFDIM_H
#define EFFDIM_EFFDIM_H

#include "effdim/amsgrad.h"
#include "effdim/blas.h"
#include "effdim/blr.h"
#include "effdim/checkpoint.h"
#include "effdim/comm.h"
#include "effdim/compare.h"
#include "effdim/data.h"
#include "effdim/dense.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/lanczos.h"
#include "effdim/mlp.h"
#include "effdim/mlp_svd.h"
#include "effdim/neff.h"
#include "effdim/operator.h"
#include "effdim/optim.h"
#include "effdim/output.h"
#include "effdim/posterior.h"
#include "effdim/progress.h"
#include "effdim/prune.h"
#include "effdim/sha256.h"
#include "effdim/spectral.h"
#include "effdim/spectrum.h"
#include "effdim/status.h"
#include "effdim/subspace.h"
#include "effdim/train.h"

#endif /* EFFDIM_EFFDIM_H */
