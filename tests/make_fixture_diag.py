#!/usr/bin/python3
"""tests/make_fixture_diag.py: write tests/fixtures/diag_adam_torch.h5, the PyTorch
reference for the Adam diagonal in tests/test_diag.c.

Run with Debian's python3 (python3-torch, python3-h5py):
    /usr/bin/python3 tests/make_fixture_diag.py [tests/fixtures/diag_adam_torch.h5]

A small float64 MLP (Linear(5,7), Tanh, Linear(7,4); 74 parameters) is trained
with torch.optim.Adam (lr 0.02, betas (0.9, 0.97), eps 1e-8, foreach=False) on
40 fixed examples with softmax cross-entropy (mean over each minibatch), in
minibatches of 8 rows whose indices are drawn here and stored, for 30 steps.
The C test replays exactly these minibatches with effdim's MLP and optimiser
and compares the second moment. The file holds:
    /X (40, 5) float64, /y (40) int64          the data (h5: data layout)
    /theta0 (P)           initial parameters (parameters_to_vector order)
    /batches (30, 8)      row indices of each minibatch
    /theta (P)            parameters after the last step
    /exp_avg_sq (P)       Adam's v after the last step (PyTorch's state)
    /v_hat (P)            v / (1 - beta2^step), PyTorch's bias correction
    attrs: lr, beta1, beta2, eps, step, batch, n, torch_version
"""
import sys

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
STEPS, BATCH, N = 30, 8, 40
LR, BETAS, EPS = 0.02, (0.9, 0.97), 1e-8


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts]).detach().numpy().copy()


def main(path):
    g = torch.Generator().manual_seed(9173)
    X = torch.randn(N, 5, generator=g) * 1.3
    y = torch.randint(0, 4, (N,), generator=g)
    torch.manual_seed(2385)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 4))
    theta0 = flat(net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=LR, betas=BETAS, eps=EPS, foreach=False)
    rng = np.random.default_rng(57)
    batches = np.stack([rng.choice(N, BATCH, replace=False) for _ in range(STEPS)])
    for b in batches:
        idx = torch.as_tensor(b)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
        loss.backward()
        opt.step()
    params = list(net.parameters())
    v = flat([opt.state[p]["exp_avg_sq"] for p in params])
    step = int(opt.state[params[0]]["step"])
    v_hat = v / (1.0 - BETAS[1] ** step)
    with h5py.File(path, "w") as f:
        f["X"] = X.numpy()
        f["y"] = y.numpy().astype(np.int64)
        f["theta0"] = theta0
        f["batches"] = batches.astype(np.int64)
        f["theta"] = flat(params)
        f["exp_avg_sq"] = v
        f["v_hat"] = v_hat
        for k, val in dict(lr=LR, beta1=BETAS[0], beta2=BETAS[1], eps=EPS, step=step,
                           batch=BATCH, n=N).items():
            f.attrs[k] = val
        f.attrs["torch_version"] = str(torch.__version__)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/diag_adam_torch.h5")
