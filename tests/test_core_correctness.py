"""Regression tests for the numeric-core part of issue 10: hangs, the affine zero point, NaN input,
complex clips, misleading messages and the priors import circle. Each failed (or hung) on 0.1.0.

Reference values come from methods that share no code with the library: scipy.integrate.quad on
the density (with algebraic end-point weights where the density is singular), closed forms, and
high-resolution asymptotics with a stated error bound.
"""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

import qtheory
from qtheory import Quantizer, ScipyPrior, clipping_mse, optimal_clip
from qtheory.mse import quantizer_intervals

ROOT = Path(__file__).resolve().parents[1]


def _approx(x, rel):
    return pytest.approx(x, rel=rel, abs=0.0)


def _quad_mse(dist, q: Quantizer, singular_edges=False, breaks=()) -> float:
    """Σ_k ∫_k (x − y_k)² pdf(x) dx by scipy.integrate.quad, interval by interval (split at ``breaks``,
    the density's discontinuities)."""
    a, b, y, _ = quantizer_intervals(q)
    lo_s, hi_s = (float(v) for v in dist.support())
    total = 0.0
    for aa, bb, yy in zip(a, b, y, strict=True):
        lo, hi = max(aa, lo_s), min(bb, hi_s)
        if hi <= lo:
            continue
        if singular_edges and (lo == lo_s or hi == hi_s):
            # arcsine density 1/(π √((x−lo_s)(hi_s−x))): integrate the smooth factor against the
            # algebraic weight of the singular end(s)
            wa = -0.5 if lo == lo_s else 0.0
            wb = -0.5 if hi == hi_s else 0.0

            def g(x, yy=yy, wa=wa, wb=wb):
                rest = (1.0 if wa else (x - lo_s) ** -0.5) * (1.0 if wb else (hi_s - x) ** -0.5)
                return (x - yy) ** 2 * rest / math.pi

            v, _ = integrate.quad(g, lo, hi, weight="alg", wvar=(wa, wb), epsabs=0, epsrel=1e-12, limit=200)
        else:
            cuts = [lo, *sorted(t for t in breaks if lo < t < hi), hi]
            v = sum(integrate.quad(lambda x, yy=yy: (x - yy) ** 2 * dist.pdf(x), u, w, epsabs=0, epsrel=1e-12,
                                   limit=200)[0] for u, w in zip(cuts[:-1], cuts[1:], strict=True))
        total += v
    return total


def _is_local_min(prior, r, grid="midrise", rel=1e-4):
    f = lambda a: clipping_mse(prior, a, r.bits, grid=grid).mse  # noqa: E731
    return f(r.alpha) <= f(r.alpha * (1 - rel)) and f(r.alpha) <= f(r.alpha * (1 + rel))


# --------------------------------------------------------------------------- hangs (> 400 s on 0.1.0)
def test_logistic_far_from_zero_answers():
    """logistic(loc=1e6) at 8 bits hung. All the mass sits in one bin of width ~8e3, so the best a
    symmetric grid can do is put a level on the mean: MSE = Var = π²/3 (tails beyond ±4e3 carry
    e^-4000 of the mass)."""
    r = optimal_clip(stats.logistic(loc=1e6), 8, progress=False)
    assert r.mse == _approx(math.pi**2 / 3, 1e-12)
    q = Quantizer(8, r.alpha)
    assert np.min(np.abs(q.levels - 1e6)) < 1e-9 * 1e6


def test_arcsine_density_with_singular_edges_answers():
    """beta(.5, .5, loc=-.5) hung: its density is infinite at ±0.5. The MSE at the returned clip
    agrees with quad using the algebraic end-point weight, and the clip is a local minimum."""
    d = stats.beta(0.5, 0.5, loc=-0.5)
    r = optimal_clip(d, 4, progress=False)
    assert r.mse == _approx(_quad_mse(d, Quantizer(4, r.alpha), singular_edges=True), 1e-9)
    assert _is_local_min(ScipyPrior(d), r)


@pytest.mark.parametrize("c", [1e-150, 1e150])
def test_logistic_at_extreme_scales_answers(c):
    """logistic(scale=1e±150) hung. The clip is c times the unit one, whose MSE agrees with quad."""
    r1 = optimal_clip(stats.logistic(), 4, progress=False)
    rc = optimal_clip(stats.logistic(scale=c), 4, progress=False)
    assert rc.alpha == _approx(c * r1.alpha, 1e-10)
    assert r1.mse == _approx(_quad_mse(stats.logistic(), Quantizer(4, r1.alpha)), 1e-10)


