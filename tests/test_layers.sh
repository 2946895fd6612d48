#!/usr/bin/env bash
# tests/test_layers.sh: the layering docs/architecture.md promises, checked on
# the sources: the spectral layer (operator, dense, lanczos, spectral, neff)
# never includes a network, data or job header, so Lanczos, SLQ and
# Hutchinson see only an operator; tools/ includes only public headers.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/cli_lib.sh"
passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/effdim-layers-XXXXXX")
# check NAME LIST: ok when LIST (the offending includes) is empty
check() {
    if [ -z "$2" ]; then ok "$1"; else fail "$1" "includes: $2"; fi
}

spectral="lib/operator.c lib/dense.c lib/lanczos.c lib/spectral.c lib/neff.c lib/lanczos_internal.h
          lib/include/effdim/operator.h lib/include/effdim/dense.h lib/include/effdim/lanczos.h
          lib/include/effdim/spectral.h lib/include/effdim/neff.h"
allowed='effdim/(operator|dense|lanczos|spectral|neff|status|progress)\.h|internal\.h|lanczos_internal\.h'
for f in $spectral; do
  bad=$(grep -oE '#include "[^"]+"' "$top/$f" | sed 's/#include "//; s/"$//' | grep -vE "^($allowed)$" || true)
  check "$f includes only spectral and core headers" "$(echo $bad)"
done

for f in "$top"/tools/*.c "$top"/tools/*.h; do
  bad=$(grep -oE '#include "[^"]+"' "$f" | sed 's/#include "//; s/"$//' |
        grep -vE '^(effdim/[a-z0-9_]+\.h|cli\.h|plot\.h|demo\.h|bench_common\.h)$' || true)
  check "tools/$(basename "$f") includes no internal header" "$(echo $bad)"
done
cli_finish
