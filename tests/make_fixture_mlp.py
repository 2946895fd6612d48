#!/usr/bin/python3
"""tests/make_fixture_mlp.py: the float64 PyTorch fixture for tests/test_mlp.c.

Builds small nn.Sequential MLPs of nn.Linear layers and activations, in
float64, and writes for each case (one HDF5 group per case) what PyTorch
computes: the loss, its gradient in parameters_to_vector order, the
per-sample gradients (one backward pass per example) with the
per-sample losses, and the network outputs.

    /usr/bin/python3 tests/make_fixture_mlp.py [OUT.h5] [--keep OLD.h5]

With --keep, the cases already in OLD.h5 are copied from it bit for bit and
only the cases it lacks are computed (how the elu/bce cases were added
without touching the values of the first seven: a rerun of those on this
machine's torch differs from the committed values by rounding, ~1e-15).

Debian's python3-torch and python3-h5py are needed (call /usr/bin/python3,
not another interpreter on PATH). The output is deterministic for a given
torch version; the file is committed so the C test needs no Python.

Layout of each group /<case>:
  attrs  layer_sizes int64[L+1], activations str[L], loss "cross_entropy"|"mse"|"bce",
         reduction "mean"|"sum", loss_value float64, torch_version str
  theta             float64 (P)        parameters_to_vector order
  X                 float64 (n, d)
  labels            int64 (n)          cross_entropy and bce (0/1, one output)
  Y                 float64 (n, k)     mse only
  grad              float64 (P)        gradient of the reduced loss
  per_sample_grads  float64 (n, P)     gradient of each example's own loss
  per_sample_losses float64 (n)        that loss (mse mean: mean over the k outputs)
  outputs           float64 (n, k)     network outputs
"""
import sys

import h5py
import numpy as np
import torch
from torch import nn

torch.set_default_dtype(torch.float64)

ACTS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,  # beta 1, threshold 20
    "gelu": nn.GELU,          # exact erf form
    "elu": nn.ELU,            # alpha 1
}

# name, layer sizes, activations (one per Linear), loss, reduction, n, seed
CASES = [
    ("tanh_relu_ce_mean", [5, 7, 4, 3], ["tanh", "relu", "identity"], "cross_entropy", "mean", 9, 11),
    ("gelu_softplus_mse_sum", [5, 7, 4, 3], ["gelu", "softplus", "identity"], "mse", "sum", 8, 12),
    ("sigmoid_ce_sum", [4, 6, 5], ["sigmoid", "identity"], "cross_entropy", "sum", 7, 13),
    ("deep_mixed_mse_mean", [6, 8, 5, 4, 2], ["softplus", "gelu", "tanh", "sigmoid"], "mse", "mean",
     10, 14),
    ("relu_gelu_ce_mean_wide_out", [3, 9, 6, 5], ["relu", "gelu", "identity"], "cross_entropy",
     "mean", 12, 15),
    # pre-activations exactly 0 (zero rows of X, zero first-layer bias): relu'(0) = 0
    ("relu_at_zero_ce_sum", [4, 6, 3], ["relu", "identity"], "cross_entropy", "sum", 6, 16),
    # large inputs: softplus pre-activations beyond PyTorch's threshold 20 (linear there)
    ("softplus_threshold_mse_sum", [3, 5, 2], ["softplus", "identity"], "mse", "sum", 8, 17),
    # elu (alpha 1) and binary cross-entropy on one logit (labels 0/1)
    ("elu_bce_mean", [2, 8, 6, 1], ["elu", "elu", "identity"], "bce", "mean", 12, 21),
    ("elu_tanh_bce_sum", [3, 7, 5, 1], ["elu", "tanh", "identity"], "bce", "sum", 9, 22),
    ("elu_ce_sum", [4, 6, 5, 3], ["elu", "elu", "identity"], "cross_entropy", "sum", 8, 23),
    ("elu_gelu_mse_mean", [3, 6, 4, 2], ["elu", "gelu", "elu"], "mse", "mean", 10, 24),
    # logits of size 30..100: the stable softplus form (no overflow, no cancellation)
    ("large_logits_bce_mean", [3, 5, 1], ["tanh", "identity"], "bce", "mean", 8, 25),
]


