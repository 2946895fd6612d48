/* tests/test_spectrum.c: the spectrum file and the SHA-256 that fingerprints checkpoints.
 *
 * - SHA-256 against the FIPS 180-4 examples ("abc", the 448-bit two-block
 *   message, the 896-bit message), the empty string and one million 'a'
 *   (NIST's long-message vector), in one call, in uneven pieces and from a
 *   file;
 * - a spectrum written with every optional part (the dense spectrum too)
 *   reads back identically, and
 *   one with none of them reads back with the optional parts absent;
 * - every refusal: invariants on save (lengths, order, z > 0), and on load a
 *   missing file, another format, a newer version, a missing array, lengths
 *   that disagree, eigenvalues out of order, dense eigenvalues without their
 *   N_eff or of the wrong length; a failed save leaves an
 *   existing file untouched and no temporary file.
 */
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "effdim/sha256.h"
#include "effdim/spectrum.h"
#include "sha256.h"

/* ---- SHA-256 ---------------------------------------------------------------- */

static void sha256_matches_the_fips_180_4_examples(void)
{
    char hex[65];
    effdim_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    effdim_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    effdim_sha256_hex(m448, strlen(m448), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    effdim_sha256_hex(m896, strlen(m896), hex);
    CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
}

static void sha256_of_a_million_a_in_uneven_pieces_and_from_a_file(void)
{
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    char hex[65];
    effdim_sha256_hex(a, n, hex);
    CHECK(!strcmp(hex, want));
    /* pieces of 1, 63, 64, 65, 127, ... bytes cross every block boundary case */
    effdim_sha256 s;
    unsigned char d[32];
    effdim_sha256_init(&s);
    size_t done = 0, piece = 1;
    while (done < n) {
        size_t take = piece < n - done ? piece : n - done;
        effdim_sha256_update(&s, a + done, take);
        done += take;
        piece = piece * 7 % 131 + 1;
    }
    effdim_sha256_final(&s, d);
    char hex2[65];
    for (int i = 0; i < 32; ++i) snprintf(hex2 + 2 * i, 3, "%02x", d[i]);
    CHECK(!strcmp(hex2, want));
    const char *path = check_tmpfile("million_a.bin");
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(a, 1, n, f) == n);
    if (f) fclose(f);
    effdim_error e;
    CHECK_OK(effdim_sha256_file(path, hex, &e), &e);
    CHECK(!strcmp(hex, want));
    CHECK_STATUS(effdim_sha256_file(check_tmpfile("nope.bin"), hex, &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "nope.bin", "cannot open");
    free(a);
}

/* ---- spectrum files ------------------------------------------------------------ */

typedef struct full_spectrum {
    effdim_spectrum s;
    double ev[4], res[4], bnd[4], vec[4 * 6], z[3], ne[3], slq[3], se[3], bias[3], grid[5], dens[5];
    unsigned char conv[4];
    unsigned flags[3];
    double l0ev[2], l0res[2], l0ne[3], l1ev[3], l1res[3];
    double dense[6], ne_dense[3];
    effdim_spectrum_layer layers[2];
} full_spectrum;

static void make_full(full_spectrum *f)
{
    memset(f, 0, sizeof *f);
    effdim_spectrum *s = &f->s;
    effdim_spectrum_init(s);
    s->checkpoint = "runs/model.h5";
    strcpy(s->checkpoint_sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    s->data_spec = "spirals:n=200,seed=1";
    s->n = 200;
    s->n_params = 6;
    strcpy(s->loss, "cross_entropy");
    strcpy(s->reduction, "mean");
    s->scale = 1.0 / 200.0;
    strcpy(s->op, "hessian");
    strcpy(s->hvp_method, "fd");
    s->fd_eps = 2.385e-5;
    s->prior = 0.01;
    strcpy(s->which, "top");
    s->tol = 1e-8;
    s->seed = 42;
    s->steps = 61;
    s->lanczos_matvecs = 65;
    s->matvecs = 2465;
    s->restarts = 1;
    s->nconv = 4;
    s->seconds = 1.25;
    strcpy(s->neg_policy, "zero");
    s->version = "9.9.9";
    s->created = "2024-01-02T03:04:05Z";
    const double ev[4] = {12.5, 3.25, 0.5, -0.125};
    memcpy(f->ev, ev, sizeof ev);
    for (int i = 0; i < 4; ++i) {
        f->res[i] = 1e-9 * (i + 1);
        f->bnd[i] = 2e-9 * (i + 1);
        f->conv[i] = i != 2;
    }
    for (int i = 0; i < 24; ++i) f->vec[i] = sin(1.0 + i);
    s->k = 4;
    s->eigenvalues = f->ev;
    s->residuals = f->res;
    s->residual_bounds = f->bnd;
    s->converged = f->conv;
    s->eigenvectors = f->vec;
    const double z[3] = {0.1, 1.0, 10.0}, ne[3] = {2.7, 1.9, 0.6}, slq[3] = {3.1, 2.0, 0.61},
                 se[3] = {0.2, 0.05, 0.01};
    memcpy(f->z, z, sizeof z);
    memcpy(f->ne, ne, sizeof ne);
    memcpy(f->slq, slq, sizeof slq);
    memcpy(f->se, se, sizeof se);
    const double bias[3] = {-1.25, 0.0625, -0.003};
    memcpy(f->bias, bias, sizeof bias);
    s->m = 3;
    s->z = f->z;
    s->n_eff = f->ne;
    s->n_eff_slq = f->slq;
    s->n_eff_slq_se = f->se;
    s->n_eff_slq_bias = f->bias;
    f->flags[0] = 3; /* EFFDIM_SLQ_FLAG_NEGATIVE | EFFDIM_SLQ_FLAG_BIAS */
    f->flags[1] = 0;
    f->flags[2] = 2;
    s->slq_flags = f->flags;
    s->slq_warning = "the SLQ N_eff is unreliable beyond its SE: at z = 0.1 ...";
    s->slq_probes = 30;
    s->slq_steps = 80;
    s->slq_deflated = 4;
    s->has_trace = 1;
    s->trace = 16.375;
    s->trace_se = 0.5;
    strcpy(s->trace_method, "hutch++");
    s->trace_probes = 30;
    s->trace_matvecs = 30;
    for (int i = 0; i < 5; ++i) {
        f->grid[i] = -1.0 + 3.5 * i;
        f->dens[i] = 0.1 * (5 - i);
    }
    s->n_grid = 5;
    s->grid = f->grid;
    s->density = f->dens;
    s->density_sigma = 0.3;
    s->density_probes = 10;
    s->density_steps = 40;
    f->l0ev[0] = 4.0;
    f->l0ev[1] = 1.0;
    f->l0res[0] = 1e-10;
    f->l0res[1] = 2e-10;
    f->l0ne[0] = 1.8;
    f->l0ne[1] = 1.3;
    f->l0ne[2] = 0.4;
    f->l1ev[0] = 2.0;
    f->l1ev[1] = 0.0;
    f->l1ev[2] = -1.0;
    f->l1res[0] = f->l1res[1] = f->l1res[2] = 3e-10;
    f->layers[0] = (effdim_spectrum_layer){0, 4, 2, f->l0ev, f->l0res, f->l0ne, 0};
    f->layers[1] = (effdim_spectrum_layer){4, 2, 3, f->l1ev, f->l1res, NULL, 0};
    s->n_layers = 2;
    s->layers = f->layers;
    const double dense[6] = {12.5, 3.25, 0.5, 0.0625, -0.03125, -0.125},
                 ne_dense[3] = {2.9063, 1.9917, 0.6057};
    memcpy(f->dense, dense, sizeof dense);
    memcpy(f->ne_dense, ne_dense, sizeof ne_dense);
    s->dense_eigenvalues = f->dense;
    s->n_eff_dense = f->ne_dense;
    s->dense_asymmetry = 3.75e-17;
}

static void a_full_spectrum_file_reads_back_identically(void)
{
    full_spectrum f;
    make_full(&f);
    const char *path = check_tmpfile("full.h5");
    effdim_error e;
    effdim_spectrum *r = NULL;
    if (!CHECK_OK(effdim_spectrum_save(&f.s, path, &e), &e)) return;
    if (!CHECK_OK(effdim_spectrum_load(path, &r, &e), &e)) return;
    const effdim_spectrum *s = &f.s;
    CHECK(!strcmp(r->checkpoint, s->checkpoint));
    CHECK(!strcmp(r->checkpoint_sha256, s->checkpoint_sha256));
    CHECK(!strcmp(r->data_spec, s->data_spec));
    CHECK(r->n == 200 && r->n_params == 6 && r->seed == 42 && r->steps == 61 &&
          r->lanczos_matvecs == 65 && r->matvecs == 2465 && r->restarts == 1 && r->nconv == 4);
    CHECK(!strcmp(r->loss, "cross_entropy") && !strcmp(r->reduction, "mean") &&
          !strcmp(r->op, "hessian") && !strcmp(r->hvp_method, "fd") && !strcmp(r->which, "top") &&
          !strcmp(r->neg_policy, "zero"));
    CHECK(r->scale == 1.0 / 200.0 && r->fd_eps == 2.385e-5 && r->prior == 0.01 &&
          r->tol == 1e-8 && r->seconds == 1.25);
    CHECK(!strcmp(r->version, "9.9.9") && !strcmp(r->created, "2024-01-02T03:04:05Z"));
    CHECK(r->k == 4 && r->m == 3);
    CHECK_VEC_CLOSE(r->eigenvalues, f.ev, 4, 0.0);
    CHECK_VEC_CLOSE(r->residuals, f.res, 4, 0.0);
    CHECK_VEC_CLOSE(r->residual_bounds, f.bnd, 4, 0.0);
    CHECK(r->converged && !memcmp(r->converged, f.conv, 4));
    CHECK(r->eigenvectors != NULL);
    if (r->eigenvectors) CHECK_VEC_CLOSE(r->eigenvectors, f.vec, 24, 0.0);
    CHECK_VEC_CLOSE(r->z, f.z, 3, 0.0);
    CHECK_VEC_CLOSE(r->n_eff, f.ne, 3, 0.0);
    CHECK(r->n_eff_slq && r->n_eff_slq_se);
    if (r->n_eff_slq && r->n_eff_slq_se) {
        CHECK_VEC_CLOSE(r->n_eff_slq, f.slq, 3, 0.0);
        CHECK_VEC_CLOSE(r->n_eff_slq_se, f.se, 3, 0.0);
    }
    CHECK(r->n_eff_slq_bias != NULL);
    if (r->n_eff_slq_bias) CHECK_VEC_CLOSE(r->n_eff_slq_bias, f.bias, 3, 0.0);
    CHECK(r->slq_flags && r->slq_flags[0] == 3 && r->slq_flags[1] == 0 && r->slq_flags[2] == 2);
    CHECK(r->slq_warning && !strcmp(r->slq_warning, f.s.slq_warning));
    CHECK(r->slq_probes == 30 && r->slq_steps == 80 && r->slq_deflated == 4);
    CHECK(r->has_trace && r->trace == 16.375 && r->trace_se == 0.5 &&
          !strcmp(r->trace_method, "hutch++") && r->trace_probes == 30 && r->trace_matvecs == 30);
    CHECK(r->n_grid == 5 && r->density_sigma == 0.3 && r->density_probes == 10 &&
          r->density_steps == 40);
    if (r->n_grid == 5) {
        CHECK_VEC_CLOSE(r->grid, f.grid, 5, 0.0);
        CHECK_VEC_CLOSE(r->density, f.dens, 5, 0.0);
    }
    CHECK(r->n_layers == 2);
    if (r->n_layers == 2) {
        CHECK(r->layers[0].offset == 0 && r->layers[0].size == 4 && r->layers[0].k == 2);
        CHECK(r->layers[1].offset == 4 && r->layers[1].size == 2 && r->layers[1].k == 3);
        CHECK_VEC_CLOSE(r->layers[0].eigenvalues, f.l0ev, 2, 0.0);
        CHECK_VEC_CLOSE(r->layers[1].residuals, f.l1res, 3, 0.0);
        CHECK(r->layers[0].n_eff && r->layers[1].n_eff == NULL);
        if (r->layers[0].n_eff) CHECK_VEC_CLOSE(r->layers[0].n_eff, f.l0ne, 3, 0.0);
    }
    CHECK(r->dense_eigenvalues && r->n_eff_dense && r->dense_asymmetry == 3.75e-17);
    if (r->dense_eigenvalues) CHECK_VEC_CLOSE(r->dense_eigenvalues, f.dense, 6, 0.0);
    if (r->n_eff_dense) CHECK_VEC_CLOSE(r->n_eff_dense, f.ne_dense, 3, 0.0);
    effdim_spectrum_free(r);
}

static void a_minimal_spectrum_reads_back_without_the_optional_parts(void)
{
    full_spectrum f;
    make_full(&f);
    effdim_spectrum *s = &f.s;
    s->eigenvectors = NULL;
    s->n_eff_slq = s->n_eff_slq_se = s->n_eff_slq_bias = NULL;
    s->slq_flags = NULL;
    s->slq_warning = ""; /* empty: not written */
    s->has_trace = 0;
    s->n_grid = 0;
    s->n_layers = 0;
    s->dense_eigenvalues = s->n_eff_dense = NULL;
    s->converged = NULL;
    s->version = s->created = NULL;
    const char *path = check_tmpfile("minimal.h5");
    effdim_error e;
    effdim_spectrum *r = NULL;
    if (!CHECK_OK(effdim_spectrum_save(s, path, &e), &e)) return;
    if (!CHECK_OK(effdim_spectrum_load(path, &r, &e), &e)) return;
    CHECK(r->eigenvectors == NULL && r->n_eff_slq == NULL && r->n_eff_slq_se == NULL &&
          r->n_eff_slq_bias == NULL && r->slq_flags == NULL && r->slq_warning == NULL);
    CHECK(!r->has_trace && r->n_grid == 0 && r->n_layers == 0);
    CHECK(r->dense_eigenvalues == NULL && r->n_eff_dense == NULL && r->dense_asymmetry == 0.0);
    CHECK(r->converged && r->converged[0] == 0);
    CHECK(!strcmp(r->version, effdim_version()));
    CHECK(strlen(r->created) == 20 && r->created[10] == 'T');
    effdim_spectrum_free(r);
    effdim_spectrum_free(NULL);
}

static int count_tmp_files(void)
{
    int count = 0;
    DIR *d = opendir(check_tmpdir());
    struct dirent *ent;
    while (d && (ent = readdir(d)))
        if (strstr(ent->d_name, ".tmp-")) ++count;
    if (d) closedir(d);
    return count;
}

static void saving_refuses_a_broken_spectrum_and_keeps_the_old_file(void)
{
    full_spectrum f;
    make_full(&f);
    const char *path = check_tmpfile("keep.h5");
    effdim_error e;
    CHECK_OK(effdim_spectrum_save(&f.s, path, &e), &e);
    f.ev[2] = 5.0; /* 12.5, 3.25, 5.0: not descending */
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "eigenvalues not descending at 2");
    f.ev[2] = 0.5;
    f.z[1] = -1.0;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "z[1] = -1", "z > 0");
    f.z[1] = 1.0;
    f.s.n_eff_slq = NULL;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n_eff_slq_se given without n_eff_slq");
    f.s.n_eff_slq_se = NULL;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "n_eff_slq_bias given without n_eff_slq");
    f.s.n_eff_slq_se = f.se;
    f.s.n_eff_slq = f.slq;
    f.layers[1].offset = 5;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "per_layer/layer1", "[5, 7)", "6 parameters");
    f.layers[1].offset = 4;
    f.s.k = 7;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "k = 7", "n_params = 6");
    f.s.k = 4;
    f.ev[0] = NAN;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "eigenvalues[0] is not finite");
    f.ev[0] = 12.5;
    f.s.n_eff_dense = NULL;
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "dense eigenvalues and n_eff_dense must be given together");
    f.s.n_eff_dense = f.ne_dense;
    f.dense[4] = 0.25; /* ..., 0.0625, 0.25: not descending */
    CHECK_STATUS(effdim_spectrum_save(&f.s, path, &e), EFFDIM_EINVAL, &e);
    CHECK_MSG(&e, "dense eigenvalues not descending at 4");
    f.dense[4] = -0.03125;
    /* the file from the first save is intact, and nothing temporary is left */
    effdim_spectrum *r = NULL;
    CHECK_OK(effdim_spectrum_load(path, &r, &e), &e);
    CHECK(r && r->k == 4 && r->eigenvalues[2] == 0.5);
    effdim_spectrum_free(r);
    CHECK(count_tmp_files() == 0);
    /* an unwritable target */
    CHECK_STATUS(effdim_spectrum_save(&f.s, "/nonexistent-dir/s.h5", &e), EFFDIM_EIO, &e);
    CHECK_MSG(&e, "/nonexistent-dir/s.h5");
}

