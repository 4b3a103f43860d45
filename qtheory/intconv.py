"""Integer-only 2-D convolution: a reference with real integer arithmetic.

The ground truth against which layer-level predictions are checked. Tensors are
integer arrays *as stored* (``uint8``/``int8``) described by a
:class:`~qtheory.Quantizer`; a stored value ``q`` means ``(q − z) · scale`` where
the storage zero point ``z`` follows from the quantizer's code range and the
array's dtype (:func:`storage_zero_point`).

=================================  ================================================================
function                           what it does
=================================  ================================================================
conv2d                             the fast path: numba kernels (AVX-512 VNNI ``vpdpbusd`` where the
                                   CPU has it, else int16 ``pmaddwd`` or portable int32), exact int32
                                   accumulation checked for overflow beforehand, fused
                                   requantisation; NCHW in and out
PackedConv2d                       conv2d with the weights validated and packed once, called on many inputs
conv2d_reference                   the same result from plain int64 numpy (independent code)
conv2d_float                       float64 convolution with the same geometry
quantize / dequantize              float tensors <-> stored integers (per tensor or per channel)
storage_zero_point                 the stored integer of real 0 for a quantizer and a dtype
per_channel                        one symmetric weight quantizer per output channel
quantize_multiplier                TFLite's ``(M0, shift)`` decomposition of a real multiplier
accumulator_bound                  the largest ``|acc|`` a reduction can reach (overflow check)
quantizer_moments                  ``E[X], E[X²], E[Q], E[Q²], E[XQ]`` of a quantizer under a prior
predict_layer_error                output error and SQNR from input and weight priors
predict_layer_error_given_weights  the same for a known float weight tensor
measure_layer_error                the same, measured through :func:`conv2d`
sqnr_sweep                         predicted vs measured SQNR over bits and clip ratios (a table)
=================================  ================================================================

Requantisation modes
--------------------
The accumulator ``acc`` (int32, bias included) is mapped to the output code with the
real multiplier ``M_k = s_x · s_w[k] / s_y``:

``"tflite"``
    TFLite / gemmlowp fixed point: ``M_k = M0 · 2^(shift − 31)`` with ``M0`` in
    ``[2^30, 2^31)`` (:func:`quantize_multiplier`, TFLite's ``QuantizeMultiplier``),
    then ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc · 2^max(shift,0), M0),
    max(−shift, 0))`` (TFLite ``MultiplyByQuantizedMultiplier``, default double-rounding
    build; gemmlowp ``fixedpoint.h``). RoundingDivideByPOT rounds ties away from zero;
    SaturatingRoundingDoublingHighMul's nudge (``2^30``, or ``1 − 2^30`` for a negative
    product, then truncation) rounds its ties toward +inf — they occur only when ``M0 = 2^30``.
``"tflite-single"``
    TFLite's ``TFLITE_SINGLE_ROUNDING`` build: one rounding shift
    ``(acc · M0 + 2^(t−1)) >> t`` with ``t = 31 − shift`` (ties toward +inf).
``"fbgemm"``
    fbgemm's float requantisation as PyTorch's ``quantized::conv2d`` drives it
    (``ReQuantizeOutput`` / ``requantizeOutputProcessingAvx2``): in float32,
    ``act_times_w_scale = s_x · s_w[k]``, ``C_multiplier = act_times_w_scale / s_y``;
    ``rint(float32(acc + bias) · C_multiplier)`` with an int32 bias, or
    ``rint((float32(acc) + bias / act_times_w_scale) · C_multiplier)`` with a float bias
    (real units, as PyTorch passes it; per-tensor weights multiply by the float32
    reciprocal ``1 / act_times_w_scale`` instead of dividing). ``rint`` rounds half to even
    (``cvtps2dq``).
``"po2"``
    Power-of-2 scales as in TQT (Jain et al. 2020): every scale must be a power of 2, so
    ``M_k = 2^−n`` and requantisation is a pure rounding shift ``round(acc / 2^n)`` with the
    output quantizer's tie rule (``Quantizer.rounding``, half to even by default).
``"exact"``
    The rational ``acc · M_k`` (scales taken as the exact binary fractions they are)
    rounded with the output quantizer's tie rule (half to even by default); no
    approximation of the multiplier at all.

Then the output zero point is added and the result clamped to the output quantizer's
stored code range (from the zero point when ``relu=True``).

Every shift stays inside the int64 range: ``"po2"`` right shifts beyond 40 bits round to 0 as the
exact result does, ``"tflite"``/``"tflite-single"`` refuse multipliers ``>= 2^30`` (TFLite's
``shift <= 30``), ``"fbgemm"`` refuses scales whose float32 products are not normal float32
numbers and clamps the float32 product to ``±2^31`` before the conversion.

Kernels
-------
Selected at run time by CPU feature (:mod:`qtheory.kernels.intconv_vnni`,
:mod:`qtheory.kernels.intconv`): with AVX-512 VNNI, NCHW kernels on ``vpdpbusd`` (unsigned
activation bytes times signed weight bytes, the zero point removed per output channel afterwards)
for every layer whose unsigned-byte sums fit int32 (``reduction · 255 · 128 < 2^31``); otherwise
int16 ``pmaddwd`` (AVX2 / AVX-512BW) or portable int32 kernels on NHWC. All are bit-identical to
:func:`conv2d_reference`. :class:`PackedConv2d` validates and packs the weights once for many calls.
ONNX Runtime's ``QLinearConv`` equals ``requant="fbgemm"`` with an int32 bias (tests/test_intconv_ort.py).

Examples
--------
>>> import numpy as np
>>> from qtheory import Quantizer
>>> from qtheory.intconv import conv2d, conv2d_reference, quantize
>>> rng = np.random.default_rng(0)
>>> xq = Quantizer(8, 4.0, grid="affine", beta=-1.0)
>>> wq = Quantizer(8, 0.5, grid="narrow")
>>> yq = Quantizer(8, 8.0, grid="affine", beta=-8.0)
>>> x = quantize(rng.normal(size=(1, 3, 6, 6)), xq)
>>> w = quantize(rng.normal(scale=0.2, size=(4, 3, 3, 3)), wq)
>>> y = conv2d(x, w, x_quant=xq, w_quant=wq, out_quant=yq, padding=1)
>>> y.dtype, y.shape
(dtype('uint8'), (1, 4, 6, 6))
>>> bool(np.array_equal(y, conv2d_reference(x, w, x_quant=xq, w_quant=wq, out_quant=yq, padding=1)))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from ._progress import check_progress, progress_bar
from ._typing import ArrayLike, DTypeLike, PriorLike, RNGLike
from ._validation import check_bool, check_int, check_option, check_real, check_samples, param_error
from .quantizer import ROUNDING_CODES, Quantizer, round_with

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REQUANT_MODES",
    "MAX_ELEMENTS",
    "ACTIVATION_GRIDS",
    "WEIGHT_GRIDS",
    "storage_zero_point",
    "quantize",
    "dequantize",
    "per_channel",
    "quantize_multiplier",
    "conv2d",
    "PackedConv2d",
    "conv2d_reference",
    "conv2d_float",
    "accumulator_bound",
    "quantizer_moments",
    "QuantizerMoments",
    "LayerError",
    "predict_layer_error",
    "predict_layer_error_given_weights",
    "measure_layer_error",
    "sqnr_sweep",
]

REQUANT_MODES = ("tflite", "tflite-single", "fbgemm", "po2", "exact")
ACTIVATION_GRIDS = ("int", "narrow", "unsigned", "uint", "affine")
WEIGHT_GRIDS = ("int", "narrow")
_DTYPE_RANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}
_INT32_MAX = 2**31 - 1
#: reductions shorter than this go through an im2col buffer (short contiguous runs do not vectorise)
_IM2COL_BELOW = 32
#: use the int16 ``pmaddwd`` kernel when the host has it (tests switch it off to check the portable one)
_FAST_DOT = True
#: use the AVX-512 VNNI kernels when the host has them (tests switch it off to check the others)
_VNNI = True


# ============================================================================ storage
def _dtype(dtype, name, func) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise param_error(name, func, "'uint8' or 'int8'", dtype, TypeError) from None
    if dt not in _DTYPE_RANGE:
        raise param_error(name, func, "'uint8' or 'int8'", str(dt))
    return dt


def _default_dtype(q: Quantizer) -> np.dtype:
    return np.dtype(np.int8 if q.grid in WEIGHT_GRIDS else np.uint8)


def _check_quantizer(q, name, func, grids=ACTIVATION_GRIDS) -> Quantizer:
    if not isinstance(q, Quantizer):
        raise param_error(name, func, "a qtheory.Quantizer", type(q).__name__, TypeError)
    if q.grid not in grids:
        raise param_error(name, func, "a Quantizer with grid " + " or ".join(map(repr, grids)),
                          q)
    return q


def storage_zero_point(quant: Quantizer, dtype: DTypeLike | None = None) -> int:
    """Stored integer that represents the real value 0 (``stored = code + zero point``).

    The codes ``quant.qmin .. quant.qmax`` are stored unchanged when they fit ``dtype``;
    otherwise they are shifted so that ``qmin`` lands on the dtype's minimum (uint8 with an
    affine grid: the usual zero point; int8 with an affine grid: TFLite's signed zero point).

    Examples
    --------
    >>> from qtheory import Quantizer
    >>> q = Quantizer(8, 6.0, grid="affine", beta=-2.0)
    >>> q.qmin, storage_zero_point(q, "uint8"), storage_zero_point(q, "int8")
    (-64, 64, -64)
    >>> storage_zero_point(Quantizer(8, 1.0, grid="narrow"))
    0
    """
    func = "storage_zero_point"
    quant = _check_quantizer(quant, "quant", func)
    dt = _default_dtype(quant) if dtype is None else _dtype(dtype, "dtype", func)
    return _zero_point(quant, dt, "quant", func)


def _zero_point(q: Quantizer, dt: np.dtype, name: str, func: str) -> int:
    lo, hi = _DTYPE_RANGE[dt]
    if q.qmax - q.qmin > hi - lo:
        raise param_error(name, func, f"a quantizer whose {q.n_levels} codes fit {dt}", q)
    if lo <= q.qmin and q.qmax <= hi:
        return 0
    return lo - q.qmin


def _as_quantizers(quant, name, func, grids) -> tuple[Quantizer, ...]:
    if isinstance(quant, Quantizer):
        return (_check_quantizer(quant, name, func, grids),)
    if isinstance(quant, (Sequence, np.ndarray)) and not isinstance(quant, str) and len(quant) > 0:
        qs = tuple(_check_quantizer(q, name, func, grids) for q in quant)
        if len({(q.bits, q.grid) for q in qs}) != 1:
            raise param_error(name, func, "quantizers that share bits and grid", f"{len(qs)} mixed quantizers")
        return qs
    raise param_error(name, func, "a Quantizer or a non-empty sequence of Quantizers (one per channel)",
                      type(quant).__name__, TypeError)


def quantize(x: ArrayLike, quant: Quantizer | Sequence[Quantizer], *, dtype: DTypeLike | None = None,
             axis: int = 0) -> np.ndarray:
    """Quantize a float tensor to stored integers (``uint8``/``int8``).

    Parameters
    ----------
    x : array_like
        Real values.
    quant : Quantizer or sequence of Quantizer
        One quantizer (per tensor) or one per slice along ``axis`` (per channel).
    dtype : {"uint8", "int8"}, optional
        Storage type; default ``int8`` for the symmetric grids ``"int"``/``"narrow"``,
        ``uint8`` otherwise.
    axis : int
        Channel axis for per-channel quantizers.

    Examples
    --------
    >>> from qtheory import Quantizer
    >>> quantize([-1.0, 0.0, 0.26, 9.0], Quantizer(8, 2.0, grid="affine", beta=-1.0))
    array([  0,  85, 107, 255], dtype=uint8)
    >>> quantize([[0.5, -2.0], [0.5, -2.0]], per_channel(4, [1.0, 2.0]), axis=0)
    array([[ 4, -7],
           [ 2, -7]], dtype=int8)
    """
    func = "quantize"
    qs = _as_quantizers(quant, "quant", func, ACTIVATION_GRIDS)
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise param_error("x", func, "an array of finite real numbers", "non-finite values")
    dt = _default_dtype(qs[0]) if dtype is None else _dtype(dtype, "dtype", func)
    if len(qs) == 1:
        return (qs[0].to_codes(arr) + _zero_point(qs[0], dt, "quant", func)).astype(dt)
    axis = check_int(axis, "axis", func, -arr.ndim, arr.ndim - 1) % arr.ndim
    if arr.shape[axis] != len(qs):
        raise param_error("quant", func, f"{arr.shape[axis]} quantizers (one per slice along axis {axis})",
                          f"{len(qs)} quantizers")
    out = np.empty(arr.shape, dtype=dt)
    for i, q in enumerate(qs):
        idx = (slice(None),) * axis + (i,)
        out[idx] = q.to_codes(arr[idx]) + _zero_point(q, dt, "quant", func)
    return out


def dequantize(q: ArrayLike, quant: Quantizer | Sequence[Quantizer], *, axis: int = 0) -> np.ndarray:
    """Real values (float64) of stored integers ``q`` (the inverse of :func:`quantize` on levels).

    >>> from qtheory import Quantizer
    >>> qa = Quantizer(8, 2.0, grid="affine", beta=-1.0)
    >>> dequantize(quantize([-1.0, 0.0, 0.26], qa), qa)
    array([-1.        ,  0.        ,  0.25882353])
    """
    func = "dequantize"
    qs = _as_quantizers(quant, "quant", func, ACTIVATION_GRIDS)
    arr = np.asarray(q)
    if arr.dtype not in _DTYPE_RANGE:
        raise param_error("q", func, "an integer array of dtype uint8 or int8", f"dtype {arr.dtype}", TypeError)
    if len(qs) == 1:
        z = _zero_point(qs[0], arr.dtype, "quant", func)
        return qs[0].from_codes(arr.astype(np.int64) - z)
    axis = check_int(axis, "axis", func, -arr.ndim, arr.ndim - 1) % arr.ndim
    if arr.shape[axis] != len(qs):
        raise param_error("quant", func, f"{arr.shape[axis]} quantizers", f"{len(qs)} quantizers")
    out = np.empty(arr.shape, dtype=np.float64)
    for i, qq in enumerate(qs):
        idx = (slice(None),) * axis + (i,)
        out[idx] = qq.from_codes(arr[idx].astype(np.int64) - _zero_point(qq, arr.dtype, "quant", func))
    return out


def per_channel(bits: int, alphas: ArrayLike, grid: str = "narrow", rounding: str = "half_even") -> tuple[Quantizer, ...]:
    """One symmetric weight quantizer per output channel, with clips ``alphas``.

    >>> [q.scale for q in per_channel(8, [1.27, 2.54])]
    [0.01, 0.02]
    """
    func = "per_channel"
    grid = check_option(grid, "grid", func, WEIGHT_GRIDS)
    bits = check_int(bits, "bits", func, 2, 16)
    check_option(rounding, "rounding", func, ("half_even", "half_away", "half_up"))
    a = np.asarray(alphas, dtype=float)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise param_error("alphas", func, "a non-empty 1-D array of positive finite clips", alphas)
    return tuple(Quantizer(bits, float(v), grid, rounding) for v in a)


# ============================================================================ multipliers
def quantize_multiplier(multiplier: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``multiplier ≈ M0 · 2^(shift − 31)``, ``M0 ∈ [2^30, 2^31)``.

    ``M0 = round(f · 2^31)`` (ties away from zero) where ``multiplier = f · 2^shift``,
    ``f ∈ [0.5, 1)`` (``frexp``); a rounding up to ``2^31`` is renormalised. Multipliers
    below ``2^-31`` give ``(0, 0)`` (the output is the zero point), as in TFLite.

    Examples
    --------
    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(0.0123)
    (1690499128, -6)
    """
    m = check_real(multiplier, "multiplier", "quantize_multiplier", 0.0, low_open=True)
    f, shift = math.frexp(m)
    q = math.floor(f * 2.0**31 + 0.5)
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise param_error("multiplier", "quantize_multiplier", "a real multiplier below 2^31", m)
    return int(q), int(shift)


