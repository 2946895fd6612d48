/* lib/subspace.c: loss surfaces and perturbations inside Hessian eigenspaces
 * (see effdim/subspace.h; Maddox, Benton and Wilson 2020, Section 5).
 *
 * Dense eigenbasis: P products with unit vectors in blocks of 64, the
 * symmetrised matrix (A + A^T)/2, LAPACKE_dsyevd, the columns reversed into
 * rows so index 0 is the largest eigenvalue. Directions: U^T g by one
 * cblas_dgemv over the subspace's rows, classical Gram-Schmidt applied twice
 * against the earlier directions, then scaled. Surfaces and perturbations are
 * plain loss or prediction passes of the MLP at theta + offset.
 */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/subspace.h"
#include "h5io.h"
#include "internal.h"
#include "lanczos_internal.h" /* effdim_fill_gaussian */

#define BLOCK 64

/* ======================================================================== */
/* the dense eigenbasis                                                     */
/* ======================================================================== */

void effdim_eigenbasis_free(effdim_eigenbasis *b)
{
    if (!b) return;
    free(b->values);
    free(b->vectors);
    free(b);
}

const char *effdim_eig_order_name(effdim_eig_order o)
{
    return o == EFFDIM_EIG_BY_ABS ? "abs" : o == EFFDIM_EIG_BY_VALUE ? "value" : "?";
}

effdim_status effdim_eig_order_parse(const char *s, effdim_eig_order *o, effdim_error *err)
{
    if (s && !strcmp(s, "abs")) *o = EFFDIM_EIG_BY_ABS;
    else if (s && !strcmp(s, "value")) *o = EFFDIM_EIG_BY_VALUE;
    else
        return effdim_error_set(err, EFFDIM_EINVAL, "order '%s': expected abs or value",
                                s ? s : "(null)");
    return EFFDIM_OK;
}

/* indices of w (ascending from dsyevd) in the basis order, by insertion
 * from the value order so ties keep it */
static void basis_order(const double *w, size_t P, effdim_eig_order order, size_t *idx)
{
    for (size_t r = 0; r < P; ++r) idx[r] = P - 1 - r; /* value descending */
    if (order != EFFDIM_EIG_BY_ABS) return;
    for (size_t r = 1; r < P; ++r) { /* stable insertion sort by |w| descending */
        size_t v = idx[r], q = r;
        while (q > 0 && fabs(w[idx[q - 1]]) < fabs(w[v])) {
            idx[q] = idx[q - 1];
            --q;
        }
        idx[q] = v;
    }
}

