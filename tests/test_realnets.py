"""The realnets reproduction's building blocks on the real fixtures (reduced sizes).

Checked against independent references: the original ONNX graph (Constant weights, unfolded BN),
ONNX Runtime's own QLinearConv kernel and calibrators, and the exact optimum as an in-sample floor.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")

HERE = Path(__file__).resolve().parents[1] / "paper_repro" / "realnets"


def _load(name):
    if name in sys.modules:
        return sys.modules[name]
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


nets = _load("realnets_nets")
A = _load("realnets_analysis")

pytestmark = pytest.mark.skipif(not nets.fixtures_available(),
                                reason="rapidocr-onnxruntime / facenet-pytorch fixtures not installed")


@pytest.fixture(scope="module")
def cls_model():
    return nets.prepare(nets.CLS)


@pytest.fixture(scope="module")
def cls_x():
    return nets.cls_inputs(nets.CALIB_SOURCES[:4], 2, 0), nets.cls_inputs(nets.HELD_SOURCES[:2], 2, 1)


def test_prepare_moves_constants_and_folds_bn(cls_model, cls_x):
    import onnx

    ops = {n.op_type for n in cls_model.graph.node}
    assert "Constant" not in ops and "BatchNormalization" not in ops
    assert len(nets.conv_layers(cls_model)) == 53
    orig = onnx.load(str(nets.onnx_path(nets.CLS)))
    assert sum(n.op_type == "Constant" for n in orig.graph.node) > 100  # the weights really were Constant nodes
    x = cls_x[0]
    a = next(iter(nets.Runner(orig)(x).values()))
    b = next(iter(nets.Runner(cls_model)(x).values()))
    assert np.max(np.abs(a - b)) < 1e-5  # softmax probabilities, float32 re-association only


def test_mtcnn_state_dicts_read_with_weights_only():
    layers = [lay for n in nets.MTCNN for lay in nets.mtcnn_layers(n)]
    kinds = {lay["kind"] for lay in layers}
    assert {"3x3", "linear"} <= kinds
    assert all(np.all(np.isfinite(lay["w"])) for lay in layers)


def test_exact_is_the_in_sample_floor_for_every_weight_calibrator(cls_model):
    layers = nets.conv_layers(cls_model)
    for lay in (layers[1], layers[2]):  # a 1x1 and a depthwise layer
        rows = A.weight_rows("cls", lay, bits=(4, 8), channel=True, max_channels=4)
        loss = np.array([r["loss_vs_exact_db"] for r in rows])
        assert np.all(loss >= -1e-9), min(loss)
        assert any(r["method"] == "max" and r["loss_vs_exact_db"] > 0.01 for r in rows)


def test_exact_affine_beats_every_activation_calibrator_in_sample(cls_model, cls_x):
    from qtheory.empirical import EmpiricalMSE

    t = "hardswish_0.tmp_0"  # signed: hardswish's tail reaches -0.375
    x = nets.Runner(cls_model, [t])(cls_x[0])[t].ravel().astype(np.float64)[::7]
    assert x.min() < 0 < x.max()
    prep = EmpiricalMSE(x)
    ranges = A.qtheory_ranges(x, 8)
    mse = {m: float(prep.error_sums([A.affine_for(lo, hi)]).sum()) / prep.n for m, (lo, hi) in ranges.items()}
    assert all(mse["exact"] <= v * (1 + 1e-12) for v in mse.values()), mse
    assert ranges["exact"][0] < 0  # asymmetric: a real negative lower clip


def test_ort_entropy_with_default_bins_is_minmax(cls_model, cls_x):
    L = nets.conv_layers(cls_model)
    tensors = [L[1]["input"], L[5]["input"]]
    x = cls_x[0]
    r = A.ort_ranges(cls_model, tensors, [x[:4], x[4:]], methods=("MinMax", "Entropy"))
    vals = nets.Runner(cls_model, tensors)(x)
    for t in tensors:
        assert r["Entropy"][t] == r["MinMax"][t]
        assert r["MinMax"][t] == (min(float(vals[t].min()), 0.0), float(vals[t].max()))


def _x86_u8s8_kernel() -> str | None:
    """Which uint8 x int8 arithmetic ONNX Runtime's MLAS uses on this CPU, from the CPU's flags:
    "exact" (VNNI's vpdpbusd, or a non-x86 CPU), "int16-pairs" (x86 with AVX2 but no VNNI:
    vpmaddubsw adds each pair of products in int16 with saturation), None when the flags cannot
    be read (x86 without /proc/cpuinfo)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return "exact"
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags |= set(line.partition(":")[2].split())
    if not flags:
        return None
    if flags & {"avx512_vnni", "avx_vnni"}:
        return "exact"
    return "int16-pairs" if "avx2" in flags else None


def test_intconv_reproduces_ort_qlinearconv_bit_for_bit(cls_model, cls_x):
    """7-bit weights (reduce_range=True, codes in [-64, 64]): no pair u8·s8 + u8·s8 can leave int16
    (2·255·64 = 32,640), so ONNX Runtime's default kernel is the exact int32 convolution on every CPU."""
    xc, xh = cls_x
    q = A.quantize_ort(cls_model, [xc[:4], xc[4:]], fmt="QOperator", reduce_range=True)
    d = A.qlinearconv_check(q, xh[:1], requant="fbgemm")
    c = d[d.outputs > 0]
    assert len(c) >= 50 and c.outputs.sum() > 100_000
    assert c.w_min.min() >= -64 and c.w_max.max() <= 64 and c.w_max.max() == 64
    assert int(c.equal.sum()) == int(c.outputs.sum())
    t = A.qlinearconv_check(q, xh[:1], requant="tflite")
    assert t[t.outputs > 0].max_lsb.max() <= 1  # fixed point differs from ORT by at most one LSB


