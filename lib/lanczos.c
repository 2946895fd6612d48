/* lib/lanczos.c: thick-restart Lanczos for extreme eigenpairs of a symmetric
 * operator, and the Lanczos pieces shared with spectral.c.
 *
 * Algorithm (docs/curvature.md has the long form):
 *   Basis V (m+1, n) row-major, projected matrix T (m, m). Step j applies the
 *   operator to v_j, removes from the result its two recurrence coefficients
 *   (on v_j, v_{j-1}) and then orthogonalises it against the whole basis by
 *   classical Gram-Schmidt passes (dgemv) until one keeps 1/sqrt(2) of the
 *   norm (DGKS; usually one), so alpha_j = T_jj and beta_j = ||w||. Before
 *   the first restart T is tridiagonal and its eigenproblem is solved by
 *   LAPACKE_dstev; after a thick restart (Wu and Simon, "Thick-restart
 *   Lanczos method for large symmetric eigenvalue problems", SIAM J. Matrix
 *   Anal. Appl. 22(2) 602-616, 2000, section 3) the first l basis vectors
 *   are Ritz vectors y_i with T_ii = theta_i, the (l+1)-th is the old
 *   residual direction with couplings
 *   s_i = beta_m z_{m,i} (an arrowhead), and the rest is tridiagonal again;
 *   that matrix goes to LAPACKE_dsyev. After each step the wanted Ritz pairs
 *   are tested by the residual bound |beta_j z_{j,i}| (Parlett, The
 *   Symmetric Eigenvalue Problem, section 13.2); the run stops as soon as all
 *   pass, restarts when the basis is full, and at the end forms the Ritz
 *   vectors in place and measures their true residuals with one block apply.
 *   A breakdown (beta ~ 0) continues from a random vector orthogonal to the
 *   basis with a zero coupling, so T stays exact.
 */
#include <cblas.h>
#include <lapacke.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/lanczos.h"
#include "internal.h"
#include "lanczos_internal.h"

/* ---- shared pieces (declared in lanczos_internal.h) ------------------------- */

void effdim_fill_gaussian(gsl_rng *rng, double *x, size_t n)
{
    for (size_t i = 0; i < n; ++i) x[i] = gsl_ran_gaussian_ziggurat(rng, 1.0);
}

void effdim_fill_rademacher(gsl_rng *rng, double *x, size_t n)
{
    /* 32 signs per draw: mt19937 returns 32 random bits */
    for (size_t i = 0; i < n; i += 32) {
        unsigned long bits = gsl_rng_get(rng);
        size_t end = n - i < 32 ? n - i : 32;
        for (size_t b = 0; b < end; ++b) x[i + b] = ((bits >> b) & 1UL) ? 1.0 : -1.0;
    }
}

double effdim_norm2(const double *x, size_t n) { return cblas_dnrm2((int)n, x, 1); }

/* c = B w, w -= B^T c: one classical Gram-Schmidt pass against rows of B. */
static void cgs_pass(const double *B, size_t rows, size_t n, double *w, double *c)
{
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)n, 1.0, B, (int)n, w, 1, 0.0, c, 1);
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)rows, (int)n, -1.0, B, (int)n, c, 1, 1.0, w, 1);
}

double effdim_cgs2(const double *V, size_t rows, const double *U, size_t ku, size_t n, double *w,
                   double *h, double *scratch)
{
    if (h)
        for (size_t i = 0; i < rows; ++i) h[i] = 0.0;
    double prev = effdim_norm2(w, n);
    for (int pass = 0; pass < 3; ++pass) {
        if (U && ku) cgs_pass(U, ku, n, w, scratch);
        if (rows) {
            cgs_pass(V, rows, n, w, scratch);
            if (h)
                for (size_t i = 0; i < rows; ++i) h[i] += scratch[i];
        }
        double now = effdim_norm2(w, n);
        /* twice is enough unless the second pass still cancelled most of w */
        if (pass >= 1 && now >= 0.5 * prev) return now;
        prev = now;
    }
    return prev;
}

/* A Gram-Schmidt pass that keeps at least this share of the norm leaves w
 * orthogonal to working precision (Daniel, Gragg, Kaufman, Stewart, Math.
 * Comp. 30 (1976) 772-795; ARPACK's dsaitr uses 0.717). */
#define DGKS_KEEP 0.7071067811865476

effdim_status effdim_lanczos_orth_step(double *V, size_t j, size_t n, const double *U, size_t ku,
                                       double anorm, double *alpha, double *beta, int *breakdown,
                                       double *h, double *scratch, const char *opname,
                                       effdim_error *err)
{
    double *w = V + (j + 1) * n;
    size_t bad;
    RETURN_ERROR_IF(!effdim_all_finite(w, n, &bad), err, EFFDIM_EDOM,
                    "operator '%s': A v at Lanczos step %zu has a non-finite entry %zu (%g)",
                    opname, j, bad, w[bad]);
    double wnorm = effdim_norm2(w, n); /* ||A v_j|| <= ||A|| */
    if (wnorm > anorm) anorm = wnorm;
    for (size_t i = 0; i <= j; ++i) h[i] = 0.0;
    /* the local part first: the large coefficients of A v_j are on v_j and
       v_{j-1} (the three-term recurrence); two rows, cheap */
    size_t lo = j ? j - 1 : 0;
    cgs_pass(V + lo * n, j + 1 - lo, n, w, scratch);
    for (size_t i = lo; i <= j; ++i) h[i] += scratch[i - lo];
    /* then full passes until one removes little (DGKS test): what is left
       against the older rows is then at rounding level */
    double prev = effdim_norm2(w, n), b = prev;
    for (int pass = 0; pass < 3; ++pass) {
        if (U && ku) cgs_pass(U, ku, n, w, scratch);
        cgs_pass(V, j + 1, n, w, scratch);
        for (size_t i = 0; i <= j; ++i) h[i] += scratch[i];
        b = effdim_norm2(w, n);
        if (b >= DGKS_KEEP * prev) break;
        prev = b;
    }
    *alpha = h[j];
    *beta = b;
    *breakdown = b <= 64.0 * DBL_EPSILON * anorm || b == 0.0;
    if (!*breakdown) cblas_dscal((int)n, 1.0 / b, w, 1);
    return EFFDIM_OK;
}

