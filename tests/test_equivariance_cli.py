"""The command line is scale-equivariant from 1e-300 to 1e300: ``qtheory clip`` on ``c·x`` reports
``c·alpha`` and ``c²·mse`` (issue 10, "Scale underflow and overflow").

The CLI is called in-process (``qtheory.cli.main``) so that hypothesis can try many scales quickly.
"""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qtheory import cli

X = np.random.default_rng(20261130).laplace(size=2000)


def _clip_json(capsys, *args) -> dict:
    assert cli.main(["clip", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exponent=st.integers(-300, 300), bits=st.sampled_from([2, 4, 8]), grid=st.sampled_from(["midrise", "narrow"]))
@example(exponent=155, bits=4, grid="midrise").via("c·c overflows, the scaled MSE does not")
@example(exponent=300, bits=8, grid="narrow").via("the scaled MSE overflows: JSON null")
def test_cli_samples_scale_equivariant(tmp_path, capsys, exponent, bits, grid):
    c = 10.0**exponent
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "cx.npy", X * c)
    base = _clip_json(capsys, "--samples", str(tmp_path / "x.npy"), "--bits", str(bits), "--grid", grid)
    scaled = _clip_json(capsys, "--samples", str(tmp_path / "cx.npy"), "--bits", str(bits), "--grid", grid)
    # x·c is itself rounded, so the optimum moves by at most a few ulps of the data
    assert scaled["alpha"] == pytest.approx(c * base["alpha"], rel=1e-9)
    want = c * (c * base["mse"])  # (c·c alone overflows at c = 1e155 where c·(c·mse) does not)
    if np.isfinite(want) and want > 1e-300:
        assert scaled["mse"] == pytest.approx(want, rel=1e-9)
    elif not np.isfinite(want):  # beyond float64: inf, printed as JSON null (documented)
        assert scaled["mse"] is None
    assert scaled["ratio"] == pytest.approx(base["ratio"], rel=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exponent=st.integers(-300, 300))
@example(exponent=155).via("c·c overflows, the scaled MSEs do not")
def test_cli_per_channel_scale_equivariant(tmp_path, capsys, exponent):
    c = 10.0**exponent
    w = X.reshape(4, 500)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "cw.npy", w * c)
    base = _clip_json(capsys, "--samples", str(tmp_path / "w.npy"), "--axis", "0", "--bits", "4")
    scaled = _clip_json(capsys, "--samples", str(tmp_path / "cw.npy"), "--axis", "0", "--bits", "4")
    np.testing.assert_allclose(scaled["alpha"], c * np.asarray(base["alpha"]), rtol=1e-9)
    with np.errstate(over="ignore"):
        want = c * (c * np.asarray(base["mse"]))
    if np.all(np.isfinite(want)) and np.all(want > 1e-300):
        np.testing.assert_allclose(scaled["mse"], want, rtol=1e-9)
