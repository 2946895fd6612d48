#!/bin/bash
# tests/test_surface_cli.sh: `effdim surface` and `effdim perturb` end to end.
#
#   bash tests/test_surface_cli.sh path/to/effdim
#
# Trains a tiny ELU network with BCE on two spirals, draws loss surfaces in
# two eigenspaces (file, PNG when gnuplot is installed, h5py check of the
# centre when Debian's python3 has h5py), runs the perturbation test (a
# zero-norm step changes nothing; --json parses), then provokes the errors:
# a subspace larger than P, a malformed --test, a missing -o.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_surface_cli.sh effdim-surface-cli "$@"

DATA="spirals:n=120,seed=3"
if "$EFFDIM" train --data "$DATA" --arch 2,6,6,1 --act elu --loss bce --opt adam --lr 0.01 \
    --batch 120 --epochs 30 --seed 2 -o model.h5 >train.txt 2>&1; then
    ok "train --act elu --loss bce writes model.h5"
else
    fail "train --act elu --loss bce" "$(cat train.txt)"
fi
PLOT=()
command -v gnuplot >/dev/null && PLOT=(--plot surf.png)
if "$EFFDIM" surface model.h5 --subspace top:3,bottom:20 --points 7 --range 0.5 -o surf.h5 \
    "${PLOT[@]}" >out.txt 2>err.txt; then
    ok "surface writes two surfaces"
else
    fail "surface writes two surfaces" "$(cat err.txt)"
fi
grep -q "^bottom:20 " out.txt && ok "its table lists bottom:20" || fail "its table" "$(cat out.txt)"
if [ ${#PLOT[@]} -gt 0 ]; then
    [ -s surf.png ] && ok "surface draws surf.png" || fail "surface draws surf.png" "$(cat err.txt)"
fi
if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    if /usr/bin/python3 - <<'PY' >py.txt 2>&1; then
import h5py
f = h5py.File("surf.h5", "r")
assert f.attrs["format"] == "effdim.surface" and f.attrs["n_params"] == 67
L = f["surfaces/s1/loss"][()]
assert L.shape == (7, 7) and abs(L[3, 3] - f.attrs["center_loss"]) < 1e-12
assert f["surfaces/s1"].attrs["subspace"] == "bottom:20" and f["surfaces/s1"].attrs["first"] == 47
PY
        ok "h5py reads the surfaces: the centre is the checkpoint's loss"
    else
        fail "h5py reads the surfaces" "$(cat py.txt)"
    fi
fi
if "$EFFDIM" perturb model.h5 --test top:3:0,bottom:20:1 --directions 4 >pert.txt 2>err.txt &&
    grep -Eq "^top:3 +3 +0 +4 +0.00 +0 +0 " pert.txt; then
    ok "perturb: a zero-norm step changes no prediction"
else
    fail "perturb: a zero-norm step changes no prediction" "$(cat pert.txt err.txt)"
fi
if "$EFFDIM" perturb model.h5 --test top:2:0.5 --directions 3 --json >pert.json 2>err.txt &&
    grep -q '"changed_mean"' pert.json; then
    ok "perturb --json"
else
    fail "perturb --json" "$(cat pert.json err.txt)"
fi

GUARD=surf.h5
cp surf.h5 guard.h5
GUARD_REF=guard.h5
expect_refusal "surface refuses a subspace larger than P" "bottom:500" -- \
    "$EFFDIM" surface model.h5 --subspace bottom:500 --points 3 -o surf.h5
cp model.h5 model-ref.h5
GUARD=model.h5 GUARD_REF=model-ref.h5 expect_refusal "surface refuses -o equal to its checkpoint" \
    "same file as the input" -- "$EFFDIM" surface model.h5 --points 3 -o model.h5
GUARD=model.h5 GUARD_REF=model-ref.h5 expect_refusal "surface refuses --plot equal to its checkpoint" \
    "same file as the input" -- "$EFFDIM" surface model.h5 --points 3 -o s2.h5 --plot model.h5
expect_refusal "surface needs -o" "-o FILE is required" -- \
    "$EFFDIM" surface model.h5 --points 3
expect_refusal "perturb refuses a malformed --test" "--test" -- \
    "$EFFDIM" perturb model.h5 --test top3
expect_refusal "perturb refuses an unknown --order" "--order" -- \
    "$EFFDIM" perturb model.h5 --order magnitude
cli_finish