def test_student_t_at_16_bits_answers():
    """t(5) at 16 bits took 120 s. Independent check: the high-resolution MSE, exact clipping (quad)
    plus Δ²/12 per unit of granular mass, whose relative error is ~Δ²·max|f''/f|/240 < 1e-7 here;
    and the clip is a local minimum of the exact MSE."""
    d = stats.t(5)
    r = optimal_clip(d, 16, progress=False)
    q = Quantizer(16, r.alpha)
    lo, hi = q.overload
    y0, y1 = q.levels[0], q.levels[-1]
    clip = (integrate.quad(lambda x: (x - y1) ** 2 * d.pdf(x), hi, np.inf, epsabs=0, epsrel=1e-12)[0]
            + integrate.quad(lambda x: (x - y0) ** 2 * d.pdf(x), -np.inf, lo, epsabs=0, epsrel=1e-12)[0])
    high_rate = clip + q.scale**2 / 12 * (d.cdf(hi) - d.cdf(lo))
    assert r.mse == _approx(high_rate, 1e-6)
    assert r.clipping == _approx(clip, 1e-9)
    assert _is_local_min(ScipyPrior(d), r, rel=1e-3)


def test_histogram_prior_is_exact_and_fast():
    """A frozen rv_histogram took 526 s. A histogram is piecewise uniform: the MSE of each bin is a
    sum of exact cubic pieces, so it equals quad to 1e-12, at 4 and 12 bits."""
    x = np.random.default_rng(1).normal(size=5000)
    d = stats.rv_histogram(np.histogram(x, bins=40), density=False).freeze()
    r = optimal_clip(d, 4, progress=False)
    assert r.mse == _approx(_quad_mse(d, Quantizer(4, r.alpha), breaks=d.dist._hbins), 1e-12)
    assert _is_local_min(ScipyPrior(d), r)
    # the unfrozen object is accepted too (it has no shape parameters)
    assert optimal_clip(d.dist, 4, progress=False).alpha == r.alpha
    r12 = optimal_clip(d, 12, progress=False)
    assert r12.mse > 0 and r12.mse < r.mse / 100


def test_asymmetric_affine_at_16_bits_answers():
    """optimal_clip("laplace", 16, grid="affine", range="asymmetric") hung (it scanned 8192 zero
    points). The answer beats (or equals) the symmetric-range search, which is inside its search
    space; for a symmetric prior the best range is symmetric to within one step; and no neighbour
    (z ± 1, s·(1 ± 1e-6)) is better."""
    r = optimal_clip("laplace", 16, grid="affine", range="asymmetric", progress=False)
    sym = optimal_clip("laplace", 16, grid="affine", progress=False)
    assert r.mse <= sym.mse * (1 + 1e-12)
    q = Quantizer(16, r.alpha, "affine", beta=r.beta)
    assert abs(r.alpha + r.beta) <= 1.01 * q.scale
    z, s = q.zero_point, q.scale
    top = 2**16 - 1
    for z2, s2 in ((z + 1, s), (z - 1, s), (z, s * (1 + 1e-6)), (z, s * (1 - 1e-6))):
        other = clipping_mse("laplace", (top - z2) * s2, 16, grid="affine", beta=-z2 * s2).mse
        assert r.mse <= other * (1 + 1e-12)


def test_quadrature_effort_is_capped_with_a_warning():
    """The adaptive rule stops after max_depth halvings and says so when the result may be off."""
    p = ScipyPrior(stats.beta(0.5, 0.5, loc=-0.5), max_depth=2)
    with pytest.warns(RuntimeWarning, match="quadrature effort capped"):
        p.interval_sq_error(-0.5, 0.5, 0.0)


# --------------------------------------------------------------------------- affine zero point
def test_affine_zero_point_of_a_symmetric_range_is_one_value():
    """{Quantizer(3, a, grid="affine").qmin for a in linspace(1, 2, 11)} was {-4, -3}: the tie
    (2^b − 1)/2 was decided by the rounding of −β/s. It is now computed exactly and rounded up."""
    assert {Quantizer(3, a, grid="affine").qmin for a in np.linspace(1, 2, 11)} == {-4}
    for bits in range(1, 17):
        qs = {Quantizer(bits, a, grid="affine").qmin for a in np.geomspace(1e-300, 1e300, 61)}
        assert qs == {-(2 ** (bits - 1))}


def test_affine_mse_is_continuous_in_alpha():
    """gamma(2, loc=-1): the MSE jumped 0.777 -> 0.493 between α = 2.0008 and 2.001."""
    d = stats.gamma(2, loc=-1)
    a = np.linspace(2.0008, 2.001, 9)
    v = clipping_mse(d, a, 3, grid="affine").mse
    assert np.max(np.abs(np.diff(v))) < 1e-3 * v[0]


