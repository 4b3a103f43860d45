"""The realnets computations (weights, activations, ORT calibrators, QDQ ladder, prediction, integer
kernels), kept apart from the report text so that the repro, the notebook and the tests share them.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from qtheory import Quantizer
from qtheory.calibrate import aciq_clip, calibrate, max_clip, octav_clip
from qtheory.empirical import EmpiricalMSE, per_channel_optimal_clip

#: calibrators by their label in the tables: ``{label: (qtheory.calibrate method, keywords)}``
CALIBRATORS = {"max": ("max", {}), "percentile": ("percentile", {}), "entropy": ("entropy", {}), "mse": ("mse", {}),
               "octav": ("octav", {}), "aciq(family=laplace)": ("aciq", {"family": "laplace"}),
               "aciq(family=gaussian)": ("aciq", {"family": "gaussian"}),
               "aciq(family=auto)": ("aciq", {"family": "auto"}), "exact": ("exact", {})}
WEIGHT_METHODS = tuple(CALIBRATORS)
CHANNEL_METHODS = ("max", "octav", "aciq(family=laplace)", "aciq(family=gaussian)", "exact")
ACT_METHODS = ("max", "percentile", "entropy", "mse", "octav", "aciq(family=auto)", "exact")
ORT_METHODS = ("MinMax", "Entropy", "Percentile", "Distribution")


def clip(x, bits: int, label: str, grid: str) -> float:
    """The clip of the calibrator labelled ``label`` (:data:`CALIBRATORS`) for ``x`` on ``grid``."""
    method, kw = CALIBRATORS[label]
    return calibrate(x, bits, method, grid=grid, **kw).alpha


def channel_clip(x, bits: int, label: str, grid: str) -> float:
    """:func:`clip` of the per-channel calibrators (:data:`CHANNEL_METHODS` but 'exact') through their own
    clip functions, the ones :func:`qtheory.calibrate.calibrate` calls (the same clip, without the exact MSE
    ``calibrate`` adds, which the per-channel table computes for all channels at once)."""
    method, kw = CALIBRATORS[label]
    if method == "max":
        return max_clip(x)
    if method == "octav":
        return octav_clip(x, bits, grid=grid, **kw)
    return aciq_clip(x, bits, grid=grid, **kw)


def sqnr_db(signal_power, noise_power) -> float:
    return float(10.0 * np.log10(signal_power / noise_power)) if noise_power > 0 else math.inf


# ============================================================================ 1. weights
def prior_fit(w) -> dict:
    """Laplace vs Gaussian maximum-likelihood fit (mean log-likelihood per weight), excess kurtosis."""
    x = np.asarray(w, np.float64).ravel()
    mu = np.median(x)
    b = np.mean(np.abs(x - mu))
    sd = np.std(x)
    ll_lap = -math.log(2 * b) - 1.0
    ll_gau = -0.5 * math.log(2 * math.pi * sd * sd) - 0.5
    kurt = float(np.mean((x - x.mean()) ** 4) / sd**4 - 3.0)
    return {"n": x.size, "kurtosis": kurt, "ll_laplace": ll_lap, "ll_gaussian": ll_gau,
            "prior": "laplace" if ll_lap > ll_gau else "gaussian", "max_over_b": float(np.max(np.abs(x - mu)) / b)}


def _narrow_mse_rows(rows2d, alphas, bits):
    """Per-row MSE of the symmetric narrow grid (qtheory.Quantizer semantics, vectorised)."""
    m = 2 ** (bits - 1) - 1
    s = (np.asarray(alphas, np.float64) / m)[:, None]
    q = np.clip(np.round(rows2d / s), -m, m) * s
    return np.mean((q - rows2d) ** 2, axis=1), np.mean(np.where(np.abs(rows2d) > (m + 0.5) * s, (q - rows2d) ** 2,
                                                               0.0), axis=1)


#: per-channel analysis on at most this many channels per layer (evenly spaced), to stay CI-sized
MAX_CHANNELS = 16


def flush_subnormals(w) -> tuple[np.ndarray, int]:
    """float32 subnormal weights (|w| < 1.18e-38, found in the PP-OCRv4 detector) set to 0; their count."""
    w = np.asarray(w, np.float32)
    sub = (w != 0) & (np.abs(w) < np.finfo(np.float32).tiny)
    return np.where(sub, np.float32(0), w), int(sub.sum())


def weight_rows(net: str, layer: dict, bits=(4, 8), channel: bool = True, max_channels: int = MAX_CHANNELS
                ) -> list[dict]:
    w = flush_subnormals(layer["w"])[0].astype(np.float64)
    x = w.ravel()
    prep = EmpiricalMSE(x)
    power = float(np.mean(x * x))
    rows = []
    for b in bits:
        res = {}
        for m in WEIGHT_METHODS:
            a = clip(x, b, m, "narrow")
            c, r = prep.mse_quantizer(Quantizer(b, a, "narrow"))
            res[m] = (a, c + r, c)
        best = res["exact"][1]
        for m, (a, mse, clip_mse) in res.items():
            rows.append({"net": net, "layer": layer["layer"], "kind": layer["kind"], "bits": b,
                         "granularity": "tensor", "method": m, "alpha": a, "mse": mse,
                         "clip_share": clip_mse / mse if mse > 0 else 0.0, "sqnr_db": sqnr_db(power, mse),
                         "loss_vs_exact_db": 10 * np.log10(mse / best)})
        if not channel or w.ndim < 2:
            continue
        ch = w.reshape(w.shape[0], -1)
        if ch.shape[0] > max_channels:
            ch = ch[np.linspace(0, ch.shape[0] - 1, max_channels).round().astype(int)]
        ch = ch[np.any(ch != 0, axis=1)]
        power = float(np.mean(ch * ch))
        res = {}
        for m in CHANNEL_METHODS:
            if m == "exact":
                a = per_channel_optimal_clip(ch, b, axis=0, grid="narrow").alpha
            else:
                a = np.array([channel_clip(r, b, m, "narrow") if np.any(r) else 1.0 for r in ch])
            a = np.where(np.isfinite(a) & (a > 0), a, 1.0)
            mse, clip_mse = _narrow_mse_rows(ch, a, b)
            res[m] = (float(np.mean(a)), float(mse.mean()), float(clip_mse.mean()))
        best = res["exact"][1]
        for m, (a, mse, clip_mse) in res.items():
            rows.append({"net": net, "layer": layer["layer"], "kind": layer["kind"], "bits": b,
                         "granularity": "channel", "method": m, "alpha": a, "mse": mse,
                         "clip_share": clip_mse / mse if mse > 0 else 0.0, "sqnr_db": sqnr_db(power, mse),
                         "loss_vs_exact_db": 10 * np.log10(mse / best)})
    return rows


def aciq_tail(layer: dict, bits: int = 8) -> dict:
    """Why ACIQ's 8-bit clip fails: weights beyond ACIQ's Laplace clip, observed vs the Laplace fit."""
    x = np.asarray(layer["w"], np.float64).ravel()
    b = np.mean(np.abs(x - x.mean()))
    a = clip(x, bits, "aciq(family=laplace)", "narrow")
    obs = int(np.sum(np.abs(x) > a))
    expected = x.size * math.exp(-a / b)
    return {"alpha_over_b": a / b, "beyond": obs, "expected_laplace": expected}


def weight_tables(nets_layers: dict, bits=(4, 8), channel: bool = True, max_channels: int = MAX_CHANNELS):
    """``nets_layers``: {net: [layer dicts]} -> (per-layer fits, per (layer, bits, granularity, method) rows)."""
    fits, rows = [], []
    for net, layers in nets_layers.items():
        for lay in layers:
            w, n_sub = flush_subnormals(lay["w"])
            f = prior_fit(w)
            f.update(aciq_tail({"w": w}))
            f["subnormal"] = n_sub
            fits.append({"net": net, "layer": lay["layer"], "kind": lay["kind"], "shape": lay["shape"], **f})
            rows += weight_rows(net, lay, bits, channel, max_channels)
    return pd.DataFrame(fits), pd.DataFrame(rows)


# ============================================================================ 2. activations
def affine_for(lo: float, hi: float, bits: int = 8) -> Quantizer:
    """ONNX Runtime's uint affine quantizer for a range (the range is widened to hold 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi <= 0.0:
        hi = 1e-12 if lo == 0.0 else -lo * 1e-6
    return Quantizer(bits, hi, "affine", beta=lo)


