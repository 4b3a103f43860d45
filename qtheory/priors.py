"""Priors: the distribution of the values being quantized.

Wherever qtheory expects a prior it accepts (through :func:`as_prior`):

- the names ``"laplace"`` / ``"gaussian"`` (``"normal"``), unit scale;
- a frozen continuous ``scipy.stats`` distribution (``norm`` and ``laplace`` are mapped to the
  closed-form :class:`Gaussian` and :class:`Laplace`);
- a 1-D array of samples (:class:`Empirical`);
- a :class:`Prior` (including :class:`Rectified` and :class:`Mixture`).

Every prior exposes the one quantity the exact MSE needs, the *interval squared error*
``∫_a^b (x − y)² dP(x)``, and the partial moments ``∫_a^b x^j dP(x)`` (j = 0, 1, 2), vectorised over
intervals. Laplace and Gaussian use closed forms; scipy distributions use adaptive quadrature;
samples use exact sums.

Examples
--------
>>> from qtheory import as_prior
>>> p = as_prior("laplace")
>>> p
Laplace(b=1.0, loc=0.0)
>>> float(p.interval_sq_error(1.0, float("inf"), 1.0))   # E[(X-1)^2; X>1] = e^-1
0.36787944117144233
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validation import check_option, check_real, check_samples, param_error

__all__ = [
    "Prior",
    "Laplace",
    "Gaussian",
    "ScipyPrior",
    "Empirical",
    "Rectified",
    "Mixture",
    "as_prior",
    "fit_prior",
    "FitResult",
]

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _bcast(*arrays):
    return np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))


class Prior:
    """Base class of qtheory priors (not a ``scipy.stats`` subclass).

    Subclasses implement ``_partial_moments(a, b)`` on arrays with ``a <= b`` and may override
    ``interval_sq_error`` with a more accurate form.
    """

    #: "continuous", "mixed" (continuous + atoms) or "samples"
    kind = "continuous"
    name = "prior"

    # -- moments -------------------------------------------------------------------------------
    def partial_moments(self, a, b):
        """Return ``(m0, m1, m2)`` with ``mj = ∫_a^b x^j dP(x)`` (arrays; ``a``/``b`` may be ±inf).

        Intervals are half-open ``[a, b)``, which matters only for atoms and samples.
        """
        a, b = _bcast(a, b)
        if np.any(b < a):
            raise ValueError("partial_moments needs a <= b elementwise")
        return self._partial_moments(a, b)

    def interval_sq_error(self, a, b, y):
        """``∫_a^b (x − y)² dP(x)`` for arrays ``a <= b`` and reconstruction values ``y``."""
        a, b, y = _bcast(a, b, y)
        m0, m1, m2 = self.partial_moments(a, b)
        return np.maximum(m2 - 2.0 * y * m1 + y * y * m0, 0.0)

    def prob(self, a, b):
        """``P(a <= X < b)``."""
        return self.partial_moments(a, b)[0]

    # -- summary ---------------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return float(self.partial_moments(-np.inf, np.inf)[1])

    @property
    def var(self) -> float:
        _, m1, m2 = self.partial_moments(-np.inf, np.inf)
        return float(m2 - m1 * m1)

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    @property
    def scale(self) -> float:
        """The natural scale used to express clipping ratios (``b``, ``σ``, or the std)."""
        return self.std

    def abs_quantile(self, q: float) -> float:
        """A value ``t`` with ``P(|X| <= t) >= q`` (used to bracket clip searches)."""
        raise NotImplementedError

    def rvs(self, size, rng=None) -> np.ndarray:
        """Draw samples with an explicit generator (``None``/int/``np.random.Generator``)."""
        raise NotImplementedError

    @property
    def symmetric(self) -> bool:
        """Whether the prior is symmetric about 0."""
        return False

    @property
    def nonnegative(self) -> bool:
        return False


# ================================================================================ closed forms
@dataclass(frozen=True, repr=False)
class Laplace(Prior):
    """Laplace prior with density ``exp(-|x - loc| / b) / (2 b)``.

    Examples
    --------
    >>> p = Laplace(b=2.0)
    >>> p.var
    8.0
    >>> float(p.prob(0.0, float("inf")))
    0.5
    """

    b: float = 1.0
    loc: float = 0.0
    name = "laplace"

    def __post_init__(self):
        object.__setattr__(self, "b", check_real(self.b, "b", "Laplace", 0.0, low_open=True))
        object.__setattr__(self, "loc", check_real(self.loc, "loc", "Laplace"))

    def __repr__(self):
        return f"Laplace(b={self.b}, loc={self.loc})"

    @property
    def scale(self) -> float:
        return self.b

    @property
    def mean(self) -> float:
        return self.loc

    @property
    def var(self) -> float:
        return 2.0 * self.b**2

    @property
    def symmetric(self) -> bool:
        return self.loc == 0.0

    def pdf(self, x):
        return np.exp(-np.abs(np.asarray(x, float) - self.loc) / self.b) / (2 * self.b)

    def cdf(self, x):
        z = (np.asarray(x, float) - self.loc) / self.b
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))

    def sf(self, x):
        return self.cdf(2 * self.loc - np.asarray(x, float))

    def abs_quantile(self, q):
        return abs(self.loc) + self.b * -math.log1p(-q)

    def rvs(self, size, rng=None):
        return np.random.default_rng(rng).laplace(self.loc, self.b, size)

    def _partial_moments(self, a, b):
        # Standardise, then use the one-sided antiderivatives on x >= 0 and mirror for x < 0.
        za, zb = (a - self.loc) / self.b, (b - self.loc) / self.b
        m = [np.zeros_like(za) for _ in range(3)]
        # positive part [max(za,0), max(zb,0)]
        lo, hi = np.maximum(za, 0.0), np.maximum(zb, 0.0)
        pos = [_exp_tail_moment(lo, j) - _exp_tail_moment(hi, j) for j in range(3)]
        # negative part [min(za,0), min(zb,0)] mirrored to [-min(zb,0), -min(za,0)]
        lo, hi = -np.minimum(zb, 0.0), -np.minimum(za, 0.0)
        neg = [(-1) ** j * (_exp_tail_moment(lo, j) - _exp_tail_moment(hi, j)) for j in range(3)]
        z0, z1, z2 = (0.5 * (p + n) for p, n in zip(pos, neg, strict=True))
        # back to x = loc + b z
        L, B = self.loc, self.b
        m[0] = z0
        m[1] = L * z0 + B * z1
        m[2] = L * L * z0 + 2 * L * B * z1 + B * B * z2
        return tuple(m)

    def interval_sq_error(self, a, b, y):
        # Centred closed form: on each side of loc, ∫ (z - w)^2 e^{-z} dz has antiderivative
        # -e^{-z} ((z - w)^2 + 2 (z - w) + 2); this avoids m2 - 2 y m1 + y^2 m0 cancellation.
        a, b, y = _bcast(a, b, y)
        za, zb, w = (a - self.loc) / self.b, (b - self.loc) / self.b, (y - self.loc) / self.b
        lo, hi = np.maximum(za, 0.0), np.maximum(zb, 0.0)
        pos = _exp_sq_err(lo, hi, w)
        lo, hi = -np.minimum(zb, 0.0), -np.minimum(za, 0.0)
        neg = _exp_sq_err(lo, hi, -w)
        return 0.5 * self.b**2 * (pos + neg)


def _exp_tail_moment(t, j):
    """∫_t^∞ z^j e^{-z} dz for t >= 0 (inf -> 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(-t)
        poly = {0: 1.0, 1: t + 1.0, 2: t * t + 2.0 * t + 2.0}[j]
        return np.where(np.isinf(t), 0.0, e * poly)


def _exp_sq_err(lo, hi, w):
    """∫_lo^hi (z - w)^2 e^{-z} dz for 0 <= lo <= hi (hi may be inf)."""
    with np.errstate(invalid="ignore", over="ignore"):
        d_lo = lo - w
        g_lo = np.exp(-lo) * (d_lo * d_lo + 2.0 * d_lo + 2.0)
        d_hi = hi - w
        g_hi = np.where(np.isinf(hi), 0.0, np.exp(-hi) * (d_hi * d_hi + 2.0 * d_hi + 2.0))
        out = np.where(hi > lo, g_lo - g_hi, 0.0)
    return np.maximum(out, 0.0)


@dataclass(frozen=True, repr=False)
class Gaussian(Prior):
    """Gaussian prior ``N(loc, sigma²)``.

    Examples
    --------
    >>> p = Gaussian(sigma=3.0)
    >>> p.var
    9.0
    >>> round(float(p.prob(-3.0, 3.0)), 6)
    0.682689
    """

    sigma: float = 1.0
    loc: float = 0.0
    name = "gaussian"

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_real(self.sigma, "sigma", "Gaussian", 0.0, low_open=True))
        object.__setattr__(self, "loc", check_real(self.loc, "loc", "Gaussian"))

    def __repr__(self):
        return f"Gaussian(sigma={self.sigma}, loc={self.loc})"

    @property
    def scale(self) -> float:
        return self.sigma

    @property
    def mean(self) -> float:
        return self.loc

    @property
    def var(self) -> float:
        return self.sigma**2

    @property
    def symmetric(self) -> bool:
        return self.loc == 0.0

    def pdf(self, x):
        z = (np.asarray(x, float) - self.loc) / self.sigma
        return np.exp(-0.5 * z * z) / (_SQRT2PI * self.sigma)

    def cdf(self, x):
        from scipy.special import ndtr

        return ndtr((np.asarray(x, float) - self.loc) / self.sigma)

    def sf(self, x):
        from scipy.special import ndtr

        return ndtr(-(np.asarray(x, float) - self.loc) / self.sigma)

    def abs_quantile(self, q):
        from scipy.special import ndtri

        return abs(self.loc) + self.sigma * float(ndtri(0.5 + 0.5 * q))

    def rvs(self, size, rng=None):
        return np.random.default_rng(rng).normal(self.loc, self.sigma, size)

    def _std_moments(self, za, zb):
        from scipy.special import ndtr

        # P(za <= Z < zb) computed on the side where it does not cancel
        p = np.where(za > 0, ndtr(-za) - ndtr(-zb), ndtr(zb) - ndtr(za))
        with np.errstate(invalid="ignore"):
            pa = np.exp(-0.5 * za * za) / _SQRT2PI
            pb = np.exp(-0.5 * zb * zb) / _SQRT2PI
            zpa = np.where(np.isinf(za), 0.0, za * pa)
            zpb = np.where(np.isinf(zb), 0.0, zb * pb)
        return p, pa, pb, zpa, zpb

    def _partial_moments(self, a, b):
        za, zb = (a - self.loc) / self.sigma, (b - self.loc) / self.sigma
        p, pa, pb, zpa, zpb = self._std_moments(za, zb)
        z0, z1, z2 = p, pa - pb, p + zpa - zpb
        L, S = self.loc, self.sigma
        return z0, L * z0 + S * z1, L * L * z0 + 2 * L * S * z1 + S * S * z2

    def interval_sq_error(self, a, b, y):
        # ∫ (z-w)^2 φ = (1+w^2) P - [(z - 2w) φ(z)]_a^b, in standard units.
        a, b, y = _bcast(a, b, y)
        za, zb, w = (a - self.loc) / self.sigma, (b - self.loc) / self.sigma, (y - self.loc) / self.sigma
        p, pa, pb, zpa, zpb = self._std_moments(za, zb)
        out = (1.0 + w * w) * p + (zpa - 2.0 * w * pa) - (zpb - 2.0 * w * pb)
        return self.sigma**2 * np.maximum(np.where(zb > za, out, 0.0), 0.0)


