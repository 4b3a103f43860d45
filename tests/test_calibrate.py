"""The field's calibrators: TensorRT KL and the pytorch-quantization MSE sweep against plain loop
implementations of their rules, OCTAV's fixed point, ACIQ's fitted rule, and the comparison table."""

import math
from collections import Counter

import numpy as np
import pytest

from qtheory import Gaussian, Laplace, Quantizer, Rectified
from qtheory.calibrate import (
    CALIBRATORS,
    aciq_clip,
    calibrate,
    calibrator_table,
    entropy_clip,
    max_clip,
    mse_sweep_clip,
    octav_clip,
    percentile_clip,
)
from qtheory.empirical import EmpiricalMSE


def _loop_entropy(x, bits, unsigned=False, num_bins=2048, start_bin=128):
    """TensorRT's KL rule written bin by bin (reference for the vectorised version)."""
    nq = 1 << (bits - 1 + int(unsigned))
    a = np.abs(x)
    hist, edges = np.histogram(a, bins=num_bins, range=(0.0, a.max()))
    hist = hist.astype(float)
    best = (np.inf, None)
    for i in range(start_bin, num_bins + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        group = [(j * nq) // i for j in range(i)]
        cnt = Counter(g for j, g in enumerate(group) if hist[j] > 0)
        tot = Counter()
        for j, g in enumerate(group):
            tot[g] += hist[j]
        q = np.array([tot[g] / cnt[g] if hist[j] > 0 else 0.0 for j, g in enumerate(group)])
        ps, qs = p / p.sum(), q / q.sum()
        m = ps > 0
        kl = np.inf if np.any(m & (qs == 0)) else float(np.sum(ps[m] * np.log(ps[m] / qs[m])))
        if kl <= best[0]:
            best = (kl, i)
    return float(edges[best[1]])


def _loop_sweep(x, bits, grid, num_bins=2048, start_bin=128):
    a = np.abs(x)
    hist, edges = np.histogram(a, bins=num_bins, range=(0.0, a.max()))
    c = 0.5 * (edges[1:] + edges[:-1])
    best = (np.inf, None)
    for i in range(start_bin, num_bins):
        e = Quantizer(bits, float(c[i]), grid).quantize(c) - c
        m = float(np.dot(hist, e * e))
        if m < best[0]:
            best = (m, float(c[i]))
    return best[1]


@pytest.mark.parametrize("bits, unsigned", [(2, False), (4, True), (8, False)])
def test_entropy_matches_the_loop_rule(bits, unsigned, rng):
    x = rng.laplace(size=5000) if not unsigned else np.maximum(rng.normal(size=5000), 0)
    assert entropy_clip(x, bits, unsigned=unsigned, num_bins=512, start_bin=32) == pytest.approx(
        _loop_entropy(x, bits, unsigned, num_bins=512, start_bin=32), rel=1e-12)


@pytest.mark.parametrize("bits, grid", [(2, "narrow"), (4, "midrise"), (8, "int")])
def test_mse_sweep_matches_the_loop_rule(bits, grid, rng):
    x = rng.normal(size=5000)
    assert mse_sweep_clip(x, bits, grid=grid, num_bins=512, start_bin=32) == pytest.approx(
        _loop_sweep(x, bits, grid, num_bins=512, start_bin=32), rel=1e-12)


@pytest.mark.parametrize("prior, bits, unsigned", [(Laplace(1.0), 4, False), (Gaussian(2.0), 3, False),
                                                    (Rectified(Gaussian()), 4, True)])
def test_octav_is_the_fixed_point_of_its_recursion(prior, bits, unsigned):
    s = octav_clip(prior, bits, unsigned=unsigned, n_iter=200, rtol=1e-14)
    k = 4.0 ** -(bits + int(unsigned)) / 3
    m0, m1, _ = prior.partial_moments(np.array([-np.inf, -s, s]), np.array([-s, s, np.inf]))
    tail = m1[2] - m1[0]
    assert s == pytest.approx(tail / (k * m0[1] + m0[0] + m0[2]), rel=1e-12)


def test_octav_on_samples_approaches_octav_on_the_prior(rng):
    x = rng.laplace(size=400_000)
    s_prior = octav_clip(Laplace(1.0), 4)
    # the fixed point moves with the sample's E|X| tail: a few standard errors of ~1/sqrt(n)
    assert octav_clip(x, 4) == pytest.approx(s_prior, rel=0.02)
    # close to ACIQ's clip (same noise model, applied to the inliers only)
    assert s_prior == pytest.approx(5.0286, rel=0.002)


def test_aciq_uses_the_fitted_scale(rng):
    x = rng.normal(size=50_000) * 3.0 + 1.0
    b = np.mean(np.abs(x - x.mean()))
    assert aciq_clip(x, 4) == pytest.approx(5.02864 * b, rel=1e-4)
    assert aciq_clip(x, 4, family="gaussian") == pytest.approx(2.55914 * np.std(x), rel=1e-4)
    # post-ReLU: the symmetric ratio one bit up
    assert aciq_clip(x, 3, unsigned=True) == pytest.approx(5.02864 * b, rel=1e-4)


def test_simple_rules():
    x = np.array([-3.0, 1.0, 2.0, 0.5])
    assert max_clip(x) == 3.0
    assert percentile_clip(np.arange(101.0), 50) == 50.0
    assert calibrate(x, 4, "max") == 3.0


def test_calibrator_table(rng):
    t = calibrator_table({"laplace": Laplace(1.0), "relu": (Rectified(Gaussian()), "unsigned")}, bits=[2, 5],
                         n_samples=1 << 14, rng=rng)
    assert set(t.calibrator) == set(CALIBRATORS)
    assert len(t) == 2 * 2 * len(CALIBRATORS)
    assert list(t.columns) == ["distribution", "grid", "bits", "calibrator", "alpha", "ratio", "mse", "rel_mse",
                               "excess_db"]
    # the exact optimum is never beaten, and the reported MSEs are exact empirical MSEs
    assert (t.rel_mse >= 1 - 1e-12).all()
    assert (t[t.calibrator == "qtheory"].rel_mse == 1).all()
    assert np.allclose(t.excess_db, 10 * np.log10(t.rel_mse))
    assert set(t[t.distribution == "relu"].grid) == {"unsigned"}
    # every row's MSE is the exact empirical MSE of its clip on the same samples
    row = t[(t.distribution == "laplace") & (t.bits == 5) & (t.calibrator == "octav")].iloc[0]
    assert row.mse > 0 and math.isfinite(row.alpha)


def test_table_uses_exact_empirical_mse(rng):
    x = Laplace(1.0).rvs(1 << 13, np.random.default_rng(7))
    t = calibrator_table({"l": Laplace(1.0)}, bits=[4], methods=["max"], n_samples=1 << 13, rng=7)
    assert t.mse.iloc[0] == pytest.approx(EmpiricalMSE(x).mse(max_clip(x), 4, grid="narrow").mse, rel=1e-14)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: calibrate([1.0, 2.0], 4, "kl"), "method"),
        (lambda: calibrate([1.0, 2.0], 0, "max"), "bits"),
        (lambda: calibrate([1.0, 2.0], 4, "max", grid="affine"), "grid"),
        (lambda: calibrate([], 4, "max"), "x"),
        (lambda: calibrate([np.nan, 1.0], 4, "octav"), "x"),
        (lambda: calibrate([0.0, 0.0], 4, "entropy"), "x"),
        (lambda: percentile_clip([1.0, 2.0], 0.0), "percentile"),
        (lambda: entropy_clip([1.0, 2.0], 4, num_bins=1), "num_bins"),
        (lambda: mse_sweep_clip([1.0, 2.0], 4, start_bin=-1), "start_bin"),
        (lambda: octav_clip([1.0, 2.0], 4, s0=-1.0), "s0"),
        (lambda: aciq_clip([1.0, 2.0], 4, family="cauchy"), "family"),
        (lambda: calibrator_table(bits=[0]), "bits"),
        (lambda: calibrator_table(methods=["nope"]), "methods"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter"):
        call()
