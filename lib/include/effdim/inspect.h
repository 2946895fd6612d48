/* effdim/inspect.h: what any HDF5 file holds, for `effdim inspect`.
 *
 * The file's effdim kind (its root "format" attribute), every root attribute
 * with its values, and every data set with its shape and element type, read
 * through the same defended path as every loader (links refused, the file
 * first opened in a limited child: docs/file-formats.md, "Hostile files").
 * Attribute values are data: strings are returned as stored, never
 * interpreted.
 *
 * A sweep file has its own summary (effdim_inspect_sweep): the config, the
 * rows by status and the table.
 *
 * Ownership: effdim_inspect_file returns a summary that owns everything in it;
 * effdim_file_summary_free frees it (NULL-safe); effdim_inspect_sweep's is
 * freed by effdim_sweep_summary_free.
 */
#ifndef EFFDIM_INSPECT_H
#define EFFDIM_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "effdim/status.h"
#include "effdim/sweep.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EFFDIM_INSPECT_MAX_RANK 32

typedef enum effdim_attr_kind {
    EFFDIM_ATTR_STRING = 0,  /* strings[n] */
    EFFDIM_ATTR_NUMBER = 1,  /* values[n] (integers and floats, as doubles) */
    EFFDIM_ATTR_OTHER = 2    /* a type the summary does not read (compound, ...) */
} effdim_attr_kind;

typedef struct effdim_file_attr {
    char *name;
    effdim_attr_kind kind;
    int scalar;        /* 1: a scalar (n == 1) rather than a 1-D array */
    size_t n;
    char **strings;    /* (n) for STRING */
    double *values;    /* (n) for NUMBER */
} effdim_file_attr;

typedef struct effdim_file_dataset {
    char *path;                               /* "/spectrum/eigenvalues" */
    char type[16];                            /* "float64", "int32", "string", "compound", ... */
    size_t rank;
    uint64_t dims[EFFDIM_INSPECT_MAX_RANK];   /* (rank) */
} effdim_file_dataset;

typedef struct effdim_file_summary {
    char *format;                 /* the root "format" attribute, or NULL */
    size_t n_attrs;
    effdim_file_attr *attrs;      /* (n_attrs) root attributes, in name order */
    size_t n_datasets;
    effdim_file_dataset *datasets; /* (n_datasets) in name order */
} effdim_file_summary;

/* The summary of the file at path. EIO when it cannot be opened or read (and
 * the defended open's refusals: links, a file that crashes or hangs HDF5). */
EFFDIM_API effdim_status effdim_inspect_file(const char *path, effdim_file_summary **out,
                                             effdim_error *err);
EFFDIM_API void effdim_file_summary_free(effdim_file_summary *s);

/* The root attribute called name, or NULL. */
EFFDIM_API const effdim_file_attr *effdim_file_summary_attr(const effdim_file_summary *s,
                                                            const char *name);

/* A sweep file (format "effdim.sweep") summarised: its table (rows sorted by
 * grid index), the config in a few lines (effdim_sweep_config_describe of the
 * stored config; the stored text is data, parsed as any config), and the
 * rows counted by status. */
typedef struct effdim_sweep_summary {
    effdim_sweep_table *table;  /* rows sorted by index */
    char *config_text;          /* "data ...\ntest ...\ngrid ...\n..." */
    size_t shard_total;         /* configurations of the file's shard */
    size_t n_ok, n_partial, n_failed;
    size_t n_missing;           /* of the shard, not in the table yet */
} effdim_sweep_summary;

/* ENOTFOUND/EIO/EFORMAT naming the file (as effdim_sweep_table_load), EFORMAT when the
 * stored config does not parse. */
EFFDIM_API effdim_status effdim_inspect_sweep(const char *path, effdim_sweep_summary **out,
                                              effdim_error *err);
EFFDIM_API void effdim_sweep_summary_free(effdim_sweep_summary *s);

#ifdef __cplusplus
}
#endif
#endif /* EFFDIM_INSPECT_H */
