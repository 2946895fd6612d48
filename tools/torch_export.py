#!/usr/bin/python3
"""tools/torch_export.py: write a PyTorch nn.Sequential as an effdim checkpoint.

The layout is effdim's checkpoint format, version 1 (docs/file-formats.md):

    /                      attrs format="effdim.checkpoint", format_version=1
    /model                 attrs layer_sizes int64[L+1], activations str[L],
                           loss "cross_entropy"|"mse"|"bce", reduction "mean"|"sum"
    /model/layer{i}/weight float64 (out, in)
    /model/layer{i}/bias   float64 (out)
    /optimizer             (optional) attrs name, step, hyperparameters;
                           state vectors float64 [P] in parameters_to_vector order
    /training              (optional) attrs, free-form

The model must be an nn.Sequential (nested ones are read as one) of
nn.Linear layers (with bias), each optionally followed by one of ReLU, Tanh,
Sigmoid, Softplus (beta 1, threshold 20), GELU (approximate='none'), ELU
(alpha 1). Modules that do not change an MLP's function on flat (n, d)
input are skipped: Identity, Flatten (effdim's data rows are already flat),
and the dropouts (Dropout, AlphaDropout, FeatureAlphaDropout: exported as
the identity, i.e. the network in eval mode, with a note). Anything else
(BatchNorm, LayerNorm, convolutions, ...) is refused, naming the module. The optimiser may be
torch.optim.SGD, Adam (amsgrad or not) or AdamW over model.parameters() in
order; its per-parameter state (exp_avg, exp_avg_sq, max_exp_avg_sq,
momentum_buffer, step) is flattened in parameters_to_vector order.

Strings are written the way h5py writes Python str: variable-length UTF-8.
The write is atomic (temporary file beside the target, then os.replace).

Use as a module:
    from torch_export import export_checkpoint
    export_checkpoint(model, "model.h5", optimizer=opt, loss="cross_entropy")
or from the command line:
    /usr/bin/python3 tools/torch_export.py --demo out.h5 [--arch 4,16,3] [--act tanh]
which writes a randomly initialised model (seeded) and, with --adam-steps N,
the state of N Adam steps on random data.
"""

import argparse
import os
import sys
import tempfile

HINT = ("run it with Debian's /usr/bin/python3 (apt install python3-torch python3-h5py) "
        "or install the module into this interpreter (pip install torch h5py)")
try:
    import h5py
    import numpy as np
    import torch
    from torch import nn
except ImportError as _e:  # a clear line instead of a traceback
    _msg = f"{sys.executable} has no module '{_e.name}': {HINT}"
    if __name__ == "__main__":
        print(f"{os.path.basename(sys.argv[0])}: {_msg}", file=sys.stderr)
        sys.exit(2)
    raise ImportError(_msg) from _e

FORMAT = "effdim.checkpoint"
FORMAT_VERSION = 1

LOSSES = ("cross_entropy", "mse", "bce")
REDUCTIONS = ("mean", "sum")


class ExportError(ValueError):
    """The model or optimiser cannot be written in effdim's layout."""


def activation_name(module):
    """effdim's name for an activation module, or raise ExportError."""
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.Identity):
        return "identity"
    if isinstance(module, nn.Softplus):
        if module.beta != 1 or module.threshold != 20:
            raise ExportError("Softplus must have beta=1, threshold=20 (effdim's softplus), "
                              f"got beta={module.beta}, threshold={module.threshold}")
        return "softplus"
    if isinstance(module, nn.GELU):
        if getattr(module, "approximate", "none") != "none":
            raise ExportError("GELU must be the exact (erf) form, approximate='none'")
        return "gelu"
    if isinstance(module, nn.ELU):
        if module.alpha != 1.0:
            raise ExportError(f"ELU must have alpha=1 (effdim's elu), got alpha={module.alpha}")
        return "elu"
    raise ExportError(f"unsupported module {module.__class__.__name__}: it changes the "
                      "network's function in a way effdim's MLP cannot express; effdim supports "
                      "Linear, ReLU, Tanh, Sigmoid, Softplus, GELU, ELU, and skips Identity, "
                      "Flatten and dropout")


# Modules that leave an MLP's function on flat input unchanged (in eval mode).
DROPOUTS = (nn.Dropout, nn.AlphaDropout, nn.FeatureAlphaDropout)


def _flat_modules(model, prefix=""):
    """(name, module) of a Sequential, nested Sequentials unrolled."""
    for name, module in model.named_children():
        full = f"{prefix}{name}"
        if isinstance(module, nn.Sequential):
            yield from _flat_modules(module, full + ".")
        else:
            yield full, module


