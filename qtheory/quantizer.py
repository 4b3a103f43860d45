"""One description of a uniform scalar quantizer, shared by formulas, simulators and kernels.

Every grid qtheory knows is the same object: integer codes ``k`` in
``[qmin, qmax]`` mapped to levels ``(k + offset) * scale``. Quantizing is

    k = clip(round(x / scale - offset), qmin, qmax),    q = (k + offset) * scale

(rounding then clipping equals clipping then rounding for the forward value,
because ``qmin`` and ``qmax`` are integers). The decision thresholds are the
mid-points between adjacent levels, and the *overload points* — the edges of
the granular region — are half a step beyond the outermost levels. The
clipping part of an MSE is the error of inputs beyond the overload points; the
rounding part is the error of inputs between them.

Grids (``alpha`` is the clip, ``b`` the bit-width)::

    grid       levels (k + offset) * scale            scale            k range              source
    midrise    odd multiples of Δ/2 in (-α, α)         Δ = 2α / 2^b      -2^(b-1) .. 2^(b-1)-1  classical (Max 1960), ACIQ's Δ
    int        -α, -α+s, ..., α-s                       s = α / 2^(b-1)   -2^(b-1) .. 2^(b-1)-1  TQT signed
    narrow     -α, ..., 0, ..., α                       s = α / (2^(b-1)-1) -(2^(b-1)-1) .. 2^(b-1)-1 TFLite weights
    unsigned   0, s, ..., α                             s = α / (2^b - 1)  0 .. 2^b-1            PACT / DoReFa
    uint       0, s, ..., α - s                         s = α / 2^b        0 .. 2^b-1            TQT unsigned
    affine     ≈ β, ..., 0, ..., ≈ α  (0 exact)         s = (α-β)/(2^b-1)  -z .. 2^b-1-z         zero-point (asymmetric) quantization

Codebook grids (``grid="codebook"``) are the general case: any sorted level set
``scale · L`` (FP8/FP6/FP4 element formats, NF4, power-of-two, APoT, Lloyd–Max; see
:mod:`qtheory.formats`), rounded to the nearest level and saturated at the ends.
``alpha`` is still the clip: the largest level. Ties go, for ``"half_even"``, to the
level with the even index in its sign's magnitude list (for sign-magnitude floating
point this is IEEE round-to-nearest-even on the code); ``"half_away"`` to the larger
magnitude; ``"half_up"`` to the larger level. A codebook may carry its own decision
thresholds (e.g. log-domain rounding); otherwise they are the mid-points.

Default grids
-------------
qtheory has two defaults, and this is the one place that states them:

- **Tensor APIs** (functions that take an array of samples or weights: :mod:`qtheory.empirical`,
  :func:`qtheory.calibrate.calibrate`, :func:`qtheory.calibrate.calibrator_table`,
  :func:`qtheory.models.layer_report`, :func:`qtheory.intconv.per_channel`, ...) default to
  :data:`DEFAULT_TENSOR_GRID` ``= "narrow"``: the symmetric integer grid ``[-(2^(b-1)-1),
  2^(b-1)-1]`` (``[-127, 127]`` at 8 bits) of ONNX Runtime's symmetric quantization
  (``get_qmin_qmax_for_qType(INT8, symmetric=True)``), TensorRT and pytorch-quantization, so a clip
  computed with the defaults is the one an integer runtime uses.
- **Prior-based (theory) functions** (:func:`qtheory.optimal_clip_table`, :mod:`qtheory.allocation`,
  :func:`qtheory.fit_prior`, :func:`qtheory.classical.distortion_ladder`, ...) and the
  :class:`Quantizer` class itself default to :data:`DEFAULT_PRIOR_GRID` ``= "midrise"``: the
  ``2^b``-level grid of the papers (Max 1960, ACIQ), whose step ``2α/2^b`` their formulas use.
  :func:`qtheory.allocation.quantize_channels` keeps it for weight tensors too: Banner et al.'s
  allocation gives channels 1 bit, which the narrow grid does not have.
- :func:`qtheory.optimal_clip` and :func:`qtheory.clipping_mse` take both: ``grid=None`` (their
  default) means ``"midrise"`` for a prior (and for ``method="aciq"``) and
  :data:`DEFAULT_TENSOR_GRID` for an array of samples (or an :class:`~qtheory.Empirical`), so
  ``clipping_mse(x, optimal_clip(x, b).alpha, b).mse == optimal_clip(x, b).mse``.

Observers and :func:`qtheory.models.observers.clip_range` default to ``"affine"`` (asymmetric
uint8 activations, as ONNX Runtime quantizes them); the OCTAV and ACIQ rules
(:func:`qtheory.calibrate.octav_clip`, :func:`qtheory.calibrate.aciq_clip`) default to their
papers' model (``grid=None``) and use the grid they are given through
:func:`qtheory.calibrate.calibrate`.

A picture of where each grid puts its levels relative to α is drawn by
:func:`qtheory.plotting.aciq.plot_grids` (``figures/aciq/grids.png``).

Examples
--------
>>> from qtheory import Quantizer
>>> q = Quantizer(bits=2, alpha=1.0)
>>> q.levels
array([-0.75, -0.25,  0.25,  0.75])
>>> q.quantize([-3.0, 0.1, 0.6])
array([-0.75,  0.25,  0.75])
>>> Quantizer(bits=3, alpha=4.0, grid="int").levels
array([-4., -3., -2., -1.,  0.,  1.,  2.,  3.])
>>> q = Quantizer(bits=4, alpha=3.0, grid="codebook", codebook="fp4_e2m1fn")   # E2M1 at scale 0.5
>>> q.levels[7:]
array([0.  , 0.25, 0.5 , 0.75, 1.  , 1.5 , 2.  , 3.  ])
>>> q.quantize([0.625, 0.875, 1.25, 9.0])   # ties to the even code; saturation at 3
array([0.5, 1. , 1. , 3. ])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_int, check_option, check_real, param_error

__all__ = ["Quantizer", "LevelSet", "GRIDS", "CODEBOOK", "ROUNDINGS", "MIN_BITS", "MAX_BITS", "DEFAULT_TENSOR_GRID",
           "DEFAULT_PRIOR_GRID"]

GRIDS = ("midrise", "int", "narrow", "unsigned", "uint", "affine")
#: Default grid of every function that takes tensors (samples, weights): the symmetric int grid
#: ``[-(2^(b-1)-1), 2^(b-1)-1]`` of ONNX Runtime (symmetric), TensorRT and pytorch-quantization.
DEFAULT_TENSOR_GRID = "narrow"
#: Default grid of the prior-based (theory) functions: the papers' ``2^b``-level midrise grid.
DEFAULT_PRIOR_GRID = "midrise"
#: The general level-set grid (not in GRIDS: the uniform-only functions keep their options).
CODEBOOK = "codebook"
ROUNDINGS = ("half_even", "half_away", "half_up")
#: Rounding codes used by the numba kernels (same order as ROUNDINGS).
ROUNDING_CODES = {name: i for i, name in enumerate(ROUNDINGS)}
MIN_BITS = {"midrise": 1, "int": 1, "narrow": 2, "unsigned": 1, "uint": 1, "affine": 1}
MAX_BITS = 16
SIGNED_GRIDS = ("midrise", "int", "narrow")


@dataclass(frozen=True)
class Quantizer:
    """A uniform scalar quantizer: bit-width, grid, clip and rounding.

    Parameters
    ----------
    bits : int
        Bit-width ``b``; the grid has ``2**b`` levels (``2**b - 1`` for ``"narrow"``).
    alpha : float
        Clip (upper clipping value), > 0. Its meaning per grid is in the module docstring.
    grid : {"midrise", "int", "narrow", "unsigned", "uint", "affine"}
        Where the levels sit relative to ``alpha``.
    rounding : {"half_even", "half_away", "half_up"}
        Tie rule of the rounding ``round(x / scale - offset)``. Ties have
        probability zero under a continuous prior but matter for samples and
        integer kernels.
    beta : float, optional
        Lower clip for ``grid="affine"`` (``beta <= 0 < alpha``); defaults to ``-alpha``.
        Not allowed for other grids.

    Attributes
    ----------
    scale : float
        Step between adjacent levels.
    offset : float
        ``0.5`` for ``"midrise"`` (levels at odd multiples of half a step), else ``0``.
    qmin, qmax : int
        Range of the integer codes.
    zero_point : int
        Code of the level 0 for ``"affine"`` (``-qmin``), 0 otherwise. For ``"affine"`` it is
        ``z = round((2^b − 1)·(−β)/(α − β))`` with ties rounded up, computed so that a symmetric
        range is an exact tie for every ``α``: ``z = 2^(b−1)``, the levels of the ``"int"`` grid.

    Examples
    --------
    >>> q = Quantizer(bits=4, alpha=2.0, grid="narrow")
    >>> q.scale, q.qmin, q.qmax
    (0.2857142857142857, -7, 7)
    >>> q.overload
    (-2.142857142857143, 2.142857142857143)
    >>> Quantizer(bits=2, alpha=2.0, grid="affine", beta=-1.0).levels
    array([-1.,  0.,  1.,  2.])
    """

    bits: int
    alpha: float
    grid: str = "midrise"
    rounding: str = "half_even"
    beta: float | None = None
    codebook: object = field(default=None, repr=False)
    scale: float = field(init=False, repr=False)
    offset: float = field(init=False, repr=False)
    qmin: int = field(init=False, repr=False)
    qmax: int = field(init=False, repr=False)

    def __post_init__(self):
        func = "Quantizer"
        if self.grid == CODEBOOK or self.codebook is not None:
            return _init_codebook(self, func)
        grid = check_option(self.grid, "grid", func, GRIDS)
        bits = check_int(self.bits, "bits", func, MIN_BITS[grid], MAX_BITS)
        alpha = check_real(self.alpha, "alpha", func, 0.0, low_open=True)
        check_option(self.rounding, "rounding", func, ROUNDINGS)
        beta = self.beta
        if grid == "affine":
            beta = -alpha if beta is None else check_real(beta, "beta", func, high=0.0)
        elif beta is not None:
            raise param_error("beta", func, "None unless grid='affine'", beta)
        s, c, n, p = _grid_params(grid, bits, alpha, beta)
        for name, value in (("bits", bits), ("alpha", alpha), ("beta", beta), ("scale", s),
                            ("offset", c), ("qmin", n), ("qmax", p)):
            object.__setattr__(self, name, value)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_scale(cls, bits: int, scale: float, grid: str = "int", rounding: str = "half_even") -> Quantizer:
        """Build the quantizer whose step is ``scale`` (inverse of the grid's ``alpha -> scale``).

        >>> Quantizer.from_scale(8, 2.0**-5, grid="int").alpha
        4.0
        """
        grid = check_option(grid, "grid", "Quantizer.from_scale", tuple(g for g in GRIDS if g != "affine"))
        bits = check_int(bits, "bits", "Quantizer.from_scale", MIN_BITS[grid], MAX_BITS)
        scale = check_real(scale, "scale", "Quantizer.from_scale", 0.0, low_open=True)
        return cls(bits, scale * _alpha_per_scale(grid, bits), grid, rounding)

    def with_alpha(self, alpha: float) -> Quantizer:
        """Same bits, grid and rounding with another clip."""
        if self.grid == CODEBOOK:
            return Quantizer(self.bits, alpha, CODEBOOK, self.rounding, codebook=self.codebook)
        if self.grid == "affine":
            return Quantizer(self.bits, alpha, self.grid, self.rounding, self.beta * alpha / self.alpha)
        return Quantizer(self.bits, alpha, self.grid, self.rounding)

    def _scaled(self, e: int) -> Quantizer:
        """The quantizer of ``X / 2^e``: every clip (and level) times ``2^-e``, exactly."""
        if self.grid == CODEBOOK:
            return self.with_alpha(math.ldexp(self.alpha, -e))
        beta = None if self.grid != "affine" else math.ldexp(self.beta, -e)
        return Quantizer(self.bits, math.ldexp(self.alpha, -e), self.grid, self.rounding, beta)

    # ----------------------------------------------------------------- geometry
    @property
    def zero_point(self) -> int:
        return -self.qmin if self.grid == "affine" else 0

    @property
    def n_levels(self) -> int:
        return self.qmax - self.qmin + 1

    @property
    def signed(self) -> bool:
        return self.qmin < 0

    @property
    def codes(self) -> np.ndarray:
        """Integer codes ``qmin .. qmax``."""
        return np.arange(self.qmin, self.qmax + 1)

    @property
    def levels(self) -> np.ndarray:
        """Reconstruction levels in increasing order."""
        if self.grid == CODEBOOK:
            return self.codebook.levels * self.scale
        return (self.codes + self.offset) * self.scale

    @property
    def thresholds(self) -> np.ndarray:
        """Decision thresholds between adjacent levels (``n_levels - 1`` of them)."""
        if self.grid == CODEBOOK:
            return self.codebook.thresholds * self.scale
        return (np.arange(self.qmin, self.qmax) + self.offset + 0.5) * self.scale

    @property
    def overload(self) -> tuple[float, float]:
        """Edges of the granular region: half a step beyond the outermost levels."""
        if self.grid == CODEBOOK:
            return self.codebook.overload[0] * self.scale, self.codebook.overload[1] * self.scale
        return ((self.qmin + self.offset - 0.5) * self.scale, (self.qmax + self.offset + 0.5) * self.scale)

    @property
    def kernel_params(self) -> tuple[float, float, int, int, int]:
        """``(scale, offset, qmin, qmax, rounding_code)`` as passed to numba kernels."""
        if self.grid == CODEBOOK:
            raise TypeError("A codebook Quantizer has no uniform kernel parameters; use Quantizer.quantize.")
        return (self.scale, self.offset, self.qmin, self.qmax, ROUNDING_CODES[self.rounding])

    # ----------------------------------------------------------------- maps
    def to_codes(self, x) -> np.ndarray:
        """Integer codes of ``x`` (int64); for a codebook, the index into ``levels``.

        ``±inf`` saturate to ``qmax`` / ``qmin``. NaN has no code: it is refused with a
        ``ValueError`` (use :meth:`quantize`, which passes NaN through).

        >>> Quantizer(2, 1.0).to_codes([-np.inf, 0.1, np.inf])
        array([-2,  0,  1])
        """
        x = _check_numeric(x, "x", "Quantizer.to_codes")
        if np.isnan(x).any():
            raise param_error("x", "Quantizer.to_codes", "an array without NaN (a NaN has no integer code)",
                              f"array with {int(np.isnan(x).sum())} NaN value(s)")
        return self._codes(x)

    def _codes(self, x: np.ndarray) -> np.ndarray:
        if self.grid == CODEBOOK:
            return _codebook_index(self, x)
        with np.errstate(over="ignore", invalid="ignore"):
            u = x / self.scale - self.offset
        return np.clip(round_with(u, self.rounding), self.qmin, self.qmax).astype(np.int64)

    def from_codes(self, k) -> np.ndarray:
        """Levels of integer codes ``k``."""
        if self.grid == CODEBOOK:
            return self.levels[np.asarray(k, dtype=np.int64)]
        return (np.asarray(k, dtype=np.float64) + self.offset) * self.scale

    def quantize(self, x) -> np.ndarray:
        """Quantize ``x`` (numpy reference implementation; float64).

        ``±inf`` saturate to the outermost levels; NaN stays NaN (it is not a value to round).
        A codebook (a floating-point element format) whose levels include 0 keeps the sign of a
        value that rounds to zero (``-0.0``), as an IEEE cast (and ``ml_dtypes``) does; the
        integer grids give code 0, i.e. ``+0.0``.

        >>> Quantizer(2, 1.0).quantize([-np.inf, np.nan, np.inf])
        array([-0.75,   nan,  0.75])
        """
        x = _check_numeric(x, "x", "Quantizer.quantize")
        nan = np.isnan(x)
        if not nan.any():
            out = self.from_codes(self._codes(x))
        else:
            out = self.from_codes(self._codes(np.where(nan, 0.0, x)))
            out[nan] = np.nan
        if self.grid == CODEBOOK and out.size and np.any(self.codebook.levels == 0.0):
            # (with 0 a level, every nonzero output already has its input's sign: only zeros change)
            np.copysign(out, x, out=out)
        return out


def _check_numeric(x, name: str, func: str) -> np.ndarray:
    """``x`` as a float64 array; complex, object or string input is refused (TypeError)."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):  # (ragged nested lists)
        raise param_error(name, func, "an array of real numbers", type(x).__name__, TypeError) from None
    if arr.dtype.kind not in "biuf":
        raise param_error(name, func, "an array of real numbers", f"array of dtype {arr.dtype}", TypeError)
    return arr.astype(np.float64, copy=False)


def round_with(u, rounding: str = "half_even") -> np.ndarray:
    """Round to integers with the given tie rule (float result).

    >>> round_with([0.5, 1.5, -0.5, -2.5], "half_even")
    array([ 0.,  2., -0., -2.])
    >>> round_with([0.5, 1.5, -0.5, -2.5], "half_away")
    array([ 1.,  2., -1., -3.])
    >>> round_with([0.5, 1.5, -0.5, -2.5], "half_up")
    array([ 1.,  2.,  0., -2.])
    """
    u = np.asarray(u, dtype=np.float64)
    if rounding == "half_even":
        return np.rint(u)
    if rounding == "half_away":
        return np.copysign(np.floor(np.abs(u) + 0.5), u)
    if rounding == "half_up":
        return np.floor(u + 0.5)
    raise param_error("rounding", "round_with", "one of " + ", ".join(map(repr, ROUNDINGS)), rounding)


def _alpha_per_scale(grid: str, bits: int) -> float:
    return {
        "midrise": 2.0 ** (bits - 1),
        "int": 2.0 ** (bits - 1),
        "narrow": 2.0 ** (bits - 1) - 1.0,
        "unsigned": 2.0**bits - 1.0,
        "uint": 2.0**bits,
    }[grid]


def _grid_params(grid: str, bits: int, alpha: float, beta: float | None):
    """Return ``(scale, offset, qmin, qmax)`` of a grid."""
    half = 2 ** (bits - 1)
    if grid == "midrise":
        return alpha / half, 0.5, -half, half - 1
    if grid == "int":
        return alpha / half, 0.0, -half, half - 1
    if grid == "narrow":
        return alpha / (half - 1), 0.0, -(half - 1), half - 1
    if grid == "unsigned":
        return alpha / (2**bits - 1), 0.0, 0, 2**bits - 1
    if grid == "uint":
        return alpha / 2**bits, 0.0, 0, 2**bits - 1
    # affine: s = (alpha - beta) / (2^b - 1), zero point z = round((2^b - 1)·(-beta) / (alpha - beta)),
    # ties rounded up. The ratio -beta / (alpha - beta) is computed before multiplying by 2^b - 1 so
    # that a symmetric range (beta = -alpha) gives exactly (2^b - 1) / 2, a tie, for every alpha:
    # z = 2^(b-1), the levels of the "int" grid. (-beta / s rounds differently from one alpha to
    # the next, which made the zero point, and so the MSE, jump with rounding noise.)
    # (α − β beyond the float64 range, e.g. α = −β = 1.7e308: halved first, which is exact and
    # gives the same quotients)
    top = 2**bits - 1
    h = 1.0 if math.isfinite(alpha - beta) else 0.5
    w = alpha * h - beta * h
    s = w / top / h
    z = int(min(max(math.floor(top * (-beta * h / w) + 0.5), 0), top))
    return s, 0.0, -z, top - z


# ----------------------------------------------------------------------------- codebooks
@dataclass(frozen=True, eq=False)
class LevelSet:
    """A sorted set of unit levels with decision thresholds and tie ranks (``Quantizer(codebook=...)``).

    ``rank[k]`` is the index of level ``k`` in its sign's magnitude list (zero, if a level, has
    rank 0 on both sides); ``"half_even"`` ties go to the even rank.

    >>> cb = LevelSet.from_levels([-1.0, 0.0, 0.5, 1.0])
    >>> cb.thresholds, cb.rank
    (array([-0.5 ,  0.25,  0.75]), array([1, 0, 1, 2]))
    """

    name: str
    levels: np.ndarray
    thresholds: np.ndarray
    rank: np.ndarray
    overload: tuple[float, float]

    @classmethod
    def from_levels(cls, levels, thresholds=None, name: str = "levels", func: str = "LevelSet") -> LevelSet:
        """Validate ``levels`` (and optional ``thresholds``, default the mid-points)."""
        try:
            lv = np.asarray(levels, dtype=np.float64)
        except (TypeError, ValueError):
            raise param_error("codebook", func, "a 1-D array of at least 2 distinct finite levels", levels,
                              TypeError) from None
        if lv.ndim != 1 or lv.size < 2 or not np.all(np.isfinite(lv)) or np.any(np.diff(np.sort(lv)) <= 0):
            raise param_error("codebook", func, "a 1-D array of at least 2 distinct finite levels", levels)
        lv = np.sort(lv)
        if thresholds is None:
            th = 0.5 * (lv[1:] + lv[:-1])
        else:
            th = np.asarray(thresholds, dtype=np.float64)
            if th.shape != (lv.size - 1,) or not np.all((th > lv[:-1]) & (th < lv[1:])):
                raise param_error("thresholds", func, "one threshold strictly between each pair of adjacent "
                                  "levels", thresholds)
        rank = np.empty(lv.size, dtype=np.int64)
        pos, neg = lv >= 0, lv < 0
        has_zero = bool(np.any(lv == 0))
        rank[pos] = np.arange(int(pos.sum()))
        rank[neg] = np.arange(int(neg.sum()), 0, -1) - (0 if has_zero else 1)
        over = (lv[0] - 0.5 * (lv[1] - lv[0]), lv[-1] + 0.5 * (lv[-1] - lv[-2]))
        for a in (lv, th, rank):
            a.setflags(write=False)
        return cls(name, lv, th, rank, (float(over[0]), float(over[1])))

    @property
    def amax(self) -> float:
        """The largest level magnitude (``alpha = scale * amax``)."""
        return float(max(abs(self.levels[0]), abs(self.levels[-1])))


def _as_levelset(codebook, func) -> LevelSet:
    if isinstance(codebook, LevelSet):
        return codebook
    if isinstance(codebook, str):
        from .formats import level_set

        return level_set(codebook)
    if hasattr(codebook, "level_set"):
        return codebook.level_set()
    if codebook is None:
        raise param_error("codebook", func, "a format name, a LevelSet or an array of levels with grid='codebook'",
                          codebook, TypeError)
    return LevelSet.from_levels(codebook, func=func)


def _init_codebook(q: Quantizer, func: str) -> None:
    if q.grid != CODEBOOK:
        raise param_error("grid", func, "'codebook' when a codebook is given", q.grid)
    cb = _as_levelset(q.codebook, func)
    bits = check_int(q.bits, "bits", func, 1, MAX_BITS)
    if cb.levels.size > 2**bits:
        raise param_error("bits", func, f"an int >= log2 of the {cb.levels.size} codebook levels", bits)
    alpha = check_real(q.alpha, "alpha", func, 0.0, low_open=True)
    check_option(q.rounding, "rounding", func, ROUNDINGS)
    if q.beta is not None:
        raise param_error("beta", func, "None for a codebook grid", q.beta)
    scale = alpha / cb.amax
    for name, value in (("bits", bits), ("alpha", alpha), ("codebook", cb), ("scale", scale), ("offset", 0.0),
                        ("qmin", 0), ("qmax", int(cb.levels.size - 1))):
        object.__setattr__(q, name, value)


def _codebook_index(q: Quantizer, x) -> np.ndarray:
    """Nearest-level index with the tie rule, saturating at the ends (NaN inputs: ValueError)."""
    x = np.asarray(x, dtype=np.float64)
    u = x.reshape(-1) / q.scale
    if np.any(np.isnan(u)):
        raise param_error("x", "Quantizer.to_codes", "free of NaN", "an array with NaN")
    cb = q.codebook
    t = cb.thresholds
    i = np.searchsorted(t, u, side="left")
    tie = np.flatnonzero((i < t.size) & (t[np.minimum(i, t.size - 1)] == u))
    if tie.size:
        lo = i[tie]
        hi = lo + 1
        v = u[tie]
        if q.rounding == "half_up":
            up = np.ones(tie.size, dtype=bool)
        elif q.rounding == "half_away":
            up = (v > 0) | ((v == 0) & ~np.signbit(v))
        else:
            rl, rh = cb.rank[lo] % 2, cb.rank[hi] % 2
            up = np.where(rl == rh, ~np.signbit(v), rh == 0)
        i[tie] = np.where(up, hi, lo)
    return i.astype(np.int64).reshape(x.shape)