int effdim_random_orth_unit(gsl_rng *rng, const double *V, size_t rows, const double *U, size_t ku,
                            size_t n, double *w, double *scratch)
{
    if (rows + ku >= n) return 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
        effdim_fill_gaussian(rng, w, n);
        double before = effdim_norm2(w, n);
        double after = effdim_cgs2(V, rows, U, ku, n, w, NULL, scratch);
        if (after > 1e-10 * before) {
            cblas_dscal((int)n, 1.0 / after, w, 1);
            return 1;
        }
    }
    return 0;
}

effdim_status effdim_tridiag_eig(size_t m, const double *a, const double *b, double *theta,
                                 double *Z, double *work, effdim_error *err)
{
    double *e = work; /* (m) off-diagonal copy, destroyed by dstev */
    memcpy(theta, a, m * sizeof(double));
    if (m > 1) memcpy(e, b, (m - 1) * sizeof(double));
    lapack_int info = LAPACKE_dstev(LAPACK_ROW_MAJOR, 'V', (lapack_int)m, theta, e, Z,
                                    (lapack_int)m);
    RETURN_ERROR_IF(info != 0, err, EFFDIM_EINTERNAL,
                    "lanczos: LAPACKE_dstev on the %zu x %zu tridiagonal matrix failed, info = %d",
                    m, m, (int)info);
    return EFFDIM_OK;
}

effdim_status effdim_symm_eig(size_t m, const double *S, double *theta, double *Z,
                              effdim_error *err)
{
    memcpy(Z, S, m * m * sizeof(double));
    lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)m, Z, (lapack_int)m,
                                    theta);
    RETURN_ERROR_IF(info != 0, err, EFFDIM_EINTERNAL,
                    "lanczos: LAPACKE_dsyev on the %zu x %zu projected matrix failed, info = %d",
                    m, m, (int)info);
    return EFFDIM_OK;
}

void effdim_basis_combine(double *V, size_t rows, size_t n, const double *C, size_t k,
                          double *tmp, size_t chunk)
{
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t bc = n - c0 < chunk ? n - c0 : chunk;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)k, (int)bc, (int)rows, 1.0, C,
                    (int)rows, V + c0, (int)n, 0.0, tmp, (int)bc);
        for (size_t s = 0; s < k; ++s) memcpy(V + s * n + c0, tmp + s * bc, bc * sizeof(double));
    }
}

/* ---- parameters ------------------------------------------------------------- */

#define COMBINE_CHUNK 256

const char *effdim_lanczos_which_name(effdim_lanczos_which w)
{
    switch (w) {
    case EFFDIM_LANCZOS_LARGEST: return "top";
    case EFFDIM_LANCZOS_SMALLEST: return "bottom";
    case EFFDIM_LANCZOS_BOTH: return "both";
    }
    return "unknown";
}

effdim_status effdim_lanczos_which_parse(const char *s, effdim_lanczos_which *w, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !w, err, EFFDIM_EINVAL, "lanczos: which: NULL argument");
    if (!strcmp(s, "top") || !strcmp(s, "largest")) *w = EFFDIM_LANCZOS_LARGEST;
    else if (!strcmp(s, "bottom") || !strcmp(s, "smallest")) *w = EFFDIM_LANCZOS_SMALLEST;
    else if (!strcmp(s, "both")) *w = EFFDIM_LANCZOS_BOTH;
    else
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "lanczos: which = '%s', expected top, bottom or both", s);
    return EFFDIM_OK;
}

effdim_lanczos_params effdim_lanczos_default_params(void)
{
    effdim_lanczos_params p;
    memset(&p, 0, sizeof p);
    p.k = 20;
    p.which = EFFDIM_LANCZOS_LARGEST;
    p.m = 0;
    p.tol = 1e-8;
    p.max_restarts = 0;
    p.max_matvecs = 10000;
    p.seed = 0;
    p.want_vectors = 0;
    p.true_residuals = 1;
    return p;
}

/* the default basis size before clamping to n */
static size_t default_m(size_t k) { return 2 * k + 60; }

/* ---- the workspace ---------------------------------------------------------- */

