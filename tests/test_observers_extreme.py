"""Streamed observers at the edges: data of any magnitude (the histogram at a power-of-two unit),
exact ranges whose optimum lies beyond max|x| or far below it, subnormal and near-1.8e308 data.
Every reference is independent of the streamed code: the in-memory optimum (``optimal_clip`` of
the concatenated data), a direct quantize-and-average, or exact ``Fraction`` arithmetic."""

from fractions import Fraction

import numpy as np
import pytest

from qtheory import optimal_clip
from qtheory.models.observers import METHODS, Observer, quantizer_for

_FMAX = Fraction(float(np.finfo(np.float64).max))


def _streamed(x, bits, grid, k=0, parts=5, **kw):
    """An observer that has streamed ``x·2^k`` (in ``parts`` batches; 100 values kept at most)."""
    obs = Observer(bits, grid, max_samples=kw.pop("max_samples", 100), **kw)
    for p in np.array_split(np.ldexp(x, k), parts):
        obs.collect(p)
    assert obs.streamed
    return obs


def _direct_mse(x, beta, alpha, bits, grid):
    """MSE of ``x`` quantized at the range (float64 quantize-and-average)."""
    q = quantizer_for(beta, alpha, bits, grid)
    return float(np.mean(np.square(x - q.quantize(x))))


def _exact_mse(x, beta, alpha, bits, grid):
    """The MSE at the range in exact arithmetic, rounded once to float64 (``inf`` beyond it)."""
    with np.errstate(divide="ignore"):  # (a subnormal range: its step 0.0 sends every value to a level 0)
        y = quantizer_for(beta, alpha, bits, grid).quantize(x)
    m = sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(x, y, strict=True)) / len(x)
    return float(m) if m <= _FMAX else float("inf")


@pytest.fixture
def laplace_5000():
    x = np.random.default_rng(0).laplace(size=5000)
    return x[np.abs(x) > 1e-6]  # (x·2^-1000 stays a normal float64: every scaling below is exact)


@pytest.mark.parametrize("grid", ["narrow", "affine"])
def test_streamed_exact_range_at_extreme_magnitudes(laplace_5000, grid):
    """At 2^510 (x² overflows beyond |x| = 1.3e154, the MSE does not) and 2^-565 (x² underflows)
    the streamed exact range is the in-memory optimum's, and its MSE that optimum's times 4^k
    (it was a clip of 0.03 instead of 4.86 with MSE 0.0)."""
    x, bits = laplace_5000, 4
    ref = (optimal_clip(x, bits, grid="affine", range="asymmetric") if grid == "affine"
           else optimal_clip(x, bits, grid=grid))
    for k in (510, -565):
        r = _streamed(x, bits, grid, k).range("exact")
        beta, alpha = np.ldexp(r.beta, -k), np.ldexp(r.alpha, -k)
        true = _direct_mse(x, beta, alpha, bits, grid)
        assert true <= ref.mse * (1 + 1e-6), (k, alpha, true, ref.mse)
        if grid != "affine":  # (the symmetric in-memory optimum is proven global)
            assert true >= ref.mse * (1 - 1e-12)
        want = np.ldexp(ref.mse, 2 * k)  # 6e305 at 2^510; 0 (below float64) at 2^-565
        assert r.mse == pytest.approx(want, rel=1e-6, abs=0.0), (k, r.mse, want)


def test_streamed_max_range_mse_at_extreme_magnitudes(laplace_5000):
    """The ``max`` range's MSE is the data's at max|x|, times 4^k (it was 0.0 at 2^510)."""
    x = laplace_5000
    top = float(np.max(np.abs(x)))
    want = _direct_mse(x, -top, top, 4, "narrow")
    r = _streamed(x, 4, "narrow", 510).range("max")
    assert r.alpha == np.ldexp(top, 510)
    assert np.ldexp(r.mse, -1020) == pytest.approx(want, rel=1e-3)
    assert np.ldexp(r.mse, -1020) >= want * (1 - 1e-12)  # (U bounds the MSE from above)


@pytest.mark.parametrize("grid", ["narrow", "affine", "midrise"])
def test_streamed_methods_are_scale_equivariant(laplace_5000, grid):
    """Every method, streamed at x·2^k, gives the clips of the run at x times 2^k and its MSEs and
    bounds times 4^k, exactly (0 or inf only where those leave float64); the sample-based methods
    failed beyond 3.4e38 (float32 sample) and returned 0 below 1e-45."""
    x = laplace_5000
    base = {m: _streamed(x, 4, grid).range(m) for m in METHODS}
    for k in (-1000, -530, 530, 1000):
        obs = _streamed(x, 4, grid, k)
        for m in METHODS:
            r, r0 = obs.range(m), base[m]
            with np.errstate(over="ignore", under="ignore"):
                want = (np.ldexp(r0.beta, k), np.ldexp(r0.alpha, k), np.ldexp(r0.mse, 2 * k),
                        np.ldexp(r0.bound, 2 * k))
            assert (r.beta, r.alpha, r.mse, r.bound) == want, (grid, k, m)


