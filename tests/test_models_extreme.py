"""qtheory.models on extreme and bad input: layer_report across the float64 range (exact
power-of-two equivariance, values checked against independent numpy), BatchNorm folding of a Conv
weight shared by two Conv→BN pairs (ONNX Runtime on both graphs), and the parameter named in the
readers' errors."""

import math

import numpy as np
import pytest
from _fixtures import ocr_model
from scipy import stats

from qtheory.models import fold_batchnorm, layer_report, read_onnx, read_tensors
from qtheory.models.report import clip_tensor

METHODS7 = ("max", "exact", "aciq", "mse", "octav", "entropy", "percentile")
LN2 = math.log(2.0)


def _w():
    return np.random.default_rng(0).normal(size=(4, 16))


def _narrow_sqnr(x, alpha, bits):
    """10·log10(Σx² / Σ(x − q(x))²) of the symmetric narrow grid (codes ±(2^(b−1) − 1)), by hand."""
    x = np.asarray(x, dtype=np.float64).ravel()
    top = 2 ** (bits - 1) - 1
    step = alpha / top
    q = np.clip(np.rint(x / step), -top, top) * step
    return 10.0 * math.log10(math.fsum(x * x) / math.fsum((x - q) ** 2))


# ----------------------------------------------------------------------------- F7: layer_report
def test_layer_report_scale_one_values_are_independently_right():
    w = _w()
    r = layer_report({"w": w}, bits=(4,), methods=("max",)).iloc[0]
    alpha = float(np.max(np.abs(w)))
    assert r["max_alpha"] == alpha == pytest.approx(2.3250307746388343, rel=1e-15)
    assert r["max_sqnr_db"] == pytest.approx(_narrow_sqnr(w, alpha, 4), rel=1e-12)
    assert r["max_sqnr_db"] == pytest.approx(20.036415, abs=1e-6)
    assert r["prior"] == "gaussian"
    assert r["kurtosis"] == pytest.approx(stats.kurtosis(w.ravel(), fisher=True, bias=True), rel=1e-12)
    d = w.ravel() - w.mean()
    assert r["loglik_laplace"] == pytest.approx(-math.log(2 * np.mean(np.abs(d))) - 1, rel=1e-14)
    assert r["loglik_gaussian"] == pytest.approx(-0.5 * math.log(2 * math.pi * np.mean(d * d)) - 0.5, rel=1e-14)


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e-100, 1e100, 1e160])
def test_layer_report_audit_scales(scale):
    # the audit's cases: 0.0 / "constant" / NaN at 1e-200, 19.98 dB at 1e-160, NaN kurtosis at
    # 1e-100, an OverflowError at 1e100, "laplace" and NaN at 1e160
    w = _w()
    ref = layer_report({"w": w}, bits=(4,), methods=("max",)).iloc[0]
    r = layer_report({"w": w * scale}, bits=(4,), methods=("max",)).iloc[0]
    assert r["max_alpha"] == float(np.max(np.abs(w * scale)))  # the max calibrator: max|x|, exactly
    assert r["prior"] == "gaussian"
    assert r["max_sqnr_db"] == pytest.approx(_narrow_sqnr(w, ref["max_alpha"], 4), rel=1e-12)
    assert r["kurtosis"] == pytest.approx(stats.kurtosis(w.ravel(), fisher=True, bias=True), rel=1e-12)
    assert r["ks"] == pytest.approx(ref["ks"], rel=1e-9)
    assert r["loglik_gaussian"] == pytest.approx(ref["loglik_gaussian"] - math.log(scale), rel=1e-12)


@pytest.mark.parametrize("k", [-660, -500, 500, 530])
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_layer_report_exactly_equivariant_under_powers_of_two(k, granularity):
    w = _w()
    kw = dict(bits=(3, 4), methods=METHODS7, granularity=granularity, long=True)
    ref = layer_report({"w": w}, **kw)
    got = layer_report({"w": np.ldexp(w, k)}, **kw)
    assert (got["error"] == "").all() and (ref["error"] == "").all()
    np.testing.assert_array_equal(got["alpha"], np.ldexp(ref["alpha"].to_numpy(), k))
    np.testing.assert_array_equal(got["beta"], np.ldexp(ref["beta"].to_numpy(), k))
    with np.errstate(over="ignore", under="ignore"):  # (0 at 2^-1320, inf at 2^1060: rounded once)
        np.testing.assert_array_equal(got["mse"], np.ldexp(ref["mse"].to_numpy(), 2 * k))
    for c in ("prior", "ks", "kurtosis", "sqnr_db", "gain_db"):  # dimensionless: bit-identical
        assert got[c].tolist() == ref[c].tolist(), c
    for c in ("loglik_laplace", "loglik_gaussian"):
        np.testing.assert_allclose(got[c], ref[c] - k * LN2, rtol=1e-14)
    assert np.isfinite(got["sqnr_db"]).all() and np.isfinite(got["kurtosis"]).all()


