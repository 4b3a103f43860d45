"""Prior constructors that a scipy habit cannot misread, and ``ppf`` for every prior kind.

References: ``scipy.stats`` (laplace, norm, t) for the closed forms and ScipyPrior; the defining
property of the generalised inverse, ``F(ppf(q)) >= q > F(x)`` for every ``x < ppf(q)``, for the
priors with atoms or steps; exact power-of-two scaling for scale equivariance.
"""

from __future__ import annotations

import dataclasses
import math
import pickle

import mpmath
import numpy as np
import pytest
from scipy import stats

from qtheory import Empirical, Gaussian, Laplace, Mixture, Rectified, ScipyPrior, as_prior

Q = np.array([1e-300, 1e-200, 1e-20, 1e-9, 1e-4, 0.01, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 0.99, 1 - 1e-9,
              1 - 2**-52])


# ------------------------------------------------------------------------------ keyword-only loc
@pytest.mark.parametrize("cls, scale", [(Gaussian, "sigma"), (Laplace, "b")])
def test_two_positionals_raise_and_name_loc(cls, scale):
    with pytest.raises(TypeError, match=rf"{cls.__name__}\({scale}, loc=\.\.\.\)") as e:
        cls(0.5, 2.0)
    assert "only positional argument" in str(e.value)
    with pytest.raises(TypeError, match="loc"):
        cls(0.5, 2.0, 3.0)


@pytest.mark.parametrize("cls, scale, dist", [(Gaussian, "sigma", stats.norm), (Laplace, "b", stats.laplace)])
def test_keyword_loc_keeps_the_old_meaning(cls, scale, dist):
    p = cls(0.5, loc=2.0)
    assert (getattr(p, scale), p.loc) == (0.5, 2.0)
    assert p == cls(**{scale: 0.5, "loc": 2.0}) == as_prior(dist(loc=2.0, scale=0.5))
    assert p.mean == 2.0 and p.scale == 0.5
    assert cls(2.0) == cls(**{scale: 2.0}) and cls(2.0).loc == 0.0
    # still a frozen, hashable, picklable dataclass with the loc field keyword-only
    assert pickle.loads(pickle.dumps(p)) == p and hash(p) == hash(cls(0.5, loc=2.0))
    assert dataclasses.replace(p, loc=-1.0) == cls(0.5, loc=-1.0)
    assert [f.kw_only for f in dataclasses.fields(cls)] == [False, True]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.loc = 1.0
    # the validation messages are unchanged
    with pytest.raises(ValueError, match=f"The '{scale}' parameter of {cls.__name__}"):
        cls(-1.0)
    with pytest.raises(ValueError, match=f"The 'loc' parameter of {cls.__name__}"):
        cls(1.0, loc=float("nan"))


# ------------------------------------------------------------------------------ ppf vs scipy
@pytest.mark.parametrize("prior, ref", [
    (Laplace(1.0), stats.laplace()),
    (Laplace(2.5, loc=-1.0), stats.laplace(loc=-1.0, scale=2.5)),
    (Gaussian(1.0), stats.norm()),
    (Gaussian(0.3, loc=4.0), stats.norm(loc=4.0, scale=0.3)),
    (ScipyPrior(stats.t(5, loc=0.5, scale=2.0)), stats.t(5, loc=0.5, scale=2.0)),
    (ScipyPrior(stats.logistic()), stats.logistic()),
])
def test_ppf_matches_scipy(prior, ref):
    got, want = prior.ppf(Q), ref.ppf(Q)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert prior.ppf(0.0) == -np.inf and prior.ppf(1.0) == np.inf
    assert np.isscalar(prior.ppf(0.3)) and prior.ppf(np.full((2, 3), 0.3)).shape == (2, 3)


