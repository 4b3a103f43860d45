"""The classical frame at extreme scales and on bad input: Lloyd–Max, Panter–Dite, differential
entropy and rate–distortion against closed forms, independent quadrature at unit scale, and exact
power-of-two scale equivariance from 1e-300 to 1e300."""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from qtheory import Gaussian, Laplace, Mixture, Rectified, ScipyPrior
from qtheory.classical import differential_entropy, lloyd_max, panter_dite, rate_distortion

GAUSS_PD = math.sqrt(3.0) * math.pi / 2.0  # (1/12)(∫p^(1/3))³ of N(0, 1)
GAUSS_H = 0.5 * math.log(2.0 * math.pi * math.e)  # h of N(0, 1)
LOGISTIC_PD = special.beta(1 / 3, 1 / 3) ** 3 / 12.0  # ∫(σ(x)(1 − σ(x)))^(1/3) dx = B(1/3, 1/3)
LN2 = math.log(2.0)
# Max (1960): the 4-level Lloyd–Max quantizer of N(0, 1)
MAX4_LEVELS = np.array([-1.5104, -0.4528, 0.4528, 1.5104])
MAX4_MSE = 0.11748

NARROW = Mixture([0.5, 0.5], [Gaussian(1.0), Gaussian(1e-3, loc=5.0)])


def _ldexp(v, k):
    """Reference ``v · 2^k``, correctly rounded to 0.0 / inf beyond the float64 range."""
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(v, k)


def _quad_unit(pdf, g, points, lo=-400.0, hi=400.0):
    """Reference: scipy quad of g(pdf) with hand-placed break points (unit scale only)."""
    def f(x):
        p = float(pdf(x))
        return g(p) if p > 0 else 0.0
    v, _ = integrate.quad(f, lo, hi, points=sorted(points), limit=1000, epsabs=1e-14, epsrel=1e-12)
    return v


def _cbrt(p):
    return p ** (1 / 3)


def _neg_plogp(p):
    return -p * math.log(p)


# ============================================================================ Lloyd–Max
def test_lloyd_max_gaussian_levels_and_mse_at_every_scale():
    unit = lloyd_max(Gaussian(1.0), 4)
    np.testing.assert_allclose(unit.levels, MAX4_LEVELS, atol=1e-4)
    assert unit.mse == pytest.approx(MAX4_MSE, rel=1e-4)
    for k in (-1000, -600, -300, 300, 511, 600, 1000):
        r = lloyd_max(Gaussian(2.0**k), 4)
        assert r.converged
        np.testing.assert_array_equal(r.levels, _ldexp(unit.levels, k))
        np.testing.assert_array_equal(r.thresholds, _ldexp(unit.thresholds, k))
        assert r.mse == _ldexp(unit.mse, 2 * k)  # (0.0 / inf beyond the float64 range)
    for s in (1.4e154, 1e155, 1e200, 1e300):
        r = lloyd_max(Gaussian(s), 4)
        assert r.converged
        np.testing.assert_allclose(r.levels / s, MAX4_LEVELS, atol=1e-4)
        assert r.mse == math.inf or r.mse / s / s == pytest.approx(MAX4_MSE, rel=1e-4)
    assert lloyd_max(Gaussian(1e155), 4).mse == math.inf  # σ²·0.1175 > 1.8e308 (it was NaN)
    assert lloyd_max(Laplace(1e300), 4).mse == math.inf
    assert lloyd_max(Gaussian(1e150), 4).mse == pytest.approx(MAX4_MSE * 1e300, rel=1e-4)


def test_lloyd_max_rectified_and_samples_converge_at_extreme_scales(rng):
    unit = lloyd_max(Rectified(Gaussian(1.0)), 4)
    for k in (-600, 600):
        r = lloyd_max(Rectified(Gaussian(2.0**k)), 4)
        assert r.converged and r.iterations == unit.iterations
        np.testing.assert_array_equal(r.levels, _ldexp(unit.levels, k))
        assert r.mse == _ldexp(unit.mse, 2 * k)
    x = rng.normal(size=2000)
    unit = lloyd_max(x, 4)
    assert unit.converged
    for k in (-700, 700):
        r = lloyd_max(_ldexp(x, k), 4)
        assert r.converged and r.iterations == unit.iterations
        np.testing.assert_array_equal(r.levels, _ldexp(unit.levels, k))
        assert r.mse == _ldexp(unit.mse, 2 * k)


def test_lloyd_max_init_is_scaled_with_the_samples(rng):
    x = rng.laplace(size=1500)
    init = [-2.0, -0.5, 0.5, 2.0]
    unit = lloyd_max(x, 4, init=init)
    assert unit.converged
    for k in (-700, 700):
        r = lloyd_max(_ldexp(x, k), 4, init=_ldexp(init, k))
        assert r.converged and r.iterations == unit.iterations
        np.testing.assert_array_equal(r.levels, _ldexp(unit.levels, k))