def test_layer_report_real_weights_at_extreme_scales():
    pytest.importorskip("onnx")
    convs = [t for t in read_onnx(ocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx")) if t.role == "conv_weight"][:4]
    assert len(convs) == 4
    tensors = {t.name: t.array().astype(np.float64) for t in convs}
    kw = dict(bits=(4,), methods=("max", "exact", "aciq"), long=True)
    ref = layer_report(tensors, **kw)
    for k in (-660, 530):
        got = layer_report({n: np.ldexp(a, k) for n, a in tensors.items()}, **kw)
        np.testing.assert_array_equal(got["alpha"], np.ldexp(ref["alpha"].to_numpy(), k))
        assert got["sqnr_db"].tolist() == ref["sqnr_db"].tolist()
        assert got["prior"].tolist() == ref["prior"].tolist()
        assert got["kurtosis"].tolist() == ref["kurtosis"].tolist()
    for _, r in ref[ref["method"] == "max"].iterrows():
        x = tensors[r["tensor"]]
        assert r["alpha"] == float(np.max(np.abs(x)))
        assert r["sqnr_db"] == pytest.approx(_narrow_sqnr(x, r["alpha"], 4), rel=1e-12)
        assert r["kurtosis"] == pytest.approx(stats.kurtosis(x.ravel(), fisher=True, bias=True), rel=1e-10)


def test_layer_report_constant_tensor_at_tiny_scale():
    # one value, 2^-700: the max clip is that value and quantizes it exactly (was alpha 0, NaN gain)
    c = 2.0**-700
    df = layer_report({"w": np.full((3, 4), -c)}, bits=4, methods=["max", "exact"], long=True)
    assert df["alpha"].tolist() == [c, c] and df["beta"].tolist() == [-c, -c]
    assert df["mse"].tolist() == [0.0, 0.0]
    assert df["sqnr_db"].tolist() == [math.inf, math.inf]
    assert df["gain_db"].tolist() == [0.0, 0.0]
    assert df["prior"].tolist() == ["constant", "constant"]


def test_layer_report_non_finite_and_complex_tensors_are_errors():
    w = _w()
    w[1, 2] = np.nan  # was reported as a "constant" tensor with alpha 0 and NaN SQNR
    with pytest.raises(ValueError, match="The 'source' parameter of layer_report must be a model of finite "
                                         "tensors. Got \"tensor 'w' with 1 non-finite value"):
        layer_report({"w": w}, bits=4, methods=["max"])
    w[1, 2] = np.inf
    with pytest.raises(ValueError, match="'source' parameter of layer_report"):
        layer_report({"w": w}, bits=4, methods=["max"])
    with pytest.raises(TypeError, match="'source' parameter of layer_report .* Got \"tensor 'w' of dtype complex128"):
        layer_report({"w": _w() + 1j}, bits=4, methods=["max"])


@pytest.mark.parametrize(("x", "exc"), [([], ValueError), ([1.0, np.nan], ValueError), (["a", "b"], TypeError),
                                        ([1j, 2.0], TypeError)])
def test_clip_tensor_bad_x(x, exc):
    with pytest.raises(exc, match="The 'x' parameter of clip_tensor must be"):
        clip_tensor(x, 4, "max")


# ----------------------------------------------------------------------------- F13: fold_batchnorm
def _shared_conv_model(*, taken_name=False):
    """Two Conv→BN pairs reading one weight ``w`` and one bias ``cb``; with ``taken_name`` the graph
    already holds a tensor named ``w_bnfolded`` (added to the input by a third output)."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(n, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), n)

    inits = [init("w", rng.normal(size=(2, 1, 1, 1))), init("cb", rng.normal(size=2))]
    bn = {}
    for s in "12":
        bn[s] = [rng.normal(size=2), rng.normal(size=2), rng.normal(size=2), rng.uniform(0.5, 2, size=2)]
        inits += [init(p + s, a) for p, a in zip("gbmv", bn[s], strict=True)]
    nodes = [helper.make_node("Conv", ["x", "w", "cb"], ["c1"]),
             helper.make_node("BatchNormalization", ["c1", "g1", "b1", "m1", "v1"], ["y1"]),
             helper.make_node("Conv", ["x", "w", "cb"], ["c2"]),
             helper.make_node("BatchNormalization", ["c2", "g2", "b2", "m2", "v2"], ["y2"])]
    outs = [helper.make_tensor_value_info("y1", 1, None), helper.make_tensor_value_info("y2", 1, None)]
    if taken_name:
        inits.append(init("w_bnfolded", rng.normal(size=(1, 1, 1, 1))))
        nodes.append(helper.make_node("Add", ["x", "w_bnfolded"], ["y3"]))
        outs.append(helper.make_tensor_value_info("y3", 1, None))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 1, 3, 3])], outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m, {s: [np.float32(v).astype(np.float64) for v in p] for s, p in bn.items()}


def _ort(model, x):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})


@pytest.mark.parametrize("taken_name", [False, True])
def test_fold_batchnorm_shared_conv_weight(taken_name):
    pytest.importorskip("onnx")
    from onnx import numpy_helper

    m, bn = _shared_conv_model(taken_name=taken_name)
    folded = fold_batchnorm(m)
    names = [t.name for t in folded.graph.initializer]
    assert len(names) == len(set(names)), names  # was two 'w_bnfolded' (and two 'cb_bnfolded')
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    x = np.random.default_rng(1).normal(size=(1, 1, 3, 3)).astype(np.float32)
    ref, got = _ort(m, x), _ort(folded, x)
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in folded.graph.initializer}
    w = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "w")).astype(np.float64)
    cb = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "cb")).astype(np.float64)
    eps32 = float(np.finfo(np.float32).eps)
    for i, s in enumerate("12"):
        conv = next(n for n in folded.graph.node if n.output[0] == f"y{s}")
        wf, bf = inits[conv.input[1]], inits[conv.input[2]]
        g, b, mu, v = bn[s]
        k = g / np.sqrt(v + 1e-5)
        # this Conv's own folded weight and bias (float64 fold, stored as float32)
        np.testing.assert_array_equal(wf, (w * k.reshape(-1, 1, 1, 1)).astype(np.float32))
        np.testing.assert_array_equal(bf, ((cb - mu) * k + b).astype(np.float32))
        # ONNX Runtime: the folded graph computes the original outputs, to float32 rounding
        bound = 4 * eps32 * (np.abs(x).max() * np.abs(wf).max() + np.abs(bf).max())
        np.testing.assert_allclose(got[i], ref[i], rtol=0, atol=bound)
    if taken_name:  # the graph's own 'w_bnfolded' is untouched, and so is the output that reads it
        np.testing.assert_array_equal(got[2], ref[2])
        assert inits["w_bnfolded"].shape == (1, 1, 1, 1)
    # read_onnx returns both folded weights, each with its own values
    ts = read_onnx(m, fold_bn=True)
    fw = {t.name: t.array() for t in ts if t.folded and t.role == "conv_weight"}
    assert len(fw) == 2
    k1, k2 = (bn[s][0] / np.sqrt(bn[s][3] + 1e-5) for s in "12")
    want = sorted([(w * k1.reshape(-1, 1, 1, 1)).astype(np.float32).ravel().tolist(),
                   (w * k2.reshape(-1, 1, 1, 1)).astype(np.float32).ravel().tolist()])
    assert sorted(a.ravel().tolist() for a in fw.values()) == want


# ----------------------------------------------------------------------------- read_tensors: 'source'
@pytest.mark.parametrize("suffix", [".onnx", ".safetensors", ".pt", ".npz", ".npy"])
def test_read_tensors_missing_file_names_source(tmp_path, suffix):
    missing = tmp_path / f"none{suffix}"
    with pytest.raises(FileNotFoundError, match="The 'source' parameter of read_tensors must be an existing file"):
        read_tensors(missing)
    with pytest.raises(FileNotFoundError, match="The 'source' parameter of layer_report must be an existing file"):
        layer_report(missing)


def test_read_tensors_unreadable_onnx_names_source(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="The 'source' parameter of read_tensors must be a readable ONNX file"):
        read_tensors(bad)
    # the readers themselves still name their own parameter
    with pytest.raises(ValueError, match="The 'model' parameter of read_onnx must be a readable ONNX file"):
        read_onnx(bad)
