#!/usr/bin/python3
"""tools/bench/train_torch.py: PyTorch's side of `effdim bench train`.

Times the training step that `effdim train` takes, written the usual
PyTorch way: a float64 nn.Sequential of Linear and ReLU layers,
nn.CrossEntropyLoss() (mean), torch.optim.Adam (lr 1e-3; or SGD / AMSGrad /
AdamW with PyTorch's defaults), minibatches X[idx], y[idx] of a shuffled
permutation, zero_grad / forward / backward / step, with
torch.set_num_threads(T). Data: Fashion-MNIST's 60,000 training images from
Debian's dataset-fashion-mnist (scaled to [0, 1] as effdim's
fashion-mnist spec does), or random data of the same shape.

A warm-up sets the number of steps per sample so that one sample lasts at
least --min-seconds; then --repeat samples are timed. The last line of
stdout is a JSON object: steps_per_second (best sample),
steps_per_second_median, version, threads, steps_per_sample.

    /usr/bin/python3 tools/bench/train_torch.py [--arch 784,300,100,10]
        [--batch 128] [--opt adam] [--threads 2] [--repeat 5] [--data fashion-mnist|random]
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

FMNIST = os.environ.get("EFFDIM_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(kind, d, k):
    if kind == "random":
        gen = torch.Generator().manual_seed(1)
        return (torch.rand(60000, d, generator=gen, dtype=torch.float64),
                torch.randint(0, k, (60000,), generator=gen))
    images = read_idx(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FMNIST, "train-labels-idx1-ubyte.gz"))
    X = torch.from_numpy(images.reshape(len(images), -1).astype(np.float64) / 255.0)
    return X, torch.from_numpy(labels.astype(np.int64))


def make_optimizer(name, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    if name == "amsgrad":
        return torch.optim.Adam(params, lr=1e-3, amsgrad=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-3)
    raise SystemExit(f"train_torch.py: --opt {name}: expected sgd, adam, amsgrad or adamw")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="784,300,100,10")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--opt", default="adam")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "random"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.arch.split(",")]
    X, y = load(args.data, sizes[0], sizes[-1])
    torch.manual_seed(1)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).double()
    fn = nn.CrossEntropyLoss()
    opt = make_optimizer(args.opt, model.parameters())
    gen = torch.Generator().manual_seed(1)
    n = X.shape[0]
    state = {"perm": torch.randperm(n, generator=gen), "next": 0}

    def step():
        if state["next"] >= n:
            state["perm"] = torch.randperm(n, generator=gen)
            state["next"] = 0
        idx = state["perm"][state["next"]:state["next"] + args.batch]
        state["next"] += len(idx)
        opt.zero_grad()
        loss = fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()

    # warm-up: find how many steps make a sample last min_seconds
    inner, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.min_seconds:
        step()
        inner += 1
    samples = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        samples.append((time.perf_counter() - t0) / inner)
    best, med = min(samples), statistics.median(samples)
    print(f"pytorch {torch.__version__}: {1 / best:.1f} steps/s (median {1 / med:.1f})",
          file=sys.stderr)
    print(json.dumps({"steps_per_second": 1 / best, "steps_per_second_median": 1 / med,
                      "version": torch.__version__, "threads": args.threads,
                      "steps_per_sample": inner, "batch": args.batch, "optimizer": args.opt}))


if __name__ == "__main__":
    main()
