#!/usr/bin/python3
"""tools/torch_import.py: read an effdim checkpoint back into PyTorch.

The reverse of tools/torch_export.py (layout in docs/file-formats.md):
import_checkpoint(path) returns a dict with

    model       nn.Sequential of Linear and activation modules, float64
    loss        "cross_entropy" | "mse" | "bce";  reduction "mean" | "sum"
    loss_fn     the matching nn.CrossEntropyLoss / nn.MSELoss / nn.BCEWithLogitsLoss
                (bce: one output unit; loss_and_grad turns integer labels 0/1
                into the float (n, 1) targets BCEWithLogitsLoss takes)
    optimizer   torch.optim.SGD / Adam / AdamW over model.parameters() with
                the checkpoint's hyperparameters and state (exp_avg, ...,
                step), or None when the file has no /optimizer
    optimizer_name, step, hparams, state (name -> flat numpy array)
    training    dict of /training attributes and per-epoch histories (or {})
    layer_sizes, activations

The same checks as effdim's C reader are made (format, format_version,
shapes, names, finite weights); a ValueError names the file and the object.

Command line:
    /usr/bin/python3 tools/torch_import.py model.h5
        prints the module and the optimiser;
    /usr/bin/python3 tools/torch_import.py model.h5 --loss-grad DATA.h5 OUT.h5
        evaluates the loss and its gradient (parameters_to_vector order) on
        DATA.h5 (/X (n, d), /y (n) labels or (n, k) targets) and writes
        /loss and /grad to OUT.h5.
"""

import argparse
import sys

import h5py
import numpy as np
import torch
from torch import nn

FORMAT = "effdim.checkpoint"
FORMAT_VERSION = 1

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "softplus": nn.Softplus, "gelu": nn.GELU, "elu": nn.ELU, "identity": None}


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def loss_function(loss, reduction="mean"):
    """The PyTorch loss module effdim's loss name stands for."""
    if loss == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=reduction)
    if loss == "mse":
        return nn.MSELoss(reduction=reduction)
    if loss == "bce":
        return nn.BCEWithLogitsLoss(reduction=reduction)
    raise ValueError(f"loss '{loss}': expected cross_entropy, mse or bce")


