"""Public API: import cost, bad input everywhere, atomic files, the CLI and the repro runner."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qtheory
from qtheory import _io

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- import
def test_import_is_light_and_fast():
    code = (
        "import sys, time; t = time.perf_counter(); import qtheory; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('sympy', 'numba', 'matplotlib', 'scipy', 'pandas') if m in sys.modules]; "
        "print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[1].strip() == "[]"
    # generous bound: the brief asks for < 0.5 s; numpy itself is most of it
    assert float(out[0]) < 0.5


def test_public_names_resolve():
    for name in qtheory.__all__:
        assert getattr(qtheory, name) is not None


# --------------------------------------------------------------------------- bad input
MSG = re.compile(r"The '(\w+)' parameter of [\w.]+ must be .+\. Got .+ instead\.")

BAD_CALLS = [
    # (callable, kwargs, parameter that must be named)
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=0), "bits"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=17), "bits"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4.0), "bits"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=True), "bits"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=0.0, bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=-1.0, bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=float("nan"), bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=float("inf"), bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=[1.0, np.nan], bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha="1", bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, grid="nope"), "grid"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, method="nope"), "method"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=1, grid="narrow"), "bits"),
    (qtheory.clipping_mse, dict(prior="t", alpha=1.0, bits=4), "prior"),
    (qtheory.clipping_mse, dict(prior=[], alpha=1.0, bits=4), "prior"),
    (qtheory.clipping_mse, dict(prior=[1.0, np.nan], alpha=1.0, bits=4), "prior"),
    (qtheory.clipping_mse, dict(prior=np.ones((2, 2)), alpha=1.0, bits=4), "prior"),
    (qtheory.clipping_mse, dict(prior=object(), alpha=1.0, bits=4), "prior"),
    (qtheory.clipping_mse, dict(prior="logistic_placeholder", alpha=1.0, bits=4), "prior"),
    (qtheory.clipping_mse, dict(prior=[0.1, 0.5], alpha=1.0, bits=4, method="aciq"), "prior"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, method="aciq", grid="int"), "grid"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, method="montecarlo", n_samples=1), "n_samples"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, beta=-1.0), "beta"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, rounding="up"), "rounding"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=np.array([1 + 1j, 2.0]), bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=[[1.0]], bits=4), "alpha"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=[1.0, 2.0], bits=4, grid="affine", beta=[-1.0, 0.5]), "beta"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, method="montecarlo", rng="seed"), "rng"),
    (qtheory.clipping_mse, dict(prior="laplace", alpha=1.0, bits=4, method="montecarlo", rng=-3), "rng"),
    (qtheory.optimal_clip, dict(prior="laplace", bits=-1), "bits"),
    (qtheory.optimal_clip, dict(prior="laplace", bits=4, method="montecarlo"), "method"),
    (qtheory.optimal_clip, dict(prior="laplace", bits=4, grid="x"), "grid"),
    (qtheory.optimal_clip, dict(prior=np.array([np.inf]), bits=4), "prior"),
    (qtheory.optimal_clip, dict(prior="laplace", bits=4, progress="no"), "progress"),
    (qtheory.optimal_clip, dict(prior="laplace", bits=4, n_grid=3), "n_grid"),
    (qtheory.optimal_clip_table, dict(bits=[0], methods=["exact"], grid="nope"), "grid"),
    (qtheory.Quantizer, dict(bits=0, alpha=1.0), "bits"),
    (qtheory.Quantizer, dict(bits=4, alpha=-2.0), "alpha"),
    (qtheory.Quantizer, dict(bits=4, alpha=1.0, grid="fp8"), "grid"),
    (qtheory.Quantizer, dict(bits=4, alpha=1.0, rounding="stochastic"), "rounding"),
    (qtheory.Quantizer, dict(bits=4, alpha=1.0, beta=-1.0), "beta"),
    (qtheory.Quantizer, dict(bits=4, alpha=1.0, grid="affine", beta=0.5), "beta"),
    (qtheory.Laplace, dict(b=0.0), "b"),
    (qtheory.Gaussian, dict(sigma=-1.0), "sigma"),
    (qtheory.Gaussian, dict(sigma=1.0, loc=np.inf), "loc"),
    (qtheory.Mixture, dict(weights=[1.0], components=["laplace", "gaussian"]), "weights"),
    (qtheory.Mixture, dict(weights=[1.0, -1.0], components=["laplace", "gaussian"]), "weights"),
    (qtheory.Rectified, dict(base=[1.0, 2.0]), "base"),
    (qtheory.fit_prior, dict(x=[1.0]), "x"),
    (qtheory.fit_prior, dict(x=[1.0, 1.0]), "x"),
    (qtheory.fit_prior, dict(x=[1.0, 2.0], family="cauchy"), "family"),
    (qtheory.fit_prior, dict(x=[1.0, 2.0], family="auto"), "bits"),
    (qtheory.as_prior, dict(obj="cauchy"), "prior"),
    (qtheory.montecarlo.mse, dict(prior="laplace", quantizers=[]), "quantizers"),
    (qtheory.montecarlo.quantize, dict(x=[1.0], quantizer="int8"), "quantizer"),
]


def _scipy_bad_calls():
    from scipy import stats

    return [
        (qtheory.clipping_mse, dict(prior=stats.cauchy(), alpha=1.0, bits=4), "prior"),
        (qtheory.optimal_clip, dict(prior=stats.t(2), bits=4), "prior"),
        (qtheory.as_prior, dict(obj=stats.poisson(3)), "prior"),
    ]


@pytest.mark.parametrize("func, kwargs, param", BAD_CALLS + _scipy_bad_calls(),
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_bad_input_names_the_parameter(func, kwargs, param):
    with pytest.raises((ValueError, TypeError)) as info:
        func(**kwargs)
    msg = str(info.value)
    assert MSG.search(msg), msg
    assert f"'{param}' parameter" in msg, msg


def test_every_public_function_is_walked():
    walked = {f.__name__ for f, _, _ in BAD_CALLS}
    public_callables = {"clipping_mse", "optimal_clip", "optimal_clip_table", "Quantizer", "Laplace", "Gaussian",
                        "Mixture", "Rectified", "fit_prior", "as_prior", "mse", "quantize"}
    assert public_callables <= walked


# --------------------------------------------------------------------------- files
def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "t.txt"
    _io.write_text(target, "old")
    with pytest.raises(RuntimeError), _io.atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_save_figure_is_atomic(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    p = _io.save_figure(fig, tmp_path / "f.png")
    plt.close(fig)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [x.name for x in tmp_path.iterdir()] == ["f.png"]


# --------------------------------------------------------------------------- CLI
def cli(*args):
    return subprocess.run([sys.executable, "-m", "qtheory.cli", *args], capture_output=True, text=True)


def test_cli_clip_aciq_json():
    r = cli("clip", "--prior", "laplace", "--bits", "4", "--method", "aciq", "--json")
    assert r.returncode == 0, r.stderr
    assert round(json.loads(r.stdout)["alpha"], 4) == 5.0286


def test_cli_table_matches_api():
    r = cli("table", "--prior", "gaussian", "--bits", "0-8", "--method", "aciq", "--json")
    rows = json.loads(r.stdout)
    from qtheory.reference import ACIQ_ALPHA_GAUSSIAN

    assert [round(x["ratio"], 5) for x in rows] == list(ACIQ_ALPHA_GAUSSIAN)


def test_cli_samples_formats(tmp_path, rng):
    x = rng.laplace(size=3000)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", w=x)
    np.savetxt(tmp_path / "x.txt", x)
    want = qtheory.optimal_clip(x, 4).alpha
    for f in ("x.npy", "x.npz", "x.txt"):
        r = cli("clip", "--samples", str(tmp_path / f), "--bits", "4", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["alpha"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("content, option", [(None, "--samples"), ("nan", "--samples"), ("text", "--samples")])
def test_cli_bad_samples(tmp_path, content, option):
    f = tmp_path / "bad.txt"
    if content == "nan":
        np.savetxt(f, [1.0, np.nan])
    elif content == "text":
        f.write_text("hello world\n")
    r = cli("clip", "--samples", str(f), "--bits", "4")
    assert r.returncode == 2
    assert option in r.stderr and "Traceback" not in r.stderr


def test_cli_bad_axis(tmp_path):
    np.save(tmp_path / "w.npy", np.ones((4, 3)))
    r = cli("clip", "--samples", str(tmp_path / "w.npy"), "--axis", "2", "--bits", "4")
    assert r.returncode == 2 and "'--axis'" in r.stderr


def test_cli_bad_prior():
    r = cli("clip", "--prior", "cauchy", "--bits", "4")
    assert r.returncode == 2 and "finite variance" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- repro runner
def test_repro_runner_writes_into_given_root(tmp_path):
    (tmp_path / "qtheory").mkdir()
    (tmp_path / "paper_repro" / "toy").mkdir(parents=True)
    (tmp_path / "paper_repro" / "toy" / "repro.py").write_text(
        "import pandas as pd\nfrom qtheory._io import write_table\n"
        "def main(root):\n    return write_table(pd.DataFrame({'a': [1]}), root / 'paper_repro' / 'toy' / 't')\n"
    )
    from qtheory import repro

    out = repro.run(["toy"], tmp_path, verbose=False)
    assert [p.name for p in out["toy"]] == ["t.csv", "t.md"]
    with pytest.raises(ValueError, match="'names' parameter"):
        repro.run(["nope"], tmp_path, verbose=False)


def test_every_reproduction_has_a_main():
    from qtheory import repro

    names = repro.available(ROOT)
    assert "aciq" in names
    for n in names:
        assert callable(repro._load(ROOT, n).main)


def test_version_and_typing_marker_match_the_package_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert qtheory.__version__ == meta["project"]["version"]
    assert (Path(qtheory.__file__).parent / "py.typed").is_file()  # PEP 561 marker
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["qtheory"]
