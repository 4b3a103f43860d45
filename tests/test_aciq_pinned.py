"""ACIQ's approximation against the exact MSE of real grids: pinned numbers, each recomputed here
independently in mpmath (closed-form tails, per-cell quadrature, a root finder) and compared with
qtheory's closed forms.

Underestimate = 1 − (ACIQ model MSE) / (exact MSE of the grid), at ACIQ's own clip, unit scale.
Midrise: 2^M levels, step 2α/2^M (the grid ACIQ's noise term models, with outer levels at
±(α − Δ/2)). Affine: the official ACIQ code's gemmlowp grid, 2^M levels, step 2α/(2^M − 1), with an
integer zero point (levels (k − 2^(M−1))·Δ; its mirror image has the same MSE).
"""

import mpmath
import pytest

import qtheory

PINNED = {  # percent, 4 decimals
    ("laplace", "midrise"): {2: 28.4309, 3: 17.4970, 4: 9.7533, 8: 0.6703},
    ("gaussian", "midrise"): {2: 31.8017, 3: 19.2748, 4: 10.5887, 8: 0.7132},
    ("laplace", "affine"): {2: 32.1118, 3: 17.1098, 4: 8.9755, 8: 0.6433},
    ("gaussian", "affine"): {2: 42.6574, 3: 22.8228, 4: 11.5904, 8: 0.7174},
}
CASES = [(p, g, m) for (p, g), d in PINNED.items() for m in d]


def _pdf(prior, x):
    return mpmath.exp(-abs(x)) / 2 if prior == "laplace" else mpmath.npdf(x)


def _tail(prior, a):  # E[(|X| − a)_+]
    if prior == "laplace":
        return mpmath.exp(-a)
    return mpmath.sqrt(2 / mpmath.pi) * mpmath.exp(-a**2 / 2) - a * mpmath.erfc(a / mpmath.sqrt(2))


def _clip_term(prior, a):  # E[(|X| − a)_+²]
    if prior == "laplace":
        return 2 * mpmath.exp(-a)
    return (a**2 + 1) * mpmath.erfc(a / mpmath.sqrt(2)) - mpmath.sqrt(2 / mpmath.pi) * a * mpmath.exp(-a**2 / 2)


def _levels(grid, a, m):
    n = 2**m
    if grid == "midrise":
        return [-a + (k + mpmath.mpf(1) / 2) * 2 * a / n for k in range(n)]
    step = 2 * a / (n - 1)
    return [(k - n // 2) * step for k in range(n)]


def _exact(prior, levels):
    """∫ (x − q(x))² p(x) dx, nearest-level rounding, one quadrature per cell."""
    t = [-mpmath.inf] + [(levels[i] + levels[i + 1]) / 2 for i in range(len(levels) - 1)] + [mpmath.inf]
    total = 0
    for i, y in enumerate(levels):
        lo, hi = t[i], t[i + 1]
        pts = [lo, hi]
        if lo == -mpmath.inf:
            pts = [-mpmath.inf, hi - 20, hi - 5, hi]
        elif hi == mpmath.inf:
            pts = [lo, lo + 5, lo + 20, mpmath.inf]
        elif lo < 0 < hi:
            pts = [lo, 0, hi]
        total += mpmath.quad(lambda x, y=y: (x - y) ** 2 * _pdf(prior, x), pts)
    return total


@pytest.mark.parametrize("prior, grid, bits", CASES)
def test_aciq_underestimate_is_pinned_and_reproduced_independently(prior, grid, bits):
    with mpmath.workdps(20):
        k = mpmath.mpf(1) / (3 * 4**bits)
        a = mpmath.findroot(lambda v: k * v - _tail(prior, v), (mpmath.mpf("0.1"), 30), solver="anderson")
        model = _clip_term(prior, a) + k * a**2
        exact = _exact(prior, _levels(grid, a, bits))
        pct = float(100 * (1 - model / exact))
    assert pct == pytest.approx(PINNED[(prior, grid)][bits], abs=5e-5)
    # qtheory's clip, model and exact closed form agree with the independent computation
    r = qtheory.optimal_clip(prior, bits, method="aciq")
    assert r.alpha == pytest.approx(float(a), rel=1e-12)
    assert r.mse == pytest.approx(float(model), rel=1e-12)
    ex = qtheory.clipping_mse(prior, r.alpha, bits, grid=grid).mse
    assert float(ex) == pytest.approx(float(exact), rel=1e-9)
