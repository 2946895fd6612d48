/* lib/comm.c: the optional communicator of data-parallel runs (effdim/comm.h).
 *
 * Built with EFFDIM_HAVE_MPI (meson -Dmpi) it wraps an MPI communicator;
 * without it only the one-process behaviour exists (a NULL communicator) and
 * every constructor says the library has no MPI.
 */
#include "effdim/comm.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "data_internal.h"
#include "internal.h"
#include "sha256.h"

#ifdef EFFDIM_HAVE_MPI
#include <mpi.h>
#endif

struct effdim_comm {
#ifdef EFFDIM_HAVE_MPI
    MPI_Comm comm;      /* a duplicate: the library's traffic only */
#endif
    int rank, size;
    int finalize;       /* effdim_comm_world initialised MPI: finalise it in _free */
    double *gather;     /* rank 0's gather buffer (grown as needed) */
    size_t gather_cap;  /* doubles */
    effdim_comm_stats stats;
};

/* The most doubles one gather brings to rank 0 (64 MiB): a longer block is
 * reduced in segments. */
#define COMM_GATHER_DOUBLES ((size_t)8 << 20)

int effdim_comm_built(void)
{
#ifdef EFFDIM_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int effdim_comm_launched(void)
{
    if (!effdim_comm_built()) return 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; ++i)
        if (getenv(vars[i])) return 1;
    return 0;
}

int effdim_comm_rank(const effdim_comm *c) { return c ? c->rank : 0; }

effdim_comm_stats effdim_comm_get_stats(const effdim_comm *c)
{
    effdim_comm_stats z = {0, 0, 0.0};
    return c ? c->stats : z;
}
int effdim_comm_size(const effdim_comm *c) { return c ? c->size : 1; }

void effdim_comm_share(size_t n, int size, int rank, size_t *begin, size_t *end)
{
    size_t R = size > 0 ? (size_t)size : 1, r = rank > 0 ? (size_t)rank : 0;
    if (r > R) r = R;
    /* r n / R without forming r n: n = q R + m, so r n / R = r q + r m / R, r m < R^2 */
    size_t q = n / R, m = n % R;
    *begin = r * q + r * m / R;
    *end = (r + 1) * q + (r + 1) * m / R;
}

effdim_status effdim_rows_for_ranks(size_t n, int ranks, const char *what, effdim_error *err)
{
    RETURN_ERROR_IF(n < (size_t)(ranks > 1 ? ranks : 1), err, EFFDIM_EINVAL,
                    "%s: %zu rows for %d ranks: every rank needs at least one row (run with at "
                    "most %zu ranks)",
                    what ? what : "data", n, ranks, n);
    return EFFDIM_OK;
}

effdim_status effdim_comm_check_rows(const effdim_comm *c, size_t n, const char *what,
                                     effdim_error *err)
{
    return effdim_rows_for_ranks(n, effdim_comm_size(c), what, err);
}

effdim_status effdim_comm_keep_share(const effdim_comm *c, effdim_dataset *ds, const char *what,
                                     effdim_error *err)
{
    RETURN_ERROR_IF(!ds, err, EFFDIM_EINVAL, "%s: NULL data set", what ? what : "data");
    if (effdim_comm_size(c) <= 1) return EFFDIM_OK;
    effdim_status st = effdim_comm_check_rows(c, ds->n, what, err);
    if (st) return st;
    size_t b, e;
    effdim_comm_share(ds->n, c->size, c->rank, &b, &e);
    return effdim_data_keep_range(ds, b, e, err);
}

#ifdef EFFDIM_HAVE_MPI

static effdim_status wrap(MPI_Comm from, int finalize, effdim_comm **out, effdim_error *err)
{
    effdim_comm *c = effdim_calloc(1, sizeof *c, "communicator", err);
    if (!c) return EFFDIM_ENOMEM;
    if (MPI_Comm_dup(from, &c->comm) != MPI_SUCCESS) {
        free(c);
        return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Comm_dup failed");
    }
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->finalize = finalize;
    *out = c;
    return EFFDIM_OK;
}

effdim_status effdim_comm_world(int *argc, char ***argv, effdim_comm **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "communicator: NULL output");
    *out = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && !effdim_comm_launched()) return EFFDIM_OK;
    int finalize = 0;
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Init_thread failed");
        finalize = 1;
    }
    effdim_status st = wrap(MPI_COMM_WORLD, finalize, out, err);
    if (st && finalize) MPI_Finalize();
    return st;
}