struct effdim_lanczos_workspace {
    size_t n, m, k, kt, kb; /* kt wanted at the top, kb at the bottom, kt + kb = k */
    effdim_lanczos_params p;
    effdim_operator *op; /* borrowed for the run */
    gsl_rng *rng;
    double *V;       /* (m+1, n) basis; row nT is the residual direction */
    double *T;       /* (m, m) projected matrix, row stride m */
    double *Z;       /* (m, m) eigenvectors of the leading nT x nT of T, row stride nT */
    double *theta;   /* (m) its eigenvalues, ascending */
    double *C;       /* (m, m) combination coefficients for restarts and Ritz vectors */
    double *tmp;     /* (m, COMBINE_CHUNK) */
    double *h;       /* (m+1) Gram-Schmidt coefficients */
    double *scratch; /* (m+1) */
    double *work;    /* (2m) for dstev / the tridiagonal copy */
    size_t *sel;     /* (m) selected Ritz indices */
    size_t *blk;     /* (m+1) Krylov block of each basis row (a new block after each breakdown) */
    size_t *blk_new; /* (m) scratch for restarts */
    double *Zb;      /* (m, m) eigenvectors of the latest block's part of T */
    double *phi;     /* (m) its eigenvalues */
    double *ferr;    /* (m+1) bound on ||f_r||, the error of row r's Lanczos relation
                        A v_r = sum_i T_ir v_i (+ beta v_nT for the last) + f_r: the
                        Gram-Schmidt coefficients T does not hold (rounding, asymmetry),
                        carried through restarts */
    double fcarry;   /* ||F||_F of the rows kept at the last restart: a restart combines
                        rows by orthonormal coefficients, so it cannot grow */
    /* results (k) */
    double *eval, *bound, *resid;
    unsigned char *conv;
    /* state */
    size_t nT;        /* size of the projected matrix (basis vectors with T known) */
    size_t l;         /* Ritz vectors kept at the last restart (0: still tridiagonal) */
    double beta_last; /* coupling of v_nT (V row nT) to the basis */
    double anorm;     /* estimate of ||A||: max of ||A v_j|| and |theta| seen */
    int exhausted;    /* the basis spans R^n: T is exact */
    int started, done;
    effdim_status final;
    char final_msg[EFFDIM_ERROR_MAX];
    size_t steps, restarts, breakdowns, matvecs_residual, vectors0, nconv;
    size_t cur_blk;   /* block of the newest basis vector */
    int blk_broke;    /* the block of row nT-1 ended in a breakdown at the last step */
    double worst, t0, apply0, seconds, seconds_apply;
};

void effdim_lanczos_free(effdim_lanczos_workspace *ws)
{
    if (!ws) return;
    if (ws->rng) gsl_rng_free(ws->rng);
    free(ws->V);
    free(ws->T);
    free(ws->Z);
    free(ws->theta);
    free(ws->C);
    free(ws->tmp);
    free(ws->h);
    free(ws->scratch);
    free(ws->work);
    free(ws->sel);
    free(ws->blk);
    free(ws->blk_new);
    free(ws->Zb);
    free(ws->phi);
    free(ws->ferr);
    free(ws->eval);
    free(ws->bound);
    free(ws->resid);
    free(ws->conv);
    free(ws);
}

static effdim_status check_params(size_t n, const effdim_lanczos_params *p, size_t *m_out,
                                  effdim_error *err)
{
    RETURN_ERROR_IF(!p, err, EFFDIM_EINVAL, "lanczos: params is NULL");
    RETURN_ERROR_IF(n == 0, err, EFFDIM_EINVAL, "lanczos: operator size n = 0, expected n > 0");
    RETURN_ERROR_IF(p->k == 0, err, EFFDIM_EINVAL, "lanczos: k = 0 eigenpairs requested, expected k >= 1");
    RETURN_ERROR_IF(p->k > n, err, EFFDIM_EINVAL,
                    "lanczos: k = %zu eigenpairs requested but the operator has size n = %zu, "
                    "expected k <= n",
                    p->k, n);
    RETURN_ERROR_IF(p->which != EFFDIM_LANCZOS_LARGEST && p->which != EFFDIM_LANCZOS_SMALLEST &&
                        p->which != EFFDIM_LANCZOS_BOTH,
                    err, EFFDIM_EINVAL, "lanczos: which = %d, expected top, bottom or both",
                    (int)p->which);
    RETURN_ERROR_IF(!(p->tol > 0.0 && p->tol < 1.0), err, EFFDIM_EINVAL,
                    "lanczos: tol = %g, expected 0 < tol < 1", p->tol);
    size_t m = p->m ? p->m : default_m(p->k);
    if (m > n) m = n;
    RETURN_ERROR_IF(m < n && m < p->k + 2, err, EFFDIM_EINVAL,
                    "lanczos: basis size m = %zu is too small for k = %zu: expected m >= k + 2 = %zu "
                    "(or m >= n = %zu)",
                    m, p->k, p->k + 2, n);
    *m_out = m;
    return EFFDIM_OK;
}