def scale_zp(lo: float, hi: float, bits: int = 8) -> tuple[float, int]:
    q = affine_for(lo, hi, bits)
    return q.scale, -q.qmin


def exact_affine(prep: EmpiricalMSE, lo: float, hi: float, bits: int = 8):
    """(β, α) minimising the exact empirical MSE of the uint affine grid: the proven global optimum
    over every step and zero point (:meth:`qtheory.EmpiricalMSE.optimal_range`). Non-negative tensors
    use the exact optimum of the unsigned grid (β = 0); an all-negative tensor keeps its range."""
    if lo >= 0.0:
        return 0.0, float(prep.optimal_clip(bits, grid="unsigned").alpha)
    if hi <= 0.0:  # an all-negative tensor (rare: an SE squeeze conv's output): the range is kept
        return lo, 0.0
    return prep.optimal_range(bits)


def qtheory_ranges(x, bits: int = 8, methods=ACT_METHODS) -> dict:
    """{method: (β, α)} for a calibration tensor. Non-negative tensors: the unsigned-grid clip of each
    calibrator. Signed tensors: each symmetric calibrator's clip intersected with the observed range;
    'exact' is the exact asymmetric (β, α) of :func:`exact_affine`."""
    x = np.asarray(x, np.float64).ravel()
    lo, hi = float(x.min()), float(x.max())
    prep = EmpiricalMSE(x)
    out = {}
    for m in methods:
        if m == "exact":
            out[m] = exact_affine(prep, lo, hi, bits)
        elif lo >= 0.0:
            out[m] = (0.0, clip(x, bits, m, "unsigned"))
        elif m == "max":
            out[m] = (lo, hi)
        elif m == "percentile":
            out[m] = (float(np.percentile(x, 0.01)), float(np.percentile(x, 99.99)))
        else:
            a = clip(x, bits, m, "narrow")
            out[m] = (max(lo, -a), min(hi, a))
    return out