def _kinds():
    return {
        "laplace": Laplace(1.3, loc=0.2),
        "gaussian": Gaussian(0.7, loc=-0.1),
        "t": ScipyPrior(stats.t(4)),
        "uniform": ScipyPrior(stats.uniform(-1.0, 2.0)),
        "relu-gauss": Rectified(Gaussian(1.0, loc=0.3)),
        "relu-laplace": Rectified(Laplace(2.0)),
        "mixture": Mixture([0.3, 0.7], [Gaussian(0.5, loc=-2.0), Laplace(1.0, loc=1.0)]),
        "mixture-far": Mixture([0.5, 0.5], [Gaussian(0.01, loc=-30.0), Gaussian(0.01, loc=30.0)]),
        "samples": Empirical([3.0, -1.0, 2.0, 2.0, 5.0, 0.5, -4.0]),
        "mixed-mixture": Mixture([0.5, 0.5], [Rectified(Gaussian()), Gaussian(1.0, loc=1.0)]),
    }


@pytest.mark.parametrize("kind", list(_kinds()))
def test_ppf_is_the_generalised_inverse_of_cdf(kind):
    p = _kinds()[kind]
    q = np.concatenate([Q, np.linspace(0.0, 1.0, 101)[1:-1]])
    x = p.ppf(q)
    F = p.cdf(x)
    below = p.cdf(np.nextafter(x, -np.inf))
    if p.kind == "continuous":  # (a probability far below one ulp of x cannot round-trip: absolute tolerance)
        np.testing.assert_allclose(F, q, rtol=1e-12, atol=1e-15)
    # F(ppf(q)) >= q > F(x) for x < ppf(q); exact for steps, to the cdf's rounding where it is continuous
    tol = 0.0 if p.kind == "samples" else 1e-12
    assert np.all(F >= q * (1 - tol) - tol * 1e-3) and np.all(below < q * (1 + tol) + tol * 1e-3)
    assert np.all(np.diff(x[np.argsort(q)]) >= 0)


def test_rectified_atom_and_ends():
    p = Rectified(Gaussian(1.0, loc=0.3))
    atom = stats.norm.cdf(-0.3)
    q = np.array([0.0, 1e-12, 0.5 * atom, atom, np.nextafter(atom, 1.0), 0.9, 1.0])
    x = p.ppf(q)
    assert np.all(x[:4] == 0.0)
    np.testing.assert_allclose(x[4:], stats.norm(0.3).ppf(q[4:]), rtol=1e-12)
    assert x[-1] == np.inf
    assert p.cdf(0.0) == pytest.approx(atom, rel=1e-15)


def test_samples_ppf_convention():
    # sorted samples -4, -1, 0.5, 2, 2, 3, 5 with F = k/7 at the k-th: ppf(q) is the k-th for (k-1)/7 < q <= k/7
    p = Empirical([3.0, -1.0, 2.0, 2.0, 5.0, 0.5, -4.0])
    srt = np.sort(p.x)
    k = np.arange(1, 8)
    assert p.ppf(k / 7).tolist() == srt.tolist()
    assert p.ppf(np.nextafter(k / 7, 1.0)[:-1]).tolist() == srt[1:].tolist()
    assert p.ppf(0.0) == -4.0 and p.ppf(1.0) == 5.0
    np.testing.assert_array_equal(p.cdf(p.ppf(k / 7)), [1 / 7, 2 / 7, 3 / 7, 5 / 7, 5 / 7, 6 / 7, 1.0])
    # the same convention as numpy's "inverted_cdf" quantile
    q = np.linspace(0.0, 1.0, 57)[1:]
    np.testing.assert_array_equal(p.ppf(q), np.quantile(p.x, q, method="inverted_cdf"))


def test_mixture_ends_and_scipy_reference():
    m = Mixture([0.25, 0.75], [ScipyPrior(stats.uniform(0.0, 1.0)), ScipyPrior(stats.uniform(2.0, 3.0))])
    assert m.ppf(0.0) == 0.0 and m.ppf(1.0) == 5.0
    # piecewise linear inverse: F = q/4... on [0, 1], flat on [1, 2], then 0.25 + 0.75 (x − 2)/3
    q = np.array([0.01, 0.1, 0.2, 0.25, 0.3, 0.6, 0.99])
    want = np.where(q <= 0.25, 4 * q, 2.0 + (q - 0.25) * 4.0)
    np.testing.assert_allclose(m.ppf(q), want, rtol=1e-12)
    g = Mixture([0.5, 0.5], [Gaussian(2.0), Gaussian(2.0)])
    np.testing.assert_allclose(g.ppf(Q), stats.norm(scale=2.0).ppf(Q), rtol=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.0000001, float("nan"), [0.5, float("nan")], float("inf"), [0.2, 2.0]])
