"""Fast exact empirical MSE (qtheory.empirical): equality with a direct quantize-and-average,
ties, the global search, per-channel clips and bad input."""

import math

import numpy as np
import pytest

import qtheory
from qtheory import Quantizer
from qtheory.empirical import (
    EmpiricalMSE,
    direct_mse,
    empirical_mse,
    empirical_optimal_clip,
    per_channel_optimal_clip,
)
from qtheory.quantizer import GRIDS, MIN_BITS, ROUNDINGS


def _direct_parts(x, q):
    """Reference: quantize every sample, split at the overload points, sum exactly."""
    x = np.asarray(x, dtype=np.float64).ravel()
    e = q.quantize(x) - x
    lo, hi = q.overload
    c = (x < lo) | (x >= hi)
    return math.fsum(e[c] ** 2) / x.size, math.fsum(e[~c] ** 2) / x.size


def _datasets(rng):
    return {
        "laplace": rng.laplace(size=3000),
        "integers": rng.integers(-12, 13, size=2000).astype(float),  # ties on thresholds
        "quarters": np.round(rng.normal(size=2000) * 8) / 4,  # ties for many grids
        "float32": rng.standard_t(3, size=3000).astype(np.float32),
        "relu": np.maximum(rng.normal(size=2000), 0.0),
        "constant": np.full(50, 0.75),
    }


def _quantizers(grid, rounding):
    qs = []
    for bits in range(MIN_BITS[grid], 9):
        for alpha in (0.3, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 12.5, 100.0):
            beta = -0.5 * alpha if grid == "affine" else None
            qs.append(Quantizer(bits, alpha, grid, rounding, beta))
    return qs


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("grid", GRIDS)
def test_fast_mse_equals_direct_every_grid(grid, rounding, rng):
    for name, x in _datasets(rng).items():
        prep = EmpiricalMSE(x)
        qs = _quantizers(grid, rounding)
        sums = prep.error_sums(qs) / x.size
        # float64 rounding: relative 1e-14, or (for a sum that is ~0 because samples sit on levels)
        # the double-double resolution of the data's power
        tiny = 1e-28 * float(np.mean(np.asarray(x, float) ** 2))
        for q, (c, r) in zip(qs, sums, strict=True):
            dc, dr = _direct_parts(x, q)
            assert c == pytest.approx(dc, rel=1e-14, abs=tiny), (name, q)
            assert r == pytest.approx(dr, rel=1e-14, abs=tiny), (name, q)


