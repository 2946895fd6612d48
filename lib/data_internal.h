/* lib/data_internal.h: helpers shared by the data-set sources (data*.c); not installed.
 *
 * - a seeded GSL mt19937 generator that reports allocation failure;
 * - seeded selection of m of n row indices in increasing order (Knuth's
 *   selection sampling, TAOCP vol. 2, 3.4.2, Algorithm S), used both by
 *   effdim_dataset_random_subset and by the IDX loader, which converts only
 *   the chosen rows so a subset of Fashion-MNIST never holds the whole set;
 * - keeping chosen rows of a dataset in place;
 * - the finiteness check whose message names the source, the field, the row
 *   and the column;
 * - the IDX loader with row selection behind effdim_load_idx.
 */
#ifndef EFFDIM_DATA_INTERNAL_H
#define EFFDIM_DATA_INTERNAL_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

#include "effdim/data.h"

/* A gsl_rng_mt19937 seeded with gsl_rng_set(r, seed); NULL (err filled) on ENOMEM. */
gsl_rng *effdim_data_rng(uint64_t seed, effdim_error *err);

/* Choose m of the row indices 0..n-1 (m <= n), each m-subset equally likely,
 * written to rows (m) in increasing order. Draws exactly one uniform per
 * index examined from r. */
void effdim_data_choose_rows(gsl_rng *r, size_t n, size_t m, size_t *rows);

/* Keep rows[0..m) (strictly increasing, < ds->n) of ds in place, in that
 * order, and shrink the arrays. */
effdim_status effdim_data_keep_rows(effdim_dataset *ds, const size_t *rows, size_t m,
                                    effdim_error *err);

/* Every entry of a (rows, cols) row-major is finite; otherwise EDOM with
 * "<what>: <field> row R, column C: value V is not finite" (0-based R, C;
 * R counted from `first`, the file row of a[0]). */
effdim_status effdim_data_check_finite(const double *a, size_t rows, size_t cols, size_t first,
                                       const char *what, const char *field, effdim_error *err);

/* Keep rows [b, e) of ds (b < e <= ds->n) in place and shrink the arrays. */
effdim_status effdim_data_keep_range(effdim_dataset *ds, size_t b, size_t e, effdim_error *err);

/* How the IDX loader picks rows. */
typedef struct effdim_idx_select {
    size_t keep;       /* rows to keep; 0 = all */
    int random;        /* 0: the first `keep` rows; 1: a random `keep` rows, order kept */
    uint64_t seed;     /* for random: the same choice as effdim_dataset_random_subset */
    int ranks, rank;   /* ranks > 1: keep only rank's share (effdim_comm_share) of the
                          selected rows */
} effdim_idx_select;

/* effdim_load_idx with a row selection (sel may be NULL = all rows). The whole
 * of both files is still read and checked (counts, truncation, gzip CRC); only
 * the chosen rows (of them, the share) are converted and stored. k is
 * computed from all labels. *n_sel (may be NULL) receives the number of
 * selected rows, also when there are fewer than ranks (EINVAL). */
effdim_status effdim_idx_load_select(const char *images_path, const char *labels_path,
                                     size_t k_hint, const effdim_idx_select *sel,
                                     effdim_dataset **out, size_t *n_sel, effdim_error *err);

/* effdim_load_h5 reading only the first `rows` rows (0 = all) and, for
 * ranks > 1, of those only rank's share (effdim_comm_share): only that is
 * allocated and read of /X and /y (all selected labels are read for k).
 * EINVAL when the file has fewer rows or the selection fewer than ranks;
 * *n_sel (may be NULL) receives the selected rows' count. */
effdim_status effdim_load_h5_rows(const char *path, size_t rows, int ranks, int rank,
                                  effdim_dataset **out, size_t *n_sel, effdim_error *err);

#endif /* EFFDIM_DATA_INTERNAL_H */
