/* effdim/dense.h: dense symmetric matrices: their whole spectrum, and
 * matrices with a known spectrum.
 *
 * The exact references of the iterative methods (effdim spectrum --dense,
 * the tests' oracles) and the operators of known spectrum the solvers are
 * tested on. Matrices are (n, n) row-major doubles.
 */
#ifndef EFFDIM_DENSE_H
#define EFFDIM_DENSE_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* All eigenvalues of the dense symmetric A (n, n) row-major (not modified),
 * by LAPACKE_dsyev, into w (n) in DESCENDING order. */
EFFDIM_API effdim_status effdim_dense_eigenvalues(size_t n, const double *A, double *w,
                                                  effdim_error *err);

/* A Haar-distributed random orthogonal Q (n, n) row-major from the QR
 * factorisation of a Gaussian matrix (LAPACKE dgeqrf + dorgqr, columns signed
 * by diag(R)), seeded (GSL mt19937). */
EFFDIM_API effdim_status effdim_dense_random_orthogonal(size_t n, uint64_t seed, double *Q,
                                                  effdim_error *err);

/* A = Q diag(lambda) Q^T (n, n) row-major with Q = effdim_dense_random_orthogonal(n,
 * seed), exactly symmetrised. The eigenvalues of A are lambda (n) up to
 * rounding (about n * eps * max|lambda|). */
EFFDIM_API effdim_status effdim_dense_with_spectrum(size_t n, const double *lambda, uint64_t seed,
                                                    double *A, effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_DENSE_H */
