"""STE threshold gradients derived with sympy from the quantizers' definitions.

A straight-through estimator is an ordinary derivative of a forward pass in which the
non-differentiable pieces are written with a *stop-gradient*: ``⌊u⌉ = u + sg(⌊u⌉ − u)`` and
``⌈θ⌉ = θ + sg(⌈θ⌉ − θ)``. Here each ``sg(...)`` is a sympy symbol that does not depend on the
parameter (``delta`` for the rounding residual, ``c`` for the ceiling residual); after
differentiating, ``delta`` is replaced by ``r − u``.

Derived:

1. TQT: ``s = 2^⌈θ⌉ / 2^(b−1)`` ⇒ ``∂q/∂θ = s·ln2·(r − u)`` in range, ``s·ln2·n`` / ``s·ln2·p``
   clipped, and ``∂L/∂θ = s²·ln2·(r − u)²`` etc. for ``L = ½(q − x)²`` (:func:`tqt_gradient`);
2. LSQ's ``∂q/∂s = r − u`` and the relation ``TQT = LSQ × s·ln2`` (away from the edge half-bins,
   where the two range tests differ) (:func:`tqt_lsq_relation`);
3. raw vs log threshold: ``∂L/∂t = ∂L/∂θ / (t·ln2)`` for ``θ = log2 t`` (:func:`raw_vs_log`);
4. calibrated PACT: autograd of ``α·q_b(clip(x, 0, α)/α)`` gives ``q_b(x/α) − x/α`` in range and 1
   above ``α`` (:func:`calibrated_pact_gradient`);
5. the mean in-bin term: ``E[(r − u)²] = 1/12`` for ``u`` uniform within a bin, so in range
   ``E[∂L/∂θ] ≈ s²·ln2/12`` — the push towards finer steps (:func:`in_range_mean`).

:func:`verify` checks every identity with ``simplify(lhs − rhs) == 0``.

Examples
--------
>>> from qtheory.symbolic import ste
>>> d = ste.tqt_gradient()
>>> d["dq_dtheta_inside"]
s*(r - u)*log(2)
>>> ste.tqt_lsq_relation()
s*log(2)
>>> ste.raw_vs_log()
Derivative(L(theta), theta)/(t*log(2))
>>> ste.in_range_mean()
1/12
"""

from __future__ import annotations

import sympy as sp

__all__ = ["symbols", "tqt_gradient", "lsq_gradient", "tqt_lsq_relation", "raw_vs_log",
           "calibrated_pact_gradient", "in_range_mean", "verify"]

x = sp.Symbol("x", real=True)
theta = sp.Symbol("theta", real=True)
t = sp.Symbol("t", positive=True)
b = sp.Symbol("b", positive=True, integer=True)
s = sp.Symbol("s", positive=True)
alpha = sp.Symbol("alpha", positive=True)
u = sp.Symbol("u", real=True)
r = sp.Symbol("r", integer=True)
n = sp.Symbol("n", integer=True)
p = sp.Symbol("p", integer=True)
m = sp.Symbol("m", positive=True, integer=True)
delta = sp.Symbol("delta", real=True)   # sg(round(u) - u)
c = sp.Symbol("c", real=True)           # sg(ceil(theta) - theta)


def symbols() -> dict:
    """The sympy symbols used (``delta``, ``c`` are the stop-gradient residuals)."""
    return {k: v for k, v in globals().items() if isinstance(v, sp.Symbol)}


def _tqt_scale():
    # s = 2^ceil(theta) / 2^(b-1), ceil(theta) = theta + c with c constant (straight-through)
    return 2 ** (theta + c) / 2 ** (b - 1)


def _in_s(expr):
    """Rewrite an expression in ``theta, c, b`` through ``s`` (``theta = log2(s) − c + b − 1``)."""
    return sp.factor(sp.simplify(sp.expand_log(expr.subs(theta, sp.log(s, 2) - c + b - 1), force=True)))


def tqt_gradient() -> dict:
    """TQT's ``∂q/∂θ`` and ``∂L/∂θ`` (``L = ½(q − x)²``), region by region, in terms of ``s, r, u``.

    Examples
    --------
    >>> d = tqt_gradient()
    >>> d["dq_dtheta_below"], d["dL_dtheta_inside"]
    (n*s*log(2), s**2*(r - u)**2*log(2))
    """
    S = _tqt_scale()
    X = sp.Symbol("X", real=True)               # x, independent of theta
    inside = S * (X / S + delta)                # clip inactive: q = s·(u + sg(r − u))
    below, above = S * n, S * p                 # clipped: q = s·n, s·p
    out = {"s": S}
    for name, q in (("inside", inside), ("below", below), ("above", above)):
        dq = sp.diff(q, theta)
        dL = sp.diff(sp.Rational(1, 2) * (q - X) ** 2, theta)
        sub = {delta: r - X / S}                # delta = r − u, u = x/s
        dq, dL = _in_s(dq.subs(sub)), _in_s(dL.subs(sub))
        out[f"dq_dtheta_{name}"] = sp.factor(dq.subs(X, u * s))
        out[f"dL_dtheta_{name}"] = sp.factor(dL.subs(X, u * s))
    return out


