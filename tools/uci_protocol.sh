#!/bin/bash
# tools/uci_protocol.sh: the UCI regression protocol of Hernandez-Lobato and
# Adams (ICML 2015) with effdim's own commands, for the posteriors of
# docs/posteriors.md.
#
#   bash tools/uci_protocol.sh EFFDIM DATASET [SPLITS] [OUTDIR]
#
# DATASET is boston or diabetes (the python3-sklearn files, datasets/README.md).
# For each split s = 0 .. SPLITS-1 (default 20): train the MAP network (one
# hidden layer of 50 relu units, Adam lr 0.01, batch 32, seed s + 1) on the 90%
# training part (inputs and targets standardised on it; metrics in original
# units), with the weight decay (WDS, default 1e-4 1e-3 1e-2 1e-1) and the
# epochs (EPOCHS_GRID, default 10 20 40 80) that give the lowest mean squared
# error on an 80/20 fit/valid split of the training part (TUNE=0: 40 epochs,
# or EPOCHS, and weight decay 1e-4), build each posterior with the evidence prior, and
# predict the 10% test part (BADAM by 64 weight samples; the Laplace posteriors
# both linearised (glm) and by 64 samples (mc); lowrank with the prior or the
# left-over GGN diagonal in the other directions). Prints one table row per method: test RMSE and
# test log-likelihood (mean over rows, original units), mean and standard
# error over the splits. The raw per-split numbers go to OUTDIR/results.txt; a
# posterior that fails on a split (e.g. the evidence iteration running away)
# is listed in OUTDIR/failures.txt and counted below the table.
set -euo pipefail
EFFDIM=${1:?usage: $0 EFFDIM boston|diabetes [SPLITS] [OUTDIR]}
SET=${2:?usage: $0 EFFDIM boston|diabetes [SPLITS] [OUTDIR]}
SPLITS=${3:-20}
OUT=${4:-uci-$SET}
EPOCHS=${EPOCHS:-40}
TUNE=${TUNE:-1}
WDS=${WDS:-1e-4 1e-3 1e-2 1e-1}
EPOCHS_GRID=${EPOCHS_GRID:-10 20 40 80}
mkdir -p "$OUT"
RES="$OUT/results.txt"
: >"$RES"
FAIL="$OUT/failures.txt"
: >"$FAIL"
: >"$OUT/posterior-all.log"
: >"$OUT/chosen.txt"
D=$([ "$SET" = boston ] && echo 13 || echo 10)

# tune SPLIT: WD and EP minimising the mean squared error on the valid part
# of the training split (fit/valid, 80/20; datasets/README.md), never the test
tune() {
    local best="" wd ep v
    for wd in $WDS; do
        for ep in $EPOCHS_GRID; do
            v=$("$EFFDIM" train --data "$SET:part=fit,split=$1" --test "$SET:part=valid,split=$1" \
                --arch "$D,50,1" --act relu --opt adam --lr 0.01 --batch 32 --epochs "$ep" \
                --wd "$wd" --seed $(($1 + 1)) --threads 1 --json -o "$OUT/tune.h5" 2>/dev/null |
                grep -o '"test_loss":[^,}]*' | cut -d: -f2 | tr -d ' \t')
            if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then
                best=$v WD=$wd EP=$ep
            fi
        done
    done
}

# post CKPT METHOD SPLIT: the posterior file, or a line in OUTDIR/failures.txt
# (exit 3, an iteration limit, still writes the posterior and is kept)
post() {
    local args=(--method "$2") rc=0
    [ "$2" = lowrank-diag ] && args=(--method lowrank --rest diag)
    "$EFFDIM" posterior "$1" "${args[@]}" --k 20 --threads 1 -o "$OUT/post-$2.h5" \
        >/dev/null 2>"$OUT/posterior.log" || rc=$?
    cat "$OUT/posterior.log" >>"$OUT/posterior-all.log"
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        echo "split $3 $2: $(tail -n 1 "$OUT/posterior.log")" >>"$FAIL"
        rm -f "$OUT/post-$2.h5"
    fi
}

