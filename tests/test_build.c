/* tests/test_build.c: the build links what it should, and the shared helpers work.
 *
 * - cblas_dgemm resolves at run time to OpenBLAS, not to GSL's reference
 *   CBLAS (libgslcblas) that `pkg-config --libs gsl` would bring in;
 * - status names and error messages;
 * - h5io: string attributes (fixed and variable length), float32 data read
 *   as double, atomic writes that leave the old file intact on abort.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <cblas.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "effdim/blas.h"
#include "effdim/mlp.h"
#include "h5io.h"

static void cblas_dgemm_comes_from_openblas(void)
{
    Dl_info info;
    /* dladdr takes an object pointer; the union avoids the ISO C cast from a function pointer */
    union {
        void (*fn)(void);
        void *obj;
    } sym;
    sym.fn = (void (*)(void))cblas_dgemm;
    CHECK(dladdr(sym.obj, &info) != 0);
    check_note("cblas_dgemm from %s", info.dli_fname ? info.dli_fname : "?");
    CHECK(info.dli_fname && strstr(info.dli_fname, "openblas") != NULL);
    CHECK(info.dli_fname && strstr(info.dli_fname, "gslcblas") == NULL);
    /* the default symbol lookup agrees */
    void *def = dlsym(RTLD_DEFAULT, "cblas_dgemm");
    CHECK(def != NULL);
    CHECK(def && dladdr(def, &info) && info.dli_fname && strstr(info.dli_fname, "openblas"));
    CHECK(strstr(effdim_blas_config(), "OpenBLAS") != NULL);
}

static void dgemm_computes_a_known_product(void)
{
    const double A[6] = {1.5, -2.25, 0.5, 3.0, 4.125, -1.0}; /* (2,3) */
    const double B[6] = {2.0, 1.0, -1.0, 0.25, 0.75, 3.5};   /* (3,2) */
    double C[4] = {0};
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1.0, A, 3, B, 2, 0.0, C, 2);
    CHECK_CLOSE(C[0], 1.5 * 2.0 + -2.25 * -1.0 + 0.5 * 0.75, 1e-15);
    CHECK_CLOSE(C[3], 3.0 * 1.0 + 4.125 * 0.25 + -1.0 * 3.5, 1e-15);
}

static void thread_count_is_settable(void)
{
    int before = effdim_blas_threads();
    effdim_blas_set_threads(1);
    CHECK(effdim_blas_threads() == 1);
    effdim_blas_set_threads(before);
    CHECK(effdim_blas_threads() == before);
}

static void error_messages_are_one_line_and_keep_the_code(void)
{
    effdim_error e;
    effdim_error_clear(&e);
    CHECK(e.code == EFFDIM_OK && e.msg[0] == '\0');
    effdim_status st = effdim_error_set(&e, EFFDIM_EFORMAT, "%s: field %s\nexpected %d", "f.h5", "x", 3);
    CHECK(st == EFFDIM_EFORMAT && e.code == EFFDIM_EFORMAT);
    CHECK(strchr(e.msg, '\n') == NULL);
    CHECK_MSG(&e, "f.h5", "field x", "expected 3");
    CHECK(effdim_error_set(NULL, EFFDIM_EIO, "dropped") == EFFDIM_EIO);
    CHECK(strcmp(effdim_status_name(EFFDIM_EMAXITER), "EMAXITER") == 0);
    CHECK(strlen(effdim_version()) > 0);
}