effdim_status effdim_comm_from_mpi(const void *mpi_comm, effdim_comm **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out || !mpi_comm, err, EFFDIM_EINVAL, "communicator: NULL %s",
                    !out ? "output" : "MPI_Comm");
    *out = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    RETURN_ERROR_IF(!inited, err, EFFDIM_EINVAL,
                    "communicator: MPI is not initialised (call MPI_Init first)");
    return wrap(*(const MPI_Comm *)mpi_comm, 0, out, err);
}

void effdim_comm_free(effdim_comm *c)
{
    if (!c) return;
    int finalize = c->finalize;
    MPI_Comm_free(&c->comm);
    free(c->gather);
    free(c);
    int done = 0;
    MPI_Finalized(&done);
    if (finalize && !done) MPI_Finalize();
}

/* the message every rank returns: rank `from`'s */
typedef struct comm_msg {
    int code;
    char msg[EFFDIM_ERROR_MAX];
} comm_msg;

effdim_status effdim_comm_agree(effdim_comm *c, effdim_status local, effdim_error *err)
{
    if (!c || c->size <= 1) return local;
    int mine = local ? c->rank : c->size, first = c->size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm) != MPI_SUCCESS)
        return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Allreduce of the status failed");
    if (first == c->size) return EFFDIM_OK;
    comm_msg m;
    memset(&m, 0, sizeof m);
    if (c->rank == first) {
        m.code = (int)local;
        if (err && err->msg[0]) snprintf(m.msg, sizeof m.msg, "%s", err->msg);
        else snprintf(m.msg, sizeof m.msg, "%s", effdim_status_name(local));
    }
    if (MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, c->comm) != MPI_SUCCESS)
        return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Bcast of an error failed");
    if (first == 0) return effdim_error_set(err, (effdim_status)m.code, "%s", m.msg);
    return effdim_error_set(err, (effdim_status)m.code, "rank %d of %d: %s", first, c->size, m.msg);
}

static effdim_status reduce(effdim_comm *c, double *x, size_t n, effdim_status local,
                            effdim_error *err);

effdim_status effdim_comm_sum(effdim_comm *c, double *x, size_t n, effdim_status local,
                              effdim_error *err)
{
    if (!c || c->size <= 1) return local;
    double t0 = effdim_now();
    effdim_status st = reduce(c, x, n, local, err);
    c->stats.sums += 1;
    c->stats.doubles += n;
    c->stats.seconds += effdim_now() - t0;
    return st;
}

/* c->gather holds at least `need` doubles on the ranks where want is set; the
 * status of the allocation is agreed before any data moves */
static effdim_status scratch(effdim_comm *c, size_t need, int want, effdim_error *err)
{
    effdim_status st = EFFDIM_OK;
    if (want && c->gather_cap < need) {
        double *g = effdim_alloc(need, sizeof *g, "the reduction's buffer", err);
        if (g) {
            free(c->gather);
            c->gather = g;
            c->gather_cap = need;
        } else {
            st = EFFDIM_ENOMEM;
        }
    }
    return effdim_comm_agree(c, st, err);
}

/* The ring: a reduce-scatter then an allgather over R segments (segment s =
 * effdim_comm_share(n, R, s)), 2 (R - 1) messages of n / R doubles per rank.
 * Segment s is summed in ring order from rank s: ((x_s + x_{s+1}) + ...) +
 * x_{s-1} (indices mod R); the allgather copies each finished segment, so every
 * rank holds the same bits. */
