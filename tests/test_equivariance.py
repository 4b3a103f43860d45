"""Scale equivariance of the numeric core from 1e-300 to 1e300 (issue 10, item 2).

For every prior kind (closed forms, any scipy distribution incl. loc/scale, Rectified, Mixture) and
every grid: ``clipping_mse(c·X, c·α).mse == c²·clipping_mse(X, α).mse`` and
``optimal_clip(c·X).alpha == c·optimal_clip(X).alpha``.

Tolerances come from the float error of the methods, not from fitting:

- ``MSE_RTOL = 1e-11``: the core rescales by a power of two (exact), so the two evaluations differ
  only by the rounding of ``c·scale`` and ``c·α`` (1 ulp each). The exact MSE is accurate to
  ``epsrel = 1e-12`` for scipy priors (adaptive quadrature) and to ~1600 ulp ≈ 4e-13 for the closed
  forms (cancellation bound at the Gauss–Legendre switch, ``qtheory.priors._NARROW``); an adaptive
  rule can take a different branch for inputs 1 ulp apart, so the two may differ by twice that.
- ``ALPHA_RTOL_POLISHED = 1e-10``: the symmetric grids' clip is the root of the exact slope; its
  error is the slope error (~1e-13 of the terms) over the slope's derivative.
- ``ALPHA_RTOL_BRENT = 1e-6``: the affine / Rectified clips come from Brent on the MSE itself, which is
  flat at the minimum: ``|δα|/α ≈ sqrt(2·ε/(α² MSE''/MSE))`` with ε ≈ 1e-14 the MSE's relative
  noise, about 3e-7 here.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from qtheory import (
    GRIDS,
    Gaussian,
    Laplace,
    Mixture,
    Quantizer,
    Rectified,
    ScipyPrior,
    clipping_mse,
    optimal_clip,
)
from qtheory.empirical import EmpiricalMSE, per_channel_optimal_clip

MSE_RTOL = 1e-11
ALPHA_RTOL_POLISHED = 1e-10
ALPHA_RTOL_BRENT = 1e-6
TINY = 1e-290  # below this c²·MSE is subnormal: it only has to be ~0 on both sides


def _priors(c: float):
    """The prior zoo scaled by c (each a distinct code path)."""
    return {
        "laplace": Laplace(c),
        "gaussian": Gaussian(2.0 * c, loc=0.3 * c),
        "logistic": ScipyPrior(stats.logistic(scale=c)),
        "t5-loc": ScipyPrior(stats.t(5, loc=0.5 * c, scale=c)),
        "gamma-shifted": ScipyPrior(stats.gamma(2.0, loc=-1.0 * c, scale=c)),
        "histogram": ScipyPrior(stats.rv_histogram((np.array([1.0, 3.0, 2.0]), np.array([-2.0, -0.5, 1.0, 2.5]) * c))),
        "relu-gauss": Rectified(Gaussian(c)),
        "mixture": Mixture([0.6, 0.4], [Gaussian(0.5 * c, loc=-2.0 * c), Laplace(c, loc=1.0 * c)]),
    }


NAMES = list(_priors(1.0))
settings_ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)


def _approx(x, rel, abs=0.0):  # noqa: A002 - pytest.approx's default abs=1e-12 would pass any tiny value
    return pytest.approx(x, rel=rel, abs=abs)


def _assert_scaled(actual: float, base: float, c: float, rtol: float):
    expected = base * c * c
    if math.isinf(expected):
        assert actual == math.inf or actual > 1e307
    elif abs(expected) < TINY:
        assert 0.0 <= actual < 1e3 * TINY
    else:
        assert actual == _approx(expected, rel=rtol)


@settings_
@given(u=st.floats(-300.0, 300.0), name=st.sampled_from(NAMES), grid=st.sampled_from(GRIDS),
       bits=st.integers(2, 6), ratio=st.floats(0.5, 8.0))
def test_clipping_mse_is_scale_equivariant(u, name, grid, bits, ratio):
    c = 10.0**u
    p1, pc = _priors(1.0)[name], _priors(c)[name]
    beta = -0.6 * ratio if grid == "affine" else None
    r1 = clipping_mse(p1, ratio, bits, grid=grid, beta=beta)
    rc = clipping_mse(pc, ratio * c, bits, grid=grid, beta=None if beta is None else beta * c)
    for part in ("mse", "clipping", "rounding"):
        _assert_scaled(getattr(rc, part), getattr(r1, part), c, MSE_RTOL)


@settings(settings_, max_examples=25)
@given(u=st.floats(-300.0, 300.0), name=st.sampled_from(NAMES),
       grid=st.sampled_from(["midrise", "int", "narrow", "unsigned", "uint", "affine"]), bits=st.integers(2, 4))
def test_optimal_clip_is_scale_equivariant(u, name, grid, bits):
    c = 10.0**u
    p1, pc = _priors(1.0)[name], _priors(c)[name]
    kw = dict(grid=grid, progress=False, n_grid=48)
    r1, rc = optimal_clip(p1, bits, **kw), optimal_clip(pc, bits, **kw)
    brent = grid == "affine" or name in ("relu-gauss",)
    assert rc.alpha == _approx(r1.alpha * c, rel=ALPHA_RTOL_BRENT if brent else ALPHA_RTOL_POLISHED)
    assert rc.ratio == _approx(r1.ratio, rel=ALPHA_RTOL_BRENT if brent else ALPHA_RTOL_POLISHED)
    _assert_scaled(rc.mse, r1.mse, c, MSE_RTOL)


@settings(settings_, max_examples=8)
@given(u=st.floats(-300.0, 300.0), name=st.sampled_from(["laplace", "gaussian", "relu-gauss", "gamma-shifted"]))
def test_asymmetric_affine_optimum_is_scale_equivariant(u, name):
    c = 10.0**u
    p1, pc = _priors(1.0)[name], _priors(c)[name]
    r1 = optimal_clip(p1, 3, grid="affine", range="asymmetric", progress=False)
    rc = optimal_clip(pc, 3, grid="affine", range="asymmetric", progress=False)
    assert rc.alpha == _approx(r1.alpha * c, rel=ALPHA_RTOL_BRENT)
    assert (rc.beta == 0.0) if r1.beta == 0.0 else (rc.beta == _approx(r1.beta * c, rel=ALPHA_RTOL_BRENT))
    _assert_scaled(rc.mse, r1.mse, c, MSE_RTOL)


@pytest.mark.parametrize("c", [1e-300, 1e-160, 1e160, 1e300])
def test_issue_cases_at_extreme_scales(c):
    """The audit's cases: norm(scale=1e-300) gave alpha 1.02e-303 and mse 0; 1e-160 was off by
    0.8 % (Gaussian) and 5 % (Laplace); norm(scale=1e160) raised OverflowError."""
    g1, l1 = optimal_clip("gaussian", 4), optimal_clip("laplace", 4)
    g, lp = optimal_clip(stats.norm(scale=c), 4), optimal_clip(Laplace(c), 4)
    assert g.alpha == _approx(c * g1.alpha, rel=ALPHA_RTOL_POLISHED)
    assert lp.alpha == _approx(c * l1.alpha, rel=ALPHA_RTOL_POLISHED)
    _assert_scaled(g.mse, g1.mse, c, MSE_RTOL)
    _assert_scaled(lp.mse, l1.mse, c, MSE_RTOL)


def test_wide_clip_ratio_is_finite():
    """clipping_mse("laplace", 1e155, 1, grid="unsigned") was NaN. Levels 0 and 1e155: every value of
    Laplace(1) rounds to 0, so the MSE is E[X²] = 2 exactly. Laplace(1e-160) at alpha = 1 (4-bit
    midrise) was NaN: all the mass rounds to the levels ±Δ/2 = ±1/16, so the MSE is (1/16)² (up to
    E[X²] = 2e-320, below float64's resolution here)."""
    assert clipping_mse("laplace", 1e155, 1, grid="unsigned").mse == _approx(2.0, rel=1e-15)
    assert clipping_mse(Laplace(1e-160), 1.0, 4).mse == _approx(1.0 / 16**2, rel=1e-15)
    assert clipping_mse(Gaussian(1e-200), 1e100, 2).mse == _approx((1e100 / 4) ** 2, rel=1e-15)


@pytest.mark.parametrize("c", [1e-150, 1e150])
def test_montecarlo_works_at_unit_scale(c, seed):
    """The Monte-Carlo method standardises too: at c = 1e±150 it agrees with c²·(exact MSE at unit
    scale) within 5 standard errors (the errors scale by c² as well)."""
    exact = clipping_mse(Laplace(1.0), 3.0, 4).mse
    r = clipping_mse(Laplace(c), 3.0 * c, 4, method="montecarlo", n_samples=200_000, rng=seed)
    assert abs(r.mse - exact * c * c) < 5 * r.stderr
    assert 0 < r.stderr < 0.05 * exact * c * c


@pytest.mark.parametrize("x,alpha", [([1e-300, -2e-300], 1.0), ([1.0, -2.0], 1e153), ([3e-232, -1e-232, 5e-233], 4.3e-17),
                                     ([0.0, 0.0], 3.0), ([1.0, -2.0], 2.0**40), ([1.0, -2.0], 1e160)])
def test_midrise_clip_far_above_the_samples(x, alpha):
    """Every sample in the innermost cell errs h − |x| (h = α/2^b, the level ±s/2): the MSE is
    h² − 2h·mean|x| + mean x², finite wherever that is (it was NaN: the step's square overflowed at
    the samples' unit scale), inf beyond the float64 range, and the same by every path."""
    x = np.array(x)
    h = alpha / 2**4
    with np.errstate(over="ignore"):
        ref = math.fsum((h - abs(v)) ** 2 for v in x) / x.size
        direct = float(np.mean((Quantizer(4, alpha, "midrise").quantize(x) - x) ** 2))
    r = clipping_mse(x, alpha, 4, grid="midrise")
    assert r.mse == pytest.approx(ref, rel=1e-15) and r.clipping == 0.0
    assert direct == pytest.approx(ref, rel=1e-15)
    assert EmpiricalMSE(x).curve([alpha], 4, "midrise")[0] == pytest.approx(ref, rel=1e-15)
    assert EmpiricalMSE(x).mse(alpha, 4, grid="midrise").mse == pytest.approx(ref, rel=1e-15)


def test_samples_of_2_to_the_1023_and_more():
    """Magnitudes from 2^1023 up (their power-of-two unit was 2^1024, an OverflowError): the unit
    is 2^1023 there. Errors below 2^-537 of the unit square to below the float64 range at its
    scale and count as 0 (here x = 1.0 next to 1e308: 0.5 of an MSE whose scale is 1e616)."""
    x = np.array([1e308, 1.0])
    r = optimal_clip(x, 4)
    assert r.alpha == 1e308 and 0.0 <= r.mse <= 0.5
    assert clipping_mse(x, 1e308, 4).mse <= 0.5
    pc = per_channel_optimal_clip(np.array([[1e308, 1.0], [1.7e308, -3.0]]), 4)
    assert pc.alpha.tolist() == [1e308, 1.7e308] and np.all(pc.mse <= 4.5)
    y = np.array([1.7e308, -1e308, 3.0])
    with np.errstate(over="ignore"):  # (its errors, ~1e306, square beyond the float64 range)
        direct = float(np.mean((Quantizer(8, 1.7e308, "narrow").quantize(y) - y) ** 2))
    assert EmpiricalMSE(y).mse(1.7e308, 8).mse == direct == np.inf


def test_optimum_beyond_the_float64_range_is_a_clear_error():
    """Samples within a few steps of 1.8e308 whose optimum lies beyond it: a ValueError naming
    ``x`` (it was a clip of inf with an MSE of inf or NaN)."""
    top = np.finfo(np.float64).max
    with pytest.raises(ValueError, match="'x'"):
        optimal_clip(np.array([1.7e308, -1e308, 3.0]), 8, grid="affine", range="asymmetric")
    with pytest.raises(ValueError, match="'x'"):
        per_channel_optimal_clip(np.array([[top, -top, 1.0]]), 4)


def test_affine_range_wider_than_the_float64_range():
    """α − β beyond 1.8e308 (α = −β = 1.7e308): the step and zero point are those of the halved
    range, the same quotients (the step was inf and every value quantized to NaN)."""
    q = Quantizer(4, 1.7e308, "affine", beta=-1.7e308)
    ref = Quantizer(4, 1.7e307, "affine", beta=-1.7e307)
    assert q.scale == 10 * ref.scale and (q.qmin, q.qmax) == (ref.qmin, ref.qmax) == (-8, 7)
    assert np.array_equal(q.quantize(np.array([1.0, -1e308])), np.round(np.array([1.0, -1e308]) / q.scale) * q.scale)
