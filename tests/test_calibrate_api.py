"""Issue 15, consistent API: calibrator names, the CalibrationResult, calibrator_table on the user's
own arrays (no resampling, per-channel with ``axis``), and one default grid for every tensor API."""

import inspect
import math

import numpy as np
import pytest

import qtheory
from qtheory import DEFAULT_TENSOR_GRID, Laplace, Quantizer
from qtheory.calibrate import (
    CALIBRATORS,
    CalibrationResult,
    aciq_clip,
    calibrate,
    calibrator_table,
    entropy_clip,
    exact_clip,
    mse_sweep_clip,
)
from qtheory.empirical import empirical_mse, empirical_optimal_clip


def _direct_mse(x, alpha, bits, grid):
    x = np.ravel(x)
    return float(np.mean((Quantizer(bits, alpha, grid).quantize(x) - x) ** 2))


def test_names_match_the_field():
    assert CALIBRATORS == ("max", "percentile", "entropy", "mse", "octav", "aciq", "exact")
    assert DEFAULT_TENSOR_GRID == qtheory.quantizer.DEFAULT_TENSOR_GRID == "narrow"
    # the narrow grid is ONNX Runtime's symmetric int8 range [-127, 127]
    q = Quantizer(8, 1.0, DEFAULT_TENSOR_GRID)
    assert (q.qmin, q.qmax) == (-127, 127)


@pytest.mark.parametrize("method", CALIBRATORS)
def test_calibration_result(method, rng):
    x = rng.laplace(size=(40, 100)) * 3.0
    r = calibrate(x, 4, method)
    assert isinstance(r, CalibrationResult)
    assert (r.method, r.bits, r.grid) == (method, 4, "narrow")
    assert float(r) == r.alpha > 0
    # the MSE is the exact empirical MSE of that clip on the given tensor: equal to empirical_mse's
    # number, and to a direct quantize-and-average to float64 rounding
    assert r.mse == empirical_mse(x, r.alpha, 4, grid="narrow").mse
    assert r.mse == pytest.approx(_direct_mse(x, r.alpha, 4, "narrow"), rel=1e-12)
    assert r.sqnr_db == pytest.approx(10 * math.log10(np.mean(x * x) / r.mse), rel=1e-12)
    assert r.quantizer == Quantizer(4, r.alpha, "narrow")
    np.testing.assert_array_equal(r.quantize(x), r.quantizer.quantize(x))
    assert list(r.to_frame().columns) == ["alpha", "mse", "method", "bits", "grid", "signal_power"]
    assert r.to_dict()["options"] == r.options
    assert "CalibrationResult" in r._repr_html_()
    # the exact optimum is never beaten
    assert r.mse >= calibrate(x, 4, "exact").mse * (1 - 1e-12)


def test_exact_is_the_empirical_optimum(rng):
    x = rng.normal(size=5000)
    r = calibrate(x, 3, "exact", grid="int")
    ref = empirical_optimal_clip(x, 3, grid="int")
    assert (r.alpha, r.mse) == (ref.alpha, ref.mse)
    assert r.alpha == exact_clip(x, 3, grid="int")


def test_result_scale_invariance_of_sqnr(rng):
    x = rng.laplace(size=3000)
    one = calibrate(x, 8, "octav")
    for c in (1e-300, 1e300):
        big = calibrate(x * c, 8, "octav")
        assert big.alpha == pytest.approx(c * one.alpha, rel=1e-9)
        assert big.sqnr_db == pytest.approx(one.sqnr_db, rel=1e-9)


@pytest.mark.parametrize("old, new, kw", [
    ("qtheory", "exact", {}),
    ("mse_sweep", "mse", {}),
    ("aciq_laplace", "aciq", {"family": "laplace"}),
    ("aciq_gaussian", "aciq", {"family": "gaussian"}),
    ("aciq_auto", "aciq", {"family": "auto"}),
])
def test_old_names_warn_and_give_the_new_calibrator(old, new, kw, rng):
    x = rng.standard_t(6, size=4000)
    with pytest.warns(FutureWarning, match=f"'{old}' is now method='{new}'"):
        r = calibrate(x, 4, old)
    assert r == calibrate(x, 4, new, **kw)
    assert r.options == kw
    with pytest.warns(FutureWarning, match=f"'{old}'"):
        t = calibrator_table({"x": x}, bits=[4], methods=[old])
    assert t.calibrator.iloc[0] == new + ("" if not kw else f"(family={kw['family']})")


def test_kl_is_an_alias_of_entropy(rng):
    x = rng.normal(size=4000)
    r = calibrate(x, 6, "kl")  # (no warning: warnings are errors in this suite)
    assert r == calibrate(x, 6, "entropy")
    assert r.alpha == entropy_clip(x, 6)
    assert r.method == "entropy"


