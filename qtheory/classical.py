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
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._progress import check_progress, progress_bar
from ._results import ResultMixin
from ._typing import ArrayLike, PriorLike
from ._validation import check_int, check_option, check_real, param_error
from .priors import (
    Empirical,
    Gaussian,
    Laplace,
    Mixture,
    Prior,
    Rectified,
    ScipyPrior,
    _ldexp,
    _pow2_exponent,
    _standardised,
    as_prior,
)
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
    if not c[-1] > 0:  # (all mass at one point, e.g. all-zero samples: every level there)
        return np.full(n, xs[0])
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
    until the levels are within ``tol·std`` of their centroids. The prior is first standardised by a
    power of two (exact), so levels scale exactly with the prior from 1e-300 to 1e300; an MSE
    beyond the float64 range is reported as ``inf`` (or ``0.0``), never NaN.

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
    if init is not None:
        y = np.sort(np.asarray(init, dtype=float))
        if y.shape != (n,) or not np.all(np.isfinite(y)):
            raise param_error("init", func, f"{n} finite starting levels", init)
    # all arithmetic at unit scale (X · 2^-e, exact); levels and MSE are scaled back at the end
    prior, e = _standardised(prior)
    if init is None:
        y = _compander_init(prior, n)
    else:
        y = np.clip(_ldexp(y, -e), -1e300, 1e300)
    scale = prior.std
    if not 0.0 < scale < math.inf:  # (constant samples: any positive unit will do)
        scale = 1.0
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
    mse = float(_ldexp(_lm_mse(prior, y), 2 * e))  # (0.0 or inf beyond the float64 range: never NaN)
    return LloydMaxResult(_ldexp(y, e), _ldexp(t, e), mse, it, converged)


# ============================================================================ density integrals
#: quantiles and steps of ``mean ± k·std`` at which a density integral is split, for every component
_SPLIT_Q = (1e-12, 1e-6, 1e-3, 0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98, 1 - 1e-3, 1 - 1e-6, 1 - 1e-12)
_SPLIT_K = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0)


def _check_rate(rate: ArrayLike, name: str, func: str) -> np.ndarray:
    """``rate`` as a float64 array of finite reals ``>= 0`` (bits per sample), or raise."""
    allowed = "a finite real number >= 0 (or an array of them)"
    try:
        r = np.asarray(rate)
    except (TypeError, ValueError):  # (e.g. a ragged nested list)
        raise param_error(name, func, allowed, rate) from None
    if r.dtype.kind not in "iuf":  # (str, None, complex, bool, object: never silently cast)
        raise param_error(name, func, allowed, rate, TypeError)
    r = r.astype(np.float64)
    bad = ~np.isfinite(r) | (r < 0)
    if np.any(bad):
        got = float(r) if r.ndim == 0 else f"array with {int(bad.sum())} value(s) out of range, e.g. {float(r[bad][0])!r}"
        raise param_error(name, func, allowed, got)
    return r


def _times_4_pow(c: float, e2: int, r: np.ndarray) -> np.ndarray | float:
    """``c · 2^e2 · 4^(−r)`` correctly rounded, with no overflow or underflow on the way."""
    k = np.floor(r)
    ex = np.clip(e2 - 2.0 * k, -5000, 5000).astype(np.int32)  # (beyond ±5000 the answer is 0 or inf anyway)
    out = _ldexp(c * 4.0 ** (k - r), ex)
    return float(out) if np.ndim(out) == 0 else out


def _leaves(prior: Prior, w: float = 1.0) -> list[tuple[float, Prior]]:
    """The components of a (nested) mixture that are not mixtures, with their total weights."""
    if isinstance(prior, Mixture):
        return [leaf for wi, c in zip(prior.weights, prior.components, strict=True) for leaf in _leaves(c, w * wi)]
    return [(w, prior)]


def _unit_mixture(prior: Mixture) -> tuple[Prior, int]:
    """``(p, e)``: the mixture of ``X · 2^-e`` at unit scale, centred at 0 when its components allow it.

    The density integrals below are invariant under translation, so a common offset of the components
    (which would cost float resolution relative to their widths) is removed first.
    """
    p, e = _standardised(prior)
    leaves = _leaves(p)
    if all(isinstance(c, (Gaussian, Laplace)) for _, c in leaves):
        mu = p.mean
        if mu != 0.0:
            comps = [type(c)(c.scale, loc=c.loc - mu) for _, c in leaves]
            q, e2 = _standardised(Mixture([w for w, _ in leaves], comps))
            return q, e + e2
    return p, e


