#!/usr/bin/python3
"""tests/test_torch_roundtrip.py: effdim checkpoints <-> PyTorch (slow suite).

    /usr/bin/python3 tests/test_torch_roundtrip.py path/to/effdim path/to/ckpt_lossgrad

PyTorch -> effdim: nn.Sequential models (every supported activation, both
losses and reductions, float64 and float32 weights, Adam/AMSGrad/SGD state)
are written by tools/torch_export.py; `effdim inspect --json` must describe
them and effdim's loss and gradient on the same data (tests/ckpt_lossgrad.c,
effdim_mlp_loss_grad) must equal PyTorch's to 1e-12 relative.

effdim -> PyTorch: `effdim train` writes a checkpoint; tools/torch_import.py
reads it into an nn.Sequential and a torch.optim optimiser; PyTorch's loss
and gradient must equal effdim's to 1e-12, the optimiser state must come
across bitwise, and exporting it again must give bitwise the same numbers.

Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed"; exits
non-zero on failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import zlib

import h5py
import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from torch_export import export_checkpoint  # noqa: E402
from torch_import import import_checkpoint, loss_and_grad, loss_function  # noqa: E402

TOL = 1e-12
RESULTS = {"passed": 0, "failed": 0}
WORST = {"loss": 0.0, "grad": 0.0}


def check(name, ok, detail=""):
    if ok:
        RESULTS["passed"] += 1
        print(f"ok - {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL - {name}")
        if detail:
            print(f"    {detail}")


def rel_err(got, want):
    got, want = np.atleast_1d(got), np.atleast_1d(want)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def write_data(path, X, y):
    with h5py.File(path, "w") as f:
        f["X"] = X.numpy()
        f["y"] = y.numpy()


def c_loss_grad(tools, model_path, data_path, out_path):
    r = run([tools["lossgrad"], model_path, data_path, out_path])
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    with h5py.File(out_path, "r") as f:
        return float(f["loss"][0]), f["grad"][...]


def torch_to_effdim_case(tools, tmp, name, model, loss, reduction, optimizer_kind=None,
                         dtype=np.float64, n=48):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    d, k = model[0].in_features, [m for m in model if isinstance(m, nn.Linear)][-1].out_features
    X = torch.randn(n, d, generator=gen, dtype=torch.float64) * 1.3
    if loss == "cross_entropy":
        y = torch.randint(0, k, (n,), generator=gen)
    elif loss == "bce":  # integer labels 0/1 in the data file, float (n, 1) targets for torch
        y = torch.randint(0, 2, (n,), generator=gen)
    else:
        y = torch.randn(n, k, generator=gen, dtype=torch.float64)
    target = y.to(torch.float64).reshape(n, 1) if loss == "bce" else y
    fn = loss_function(loss, reduction)
    opt = None
    if optimizer_kind == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.85, 0.995), eps=1e-7,
                               weight_decay=1e-3)
    elif optimizer_kind == "amsgrad":
        opt = torch.optim.Adam(model.parameters(), lr=0.005, amsgrad=True)
    elif optimizer_kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, nesterov=True)
    if opt is not None:
        for _ in range(3):
            opt.zero_grad()
            fn(model(X), target).backward()
            opt.step()
    path = os.path.join(tmp, f"{name}.h5")
    data = os.path.join(tmp, f"{name}_data.h5")
    write_data(data, X, y)
    # torch's SGD keeps no step count: say how many steps were taken
    export_checkpoint(model, path, optimizer=opt, loss=loss, reduction=reduction, dtype=dtype,
                      training={"data_spec": f"h5:{data}", "seed": 7},
                      step=3 if optimizer_kind == "sgd" else None)
    if dtype == np.float32:  # the reference is the model as stored
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.float().double())
    want_loss, want_grad = loss_and_grad(model, fn, X, y)
    n_params = want_grad.size
    r = run([tools["effdim"], "inspect", path, "--json"])
    try:
        info = json.loads(r.stdout)
    except ValueError:
        info = {}
    ok = (r.returncode == 0 and info.get("kind") == "effdim.checkpoint"
          and info["model"]["n_params"] == n_params and info["model"]["loss"] == loss
          and info["model"]["reduction"] == reduction)
    if opt is not None:
        ok = ok and info["optimizer"]["step"] == 3
    check(f"{name}: effdim inspect describes the PyTorch-written checkpoint", ok,
          r.stderr.strip() or r.stdout[:300])
    try:
        got_loss, got_grad = c_loss_grad(tools, path, data, os.path.join(tmp, f"{name}_lg.h5"))
    except RuntimeError as e:
        check(f"{name}: effdim's loss and gradient equal PyTorch's", False, str(e))
        return
    el, eg = rel_err(got_loss, want_loss), rel_err(got_grad, want_grad)
    WORST["loss"] = max(WORST["loss"], el)
    WORST["grad"] = max(WORST["grad"], eg)
    check(f"{name}: effdim's loss and gradient equal PyTorch's (loss {el:.1e}, grad {eg:.1e})",
          el <= TOL and eg <= TOL)


def train_and_import(tools, data, model_path, what, args):
    """effdim train on h5:data with args, checked; the imported checkpoint or None."""
    r = run([tools["effdim"], "train", "--data", f"h5:{data}", *args, "-o", model_path])
    check(what, r.returncode == 0, r.stderr.strip())
    return import_checkpoint(model_path) if r.returncode == 0 else None


def torch_matches_effdim(tools, tmp, name, model_path, data, model, fn, X, y, what):
    """Check PyTorch's loss and gradient of model on (X, y) against effdim's on the
    checkpoint; returns effdim's gradient."""
    want_loss, want_grad = c_loss_grad(tools, model_path, data, os.path.join(tmp, f"{name}_lg.h5"))
    got_loss, got_grad = loss_and_grad(model, fn, X, y)
    el, eg = rel_err(got_loss, want_loss), rel_err(got_grad, want_grad)
    WORST["loss"] = max(WORST["loss"], el)
    WORST["grad"] = max(WORST["grad"], eg)
    check(f"{what} equal effdim's (loss {el:.1e}, grad {eg:.1e})", el <= TOL and eg <= TOL)
    return want_grad


