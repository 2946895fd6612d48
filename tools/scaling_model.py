#!/usr/bin/env python3
"""tools/scaling_model.py: the modelled strong scaling of docs/scaling.md.

    python3 tools/scaling_model.py --row-seconds S --orth-seconds O [--matvecs M]

Inputs are MEASURED on one machine (docs/scaling.md, "Measured"): S, the
seconds one exact Hessian-vector product spends per data row on one thread
of the 784-300-100-10 relu network (P0 = 266,610 parameters); O, the seconds
per Lanczos product outside the products (reorthogonalisation, the projected
problem, the residuals: every rank does it, so more ranks do not shorten it)
at P0; M, the products of a top-20 Lanczos run. Everything else is a MODEL
with stated network figures, B = 10 or 100 Gbit/s (1.25e9 or 1.25e10 bytes/s)
and L = 5 us latency:

  compute(R, n, P) = S (P / P0) n / R        rows split evenly; cost per row ~ P
  own(P)           = O (P / P0)              per product, on every rank
  ring(R, P)       = 2 (R - 1) / R 8P / B + 2 (R - 1) L + 4 ceil(log2 R) L
                     what lib/comm.c does for a P-vector: a ring reduce-scatter and
                     allgather, after two small agreements on the status (tree
                     allreduces of one int, 2 ceil(log2 R) L each)
  gather(R, P)     = (R - 1 + ceil(log2 R)) (L + 8P / B) + 4 ceil(log2 R) L
                     gathering every block on rank 0 and broadcasting the sum (what
                     lib/comm.c does for sums shorter than 4096 doubles), shown to
                     say why P-vectors take the ring
  product(R)       = compute + ring;  Lanczos run = M (product + own)

It prints tables (markdown) for n = 60,000 and 1,000,000 rows, P = 266,610,
1e6 and 1e7, R = 1 .. 256, the rank counts from which the ring takes longer
than the rows' compute and the replicated Lanczos work takes longer than the
product, and the memory per rank.
"""
import argparse
import math

P0 = 266_610
D_IN = 784
CACHE_PER_ROW0 = 520  # doubles per row of the exact/GGN cache at P0 (effdim/hvp.h)
LAT = 5e-6


def log2c(r):
    return math.ceil(math.log2(r)) if r > 1 else 0


def gather(r, p, bw):
    if r == 1:
        return 0.0
    msg = LAT + 8.0 * p / bw
    return (r - 1) * msg + log2c(r) * msg + 4 * log2c(r) * LAT


def ring(r, p, bw):
    if r == 1:
        return 0.0
    return 2.0 * (r - 1) / r * 8.0 * p / bw + 2 * (r - 1) * LAT + 4 * log2c(r) * LAT


def fmt_s(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} us"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--row-seconds", type=float, required=True)
    ap.add_argument("--orth-seconds", type=float, required=True)
    ap.add_argument("--matvecs", type=int, default=101)
    a = ap.parse_args()
    S, O, M = a.row_seconds, a.orth_seconds, a.matvecs
    ranks = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    for bw_name, bw in (("10 Gbit/s", 1.25e9), ("100 Gbit/s", 1.25e10)):
        for n in (60_000, 1_000_000):
            for p in (P0, 1_000_000, 10_000_000):
                print(f"\n**{bw_name}, n = {n:,}, P = {p:,}**\n")
                print("| R | compute | ring | product | speed-up | reduction share | "
                      f"Lanczos run ({M} products) | speed-up | (gather instead) |")
                print("|---|---|---|---|---|---|---|---|---|")
                base = lbase = None
                own = O * (p / P0)
                for r in ranks:
                    c = S * (p / P0) * n / r
                    rg, g = ring(r, p, bw), gather(r, p, bw)
                    prod = c + rg
                    lz = M * (prod + own)
                    if base is None:
                        base, lbase = prod, lz
                    print(f"| {r} | {fmt_s(c)} | {fmt_s(rg)} | {fmt_s(prod)} | {base / prod:.1f} | "
                          f"{100 * rg / prod:.1f}% | {fmt_s(lz)} | {lbase / lz:.1f} | "
                          f"{fmt_s(g)} |")
                cross_r = next((r for r in range(2, 1_000_000)
                                if ring(r, p, bw) > S * (p / P0) * n / r), None)
                cross_o = next((r for r in range(1, 1_000_000)
                                if own > S * (p / P0) * n / r + ring(r, p, bw)), None)
                def at(r):
                    return f"R = {r:,}" if r is not None else "no R (the ring grows first)"
                print(f"\nthe ring takes longer than the compute from {at(cross_r)}; the "
                      f"replicated Lanczos work longer than a product from {at(cross_o)}")
    print("\n**memory per rank** (GiB): data share n/R x 784 doubles, the exact/GGN cache "
          f"(n/R x {CACHE_PER_ROW0} doubles at P0, scaled by sqrt(P/P0) for wider layers), the "
          "Lanczos basis (m + 1 = 101) x P and 10 P-vectors (every rank), the ring's buffer "
          "(P / R)\n")
    print("| n | P | R = 1 | 2 | 8 | 32 | 128 | 256 |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (60_000, 1_000_000):
        for p in (P0, 1_000_000, 10_000_000):
            row = []
            for r in (1, 2, 8, 32, 128, 256):
                rows = n / r
                b = 8 * (rows * D_IN + rows * CACHE_PER_ROW0 * math.sqrt(p / P0) + 111 * p)
                if r > 1:
                    b += 8 * p / r
                row.append(f"{b / 2**30:.2f}")
            print(f"| {n:,} | {p:,} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