def test_aciq_families(rng):
    x = rng.laplace(size=6000)
    lap = calibrate(x, 4, "aciq", grid="int")
    assert lap.alpha == aciq_clip(x, 4, family="laplace", grid="int")
    gau = calibrate(x, 4, "aciq", family="gaussian", grid="int")
    assert gau.alpha == aciq_clip(x, 4, family="gaussian", grid="int")
    auto = calibrate(x, 4, "aciq", family="auto", grid="int")
    assert auto.mse == min(lap.mse, gau.mse)
    assert calibrate(x, 4, "mse").alpha == mse_sweep_clip(x, 4)


def test_table_uses_the_arrays_as_they_are(rng):
    """No resampling: every row's MSE is empirical_mse on exactly the given array (whatever rng)."""
    x = rng.laplace(size=3001) * 0.1
    y = np.maximum(rng.normal(size=(20, 50)), 0.0)
    t = calibrator_table({"x": x, "relu": (y, "unsigned")}, bits=[3, 6], rng=12345)
    assert set(t.calibrator) == set(CALIBRATORS)
    assert "channel" not in t.columns
    for row in t.itertuples():
        arr = x if row.distribution == "x" else y
        assert row.grid == ("narrow" if row.distribution == "x" else "unsigned")
        assert row.mse == empirical_mse(arr, row.alpha, row.bits, grid=row.grid).mse
        r = calibrate(arr, row.bits, row.calibrator, grid=row.grid)
        assert (row.alpha, row.mse) == (r.alpha, r.mse)
        assert row.ratio == pytest.approx(row.alpha / np.std(arr), rel=1e-9)
    opt = t[t.calibrator == "exact"]
    assert (opt.rel_mse == 1).all() and (t.rel_mse >= 1 - 1e-12).all()
    # a different rng changes nothing for arrays
    t2 = calibrator_table({"x": x, "relu": (y, "unsigned")}, bits=[3, 6], rng=1)
    assert t.equals(t2)
    # a bare array is one tensor labelled "x"
    t3 = calibrator_table(x, bits=3, methods="max")
    assert list(t3.distribution) == ["x"] and t3.alpha.iloc[0] == np.max(np.abs(x))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_table_per_channel_equals_calibrate_on_each_slice(axis, rng):
    w = rng.laplace(size=(4, 6, 30)) * np.array([1.0, 2.0, 0.5, 8.0])[:, None, None]
    t = calibrator_table({"w": w}, bits=[4], methods=["max", "percentile", "octav", ("aciq", {"family": "auto"})],
                         axis=axis)
    n = w.shape[axis]
    assert sorted(set(t.channel)) == list(range(n))
    assert len(t) == n * 4
    assert set(t.calibrator) == {"max", "percentile", "octav", "aciq(family=auto)"}
    for row in t.itertuples():
        sl = np.take(w, row.channel, axis=axis)
        kw = {"family": "auto"} if row.calibrator.startswith("aciq") else {}
        r = calibrate(sl, 4, row.calibrator.split("(")[0], **kw)
        assert (row.alpha, row.mse) == (r.alpha, r.mse)
        assert row.mse == empirical_mse(sl, row.alpha, 4, grid="narrow").mse
        assert row.rel_mse == pytest.approx(row.mse / empirical_optimal_clip(sl, 4, grid="narrow").mse, rel=1e-12)


def test_table_samples_priors_explicitly(rng):
    """Priors are drawn once with rng: the same draws as prior.rvs(n_samples, default_rng(rng))."""
    t = calibrator_table({"l": Laplace(1.0)}, bits=[4], methods=["max"], n_samples=1 << 12, rng=7)
    x = Laplace(1.0).rvs(1 << 12, np.random.default_rng(7))
    assert t.alpha.iloc[0] == np.max(np.abs(x))
    assert t.mse.iloc[0] == empirical_mse(x, np.max(np.abs(x)), 4, grid="narrow").mse


@pytest.mark.parametrize("call, name", [
    (lambda: calibrator_table({"w": np.ones((2, 3))}, axis=2), "axis"),
    (lambda: calibrator_table({"w": np.zeros(5)}), "data"),
    (lambda: calibrator_table({"w": [1.0, np.nan]}), "data"),
    (lambda: calibrator_table({"w": ([1.0, 2.0], "affine")}), "grid"),
    (lambda: calibrator_table({"w": [1.0, 2.0]}, bits=[1]), "bits"),
    (lambda: calibrator_table({"w": [1.0, 2.0]}, methods=[("aciq", {"family": "cauchy"})]), "family"),
    (lambda: calibrator_table({"w": [1.0, 2.0]}, methods=[("max", {"percentile": 9})]), "percentile"),
    (lambda: calibrator_table({"w": [1.0, 2.0]}, progress="yes"), "progress"),
])
def test_table_bad_input_names_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter"):
        call()


