/* lib/posterior_io.c: the posterior file (format "effdim.posterior",
 * version 1; effdim/posterior.h lists the layout, docs/file-formats.md
 * documents every field).
 *
 * The file carries the network description (layer_sizes, activations, loss,
 * reduction as root attributes, the checkpoint's own spelling) so that
 * `effdim predict` needs nothing else: the mean is a parameter vector in
 * theta order. Writing is atomic (lib/h5io.h). Reading checks the format
 * name and version, every shape against n_params and k, and recomputes the
 * derived factor (effdim_posterior_finalize), so a file whose precision is
 * not positive is refused with the entry named.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "effdim/posterior.h"
#include "effdim/prune.h"
#include "h5io.h"
#include "internal.h"

static effdim_status put_str(hid_t g, const char *name, const char *v, effdim_error *err)
{
    return effdim_h5_attr_write_string(g, name, v ? v : "", err);
}

/* format, format_version, version and created: the root convention */
static effdim_status put_header(hid_t f, const char *format, int64_t version, effdim_error *err)
{
    char created[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    effdim_status st = put_str(f, "format", format, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "format_version", version, err);
    if (!st) st = put_str(f, "version", effdim_version(), err);
    if (!st) st = put_str(f, "created", created, err);
    return st;
}

/* The root's format and format_version against what this reader knows. */
static effdim_status check_header(hid_t f, const char *path, const char *format, int64_t known,
                                  effdim_error *err)
{
    char fmt[64] = "";
    effdim_h5_attr_read_string(f, "format", fmt, sizeof fmt, NULL);
    RETURN_ERROR_IF(strcmp(fmt, format), err, EFFDIM_EFORMAT, "%s: /: format '%s', expected '%s'",
                    path, fmt, format);
    int64_t ver = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "format_version", &ver, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'format_version' is missing", path);
    RETURN_ERROR_IF(ver > known, err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%lld)", path,
                    (long long)ver, (long long)known);
    return EFFDIM_OK;
}