effdim_lanczos_workspace *effdim_lanczos_alloc(size_t n, const effdim_lanczos_params *p,
                                               effdim_error *err)
{
    size_t m = 0;
    if (check_params(n, p, &m, err) != EFFDIM_OK) return NULL;
    size_t rows;
    if (effdim_add_size(m, 1, &rows) || rows > (size_t)INT32_MAX || n > (size_t)INT32_MAX) {
        effdim_error_set(err, EFFDIM_ENOMEM, "lanczos: n = %zu, m = %zu exceed the BLAS index range", n, m);
        return NULL;
    }
    effdim_lanczos_workspace *ws = effdim_calloc(1, sizeof *ws, "lanczos workspace", err);
    if (!ws) return NULL;
    ws->n = n;
    ws->m = m;
    ws->k = p->k;
    ws->p = *p;
    ws->p.m = m;
    ws->kt = p->which == EFFDIM_LANCZOS_LARGEST ? p->k
             : p->which == EFFDIM_LANCZOS_SMALLEST ? 0 : (p->k + 1) / 2;
    ws->kb = p->k - ws->kt;
    ws->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!ws->rng) {
        effdim_error_set(err, EFFDIM_ENOMEM, "lanczos: cannot allocate the random number generator");
        goto fail;
    }
    if (!(ws->V = effdim_alloc(rows, n * sizeof(double), "lanczos basis (m+1, n)", err))) goto fail;
    if (!(ws->T = effdim_calloc(m * m, sizeof(double), "lanczos projected matrix", err))) goto fail;
    if (!(ws->Z = effdim_alloc(m * m, sizeof(double), "lanczos Ritz vectors of T", err))) goto fail;
    if (!(ws->C = effdim_alloc(m * m, sizeof(double), "lanczos restart coefficients", err))) goto fail;
    if (!(ws->tmp = effdim_alloc(m * COMBINE_CHUNK, sizeof(double), "lanczos scratch", err))) goto fail;
    if (!(ws->theta = effdim_alloc(m, sizeof(double), "lanczos Ritz values", err))) goto fail;
    if (!(ws->h = effdim_alloc(rows, sizeof(double), "lanczos coefficients", err))) goto fail;
    if (!(ws->scratch = effdim_alloc(rows, sizeof(double), "lanczos scratch", err))) goto fail;
    if (!(ws->work = effdim_alloc(2 * m, sizeof(double), "lanczos scratch", err))) goto fail;
    if (!(ws->sel = effdim_alloc(m, sizeof(size_t), "lanczos selection", err))) goto fail;
    if (!(ws->blk = effdim_calloc(rows, sizeof(size_t), "lanczos blocks", err))) goto fail;
    if (!(ws->blk_new = effdim_alloc(m, sizeof(size_t), "lanczos blocks", err))) goto fail;
    if (!(ws->Zb = effdim_alloc(m * m, sizeof(double), "lanczos block vectors", err))) goto fail;
    if (!(ws->phi = effdim_alloc(m, sizeof(double), "lanczos block values", err))) goto fail;
    if (!(ws->ferr = effdim_calloc(rows, sizeof(double), "lanczos relation errors", err))) goto fail;
    if (!(ws->eval = effdim_alloc(ws->k, sizeof(double), "lanczos eigenvalues", err))) goto fail;
    if (!(ws->bound = effdim_alloc(ws->k, sizeof(double), "lanczos bounds", err))) goto fail;
    if (!(ws->resid = effdim_alloc(ws->k, sizeof(double), "lanczos residuals", err))) goto fail;
    if (!(ws->conv = effdim_alloc(ws->k, 1, "lanczos flags", err))) goto fail;
    return ws;
fail:
    effdim_lanczos_free(ws);
    return NULL;
}

effdim_status effdim_lanczos_init(effdim_lanczos_workspace *ws, effdim_operator *op,
                                  const double *v0, effdim_error *err)
{
    RETURN_ERROR_IF(!ws, err, EFFDIM_EINVAL, "lanczos: workspace is NULL");
    RETURN_ERROR_IF(!op, err, EFFDIM_EINVAL, "lanczos: operator is NULL");
    RETURN_ERROR_IF(!op->apply, err, EFFDIM_EINVAL, "lanczos: operator '%s' has a NULL apply callback",
                    op->name);
    RETURN_ERROR_IF(op->n != ws->n, err, EFFDIM_EINVAL,
                    "lanczos: operator '%s' has size %zu but the workspace was allocated for n = %zu",
                    op->name, op->n, ws->n);
    size_t n = ws->n;
    double *v = ws->V;
    if (v0) {
        size_t bad;
        RETURN_ERROR_IF(!effdim_all_finite(v0, n, &bad), err, EFFDIM_EDOM,
                        "lanczos: start vector v0[%zu] = %g is not finite", bad, v0[bad]);
        memcpy(v, v0, n * sizeof(double));
    } else {
        gsl_rng_set(ws->rng, (unsigned long)ws->p.seed);
        effdim_fill_gaussian(ws->rng, v, n);
    }
    double nrm = effdim_norm2(v, n);
    RETURN_ERROR_IF(!(nrm > 0.0), err, EFFDIM_EDOM, "lanczos: start vector v0 is zero");
    cblas_dscal((int)n, 1.0 / nrm, v, 1);
    if (v0) gsl_rng_set(ws->rng, (unsigned long)ws->p.seed); /* breakdown vectors */
    memset(ws->T, 0, ws->m * ws->m * sizeof(double));
    ws->op = op;
    ws->nT = ws->l = 0;
    ws->beta_last = 0.0;
    ws->anorm = 0.0;
    ws->exhausted = 0;
    ws->started = 1;
    ws->done = 0;
    ws->final = EFFDIM_ECONTINUE;
    ws->final_msg[0] = '\0';
    ws->steps = ws->restarts = ws->breakdowns = ws->matvecs_residual = ws->nconv = 0;
    ws->cur_blk = 0;
    ws->blk_broke = 0;
    ws->blk[0] = 0;
    memset(ws->ferr, 0, (ws->m + 1) * sizeof(double));
    ws->fcarry = 0.0;
    ws->worst = INFINITY;
    ws->vectors0 = op->vectors;
    ws->apply0 = op->seconds;
    ws->t0 = effdim_now();
    ws->seconds = ws->seconds_apply = 0.0;
    return EFFDIM_OK;
}

/* ---- one step ----------------------------------------------------------------- */

#define T_(ws, i, j) ((ws)->T[(i) * (ws)->m + (j)])

