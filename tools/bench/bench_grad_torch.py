#!/usr/bin/python3
"""tools/bench/bench_grad_torch.py: the PyTorch float64 reference for `effdim bench grad`.

Times the same full-batch loss and gradient as effdim (nn.Sequential of Linear
layers, relu hidden layers by default, identity output, CrossEntropyLoss with
mean reduction) in float64 with the given thread count, on the first n
Fashion-MNIST training images read from Debian's gzip IDX files (pixels
scaled to [0, 1]) or on random data of the same shape. FLOPs are counted as
effdim counts them (forward 2n*sum(out*in), weight gradients 2n*sum(out*in),
deltas 2n*sum over layers l>=1 of out*in; the input needs no gradient, so
PyTorch does not form dL/dX either).

    /usr/bin/python3 tools/bench/bench_grad_torch.py [--n 10000] [--arch 784,300,100,10]
        [--act relu] [--threads 2] [--repeat 5] [--data fashion-mnist|random]

Prints a few lines and, last, one JSON object (effdim bench grad --torch reads it).
"""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

FASHION = os.environ.get("EFFDIM_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
        "gelu": nn.GELU, "identity": nn.Identity}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(n, d, k, which):
    if which == "random":
        g = torch.Generator().manual_seed(1)
        return torch.rand(n, d, generator=g, dtype=torch.float64), torch.randint(0, k, (n,), generator=g)
    X = read_idx(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))[:n].reshape(n, -1)
    y = read_idx(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"))[:n]
    return torch.from_numpy(X.astype(np.float64) / 255.0), torch.from_numpy(y.astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--arch", default="784,300,100,10")
    ap.add_argument("--act", default="relu", choices=sorted(ACTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "random"])
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    sizes = [int(s) for s in a.arch.split(",")]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]).double())
        if i + 2 < len(sizes):
            layers.append(ACTS[a.act]())
    net = nn.Sequential(*layers)
    X, y = load(a.n, sizes[0], sizes[-1], a.data)
    crit = nn.CrossEntropyLoss()
    params = list(net.parameters())

    def step():
        loss = crit(net(X), y)
        return loss, torch.autograd.grad(loss, params)

    step()  # warm-up
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        loss, _ = step()
        times.append(time.perf_counter() - t0)
    pairs = sum(sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
    deltas = sum(sizes[i] * sizes[i + 1] for i in range(1, len(sizes) - 1))
    flops = 2.0 * a.n * (2 * pairs + deltas)

    A = torch.rand(2048, 2048, dtype=torch.float64)
    B = torch.rand(2048, 2048, dtype=torch.float64)
    torch.mm(A, B)
    mm = min(_timed(lambda: torch.mm(A, B)) for _ in range(3))

    best, med = min(times), statistics.median(times)
    out = {
        "version": torch.__version__, "threads": torch.get_num_threads(), "n": a.n,
        "arch": a.arch, "data": a.data, "loss": float(loss), "flops": flops,
        "seconds_best": best, "seconds_median": med, "gflops": flops / best * 1e-9,
        "gflops_median": flops / med * 1e-9, "torch_mm_2048_gflops": 2 * 2048**3 / mm * 1e-9,
    }
    print(f"pytorch {torch.__version__} float64, {out['threads']} threads: best {best:.4f} s, "
          f"{out['gflops']:.2f} GFLOP/s; torch.mm 2048^3 {out['torch_mm_2048_gflops']:.2f} GFLOP/s")
    print(json.dumps(out))


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