def _density_integral(pdf, parts, g) -> float:
    """``∫ g(pdf(x)) dx`` over the union of the supports of ``parts``.

    ``parts`` are ``(ppf, mean, std, (lo, hi))`` of the components of the density: the integral is
    split at every component's quantiles and at its ``mean ± k·std`` (``k`` up to 128), so that no
    narrow component (or far-away mode) hides between quadrature nodes.
    """
    from scipy import integrate

    lo = min(s[0] for *_, s in parts)
    hi = max(s[1] for *_, s in parts)
    pts = set()
    for ppf, mean, std, (a, b) in parts:
        try:
            qs = np.asarray(ppf(np.array(_SPLIT_Q)), dtype=float).ravel()
        except (NotImplementedError, AttributeError):  # (a user prior without a ppf: moments only)
            qs = np.array([])
        ks = np.array(_SPLIT_K)
        for v in np.concatenate([qs, mean - std * ks, mean + std * ks]):
            if math.isfinite(v):
                pts.add(float(min(max(v, a), b)))
    edges = sorted({v for v in pts if lo < v < hi} | {lo, hi})

    def f(x):
        p = float(pdf(x))
        return g(p) if p < math.inf else 0.0  # (a node rounded onto a pole of the density: measure zero)

    total = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # (a piece at float resolution cannot reach epsrel: it is negligible)
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if b > a:
                total.append(integrate.quad(f, a, b, limit=200, epsabs=1e-15, epsrel=1e-11)[0])
    return math.fsum(total)


def _support(prior: Prior) -> tuple[float, float]:
    return tuple(prior._support) if isinstance(prior, ScipyPrior) else (-math.inf, math.inf)


def _cbrt(p: float) -> float:
    return p ** (1.0 / 3.0) if p > 0 else 0.0


def _neg_p_log_p(p: float) -> float:
    return -p * math.log(p) if p > 0 else 0.0


def _check_continuous(prior: Prior, func: str, allowed: str) -> None:
    if isinstance(prior, (Empirical, Rectified)) or prior.kind != "continuous":
        raise param_error("prior", func, allowed, repr(prior))


def _unit_integral(prior: Prior, g, func: str, allowed: str) -> tuple[float, float, int]:
    """``(J, s, e)`` with ``∫ g(p_Y(y)) dy = J`` for ``Y = X / (s · 2^e)`` (a prior without a closed form).

    A :class:`ScipyPrior` is integrated in its standard coordinate (``s`` its scale), a mixture at
    unit scale and centred, any other continuous prior with a ``pdf`` at unit scale (``s = 1``).
    """
    _check_continuous(prior, func, allowed)
    if isinstance(prior, ScipyPrior):  # in the standard coordinate z = (x − loc) / scale
        e = _pow2_exponent(prior._scale)
        su = math.ldexp(prior._scale, -e)
        if prior._hist is not None:  # (piecewise constant: exact)
            edges, dens = prior._hist
            vals = np.array([g(float(d)) for d in dens])
            return float(math.fsum(np.diff(edges) * vals)), su, e
        d = prior._sdist
        return _density_integral(d.pdf, [(d.ppf, prior._mean0, prior._std0, prior._zsupport)], g), su, e
    p, e = _unit_mixture(prior) if isinstance(prior, Mixture) else _standardised(prior)
    if not hasattr(p, "pdf"):
        raise param_error("prior", func, allowed, repr(prior))
    parts = [(c.ppf, c.mean, c.std, _support(c)) for _, c in _leaves(p)]
    return _density_integral(p.pdf, parts, g), 1.0, e


# ============================================================================ Panter–Dite
def _panter_dite_constant(prior: Prior) -> tuple[float, int]:
    """``(c, e)`` with ``(1/12)(∫p^(1/3))³ = c · 4^e`` (closed forms for Laplace and Gaussian)."""
    func, allowed = "panter_dite", "a continuous prior with a density"
    if isinstance(prior, Laplace):  # 9 b²
        e = _pow2_exponent(prior.b)
        return 9.0 * math.ldexp(prior.b, -e) ** 2, e
    if isinstance(prior, Gaussian):  # √3·π/2 · σ²
        e = _pow2_exponent(prior.sigma)
        return math.sqrt(3.0) * math.pi / 2.0 * math.ldexp(prior.sigma, -e) ** 2, e
    # ∫p^(1/3) scales as scale^(2/3), so (∫p^(1/3))³ as scale²
    j, s, e = _unit_integral(prior, _cbrt, func, allowed)
    return j**3 / 12.0 * s * s, e


