#!/bin/bash
# tests/test_diag_cli.sh: `effdim diag` and `effdim compare` end to end.
#
#   bash tests/test_diag_cli.sh path/to/effdim
#
# Trains a tiny tanh network on two spirals with Adam, writes every diagonal
# with `effdim diag`, checks the file with h5py when Debian's python3 has it
# (the ggn diagonal equals the hessian one nowhere near for tanh, the ef
# diagonal's sum is the mean squared per-sample gradient norm...), runs
# `effdim compare` from the files and from scratch (with --save-spectrum and
# gnuplot figures when gnuplot is installed), then provokes the errors: an
# unknown method, ivon without IVON state, adam on an SGD checkpoint, an
# exact Hessian above its cost limit without --force, a missing or
# wrong-format spectrum or diag file. Each must exit non-zero with one line
# on stderr naming the file or the option, and write no output file.
# Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed".
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_diag_cli.sh effdim-diag-cli "$@"

# expect_error NAME STATUS PATTERN OUTPUT -- command...: exit status, one stderr
# line matching PATTERN, and no OUTPUT file.
expect_error() {
    local name=$1 want=$2 pattern=$3 out=$4
    shift 5
    "$@" >stdout.txt 2>stderr.txt
    local rc=$?
    local lines
    lines=$(grep -c . stderr.txt)
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && grep -q -- "$pattern" stderr.txt &&
        [ ! -e "$out" ]; then
        ok "$name"
    else
        fail "$name" "exit $rc (want $want), stderr: $(cat stderr.txt)"
    fi
    rm -f "$out"
}

DATA="spirals:n=240,seed=3"
"$EFFDIM" train --data "$DATA" --arch 2,12,10,2 --act tanh --opt adam --lr 0.01 --batch 24 \
    --epochs 4 --seed 2 -o adam.h5 >/dev/null 2>train.log || fail "train (adam)" "$(cat train.log)"
"$EFFDIM" train --data "$DATA" --arch 2,12,10,2 --act tanh --opt sgd --lr 0.05 --momentum 0.9 \
    --batch 24 --epochs 2 --seed 2 -o sgd.h5 >/dev/null 2>train.log ||
    fail "train (sgd)" "$(cat train.log)"

# ---- effdim diag ----------------------------------------------------------------

if "$EFFDIM" diag adam.h5 --method ggn,ef,adam,hessian,ggn-mc,hutchinson --mc-samples 4 \
    --probes 16 --json -o diag.h5 >diag.json 2>diag.log; then
    ok "diag writes every method and exits 0"
else
    fail "diag writes every method and exits 0" "$(cat diag.log)"
fi

if grep -q 'warning: hutchinson: relative standard error [0-9.e+-]* after 16 probes: single entries are noise' diag.log; then
    ok "a noisy Hutchinson diagonal (relative SE > 0.2) is warned about on stderr"
else
    fail "a noisy Hutchinson diagonal (relative SE > 0.2) is warned about on stderr" "$(cat diag.log)"
fi

if grep -q 'effdim diag: hutchinson [0-9]*/16 probes, relative se [0-9.e+-]* \[[0-9.]* s, [0-9]* s left\]' diag.log; then
    ok "Hutchinson shows its progress with the time left"
else
    fail "Hutchinson shows its progress with the time left" "$(cat diag.log)"
fi

for name in ggn ef adam adam-vhat adam-ef hessian ggn-mc hutchinson; do
    if ! grep -q "\"name\":[[:space:]]*\"$name\"" diag.json; then
        fail "diag --json lists $name" "$(cat diag.json)"
        continue
    fi
    ok "diag --json lists $name"
done

if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
    if /usr/bin/python3 - diag.h5 <<'EOF' >py.log 2>&1; then
import sys
import h5py
import numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "effdim.diag" and f.attrs["format_version"] == 1
P = int(f.attrs["n_params"])
assert P == 2 * 12 + 12 + 12 * 10 + 10 + 10 * 2 + 2
names = list(f.attrs["methods"])
assert names[:2] == ["ggn", "ef"], names
for n in names:
    assert f["diag"][n].shape == (P,), n
