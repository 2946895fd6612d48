/* effdim/data.h: the one dataset type, its loaders, generators and transforms.
 *
 * A dataset is X (n, d) doubles, row-major, plus either integer class labels
 * (n) in [0, k) or real targets Y (n, k), row-major. Every loader and
 * generator returns a freshly allocated dataset that the caller frees with
 * effdim_dataset_free (which accepts NULL). Nothing here prints or exits.
 *
 * Data spec strings (the command line takes them everywhere):
 *
 *   spirals:n=2000,noise=0.2,seed=1         two interleaved spirals, 2 classes
 *                                            (defaults n=1000, noise=1.3, seed=0)
 *   regression:n=200,d=1,noise=0.1,seed=1    noisy regression (d=1: sin curve)
 *   gmm:n=1000,d=10,classes=5,sep=3,seed=1   Gaussian-mixture classification
 *   teacher:n=1000,d=10,hidden=16,out=1,...  teacher-student MLP data
 *                                            (classes=C for labels; noise=)
 *   fashion-mnist:train:n=4000               Debian's dataset-fashion-mnist
 *   fashion-mnist:test                       (the 10,000 test images)
 *   mnist-idx:IMAGES,LABELS                  any IDX pair, raw or gzip (classes=K)
 *   csv:FILE,target=price                    CSV with a header row
 *                                            (targets=auto|labels|real)
 *   h5:FILE                                  /X (n, d) and /y (n) or (n, k)
 *   boston:part=train,split=3                UCI Boston housing / diabetes from
 *   diabetes:part=test,split=3               python3-sklearn, 90/10 split by seed;
 *                                            inputs and targets standardised on the
 *                                            training part (standardize_targets=0:
 *                                            targets in original units)
 *
 * Options common to every spec, applied in this order after loading:
 *   n=N            keep the first N rows (or a random N when subset=random);
 *                  for the generators n is the number generated
 *   subset=first|random, subset_seed=S   (loaded data only)
 *   scale=pixel    divide by 255 (fashion-mnist and mnist-idx scale to
 *                  [0, 1] by default; scale=none keeps raw bytes)
 *   standardize=1  zero mean, unit variance per column (constant columns
 *                  are centred only)
 *   label_noise=F, noise_seed=S   replace a fraction F of labels by a
 *                  uniformly random *other* class
 * Unknown keys, repeated keys and values that do not parse are errors
 * naming the spec and the key. Seeds default to 0. The full grammar is in
 * docs/data.md.
 */
#ifndef EFFDIM_DATA_H
#define EFFDIM_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum effdim_target_kind {
    EFFDIM_TARGET_LABELS = 0, /* integer classes in labels[], k classes */
    EFFDIM_TARGET_REAL = 1    /* real targets in Y[], k outputs */
} effdim_target_kind;

typedef struct effdim_dataset {
    size_t n;                /* examples */
    size_t d;                /* input features */
    size_t k;                /* classes (LABELS) or target columns (REAL) */
    effdim_target_kind kind;
    double *X;               /* (n, d) row-major, owned */
    int32_t *labels;         /* (n) in [0, k), owned; NULL unless LABELS */
    double *Y;               /* (n, k) row-major, owned; NULL unless REAL */
    char *spec;              /* the spec string it came from, owned; may be NULL */
    double *y_mean, *y_sd;   /* (k) each, owned; NULL unless the REAL targets were
                                standardised (the UCI specs): original units =
                                y_mean[c] + y_sd[c] * Y[i, c] */
} effdim_dataset;

/* Largest n*d a loader accepts before refusing as absurd (2^34 doubles = 128 GiB). */
#define EFFDIM_DATA_MAX_ELEMENTS ((size_t)1 << 34)

/* Allocate an empty dataset of the given shape (X, labels or Y zero-filled).
 * Refuses n == 0, d == 0, k == 0 and n*d or n*k above EFFDIM_DATA_MAX_ELEMENTS. */
EFFDIM_API effdim_status effdim_dataset_alloc(size_t n, size_t d, size_t k,
                                              effdim_target_kind kind,
                                              effdim_dataset **out, effdim_error *err);
