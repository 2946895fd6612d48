#!/usr/bin/env bash
# tests/fuzz/make_seeds.sh EFFDIM FUZZ_SEEDS OUTDIR: the seed corpora of every
# fuzz target, one folder per target under OUTDIR, made by the project's own
# code: FUZZ_SEEDS (tests/fuzz/fuzz_seeds.c: IDX, CSV, data specs, h5: data
# sets) and the effdim command (checkpoints from `train`, spectrum files from
# `spectrum`, diag files from `diag`), on small networks so that each seed is
# a few kilobytes. OUTDIR is replaced only when everything was made.
set -euo pipefail
effdim=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
seeds=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
out=$3
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
rm -rf "$out.tmp"
mkdir -p "$out.tmp"/{checkpoint,spectrum,diag}
"$seeds" "$out.tmp"
work=$(mktemp -d "${TMPDIR:-/tmp}/effdim-seeds-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
q() { "$@" >/dev/null 2>log.txt || { echo "make_seeds.sh: $* failed:" >&2; cat log.txt >&2; exit 1; }; }

# checkpoints: Adam (cross-entropy), SGD with momentum (tanh, two hidden layers), AMSGrad (mse)
q "$effdim" train --data spirals:n=40,seed=2 --arch 2,6,2 --epochs 2 --batch 10 -o adam.h5
q "$effdim" train --data gmm:n=30,d=3,classes=3 --arch 3,4,4,3 --act tanh --opt sgd --momentum 0.9 \
    --epochs 1 --batch 10 -o sgd.h5
q "$effdim" train --data regression:n=20,d=2 --arch 2,3,1 --loss mse --opt amsgrad --epochs 1 \
    --batch full -o mse.h5
# spectrum files: SLQ, density and per-layer parts; GGN with vectors and the dense spectrum
q "$effdim" spectrum adam.h5 -k 3 --probes 4 --slq-steps 10 --density --per-layer --allow-partial \
    -o spectrum-slq.h5
q "$effdim" spectrum sgd.h5 -k 2 --op ggn --probes 0 --save-vectors --dense --allow-partial \
    -o spectrum-ggn.h5
# diag files: several methods, with and without standard errors
q "$effdim" diag adam.h5 --method ggn,ef,adam,hutchinson --probes 4 --min-probes 2 -o diag-adam.h5
q "$effdim" diag mse.h5 --method hessian,ggn-mc -o diag-mse.h5

cp adam.h5 sgd.h5 mse.h5 "$out.tmp/checkpoint/"
cp spectrum-slq.h5 spectrum-ggn.h5 "$out.tmp/spectrum/"
cp diag-adam.h5 diag-mse.h5 "$out.tmp/diag/"
rm -rf "$out"
mv "$out.tmp" "$out"
