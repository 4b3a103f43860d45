"""ACIQ derived with sympy from the densities.

The derivation integrates the density instead of quoting the paper:

1. clipping term ``2 ∫_α^∞ (x − α)² p(x) dx`` (symmetric prior, both tails);
2. noise term ``Δ²/12`` from a uniform error on ``[−Δ/2, Δ/2]`` with ``Δ = 2α/2^M``;
3. ``E(α) = clipping + noise``, its derivative, and the stationarity condition ``dE/dα = 0``;
4. the exact error of one bin, ``∫_a^b (x − y)² p(x) dx``, the building block of the exact MSE.

:func:`derive` returns an :class:`ACIQDerivation` whose expressions render as LaTeX in
Jupyter. :func:`paper_forms` gives the expressions as printed in the paper, so a test can
show that derivation and paper agree exactly (``simplify(derived - paper) == 0``).

Examples
--------
>>> from qtheory.symbolic import aciq
>>> d = aciq.derive("laplace")
>>> d.clipping
2*b**2*exp(-alpha/b)
>>> d.noise
alpha**2/(3*4**M)
>>> d.stationarity
Eq(2*alpha/(3*4**M), 2*b*exp(-alpha/b))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .._validation import check_int, check_option

__all__ = ["derive", "paper_forms", "ACIQDerivation", "symbols", "optimal_alpha"]

x = sp.Symbol("x", real=True)
alpha = sp.Symbol("alpha", positive=True)
b = sp.Symbol("b", positive=True)
sigma = sp.Symbol("sigma", positive=True)
M = sp.Symbol("M", nonnegative=True, integer=True)
Delta = sp.Symbol("Delta", positive=True)


def symbols() -> dict:
    """The sympy symbols used in the derivations."""
    return {"x": x, "alpha": alpha, "b": b, "sigma": sigma, "M": M, "Delta": Delta}


def density(prior: str) -> tuple[sp.Expr, sp.Symbol]:
    """Density on ``x >= 0`` (the prior is symmetric) and its scale symbol."""
    prior = check_option(prior, "prior", "density", ("laplace", "gaussian"))
    if prior == "laplace":
        return sp.exp(-x / b) / (2 * b), b
    return sp.exp(-(x**2) / (2 * sigma**2)) / (sp.sqrt(2 * sp.pi) * sigma), sigma


@dataclass(frozen=True)
class ACIQDerivation:
    """The ACIQ expressions for one prior (sympy).

    Attributes
    ----------
    prior : str
    density : sympy.Expr
        ``p(x)`` for ``x >= 0``.
    clipping, noise, mse, derivative : sympy.Expr
    stationarity : sympy.Eq
        ``dE/dα = 0`` rearranged as (noise slope) = (clipping pull).
    bin_error : sympy.Expr
        ``∫_a^b (x − y)² p(x) dx`` for ``0 <= a < b`` (symbols ``a, b_, y``).
    """

    prior: str
    density: sp.Expr
    clipping: sp.Expr
    noise: sp.Expr
    mse: sp.Expr
    derivative: sp.Expr
    stationarity: sp.Eq
    bin_error: sp.Expr

    def _repr_latex_(self) -> str:
        rows = [
            (r"p(x)", self.density),
            (r"E_{\mathrm{clip}}(\alpha)", self.clipping),
            (r"E_{\mathrm{noise}}(\alpha)", self.noise),
            (r"\frac{dE}{d\alpha}", self.derivative),
        ]
        body = r" \\ ".join(f"{k} &= {sp.latex(v)}" for k, v in rows)
        body += r" \\ \text{optimum: } & " + sp.latex(self.stationarity)
        return r"$\begin{aligned}" + body + r"\end{aligned}$"

    def numeric(self):
        """``f(alpha, scale, M) -> (clipping, noise)`` as a numpy function (via ``lambdify``).

        The Gaussian clipping term is evaluated in its ``erfc`` form
        ``(α² + σ²)·erfc(α/(√2σ)) − √(2/π)·α·σ·e^{−α²/(2σ²)}`` (the derived expression with
        ``erf = 1 − erfc``, expanded so that the ``α² + σ²`` terms cancel symbolically). Its two
        terms still cancel for large ``t = α/σ`` (relative conditioning about ``t⁴/2``), so where
        ``t > 2`` it is evaluated with mpmath at 30 significant digits (about 0.2 ms per value)
        and rounded to float64; elsewhere in float64 with ``scipy.special.erfc``. The result is
        accurate to about 1e-13 relative wherever it is a normal float64.

        Returns
        -------
        callable
            ``f(alpha, scale, M)`` for numbers or numpy arrays (broadcast); returns the pair of
            float64 arrays (float64 scalars for scalar arguments).

        Examples
        --------
        >>> f = derive("gaussian").numeric()
        >>> clip, noise = f(8.0, 1.0, 8)
        >>> float(clip)             # 2·∫_8^∞ (x − 8)² φ(x) dx
        3.6150128942917...e-17
        """
        scale = b if self.prior == "laplace" else sigma
        clipping = _erfc_form(self.clipping)
        f64 = sp.lambdify((alpha, scale, M), (clipping, self.noise), modules=["numpy", "scipy"])
        hp = sp.lambdify((alpha, scale), clipping, modules="mpmath")

        def f(alpha_, scale_, m_):
            a, s = np.broadcast_arrays(np.asarray(alpha_, dtype=float), np.asarray(scale_, dtype=float))
            m_ = np.asarray(m_, dtype=float)  # (4**M of a negative integer power: numpy refuses integers)
            if self.prior == "laplace":
                return f64(a[()], s[()], m_[()])
            with np.errstate(all="ignore"):
                clip, noise = f64(a, s, m_)
                clip = np.array(np.broadcast_to(clip, a.shape), dtype=float)
                far = a > 2.0 * s  # (False for NaN)
            if far.any():
                import mpmath

                with mpmath.workdps(30):
                    clip[far] = [float(hp(mpmath.mpf(float(u)), mpmath.mpf(float(v))))
                                 for u, v in zip(a[far], s[far], strict=True)]
            return clip[()], noise

        return f


def _erfc_form(expr: sp.Expr) -> sp.Expr:
    """``expr`` with ``erf(z)`` written as ``1 − erfc(z)`` and expanded (no ``1 − erf`` cancellation)."""
    if not expr.has(sp.erf):
        return expr
    return sp.expand(expr.replace(sp.erf, lambda z: 1 - sp.erfc(z)))


def derive(prior: str = "laplace") -> ACIQDerivation:
    """Derive ACIQ's clipping MSE for ``prior`` ("laplace" or "gaussian") from its density."""
    return _derive(check_option(prior, "prior", "derive", ("laplace", "gaussian")))