static effdim_status write_root(hid_t f, const effdim_posterior *p, effdim_error *err)
{
    const effdim_mlp *m = &p->mlp;
    int64_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    const char *acts[EFFDIM_MLP_MAX_LAYERS];
    for (size_t l = 0; l <= m->n_layers; ++l) sizes[l] = (int64_t)m->sizes[l];
    for (size_t l = 0; l < m->n_layers; ++l) acts[l] = effdim_activation_name(m->act[l]);
    effdim_status st = put_header(f, EFFDIM_POSTERIOR_FORMAT, EFFDIM_POSTERIOR_VERSION, err);
    if (!st) st = put_str(f, "method", effdim_post_method_name(p->method), err);
    if (!st) st = put_str(f, "prior", effdim_prior_mode_name(p->prior_mode), err);
    if (!st) st = effdim_h5_attr_write_double(f, "prior_precision", p->prior_precision, err);
    if (!st) st = effdim_h5_attr_write_double(f, "N", p->N, err);
    if (!st) st = effdim_h5_attr_write_double(f, "noise_var", p->noise_var, err);
    if (!st)
        st = effdim_h5_attr_write_int64(f, "evidence_iterations", (int64_t)p->evidence_iterations,
                                        err);
    if (!st) st = effdim_h5_attr_write_int64(f, "evidence_converged", p->evidence_converged, err);
    if (!st) st = effdim_h5_attr_write_double(f, "gamma", p->gamma, err);
    if (!st) st = effdim_h5_attr_write_double(f, "log_evidence", p->log_evidence, err);
    if (!st) st = effdim_h5_attr_write_double(f, "log_det", p->log_det, err);
    if (!st) st = put_str(f, "checkpoint", p->checkpoint, err);
    if (!st) st = put_str(f, "checkpoint_sha256", p->checkpoint_sha256, err);
    if (!st) st = put_str(f, "data_spec", p->data_spec, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_params", (int64_t)p->P, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "k", (int64_t)p->k, err);
    if (!st) st = effdim_h5_attr_write_int64s(f, "layer_sizes", sizes, m->n_layers + 1, err);
    if (!st) st = effdim_h5_attr_write_strings(f, "activations", acts, m->n_layers, err);
    if (!st) st = put_str(f, "loss", effdim_loss_name(m->loss), err);
    if (!st) st = put_str(f, "reduction", effdim_reduction_name(m->reduction), err);
    return st;
}

static effdim_status write_body(hid_t f, const effdim_posterior *p, effdim_error *err)
{
    hid_t g, lr;
    effdim_status st = effdim_h5_group(f, "posterior", &g, err);
    if (st) return st;
    size_t d1[1] = {p->P}, d2[2] = {p->k, p->P}, dk[1] = {p->k}, dg[1] = {p->grid_n};
    st = effdim_h5_write_doubles(g, "mean", 1, d1, p->mean, err);
    if (!st) st = effdim_h5_write_doubles(g, "var", 1, d1, p->var, err);
    if (!st) st = effdim_h5_write_doubles(g, "prec_diag", 1, d1, p->prec_diag, err);
    if (!st && p->k) {
        st = effdim_h5_group(g, "lowrank", &lr, err);
        if (!st) {
            st = effdim_h5_write_doubles(lr, "U", 2, d2, p->U, err);
            if (!st) st = effdim_h5_write_doubles(lr, "s", 1, dk, p->s, err);
            H5Gclose(lr);
        }
    }
    if (!st && p->grid_n) {
        st = effdim_h5_group(g, "grid", &lr, err);
        if (!st) {
            st = effdim_h5_write_doubles(lr, "alpha", 1, dg, p->grid_alpha, err);
            if (!st) st = effdim_h5_write_doubles(lr, "log_evidence", 1, dg, p->grid_log_evidence, err);
            H5Gclose(lr);
        }
    }
    H5Gclose(g);
    return st;
}

effdim_status effdim_posterior_save(const effdim_posterior *p, const char *path, effdim_error *err)
{
    RETURN_ERROR_IF(!p || !path, err, EFFDIM_EINVAL, "posterior save: NULL argument");
    effdim_h5_atomic a;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    st = write_root(a.file, p, err);
    if (!st) st = write_body(a.file, p, err);
    if (!st) return effdim_h5_atomic_commit(&a, err);
    effdim_h5_atomic_abort(&a);
    return st;
}

/* ---- reading ---- */

static effdim_status read_mlp(hid_t f, const char *path, effdim_mlp *m, effdim_error *err)
{
    int64_t sz[EFFDIM_MLP_MAX_LAYERS + 1];
    size_t ns = 0, na = 0;
    effdim_status st = effdim_h5_attr_read_int64s(f, "layer_sizes", sz, EFFDIM_MLP_MAX_LAYERS + 1,
                                                  &ns, err);
    RETURN_ERROR_IF(st || ns < 2, err, EFFDIM_EFORMAT,
                    "%s: /: attribute 'layer_sizes' missing or shorter than 2", path);
    char **acts = NULL;
    st = effdim_h5_attr_read_strings(f, "activations", &acts, &na, err);
    RETURN_ERROR_IF(st, err, EFFDIM_EFORMAT, "%s: /: attribute 'activations' missing", path);
    size_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    effdim_activation act[EFFDIM_MLP_MAX_LAYERS];
    st = na == ns - 1 ? EFFDIM_OK : EFFDIM_EFORMAT;
    for (size_t l = 0; !st && l < ns; ++l) {
        if (sz[l] < 1) st = EFFDIM_EFORMAT;
        sizes[l] = (size_t)sz[l];
    }
    for (size_t l = 0; !st && l < na; ++l)
        if (effdim_activation_parse(acts[l], &act[l], NULL)) st = EFFDIM_EFORMAT;
    effdim_h5_strings_free(acts, na);
    RETURN_ERROR_IF(st, err, EFFDIM_EFORMAT,
                    "%s: /: layer_sizes (%zu) and activations (%zu) do not describe a network",
                    path, ns, na);
    char ls[32], rs[32];
    effdim_loss loss;
    effdim_reduction red;
    RETURN_ERROR_IF(effdim_h5_attr_read_string(f, "loss", ls, sizeof ls, NULL) ||
                        effdim_loss_parse(ls, &loss, NULL),
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'loss' missing or unknown", path);
    RETURN_ERROR_IF(effdim_h5_attr_read_string(f, "reduction", rs, sizeof rs, NULL) ||
                        effdim_reduction_parse(rs, &red, NULL),
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'reduction' missing or unknown", path);
    return effdim_mlp_init(m, ns - 1, sizes, act, loss, red, err);
}

static char *read_opt_string(hid_t f, const char *name)
{
    char buf[EFFDIM_PATH_MAX];
    if (effdim_h5_attr_read_string(f, name, buf, sizeof buf, NULL)) return NULL;
    return buf[0] ? effdim_strdup(buf, NULL) : NULL;
}

static double read_num(hid_t f, const char *name)
{
    double v = NAN;
    if (effdim_h5_attr_read_double(f, name, &v, NULL)) return NAN;
    return v;
}

static effdim_status read_vec(hid_t g, const char *path, const char *name, double *v, size_t n,
                              effdim_error *err)
{
    RETURN_ERROR_IF(!effdim_h5_has_link(g, name), err, EFFDIM_EFORMAT,
                    "%s: /posterior/%s: not found", path, name);
    effdim_status st = effdim_h5_read_doubles(g, name, v, n, err);
    RETURN_ERROR_IF(st, err, EFFDIM_EFORMAT, "%s: /posterior/%s: expected %zu float values", path,
                    name, n);
    return EFFDIM_OK;
}

static effdim_status read_body(hid_t f, const char *path, effdim_posterior **out,
                               effdim_error *err)
{
    int64_t P = 0, k = 0, it = 0, conv = 0;
    effdim_status st = check_header(f, path, EFFDIM_POSTERIOR_FORMAT, EFFDIM_POSTERIOR_VERSION, err);
    if (st) return st;
    effdim_mlp m;
    st = read_mlp(f, path, &m, err);
    if (st) return st;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "n_params", &P, NULL) || P != (int64_t)m.n_params,
                    err, EFFDIM_EFORMAT,
                    "%s: /: n_params %lld, expected %zu for the network in layer_sizes", path,
                    (long long)P, m.n_params);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "k", &k, NULL) || k < 0 || k > P, err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'k' missing or outside [0, n_params]", path);
    char meth[32] = "", prior[32] = "";
    effdim_posterior_method method;
    RETURN_ERROR_IF(effdim_h5_attr_read_string(f, "method", meth, sizeof meth, NULL) ||
                        effdim_post_method_parse(meth, &method, NULL),
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'method' '%s' unknown", path, meth);
    effdim_posterior *p = NULL;
    st = effdim_posterior_alloc(&m, (size_t)k, &p, err);
    if (st) return st;
    p->method = method;
    effdim_h5_attr_read_string(f, "prior", prior, sizeof prior, NULL);
    p->prior_mode = !strcmp(prior, "grid")       ? EFFDIM_PRIOR_GRID
                    : !strcmp(prior, "evidence") ? EFFDIM_PRIOR_EVIDENCE
                                                 : EFFDIM_PRIOR_FIXED;
    p->prior_precision = read_num(f, "prior_precision");
    p->N = read_num(f, "N");
    p->noise_var = read_num(f, "noise_var");
    p->gamma = read_num(f, "gamma");
    p->log_evidence = read_num(f, "log_evidence");
    effdim_h5_attr_read_int64(f, "evidence_iterations", &it, NULL);
    effdim_h5_attr_read_int64(f, "evidence_converged", &conv, NULL);
    p->evidence_iterations = (size_t)it;
    p->evidence_converged = (int)conv;
    char sha[80] = "";
    effdim_h5_attr_read_string(f, "checkpoint_sha256", sha, sizeof sha, NULL);
    if (strlen(sha) == 64) memcpy(p->checkpoint_sha256, sha, 65);
    p->checkpoint = read_opt_string(f, "checkpoint");
    p->data_spec = read_opt_string(f, "data_spec");
    hid_t g = H5Gopen2(f, "posterior", H5P_DEFAULT);
    if (g < 0) {
        effdim_posterior_free(p);
        return effdim_error_set(err, EFFDIM_EFORMAT, "%s: /posterior: not found", path);
    }
    st = read_vec(g, path, "mean", p->mean, p->P, err);
    if (!st) st = read_vec(g, path, "prec_diag", p->prec_diag, p->P, err);
    if (!st && k) st = read_vec(g, path, "lowrank/U", p->U, (size_t)k * p->P, err);
    if (!st && k) st = read_vec(g, path, "lowrank/s", p->s, (size_t)k, err);
    if (!st && effdim_h5_has_link(g, "grid")) {
        int rank;
        size_t dims[EFFDIM_H5_MAX_RANK];
        H5T_class_t cls;
        st = effdim_h5_shape(g, "grid/alpha", &rank, dims, &cls, err);
        if (!st && rank == 1 && dims[0] > 0) {
            p->grid_n = dims[0];
            p->grid_alpha = effdim_alloc(dims[0], sizeof(double), "grid", err);
            p->grid_log_evidence = effdim_alloc(dims[0], sizeof(double), "grid", err);
            if (!p->grid_alpha || !p->grid_log_evidence) st = EFFDIM_ENOMEM;
            if (!st) st = read_vec(g, path, "grid/alpha", p->grid_alpha, dims[0], err);
            if (!st) st = read_vec(g, path, "grid/log_evidence", p->grid_log_evidence, dims[0], err);
        }
    }
    H5Gclose(g);
    if (!st) {
        st = effdim_posterior_finalize(p, err);
        if (st) {
            char msg[EFFDIM_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /posterior: %s", path, msg);
        }
    }
    if (st) {
        effdim_posterior_free(p);
        return st;
    }
    *out = p;
    return EFFDIM_OK;
}

effdim_status effdim_posterior_load(const char *path, effdim_posterior **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "posterior load: NULL argument");
    *out = NULL;
    hid_t f;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (st) return st;
    st = read_body(f, path, out, err);
    H5Fclose(f);
    return st;
}

/* ======================================================================== */
/* the predictions file                                                     */
/* ======================================================================== */

static effdim_status pred_write(hid_t f, const effdim_prediction *r,
                                const effdim_prediction_info *info, effdim_error *err)
{
    const effdim_predict_params *pp = info ? info->params : NULL;
    effdim_status st = put_header(f, EFFDIM_PREDICTIONS_FORMAT, EFFDIM_PREDICTIONS_VERSION, err);
    if (!st) st = put_str(f, "posterior", info ? info->posterior : NULL, err);
    if (!st) st = put_str(f, "data_spec", info ? info->data_spec : NULL, err);
    if (!st) st = put_str(f, "predictive",
                           pp && pp->point ? "point" : pp && pp->linearised ? "linearised" : "mc",
                           err);
    if (!st) st = effdim_h5_attr_write_int64(f, "samples", pp ? (int64_t)pp->samples : 0, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "seed", pp ? (int64_t)pp->seed : 0, err);
    if (!st) st = effdim_h5_attr_write_double(f, "tempering", pp ? pp->tempering : 1.0, err);
    if (!st)
        st = effdim_h5_attr_write_int64(f, "fix_output_layer", pp ? pp->fix_output_layer : 0, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n", (int64_t)r->n, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "K", (int64_t)r->K, err);
    if (!st) st = put_str(f, "task", r->classification ? "classification" : "regression", err);
    if (!st) st = effdim_h5_attr_write_double(f, "accuracy", r->accuracy, err);
    if (!st) st = effdim_h5_attr_write_double(f, "rmse", r->rmse, err);
    if (!st) st = effdim_h5_attr_write_double(f, "nll", r->nll, err);
    if (!st) st = effdim_h5_attr_write_double(f, "ece", r->ece, err);
    if (!st) st = effdim_h5_attr_write_double(f, "brier", r->brier, err);
    if (!st && r->target_mean)
        st = effdim_h5_attr_write_doubles(f, "target_mean", r->target_mean, r->K, err);
    if (!st && r->target_sd)
        st = effdim_h5_attr_write_doubles(f, "target_sd", r->target_sd, r->K, err);
    hid_t g;
    if (!st) st = effdim_h5_group(f, "predictions", &g, err);
    if (st) return st;
    size_t dims[2] = {r->n, r->K};
    st = effdim_h5_write_doubles(g, "mean", 2, dims, r->mean, err);
    if (!st && r->var) st = effdim_h5_write_doubles(g, "var", 2, dims, r->var, err);
    H5Gclose(g);
    return st;
}

effdim_status effdim_prediction_save(const effdim_prediction *r, const effdim_prediction_info *info,
                                     const char *path, effdim_error *err)
{
    RETURN_ERROR_IF(!r || !path, err, EFFDIM_EINVAL, "predictions save: NULL argument");
    effdim_h5_atomic a;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    st = pred_write(a.file, r, info, err);
    if (!st) return effdim_h5_atomic_commit(&a, err);
    effdim_h5_atomic_abort(&a);
    return st;
}

/* target_mean and target_sd (K each): both or neither, sd > 0 */
static effdim_status read_target_stats(hid_t f, const char *path, effdim_prediction *r,
                                       effdim_error *err)
{
    int has_m = effdim_h5_has_attr(f, "target_mean"), has_s = effdim_h5_has_attr(f, "target_sd");
    if (!has_m && !has_s) return EFFDIM_OK;
    RETURN_ERROR_IF(has_m != has_s, err, EFFDIM_EFORMAT,
                    "%s: /: attributes 'target_mean' and 'target_sd' come together", path);
    r->target_mean = effdim_alloc(r->K, sizeof(double), "predictions", err);
    r->target_sd = effdim_alloc(r->K, sizeof(double), "predictions", err);
    if (!r->target_mean || !r->target_sd) return EFFDIM_ENOMEM;
    size_t nm = 0, ns = 0;
    effdim_h5_attr_read_doubles(f, "target_mean", r->target_mean, r->K, &nm, NULL);
    effdim_h5_attr_read_doubles(f, "target_sd", r->target_sd, r->K, &ns, NULL);
    RETURN_ERROR_IF(nm != r->K || ns != r->K, err, EFFDIM_EFORMAT,
                    "%s: /: attributes 'target_mean' and 'target_sd': %zu and %zu values, "
                    "expected K = %zu float64 each",
                    path, nm, ns, r->K);
    for (size_t c = 0; c < r->K; ++c)
        RETURN_ERROR_IF(!isfinite(r->target_mean[c]) || !(r->target_sd[c] > 0.0) ||
                            !isfinite(r->target_sd[c]),
                        err, EFFDIM_EFORMAT,
                        "%s: /: target_mean[%zu] = %g, target_sd[%zu] = %g: expected finite "
                        "values and sd > 0",
                        path, c, r->target_mean[c], c, r->target_sd[c]);
    return EFFDIM_OK;
}

static effdim_status pred_read(hid_t f, const char *path, effdim_prediction **out,
                               effdim_error *err)
{
    effdim_status st =
        check_header(f, path, EFFDIM_PREDICTIONS_FORMAT, EFFDIM_PREDICTIONS_VERSION, err);
    if (st) return st;
    int64_t n = 0, K = 0;
    char task[32] = "";
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "n", &n, NULL) ||
                        effdim_h5_attr_read_int64(f, "K", &K, NULL) || n < 1 || K < 1,
                    err, EFFDIM_EFORMAT, "%s: /: attributes 'n' and 'K' must be >= 1", path);
    effdim_h5_attr_read_string(f, "task", task, sizeof task, NULL);
    effdim_prediction *r = effdim_calloc(1, sizeof *r, "predictions", err);
    if (!r) return EFFDIM_ENOMEM;
    r->n = (size_t)n;
    r->K = (size_t)K;
    r->classification = !strcmp(task, "classification");
    r->accuracy = read_num(f, "accuracy");
    r->rmse = read_num(f, "rmse");
    r->nll = read_num(f, "nll");
    r->ece = read_num(f, "ece");
    r->brier = read_num(f, "brier");
    size_t cnt = r->n * r->K;
    st = read_target_stats(f, path, r, err);
    if (st) {
        effdim_prediction_free(r);
        return st;
    }
    r->mean = effdim_alloc(cnt, sizeof(double), "predictions", err);
    if (!r->classification) r->var = effdim_alloc(cnt, sizeof(double), "predictions", err);
    hid_t g = H5Gopen2(f, "predictions", H5P_DEFAULT);
    st = g < 0 ? effdim_error_set(err, EFFDIM_EFORMAT, "%s: /predictions: not found", path)
         : (!r->mean || (!r->classification && !r->var)) ? EFFDIM_ENOMEM
                                                           : EFFDIM_OK;
    if (!st) st = read_vec(g, path, "mean", r->mean, cnt, err);
    if (!st && r->var) st = read_vec(g, path, "var", r->var, cnt, err);
    if (g >= 0) H5Gclose(g);
    if (st) {
        effdim_prediction_free(r);
        return st;
    }
    *out = r;
    return EFFDIM_OK;
}

