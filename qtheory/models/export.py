"""Export: ranges → ONNX Runtime / torch.ao scales and zero points, calibration caches, QDQ models.

ONNX Runtime's convention (``onnxruntime.quantization.quant_utils.compute_scale_zp``): the range
is widened to contain 0 (``rmin ← min(rmin, 0)``, ``rmax ← max(rmax, 0)``); symmetric ranges use
``±max(|rmin|, |rmax|)``; ``scale = (rmax − rmin)/(qmax − qmin)`` (float64, stored as float32) and
``zero_point = round(qmin − rmin/scale)`` (half to even; symmetric: ``round((qmin + qmax)/2)``),
with ``[qmin, qmax]`` = uint8 ``[0, 255]``, int8 ``[−128, 127]``, symmetric int8 ``[−127, 127]``,
``reduce_range`` uint8 ``[0, 127]`` / int8 ``[−64, 64]``.

A qtheory affine range ``[β, α]`` at 8 bits is the uint8 grid ``scale = (α − β)/255``,
``zero_point = round(−β/scale)``; a ``"narrow"`` clip ``α`` is the symmetric int8 grid
``scale = α/127``, ``zero_point = 0`` (both up to float32 rounding of the scale and the tie rule
of the zero point, which differ only on exact ties).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._io import atomic_path
from .._typing import ArrayLike, PathLike
from .._validation import check_bool, check_option, check_real, param_error

if TYPE_CHECKING:
    import onnx
    import torch
    import torch.ao.quantization

__all__ = ["ort_qparams", "ort_range", "QTYPES", "write_ort_calibration_cache", "tensor_quant_overrides",
           "quantize_onnx", "prepare_for_ort", "ort_calibration_tensors", "qdq_tensors", "qdq_scales", "torch_qparams", "torch_fake_quant"]

#: ONNX Runtime's integer ranges: {qtype: (full, symmetric, reduced)}
QTYPES = {
    "uint8": ((0, 255), (0, 255), (0, 127)),
    "int8": ((-128, 127), (-127, 127), (-64, 64)),
    "uint16": ((0, 65535), (0, 65535), (0, 32767)),
    "int16": ((-32768, 32767), (-32767, 32767), (-16384, 16384)),
}
_NP = {"uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16}


def _qrange(qtype, symmetric, reduce_range):
    full, sym, red = QTYPES[qtype]
    return red if reduce_range else (sym if symmetric else full)


def _range_arrays(beta, alpha, func):
    """``beta``, ``alpha`` as float32 arrays of one shape, finite (in float32) with ``beta <= alpha``."""
    try:
        with np.errstate(over="ignore"):  # (beyond float32: inf, rejected below)
            b, a = np.broadcast_arrays(np.asarray(beta, dtype=np.float32), np.asarray(alpha, dtype=np.float32))
    except (TypeError, ValueError):
        raise param_error("alpha", func, "range ends of one shape (or broadcastable), real numbers",
                          f"beta {np.shape(beta)}, alpha {np.shape(alpha)}") from None
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(a))):
        raise param_error("alpha", func, "finite range ends (within float32)", (beta, alpha))
    if np.any(b > a):
        raise param_error("beta", func, "range ends with beta <= alpha", (beta, alpha))
    return b, a


def ort_qparams(beta: ArrayLike, alpha: ArrayLike, qtype: str = "uint8", *, symmetric: bool = False,
                reduce_range: bool = False) -> tuple[np.ndarray | np.floating, np.ndarray | np.integer]:
    """``(scale, zero_point)`` of the range ``[beta, alpha]`` under ONNX Runtime's conventions.

    Vectorised over ``beta``/``alpha`` (per-channel ranges). ``scale`` is float32, ``zero_point``
    the integer type ``qtype``.

    Examples
    --------
    >>> s, z = ort_qparams(-0.375, 6.0)               # uint8 activations
    >>> float(s), int(z)
    (0.025, 15)
    >>> s, z = ort_qparams(-2.54, 2.54, "int8", symmetric=True)   # int8 weights
    >>> float(s), int(z)
    (0.02, 0)
    """
    func = "ort_qparams"
    qtype = check_option(qtype, "qtype", func, tuple(QTYPES))
    symmetric = check_bool(symmetric, "symmetric", func)
    reduce_range = check_bool(reduce_range, "reduce_range", func)
    qmin, qmax = _qrange(qtype, symmetric, reduce_range)
    b, a = _range_arrays(beta, alpha, func)
    rmin = np.minimum(b, np.float32(0))
    rmax = np.maximum(a, np.float32(0))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    scale = (rmax.astype(np.float64) - rmin.astype(np.float64)) / float(qmax - qmin)
    tiny = np.finfo(np.float32).tiny
    if symmetric:
        zp = np.full(scale.shape, np.round((qmin + qmax) / 2.0))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = np.round(qmin - rmin / scale)
    degenerate = scale < tiny
    scale = np.where(degenerate, 1.0, scale).astype(np.float32)
    zp = np.where(degenerate, 0, zp).astype(_NP[qtype])
    return (scale, zp) if scale.ndim else (scale[()], zp[()])


def ort_range(scale: ArrayLike, zero_point: ArrayLike, qtype: str = "uint8", *, symmetric: bool = False,
              reduce_range: bool = False) -> tuple[float | np.ndarray, float | np.ndarray]:
    """``(beta, alpha)``: the outermost levels of a scale / zero point (inverse of :func:`ort_qparams`).

    >>> ort_range(np.float32(0.025), np.uint8(15))
    (-0.375, 6.0)
    """
    func = "ort_range"
    qtype = check_option(qtype, "qtype", func, tuple(QTYPES))
    qmin, qmax = _qrange(qtype, symmetric, reduce_range)
    try:
        s, z = np.broadcast_arrays(np.asarray(scale, dtype=np.float64), np.asarray(zero_point, dtype=np.float64))
    except (TypeError, ValueError):
        raise param_error("zero_point", func, "a scale and zero point of one shape, real numbers",
                          f"scale {np.shape(scale)}, zero point {np.shape(zero_point)}") from None
    if not np.all(np.isfinite(s) & (s > 0)):
        raise param_error("scale", func, "finite scales > 0", scale)
    if not np.all((z == np.round(z)) & (z >= qmin) & (z <= qmax)):
        raise param_error("zero_point", func, f"integer zero points in [{qmin}, {qmax}] ({qtype})", zero_point)
    b, a = s * (qmin - z), s * (qmax - z)
    return (float(b), float(a)) if b.ndim == 0 else (b, a)


# ================================================================================ ORT files
def _tensors_data(ranges: dict):
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    data = {}
    for name, (b, a) in ranges.items():
        b = check_real(float(np.min(b)), "ranges", "write_ort_calibration_cache", high=np.inf)
        a = check_real(float(np.max(a)), "ranges", "write_ort_calibration_cache", low=-np.inf)
        if b > a:
            raise param_error("ranges", "write_ort_calibration_cache", "(beta, alpha) pairs with beta <= alpha",
                              (name, b, a))
        data[str(name)] = TensorData(lowest=np.float32(b), highest=np.float32(a))
    return TensorsData(CalibrationMethod.MinMax, data)


def write_ort_calibration_cache(ranges: dict, path: PathLike) -> Path:
    """Write ONNX Runtime's calibration cache (``TensorsData``, MinMax method) atomically.

    ``quantize_static(..., calibration_cache_path=path, calibrate_method=MinMax)`` then takes
    these ranges instead of calibrating.

    Parameters
    ----------
    ranges : dict
        ``{tensor name: (beta, alpha)}`` (ONNX Runtime's ``lowest`` and ``highest``).
    path : str or path

    Examples
    --------
    >>> import json, tempfile, os
    >>> p = write_ort_calibration_cache({"x": (-0.375, 6.0)}, os.path.join(tempfile.mkdtemp(), "c.json"))
    >>> from onnxruntime.quantization.calibrate import load_tensors_data
    >>> d = load_tensors_data(p).data["x"]
    >>> float(d.lowest), float(d.highest)
    (-0.375, 6.0)
    """
    from onnxruntime.quantization.calibrate import save_tensors_data

    td = _tensors_data(ranges)
    path = Path(path)
    with atomic_path(path) as tmp:
        save_tensors_data(td, tmp)
    return path


def tensor_quant_overrides(weights: dict | None = None, activations: dict | None = None, *,
                           weight_type: str = "int8", activation_type: str = "uint8",
                           reduce_range: bool = False) -> dict:
    """ONNX Runtime's ``TensorQuantOverrides`` (``extra_options`` of ``quantize_static``).

    Parameters
    ----------
    weights : dict, optional
        ``{initializer name: (alpha, axis)}``: symmetric clips — a scalar (per tensor, ``axis``
        ignored) or one per channel along ``axis``. Written as per-channel ``scale`` /
        ``zero_point`` entries (the first with ``axis``), computed by :func:`ort_qparams`
        with ``symmetric=True``.
    activations : dict, optional
        ``{tensor name: (beta, alpha)}`` → per-tensor ``scale`` / ``zero_point``.

    Examples
    --------
    >>> o = tensor_quant_overrides({"w": (np.array([1.27, 2.54]), 0)}, {"x": (-0.375, 6.0)})
    >>> [round(float(d["scale"]), 4) for d in o["w"]], o["w"][0]["axis"], int(o["x"][0]["zero_point"])
    ([0.01, 0.02], 0, 15)
    """
    from onnxruntime.quantization import QuantType

    qt = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8, "int16": QuantType.QInt16,
          "uint16": QuantType.QUInt16}
    out: dict[str, list] = {}
    for name, (alpha, axis) in (weights or {}).items():
        a = np.asarray(alpha, dtype=np.float64)
        s, z = ort_qparams(-a, a, weight_type, symmetric=True, reduce_range=reduce_range)
        if a.ndim == 0:
            out[name] = [{"scale": np.array(s), "zero_point": np.array(z), "quant_type": qt[weight_type]}]
        else:
            out[name] = [{"scale": np.array(si), "zero_point": np.array(zi), "quant_type": qt[weight_type],
                          **({"axis": int(axis)} if i == 0 else {})} for i, (si, zi) in enumerate(zip(s, z, strict=True))]
    for name, (b, a) in (activations or {}).items():
        s, z = ort_qparams(b, a, activation_type)
        out[name] = [{"scale": np.array(s), "zero_point": np.array(z), "quant_type": qt[activation_type]}]
    return out


def quantize_onnx(model: onnx.ModelProto | PathLike, output: PathLike, activation_ranges: dict, weight_clips: dict | None = None, *,
                  per_channel: bool = True, activation_type: str = "uint8", weight_type: str = "int8",
                  reduce_range: bool = False, preprocess: bool = False, op_types: Collection[str] | None = None,
                  extra_options: dict | None = None) -> Path:
    """One call to ``onnxruntime.quantization.quantize_static`` (QDQ) with qtheory's ranges.

    What a user otherwise meets by hand, done here:

    - ``Constant``-node weights (PaddlePaddle exports) are moved to initializers — ONNX Runtime
      quantizes only initializers as weights;
    - per-channel QDQ needs opset ≥ 13 (``QuantizeLinear`` with ``axis``): older models are
      converted with ``onnx.version_converter``;
    - ``preprocess=True`` runs ``quant_pre_process`` (shape inference, graph optimisation; see
      :func:`prepare_for_ort`, which gives the same graph to observe with
      ``onnx_observers(..., preprocess=True)``): the optimiser may fuse nodes and add value
      infos, so the tensors to calibrate change; a tensor without a range raises a ``ValueError``
      naming it instead of silently getting ONNX Runtime's defaults;
    - activation ranges go in through ONNX Runtime's own calibration cache
      (:func:`write_ort_calibration_cache`, no calibration data reader needed) and, because
      ONNX Runtime rewrites some cached ranges by its own rules (a Softmax output becomes
      ``[0, 1]``), also as per-tensor scale/zero-point ``TensorQuantOverrides``; weight clips as
      per-channel ``TensorQuantOverrides`` (:func:`tensor_quant_overrides`).

    Parameters
    ----------
    model : str, path or onnx.ModelProto
    output : str or path
        Where the QDQ model is written (atomically).
    activation_ranges : dict
        ``{tensor name: (beta, alpha)}`` for every activation to quantize (see
        :func:`qdq_tensors` for the names ONNX Runtime asks for).
    weight_clips : dict, optional
        ``{weight name: alpha}`` (scalar, or one per output channel): symmetric int8 clips. Weights
        not listed get ONNX Runtime's own min/max ranges.
    per_channel : bool
    activation_type, weight_type : str
    reduce_range : bool
    preprocess : bool
    op_types : iterable of str, optional
        ``op_types_to_quantize`` (default: ONNX Runtime's).
    extra_options : dict, optional
        Merged into ``quantize_static``'s ``extra_options``.

    Returns
    -------
    Path
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static


    func = "quantize_onnx"
    per_channel = check_bool(per_channel, "per_channel", func)
    preprocess = check_bool(preprocess, "preprocess", func)
    qt = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8, "int16": QuantType.QInt16,
          "uint16": QuantType.QUInt16}
    check_option(activation_type, "activation_type", func, tuple(qt))
    check_option(weight_type, "weight_type", func, tuple(qt))
    m = prepare_for_ort(model, per_channel=per_channel, preprocess=preprocess)
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="qtheory.quant.") as tmpdir:
        src = os.path.join(tmpdir, "model.onnx")
        onnx.save(m, src)
        need = qdq_tensors(src, op_types)
        wanted = set(ort_calibration_tensors(src, op_types, per_channel=per_channel))
        missing = sorted(wanted - set(activation_ranges))
        if missing:
            raise ValueError(f"The 'activation_ranges' parameter of {func} must give a range for every tensor "
                             f"ONNX Runtime quantizes ({len(wanted)} tensors; see ort_calibration_tensors"
                             f"{', after quant_pre_process' if preprocess else ''}). Got {len(missing)} missing, "
                             f"e.g. {missing[:3]} instead.")
        activation_ranges = {k: v for k, v in activation_ranges.items() if k in wanted}
        cache = write_ort_calibration_cache(activation_ranges, os.path.join(tmpdir, "calibration.json"))
        weights = {}
        for name, alpha in (weight_clips or {}).items():
            if name not in need["weights"]:
                raise ValueError(f"The 'weight_clips' parameter of {func} must name weight initializers of "
                                 f"quantized ops. Got {name!r} instead.")
            a = np.asarray(alpha, dtype=np.float64)
            weights[name] = (a if per_channel or a.ndim == 0 else np.max(a), need["weights"][name])
        # the ranges also go in as per-tensor scale/zero-point overrides: ONNX Runtime otherwise
        # replaces some of them by its own rules (Softmax outputs → [0, 1], ...)
        overrides = tensor_quant_overrides(weights, activation_ranges, weight_type=weight_type,
                                           activation_type=activation_type, reduce_range=reduce_range)
        opts = {"ActivationSymmetric": False, "WeightSymmetric": True, "TensorQuantOverrides": overrides}
        opts.update(extra_options or {})
        with atomic_path(output) as tmp:
            quantize_static(src, tmp, calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(op_types) if op_types else None, per_channel=per_channel,
                            reduce_range=reduce_range, activation_type=qt[activation_type],
                            weight_type=qt[weight_type], calibrate_method=CalibrationMethod.MinMax,
                            extra_options=opts, calibration_cache_path=cache)
    return output


