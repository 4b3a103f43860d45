"""Benchmark: streaming observers (``Observer.collect`` batch by batch, then ``.range("exact")``).

The same N real-like activations (those of ``bench_activation_range.py``: skewed, a spike of
ReLU zeros, a small negative part; float32) are calibrated for the affine grid (uint8-style
asymmetric range) by

- ``qtheory.optimal_clip(x, bits, grid="affine", range="asymmetric")``: the in-memory exact path
  (the reference of the ratios);
- ``Observer(bits, max_samples=N).collect(x).range("exact")``: the observer fed one array;
- the observer fed ``--batches`` batches, kept in memory (``max_samples >= N``: its exact range *is*
  ``optimal_clip`` of the concatenation);
- the observer fed the same batches with the default ``max_samples`` (2^22 < N): it streams
  (histogram with exact per-bin sums + reservoir; the range minimises an upper bound of the MSE,
  whose excess over the exact optimum is at most ``Range.bound``).

Printed: time of each path (and of the batched collection alone) and its ratio to ``optimal_clip`` (issue 12, target 4: <= 1.5x for the
batched paths), ``np.sort(x)`` for scale, and whether the in-memory ranges equal ``optimal_clip``'s
(the streamed one: its MSE excess over the exact optimum, and its bound). Each time is the best of
``--repeat`` runs, the paths interleaved; on a shared machine compare the ratios of one run.

Usage: ``python benchmarks/bench_observers.py [--sizes 1e7] [--batches 100] [--bits 4,8] [--repeat R]``
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_of
from bench_activation_range import activations

import qtheory
from qtheory.empirical import EmpiricalMSE
from qtheory.models import Observer, quantizer_for


def collect(batches, bits, max_samples, exact=True):
    obs = Observer(bits, max_samples=max_samples)
    for b in batches:
        obs.collect(b)
    return obs.range("exact") if exact else obs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e7")
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--bits", default="4,8")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    bits_list = [int(b) for b in args.bits.split(",")]
    small = activations(1 << 18, 1)
    for b in bits_list:  # (compile or load the kernels outside the timing)
        collect(np.array_split(small, 4), b, 1 << 30)
        collect(np.array_split(small, 4), b, 1 << 16)
    print(f"{'N':>6} {'bits':>4} {'path':>26} {'time s':>8} {'/ exact':>8}  result")
    for n in (int(float(s)) for s in args.sizes.split(",")):
        x = activations(n)
        batches = np.array_split(x, args.batches)
        t_sort, _ = best_of(lambda x=x: np.sort(x), 1)
        print(f"{n:6.0e} {'':>4} {'np.sort(x)':>26} {t_sort:8.3f}")
        prep = None
        for bits in bits_list:
            paths = {"optimal_clip (in memory)": lambda b=bits, x=x: qtheory.optimal_clip(x, b, grid="affine",
                                                                                          range="asymmetric"),
                     "Observer, one array": lambda b=bits, x=x, n=n: Observer(b, max_samples=n).collect(x)
                     .range("exact"),
                     f"Observer, {args.batches} batches": lambda b=bits, bs=batches, n=n: collect(bs, b, n),
                     "  streamed (max 2^22)": lambda b=bits, bs=batches: collect(bs, b, 1 << 22),
                     "  (collect only, in memory)": lambda b=bits, bs=batches, n=n: collect(bs, b, n, False)}
            best, out = {}, {}
            for _ in range(args.repeat):  # (interleaved: a load burst hits every path alike)
                for name, f in paths.items():
                    t, out[name] = best_of(f, 1)
                    best[name] = min(best.get(name, np.inf), t)
            ref = out["optimal_clip (in memory)"]
            t_ref = best["optimal_clip (in memory)"]
            for name, r in out.items():
                if name.startswith("optimal_clip"):
                    note = f"[{ref.beta:.6g}, {ref.alpha:.6g}] mse {ref.mse:.6g}"
                elif isinstance(r, Observer):
                    note = "the observer's own cost of the batched path"
                elif not r.streamed:
                    same = "equal" if (r.beta, r.alpha) == (ref.beta, ref.alpha) else "DIFFERENT"
                    note = f"{same} to optimal_clip's range"
                else:
                    prep = prep or EmpiricalMSE(x)
                    true = sum(prep.mse_quantizer(quantizer_for(r.beta, r.alpha, bits, "affine")))
                    note = (f"[{r.beta:.6g}, {r.alpha:.6g}] mse {true:.6g}: excess {true / ref.mse - 1:.1e} "
                            f"(bound {r.bound / ref.mse:.1e})")
                print(f"{n:6.0e} {bits:4d} {name:>26} {best[name]:8.3f} {best[name] / t_ref:8.2f}  {note}")

if __name__ == "__main__":
    main()
