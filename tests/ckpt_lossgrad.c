/* tests/ckpt_lossgrad.c: loss and gradient of a checkpoint on a data file, for
 * the PyTorch round-trip test (tests/test_torch_roundtrip.py).
 *
 *   ckpt_lossgrad MODEL.h5 DATA.h5 OUT.h5
 *
 * Loads MODEL.h5 with effdim_checkpoint_load, DATA.h5 with effdim_load_h5
 * (/X (n, d), /y labels or targets), evaluates effdim_mlp_loss_grad over all
 * rows with the checkpoint's loss and reduction, and writes OUT.h5 with
 * /loss (1) and /grad (P) in float64. Exit 0 on success, 1 with one line on
 * stderr otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "effdim/checkpoint.h"
#include "effdim/data.h"
#include "effdim/mlp.h"
#include "h5io.h"

static int fail(const effdim_error *e)
{
    fprintf(stderr, "ckpt_lossgrad: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_lossgrad MODEL.h5 DATA.h5 OUT.h5\n");
        return 2;
    }
    effdim_error e;
    effdim_checkpoint *c = NULL;
    effdim_dataset *ds = NULL;
    if (effdim_checkpoint_load(argv[1], &c, &e)) return fail(&e);
    if (effdim_load_h5(argv[2], &ds, &e) || effdim_mlp_check_data(&c->mlp, ds, argv[2], &e)) {
        effdim_checkpoint_free(c);
        effdim_dataset_free(ds);
        return fail(&e);
    }
    size_t P = c->mlp.n_params;
    double loss = 0, *grad = malloc(P * sizeof *grad);
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(&c->mlp, 256, &e);
    int rc = !grad || !ws;
    if (!rc) rc = effdim_mlp_loss_grad(&c->mlp, c->theta, ds, NULL, ds->n, &loss, grad, ws, &e) != 0;
    effdim_h5_atomic a;
    size_t one = 1;
    if (!rc) rc = effdim_h5_atomic_begin(argv[3], &a, &e) != 0;
    if (!rc) {
        rc = effdim_h5_write_doubles(a.file, "loss", 1, &one, &loss, &e) ||
             effdim_h5_write_doubles(a.file, "grad", 1, &P, grad, &e) ||
             effdim_h5_atomic_commit(&a, &e);
        if (rc) effdim_h5_atomic_abort(&a);
    }
    effdim_mlp_ws_free(ws);
    free(grad);
    effdim_dataset_free(ds);
    effdim_checkpoint_free(c);
    return rc ? fail(&e) : 0;
}