static void h5_attributes_round_trip_fixed_and_variable_strings(void)
{
    effdim_error e;
    const char *path = check_tmpfile("attrs.h5");
    effdim_h5_atomic a;
    CHECK_OK(effdim_h5_atomic_begin(path, &a, &e), &e);
    const char *acts[] = {"relu", "tanh", "identity"};
    CHECK_OK(effdim_h5_attr_write_string(a.file, "format", "effdim.test", &e), &e);
    CHECK_OK(effdim_h5_attr_write_strings(a.file, "acts", acts, 3, &e), &e);
    int64_t sizes[3] = {784, 300, 10};
    CHECK_OK(effdim_h5_attr_write_int64s(a.file, "sizes", sizes, 3, &e), &e);
    CHECK_OK(effdim_h5_attr_write_double(a.file, "lr", 2.385e-3, &e), &e);
    /* a fixed-length, space-padded string as other writers produce */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    H5Tset_strpad(t, H5T_STR_SPACEPAD);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(a.file, "fixed", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(at, t, "mse     ");
    H5Aclose(at);
    H5Sclose(sp);
    H5Tclose(t);
    /* float32 data set */
    float f[4] = {1.5f, -2.25f, 0.125f, 3.0f};
    hsize_t dims[2] = {2, 2};
    sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(a.file, "w32", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f);
    H5Dclose(ds);
    H5Sclose(sp);
    CHECK_OK(effdim_h5_atomic_commit(&a, &e), &e);

    hid_t file;
    CHECK_OK(effdim_h5_open_read(path, &file, &e), &e);
    char buf[64];
    CHECK_OK(effdim_h5_attr_read_string(file, "format", buf, sizeof buf, &e), &e);
    CHECK(strcmp(buf, "effdim.test") == 0);
    CHECK_OK(effdim_h5_attr_read_string(file, "fixed", buf, sizeof buf, &e), &e);
    CHECK(strcmp(buf, "mse") == 0);
    char **s;
    size_t n;
    CHECK_OK(effdim_h5_attr_read_strings(file, "acts", &s, &n, &e), &e);
    CHECK(n == 3 && strcmp(s[2], "identity") == 0);
    effdim_h5_strings_free(s, n);
    int64_t got[4];
    CHECK_OK(effdim_h5_attr_read_int64s(file, "sizes", got, 4, &n, &e), &e);
    CHECK(n == 3 && got[0] == 784 && got[2] == 10);
    CHECK_STATUS(effdim_h5_attr_read_int64s(file, "sizes", got, 2, &n, &e), EFFDIM_EFORMAT, &e);
    double lr;
    CHECK_OK(effdim_h5_attr_read_double(file, "lr", &lr, &e), &e);
    CHECK(lr == 2.385e-3);
    double w[4];
    CHECK_OK(effdim_h5_read_doubles(file, "w32", w, 4, &e), &e);
    CHECK(w[0] == 1.5 && w[1] == -2.25 && w[3] == 3.0);
    CHECK_STATUS(effdim_h5_read_doubles(file, "w32", w, 3, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "attrs.h5", "/w32", "4 values", "expected 3");
    CHECK_STATUS(effdim_h5_read_doubles(file, "missing", w, 3, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "/missing", "missing");
    CHECK_STATUS(effdim_h5_attr_read_string(file, "nope", buf, sizeof buf, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "attribute 'nope'");
    H5Fclose(file);
}

static void aborted_atomic_write_leaves_the_old_file_intact(void)
{
    effdim_error e;
    const char *path = check_tmpfile("keep.h5");
    effdim_h5_atomic a;
    CHECK_OK(effdim_h5_atomic_begin(path, &a, &e), &e);
    CHECK_OK(effdim_h5_attr_write_string(a.file, "version", "old", &e), &e);
    CHECK_OK(effdim_h5_atomic_commit(&a, &e), &e);
    CHECK_OK(effdim_h5_atomic_begin(path, &a, &e), &e);
    CHECK_OK(effdim_h5_attr_write_string(a.file, "version", "new", &e), &e);
    char tmp[EFFDIM_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", a.tmp);
    effdim_h5_atomic_abort(&a);
    struct stat st;
    CHECK(stat(tmp, &st) != 0); /* temporary removed */
    hid_t file;
    CHECK_OK(effdim_h5_open_read(path, &file, &e), &e);
    char buf[16];
    CHECK_OK(effdim_h5_attr_read_string(file, "version", buf, sizeof buf, &e), &e);
    CHECK(strcmp(buf, "old") == 0);
    H5Fclose(file);
}

static void non_hdf5_and_missing_files_are_refused_with_their_name(void)
{
    effdim_error e;
    const char *path = check_tmpfile("not.h5");
    FILE *f = fopen(path, "w");
    fputs("this is not HDF5\n", f);
    fclose(f);
    hid_t file;
    CHECK_STATUS(effdim_h5_open_read(path, &file, &e), EFFDIM_EFORMAT, &e);
    CHECK_MSG(&e, "not.h5", "not an HDF5 file");
    CHECK_STATUS(effdim_h5_open_read(check_tmpfile("absent.h5"), &file, &e), EFFDIM_ENOTFOUND, &e);
    CHECK_MSG(&e, "absent.h5");
}

CHECK_TESTS({"cblas_dgemm comes from OpenBLAS", cblas_dgemm_comes_from_openblas},
            {"dgemm computes a known product", dgemm_computes_a_known_product},
            {"thread count is settable", thread_count_is_settable},
            {"error messages are one line and keep the code", error_messages_are_one_line_and_keep_the_code},
            {"h5 attributes round trip fixed and variable strings", h5_attributes_round_trip_fixed_and_variable_strings},
            {"aborted atomic write leaves the old file intact", aborted_atomic_write_leaves_the_old_file_intact},
            {"non-HDF5 and missing files are refused with their name", non_hdf5_and_missing_files_are_refused_with_their_name})
