#!/bin/bash
# tests/test_svd_cli.sh: sparse variational dropout from the command line.
# `effdim train --svd sparsevd` on two spirals writes a checkpoint whose
# inspect shows the variational layers (sparsity per layer, compression);
# --init continues it bitwise (2 + 2 epochs = 4); spectrum and diag run on
# its evaluation network (the masked mean weights: the GGN spectrum of the
# SVD checkpoint equals that of a copy h5py writes with the dropped weights
# zeroed and the variances removed, when Debian's python3 has h5py);
# svd-var writes its figure; a checkpoint missing a log_sigma2 and bad
# option combinations are refused with one line.
#
#   bash tests/test_svd_cli.sh path/to/effdim
set -u

. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_svd_cli.sh effdim-svd-cli "$@"

export OPENBLAS_NUM_THREADS=1
T=(--data spirals:n=400 --arch 2,16,16,2 --svd sparsevd --svd-anneal linear:0.25 --batch 50
   --lr 1e-2 --threads 1)
if "$EFFDIM" train "${T[@]}" --epochs 4 -o four.h5 --json >four.json 2>err.txt &&
    "$EFFDIM" inspect four.h5 >insp.txt 2>&1 &&
    grep -q "sparsity per layer" insp.txt && grep -q "compression" insp.txt &&
    grep -q '"compression"' four.json; then
    ok "train --svd writes a checkpoint whose inspect shows sparsity and compression"
else
    fail "train --svd writes a checkpoint whose inspect shows sparsity and compression" \
        "$(cat err.txt insp.txt four.json)"
fi

if "$EFFDIM" train "${T[@]}" --epochs 2 -o two.h5 >/dev/null 2>err.txt &&
    "$EFFDIM" train --init two.h5 --epochs 2 --threads 1 -o two.h5 >/dev/null 2>>err.txt &&
    "$EFFDIM" inspect --json two.h5 | grep fnv1a64 >a.txt &&
    "$EFFDIM" inspect --json four.h5 | grep fnv1a64 >b.txt && cmp -s a.txt b.txt; then
    ok "train --init continues an svd checkpoint bitwise (2 + 2 = 4 epochs)"
else
    fail "train --init continues an svd checkpoint bitwise (2 + 2 = 4 epochs)" \
        "$(cat err.txt a.txt b.txt)"
fi

# 'v' after a width in --arch marks the layer that produces it: the same
# checkpoint, bitwise, as --svd sparsevd --svd-layers with those layers
A=(--data spirals:n=400 --svd-anneal linear:0.25 --batch 50 --lr 1e-2 --threads 1 --epochs 2)
if "$EFFDIM" train "${A[@]}" --arch 2,16v,16,2v -o archv.h5 >/dev/null 2>err.txt &&
    "$EFFDIM" train "${A[@]}" --arch 2,16,16,2 --svd sparsevd --svd-layers 0,2 -o layers.h5         >/dev/null 2>>err.txt &&
    "$EFFDIM" inspect --json archv.h5 | grep -v '"file"\|"command"\|"seconds"\|"created"' >a.txt &&
    "$EFFDIM" inspect --json layers.h5 | grep -v '"file"\|"command"\|"seconds"\|"created"' >b.txt && cmp -s a.txt b.txt &&
    "$EFFDIM" inspect archv.h5 | grep -q "sparsity per layer: [0-9.]* (deterministic) [0-9.]*"; then
    ok "--arch 2,16v,16,2v equals --svd sparsevd --svd-layers 0,2 bitwise"
else
    fail "--arch 2,16v,16,2v equals --svd sparsevd --svd-layers 0,2 bitwise" \
        "$(cat err.txt; diff a.txt b.txt; "$EFFDIM" inspect archv.h5)"
fi

if "$EFFDIM" spectrum four.h5 -k 3 --op ggn --probes 0 -o spec.h5 >spec.txt 2>err.txt &&
    "$EFFDIM" diag four.h5 --method ggn,hessian --threads 1 -o diag.h5 >diag.txt 2>>err.txt; then
    ok "spectrum and diag run on an svd checkpoint"
else
    fail "spectrum and diag run on an svd checkpoint" "$(cat err.txt spec.txt diag.txt)"
fi

# The oracle for "the analyses see the masked mean weights": an ordinary
# checkpoint written by h5py with theta * [log alpha < 3] (computed in numpy
# from the file's own log_sigma2, clip and tiny) has the same GGN spectrum.
if /usr/bin/python3 -c "import h5py, numpy" 2>/dev/null; then
    if /usr/bin/python3 - four.h5 masked.h5 <<'PY' 2>err.txt &&
