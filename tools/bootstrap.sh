#!/usr/bin/env bash
# tools/bootstrap.sh: set up a fresh Debian 12 machine, build effdim, and run
#   demo   the main job on the embedded default data (two spirals), or
#   test   the whole default test suite, in a release build and again under
#          AddressSanitizer + UndefinedBehaviorSanitizer, ending with one line
#          "total: N passed, M failed" (non-zero exit on any failure), or
#   slow   the default suite plus the slow suite (needs python3-torch: installed
#          here), and the fuzz targets (tests/fuzz, docs/fuzzing.md) for a fixed
#          time each in a third build, build-fuzz, made with clang's libFuzzer
#          (clang, libclang-rt-dev and llvm for llvm-symbolizer: installed here);
#          slurm-wlm and munge for the test that runs a sweep as a job array on a
#          SLURM started on this machine (tests/test_sweep_slurm.sh).
# python3-sklearn provides the UCI Boston and diabetes files (datasets/README.md).
# python3-h5py is installed in every mode: the tests read the files effdim
# writes with h5py, as its users do.
# libopenmpi-dev and openmpi-bin (Open MPI) build the data-parallel runs and their tests
# (mpirun on loopback; docs/scaling.md); meson -Dmpi=disabled builds without them.
# It installs only what is missing (apt-get), so re-running it is cheap.
set -euo pipefail
mode=${1:-demo}
case "$mode" in demo|test|slow) ;; *) echo "usage: $0 demo|test|slow" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs="build-essential meson ninja-build pkg-config python3 libopenblas-dev liblapacke-dev libgsl-dev
      libhdf5-dev zlib1g-dev libcjson-dev dataset-fashion-mnist gnuplot-nox python3-h5py python3-numpy
      python3-sklearn libopenmpi-dev openmpi-bin"
[ "$mode" = slow ] && pkgs="$pkgs python3-torch python3-scipy clang libclang-rt-dev llvm slurm-wlm munge"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "== installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

jobs=$(nproc 2>/dev/null || echo 2)
build() { # dir, extra meson options...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@"; fi
  ninja -C "$dir"
}

build build --buildtype=release
if [ "$mode" = demo ]; then
  exec ./build/tools/effdim demo
fi

# The test suite: release build, then the sanitizer build. Each test program
# prints its own "N passed, M failed"; tests/summarize.py adds them up.
# One BLAS thread per test: meson already runs one test per core, and an
# OpenBLAS thread that waits for a busy core spins (test_hvp's SLQ test in the
# ASan build at load 14 on 2 cores: 28 s with one thread, 201 s with two).
# Timeouts scale with the machine's load: the multiplier is 1 + the load
# average per core (rounded up, at most 4, so a real hang is still caught),
# times 4 under the sanitizers.
status=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
scale=$(awk -v l="$load" -v n="$jobs" 'BEGIN { s = 1 + l / n; s = (s == int(s)) ? s : int(s) + 1
  printf "%d", (s > 4 ? 4 : s) }')
echo "== load average $load on $jobs cores: timeouts x$scale (x$((4 * scale)) under the sanitizers)"
suites=()
[ "$mode" = slow ] && suites=(--setup default --suite fast --suite slow)
meson test -C build --print-errorlogs --num-processes "$jobs" --timeout-multiplier "$scale" \
  "${suites[@]}" || status=1
build build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-asan --print-errorlogs --num-processes "$jobs" \
  --timeout-multiplier "$((4 * scale))" || status=1
logs=(build/meson-logs/testlog.json build-asan/meson-logs/testlog.json)
if [ "$mode" = slow ]; then
  # the fuzz targets, one after another, tests/fuzz/run_fuzz.py's verdict each
  if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
      --buildtype=debugoptimized
  fi
  ninja -C build-fuzz
  meson test -C build-fuzz --print-errorlogs --suite fuzz --timeout-multiplier "$scale" || status=1
  logs+=(build-fuzz/meson-logs/testlog.json)
fi
python3 tests/summarize.py "${logs[@]}" || status=1
exit $status