def effdim_to_torch_case(tools, tmp):
    gen = torch.Generator().manual_seed(2385)
    X = torch.randn(120, 5, generator=gen, dtype=torch.float64)
    y = (X[:, 0] * X[:, 1] + torch.sin(2 * X[:, 2]) > 0.1).long() + (X[:, 3] > 0.8).long()
    data = os.path.join(tmp, "train_data.h5")
    write_data(data, X, y)
    model_path = os.path.join(tmp, "trained.h5")
    ck = train_and_import(tools, data, model_path, "effdim train writes a checkpoint on an h5: "
                          "data file", ["--arch", "5,12,9,3", "--act", "gelu", "--opt", "amsgrad",
                                        "--lr", "0.01", "--wd", "0.001", "--batch", "16",
                                        "--epochs", "3", "--seed", "4"])
    if ck is None:
        return
    model, fn = ck["model"], ck["loss_fn"]
    check("torch_import rebuilds the architecture",
          [type(m).__name__ for m in model] == ["Linear", "GELU", "Linear", "GELU", "Linear"]
          and ck["optimizer_name"] == "amsgrad" and ck["step"] == 3 * 8,
          f"{model} {ck['optimizer_name']} {ck['step']}")
    want_grad = torch_matches_effdim(tools, tmp, "trained", model_path, data, model, fn, X, y,
                                     "PyTorch's loss and gradient on the effdim-trained model")
    opt = ck["optimizer"]
    params = list(model.parameters())
    with h5py.File(model_path, "r") as f:
        same = all(
            np.array_equal(torch.cat([opt.state[p][key].reshape(-1) for p in params]).numpy(),
                           f["optimizer"][key][...])
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
        same = same and all(float(opt.state[p]["step"]) == 24 for p in params)
        same = same and opt.param_groups[0]["amsgrad"] and opt.param_groups[0]["lr"] == 0.01
    check("torch_import carries the AMSGrad state and hyperparameters across bitwise", same)
    again = os.path.join(tmp, "reexported.h5")
    export_checkpoint(model, again, optimizer=opt, loss=ck["loss"], reduction=ck["reduction"])
    with h5py.File(model_path, "r") as a, h5py.File(again, "r") as b:
        same = all(np.array_equal(a[f"model/layer{i}/{w}"][...], b[f"model/layer{i}/{w}"][...])
                   for i in range(3) for w in ("weight", "bias"))
        same = same and all(np.array_equal(a["optimizer"][k][...], b["optimizer"][k][...])
                            for k in a["optimizer"])
        same = same and int(b["optimizer"].attrs["step"]) == 24
    check("importing and exporting again gives bitwise the same checkpoint numbers", same)
    # torch_import's command line
    out = os.path.join(tmp, "torch_lg.h5")
    r = run([sys.executable, os.path.join(HERE, "..", "tools", "torch_import.py"), model_path,
             "--loss-grad", data, out])
    ok = r.returncode == 0
    if ok:
        with h5py.File(out, "r") as f:
            ok = rel_err(f["grad"][...], want_grad) <= TOL
    check("torch_import.py --loss-grad writes PyTorch's loss and gradient", ok, r.stderr.strip())


def effdim_bce_to_torch_case(tools, tmp):
    """effdim train --loss bce --act elu -> torch_import: nn.ELU and nn.BCEWithLogitsLoss."""
    gen = torch.Generator().manual_seed(920)
    X = torch.randn(90, 2, generator=gen, dtype=torch.float64)
    y = (X[:, 0] * X[:, 1] > 0).long()
    data = os.path.join(tmp, "bce_data.h5")
    write_data(data, X, y)
    model_path = os.path.join(tmp, "bce_trained.h5")
    ck = train_and_import(tools, data, model_path, "effdim train --loss bce --act elu writes a "
                          "checkpoint", ["--arch", "2,10,10,1", "--act", "elu", "--loss", "bce",
                                         "--opt", "adam", "--lr", "0.01", "--wd", "1e-4",
                                         "--batch", "90", "--epochs", "5", "--seed", "3"])
    if ck is None:
        return
    model, fn = ck["model"], ck["loss_fn"]
    check("torch_import rebuilds nn.ELU layers and nn.BCEWithLogitsLoss",
          [type(m).__name__ for m in model] == ["Linear", "ELU", "Linear", "ELU", "Linear"]
          and isinstance(fn, nn.BCEWithLogitsLoss) and ck["loss"] == "bce", f"{model} {fn}")
    torch_matches_effdim(tools, tmp, "bce", model_path, data, model, fn, X, y,
                         "PyTorch's BCE loss and gradient on the effdim-trained ELU model")


def demo_cli_case(tools, tmp):
    path = os.path.join(tmp, "demo.h5")
    r = run([sys.executable, os.path.join(HERE, "..", "tools", "torch_export.py"), "--demo", path,
             "--arch", "4,16,3", "--act", "softplus", "--adam-steps", "2"])
    r2 = run([tools["effdim"], "inspect", path])
    check("torch_export.py --demo writes a checkpoint effdim inspects",
          r.returncode == 0 and r2.returncode == 0 and "adam, step 2" in r2.stdout,
          (r.stderr + r2.stderr).strip())


def main():
    if len(sys.argv) != 3:
        print("usage: test_torch_roundtrip.py path/to/effdim path/to/ckpt_lossgrad", file=sys.stderr)
        return 2
    tools = {"effdim": os.path.abspath(sys.argv[1]), "lossgrad": os.path.abspath(sys.argv[2])}
    torch.set_num_threads(2)
    torch.manual_seed(2385)
    with tempfile.TemporaryDirectory(prefix="effdim-torch-") as tmp:
        torch_to_effdim_case(tools, tmp, "tanh_gelu_ce_mean_adam", nn.Sequential(
            nn.Linear(7, 13), nn.Tanh(), nn.Linear(13, 11), nn.GELU(), nn.Linear(11, 5)).double(),
            "cross_entropy", "mean", "adam")
        torch_to_effdim_case(tools, tmp, "relu_sigmoid_softplus_mse_sum_sgd", nn.Sequential(
            nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 9), nn.Sigmoid(), nn.Linear(9, 8),
            nn.Softplus(), nn.Linear(8, 3)).double(), "mse", "sum", "sgd")
        torch_to_effdim_case(tools, tmp, "identity_ce_sum_amsgrad", nn.Sequential(
            nn.Linear(4, 6), nn.Identity(), nn.Linear(6, 4)).double(),
            "cross_entropy", "sum", "amsgrad")
        torch_to_effdim_case(tools, tmp, "float32_weights_relu_mse_mean", nn.Sequential(
            nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 2)).double(), "mse", "mean",
            dtype=np.float32)
        torch_to_effdim_case(tools, tmp, "elu_bce_mean_adam", nn.Sequential(
            nn.Linear(2, 20), nn.ELU(), nn.Linear(20, 20), nn.ELU(), nn.Linear(20, 1)).double(),
            "bce", "mean", "adam")
        torch_to_effdim_case(tools, tmp, "elu_tanh_bce_sum", nn.Sequential(
            nn.Linear(3, 9), nn.Tanh(), nn.Linear(9, 7), nn.ELU(), nn.Linear(7, 1)).double(),
            "bce", "sum")
        effdim_to_torch_case(tools, tmp)
        effdim_bce_to_torch_case(tools, tmp)
        demo_cli_case(tools, tmp)
    print(f"# worst relative error: loss {WORST['loss']:.2e}, gradient {WORST['grad']:.2e}")
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
