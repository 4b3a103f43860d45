"""``per_channel_optimal_clip`` (one numba pass: branch and bound over the step, exact sweeps of
what survives; issue 12 target 3) gives the exact global optimum of every channel.

Three independent references: ``EmpiricalMSE(channel).optimal_clip`` (the slow exact path), a
brute force over every piece of the piecewise-quadratic MSE (tiny channels), and direct
quantize-and-average at the returned clip. The bounds the search prunes with (the facts in the
comment above ``_pc_channel`` in ``qtheory/kernels/empirical.py``) are checked against dense exact
scans.
"""

import math

import numpy as np
import pytest
from _brute import candidate_steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qtheory import Quantizer
from qtheory.empirical import EmpiricalMSE, direct_mse, empirical_mse, per_channel_optimal_clip
from qtheory.quantizer import MIN_BITS

SCALE_GRIDS = ("midrise", "int", "narrow", "unsigned", "uint")
EPS = np.finfo(float).eps


def _tol(m, row):
    """Rounding tolerance of an error sum's mean ``m`` (see test_empirical_global: each residual is
    known to ~eps·|x|, so the MSE to 2·eps·sqrt(m·E[x²]) + eps²·E[x²]; a factor 2 over that)."""
    p = float(np.mean(np.asarray(row, float) ** 2))
    return 4 * EPS * math.sqrt(max(m, 0.0) * p) + 1e-28 * p + 1e-300


def _reachable(row, grid):
    top = np.max(np.abs(row)) if grid in ("midrise", "int", "narrow") else np.max(row)
    return top > 0


def _brute_min(x, bits, grid, rounding="half_even"):
    """Minimum over every clip of the exact MSE: every breakpoint and every piece's vertex
    (:func:`candidate_steps`), each evaluated directly (numpy quantizer, ``rounding``)."""
    s, d = candidate_steps(x, bits, grid)
    return min(direct_mse(x, Quantizer(bits, float(si * d), grid, rounding)) for si in s)


def _channels(kind, c, n, rng):
    if kind == "laplace":
        return rng.laplace(size=(c, n))
    if kind == "integers":  # ties: values on levels and on thresholds
        return rng.integers(-4, 5, size=(c, n)).astype(float)
    if kind == "quarters":
        return np.round(rng.normal(size=(c, n)) * 8) / 4
    if kind == "zeros":
        w = rng.normal(size=(c, n)) * (rng.random((c, n)) < 0.3)
        w[0] = 0.0
        return w
    if kind == "constant":
        return np.repeat(rng.uniform(-2, 2, size=(c, 1)), n, axis=1)
    if kind == "bimodal":
        return rng.normal(size=(c, n)) * 0.1 + rng.choice([-2.0, 2.0], size=(c, n))
    if kind == "cauchy":  # heavy tails
        return rng.standard_cauchy(size=(c, n))
    if kind == "relu":
        return np.maximum(rng.normal(size=(c, n)), 0.0)
    raise AssertionError(kind)


KINDS = ["laplace", "integers", "quarters", "zeros", "constant", "bimodal", "cauchy", "relu"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=st.integers(1, 5), n=st.integers(1, 200), bits=st.integers(1, 8), grid=st.sampled_from(SCALE_GRIDS),
       dtype=st.sampled_from([np.float32, np.float64]), kind=st.sampled_from(KINDS),
       rounding=st.sampled_from(["half_even", "half_away", "half_up"]))
def test_fast_path_equals_slow_exact_path(c, n, bits, grid, dtype, kind, rounding, rng):
    """Every grid, bits 1..8 (where the grid allows), both dtypes, ties, zeros, constant and
    1-element channels, heavy tails: the MSE equals EmpiricalMSE's exact optimum to rounding, and
    the returned MSE (and its split) is that of the returned clip."""
    bits = max(bits, MIN_BITS[grid])
    w = _channels(kind, c, n, rng).astype(dtype)
    r = per_channel_optimal_clip(w, bits, axis=0, grid=grid, rounding=rounding)
    for i in range(c):
        if not _reachable(w[i], grid):
            assert r.alpha[i] == 0.0
            assert r.mse[i] == pytest.approx(float(np.mean(np.asarray(w[i], float) ** 2)), rel=1e-14)
            continue
        slow = EmpiricalMSE(w[i]).optimal_clip(bits, grid=grid, rounding=rounding)
        tiny = _tol(slow.mse, w[i])
        assert r.mse[i] >= 0 and r.clipping[i] >= 0 and r.rounding[i] >= 0
        assert r.mse[i] == pytest.approx(slow.mse, rel=1e-12, abs=tiny)
        em = empirical_mse(w[i], float(r.alpha[i]), bits, grid=grid, rounding=rounding)
        assert r.mse[i] == pytest.approx(em.mse, rel=1e-12, abs=tiny)
        assert r.clipping[i] == pytest.approx(em.clipping, rel=1e-12, abs=tiny)