/* Copy of a good file, then one change through the HDF5 API. */
static const char *tampered(const char *name, void (*edit)(hid_t f))
{
    full_spectrum f;
    make_full(&f);
    const char *path = check_tmpfile(name);
    effdim_error e;
    CHECK_OK(effdim_spectrum_save(&f.s, path, &e), &e);
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(h >= 0);
    edit(h);
    H5Fclose(h);
    return path;
}

static void set_str(hid_t obj, const char *name, const char *v)
{
    H5Adelete(obj, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void set_i64(hid_t obj, const char *name, int64_t v)
{
    H5Adelete(obj, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void put_doubles(hid_t f, const char *name, const double *v, hsize_t n)
{
    H5Ldelete(f, name, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(sp);
}

static void edit_format(hid_t f) { set_str(f, "format", "effdim.checkpoint"); }
static void edit_version(hid_t f) { set_i64(f, "format_version", 3); }
static void edit_drop_residuals(hid_t f) { H5Ldelete(f, "spectrum/residuals", H5P_DEFAULT); }
static void edit_short_neff(hid_t f)
{
    double v[2] = {1.0, 2.0};
    put_doubles(f, "effdim/n_eff", v, 2);
}
static void edit_order(hid_t f)
{
    double v[4] = {1.0, 2.0, 0.5, 0.25};
    put_doubles(f, "spectrum/eigenvalues", v, 4);
}
static void edit_drop_operator(hid_t f) { H5Adelete(f, "operator"); }
static void edit_drop_neff_dense(hid_t f) { H5Ldelete(f, "effdim/n_eff_dense", H5P_DEFAULT); }
static void edit_short_dense(hid_t f)
{
    double v[5] = {12.5, 3.25, 0.5, 0.0625, -0.125};
    put_doubles(f, "dense/eigenvalues", v, 5);
}

static void loading_refuses_bad_files_naming_the_file_and_the_object(void)
{
    effdim_error e;
    effdim_spectrum *r = NULL;
    const char *p;
    CHECK_STATUS(effdim_spectrum_load(check_tmpfile("missing.h5"), &r, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "missing.h5");
    p = tampered("fmt.h5", edit_format);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "fmt.h5", "'format' is 'effdim.checkpoint'", "expected 'effdim.spectrum'");
    p = tampered("ver.h5", edit_version);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_EVERSION, &e);
    CHECK_MSG(&e, "ver.h5", "format_version 3 is newer", "upgrade effdim");
    p = tampered("nores.h5", edit_drop_residuals);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "nores.h5", "residuals");
    p = tampered("short.h5", edit_short_neff);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "short.h5", "/effdim/n_eff", "2 values, expected 3");
    p = tampered("order.h5", edit_order);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "order.h5", "/spectrum/eigenvalues", "not descending at index 1");
    p = tampered("noop.h5", edit_drop_operator);
    CHECK(effdim_spectrum_load(p, &r, &e) != EFFDIM_OK);
    CHECK_MSG(&e, "noop.h5", "operator");
    p = tampered("nodense.h5", edit_drop_neff_dense);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "nodense.h5", "/dense/eigenvalues without /effdim/n_eff_dense");
    p = tampered("shortdense.h5", edit_short_dense);
    CHECK_STATUS(effdim_spectrum_load(p, &r, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "shortdense.h5", "/dense/eigenvalues", "5 values, expected 6");
    CHECK(r == NULL);
}

CHECK_TESTS({"SHA-256 matches the FIPS 180-4 examples", sha256_matches_the_fips_180_4_examples},
            {"SHA-256 of a million 'a' in uneven pieces and from a file",
             sha256_of_a_million_a_in_uneven_pieces_and_from_a_file},
            {"a full spectrum file reads back identically",
             a_full_spectrum_file_reads_back_identically},
            {"a minimal spectrum reads back without the optional parts",
             a_minimal_spectrum_reads_back_without_the_optional_parts},
            {"saving refuses a broken spectrum and keeps the old file",
             saving_refuses_a_broken_spectrum_and_keeps_the_old_file},
            {"loading refuses bad files naming the file and the object",
             loading_refuses_bad_files_naming_the_file_and_the_object})
