#!/bin/bash
# tests/test_posterior_cli.sh: `effdim posterior`, `effdim predict` and
# `effdim prune` end to end.
#
#   bash tests/test_posterior_cli.sh path/to/effdim
#
# Trains a small regression net and a small classifier with Adam, builds
# every kind of posterior, predicts with samples and linearised, prunes by
# magnitude and SNR (with the gnuplot figure when gnuplot is installed), and
# provokes the bad inputs: each must exit 1 or 2 with one stderr line naming
# the option or the file and leave an existing output file untouched.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_posterior_cli.sh effdim-post-cli "$@"

REG="regression:n=200,seed=1"
REGT="regression:n=80,seed=2"
CLS="spirals:n=240,seed=3"
CLST="spirals:n=120,seed=4"
"$EFFDIM" train --data "$REG" --arch 1,16,1 --act tanh --opt adam --lr 0.01 --batch 32 \
    --epochs 60 --seed 1 -o reg.h5 >/dev/null 2>train.log || fail "train (regression)" "$(cat train.log)"
"$EFFDIM" train --data "$CLS" --arch 2,16,2 --act tanh --opt adam --lr 0.01 --batch 24 \
    --epochs 30 --seed 2 -o cls.h5 >/dev/null 2>train.log || fail "train (spirals)" "$(cat train.log)"

for m in badam-a badam-b ggn ef lowrank; do
    if "$EFFDIM" posterior reg.h5 --method "$m" --k 6 --json -o "p-$m.h5" >"p-$m.json" 2>p.log &&
        grep -q "\"method\":[[:space:]]*\"$m\"" "p-$m.json"; then
        ok "posterior --method $m writes a posterior file"
    else
        fail "posterior --method $m writes a posterior file" "$(cat p.log "p-$m.json")"
    fi
done

if grep -q '"evidence_converged":[[:space:]]*true' p-ggn.json && grep -q '"gamma"' p-ggn.json; then
    ok "the evidence prior reports convergence and gamma"
else
    fail "the evidence prior reports convergence and gamma" "$(cat p-ggn.json)"
fi

"$EFFDIM" posterior reg.h5 --method ggn --prior grid --grid 1e-3,1e3,13 -o grid.h5 >grid.txt 2>&1
if grep -q '^prior precision .*(grid)' grid.txt && "$EFFDIM" inspect grid.h5 | grep -q '/posterior/grid/alpha'; then
    ok "the grid prior writes its grid"
else
    fail "the grid prior writes its grid" "$(cat grid.txt)"
fi

"$EFFDIM" predict p-ggn.h5 --data "$REGT" --samples 32 --json -o pred.h5 >pred.json 2>pred.log
"$EFFDIM" predict p-ggn.h5 --data "$REGT" --linearised --json -o predl.h5 >predl.json 2>pred.log
if grep -q '"rmse"' pred.json && grep -q '"predictive":[[:space:]]*"linearised"' predl.json &&
    "$EFFDIM" inspect pred.h5 | grep -q '/predictions/var'; then
    ok "predict prints RMSE and NLL and writes means and variances"
else
    fail "predict prints RMSE and NLL and writes means and variances" "$(cat pred.json predl.json pred.log)"
fi

"$EFFDIM" posterior cls.h5 --method badam-b -o pc.h5 >/dev/null 2>&1
"$EFFDIM" predict pc.h5 --data "$CLST" --samples 8 -o predc.h5 >predc.txt 2>&1
if grep -q '^accuracy .* nll .* ece .* brier ' predc.txt; then
    ok "predict on a classifier prints accuracy, NLL, ECE and Brier"
else
    fail "predict on a classifier prints accuracy, NLL, ECE and Brier" "$(cat predc.txt)"
fi

# IVON's own posterior: no data needed, the precision ess (h + wd) read back by
# predict, which averages the softmax over 16 weight samples
"$EFFDIM" train --data "$CLS" --arch 2,16,2 --act tanh --opt ivon --lr 0.1 --ess 240 --hess-init 0.5 \
    --batch 24 --epochs 10 --seed 2 -o ivon.h5 >/dev/null 2>train.log || fail "train (ivon)" "$(cat train.log)"
"$EFFDIM" posterior ivon.h5 --method ivon --json -o pi.h5 >pi.json 2>pi.log
"$EFFDIM" predict pi.h5 --data "$CLST" --samples 16 -o predi.h5 >predi.txt 2>&1
if grep -q '"method":[[:space:]]*"ivon"' pi.json && grep -q '"prior_precision":[[:space:]]*0.024' pi.json &&
    grep -q '^accuracy .* nll .* ece .* brier ' predi.txt; then
    ok "posterior --method ivon reads IVON's state and predict averages its samples"
