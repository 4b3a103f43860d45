"""Exact empirical clipping MSE of a tensor, fast: one O(N) preparation, then O(levels) per clip.

The MSE of quantizing samples ``x_1..x_N`` with a clip ``α`` is
``(1/N) Σ_i (q_α(x_i) − x_i)²``. Computed directly it costs O(N) per clip. Here the samples are
prepared once (:class:`EmpiricalMSE`): one O(N) pass, no sort, in numba threads (chunks handed out
dynamically; per-thread tables merged after), builds a histogram with 2^m buckets per octave of
``|x|`` and keeps, per bucket, the count and exact sums of ``x`` and ``x²`` (float32 input: integer
sums of the mantissas, which share one exponent in a bucket; float64: compensated sums with exact
products) and bounds of its samples. A clip then costs O(levels): buckets away from every decision
threshold and overload point contribute ``Σx² − 2yΣx + y²n`` from double-double prefix sums; the
few buckets that straddle a threshold have their samples gathered (a second O(N) pass, only for
those buckets, kept sorted with prefix sums) and are split with binary searches that apply exactly
the floating-point operations of :meth:`qtheory.Quantizer.to_codes`. Ties (integer-valued samples,
values exactly on a threshold) are therefore resolved as the reference quantizer resolves them, and
the result equals a direct quantize-and-average computation to float64 rounding.

On top of it, :func:`empirical_optimal_clip` finds the global optimum over every clip ``α > 0``.
With the assignment of samples to levels fixed, the error is a quadratic in the step whose vertex
is ``Σ c·x / Σ c²``; the empirical MSE is the lower envelope of those quadratics (finitely many
pieces: each sample crosses each threshold once), and its local minima are vertices. The search
range is proven sufficient (see ``EmpiricalMSE._clip_bound``): beyond ``α_B`` every sample
with ``|x| < α/(2D)`` alone costs more than a clip already evaluated, and below the smallest
threshold crossing the assignment no longer changes (one quadratic piece down to ``α = 0``).

- Tensors of at most 2^16 samples with ``N·levels <= 10^6``: every threshold crossing in
  ``(0, α_B]`` is swept in order (O(N·levels·log)), which visits every piece: the true global
  minimum, checked against a brute force over all pieces in the tests.
- Larger tensors: a logarithmic scan of the bucket-approximate MSE over the proven range
  (straddling buckets spread evenly over their range; no samples needed), golden-section
  refinement of the best basins, then one gathering pass for the buckets that straddle a cut in a
  narrow window around each basin's approximate optimum, an exact scan of each window and the
  exact polish ("assign, then move to the vertex", which never increases the error, accelerated by
  secant steps on the fixed-point map) to a vertex: the best error found, ``f``. Then the proof
  (``EmpiricalMSE._prove``), a branch and bound over the whole proven range: for an interval of
  steps, every sample's error at any step of it is at least its squared distance to the levels
  that interval can place, and a bucket whose samples keep one level contributes its exact
  quadratic in the step (the bound loses only second-order terms in the interval's width); a
  bucket not gathered is bounded from its sums. Intervals whose bound exceeds ``f`` are dropped,
  the others halved until few crossings are left; the buckets those straddle are gathered (one
  pass), and every piece of what survives is swept. So the result is the global minimum over
  every clip, as for few samples (tested against the per-channel branch and bound, an independent
  implementation on the sorted samples). Its cost grows where the MSE is flat around its optimum
  (8 bits and more on smooth data): the range that must be swept piece by piece widens.

Scale: float64 samples whose magnitude is outside ``2^±100`` are multiplied by a power of two
first (exact: no code changes), so every result is scale-equivariant from 1e-300 to 1e300.
Samples no clip can reach (all zero; or, on the unsigned grids, none positive) have the clip
``0.0`` by definition, with the MSE every clip gives (or its limit as ``α -> 0`` on midrise).

:func:`per_channel_optimal_clip` does this for every channel of a weight tensor.
``EmpiricalMSE._affine_optimum`` finds the asymmetric range of the affine grid (zero point and
step jointly), proven over every zero point (see its docstring): for few samples (``N·levels <=
2^20``) each zero point's grid through the per-channel kernel on the sorted samples, otherwise on
the same bucket statistics as above.

Examples
--------
>>> import numpy as np
>>> from qtheory import Quantizer
>>> from qtheory.empirical import EmpiricalMSE, direct_mse
>>> x = np.random.default_rng(0).laplace(size=10_000)
>>> prep = EmpiricalMSE(x)
>>> r = prep.mse(3.0, bits=4, grid="midrise")
>>> q = Quantizer(4, 3.0)
>>> abs(r.mse - direct_mse(x, q)) <= 1e-15 * r.mse
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._results import unit_db
from ._validation import check_bool, check_int, check_option, check_samples, param_error
from .quantizer import (
    DEFAULT_TENSOR_GRID,
    GRIDS,
    MAX_BITS,
    MIN_BITS,
    ROUNDING_CODES,
    ROUNDINGS,
    Quantizer,
)

__all__ = ["EmpiricalMSE", "empirical_mse", "empirical_optimal_clip", "per_channel_optimal_clip",
           "PerChannelClips", "direct_mse"]

_OCTAVES = 24
#: midrise steps at least this many times max|x| are evaluated in closed form (every sample in the
#: innermost cell; the bucketed sums of such steps overflow at the samples' unit scale)
_MIDRISE_FAR = 2.0**30
#: tensors with N·levels up to this get the exact breakpoint sweep (the true global optimum)
_SWEEP_LIMIT = 1_000_000
#: buckets of a tensor of 2^20 samples or more (default; fewer below: min(N/2, 2^14))
_LARGE_BUCKETS = 2**16
#: large tensors: relative half-width of the exact scan around each basin's approximate optimum
_LARGE_WIDTH = 1e-4
#: ... basins whose bucket-approximate error exceeds the best one's by this factor are dropped
_BASIN_TOL = 1e-2
#: the proof of the large-tensor search: an interval is swept once its crossings are at most this
_PROOF_LEAF = 8000
#: ... and in the affine search's proof (many zero points: more bounds, smaller sweeps pay)
_AFFINE_PROOF_LEAF = 2000
#: ... which gathers every sample once it has bounded this many intervals (a flat ridge of zero
#: points: gathered buckets give far tighter bounds), up to this many samples (40 bytes a sample)
_AFFINE_GATHER_AFTER = 1000
_AFFINE_GATHER_ALL = 1 << 22
_SCALE_GRIDS = ("midrise", "int", "narrow", "unsigned", "uint")
#: few samples, affine range: the per-zero-point sweeps run while they cross at most this many thresholds
_AFFINE_EVENTS = 1_000_000
#: per_channel_optimal_clip: channels at least this long go through EmpiricalMSE.optimal_clip
_PC_LONG = 1 << 19
#: the affine search's exact windows: as wide as this many crossings allow
_AFFINE_WINDOW_EVENTS = 20_000
#: affine proof: a level with this many items evaluates the least bounds' steps exactly (a better
#: error to prune against, when the search's was far from the optimum; every sample gathered first
#: up to _AFFINE_GATHER_ALL, beyond which it takes 64 times as many items: a gathering pass per level)
_AFFINE_INCUMBENT_ITEMS = 32
#: affine range: up to this many samples × levels (N·(2^b − 1)), each zero point's proven optimum
#: over the step from the sorted samples (kernels.empirical.affine_zero_points) instead of the
#: bucketed (z, s) search (measured crossover: 2^20 at 2 to 8 bits, within a factor of 2)
_AFFINE_DIRECT = 1 << 20
#: the pair bound (fact 4 of the kernels' notes) ends the proof's range above the optimum on grids
#: of at least this many steps: from the buckets, then, up to _PAIR_GATHER samples and where the
#: buckets' bound left the range above _PAIR_GATHER_RATIO times the best clip, from every sample
_PAIR_LEVELS = 31
_PAIR_GATHER = 1 << 22
_PAIR_GATHER_RATIO = 1.5


def _kernels():
    from .kernels import empirical

    return empirical


def _threads(n: int) -> tuple[int, int]:
    """``(threads, chunk)`` for the O(N) passes: numba's thread count (one for small tensors) and
    the samples per chunk (chunks are handed out dynamically, so a core busy with other work
    takes fewer of them). With one thread the passes call the serial kernels: a parallel region
    first wakes numba's sleeping worker threads, 0.1-0.5 ms, more than a small tensor's pass."""
    if n < 1 << 18:
        return 1, max(n, 1)
    import numba

    return max(1, int(numba.get_num_threads())), 1 << 16


def _schedule(nthreads: int):
    """Context of a parallel kernel call: a dynamic schedule (one chunk at a time)."""
    import contextlib

    if nthreads == 1:
        return contextlib.nullcontext()
    import numba

    return numba.parallel_chunksize(1)


def _denominator(grid: str, bits: int) -> tuple[float, float, int, int]:
    """``(D, offset, qmin, qmax)`` with ``scale = alpha / D`` (as :class:`Quantizer` computes it)."""
    q = Quantizer(bits, 1.0, grid)
    half = 2 ** (bits - 1)
    d = {"midrise": half, "int": half, "narrow": half - 1, "unsigned": 2**bits - 1, "uint": 2**bits}[grid]
    return float(d), q.offset, q.qmin, q.qmax


def direct_mse(x, quantizer: Quantizer) -> float:
    """Reference: quantize every sample and average the squared errors (``math.fsum``).

    >>> direct_mse([0.0, 1.0, 2.0], Quantizer(2, 2.0, "int"))   # levels -2, -1, 0, 1: 2 -> 1
    0.3333333333333333
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    e = quantizer.quantize(x) - x
    return math.fsum(e * e) / x.size


