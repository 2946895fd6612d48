#!/usr/bin/python3
"""tests/test_spectrum_torch.py: `effdim spectrum` against PyTorch's Hessian (slow suite).

    /usr/bin/python3 tests/test_spectrum_torch.py path/to/effdim

For nn.Sequential models trained briefly in PyTorch (tanh/gelu with
cross-entropy mean, softplus/relu with mse sum) and exported with
tools/torch_export.py, together with their training data in the `h5:` layout
recorded as the checkpoint's data_spec, the dense Hessian of PyTorch's loss
(torch.autograd.functional.hessian over the flat parameters, float64) is the
truth: `effdim spectrum --which both` must give its top and bottom
eigenvalues to 1e-9 relative with exact products and 1e-6 with finite
differences, the Ritz N_eff must equal the formula on those eigenvalues,
the SLQ N_eff over the whole spectrum must lie within 4 standard errors or
2% of the dense N_eff (at z not far below the bulk of a strongly indefinite
spectrum, where the zero policy's jump at lambda = 0 defeats any quadrature;
docs/curvature.md), and the GGN's eigenvalues must equal those of
J^T H_out J built from torch.func-free Jacobians (autograd, row by row).

Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed"; exits
non-zero on failure.
"""

import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from torch_export import export_checkpoint  # noqa: E402

RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(("ok - " if ok else "FAIL - ") + name)
    if detail:
        print(f"    {detail}")


def flat_loss(model, crit, X, y):
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def f(theta):
        out, at = X, 0
        chunks = []
        for s, n in zip(shapes, sizes):
            chunks.append(theta[at:at + n].view(s))
            at += n
        i = 0
        for layer in model:
            if isinstance(layer, nn.Linear):
                out = out @ chunks[i].T + chunks[i + 1]
                i += 2
            else:
                out = layer(out)
        return crit(out, y)

    theta0 = torch.cat([p.detach().reshape(-1) for p in params])
    return f, theta0


def ggn_dense(model, loss, reduction, X, y):
    """sum_i s J_i^T H_i J_i with J_i by autograd, H_i written out."""
    params = list(model.parameters())
    out = model(X)
    n, k = out.shape
    P = sum(p.numel() for p in params)
    s = 1.0 / n if reduction == "mean" else 1.0
    G = torch.zeros(P, P, dtype=torch.float64)
    for i in range(n):
        J = torch.zeros(k, P, dtype=torch.float64)
        for c in range(k):
            g = torch.autograd.grad(out[i, c], params, retain_graph=True)
            J[c] = torch.cat([t.reshape(-1) for t in g])
        if loss == "cross_entropy":
            p = torch.softmax(out[i].detach(), 0)
            H = torch.diag(p) - torch.outer(p, p)
        else:
            H = torch.eye(k, dtype=torch.float64) * (2.0 / k if reduction == "mean" else 2.0)
        G += s * J.T @ H @ J
    return G


