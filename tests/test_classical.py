"""Classical frame: Lloyd–Max against Max (1960) and Paez & Glisson (1972), Panter–Dite,
rate–distortion, the distortion ladder."""

import math

import numpy as np
import pytest
from scipy import stats

import qtheory
from qtheory import Gaussian, Laplace, Mixture, Rectified, ScipyPrior
from qtheory.classical import (
    differential_entropy,
    distortion_ladder,
    lloyd_max,
    panter_dite,
    rate_distortion,
)

BIMODAL = Mixture([0.5, 0.5], [Gaussian(0.5, loc=-2.0), Gaussian(0.5, loc=2.0)])


# Max (1960), Table I, unit-variance Gaussian: positive levels and MSE.
MAX_GAUSSIAN = {
    2: ([0.7980], 0.3634),
    4: ([0.4528, 1.510], 0.1175),
    8: ([0.2451, 0.7560, 1.344, 2.152], 0.03454),
}
# Paez & Glisson (1972), unit-variance Laplacian: positive levels and MSE.
PAEZ_GLISSON_LAPLACE = {
    2: ([0.7071], 0.5),
    4: ([0.4198, 1.8340], 0.1762),
    8: ([0.2334, 0.8330, 1.6725, 3.0867], 0.0545),
}


@pytest.mark.parametrize("n", sorted(MAX_GAUSSIAN))
def test_lloyd_max_gaussian_matches_max_1960(n):
    levels, mse = MAX_GAUSSIAN[n]
    r = lloyd_max("gaussian", n)
    assert r.converged
    np.testing.assert_allclose(r.levels[n // 2:], levels, atol=6e-4)
    np.testing.assert_allclose(r.levels, -r.levels[::-1], atol=1e-12)
    assert r.mse == pytest.approx(mse, abs=6e-5)


@pytest.mark.parametrize("n", sorted(PAEZ_GLISSON_LAPLACE))
def test_lloyd_max_laplace_matches_paez_glisson(n):
    levels, mse = PAEZ_GLISSON_LAPLACE[n]
    r = lloyd_max(Laplace(1 / math.sqrt(2)), n)
    np.testing.assert_allclose(r.levels[n // 2:], levels, atol=6e-4)
    assert r.mse == pytest.approx(mse, abs=6e-5)


@pytest.mark.parametrize("prior", ["gaussian", "laplace", BIMODAL, Rectified(Gaussian()),
                                   ScipyPrior(stats.logistic())], ids=["gauss", "laplace", "bimodal", "relu", "logistic"])
def test_lloyd_max_is_a_fixed_point_and_beats_uniform(prior):
    p = qtheory.as_prior(prior)
    for bits in (1, 2, 3) if isinstance(p, ScipyPrior) else (1, 2, 3, 5):  # (quadrature is slow)
        r = lloyd_max(p, 2**bits)
        assert r.converged
        t = r.thresholds
        m0, m1, _ = p.partial_moments(np.r_[-np.inf, t], np.r_[t, np.inf])
        cent = m1 / m0
        np.testing.assert_allclose(r.levels, cent, rtol=1e-8, atol=1e-9 * p.std)
        grid = "unsigned" if isinstance(p, Rectified) else "midrise"
        assert r.mse <= qtheory.optimal_clip(p, bits, grid=grid).mse * (1 + 1e-9)


def test_lloyd_max_many_levels_is_fast_and_approaches_panter_dite():
    r = lloyd_max("gaussian", 256)
    assert r.converged and r.iterations < 50
    # high-rate: N^2 * D -> (1/12)(∫ p^(1/3))^3 = sqrt(3) pi / 2
    assert r.mse * 256**2 == pytest.approx(math.sqrt(3) * math.pi / 2, rel=0.01)


def test_lloyd_max_samples_fall_back_to_lloyd(rng):
    x = rng.normal(size=3000)
    r = lloyd_max(x, 4)
    assert r.converged
    e = qtheory.Empirical(x)
    t = r.thresholds
    m0, m1, _ = e.partial_moments(np.r_[-np.inf, t], np.r_[t, np.inf])
    np.testing.assert_allclose(r.levels, m1 / m0, atol=1e-9)


def test_panter_dite_closed_forms_and_quadrature():
    assert panter_dite("gaussian", 0) == pytest.approx(math.sqrt(3) * math.pi / 2, rel=1e-12)
    assert panter_dite(ScipyPrior(stats.norm()), 0) == pytest.approx(math.sqrt(3) * math.pi / 2, rel=1e-9)
    assert panter_dite(Laplace(2.0), 0) == pytest.approx(9 * 4.0, rel=1e-12)
    assert panter_dite(ScipyPrior(stats.laplace(scale=2.0)), 0) == pytest.approx(36.0, rel=1e-8)
    np.testing.assert_allclose(panter_dite("gaussian", [1, 2]), math.sqrt(3) * math.pi / 2 * 4.0 ** -np.array([1, 2]))


def test_rate_distortion():
    r = rate_distortion(Gaussian(3.0), [0, 1, 2.5])
    assert r.kind == "exact"
    np.testing.assert_allclose(r.distortion, 9.0 * 4.0 ** -np.array([0, 1, 2.5]), rtol=1e-15)
    # the Shannon lower bound is tight for a Gaussian, whatever the code path
    s = rate_distortion(ScipyPrior(stats.norm(scale=3.0)), 1.0)
    assert s.kind == "shannon_lower_bound" and s.distortion == pytest.approx(9.0 / 4, rel=1e-12)
    lap = rate_distortion(Laplace(1.0), 0.0)
    assert lap.distortion == pytest.approx(2 * math.e / math.pi, rel=1e-14)
    assert differential_entropy(Laplace(2.0)) == pytest.approx(1 + math.log(4.0), rel=1e-15)
    xs = np.linspace(-9.0, 9.0, 400_001)
    p = BIMODAL.pdf(xs)
    assert differential_entropy(BIMODAL) == pytest.approx(np.trapezoid(-p * np.log(p), xs), rel=1e-9)
    # the bound lies below Lloyd–Max
    for prior in ("gaussian", "laplace", BIMODAL):
        for b in (1, 3, 6):
            assert rate_distortion(prior, b).distortion < lloyd_max(prior, 2**b).mse


def test_distortion_ladder_order():
    for prior, grid in (("laplace", "midrise"), (BIMODAL, "midrise"), (Rectified(Gaussian()), "unsigned")):
        t = distortion_ladder(prior, bits=[1, 3, 5], grid=grid)
        assert list(t.bits) == [1, 3, 5]
        assert np.all(t.lloyd_max <= t.uniform_optimal * (1 + 1e-9))
        assert np.all(t.uniform_optimal <= t.aciq * (1 + 1e-9))
        assert np.all(t.uniform_optimal <= t["max"] * (1 + 1e-9))
        rd = t.rate_distortion.to_numpy()
        assert np.all(np.isnan(rd)) if isinstance(prior, Rectified) else np.all(rd < t.lloyd_max)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: lloyd_max("gaussian", 0), "n_levels"),
        (lambda: lloyd_max("gaussian", 4, tol=0.0), "tol"),
        (lambda: lloyd_max("gaussian", 4, init=[1.0, 2.0]), "init"),
        (lambda: lloyd_max(stats.cauchy(), 4), "prior"),
        (lambda: rate_distortion("gaussian", -1.0), "rate"),
        (lambda: rate_distortion(Rectified(Gaussian()), 2), "prior"),
        (lambda: rate_distortion([1.0, 2.0, 3.0], 2), "prior"),
        (lambda: panter_dite(Rectified(Gaussian()), 2), "prior"),
        (lambda: distortion_ladder("gaussian", bits=[0]), "bits"),
        (lambda: distortion_ladder("gaussian", grid="affine"), "grid"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter"):
        call()