static effdim_status lanczos_step(effdim_lanczos_workspace *ws, effdim_error *err)
{
    size_t n = ws->n, j = ws->nT;
    double *V = ws->V;
    if (j > ws->l) T_(ws, j, j - 1) = T_(ws, j - 1, j) = ws->beta_last;
    effdim_status st = effdim_operator_apply(ws->op, 1, V + j * n, n, V + (j + 1) * n, n, err);
    if (st != EFFDIM_OK) return st;
    double alpha = 0.0, beta = 0.0;
    int brk = 0;
    st = effdim_lanczos_orth_step(V, j, n, NULL, 0, ws->anorm, &alpha, &beta, &brk, ws->h,
                                  ws->scratch, ws->op->name, err);
    if (st != EFFDIM_OK) return st;
    T_(ws, j, j) = alpha;
    /* what the relation of row j misses: the coefficients on the older rows
       that T does not hold (T_ij, i < j, is the coupling it uses) */
    double f2 = 0.0;
    for (size_t i = 0; i < j; ++i) {
        double d = ws->h[i] - T_(ws, i, j);
        f2 += d * d;
    }
    ws->ferr[j] = sqrt(f2) + (brk ? beta : 0.0); /* a breakdown drops the rest, coupled by 0 */
    /* ||T e_j|| <= ||A||: keep the norm estimate current */
    double col = alpha * alpha + beta * beta;
    for (size_t i = 0; i < j; ++i) col += T_(ws, i, j) * T_(ws, i, j);
    if (sqrt(col) > ws->anorm) ws->anorm = sqrt(col);
    ws->nT = j + 1;
    ws->steps += 1;
    ws->beta_last = beta;
    ws->blk_broke = 0;
    if (ws->nT >= n) { /* the basis spans everything: T is the operator */
        ws->exhausted = 1;
        ws->beta_last = 0.0;
    } else if (brk) {
        /* an invariant subspace: continue from a random vector orthogonal to
           the basis, coupled by zero, as a new Krylov block */
        ws->breakdowns += 1;
        ws->beta_last = 0.0;
        ws->blk_broke = 1;
        ws->cur_blk += 1;
        if (!effdim_random_orth_unit(ws->rng, V, ws->nT, NULL, 0, n, V + ws->nT * n, ws->scratch)) {
            ws->exhausted = 1;
        }
    }
    ws->blk[ws->nT] = ws->cur_blk;
    return EFFDIM_OK;
}

/* Eigen-decomposition of the leading nT x nT of T into theta, Z (stride nT). */
static effdim_status analyse(effdim_lanczos_workspace *ws, effdim_error *err)
{
    size_t nT = ws->nT, m = ws->m;
    effdim_status st;
    if (ws->l == 0) { /* still tridiagonal */
        double *a = ws->work + m, *b = ws->C;
        for (size_t i = 0; i < nT; ++i) a[i] = T_(ws, i, i);
        for (size_t i = 0; i + 1 < nT; ++i) b[i] = T_(ws, i + 1, i);
        st = effdim_tridiag_eig(nT, a, b, ws->theta, ws->Z, ws->work, err);
    } else {
        double *S = ws->C; /* contiguous nT x nT copy */
        for (size_t i = 0; i < nT; ++i) memcpy(S + i * nT, ws->T + i * m, nT * sizeof(double));
        st = effdim_symm_eig(nT, S, ws->theta, ws->Z, err);
    }
    if (st != EFFDIM_OK) return st;
    double big = fmax(fabs(ws->theta[0]), fabs(ws->theta[nT - 1]));
    if (big > ws->anorm) ws->anorm = big;
    return EFFDIM_OK;
}

/* Wanted Ritz indices into sel, descending theta: kt from the top, kb from the bottom. */
static void select_wanted(const effdim_lanczos_workspace *ws, size_t kt, size_t kb, size_t *sel)
{
    size_t nT = ws->nT, s = 0;
    for (size_t i = 0; i < kt; ++i) sel[s++] = nT - 1 - i;
    for (size_t i = 0; i < kb; ++i) sel[s++] = kb - 1 - i;
}

static double ritz_bound(const effdim_lanczos_workspace *ws, size_t i)
{
    return fabs(ws->beta_last * ws->Z[(ws->nT - 1) * ws->nT + i]);
}

static double ritz_threshold(const effdim_lanczos_workspace *ws, size_t i)
{
    return fmax(ws->p.tol * fabs(ws->theta[i]), 64.0 * DBL_EPSILON * ws->anorm);
}

/* Count the wanted pairs that pass; worst = max bound / threshold. */
static void test_convergence(effdim_lanczos_workspace *ws)
{
    select_wanted(ws, ws->kt, ws->kb, ws->sel);
    ws->nconv = 0;
    ws->worst = 0.0;
    for (size_t s = 0; s < ws->k; ++s) {
        size_t i = ws->sel[s];
        double r = ritz_bound(ws, i) / ritz_threshold(ws, i);
        if (ws->exhausted) r = 0.0;
        if (r <= 1.0) ws->nconv += 1;
        if (r > ws->worst) ws->worst = r;
    }
}

/* After a breakdown, may the run stop? The latest Krylov block (the rows of
 * block blk[nT-1]) started from a random vector orthogonal to everything
 * before, so its extreme Ritz values bound what the rest of the space holds.
 * Verified when its extreme pair(s) at the wanted end(s) have converged and,
 * if the block is invariant (it just broke down: it then holds the exact
 * extreme eigenvalue of the complement), that value does not lie beyond the
 * k-th wanted one; otherwise it revealed a further copy of a wanted
 * eigenvalue and the next random block must look again. */