effdim_status effdim_prediction_load(const char *path, effdim_prediction **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "predictions load: NULL argument");
    *out = NULL;
    hid_t f;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (st) return st;
    st = pred_read(f, path, out, err);
    H5Fclose(f);
    return st;
}

/* ======================================================================== */
/* the prune file                                                           */
/* ======================================================================== */

const char *effdim_prune_by_name(effdim_prune_by b)
{
    return b == EFFDIM_PRUNE_SNR ? "snr" : b == EFFDIM_PRUNE_MAGNITUDE ? "magnitude" : "?";
}

effdim_status effdim_prune_by_parse(const char *s, effdim_prune_by *b, effdim_error *err)
{
    if (s && !strcmp(s, "snr")) *b = EFFDIM_PRUNE_SNR;
    else if (s && !strcmp(s, "magnitude")) *b = EFFDIM_PRUNE_MAGNITUDE;
    else
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "unknown pruning criterion '%s' (expected snr or magnitude)",
                                s ? s : "(null)");
    return EFFDIM_OK;
}

void effdim_prune_table_free(effdim_prune_table *t)
{
    if (!t) return;
    free(t->fraction);
    for (size_t c = 0; c < EFFDIM_PRUNE_MAX_CRITERIA; ++c) {
        free(t->accuracy[c]);
        free(t->loss[c]);
        free(t->kept[c]);
    }
    free(t->checkpoint);
    free(t->checkpoint_sha256);
    free(t->posterior);
    free(t->test_spec);
    free(t);
}