effdim_status effdim_eigenbasis_dense(effdim_operator *op, effdim_eig_order order,
                                      const effdim_progress *prog, effdim_eigenbasis **out,
                                      effdim_error *err)
{
    RETURN_ERROR_IF(!op || !out, err, EFFDIM_EINVAL, "eigenbasis: NULL argument");
    RETURN_ERROR_IF(order != EFFDIM_EIG_BY_ABS && order != EFFDIM_EIG_BY_VALUE, err, EFFDIM_EINVAL,
                    "eigenbasis: order %d unknown", (int)order);
    *out = NULL;
    size_t P = op->n;
    RETURN_ERROR_IF(P == 0 || P > 65536, err, EFFDIM_EINVAL,
                    "eigenbasis: %zu parameters, the dense eigenbasis takes 1 to 65536", P);
    effdim_eigenbasis *b = effdim_calloc(1, sizeof *b, "eigenbasis", err);
    double *A = b ? effdim_alloc(P * P, sizeof(double), "eigenbasis: dense matrix", err) : NULL;
    double *E = A ? effdim_calloc(P * BLOCK, sizeof(double), "eigenbasis: unit vectors", err) : NULL;
    if (b) {
        b->P = P;
        b->values = E ? effdim_alloc(P, sizeof(double), "eigenbasis: eigenvalues", err) : NULL;
        b->vectors = b->values ? effdim_alloc(P * P, sizeof(double), "eigenbasis: vectors", err)
                               : NULL;
    }
    effdim_status st = b && b->vectors ? EFFDIM_OK : EFFDIM_ENOMEM;
    double start = effdim_progress_clock();
    /* row j of A = (op e_j)^T, blocks of BLOCK unit vectors */
    for (size_t j0 = 0; !st && j0 < P; j0 += BLOCK) {
        size_t nb = P - j0 < BLOCK ? P - j0 : BLOCK;
        for (size_t c = 0; c < nb; ++c) E[c * P + j0 + c] = 1.0;
        st = effdim_operator_apply(op, nb, E, P, A + j0 * P, P, err);
        for (size_t c = 0; c < nb; ++c) E[c * P + j0 + c] = 0.0;
        if (!st && effdim_progress_report(prog, "dense", start, j0 + nb, P, -1.0,
                                          "%zu of %zu products", j0 + nb, P))
            st = effdim_error_set(err, EFFDIM_EMAXITER, "eigenbasis: interrupted after %zu of "
                                  "%zu products", j0 + nb, P);
    }
    if (!st) { /* asymmetry, then (A + A^T)/2 */
        double amax = 0.0, dmax = 0.0;
        for (size_t i = 0; i < P * P; ++i) amax = fmax(amax, fabs(A[i]));
        for (size_t i = 0; i < P; ++i)
            for (size_t j = i + 1; j < P; ++j) {
                double a = A[i * P + j], c = A[j * P + i];
                dmax = fmax(dmax, fabs(a - c));
                A[i * P + j] = A[j * P + i] = 0.5 * (a + c);
            }
        b->asymmetry = amax > 0.0 ? dmax / amax : 0.0;
        double t = effdim_progress_clock();
        lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)P, A,
                                         (lapack_int)P, E);
        if (info != 0)
            st = effdim_error_set(err, EFFDIM_EINTERNAL, "eigenbasis: dsyevd failed, info = %d",
                                  (int)info);
        effdim_progress_report(prog, "eigh", t, 1, 1, 0.0, "dsyevd of %zu x %zu", P, P);
    }
    size_t *idx = st ? NULL : effdim_alloc(P, sizeof(size_t), "eigenbasis: order", err);
    if (!st && !idx) st = EFFDIM_ENOMEM;
    if (!st) { /* ascending columns -> rows in the basis order */
        b->order = order;
        basis_order(E, P, order, idx);
        for (size_t r = 0; r < P; ++r) {
            size_t c = idx[r];
            b->values[r] = E[c];
            for (size_t i = 0; i < P; ++i) b->vectors[r * P + i] = A[i * P + c];
        }
    }
    free(idx);
    free(A);
    free(E);
    if (st) {
        effdim_eigenbasis_free(b);
        return st;
    }
    *out = b;
    return EFFDIM_OK;
}

/* ======================================================================== */
/* subspaces and directions                                                 */
/* ======================================================================== */

effdim_status effdim_subspace_parse(const char *s, size_t P, effdim_subspace *out,
                                    effdim_error *err)
{
    RETURN_ERROR_IF(!s || !out, err, EFFDIM_EINVAL, "subspace: NULL argument");
    unsigned long long a = 0, c = 0;
    char tail = 0;
    effdim_subspace r;
    memset(&r, 0, sizeof r);
    if (!strcmp(s, "all")) {
        r.first = 0;
        r.count = P;
    } else if (sscanf(s, "top:%llu%c", &a, &tail) == 1 && a >= 1 && a <= P) {
        r.first = 0;
        r.count = (size_t)a;
    } else if (sscanf(s, "bottom:%llu%c", &a, &tail) == 1 && a >= 1 && a <= P) {
        r.first = P - (size_t)a;
        r.count = (size_t)a;
    } else if (sscanf(s, "range:%llu:%llu%c", &a, &c, &tail) == 2 && a < c && c <= P) {
        r.first = (size_t)a;
        r.count = (size_t)(c - a);
    } else {
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "subspace '%s': expected top:K, bottom:K (1 <= K <= %zu), all or "
                                "range:A:B (0 <= A < B <= %zu)", s, P, P);
    }
    snprintf(r.name, sizeof r.name, "%s", s);
    *out = r;
    return EFFDIM_OK;
}