import shutil, sys
import h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    m = f["model"]
    L, tiny, thr = m.attrs["svd_log_alpha_clip"], m.attrs["svd_tiny"], m.attrs["svd_threshold"]
    dropped = 0
    for i in m.attrs["svd_layers"]:
        g = m["layer%d" % i]
        w = g["weight"][...]
        la = np.clip(g["log_sigma2"][...] - np.log(w * w + tiny), -L, L)
        dropped += int((la >= thr).sum())
        g["weight"][...] = np.where(la >= thr, 0.0, w)
        del g["log_sigma2"]
    for k in [k for k in m.attrs if k.startswith("svd_")]:
        del m.attrs[k]
    del f["optimizer"]
    assert dropped > 0
PY
        "$EFFDIM" inspect masked.h5 >minsp.txt 2>>err.txt && ! grep -q "^svd" minsp.txt &&
        "$EFFDIM" spectrum masked.h5 -k 3 --op ggn --probes 0 -o mspec.h5 >/dev/null 2>>err.txt &&
        /usr/bin/python3 - spec.h5 mspec.h5 <<'PY' 2>>err.txt; then
import sys
import h5py, numpy as np
a = h5py.File(sys.argv[1], "r")["spectrum/eigenvalues"][...]
b = h5py.File(sys.argv[2], "r")["spectrum/eigenvalues"][...]
assert np.allclose(a, b, rtol=1e-9, atol=0), (a, b)
PY
        ok "the spectrum of an svd checkpoint is that of its masked mean weights (h5py copy)"
    else
        fail "the spectrum of an svd checkpoint is that of its masked mean weights (h5py copy)" \
            "$(cat err.txt)"
    fi
fi

if "$EFFDIM" svd-var four.h5 --diag diag.h5 --bins 5 -o var.png >var.txt 2>err.txt &&
    [ -s var.png ] && grep -q "kept weights compared" var.txt &&
    "$EFFDIM" svd-var four.h5 --diag diag.h5 --json >var.json 2>>err.txt &&
    grep -q '"pearson_log"' var.json; then
    ok "svd-var compares sigma^2 with the Laplace variances and writes its figure"
else
    fail "svd-var compares sigma^2 with the Laplace variances and writes its figure" \
        "$(cat err.txt var.txt)"
fi

if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    cp four.h5 broken.h5
    /usr/bin/python3 -c 'import h5py; del h5py.File("broken.h5", "r+")["model/layer1/log_sigma2"]'
    "$EFFDIM" inspect broken.h5 >out.txt 2>err.txt
    rc=$?
    if [ "$rc" = 1 ] && [ "$(wc -l <err.txt)" = 1 ] &&
        grep -q "broken.h5: /model/layer1/log_sigma2: data set is missing" err.txt; then
        ok "a checkpoint missing a log_sigma2 is refused with one line (exit 1: $(cat err.txt))"
    else
        fail "a checkpoint missing a log_sigma2 is refused with one line" "rc $rc: $(cat err.txt)"
    fi
fi

cp four.h5 four-ref.h5
GUARD=four.h5
GUARD_REF=four-ref.h5
expect_refusal "--svd with an unknown KL is refused" "sparsevd or ard" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16,2 --svd gauss -o four.h5
expect_refusal "--svd with ivon is refused" "IVON" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16,2 --svd ard --opt ivon --lr 0.1 --ess 400 \
    -o four.h5
expect_refusal "--svd-anneal without --svd is refused" "--svd" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16,2 --svd-anneal linear -o four.h5
expect_refusal "a bad --svd-anneal is refused" "rw_linear" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16,2 --svd ard --svd-anneal cosine -o four.h5
expect_refusal "--svd-layers outside the network is refused" "layer 5" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16,2 --svd ard --svd-layers 0,5 -o four.h5
expect_refusal "a 'v' on the input width is refused" "input width" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2v,16,2 -o four.h5
expect_refusal "'v' widths with --svd-layers are refused" "use one of them" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16v,2 --svd ard --svd-layers 0 -o four.h5
expect_refusal "a width with another suffix is refused" "--arch" -- \
    "$EFFDIM" train --data spirals:n=400 --arch 2,16x,2 -o four.h5
expect_refusal "--svd on --init is refused" "drop --svd" -- \
    "$EFFDIM" train --init four-ref.h5 --svd ard --epochs 1 -o four.h5
"$EFFDIM" train --data spirals:n=400 --arch 2,16,16,2 --epochs 1 --threads 1 -o plain.h5 \
    >/dev/null 2>&1
expect_refusal "svd-var on a checkpoint without variational layers is refused" \
    "svd_layers" -- "$EFFDIM" svd-var plain.h5 --diag diag.h5

cli_finish
