"""optimal_clip(samples, grid="affine", range="asymmetric"): the (zero point, step) search against
slow exact references on adversarial data.

Two references, independent of the search:

- a numpy brute force (tiny samples): for every zero point, every piece of the piecewise-quadratic
  error in the step (between consecutive threshold crossings ``x / (j + 1/2)``), its vertex
  clamped to the piece, the error computed directly from the codes;
- the per-zero-point exact sweep of :class:`~qtheory.empirical.EmpiricalMSE` (every crossing of
  every zero point, all samples gathered), itself checked against the brute force below, for
  tensors of over 2^16 samples, which the search handles from bucket statistics.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtheory import Quantizer, empirical, optimal_clip
from qtheory.empirical import EmpiricalMSE, direct_mse


def _brute_affine(x, bits):
    """The least MSE of the affine grid over every zero point and step (numpy, direct)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    top = 2**bits - 1
    z_max = top - 1 if x.min() < 0 else 0
    best = np.inf
    for z in range(z_max + 1):
        t = np.arange(-z, top - z) + 0.5  # the thresholds, in steps
        br = (x[:, None] / t[None, :]).ravel()
        br = np.unique(br[br > 0])  # every step at which some sample changes level
        left, right = np.r_[0.0, br], np.r_[br, np.inf]
        mid = np.where(np.isinf(right), 2.0 * left, 0.5 * (left + right))
        c = np.clip(np.round(x[None, :] / mid[:, None]), -z, top - z)  # codes on each piece
        a, b = (c * c).sum(axis=1), (c * x[None, :]).sum(axis=1)
        v = np.clip(np.divide(b, a, out=mid.copy(), where=a > 0), left, right)
        best = min(best, float((((c * v[:, None]) - x[None, :]) ** 2).sum(axis=1).min()) / x.size)
    return best


def _sweep_reference(x, bits):
    """The exact optimum by the per-zero-point sweep over every crossing (all samples sorted)."""
    p = EmpiricalMSE(x, presort=True)
    top = 2**bits - 1
    z_max = top - 1 if p.min < 0 else 0
    s_end = 2.0 * p._amax * (1.0 + 1e-9)
    tot = min(t for z in range(z_max + 1) for t, _ in p._sweep_global(1.0, 0.0, -z, top - z, 0, s_end))
    return tot / p.n * p._unit**2


def _check(x, bits, ref):
    r = optimal_clip(x, bits, grid="affine", range="asymmetric", progress=False)
    assert r.beta <= 0.0 < r.alpha
    x64 = np.asarray(x, dtype=np.float64)
    tol = 1e-15 * float(np.mean(x64 * x64))  # (float64 rounding of error sums near 0)
    assert ref * (1 - 1e-12) - tol <= r.mse <= ref * (1 + 1e-12) + tol
    direct = direct_mse(x64, Quantizer(bits, r.alpha, "affine", beta=r.beta))
    assert r.mse == pytest.approx(direct, rel=1e-12, abs=tol)
    return r


_values = st.one_of(
    st.floats(-100.0, 100.0, allow_subnormal=False).filter(lambda v: v == 0.0 or abs(v) > 1e-100),
    st.integers(-4, 6).map(float),  # ties: values on thresholds and levels
    st.just(0.0),  # spikes of zeros
)


@settings(max_examples=50, deadline=None)
@given(x=st.lists(_values, min_size=1, max_size=24).filter(lambda v: max(v) > 0), bits=st.integers(2, 3))
def test_tiny_samples_equal_the_brute_force(x, bits):
    """Few samples: the per-zero-point sweep (no scan) is the exact global optimum."""
    x = np.array(x)
    _check(x, bits, _brute_affine(x, bits))