static effdim_status blocks_verified(effdim_lanczos_workspace *ws, int *ok, effdim_error *err)
{
    size_t nT = ws->nT, B = ws->blk[nT - 1], b = 0;
    *ok = 1;
    if (ws->breakdowns == 0 || ws->exhausted) return EFFDIM_OK;
    double *S = ws->C;
    size_t *idx = ws->blk_new;
    for (size_t r = 0; r < nT; ++r)
        if (ws->blk[r] == B) idx[b++] = r;
    for (size_t i = 0; i < b; ++i)
        for (size_t j = 0; j < b; ++j) S[i * b + j] = T_(ws, idx[i], idx[j]);
    effdim_status st = effdim_symm_eig(b, S, ws->phi, ws->Zb, err);
    if (st != EFFDIM_OK) return st;
    /* ends: top (phi[b-1]) if kt > 0, bottom (phi[0]) if kb > 0 */
    for (int end = 0; end < 2; ++end) {
        if ((end == 0 && ws->kt == 0) || (end == 1 && ws->kb == 0)) continue;
        size_t i = end == 0 ? b - 1 : 0;
        double bound = fabs(ws->beta_last * ws->Zb[(b - 1) * b + i]);
        double thresh = fmax(ws->p.tol * fabs(ws->phi[i]), 64.0 * DBL_EPSILON * ws->anorm);
        if (bound > thresh) *ok = 0;
        if (ws->blk_broke) {
            /* the k-th wanted value at this end: theta ascending */
            double kth = end == 0 ? ws->theta[nT - ws->kt] : ws->theta[ws->kb - 1];
            double slack = ws->p.tol * fabs(kth) + 64.0 * DBL_EPSILON * ws->anorm;
            if (end == 0 ? ws->phi[i] > kth + slack : ws->phi[i] < kth - slack) *ok = 0;
        }
    }
    return EFFDIM_OK;
}

/* How many Ritz vectors to keep at a restart, one end (the wanted end at the
 * top of t, t descending (m)): the l in [k, m - 2] that maximises
 * (m - l) * sqrt((t_k - t_{l+1}) / (t_{l+1} - t_m)), the Chebyshev
 * amplification of the last wanted component over the next cycle
 * (Yamazaki, Bai, Simon, Wang, Wu, ACM TOMS 37(3) 27, 2010, section 3),
 * capped at l <= k + (m - k)/2: keeping more leaves so few new vectors per
 * cycle that restarts dominate (measured: the 1-D Laplacian stagnates). */
static size_t adaptive_keep(const double *t, size_t m, size_t k)
{
    size_t best = k + (m - k) / 2;
    if (best > m - 2) best = m - 2;
    double best_f = -1.0;
    double spread = t[0] - t[m - 1];
    size_t lmax = k + (m - k) / 2; /* at least half the basis is new each cycle */
    for (size_t l = k; l + 2 <= m && l <= lmax; ++l) {
        double num = t[k - 1] - t[l], den = t[l] - t[m - 1];
        if (den <= 1e-14 * spread) continue;
        double f = (double)(m - l) * sqrt(fmax(num, 0.0) / den);
        if (f > best_f) {
            best_f = f;
            best = l;
        }
    }
    return best;
}

/* Thick restart: keep the Ritz vectors nearest the wanted end(s). */
static void thick_restart(effdim_lanczos_workspace *ws)
{
    size_t m = ws->m, n = ws->n, k = ws->k;
    size_t kt, kb, keep;
    double *t = ws->work; /* (m) Ritz values in the order of the wanted end */
    if (ws->kb == 0 || ws->kt == 0) {
        for (size_t i = 0; i < m; ++i) t[i] = ws->kb == 0 ? ws->theta[m - 1 - i] : -ws->theta[i];
        keep = adaptive_keep(t, m, k);
        kt = ws->kb == 0 ? keep : 0;
        kb = keep - kt;
    } else {
        /* both ends: k wanted plus 40% of the room, split as the wanted pairs are */
        keep = k + 2 * (m - k) / 5;
        if (keep > m - 2) keep = m - 2;
        kt = ws->kt + (keep - k) * ws->kt / k;
        kb = keep - kt;
    }
    select_wanted(ws, kt, kb, ws->sel);
    for (size_t s = 0; s < keep; ++s)
        for (size_t r = 0; r < m; ++r) ws->C[s * m + r] = ws->Z[r * m + ws->sel[s]];
    effdim_basis_combine(ws->V, m, n, ws->C, keep, ws->tmp, COMBINE_CHUNK);
    memcpy(ws->V + keep * n, ws->V + m * n, n * sizeof(double));
    /* T is block diagonal across breakdowns, so each Ritz vector lives in one
       block: the one holding its largest coefficient */
    for (size_t s = 0; s < keep; ++s) {
        size_t best = 0;
        for (size_t r = 1; r < m; ++r)
            if (fabs(ws->C[s * m + r]) > fabs(ws->C[s * m + best])) best = r;
        ws->blk_new[s] = ws->blk[best];
    }
    memcpy(ws->blk, ws->blk_new, keep * sizeof(size_t));
    /* the kept Ritz vectors inherit the relation errors of the rows they combine */
    double f2 = ws->fcarry * ws->fcarry;
    for (size_t r = ws->l; r < m; ++r) f2 += ws->ferr[r] * ws->ferr[r];
    ws->fcarry = sqrt(f2);
    for (size_t s = 0; s < keep; ++s) {
        double e = 0.0;
        for (size_t r = 0; r < m; ++r) e += fabs(ws->C[s * m + r]) * ws->ferr[r];
        ws->tmp[s] = e;
    }
    memcpy(ws->ferr, ws->tmp, keep * sizeof(double));
    ws->ferr[keep] = 0.0;
    ws->blk[keep] = ws->cur_blk;
    memset(ws->T, 0, m * m * sizeof(double));
    for (size_t s = 0; s < keep; ++s) {
        size_t i = ws->sel[s];
        T_(ws, s, s) = ws->theta[i];
        T_(ws, keep, s) = T_(ws, s, keep) = ws->beta_last * ws->Z[(m - 1) * m + i];
    }
    ws->nT = ws->l = keep;
    ws->restarts += 1;
}

