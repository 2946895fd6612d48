#!/bin/bash
# tests/test_blr_cli.sh: `effdim demo blr` end to end.
#
#   bash tests/test_blr_cli.sh path/to/effdim
#
# Runs a small configuration (41 inputs, 24 features): exit 0, blr.h5 and a
# PNG (when gnuplot is installed) in --out, the table's identity line below
# 1e-10, the file read back by h5py (when Debian's python3 has it: format,
# 42 rows, N_eff(H) <= min(n, k) and non-decreasing), --json parsed; then
# bad options are refused with one line naming the option.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_blr_cli.sh effdim-blr-cli "$@"

SMALL=(--points 41 --freq 12 --x-max 7.3 --seed 5)
if "$EFFDIM" demo blr "${SMALL[@]}" --out run >out.txt 2>err.txt; then
    ok "demo blr runs a small configuration"
else
    fail "demo blr runs a small configuration" "$(cat err.txt)"
fi
[ -s run/blr.h5 ] && ok "it writes blr.h5" || fail "it writes blr.h5"
if command -v gnuplot >/dev/null; then
    [ -s run/blr.png ] && ok "it draws blr.png with gnuplot" || fail "it draws blr.png" "$(cat err.txt)"
fi
err=$(sed -n 's/.*max relative error \([0-9.e+-]*\) over.*/\1/p' out.txt)
if [ -n "$err" ] && awk -v e="$err" 'BEGIN { exit !(e < 1e-10) }'; then
    ok "the identity holds to 1e-10 (max relative error $err)"
else
    fail "the identity holds to 1e-10" "$(cat out.txt)"
fi
grep -q "^    41 " out.txt && ok "the table ends at n = 41" || fail "the table ends at n = 41" "$(cat out.txt)"

if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    if /usr/bin/python3 - run/blr.h5 <<'PY' >py.txt 2>&1; then
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "effdim.blr" and f.attrs["format_version"] == 1
assert f.attrs["n_features"] == 24 and f.attrs["seed"] == 5 and f.attrs["complete"] == 1
h = f["blr/neff_hessian"][()]
n = f["blr/n"][()]
assert len(h) == 42 and (n == np.arange(42)).all()
assert (h <= np.minimum(n, 24) + 1e-9).all() and (np.diff(h) >= -1e-12).all()
assert sorted(f["blr/order"][()]) == list(range(41))
PY
        ok "h5py reads the file: 42 rows, N_eff(H) <= min(n, k) and non-decreasing"
    else
        fail "h5py reads the file" "$(cat py.txt)"
    fi
    if "$EFFDIM" demo blr "${SMALL[@]}" --out run --json >json.txt 2>err.txt &&
        /usr/bin/python3 -c "import json,sys; j=json.load(open('json.txt')); assert len(j['neff_function']) == 42 and j['max_identity_err'] < 1e-10" 2>py.txt; then
        ok "--json prints a summary with the N_eff curves"
    else
        fail "--json prints a summary" "$(cat err.txt py.txt)"
    fi
fi

GUARD=run/blr.h5
cp "$GUARD" guard.h5
GUARD_REF=guard.h5
expect_refusal "a zero noise variance is refused" "noise = 0" -- \
    "$EFFDIM" demo blr "${SMALL[@]}" --noise 0 --out run
expect_refusal "a malformed --shade is refused" "--shade" -- \
    "$EFFDIM" demo blr "${SMALL[@]}" --shade 225,175 --out run
expect_refusal "a bad --points is refused" "--points" -- \
    "$EFFDIM" demo blr --points many --out run
mkdir -p dirrun/blr.h5
expect_refusal "an output that is a folder is refused before the run" "folder" -- \
    "$EFFDIM" demo blr "${SMALL[@]}" --out dirrun
expect_refusal "an unknown option is refused" "--frobnicate" -- \
    "$EFFDIM" demo blr --frobnicate --out run
cli_finish
