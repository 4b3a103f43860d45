"""The field's calibrators side by side: which clip each picks, and what it costs in MSE.

Every calibrator takes a tensor (any shape) and a bit-width and picks a clip ``α``;
:func:`calibrate` runs one by name and returns a :class:`CalibrationResult` (the clip, its exact MSE
on the tensor, its SQNR and its quantizer). The names (:data:`CALIBRATORS`) are the field's:

``max``
    ``max|x|`` (no clipping).
``percentile``
    The ``p``-th percentile of ``|x|`` (default 99.99; the exact sample percentile, not the
    histogram bin edge that pytorch-quantization returns).
``entropy`` (alias ``kl``)
    TensorRT's KL calibration (Migacz, GTC 2017; pytorch-quantization's ``entropy`` method): a
    2048-bin histogram of ``|x|`` whose first bin is replaced by the second (pytorch-quantization's
    zero-spike handling, see :func:`entropy_clip`); for every candidate edge ``i`` from bin 128 on, the reference
    ``P`` is the histogram up to ``i`` with all outliers added to its last bin, the candidate
    ``Q`` is the same bins merged into ``2^(b−1)`` (``2^b`` unsigned) quantization bins and
    spread back evenly over their non-empty bins; the clip is the last edge that minimises
    ``KL(P‖Q)``.
``mse``
    pytorch-quantization's ``mse`` method (:func:`mse_sweep_clip`): the same histogram; every bin
    centre from bin 128 on is a candidate; the MSE of quantizing the bin centres (weighted by their
    counts) with the grid picks the best.
``octav``
    OCTAV (Sakr et al., ICML 2022): the Newton–Raphson fixed point
    ``s ← E[|X|·1{|X|>s}] / (4^(−B)/3·P(|X|≤s) + P(|X|>s))`` of the MSE model
    ``4^(−B)/3·s²·P(|X|≤s) + E[(|X|−s)²·1{|X|>s}]`` (``B+1`` for an unsigned grid); through
    :func:`calibrate` the noise term uses the step of the grid the clip is for (grid-aware).
``aciq``
    ACIQ (Banner et al. 2018): fit a Laplace (``b = mean|x − mean x|``) or Gaussian
    (``σ = std x``) prior and use ACIQ's optimal clipping ratio (one bit more for post-ReLU
    tensors, as the official code does). The keyword ``family`` chooses the prior:
    ``"laplace"`` (the default, as in :func:`aciq_clip` and the observers), ``"gaussian"``, or
    ``"auto"``: both clips are computed and the one with the lower exact MSE on the tensor (on the
    grid the clip is for) is kept. Through :func:`calibrate` the noise term uses the step of the
    grid the clip is for (grid-aware).
``exact``
    The exact global optimum of the empirical MSE (:func:`qtheory.empirical.empirical_optimal_clip`).

Renamed in 0.2 (the old names still work for one release, with a ``FutureWarning``):
``"qtheory"`` → ``"exact"``, ``"mse_sweep"`` → ``"mse"``, ``"aciq_laplace"`` /
``"aciq_gaussian"`` / ``"aciq_auto"`` → ``"aciq"`` with ``family="laplace"`` / ``"gaussian"`` /
``"auto"``.

:func:`calibrator_table` runs them on your tensors as they are (or on samples drawn from a suite of
distributions) and reports each clip's exact MSE on those values relative to the exact optimum.

The default grid of :func:`calibrate` and :func:`calibrator_table` is
:data:`qtheory.DEFAULT_TENSOR_GRID` (``"narrow"``, the symmetric int grid of integer runtimes; see
"Default grids" in :mod:`qtheory.quantizer`).

Every calibrator is scale-equivariant, ``alpha(c·x) = c·alpha(x)`` for ``c`` from 1e-300 to
1e300: the samples are divided by ``max|x|`` before any arithmetic and the clip is scaled back
(``exact`` and the reported MSE use :class:`qtheory.empirical.EmpiricalMSE`, which scales by an
exact power of two).

Examples
--------
>>> import numpy as np
>>> from qtheory import calibrate
>>> x = np.random.default_rng(0).laplace(size=50_000)
>>> picks = {m: calibrate.calibrate(x, 4, m) for m in ("max", "octav", "exact")}
>>> picks["max"].alpha > picks["octav"].alpha > 3.0
True
>>> picks["max"].mse > picks["octav"].mse >= picks["exact"].mse
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from ._results import ResultMixin, sqnr_db_value, unit_db
from ._typing import ArrayLike, RNGLike
from ._validation import check_bool, check_int, check_option, check_real, check_samples, param_error
from .quantizer import DEFAULT_TENSOR_GRID, GRIDS, MAX_BITS, MIN_BITS, Quantizer

__all__ = [
    "CALIBRATORS",
    "CalibrationResult",
    "calibrate",
    "max_clip",
    "percentile_clip",
    "entropy_clip",
    "mse_sweep_clip",
    "octav_clip",
    "aciq_clip",
    "exact_clip",
    "calibrator_suite",
    "calibrator_table",
]

#: The calibrators of :func:`calibrate`, by the field's names (``"kl"`` is an alias of ``"entropy"``).
CALIBRATORS = ("max", "percentile", "entropy", "mse", "octav", "aciq", "exact")
#: Other accepted names: ``{alias: name}``.
_ALIASES = {"kl": "entropy"}
#: Names of qtheory 0.1, accepted with a FutureWarning until the next release: ``{old: (new, keywords)}``.
_RENAMED = {"qtheory": ("exact", {}), "mse_sweep": ("mse", {}), "aciq_laplace": ("aciq", {"family": "laplace"}),
            "aciq_gaussian": ("aciq", {"family": "gaussian"}), "aciq_auto": ("aciq", {"family": "auto"})}
_UNSIGNED = ("unsigned", "uint")


def _method(method, func, name="method") -> tuple[str, dict]:
    """``(calibrator, implied keywords)`` of a method name: a name of :data:`CALIBRATORS`, an alias,
    or a 0.1 name (with a FutureWarning that gives the new spelling)."""
    if isinstance(method, str) and method in _RENAMED:
        new, kw = _RENAMED[method]
        spelled = f"method={new!r}" + "".join(f", {k}={v!r}" for k, v in kw.items())
        warnings.warn(f"{func}: the calibrator {method!r} is now {spelled}; the old name will be removed in the "
                      "next release.", FutureWarning, stacklevel=3)
        return new, dict(kw)
    if isinstance(method, str) and method in _ALIASES:
        return _ALIASES[method], {}
    return check_option(method, name, func, CALIBRATORS + tuple(_ALIASES)), {}


def _samples(x, func):
    return check_samples(x, "x", func, ndim=None).reshape(-1)


def _standardised(x, func):
    """``(x / c, c)`` with ``c = max|x|``: every rule runs on data in ``[-1, 1]`` and its clip is
    scaled back by ``c``, so each calibrator is scale-equivariant from 1e-300 to 1e300 (no
    histogram, square or fitted scale can under- or overflow)."""
    xs = _samples(x, func)
    c = float(np.max(np.abs(xs)))
    if not c > 0:
        raise param_error("x", func, "samples that are not all zero", "all-zero samples")
    return xs / c, c


#: Largest number of candidate × bin (or candidate × quantization-bin) products a histogram rule
#: may evaluate: bounds both memory (the work is chunked) and time.
MAX_HISTOGRAM_WORK = 1 << 28


def _check_work(n_cand, width, func):
    if n_cand * width > MAX_HISTOGRAM_WORK:
        raise param_error(
            "num_bins", func,
            f"small enough that candidates × width <= 2^28 (here {n_cand} candidates × {width}; lower "
            "num_bins or bits, or raise start_bin / stride)", n_cand * width)


# ----------------------------------------------------------------------------- simple rules
def max_clip(x: ArrayLike) -> float:
    """``max|x|``: the clip that clips nothing.

    >>> max_clip([-3.0, 1.0, 2.5])
    3.0
    """
    xs, c = _standardised(x, "max_clip")
    return float(c * np.max(np.abs(xs)))


def percentile_clip(x: ArrayLike, percentile: float = 99.99) -> float:
    """The ``percentile``-th percentile of ``|x|`` (``numpy.percentile``, linear interpolation).

    >>> percentile_clip(np.arange(101.0), 90)
    90.0
    """
    p = check_real(percentile, "percentile", "percentile_clip", 0.0, 100.0, low_open=True)
    xs, c = _standardised(x, "percentile_clip")
    return float(c * np.percentile(np.abs(xs), p))


def _histogram(a, num_bins):
    top = float(a.max())
    hist, edges = np.histogram(a, bins=num_bins, range=(0.0, top))
    return hist.astype(np.float64), edges


# ----------------------------------------------------------------------------- TensorRT KL
def _kl_candidates(h, nq, ii):
    """KL(P‖Q) of TensorRT's rule for the candidate edges ``ii`` (all at once from prefix sums).

    ``P_j = h_j / T`` (the last bin also holds the outliers); ``Q`` spreads each group's sum
    evenly over its non-empty bins and is normalised by ``C_i = Σ_{j<i} h_j``.
    """
    total = h.sum()
    hlogh = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0)
    csum = np.concatenate([[0.0], np.cumsum(h)])
    zsum = np.concatenate([[0.0], np.cumsum(h > 0)])
    lsum = np.concatenate([[0.0], np.cumsum(hlogh)])
    i = ii[:, None]
    g = np.arange(nq + 1)[None, :]
    bnd = (g * i + nq - 1) // nq  # group g holds bins [bnd_g, bnd_{g+1}): g = floor(j·nq / i)
    gsum = csum[bnd[:, 1:]] - csum[bnd[:, :-1]]
    gcnt = zsum[bnd[:, 1:]] - zsum[bnd[:, :-1]]
    c_i = csum[ii]
    outl = total - c_i
    last = h[ii - 1]
    p_last = (last + outl) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        logq = np.log(np.where(gsum > 0, gsum / (gcnt * c_i[:, None]), 1.0))
        term_a = (lsum[ii - 1] - np.log(total) * csum[ii - 1]) / total + np.where(p_last > 0, p_last * np.log(
            np.where(p_last > 0, p_last, 1.0)), 0.0)
        g_last = ((ii - 1) * nq) // ii
        term_b = np.sum(np.where(gsum > 0, gsum / total * logq, 0.0), axis=1) + outl / total * logq[
            np.arange(ii.size), g_last]
        kl = np.where((last == 0) & (outl > 0), np.inf, term_a - term_b)
    return np.where(np.isfinite(kl), np.maximum(kl, 0.0), np.inf)


def entropy_clip(x: ArrayLike, bits: int, *, unsigned: bool = False, num_bins: int = 2048, start_bin: int = 128,
                 stride: int = 1, zero_bin: bool = True) -> float:
    """TensorRT-style KL-divergence calibration (see the module docstring).

    Follows NVIDIA pytorch-quantization's ``_compute_amax_entropy``
    (``tools/pytorch-quantization/pytorch_quantization/calib/histogram.py`` in NVIDIA/TensorRT):
    before the search, the first histogram bin is replaced by the second (``bins[0] = bins[1]``,
    ``zero_bin=True``), and the totals are taken after that replacement. Without it the spike of
    exact zeros of a post-ReLU tensor (half the mass in bin 0) dominates the divergence and drives
    the clip far too low (on 2^17–2^19 ReLU(Laplace) samples at 8 bits: a quarter or less of the
    MSE-optimal clip and several hundred times its MSE; with the replacement, within ~1.1–1.3×). ``zero_bin=False`` gives the plain TensorRT rule (Migacz,
    GTC 2017). ONNX Runtime's ``HistogramCollector.get_entropy_threshold``
    (``onnxruntime/python/tools/quantization/calibrate.py``) histograms the signed values around a
    zero bin and smooths ``P`` and ``Q`` instead; it is not reproduced here.

    Parameters
    ----------
    x : array_like
        Samples (any shape); the histogram is of ``|x|``.
    bits : int
        Bit-width; the candidate distribution has ``2^(bits−1)`` bins (``2^bits`` if ``unsigned``).
    unsigned : bool
    num_bins, start_bin, stride : int
        Histogram size, first candidate edge, candidate step (defaults of TensorRT /
        pytorch-quantization). The work, candidates × ``2^(bits−1)``, is limited to 2^28.
    zero_bin : bool
        Replace the first histogram bin by the second (pytorch-quantization); default ``True``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=100_000)
    >>> 2.0 < entropy_clip(x, 8) < 4.5
    True
    """
    func = "entropy_clip"
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    unsigned = check_bool(unsigned, "unsigned", func)
    zero_bin = check_bool(zero_bin, "zero_bin", func)
    num_bins = check_int(num_bins, "num_bins", func, 2, 1 << 20)
    start_bin = check_int(start_bin, "start_bin", func, 1, num_bins)
    stride = check_int(stride, "stride", func, 1, num_bins)
    nq = 1 << (bits - 1 + int(unsigned))
    ii_all = np.arange(start_bin, num_bins + 1, stride)
    _check_work(ii_all.size, nq + 1, func)
    xs, c = _standardised(x, func)
    hist, edges = _histogram(np.abs(xs), num_bins)
    if zero_bin:
        hist[0] = hist[1]
    if not hist.sum() > 0:  # every value fell into bin 0, which the patch emptied
        return float(c * edges[-1])
    chunk = max(1, (1 << 21) // (nq + 1))
    kl = np.concatenate([_kl_candidates(hist, nq, ii_all[lo:lo + chunk]) for lo in range(0, ii_all.size, chunk)])
    # ties (to rounding): the last (largest) edge, as TensorRT
    best = np.flatnonzero(kl <= kl.min() + 1e-12 * max(kl.min(), 1e-300))[-1]
    return float(c * edges[ii_all[best]])


# ----------------------------------------------------------------------------- pytorch-quantization MSE
def mse_sweep_clip(x: ArrayLike, bits: int, *, grid: str = DEFAULT_TENSOR_GRID, num_bins: int = 2048, start_bin: int = 128,
                   stride: int = 1) -> float:
    """pytorch-quantization's histogram MSE sweep: the ``"mse"`` calibrator (see the module docstring).

    Every histogram bin centre ``c_i`` (``i >= start_bin``) is a candidate clip; its cost is
    ``Σ_j n_j (q(c_j) − c_j)²`` over the bin centres with the quantizer of ``grid`` clipped at
    ``c_i``. The work, candidates × ``num_bins``, is limited to 2^28.

    Examples
    --------
    >>> x = np.random.default_rng(0).laplace(size=100_000)
    >>> 3.0 < mse_sweep_clip(x, 4) < 7.0
    True
    """
    func = "mse_sweep_clip"
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    num_bins = check_int(num_bins, "num_bins", func, 2, 1 << 20)
    start_bin = check_int(start_bin, "start_bin", func, 0, num_bins - 1)
    stride = check_int(stride, "stride", func, 1, num_bins)
    _check_work(len(range(start_bin, num_bins, stride)), num_bins, func)
    xs, c = _standardised(x, func)
    hist, edges = _histogram(np.abs(xs), num_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    cand = centres[start_bin::stride]
    cand = cand[cand > 0]
    q1 = Quantizer(bits, 1.0, grid)
    denom = 1.0 / q1.scale  # scale = alpha / denom, as Quantizer computes it
    costs = np.empty(cand.size)
    nz = hist > 0  # (empty bins add nothing: most of them for a small tensor)
    centres_nz, hist_nz = centres[nz], hist[nz].astype(np.float64)
    step = max(1, (1 << 21) // max(centres_nz.size, 1))
    for lo in range(0, cand.size, step):
        a = cand[lo:lo + step, None]
        s = a / denom
        k = np.clip(np.rint(centres_nz[None, :] / s - q1.offset), q1.qmin, q1.qmax)
        e = (k + q1.offset) * s - centres_nz[None, :]
        costs[lo:lo + step] = (e * e) @ hist_nz
    return float(c * cand[np.argmin(costs)])


# ----------------------------------------------------------------------------- OCTAV
def _noise_coefficient(bits, unsigned, grid, func):
    """``k`` of the noise term ``k·α²`` = (step of the grid at α = 1)² / 12.

    ``grid=None``: the 2^B-bin grid the papers model (step ``2α/2^B``, or ``α/2^B`` unsigned), i.e.
    ``k = 4^(−B)/3`` (``4^(−B−1)/3`` unsigned). Otherwise the step of ``grid`` itself (the narrow
    grid at 2 bits has step ``α``, twice the modelled ``α/2``).
    """
    if grid is None:
        return 4.0 ** -(bits + int(unsigned)) / 3.0, unsigned
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    if unsigned and grid not in _UNSIGNED:
        raise param_error("unsigned", func, f"False with the signed grid {grid!r} (an unsigned grid implies it)",
                          unsigned)
    if bits < MIN_BITS[grid]:
        raise param_error("bits", func, f"an int in the range [{MIN_BITS[grid]}, {MAX_BITS}] for grid {grid!r}",
                          bits)
    return Quantizer(bits, 1.0, grid).scale ** 2 / 12.0, grid in _UNSIGNED


def octav_clip(x: ArrayLike, bits: int, *, unsigned: bool = False, grid: str | None = None, n_iter: int = 30,
               s0: float | None = None, rtol: float = 1e-9) -> float:
    """OCTAV's Newton–Raphson recursion for the MSE-optimal clip (Sakr et al. 2022).

    ``s_{n+1} = E[|X|·1{|X|>s_n}] / (k · P(|X|≤s_n) + P(|X|>s_n))``, the fixed point of the MSE
    model ``k·s²·P(|X|≤s) + E[(|X|−s)²·1{|X|>s}]``, started at ``s0`` (default ``E|X|``; the
    recursion converges from any positive start in a few steps; a start beyond all the mass, where
    the map gives 0, restarts at ``E|X|``). The noise coefficient ``k`` is
    ``(step/s)²/12``: the paper's ``4^(−B)/3`` (a grid of ``2^B`` bins of width ``2s/2^B``;
    ``B + 1`` unsigned) when ``grid`` is ``None``, else the step of ``grid`` (grid-aware variant;
    the narrow int grid has ``2^B − 1`` levels and step ``s/(2^(B−1) − 1)``, twice the paper's at
    2 bits). Its paper-model fixed point is close to (slightly above) ACIQ's clip.

    Parameters
    ----------
    x : array_like or prior
        Samples (any shape), or a qtheory prior / scipy distribution (expectations from the
        prior's partial moments).
    bits : int
    unsigned : bool
        One-sided tensor (paper model with ``B + 1``); implied by an unsigned ``grid``.
    grid : str, optional
        The grid the clip is for (not ``"affine"``); ``None``: the paper's 2^B-bin model.
    n_iter : int
        Maximum iterations.
    s0 : float, optional
        Start (default ``E|X|``).
    rtol : float
        Stop when the relative change is below this.

    Examples
    --------
    >>> from qtheory import Laplace
    >>> round(octav_clip(Laplace(1.0), 4), 3)   # ACIQ's 4-bit ratio is 5.029
    5.034
    >>> round(octav_clip(Laplace(1.0), 4, grid="narrow"), 3)   # step s/7 instead of s/8
    4.813
    """
    from .priors import Prior

    func = "octav_clip"
    bits = check_int(bits, "bits", func, 0, MAX_BITS)
    unsigned = check_bool(unsigned, "unsigned", func)
    n_iter = check_int(n_iter, "n_iter", func, 1, 100_000)
    rtol = check_real(rtol, "rtol", func, 0.0, 1.0, low_open=True)
    k, _ = _noise_coefficient(bits, unsigned, grid, func)
    is_prior = isinstance(x, Prior) or (hasattr(x, "dist") and hasattr(x, "rvs"))
    c = 1.0
    if is_prior:
        from .priors import as_prior

        p = as_prior(x, name="x", func=func)

        def stats(s):
            m0, m1, _ = p.partial_moments(np.array([-np.inf, -s, s]), np.array([-s, s, np.inf]))
            return float(m1[2] - m1[0]), float(m0[1]), float(m0[0] + m0[2])

        _, m1a, _ = p.partial_moments(np.array([-np.inf, 0.0]), np.array([0.0, np.inf]))
        mean_abs = float(m1a[1] - m1a[0])
    else:
        xs, c = _standardised(x, func)
        a = np.abs(xs)

        def stats(s):
            out = a > s
            n_out = np.count_nonzero(out)
            return float(np.sum(a[out])) / a.size, 1.0 - n_out / a.size, n_out / a.size

        mean_abs = float(np.mean(a))
    s = mean_abs if s0 is None else check_real(s0, "s0", func, 0.0, low_open=True) / c
    restarted = s0 is None
    for _ in range(n_iter):
        tail, p_in, p_out = stats(s)
        new = tail / (k * p_in + p_out)
        if not new > 0:
            if not restarted:  # (a start beyond all the mass has no tail: the map gives 0; restart at E|X|)
                restarted = True
                s = mean_abs
                continue
            break
        done = abs(new - s) <= rtol * s
        s = new
        if done:
            break
    return float(c * s)


# ----------------------------------------------------------------------------- ACIQ
def _aciq_grid_root(base, k: float) -> float:
    """Root of ``k·α = E[(|X| − α)_+]`` (the stationarity condition of ``clip(α) + k·α²``)."""
    from scipy.optimize import brentq

    from .mse import aciq_tail_mean

    g = lambda a: k * a - float(aciq_tail_mean(base, a))  # noqa: E731 - increasing in a
    hi = base.scale
    while g(hi) < 0:
        hi *= 2.0
    return float(brentq(g, 0.0, hi, xtol=1e-15 * hi, rtol=4 * np.finfo(float).eps, maxiter=500))


def aciq_clip(x: ArrayLike, bits: int, *, family: str = "laplace", unsigned: bool = False, grid: str | None = None) -> float:
    """ACIQ's clip for a Laplace / Gaussian prior fitted to ``x``.

    The prior is fitted as the official code does (``b = mean|x − mean x|``, ``σ = std x``).
    ``grid=None`` is the paper's rule: ACIQ's optimal ratio for a grid of ``2^M`` bins of width
    ``2α/2^M`` (for an ``unsigned``, post-ReLU tensor the ratio at one bit more, as the official
    code does). With a ``grid`` the noise term ``α²/(3·4^M)`` becomes ``Δ²/12`` with the step ``Δ``
    of that grid (grid-aware variant): the clip solves ``(Δ/α)²/12 · α = E[(|X| − α)_+]`` under
    the fitted prior (``½`` of both sides for a rectified prior). ``family="auto"`` computes both
    families' clips and keeps the one with the lower exact MSE on ``x`` itself, quantized on
    ``grid`` (the paper's grid, midrise or unsigned, when ``grid`` is ``None``).

    Examples
    --------
    >>> x = np.random.default_rng(0).laplace(size=100_000)
    >>> round(float(aciq_clip(x, 4) / np.mean(np.abs(x))), 2)
    5.03
    >>> round(float(aciq_clip(x, 4, grid="narrow") / np.mean(np.abs(x))), 2)   # step α/7, not α/8
    4.81
    """
    from .empirical import EmpiricalMSE
    from .fit import fit_prior
    from .optimal import optimal_clip
    from .priors import Gaussian, Laplace, Rectified

    func = "aciq_clip"
    family = check_option(family, "family", func, ("laplace", "gaussian", "auto"))
    bits = check_int(bits, "bits", func, 0, MAX_BITS)
    unsigned = check_bool(unsigned, "unsigned", func)
    k, unsigned = _noise_coefficient(bits, unsigned, grid, func)
    xs, c = _standardised(x, func)
    if xs.size < 2 or np.all(xs == xs.flat[0]):
        raise param_error("x", func, "a tensor with non-zero spread (at least two distinct values)",
                          "a constant tensor")
    fit = fit_prior(xs, "laplace")

    def clip(fam):
        base = Laplace(fit.b) if fam == "laplace" else Gaussian(fit.sigma)
        if grid is None:
            return float(optimal_clip(Rectified(base) if unsigned else base, bits, method="aciq").alpha)
        return _aciq_grid_root(base, k)

    if family != "auto":
        return float(c * clip(family))
    score_grid = grid if grid is not None else ("unsigned" if unsigned else "midrise")
    prep = EmpiricalMSE(xs)
    alphas = {fam: clip(fam) for fam in ("laplace", "gaussian")}
    mse = {fam: float(prep.mse(a, max(bits, MIN_BITS[score_grid]), grid=score_grid).mse) for fam, a in alphas.items()}
    return float(c * alphas[min(mse, key=mse.get)])


# ----------------------------------------------------------------------------- qtheory
def exact_clip(x: ArrayLike, bits: int, *, grid: str = DEFAULT_TENSOR_GRID) -> float:
    """The exact global optimum of the empirical MSE on ``x`` (for ``grid``): the ``"exact"`` calibrator.

    >>> exact_clip([-2.0, -1.0, 0.0, 1.0, 2.0], 2, grid="narrow")   # levels -1.5, 0, 1.5: MSE 0.2
    1.5
    """
    _, prep = _prepared(x, "x", "exact_clip")  # (EmpiricalMSE scales by an exact power of two itself)
    return float(prep.optimal_clip(bits, grid=grid).alpha)


#: keywords each calibrator accepts through :func:`calibrate`
_KEYWORDS = {
    "max": (), "percentile": ("percentile",), "entropy": ("num_bins", "start_bin", "stride", "zero_bin"),
    "mse": ("num_bins", "start_bin", "stride"), "octav": ("n_iter", "s0", "rtol"), "aciq": ("family",),
    "exact": (),
}


@dataclass(frozen=True)
class CalibrationResult(ResultMixin):
    """The clip a calibrator picked for a tensor, with its exact MSE on that tensor.

    ``float(r)`` is the clip, so ``Quantizer(bits, float(r), grid)`` works as before.

    Attributes
    ----------
    alpha : float
        The clip (``0.0`` only for a tensor no clip reaches; see :func:`qtheory.empirical.empirical_optimal_clip`).
    mse : float
        Exact empirical MSE of quantizing the given tensor with this clip on ``grid``
        (:class:`qtheory.empirical.EmpiricalMSE`).
    method : str
        The calibrator (a name of :data:`CALIBRATORS`).
    bits : int
    grid : str
    options : dict
        The keywords the calibrator was run with (e.g. ``{"family": "auto"}``); not in ``to_frame``.
    signal_power : float
        ``E[X²]`` of the tensor (not shown by ``repr``, not compared by ``==``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).laplace(size=10_000)
    >>> r = calibrate(x, 8, "max")
    >>> float(r) == r.alpha == float(np.max(np.abs(x)))
    True
    >>> r.quantizer.grid, bool(r.sqnr_db > 20)
    ('narrow', True)
    >>> bool(abs(r.mse - np.mean((r.quantize(x) - x) ** 2)) <= 1e-12 * r.mse)
    True
    """

    alpha: float
    mse: float
    method: str
    bits: int
    grid: str
    options: dict = field(default_factory=dict)
    signal_power: float | None = field(default=None, repr=False, compare=False)
    _sqnr_db: float | None = field(default=None, repr=False, compare=False)

    def __float__(self) -> float:
        return float(self.alpha)

    @property
    def quantizer(self) -> Quantizer:
        """``Quantizer(bits, alpha, grid)``.

        Raises
        ------
        TypeError
            For a clip of ``0.0`` (a tensor no clip reaches), which no quantizer has.
        """
        if not self.alpha > 0.0:
            raise TypeError(f"CalibrationResult.quantizer: a clip of {self.alpha!r} has no Quantizer; every value "
                            "quantizes to 0.")
        return Quantizer(self.bits, self.alpha, self.grid)

    def quantize(self, x) -> np.ndarray:
        """``self.quantizer.quantize(x)``: ``x`` clipped and rounded to this clip's grid."""
        return self.quantizer.quantize(x)

    @property
    def sqnr_db(self) -> float:
        """``10·log10(E[X²] / mse)`` in dB, computed at the tensor's unit scale (scale-invariant)."""
        return sqnr_db_value(self._sqnr_db, self.signal_power, self.mse, "CalibrationResult")


def _clip(xs, bits, method, grid, kwargs) -> float:
    """The clip of calibrator ``method`` (validated) for the validated samples ``xs``."""
    unsigned = grid in _UNSIGNED
    if method == "max":
        return max_clip(xs)
    if method == "percentile":
        return percentile_clip(xs, **kwargs)
    if method == "entropy":
        return entropy_clip(xs, bits, unsigned=unsigned, **kwargs)
    if method == "mse":
        return mse_sweep_clip(xs, bits, grid=grid, **kwargs)
    if method == "octav":
        return octav_clip(xs, bits, grid=grid, **kwargs)
    return aciq_clip(xs, bits, grid=grid, **kwargs)


def _result(prep, alpha, bits, method, grid, options) -> CalibrationResult:
    """The :class:`CalibrationResult` of clip ``alpha`` on the prepared samples (one exact evaluation,
    at the samples' unit scale: the SQNR is scale-invariant)."""
    u = prep._unit
    p2 = float(prep._pref[2][-1] + prep._pref[3][-1]) / prep.n  # E[X²] at the unit scale
    if alpha > 0.0:
        s = prep._error_sums_unit([Quantizer(bits, float(alpha), grid)])
        e = prep._from_unit2(s)[0] / prep.n  # (the operations of empirical_mse: the same float)
        mse, m2 = float(e[0] + e[1]), float(s[0, 0] / prep.n + s[0, 1] / prep.n)
    else:  # (no level: every value goes to 0, the limit of every grid as α -> 0)
        m2 = p2
        mse = p2 * u * u
    return CalibrationResult(float(alpha), mse, method, bits, grid, options, signal_power=p2 * u * u,
                             _sqnr_db=unit_db(p2, m2) if m2 > 0 else math.inf)


def _relative_mse(r, opt) -> float:
    """``r.mse / opt.mse``, from the SQNRs at the samples' unit scale where an MSE is not a normal
    float64 (the data beyond ~1e±154: the MSEs underflow or overflow; their ratio does not)."""
    tiny = np.finfo(np.float64).tiny
    if tiny <= opt.mse < np.inf and tiny <= r.mse < np.inf:
        return r.mse / opt.mse
    if opt._sqnr_db == math.inf:  # (the optimum is lossless)
        return 1.0 if r._sqnr_db == math.inf else math.inf
    return 10.0 ** ((opt._sqnr_db - r._sqnr_db) / 10.0)


def _run(xs, prep, bits, method, grid, options, opt=None) -> CalibrationResult:
    if method == "exact":
        r = opt if opt is not None else prep.optimal_clip(bits, grid=grid)
        return CalibrationResult(r.alpha, r.mse, "exact", bits, grid, {}, signal_power=r.signal_power,
                                 _sqnr_db=r._sqnr_db)
    return _result(prep, _clip(xs, bits, method, grid, options), bits, method, grid, options)


def calibrate(x: ArrayLike, bits: int, method: str = "exact", *, grid: str = DEFAULT_TENSOR_GRID,
              **kwargs: Any) -> CalibrationResult:
    """The clip chosen by calibrator ``method`` for a tensor, with its exact MSE on that tensor.

    Parameters
    ----------
    x : array_like
        The tensor (any shape; flattened), used as it is.
    bits : int
    method : str
        One of :data:`CALIBRATORS` (``"max"``, ``"percentile"``, ``"entropy"`` (or ``"kl"``),
        ``"mse"``, ``"octav"``, ``"aciq"``, ``"exact"``; see the module docstring). The names of
        qtheory 0.1 (``"qtheory"``, ``"mse_sweep"``, ``"aciq_laplace"``, ...) still work, with a
        ``FutureWarning`` naming the new spelling.
    grid : str
        The quantizer the clip is meant for (not ``"affine"``); default
        :data:`qtheory.DEFAULT_TENSOR_GRID` (``"narrow"``). Unsigned grids switch the calibrators to
        their one-sided variants; ``mse`` and ``exact`` optimise for that grid, and ``octav`` and
        ``aciq`` use the grid-aware noise term (the step of ``grid``; see :func:`octav_clip`,
        :func:`aciq_clip`).
    **kwargs
        Passed to the calibrator: ``percentile`` (``percentile``); ``num_bins``, ``start_bin``,
        ``stride`` (``entropy``, ``mse``), ``zero_bin`` (``entropy``); ``n_iter``, ``s0``, ``rtol``
        (``octav``); ``family`` (``aciq``: ``"laplace"``, default, ``"gaussian"`` or ``"auto"``).
        A keyword the method does not use is refused.

    Returns
    -------
    CalibrationResult
        ``alpha`` (also ``float(result)``), the exact ``mse`` of that clip on ``x`` (one more
        O(N) pass), ``sqnr_db``, ``quantizer`` and ``quantize``.

    Examples
    --------
    >>> r = calibrate([0.5, -1.0, 4.0], 8, "max")
    >>> r.alpha, float(r), r.grid
    (4.0, 4.0, 'narrow')
    >>> x = np.random.default_rng(1).normal(size=20_000)
    >>> a = calibrate(x, 4, "aciq", family="auto")
    >>> a.method, a.options, bool(a.mse >= calibrate(x, 4, "exact").mse)
    ('aciq', {'family': 'auto'}, True)
    """
    func = "calibrate"
    method, implied = _method(method, func)
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    options = _options(method, {**implied, **kwargs}, func)
    xs, prep = _prepared(x, "x", func)
    return _run(xs, prep, bits, method, grid, options)


def _options(method, kwargs, func) -> dict:
    for key, value in kwargs.items():
        if key not in _KEYWORDS[method]:
            allowed = ", ".join(repr(k) for k in _KEYWORDS[method]) or "none"
            raise param_error(key, func, f"left out with method={method!r} (it takes the keywords: {allowed})",
                              value, TypeError)
    if "family" in kwargs:
        kwargs["family"] = check_option(kwargs["family"], "family", func, ("laplace", "gaussian", "auto"))
    return dict(kwargs)


def _prepared(x, name, func):
    """Validated flat samples (not all zero) and their :class:`~qtheory.empirical.EmpiricalMSE`."""
    from .empirical import EmpiricalMSE

    xs = check_samples(x, name, func, ndim=None).reshape(-1)
    if not np.any(xs):
        raise param_error(name, func, "samples that are not all zero", "all-zero samples")
    return xs, EmpiricalMSE(xs, _name=name, _func=func)


# ----------------------------------------------------------------------------- the table
def calibrator_suite(grid: str = DEFAULT_TENSOR_GRID) -> dict:
    """The distributions of :func:`calibrator_table`'s default suite: ``{label: (prior, grid)}``.

    Laplace, Gaussian, Student-t (df = 5), logistic, uniform (all unit variance), a bimodal
    Gaussian mixture (modes at ±2, σ = 0.5) and a ReLU-rectified Gaussian (with an unsigned grid).

    >>> sorted(calibrator_suite())[:3]
    ['bimodal', 'gaussian', 'laplace']
    """
    from scipy import stats

    from .priors import Gaussian, Laplace, Mixture, Rectified, ScipyPrior

    return {
        "laplace": (Laplace(1 / math.sqrt(2.0)), grid),
        "gaussian": (Gaussian(1.0), grid),
        "student-t5": (ScipyPrior(stats.t(5, scale=math.sqrt(3.0 / 5.0))), grid),
        "logistic": (ScipyPrior(stats.logistic(scale=math.sqrt(3.0) / math.pi)), grid),
        "uniform": (ScipyPrior(stats.uniform(-math.sqrt(3.0), 2 * math.sqrt(3.0))), grid),
        "bimodal": (Mixture([0.5, 0.5], [Gaussian(0.5, loc=-2.0), Gaussian(0.5, loc=2.0)]), grid),
        "relu-gaussian": (Rectified(Gaussian(1.0)), "unsigned"),
    }


def _is_prior(v) -> bool:
    from .priors import Empirical, Prior

    return (isinstance(v, Prior) and not isinstance(v, Empirical)) or isinstance(v, str) or (
        hasattr(v, "dist") and hasattr(v, "rvs"))


def _method_specs(methods, func) -> list[tuple[str, str, dict]]:
    """``[(label, method, keywords)]`` from names and ``(name, {keywords})`` pairs."""
    if isinstance(methods, str) or (isinstance(methods, tuple) and len(methods) == 2 and isinstance(methods[1], dict)):
        methods = [methods]
    out = []
    for spec in methods:
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict):
            name, kw = spec
            m, implied = _method(name, func, "methods")
            kw = _options(m, {**implied, **kw}, func)
        else:
            m, implied = _method(spec, func, "methods")
            kw = _options(m, implied, func)
        label = m + ("(" + ", ".join(f"{k}={v}" for k, v in kw.items()) + ")" if kw else "")
        out.append((label, m, kw))
    return out


def calibrator_table(data: ArrayLike | Mapping[str, Any] | None = None, bits: int | Iterable[int] = range(2, 9), *,
                     methods: Iterable[str | tuple[str, dict[str, Any]]] = CALIBRATORS,
                     grid: str = DEFAULT_TENSOR_GRID, axis: int | None = None, n_samples: int = 1 << 18,
                     rng: RNGLike = 0, progress: bool | None = None) -> pd.DataFrame:
    """All calibrators on the same tensors, each clip's exact MSE against the exact optimum.

    Your arrays are used as they are, never resampled: every calibrator picks a clip from the
    given values and the clip's MSE is the exact empirical MSE on exactly those values
    (:class:`qtheory.empirical.EmpiricalMSE`, the same number as
    ``qtheory.empirical.empirical_mse(x, alpha, bits, grid=grid).mse``), reported relative to the
    exact optimum on those values. Priors (and the default suite) are *sampled*: ``n_samples``
    values are drawn once per prior with ``rng``, and those draws are the tensor.

    Parameters
    ----------
    data : array_like, dict or None
        A tensor (labelled ``"x"``), or ``{label: tensor}`` / ``{label: (tensor, grid)}``, where a
        tensor is an array (or :class:`~qtheory.Empirical`) or a prior (a qtheory prior, a frozen
        scipy distribution or a prior name), which is sampled. ``None``: the suite of
        :func:`calibrator_suite`, sampled.
    bits : int or iterable of int
    methods : iterable
        Names of :data:`CALIBRATORS` (aliases and 0.1 names accepted), or ``(name, {keywords})``
        pairs such as ``("aciq", {"family": "auto"})``, labelled ``aciq(family=auto)``.
        ``"exact"`` is always computed: it is the reference.
    grid : str
        Grid for tensors given without one (default :data:`qtheory.DEFAULT_TENSOR_GRID`,
        ``"narrow"``, the symmetric int8 grid of ONNX Runtime, TensorRT and pytorch-quantization).
    axis : int, optional
        Per-channel calibration of array tensors: every slice along ``axis`` (e.g. 0 for the output
        channels of a weight) is calibrated on its own, one row per channel and calibrator, with a
        ``channel`` column (aggregate with ``groupby``). ``None``: each tensor is one.
        Priors are drawn as one 1-D tensor and ignore ``axis``.
    n_samples : int
        Draws per prior (arrays are not resampled).
    rng : None, int or numpy.random.Generator
        Seed of the draws from priors.
    progress : bool or None
        A tqdm bar over the tensors (``None``: only after 2 s, in a terminal or notebook;
        ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame
        Columns ``distribution`` (the label), ``grid, bits``, ``channel`` (with ``axis``),
        ``calibrator, alpha, ratio`` (``α/std`` of the tensor), ``mse``, ``rel_mse`` (MSE / optimal
        MSE) and ``excess_db`` (``10·log10(rel_mse)``).

    Examples
    --------
    >>> x = np.random.default_rng(0).laplace(size=20_000)
    >>> t = calibrator_table({"laplace": x}, bits=[4], methods=["max", "octav"])
    >>> t[["calibrator", "rel_mse"]].round(2).to_string(index=False).split()[:4]
    ['calibrator', 'rel_mse', 'max', '4.0']
    >>> w = np.random.default_rng(1).normal(size=(3, 500)) * [[1.0], [2.0], [4.0]]
    >>> t = calibrator_table({"w": w}, bits=[4], methods=["max"], axis=0)
    >>> t.loc[t.calibrator == "max", ["channel", "alpha"]].shape
    (3, 2)
    """
    import pandas as pd

    from ._progress import check_progress, progress_bar
    from .priors import Empirical, as_prior

    func = "calibrator_table"
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    specs = _method_specs(methods, func)
    if isinstance(bits, (int, np.integer)):
        bits = [bits]
    bits = [check_int(b, "bits", func, 1, MAX_BITS) for b in bits]
    from .priors import MAX_DRAWS

    n_samples = check_int(n_samples, "n_samples", func, 100, MAX_DRAWS)
    if axis is not None:
        axis = check_int(axis, "axis", func, -64, 63)
    progress = check_progress(progress, func)
    if data is None:
        items = calibrator_suite(grid)
    elif isinstance(data, dict):
        items = data
    else:
        items = {"x": data}
    gen = np.random.default_rng(rng)
    tensors = []  # (label, grid, channel, flat values)
    for label, spec in items.items():
        value, g = spec if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], str) else (spec, grid)
        g = check_option(g, "grid", func, tuple(gg for gg in GRIDS if gg != "affine"))
        if _is_prior(value):
            prior = as_prior(value, name="data", func=func)
            tensors.append((label, g, None, np.asarray(prior.rvs(n_samples, gen), dtype=np.float64)))
            continue
        arr = value._raw if isinstance(value, Empirical) else value
        arr = check_samples(arr, "data", func, ndim=None)
        if axis is None:
            tensors.append((label, g, None, arr.reshape(-1)))
            continue
        if not -arr.ndim <= axis < arr.ndim:
            raise param_error("axis", func, f"an int in the range [{-arr.ndim}, {arr.ndim - 1}] for the "
                              f"{arr.ndim}-D tensor {label!r}", axis)
        arr = np.moveaxis(arr, axis, 0)
        tensors.extend((label, g, c, arr[c].reshape(-1)) for c in range(arr.shape[0]))
    rows = []
    for label, g, channel, x in progress_bar(tensors, progress, func):
        for b in bits:
            if b < MIN_BITS[g]:
                raise param_error("bits", func, f"an int in the range [{MIN_BITS[g]}, {MAX_BITS}] for grid {g!r}", b)
        if not np.any(x):
            raise param_error("data", func, "tensors (and channels) that are not all zero",
                              f"an all-zero tensor {label!r}" + ("" if channel is None else f" (channel {channel})"))
        from .empirical import EmpiricalMSE

        prep = EmpiricalMSE(x, _name="data", _func=func)
        std = prep.std  # (from the unit scale: sqrt(var) overflowed or underflowed beyond ~1e±154)
        for b in bits:
            opt = prep.optimal_clip(b, grid=g)
            for lab, m, kw in specs:
                r = _run(x, prep, b, m, g, kw, opt)
                row = {"distribution": label, "grid": g, "bits": b}
                if axis is not None:
                    row["channel"] = channel
                row.update({"calibrator": lab, "alpha": r.alpha, "ratio": r.alpha / std if std > 0 else math.nan,
                            "mse": r.mse, "rel_mse": _relative_mse(r, opt)})
                row["excess_db"] = 10 * math.log10(row["rel_mse"]) if row["rel_mse"] > 0 else -math.inf
                rows.append(row)
    return pd.DataFrame(rows)
