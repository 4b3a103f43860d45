"""Throughput of qtheory.intconv against ONNX Runtime QLinearConv (MLAS), PyTorch fbgemm and float32.

Prints GOP/s (2 ops per multiply-accumulate) of

- qtheory  : ``qtheory.intconv.PackedConv2d`` (weights packed once, as a runtime's session) from NCHW
             uint8 to NCHW uint8, requantisation included (``requant="fbgemm"``, bit-exact with ORT and
             PyTorch: tests/test_intconv_ort.py, tests/test_intconv_torch.py);
- conv2d   : the one-shot ``qtheory.intconv.conv2d`` (validates and packs the weights on every call);
- ORT      : ONNX Runtime ``QLinearConv`` (a one-node model built with ``onnx.helper``; MLAS kernels),
             session with ``intra_op_num_threads``; on x86 CPUs without VNNI its default kernel adds
             uint8×int8 products in saturating int16 pairs (not exact), so
- ORT-x64  : the same session with ``session.x64quantprecision=1`` (there: weights rewritten to
             uint8, exact int32 accumulation; on VNNI CPUs the same kernel as ORT);
- fbgemm   : ``torch.ao.nn.quantized.functional.conv2d`` on quint8/qint8 (engine "fbgemm"), if installed;
- float32  : ``torch.nn.functional.conv2d``, if torch is installed;

and the ratios qtheory/ORT, qtheory/fbgemm, measured side by side in one run: the calls are
interleaved, rounds go over all shapes, and each call keeps its best time over ``--reps`` rounds,
so that load from other processes on the machine affects all alike. ``--threads 1`` (the
default) compares one core each.

Run: ``python benchmarks/bench_intconv.py [--reps 30] [--threads 1] [--requant fbgemm]``
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


def ort_qlinearconv(w, bias, x_scale, x_zero, w_scales, y_scale, y_zero, stride, pad, groups, threads=1,
                    exact=False):
    """An ONNX Runtime session of one QLinearConv (uint8 activations, int8 weights, int32 bias);
    ``exact``: with ``session.x64quantprecision=1`` (exact accumulation on CPUs without VNNI)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    ws = np.asarray(w_scales, np.float32)
    inits = [numpy_helper.from_array(np.array(x_scale, np.float32), "xs"),
             numpy_helper.from_array(np.array(x_zero, np.uint8), "xz"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(ws, "ws"),
             numpy_helper.from_array(np.zeros(ws.shape, np.int8), "wz"),
             numpy_helper.from_array(np.array(y_scale, np.float32), "ys"),
             numpy_helper.from_array(np.array(y_zero, np.uint8), "yz"),
             numpy_helper.from_array(np.asarray(bias, np.int32), "b")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            strides=list(stride), pads=[pad[0], pad[1], pad[0], pad[1]], group=groups,
                            kernel_shape=list(w.shape[2:]))
    graph = helper.make_graph([node], "qlinearconv", [helper.make_tensor_value_info("x", TensorProto.UINT8, None)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if exact:
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _callables(rng, requant, threads, N, C, H, W, K, k, s, p, g):
    """The timed calls on one layer shape, and its operation count."""
    from qtheory import Quantizer
    from qtheory.intconv import PackedConv2d, conv2d, per_channel, storage_zero_point

    xq = Quantizer(8, 6.0, grid="affine", beta=-2.0)
    wq = per_channel(8, rng.uniform(0.2, 0.6, K))
    yq = Quantizer(8, 20.0, grid="affine", beta=-20.0)
    x = rng.integers(0, 256, (N, C, H, W)).astype(np.uint8)
    w = rng.integers(-127, 128, (K, C // g, k, k)).astype(np.int8)
    bias = rng.integers(-1000, 1000, K).astype(np.int32)
    Ho = (H + 2 * p - k) // s + 1
    Wo = (W + 2 * p - k) // s + 1
    ops = 2.0 * N * K * Ho * Wo * (C // g) * k * k
    kw = dict(x_quant=xq, w_quant=wq, out_quant=yq, stride=s, padding=p, groups=g, requant=requant)
    layer = PackedConv2d(w, bias, **kw)
    fns = {"qtheory": lambda: layer(x), "conv2d": lambda: conv2d(x, w, bias, **kw)}
    try:
        for key, exact in (("ORT", False), ("ORT-x64", True)):
            sess = ort_qlinearconv(w, bias, xq.scale, storage_zero_point(xq), [q.scale for q in wq], yq.scale,
                                   storage_zero_point(yq), (s, s), (p, p), g, threads or 1, exact=exact)
            fns[key] = lambda sess=sess: sess.run(None, {"x": x})
    except ImportError:
        pass
    try:
        import torch
        import torch.ao.nn.quantized.functional as qF
    except ImportError:
        return fns, ops
    tx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), xq.scale, storage_zero_point(xq))
    tw = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(w), torch.tensor([q.scale for q in wq], dtype=torch.float64),
        torch.zeros(K, dtype=torch.long), 0)
    tb = torch.from_numpy(bias.astype(np.float32) * xq.scale * np.array([q.scale for q in wq], np.float32))
    zo = storage_zero_point(yq)
    fns["fbgemm"] = lambda: qF.conv2d(tx, tw, tb, stride=s, padding=p, groups=g, scale=yq.scale, zero_point=zo)
    fx = torch.from_numpy(x.astype(np.float32))
    fw = torch.from_numpy(w.astype(np.float32))
    fb = torch.from_numpy(bias.astype(np.float32))
    fns["float32"] = lambda: torch.nn.functional.conv2d(fx, fw, fb, stride=s, padding=p, groups=g)
    return fns, ops


def main(reps: int = 30, requant: str = "fbgemm", threads: int | None = 1) -> list[dict]:
    import numba

    from qtheory.intconv import _VNNI
    from qtheory.kernels import intconv_vnni

    warnings.filterwarnings("ignore", category=UserWarning)  # torch's quantized-tensor deprecation notice
    try:
        import torch

        torch.backends.quantized.engine = "fbgemm"
        if threads:
            torch.set_num_threads(threads)
        ctx = torch.inference_mode
        tv = torch.__version__
    except ImportError:
        import contextlib

        ctx = contextlib.nullcontext
        tv = "not installed"
    if threads:
        numba.set_num_threads(threads)
    try:
        import onnxruntime

        ov = onnxruntime.__version__
    except ImportError:
        ov = "not installed"
    rng = np.random.default_rng(0)
    print(f"onnxruntime {ov}, torch {tv}; threads {threads or 'default'}; numba {numba.get_num_threads()}; "
          f"VNNI kernels: {bool(_VNNI and intconv_vnni.HAVE_VNNI)}; qtheory requant={requant!r}; best of {reps}")
    cases = []
    for name, N, C, H, W, K, k, s, p, g in SHAPES:
        fns, ops = _callables(rng, requant, threads, N, C, H, W, K, k, s, p, g)
        for f in fns.values():  # warm-up (numba compilation, packing caches)
            f()
        cases.append((name, fns, ops, dict.fromkeys(fns, np.inf)))
    # rounds over all shapes, so that a burst of load from elsewhere hits one round, not one shape
    with ctx():
        for _ in range(reps):
            for _name, fns, _ops, best in cases:
                for key, f in fns.items():
                    t0 = time.perf_counter()
                    f()
                    best[key] = min(best[key], time.perf_counter() - t0)
    keys = list(cases[0][1])
    ratios = [r for r in ("ORT", "ORT-x64", "fbgemm") if r in keys]
    print(f"{'shape':24s}" + "".join(f"{key:>9s}" for key in keys) + "   "
          + "".join(f"{'q/' + r:>10s}" for r in ratios) + "  (GOP/s)")
    rows = []
    for name, _fns, ops, best in cases:
        gops = {key: ops / t / 1e9 for key, t in best.items()}
        row = {"shape": name, **gops, **{f"q/{r}": gops["qtheory"] / gops[r] for r in ratios}}
        rows.append(row)
        print(f"{name:24s}" + "".join(f"{gops[key]:9.1f}" for key in keys) + "   "
              + "".join(f"{row['q/' + r]:10.2f}" for r in ratios))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--requant", default="fbgemm")
    ap.add_argument("--threads", type=int, default=1, help="threads for all (0: each library's default)")
    args = ap.parse_args()
    main(args.reps, args.requant, args.threads or None)
