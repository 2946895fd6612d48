/* tests/test_compare.c: the compare and diag jobs and their files.
 *
 * Oracles: the jobs against the estimators and the comparison they are made
 * of, called one by one (bitwise: the job adds no arithmetic of its own);
 * the effdim.diag and effdim.compare files by round trip (every number read
 * back bitwise, every name and attribute as written); hostile files
 * (names that would reach a table or a plotting script) refused by name;
 * Hutchinson's progress events against the run they report on.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/compare.h"
#include "effdim/dense.h"
#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/mlp.h"
#include "effdim/neff.h"
#include "effdim/spectrum.h"
#include "testnet.h"

/* A 3-6-5-3 tanh network (P = 77) on 40 rows with an Adam state. */
typedef struct net {
    effdim_checkpoint *c;
    effdim_dataset *ds;
} net;

static int net_make(net *t)
{
    effdim_error err;
    size_t sizes[] = {3, 6, 5, 3};
    effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    memset(t, 0, sizeof *t);
    if (!CHECK_OK(effdim_mlp_init(&m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY,
                                  EFFDIM_REDUCTION_MEAN, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &t->c, &err), &err) ||
        !CHECK_OK(effdim_mlp_init_params(&m, t->c->theta, EFFDIM_INIT_TORCH, 7, &err), &err))
        return 0;
    for (size_t j = 0; j < m.n_params; ++j) t->c->theta[j] *= 2.385; /* away from linear */
    double v[128]; /* P = 77 */
    for (size_t j = 0; j < m.n_params; ++j) v[j] = 1e-3 * (1.0 + 0.37 * (double)(j % 11));
    if (!CHECK_OK(effdim_checkpoint_set_optimizer(t->c, "adam", 41, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_set_state(t->c, "exp_avg_sq", v, m.n_params, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_set_hparam(t->c, "beta2", 0.999, &err), &err))
        return 0;
    t->ds = testnet_data(40, 3, 3, EFFDIM_TARGET_LABELS, 11);
    return t->ds != NULL;
}

static void net_free(net *t)
{
    effdim_checkpoint_free(t->c);
    effdim_dataset_free(t->ds);
}

/* ---- the diag job and file ---- */

static int same_bits(const double *a, const double *b, size_t n)
{
    if (!a || !b) return a == b;
    return !memcmp(a, b, n * sizeof(double));
}

static int same_entry(const effdim_diag_entry *a, const effdim_diag_entry *b, size_t P)
{
    if (strcmp(a->name, b->name) || strcmp(a->method, b->method) || strcmp(a->reading, b->reading) ||
        a->scale != b->scale || a->seconds != b->seconds || !same_bits(a->v, b->v, P) ||
        !same_bits(a->se, b->se, P) || a->n_attrs != b->n_attrs)
        return 0;
    for (size_t i = 0; i < a->n_attrs; ++i) { /* the reader may list them in another order */
        const effdim_diag_attr *x = &a->attrs[i], *y = effdim_diag_entry_attr(b, x->key);
        if (!y || x->kind != y->kind || x->integer != y->integer ||
            memcmp(&x->real, &y->real, sizeof(double)) || strcmp(x->text, y->text))
            return 0;
    }
    return 1;
}

static void test_diag_job_round_trip(void)
{
    effdim_error err;
    net t;
    if (!net_make(&t)) return;
    size_t P = t.c->mlp.n_params;
    effdim_diag_method ms[EFFDIM_DIAG_N_METHODS];
    size_t n = 0;
    CHECK_OK(effdim_diag_methods_parse("ggn,hessian,hutchinson,adam,ggn-mc", ms, 7, &n, &err), &err);
    effdim_diag_job_params p = effdim_diag_job_default_params();
    p.hutchinson.max_probes = 12;
    p.diag.mc_samples = 4;
    p.command_line = "effdim diag net.h5 --method ggn,hessian,hutchinson,adam,ggn-mc";
    effdim_diag_file *f = NULL, *g = NULL;
    if (!CHECK_OK(effdim_diag_job_run(t.c, "net.h5", t.ds, "test:n=40", ms, n, &p, &f, &err), &err))
        goto done;
    /* adam gives adam and adam-vhat (no batch known: no adam-ef) */
    CHECK(f->count == 6 && !strcmp(f->entries[3].name, "adam") &&
          !strcmp(f->entries[4].name, "adam-vhat") && !strcmp(f->entries[5].name, "ggn-mc"));
    /* the job's vectors are the estimators' own, bitwise */
    double *want = malloc(P * sizeof(double));
    effdim_diag_params dp = effdim_diag_default_params();
    if (want && CHECK_OK(effdim_diag_ggn(&t.c->mlp, t.c->theta, t.ds, NULL, 40, &dp, want, NULL,
                                         &err), &err))
        CHECK(same_bits(f->entries[0].v, want, P));
    if (want && CHECK_OK(effdim_diag_hessian(&t.c->mlp, t.c->theta, t.ds, NULL, 40, &dp, want,
                                             NULL, &err), &err))
        CHECK(same_bits(f->entries[1].v, want, P));
    free(want);
    const effdim_diag_attr *pr = effdim_diag_entry_attr(&f->entries[2], "probes");
    CHECK(pr && pr->kind == EFFDIM_DIAG_ATTR_INT && pr->integer == 12);
    CHECK(f->entries[2].se && isfinite(f->entries[2].trace_se));
    const char *path = check_tmpfile("job_diag.h5");
    if (CHECK_OK(effdim_diag_file_save(f, path, &err), &err) &&
        CHECK_OK(effdim_diag_file_load(path, &g, &err), &err)) {
        CHECK(g->count == f->count && g->n == 40 && g->n_params == P && g->seed == f->seed);
        CHECK(!strcmp(g->checkpoint, "net.h5") && !strcmp(g->data_spec, "test:n=40"));
        CHECK(!strcmp(g->command_line, p.command_line));
        CHECK(!strcmp(g->checkpoint_sha256, f->checkpoint_sha256));
        CHECK(!strcmp(g->loss, "cross_entropy") && !strcmp(g->reduction, "mean"));
        CHECK(g->scale == 1.0 / 40.0 && g->n_layers == 3);
        CHECK(g->layer_offsets[1] == 24 && g->layer_params[1] == 35 && g->layer_params[2] == 18);
        for (size_t i = 0; i < f->count && i < g->count; ++i)
            if (!CHECK(same_entry(&f->entries[i], &g->entries[i], P)))
                check_note("entry %s differs after the round trip", f->entries[i].name);
    }
done:
    effdim_diag_file_free(f);
    effdim_diag_file_free(g);
    net_free(&t);
}

typedef struct events {
    size_t n, last_done, total;
    int bad;
    size_t stop_at; /* ask to stop once this many probes are done (0: never) */
} events;

static int on_event(void *ctx, const effdim_progress_event *ev)
{
    events *e = ctx;
    if (strcmp(ev->stage, "hutchinson")) return 0;
    if (ev->done <= e->last_done || ev->total != e->total || !(ev->eta >= 0.0) ||
        !(ev->elapsed >= 0.0) || !strstr(ev->detail, "relative se"))
        e->bad = 1;
    e->last_done = ev->done;
    ++e->n;
    return e->stop_at && ev->done >= e->stop_at;
}

static void test_hutchinson_progress(void)
{
    effdim_error err;
    net t;
    if (!net_make(&t)) return;
    effdim_diag_method ms[1] = {EFFDIM_DIAG_HUTCHINSON};
    effdim_diag_job_params p = effdim_diag_job_default_params();
    p.hutchinson.max_probes = 20;
    p.hutchinson.block = 4;
    events ev = {0, 0, 20, 0, 0};
    p.progress.fn = on_event;
    p.progress.ctx = &ev;
    effdim_diag_file *f = NULL;
    if (CHECK_OK(effdim_diag_job_run(t.c, "net.h5", t.ds, "", ms, 1, &p, &f, &err), &err)) {
        CHECK(ev.n == 5 && ev.last_done == 20 && !ev.bad); /* one event per block of 4 */
    }
    effdim_diag_file_free(f);
    f = NULL;
    /* a callback that answers "stop" ends the job with EMAXITER, "interrupted" */
    events stop = {0, 0, 20, 0, 8};
    p.progress.ctx = &stop;
    CHECK_STATUS(effdim_diag_job_run(t.c, "net.h5", t.ds, "", ms, 1, &p, &f, &err),
                 EFFDIM_EMAXITER, &err);
    CHECK_MSG(&err, "interrupted", "8 probes");
    CHECK(f == NULL && stop.last_done == 8);
    /* with a target the time left aims at it: rel_se ~ 1/sqrt(probes) */
    effdim_error e2;
    effdim_operator *op = NULL;
    double A[16] = {2.385, 0.3, 0, 0, 0.3, 1.5, 0.2, 0, 0, 0.2, 0.7, 0.1, 0, 0, 0.1, 3.1};
    if (CHECK_OK(effdim_operator_dense(4, A, EFFDIM_COPY, &op, &e2), &e2)) {
        effdim_hutchinson_diag_params hp = effdim_hutchinson_diag_default_params();
        events any = {0, 0, hp.max_probes, 0, 0};
        hp.progress.fn = on_event;
        hp.progress.ctx = &any;
        hp.probe = EFFDIM_PROBE_GAUSSIAN;
        double d[4], se[4];
        effdim_status st = effdim_diag_hutchinson(op, &hp, d, se, NULL, &e2);
        CHECK(st == EFFDIM_OK || st == EFFDIM_EMAXITER);
        CHECK(any.n >= 1 && !any.bad);
    }
    effdim_operator_free(op);
    net_free(&t);
}

/* A diag file whose 'methods' or an entry's attribute is hostile. */
static int write_hostile_diag(const char *path, const char *name, const char *probe)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return 0;
    hid_t sp = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    const char *fmt = "effdim.diag";
    hid_t a = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &fmt);
    H5Aclose(a);
    long long one = 1, P = 4;
    a = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &one);
    H5Aclose(a);
    a = H5Acreate2(f, "n_params", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &P);
    H5Aclose(a);
    hsize_t one_d = 1, four = 4;
    hid_t sp1 = H5Screate_simple(1, &one_d, NULL);
    a = H5Acreate2(f, "methods", st, sp1, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &name);
    H5Aclose(a);
    hid_t g = H5Gcreate2(f, "diag", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp4 = H5Screate_simple(1, &four, NULL);
    double v[4] = {1.5, 2.5, 0.25, 4.0};
    hid_t d = H5Dcreate2(g, name, H5T_IEEE_F64LE, sp4, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0 && probe) {
        a = H5Acreate2(d, "probe", st, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, st, &probe);
        H5Aclose(a);
    }
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp4);
    H5Gclose(g);
    H5Sclose(sp1);
    H5Tclose(st);
    H5Sclose(sp);
    H5Fclose(f);
    return CHECK(ok);
}

