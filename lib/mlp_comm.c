/* lib/mlp_comm.c: the loss, gradient and evaluation of a network over rows
 * shared out between MPI ranks (effdim_mlp_loss_grad_comm and
 * effdim_mlp_evaluate_comm in effdim/mlp.h). */
#include <math.h>
#include <string.h>

#include "effdim/mlp.h"
#include "internal.h"

double effdim_mlp_share_weight(const effdim_mlp *m, size_t n_rows, size_t n_all)
{
    return m->reduction == EFFDIM_REDUCTION_MEAN ? (double)n_rows / (double)n_all : 1.0;
}

effdim_status effdim_mlp_loss_grad_comm(const effdim_mlp *m, const double *theta,
                                        const effdim_dataset *ds, const size_t *rows,
                                        size_t n_rows, size_t n_all, effdim_comm *comm,
                                        double *loss, double *grad, effdim_mlp_ws *ws,
                                        effdim_error *err)
{
    if (effdim_comm_size(comm) <= 1)
        return effdim_mlp_loss_grad(m, theta, ds, rows, n_rows, loss, grad, ws, err);
    effdim_status st = EFFDIM_OK;
    if (!m || !(n_all >= n_rows) || !n_all)
        st = effdim_error_set(err, EFFDIM_EINVAL,
                              "loss over ranks: %zu local rows of %zu in all (NULL network?)",
                              n_rows, n_all);
    double l = 0.0;
    if (!st && n_rows) st = effdim_mlp_loss_grad(m, theta, ds, rows, n_rows, &l, grad, ws, err);
    else if (!st && grad) memset(grad, 0, m->n_params * sizeof *grad);
    double w = st ? 1.0 : effdim_mlp_share_weight(m, n_rows, n_all);
    l *= w;
    if (!st && grad && w != 1.0)
        for (size_t i = 0; i < m->n_params; ++i) grad[i] *= w;
    if (grad) st = effdim_comm_sum(comm, grad, m->n_params, st, err);
    st = effdim_comm_sum(comm, &l, 1, st, err);
    if (!st && loss) *loss = l;
    return st;
}

effdim_status effdim_mlp_evaluate_comm(const effdim_mlp *m, const double *theta,
                                       const effdim_dataset *ds, const size_t *rows,
                                       size_t n_rows, size_t n_all, effdim_comm *comm,
                                       double *loss, double *accuracy, effdim_mlp_ws *ws,
                                       effdim_error *err)
{
    if (effdim_comm_size(comm) <= 1)
        return effdim_mlp_evaluate(m, theta, ds, rows, n_rows, loss, accuracy, ws, err);
    effdim_status st = EFFDIM_OK;
    if (!m || !(n_all >= n_rows) || !n_all)
        st = effdim_error_set(err, EFFDIM_EINVAL,
                              "evaluation over ranks: %zu local rows of %zu in all (NULL network?)",
                              n_rows, n_all);
    double v[2] = {0.0, 0.0};
    if (!st && n_rows) st = effdim_mlp_evaluate(m, theta, ds, rows, n_rows, &v[0], &v[1], ws, err);
    if (!st) {
        v[0] *= effdim_mlp_share_weight(m, n_rows, n_all);
        v[1] *= (double)n_rows / (double)n_all; /* a fraction of rows: always the mean */
    }
    st = effdim_comm_sum(comm, v, 2, st, err);
    if (!st) {
        if (loss) *loss = v[0];
        if (accuracy) *accuracy = v[1];
    }
    return st;
}
