/* tests/test_comm.c: data-parallel runs over MPI ranks equal one process.
 *
 * Run as `mpirun -n R test_comm` (tests/meson.build runs R = 1, 2, 3) and
 * plainly (no MPI, or a build without it: the one-process paths). Every
 * rank builds the same network and data set from seeds; the oracle is the
 * one-process result over the whole set, computed on every rank with no
 * communicator, against the distributed result where each rank holds its
 * share (effdim_comm_keep_share). Checked: the shares, the fixed-order sum
 * (bitwise, against the sum written out here), the error agreement, the
 * gradient, every product kind (exact, GGN, fd, fd-central, with a prior),
 * the top eigenvalues, SLQ N_eff and trace of the spectrum job, the GGN, EF,
 * Hessian and Hutchinson diagonals, and 3 epochs of training (theta and the
 * optimiser state to 1e-12, and bitwise the same on every rank).
 * Ranks other than 0 print nothing; their failures make the program fail.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testnet.h"
#include "effdim/checkpoint.h"
#include "effdim/comm.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/mlp.h"
#include "effdim/spectrum.h"
#include "effdim/train.h"

static effdim_comm *world; /* NULL: one process */

static void fill_gaussian(double *x, size_t n, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    for (size_t i = 0; i < n; ++i) x[i] = gsl_ran_gaussian(r, 1.0);
    gsl_rng_free(r);
}