def test_ort_qlinearconv_with_8bit_weights_is_exact_or_int16_saturated(cls_model, cls_x):
    """Full int8 weights: ONNX Runtime's QLinearConv is the exact int32 convolution with VNNI (and
    off x86); on x86 without VNNI it is, bit for bit, the int16 pair-saturating model
    (A.qlinearconv_int16_check), which is not exact on this network."""
    xc, xh = cls_x
    q = A.quantize_ort(cls_model, [xc[:4], xc[4:]], fmt="QOperator")
    d = A.qlinearconv_check(q, xh[:1], requant="fbgemm")
    c = d[d.outputs > 0]
    assert c.w_min.min() == -127 or c.w_max.max() == 127  # 8-bit weights really use the full range
    e = A.qlinearconv_int16_check(q, xh[:1])
    assert len(e) == len(d) and e.outputs.sum() > 100_000
    assert e.saturated_pairs.sum() > 0 and e.differs_from_exact.sum() > 0  # the two models do differ here
    exact = int(c.equal.sum()) == int(c.outputs.sum())
    int16 = int(e.equal.sum()) == int(e.outputs.sum())
    kernel = _x86_u8s8_kernel()
    if kernel == "exact":
        assert exact, d[d.equal < d.outputs]
    elif kernel == "int16-pairs":
        assert int16, e[e.equal < e.outputs]
    else:  # x86 flags unreadable: ORT must still be one of the two models on every output
        assert exact or int16, (d[d.equal < d.outputs], e[e.equal < e.outputs])


def test_fake_quant_graph_matches_numpy_quantizer(cls_model, cls_x):
    t = nets.conv_layers(cls_model)[3]["input"]
    x = cls_x[1]
    ref = nets.Runner(cls_model, [t])(x)[t].astype(np.float64)
    lo, hi = float(ref.min()), float(ref.max())
    for bits in (4, 8):
        s, z = A.scale_zp(lo * 0.5, hi * 0.5, bits)
        fq = nets.fake_quant_model(cls_model, {t: (s, z, bits)})
        # the fake-quantized tensor is the input of the next node: read it from the new graph
        name = t.replace("/", "_") + "_fq_out"
        got = nets.Runner(fq, [name])(x)[name].astype(np.float64)
        want = (np.clip(np.round(ref.astype(np.float32) / np.float32(s)) + z, 0, 2**bits - 1) - z) * np.float32(s)
        assert np.max(np.abs(got - want)) <= 1e-6 * max(abs(lo), hi)


def test_repro_reader_agrees_with_qtheory_models_reader():
    """Two independent readers (the repro's ONNX surgery and qtheory.models.read_tensors) give the
    same BN-folded conv weights for both networks."""
    readers = pytest.importorskip("qtheory.models.readers")
    for net in (nets.CLS, nets.DET):
        layers = nets.conv_layers(nets.prepare(net))
        theirs = {t.name: t for t in readers.read_tensors(str(nets.onnx_path(net)), fold_bn=True)
                  if t.role == "conv_weight"}
        for lay in layers:
            a = theirs[lay["weight"]].array()
            assert a.shape == lay["w"].shape
            assert np.max(np.abs(a - lay["w"])) <= 1e-6 * np.max(np.abs(lay["w"]))


def test_exact_affine_agrees_with_qtheory_models_observer(cls_model, cls_x):
    """The repro's exact range and qtheory.models' exact asymmetric range (the observer's entry to the same
    proof) reach the same MSE, and no (β, α) on a 2-D grid around it does better."""
    observers = pytest.importorskip("qtheory.models.observers")
    from qtheory.empirical import EmpiricalMSE

    t = "hardswish_0.tmp_0"
    x = nets.Runner(cls_model, [t])(cls_x[0])[t].ravel().astype(np.float64)[::7]
    prep = EmpiricalMSE(x)
    mine = A.exact_affine(prep, float(x.min()), float(x.max()), 8)
    theirs = observers.clip_range(x, 8, "exact", grid="affine")
    m1, m2 = (float(prep.error_sums([A.affine_for(*r)]).sum()) / prep.n for r in (mine, theirs))
    assert abs(m1 / m2 - 1.0) < 1e-12, (mine, theirs, m1, m2)
    grid = [A.affine_for(mine[0] * u, mine[1] * v) for u in np.linspace(0.8, 1.2, 21) for v in np.linspace(0.8, 1.2, 21)]
    assert float(prep.error_sums(grid).sum(axis=1).min()) / prep.n >= m1 * (1 - 1e-12)


def test_channel_clip_equals_the_calibrate_clip():
    """The per-channel table's direct clip functions give calibrate's clips, bit for bit."""
    rng = np.random.default_rng(0)
    rows = [rng.laplace(size=27), rng.normal(size=500) * 3, np.r_[rng.normal(size=100), 40.0],
            rng.standard_t(3, size=2000) * 1e-3]
    for r in rows:
        for b in (4, 8):
            for m in A.CHANNEL_METHODS[:-1]:
                assert A.channel_clip(r, b, m, "narrow") == A.clip(r, b, m, "narrow"), (m, b)
