#!/bin/bash
# tests/test_cli.sh: the `effdim train` and `effdim inspect` commands end to end.
#
#   bash tests/test_cli.sh path/to/effdim
#
# Trains tiny networks on two spirals, inspects the checkpoints, checks that
# the same seed gives bitwise the same parameters (inspect's fnv1a64
# fingerprints of theta and of the optimiser state) and that 2 + 2 epochs
# with --init equal 4, then provokes the bad inputs: each must exit with
# status 1 or 2, print exactly one line on stderr naming the file or the
# option, and leave an existing output file byte-identical with no
# temporary file behind. Prints "ok - ..." / "FAIL - ..." per check and
# ends with "N passed, M failed"; exits non-zero on any failure.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_cli.sh effdim-cli "$@"

DATA="spirals:n=200,seed=1"
TEST="spirals:n=100,seed=2"
BASE=(--data "$DATA" --arch 2,16,16,2 --act tanh --opt adam --lr 0.01 --batch 32 --threads 2)

# fingerprint FILE: the parameter and optimiser-state hashes from inspect --json
fingerprint() {
    "$EFFDIM" inspect "$1" --json 2>/dev/null | grep -E '"(params|state)_fnv1a64"' | tr -d ' \t\n'
}

# ---- training and inspection ------------------------------------------------

if "$EFFDIM" train "${BASE[@]}" --test "$TEST" --epochs 2 --seed 1 --json -o model.h5 \
    >train.json 2>train.log; then
    ok "train on two spirals exits 0"
else
    fail "train on two spirals exits 0" "$(cat train.log)"
fi

if [ -f model.h5 ] && grep -q '"steps":[[:space:]]*14' train.json &&
    grep -q '"test_accuracy"' train.json; then
    ok "train --json reports 14 steps (2 epochs of 7 batches) and the test metrics"
else
    fail "train --json reports 14 steps (2 epochs of 7 batches) and the test metrics" "$(cat train.json)"
fi

if [ "$(grep -c '^epoch ' train.log)" -eq 2 ]; then
    ok "train logs a plain line for the first and last epoch when stderr is not a terminal"
else
    fail "train logs a plain line for the first and last epoch when stderr is not a terminal" "$(cat train.log)"
fi

"$EFFDIM" inspect model.h5 >inspect.txt 2>&1
if grep -q '^kind        effdim.checkpoint (version 1)' inspect.txt &&
    grep -q '2-16-16-2' inspect.txt && grep -q '^parameters  354 ' inspect.txt &&
    grep -q 'adam, step 14' inspect.txt && grep -q 'data spirals:n=200,seed=1' inspect.txt &&
    grep -q 'test_accuracies' inspect.txt; then
    ok "inspect shows kind, shape, parameter count, optimiser step, metrics and provenance"
else
    fail "inspect shows kind, shape, parameter count, optimiser step, metrics and provenance" "$(cat inspect.txt)"
fi

"$EFFDIM" inspect model.h5 --json >inspect.json 2>&1
if grep -q '"kind":[[:space:]]*"effdim.checkpoint"' inspect.json &&
    grep -q '"n_params":[[:space:]]*354' inspect.json &&
    grep -q '"exp_avg_sq"' inspect.json && grep -q '"epochs":[[:space:]]*2' inspect.json; then
    ok "inspect --json describes the checkpoint"
else
    fail "inspect --json describes the checkpoint" "$(head -40 inspect.json)"
fi

"$EFFDIM" train "${BASE[@]}" --test "$TEST" --epochs 2 --seed 1 -o again.h5 2>/dev/null
"$EFFDIM" train "${BASE[@]}" --test "$TEST" --epochs 2 --seed 2 -o other.h5 2>/dev/null
fp1=$(fingerprint model.h5)
fp2=$(fingerprint again.h5)
fp3=$(fingerprint other.h5)
if [ -n "$fp1" ] && [ "$fp1" = "$fp2" ]; then
    ok "the same seed and threads give bitwise the same parameters and optimiser state"
else
    fail "the same seed and threads give bitwise the same parameters and optimiser state" "$fp1" "$fp2"
fi
if [ -n "$fp3" ] && [ "$fp1" != "$fp3" ]; then
    ok "another seed gives other parameters"
else
    fail "another seed gives other parameters" "$fp1" "$fp3"
