"""Benchmark: the public ``qtheory.optimal_clip(x, bits)`` on 10^7 float32 Laplace samples.

Prints, in one run and side by side, for bits 2, 4 and 8 and the symmetric grids, the time of the
public call exactly as a user makes it (the samples straight from numpy; preparation and the
global search included) as a ratio to ``np.sort(np.abs(x))`` of the same data (issue 12, target 1:
<= 1.0x), and the MSE it reaches relative to a 100-candidate brute-force sweep of direct
quantize-and-average (``max|x|·k/100``, float32 numpy) — never worse.

qtheory's O(N) passes run in numba threads (all cores by default; ``--threads 1`` for one);
``np.sort`` is single-threaded numpy. On a machine shared with other work the ratios move with its
load: compare the ratios of one run. Each time is the best of ``--repeat`` runs.

Usage: ``python benchmarks/bench_optimal_clip.py [--n N] [--repeat R] [--threads T]``

The reference is numpy's sort at its fastest on the CPU: where numpy sorts clearly faster with its
AVX-512 dispatch off (AMD Zen 4), the script re-runs itself with ``NPY_DISABLE_CPU_FEATURES``
(see ``_timing.fastest_numpy_sort``; ``QTHEORY_BENCH_KEEP_NUMPY=1`` keeps numpy as installed).
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_of, fastest_numpy_sort

import qtheory
from qtheory import Quantizer


def brute_sweep(x, bits, n_cand, grid):
    """Direct quantize-and-average (float32 numpy) at ``n_cand`` clips; returns the best clip."""
    top = float(np.max(np.abs(x)))
    best, best_a = np.inf, top
    for k in range(1, n_cand + 1):
        a = top * k / n_cand
        q = Quantizer(bits, a, grid)
        s = np.float32(q.scale)
        c = np.clip(np.rint(x / s - np.float32(q.offset)), q.qmin, q.qmax)
        e = (c + np.float32(q.offset)) * s - x
        v = float(np.dot(e, e))
        if v < best:
            best, best_a = v, a
    return best_a


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--grids", default="midrise,int,narrow")
    args = ap.parse_args(argv)
    fastest_numpy_sort(argv)
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
    x = np.random.default_rng(0).laplace(size=args.n).astype(np.float32)
    for b in (2, 4, 8):  # (compile or load the kernels outside the timing)
        qtheory.optimal_clip(x[: 1 << 20], b)
    t_sort, _ = best_of(lambda: np.sort(np.abs(x)), args.repeat)
    print(f"N = {args.n:.0e} float32 Laplace; np.sort(np.abs(x)) {t_sort:.3f} s")
    print(f"{'grid':>8} {'bits':>4} {'optimal_clip s':>15} {'/ sort':>7} {'mse / sweep100 mse':>19}")
    for grid in args.grids.split(","):
        for bits in (2, 4, 8):
            t, r = best_of(lambda b=bits, g=grid: qtheory.optimal_clip(x, b, grid=g), args.repeat)
            t_s, _ = best_of(lambda: np.sort(np.abs(x)), 1)  # (side by side: the load of the moment)
            ref = min(t_sort, t_s)
            a_sw = brute_sweep(x[:1_000_000], bits, 100, grid) if args.n > 1_000_000 else brute_sweep(x, bits, 100, grid)
            m_sw = qtheory.clipping_mse(x, a_sw, bits, grid=grid).mse
            print(f"{grid:>8} {bits:>4} {t:15.3f} {t / ref:7.2f} {r.mse / m_sw:19.6f}")


if __name__ == "__main__":
    main()