def _as_samples(x, name: str, func: str):
    """Validate a tensor of samples without copying float32/float64 input; returns a 1-D view."""
    what = "a non-empty array of finite real numbers"
    try:
        arr = np.asarray(x)
    except Exception:  # pragma: no cover - exotic array-likes
        raise param_error(name, func, what, type(x).__name__, TypeError) from None
    if arr.dtype.kind not in "biuf":
        raise param_error(name, func, what, f"array of dtype {arr.dtype}", TypeError)
    if arr.size == 0:
        raise param_error(name, func, what, f"array of shape {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    arr = np.ascontiguousarray(arr).reshape(-1)
    lo, hi = arr.min(), arr.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise param_error(name, func, what, f"array with {bad} non-finite value(s)")
    return arr, float(lo), float(hi)


class EmpiricalMSE:
    """Samples prepared for exact MSE evaluation of any clip.

    One O(N) pass (in numba threads for ``N >= 2^18``) builds a bucket histogram with exact
    per-bucket sums (no sort, no copy of float32/float64 input); an exact evaluation gathers, on
    demand, the samples of the few buckets that straddle a threshold (one more O(N) pass, reused by
    later evaluations). With ``presort=True`` all buckets are gathered up front, so every later
    evaluation is independent of N.

    Parameters
    ----------
    x : array_like
        Finite real samples (any shape; flattened). float32 input is read as is.
    buckets : int, optional
        Target number of buckets (default ``N // 2`` clamped to ``[64, 2**14]``, or to
        ``[64, 2**16]`` from ``2^20`` samples: finer buckets leave fewer samples to gather, and the
        16-byte float32 bucket table still stays in cache); rounded down to ``2·24·2^m + 1``.
    presort : bool
        Gather (sort) the samples of every bucket during the preparation — an O(N log N)
        preparation after which *every* exact evaluation costs O(levels·log N), independent of N,
        with no further pass over ``x``. Tensors of at most 2^16 samples are always presorted. The
        default (``False``) gathers lazily, which is faster when only a few clips are evaluated
        (the optimal-clip search gathers once, in one batched pass).

    Attributes
    ----------
    n : int
        Number of samples.
    min, max, absmax, mean, var : float

    Examples
    --------
    >>> import numpy as np
    >>> prep = EmpiricalMSE(np.arange(-3.0, 4.0))
    >>> r = prep.mse(4.0, 3, grid="int")   # integers on the integer grid: no rounding error
    >>> r.mse, r.clipping, r.rounding
    (0.0, 0.0, 0.0)
    >>> float(prep.mse(2.0, 3, grid="int").clipping)   # -3, 2, 3 are clipped to -2, 1.5, 1.5
    0.5
    """

    def __init__(self, x, *, buckets: int | None = None, presort: bool = False, _name: str = "x",
                 _func: str = "EmpiricalMSE"):
        x, lo, hi = _as_samples(x, _name, _func)
        n = x.size
        self.n = n
        self.min, self.max = lo, hi
        self.absmax = max(-lo, hi)
        # Scale-equivariance from 1e-300 to 1e300: float64 samples whose magnitude is far from 1
        # are multiplied by a power of two (exact: every quotient x/scale, hence every code, is
        # unchanged), so squares and double-double sums neither overflow nor underflow. Clips are
        # converted on the way in, MSEs (times the unit squared) on the way out.
        self._unit = 1.0
        if x.dtype == np.float64 and self.absmax > 0.0 and not 2.0**-100 <= self.absmax <= 2.0**100:
            k = min(math.frexp(self.absmax)[1], 1023)  # (2^1024 is not a float64: 2^1023 there)
            self._unit = math.ldexp(1.0, k)
            x = np.ldexp(x, -k)
            lo, hi = float(x.min()), float(x.max())
        is32 = x.dtype == np.float32
        self._lo, self._hi = lo, hi
        self._amax = max(-lo, hi)
        # buckets: 2^mb per octave of |x| over the top _OCTAVES octaves below max|x|, one centre
        # bucket for smaller magnitudes
        top = self._amax if self._amax > 0 else 1.0
        ef = max(math.frexp(top)[1] - _OCTAVES + 1, -125 if is32 else -1021)
        if buckets is None:
            target = min(max(n // 2, 64), 2**14 if n < 1 << 20 else _LARGE_BUCKETS)
        else:
            target = check_int(buckets, "buckets", _func, 3, 2**24)
        mb = min(max(0, int(math.floor(math.log2(max(target / (2 * _OCTAVES), 1.0))))), 16)
        nside = _OCTAVES * (1 << mb)
        nb = 2 * nside + 1
        self._x, self._is32 = x, bool(is32)
        self._xbits = x.view(np.int32 if is32 else np.int64)
        self._geo = (ef, mb, nside)
        k = _kernels()
        nthreads, chunk = _threads(n)
        stats = np.zeros((nb, 8))
        if is32:
            # exact integer bucket sums; 16 bytes a bucket while no bucket can reach 2^min(25, 15+mb)
            packed = n < 1 << min(25, 15 + mb)
            tbl = np.zeros((nthreads, nb, 2 if packed else 4), dtype=np.int64)
            ctr = np.zeros((nthreads, 8))
            ctr[:, 5] = np.inf
            ctr[:, 6] = -np.inf
            if nthreads == 1 and packed:
                k.accumulate32p(self._xbits, ef, mb, nside, tbl[0], ctr[0])
            else:
                with _schedule(nthreads):
                    (k.accumulate32p_par if packed else k.accumulate32_par)(self._xbits, ef, mb, nside, tbl, ctr,
                                                                            chunk)
            (k.merge32p if packed else k.merge32)(tbl, ctr, ef, mb, nside, stats)
        else:
            st = np.zeros((nthreads, nb, 8))
            st[:, :, 5] = np.inf
            st[:, :, 6] = -np.inf
            if nthreads == 1:
                k.accumulate(x, self._xbits, False, ef, mb, nside, st[0])
            else:
                with _schedule(nthreads):
                    k.accumulate64_par(x, self._xbits, ef, mb, nside, st, chunk)
            k.merge64(st, stats)
        cnt = np.empty(nb + 1, dtype=np.int64)
        pref = [np.empty(nb + 1) for _ in range(4)]
        k.prefix(stats, cnt, *pref)
        self._cnt, self._pref = cnt, pref
        self._bmin = np.ascontiguousarray(stats[:, 5])
        self._bmax = np.ascontiguousarray(stats[:, 6])
        self._have = np.zeros(nb, dtype=bool)
        self._missing = np.zeros(nb, dtype=bool)  # (kernel output; all False between calls)
        self._gstart = np.zeros(nb + 1, dtype=np.int64)
        self._xs = np.empty(0)
        self._g = [np.zeros(1) for _ in range(4)]
        self._abs_sum = None  # Σ|x| (unit scale), for midrise steps far above the samples
        if n <= 1 << 16 or check_bool(presort, "presort", _func):  # gather everything at once
            self._gather(np.ones(nb, dtype=bool))
        s1 = pref[0][-1] + pref[1][-1]
        s2 = pref[2][-1] + pref[3][-1]
        u = self._unit
        mean = float(s1) / n
        m2 = float(s2) / n
        var = max(m2 - mean * mean, 0.0)
        if var <= 1e-8 * m2 and lo < hi:  # (cancellation: the centred sum instead)
            var = float(np.var(x, dtype=np.float64))
        if lo == hi:
            var = 0.0
        self._var = var
        self.mean = mean * u
        self.var = var * u * u  # (inf beyond the float64 range)
        self.std = math.sqrt(var) * u

    def __repr__(self):
        return f"EmpiricalMSE(n={self.n})"

    # ------------------------------------------------------------------------------------ kernels
    def _gather(self, want):
        """Gather the samples of the buckets ``want | already gathered`` (one O(N) pass)."""
        want = want | self._have
        counts = np.diff(self._cnt) * want
        gstart = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        m = int(gstart[-1])
        g = [np.empty(m + 1) for _ in range(4)]
        k = _kernels()
        nthreads, chunk = _threads(self.n)
        hn = np.zeros(nthreads, dtype=np.int64)
        # the wanted samples, then sorted by numpy (buckets are in value order, so each bucket's
        # run is sorted and in place); float32 as their bits
        dense = m > self.n >> 3  # (branch-free above about one sample in 8: see gather32)
        hk = np.empty((nthreads, m + 1), dtype=np.int32 if self._is32 else np.float64)
        ef, mb, nside = self._geo
        if nthreads == 1:
            if self._is32:
                hn[0] = k.gather32(self._xbits, ef + 126, mb, nside, want, hk[0], 0, dense)
            else:
                hn[0] = k.gather(self._x, self._xbits, ef, mb, nside, want, hk[0], 0, dense)
            v = hk[0, :m]
        else:
            with _schedule(nthreads):
                if self._is32:
                    k.gather32_par(self._xbits, ef, mb, nside, want, chunk, hk, hn, dense)
                else:
                    k.gather_par(self._x, self._xbits, ef, mb, nside, want, chunk, hk, hn, dense)
            v = np.concatenate([hk[t, :hn[t]] for t in range(nthreads)])
        if self._is32:
            v = v.view(np.float32)
            v.sort()
            xs = v.astype(np.float64)
        else:  # (already float64 and contiguous: sorted in place, no copy)
            v.sort()
            xs = v
        if m < 1 << 18:
            k.gathered_prefix(xs, *g)
        else:
            with _schedule(nthreads):
                k.gathered_prefix_par(xs, *g)
        self._have, self._gstart, self._xs, self._g = want, gstart, xs, g

    def _windows_mask(self, windows):
        """Buckets that straddle a cut for some step of any window ``(s_lo, s_hi, offset, qmin,
        qmax)`` (see :func:`~qtheory.kernels.empirical.mark_window`)."""
        k = _kernels()
        want = np.zeros(self._have.size, dtype=bool)
        for s_lo, s_hi, off, qmin, qmax in windows:
            k.mark_window(want, self._bmin, self._bmax, self._cnt, *self._geo, s_lo, s_hi, off, qmin, qmax)
        return want

    def _gather_windows(self, windows):
        """Gather, in one pass, the buckets of :meth:`_windows_mask` not gathered yet."""
        want = self._windows_mask(windows)
        if (want & ~self._have).any():
            self._gather(want)

    def _sweep_window(self, w_lo, w_hi, off, qmin, qmax, mode):
        """``(v0, steps, error sums)``: the exact error at ``w_lo`` and the 16 best vertices of the
        window ``[w_lo, w_hi]`` (:func:`~qtheory.kernels.empirical.sweep_window`). Outside the
        buckets a cut passes through in the window no sample changes level, so sweeping those
        buckets' (gathered) samples visits every piece of the window."""
        b0 = self._eval(np.array([w_lo]), off, [qmin], [qmax], mode)[0]
        v0 = (b0[0] + b0[2]) + (b0[1] + b0[3])
        k = _kernels()
        xw = k.marked_samples(self._windows_mask([(w_lo, w_hi, off, qmin, qmax)]), self._gstart, self._xs)
        ss, vv = k.sweep_window(xw, w_lo, w_hi, off, qmin, qmax, mode, 16, b0[5], b0[4], v0, w_lo)
        return v0, ss, vv

    def _args(self):
        return (self._cnt, *self._pref, self._bmin, self._bmax, self._have, self._gstart, self._xs, *self._g, *self._geo)

    def _eval(self, scales, offset, qmins, qmaxs, mode, exact=True):
        """Six sums per quantizer (see the kernel); gathers missing buckets and retries if needed."""
        k = _kernels()
        scales = np.ascontiguousarray(scales, dtype=np.float64)
        qmins = np.ascontiguousarray(qmins, dtype=np.int64)
        qmaxs = np.ascontiguousarray(qmaxs, dtype=np.int64)
        buf = np.empty((scales.size, 6))
        if not exact and scales.size >= 64 and self.n >= 1 << 18:  # a long approximate scan: in parallel
            k.evaluate_approx_par(*self._args(), scales, float(offset), qmins, qmaxs, int(mode), buf)
            return buf
        for _ in range(3):
            missing = self._missing
            # (exact: 1 for float32 samples, whose bucket sums are exact; 2 for float64, whose
            # cancelling runs are summed sample by sample, see the kernel's _flush)
            nmiss = k.evaluate(*self._args(), scales, float(offset), qmins, qmaxs, int(mode),
                               int(exact) * (1 if self._is32 else 2), buf, missing)
            if nmiss == 0:
                return buf
            # also take the neighbours: a nearby clip will likely need them (saves O(N) passes)
            self._missing = np.zeros(self._have.size, dtype=bool)
            near = missing.copy()
            near[1:] |= missing[:-1]
            near[:-1] |= missing[1:]
            self._gather(near)
        raise RuntimeError("EmpiricalMSE: buckets still missing after gathering")  # pragma: no cover

    # ------------------------------------------------------------------------------------ sums
    def error_sums(self, quantizers) -> np.ndarray:
        """``(len(quantizers), 2)`` array of ``(clipping, rounding)`` error *sums* (not means)."""
        qs = [quantizers] if isinstance(quantizers, Quantizer) else list(quantizers)
        out = np.empty((len(qs), 2))
        far = np.array([self._far(q) for q in qs], dtype=bool)
        if not far.all():
            near = np.flatnonzero(~far)
            out[near] = self._from_unit2(self._error_sums_unit([qs[i] for i in near]))
        if far.any():
            out[far, 0] = 0.0
            out[far, 1] = self._far_midrise(np.array([q.scale for q, f in zip(qs, far, strict=True) if f]))
        return out

    def _far(self, q):
        """Whether ``q`` is a midrise grid of step at least ``_MIDRISE_FAR·max|x|``."""
        return q.codebook is None and q.offset == 0.5 and q.scale >= _MIDRISE_FAR * self.absmax

    def _far_midrise(self, scales):
        """Rounding error sums (the samples' units; ``inf`` beyond the float64 range) of midrise
        grids whose steps are at least ``_MIDRISE_FAR·max|x|`` (see :meth:`_far_midrise_unit`)."""
        out = np.empty(len(scales))
        with np.errstate(over="ignore"):
            for i, sc in enumerate(scales):
                m, e = self._far_midrise_unit(float(sc))
                out[i] = float(np.ldexp(m, 2 * e)) * self.n
        return out

    def _far_midrise_unit(self, scale):
        """``(MSE / 4^e, e)`` of a midrise grid of step ``s = scale >= _MIDRISE_FAR·max|x|``: every
        sample lies in the innermost cell and errs ``s/2 − |x|``, so the MSE is
        ``h² − 2h·mean|x| + mean x²`` (``h = s/2``), each term to double rounding (the least value,
        ``(h − max|x|)²``, is nearly ``h²``), computed at the scale ``2^e`` of the step (at the
        samples' unit scale its square overflows)."""
        if self._abs_sum is None:  # Σ|x| at the samples' unit scale (one pass, once)
            self._abs_sum = float(np.sum(np.abs(self._x), dtype=np.float64))
        k = math.frexp(self._unit)[1] - 1  # (unit = 2^k)
        e = math.frexp(scale)[1]
        h = math.ldexp(scale, -e) * 0.5
        m1 = math.ldexp(self._abs_sum / self.n, k - e)
        m2 = math.ldexp(float(self._pref[2][-1] + self._pref[3][-1]) / self.n, 2 * (k - e))
        return h * (h - 2.0 * m1) + m2, e

    def _error_sums_unit(self, quantizers) -> np.ndarray:
        """:meth:`error_sums` at the samples' unit scale (divided by the unit squared)."""
        qs = [quantizers] if isinstance(quantizers, Quantizer) else list(quantizers)
        out = np.empty((len(qs), 2))
        groups = {}
        for i, q in enumerate(qs):
            groups.setdefault((q.offset, q.rounding), []).append(i)
        for (off, rnd), idx in groups.items():
            buf = self._eval(self._to_unit(np.array([qs[i].scale for i in idx])), off, [qs[i].qmin for i in idx],
                             [qs[i].qmax for i in idx], ROUNDING_CODES[rnd])
            out[idx, 0] = buf[:, 0] + buf[:, 1]
            out[idx, 1] = buf[:, 2] + buf[:, 3]
        # each sum is a difference of moments (Σx² − 2qΣx + q²n per bucket): where the true error is
        # 0 or ~ulp², rounding can leave it a few ulp below 0; an error sum is never negative
        return np.maximum(out, 0.0)

    def _from_unit2(self, v):
        """Error sums or MSEs back in the samples' units (times the unit squared; beyond the
        float64 range: inf, or 0, never NaN)."""
        if self._unit == 1.0:
            return v
        with np.errstate(over="ignore", under="ignore"):
            return np.asarray(v, dtype=np.float64) * self._unit * self._unit

    def _to_unit(self, v):
        """Steps or clips in the units of the (power-of-two normalised) samples; beyond 2^±1000 of
        the samples' magnitude (clamped there) every sample is clipped, or every one rounds to the
        level nearest 0, either way."""
        v = np.asarray(v, dtype=np.float64)
        if self._unit != 1.0:
            v = v / self._unit
        return np.clip(v, 2.0**-1000, 2.0**1000)

    def mse_quantizer(self, quantizer: Quantizer) -> tuple[float, float]:
        """``(clipping, rounding)`` mean squared errors of one :class:`Quantizer`."""
        s = self.error_sums([quantizer])[0]
        return float(s[0] / self.n), float(s[1] / self.n)

    def mse(self, alpha, bits: int, *, grid: str = DEFAULT_TENSOR_GRID, rounding: str = "half_even", beta=None):
        """Exact empirical MSE at clip(s) ``alpha`` as a :class:`qtheory.MSEResult`."""
        from .mse import _check_alphas, _check_betas, _result

        func = "EmpiricalMSE.mse"
        grid = check_option(grid, "grid", func, GRIDS)
        bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
        rounding = check_option(rounding, "rounding", func, ROUNDINGS)
        alphas, scalar = _check_alphas(alpha, func)
        betas = _check_betas(beta, grid, alphas, func)
        qs = [Quantizer(bits, float(a), grid, rounding, None if b is None else float(b))
              for a, b in zip(alphas, betas, strict=True)]
        s = self.error_sums(qs) / self.n
        return _result(s[:, 0], s[:, 1], "exact", scalar)

    def curve(self, alphas, bits: int, grid: str = DEFAULT_TENSOR_GRID, rounding: str = "half_even", *,
              exact: bool = True) -> np.ndarray:
        """Total MSE at many clips (a vectorised path for scale grids; no validation of ``alphas``).

        ``exact=False`` treats the samples of each bucket that straddles a threshold as spread
        evenly between the bucket's min and max: an approximation used by the global scan (second
        order in the bucket width), which needs no samples.
        """
        func = "EmpiricalMSE.curve"
        grid = check_option(grid, "grid", func, GRIDS)
        bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
        rounding = check_option(rounding, "rounding", func, ROUNDINGS)
        alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
        if grid == "affine":  # (the symmetric range [-alpha, alpha]; see mse(..., beta=) for others)
            from .mse import _check_alphas

            _check_alphas(alphas, func)
            return self.error_sums([Quantizer(bits, float(a), grid, rounding) for a in alphas]).sum(axis=1) / self.n
        if grid == "midrise":  # (steps far above the samples: in closed form, see _far_midrise)
            far = alphas / 2.0 ** (bits - 1) >= _MIDRISE_FAR * self.absmax
            if far.any():
                out = np.empty(alphas.size)
                out[far] = self._far_midrise(alphas[far] / 2.0 ** (bits - 1)) / self.n
                if not far.all():
                    out[~far] = self._from_unit2(self._curve(self._to_unit(alphas[~far]), bits, grid, rounding, exact))
                return out
        return self._from_unit2(self._curve(self._to_unit(alphas), bits, grid, rounding, exact))

    def _curve(self, alphas, bits, grid, rounding, exact=True):
        """:meth:`curve` in the units of the normalised samples (no validation)."""
        d, off, qmin, qmax = _denominator(grid, bits)
        m = alphas.size
        buf = self._eval(alphas / d, off, np.full(m, qmin), np.full(m, qmax), ROUNDING_CODES[rounding], exact)
        return self._mse_of(buf)

    def _mse_of(self, buf):
        """Unit-scale MSEs from :meth:`_eval`'s sums (hi + lo pairs of the clipping and rounding
        errors), never below 0 (see :meth:`error_sums`)."""
        return np.maximum((buf[:, 0] + buf[:, 2]) + (buf[:, 1] + buf[:, 3]), 0.0) / self.n

    def _polish(self, alpha, d, off, qmin, qmax, mode, max_iter=100, box=(0.0, np.inf)):
        """Exact polish from ``alpha``: assign, move to the vertex ``g(α) = D·Σc·x/Σc²`` of that
        assignment, repeat while the exact error decreases. Returns ``(alpha, total error sum)``.

        On a dense tensor the fixed-point map ``g`` contracts slowly (``g(α) − α`` shrinks by a
        few percent per step), so a secant step on ``g(α) − α`` (at most 64 plain steps long) is
        tried first (inside ``box``, the clips whose samples are gathered) and kept only if it lowers
        the exact error; the polish ends with plain steps, at a vertex (``g(α) = α``), where no
        step lowers the error or where a step would leave ``box``."""
        def at(a):
            b = self._eval(np.array([a / d]), off, [qmin], [qmax], mode)[0]
            return (b[0] + b[2]) + (b[1] + b[3]), b

        best_f, buf = at(alpha)
        best_a = alpha
        prev = None
        for _ in range(max_iter):
            if not buf[5] > 0:
                break
            g = float(buf[4] / buf[5] * d)
            h = g - best_a
            if not g > 0 or h == 0.0 or not box[0] <= g <= box[1]:  # (a step out of the box: stop)
                break
            trial = g
            if prev is not None and (prev[1] - h) * h > 0.0:  # |h| shrinks: extrapolate to h = 0
                trial = best_a - h * (best_a - prev[0]) / (h - prev[1])
                lim = best_a + 64.0 * h
                if (trial - lim) * h > 0.0:
                    trial = lim
                trial = min(max(trial, box[0]), box[1])
                if not (trial - g) * h > 0.0 or not trial > 0.0:  # (a step never lands on α <= 0)
                    trial = g
            f, nbuf = at(trial)
            if trial != g and not f <= best_f:  # the extrapolation overshot: take the plain step
                trial = g
                f, nbuf = at(g)
            if f <= best_f:
                done = f == best_f
                prev = (best_a, h)
                best_a, best_f, buf = trial, f, nbuf
                if done:
                    break
            else:
                break
        # the vertex itself: ulp-neighbours of it differ in error by far less than the error's
        # rounding, so which one the comparisons kept is chance; the vertex of the piece (Σc·x in
        # double-double: the same whatever the buckets and gathered samples) is the canonical answer
        if buf[5] > 0:
            g = float(buf[4] / buf[5] * d)
            if g != best_a and g > 0 and box[0] <= g <= box[1]:
                f, nbuf = at(g)
                if nbuf[4] == buf[4] and nbuf[5] == buf[5]:  # (the same piece)
                    best_a, best_f = g, f
        return best_a, best_f

    # ------------------------------------------------------------------------------------ search
    def _groups(self, grid):
        """``(a, n, q)`` per group of samples (each sample when all are gathered, else each
        bucket), ``a`` an upper bound of the group's magnitude as the lower bound of
        :meth:`_clip_bound` sees it, ``n`` its count, ``q`` its ``Σx²``. For the unsigned grids a
        group of negative samples (always clipped to 0, error ``x²`` at every clip) has ``a = 0``."""
        unsigned = grid in ("unsigned", "uint")
        if self._have.all():
            x = self._xs
            a = np.where(x < 0, 0.0, x) if unsigned else np.abs(x)
            return a, np.ones(x.size), x * x
        cnt = np.diff(self._cnt).astype(np.float64)
        nz = cnt > 0
        q = (np.diff(self._pref[2]) + np.diff(self._pref[3]))[nz]
        bmin, bmax = self._bmin[nz], self._bmax[nz]
        a = np.where(bmax < 0, 0.0, bmax) if unsigned else np.maximum(np.abs(bmin), np.abs(bmax))
        return a, cnt[nz], q

    def _clip_bound(self, grid, d, target):
        """A clip ``α_B`` beyond which no clip has an error sum below ``target``.

        Proof. Let ``s = α/D`` be the step and ``θ = (1 − 10^-9)/2``. A sample with ``|x| < θs``
        (``0 <= x < θs``, or any ``x < 0``, on the unsigned grids) is mapped, by every
        round-to-nearest rule, to the level nearest 0: to 0 on the grids with a zero level (error
        ``x²``), to ``±s/2`` on ``midrise`` (error ``(s/2 − |x|)² >= (θs − |x|)²``). Every other
        sample has an error >= 0. So the error sum at ``s`` is at least
        ``LB(s) = Σ_{|x|<θs} x²`` (zero-level grids) or ``Σ_{|x|<θs} (θs − |x|)²`` (midrise),
        and both are non-decreasing in ``s`` (terms only join, and each grows). With ``LB(s_B) >=
        target``, no ``s >= s_B`` beats ``target``. ``LB`` over buckets uses a bound of each
        bucket's magnitude (still a lower bound). On a zero-level grid every sample rounds to 0 once
        ``s > 2·max|x|/(1−10^-9)``, where the error is the constant ``Σx²``; that is the bound if
        ``LB`` never reaches ``target``.
        """
        theta = 0.5 * (1.0 - 1e-9)
        a, n, q = self._groups(grid)
        o = np.argsort(a, kind="stable")
        a, n, q = a[o], n[o], q[o]
        cn = np.concatenate([[0.0], np.cumsum(n)])
        ca = np.concatenate([[0.0], np.cumsum(n * a)])
        ca2 = np.concatenate([[0.0], np.cumsum(n * a * a)])
        cq = np.concatenate([[0.0], np.cumsum(q)])
        target = max(target, 0.0) * (1.0 + 1e-9) + 1e-300  # (an exact error can round below 0)
        amax = float(a[-1])
        if grid == "midrise":
            def lb(s):
                t = theta * s
                m = int(np.searchsorted(a, t, side="left"))
                return t * t * cn[m] - 2.0 * t * ca[m] + ca2[m]

            hi = 2.0 * (amax + math.sqrt(target / cn[-1])) / theta
        else:
            def lb(s):
                return cq[int(np.searchsorted(a, theta * s, side="left"))]

            hi = 2.0 * amax / theta * (1.0 + 1e-9)
            if lb(hi) < target:
                return hi * d
        lo = 0.0
        for _ in range(200):  # bisection of a non-decreasing function
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:
                break
            if lb(mid) >= target:
                hi = mid
            else:
                lo = mid
        return hi * d

    def _pair_clip(self, d, target, lo, hi):
        """A clip in ``(lo, hi]`` beyond which no clip has an error sum below ``target`` (``hi``:
        the one already known): the pair bound ``PB(s)``, a lower bound of the error sum at every
        step ``>= s`` on any uniform grid (fact 4 of :mod:`qtheory.kernels.empirical`), bisected
        geometrically between the steps ``lo/d`` and ``hi/d``; each step where it exceeds
        ``target`` (less its rounding) ends the range. First from the buckets (pairs of buckets,
        each pair's distance known within the buckets' widths: no pass over the samples); then, if
        that leaves more than half of ``lo`` above it and there are at most ``_PAIR_GATHER``
        samples, from every sample (gathered: one pass and a sort)."""
        if not 0.0 < lo < hi < np.inf:
            return hi
        k = _kernels()
        target = max(target, 0.0) * (1.0 + 1e-9) + 1e-300
        shrink = 1.0 - 4.0 * (self.n + 8) * 2.0**-52

        def bisect(pb, b):
            a = lo / d
            for _ in range(7):
                mid = math.sqrt(a * b)
                if not a < mid < b:
                    break
                if pb(mid) * shrink > target:
                    b = mid
                else:
                    a = mid
            return b

        b = hi / d
        if not self._have.all():
            b = bisect(lambda s: k.pair_bound_buckets(self._cnt, self._bmin, self._bmax, s), b)
            if b * d > _PAIR_GATHER_RATIO * lo and self.n <= _PAIR_GATHER:
                self._gather(np.ones(self._have.size, dtype=bool))
        if self._have.all():
            b = bisect(lambda s: k.pair_bound(self._xs, s, 0, self._xs.size), b)
        return min(b * d, hi)

    def _low_bound(self, grid, d, target, lo):
        """A clip ``α_L <= lo`` below which no clip has an error sum below ``target``, or ``None``.

        For ``α <= α_L`` every sample with ``|x| > α_L`` is beyond the outermost level (which is
        at most ``α`` in magnitude), so its error is at least ``(|x| − α_L)²``: the error sum is at
        least ``Σ_{|x|>α_L} (|x| − α_L)²`` (over buckets: with each bucket's smallest magnitude).
        """
        cnt = np.diff(self._cnt).astype(np.float64)
        nz = cnt > 0
        bmin, bmax, cnt = self._bmin[nz], self._bmax[nz], cnt[nz]
        amin = np.where((bmin <= 0) & (bmax >= 0), 0.0, np.minimum(np.abs(bmin), np.abs(bmax)))
        if grid in ("unsigned", "uint"):
            amin = np.where(bmin < 0, 0.0, amin)
        target = max(target, 0.0) * (1.0 + 1e-9) + 1e-300  # (an exact error can round below 0)
        for _ in range(80):
            if float(np.sum(cnt * np.maximum(amin - lo, 0.0) ** 2)) >= target:
                return lo
            lo *= 0.5
        return None

    def _sweep_global(self, d, off, qmin, qmax, mode, alpha_b):
        """Exact global minimum over all clips (every sample gathered): sweep every threshold
        crossing from a step below which the assignment no longer changes up to ``alpha_b``."""
        x = self._xs
        ax = np.abs(x[x != 0])
        ltop = max(abs(qmin + off), abs(qmax + off))
        # below s0 every non-zero sample sits on its outermost level (|x|/s > L + 1) and zeros on
        # theirs: one assignment, one quadratic piece, all the way down to s = 0
        # (at least the least subnormal: below it there is no step, and 0 would divide by zero)
        s0 = max(float(ax.min()) / (ltop + 1.0) * 0.5, 5e-324)
        ss, _ = _kernels().sweep(x, s0, max(alpha_b / d, 2.0 * s0), off, qmin, qmax, mode, 16, 0.0)
        cands = []
        for v in ss[np.isfinite(ss)]:
            if v > 0.0:
                a, tot = self._polish(float(v) * d, d, off, qmin, qmax, mode)
                cands.append((tot, a))
        return cands

    def _prove(self, f_best, items, d, mode, grid, split, gather_after=None, bounder=None):
        """Branch and bound against the error sum ``f_best`` already reached: returns the exact
        minima ``(error sum, clip, key)`` of every part of ``items`` that could not be excluded.

        An item ``(s_a, s_b, key)`` is a range of steps of the grids ``key`` stands for;
        ``grid(key)`` gives ``(offset, qmin, qmax)`` of one grid whose levels include those of
        every grid of ``key`` at each step (so every sample's distance to it bounds its error under
        any of them from below). ``split(s_a, s_b, key, crossings)`` returns the items that replace
        an item that was not excluded, or ``None`` to sweep it (then ``key`` is one grid). Once
        ``gather_after`` intervals are bounded, every sample is gathered (tighter bounds after).

        An item whose lower bound (:func:`~qtheory.kernels.empirical.interval_bound`: every
        sample's error at any step of the interval is at least its distance to the levels that
        interval can place; buckets that keep one level contribute their exact quadratic) exceeds
        ``f_best`` by more than its rounding holds no clip that beats it. (``bounder``, if given,
        replaces that test: ``bounder(items, f_best)`` returns, for each item,
        ``(excluded, info)``, ``info`` passed to ``split`` instead of the crossings, and an error sum
        it reached (exactly evaluated; it replaces ``f_best`` if lower); ``split`` may then also
        return ``(children, leaves)``.) Others are
        split until an
        exact sweep is cheap; then the buckets they need are gathered (one pass), their bound is
        taken again with every straddling sample, and what still survives is swept piece by piece
        (:func:`~qtheory.kernels.empirical.sweep_window`: every vertex). Every clip of the items
        that could beat ``f_best`` is in a swept piece: the least vertex found (or ``f_best``) is
        the global minimum over them.
        """
        k = _kernels()

        def bounds(ivs):  # ivs: (sa, sb, key); one kernel call (much work, in buckets walked: in parallel)
            if not ivs:
                return []
            iv = np.array([(sa, sb) for sa, sb, _ in ivs], dtype=np.float64)
            g = np.array([grid(key) for _, _, key in ivs], dtype=np.float64)
            res = np.empty((iv.shape[0], 3))
            args = (*self._args(), np.ascontiguousarray(iv[:, 0]), np.ascontiguousarray(iv[:, 1]),
                    np.ascontiguousarray(g[:, 0]), g[:, 1].astype(np.int64), g[:, 2].astype(np.int64), mode, res)
            if len(ivs) < 8 or len(ivs) * self._cnt.size < 1 << 17:
                k.interval_bounds(*args)
            else:
                with _schedule(2):
                    k.interval_bounds_par(*args)
            return [(r[0] - r[1] > f_best, r[2]) for r in res]

        todo = list(items)
        leaves = []
        done = 0
        while todo:
            if gather_after is not None and done >= gather_after and not self._have.all():
                self._gather(np.ones(self._have.size, dtype=bool))
            done += len(todo)
            nxt = []
            if bounder is None:
                res = bounds(todo)
            else:
                res, f_new = bounder(todo, f_best)
                f_best = min(f_best, f_new)
            for (sa, sb, key), (gone, events) in zip(todo, res, strict=True):
                if gone:
                    continue
                parts = split(sa, sb, key, events)
                if parts is None:
                    leaves.append((sa, sb, key))
                elif isinstance(parts, tuple):
                    nxt += parts[0]
                    leaves += parts[1]
                else:
                    nxt += parts
            todo = nxt
        if not leaves:
            return []
        # gather what the surviving intervals straddle (one pass), bound them again with every sample
        self._gather_windows([(sa, sb, *grid(key)) for sa, sb, key in leaves])
        leaves = sorted((key, sa, sb) for (sa, sb, key), b in zip(leaves, bounds(leaves), strict=True)
                        if not b[0])  # (again, every sample)
        wins = []  # adjacent leaves of one grid: one window
        for key, sa, sb in leaves:
            if wins and key == wins[-1][0] and sa <= wins[-1][2]:
                wins[-1][2] = max(wins[-1][2], sb)
            else:
                wins.append([key, sa, sb])
        # each window's best vertices by the sweep's running error, pooled over the windows; the
        # best of the pool evaluated exactly (one call per offset) and the best two polished
        pool = []
        for key, w_lo, w_hi in wins:
            v0, ss, vv = self._sweep_window(w_lo, w_hi, *grid(key), mode)
            pool.append((float(v0), w_lo, key, w_lo, w_hi))
            pool += [(float(v), float(sv), key, w_lo, w_hi) for sv, v in zip(ss, vv, strict=True) if np.isfinite(v)]
        pool.sort(key=lambda r: r[:2])
        pool = pool[:32]
        ev = np.empty(len(pool))
        grids = [grid(r[2]) for r in pool]
        for off in set(g[0] for g in grids):
            idx = [i for i, g in enumerate(grids) if g[0] == off]
            ev[idx] = self._mse_of(self._eval(np.array([pool[i][1] for i in idx]), off,
                                              np.array([grids[i][1] for i in idx]), np.array([grids[i][2] for i in idx]),
                                              mode)) * self.n
        cands = []
        for j in np.argsort(ev, kind="stable")[:2]:
            _, sv, key, w_lo, w_hi = pool[j]
            off, qmin, qmax = grids[j]
            a, tot = self._polish(sv * d, d, off, qmin, qmax, mode, box=(w_lo * d, w_hi * d))
            cands.append((float(tot), float(a), key))
        return cands

    def _search_large(self, lo, hi, bits, grid, rounding, d, off, qmin, qmax, mode, n_grid, n_refine, small,
                      f_ref=np.inf):
        """Scan ``[lo, hi]`` (bucket-approximate for a large tensor), refine and polish exactly;
        returns ``(candidates, scan points)`` as ``(error sum, clip)`` pairs. Basins whose scan
        value exceeds ``f_ref`` (an error sum already reached) by ``_BASIN_TOL`` are skipped."""
        grid_a = np.geomspace(lo, hi, n_grid)
        vals = self._curve(grid_a, bits, grid, rounding, exact=small)
        # local minima of the scan (plateaus count once), best first
        left = np.r_[np.inf, vals[:-1]]
        right = np.r_[vals[1:], np.inf]
        idx = np.flatnonzero((vals <= left) & (vals < right) | (vals < left) & (vals <= right))
        idx = idx[np.argsort(vals[idx], kind="stable")][:n_refine]
        idx = idx[vals[idx] * self.n <= f_ref * (1.0 + _BASIN_TOL)]
        if idx.size == 0:
            return [], []
        k = _kernels()
        starts = [float(k.golden(*self._args(), float(grid_a[max(i - 1, 0)]), float(grid_a[min(i + 1, n_grid - 1)]),
                                 d, off, qmin, qmax, mode, 1e-10)) for i in idx]
        # The valley floor is finely rippled (samples cross thresholds): around each basin, an exact
        # scan at a relative spacing of 1e-4 (±1.5% of the clip for a fully gathered tensor, whose
        # ripples are coarse; narrower for a large one, whose bucket-approximate search is already
        # accurate), then the exact polish from the best points of that scan.
        # (large: at 10^7 samples the bucket-approximate optimum is within ~2e-4 relative at 8
        # bits, 1e-4 at 4; the valley floor's ripples, and the distance, grow like 1/sqrt(N))
        lw = _LARGE_WIDTH * max(1.0, 2.0 ** ((bits - 4) / 2)) * max(1.0, math.sqrt(1e7 / self.n))
        lw = min(lw, 2e-3)
        width, m = (1.5e-2, 301) if small else (lw, 2 * int(round(lw / 1e-4)) + 1)
        if not small:
            # basins whose approximate error is clearly worse than the best cannot hold the optimum
            keep = vals[idx] <= vals[idx[0]] * (1.0 + _BASIN_TOL)
            idx = idx[keep]
            starts = [a for a, kp in zip(starts, keep, strict=True) if kp]
            # every exact evaluation below stays in these windows: gather their straddling buckets
            # in one pass (the polish gathers more only if it leaves them)
            self._gather_windows([(a0 * (1.0 - 2.0 * width) / d, a0 * (1.0 + 2.0 * width) / d, off, qmin, qmax)
                                  for a0 in starts])
        local = np.concatenate([a * (1.0 + np.linspace(-width, width, m)) for a in starts])
        lv = self._curve(local, bits, grid, rounding) * self.n  # (gathers what it needs, once)
        cands, others = [], []
        for j, (i, a0) in enumerate(zip(idx, starts, strict=True)):
            seg = slice(j * m, (j + 1) * m)
            seeds = list(dict.fromkeys([a0] + [float(v) for v in local[seg][np.argsort(lv[seg])[:3]]]))
            box = (a0 * (1.0 - 2.0 * width), a0 * (1.0 + 2.0 * width)) if not small else (0.0, np.inf)
            for a_start in seeds:
                alpha, tot = self._polish(a_start, d, off, qmin, qmax, mode, box=box)
                cands.append((tot, float(alpha)))
            jbest = int(np.argmin(lv[seg]))
            others.append((float(lv[seg][jbest]), float(local[seg][jbest])))
            if small:  # (for a large tensor the scan value is approximate: not a candidate)
                others.append((vals[i] * self.n, float(grid_a[i])))
        return cands, others

    def optimal_clip(self, bits: int, *, grid: str = DEFAULT_TENSOR_GRID, rounding: str = "half_even", n_grid: int = 1024,
                     n_refine: int = 4):
        """Global MSE-optimal clip of a scale grid (see :func:`empirical_optimal_clip`)."""
        from .optimal import ClipResult

        func = "EmpiricalMSE.optimal_clip"
        grid = check_option(grid, "grid", func, _SCALE_GRIDS)
        bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
        rounding = check_option(rounding, "rounding", func, ROUNDINGS)
        n_grid = check_int(n_grid, "n_grid", func, 16, 1_000_000)
        n_refine = check_int(n_refine, "n_refine", func, 1, 1000)
        signed = grid in ("midrise", "int", "narrow")
        u = self._unit

        def u2(v):  # (Python floats: overflow gives inf, no warning)
            return float(v) * u * u
        top = self._amax if signed else self._hi
        if top <= 0.0:
            # No sample a clip can reach: all zero (or, unsigned, none positive). The MSE is the
            # same for every clip (zeros are exact on a zero-level grid; negative samples clip to
            # 0 on the unsigned ones) or, on midrise, (α/2^b)² -> 0 as α -> 0. By definition the
            # clip is then 0.0 (the range of the data, as max-calibration gives) with that MSE.
            p2 = float(self._pref[2][-1] + self._pref[3][-1]) / self.n
            s2 = u2(p2)
            return ClipResult(0.0, s2, s2, 0.0, 0.0, bits, grid, "exact", np.array([0.0]), signal_power=s2,
                              _sqnr_db=unit_db(p2, p2))
        d, off, qmin, qmax = _denominator(grid, bits)
        mode = ROUNDING_CODES[rounding]
        cands = self._clip_candidates(bits, grid, rounding, n_grid, n_refine)
        alpha = cands[0][1]
        self._check_representable(alpha * u, func=func)
        b = self._eval(np.array([alpha / d]), off, [qmin], [qmax], mode)[0]
        clip, rnd = max(float(b[0] + b[1]), 0.0) / self.n, max(float(b[2] + b[3]), 0.0) / self.n  # (error_sums)
        with np.errstate(over="ignore"):  # (clips beyond the float64 range are no clips)
            minima = np.unique(np.array([a for _, a in cands])) * u
        minima = minima[np.isfinite(minima)]
        scale = math.sqrt(self._var) if self._var > 0 else self._amax
        p2 = float(self._pref[2][-1] + self._pref[3][-1]) / self.n  # E[X²] at the unit scale
        return ClipResult(alpha * u, u2(clip + rnd), u2(clip), u2(rnd), alpha / scale, bits, grid, "exact",
                          minima, signal_power=u2(p2), _sqnr_db=unit_db(p2, clip + rnd))

    def optimal_range(self, bits: int) -> tuple[float, float]:
        """The proven MSE-optimal asymmetric range ``(beta, alpha)`` of the affine grid.

        The same optimum as ``qtheory.optimal_clip(x, bits, range="asymmetric")`` (its ``beta``
        and ``alpha``), from this preparation: levels ``(k − z)·s``, ``k = 0 .. 2^bits − 1``, over
        every integer zero point ``z`` and step ``s`` jointly (see ``_affine_optimum`` for what is
        proven). Equal errors at the chosen step: the smallest zero point. Where several steps
        give exactly the same least error sum, any of them may be returned: all are optimal. This
        happens for samples that all lie on one grid (e.g. small integers: error 0) and, rarely,
        at few bits (e.g. ``z = 1`` at a step ``s`` and ``z = 2`` at ``s/2`` for heavy tails at
        2 bits); which one comes back may then depend on the size of the data (the search path).

        Parameters
        ----------
        bits : int
            Bit-width of the affine grid.

        Returns
        -------
        (beta, alpha) : tuple of float
            ``beta = −z·s <= 0`` and ``alpha = (2^bits − 1 − z)·s > 0``.

        Raises
        ------
        ValueError
            If no sample is positive (mirror the samples, as :class:`qtheory.models.Observer`
            does, for an all-non-positive tensor).

        Examples
        --------
        >>> import numpy as np
        >>> import qtheory
        >>> x = np.random.default_rng(0).gamma(2.0, size=5000) - 1.0
        >>> beta, alpha = EmpiricalMSE(x).optimal_range(4)
        >>> r = qtheory.optimal_clip(x, 4, range="asymmetric")
        >>> (beta, alpha) == (r.beta, r.alpha)
        True
        """
        func = "EmpiricalMSE.optimal_range"
        bits = check_int(bits, "bits", func, MIN_BITS["affine"], MAX_BITS)
        if self._hi <= 0.0:
            raise param_error("x", func, "samples with a positive value", f"max {self.max!r}")
        _, s_u, z = self._affine_optimum(bits)
        return self._affine_range(bits, s_u, z)

    def _affine_range(self, bits, s_u, z):
        """``(beta, alpha)`` in the samples' units of the affine grid with the unit-scale step
        ``s_u`` and zero point ``z``."""
        with np.errstate(over="ignore"):
            step = s_u * self._unit
            beta, alpha = -z * step + 0.0, (2**bits - 1 - z) * step
        self._check_representable(alpha, beta, func="optimal_range")
        return beta, alpha

    def _check_representable(self, *clips, func):
        """A clear error where the optimum found lies beyond the float64 range (samples within a
        few steps of its largest value)."""
        if not all(math.isfinite(c) for c in clips):
            raise param_error("x", func, "samples whose optimal range fits in float64 (divide them by a "
                              "power of two)", f"values up to {self.absmax!r}, whose optimum lies beyond 1.8e308")

    def _clip_candidates(self, bits, grid, rounding, n_grid, n_refine):
        """The exact local minima ``(error sum, clip)`` found for a scale grid, sorted (the first
        is the proven global optimum; equal errors: the smallest clip). The samples reach a clip:
        some is positive (unsigned grids) or non-zero."""
        d, off, qmin, qmax = _denominator(grid, bits)
        mode = ROUNDING_CODES[rounding]
        top = self._amax if grid in ("midrise", "int", "narrow") else self._hi

        def exact_sum(a):
            b = self._eval(np.array([a / d]), off, [qmin], [qmax], mode)[0]
            return (b[0] + b[2]) + (b[1] + b[3])

        # every grid's outermost level is at least (1 - 2^(1-b))·α: by top·(1 + 2^(2-b)) a level
        # can sit on every sample and nothing is clipped
        hi = top * (1.0 + 2.0 ** (2 - bits))
        lo = top * 2.0 ** -(bits + 12)
        small = self.n <= 1 << 16
        if small and self.n * (qmax - qmin) <= _SWEEP_LIMIT:
            # exact global minimum: sweep every threshold crossing of (0, α_B], α_B from the
            # max-calibration clip's error (no clip beyond α_B can beat it; see _clip_bound)
            alpha_b = max(hi, self._clip_bound(grid, d, exact_sum(top)))
            cands = self._sweep_global(d, off, qmin, qmax, mode, alpha_b)
            # (the ends: max-calibration, and α_B, where a zero-level grid may reach its constant
            # all-to-zero error; candidates, but reported as local minima only if they win)
            ends = sorted((exact_sum(a), a) for a in (top, alpha_b))
            if not cands or ends[0] < min(cands):
                cands.append(ends[0])
        else:
            cands, others = self._search_large(lo, hi, bits, grid, rounding, d, off, qmin, qmax, mode, n_grid,
                                               n_refine, small)
            cands.sort()
            f_best = min(cands[0][0], others[0][0] if small else np.inf)
            # the range is provably wide enough: below α_L and above α_B no clip beats f_best
            alpha_b = self._clip_bound(grid, d, f_best)
            if qmax - qmin >= _PAIR_LEVELS:
                alpha_b = self._pair_clip(d, f_best, cands[0][1], alpha_b)
            if alpha_b > hi:
                c2, o2 = self._search_large(hi, alpha_b, bits, grid, rounding, d, off, qmin, qmax, mode,
                                            max(16, n_grid // 4), n_refine, small, f_best)
                cands, others = cands + c2, others + o2
            alpha_l = self._low_bound(grid, d, f_best, lo)
            if alpha_l is None or alpha_l < lo:
                low = alpha_l if alpha_l is not None else lo * 2.0**-60
                c2, o2 = self._search_large(low, lo, bits, grid, rounding, d, off, qmin, qmax, mode,
                                            max(16, n_grid // 4), n_refine, small, f_best)
                cands, others = cands + c2, others + o2
            cands.sort()
            others.sort()
            if others[0][0] < cands[0][0] * (1 - 1e-13):  # (a scan point beat every polished vertex)
                cands.insert(0, others[0])
            # the proof: every part of [α_L, α_B] that could beat the best clip found is swept
            s_floor = (alpha_l if alpha_l is not None else lo * 2.0**-60) / d
            edges = np.geomspace(s_floor, max(alpha_b, hi) / d, 17)
            leaf = float(_PROOF_LEAF)

            def halve(sa, sb, key, events):  # (few crossings left: swept)
                if events <= leaf or sb <= sa * (1.0 + 1e-12):
                    return None
                m = math.sqrt(sa * sb)
                return [(sa, m, key), (m, sb, key)]

            items = [(float(a), float(b), 0) for a, b in zip(edges[:-1], edges[1:], strict=True)]
            cands += [c[:2] for c in self._prove(cands[0][0], items, d, mode, lambda key: (off, qmin, qmax), halve)]
        cands.sort()  # (equal errors: the smallest clip)
        return cands


    # ------------------------------------------------------------------------------ affine range
    def _affine_optimum(self, bits: int, n_grid: int | None = None) -> tuple[float, float, int]:
        """The MSE-optimal asymmetric range of the affine grid, over (zero point, step) jointly.

        The levels are ``(k − z)·s``, ``k = 0 .. top = 2^b − 1``, with an integer zero point
        ``z`` in ``0 .. z_max`` (``z_max = top − 1`` if some sample is negative, else 0) and a step
        ``s > 0`` (at the samples' unit scale). Returns ``(error sum, s, z)``: a vertex of the exact
        piecewise-quadratic empirical error (polished by :meth:`_polish`); equal errors at that
        step: the smallest zero point (several steps with exactly the least error sum, e.g. data
        on a grid: any of them, possibly a different one per path). The caller guarantees a
        positive sample.

        What is proven (every rule below holds for every round-to-nearest rule: the error of a
        sample is its squared distance to the nearest level, ``dist(x, L_{z,s})²``):

        - *Zero points.* ``L_{z−1,s} ⊇ L_{z,s} \\ {−z·s}``. If no sample is nearer to the bottom
          level than to the next one (``min x >= (1/2 − z)·s``) no distance grows from ``z`` to
          ``z − 1``: ``f(z − 1, s) <= f(z, s)``. Likewise ``f(z + 1, s) <= f(z, s)`` if
          ``max x <= (top − z − 1/2)·s``. So at each step the minimum over ``z`` is attained in
          ``[min(z_a, z_b), z_b]`` (``z_b`` the largest zero point whose bottom level some sample
          is nearest to, ``z_a`` the smallest whose top level is), searched with a margin of one.
        - *Steps.* Every grid has the level 0, so a sample with ``|x| < s/2`` costs ``x²``:
          beyond the ``s_B`` of :meth:`_clip_bound` (``int`` grid rule, ``D = 1``) no step beats
          the best exact error found; and every level lies in ``[−top·s, top·s]``, so below
          ``α_L / top`` (:meth:`_low_bound`) none does either. The scanned range is widened to
          both bounds.
        - *One zero point* (no negative sample): the grid is the unsigned one (``α = top·s``),
          whose proven optimum :meth:`_clip_candidates` gives.
        - *Few samples* (``n·top <= 2^20``, ``_AFFINE_DIRECT``): with ``z`` fixed the levels are
          those of the scale grid ``qmin = −z``, ``qmax = top − z``, whose proven optimum over the
          step the per-channel kernel gives (:func:`~qtheory.kernels.empirical.affine_zero_points`:
          the samples sorted once; every zero point searched, from max-calibration's outwards,
          only for steps ``s < C_z`` (above, ``z − 1`` does as well) that can beat the best error
          so far, most ruled out from prefix sums alone). The least over the zero points is the
          exact global optimum, with no scan.
        - *Windows.* Where no cut passes through a bucket while ``s`` runs over a window, its
          samples keep their levels; sweeping the crossings of the other (gathered) samples
          (:func:`~qtheory.kernels.empirical.sweep_window`) visits every piece of the window: the
          exact minimum over the window.

        Otherwise the basins are found, inside the proven ranges, as in the symmetric search of
        large tensors (see the module docstring): a 2-D scan of the bucket-approximate error over
        (32 steps, every useful zero point; at most 32 per step, evenly spread), from its best local
        minima a descent over ``z`` of the approximate error minimised over ``s`` (golden
        section); then, for the best zero points (approximate error within 10^-4 of the best; at
        most 6, 3 above 8 bits), one gathering pass for the buckets that straddle a cut in a window
        around each approximate optimum (as wide as about 2·10^4 crossings allow, up to ±5 %), the
        exact minimum over each window (sweep) and the exact polish. That best error ``f`` then
        bounds, per zero point, the steps that can still win: ``[s_L, s_B]`` for ``f``, and ``z``
        in ``[min(z_a, z_b), z_b]``, i.e. (with ``min x < 0``) ``s < C_z = −min x/(z − 1/2)``
        (``z >= 1``) and either ``s < A_z = max x/(top − z − 1/2)`` or ``s >= −min x/(z + 1/2)``.
        For up to 2^16 samples these are swept exactly while that costs at most
        ``_AFFINE_EVENTS`` crossings (:meth:`_affine_sweeps`). Otherwise they go through the
        branch and bound of :meth:`_prove` over steps, each interval with a range of zero points:
        one walk bounds every zero point of the range at once
        (:func:`~qtheory.kernels.empirical.zero_point_bounds`: the levels shared by the range,
        plus each zero point's clipped tails as exact quadratics), and only the zero points that
        may still win stay with the halves. When many intervals survive (the search's error far
        above the optimum) the least bounds' steps are evaluated exactly, which lowers the error
        pruned against. Either way the result is the exact global optimum over (z, s).
        """
        top = 2**bits - 1
        lo, hi = self._lo, self._hi
        z_max = top - 1 if lo < 0 else 0
        if z_max == 0:  # one zero point: the levels k·s of the unsigned grid (α = top·s), proven there
            tot, alpha = self._clip_candidates(bits, "unsigned", "half_even", 1024, 4)[0]
            return tot, alpha / top, 0
        if self.n * top <= _AFFINE_DIRECT:
            xs = self._xs if self._have.all() else np.sort(self._x)  # (n <= 2^16: sorted at the preparation)
            out = np.empty(3)
            z0 = min(max(int(round(top * -lo / (hi - lo))), 0), z_max)  # (max calibration's)
            _kernels().affine_zero_points(xs, top, 0, z_max, z0, 0, not self._is32, out)
            return float(out[1]), float(out[0]), int(out[2])
        small = self.n <= 1 << 16
        k = _kernels()

        def z_range(s):
            zb = max(math.ceil(0.5 - lo / s) - 1, 0) if lo < 0 else 0
            za = max(math.floor(top - 0.5 - hi / s) + 1, 0)
            return max(min(za, zb) - 1, 0), min(zb + 1, z_max)

        def approx(ss, zz):  # bucket-approximate error sums (no samples needed; many: in parallel)
            zz = np.ascontiguousarray(zz, dtype=np.int64)
            ss = np.ascontiguousarray(ss, dtype=np.float64)
            if ss.size < 64:
                return self._mse_of(self._eval(ss, 0.0, -zz, top - zz, 0, exact=False)) * self.n
            buf = np.empty((ss.size, 6))
            k.evaluate_approx_par(*self._args(), ss, 0.0, -zz, top - zz, 0, buf)
            return self._mse_of(buf) * self.n

        # (above 8 bits an evaluation walks 2^b cuts: fewer scan points, zero points per step, and
        # golden-section digits)
        n_s = 32 if n_grid is None else n_grid
        z_cap, rtol, rtol_descent, n_basins = (32, 1e-10, 1e-10, 4) if bits <= 8 else (9, 1e-7, 1e-3, 2)
        span = (hi - min(lo, 0.0)) / top
        ratio = 1.0

        def basins(s_a, s_b, m, f_ref):
            """Scan ``[s_a, s_b]``, return the refined basins ``(approx. error sum, s, z)``."""
            nonlocal ratio
            grid_s = np.geomspace(s_a, s_b, m)
            ratio = float(grid_s[1] / grid_s[0])
            rows = []
            for s in grid_s:
                a, b = z_range(s)
                zs = np.arange(a, b + 1) if b - a < z_cap else np.unique(np.round(np.linspace(a, b, z_cap)).astype(np.int64))
                rows.append(zs)
            ii = np.repeat(np.arange(m), [r.size for r in rows])
            zz = np.concatenate(rows)
            v = approx(grid_s[ii], zz)
            cell = {(int(z), int(i)): float(x) for z, i, x in zip(zz, ii, v, strict=True)}
            pos = {}  # neighbours in z within a row
            for i, zs in enumerate(rows):
                for j, z in enumerate(zs):
                    pos[(int(z), i)] = (int(zs[j - 1]) if j > 0 else None, int(zs[j + 1]) if j + 1 < zs.size else None)
            order = np.argsort(v, kind="stable")
            found = []
            best = float(v[order[0]])
            limit = min(best, f_ref) * (1.0 + _BASIN_TOL)
            inf = math.inf
            for o in order:
                x = float(v[o])
                if x > limit or len(found) == n_basins:
                    break
                z, i = int(zz[o]), int(ii[o])
                zl, zr = pos[(z, i)]
                if x <= cell.get((z, i - 1), inf) and x <= cell.get((z, i + 1), inf) and (
                        zl is None or x <= cell[(zl, i)]) and (zr is None or x <= cell[(zr, i)]):
                    st = max(z - zl if zl is not None else 1, zr - z if zr is not None else 1)
                    found.append((z, float(grid_s[i]), st))
            out = {}
            for z0, s0, st in found:
                for r in _descend(z0, s0, st):
                    out[(r[2])] = min(out.get(r[2], r), r)
            return list(out.values())

        def profile(z, s0, tol):
            """min over s near s0 of the approximate error at zero point z (golden section)."""
            loc = s0 * ratio ** np.arange(-3.0, 4.0)
            v = approx(loc, np.full(loc.size, z))
            j = int(np.argmin(v))
            a, b = loc[max(j - 1, 0)], loc[min(j + 1, loc.size - 1)]
            s = float(k.golden(*self._args(), float(a), float(b), 1.0, 0.0, -z, top - z, 0, tol))
            vs = float(approx([s], [z])[0])
            return (vs, s, z) if vs <= v[j] else (float(v[j]), float(loc[j]), z)

        def _descend(z0, s0, st):
            """Coarse-to-fine search over z (stride ``st`` halved) of the profile error."""
            seen = {}

            def p(z, s):
                if z not in seen:
                    seen[z] = profile(z, s, rtol_descent)
                return seen[z]

            cur = p(z0, s0)
            while True:
                moved = False
                for z2 in (cur[2] - st, cur[2] + st):
                    if 0 <= z2 <= z_max and p(z2, cur[1])[0] < cur[0]:
                        cur, moved = seen[z2], True
                        break
                if not moved:
                    if st == 1:
                        break
                    st = max(1, st // 2)
                elif bits > 8 and len(seen) > 64:  # (a long walk over a flat profile: enough)
                    break
            for z2 in (cur[2] - 1, cur[2] + 1):  # (both neighbours: candidates for the exact stage)
                if 0 <= z2 <= z_max:
                    p(z2, cur[1])
            if rtol_descent != rtol:  # (the best three to full precision)
                for r in sorted(seen.values())[:3]:
                    seen[r[2]] = min(r, profile(r[2], r[1], rtol))
            return list(seen.values())

        def exact_stage(found):
            """Exact minimum over each basin's window: every crossing in it is swept."""
            found = sorted(found)
            found = [r for r in found if r[0] <= found[0][0] * (1.0 + 1e-4)][:6 if bits <= 8 else 3]
            lw = _LARGE_WIDTH * max(1.0, 2.0 ** ((bits - 4) / 2)) * max(1.0, math.sqrt(1e7 / self.n))
            # A window's sweep costs about Σ|x|·4·width/s crossings: each window is as wide as
            # _AFFINE_WINDOW_EVENTS crossings allow (up to ±5 %), at least the symmetric search's
            # width, and at most _AFFINE_EVENTS crossings. (Only a good start for the proof, which
            # covers every step: a narrower window costs less than it saves.)
            s_min = min(r[1] for r in found)
            wide = min(5e-2, _AFFINE_WINDOW_EVENTS * s_min / (4.0 * abs_sum))
            width = min(max(1.5e-2 if small else min(lw, 2e-3), wide), _AFFINE_EVENTS * s_min / (4.0 * abs_sum))
            wins = [(s0 * (1.0 - 2.0 * width), s0 * (1.0 + 2.0 * width), z) for _, s0, z in found]
            if not small:  # the windows' straddling buckets, in one gathering pass
                self._gather_windows([(w_lo, w_hi, 0.0, -z, top - z) for w_lo, w_hi, z in wins])
            cands = []
            for w_lo, w_hi, z in wins:
                _, ss, _ = self._sweep_window(w_lo, w_hi, 0.0, -z, top - z, 0)
                ss = np.r_[w_lo, ss[np.isfinite(ss)]]
                zz = np.full(ss.size, z, dtype=np.int64)
                ev = self._mse_of(self._eval(ss, 0.0, -zz, top - zz, 0)) * self.n
                for j in np.argsort(ev, kind="stable")[:2]:
                    s, tot = self._polish(float(ss[j]), 1.0, 0.0, -z, top - z, 0, box=(w_lo, w_hi))
                    cands.append((float(tot), float(s), z))
            return cands

        abs_sum = float(np.abs(np.diff(self._pref[0]) + np.diff(self._pref[1])).sum())  # Σ|x| (bucket sums)
        s_lo, s_hi = span / 64.0, span * 1.05  # (widened below to the proven range)
        cands = exact_stage(basins(s_lo, s_hi, n_s, math.inf))
        f_best = min(cands)[0]
        # the proven range (see above): scan what it adds, keep basins that may beat f_best
        s_b = self._clip_bound("int", 1.0, f_best)
        alpha_l = self._low_bound("int", 1.0, f_best, top * s_lo)
        extra = []
        if s_b > s_hi:
            extra += basins(s_hi, s_b, max(16, n_s // 4), f_best)
        if alpha_l is None or alpha_l < top * s_lo:
            low = alpha_l / top if alpha_l is not None else s_lo * 2.0**-60
            extra += basins(low, s_lo, max(16, n_s // 4), f_best)
        extra = [r for r in extra if r[0] <= f_best * (1.0 + _BASIN_TOL)]
        if extra:
            cands += exact_stage(extra)
        if small:
            swept = self._affine_sweeps(top, z_max, min(cands)[0])
            if swept is not None:  # (every crossing that can win was swept: the global optimum)
                return self._least_zero_point(top, min(cands + swept))
        # The proof: every zero point's steps that can win go through the branch and bound. They
        # lie in [s_L, s_B] (see above), and z must be in [min(z_a, z_b), z_b]: with lo < 0,
        # z <= z_b(s) iff s < C_z = -lo/(z - 1/2) (z >= 1), z >= z_a(s) iff
        # s < A_z = hi/(top - z - 1/2), and z = z_b(s) iff B_z = -lo/(z + 1/2) <= s < C_z. An item
        # holds a range of zero points [z1, z2]: the grid with the levels of all of them,
        # (k - z2)·s .. (top - z1)·s, bounds each from below. (Limits widened by 1e-9 for rounding.)
        f_best = min(cands)[0]
        s_b = self._clip_bound("int", 1.0, f_best)
        alpha_l = self._low_bound("int", 1.0, f_best, top * s_lo)
        s_floor = alpha_l / top if alpha_l is not None else s_lo * 2.0**-60
        leaf = float(_AFFINE_PROOF_LEAF)

        def s_max(z1):  # (C_z decreases with z: the largest step any of z1.. can win at)
            return min(s_b, self._zero_point_limits(top, z1, z1)[0])

        def admissible(sa, sb, z1, z2):  # (A_z increases, B_z decreases with z)
            c, a, b = self._zero_point_limits(top, z1, z2)
            return sa < min(s_b, c) and (sa < a or sb >= b)

        def item(sa, sb, z1, z2):
            sb = min(sb, s_max(z1))
            return [(sa, sb, (z1, z2))] if sb > sa and admissible(sa, sb, z1, z2) else []

        zs_all = np.arange(z_max + 1)
        c_all, a_all, b_all = self._zero_point_limits(top, zs_all, zs_all)

        def bounder(ivs, f_cur):
            """Per item, every zero point's bound from one walk (zero_point_bounds): the zero points
            that may still win (bound within f_cur, steps admissible) and their crossings. When many
            items survive (f_cur far above the optimum), the exact error at the least bounds' steps
            lowers f_cur."""
            sas = np.array([it[0] for it in ivs])
            sbs = np.array([it[1] for it in ivs])
            z1s = np.array([it[2][0] for it in ivs], dtype=np.int64)
            z2s = np.array([it[2][1] for it in ivs], dtype=np.int64)
            offs = np.r_[0, np.cumsum(z2s - z1s + 1)]
            out = np.empty((int(offs[-1]), 4))
            args = (*self._args(), sas, sbs, z1s, z2s, top, 0, offs, out)
            if len(ivs) < 4:
                k.zero_point_bounds_many(*args)
            else:
                with _schedule(2):
                    k.zero_point_bounds_par(*args)
            # every item's zero points at once: bound within f_best, steps admissible
            zz = np.concatenate([zs_all[z1:z2 + 1] for z1, z2 in zip(z1s, z2s, strict=True)])
            sa_z = np.repeat(sas, z2s - z1s + 1)
            sb_z = np.repeat(sbs, z2s - z1s + 1)
            ok = (sa_z < np.minimum(s_b, c_all[zz])) & ((sa_z < a_all[zz]) | (sb_z >= b_all[zz]))
            keep = ok & (out[:, 0] - out[:, 1] <= f_cur)
            f_new = np.inf
            if len(ivs) >= _AFFINE_INCUMBENT_ITEMS and (self.n <= _AFFINE_GATHER_ALL or len(ivs) >= 64 * _AFFINE_INCUMBENT_ITEMS):
                if not self._have.all() and self.n <= _AFFINE_GATHER_ALL:  # (one pass, not one per level)
                    self._gather(np.ones(self._have.size, dtype=bool))
                best = np.flatnonzero(keep)
                best = best[np.argsort(out[best, 0], kind="stable")[:4]]
                if best.size:
                    z_b = zz[best]
                    f_new = float(np.min(self._mse_of(self._eval(out[best, 3], 0.0, -z_b, top - z_b, 0)) * self.n))
                    keep &= out[:, 0] - out[:, 1] <= f_new
            res = []
            for i in range(len(ivs)):
                kp = keep[offs[i]:offs[i + 1]]
                res.append((not kp.any(), (zz[offs[i]:offs[i + 1]][kp], out[offs[i]:offs[i + 1], 2][kp])))
            return res, f_new

        def split(sa, sb, key, info):
            zs, events = info
            if events.max() <= leaf or sb <= sa * (1.0 + 1e-12):  # (fine: each zero point swept)
                return None if key[0] == key[1] else ([], [(sa, sb, (int(z), int(z))) for z in zs])
            m = math.sqrt(sa * sb)
            # (runs of consecutive surviving zero points: one item each)
            cuts = np.flatnonzero(np.diff(zs) > 1) + 1
            parts = []
            for run in np.split(zs, cuts):
                z1, z2 = int(run[0]), int(run[-1])
                parts += item(sa, m, z1, z2) + item(m, sb, z1, z2)
            return parts

        edges = np.geomspace(s_floor, s_max(0), 17)
        items = [it for a, b in zip(edges[:-1], edges[1:], strict=True) for it in item(float(a), float(b), 0, z_max)]
        found = self._prove(f_best, items, 1.0, 0, lambda key: (0.0, -key[1], top - key[0]), split,
                            gather_after=_AFFINE_GATHER_AFTER if self.n <= _AFFINE_GATHER_ALL else None,
                            bounder=bounder)
        cands += [(tot, s, key[0]) for tot, s, key in found]
        return self._least_zero_point(top, min(cands))

    def _least_zero_point(self, top, best):
        """``best = (error sum, s, z)`` with the smallest zero point whose error at the step ``s``
        is as small (where no sample reaches the levels a shift changes, neighbouring zero points
        tie exactly)."""
        tot, s, z = best
        # (a smaller zero point can only tie if no sample is nearest to the bottom level -z·s)
        if z == 0 or self._lo < -(z - 0.5) * s * (1.0 - 1e-9):
            return best
        z0 = max(int(math.floor(-self._lo / s - 0.5)) - 1, 0)  # (below it the bottom level is reached)
        zz = np.arange(z0, z + 1)
        v = self._mse_of(self._eval(np.full(zz.size, s), 0.0, -zz, top - zz, 0)) * self.n
        j = int(zz[np.flatnonzero(v <= v[-1])[0]])
        return (tot, s, j) if j < z else best

    def _zero_point_limits(self, top, z1, z2):
        """``(C, A, B)`` for the zero points ``z1 <= z <= z2`` (see :meth:`_affine_optimum`): each
        of them can win only at steps ``s < C`` with ``s < A`` or ``s >= B`` (``C = C_{z1}``,
        ``A = A_{z2}``, ``B = B_{z2}``, widened by 10^-9 for rounding; no limit without negative
        samples)."""
        lo = self._lo
        if lo >= 0.0:
            return np.inf, np.inf, 0.0
        if np.ndim(z1) == 0:
            c = -lo / (z1 - 0.5) * (1.0 + 1e-9) if z1 >= 1 else np.inf
            return c, self._hi / (top - z2 - 0.5) * (1.0 + 1e-9), -lo / (z2 + 0.5) * (1.0 - 1e-9)
        z1, z2 = np.asarray(z1, dtype=np.float64), np.asarray(z2, dtype=np.float64)  # (arrays: elementwise)
        c = np.where(z1 >= 1, -lo / np.maximum(z1 - 0.5, 0.5) * (1.0 + 1e-9), np.inf)
        return c, self._hi / (top - z2 - 0.5) * (1.0 + 1e-9), -lo / (z2 + 0.5) * (1.0 - 1e-9)

    def _affine_sweeps(self, top, z_max, f_best):
        """Few samples, every one gathered: for every zero point ``z``, sweep every crossing of the
        steps it can win at (see :meth:`_affine_optimum`), unless that exceeds ``_AFFINE_EVENTS``
        crossings in all. Returns candidates ``(error sum, s, z)`` (none if over the budget).

        The steps: ``s <= s_B`` (:meth:`_clip_bound` for ``f_best``); ``s >= s_L``, the largest
        step with ``Σ_{|x| > top·s} (|x| − top·s)² >= f_best`` (every level lies in
        ``[−top·s, top·s]``), or down to 0 (the first piece's vertex) if no such step exists; and,
        for ``z >= 1``, ``s <= −min x / (z − 1/2)``, beyond which ``z`` exceeds ``z_b`` and a
        smaller zero point is at least as good. ``None`` if over the budget.
        """
        k = _kernels()
        x = self._xs
        target = max(f_best, 0.0) * (1.0 + 1e-9) + 1e-300
        s_b = self._clip_bound("int", 1.0, f_best)
        a = np.sort(np.abs(x))
        tail = np.cumsum(a[::-1])[::-1]  # Σ_{i >= j} a_i
        tail2 = np.cumsum((a * a)[::-1])[::-1]

        def lb(s):  # Σ_{|x| > top·s} (|x| − top·s)²
            t = top * s
            j = int(np.searchsorted(a, t, side="right"))
            if j == a.size:
                return 0.0
            return float(tail2[j] - 2.0 * t * tail[j] + t * t * (a.size - j))

        nz = a[a > 0]
        s_first = float(nz[0]) / (top + 1.0) * 0.5  # below it: one piece (every sample on its outermost level)
        w_lo, floor = s_first, 0.0
        if lb(s_first) >= target:  # bisection for the largest such step
            s_l, s_h = s_first, s_b
            for _ in range(200):
                m = 0.5 * (s_l + s_h)
                if not s_l < m < s_h:
                    break
                if lb(m) >= target:
                    s_l = m
                else:
                    s_h = m
            w_lo = floor = s_l
        # each zero point's admissible steps (see _affine_optimum): [w_lo, min(A_z, C_z, s_B)) and
        # [B_z, min(C_z, s_B)), merged where they meet
        parts = []  # (z, lower step, upper step, floor)
        for z in range(z_max + 1):
            c_z, a_z, b_z = self._zero_point_limits(top, z, z)
            c_z = min(s_b, c_z)
            spans = [(w_lo, c_z)] if b_z <= min(a_z, c_z) else [(w_lo, min(a_z, c_z)), (max(b_z, w_lo), c_z)]
            parts += [(z, p0, p1, floor if p0 == w_lo else p0) for p0, p1 in spans if p1 > p0]
        if not parts:
            return []
        # crossings of a sample |x| over [p0, p1]: at most |x|·(1/p0 − 1/p1) + 1 and top
        lo_s = np.array([p[1] for p in parts])
        hi_s = np.array([p[2] for p in parts])
        per_z = np.minimum(float(tail[0]) * (1.0 / lo_s - 1.0 / hi_s) + a.size, float(a.size) * top)
        if per_z.sum() > _AFFINE_EVENTS:
            return None
        zs = np.array([p[0] for p in parts], dtype=np.int64)
        b0 = self._eval(lo_s, 0.0, -zs, top - zs, 0)
        found = []
        for i, (z, p0, p1, fl) in enumerate(parts):
            v0 = (b0[i, 0] + b0[i, 2]) + (b0[i, 1] + b0[i, 3])
            ss, vv = k.sweep_window(x, p0, p1, 0.0, -z, top - z, 0, 4, b0[i, 5], b0[i, 4], v0, fl)
            found += [(float(v), float(s), z) for s, v in zip(ss, vv, strict=True) if np.isfinite(v) and s > 0]
        found.sort()
        ss = np.array([r[1] for r in found[:64]])
        zz = np.array([r[2] for r in found[:64]], dtype=np.int64)
        ev = self._mse_of(self._eval(ss, 0.0, -zz, top - zz, 0)) * self.n
        cands = []
        for j in np.argsort(ev, kind="stable")[:3]:
            z = int(zz[j])
            s, tot = self._polish(float(ss[j]), 1.0, 0.0, -z, top - z, 0)
            cands.append((float(tot), float(s), z))
        return cands

# ================================================================================ public functions
def empirical_mse(x, alpha, bits: int, *, grid: str = DEFAULT_TENSOR_GRID, rounding: str = "half_even", beta=None):
    """Exact empirical clipping MSE of the samples ``x`` (any shape) at clip(s) ``alpha``.

    Equals ``mean((Quantizer(bits, alpha, grid).quantize(x) - x)**2)`` to float64 rounding,
    split into clipping and rounding parts.

    Parameters
    ----------
    x : array_like
        Finite samples.
    alpha : float or array_like
        Clip(s) > 0.
    bits : int
    grid, rounding : str
        See :class:`qtheory.Quantizer`; ``grid`` defaults to :data:`qtheory.DEFAULT_TENSOR_GRID`
        (``"narrow"``, the symmetric int grid of integer runtimes).
    beta : float or array_like, optional
        Lower clip for ``grid="affine"``.

    Returns
    -------
    qtheory.MSEResult

    Examples
    --------
    >>> import numpy as np
    >>> r = empirical_mse([-1.0, 0.2, 0.3, 2.0], 1.0, 2, grid="midrise")   # levels ±0.25, ±0.75; overload ±1
    >>> r.mse, r.clipping                                  # only 2.0 is beyond [-1, 1)
    (0.4075, 0.390625)
    """
    return EmpiricalMSE(x, _func="empirical_mse").mse(alpha, bits, grid=grid, rounding=rounding, beta=beta)


def empirical_optimal_clip(x, bits: int, *, grid: str = DEFAULT_TENSOR_GRID, rounding: str = "half_even",
                           n_grid: int = 1024):
    """The global MSE-optimal clip of a tensor over every clip α > 0, by exact empirical MSE.

    Proof of the range: let ``s = α/D`` be the step and ``θ = (1 − 10^-9)/2``. Every
    round-to-nearest rule maps a sample with ``|x| < θs`` to the level nearest 0, so its error is
    ``x²`` (grids with a zero level) or at least ``(θs − |x|)²`` (midrise), and no error is
    negative: the error sum at ``s`` is at least ``LB(s) = Σ_{|x|<θs} x²`` (or
    ``Σ_{|x|<θs} (θs − |x|)²``), which never decreases as ``s`` grows. So once ``LB`` reaches the
    error of any evaluated clip (the max-calibration clip ``α = max|x|``), no larger clip can beat
    it; on a zero-level grid every sample rounds to 0 once ``s > 2·max|x|/(1 − 10^-9)``, where the
    error is constant. Below ``s_0 = min_{x≠0}|x| / (2(L + 1))`` (``L`` the outermost level in
    steps) every sample stays on one level: one quadratic piece, whose vertex is taken, down to 0.
    Between, the empirical MSE is piecewise quadratic with at most ``N·levels`` pieces.

    For ``N <= 2^16`` and ``N·levels <= 10^6`` every piece is visited (a sweep over every
    threshold crossing, then the exact polish): the true global minimum; among clips of equal MSE
    the smallest. Otherwise a logarithmic scan of ``n_grid`` clips over the proven range,
    golden-section refinement of the best basins, an exact scan of each basin's floor and the exact
    polish give a clip; then a branch and bound over the whole range drops every interval of clips
    whose lower bound exceeds its MSE and sweeps every piece of what is left (see the module
    docstring): the result is again the global minimum. The returned clip is a vertex of the
    piecewise-quadratic empirical MSE, and its MSE is exact. Samples that no clip reaches (all
    zero; unsigned: none positive) get the clip ``0.0``, with the MSE every clip gives (midrise:
    its limit 0).

    Parameters
    ----------
    x : array_like
        Finite samples (any shape; flattened).
    bits : int
    grid : {"narrow", "int", "midrise", "unsigned", "uint"}
        Default :data:`qtheory.DEFAULT_TENSOR_GRID` (``"narrow"``, the symmetric int grid of integer
        runtimes).
    rounding : str
    n_grid : int
        Points of the global scan.

    Returns
    -------
    qtheory.ClipResult
        ``ratio`` is ``alpha / std(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).laplace(size=100_000)
    >>> r = empirical_optimal_clip(x, 4)
    >>> 4.0 < r.alpha < 6.0
    True
    >>> from qtheory.empirical import empirical_mse
    >>> all(empirical_mse(x, r.alpha * f, 4).mse >= r.mse for f in (0.999, 1.001))
    True
    """
    return EmpiricalMSE(x, _func="empirical_optimal_clip").optimal_clip(bits, grid=grid, rounding=rounding,
                                                                        n_grid=n_grid)


@dataclass(frozen=True)
class PerChannelClips:
    """Per-channel optimal clips of a tensor.

    Attributes
    ----------
    alpha : ndarray
        Optimal clip of each channel.
    mse : ndarray
        Exact empirical MSE of each channel at its clip.
    axis : int
        The channel axis (non-negative).
    bits : int
    grid : str
    clipping, rounding : ndarray
        The two parts of ``mse``.
    """

    alpha: np.ndarray
    mse: np.ndarray
    axis: int
    bits: int
    grid: str
    clipping: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    rounding: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def to_frame(self):
        """A pandas DataFrame with one row per channel."""
        import pandas as pd

        return pd.DataFrame({"channel": np.arange(self.alpha.size), "alpha": self.alpha, "mse": self.mse,
                             "clipping": self.clipping, "rounding": self.rounding})


def _sorted_rows(chans):
    """``np.sort(chans, axis=1)``; a large array in blocks of rows sorted in numba's thread count of
    Python threads (numpy's sort releases the GIL; the result is the same)."""
    nthreads = _threads(chans.size)[0]
    if nthreads == 1 or chans.shape[0] < 2 * nthreads:
        return np.sort(chans, axis=1)
    from concurrent.futures import ThreadPoolExecutor

    out = np.empty_like(chans)
    cuts = np.linspace(0, chans.shape[0], nthreads + 1).astype(int)

    def part(i):
        block = slice(cuts[i], cuts[i + 1])
        out[block] = chans[block]
        out[block].sort(axis=1)

    with ThreadPoolExecutor(nthreads) as pool:
        list(pool.map(part, range(nthreads)))
    return out


def per_channel_optimal_clip(x, bits: int, axis: int = 0, grid: str = DEFAULT_TENSOR_GRID, *, rounding: str = "half_even",
                             n_grid: int = 1024) -> PerChannelClips:
    """Exact empirical optimal clip of every channel of a weight tensor.

    Every channel is solved in one numba pass over all channels (in parallel for a large job):
    the channel is sorted, an upper bound is taken at a guess, the proven range of
    :func:`empirical_optimal_clip` is computed from prefix sums, and a branch and bound over the
    step drops every interval whose lower bound (the squared distance of each sample to the levels
    any step of the interval can place; see ``_pc_channel`` in ``qtheory/kernels/empirical.py``)
    exceeds an error already reached; what survives is swept piece by piece. The result is the
    provably global optimum over every clip (the same as ``EmpiricalMSE(channel).optimal_clip``
    to rounding wherever that is proven, i.e. the breakpoint sweep), with its MSE computed
    directly with the reference quantizer's operations. Channels of 2^19 values or more (a
    per-channel activation range) are instead solved one after another by
    ``EmpiricalMSE(channel).optimal_clip``, whose bucketed proof runs in parallel inside a channel (the
    same optimum; 2–10× faster there). float32 input is read as is. A channel no
    clip reaches (all zero; unsigned: none positive) has the clip ``0.0`` (never NaN) and the MSE
    every clip gives.

    Parameters
    ----------
    x : array_like
        Tensor of finite values with at least 1 dimension.
    bits : int
    axis : int
        The channel axis (negative counts from the end); every slice along it is one channel.
    grid : {"narrow", "int", "midrise", "unsigned", "uint"}
        Default :data:`qtheory.DEFAULT_TENSOR_GRID` (``"narrow"``, the symmetric int grid of integer
        runtimes).
    rounding : str
    n_grid : int
        Unused (kept for compatibility: no channel takes a scan any more).

    Returns
    -------
    PerChannelClips

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).normal(size=(3, 500)) * np.array([[1.0], [2.0], [4.0]])
    >>> r = per_channel_optimal_clip(w, 4, axis=0, grid="int")
    >>> r.alpha.shape, r.axis
    ((3,), 0)
    >>> bool(np.all(np.diff(r.alpha) > 0))
    True
    >>> list(r.to_frame().columns)
    ['channel', 'alpha', 'mse', 'clipping', 'rounding']
    """
    func = "per_channel_optimal_clip"
    arr = np.asarray(x) if isinstance(x, np.ndarray) else None
    if arr is None or arr.dtype.kind not in "biuf":
        arr = check_samples(x, "x", func, ndim=None)
    if arr.ndim == 0:
        raise param_error("x", func, "an array with at least 1 dimension", "a scalar")
    ax = check_int(axis, "axis", func, -arr.ndim, arr.ndim - 1)
    ax = ax % arr.ndim
    grid = check_option(grid, "grid", func, _SCALE_GRIDS)
    bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    rounding = check_option(rounding, "rounding", func, ROUNDINGS)
    n_grid = check_int(n_grid, "n_grid", func, 16, 1_000_000)
    if arr.size == 0:  # (no channel, or none with a value: reshape cannot infer a length)
        raise param_error("x", func, "a tensor with at least one value per channel", f"array of shape {arr.shape}")
    chans = np.moveaxis(arr, ax, 0).reshape(arr.shape[ax], -1)
    if chans.shape[1] == 0:
        raise param_error("x", func, "a tensor with at least one value per channel", f"array of shape {arr.shape}")
    if chans.dtype not in (np.float32, np.float64):
        chans = chans.astype(np.float64)
    chans = np.ascontiguousarray(chans)
    long = chans.shape[1] >= _PC_LONG
    # (float32 read as is: no float64 copy.) Short channels are sorted first, and the sorted ends
    # validate them (NaN sorts last): no separate pass over the samples.
    srt = chans if long else _sorted_rows(chans)
    lo, hi = (chans.min(), chans.max()) if long else (srt[:, 0].min(), srt[:, -1].max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(chans.size - np.count_nonzero(np.isfinite(chans)))
        raise param_error("x", func, "a non-empty array of finite real numbers", f"array with {bad} non-finite value(s)")
    n = chans.shape[0]
    # One numba pass over all channels (in parallel for a large job): each channel sorted (by
    # numpy: float32 stays float32), then branch and bound over the step with exact sweeps of the
    # surviving intervals — the provably global optimum (see qtheory/kernels/empirical.py,
    # _pc_channel). float64 channels far from unit magnitude are normalised by a power of two
    # inside the kernel (exact; as EmpiricalMSE does).
    d, off, qmin, qmax = _denominator(grid, bits)
    k = _kernels()

    def kernel(srt):
        """The per-channel kernel on the sorted channels ``srt``: rows (alpha, clipping, rounding)."""
        res = np.zeros((srt.shape[0], 3))
        # (a small job in one thread: starting the thread pool can cost more than the work)
        kern = k.per_channel if srt.shape[0] >= 2 and srt.size * (qmax - qmin) >= 1 << 16 else k.per_channel_serial
        with _schedule(1 if kern is k.per_channel_serial else 2):
            kern(srt, d, off, qmin, qmax, ROUNDING_CODES[rounding], grid in ("unsigned", "uint"), grid == "midrise",
                 srt.dtype == np.float64, res)
        return res

    if not long:
        out = kernel(srt)
    else:
        # Long channels (a per-channel activation of 2^19+ values): each through the bucketed proof of
        # EmpiricalMSE.optimal_clip, parallel inside the channel (2-10x faster there than the kernel's
        # one thread per channel); a channel no clip reaches (all zero; unsigned: none positive) is
        # left to the kernel's rule, and so is a constant channel (its error is exactly 0 at the
        # optimum, which the kernel's direct evaluation gives; bucket sums, only to ~1e-23 of x²).
        out = np.zeros((n, 3))
        hi_c, lo_c = chans.max(axis=1), chans.min(axis=1)
        reach = (hi_c > 0) if grid in ("unsigned", "uint") else (hi_c > 0) | (lo_c < 0)
        bulk = reach & (hi_c > lo_c)
        for i in np.flatnonzero(bulk):
            r = EmpiricalMSE(chans[i], _name="x", _func=func).optimal_clip(bits, grid=grid, rounding=rounding)
            out[i] = r.alpha, r.clipping, r.rounding
        if not bulk.all():
            out[~bulk] = kernel(_sorted_rows(chans[~bulk]))
    alpha, clip, rnd = out[:, 0].copy(), out[:, 1].copy(), out[:, 2].copy()
    if not np.isfinite(alpha).all():  # (a channel within a few steps of 1.8e308: no float64 clip)
        i = int(np.flatnonzero(~np.isfinite(alpha))[0])
        raise param_error("x", func, "channels whose optimal clips fit in float64 (divide them by a power of two)",
                          f"channel {i} with values up to {float(np.max(np.abs(chans[i])))!r}, whose optimum "
                          "lies beyond 1.8e308")
    return PerChannelClips(alpha, clip + rnd, ax, bits, grid, clip, rnd)