def prepare_for_ort(model: onnx.ModelProto | PathLike, *, per_channel: bool = True,
                    preprocess: bool = False) -> onnx.ModelProto:
    """The model as :func:`quantize_onnx` hands it to ONNX Runtime: ``Constant`` weights moved to
    initializers; for per-channel QDQ the opset raised to 13 (``onnx.version_converter``); with
    ``preprocess=True``, ONNX Runtime's ``quant_pre_process`` applied (its symbolic shape inference
    fails on some graphs with dynamic dims: it is then skipped, as its error message advises)."""
    import onnx

    from .readers import _load_onnx, constants_to_initializers

    m, _ = _load_onnx(model, "prepare_for_ort")
    m = constants_to_initializers(m)
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)
    if per_channel and opset < 13:
        from onnx import version_converter

        m = constants_to_initializers(version_converter.convert_version(m, 13))
    if check_bool(preprocess, "preprocess", "prepare_for_ort"):
        from onnxruntime.quantization import quant_pre_process

        with tempfile.TemporaryDirectory(prefix="qtheory.pre.") as tmpdir:
            src, pre = os.path.join(tmpdir, "in.onnx"), os.path.join(tmpdir, "pre.onnx")
            onnx.save(m, src)
            try:
                quant_pre_process(src, pre)
            except Exception:  # symbolic shape inference fails on some dynamic graphs: skip it
                quant_pre_process(src, pre, skip_symbolic_shape=True)
            m = onnx.load(pre)
    return m


