/* tests/test_checkpoint.c: the HDF5 checkpoint (lib/checkpoint.c).
 *
 * Oracles:
 * - bit-exact round trips (theta, every state vector, every metric);
 * - an independent writer made of raw HDF5 calls (float32 weights,
 *   fixed-length strings) and raw reads of what the library wrote, so the
 *   layout is checked against the contract, not against itself;
 * - a PyTorch-written fixture (tests/make_torch_fixture.py through
 *   tools/torch_export.py) whose loss, gradient and next Adam step were
 *   computed by PyTorch;
 * - every refusal provoked by corrupting a good file with raw HDF5 calls;
 * - a child process killed with SIGKILL while it saves in a loop: the final
 *   name must always hold a complete, valid checkpoint.
 */
#include <hdf5.h>
#include <math.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "effdim/checkpoint.h"
#include "effdim/optim.h"
#include "h5io.h"

/* ---- helpers ------------------------------------------------------------ */

/* 5-7-6-4-3, tanh gelu softplus identity, cross-entropy mean (P = 42+48+28+15 = 133) */
static void small_mlp(effdim_mlp *m)
{
    const size_t sizes[] = {5, 7, 6, 4, 3};
    const effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_GELU, EFFDIM_ACT_SOFTPLUS,
                                      EFFDIM_ACT_IDENTITY};
    effdim_error e;
    CHECK_OK(effdim_mlp_init(m, 4, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN,
                             &e), &e);
}

/* high-entropy values, different per seed */
static void fill(double *v, size_t n, double seed)
{
    for (size_t i = 0; i < n; ++i)
        v[i] = 1.7 * sin(2.385 * (double)i + seed) + 1e-3 * cos(0.731 * (double)(i * i) + seed);
}

static effdim_checkpoint *small_checkpoint(double seed)
{
    effdim_mlp m;
    small_mlp(&m);
    effdim_checkpoint *c = NULL;
    effdim_error e;
    CHECK_OK(effdim_checkpoint_alloc(&m, NULL, &c, &e), &e);
    if (c) fill(c->theta, m.n_params, seed);
    return c;
}

/* A checkpoint with optimiser state and training provenance. */
static effdim_checkpoint *full_checkpoint(double seed)
{
    effdim_checkpoint *c = small_checkpoint(seed);
    if (!c) return NULL;
    size_t P = c->mlp.n_params;
    double *v = malloc(P * sizeof *v);
    effdim_error e;
    CHECK_OK(effdim_checkpoint_set_optimizer(c, "amsgrad", 17, &e), &e);
    CHECK_OK(effdim_checkpoint_set_hparam(c, "lr", 2.385e-3, &e), &e);
    CHECK_OK(effdim_checkpoint_set_hparam(c, "beta1", 0.9, &e), &e);
    CHECK_OK(effdim_checkpoint_set_hparam(c, "beta2", 0.987, &e), &e);
    CHECK_OK(effdim_checkpoint_set_hparam(c, "eps", 1.3e-8, &e), &e);
    const char *names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "hess"};
    for (size_t k = 0; k < 4; ++k) {
        fill(v, P, seed + 10.0 * (double)(k + 1));
        if (k) for (size_t i = 0; i < P; ++i) v[i] = v[i] * v[i];
        CHECK_OK(effdim_checkpoint_set_state(c, names[k], v, P, &e), &e);
    }
    CHECK_OK(effdim_checkpoint_set_optimizer_string(c, "schedule", "cosine:steps=100,min=0", &e), &e);
    CHECK_OK(effdim_checkpoint_set_provenance(c, "spirals:n=200,seed=3", "spirals:n=100,seed=4",
                                              4242, &e), &e);
    CHECK_OK(effdim_checkpoint_append_epoch(c, 0.693, 0.5, 0.71, 0.48, &e), &e);
    CHECK_OK(effdim_checkpoint_append_epoch(c, 0.412, 0.81, 0.433, 0.79, &e), &e);
    CHECK_OK(effdim_checkpoint_append_epoch(c, 0.301, 0.88, NAN, NAN, &e), &e);
    CHECK_OK(effdim_checkpoint_set_training_string(c, "command", "effdim train --arch 5,7,6,4,3", &e), &e);
    CHECK_OK(effdim_checkpoint_set_training_number(c, "batch", 128, &e), &e);
    CHECK_OK(effdim_checkpoint_set_training_number(c, "seconds", 3.25, &e), &e);
    free(v);
    return c;
}

