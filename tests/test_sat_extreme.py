"""qtheory.sat on extreme input: the calibrated-PACT term at clips far from the prior's scale and
at any overall scale, SAT scaling of subnormal weights, and the validation of ``rng`` /
``n_samples``.

References are independent of the code under test: ``scipy.integrate.quad`` per half-bin in the
unit coordinate ``u = x/α`` (density ``α·f(αu)``, evaluated directly, nothing cancels), closed
forms, exact power-of-two scale equivariance, and Monte Carlo within ``k_family`` standard errors.
"""

import math

import numpy as np
import pytest
from _mc import k_family
from scipy import integrate, stats

from qtheory import Gaussian, Laplace, Mixture, Rectified, sat


def quad_term(bits, pdf, alpha):
    """``(E|e|, RMS, E e, P(0 < X < α))`` of ``e = q_k(X/α) − X/α`` given ``0 < X < α``, by
    quadrature over each half-bin ``[(j − ½)Δ, jΔ)``, ``[jΔ, (j + ½)Δ)`` of ``u = x/α``."""
    m = 2**bits - 1
    p_in = ab = mean = sq = 0.0
    for j in range(m + 1):
        for lo, hi in (((j - 0.5) / m, j / m), (j / m, (j + 0.5) / m)):
            lo, hi = max(lo, 0.0), min(hi, 1.0)
            if hi <= lo:
                continue

            def g(u, k, j=j):
                return (j / m - u) ** k * alpha * pdf(alpha * u)

            kw = dict(epsabs=0.0, epsrel=1e-13, limit=200)
            p_in += integrate.quad(g, lo, hi, args=(0,), **kw)[0]
            first = integrate.quad(g, lo, hi, args=(1,), **kw)[0]
            ab += abs(first)
            mean += first
            sq += integrate.quad(g, lo, hi, args=(2,), **kw)[0]
    return ab / p_in, math.sqrt(sq / p_in), mean / p_in, p_in


def fields(r):
    return (r.mean_abs, r.rms, r.mean, r.pact_grad, r.p_in_range)


MIX = Mixture([1.0, 3.0], [Gaussian(1.0), Laplace(0.01, loc=1e-3)])
PRIORS = {
    "N(0,1)": (Gaussian(1.0), stats.norm.pdf),
    "N(0.3,1)": (Gaussian(1.0, loc=0.3), stats.norm(loc=0.3).pdf),
    "Laplace(0.3,1)": (Laplace(1.0, loc=0.3), stats.laplace(loc=0.3).pdf),
    "ReLU(N(0,1))": (Rectified(Gaussian(1.0)), stats.norm.pdf),   # the same measure on 0 < x < α
    "mixture": (MIX, lambda x: 0.25 * stats.norm.pdf(x) + 0.75 * stats.laplace(loc=1e-3, scale=0.01).pdf(x)),
}


# ----------------------------------------------------------------------------- F1: α ≪ prior scale
@pytest.mark.parametrize("name", list(PRIORS))
@pytest.mark.parametrize("bits, alpha", [(3, 1e-4), (3, 1e-8), (2, 1e-10), (4, 1e-6)])
def test_pact_exact_small_clip_against_quadrature(name, bits, alpha):
    """F1: the moments were expanded as c²m0 − 2c·m1/α + m2/α², which cancels for α ≪ the prior's
    scale (rms 0.0 at α = 1e-8, 8e6 at 1e-10; 2 % off at 1e-4)."""
    prior, pdf = PRIORS[name]
    ref = quad_term(bits, pdf, alpha)
    r = sat.pact_error_term(bits, prior=prior, alpha=alpha)
    delta = 1.0 / (2**bits - 1)
    assert r.mean_abs == pytest.approx(ref[0], rel=1e-9)
    assert r.rms == pytest.approx(ref[1], rel=1e-9)
    assert abs(r.mean - ref[2]) <= 1e-12 * delta
    assert r.p_in_range == pytest.approx(ref[3], rel=1e-9)
    assert abs(r.mean) <= r.mean_abs <= r.rms <= delta / 2