@pytest.mark.parametrize("grid", SCALE_GRIDS)
def test_tiny_channels_against_brute_force(grid, rng):
    """Channels of 1..12 values (the adversarial case for a bound-based search: few samples, many
    levels), bits 1..8: the MSE is the minimum over every piece."""
    for bits in range(MIN_BITS[grid], 9):
        w = np.concatenate([rng.laplace(size=(3, 9)), rng.standard_cauchy(size=(2, 9)),
                            rng.integers(-3, 4, size=(2, 9)).astype(float)])
        w[4, :7] = 0.0  # (two nonzero values)
        for row in list(w) + [np.array([rng.uniform(0.1, 2.0)]), rng.normal(size=12)]:
            row = np.asarray(row)
            if not _reachable(row, grid):
                continue
            r = per_channel_optimal_clip(row[None, :], bits, axis=0, grid=grid)
            ref = _brute_min(row, bits, grid)
            tiny = _tol(ref, row)
            assert r.mse[0] <= ref * (1 + 1e-12) + tiny, (bits, row)
            assert r.mse[0] == pytest.approx(direct_mse(row, Quantizer(bits, float(r.alpha[0]), grid)), rel=1e-12,
                                             abs=tiny)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_long_channels_against_the_full_sweep(bits, rng):
    """4096-value float32 channels (an LLM projection's rows) at 2/4/8 bits: equal to rounding to
    the full breakpoint sweep over every crossing of (0, α_B] (EmpiricalMSE._sweep_global, up to
    10^6 crossings here), and equal to EmpiricalMSE.optimal_clip (its branch and bound over the
    bucket statistics: an independent proof; before it, its basin search missed the optimum by
    ~0.5% on some seeds)."""
    from qtheory.empirical import _denominator

    w = (rng.laplace(size=(2, 4096)) * rng.uniform(0.01, 0.1, size=(2, 1))).astype(np.float32)
    r = per_channel_optimal_clip(w, bits, axis=0, grid="narrow")
    d, off, qmin, qmax = _denominator("narrow", bits)
    for i in range(2):
        prep = EmpiricalMSE(w[i])
        alpha_b = prep._clip_bound("narrow", d, float(r.mse[i]) * w.shape[1])
        full = min(prep._sweep_global(d, off, qmin, qmax, 0, max(alpha_b, float(np.max(np.abs(w[i]))))))
        ref = full[0] / w.shape[1]
        tiny = _tol(ref, w[i])
        assert r.mse[i] == pytest.approx(ref, rel=1e-12, abs=tiny)
        slow = prep.optimal_clip(bits, grid="narrow")
        assert r.mse[i] == pytest.approx(slow.mse, rel=1e-12, abs=tiny)
        assert r.mse[i] == pytest.approx(direct_mse(w[i], Quantizer(bits, float(r.alpha[i]), "narrow")),
                                         rel=1e-12, abs=tiny)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(e=st.integers(-995, 995), bits=st.sampled_from([2, 4, 8]), grid=st.sampled_from(SCALE_GRIDS),
       n=st.integers(1, 100))
def test_per_channel_scale_equivariance(e, bits, grid, n, rng):
    """clip(2^e·W) = 2^e·clip(W) and MSE·4^e for every channel, 1e-300..1e300 (float64 channels are
    normalised by a power of two inside the kernel); beyond float64 the MSE is inf or 0, never NaN."""
    w = rng.laplace(size=(3, n))
    w[:, 0] = np.abs(w[:, 0]) + 0.1
    c = math.ldexp(1.0, e)
    r1 = per_channel_optimal_clip(w, bits, grid=grid)
    r2 = per_channel_optimal_clip(w * c, bits, grid=grid)
    np.testing.assert_allclose(r2.alpha, r1.alpha * c, rtol=1e-12)
    assert not np.any(np.isnan(r2.mse))
    with np.errstate(over="ignore", under="ignore"):
        expect = r1.mse * c * c
    ok = (expect > 1e-290) & (expect < 1e290)
    np.testing.assert_allclose(r2.mse[ok], expect[ok], rtol=1e-12)


def _f_exact(x, s, off, qmin, qmax):
    k = np.clip(np.rint(x[None, :] / s[:, None] - off), qmin, qmax)
    return np.sum(((k + off) * s[:, None] - x[None, :]) ** 2, axis=1)