def run_spectrum(effdim, ckpt, out, *args):
    r = subprocess.run([effdim, "spectrum", ckpt, "-o", out, "--threads", "1", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return h5py.File(out, "r")


def case(effdim, tmp, name, arch, acts, loss, reduction, seed, zs):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(arch) - 1):
        layers.append(nn.Linear(arch[i], arch[i + 1]).double())
        if acts[i] is not None:
            layers.append(acts[i]())
    model = nn.Sequential(*layers)
    n = 90
    X = torch.randn(n, arch[0], dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.randint(0, arch[-1], (n,))
        crit = nn.CrossEntropyLoss(reduction=reduction)
    else:
        y = torch.randn(n, arch[-1], dtype=torch.float64)
        crit = nn.MSELoss(reduction=reduction)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        crit(model(X), y).backward()
        opt.step()
    data = os.path.join(tmp, f"{name}_data.h5")
    with h5py.File(data, "w") as f:
        f["X"] = X.numpy()
        f["y"] = y.numpy().astype(np.int64) if loss == "cross_entropy" else y.numpy()
        if loss == "cross_entropy":
            f["y"].attrs["num_classes"] = arch[-1]
    ckpt = os.path.join(tmp, f"{name}.h5")
    export_checkpoint(model, ckpt, loss=loss, reduction=reduction,
                      training={"data_spec": f"h5:{data}", "seed": seed})

    f, theta0 = flat_loss(model, crit, X, y)
    H = torch.autograd.functional.hessian(f, theta0).numpy()
    H = 0.5 * (H + H.T)
    w = np.linalg.eigvalsh(H)[::-1]
    P = H.shape[0]
    k = 8
    want = np.concatenate([w[:k // 2], w[-(k // 2):]])

    try:
        ex = run_spectrum(effdim, ckpt, os.path.join(tmp, f"{name}_exact.h5"), "-k", str(k),
                          "--which", "both", "--hvp", "exact", "--tol", "1e-10", "--probes", "40",
                          "--z", zs)
        fd = run_spectrum(effdim, ckpt, os.path.join(tmp, f"{name}_fd.h5"), "-k", str(k),
                          "--which", "both", "--tol", "1e-9", "--probes", "0")
        gg = run_spectrum(effdim, ckpt, os.path.join(tmp, f"{name}_ggn.h5"), "-k", "4",
                          "--op", "ggn", "--tol", "1e-10", "--probes", "0")
    except RuntimeError as e:
        check(f"{name}: effdim spectrum runs on the exported checkpoint", False, str(e))
        return
    check(f"{name}: effdim spectrum runs on the exported checkpoint (P = {P})",
          ex.attrs["n_params"] == P and ex.attrs["data_spec"] == f"h5:{data}")
    got = ex["spectrum/eigenvalues"][()]
    err = np.max(np.abs(got - want) / np.abs(want))
    check(f"{name}: exact-product eigenvalues (top and bottom 4) match torch's dense Hessian to 1e-9",
          err < 1e-9, f"max rel. error {err:.2e}")
    got_fd = fd["spectrum/eigenvalues"][()]
    err_fd = np.max(np.abs(got_fd - want) / np.abs(want))
    check(f"{name}: FD-product eigenvalues match to 1e-6", err_fd < 1e-6, f"max rel. error {err_fd:.2e}")
    z = ex["effdim/z"][()]
    lam = np.maximum(got, 0)
    ritz = np.array([np.sum(lam / (lam + zz)) for zz in z])
    check(f"{name}: Ritz N_eff is the formula on the eigenvalues",
          np.allclose(ex["effdim/n_eff"][()], ritz, rtol=1e-12))
    dense = np.array([np.sum(np.maximum(w, 0) / (np.maximum(w, 0) + zz)) for zz in z])
    slq, se = ex["effdim/n_eff_slq"][()], ex["effdim/n_eff_slq_se"][()]
    okk = np.all((np.abs(slq - dense) <= 4 * se) | (np.abs(slq - dense) <= 0.02 * dense))
    check(f"{name}: SLQ N_eff over the whole spectrum agrees with torch's dense N_eff",
          okk, f"z {z}, dense {dense}, SLQ {slq} +- {se}")
    G = ggn_dense(model, loss, reduction, X, y).numpy()
    wg = np.linalg.eigvalsh(0.5 * (G + G.T))[::-1][:4]
    got_g = gg["spectrum/eigenvalues"][()]
    err_g = np.max(np.abs(got_g - wg) / np.abs(wg))
    check(f"{name}: GGN eigenvalues match torch's J^T H J to 1e-9", err_g < 1e-9,
          f"max rel. error {err_g:.2e}")


def main():
    effdim = os.path.abspath(sys.argv[1])
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="effdim-spectrum-torch-") as tmp:
        case(effdim, tmp, "tanh-gelu-ce-mean", [5, 16, 12, 3], [nn.Tanh, lambda: nn.GELU(), None],
             "cross_entropy", "mean", 1, "0.001,0.1,1")
        case(effdim, tmp, "softplus-relu-mse-sum", [4, 14, 10, 2], [nn.Softplus, nn.ReLU, None],
             "mse", "sum", 2, "0.1,1,10")
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