def test_affine_optimum_does_not_depend_on_n_grid():
    d = stats.gamma(2, loc=-1)
    r = [optimal_clip(d, 3, grid="affine", n_grid=n, progress=False) for n in (48, 96, 150)]
    assert max(x.mse for x in r) == _approx(min(x.mse for x in r), 1e-9)
    assert max(x.alpha for x in r) == _approx(min(x.alpha for x in r), 1e-5)


# --------------------------------------------------------------------------- NaN / inf / complex
def test_quantize_passes_nan_and_saturates_inf():
    """Quantizer(4, 3.).quantize([nan]) returned -3.46e18."""
    q = Quantizer(4, 3.0)
    out = q.quantize([np.nan, np.inf, -np.inf, 0.1])
    assert np.isnan(out[0])
    assert out[1] == q.levels[-1] and out[2] == q.levels[0]
    assert out[3] == q.quantize([0.1])[0]


def test_to_codes_refuses_nan():
    with pytest.raises(ValueError, match=r"The 'x' parameter of Quantizer.to_codes .*NaN"):
        Quantizer(4, 3.0).to_codes([1.0, np.nan])
    assert Quantizer(4, 3.0).to_codes([np.inf]).tolist() == [7]


@pytest.mark.parametrize("call", [
    lambda: clipping_mse("laplace", np.array([1 + 1j, 2.0]), 4),
    lambda: clipping_mse("laplace", np.array([1 + 0j, 2.0]), 4),
    lambda: clipping_mse("laplace", np.array(1 + 1j), 4),
    lambda: clipping_mse("laplace", 1 + 1j, 4),
])
def test_complex_alpha_is_refused(call):
    """Complex alpha arrays silently dropped the imaginary part."""
    with pytest.raises(TypeError, match=r"The 'alpha' parameter of clipping_mse"):
        call()


def test_complex_beta_and_input_are_refused():
    with pytest.raises(TypeError, match=r"The 'beta' parameter of clipping_mse"):
        clipping_mse("laplace", [1.0, 2.0], 4, grid="affine", beta=np.array([-1 + 1j, -1.0]))
    with pytest.raises(TypeError, match=r"The 'x' parameter of Quantizer.quantize"):
        Quantizer(4, 1.0).quantize(np.array([1 + 1j]))


# --------------------------------------------------------------------------- messages
def test_a_bare_string_is_one_prior():
    """optimal_clip_table("laplace") said "Got 'l'"."""
    t = qtheory.optimal_clip_table("laplace", bits=4, methods="aciq")
    assert t["prior"].tolist() == ["laplace"]
    assert t["ratio"].iloc[0] == _approx(optimal_clip("laplace", 4, method="aciq").ratio, 1e-15)


@pytest.mark.parametrize("bad, exc", [("abc", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_a_bad_rng_is_named(bad, exc):
    """A bad rng showed numpy's SeedSequence text."""
    with pytest.raises(exc, match=r"The 'rng' parameter of clipping_mse must be None, an int >= 0"):
        clipping_mse("laplace", 1.0, 4, method="montecarlo", rng=bad)


def test_huge_data_is_not_blamed_on_sigma():
    """fit_prior on data near 1e300 said "'sigma' parameter of Gaussian": the standard deviation
    overflowed. It is computed at unit scale: the fit scales exactly with the data."""
    x = np.random.default_rng(0).normal(size=1000)
    small, big = qtheory.fit_prior(x, "auto", bits=4), qtheory.fit_prior(x * 2.0**996, "auto", bits=4)
    assert big.family == small.family
    assert big.sigma == math.ldexp(small.sigma, 996) and big.b == math.ldexp(small.b, 996)
    assert qtheory.fit_prior(x * 1e300, "gaussian").sigma == _approx(small.sigma * 1e300, 1e-14)


# --------------------------------------------------------------------------- import circle
def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions (relative ones resolved)."""
    tree = ast.parse(path.read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = "qtheory." * (node.level > 0) + (node.module or "")
            mods.add(base.rstrip("."))
            if node.module is None:
                mods.update(f"qtheory.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_priors_import_nothing_built_on_them():
    """priors.py imported mse/optimal (fit_prior) and empirical back: an import circle."""
    mods = _imported_modules(ROOT / "qtheory" / "priors.py")
    above = {"qtheory.mse", "qtheory.optimal", "qtheory.empirical", "qtheory.fit", "qtheory.montecarlo",
             "qtheory.calibrate"}
    assert not mods & above, mods & above


def test_fit_prior_is_still_public():
    from qtheory.fit import FitResult, fit_prior

    assert qtheory.fit_prior is fit_prior and qtheory.FitResult is FitResult