@pytest.mark.parametrize("grid", SCALE_GRIDS)
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_interval_bound_is_below_the_error_on_the_interval(grid, bits, rng):
    """Fact 2: the interval bound over [s_a, s_b] is at most the exact error sum at every step of
    the interval (dense scans, intervals from 0.1% to 100% wide, bimodal and heavy-tailed data)."""
    from qtheory.empirical import _denominator
    from qtheory.kernels.empirical import _pc_lb_run

    if bits < MIN_BITS[grid]:
        pytest.skip("grid needs more bits")
    d, off, qmin, qmax = _denominator(grid, bits)
    c_lo = 0.5 if grid == "midrise" else 0.0
    c_p, c_n = qmax + off, -(qmin + off)
    for x in (rng.laplace(size=200), np.concatenate([rng.normal(-3, 0.2, 50), rng.normal(3, 0.2, 50), [0.0]]),
              rng.standard_t(2, size=150), rng.integers(-5, 6, size=60).astype(float)):
        x = np.sort(x)
        i0 = int(np.searchsorted(x, 0.0))
        top = float(np.max(np.abs(x)))
        for _ in range(12):
            sa = top / d * math.exp(rng.uniform(-2.5, 1.0))
            sb = sa * (1 + 10 ** rng.uniform(-3, 0))
            lb = (_pc_lb_run(x, 0, i0, -1.0, c_lo, c_n - c_lo, sa, sb, 1.0 / sb)
                  + _pc_lb_run(x, i0, x.size, 1.0, c_lo, c_p - c_lo, sa, sb, 1.0 / sb))
            f = _f_exact(x, np.linspace(sa, sb, 4001), off, qmin, qmax)
            assert lb <= f.min() * (1 + 1e-12) + 1e-300


@pytest.mark.parametrize("grid", SCALE_GRIDS)
def test_range_bounds_are_below_the_error(grid, rng):
    """Fact 3: CL(s) <= F(s') for every s' <= s, and DZ(s) <= F(s') for every s' >= s."""
    from qtheory.empirical import _denominator
    from qtheory.kernels.empirical import _pc_clip_part, _pc_dead_zone

    for bits in (MIN_BITS[grid], 4, 8):
        d, off, qmin, qmax = _denominator(grid, bits)
        c_p, c_n = qmax + off, -(qmin + off)
        x = np.sort(np.concatenate([rng.laplace(size=120), [0.0, 0.0]]))
        i0 = int(np.searchsorted(x, 0.0))
        p1 = np.concatenate([[0.0], np.cumsum(x)])
        p2 = np.concatenate([[0.0], np.cumsum(x * x)])
        top = float(np.max(np.abs(x)))
        steps = top / d * np.geomspace(1e-3, 1e3, 3001)
        f = _f_exact(x, steps, off, qmin, qmax)
        for j in range(0, steps.size, 97):
            cl, _ = _pc_clip_part(x, p1, p2, i0, steps[j], c_n, c_p)
            dz, _ = _pc_dead_zone(x, p1, p2, i0, steps[j], c_n, grid == "midrise")
            assert cl <= f[: j + 1].min() * (1 + 1e-12) + 1e-300
            assert dz <= f[j:].min() * (1 + 1e-12) + 1e-300


@pytest.mark.parametrize("kind", ["laplace", "integers", "quarters", "zeros", "bimodal"])
def test_pair_bound_is_below_the_error_at_every_larger_step(kind, rng):
    """Fact 4: PB(s) <= F(s') for every s' >= s on every uniform grid (the scale grids, and affine
    grids with zero points 0, mid and top), 2 to 8 bits, with ties, duplicates and clusters; and
    it is not vacuous: on evenly spread samples it holds at least half of its ideal s²/16 a sample."""
    from qtheory.empirical import _denominator
    from qtheory.kernels.empirical import pair_bound

    x = np.sort(_channels(kind, 1, 300, rng)[0])
    top = max(float(np.max(np.abs(x))), 1e-300)
    for bits in (2, 4, 8):
        grids = [_denominator(g, bits)[1:] for g in SCALE_GRIDS if bits >= MIN_BITS[g]]
        grids += [(-float(z), 0, 2**bits - 1) for z in (0, 2 ** (bits - 1), 2**bits - 1)]
        steps = top / 2 ** (bits - 1) * np.geomspace(1e-3, 1e2, 2001)
        for off, qmin, qmax in grids:
            f = _f_exact(x, steps, off, qmin, qmax)
            tail = np.minimum.accumulate(f[::-1])[::-1]  # min over the steps s' >= s
            for j in range(0, steps.size, 37):
                assert pair_bound(x, steps[j], 0, x.size) <= tail[j] * (1 + 1e-12) + 1e-300
    u = np.sort(rng.uniform(0.0, 1.0, 4000))
    for s in (1e-2, 3e-2, 0.1):  # (40 to 400 samples a block)
        assert pair_bound(u, s, 0, u.size) >= 0.5 * u.size * s * s / 16


