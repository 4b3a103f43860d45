"""The classical frame: Lloyd–Max, Panter–Dite, rate–distortion, and the distortion ladder.

Every clipping rule is an approximation of problems classical quantization theory solved:

- :func:`lloyd_max` — the MSE-optimal *non-uniform* N-level quantizer (Lloyd 1957/1982; Max 1960):
  the fixed point of "thresholds at mid-points, levels at centroids"; a lower bound for any
  uniform clip with the same number of levels.
- :func:`panter_dite` — its high-rate asymptote ``(1/12)·(∫p^(1/3))³·4^(−R)`` (Panter & Dite 1951).
- :func:`rate_distortion` — Shannon's ``D(R)``: exact ``σ²·4^(−R)`` for a Gaussian; for other
  densities the Shannon lower bound ``e^(2h)/(2πe)·4^(−R)`` (``h`` the differential entropy).
- :func:`distortion_ladder` — for a prior and bits: the bound, Lloyd–Max, the exact-optimal uniform
  clip, ACIQ's clip and no clipping (max), all as exact MSEs.

Examples
--------
>>> from qtheory.classical import lloyd_max, rate_distortion
>>> r = lloyd_max("gaussian", 4)
>>> r.levels.round(4), round(r.mse, 4)
(array([-1.5104, -0.4528,  0.4528,  1.5104]), 0.1175)
>>> float(rate_distortion("gaussian", 2).distortion)
0.0625
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._progress import check_progress, progress_bar
from ._results import ResultMixin
from ._typing import ArrayLike, PriorLike
from ._validation import check_int, check_option, check_real, param_error
from .priors import Empirical, Gaussian, Laplace, Mixture, Prior, Rectified, ScipyPrior, as_prior
from .quantizer import GRIDS, MAX_BITS, MIN_BITS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LloydMaxResult", "lloyd_max", "panter_dite", "RateDistortion", "rate_distortion",
           "differential_entropy", "distortion_ladder"]


# ============================================================================ Lloyd–Max
@dataclass(frozen=True)
class LloydMaxResult(ResultMixin):
    """An optimal non-uniform quantizer.

    Attributes
    ----------
    levels : ndarray
        Reconstruction levels (increasing).
    thresholds : ndarray
        Decision thresholds (mid-points of adjacent levels).
    mse : float
        Its mean squared error under the prior.
    iterations : int
    converged : bool
    """

    levels: np.ndarray
    thresholds: np.ndarray
    mse: float
    iterations: int
    converged: bool


def _lm_mse(prior: Prior, levels: np.ndarray) -> float:
    t = 0.5 * (levels[1:] + levels[:-1])
    a = np.concatenate([[-np.inf], t])
    b = np.concatenate([t, [np.inf]])
    return float(math.fsum(prior.interval_sq_error(a, b, levels)))


def _compander_init(prior: Prior, n: int) -> np.ndarray:
    """Levels of the Panter–Dite compander: quantiles ``(k + ½)/n`` of the density ∝ p^(1/3)."""
    lo_q = prior.abs_quantile(1 - 1e-12)
    if prior.nonnegative:
        xs = np.linspace(0.0, lo_q, 20001)
    else:
        xs = np.linspace(-lo_q, lo_q, 40001)
    try:
        dens = np.cbrt(np.maximum(np.asarray(prior.pdf(xs), dtype=float), 0.0))
    except (AttributeError, NotImplementedError):
        dens = np.ones_like(xs)
    if not np.all(np.isfinite(dens)) or dens.sum() <= 0:
        dens = np.ones_like(xs)
    c = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(xs))])
    c /= c[-1]
    levels = np.interp((np.arange(n) + 0.5) / n, c, xs)
    if isinstance(prior, Rectified):  # the atom at 0 deserves a level
        levels[0] = 0.0
    return np.maximum.accumulate(levels)


def _density(prior: Prior):
    """The density of the continuous part of ``prior`` (``None`` for samples)."""
    if isinstance(prior, Empirical):
        return None
    if isinstance(prior, Rectified):
        base = prior.base
        return lambda x: np.where(np.asarray(x) > 0, base.pdf(x), 0.0)
    if hasattr(prior, "pdf"):
        return lambda x: np.asarray(prior.pdf(x), dtype=float)
    return None


def lloyd_max(prior: PriorLike, n_levels: int, *, tol: float = 1e-12, max_iter: int = 100_000,
              init: ArrayLike | None = None) -> LloydMaxResult:
    """The Lloyd–Max quantizer with ``n_levels`` levels for ``prior``.

    The fixed point of Lloyd's map (thresholds at mid-points, levels at the centroids
    ``∫x dP / ∫dP`` of their cells, from the prior's partial moments), found by Newton's method
    with the tridiagonal Jacobian (damped; it needs the density) started from the Panter–Dite
    compander levels, falling back to over-relaxed Lloyd iterations (samples, or if Newton stalls),
    until the levels are within ``tol·std`` of their centroids.

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior` (closed forms are fast; quadrature priors are slow for many
        levels).
    n_levels : int
        Number of levels, ``1 .. 2^16``.
    tol : float
    max_iter : int
    init : array_like, optional
        Starting levels (increasing).

    Returns
    -------
    LloydMaxResult

    Examples
    --------
    >>> r = lloyd_max("gaussian", 2)          # Max (1960): ±0.7979, MSE 0.3634
    >>> r.levels.round(4), round(r.mse, 4)
    (array([-0.7979,  0.7979]), 0.3634)
    >>> round(lloyd_max("gaussian", 8).mse, 5)
    0.03454
    """
    func = "lloyd_max"
    prior = as_prior(prior, func=func)
    n = check_int(n_levels, "n_levels", func, 1, 1 << 16)
    tol = check_real(tol, "tol", func, 0.0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", func, 1, None)
    if init is None:
        y = _compander_init(prior, n)
    else:
        y = np.sort(np.asarray(init, dtype=float))
        if y.shape != (n,) or not np.all(np.isfinite(y)):
            raise param_error("init", func, f"{n} finite starting levels", init)
    scale = prior.std
    converged = False
    it = 0

    sym = bool(prior.symmetric)

    def symm(y):  # a symmetric prior has a symmetric optimum; this also removes a flat direction
        return 0.5 * (y - y[::-1]) if sym else y

    y = symm(y)

    def centroids(y):
        t = 0.5 * (y[1:] + y[:-1])
        a = np.concatenate([[-np.inf], t])
        b = np.concatenate([t, [np.inf]])
        m0, m1, _ = prior.partial_moments(a, b)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(m0 > 0, m1 / np.where(m0 > 0, m0, 1.0), y)
        return c, t, m0

    pdf = _density(prior)
    if pdf is not None and n > 1:
        # Newton's method on y = centroid(y): the Jacobian is tridiagonal
        from scipy.linalg import solve_banded

        c, t, m0 = centroids(y)
        res = y - c
        for it in range(1, 200):  # noqa: B007 - the count is reported
            if np.max(np.abs(res)) <= 1e-15 * scale:
                converged = True
                break
            pt = pdf(t)
            with np.errstate(invalid="ignore", divide="ignore"):
                up = np.where(m0[:-1] > 0, pt * (t - c[:-1]) / m0[:-1], 0.0)  # dc_k/dt_k
                dn = np.where(m0[1:] > 0, pt * (c[1:] - t) / m0[1:], 0.0)  # dc_{k+1}/dt_k
            ab = np.zeros((3, n))
            ab[1] = 1.0
            ab[1, :-1] -= 0.5 * up
            ab[1, 1:] -= 0.5 * dn
            ab[0, 1:] = -0.5 * up  # J[k, k+1]
            ab[2, :-1] = -0.5 * dn  # J[k+1, k]
            try:
                step = solve_banded((1, 1), ab, -res)
            except (ValueError, np.linalg.LinAlgError):
                break
            if not np.all(np.isfinite(step)):
                break
            if np.max(np.abs(step)) <= tol * scale:
                y = symm(y + step)
                c, t, m0 = centroids(y)
                converged = True
                break
            lam, ok = 1.0, False
            norm = np.max(np.abs(res))
            while lam > 1e-4:
                y_new = symm(y + lam * step)
                if np.all(np.diff(y_new) > 0):
                    c_new, t_new, m0_new = centroids(y_new)
                    res_new = y_new - c_new
                    if np.max(np.abs(res_new)) <= norm:
                        ok = True
                        break
                lam *= 0.5
            if not ok:
                break
            y, c, t, m0, res = y_new, c_new, t_new, m0_new, res_new
    if not converged:
        for it2 in range(1, max_iter + 1):  # noqa: B007 - the count is reported
            c, _, _ = centroids(y)
            step = c - y
            # over-relaxed Lloyd step (falls back to the plain step if the order would break)
            y_new = y + 1.8 * step
            if np.any(np.diff(y_new) <= 0):
                y_new = c
            y = y_new
            if np.max(np.abs(step)) <= tol * scale:
                converged = True
                y = c
                break
        it += it2
    t = 0.5 * (y[1:] + y[:-1])
    return LloydMaxResult(y, t, _lm_mse(prior, y), it, converged)


# ============================================================================ Panter–Dite
def _cbrt_integral(prior: Prior) -> float:
    """``∫ p(x)^(1/3) dx`` (closed forms for Laplace and Gaussian)."""
    if isinstance(prior, Laplace):
        return 6.0 * prior.b / (2.0 * prior.b) ** (1.0 / 3.0)
    if isinstance(prior, Gaussian):
        s = prior.sigma
        return (2 * math.pi * s * s) ** (-1.0 / 6.0) * math.sqrt(6 * math.pi) * s
    if isinstance(prior, (Empirical, Rectified)) or prior.kind != "continuous":
        raise param_error("prior", "panter_dite", "a continuous prior with a density", repr(prior))
    from scipy import integrate

    lo, hi = (prior._support if isinstance(prior, ScipyPrior) else (-np.inf, np.inf))
    pts = sorted({float(np.clip(v, lo, hi)) for v in (prior.mean - prior.std, prior.mean, prior.mean + prior.std)})
    if isinstance(prior, Mixture):
        pts = sorted(set(pts) | {float(c.mean) for c in prior.components})
    edges = [lo, *pts, hi]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b > a:
            v, _ = integrate.quad(lambda x: float(prior.pdf(x)) ** (1.0 / 3.0), a, b, limit=200)
            total += v
    return total


def panter_dite(prior: PriorLike, bits: ArrayLike) -> np.ndarray | float:
    """Panter–Dite high-rate MSE of the optimal non-uniform quantizer: ``(1/12)(∫p^(1/3))³·4^(−R)``.

    Examples
    --------
    >>> round(panter_dite("gaussian", 0) , 4)   # √3·π/2
    2.7207
    >>> round(panter_dite("laplace", 0), 4)     # 9 b²
    9.0
    """
    prior = as_prior(prior, func="panter_dite")
    c = _cbrt_integral(prior) ** 3 / 12.0
    r = np.asarray(bits, dtype=float)
    out = c * 4.0 ** (-r)
    return float(out) if out.ndim == 0 else out


# ============================================================================ rate–distortion
@dataclass(frozen=True)
class RateDistortion:
    """Shannon distortion–rate value(s).

    Attributes
    ----------
    rate : float or ndarray
        Bits per sample.
    distortion : float or ndarray
        ``D(R)`` (``kind="exact"``) or the Shannon lower bound (``kind="shannon_lower_bound"``).
    kind : str
    entropy : float
        Differential entropy ``h`` (nats).
    """

    rate: float | np.ndarray
    distortion: float | np.ndarray
    kind: str
    entropy: float


def differential_entropy(prior: PriorLike) -> float:
    """Differential entropy ``h = −∫ p log p`` in nats (closed forms for Laplace / Gaussian).

    >>> round(differential_entropy("gaussian"), 6)   # ½ log(2πe)
    1.418939
    """
    func = "differential_entropy"
    prior = as_prior(prior, func=func)
    if isinstance(prior, Laplace):
        return 1.0 + math.log(2.0 * prior.b)
    if isinstance(prior, Gaussian):
        return 0.5 * math.log(2 * math.pi * math.e * prior.sigma**2)
    if isinstance(prior, ScipyPrior):
        return float(prior.dist.entropy())
    if isinstance(prior, Mixture) and prior.kind == "continuous":
        from scipy import integrate

        def f(x):
            p = float(prior.pdf(x))
            return -p * math.log(p) if p > 0 else 0.0

        pts = sorted({float(c.mean) for c in prior.components})
        edges = [-np.inf, *pts, np.inf]
        return float(sum(integrate.quad(f, a, b, limit=400)[0] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a))
    raise param_error("prior", func, "a continuous prior (atoms and samples have no differential entropy)",
                      repr(prior))


def rate_distortion(prior: PriorLike, rate: ArrayLike) -> RateDistortion:
    """Distortion–rate function ``D(R)`` for squared error.

    Exact for a Gaussian, ``σ²·4^(−R)``; for any other continuous prior the Shannon lower bound
    ``e^(2h)/(2πe)·4^(−R)`` (tight as ``R → ∞``; ``σ²·4^(−R)`` is an upper bound).

    Parameters
    ----------
    prior : prior-like
        A continuous prior (not samples, not a rectified prior with its atom at 0).
    rate : float or array_like
        Bits per sample, ``>= 0``.

    Examples
    --------
    >>> r = rate_distortion("laplace", 4)
    >>> r.kind, round(float(r.distortion) * 256, 4)    # 2e b²/π at R = 0
    ('shannon_lower_bound', 1.7305)
    """
    func = "rate_distortion"
    prior = as_prior(prior, func=func)
    r = np.asarray(rate, dtype=float)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise param_error("rate", func, "a finite real number >= 0 (or an array of them)", rate)
    h = differential_entropy(prior)
    if isinstance(prior, Gaussian):
        d, kind = prior.var * 4.0 ** (-r), "exact"
    else:
        d, kind = math.exp(2 * h) / (2 * math.pi * math.e) * 4.0 ** (-r), "shannon_lower_bound"
    d = float(d) if np.ndim(d) == 0 else d
    return RateDistortion(float(r) if r.ndim == 0 else r, d, kind, h)


# ============================================================================ ladder
def _mean_abs_dev(prior: Prior) -> float:
    mu = prior.mean
    m0, m1, _ = prior.partial_moments(np.array([-np.inf, mu]), np.array([mu, np.inf]))
    return float((m1[1] - mu * m0[1]) - (m1[0] - mu * m0[0]))


def aciq_prior_clip(prior, bits: int) -> float:
    """ACIQ's clip for a prior: exact rule for (rectified) zero-mean Laplace/Gaussian priors, else
    the official default — the Laplace rule with ``b = E|X − E X|``.

    >>> round(aciq_prior_clip("laplace", 4), 4)
    5.0286
    """
    from .optimal import optimal_clip

    prior = as_prior(prior, func="aciq_prior_clip")
    base = prior.base if isinstance(prior, Rectified) else prior
    if isinstance(base, (Laplace, Gaussian)) and base.loc == 0.0:
        return float(optimal_clip(prior, bits, method="aciq").alpha)
    b = _mean_abs_dev(base)
    p = Rectified(Laplace(b)) if isinstance(prior, Rectified) else Laplace(b)
    return float(optimal_clip(p, bits, method="aciq").alpha)


def distortion_ladder(prior: PriorLike, bits: Iterable[int] = range(1, 9), *, grid: str = "midrise",
                      n_max: float = 1e6, progress: bool | None = None) -> pd.DataFrame:
    """MSE vs bits for one prior: the rungs from Shannon's bound to no clipping.

    Columns: ``bits``, ``rate_distortion`` (exact for Gaussian, else the Shannon lower bound;
    ``NaN`` for priors with atoms), ``rd_kind``, ``panter_dite``, ``lloyd_max`` (``2^bits`` levels),
    ``uniform_optimal`` (exact optimum of ``grid``), ``aciq`` (exact MSE at ACIQ's clip) and
    ``max`` (exact MSE at the clip ``max|x|`` of ``n_max`` samples, i.e. the ``1 − 1/n_max``
    quantile of ``|X|``; the support's edge for bounded priors), plus the clips
    ``alpha_optimal``, ``alpha_aciq``, ``alpha_max``.

    ``progress``: a tqdm bar over the bit-widths (``None``: only after 2 s, in a terminal or
    notebook; ``True``: always; ``False``: never).

    Examples
    --------
    >>> t = distortion_ladder("gaussian", bits=[2])
    >>> t[["rate_distortion", "lloyd_max", "uniform_optimal"]].round(4).values.tolist()
    [[0.0625, 0.1175, 0.1188]]
    """
    import pandas as pd

    from .mse import clipping_mse
    from .optimal import optimal_clip

    func = "distortion_ladder"
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    bits = [check_int(b, "bits", func, MIN_BITS[grid], min(MAX_BITS, 12)) for b in bits]
    prior = as_prior(prior, func=func)
    n_max = check_real(n_max, "n_max", func, 2.0)
    progress = check_progress(progress, func)
    try:
        rd = rate_distortion(prior, np.array(bits, dtype=float))
        rdv, rdk = rd.distortion, rd.kind
    except ValueError:
        rdv, rdk = np.full(len(bits), np.nan), "undefined"
    try:
        pd_v = panter_dite(prior, np.array(bits, dtype=float))
    except ValueError:
        pd_v = np.full(len(bits), np.nan)
    a_max = float(prior.abs_quantile(1.0 - 1.0 / n_max))
    if isinstance(prior, ScipyPrior) and np.all(np.isfinite(prior._support)):
        a_max = float(np.max(np.abs(prior._support)))
    rows = []
    for i, b in progress_bar(list(enumerate(bits)), progress, func):
        lm = lloyd_max(prior, 2**b, tol=1e-10, max_iter=20000)
        opt = optimal_clip(prior, b, grid=grid, progress=False)
        a_aciq = aciq_prior_clip(prior, b)
        rows.append({
            "bits": b, "rate_distortion": float(rdv[i]), "rd_kind": rdk, "panter_dite": float(pd_v[i]),
            "lloyd_max": lm.mse, "uniform_optimal": opt.mse,
            "aciq": float(clipping_mse(prior, a_aciq, b, grid=grid).mse),
            "max": float(clipping_mse(prior, a_max, b, grid=grid).mse),
            "alpha_optimal": opt.alpha, "alpha_aciq": a_aciq, "alpha_max": a_max,
        })
    return pd.DataFrame(rows)