effdim_status effdim_subspace_directions(const effdim_eigenbasis *b, const effdim_subspace *s,
                                         size_t ndir, double norm, uint64_t seed, double *D,
                                         effdim_error *err)
{
    RETURN_ERROR_IF(!b || !s || !D, err, EFFDIM_EINVAL, "directions: NULL argument");
    RETURN_ERROR_IF(s->count == 0 || s->first + s->count > b->P, err, EFFDIM_EINVAL,
                    "directions: subspace [%zu, %zu) outside the %zu eigenvectors", s->first,
                    s->first + s->count, b->P);
    RETURN_ERROR_IF(ndir == 0 || ndir > s->count, err, EFFDIM_EINVAL,
                    "directions: %zu directions in a subspace of dimension %zu", ndir, s->count);
    RETURN_ERROR_IF(!(norm >= 0.0) || !isfinite(norm), err, EFFDIM_EDOM,
                    "directions: norm %g, expected a finite value >= 0", norm);
    size_t P = b->P, m = s->count;
    double *g = effdim_alloc(m, sizeof(double), "directions: coefficients", err);
    gsl_rng *rng = g ? gsl_rng_alloc(gsl_rng_mt19937) : NULL;
    if (!rng) {
        free(g);
        return effdim_error_set(err, EFFDIM_ENOMEM, "directions: cannot allocate the generator");
    }
    gsl_rng_set(rng, (unsigned long)seed);
    const double *U = b->vectors + s->first * P; /* (m, P) */
    effdim_status st = EFFDIM_OK;
    for (size_t r = 0; r < ndir && !st; ++r) {
        double *d = D + r * P;
        effdim_fill_gaussian(rng, g, m);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)m, (int)P, 1.0, U, (int)P, g, 1, 0.0, d, 1);
        for (int pass = 0; pass < 2; ++pass) /* against the earlier unit directions */
            for (size_t q = 0; q < r; ++q) {
                const double *e = D + q * P;
                cblas_daxpy((int)P, -cblas_ddot((int)P, e, 1, d, 1), e, 1, d, 1);
            }
        double len = cblas_dnrm2((int)P, d, 1);
        if (!(len > 0.0))
            st = effdim_error_set(err, EFFDIM_EINTERNAL, "directions: direction %zu vanished", r);
        else
            cblas_dscal((int)P, 1.0 / len, d, 1);
    }
    for (size_t r = 0; !st && r < ndir; ++r) cblas_dscal((int)P, norm, D + r * P, 1);
    gsl_rng_free(rng);
    free(g);
    return st;
}

/* ======================================================================== */
/* surfaces and perturbations                                               */
/* ======================================================================== */

effdim_surface_params effdim_surface_default_params(void)
{
    effdim_surface_params p;
    memset(&p, 0, sizeof p);
    p.range = 1.0;
    p.scale = 1.0;
    p.n_pts = 100;
    p.seed = 0;
    return p;
}

static effdim_status check_model(const effdim_mlp *m, const double *theta, const effdim_dataset *ds,
                                 const effdim_eigenbasis *b, effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta || !ds || !b, err, EFFDIM_EINVAL, "subspace: NULL argument");
    RETURN_ERROR_IF(b->P != m->n_params, err, EFFDIM_EINVAL,
                    "subspace: an eigenbasis of %zu vectors for a network of %zu parameters", b->P,
                    m->n_params);
    return effdim_mlp_check_data(m, ds, NULL, err);
}

effdim_status effdim_loss_surface(const effdim_mlp *m, const double *theta,
                                  const effdim_dataset *ds, const effdim_eigenbasis *b,
                                  const effdim_subspace *s, const effdim_surface_params *p,
                                  const effdim_progress *prog, double *alpha, double *loss,
                                  effdim_error *err)
{
    effdim_status st = check_model(m, theta, ds, b, err);
    if (st) return st;
    RETURN_ERROR_IF(!p || !alpha || !loss, err, EFFDIM_EINVAL, "surface: NULL argument");
    RETURN_ERROR_IF(p->n_pts < 2, err, EFFDIM_EINVAL, "surface: n_pts = %zu, expected >= 2",
                    p->n_pts);
    RETURN_ERROR_IF(!(p->range > 0.0) || !isfinite(p->range), err, EFFDIM_EDOM,
                    "surface: range = %g, expected a finite value > 0", p->range);
    RETURN_ERROR_IF(s && s->count < 2, err, EFFDIM_EINVAL,
                    "surface: subspace '%s' has dimension %zu, a plane needs 2", s->name, s->count);
    size_t P = m->n_params, n = p->n_pts;
    double *D = effdim_alloc(2 * P, sizeof(double), "surface: directions", err);
    double *t = D ? effdim_alloc(P, sizeof(double), "surface: parameters", err) : NULL;
    effdim_mlp_ws *ws = t ? effdim_mlp_ws_alloc(m, 0, err) : NULL;
    if (!ws) {
        free(D);
        free(t);
        return err && err->code ? err->code : EFFDIM_ENOMEM;
    }
    st = effdim_subspace_directions(b, s, 2, p->scale, p->seed, D, err);
    for (size_t i = 0; i < n; ++i) alpha[i] = -0.5 * p->range + p->range * (double)i / (double)(n - 1);
    double start = effdim_progress_clock();
    for (size_t i = 0; !st && i < n; ++i) {
        for (size_t j = 0; !st && j < n; ++j) {
            for (size_t q = 0; q < P; ++q) t[q] = theta[q] + alpha[i] * D[q] + alpha[j] * D[P + q];
            st = effdim_mlp_loss_grad(m, t, ds, NULL, ds->n, &loss[i * n + j], NULL, ws, err);
        }
        if (!st && effdim_progress_report(prog, "surface", start, i + 1, n, -1.0, "%s: row %zu",
                                          s->name, i + 1))
            st = effdim_error_set(err, EFFDIM_EMAXITER, "surface: interrupted after %zu of %zu "
                                  "rows", i + 1, n);
    }
    effdim_mlp_ws_free(ws);
    free(D);
    free(t);
    return st;
}

