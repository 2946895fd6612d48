/* effdim/operator.h: a symmetric linear operator, the only thing the
 * eigensolvers (Lanczos), stochastic Lanczos quadrature and Hutchinson see.
 *
 * An operator is a size n, an apply callback over a BLOCK of vectors, a
 * context pointer with an optional destructor, a name, and counters. Vectors
 * in a block are stored one after another with a leading dimension:
 *
 *   X: nvec vectors of length n, vector j at X + j*ldx   (ldx >= n)
 *   Y: nvec vectors of length n, vector j at Y + j*ldy   (ldy >= n)
 *
 * i.e. a (nvec, n) row-major array with row stride ldx. (This is the
 * transpose of PRIMME's column-major convention; it matches the Lanczos basis,
 * which is stored (m+1, n) row-major, so a block of basis vectors is passed
 * without copying.) The callback computes Y[j] = A X[j] for j < nvec; it must
 * not modify X, X and Y never overlap, and it returns EFFDIM_OK or an error
 * status with a one-line message in err (which the library passes through
 * unchanged to the caller of Lanczos / SLQ).
 *
 * Operators are expected to be symmetric (A = A^T); the solvers rely on it.
 * Operators that are symmetric only up to rounding or truncation error (a
 * finite-difference Hessian) are fine: the solvers' final true residuals show
 * the effect.
 *
 * Ownership: every constructor returns a heap object that the caller frees
 * with effdim_operator_free (NULL-safe). effdim_operator_free calls
 * ctx_free(ctx) when ctx_free is non-NULL. Composite operators (shift,
 * restrict) BORROW their inner operator: it must outlive them and is not
 * freed with them. The dense constructor copies or borrows its matrix as the
 * caller chooses (effdim_ownership).
 *
 * Writing a new operator (e.g. the Hessian-vector product of a network):
 * write a callback with the signature below, put its state in a struct, and
 * call effdim_operator_alloc(n, cb, state, state_free, "hessian-fd", &op, err).
 * Set op->max_block if the callback can only take so many vectors at once
 * (effdim_operator_apply then splits larger blocks). The counters are kept by
 * effdim_operator_apply; callbacks never touch them.
 *
 * Not thread-safe: one operator is applied by one thread at a time (the
 * callback may use threads inside, e.g. OpenBLAS).
 */
#ifndef EFFDIM_OPERATOR_H
#define EFFDIM_OPERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Y[j] = A X[j] for j < nvec; see the layout above. n is the operator size
 * (passed so a callback need not store it). */
typedef effdim_status (*effdim_operator_apply_fn)(void *ctx, size_t n, size_t nvec,
                                                  const double *X, size_t ldx, double *Y,
                                                  size_t ldy, effdim_error *err);

#define EFFDIM_OPERATOR_NAME_MAX 96

typedef struct effdim_operator {
    size_t n;                       /* size: the operator maps R^n -> R^n */
    effdim_operator_apply_fn apply; /* never NULL in an operator built by _alloc */
    void *ctx;                      /* passed to apply; owned if ctx_free != NULL */
    void (*ctx_free)(void *ctx);    /* called by effdim_operator_free, may be NULL */
    size_t max_block;               /* largest nvec per callback call; 0 = no limit */
    char name[EFFDIM_OPERATOR_NAME_MAX]; /* e.g. "dense", "shift(hessian-fd)" */
    /* counters, updated by effdim_operator_apply (reset with _reset_counters) */
    size_t applications;            /* calls of effdim_operator_apply that succeeded */
    size_t vectors;                 /* vectors applied in those calls (the matvec count) */
    double seconds;                 /* wall seconds spent inside the callback */
} effdim_operator;

/* Who owns a matrix handed to a constructor. */
typedef enum effdim_ownership {
    EFFDIM_COPY = 0,  /* the operator keeps its own copy; the caller's array may go */
    EFFDIM_BORROW = 1 /* the operator points at the caller's array, which must outlive it */
} effdim_ownership;

