"""Benchmark: exact asymmetric (affine) and unsigned activation ranges through the public API.

Real-like activations: a skewed, heavy-right-tailed distribution with a spike of exact zeros (30 %,
as after a ReLU) and a small negative part (as before one, e.g. a residual add). For N = 10^7
and 2·10^7 float32 samples and 2/4/8 bits, prints the time of

- ``qtheory.optimal_clip(x, bits, grid="affine", range="asymmetric")`` (both ends of the range),
- ``qtheory.optimal_clip(np.maximum(x, 0), bits, grid="unsigned")`` (post-ReLU, one end),

each as a ratio to ``np.sort`` of the same data, measured in the same run (issue 12, target 2:
<= 2x). Each time is the best of ``--repeat`` runs; on a shared machine compare ratios of one run.

Usage: ``python benchmarks/bench_activation_range.py [--sizes 1e7,2e7] [--repeat R]``

The reference is numpy's sort at its fastest on the CPU: where numpy sorts clearly faster with its
AVX-512 dispatch off (AMD Zen 4), the script re-runs itself with ``NPY_DISABLE_CPU_FEATURES``
(see ``_timing.fastest_numpy_sort``; ``QTHEORY_BENCH_KEEP_NUMPY=1`` keeps numpy as installed).
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_of, fastest_numpy_sort

import qtheory


def activations(n, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.gamma(1.5, 1.0, size=n) * rng.lognormal(0.0, 0.5, size=n)).astype(np.float32)
    x[rng.random(n) < 0.3] = 0.0
    neg = rng.random(n) < 0.05
    x[neg] = -np.abs(rng.normal(0.0, 0.2, size=int(neg.sum()))).astype(np.float32)
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e7,2e7")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    fastest_numpy_sort(argv)
    small = activations(1 << 20, 1)
    for b in (2, 4, 8):  # (compile or load the kernels outside the timing)
        qtheory.optimal_clip(small, b, grid="affine", range="asymmetric")
        qtheory.optimal_clip(np.maximum(small, 0), b, grid="unsigned")
    print(f"{'N':>6} {'path':>10} {'bits':>4} {'time s':>8} {'sort s':>7} {'/ sort':>7} {'alpha':>9} {'beta':>9}")
    for n in (int(float(s)) for s in args.sizes.split(",")):
        x = activations(n)
        xr = np.maximum(x, 0)
        for bits in (2, 4, 8):
            for name, f in (("asymmetric", lambda b=bits, x=x: qtheory.optimal_clip(x, b, grid="affine",
                                                                                    range="asymmetric")),
                            ("unsigned", lambda b=bits, xr=xr: qtheory.optimal_clip(xr, b, grid="unsigned"))):
                t, r = best_of(f, args.repeat)
                t_s, _ = best_of(lambda x=x: np.sort(x), 1)
                beta = 0.0 if r.beta is None else r.beta
                print(f"{n:6.0e} {name:>10} {bits:4d} {t:8.3f} {t_s:7.3f} {t / t_s:7.2f} {r.alpha:9.4f} {beta:9.4f}")


if __name__ == "__main__":
    main()
