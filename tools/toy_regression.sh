#!/bin/bash
# tools/toy_regression.sh: the BADAM toy regression (SEEDS.md 1.4) with
# effdim's commands: predictive mean and 2-sigma bands of BADAM (variant B),
# diagonal-GGN Laplace and low-rank Laplace, in one PNG with the data.
#
#   bash tools/toy_regression.sh EFFDIM [OUTDIR]
#
# Data: y = x + 0.3 sin(2 pi (x + e)) + 0.3 sin(4 pi (x + e)) + e, e ~ N(0, 0.02^2),
# 200 training x = 0, 0.0025, ..., 0.4975 and 400 test x on [-0.5, 1.2) (the
# reference's grids; the noise from awk's generator, seeds 123 and 124).
# Model 1-50-50-1 tanh, Glorot init, MSE + L2 1e-4 (--wd), Adam lr 1e-3,
# batch 32, EPOCHS epochs (default 5000 = 35,000 steps; the reference ran 20,000
# epochs of batch 128 = 40,000 steps, but a checkpoint cannot hold more than
# about 8,000 epochs of per-epoch metrics, so smaller batches). Predictives:
# BADAM by 100 weight samples (without tempering, and with the reference's
# N_s = 1000 in the figure), the Laplace posteriors linearised. The table's
# mean width is the mean over test x of 4 predictive sd (a 2-sigma interval). Needs gnuplot and python3-h5py (to read the predictions).
set -euo pipefail
EFFDIM=${1:?usage: $0 EFFDIM [OUTDIR]}
OUT=${2:-toy-regression}
EPOCHS=${EPOCHS:-5000}
mkdir -p "$OUT"
gen() { # gen SEED N START STEP
    awk -v seed="$1" -v n="$2" -v a="$3" -v h="$4" 'BEGIN {
        srand(seed); pi = atan2(0, -1); print "x,y";
        for (i = 0; i < n; i++) {
            u = rand(); v = rand(); if (u < 1e-300) u = 1e-300;
            e = 0.02 * sqrt(-2 * log(u)) * cos(2 * pi * v);
            x = a + i * h;
            printf "%.17g,%.17g\n", x, x + 0.3 * sin(2 * pi * (x + e)) + 0.3 * sin(4 * pi * (x + e)) + e
        } }'
}
gen 123 200 0 0.0025 >"$OUT/train.csv"
gen 124 400 -0.5 0.00425 >"$OUT/test.csv"
TR="csv:$OUT/train.csv,target=y"
TE="csv:$OUT/test.csv,target=y"
"$EFFDIM" train --data "$TR" --arch 1,50,50,1 --act tanh --init-scheme glorot --opt adam \
    --lr 1e-3 --wd 1e-4 --batch 32 --epochs "$EPOCHS" --seed 1 --threads 1 -o "$OUT/model.h5" \
    2>"$OUT/train.log" >/dev/null
tail -1 "$OUT/train.log"
"$EFFDIM" posterior "$OUT/model.h5" --method badam-b --threads 1 -o "$OUT/badam.h5" >/dev/null 2>&1
"$EFFDIM" posterior "$OUT/model.h5" --method ggn --threads 1 -o "$OUT/ggn.h5" >/dev/null 2>&1
"$EFFDIM" posterior "$OUT/model.h5" --method lowrank --k 20 --threads 1 -o "$OUT/lowrank.h5" \
    >/dev/null 2>&1 || [ $? -eq 3 ]
printf "%-24s %10s %10s %12s\n" posterior "test MSE" "test NLL" "mean width"
for p in badam badam1000 ggn lowrank; do
    case $p in
    badam) A=(--samples 100) ;;
    badam1000) A=(--samples 100 --tempering 1000) ;;
    *) A=(--linearised) ;;
    esac
    "$EFFDIM" predict "$OUT/${p%1000}.h5" --data "$TE" "${A[@]}" --threads 1 \
        -o "$OUT/pred-$p.h5" >/dev/null 2>&1
done
/usr/bin/python3 - "$OUT" <<'PY'
import sys, h5py, numpy as np
out = sys.argv[1]
te = np.loadtxt(f"{out}/test.csv", delimiter=",", skiprows=1)
tr = np.loadtxt(f"{out}/train.csv", delimiter=",", skiprows=1)
cols = [te[:, 0], te[:, 1]]
for p, label in [("badam", "BADAM B, N_s = 1"), ("badam1000", "BADAM B, N_s = 1000"),
                 ("ggn", "diag-GGN Laplace (GLM)"), ("lowrank", "low-rank k=20 (GLM)")]:
    with h5py.File(f"{out}/pred-{p}.h5") as f:
        m, v = f["predictions/mean"][:, 0], f["predictions/var"][:, 0]
        mse = float(np.mean((m - te[:, 1]) ** 2))
        print(f"{label:24s} {mse:10.4g} {f.attrs['nll']:10.4g} {np.mean(4 * np.sqrt(v)):12.4g}")
    if p != "badam":
        cols += [m, np.sqrt(v)]
np.savetxt(f"{out}/bands.dat", np.column_stack(cols), fmt="%.8g")
np.savetxt(f"{out}/train.dat", tr, fmt="%.8g")
PY
cat >"$OUT/plot.gp" <<'GP'
set terminal pngcairo size 1200,420 font 'sans,10'
set output 'toy.png'
set multiplot layout 1,3
set xrange [-0.5:1.2]
set yrange [-1.5:2.5]
set key top left
set grid
titles = "'BADAM B, 100 samples, tempering N_s = 1000' 'diag-GGN Laplace (linearised)' 'low-rank Laplace, k = 20 (linearised)'"
do for [i=1:3] {
  set title word(titles, i)
  c = 1 + 2 * i
  plot 'bands.dat' using 1:(column(c) - 2 * column(c + 1)):(column(c) + 2 * column(c + 1)) \
         with filledcurves fc rgb '#c6dbef' title 'mean +- 2 sd', \
       '' using 1:c with lines lw 2 lc rgb '#08519c' title 'predictive mean', \
       'train.dat' using 1:2 with points pt 7 ps 0.4 lc rgb 'black' title 'training data'
}
unset multiplot
GP
(cd "$OUT" && gnuplot plot.gp)
echo "figure: $OUT/toy.png"
