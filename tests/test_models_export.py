"""Export against the runtimes themselves: ONNX Runtime's compute_scale_zp, its calibration cache,
quantize_static's QDQ scales on a real model, and torch.ao's observers."""


import numpy as np
import pytest
from _fixtures import ocr_model

from qtheory import Quantizer
from qtheory.models import export

pytest.importorskip("onnxruntime")


_ocr = ocr_model


def _ranges(rng, n=400):
    lo = -np.abs(rng.laplace(size=n)) * (rng.random(n) < 0.8)
    hi = np.abs(rng.laplace(size=n)) * (rng.random(n) < 0.9)
    lo[:3], hi[:3] = [0.0, -1.0, -0.375], [0.0, 0.0, 6.0]  # degenerate, all-negative, hardswish
    return lo.astype(np.float32), hi.astype(np.float32)


@pytest.mark.parametrize("qtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("reduce_range", [False, True])
def test_ort_qparams_equal_compute_scale_zp(rng, qtype, symmetric, reduce_range):
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

    t = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8, "uint16": TensorProto.UINT16,
         "int16": TensorProto.INT16}[qtype]
    qmin, qmax = get_qmin_qmax_for_qType(t, reduce_range=reduce_range, symmetric=symmetric)
    lo, hi = _ranges(rng)
    s, z = export.ort_qparams(lo, hi, qtype, symmetric=symmetric, reduce_range=reduce_range)
    for i in range(lo.size):
        zr, sr = compute_scale_zp(np.array(lo[i]), np.array(hi[i]), qmin, qmax, symmetric)
        assert s[i] == sr and s.dtype == np.float32, (lo[i], hi[i])
        assert z[i] == zr and z.dtype == zr.dtype, (lo[i], hi[i])


def test_ort_range_inverts_and_matches_the_affine_grid(rng):
    lo, hi = _ranges(rng)
    keep = (hi > 0) & (lo < 0)
    s, z = export.ort_qparams(lo[keep], hi[keep])
    b, a = export.ort_range(s, z)
    s2, z2 = export.ort_qparams(b, a)
    np.testing.assert_array_equal(z2, z)
    np.testing.assert_allclose(s2, s, rtol=2e-7)
    # qtheory's affine grid on [β, α] has ORT's levels (scale (α−β)/255, zero point round(−β/s))
    for i in range(20):
        q = Quantizer(8, float(hi[keep][i]), "affine", beta=float(lo[keep][i]))
        levels = (np.arange(256) - float(z[i])) * float(s[i])
        np.testing.assert_allclose(q.levels, levels, rtol=1e-6, atol=1e-6 * float(s[i]) * 255)