static effdim_status prune_write(hid_t f, const effdim_prune_table *t, effdim_error *err)
{
    const char *names[EFFDIM_PRUNE_MAX_CRITERIA];
    for (size_t c = 0; c < t->nc; ++c) names[c] = effdim_prune_by_name(t->by[c]);
    effdim_status st = put_header(f, EFFDIM_PRUNE_FORMAT, EFFDIM_PRUNE_VERSION, err);
    if (!st) st = put_str(f, "checkpoint", t->checkpoint, err);
    if (!st) st = put_str(f, "checkpoint_sha256", t->checkpoint_sha256, err);
    if (!st) st = put_str(f, "posterior", t->posterior, err);
    if (!st) st = put_str(f, "test_spec", t->test_spec, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "n_params", (int64_t)t->n_params, err);
    if (!st) st = effdim_h5_attr_write_strings(f, "criteria", names, t->nc, err);
    hid_t g, h;
    if (!st) st = effdim_h5_group(f, "prune", &g, err);
    if (st) return st;
    size_t dims[1] = {t->nf};
    st = effdim_h5_write_doubles(g, "fraction", 1, dims, t->fraction, err);
    int64_t *kept = effdim_alloc(t->nf, sizeof(int64_t), "prune kept", err);
    if (!kept) st = EFFDIM_ENOMEM;
    for (size_t c = 0; !st && c < t->nc; ++c) {
        st = effdim_h5_group(g, names[c], &h, err);
        if (st) break;
        for (size_t i = 0; i < t->nf; ++i) kept[i] = (int64_t)t->kept[c][i];
        st = effdim_h5_write_doubles(h, "accuracy", 1, dims, t->accuracy[c], err);
        if (!st) st = effdim_h5_write_doubles(h, "loss", 1, dims, t->loss[c], err);
        if (!st) st = effdim_h5_write_int64s(h, "kept", 1, dims, kept, err);
        H5Gclose(h);
    }
    free(kept);
    H5Gclose(g);
    return st;
}

