"""Activation observers: ``collect(batch)`` any number of times, then a range by any calibrator.

The shape users know from ``torch.ao`` observers (``forward`` → ``calculate_qparams``), ONNX
Runtime's calibrators (``collect_data`` → ``compute_data``) and ModelOpt's ``collect`` /
``compute_amax``; qtheory's exact optimum is one more method behind it.

Storage
-------
While at most ``max_samples`` values have been collected (per channel), they are kept (float32
input stays float32) and every method sees exactly the concatenated data: the ``exact`` range then
*is* :func:`qtheory.optimal_clip` of the concatenation. Beyond ``max_samples`` the observer streams:

- a fixed-width histogram on a power-of-two grid (bin width ``w = 2^e``, ``bins`` bins around 0)
  keeping, per bin, the exact count, the sums of ``x`` and ``x²`` (float64) and the bin's min and
  max. When a batch exceeds the range, ``w`` doubles and pairs of bins merge — the sums merge
  exactly (``⌊⌊x/w⌋/2⌋ = ⌊x/2w⌋``), unlike a re-binned plain histogram;
- the running min and max (exact; the ``max`` method stays exact);
- a uniform random sample of ``reservoir`` values (bottom-k of random keys, seeded), which the
  sample-based calibrators (``percentile``, ``entropy``, ``mse``, ``octav``, ``aciq``) use.

The histogram and the sample hold the values at a power-of-two unit ``2^u`` that follows the bin
width (``x/2^u``, below 1 in magnitude, the largest above 1/4), so that the sums of ``x²``
neither overflow nor underflow; every streamed method computes at that unit, and clips leave it
times ``2^u``, MSEs times ``4^u`` (rounded once). As in memory, the results are
scale-equivariant from 1e-300 to 1e300: at ``x·2^k`` they are those at ``x`` times ``2^k``
(clips) and ``4^k`` (MSEs, bounds), exactly; an MSE is 0 or ``inf`` only where it leaves the
float64 range (up to the rounding of ``U``, relative to the mean of ``x²`` in bins that hold
several values). The ``exact`` search keeps its clips within float64; a method's clip beyond
it (ACIQ's ten mean deviations of data near 1.8e308) is a ``ValueError``.

The streamed ``exact`` method minimises ``U(q) = Σ_bins Σ_x (x − y_b)²`` where each bin's values
all go to the level ``y_b`` of the bin's mean — an achievable assignment, so ``U(q) ≥ MSE(q)``;
``U(q) = MSE(q)`` exactly when no decision threshold falls between a bin's min and max. For the
bins that straddle one, ``MSE(q) ≥ U(q) − E(q)`` with ``E(q) = (1/N) Σ_straddled n_b·D_b²``, ``D_b``
the largest distance from ``y_b`` to the bin's min or max. Hence the streamed optimum ``q̂`` obeys

    MSE(q̂) ≤ U(q̂) ≤ U(q*) ≤ MSE(q*) + E(q*)

(``q*`` the true optimum; the middle step holds when the search finds ``U``'s global minimum;
``U`` of a quantizer costs ``O(levels · log bins)``, see
:func:`qtheory.kernels.observers.hist_upper`). With a symmetric grid the search is confined to a
proven range of clips, ``[α_L, α_B]``: with ``T`` the least ``U`` of a first scan (``T >=
MSE(q*)``), every value below half a step goes to the level nearest 0, so the MSE at step ``s``
is at least the error of the values under ``s/2`` alone, which only grows with ``s`` and exceeds
``T`` beyond ``α_B``; every level lies within ``±α``, so below ``α_L`` the values beyond ``α_L``
alone cost more than ``T``. Both ``q*`` and ``U``'s minimum lie inside (``U >= MSE``), also where
the optimum clip exceeds ``max|x|`` (data on a lattice that a wider grid hits). There ``U`` is a
continuous piecewise quadratic in the step (one piece per assignment of the bins' means to
levels): where the means change level at most 2^16 times over the range (few distinct values,
where ``U`` has its narrow minima) every piece is swept and the global minimum is exact; else a
log scan of the range with the pieces around its best minima swept (golden section where those
are still too many); then "assign, then move to the vertex" (``U`` never increases). Affine
grids: a scan over zero point and step, refined by Brent, by moves of the zero point by one and
by the vertex step. The streamed optimum's excess over the exact one is at most ``E(q*)``, which shrinks
with the bin width (``D_b`` ≈ one step ``Δ``, and only bins within ``w`` of a threshold count:
``E ≲ Δ²·p(threshold)·w·levels``). ``Range.bound`` reports ``E`` at the streamed optimum;
``tests/test_models_observers.py`` checks the inequality against the in-memory optimum.

Asymmetric ranges
-----------------
With ``grid="affine"`` (the default: ONNX Runtime's uint8 activations) every method returns a
range ``[β, α]`` with ``β <= 0 <= α``: ``max`` → ``[min x, max x]``; ``percentile`` →
``[P_(100−p), P_p]``; ``entropy``, ``mse``, ``octav`` → the method's one-sided (unsigned)
rule applied to each side's magnitudes (``max(x, 0)`` and ``max(−x, 0)``), as ONNX Runtime's
percentile calibrator treats the two sides with ``symmetric=False``; ``aciq`` → ``mean ± r·b``
with ACIQ's two-sided ratio ``r`` for the fitted Laplace scale ``b``, cut to the data range;
``exact`` → the joint global optimum of ``(β, α)`` for the affine grid (integer zero point).
A side without values gets 0. With a symmetric grid (``"narrow"``, ``"int"``, ...) ``β = −α``
and the methods are those of :mod:`qtheory.calibrate`; ``aciq`` is ACIQ's Laplace rule (the default
family of :func:`qtheory.calibrate.calibrate`) at the papers' midrise step.

The method names are those of :data:`qtheory.calibrate.CALIBRATORS` (``"kl"`` is an alias of
``"entropy"``; the 0.1 name ``"mse_sweep"`` still works, with a ``FutureWarning``, until the next
release).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_option, check_real, param_error
from ..quantizer import GRIDS, MAX_BITS, MIN_BITS, Quantizer

__all__ = ["Observer", "Range", "METHODS", "torch_observers", "onnx_observers", "clip_range", "quantizer_for"]

METHODS = ("max", "percentile", "entropy", "mse", "octav", "aciq", "exact")


def _observer_method(method, func: str, name: str = "method") -> str:
    """A name of :data:`METHODS` for ``method``: the name itself, the alias ``"kl"`` (``"entropy"``),
    or the 0.1 name ``"mse_sweep"`` (``"mse"``, with a FutureWarning)."""
    if method == "mse_sweep":
        import warnings

        warnings.warn(f"{func}: the calibrator 'mse_sweep' is now method='mse'; the old name will be removed in the "
                      "next release.", FutureWarning, stacklevel=3)
        return "mse"
    if method == "kl":
        return "entropy"
    return check_option(method, name, func, METHODS + ("kl",))


@dataclass(frozen=True)
class Range:
    """A calibrated range ``[beta, alpha]`` (per channel: arrays).

    Attributes
    ----------
    beta, alpha : float or ndarray
        Lower and upper clip (``beta = -alpha`` for symmetric grids).
    method : str
    bits : int
    grid : str
    mse : float or ndarray
        Mean squared quantization error of the collected data at this range (exact in memory; the
        upper bound ``U`` when streamed).
    bound : float or ndarray
        0 when ``mse`` is exact; else ``E`` at this range (see the module docstring).
    streamed : bool
    """

    beta: float | np.ndarray
    alpha: float | np.ndarray
    method: str
    bits: int
    grid: str
    mse: float | np.ndarray
    bound: float | np.ndarray
    streamed: bool


def quantizer_for(beta: float, alpha: float, bits: int, grid: str) -> Quantizer:
    """The :class:`qtheory.Quantizer` of a range (affine: ``[β, α]``, else the symmetric ``α``)."""
    if grid == "affine":
        beta = min(beta, 0.0)
        if alpha <= 0:  # an all-non-positive tensor: keep 0 representable at the top
            alpha = max(-beta, 1e-300) * 2.0 ** -(bits + 40)
        return Quantizer(bits, alpha, "affine", beta=beta)
    return Quantizer(bits, alpha if alpha > 0 else 1e-300, grid)


def clip_range(x, bits: int, method: str, grid: str = "affine", *, percentile: float = 99.99,
               func: str = "clip_range") -> tuple[float, float]:
    """``(beta, alpha)`` chosen by ``method`` for the samples ``x`` (see the module docstring).

    Examples
    --------
    >>> x = np.r_[np.linspace(-0.375, 0, 50), np.linspace(0, 6, 950)]   # a hardswish-like tensor
    >>> clip_range(x, 8, "max")
    (-0.375, 6.0)
    >>> b, a = clip_range(x, 8, "exact")
    >>> -0.375 <= b < 0 < a <= 6.0
    True
    """
    from .. import calibrate as cal

    method = _observer_method(method, func)
    grid = check_option(grid, "grid", func, GRIDS)
    bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    x = np.asarray(x).reshape(-1)
    lo, hi = float(x.min()), float(x.max())
    if grid != "affine":
        if max(-lo, hi) <= 0:
            return 0.0, 0.0
        if method == "exact":
            a = _exact_range(x, bits, grid, lo=lo, hi=hi)[1]
        else:
            kw = {"percentile": percentile} if method == "percentile" else {}
            if method == "aciq" and grid != "midrise":  # ACIQ's ratio is for the midrise step
                a = cal.aciq_clip(x, bits, unsigned=grid in ("unsigned", "uint"))
            else:
                kw.update({"family": "laplace"} if method == "aciq" else {})
                a = cal.calibrate(x, bits, method, grid=grid, **kw).alpha
        return -float(a), float(a)
    # ---- affine: asymmetric (β, α)
    if method == "max":
        return min(lo, 0.0), max(hi, 0.0)
    if method == "percentile":
        p = check_real(percentile, "percentile", func, 50.0, 100.0, low_open=True)
        return min(float(np.percentile(x, 100.0 - p)), 0.0), max(float(np.percentile(x, p)), 0.0)
    if method == "exact":
        return _exact_range(x, bits, grid, lo=lo, hi=hi)[:2]
    if method == "aciq":
        from ..optimal import optimal_clip
        from ..priors import Laplace

        mean = float(np.mean(x, dtype=np.float64))
        b = float(np.mean(np.abs(x - mean), dtype=np.float64))
        if b <= 0:
            return min(lo, 0.0), max(hi, 0.0)
        r = optimal_clip(Laplace(1.0), bits, method="aciq").alpha
        return min(max(mean - r * b, lo), 0.0), max(min(mean + r * b, hi), 0.0)

    def side(v):
        if not np.any(v > 0):
            return 0.0
        if method == "entropy":
            return cal.entropy_clip(v, bits, unsigned=True)
        if method == "mse":
            return cal.mse_sweep_clip(v, bits, grid="unsigned")
        return cal.octav_clip(v, bits, unsigned=True)

    return -side(np.maximum(-x, 0.0)), side(np.maximum(x, 0.0))


def _exact_range(x, bits, grid, *, lo, hi):
    """``(beta, alpha, mse)`` of :func:`qtheory.optimal_clip` on the 1-D samples ``x`` (min ``lo``,
    max ``hi``), in their own dtype (float32 is not copied to float64: the result is the same exact
    optimum). ``mse`` is the optimum's MSE on ``x``, or ``None`` where it is not computed here
    (a zero range). An all-non-positive tensor is searched mirrored: the mirrored grid has the same
    levels, negated, so the same MSE (a tie's two errors are equal)."""
    from ..optimal import optimal_clip

    if x.dtype not in (np.float32, np.float64):  # (integers: negated below, e.g. int8 -128)
        x = x.astype(np.float64)
    if grid != "affine":
        if max(-lo, hi) <= 0:
            return 0.0, 0.0, None
        r = optimal_clip(x, bits, grid=grid)
        return -float(r.alpha), float(r.alpha), float(r.mse)
    if hi <= 0 and lo >= 0:
        return 0.0, 0.0, None
    if hi <= 0:  # mirror: the optimiser wants positive values
        r = optimal_clip(-x, bits, grid="affine", range="asymmetric")
        return -float(r.alpha), 0.0 - float(r.beta), float(r.mse)  # (0.0 - 0.0: alpha 0.0, not -0.0)
    r = optimal_clip(x, bits, grid="affine", range="asymmetric")
    return float(r.beta), float(r.alpha), float(r.mse)


class Observer:
    """Collects a tensor batch by batch; returns its range by any calibrator.

    Parameters
    ----------
    bits : int
        Bit-width the range is for (default 8).
    grid : str
        ``"affine"`` (default: asymmetric ``[β, α]``, uint8 activations as ONNX Runtime
        quantizes them) or a symmetric qtheory grid (``"narrow"``, ``"int"``, ``"midrise"``,
        ``"unsigned"``, ``"uint"``).
    axis : int, optional
        Per-channel ranges along this axis of every batch (e.g. 1 for NCHW activations).
    max_samples : int
        Values kept in memory (per channel) before the observer streams (module docstring).
    bins : int
        Histogram bins of the streaming mode (even; default 2^16).
    reservoir : int
        Size of the uniform random sample kept for the sample-based calibrators when streaming.
    seed : int
        Seed of that sample.
    percentile : float
        Percentile of the ``percentile`` method (default 99.99).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> obs = Observer(bits=8)
    >>> for _ in range(4):
    ...     _ = obs.collect(np.maximum(rng.normal(size=(8, 16)), -0.2))
    >>> r = obs.range("max")
    >>> r.beta, r.alpha > 2
    (-0.2, True)
    >>> obs.n
    512
    >>> list(obs.ranges(["max", "exact"]).columns)
    ['method', 'beta', 'alpha', 'mse', 'bound', 'streamed']
    """

    def __init__(self, bits: int = 8, grid: str = "affine", *, axis: int | None = None, max_samples: int = 1 << 22,
                 bins: int = 1 << 16, reservoir: int = 1 << 20, seed: int = 0, percentile: float = 99.99):
        func = "Observer"
        self.grid = check_option(grid, "grid", func, GRIDS)
        self.bits = check_int(bits, "bits", func, MIN_BITS[self.grid], MAX_BITS)
        self.axis = None if axis is None else check_int(axis, "axis", func, -32, 31)
        self.max_samples = check_int(max_samples, "max_samples", func, 0, None)
        self.bins = check_int(bins, "bins", func, 16, 1 << 26)
        if self.bins % 2:
            raise param_error("bins", func, "an even int", self.bins)
        self.reservoir = check_int(reservoir, "reservoir", func, 1, None)
        self.seed = check_int(seed, "seed", func, 0, None)
        self.percentile = check_real(percentile, "percentile", func, 50.0, 100.0, low_open=True)
        self._chans: list[_Stream] | None = None
        self._single: _Stream | None = None

    # ----------------------------------------------------------------- collection
    def collect(self, batch, *, _owned: bool = False) -> Observer:
        """Add a batch (any shape; with ``axis``, the channel axis must have the same length).

        float32 and float64 values are kept as they are (numpy arrays or torch tensors); bool,
        8- and 16-bit integers and float16 as float32 (exactly); other real dtypes as float64
        (exact for integers up to 2^53, as everywhere in qtheory)."""
        func = "Observer.collect"
        base = _as_array(batch, func)
        # float32/float64 as they are; other dtypes exactly where float32 holds them (bool, 8- and
        # 16-bit integers, float16), else as float64 (a uint32 of 2^32 − 1 is not a float32)
        x = base if base.dtype in (np.float32, np.float64) else base.astype(
            np.float32 if base.dtype.itemsize <= 2 else np.float64)
        owned = _owned or x is not base  # (a private array is kept without another copy)
        if self.axis is None:
            flat = x.reshape(-1)
            if flat.size == 0:
                return self
            lo, hi = _finite_range(flat.min(), flat.max(), func)
            if self._single is None:
                self._single = _Stream(self, 0)
            self._single.add(flat, lo, hi, owned=owned or not np.may_share_memory(flat, base))
            return self
        if x.ndim == 0 or not -x.ndim <= self.axis < x.ndim:
            raise param_error("batch", func, f"an array with an axis {self.axis}", f"shape {x.shape}")
        c = np.moveaxis(x, self.axis, 0).reshape(x.shape[self.axis], -1)
        if self._chans is not None and c.shape[0] != len(self._chans):
            raise param_error("batch", func, f"{len(self._chans)} channels along axis {self.axis}",
                              f"{c.shape[0]} channels")
        if c.size == 0:
            return self
        los, his = c.min(axis=1), c.max(axis=1)
        _finite_range(los.min(), his.max(), func)
        if self._chans is None:
            self._chans = [_Stream(self, i) for i in range(c.shape[0])]
        owned = owned or not np.may_share_memory(c, base)
        for s, row, lo, hi in zip(self._chans, c, los.tolist(), his.tolist(), strict=True):
            s.add(row, lo, hi, owned=owned)
        return self

    __call__ = collect

    @property
    def n(self) -> int:
        """Values collected (per channel with ``axis``)."""
        s = self._streams(False)
        return s[0].n if s else 0

    @property
    def streamed(self) -> bool:
        return any(s._h is not None for s in self._streams(False))

    def _streams(self, need=True):
        s = [self._single] if self._single is not None else (self._chans or [])
        if need and not s:
            raise ValueError("Observer: collect(batch) at least once before asking for a range.")
        return s

    # ----------------------------------------------------------------- ranges
    def range(self, method: str = "exact") -> Range:
        """The range chosen by ``method`` (one of :data:`METHODS`)."""
        method = _observer_method(method, "Observer.range")
        res = [s.range(method) for s in self._streams()]
        if self.axis is None:
            b, a, m, e = res[0]
            return Range(b, a, method, self.bits, self.grid, m, e, self.streamed)
        b, a, m, e = (np.array(v) for v in zip(*res, strict=True))
        return Range(b, a, method, self.bits, self.grid, m, e, self.streamed)

    def ranges(self, methods=METHODS):
        """A DataFrame with one row per method (per channel: the columns hold arrays)."""
        import pandas as pd

        rows = []
        for m in methods:
            r = self.range(m)
            rows.append({"method": m, "beta": r.beta, "alpha": r.alpha, "mse": r.mse, "bound": r.bound,
                         "streamed": r.streamed})
        return pd.DataFrame(rows)


def _as_array(batch, func):
    """The batch as a numpy array of real numbers (torch float32/float64 tensors share their
    memory; other dtypes convert as :meth:`Observer.collect` says)."""
    if hasattr(batch, "detach"):  # torch tensor
        t = batch.detach().cpu()
        if str(t.dtype) in ("torch.float32", "torch.float64") or t.is_complex():
            batch = t.numpy()  # (complex: rejected below)
        elif t.dtype.is_floating_point or t.element_size() <= 2:  # (exact in float32)
            batch = t.float().numpy()
        else:
            batch = t.double().numpy()
    x = np.asarray(batch)
    if x.dtype.kind not in "biuf":
        raise param_error("batch", func, "an array of real numbers", f"dtype {x.dtype}", TypeError)
    return x


def _finite_range(lo, hi, func):
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise param_error("batch", func, "an array of finite real numbers", "non-finite values")
    return lo, hi


#: Points of the streamed symmetric scan over its first block of clips, ``[t·2^-(bits+4),
#: t·(1 + 2^(2-bits))]`` (``t = max|x|``); the blocks proven necessary beyond it (see
#: :meth:`_Stream._hist_exact`) are scanned at the same density.
_SCAN = 400
#: At most this many code changes of the bin means over the proven range: the streamed symmetric
#: search sweeps every quadratic piece of U (its exact global minimum); beyond, a scan
_SWEEP = 1 << 16
#: ``|x| < θ·s`` rounds to the level nearest 0 under every rounding rule (with room for rounding)
_THETA = 0.5 * (1.0 - 1e-9)


def _width_exp(top, k):
    """The least integer ``e`` with ``top < k·2^e`` (``top > 0`` finite, ``k >= 1``), exactly (no
    quotient ``top/k`` that can underflow, no ``k·2^e`` that can overflow)."""
    big = math.frexp(top)[1]  # 2^(big-1) <= top < 2^big
    lk = k.bit_length()  # 2^(lk-1) <= k < 2^lk, so k·2^(big-lk) < 2^big and k·2^(big-lk-1) < top
    return big - lk if math.ldexp(top, -big) < math.ldexp(k, -lk) else big - lk + 1


class _Stream:
    """One channel's state: kept values, then histogram + reservoir.

    Streaming, the histogram and the reservoir hold the values at the unit ``2^u``: ``x/2^u``
    (exact, but for values that fall below the float64, resp. float32, normal range there), with
    ``u = e + L``, ``2^e`` the bin width and ``2^L >= bins/2 > 2^(L-1)``. Every held value is then
    below 1 in magnitude and the largest is above 1/4, so the sums of ``x²`` neither over- nor
    underflow, for data of any magnitude from 5e-324 to 1.8e308. The unit follows the bin width: a
    merge of ``2^d`` bins multiplies the sums by ``2^-d`` and ``4^-d`` (exactly, but for subnormal
    sums). Every search runs in the unit; clips leave it times ``2^u`` (a clip beyond the float64
    range is a ``ValueError``), MSEs times ``4^u``, rounded once (0 or inf only where the MSE
    itself leaves float64). So the results at ``x·2^k`` are those at ``x`` times ``2^k`` (clips)
    and ``4^k`` (MSEs), exactly, wherever both data sets are float64 numbers without rounding.
    """

    def __init__(self, obs: Observer, index: int):
        self.o = obs
        self.parts: list[np.ndarray] = []
        self.kept = 0
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self._h = None  # (count, s1, s2, bmin, bmax) arrays, at the unit 2^u
        self.e = None  # bin width 2^e
        self.u = None  # unit 2^u, u = e + L
        self._L = (obs.bins // 2 - 1).bit_length()  # 2^L >= bins/2
        self.rng = np.random.default_rng([obs.seed, index])
        self._buf: list = []  # reservoir candidates: (float32 values at the unit 2^u', keys, u') chunks
        self._nbuf = 0
        self._thr = math.inf  # keys at or above it cannot enter the reservoir
        self._bins_cache = None  # the non-empty bins' arrays, while no batch arrives
        self._split_cache = None  # those arrays split in single-valued bins and the others, likewise
        self._exact_cache = None  # (beta, alpha, mse, bound) of the exact range, likewise

    @property
    def hist(self):
        """The histogram in the data's units (per bin: count, ``Σx``, ``Σx²``, min, max; ``inf`` or
        0 where a sum leaves float64), or ``None`` while the values are kept in memory."""
        if self._h is None:
            return None
        cnt, s1, s2, bmin, bmax = self._h
        with np.errstate(over="ignore", under="ignore"):
            return [cnt, np.ldexp(s1, self.u), np.ldexp(s2, 2 * self.u), np.ldexp(bmin, self.u),
                    np.ldexp(bmax, self.u)]

    def add(self, x, lo=None, hi=None, owned=False):
        """Add the values ``x`` (1-D; ``lo``/``hi`` its min and max if known; ``owned``: a private
        array the caller will not change, kept without a copy)."""
        if x.size == 0:
            return
        self._bins_cache = self._split_cache = self._exact_cache = None
        if lo is None:
            lo, hi = float(x.min()), float(x.max())
        self.n += x.size
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        if self._h is None and self.kept + x.size <= self.o.max_samples:
            self.parts.append(x if owned else np.array(x, copy=True))
            self.kept += x.size
            return
        if self._h is None:  # switch to streaming: everything kept so far goes in first
            old = self.parts
            self.parts, self.kept = [], 0
            self._init_hist(max(-self.lo, self.hi))
            for p in old:
                self._stream(p, float(p.min()), float(p.max()))
        self._stream(x, lo, hi)

    # ---------------------------------------------------------- streaming state
    def _init_hist(self, top):
        # (all zeros so far: the width of the least subnormal, which every later value merges up from)
        self.e = _width_exp(top if top > 0 else 5e-324, self.o.bins // 2)
        self.u = self.e + self._L
        z = np.zeros(self.o.bins)
        self._h = [np.zeros(self.o.bins, np.int64), z.copy(), z.copy(), np.full(self.o.bins, np.inf),
                   np.full(self.o.bins, -np.inf)]

    def _stream(self, x, lo, hi):
        from ..kernels.observers import hist_add

        k = self.o.bins // 2
        top = max(-lo, hi)
        if top > 0:
            d = _width_exp(top, k) - self.e
            if d > 0:
                self._merge(d)
        # x/2^u rounded once: one factor 2^-u where that is a float64 (-1023 <= u <= 1074), else
        # two factors >= 1 (u < -1023: exact products)
        g1, g2 = (math.ldexp(1.0, -self.u), 1.0) if self.u >= -1023 else (2.0**1000, math.ldexp(1.0, -self.u - 1000))
        hist_add(x, g1, g2, math.ldexp(1.0, self._L), k, *self._h)
        # reservoir: the values with the `reservoir` smallest random keys. Candidates are buffered
        # and cut back to `reservoir` values when the buffer holds a quarter more; once it has been
        # cut, a value whose key is not below the largest kept key can never enter and is skipped
        # (the same set as keeping them all). They are kept as float32 at the unit (x/2^u, rounded
        # once: float32 input exactly, but below 2^-126 of the unit).
        keys = self.rng.random(x.size)
        if self._thr < 1.0:
            sel = np.flatnonzero(keys < self._thr)
            x, keys = x[sel], keys[sel]
        self._buf.append((np.ldexp(x, -self.u, out=np.empty(x.size, np.float32), casting="same_kind"), keys, self.u))
        self._nbuf += keys.size
        if self._nbuf > self.o.reservoir + self.o.reservoir // 4:
            self._cut()

    def _cut(self):
        """The reservoir (float32, at the unit ``2^u``), its candidates cut back to ``reservoir``."""
        r = self.o.reservoir
        vals = np.concatenate([v if w == self.u else np.ldexp(v, w - self.u) for v, _, w in self._buf])
        keys = np.concatenate([k for _, k, _ in self._buf])
        if keys.size > r:
            sel = np.argpartition(keys, r - 1)[:r]
            vals, keys = vals[sel], keys[sel]
            self._thr = float(keys.max())
        self._buf, self._nbuf = [(vals, keys, self.u)], keys.size
        return vals

    def _merge(self, d=1):
        """Multiply the bin width (and the unit) by 2^d: old bin i (centred index i - k) goes to
        ⌊(i - k)/2^d⌋ + k (⌊⌊x/w⌋/2^d⌋ = ⌊x/(2^d·w)⌋: the sums merge exactly), then the sums of
        ``x`` (and the bins' min and max) are multiplied by ``2^-d``, those of ``x²`` by ``4^-d``."""
        k = self.o.bins // 2
        old_idx = np.arange(self.o.bins) - k
        new = np.floor_divide(old_idx, 2**min(d, 62)) + k
        cnt, s1, s2, bmin, bmax = self._h
        nb = self.o.bins
        h = [np.bincount(new, weights=cnt, minlength=nb).astype(np.int64), np.bincount(new, weights=s1, minlength=nb),
             np.bincount(new, weights=s2, minlength=nb), np.full(nb, np.inf), np.full(nb, -np.inf)]
        np.minimum.at(h[3], new, bmin)
        np.maximum.at(h[4], new, bmax)
        with np.errstate(under="ignore"):
            h[1], h[2], h[3], h[4] = np.ldexp(h[1], -d), np.ldexp(h[2], -2 * d), np.ldexp(h[3], -d), np.ldexp(h[4], -d)
        self._h = h
        self.e += d
        self.u += d

    # ---------------------------------------------------------- units
    def _in_unit(self, v):
        """A clip (or value) of the data's units at the unit ``2^u``."""
        with np.errstate(under="ignore"):
            return float(np.ldexp(v, -self.u))

    def _clip_out(self, v, method):
        """A clip at the unit back in the data's units; a clear error beyond the float64 range."""
        with np.errstate(over="ignore", under="ignore"):
            c = float(np.ldexp(v, self.u))
        if not math.isfinite(c):
            raise param_error("batch", "Observer.range", "values whose range fits in float64 (divide them by a power "
                              "of two)", f"values up to {max(-self.lo, self.hi)!r}, whose {method!r} range lies "
                              "beyond 1.8e308")
        return c

    def _mse_out(self, v):
        """An MSE at the unit back in the data's units (times ``4^u``, rounded once: ``inf`` or 0
        only beyond the float64 range)."""
        with np.errstate(over="ignore", under="ignore"):
            return float(np.ldexp(v, 2 * self.u))

    # ---------------------------------------------------------- ranges
    def data(self):
        """The kept values (in memory), or the reservoir (streaming; float64, in the data's units)."""
        if self._h is not None:
            with np.errstate(over="ignore"):
                return np.ldexp(self._cut().astype(np.float64), self.u)
        if len(self.parts) > 1:  # (concatenated once, kept so)
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0]

    def range(self, method):
        o = self.o
        if method == "exact":
            if self._exact_cache is None:
                self._exact_cache = (self._finish(*self._hist_exact(), "exact") if self._h is not None
                                     else self._memory_exact())
            return self._exact_cache
        if method == "max":
            b, a = (min(self.lo, 0.0), max(self.hi, 0.0)) if o.grid == "affine" else (
                -max(-self.lo, self.hi), max(-self.lo, self.hi))
            if self._h is not None:
                return self._finish(self._in_unit(b), self._in_unit(a), method, b, a)
        elif self._h is not None:  # the reservoir at the unit: the same clips at every scale, times 2^u
            b, a = clip_range(self._cut(), o.bits, method, o.grid, percentile=o.percentile, func="Observer.range")
            return self._finish(b, a, method)
        else:
            b, a = clip_range(self.data(), o.bits, method, o.grid, percentile=o.percentile, func="Observer.range")
        mse, bound = self.mse(b, a)
        return b, a, mse, bound

    def _finish(self, beta, alpha, method, beta_out=None, alpha_out=None):
        """``(beta, alpha, U, E)`` in the data's units of the streamed range ``[beta, alpha]`` at the
        unit (``beta_out``, ``alpha_out``: the range in the data's units where it is known)."""
        m, e = self._reported(beta, alpha)
        if beta_out is None:
            beta_out, alpha_out = self._clip_out(beta, method), self._clip_out(alpha, method)
        return beta_out, alpha_out, m, e

    def _reported(self, beta, alpha):
        """``(U, E)`` in the data's units of the range ``[beta, alpha]`` at the unit, as reported.

        The bins that hold a single distinct value (min = max) add ``n·(x − y)²`` directly: exact
        where the value sits on its level (no cancellation of ``Σx² − 2yΣx + y²n``, whose rounding
        is relative to ``Σx²``: an exact 0 stays 0 at every scale), and summed at the scale of the
        largest such error (a value far below ``max|x|``, whose square would underflow at the
        unit, still counts); the other bins as in :meth:`_upper_q`. The two parts are added and
        taken to the data's units in exact arithmetic, rounded once (0 or ``inf`` only where
        ``U`` leaves float64)."""
        from fractions import Fraction

        from ..kernels.observers import dd_prefix, hist_upper

        if self._split_cache is None:
            m, n, lo, hi = self._bins()[:4]
            nz = self._h[0] > 0
            one = lo == hi
            many = ~one
            prefs = []
            for v in (n[many], self._h[1][nz][many], self._h[2][nz][many]):
                p = np.empty((2, v.size + 1))
                dd_prefix(v, p[0], p[1])
                prefs.append(p)
            self._split_cache = (lo[one], n[one]), (m[many], n[many], lo[many], hi[many], *prefs)
        (v1, n1), rest = self._split_cache
        u, e = np.zeros(1), np.zeros(1)
        if alpha <= 0 and beta >= 0:  # (every value to 0)
            d = v1
            u[0] = float(np.sum(rest[-1][:, -1]))
        else:
            scale, off, qmin, qmax, mode = quantizer_for(beta, alpha, self.o.bits, self.o.grid).kernel_params
            # (the kernel's codes: every range here rounds half to even, as np.rint)
            d = v1 - (np.clip(np.rint(v1 / scale - off), qmin, qmax) + off) * scale
            if rest[0].size:
                hist_upper(*rest, np.array([scale]), np.array([float(off)]), np.array([float(qmin)]),
                           np.array([float(qmax)]), int(mode), True, u, e)
        w = math.frexp(float(np.max(np.abs(d))))[1] if d.size else 0
        s1 = float(np.sum(n1 * np.square(np.ldexp(d, -w)))) if d.size else 0.0
        total = (Fraction(float(u[0])) + Fraction(s1) * Fraction(2) ** (2 * w)) * Fraction(2) ** (2 * self.u) / self.n
        try:
            m = float(total)
        except OverflowError:
            m = math.inf
        return m, self._mse_out(float(e[0]) / self.n)

    def _memory_exact(self):
        """:func:`qtheory.optimal_clip` of the kept values (in their dtype; no float64 copy), its MSE
        from the same preparation (no second one)."""
        o = self.o
        b, a, mse = _exact_range(self.data(), o.bits, o.grid, lo=self.lo, hi=self.hi)
        if mse is None:
            mse = self.mse(b, a)[0]
        return b, a, mse, 0.0

    def mse(self, beta, alpha):
        """(MSE, bound) of the collected data at the range (exact in memory; streaming ``(U, E)``)."""
        o = self.o
        if self._h is not None:
            return self._reported(self._in_unit(beta), self._in_unit(alpha))
        x = self.data()
        if alpha <= 0 and beta >= 0:
            return float(np.mean(np.square(x, dtype=np.float64))), 0.0
        from ..empirical import EmpiricalMSE

        c, r = EmpiricalMSE(x).mse_quantizer(quantizer_for(beta, alpha, o.bits, o.grid))
        return c + r, 0.0

    def _bins(self):
        """``(mean, n, min, max, P0, P1, P2)`` of the non-empty bins (at the unit): float64 arrays,
        ``P*`` the double-double prefix sums of the counts, ``Σx`` and ``Σx²`` (``(2, bins + 1)``)."""
        if self._bins_cache is None:
            from ..kernels.observers import dd_prefix

            cnt, s1, s2, bmin, bmax = self._h
            nz = cnt > 0
            n, a1 = cnt[nz].astype(np.float64), s1[nz]
            pref = []
            for v in (n, a1, s2[nz]):
                p = np.empty((2, v.size + 1))
                dd_prefix(v, p[0], p[1])
                pref.append(p)
            self._bins_cache = (a1 / n, n, bmin[nz], bmax[nz], *pref)
        return self._bins_cache

    def _upper_many(self, params, bound=False):
        """``(U, E)`` arrays of the quantizers ``params = (scale, offset, qmin, qmax, rounding code)``
        (arrays but the last; at the unit), normalised by ``n``; ``E`` only with ``bound``."""
        from ..kernels.observers import hist_upper

        scale, offset, qmin, qmax, mode = params
        scale = np.asarray(scale, np.float64).reshape(-1)
        shape = scale.shape
        offset, qmin, qmax = (np.broadcast_to(np.asarray(v, np.float64), shape).copy() for v in (offset, qmin, qmax))
        u, e = np.empty(shape), np.zeros(shape)
        hist_upper(*self._bins(), scale, offset, qmin, qmax, int(mode), bool(bound), u, e)
        return u / self.n, e / self.n

    def _upper_q(self, q: Quantizer):
        """``(U, E)`` of a quantizer at the unit."""
        u, e = self._upper_many(q.kernel_params, bound=True)
        return float(u[0]), float(e[0])

    def _upper(self, q: Quantizer):
        """``(U, E)`` of a quantizer in the data's units (its step taken to the unit exactly)."""
        scale, offset, qmin, qmax, mode = q.kernel_params
        with np.errstate(under="ignore"):
            scale = float(np.ldexp(scale, -self.u))
        u, e = self._upper_many((scale, offset, qmin, qmax, mode), bound=True)
        return self._mse_out(float(u[0])), self._mse_out(float(e[0]))

    def _vertex_polish(self, q, v, make, u_of):
        """Assign, then move to the vertex: with the code of every bin's mean held, ``U`` is a
        quadratic in the step ``s`` (levels ``(k + c)·s``) with its minimum at ``Σ (k + c)·S1 /
        Σ (k + c)²·n``; the quantizer ``make(s)`` there replaces ``q`` while ``U`` decreases (the
        codes reassigned at the new step can only lower it further: each bin's mean goes to its
        nearest level). Returns ``(q, U)``."""
        m, n = self._bins()[:2]
        a1 = m * n
        for _ in range(50):
            scale, off, qmin, qmax, _mode = q.kernel_params
            c = np.clip(np.rint(m / scale - off), qmin, qmax) + off  # (np.rint: ties to even)
            den, num = float(np.sum(c * c * n)), float(np.sum(c * a1))
            if not (den > 0 and num > 0):
                break
            q2 = make(num / den)
            if q2 is None:
                break
            v2 = u_of(q2)
            if not v2 < v:
                break
            q, v = q2, v2
        return q, v

    def _clip_above(self, grid, d, t):
        """A clip ``α_B`` (at the unit) beyond which no clip has ``U`` or MSE at most ``t``: the
        argument of :meth:`qtheory.empirical.EmpiricalMSE._clip_bound` on the bins. A value with
        ``|x| < θs`` (``θ = (1 − 10^-9)/2``, ``s = α/d`` the step) goes to the level nearest 0: to 0
        on the grids with a zero level (every grid but ``midrise``; on the unsigned grids every
        ``x < 0`` too), error ``x²``; to ``±s/2`` on ``midrise``, error ``>= (θs − |x|)²``. So the
        MSE at ``s`` is at least ``LB(s) = Σ_{a_b < θs} Σx²_b`` (zero level), resp.
        ``Σ_{a_b < θs} n_b (θs − a_b)²`` (midrise), over the bins whose largest magnitude ``a_b`` is
        below ``θs``; ``LB`` does not decrease with ``s``, and ``U >= MSE``. With ``LB(s_B) > t``
        no step ``>= s_B`` has ``U`` or MSE ``<= t``. On a zero-level grid every bin mean rounds to
        0 once ``θs > max a_b``: ``U`` is constant there, which bounds the search if ``LB``
        never exceeds ``t``."""
        cnt, _, s2, bmin, bmax = self._h
        nz = cnt > 0
        n, q2, b0, b1 = cnt[nz].astype(np.float64), s2[nz], bmin[nz], bmax[nz]
        a = np.maximum(b1, 0.0) if grid in ("unsigned", "uint") else np.maximum(-b0, b1)
        o = np.argsort(a, kind="stable")
        a, n, q2 = a[o], n[o], q2[o]
        target = (max(t, 0.0) * (1.0 + 1e-9) + 1e-300) * self.n  # (U rounds; sums, not means)
        amax = float(a[-1])
        if grid == "midrise":
            def lb(s):
                i = int(np.searchsorted(a, _THETA * s, side="left"))
                return float(np.sum(n[:i] * np.square(_THETA * s - a[:i])))

            hi = 2.0 * (amax + math.sqrt(target / self.n)) / _THETA
        else:
            cq = np.concatenate([[0.0], np.cumsum(q2)])

            def lb(s):
                return float(cq[int(np.searchsorted(a, _THETA * s, side="left"))])

            hi = 2.0 * amax / _THETA * (1.0 + 1e-9)
            if not lb(hi) > target:
                return hi * d
        lo = 0.0
        for _ in range(200):  # bisection of a non-decreasing function
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi or hi - lo <= 1e-6 * hi:
                break
            if lb(mid) > target:
                hi = mid
            else:
                lo = mid
        return hi * d

    def _clip_below(self, t, start, top):
        """The largest clip ``α_L <= top`` (at the unit) found below which no clip has ``U`` or MSE
        at most ``t``. Every level of a symmetric grid lies in ``[−α, α]``, so for ``α <= α_L`` a
        value with ``|x| > α_L`` errs by at least ``|x| − α_L``: the MSE is at least
        ``LB(α_L) = Σ_b n_b·(m_b − α_L)²`` over the bins whose least magnitude ``m_b`` exceeds
        ``α_L``; ``LB`` does not increase with ``α_L``, and ``U >= MSE``. If ``LB(start) > t`` the
        largest such clip in ``[start, top]`` (bisection of ``log α``), else the largest of
        ``start·2^-j`` (``j`` doubled, then bisected) down to ``2^-1022`` (the least clip searched;
        then ``2^-1022`` itself)."""
        cnt, _, _, bmin, bmax = self._h
        nz = cnt > 0
        n, b0, b1 = cnt[nz].astype(np.float64), bmin[nz], bmax[nz]
        m = np.where((b0 <= 0.0) & (b1 >= 0.0), 0.0, np.minimum(np.abs(b0), np.abs(b1)))
        target = (max(t, 0.0) * (1.0 + 1e-9) + 1e-300) * self.n

        def lb(a):
            return float(np.sum(n * np.square(np.maximum(m - a, 0.0))))

        floor = 2.0**-1022
        if start <= floor:
            return start
        if lb(start) > target:  # (lb(top) = 0: the bound lies in [start, top))
            ok, bad = start, top
            for _ in range(60):
                mid = math.sqrt(ok * bad)
                if not ok < mid < bad or bad <= ok * (1.0 + 1e-6):
                    break
                if lb(mid) > target:
                    ok = mid
                else:
                    bad = mid
            return ok
        j0, j = 0, 1  # lb(start·2^-j0) <= target
        while True:
            a = math.ldexp(start, -j)
            if a <= floor:
                if not lb(floor) > target:
                    return floor
                break
            if lb(a) > target:
                break
            j0, j = j, 2 * j
        while j - j0 > 1:  # the least j with lb(start·2^-j) > target
            mid = (j0 + j) // 2
            if lb(math.ldexp(start, -mid)) > target:
                j = mid
            else:
                j0 = mid
        return max(math.ldexp(start, -j), floor)

    def _hist_exact(self):
        """Minimise the upper bound U (at the unit) over the grid's clips, from the histogram
        alone; returns the range ``(beta, alpha)`` at the unit.

        Symmetric grids: a log scan of ``[t·2^-(bits+4), t·(1 + 2^(2-bits))]`` (``t = max|x|``, and
        ``t`` itself) gives ``T``, the least ``U`` found (``T >= MSE(q*)``); :meth:`_clip_below`
        and :meth:`_clip_above` bound the clips where ``U`` or the MSE can be ``<= T``: both the
        true optimum ``q*`` and ``U``'s minimum lie in ``[α_L, α_B]`` (the optimum can lie beyond
        ``max|x|``, e.g. for data on a lattice whose points a wider grid hits, or far below it,
        with rare outliers). ``U`` is a continuous piecewise quadratic in the step: where the bin
        means change code at most ``_SWEEP`` times over that range, every piece is swept
        (:func:`qtheory.kernels.observers.sweep_pieces`) and the minimum is ``U``'s global one.
        Else the scan, widened to the range at the same density, and between the neighbours of
        its three best local minima the same sweep (golden section where that has too many
        pieces). Then the vertex polish of :meth:`_vertex_polish`. Affine: a ``(z, s)`` scan
        refined by Brent, polished by moves of ``z`` by one with ``s``, ``α`` or ``β`` held, and
        by the vertex polish with ``z`` held. Clips stay within float64 in the data's units. The
        quantizers of a scan are evaluated in one kernel call (their parameters computed as
        :class:`qtheory.Quantizer` computes them)."""
        from scipy.optimize import minimize_scalar

        from ..kernels.observers import sweep_count, sweep_pieces
        from ..quantizer import ROUNDING_CODES, SIGNED_GRIDS, _alpha_per_scale

        o = self.o
        bits, grid = o.bits, o.grid
        mode = ROUNDING_CODES["half_even"]
        lo, hi = self._in_unit(self.lo), self._in_unit(self.hi)

        def u_of(q):
            return float(self._upper_many(q.kernel_params)[0][0])

        # clips beyond the float64 range (in the data's units) are no clips: at most `cap`
        with np.errstate(over="ignore"):
            cap = float(np.ldexp(np.finfo(np.float64).max, -self.u))
        if grid != "affine":
            top = max(-lo, hi) if grid in SIGNED_GRIDS else hi
            if top <= 0:
                return 0.0, 0.0
            d = _alpha_per_scale(grid, bits)

            def scan(alphas):
                return self._upper_many((*_scan_params(bits, grid, alphas), mode))[0]

            a_lo, a_hi = top * 2.0 ** -(bits + 4), top * (1 + 2.0 ** (2 - bits))
            per_log = (_SCAN - 1) / math.log(a_hi / a_lo)
            a_hi = min(a_hi, cap)
            alphas = np.geomspace(a_lo, a_hi, _SCAN)
            vals = scan(alphas)
            t_top = float(scan(np.array([top]))[0])  # (max|x|: exact on the narrow grid where it is a level)
            t = min(float(vals.min()), t_top)
            a_up, a_dn = min(self._clip_above(grid, d, t), cap), self._clip_below(t, a_lo, top)
            best = min((float(vals.min()), float(alphas[int(np.argmin(vals))])), (t_top, top))
            q1 = Quantizer(bits, 1.0, grid)
            m = self._bins()[0]

            def sweep(a0, a1):
                """U's global minimum ``(U, α)`` over the clips ``[a0, a1]``: the minima of its
                quadratic pieces, the best few re-evaluated; ``None`` if it has too many pieces."""
                if not a0 < a1 or sweep_count(m, a0 / d, a1 / d, q1.offset, q1.qmin, q1.qmax, mode) > _SWEEP:
                    return None
                out_s, out_v = np.empty(8), np.empty(8)
                sweep_pieces(m, self._bins()[1], self._h[1][self._h[0] > 0], float(self._h[2].sum()), a0 / d, a1 / d,
                             q1.offset, q1.qmin, q1.qmax, mode, out_s, out_v)
                cand = np.clip(out_s[np.isfinite(out_v)] * d, a0, a1)
                vc = scan(cand)
                i = int(np.argmin(vc))
                return float(vc[i]), float(cand[i])

            found = sweep(a_dn, max(a_up, a_dn))
            if found is not None:
                best = min(best, found)
            else:
                # too many pieces (many distinct values and levels): the scan, widened to the
                # proven range at the same density, and around its best three local minima the
                # sweep of the interval between their neighbours (golden section where that
                # still has too many pieces)
                ext = []
                if a_up > a_hi:
                    ext.append(np.geomspace(a_hi, a_up, max(math.ceil(per_log * math.log(a_up / a_hi)), 1) + 1)[1:])
                if a_dn < a_lo:
                    ext.append(np.geomspace(a_dn, a_lo, max(math.ceil(per_log * math.log(a_lo / a_dn)), 1) + 1)[:-1])
                if ext:
                    extra = np.concatenate(ext)
                    alphas = np.concatenate([alphas, extra])
                    vals = np.concatenate([vals, scan(extra)])
                    order = np.argsort(alphas, kind="stable")
                    alphas, vals = alphas[order], vals[order]
                inner = (vals <= np.r_[np.inf, vals[:-1]]) & (vals <= np.r_[vals[1:], np.inf])
                idx = np.flatnonzero(inner)
                idx = idx[np.argsort(vals[idx], kind="stable")[:3]]
                for i in idx:
                    a0, a1 = alphas[max(i - 1, 0)], alphas[min(i + 1, alphas.size - 1)]
                    found = sweep(a0, a1)
                    if found is None:
                        res = minimize_scalar(lambda a: u_of(Quantizer(bits, a, grid)), bounds=(a0, a1),
                                              method="bounded", options={"xatol": 1e-10 * alphas[i]})
                        found = (float(res.fun), float(res.x))
                    best = min(best, found)
            q, _ = self._vertex_polish(Quantizer(bits, best[1], grid), best[0],
                                       lambda s: Quantizer(bits, s * d, grid) if 0 < s * d <= cap else None, u_of)
            return -float(q.alpha), float(q.alpha)
        top = 2**bits - 1
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi <= 0 and lo >= 0:
            return 0.0, 0.0
        span = (hi - lo) / top
        s_grid = np.geomspace(span * 1e-3, span * 1.05, 64)

        def q_of(z, s):
            s = min(s, cap / max(top - z, z))  # (β = −z·s and α = (top − z)·s within float64)
            if z == top:
                return quantizer_for(-z * s, 0.0, bits, "affine")
            return Quantizer(bits, (top - z) * s, "affine", beta=-z * s)

        def best_s(z):
            if z == top:
                v = np.array([u_of(q_of(z, s)) for s in s_grid])
            else:
                v = self._upper_many((*_scan_params(bits, grid, np.minimum(s_grid, cap / max(top - z, z)), z),
                                      mode))[0]
            i = int(np.argmin(v))
            return float(v[i]), float(s_grid[i]), i

        z_lo = 0
        z_hi = top - 1 if lo < 0 else 0
        if hi <= 0:
            z_lo = z_hi = top
        coarse = np.unique(np.round(np.linspace(z_lo, z_hi, min(z_hi - z_lo + 1, 17))).astype(int))
        scan = {int(z): best_s(int(z)) for z in coarse}
        zb = min(scan, key=lambda z: scan[z][0])
        step = int(coarse[1] - coarse[0]) if coarse.size > 1 else 1
        for z in range(max(z_lo, zb - step), min(z_hi, zb + step) + 1):
            if z not in scan:
                scan[z] = best_s(z)
        cands = []
        for z in sorted(scan, key=lambda z: scan[z][0])[:3]:
            v0, s0, i = scan[z]
            a_, b_ = s_grid[max(i - 1, 0)], s_grid[min(i + 1, s_grid.size - 1)]
            res = minimize_scalar(lambda s, z=z: u_of(q_of(z, s)), bounds=(a_, b_), method="bounded",
                                  options={"xatol": 1e-10 * b_})
            cands.append((float(res.fun), float(res.x), z) if res.fun <= v0 else (v0, s0, z))
        cands.sort()
        v, s, z = cands[0]
        # polish: move z by one (with s, α or β held), the step refined by Brent near it; U of
        # lattice-valued data (8-bit images) has narrow minima between the scanned zero points
        w = 2.0 / top
        improved = z_lo < z_hi
        while improved:
            improved = False
            for z2 in (z - 1, z + 1):
                if not z_lo <= z2 <= z_hi:
                    continue
                starts = {s, s * (top - z) / (top - z2)} | ({s * z / z2} if z > 0 and z2 > 0 else set())
                for s2 in sorted(starts):
                    res = minimize_scalar(lambda t, z2=z2: u_of(q_of(z2, t)), bounds=(s2 * (1 - w), s2 * (1 + w)),
                                          method="bounded", options={"xatol": 1e-10 * s2})
                    v2, t2 = min((float(res.fun), float(res.x)), (u_of(q_of(z2, s2)), s2))
                    if v2 < v:
                        v, s, z, improved = v2, t2, z2, True
                        break
                if improved:
                    break
        q, _ = self._vertex_polish(q_of(z, s), v, lambda s2: q_of(z, s2) if 0 < s2 < math.inf else None, u_of)
        return float(q.beta), float(q.alpha)


def _scan_params(bits, grid, values, z=None):
    """``(scale, offset, qmin, qmax)`` arrays of the quantizers of a scan, computed as
    :class:`qtheory.Quantizer` computes them (``quantizer._grid_params``): symmetric grids,
    ``Quantizer(bits, alpha, grid)`` for the clips ``values``; affine, ``Quantizer(bits, (top − z)·s,
    "affine", beta=−z·s)`` for the steps ``values`` (``z < top``)."""
    from ..quantizer import _alpha_per_scale

    v = np.asarray(values, np.float64)
    if grid != "affine":
        q1 = Quantizer(bits, 1.0, grid)
        return v / _alpha_per_scale(grid, bits), q1.offset, q1.qmin, q1.qmax
    top = 2**bits - 1
    alpha, beta = float(top - z) * v, -z * v
    zq = np.clip(np.floor(top * (-beta / (alpha - beta)) + 0.5), 0, top)
    return (alpha - beta) / top, 0.0, -zq, top - zq


# ================================================================================ hooks
def torch_observers(model, batches, *, modules=None, inputs: bool = False, progress: bool = False,
                    **observer_kw) -> dict:
    """Observers of the outputs (or inputs) of a torch model's modules, filled by forward hooks.

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        Inputs: a tensor, or a tuple of positional arguments, per batch.
    modules : iterable of str, optional
        Module names (``model.named_modules()``); default every leaf module.
    inputs : bool
        Observe each module's first input instead of its output (the tensor a quantized layer
        reads).
    progress : bool
        A tqdm bar over the batches.
    **observer_kw
        Passed to :class:`Observer` (``bits``, ``grid``, ``axis``, ``max_samples``, ...).

    Returns
    -------
    dict
        ``{module name: Observer}``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Hardswish())
    >>> obs = torch_observers(net, [torch.randn(16, 4) for _ in range(3)])
    >>> sorted(obs), obs["1"].n
    (['0', '1'], 384)
    >>> obs["1"].range("max").beta >= -0.375
    True
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise param_error("model", "torch_observers", "a torch.nn.Module", type(model).__name__, TypeError)
    named = dict(model.named_modules())
    if modules is None:
        names = [n for n, m in named.items() if n and not any(True for _ in m.children())]
    else:
        names = list(modules)
        for n in names:
            if n not in named:
                raise param_error("modules", "torch_observers", "names of the model's modules", n)
    obs = {n: Observer(**observer_kw) for n in names}
    hooks = []

    def hook(name):
        def f(_mod, args, out):
            t = args[0] if inputs else out
            if isinstance(t, (tuple, list)):
                t = t[0]
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                obs[name].collect(t.detach())
        return f

    for n in names:
        hooks.append(named[n].register_forward_hook(hook(n)))
    try:
        with torch.no_grad():
            for b in _bar(batches, progress, "torch batches"):
                model(*b) if isinstance(b, tuple) else model(b)
    finally:
        for h in hooks:
            h.remove()
    return {n: o for n, o in obs.items() if o.n}


def onnx_observers(model, feeds, *, tensors=None, providers=("CPUExecutionProvider",), preprocess: bool = False,
                   progress: bool = False, **observer_kw) -> dict:
    """Observers of intermediate tensors of an ONNX model run in ONNX Runtime.

    The tensors are added as graph outputs of a copy of the model (as ONNX Runtime's own
    calibrators augment it), then every feed is run once.

    Parameters
    ----------
    model : str, path or onnx.ModelProto
    feeds : iterable of dict
        ``{input name: array}`` per batch.
    tensors : iterable of str, optional
        Tensor names; default the tensors ONNX Runtime's calibrators observe
        (:func:`qtheory.models.export.ort_calibration_tensors`), i.e. every range
        :func:`qtheory.models.export.quantize_onnx` needs.
    providers : sequence of str
    preprocess : bool
        With the default ``tensors``: observe the graph after ONNX Runtime's ``quant_pre_process``
        (use with ``quantize_onnx(..., preprocess=True)``).
    progress : bool
    **observer_kw
        Passed to :class:`Observer`.

    Returns
    -------
    dict
        ``{tensor name: Observer}``.

    Examples
    --------
    >>> import onnx
    >>> from onnx import helper
    >>> n = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    >>> g = helper.make_graph(n, "g", [helper.make_tensor_value_info("x", 1, [2, 3])],
    ...                       [helper.make_tensor_value_info("y", 1, [2, 3])])
    >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    >>> obs = onnx_observers(m, [{"x": np.array([[-1, 2, 3], [4, -5, 6]], np.float32)}], tensors=["r", "y"])
    >>> obs["r"].range("max").alpha, obs["y"].range("max").beta
    (6.0, -6.0)
    """
    import onnx
    import onnxruntime as ort

    from .readers import _load_onnx

    m, _ = _load_onnx(model, "onnx_observers")
    consts = {t.name for t in m.graph.initializer} | {o for nd in m.graph.node if nd.op_type == "Constant"
                                                      for o in nd.output}
    if tensors is None:  # run the graph ONNX Runtime's quantizer will see
        from .export import ort_calibration_tensors, prepare_for_ort

        m = prepare_for_ort(m, preprocess=preprocess)
        consts = {t.name for t in m.graph.initializer}
        names = [n for n in ort_calibration_tensors(m) if n not in consts]
    else:
        names = list(tensors)
    produced = {o for nd in m.graph.node for o in nd.output} | {i.name for i in m.graph.input}
    for n in names:
        if n not in produced:
            raise param_error("tensors", "onnx_observers", "names of tensors computed by the model", n)
    aug = onnx.ModelProto()
    aug.CopyFrom(m)
    have = {o.name for o in aug.graph.output}
    for n in names:
        if n not in have:
            aug.graph.output.append(onnx.ValueInfoProto(name=n))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(aug.SerializeToString(), so, providers=list(providers))
    obs = {n: Observer(**observer_kw) for n in names}
    for feed in _bar(feeds, progress, "onnx batches"):
        outs = sess.run(names, feed)
        for n, v in zip(names, outs, strict=True):
            if np.asarray(v).dtype.kind == "f":
                obs[n].collect(v, _owned=True)  # (ONNX Runtime's fresh output: kept without a copy)
    return {n: o for n, o in obs.items() if o.n}


def _bar(it, progress, desc):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc)
