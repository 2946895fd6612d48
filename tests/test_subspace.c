/* tests/test_subspace.c: Hessian eigenbases, random directions inside
 * eigenspaces, loss surfaces and perturbation counts (lib/subspace.c).
 *
 * Oracles: a dense matrix with a known spectrum (effdim_dense_with_spectrum)
 * for the eigenbasis (values, orthonormality, residuals); the geometry of
 * the directions (norm, mutual orthogonality, no component outside the
 * subspace); the surface's centre equal to the loss at theta and its second
 * difference along d1 equal to d1^T H d1 from the eigenvalues (an ELU/BCE
 * network, the reproduction's kind); a zero-norm perturbation changes no
 * prediction; the file round trips; bad input is refused naming it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/data.h"
#include "effdim/dense.h"
#include "effdim/hvp.h"
#include "effdim/mlp.h"
#include "effdim/operator.h"
#include "effdim/subspace.h"
#include "h5io.h"

static void the_dense_eigenbasis_has_the_known_spectrum_in_descending_order(void)
{
    effdim_error e;
    const size_t n = 37;
    double lambda[37], *A = malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n; ++i) lambda[i] = 2.385 * sin(0.7 * (double)i + 0.3) + 0.01 * (double)i;
    effdim_operator *op = NULL;
    effdim_eigenbasis *b = NULL;
    if (!CHECK_OK(effdim_dense_with_spectrum(n, lambda, 17, A, &e), &e) ||
        !CHECK_OK(effdim_operator_dense(n, A, EFFDIM_BORROW, &op, &e), &e) ||
        !CHECK_OK(effdim_eigenbasis_dense(op, EFFDIM_EIG_BY_VALUE, NULL, &b, &e), &e))
        goto done;
    /* sorted copy of lambda, descending */
    double want[37];
    memcpy(want, lambda, sizeof want);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j)
            if (want[j] > want[i]) {
                double t = want[i];
                want[i] = want[j];
                want[j] = t;
            }
    CHECK_VEC_CLOSE(b->values, want, n, 1e-12);
    double orth = 0.0, res = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double *v = b->vectors + i * n;
        for (size_t j = 0; j < n; ++j) {
            double d = 0.0;
            for (size_t q = 0; q < n; ++q) d += v[q] * b->vectors[j * n + q];
            orth = fmax(orth, fabs(d - (i == j)));
        }
        for (size_t r = 0; r < n; ++r) {
            double av = 0.0;
            for (size_t q = 0; q < n; ++q) av += A[r * n + q] * v[q];
            res = fmax(res, fabs(av - b->values[i] * v[r]));
        }
    }
    CHECK(orth < 1e-13 && res < 1e-12);
    CHECK(b->asymmetry < 1e-15);
    check_note("37 x 37 known spectrum: eigenvalues to 1e-12, |V V^T - I| %.1e, |A v - l v| %.1e",
               orth, res);
    /* the paper's order: |lambda| descending, the same pairs */
    effdim_eigenbasis *ba = NULL;
    if (CHECK_OK(effdim_eigenbasis_dense(op, EFFDIM_EIG_BY_ABS, NULL, &ba, &e), &e)) {
        int sorted = 1, found = 1;
        for (size_t i = 1; i < n; ++i) sorted = sorted && fabs(ba->values[i - 1]) >= fabs(ba->values[i]);
        for (size_t i = 0; i < n; ++i) { /* each pair is one of the value-ordered pairs */
            size_t j = 0;
            while (j < n && b->values[j] != ba->values[i]) ++j;
            found = found && j < n &&
                    memcmp(b->vectors + j * n, ba->vectors + i * n, n * sizeof(double)) == 0;
        }
        CHECK(sorted && found && ba->order == EFFDIM_EIG_BY_ABS);
        double amin = INFINITY;
        for (size_t i = 0; i < n; ++i) amin = fmin(amin, fabs(want[i]));
        CHECK(fabs(fabs(ba->values[n - 1]) - amin) < 1e-12);
    }
    effdim_eigenbasis_free(ba);
    effdim_eig_order o;
    CHECK_OK(effdim_eig_order_parse("value", &o, &e), &e);
    CHECK(o == EFFDIM_EIG_BY_VALUE && !strcmp(effdim_eig_order_name(EFFDIM_EIG_BY_ABS), "abs"));
    CHECK_STATUS(effdim_eig_order_parse("magnitude", &o, &e), EFFDIM_EINVAL, &e);
