"""layer_report and ``qtheory report`` on the real fixtures: SQNR recomputed by hand, the exact
clip never beaten, per-channel never worse, the CSV contract, bad files exit 2."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _fixtures import data_file

from qtheory import optimal_clip
from qtheory.models import layer_report, read_tensors
from qtheory.models.observers import METHODS, quantizer_for

ROOT = Path(__file__).resolve().parents[1]


_data = data_file


def _sqnr(x, beta, alpha, bits, grid):
    x = np.asarray(x, dtype=np.float64).ravel()
    e = quantizer_for(beta, alpha, bits, grid).quantize(x) - x
    return 10 * math.log10(math.fsum(x * x) / math.fsum(e * e))


def test_layer_report_on_facenet_weights():
    path = _data("facenet_pytorch", "data", "rnet.pt")
    pytest.importorskip("torch")
    tensors = {t.name: t for t in read_tensors(path)}
    df = layer_report(path, bits=[4, 8], long=True)
    weights = [t for t in tensors.values() if t.role in ("conv_weight", "linear_weight")]
    assert len(df) == len(weights) * 2 * len(METHODS)
    assert set(df.method) == set(METHODS) and (df.n == df.n_fit).all()
    for _, r in df.sample(12, random_state=0).iterrows():
        x = tensors[r.tensor].array()
        assert r.sqnr_db == pytest.approx(_sqnr(x, r.beta, r.alpha, r.bits, "narrow"), abs=1e-9)
    # the exact clip is never beaten on the tensor it was fitted to
    for _, g in df.groupby(["tensor", "bits"]):
        best = g.set_index("method").mse
        assert (best["exact"] <= best * (1 + 1e-12)).all()
        assert g.set_index("method").gain_db["max"] == 0.0
    # every tensor has a fitted prior with a finite goodness of fit
    assert df.prior.isin(["laplace", "gaussian"]).all() and np.isfinite(df.ks).all()


def test_layer_report_per_channel_never_worse_than_per_tensor():
    path = _data("facenet_pytorch", "data", "pnet.pt")
    pytest.importorskip("torch")
    tensors = {t.name: t for t in read_tensors(path)}
    per_t = layer_report(path, bits=[4], methods=["max", "exact"], long=True)
    per_c = layer_report(path, bits=[4], methods=["max", "exact"], granularity="channel", long=True)
    for name, g in per_c[per_c.method == "exact"].groupby("tensor"):
        t = tensors[name]
        assert len(g) == t.shape[t.channel_axis]
        total_c = float((g.mse * g.n).sum())  # sum of squared errors over channels
        r = per_t[(per_t.tensor == name) & (per_t.method == "exact")].iloc[0]
        assert total_c <= r.mse * r.n * (1 + 1e-12)
        assert int(g.n.sum()) == r.n


def test_layer_report_subsampling_is_stated_and_seeded(rng):
    w = {"big.weight": rng.laplace(size=(64, 300)).astype(np.float32)}
    a = layer_report(w, bits=[4], methods=["max", "exact"], max_values=2000, seed=3)
    b = layer_report(w, bits=[4], methods=["max", "exact"], max_values=2000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert int(a.n.iloc[0]) == 19_200 and int(a.n_fit.iloc[0]) == 2000
    full = layer_report(w, bits=[4], methods=["exact"])
    # the sub-sampled clip is measured on the whole tensor: never below the full optimum
    assert a.exact_mse.iloc[0] >= full.exact_mse.iloc[0] * (1 - 1e-12)


def test_layer_report_asymmetric_grid_and_validation(rng):
    w = {"x": np.maximum(rng.laplace(size=5000), -0.375)}
    df = layer_report(w, bits=[8], methods=["max", "exact"], grid="affine", roles=None, long=True)
    r = df.set_index("method")
    assert r.beta["max"] == -0.375 and r.alpha["max"] == w["x"].max()
    # (not asserted: exact <= max — optimal_clip's affine (β, α) search is a scan and was seen to
    # miss min/max by 0.3% at 8 bits; its result is what the report gives)
    ref = optimal_clip(w["x"], 8, grid="affine", range="asymmetric")
    assert (r.beta["exact"], r.alpha["exact"]) == (ref.beta, ref.alpha)
    assert r.mse["exact"] == pytest.approx(ref.mse, rel=1e-12)
    with pytest.raises(ValueError, match="'granularity' parameter of layer_report"):
        layer_report(w, granularity="layer")
    with pytest.raises(ValueError, match="'methods' parameter of layer_report"):
        layer_report(w, methods=["kl-divergence"])
    with pytest.raises(ValueError, match="'bits' parameter of layer_report"):
        layer_report(w, bits=[1])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "qtheory.cli", "report", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=600)


def test_cli_report_csv_on_real_onnx(tmp_path):
    pytest.importorskip("onnx")
    path = _data("rapidocr_onnxruntime", "models", "ch_ppocr_mobile_v2.0_cls_infer.onnx")
    out = tmp_path / "layers.csv"
    # (every method is covered in-process by test_layer_report_on_facenet_weights; here three keep it fast)
    r = _cli(path, "--bits", 4, 8, "--methods", "max", "aciq", "exact", "--max-values", 1024, "--fold-bn", "--csv", out)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out)
    for c in ("tensor", "shape", "bits", "method", "alpha", "mse", "sqnr_db"):
        assert c in df.columns
    n_weights = sum(t.role in ("conv_weight", "linear_weight") for t in read_tensors(path, fold_bn=True))
    assert n_weights == 54
    assert len(df) == n_weights * 2 * 3
    assert df.groupby(["tensor", "method", "bits"]).size().max() == 1
    # the SQNR column is 10 log10(Σx² / Σ(x − q(x))²) over the whole tensor
    tensors = {t.name: t for t in read_tensors(path, fold_bn=True)}
    for _, row in df.sample(6, random_state=1).iterrows():
        assert row.sqnr_db == pytest.approx(_sqnr(tensors[row.tensor].array(), row.beta, row.alpha, row.bits,
                                                  "narrow"), abs=1e-6)
    j = _cli(path, "--bits", 8, "--methods", "max", "--json")
    assert j.returncode == 0, j.stderr
    recs = json.loads(j.stdout)
    assert len(recs) == 53 + 1  # 53 convs and the fc layer
    assert {r["gain_db"] for r in recs} == {0.0}


@pytest.mark.parametrize("content", [b"garbage", b""])
@pytest.mark.parametrize("suffix", [".onnx", ".pt", ".safetensors", ".npz"])
def test_cli_report_bad_file_one_line_exit_2(tmp_path, suffix, content):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(content)
    r = _cli(bad)
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("qtheory report: error:")


MSG = r"The '(\w+)' parameter of [\w.]+ must be .+\. Got .+ instead\."


def _bad_calls():
    from qtheory.models import export, observers, readers
    from qtheory.models.distributed import distributed_report

    w = {"w": np.ones((4, 4), np.float32)}
    return [
        (layer_report, dict(source=w, grid="float8"), "grid"),
        (layer_report, dict(source=w, bits=[0]), "bits"),
        (layer_report, dict(source=w, max_values=3), "max_values"),
        (layer_report, dict(source=w, seed=-1), "seed"),
        (distributed_report, dict(source=w, granularity="row"), "granularity"),
        (observers.Observer, dict(bits=4.0), "bits"),
        (observers.Observer, dict(bins=15), "bins"),
        (observers.Observer, dict(percentile=101.0), "percentile"),
        (observers.clip_range, dict(x=[1.0, 2.0], bits=8, method="minmax"), "method"),
        (export.ort_qparams, dict(beta=-1.0, alpha=1.0, qtype="int4"), "qtype"),
        (export.ort_qparams, dict(beta=-1.0, alpha=float("inf")), "alpha"),
        (export.torch_qparams, dict(beta=-1.0, alpha=1.0, dtype="qint32"), "dtype"),
        (readers.read_tensors, dict(source=w, fold_bn="yes"), "fold_bn"),
        (readers.read_npz, dict(path=__file__, max_bytes=-1), "max_bytes"),
    ]


def test_bad_input_names_the_parameter():
    import re

    for func, kwargs, param in _bad_calls():
        with pytest.raises((ValueError, TypeError)) as info:
            func(**kwargs)
        msg = str(info.value)
        assert re.search(MSG, msg), (func.__name__, msg)
        assert f"'{param}' parameter" in msg, (func.__name__, msg)


# a PP-OCRv4 detector channel (conv2d_97.w_0[46], 48 of its values) with float32 subnormals, on
# which qtheory.empirical's exact search raised ZeroDivisionError when this test was written
SUBNORMAL_CHANNEL = np.array([
    -0.03485694155097008, -1.3426120846388937e-40, -0.13646340370178223, 0.2318052500486374, 0.15577945113182068,
    0.0561426617205143, 0.17198120057582855, 0.014443050138652325, 5.006969231585723e-13, -0.02874481864273548,
    0.051242899149656296, 0.009080514311790466, -0.002791141625493765, -0.15685036778450012, 0.043674156069755554,
    -0.05095091089606285, 0.017883768305182457, 0.02165040746331215, -0.019192468374967575, -0.0029517614748328924,
    0.09876794368028641, 0.015460463240742683, -1.7151192554103599e-40, -0.20180872082710266, 0.2946873605251312,
    0.13541290163993835, -0.13067513704299927, -1.7656360650492695e-42, 0.00928263459354639, 0.013425749726593494,
    0.026394743472337723, 0.07441794872283936, -0.27604642510414124, -0.002719320822507143, 0.15371866524219513,
    -0.06253554672002792, 1.3364603843805078e-40, -0.008308653719723225, 0.21018771827220917, -0.028399929404258728,
    0.03652035444974899, 0.02221447415649891, 1.6258622963505331e-06, -0.03472178056836128, -0.009333845227956772,
    0.06994296610355377, 0.08716528117656708, -1.376207040172531e-15], dtype=np.float32)


def test_subnormal_weights_get_a_real_optimum():
    """A real detector channel with float32 subnormals (it once raised ZeroDivisionError)."""
    import qtheory

    df = layer_report({"w": SUBNORMAL_CHANNEL[None, :]}, bits=[4], methods=["max", "exact"], long=True)
    r = df.set_index("method")
    assert (r.error == "").all() and np.isfinite(r.mse).all()
    want = qtheory.optimal_clip(SUBNORMAL_CHANNEL, 4, grid="narrow")
    assert r.alpha["exact"] == pytest.approx(want.alpha, rel=1e-12)
    assert r.mse["exact"] == pytest.approx(want.mse, rel=1e-9)
    assert r.mse["exact"] < r.mse["max"]


def test_a_failing_calibrator_is_reported_not_hidden(monkeypatch):
    import qtheory.models.report as report

    real = report.clip_range

    def failing(x, bits, method, grid, **kw):
        if method == "exact":
            raise ZeroDivisionError("float division by zero")
        return real(x, bits, method, grid, **kw)

    monkeypatch.setattr(report, "clip_range", failing)
    df = layer_report({"w": SUBNORMAL_CHANNEL[None, :]}, bits=[4], methods=["max", "exact"], long=True)
    r = df.set_index("method")
    assert r.error["max"] == "" and np.isfinite(r.mse["max"])
    assert r.error["exact"] == "ZeroDivisionError: float division by zero"
    assert np.isnan(r.alpha["exact"]) and np.isnan(r.mse["exact"])