# ----------------------------------------------------------------------------- one default grid
#: every public function that takes tensors (samples, weights) and a symmetric grid
TENSOR_APIS = {
    "qtheory.empirical": ["empirical_mse", "empirical_optimal_clip", "per_channel_optimal_clip",
                          "EmpiricalMSE.mse", "EmpiricalMSE.curve", "EmpiricalMSE.optimal_clip"],
    "qtheory.calibrate": ["calibrate", "calibrator_table", "calibrator_suite", "exact_clip", "mse_sweep_clip"],
    "qtheory.models.report": ["clip_tensor", "layer_report"],
    "qtheory.models.distributed": ["distributed_report"],
    "qtheory.intconv": ["per_channel"],
}
#: functions of a prior or samples: ``grid=None`` picks by the input
EITHER_APIS = [qtheory.optimal_clip, qtheory.clipping_mse]


def _tensor_apis():
    import importlib

    for mod, names in TENSOR_APIS.items():
        m = importlib.import_module(mod)
        for name in names:
            obj = m
            for part in name.split("."):
                obj = getattr(obj, part)
            yield f"{mod}.{name}", obj


@pytest.mark.parametrize("name, func", list(_tensor_apis()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_tensor_api_defaults_to_the_tensor_grid(name, func):
    assert inspect.signature(func).parameters["grid"].default == DEFAULT_TENSOR_GRID, name


def test_no_other_tensor_api_has_another_symmetric_default():
    """Walk qtheory.empirical and qtheory.calibrate: every 'grid' default is the tensor grid, or None
    (OCTAV / ACIQ: the papers' model), never a hard-coded other grid."""
    import qtheory.calibrate as cal
    import qtheory.empirical as emp

    for mod in (emp, cal):
        for name in mod.__all__:
            obj = getattr(mod, name)
            funcs = [obj] if inspect.isfunction(obj) else [
                v for k, v in vars(obj).items() if inspect.isfunction(v) and not k.startswith("_")
            ] if inspect.isclass(obj) else []
            for f in funcs:
                p = inspect.signature(f).parameters.get("grid")
                if p is not None and p.default is not inspect.Parameter.empty:
                    assert p.default in (DEFAULT_TENSOR_GRID, None), (name, f.__name__, p.default)


def test_optimal_clip_default_grid_follows_its_input(rng):
    for f in EITHER_APIS:
        assert inspect.signature(f).parameters["grid"].default is None
    x = rng.laplace(size=2000)
    assert qtheory.optimal_clip("laplace", 4).grid == "midrise"  # a prior: the papers' grid
    assert qtheory.optimal_clip(Laplace(1.0), 4, method="aciq").grid == "midrise"
    r = qtheory.optimal_clip(x, 4)  # samples: the tensor grid
    assert r.grid == DEFAULT_TENSOR_GRID
    assert r.alpha == empirical_optimal_clip(x, 4).alpha
    assert qtheory.optimal_clip(qtheory.Empirical(x), 4).grid == DEFAULT_TENSOR_GRID
    assert qtheory.optimal_clip(np.maximum(x, 0), 4, range="asymmetric").grid == "affine"
    assert qtheory.optimal_clip(x, 4, grid="midrise").grid == "midrise"
    # clipping_mse follows the same rule, so the optimum's MSE is clipping_mse's at its clip
    assert qtheory.clipping_mse(x, r.alpha, 4).mse == pytest.approx(r.mse, rel=1e-12)
    assert qtheory.clipping_mse(x, r.alpha, 4).mse == empirical_mse(x, r.alpha, 4).mse
    p = qtheory.optimal_clip("laplace", 4)
    assert qtheory.clipping_mse("laplace", p.alpha, 4).mse == pytest.approx(p.mse, rel=1e-12)
    assert qtheory.clipping_mse(x, 3.0, 4).mse != qtheory.clipping_mse(x, 3.0, 4, grid="midrise").mse


def test_observers_accept_the_new_names(rng):
    from qtheory.models.observers import METHODS, Observer, clip_range

    assert METHODS == ("max", "percentile", "entropy", "mse", "octav", "aciq", "exact")
    x = rng.normal(size=3000)
    assert clip_range(x, 8, "kl", "narrow") == clip_range(x, 8, "entropy", "narrow")
    with pytest.warns(FutureWarning, match="'mse_sweep' is now method='mse'"):
        old = clip_range(x, 8, "mse_sweep", "narrow")
    assert old == clip_range(x, 8, "mse", "narrow") == (-mse_sweep_clip(x, 8), mse_sweep_clip(x, 8))
    obs = Observer(8).collect(x)
    assert obs.range("mse").alpha == clip_range(x, 8, "mse")[1]
