#!/bin/bash
# tests/test_cli_spectrum.sh: the `effdim spectrum` command end to end.
#
#   bash tests/test_cli_spectrum.sh path/to/effdim
#
# Trains a tiny network on two spirals with `effdim train`, computes its
# spectrum with every option family (FD and exact products, GGN, top /
# bottom / both, SLQ, trace, density, per-layer spectra, eigenvectors, the
# exact dense spectrum and its size limit), checks
# the summary, the JSON and the file (through `effdim inspect`, and through
# h5py when Debian's /usr/bin/python3 has it), runs it on the checkpoint
# PyTorch wrote through the exporter (tests/fixtures/torch_written.h5), then
# provokes the bad inputs: each must exit with status 1 or 2, print exactly
# one line on stderr naming the file or the option, and leave an existing
# output file byte-identical with no temporary file behind. Prints "ok - ..."
# / "FAIL - ..." per check and ends with "N passed, M failed"; exits non-zero
# on any failure.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_cli_spectrum.sh effdim-cli-spectrum "$@"

PY=""
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
    PY=/usr/bin/python3
fi

DATA="spirals:n=200,seed=3"
"$EFFDIM" train --data "$DATA" --arch 2,12,12,2 --act tanh --opt adam --lr 0.01 --batch 50 \
    --epochs 20 --seed 1 --threads 1 -o model.h5 >/dev/null 2>train.log ||
    fail "effdim train makes the checkpoint the spectrum tests use" "$(cat train.log)"

# ---- happy paths -------------------------------------------------------------

# fewer than k converged: the file is written, exit 3 (0 with --allow-partial)
"$EFFDIM" spectrum model.h5 -o partial.h5 -k 8 --max-matvecs 12 --probes 0 --threads 1 \
    >partial.txt 2>partial.log
rc=$?
if [ $rc -eq 3 ] && [ -s partial.h5 ] && grep -q 'partial result: the file is written' partial.log &&
    grep -Eq '[0-9]+ of 8 eigenpairs converged' partial.log; then
    ok "fewer than k converged pairs: the file is written and the exit status is 3"
else
    fail "fewer than k converged pairs: the file is written and the exit status is 3" \
        "rc $rc; $(cat partial.log)"
fi
"$EFFDIM" spectrum model.h5 -o partial2.h5 -k 8 --max-matvecs 12 --probes 0 --allow-partial \
    --threads 1 >partial2.txt 2>partial2.log
rc=$?
if [ $rc -eq 0 ] && [ -s partial2.h5 ] && grep -q 'warning: [0-9]* of 8 eigenpairs' partial2.log; then
    ok "--allow-partial: exit 0 with the warning"
else
    fail "--allow-partial: exit 0 with the warning" "rc $rc; $(cat partial2.log)"
fi
if "$EFFDIM" spectrum --help | grep -q -- '--allow-partial' &&
    "$EFFDIM" spectrum --help | grep -q '3 partial result' &&
    "$EFFDIM" spectrum --help | grep -q -- '--slq-steps M'; then
    ok "--help documents exit status 3, --allow-partial and --slq-steps"
else
    fail "--help documents exit status 3, --allow-partial and --slq-steps" ""
fi

# an indefinite Hessian at small z: SLQ warns on stderr, in the summary and the JSON
"$EFFDIM" spectrum model.h5 -o warn.h5 -k 4 --which both --hvp exact --probes 6 --slq-steps 10 \
    --z 0.0001,100 --json --threads 1 >warn.json 2>warn.log
if grep -q 'warning: the SLQ N_eff is unreliable beyond its SE: at z = 0.0001 ' warn.log &&
    grep -q 'slq-steps (now 10)' warn.log && grep -q '"slq_warning"' warn.json &&
    grep -q '"n_eff_slq_bias"' warn.json && ! grep -q 'z = 0.0001, 100' warn.log; then
    ok "SLQ at a small z on an indefinite Hessian warns, naming the z and --slq-steps"
else
    fail "SLQ at a small z on an indefinite Hessian warns, naming the z and --slq-steps" \
        "$(cat warn.log; cat warn.json)"
fi

if "$EFFDIM" spectrum model.h5 -o spec.h5 -k 6 --probes 8 --z 0.1,1,10 --threads 1 \
    --slq-budget none >summary.txt 2>spec.log; then
    ok "spectrum of a trained checkpoint exits 0"
else
    fail "spectrum of a trained checkpoint exits 0" "$(cat spec.log)"
fi