assert f["se"]["hutchinson"].shape == (P,) and f["se"]["ggn-mc"].shape == (P,)
g, h = f["diag"]["ggn"][:], f["diag"]["hessian"][:]
assert (g >= 0).all() and np.abs(g - h).max() > 1e-6 * np.abs(h).max()  # tanh: H != GGN
# the last layer's weights see only the output curvature: GGN == Hessian there
off = 2 * 12 + 12 + 12 * 10 + 10
assert np.allclose(g[off:], h[off:], rtol=1e-12, atol=0)
v = f["diag"]["adam-vhat"][:]
assert np.allclose(f["diag"]["adam"][:], np.sqrt(v), rtol=1e-14)
assert f["diag"]["hutchinson"].attrs["probes"] == 16
# integer-valued attributes are int64, real-valued ones float64
for n, keys in (("hutchinson", ("probes", "seed", "converged")), ("ggn-mc", ("samples", "groups", "seed")),
                ("adam", ("step", "batch", "n_train")), ("hessian", ("factors",))):
    for k in keys:
        a = f["diag"][n].attrs[k]
        assert a.dtype == np.int64, (n, k, a.dtype)
for n, k in (("hutchinson", "rel_se"), ("hutchinson", "trace"), ("adam", "beta2")):
    assert f["diag"][n].attrs[k].dtype == np.float64, (n, k)
# no --rel-se target was reached (16 probes): not converged
assert f["diag"]["hutchinson"].attrs["converged"] == 0
ck = h5py.File("adam.h5", "r")
assert ck["optimizer"].attrs["amsgrad"].dtype == np.int64 and ck["optimizer"].attrs["amsgrad"] == 0
EOF
        ok "the diag file reads in h5py with the documented layout"
    else
        fail "the diag file reads in h5py with the documented layout" "$(cat py.log)"
    fi
else # the README's commands install python3-h5py: its absence is a failure, not a skip
    fail "the diag file reads in h5py with the documented layout" "/usr/bin/python3 with h5py and numpy not found (apt-get install python3-h5py)"
fi

# ---- effdim compare ---------------------------------------------------------------

PLOT=()
if command -v gnuplot >/dev/null; then PLOT=(--plot-prefix "$TMP/fig"); fi
if "$EFFDIM" compare adam.h5 --diag diag.h5 --k 6 --save-spectrum spec.h5 -o cmp.h5 "${PLOT[@]}" \
    >cmp.txt 2>cmp.log && [ -f cmp.h5 ] && [ -f spec.h5 ] && grep -q '^N_eff(z)' cmp.txt &&
    grep -q '^layer2 ' cmp.txt; then
    ok "compare computes the spectrum, prints the table and writes compare.h5"
else
    fail "compare computes the spectrum, prints the table and writes compare.h5" "$(cat cmp.log)"
fi
cp adam.h5 adam-before.h5
if ! "$EFFDIM" compare adam.h5 --diag diag.h5 --k 6 --save-spectrum adam.h5 -o cmp-x.h5 \
    >/dev/null 2>savein.log && [ "$(wc -l <savein.log)" -eq 1 ] && grep -q 'adam.h5' savein.log &&
    cmp -s adam.h5 adam-before.h5 && [ ! -e cmp-x.h5 ]; then
    ok "compare refuses --save-spectrum naming an input, before any work"
else
    fail "compare refuses --save-spectrum naming an input, before any work" "$(cat savein.log)"
fi
if ! "$EFFDIM" compare adam.h5 --diag diag.h5 --k 6 --save-spectrum cmp-y.h5 -o cmp-y.h5 \
    >/dev/null 2>saveout.log && grep -q 'two outputs' saveout.log && [ ! -e cmp-y.h5 ]; then
    ok "compare refuses --save-spectrum equal to -o"
else
    fail "compare refuses --save-spectrum equal to -o" "$(cat saveout.log)"
