"""The sympy derivation reproduces ACIQ's closed forms exactly and agrees with the numeric code."""

import mpmath
import numpy as np
import pytest
import sympy as sp

import qtheory
from qtheory import reference as ref
from qtheory.mse import aciq_terms
from qtheory.symbolic import aciq

S = aciq.symbols()


@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_derived_terms_equal_paper_forms(prior):
    d, paper = aciq.derive(prior), aciq.paper_forms(prior)

    def zero(e):
        return sp.simplify(sp.expand(e.rewrite(sp.erf))) == 0

    assert zero(d.clipping - paper["clipping"])
    assert zero(d.noise - paper["noise"])
    # a changed sign or factor would not simplify to zero
    assert not zero(d.clipping - 2 * paper["clipping"])
    assert sp.simplify(d.noise - paper["noise"] / 2) != 0


def test_laplace_stationarity_is_the_papers_condition():
    d, paper = aciq.derive("laplace"), aciq.paper_forms("laplace")
    assert sp.simplify(d.stationarity.lhs - paper["condition"].lhs) == 0
    assert sp.simplify(d.stationarity.rhs - paper["condition"].rhs) == 0


@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_derivative_is_zero_at_numeric_optimum(prior):
    d = aciq.derive(prior)
    scale = S["b"] if prior == "laplace" else S["sigma"]
    f = sp.lambdify((S["alpha"], scale, S["M"]), d.derivative, "mpmath")
    for m in (0, 2, 4, 8):
        a = qtheory.optimal_clip(prior, m, method="aciq").alpha
        # |dE/dα| at the optimum relative to the size of its two opposing slopes
        slope = 2 * a / (3 * 4**m)
        with mpmath.workdps(50):  # the derived form has 1 - erf(.): evaluate without cancellation
            assert abs(float(f(mpmath.mpf(a), 1, m))) < 1e-12 * slope


@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_lambdified_terms_equal_numeric_closed_forms(prior):
    d = aciq.derive(prior)
    scale = S["b"] if prior == "laplace" else S["sigma"]
    f = sp.lambdify((S["alpha"], scale, S["M"]), (d.clipping, d.noise), "mpmath")
    p = qtheory.Laplace(1.7) if prior == "laplace" else qtheory.Gaussian(1.7)
    for a in np.linspace(0.1, 12, 25):
        for m in (0, 1, 3, 8):
            with mpmath.workdps(50):
                clip, noise = (float(v) for v in f(mpmath.mpf(a), mpmath.mpf("1.7"), m))
            c2, n2 = aciq_terms(p, a, m)
            assert clip == pytest.approx(float(c2), rel=1e-12, abs=1e-300)
            assert noise == pytest.approx(float(n2), rel=1e-14)


@pytest.mark.parametrize("prior, table", [("laplace", ref.ACIQ_ALPHA_LAPLACE), ("gaussian", ref.ACIQ_ALPHA_GAUSSIAN)])
def test_high_precision_optimum_matches_table_and_numeric(prior, table):
    for m in range(9):
        hp = float(aciq.optimal_alpha(prior, m))
        assert hp == pytest.approx(table[m], abs=5e-6)
        assert qtheory.optimal_clip(prior, m, method="aciq").ratio == pytest.approx(hp, rel=1e-12)


@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_symbolic_bin_error_equals_numeric(prior):
    d = aciq.derive(prior)
    a_, b_, y = sp.symbols("a b_ y", real=True)
    scale = S["b"] if prior == "laplace" else S["sigma"]
    f = sp.lambdify((a_, b_, y, scale), d.bin_error, "mpmath")
    p = qtheory.Laplace(1.3) if prior == "laplace" else qtheory.Gaussian(1.3)
    # (the symbolic form cancels like the closed forms: evaluated at 50 digits it is exact, and the
    # numeric bin errors must match it to rounding; at mpmath's default 15 digits they differed by
    # 5e-11 on [3, 3.1], which only pytest's default abs=1e-12 let pass)
    with mpmath.workdps(50):
        for lo, hi, yy in ((0.1, 0.4, 0.25), (1.0, 2.5, 2.0), (3.0, 3.1, 3.05), (5.0, 6.5, 5.6)):
            ref = float(f(*(mpmath.mpf(v) for v in (lo, hi, yy, 1.3))))
            assert float(p.interval_sq_error(lo, hi, yy)) == pytest.approx(ref, rel=1e-13, abs=0.0)


def test_latex_rendering():
    tex = aciq.derive("gaussian")._repr_latex_()
    assert tex.startswith("$\\begin{aligned}") and "erf" in tex