# ============================================================================ Panter–Dite
def test_panter_dite_closed_forms_at_extreme_scales():
    assert panter_dite(Gaussian(1e160), 30) == pytest.approx(GAUSS_PD * (1e160 * 4.0**-15) ** 2, rel=1e-12)  # was 0.0
    assert panter_dite(Laplace(1e160), 30) == pytest.approx(9.0 * (1e160 * 4.0**-15) ** 2, rel=1e-12)  # OverflowError
    assert panter_dite(Gaussian(1e-170), 30) == 0.0  # 2.4e-358 underflows (was ZeroDivisionError)
    assert panter_dite(Gaussian(1e-150), 0) == pytest.approx(GAUSS_PD * 1e-300, rel=1e-12)
    for k in (-1000, -520, -300, 300, 520, 1000):
        assert panter_dite(Gaussian(2.0**k), 30) == _ldexp(GAUSS_PD, 2 * k - 60)
        assert panter_dite(Laplace(2.0**k), [0, 2.5]).tolist() == [_ldexp(9.0, 2 * k), _ldexp(4.5, 2 * k - 4)]


def test_panter_dite_quadrature_priors_at_any_scale():
    for s in (2.0**-400, 1e-5, 1e-3, 1e5, 2.0**400):  # logistic: B(1/3, 1/3)³/12 · s²
        assert panter_dite(ScipyPrior(stats.logistic(scale=s)), 0) / s / s == pytest.approx(LOGISTIC_PD, rel=1e-9)
    # a mixture of identical components is that component
    assert panter_dite(Mixture([1, 1], [Gaussian(1e-5), Gaussian(1e-5)]), 0) == pytest.approx(GAUSS_PD * 1e-10,
                                                                                             rel=1e-9)
    # disjoint modes: (∫p^(1/3))³ = (2 · 2^(-1/3))³ · 12·√3π/2 → 2π√3
    far = Mixture([1, 1], [Gaussian(1.0, loc=-1e6), Gaussian(1.0, loc=1e6)])
    assert panter_dite(far, 0) == pytest.approx(2 * math.pi * math.sqrt(3), rel=1e-9)
    ref = _quad_unit(NARROW.pdf, _cbrt, [0.0, 4.9, 4.99, 5.0, 5.01, 5.1]) ** 3 / 12
    assert panter_dite(NARROW, 0) == pytest.approx(ref, rel=1e-9)


def test_panter_dite_mixture_is_scale_equivariant():
    unit = Mixture([0.3, 0.7], [Laplace(1.0, loc=-2.0), Gaussian(0.25, loc=1.0)])
    ref = _quad_unit(unit.pdf, _cbrt, [-2.0, 0.0, 1.0]) ** 3 / 12
    assert panter_dite(unit, 0) == pytest.approx(ref, rel=1e-9)
    for k in (-500, -17, 17, 500):
        scaled = Mixture([0.3, 0.7], [Laplace(2.0**k, loc=-(2.0 ** (k + 1))), Gaussian(2.0 ** (k - 2), loc=2.0**k)])
        assert panter_dite(scaled, 0) == pytest.approx(_ldexp(ref, 2 * k), rel=1e-9)


# ============================================================================ differential entropy
def test_differential_entropy_closed_forms_at_extreme_scales():
    assert differential_entropy(Gaussian(1e160)) == pytest.approx(GAUSS_H + 160 * math.log(10), rel=1e-14)  # 369.83
    assert differential_entropy(Gaussian(1e-170)) == pytest.approx(GAUSS_H - 170 * math.log(10), rel=1e-14)
    assert differential_entropy(Laplace(1e-300)) == pytest.approx(1 + LN2 - 300 * math.log(10), rel=1e-14)
    assert differential_entropy(Laplace(1.5e308)) == pytest.approx(1 + LN2 + math.log(1.5e308), rel=1e-14)


def test_differential_entropy_of_mixtures():
    same = Mixture([1, 1], [Gaussian(1e-5), Gaussian(1e-5)])  # was 0.0
    assert differential_entropy(same) == pytest.approx(GAUSS_H + math.log(1e-5), abs=1e-9)
    far = Mixture([1, 1], [Gaussian(1.0, loc=-1e4), Gaussian(1.0, loc=1e4)])  # disjoint: h + ln 2 (was 1.056)
    assert differential_entropy(far) == pytest.approx(GAUSS_H + LN2, abs=1e-9)
    ref = _quad_unit(NARROW.pdf, _neg_plogp, [0.0, 4.9, 4.99, 5.0, 5.01, 5.1])  # −1.3418 (was −0.1429)
    assert differential_entropy(NARROW) == pytest.approx(ref, abs=1e-9)