# ================================================================================ scipy.stats
class ScipyPrior(Prior):
    """Any frozen continuous ``scipy.stats`` distribution with a finite variance.

    The interval squared errors are computed by adaptive quadrature of
    ``(x − y)² pdf(x)`` (``scipy.integrate.quad_vec`` over all finite intervals at once,
    ``scipy.integrate.quad`` for the two infinite ones), restricted to the support.

    Examples
    --------
    >>> from scipy import stats
    >>> p = ScipyPrior(stats.logistic())
    >>> round(p.var, 10) == round(float(stats.logistic().var()), 10)
    True
    """

    def __init__(self, dist, *, epsrel: float = 1e-13):
        _check_frozen_continuous(dist, "prior")
        var = float(dist.var())
        if not np.isfinite(var):
            raise param_error(
                "prior", "ScipyPrior", "a distribution with finite variance",
                f"{_dist_name(dist)} with variance {var}",
            )
        self.dist = dist
        self.epsrel = epsrel
        self.name = _dist_name(dist)
        self._var = var
        self._mean = float(dist.mean())
        lo, hi = dist.support()
        self._support = (float(lo), float(hi))

    def __repr__(self):
        args = ", ".join([*(f"{a!r}" for a in self.dist.args), *(f"{k}={v!r}" for k, v in self.dist.kwds.items())])
        return f"ScipyPrior({self.name}({args}))"

    @property
    def mean(self):
        return self._mean

    @property
    def var(self):
        return self._var

    @property
    def symmetric(self) -> bool:
        x = np.array([0.3, 1.0, 2.7]) * math.sqrt(self._var)
        return bool(np.allclose(self.dist.pdf(x), self.dist.pdf(-x), rtol=1e-12, atol=0))

    @property
    def nonnegative(self) -> bool:
        return self._support[0] >= 0

    def pdf(self, x):
        return self.dist.pdf(x)

    def cdf(self, x):
        return self.dist.cdf(x)

    def sf(self, x):
        return self.dist.sf(x)

    def abs_quantile(self, q):
        t = (1.0 - q) / 2.0
        return float(max(abs(self.dist.ppf(t)), abs(self.dist.isf(t))))

    def rvs(self, size, rng=None):
        return self.dist.rvs(size=size, random_state=np.random.default_rng(rng))

    def _integrate(self, a, b, weight):
        """∫_a^b weight(x, idx) pdf(x) dx for arrays of intervals, in one ``quad_vec`` call.

        Finite intervals are mapped linearly onto [0, 1]; half-infinite ones through
        ``x = a ± σ·(t / (1 − t))²`` (σ the standard deviation); the whole line is split at 0.
        """
        from scipy import integrate

        lo_s, hi_s = self._support
        a = np.clip(np.asarray(a, dtype=float), lo_s, hi_s).ravel()
        b = np.clip(np.asarray(b, dtype=float), lo_s, hi_s).ravel()
        shape = np.broadcast(a, b).shape
        both = np.isinf(a) & np.isinf(b) & (b > a)
        if np.any(both):  # split (-inf, inf) at 0
            a2, b2 = np.where(both, 0.0, a), b
            b1 = np.where(both, 0.0, b)
            first = self._integrate(a, b1, weight)
            extra = np.zeros_like(first)
            idx = np.flatnonzero(both)
            extra[idx] = self._integrate(a2[idx], b2[idx], lambda x, i: weight(x, idx[i]))
            return first + extra
        out = np.zeros(shape, dtype=np.float64)
        idx = np.flatnonzero(b > a)
        if idx.size == 0:
            return out
        aa, bb = a[idx], b[idx]
        up = np.isinf(bb)  # [a, inf)
        down = np.isinf(aa)  # (-inf, b]
        base = np.where(down, bb, aa)
        width = np.where(up | down, 1.0, bb - aa)
        sign = np.where(down, -1.0, 1.0)
        tail = up | down
        sc = math.sqrt(self._var) if self._var > 0 else 1.0

        def f(t):
            t = np.float64(t)  # quad_vec may pass a Python float: t = 1 must give inf, not an error
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                # tails: x = a ± sc·r², r = t / (1 − t): the squared map keeps (x − y)²·pdf(x)·dx/dt
                # bounded near t = 1 for tails as heavy as x^(-3.5) (Student-t, df 2.5)
                r = t / (1.0 - t)
                x = np.where(tail, base + sign * sc * r * r, base + t * width)
                jac = np.where(tail, 2.0 * sc * r / (1.0 - t) ** 2, width)
                v = jac * weight(x, idx) * self.dist.pdf(x)
            return np.where(np.isfinite(v), v, 0.0)

        val, _ = integrate.quad_vec(f, 0.0, 1.0, epsrel=self.epsrel, epsabs=0.0, limit=2000)
        out[idx] = val
        return out

    def _partial_moments(self, a, b):
        return tuple(self._integrate(a, b, lambda x, idx, j=j: x**j) for j in range(3))

    def interval_sq_error(self, a, b, y):
        a, b, y = _bcast(a, b, y)
        yf = np.ascontiguousarray(y).ravel()
        return self._integrate(np.array(a), np.array(b), lambda x, idx: (x - yf[idx]) ** 2)


