#!/bin/bash
# tests/test_mpi_cli.sh: `mpirun -n R effdim spectrum|diag|train` equal one process.
#
#   bash tests/test_mpi_cli.sh path/to/effdim path/to/mpirun
#
# Trains a tiny network on two spirals, then for R = 1, 2, 3 ranks on loopback
# (--oversubscribe) runs the spectrum (exact products, Hessian and GGN; FD
# products), the diagonals and 3 epochs of training, and compares each with
# the one-process run: exact results to 1e-12 relative, FD eigenvalues to
# 1e-9 (a finite difference divides the gradients' rounding by its step, so
# two correct FD runs differ by that rounding; docs/scaling.md). Only rank 0
# prints (one JSON document on stdout) and writes. A rank that cannot read its
# data makes every rank exit 1 with that one message and no output file;
# fewer rows than ranks is a clear error; a command that does not run
# distributed is refused. The meson set-up provides OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)
# for CI runs as root.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_mpi_cli.sh effdim-mpi-cli "$1"
MPIRUN=${2:?usage: test_mpi_cli.sh path/to/effdim path/to/mpirun}
export OPENBLAS_NUM_THREADS=1
mpi() { local r=$1; shift; "$MPIRUN" --oversubscribe -n "$r" "$@"; }

DATA="spirals:n=200,seed=3"
"$EFFDIM" train --data "$DATA" --arch 2,12,12,2 --act tanh --opt adam --lr 0.01 --batch 50 \
    --epochs 20 --seed 1 --threads 1 -o model.h5 >/dev/null 2>train.log ||
    fail "effdim train makes the checkpoint" "$(cat train.log)"

# compare.py A.json B.json TOL KEY...: every listed number or array agrees to TOL relative
cat >compare.py <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
tol = float(sys.argv[3])
bad = []
for key in sys.argv[4:]:
    path = key.split(".")
    x, y = a, b
    for p in path:
        x = x[int(p)] if isinstance(x, list) else x[p]
        y = y[int(p)] if isinstance(y, list) else y[p]
    xs = x if isinstance(x, list) else [x]
    ys = y if isinstance(y, list) else [y]
    scale = max(abs(v) for v in xs) or 1.0
    if len(xs) != len(ys) or any(abs(u - v) > tol * scale for u, v in zip(xs, ys)):
        bad.append(f"{key}: {xs} vs {ys}")
if bad:
    print("\n".join(bad))
    sys.exit(1)
EOF

spectrum_case() { # name tol keys args...
    local name=$1 tol=$2 keys=$3
    shift 3
    "$EFFDIM" spectrum model.h5 -o one.h5 --threads 1 --json "$@" >one.json 2>one.log ||
        { fail "$name: one process" "$(cat one.log)"; return; }
    for R in 1 2 3; do
        rm -f r.h5
        if mpi "$R" "$EFFDIM" spectrum model.h5 -o r.h5 --threads 1 --json "$@" >r.json 2>r.log &&
            [ -s r.h5 ] &&
            python3 compare.py one.json r.json "$tol" $keys >cmp.log 2>&1; then
            ok "$name: mpirun -n $R equals one process to $tol"
        else
            fail "$name: mpirun -n $R equals one process to $tol" "$(cat r.log cmp.log | head -20)"
        fi
    done
}

ALL="eigenvalues n_eff n_eff_slq trace n"
spectrum_case "spectrum, exact Hessian" 1e-12 "$ALL" -k 4 --hvp exact --probes 10 --slq-target 0
spectrum_case "spectrum, GGN" 1e-12 "$ALL" -k 4 --op ggn --probes 10 --slq-target 0 --prior 0.01
spectrum_case "spectrum, fd" 1e-9 "eigenvalues n_eff n" -k 4 --hvp fd --probes 0
spectrum_case "spectrum, fd-central" 1e-9 "eigenvalues n_eff n" -k 4 --hvp fd-central --probes 0

# ---- diag ---------------------------------------------------------------------------
"$EFFDIM" diag model.h5 -o d1.h5 --method ggn,ef,hessian,hutchinson,adam --threads 1 --json \
    >d1.json 2>d1.log || fail "diag: one process" "$(cat d1.log)"
for R in 2 3; do
    if mpi "$R" "$EFFDIM" diag model.h5 -o dR.h5 --method ggn,ef,hessian,hutchinson,adam \
        --threads 1 --json >dR.json 2>dR.log && [ -s dR.h5 ] &&
        python3 compare.py d1.json dR.json 1e-12 n diagonals.0.sum diagonals.1.sum diagonals.2.sum \
            diagonals.3.sum diagonals.4.sum diagonals.0.max diagonals.3.max >cmp.log 2>&1; then
        ok "diag ggn, ef, hessian, hutchinson, adam: mpirun -n $R equals one process to 1e-12"
    else
        fail "diag: mpirun -n $R equals one process" "$(cat dR.log cmp.log | head -20)"
    fi
