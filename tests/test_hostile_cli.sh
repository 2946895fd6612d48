#!/bin/bash
# tests/test_hostile_cli.sh: hostile files and failing disks through the command (issue 9).
#
#   bash tests/test_hostile_cli.sh path/to/effdim
#
# - a write that fails on a full disk (a 2 MiB tmpfs) ends with one line and
#   exit 1, no crash, the old file intact and no temporary left (skipped with
#   the reason where mounting is not allowed);
# - an output equal to an input (spectrum, diag, compare, train --data h5:F)
#   is refused before any work, the input untouched; train --init X -o X runs;
# - -o DIR/, -o of a folder and a missing folder are refused before training;
# - a second run on the same -o names the first one's PID;
# - a temporary file left by a killed run is removed by the next run;
# - a 20,000-epoch run saves its history and loads back;
# - files that crash or hang HDF5 are refused with one line.
# Prints "ok - ..." / "FAIL - ..." per check and ends with "N passed, M failed".
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_hostile_cli.sh effdim-hostile "$@"

SMALL=(--data "spirals:n=40,seed=1" --arch 2,4,2 --epochs 2 --threads 1)
"$EFFDIM" train "${SMALL[@]}" -o model.h5 >/dev/null 2>train.log || fail "setup: train" "$(cat train.log)"

# refuse_before_work NAME SUBSTRING FILE -- COMMAND: expect_refusal with FILE as the guarded file
refuse_before_work() {
    local name=$1 want=$2 file=$3
    shift 4
    GUARD=$file
    GUARD_REF=$file.ref
    cp "$file" "$GUARD_REF"
    local t0=$SECONDS
    expect_refusal "$name" "$want" -- "$@"
    [ $((SECONDS - t0)) -le 5 ] || fail "$name: refused only after $((SECONDS - t0)) s (before the work?)"
    rm -f "$GUARD_REF"
}

# ---- 8: a full disk -------------------------------------------------------------------

mkdir -p small
if mount -t tmpfs -o size=2m tmpfs small 2>mount.err; then
    if "$EFFDIM" train "${SMALL[@]}" -o small/x.h5 >/dev/null 2>&1; then
        cp small/x.h5 x.ref
        "$EFFDIM" train --data "spirals:n=40,seed=1" --arch 2,300,300,2 --epochs 1 --threads 1 \
            -o small/x.h5 >out.txt 2>err.txt
        rc=$?
        lines=$(grep -c '^effdim ' err.txt) # the rest are progress lines
        left=$(find small -name 'x.h5.tmp-*' | wc -l)
        if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -q '^effdim train: small/x.h5: .*no space left on device' err.txt &&
            ! grep -q 'tmp-' err.txt && cmp -s small/x.h5 x.ref && [ "$left" -eq 0 ]; then
            ok "a write on a full disk ends with one line and exit 1, the old file intact ($(grep '^effdim ' err.txt))"
        else
            fail "a write on a full disk ends with one line and exit 1, the old file intact" \
                "exit $rc (139 = SIGSEGV), $lines error lines, $left temporaries left" "$(cat err.txt)"
        fi
    else
        fail "a small checkpoint fits the 2 MiB tmpfs"
    fi
    umount small
else
    echo "# skipped: the disk-full test cannot mount a tmpfs here: $(cat mount.err)"
fi

# ---- 3: an output equal to an input ------------------------------------------------------

"$EFFDIM" spectrum model.h5 -k 2 --data "spirals:n=40,seed=1" -o spec.h5 >/dev/null 2>&1 ||
    fail "setup: spectrum"
"$EFFDIM" diag model.h5 --method ggn --data "spirals:n=40,seed=1" -o diag.h5 >/dev/null 2>&1 ||
    fail "setup: diag"
ln -s model.h5 model-link.h5
refuse_before_work "spectrum X -o X is refused" "same file as the input" model.h5 -- \
    "$EFFDIM" spectrum model.h5 -k 2 -o model.h5
refuse_before_work "spectrum X -o LINK-TO-X is refused" "same file as the input" model.h5 -- \
    "$EFFDIM" spectrum model.h5 -k 2 -o ./model-link.h5
refuse_before_work "diag X -o X is refused" "same file as the input" model.h5 -- \
    "$EFFDIM" diag model.h5 --method ggn -o model.h5
refuse_before_work "compare with -o equal to its --diag input is refused" "same file as the input" \
    diag.h5 -- "$EFFDIM" compare model.h5 --spectrum spec.h5 --diag diag.h5 -o diag.h5
cp "$FIX/data_h5py_labels.h5" data.h5
refuse_before_work "train --data h5:F -o F is refused" "same file as the input 'data.h5'" data.h5 -- \
    "$EFFDIM" train --data h5:data.h5 --arch 2,4,2 --epochs 1 -o data.h5