def describe(model, notes=None):
    """(linears, layer_sizes, activations) of an nn.Sequential.

    notes: an optional list that receives one line per module skipped as the
    identity (dropout, flatten)."""
    if not isinstance(model, nn.Sequential):
        raise ExportError(f"expected an nn.Sequential, got {model.__class__.__name__}")
    linears, acts = [], []
    for i, module in _flat_modules(model):
        if isinstance(module, DROPOUTS):
            if notes is not None:
                notes.append(f"module {i} ({module.__class__.__name__}, p={module.p}) exported "
                             "as the identity: effdim's curvature is that of the network in "
                             "eval mode, without dropout")
            continue
        if isinstance(module, nn.Flatten):
            if linears and module.start_dim not in (1, -1):
                raise ExportError(f"module {i} (Flatten, start_dim={module.start_dim}) after a "
                                  "Linear layer would change the shape; only start_dim=1 is "
                                  "the identity on (n, d) rows")
            if notes is not None and not linears:
                notes.append(f"module {i} (Flatten) skipped: effdim's data rows are flat already "
                             "(write images as (n, d) rows, e.g. torch_data_export.py)")
            continue
        if isinstance(module, nn.Linear):
            if module.bias is None:
                raise ExportError(f"layer {i} (Linear) has no bias; effdim checkpoints store one "
                                  "bias per layer")
            if linears and module.in_features != linears[-1].out_features:
                raise ExportError(f"layer {i}: in_features {module.in_features} does not match "
                                  f"the previous out_features {linears[-1].out_features}")
            linears.append(module)
            acts.append("identity")
        else:
            name = activation_name(module)
            if name == "identity":
                continue
            if not linears or acts[-1] != "identity":
                raise ExportError(f"module {i} ({module.__class__.__name__}) must follow a "
                                  "Linear layer directly")
            acts[-1] = name
    if not linears:
        raise ExportError("the model has no Linear layer")
    sizes = [linears[0].in_features] + [lin.out_features for lin in linears]
    return linears, sizes, acts


def _optimizer_section(model, optimizer):
    """(name, step, hyperparameters dict, state dict name -> flat float64 array)."""
    params = list(model.parameters())
    if len(optimizer.param_groups) != 1:
        raise ExportError("the optimizer must have exactly one parameter group")
    group = optimizer.param_groups[0]
    if [id(p) for p in group["params"]] != [id(p) for p in params]:
        raise ExportError("the optimizer's parameters must be model.parameters() in order")
    if group.get("maximize", False):
        raise ExportError("maximize=True is not supported")
    if isinstance(optimizer, torch.optim.AdamW):
        name = "adamw"
    elif isinstance(optimizer, torch.optim.Adam):
        name = "amsgrad" if group["amsgrad"] else "adam"
    elif isinstance(optimizer, torch.optim.SGD):
        name = "sgd"
    else:
        raise ExportError(f"unsupported optimizer {optimizer.__class__.__name__}: "
                          "effdim supports SGD, Adam and AdamW")
    if name == "sgd":
        hp = {"lr": group["lr"], "momentum": group["momentum"], "dampening": group["dampening"],
              "nesterov": 1 if group["nesterov"] else 0,
              "weight_decay": group["weight_decay"]}
        keys = ["momentum_buffer"]
    else:
        hp = {"lr": group["lr"], "beta1": group["betas"][0], "beta2": group["betas"][1],
              "eps": group["eps"], "weight_decay": group["weight_decay"],
              "amsgrad": 1 if group["amsgrad"] else 0}
        keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
    # on/off flags as int64 (as effdim writes them), the rest float64
    hp = {k: (int(v) if k in ("nesterov", "amsgrad") else float(v)) for k, v in hp.items()}
    states = [optimizer.state.get(p, {}) for p in params]
    steps = set()
    for st in states:
        if "step" in st:
            steps.add(int(float(st["step"])))
    if len(steps) > 1:
        raise ExportError(f"parameters have different step counts {sorted(steps)}")
    step = steps.pop() if steps else 0
    vectors = {}
    for key in keys:
        present = [st.get(key) is not None for st in states]
        if not any(present):
            continue
        if not all(present):
            raise ExportError(f"optimizer state '{key}' exists for some parameters only")
        vectors[key] = np.concatenate(
            [st[key].detach().cpu().to(torch.float64).reshape(-1).numpy() for st in states])
    if name == "sgd" and "momentum_buffer" in vectors and step == 0:
        # torch's SGD keeps no step count; a filled buffer means at least one step
        step = 1
    return name, step, hp, vectors


