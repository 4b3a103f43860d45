"""Block-scaled formats (OCP MX, NVFP4, group-wise INT): tensor path and exact expected MSE under a prior."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .._results import ResultMixin
from .._typing import ArrayLike, PriorLike, RNGLike
from .._validation import check_int, check_option, check_real, check_samples, param_error
from ..priors import _ldexp
from ..quantizer import LevelSet
from .codebooks import level_set
from .element import FORMATS

__all__ = ["BlockFormat", "BLOCK_FORMATS", "BLOCK_RULES", "block_scale", "quantize_blocks", "tensor_mse",
           "block_mse", "BlockMSEResult", "block_montecarlo", "BlockMCResult"]

#: Scale rules. MX (E8M0, power of two): "floor" (OCP MX v1.0: 2^(floor(log2 amax) − emax_elem)),
#: "ceil" (smallest power of two with amax/scale <= max_elem: never saturates), "rne" (nearest
#: power of two to amax/max_elem, ties up, as an E8M0 cast). Others: "absmax" (amax/max_elem
#: rounded to the scale format), "nvfp4" (E4M3 block scale times an FP32 tensor scale) and
#: "4over6" (NVFP4, per block the better of amax→6 and amax→4).
BLOCK_RULES = ("floor", "ceil", "rne", "absmax", "nvfp4", "4over6")
SCALE_FORMATS = {"e8m0": 8, "e4m3": 8, "fp16": 16, "bf16": 16, "fp32": 32}
_SCALE_LEVELS = {"e4m3": "fp8_e4m3fn", "fp16": "fp16", "bf16": "bf16"}


def _mxint8_levels() -> LevelSet:
    return LevelSet.from_levels(np.arange(-127, 128) / 64.0, name="mxint8")


def _element_levels(name: str) -> LevelSet:
    if name == "mxint8":
        return _mxint8_levels()
    if name == "mxint4":  # 1.2 fixed point, symmetric
        return LevelSet.from_levels(np.arange(-7, 8) / 4.0, name="mxint4")
    m = re.fullmatch(r"int(\d+)_narrow", name) if isinstance(name, str) else None
    if m:
        from .codebooks import int_levels

        return int_levels(int(m[1]), narrow=True)
    return level_set(name)


@dataclass(frozen=True)
class BlockFormat:
    """An element codebook, a scale format and rule, and a block size (gfloat's ``BlockFormatInfo``).

    Parameters
    ----------
    name : str
    element : str
        Element codebook name (:func:`qtheory.formats.level_set`, plus ``"mxint8"`` = ``k/64`` for
        ``|k| <= 127`` and ``"int<b>_narrow"``).
    block_size : int
    scale : {"e8m0", "e4m3", "fp16", "bf16", "fp32"}
        Storage format of the per-block scale (counts toward bits per element).
    rule : str
        One of :data:`BLOCK_RULES`.

    Examples
    --------
    >>> f = BLOCK_FORMATS["mxfp4"]
    >>> f.bits_per_element, f.emax_elem, f.element_max
    (4.25, 2, 6.0)
    >>> BLOCK_FORMATS["nvfp4"].bits_per_element, BLOCK_FORMATS["int4_g128"].bits_per_element
    (4.5, 4.125)
    """

    name: str
    element: str
    block_size: int
    scale: str
    rule: str

    def __post_init__(self):
        func = "BlockFormat"
        try:
            _element_levels(self.element)
        except (TypeError, ValueError):
            raise param_error("element", func, "an element codebook name (qtheory.formats.level_set, 'mxint8', "
                              "'mxint4' or 'int<b>_narrow' with 2 <= b <= 16)", self.element,
                              ValueError if isinstance(self.element, str) else TypeError) from None
        check_int(self.block_size, "block_size", func, 1, 1 << 20)
        check_option(self.scale, "scale", func, tuple(SCALE_FORMATS))
        check_option(self.rule, "rule", func, BLOCK_RULES)
        if (self.rule in ("floor", "ceil", "rne")) != (self.scale == "e8m0"):
            raise param_error("rule", func, "'floor', 'ceil' or 'rne' exactly when scale='e8m0'", self.rule)
        if self.rule in ("nvfp4", "4over6") and self.scale != "e4m3":
            raise param_error("scale", func, "'e4m3' with the NVFP4 rules", self.scale)

    @cached_property
    def levels(self) -> LevelSet:
        return _element_levels(self.element)

    @property
    def element_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.levels.levels.size)))

    @property
    def bits_per_element(self) -> float:
        """Element bits plus the scale bits shared by the block (the NVFP4 tensor scale is not counted)."""
        return self.element_bits + SCALE_FORMATS[self.scale] / self.block_size

    @property
    def element_max(self) -> float:
        return self.levels.amax

    @property
    def emax_elem(self) -> int:
        """``floor(log2(element_max))`` (OCP MX: 2 for E2M1/E2M3, 4 E3M2, 8 E4M3, 15 E5M2, 0 INT8)."""
        return math.frexp(self.element_max)[1] - 1

    def with_rule(self, rule: str, block_size: int | None = None) -> BlockFormat:
        """The same format with another scale rule (and block size)."""
        bs = self.block_size if block_size is None else block_size
        return replace(self, name=f"{self.name}[{rule},{bs}]", rule=rule, block_size=bs)


#: The named block formats of the CLI.
BLOCK_FORMATS: dict[str, BlockFormat] = {
    f.name: f
    for f in (
        BlockFormat("mxfp4", "fp4_e2m1fn", 32, "e8m0", "floor"),
        BlockFormat("mxfp6_e2m3", "fp6_e2m3fn", 32, "e8m0", "floor"),
        BlockFormat("mxfp6_e3m2", "fp6_e3m2fn", 32, "e8m0", "floor"),
        BlockFormat("mxfp8_e4m3", "fp8_e4m3fn", 32, "e8m0", "floor"),
        BlockFormat("mxfp8_e5m2", "fp8_e5m2", 32, "e8m0", "floor"),
        BlockFormat("mxint8", "mxint8", 32, "e8m0", "floor"),
        BlockFormat("mxint4", "mxint4", 32, "e8m0", "floor"),
        BlockFormat("nvint4", "int4_narrow", 16, "e4m3", "nvfp4"),
        BlockFormat("nvfp4", "fp4_e2m1fn", 16, "e4m3", "nvfp4"),
        BlockFormat("nvfp4_4over6", "fp4_e2m1fn", 16, "e4m3", "4over6"),
        BlockFormat("int4_g32", "int4_narrow", 32, "fp16", "absmax"),
        BlockFormat("int4_g128", "int4_narrow", 128, "fp16", "absmax"),
        BlockFormat("int8_g32", "int8_narrow", 32, "fp16", "absmax"),
    )
}


def _get(fmt, func) -> BlockFormat:
    if isinstance(fmt, BlockFormat):
        return fmt
    if isinstance(fmt, str) and fmt in BLOCK_FORMATS:
        return BLOCK_FORMATS[fmt]
    raise param_error("fmt", func, "a BlockFormat or one of " + ", ".join(map(repr, BLOCK_FORMATS)), fmt,
                      ValueError if isinstance(fmt, str) else TypeError)


# ----------------------------------------------------------------------------- scale rules
def _round_to(levels: LevelSet, u):
    """Round non-negative ``u`` to the nearest value of a sign-magnitude FP level set (RNE, saturating)."""
    from ..quantizer import CODEBOOK, Quantizer

    q = Quantizer(16, levels.amax, CODEBOOK, "half_even", codebook=levels)
    return q.quantize(u)


def _pow2_exponent(bf: BlockFormat, m):
    """E8M0 scale exponent ``k`` (clamped to ``[-127, 127]``) of the block maxima ``m >= 0``.

    With ``m = f·2^e`` and ``element_max = F·2^E`` (``f, F`` in ``[1/2, 1)``, from ``frexp``),
    ``m / element_max = (f/F)·2^(e − E)`` with ``f/F`` in ``(1/2, 2)``, so each rule is ``e − E``
    plus an exact comparison of the two mantissas; the ratio itself is never formed (it
    underflows to 0 for ``m`` below about ``element_max·2^-1075``). ``m = 0`` gives the lowest
    exponent for "ceil" and "rne" (the limit ``m → 0``); "floor" keeps ``frexp(0)``'s exponent 0.
    """
    m = np.asarray(m, dtype=np.float64)
    f, e = np.frexp(m)  # m = f 2^e, f in [0.5, 1) (f = e = 0 for m = 0)
    e = e.astype(np.int64)
    if bf.rule == "floor":
        k = e - 1 - bf.emax_elem
    else:
        F, E = math.frexp(bf.element_max)
        j = e - E
        if bf.rule == "ceil":
            # smallest k with element_max·2^k >= m: 2^(k − j) >= f/F, f/F in (1/2, 2)
            k = j + (f > F)
        else:
            # rne: nearest power of two to r = m / element_max in the linear domain, ties up, i.e.
            # the k with 0.75·2^k <= r < 1.5·2^k: compare 4f with 3F and 6F as exact integers
            fi = np.ldexp(np.where(np.isfinite(f), f, 0.0), 53).astype(np.int64)
            Fi = int(math.ldexp(F, 53))
            k = j - (4 * fi < 3 * Fi) + (4 * fi >= 6 * Fi)
        k = np.where(m > 0, k, -127)
        k = np.where(np.isposinf(m), 127, k)
    return np.clip(k, -127, 127)


def block_scale(fmt: str | BlockFormat, amax: ArrayLike, tensor_amax: float | None = None, *, four: bool = False) -> np.ndarray:
    """Per-block scale ``s`` from the block maxima ``amax`` (elements are quantized as ``s·Q(x/s)``).

    For the NVFP4 rules ``s = E4M3(amax / (6·s_t)) · s_t`` with ``s_t = tensor_amax / (448·6)``
    (``four=True``: ``amax/4`` instead, the other half of "4 over 6"; for other elements 6 is their
    largest level, e.g. 7 for the INT4 of "NVINT4"); an E4M3 scale that rounds to 0
    is raised to its smallest subnormal, 2^-9. For ``"absmax"`` an FP16/BF16 scale that rounds to 0
    is raised to the smallest subnormal of that format.

    >>> block_scale("mxfp4", [1.0, 5.9, 6.0, 8.0]).tolist()
    [0.25, 1.0, 1.0, 2.0]
    >>> block_scale(BLOCK_FORMATS["mxfp4"].with_rule("ceil"), [1.0, 5.9, 6.0, 8.0]).tolist()
    [0.25, 1.0, 1.0, 2.0]
    """
    bf = _get(fmt, "block_scale")
    m = np.asarray(amax, dtype=np.float64)
    if bf.scale == "e8m0":
        return np.ldexp(1.0, _pow2_exponent(bf, m))
    if bf.rule == "absmax":
        if bf.scale == "fp32":  # (RNE to float32, saturating; 0 raised to its smallest subnormal)
            f32 = np.finfo(np.float32)
            with np.errstate(over="ignore"):
                s = np.minimum(np.abs((m / bf.element_max).astype(np.float32)), f32.max).astype(np.float64)
            return np.where(s > 0, s, float(f32.smallest_subnormal))
        sl = FORMATS[_SCALE_LEVELS[bf.scale]]
        s = _round_to(sl.level_set(), m / bf.element_max)
        return np.where(s > 0, s, sl.min_subnormal)
    if tensor_amax is None:
        raise param_error("tensor_amax", "block_scale", "a finite real number > 0 for the NVFP4 rules", None)
    tensor_amax = check_real(tensor_amax, "tensor_amax", "block_scale", 0.0, low_open=True)
    top = bf.element_max  # 6 for E2M1
    e = math.frexp(tensor_amax)[1]  # (at unit scale: ta/2688 underflows for a subnormal tensor amax)
    st = math.ldexp(tensor_amax, -e) / (448.0 * top)
    e4 = FORMATS["fp8_e4m3fn"]
    sb = _round_to(e4.level_set(), _ldexp(m, -e) / ((top * 2.0 / 3.0 if four else top) * st))
    return _ldexp(np.where(sb > 0, sb, e4.min_subnormal) * st, e)


# ----------------------------------------------------------------------------- tensor path
def quantize_blocks(x: ArrayLike, fmt: str | BlockFormat, *, axis: int = -1, tensor_amax: float | None = None) -> np.ndarray:
    """Quantize a tensor in blocks of ``block_size`` along ``axis`` (the last block zero-padded).

    A value that rounds to zero keeps its sign: a negative value (or ``-0.0``) gives ``-0.0``, as
    an IEEE (and ml_dtypes) cast to the element format does.

    Parameters
    ----------
    x : array_like
        Finite real values.
    fmt : str or BlockFormat
    axis : int
    tensor_amax : float, optional
        NVFP4's per-tensor amax (default: ``max|x|``, the recipe).

    Examples
    --------
    >>> quantize_blocks([0.1, -0.7, 2.9, 5.0], BLOCK_FORMATS["mxfp4"].with_rule("floor", 4)).tolist()
    [0.0, -0.5, 3.0, 4.0]
    """
    func = "quantize_blocks"
    bf = _get(fmt, func)
    x = check_samples(x, "x", func, ndim=None)
    axis = check_int(axis, "axis", func, -max(x.ndim, 1), max(x.ndim, 1) - 1)  # (0.5, "0", None, True: TypeError)
    xm = np.moveaxis(np.atleast_1d(x), axis, -1)
    n = xm.shape[-1]
    pad = (-n) % bf.block_size
    xp = np.concatenate([xm, np.zeros(xm.shape[:-1] + (pad,))], axis=-1) if pad else xm
    blocks = xp.reshape(xp.shape[:-1] + (-1, bf.block_size))
    if bf.rule in ("nvfp4", "4over6"):
        ta = float(np.max(np.abs(x))) if tensor_amax is None else check_real(
            tensor_amax, "tensor_amax", func, 0.0, low_open=True)
        if ta == 0.0:
            return np.array(x, dtype=np.float64)  # (all ±0: signs kept)
        # the NVFP4 rules are relative to the tensor amax: they run on x / 2^e with 2^e near it, an
        # exact scaling (in the data's own units the tensor scale ta/2688 underflows for subnormal
        # data, and squared errors underflow or overflow from ~1e∓155)
        e = math.frexp(ta)[1]
        blocks = _ldexp(blocks, -e)
        ta = math.ldexp(ta, -e)
        amax = np.max(np.abs(blocks), axis=-1, keepdims=True)
        q = _quantize_with(bf, blocks, block_scale(bf, amax, ta))
        if bf.rule == "4over6":
            q4 = _quantize_with(bf, blocks, block_scale(bf, amax, ta, four=True))
            better4 = (np.sum((q4 - blocks) ** 2, axis=-1, keepdims=True)
                       < np.sum((q - blocks) ** 2, axis=-1, keepdims=True))
            q = np.where(better4, q4, q)
        q = _ldexp(q, e)
    else:
        amax = np.max(np.abs(blocks), axis=-1, keepdims=True)
        q = _quantize_with(bf, blocks, block_scale(bf, amax))
    q = q.reshape(xp.shape)[..., :n]
    return np.moveaxis(q, -1, axis).reshape(x.shape)


def _quantize_with(bf: BlockFormat, blocks, s):
    from ..quantizer import CODEBOOK, Quantizer

    q = Quantizer(16, bf.levels.amax, CODEBOOK, "half_even", codebook=bf.levels)
    # a value that rounds to zero keeps its sign (-0.0), as an IEEE/ml_dtypes cast does: where 0 is
    # a level, Quantizer.quantize gives it (and s > 0 keeps it); else only an underflowed product
    # can be 0, which takes the input's sign here
    out = q.quantize(blocks / s) * s
    if not np.any(bf.levels.levels == 0.0):
        np.copysign(out, blocks, out=out, where=out == 0.0)
    return out


def tensor_mse(x: ArrayLike, fmt: str | BlockFormat, *, axis: int = -1, tensor_amax: float | None = None) -> float:
    """Mean squared error of :func:`quantize_blocks` on ``x``.

    >>> tensor_mse([0.1, -0.7, 2.9, 5.0], BLOCK_FORMATS["mxfp4"].with_rule("floor", 4))
    0.265
    """
    bf = _get(fmt, "tensor_mse")
    x = check_samples(x, "x", "tensor_mse", ndim=None)
    mse, e = _tensor_mse_unit(x, bf, axis, tensor_amax)
    return float(_ldexp(mse, 2 * e))


def _tensor_mse_unit(x: np.ndarray, bf: BlockFormat, axis: int, tensor_amax) -> tuple[float, int]:
    """``(MSE of x / 2^e, e)``: squares at unit scale (exact scaling, no underflow or overflow)."""
    q = quantize_blocks(x, bf, axis=axis, tensor_amax=tensor_amax)
    e = _unit_exponent(x)
    return float(np.mean(_ldexp(x - q, -e) ** 2)), e


def _unit_exponent(x) -> int:
    """``e`` with ``max|x| / 2^e`` in ``[0.5, 1)`` (0 for an all-zero or empty ``x``)."""
    top = float(np.max(np.abs(x))) if np.size(x) else 0.0
    return math.frexp(top)[1]


# ----------------------------------------------------------------------------- exact under a prior
@dataclass(frozen=True)
class BlockMSEResult(ResultMixin):
    """Expected per-element MSE of a block format under a prior.

    Attributes
    ----------
    mse : float
    sqnr_db : float
        ``10 log10(E[X²] / mse)``.
    saturation : float
        ``P(M / s(M) > element_max)``: how often the block maximum exceeds the largest level.
    max_share : float
        The part of ``mse`` that comes from the block maximum itself.
    bits_per_element : float
    tensor_amax : float or None
        The per-tensor amax used by the NVFP4 rules.
    """

    format: str
    mse: float
    sqnr_db: float
    saturation: float
    max_share: float
    bits_per_element: float
    tensor_amax: float | None = None


#: Tensor size behind the default NVFP4 tensor scale under a prior (see :func:`block_mse`).
NVFP4_TENSOR_SIZE = 2**24
#: Gauss–Legendre nodes on sub-pieces narrower than 1% (e.g. between adjacent FP16 scales).
_NARROW_NODES = 2


def block_mse(prior: PriorLike, fmt: str | BlockFormat, *, tensor_amax: float | None = None, nodes: int = 12,
              tail: float = 1e-15) -> BlockMSEResult:
    """Exact expected per-element MSE of a block format under an i.i.d. ``prior``.

    With ``M`` the block maximum of ``|X|`` (density ``B·g(m)·G(m)^(B−1)``) and ``s(m)`` the block
    scale, ``E[MSE] = ∫ G^(B−1)·[f(m)(m − Q(m))² + f(−m)(m + Q(−m))²] dm
    + (B−1) ∫ g·G^(B−2)·I(m) dm`` per element … divided by ``B``, where
    ``I(m) = ∫_{−m}^{m} (x − Q(x))² dP`` is the bin-by-bin sum of the element codebook at scale
    ``s(m)`` cut at ``±m``. ``s(m)`` is piecewise constant; each piece is split again where ``±m``
    crosses a decision threshold or the largest level, and integrated by Gauss–Legendre with
    ``nodes`` points. ``M`` below its ``tail``-quantile, or above the point where both its upper
    tail probability and the second moment ``E[X²; |X| > m]`` beyond it fall below ``tail``
    (relative), is dropped: a relative error of about ``tail`` for any prior with a variance.

    The integral runs on ``X / 2^e`` with ``2^e`` near the prior's scale (an exact scaling). NVFP4
    is relative to the tensor amax, so its SQNR does not depend on the prior's scale; E8M0 and
    FP16/BF16 block scales have absolute ranges (``2^±127``, FP16 ``2^-24 .. 65504``), so far
    outside them every element rounds to 0 or saturates and the SQNR falls to 0 dB. ``mse`` is 0
    or inf only where the true value lies outside the float64 range (``sqnr_db`` stays exact).

    The NVFP4 rules need the per-tensor amax: ``tensor_amax`` if given, else the large-tensor value
    ``P(|X| > amax) = 1/N`` with ``N = 2^24`` elements. "4 over 6" chooses per block from all of its
    elements, which this integral does not model: use :func:`block_montecarlo` for it.

    Examples
    --------
    >>> r = block_mse("gaussian", "mxfp4")
    >>> round(r.sqnr_db, 2), round(r.saturation, 3)
    (18.79, 0.296)
    >>> mc = block_montecarlo("gaussian", "mxfp4", n_blocks=20000, rng=0)
    >>> abs(mc.mse - r.mse) < 4 * mc.stderr
    True
    """
    from .exact import _unit, abs_isf, abs_sf, fast_prior

    func = "block_mse"
    bf = _get(fmt, func)
    prior = fast_prior(prior, func)
    if bf.rule == "4over6":
        raise param_error("fmt", func, "a format whose block scale depends on the block maximum only (use "
                          "block_montecarlo for '4over6')", bf.name)
    if bf.scale == "fp32":
        raise param_error("fmt", func, "a block scale in E8M0, E4M3, FP16 or BF16 (an FP32 scale changes at every "
                          "float32 of the block maximum: use block_montecarlo or tensor_mse)", bf.name)
    if not hasattr(prior, "pdf"):
        raise param_error("prior", func, "a prior with a density (use tensor_mse for samples)", repr(prior), TypeError)
    nodes = check_int(nodes, "nodes", func, 2, 64)
    tail = check_real(tail, "tail", func, 1e-300, 1e-3)
    B = bf.block_size
    ta = None
    if bf.rule == "nvfp4":
        ta = abs_isf(prior, 1.0 / NVFP4_TENSOR_SIZE) if tensor_amax is None else check_real(
            tensor_amax, "tensor_amax", func, 0.0, low_open=True)
    # the integral runs on X / 2^e at unit scale (exact power-of-two scaling); the E8M0 and FP16
    # scales have absolute ranges, so they are chosen in the data's units and scaled alike
    prior, e = _unit(prior)
    # range of M: P(M < lo) = tail, P(M > hi) = tail
    lo_p = -math.expm1(math.log(tail) / B)  # P(|X| >= lo) with G(lo)^B = tail
    m_lo = abs_isf(prior, lo_p)
    m_hi = abs_isf(prior, tail / B)
    # beyond m_hi the per-element error is at most T2(m_hi) + E[X²]·(B − 1)·P(|X| > m_hi) (every
    # error is at most x², 0 being a level), T2(m) = E[X²; |X| > m]: under a heavy tail T2 decays
    # slowly (t(3): T2 ~ 3.3/m, a 6e-4 error at tail = 1e-15), so m_hi grows until T2 <= tail·E[X²]/2
    power = prior.var + prior.mean**2
    for _ in range(2000):
        t2 = float(prior.partial_moments(m_hi, np.inf)[2] + prior.partial_moments(-np.inf, -m_hi)[2])
        if not t2 > 0.5 * tail * power:
            break
        m_hi *= 2.0
    if bf.rule == "nvfp4":  # (relative to the tensor amax: scale-equivariant)
        ta_u = float(_ldexp(ta, -e))
        cuts = _scale_breakpoints(bf, m_lo, m_hi, ta_u)
    else:
        cuts = _ldexp(_scale_breakpoints(bf, float(_ldexp(m_lo, e)), float(_ldexp(m_hi, e)), None), -e)
    edges = np.unique(np.concatenate([[m_lo, m_hi], cuts[(cuts > m_lo) & (cuts < m_hi)]]))
    mid = 0.5 * (edges[1:] + edges[:-1])
    if bf.rule == "nvfp4":
        s_piece = block_scale(bf, mid, ta_u)
    else:  # (beyond 2^±300 of the unit every element rounds to 0, or saturates, all the same)
        s_piece = np.clip(_ldexp(block_scale(bf, _ldexp(mid, e)), -e), 2.0**-300, 2.0**300)
    L = bf.levels
    kinks = np.concatenate([np.abs(L.thresholds), [L.amax]])
    # sub-pieces: split each piece where m/s crosses |threshold| or the largest level
    us, vs, ss = [], [], []
    for u, v, s in zip(edges[:-1], edges[1:], s_piece, strict=True):
        k = kinks * s
        k = np.unique(k[(k > u) & (k < v)])
        pts = np.concatenate([[u], k, [v]])
        us.append(pts[:-1])
        vs.append(pts[1:])
        ss.append(np.full(pts.size - 1, s))
    u, v, s = np.concatenate(us), np.concatenate(vs), np.concatenate(ss)
    # wide sub-pieces (one scale over a wide range of M: a scale saturated at its format's largest
    # or smallest value) split geometrically into octaves: one Gauss-Legendre piece over them was
    # off by 2-8 % (an FP16 scale underflowing for N(0, 1e-20): 1.0217 for exactly 1)
    parts = np.where(v > 2.0 * u * (1.0 + 1e-12), np.ceil(np.log2(v / np.maximum(u, 1e-300 * v))), 1).astype(int)
    if (parts > 1).any():
        us, vs, ss = [], [], []
        for a, b, sc, k in zip(u, v, s, parts, strict=True):
            pts = np.geomspace(a, b, k + 1) if k > 1 and a > 0 else np.array([a, b])
            pts[0], pts[-1] = a, b
            us.append(pts[:-1])
            vs.append(pts[1:])
            ss.append(np.full(pts.size - 1, sc))
        u, v, s = np.concatenate(us), np.concatenate(vs), np.concatenate(ss)
    # narrow sub-pieces (e.g. between adjacent FP16 scales) need few nodes
    narrow = (v - u) < 1e-2 * v
    mm, ww, sn = [], [], []
    for sel, n in ((~narrow, nodes), (narrow, min(nodes, _NARROW_NODES))):
        xg, wg = np.polynomial.legendre.leggauss(n)
        uu, vv = u[sel], v[sel]
        mm.append((0.5 * (vv - uu)[:, None] * xg[None, :] + 0.5 * (vv + uu)[:, None]).ravel())
        ww.append((0.5 * (vv - uu)[:, None] * wg[None, :]).ravel())
        sn.append(np.repeat(s[sel], n))
    mm, ww, sn = np.concatenate(mm), np.concatenate(ww), np.concatenate(sn)
    sat = (mm / sn > L.amax).astype(float)
    # element intervals of the codebook in units of s
    A = np.concatenate([[-np.inf], L.thresholds])
    Bd = np.concatenate([L.thresholds, [np.inf]])
    Y = L.levels
    t1 = np.empty(mm.size)
    t2 = np.empty(mm.size)
    chunk = max(1, 400_000 // Y.size)
    for i in range(0, mm.size, chunk):
        m = mm[i:i + chunk]
        sc = sn[i:i + chunk]
        sfm = abs_sf(prior, m)
        logG = np.log1p(-np.minimum(sfm, 1.0))
        fp, fn = prior.pdf(m), prior.pdf(-m)
        qp = Y[np.searchsorted(L.thresholds, m / sc)] * sc
        qn = Y[np.searchsorted(L.thresholds, -m / sc)] * sc
        t1[i:i + chunk] = np.exp((B - 1) * logG) * (fp * (m - qp) ** 2 + fn * (m + qn) ** 2)
        if B > 1:
            if hasattr(prior, "cut_sq_errors"):
                cuts = np.clip(sc[:, None] * np.concatenate([A, [np.inf]])[None, :], -m[:, None], m[:, None])
                inner = prior.cut_sq_errors(cuts, sc[:, None] * Y[None, :]).sum(axis=1)
            else:
                a = np.clip(sc[:, None] * A[None, :], -m[:, None], m[:, None])
                b = np.clip(sc[:, None] * Bd[None, :], -m[:, None], m[:, None])
                inner = prior.interval_sq_error(a, b, sc[:, None] * Y[None, :]).sum(axis=1)
            t2[i:i + chunk] = (B - 1) * np.exp((B - 2) * logG) * (fp + fn) * inner
        else:
            t2[i:i + chunk] = 0.0
    e_max = float(np.dot(ww, t1))
    e_rest = float(np.dot(ww, t2))
    dens = B * np.exp((B - 1) * np.log1p(-np.minimum(abs_sf(prior, mm), 1.0))) * (prior.pdf(mm) + prior.pdf(-mm))
    p_sat = min(float(np.dot(ww, dens * sat)), 1.0)  # (a probability: quadrature rounding can pass 1)
    mse = e_max + e_rest
    var = prior.var + prior.mean**2
    return BlockMSEResult(bf.name, float(_ldexp(mse, 2 * e)), _sqnr_db(var, mse), p_sat, float(_ldexp(e_max, 2 * e)),
                          bf.bits_per_element, ta)


def _sqnr_db(power: float, mse: float) -> float:
    """``10 log10(power / mse)`` (both at one scale); ``inf`` for a lossless format."""
    return 10.0 * math.log10(power / mse) if mse > 0.0 else math.inf


def _scale_breakpoints(bf: BlockFormat, lo: float, hi: float, ta) -> np.ndarray:
    """Values of the block maximum where the scale rule can change its output."""
    if bf.scale == "e8m0":
        base = {"floor": 1.0, "ceil": bf.element_max, "rne": 1.5 * bf.element_max}[bf.rule]
        k = np.arange(math.floor(math.log2(lo / base)) - 1, math.ceil(math.log2(hi / base)) + 2)
        return np.ldexp(base, k)
    if bf.rule == "absmax":
        t = FORMATS[_SCALE_LEVELS[bf.scale]].level_set().thresholds
        return t[t > 0] * bf.element_max
    t = FORMATS["fp8_e4m3fn"].level_set().thresholds
    return t[t > 0] * ta / 448.0


@dataclass(frozen=True)
class BlockMCResult(ResultMixin):
    """Monte-Carlo per-element MSE of a block format (i.i.d. blocks), with its standard error."""

    format: str
    mse: float
    stderr: float
    saturation: float
    n_blocks: int


def block_montecarlo(prior: PriorLike, fmt: str | BlockFormat, *, n_blocks: int = 100_000,
                     tensor_amax: float | None = None, rng: RNGLike = None, chunk: int = 8192) -> BlockMCResult:
    """Monte-Carlo estimate of :func:`block_mse`: i.i.d. blocks through :func:`quantize_blocks`.

    The NVFP4 tensor amax defaults to the same large-tensor value as :func:`block_mse`.
    """
    from .exact import abs_isf, fast_prior

    func = "block_montecarlo"
    bf = _get(fmt, func)
    prior = fast_prior(prior, func)
    n_blocks = check_int(n_blocks, "n_blocks", func, 2, None)
    rng = np.random.default_rng(rng)
    ta = None
    if bf.rule in ("nvfp4", "4over6"):
        ta = abs_isf(prior, 1.0 / NVFP4_TENSOR_SIZE) if tensor_amax is None else check_real(
            tensor_amax, "tensor_amax", func, 0.0, low_open=True)
    B = bf.block_size
    eu = prior._unit_exponent()  # (errors squared at unit scale: exact scaling, no underflow or overflow)
    s1 = s2 = 0.0
    nsat = 0
    done = 0
    while done < n_blocks:
        n = min(chunk, n_blocks - done)
        x = prior.rvs(n * B, rng).reshape(n, B)
        q = quantize_blocks(x, bf, tensor_amax=ta)
        e = np.mean(_ldexp(x - q, -eu) ** 2, axis=1)
        s1 += float(e.sum())
        s2 += float((e * e).sum())
        amax = np.max(np.abs(x), axis=1)
        nsat += int(np.count_nonzero(amax / block_scale(bf, amax, ta) > bf.element_max))
        done += n
    mean = s1 / n_blocks
    var = max(s2 / n_blocks - mean * mean, 0.0)
    return BlockMCResult(bf.name, float(_ldexp(mean, 2 * eu)), float(_ldexp(math.sqrt(var / (n_blocks - 1)), 2 * eu)),
                         nsat / n_blocks, n_blocks)