done:
    effdim_eigenbasis_free(b);
    effdim_operator_free(op);
    free(A);
}

static void subspaces_parse_and_directions_stay_inside_them(void)
{
    effdim_error e;
    effdim_subspace s;
    CHECK_OK(effdim_subspace_parse("top:3", 2181, &s, &e), &e);
    CHECK(s.first == 0 && s.count == 3 && !strcmp(s.name, "top:3"));
    CHECK_OK(effdim_subspace_parse("bottom:2000", 2181, &s, &e), &e);
    CHECK(s.first == 181 && s.count == 2000);
    CHECK_OK(effdim_subspace_parse("all", 2181, &s, &e), &e);
    CHECK(s.first == 0 && s.count == 2181);
    CHECK_OK(effdim_subspace_parse("range:5:9", 2181, &s, &e), &e);
    CHECK(s.first == 5 && s.count == 4);
    const char *bad[] = {"top:0", "bottom:2182", "range:9:5", "middle:3", "top:3x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        CHECK_STATUS(effdim_subspace_parse(bad[i], 2181, &s, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "expected top:K");
    }
    /* directions in the bottom 5 of a 23-dimensional basis */
    const size_t n = 23;
    double lambda[23], *A = malloc(n * n * sizeof(double)), D[3 * 23];
    for (size_t i = 0; i < n; ++i) lambda[i] = (double)i - 4.5;
    effdim_operator *op = NULL;
    effdim_eigenbasis *b = NULL;
    if (CHECK_OK(effdim_dense_with_spectrum(n, lambda, 3, A, &e), &e) &&
        CHECK_OK(effdim_operator_dense(n, A, EFFDIM_BORROW, &op, &e), &e) &&
        CHECK_OK(effdim_eigenbasis_dense(op, EFFDIM_EIG_BY_VALUE, NULL, &b, &e), &e) &&
        CHECK_OK(effdim_subspace_parse("bottom:5", n, &s, &e), &e) &&
        CHECK_OK(effdim_subspace_directions(b, &s, 3, 2.385, 11, D, &e), &e)) {
        double worst_norm = 0.0, worst_dot = 0.0, outside = 0.0;
        for (size_t r = 0; r < 3; ++r) {
            double nn = 0.0;
            for (size_t q = 0; q < n; ++q) nn += D[r * n + q] * D[r * n + q];
            worst_norm = fmax(worst_norm, fabs(sqrt(nn) - 2.385));
            for (size_t t = r + 1; t < 3; ++t) {
                double d = 0.0;
                for (size_t q = 0; q < n; ++q) d += D[r * n + q] * D[t * n + q];
                worst_dot = fmax(worst_dot, fabs(d));
            }
            for (size_t i = 0; i < s.first; ++i) { /* components along the other 18 */
                double d = 0.0;
                for (size_t q = 0; q < n; ++q) d += D[r * n + q] * b->vectors[i * n + q];
                outside = fmax(outside, fabs(d));
            }
        }
        CHECK(worst_norm < 1e-13 && worst_dot < 1e-12 && outside < 1e-12);
        /* seeded */
        double again[3 * 23];
        CHECK_OK(effdim_subspace_directions(b, &s, 3, 2.385, 11, again, &e), &e);
        CHECK(memcmp(D, again, sizeof D) == 0);
        CHECK_STATUS(effdim_subspace_directions(b, &s, 6, 1.0, 11, D, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "6 directions", "dimension 5");
        CHECK_STATUS(effdim_subspace_directions(b, &s, 1, -1.0, 11, D, &e), EFFDIM_EDOM, &e);
    }
    effdim_eigenbasis_free(b);
    effdim_operator_free(op);
    free(A);
}

/* a 2-6-5-1 elu network with bce on 80 two-spirals points, slightly trained */
static int spiral_net(effdim_mlp *m, double **theta, effdim_dataset **ds)
{
    effdim_error e;
    const size_t sizes[] = {2, 6, 5, 1};
    const effdim_activation acts[] = {EFFDIM_ACT_ELU, EFFDIM_ACT_ELU, EFFDIM_ACT_IDENTITY};
    *theta = NULL;
    *ds = NULL;
    if (!CHECK_OK(effdim_mlp_init(m, 3, sizes, acts, EFFDIM_LOSS_BCE, EFFDIM_REDUCTION_MEAN, &e), &e) ||
        !CHECK_OK(effdim_gen_spirals(80, 0.5, 4, ds, &e), &e))
        return 0;
    *theta = malloc(m->n_params * sizeof(double));
    return CHECK_OK(effdim_mlp_init_params(m, *theta, EFFDIM_INIT_TORCH, 5, &e), &e);
}

static void the_surface_centre_is_the_loss_and_its_curvature_is_d_h_d(void)
{
    effdim_error e;
    effdim_mlp m;
    double *theta = NULL;
    effdim_dataset *ds = NULL;
    effdim_operator *op = NULL;
    effdim_eigenbasis *b = NULL;
    if (!spiral_net(&m, &theta, &ds)) goto done;
    size_t P = m.n_params;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.method = EFFDIM_HVP_EXACT;
    if (!CHECK_OK(effdim_hvp_operator(&m, theta, ds, NULL, ds->n, &hp, NULL, &op, &e), &e) ||
        !CHECK_OK(effdim_eigenbasis_dense(op, EFFDIM_EIG_BY_ABS, NULL, &b, &e), &e))
        goto done;
    CHECK(b->asymmetry < 1e-12);
    effdim_subspace s;
    CHECK_OK(effdim_subspace_parse("top:3", P, &s, &e), &e);
    effdim_surface_params sp = effdim_surface_default_params();
    sp.n_pts = 5; /* alpha = -h, -h/2, 0, h/2, h */
    sp.range = 2e-3;
    sp.scale = 1.0;
    sp.seed = 9;
    double alpha[5], L[25], l0 = NAN, D[2 * 200];
    if (!CHECK(P <= 200) ||
        !CHECK_OK(effdim_loss_surface(&m, theta, ds, b, &s, &sp, NULL, alpha, L, &e), &e))
        goto done;
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&m, 0, &e);
    CHECK_OK(effdim_mlp_loss_grad(&m, theta, ds, NULL, ds->n, &l0, NULL, ws, &e), &e);
    effdim_mlp_ws_free(ws);
    CHECK(alpha[2] == 0.0 && alpha[0] == -1e-3 && alpha[4] == 1e-3);
    CHECK(L[2 * 5 + 2] == l0);
    /* d1 = U g / |U g|: d1^T H d1 = sum over the top 3 of lambda_i (d1 . v_i)^2 */
    CHECK_OK(effdim_subspace_directions(b, &s, 2, 1.0, 9, D, &e), &e);
    double dhd = 0.0;
    for (size_t i = 0; i < 3; ++i) {
        double c = 0.0;
        for (size_t q = 0; q < P; ++q) c += D[q] * b->vectors[i * P + q];
        dhd += b->values[i] * c * c;
    }
    double h = 1e-3, second = (L[4 * 5 + 2] - 2.0 * l0 + L[0 * 5 + 2]) / (h * h);
    CHECK(fabs(second - dhd) < 1e-4 * fabs(dhd));
    check_note("2-6-5-1 elu bce, P = %zu: lambda_1..3 = %.4g %.4g %.4g; second difference of the "
               "surface along d1 %.8g, d1' H d1 %.8g",
               P, b->values[0], b->values[1], b->values[2], second, dhd);
    /* perturbations: norm 0 changes nothing; errors */
    size_t changed[3];
    double loss[3];
    CHECK_OK(effdim_perturb_predictions(&m, theta, ds, b, &s, 0.0, 3, 1, changed, loss, &e), &e);
    CHECK(changed[0] == 0 && changed[1] == 0 && changed[2] == 0 && loss[0] == l0);
    CHECK_OK(effdim_perturb_predictions(&m, theta, ds, b, &s, 50.0, 3, 1, changed, NULL, &e), &e);
    CHECK(changed[0] + changed[1] + changed[2] > 0);
    effdim_subspace one;
    CHECK_OK(effdim_subspace_parse("bottom:1", P, &one, &e), &e);
    CHECK_STATUS(effdim_loss_surface(&m, theta, ds, b, &one, &sp, NULL, alpha, L, &e), EFFDIM_EINVAL,
                 &e);
    CHECK_MSG(&e, "bottom:1", "a plane needs 2");
    effdim_mlp mm;
    const size_t sizes[] = {2, 6, 5, 1};
    CHECK_OK(effdim_mlp_init(&mm, 3, sizes, m.act, EFFDIM_LOSS_MSE, EFFDIM_REDUCTION_MEAN, &e), &e);
    CHECK_STATUS(effdim_perturb_predictions(&mm, theta, ds, b, &s, 1.0, 1, 1, changed, NULL, &e),
                 EFFDIM_EINVAL, &e);
done:
    effdim_eigenbasis_free(b);
    effdim_operator_free(op);
    free(theta);
    effdim_dataset_free(ds);
}