# row METHOD PREDICT.json: "method rmse loglik" into the results
row() {
    local rmse nll
    rmse=$(grep -o '"rmse":[^,}]*' "$2" | cut -d: -f2)
    nll=$(grep -o '"nll":[^,}]*' "$2" | cut -d: -f2)
    echo "$1 $rmse $nll" >>"$RES"
}

for ((s = 0; s < SPLITS; ++s)); do
    TR="$SET:part=train,split=$s"
    TE="$SET:part=test,split=$s"
    M="$OUT/map-$s.h5"
    WD=1e-4 EP=$EPOCHS
    [ "$TUNE" = 1 ] && tune "$s"
    echo "split $s wd $WD epochs $EP" >>"$OUT/chosen.txt"
    "$EFFDIM" train --data "$TR" --arch "$D,50,1" --act relu --opt adam --lr 0.01 --batch 32 \
        --epochs "$EP" --wd "$WD" --seed $((s + 1)) --threads 1 -o "$M" >/dev/null \
        2>"$OUT/train.log"
    rm -f "$OUT"/post-*.h5
    for m in ggn badam-a badam-b lowrank lowrank-diag; do
        post "$M" "$m" "$s"
    done
    "$EFFDIM" predict "$OUT/post-ggn.h5" --data "$TE" --point --json --threads 1 \
        -o "$OUT/pred.h5" >"$OUT/p.json" 2>/dev/null && row map "$OUT/p.json"
    for m in badam-a badam-b; do
        "$EFFDIM" predict "$OUT/post-$m.h5" --data "$TE" --samples 64 --seed "$s" --json \
            --threads 1 -o "$OUT/pred.h5" >"$OUT/p.json" 2>/dev/null && row "$m-mc" "$OUT/p.json"
    done
    for m in ggn lowrank lowrank-diag; do
        "$EFFDIM" predict "$OUT/post-$m.h5" --data "$TE" --linearised --json --threads 1 \
            -o "$OUT/pred.h5" >"$OUT/p.json" 2>/dev/null && row "$m-glm" "$OUT/p.json"
        "$EFFDIM" predict "$OUT/post-$m.h5" --data "$TE" --samples 64 --seed "$s" --json \
            --threads 1 -o "$OUT/pred.h5" >"$OUT/p.json" 2>/dev/null && row "$m-mc" "$OUT/p.json"
    done
done

# mean and standard error (sample sd / sqrt(splits)) per method; log-likelihood = -nll
printf "%-14s %18s %22s\n" "method" "test RMSE" "test log-likelihood"
for m in map badam-a-mc badam-b-mc ggn-glm ggn-mc lowrank-glm lowrank-mc lowrank-diag-glm \
    lowrank-diag-mc; do
    awk -v m="$m" -v all="$SPLITS" '$1 == m { n++; r += $2; rr += $2 * $2; l -= $3; ll += $3 * $3 }
        END { if (n < 2) exit;
              sr = sqrt((rr - r * r / n) / (n - 1) / n); sl = sqrt((ll - l * l / n) / (n - 1) / n);
              printf "%-14s %10.2f +- %5.2f %12.2f +- %5.2f%s\n", m, r / n, sr, l / n, sl,
                     n < all ? sprintf("  (%d splits)", n) : "" }' "$RES"
done
if [ "$TUNE" = 1 ]; then
    echo "($SPLITS splits of $SET; weight decay and epochs chosen per split on the training"
    echo " split's valid part, $OUT/chosen.txt:" $(awk '{ print $4 "/" $6 }' "$OUT/chosen.txt" |
        sort | uniq -c | sort -rn | awk '{ printf "%s x%s ", $2, $1 }')")"
else
    echo "($SPLITS splits of $SET, $EPOCHS epochs, weight decay 1e-4)"
fi
echo "(per-split numbers in $RES)"
if [ -s "$FAIL" ]; then
    echo "posteriors that failed (no row for that split; $FAIL):"
    cut -d' ' -f3 "$FAIL" | sort | uniq -c
fi
