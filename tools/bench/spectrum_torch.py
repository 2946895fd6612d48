#!/usr/bin/python3
"""tools/bench/spectrum_torch.py: PyTorch + SciPy's side of `effdim bench spectrum`.

The usual ways to get the top Hessian eigenvalues of a PyTorch model: the
Hessian-vector product by double backpropagation (Pearlmutter's trick as
torch.autograd does it), wrapped in a scipy.sparse.linalg.LinearOperator and
handed to ARPACK's eigsh (k, which='LA', tol, a seeded start vector; ncv
SciPy's default max(2k + 1, 20) unless --ncv is given), in two variants
driven by the same eigsh call:
  reuse      the gradient with create_graph=True once, then for each v the
             gradient of <grad, v> with retain_graph=True: the first-order
             graph is kept (as PyHessian does; the fastest way PyTorch offers);
  recompute  for each v the forward pass, the gradient with create_graph=True
             and the gradient of <grad, v>: the graph is built per product
             (what a plain `hvp(v)` function does).

Model: an effdim checkpoint (HDF5, docs/file-formats.md) rebuilt as a
float64 nn.Sequential of Linear layers and activations; data: the first n
Fashion-MNIST training images from Debian's dataset-fashion-mnist, scaled
x / 255 exactly as effdim's fashion-mnist spec does; loss: nn.CrossEntropyLoss
(mean) or nn.MSELoss as the checkpoint says. torch.set_num_threads(T).

The last line of stdout is JSON: for the reuse variant hvp_seconds (best of
3 HVPs), matvecs, seconds (eigsh wall time, all HVPs included), eigenvalues
(descending); the same for the recompute variant under "recompute" (absent
with --variant reuse); loss, torch_version, scipy_version, threads.

    /usr/bin/python3 tools/bench/spectrum_torch.py --ckpt model.h5 [--n 10000]
        [--k 20] [--tol 1e-6] [--threads 2] [--ncv 0] [--variant both|reuse|recompute]
"""

import argparse
import gzip
import json
import os
import time

import h5py
import numpy as np
import scipy
import scipy.sparse.linalg as sla
import torch
from torch import nn

FMNIST = os.environ.get("EFFDIM_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
        "gelu": nn.GELU, "identity": nn.Identity}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load_model(path):
    with h5py.File(path, "r") as f:
        g = f["model"]
        sizes = [int(s) for s in g.attrs["layer_sizes"]]
        acts = [text(a) for a in g.attrs["activations"]]
        loss = text(g.attrs["loss"])
        reduction = text(g.attrs.get("reduction", "mean"))
        layers = []
        for i in range(len(sizes) - 1):
            lin = nn.Linear(sizes[i], sizes[i + 1]).double()
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.asarray(g[f"layer{i}/weight"], dtype=np.float64)))
                lin.bias.copy_(torch.from_numpy(np.asarray(g[f"layer{i}/bias"], dtype=np.float64)))
            layers += [lin, ACTS[acts[i]]()]
    return nn.Sequential(*layers), loss, reduction


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ncv", type=int, default=0, help="eigsh's ncv (0: SciPy's default)")
    ap.add_argument("--variant", choices=["both", "reuse", "recompute"], default="both")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, loss_name, reduction = load_model(args.ckpt)
    images = read_idx(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"))[: args.n]
    labels = read_idx(os.path.join(FMNIST, "train-labels-idx1-ubyte.gz"))[: args.n]
    X = torch.from_numpy(images.reshape(len(images), -1).astype(np.float64) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    if loss_name != "cross_entropy":
        raise SystemExit("spectrum_torch.py: only cross_entropy checkpoints (Fashion-MNIST labels)")
    crit = nn.CrossEntropyLoss(reduction=reduction)
    params = [p for p in model.parameters()]
    P = sum(p.numel() for p in params)

    loss = crit(model(X), y)
    count = [0]

    def split(v):
        v = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
        parts, at = [], 0
        for p in params:
            parts.append(v[at:at + p.numel()].view_as(p))
            at += p.numel()
        return parts

    def hv_of(grads, v, retain):
        dot = sum((g * w).sum() for g, w in zip(grads, split(v)))
        hv = torch.autograd.grad(dot, params, retain_graph=retain)
        return torch.cat([h.reshape(-1) for h in hv]).numpy()

    kept = []

    def hvp_reuse(v):
        count[0] += 1
        if not kept:
            kept.append(torch.autograd.grad(crit(model(X), y), params, create_graph=True))
        return hv_of(kept[0], v, True)

    def hvp_recompute(v):
        count[0] += 1
        grads = torch.autograd.grad(crit(model(X), y), params, create_graph=True)
        return hv_of(grads, v, False)

    def run(hvp):
        rng = np.random.default_rng(1)
        v = rng.standard_normal(P)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            hvp(v)
            times.append(time.perf_counter() - t0)
        count[0] = 0
        op = sla.LinearOperator((P, P), matvec=hvp, dtype=np.float64)
        t0 = time.perf_counter()
        w = sla.eigsh(op, k=args.k, which="LA", tol=args.tol, v0=rng.standard_normal(P), ncv=ncv,
                      return_eigenvectors=False)
        seconds = time.perf_counter() - t0
        return {"hvp_seconds": min(times), "matvecs": count[0], "seconds": seconds,
                "eigenvalues": sorted((float(x) for x in w), reverse=True)}

    ncv = args.ncv or min(P, max(2 * args.k + 1, 20))  # SciPy's default when 0
    out = {}
    if args.variant != "recompute":
        # the graph built before the timed products, as PyHessian does
        hvp_reuse(np.zeros(P))
        out.update(run(hvp_reuse))
    if args.variant != "reuse":
        rec = run(hvp_recompute)
        if args.variant == "recompute":
            out.update(rec)
        else:
            out["recompute"] = rec
    out.update({"loss": float(loss), "params": P, "torch_version": torch.__version__,
                "scipy_version": scipy.__version__, "threads": args.threads, "tol": args.tol,
                "k": args.k, "ncv": ncv, "variant": args.variant})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