/* Ritz vectors into V[0..k), values and bounds, true residuals; ends the run. */
static effdim_status finish(effdim_lanczos_workspace *ws, effdim_status status, effdim_error *err)
{
    size_t n = ws->n, k = ws->k, nT = ws->nT;
    select_wanted(ws, ws->kt, ws->kb, ws->sel);
    for (size_t s = 0; s < k; ++s) {
        size_t i = ws->sel[s];
        ws->eval[s] = ws->theta[i];
        /* the projected bound, never below the rounding level of the recurrence,
           decides convergence; the bound reported adds the relation errors the
           Ritz vector carries (sum_r |z_r| ||f_r||): a pair locked by a thick
           restart has a zero coupling to the residual, not a zero residual */
        double proj = fmax(ws->exhausted ? 0.0 : ritz_bound(ws, i), 64.0 * DBL_EPSILON * ws->anorm);
        double rel = 0.0, frob = ws->fcarry * ws->fcarry;
        for (size_t r = 0; r < nT; ++r) rel += fabs(ws->Z[r * nT + i]) * ws->ferr[r];
        for (size_t r = ws->l; r < nT; ++r) frob += ws->ferr[r] * ws->ferr[r];
        ws->bound[s] = proj + fmin(rel, sqrt(frob)); /* ||F z|| <= either */
        ws->conv[s] = ws->exhausted || proj <= ritz_threshold(ws, i);
        for (size_t r = 0; r < nT; ++r) ws->C[s * nT + r] = ws->Z[r * nT + i];
    }
    /* sort descending (BOTH interleaves the two ends); insertion sort on k items */
    for (size_t s = 1; s < k; ++s)
        for (size_t t = s; t > 0 && ws->eval[t] > ws->eval[t - 1]; --t) {
            double x = ws->eval[t]; ws->eval[t] = ws->eval[t - 1]; ws->eval[t - 1] = x;
            x = ws->bound[t]; ws->bound[t] = ws->bound[t - 1]; ws->bound[t - 1] = x;
            unsigned char c = ws->conv[t]; ws->conv[t] = ws->conv[t - 1]; ws->conv[t - 1] = c;
            for (size_t r = 0; r < nT; ++r) {
                x = ws->C[t * nT + r]; ws->C[t * nT + r] = ws->C[(t - 1) * nT + r]; ws->C[(t - 1) * nT + r] = x;
            }
        }
    effdim_basis_combine(ws->V, nT, n, ws->C, k, ws->tmp, COMBINE_CHUNK);
    for (size_t s = 0; s < k; ++s) {
        double *x = ws->V + s * n;
        cblas_dscal((int)n, 1.0 / effdim_norm2(x, n), x, 1);
    }
    ws->nconv = 0;
    for (size_t s = 0; s < k; ++s) ws->nconv += ws->conv[s];
    effdim_status st = EFFDIM_OK;
    if (ws->p.true_residuals) {
        size_t room = ws->m + 1 - k; /* rows past the Ritz vectors are free now */
        double *Y = ws->V + k * n;
        size_t before = ws->op->vectors;
        for (size_t s0 = 0; s0 < k && st == EFFDIM_OK; s0 += room) {
            size_t b = k - s0 < room ? k - s0 : room;
            st = effdim_operator_apply(ws->op, b, ws->V + s0 * n, n, Y, n, err);
            for (size_t s = 0; s < b && st == EFFDIM_OK; ++s) {
                cblas_daxpy((int)n, -ws->eval[s0 + s], ws->V + (s0 + s) * n, 1, Y + s * n, 1);
                ws->resid[s0 + s] = effdim_norm2(Y + s * n, n);
            }
        }
        ws->matvecs_residual = ws->op->vectors - before;
    } else {
        for (size_t s = 0; s < k; ++s) ws->resid[s] = (double)NAN;
    }
    ws->done = 1;
    ws->seconds = effdim_now() - ws->t0;
    ws->seconds_apply = ws->op->seconds - ws->apply0;
    if (st != EFFDIM_OK) {
        ws->final = st;
        snprintf(ws->final_msg, sizeof ws->final_msg, "%s", err ? err->msg : "");
        return st;
    }
    ws->final = status;
    if (status == EFFDIM_EMAXITER) {
        snprintf(ws->final_msg, sizeof ws->final_msg,
                 "lanczos: %zu of %zu eigenpairs converged to tol = %g after %zu matvecs and %zu "
                 "restarts (limits: max_matvecs = %zu, max_restarts = %zu)",
                 ws->nconv, k, ws->p.tol, ws->steps, ws->restarts, ws->p.max_matvecs,
                 ws->p.max_restarts);
        effdim_error_set(err, status, "%s", ws->final_msg);
    }
    return status;
}

