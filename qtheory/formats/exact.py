"""Exact MSE of any level-set quantizer under a prior, its Monte-Carlo check, and the MSE-optimal scale."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._results import ResultMixin
from .._typing import ArrayLike, PriorLike, RNGLike
from .._validation import check_int, check_option, check_real, param_error
from ..mse import MSEResult
from ..priors import (
    Empirical,
    Gaussian,
    Laplace,
    Prior,
    ScipyPrior,
    _ldexp,
    _pow2_exponent,
    _standardised,
    as_prior,
)
from ..quantizer import CODEBOOK, LevelSet, Quantizer
from .element import FormatInfo

__all__ = ["element_quantizer", "level_set_mse", "optimal_scale", "ScaleResult", "StudentT", "Uniform", "fast_prior"]


def element_quantizer(codebook: str | LevelSet | FormatInfo | ArrayLike, scale: float = 1.0, *, rounding: str = "half_even") -> Quantizer:
    """The :class:`~qtheory.Quantizer` whose levels are ``scale × codebook`` (saturating, ties per ``rounding``).

    Examples
    --------
    >>> q = element_quantizer("fp4_e2m1fn", 0.5)
    >>> q.alpha, q.quantize([0.3, 0.37, 0.38, 10.0]).tolist()
    (3.0, [0.25, 0.25, 0.5, 3.0])
    """
    from ..quantizer import _as_levelset

    cb = _as_levelset(codebook, "element_quantizer")
    scale = check_real(scale, "scale", "element_quantizer", 0.0, low_open=True)
    bits = max(1, math.ceil(math.log2(cb.levels.size)))
    return Quantizer(bits, scale * cb.amax, CODEBOOK, rounding, codebook=cb)


# ----------------------------------------------------------------------------- priors
class StudentT(Prior):
    """Student-t(ν) prior with scale ``sigma`` and closed-form partial moments (ν > 2).

    ``∫x f = −(ν + x²) f/(ν − 1)`` and ``∫x² f = (ν F − x(ν + x²) f)/(ν − 2)`` (f, F standard t).

    >>> p = StudentT(5.0)
    >>> round(p.var, 12)
    1.666666666667
    """

    name = "t"

    def __init__(self, nu: float, sigma: float = 1.0):
        self.nu = check_real(nu, "nu", "StudentT", 2.0, low_open=True)
        self.sigma = check_real(sigma, "sigma", "StudentT", 0.0, low_open=True)
        from scipy import stats

        self._dist = stats.t(self.nu)

    def __repr__(self):
        return f"StudentT(nu={self.nu}, sigma={self.sigma})"

    @property
    def symmetric(self) -> bool:
        return True

    @property
    def var(self) -> float:
        return self.sigma**2 * self.nu / (self.nu - 2.0)

    @property
    def mean(self) -> float:
        return 0.0

    @property
    def scale(self) -> float:
        return self.sigma

    def _magnitude(self) -> float:
        return self.sigma

    def _scaled(self, e: int) -> StudentT:
        return StudentT(self.nu, math.ldexp(self.sigma, -e))

    def pdf(self, x):
        from scipy.special import gammaln

        nu, z = self.nu, np.asarray(x, float) / self.sigma
        c = math.exp(gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu)) / math.sqrt(nu * math.pi)
        return c * (1.0 + z * z / nu) ** (-0.5 * (nu + 1)) / self.sigma

    def cdf(self, x):
        return self._dist.cdf(np.asarray(x, float) / self.sigma)

    def sf(self, x):
        return self._dist.sf(np.asarray(x, float) / self.sigma)

    def abs_quantile(self, q):
        return float(self.sigma * self._dist.ppf(0.5 + 0.5 * q))

    def abs_isf(self, p):
        return self.sigma * self._dist.isf(0.5 * np.asarray(p, float))

    def _rvs(self, size, rng):
        return self.sigma * np.random.default_rng(rng).standard_t(self.nu, size)

    def _anti(self, x):
        """``(tail, sign, g1, h2)`` at ``x``: ``tail = P(Z < −|z|)``, and the two antiderivative terms."""
        from scipy.special import gammaln, stdtr

        nu = self.nu
        z = np.asarray(x, float) / self.sigma
        fin = np.isfinite(z)
        zf = np.where(fin, z, 0.0)
        c = math.exp(gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu)) / math.sqrt(nu * math.pi)
        f = np.where(fin, c * (1.0 + zf * zf / nu) ** (-0.5 * (nu + 1)), 0.0)
        tail = np.where(fin, stdtr(nu, -np.abs(zf)), 0.0)
        return tail, np.sign(z), -(nu + zf * zf) * f / (nu - 1.0), zf * (nu + zf * zf) * f

    def _moments_from(self, A, Bq):
        ta, sa, g1a, h2a = A
        tb, sb, g1b, h2b = Bq
        # P(a <= Z < b) from the tail each bound is in (accurate far from 0)
        cdf_a = np.where(sa > 0, 1.0 - ta, ta)
        cdf_b = np.where(sb > 0, 1.0 - tb, tb)
        m0 = np.where(sa > 0, ta - tb, np.where(sb <= 0, tb - ta, cdf_b - cdf_a))
        nu, s = self.nu, self.sigma
        m1 = g1b - g1a
        m2 = (nu * m0 - (h2b - h2a)) / (nu - 2.0)
        return m0, s * m1, s * s * m2

    def _partial_moments(self, a, b):
        return self._moments_from(self._anti(a), self._anti(b))

    def cut_sq_errors(self, cuts, y):
        """``interval_sq_error`` of the adjacent intervals ``[cuts[..., k], cuts[..., k+1])`` (one
        special-function call per cut point instead of two per interval)."""
        A = self._anti(cuts)
        lo = tuple(v[..., :-1] for v in A)
        hi = tuple(v[..., 1:] for v in A)
        m0, m1, m2 = self._moments_from(lo, hi)
        return np.maximum(m2 - 2.0 * y * m1 + y * y * m0, 0.0)


class Uniform(Prior):
    """Uniform prior on ``[-a, a]`` with closed-form partial moments (Kuzmin et al.'s U(−1, 1)).

    >>> Uniform(1.0).var
    0.3333333333333333
    """

    name = "uniform"

    def __init__(self, a: float = 1.0):
        self.a = check_real(a, "a", "Uniform", 0.0, low_open=True)

    def __repr__(self):
        return f"Uniform(a={self.a})"

    @property
    def symmetric(self) -> bool:
        return True

    @property
    def mean(self) -> float:
        return 0.0

    @property
    def var(self) -> float:
        return self.a**2 / 3.0

    @property
    def scale(self) -> float:
        return self.a

    def _magnitude(self) -> float:
        return self.a

    def _scaled(self, e: int) -> Uniform:
        return Uniform(math.ldexp(self.a, -e))

    def pdf(self, x):
        x = np.asarray(x, float)
        return np.where(np.abs(x) <= self.a, 0.5 / self.a, 0.0)

    def cdf(self, x):
        return np.clip((np.asarray(x, float) + self.a) / (2.0 * self.a), 0.0, 1.0)

    def sf(self, x):
        return 1.0 - self.cdf(x)

    def abs_quantile(self, q):
        return float(q * self.a)

    def _rvs(self, size, rng):
        return np.random.default_rng(rng).uniform(-self.a, self.a, size)

    def _partial_moments(self, a, b):
        lo, hi = np.clip(a, -self.a, self.a), np.clip(b, -self.a, self.a)
        c = 0.5 / self.a
        return c * (hi - lo), c * (hi**2 - lo**2) / 2.0, c * (hi**3 - lo**3) / 3.0

    def interval_sq_error(self, a, b, y):
        a, b, y = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, y)))
        lo, hi = np.clip(a, -self.a, self.a), np.clip(b, -self.a, self.a)
        return (0.5 / self.a) * ((hi - y) ** 3 - (lo - y) ** 3) / 3.0


def fast_prior(prior: PriorLike, func: str = "fast_prior") -> Prior:
    """``as_prior``, with a scipy Student-t (loc 0, ν > 2) mapped to the closed-form :class:`StudentT`."""
    p = as_prior(prior, func=func)
    if isinstance(p, ScipyPrior):
        d = p.dist
        if getattr(d.dist, "name", "") == "t" and len(d.args) == 1 and d.args[0] > 2:
            loc = d.kwds.get("loc", 0.0)
            if loc == 0.0:
                return StudentT(float(d.args[0]), float(d.kwds.get("scale", 1.0)))
    return p


def abs_sf(prior: Prior, m):
    """``P(|X| >= m)`` for ``m >= 0``, accurate in the tail."""
    m = np.asarray(m, float)
    if isinstance(prior, (Gaussian, Laplace, StudentT, Uniform)) and prior.mean == 0.0:
        return 2.0 * prior.sf(m)
    if hasattr(prior, "sf"):
        return prior.sf(m) + prior.cdf(-m)
    return 1.0 - (prior.cdf(m) - prior.cdf(-m))


def abs_isf(prior: Prior, p: float) -> float:
    """The ``m`` with ``P(|X| >= m) = p`` (bisection in log space where no closed form)."""
    if isinstance(prior, Gaussian) and prior.loc == 0.0:
        from scipy.special import ndtri

        return float(-prior.sigma * ndtri(0.5 * p))
    if isinstance(prior, Laplace) and prior.loc == 0.0:
        return float(-prior.b * math.log(p))
    if isinstance(prior, StudentT):
        return float(prior.abs_isf(p))
    if isinstance(prior, Uniform):
        return prior.a * (1.0 - p)
    lo, hi = 0.0, max(prior.abs_quantile(0.5), 1e-300)
    while abs_sf(prior, hi) > p:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if abs_sf(prior, mid) > p:
            lo = mid
        else:
            hi = mid
    return hi


# ----------------------------------------------------------------------------- exact MSE
def _check_quantizer(q, func):
    if not isinstance(q, Quantizer):
        raise param_error("quantizer", func, "a qtheory.Quantizer", type(q).__name__, TypeError)
    return q


def level_set_mse(prior: PriorLike, quantizer: Quantizer, *, method: str = "exact", n_samples: int = 1_000_000,
                  rng: RNGLike = None) -> MSEResult:
    """MSE of any quantizer (uniform or codebook) under ``prior``, bin by bin or by Monte Carlo.

    ``Σ_k ∫_{bin k} (x − y_k)² dP`` over the intervals between decision thresholds, plus the two
    saturating tails (the *clipping* part, beyond the overload points).

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior`; a scipy ``t`` with ν > 2 uses closed-form moments.
    quantizer : Quantizer
        Any grid, including ``grid="codebook"`` (see :func:`element_quantizer`).
    method : {"exact", "montecarlo"}
    n_samples : int
    rng : None, int or numpy.random.Generator

    Returns
    -------
    qtheory.MSEResult

    Examples
    --------
    >>> from qtheory import Quantizer, clipping_mse
    >>> q = element_quantizer("int4", 0.5)
    >>> float(level_set_mse("gaussian", q).mse) == float(clipping_mse("gaussian", 4.0, 4, grid="int").mse)
    True
    >>> r = level_set_mse("laplace", element_quantizer("fp8_e4m3fn", 2**-6), method="montecarlo", rng=1)
    >>> abs(r.mse - level_set_mse("laplace", element_quantizer("fp8_e4m3fn", 2**-6)).mse) < 5 * r.stderr
    True
    """
    from ..mse import _exact_parts_scaled, _result, quantizer_intervals

    func = "level_set_mse"
    method = check_option(method, "method", func, ("exact", "montecarlo"))
    q = _check_quantizer(quantizer, func)
    prior = fast_prior(prior, func)
    if method == "montecarlo":
        from .. import montecarlo

        n_samples = check_int(n_samples, "n_samples", func, 2, None)
        return montecarlo.mse(prior, q, n_samples=n_samples, rng=rng)
    if q.grid != CODEBOOK:
        c, r = _exact_parts_scaled(prior, q.bits, q.grid, q.rounding, q.alpha, q.beta)
        return _result(c, r, "exact", True)
    p, e = _unit(prior, q.alpha)
    qu = q._scaled(e) if e else q
    if isinstance(p, Empirical):
        x = p.x
        err = x - qu.quantize(x)
        lo, hi = qu.overload
        clip = (x < lo) | (x >= hi)
        n = x.size
        e2 = err * err  # pairwise summation: float64 rounding ~1e-16·log2(n) relative
        c, r = float(np.sum(e2[clip])) / n, float(np.sum(e2[~clip])) / n
    else:
        a, b, y, clip = quantizer_intervals(qu)
        err = p.interval_sq_error(a, b, y)
        c, r = math.fsum(err[clip]), math.fsum(err[~clip])
    return _result(float(_ldexp(c, 2 * e)), float(_ldexp(r, 2 * e)), "exact", True)


def _unit(prior: Prior, alpha: float | None = None) -> tuple[Prior, int]:
    """``(the prior of X / 2^e, e)``, ``2^e`` a power of two near the size of ``X`` (or of the clip
    ``alpha`` where that is far above it): :func:`qtheory.priors._standardised`.

    The formats code works on ``X / 2^e`` and scales its answers back: a power-of-two scaling
    changes no significand, so results are scale-equivariant from 1e-300 to 1e300, and an MSE
    underflows to 0 or overflows to inf only where the true one lies outside the float64 range.
    """
    p, e = _standardised(prior)
    if alpha is not None and _pow2_exponent(alpha) - e > 400:  # (a clip far beyond the prior)
        p, e = _standardised(prior, _pow2_exponent(alpha))
    return p, e


@dataclass(frozen=True)
class ScaleResult(ResultMixin):
    """The MSE-optimal per-tensor scale of a codebook: ``scale``, ``alpha = scale·amax``, ``mse``, ``sqnr_db``."""

    codebook: str
    scale: float
    alpha: float
    mse: float
    sqnr_db: float


_TIE_DIGITS = 10   # optimal_scale: minima whose MSEs agree to 1e-10 (relative) are ties


def optimal_scale(prior: PriorLike, codebook: str | LevelSet | FormatInfo | ArrayLike, *, n_grid: int = 160) -> ScaleResult:
    """The per-tensor scale ``s`` minimising the exact MSE of ``s × codebook`` under ``prior``.

    A log-spaced scan of the clip ``alpha = s·amax`` over ``[q(0.5)/4, 64·q(1 − 1e-12)]`` (``q`` the
    quantiles of ``|X|``), then a bounded Brent search around every local minimum of the scan;
    the best is returned. The MSE of a floating-point codebook has many shallow local minima (one
    per binade); the scan keeps the global one. Minima whose MSEs agree to 1e-10 (relative) are
    ties — for a float codebook whose ends do not matter they are equal up to rounding — and the
    smallest clip among them is returned, so the choice does not depend on the CPU's rounding.

    Examples
    --------
    >>> r = optimal_scale("gaussian", "int4")
    >>> from qtheory import optimal_clip
    >>> abs(r.mse - optimal_clip("gaussian", 4, grid="int").mse) < 1e-9
    True
    >>> round(optimal_scale("gaussian", "fp8_e4m3fn").sqnr_db, 1)
    31.6
    """
    from scipy.optimize import minimize_scalar

    from ..quantizer import _as_levelset

    func = "optimal_scale"
    prior = fast_prior(prior, func)
    cb: LevelSet = _as_levelset(codebook, func)
    n_grid = check_int(n_grid, "n_grid", func, 8, 100_000)
    prior, e = _unit(prior)  # (the search runs at unit scale; answers are scaled back exactly)
    lo = prior.abs_quantile(0.5) / 4.0
    hi = 64.0 * (float(np.max(np.abs(prior.x))) if isinstance(prior, Empirical) else abs_isf(prior, 1e-12))
    var = float(np.mean(prior.x**2)) if isinstance(prior, Empirical) else prior.var + prior.mean**2

    def mse(log_alpha):
        return float(level_set_mse(prior, element_quantizer(cb, math.exp(log_alpha) / cb.amax)).mse)

    grid = np.linspace(math.log(lo), math.log(hi), n_grid)
    vals = np.array([mse(g) for g in grid])
    found = [(float(grid[i]), float(vals[i])) for i in range(n_grid)]
    cand = [i for i in range(n_grid) if vals[i] <= vals[max(i - 1, 0)] and vals[i] <= vals[min(i + 1, n_grid - 1)]]
    # Minima equal to rounding (a float codebook is invariant under ×2 away from its ends, so one
    # minimum per binade can tie to 1e-14) are ordered and chosen by the clip, not by their last bits.
    vmin = float(np.min(vals))
    cand = sorted(cand, key=lambda i: (round(float(vals[i]) / vmin, _TIE_DIGITS), i))[:6]
    for i in cand:
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
        r = minimize_scalar(mse, bounds=(a, b), method="bounded", options={"xatol": 1e-10})
        found.append((float(r.x), float(r.fun)))
    best_v = min(v for _, v in found)
    best_x, best_v = min((x, v) for x, v in found if v <= best_v * (1.0 + 10.0**-_TIE_DIGITS))
    alpha = math.exp(best_x)
    return ScaleResult(cb.name, float(_ldexp(alpha / cb.amax, e)), float(_ldexp(alpha, e)),
                       float(_ldexp(best_v, 2 * e)), 10.0 * math.log10(var / best_v))
