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
#include "h5io.h"
#include "internal.h"

static effdim_status put_str(hid_t g, const char *name, const char *v, effdim_error *err)
{
    return effdim_h5_attr_write_string(g, name, v ? v : "", err);
}

static effdim_status write_root(hid_t f, const effdim_posterior *p, effdim_error *err)
{
    const effdim_mlp *m = &p->mlp;
    int64_t sizes[EFFDIM_MLP_MAX_LAYERS + 1];
    const char *acts[EFFDIM_MLP_MAX_LAYERS];
    for (size_t l = 0; l <= m->n_layers; ++l) sizes[l] = (int64_t)m->sizes[l];
    for (size_t l = 0; l < m->n_layers; ++l) acts[l] = effdim_activation_name(m->act[l]);
    char created[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    effdim_status st = put_str(f, "format", EFFDIM_POSTERIOR_FORMAT, err);
    if (!st) st = effdim_h5_attr_write_int64(f, "format_version", EFFDIM_POSTERIOR_VERSION, err);
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
    if (!st) st = put_str(f, "version", effdim_version(), err);
    if (!st) st = put_str(f, "created", created, err);
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
        if (effdim_activation_parse(acts[l], &act[l])) st = EFFDIM_EFORMAT;
    effdim_h5_strings_free(acts, na);
    RETURN_ERROR_IF(st, err, EFFDIM_EFORMAT,
                    "%s: /: layer_sizes (%zu) and activations (%zu) do not describe a network",
                    path, ns, na);
    char ls[32], rs[32];
    effdim_loss loss;
    effdim_reduction red;
    RETURN_ERROR_IF(effdim_h5_attr_read_string(f, "loss", ls, sizeof ls, NULL) ||
                        effdim_loss_parse(ls, &loss),
                    err, EFFDIM_EFORMAT, "%s: /: attribute 'loss' missing or unknown", path);
    RETURN_ERROR_IF(effdim_h5_attr_read_string(f, "reduction", rs, sizeof rs, NULL) ||
                        effdim_reduction_parse(rs, &red),
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
    char fmt[64] = "";
    effdim_h5_attr_read_string(f, "format", fmt, sizeof fmt, NULL);
    RETURN_ERROR_IF(strcmp(fmt, EFFDIM_POSTERIOR_FORMAT), err, EFFDIM_EFORMAT,
                    "%s: /: format '%s', expected '%s'", path, fmt, EFFDIM_POSTERIOR_FORMAT);
    int64_t ver = 0, P = 0, k = 0, it = 0, conv = 0;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "format_version", &ver, NULL), err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'format_version' is missing", path);
    RETURN_ERROR_IF(ver > EFFDIM_POSTERIOR_VERSION, err, EFFDIM_EVERSION,
                    "%s: /: format_version %lld is newer than this effdim reads (%d)", path,
                    (long long)ver, EFFDIM_POSTERIOR_VERSION);
    effdim_mlp m;
    effdim_status st = read_mlp(f, path, &m, err);
    if (st) return st;
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "n_params", &P, NULL) || P != (int64_t)m.n_params,
                    err, EFFDIM_EFORMAT,
                    "%s: /: n_params %lld, expected %zu for the network in layer_sizes", path,
                    (long long)P, m.n_params);
    RETURN_ERROR_IF(effdim_h5_attr_read_int64(f, "k", &k, NULL) || k < 0 || k > P, err,
                    EFFDIM_EFORMAT, "%s: /: attribute 'k' missing or outside [0, n_params]", path);
    char meth[32] = "", prior[32] = "";
    effdim_post_method method;
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