if grep -q '^lanczos     top 6, tol 1e-08: 6/6 converged' summary.txt &&
    grep -q "^data        $DATA: 200 rows" summary.txt &&
    grep -q '^operator    hessian, fd products (step h = ' summary.txt &&
    grep -qE '^  0\.1 +[0-9.]+ +[0-9.]+ \+- ' summary.txt &&
    grep -q '^trace       ' summary.txt && grep -q 'wrote spec.h5' summary.txt; then
    ok "the summary shows the data recorded in the checkpoint, converged pairs, N_eff Ritz vs SLQ and the trace"
else
    fail "the summary shows the data recorded in the checkpoint, converged pairs, N_eff Ritz vs SLQ and the trace" \
        "$(cat summary.txt)"
fi

if grep -q '^effdim spectrum: lanczos [0-9]*/[0-9]* matvecs' spec.log &&
    grep -q '^effdim spectrum: slq 8/8 probes' spec.log &&
    grep -q '^effdim spectrum: slq 0/8 probes x at most 150 steps: at most 1200 products, ~' spec.log &&
    grep -q '^effdim spectrum: trace 0/6 Hutch++' spec.log; then
    ok "progress goes to stderr as plain log lines when stderr is not a terminal"
else
    fail "progress goes to stderr as plain log lines when stderr is not a terminal" "$(cat spec.log)"
fi

"$EFFDIM" inspect spec.h5 >inspect.txt 2>&1
if grep -q 'effdim.spectrum (version 2)' inspect.txt && grep -q 'checkpoint_sha256' inspect.txt &&
    grep -q "$(sha256sum model.h5 | cut -c1-64)" inspect.txt; then
    ok "the file is an effdim.spectrum whose checkpoint_sha256 equals sha256sum of the checkpoint"
else
    fail "the file is an effdim.spectrum whose checkpoint_sha256 equals sha256sum of the checkpoint" \
        "$(head -30 inspect.txt)"
fi

"$EFFDIM" spectrum model.h5 -o a.h5 -k 5 --hvp exact --probes 4 --json --threads 1 >a.json 2>/dev/null
"$EFFDIM" spectrum model.h5 -o b.h5 -k 5 --hvp exact --probes 4 --json --threads 1 >b.json 2>/dev/null
ev_a=$(tr -d ' \n\t' <a.json | grep -o '"eigenvalues":\[[^]]*\]')
ev_b=$(tr -d ' \n\t' <b.json | grep -o '"eigenvalues":\[[^]]*\]')
"$EFFDIM" spectrum model.h5 -o c.h5 -k 5 --hvp exact --probes 4 --json --no-cache --threads 1 \
    >c.json 2>/dev/null
ev_c=$(tr -d ' \n\t' <c.json | grep -o '"eigenvalues":\[[^]]*\]')
if [ -n "$ev_a" ] && [ "$ev_a" = "$ev_b" ] && [ "$ev_a" = "$ev_c" ] && grep -q '"n_eff_slq"' a.json &&
    grep -q '"hvp_method":[[:space:]]*"exact"' a.json; then
    ok "--json reports eigenvalues and SLQ N_eff; the same seed repeats them exactly, with or without --no-cache"
else
    fail "--json reports eigenvalues and SLQ N_eff; the same seed repeats them exactly, with or without --no-cache" \
        "$ev_a" "$ev_b" "$ev_c"
fi

"$EFFDIM" spectrum model.h5 -o both.h5 -k 6 --which both --probes 0 --threads 1 >both.txt 2>&1
"$EFFDIM" spectrum model.h5 -o ggn.h5 -k 6 --op ggn --probes 0 --threads 1 >ggn.txt 2>&1
"$EFFDIM" spectrum model.h5 -o full.h5 -k 4 --probes 6 --density --per-layer --save-vectors \
    --neg-policy abs --prior 0.01 --subset 120 --seed 4 --threads 1 >full.txt 2>&1
if grep -q '^lanczos     both 6' both.txt && grep -q '^operator    ggn, exact products' ggn.txt &&
    grep -q '^density     400 points' full.txt && grep -q '^layer 2 ' full.txt &&
    grep -q '(random subset)' full.txt && grep -q 'prior 0.01' full.txt; then
    ok "--which both, --op ggn, --density, --per-layer, --save-vectors, --subset and --prior run"
else
    fail "--which both, --op ggn, --density, --per-layer, --save-vectors, --subset and --prior run" \
        "$(cat both.txt ggn.txt full.txt)"
fi

if [ -n "$PY" ]; then
    if "$PY" - spec.h5 a.h5 full.h5 ggn.h5 both.h5 >py.txt 2>&1 <<'EOF'
import sys
import h5py
import numpy as np

spec, exact, full, ggn, both = (h5py.File(p, "r") for p in sys.argv[1:6])
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)