@pytest.mark.parametrize("kind", ["laplace", "gaussian", "t", "relu-gauss", "mixture", "samples"])
def test_ppf_rejects_bad_q(kind, bad):
    p = _kinds()[kind]
    with pytest.raises(ValueError, match=rf"The 'q' parameter of {type(p).__name__}\.ppf must be .*\[0\.0, 1\.0\]"):
        p.ppf(bad)
    with pytest.raises(TypeError, match="'q'"):
        p.ppf("0.5")


def _scaled(kind: str, c: float):
    return {
        "laplace": Laplace(1.3 * c, loc=0.2 * c),
        "gaussian": Gaussian(0.7 * c, loc=-0.1 * c),
        "t": ScipyPrior(stats.t(4, loc=0.5 * c, scale=c)),
        "relu-gauss": Rectified(Gaussian(c, loc=0.3 * c)),
        "mixture": Mixture([0.3, 0.7], [Gaussian(0.5 * c, loc=-2.0 * c), Laplace(c, loc=c)]),
        "samples": Empirical(np.array([3.0, -1.0, 2.0, 2.0, 5.0, 0.5, -4.0]) * c),
    }[kind]


@pytest.mark.parametrize("e", [-996, -500, -1, 7, 500, 996])
@pytest.mark.parametrize("kind", ["laplace", "gaussian", "t", "relu-gauss", "mixture", "samples"])
def test_ppf_scale_equivariance_power_of_two_is_exact(kind, e):
    c = math.ldexp(1.0, e)  # 2^±996 ≈ 1.5e∓300: every step is exact, so the answers are bit for bit c·x
    q = np.concatenate([[0.0, 1.0], Q[2:]])
    ref = _scaled(kind, 1.0).ppf(q)
    np.testing.assert_array_equal(_scaled(kind, c).ppf(q), ref * c)


@pytest.mark.parametrize("c", [1e-300, 3e-7, 7.1e150, 1e300])
@pytest.mark.parametrize("kind", ["laplace", "gaussian", "t", "relu-gauss", "mixture", "samples"])
def test_ppf_scale_equivariance_any_factor(kind, c):
    q = Q[2:]
    np.testing.assert_allclose(_scaled(kind, c).ppf(q) / c, _scaled(kind, 1.0).ppf(q), rtol=1e-12, atol=0)


def test_other_priors_take_no_misreadable_positionals():
    # ScipyPrior and Empirical take one positional; Rectified one; Mixture's two cannot be swapped silently
    with pytest.raises(TypeError):
        ScipyPrior(stats.t(4), 1e-10)
    with pytest.raises(TypeError):
        Empirical([1.0, 2.0], "samples")
    with pytest.raises(TypeError):
        Rectified(Gaussian(), 0.5)
    with pytest.raises((TypeError, ValueError)):
        Mixture([Gaussian(), Laplace()], [0.5, 0.5])


# ----------------------------------------------------------------------------- an audit's findings
@pytest.mark.parametrize("k", [-700, -300, 300, 700])
def test_std_mean_var_at_extreme_scales(k):
    """std was sqrt(var): inf for Gaussian(1e200) (var overflows), 0 for 1e-200, NaN for a
    Rectified Laplace at 1e200; Rectified(Laplace(1.5e154)).var was inf for a true 1.69e308."""
    c = 2.0**k
    for p, p1 in [(Gaussian(c), Gaussian(1.0)), (Laplace(c), Laplace(1.0)), (Rectified(Laplace(c)), Rectified(Laplace(1.0))),
                  (Rectified(Gaussian(c)), Rectified(Gaussian(1.0))),
                  (Mixture([1, 3], [Gaussian(c), Laplace(c, loc=c)]), Mixture([1, 3], [Gaussian(1.0), Laplace(1.0, loc=1.0)])),
                  (ScipyPrior(stats.logistic(scale=c)), ScipyPrior(stats.logistic()))]:
        assert p.std == pytest.approx(np.ldexp(p1.std, k), rel=1e-14), p
        assert p.mean == pytest.approx(np.ldexp(p1.mean, k), rel=1e-14, abs=0), p
        with np.errstate(over="ignore", under="ignore"):
            assert p.var == pytest.approx(np.ldexp(p1.var, 2 * k), rel=1e-14), p
    r = Rectified(Laplace(1.5e154))
    assert r.var == pytest.approx((0.75 * 1.5e154) * 1.5e154, rel=1e-14) and np.isfinite(r.var)