cp model.h5 cont.h5
if "$EFFDIM" train --init cont.h5 --epochs 1 --threads 1 -o cont.h5 >/dev/null 2>err.txt &&
    "$EFFDIM" inspect cont.h5 | grep -q '^training    3 epochs'; then
    ok "train --init X -o X continues X (3 epochs)"
else
    fail "train --init X -o X continues X (3 epochs)" "$(cat err.txt)"
fi

# ---- 7: the output path, checked before the work ----------------------------------------

mkdir -p outdir
GUARD=model.h5
GUARD_REF=model.h5.ref
cp model.h5 model.h5.ref
LONG=(--data "spirals:n=2000,seed=1" --arch 2,64,64,2 --epochs 100000 --threads 1)
for out in outdir/ outdir missing/x.h5; do
    t0=$SECONDS
    expect_refusal "train -o $out is refused before training" "$out" -- "$EFFDIM" train "${LONG[@]}" -o "$out"
    [ $((SECONDS - t0)) -le 5 ] || fail "train -o $out: refused only after $((SECONDS - t0)) s"
done

# ---- 6: one writer per output ----------------------------------------------------------

"$EFFDIM" train "${LONG[@]}" -o locked.h5 >/dev/null 2>first.err &
first=$!
for _ in $(seq 100); do [ -e .locked.h5.effdim-lock ] && break; sleep 0.1; done
"$EFFDIM" train "${SMALL[@]}" -o locked.h5 >/dev/null 2>second.err
rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l <second.err)" -eq 1 ] &&
    grep -q "another effdim run (PID $first) is writing this file" second.err; then
    ok "a second run on the same -o is refused naming the first one's PID ($(cat second.err))"
else
    fail "a second run on the same -o is refused naming the first one's PID" "exit $rc" "$(cat second.err)"
fi
kill -9 "$first" 2>/dev/null
wait "$first" 2>/dev/null
if "$EFFDIM" train "${SMALL[@]}" -o locked.h5 >/dev/null 2>third.err && [ ! -e .locked.h5.effdim-lock ]; then
    ok "after the first run is killed, the next run takes the output over and removes the lock file"
else
    fail "after the first run is killed, the next run takes the output over" "$(cat third.err)"
fi

# ---- 5: temporaries of killed runs -----------------------------------------------------

sleep 0.01 &
dead=$!
wait "$dead"
: >"stale.h5.tmp-$dead-AbC123"
: >"stale.h5.tmp-$$-AbC123" # this shell is alive: kept
if "$EFFDIM" train "${SMALL[@]}" -o stale.h5 >/dev/null 2>err.txt && [ ! -e "stale.h5.tmp-$dead-AbC123" ] &&
    [ -e "stale.h5.tmp-$$-AbC123" ]; then
    ok "a killed run's temporary is removed by the next run, a live process's kept"
else
    fail "a killed run's temporary is removed by the next run, a live process's kept" "$(ls -a)" "$(cat err.txt)"
fi
rm -f "stale.h5.tmp-$$-AbC123"

# ---- 4: long histories -----------------------------------------------------------------

t0=$SECONDS
if "$EFFDIM" train --data spirals:n=10 --arch 2,2,2 --batch full --epochs 20000 --threads 1 -o long.h5 \
    >/dev/null 2>err.txt && "$EFFDIM" inspect long.h5 >long.txt 2>&1 &&
    grep -q '^training    20000 epochs' long.txt; then
    ok "a 20,000-epoch run saves its history and loads back ($((SECONDS - t0)) s)"
else
    fail "a 20,000-epoch run saves its history and loads back" "$(cat err.txt)" "$(head -20 long.txt)"
fi

# ---- files that crash or hang HDF5 -----------------------------------------------------

export EFFDIM_H5_GUARD_SECONDS=1
for f in crashes-hdf5 hangs-hdf5 huge-string-hdf5; do
    cp "$FIX/hostile/$f.h5" "$f.h5"
    GUARD=$f.h5
    GUARD_REF=$f.ref
    cp "$f.h5" "$f.ref"
    expect_refusal "inspect $f.h5 is refused with one line" \
        "this file crashes or hangs the HDF5 library" -- "$EFFDIM" inspect "$f.h5"
done
GUARD=crashes-hdf5.h5
GUARD_REF=crashes-hdf5.ref
expect_refusal "train --init of a file that crashes HDF5 is refused" "crashes or hangs the HDF5 library" -- \
    "$EFFDIM" train --init crashes-hdf5.h5 --epochs 1 -o new.h5
unset EFFDIM_H5_GUARD_SECONDS

cli_finish