EFFDIM_API void effdim_dataset_free(effdim_dataset *ds);

/* Deep copy. */
EFFDIM_API effdim_status effdim_dataset_copy(const effdim_dataset *src, effdim_dataset **out,
                                             effdim_error *err);

/* Check X (and Y) are finite and labels in [0, k); err names `what`
 * (a file or spec), the row and the column of the first bad value. */
EFFDIM_API effdim_status effdim_dataset_validate(const effdim_dataset *ds, const char *what,
                                                 effdim_error *err);

/* ---- data specs --------------------------------------------------------- */

/* Parse and load a data spec (see the top of this file). The result's spec
 * field holds a copy of the string. Unknown keys are errors. */
EFFDIM_API effdim_status effdim_dataset_from_spec(const char *spec, effdim_dataset **out,
                                                  effdim_error *err);

/* Rank `rank`'s share of a spec's rows for `ranks` ranks (effdim/comm.h:
 * rows [r n / R, (r + 1) n / R) of the n rows the spec selects, after n= and
 * subset=), bitwise what effdim_dataset_from_spec followed by keeping that
 * share gives; *n_total (may be NULL) receives n. ranks <= 1: the whole set.
 * Only the share's rows are read and stored for fashion-mnist and mnist-idx
 * (every label is read: k and subset=random need them) and for h5 with the
 * first rows (hyperslabs of /X and /y; all selected labels for k); label_noise
 * and scale are applied to the share exactly as to the whole set. The whole
 * set is loaded and the share kept for standardize=1 (column statistics of
 * every row), h5 with subset=random, csv, the UCI sets and the generators
 * (docs/scaling.md). EINVAL with effdim_comm_check_rows's message when n is
 * below ranks. No MPI: plain arguments, so any process may load any share. */
EFFDIM_API effdim_status effdim_dataset_from_spec_share(const char *spec, int ranks, int rank,
                                                        effdim_dataset **out, size_t *n_total,
                                                        effdim_error *err);

/* The files a spec reads (csv:FILE, h5:FILE, mnist-idx:IMAGES,LABELS): up to
 * cap of them into paths[i] (each buffer path_cap bytes), their count in *n;
 * 0 for generated data, fashion-mnist and a spec that does not parse. Used
 * to refuse an output that is the same file as an input (effdim/output.h). */
EFFDIM_API void effdim_data_spec_files(const char *spec, char (*paths)[4096], size_t cap,
                                       size_t *n);

/* File paths inside a spec (csv:FILE, h5:FILE, mnist-idx:IMAGES,LABELS; other
 * specs are copied unchanged). *out is malloc'ed (free it); EINVAL for NULL
 * arguments, ENOMEM.
 *   _resolve      every relative path p becomes dir/p (dir "" or "." leaves
 *                 it): a spec recorded in a checkpoint is read against the
 *                 checkpoint's folder;
 *   _relative_to  every relative path of an existing file (relative to the
 *                 current folder) is rewritten relative to the folder dir, so
 *                 that _resolve(_relative_to(spec, dir), dir) names the same
 *                 file: what a checkpoint in dir records. Paths of missing
 *                 files and absolute paths are left as they are. */
EFFDIM_API effdim_status effdim_data_spec_resolve(const char *spec, const char *dir, char **out,
                                                  effdim_error *err);
EFFDIM_API effdim_status effdim_data_spec_relative_to(const char *spec, const char *dir,
                                                      char **out, effdim_error *err);

/* The folder the fashion-mnist spec reads. Overridable for tests with the
 * environment variable EFFDIM_FASHION_MNIST_DIR. */
#define EFFDIM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- loaders ------------------------------------------------------------ */

/* IDX image and label files (MNIST format), raw or gzip (detected by magic).
 * Images (n, rows, cols) unsigned bytes become X (n, rows*cols) raw 0..255
 * values; labels become LABELS with k = max label + 1 (at least 10 if
 * k_hint == 0, else k_hint). Counts must agree. */
