/* lib/diag_job.c: the diag job, what `effdim diag` runs (effdim/diag.h):
 * each requested estimator over a checkpoint's training loss, with the
 * attributes that say how it was made, into an effdim_diag_file that
 * effdim_diag_file_save writes. The estimators themselves are lib/diag.c's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/diag.h"
#include "effdim/hvp.h"
#include "effdim/sha256.h"
#include "effdim/spectrum.h"
#include "internal.h"

effdim_diag_job_params effdim_diag_job_default_params(void)
{
    effdim_diag_job_params p;
    memset(&p, 0, sizeof p);
    p.diag = effdim_diag_default_params();
    p.hutchinson = effdim_hutchinson_diag_default_params();
    p.hutchinson.max_probes = 64;
    p.hutchinson.min_probes = 10;
    p.hutchinson.block = 8;
    p.hutchinson.rel_se = 0.0;
    p.hvp_method = EFFDIM_HVP_EXACT;
    return p;
}

int effdim_diag_job_needs_data(const effdim_diag_method *methods, size_t n_methods)
{
    for (size_t i = 0; methods && i < n_methods; ++i)
        if (methods[i] != EFFDIM_DIAG_ADAM && methods[i] != EFFDIM_DIAG_IVON) return 1;
    return 0;
}

effdim_status effdim_diag_job_check(const effdim_checkpoint *c, const char *path,
                                    const effdim_dataset *ds, const effdim_diag_method *methods,
                                    size_t n_methods, const effdim_diag_job_params *p,
                                    effdim_error *err)
{
    RETURN_ERROR_IF(!c || !p || (n_methods && !methods), err, EFFDIM_EINVAL,
                    "diag: NULL checkpoint, parameters or methods");
    RETURN_ERROR_IF(!ds && effdim_diag_job_needs_data(methods, n_methods), err, EFFDIM_EINVAL,
                    "%s: no data for the diagonals; give the data set", path ? path : "checkpoint");
    effdim_status st = EFFDIM_OK;
    size_t n = ds ? ds->n : 0;
    if (ds && effdim_comm_size(p->comm) > 1) { /* the rows of every rank */
        double all = (double)n;
        st = effdim_comm_sum(p->comm, &all, 1, EFFDIM_OK, err);
        n = (size_t)all;
    }
    double *tmp = NULL;
    for (size_t i = 0; !st && i < n_methods; ++i) {
        if (methods[i] == EFFDIM_DIAG_GGN_MC && effdim_comm_size(p->comm) > 1)
            st = effdim_error_set(err, EFFDIM_EINVAL,
                                  "diag: ggn-mc runs on one process only (%d ranks): its label "
                                  "samples follow one process's row order; use ggn",
                                  effdim_comm_size(p->comm));
        if (methods[i] == EFFDIM_DIAG_HESSIAN) st = effdim_diag_hessian_check(&c->mlp, &p->diag, err);
        if (methods[i] == EFFDIM_DIAG_ADAM) /* no outputs: the checks only */
            st = effdim_diag_adam(c, path, p->batch, n, NULL, NULL, NULL, NULL, err);
        if (methods[i] == EFFDIM_DIAG_IVON) {
            if (!tmp && !(tmp = effdim_alloc(c->mlp.n_params, sizeof(double), "ivon", err)))
                return EFFDIM_ENOMEM;
            st = effdim_diag_ivon(c, path, n, tmp, err);
        }
    }
    free(tmp);
    return st;
}

/* ---- one run ---- */

typedef struct djob {
    const effdim_checkpoint *c;
    const char *path;
    const effdim_dataset *ds;
    const effdim_diag_job_params *p;
    effdim_diag_file *f;
    effdim_mlp_ws *ws;
    double t0;        /* start of the job, for the "diag" stage's events */
    size_t n_all;     /* rows over every rank (ds->n on one process) */
    effdim_progress progress; /* p->progress, collective over the ranks */
} djob;

