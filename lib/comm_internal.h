/* lib/comm_internal.h: what lib/comm.c offers the other sources; not installed. */
#ifndef EFFDIM_COMM_INTERNAL_H
#define EFFDIM_COMM_INTERNAL_H

#include "effdim/comm.h"

/* effdim_comm_operator; own = 1: the result owns inner (freed with it, also
 * when this call fails). */
effdim_status effdim_comm_operator_make(effdim_operator *inner, effdim_comm *c, double weight,
                                        double shift, int own, effdim_operator **out,
                                        effdim_error *err);

#endif