for f in (spec, exact, full, ggn, both):
    ev = f["spectrum/eigenvalues"][()]
    need(f.attrs["format"] == "effdim.spectrum" and f.attrs["format_version"] == 2, "root format")
    need(np.all(np.diff(ev) <= 0), "eigenvalues descending")
    need(f["spectrum/residuals"].shape == ev.shape, "residuals shape")
    need(f["spectrum/residual_bounds"].shape == ev.shape, "bounds shape")
    need(f["effdim/z"].shape == f["effdim/n_eff"].shape, "n_eff shape")
    need(f.attrs["n_params"] == 218, "n_params")
# FD and exact products give the same top eigenvalues
ev_fd, ev_ex = spec["spectrum/eigenvalues"][:5], exact["spectrum/eigenvalues"][()]
need(np.max(np.abs(ev_fd - ev_ex) / np.abs(ev_ex)) < 1e-6, "fd vs exact eigenvalues")
# the residuals meet the tolerance relative to the eigenvalue (exact products)
need(np.all(exact["spectrum/residuals"][()] <= 1e-7 * np.abs(ev_ex) + 1e-12), "exact residuals")
# N_eff (Ritz) equals the formula over the stored eigenvalues under policy zero
z, ne = spec["effdim/z"][()], spec["effdim/n_eff"][()]
lam = np.maximum(spec["spectrum/eigenvalues"][()], 0)
need(np.allclose(ne, [np.sum(lam / (lam + zz)) for zz in z], rtol=1e-12), "n_eff formula")
# SLQ over the whole spectrum is at least the Ritz sum minus its error
need(np.all(spec["effdim/n_eff_slq"][()] + 3 * spec["effdim/n_eff_slq_se"][()] >= ne - 1e-9), "slq >= ritz")
# the quadrature-bias diagnostic is stored beside the SE
need(spec["effdim/n_eff_slq_bias"].shape == z.shape and
     np.all(np.isfinite(spec["effdim/n_eff_slq_bias"][()])), "n_eff_slq_bias")
need(spec["effdim"].attrs["slq_steps"] == 150, "slq_steps default 150")
need(spec.attrs["data_spec"] == "spirals:n=200,seed=3" and spec.attrs["n"] == 200, "data spec from ckpt")
need(spec.attrs["operator"] == "hessian" and spec.attrs["hvp_method"] == "fd", "operator attrs")
need(spec.attrs["fd_eps"] > 0 and exact.attrs["fd_eps"] == 0, "fd_eps")
need(spec.attrs["reduction"] == "mean" and abs(spec.attrs["scale"] - 1 / 200) < 1e-15, "scale")
need(spec["trace"].attrs["method"] == "hutch++", "trace method")
# GGN: PSD
need(np.all(ggn["spectrum/eigenvalues"][()] > -1e-10), "ggn psd")
# both ends: 3 top and 3 bottom, the bottom below the top
need(both.attrs["which"] == "both" and both["spectrum/eigenvalues"].shape == (6,), "both")
# full: vectors, density, per-layer, policy, prior, subset
vec = full["spectrum/eigenvectors"][()]
need(vec.shape == (4, 218), "eigenvectors shape")
need(np.allclose(vec @ vec.T, np.eye(4), atol=1e-8), "eigenvectors orthonormal")
need(full["density/grid"].shape == (400,) and full["density/values"].shape == (400,), "density")
need(abs(np.trapz(full["density/values"][()], full["density/grid"][()]) - 1) < 0.05, "density integrates to 1")
need([k for k in full["per_layer"]] == ["layer0", "layer1", "layer2"], "per_layer groups")
need(full["per_layer/layer1"].attrs["offset"] == 36 and full["per_layer/layer1"].attrs["size"] == 156, "layer1 block")
need(full.attrs["neg_policy"] == "abs" and full.attrs["prior"] == 0.01 and full.attrs["n"] == 120, "full attrs")
need(full.attrs["seed"] == 4, "seed")
print("problems:", problems)
sys.exit(1 if problems else 0)
EOF
    then
        ok "h5py reads the files: shapes, order, N_eff formula, FD = exact to 1e-6, GGN PSD, orthonormal vectors"
    else
        fail "h5py reads the files: shapes, order, N_eff formula, FD = exact to 1e-6, GGN PSD, orthonormal vectors" \
            "$(cat py.txt)"
    fi
else # the README's commands install python3-h5py: its absence is a failure, not a skip
    fail "h5py reads the files" "/usr/bin/python3 with h5py and numpy not found (apt-get install python3-h5py)"
fi

