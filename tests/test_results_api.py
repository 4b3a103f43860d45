"""Result objects in Jupyter and pandas: to_dict, to_frame, _repr_html_, ClipResult.quantizer, sqnr_db."""

import dataclasses
import math
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from qtheory import Gaussian, Laplace, Quantizer, Rectified, clipping_mse, optimal_clip
from qtheory.mse import MSEResult
from qtheory.optimal import ClipResult

SCALES = (1e-300, 1e-150, 1.0, 1e150, 1e300)


# ------------------------------------------------------------------ one public call per result class
def _clip():
    return optimal_clip("laplace", 4)


def _mse():
    return clipping_mse("gaussian", 2.5, 4)


def _allocation():
    from qtheory.allocation import closed_form_allocation

    return closed_form_allocation([1.0, 8.0], 4)


def _lloyd_max():
    from qtheory.classical import lloyd_max

    return lloyd_max("gaussian", 4)


def _fit():
    from qtheory.fit import fit_prior

    return fit_prior(np.random.default_rng(0).laplace(size=2000), family="auto", bits=4)


def _variance():
    from qtheory.sat import clamped_variance

    return clamped_variance(640, 0.05)


def _quantized_variance():
    from qtheory.sat import quantized_variance

    return quantized_variance(1280, 0.02, bits=2)


def _network():
    from qtheory.sat import synthetic_network

    return synthetic_network((8, 16, 32), 10, weights="clamp", batch=16, rng=0)


def _pact_error():
    from qtheory.sat import pact_error_term

    return pact_error_term(3)


def _train():
    from qtheory.ste import train_threshold

    return train_threshold("tqt", "gaussian", 4, init=0.0, steps=5, batch_size=16, rng=0)


def _block_mse():
    from qtheory.formats.block import block_mse

    return block_mse("gaussian", "mxfp4")


def _block_mc():
    from qtheory.formats.block import block_montecarlo

    return block_montecarlo("gaussian", "mxfp4", n_blocks=256, rng=0)


def _scale():
    from qtheory.formats.exact import optimal_scale

    return optimal_scale("gaussian", "int4", n_grid=32)


def _calibration():
    from qtheory.calibrate import calibrate

    return calibrate(np.random.default_rng(0).laplace(size=2000), 4, "aciq", family="auto")


FACTORIES = {
    "ClipResult": _clip, "MSEResult": _mse, "AllocationResult": _allocation, "LloydMaxResult": _lloyd_max,
    "FitResult": _fit, "VarianceResult": _variance, "QuantizedVarianceResult": _quantized_variance,
    "NetworkResult": _network, "PactErrorResult": _pact_error, "TrainResult": _train,
    "BlockMSEResult": _block_mse, "BlockMCResult": _block_mc, "ScaleResult": _scale,
    "CalibrationResult": _calibration,
}


def _is_cell(v):
    return v is None or isinstance(v, (str, bool, int, float, np.generic))


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def result(request):
    r = FACTORIES[request.param]()
    assert type(r).__name__ == request.param
    return r


def test_to_dict_holds_every_public_field_as_is(result):
    d = result.to_dict()
    public = [f.name for f in dataclasses.fields(result) if not f.name.startswith("_")]
    assert list(d) == public
    for name in public:
        assert d[name] is getattr(result, name)  # arrays and nested objects kept, not copied
    # round trip: the dict (plus the internal fields) rebuilds an equal result
    internal = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                if f.name.startswith("_") and f.init}
    init = {k: v for k, v in d.items() if next(f for f in dataclasses.fields(result) if f.name == k).init}
    rebuilt = type(result)(**init, **internal)
    for f in dataclasses.fields(result):
        a, b = getattr(rebuilt, f.name), getattr(result, f.name)
        assert a is b or (isinstance(a, np.ndarray) and np.array_equal(a, b, equal_nan=True)) or a == b