effdim_status effdim_prune_save(const effdim_prune_table *t, const char *path, effdim_error *err)
{
    RETURN_ERROR_IF(!t || !path || t->nc == 0 || t->nc > EFFDIM_PRUNE_MAX_CRITERIA || t->nf == 0,
                    err, EFFDIM_EINVAL, "prune save: empty table or NULL argument");
    effdim_h5_atomic a;
    effdim_status st = effdim_h5_atomic_begin(path, &a, err);
    if (st) return st;
    st = prune_write(a.file, t, err);
    if (!st) return effdim_h5_atomic_commit(&a, err);
    effdim_h5_atomic_abort(&a);
    return st;
}

static effdim_status prune_read(hid_t f, const char *path, effdim_prune_table *t,
                                effdim_error *err)
{
    effdim_status st = check_header(f, path, EFFDIM_PRUNE_FORMAT, EFFDIM_PRUNE_VERSION, err);
    if (st) return st;
    char **names = NULL;
    size_t nn = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_strings(f, "criteria", &names, &nn, NULL) || nn == 0 ||
                        nn > EFFDIM_PRUNE_MAX_CRITERIA,
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'criteria' missing or not 1 or 2 names",
                    path);
    for (size_t c = 0; !st && c < nn; ++c)
        if (effdim_prune_by_parse(names[c], &t->by[c], NULL))
            st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /: criterion '%s' unknown", path,
                                  names[c]);
    int64_t np = 0;
    effdim_h5_attr_read_int64(f, "n_params", &np, NULL);
    t->n_params = np > 0 ? (size_t)np : 0;
    t->checkpoint = read_opt_string(f, "checkpoint");
    t->checkpoint_sha256 = read_opt_string(f, "checkpoint_sha256");
    t->posterior = read_opt_string(f, "posterior");
    t->test_spec = read_opt_string(f, "test_spec");
    int rank;
    size_t dims[EFFDIM_H5_MAX_RANK];
    H5T_class_t cls;
    if (!st) st = effdim_h5_shape(f, "prune/fraction", &rank, dims, &cls, err);
    if (!st && (rank != 1 || dims[0] == 0))
        st = effdim_error_set(err, EFFDIM_EFORMAT, "%s: /prune/fraction: expected a 1-D array", path);
    if (!st) {
        t->nf = dims[0];
        t->nc = nn;
        t->fraction = effdim_alloc(t->nf, sizeof(double), "prune", err);
        st = t->fraction ? effdim_h5_read_doubles(f, "prune/fraction", t->fraction, t->nf, err)
                         : EFFDIM_ENOMEM;
    }
    int64_t *kept = st ? NULL : effdim_alloc(t->nf, sizeof(int64_t), "prune", err);
    if (!st && !kept) st = EFFDIM_ENOMEM;
    for (size_t c = 0; !st && c < nn; ++c) {
        char name[96];
        t->accuracy[c] = effdim_alloc(t->nf, sizeof(double), "prune", err);
        t->loss[c] = effdim_alloc(t->nf, sizeof(double), "prune", err);
        t->kept[c] = effdim_alloc(t->nf, sizeof(size_t), "prune", err);
        if (!t->accuracy[c] || !t->loss[c] || !t->kept[c]) st = EFFDIM_ENOMEM;
        snprintf(name, sizeof name, "prune/%s/accuracy", names[c]);
        if (!st) st = effdim_h5_read_doubles(f, name, t->accuracy[c], t->nf, err);
        snprintf(name, sizeof name, "prune/%s/loss", names[c]);
        if (!st) st = effdim_h5_read_doubles(f, name, t->loss[c], t->nf, err);
        snprintf(name, sizeof name, "prune/%s/kept", names[c]);
        if (!st) st = effdim_h5_read_int64s(f, name, kept, t->nf, err);
        for (size_t i = 0; !st && i < t->nf; ++i) t->kept[c][i] = (size_t)kept[i];
    }
    free(kept);
    effdim_h5_strings_free(names, nn);
    return st;
}

effdim_status effdim_prune_load(const char *path, effdim_prune_table **out, effdim_error *err)
{
    RETURN_ERROR_IF(!path || !out, err, EFFDIM_EINVAL, "prune load: NULL argument");
    *out = NULL;
    effdim_prune_table *t = effdim_calloc(1, sizeof *t, "prune table", err);
    if (!t) return EFFDIM_ENOMEM;
    hid_t f;
    effdim_status st = effdim_h5_open_read(path, &f, err);
    if (!st) {
        st = prune_read(f, path, t, err);
        H5Fclose(f);
    }
    if (st) {
        effdim_prune_table_free(t);
        return st;
    }
    *out = t;
    return EFFDIM_OK;
}