# --dense: the exact whole spectrum beside Ritz and SLQ (P = 218: 218 products)
"$EFFDIM" spectrum model.h5 -o dense.h5 -k 6 --hvp exact --probes 6 --z 0.1,1,10 --dense \
    --threads 1 >dense.txt 2>dense.log
rc=$?
"$EFFDIM" spectrum model.h5 -o dense2.h5 -k 6 --hvp exact --probes 6 --z 0.1,1,10 --dense \
    --json --threads 1 >dense.json 2>/dev/null
if [ $rc -eq 0 ] && grep -q 'Ritz (k terms) exact (dense)  whole spectrum (SLQ)' dense.txt &&
    grep -qE '^  0\.1 +[0-9.]+ +[0-9.]+ +[0-9.]+ \+- ' dense.txt &&
    grep -q '(dense: all 218 eigenvalues' dense.txt && grep -q 'dense 218/218 columns' dense.log &&
    grep -q '"n_eff_dense"' dense.json && grep -q '"dense_asymmetry"' dense.json; then
    ok "--dense adds the exact (dense) N_eff column to the summary and n_eff_dense to the JSON"
else
    fail "--dense adds the exact (dense) N_eff column to the summary and n_eff_dense to the JSON" \
        "rc $rc" "$(cat dense.txt dense.log dense.json)"
fi
if "$EFFDIM" spectrum --help | grep -q -- '--dense ' && "$EFFDIM" spectrum --help | grep -q -- '--dense-limit N' &&
    "$EFFDIM" spectrum --help | grep -q -- '--force'; then
    ok "--help documents --dense, --dense-limit and --force"
else
    fail "--help documents --dense, --dense-limit and --force" ""
fi
if [ -n "$PY" ]; then
    if "$PY" - dense.h5 spec.h5 >pyd.txt 2>&1 <<'EOF'
import sys
import h5py
import numpy as np

d, plain = (h5py.File(p, "r") for p in sys.argv[1:3])
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)

lam = d["dense/eigenvalues"][()]
need(lam.shape == (218,) and lam.dtype == np.float64, "dense eigenvalues shape/dtype")
need(np.all(np.diff(lam) <= 0), "dense eigenvalues descending")
need(d.attrs["dense"] == 1 and 0 <= d.attrs["dense_asymmetry"] < 1e-12, "dense attrs")
# the stored exact N_eff is the formula over all P dense eigenvalues (policy zero)
z, nd = d["effdim/z"][()], d["effdim/n_eff_dense"][()]
pos = np.maximum(lam, 0)
need(nd.shape == z.shape and np.allclose(nd, [np.sum(pos / (pos + zz)) for zz in z], rtol=1e-12, atol=0),
     "n_eff_dense formula: %s" % nd)
# the top k of the dense spectrum are the Lanczos eigenvalues to 1e-9 relative
ev = d["spectrum/eigenvalues"][()]
need(np.max(np.abs(lam[:len(ev)] - ev) / np.abs(ev)) < 1e-9,
     "dense top k vs Lanczos: %s vs %s" % (lam[:len(ev)], ev))
# the exact N_eff is at least the Ritz sum over its top k
need(np.all(nd >= d["effdim/n_eff"][()] - 1e-12), "dense >= ritz")
# the P dense products are counted in matvecs
need(d.attrs["matvecs"] >= d.attrs["lanczos_matvecs"] + 218, "matvecs count the dense products")
# without --dense none of it is written
need("dense" not in plain and "dense" not in plain.attrs and "dense_asymmetry" not in plain.attrs
     and "n_eff_dense" not in plain["effdim"], "no dense parts without --dense")
print("problems:", problems)
sys.exit(1 if problems else 0)
EOF
    then
        ok "--dense writes /dense/eigenvalues [P] whose top k equal the Lanczos values to 1e-9 and whose N_eff is /effdim/n_eff_dense"
    else
        fail "--dense writes /dense/eigenvalues [P] whose top k equal the Lanczos values to 1e-9 and whose N_eff is /effdim/n_eff_dense" \
            "$(cat pyd.txt)"
    fi
fi

# a checkpoint PyTorch wrote through tools/torch_export.py's layout
if "$EFFDIM" spectrum "$FIX/torch_written.h5" --data "gmm:n=120,d=6,classes=4,seed=2" -k 5 \
    --probes 4 -o torch.h5 --threads 1 >torch.txt 2>&1 &&
    grep -q '5/5 converged' torch.txt && grep -q '194 parameters' torch.txt; then
    ok "spectrum works on the checkpoint PyTorch wrote (tests/fixtures/torch_written.h5)"