def lsq_gradient() -> dict:
    """LSQ's ``∂q/∂s``: ``r − u`` in range (``q = s·(u + sg(r − u))``), ``n`` / ``p`` clipped.

    Examples
    --------
    >>> lsq_gradient()["dq_ds_inside"]
    r - u
    """
    X = sp.Symbol("X", real=True)
    out = {}
    for name, q in (("inside", s * (X / s + delta)), ("below", s * n), ("above", s * p)):
        out[f"dq_ds_{name}"] = sp.simplify(sp.diff(q, s).subs({X: u * s, delta: r - u}))
    return out


def tqt_lsq_relation() -> sp.Expr:
    """``(∂q/∂θ)_TQT / (∂q/∂s)_LSQ`` — the same in every region: ``s·ln2`` (``= ∂s/∂θ``).

    The rules still differ in the edge half-bins ``u ∈ [p, p + ½)`` and ``[n − ½, n)``, which
    TQT's rounded range test counts as inside and LSQ's unrounded test as clipped.
    """
    tq, lq = tqt_gradient(), lsq_gradient()
    ratios = {sp.simplify(tq[f"dq_dtheta_{k}"] / lq[f"dq_ds_{k}"]) for k in ("inside", "below", "above")}
    if len(ratios) != 1:  # pragma: no cover - would mean the derivation is wrong
        raise AssertionError(ratios)
    return ratios.pop()


def raw_vs_log() -> sp.Expr:
    """``∂L/∂t`` in terms of ``∂L/∂θ`` for ``θ = log2 t`` (chain rule on an arbitrary ``L``)."""
    L = sp.Function("L")
    expr = sp.diff(L(sp.log(t, 2)), t)
    # rename the derivative of L at log2(t) as dL/dθ
    return sp.simplify(expr.subs(sp.log(t) / sp.log(2), theta).doit())


def calibrated_pact_gradient() -> dict:
    """Autograd of ``α·q_b(clip(x, 0, α)/α)`` with a straight-through round (SAT's calibrated
    PACT): in range ``q_b(x/α) − x/α``; above ``α``: 1. Also its LSQ form ``(r − u)/m``,
    ``m = 2^b − 1``, ``u = x·m/α``."""
    X = sp.Symbol("X", positive=True)
    qb = sp.Symbol("qb", real=True)             # q_b(x/α), the rounded value
    v = sp.Symbol("v", real=True)               # sg(q_b(y) − y), y = clip(x, 0, α)/α
    y_in, y_above = X / alpha, alpha / alpha    # 0 < x < α: y = x/α;  x ≥ α: y = 1 (q_b(1) = 1, v = 0)
    d_in = sp.diff(alpha * (y_in + v), alpha).subs(v, qb - X / alpha)
    d_above = sp.diff(alpha * (y_above + 0), alpha)
    lsq_form = d_in.subs({qb: r / m, X: u * alpha / m})
    return {"dq_dalpha_inside": sp.simplify(d_in), "dq_dalpha_above": d_above,
            "lsq_form": sp.simplify(lsq_form), "qb": qb}


def in_range_mean() -> sp.Expr:
    """``E[(r − u)²]`` for ``u`` uniform on a bin ``[r − ½, r + ½]``: ``1/12``."""
    return sp.simplify(sp.integrate((r - u) ** 2, (u, r - sp.Rational(1, 2), r + sp.Rational(1, 2))))


def verify() -> dict:
    """Every identity of this module as ``{name: bool}`` (each checked with ``simplify``).

    Examples
    --------
    >>> v = verify()
    >>> len(v), all(v.values())
    (13, True)
    """
    tq, lq, cp = tqt_gradient(), lsq_gradient(), calibrated_pact_gradient()
    L = sp.Function("L")
    checks = {
        "tqt_inside": tq["dq_dtheta_inside"] - s * sp.log(2) * (r - u),
        "tqt_below": tq["dq_dtheta_below"] - s * sp.log(2) * n,
        "tqt_above": tq["dq_dtheta_above"] - s * sp.log(2) * p,
        "tqt_loss_inside": tq["dL_dtheta_inside"] - s**2 * sp.log(2) * (r - u) ** 2,
        "tqt_loss_below": tq["dL_dtheta_below"] - s**2 * sp.log(2) * n * (n - u),
        "tqt_loss_above": tq["dL_dtheta_above"] - s**2 * sp.log(2) * p * (p - u),
        "lsq_inside": lq["dq_ds_inside"] - (r - u),
        "tqt_is_lsq_times_s_ln2": tqt_lsq_relation() - s * sp.log(2),
        "raw_vs_log": raw_vs_log() - sp.Subs(sp.Derivative(L(theta), theta), theta, theta).doit() / (t * sp.log(2)),
        "calibrated_pact_inside": cp["dq_dalpha_inside"] - (cp["qb"] - sp.Symbol("X", positive=True) / alpha),
        "calibrated_pact_above": cp["dq_dalpha_above"] - 1,
        "calibrated_pact_is_lsq_over_m": cp["lsq_form"] - (r - u) / m,
        "in_range_mean": in_range_mean() - sp.Rational(1, 12),
    }
    return {k: sp.simplify(v) == 0 for k, v in checks.items()}