# ----------------------------------------------------------------------------- N1: scale equivariance
@pytest.mark.parametrize("k", [-1070, -1000, -565, 600, 1000, 1021])
def test_pact_exact_is_exactly_scale_equivariant(k):
    """N1: N(0, 1e-170) with α = 3e-170 gave rms NaN (1e-162: 0.0). The term depends on X/α only:
    scaling prior and clip by 2^k (exact) must not change a bit of it."""
    c = 2.0**k
    unit = fields(sat.pact_error_term(3, prior=Gaussian(1.0, loc=0.5), alpha=3.0))
    assert fields(sat.pact_error_term(3, prior=Gaussian(c, loc=0.5 * c), alpha=3.0 * c)) == unit
    ref = quad_term(3, stats.norm(loc=0.5).pdf, 3.0)
    assert unit[0] == pytest.approx(ref[0], rel=1e-9)
    assert unit[1] == pytest.approx(ref[1], rel=1e-9)


def test_pact_exact_at_1e_minus_170_against_quadrature():
    r = sat.pact_error_term(3, prior=Gaussian(1e-170), alpha=3e-170)
    ref = quad_term(3, stats.norm.pdf, 3e-170 / 1e-170)
    for got, want in zip(fields(r)[:3], ref[:3], strict=True):
        assert got == pytest.approx(want, rel=1e-9)
    assert r.p_in_range == pytest.approx(ref[3], rel=1e-12)
    assert r.pact_grad == pytest.approx(stats.norm.sf(3e-170 / 1e-170), rel=1e-12)


def test_pact_exact_at_1e_minus_170_against_montecarlo(seed):
    """The exact term at 1e-170 against Monte Carlo at that scale (2^20 + 4097 draws: two chunks)."""
    prior, alpha = Gaussian(1e-170), 3e-170
    ex = sat.pact_error_term(3, prior=prior, alpha=alpha)
    mc = sat.pact_error_term(3, prior=prior, alpha=alpha, method="montecarlo", n_samples=2**20 + 4097, rng=seed)
    k = k_family(3)
    assert abs(mc.mean_abs - ex.mean_abs) < k * mc.stderr_mean_abs
    assert abs(mc.rms - ex.rms) < k * mc.stderr_rms
    assert abs(mc.mean - ex.mean) < k * mc.stderr_mean


# ----------------------------------------------------------------------------- R4: extreme clips
@pytest.mark.parametrize("bits", [3, 8])
def test_pact_exact_clip_1e_minus_300(bits):
    """R4: α = 1e-300 under N(0, 1) raised ZeroDivisionError; the density is flat over [0, α]."""
    r = sat.pact_error_term(bits, alpha=1e-300)
    ref = quad_term(bits, stats.norm.pdf, 1e-300)
    assert r.mean_abs == pytest.approx(ref[0], rel=1e-9)
    assert r.rms == pytest.approx(ref[1], rel=1e-9)
    assert abs(r.mean) <= 1e-12 / (2**bits - 1)
    assert r.p_in_range == pytest.approx(ref[3], rel=1e-9)
    assert r.pact_grad == 0.5


@pytest.mark.parametrize("alpha", [1e155, 1e200, 1e300, 2.0**1021, 1.7e308])
def test_pact_exact_clip_far_above_the_prior(alpha):
    """R4: α >= ~1e154 raised OverflowError (α**2). For α ≫ σ all the in-range mass is in the first
    half-bin, where e = −x/α: E|e| = E[X | X > 0]/α = √(2/π)/α, RMS = √E[X² | X > 0]/α = 1/α."""
    r = sat.pact_error_term(3, prior=Gaussian(1.0), alpha=alpha)
    assert r.mean_abs == pytest.approx(math.sqrt(2.0 / math.pi) / alpha, rel=1e-12)
    assert r.rms == pytest.approx(1.0 / alpha, rel=1e-12)
    assert r.mean == -r.mean_abs
    assert r.p_in_range == pytest.approx(0.5, rel=1e-15)
    assert r.pact_grad == 0.0


def test_pact_exact_no_in_range_mass_is_a_clean_error():
    """R4: N(−50, 1) with α = 1 (P(0 < X < 1) ~ 1e-545) raised ZeroDivisionError; Monte Carlo
    already refused it (too few in-range draws)."""
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of pact_error_term must be a clip with "
                                         r"P\(0 < X < alpha\) >= 2.2e-308"):
        sat.pact_error_term(3, prior=Gaussian(1.0, loc=-50.0), alpha=1.0)


