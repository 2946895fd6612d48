/* effdim/comm.h: data-parallel runs over MPI ranks (docs/scaling.md).
 *
 * A communicator is optional everywhere: the jobs take an effdim_comm
 * pointer in their params, NULL meaning one process (what every job did
 * before; a library built without MPI has only that). With a communicator of
 * R ranks every rank holds the same network and theta and a contiguous share
 * of the rows, computes its partial sum, and one reduction adds the partial
 * sums, so Lanczos, SLQ and Hutchinson see an ordinary operator and every
 * rank holds the same Lanczos basis.
 *
 * Shares: rank r of R holds rows [r n / R, (r + 1) n / R) (integer division,
 * effdim_comm_share): a pure function of (n, R), so the result does not
 * depend on which machine a rank runs on. Every rank needs at least one row
 * (effdim_comm_check_rows).
 *
 * The reduction order is fixed, a pure function of (n, R) for a sum of n
 * doubles over R ranks:
 *   n < EFFDIM_COMM_RING_MIN (the loss, counts, small blocks): rank 0 gathers
 *     the ranks' blocks, adds them in rank order ((x_0 + x_1) + x_2) + ...
 *     entry by entry and broadcasts the sum;
 *   n >= EFFDIM_COMM_RING_MIN (gradients, products): a ring reduce-scatter and
 *     allgather over R contiguous segments (segment s = effdim_comm_share(n, R,
 *     s)), segment s summed in ring order from rank s, ((x_s + x_{s+1}) + ...)
 *     + x_{s-1} (indices mod R); each rank sends and receives 2 (R - 1) n / R
 *     doubles, so the time per sum hardly grows with R (docs/scaling.md).
 * Either way every rank receives bitwise the same vector, and a run with R
 * ranks is bitwise reproducible for a given R, thread count and chunk.
 * (MPI_Allreduce promises neither.) Against the one-process sum over the
 * same rows, which adds the chunks in row order, it differs by the
 * reassociation only: |difference| <= (R + c) eps sum_i |term_i| entry by
 * entry (c the number of chunks), measured below 1e-15 relative in norm in
 * tests/test_comm.c for R = 2, 3.
 *
 * Errors: every collective here takes the caller's local status, so a rank
 * that failed still enters the collective; the status and message of the
 * lowest failing rank then reach every rank (prefixed "rank r of R: " when r
 * is not 0) and every rank returns it. A job therefore never hangs on one
 * failing rank, and the command prints that one message and exits non-zero.
 *
 * Thread use: MPI is initialised with MPI_THREAD_FUNNELED; only the thread
 * that calls the library talks to MPI (the row workers of lib/mlp.c never do).
 * Not thread-safe: one call on a communicator at a time.
 */
#ifndef EFFDIM_COMM_H
#define EFFDIM_COMM_H

#include <stddef.h>

#include "effdim/data.h"
#include "effdim/operator.h"
#include "effdim/progress.h"
#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct effdim_comm effdim_comm;

/* Sums of at least this many doubles take the ring (above). */
#define EFFDIM_COMM_RING_MIN 4096

/* 1 when the library was built with MPI (-Dmpi), else 0. */
EFFDIM_API int effdim_comm_built(void);

/* 1 when this process was started by an MPI launcher (mpirun, mpiexec or
 * srun: OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE or PMI_RANK in the
 * environment) and the library has MPI, else 0. */
EFFDIM_API int effdim_comm_launched(void);

/* The world communicator: initialises MPI (MPI_Init_thread, FUNNELED) when
 * it is not yet initialised and remembers to finalise it in
 * effdim_comm_free. *out = NULL (one process, EFFDIM_OK) when the library
 * has no MPI or effdim_comm_launched() is 0 and MPI is not initialised:
 * the command then runs exactly as a build without MPI. EINTERNAL when MPI
 * fails to start. */
EFFDIM_API effdim_status effdim_comm_world(int *argc, char ***argv, effdim_comm **out,
                                           effdim_error *err);

/* For a C program of its own that already uses MPI: mpi_comm points at an
 * MPI_Comm (the library keeps a duplicate, MPI_Comm_dup, so its traffic never
 * mixes with the program's). EINVAL without MPI in the library or when MPI is
 * not initialised. Collective over mpi_comm. */
EFFDIM_API effdim_status effdim_comm_from_mpi(const void *mpi_comm, effdim_comm **out,
                                              effdim_error *err);

/* Frees the duplicate; finalises MPI when effdim_comm_world initialised it.
 * NULL-safe. Collective. */