def _read_model(f, path):
    if _str(f.attrs.get("format", "")) != FORMAT:
        raise ValueError(f"{path}: /: format is {f.attrs.get('format')!r}, expected {FORMAT!r}")
    version = int(f.attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: /: format_version {version} is newer than this reader "
                         f"({FORMAT_VERSION})")
    if version < 1:
        raise ValueError(f"{path}: /: format_version {version}, expected {FORMAT_VERSION}")
    if "model" not in f:
        raise ValueError(f"{path}: /model: group is missing")
    g = f["model"]
    sizes = [int(s) for s in np.atleast_1d(g.attrs["layer_sizes"])]
    acts = [_str(a) for a in np.atleast_1d(g.attrs["activations"])]
    loss = _str(g.attrs["loss"])
    reduction = _str(g.attrs.get("reduction", "mean"))
    if len(acts) != len(sizes) - 1:
        raise ValueError(f"{path}: /model: activations has {len(acts)} entries, "
                         f"expected {len(sizes) - 1}")
    loss_function(loss, reduction)
    if loss == "bce" and sizes[-1] != 1:
        raise ValueError(f"{path}: /model: loss bce needs one output unit, layer_sizes ends "
                         f"with {sizes[-1]}")
    layers = []
    for i in range(len(sizes) - 1):
        if acts[i] not in ACTIVATIONS:
            raise ValueError(f"{path}: /model: activations[{i}] is '{acts[i]}', expected one of "
                             f"{', '.join(ACTIVATIONS)}")
        name = f"layer{i}"
        if name not in g:
            raise ValueError(f"{path}: /model/{name}: layer is missing")
        w = np.asarray(g[name]["weight"][...], dtype=np.float64)
        b = np.asarray(g[name]["bias"][...], dtype=np.float64)
        if w.shape != (sizes[i + 1], sizes[i]):
            raise ValueError(f"{path}: /model/{name}/weight: shape {w.shape}, expected "
                             f"{(sizes[i + 1], sizes[i])} from layer_sizes")
        if b.shape != (sizes[i + 1],):
            raise ValueError(f"{path}: /model/{name}/bias: shape {b.shape}, expected "
                             f"{(sizes[i + 1],)} from layer_sizes")
        for what, arr in (("weight", w), ("bias", b)):
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise ValueError(f"{path}: /model/{name}/{what}: value {arr.flat[bad[0]]} at "
                                 f"index {np.unravel_index(bad[0], arr.shape)}")
        lin = nn.Linear(sizes[i], sizes[i + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if ACTIVATIONS[acts[i]] is not None:
            layers.append(ACTIVATIONS[acts[i]]())
    return nn.Sequential(*layers), sizes, acts, loss, reduction


def _make_optimizer(model, name, hp, step, state):
    params = list(model.parameters())
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=hp.get("lr", 0.01), momentum=hp.get("momentum", 0.0),
                              dampening=hp.get("dampening", 0.0),
                              nesterov=bool(hp.get("nesterov", 0.0)),
                              weight_decay=hp.get("weight_decay", 0.0))
    elif name in ("adam", "amsgrad", "adamw"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        default_wd = 1e-2 if name == "adamw" else 0.0
        opt = cls(params, lr=hp.get("lr", 1e-3),
                  betas=(hp.get("beta1", 0.9), hp.get("beta2", 0.999)), eps=hp.get("eps", 1e-8),
                  weight_decay=hp.get("weight_decay", default_wd),
                  amsgrad=name == "amsgrad" or bool(hp.get("amsgrad", 0.0)))
    else:
        raise ValueError(f"optimizer '{name}': expected sgd, adam, amsgrad or adamw")
    offset = 0
    for p in params:
        n = p.numel()
        st = {}
        for key, vec in state.items():
            if key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"):
                st[key] = torch.from_numpy(vec[offset:offset + n].copy()).reshape(p.shape)
        if st and name != "sgd":
            st["step"] = torch.tensor(float(step))
        if st:
            opt.state[p] = st
        offset += n
    return opt


def import_checkpoint(path):
    """Read an effdim checkpoint; see the module docstring for the result."""
    with h5py.File(path, "r") as f:
        model, sizes, acts, loss, reduction = _read_model(f, path)
        n_params = sum(p.numel() for p in model.parameters())
        result = {"model": model, "layer_sizes": sizes, "activations": acts, "loss": loss,
                  "reduction": reduction, "loss_fn": loss_function(loss, reduction),
                  "optimizer": None, "optimizer_name": None, "step": 0, "hparams": {},
                  "state": {}, "training": {}}
        if "optimizer" in f:
            og = f["optimizer"]
            name = _str(og.attrs["name"])
            step = int(og.attrs["step"])
            hp = {k: float(v) for k, v in og.attrs.items()
                  if k not in ("name", "step") and np.ndim(v) == 0
                  and not isinstance(v, (str, bytes))}
            state = {}
            for k, ds in og.items():
                vec = np.asarray(ds[...], dtype=np.float64)
                if vec.shape != (n_params,):
                    raise ValueError(f"{path}: /optimizer/{k}: shape {vec.shape}, expected "
                                     f"({n_params},) (the number of parameters)")
                state[k] = vec
            result.update(optimizer_name=name, step=step, hparams=hp, state=state,
                          optimizer=_make_optimizer(model, name, hp, step, state))
        if "training" in f:
            result["training"] = {k: (_str(v) if isinstance(v, (str, bytes)) else v)
                                  for k, v in f["training"].attrs.items()}
            # per-epoch histories are data sets (effdim 0.1 wrote them as attributes)
            result["training"].update({k: np.asarray(ds[...], dtype=np.float64)
                                       for k, ds in f["training"].items()})
    return result


def loss_and_grad(model, loss_fn, X, y):
    """Loss (float) and its gradient in parameters_to_vector order (numpy)."""
    if isinstance(loss_fn, nn.BCEWithLogitsLoss) and not torch.is_floating_point(y):
        y = y.to(torch.float64).reshape(-1, 1)  # labels 0/1 -> targets shaped like the logit
    model.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return float(loss), grad.detach().numpy()


def read_data(path):
    """(X, y) tensors from an h5: data file (/X (n, d), /y labels or targets)."""
    with h5py.File(path, "r") as f:
        X = torch.from_numpy(np.asarray(f["X"][...], dtype=np.float64))
        y = np.asarray(f["y"][...])
    if y.ndim == 1 and y.dtype.kind in "iu":
        return X, torch.from_numpy(y.astype(np.int64))
    return X, torch.from_numpy(y.astype(np.float64).reshape(len(y), -1))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Read an effdim checkpoint into PyTorch.")
    ap.add_argument("checkpoint")
    ap.add_argument("--loss-grad", nargs=2, metavar=("DATA", "OUT"),
                    help="write the loss and gradient on DATA.h5 to OUT.h5")
    args = ap.parse_args(argv)
    try:
        ck = import_checkpoint(args.checkpoint)
        if args.loss_grad:
            X, y = read_data(args.loss_grad[0])
            loss, grad = loss_and_grad(ck["model"], ck["loss_fn"], X, y)
            with h5py.File(args.loss_grad[1], "w") as f:
                f["loss"] = np.float64(loss)
                f["grad"] = grad
        else:
            print(ck["model"])
            print(f"loss {ck['loss']} ({ck['reduction']})")
            if ck["optimizer"] is not None:
                print(f"optimizer {ck['optimizer_name']} step {ck['step']} {ck['hparams']}")
    except (ValueError, KeyError, OSError) as e:
        print(f"torch_import: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
