# tests/cli_lib.sh: what the command-line tests (tests/test_*cli*.sh) share.
# Sourced, not run:
#
#   . "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
#   cli_setup test_cli.sh effdim-cli "$@"
#   ...ok NAME / fail NAME DETAIL... / expect_refusal ...
#   cli_finish
#
# Output: "ok - NAME" or "FAIL - NAME" (details indented below) per check,
# then "N passed, M failed"; cli_finish's status (the script's last
# command) is non-zero on any failure, and when the script made no checks.

CLI_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# cli_setup SCRIPT TMP_PREFIX EFFDIM: EFFDIM made absolute, FIX (the
# fixtures folder), a fresh TMP folder (the current folder from now on),
# the counters at zero.
cli_setup() {
    local script=$1 prefix=$2
    EFFDIM=${3:?usage: $script path/to/effdim}
    EFFDIM="$(cd "$(dirname "$EFFDIM")" && pwd)/$(basename "$EFFDIM")"
    FIX="$CLI_LIB_DIR/fixtures"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$prefix-XXXXXX")
    cd "$TMP" || exit 99
    passed=0
    failed=0
}

ok() { echo "ok - $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL - $1"
    shift
    for line in "$@"; do echo "    $line"; done
    failed=$((failed + 1))
}

# expect_refusal NAME SUBSTRING -- COMMAND...: exit 1 or 2, one stderr line
# containing SUBSTRING, the output file $GUARD byte-identical to its copy
# $GUARD_REF (set both first), no temporary beside it.
expect_refusal() {
    local name=$1 want=$2
    shift 3
    "$@" >out.txt 2>err.txt
    local rc=$? lines
    lines=$(wc -l <err.txt)
    local problems=()
    [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ] || problems+=("exit status $rc, expected 1 or 2")
    [ "$lines" -eq 1 ] || problems+=("$lines lines on stderr, expected 1")
    grep -qF -- "$want" err.txt || problems+=("stderr lacks '$want'")
    cmp -s "$GUARD" "$GUARD_REF" || problems+=("$GUARD was modified")
    if compgen -G "$GUARD.tmp-*" >/dev/null; then problems+=("a temporary file was left"); fi
    if [ ${#problems[@]} -eq 0 ]; then
        ok "$name (exit $rc: $(cat err.txt))"
    else
        fail "$name" "${problems[@]}" "stderr: $(cat err.txt)"
    fi
}

# The summary line; TMP is removed when everything passed, kept otherwise.
cli_finish() {
    if [ "$((passed + failed))" -eq 0 ]; then
        echo "FAIL - the script made no checks"
        failed=1
    fi
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then rm -rf "$TMP"; else echo "# files kept in $TMP"; fi
    [ "$failed" -eq 0 ]
}