done
if mpi 2 "$EFFDIM" diag model.h5 -o mc.h5 --method ggn-mc --threads 1 >mc.out 2>mc.log; then
    fail "diag ggn-mc is refused with 2 ranks" "$(cat mc.log)"
elif grep -q "ggn-mc runs on one process only" mc.log && [ ! -e mc.h5 ]; then
    ok "diag ggn-mc is refused with 2 ranks, no file written"
else
    fail "diag ggn-mc is refused with 2 ranks" "$(cat mc.log)"
fi

# ---- train ----------------------------------------------------------------------------
TRAIN=(train --data "$DATA" --arch 2,12,12,2 --act tanh --opt adam --lr 0.01 --batch 32 --epochs 3
    --seed 4 --threads 1 --json)
"$EFFDIM" "${TRAIN[@]}" -o t1.h5 >t1.json 2>t1.log || fail "train: one process" "$(cat t1.log)"
"$EFFDIM" spectrum t1.h5 -o t1s.h5 -k 3 --hvp exact --probes 0 --threads 1 --json >t1s.json 2>/dev/null
for R in 2 3; do
    rm -f tR.h5
    if mpi "$R" "$EFFDIM" "${TRAIN[@]}" -o tR.h5 >tR.json 2>tR.log && [ -s tR.h5 ] &&
        "$EFFDIM" spectrum tR.h5 -o tRs.h5 -k 3 --hvp exact --probes 0 --threads 1 --json \
            >tRs.json 2>/dev/null &&
        python3 compare.py t1s.json tRs.json 1e-11 eigenvalues >cmp.log 2>&1 &&
        "$EFFDIM" inspect t1.h5 --json >i1.json && "$EFFDIM" inspect tR.h5 --json >iR.json &&
        python3 - i1.json iR.json >>cmp.log 2>&1 <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def find(d, key):
    if isinstance(d, dict):
        if key in d: return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None: return r
    return None
for key in ("step", "epochs"):
    assert find(a, key) == find(b, key), (key, find(a, key), find(b, key))
EOF
    then
        ok "train 3 epochs: mpirun -n $R gives one process's checkpoint (Hessian to 1e-11, steps)"
    else
        fail "train 3 epochs: mpirun -n $R gives one process's checkpoint" "$(cat tR.log cmp.log | head -20)"
    fi
done

# ---- errors ---------------------------------------------------------------------------
# rank 1 alone cannot read its data: every rank exits 1, rank 0 prints the one message
cat >rankdata.sh <<EOF
#!/bin/bash
if [ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then D="csv:$TMP/missing.csv,target=y"; else D="$DATA"; fi
exec "$EFFDIM" spectrum model.h5 -o bad.h5 -k 2 --probes 0 --threads 1 --data "\$D"
EOF
chmod +x rankdata.sh
mpi 2 ./rankdata.sh >bad.out 2>bad.log
rc=$?
n_msg=$(grep -c '^effdim spectrum:.*missing.csv' bad.log)
if [ $rc -ne 0 ] && [ "$n_msg" -eq 1 ] && grep -q 'rank 1 of 2: .*missing.csv' bad.log &&
    [ ! -e bad.h5 ] && [ ! -s bad.out ]; then
    ok "a rank that cannot read its data: every rank exits non-zero with the one message"
else
    fail "a rank that cannot read its data: every rank exits non-zero with the one message" \
        "rc $rc, $n_msg messages" "$(cat bad.log | head -20)"
fi

mpi 3 "$EFFDIM" spectrum model.h5 -o few.h5 -k 2 --probes 0 --threads 1 --data spirals:n=2 \
    >few.out 2>few.log
rc=$?
if [ $rc -ne 0 ] && grep -q 'spirals:n=2: 2 rows for 3 ranks: every rank needs at least one row' few.log &&
    [ ! -e few.h5 ]; then
    ok "fewer rows than ranks is a clear error"
else
    fail "fewer rows than ranks is a clear error" "rc $rc" "$(cat few.log | head)"
fi

mpi 2 "$EFFDIM" inspect model.h5 >insp.out 2>insp.log
rc=$?
if [ $rc -ne 0 ] && grep -q 'only spectrum, diag and train run data-parallel' insp.log; then
    ok "a command that does not run data-parallel is refused under mpirun -n 2"
else
    fail "a command that does not run data-parallel is refused under mpirun -n 2" "rc $rc" "$(cat insp.log)"
fi

if ls ./*.tmp-* >/dev/null 2>&1; then
    fail "no temporary file is left behind" "$(ls)"
else
    ok "no temporary file is left behind"
fi

cli_finish
