"""The field's calibrators side by side: which clip each picks, and what it costs in MSE.

Every calibrator takes a tensor (any shape) and a bit-width and returns a clip ``α``:

``max``
    ``max|x|`` (no clipping).
``percentile``
    The ``p``-th percentile of ``|x|`` (default 99.99; the exact sample percentile, not the
    histogram bin edge that pytorch-quantization returns).
``entropy``
    TensorRT's KL calibration (Migacz, GTC 2017; pytorch-quantization's ``entropy`` method): a
    2048-bin histogram of ``|x|``; for every candidate edge ``i`` from bin 128 on, the reference
    ``P`` is the histogram up to ``i`` with all outliers added to its last bin, the candidate
    ``Q`` is the same bins merged into ``2^(b−1)`` (``2^b`` unsigned) quantization bins and
    spread back evenly over their non-empty bins; the clip is the last edge that minimises
    ``KL(P‖Q)``.
``mse_sweep``
    pytorch-quantization's ``mse`` method: the same histogram; every bin centre from bin 128 on is
    a candidate; the MSE of quantizing the bin centres (weighted by their counts) with the grid
    picks the best.
``octav``
    OCTAV (Sakr et al., ICML 2022): the Newton–Raphson fixed point
    ``s ← E[|X|·1{|X|>s}] / (4^(−B)/3·P(|X|≤s) + P(|X|>s))`` of the MSE model
    ``4^(−B)/3·s²·P(|X|≤s) + E[(|X|−s)²·1{|X|>s}]`` (``B+1`` for an unsigned grid).
``aciq_laplace``, ``aciq_gaussian``, ``aciq_auto``
    ACIQ (Banner et al. 2018): fit a Laplace (``b = mean|x − mean x|``) or Gaussian
    (``σ = std x``) prior, or pick the family by the MSE it predicts, and use ACIQ's optimal
    clipping ratio (one bit more for post-ReLU tensors, as the official code does).
``qtheory``
    The exact global optimum of the empirical MSE (:func:`qtheory.empirical.empirical_optimal_clip`).

:func:`calibrator_table` runs all of them on samples of a suite of distributions and reports each
clip's exact MSE on those samples relative to the exact optimum.

Examples
--------
>>> import numpy as np
>>> from qtheory import calibrate
>>> x = np.random.default_rng(0).laplace(size=50_000)
>>> picks = {m: calibrate.calibrate(x, 4, m, grid="int") for m in ("max", "octav", "qtheory")}
>>> picks["max"] > picks["octav"] > 3.0
True
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_int, check_option, check_real, check_samples, param_error
from .quantizer import GRIDS, MAX_BITS, MIN_BITS, Quantizer

__all__ = [
    "CALIBRATORS",
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

CALIBRATORS = ("max", "percentile", "entropy", "mse_sweep", "octav", "aciq_laplace", "aciq_gaussian",
               "aciq_auto", "qtheory")
_UNSIGNED = ("unsigned", "uint")


def _samples(x, func):
    return check_samples(np.ravel(x) if np.ndim(x) != 1 else x, "x", func)


def _abs(x, func):
    a = np.abs(_samples(x, func))
    if not np.any(a > 0):
        raise param_error("x", func, "samples that are not all zero", "all-zero samples")
    return a


# ----------------------------------------------------------------------------- simple rules
def max_clip(x) -> float:
    """``max|x|``: the clip that clips nothing.

    >>> max_clip([-3.0, 1.0, 2.5])
    3.0
    """
    return float(np.max(_abs(x, "max_clip")))


def percentile_clip(x, percentile: float = 99.99) -> float:
    """The ``percentile``-th percentile of ``|x|`` (``numpy.percentile``, linear interpolation).

    >>> percentile_clip(np.arange(101.0), 90)
    90.0
    """
    p = check_real(percentile, "percentile", "percentile_clip", 0.0, 100.0, low_open=True)
    return float(np.percentile(_abs(x, "percentile_clip"), p))


def _histogram(a, num_bins):
    top = float(a.max())
    hist, edges = np.histogram(a, bins=num_bins, range=(0.0, top))
    return hist.astype(np.float64), edges


# ----------------------------------------------------------------------------- TensorRT KL
def entropy_clip(x, bits: int, *, unsigned: bool = False, num_bins: int = 2048, start_bin: int = 128,
                 stride: int = 1) -> float:
    """TensorRT-style KL-divergence calibration (see the module docstring).

    Parameters
    ----------
    x : array_like
        Samples (any shape); the histogram is of ``|x|``.
    bits : int
        Bit-width; the candidate distribution has ``2^(bits−1)`` bins (``2^bits`` if ``unsigned``).
    unsigned : bool
    num_bins, start_bin, stride : int
        Histogram size, first candidate edge, candidate step (defaults of TensorRT /
        pytorch-quantization).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=100_000)
    >>> 2.0 < entropy_clip(x, 8) < 4.5
    True
    """
    func = "entropy_clip"
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    num_bins = check_int(num_bins, "num_bins", func, 2, 1 << 20)
    start_bin = check_int(start_bin, "start_bin", func, 1, num_bins)
    stride = check_int(stride, "stride", func, 1, num_bins)
    nq = 1 << (bits - 1 + int(bool(unsigned)))
    hist, edges = _histogram(_abs(x, func), num_bins)
    # All candidates at once from prefix sums (O(num_bins · nq)); see the docstring for the rule.
    # P_j = h_j / T (the last bin also holds the outliers); Q spreads each group's sum evenly over
    # its non-empty bins and is normalised by C_i = Σ_{j<i} h_j.
    h = hist
    total = h.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        hlogh = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0)
    csum = np.concatenate([[0.0], np.cumsum(h)])
    zsum = np.concatenate([[0.0], np.cumsum(h > 0)])
    lsum = np.concatenate([[0.0], np.cumsum(hlogh)])
    i = np.arange(start_bin, num_bins + 1, stride)[:, None]
    g = np.arange(nq + 1)[None, :]
    bnd = (g * i + nq - 1) // nq  # group g holds bins [bnd_g, bnd_{g+1})
    gsum = csum[bnd[:, 1:]] - csum[bnd[:, :-1]]
    gcnt = zsum[bnd[:, 1:]] - zsum[bnd[:, :-1]]
    ii = i[:, 0]
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
    kl = np.where(np.isfinite(kl), np.maximum(kl, 0.0), np.inf)
    # ties (to rounding): the last (largest) edge, as TensorRT
    best = np.flatnonzero(kl <= kl.min() + 1e-12 * max(kl.min(), 1e-300))[-1]
    return float(edges[ii[best]])


# ----------------------------------------------------------------------------- pytorch-quantization MSE
def mse_sweep_clip(x, bits: int, *, grid: str = "narrow", num_bins: int = 2048, start_bin: int = 128,
                   stride: int = 1) -> float:
    """pytorch-quantization's histogram MSE sweep (see the module docstring).

    Every histogram bin centre ``c_i`` (``i >= start_bin``) is a candidate clip; its cost is
    ``Σ_j n_j (q(c_j) − c_j)²`` over the bin centres with the quantizer of ``grid`` clipped at
    ``c_i``.

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
    hist, edges = _histogram(_abs(x, func), num_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    cand = centres[start_bin::stride]
    cand = cand[cand > 0]
    q1 = Quantizer(bits, 1.0, grid)
    denom = 1.0 / q1.scale  # scale = alpha / denom, as Quantizer computes it
    costs = np.empty(cand.size)
    for lo in range(0, cand.size, 128):
        a = cand[lo:lo + 128, None]
        s = a / denom
        k = np.clip(np.rint(centres[None, :] / s - q1.offset), q1.qmin, q1.qmax)
        e = (k + q1.offset) * s - centres[None, :]
        costs[lo:lo + 128] = (e * e) @ hist
    return float(cand[np.argmin(costs)])


# ----------------------------------------------------------------------------- OCTAV
def octav_clip(x, bits: int, *, unsigned: bool = False, n_iter: int = 30, s0: float | None = None,
               rtol: float = 1e-9) -> float:
    """OCTAV's Newton–Raphson recursion for the MSE-optimal clip (Sakr et al. 2022).

    ``s_{n+1} = E[|X|·1{|X|>s_n}] / (4^(−B)/3 · P(|X|≤s_n) + P(|X|>s_n))`` (``B + 1`` for an
    unsigned grid), started at ``s0`` (default ``E|X|``; the recursion converges from any
    positive start in a few steps). Its noise term ``4^(−B)/3·s²`` is ACIQ's, applied to the
    inliers only, so its fixed point is close to (slightly above) ACIQ's clip.

    Parameters
    ----------
    x : array_like or prior
        Samples (any shape), or a qtheory prior / scipy distribution (expectations from the
        prior's partial moments).
    bits : int
    unsigned : bool
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
    """
    from .priors import Prior

    func = "octav_clip"
    bits = check_int(bits, "bits", func, 0, MAX_BITS)
    n_iter = check_int(n_iter, "n_iter", func, 1, 100_000)
    k = 4.0 ** -(bits + int(bool(unsigned))) / 3.0
    is_prior = isinstance(x, Prior) or (hasattr(x, "dist") and hasattr(x, "rvs"))
    if is_prior:
        from .priors import as_prior

        p = as_prior(x, name="x", func=func)

        def stats(s):
            m0, m1, _ = p.partial_moments(np.array([-np.inf, -s, s]), np.array([-s, s, np.inf]))
            return float(m1[2] - m1[0]), float(m0[1]), float(m0[0] + m0[2])

        _, m1a, _ = p.partial_moments(np.array([-np.inf, 0.0]), np.array([0.0, np.inf]))
        mean_abs = float(m1a[1] - m1a[0])
    else:
        a = _abs(x, func)

        def stats(s):
            out = a > s
            n_out = np.count_nonzero(out)
            return float(np.sum(a[out])) / a.size, 1.0 - n_out / a.size, n_out / a.size

        mean_abs = float(np.mean(a))
    s = mean_abs if s0 is None else check_real(s0, "s0", func, 0.0, low_open=True)
    for _ in range(n_iter):
        tail, p_in, p_out = stats(s)
        new = tail / (k * p_in + p_out)
        if not new > 0:
            break
        done = abs(new - s) <= rtol * s
        s = new
        if done:
            break
    return float(s)


# ----------------------------------------------------------------------------- ACIQ
def aciq_clip(x, bits: int, *, family: str = "laplace", unsigned: bool = False) -> float:
    """ACIQ's clip for a Laplace / Gaussian prior fitted to ``x`` (``family="auto"``: the family
    whose ACIQ clip gives the lower exact MSE on ``x``, as an older official version did).

    For an ``unsigned`` (post-ReLU) tensor the one-sided rule is used: the ratio at one bit more.

    Examples
    --------
    >>> x = np.random.default_rng(0).laplace(size=100_000)
    >>> round(float(aciq_clip(x, 4) / np.mean(np.abs(x))), 2)
    5.03
    """
    from .fit import fit_prior
    from .optimal import optimal_clip
    from .priors import Gaussian, Laplace, Rectified

    func = "aciq_clip"
    family = check_option(family, "family", func, ("laplace", "gaussian", "auto"))
    bits = check_int(bits, "bits", func, 0, MAX_BITS)
    xs = _samples(x, func)
    fit = fit_prior(xs, family, bits=max(bits, 1) if family == "auto" else None)
    base = Laplace(fit.b) if fit.family == "laplace" else Gaussian(fit.sigma)
    prior = Rectified(base) if unsigned else base
    return float(optimal_clip(prior, bits, method="aciq").alpha)


# ----------------------------------------------------------------------------- qtheory
def exact_clip(x, bits: int, *, grid: str = "midrise") -> float:
    """qtheory's exact global optimum of the empirical MSE on ``x`` (for ``grid``).

    >>> exact_clip([-2.0, -1.0, 0.0, 1.0, 2.0], 2, grid="narrow")   # levels -1.5, 0, 1.5: MSE 0.2
    1.5
    """
    from .empirical import empirical_optimal_clip

    return float(empirical_optimal_clip(x, bits, grid=grid).alpha)


def calibrate(x, bits: int, method: str = "qtheory", *, grid: str = "midrise", **kwargs) -> float:
    """Clip chosen by calibrator ``method`` (one of :data:`CALIBRATORS`) for a tensor.

    ``grid`` is the quantizer the clip is meant for: unsigned grids switch the calibrators to
    their one-sided variants, and ``mse_sweep`` / ``qtheory`` optimise for that grid.

    >>> calibrate([0.5, -1.0, 4.0], 8, "max")
    4.0
    """
    func = "calibrate"
    method = check_option(method, "method", func, CALIBRATORS)
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    unsigned = grid in _UNSIGNED
    if method == "max":
        return max_clip(x)
    if method == "percentile":
        return percentile_clip(x, **kwargs)
    if method == "entropy":
        return entropy_clip(x, bits, unsigned=unsigned, **kwargs)
    if method == "mse_sweep":
        return mse_sweep_clip(x, bits, grid=grid, **kwargs)
    if method == "octav":
        return octav_clip(x, bits, unsigned=unsigned, **kwargs)
    if method.startswith("aciq"):
        return aciq_clip(x, bits, family=method.split("_")[1], unsigned=unsigned)
    return exact_clip(x, bits, grid=grid)


# ----------------------------------------------------------------------------- the table
def calibrator_suite(grid: str = "narrow") -> dict:
    """The distributions of :func:`calibrator_table`: ``{label: (prior, grid)}``.

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
        "bimodal": (Mixture([0.5, 0.5], [Gaussian(0.5, -2.0), Gaussian(0.5, 2.0)]), grid),
        "relu-gaussian": (Rectified(Gaussian(1.0)), "unsigned"),
    }


def calibrator_table(priors: dict | None = None, bits=range(2, 9), *, methods=CALIBRATORS, grid: str = "narrow",
                     n_samples: int = 1 << 18, rng=0):
    """All calibrators on the same samples of each distribution, against the exact optimum.

    For each distribution, ``n_samples`` values are drawn once (``rng``); every calibrator picks
    a clip from those samples; the clip's MSE is the exact empirical MSE on the same samples
    (:class:`qtheory.empirical.EmpiricalMSE`), reported relative to the exact optimum.

    Parameters
    ----------
    priors : dict, optional
        ``{label: prior}`` or ``{label: (prior, grid)}``; default :func:`calibrator_suite`.
    bits : iterable of int
    methods : iterable of str
        Subset of :data:`CALIBRATORS` (``"qtheory"`` is always computed: it is the reference).
    grid : str
        Grid for priors given without one (default ``"narrow"``, the symmetric int8 grid of
        TensorRT and pytorch-quantization).
    n_samples : int
    rng : None, int or numpy.random.Generator

    Returns
    -------
    pandas.DataFrame
        Columns ``distribution, grid, bits, calibrator, alpha, ratio`` (``α/std``), ``mse``,
        ``rel_mse`` (MSE / optimal MSE) and ``excess_db`` (``10·log10(rel_mse)``).

    Examples
    --------
    >>> from qtheory import Laplace
    >>> t = calibrator_table({"laplace": Laplace()}, bits=[4], methods=["max", "octav"], n_samples=20_000)
    >>> t[["calibrator", "rel_mse"]].round(2).to_string(index=False).split()[:4]
    ['calibrator', 'rel_mse', 'max', '4.0']
    """
    import pandas as pd

    from .empirical import EmpiricalMSE
    from .priors import as_prior

    func = "calibrator_table"
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    methods = [check_option(m, "methods", func, CALIBRATORS) for m in methods]
    bits = [check_int(b, "bits", func, MIN_BITS[grid], MAX_BITS) for b in bits]
    n_samples = check_int(n_samples, "n_samples", func, 100, None)
    rng = np.random.default_rng(rng)
    items = calibrator_suite(grid) if priors is None else priors
    rows = []
    for label, spec in items.items():
        prior, g = spec if isinstance(spec, tuple) else (spec, grid)
        prior = as_prior(prior, name="priors", func=func)
        x = np.asarray(prior.rvs(n_samples, rng), dtype=np.float64)
        prep = EmpiricalMSE(x)
        std = math.sqrt(prep.var)
        for b in bits:
            opt = prep.optimal_clip(b, grid=g)
            for m in methods:
                a = opt.alpha if m == "qtheory" else calibrate(x, b, m, grid=g)
                mse = opt.mse if m == "qtheory" else float(prep.curve([a], b, g)[0])
                rows.append({"distribution": label, "grid": g, "bits": b, "calibrator": m, "alpha": a,
                             "ratio": a / std, "mse": mse, "rel_mse": mse / opt.mse,
                             "excess_db": 10 * math.log10(mse / opt.mse)})
    return pd.DataFrame(rows)