static int same_doubles(const double *a, const double *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Save a good checkpoint (with optimiser state) to a fresh file and open it
 * read-write for corruption. */
static hid_t corruptible(const char *name, const char **path)
{
    effdim_error e;
    *path = check_tmpfile(name);
    effdim_checkpoint *c = full_checkpoint(0.5);
    CHECK_OK(effdim_checkpoint_save(c, *path, &e), &e);
    effdim_checkpoint_free(c);
    effdim_h5_quiet();
    hid_t f = H5Fopen(*path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0);
    return f;
}

/* Replace a float64 data set by one with other dims and data. */
static void replace_dataset(hid_t f, const char *group, const char *name, int rank,
                            const size_t *dims, const double *data)
{
    effdim_error e;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    CHECK(H5Ldelete(g, name, H5P_DEFAULT) >= 0);
    CHECK_OK(effdim_h5_write_doubles(g, name, rank, dims, data, &e), &e);
    H5Gclose(g);
}

/* Load must fail with `code`; the message must name the file and each substring. */
#define EXPECT_REFUSED(path, code, ...)                                        \
    do {                                                                       \
        effdim_error e_;                                                       \
        effdim_checkpoint *c_ = (effdim_checkpoint *)1;                        \
        CHECK_STATUS(effdim_checkpoint_load((path), &c_, &e_), (code), &e_);   \
        CHECK(c_ == NULL);                                                     \
        CHECK_MSG(&e_, (path), __VA_ARGS__);                                   \
        CHECK(strchr(e_.msg, '\n') == NULL);                                   \
        check_note("%s", e_.msg);                                              \
    } while (0)

/* ---- round trips -------------------------------------------------------- */

static void model_only_checkpoint_round_trips_bit_exactly(void)
{
    effdim_error e;
    const char *path = check_tmpfile("model_only.h5");
    effdim_checkpoint *c = small_checkpoint(0.25), *r = NULL;
    if (!c) return;
    c->mlp.reduction = EFFDIM_REDUCTION_SUM;
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    CHECK_OK(effdim_checkpoint_load(path, &r, &e), &e);
    if (r) {
        CHECK(r->mlp.n_layers == 4 && r->mlp.n_params == c->mlp.n_params);
        CHECK(memcmp(r->mlp.sizes, c->mlp.sizes, 5 * sizeof(size_t)) == 0);
        CHECK(memcmp(r->mlp.act, c->mlp.act, 4 * sizeof(effdim_activation)) == 0);
        CHECK(r->mlp.loss == EFFDIM_LOSS_CROSS_ENTROPY && r->mlp.reduction == EFFDIM_REDUCTION_SUM);
        CHECK(memcmp(r->mlp.w_off, c->mlp.w_off, 4 * sizeof(size_t)) == 0);
        CHECK(same_doubles(r->theta, c->theta, c->mlp.n_params));
        CHECK(r->optimizer == NULL && r->training == NULL);
    }
    effdim_checkpoint_free(c);
    effdim_checkpoint_free(r);
    effdim_checkpoint_free(NULL);
}

static void full_checkpoint_round_trips_bit_exactly(void)
{
    effdim_error e;
    const char *path = check_tmpfile("full.h5");
    effdim_checkpoint *c = full_checkpoint(1.75), *r = NULL;
    if (!c) return;
    size_t P = c->mlp.n_params;
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    CHECK_OK(effdim_checkpoint_load(path, &r, &e), &e);
    if (!r || !r->optimizer || !r->training) {
        CHECK(r && r->optimizer && r->training);
        effdim_checkpoint_free(c);
        effdim_checkpoint_free(r);
        return;
    }
    CHECK(same_doubles(r->theta, c->theta, P));
    CHECK(strcmp(r->optimizer->name, "amsgrad") == 0 && r->optimizer->step == 17);
    CHECK(r->optimizer->n_hparams == 4 && r->optimizer->n_state == 4);
    double v;
    CHECK(effdim_checkpoint_hparam(r, "lr", &v) && v == 2.385e-3);
    CHECK(effdim_checkpoint_hparam(r, "beta2", &v) && v == 0.987);
    CHECK(effdim_checkpoint_hparam(r, "eps", &v) && v == 1.3e-8);
    CHECK(!effdim_checkpoint_hparam(r, "momentum", &v));
    const char *names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "hess"};
    for (size_t k = 0; k < 4; ++k) {
        const double *a = effdim_checkpoint_state(c, names[k]), *b = effdim_checkpoint_state(r, names[k]);
        CHECK(a && b && same_doubles(a, b, P));
    }
    CHECK(effdim_checkpoint_state(r, "momentum_buffer") == NULL);
    const char *sched = effdim_checkpoint_optimizer_string(r, "schedule");
    CHECK(sched && strcmp(sched, "cosine:steps=100,min=0") == 0);
    effdim_checkpoint_training *t = r->training;
    CHECK(t->data_spec && strcmp(t->data_spec, "spirals:n=200,seed=3") == 0);
    CHECK(t->test_spec && strcmp(t->test_spec, "spirals:n=100,seed=4") == 0);
    CHECK(t->has_seed && t->seed == 4242 && t->epochs == 3);
    CHECK(t->version && strcmp(t->version, effdim_version()) == 0);
    CHECK(t->created && strlen(t->created) == 20 && t->created[10] == 'T');
    for (size_t k = 0; k < 4; ++k) {
        const char *mn[] = {"losses", "accuracies", "test_losses", "test_accuracies"};
        size_t n1, n2;
        const double *a = effdim_checkpoint_metric(c, mn[k], &n1), *b = effdim_checkpoint_metric(r, mn[k], &n2);
        CHECK(a && b && n1 == 3 && n2 == 3 && same_doubles(a, b, 3));
    }
    size_t n;
    const double *tl = effdim_checkpoint_metric(r, "test_losses", &n);
    CHECK(tl && isnan(tl[2]) && tl[1] == 0.433);
    const effdim_checkpoint_attr *cmd = effdim_checkpoint_training_attr(r, "command");
    CHECK(cmd && cmd->is_string && strcmp(cmd->str[0], "effdim train --arch 5,7,6,4,3") == 0);
    const effdim_checkpoint_attr *batch = effdim_checkpoint_training_attr(r, "batch");
    CHECK(batch && !batch->is_string && batch->is_integer && batch->num[0] == 128);
    const effdim_checkpoint_attr *secs = effdim_checkpoint_training_attr(r, "seconds");
    CHECK(secs && !secs->is_integer && secs->num[0] == 3.25);
    /* a second save of what was loaded is again identical */
    const char *path2 = check_tmpfile("full2.h5");
    effdim_checkpoint *r2 = NULL;
    CHECK_OK(effdim_checkpoint_save(r, path2, &e), &e);
    CHECK_OK(effdim_checkpoint_load(path2, &r2, &e), &e);
    CHECK(r2 && same_doubles(r2->theta, c->theta, P) && r2->optimizer && r2->optimizer->n_state == 4);
    CHECK(r2 && r2->training && r2->training->created && !strcmp(r2->training->created, t->created));
    effdim_checkpoint_free(c);
    effdim_checkpoint_free(r);
    effdim_checkpoint_free(r2);
}

/* ---- the layout itself, read with raw HDF5 ------------------------------ */

static int attr_is(hid_t obj, const char *name, H5T_class_t cls, int rank, hsize_t n)
{
    if (H5Aexists(obj, name) <= 0) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    int ok = H5Tget_class(t) == cls && H5Sget_simple_extent_ndims(s) == rank;
    if (rank == 1) ok = ok && H5Sget_simple_extent_npoints(s) == (hssize_t)n;
    if (cls == H5T_STRING) ok = ok && H5Tis_variable_str(t) > 0;
    if (cls == H5T_INTEGER) ok = ok && H5Tget_size(t) == 8;
    if (cls == H5T_FLOAT) ok = ok && H5Tget_size(t) == 8;
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return ok;
}

static int dataset_is_f64(hid_t f, const char *name, int rank, hsize_t d0, hsize_t d1)
{
    if (!effdim_h5_has_link(f, name)) return 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int ok = H5Tequal(t, H5T_IEEE_F64LE) > 0 && H5Sget_simple_extent_ndims(s) == rank;
    H5Sget_simple_extent_dims(s, dims, NULL);
    ok = ok && dims[0] == d0 && (rank == 1 || dims[1] == d1);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return ok;
}