else
    fail "spectrum works on the checkpoint PyTorch wrote (tests/fixtures/torch_written.h5)" "$(cat torch.txt)"
fi

if "$EFFDIM" spectrum --help | grep -q -- '--neg-policy' && "$EFFDIM" --help | grep -q 'spectrum'; then
    ok "spectrum --help exits 0 and describes the options; effdim --help lists spectrum"
else
    fail "spectrum --help exits 0 and describes the options; effdim --help lists spectrum"
fi

# ---- bad inputs ------------------------------------------------------------------

# ---- the SLQ stops at its SE target, or at the budget, and says which ----------------

"$EFFDIM" spectrum model.h5 -o tgt.h5 -k 6 --hvp exact --z 1,10 --probes 200 \
    --slq-target 0.05,0.5 --slq-budget none --json --threads 1 >tgt.json 2>tgt.log
rc=$?
"$EFFDIM" spectrum model.h5 -o tgt2.h5 -k 6 --hvp exact --z 1,10 --probes 200 \
    --slq-target 0.05,0.5 --slq-budget none --threads 1 >tgt.txt 2>/dev/null
if [ $rc -eq 0 ] && [ -n "$PY" ] && $PY - tgt.json <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["slq_stop"] == "target", j["slq_stop"]
assert 8 <= j["slq_probes"] < 200, j["slq_probes"]
for n, se in zip(j["n_eff_slq"], j["n_eff_slq_se"]):
    assert se <= max(0.05 * abs(n), 0.5), (n, se)
assert j["k"] == 6 and j["slq_max_probes"] == 200 and j["slq_target_rel"] == 0.05
PYEOF
then
    if grep -q 'SLQ stopped at the SE target max(0.05 x N_eff, 0.5), met at every z' tgt.txt; then
        ok "the SLQ stops by itself once the SE meets the target at every z, and says so"
    else
        fail "the SLQ stops by itself once the SE meets the target at every z, and says so" "$(cat tgt.txt)"
    fi
else
    fail "the SLQ stops by itself once the SE meets the target at every z, and says so" \
        "rc $rc; $(cat tgt.json tgt.log)"
fi

"$EFFDIM" spectrum model.h5 -o bud.h5 -k 6 --hvp exact --z 0.01,1 --probes 200 --slq-steps 40 \
    --slq-target 0.0001,0 --slq-budget 500 --threads 1 >bud.txt 2>bud.log
rc=$?
if [ $rc -eq 0 ] && grep -q 'SLQ stopped by the product budget (--slq-budget 500) before the SE target' bud.txt &&
    grep -Eq '^  \(SLQ: ([0-9]+) probes x at most 40 steps \(mean [0-9.]+, [0-9]+ settled early\), 6 pairs deflated, ([0-9]|[1-4][0-9]{1,2}|500) matvecs' bud.txt; then
    ok "--slq-budget N ends the SLQ before it passes N products, and the summary says the budget ended it"
else
    fail "--slq-budget N ends the SLQ before it passes N products, and the summary says the budget ended it" \
        "rc $rc; $(cat bud.txt bud.log)"
fi

# the default budget: 2 x the Lanczos products less the trace's, said plainly
"$EFFDIM" spectrum model.h5 -o dbud.h5 -k 6 --hvp exact --z 0.01,1 --probes 200 --slq-steps 40 \
    --slq-target 0.0001,0 --threads 1 --json >dbud.json 2>dbud.log
rc=$?
"$EFFDIM" spectrum model.h5 -o dbud2.h5 -k 6 --hvp exact --z 0.01,1 --probes 200 --slq-steps 40 \
    --slq-target 0.0001,0 --threads 1 --slq-budget 1.5x >dbud.txt 2>>dbud.log
rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ -n "$PY" ] && $PY - dbud.json <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
L = j["lanczos_matvecs"]
want = max(2 * L - 198, L)                       # the trace: 3 floor(200 / 3) = 198 products
assert j["slq_stop"] == "budget" and j["slq_budget"] == want, (j["slq_stop"], j["slq_budget"], want)
# never more than the budget, except the 2 probes that always run (40 steps each)
assert 2 <= j["slq_probes"] < 200 and j["slq_matvecs"] <= max(want, 2 * 40), j
PYEOF
then
    if grep -q 'SLQ stopped by the product budget ([0-9]*: 1.5 x the Lanczos products less the trace.s; --slq-budget sets it) before the SE target' dbud.txt; then
        ok "by default the SLQ stops at 2 x the Lanczos products (less the trace's); Fx sets the factor, and the summary says the budget ended it"
    else
        fail "by default the SLQ stops at 2 x the Lanczos products (less the trace's); Fx sets the factor, and the summary says the budget ended it" "$(cat dbud.txt)"
    fi