def _write_attr(obj, key, value):
    if isinstance(value, str):
        obj.attrs[key] = str(value)  # plain str: h5py refuses str subclasses (TorchVersion)
    elif isinstance(value, bool):
        obj.attrs[key] = np.int64(value)
    elif isinstance(value, (int, np.integer)):
        obj.attrs[key] = np.int64(value)
    elif isinstance(value, (float, np.floating)):
        obj.attrs[key] = np.float64(value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "US":
            obj.attrs[key] = np.array([str(v) for v in arr], dtype=h5py.string_dtype())
        elif arr.dtype.kind in "iub":
            obj.attrs[key] = arr.astype(np.int64)
        else:
            obj.attrs[key] = arr.astype(np.float64)
    else:
        raise ExportError(f"training attribute '{key}': unsupported value {value!r}")


def replace_atomically(path, write):
    """write(tmp) into a temporary file beside path, then os.replace it over
    path; the temporary is removed when write fails."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp-", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_checkpoint(model, path, optimizer=None, loss="cross_entropy", reduction="mean",
                      training=None, dtype=np.float64, step=None):
    """Write model (and optionally optimizer) to path in effdim's layout.

    loss: "cross_entropy" (nn.CrossEntropyLoss), "mse" (nn.MSELoss) or "bce"
    (nn.BCEWithLogitsLoss on one output unit, labels 0/1);
    reduction: "mean" or "sum"; training: optional dict of /training
    attributes (str, int, float or 1-D arrays), e.g. {"data_spec": ...,
    "seed": 1, "losses": [...]}; dtype: float64 (default) or float32 for
    the weights (state vectors are always float64); step overrides the
    optimizer's step count (torch's SGD keeps none).
    Returns the notes on modules exported as the identity (a list of str).
    """
    if loss not in LOSSES:
        raise ExportError(f"loss '{loss}': expected one of {', '.join(LOSSES)}")
    if reduction not in REDUCTIONS:
        raise ExportError(f"reduction '{reduction}': expected one of {', '.join(REDUCTIONS)}")
    notes = []
    linears, sizes, acts = describe(model, notes)
    if loss == "bce" and sizes[-1] != 1:
        raise ExportError(f"loss 'bce' needs one output unit (the logit), the model has {sizes[-1]}")
    opt = _optimizer_section(model, optimizer) if optimizer is not None else None

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            g = f.create_group("model")
            g.attrs["layer_sizes"] = np.array(sizes, dtype=np.int64)
            g.attrs["activations"] = np.array(acts, dtype=h5py.string_dtype())
            g.attrs["loss"] = loss
            g.attrs["reduction"] = reduction
            for i, lin in enumerate(linears):
                lg = g.create_group(f"layer{i}")
                lg.create_dataset("weight", data=lin.weight.detach().cpu().to(torch.float64)
                                  .numpy().astype(dtype))
                lg.create_dataset("bias", data=lin.bias.detach().cpu().to(torch.float64)
                                  .numpy().astype(dtype))
            if opt is not None:
                name, opt_step, hp, vectors = opt
                og = f.create_group("optimizer")
                og.attrs["name"] = name
                og.attrs["step"] = np.int64(opt_step if step is None else step)
                for k, v in hp.items():
                    og.attrs[k] = np.int64(v) if isinstance(v, int) else np.float64(v)
                for k, v in vectors.items():
                    og.create_dataset(k, data=v)
            if training:
                tg = f.create_group("training")
                for k, v in training.items():
                    _write_attr(tg, k, v)

    replace_atomically(path, write)
    return notes


def demo_model(arch, act="tanh", seed=1):
    """A seeded nn.Sequential (float64) with the given widths and hidden activation."""
    torch.manual_seed(seed)
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
            "gelu": nn.GELU, "elu": nn.ELU, "identity": nn.Identity}
    if act not in acts:
        raise ExportError(f"--act {act}: expected one of {', '.join(acts)}")
    layers = []
    for i in range(len(arch) - 1):
        layers.append(nn.Linear(arch[i], arch[i + 1]))
        if i < len(arch) - 2 and act != "identity":
            layers.append(acts[act]())
    return nn.Sequential(*layers).double()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a PyTorch model as an effdim checkpoint.")
    ap.add_argument("--demo", metavar="OUT", required=True,
                    help="write a random seeded model to OUT.h5")
    ap.add_argument("--arch", default="4,16,3", help="layer widths, e.g. 784,300,100,10")
    ap.add_argument("--act", default="tanh", help="hidden activation (relu, tanh, ...)")
    ap.add_argument("--loss", default="cross_entropy", choices=LOSSES)
    ap.add_argument("--reduction", default="mean", choices=REDUCTIONS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--adam-steps", type=int, default=0,
                    help="take N Adam steps on random data and save the optimiser state")
    args = ap.parse_args(argv)
    try:
        arch = [int(s) for s in args.arch.split(",")]
        model = demo_model(arch, args.act, args.seed)
        opt = None
        if args.adam_steps > 0:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(args.seed + 1)
            X = torch.randn(64, arch[0], generator=gen, dtype=torch.float64)
            if args.loss == "cross_entropy":
                y = torch.randint(0, arch[-1], (64,), generator=gen)
                fn = nn.CrossEntropyLoss(reduction=args.reduction)
            elif args.loss == "bce":
                y = torch.randint(0, 2, (64, 1), generator=gen).to(torch.float64)
                fn = nn.BCEWithLogitsLoss(reduction=args.reduction)
            else:
                y = torch.randn(64, arch[-1], generator=gen, dtype=torch.float64)
                fn = nn.MSELoss(reduction=args.reduction)
            for _ in range(args.adam_steps):
                opt.zero_grad()
                fn(model(X), y).backward()
                opt.step()
        notes = export_checkpoint(model, args.demo, optimizer=opt, loss=args.loss,
                                  reduction=args.reduction,
                                  training={"data_spec": "torch_export --demo", "seed": args.seed})
        for note in notes:
            print(f"torch_export: note: {note}", file=sys.stderr)
    except (ExportError, ValueError, OSError) as e:
        print(f"torch_export: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