def panter_dite(prior: PriorLike, bits: ArrayLike) -> np.ndarray | float:
    """Panter–Dite high-rate MSE of the optimal non-uniform quantizer: ``(1/12)(∫p^(1/3))³·4^(−R)``.

    Closed forms for Laplace (``9 b²``) and Gaussian (``√3·π/2·σ²``) priors; otherwise
    ``∫p^(1/3)`` by quadrature in the prior's standard coordinate (a mixture: at unit scale, split
    at every component's quantiles and at its ``mean ± k·std``, so that narrow components and
    far-apart modes are not missed). Scale-equivariant from 1e-300 to 1e300: a value beyond the
    float64 range is ``inf`` (or ``0.0``).

    Parameters
    ----------
    prior : prior-like
        A continuous prior (not samples, not a rectified prior with its atom at 0).
    bits : float or array_like
        Rate ``R`` in bits per sample, ``>= 0``.

    Returns
    -------
    float or ndarray
        The high-rate MSE, with the shape of ``bits``.

    Examples
    --------
    >>> round(panter_dite("gaussian", 0) , 4)   # √3·π/2
    2.7207
    >>> round(panter_dite("laplace", 0), 4)     # 9 b²
    9.0
    """
    func = "panter_dite"
    prior = as_prior(prior, func=func)
    r = _check_rate(bits, "bits", func)
    c, e = _panter_dite_constant(prior)
    return _times_4_pow(c, 2 * e, r)


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


_LN2 = math.log(2.0)


def _entropy_parts(prior: Prior, func: str) -> tuple[float, int]:
    """``(h0, e)`` with the differential entropy ``h = h0 + e·ln 2`` (``h0`` that of ``X / 2^e``)."""
    if isinstance(prior, Laplace):  # 1 + ln(2b)
        e = _pow2_exponent(prior.b)
        return 1.0 + math.log(2.0 * math.ldexp(prior.b, -e)), e
    if isinstance(prior, Gaussian):  # ½ ln(2πe σ²)
        e = _pow2_exponent(prior.sigma)
        return 0.5 * math.log(2 * math.pi * math.e * math.ldexp(prior.sigma, -e) ** 2), e
    allowed = "a continuous prior (atoms and samples have no differential entropy)"
    _check_continuous(prior, func, allowed)
    if isinstance(prior, ScipyPrior):  # h(loc + scale·Z) = h(Z) + ln(scale)
        e = _pow2_exponent(prior._scale)
        return float(prior._sdist.entropy()) + math.log(math.ldexp(prior._scale, -e)), e
    h, s, e = _unit_integral(prior, _neg_p_log_p, func, allowed)
    return h + math.log(s), e


def differential_entropy(prior: PriorLike) -> float:
    """Differential entropy ``h = −∫ p log p`` in nats.

    Closed forms for Laplace (``1 + ln 2b``) and Gaussian (``½ ln 2πeσ²``) priors; ``scipy.stats``'s
    entropy of the standard distribution plus ``ln(scale)`` for a :class:`~qtheory.ScipyPrior`; for a
    mixture, quadrature at unit scale split at every component's quantiles and ``mean ± k·std``
    (plus ``e·ln 2`` for the power of two ``2^e`` it was scaled by), so any scale from 1e-300 to
    1e300 is exact.

    Parameters
    ----------
    prior : prior-like
        A continuous prior (not samples, not a rectified prior with its atom at 0).

    Returns
    -------
    float
        ``h`` in nats.

    Examples
    --------
    >>> round(differential_entropy("gaussian"), 6)   # ½ log(2πe)
    1.418939
    """
    func = "differential_entropy"
    prior = as_prior(prior, func=func)
    h0, e = _entropy_parts(prior, func)
    return float(h0 + e * _LN2)


def rate_distortion(prior: PriorLike, rate: ArrayLike) -> RateDistortion:
    """Distortion–rate function ``D(R)`` for squared error.

    Exact for a Gaussian, ``σ²·4^(−R)``; for any other continuous prior the Shannon lower bound
    ``e^(2h)/(2πe)·4^(−R)`` (tight as ``R → ∞``; ``σ²·4^(−R)`` is an upper bound). Computed at
    unit scale and scaled back by a power of two, so a distortion beyond the float64 range is
    ``inf`` (or ``0.0``), never an error.

    Parameters
    ----------
    prior : prior-like
        A continuous prior (not samples, not a rectified prior with its atom at 0).
    rate : float or array_like
        Bits per sample, ``>= 0``.

    Returns
    -------
    RateDistortion

    Examples
    --------
    >>> r = rate_distortion("laplace", 4)
    >>> r.kind, round(float(r.distortion) * 256, 4)    # 2e b²/π at R = 0
    ('shannon_lower_bound', 1.7305)
    """
    func = "rate_distortion"
    prior = as_prior(prior, func=func)
    r = _check_rate(rate, "rate", func)
    h0, e = _entropy_parts(prior, func)
    if isinstance(prior, Gaussian):
        d, kind = _times_4_pow(math.ldexp(prior.sigma, -e) ** 2, 2 * e, r), "exact"
    else:
        d, kind = _times_4_pow(math.exp(2 * h0) / (2 * math.pi * math.e), 2 * e, r), "shannon_lower_bound"
    return RateDistortion(float(r) if r.ndim == 0 else r, d, kind, float(h0 + e * _LN2))


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