fi

"$EFFDIM" train "${BASE[@]}" --epochs 4 --seed 5 -o four.h5 2>/dev/null
"$EFFDIM" train "${BASE[@]}" --epochs 2 --seed 5 -o two.h5 2>/dev/null
"$EFFDIM" train --init two.h5 --epochs 2 -o resumed.h5 2>/dev/null
fp4=$(fingerprint four.h5)
fp5=$(fingerprint resumed.h5)
if [ -n "$fp4" ] && [ "$fp4" = "$fp5" ] && "$EFFDIM" inspect resumed.h5 | grep -q 'adam, step 28'; then
    ok "2 epochs, then 2 more with --init, equal 4 epochs bitwise"
else
    fail "2 epochs, then 2 more with --init, equal 4 epochs bitwise" "$fp4" "$fp5"
fi

if "$EFFDIM" train --data "$DATA" --arch 2,8,2 --act relu --opt sgd --lr 0.05 --momentum 0.9 \
    --nesterov --wd 1e-4 --schedule cosine:steps=20 --warmup 3 --batch full --epochs 5 \
    --save-every 2 -o sgd.h5 2>sgd.log &&
    "$EFFDIM" inspect sgd.h5 >sgd.txt && grep -q 'sgd, step 5' sgd.txt &&
    grep -q 'nesterov 1' sgd.txt && grep -q 'momentum_buffer' sgd.txt &&
    grep -q 'schedule cosine' sgd.txt; then
    ok "full-batch SGD with Nesterov momentum, warm-up and a cosine schedule trains and is recorded"
else
    fail "full-batch SGD with Nesterov momentum, warm-up and a cosine schedule trains and is recorded" \
        "$(cat sgd.log)" "$(cat sgd.txt 2>/dev/null)"
fi

"$EFFDIM" inspect "$FIX/other_format.h5" >other.txt 2>&1
if grep -q 'effdim.example (version 1)' other.txt && grep -q '/spectrum/eigenvalues' other.txt &&
    grep -q '(12,)' other.txt && grep -q 'tol' other.txt; then
    ok "inspect lists the attributes and data sets of an effdim format it does not know"
else
    fail "inspect lists the attributes and data sets of an effdim format it does not know" "$(cat other.txt)"
fi

IVON=(--data "$DATA" --arch 2,16,16,2 --act tanh --opt ivon --lr 0.1 --ess 200 --mc-samples 2
      --hess-init 0.5 --batch 32 --threads 2)
"$EFFDIM" train "${IVON[@]}" --epochs 4 --seed 7 -o ivon4.h5 2>/dev/null
"$EFFDIM" train "${IVON[@]}" --epochs 2 --seed 7 -o ivon2.h5 2>/dev/null
"$EFFDIM" train --init ivon2.h5 --epochs 2 -o ivon22.h5 2>/dev/null
fp6=$(fingerprint ivon4.h5)
fp7=$(fingerprint ivon22.h5)
if [ -n "$fp6" ] && [ "$fp6" = "$fp7" ] && "$EFFDIM" inspect ivon22.h5 >ivon.txt &&
    grep -q 'ivon, step 28' ivon.txt && grep -q 'hess momentum' ivon.txt &&
    grep -q 'mc_samples 2' ivon.txt && grep -q 'hess_approx price' ivon.txt &&
    "$EFFDIM" diag ivon22.h5 --method ivon -o ivon_diag.h5 >/dev/null 2>&1; then
    ok "IVON trains, resumes 2 + 2 = 4 bitwise and its hess feeds diag --method ivon"
else
    fail "IVON trains, resumes 2 + 2 = 4 bitwise and its hess feeds diag --method ivon" "$fp6" "$fp7" \
        "$(cat ivon.txt 2>/dev/null)"
fi

# SIGINT stops after the current step, saves what is done (exit 3) and --init continues it
"$EFFDIM" train --data "spirals:n=20000,seed=3" --arch 2,32,2 --batch 16 --epochs 400 \
    --threads 1 -o stopped.h5 2>stopped.log &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 3 ] && grep -q 'interrupted after' stopped.log && grep -q 'saved stopped.h5' stopped.log &&
    "$EFFDIM" train --init stopped.h5 --epochs 1 -o continued.h5 2>/dev/null &&
    "$EFFDIM" inspect continued.h5 | grep -q 'training '; then
    ok "SIGINT stops training, saves the checkpoint so far (exit 3) and --init continues it"