EFFDIM_API effdim_status effdim_load_idx(const char *images_path, const char *labels_path,
                                         size_t k_hint, effdim_dataset **out, effdim_error *err);

/* CSV with a header row. target names a column by header name, or by
 * 0-based index written as "#3" or a plain integer when no header matches.
 * A target column of integers gives LABELS (k = max + 1), else REAL (k = 1).
 * Several targets may be given comma-free as "a;b" (REAL, k = count).
 * "Integers" means every value is an integer in 0 .. 65535. */
EFFDIM_API effdim_status effdim_load_csv(const char *path, const char *target,
                                         effdim_dataset **out, effdim_error *err);
/* The same with the target kind forced: kind = EFFDIM_TARGET_LABELS (an error
 * unless one target of integers), EFFDIM_TARGET_REAL (always real), or -1
 * (automatic, as effdim_load_csv). */
EFFDIM_API effdim_status effdim_load_csv_as(const char *path, const char *target, int kind,
                                            effdim_dataset **out, effdim_error *err);

/* HDF5: /X (n, d) float64 or float32; /y (n) integer labels or (n, k) floats
 * (float32 or float64; a 1-D float /y is (n, 1)). An integer attribute
 * num_classes on /y sets k for labels (default max label + 1). */
EFFDIM_API effdim_status effdim_load_h5(const char *path, effdim_dataset **out, effdim_error *err);

/* Write a dataset in the h5: layout (atomically: temporary file, then rename). */
EFFDIM_API effdim_status effdim_save_h5(const effdim_dataset *ds, const char *path,
                                        effdim_error *err);

/* The UCI regression sets of Debian's python3-sklearn package ("boston",
 * "diabetes"; lib/data_uci.c): part 0 all rows, 1 the training 90% or 2 the
 * test 10% of the seeded split `split`, 3 (fit) and 4 (valid) an 80/20
 * split of that training part (seed derived from `split`; standardised by
 * the fit part); inputs standardised with the training part's statistics; targets too when standardize_targets (then
 * y_mean and y_sd hold the training part's statistics, for either part),
 * else in original units. ENOTFOUND naming the package when the files are
 * missing. */
#define EFFDIM_SKLEARN_DATA_DEFAULT "/usr/lib/python3/dist-packages/sklearn/datasets/data"
EFFDIM_API effdim_status effdim_load_uci(const char *name, int part, uint64_t split,
                                         int standardize_targets, effdim_dataset **out,
                                         effdim_error *err);

/* ---- generators (seeded; datasets/README.md documents each) ------------- */

/* Two interleaved spirals, n points (n/2 per class), labels 0/1.
 * Maddox et al. 2020 Section 5: r = sqrt(u) * 600 * 2pi / 360, class 0 at
 * (-1.5 cos(r) r, 1.5 sin(r) r) + noise * N(0, 1), class 1 negated.
 * Rows alternate: row 2i is class 0, row 2i+1 its negation (class 1). */
EFFDIM_API effdim_status effdim_gen_spirals(size_t n, double noise, uint64_t seed,
                                            effdim_dataset **out, effdim_error *err);

/* Noisy regression: d == 1 gives x ~ U(-1, 1), y = sin(3x) + x/2 + noise*N(0,1);
 * d > 1 gives x ~ N(0, I), y = x . w + noise*N(0,1) with w ~ N(0, I/d) from the seed. */
EFFDIM_API effdim_status effdim_gen_regression(size_t n, size_t d, double noise, uint64_t seed,
                                               effdim_dataset **out, effdim_error *err);

/* Gaussian mixture: `classes` means drawn N(0, sep^2 I / d) (exact rule in
 * datasets/README.md); row i has class i mod classes and is its class mean
 * plus N(0, I). */
EFFDIM_API effdim_status effdim_gen_gmm(size_t n, size_t d, size_t classes, double sep,
                                        uint64_t seed, effdim_dataset **out, effdim_error *err);

/* Teacher-student: a random tanh MLP d -> hidden -> out (PyTorch default
 * init from the seed) labels x ~ N(0, I). classes == 0: REAL targets (n, out)
 * = f(x) + noise*N(0,1). classes > 0: LABELS = argmax of the `classes`
 * outputs plus noise*N(0,1) (out must then be 0 or equal classes). */