def test_moments_far_out_are_inf_not_nan():
    """Interval errors and moments whose true value overflows are inf (inf − inf was NaN); the
    same intervals at a representable scale agree with the unit ones exactly (powers of two)."""
    assert Laplace(1e300).interval_sq_error(0.0, 1e300, 0.0) == np.inf
    assert Gaussian(1e300).interval_sq_error(0.0, 1e300, 0.0) == np.inf
    assert Laplace(1e308, loc=1e308).partial_moments(-np.inf, np.inf)[2] == np.inf
    for p, p1, c in [(Laplace(2.0**300), Laplace(1.0), 2.0**300), (Gaussian(2.0**-400, loc=2.0**-401), Gaussian(1.0, loc=0.5),
                                                                      2.0**-400)]:
        a, b, y = np.array([-np.inf, -1.0, 0.25]), np.array([-1.0, 0.25, np.inf]), np.array([-1.5, 0.0, 1.0])
        assert np.array_equal(p.interval_sq_error(a * c, b * c, y * c) / c**2 if c > 1 else
                              np.ldexp(p.interval_sq_error(a * c, b * c, y * c), 800), p1.interval_sq_error(a, b, y))
        m = p.partial_moments(a * c, b * c)
        m1 = p1.partial_moments(a, b)
        assert np.array_equal(m[0], m1[0]) and np.allclose(m[1] / c, m1[1], rtol=1e-15, atol=0)


def test_mixture_weights_and_components_are_checked():
    assert Mixture([1e308, 1e308], ["laplace", "gaussian"]).weights.tolist() == [0.5, 0.5]  # (the sum overflowed)
    with pytest.raises(TypeError, match="'components' parameter of Mixture"):
        Mixture([1], "gaussian")  # (was read as the characters 'g', 'a', ...)
    with pytest.raises(TypeError, match="component 1 .*Empirical.* has no density"):
        Mixture([1, 1], ["gaussian", [0.0, 1.0]]).pdf(0.5)
    r = Rectified(Gaussian(2.0))
    np.testing.assert_array_equal(r.sf([-1.0, 0.0, 3.0]), [1.0, 0.5, stats.norm(scale=2.0).sf(3.0)])


@pytest.mark.parametrize("call,param,exc", [
    (lambda: Laplace().partial_moments("a", 1.0), "a", TypeError),
    (lambda: Laplace().partial_moments(2.0, 1.0), "b", ValueError),
    (lambda: Laplace().partial_moments(np.nan, 1.0), "a", ValueError),
    (lambda: Gaussian().partial_moments(0.0, [1.0, np.nan]), "b", ValueError),
    (lambda: Gaussian().rvs(-1), "size", ValueError),
    (lambda: Gaussian().rvs((2, 1.5)), "size", TypeError),
    (lambda: Gaussian().rvs(2**40), "size", ValueError),
    (lambda: Laplace().rvs(3, "a"), "rng", TypeError),
    (lambda: Rectified(Gaussian()).rvs(3, -1), "rng", ValueError),
])
def test_moment_and_draw_arguments_name_the_parameter(call, param, exc):
    with pytest.raises(exc, match=rf"The '{param}' parameter of [\w.]+ must be .+\. Got .+ instead\."):
        call()


def test_draws_are_unchanged_by_the_argument_checks():
    for p in (Gaussian(2.0), Laplace(0.5, loc=1.0), Rectified(Gaussian()), Mixture([1, 2], ["gaussian", "laplace"])):
        a = p.rvs((3, 4), np.random.default_rng(7))
        b = p.rvs((3, 4), 7)
        assert a.shape == (3, 4) and np.array_equal(a, b)
    np.testing.assert_array_equal(Gaussian(2.0).rvs(5, 3), 2.0 * np.random.default_rng(3).normal(size=5))