else
    fail "by default the SLQ stops at 2 x the Lanczos products (less the trace's); Fx sets the factor, and the summary says the budget ended it" \
        "rc $rc $rc2; $(cat dbud.json dbud.log)"
fi

# ---- honest numbers ------------------------------------------------------------------

"$EFFDIM" spectrum model.h5 -o h4.h5 -k 4 --hvp exact --probes 4 --json --threads 1 >h4.json 2>h4.log
rc=$?
if [ $rc -eq 0 ] && grep -q '"trace_se":' h4.json && ! grep -q '"trace_se":	null' h4.json &&
    grep -q 'Hutch++ trace: 4 probes give 3 products in thirds .* it uses 6, the least that gives a standard error' h4.log &&
    grep -q '^effdim spectrum: trace 0/6 Hutch++' h4.log; then
    ok "Hutch++ with 4 probes announces and uses 6 products and reports a finite SE"
else
    fail "Hutch++ with 4 probes announces and uses 6 products and reports a finite SE" "rc $rc; $(cat h4.json h4.log)"
fi
"$EFFDIM" spectrum model.h5 -o h2.h5 -k 4 --hvp exact --probes 2 --threads 1 >h2.txt 2>h2.log
if grep -q 'Hutch++ trace: 2 probes give 0 products .* it uses 6' h2.log &&
    grep -q '(Hutch++, 6 matvecs)' h2.txt; then
    ok "Hutch++ with 2 probes warns and uses 6 products"
else
    fail "Hutch++ with 2 probes warns and uses 6 products" "$(cat h2.txt h2.log)"
fi
"$EFFDIM" spectrum model.h5 -o kbig.h5 -k 500 --hvp exact --probes 0 --threads 1 >kbig.txt 2>kbig.log
if grep -q 'note: k = 500 is above the 218 parameters: clamped to k = 218' kbig.log; then
    ok "-k above P is clamped with a note"
else
    fail "-k above P is clamped with a note" "$(cat kbig.log)"
fi
# the Richardson FD products resolve the default tol 1e-8 (no note) but not 1e-12
"$EFFDIM" spectrum model.h5 -o fdtol0.h5 -k 6 --probes 0 --threads 1 >fdtol0.txt 2>fdtol0.log
if ! grep -q 'is below the accuracy' fdtol0.log && grep -q '6/6 meet tol by their true residual' fdtol0.txt; then
    ok "the default FD products resolve the default tol 1e-8: no note, 6/6 meet it by true residual"
else
    fail "the default FD products resolve the default tol 1e-8" "$(cat fdtol0.txt fdtol0.log)"
fi
"$EFFDIM" spectrum model.h5 -o fdtol.h5 -k 6 --probes 0 --threads 1 --tol 1e-12 >fdtol.txt 2>fdtol.log
if grep -q 'note: tol 1e-12 is below the accuracy of the finite-difference products' fdtol.log &&
    grep -Eq '^            [0-9]+/6 meet tol by their true residual' fdtol.txt; then
    ok "a tolerance below the FD products' accuracy is flagged; the summary counts pairs meeting tol by true residual"
else
    fail "a tolerance below the FD products' accuracy is flagged; the summary counts pairs meeting tol by true residual" \
        "$(cat fdtol.txt fdtol.log)"
fi

# ---- the default z grid, --reduction sum, the command line ------------------------------

"$EFFDIM" spectrum model.h5 -o zsum.h5 -k 4 --hvp exact --probes 0 --reduction sum --threads 1 \
    >zsum.txt 2>&1
"$EFFDIM" spectrum model.h5 -o zmean.h5 -k 4 --hvp exact --probes 0 --threads 1 >zmean.txt 2>&1
if [ -n "$PY" ] && $PY - zsum.h5 zmean.h5 <<'PYEOF'
import h5py, numpy as np, sys
s, m = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
z = m["effdim/z"][()]
top = m["spectrum/eigenvalues"][0]
assert 1.0 in z and np.all(np.diff(z) > 0), z
assert abs(z[0] / (top * 1e-4) - 1) < 0.05 and abs(z[-1] / top - 1) < 0.05 or z[-1] == 1.0, (z, top)
assert s.attrs["reduction"] == "sum" and m.attrs["reduction"] == "mean"
n = m.attrs["n"]
assert np.allclose(s["spectrum/eigenvalues"][()], n * m["spectrum/eigenvalues"][()], rtol=1e-9)
assert s.attrs["command_line"].startswith("effdim spectrum model.h5 -o zsum.h5"), s.attrs["command_line"]
assert s.attrs["partial"] == 0
PYEOF
then
    ok "the default z is a log grid from the top eigenvalue with z = 1; --reduction sum scales by n; the command line is recorded"