def _quantize_multipliers(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize_multiplier` on an array of positive multipliers below 2^31 (vectorised)."""
    f, e = np.frexp(real)
    q = np.floor(f * 2.0**31 + 0.5).astype(np.int64)
    up = q == 2**31
    q = np.where(up, q // 2, q)
    e = e.astype(np.int64) + up
    small = e < -31
    return np.where(small, 0, q), np.where(small, 0, e)


def _is_pow2(s: float) -> bool:
    return math.frexp(s)[0] == 0.5


def _f32(v) -> np.float32:
    return np.float32(v)


_F32_TINY = float(np.finfo(np.float32).tiny)
_F32_MAX = float(np.finfo(np.float32).max)


def _f32_normal(v) -> bool:
    return bool(_F32_TINY <= float(v) <= _F32_MAX)


# ============================================================================ validation / plan
def _pair(v, name, func, low):
    """``(v, v)`` or the pair ``v``, each an int in ``[low, 2^31 − 1]`` (the kernels' index range)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise param_error(name, func, f"an int >= {low} or a pair of them", v)
        return check_int(v[0], name, func, low, 2**31 - 1), check_int(v[1], name, func, low, 2**31 - 1)
    v = check_int(v, name, func, low, 2**31 - 1)
    return v, v


#: largest padded input or output tensor (elements) a convolution accepts (about 1 GiB as int32)
MAX_ELEMENTS = 2**28


def _check_sizes(func, N, C, H, W, K, ph, pw, Ho, Wo) -> None:
    padded = N * C * (H + 2 * ph) * (W + 2 * pw)
    if padded > MAX_ELEMENTS:
        raise param_error("padding", func, f"a padding for which the padded input (N, C, H+2*pad_h, W+2*pad_w) has "
                          f"at most MAX_ELEMENTS = 2^28 elements (here {padded})", (ph, pw))
    if N * K * Ho * Wo > MAX_ELEMENTS:
        raise param_error("padding", func, f"a geometry for which the output (N, K, Ho, Wo) has at most "
                          f"MAX_ELEMENTS = 2^28 elements (here {N * K * Ho * Wo})", (ph, pw))


def _check_x_codes(x: np.ndarray, xq: Quantizer, zx: int, func: str) -> None:
    """Stored activations must be codes of ``x_quant`` (no pass when every stored value is one)."""
    lo, hi = _DTYPE_RANGE[x.dtype]
    if xq.qmin + zx <= lo and xq.qmax + zx >= hi:
        return
    xlo, xhi = int(x.min()), int(x.max())
    if xlo < xq.qmin + zx or xhi > xq.qmax + zx:
        raise param_error("x", func, f"stored codes in [{xq.qmin + zx}, {xq.qmax + zx}] (x_quant with {x.dtype} "
                          "storage)", f"values in [{xlo}, {xhi}]")


@dataclass
class _Plan:
    x: np.ndarray
    w: np.ndarray
    zx: int
    N: int
    C: int
    H: int
    W: int
    K: int
    Cg: int
    kh: int
    kw: int
    G: int
    stride: tuple
    pad: tuple
    dil: tuple
    Ho: int
    Wo: int
    xq: Quantizer
    wqs: tuple
    oq: Quantizer | None
    out_dtype: np.dtype | None
    zo: int
    lo: int
    hi: int
    mode: str
    ibias: np.ndarray  # int64[K]
    fbias: np.ndarray | None  # float32[K] (real units) or None
    bound: int
    per_channel: bool


def _plan(func, x, w, bias, x_quant, w_quant, out_quant, stride, padding, dilation, groups,
          requant, relu, out_dtype) -> _Plan:
    if not isinstance(x, np.ndarray) or x.dtype not in _DTYPE_RANGE:
        raise param_error("x", func, "a numpy array of dtype uint8 or int8",
                          f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}", TypeError)
    if x.ndim != 4 or x.size == 0:
        raise param_error("x", func, "a non-empty 4-D array (N, C, H, W)", f"array of shape {x.shape}")
    if not isinstance(w, np.ndarray) or w.dtype != np.int8:
        raise param_error("w", func, "a numpy array of dtype int8",
                          f"{type(w).__name__} of dtype {getattr(w, 'dtype', None)}", TypeError)
    if w.ndim != 4 or w.size == 0:
        raise param_error("w", func, "a non-empty 4-D array (K, C/groups, kh, kw)", f"array of shape {w.shape}")
    requant = check_option(requant, "requant", func, REQUANT_MODES)
    relu = check_bool(relu, "relu", func)
    G = check_int(groups, "groups", func, 1)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    if C % G or K % G:
        raise param_error("groups", func, f"a divisor of both the input channels {C} and the output channels {K}", G)
    if Cg * G != C:
        raise param_error("w", func, f"an array of shape ({K}, {C // G}, kh, kw) for {C} input channels "
                          f"and groups={G}", f"array of shape {w.shape}")
    sh, sw = _pair(stride, "stride", func, 1)
    ph, pw = _pair(padding, "padding", func, 0)
    dh, dw = _pair(dilation, "dilation", func, 1)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise param_error("padding", func, f"large enough for a kernel of extent "
                          f"({dh * (kh - 1) + 1}, {dw * (kw - 1) + 1}) on a {H}x{W} input", (ph, pw))
    _check_sizes(func, N, C, H, W, K, ph, pw, Ho, Wo)

    xq = _check_quantizer(x_quant, "x_quant", func)
    zx = _zero_point(xq, x.dtype, "x_quant", func)
    wqs = _as_quantizers(w_quant, "w_quant", func, WEIGHT_GRIDS)
    if len(wqs) not in (1, K):
        raise param_error("w_quant", func, f"one Quantizer or {K} (one per output channel)", f"{len(wqs)} quantizers")
    if len(wqs) == 1:
        wqs = wqs * K
    _check_x_codes(x, xq, zx, func)
    wlo, whi = int(w.min()), int(w.max())
    if wlo < wqs[0].qmin or whi > wqs[0].qmax:
        raise param_error("w", func, f"codes in [{wqs[0].qmin}, {wqs[0].qmax}] (w_quant)", f"values in [{wlo}, {whi}]")

    # bias
    ibias = np.zeros(K, dtype=np.int64)
    fbias = None
    if bias is not None:
        b = np.asarray(bias)
        if b.shape != (K,):
            raise param_error("bias", func, f"None or a 1-D array of {K} values", f"array of shape {b.shape}")
        if b.dtype.kind in "iu":
            if b.size and (int(b.min()) < -(2**31) or int(b.max()) > _INT32_MAX):
                raise param_error("bias", func, "int32 values", f"values in [{b.min()}, {b.max()}]")
            ibias = b.astype(np.int64)
        elif b.dtype.kind == "f":
            if requant != "fbgemm" or out_quant is None:
                raise param_error("bias", func, "an integer (int32) array; a float bias (real units) is only "
                                  "accepted with requant='fbgemm' and an out_quant", f"array of dtype {b.dtype}",
                                  TypeError)
            if not np.all(np.isfinite(b)):
                raise param_error("bias", func, "finite values", "non-finite values")
            fbias = b.astype(np.float32)
        else:
            raise param_error("bias", func, "an int32 or float array", f"array of dtype {b.dtype}", TypeError)

    # overflow: every partial sum of products is bounded by the full reduction's bound
    xmax = max(abs(xq.qmax), abs(xq.qmin))  # max |x - zero_point| in codes
    wmax = max(abs(wqs[0].qmax), abs(wqs[0].qmin))
    red = Cg * kh * kw
    bmax = int(np.abs(ibias).max()) if K else 0
    bound = red * xmax * wmax
    if bound + bmax > _INT32_MAX:
        raise param_error("w", func, "a weight tensor whose int32 accumulation cannot overflow: reduction length "
                          f"{red} x max|x - zero_point| {xmax} x max|w| {wmax} + max|bias| {bmax} = "
                          f"{bound + bmax} > 2^31 - 1", f"array of shape {w.shape}")

    oq = None
    odt = None
    zo = lo = hi = 0
    if out_quant is None:
        if relu:
            raise param_error("relu", func, "False when out_quant is None (int32 accumulators are returned)", relu)
    else:
        oq = _check_quantizer(out_quant, "out_quant", func)
        odt = _default_dtype(oq) if out_dtype is None else _dtype(out_dtype, "out_dtype", func)
        zo = _zero_point(oq, odt, "out_quant", func)
        lo, hi = oq.qmin + zo, oq.qmax + zo
        if relu:
            lo = max(lo, zo)
    return _Plan(x, w, zx, N, C, H, W, K, Cg, kh, kw, G, (sh, sw), (ph, pw), (dh, dw), Ho, Wo, xq, wqs,
                 oq, odt, zo, lo, hi, requant, ibias, fbias, bound + bmax,
                 not isinstance(w_quant, Quantizer))


def _multipliers(p: _Plan, func: str) -> dict:
    """Per-output-channel requantisation parameters for the kernel (and the reference)."""
    K = p.K
    sx = p.xq.scale
    sws = np.array([q.scale for q in p.wqs])
    sy = p.oq.scale
    with np.errstate(over="ignore", under="ignore"):  # inf / 0 are refused or handled per mode below
        real = sx * sws / sy
    m0 = np.zeros(K, np.int64)
    shift = np.zeros(K, np.int64)
    fmul = np.zeros(K, np.float32)
    fbias = np.zeros(K, np.float32)
    mode = p.mode
    if mode in ("tflite", "tflite-single"):
        if real.max() >= 2.0**30:
            raise param_error("out_quant", func, "a scale for which s_x*s_w/s_y < 2^30 (TFLite's fixed-point "
                              f"multiplier needs shift <= 30; got a multiplier of {real.max():.4g})", p.oq)
        m0, shift = _quantize_multipliers(real)
        if shift.max() > 30:  # a multiplier just below 2^30 that rounds up to 2^30
            raise param_error("out_quant", func, "a scale for which the rounded multiplier M0*2^(shift-31) "
                              "has shift <= 30", p.oq)
        if mode == "tflite":
            left = int(max(shift.max(), 0))
            if left and p.bound * 2**left > _INT32_MAX:
                raise param_error("out_quant", func, "a scale small enough that acc * 2^shift fits int32 "
                                  f"(multiplier {real.max():.4g} needs a left shift of {left})", p.oq)
    elif mode == "fbgemm":
        with np.errstate(over="ignore", under="ignore"):
            act = _f32(sx)
            out_s = _f32(sy)
            for name, v, q in (("x_quant", act, p.xq), ("out_quant", out_s, p.oq)):
                if not _f32_normal(v):
                    raise param_error(name, func, "a quantizer whose scale is a normal float32 number "
                                      f"(fbgemm requantises in float32; [{_F32_TINY:.4g}, {_F32_MAX:.4g}])", q)
            # element-wise IEEE float32 arithmetic, as fbgemm does it channel by channel
            atws = act * sws.astype(np.float32)
            fmul = (atws / out_s).astype(np.float32)
            bad = ~((atws >= _F32_TINY) & (atws <= _F32_MAX) & (fmul >= _F32_TINY) & (fmul <= _F32_MAX))
            if bad.any():
                k = int(np.argmax(bad))
                raise param_error("w_quant", func, "quantizers for which s_x*s_w and s_x*s_w/s_y are normal "
                                  f"float32 numbers (fbgemm requantises in float32; [{_F32_TINY:.4g}, "
                                  f"{_F32_MAX:.4g}]); channel {k} gives {float(atws[k]):.4g} and "
                                  f"{float(fmul[k]):.4g}", p.wqs[k])
            if p.fbias is not None:
                if p.per_channel:
                    fbias = (p.fbias / atws).astype(np.float32)
                else:
                    fbias = (p.fbias * (1.0 / atws.astype(np.float64)).astype(np.float32)).astype(np.float32)
    elif mode == "po2":
        for name, s in (("x_quant", sx), ("out_quant", sy)) + tuple(("w_quant", float(v)) for v in sws):
            if not _is_pow2(s):
                raise param_error(name, func, "a quantizer with a power-of-2 scale when requant='po2'", s)
        ex = math.frexp(sx)[1] - math.frexp(sy)[1]
        for k in range(K):
            shift[k] = ex + math.frexp(float(sws[k]))[1] - 1  # exact, also where s_x*s_w/s_y under/overflows
            if shift[k] > 0 and p.bound * 2 ** int(shift[k]) > _INT32_MAX:
                raise param_error("out_quant", func, "a scale for which the left shift cannot overflow", p.oq)
    return {"m0": m0, "shift": shift, "fmul": fmul, "fbias": fbias, "real": real}


# ============================================================================ fast path
def conv2d(x: np.ndarray, w: np.ndarray, bias: ArrayLike | None = None, *, x_quant: Quantizer,
           w_quant: Quantizer | Sequence[Quantizer], out_quant: Quantizer | None = None,
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
           dilation: int | tuple[int, int] = 1, groups: int = 1, requant: str = "tflite",
           relu: bool = False, out_dtype: DTypeLike | None = None) -> np.ndarray:
    """Integer-only 2-D convolution (NCHW) with exact int32 accumulation and requantisation.

    Parameters
    ----------
    x : ndarray of uint8 or int8, shape (N, C, H, W)
        Stored activations; their zero point follows from ``x_quant`` and the dtype.
    w : ndarray of int8, shape (K, C // groups, kh, kw)
        Symmetric weight codes.
    bias : ndarray, optional
        Shape (K,). Integer: int32 accumulator units ``s_x · s_w[k]`` (TFLite's convention).
        Float: real units, only with ``requant="fbgemm"`` (PyTorch's convention).
    x_quant : Quantizer
        Activation quantizer, grid ``"int"``, ``"narrow"``, ``"unsigned"``, ``"uint"`` or ``"affine"``.
    w_quant : Quantizer or sequence of Quantizer
        Per-tensor or per-output-channel weight quantizer(s), grid ``"int"`` or ``"narrow"``.
    out_quant : Quantizer, optional
        Output quantizer. ``None`` returns the int32 accumulators (bias included).
    stride, padding, dilation : int or pair of int
    groups : int
        ``groups == C == K`` is a depthwise convolution.
    requant : {"tflite", "tflite-single", "fbgemm", "po2", "exact"}
        Requantisation arithmetic (module docstring).
    relu : bool
        Fused ReLU: clamp from the output zero point.
    out_dtype : {"uint8", "int8"}, optional
        Output storage (default from ``out_quant``'s grid).

    Returns
    -------
    ndarray, shape (N, K, Ho, Wo)
        Output codes as stored, or int32 accumulators when ``out_quant`` is None.

    Raises
    ------
    ValueError, TypeError
        Wrong dtypes, shape mismatches, codes outside the quantizers' ranges, and any input
        whose int32 accumulation could overflow (checked from the reduction length and the
        code ranges before any kernel runs).

    Examples
    --------
    >>> import numpy as np
    >>> from qtheory import Quantizer
    >>> xq, wq = Quantizer(8, 2.55, grid="unsigned"), Quantizer(8, 1.27, grid="narrow")
    >>> x = np.full((1, 2, 3, 3), 100, dtype=np.uint8)          # 1.0 everywhere
    >>> w = np.full((1, 2, 3, 3), 50, dtype=np.int8)            # 0.5 everywhere
    >>> conv2d(x, w, x_quant=xq, w_quant=wq)                    # 18 products of 100*50
    array([[[[90000]]]], dtype=int32)
    >>> yq = Quantizer(8, 12.7, grid="narrow")
    >>> conv2d(x, w, x_quant=xq, w_quant=wq, out_quant=yq)      # 9.0 in steps of 0.1
    array([[[[90]]]], dtype=int8)
    """
    return _execute(_prepare("conv2d", x, w, bias, x_quant, w_quant, out_quant, stride, padding, dilation, groups,
                             requant, relu, out_dtype), np.ascontiguousarray(x))


@dataclass
class _Prepared:
    p: _Plan
    req: tuple
    vnni: dict | None


def _prepare(func, x, w, bias, x_quant, w_quant, out_quant, stride, padding, dilation, groups, requant, relu,
             out_dtype) -> _Prepared:
    """Validate everything and compute the requantisation parameters and packed weights."""
    p = _plan(func, x, w, bias, x_quant, w_quant, out_quant, stride, padding, dilation, groups,
              requant, relu, out_dtype)
    if p.oq is None:
        params = {"m0": np.zeros(p.K, np.int64), "shift": np.zeros(p.K, np.int64),
                  "fmul": np.zeros(p.K, np.float32), "fbias": np.zeros(p.K, np.float32)}
        code = 0
    else:
        params = _multipliers(p, func)
        code = {"tflite": 1, "tflite-single": 2, "fbgemm": 5 if p.fbias is not None else 3,
                "po2": 4, "exact": 0}[p.mode]
    rcode = ROUNDING_CODES[p.oq.rounding] if p.oq is not None else 0
    req = (code, params["m0"], params["shift"], params["fmul"], params["fbias"], p.ibias,
           int(p.zo), int(p.lo), int(p.hi), int(rcode))
    vp = _vnni_prepare(p)
    p.x = None  # the plan describes a geometry; the data is passed to _execute
    return _Prepared(p, req, vp)


def _execute(prep: _Prepared, x: np.ndarray) -> np.ndarray:
    """Run the kernels on ``x`` (validated against ``prep`` by the caller)."""
    if prep.vnni is not None:
        return _vnni_run(prep.vnni, prep.p, x, prep.req)
    return _portable_run(prep.p, x, prep.req)


def _portable_run(p: _Plan, x: np.ndarray, req: tuple) -> np.ndarray:
    """The int16 ``pmaddwd`` / portable int32 kernels (NHWC inside)."""
    from .kernels import intconv as kern

    out = np.empty((p.N, p.K, p.Ho, p.Wo), dtype=np.int32)
    args = req + (out,)
    sh, sw = p.stride
    ph, pw = p.pad
    dh, dw = p.dil
    Hp, Wp = p.H + 2 * ph, p.W + 2 * pw
    xs = x.reshape(p.N, p.G, p.Cg, p.H, p.W)
    if p.G == p.C and p.Cg == 1 and p.G > 1:
        # depthwise (channel multiplier m = K / C): channels last, each output channel's input gathered
        m = p.K // p.C
        X = np.zeros((p.N, Hp, Wp, p.C), dtype=np.int16)
        inner = X[:, ph:ph + p.H, pw:pw + p.W, :]
        inner[...] = x.transpose(0, 2, 3, 1)
        if p.zx:
            inner -= np.int16(p.zx)
        if m > 1:
            X = np.ascontiguousarray(np.repeat(X, m, axis=3))
        Wt = np.ascontiguousarray(p.w.reshape(p.K, p.kh * p.kw).T.astype(np.int32))
        kern.conv_depthwise(X, Wt, p.kh, p.kw, sh, sw, dh, dw, p.Ho, p.Wo, *args)
    else:
        X = np.zeros((p.N, p.G, Hp, Wp, p.Cg), dtype=np.int16)
        inner = X[:, :, ph:ph + p.H, pw:pw + p.W, :]
        inner[...] = xs.transpose(0, 1, 3, 4, 2)
        if p.zx:
            inner -= np.int16(p.zx)
        X = X.reshape(p.N * p.G, Hp, Wp, p.Cg)
        Kg = p.K // p.G
        Kp = -(-Kg // 4) * 4
        wg = p.w.reshape(p.G, Kg, p.Cg, p.kh, p.kw)
        red = p.kh * p.kw * p.Cg
        lanes = kern.LANES if _FAST_DOT else 0
        Lp = -(-red // lanes) * lanes if lanes else red
        if dw == 1 and red >= _IM2COL_BELOW:
            # direct: one contiguous (kw, kh, c) run per output pixel in a row buffer
            Wr = wg.transpose(0, 1, 4, 3, 2)
            geo = (p.kh, p.kw, sh, sw, dh)
            src = X
        else:
            # short reductions or horizontal dilation: gather the patches (i, j, c) first,
            # zero-padded to the kernel's run length
            Wr = wg.transpose(0, 1, 3, 4, 2)
            src = np.zeros((p.N * p.G, p.Ho, p.Wo, Lp), dtype=np.int16)
            kern.im2col(X, p.kh, p.kw, sh, sw, dh, dw, p.Ho, p.Wo, src)
            geo = (1, 1, 1, 1, 1)
        Wk = np.zeros((p.G, Kp, Lp), dtype=np.int16 if lanes else np.int32)
        Wk[:, :Kg, :red] = Wr.reshape(p.G, Kg, red)
        Wk = Wk.reshape(p.G * Kp, Lp)
        conv = kern.conv_rows16 if lanes else kern.conv_rows
        conv(src, Wk, *geo, p.Ho, p.Wo, p.G, *args)
    if p.oq is None:
        return out
    if p.mode == "exact":
        out = _exact_requant(out.astype(np.int64), p)
    return out.astype(p.out_dtype)


class PackedConv2d:
    """An integer convolution whose weights, bias, quantizers and geometry are prepared once.

    ``PackedConv2d(w, bias, **kw)(x)`` equals :func:`conv2d` ``(x, w, bias, **kw)`` bit for bit;
    the validation of the weights, the requantisation multipliers and the packed weight layout
    of the kernels are computed on the first call for an input shape and dtype and reused by
    later calls (as a runtime's prepared session does). Each call still checks ``x``: its dtype
    and shape, and its codes against ``x_quant`` unless every stored value is a valid code.
    The weights and bias are copied, so later changes to the caller's arrays have no effect.

    Parameters
    ----------
    w, bias, x_quant, w_quant, out_quant, stride, padding, dilation, groups, requant, relu, out_dtype
        As for :func:`conv2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from qtheory import Quantizer
    >>> xq, wq = Quantizer(8, 2.55, grid="unsigned"), Quantizer(8, 1.27, grid="narrow")
    >>> layer = PackedConv2d(np.full((1, 2, 3, 3), 50, dtype=np.int8), x_quant=xq, w_quant=wq,
    ...                      out_quant=Quantizer(8, 12.7, grid="narrow"))
    >>> layer(np.full((1, 2, 3, 3), 100, dtype=np.uint8))
    array([[[[90]]]], dtype=int8)
    """

    def __init__(self, w, bias=None, *, x_quant: Quantizer, w_quant, out_quant: Quantizer | None = None,
                 stride=1, padding=0, dilation=1, groups: int = 1, requant: str = "tflite",
                 relu: bool = False, out_dtype=None) -> None:
        func = "PackedConv2d"
        if not isinstance(w, np.ndarray) or w.dtype != np.int8:
            raise param_error("w", func, "a numpy array of dtype int8",
                              f"{type(w).__name__} of dtype {getattr(w, 'dtype', None)}", TypeError)
        self._args = (w.copy(), None if bias is None else np.array(bias, copy=True), x_quant, w_quant, out_quant,
                      stride, padding, dilation, groups, requant, relu, out_dtype)
        self._cache: dict = {}

    def __call__(self, x) -> np.ndarray:
        func = "PackedConv2d"
        if not isinstance(x, np.ndarray) or x.dtype not in _DTYPE_RANGE:
            raise param_error("x", func, "a numpy array of dtype uint8 or int8",
                              f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}", TypeError)
        key = (x.shape, x.dtype.str)
        prep = self._cache.get(key)
        if prep is None:
            prep = _prepare(func, x, *self._args)
            self._cache[key] = prep
        else:
            _check_x_codes(x, prep.p.xq, prep.p.zx, func)
        return _execute(prep, np.ascontiguousarray(x))


def _vnni_prepare(p: _Plan):
    """Packed weights and geometry for the VNNI kernels, or None when they do not apply."""
    if not _VNNI:
        return None
    from .kernels import intconv_vnni as kv

    if not kv.HAVE_VNNI:
        return None
    red = p.Cg * p.kh * p.kw
    if red * 255 * 128 >= 2**31:  # Σ x_u8·w and z_u8·Σw must stay inside int32
        return None
    sh, sw = p.stride
    ph, pw = p.pad
    dh, dw = p.dil
    Hp, Wp = p.H + 2 * ph, p.W + 2 * pw
    w64 = p.w.astype(np.int64)
    zu = p.zx + (128 if p.x.dtype == np.int8 else 0)  # stored zero point as an unsigned byte
    corr = (zu * w64.reshape(p.K, -1).sum(axis=1)).astype(np.int32)
    depthwise = p.G == p.C and p.Cg == 1 and p.G > 1
    if depthwise:
        if (sh, sw) != (1, 1) or dw != 1 or p.kw > 4:
            return None
        Wd = np.zeros((p.K, p.kh, 4), np.int8)
        Wd[:, :, :p.kw] = p.w[:, 0]
        roffs = np.arange(p.kh, dtype=np.int64) * dh * Wp
        nblk = -(-(p.Ho * Wp) // kv.DWB)
        P = max(Hp * Wp, nblk * kv.DWB + int(roffs[-1]) + 4)
        return dict(kind="dw", Wd=Wd.reshape(-1).view(np.int32), roffs=roffs, nblk=nblk, P=P, Wp=Wp,
                    zu=zu, corr=corr)
    Kg = p.K // p.G
    nkb = -(-Kg // kv.KB)
    wg = p.w.reshape(p.G, Kg, p.Cg * p.kh * p.kw) if (sh, sw) != (1, 1) else None
    if wg is not None:  # strided: im2col of taps (c, i, j) in quads
        T = p.Cg * p.kh * p.kw
        Sq = -(-T // 4)
        wb = np.zeros((p.G, nkb * kv.KB, Sq * 4), np.int8)
        wb[:, :Kg, :T] = wg
        nblk = -(-(p.Ho * p.Wo) // kv.PB)
        P4 = nblk * kv.PB
        offs = np.arange(Sq, dtype=np.int64) * P4 * 4
        Wq = p.Wo
        kind = "im2col"
    else:  # stride 1: channel quads of the padded plane, one step per (quad, tap)
        Cq = -(-p.Cg // 4)
        w5 = np.zeros((p.G, nkb * kv.KB, Cq * 4, p.kh, p.kw), np.int8)
        w5[:, :Kg, :p.Cg] = p.w.reshape(p.G, Kg, p.Cg, p.kh, p.kw)
        # bytes (g, k, cq, u, i, j) -> steps (cq, i, j), dword bytes u
        wb = w5.reshape(p.G, nkb * kv.KB, Cq, 4, p.kh, p.kw).transpose(0, 1, 2, 4, 5, 3)
        Sq = Cq * p.kh * p.kw
        wb = wb.reshape(p.G, nkb * kv.KB, Sq * 4)
        nblk = -(-(p.Ho * Wp) // kv.PB)
        taps = (np.arange(p.kh)[:, None] * dh * Wp + np.arange(p.kw)[None, :] * dw).reshape(-1)
        P4 = max(Hp * Wp, nblk * kv.PB + int(taps.max()))
        offs = ((np.arange(Cq)[:, None] * P4 + taps[None, :]) * 4).reshape(-1).astype(np.int64)
        Wq = Wp
        kind = "direct"
    # (g, kb, kk, s, u) -> (g, kb, s, kk, u): one row of KB dwords per step
    Wk = np.ascontiguousarray(wb.reshape(p.G, nkb, kv.KB, Sq, 4).transpose(0, 1, 3, 2, 4)).reshape(-1).view(np.int32)
    chunk = max(1, min(nblk, (1 << 17) // (nkb * kv.KB * kv.PB)))  # accumulators of a task: ~512 KiB
    return dict(kind=kind, Wk=Wk, offs=offs, nkb=nkb, nblk=nblk, P4=P4, Sq=Sq, Wq=Wq, Hp=Hp, Wp=Wp,
                chunk=chunk, zu=zu, corr=corr)


def _vnni_run(v: dict, p: _Plan, x: np.ndarray, req: tuple) -> np.ndarray:
    """Run the VNNI kernels on stored activations ``x`` (the plan's geometry)."""
    from .kernels import intconv_vnni as kv

    odt = np.int32 if p.oq is None or p.mode == "exact" else p.out_dtype
    out = np.empty((p.N, p.K, p.Ho, p.Wo), dtype=odt)
    xu = x.view(np.uint8)
    flip = 128 if x.dtype == np.int8 else 0
    ph, pw = p.pad
    if v["kind"] == "dw":
        Xp = np.full((p.N, p.K, v["P"]), v["zu"], np.uint8)
        kv.pack_planes(xu, p.K // p.C, ph, pw, v["Wp"], np.uint8(flip), Xp)
        kv.conv_dw(Xp, v["Wd"], v["roffs"], p.Ho, p.Wo, v["Wp"], v["nblk"], v["corr"], *req, out)
    else:
        Kg = p.K // p.G
        if v["kind"] == "direct":
            fill = v["zu"] * 0x01010101
            if ph == 0 and pw == 0 and p.Cg % 4 == 0:  # the packing writes the whole plane: fill the slack only
                X4 = np.empty((p.N * p.G, v["Sq"] // (p.kh * p.kw), v["P4"]), np.uint32)
                X4[:, :, v["Hp"] * v["Wp"]:] = fill
            else:
                X4 = np.full((p.N * p.G, v["Sq"] // (p.kh * p.kw), v["P4"]), fill, np.uint32)
            kv.pack_quads(xu, p.G, p.Cg, ph, pw, v["Wp"], np.uint32(0x80808080 if flip else 0), X4)
        else:
            X4 = np.zeros((p.N * p.G, v["Sq"], v["P4"]), np.uint32)
            sh, sw = p.stride
            dh, dw = p.dil
            xp = np.full((p.N, p.C, v["Hp"], v["Wp"]), v["zu"], np.uint8)
            kv.pack_planes(xu, 1, ph, pw, v["Wp"], np.uint8(flip), xp.reshape(p.N, p.C, -1))
            kv.pack_im2col_quads(xp, p.G, p.Cg, p.kh, p.kw, sh, sw, dh, dw, p.Ho, p.Wo, X4)
        kv.conv_gemm(X4.reshape(p.N * p.G, -1).view(np.uint8), v["Wk"], v["offs"], p.G, Kg, v["nkb"], p.Ho, p.Wo, v["Wq"],
                     v["nblk"], v["chunk"], v["corr"], *req, out)
    if p.oq is None:
        return out
    if p.mode == "exact":
        out = _exact_requant(out.astype(np.int64), p)
    return out.astype(p.out_dtype, copy=False)


def _exact_requant(v: np.ndarray, p: _Plan) -> np.ndarray:
    """Round ``v · s_x s_w[k] / s_y`` exactly (float64 estimate, exact check near ties)."""
    rounding = p.oq.rounding
    res = np.empty(v.shape, dtype=np.int64)
    for k in range(p.K):
        r = Fraction(p.xq.scale) * Fraction(p.wqs[k].scale) / Fraction(p.oq.scale)
        vk = v[:, k]
        # the stored output codes lie within [-128, 255]: a multiplier beyond 2^20 saturates every
        # non-zero v exactly as the true one does (and neither float(r) nor v * r can overflow)
        r = min(r, Fraction(2**20))
        num, den = r.numerator, r.denominator
        y = vk * float(r)
        n = round_with(y, rounding)
        frac = np.abs(y - np.floor(y) - 0.5)
        unsure = frac <= np.abs(y) * 2.0**-45 + 2.0**-60
        n = n.astype(np.int64)
        for idx in zip(*np.nonzero(unsure), strict=True):
            n[idx] = _round_fraction(int(vk[idx]) * num, den, rounding)
        res[:, k] = n
    res += p.zo
    return np.clip(res, p.lo, p.hi)


def _round_fraction(a: int, b: int, rounding: str) -> int:
    """Round ``a / b`` (Python ints, ``b > 0``) to an integer with the given tie rule."""
    q, r = divmod(a, b)  # floor
    twice = 2 * r
    if twice < b:
        return q
    if twice > b:
        return q + 1
    if rounding == "half_even":
        return q + (q & 1)
    if rounding == "half_up":
        return q + 1
    return q + 1 if a > 0 else q  # half_away


# ============================================================================ reference path
def conv2d_reference(x: np.ndarray, w: np.ndarray, bias: ArrayLike | None = None, *, x_quant: Quantizer,
                     w_quant: Quantizer | Sequence[Quantizer], out_quant: Quantizer | None = None,
                     stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                     dilation: int | tuple[int, int] = 1, groups: int = 1, requant: str = "tflite",
                     relu: bool = False, out_dtype: DTypeLike | None = None) -> np.ndarray:
    """Plain int64 numpy version of :func:`conv2d` (same parameters, same result).

    Independent code: taps summed with ``einsum`` in int64, requantisation written out
    with numpy integer operations (``"exact"`` with Python integers). Slow; for tests.

    Examples
    --------
    >>> import numpy as np
    >>> from qtheory import Quantizer
    >>> xq, wq = Quantizer(8, 2.55, grid="unsigned"), Quantizer(8, 1.27, grid="narrow")
    >>> x = np.full((1, 1, 2, 2), 3, dtype=np.uint8); w = np.full((1, 1, 2, 2), -2, dtype=np.int8)
    >>> conv2d_reference(x, w, x_quant=xq, w_quant=wq)
    array([[[[-24]]]])
    """
    func = "conv2d_reference"
    p = _plan(func, x, w, bias, x_quant, w_quant, out_quant, stride, padding, dilation, groups,
              requant, relu, out_dtype)
    acc = _acc_reference(p) + p.ibias[None, :, None, None]
    if p.oq is None:
        return acc
    params = _multipliers(p, func)
    y = _requant_reference(acc, p, params)
    y = np.clip(y + p.zo, p.lo, p.hi)
    return y.astype(p.out_dtype)


def _acc_reference(p: _Plan) -> np.ndarray:
    sh, sw = p.stride
    ph, pw = p.pad
    dh, dw = p.dil
    xp = np.pad(p.x.astype(np.int64) - p.zx, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w = p.w.astype(np.int64)
    Kg = p.K // p.G
    acc = np.zeros((p.N, p.K, p.Ho, p.Wo), dtype=np.int64)
    for g in range(p.G):
        for i in range(p.kh):
            for j in range(p.kw):
                patch = xp[:, g * p.Cg:(g + 1) * p.Cg,
                           i * dh: i * dh + sh * (p.Ho - 1) + 1: sh,
                           j * dw: j * dw + sw * (p.Wo - 1) + 1: sw]
                acc[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch, w[g * Kg:(g + 1) * Kg, :, i, j])
    return acc


def _requant_reference(acc: np.ndarray, p: _Plan, params: dict) -> np.ndarray:
    cs = (None, slice(None), None, None)
    mode = p.mode
    if mode == "tflite":
        m0 = params["m0"][cs]
        s = params["shift"][cs]
        a = acc * (np.int64(1) << np.maximum(s, 0))
        ab = a * m0
        nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
        t = ab + nudge
        hi = np.where(t >= 0, t // 2**31, -((-t) // 2**31))  # truncation toward zero
        e = np.maximum(-s, 0)
        mask = (np.int64(1) << e) - 1
        rem = hi & mask
        thr = (mask >> 1) + (hi < 0)
        return (hi >> e) + (rem > thr)
    if mode == "tflite-single":
        t = 31 - params["shift"][cs]
        return (acc * params["m0"][cs] + (np.int64(1) << (t - 1))) >> t
    if mode == "fbgemm":
        fm = params["fmul"][cs]
        if p.fbias is None:
            xf = acc.astype(np.float32)
        else:
            xf = (acc - p.ibias[cs]).astype(np.float32) + params["fbias"][cs]
        with np.errstate(over="ignore"):
            prod = (xf * fm).astype(np.float32)
        # clamped before the conversion (cvtps2dq would give INT32_MIN beyond int32); any
        # value beyond +-2^31 saturates to the output range either way
        return np.rint(np.clip(prod, np.float32(-(2.0**31)), np.float32(2.0**31))).astype(np.int64)
    if mode == "po2":
        return round_with(acc * np.exp2(params["shift"][cs].astype(float)), p.oq.rounding).astype(np.int64)
    # exact: Python integers on every element
    out = np.empty(acc.shape, dtype=np.int64)
    for k in range(p.K):
        r = Fraction(p.xq.scale) * Fraction(p.wqs[k].scale) / Fraction(p.oq.scale)
        out[:, k] = np.vectorize(lambda v, r=r: min(max(_round_fraction(int(v) * r.numerator, r.denominator,
                                                                        p.oq.rounding), -(2**40)), 2**40),
                                 otypes=[np.int64])(acc[:, k])  # clamped into int64 (saturates below anyway)
    return out


def accumulator_bound(x_quant: Quantizer, w_quant: Quantizer, reduction: int) -> int:
    """Largest ``|acc|`` a reduction of ``reduction`` products can reach (the overflow check).

    >>> from qtheory import Quantizer
    >>> accumulator_bound(Quantizer(8, 1.0, grid="affine", beta=0.0), Quantizer(8, 1.0, grid="int"), 576)
    18800640
    """
    func = "accumulator_bound"
    xq = _check_quantizer(x_quant, "x_quant", func)
    wq = _check_quantizer(w_quant, "w_quant", func, WEIGHT_GRIDS)
    red = check_int(reduction, "reduction", func, 1)
    return red * max(abs(xq.qmin), abs(xq.qmax)) * max(abs(wq.qmin), abs(wq.qmax))


# ============================================================================ float conv
def conv2d_float(x: ArrayLike, w: ArrayLike, bias: ArrayLike | None = None, *, stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                 groups: int = 1) -> np.ndarray:
    """Float64 convolution (NCHW) with the same geometry conventions, in numpy.

    >>> conv2d_float(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))
    array([[[[4., 4.],
             [4., 4.]]]])
    """
    func = "conv2d_float"
    for name, v in (("x", x), ("w", w), ("bias", bias)):
        if v is not None and np.iscomplexobj(v):
            raise param_error(name, func, "real numbers", f"a complex array of dtype {np.asarray(v).dtype}", TypeError)
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 4:
        raise param_error("x", func, "a 4-D array (N, C, H, W)", f"array of shape {x.shape}")
    if w.ndim != 4:
        raise param_error("w", func, "a 4-D array (K, C/groups, kh, kw)", f"array of shape {w.shape}")
    G = check_int(groups, "groups", func, 1)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    if C % G or K % G or Cg * G != C:
        raise param_error("groups", func, "consistent with the shapes of x and w", G)
    sh, sw = _pair(stride, "stride", func, 1)
    ph, pw = _pair(padding, "padding", func, 0)
    dh, dw = _pair(dilation, "dilation", func, 1)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise param_error("padding", func, "large enough for the kernel", (ph, pw))
    _check_sizes(func, N, C, H, W, K, ph, pw, Ho, Wo)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Kg = K // G
    y = np.zeros((N, K, Ho, Wo))
    for g in range(G):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * Cg:(g + 1) * Cg, i * dh: i * dh + sh * (Ho - 1) + 1: sh,
                           j * dw: j * dw + sw * (Wo - 1) + 1: sw]
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch, w[g * Kg:(g + 1) * Kg, :, i, j],
                                                       optimize=True)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y


# ============================================================================ analytic layer error
@dataclass(frozen=True)
class QuantizerMoments:
    """Moments of a value ``X`` and its quantized version ``Q = Q(X)`` under a prior.

    Attributes
    ----------
    x1, x2 : float
        ``E[X]``, ``E[X²]``.
    q1, q2 : float
        ``E[Q]``, ``E[Q²]``.
    xq : float
        ``E[X·Q]``.
    """

    x1: float
    x2: float
    q1: float
    q2: float
    xq: float

    @property
    def mse(self) -> float:
        """``E[(Q − X)²]`` (equals :func:`qtheory.clipping_mse` with ``method="exact"``)."""
        return self.q2 - 2.0 * self.xq + self.x2

    @property
    def cross(self) -> float:
        """``E[X·(Q − X)]``: negative when clipping dominates, ≈ 0 for pure rounding."""
        return self.xq - self.x2


def quantizer_moments(prior: PriorLike, quant: Quantizer) -> QuantizerMoments:
    """``E[X], E[X²], E[Q], E[Q²], E[XQ]`` of ``quant`` under ``prior``, bin by bin.

    Exact for closed-form priors (sums of the prior's partial moments over the quantizer's
    cells), exact sums over the samples for an array.

    Examples
    --------
    >>> from qtheory import Quantizer, clipping_mse
    >>> m = quantizer_moments("laplace", Quantizer(4, 5.0, grid="narrow"))
    >>> round(m.mse, 10) == round(clipping_mse("laplace", 5.0, 4, grid="narrow").mse, 10)
    True
    >>> m.cross < 0
    True
    """
    from .mse import quantizer_intervals
    from .priors import Empirical, as_prior

    func = "quantizer_moments"
    pr = as_prior(prior, name="prior", func=func)
    q = _check_quantizer(quant, "quant", func, ("midrise",) + ACTIVATION_GRIDS)
    if isinstance(pr, Empirical):
        x = pr.x
        y = q.quantize(x)
        return QuantizerMoments(float(x.mean()), float(np.mean(x * x)), float(y.mean()), float(np.mean(y * y)),
                                float(np.mean(x * y)))
    a, b, y, _ = quantizer_intervals(q)
    m0, m1, m2 = pr.partial_moments(a, b)
    return QuantizerMoments(float(math.fsum(m1)), float(math.fsum(m2)), float(math.fsum(y * m0)),
                            float(math.fsum(y * y * m0)), float(math.fsum(y * m1)))


@dataclass(frozen=True)
class LayerError:
    """Output error of a quantized convolution (predicted or measured).

    Attributes
    ----------
    signal : float
        Mean square of the float output ``y`` (averaged over output channels).
    accumulation : float
        Mean square error of the accumulator ``Σ ŵ x̂`` against ``y`` (input and weight
        quantization, clipping included).
    output : float
        Mean square error added by requantisation to ``out_quant`` (0 without one).
    noise : float
        Total mean square error of the layer output.
    sqnr_db : float
        ``10 log10(signal / noise)``.
    output_rms : float
        RMS of the accumulator in real units over all output channels.
    signal_k, noise_k, rms_k : ndarray
        Per-output-channel signal, total noise and accumulator RMS (what a per-tensor
        output clip is calibrated against: its largest value).
    """

    signal: float
    accumulation: float
    output: float
    noise: float
    sqnr_db: float
    output_rms: float
    signal_k: np.ndarray
    noise_k: np.ndarray
    rms_k: np.ndarray


def _db(s, n) -> float:
    return float(10.0 * np.log10(s / n)) if n > 0 else math.inf


def _prior_list(prior, n, name, func):
    from .priors import as_prior

    if isinstance(prior, (list, tuple)):
        if len(prior) not in (1, n):
            raise param_error(name, func, f"one prior or {n} (one per output channel)", f"{len(prior)} priors")
        ps = [as_prior(p, name=name, func=func) for p in prior]
        return ps * n if len(ps) == 1 else ps
    return [as_prior(prior, name=name, func=func)] * n


def predict_layer_error(x_prior: PriorLike | Sequence[PriorLike], w_prior: PriorLike | Sequence[PriorLike],
                        x_quant: Quantizer, w_quant: Quantizer | Sequence[Quantizer], n_terms: int, *,
                        out_quant: Quantizer | None = None) -> LayerError:
    """Predict the output error of a quantized convolution from priors, clips and bits.

    Each output is ``y = Σ_{i<n} w_i x_i`` over ``n = C/groups · kh · kw`` products with
    independent ``x_i ~ x_prior`` and ``w_i ~ w_prior`` (per output channel when a list is
    given). The quantized layer computes ``ŷ = Σ ŵ_i x̂_i``; with ``d = ŵx̂ − wx``::

        E[(ŷ − y)²] = n·E[d²] + n(n − 1)·E[d]²,
        E[d²] = E[ŵ²]E[x̂²] − 2E[wŵ]E[xx̂] + E[w²]E[x²]
              = σ²_w·mse_x + σ²_x·mse_w + mse_w·mse_x + 2(c_w·mse_x + c_x·mse_w + c_w·c_x)

    (second moments ``σ²``, MSEs ``mse`` and cross terms ``c = E[X(Q − X)]`` of
    :func:`quantizer_moments`; the cross terms carry the clipping). The requantisation
    error is the MSE of ``out_quant`` under a Gaussian with the mean and variance of ``ŷ``
    (central limit), added as independent noise.

    Parameters
    ----------
    x_prior, w_prior : prior or list of priors
        Anything :func:`qtheory.priors.as_prior` accepts; ``w_prior`` may be one per channel.
    x_quant : Quantizer
        Activation quantizer (real units).
    w_quant : Quantizer or sequence of Quantizer
        Weight quantizer(s), per tensor or per output channel.
    n_terms : int
        Reduction length ``C/groups · kh · kw``.
    out_quant : Quantizer, optional
        Output quantizer (real units).

    Examples
    --------
    >>> from qtheory import Quantizer, Gaussian, Laplace, Rectified
    >>> e = predict_layer_error(Rectified(Gaussian()), Laplace(0.05), Quantizer(8, 4.0, grid="unsigned"),
    ...                         Quantizer(8, 0.5, grid="narrow"), 576)
    >>> round(e.sqnr_db, 1)
    34.8
    """
    func = "predict_layer_error"
    n = check_int(n_terms, "n_terms", func, 1)
    xq = _check_quantizer(x_quant, "x_quant", func, ("midrise",) + ACTIVATION_GRIDS)
    wqs = _as_quantizers(w_quant, "w_quant", func, ("midrise",) + WEIGHT_GRIDS)
    nch = len(wqs)
    if isinstance(w_prior, (list, tuple)) and len(w_prior) > 1:
        if nch == 1:
            wqs = wqs * len(w_prior)
            nch = len(w_prior)
    wps = _prior_list(w_prior, nch, "w_prior", func)
    (xp,) = _prior_list(x_prior, 1, "x_prior", func)
    if out_quant is not None:
        _check_quantizer(out_quant, "out_quant", func, ("midrise",) + ACTIVATION_GRIDS)
    mx = quantizer_moments(xp, xq)
    sig = np.empty(nch)
    acc = np.empty(nch)
    outn = np.zeros(nch)
    rms2 = np.empty(nch)
    from .priors import Gaussian

    cache = {}
    for k in range(nch):
        key = (id(wps[k]), wqs[k])
        if key not in cache:
            mw = quantizer_moments(wps[k], wqs[k])
            e_d = mw.q1 * mx.q1 - mw.x1 * mx.x1
            e_d2 = mw.q2 * mx.q2 - 2.0 * mw.xq * mx.xq + mw.x2 * mx.x2
            s = n * mw.x2 * mx.x2 + n * (n - 1) * (mw.x1 * mx.x1) ** 2
            a = max(n * e_d2 + n * (n - 1) * e_d**2, 0.0)
            mean_hat = n * mw.q1 * mx.q1
            var_hat = max(n * (mw.q2 * mx.q2 - (mw.q1 * mx.q1) ** 2), 0.0)
            o = 0.0
            if out_quant is not None and var_hat > 0:
                o = quantizer_moments(Gaussian(math.sqrt(var_hat), loc=mean_hat), out_quant).mse
            cache[key] = (s, a, o, var_hat + mean_hat**2)
        sig[k], acc[k], outn[k], rms2[k] = cache[key]
    noise_k = acc + outn
    return LayerError(float(sig.mean()), float(acc.mean()), float(outn.mean()), float(noise_k.mean()),
                      _db(sig.mean(), noise_k.mean()), float(math.sqrt(rms2.mean())), sig, noise_k,
                      np.sqrt(rms2))


def predict_layer_error_given_weights(x_prior: PriorLike, w: ArrayLike, x_quant: Quantizer,
                                      w_quant: Quantizer | Sequence[Quantizer], *,
                                      out_quant: Quantizer | None = None) -> LayerError:
    """Predict the output error of a conv whose float weights ``w`` are known.

    Like :func:`predict_layer_error` with the weights fixed instead of drawn: for output
    channel ``k`` with weights ``w_i`` and their quantized values ``ŵ_i`` (``w_quant``), and
    i.i.d. activations with the moments of ``x_prior`` under ``x_quant``,

        E[y²]       = Σw²·Var X + (E[X]·Σw)²
        E[(ŷ − y)²] = Σŵ²·Var Q − 2Σwŵ·Cov(X, Q) + Σw²·Var X + (E[Q]·Σŵ − E[X]·Σw)²

    (valid convolution: every output sums all ``C/groups·kh·kw`` products). The
    requantisation error is the MSE of ``out_quant`` under a Gaussian with the mean
    ``E[Q]·Σŵ`` and variance ``Σŵ²·Var Q`` of the accumulator.

    Examples
    --------
    >>> import numpy as np
    >>> from qtheory import Quantizer, Gaussian, Rectified
    >>> w = np.random.default_rng(0).laplace(0, 0.05, (8, 16, 3, 3))
    >>> e = predict_layer_error_given_weights(Rectified(Gaussian()), w, Quantizer(8, 4.0, grid="unsigned"),
    ...                                       Quantizer(8, 0.5, grid="narrow"))
    >>> 30 < e.sqnr_db < 45
    True
    """
    from .priors import Gaussian, as_prior

    func = "predict_layer_error_given_weights"
    xp = as_prior(x_prior, name="x_prior", func=func)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim < 2 or w.size == 0 or not np.all(np.isfinite(w)):
        raise param_error("w", func, "a finite array (K, C/groups, kh, kw)", f"array of shape {w.shape}")
    xq = _check_quantizer(x_quant, "x_quant", func, ("midrise",) + ACTIVATION_GRIDS)
    wqs = _as_quantizers(w_quant, "w_quant", func, ("midrise",) + WEIGHT_GRIDS)
    K = w.shape[0]
    if len(wqs) not in (1, K):
        raise param_error("w_quant", func, f"one Quantizer or {K}", f"{len(wqs)} quantizers")
    if out_quant is not None:
        _check_quantizer(out_quant, "out_quant", func, ("midrise",) + ACTIVATION_GRIDS)
    wf = w.reshape(K, -1)
    wh = np.stack([(wqs[k] if len(wqs) > 1 else wqs[0]).quantize(wf[k]) for k in range(K)])
    mx = quantizer_moments(xp, xq)
    vx = mx.x2 - mx.x1**2
    vq = mx.q2 - mx.q1**2
    cxq = mx.xq - mx.x1 * mx.q1
    s1, s2 = wf.sum(1), (wf * wf).sum(1)
    h1, h2, hx = wh.sum(1), (wh * wh).sum(1), (wf * wh).sum(1)
    sig = s2 * vx + (mx.x1 * s1) ** 2
    acc = np.maximum(h2 * vq - 2.0 * hx * cxq + s2 * vx + (mx.q1 * h1 - mx.x1 * s1) ** 2, 0.0)
    mean_hat, var_hat = mx.q1 * h1, np.maximum(h2 * vq, 0.0)
    outn = np.zeros(K)
    if out_quant is not None:
        for k in range(K):
            if var_hat[k] > 0:
                outn[k] = quantizer_moments(Gaussian(math.sqrt(var_hat[k]), loc=mean_hat[k]), out_quant).mse
            else:
                outn[k] = float((out_quant.quantize(mean_hat[k]) - mean_hat[k]) ** 2)
    noise_k = acc + outn
    return LayerError(float(sig.mean()), float(acc.mean()), float(outn.mean()), float(noise_k.mean()),
                      _db(sig.mean(), noise_k.mean()), float(np.sqrt(np.mean(var_hat + mean_hat**2))), sig, noise_k,
                      np.sqrt(var_hat + mean_hat**2))


def measure_layer_error(x: ArrayLike, w: ArrayLike, *, x_quant: Quantizer, w_quant: Quantizer | Sequence[Quantizer],
                        out_quant: Quantizer | None = None, stride: int | tuple[int, int] = 1,
                        padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                        groups: int = 1, requant: str = "tflite", x_dtype: DTypeLike | None = None) -> LayerError:
    """Measure the output error of the integer convolution on float tensors ``x``, ``w``.

    ``x`` and ``w`` are quantized with the given quantizers, convolved by :func:`conv2d`
    (int32 accumulators, then requantised with ``requant`` when ``out_quant`` is given) and
    compared with :func:`conv2d_float` of the float tensors.

    Examples
    --------
    >>> import numpy as np
    >>> from qtheory import Quantizer
    >>> rng = np.random.default_rng(1)
    >>> x, w = np.maximum(rng.normal(size=(2, 16, 10, 10)), 0), rng.laplace(0, 0.05, (8, 16, 3, 3))
    >>> m = measure_layer_error(x, w, x_quant=Quantizer(8, 4.0, grid="unsigned"),
    ...                         w_quant=Quantizer(8, 0.5, grid="narrow"))
    >>> 30 < m.sqnr_db < 45
    True
    """
    func = "measure_layer_error"
    x = check_samples(x, "x", func, ndim=4)
    w = check_samples(w, "w", func, ndim=4)
    xq = _check_quantizer(x_quant, "x_quant", func)
    wqs = _as_quantizers(w_quant, "w_quant", func, WEIGHT_GRIDS)
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = conv2d_float(x, w, **geo)
    xc = quantize(x, xq, dtype=x_dtype)
    wc = quantize(w, wqs if len(wqs) > 1 else wqs[0], dtype="int8", axis=0)
    acc = conv2d(xc, wc, x_quant=xq, w_quant=w_quant, **geo)
    sws = np.array([q.scale for q in wqs]) if len(wqs) > 1 else np.full(w.shape[0], wqs[0].scale)
    yhat = acc * (xq.scale * sws)[None, :, None, None]
    axes = (0, 2, 3)
    sig = np.mean(y * y, axis=axes)
    accn = np.mean((yhat - y) ** 2, axis=axes)
    noise = accn
    if out_quant is not None:
        yc = conv2d(xc, wc, x_quant=xq, w_quant=w_quant, out_quant=out_quant, requant=requant, **geo)
        noise = np.mean((dequantize(yc, out_quant) - y) ** 2, axis=axes)
    return LayerError(float(sig.mean()), float(accn.mean()), float(noise.mean() - accn.mean()),
                      float(noise.mean()), _db(sig.mean(), noise.mean()), float(np.sqrt(np.mean(yhat**2))),
                      sig, noise, np.sqrt(np.mean(yhat**2, axis=axes)))


def sqnr_sweep(x_prior: PriorLike | Sequence[PriorLike], w_prior: PriorLike | Sequence[PriorLike], *,
               bits: int | Sequence[int] = (4, 5, 6, 7, 8),
               clip_ratios: float | Sequence[float] = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
               shape: Sequence[int] = (2, 32, 18, 18, 64, 3, 3), x_grid: str = "unsigned", w_grid: str = "narrow",
               out_bits: int | None = 8, out_clip: float = 4.0, requant: str = "tflite",
               weight_model: str = "tensor", weights: ArrayLike | None = None,
               rng: RNGLike = None, progress: bool | None = None) -> pd.DataFrame:
    """Predicted vs measured output SQNR of a quantized conv over bits and clip ratios.

    For every bit-width ``b`` (activations and weights alike) and clip ratio ``r``, the
    activation clip is ``r · x_prior.scale`` and the weight clip ``r · w_prior[k].scale``
    (per channel when ``w_prior`` is a list), the output quantizer has ``out_bits`` bits and
    a clip of ``out_clip`` times the predicted RMS of the accumulator's largest channel. One draw of ``x`` and
    ``w`` (or the given ``weights``) is shared by all cells; the measurement runs
    :func:`conv2d` (valid padding, stride 1).

    ``weight_model="tensor"`` predicts with the empirical distribution of each output
    channel's actual weights (the layer is known, the activations are a prior);
    ``"prior"`` predicts with ``w_prior`` itself, i.e. the average over weight draws — a
    single drawn tensor then differs from it by the sampling error of its few clipped
    weights, which at large clip ratios is of the order of a dB.

    ``progress``: a tqdm bar over the (bits, clip ratio) cells (``None``: only after 2 s, in a
    terminal or notebook; ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame
        Columns ``bits, clip_ratio, predicted_db, measured_db, gap_db,
        predicted_acc_db, measured_acc_db``.

    Examples
    --------
    >>> from qtheory import Gaussian, Laplace, Rectified
    >>> df = sqnr_sweep(Rectified(Gaussian()), Laplace(0.05), bits=(6,), clip_ratios=(3.0,),
    ...                 shape=(1, 8, 10, 10, 8, 3, 3), rng=0)
    >>> list(df.columns)[:4]
    ['bits', 'clip_ratio', 'predicted_db', 'measured_db']
    >>> bool(abs(df.gap_db.iloc[0]) < 1.0)
    True
    """
    import pandas as pd

    func = "sqnr_sweep"
    bits = [check_int(b, "bits", func, 2, 8) for b in np.atleast_1d(bits).tolist()]
    ratios = [check_real(r, "clip_ratios", func, 0.0, low_open=True) for r in np.atleast_1d(clip_ratios).tolist()]
    x_grid = check_option(x_grid, "x_grid", func, ("unsigned", "uint", "int", "narrow"))
    weight_model = check_option(weight_model, "weight_model", func, ("tensor", "prior"))
    w_grid = check_option(w_grid, "w_grid", func, WEIGHT_GRIDS)
    if out_bits is not None:
        out_bits = check_int(out_bits, "out_bits", func, 2, 8)
    out_clip = check_real(out_clip, "out_clip", func, 0.0, low_open=True)
    progress = check_progress(progress, func)
    if len(shape) != 7:
        raise param_error("shape", func, "a tuple (N, C, H, W, K, kh, kw)", shape)
    N, C, H, W, K, kh, kw = (check_int(v, "shape", func, 1) for v in shape)
    gen = np.random.default_rng(rng)
    wps = _prior_list(w_prior, K, "w_prior", func)
    (xp,) = _prior_list(x_prior, 1, "x_prior", func)
    per_ch = isinstance(w_prior, (list, tuple)) and len(w_prior) > 1
    x = xp.rvs(N * C * H * W, gen).reshape(N, C, H, W)
    if weights is None:
        w = np.stack([wps[k].rvs(C * kh * kw, gen) for k in range(K)]).reshape(K, C, kh, kw)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (K, C, kh, kw):
            raise param_error("weights", func, f"an array of shape {(K, C, kh, kw)}", f"shape {w.shape}")
    n = C * kh * kw
    rows = []
    for b, r in progress_bar([(b, r) for b in bits for r in ratios], progress, func):
        xq = Quantizer(b, r * xp.scale, grid=x_grid)
        if per_ch:
            wq = per_channel(b, [r * p.scale for p in wps], grid=w_grid)
        else:
            wq = Quantizer(b, r * wps[0].scale, grid=w_grid)
        if weight_model == "tensor":
            def predict(oq, xq=xq, wq=wq):
                return predict_layer_error_given_weights(xp, w, xq, wq, out_quant=oq)
        else:
            def predict(oq, xq=xq, wq=wq):
                return predict_layer_error(xp, wps if per_ch else wps[0], xq, wq, n, out_quant=oq)
        pre = predict(None)
        oq = None
        if out_bits is not None:
            oq = Quantizer(out_bits, out_clip * float(pre.rms_k.max()), grid="int")
            pre = predict(oq)
        mea = measure_layer_error(x, w, x_quant=xq, w_quant=wq, out_quant=oq, requant=requant)
        rows.append({"bits": b, "clip_ratio": r, "predicted_db": pre.sqnr_db, "measured_db": mea.sqnr_db,
                     "gap_db": mea.sqnr_db - pre.sqnr_db,
                     "predicted_acc_db": _db(pre.signal, pre.accumulation),
                     "measured_acc_db": _db(mea.signal, mea.accumulation)})
    return pd.DataFrame(rows)
