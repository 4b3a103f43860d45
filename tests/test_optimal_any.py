"""optimal_clip for any prior: multimodal mixtures (global minimum), scipy distributions,
asymmetric affine ranges, samples, and the infinite-variance error."""

import numpy as np
import pytest
from scipy import stats

import qtheory
from qtheory import Gaussian, Mixture, Rectified, clipping_mse, optimal_clip
from qtheory.empirical import EmpiricalMSE


def _dense(prior, bits, hi, grid="midrise", n=4000):
    a = np.linspace(hi / n, hi, n)
    v = np.asarray(clipping_mse(prior, a, bits, grid=grid).mse)
    minima = [i for i in range(1, n - 1) if v[i] < v[i - 1] and v[i] <= v[i + 1]]
    return a, v, minima


@pytest.mark.parametrize(
    "prior, bits, hi, expect",
    [
        # modes at ±3, 2 bits: levels ±1, ±3 (α ≈ 4) or ±3, ±9 (α = 12): the smaller one wins
        (Mixture([0.5, 0.5], [Gaussian(0.3, loc=-3.0), Gaussian(0.3, loc=3.0)]), 2, 16.0, 4.0),
        # with mass at ±9 the larger one wins; its basin lies beyond the data's bulk
        (Mixture([0.4, 0.4, 0.1, 0.1], [Gaussian(0.3, loc=-3.0), Gaussian(0.3, loc=3.0), Gaussian(0.3, loc=-9.0),
                                        Gaussian(0.3, loc=9.0)]), 2, 16.0, 12.0),
        # three modes, 3 bits: three local minima
        (Mixture([0.45, 0.1, 0.45], [Gaussian(0.1, loc=-3.0), Gaussian(0.1, loc=0.0), Gaussian(0.1, loc=3.0)]), 3, 16.0, 3.42),
    ],
)
def test_multimodal_prior_gets_the_global_minimum(prior, bits, hi, expect):
    a, v, minima = _dense(prior, bits, hi)
    r = optimal_clip(prior, bits)
    assert r.mse <= v.min() * (1 + 1e-12)
    assert r.alpha == pytest.approx(a[np.argmin(v)], abs=2 * (a[1] - a[0]))
    assert r.alpha == pytest.approx(expect, rel=0.01)
    if len(minima) >= 2:
        assert len(r.local_minima) >= 1


def test_a_mixture_with_two_local_minima_exists_and_the_global_one_is_returned():
    p = Mixture([0.5, 0.5], [Gaussian(0.3, loc=-3.0), Gaussian(0.3, loc=3.0)])
    a, v, minima = _dense(p, 2, 16.0)
    assert len(minima) >= 2  # the curve really has two basins
    r = optimal_clip(p, 2)
    best_other = min(v[i] for i in minima if abs(a[i] - r.alpha) > 1.0)
    assert r.mse < best_other


@pytest.mark.parametrize(
    "dist",
    [stats.logistic(), stats.t(5), stats.gamma(3.0), stats.uniform(-1, 2), stats.laplace_asymmetric(2.0)],
    ids=["logistic", "t5", "gamma", "uniform", "asym-laplace"],
)
def test_scipy_distributions(dist):
    p = qtheory.as_prior(dist)
    r = optimal_clip(p, 2, n_grid=48)
    hi = p.abs_quantile(1 - 1e-9) * 2.0
    a = np.linspace(hi / 150, hi, 150)
    v = np.asarray(clipping_mse(p, a, 2).mse)
    assert r.mse <= v.min() * (1 + 1e-9)


@pytest.mark.parametrize("dist", [stats.cauchy(), stats.t(2), stats.t(1.5), stats.pareto(1.5)],
                         ids=["cauchy", "t2", "t1.5", "pareto1.5"])
def test_infinite_variance_is_a_clear_error(dist):
    with pytest.raises(ValueError, match="'prior' parameter .* finite variance"):
        optimal_clip(dist, 4)
    with pytest.raises(ValueError, match="finite variance"):
        Mixture([0.5, 0.5], ["gaussian", dist])
    assert optimal_clip(stats.t(2.5), 2, n_grid=32).mse > 0  # finite variance: fine


def test_asymmetric_affine_range():
    # a shifted Gaussian: the asymmetric range beats the symmetric one and matches the centred
    # optimum (the grid slides by whole steps through the zero point)
    p = Gaussian(1.0, loc=0.7)
    sym = optimal_clip(p, 4, grid="affine")
    asym = optimal_clip(p, 4, grid="affine", range="asymmetric")
    assert asym.beta < 0 < asym.alpha
    assert asym.mse < sym.mse
    q = qtheory.Quantizer(4, asym.alpha, "affine", beta=asym.beta)
    assert 0.0 in q.levels
    best = np.inf  # brute force over zero points and steps
    for z in range(15):
        s = np.linspace(0.2, 0.5, 61)
        best = min(best, min(clipping_mse(p, (15 - z) * v, 4, grid="affine", beta=-z * v).mse for v in s))
    assert asym.mse <= best * (1 + 1e-9)
    # post-ReLU: the range starts at 0 and equals the unsigned grid's optimum
    relu = optimal_clip(Rectified(Gaussian()), 4, grid="affine", range="asymmetric")
    assert relu.beta == 0.0
    assert relu.mse == pytest.approx(optimal_clip(Rectified(Gaussian()), 4, grid="unsigned").mse, rel=1e-9)


def test_asymmetric_affine_on_samples_beats_brute_force(rng):
    _affine_beats_brute_force(rng)


@pytest.mark.parametrize("seed", [685930901, 685930905])
def test_asymmetric_affine_on_samples_where_the_pattern_search_missed(seed):
    """Two data sets on which the scan + pattern search ended 4e-6 above the brute force; the
    exact per-zero-point sweep now finds the global optimum."""
    _affine_beats_brute_force(np.random.default_rng(seed))


def _affine_beats_brute_force(rng):
    x = rng.gamma(2.0, size=3000) - 1.0
    r = optimal_clip(x, 3, grid="affine", range="asymmetric")
    prep = EmpiricalMSE(x)
    best = np.inf
    for z in range(7):  # brute force over zero points and steps
        for s in np.linspace(0.01, 2.0, 400):
            q = qtheory.Quantizer(3, (7 - z) * s, "affine", beta=-z * s)
            best = min(best, sum(prep.mse_quantizer(q)))
    assert r.mse <= best * (1 + 1e-12)
    assert r.mse < optimal_clip(x, 3, grid="affine").mse


def test_samples_route_to_the_fast_exact_path(rng):
    x = rng.laplace(size=20_000)
    r = optimal_clip(x, 4, grid="int")
    e = EmpiricalMSE(x).optimal_clip(4, grid="int")
    assert r.alpha == e.alpha and r.mse == e.mse
    assert r.mse == pytest.approx(clipping_mse(x, r.alpha, 4, grid="int").mse, rel=1e-15)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: optimal_clip("gaussian", 4, range="both"), "range"),
        (lambda: optimal_clip("gaussian", 4, grid="midrise", range="asymmetric"), "grid"),
        (lambda: optimal_clip([np.nan, 1.0], 4), "prior"),
        (lambda: optimal_clip([], 4), "prior"),
        (lambda: optimal_clip(stats.cauchy(), 4), "prior"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter"):
        call()