def build(sizes, acts):
    layers = []
    for i, a in enumerate(acts):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if a != "identity":
            layers.append(ACTS[a]())
    return nn.Sequential(*layers)


def loss_fn(loss, reduction):
    if loss == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=reduction)
    if loss == "bce":
        return nn.BCEWithLogitsLoss(reduction=reduction)
    return nn.MSELoss(reduction=reduction)


def make_case(g, name, sizes, acts, loss, reduction, n, seed):
    torch.manual_seed(seed)
    net = build(sizes, acts)
    with torch.no_grad():  # PyTorch's default init, then a seeded high-entropy nudge
        for p in net.parameters():
            p.mul_(1.7).add_(0.05 * torch.randn_like(p))
    X = 1.3 * torch.randn(n, sizes[0])
    if name.startswith("relu_at_zero"):
        with torch.no_grad():
            net[0].bias.zero_()
        X[::2] = 0.0
    if name.startswith("softplus_threshold"):
        X *= 25.0
    if name.startswith("large_logits"):
        with torch.no_grad():
            net[2].weight.mul_(40.0)
    k = sizes[-1]
    if loss == "cross_entropy":
        y = torch.randint(0, k, (n,))
    elif loss == "bce":
        y = torch.randint(0, 2, (n,))
    else:
        y = torch.randn(n, k)
    crit = loss_fn(loss, reduction)
    # BCEWithLogitsLoss takes float targets shaped like the logits (n, 1)
    target = y.to(torch.float64).reshape(n, 1) if loss == "bce" else y

    out = net(X)
    L = crit(out, target)
    net.zero_grad()
    L.backward()
    gvec = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    theta = nn.utils.parameters_to_vector(net.parameters()).detach()

    G = torch.empty(n, theta.numel())
    losses = torch.empty(n)
    for i in range(n):  # each example alone, with the same loss and reduction
        net.zero_grad()
        li = crit(net(X[i:i + 1]), target[i:i + 1])
        li.backward()
        G[i] = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        losses[i] = li.detach()

    grp = g.create_group(name)
    grp.attrs["layer_sizes"] = np.array(sizes, dtype=np.int64)
    grp.attrs.create("activations", acts, dtype=h5py.string_dtype())
    grp.attrs.create("loss", loss, dtype=h5py.string_dtype())
    grp.attrs.create("reduction", reduction, dtype=h5py.string_dtype())
    grp.attrs["loss_value"] = float(L.item())
    grp.attrs.create("torch_version", torch.__version__, dtype=h5py.string_dtype())
    grp["theta"] = theta.numpy()
    grp["X"] = X.numpy()
    if loss in ("cross_entropy", "bce"):
        grp["labels"] = y.numpy().astype(np.int64)
    else:
        grp["Y"] = y.numpy()
    grp["grad"] = gvec.numpy()
    grp["per_sample_grads"] = G.detach().numpy()
    grp["per_sample_losses"] = losses.detach().numpy()
    grp["outputs"] = out.detach().numpy()


def main():
    args = sys.argv[1:]
    keep = None
    if "--keep" in args:
        i = args.index("--keep")
        keep = args[i + 1]
        del args[i:i + 2]
    path = args[0] if args else "tests/fixtures/mlp_torch.h5"
    old = h5py.File(keep, "r") if keep else None
    if old is not None:  # read everything before path (maybe the same file) is rewritten
        mem = h5py.File("kept-cases", "w", driver="core", backing_store=False)
        for name in old:
            old.copy(name, mem)
        old.close()
        old = mem
    copied = 0
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "effdim.fixture.mlp"
        f.attrs["format_version"] = 1
        f.attrs.create("cases", [c[0] for c in CASES], dtype=h5py.string_dtype())
        for c in CASES:
            if old is not None and c[0] in old:
                old.copy(c[0], f)
                copied += 1
            else:
                make_case(f, *c)
    print(f"wrote {path}: {len(CASES)} cases ({copied} copied from {keep})")


if __name__ == "__main__":
    main()
