"""Plots of MSE against the clip for several bit-widths: one curve each, the α range chosen from the
optima, each optimum marked where :func:`qtheory.optimal_clip` puts it; the older calls (computed
curves given) draw what they drew before.
"""

from __future__ import annotations

import numpy as np
import pytest

import qtheory
from qtheory import Gaussian, Laplace, Rectified
from qtheory.plotting.aciq import plot_mse_vs_alpha
from qtheory.plotting.calibrate import plot_mse_curve


@pytest.fixture(autouse=True)
def _close():
    import matplotlib.pyplot as plt

    plt.close("all")
    yield
    plt.close("all")


def _optima(ax):
    return [(float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in ax.lines
            if line.get_gid() == "optimum"]


def _curves(ax):
    return [line for line in ax.lines if line.get_gid() != "optimum" and line.get_linestyle() == "-"]


@pytest.mark.parametrize("prior, grid", [("gaussian", "midrise"), (Laplace(0.3), "narrow"),
                                         (Rectified(Gaussian(2.0)), "unsigned")])
def test_one_curve_per_bit_width_and_each_optimum_at_optimal_clip(prior, grid):
    bits = [2, 3, 4]
    ax = plot_mse_curve(prior, bits=bits, grid=grid)
    curves = _curves(ax)
    assert len(curves) == len(bits)                       # one curve, no parts, for several bit-widths
    assert [c.get_label().split(" bits")[0] for c in curves] == ["2", "3", "4"]
    expected = [qtheory.optimal_clip(prior, b, grid=grid) for b in bits]
    assert _optima(ax) == [(o.alpha, o.mse) for o in expected]
    for c, o in zip(curves, expected, strict=True):
        x, y = np.asarray(c.get_xdata()), np.asarray(c.get_ydata())
        # the automatic range holds every optimum with room on both sides ...
        assert x[0] < 0.05 * o.alpha and x[-1] >= 1.99 * max(e.alpha for e in expected)
        # ... and the curve (clipping_mse on the grid) never dips below the global optimum
        assert y.min() >= o.mse * (1 - 1e-9)
        assert abs(x[np.argmin(y)] - o.alpha) <= 2 * (x[1] - x[0])
    assert ax.get_xlim()[0] == 0.0


def test_an_int_still_works_and_shows_the_parts():
    ax = plot_mse_curve("laplace", bits=4)
    labels = [line.get_label() for line in ax.lines if line.get_gid() != "optimum"]
    assert len(labels) == 3 and "clipping part" in labels[1] and "rounding part" in labels[2]
    o = qtheory.optimal_clip("laplace", 4)
    assert _optima(ax) == [(o.alpha, o.mse)]
    mse, clip, rnd = (np.asarray(line.get_ydata()) for line in ax.lines[:3])
    np.testing.assert_allclose(clip + rnd, mse, rtol=1e-12)   # the parts add up to the total
    assert any(t.get_text() == f"α*={o.alpha:.3g}" for t in ax.texts)


def test_samples_curves_meet_the_empirical_optimum(rng):
    x = rng.laplace(size=5000)
    ax = plot_mse_curve(x, bits=[3, 4])
    for (a, m), b in zip(_optima(ax), (3, 4), strict=True):
        o = qtheory.optimal_clip(x, b)
        assert (a, m) == (o.alpha, o.mse)
        # the exact empirical MSE at that clip, computed directly, is the marked value
        assert o.grid == qtheory.DEFAULT_TENSOR_GRID  # (samples: the plot follows optimal_clip's default)
        q = qtheory.Quantizer(b, a, o.grid)
        assert m == pytest.approx(np.mean((q.quantize(x) - x) ** 2), rel=1e-9)


def test_given_alphas_are_used_as_they_are():
    a = np.linspace(0.5, 6.0, 37)
    ax = plot_mse_curve("gaussian", bits=[2, 8], alphas=a)
    for c in _curves(ax):
        np.testing.assert_array_equal(c.get_xdata(), a)
    # 8 bits: α* ≈ 4.1 lies inside; the marker is the optimum even where the grid is coarse
    assert _optima(ax)[1][0] == qtheory.optimal_clip("gaussian", 8).alpha


def test_mse_vs_alpha_marks_each_method_and_bit_width():
    prior = Laplace(2.0)
    ax = plot_mse_vs_alpha(prior, bits=[2, 3, 4], methods=("exact", "aciq"))
    want = [(b, m) for b in (2, 3, 4) for m in ("exact", "aciq")]
    assert len(_optima(ax)) == len(want)
    for (a, mse), (b, m) in zip(_optima(ax), want, strict=True):
        o = qtheory.optimal_clip(prior, b, method=m)
        assert (a, mse) == (o.alpha, o.mse)
    # one colour per bit-width, one line style per method
    lines = [line for line in ax.lines if line.get_gid() != "optimum"]
    assert [line.get_linestyle() for line in lines] == ["-", "--"] * 3
    assert len({line.get_color() for line in lines}) == 3
    # ACIQ's clip is below the exact optimum at 2-4 bits for a Laplace prior on the midrise grid
    # (paper_repro/aciq/approx_vs_exact.csv: 2.83 vs 3.08, 3.90 vs 4.13, 5.03 vs 5.22 at b = 1)
    opt = _optima(ax)
    assert all(opt[2 * i + 1][0] < opt[2 * i][0] for i in range(3))


def test_older_calls_draw_the_given_curve():
    a = np.linspace(1.0, 4.0, 7)
    r = qtheory.clipping_mse("gaussian", a, 3)
    o = qtheory.optimal_clip("gaussian", 3)
    ax = plot_mse_curve(a, r, optimum=o, picks={"max": 3.5})
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), a)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), r.mse)
    star = ax.lines[3]
    assert star.get_marker() == "*" and (star.get_xdata()[0], star.get_ydata()[0]) == (o.alpha, o.mse)
    ax2 = plot_mse_vs_alpha(a, {"exact": r})
    np.testing.assert_array_equal(ax2.lines[0].get_ydata(), r.mse)
    ax3 = plot_mse_vs_alpha(alphas=a, curves={"exact": r})
    np.testing.assert_array_equal(ax3.lines[0].get_xdata(), a)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: plot_mse_curve("gaussian"), TypeError, "'bits' parameter of plot_mse_curve"),
    (lambda: plot_mse_curve("gaussian", bits=0), ValueError, "'bits' parameter of plot_mse_curve"),
    (lambda: plot_mse_curve("gaussian", bits=[]), ValueError, "'bits' parameter of plot_mse_curve"),
    (lambda: plot_mse_curve("gaussian", bits=1, grid="narrow"), ValueError, "'bits' parameter"),
    (lambda: plot_mse_curve("gaussian", bits=3, alphas=[1.0, -1.0]), ValueError, "'alphas' parameter"),
    (lambda: plot_mse_curve("gaussian", bits=3, method="montecarlo"), ValueError, "'methods' parameter"),
    (lambda: plot_mse_curve("gaussian", bits=3, optimum=qtheory.optimal_clip("gaussian", 3)), TypeError,
     "'optimum' parameter"),
    (lambda: plot_mse_curve(), TypeError, "needs a prior"),
    (lambda: plot_mse_curve(np.zeros(10), bits=3), ValueError, "'prior' parameter of plot_mse_curve"),
    (lambda: plot_mse_vs_alpha("gaussian", bits=3, grid="narrow"), ValueError, "'grid' parameter"),
    (lambda: plot_mse_vs_alpha("gaussian", bits=[2, 17]), ValueError, "'bits' parameter of plot_mse_vs_alpha"),
    (lambda: plot_mse_vs_alpha("gaussian", bits=3, methods=()), ValueError, "'methods' parameter"),
    (lambda: plot_mse_vs_alpha(np.ones(3), {"a": np.ones(3)}, alphas=np.ones(3)), TypeError, "not both"),
])
def test_bad_input_is_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_the_new_form_draws_into_the_given_ax():
    import matplotlib.pyplot as plt

    for draw in (plot_mse_curve, plot_mse_vs_alpha):
        plt.close("all")
        fig, ax = plt.subplots()
        assert draw("gaussian", bits=[2, 3], ax=ax) is ax
        assert plt.get_fignums() == [fig.number] and len(_optima(ax)) >= 2
