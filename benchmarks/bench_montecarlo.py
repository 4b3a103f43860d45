"""Throughput of the Monte-Carlo MSE, ``qtheory.montecarlo.mse``, against the plain numpy pipeline.

At equal samples (``--n``, default 4e6) and one 4-bit quantizer, times

- qtheory : ``qtheory.montecarlo.mse(prior, quantizer, n_samples=n, rng=seed)`` — the public call,
            draws made inside numba (per-chunk xoshiro256** streams), MSE with standard errors and
            the clipping / rounding split;
- numpy   : the plain numpy pipeline, ``x = rng.laplace(size=n)`` (or ``normal``),
            ``k = clip(rint(x / s - offset), qmin, qmax)``, ``e = (k + offset)·s − x``, ``e @ e / n``
            (no standard error, no split: the least a numpy user would write);

for Laplace and Gaussian priors, interleaved over ``--reps`` rounds (best time of each), and prints
the ratio numpy / qtheory. numba uses ``--threads`` threads (default: all); numpy is single-threaded.

Two protocols, both printed: *back to back* (each call right after the previous one) and
*settled* (``--pause`` seconds, default 0.2, before and after each timed call). Back to back, a
call also pays for what the previous one left to the operating system: the numpy pipeline frees
arrays of ``8·n`` bytes, and their reclaim competes with the next call's threads. On the 2-core
machine of the README, at 4e6 Gaussian draws, ``montecarlo.mse`` takes 10 ms repeated alone or
0.2 s after the numpy pipeline, and 15–19 ms right after it (numpy: 73–77 ms either way). The
settled protocol measures each call on its own; the pause is the same for both sides.

Run: ``python benchmarks/bench_montecarlo.py [--n 4000000] [--reps 7] [--threads N] [--pause 0.2]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(n: int = 4_000_000, reps: int = 7, threads: int | None = None, pause: float = 0.2) -> list[dict]:
    import numba

    from qtheory import Quantizer, montecarlo

    if threads:
        numba.set_num_threads(threads)
    q = Quantizer(4, 3.0)
    s, off, qmin, qmax, _ = q.kernel_params

    def numpy_pipeline(dist):
        rng = np.random.default_rng(0)
        x = rng.laplace(0.0, 1.0, n) if dist == "laplace" else rng.normal(0.0, 1.0, n)
        k = np.clip(np.rint(x / s - off), qmin, qmax)
        e = (k + off) * s - x
        return float(e @ e) / n

    def ours(dist):
        return montecarlo.mse(dist, q, n_samples=n, rng=0).mse

    cases = {d: {"qtheory": (lambda d=d: ours(d)), "numpy": (lambda d=d: numpy_pipeline(d))}
             for d in ("laplace", "gaussian")}
    for fns in cases.values():  # warm-up (numba compilation)
        for f in fns.values():
            f()
    print(f"n = {n:g} samples, 4-bit quantizer; numba threads {numba.get_num_threads()}; best of {reps}")
    print(f"{'protocol':14s} {'prior':10s} {'qtheory s':>10s} {'numpy s':>10s} {'ns/sample':>10s}  {'numpy/qtheory':>13s}")
    rows = []
    for protocol, wait in (("back to back", 0.0), ("settled", pause)):
        best = {d: dict.fromkeys(fns, np.inf) for d, fns in cases.items()}
        for _ in range(reps):
            for d, fns in cases.items():
                for key, f in fns.items():
                    time.sleep(wait)
                    t0 = time.perf_counter()
                    f()
                    best[d][key] = min(best[d][key], time.perf_counter() - t0)
                    time.sleep(wait)
        for d, b in best.items():
            row = {"protocol": protocol, "prior": d, "qtheory_s": b["qtheory"], "numpy_s": b["numpy"],
                   "ratio": b["numpy"] / b["qtheory"]}
            rows.append(row)
            print(f"{protocol:14s} {d:10s} {b['qtheory']:10.4f} {b['numpy']:10.4f} {b['qtheory'] / n * 1e9:10.2f}  "
                  f"{row['ratio']:13.1f}")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    ap.add_argument("--pause", type=float, default=0.2, help="seconds before and after each settled call")
    args = ap.parse_args()
    main(args.n, args.reps, args.threads, args.pause)
