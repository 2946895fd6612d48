/* lib/mlp_jac.c: the Jacobian of the network's outputs with respect to theta,
 * one (K, P) block per input row, for the linearised (GLM) predictive.
 *
 * Algorithm: one ordinary forward pass per chunk of rows (effdim_mlp_forward
 * caches Z_l and A_l), then per row all K output units backpropagated at
 * once: Delta_{L-1} = diag(act'_{L-1}(Z_{L-1})) (K, K), and for each layer l
 * from the top, d out_o / d W_l(u, j) = Delta_l(o, u) A_{l-1}(j),
 * d out_o / d b_l(u) = Delta_l(o, u), Delta_{l-1} = (Delta_l W_l) .*
 * act'_{l-1}(Z_{l-1}) (one K x w_l by w_l x w_{l-1} dgemm). Cost per row:
 * K backward passes of one example, i.e. about K P multiply-adds for the
 * outer products. The layout and activations are effdim_mlp's (mlp.h,
 * mlp_internal.h), so every activation the forward pass knows works here.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/posterior.h"
#include "internal.h"
#include "mlp_internal.h"

effdim_status effdim_mlp_jacobian(const effdim_mlp *m, const double *theta, const double *X,
                                  size_t n, double *J, double *out, effdim_mlp_ws *ws,
                                  effdim_error *err)
{
    RETURN_ERROR_IF(!m || !theta || !X || !J || !ws, err, EFFDIM_EINVAL,
                    "jacobian: NULL argument");
    effdim_status st = effdim_mlp_ws_check(m, ws, err);
    if (st) return st;
    size_t L = m->n_layers, K = m->sizes[L], P = m->n_params, d = m->sizes[0];
    size_t maxw = 0;
    for (size_t l = 0; l <= L; ++l)
        if (m->sizes[l] > maxw) maxw = m->sizes[l];
    double *D0 = effdim_alloc(2 * K * maxw, sizeof(double), "jacobian scratch", err);
    if (!D0) return EFFDIM_ENOMEM;
    double *D1 = D0 + K * maxw;
    for (size_t start = 0; start < n; start += ws->chunk) {
        size_t len = n - start < ws->chunk ? n - start : ws->chunk;
        effdim_mlp_forward(m, theta, X + start * d, len, ws);
        for (size_t i = 0; i < len; ++i) {
            double *Ji = J + (start + i) * K * P;
            memset(Ji, 0, K * P * sizeof(double));
            double *cur = D0, *nxt = D1;
            const double *z = ws->Z[L - 1] + i * K, *a = ws->A[L - 1] + i * K;
            memset(cur, 0, K * K * sizeof(double));
            for (size_t o = 0; o < K; ++o) cur[o * K + o] = effdim_act_deriv(m->act[L - 1], z[o], a[o]);
            for (size_t l = L; l-- > 0;) {
                size_t win = m->sizes[l], wout = m->sizes[l + 1];
                const double *ain = l ? ws->A[l - 1] + i * win : X + (start + i) * d;
                for (size_t o = 0; o < K; ++o) {
                    double *jw = Ji + o * P + m->w_off[l], *jb = Ji + o * P + m->b_off[l];
                    const double *dr = cur + o * wout;
                    for (size_t u = 0; u < wout; ++u) {
                        double g = dr[u];
                        jb[u] = g;
                        if (g == 0.0) continue;
                        for (size_t j = 0; j < win; ++j) jw[u * win + j] = g * ain[j];
                    }
                }
                if (l == 0) break;
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)K, (int)win,
                            (int)wout, 1.0, cur, (int)wout, theta + m->w_off[l], (int)win, 0.0, nxt,
                            (int)win);
                const double *zp = ws->Z[l - 1] + i * win, *ap = ws->A[l - 1] + i * win;
                for (size_t o = 0; o < K; ++o)
                    for (size_t j = 0; j < win; ++j)
                        nxt[o * win + j] *= effdim_act_deriv(m->act[l - 1], zp[j], ap[j]);
                double *t = cur;
                cur = nxt;
                nxt = t;
            }
        }
        if (out) memcpy(out + start * K, ws->A[L - 1], len * K * sizeof(double));
    }
    free(D0);
    return EFFDIM_OK;
}