static effdim_diag_entry *new_entry(djob *J, const char *name, const char *method,
                                    const char *reading, int with_se, effdim_error *err)
{
    if (J->f->count >= EFFDIM_DIAG_MAX_ENTRIES) {
        effdim_error_set(err, EFFDIM_EINTERNAL, "diag: more than %d results",
                         EFFDIM_DIAG_MAX_ENTRIES);
        return NULL;
    }
    effdim_diag_entry *e = &J->f->entries[J->f->count];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->method, sizeof e->method, "%s", method);
    snprintf(e->reading, sizeof e->reading, "%s", reading);
    e->scale = J->f->scale;
    e->trace_se = (double)NAN;
    size_t P = J->c->mlp.n_params;
    e->v = effdim_alloc(P, sizeof(double), name, err);
    e->se = with_se && e->v ? effdim_alloc(P, sizeof(double), name, err) : NULL;
    if (!e->v || (with_se && !e->se)) {
        free(e->v);
        free(e->se);
        e->v = e->se = NULL;
        return NULL;
    }
    ++J->f->count;
    return e;
}

static effdim_diag_attr *next_attr(effdim_diag_entry *e, const char *k, effdim_diag_attr_kind kind)
{
    if (e->n_attrs >= EFFDIM_DIAG_MAX_ATTRS) return NULL;
    effdim_diag_attr *a = &e->attrs[e->n_attrs++];
    memset(a, 0, sizeof *a);
    snprintf(a->key, sizeof a->key, "%s", k);
    a->kind = kind;
    return a;
}

static void add_real(effdim_diag_entry *e, const char *k, double v)
{
    effdim_diag_attr *a = next_attr(e, k, EFFDIM_DIAG_ATTR_REAL);
    if (a) a->real = v;
    if (!strcmp(k, "trace_se")) e->trace_se = v;
}

static void add_int(effdim_diag_entry *e, const char *k, int64_t v)
{
    effdim_diag_attr *a = next_attr(e, k, EFFDIM_DIAG_ATTR_INT);
    if (a) a->integer = v;
}

static void add_text(effdim_diag_entry *e, const char *k, const char *v)
{
    effdim_diag_attr *a = next_attr(e, k, EFFDIM_DIAG_ATTR_STRING);
    if (a) snprintf(a->text, sizeof a->text, "%s", v);
}

static effdim_status run_hutchinson(djob *J, effdim_diag_entry *e, effdim_error *err)
{
    const effdim_mlp *m = &J->c->mlp;
    effdim_hvp_params hp = effdim_hvp_default_params();
    hp.method = J->p->hvp_method;
    effdim_operator *op = NULL;
    effdim_status st = effdim_hvp_operator_comm(m, J->c->theta, J->ds, &hp, J->ws, J->p->comm, &op,
                                                NULL, err);
    if (st) return st;
    effdim_hutchinson_diag_params hpar = J->p->hutchinson;
    hpar.progress = J->progress;
    effdim_hutchinson_diag_result hr;
    memset(&hr, 0, sizeof hr);
    st = effdim_diag_hutchinson(op, &hpar, e->v, e->se, &hr, err);
    effdim_operator_free(op);
    int stopped = err ? strstr(err->msg, "interrupted") != NULL
                      : hr.probes < hpar.max_probes && !(hpar.rel_se > 0.0);
    if (st == EFFDIM_EMAXITER && stopped) return st;
    if (st == EFFDIM_EMAXITER) st = EFFDIM_OK; /* partial results are still results */
    if (st) return st;
    add_int(e, "probes", (int64_t)hr.probes);
    add_real(e, "rel_se", hr.rel_se);
    add_real(e, "rel_se_target", hpar.rel_se);
    add_real(e, "trace", hr.trace);
    add_real(e, "trace_se", hr.trace_se);
    add_int(e, "seed", (int64_t)hpar.seed);
    add_int(e, "converged", hr.converged);
    add_text(e, "probe", effdim_probe_kind_name(hpar.probe));
    add_text(e, "hvp_method", effdim_hvp_method_name(hp.method));
    return EFFDIM_OK;
}