def test_to_frame_is_one_row_of_the_scalar_fields(result):
    t = result.to_frame()
    assert isinstance(t, pd.DataFrame)
    assert t.shape[0] == 1
    d = result.to_dict()
    scalars = [k for k, v in d.items() if _is_cell(v) or (isinstance(v, np.ndarray) and v.ndim == 0)]
    assert list(t.columns) == scalars
    assert scalars, "every result has at least one scalar field"
    for k in scalars:
        v, cell = d[k], t[k].iloc[0]
        if v is None:
            assert cell is None or pd.isna(cell)
        elif isinstance(v, str):
            assert cell == v
        else:
            assert float(cell) == float(v) or (math.isnan(float(v)) and math.isnan(float(cell)))
    # arrays and nested objects stay out of the frame
    for k, v in d.items():
        if isinstance(v, np.ndarray) and v.ndim > 0 or isinstance(v, (dict, list)):
            assert k not in t.columns


def test_repr_html_is_compact_and_rounded(result):
    h = result._repr_html_()
    assert h.startswith("<table") and h.endswith("</table>")
    assert f"<caption>{type(result).__name__}</caption>" in h
    for name in result.to_dict():
        assert f">{name}</th>" in h
    assert not re.search(r"\d\.\d{7,}", h), "no long floats: values are shown to 4 significant digits"
    for v in result.to_dict().values():
        if isinstance(v, np.ndarray) and v.ndim > 0:
            assert f"array{tuple(v.shape)}" in h


def test_repr_is_unchanged_and_pickling_and_equality_work(result):
    r = result
    # the dataclass repr (doctests print it) is not the HTML view
    assert repr(r).startswith(type(r).__name__ + "(") and "<table" not in repr(r)
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.to_dict().keys() == r.to_dict().keys()
    if isinstance(r, (ClipResult, MSEResult)):
        assert r2 == r
        assert r2.sqnr_db == r.sqnr_db


def test_repr_html_of_optimal_clip_shows_four_significant_digits():
    r = optimal_clip("laplace", 4)
    h = r._repr_html_()
    assert "ClipResult" in h
    assert 1.0 <= r.alpha < 10.0
    assert f">{round(r.alpha, 3)}<" in h  # 4 significant digits of a one-digit integer part
    assert repr(r.alpha) not in h
    assert "array(1,)" in h or f"array({r.local_minima.size},)" in h
    assert repr(r) == (f"ClipResult(alpha={r.alpha!r}, mse={r.mse!r}, clipping={r.clipping!r}, rounding="
                       f"{r.rounding!r}, ratio={r.ratio!r}, bits=4, grid='midrise', method='exact', beta=None)")


def test_to_frame_rows_concatenate_into_a_table():
    rows = pd.concat([optimal_clip("gaussian", b, method="aciq").to_frame() for b in (2, 3, 4)], ignore_index=True)
    assert rows.shape == (3, 10) and list(rows.bits) == [2, 3, 4]
    assert list(rows.signal_power) == [1.0, 1.0, 1.0]  # E[X²] of the standard normal
    # the ACIQ clips grow with the bits and the clipping ratio is alpha / sigma
    assert np.all(np.diff(rows.alpha) > 0)
    np.testing.assert_array_equal(rows.ratio, rows.alpha)


def test_import_qtheory_does_not_import_pandas():
    import subprocess
    import sys

    code = "import sys, qtheory; qtheory.optimal_clip; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------ ClipResult.quantizer
@pytest.mark.parametrize("grid", ["midrise", "int", "narrow", "unsigned", "uint", "affine"])
def test_clip_quantizer_is_the_quantizer_of_the_clip(grid, rng):
    r = optimal_clip("gaussian", 3, grid=grid)
    q = Quantizer(3, r.alpha, grid)
    assert r.quantizer == q
    x = rng.standard_normal(500) * 2.0
    np.testing.assert_array_equal(r.quantize(x), q.quantize(x))
    # the MSE of the returned quantizer on many draws agrees with the result's MSE
    big = rng.standard_normal(200_000)
    err = (r.quantize(big) - big) ** 2
    assert abs(err.mean() - r.mse) < 5 * err.std() / math.sqrt(big.size)