# ================================================================================ samples
class Empirical(Prior):
    """The empirical distribution of a 1-D array of samples (each with mass 1/N).

    Intervals are half-open ``[a, b)``. MSEs are exact sums over the samples.

    Examples
    --------
    >>> p = Empirical([0.0, 1.0, 2.0, 3.0])
    >>> p.mean, p.var
    (1.5, 1.25)
    >>> float(p.prob(1.0, 3.0))
    0.5
    """

    kind = "samples"
    name = "empirical"

    def __init__(self, x, *, _name: str = "samples", _func: str = "Empirical"):
        arr = np.asarray(x) if isinstance(x, np.ndarray) and x.dtype.kind in "biuf" else None
        if arr is None or arr.ndim != 1 or arr.size == 0:
            arr = check_samples(x, _name, _func)
        # (float32/float64 arrays are kept as they are: validated with two reductions, no copy)
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        arr = np.ascontiguousarray(arr)
        if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
            check_samples(arr, _name, _func)  # (raises, counting the non-finite values)
        x = arr
        self._raw = x
        self.n = x.size
        self._sorted = None
        self._prep = None

    @property
    def x(self) -> np.ndarray:
        """The samples in increasing order, float64 (sorted on first use)."""
        if self._sorted is None:
            self._sorted = np.sort(self._raw.astype(np.float64, copy=False))
        return self._sorted

    def prepared(self):
        """The samples prepared for fast exact MSE evaluation (:class:`qtheory.empirical.EmpiricalMSE`,
        built on first use; no sort)."""
        if self._prep is None:
            from .empirical import EmpiricalMSE

            self._prep = EmpiricalMSE(self._raw, _name="samples", _func="Empirical")
        return self._prep

    def __repr__(self):
        return f"Empirical(n={self.n})"

    @property
    def mean(self):
        if self._prep is not None:
            return float(self._prep.mean)
        return float(np.mean(self._raw, dtype=np.float64))

    @property
    def var(self):
        if self._prep is not None:
            return float(self._prep.var)
        return float(np.var(self._raw, dtype=np.float64))

    @property
    def scale(self) -> float:
        """The std of the samples; ``max|x|`` for constant samples, 1.0 for all-zero ones."""
        if self._prep is not None:
            p = self._prep
            return p.std if p.std > 0 else (p.absmax if p.absmax > 0 else 1.0)
        sd = float(np.std(self._raw, dtype=np.float64))
        if sd > 0:
            return sd
        top = float(np.max(np.abs(self._raw)))
        return top if top > 0 else 1.0

    @property
    def symmetric(self) -> bool:
        return False

    @property
    def nonnegative(self) -> bool:
        return bool(np.min(self._raw) >= 0)

    def cdf(self, x):
        return np.searchsorted(self.x, x, side="right") / self.n

    def abs_quantile(self, q):
        return float(np.quantile(np.abs(self.x), q))

    def rvs(self, size, rng=None):
        return np.random.default_rng(rng).choice(self._raw, size=size, replace=True)

    def _partial_moments(self, a, b):
        ia = np.searchsorted(self.x, a, side="left")
        ib = np.searchsorted(self.x, b, side="left")
        c1 = np.concatenate([[0.0], np.cumsum(self.x)])
        c2 = np.concatenate([[0.0], np.cumsum(self.x**2)])
        return (ib - ia) / self.n, (c1[ib] - c1[ia]) / self.n, (c2[ib] - c2[ia]) / self.n

    def interval_sq_error(self, a, b, y):
        # exact: sum over the samples in each interval (no prefix-sum cancellation)
        a, b, y = _bcast(a, b, y)
        ia = np.searchsorted(self.x, a.ravel(), side="left")
        ib = np.searchsorted(self.x, b.ravel(), side="left")
        out = np.empty(ia.shape)
        for k, (i, j, yy) in enumerate(zip(ia, ib, y.ravel(), strict=True)):
            d = self.x[i:j] - yy
            out[k] = np.dot(d, d)
        return (out / self.n).reshape(a.shape)


