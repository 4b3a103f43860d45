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
        """``f(alpha, scale, M) -> (clipping, noise)`` as a numpy function (via ``lambdify``)."""
        scale = b if self.prior == "laplace" else sigma
        return sp.lambdify((alpha, scale, M), (self.clipping, self.noise), modules=["numpy", "scipy"])


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

    >>> float(optimal_alpha("laplace", 4))
    5.028640136...
    """
    prior = check_option(prior, "prior", "optimal_alpha", ("laplace", "gaussian"))
    bits = check_int(bits, "bits", "optimal_alpha", 0, 16)
    d = derive(prior)
    scale = b if prior == "laplace" else sigma
    eq = (d.stationarity.lhs - d.stationarity.rhs).subs({scale: 1, M: bits})
    # the residual increases in alpha; bracket and solve with the Illinois (regula falsi) method
    return sp.nsolve(eq, alpha, (0.01, 40.0), solver="illinois", prec=digits)