def test_clip_quantizer_affine_uses_beta(rng):
    r = optimal_clip(Gaussian(loc=1.0), 3, grid="affine", range="asymmetric")
    assert r.beta is not None and r.beta < 0
    q = Quantizer(3, r.alpha, "affine", beta=r.beta)
    assert r.quantizer == q and r.quantizer.beta == r.beta
    x = rng.normal(1.0, 1.0, 1000)
    np.testing.assert_array_equal(r.quantize(x), q.quantize(x))
    assert r.quantize(np.array([-50.0, 50.0])).tolist() == [q.levels[0], q.levels[-1]]
    post_relu = optimal_clip(Rectified("gaussian"), 4, grid="affine", range="asymmetric")
    assert post_relu.quantizer == Quantizer(4, post_relu.alpha, "affine", beta=0.0)


def test_clip_quantizer_cases_without_a_quantizer():
    r = optimal_clip("laplace", 4)
    with pytest.raises(TypeError, match="codebook"):
        _ = dataclasses.replace(r, grid="codebook").quantizer
    zero = optimal_clip(np.zeros(16), 4)
    assert zero.alpha == 0.0
    with pytest.raises(TypeError, match="all-zero"):
        zero.quantize([1.0])


# ------------------------------------------------------------------ sqnr_db
@pytest.mark.parametrize("b", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("method", ["exact", "aciq"])
def test_sqnr_db_laplace_and_gaussian(b, method):
    r = optimal_clip(Laplace(b), 4, method=method)
    assert r.sqnr_db == pytest.approx(10 * math.log10(2 * b * b / r.mse), abs=1e-10)
    assert r.signal_power == pytest.approx(2 * b * b, rel=1e-14)
    g = optimal_clip(Gaussian(sigma=b), 3, method=method)
    assert g.sqnr_db == pytest.approx(10 * math.log10(b * b / g.mse), abs=1e-10)
    m = clipping_mse(Gaussian(sigma=b), np.array([1.0, 2.0, 3.0]) * b, 4, method=method)
    np.testing.assert_allclose(m.sqnr_db, 10 * np.log10(b * b / m.mse), rtol=0, atol=1e-10)
    assert m.signal_power == pytest.approx(b * b, rel=1e-14)


def test_sqnr_db_nonzero_mean_and_rectified_use_the_second_moment():
    r = optimal_clip(Gaussian(loc=1.0, sigma=2.0), 4, grid="affine", range="asymmetric")
    assert r.sqnr_db == pytest.approx(10 * math.log10((1.0 + 4.0) / r.mse), abs=1e-10)
    rect = clipping_mse(Rectified("gaussian"), 2.0, 4, grid="unsigned")
    assert rect.sqnr_db == pytest.approx(10 * math.log10(0.5 / rect.mse), abs=1e-10)  # E[max(X,0)²] = 1/2


def test_sqnr_db_samples(rng):
    x = rng.laplace(0.3, 1.0, 3000)
    power = float(np.mean(x**2))
    for r in (optimal_clip(x, 4), optimal_clip(x, 3, grid="affine", range="asymmetric"), clipping_mse(x, 3.0, 4)):
        assert r.sqnr_db == pytest.approx(10 * math.log10(power / r.mse), abs=1e-9)
        assert r.signal_power == pytest.approx(power, rel=1e-12)
    direct = float(np.mean((optimal_clip(x, 4).quantize(x) - x) ** 2))
    assert optimal_clip(x, 4).sqnr_db == pytest.approx(10 * math.log10(power / direct), abs=1e-9)


def test_sqnr_db_montecarlo(rng):
    r = clipping_mse("laplace", 5.0, 4, method="montecarlo", n_samples=20_000, rng=rng)
    assert r.sqnr_db == pytest.approx(10 * math.log10(2.0 / r.mse), abs=1e-10)


def test_sqnr_db_unknown_signal_power_raises():
    r = ClipResult(1.0, 0.1, 0.05, 0.05, 1.0, 4, "midrise", "exact")
    with pytest.raises(ValueError, match="signal power"):
        _ = r.sqnr_db
    m = MSEResult(0.1, 0.05, 0.05, "exact")
    with pytest.raises(ValueError, match="signal power"):
        _ = m.sqnr_db
    # a signal power given by hand is used
    assert dataclasses.replace(m, signal_power=10.0).sqnr_db == pytest.approx(20.0)


def test_signal_power_is_not_compared_or_shown():
    r = optimal_clip("laplace", 4)
    assert "signal_power" not in repr(r)
    assert dataclasses.replace(r, signal_power=123.0) == r
    assert "signal_power" in [f.name for f in dataclasses.fields(r)]


@pytest.mark.parametrize("c", SCALES)
def test_sqnr_db_is_scale_invariant(c):
    x = np.random.default_rng(0).standard_normal(1000)
    ref = {
        "laplace": optimal_clip(Laplace(1.0), 4).sqnr_db,
        "aciq": optimal_clip(Laplace(1.0), 4, method="aciq").sqnr_db,
        "asym": optimal_clip(Gaussian(loc=0.5), 3, grid="affine", range="asymmetric").sqnr_db,
        "samples": optimal_clip(x, 4).sqnr_db,
        "samples_asym": optimal_clip(x, 3, grid="affine", range="asymmetric").sqnr_db,
        "mse": clipping_mse(Gaussian(sigma=1.0), [2.0, 3.0], 4).sqnr_db,
        "mse_aciq": clipping_mse(Laplace(1.0), 5.0, 4, method="aciq").sqnr_db,
        "mse_samples": clipping_mse(x, 2.0, 4).sqnr_db,
    }
    got = {
        "laplace": optimal_clip(Laplace(c), 4).sqnr_db,
        "aciq": optimal_clip(Laplace(c), 4, method="aciq").sqnr_db,
        "asym": optimal_clip(Gaussian(loc=0.5 * c, sigma=c), 3, grid="affine", range="asymmetric").sqnr_db,
        "samples": optimal_clip(x * c, 4).sqnr_db,
        "samples_asym": optimal_clip(x * c, 3, grid="affine", range="asymmetric").sqnr_db,
        "mse": clipping_mse(Gaussian(sigma=c), [2.0 * c, 3.0 * c], 4).sqnr_db,
        "mse_aciq": clipping_mse(Laplace(c), 5.0 * c, 4, method="aciq").sqnr_db,
        "mse_samples": clipping_mse(x * c, 2.0 * c, 4).sqnr_db,
    }
    for k, v in ref.items():
        assert np.all(np.isfinite(got[k])), k
        np.testing.assert_allclose(got[k], v, rtol=0, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_affine_clip_of_samples_is_scale_equivariant(c):
    x = np.random.default_rng(1).standard_normal(1000)
    r1 = optimal_clip(x, 3, grid="affine", range="asymmetric")
    rc = optimal_clip(x * c, 3, grid="affine", range="asymmetric")
    assert rc.alpha / c == pytest.approx(r1.alpha, rel=1e-9)
    assert rc.beta / c == pytest.approx(r1.beta, rel=1e-9)
    s1, sc = optimal_clip(x, 3, grid="affine"), optimal_clip(x * c, 3, grid="affine")  # the symmetric range
    assert sc.alpha / c == pytest.approx(s1.alpha, rel=1e-9)
    assert sc.sqnr_db == pytest.approx(s1.sqnr_db, abs=1e-9)
    direct = float(np.mean((s1.quantize(x) - x) ** 2))
    assert s1.sqnr_db == pytest.approx(10 * math.log10(float(np.mean(x**2)) / direct), abs=1e-9)
