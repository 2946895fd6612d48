#!/usr/bin/python3
"""tests/test_torch_export.py: what PyTorch users export (slow suite).

    /usr/bin/python3 tests/test_torch_export.py path/to/effdim path/to/ckpt_lossgrad

tools/torch_export.py on models as people write them: nn.Flatten in front,
nn.Dropout between layers and a nested nn.Sequential are exported as the
network in eval mode (a note names each dropout), and effdim's loss and
gradient on image-shaped data written by tools/torch_data_export.py equal
PyTorch's eval-mode ones to 1e-12; BatchNorm, LayerNorm and Conv are refused
naming the module; both scripts are executable with /usr/bin/python3 and
fail with one clear line when torch or h5py is missing. The data export
records `h5:` + a path relative to the checkpoint's folder, and
`effdim spectrum CKPT` then runs from another folder without --data.

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
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, TOOLS)
from torch_data_export import export_dataset  # noqa: E402
from torch_export import ExportError, export_checkpoint  # noqa: E402

RESULTS = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        print(f"ok - {name}")
        RESULTS["passed"] += 1
    else:
        print(f"FAIL - {name}")
        if detail:
            print("    " + str(detail).replace("\n", "\n    "))
        RESULTS["failed"] += 1
    return cond


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def image_model():
    torch.manual_seed(4)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(16, 12), nn.ReLU(), nn.Dropout(0.3),
        nn.Sequential(nn.Linear(12, 7), nn.Tanh(), nn.Identity()),
        nn.Dropout(0.1),
        nn.Linear(7, 3),
    ).double()


def loss_and_grad_torch(model, X, y):
    model.eval()
    model.zero_grad()
    loss = nn.CrossEntropyLoss()(model(X), y)
    loss.backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return float(loss), g.numpy()


def test_flatten_and_dropout(tmp, lossgrad):
    model = image_model()
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(50, 1, 4, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (50,), generator=gen)
    ck = os.path.join(tmp, "img.h5")
    notes = export_checkpoint(model, ck)
    check("Flatten, Dropout and a nested Sequential export",
          os.path.exists(ck))
    drop = [n for n in notes if "Dropout" in n]
    check("each dropout gets a note saying it is the identity (eval mode)",
          len(drop) == 2 and all("identity" in n and "eval" in n for n in drop), notes)
    with h5py.File(ck, "r") as f:
        sizes = list(f["model"].attrs["layer_sizes"])
        acts = [str(a) for a in f["model"].attrs["activations"]]
    check("the exported MLP is 16-12-7-3 relu, tanh, identity",
          sizes == [16, 12, 7, 3] and acts == ["relu", "tanh", "identity"], (sizes, acts))
    data = os.path.join(tmp, "img_data.h5")
    spec = export_dataset(X, y, data)
    with h5py.File(data, "r") as f:
        shape, ydt, k = f["X"].shape, f["y"].dtype, int(f["y"].attrs["num_classes"])
    check("images (n, 1, 4, 4) are written as (n, 16) rows with int64 labels",
          shape == (50, 16) and ydt == np.int64 and k == 3 and spec == f"h5:{data}",
          (shape, ydt, k, spec))
    out = os.path.join(tmp, "lg.h5")
    r = run([lossgrad, ck, data, out])
    if not check("ckpt_lossgrad reads the exported model and data", r.returncode == 0, r.stderr):
        return
    with h5py.File(out, "r") as f:
        le, ge = float(f["loss"][0]), f["grad"][()]
    lt, gt = loss_and_grad_torch(model, X, y)
    rl = abs(le - lt) / abs(lt)
    rg = np.linalg.norm(ge - gt) / np.linalg.norm(gt)
    check(f"effdim's loss and gradient equal PyTorch's in eval mode (loss {rl:.1e}, grad "
          f"{rg:.1e} relative)", rl < 1e-12 and rg < 1e-12)


def test_refusals(tmp):
    cases = [
        ("BatchNorm1d", nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(),
                                      nn.Linear(5, 2))),
        ("LayerNorm", nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.Linear(5, 2))),
        ("Conv1d", nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 2))),
    ]
    for name, model in cases:
        try:
            export_checkpoint(model, os.path.join(tmp, "bad.h5"))
            msg = None
        except ExportError as e:
            msg = str(e)
        check(f"{name} is refused naming the module and what effdim supports",
              msg is not None and name in msg and "supports" in msg, msg)
    check("a refused export leaves no file", not os.path.exists(os.path.join(tmp, "bad.h5")))


def test_scripts_executable(tmp):
    for script in ("torch_export.py", "torch_data_export.py"):
        path = os.path.join(TOOLS, script)
        with open(path) as f:
            first = f.readline().strip()
        check(f"{script} is executable with #!/usr/bin/python3",
              os.access(path, os.X_OK) and first == "#!/usr/bin/python3", first)
        r = run([path, "--help"])
        check(f"{script} --help runs as a program", r.returncode == 0 and "usage" in r.stdout,
              r.stderr)
        for missing in ("torch", "h5py"):
            # an interpreter without the module: the import fails as it would there
            code = (f"import sys, runpy; sys.modules[{missing!r}] = None; "
                    f"sys.argv = [{path!r}, '--help']; runpy.run_path({path!r}, run_name='__main__')")
            r = run([sys.executable, "-c", code])
            lines = r.stderr.strip().splitlines()
            check(f"{script} without {missing}: exit 2 and one line with the hint",
                  r.returncode == 2 and len(lines) == 1 and f"no module '{missing}'" in lines[0]
                  and "/usr/bin/python3" in lines[0] and "Traceback" not in r.stderr, r.stderr)


def test_data_spec_recorded(tmp, effdim):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    os.makedirs(os.path.join(tmp, "proj", "runs"))
    os.makedirs(os.path.join(tmp, "proj", "data"))
    ck = os.path.join(tmp, "proj", "runs", "m.h5")
    export_checkpoint(model, ck, training={"seed": 1})
    gen = torch.Generator().manual_seed(3)
    ds = torch.utils.data.TensorDataset(torch.randn(40, 3, generator=gen, dtype=torch.float64),
                                        torch.randint(0, 2, (40,), generator=gen))
    pt = os.path.join(tmp, "ds.pt")
    torch.save(ds, pt)
    out = os.path.join(tmp, "proj", "data", "d.h5")
    r = run([os.path.join(TOOLS, "torch_data_export.py"), pt, out, "--checkpoint", ck])
    check("torch_data_export.py writes a TensorDataset and records it", r.returncode == 0,
          r.stderr)
    with h5py.File(ck, "r") as f:
        spec = str(f["training"].attrs["data_spec"])
        seed = int(f["training"].attrs["seed"])
        fmt = str(f.attrs["format"])
    check("the checkpoint records h5:../data/d.h5 and keeps its other attributes",
          spec == "h5:../data/d.h5" and seed == 1 and fmt == "effdim.checkpoint", (spec, seed))
    r = run([effdim, "spectrum", ck, "-k", "2", "--hvp", "exact", "--probes", "0", "-o",
             os.path.join(tmp, "s.h5")], cwd=HERE)
    check("effdim spectrum reads the recorded data from another folder, without --data",
          r.returncode == 0, r.stderr)
    bad = os.path.join(tmp, "bad.pt")
    torch.save({"a": torch.zeros(2)}, bad)
    r = run([os.path.join(TOOLS, "torch_data_export.py"), bad, os.path.join(tmp, "x.h5")])
    check("a dict without X and y is refused in one line",
          r.returncode == 1 and "expected X and y" in r.stderr and
          len(r.stderr.strip().splitlines()) == 1, r.stderr)


def main():
    if len(sys.argv) != 3:
        print("usage: test_torch_export.py path/to/effdim path/to/ckpt_lossgrad", file=sys.stderr)
        return 2
    effdim, lossgrad = (os.path.abspath(a) for a in sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="effdim-torch-export-") as tmp:
        test_flatten_and_dropout(tmp, lossgrad)
        test_refusals(tmp)
        test_scripts_executable(tmp)
        test_data_spec_recorded(tmp, effdim)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] or not RESULTS["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