/* class of each row from the outputs F (n, k) */
static void classes(const effdim_mlp *m, const double *F, size_t n, int32_t *c)
{
    size_t k = m->sizes[m->n_layers];
    for (size_t i = 0; i < n; ++i) {
        const double *f = F + i * k;
        if (m->loss == EFFDIM_LOSS_BCE) {
            c[i] = f[0] > 0.0;
            continue;
        }
        size_t best = 0;
        for (size_t j = 1; j < k; ++j)
            if (f[j] > f[best]) best = j;
        c[i] = (int32_t)best;
    }
}

effdim_status effdim_perturb_predictions(const effdim_mlp *m, const double *theta,
                                         const effdim_dataset *ds, const effdim_eigenbasis *b,
                                         const effdim_subspace *s, double norm, size_t n_dirs,
                                         uint64_t seed, size_t *changed, double *loss,
                                         effdim_error *err)
{
    effdim_status st = check_model(m, theta, ds, b, err);
    if (st) return st;
    RETURN_ERROR_IF(m->loss == EFFDIM_LOSS_MSE, err, EFFDIM_EINVAL,
                    "perturb: predictions need a classifier (cross_entropy or bce), the network "
                    "has loss mse");
    RETURN_ERROR_IF(!changed || n_dirs == 0, err, EFFDIM_EINVAL,
                    "perturb: no directions asked (n_dirs = %zu)", n_dirs);
    size_t P = m->n_params, n = ds->n, k = m->sizes[m->n_layers];
    double *d = effdim_alloc(P, sizeof(double), "perturb: direction", err);
    double *t = d ? effdim_alloc(P, sizeof(double), "perturb: parameters", err) : NULL;
    double *F = t ? effdim_alloc(n * k, sizeof(double), "perturb: outputs", err) : NULL;
    int32_t *c0 = F ? effdim_alloc(n, sizeof(int32_t), "perturb: classes", err) : NULL;
    int32_t *c1 = c0 ? effdim_alloc(n, sizeof(int32_t), "perturb: classes", err) : NULL;
    effdim_mlp_ws *ws = c1 ? effdim_mlp_ws_alloc(m, 0, err) : NULL;
    st = ws ? effdim_mlp_predict(m, theta, ds->X, n, F, ws, err) : EFFDIM_ENOMEM;
    if (!st) classes(m, F, n, c0);
    for (size_t r = 0; !st && r < n_dirs; ++r) {
        /* direction r from its own seed, so any one of them can be redrawn alone */
        st = effdim_subspace_directions(b, s, 1, norm, seed + r, d, err);
        for (size_t q = 0; !st && q < P; ++q) t[q] = theta[q] + d[q];
        if (!st) st = effdim_mlp_predict(m, t, ds->X, n, F, ws, err);
        if (!st && loss) st = effdim_mlp_loss_grad(m, t, ds, NULL, n, &loss[r], NULL, ws, err);
        if (st) break;
        classes(m, F, n, c1);
        size_t diff = 0;
        for (size_t i = 0; i < n; ++i) diff += c0[i] != c1[i];
        changed[r] = diff;
    }
    effdim_mlp_ws_free(ws);
    free(d);
    free(t);
    free(F);
    free(c0);
    free(c1);
    return st;
}

