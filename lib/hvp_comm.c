/* lib/hvp_comm.c: the curvature operators over rows shared out between MPI
 * ranks (effdim_hvp_operator_comm in effdim/hvp.h). Each rank's operator is
 * the one of lib/hvp.c over its rows; lib/comm.c adds the ranks' products. */
#include <string.h>

#include "comm_internal.h"
#include "effdim/hvp.h"
#include "internal.h"

effdim_status effdim_hvp_operator_comm(const effdim_mlp *m, const double *theta,
                                       const effdim_dataset *ds, const effdim_hvp_params *params,
                                       effdim_mlp_ws *ws, effdim_comm *comm,
                                       effdim_operator **out, effdim_hvp_info *info,
                                       effdim_error *err)
{
    RETURN_ERROR_IF(!out, err, EFFDIM_EINVAL, "hvp operator: NULL output");
    *out = NULL;
    RETURN_ERROR_IF(!m || !ds || !params, err, EFFDIM_EINVAL, "hvp operator: NULL %s",
                    !m ? "network" : !ds ? "data set" : "params");
    effdim_status st;
    if (effdim_comm_size(comm) <= 1) {
        st = effdim_hvp_operator(m, theta, ds, NULL, ds->n, params, ws, out, err);
        if (!st && info) st = effdim_hvp_get_info(*out, info, err);
        if (st) {
            effdim_operator_free(*out);
            *out = NULL;
        }
        return st;
    }
    double n_all = (double)ds->n;
    st = effdim_comm_sum(comm, &n_all, 1, EFFDIM_OK, err);
    if (st) return st;
    effdim_hvp_params local = *params;
    local.prior = 0.0; /* added once, after the sum */
    RETURN_ERROR_IF(!(params->prior >= 0.0), err, EFFDIM_EDOM,
                    "hvp operator: prior %g: expected a finite number >= 0", params->prior);
    effdim_operator *inner = NULL;
    effdim_hvp_info li;
    memset(&li, 0, sizeof li);
    st = effdim_hvp_operator(m, theta, ds, NULL, ds->n, &local, ws, &inner, err);
    if (!st) st = effdim_hvp_get_info(inner, &li, err);
    st = effdim_comm_agree(comm, st, err);
    if (st) {
        effdim_operator_free(inner);
        return st;
    }
    double weight = effdim_mlp_share_weight(m, ds->n, (size_t)n_all);
    st = effdim_comm_operator_make(inner, comm, weight, params->prior, 1, out, err);
    st = effdim_comm_agree(comm, st, err);
    if (st) {
        effdim_operator_free(*out);
        *out = NULL;
        return st;
    }
    if (info) {
        *info = li;
        info->n_rows = (size_t)n_all;
        info->scale = effdim_mlp_loss_scale(m, (size_t)n_all);
        info->prior = params->prior;
    }
    return EFFDIM_OK;
}
