#!/bin/bash
# tests/test_plot_cli.sh: `effdim plot` end to end.
#
#   bash tests/test_plot_cli.sh path/to/effdim
#
# Trains a tiny tanh net on two spirals, runs `effdim spectrum` with the
# density, SLQ and dense parts, draws the figure (when gnuplot is installed),
# checks the SLQ flags the plot circles are stored in the file, then feeds it a
# spectrum file whose strings carry a quote, a newline, backquotes and gnuplot
# '!' shell commands: the figure is drawn and no command runs. Errors: no -o,
# a file that is not a spectrum.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_plot_cli.sh effdim-plot-cli "$@"

DATA="spirals:n=200,seed=3"
if "$EFFDIM" train --data "$DATA" --arch 2,8,8,2 --act tanh --lr 0.01 --batch 200 --epochs 40 \
    --seed 2 -o model.h5 >train.txt 2>&1; then
    ok "train writes model.h5"
else
    fail "train" "$(cat train.txt)"
fi
if "$EFFDIM" spectrum model.h5 -k 4 --hvp exact --probes 6 --slq-steps 40 --density --dense \
    --z 0.001,0.1,1,10 -o spec.h5 >spec.txt 2>&1; then
    ok "spectrum --density --dense writes spec.h5"
else
    fail "spectrum" "$(cat spec.txt)"
fi

expect_usage() { # NAME SUBSTRING -- COMMAND...
    local name=$1 want=$2
    shift 3
    "$@" >out.txt 2>err.txt
    local rc=$?
    if [ "$rc" -ne 0 ] && grep -qF -- "$want" err.txt && [ "$(wc -l <err.txt)" -eq 1 ]; then
        ok "$name (exit $rc: $(cat err.txt))"
    else
        fail "$name" "exit $rc" "stderr: $(cat err.txt)"
    fi
}
expect_usage "plot without -o is refused" "-o/--output is required" -- "$EFFDIM" plot spec.h5
expect_usage "plot of a checkpoint is refused" "model.h5" -- "$EFFDIM" plot model.h5 -o x.png
[ ! -e x.png ] && ok "the refused plot leaves no x.png" || fail "x.png was written"

if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    if /usr/bin/python3 - <<'PY' >py.txt 2>&1; then
import h5py, numpy as np
f = h5py.File("spec.h5", "r")
flags = f["effdim/n_eff_slq_flags"][()]
assert flags.shape == f["effdim/z"].shape and flags.dtype == np.int64, (flags.shape, flags.dtype)
assert set(flags.tolist()) <= set(range(8)), flags
PY
        ok "the spectrum file stores one SLQ flag per z"
    else
        fail "the SLQ flags in spec.h5" "$(cat py.txt)"
    fi
    # hostile strings: a quote ends a gnuplot string, a newline starts a new
    # command, '!' runs a shell command, backquotes substitute one
    cp spec.h5 evil.h5
    cp spec.h5 evil-op.h5
    if /usr/bin/python3 - "$TMP" <<'PY' >py.txt 2>&1; then
import sys, h5py
t = sys.argv[1]
with h5py.File("evil.h5", "r+") as f:
    f.attrs["data_spec"] = "h5:x'\n!touch %s/PWNED1\nprint '" % t
    f.attrs["checkpoint"] = "m`touch %s/PWNED2`'; system('touch %s/PWNED3') #" % (t, t)
with h5py.File("evil-op.h5", "r+") as f:
    f.attrs["operator"] = "hessian'\n!touch %s/PWNED4\n" % t
PY
        if command -v gnuplot >/dev/null; then
            if "$EFFDIM" plot evil.h5 -o evil.png >out.txt 2>err.txt && [ -s evil.png ]; then
                ok "plot draws a file whose strings hold quotes, newlines and commands"
            else
                fail "plot of evil.h5" "$(cat err.txt)"
            fi
        else
            "$EFFDIM" plot evil.h5 -o evil.png >out.txt 2>err.txt
        fi
        # a name field (operator) that is not one of its names is refused, one line
        "$EFFDIM" plot evil-op.h5 -o evil-op.png >out.txt 2>err.txt
        rc=$?
        if [ "$rc" -ne 0 ] && [ "$(wc -l <err.txt)" -eq 1 ] && grep -q "evil-op.h5: /: attribute 'operator' is not hessian or ggn" err.txt && [ ! -e evil-op.png ]; then
            ok "a spectrum file whose operator is not a known name is refused ($(cat err.txt))"
        else
            fail "refusing evil-op.h5" "exit $rc" "$(cat err.txt)"
        fi
        if compgen -G "$TMP/PWNED*" >/dev/null; then
            fail "no command from the file ran" "$(ls "$TMP"/PWNED*)"
        else
            ok "no command from the file ran (no PWNED file)"
        fi
    else
        fail "writing evil.h5" "$(cat py.txt)"
    fi
fi

if command -v gnuplot >/dev/null; then
    if "$EFFDIM" plot spec.h5 -o fig.png >out.txt 2>err.txt; then
        ok "plot writes fig.png ($(head -1 out.txt))"
    else
        fail "plot writes fig.png" "$(cat err.txt)"
    fi
    [ "$(head -c 8 fig.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] &&
        ok "fig.png is a PNG" || fail "fig.png is not a PNG"
    grep -q "density" out.txt && grep -q "SLQ error bars" out.txt && grep -q "dense curve" out.txt &&
        ok "the figure has the density, the SLQ error bars and the dense curve" ||
        fail "the figure's parts" "$(cat out.txt)"
    ls ./*.tmp-* >/dev/null 2>&1 && fail "a temporary PNG was left" || ok "no temporary PNG left"
fi
cli_finish