# ================================================================================ combinators
class Rectified(Prior):
    """``max(X, 0)`` of a continuous prior: an atom ``P(X <= 0)`` at 0 plus the positive part.

    This is the prior of a post-ReLU activation. Use it with an unsigned grid.

    Examples
    --------
    >>> p = Rectified(Gaussian())
    >>> float(p.prob(-1.0, 1e-12))   # the atom at 0
    0.5
    >>> round(p.mean, 6)   # E[max(Z, 0)] = 1/sqrt(2 pi)
    0.398942
    """

    kind = "mixed"

    def __init__(self, base="gaussian"):
        base = as_prior(base, name="base", func="Rectified")
        if base.kind != "continuous":
            raise param_error("base", "Rectified", "a continuous prior", repr(base), TypeError)
        self.base = base
        self.atom = float(base.cdf(0.0))
        self.name = f"relu-{base.name}"

    def __repr__(self):
        return f"Rectified({self.base!r})"

    @property
    def scale(self):
        return self.base.scale

    @property
    def nonnegative(self) -> bool:
        return True

    def cdf(self, x):
        x = np.asarray(x, float)
        return np.where(x < 0, 0.0, self.base.cdf(x))

    def abs_quantile(self, q):
        return max(self.base.abs_quantile(q), 0.0)

    def rvs(self, size, rng=None):
        return np.maximum(self.base.rvs(size, rng), 0.0)

    def _atom_in(self, a, b):
        return (a <= 0.0) & (b > 0.0)

    def _partial_moments(self, a, b):
        m0, m1, m2 = self.base.partial_moments(np.maximum(a, 0.0), np.maximum(b, 0.0))
        return m0 + self.atom * self._atom_in(a, b), m1, m2

    def interval_sq_error(self, a, b, y):
        a, b, y = _bcast(a, b, y)
        cont = self.base.interval_sq_error(np.maximum(a, 0.0), np.maximum(b, 0.0), y)
        return cont + self.atom * y * y * self._atom_in(a, b)