static effdim_status ring_sum(effdim_comm *c, double *x, size_t n, effdim_error *err)
{
    const int R = c->size, r = c->rank, next = (r + 1) % R, prev = (r + R - 1) % R;
    size_t b, e, most = 0;
    for (int s = 0; s < R; ++s) {
        effdim_comm_share(n, R, s, &b, &e);
        if (e - b > most) most = e - b;
    }
    RETURN_ERROR_IF(most > (size_t)INT_MAX, err, EFFDIM_EINVAL,
                    "reduction: %zu doubles per segment is above MPI's count limit", most);
    effdim_status st = scratch(c, most, 1, err);
    if (st) return st;
    double *in = c->gather;
    for (int k = 0; k < R - 1; ++k) { /* reduce-scatter */
        size_t sb, se, rb, re;
        effdim_comm_share(n, R, ((r - k) % R + R) % R, &sb, &se);
        effdim_comm_share(n, R, ((r - k - 1) % R + R) % R, &rb, &re);
        if (MPI_Sendrecv(x + sb, (int)(se - sb), MPI_DOUBLE, next, 0, in, (int)(re - rb),
                         MPI_DOUBLE, prev, 0, c->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Sendrecv of a partial sum failed");
        for (size_t i = 0; i < re - rb; ++i) x[rb + i] = in[i] + x[rb + i];
    }
    for (int k = 0; k < R - 1; ++k) { /* allgather: rank r finished segment r + 1 */
        size_t sb, se, rb, re;
        effdim_comm_share(n, R, ((r + 1 - k) % R + R) % R, &sb, &se);
        effdim_comm_share(n, R, ((r - k) % R + R) % R, &rb, &re);
        if (MPI_Sendrecv(x + sb, (int)(se - sb), MPI_DOUBLE, next, 1, x + rb, (int)(re - rb),
                         MPI_DOUBLE, prev, 1, c->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Sendrecv of a sum failed");
    }
    return EFFDIM_OK;
}

static effdim_status reduce(effdim_comm *c, double *x, size_t n, effdim_status local,
                            effdim_error *err)
{
    effdim_status st = effdim_comm_agree(c, local, err);
    if (st) return st;
    size_t R = (size_t)c->size;
    if (n >= EFFDIM_COMM_RING_MIN) return ring_sum(c, x, n, err);
    size_t seg = COMM_GATHER_DOUBLES / R;
    if (seg < 1) seg = 1;
    if (seg > n) seg = n;
    if ((st = scratch(c, seg * R, c->rank == 0, err))) return st; /* rank 0's gather buffer */
    for (size_t off = 0; off < n; off += seg) {
        int cnt = (int)(n - off < seg ? n - off : seg);
        if (MPI_Gather(x + off, cnt, MPI_DOUBLE, c->gather, cnt, MPI_DOUBLE, 0, c->comm) !=
            MPI_SUCCESS)
            return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Gather of a partial sum failed");
        if (c->rank == 0)
            for (size_t i = 0; i < (size_t)cnt; ++i) {
                double s = c->gather[i];
                for (size_t r = 1; r < R; ++r) s += c->gather[r * (size_t)cnt + i];
                x[off + i] = s;
            }
        if (MPI_Bcast(x + off, cnt, MPI_DOUBLE, 0, c->comm) != MPI_SUCCESS)
            return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Bcast of a sum failed");
    }
    return EFFDIM_OK;
}

effdim_status effdim_comm_same(effdim_comm *c, const void *buf, size_t n, int *same,
                               effdim_error *err)
{
    RETURN_ERROR_IF(!same || (!buf && n), err, EFFDIM_EINVAL, "communicator: NULL %s",
                    !same ? "answer" : "buffer");
    *same = 1;
    if (!c || c->size <= 1) return EFFDIM_OK;
    unsigned char mine[32], root[32];
    effdim_sha256 h;
    effdim_sha256_init(&h);
    effdim_sha256_update(&h, buf, n);
    effdim_sha256_final(&h, mine);
    memcpy(root, mine, sizeof root);
    if (MPI_Bcast(root, 32, MPI_BYTE, 0, c->comm) != MPI_SUCCESS)
        return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Bcast of a digest failed");
    int eq = !memcmp(root, mine, sizeof mine), all = 0;
    if (MPI_Allreduce(&eq, &all, 1, MPI_INT, MPI_MIN, c->comm) != MPI_SUCCESS)
        return effdim_error_set(err, EFFDIM_EINTERNAL, "MPI_Allreduce of a comparison failed");
    *same = all;
    return EFFDIM_OK;
}

#else /* no MPI: one process only */

effdim_status effdim_comm_world(int *argc, char ***argv, effdim_comm **out, effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "communicator: NULL output");
    *out = NULL;
    return EFFDIM_OK;
}

effdim_status effdim_comm_from_mpi(const void *mpi_comm, effdim_comm **out, effdim_error *err)
{
    if (out) *out = NULL;
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "communicator: this libeffdim was built without MPI (meson -Dmpi=enabled)");
}

void effdim_comm_free(effdim_comm *c) { free(c); }

effdim_status effdim_comm_agree(effdim_comm *c, effdim_status local, effdim_error *err)
{
    return local;
}

effdim_status effdim_comm_sum(effdim_comm *c, double *x, size_t n, effdim_status local,
                              effdim_error *err)
{
    return local;
}

effdim_status effdim_comm_same(effdim_comm *c, const void *buf, size_t n, int *same,
                               effdim_error *err)
{
    RETURN_ERROR_IF(!same, err, EFFDIM_EINVAL, "communicator: NULL answer");
    *same = 1;
    return EFFDIM_OK;
}

#endif

/* ---- the distributed operator ------------------------------------------------------ */

typedef struct comm_op {
    effdim_operator *inner;
    effdim_comm *comm;
    double weight, shift;
    double *tmp; /* (tmp_cap) the block when Y is strided, allocated at the first such apply */
    size_t tmp_cap;
    int own;     /* inner is freed with the operator */
} comm_op;

static void comm_op_free(void *ctx)
{
    comm_op *o = ctx;
    if (!o) return;
    if (o->own) effdim_operator_free(o->inner);
    free(o->tmp);
    free(o);
}

static effdim_status comm_op_apply(void *ctx, size_t n, size_t nvec, const double *X, size_t ldx,
                                   double *Y, size_t ldy, effdim_error *err)
{
    comm_op *o = ctx;
    /* one contiguous block, so the whole block is one reduction */
    if (ldy != n && o->tmp_cap < nvec * n) {
        double *t = effdim_alloc(nvec * n, sizeof *t, "communicator operator block", err);
        if (!t) return effdim_comm_sum(o->comm, NULL, 0, EFFDIM_ENOMEM, err);
        free(o->tmp);
        o->tmp = t;
        o->tmp_cap = nvec * n;
    }
    double *B = ldy == n ? Y : o->tmp;
    effdim_status st = effdim_operator_apply(o->inner, nvec, X, ldx, B, n, err);
    if (!st && o->weight != 1.0)
        for (size_t i = 0; i < nvec * n; ++i) B[i] *= o->weight;
    st = effdim_comm_sum(o->comm, B, nvec * n, st, err);
    if (st) return st;
    for (size_t j = 0; j < nvec; ++j) {
        double *y = Y + j * ldy;
        const double *b = B + j * n, *x = X + j * ldx;
        for (size_t i = 0; i < n; ++i) y[i] = b[i] + o->shift * x[i];
    }
    return EFFDIM_OK;
}

effdim_status effdim_comm_operator_make(effdim_operator *inner, effdim_comm *c, double weight,
                                        double shift, int own, effdim_operator **out,
                                        effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "communicator operator: NULL output");
    *out = NULL;
    RETURN_ERROR_IF(!inner, err, EFFDIM_EINVAL, "communicator operator: NULL inner operator");
    if (!(weight - weight == 0.0) || !(shift - shift == 0.0)) {
        if (own) effdim_operator_free(inner);
        return effdim_error_set(err, EFFDIM_EDOM,
                                "communicator operator: weight %g, shift %g: expected finite "
                                "numbers", weight, shift);
    }
    size_t block = inner->max_block ? inner->max_block : 64;
    comm_op *o = effdim_calloc(1, sizeof *o, "communicator operator", err);
    if (!o) {
        if (own) effdim_operator_free(inner);
        return EFFDIM_ENOMEM;
    }
    o->own = own;
    o->inner = inner;
    o->comm = c;
    o->weight = weight;
    o->shift = shift;
    char name[EFFDIM_OPERATOR_NAME_MAX];
    snprintf(name, sizeof name, "comm(%.80s)", inner->name);
    effdim_status st = effdim_operator_alloc(inner->n, comm_op_apply, o, comm_op_free, name, out, err);
    if (st) {
        comm_op_free(o);
        return st;
    }
    (*out)->max_block = block;
    return EFFDIM_OK;
}

effdim_status effdim_comm_operator(effdim_operator *inner, effdim_comm *c, double weight,
                                   double shift, effdim_operator **out, effdim_error *err)
{
    return effdim_comm_operator_make(inner, c, weight, shift, 0, out, err);
}

/* ---- collective progress ------------------------------------------------------------ */

static int comm_progress_fn(void *ctx, const effdim_progress_event *ev)
{
    effdim_comm_progress_state *s = ctx;
    int stop = s->inner.fn ? s->inner.fn(s->inner.ctx, ev) : 0;
    double v = stop ? 1.0 : 0.0;
    effdim_error ignore;
    effdim_error_clear(&ignore);
    if (effdim_comm_sum(s->comm, &v, 1, EFFDIM_OK, &ignore)) return 1;
    return v > 0;
}

effdim_progress effdim_comm_progress(effdim_comm_progress_state *state, effdim_comm *c,
                                     effdim_progress inner)
{
    if (!state || effdim_comm_size(c) <= 1) return inner;
    state->comm = c;
    state->inner = inner;
    effdim_progress p = {comm_progress_fn, state};
    return p;
}