def _data(kind, n, rng):
    if kind == "bimodal":
        return np.r_[rng.normal(-3.0, 0.3, n // 2), rng.normal(5.0, 0.5, n - n // 2)]
    if kind == "symmetric_bimodal":  # two zero points of nearly equal error
        return np.r_[rng.normal(-3.0, 0.3, n // 2), rng.normal(3.0, 0.3, n - n // 2)]
    if kind == "heavy":
        return rng.standard_t(2.5, n)
    if kind == "positive":
        return rng.lognormal(0.0, 1.0, n)
    if kind == "zeros":  # 70 % exact zeros (ReLU) and a small negative part
        x = rng.gamma(2.0, size=n) - 0.5
        x[rng.random(n) < 0.7] = 0.0
        return x
    if kind == "ties":
        return np.round(rng.normal(2.0, 3.0, n))
    if kind == "mostly_negative":
        return 0.3 - rng.gamma(1.5, size=n)
    if kind == "activations":  # the benchmark's real-like activations
        x = rng.gamma(1.5, 1.0, size=n) * rng.lognormal(0.0, 0.5, size=n)
        x[rng.random(n) < 0.3] = 0.0
        neg = rng.random(n) < 0.05
        x[neg] = -np.abs(rng.normal(0.0, 0.2, size=int(neg.sum())))
        return x
    raise AssertionError(kind)


_KINDS = ["bimodal", "symmetric_bimodal", "heavy", "positive", "zeros", "ties", "mostly_negative", "activations"]


@pytest.mark.parametrize("path", ["direct", "search"])
@pytest.mark.parametrize("kind", _KINDS)
def test_few_samples_at_8_bits_equal_the_brute_force(kind, path, rng, monkeypatch):
    """24 samples at 8 bits, by both paths: each zero point's proven optimum from the sorted
    samples (``direct``, the default below N·255 <= 2^20), and (forced) the bucketed search: the
    2-D scan, the descent over zero points, then the sweeps over the steps each zero point can
    still win at (bounded by the scan's best error)."""
    if path == "search":
        monkeypatch.setattr(empirical, "_AFFINE_DIRECT", 0)
    x = _data(kind, 24, rng)
    if x.max() <= 0:
        x[0] = 1.0
    _check(x, 8, _brute_affine(x, 8))


@pytest.mark.parametrize(("bits", "n"), [(8, 3000), (4, 20_000), (2, 100_000)])
def test_direct_and_searched_ranges_agree(bits, n, rng, monkeypatch):
    """Two independent exact methods on the same samples (each below its default threshold forced
    to the other): the per-zero-point kernel and the bucketed (z, s) branch and bound give the same
    zero point and error sum (to rounding; the steps to a few ulps), on every kind of data."""
    for kind in _KINDS:
        x = _data(kind, n, rng)
        if x.max() <= 0:
            x[0] = 1.0
        if kind == "positive":  # (no negative sample: both take the unsigned proof)
            x[0] = -0.5
        x = x.astype(np.float32) if bits == 4 else x
        got = {}
        for path, limit in (("direct", 1 << 30), ("search", 0)):
            monkeypatch.setattr(empirical, "_AFFINE_DIRECT", limit)
            got[path] = EmpiricalMSE(x)._affine_optimum(bits)
        (e1, s1, z1), (e2, s2, z2) = got["direct"], got["search"]
        scale = 1e-15 * float(np.sum(np.asarray(x, dtype=np.float64) ** 2))  # (error sums near 0)
        # (an exact tie of two ranges is two optima: data on a grid, any zero-error range; heavy
        # tails at 2 bits, rng seed 38: z = 1, s = 751.6 and z = 2, s = 375.8 err exactly alike)
        assert z1 == z2 or e1 == e2, kind
        assert e1 == pytest.approx(e2, rel=1e-12, abs=scale), kind
        assert s1 == pytest.approx(s2, rel=1e-9) or e1 == e2, kind


def test_sweep_reference_equals_the_brute_force(rng):
    for kind in ("bimodal", "heavy", "ties"):
        x = _data(kind, 200, rng)
        assert _sweep_reference(x, 3) == pytest.approx(_brute_affine(x, 3), rel=1e-12)


@pytest.mark.parametrize("kind", _KINDS)
@pytest.mark.parametrize("bits", [2, 3])
def test_large_tensor_equals_the_exact_sweep(kind, bits, rng):
    """Over 2^16 samples (bucket statistics, windows gathered): the exact optimum, float32 and float64."""
    x = _data(kind, 70_000, rng)
    x = x.astype(np.float32) if bits == 2 else x
    _check(x, bits, _sweep_reference(x, bits))


@pytest.mark.parametrize("kind", ["activations", "symmetric_bimodal"])
def test_large_tensor_at_4_bits_equals_the_exact_sweep(kind, rng):
    x = _data(kind, 70_000, rng).astype(np.float32)
    _check(x, 4, _sweep_reference(x, 4))


def test_all_positive_samples_give_the_unsigned_optimum(rng):
    """No negative sample: the zero point is 0 and the range is the unsigned grid's exact optimum
    (EmpiricalMSE.optimal_clip's sweep, a different search)."""
    x = rng.lognormal(0.0, 1.0, 3000)
    x[:600] = 0.0
    for bits in (2, 4, 8):
        r = optimal_clip(x, bits, grid="affine", range="asymmetric", progress=False)
        u = optimal_clip(x, bits, grid="unsigned", progress=False)
        assert r.beta == 0.0
        assert r.mse == pytest.approx(u.mse, rel=1e-12)


def test_no_positive_sample_is_rejected():
    with pytest.raises(ValueError, match="'prior' parameter of optimal_clip"):
        optimal_clip(-np.abs(np.arange(1.0, 100_001.0)), 4, grid="affine", range="asymmetric")
    with pytest.raises(ValueError, match="'prior' parameter of optimal_clip"):
        optimal_clip(np.zeros(10), 4, grid="affine", range="asymmetric")


@pytest.mark.parametrize("c", [2.0**-900, 1e-300, 1e300])
def test_large_tensor_range_is_scale_equivariant(c, rng):
    x = _data("activations", 70_000, rng)
    r1 = optimal_clip(x, 4, grid="affine", range="asymmetric", progress=False)
    rc = optimal_clip(x * c, 4, grid="affine", range="asymmetric", progress=False)
    assert rc.alpha / c == pytest.approx(r1.alpha, rel=1e-9)
    assert rc.beta / c == pytest.approx(r1.beta, rel=1e-9, abs=1e-300)
    assert rc.sqnr_db == pytest.approx(r1.sqnr_db, abs=1e-9)


@pytest.mark.parametrize("c", [2.0**-900, 1e-300, 1e300])
def test_few_samples_range_is_scale_equivariant(c, rng):
    """The per-zero-point path (float64 samples normalised by a power of two): the same range, scaled."""
    x = _data("activations", 2000, rng)
    for bits in (2, 4, 8):
        r1 = optimal_clip(x, bits, grid="affine", range="asymmetric", progress=False)
        rc = optimal_clip(x * c, bits, grid="affine", range="asymmetric", progress=False)
        assert rc.alpha / c == pytest.approx(r1.alpha, rel=1e-12)
        assert rc.beta / c == pytest.approx(r1.beta, rel=1e-12, abs=1e-300)


def test_a_large_sample_before_tiny_ones_and_many_bits_equal_the_brute_force(rng):
    """Prefix sums whose magnitude is set by one large sample sorted before many tiny ones (the
    bounds' rounding margins must follow the prefix, not the segment), and 10 bits (1023 zero
    points) on few samples."""
    x = np.r_[-1.0, 1e-3 * rng.random(60)]
    _check(x, 3, _brute_affine(x, 3))
    x = np.r_[rng.normal(size=7), 2.5]
    _check(x, 10, _brute_affine(x, 10))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kind", "n"), [("skewed", 3000), ("skewed", 90_000), ("relu", 90_000)])
def test_optimal_range_is_optimal_clip_asymmetric(kind, n, dtype, rng):
    """``EmpiricalMSE.optimal_range`` gives the (β, α) of ``optimal_clip(x, b, range="asymmetric")``
    exactly, from the same preparation; samples without a positive value are refused by name."""
    x = rng.gamma(2.0, size=n) - 1.0
    if kind == "relu":
        x = np.maximum(x, 0.0)
    x = x.astype(dtype)
    r = optimal_clip(x, 8, range="asymmetric")
    assert EmpiricalMSE(x).optimal_range(8) == (r.beta, r.alpha)
    with pytest.raises(ValueError, match="'x' parameter of EmpiricalMSE.optimal_range"):
        EmpiricalMSE(-np.abs(x)).optimal_range(8)


@pytest.mark.parametrize("n", [1000, 100_000])
def test_data_on_a_grid_get_an_exactly_zero_error_range(n):
    """Small integers: every step 1/k whose 2^b − 1 levels span the data is a zero-error range; the
    proven optimum is one of them (error 0 up to the rounding of the levels)."""
    x = np.random.default_rng(0).integers(-3, 4, size=n).astype(float)
    for bits in (4, 8):
        beta, alpha = EmpiricalMSE(x).optimal_range(bits)
        q = Quantizer(bits, alpha, "affine", beta=beta)
        assert float(np.mean((q.quantize(x) - x) ** 2)) <= 1e-28
        assert np.isclose(1.0 / q.scale, round(1.0 / q.scale))  # a step 1/k