def _reader(batches):
    """An ONNX Runtime CalibrationDataReader feeding each batch as the input ``x``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"x": b}

    return Reader()


def ort_ranges(model, tensors, batches, methods=ORT_METHODS) -> dict:
    """{method: {tensor: (lo, hi)}} from onnxruntime.quantization.calibrate's calibrators (defaults)."""
    import contextlib
    import io

    import onnx
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    out = {}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.onnx"
        onnx.save(model, str(path))
        for m in methods:
            with contextlib.redirect_stdout(io.StringIO()):
                cal = create_calibrator(str(path), ["Conv"], augmented_model_path=str(Path(d) / f"aug_{m}.onnx"),
                                        calibrate_method=getattr(CalibrationMethod, m),
                                        extra_options={"symmetric": False} if m == "MinMax" else {})
                cal.collect_data(_reader(batches))
                td = cal.compute_data()
            out[m] = {t: tuple(float(np.ravel(v)[0]) for v in td[t].range_value) for t in tensors if t in td.data}
    return out


def activation_table(calib: dict, held: dict, ort: dict | None = None, bits: int = 8) -> pd.DataFrame:
    """One row per (tensor, method): calibration range, held-out and in-sample MSE/SQNR."""
    rows = []
    for t, xc in calib.items():
        xc = np.asarray(xc, np.float64).ravel()
        xh = np.asarray(held[t], np.float64).ravel()
        ph, pc = EmpiricalMSE(xh), EmpiricalMSE(xc)
        powh, powc = float(np.mean(xh * xh)), float(np.mean(xc * xc))
        ranges = {f"qt:{m}": r for m, r in qtheory_ranges(xc, bits).items()}
        if ort:
            ranges.update({f"ort:{m}": ort[m][t] for m in ort if t in ort[m]})
        orc = exact_affine(ph, float(xh.min()), float(xh.max()), bits)
        ranges["oracle:held-out exact"] = orc
        for m, (lo, hi) in ranges.items():
            q = affine_for(lo, hi, bits)
            eh = float(ph.error_sums([q]).sum()) / ph.n
            ec = float(pc.error_sums([q]).sum()) / pc.n
            rows.append({"tensor": t, "signed": bool(xc.min() < 0), "method": m, "beta": lo, "alpha": hi,
                         "held_sqnr_db": sqnr_db(powh, eh), "calib_sqnr_db": sqnr_db(powc, ec)})
    return pd.DataFrame(rows)


