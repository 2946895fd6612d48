#!/usr/bin/python3
"""tests/make_fixture_optim.py: write tests/fixtures/optim_torch.h5, the PyTorch
reference for tests/test_optim.c.

Run with Debian's python3 (python3-torch, python3-h5py):
    /usr/bin/python3 tests/make_fixture_optim.py [tests/fixtures/optim_torch.h5]

A tiny float64 network (Linear(4,3), Tanh, Linear(3,2); 23 parameters) with a
full-batch cross-entropy loss on 16 fixed examples gives gradients that depend
on the parameters. From the same initial parameters, each optimiser
configuration takes 10 steps of torch.optim (foreach=False, the single-tensor
code path). Each group /runs/<name> stores:
    theta0 (P)            initial parameters (parameters_to_vector order)
    grads (10, P)         the gradient used at each step (so C can replay it)
    theta (10, P)         parameters after each step
    lr (10)               the learning rate used at each step
    <state> (10, P)       every state vector after each step
                          (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer)
    attrs: kind, lr, momentum, dampening, nesterov, weight_decay, beta1, beta2, eps,
           amsgrad, schedule (an effdim schedule spec or "constant")
Schedules alone: /schedules/<name>/lr (T) is the lr PyTorch's scheduler gives
the t-th optimizer.step() (t = 1..T), with scheduler.step() after every step;
attrs spec (the effdim spec), base_lr.
"""
import sys
import warnings

import h5py
import numpy as np
import torch
from torch.optim import lr_scheduler as S

torch.set_default_dtype(torch.float64)
STEPS = 10


def make_problem():
    g = torch.Generator().manual_seed(2385)
    X = torch.randn(16, 4, generator=g) * 1.7
    y = torch.randint(0, 2, (16,), generator=g)
    torch.manual_seed(4711)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    return net, X, y


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts]).detach().numpy().copy()


def make_optimizer(cfg, params):
    k = cfg["kind"]
    if k == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                               dampening=cfg["dampening"], weight_decay=cfg["weight_decay"],
                               nesterov=bool(cfg["nesterov"]), foreach=False)
    if k in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                                eps=cfg["eps"], weight_decay=cfg["weight_decay"],
                                amsgrad=bool(cfg["amsgrad"]), foreach=False)
    if k == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                                 eps=cfg["eps"], weight_decay=cfg["weight_decay"],
                                 amsgrad=bool(cfg["amsgrad"]), foreach=False)
    raise ValueError(k)


def make_scheduler(spec, opt):
    """The torch scheduler for the effdim spec strings used here."""
    if spec == "constant":
        return None
    if spec == "step:every=3,gamma=0.37":
        return S.StepLR(opt, step_size=3, gamma=0.37)
    if spec == "cosine:steps=7,min=0.0013":
        return S.CosineAnnealingLR(opt, T_max=7, eta_min=0.0013)
    if spec == "cosine:steps=6,min=0.0021,warmup=3,start=0.25":
        w = S.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=3)
        c = S.CosineAnnealingLR(opt, T_max=6, eta_min=0.0021)
        return S.SequentialLR(opt, [w, c], milestones=[3])
    if spec == "step:every=4,gamma=0.5,warmup=5,start=0.1":
        w = S.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=5)
        st = S.StepLR(opt, step_size=4, gamma=0.5)
        return S.SequentialLR(opt, [w, st], milestones=[5])
    if spec == "constant:warmup=4,start=0.3333333333333333":
        return S.LinearLR(opt, start_factor=1.0 / 3.0, end_factor=1.0, total_iters=4)
    raise ValueError(spec)


DEFAULTS = dict(lr=0.01, momentum=0.0, dampening=0.0, nesterov=0, weight_decay=0.0,
                beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=0, schedule="constant")

RUNS = {
    "sgd_plain": dict(kind="sgd", lr=0.173),
    "sgd_momentum": dict(kind="sgd", lr=0.0917, momentum=0.9),
    "sgd_nesterov": dict(kind="sgd", lr=0.0623, momentum=0.87, nesterov=1),
    "sgd_dampening_wd": dict(kind="sgd", lr=0.0811, momentum=0.9, dampening=0.1,
                             weight_decay=0.0237),
    "adam": dict(kind="adam", lr=0.0379),
    "adam_wd": dict(kind="adam", lr=0.0293, beta1=0.83, beta2=0.991, eps=1.7e-6,
                    weight_decay=0.0419),
    "amsgrad": dict(kind="amsgrad", lr=0.0531, beta1=0.85, beta2=0.93, amsgrad=1),
    "adamw": dict(kind="adamw", lr=0.0457, weight_decay=0.0617),
    "adamw_amsgrad": dict(kind="adamw", lr=0.0388, beta2=0.95, weight_decay=0.113, amsgrad=1),
    "adam_cosine_warmup": dict(kind="adam", lr=0.0643,
                               schedule="cosine:steps=6,min=0.0021,warmup=3,start=0.25"),
    "sgd_momentum_step": dict(kind="sgd", lr=0.137, momentum=0.9,
                              schedule="step:every=3,gamma=0.37"),
}

SCHEDULES = {
    "step": ("step:every=3,gamma=0.37", 0.2385, 20),
    "cosine": ("cosine:steps=7,min=0.0013", 0.0917, 8),
    "cosine_warmup": ("cosine:steps=6,min=0.0021,warmup=3,start=0.25", 0.0643, 10),
    "step_warmup": ("step:every=4,gamma=0.5,warmup=5,start=0.1", 0.713, 20),
    "warmup_only": ("constant:warmup=4,start=0.3333333333333333", 0.0419, 9),
}

STATE_NAMES = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


def run(cfg, X, y):
    net, _, _ = make_problem()
    params = list(net.parameters())
    opt = make_optimizer(cfg, params)
    sched = make_scheduler(cfg["schedule"], opt)
    theta0 = flat(params)
    rec = {"grads": [], "theta": [], "lr": []}
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(X), y)
        loss.backward()
        rec["grads"].append(flat([p.grad for p in params]))
        rec["lr"].append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
        rec["theta"].append(flat(params))
        for name in STATE_NAMES:
            if opt.state[params[0]].get(name) is not None:
                rec.setdefault(name, []).append(flat([opt.state[p][name] for p in params]))
    return theta0, rec


def schedule_lrs(spec, base_lr, steps):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_scheduler(spec, opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def main():
    warnings.simplefilter("ignore", UserWarning)  # SequentialLR calls step(0) on purpose
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim_torch.h5"
    _, X, y = make_problem()
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "effdim.test.optim"
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["steps"] = STEPS
        for name, spec in RUNS.items():
            cfg = dict(DEFAULTS, **spec)
            theta0, rec = run(cfg, X, y)
            g = f.create_group("runs/" + name)
            for k, v in cfg.items():
                g.attrs[k] = v
            g["theta0"] = theta0
            for k, v in rec.items():
                g[k] = np.array(v)
            if cfg["amsgrad"]:
                gap = np.max(np.array(rec["max_exp_avg_sq"]) - np.array(rec["exp_avg_sq"]))
                assert gap > 0, "the AMSGrad run never uses the running max"
        for name, (spec, base_lr, steps) in SCHEDULES.items():
            g = f.create_group("schedules/" + name)
            g.attrs["spec"] = spec
            g.attrs["base_lr"] = base_lr
            g["lr"] = schedule_lrs(spec, base_lr, steps)
    print("wrote", path)


if __name__ == "__main__":
    main()
