#!/usr/bin/env bash
# tests/test_harness.sh SELFTEST PYTHON: the three test harnesses on themselves.
#   tests/check.c     (through SELFTEST, tests/check_selftest.c): a test that
#                     makes no checks fails, NaN is close to nothing whatever
#                     the tolerances, a filter that matches no test fails;
#   tests/cli_lib.sh  a script that makes no checks fails;
#   tests/summarize.py (run by PYTHON) a log with no test counted fails, a
#                     program that reports "0 passed, 0 failed" fails, a
#                     should_fail test that failed counts as a pass.
# Each case checks the exit status and the line that gives the reason, so a
# crash cannot pass for the expected failure.
. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_harness.sh effdim-harness "$1"
SELFTEST=$EFFDIM
PYTHON=${2:?usage: test_harness.sh path/to/check_selftest path/to/python3}
SUMMARIZE="$CLI_LIB_DIR/summarize.py"

# expect NAME STATUS LINE -- COMMAND...: exit status STATUS and a stdout line equal to LINE
expect() {
    local name=$1 want_rc=$2 want_line=$3
    shift 4
    "$@" >out.txt 2>err.txt
    local rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -qxF -- "$want_line" out.txt; then
        ok "$name"
    else
        fail "$name" "exit status $rc (want $want_rc), want the line '$want_line'; stdout:" \
            "$(cat out.txt)" "stderr: $(cat err.txt)"
    fi
}

# ---- tests/check.c --------------------------------------------------------------
for c in "nan is not close to nan" "nan got is not close to a number" \
    "nan want is not close to a number" "a nan in a vector fails whatever rtol" \
    "a nan only in want fails"; do
    expect "check.c: '$c' fails" 1 "FAIL - $c" -- "$SELFTEST" "$c"
done
expect "check.c: a test that makes no checks fails" 1 "FAIL - makes no checks (it made no checks)" \
    -- "$SELFTEST" "makes no checks"
expect "check.c: NaN expected with isnan passes" 0 "1 passed, 0 failed" \
    -- "$SELFTEST" "nan is expected with isnan"
expect "check.c: one passing check is enough" 0 "1 passed, 0 failed" \
    -- "$SELFTEST" "one passing check is enough"
expect "check.c: a filter that matches no test fails" 1 \
    "FAIL - the filter 'no such test' matches none of the 8 tests" -- "$SELFTEST" "no such test"
expect "check.c: the whole self-test program fails, counting each case" 1 "2 passed, 6 failed" \
    -- "$SELFTEST"

# ---- tests/cli_lib.sh -------------------------------------------------------------
mkdir -p inner
expect "cli_lib.sh: a script that makes no checks fails" 1 "FAIL - the script made no checks" \
    -- env TMPDIR="$TMP/inner" bash -c '. "$1"; cli_setup empty.sh empty /bin/true; cli_finish' \
    bash "$CLI_LIB_DIR/cli_lib.sh"
expect "cli_lib.sh: a script with one passing check passes" 0 "1 passed, 0 failed" \
    -- env TMPDIR="$TMP/inner" bash -c '. "$1"; cli_setup one.sh one /bin/true; ok one; cli_finish' \
    bash "$CLI_LIB_DIR/cli_lib.sh"

# ---- tests/summarize.py -----------------------------------------------------------
: >empty.json
expect "summarize.py: a log with no test counted fails" 1 "total: 0 passed, 1 failed" \
    -- "$PYTHON" "$SUMMARIZE" empty.json
echo '{"name": "t", "result": "OK", "stdout": "0 passed, 0 failed\n"}' >zero.json
expect "summarize.py: a program that ran no checks fails" 1 "total: 0 passed, 1 failed" \
    -- "$PYTHON" "$SUMMARIZE" zero.json
echo '{"name": "t", "result": "EXPECTEDFAIL", "stdout": "FAIL - x\n0 passed, 1 failed\n"}' >xfail.json
expect "summarize.py: an expected failure counts as one pass" 0 "total: 1 passed, 0 failed" \
    -- "$PYTHON" "$SUMMARIZE" xfail.json
echo '{"name": "t", "result": "FAIL", "stdout": "3 passed, 0 failed\n"}' >crash.json
expect "summarize.py: a program that crashed after its checks fails" 1 "total: 3 passed, 1 failed" \
    -- "$PYTHON" "$SUMMARIZE" crash.json
printf '%s\n' '{"name": "t", "result": "OK", "stdout": "2 passed, 0 failed\n"}' \
    '{"name": "s", "result": "SKIP", "stdout": "SKIP: slurmd is not installed\n"}' >skip.json
expect "summarize.py: a skipped test counts as a skip, not a pass" 0 "total: 2 passed, 0 failed, 1 skipped" \
    -- "$PYTHON" "$SUMMARIZE" skip.json

cli_finish