class Mixture(Prior):
    """A finite mixture ``Σ w_i P_i`` of priors (weights are normalised).

    Examples
    --------
    >>> bimodal = Mixture([0.5, 0.5], [Gaussian(0.5, -3.0), Gaussian(0.5, 3.0)])
    >>> bimodal.mean, bimodal.var
    (0.0, 9.25)
    """

    def __init__(self, weights, components):
        comps = [as_prior(c, name="components", func="Mixture") for c in components]
        w = np.asarray(weights, dtype=float)
        if w.ndim != 1 or w.size != len(comps) or w.size == 0:
            raise param_error("weights", "Mixture", f"a 1-D array with one weight per component ({len(comps)})",
                              f"shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise param_error("weights", "Mixture", "non-negative finite numbers with a positive sum", w.tolist())
        self.weights = w / w.sum()
        self.components = comps
        kinds = {c.kind for c in comps}
        self.kind = "continuous" if kinds == {"continuous"} else ("samples" if kinds == {"samples"} else "mixed")
        self.name = "mixture"

    def __repr__(self):
        return f"Mixture({self.weights.tolist()}, {self.components!r})"

    @property
    def symmetric(self) -> bool:
        return False

    @property
    def nonnegative(self) -> bool:
        return all(c.nonnegative for c in self.components)

    def pdf(self, x):
        return sum(w * c.pdf(x) for w, c in zip(self.weights, self.components, strict=True))

    def cdf(self, x):
        return sum(w * c.cdf(x) for w, c in zip(self.weights, self.components, strict=True))

    def abs_quantile(self, q):
        return max(c.abs_quantile(1 - (1 - q) / len(self.components)) for c in self.components)

    def rvs(self, size, rng=None):
        rng = np.random.default_rng(rng)
        n = int(np.prod(size))
        which = rng.choice(len(self.components), size=n, p=self.weights)
        out = np.empty(n)
        for i, c in enumerate(self.components):
            m = which == i
            out[m] = c.rvs(int(m.sum()), rng)
        return out.reshape(size)

    def _partial_moments(self, a, b):
        parts = [c.partial_moments(a, b) for c in self.components]
        return tuple(sum(w * p[j] for w, p in zip(self.weights, parts, strict=True)) for j in range(3))

    def interval_sq_error(self, a, b, y):
        return sum(w * c.interval_sq_error(a, b, y) for w, c in zip(self.weights, self.components, strict=True))


# ================================================================================ coercion
_NAMES = {"laplace": Laplace, "gaussian": Gaussian, "normal": Gaussian}


def as_prior(obj, *, name: str = "prior", func: str = "as_prior") -> Prior:
    """Coerce ``obj`` to a :class:`Prior`.

    Parameters
    ----------
    obj : str, frozen scipy.stats distribution, array_like or Prior
        ``"laplace"``, ``"gaussian"`` / ``"normal"`` (unit scale); a frozen continuous
        ``scipy.stats`` distribution (``norm``/``laplace`` become closed forms); a 1-D array
        of finite samples; or a Prior.

    Examples
    --------
    >>> from scipy import stats
    >>> as_prior(stats.norm(0, 2))
    Gaussian(sigma=2.0, loc=0.0)
    >>> as_prior([1.0, -1.0, 0.5])
    Empirical(n=3)
    >>> as_prior("cauchy")
    Traceback (most recent call last):
    ...
    ValueError: The 'prior' parameter of as_prior must be one of 'laplace', 'gaussian', 'normal', a frozen scipy.stats continuous distribution, a 1-D sample array or a qtheory Prior. Got 'cauchy' instead.
    """
    if isinstance(obj, Prior):
        return obj
    allowed = ("one of 'laplace', 'gaussian', 'normal', a frozen scipy.stats continuous distribution, "
               "a 1-D sample array or a qtheory Prior")
    if isinstance(obj, str):
        key = obj.lower()
        if key not in _NAMES:
            raise param_error(name, func, allowed, obj)
        return _NAMES[key]()
    if hasattr(obj, "dist") and hasattr(obj, "rvs") and type(obj).__module__.startswith("scipy"):
        _check_frozen_continuous(obj, name, func)
        dname = _dist_name(obj)
        if dname in ("norm", "laplace") and not obj.args[2:] and set(obj.kwds) <= {"loc", "scale"}:
            loc, scale = _loc_scale(obj)
            return Gaussian(scale, loc) if dname == "norm" else Laplace(scale, loc)
        return ScipyPrior(obj)
    if isinstance(obj, (list, tuple, np.ndarray)) or hasattr(obj, "__array__"):
        return Empirical(check_samples(obj, name, func))
    raise param_error(name, func, allowed, type(obj).__name__, TypeError)


def _dist_name(dist) -> str:
    return getattr(dist.dist, "name", type(dist.dist).__name__)


def _loc_scale(dist):
    args = list(dist.args) + [None, None]
    loc = dist.kwds.get("loc", args[0] if args[0] is not None else 0.0)
    scale = dist.kwds.get("scale", args[1] if args[1] is not None else 1.0)
    return float(loc), float(scale)


def _check_frozen_continuous(dist, name="prior", func="ScipyPrior"):
    from scipy import stats

    if not isinstance(getattr(dist, "dist", None), stats.rv_continuous):
        raise param_error(name, func, "a frozen continuous scipy.stats distribution", type(dist).__name__, TypeError)


# ================================================================================ fitting
@dataclass(frozen=True)
class FitResult:
    """A Laplace/Gaussian prior fitted to a tensor.

    Attributes
    ----------
    prior : Laplace or Gaussian
        The chosen prior (centred on the tensor mean).
    family : str
        ``"laplace"`` or ``"gaussian"``.
    b, sigma : float
        ``mean|x - mean x|`` and the standard deviation.
    mse : dict
        For ``family="auto"``: the exact empirical MSE of each family's ACIQ clip on the tensor.
    """

    prior: Prior
    family: str
    b: float
    sigma: float
    mse: dict


def fit_prior(x, family: str = "laplace", bits: int | None = None, grid: str = "midrise") -> FitResult:
    """Fit a Laplace or Gaussian prior to a tensor, as the ACIQ code does.

    ``b = mean|x − mean x|`` (the Laplace maximum-likelihood scale about the mean) and
    ``σ = std(x)``. With ``family="auto"`` the family is chosen per tensor by the MSE it
    predicts: each family's ACIQ-optimal clip for ``bits`` is applied to the tensor itself
    and the one with the lower exact empirical MSE wins (this needs ``bits``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).laplace(size=20000)
    >>> f = fit_prior(x, "auto", bits=4)
    >>> f.family
    'laplace'
    >>> round(f.b, 1)
    1.0
    """
    func = "fit_prior"
    x = check_samples(np.ravel(x), "x", func, min_size=2)
    family = check_option(family, "family", func, ("laplace", "gaussian", "auto"))
    mu = float(np.mean(x))
    b = float(np.mean(np.abs(x - mu)))
    sigma = float(np.std(x))
    if b == 0.0 or sigma == 0.0:
        raise param_error("x", func, "a tensor with non-zero spread", "a constant tensor")
    cands = {"laplace": Laplace(b, mu), "gaussian": Gaussian(sigma, mu)}
    mse = {}
    if family == "auto":
        if bits is None:
            raise param_error("bits", func, "an int when family='auto'", None, TypeError)
        from .mse import clipping_mse
        from .optimal import optimal_clip

        centred = x - mu
        for fam, p in cands.items():
            alpha = optimal_clip(type(p)(p.scale), bits, method="aciq").alpha
            mse[fam] = float(clipping_mse(centred, alpha, bits, grid=grid).mse)
        family = min(mse, key=mse.get)
    return FitResult(cands[family], family, b, sigma, mse)