static effdim_status run_adam(djob *J, effdim_error *err)
{
    const effdim_checkpoint *c = J->c;
    size_t n = J->n_all;
    double t0 = effdim_now();
    effdim_diag_entry *b = new_entry(J, "adam", "adam",
                                     "sqrt(v_hat), BADAM's reading of Adam's preconditioner as the "
                                     "curvature of the mean loss", 0, err);
    effdim_diag_entry *v = b ? new_entry(J, "adam-vhat", "adam",
                                         "v_hat = exp_avg_sq / (1 - beta2^t), PyTorch's "
                                         "bias-corrected second moment (squared gradient units, "
                                         "not rescaled)", 0, err)
                             : NULL;
    effdim_diag_entry *e = v ? new_entry(J, "adam-ef", "adam",
                                         "B (N-1)/(N-B) v_hat, the empirical-Fisher reading "
                                         "(assumes a near-zero mean gradient over the averaging "
                                         "window)", 0, err)
                             : NULL;
    if (!e) return EFFDIM_ENOMEM;
    int ef_ok = 0;
    effdim_status st = effdim_diag_adam(c, J->path, J->p->batch, n, v->v, b->v, e->v, &ef_ok, err);
    if (st) return st;
    if (!ef_ok) { /* no ef reading: drop it */
        free(e->v);
        e->v = NULL;
        --J->f->count;
    }
    double beta2 = NAN; /* present: effdim_diag_adam refuses a checkpoint without it */
    effdim_checkpoint_hparam(c, "beta2", &beta2);
    int64_t t = c->optimizer->step;
    const effdim_checkpoint_attr *ba = effdim_checkpoint_training_attr(c, "batch");
    int64_t batch = J->p->batch ? (int64_t)J->p->batch
                    : ba && !ba->is_string && ba->n == 1 ? (int64_t)ba->num[0] : 0;
    effdim_diag_entry *rs[3] = {b, v, e};
    for (size_t i = 0; i < (ef_ok ? 3u : 2u); ++i) {
        effdim_diag_entry *r = rs[i];
        r->seconds = effdim_now() - t0;
        add_real(r, "beta2", beta2);
        add_int(r, "step", t);
        add_int(r, "batch", batch);
        add_int(r, "n_train", (int64_t)n);
        add_text(r, "optimizer", c->optimizer->name);
    }
    return EFFDIM_OK;
}

static const char *const readings[EFFDIM_DIAG_N_METHODS] = {
    "exact generalised Gauss-Newton diagonal, s sum_i diag(J_i^T H_i J_i)",
    "Monte-Carlo GGN diagonal from labels sampled from the model's predictive",
    "empirical Fisher diagonal, s sum_i g_i^2 with g_i the per-sample loss gradient "
    "(s = 1/N for the mean loss)",
    "",
    "Hutchinson's estimate mean_p v_p * (H v_p) of the Hessian diagonal",
    "exact Hessian diagonal by Hessian backpropagation",
    "IVON's Hessian estimate h (/optimizer/hess) at the loss scale"};

static effdim_status run_method(djob *J, effdim_diag_method meth, effdim_error *err)
{
    const effdim_checkpoint *c = J->c;
    const effdim_mlp *m = &c->mlp;
    effdim_diag_params p = J->p->diag;
    size_t n = J->ds ? J->ds->n : 0; /* this rank's rows */
    if (meth == EFFDIM_DIAG_ADAM) return run_adam(J, err);
    int with_se = meth == EFFDIM_DIAG_HUTCHINSON || meth == EFFDIM_DIAG_GGN_MC;
    const char *name = effdim_diag_method_name(meth);
    effdim_diag_entry *r = new_entry(J, name, name, readings[meth], with_se, err);
    if (!r) return EFFDIM_ENOMEM;
    double t0 = effdim_now();
    effdim_status st = EFFDIM_OK;
    switch (meth) {
    case EFFDIM_DIAG_GGN: st = effdim_diag_ggn(m, c->theta, J->ds, NULL, n, &p, r->v, J->ws, err); break;
    case EFFDIM_DIAG_EF: st = effdim_diag_ef(m, c->theta, J->ds, NULL, n, &p, r->v, J->ws, err); break;
    case EFFDIM_DIAG_GGN_MC:
        st = effdim_diag_ggn_mc(m, c->theta, J->ds, NULL, n, &p, r->v, r->se, J->ws, err);
        add_int(r, "samples", (int64_t)p.mc_samples);
        add_int(r, "groups", (int64_t)p.mc_groups);
        add_int(r, "seed", (int64_t)p.seed);
        break;
    case EFFDIM_DIAG_HESSIAN: {
        size_t nf = 0;
        double cost = effdim_diag_hessian_cost(m, &nf);
        st = effdim_diag_hessian(m, c->theta, J->ds, NULL, n, &p, r->v, J->ws, err);
        add_real(r, "cost_gradients", cost);
        add_int(r, "factors", (int64_t)nf);
        break;
    }
    case EFFDIM_DIAG_HUTCHINSON: st = run_hutchinson(J, r, err); break;
    case EFFDIM_DIAG_IVON: st = effdim_diag_ivon(c, J->path, J->n_all, r->v, err); break;
    case EFFDIM_DIAG_ADAM: break;
    }
    /* sums over rows (ggn, ef, hessian): the ranks' shares, weighted to the global scale */
    if (effdim_comm_size(J->p->comm) > 1 &&
        (meth == EFFDIM_DIAG_GGN || meth == EFFDIM_DIAG_EF || meth == EFFDIM_DIAG_HESSIAN)) {
        double w = effdim_mlp_share_weight(m, n, J->n_all);
        if (!st && w != 1.0)
            for (size_t i = 0; i < m->n_params; ++i) r->v[i] *= w;
        st = effdim_comm_sum(J->p->comm, r->v, m->n_params, st, err);
    }
    r->seconds = effdim_now() - t0;
    return effdim_comm_agree(J->p->comm, st, err);
}