static void the_surface_file_round_trips(void)
{
    effdim_error e;
    effdim_surface_set s, *back = NULL;
    memset(&s, 0, sizeof s);
    double ev[4] = {3.5, 1.25, 0.0, -0.5}, alpha[3] = {-0.5, 0.0, 0.5};
    double loss[18];
    for (int i = 0; i < 18; ++i) loss[i] = 0.1 * i * i - 0.3;
    effdim_subspace sub[2] = {{0, 2, "top:2"}, {2, 2, "bottom:2"}};
    s.n_surfaces = 2;
    s.params = effdim_surface_default_params();
    s.params.n_pts = 3;
    s.params.seed = 77;
    s.P = 4;
    s.eigenvalues = ev;
    s.subspaces = sub;
    s.alpha = alpha;
    s.loss = loss;
    s.center_loss = 0.125;
    s.checkpoint = "spirals.h5";
    s.data_spec = "spirals:n=1000";
    const char *path = check_tmpfile("surface.h5");
    if (CHECK_OK(effdim_surface_save(&s, path, &e), &e) &&
        CHECK_OK(effdim_surface_load(path, &back, &e), &e)) {
        CHECK(back->n_surfaces == 2 && back->P == 4 && back->params.n_pts == 3 &&
              back->params.seed == 77 && back->center_loss == 0.125);
        CHECK_VEC_CLOSE(back->eigenvalues, ev, 4, 0.0);
        CHECK_VEC_CLOSE(back->alpha, alpha, 3, 0.0);
        CHECK_VEC_CLOSE(back->loss, loss, 18, 0.0);
        CHECK(!strcmp(back->subspaces[1].name, "bottom:2") && back->subspaces[1].first == 2);
        CHECK(!strcmp(back->checkpoint, "spirals.h5") && !strcmp(back->data_spec, "spirals:n=1000"));
    }
    effdim_surface_set_free(back);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "format");
    CHECK_OK(effdim_h5_attr_write_string(f, "format", "effdim.blr", &e), &e);
    H5Fclose(f);
    back = NULL;
    CHECK_STATUS(effdim_surface_load(path, &back, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "format is 'effdim.blr'", "effdim.surface");
    CHECK(back == NULL);
}

CHECK_TESTS({"the dense eigenbasis has the known spectrum in descending order",
             the_dense_eigenbasis_has_the_known_spectrum_in_descending_order},
            {"subspaces parse and directions stay inside them",
             subspaces_parse_and_directions_stay_inside_them},
            {"the surface centre is the loss and its curvature is d1' H d1",
             the_surface_centre_is_the_loss_and_its_curvature_is_d_h_d},
            {"the surface file round trips", the_surface_file_round_trips})