static void saved_file_follows_the_contract_layout(void)
{
    effdim_error e;
    const char *path = check_tmpfile("layout.h5");
    effdim_checkpoint *c = full_checkpoint(2.5);
    if (!c) return;
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    char buf[64];
    CHECK(attr_is(f, "format", H5T_STRING, 0, 1));
    CHECK_OK(effdim_h5_attr_read_string(f, "format", buf, sizeof buf, &e), &e);
    CHECK(strcmp(buf, "effdim.checkpoint") == 0);
    CHECK(attr_is(f, "format_version", H5T_INTEGER, 0, 1));
    int64_t fv = 0;
    CHECK_OK(effdim_h5_attr_read_int64(f, "format_version", &fv, &e), &e);
    CHECK(fv == 1);
    hsize_t nroot = 0;
    H5Gget_num_objs(f, &nroot);
    CHECK(nroot == 3); /* model, optimizer, training */
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    CHECK(attr_is(g, "layer_sizes", H5T_INTEGER, 1, 5));
    CHECK(attr_is(g, "activations", H5T_STRING, 1, 4));
    CHECK(attr_is(g, "loss", H5T_STRING, 0, 1));
    CHECK(attr_is(g, "reduction", H5T_STRING, 0, 1));
    char **acts;
    size_t n;
    CHECK_OK(effdim_h5_attr_read_strings(g, "activations", &acts, &n, &e), &e);
    CHECK(n == 4 && !strcmp(acts[0], "tanh") && !strcmp(acts[1], "gelu") &&
          !strcmp(acts[2], "softplus") && !strcmp(acts[3], "identity"));
    effdim_h5_strings_free(acts, n);
    CHECK_OK(effdim_h5_attr_read_string(g, "loss", buf, sizeof buf, &e), &e);
    CHECK(!strcmp(buf, "cross_entropy"));
    H5Gclose(g);
    const size_t sizes[] = {5, 7, 6, 4, 3};
    for (size_t l = 0; l < 4; ++l) {
        char name[64];
        snprintf(name, sizeof name, "model/layer%zu/weight", l);
        CHECK(dataset_is_f64(f, name, 2, sizes[l + 1], sizes[l]));
        snprintf(name, sizeof name, "model/layer%zu/bias", l);
        CHECK(dataset_is_f64(f, name, 1, sizes[l + 1], 0));
    }
    /* layer1's weight is theta[w_off[1] ...] row-major (out, in) */
    double w[42];
    CHECK_OK(effdim_h5_read_doubles(f, "model/layer1/weight", w, 42, &e), &e);
    CHECK(same_doubles(w, c->theta + c->mlp.w_off[1], 42));
    g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    CHECK(attr_is(g, "name", H5T_STRING, 0, 1));
    CHECK(attr_is(g, "step", H5T_INTEGER, 0, 1));
    CHECK(attr_is(g, "lr", H5T_FLOAT, 0, 1));
    CHECK(attr_is(g, "beta2", H5T_FLOAT, 0, 1));
    H5Gclose(g);
    CHECK(dataset_is_f64(f, "optimizer/exp_avg", 1, c->mlp.n_params, 0));
    CHECK(dataset_is_f64(f, "optimizer/hess", 1, c->mlp.n_params, 0));
    g = H5Gopen2(f, "training", H5P_DEFAULT);
    CHECK(attr_is(g, "data_spec", H5T_STRING, 0, 1));
    CHECK(attr_is(g, "seed", H5T_INTEGER, 0, 1));
    CHECK(attr_is(g, "epochs", H5T_INTEGER, 0, 1));
    CHECK(dataset_is_f64(g, "losses", 1, 3, 0));
    CHECK(dataset_is_f64(g, "test_accuracies", 1, 3, 0));
    CHECK(!effdim_h5_has_attr(g, "losses"));
    CHECK(attr_is(g, "version", H5T_STRING, 0, 1));
    CHECK(attr_is(g, "created", H5T_STRING, 0, 1));
    H5Gclose(g);
    H5Fclose(f);
    effdim_checkpoint_free(c);
}

/* ---- an independent writer: float32 weights, fixed-length strings ------- */

static void raw_string_attr(hid_t obj, const char *name, const char *const *values, size_t n,
                            int scalar, size_t width)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hsize_t dim = n;
    hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    char *buf = calloc(n, width);
    for (size_t i = 0; i < n; ++i) {
        size_t len = strlen(values[i]);
        memcpy(buf + i * width, values[i], len < width ? len : width); /* NUL-padded, maybe unterminated */
    }
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, t, buf) >= 0);
    H5Aclose(a);
    free(buf);
    H5Sclose(sp);
    H5Tclose(t);
}

/* A 3-4-2 relu/identity mse-sum checkpoint written without the library. */
static void write_raw_checkpoint(const char *path, const float *w, size_t P)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0 && P == 3 * 4 + 4 + 4 * 2 + 2);
    const char *fmt[] = {"effdim.checkpoint"};
    raw_string_attr(f, "format", fmt, 1, 1, 24);
    int32_t version = 1; /* a 32-bit integer: any integer type is accepted */
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, &version);
    H5Aclose(a);
    H5Sclose(sp);
    hid_t g = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int32_t sizes[3] = {3, 4, 2};
    hsize_t three = 3;
    sp = H5Screate_simple(1, &three, NULL);
    a = H5Acreate2(g, "layer_sizes", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, sizes);
    H5Aclose(a);
    H5Sclose(sp);
    const char *acts[] = {"relu", "identity"}, *loss[] = {"mse"}, *red[] = {"sum"};
    raw_string_attr(g, "activations", acts, 2, 0, 8);
    raw_string_attr(g, "loss", loss, 1, 1, 16);
    raw_string_attr(g, "reduction", red, 1, 1, 4);
    size_t off = 0;
    for (int l = 0; l < 2; ++l) {
        char name[32];
        snprintf(name, sizeof name, "layer%d", l);
        hid_t lg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t wd[2] = {(hsize_t)sizes[l + 1], (hsize_t)sizes[l]}, bd[1] = {(hsize_t)sizes[l + 1]};
        hid_t ws = H5Screate_simple(2, wd, NULL), bs = H5Screate_simple(1, bd, NULL);
        hid_t d = H5Dcreate2(lg, "weight", H5T_IEEE_F32LE, ws, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w + off);
        H5Dclose(d);
        off += wd[0] * wd[1];
        d = H5Dcreate2(lg, "bias", H5T_IEEE_F32LE, bs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w + off);
        H5Dclose(d);
        off += bd[0];
        H5Sclose(ws);
        H5Sclose(bs);
        H5Gclose(lg);
    }
    H5Gclose(g);
    /* an SGD optimiser with an h5py-style boolean (enum) nesterov flag */
    g = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *oname[] = {"sgd"};
    raw_string_attr(g, "name", oname, 1, 1, 8);
    sp = H5Screate(H5S_SCALAR);
    int64_t step = 5;
    a = H5Acreate2(g, "step", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &step);
    H5Aclose(a);
    hid_t et = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t no = 0, yes = 1;
    H5Tenum_insert(et, "FALSE", &no);
    H5Tenum_insert(et, "TRUE", &yes);
    a = H5Acreate2(g, "nesterov", et, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, et, &yes);
    H5Aclose(a);
    H5Tclose(et);
    float lr = 0.125f;
    a = H5Acreate2(g, "lr", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_FLOAT, &lr);
    H5Aclose(a);
    H5Sclose(sp);
    hsize_t pd = P;
    sp = H5Screate_simple(1, &pd, NULL);
    hid_t d = H5Dcreate2(g, "momentum_buffer", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    H5Dclose(d);
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(f);
}