effdim_status effdim_lanczos_iterate(effdim_lanczos_workspace *ws, effdim_error *err)
{
    RETURN_ERROR_IF(!ws, err, EFFDIM_EINVAL, "lanczos: workspace is NULL");
    RETURN_ERROR_IF(!ws->started, err, EFFDIM_EINVAL,
                    "lanczos: iterate called before effdim_lanczos_init");
    if (ws->done) {
        if (ws->final != EFFDIM_OK) effdim_error_set(err, ws->final, "%s", ws->final_msg);
        return ws->final;
    }
    effdim_status st = lanczos_step(ws, err);
    if (st == EFFDIM_OK && ws->nT >= ws->k) {
        st = analyse(ws, err);
        if (st == EFFDIM_OK) {
            test_convergence(ws);
            int verified = 1;
            if (ws->nconv == ws->k) st = blocks_verified(ws, &verified, err);
            if (st != EFFDIM_OK) goto failed;
            if ((ws->nconv == ws->k && verified) || ws->exhausted) return finish(ws, EFFDIM_OK, err);
            if (ws->p.max_matvecs && ws->steps >= ws->p.max_matvecs)
                return finish(ws, EFFDIM_EMAXITER, err);
            if (ws->nT == ws->m) {
                if (ws->p.max_restarts && ws->restarts >= ws->p.max_restarts)
                    return finish(ws, EFFDIM_EMAXITER, err);
                thick_restart(ws);
            }
        }
    } else if (st == EFFDIM_OK && ws->p.max_matvecs && ws->steps >= ws->p.max_matvecs) {
        /* the limit came before k Ritz values exist: nothing to return */
        snprintf(ws->final_msg, sizeof ws->final_msg,
                 "lanczos: max_matvecs = %zu is below k = %zu: no eigenpairs computed",
                 ws->p.max_matvecs, ws->k);
        ws->done = 1;
        ws->final = EFFDIM_EMAXITER;
        ws->seconds = effdim_now() - ws->t0;
        ws->seconds_apply = ws->op->seconds - ws->apply0;
        return effdim_error_set(err, EFFDIM_EMAXITER, "%s", ws->final_msg);
    }
failed:
    if (st != EFFDIM_OK) { /* the operator or LAPACK failed: the run is over */
        ws->done = 1;
        ws->final = st;
        snprintf(ws->final_msg, sizeof ws->final_msg, "%s", err ? err->msg : "");
        ws->seconds = effdim_now() - ws->t0;
        ws->seconds_apply = ws->op->seconds - ws->apply0;
        return st;
    }
    return EFFDIM_ECONTINUE;
}

void effdim_lanczos_get_progress(const effdim_lanczos_workspace *ws, effdim_lanczos_progress *pr)
{
    if (!ws || !pr) return;
    memset(pr, 0, sizeof *pr);
    pr->steps = ws->steps;
    pr->restarts = ws->restarts;
    pr->matvecs = ws->started ? ws->op->vectors - ws->vectors0 : 0;
    pr->basis = ws->nT;
    pr->nconv = ws->nconv;
    pr->k = ws->k;
    pr->worst = ws->worst;
    pr->theta_max = ws->nT >= ws->k && ws->steps ? ws->theta[ws->nT - 1] : (double)NAN;
    pr->theta_min = ws->nT >= ws->k && ws->steps ? ws->theta[0] : (double)NAN;
}

effdim_status effdim_lanczos_result(const effdim_lanczos_workspace *ws,
                                    effdim_lanczos_solution *out, effdim_error *err)
{
    RETURN_ERROR_IF(!ws || !out, err, EFFDIM_EINVAL, "lanczos: result: NULL argument");
    RETURN_ERROR_IF(!ws->done || (ws->final != EFFDIM_OK && ws->final != EFFDIM_EMAXITER) ||
                        ws->nT < ws->k,
                    err, EFFDIM_EINVAL,
                    "lanczos: no results: the run %s",
                    !ws->started ? "was not started"
                    : !ws->done ? "has not finished"
                    : ws->nT < ws->k ? "stopped before k Ritz values existed (max_matvecs < k)"
                    : "failed");
    memset(out, 0, sizeof *out);
    out->n = ws->n;
    out->k = ws->k;
    out->eigenvalues = ws->eval;
    out->residual_bounds = ws->bound;
    out->residuals = ws->resid;
    out->converged = ws->conv;
    out->vectors = ws->p.want_vectors ? ws->V : NULL;
    out->status = ws->final;
    effdim_lanczos_stats *s = &out->stats;
    s->nconv = ws->nconv;
    s->matvecs = ws->op->vectors - ws->vectors0;
    s->matvecs_residual = ws->matvecs_residual;
    s->steps = ws->steps;
    s->restarts = ws->restarts;
    s->breakdowns = ws->breakdowns;
    s->basis_size = ws->m;
    s->seconds = ws->seconds;
    s->seconds_apply = ws->seconds_apply;
    return EFFDIM_OK;
}

effdim_status effdim_lanczos_eigs(effdim_operator *op, const effdim_lanczos_params *p,
                                  double *eigenvalues, double *bounds, double *residuals,
                                  unsigned char *converged, double *vectors,
                                  effdim_lanczos_stats *stats, effdim_error *err)
{
    RETURN_ERROR_IF(!op || !p || !eigenvalues, err, EFFDIM_EINVAL,
                    "lanczos: NULL %s", !op ? "operator" : !p ? "params" : "eigenvalue output");
    effdim_lanczos_params q = *p;
    q.want_vectors = vectors != NULL;
    effdim_lanczos_workspace *ws = effdim_lanczos_alloc(op->n, &q, err);
    if (!ws) return err ? err->code : EFFDIM_EINVAL;
    effdim_status st = effdim_lanczos_init(ws, op, NULL, err);
    while (st == EFFDIM_OK || st == EFFDIM_ECONTINUE) {
        st = effdim_lanczos_iterate(ws, err);
        if (st == EFFDIM_OK) break;
    }
    if (st == EFFDIM_OK || st == EFFDIM_EMAXITER) {
        effdim_error keep = {EFFDIM_OK, ""};
        if (err) keep = *err;
        effdim_lanczos_solution sol;
        effdim_status rs = effdim_lanczos_result(ws, &sol, err);
        if (rs != EFFDIM_OK) {
            st = rs;
        } else {
            size_t k = sol.k;
            memcpy(eigenvalues, sol.eigenvalues, k * sizeof(double));
            if (bounds) memcpy(bounds, sol.residual_bounds, k * sizeof(double));
            if (residuals) memcpy(residuals, sol.residuals, k * sizeof(double));
            if (converged) memcpy(converged, sol.converged, k);
            if (vectors) memcpy(vectors, sol.vectors, k * op->n * sizeof(double));
            if (stats) *stats = sol.stats;
            if (err) *err = keep;
        }
    }
    effdim_lanczos_free(ws);
    return st;
}
