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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._validation import (
    check_int,
    check_real,
    check_real_array,
    check_rng,
    check_samples,
    param_error,
)

if TYPE_CHECKING:  # qtheory._typing imports this module
    from ._typing import PriorLike

__all__ = [
    "Prior",
    "Laplace",
    "Gaussian",
    "ScipyPrior",
    "Empirical",
    "Rectified",
    "Mixture",
    "as_prior",
]

_SQRT2 = math.sqrt(2.0)
#: the most values one ``Prior.rvs`` call draws (8 GiB of float64)
MAX_DRAWS = 2**30
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _pow2_exponent(x: float) -> int:
    """``e`` with ``2^(e-1) <= x < 2^e`` for a finite x > 0 (0 for x = 0): scaling by ``2^-e`` is exact."""
    return math.frexp(x)[1] if x > 0 else 0


def _ldexp(v, e: int):
    """``v · 2^e`` correctly rounded: gradual underflow to 0 and overflow to inf, without warnings."""
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(v, e)


def _bcast(*arrays):
    return np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))


def _bounds(a, b, func: str):
    """``a``, ``b`` as broadcast float64 arrays with ``a <= b`` (±inf allowed, NaN refused)."""
    out = []
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, (str, bytes)):
            raise param_error(name, func, "a real number or an array of them (±inf allowed)", v, TypeError)
        try:
            v = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise param_error(name, func, "a real number or an array of them (±inf allowed)", v, TypeError) from None
        if np.isnan(v).any():
            raise param_error(name, func, "real numbers, not NaN", "NaN")
        out.append(v)
    try:
        a, b = np.broadcast_arrays(*out)
    except ValueError:
        raise param_error("b", func, f"an array broadcastable with a (shape {out[0].shape})",
                          f"shape {out[1].shape}") from None
    if np.any(b < a):
        raise param_error("b", func, "an array with a <= b elementwise", f"b < a at {int(np.sum(b < a))} place(s)")
    return a, b


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
        a, b = _bounds(a, b, "partial_moments")
        e = self._extreme_exponent(a, b)
        if e:  # (at unit scale: m2 = L²·z0 + 2·L·B·z1 + B²·z2 overflowed to inf·0 = NaN)
            p = self._scaled(e)
            m0, m1, m2 = p._partial_moments(_ldexp(a, -e), _ldexp(b, -e))
            return m0, _ldexp(m1, e), _ldexp(m2, 2 * e)
        return self._partial_moments(a, b)

    def interval_sq_error(self, a, b, y):
        """``∫_a^b (x − y)² dP(x)`` for arrays ``a <= b`` and reconstruction values ``y``."""
        a, b, y = _bcast(a, b, y)
        m0, m1, m2 = self.partial_moments(a, b)
        with np.errstate(invalid="ignore"):
            out = np.maximum(m2 - 2.0 * y * m1 + y * y * m0, 0.0)
        return out

    def interval_mean_error(self, a, b, y):
        """``∫_a^b (x − y) dP(x)`` for arrays ``a <= b`` and reconstruction values ``y``."""
        a, b, y = _bcast(a, b, y)
        m0, m1, _ = self.partial_moments(a, b)
        return m1 - y * m0

    def _extreme_exponent(self, *args) -> int:
        """``e`` for a prior beyond ``2^±256`` (its moments are then taken on ``X / 2^e``), else 0.
        Also 0 where the finite bounds and levels in ``args`` lie far above or far below the prior
        (beyond ``2^±64`` of it): the closed forms handle those in the prior's own units, where
        ``X / 2^e`` would overflow, or the moments of a tiny interval underflow."""
        e = self._unit_exponent()
        if abs(e) <= 256:
            return 0
        top = 0.0
        for v in args:
            v = np.abs(np.asarray(v, dtype=np.float64))
            v = v[np.isfinite(v)]
            if v.size:
                top = max(top, float(v.max()))
        if top > 0.0 and abs(_pow2_exponent(top) - e) > 64:
            return 0
        return e

    def _at_unit(self, name: str, e: int, power: int, *args):
        """``getattr(prior of X/2^e, name)(*args / 2^e) · 2^(power·e)``: exact power-of-two scalings."""
        p = self._scaled(e)
        return _ldexp(getattr(p, name)(*(_ldexp(np.asarray(v, dtype=np.float64), -e) for v in args)), power * e)

    def prob(self, a, b):
        """``P(a <= X < b)``."""
        return self.partial_moments(a, b)[0]

    # -- standardisation -------------------------------------------------------------------------
    def _magnitude(self) -> float:
        """A finite positive size of ``|X|`` (scale and location), computed without overflow.

        The numeric core divides the prior (and every clip) by the power of two nearest to it before
        any arithmetic and scales the answer back, so results are scale-equivariant from 1e-300 to
        1e300. ``0`` means "no standardisation" (samples, which take their own exact path).
        """
        return 0.0

    def _scaled(self, e: int) -> Prior:
        """The prior of ``X · 2^-e`` (exact: a power-of-two scaling changes no significand)."""
        raise NotImplementedError

    # -- summary ---------------------------------------------------------------------------------
    def _unit_exponent(self) -> int:
        """``e`` with ``X / 2^e`` at unit scale (0: no standardisation)."""
        mag = self._magnitude()
        return _pow2_exponent(mag) if mag > 0 and math.isfinite(mag) else 0

    @property
    def mean(self) -> float:
        e = self._unit_exponent()
        if e:  # (moments at unit scale, scaled back exactly: no overflow in between)
            return float(_ldexp(self._scaled(e).mean, e))
        return float(self.partial_moments(-np.inf, np.inf)[1])

    @property
    def var(self) -> float:
        e = self._unit_exponent()
        if e:
            return float(_ldexp(self._scaled(e).var, 2 * e))
        _, m1, m2 = self.partial_moments(-np.inf, np.inf)
        return float(m2 - m1 * m1)

    @property
    def std(self) -> float:
        e = self._unit_exponent()
        if e:  # (representable where the variance is not: 1e200 -> 1e200, not inf)
            return float(_ldexp(math.sqrt(self._scaled(e).var), e))
        return math.sqrt(self.var)

    @property
    def scale(self) -> float:
        """The natural scale used to express clipping ratios (``b``, ``σ``, or the std)."""
        return self.std

    def abs_quantile(self, q: float) -> float:
        """A value ``t`` with ``P(|X| <= t) >= q`` (used to bracket clip searches)."""
        raise NotImplementedError

    def ppf(self, q):
        """Inverse CDF (quantile function), vectorised over ``q``.

        Returns the generalised inverse ``inf{x : F(x) >= q}`` for ``0 < q <= 1`` and the lower
        end of the support for ``q = 0`` (``-inf`` for an unbounded prior, as in ``scipy.stats``).
        For a continuous prior this is the ordinary inverse, so ``cdf(ppf(q)) == q``; at an atom
        or between samples ``cdf(ppf(q)) >= q``.

        Parameters
        ----------
        q : float or array_like
            Probabilities in ``[0, 1]`` (no NaN).

        Returns
        -------
        float or numpy.ndarray
            ``x`` with the shape of ``q`` (a numpy float for a scalar ``q``).

        Raises
        ------
        ValueError
            If any ``q`` lies outside ``[0, 1]`` or is NaN.

        Examples
        --------
        >>> from qtheory import Gaussian, Laplace
        >>> float(Gaussian(2.0, loc=1.0).ppf(0.5))
        1.0
        >>> Laplace(1.0).ppf([0.0, 0.5, 1.0]).tolist()
        [-inf, 0.0, inf]
        >>> Gaussian().ppf(1.5)
        Traceback (most recent call last):
        ...
        ValueError: The 'q' parameter of Gaussian.ppf must be a non-empty array of finite real numbers (each in the range [0.0, 1.0]). Got 'array with 1 value(s) out of range, e.g. 1.5' instead.
        """
        q = check_real_array(q, "q", f"{type(self).__name__}.ppf", 0.0, 1.0, ndim=None)
        out = np.asarray(self._ppf(q), dtype=np.float64).reshape(q.shape)
        return out[()] if out.ndim == 0 else out

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        """``ppf`` on a validated float64 array ``q`` in ``[0, 1]``."""
        raise NotImplementedError(f"{type(self).__name__} has no ppf")

    def rvs(self, size, rng=None) -> np.ndarray:
        """Draw samples with an explicit generator.

        Parameters
        ----------
        size : int or tuple of int
            Shape of the draw (at most ``MAX_DRAWS`` values).
        rng : None, int >= 0 or numpy.random.Generator
        """
        func = f"{type(self).__name__}.rvs"
        if isinstance(size, (tuple, list)):
            shape = tuple(check_int(v, "size", func, 0) for v in size)
        else:
            shape = check_int(size, "size", func, 0)
        if math.prod(shape if isinstance(shape, tuple) else (shape,)) > MAX_DRAWS:
            raise param_error("size", func, f"a shape of at most MAX_DRAWS = 2^{MAX_DRAWS.bit_length() - 1} values",
                              size)
        return self._rvs(shape, check_rng(rng, "rng", func))

    def _rvs(self, size, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} draws no samples")

    @property
    def symmetric(self) -> bool:
        """Whether the prior is symmetric about 0."""
        return False

    @property
    def nonnegative(self) -> bool:
        return False


