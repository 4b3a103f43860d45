"""Benchmark: whole-model calibration of a real detector, qtheory's exact ranges vs ONNX Runtime's Percentile.

The model is the PP-OCRv4 text detector of ``rapidocr-onnxruntime`` (``ch_PP-OCRv4_det_infer.onnx``,
located without importing the package), prepared once as both pipelines need it
(``qtheory.models.prepare_for_ort``: Constant-node weights moved to initializers, opset 13 for
per-channel QDQ; ONNX Runtime quantizes only initializers as weights). The calibration images are
``skimage.data`` images, centre-cropped to squares of ``--side`` pixels and normalised as rapidocr
does (those of the realnets reproduction's calibration set).

Timed side by side in one run, each from the prepared model file to a QDQ model:

- ONNX Runtime: ``onnxruntime.quantization.quantize_static(..., calibrate_method=
  CalibrationMethod.Percentile, per_channel=True)`` (uint8 asymmetric activations, int8 symmetric
  per-channel weights), the pipeline a user runs; its calibration alone
  (``create_calibrator(..., CalibrationMethod.Percentile)`` + ``collect_data`` + ``compute_data``)
  is printed too;
- qtheory, exact everywhere: ``onnx_observers(model, feeds)`` (the tensors ONNX Runtime
  calibrates), ``Observer.range("exact")`` for each (the exact affine optimum of the collected
  values), ``per_channel_optimal_clip(W, 8, axis=..., grid="narrow")`` for every conv weight, then
  ``quantize_onnx(model, out, ranges, clips)``.

Printed: the time of every stage, the total and its ratio to ONNX Runtime's pipeline (issue 12,
target 5: <= 2x). On a shared machine compare the ratios of one run.

Usage: ``python benchmarks/bench_model_calibration.py [--side 160] [--images 9] [--repeat R]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import os
import tempfile
import time

import numpy as np

IMAGES = ("text", "astronaut", "coffee", "camera", "rocket", "coins", "brick", "immunohistochemistry", "clock")


def detector_path():
    spec = importlib.util.find_spec("rapidocr_onnxruntime")  # (located, never imported)
    if spec is None:
        raise SystemExit("needs rapidocr-onnxruntime's model files: pip install --no-deps rapidocr-onnxruntime")
    return os.path.join(os.path.dirname(spec.origin), "models", "ch_PP-OCRv4_det_infer.onnx")


def feeds(names, side):
    """``[{"x": (1, 3, side, side) float32}]``: centre crops resized, BGR, (x/255 − 0.5)/0.5."""
    import skimage.data
    from skimage.transform import resize

    out = []
    for name in names:
        im = np.asarray(getattr(skimage.data, name)())
        if im.ndim == 2:
            im = np.repeat(im[:, :, None], 3, axis=2)
        im = im[:, :, :3]
        h, w = im.shape[:2]
        m = min(h, w)
        crop = im[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
        x = resize(crop, (side, side), order=1, mode="edge", anti_aliasing=False, preserve_range=True)
        x = (x[:, :, ::-1] / 255.0 - 0.5) / 0.5
        out.append({"x": np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)})
    return out


def qtheory_pipeline(model, data, out):
    from qtheory.empirical import per_channel_optimal_clip
    from qtheory.models import onnx_observers, quantize_onnx, read_onnx

    t = {"start": time.perf_counter()}
    obs = onnx_observers(model, data)
    t["observe"] = time.perf_counter()
    ranges = {}
    for name, o in obs.items():
        r = o.range("exact")
        ranges[name] = (r.beta, r.alpha)
    t["activation ranges"] = time.perf_counter()
    clips = {w.name: per_channel_optimal_clip(w.array(), 8, axis=w.channel_axis, grid="narrow").alpha
             for w in read_onnx(model) if w.role == "conv_weight"}
    t["weight clips"] = time.perf_counter()
    quantize_onnx(model, out, ranges, clips)
    t["quantize_onnx"] = time.perf_counter()
    keys = list(t)
    stages = {k: t[k] - t[p] for p, k in zip(keys, keys[1:], strict=False)}
    return t[keys[-1]] - t["start"], stages, obs


def _reader(data):
    """ONNX Runtime's calibration data reader over a list of feeds (one per image)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(data)

        def get_next(self):
            return next(self.it, None)

    return Reader()


def ort_pipeline(model, data, out):
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        quantize_static,
    )

    t = time.perf_counter()
    quantize_static(model, out, _reader(data), quant_format=QuantFormat.QDQ, per_channel=True,
                    calibrate_method=CalibrationMethod.Percentile,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return time.perf_counter() - t


def ort_calibration(model, data, tmp):
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    t = time.perf_counter()
    cal = create_calibrator(model, sorted(set(QDQRegistry) | set(QLinearOpsRegistry)),
                            augmented_model_path=os.path.join(tmp, "aug.onnx"),
                            calibrate_method=CalibrationMethod.Percentile)
    cal.collect_data(_reader(data))
    ranges = cal.compute_data()
    return time.perf_counter() - t, len(ranges.data)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=160)
    ap.add_argument("--images", type=int, default=len(IMAGES))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    import onnx

    from qtheory.models import prepare_for_ort

    logging.getLogger().setLevel(logging.ERROR)  # (ONNX Runtime's pre-processing advice, per call)
    data = feeds(IMAGES[:args.images], args.side)
    with tempfile.TemporaryDirectory(prefix="bench_model_calibration.") as tmp:
        model = os.path.join(tmp, "det.onnx")
        onnx.save(prepare_for_ort(detector_path()), model)
        # warm-up: numba kernels compiled or loaded, ONNX Runtime and onnx imported
        qtheory_pipeline(model, data[:1], os.path.join(tmp, "warm.onnx"))
        best = {}
        for _ in range(args.repeat):
            with contextlib.redirect_stdout(io.StringIO()):
                t_ort = ort_pipeline(model, data, os.path.join(tmp, "ort.onnx"))
                t_cal, n_ort = ort_calibration(model, data, tmp)
            t_qt, stages, obs = qtheory_pipeline(model, data, os.path.join(tmp, "qt.onnx"))
            for k, v in (("ort", t_ort), ("ort_cal", t_cal), ("qt", t_qt), *stages.items()):
                best[k] = min(best.get(k, np.inf), v)
        n_values = sum(o.n for o in obs.values())
        print(f"PP-OCRv4 detector, {len(data)} images {args.side}x{args.side}: {len(obs)} activation tensors "
              f"({n_values / 1e6:.1f} M values; ONNX Runtime calibrates {n_ort})")
        print(f"{'path':>48} {'time s':>8} {'/ ORT':>7}")
        print(f"{'ONNX Runtime quantize_static, Percentile':>48} {best['ort']:8.2f} {1.0:7.2f}")
        print(f"{'  of which: its calibration alone':>48} {best['ort_cal']:8.2f} {best['ort_cal'] / best['ort']:7.2f}")
        print(f"{'qtheory exact everywhere, total':>48} {best['qt']:8.2f} {best['qt'] / best['ort']:7.2f}")
        for k in stages:
            print(f"{'  ' + k:>48} {best[k]:8.2f} {best[k] / best['ort']:7.2f}")


if __name__ == "__main__":
    main()
