"""sympy derivations behind :mod:`qtheory.sat` (SAT variance rules, arXiv v1 argument).

Each function returns sympy expressions; the tests compare them with the numeric functions of
:mod:`qtheory.sat`.

Examples
--------
>>> from qtheory.symbolic import sat as ssat
>>> ssat.logit_variance()["variance"]
m_2*n*s_w**2
>>> ssat.sat_scaled_variance()
1/n_out
>>> ssat.uniform_error_moments()
{'mean_abs': Delta/4, 'mean_square': Delta**2/12, 'mean': 0}
"""

from __future__ import annotations

__all__ = [
    "logit_variance",
    "gradient_variance_factor",
    "sat_scaled_variance",
    "uniform_error_moments",
    "small_sigma_clamp_limit",
    "extreme_value_correction",
]


def logit_variance():
    """``Var[Σ_j Ξ_j ȳ_j]`` for i.i.d. zero-mean weights independent of the inputs.

    ``E[z²] = Σ_j Σ_k E[Ξ_j Ξ_k] E[ȳ_j ȳ_k]`` with ``E[Ξ_j Ξ_k] = s_w² δ_jk``; ``E[z] = 0``.
    The inputs may have a non-zero mean and be correlated: only their mean square
    ``m_2 = E[ȳ_j²]`` survives. (For DoReFa weights the Ξ_j are not independent — they share the
    maximum — but ``E[Ξ_j Ξ_k] = 0`` still holds by sign symmetry.)

    Returns
    -------
    dict
        ``{"second_moment": E[z²] with a weight mean mu_w, "variance": n·s_w²·m_2}`` (at
        ``mu_w = 0``).

    >>> logit_variance()["variance"]
    m_2*n*s_w**2
    """
    import sympy as sp

    n = sp.Symbol("n", integer=True, positive=True)
    s_w, m_2 = sp.symbols("s_w m_2", positive=True)
    mu_w, c = sp.symbols("mu_w c", real=True)   # E[Ξ_j]; E[ȳ_j ȳ_k] for j ≠ k
    # n diagonal terms E[Ξ_j²]E[ȳ_j²] + n(n−1) off-diagonal terms E[Ξ_j Ξ_k]E[ȳ_j ȳ_k]
    second = n * (s_w**2 + mu_w**2) * m_2 + n * (n - 1) * mu_w**2 * c
    mean = n * mu_w * sp.Symbol("m_1", real=True)
    variance = sp.expand(second - mean**2).subs(mu_w, 0)
    return {"second_moment": second, "variance": variance}


def gradient_variance_factor():
    """Backward through ``g_in = Ξᵀ g_out``: ``Var[g_in] = n_out · s_w² · Var[g_out]``.

    >>> gradient_variance_factor()
    n_out*s_w**2
    """
    import sympy as sp

    n_out = sp.Symbol("n_out", integer=True, positive=True)
    j = sp.Symbol("j", integer=True, positive=True)
    s_w, v_g = sp.symbols("s_w v_g", positive=True)
    var_in = sp.Sum(s_w**2 * v_g, (j, 1, n_out)).doit()
    return sp.simplify(var_in / v_g)


def sat_scaled_variance():
    """``Var[Q / sqrt(n_out Var[Q])] = 1/n_out`` (the scale is a constant).

    >>> sat_scaled_variance()
    1/n_out
    """
    import sympy as sp

    n_out = sp.Symbol("n_out", integer=True, positive=True)
    v_q = sp.Symbol("v_q", positive=True)
    scale = 1 / sp.sqrt(n_out * v_q)
    return sp.simplify(scale**2 * v_q)


def uniform_error_moments():
    """Moments of ``e = q_k(u) − u`` for ``u`` uniform within a bin of width Δ.

    ``E|e| = Δ/4``, ``E[e²] = Δ²/12``, ``E[e] = 0`` — the size of calibrated PACT's in-range
    term (:func:`qtheory.sat.pact_error_term` with ``method="uniform"``).

    >>> uniform_error_moments()["mean_abs"]
    Delta/4
    """
    import sympy as sp

    d, e = sp.Symbol("Delta", positive=True), sp.Symbol("e", real=True)
    half = d / 2
    return {
        "mean_abs": sp.simplify(sp.integrate(sp.Abs(e), (e, -half, half)) / d),
        "mean_square": sp.simplify(sp.integrate(e**2, (e, -half, half)) / d),
        "mean": sp.simplify(sp.integrate(e, (e, -half, half)) / d),
    }


def small_sigma_clamp_limit():
    """``lim_{σ→0} E[tanh²(σZ)] / tanh²(σ u) = 1/u²``: the clamp variance forgets σ.

    Uses the series ``tanh²(x) = x² − 2x⁴/3 + …`` and ``E[Z²] = 1``, ``E[Z⁴] = 3``.

    Returns
    -------
    dict
        ``{"limit": 1/u**2, "first_order": c}`` with the ratio ``≈ (1 + c σ²)/u²``,
        ``c = 2u²/3 − 2`` (positive for u > √3: the clamp variance grows slowly with σ).

    >>> small_sigma_clamp_limit()["limit"]
    u**(-2)
    """
    import sympy as sp

    s, u, x = sp.symbols("sigma u x", positive=True)
    t2 = sp.series(sp.tanh(x) ** 2, x, 0, 6).removeO()
    # E over Z ~ N(0, 1) of the series with x = σZ: replace x^2 -> σ² E[Z²], x^4 -> σ⁴ E[Z⁴]
    moments = {0: 1, 2: 1, 4: 3}               # E[Z^k]; odd moments vanish
    num = sum(coef * s**k * moments[k] for (k,), coef in sp.Poly(t2, x).terms())
    den = t2.subs(x, s * u)
    ratio = sp.series(num / den, s, 0, 4).removeO()
    return {"limit": sp.limit(ratio, s, 0), "first_order": sp.simplify(sp.expand(ratio * u**2 - 1).coeff(s, 2))}


def extreme_value_correction():
    """First-order Gumbel correction of the extreme-value clamp variance.

    The maximum of N draws of ``|Z|`` is ≈ ``u + G/u`` with G Gumbel (mean γ), so for small σ
    ``E[1/M²] ≈ (1/u²)(1 − 2γ/u²)``: the extreme-value form ``1/u²`` over-estimates by the
    relative amount ``2γ/u²`` to first order (the bound documented in :mod:`qtheory.sat`).

    >>> extreme_value_correction()
    2*EulerGamma/u**2
    """
    import sympy as sp

    u, eps = sp.symbols("u epsilon", positive=True)
    m = u + eps * sp.EulerGamma / u          # eps tracks the order of the correction
    inv2 = sp.series(1 / m**2, eps, 0, 2).removeO()
    rel = sp.simplify((1 / u**2 - inv2.subs(eps, 1)) / (1 / u**2))
    return sp.simplify(rel)
