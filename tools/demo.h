/* tools/demo.h: the demos behind `effdim demo <name>` (dispatcher: tools/cmd_demo.c).
 * Each demo is a small subcommand: argv[0] is the demo's name. */
#ifndef EFFDIM_TOOLS_DEMO_H
#define EFFDIM_TOOLS_DEMO_H

/* Reddi, Kale and Kumar 2018: Adam fails, AMSGrad converges (tools/demo_amsgrad.c). */
int demo_amsgrad(int argc, char **argv);

/* Maddox et al. 2020, Section 4: N_eff of the BLR posterior as points are added (tools/demo_blr.c). */
int demo_blr(int argc, char **argv);

/* The main job: train on two spirals, then the Hessian spectrum and N_eff (tools/demo_spirals.c). */
int demo_spirals(int argc, char **argv);

#endif