def test_moments_of_narrow_intervals_against_mpmath():
    """The closed-form moments are differences of CDFs and antiderivatives, which cancel on narrow
    intervals: at a relative width of 1e-10 the Gaussian m0 was off by 8e-7 and m2 by 1e-5; at
    N(0, 1e160) on [0, 1), m0 was 0 (not 4e-161) and m2 -inf. Narrow intervals are now integrated
    by Gauss-Legendre on the density (split at the Laplace kink); mpmath at 40 digits decides."""
    mpmath.mp.dps = 40
    cases = [(Gaussian(1.0), lambda x: mpmath.npdf(x), 0.0),
             (Laplace(1.0, loc=0.3), lambda x: mpmath.exp(-abs(x - mpmath.mpf("0.3"))) / 2, 0.3)]
    a = np.array([0.25, 0.2999, 0.0, -3.0])
    b = np.array([0.25 + 1e-10, 0.3001, 0.04, 2.0])
    for p, pdf, kink in cases:
        m = p.partial_moments(a, b)
        for i in range(a.size):
            pts = [mpmath.mpf(a[i])] + ([mpmath.mpf(kink)] if a[i] < kink < b[i] else []) + [mpmath.mpf(b[i])]
            for j in range(3):
                ref = float(mpmath.quad(lambda x, j=j, pdf=pdf: x**j * pdf(x), pts))
                assert m[j][i] == pytest.approx(ref, rel=1e-13), (p, i, j)
    for p, c in [(Gaussian(1e160), 1 / np.sqrt(2 * np.pi)), (Laplace(1e160), 0.5)]:
        m0, m1, m2 = p.partial_moments(0.0, 1.0)
        assert (m0, m1, m2) == (pytest.approx(c * 1e-160, rel=1e-14), pytest.approx(c * 1e-160 / 2, rel=1e-14),
                                pytest.approx(c * 1e-160 / 3, rel=1e-14))


@pytest.mark.parametrize("cls", [Gaussian, Laplace])
def test_error_integrals_of_a_level_far_beyond_the_prior(cls):
    """A level so far from a tiny prior that ``(y − loc)/scale`` overflows (1e10 against 1e-300):
    the squared-error integral was NaN or inf and the mean error ±inf. They are
    ``P(a <= X < b)·(y − loc)²`` and ``P·(loc − y)`` to rounding (the prior is a point there);
    the probabilities are the prior's own halves and wholes, known exactly."""
    p = cls(1e-300)
    y = 1e10
    assert p.interval_sq_error(-np.inf, np.inf, y) == pytest.approx(y * y, rel=1e-15)
    assert p.interval_mean_error(-np.inf, np.inf, y) == pytest.approx(-y, rel=1e-15)
    assert p.interval_sq_error(-np.inf, 0.0, y) == pytest.approx(0.5 * y * y, rel=1e-15)
    assert p.interval_mean_error(0.0, 2.0, -y) == pytest.approx(0.5 * y, rel=1e-15)
    assert p.interval_sq_error(1.0, 2.0, y) == 0.0  # (no mass there)
    # a level beyond the float64 range of its square: inf, not NaN
    assert p.interval_sq_error(-np.inf, np.inf, 1e200) == np.inf


@pytest.mark.parametrize("cls, pdf", [(Gaussian, lambda x, s: mpmath.npdf(x, 0, s)),
                                      (Laplace, lambda x, s: mpmath.exp(-abs(x) / s) / (2 * s))])
