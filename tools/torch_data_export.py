#!/usr/bin/python3
"""tools/torch_data_export.py: write a PyTorch tensor data set in effdim's `h5:` layout.

The layout (docs/data.md, "h5"):

    /X   (n, d)  float64: the inputs, every sample flattened to one row
                 (images (n, 1, 28, 28) become (n, 784) in C order, as
                 nn.Flatten does)
    /y   (n)     int64 class labels in [0, k), attribute num_classes = k
         or (n, k) float64 regression targets

and, with a checkpoint, records `h5:PATH` as the checkpoint's
/training data_spec, PATH relative to the checkpoint's folder (how effdim
reads a recorded spec), so `effdim spectrum CKPT.h5` needs no --data.

Use as a module:
    from torch_data_export import export_dataset
    export_dataset(X, y, "data.h5", checkpoint="model.h5")
or from the command line, on a file made by torch.save:
    tools/torch_data_export.py DATA.pt OUT.h5 [--checkpoint CKPT.h5]
where DATA.pt holds a TensorDataset, a tuple or list (X, y), or a dict with
keys "X" and "y" (or "inputs"/"targets", "data"/"labels").
Writes are atomic (a temporary file beside the target, then os.replace).
"""

import argparse
import os
import sys

HINT = ("run it with Debian's /usr/bin/python3 (apt install python3-torch python3-h5py) "
        "or install the module into this interpreter (pip install torch h5py)")
try:
    import h5py
    import numpy as np
    import torch
except ImportError as _e:
    _msg = f"{sys.executable} has no module '{_e.name}': {HINT}"
    if __name__ == "__main__":
        print(f"{os.path.basename(sys.argv[0])}: {_msg}", file=sys.stderr)
        sys.exit(2)
    raise ImportError(_msg) from _e
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_export import replace_atomically  # noqa: E402


class DataExportError(ValueError):
    """The tensors cannot be written in effdim's h5: layout."""


def _array(t, what):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    if isinstance(t, np.ndarray):
        return t
    raise DataExportError(f"{what}: expected a torch.Tensor or numpy array, got "
                          f"{type(t).__name__}")


def _tensors(obj):
    """(X, y) from a TensorDataset, a (X, y) pair or a dict."""
    if isinstance(obj, torch.utils.data.TensorDataset):
        if len(obj.tensors) != 2:
            raise DataExportError(f"TensorDataset with {len(obj.tensors)} tensors, expected 2 "
                                  "(inputs, targets)")
        return obj.tensors
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        return obj
    if isinstance(obj, dict):
        for kx, ky in (("X", "y"), ("inputs", "targets"), ("data", "labels"), ("x", "y")):
            if kx in obj and ky in obj:
                return obj[kx], obj[ky]
        raise DataExportError(f"dict with keys {sorted(obj)}: expected X and y (or "
                              "inputs/targets, data/labels)")
    raise DataExportError(f"{type(obj).__name__}: expected a TensorDataset, a pair (X, y) or "
                          "a dict with X and y")


def record_data_spec(checkpoint, data_path):
    """Set CKPT's /training data_spec to h5:PATH, PATH relative to its folder."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    rel = os.path.relpath(os.path.abspath(data_path), folder)
    if "," in rel:
        raise DataExportError(f"{data_path}: data spec paths cannot contain commas")
    spec = f"h5:{rel}"
    with h5py.File(checkpoint, "r") as f:
        if f.attrs.get("format") != "effdim.checkpoint":
            raise DataExportError(f"{checkpoint}: not an effdim checkpoint (attribute 'format')")

    def write(tmp):
        with h5py.File(checkpoint, "r") as src, h5py.File(tmp, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for name in src:
                src.copy(src[name], dst, name=name)
            g = dst.require_group("training")
            g.attrs["data_spec"] = spec
    replace_atomically(checkpoint, write)
    return spec


def export_dataset(X, y, path, checkpoint=None):
    """Write inputs X (n, ...) and labels or targets y to path in the h5:
    layout; with checkpoint, record it there as the data spec (returned)."""
    X = _array(X, "X")
    y = _array(y, "y")
    if X.ndim < 1 or X.shape[0] == 0:
        raise DataExportError(f"X has shape {X.shape}, expected (n, ...) with n >= 1")
    n = X.shape[0]
    X = np.ascontiguousarray(X.reshape(n, -1), dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise DataExportError("X has a non-finite value")
    if y.shape[0] != n:
        raise DataExportError(f"y has {y.shape[0]} rows, X has {n}")
    labels = y.dtype.kind in "iub"
    if labels:
        if y.ndim != 1:
            raise DataExportError(f"integer y has shape {y.shape}, expected (n) class labels")
        y = y.astype(np.int64)
        if y.min() < 0:
            raise DataExportError(f"label {int(y.min())} is negative, expected 0..k-1")
    else:
        y = np.ascontiguousarray(y.reshape(n, -1), dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise DataExportError("y has a non-finite value")

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f["X"] = X
            f["y"] = y
            if labels:
                f["y"].attrs["num_classes"] = np.int64(int(y.max()) + 1)
    replace_atomically(path, write)
    return record_data_spec(checkpoint, path) if checkpoint else f"h5:{path}"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a PyTorch tensor data set (torch.save file) "
                                 "in effdim's h5: layout.")
    ap.add_argument("data", help="a torch.save file: TensorDataset, (X, y) or {'X':..., 'y':...}")
    ap.add_argument("out", help="the .h5 file to write")
    ap.add_argument("--checkpoint", metavar="CKPT", help="record h5:OUT as CKPT's data spec")
    args = ap.parse_args(argv)
    try:
        obj = torch.load(args.data, map_location="cpu", weights_only=False)
        X, y = _tensors(obj)
        spec = export_dataset(X, y, args.out, checkpoint=args.checkpoint)
    except (DataExportError, ValueError, OSError, KeyError) as e:
        print(f"torch_data_export: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}" + (f"; {args.checkpoint} records {spec}" if args.checkpoint else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
