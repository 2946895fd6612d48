#!/bin/bash
# tests/test_data_paths_cli.sh: data paths recorded in checkpoints.
#
#   bash tests/test_data_paths_cli.sh path/to/effdim
#
# A checkpoint records its data spec with file paths relative to its own
# folder, and every command reads a recorded spec against that folder, so a
# run folder keeps working from anywhere and when moved with its data.
# Also: --data FILE.h5 without the h5: prefix is refused with the fix.
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_data_paths_cli.sh effdim-paths-cli "$@"

mkdir -p proj/data proj/runs elsewhere
if ! /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    echo "skip: /usr/bin/python3 has no h5py"
    ok "skipped without h5py"
    cli_finish
    exit
fi
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
r = np.random.default_rng(3)
X = r.normal(size=(60, 3))
y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
with h5py.File("proj/data/d.h5", "w") as f:
    f["X"] = X
    f["y"] = y
PY
cd proj || exit 99
if "$EFFDIM" train --data h5:data/d.h5 --arch 3,5,2 --act tanh --batch 60 --epochs 3 \
    -o runs/m.h5 >../train.txt 2>&1; then
    ok "train --data h5:data/d.h5 -o runs/m.h5"
else
    fail "train" "$(cat ../train.txt)"
fi
spec=$(/usr/bin/python3 -c "import h5py; print(h5py.File('runs/m.h5')['training'].attrs['data_spec'])")
[ "$spec" = "h5:../data/d.h5" ] && ok "the checkpoint records the path from its folder ($spec)" ||
    fail "the recorded spec" "got '$spec', expected 'h5:../data/d.h5'"
cd ../elsewhere || exit 99
if "$EFFDIM" spectrum ../proj/runs/m.h5 -k 2 --hvp exact --probes 0 -o s.h5 >out.txt 2>err.txt; then
    ok "spectrum from another folder reads the recorded data"
else
    fail "spectrum from another folder" "$(cat err.txt)"
fi
cd .. || exit 99
mv proj moved
if (cd moved/runs && "$EFFDIM" spectrum m.h5 -k 2 --hvp exact --probes 0 -o s.h5 >out.txt 2>err.txt); then
    ok "the moved folder still works from inside runs/"
else
    fail "the moved folder" "$(cat moved/runs/err.txt)"
fi
# an old-style record (relative to the folder train ran in) still loads from there
/usr/bin/python3 -c "
import h5py
with h5py.File('moved/runs/m.h5', 'r+') as f: f['training'].attrs['data_spec'] = 'h5:data/d.h5'"
if (cd moved && "$EFFDIM" spectrum runs/m.h5 -k 2 --hvp exact --probes 0 -o s2.h5 >out.txt 2>err.txt); then
    ok "a path recorded relative to the run's folder (older checkpoints) still loads"
else
    fail "old-style record" "$(cat moved/err.txt)"
fi
"$EFFDIM" spectrum moved/runs/m.h5 --data moved/data/d.h5 -k 2 --probes 0 -o s3.h5 >out.txt 2>err.txt
rc=$?
if [ "$rc" -ne 0 ] && grep -qF "for a file write h5:moved/data/d.h5" err.txt; then
    ok "--data FILE.h5 without h5: gets the hint (exit $rc: $(cat err.txt))"
else
    fail "--data FILE.h5 hint" "exit $rc" "$(cat err.txt)"
fi
[ ! -e s3.h5 ] && ok "no s3.h5 after the refusal" || fail "s3.h5 was written"
cli_finish