EFFDIM_API effdim_status effdim_gen_teacher(size_t n, size_t d, size_t hidden, size_t out,
                                            size_t classes, double noise, uint64_t seed,
                                            effdim_dataset **outp, effdim_error *err);

/* ---- transforms (in place unless they return a new dataset) ------------- */

/* Keep the first m rows (m <= n). */
EFFDIM_API effdim_status effdim_dataset_head(effdim_dataset *ds, size_t m, effdim_error *err);
/* A uniformly random m of the row indices 0..n-1 (1 <= m <= n), ascending,
 * into rows (m): selection sampling (Knuth, TAOCP vol. 2, 3.4.2, Algorithm
 * S) with GSL's mt19937 seeded by seed, one uniform per row examined. The
 * same rows as effdim_dataset_random_subset keeps for the same n, m, seed;
 * `effdim spectrum --subset` runs on them. EINVAL for m = 0, m > n or a NULL
 * rows. */
EFFDIM_API effdim_status effdim_sample_rows(size_t n, size_t m, uint64_t seed, size_t *rows,
                                            effdim_error *err);
/* Keep a uniformly random m rows (order preserved), seeded. */
EFFDIM_API effdim_status effdim_dataset_random_subset(effdim_dataset *ds, size_t m, uint64_t seed,
                                                      effdim_error *err);
/* Split into train (first n - n_test rows after a seeded shuffle) and test;
 * both are new datasets carrying a copy of ds->spec. */
EFFDIM_API effdim_status effdim_dataset_split(const effdim_dataset *ds, size_t n_test,
                                              uint64_t seed, effdim_dataset **train,
                                              effdim_dataset **test, effdim_error *err);
/* Standardise each column of X to mean 0, sd 1 (population sd). mean and sd
 * (d each) receive the statistics when non-NULL; a constant column is only
 * centred (to exact zeros) and reported with sd 0. */
EFFDIM_API effdim_status effdim_dataset_standardize(effdim_dataset *ds, double *mean, double *sd,
                                                    effdim_error *err);
/* Apply given statistics (e.g. the training set's to a test set). */
EFFDIM_API effdim_status effdim_dataset_apply_standardize(effdim_dataset *ds, const double *mean,
                                                          const double *sd, effdim_error *err);
/* REAL targets: the column means and population sds of Y into mean, sd (k
 * each); a constant column reports sd 1 (centred only). */
EFFDIM_API effdim_status effdim_dataset_target_stats(const effdim_dataset *ds, double *mean,
                                                     double *sd, effdim_error *err);
/* Y = (Y - mean) / sd per column, and record mean and sd in y_mean, y_sd
 * (EINVAL when already standardised, for labels, or for an sd that is not
 * finite and > 0). */
EFFDIM_API effdim_status effdim_dataset_standardize_targets(effdim_dataset *ds,
                                                            const double *mean, const double *sd,
                                                            effdim_error *err);
/* Multiply X by factor (pixel scaling: 1.0/255). */
EFFDIM_API void effdim_dataset_scale(effdim_dataset *ds, double factor);
/* Replace round(fraction * n) labels, chosen at random, by a uniformly random
 * different class. LABELS only. *changed receives the count when non-NULL. */
/* The same for a share: ds holds rows [first, first + ds->n) of a set of
 * n_total rows, and receives exactly the changes effdim_dataset_label_noise
 * makes to those rows of the whole set (which is this with n_total = ds->n,
 * first = 0). *changed: the count in the share. */
EFFDIM_API effdim_status effdim_dataset_label_noise_share(effdim_dataset *ds, size_t n_total,
                                                          size_t first, double fraction,
                                                          uint64_t seed, size_t *changed,
                                                          effdim_error *err);
EFFDIM_API effdim_status effdim_dataset_label_noise(effdim_dataset *ds, double fraction,
                                                    uint64_t seed, size_t *changed,
                                                    effdim_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_DATA_H */
