#!/usr/bin/python3
"""tests/make_torch_fixture.py: write tests/fixtures/torch_written.h5.

A checkpoint written by PyTorch through tools/torch_export.py (h5py's own
conventions: variable-length strings, float64 data sets), with the answers
the C suite must reproduce stored beside it in /expected:

    /expected/X           float64 (32, 6)   inputs
    /expected/y           int64 (32)        labels in [0, 4)
    /expected/loss        float64 scalar    nn.CrossEntropyLoss() at the saved weights
    /expected/grad        float64 (P)       its gradient, parameters_to_vector order
    /expected/theta_next  float64 (P)       parameters after one more optimizer.step()
                                            on that gradient (resume check)

The model is Linear(6,10) Tanh Linear(10,8) GELU Linear(8,4) in float64,
trained 3 full-batch steps with Adam(lr=0.01, betas=(0.9, 0.99),
weight_decay=0.003, amsgrad=True), so /optimizer holds exp_avg, exp_avg_sq,
max_exp_avg_sq and step 3. Run with Debian's torch:
    /usr/bin/python3 tests/make_torch_fixture.py
"""

import os
import sys

import h5py
import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from torch_export import export_checkpoint  # noqa: E402


def main():
    torch.manual_seed(2385)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 8), nn.GELU(),
                          nn.Linear(8, 4)).double()
    X = torch.randn(32, 6, dtype=torch.float64) * 1.7
    y = torch.randint(0, 4, (32,))
    fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.99), weight_decay=0.003,
                           amsgrad=True)
    for _ in range(3):
        opt.zero_grad()
        fn(model(X), y).backward()
        opt.step()
    opt.zero_grad()
    loss = fn(model(X), y)
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).detach().numpy().copy()
    out = os.path.join(HERE, "fixtures", "torch_written.h5")
    export_checkpoint(model, out, optimizer=opt, loss="cross_entropy",
                      training={"data_spec": "tests/make_torch_fixture.py", "seed": 2385,
                                "losses": [float(loss)], "torch_version": torch.__version__})
    opt.step()
    theta_next = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    with h5py.File(out, "a") as f:
        e = f.create_group("expected")
        e.attrs["made_by"] = "tests/make_torch_fixture.py"
        e["X"] = X.numpy()
        e["y"] = y.numpy().astype(np.int64)
        e["loss"] = np.float64(loss.item())
        e["grad"] = grad
        e["theta_next"] = theta_next
    print(f"wrote {out}: loss {loss.item():.17g}, P = {grad.size}")


if __name__ == "__main__":
    main()