def ort_calibration_tensors(model: onnx.ModelProto | PathLike, op_types: Collection[str] | None = None, *, per_channel: bool = True) -> list[str]:
    """Names of the tensors ONNX Runtime's calibrators observe (and ``quantize_static`` needs a
    range for): the float inputs and outputs, not initializers, of every node whose type it
    quantizes (default: every op type of its QDQ and QLinear registries), after shape inference of
    the model as :func:`prepare_for_ort` prepares it. ONNX Runtime's
    ``CalibraterBase.select_tensors_to_calibrate`` rule, on the same graph.

    Examples
    --------
    >>> import onnx
    >>> from onnx import helper
    >>> n = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    >>> g = helper.make_graph(n, "g", [helper.make_tensor_value_info("x", 1, [2, 3])],
    ...                       [helper.make_tensor_value_info("y", 1, [2, 3])])
    >>> ort_calibration_tensors(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    ['r', 'x']
    """
    import onnx
    from onnx import TensorProto

    if isinstance(model, (str, os.PathLike)) and not str(model).endswith(".onnx"):
        raise param_error("model", "ort_calibration_tensors", "an ONNX model", model)
    m = prepare_for_ort(model, per_channel=per_channel)
    if op_types is None:
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

        op_types = set(QDQRegistry) | set(QLinearOpsRegistry)
    op_types = set(op_types)
    try:
        m = onnx.shape_inference.infer_shapes(m)
    except Exception:  # pragma: no cover - a graph shape inference cannot handle
        pass
    vi = {v.name: v for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
    inits = {t.name for t in m.graph.initializer}
    out = set()
    for nd in m.graph.node:
        if nd.op_type in op_types:
            for name in list(nd.input) + list(nd.output):
                v = vi.get(name)
                if (v is not None and v.type.HasField("tensor_type") and name not in inits
                        and v.type.tensor_type.elem_type in (TensorProto.FLOAT, TensorProto.FLOAT16)):
                    out.add(name)
    return sorted(out)


def qdq_tensors(model: onnx.ModelProto | PathLike, op_types: Collection[str] | None = None) -> dict:
    """Tensors ONNX Runtime's QDQ quantizer reads for ``op_types`` (default Conv, ConvTranspose,
    MatMul, Gemm and the ops around them): ``{"weights": {name: channel axis}, "activations": set,
    "all": set}`` — every node input/output that is not an initializer counts as an activation."""
    import onnx

    from .readers import _load_onnx

    m, _ = _load_onnx(model, "qdq_tensors") if not isinstance(model, str) else (onnx.load(model), None)
    inits = {t.name for t in m.graph.initializer}
    weights = {}
    acts = set()
    for nd in m.graph.node:
        for i in list(nd.input) + list(nd.output):
            if i and i not in inits:
                acts.add(i)
        if nd.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(nd.input) > 1 and nd.input[1] in inits:
            if op_types is None or nd.op_type in op_types:
                attrs = {a.name: a for a in nd.attribute}
                axis = 1 if nd.op_type == "ConvTranspose" or nd.op_type == "MatMul" else 0
                if nd.op_type == "Gemm":
                    axis = 0 if ("transB" in attrs and attrs["transB"].i) else 1
                weights[nd.input[1]] = axis
    return {"weights": weights, "activations": acts, "all": acts | set(weights)}


def qdq_scales(model: onnx.ModelProto | PathLike) -> dict:
    """``{tensor name: (scale, zero_point)}`` of every ``QuantizeLinear`` / ``DequantizeLinear``
    input in a QDQ model (the tensor being quantized, its scale and zero-point arrays)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model)) if isinstance(model, (str, os.PathLike)) else model
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for nd in m.graph.node:
        if nd.op_type == "Constant":
            consts[nd.output[0]] = numpy_helper.to_array(nd.attribute[0].t)
    out = {}
    for nd in m.graph.node:
        if nd.op_type == "QuantizeLinear" or (nd.op_type == "DequantizeLinear" and nd.input[0] in consts):
            name = nd.input[0]
            if name in consts and nd.op_type == "DequantizeLinear":  # a quantized initializer
                name = name.removesuffix("_quantized")
            out[name] = (consts.get(nd.input[1]), consts.get(nd.input[2]) if len(nd.input) > 2 else None)
    return out


# ================================================================================ torch.ao
def _observer(beta, alpha, dtype, per_channel_axis, symmetric, reduce_range):
    import torch
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    tdt = {"quint8": torch.quint8, "qint8": torch.qint8}[dtype]
    bn, an = _range_arrays(beta, alpha, "torch_qparams")
    b = torch.as_tensor(np.ascontiguousarray(bn))
    a = torch.as_tensor(np.ascontiguousarray(an))
    if per_channel_axis is None:
        scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        obs = MinMaxObserver(dtype=tdt, qscheme=scheme, reduce_range=reduce_range)
    else:
        scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        obs = PerChannelMinMaxObserver(ch_axis=per_channel_axis, dtype=tdt, qscheme=scheme, reduce_range=reduce_range)
    obs.min_val = b.clone()
    obs.max_val = a.clone()
    return obs


def torch_qparams(beta: ArrayLike, alpha: ArrayLike, dtype: str = "quint8", *, axis: int | None = None,
                  symmetric: bool = False, reduce_range: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, zero_point)`` torch tensors of a range, computed by ``torch.ao``'s own observer
    (``MinMaxObserver`` / ``PerChannelMinMaxObserver`` with ``min_val = beta``, ``max_val = alpha``,
    then ``calculate_qparams()``), so they are exactly the state a torch.ao model would hold.

    Examples
    --------
    >>> s, z = torch_qparams(-0.375, 6.0)
    >>> round(float(s), 6), int(z)
    (0.025, 15)
    """
    dtype = check_option(dtype, "dtype", "torch_qparams", ("quint8", "qint8"))
    return _observer(beta, alpha, dtype, axis, symmetric, reduce_range).calculate_qparams()


def torch_fake_quant(beta: ArrayLike, alpha: ArrayLike, dtype: str = "quint8", *, axis: int | None = None,
                     symmetric: bool = False, reduce_range: bool = False) -> torch.ao.quantization.FakeQuantize:
    """A ``torch.ao.quantization.FakeQuantize`` holding the range's scale and zero point, with its
    observer disabled (the range stays fixed when data flows through it).

    Examples
    --------
    >>> import torch
    >>> fq = torch_fake_quant(-0.375, 6.0)
    >>> fq(torch.tensor([-1.0, 0.01, 2.0, 9.0]))
    tensor([-0.3750,  0.0000,  2.0000,  6.0000])
    """
    import torch
    from torch.ao.quantization import FakeQuantize
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    dtype = check_option(dtype, "dtype", "torch_fake_quant", ("quint8", "qint8"))
    obs = _observer(beta, alpha, dtype, axis, symmetric, reduce_range)
    scale, zp = obs.calculate_qparams()
    kw = {"dtype": obs.dtype, "qscheme": obs.qscheme, "reduce_range": reduce_range,
          "quant_min": obs.quant_min, "quant_max": obs.quant_max}
    if axis is None:
        fq = FakeQuantize(observer=MinMaxObserver, **kw)
    else:
        fq = FakeQuantize(observer=PerChannelMinMaxObserver, ch_axis=axis, **kw)
    fq.scale = scale.to(torch.float32).reshape(fq.scale.shape if axis is None else (-1,))
    fq.zero_point = zp.to(torch.int32).reshape(fq.zero_point.shape if axis is None else (-1,))
    fq.activation_post_process.min_val = obs.min_val
    fq.activation_post_process.max_val = obs.max_val
    fq.disable_observer()
    return fq