def _one_positional(cls, scale: str, args) -> None:
    """Reject ``Gaussian(a, b)``: scipy's ``norm(loc, scale)`` order would be silently misread."""
    if len(args) > 1:
        name = cls.__name__
        raise TypeError(f"{name} takes the scale as its only positional argument; pass loc as a keyword: "
                        f"{name}({scale}, loc=...). Got {len(args)} positional arguments {args!r} instead.")


# ================================================================================ closed forms
@dataclass(frozen=True, repr=False)
class Laplace(Prior):
    """Laplace prior with density ``exp(-|x - loc| / b) / (2 b)``.

    The scale ``b`` is the only positional argument; ``loc`` is keyword-only, so that a
    ``scipy.stats`` habit (``laplace(loc, scale)``) cannot silently swap them.

    Examples
    --------
    >>> p = Laplace(b=2.0)
    >>> p.var
    8.0
    >>> float(p.prob(0.0, float("inf")))
    0.5
    """

    b: float = 1.0
    loc: float = field(default=0.0, kw_only=True)
    name = "laplace"

    def __new__(cls, *args, **kwargs):
        _one_positional(cls, "b", args)
        return super().__new__(cls)

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
        return 2.0 * (self.b * self.b)  # (inf beyond the float64 range; ** raises OverflowError)

    @property
    def std(self) -> float:
        return math.sqrt(2.0) * self.b

    @property
    def symmetric(self) -> bool:
        return self.loc == 0.0

    def _magnitude(self) -> float:
        return max(self.b, abs(self.loc))

    def _scaled(self, e: int) -> Laplace:
        return Laplace(_checked_ldexp(self.b, -e, self), loc=math.ldexp(self.loc, -e))

    def pdf(self, x):
        with np.errstate(over="ignore"):  # (a subnormal scale: inf at the peak, as in float64)
            return np.exp(-np.abs(_std(x, self.loc, self.b))) / (2 * self.b)

    def cdf(self, x):
        z = _std(x, self.loc, self.b)
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))

    def sf(self, x):
        return self.cdf(2 * self.loc - np.asarray(x, float))

    def abs_quantile(self, q):
        return abs(self.loc) + self.b * -math.log1p(-q)

    def _ppf(self, q):
        # loc + b·log(2q) below the median, loc − b·log(2(1 − q)) above (no cancellation either side)
        with np.errstate(divide="ignore"):
            z = np.where(q < 0.5, np.log(2.0 * q), -np.log(2.0 * (1.0 - q)))
        with np.errstate(over="ignore"):
            return self.loc + self.b * z

    def _rvs(self, size, rng):
        return np.random.default_rng(rng).laplace(self.loc, self.b, size)

    def _partial_moments(self, a, b):
        # Standardise, then use the one-sided antiderivatives on x >= 0 and mirror for x < 0.
        za, zb = _std(a, self.loc, self.b), _std(b, self.loc, self.b)
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
        with np.errstate(over="ignore", invalid="ignore"):
            m[0] = z0
            m[1] = L * z0 + B * z1
            m[2] = L * L * z0 + 2 * L * B * z1 + B * B * z2
        return tuple(_narrow_moments(m, a, b, L, B, self.pdf))

    def interval_sq_error(self, a, b, y):
        # Centred closed form: on each side of loc, ∫ (z - w)^2 e^{-z} dz has antiderivative
        # -e^{-z} ((z - w)^2 + 2 (z - w) + 2); this avoids m2 - 2 y m1 + y^2 m0 cancellation.
        e = self._extreme_exponent(a, b, y)
        if e:  # (at unit scale: inf − inf was NaN beyond ~1e154)
            return self._at_unit("interval_sq_error", e, 2, a, b, y)
        a, b, y = _bcast(a, b, y)
        za, zb, w = _std(a, self.loc, self.b), _std(b, self.loc, self.b), _std(y, self.loc, self.b)
        lo, hi = np.maximum(za, 0.0), np.maximum(zb, 0.0)
        pos = _exp_sq_err(lo, hi, w, self.b)
        lo, hi = -np.minimum(zb, 0.0), -np.minimum(za, 0.0)
        neg = _exp_sq_err(lo, hi, -w, self.b)
        return _far_level(0.5 * (pos + neg), a, b, y, w, self.loc, self.prob, 2)

    def interval_mean_error(self, a, b, y):
        e = self._extreme_exponent(a, b, y)
        if e:  # (at unit scale: inf − inf was NaN beyond ~1e154)
            return self._at_unit("interval_mean_error", e, 1, a, b, y)
        a, b, y = _bcast(a, b, y)
        za, zb, w = _std(a, self.loc, self.b), _std(b, self.loc, self.b), _std(y, self.loc, self.b)
        pos = _exp_mean_err(np.maximum(za, 0.0), np.maximum(zb, 0.0), w, self.b)
        neg = -_exp_mean_err(-np.minimum(zb, 0.0), -np.minimum(za, 0.0), -w, self.b)
        return _far_level(0.5 * (pos + neg), a, b, y, w, self.loc, self.prob, 1)