@functools.cache
def _derive(prior: str) -> ACIQDerivation:
    p, _ = density(prior)
    # sympy may return erf or erfc depending on hash order; write the result with erf only
    clipping = sp.simplify(sp.simplify(2 * sp.integrate((x - alpha) ** 2 * p, (x, alpha, sp.oo))).rewrite(sp.erf))
    e = sp.Symbol("e", real=True)
    noise_delta = sp.integrate(e**2 / Delta, (e, -Delta / 2, Delta / 2))  # Δ²/12
    noise = alpha**2 / (3 * 4**M)  # the same expression written with 4^M instead of 2^(2M):
    if sp.simplify(noise - noise_delta.subs(Delta, 2 * alpha / 2**M)) != 0:  # pragma: no cover
        raise AssertionError("noise term derivation failed")
    mse = clipping + noise
    derivative = sp.simplify(sp.diff(mse, alpha))
    # stationarity: noise slope = minus the clipping slope
    stationarity = sp.Eq(sp.diff(noise, alpha), sp.simplify(-sp.diff(clipping, alpha)))
    a_, b_, y = sp.symbols("a b_ y", real=True)
    bin_error = sp.integrate((x - y) ** 2 * p, (x, a_, b_))
    return ACIQDerivation(prior, p, clipping, noise, mse, derivative, stationarity, bin_error)


def paper_forms(prior: str = "laplace") -> dict:
    """The expressions as printed in the ACIQ paper (``clipping``, ``noise``, ``condition``)."""
    prior = check_option(prior, "prior", "paper_forms", ("laplace", "gaussian"))
    noise = alpha**2 / (3 * 4**M)
    if prior == "laplace":
        clipping = 2 * b**2 * sp.exp(-alpha / b)
        condition = sp.Eq(2 * alpha / (3 * 4**M), 2 * b * sp.exp(-alpha / b))
    else:
        clipping = (alpha**2 + sigma**2) * (1 - sp.erf(alpha / (sp.sqrt(2) * sigma))) - sp.sqrt(
            2 / sp.pi
        ) * alpha * sigma * sp.exp(-(alpha**2) / (2 * sigma**2))
        condition = None
    return {"clipping": clipping, "noise": noise, "condition": condition}


def optimal_alpha(prior: str, bits: int, digits: int = 30) -> sp.Float:
    """α*/scale from the derived stationarity condition, solved with mpmath at ``digits`` precision.

    Independent of :func:`qtheory.optimal_clip` (different code path and precision).

    The condition ``dE/dα = 0`` is multiplied by ``3·4^M/2`` (so that its residual
    ``α − 3·4^M·E[(|X| − α)_+]`` is of the order of ``α`` at every bit-width) and written with
    ``erfc`` instead of ``1 − erf``; the residual increases in ``α``, so its root is bracketed
    between 0 and the first power of two where it is positive and found with mpmath's Anderson
    (bracketing) solver. This solves every ``bits`` in ``0..16``.

    Parameters
    ----------
    prior : {"laplace", "gaussian"}
    bits : int
        ``M``, 0 to 16.
    digits : int
        Working precision in significant decimal digits (15 to 1000).

    Returns
    -------
    sympy.Float
        ``α*/b`` (Laplace) or ``α*/σ`` (Gaussian), with ``digits`` digits.

    Examples
    --------
    >>> float(optimal_alpha("laplace", 4))
    5.028640136...
    >>> float(optimal_alpha("gaussian", 16))
    5.938248084612...
    """
    import mpmath

    prior = check_option(prior, "prior", "optimal_alpha", ("laplace", "gaussian"))
    bits = check_int(bits, "bits", "optimal_alpha", 0, 16)
    digits = check_int(digits, "digits", "optimal_alpha", 15, 1000)
    d = derive(prior)
    scale = b if prior == "laplace" else sigma
    residual = (d.stationarity.lhs - d.stationarity.rhs) * 3 * 4**M / 2
    residual = _erfc_form(residual.subs({scale: 1, M: bits}))
    g = sp.lambdify(alpha, residual, modules="mpmath")
    with mpmath.workdps(digits):
        lo, hi = mpmath.mpf(0), mpmath.mpf(1)
        while g(hi) <= 0:  # g(0) = −3·4^M·E|X| < 0; g(α) ~ α for large α
            lo, hi = hi, 2 * hi
        root = mpmath.findroot(g, (lo, hi), solver="anderson")
        return sp.Float(root, digits)