fi
if [ ${#PLOT[@]} -gt 0 ]; then
    if [ -s fig-spectrum.png ] && [ -s fig-neff.png ] &&
        [ "$(head -c 4 fig-neff.png | tail -c 3)" = "PNG" ]; then
        ok "compare draws both figures with gnuplot"
    else
        fail "compare draws both figures with gnuplot" "$(cat cmp.log)"
    fi
fi
if "$EFFDIM" compare adam.h5 --diag diag.h5 --spectrum spec.h5 --only hessian,ggn --z 0.01,1 \
    --json -o cmp2.h5 >cmp2.json 2>cmp2.log && grep -q '"name":[[:space:]]*"ggn"' cmp2.json &&
    ! grep -q '"name":[[:space:]]*"ef"' cmp2.json; then
    ok "compare reads a saved spectrum and --only selects diagonals"
else
    fail "compare reads a saved spectrum and --only selects diagonals" "$(cat cmp2.log)"
fi

# ---- errors -------------------------------------------------------------------------

expect_error "diag refuses an unknown method" 2 "unknown diagonal method 'fisher'" x.h5 -- \
    "$EFFDIM" diag adam.h5 --method ggn,fisher -o x.h5
expect_error "diag refuses ivon without IVON state" 1 "/optimizer/hess" x.h5 -- \
    "$EFFDIM" diag adam.h5 --method ivon -o x.h5
expect_error "diag refuses adam on an SGD checkpoint" 1 "sgd.h5: /optimizer/exp_avg_sq" x.h5 -- \
    "$EFFDIM" diag sgd.h5 --method adam -o x.h5
expect_error "diag refuses an exact Hessian above its cost limit" 1 "force" x.h5 -- \
    "$EFFDIM" diag adam.h5 --method hessian --max-cost 0.5 -o x.h5
expect_error "compare refuses a missing spectrum file" 1 "nothere.h5" x.h5 -- \
    "$EFFDIM" compare adam.h5 --spectrum nothere.h5 --diag diag.h5 -o x.h5
expect_error "compare refuses a diag file as the spectrum" 1 "expected 'effdim.spectrum'" x.h5 -- \
    "$EFFDIM" compare adam.h5 --spectrum diag.h5 --diag diag.h5 -o x.h5
expect_error "compare refuses a checkpoint as the diag file" 1 "expected 'effdim.diag'" x.h5 -- \
    "$EFFDIM" compare adam.h5 --spectrum spec.h5 --diag sgd.h5 -o x.h5
expect_error "compare refuses an unknown --only name" 2 "no diagonal 'nope'" x.h5 -- \
    "$EFFDIM" compare adam.h5 --spectrum spec.h5 --diag diag.h5 --only nope -o x.h5
# ---- hostile files (issue 9, item 1): nothing from a file reaches gnuplot or a shell ----

/usr/bin/python3 - <<'EOF' >py2.log 2>&1
import shutil, h5py
shutil.copy("adam.h5", "m.h5")
shutil.copy("diag.h5", "d.h5")
shutil.copy("spec.h5", "s.h5")
with h5py.File("s.h5", "r+") as f:
    f.attrs["operator"] = "x'\n!touch PWNED\n#"
shutil.copy("diag.h5", "dbad.h5")
with h5py.File("dbad.h5", "r+") as f:
    name = "x'\n!touch PWNED\n#"
    f["diag"].move("ggn", name)
    f.attrs["methods"] = [name if n == "ggn" else n for n in f.attrs["methods"]]
EOF
rm -f PWNED
expect_error "compare refuses a spectrum file whose operator would inject gnuplot commands" 1 \
    "s.h5: /: attribute 'operator' is not hessian or ggn" c.h5 -- \
    "$EFFDIM" compare m.h5 --spectrum s.h5 --diag d.h5 -o c.h5 --plot-prefix p
expect_error "compare refuses a diag file whose method name would inject gnuplot commands" 1 \
    "dbad.h5: /: attribute 'methods': entry 0 is not a known diagonal name" c.h5 -- \
    "$EFFDIM" compare m.h5 --spectrum spec.h5 --diag dbad.h5 -o c.h5 --plot-prefix p
if [ ! -e PWNED ] && [ ! -e p-neff.png ]; then
    ok "no hostile file ran a command or drew a figure"
else
    fail "no hostile file ran a command or drew a figure" "$(ls)"
fi
# a --plot-prefix with quotes and a newline is only a file name (the script never sees it)
if command -v gnuplot >/dev/null; then
    Q="$TMP/q'x
!touch PWNED
#"
    if "$EFFDIM" compare m.h5 --spectrum spec.h5 --diag d.h5 -o c.h5 --plot-prefix "$Q" \
        >/dev/null 2>q.log && [ -s "$Q-neff.png" ] && [ ! -e PWNED ]; then
        ok "a --plot-prefix with quotes and newlines names the figures and runs nothing"
    else
        fail "a --plot-prefix with quotes and newlines names the figures and runs nothing" "$(cat q.log; ls)"
    fi
    rm -f "$Q-neff.png" "$Q-spectrum.png" c.h5
fi

# ---- what the files record (issue 10): the command line; the figure's curves ----

"$EFFDIM" spectrum adam.h5 -k 4 --hvp exact --z 0.01,1 --probes 6 --slq-steps 20 -o sslq.h5 \
    >/dev/null 2>sslq.log || fail "spectrum with SLQ" "$(cat sslq.log)"
"$EFFDIM" compare adam.h5 --spectrum sslq.h5 --diag diag.h5 --z 0.1 -o cslq.h5 >/dev/null 2>cslq.log ||
    fail "compare with an SLQ spectrum" "$(cat cslq.log)"
if /usr/bin/python3 - <<'EOF' >py3.log 2>&1; then
import h5py, numpy as np
d = h5py.File("diag.h5", "r")
assert d.attrs["command_line"].startswith("effdim diag adam.h5 --method ggn,ef,adam"), d.attrs["command_line"]
c = h5py.File("cslq.h5", "r")
assert c.attrs["command_line"] == "effdim compare adam.h5 --spectrum sslq.h5 --diag diag.h5 --z 0.1 -o cslq.h5"
s = h5py.File("sslq.h5", "r")
# the SLQ points are the spectrum file's own (z = 0.01, 1), though the comparison's grid is 0.1
assert list(c["z"][:]) == [0.1] and "n_eff_slq" not in c["reference"]
assert np.array_equal(c["slq/z"][:], s["effdim/z"][:])
assert np.array_equal(c["slq/n_eff"][:], s["effdim/n_eff_slq"][:])
assert np.array_equal(c["slq/se"][:], s["effdim/n_eff_slq_se"][:])
# the curves: 200 log-spaced z over [0.01, 1], each equal to the closed form
z = c["curves/z"][:]
assert len(z) == 200 and np.isclose(z[0], 0.01, rtol=1e-15) and np.isclose(z[-1], 1.0, rtol=1e-15)
assert np.allclose(np.diff(np.log(z)), np.log(100) / 199, rtol=1e-12)
g = d["diag/ggn"][:]
want = (g[None, :] / (g[None, :] + z[:, None])).sum(axis=1)
assert np.allclose(c["curves/diagonals/ggn"][:], want, rtol=1e-12)
lam = np.maximum(c["reference/eigenvalues"][:], 0)
assert np.allclose(c["curves/eigenvalues"][:], (lam[None, :] / (lam[None, :] + z[:, None])).sum(axis=1), rtol=1e-12)
EOF
    ok "diag and compare files record the command line; compare's curves and SLQ points are right"
else
    fail "diag and compare files record the command line; compare's curves and SLQ points are right" "$(cat py3.log)"
fi

if ls ./*.tmp-* >/dev/null 2>&1; then
    fail "no temporary file is left behind" "$(ls)"
else
    ok "no temporary file is left behind"
fi

cli_finish