static void test_hostile_diag_files(void)
{
    effdim_error err;
    effdim_diag_file *f = NULL;
    const char *path = check_tmpfile("hostile_diag.h5");
    if (write_hostile_diag(path, "ggn", NULL) && CHECK_OK(effdim_diag_file_load(path, &f, &err), &err))
        CHECK(f->count == 1 && f->entries[0].v[3] == 4.0);
    effdim_diag_file_free(f);
    f = NULL;
    if (write_hostile_diag(path, "x'\n!touch PWNED\n#", NULL)) {
        CHECK_STATUS(effdim_diag_file_load(path, &f, &err), EFFDIM_EFORMAT, &err);
        CHECK_MSG(&err, "hostile_diag.h5", "'methods'", "not a known diagonal name");
        CHECK(!strchr(err.msg, '\n') && !strstr(err.msg, "PWNED"));
    }
    if (write_hostile_diag(path, "hutchinson", "rademacher'\n!touch PWNED")) {
        CHECK_STATUS(effdim_diag_file_load(path, &f, &err), EFFDIM_EFORMAT, &err);
        CHECK_MSG(&err, "hostile_diag.h5", "/diag/hutchinson", "'probe'", "plain name");
    }
    CHECK(f == NULL);
    /* the writer refuses what the reader would refuse */
    effdim_diag_file bad;
    effdim_diag_entry e;
    memset(&bad, 0, sizeof bad);
    memset(&e, 0, sizeof e);
    double v[2] = {1.0, 2.0};
    snprintf(e.name, sizeof e.name, "fisher");
    e.v = v;
    bad.n_params = 2;
    bad.count = 1;
    bad.entries = &e;
    CHECK_STATUS(effdim_diag_file_save(&bad, check_tmpfile("never.h5"), &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "not one of");
    FILE *fp = fopen(check_tmpfile("never.h5"), "r");
    CHECK(fp == NULL);
    if (fp) fclose(fp);
}

/* ---- the compare job and file ---- */

static int same_result(const effdim_compare_result *a, const effdim_compare_result *b)
{
    size_t m = a->m;
#define SAMEV(x, n) same_bits(a->x, b->x, n)
#define SAMED(x) (!memcmp(&a->x, &b->x, sizeof(double)))
    return a->n == b->n && a->k == b->k && a->kv == b->kv && a->m == b->m && a->q == b->q &&
           a->n_topm == b->n_topm && a->negative == b->negative && SAMED(trace) &&
           SAMED(trace_exact) && SAMED(trace_eigs) && SAMED(spearman) && SAMED(rel_error) &&
           SAMED(rel_error_fit) && SAMED(fit_scale) && SAMED(median_rel_error) &&
           SAMED(scale_ratio) && SAMEV(n_eff, m) && SAMEV(n_eff_eigs, m) && SAMEV(top, a->q) &&
           SAMEV(ratio, a->q) && SAMEV(partial, a->q) && SAMEV(mass, a->kv) &&
           SAMEV(alignment, a->kv * a->n_topm) &&
           !memcmp(a->topm, b->topm, a->n_topm * sizeof(size_t)) &&
           !memcmp(a->baseline, b->baseline, a->n_topm * sizeof(double));
#undef SAMEV
#undef SAMED
}

static void test_compare_job_round_trip(void)
{
    effdim_error err;
    net t;
    if (!net_make(&t)) return;
    size_t P = t.c->mlp.n_params;
    effdim_compare_params p = effdim_compare_default_params();
    p.k = 5;
    p.command_line = "effdim compare net.h5 -o c.h5";
    effdim_compare_inputs in = {t.c, "net.h5", t.ds, "test:n=40", NULL, NULL, NULL, NULL};
    CHECK(effdim_compare_needs_data(&in, &p));
    effdim_compare_file *f = NULL, *g = NULL;
    effdim_spectrum *s = NULL;
    if (!CHECK_OK(effdim_compare_compute(&in, &p, &f, &s, &err), &err)) goto done;
    /* default diagonals: ggn, ef, hessian (cost is tiny), adam (Adam state) */
    CHECK(f->n_diags == 4 && !strcmp(f->diag_names[0], "ggn") &&
          !strcmp(f->diag_names[2], "hessian") && !strcmp(f->diag_names[3], "adam"));
    CHECK(f->n_blocks == 4 && f->block_offsets[3] == 59 && f->block_sizes[3] == 18);
    CHECK(f->k == 5 && f->m == 13 && f->ref_has_vectors && !strcmp(f->exact, "computed"));
    CHECK(s && s->k == 5 && s->eigenvectors && s->nconv == 5);
    for (size_t i = 0; s && i < s->k; ++i) CHECK(s->converged[i] == 1);
    /* the N_eff of block "all" is the closed form over the ggn diagonal */
    double *gv = malloc(P * sizeof(double)), got[13];
    effdim_diag_params dp = effdim_diag_default_params();
    if (gv && CHECK_OK(effdim_diag_ggn(&t.c->mlp, t.c->theta, t.ds, NULL, 40, &dp, gv, NULL, &err),
                       &err) &&
        CHECK_OK(effdim_compare_neff(gv, P, f->z, 13, EFFDIM_NEG_ZERO, got, &err), &err))
        CHECK(same_bits(effdim_compare_file_result(f, 0, 0)->n_eff, got, 13));
    free(gv);
    /* the exact trace equals the sum of the exact diagonal's entries, and the
     * hessian diagonal's own accuracy figures are exact */
    const effdim_compare_result *h = effdim_compare_file_result(f, 2, 0);
    CHECK(f->has_trace_exact && h->trace == f->trace_exact && h->rel_error == 0.0 &&
          h->spearman > 0.999999);
    const char *path = check_tmpfile("job_compare.h5");
    if (CHECK_OK(effdim_compare_file_save(f, path, &err), &err) &&
        CHECK_OK(effdim_compare_file_load(path, &g, &err), &err)) {
        CHECK(g->n_diags == f->n_diags && g->n_blocks == f->n_blocks && g->m == f->m &&
              g->k == f->k && g->n_params == P && g->neg_policy == f->neg_policy);
        CHECK(!strcmp(g->checkpoint, "net.h5") && !strcmp(g->data_spec, "test:n=40") &&
              !strcmp(g->command_line, p.command_line) && !strcmp(g->exact, "computed") &&
              !strcmp(g->ref_source, "computed") && !strcmp(g->ref_operator, "hessian") &&
              !strcmp(g->checkpoint_sha256, f->checkpoint_sha256));
        CHECK(same_bits(g->z, f->z, f->m) && same_bits(g->eigenvalues, f->eigenvalues, f->k) &&
              same_bits(g->n_eff, f->n_eff, f->m) &&
              same_bits(g->n_eff_upper_psd, f->n_eff_upper_psd, f->m) &&
              same_bits(g->n_eff_slq, f->n_eff_slq, f->m) && g->trace_eigs == f->trace_eigs &&
              g->trace_exact == f->trace_exact && g->has_trace == f->has_trace);
        CHECK(!memcmp(g->block_offsets, f->block_offsets, sizeof f->block_offsets) &&
              !memcmp(g->block_sizes, f->block_sizes, sizeof f->block_sizes) &&
              same_bits(g->topm_fractions, f->topm_fractions, f->n_topm));
        for (size_t d = 0; d < f->n_diags; ++d) {
            CHECK(!strcmp(g->diag_names[d], f->diag_names[d]));
            CHECK(g->sorted_n[d] == f->sorted_n[d] &&
                  same_bits(g->sorted[d], f->sorted[d], 2 * f->sorted_n[d]));
            for (size_t b = 0; b < f->n_blocks; ++b)
                if (!CHECK(same_result(effdim_compare_file_result(f, d, b),
                                       effdim_compare_file_result(g, d, b))))
                    check_note("%s/%s differs after the round trip", f->diag_names[d],
                               f->block_names[b]);
        }
    }
    /* the computed spectrum saved and given back reproduces the comparison */
    const char *sp = check_tmpfile("job_spectrum.h5");
    effdim_spectrum *s2 = NULL;
    effdim_compare_file *f2 = NULL;
    if (s && CHECK_OK(effdim_spectrum_save(s, sp, &err), &err) &&
        CHECK_OK(effdim_spectrum_load(sp, &s2, &err), &err)) {
        effdim_compare_inputs in2 = {t.c, "net.h5", t.ds, "test:n=40", s2, sp, NULL, NULL};
        if (CHECK_OK(effdim_compare_compute(&in2, &p, &f2, NULL, &err), &err))
            CHECK(same_result(effdim_compare_file_result(f, 1, 2),
                              effdim_compare_file_result(f2, 1, 2)) &&
                  !strcmp(f2->ref_source, sp));
    }
    effdim_compare_file_free(f2);
    effdim_spectrum_free(s2);
done:
    effdim_spectrum_free(s);
    effdim_compare_file_free(f);
    effdim_compare_file_free(g);
    net_free(&t);
}

static void test_compare_job_errors(void)
{
    effdim_error err;
    net t;
    if (!net_make(&t)) return;
    effdim_compare_params p = effdim_compare_default_params();
    p.k = 3;
    effdim_compare_file *f = NULL;
    /* no data for what must be computed */
    effdim_compare_inputs in = {t.c, "net.h5", NULL, NULL, NULL, NULL, NULL, NULL};
    CHECK_STATUS(effdim_compare_compute(&in, &p, &f, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "net.h5", "no data");
    /* a spectrum of another network */
    effdim_spectrum s;
    effdim_spectrum_init(&s);
    double eig[2] = {2.0, 1.0};
    s.n_params = 61;
    s.k = 2;
    s.eigenvalues = eig;
    snprintf(s.reduction, sizeof s.reduction, "mean");
    in.spectrum = &s;
    in.spectrum_path = "other.h5";
    in.data = t.ds;
    CHECK_STATUS(effdim_compare_compute(&in, &p, &f, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "other.h5", "n_params 61", "77 parameters");
    /* a trace method that is not one effdim writes never reaches the table */
    s.n_params = 77;
    s.has_trace = 1;
    snprintf(s.trace_method, sizeof s.trace_method, "x'\n!touch PWNED");
    CHECK_STATUS(effdim_compare_compute(&in, &p, &f, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "other.h5", "/trace", "not hutchinson or hutch++");
    /* a method compare does not compute */
    in.spectrum = NULL;
    p.methods = "hutchinson";
    CHECK_STATUS(effdim_compare_compute(&in, &p, &f, NULL, &err), EFFDIM_EINVAL, &err);
    CHECK_MSG(&err, "hutchinson", "not computed by compare");
    CHECK(f == NULL);
    net_free(&t);
}


/* The dense matrix (P, P) of the network's Hessian or GGN, by products with
 * the unit vectors, symmetrised. */
static double *dense_curvature(const effdim_checkpoint *c, const effdim_dataset *ds,
                               effdim_curvature curv)
{
    effdim_error err;
    size_t P = c->mlp.n_params;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.method = EFFDIM_HVP_EXACT;
    hp.curvature = curv;
    effdim_operator *op = NULL;
    double *E = calloc(P * P, sizeof(double)), *A = calloc(P * P, sizeof(double));
    int ok = E && A &&
             CHECK_OK(effdim_hvp_operator(&c->mlp, c->theta, ds, NULL, ds->n, &hp, NULL, &op, &err),
                      &err);
    for (size_t j = 0; ok && j < P; ++j) E[j * P + j] = 1.0;
    ok = ok && CHECK_OK(effdim_operator_apply(op, P, E, P, A, P, &err), &err);
    for (size_t i = 0; ok && i < P; ++i)
        for (size_t j = 0; j < i; ++j) A[i * P + j] = A[j * P + i] = 0.5 * (A[i * P + j] + A[j * P + i]);
    effdim_operator_free(op);
    free(E);
    if (!ok) {
        free(A);
        return NULL;
    }
    return A;
}

/* A spectrum of op "ggn" or "hessian" from the dense eigenvalues w (P,
 * descending): the top k (which = top), or top kt and bottom kb (both). */
static void spectrum_of(effdim_spectrum *s, const char *op, const double *w, size_t P, size_t kt,
                        size_t kb, double *eig, unsigned char *conv)
{
    effdim_spectrum_init(s);
    for (size_t i = 0; i < kt; ++i) eig[i] = w[i];
    for (size_t i = 0; i < kb; ++i) eig[kt + i] = w[P - kb + i];
    for (size_t i = 0; i < kt + kb; ++i) conv[i] = 1;
    s->n_params = P;
    s->k = kt + kb;
    s->eigenvalues = eig;
    s->converged = conv;
    snprintf(s->op, sizeof s->op, "%s", op);
    snprintf(s->which, sizeof s->which, "%s", kb ? "both" : "top");
    snprintf(s->reduction, sizeof s->reduction, "mean");
    snprintf(s->neg_policy, sizeof s->neg_policy, "zero");
}

static void test_psd_bound_only_where_it_holds(void)
{
    effdim_error err;
    size_t sizes[] = {3, 8, 3};
    effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    effdim_mlp m;
    effdim_checkpoint *c = NULL;
    effdim_dataset *ds = testnet_data(60, 3, 3, EFFDIM_TARGET_LABELS, 5);
    if (!ds || !CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY,
                                         EFFDIM_REDUCTION_MEAN, &err), &err) ||
        !CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &c, &err), &err) ||
        !CHECK_OK(effdim_mlp_init_params(&m, c->theta, EFFDIM_INIT_TORCH, 3, &err), &err)) {
        effdim_dataset_free(ds);
        effdim_checkpoint_free(c);
        return;
    }
    for (size_t j = 0; j < m.n_params; ++j) c->theta[j] *= 3.1;
    size_t P = m.n_params; /* 59 */
    double *H = dense_curvature(c, ds, EFFDIM_CURV_HESSIAN);
    double *G = dense_curvature(c, ds, EFFDIM_CURV_GGN);
    double *wh = malloc(P * sizeof(double)), *wg = malloc(P * sizeof(double));
    double eig[8], z[4] = {0.001, 0.01, 0.1, 1.0}, exact[4];
    unsigned char conv[8];
    effdim_compare_file *f = NULL;
    if (!H || !G || !wh || !wg || !CHECK_OK(effdim_dense_eigenvalues(P, H, wh, &err), &err) ||
        !CHECK_OK(effdim_dense_eigenvalues(P, G, wg, &err), &err))
        goto done;
    /* the oracle: this relu Hessian is indefinite, its diagonal (= the GGN's) is not */
    check_note("relu Hessian: smallest eigenvalue %.3g, largest %.3g", wh[P - 1], wh[0]);
    CHECK(wh[P - 1] < -1e-6 * wh[0]);
    double dmin = 0.0;
    for (size_t j = 0; j < P; ++j) dmin = fmin(dmin, H[j * P + j]);
    CHECK(dmin >= 0.0);
    effdim_compare_params p = effdim_compare_default_params();
    p.z = z;
    p.nz = 4;
    effdim_compare_inputs in = {c, "relu.h5", ds, "test", NULL, NULL, NULL, NULL};
    /* 1. the Hessian's top 6: no bound, though the exact diagonal is >= 0 */
    effdim_spectrum s;
    spectrum_of(&s, "hessian", wh, P, 6, 0, eig, conv);
    in.spectrum = &s;
    in.spectrum_path = "h.h5";
    if (CHECK_OK(effdim_compare_compute(&in, &p, &f, NULL, &err), &err))
        CHECK(f->n_eff_upper_psd == NULL && f->curve_bound == NULL && f->has_trace_exact);
    effdim_compare_file_free(f);
    f = NULL;
    /* 2. its top 4 and bottom 2: the smallest is negative, still no bound */
    spectrum_of(&s, "hessian", wh, P, 4, 2, eig, conv);
    if (CHECK_OK(effdim_compare_compute(&in, &p, &f, NULL, &err), &err))
        CHECK(f->n_eff_upper_psd == NULL);
    effdim_compare_file_free(f);
    f = NULL;
    /* 3. the GGN's top 6 with the exact GGN diagonal: the bound holds, and the
     * dense whole-spectrum N_eff lies between the top-6 sum and it */
    spectrum_of(&s, "ggn", wg, P, 6, 0, eig, conv);
    if (CHECK_OK(effdim_neff_dense(P, G, z, 4, EFFDIM_NEG_ZERO, exact, NULL, &err), &err) &&
        CHECK_OK(effdim_compare_compute(&in, &p, &f, NULL, &err), &err) &&
        CHECK(f->n_eff_upper_psd && f->curve_bound))
        for (size_t i = 0; i < 4; ++i) {
            check_note("z = %g: top-6 %.4f <= exact %.4f <= bound %.4f", z[i], f->n_eff[i],
                       exact[i], f->n_eff_upper_psd[i]);
            CHECK(f->n_eff[i] <= exact[i] * (1 + 1e-12) &&
                  exact[i] <= f->n_eff_upper_psd[i] * (1 + 1e-12));
        }
    effdim_compare_file_free(f);
    f = NULL;
    /* 4. a Hessian shifted to be PSD (its bottom eigenvalue known >= 0): bound */
    for (size_t i = 0; i < P; ++i) wh[i] = fmax(wg[i], 0.0); /* a PSD spectrum, read as a Hessian's */
    spectrum_of(&s, "hessian", wh, P, 4, 2, eig, conv);
    if (CHECK(wh[P - 1] >= 0.0) && CHECK_OK(effdim_compare_compute(&in, &p, &f, NULL, &err), &err))
        CHECK(f->n_eff_upper_psd != NULL);
done:
    effdim_compare_file_free(f);
    free(H);
    free(G);
    free(wh);
    free(wg);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(c);
}

CHECK_TESTS({"the PSD bound is given for the GGN and a PSD Hessian, never for an indefinite one",
             test_psd_bound_only_where_it_holds},
            {"the diag job's vectors are the estimators' and its file reads back bitwise",
             test_diag_job_round_trip},
            {"Hutchinson reports probes, time left and stops when asked", test_hutchinson_progress},
            {"diag files with unknown names or hostile attributes are refused",
             test_hostile_diag_files},
            {"the compare job's file reads back bitwise and a saved spectrum reproduces it",
             test_compare_job_round_trip},
            {"the compare job refuses missing data, another network and uncomputable methods",
             test_compare_job_errors})