static void float32_weights_and_fixed_length_strings_are_read(void)
{
    effdim_error e;
    const char *path = check_tmpfile("raw32.h5");
    float w[26];
    for (size_t i = 0; i < 26; ++i) w[i] = (float)(1.3 * sin(2.385 * (double)i + 0.4));
    effdim_h5_quiet();
    write_raw_checkpoint(path, w, 26);
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
    if (!c) return;
    CHECK(c->mlp.n_layers == 2 && c->mlp.sizes[0] == 3 && c->mlp.sizes[1] == 4 && c->mlp.sizes[2] == 2);
    CHECK(c->mlp.act[0] == EFFDIM_ACT_RELU && c->mlp.act[1] == EFFDIM_ACT_IDENTITY);
    CHECK(c->mlp.loss == EFFDIM_LOSS_MSE && c->mlp.reduction == EFFDIM_REDUCTION_SUM);
    CHECK(c->mlp.n_params == 26);
    int exact = 1;
    for (size_t i = 0; i < 26; ++i) exact &= c->theta[i] == (double)w[i];
    CHECK(exact);
    CHECK(c->optimizer && !strcmp(c->optimizer->name, "sgd") && c->optimizer->step == 5);
    double v;
    CHECK(effdim_checkpoint_hparam(c, "nesterov", &v) && v == 1.0);
    CHECK(effdim_checkpoint_hparam(c, "lr", &v) && v == 0.125);
    const double *mb = effdim_checkpoint_state(c, "momentum_buffer");
    CHECK(mb && mb[7] == (double)w[7]);
    CHECK(c->training == NULL);
    effdim_checkpoint_free(c);
}

/* ---- the PyTorch-written fixture ---------------------------------------- */

static void pytorch_written_checkpoint_gives_pytorchs_loss_and_gradient(void)
{
    effdim_error e;
    const char *path = check_fixture("torch_written.h5");
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
    if (!c) return;
    const effdim_mlp *m = &c->mlp;
    size_t P = m->n_params;
    CHECK(m->n_layers == 3 && m->sizes[0] == 6 && m->sizes[3] == 4 && P == 194);
    CHECK(m->act[0] == EFFDIM_ACT_TANH && m->act[1] == EFFDIM_ACT_GELU && m->act[2] == EFFDIM_ACT_IDENTITY);
    hid_t f;
    CHECK_OK(effdim_h5_open_read(path, &f, &e), &e);
    effdim_dataset *ds = NULL;
    CHECK_OK(effdim_dataset_alloc(32, 6, 4, EFFDIM_TARGET_LABELS, &ds, &e), &e);
    double want_loss = 0, *want_grad = calloc(P, sizeof(double)), *grad = calloc(P, sizeof(double));
    double *theta_next = calloc(P, sizeof(double));
    int64_t y[32];
    CHECK_OK(effdim_h5_read_doubles(f, "expected/X", ds->X, 32 * 6, &e), &e);
    CHECK_OK(effdim_h5_read_int64s(f, "expected/y", y, 32, &e), &e);
    CHECK_OK(effdim_h5_read_doubles(f, "expected/loss", &want_loss, 1, &e), &e);
    CHECK_OK(effdim_h5_read_doubles(f, "expected/grad", want_grad, P, &e), &e);
    CHECK_OK(effdim_h5_read_doubles(f, "expected/theta_next", theta_next, P, &e), &e);
    H5Fclose(f);
    for (size_t i = 0; i < 32; ++i) ds->labels[i] = (int32_t)y[i];
    effdim_mlp_ws *ws = effdim_mlp_ws_alloc(m, 16, &e);
    double loss = 0;
    CHECK_OK(effdim_mlp_loss_grad(m, c->theta, ds, NULL, 32, &loss, grad, ws, &e), &e);
    CHECK_CLOSE(loss, want_loss, 1e-12);
    CHECK_VEC_CLOSE(grad, want_grad, P, 1e-12);
    double gmax = 0, gerr = 0;
    for (size_t i = 0; i < P; ++i) {
        gmax = fmax(gmax, fabs(want_grad[i]));
        gerr = fmax(gerr, fabs(grad[i] - want_grad[i]));
    }
    check_note("loss %.17g vs PyTorch %.17g (rel %.2e); gradient max rel error %.2e",
               loss, want_loss, fabs(loss - want_loss) / fabs(want_loss), gerr / gmax);
    /* the Adam state resumes: one more step equals PyTorch's optimizer.step() */
    CHECK(c->optimizer && !strcmp(c->optimizer->name, "amsgrad") && c->optimizer->step == 3);
    effdim_optim *opt = NULL;
    effdim_schedule sched;
    CHECK_OK(effdim_checkpoint_to_optim(c, path, &opt, &sched, &e), &e);
    if (opt) {
        CHECK(opt->t == 3 && opt->params.amsgrad && opt->params.beta2 == 0.99);
        CHECK(opt->params.weight_decay == 0.003 && opt->params.lr == 0.01);
        CHECK_OK(effdim_optim_step(opt, c->theta, want_grad, effdim_schedule_lr(&sched, opt->t + 1), &e), &e);
        CHECK_VEC_CLOSE(c->theta, theta_next, P, 1e-12);
    }
    CHECK(c->training && c->training->has_seed && c->training->seed == 2385);
    CHECK(effdim_checkpoint_training_attr(c, "torch_version") != NULL);
    effdim_optim_free(opt);
    effdim_mlp_ws_free(ws);
    effdim_dataset_free(ds);
    free(want_grad);
    free(grad);
    free(theta_next);
    effdim_checkpoint_free(c);
}

/* ---- optimiser state survives a save/load and training continues -------- */

/* Run `steps` steps of opt on a synthetic gradient field. */
static void run_steps(effdim_optim *opt, const effdim_schedule *s, double *theta, size_t P,
                      size_t steps)
{
    effdim_error e;
    double *g = malloc(P * sizeof *g);
    for (size_t k = 0; k < steps; ++k) {
        for (size_t i = 0; i < P; ++i) g[i] = sin(3.1 * theta[i] + 0.37 * (double)i) + 0.2 * theta[i];
        CHECK_OK(effdim_optim_step(opt, theta, g, effdim_schedule_lr(s, opt->t + 1), &e), &e);
    }
    free(g);
}