# ============================================================================ 5. integer kernels
def _qlinearconvs(qmodel, x):
    """The QLinearConv nodes of a QOperator model, its initializers and each node's uint8 input and
    output from ONNX Runtime's default kernels (unoptimised session, no ``x64quantprecision``)."""
    import realnets_nets as nets
    from onnx import numpy_helper

    g = qmodel.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    qconvs = [n for n in g.node if n.op_type == "QLinearConv"]
    need = sorted({n.input[0] for n in qconvs} | {n.output[0] for n in qconvs})
    return qconvs, inits, nets.Runner(qmodel, need, exact_int8=False)(x)


def qlinearconv_check(qmodel, x, requant: str = "fbgemm") -> pd.DataFrame:
    """Every QLinearConv of a QOperator model vs qtheory.intconv.conv2d on the same integer inputs."""
    import realnets_nets as nets

    from qtheory.intconv import conv2d

    qconvs, inits, vals = _qlinearconvs(qmodel, x)
    rows = []
    for k, n in enumerate(qconvs):
        xs, xz, w, ws, wz, ys, yz = (inits.get(i) for i in n.input[1:8])
        bias = inits.get(n.input[8]) if len(n.input) > 8 else None
        row = {"conv": f"conv{k:02d}", "shape": "x".join(map(str, w.shape)), "groups": int(nets._attr(n, "group", 1)),
               "x_zero_point": int(xz), "y_zero_point": int(yz), "w_min": int(w.min()), "w_max": int(w.max())}
        if int(xz) == 255 or int(yz) == 255:
            # a range entirely <= 0: qtheory.Quantizer needs alpha > 0, so this conv has no description
            rows.append({**row, "outputs": 0, "equal": 0, "max_lsb": -1})
            continue
        xq_ = Quantizer(8, float(xs) * (255 - int(xz)), "affine", beta=-float(xs) * int(xz))
        yq_ = Quantizer(8, float(ys) * (255 - int(yz)), "affine", beta=-float(ys) * int(yz))
        ws = np.atleast_1d(ws).astype(np.float64)
        wq_ = [Quantizer(8, float(s) * 127.0, "narrow") for s in ws]
        if int(xz) != -xq_.qmin or int(yz) != -yq_.qmin or np.any(wz):
            raise AssertionError(f"zero points of {n.name} not reproduced by qtheory.Quantizer")
        a = nets._attr
        stride = tuple(a(n, "strides", [1, 1]))
        pads = tuple(a(n, "pads", [0, 0, 0, 0]))
        y = conv2d(vals[n.input[0]], w.astype(np.int8), bias, x_quant=xq_,
                   w_quant=wq_ if len(wq_) > 1 else wq_[0], out_quant=yq_, stride=stride,
                   padding=(pads[0], pads[1]), dilation=tuple(a(n, "dilations", [1, 1])),
                   groups=int(a(n, "group", 1)), requant=requant)
        ref = vals[n.output[0]]
        d = np.abs(y.astype(int) - ref.astype(int))
        rows.append({**row, "outputs": int(ref.size), "equal": int(np.sum(d == 0)), "max_lsb": int(d.max())})
    return pd.DataFrame(rows)


def _u8s8_accumulators(x, w, xz: int, bias, stride, pads, dilation, groups: int, int16_pairs: bool):
    """int32 accumulators of a uint8 x int8 convolution, exact or as the pre-VNNI x86 GEMM forms them.

    The reduction runs over K = (kernel row, kernel column, input channel), input channel fastest
    (ONNX Runtime's im2col/NHWC order); padded taps hold the input zero point. With ``int16_pairs``,
    K is padded with a zero to an even length and each pair of neighbouring products x·w is added in
    int16 with saturation (``vpmaddubsw``) before the pairs are summed in int32. The zero point then
    enters exactly, as −z_x·Σw per output channel, and the int32 bias last. Also returns how many
    pair sums saturated.
    """
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    N = x.shape[0]
    Co, Cg, KH, KW = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=xz)
    Ho = (xp.shape[2] - dh * (KH - 1) - 1) // sh + 1
    Wo = (xp.shape[3] - dw * (KW - 1) - 1) // sw + 1
    acc = np.empty((N, Co, Ho, Wo), np.int64)
    saturated = 0
    Og = Co // groups
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        taps = [xg[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw]
                for i in range(KH) for j in range(KW)]
        cols = np.stack(taps, axis=1).transpose(0, 3, 4, 1, 2).reshape(N, Ho, Wo, KH * KW * Cg)
        wk = w[g * Og:(g + 1) * Og].transpose(0, 2, 3, 1).reshape(Og, KH * KW * Cg)
        if int16_pairs:
            if wk.shape[1] % 2:
                cols = np.concatenate([cols, np.zeros(cols.shape[:3] + (1,), np.int64)], axis=3)
                wk = np.concatenate([wk, np.zeros((Og, 1), np.int64)], axis=1)
            prod = cols[:, :, :, None, :] * wk  # (N, Ho, Wo, Og, K)
            pairs = prod[..., 0::2] + prod[..., 1::2]
            clipped = np.clip(pairs, -(2**15), 2**15 - 1)
            saturated += int(np.count_nonzero(clipped != pairs))
            dot = clipped.sum(axis=-1)
        else:
            dot = cols @ wk.T
        acc[:, g * Og:(g + 1) * Og] = (dot - xz * wk.sum(axis=1)).transpose(0, 3, 1, 2)
    if bias is not None:
        acc += np.asarray(bias, np.int64)[None, :, None, None]
    return acc, saturated