def test_large_tensor_gathers_on_demand(rng):
    # > 2^16 samples: the samples of straddling buckets are gathered only when needed
    x = rng.laplace(size=150_000).astype(np.float32)
    prep = EmpiricalMSE(x)
    assert prep._xs.size == 0
    for bits, grid in ((2, "midrise"), (4, "int"), (8, "narrow"), (8, "uint")):
        for alpha in (0.5, 3.0, 7.7, 20.0):
            q = Quantizer(bits, alpha, grid)
            c, r = prep.mse_quantizer(q)
            dc, dr = _direct_parts(x, q)
            assert c == pytest.approx(dc, rel=1e-14, abs=1e-300)
            assert r == pytest.approx(dr, rel=1e-14, abs=1e-300)
    assert 0 < prep._xs.size < x.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_preparation_is_exact(dtype, rng):
    # >= 2^18 samples: the preparation and the gathering pass run in numba threads (float32: exact
    # integer bucket sums); the evaluation still equals a direct quantize-and-average
    x = (rng.laplace(size=300_001) * 3.0).astype(dtype)
    x[:5] = [0.0, -0.0, 1e-30, -1e-30, 2.5]  # the centre bucket and an exact level
    prep = EmpiricalMSE(x)
    x64 = x.astype(np.float64)
    assert prep.mean == pytest.approx(math.fsum(x64) / x.size, rel=1e-15, abs=1e-18)
    for bits, grid, alpha in ((2, "midrise", 5.0), (4, "int", 12.0), (8, "narrow", 30.0), (8, "uint", 9.0)):
        q = Quantizer(bits, alpha, grid)
        c, r = prep.mse_quantizer(q)
        dc, dr = _direct_parts(x, q)
        assert c == pytest.approx(dc, rel=1e-14, abs=1e-300)
        assert r == pytest.approx(dr, rel=1e-14, abs=1e-300)
    for bits in (2, 4, 8):
        o = prep.optimal_clip(bits, grid="midrise")
        assert o.mse == pytest.approx(direct_mse(x, Quantizer(bits, o.alpha)), rel=1e-14)
        # a large tensor's search ends at a vertex of the rippled valley floor: within 1e-6 of the
        # best clip nearby (not always that clip), and at least as good as a dense global grid —
        # except that at 8 bits the sparse tail of 3·10^5 samples leaves basins whose MSEs differ by
        # ~1e-4 (relative), below the resolution of the bucket-approximate scan that picks one
        near = prep.curve(o.alpha * (1 + np.linspace(-1e-3, 1e-3, 201)), bits, "midrise")
        assert o.mse <= near.min() * (1 + 1e-6)
        dense = prep.curve(np.linspace(prep.absmax / 4000, prep.absmax, 4000), bits, "midrise")
        assert o.mse <= dense.min() * (1 + (1e-12 if bits < 8 else 1e-3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [3, 600])  # (600 x 1024: rows sorted in threads)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_per_channel_rejects_non_finite_values_found_at_the_sorted_ends(dtype, rows, bad, rng):
    w = rng.normal(size=(rows, 1024)).astype(dtype)
    w[rows // 2, 17] = bad
    with pytest.raises(ValueError, match="x.*1 non-finite"):
        per_channel_optimal_clip(w, 4, axis=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gathered_samples_are_sorted_by_bucket_with_double_double_prefix_sums(dtype, rng):
    # the threaded gathering pass (float32: every sample's bits, sorted by numpy) and the blocked
    # parallel prefix sums (>= 2^18 gathered samples): the samples in increasing order, each
    # bucket's run at gstart, and double-double prefix sums of x and x² within the double-double
    # summation bound of the exact sums (i·eps²·Σ|x|: not always the correctly rounded double, as
    # when the sum of the larger terms lands on a midpoint and only subnormal terms decide it)
    x = (rng.laplace(size=400_003) * 7.0).astype(dtype)
    x[:9] = [0.0, -0.0, 1e-30, -1e-30, 2.5, 2.5, -2.5, 1e-40, -3e-42]  # zeros, ties, subnormals
    x[9:2000] = x[10]  # a long run of one value
    prep = EmpiricalMSE(x, presort=True)
    x64 = np.sort(x.astype(np.float64))
    np.testing.assert_array_equal(prep._xs, x64)
    np.testing.assert_array_equal(prep._gstart, prep._cnt)
    g1h, g1l, g2h, g2l = prep._g
    assert g1h[0] == g1l[0] == g2h[0] == g2l[0] == 0.0
    eps2 = 2.0**-104
    for i in (1, 9, 2000, 32767, 32768, 32769, 65537, 200_000, 400_003):
        # (dd − exact sum), correctly rounded by fsum; each value normalised (|lo| <= ulp(hi)/2)
        err1 = math.fsum([g1h[i], g1l[i], *(-x64[:i]).tolist()])
        assert abs(err1) <= 4 * i * eps2 * math.fsum(np.abs(x64[:i])) + 2.0**-1074, i
        assert abs(g1l[i]) <= abs(g1h[i]) * 2.0**-52, i
        if dtype == np.float32:  # (float32: x² exact in float64)
            sq = x64[:i] ** 2
            err2 = math.fsum([g2h[i], g2l[i], *(-sq).tolist()])
            assert abs(err2) <= 4 * i * eps2 * math.fsum(sq) + 2.0**-1074, i
            assert abs(g2l[i]) <= abs(g2h[i]) * 2.0**-52, i


def test_float32_bucket_tables_agree(rng):
    # the 16-byte packed float32 table (used below 2^25 samples) and the 32-byte one (above) give
    # the same exact bucket statistics, and both the compensated float64 ones to double-double rounding
    import numba

    from qtheory.kernels import empirical as k

    x = np.concatenate([rng.laplace(size=50_000) * 4.0, [0.0, -0.0, 1e-30, -2e-31, 7.0, -7.0]]).astype(np.float32)
    xb = x.view(np.int32)
    ef, mb = max(math.frexp(float(np.max(np.abs(x))))[1] - 23, -125), 6
    nside = 24 << mb
    nb = 2 * nside + 1
    out = []
    for acc, merge, width in ((k.accumulate32p_par, k.merge32p, 2), (k.accumulate32_par, k.merge32, 4)):
        nt = numba.get_num_threads()  # (tables are indexed by numba's thread id)
        tbl = np.zeros((nt, nb, width), dtype=np.int64)
        ctr = np.zeros((nt, 8))
        ctr[:, 5], ctr[:, 6] = np.inf, -np.inf
        acc(xb, ef, mb, nside, tbl, ctr, 4096)
        stats = np.zeros((nb, 8))
        merge(tbl, ctr, ef, mb, nside, stats)
        out.append(stats)
    np.testing.assert_array_equal(out[0], out[1])
    ref = np.zeros((nb, 8))
    ref[:, 5], ref[:, 6] = np.inf, -np.inf
    k.accumulate(x, xb, True, ef, mb, nside, ref)
    np.testing.assert_array_equal(out[0][:, 0], ref[:, 0])
    np.testing.assert_allclose(out[0][:, 1] + out[0][:, 2], ref[:, 1] + ref[:, 2], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(out[0][:, 3] + out[0][:, 4], ref[:, 3] + ref[:, 4], rtol=1e-15, atol=1e-300)
    full = ref[:, 0] > 0
    assert np.all(out[0][full, 5] <= ref[full, 5]) and np.all(out[0][full, 6] >= ref[full, 6])


def test_approximate_scan_is_close_and_exact_curve_matches(rng):
    x = rng.normal(size=200_000)
    prep = EmpiricalMSE(x)
    alphas = np.geomspace(0.5, 5.0, 25)
    exact = prep.curve(alphas, 6, "midrise")
    approx = prep.curve(alphas, 6, "midrise", exact=False)
    direct = [direct_mse(x, Quantizer(6, a)) for a in alphas]
    np.testing.assert_allclose(exact, direct, rtol=1e-13)
    np.testing.assert_allclose(approx, exact, rtol=1e-3)


def test_public_entry_points_use_the_exact_path(rng):
    x = rng.laplace(size=5000)
    r = qtheory.clipping_mse(x, [1.0, 2.5, 4.0], 3, grid="int")
    for a, m in zip([1.0, 2.5, 4.0], r.mse, strict=True):
        assert m == pytest.approx(direct_mse(x, Quantizer(3, a, "int")), rel=1e-14)
    e = empirical_mse(x.reshape(50, 100), 2.5, 3, grid="int")
    assert e.mse == pytest.approx(r.mse[1], rel=1e-15)
    o = qtheory.optimal_clip(x, 4)
    assert o.alpha == pytest.approx(empirical_optimal_clip(x, 4).alpha, rel=1e-12)
    assert o.ratio == pytest.approx(o.alpha / np.std(x), rel=1e-12)


def test_float32_and_float64_agree(rng):
    x32 = rng.laplace(size=4000).astype(np.float32)
    x64 = x32.astype(np.float64)
    for bits in (2, 5, 8):
        a32 = EmpiricalMSE(x32).mse(3.3, bits).mse
        a64 = EmpiricalMSE(x64).mse(3.3, bits).mse
        assert a32 == a64


def test_known_small_optimum():
    r = empirical_optimal_clip([-2.0, -1.0, 0.0, 1.0, 2.0], 2, grid="narrow")
    assert r.alpha == pytest.approx(1.5, rel=1e-12)
    assert r.mse == pytest.approx(0.2, rel=1e-12)
    # integers on the int grid: the clip that puts a level on every integer has zero error
    x = np.arange(-8.0, 8.0)
    r = empirical_optimal_clip(x, 4, grid="int")
    assert r.mse == 0.0


@pytest.mark.parametrize("grid", ["midrise", "int", "narrow", "unsigned", "uint"])
@pytest.mark.parametrize("bits", [2, 3, 5])
def test_optimum_beats_a_dense_direct_grid(grid, bits, rng):
    x = rng.laplace(size=800) if grid not in ("unsigned", "uint") else rng.exponential(size=800)
    r = empirical_optimal_clip(x, bits, grid=grid)
    top = np.max(np.abs(x))
    dense = np.linspace(top / 2000, top * 1.5, 2000)
    vals = EmpiricalMSE(x).curve(dense, bits, grid)
    assert r.mse <= vals.min() * (1 + 1e-12)
    assert r.mse == pytest.approx(direct_mse(x, Quantizer(bits, r.alpha, grid)), rel=1e-13)
    # an exact local minimum: no better clip nearby
    near = EmpiricalMSE(x).curve(r.alpha * (1 + np.linspace(-1e-3, 1e-3, 41)), bits, grid)
    assert r.mse <= near.min() * (1 + 1e-12)


def test_per_channel(rng):
    w = rng.normal(size=(4, 3, 300)) * np.array([1.0, 2.0, 0.5])[None, :, None]
    r = per_channel_optimal_clip(w, 4, axis=1, grid="int")
    assert r.axis == 1 and r.alpha.shape == (3,) and r.mse.shape == (3,)
    for c in range(3):
        ref = empirical_optimal_clip(w[:, c, :], 4, grid="int")
        assert r.alpha[c] == pytest.approx(ref.alpha, rel=1e-12)
        assert r.mse[c] == pytest.approx(ref.mse, rel=1e-12)
    assert np.allclose(r.clipping + r.rounding, r.mse)
    r2 = per_channel_optimal_clip(w, 4, axis=-2, grid="int")
    np.testing.assert_array_equal(r2.alpha, r.alpha)
    assert r2.axis == 1
    df = r.to_frame()
    assert list(df.columns) == ["channel", "alpha", "mse", "clipping", "rounding"] and len(df) == 3
    z = np.zeros((2, 10))
    z[1] = rng.normal(size=10)
    rz = per_channel_optimal_clip(z, 3, axis=0)
    assert rz.alpha[0] == 0.0 and rz.mse[0] == 0.0 and rz.alpha[1] > 0  # (a zero channel: clip 0.0, documented)


def test_bucket_keys_agree_and_are_monotone(rng):
    import numba

    from qtheory.kernels.empirical import _bucket, _bucket_bits

    @numba.njit
    def both(x, xb, is32, ef, mb, nside, out):
        for i in range(x.size):
            out[i, 0] = _bucket(np.float64(x[i]), ef, mb, nside)
            out[i, 1] = _bucket_bits(xb[i], is32, ef, mb, nside)

    x = rng.laplace(size=20000) * 10.0 ** rng.integers(-40, 3, size=20000)
    x = np.concatenate([x, [0.0, -0.0, 5e-324, -5e-324, 2.0**-1022, 1.0, -1.0, 0.5, 2.0, 1e308, -1e308]])
    x32 = np.concatenate([x[np.abs(x) < 1e38].astype(np.float32), np.float32([1e-45, -1e-45, 1.2e-38])])
    for arr, is32, efs in ((x, False, (-1021, -20, 5)), (x32, True, (-125, -20, 5))):
        bits = arr.view(np.int32 if is32 else np.int64)
        for ef in efs:
            for mb in (0, 5, 12):
                nside = 24 << mb
                out = np.empty((arr.size, 2), dtype=np.int64)
                both(arr, bits, is32, ef, mb, nside, out)
                np.testing.assert_array_equal(out[:, 0], out[:, 1])
                order = np.argsort(arr.astype(np.float64), kind="stable")
                assert np.all(np.diff(out[order, 0]) >= 0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: EmpiricalMSE([]), "x"),
        (lambda: EmpiricalMSE([1.0, np.nan]), "x"),
        (lambda: EmpiricalMSE([1.0, np.inf]), "x"),
        (lambda: EmpiricalMSE(["a", "b"]), "x"),
        (lambda: empirical_mse([1.0, 2.0], 0.0, 4), "alpha"),
        (lambda: empirical_mse([1.0, 2.0], 1.0, 0), "bits"),
        (lambda: empirical_mse([1.0, 2.0], 1.0, 4, grid="log"), "grid"),
        (lambda: empirical_optimal_clip([1.0, 2.0], 4, grid="affine"), "grid"),
        (lambda: empirical_optimal_clip([1.0, 2.0], 4, n_grid=3), "n_grid"),
        (lambda: per_channel_optimal_clip(np.ones((2, 3)), 4, axis=2), "axis"),
        (lambda: per_channel_optimal_clip(np.ones((2, 3)), 4, axis=-3), "axis"),
        (lambda: per_channel_optimal_clip(np.ones((2, 3)), 4, axis=0.5), "axis"),
        (lambda: per_channel_optimal_clip(np.ones((2, 0)), 4, axis=0), "x"),
        (lambda: per_channel_optimal_clip(np.zeros((0, 5)), 4, axis=0), "x"),  # (numpy's reshape error)
        (lambda: qtheory.optimal_clip(np.zeros((5, 0)), 4, axis=1), "x"),
        (lambda: empirical_mse([1.0, 2.0], 10**400, 4), "alpha"),  # (OverflowError from float())
        (lambda: qtheory.Quantizer(4, -10**400), "alpha"),
        (lambda: per_channel_optimal_clip(np.float64(3.0), 4, axis=0), "x"),
        (lambda: per_channel_optimal_clip([[1.0, np.nan]], 4, axis=0), "x"),
        (lambda: per_channel_optimal_clip(np.ones((2, 3)), 4, axis=0, grid="affine"), "grid"),
        (lambda: qtheory.optimal_clip(np.array([]), 4), "prior"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter"):
        call()


def test_presorted_evaluation_never_passes_over_the_samples_again(rng, monkeypatch):
    from qtheory.empirical import EmpiricalMSE, direct_mse

    x = rng.laplace(size=200_000)
    prep = EmpiricalMSE(x, presort=True)

    def no_pass(*args, **kwargs):
        raise AssertionError("an O(N) gathering pass after a presorted preparation")

    monkeypatch.setattr(prep, "_gather", no_pass)
    for grid in ("midrise", "int", "narrow", "unsigned", "uint"):
        for bits in (2, 4, 8):
            for alpha in (0.7, 2.9, 6.1):
                q = qtheory.Quantizer(bits, alpha, grid)
                got = prep.mse(alpha, bits, grid=grid).mse
                assert got == pytest.approx(direct_mse(x, q), rel=1e-13)


@pytest.mark.parametrize("n", [3, 200_000])
@pytest.mark.parametrize("offset", [1e3, 1e9, 1e12])
def test_samples_far_from_zero_near_a_level(n, offset, rng):
    """Samples at a large offset within 0.01 of a level: the error sum is a tiny difference of the
    moments Σx² − 2yΣx + y²n (1e-27 of them at 1e12), beyond their double-double rounding; such
    runs are summed sample by sample (the MSE was off by 1e-4 relative at 1e12 for 3 samples, and
    by 500× at 1e11 for 2e5, whose bucket sums were never gathered)."""
    x = offset + rng.uniform(-0.01, 0.01, n)
    q = Quantizer(8, offset, "unsigned")
    e = q.quantize(x) - x  # (exact: each x is within a factor 2 of its level)
    ref = math.fsum(e * e) / n
    assert qtheory.clipping_mse(x, offset, 8, grid="unsigned").mse == pytest.approx(ref, rel=1e-13)
    assert EmpiricalMSE(x).mse(offset, 8, grid="unsigned").mse == pytest.approx(ref, rel=1e-13)


def _fraction_mse(x, q):
    """The MSE of the quantizer ``q`` on ``x``, exactly (fractions of the float64 values)."""
    from fractions import Fraction

    xq = q.quantize(np.asarray(x, dtype=np.float64))
    return float(sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(xq, np.asarray(x, float),
                                                                                 strict=True)) / len(x))


@pytest.mark.parametrize("x", [[1e20, -1e20, 1.0], [1e17, -1e17, 1.0, 0.5], [-3e30, 2e30, 1.0, -2.0, 0.25]])
def test_small_samples_beside_huge_ones_count_in_the_error(x):
    """Samples of magnitude 1 next to ±1e17..1e30: their errors were lost in the prefix sums that
    the exact evaluation takes differences of (rounded to ~2^-106 of everything summed before), so
    the MSE was reported 0.0 (true 1/3 for the first). Reference: exact fractions of the reference
    quantizer's values, at the clip found and at every candidate step (brute force)."""
    from _brute import candidate_steps

    r = qtheory.optimal_clip(np.array(x), 8, grid="narrow")
    assert r.mse == pytest.approx(_fraction_mse(x, Quantizer(8, r.alpha, "narrow")), rel=1e-14, abs=0.0)
    steps, d = candidate_steps(np.array(x), 8, "narrow")
    best = min(_fraction_mse(x, Quantizer(8, float(s * d), "narrow")) for s in steps)
    assert r.mse <= best * (1.0 + 1e-12)
    e = EmpiricalMSE(np.array(x))
    for a in (r.alpha, 0.5 * r.alpha, 3.0):
        assert e.mse(a, 8, grid="narrow").mse == pytest.approx(_fraction_mse(x, Quantizer(8, a, "narrow")),
                                                               rel=1e-14, abs=0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1e17, 1e30])
def test_many_small_samples_beside_huge_ones_bucketed(dtype, big):
    """The same above 2^16 samples (bucket sums, not all samples gathered): 50,000 samples near
    1 beside 100,000 at ±big. Reference: the reference quantizer's errors summed exactly enough
    (math.fsum of float64 squares of exact differences)."""
    m = 50_000
    rng = np.random.default_rng(3)
    x = np.r_[np.full(m, -big), np.full(m, big), 1.0 + 1e-3 * rng.random(m)].astype(dtype)
    r = qtheory.optimal_clip(x, 8, grid="narrow")
    xd = x.astype(np.float64)
    for a in (r.alpha, 2.0 * big):
        err = Quantizer(8, a, "narrow").quantize(xd) - xd
        ref = math.fsum(err * err) / x.size
        assert EmpiricalMSE(x).mse(a, 8, grid="narrow").mse == pytest.approx(ref, rel=1e-12, abs=0.0)
    err = Quantizer(8, r.alpha, "narrow").quantize(xd) - xd
    assert r.mse == pytest.approx(math.fsum(err * err) / x.size, rel=1e-12, abs=0.0)
    assert r.mse == pytest.approx(np.mean(xd[2 * m:] ** 2) / 3.0, rel=1e-6)  # (the small third rounds to 0)


@pytest.mark.parametrize("row, bits, grid", [([1e20, -1e20, 1.0], 8, "narrow"), ([1e17, -1e17, 1.0, 3.0, -7.0], 8, "narrow"),
                                             ([394026977617200.94, -9.05729440598697e-17, 5.497762232980941e-15], 11,
                                              "unsigned")])
def test_per_channel_clip_is_the_best_of_its_ulp_neighbours(row, bits, grid):
    """Errors at the rounding level of the samples: the per-channel solver's step times ``D`` was
    one ulp off the clip whose levels hit the large samples exactly (``[1e20, −1e20, 1]``: clip
    1.0000000000000002e20, MSE 1.8e8, against 1e20 and 1/3). Reference: exact fractions of the
    reference quantizer's values; the clip must be the least over its ±2 ulp-neighbours, and err
    no more than optimal_clip's."""
    x = np.array([row])
    r = per_channel_optimal_clip(x, bits, axis=0, grid=grid)
    a = float(r.alpha[0])
    ref = _fraction_mse(row, Quantizer(bits, a, grid))
    assert float(r.mse[0]) == pytest.approx(ref, rel=1e-14, abs=0.0)
    near = [a]
    for step in (np.inf, 0.0):
        v = a
        for _ in range(2):
            v = float(np.nextafter(v, step))
            near.append(v)
    assert ref <= min(_fraction_mse(row, Quantizer(bits, v, grid)) for v in near)
    assert ref <= qtheory.optimal_clip(np.array(row), bits, grid=grid).mse * (1.0 + 1e-12)