# ----------------------------------------------------------------------------- samples
@pytest.mark.parametrize("scale", [2.0**-1000, 2.0**-565, 2.0**600])
def test_pact_exact_samples_against_direct_sum(scale):
    """Samples: the term summed over the samples themselves (round half to even, as
    ``torch.round``; ties have probability 0 here), at any power-of-two scale."""
    x = np.random.default_rng(7).normal(size=2000)
    alpha, bits = 2.0, 3
    m = 2**bits - 1
    u = x[(x > 0) & (x < alpha)] / alpha
    e = np.rint(u * m) / m - u
    r = sat.pact_error_term(bits, prior=x * scale, alpha=alpha * scale)
    assert r.mean_abs == pytest.approx(np.mean(np.abs(e)), rel=1e-12)
    assert r.rms == pytest.approx(math.sqrt(np.mean(e * e)), rel=1e-12)
    assert r.mean == pytest.approx(np.mean(e), rel=1e-10, abs=1e-16)
    assert r.p_in_range == u.size / x.size
    assert r.pact_grad == np.count_nonzero(x >= alpha) / x.size


# ----------------------------------------------------------------------------- R5: subnormal weights
@pytest.mark.parametrize("shift", [-1040, -1060])
def test_sat_weights_of_subnormal_weights(shift):
    """R5: weights ~2^-1040 raised OverflowError from math.ldexp; Q* does not depend on the units,
    so it equals (bit for bit) the result for the same stored values scaled up by 2^1100."""
    w = np.random.default_rng(0).normal(size=(4, 16))
    q = w * 2.0**shift                                   # subnormal: what is stored is what counts
    big = np.ldexp(q, 1100)                              # exact
    out = sat.sat_weights(q)
    np.testing.assert_array_equal(out, sat.sat_weights(big))
    assert float(np.var(out, ddof=1)) * 4 == pytest.approx(1.0, rel=1e-12)
    # the scale itself is 2^1100 times that of the scaled-up weights, beyond float64: inf, the
    # correctly rounded value (it raised OverflowError)
    s_big = sat.sat_scale(big)
    assert math.isfinite(s_big) and s_big >= 2.0 ** (1024 - 1100)
    assert sat.sat_scale(q) == math.inf


# ----------------------------------------------------------------------------- R11: rng, n_samples
@pytest.mark.parametrize("call", [
    lambda rng: sat.pact_error_term(3, method="montecarlo", n_samples=100, rng=rng),
    lambda rng: sat.pact_error_table((2,), n_samples=100, rng=rng),
    lambda rng: sat.clamped_variance(64, 0.1, method="montecarlo", n_draws=10, rng=rng),
    lambda rng: sat.quantized_variance(64, 0.1, 2, method="montecarlo", n_draws=10, rng=rng),
    lambda rng: sat.synthetic_network((8, 16), 4, batch=4, rng=rng),
])
@pytest.mark.parametrize("bad, exc", [("x", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_bad_rng_names_the_parameter(call, bad, exc):
    """R11: rng='x' reached numpy's SeedSequence (a raw TypeError)."""
    with pytest.raises(exc, match=r"The 'rng' parameter of \w+ must be None, an int >= 0 or a "):
        call(bad)


@pytest.mark.parametrize("func", [sat.pact_error_term, sat.pact_error_table])
def test_absurd_n_samples_is_refused(func):
    """R11: n_samples = 10**15 tried to allocate 8 PB (MemoryError)."""
    kwargs = {"bits": 3, "method": "montecarlo"} if func is sat.pact_error_term else {"bits": (3,)}
    with pytest.raises(ValueError, match=rf"The 'n_samples' parameter of {func.__name__} must be an int in the "
                                         r"range \[2, 1000000000\]\. Got 1000000000000000 instead\."):
        func(n_samples=10**15, rng=0, **kwargs)


def test_fan_out_refuses_bools_and_non_shapes():
    from qtheory.sat import fan_out

    assert fan_out((64, 32, 3, 3)) == 576
    with pytest.raises(ValueError, match="'shape' parameter of fan_out"):
        fan_out((True, 3))  # (was taken as 1)
    with pytest.raises(TypeError, match="'shape' parameter of fan_out"):
        fan_out(None)  # (was Python's "'NoneType' object is not iterable")