def qlinearconv_int16_check(qmodel, x) -> pd.DataFrame:
    """Every QLinearConv of a QOperator model vs a numpy model of ONNX Runtime's uint8 x int8 kernels
    on x86 CPUs without VNNI: pairs of products saturated to int16 in the GEMM convolutions
    (``_u8s8_accumulators``), exact int32 in the depthwise ones (MLAS's depthwise kernel); then ORT's
    requantisation (float32 multiplier s_x·s_w/s_y, round half to even, + z_y, clamp to uint8).
    ``equal``/``max_lsb``: this model vs ORT; ``saturated_pairs``: pair sums that left int16;
    ``differs_from_exact``: outputs on which the model and the exact int32 convolution disagree."""
    import realnets_nets as nets

    qconvs, inits, vals = _qlinearconvs(qmodel, x)
    a = nets._attr
    rows = []
    for k, n in enumerate(qconvs):
        xs, xz, w, ws, wz, ys, yz = (inits.get(i) for i in n.input[1:8])
        if np.any(wz):
            raise AssertionError(f"{n.name}: the model assumes symmetric weights (zero point 0)")
        groups = int(a(n, "group", 1))
        args = (vals[n.input[0]], w, int(xz), inits.get(n.input[8]) if len(n.input) > 8 else None,
                tuple(a(n, "strides", [1, 1])), tuple(a(n, "pads", [0, 0, 0, 0])),
                tuple(a(n, "dilations", [1, 1])), groups)
        mult = (np.float32(xs) * np.atleast_1d(ws).astype(np.float32) / np.float32(ys)).astype(np.float32)
        y = {}
        for pairs in (False, True):
            acc, sat = _u8s8_accumulators(*args, int16_pairs=pairs)
            q = np.rint(acc.astype(np.float32) * mult[None, :, None, None]).astype(np.int64) + int(yz)
            y[pairs] = np.clip(q, 0, 255)
        depthwise = w.shape[1] == 1 and w.shape[0] == groups
        model = y[False] if depthwise else y[True]
        d = np.abs(model - vals[n.output[0]].astype(np.int64))
        rows.append({"conv": f"conv{k:02d}", "shape": "x".join(map(str, w.shape)), "groups": groups,
                     "depthwise": bool(depthwise), "outputs": int(d.size), "equal": int(np.sum(d == 0)),
                     "max_lsb": int(d.max()), "saturated_pairs": 0 if depthwise else sat,
                     "differs_from_exact": int(np.sum(model != y[False]))})
    return pd.DataFrame(rows)


def quantize_ort(model, batches, method: str = "MinMax", fmt: str = "QDQ", overrides: dict | None = None,
                 per_channel: bool = True, nodes_exclude=None, weight_type: str = "QInt8",
                 reduce_range: bool = False):
    """onnxruntime.quantization.quantize_static: uint8 activations, int8 (per-channel) weights, Conv only.
    ``overrides``: {tensor: (lo, hi)} written as TensorQuantOverrides rmin/rmax."""
    import contextlib
    import io

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if overrides:
        extra["TensorQuantOverrides"] = {t: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
                                         for t, (lo, hi) in overrides.items()}
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        onnx.save(model, str(src))
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(str(src), str(dst), _reader(batches), quant_format=getattr(QuantFormat, fmt),
                            op_types_to_quantize=["Conv"], per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=getattr(QuantType, weight_type),
                            calibrate_method=getattr(CalibrationMethod, method), extra_options=extra,
                            reduce_range=reduce_range,
                            nodes_to_exclude=nodes_exclude or [])
        return onnx.load(str(dst))


