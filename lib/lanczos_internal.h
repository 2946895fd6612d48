/* lib/lanczos_internal.h: the Lanczos pieces shared by lanczos.c (eigenpairs)
 * and spectral.c (quadrature); not installed.
 *
 * A Lanczos basis is stored (rows, n) row-major: vector i at V + i*n, so a
 * block of basis vectors is a valid operator block (ldx = n) and every
 * projection is one dgemv. Orthogonalisation is classical Gram-Schmidt
 * applied twice ("twice is enough": Giraud, Langou, Rozloznik, Comput. Math.
 * Appl. 50 (2005) 1069-1075; Parlett, The Symmetric Eigenvalue Problem,
 * section 6.9), with a third pass when the second still removes more than
 * half of the norm (effdim_cgs2); a Lanczos step first removes the two
 * recurrence coefficients and then usually needs one full pass
 * (effdim_lanczos_orth_step).
 */
#ifndef EFFDIM_LANCZOS_INTERNAL_H
#define EFFDIM_LANCZOS_INTERNAL_H

#include <gsl/gsl_rng.h>
#include <stddef.h>

#include "effdim/operator.h"

/* gsl/gsl_randist.h pulls in gsl_cblas.h, whose enums clash with OpenBLAS's
 * cblas.h; the one function used is declared here exactly as GSL does. */
double gsl_ran_gaussian_ziggurat(const gsl_rng *r, const double sigma);

/* x (n) <- independent N(0, 1) */
void effdim_fill_gaussian(gsl_rng *rng, double *x, size_t n);
/* x (n) <- independent +-1 with probability 1/2 each (Rademacher) */
void effdim_fill_rademacher(gsl_rng *rng, double *x, size_t n);

/* The Euclidean norm of x (n). */
double effdim_norm2(const double *x, size_t n);

/* Orthogonalise w (n) against the rows of V (rows, n) and of U (ku, n) (both
 * orthonormal; U may be NULL) by classical Gram-Schmidt twice (three times if
 * the second pass removes more than half of the norm). If h is non-NULL it
 * receives the coefficients on V summed over the passes (rows). scratch holds
 * max(rows, ku) doubles. Returns ||w|| after. */
double effdim_cgs2(const double *V, size_t rows, const double *U, size_t ku, size_t n, double *w,
                   double *h, double *scratch);

/* Completes Lanczos step j: V[j+1] holds A V[j] on entry; its coefficients
 * on V[j-1] and V[j] are removed first (two rows), then it is orthogonalised
 * against V[0..j] and U by classical Gram-Schmidt passes until one keeps at
 * least 1/sqrt(2) of the norm (the DGKS test; Daniel, Gragg, Kaufman,
 * Stewart 1976; at most three passes), *alpha = <V[j], A V[j]> (the
 * coefficient on V[j]), *beta = its norm after. If beta <= 64 eps anorm
 * (anorm: an estimate of ||A||, e.g. the largest |Ritz value| or column norm
 * seen so far) the step is a breakdown: *breakdown = 1, V[j+1] is left as is;
 * otherwise V[j+1] is normalised. h and scratch hold j+1 and max(j+1, ku)
 * doubles. Returns EDOM (naming the step) if A V[j] was not finite. */
effdim_status effdim_lanczos_orth_step(double *V, size_t j, size_t n, const double *U, size_t ku,
                                       double anorm, double *alpha, double *beta, int *breakdown,
                                       double *h, double *scratch, const char *opname,
                                       effdim_error *err);

/* A random unit vector into w, orthogonal to the rows of V (rows) and U (ku).
 * Returns 0 when none exists numerically (rows + ku >= n, the whole space is
 * spanned), 1 otherwise. */
int effdim_random_orth_unit(gsl_rng *rng, const double *V, size_t rows, const double *U, size_t ku,
                            size_t n, double *w, double *scratch);

/* Eigen-decomposition of the symmetric tridiagonal matrix with diagonal
 * a (m) and off-diagonal b (m-1) by LAPACKE_dstev: theta (m) ascending, Z (m, m)
 * row-major with eigenvector i in column i. work holds 2m doubles. */
effdim_status effdim_tridiag_eig(size_t m, const double *a, const double *b, double *theta,
                                 double *Z, double *work, effdim_error *err);

/* Eigen-decomposition of the dense symmetric S (m, m) row-major (not modified)
 * by LAPACKE_dsyev: theta (m) ascending, Z (m, m) row-major, eigenvector i in
 * column i. */
effdim_status effdim_symm_eig(size_t m, const double *S, double *theta, double *Z,
                              effdim_error *err);

/* In place V[0..k) <- C V[0..rows): C (k, rows) row-major, V (rows, n)
 * row-major with k <= rows, column chunk by column chunk through tmp (k, chunk). */
void effdim_basis_combine(double *V, size_t rows, size_t n, const double *C, size_t k,
                          double *tmp, size_t chunk);

#endif /* EFFDIM_LANCZOS_INTERNAL_H */
