/* lib/comm_internal.h: what lib/comm.c offers the other sources; not installed. */
#ifndef EFFDIM_COMM_INTERNAL_H
#define EFFDIM_COMM_INTERNAL_H

#include "effdim/comm.h"

/* effdim_comm_operator; own = 1: the result owns inner (freed with it, also
 * when this call fails). */
effdim_status effdim_comm_operator_make(effdim_operator *inner, effdim_comm *c, double weight,
                                        double shift, int own, effdim_operator **out,
                                        effdim_error *err);

/* EINVAL naming `what` when n rows cannot give each of `ranks` ranks a row
 * (the message of effdim_comm_check_rows, which calls it); ranks <= 1: OK
 * for n >= 1. Used by the loaders of one rank's share (lib/data*.c), which
 * take (ranks, rank) rather than a communicator. */
effdim_status effdim_rows_for_ranks(size_t n, int ranks, const char *what, effdim_error *err);

#endif
