#!/bin/bash
# docs/examples/slurm_spectrum.sh: the spectrum of a checkpoint on 8 MPI ranks under SLURM.
#
#   sbatch docs/examples/slurm_spectrum.sh CKPT.h5 OUT.h5 [more effdim spectrum options]
#
# Each rank holds 1/8 of the rows (docs/scaling.md); rank 0 writes OUT.h5 and the summary
# (this job's output file). The checkpoint, its data and the output folder must be on a file
# system every node sees. EFFDIM may name the binary (default: effdim on the PATH).
#SBATCH --job-name=effdim-spectrum
#SBATCH --ntasks=8
#SBATCH --cpus-per-task=1
#SBATCH --nodes=1-2
#SBATCH --time=01:00:00
#SBATCH --output=effdim-spectrum-%j.out
set -euo pipefail
CKPT=${1:?usage: sbatch slurm_spectrum.sh CKPT.h5 OUT.h5 [options]}
OUT=${2:?usage: sbatch slurm_spectrum.sh CKPT.h5 OUT.h5 [options]}
shift 2
EFFDIM=${EFFDIM:-effdim}
# one BLAS thread per rank: the ranks are the parallelism
export OPENBLAS_NUM_THREADS=1
srun --mpi=pmix "$EFFDIM" spectrum "$CKPT" -o "$OUT" -k 20 --hvp exact --threads 1 "$@"
