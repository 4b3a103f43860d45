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

The streamed ``exact`` method minimises ``U(q) = Σ_bins Σ_x (x − y_b)²`` where each bin's values
all go to the level ``y_b`` of the bin's mean — an achievable assignment, so ``U(q) ≥ MSE(q)``;
``U(q) = MSE(q)`` exactly when no decision threshold falls between a bin's min and max. For the
bins that straddle one, ``MSE(q) ≥ U(q) − E(q)`` with ``E(q) = (1/N) Σ_straddled n_b·D_b²``, ``D_b``
the largest distance from ``y_b`` to the bin's min or max. Hence the streamed optimum ``q̂`` obeys

    MSE(q̂) ≤ U(q̂) ≤ U(q*) ≤ MSE(q*) + E(q*)

(``q*`` the true optimum; the middle step holds when the search — a scan of ``U`` over the
clip (affine: over zero point and step, refined by Brent and by moves of the zero point by one) —
finds ``U``'s global minimum; ``U`` of a quantizer costs ``O(levels · log bins)``, see
:func:`qtheory.kernels.observers.hist_upper`):
its excess over the exact optimum is at most ``E(q*)``, which shrinks
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
        return any(s.hist is not None for s in self._streams(False))

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


class _Stream:
    """One channel's state: kept values, then histogram + reservoir."""

    def __init__(self, obs: Observer, index: int):
        self.o = obs
        self.parts: list[np.ndarray] = []
        self.kept = 0
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self.hist = None  # (count, s1, s2, bmin, bmax) arrays
        self.e = None  # bin width 2^e
        self.rng = np.random.default_rng([obs.seed, index])
        self._buf: list = []  # reservoir candidates: (float32 values, keys) chunks
        self._nbuf = 0
        self._thr = math.inf  # keys at or above it cannot enter the reservoir
        self._bins_cache = None  # the non-empty bins' arrays, while no batch arrives
        self._exact_cache = None  # (beta, alpha, mse, bound) of the exact range, likewise

    def add(self, x, lo=None, hi=None, owned=False):
        """Add the values ``x`` (1-D; ``lo``/``hi`` its min and max if known; ``owned``: a private
        array the caller will not change, kept without a copy)."""
        if x.size == 0:
            return
        self._bins_cache = self._exact_cache = None
        if lo is None:
            lo, hi = float(x.min()), float(x.max())
        self.n += x.size
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        if self.hist is None and self.kept + x.size <= self.o.max_samples:
            self.parts.append(x if owned else np.array(x, copy=True))
            self.kept += x.size
            return
        if self.hist is None:  # switch to streaming: everything kept so far goes in first
            old = self.parts
            self.parts, self.kept = [], 0
            self._init_hist(max(-self.lo, self.hi))
            for p in old:
                self._stream(p, float(p.min()), float(p.max()))
        self._stream(x, lo, hi)

    # ---------------------------------------------------------- streaming state
    def _init_hist(self, top):
        k = self.o.bins // 2
        self.e = math.frexp(top / k)[1] if top > 0 else -1000  # 2^e * k > top
        z = np.zeros(self.o.bins)
        self.hist = [np.zeros(self.o.bins, np.int64), z.copy(), z.copy(), np.full(self.o.bins, np.inf),
                     np.full(self.o.bins, -np.inf)]

    def _stream(self, x, lo, hi):
        from ..kernels.observers import hist_add

        k = self.o.bins // 2
        top = max(-lo, hi)
        d = 0
        while top >= math.ldexp(k, self.e + d):
            d += 1
        if d:
            self._merge(d)
        f = -self.e  # 1/w = 2^f = f1·f2, each factor representable
        hist_add(x, math.ldexp(1.0, f // 2), math.ldexp(1.0, f - f // 2), k, *self.hist)
        # reservoir: the values with the `reservoir` smallest random keys. Candidates are buffered
        # and cut back to `reservoir` values when the buffer holds a quarter more; once it has been
        # cut, a value whose key is not below the largest kept key can never enter and is skipped
        # (the same set as keeping them all).
        keys = self.rng.random(x.size)
        fresh = self._thr < 1.0
        if fresh:
            sel = np.flatnonzero(keys < self._thr)
            x, keys = x[sel], keys[sel]
        self._buf.append((x.astype(np.float32, copy=not fresh), keys))
        self._nbuf += keys.size
        if self._nbuf > self.o.reservoir + self.o.reservoir // 4:
            self._cut()

    def _cut(self):
        r = self.o.reservoir
        vals = np.concatenate([v for v, _ in self._buf])
        keys = np.concatenate([k for _, k in self._buf])
        if keys.size > r:
            sel = np.argpartition(keys, r - 1)[:r]
            vals, keys = vals[sel], keys[sel]
            self._thr = float(keys.max())
        self._buf, self._nbuf = [(vals, keys)], keys.size
        return vals

    def _merge(self, d=1):
        """Multiply the bin width by 2^d: old bin i (centred index i - k) goes to ⌊(i - k)/2^d⌋ + k
        (⌊⌊x/w⌋/2^d⌋ = ⌊x/(2^d·w)⌋: the sums merge exactly)."""
        k = self.o.bins // 2
        old_idx = np.arange(self.o.bins) - k
        new = np.floor_divide(old_idx, 2**min(d, 62)) + k
        cnt, s1, s2, bmin, bmax = self.hist
        nb = self.o.bins
        h = [np.bincount(new, weights=cnt, minlength=nb).astype(np.int64), np.bincount(new, weights=s1, minlength=nb),
             np.bincount(new, weights=s2, minlength=nb), np.full(nb, np.inf), np.full(nb, -np.inf)]
        np.minimum.at(h[3], new, bmin)
        np.maximum.at(h[4], new, bmax)
        self.hist = h
        self.e += d

    # ---------------------------------------------------------- ranges
    def data(self):
        if self.hist is not None:
            return self._cut()
        if len(self.parts) > 1:  # (concatenated once, kept so)
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0]

    def range(self, method):
        o = self.o
        if method == "exact":
            if self._exact_cache is None:
                self._exact_cache = self._hist_exact() if self.hist is not None else self._memory_exact()
            return self._exact_cache
        if method == "max":
            b, a = (min(self.lo, 0.0), max(self.hi, 0.0)) if o.grid == "affine" else (
                -max(-self.lo, self.hi), max(-self.lo, self.hi))
        else:
            b, a = clip_range(self.data(), o.bits, method, o.grid, percentile=o.percentile, func="Observer.range")
        mse, bound = self.mse(b, a)
        return b, a, mse, bound

    def _memory_exact(self):
        """:func:`qtheory.optimal_clip` of the kept values (in their dtype; no float64 copy), its MSE
        from the same preparation (no second one)."""
        o = self.o
        b, a, mse = _exact_range(self.data(), o.bits, o.grid, lo=self.lo, hi=self.hi)
        if mse is None:
            mse = self.mse(b, a)[0]
        return b, a, mse, 0.0

    def mse(self, beta, alpha):
        """(MSE, bound) of the collected data at the range (exact in memory)."""
        o = self.o
        if alpha <= 0 and beta >= 0:
            x = self.data()
            return (float(np.mean(np.square(x, dtype=np.float64))) if self.hist is None
                    else float(self.hist[2].sum() / self.n)), 0.0
        q = quantizer_for(beta, alpha, o.bits, o.grid)
        if self.hist is None:
            from ..empirical import EmpiricalMSE

            c, r = EmpiricalMSE(self.data()).mse_quantizer(q)
            return c + r, 0.0
        u, e = self._upper(q)
        return u, e

    def _bins(self):
        """``(mean, n, min, max, P0, P1, P2)`` of the non-empty bins: float64 arrays, ``P*`` the
        double-double prefix sums of the counts, ``Σx`` and ``Σx²`` (``(2, bins + 1)``)."""
        if self._bins_cache is None:
            from ..kernels.observers import dd_prefix

            cnt, s1, s2, bmin, bmax = self.hist
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
        (arrays but the last), normalised by ``n``; ``E`` only with ``bound``."""
        from ..kernels.observers import hist_upper

        scale, offset, qmin, qmax, mode = params
        scale = np.asarray(scale, np.float64).reshape(-1)
        shape = scale.shape
        offset, qmin, qmax = (np.broadcast_to(np.asarray(v, np.float64), shape).copy() for v in (offset, qmin, qmax))
        u, e = np.empty(shape), np.zeros(shape)
        hist_upper(*self._bins(), scale, offset, qmin, qmax, int(mode), bool(bound), u, e)
        return u / self.n, e / self.n

    def _upper(self, q: Quantizer):
        u, e = self._upper_many(q.kernel_params, bound=True)
        return float(u[0]), float(e[0])

    def _hist_exact(self):
        """Minimise the upper bound U over the grid's clips (1-D log scan + golden section, or an
        affine (z, s) scan refined by Brent and polished by moves of z by one with s, α or β held),
        from the histogram alone. The quantizers of a scan are evaluated in one kernel call (their
        parameters computed as :class:`qtheory.Quantizer` computes them)."""
        from scipy.optimize import minimize_scalar

        from ..quantizer import ROUNDING_CODES

        o = self.o
        bits, grid = o.bits, o.grid
        mode = ROUNDING_CODES["half_even"]

        def u_of(q):
            return float(self._upper_many(q.kernel_params)[0][0])

        if grid != "affine":
            top = max(-self.lo, self.hi) if grid in ("midrise", "int", "narrow") else self.hi
            if top <= 0:
                return 0.0, 0.0, *self.mse(0.0, 0.0)
            alphas = np.geomspace(top * 2.0 ** -(bits + 4), top * (1 + 2.0 ** (2 - bits)), 400)
            vals = self._upper_many((*_scan_params(bits, grid, alphas), mode))[0]
            i = int(np.argmin(vals))
            res = minimize_scalar(lambda a: u_of(Quantizer(bits, a, grid)),
                                  bounds=(alphas[max(i - 1, 0)], alphas[min(i + 1, alphas.size - 1)]),
                                  method="bounded", options={"xatol": 1e-10 * alphas[i]})
            a = float(res.x) if res.fun <= vals[i] else float(alphas[i])
            m, e = self._upper(Quantizer(bits, a, grid))
            return -a, a, m, e
        top = 2**bits - 1
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if hi <= 0 and lo >= 0:
            return 0.0, 0.0, *self.mse(0.0, 0.0)
        span = (hi - lo) / top
        s_grid = np.geomspace(span * 1e-3, span * 1.05, 64)

        def q_of(z, s):
            if z == top:
                return quantizer_for(-z * s, 0.0, bits, "affine")
            return Quantizer(bits, (top - z) * s, "affine", beta=-z * s)

        def best_s(z):
            if z == top:
                v = np.array([u_of(q_of(z, s)) for s in s_grid])
            else:
                v = self._upper_many((*_scan_params(bits, grid, s_grid, z), mode))[0]
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
        q = q_of(z, s)
        m, e = self._upper(q)
        return float(q.beta), float(q.alpha), m, e


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