else
    fail "SIGINT stops training, saves the checkpoint so far (exit 3) and --init continues it" \
        "exit $rc" "$(cat stopped.log)"
fi

if "$EFFDIM" train --help | grep -q -- '--arch' && "$EFFDIM" inspect --help | grep -q -- '--json'; then
    ok "train --help and inspect --help exit 0 and describe the options"
else
    fail "train --help and inspect --help exit 0 and describe the options"
fi

# ---- bad inputs ---------------------------------------------------------------

cp model.h5 model.ref
printf 'this is not HDF5 at all\n' >corrupt.h5

GUARD=model.h5
GUARD_REF=model.ref

expect_refusal "inspect refuses a nonexistent file" "nonexistent.h5" -- \
    "$EFFDIM" inspect nonexistent.h5
expect_refusal "train refuses a nonexistent --init checkpoint" "nonexistent.h5" -- \
    "$EFFDIM" train --init nonexistent.h5 --epochs 1 -o model.h5
expect_refusal "inspect refuses a corrupt checkpoint" "corrupt.h5" -- \
    "$EFFDIM" inspect corrupt.h5
expect_refusal "train refuses a corrupt --init checkpoint" "corrupt.h5: not an HDF5 file" -- \
    "$EFFDIM" train --init corrupt.h5 --epochs 1 -o model.h5
expect_refusal "inspect refuses a newer format_version" "checkpoint_v2.h5: /: format_version 2" -- \
    "$EFFDIM" inspect "$FIX/checkpoint_v2.h5"
expect_refusal "train refuses a newer format_version" "format_version 2 is newer" -- \
    "$EFFDIM" train --init "$FIX/checkpoint_v2.h5" --data "$DATA" --epochs 1 -o model.h5
expect_refusal "inspect names the data set of a wrong weight shape" \
    "/model/layer1/weight: shape (2, 4), expected (2, 3)" -- \
    "$EFFDIM" inspect "$FIX/checkpoint_bad_shape.h5"
expect_refusal "train refuses an --arch whose input width does not match the data" \
    "--data spirals:n=200,seed=1: 2 input features, but the network's input width is 3" -- \
    "$EFFDIM" train --data "$DATA" --arch 3,16,2 --epochs 1 -o model.h5
expect_refusal "train refuses an --arch with fewer outputs than classes" \
    "2 classes, but the network has 1 outputs" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,1 --epochs 1 -o model.h5
expect_refusal "train refuses a malformed --arch" "--arch" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,x,2 --epochs 1 -o model.h5
expect_refusal "train refuses an unknown --opt" "rmsprop" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --opt rmsprop --epochs 1 -o model.h5
expect_refusal "train refuses --opt ivon without --ess" "--ess N" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --opt ivon --lr 0.1 --epochs 1 -o model.h5
expect_refusal "train refuses an unknown --hess-approx" "price or gradsq" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --opt ivon --lr 0.1 --ess 200 --hess-approx fisher \
    --epochs 1 -o model.h5
expect_refusal "train refuses an unknown option" "--frobnicate" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --frobnicate --epochs 1 -o model.h5
expect_refusal "train refuses a non-numeric --lr" "--lr" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --lr fast --epochs 1 -o model.h5
expect_refusal "train refuses an out-of-range --beta2" "beta2" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --beta2 1.5 --epochs 1 -o model.h5
expect_refusal "train refuses a bad data spec" "h5:$TMP/nonexistent_data.h5" -- \
    "$EFFDIM" train --data "h5:$TMP/nonexistent_data.h5" --arch 2,16,2 --epochs 1 -o model.h5
expect_refusal "train refuses a --opt that differs from the --init checkpoint's" "--opt sgd" -- \
    "$EFFDIM" train --init model.h5 --opt sgd --epochs 1 -o model.h5
expect_refusal "train refuses an output folder that does not exist" "no/such/folder" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --epochs 1 -o no/such/folder/m.h5
expect_refusal "train without -o is a usage error" "-o" -- \
    "$EFFDIM" train --data "$DATA" --arch 2,16,2 --epochs 1

cli_finish