def _lattice():
    """8-bit-image-like data: 256 values 6/255 apart; the optimum clips of narrow and midrise lie
    beyond max|x| = 5.5. The default 2^16 bins are far narrower than the spacing, so no bin holds
    two values: E(q) = 0 for every q, and the documented guarantee reads MSE(q̂) <= MSE(q*)."""
    return np.random.default_rng(0).integers(0, 256, size=20000) / 255 * 6 - 0.5


def test_streamed_symmetric_exact_finds_an_optimum_beyond_max():
    """The streamed exact clip has the in-memory optimum's MSE (it was 3.2% above it, α = 5.50
    instead of 5.99 on narrow; 1.5% on midrise: the search stopped at max|x|·(1 + 2^-6))."""
    x = _lattice()
    for grid in ("narrow", "midrise", "int", "unsigned", "uint"):
        ref = optimal_clip(x, 8, grid=grid)
        r = Observer(8, grid, max_samples=0).collect(x).range("exact")
        true = _direct_mse(x, r.beta, r.alpha, 8, grid)
        assert true <= ref.mse * (1 + 1e-12), (grid, r.alpha, ref.alpha, true / ref.mse - 1)
        assert r.mse == pytest.approx(true, rel=1e-9) and r.bound == 0.0
    assert optimal_clip(x, 8, grid="narrow").alpha > 5.9 > float(np.max(np.abs(x)))


def test_streamed_symmetric_exact_finds_an_optimum_far_below_max():
    """One outlier at 150 among normal values on a 1/64 lattice: at 2 bits the optimum clip (1.2)
    lies below max|x|·2^-6, where the first scan starts; the proven lower end of the search
    reaches it (the clip was 2.34, its MSE 83% above the optimum on narrow). Bins of width
    150/2^15 hold one lattice value each: E(q*) = 0."""
    rng = np.random.default_rng(1)
    x = np.r_[np.round(rng.normal(size=50_000) * 64) / 64, 150.0]
    for grid in ("narrow", "midrise", "int", "unsigned"):
        ref = optimal_clip(x, 2, grid=grid)
        r = Observer(2, grid, max_samples=0).collect(x).range("exact")
        true = _direct_mse(x, r.beta, r.alpha, 2, grid)
        assert true <= ref.mse * (1 + 1e-12), (grid, r.alpha, ref.alpha, true / ref.mse - 1)
    assert optimal_clip(x, 2, grid="narrow").alpha < 150.0 * 2.0**-6


@pytest.mark.parametrize("grid", ["narrow", "midrise", "int", "unsigned", "uint", "affine"])
def test_streamed_subnormal_and_near_max_data(grid):
    """Streaming ±5e-324 raised 'Geometric sequence cannot include zero' (and ZeroDivisionError
    for ``max``), ±1.7e308 an OverflowError. Now every method gives a range whose reported MSE
    is the exact MSE of that range (0 where the optimum is exact, inf only where the MSE leaves
    float64), or a ValueError naming the batch where the range itself leaves float64."""
    for v in (5e-324, 1.7e308):
        x = np.array([v, -v])
        obs = Observer(8, grid, max_samples=0).collect(x)
        for m in METHODS:
            try:
                r = obs.range(m)
            except ValueError as e:
                assert "'batch' parameter of Observer.range" in str(e) and m == "aciq", (v, m, e)
                continue
            assert np.isfinite([r.beta, r.alpha]).all()
            assert r.mse == _exact_mse(x, r.beta, r.alpha, 8, grid), (v, m, r)
        r = obs.range("exact")
        if v == 5e-324 or grid in ("narrow", "midrise"):  # the in-memory optimum's MSE is 0: so is this one's
            ref = (optimal_clip(x, 8, grid="affine", range="asymmetric") if grid == "affine"
                   else optimal_clip(x, 8, grid=grid))
            assert r.mse == 0.0 == ref.mse
        if grid == "narrow":
            assert r.alpha == v == optimal_clip(x, 8, grid="narrow").alpha


def test_streamed_range_beyond_float64_is_a_clear_error():
    """ACIQ's clip of data near 1.8e308 (about 10 mean deviations) is no float64: a ValueError that
    names the parameter (the batch collected raised an OverflowError before)."""
    obs = Observer(8, "narrow", max_samples=0).collect(np.array([1.79e308, -1.79e308]))
    with pytest.raises(ValueError, match="'batch' parameter of Observer.range"):
        obs.range("aciq")
    assert obs.range("max").alpha == 1.79e308


def test_streamed_mse_counts_values_far_below_max():
    """A value 1e300 times below max|x| errs by 3 at the optimum, whose square underflows at the
    histogram's unit: the reported MSE is still the exact MSE of the range (the affine range
    clipped 2e300 to 2.2e297, an MSE of inf reported as 0.088)."""
    x = np.r_[np.zeros(100), -3.0, 2e300]
    for grid in ("affine", "narrow", "midrise"):
        r = Observer(8, grid, max_samples=0).collect(x).range("exact")
        want = _exact_mse(x, r.beta, r.alpha, 8, grid)
        assert r.mse == want, (grid, r, want)
        if grid != "midrise":  # (midrise has no level 0: the zeros err by half a step, 1e298)
            assert 0.0 < want < 1.0