/* ======================================================================== */
/* the file                                                                 */
/* ======================================================================== */

#define SURFACE_FORMAT "effdim.surface"
#define SURFACE_VERSION 1

void effdim_surface_set_free(effdim_surface_set *s)
{
    if (!s) return;
    free(s->eigenvalues);
    free(s->subspaces);
    free(s->alpha);
    free(s->loss);
    free(s->checkpoint);
    free(s->data_spec);
    free(s);
}

effdim_status effdim_surface_save(const effdim_surface_set *s, const char *path, effdim_error *err)
{
    RETURN_ERROR_IF(!s || !path || !s->alpha || !s->loss || !s->eigenvalues || !s->subspaces, err,
                    EFFDIM_EINVAL, "surface save: NULL argument");
    RETURN_ERROR_IF(s->n_surfaces == 0 || s->params.n_pts < 2, err, EFFDIM_EINVAL,
                    "%s: %zu surfaces of %zu points, expected at least 1 of 2", path,
                    s->n_surfaces, s->params.n_pts);
    effdim_h5_atomic a;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    hid_t f = a.file;
    char created[64];
    size_t n = s->params.n_pts, d1[1] = {n}, dP[1] = {s->P}, d2[2] = {n, n};
    st = effdim_h5_attr_write_string(f, "format", SURFACE_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "format_version", SURFACE_VERSION, err);
    if (!st) st = effdim_h5_attr_write_string(f, "checkpoint", s->checkpoint ? s->checkpoint : "", err);
    if (!st) st = effdim_h5_attr_write_string(f, "data_spec", s->data_spec ? s->data_spec : "", err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_params", (int64_t)s->P, err);
    if (!st) st = effdim_h5_attr_write_double(f, "range", s->params.range, err);
    if (!st) st = effdim_h5_attr_write_double(f, "scale", s->params.scale, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_pts", (int64_t)n, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "seed", (int64_t)s->params.seed, err);
    if (!st) st = effdim_h5_attr_write_double(f, "center_loss", s->center_loss, err);
    if (!st) st = effdim_h5_attr_write_string(f, "version", effdim_version(), err);
    if (!st) st = effdim_h5_attr_write_string(f, "created", effdim_now_iso(created, sizeof created), err);
    if (!st) st = effdim_h5_write_doubles(f, "eigenvalues", 1, dP, s->eigenvalues, err);
    if (!st) st = effdim_h5_write_doubles(f, "alpha", 1, d1, s->alpha, err);
    hid_t g = -1;
    if (!st) st = effdim_h5_group(f, "surfaces", &g, err);
    for (size_t i = 0; !st && i < s->n_surfaces; ++i) {
        char name[32];
        hid_t sg = -1;
        snprintf(name, sizeof name, "s%zu", i);
        st = effdim_h5_group(g, name, &sg, err);
        if (!st) st = effdim_h5_attr_write_string(sg, "subspace", s->subspaces[i].name, err);
        if (!st) st = effdim_h5_attr_write_int64(sg, "first", (int64_t)s->subspaces[i].first, err);
        if (!st) st = effdim_h5_attr_write_int64(sg, "count", (int64_t)s->subspaces[i].count, err);
        if (!st) st = effdim_h5_write_doubles(sg, "loss", 2, d2, s->loss + i * n * n, err);
        if (sg >= 0) H5Gclose(sg);
    }
    if (g >= 0) H5Gclose(g);
    if (!st) st = effdim_h5_atomic_commit(&a, err);
    if (st) effdim_h5_atomic_abort(&a);
    return st;
}

static effdim_status read_count(hid_t obj, const char *path, const char *name, size_t max,
                                size_t *v, effdim_error *err)
{
    int64_t x = 0;
    effdim_status st = effdim_h5_attr_read_int64(obj, name, &x, err);
    if (st) return st;
    RETURN_ERROR_IF(x < 0 || (uint64_t)x > max, err, EFFDIM_EFORMAT,
                    "%s: %s = %lld, expected 0 to %zu", path, name, (long long)x, max);
    *v = (size_t)x;
    return EFFDIM_OK;
}

effdim_status effdim_surface_load(const char *path, effdim_surface_set **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "surface load: NULL argument");
    *out = NULL;
    hid_t f = -1, g = -1;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (st) return st;
    effdim_surface_set *s = effdim_calloc(1, sizeof *s, "surface set", err);
    char buf[4096] = "";
    int64_t ver = 0, seed = 0;
    if (!s) st = EFFDIM_ENOMEM;
    if (!st) st = effdim_h5_attr_read_string(f, "format", buf, sizeof buf, err);
    if (!st && strcmp(buf, SURFACE_FORMAT))
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /: format is '%s', expected '%s'", path,
                              buf, SURFACE_FORMAT);
    if (!st) st = effdim_h5_attr_read_int64(f, "format_version", &ver, err);
    if (!st && ver > SURFACE_VERSION)
        st = effdim_error_set(err, EFFDIM_EVERSION, "%s: /: format_version %lld is newer than "
                              "this effdim reads (%d); upgrade effdim", path, (long long)ver,
                              SURFACE_VERSION);
    if (!st) st = read_count(f, path, "n_params", 65536, &s->P, err);
    if (!st) st = read_count(f, path, "n_pts", 100000, &s->params.n_pts, err);
    if (!st) st = effdim_h5_attr_read_double(f, "range", &s->params.range, err);
    if (!st) st = effdim_h5_attr_read_double(f, "scale", &s->params.scale, err);
    if (!st) st = effdim_h5_attr_read_int64(f, "seed", &seed, err);
    if (!st) st = effdim_h5_attr_read_double(f, "center_loss", &s->center_loss, err);
    effdim_error optional; /* provenance may be missing */
    if (!st && effdim_h5_attr_read_string(f, "checkpoint", buf, sizeof buf, &optional) == EFFDIM_OK)
        s->checkpoint = effdim_strdup(buf, err);
    if (!st && effdim_h5_attr_read_string(f, "data_spec", buf, sizeof buf, &optional) == EFFDIM_OK)
        s->data_spec = effdim_strdup(buf, err);
    size_t n = s ? s->params.n_pts : 0;
    if (!st) {
        s->params.seed = (uint64_t)seed;
        s->eigenvalues = effdim_alloc(s->P, sizeof(double), "surface: eigenvalues", err);
        s->alpha = effdim_alloc(n, sizeof(double), "surface: grid", err);
        if (!s->eigenvalues || !s->alpha) st = EFFDIM_ENOMEM;
    }
    if (!st) st = effdim_h5_read_doubles(f, "eigenvalues", s->eigenvalues, s->P, err);
    if (!st) st = effdim_h5_read_doubles(f, "alpha", s->alpha, n, err);
    if (!st) {
        g = H5Gopen2(f, "surfaces", H5P_DEFAULT);
        H5G_info_t info;
        if (g < 0 || H5Gget_info(g, &info) < 0 || info.nlinks == 0)
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /surfaces: missing or empty", path);
        else
            s->n_surfaces = (size_t)info.nlinks;
    }
    if (!st) {
        s->subspaces = effdim_calloc(s->n_surfaces, sizeof *s->subspaces, "surface: subspaces", err);
        s->loss = effdim_alloc(s->n_surfaces * n * n, sizeof(double), "surface: losses", err);
        if (!s->subspaces || !s->loss) st = EFFDIM_ENOMEM;
    }
    for (size_t i = 0; !st && i < s->n_surfaces; ++i) {
        char name[32];
        snprintf(name, sizeof name, "s%zu", i);
        hid_t sg = H5Gopen2(g, name, H5P_DEFAULT);
        effdim_subspace *sub = &s->subspaces[i];
        if (sg < 0) st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /surfaces/%s: missing", path, name);
        if (!st) st = effdim_h5_attr_read_string(sg, "subspace", sub->name, sizeof sub->name, err);
        if (!st) st = read_count(sg, path, "first", s->P, &sub->first, err);
        if (!st) st = read_count(sg, path, "count", s->P, &sub->count, err);
        if (!st && sub->first + sub->count > s->P)
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /surfaces/%s: subspace [%zu, %zu) "
                                  "outside %zu parameters", path, name, sub->first,
                                  sub->first + sub->count, s->P);
        if (!st) st = effdim_h5_read_doubles(sg, "loss", s->loss + i * n * n, n * n, err);
        if (sg >= 0) H5Gclose(sg);
    }
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    if (st) {
        effdim_surface_set_free(s);
        return st;
    }
    *out = s;
    return EFFDIM_OK;
}