def test_calibration_cache_round_trip(tmp_path):
    from onnxruntime.quantization.calibrate import CalibrationMethod, load_tensors_data

    ranges = {"a": (-0.375, 6.0), "b": (0.0, 1.5), "c/d:0": (-2.0, 2.0)}
    p = export.write_ort_calibration_cache(ranges, tmp_path / "sub" / "cache.json")
    td = load_tensors_data(p)
    assert td.calibration_method == CalibrationMethod.MinMax
    for k, (b, a) in ranges.items():
        lo, hi = (float(np.ravel(v)[0]) for v in td.data[k].range_value)
        assert (lo, hi) == (np.float32(b), np.float32(a))
    with pytest.raises(ValueError, match="beta <= alpha"):
        export.write_ort_calibration_cache({"x": (1.0, -1.0)}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_quantize_onnx_qdq_scales_are_qtheorys(tmp_path):
    """One call on the real classifier (Constant-node weights, opset 11): the QDQ model carries
    exactly the scales and zero points of qtheory's activation ranges and weight clips."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    skd = pytest.importorskip("skimage.data")
    from qtheory.models import fold_batchnorm, onnx_observers, read_onnx

    path = _ocr("ch_ppocr_mobile_v2.0_cls_infer.onnx")
    model = fold_batchnorm(onnx.load(str(path)))
    assert model.opset_import[0].version < 13
    img = skd.astronaut().astype(np.float32) / 255.0
    feeds = [{"x": ((img[100 * i:100 * i + 48, 40 * i:40 * i + 192].transpose(2, 0, 1)[None] - 0.5) / 0.5)
              .astype(np.float32)} for i in range(3)]
    obs = onnx_observers(model, feeds)
    ranges = {n: (o.range("percentile").beta, o.range("percentile").alpha) for n, o in obs.items()}
    clips = {}
    for t in read_onnx(model):
        if t.role == "conv_weight":
            w = np.abs(t.array()).reshape(t.shape[0], -1)
            clips[t.name] = np.quantile(w, 0.999, axis=1)  # any per-channel clips: they must arrive as given
    out = export.quantize_onnx(model, tmp_path / "qdq.onnx", ranges, clips)
    q = onnx.load(str(out))
    assert max(o.version for o in q.opset_import if o.domain in ("", "ai.onnx")) >= 13
    scales = export.qdq_scales(q)
    n_act = 0
    for name, (b, a) in ranges.items():
        if name in scales:
            s, z = export.ort_qparams(b, a)
            assert scales[name][0] == s and scales[name][1] == z, name
            n_act += 1
    assert n_act >= len(ranges) // 2
    for name, alpha in clips.items():
        s, z = export.ort_qparams(-alpha, alpha, "int8", symmetric=True)
        np.testing.assert_array_equal(scales[name][0], s)
        np.testing.assert_array_equal(scales[name][1], z)
        assert scales[name][1].dtype == np.int8
    # the QDQ model runs and agrees with the float model on the class of each crop (int8 kernels
    # that accumulate exactly: on x86 CPUs without VNNI, ORT's default uint8 x int8 kernels add
    # pairs of products in int16 with saturation, which can flip this 2-class output)
    f = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    so = ort.SessionOptions()
    so.add_session_config_entry("session.x64quantprecision", "1")
    g = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    for feed in feeds:
        assert np.argmax(f.run(None, feed)[0]) == np.argmax(g.run(None, feed)[0])
    # a missing range is named, not silently replaced by ORT's defaults
    some = dict(list(ranges.items())[1:])
    with pytest.raises(ValueError, match="missing"):
        export.quantize_onnx(model, tmp_path / "qdq2.onnx", some, clips)


def test_torch_qparams_and_fake_quant_equal_qtheory(rng):
    torch = pytest.importorskip("torch")
    x = rng.laplace(size=5000).astype(np.float32)
    b, a = -0.375, 3.2
    s_t, z_t = export.torch_qparams(b, a)
    s_o, z_o = export.ort_qparams(b, a)
    assert float(s_t) == pytest.approx(float(s_o), rel=1e-7) and int(z_t) == int(z_o)
    fq = export.torch_fake_quant(b, a)
    y = fq(torch.from_numpy(x)).numpy()
    q = Quantizer(8, (255 - int(z_o)) * float(s_t), "affine", beta=-int(z_o) * float(s_t))
    np.testing.assert_allclose(y, q.quantize(x), rtol=0, atol=float(s_t) * 1e-5)
    fq(torch.from_numpy(10 * x))  # the observer is disabled: the range stays
    assert float(fq.scale) == float(s_t)
    # per channel, symmetric int8 weights
    alpha = np.array([0.5, 1.0, 2.0], np.float32)
    s_c, z_c = export.torch_qparams(-alpha, alpha, "qint8", axis=0, symmetric=True)
    s_w, z_w = export.ort_qparams(-alpha, alpha, "int8", symmetric=True)
    # torch.ao: max|x| / ((qmax − qmin)/2) = α/127.5 on [−128, 127]; ORT: α/127 on [−127, 127]
    np.testing.assert_allclose(s_c.numpy() * 127.5, alpha, rtol=1e-6)
    np.testing.assert_allclose(s_w * 127.0, alpha, rtol=1e-6)
    assert np.all(z_c.numpy() == 0) and np.all(z_w == 0)


@pytest.mark.slow  # the only check of the quant_pre_process path (~15 s on 2 idle cores)
def test_quantize_onnx_after_quant_pre_process(tmp_path):
    """quant_pre_process changes the tensors to calibrate (value infos, fusions): observing the
    same prepared graph gives every range quantize_static needs."""
    onnx = pytest.importorskip("onnx")
    skd = pytest.importorskip("skimage.data")
    from qtheory.models import onnx_observers

    path = _ocr("ch_ppocr_mobile_v2.0_cls_infer.onnx")
    img = skd.camera().astype(np.float32) / 255.0
    feeds = [{"x": ((np.stack([img[200:248, 100:292]] * 3)[None] - 0.5) / 0.5).astype(np.float32)}]
    plain = onnx_observers(path, feeds)
    obs = onnx_observers(path, feeds, preprocess=True)
    assert set(obs) != set(plain)
    ranges = {n: (o.range("max").beta, o.range("max").alpha) for n, o in obs.items()}
    out = export.quantize_onnx(path, tmp_path / "q.onnx", ranges, preprocess=True)
    scales = export.qdq_scales(onnx.load(str(out)))
    hits = [n for n in ranges if n in scales]
    assert len(hits) >= len(ranges) // 2
    for n in hits:
        assert scales[n][0] == export.ort_qparams(*ranges[n])[0]


@pytest.mark.parametrize("call,name", [
    (lambda: export.ort_range(np.nan, 0), "scale"),
    (lambda: export.ort_range(-1.0, 0), "scale"),
    (lambda: export.ort_range(0.1, 300), "zero_point"),  # (a uint8 zero point out of range: a range without 0)
    (lambda: export.ort_range(0.1, 2.5), "zero_point"),
    (lambda: export.ort_qparams([1.0, 2.0], [3.0, 4.0, 5.0]), "alpha"),  # (numpy's broadcast message)
    (lambda: export.ort_qparams(2.0, 1.0), "beta"),
])
def test_export_helpers_reject_bad_ranges(call, name):
    """Bad ranges and quantization parameters name the parameter (they passed NaN, negative or
    inconsistent values through, or raised numpy's messages)."""
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        call()


@pytest.mark.parametrize("beta,alpha,name", [(np.nan, 1.0, "alpha"), (-1.0, np.inf, "alpha"), (-1.0, 1e39, "alpha"),
                                             (2.0, 1.0, "beta")])
def test_torch_qparams_rejects_bad_ranges(beta, alpha, name):
    """NaN and ranges beyond float32 gave NaN or inf scales, beta > alpha torch's bare AssertionError."""
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        export.torch_qparams(beta, alpha)