else
    fail "the default z is a log grid from the top eigenvalue with z = 1; --reduction sum scales by n; the command line is recorded" \
        "$(cat zsum.txt zmean.txt)"
fi
if "$EFFDIM" inspect tgt.h5 >insp.txt 2>&1 && grep -q '^eigenvalues (top 6 of hessian' insp.txt &&
    grep -Eq '^  10 +[0-9.]+ +[0-9.]+ \+- ' insp.txt && grep -q '^trace       ' insp.txt &&
    grep -q '^made by     effdim spectrum model.h5' insp.txt; then
    ok "effdim inspect prints the eigenvalue, N_eff and trace tables of a spectrum file"
else
    fail "effdim inspect prints the eigenvalue, N_eff and trace tables of a spectrum file" "$(cat insp.txt)"
fi

# ---- results are not lost: the file after Lanczos, and SIGINT --------------------------

"$EFFDIM" spectrum model.h5 -o int.h5 -k 6 --hvp exact --probes 100000 --slq-steps 40 \
    --slq-target 0 --slq-budget none --threads 1 >int.txt 2>int.log &
pid=$!
for _ in $(seq 1 200); do
    [ -s int.h5 ] && grep -q 'slq [1-9]' int.log && break
    sleep 0.1
done
early=no
if [ -n "$PY" ] && [ -s int.h5 ] && $PY - int.h5 <<'PYEOF'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
assert f.attrs["partial"] == 1 and f["spectrum/eigenvalues"].shape == (6,)
assert "n_eff_slq" not in f["effdim"]
PYEOF
then early=yes; fi
sleep 1
kill -INT $pid
wait $pid
rc=$?
if [ $early = yes ]; then
    ok "the Lanczos pairs are in a complete file marked partial before the SLQ begins"
else
    fail "the Lanczos pairs are in a complete file marked partial before the SLQ begins" "$(cat int.log)"
fi
if [ $rc -eq 3 ] && grep -q 'interrupted: int.h5 is written with what was complete' int.log &&
    [ -n "$PY" ] && $PY - int.h5 <<'PYEOF'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
assert f.attrs["partial"] == 1
g = f["effdim"]
assert "n_eff_slq" in g and 2 <= g.attrs["slq_probes"] < 100000, dict(g.attrs)
assert g.attrs["slq_stop"] == "interrupted"
assert f["spectrum/eigenvalues"].shape == (6,)
PYEOF
then
    ok "SIGINT during the SLQ finishes the file with the probes done, marked partial, exit 3"
else
    fail "SIGINT during the SLQ finishes the file with the probes done, marked partial, exit 3" \
        "rc $rc; $(cat int.log | tail -5)"
fi

cp spec.h5 spec.ref
printf 'this is not HDF5 at all\n' >corrupt.h5
"$EFFDIM" train --data "regression:n=50,d=3,seed=1" --arch 3,4,1 --loss mse --epochs 1 \
    -o reg.h5 >/dev/null 2>&1

GUARD=spec.h5
GUARD_REF=spec.ref

S=(-o spec.h5 --probes 0 --threads 1)
expect_refusal "a missing checkpoint is refused, naming it" "nonexistent.h5" -- \
    "$EFFDIM" spectrum nonexistent.h5 "${S[@]}"
expect_refusal "a corrupt checkpoint is refused, naming it" "corrupt.h5" -- \
    "$EFFDIM" spectrum corrupt.h5 "${S[@]}"
expect_refusal "a checkpoint of a newer format is refused" "format_version 2 is newer" -- \
    "$EFFDIM" spectrum "$FIX/checkpoint_v2.h5" --data "$DATA" "${S[@]}"
expect_refusal "data whose width does not fit the network are refused, naming the spec" \
    "regression:n=20,d=5,seed=1: 5 input features, but the network's input width sizes[0] is 3" -- \
    "$EFFDIM" spectrum reg.h5 --data "regression:n=20,d=5,seed=1" "${S[@]}"
expect_refusal "class labels for an mse network are refused" "need loss cross_entropy" -- \
    "$EFFDIM" spectrum reg.h5 --data "gmm:n=20,d=3,classes=2" "${S[@]}"
expect_refusal "a checkpoint without a recorded data spec needs --data" "--data" -- \
    "$EFFDIM" spectrum "$FIX/torch_written.h5" "${S[@]}"
expect_refusal "a bad data spec is refused, naming it" "nosuchkind" -- \
    "$EFFDIM" spectrum model.h5 --data "nosuchkind:n=3" "${S[@]}"