/* ||a - b|| / ||b|| */
static double rel_dist(const double *a, const double *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        d += (a[i] - b[i]) * (a[i] - b[i]);
        s += b[i] * b[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* a 5-64-64-3 tanh/relu classifier at a non-trivial theta, n rows of data (the
 * whole set on every rank) and this rank's share of them */
typedef struct fixture {
    effdim_mlp m;
    double *theta;
    effdim_dataset *all, *mine;
} fixture;

static int fixture_make(fixture *f, size_t n, effdim_reduction red)
{
    effdim_error e;
    memset(f, 0, sizeof *f);
    const size_t sizes[] = {5, 64, 64, 3}; /* P = 4739: sums of one gradient take the ring */
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    if (!CHECK_OK(effdim_mlp_init(&f->m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, red, &e), &e))
        return 0;
    f->theta = malloc(f->m.n_params * sizeof(double));
    if (!CHECK(f->theta)) return 0;
    if (!CHECK_OK(effdim_mlp_init_params(&f->m, f->theta, EFFDIM_INIT_TORCH, 7, &e), &e)) return 0;
    for (size_t i = 0; i < f->m.n_params; ++i) f->theta[i] *= 1.5;
    f->all = testnet_data(n, 5, 3, EFFDIM_TARGET_LABELS, 11);
    if (!CHECK(f->all)) return 0;
    if (!CHECK_OK(effdim_dataset_copy(f->all, &f->mine, &e), &e)) return 0;
    return CHECK_OK(effdim_comm_keep_share(world, f->mine, "test data", &e), &e);
}

static void fixture_free(fixture *f)
{
    free(f->theta);
    effdim_dataset_free(f->all);
    effdim_dataset_free(f->mine);
}

/* ---- the communicator itself ------------------------------------------------------ */

static void test_shares(void)
{
    for (size_t n = 0; n <= 40; ++n)
        for (int R = 1; R <= 7; ++R) {
            size_t next = 0, lo = n / (size_t)R, hi = (n + (size_t)R - 1) / (size_t)R;
            int ok = 1;
            for (int r = 0; r < R; ++r) {
                size_t b, e;
                effdim_comm_share(n, R, r, &b, &e);
                ok &= b == next && e >= b && e - b >= lo && e - b <= hi && b == (size_t)r * n / (size_t)R;
                next = e;
            }
            if (!CHECK(ok && next == n)) check_note("n %zu, R %d", n, R);
        }
    /* no overflow of r n for n near SIZE_MAX */
    size_t b, e, big = (size_t)-1 - 5;
    effdim_comm_share(big, 256, 255, &b, &e);
    CHECK(e == big && b < e && e - b >= big / 256);
    effdim_comm_share(big, 256, 0, &b, &e);
    CHECK(b == 0 && e == big / 256 + ((big % 256) * 1) / 256);
}

/* a process no launcher started is one process, MPI untouched: the build without MPI and
 * a plain run of the build with it behave the same */
static void test_plain_run(void)
{
    if (!effdim_comm_launched()) {
        CHECK(world == NULL);
        CHECK(effdim_comm_size(world) == 1 && effdim_comm_rank(world) == 0);
    } else {
        CHECK(world != NULL && effdim_comm_built());
    }
    effdim_comm_stats st = effdim_comm_get_stats(NULL);
    CHECK(st.sums == 0 && st.doubles == 0 && st.seconds == 0.0);
}

static void test_fewer_rows_than_ranks(void)
{
    effdim_error e;
    int R = effdim_comm_size(world);
    CHECK_OK(effdim_comm_check_rows(world, (size_t)R, "h5:x.h5", &e), &e);
    if (R > 1) {
        CHECK_STATUS(effdim_comm_check_rows(world, (size_t)R - 1, "h5:x.h5", &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "h5:x.h5", "ranks", "every rank needs at least one row");
        effdim_dataset *ds = testnet_data((size_t)R - 1, 2, 2, EFFDIM_TARGET_LABELS, 1);
        CHECK_STATUS(effdim_comm_keep_share(world, ds, "spec", &e), EFFDIM_EINVAL, &e);
        effdim_dataset_free(ds);
    } else {
        effdim_dataset *ds = testnet_data(1, 2, 2, EFFDIM_TARGET_LABELS, 1);
        CHECK_OK(effdim_comm_keep_share(world, ds, "spec", &e), &e);
        CHECK(ds && ds->n == 1);
        effdim_dataset_free(ds);
    }
}

static void test_sum_order(void)
{
    effdim_error e;
    int R = effdim_comm_size(world), me = effdim_comm_rank(world);
    enum { N = 1000 };
    static double x[N], want[N];
    /* rank r contributes terms of very different sizes, so the order shows */
    for (size_t i = 0; i < N; ++i) {
        want[i] = 0.0;
        for (int r = 0; r < R; ++r) {
            double t = (r % 2 ? 1e16 : 1.0) * (0.1 + (double)i * 1e-3) * (r + 1) * (r == 2 ? -1 : 1);
            want[i] = r ? want[i] + t : t;
            if (r == me) x[i] = t;
        }
    }
    CHECK_OK(effdim_comm_sum(world, x, N, EFFDIM_OK, &e), &e);
    CHECK(!memcmp(x, want, sizeof x));
    /* a long vector takes the ring: segment s summed in ring order from rank s */
    enum { NL = EFFDIM_COMM_RING_MIN + 1001 };
    static double xl[NL], wl[NL];
    if (!CHECK(R <= 8)) return;
    const size_t mid = NL / 2;
    for (size_t i = 0; i < NL; ++i) {
        double t[8] = {0};
        for (int r = 0; r < R; ++r)
            t[r] = (r % 2 ? 1e16 : 1.0) * (0.1 + (double)i * 1e-3) * (r + 1) * (r == 2 ? -1 : 1);
        if (i == mid) /* 1, 1e16, -1e16: rank order gives 0, the ring from rank 1 gives 1 */
            for (int r = 0; r < R; ++r) t[r] = r == 0 ? 1.0 : r == 1 ? 1e16 : r == 2 ? -1e16 : 0.0;
        xl[i] = t[me];
        int s0 = 0;
        for (int s = 0; s < R; ++s) {
            size_t b, en;
            effdim_comm_share(NL, R, s, &b, &en);
            if (i >= b && i < en) s0 = s;
        }
        wl[i] = t[s0];
        for (int j = 1; j < R; ++j) wl[i] = wl[i] + t[(s0 + j) % R];
    }
    CHECK_OK(effdim_comm_sum(world, xl, NL, EFFDIM_OK, &e), &e);
    CHECK(!memcmp(xl, wl, sizeof xl));
    if (R == 3) CHECK(xl[mid] == 1.0); /* (1e16 - 1e16) + 1, not (1 + 1e16) - 1e16 = 0 */
    int same = 0;
    CHECK_OK(effdim_comm_same(world, x, sizeof x, &same, &e), &e);
    CHECK(same == 1);
    /* a byte that differs on one rank is seen */
    if (me == R - 1 && R > 1) x[N / 2] = 2.0 * x[N / 2] + 1.0;
    CHECK_OK(effdim_comm_same(world, x, sizeof x, &same, &e), &e);
    CHECK(same == (R == 1));
}

static void test_error_reaches_every_rank(void)
{
    effdim_error e;
    effdim_error_clear(&e);
    int R = effdim_comm_size(world), me = effdim_comm_rank(world);
    effdim_status local = EFFDIM_OK;
    if (me == R - 1) local = effdim_error_set(&e, EFFDIM_EIO, "data.csv: row 7: disk on fire");
    double x[3] = {1, 2, 3};
    CHECK_STATUS(effdim_comm_sum(world, x, 3, local, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "data.csv: row 7: disk on fire");
    if (R > 1) {
        char want[64];
        snprintf(want, sizeof want, "rank %d of %d: ", R - 1, R);
        CHECK_MSG(&e, want);
    }
    CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3); /* untouched */
    /* the lowest failing rank wins; then everything is well again */
    effdim_error_clear(&e);
    local = effdim_error_set(&e, EFFDIM_EDOM, "rank %d's own", me);
    CHECK_STATUS(effdim_comm_agree(world, local, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "rank 0's own");
    CHECK_OK(effdim_comm_agree(world, EFFDIM_OK, &e), &e);
}

/* ---- the network ------------------------------------------------------------------- */

static void test_gradient(void)
{
    for (int red = 0; red < 2; ++red) {
        fixture f;
        effdim_error e;
        if (!fixture_make(&f, 97, red ? EFFDIM_REDUCTION_SUM : EFFDIM_REDUCTION_MEAN)) {
            fixture_free(&f);
            return;
        }
        size_t P = f.m.n_params;
        double *g1 = calloc(P, sizeof *g1), *gR = calloc(P, sizeof *gR), l1 = 0, lR = 0;
        effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&f.m, 16, &e); /* several chunks per rank */
        CHECK_OK(effdim_mlp_loss_grad(&f.m, f.theta, f.all, NULL, f.all->n, &l1, g1, ws, &e), &e);
        CHECK_OK(effdim_mlp_loss_grad_comm(&f.m, f.theta, f.mine, NULL, f.mine->n, f.all->n, world,
                                           &lR, gR, ws, &e), &e);
        CHECK_CLOSE(lR, l1, 1e-12);
        double d = rel_dist(gR, g1, P);
        CHECK(d <= 1e-12);
        check_note("%s: ||g_R - g_1|| / ||g_1|| = %.2g", red ? "sum" : "mean", d);
        int same = 0;
        CHECK_OK(effdim_comm_same(world, gR, P * sizeof *gR, &same, &e), &e);
        CHECK(same);
        /* a rank with no rows of a minibatch adds nothing */
        size_t row0 = 0;
        int me = effdim_comm_rank(world);
        CHECK_OK(effdim_mlp_loss_grad(&f.m, f.theta, f.all, &row0, 1, &l1, g1, ws, &e), &e);
        CHECK_OK(effdim_mlp_loss_grad_comm(&f.m, f.theta, f.all, &row0, me == 0, 1, world, &lR, gR,
                                           ws, &e), &e);
        CHECK(rel_dist(gR, g1, P) <= 1e-15 && fabs(lR - l1) <= 1e-15 * fabs(l1));
        double a1 = 0, aR = 0, e1 = 0, eR = 0;
        CHECK_OK(effdim_mlp_evaluate(&f.m, f.theta, f.all, NULL, f.all->n, &e1, &a1, ws, &e), &e);
        CHECK_OK(effdim_mlp_evaluate_comm(&f.m, f.theta, f.mine, NULL, f.mine->n, f.all->n, world,
                                          &eR, &aR, ws, &e), &e);
        CHECK_CLOSE(eR, e1, 1e-12);
        CHECK_CLOSE(aR, a1, 1e-12);
        effdim_mlp_ws_free(ws);
        free(g1);
        free(gR);
        fixture_free(&f);
    }
}

static void test_products(void)
{
    fixture f;
    effdim_error e;
    if (!fixture_make(&f, 120, EFFDIM_REDUCTION_MEAN)) {
        fixture_free(&f);
        return;
    }
    size_t P = f.m.n_params, nv = 3;
    double *V = malloc(nv * P * sizeof *V), *Y1 = malloc(nv * P * sizeof *Y1),
           *YR = malloc(nv * P * sizeof *YR);
    fill_gaussian(V, nv * P, 5);
    struct { effdim_curvature c; effdim_hvp_method m; } kinds[] = {
        {EFFDIM_CURV_HESSIAN, EFFDIM_HVP_EXACT}, {EFFDIM_CURV_GGN, EFFDIM_HVP_EXACT},
        {EFFDIM_CURV_HESSIAN, EFFDIM_HVP_FD}, {EFFDIM_CURV_HESSIAN, EFFDIM_HVP_FD_CENTRAL}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
        effdim_hvp_params hp = effdim_hvp_default_params();
        hp.curvature = kinds[k].c;
        hp.method = kinds[k].m;
        hp.prior = 0.3;
        hp.chunk = 32;
        effdim_operator *o1 = NULL, *oR = NULL;
        effdim_hvp_info i1, iR;
        CHECK_OK(effdim_hvp_operator(&f.m, f.theta, f.all, NULL, f.all->n, &hp, NULL, &o1, &e), &e);
        CHECK_OK(effdim_hvp_operator_comm(&f.m, f.theta, f.mine, &hp, NULL, world, &oR, &iR, &e), &e);
        if (!o1 || !oR) {
            effdim_operator_free(o1);
            effdim_operator_free(oR);
            continue;
        }
        CHECK_OK(effdim_hvp_get_info(o1, &i1, &e), &e);
        CHECK(iR.n_rows == f.all->n && iR.scale == i1.scale && iR.prior == 0.3);
        CHECK_OK(effdim_operator_apply(o1, nv, V, P, Y1, P, &e), &e);
        CHECK_OK(effdim_operator_apply(oR, nv, V, P, YR, P, &e), &e);
        /* exact and GGN: rounding of the sums only. A finite difference divides the
         * gradients' rounding by h, so the two agree to that rounding: the bound is
         * the library's predicted rounding error of the product */
        double bound = 1e-12;
        if (kinds[k].m != EFFDIM_HVP_EXACT) {
            effdim_hvp_fd_error fe;
            CHECK_OK(effdim_hvp_fd_error_estimate(o1, V, NULL, &fe, &e), &e);
            double nhv = 0.0;
            for (size_t i = 0; i < P; ++i) nhv += Y1[i] * Y1[i];
            bound = fmax(bound, 4.0 * fe.rounding / sqrt(nhv));
        }
        double d = rel_dist(YR, Y1, nv * P);
        if (!CHECK(d <= bound)) check_note("kind %zu: %.3g above %.3g", k, d, bound);
        check_note("%s %s: ||Y_R - Y_1|| / ||Y_1|| = %.2g (bound %.2g)",
                   effdim_curvature_name(kinds[k].c), effdim_hvp_method_name(kinds[k].m), d, bound);
        int same = 0;
        CHECK_OK(effdim_comm_same(world, YR, nv * P * sizeof *YR, &same, &e), &e);
        CHECK(same);
        effdim_operator_free(oR);
        effdim_operator_free(o1);
    }
    free(V);
    free(Y1);
    free(YR);
    fixture_free(&f);
}

static void test_spectrum_job(void)
{
    fixture f;
    effdim_error e;
    if (!fixture_make(&f, 150, EFFDIM_REDUCTION_MEAN)) {
        fixture_free(&f);
        return;
    }
    for (int ggn = 0; ggn < 2; ++ggn) {
        effdim_spectrum_params p = effdim_spectrum_default_params();
        p.op = ggn ? EFFDIM_CURV_GGN : EFFDIM_CURV_HESSIAN;
        p.hvp = EFFDIM_HVP_EXACT;
        p.k = 4;
        p.probes = 10;
        p.slq_steps = 40;
        p.slq_target_rel = p.slq_target_abs = 0.0; /* every probe, the same on both */
        p.prior = 0.01;
        effdim_spectrum *s1 = NULL, *sR = NULL, *sR2 = NULL;
        CHECK_OK(effdim_spectrum_compute(&f.m, f.theta, f.all, &p, &s1, &e), &e);
        p.comm = world;
        CHECK_OK(effdim_spectrum_compute(&f.m, f.theta, f.mine, &p, &sR, &e), &e);
        CHECK_OK(effdim_spectrum_compute(&f.m, f.theta, f.mine, &p, &sR2, &e), &e);
        if (s1 && sR && sR2 && CHECK(sR->k == s1->k && sR->m == s1->m && sR->n_eff_slq)) {
            CHECK(sR->n == f.all->n && sR->scale == s1->scale);
            CHECK_VEC_CLOSE(sR->eigenvalues, s1->eigenvalues, s1->k, 1e-12);
            CHECK_VEC_CLOSE(sR->n_eff, s1->n_eff, s1->m, 1e-12);
            CHECK_VEC_CLOSE(sR->n_eff_slq, s1->n_eff_slq, s1->m, 1e-12);
            CHECK_CLOSE(sR->trace, s1->trace, 1e-12);
            check_note("%s: top %.15g (1 process) %.15g (%d ranks), N_eff_slq(z_0) %.15g %.15g",
                       ggn ? "ggn" : "hessian", s1->eigenvalues[0], sR->eigenvalues[0],
                       effdim_comm_size(world), s1->n_eff_slq[0], sR->n_eff_slq[0]);
            /* bitwise reproducible for a given R, and the same on every rank */
            CHECK(!memcmp(sR->eigenvalues, sR2->eigenvalues, sR->k * sizeof(double)));
            CHECK(!memcmp(sR->n_eff_slq, sR2->n_eff_slq, sR->m * sizeof(double)));
            int same = 0;
            CHECK_OK(effdim_comm_same(world, sR->eigenvalues, sR->k * sizeof(double), &same, &e), &e);
            CHECK(same);
        }
        effdim_spectrum_free(s1);
        effdim_spectrum_free(sR);
        effdim_spectrum_free(sR2);
    }
    /* what a time budget or a random subset would make differ is refused with ranks */
    if (effdim_comm_size(world) > 1) {
        effdim_spectrum_params p = effdim_spectrum_default_params();
        effdim_spectrum *s = NULL;
        p.comm = world;
        p.subset = 10;
        CHECK_STATUS(effdim_spectrum_compute(&f.m, f.theta, f.mine, &p, &s, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "subset");
        p.subset = 0;
        p.slq_budget_seconds = 5;
        CHECK_STATUS(effdim_spectrum_compute(&f.m, f.theta, f.mine, &p, &s, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "slq_budget_seconds");
    }
    fixture_free(&f);
}

static void test_diag_job(void)
{
    fixture f;
    effdim_error e;
    if (!fixture_make(&f, 90, EFFDIM_REDUCTION_MEAN)) {
        fixture_free(&f);
        return;
    }
    effdim_checkpoint *c = NULL;
    if (!CHECK_OK(effdim_checkpoint_alloc(&f.m, f.theta, &c, &e), &e)) {
        fixture_free(&f);
        return;
    }
    const effdim_diag_method methods[] = {EFFDIM_DIAG_GGN, EFFDIM_DIAG_EF, EFFDIM_DIAG_HESSIAN,
                                          EFFDIM_DIAG_HUTCHINSON};
    effdim_diag_job_params p = effdim_diag_job_default_params();
    p.hutchinson.max_probes = 16;
    p.hutchinson.seed = 3;
    effdim_diag_file *d1 = NULL, *dR = NULL;
    CHECK_OK(effdim_diag_job_run(c, NULL, f.all, "test", methods, 4, &p, &d1, &e), &e);
    p.comm = world;
    CHECK_OK(effdim_diag_job_run(c, NULL, f.mine, "test", methods, 4, &p, &dR, &e), &e);
    if (d1 && dR && CHECK(d1->count == 4 && dR->count == 4)) {
        CHECK(dR->n == f.all->n && dR->scale == d1->scale);
        for (size_t i = 0; i < 4; ++i) {
            double d = rel_dist(dR->entries[i].v, d1->entries[i].v, f.m.n_params);
            CHECK(d <= 1e-12);
            check_note("%s: ||d_R - d_1|| / ||d_1|| = %.2g", d1->entries[i].name, d);
        }
        CHECK(rel_dist(dR->entries[3].se, d1->entries[3].se, f.m.n_params) <= 1e-12);
    }
    if (effdim_comm_size(world) > 1) { /* ggn-mc samples labels in one process's row order */
        const effdim_diag_method mc = EFFDIM_DIAG_GGN_MC;
        CHECK_STATUS(effdim_diag_job_check(c, NULL, f.mine, &mc, 1, &p, &e), EFFDIM_EINVAL, &e);
        CHECK_MSG(&e, "ggn-mc", "one process");
    }
    effdim_diag_file_free(d1);
    effdim_diag_file_free(dR);
    effdim_checkpoint_free(c);
    fixture_free(&f);
}

/* 3 epochs: theta, the optimiser state and the metrics equal one process's */
static void train_case(effdim_optim_kind kind, const char *name)
{
    fixture f;
    effdim_error e;
    if (!fixture_make(&f, 90, EFFDIM_REDUCTION_MEAN)) {
        fixture_free(&f);
        return;
    }
    effdim_checkpoint *c1 = NULL, *cR = NULL;
    CHECK_OK(effdim_checkpoint_alloc(&f.m, f.theta, &c1, &e), &e);
    CHECK_OK(effdim_checkpoint_alloc(&f.m, f.theta, &cR, &e), &e);
    effdim_train_params p = effdim_train_default_params();
    p.optimizer = kind;
    p.optim = effdim_optim_default_params(kind);
    p.optim.lr = kind == EFFDIM_OPTIM_SGD ? 0.1 : 0.01;
    p.optim.momentum = kind == EFFDIM_OPTIM_SGD ? 0.9 : p.optim.momentum;
    if (kind == EFFDIM_OPTIM_IVON) { /* 2 weight samples per step, the same on every rank */
        p.optim.lr = 0.1;
        p.optim.ess = 90;
        p.optim.mc_samples = 2;
    }
    p.batch = 16; /* 90 rows: 6 minibatches, the last one short */
    p.epochs = 3;
    p.chunk = 8;
    effdim_train_result r1, rR;
    if (c1 && cR) {
        CHECK_OK(effdim_train_run(&p, c1, f.all, f.all, &r1, &e), &e);
        p.comm = world;
        CHECK_OK(effdim_train_run(&p, cR, f.mine, f.all, &rR, &e), &e);
        size_t P = f.m.n_params;
        double d = rel_dist(cR->theta, c1->theta, P);
        CHECK(d <= 1e-12);
        CHECK(rR.steps == r1.steps && rR.step == r1.step && rR.epochs_total == 3);
        CHECK_CLOSE(rR.loss, r1.loss, 1e-12);
        CHECK_CLOSE(rR.accuracy, r1.accuracy, 1e-12);
        CHECK_CLOSE(rR.test_loss, r1.test_loss, 1e-12);
        check_note("%s: ||theta_R - theta_1|| / ||theta_1|| = %.2g after %zu steps", name, d,
                   r1.steps);
        int same = 0;
        CHECK_OK(effdim_comm_same(world, cR->theta, P * sizeof(double), &same, &e), &e);
        CHECK(same);
        if (CHECK(c1->optimizer && cR->optimizer &&
                  cR->optimizer->n_state == c1->optimizer->n_state)) {
            CHECK(cR->optimizer->step == c1->optimizer->step);
            for (size_t i = 0; i < c1->optimizer->n_state; ++i) {
                const effdim_named_vector *a = &cR->optimizer->state[i], *b = &c1->optimizer->state[i];
                CHECK(a->n == b->n && !strcmp(a->name, b->name));
                double ds = rel_dist(a->v, b->v, b->n);
                if (!CHECK(ds <= 1e-12)) check_note("state %s: %.3g", b->name, ds);
                /* the optimiser state is bitwise the same on every rank (a digest check) */
                CHECK_OK(effdim_comm_same(world, a->v, a->n * sizeof(double), &same, &e), &e);
                CHECK(same);
            }
        }
    }
    effdim_checkpoint_free(c1);
    effdim_checkpoint_free(cR);
    fixture_free(&f);
}

static void test_train_adam(void) { train_case(EFFDIM_OPTIM_ADAM, "adam"); }
static void test_train_sgd(void) { train_case(EFFDIM_OPTIM_SGD, "sgd with momentum"); }
static void test_train_ivon(void) { train_case(EFFDIM_OPTIM_IVON, "ivon"); }

static const check_test tests[] = {
    {"rows are shared out contiguously, a pure function of n and R", test_shares},
    {"a process no launcher started runs as one process", test_plain_run},
    {"fewer rows than ranks is an error naming the data", test_fewer_rows_than_ranks},
    {"the sum runs in its fixed order and is bitwise the same on every rank", test_sum_order},
    {"a failing rank's error reaches every rank", test_error_reaches_every_rank},
    {"the gradient and evaluation over shares equal one process's", test_gradient},
    {"every product kind over shares equals one process's", test_products},
    {"spectrum job: eigenvalues, SLQ N_eff and trace equal one process's", test_spectrum_job},
    {"diag job: ggn, ef, hessian and hutchinson equal one process's", test_diag_job},
    {"3 epochs of adam over shares give one process's checkpoint", test_train_adam},
    {"3 epochs of sgd over shares give one process's checkpoint", test_train_sgd},
    {"3 epochs of ivon over shares give one process's checkpoint", test_train_ivon},
};

int main(int argc, char **argv)
{
    effdim_error e;
    effdim_error_clear(&e);
    if (effdim_comm_world(&argc, &argv, &world, &e)) {
        fprintf(stderr, "test_comm: %s\n", e.msg);
        return 1;
    }
    int me = effdim_comm_rank(world), R = effdim_comm_size(world);
    if (me != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    if (me == 0) printf("# %d rank%s (MPI in the library: %s)\n", R, R == 1 ? "" : "s",
                        effdim_comm_built() ? "yes" : "no");
    int rc = check_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
    double failed = rc != 0;
    if (effdim_comm_sum(world, &failed, 1, EFFDIM_OK, &e)) failed = 1;
    if (me == 0 && failed > 0 && rc == 0) printf("FAIL - %g other rank(s) failed their checks\n", failed);
    effdim_comm_free(world);
    return failed > 0;
}