EFFDIM_API void effdim_comm_free(effdim_comm *c);

/* rank and size; NULL is rank 0 of 1. */
EFFDIM_API int effdim_comm_rank(const effdim_comm *c);
EFFDIM_API int effdim_comm_size(const effdim_comm *c);

/* Rows [*begin, *end) of n for rank `rank` of `size`: begin = rank n / size,
 * end = (rank + 1) n / size (exact integer arithmetic, no overflow). */
EFFDIM_API void effdim_comm_share(size_t n, int size, int rank, size_t *begin, size_t *end);

/* EINVAL naming `what` when n < the communicator's size (some rank would
 * hold no row). Not collective: every rank decides the same from n. */
EFFDIM_API effdim_status effdim_comm_check_rows(const effdim_comm *c, size_t n, const char *what,
                                                effdim_error *err);

/* Keep rank r's share of ds's rows (effdim_comm_share of ds->n) in place:
 * ds->n becomes the share's size; X, labels and Y keep those rows only. The
 * data set must be the whole set, the same on every rank. EINVAL (naming
 * `what`) when it has fewer rows than ranks. NULL comm or one rank: ds is
 * left as it is. Not collective. For an in-memory data set of the caller's;
 * a data spec loads only its share with effdim_dataset_from_spec_share
 * (effdim/data.h), which the command uses. */
EFFDIM_API effdim_status effdim_comm_keep_share(const effdim_comm *c, effdim_dataset *ds,
                                                const char *what, effdim_error *err);

/* Collective: every rank passes its local status (and message in err); all
 * return EFFDIM_OK, or the status and message of the lowest failing rank.
 * NULL or one rank: returns local unchanged. */
EFFDIM_API effdim_status effdim_comm_agree(effdim_comm *c, effdim_status local, effdim_error *err);

/* Collective: x (n, the same n on every rank) becomes the sum over the ranks
 * in the fixed order above, bitwise the same on every rank. First agrees on
 * local (x is left as it is when some rank failed). NULL or one rank:
 * returns local. ENOMEM for the buffer (rank 0's gather, at most 64 MiB; the
 * ring's n / R + 1 doubles on every rank). */
EFFDIM_API effdim_status effdim_comm_sum(effdim_comm *c, double *x, size_t n,
                                         effdim_status local, effdim_error *err);

/* Collective: *same = 1 when the n bytes of buf are the same on every rank
 * (SHA-256 of each rank's bytes against rank 0's), else 0. */
EFFDIM_API effdim_status effdim_comm_same(effdim_comm *c, const void *buf, size_t n, int *same,
                                          effdim_error *err);

/* What effdim_comm_sum has done on this rank since the communicator was made:
 * calls, doubles reduced, and wall seconds inside it (the gather, the ordered
 * sum, the broadcast and the wait for the slowest rank). NULL: zeros. */
typedef struct effdim_comm_stats {
    size_t sums;
    size_t doubles;
    double seconds;
} effdim_comm_stats;

EFFDIM_API effdim_comm_stats effdim_comm_get_stats(const effdim_comm *c);

/* The distributed operator: Y = sum over ranks (weight * inner X) + shift X,
 * one effdim_comm_sum of the whole block (nvec vectors) per apply. inner is
 * each rank's operator over its share of the rows (BORROWED: it must outlive
 * the result); weight turns its scale into the global one (n_local /
 * n_global for a mean over rows, 1 for a sum); shift adds a prior once rather
 * than once per rank. The name is "comm(<inner's name>)". Every rank must
 * apply it with the same X (an apply is collective), which Lanczos, SLQ and
 * Hutchinson do when every rank runs the same solver with the same seed.
 * The comm is borrowed too. */
EFFDIM_API effdim_status effdim_comm_operator(effdim_operator *inner, effdim_comm *c,
                                              double weight, double shift, effdim_operator **out,
                                              effdim_error *err);

/* A progress callback made collective: each event calls inner (which may be
 * {NULL, NULL}: the silent ranks) and then agrees over the ranks, so the job
 * stops on every rank when any rank asks (a SIGINT reaches each rank at a
 * different moment). The jobs report at the same points on every rank, which
 * is what makes this safe. state must outlive the returned progress. */
typedef struct effdim_comm_progress_state {
    effdim_comm *comm;
    effdim_progress inner;
} effdim_comm_progress_state;

EFFDIM_API effdim_progress effdim_comm_progress(effdim_comm_progress_state *state,
                                                effdim_comm *c, effdim_progress inner);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_COMM_H */