/* A generic operator. name may be NULL ("operator"); it is truncated to
 * EFFDIM_OPERATOR_NAME_MAX - 1 characters. n must be > 0 and apply non-NULL
 * (EINVAL otherwise). On success the operator owns ctx (when ctx_free is
 * non-NULL); on failure ctx is NOT freed and stays the caller's. */
EFFDIM_API effdim_status effdim_operator_alloc(size_t n, effdim_operator_apply_fn apply, void *ctx,
                                               void (*ctx_free)(void *ctx), const char *name,
                                               effdim_operator **out, effdim_error *err);

/* Frees the operator and, when ctx_free is set, its context. NULL-safe. */
EFFDIM_API void effdim_operator_free(effdim_operator *op);

/* Y[j] = A X[j], j < nvec, through the callback (split into blocks of at most
 * max_block vectors); updates the counters on success. nvec == 0 is a no-op.
 * Errors: EINVAL for a NULL operator, NULL callback, NULL X/Y with nvec > 0 or
 * ldx, ldy < n; otherwise the callback's status and message, unchanged (if a
 * failing callback leaves no message, one naming the operator is written). */
EFFDIM_API effdim_status effdim_operator_apply(effdim_operator *op, size_t nvec, const double *X,
                                               size_t ldx, double *Y, size_t ldy,
                                               effdim_error *err);

/* Zero the counters. */
EFFDIM_API void effdim_operator_reset_counters(effdim_operator *op);

/* ---- generic operators ---------------------------------------------------- */

/* Dense symmetric A (n, n) row-major, copied or borrowed. A must be finite and
 * symmetric to |A_ij - A_ji| <= 1e-12 * max|A| (EDOM otherwise, naming the
 * entry). Apply is one dgemm per block. */
EFFDIM_API effdim_status effdim_operator_dense(size_t n, const double *A, effdim_ownership own,
                                               effdim_operator **out, effdim_error *err);

/* diag(d), d (n) copied. d must be finite. */
EFFDIM_API effdim_status effdim_operator_diag(size_t n, const double *d, effdim_operator **out,
                                              effdim_error *err);

/* alpha * A + sigma * I over an inner operator A, which is BORROWED (it must
 * outlive the result; its counters count the inner applications too). */
EFFDIM_API effdim_status effdim_operator_shift(effdim_operator *A, double alpha, double sigma,
                                               effdim_operator **out, effdim_error *err);

/* The block [offset, offset + len) of A: the len x len operator P A P^T where
 * P selects those coordinates (a len-vector is padded with zeros to length
 * A->n, A is applied, the block is extracted). Used for per-layer analysis:
 * the Hessian restricted to one layer's weights. A is BORROWED. Needs
 * 2 * block * A->n doubles of scratch, allocated here (block = A->max_block,
 * or 8 when A has no limit); the result's max_block is that block. */
EFFDIM_API effdim_status effdim_operator_restrict(effdim_operator *A, size_t offset, size_t len,
                                                  effdim_operator **out, effdim_error *err);

/* The dense matrix of any operator by n applications to unit vectors (in
 * blocks), into M (n, n) row-major: row j = (A e_j)^T, which is column j for a
 * symmetric operator. For tests and small models (n up to a few thousand).
 * If asymmetry is non-NULL it receives max_ij |M_ij - M_ji| / max|M| (0 for a
 * symmetric operator); M is returned as computed, not symmetrised. */
EFFDIM_API effdim_status effdim_operator_to_dense(effdim_operator *op, double *M, double *asymmetry,
                                                  effdim_error *err);
/* The same, reporting stage "dense" (columns done of n) through progress
 * after every block (NULL: none); a non-zero answer stops it with
 * EFFDIM_EMAXITER ("interrupted"), M then incomplete. */
EFFDIM_API effdim_status effdim_operator_to_dense_progress(effdim_operator *op, double *M,
                                                           double *asymmetry,
                                                           const effdim_progress *progress,
                                                           effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_OPERATOR_H */