else
    fail "posterior --method ivon reads IVON's state and predict averages its samples" \
        "$(cat pi.json pi.log predi.txt)"
fi

PLOT=()
if command -v gnuplot >/dev/null; then PLOT=(--plot prune.png); fi
"$EFFDIM" prune cls.h5 --posterior pc.h5 --fractions 0,0.5,0.9 --test "$CLST" "${PLOT[@]}" \
    -o prune.h5 >prune.txt 2>&1
if grep -q 'snr' prune.txt && grep -q 'magnitude' prune.txt && grep -q '^0.9 ' prune.txt &&
    "$EFFDIM" inspect prune.h5 | grep -q '/prune/snr/accuracy'; then
    ok "prune sweeps both criteria into a table"
else
    fail "prune sweeps both criteria into a table" "$(cat prune.txt)"
fi
if [ ${#PLOT[@]} -eq 0 ] || [ -s prune.png ]; then
    ok "prune draws the PNG figure (when gnuplot is installed)"
else
    fail "prune draws the PNG figure (when gnuplot is installed)" "$(cat prune.txt)"
fi

# ---- errors -------------------------------------------------------------------------
cp pred.h5 guard.h5
GUARD=guard.h5
GUARD_REF=pred.h5
expect_refusal "posterior refuses an unknown method" "unknown posterior method 'kfac'" -- \
    "$EFFDIM" posterior reg.h5 --method kfac -o guard.h5
expect_refusal "posterior refuses a non-positive prior" "--prior" -- \
    "$EFFDIM" posterior reg.h5 --method ggn --prior -1 -o guard.h5
"$EFFDIM" train --data "$REG" --arch 1,8,1 --opt sgd --lr 0.01 --epochs 1 -o sgd.h5 >/dev/null 2>&1
expect_refusal "posterior refuses BADAM without Adam state" "sgd.h5: /optimizer/exp_avg_sq" -- \
    "$EFFDIM" posterior sgd.h5 --method badam-a -o guard.h5
expect_refusal "posterior refuses ivon without IVON state" "sgd.h5: /optimizer/hess: not found" -- \
    "$EFFDIM" posterior sgd.h5 --method ivon -o guard.h5
expect_refusal "predict refuses a checkpoint as the posterior" "expected 'effdim.posterior'" -- \
    "$EFFDIM" predict reg.h5 --data "$REGT" -o guard.h5
expect_refusal "predict refuses data that does not fit" "" -- \
    "$EFFDIM" predict p-ggn.h5 --data "$CLST" -o guard.h5
expect_refusal "prune refuses snr without a posterior" "--posterior" -- \
    "$EFFDIM" prune cls.h5 --by snr --test "$CLST" -o guard.h5
expect_refusal "prune refuses a fraction of 1" "outside [0, 1)" -- \
    "$EFFDIM" prune cls.h5 --fractions 0.5,1 --test "$CLST" -o guard.h5

# an output equal to an input is refused before any work, the input unchanged
cp reg.h5 reg-ref.h5
GUARD=reg.h5
GUARD_REF=reg-ref.h5
expect_refusal "posterior refuses -o equal to its checkpoint" "same file as the input" -- \
    "$EFFDIM" posterior reg.h5 --method ggn -o ./reg.h5
cp p-ggn.h5 p-ggn-ref.h5
GUARD=p-ggn.h5
GUARD_REF=p-ggn-ref.h5
expect_refusal "predict refuses -o equal to its posterior" "same file as the input" -- \
    "$EFFDIM" predict p-ggn.h5 --data "$REGT" -o p-ggn.h5
cp cls.h5 cls-ref.h5
GUARD=cls.h5
GUARD_REF=cls-ref.h5
expect_refusal "prune refuses -o equal to its checkpoint" "same file as the input" -- \
    "$EFFDIM" prune cls.h5 --test "$CLST" -o cls.h5
expect_refusal "prune refuses --plot equal to its checkpoint" "same file as the input" -- \
    "$EFFDIM" prune cls.h5 --test "$CLST" -o prune-x.h5 --plot cls.h5
expect_refusal "prune refuses --plot equal to -o" "two outputs" -- \
    "$EFFDIM" prune cls.h5 --test "$CLST" -o cls-out.h5 --plot cls-out.h5
expect_refusal "predict refuses a folder as -o" "folder" -- \
    "$EFFDIM" predict p-ggn.h5 --data "$REGT" -o .

cli_finish