static void resume_case(effdim_optim_kind kind, const effdim_optim_params *p, const char *sched_spec)
{
    effdim_error e;
    effdim_checkpoint *c = small_checkpoint(3.0), *r = NULL;
    if (!c) return;
    size_t P = c->mlp.n_params;
    double *straight = malloc(P * sizeof *straight);
    memcpy(straight, c->theta, P * sizeof *straight);
    effdim_schedule s;
    CHECK_OK(effdim_schedule_parse(sched_spec, p->lr, &s, &e), &e);
    effdim_optim *a = NULL, *b = NULL, *resumed = NULL;
    CHECK_OK(effdim_optim_alloc(kind, p, P, &a, &e), &e);
    CHECK_OK(effdim_optim_alloc(kind, p, P, &b, &e), &e);
    if (!a || !b) goto done;
    run_steps(a, &s, straight, P, 7); /* uninterrupted: 7 steps */
    run_steps(b, &s, c->theta, P, 4); /* interrupted after 4 ... */
    CHECK_OK(effdim_checkpoint_set_from_optim(c, b, &s, &e), &e);
    const char *path = check_tmpfile("resume.h5");
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    CHECK_OK(effdim_checkpoint_load(path, &r, &e), &e);
    if (!r) goto done;
    effdim_schedule s2;
    CHECK_OK(effdim_checkpoint_to_optim(r, path, &resumed, &s2, &e), &e);
    if (!resumed) goto done;
    CHECK(resumed->t == 4 && resumed->kind == kind);
    CHECK(memcmp(&s2, &s, sizeof s) == 0 || effdim_schedule_lr(&s2, 6) == effdim_schedule_lr(&s, 6));
    run_steps(resumed, &s2, r->theta, P, 3); /* ... and 3 more after the reload */
    CHECK(same_doubles(r->theta, straight, P));
    effdim_optim_state_vec va[EFFDIM_OPTIM_MAX_STATE];
    size_t n = effdim_optim_state(a, va, EFFDIM_OPTIM_MAX_STATE);
    for (size_t i = 0; i < n; ++i) {
        const double *rv = effdim_optim_state_find(resumed, va[i].name);
        CHECK(rv && same_doubles(rv, va[i].data, P));
    }
done:
    effdim_optim_free(a);
    effdim_optim_free(b);
    effdim_optim_free(resumed);
    effdim_checkpoint_free(c);
    effdim_checkpoint_free(r);
    free(straight);
}

static void saved_optimiser_state_continues_training_bitwise(void)
{
    effdim_optim_params p = effdim_optim_default_params(EFFDIM_OPTIM_AMSGRAD);
    p.lr = 0.0137;
    p.weight_decay = 0.02;
    resume_case(EFFDIM_OPTIM_AMSGRAD, &p, "cosine:steps=9,min=0.001,warmup=2");
    p = effdim_optim_default_params(EFFDIM_OPTIM_SGD);
    p.lr = 0.021;
    p.momentum = 0.9;
    p.nesterov = 1;
    resume_case(EFFDIM_OPTIM_SGD, &p, "step:every=3,gamma=0.5");
    p = effdim_optim_default_params(EFFDIM_OPTIM_ADAMW);
    resume_case(EFFDIM_OPTIM_ADAMW, &p, "sqrt");
}

/* ---- refusals ------------------------------------------------------------ */

static void missing_and_non_hdf5_files_are_refused(void)
{
    const char *absent = check_tmpfile("absent.h5");
    EXPECT_REFUSED(absent, EFFDIM_ENOTFOUND, "cannot open");
    const char *text = check_tmpfile("text.h5");
    FILE *f = fopen(text, "w");
    fputs("not a checkpoint\n", f);
    fclose(f);
    EXPECT_REFUSED(text, EFFDIM_EFORMAT, "not an HDF5 file");
    /* a truncated (half-written) file */
    const char *good = check_tmpfile("trunc_src.h5"), *cut = check_tmpfile("truncated.h5");
    effdim_error e;
    effdim_checkpoint *c = full_checkpoint(4.0);
    CHECK_OK(effdim_checkpoint_save(c, good, &e), &e);
    effdim_checkpoint_free(c);
    FILE *in = fopen(good, "rb"), *out = fopen(cut, "wb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n / 2 + 100, out);
    fclose(in);
    fclose(out);
    effdim_checkpoint *r = (effdim_checkpoint *)1;
    effdim_status st = effdim_checkpoint_load(cut, &r, &e);
    CHECK(st != EFFDIM_OK && r == NULL);
    CHECK_MSG(&e, "truncated.h5");
    check_note("%s", e.msg);
}

static void wrong_format_attribute_is_refused(void)
{
    const char *path;
    hid_t f = corruptible("wrong_format.h5", &path);
    effdim_error e;
    CHECK_OK(effdim_h5_attr_write_string(f, "format", "effdim.spectrum", &e), &e);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/:", "\"effdim.spectrum\"", "expected \"effdim.checkpoint\"");
    f = corruptible("no_format.h5", &path);
    H5Adelete(f, "format");
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "attribute 'format' is missing", "effdim.checkpoint");
}

static void newer_format_version_is_refused(void)
{
    const char *path;
    hid_t f = corruptible("v2.h5", &path);
    effdim_error e;
    CHECK_OK(effdim_h5_attr_write_int64(f, "format_version", 2, &e), &e);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EVERSION, "format_version 2", "newer", "(1)");
}

static void wrong_weight_and_bias_shapes_are_refused(void)
{
    const char *path;
    double junk[6 * 9];
    fill(junk, 54, 0.1);
    hid_t f = corruptible("shape_w.h5", &path);
    size_t wd[2] = {6, 9};
    replace_dataset(f, "model/layer1", "weight", 2, wd, junk);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer1/weight: shape (6, 9), expected (6, 7) from layer_sizes");
    f = corruptible("shape_w_t.h5", &path);
    size_t wt[2] = {5, 7}; /* transposed: (in, out) */
    replace_dataset(f, "model/layer0", "weight", 2, wt, junk);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer0/weight: shape (5, 7), expected (7, 5)");
    f = corruptible("shape_b.h5", &path);
    size_t bd[1] = {5};
    replace_dataset(f, "model/layer2", "bias", 1, bd, junk);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer2/bias: shape (5,), expected (4,)");
}

/* A few-KB file whose layer_sizes claims a 1.4 TB network is refused by the
 * shapes of the data sets it really holds, before any allocation (found by
 * the checkpoint fuzz target; issue 9, item 11). */
