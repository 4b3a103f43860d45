"""Benchmark: exact per-channel optimal clips (``per_channel_optimal_clip``) through the public API.

Two tensors, measured side by side in one run:

- a 4096×4096 float32 matrix (a large-language-model projection; Laplace rows of varying scale),
- the conv channels of the PP-OCRv4 detector (rapidocr-onnxruntime's ``ch_PP-OCRv4_det_infer.onnx``,
  weights read with ``onnx``; 9 to 864 weights a channel), or, without that package, a synthetic
  set of 7,536 channels of 9..5,000 Laplace weights.

For 2/4/8 bits (``grid="narrow"``) it prints the time of ``per_channel_optimal_clip`` as a ratio to
``np.sort(np.abs(W), axis=1)`` (the ragged channels: one sort per channel length group) on the
same data (issue 12, target 3: <= 3x), and as a speed-up over a per-channel ``mse_sweep``
(the ``"mse"`` calibrator, ``qtheory.calibrate.mse_sweep_clip``, timed on ``--sweep-channels`` channels and scaled;
target >= 100x).

Usage: ``python benchmarks/bench_per_channel.py [--repeat R] [--sweep-channels K] [--skip-matrix]``

The reference is numpy's sort at its fastest on the CPU: where numpy sorts clearly faster with its
AVX-512 dispatch off (AMD Zen 4), the script re-runs itself with ``NPY_DISABLE_CPU_FEATURES``
(see ``_timing.fastest_numpy_sort``; ``QTHEORY_BENCH_KEEP_NUMPY=1`` keeps numpy as installed).
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np
from _timing import best_of, fastest_numpy_sort

from qtheory.calibrate import mse_sweep_clip
from qtheory.empirical import per_channel_optimal_clip


def detector_channels():
    """The conv weight channels of the PP-OCRv4 detector, grouped by length: {n: (C, n) array}."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")  # (located, never imported)
    if spec is None:
        return None
    path = glob.glob(os.path.join(os.path.dirname(spec.origin), "models", "ch_PP-OCRv4_det_infer.onnx"))
    if not path:
        return None
    m = onnx.load(path[0])
    rows = []
    for node in m.graph.node:
        if node.op_type == "Constant":
            a = numpy_helper.to_array(node.attribute[0].t)
            if a.ndim == 4:
                rows += list(a.reshape(a.shape[0], -1).astype(np.float32))
    return _group(rows)


def synthetic_channels(seed=0):
    """7,536 channels in 62 layers (one channel length a layer, 9..5,000), as in a conv detector."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(np.exp(rng.uniform(np.log(9), np.log(5000), size=62)).astype(int), 9, 5000)
    counts = rng.multinomial(7536 - 62, np.full(62, 1 / 62)) + 1
    return _group([(rng.laplace(size=n) * rng.uniform(0.01, 0.2)).astype(np.float32)
                   for n, c in zip(sizes, counts, strict=True) for _ in range(c)])


def _group(rows):
    groups = {}
    for r in rows:
        groups.setdefault(r.size, []).append(r)
    return {n: np.stack(v) for n, v in groups.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sweep-channels", type=int, default=20)
    ap.add_argument("--skip-matrix", action="store_true")
    ap.add_argument("--bits", default="2,4,8")
    args = ap.parse_args(argv)
    fastest_numpy_sort(argv)
    rng = np.random.default_rng(0)
    sets = {}
    det = detector_channels()
    sets["PP-OCRv4 det" if det is not None else "synthetic 7536"] = det if det is not None else synthetic_channels()
    if not args.skip_matrix:
        w = (rng.laplace(size=(4096, 4096)) * rng.uniform(0.01, 0.1, size=(4096, 1))).astype(np.float32)
        sets["4096x4096"] = {4096: w}
    # (compile or load the kernels outside the timing: the one-thread one for small jobs, the
    # parallel one for large)
    per_channel_optimal_clip(rng.laplace(size=(4, 50)).astype(np.float32), 2, grid="narrow")
    per_channel_optimal_clip(rng.laplace(size=(600, 1024)).astype(np.float32), 2, grid="narrow")
    print(f"{'tensor':>15} {'channels':>8} {'bits':>4} {'qtheory s':>10} {'sort s':>7} {'/ sort':>7} "
          f"{'mse_sweep s':>12} {'speed-up':>9}")
    for name, groups in sets.items():
        nch = sum(g.shape[0] for g in groups.values())
        for bits in (int(b) for b in args.bits.split(",")):
            t, _ = best_of(lambda b=bits, gs=groups: [per_channel_optimal_clip(g, b, axis=0, grid="narrow")
                                                       for g in gs.values()], args.repeat)
            t_s, _ = best_of(lambda gs=groups: [np.sort(np.abs(g), axis=1) for g in gs.values()], args.repeat)
            # per-channel mse_sweep on a sample of channels, scaled to all of them
            flat = [g[i] for g in groups.values() for i in range(g.shape[0])]
            pick = np.random.default_rng(1).choice(len(flat), size=min(args.sweep_channels, len(flat)), replace=False)
            t0 = time.perf_counter()
            for i in pick:
                mse_sweep_clip(flat[i], bits, grid="narrow")
            t_sw = (time.perf_counter() - t0) / pick.size * nch
            print(f"{name:>15} {nch:8d} {bits:4d} {t:10.3f} {t_s:7.3f} {t / t_s:7.2f} {t_sw:12.2f} {t_sw / t:9.1f}")


if __name__ == "__main__":
    main()