def _exp_tail_moment(t, j):
    """∫_t^∞ z^j e^{-z} dz for t >= 0 (0 where e^{-t} underflows: t² overflows from 1e154, and
    0·inf was NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(-t)
        poly = {0: 1.0, 1: t + 1.0, 2: t * t + 2.0 * t + 2.0}[j]
        return np.where(e == 0.0, 0.0, e * poly)


_GL = np.polynomial.legendre.leggauss(8)
#: Intervals narrower than this (standard units) use 8-node Gauss–Legendre (exact to degree 15)
#: instead of the closed forms, whose antiderivative differences cancel there: the Gaussian's
#: ``(za − 2w)·φ(za) − (zb − 2w)·φ(zb)`` terms are about ``12|z|/width³`` times the result, so at
#: a width of 0.06 near ``|z| = 3`` the closed form lost 2e-9 relative (1e-8 at 16 bits' widths).
#: Measured against mpmath (intervals over ``|z| <= 9``, levels inside and outside): the rule
#: errs by at most ~2e-14 relative up to this width; above it the closed forms by at most ~1e-11
#: (Gaussian, 0.25 wide, far tail) and ~6e-13 (Laplace). (The 4-node rule this replaced erred by
#: up to 7e-10 at a width of 0.04 in the Gaussian's tails, where φ changes by e^(|z|·width).)
_NARROW = 0.2
#: The same for the Laplace prior's one-sided exponential pieces (``_exp_sq_err``,
#: ``_exp_mean_err``): 8 nodes integrate ``(z − w)^j·e^{−z}`` to rounding over a whole scale
#: (4e-15 at half of it), while the closed forms' antiderivative differences still lost 6e-13
#: relative at a quarter of it
_NARROW_EXP = 1.0


#: Beyond this many standard deviations the Gaussian's wide bins are integrated in Mills-ratio form
#: (:func:`_gauss_tail`): the closed form's ``(1 + w²)·P`` and ``(z − 2w)·φ(z)`` terms cancel like
#: ``z⁴`` there (1e-11 relative at 5σ, 1e-10 at 8σ, 3e-9 at 20σ against mpmath)
_MILLS = 3.0


def _mills_u(x):
    """``u = 2/(x + 3/(x + 4/(x + ...)))`` for ``x >= _MILLS`` (Laplace's continued fraction of the
    Mills ratio ``Q/φ = 1/(x + t)``, ``t = 1/(x + u)``; :func:`qtheory.kernels.special.mills_u`)."""
    from .kernels.special import mills_u

    out = np.empty(x.size)
    mills_u(np.ascontiguousarray(x, dtype=np.float64), out)
    return out


def _gauss_tail_part(x, w, s, power):
    """``s^power ∫_x^∞ (z − w)^power φ(z) dz`` (``power`` 1 or 2) for ``x >= _MILLS`` (``inf``: 0),
    without cancellation: with ``R = Q/φ = 1/(x + t)``, ``t = 1/(x + u)`` (:func:`_mills_u`) and
    ``d = w − x``, ``∫ (z − w)φ = Q·(t − d)`` and ``∫ (z − w)²φ = Q·(u/(x + u) − 2dt + d²)``
    (``xR − 1 = −tR`` and ``(1 + x²)R − x = R·u/(x + u)``: the differences that cancelled are
    taken inside the continued fraction)."""
    from scipy.special import ndtr

    out = np.zeros_like(x)
    fin = np.isfinite(x)
    if not fin.any():
        return out
    xf, d = x[fin], w[fin] - x[fin]
    u = _mills_u(xf)
    t = 1.0 / (xf + u)
    q = ndtr(-xf)
    with np.errstate(over="ignore", invalid="ignore"):
        if power == 1:
            out[fin] = (q * s) * (t - d)
        else:
            r = np.sqrt(q) * s  # (s applied before squaring)
            rd = r * d
            out[fin] = r * r * (u / (xf + u)) - 2.0 * t * (r * rd) + rd * rd
    return out


def _gauss_tail(za, zb, w, s, power):
    """``s^power ∫_za^zb (z − w)^power φ(z) dz`` for intervals beyond ``±_MILLS`` (``za >= _MILLS``
    or ``zb <= −_MILLS``; the left ones mirrored) by :func:`_gauss_tail_part` (both ends at once)."""
    left = zb <= -_MILLS
    a, b, v = np.where(left, -zb, za), np.where(left, -za, zb), np.where(left, -w, w)
    parts = _gauss_tail_part(np.concatenate([a, b]), np.concatenate([v, v]), s, power)
    out = parts[:a.size] - parts[a.size:]
    return np.where(left, -out, out) if power == 1 else out


def _gauss_narrow(za, zb):
    """Intervals for 8-node Gauss–Legendre: at most ``_NARROW`` wide and ``3/|z|`` (in the far
    tails φ changes by ``e^(|z|·width)`` across the interval: 1e-9 relative at 30σ and 0.2 wide)."""
    h = zb - za
    with np.errstate(invalid="ignore", over="ignore"):
        return (h <= _NARROW) & (h * np.maximum(np.abs(za), np.abs(zb)) <= 3.0)


def _split(narrow, gl, closed, lo, hi, w):
    """``gl`` on the narrow intervals, ``closed`` on the wider ones, 0 on empty ones (flat arrays)."""
    shape = np.broadcast_shapes(np.shape(lo), np.shape(hi), np.shape(w), np.shape(narrow))
    arrays = [np.ravel(np.broadcast_to(v, shape)) for v in (lo, hi, w)]
    narrow = np.ravel(np.broadcast_to(narrow, shape))
    live = arrays[1] > arrays[0]
    out = np.zeros(arrays[0].shape)
    i = np.flatnonzero(narrow & live)
    k = np.flatnonzero(~narrow & live)
    if i.size:
        out[i] = gl(*(v[i] for v in arrays))
    if k.size:
        out[k] = closed(*(v[k] for v in arrays))
    return out


def _std(v, loc, scale):
    """``(v − loc)/scale`` in standard units (±inf where that leaves float64: the limits the
    formulas want, without a RuntimeWarning)."""
    with np.errstate(over="ignore"):
        return (np.asarray(v, dtype=np.float64) - loc) / scale


def _far_level(out, a, b, y, w, loc, prob, power):
    """Where the level is so far from the prior that ``w = (y − loc)/scale`` overflowed, the
    interval's error integral ``∫ (x − y)^power f`` is ``P(a <= X < b)·(loc − y)^power`` to far
    below rounding (the other terms are ``scale/|y − loc| < 2^-1024`` of it): computed so in place
    of the standard-unit forms, which gave NaN or inf there."""
    far = ~np.isfinite(w) & (b > a)
    if far.any():
        d = (loc - y)[far]
        p = prob(a[far], b[far])
        out = np.array(out, dtype=np.float64, copy=True)
        with np.errstate(over="ignore"):
            out[far] = (np.sqrt(p) * d) ** 2 if power == 2 else p * d
    return out


def _narrow_moments(m, a, b, kink, scale, pdf):
    """Replace, in the closed-form moments ``m`` (a list of three arrays), those of the finite
    intervals narrower than ``_NARROW·scale`` by 8-node Gauss–Legendre on the density in ``x``
    itself (split at ``kink``, the Laplace density's, if not None). The closed forms are differences
    of CDFs and antiderivatives, which cancel there: ``P(0 <= X < 1)`` was 0 for ``N(0, 1e160)``
    (not 4e-161) and ``m2`` was ``-inf``/NaN (``σ²·z2`` with ``σ² = inf``); at a relative width of
    1e-10 the closed-form ``m0`` was off by 1e-6."""
    narrow = (b - a < _NARROW * scale) & (b > a) & np.isfinite(a) & np.isfinite(b)
    if not narrow.any():
        return m
    lo, hi = a[narrow], b[narrow]
    cut = None
    if kink is not None:
        cut = (lo < kink) & (kink < hi)
        if cut.any():
            lo, hi = np.concatenate([lo, np.full(int(cut.sum()), kink)]), np.concatenate([np.where(cut, kink, hi), hi[cut]])
        else:
            cut = None
    t, wts = _GL
    half = 0.5 * (hi - lo)
    x = 0.5 * (hi + lo)[:, None] + half[:, None] * t[None, :]
    with np.errstate(over="ignore", under="ignore"):
        f = pdf(x) * (wts[None, :] * half[:, None])
        fx = f * x
        parts = [f.sum(axis=1), fx.sum(axis=1), (fx * x).sum(axis=1)]
    k = int(narrow.sum())
    out = []
    for j in range(3):
        v = parts[j][:k]
        if cut is not None:
            v = v.copy()
            v[cut] += parts[j][k:]
        mj = np.array(m[j], dtype=np.float64, copy=True)
        mj[narrow] = v
        out.append(mj)
    return out


def _gl_narrow(lo, hi, w, j, sqrt_f, s=1.0):
    """``s^j ∫_lo^hi (z − w)^j f(z) dz`` by 8-node Gauss–Legendre (flat arrays), given ``√f``.

    ``((z − w)·s·√f)²`` keeps the j = 2 integrand finite whenever the result is.
    """
    x, wt = _GL
    lo, hi, w = (np.asarray(v, float) for v in (lo, hi, w))
    h = 0.5 * (hi - lo)
    z = (0.5 * (hi + lo))[:, None] + h[:, None] * x
    r = sqrt_f(z)
    if j == 0:
        g = r * r
    else:
        d = (z - w[:, None]) * s
        g = (d * r) ** 2 if j == 2 else d * r * r
    return h * (g @ wt)


def _exp_sq_err(lo, hi, w, s=1.0):
    """``s² ∫_lo^hi (z - w)^2 e^{-z} dz`` for 0 <= lo <= hi (hi may be inf).

    ``s`` (the scale) is applied before squaring, so nothing overflows unless the result does.
    """
    def g(x, w):  # s² e^{-x} ((x - w)^2 + 2 (x - w) + 2) = (hd)^2 + 2 (hs)(hd) + 2 (hs)^2, h = e^{-x/2}
        h = np.exp(-0.5 * x)
        hd = h * ((x - w) * s)
        hs = h * s
        return np.where(h == 0.0, 0.0, hd * hd + 2.0 * hs * hd + 2.0 * hs * hs)

    shape = np.broadcast(lo, hi, w).shape
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        out = _split((hi - lo) <= _NARROW_EXP,
                     lambda lo, hi, w: _gl_narrow(lo, hi, w, 2, lambda z: np.exp(-0.5 * z), s),
                     lambda lo, hi, w: g(lo, w) - np.where(np.isinf(hi), 0.0, g(hi, w)), lo, hi, w).reshape(shape)
        out = np.where(hi > lo, out, 0.0)
    return np.maximum(out, 0.0)


def _exp_mean_err(lo, hi, w, s=1.0):
    """``s ∫_lo^hi (z - w) e^{-z} dz`` for 0 <= lo <= hi (hi may be inf).

    On narrow intervals ``s`` is applied inside the integrand (``(z − w)·s``): the standard-unit
    integral of an interval far narrower than the prior underflowed (``width²``) before scaling."""
    def g(x, w):  # e^{-x} (x - w + 1)
        h = np.exp(-x)
        return np.where(h == 0.0, 0.0, h * (x - w) + h)

    shape = np.broadcast(lo, hi, w).shape
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        out = _split((hi - lo) <= _NARROW_EXP,
                     lambda lo, hi, w: _gl_narrow(lo, hi, w, 1, lambda z: np.exp(-0.5 * z), s),
                     lambda lo, hi, w: s * (g(lo, w) - np.where(np.isinf(hi), 0.0, g(hi, w))), lo, hi, w).reshape(shape)
        return np.where(hi > lo, out, 0.0)


def _sqrt_phi(z):
    return np.exp(-0.25 * z * z) / math.sqrt(_SQRT2PI)


@dataclass(frozen=True, repr=False)
class Gaussian(Prior):
    """Gaussian prior ``N(loc, sigma²)``.

    The scale ``sigma`` is the only positional argument; ``loc`` is keyword-only, so that a
    ``scipy.stats`` habit (``norm(loc, scale)``) cannot silently swap them.

    Examples
    --------
    >>> p = Gaussian(sigma=3.0)
    >>> p.var
    9.0
    >>> round(float(p.prob(-3.0, 3.0)), 6)
    0.682689
    """

    sigma: float = 1.0
    loc: float = field(default=0.0, kw_only=True)
    name = "gaussian"

    def __new__(cls, *args, **kwargs):
        _one_positional(cls, "sigma", args)
        return super().__new__(cls)

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
        return self.sigma * self.sigma  # (inf beyond the float64 range; ** raises OverflowError)

    @property
    def std(self) -> float:
        return self.sigma

    @property
    def symmetric(self) -> bool:
        return self.loc == 0.0

    def _magnitude(self) -> float:
        return max(self.sigma, abs(self.loc))

    def _scaled(self, e: int) -> Gaussian:
        return Gaussian(_checked_ldexp(self.sigma, -e, self), loc=math.ldexp(self.loc, -e))

    def pdf(self, x):
        z = _std(x, self.loc, self.sigma)
        with np.errstate(over="ignore"):  # (z² = inf: the density is 0)
            return np.exp(-0.5 * z * z) / (_SQRT2PI * self.sigma)

    def cdf(self, x):
        from scipy.special import ndtr

        return ndtr(_std(x, self.loc, self.sigma))

    def sf(self, x):
        from scipy.special import ndtr

        return ndtr(-_std(x, self.loc, self.sigma))

    def abs_quantile(self, q):
        from scipy.special import ndtri

        return abs(self.loc) + self.sigma * float(ndtri(0.5 + 0.5 * q))

    def _ppf(self, q):
        from scipy.special import ndtri

        with np.errstate(over="ignore"):
            return self.loc + self.sigma * ndtri(q)

    def _rvs(self, size, rng):
        return np.random.default_rng(rng).normal(self.loc, self.sigma, size)

    def _std_moments(self, za, zb):
        from scipy.special import ndtr

        # P(za <= Z < zb) computed on the side where it does not cancel
        p = np.where(za > 0, ndtr(-za) - ndtr(-zb), ndtr(zb) - ndtr(za))
        with np.errstate(invalid="ignore", over="ignore"):  # (z² = inf beyond 1e154: φ = 0 exactly)
            pa = np.exp(-0.5 * za * za) / _SQRT2PI
            pb = np.exp(-0.5 * zb * zb) / _SQRT2PI
            zpa = np.where(np.isinf(za), 0.0, za * pa)
            zpb = np.where(np.isinf(zb), 0.0, zb * pb)
        return p, pa, pb, zpa, zpb

    def _partial_moments(self, a, b):
        za, zb = _std(a, self.loc, self.sigma), _std(b, self.loc, self.sigma)
        p, pa, pb, zpa, zpb = self._std_moments(za, zb)
        z0, z1, z2 = p, pa - pb, p + zpa - zpb
        L, S = self.loc, self.sigma
        with np.errstate(over="ignore", invalid="ignore"):
            m = [z0, L * z0 + S * z1, L * L * z0 + 2 * L * S * z1 + S * S * z2]
        return tuple(_narrow_moments(m, a, b, None, S, self.pdf))

    def interval_sq_error(self, a, b, y):
        # ∫ (z-w)^2 φ = (1+w^2) P - [(z - 2w) φ(z)]_a^b, in standard units.
        e = self._extreme_exponent(a, b, y)
        if e:  # (at unit scale: inf − inf was NaN beyond ~1e154)
            return self._at_unit("interval_sq_error", e, 2, a, b, y)
        a, b, y = _bcast(a, b, y)
        za, zb, w = _std(a, self.loc, self.sigma), _std(b, self.loc, self.sigma), _std(y, self.loc, self.sigma)
        S = self.sigma

        def closed(za, zb, w):
            # σ² [(1 + w²) P + (za − 2w) φ(za) − (zb − 2w) φ(zb)], σ applied before any squaring
            p, pa, pb, zpa, zpb = self._std_moments(za, zb)
            sp, rp, ws = np.sqrt(p) * S, np.sqrt(p) * (w * S), w * S
            out = sp * sp + rp * rp + S * (S * (zpa - zpb)) - 2.0 * ws * (S * (pa - pb))
            tail = (za >= _MILLS) | (zb <= -_MILLS)
            if tail.any():  # (Mills-ratio form: the terms above cancel like z⁴ there)
                out[tail] = _gauss_tail(za[tail], zb[tail], w[tail], S, 2)
            return out

        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            out = _split(_gauss_narrow(za, zb), lambda za, zb, w: _gl_narrow(za, zb, w, 2, _sqrt_phi, S), closed,
                         za, zb, w).reshape(a.shape)
        out = _far_level(out, a, b, y, w, self.loc, self.prob, 2)
        return np.maximum(np.where(zb > za, out, 0.0), 0.0)

    def interval_mean_error(self, a, b, y):
        # ∫ (z - w) φ = φ(a) - φ(b) - w P
        e = self._extreme_exponent(a, b, y)
        if e:  # (at unit scale: inf − inf was NaN beyond ~1e154)
            return self._at_unit("interval_mean_error", e, 1, a, b, y)
        a, b, y = _bcast(a, b, y)
        za, zb, w = _std(a, self.loc, self.sigma), _std(b, self.loc, self.sigma), _std(y, self.loc, self.sigma)
        S = self.sigma

        def closed(za, zb, w):
            p, pa, pb, _, _ = self._std_moments(za, zb)
            out = S * (pa - pb - w * p)
            tail = (za >= _MILLS) | (zb <= -_MILLS)
            if tail.any():  # (Mills-ratio form: φ − wQ cancels like z² there)
                out[tail] = _gauss_tail(za[tail], zb[tail], w[tail], S, 1)
            return out

        # (narrow: σ inside the integrand, see _exp_mean_err)
        with np.errstate(invalid="ignore", over="ignore"):
            out = _split(_gauss_narrow(za, zb), lambda za, zb, w: _gl_narrow(za, zb, w, 1, _sqrt_phi, S), closed,
                         za, zb, w).reshape(a.shape)
        return np.where(zb > za, _far_level(out, a, b, y, w, self.loc, self.prob, 1), 0.0)


# ================================================================================ scipy.stats
class ScipyPrior(Prior):
    """Any frozen continuous ``scipy.stats`` distribution with a finite variance.

    All arithmetic is done in the distribution's standard coordinate ``z = (x − loc) / scale``
    (shape parameters only), and results are scaled back at the end, so that ``loc``/``scale``
    from 1e-300 to 1e300 cost nothing in accuracy or time. Interval integrals
    ``∫ (z − w)^j f(z) dz`` are computed by:

    - exact piecewise formulas for ``scipy.stats.rv_histogram`` (a histogram is piecewise uniform);
    - otherwise adaptive, vectorised Gauss–Legendre quadrature of the density: every interval is
      first split at fixed quantiles of the distribution (so no narrow peak hides between nodes),
      then each piece is halved until a 4-node and an 8-node rule agree, and the 8-node mass agrees
      with the exact ``cdf``/``sf`` mass, to ``epsrel`` of the total. The effort is capped: pieces
      still unresolved after ``max_depth`` halvings (an integrable singularity of the density) are
      bounded by their exact mass times the squared distance, and a ``RuntimeWarning`` says so if
      that bound exceeds the tolerance;
    - tails beyond the extreme quantiles by ``scipy.integrate.quad`` after ``z = z0 ± r²``.

    Examples
    --------
    >>> from scipy import stats
    >>> p = ScipyPrior(stats.logistic())
    >>> round(p.var, 10) == round(float(stats.logistic().var()), 10)
    True
    >>> p = ScipyPrior(stats.logistic(loc=1e6))   # far from 0: the standard coordinate keeps it exact
    >>> float(p.interval_sq_error(1e6 - 1.0, 1e6 + 1.0, 1e6)) == float(ScipyPrior(stats.logistic()).interval_sq_error(-1.0, 1.0, 0.0))
    True
    """

    _PROBS = (1e-15, 1e-10, 1e-6, 1e-3, 0.02, 0.1, 0.25, 0.5)
    _GL = {n: np.polynomial.legendre.leggauss(n) for n in (4, 8)}

    def __init__(self, dist, *, epsrel: float = 1e-12, max_depth: int = 48):
        dist = _freeze_histogram(dist)
        _check_frozen_continuous(dist, "prior")
        shapes, loc, scale = dist.dist._parse_args(*dist.args, **dist.kwds)
        loc, scale = float(loc), float(scale)
        if not (math.isfinite(loc) and math.isfinite(scale) and scale > 0):
            raise param_error("prior", "ScipyPrior", "a distribution with a finite loc and a finite scale > 0",
                              f"{_dist_name(dist)} with loc={loc}, scale={scale}")
        std = dist.dist(*shapes)
        self._uloc, self._uscale = loc, scale  # the user's loc/scale (of self.dist)
        hist = None
        if hasattr(dist.dist, "_hbins") and hasattr(dist.dist, "_hpdf"):
            # a histogram at any magnitude: its standard coordinate is the histogram divided by a
            # power of two near its largest edge (exact), so moments and formulas never overflow
            from scipy import stats

            edges, dens = np.asarray(dist.dist._hbins, float), np.asarray(dist.dist._hpdf, float)[1:-1]
            eh = int(np.clip(_pow2_exponent(float(np.max(np.abs(edges)))), -1000, 1000))
            edges = np.ldexp(edges, -eh)
            widths = np.diff(edges)
            mass = dens * np.ldexp(widths, eh)
            mass = mass / mass.sum()
            dens = mass / widths
            hist = (edges, dens)
            std = stats.rv_histogram((mass, edges), density=False).freeze()
            scale = math.ldexp(scale, eh)
            mean0, var0 = _hist_moments(edges, dens)
        else:
            with np.errstate(all="ignore"):
                mean0, var0 = (float(v) for v in std.stats("mv"))
        if not (math.isfinite(var0) and math.isfinite(mean0)):
            raise param_error(
                "prior", "ScipyPrior", "a distribution with finite variance",
                f"{_dist_name(dist)} with variance {float(var0) * scale * scale if math.isfinite(var0) else var0}",
            )
        self.dist = dist
        self.epsrel = float(epsrel)
        self.max_depth = int(max_depth)
        self.name = _dist_name(dist)
        self._shapes, self._loc, self._scale, self._sdist = tuple(shapes), loc, scale, std
        self._mean0, self._std0 = mean0, math.sqrt(var0)
        zlo, zhi = (float(v) for v in std.support())
        self._zsupport = (zlo, zhi)
        with np.errstate(over="ignore"):
            self._support = (loc + scale * zlo, loc + scale * zhi)
        self._hist = hist
        self._breaks = None

    def _scaled(self, e: int) -> ScipyPrior:
        """The prior of ``X · 2^-e``: the same standard distribution, loc/scale divided by ``2^e``."""
        new = ScipyPrior.__new__(ScipyPrior)
        new.__dict__.update(self.__dict__)
        new._loc, new._scale = math.ldexp(self._loc, -e), _checked_ldexp(self._scale, -e, self)
        new._uloc, new._uscale = math.ldexp(self._uloc, -e), _checked_ldexp(self._uscale, -e, self)
        new.dist = self.dist.dist(*self._shapes, loc=new._uloc, scale=new._uscale)
        zlo, zhi = self._zsupport
        with np.errstate(over="ignore"):
            new._support = (new._loc + new._scale * zlo, new._loc + new._scale * zhi)
        return new

    def __repr__(self):
        args = ", ".join([*(f"{a!r}" for a in self.dist.args), *(f"{k}={v!r}" for k, v in self.dist.kwds.items())])
        return f"ScipyPrior({self.name}({args}))"

    @property
    def mean(self):
        return self._loc + self._scale * self._mean0

    @property
    def var(self):
        with np.errstate(over="ignore"):
            return float(np.float64(self.std) ** 2)

    @property
    def std(self):
        return self._scale * self._std0

    @property
    def scale(self) -> float:
        return self.std

    def _magnitude(self) -> float:
        return max(self.std, abs(self.mean))

    @property
    def symmetric(self) -> bool:
        if self._loc != 0.0:
            return False
        z = np.array([0.3, 1.0, 2.7]) * self._std0
        return bool(np.allclose(self._sdist.pdf(z), self._sdist.pdf(-z), rtol=1e-12, atol=0))

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
        z = np.array([self._sdist.ppf(t), self._sdist.isf(t)])
        return float(np.max(np.abs(self._loc + self._scale * z)))

    def _ppf(self, q):
        return self.dist.ppf(q)

    def _rvs(self, size, rng):
        return self.dist.rvs(size=size, random_state=np.random.default_rng(rng))

    # ------------------------------------------------------------------ standard coordinate
    def _z(self, x):
        with np.errstate(over="ignore"):
            return (np.asarray(x, dtype=np.float64) - self._loc) / self._scale

    def _zmass(self, za, zb):
        """``P(za <= Z < zb)`` from the side where it does not cancel."""
        d = self._sdist
        za, zb = np.asarray(za, float), np.asarray(zb, float)
        right = za >= self._median0
        out = np.empty(np.broadcast(za, zb).shape)
        za, zb = np.broadcast_arrays(za, zb)
        with np.errstate(all="ignore"):
            out[right] = d.sf(za[right]) - d.sf(zb[right])
            left = ~right
            out[left] = d.cdf(zb[left]) - d.cdf(za[left])
        return np.maximum(out, 0.0)

    @property
    def _median0(self):
        if self._breaks is None:
            self._make_breaks()
        return self._breaks_median

    def _make_breaks(self):
        d = self._sdist
        p = np.array(self._PROBS)
        with np.errstate(all="ignore"):
            z = np.concatenate([d.ppf(p), d.isf(p)])
        z = z[np.isfinite(z)]
        zlo, zhi = self._zsupport
        z = z[(z > zlo) & (z < zhi)]
        self._breaks = np.unique(z)
        self._breaks_median = float(d.ppf(0.5))

    def _zint(self, za, zb, w, j):
        """``∫_za^zb (z − w)^j f(z) dz`` (j = 0, 1, 2) for arrays, standard coordinate."""
        za, zb, w = (np.ravel(v) for v in np.broadcast_arrays(za, zb, w))
        zlo, zhi = self._zsupport
        za, zb = np.clip(za, zlo, zhi), np.clip(zb, zlo, zhi)
        out = np.zeros(za.shape)
        live = np.flatnonzero(zb > za)
        if live.size == 0:
            return out
        if self._hist is not None:
            out[live] = _hist_zint(self._hist, za[live], zb[live], w[live], j)
            return out
        if self._breaks is None:
            self._make_breaks()
        # split every interval at the break points it contains
        br = self._breaks
        a, b, ww = za[live], zb[live], w[live]
        ia = np.searchsorted(br, a, side="right")
        ib = np.searchsorted(br, b, side="left")
        n_in = np.maximum(ib - ia, 0)
        owner = np.repeat(np.arange(a.size), n_in + 1)
        start = np.repeat(np.cumsum(n_in + 1) - (n_in + 1), n_in + 1)
        pos = np.arange(owner.size) - start  # 0 .. n_in within each interval
        inner = ia[owner] + pos  # index of the break at the piece's left (if pos > 0)
        lo = np.where(pos == 0, a[owner], br[np.minimum(inner - 1, br.size - 1)])
        hi = np.where(pos == n_in[owner], b[owner], br[np.minimum(inner, br.size - 1)])
        wp = ww[owner]
        # tails become [0, 1) in t with z = base ± std0·r², r = t / (1 − t): the squared map keeps
        # (z − w)^j f(z) dz/dt bounded near t = 1 for tails as heavy as z^(-3.5) (Student-t, df 2.5);
        # each tail starts as pieces [1 − 2^-k, 1 − 2^-(k+1)] so the adaptive rule sees its scale.
        up, down = np.isposinf(hi), np.isneginf(lo)
        kind = np.where(up, 1, np.where(down, -1, 0))
        base = np.where(up, lo, np.where(down, hi, 0.0))
        tb = np.concatenate([[0.0], 1.0 - 2.0 ** -np.arange(1.0, 41.0), [1.0]])
        tails = np.flatnonzero(kind != 0)
        fin = np.flatnonzero(kind == 0)
        p_lo = np.concatenate([lo[fin], np.tile(tb[:-1], tails.size)])
        p_hi = np.concatenate([hi[fin], np.tile(tb[1:], tails.size)])
        p_own = np.concatenate([fin, np.repeat(tails, tb.size - 1)])
        vals = self._gl_adaptive(p_lo, p_hi, wp[p_own], j, kind[p_own], base[p_own])
        vals = np.bincount(p_own, weights=vals, minlength=owner.size)
        out[live] = np.bincount(owner, weights=vals, minlength=a.size)
        return out

    def _gl_adaptive(self, lo, hi, w, j, kind, base):
        """Vectorised adaptive Gauss–Legendre on pieces (see the class docstring).

        Pieces of ``kind`` 0 are ``[lo, hi]`` in z; kind ±1 are ``[lo, hi] ⊂ [0, 1]`` in t for the
        tail ``z = base ± std0·(t/(1−t))²``. A piece is accepted when (a) the 4- and 8-node rules
        agree and the 8-node mass agrees with the exact mass, or (b) its exact mass times the spread
        of ``(z − w)^j`` over it is within the tolerance (the value is then mass·(mid − w)^j): (b)
        resolves integrable singularities of the density at a support edge in a few dozen halvings.
        """
        f = self._sdist.pdf
        x4, w4 = self._GL[4]
        x8, w8 = self._GL[8]
        xs = np.concatenate([x4, x8])
        sc = self._std0
        n0 = lo.size
        out = np.zeros(n0)
        owner = np.arange(n0)
        capped = 0.0
        tol_abs = tol_mass = scale_total = None

        def zmap(t, kind, base):
            with np.errstate(all="ignore"):
                r = t / (1.0 - t)
                z = np.where(kind == 0, t, base + kind * sc * r * r)
                jac = np.where(kind == 0, 1.0, 2.0 * sc * r / (1.0 - t) ** 2)
            return z, jac

        for depth in range(self.max_depth + 1):
            h, m = 0.5 * (hi - lo), 0.5 * (hi + lo)
            t = m[:, None] + h[:, None] * xs
            z, jac = zmap(t, kind[:, None], base[:, None])
            with np.errstate(all="ignore"):
                fz = f(z) * jac
                g = np.where(np.isfinite(fz), fz, 0.0)
                gw = g * (z - w[:, None]) ** j if j else g
                gw = np.where(np.isfinite(gw), gw, 0.0)
            i4 = h * (gw[:, :4] @ w4)
            i8 = h * (gw[:, 4:] @ w8)
            m8 = h * (g[:, 4:] @ w8)
            za, _ = zmap(lo, kind, base)
            zb, _ = zmap(hi, kind, base)
            zl, zh = np.minimum(za, zb), np.maximum(za, zb)
            mass = self._zmass(zl, zh)
            with np.errstate(all="ignore"):
                dlo, dhi = zl - w, zh - w
                dmax = np.maximum(np.abs(dlo), np.abs(dhi))
                dmin = np.where((dlo <= 0) & (dhi >= 0), 0.0, np.minimum(np.abs(dlo), np.abs(dhi)))
                spread = (np.zeros_like(mass) if j == 0 else mass * (dhi - dlo) if j == 1
                          else mass * (dmax * dmax - dmin * dmin))
                spread = np.where(np.isfinite(spread), spread, np.inf)
            if tol_abs is None:
                scale_total = max(float(np.sum(np.abs(i8))), 1e-300)
                tol_abs = self.epsrel * scale_total / n0
                tol_mass = self.epsrel / n0
            err_q = np.abs(i8 - i4)
            ok_q = (err_q <= np.maximum(tol_abs, 1e-13 * np.abs(i8))) & (np.abs(m8 - mass) <= 1e-7 * mass + tol_mass)
            ok_b = spread <= tol_abs
            with np.errstate(all="ignore"):
                zm, _ = zmap(m, kind, base)
                val = np.where(ok_q, i8, np.where(ok_b, mass * (zm - w) ** j, i8))
            ok = ok_q | ok_b
            if depth == self.max_depth:
                capped += float(np.sum(np.minimum(spread, err_q)[~ok]))
                ok[:] = True
            np.add.at(out, owner[ok], val[ok])
            bad = ~ok
            if not bad.any():
                break
            lo, hi, m = lo[bad], hi[bad], m[bad]
            w, owner, kind, base = (np.concatenate([v[bad], v[bad]]) for v in (w, owner, kind, base))
            lo, hi = np.concatenate([lo, m]), np.concatenate([m, hi])
        if capped > 1e3 * self.epsrel * scale_total:
            import warnings

            warnings.warn(f"ScipyPrior({self.name}): quadrature effort capped at {self.max_depth} halvings; "
                          f"relative error up to {capped / scale_total:.1e}", RuntimeWarning, stacklevel=3)
        return out

    # ------------------------------------------------------------------ public integrals
    def _partial_moments(self, a, b):
        za, zb = self._z(a), self._z(b)
        shape = np.broadcast(za, zb).shape
        p = self._zmass(np.ravel(za), np.ravel(zb)).reshape(shape)
        z1 = self._zint(za, zb, 0.0, 1).reshape(shape)
        z2 = self._zint(za, zb, 0.0, 2).reshape(shape)
        L, S = self._loc, self._scale
        return p, L * p + S * z1, L * L * p + 2 * L * S * z1 + S * S * z2

    def interval_sq_error(self, a, b, y):
        a, b, y = _bcast(a, b, y)
        v = self._zint(self._z(a), self._z(b), self._z(y), 2).reshape(a.shape)
        return _scale_sq(v, self._scale)

    def interval_mean_error(self, a, b, y):
        a, b, y = _bcast(a, b, y)
        return self._scale * self._zint(self._z(a), self._z(b), self._z(y), 1).reshape(a.shape)

    def prob(self, a, b):
        a, b = _bcast(a, b)
        zlo, zhi = self._zsupport
        za, zb = np.clip(self._z(a), zlo, zhi), np.clip(self._z(b), zlo, zhi)
        if self._hist is not None:
            return _hist_zint(self._hist, za.ravel(), zb.ravel(), np.zeros(za.size), 0).reshape(a.shape)
        return np.where(zb > za, self._zmass(za, zb), 0.0)


def _scale_sq(v, s: float):
    """``v · s²`` without intermediate overflow/underflow of ``s²``."""
    e = _pow2_exponent(s)
    m = math.ldexp(s, -e)
    return _ldexp(v * (m * m), 2 * e)


def _checked_ldexp(v: float, e: int, prior) -> float:
    """``v · 2^e`` for a scale; a scale that vanishes means the clip is beyond float64's reach of it."""
    out = math.ldexp(v, e) if v != 0.0 else 0.0
    if v != 0.0 and (out == 0.0 or not math.isfinite(out)):
        raise param_error("alpha", "clipping_mse", "at most ~1e300 times the prior's scale (their ratio must be "
                          "a float64)", f"a clip too large for {prior!r}")
    return out


def _freeze_histogram(dist):
    """Accept an unfrozen ``rv_histogram`` (it has no shape parameters) as its frozen self."""
    from scipy import stats

    if isinstance(dist, stats.rv_histogram):
        return dist.freeze()
    return dist


def _hist_moments(edges, dens):
    """Mean and variance of a piecewise-uniform density, computed at unit scale (no overflow)."""
    e = _pow2_exponent(float(np.max(np.abs(edges))))
    x = np.ldexp(edges, -e)
    h = np.diff(x)
    p = dens * np.ldexp(h, e)
    p = p / p.sum()
    m = 0.5 * (x[1:] + x[:-1])
    mean = float(np.sum(p * m))
    var = float(np.sum(p * ((m - mean) ** 2 + h * h / 12.0)))
    return math.ldexp(mean, e), float(_ldexp(var, 2 * e))


def _hist_zint(hist, a, b, w, j):
    """Exact ``∫_a^b (z − w)^j h(z) dz`` for a piecewise-constant density ``h`` on ``edges``."""
    edges, dens = hist
    a = np.clip(a, edges[0], edges[-1])
    b = np.clip(b, edges[0], edges[-1])
    ia = np.searchsorted(edges, a, side="right")  # first edge strictly inside (a, ...)
    ib = np.searchsorted(edges, b, side="left")  # edges < b
    n_in = np.maximum(ib - ia, 0)
    owner = np.repeat(np.arange(a.size), n_in + 1)
    start = np.repeat(np.cumsum(n_in + 1) - (n_in + 1), n_in + 1)
    pos = np.arange(owner.size) - start
    inner = ia[owner] + pos
    lo = np.where(pos == 0, a[owner], edges[np.minimum(inner - 1, edges.size - 1)])
    hi = np.where(pos == n_in[owner], b[owner], edges[np.minimum(inner, edges.size - 1)])
    mid = 0.5 * (lo + hi)
    k = np.clip(np.searchsorted(edges, mid, side="right") - 1, 0, dens.size - 1)
    hw = np.maximum(hi - lo, 0.0)
    mass = dens[k] * hw
    d = mid - w[owner]
    if j == 0:
        v = mass
    elif j == 1:
        v = mass * d
    else:
        v = mass * (d * d + hw * hw / 12.0)
    return np.bincount(owner, weights=v, minlength=a.size)


# ================================================================================ samples
class Empirical(Prior):
    """The empirical distribution of a 1-D array of samples (each with mass 1/N).

    Intervals are half-open ``[a, b)``. MSEs are exact sums over the samples. ``cdf(x)`` is the
    fraction of samples ``<= x`` and ``ppf`` its generalised inverse: the k-th smallest sample for
    ``(k − 1)/N < q <= k/N`` (numpy's ``quantile(..., method="inverted_cdf")``), the smallest at 0.

    Examples
    --------
    >>> p = Empirical([0.0, 1.0, 2.0, 3.0])
    >>> p.mean, p.var
    (1.5, 1.25)
    >>> p.ppf([0.0, 0.25, 0.3, 1.0]).tolist()
    [0.0, 0.0, 1.0, 3.0]
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

    def _ppf(self, q):
        # The generalised inverse of cdf (a step function, F(x) = #{x_i <= x} / n): the k-th
        # smallest sample (k = 1..n) for (k − 1)/n < q <= k/n, the smallest sample at q = 0.
        # k is ceil(q n), corrected so that the comparison uses the very values k / n that cdf returns.
        n = self.n
        with np.errstate(over="ignore", invalid="ignore"):
            k = np.clip(np.ceil(q * n), 1, n).astype(np.int64)
        k = np.where((k > 1) & ((k - 1) / n >= q), k - 1, k)
        k = np.where((k < n) & (k / n < q), k + 1, k)
        return self.x[k - 1]

    def _rvs(self, size, rng):
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
    >>> p.ppf([0.25, 0.5, 0.75]).round(6).tolist()   # every q up to the atom maps to 0
    [0.0, 0.0, 0.67449]
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

    def sf(self, x):
        """``P(X > x)``: the base's tail above ``x >= 0``, 1 below 0 (no density: the atom at 0)."""
        x = np.asarray(x, float)
        tail = self.base.sf(np.maximum(x, 0.0)) if hasattr(self.base, "sf") else 1.0 - self.base.cdf(np.maximum(x, 0.0))
        return np.where(x < 0, 1.0, tail)

    def abs_quantile(self, q):
        return max(self.base.abs_quantile(q), 0.0)

    def _ppf(self, q):
        # the atom P(X <= 0) sits at 0: every q up to it maps to 0 (the lower end of the support)
        return np.where(q <= self.atom, 0.0, self.base._ppf(np.where(q <= self.atom, 0.5, q)))

    def _rvs(self, size, rng):
        return np.maximum(self.base.rvs(size, rng), 0.0)

    def _magnitude(self) -> float:
        return self.base._magnitude()

    def _scaled(self, e: int) -> Rectified:
        return Rectified(self.base._scaled(e))

    def interval_mean_error(self, a, b, y):
        a, b, y = _bcast(a, b, y)
        cont = self.base.interval_mean_error(np.maximum(a, 0.0), np.maximum(b, 0.0), y)
        return cont - self.atom * y * self._atom_in(a, b)

    def _atom_in(self, a, b):
        return (a <= 0.0) & (b > 0.0)

    def prob(self, a, b):
        a, b = _bcast(a, b)
        return self.base.prob(np.maximum(a, 0.0), np.maximum(b, 0.0)) + self.atom * self._atom_in(a, b)

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
    >>> bimodal = Mixture([0.5, 0.5], [Gaussian(0.5, loc=-3.0), Gaussian(0.5, loc=3.0)])
    >>> bimodal.mean, bimodal.var
    (0.0, 9.25)
    >>> float(bimodal.ppf(0.5)), round(float(bimodal.ppf(0.25)), 12)   # ppf by bisection on the cdf
    (0.0, -3.0)
    """

    def __init__(self, weights, components):
        if isinstance(components, (str, bytes, Prior)) or not hasattr(components, "__iter__"):
            raise param_error("components", "Mixture", "a sequence of priors (one per weight)", components, TypeError)
        comps = [as_prior(c, name="components", func="Mixture") for c in components]
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError):
            raise param_error("weights", "Mixture", "a 1-D array of non-negative finite numbers", weights,
                              TypeError) from None
        if w.ndim != 1 or w.size != len(comps) or w.size == 0:
            raise param_error("weights", "Mixture", f"a 1-D array with one weight per component ({len(comps)})",
                              f"shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise param_error("weights", "Mixture", "non-negative finite numbers with a positive sum", w.tolist())
        w = w / w.max()  # (first: a sum of weights near 1.8e308 overflows)
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
        for i, c in enumerate(self.components):
            if not hasattr(c, "pdf"):
                raise TypeError(f"Mixture.pdf: component {i} ({type(c).__name__}) has no density "
                                "(samples or an atom): use cdf or partial_moments")
        return sum(w * c.pdf(x) for w, c in zip(self.weights, self.components, strict=True))

    def cdf(self, x):
        return sum(w * c.cdf(x) for w, c in zip(self.weights, self.components, strict=True))

    def abs_quantile(self, q):
        return max(c.abs_quantile(1 - (1 - q) / len(self.components)) for c in self.components)

    def _ppf(self, q):
        # inf{x : F(x) >= q} by bisection over the float64 numbers themselves (at most 64 halvings,
        # exact to one ulp of float arithmetic): F = Σ w_i F_i lies between the components, so the
        # answer lies in [min_i ppf_i(q), max_i ppf_i(q)].
        qs = [np.asarray(c._ppf(q), dtype=np.float64) for c in self.components]
        lo_x, hi_x = np.minimum.reduce(qs), np.maximum.reduce(qs)
        inner = (q > 0) & (q < 1)
        out = np.where(q == 0, lo_x, hi_x)
        if not inner.any():
            return out
        qi, lo_x, hi_x = q[inner], lo_x[inner], hi_x[inner]
        done = self.cdf(lo_x) >= qi
        hi_x = np.where(self.cdf(hi_x) >= qi, hi_x, np.inf)  # (guards a rounded-down F at the bracket)
        lo, hi = _float_key(lo_x), _float_key(hi_x)
        for _ in range(66):
            mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without int64 overflow
            todo = mid > lo  # (hi - lo could overflow)
            if not todo.any():
                break
            up = self.cdf(_key_float(mid)) >= qi
            hi = np.where(todo & up, mid, hi)
            lo = np.where(todo & ~up, mid, lo)
        out[inner] = np.where(done, lo_x, _key_float(hi))
        return out

    def _rvs(self, size, rng):
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

    def interval_mean_error(self, a, b, y):
        return sum(w * c.interval_mean_error(a, b, y) for w, c in zip(self.weights, self.components, strict=True))

    def prob(self, a, b):
        return sum(w * c.prob(a, b) for w, c in zip(self.weights, self.components, strict=True))

    def _magnitude(self) -> float:
        mags = [c._magnitude() for c in self.components]
        return 0.0 if min(mags) == 0.0 else max(mags)

    def _scaled(self, e: int) -> Mixture:
        return Mixture(self.weights, [c._scaled(e) for c in self.components])


def _standardised(prior: Prior, e: int | None = None) -> tuple[Prior, int]:
    """``(the prior of X / 2^e, e)``, exact (a power-of-two scaling changes no significand).

    ``e`` defaults to the prior's own unit (:meth:`Prior._unit_exponent`; samples: the power of two
    just above ``max|x|``). ``(prior, 0)`` where no standardisation applies: all-zero samples, or a
    prior whose scaled form would leave the float64 range (e.g. a mixture of components ~1e300 apart).
    """
    if isinstance(prior, Empirical):
        x = prior.x
        if e is None:
            e = _pow2_exponent(float(max(-x[0], x[-1]))) if x.size else 0
        return (Empirical(_ldexp(x, -e)), e) if e else (prior, 0)
    if e is None:
        e = prior._unit_exponent()
    if not e:
        return prior, 0
    try:
        return prior._scaled(e), e
    except (ValueError, NotImplementedError):
        return prior, 0


_SIGN = np.uint64(1 << 63)


def _float_key(x):
    """float64 -> int64 in the same order (−0.0 and +0.0 both map to 0; ±inf at the ends)."""
    u = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(u >= 0, u, -(u & np.int64(0x7FFFFFFFFFFFFFFF)))


def _key_float(k):
    """The inverse of :func:`_float_key`."""
    k = np.asarray(k, dtype=np.int64)
    mag = np.abs(k).astype(np.uint64)
    return np.where(k >= 0, mag, mag | _SIGN).view(np.float64)


# ================================================================================ coercion
_NAMES = {"laplace": Laplace, "gaussian": Gaussian, "normal": Gaussian}


def as_prior(obj: PriorLike, *, name: str = "prior", func: str = "as_prior") -> Prior:
    """Coerce ``obj`` to a :class:`Prior`.

    Parameters
    ----------
    obj : str, frozen scipy.stats distribution, array_like or Prior
        ``"laplace"``, ``"gaussian"`` / ``"normal"`` (unit scale); a frozen continuous
        ``scipy.stats`` distribution (``norm``/``laplace`` become closed forms; a
        ``scipy.stats.rv_histogram`` may be given unfrozen); a 1-D array
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
    if type(obj).__module__.startswith("scipy") and hasattr(obj, "_hbins"):  # rv_histogram: no shapes
        return ScipyPrior(obj.freeze())
    if hasattr(obj, "dist") and hasattr(obj, "rvs") and type(obj).__module__.startswith("scipy"):
        _check_frozen_continuous(obj, name, func)
        dname = _dist_name(obj)
        if dname in ("norm", "laplace") and not obj.args[2:] and set(obj.kwds) <= {"loc", "scale"}:
            loc, scale = _loc_scale(obj)
            return Gaussian(scale, loc=loc) if dname == "norm" else Laplace(scale, loc=loc)
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