static effdim_status fill_root(djob *J, const char *data_spec, effdim_error *err)
{
    const effdim_mlp *m = &J->c->mlp;
    effdim_diag_file *f = J->f;
    size_t n = J->n_all;
    if (!J->path || effdim_sha256_file(J->path, f->checkpoint_sha256, NULL))
        f->checkpoint_sha256[0] = '\0';
    f->checkpoint = effdim_strdup(J->path ? J->path : "", err);
    f->data_spec = effdim_strdup(data_spec ? data_spec : "", err);
    f->command_line = effdim_strdup(J->p->command_line ? J->p->command_line : "", err);
    f->entries = effdim_calloc(EFFDIM_DIAG_MAX_ENTRIES, sizeof *f->entries, "entries", err);
    if (!f->checkpoint || !f->data_spec || !f->command_line || !f->entries) return EFFDIM_ENOMEM;
    f->n = n;
    f->n_params = m->n_params;
    f->seed = J->p->seed;
    f->scale = effdim_mlp_loss_scale(m, n);
    snprintf(f->loss, sizeof f->loss, "%s", effdim_loss_name(m->loss));
    snprintf(f->reduction, sizeof f->reduction, "%s", effdim_reduction_name(m->reduction));
    f->n_layers = m->n_layers;
    for (size_t l = 0; l < m->n_layers; ++l) {
        size_t o, sz;
        effdim_mlp_layer_block(m, l, &o, &sz);
        f->layer_offsets[l] = o;
        f->layer_params[l] = sz;
    }
    return EFFDIM_OK;
}

effdim_status effdim_diag_job_run(const effdim_checkpoint *c, const char *path,
                                  const effdim_dataset *ds, const char *data_spec,
                                  const effdim_diag_method *methods, size_t n_methods,
                                  const effdim_diag_job_params *p, effdim_diag_file **out,
                                  effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "diag: NULL output");
    *out = NULL;
    effdim_status st = effdim_diag_job_check(c, path, ds, methods, n_methods, p, err);
    if (st) return st;
    djob J = {c, path, ds, p, NULL, NULL, effdim_progress_clock(), ds ? ds->n : 0, p->progress};
    effdim_comm_progress_state ps;
    J.progress = effdim_comm_progress(&ps, p->comm, p->progress);
    if (ds && effdim_comm_size(p->comm) > 1) {
        double all = (double)ds->n;
        if ((st = effdim_comm_sum(p->comm, &all, 1, EFFDIM_OK, err))) return st;
        J.n_all = (size_t)all;
    }
    J.f = effdim_calloc(1, sizeof *J.f, "diag file", err);
    if (!J.f) st = EFFDIM_ENOMEM;
    if (!st) st = fill_root(&J, data_spec, err);
    if (!st && ds && !(J.ws = effdim_mlp_ws_alloc(&c->mlp, p->chunk, err)))
        st = err && err->code ? err->code : EFFDIM_ENOMEM;
    st = effdim_comm_agree(p->comm, st, err);
    for (size_t i = 0; !st && i < n_methods; ++i) {
        if (methods[i] != EFFDIM_DIAG_HUTCHINSON &&
            effdim_progress_report(&J.progress, "diag", J.t0, i, n_methods, -1.0, "%s",
                                   effdim_diag_method_name(methods[i])))
            st = effdim_error_set(err, EFFDIM_EMAXITER, "diag: interrupted");
        if (!st) st = run_method(&J, methods[i], err);
    }
    effdim_mlp_ws_free(J.ws);
    if (st) {
        effdim_diag_file_free(J.f);
        return st;
    }
    *out = J.f;
    return EFFDIM_OK;
}
