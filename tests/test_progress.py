"""The progress policy (qtheory/_progress.py) and the once-per-process numba compile notice.

tests/test_api_walk.py walks every public function with ``progress``: silent with ``False``, a bar
with ``True``. Here: what ``None`` (the default) does, the bar of a long ``optimal_clip`` scan, that a
bar changes no result, and the compile notice (printed on a cold numba cache only, once).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import qtheory
from qtheory import _progress

ROOT = Path(__file__).resolve().parents[1]


def test_default_is_silent_when_nobody_watches(capfd):
    # pytest's captured stderr is not a terminal and there is no Jupyter kernel
    assert not _progress._watched()
    items = [1, 2, 3]
    assert _progress.progress_bar(items, None, "x") is items     # no tqdm object at all
    assert _progress.progress_bar(items, False, "x") is items
    qtheory.optimal_clip_table(bits=[2, 3])
    assert capfd.readouterr().err == ""


def test_default_waits_two_seconds_where_someone_watches(monkeypatch):
    monkeypatch.setattr(_progress, "_watched", lambda: True)
    bar = _progress.progress_bar([1, 2], None, "x")
    try:
        assert bar.delay == _progress.DELAY == 2.0
    finally:
        bar.close()
    bar = _progress.progress_bar([1, 2], True, "x")
    try:
        assert bar.delay == 0.0
    finally:
        bar.close()


@pytest.mark.parametrize("bad", ["no", 1, 0.0, "None"])
def test_progress_values_other_than_true_false_none_are_refused(bad):
    with pytest.raises(TypeError, match=r"The 'progress' parameter of optimal_clip_table must be True, False or None"):
        qtheory.optimal_clip_table(bits=[2], progress=bad)
    from qtheory import sat

    with pytest.raises(TypeError, match=r"The 'progress' parameter of pact_error_table"):
        sat.pact_error_table((2,), n_samples=100, progress=bad)


def test_long_optimal_clip_scan_draws_a_bar_and_the_same_clip(capfd):
    """A quadrature prior is scanned point by point: ``True`` shows that scan, the clip is unchanged."""
    prior = stats.logistic()
    quiet = qtheory.optimal_clip(prior, 3, progress=False)
    capfd.readouterr()
    shown = qtheory.optimal_clip(prior, 3, progress=True)
    err = capfd.readouterr().err
    assert "optimal_clip scan:" in err and "/96 [" in err     # the 96-point scan (cleared when done)
    assert shown.alpha == quiet.alpha and shown.mse == quiet.mse


def test_a_bar_changes_no_result(capfd):
    """The bars wrap the loops (network draws are made lazily in the loop order): same numbers."""
    from qtheory import allocation, sat

    a = sat.network_experiment((16, 64), 100, bits=(2,), batch=16, n_nets=2, rng=3, progress=False)
    b = sat.network_experiment((16, 64), 100, bits=(2,), batch=16, n_nets=2, rng=3, progress=True)
    assert a.equals(b)
    a = allocation.two_channel_experiment((2.0, 1.0), 8, n_samples=300, rng=5, progress=False)
    b = allocation.two_channel_experiment((2.0, 1.0), 8, n_samples=300, rng=5, progress=True)
    assert np.array_equal(a.mc_points, b.mc_points) and np.array_equal(a.exact_points, b.exact_points)


# ------------------------------------------------------------------------------ compile notice
_SCRIPT = """
import warnings
warnings.simplefilter("error")
import numba
import numpy as np

@numba.njit
def not_ours(x):          # compiling a function outside qtheory says nothing
    return x + 1

not_ours(1.0)
import qtheory
from qtheory import montecarlo

q = qtheory.Quantizer(3, 1.0)
x = np.linspace(-1.0, 1.0, 5)
print(montecarlo.quantize(x, q).tolist())
print(montecarlo.quantize(x.astype(np.float32), q).tolist())   # a second compilation, no second line
"""


def _run(cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r


def test_compile_notice_once_on_a_cold_cache_and_never_on_a_warm_one(tmp_path):
    from qtheory.kernels import COMPILE_NOTICE

    cold = _run(tmp_path)
    assert cold.stderr.count(COMPILE_NOTICE) == 1, cold.stderr
    assert cold.stderr.strip() == COMPILE_NOTICE                   # nothing else on stderr
    assert any(tmp_path.rglob("*.nbi")), "numba wrote no cache index: the second run would compile again"
    warm = _run(tmp_path)
    assert warm.stderr == "", warm.stderr
    assert warm.stdout == cold.stdout
    # the rounding of the 3-bit midrise grid on [-1, 1]: step 0.25, levels ±0.125 .. ±0.875
    assert cold.stdout.splitlines()[0] == str([-0.875, -0.375, 0.125, 0.625, 0.875])