@pytest.mark.parametrize("kind", ["laplace", "integers", "zeros", "bimodal"])
def test_bucket_pair_bound_is_below_the_error_and_near_the_sample_one(kind, rng):
    """The pair bound from bucket statistics (``pair_bound_buckets``: intervals of distances) is at
    most the exact error at every larger step on the scale and affine grids, and with fine buckets
    it keeps most of the sample-level bound."""
    from qtheory.empirical import _denominator
    from qtheory.kernels.empirical import pair_bound, pair_bound_buckets

    x = _channels(kind, 2, 200_000, rng)[1]  # (row 0 of "zeros" is all zero)
    e = EmpiricalMSE(x, buckets=2**16)
    xs = np.sort(x / e._unit)
    top = float(np.max(np.abs(xs)))
    for bits in (4, 8):
        grids = [_denominator(g, bits)[1:] for g in ("narrow", "midrise", "unsigned")]
        grids += [(-float(z), 0, 2**bits - 1) for z in (0, 2 ** (bits - 1))]
        steps = top / 2 ** (bits - 1) * np.geomspace(0.05, 20.0, 61)
        for off, qmin, qmax in grids:
            f = _f_exact(xs, steps, off, qmin, qmax)
            tail = np.minimum.accumulate(f[::-1])[::-1]
            for j in range(0, steps.size, 3):
                pb = pair_bound_buckets(e._cnt, e._bmin, e._bmax, steps[j])
                assert pb <= tail[j] * (1 + 1e-12) + 1e-300
    if kind == "laplace":  # (evenly spread at the scale of a step: most of the sample-level bound)
        for s in top / 127 * np.array([1.0, 2.0, 4.0]):
            assert pair_bound_buckets(e._cnt, e._bmin, e._bmax, s) >= 0.5 * pair_bound(xs, s, 0, xs.size)


@pytest.mark.parametrize("scale", [2.0**-1060, 2.0**-1030, 2.0**1000])
@pytest.mark.parametrize("grid", ["narrow", "midrise", "unsigned"])
def test_subnormal_and_huge_channels(scale, grid, rng):
    """Channels of subnormal or near-overflow float64 values (normalised with ldexp, where 2^-e itself
    overflows: this hung once) give EmpiricalMSE's clip; their MSEs are 0 or inf, never NaN (8 bits:
    with the pair bound)."""
    for bits, n in ((4, 50), (8, 300)):
        w = rng.laplace(size=(2, n)) * scale
        w[:, 0] = np.abs(w[:, 0]) + scale
        r = per_channel_optimal_clip(w, bits, grid=grid)
        for i in range(2):
            slow = EmpiricalMSE(w[i]).optimal_clip(bits, grid=grid)
            assert r.alpha[i] == pytest.approx(slow.alpha, rel=1e-12)
            assert not math.isnan(r.mse[i]) and r.mse[i] == slow.mse


@pytest.mark.parametrize("grid", ["narrow", "unsigned"])
def test_channels_past_the_long_limit_equal_the_kernel(grid, rng, monkeypatch):
    """Channels of 2^19+ values go through EmpiricalMSE.optimal_clip; they reach the optimum the
    per-channel kernel proves (a second, independent proof) and keep its rule for a channel no clip
    reaches (all zero; unsigned: no positive value) and its exact 0 for a constant channel."""
    import qtheory.empirical as E

    n = E._PC_LONG + 7
    w = np.stack([rng.laplace(size=n), np.zeros(n), -np.abs(rng.normal(size=n)),
                  np.r_[rng.normal(size=n // 2) - 2.0, rng.normal(size=n - n // 2) + 2.0], np.full(n, 0.7)
                  ]).astype(np.float32)
    got = per_channel_optimal_clip(w, 4, grid=grid)
    monkeypatch.setattr(E, "_PC_LONG", 1 << 62)  # every channel through the kernel
    ref = per_channel_optimal_clip(w, 4, grid=grid)
    np.testing.assert_allclose(got.mse, ref.mse, rtol=1e-12, atol=0.0)
    np.testing.assert_array_equal(got.alpha == 0.0, ref.alpha == 0.0)
    for i in np.flatnonzero(got.alpha > 0):  # the MSE reported is the error of the clip returned
        assert got.mse[i] == pytest.approx(float(empirical_mse(w[i], got.alpha[i], 4, grid=grid).mse), rel=1e-12)
