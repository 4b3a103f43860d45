"""Throughput of qtheory.intconv.conv2d against PyTorch's fbgemm int8 conv and float32 conv.

Prints GOP/s (2 ops per multiply-accumulate) of

- qtheory  : ``qtheory.intconv.conv2d`` from NCHW uint8 to NCHW uint8, requantisation included
             (packing to NHWC int32, the kernel, requantisation; the timed call is the public API);
- fbgemm   : ``torch.ao.nn.quantized.functional.conv2d`` on quint8/qint8 (engine "fbgemm");
- float32  : ``torch.nn.functional.conv2d``;

and the ratios qtheory/fbgemm and qtheory/float32, measured side by side in one run: the three
calls are interleaved, rounds go over all shapes, and each call keeps its best time over
``--reps`` rounds, so that load from other processes on the machine affects all three alike. Threads: torch uses its default
(``torch.get_num_threads()``), numba its default (all cores); ``--threads 1`` compares one core
each, which is less disturbed by other load (a parallel region waits for its slowest thread).

Run: ``python benchmarks/bench_intconv.py [--reps 30] [--requant tflite] [--threads N]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

SHAPES = [
    # name, N, C, H, W, K, k, stride, pad, groups
    ("3x3 64->64 @56", 1, 64, 56, 56, 64, 3, 1, 1, 1),
    ("1x1 256->64 @56", 1, 256, 56, 56, 64, 1, 1, 0, 1),
    ("dw 3x3 C=128 @56", 1, 128, 56, 56, 128, 3, 1, 1, 128),
    ("stem 3x3/2 3->32 @224", 1, 3, 224, 224, 32, 3, 2, 1, 1),
]


def _callables(rng, requant, N, C, H, W, K, k, s, p, g):
    """The three timed calls on one layer shape, and its operation count."""
    import torch
    import torch.ao.nn.quantized.functional as qF

    from qtheory import Quantizer
    from qtheory.intconv import conv2d, per_channel, storage_zero_point

    xq = Quantizer(8, 6.0, grid="affine", beta=-2.0)
    wq = per_channel(8, rng.uniform(0.2, 0.6, K))
    yq = Quantizer(8, 20.0, grid="affine", beta=-20.0)
    x = rng.integers(0, 256, (N, C, H, W)).astype(np.uint8)
    w = rng.integers(-127, 128, (K, C // g, k, k)).astype(np.int8)
    bias = rng.integers(-1000, 1000, K).astype(np.int32)
    Ho = (H + 2 * p - k) // s + 1
    Wo = (W + 2 * p - k) // s + 1
    ops = 2.0 * N * K * Ho * Wo * (C // g) * k * k

    def ours():
        return conv2d(x, w, bias, x_quant=xq, w_quant=wq, out_quant=yq, stride=s, padding=p,
                      groups=g, requant=requant)

    tx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), xq.scale, storage_zero_point(xq))
    tw = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(w), torch.tensor([q.scale for q in wq], dtype=torch.float64),
        torch.zeros(K, dtype=torch.long), 0)
    tb = torch.from_numpy(bias.astype(np.float32) * xq.scale * np.array([q.scale for q in wq], np.float32))
    zo = storage_zero_point(yq)

    def fbgemm():
        return qF.conv2d(tx, tw, tb, stride=s, padding=p, groups=g, scale=yq.scale, zero_point=zo)

    fx = torch.from_numpy(x.astype(np.float32))
    fw = torch.from_numpy(w.astype(np.float32))
    fb = torch.from_numpy(bias.astype(np.float32))

    def f32():
        return torch.nn.functional.conv2d(fx, fw, fb, stride=s, padding=p, groups=g)

    return {"qtheory": ours, "fbgemm": fbgemm, "float32": f32}, ops


def main(reps: int = 30, requant: str = "tflite", threads: int | None = None) -> list[dict]:
    import numba
    import torch

    warnings.filterwarnings("ignore", category=UserWarning)  # torch's quantized-tensor deprecation notice
    torch.backends.quantized.engine = "fbgemm"
    if threads:
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    print(f"torch {torch.__version__}, threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}; "
          f"qtheory requant={requant!r}; best of {reps}")
    print(f"{'shape':24s} {'qtheory':>9s} {'fbgemm':>9s} {'float32':>9s}   {'q/fbgemm':>8s} {'q/float':>8s}  (GOP/s)")
    cases = []
    for name, N, C, H, W, K, k, s, p, g in SHAPES:
        fns, ops = _callables(rng, requant, N, C, H, W, K, k, s, p, g)
        for f in fns.values():  # warm-up (numba compilation, fbgemm packing caches)
            f()
        cases.append((name, fns, ops, dict.fromkeys(fns, np.inf)))
    # rounds over all shapes, so that a burst of load from elsewhere hits one round, not one shape
    with torch.inference_mode():
        for _ in range(reps):
            for _name, fns, _ops, best in cases:
                for key, f in fns.items():
                    t0 = time.perf_counter()
                    f()
                    best[key] = min(best[key], time.perf_counter() - t0)
    for name, _fns, ops, best in cases:
        gops = {key: ops / t / 1e9 for key, t in best.items()}
        row = {"shape": name, **gops, "q/fbgemm": gops["qtheory"] / gops["fbgemm"],
               "q/float32": gops["qtheory"] / gops["float32"]}
        rows.append(row)
        print(f"{name:24s} {gops['qtheory']:9.1f} {gops['fbgemm']:9.1f} {gops['float32']:9.1f}   "
              f"{row['q/fbgemm']:8.2f} {row['q/float32']:8.2f}")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--requant", default="tflite")
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: each library's own)")
    args = ap.parse_args()
    main(args.reps, args.requant, args.threads)