def test_differential_entropy_mixture_is_scale_equivariant():
    unit = Mixture([0.3, 0.7], [Laplace(1.0, loc=-2.0), Gaussian(0.25, loc=1.0)])
    ref = _quad_unit(unit.pdf, _neg_plogp, [-2.0, 0.0, 1.0])
    assert differential_entropy(unit) == pytest.approx(ref, abs=1e-10)
    for k in (-600, -20, 20, 600):
        scaled = Mixture([0.3, 0.7], [Laplace(2.0**k, loc=-(2.0 ** (k + 1))), Gaussian(2.0 ** (k - 2), loc=2.0**k)])
        assert differential_entropy(scaled) == pytest.approx(ref + k * LN2, abs=1e-9)


# ============================================================================ rate–distortion
def test_rate_distortion_beyond_float64_squares():
    assert rate_distortion(Gaussian(1e160), 30).distortion == pytest.approx((1e160 * 4.0**-15) ** 2, rel=1e-12)
    lap = rate_distortion(Laplace(1e160), 30)  # e^(2h)/(2πe) = 2e b²/π (was OverflowError)
    assert lap.distortion == pytest.approx(2 * math.e / math.pi * (1e160 * 4.0**-15) ** 2, rel=1e-12)
    assert lap.entropy == pytest.approx(1 + LN2 + 160 * math.log(10), rel=1e-14)
    assert rate_distortion(Gaussian(2.0**600), 300).distortion == 2.0**600
    np.testing.assert_array_equal(rate_distortion(Gaussian(2.0**600), [0, 0.5, 600, 700]).distortion,
                                  [math.inf, math.inf, 1.0, 2.0**-200])
    assert rate_distortion(Laplace(2.0**600), 300).distortion == pytest.approx(2 * math.e / math.pi * 2.0**600,
                                                                               rel=1e-12)
    assert rate_distortion(Gaussian(1e-170), [0, 1]).distortion.tolist() == [0.0, 0.0]  # 1e-340 underflows
    mix = Mixture([0.3, 0.7], [Laplace(2.0**600, loc=-(2.0**601)), Gaussian(2.0**598, loc=2.0**600)])
    unit = Mixture([0.3, 0.7], [Laplace(1.0, loc=-2.0), Gaussian(0.25, loc=1.0)])
    h = _quad_unit(unit.pdf, _neg_plogp, [-2.0, 0.0, 1.0])
    assert rate_distortion(mix, 600).distortion == pytest.approx(math.exp(2 * h) / (2 * math.pi * math.e), rel=1e-9)


BAD_RATES = [("a", TypeError), (1j, TypeError), (None, TypeError), (True, TypeError), ([1.0, "x"], TypeError),
             (float("nan"), ValueError), (math.inf, ValueError), (-1.0, ValueError), ([2.0, -0.5], ValueError)]


@pytest.mark.parametrize("func, name", [(panter_dite, "bits"), (rate_distortion, "rate")])
def test_rates_are_validated_consistently(func, name):
    for bad, exc in BAD_RATES:
        with pytest.raises(exc, match=f"The '{name}' parameter of {func.__name__} must be a finite real number >= 0"):
            func("gaussian", bad)
    # good rates still work, scalar or array
    out = func("gaussian", np.int64(2))
    assert (out if func is panter_dite else out.distortion) == pytest.approx(
        (GAUSS_PD if func is panter_dite else 1.0) / 16, rel=1e-14)


def test_lloyd_max_of_a_mixture_of_a_point_like_and_a_wide_gaussian():
    """Components 1e-300 and 1e10 apart by 1e310: the two-level quantizer had a NaN MSE (its error
    integrals overflowed in the narrow component's units). Independent reference: the narrow
    component as a point mass of weight 1/2 at 0; the best threshold ``t < 0`` by scipy's bounded
    minimisation of the two cells' exact centroid MSE (normal CDF/PDF moments)."""
    from scipy import optimize

    s = 1e10

    def two_cells(t):
        z = t / s
        pl, ml = 0.5 * stats.norm.cdf(z), -0.5 * s * stats.norm.pdf(z)
        ql = 0.5 * s * s * (stats.norm.cdf(z) - z * stats.norm.pdf(z))
        pr, mr = 0.5 + 0.5 * stats.norm.sf(z), 0.5 * s * stats.norm.pdf(z)
        qr = 0.5 * s * s * (stats.norm.sf(z) + z * stats.norm.pdf(z))
        return (ql - ml**2 / pl) + (qr - mr**2 / pr), ml / pl, mr / pr

    t = optimize.minimize_scalar(lambda t: two_cells(t)[0], bounds=(-5 * s, -1e-4 * s), method="bounded",
                                 options={"xatol": 1.0}).x
    ref, y0, y1 = two_cells(t)
    r = lloyd_max(Mixture([0.5, 0.5], [Gaussian(1e-300), Gaussian(s)]), 2)
    levels = np.sort(r.levels) if r.levels[0] + r.levels[1] < 0 else np.sort(-r.levels)
    assert r.mse == pytest.approx(ref, rel=1e-9)
    assert levels == pytest.approx([y0, y1], rel=1e-5)