static void layer_sizes_larger_than_the_stored_layers_are_refused_before_allocating(void)
{
    const char *path;
    hid_t f = corruptible("huge_claim.h5", &path);
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    CHECK(H5Adelete(g, "layer_sizes") >= 0);
    int64_t claim[5] = {5, 400000, 400000, 4, 3}; /* the file holds 5-7-6-4-3 */
    hsize_t n = 5;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t at = H5Acreate2(g, "layer_sizes", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(at >= 0 && H5Awrite(at, H5T_NATIVE_INT64, claim) >= 0);
    H5Aclose(at);
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer0/weight: shape (7, 5), expected (400000, 5) from layer_sizes");
}

static void missing_and_extra_layers_are_refused(void)
{
    const char *path;
    hid_t f = corruptible("no_layer.h5", &path);
    CHECK(H5Ldelete(f, "model/layer2", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_ENOTFOUND, "/model/layer2", "missing", "4 layers");
    f = corruptible("no_bias.h5", &path);
    CHECK(H5Ldelete(f, "model/layer3/bias", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_ENOTFOUND, "/model/layer3/bias", "missing");
    f = corruptible("extra_layer.h5", &path);
    hid_t g = H5Gcreate2(f, "model/layer4", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer4", "layer_sizes describes only 4 layers");
    f = corruptible("no_model.h5", &path);
    H5Ldelete(f, "model", H5P_DEFAULT);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_ENOTFOUND, "/model: group is missing");
}

static void unknown_activation_and_loss_are_refused(void)
{
    const char *path;
    effdim_error e;
    hid_t f = corruptible("act.h5", &path);
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    const char *acts[] = {"tanh", "swish", "softplus", "identity"};
    CHECK_OK(effdim_h5_attr_write_strings(g, "activations", acts, 4, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model", "activations[1] is 'swish'", "relu");
    f = corruptible("act_count.h5", &path);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    CHECK_OK(effdim_h5_attr_write_strings(g, "activations", acts, 3, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model", "activations has 3 entries, expected 4");
    f = corruptible("loss.h5", &path);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    CHECK_OK(effdim_h5_attr_write_string(g, "loss", "hinge", &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model", "loss is 'hinge'", "cross_entropy, mse or bce");
    f = corruptible("reduction.h5", &path);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    CHECK_OK(effdim_h5_attr_write_string(g, "reduction", "max", &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model", "reduction is 'max'", "mean or sum");
    f = corruptible("sizes.h5", &path);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    int64_t bad_sizes[5] = {5, 7, 0, 4, 3};
    CHECK_OK(effdim_h5_attr_write_int64s(g, "layer_sizes", bad_sizes, 5, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model", "layer_sizes[2] is 0");
}

static void nan_and_inf_weights_are_refused_with_their_index(void)
{
    const char *path;
    effdim_checkpoint *c = small_checkpoint(0.5);
    if (!c) return;
    double w[42];
    memcpy(w, c->theta + c->mlp.w_off[1], sizeof w);
    w[2 * 7 + 3] = NAN; /* index (2, 3) of (6, 7) */
    hid_t f = corruptible("nan.h5", &path);
    size_t wd[2] = {6, 7};
    replace_dataset(f, "model/layer1", "weight", 2, wd, w);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EDOM, "/model/layer1/weight", "nan", "(2, 3)");
    double b[4];
    memcpy(b, c->theta + c->mlp.b_off[2], sizeof b);
    b[3] = -INFINITY;
    f = corruptible("inf.h5", &path);
    size_t bd[1] = {4};
    replace_dataset(f, "model/layer2", "bias", 1, bd, b);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EDOM, "/model/layer2/bias", "-inf", "index 3");
    effdim_checkpoint_free(c);
}

static void optimiser_state_of_the_wrong_length_is_refused(void)
{
    const char *path;
    double v[140];
    fill(v, 140, 0.3);
    hid_t f = corruptible("state_len.h5", &path);
    size_t d[1] = {140};
    replace_dataset(f, "optimizer", "exp_avg_sq", 1, d, v);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer/exp_avg_sq", "length 140, expected 133");
    f = corruptible("state_rank.h5", &path);
    size_t d2[2] = {133, 1};
    double *big = calloc(133, sizeof *big);
    replace_dataset(f, "optimizer", "hess", 2, d2, big);
    free(big);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer/hess", "rank 2", "133");
    f = corruptible("no_step.h5", &path);
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    H5Adelete(g, "step");
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer", "'step' is missing");
}

static void setters_and_save_refuse_bad_input(void)
{
    effdim_error e;
    effdim_checkpoint *c = small_checkpoint(0.9);
    if (!c) return;
    double v[3] = {1, 2, 3};
    CHECK_STATUS(effdim_checkpoint_set_hparam(c, "lr", 0.1, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "before the optimizer");
    CHECK_OK(effdim_checkpoint_set_optimizer(c, "adam", 0, &e), &e);
    CHECK_STATUS(effdim_checkpoint_set_state(c, "exp_avg", v, 3, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "exp_avg", "3 values", "expected 133");
    CHECK_STATUS(effdim_checkpoint_set_hparam(c, "step", 3, &e), EFFDIM_EINVAL, &e);
    CHECK_STATUS(effdim_checkpoint_set_hparam(c, "a/b", 3, &e), EFFDIM_EINVAL, &e);
    CHECK_STATUS(effdim_checkpoint_set_training_number(c, "epochs", 3, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "epochs", "fixed meaning");
    /* a diverged theta is not saved, and the old file stays */
    const char *path = check_tmpfile("diverged.h5");
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    c->theta[57] = NAN;
    CHECK_STATUS(effdim_checkpoint_save(c, path, &e), EFFDIM_EDOM, &e);
    CHECK_MSG(&e, "diverged.h5", "parameter 57");
    effdim_checkpoint *r = NULL;
    CHECK_OK(effdim_checkpoint_load(path, &r, &e), &e);
    CHECK(r && isfinite(r->theta[57]));
    effdim_checkpoint_free(r);
    c->theta[57] = 0.5;
    CHECK_STATUS(effdim_checkpoint_save(c, check_tmpfile("no/such/dir/m.h5"), &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "no/such/dir/m.h5");
    effdim_checkpoint_free(c);
}

/* ---- a run killed while saving leaves the previous checkpoint intact ---- */

/* Checkpoint k: theta[i] = k + i/1024, exp_avg[i] = -k, step = k: every part
 * of the file must agree on k. A bigger network so one save takes a while. */
static effdim_checkpoint *numbered_checkpoint(const effdim_mlp *m, int64_t k)
{
    effdim_error e;
    effdim_checkpoint *c = NULL;
    if (effdim_checkpoint_alloc(m, NULL, &c, &e)) return NULL;
    for (size_t i = 0; i < m->n_params; ++i) c->theta[i] = (double)k + (double)(i % 4096) / 1024.0;
    double *v = malloc(m->n_params * sizeof *v);
    for (size_t i = 0; i < m->n_params; ++i) v[i] = (double)k;
    effdim_checkpoint_set_optimizer(c, "adam", k, &e);
    effdim_checkpoint_set_state(c, "exp_avg", v, m->n_params, &e);
    effdim_checkpoint_set_state(c, "exp_avg_sq", v, m->n_params, &e);
    effdim_checkpoint_set_provenance(c, "killed-run test", NULL, (uint64_t)k, &e);
    free(v);
    return c;
}

/* 1 when the file holds a complete numbered checkpoint; *k receives its number. */
static int numbered_checkpoint_valid(const char *path, const effdim_mlp *m, int64_t *k)
{
    effdim_error e;
    effdim_checkpoint *c = NULL;
    if (effdim_checkpoint_load(path, &c, &e)) {
        check_note("load failed: %s", e.msg);
        return 0;
    }
    int ok = c->mlp.n_params == m->n_params && c->optimizer && c->training && c->optimizer->n_state == 2;
    int64_t n = ok ? c->optimizer->step : -1;
    for (size_t i = 0; ok && i < m->n_params; ++i)
        ok = c->theta[i] == (double)n + (double)(i % 4096) / 1024.0;
    const double *v = effdim_checkpoint_state(c, "exp_avg_sq");
    for (size_t i = 0; ok && v && i < m->n_params; ++i) ok = v[i] == (double)n;
    ok = ok && v && c->training->seed == (uint64_t)n;
    effdim_checkpoint_free(c);
    *k = n;
    return ok;
}

/* Temporary files "BASE.tmp-..." in dir: counted, and removed when `remove`. */
static size_t temporaries_of(const char *dir, const char *base, int remove)
{
    size_t count = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *ent;
    char prefix[256], full[2048];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    while ((ent = readdir(d)) != NULL)
        if (!strncmp(ent->d_name, prefix, strlen(prefix))) {
            snprintf(full, sizeof full, "%s/%s", dir, ent->d_name);
            if (remove) unlink(full);
            ++count;
        }
    closedir(d);
    return count;
}

static void killed_run_leaves_the_previous_checkpoint_intact(void)
{
    effdim_error e;
    effdim_mlp m;
    const size_t sizes[] = {64, 256, 256, 10};
    const effdim_activation acts[] = {EFFDIM_ACT_RELU, EFFDIM_ACT_RELU, EFFDIM_ACT_IDENTITY};
    CHECK_OK(effdim_mlp_init(&m, 3, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY, EFFDIM_REDUCTION_MEAN, &e), &e);
    const char *path = check_tmpfile("killed.h5");
    effdim_checkpoint *c = numbered_checkpoint(&m, 0);
    CHECK(c != NULL);
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    effdim_checkpoint_free(c);
    unsigned seed = 2385;
    int64_t last = 0, k = 0;
    size_t rounds = 8, progressed = 0, temporaries = 0;
    for (size_t round = 0; round < rounds; ++round) {
        int ready[2];
        CHECK(pipe(ready) == 0);
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* the child: save checkpoints last+1, last+2, ... until killed */
            close(ready[0]);
            int told = 0;
            for (int64_t n = last + 1;; ++n) {
                effdim_checkpoint *cc = numbered_checkpoint(&m, n);
                if (!told) {
                    told = write(ready[1], "x", 1) == 1;
                }
                if (!cc || effdim_checkpoint_save(cc, path, NULL)) _exit(3);
                effdim_checkpoint_free(cc);
            }
        }
        close(ready[1]);
        char x;
        CHECK(read(ready[0], &x, 1) == 1);
        close(ready[0]);
        /* kill at a random moment within about 3 saves */
        long usec = (long)(rand_r(&seed) % 60000);
        struct timespec ts = {0, usec * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CHECK(numbered_checkpoint_valid(path, &m, &k));
        CHECK(k >= last);
        if (k > last) ++progressed;
        check_note("round %zu: killed after %ld us, final file holds checkpoint %lld", round, usec,
                   (long long)k);
        last = k;
        temporaries += temporaries_of(check_tmpdir(), "killed.h5", 0); /* the next child's save removes them */
    }
    /* the killed runs' temporaries are named by their dead PIDs: the next save removes them */
    c = numbered_checkpoint(&m, last + 1);
    CHECK(c && !effdim_checkpoint_save(c, path, &e));
    effdim_checkpoint_free(c);
    size_t after = temporaries_of(check_tmpdir(), "killed.h5", 1);
    check_note("%zu of %zu rounds saved at least once; %zu temporary files left behind by kills, "
               "%zu after the next save", progressed, rounds, temporaries, after);
    CHECK(progressed >= 1);
    CHECK(after == 0);
}

/* ---- hostile files: links, empty attributes, wrong types (issue 9) ------ */

static void links_to_other_files_and_soft_links_are_refused(void)
{
    effdim_error e;
    const char *other = check_tmpfile("other.h5");
    effdim_checkpoint *c = full_checkpoint(0.25);
    CHECK_OK(effdim_checkpoint_save(c, other, &e), &e);
    effdim_checkpoint_free(c);
    const char *path;
    hid_t f = corruptible("elink.h5", &path);
    hid_t g = H5Gopen2(f, "model/layer0", H5P_DEFAULT);
    CHECK(H5Ldelete(g, "weight", H5P_DEFAULT) >= 0);
    CHECK(H5Lcreate_external(other, "/model/layer0/weight", g, "weight", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer0/weight", "external link", other,
                   "does not follow links to other files");
    f = corruptible("slink.h5", &path);
    g = H5Gopen2(f, "model/layer1", H5P_DEFAULT);
    CHECK(H5Ldelete(g, "bias", H5P_DEFAULT) >= 0);
    CHECK(H5Lcreate_soft("/model/layer2/bias", g, "bias", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model/layer1/bias", "soft link", "/model/layer2/bias");
    /* a data set whose values live in a raw external file */
    f = corruptible("extstore.h5", &path);
    g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    CHECK(H5Ldelete(g, "exp_avg", H5P_DEFAULT) >= 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    CHECK(H5Pset_external(dcpl, "/etc/passwd", 0, 133 * 8) >= 0);
    hsize_t dim = 133;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(g, "exp_avg", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer/exp_avg", "external file '/etc/passwd'");
}

/* An attribute with a null dataspace: it exists but holds no value. */
static void write_empty_attr(hid_t obj, const char *name, hid_t type)
{
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t sp = H5Screate(H5S_NULL);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0);
    H5Aclose(a);
    H5Sclose(sp);
}

static void empty_attributes_are_not_taken_as_scalars(void)
{
    const char *path;
    hid_t f = corruptible("empty_version.h5", &path);
    write_empty_attr(f, "format_version", H5T_STD_I64LE);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "format_version");
    f = corruptible("empty_lr.h5", &path);
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    write_empty_attr(g, "lr", H5T_IEEE_F64LE);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer", "'lr'", "empty", "expected one number");
    /* the h5io helper itself: a 0-value attribute is not a scalar */
    f = corruptible("empty_helper.h5", &path);
    write_empty_attr(f, "x", H5T_IEEE_F64LE);
    double v = 2.385;
    int64_t i = 7;
    effdim_error e;
    CHECK_STATUS(effdim_h5_attr_read_double(f, "x", &v, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "'x'", "0 values", "exactly 1");
    CHECK_STATUS(effdim_h5_attr_read_int64(f, "x", &i, &e), EFFDIM_EFORMAT, &e);
    CHECK(v == 2.385 && i == 7);
    H5Fclose(f);
}

static void wrongly_typed_fields_are_refused(void)
{
    effdim_error e;
    const char *path;
    /* a string lr */
    hid_t f = corruptible("string_lr.h5", &path);
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    H5Adelete(g, "lr");
    CHECK_OK(effdim_h5_attr_write_string(g, "lr", "0.001", &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer", "'lr'", "a string", "expected one number");
    /* float layer sizes: 4.7 is not 4 */
    f = corruptible("float_sizes.h5", &path);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    const double sizes[] = {5, 7, 6, 4.7, 3};
    H5Adelete(g, "layer_sizes");
    CHECK_OK(effdim_h5_attr_write_doubles(g, "layer_sizes", sizes, 5, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/model", "layer_sizes", "4.7", "index 3", "whole number");
    /* whole float sizes (5.0, 7.0, ...) are still read */
    f = corruptible("whole_float_sizes.h5", &path);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    const double whole[] = {5, 7, 6, 4, 3};
    H5Adelete(g, "layer_sizes");
    CHECK_OK(effdim_h5_attr_write_doubles(g, "layer_sizes", whole, 5, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
    CHECK(c && c->mlp.sizes[3] == 4);
    effdim_checkpoint_free(c);
    /* a numeric schedule */
    f = corruptible("number_schedule.h5", &path);
    g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    H5Adelete(g, "schedule");
    CHECK_OK(effdim_h5_attr_write_double(g, "schedule", 3.0, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EFORMAT, "/optimizer", "'schedule'", "expected one string");
    /* a negative second moment */
    f = corruptible("negative_v.h5", &path);
    double v[133];
    fill(v, 133, 0.9);
    for (size_t i = 0; i < 133; ++i) v[i] = v[i] * v[i];
    v[57] = -0.0625;
    size_t dim = 133;
    replace_dataset(f, "optimizer", "exp_avg_sq", 1, &dim, v);
    H5Fclose(f);
    EXPECT_REFUSED(path, EFFDIM_EDOM, "/optimizer/exp_avg_sq", "-0.0625", "index 57", ">= 0");
}

static void a_20000_epoch_history_round_trips_as_data_sets(void)
{
    effdim_error e;
    effdim_checkpoint *c = small_checkpoint(0.3);
    const size_t E = 20000;
    for (size_t i = 0; c && i < E; ++i)
        CHECK_OK(effdim_checkpoint_append_epoch(c, 1.0 / (1.0 + (double)i), 0.5 + 1e-5 * (double)i,
                                                NAN, NAN, &e), &e);
    const char *path = check_tmpfile("long.h5");
    CHECK_OK(effdim_checkpoint_save(c, path, &e), &e);
    effdim_checkpoint *r = NULL;
    CHECK_OK(effdim_checkpoint_load(path, &r, &e), &e);
    const double *a = effdim_checkpoint_metric(c, "losses", NULL);
    size_t n = 0;
    const double *b = r ? effdim_checkpoint_metric(r, "losses", &n) : NULL;
    CHECK(n == E && a && b && same_doubles(a, b, E));
    b = r ? effdim_checkpoint_metric(r, "accuracies", &n) : NULL;
    CHECK(n == E && b && b[E - 1] == 0.5 + 1e-5 * (double)(E - 1));
    effdim_checkpoint_free(r);
    effdim_checkpoint_free(c);
}

static void histories_stored_as_attributes_are_still_read(void)
{
    /* effdim 0.1 wrote /training/losses etc. as attributes */
    const char *path;
    hid_t f = corruptible("v1_attrs.h5", &path);
    hid_t g = H5Gopen2(f, "training", H5P_DEFAULT);
    const double losses[] = {0.9, 0.5, 0.25};
    CHECK(H5Ldelete(g, "losses", H5P_DEFAULT) >= 0);
    effdim_error e;
    CHECK_OK(effdim_h5_attr_write_doubles(g, "losses", losses, 3, &e), &e);
    H5Gclose(g);
    H5Fclose(f);
    effdim_checkpoint *c = NULL;
    CHECK_OK(effdim_checkpoint_load(path, &c, &e), &e);
    size_t n = 0;
    const double *v = c ? effdim_checkpoint_metric(c, "losses", &n) : NULL;
    CHECK(n == 3 && v && same_doubles(v, losses, 3));
    effdim_checkpoint_free(c);
}

CHECK_TESTS({"a model-only checkpoint round-trips bit-exactly", model_only_checkpoint_round_trips_bit_exactly},
            {"a full checkpoint (optimiser state, provenance, extras) round-trips bit-exactly",
             full_checkpoint_round_trips_bit_exactly},
            {"the saved file follows the contract layout", saved_file_follows_the_contract_layout},
            {"float32 weights and fixed-length strings are read",
             float32_weights_and_fixed_length_strings_are_read},
            {"a PyTorch-written checkpoint gives PyTorch's loss, gradient and next Adam step",
             pytorch_written_checkpoint_gives_pytorchs_loss_and_gradient},
            {"saved optimiser state continues training bitwise",
             saved_optimiser_state_continues_training_bitwise},
            {"missing, non-HDF5 and truncated files are refused", missing_and_non_hdf5_files_are_refused},
            {"a wrong format attribute is refused", wrong_format_attribute_is_refused},
            {"a newer format_version is refused", newer_format_version_is_refused},
            {"wrong weight and bias shapes are refused", wrong_weight_and_bias_shapes_are_refused},
            {"layer sizes larger than the stored layers are refused before allocating",
             layer_sizes_larger_than_the_stored_layers_are_refused_before_allocating},
            {"missing and extra layers are refused", missing_and_extra_layers_are_refused},
            {"unknown activations, losses and reductions are refused",
             unknown_activation_and_loss_are_refused},
            {"NaN and Inf weights are refused with their index",
             nan_and_inf_weights_are_refused_with_their_index},
            {"optimiser state of the wrong length is refused",
             optimiser_state_of_the_wrong_length_is_refused},
            {"setters and save refuse bad input", setters_and_save_refuse_bad_input},
            {"a run killed while saving leaves the previous checkpoint intact",
             killed_run_leaves_the_previous_checkpoint_intact},
            {"links to other files and soft links are refused",
             links_to_other_files_and_soft_links_are_refused},
            {"empty attributes are not taken as scalars", empty_attributes_are_not_taken_as_scalars},
            {"wrongly typed fields are refused naming the field", wrongly_typed_fields_are_refused},
            {"a 20,000-epoch history round-trips as data sets",
             a_20000_epoch_history_round_trips_as_data_sets},
            {"histories stored as attributes (effdim 0.1) are still read",
             histories_stored_as_attributes_are_still_read})