expect_refusal "--slq-target -1 is a usage error" "--slq-target: -1, expected R[,A] >= 0" -- \
    "$EFFDIM" spectrum model.h5 --slq-target -1 "${S[@]}"
expect_refusal "--slq-budget 0 is a usage error" "--slq-budget: 0, expected products >= 1" -- \
    "$EFFDIM" spectrum model.h5 --slq-budget 0 "${S[@]}"
expect_refusal "--slq-budget 0s is a usage error" "--slq-budget: 0s, expected seconds > 0" -- \
    "$EFFDIM" spectrum model.h5 --slq-budget 0s "${S[@]}"
expect_refusal "--reduction median is a usage error" "--reduction: 'median', expected mean or sum" -- \
    "$EFFDIM" spectrum model.h5 --reduction median "${S[@]}"
expect_refusal "-k 0 is a usage error" "-k" -- \
    "$EFFDIM" spectrum model.h5 -k 0 "${S[@]}"
expect_refusal "--which sideways is a usage error" "--which" -- \
    "$EFFDIM" spectrum model.h5 --which sideways "${S[@]}"
expect_refusal "--op fisher is a usage error" "--op" -- \
    "$EFFDIM" spectrum model.h5 --op fisher "${S[@]}"
expect_refusal "--hvp autodiff is a usage error" "--hvp" -- \
    "$EFFDIM" spectrum model.h5 --hvp autodiff "${S[@]}"
expect_refusal "--op ggn with --hvp fd is a usage error" "Gauss-Newton products are always exact" -- \
    "$EFFDIM" spectrum model.h5 --op ggn --hvp fd "${S[@]}"
expect_refusal "--z with a non-positive value is a usage error" "--z" -- \
    "$EFFDIM" spectrum model.h5 --z 1,0 "${S[@]}"
expect_refusal "--tol 2 is a usage error" "--tol" -- \
    "$EFFDIM" spectrum model.h5 --tol 2 "${S[@]}"
expect_refusal "--neg-policy bogus is a usage error" "--neg-policy" -- \
    "$EFFDIM" spectrum model.h5 --neg-policy bogus "${S[@]}"
expect_refusal "--prior -1 is a usage error" "--prior" -- \
    "$EFFDIM" spectrum model.h5 --prior -1 "${S[@]}"
expect_refusal "an unknown option is a usage error" "--frobnicate" -- \
    "$EFFDIM" spectrum model.h5 --frobnicate "${S[@]}"
expect_refusal "a missing -o is a usage error" "-o" -- \
    "$EFFDIM" spectrum model.h5 --probes 0
expect_refusal "a missing checkpoint argument is a usage error" "missing the checkpoint" -- \
    "$EFFDIM" spectrum -o spec.h5
expect_refusal "an output folder that does not exist is refused, naming it" "no/such/folder" -- \
    "$EFFDIM" spectrum model.h5 -o no/such/folder/s.h5 --probes 0 --threads 1
expect_refusal "--dense-limit 0 is a usage error" "--dense-limit" -- \
    "$EFFDIM" spectrum model.h5 --dense --dense-limit 0 "${S[@]}"
expect_refusal "--dense above the limit is refused before any product, naming P, the limit, memory and matvecs" \
    "--dense: P = 218 parameters is above the limit 10 (--dense-limit); the dense matrix would take P^2 x 8 = 380192 bytes" -- \
    "$EFFDIM" spectrum model.h5 --dense --dense-limit 10 "${S[@]}"
if grep -q '218 matvecs; use --force' err.txt; then
    ok "the refusal names the matvec count and --force"
else
    fail "the refusal names the matvec count and --force" "$(cat err.txt)"
fi
"$EFFDIM" spectrum model.h5 --dense --dense-limit 10 -o refused.h5 --probes 0 --threads 1 \
    >/dev/null 2>refused.log
rc=$?
if [ $rc -eq 2 ] && [ ! -e refused.h5 ] && ! compgen -G "refused.h5*" >/dev/null; then
    ok "--dense above the limit leaves no output file"
else
    fail "--dense above the limit leaves no output file" "rc $rc; $(ls; cat refused.log)"
fi
"$EFFDIM" spectrum model.h5 --dense --dense-limit 10 --force -k 2 -o forced.h5 --probes 0 \
    --threads 1 >forced.txt 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '(dense: all 218 eigenvalues' forced.txt; then
    ok "--force runs --dense above the limit"
else
    fail "--force runs --dense above the limit" "rc $rc; $(cat forced.txt)"
fi

cli_finish