def test_mean_error_of_an_interval_far_narrower_than_the_prior_against_mpmath(cls, pdf):
    """``∫_0^1 (x − y) f`` under a prior of scale 5e300 is about 4e-302 (a representable number);
    the standard-unit integral, (1/σ)² ~ 1e-602, underflowed to 0 before it was scaled by σ."""
    mpmath.mp.dps = 40
    s = mpmath.mpf(5) * mpmath.mpf(10) ** 300
    p = cls(5e300)
    for a, b, y in [(0.0, 1.0, 0.0), (0.0, 1.0, 0.25), (-3.0, 2.0, 1.0)]:
        ref = mpmath.quad(lambda x, y=y: (x - y) * pdf(x, s), [a, 0, b] if a < 0 < b else [a, b])
        assert float(p.interval_mean_error(a, b, y)) == pytest.approx(float(ref), rel=1e-13, abs=0.0), (cls, a, b, y)


@pytest.mark.parametrize("cls", [Gaussian, Laplace])
def test_bin_errors_of_quantizer_widths_against_mpmath(cls):
    """Bins 0.04-0.15 standard deviations wide (6 to 8 bits) anywhere in |z| <= 8, levels inside
    and outside: the closed forms' antiderivative differences cancelled (2.4e-9 relative at a width
    of 0.06), and the 4-node rule that replaced them below 0.05 erred by 7e-10 in the Gaussian's
    tails. Reference: mpmath at 40 digits (split at the Laplace kink)."""
    mpmath.mp.dps = 40
    p = cls(1.0)
    pdf = (lambda x: mpmath.npdf(x)) if cls is Gaussian else (lambda x: mpmath.exp(-abs(x)) / 2)
    worst = 0.0
    for za in (-8.0, -5.3, -3.0, -1.1, -0.07, 0.4, 2.2, 3.6, 6.1, 7.9):
        for h in (0.04, 0.06, 0.15):
            zb = za + h
            pts = [za, 0.0, zb] if za < 0.0 < zb else [za, zb]
            for y in (za + 0.4 * h, zb + 0.3):
                sq = mpmath.quad(lambda x, y=y: (x - y) ** 2 * pdf(x), pts)
                me = mpmath.quad(lambda x, y=y: (x - y) * pdf(x), pts)
                ab = mpmath.quad(lambda x, y=y: abs(x - y) * pdf(x), sorted(set(pts + ([y] if za < y < zb else []))))
                worst = max(worst, abs(float(p.interval_sq_error(za, zb, y)) - float(sq)) / float(sq),
                            abs(float(p.interval_mean_error(za, zb, y)) - float(me)) / float(ab))
    assert worst < 1e-12


def test_gaussian_tail_bins_against_high_precision_closed_forms():
    """Wide bins beyond 3σ (and tails to ±inf), levels near and inside them: the closed forms'
    ``(1 + w²)·P`` and ``(z − 2w)·φ(z)`` terms cancel like z⁴ (1.2e-11 relative at 5σ, 9e-11 at
    8σ, 6.5e-10 at -12σ). Reference: the same closed forms in mpmath at 60 digits, where the
    cancellation costs nothing; mean errors relative to ``∫|z − w|φ``."""
    mpmath.mp.dps = 60
    p = Gaussian(1.0)

    def part(a, b, w, j):  # ∫_a^b (z − w)^j φ in mpmath (a < b, b may be inf)
        def tail(x):
            if x == mpmath.inf:
                return mpmath.mpf(0)
            q, f = mpmath.ncdf(-x), mpmath.npdf(x)
            return f - w * q if j == 1 else (1 + w * w) * q + (x - 2 * w) * f
        return tail(a) - tail(b)

    worst = 0.0
    for za in (3.0, 5.0, 8.0, 12.0, -5.0, -8.0, -12.0):
        for h in (0.25, 0.7, np.inf):
            if za < 0 and h == np.inf:
                continue
            zb = za + h
            a, b = mpmath.mpf(za), (mpmath.mpf(zb) if h != np.inf else mpmath.inf)
            for d in (-0.5, 0.0, 0.01, 0.125, 0.5):
                y = mpmath.mpf(za + d)
                sq, me = part(a, b, y, 2), part(a, b, y, 1)
                ab = abs(me) if not a < y < b else part(y, b, y, 1) - part(a, y, y, 1)
                worst = max(worst, abs(float(p.interval_sq_error(za, zb, za + d)) / float(sq) - 1.0),
                            abs(float(p.interval_mean_error(za, zb, za + d)) - float(me)) / float(ab))
    assert worst < 1e-13