# ============================================================================ 3. end to end
def output_tensor(model) -> str:
    """The logits: the input of the final Softmax (classifier) or Sigmoid (detector)."""
    for n in model.graph.node:
        if n.op_type in ("Softmax", "Sigmoid") and n.output[0] == model.graph.output[0].name:
            return n.input[0]
    return model.graph.output[0].name


def compare_outputs(ref: np.ndarray, out: np.ndarray, classify: bool) -> dict:
    ref = np.asarray(ref, np.float64)
    out = np.asarray(out, np.float64)
    row = {"out_sqnr_db": sqnr_db(np.sum(ref * ref), np.sum((out - ref) ** 2))}
    if classify:
        row["top1_agreement_pct"] = 100.0 * float(np.mean(ref.argmax(axis=1) == out.argmax(axis=1)))
    return row


def qdq_activation_tensors(qmodel) -> list[str]:
    """Float tensors that a QDQ model quantizes (inputs of its QuantizeLinear nodes)."""
    inits = {i.name for i in qmodel.graph.initializer}
    return list(dict.fromkeys(n.input[0] for n in qmodel.graph.node
                              if n.op_type == "QuantizeLinear" and n.input[0] not in inits))


_EXACT_RANGES: dict = {}  # (digest of the values, bits) -> exact range: the ladder and the prediction
#                           section compute it for the same calibration subsample


def act_range(x, bits: int, method: str) -> tuple[float, float]:
    """(β, α) of one activation tensor: 'max' (MinMax), 'aciq' (ACIQ's auto-family clip; signed tensors:
    the symmetric clip intersected with the observed range), 'exact' (:func:`exact_affine`)."""
    x = np.asarray(x, np.float64).ravel()
    lo, hi = float(x.min()), float(x.max())
    if method == "max":
        return lo, hi
    if method == "exact":
        key = (hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest(), x.size, bits)
        if key not in _EXACT_RANGES:
            _EXACT_RANGES[key] = exact_affine(EmpiricalMSE(x), lo, hi, bits)
        return _EXACT_RANGES[key]
    if lo >= 0.0:
        return 0.0, clip(x, bits, "aciq(family=auto)", "unsigned")
    a = clip(x, bits, "aciq(family=auto)", "narrow")
    return max(lo, -a), min(hi, a)


#: the ladder of Banner et al.'s Table 1, cumulative: (label, weight kwargs of quantize_channels, act method)
LADDER = (
    ("naive max", dict(granularity="tensor", clip="max"), "max"),
    ("+ ACIQ clip", dict(granularity="tensor", clip="laplace"), "aciq"),
    ("+ exact clip", dict(granularity="tensor", clip="optimal"), "exact"),
    ("+ per-channel", dict(granularity="channel", clip="optimal"), "exact"),
    ("+ Banner allocation", dict(granularity="channel", clip="optimal", allocation="closed_form", budget="bins"),
     "exact"),
    ("+ bias correction", dict(granularity="channel", clip="optimal", allocation="closed_form", budget="bins",
                               correction="mean"), "exact"),
)


def quantized_weights(layers, bits: int, kwargs: dict, memo: dict | None = None) -> dict:
    """{weight name: fake-quantized weights} by :func:`qtheory.allocation.quantize_channels` (narrow grid,
    at most 8 bits per channel). ``memo`` ({layer: {}}) shares per-channel clips between calls through
    ``quantize_channels``' ``_memo`` hook (the clips do not depend on the rung)."""
    from qtheory.allocation import quantize_channels

    out = {}
    for lay in layers:
        w = flush_subnormals(lay["w"])[0].astype(np.float64)
        if kwargs.get("granularity") == "tensor" and kwargs.get("clip") == "optimal":
            # the per-tensor exact optimum from qtheory.empirical (exact and O(N), unlike the clip scan)
            q = Quantizer(bits, calibrate(w, bits, "exact", grid="narrow").alpha, "narrow")
            out[lay["weight"]] = q.quantize(w).astype(np.float32)
            continue
        extra = {} if memo is None else {"_memo": memo.setdefault(lay["weight"], {})}
        out[lay["weight"]] = quantize_channels(w, bits, grid="narrow", max_bits=8, **kwargs, **extra
                                               ).w_q.astype(np.float32)
    return out
