#!/bin/bash
# tests/test_amsgrad_cli.sh: `effdim demo amsgrad` claims its outputs (-o and
# --plot) before it runs: a short run writes its trajectories, then a folder
# as -o, -o equal to --plot and a missing folder are each refused with one
# stderr line, and the existing output stays byte-identical.
#
#   bash tests/test_amsgrad_cli.sh path/to/effdim
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_amsgrad_cli.sh effdim-amsgrad-cli "$@"

SHORT=(--setting online --lr-schedule const --steps 2000 --every 100)
if "$EFFDIM" demo amsgrad "${SHORT[@]}" -o run.h5 >run.txt 2>err.txt &&
    "$EFFDIM" inspect run.h5 >/dev/null 2>&1; then
    ok "a short run writes its trajectories"
else
    fail "a short run writes its trajectories" "$(cat run.txt err.txt)"
fi

cp run.h5 run-ref.h5
GUARD=run.h5
GUARD_REF=run-ref.h5
expect_refusal "-o equal to --plot is refused" "two outputs" -- \
    "$EFFDIM" demo amsgrad "${SHORT[@]}" -o run.h5 --plot run.h5
mkdir -p folder.h5
expect_refusal "a folder as -o is refused" "folder" -- \
    "$EFFDIM" demo amsgrad "${SHORT[@]}" -o folder.h5
expect_refusal "a folder as --plot is refused" "folder" -- \
    "$EFFDIM" demo amsgrad "${SHORT[@]}" -o other.h5 --plot folder.h5
expect_refusal "an -o in a missing folder is refused" "no-such-dir" -- \
    "$EFFDIM" demo amsgrad "${SHORT[@]}" -o no-such-dir/run.h5

cli_finish
