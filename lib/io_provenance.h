/* lib/io_provenance.h (internal): the provenance trailer every effdim file
 * this module family writes at its root: command_line, version, created. */
#ifndef EFFDIM_IO_PROVENANCE_H
#define EFFDIM_IO_PROVENANCE_H

#include "h5io.h"

/* command_line ("" when NULL), version (effdim_version() when NULL) and
 * created (now, ISO-8601 UTC, when NULL) as string attributes of obj
 * (lib/diag_io.c). */
effdim_status effdim_h5_write_provenance(hid_t obj, const char *command_line, const char *version,
                                         const char *created, effdim_error *err);

#endif
