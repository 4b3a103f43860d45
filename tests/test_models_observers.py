"""Observers: batches equal the in-memory optimum, the streamed bound holds, hooks agree with
ONNX Runtime's own MinMax calibrator."""


import numpy as np
import pytest
from _fixtures import ocr_model

from qtheory import optimal_clip
from qtheory.empirical import EmpiricalMSE
from qtheory.models.observers import (
    METHODS,
    Observer,
    clip_range,
    onnx_observers,
    quantizer_for,
    torch_observers,
)


def _hardswish_like(rng, n):
    """Activations with the small negative tail of hardswish (min -0.375)."""
    z = rng.laplace(0.3, 1.0, size=n)
    return (z * np.clip(z + 3.0, 0.0, 6.0) / 6.0).astype(np.float32)


def _batches(rng, sizes):
    return [_hardswish_like(rng, s).reshape(-1, 10) for s in sizes]


@pytest.mark.parametrize(("grid", "bits"), [("narrow", 4), ("affine", 4), ("affine", 8)])
def test_batched_observer_equals_in_memory_optimum(rng, grid, bits):
    batches = _batches(rng, [500, 1230, 70, 900, 300])
    obs = Observer(bits, grid)
    for b in batches:
        obs.collect(b)
    x = np.concatenate([b.ravel() for b in batches]).astype(np.float64)
    r = obs.range("exact")
    assert not r.streamed and obs.n == x.size
    if grid == "affine":
        ref = optimal_clip(x, bits, grid="affine", range="asymmetric")
        assert (r.beta, r.alpha) == (ref.beta, ref.alpha)
    else:
        ref = optimal_clip(x, bits, grid=grid)
        assert (r.beta, r.alpha) == (-ref.alpha, ref.alpha)
    assert r.mse == pytest.approx(ref.mse, rel=1e-12)


@pytest.mark.parametrize(("grid", "bits"), [("narrow", 4), ("narrow", 8), ("affine", 4), ("affine", 8)])
def test_streamed_exact_within_its_bound(rng, grid, bits):
    """MSE(q̂) <= MSE(q*) + E(q*) (module docstring), with q* the in-memory optimum."""
    batches = _batches(rng, [4000] * 5)
    obs = Observer(bits, grid, max_samples=3000, bins=1 << 12)
    for b in batches:
        obs.collect(b)
    r = obs.range("exact")
    assert r.streamed
    x = np.concatenate([b.ravel() for b in batches])
    prep = EmpiricalMSE(x)
    if grid == "affine":
        ref = optimal_clip(x.astype(np.float64), bits, grid="affine", range="asymmetric")
        q_star = quantizer_for(ref.beta, ref.alpha, bits, grid)
    else:
        ref = optimal_clip(x.astype(np.float64), bits, grid=grid)
        q_star = quantizer_for(-ref.alpha, ref.alpha, bits, grid)
    true_hat = sum(prep.mse_quantizer(quantizer_for(r.beta, r.alpha, bits, grid)))
    u_hat = r.mse
    e_star = obs._single._upper(q_star)[1]
    assert true_hat <= u_hat * (1 + 1e-12)
    assert true_hat <= (ref.mse + e_star) * (1 + 1e-12)
    if grid != "affine":  # (the affine (β, α) search of optimal_clip is a scan, not a proven optimum:
        # the streamed search sometimes finds a slightly lower MSE)
        assert ref.mse * (1 - 1e-12) <= true_hat


def test_streamed_upper_and_lower_bounds_bracket_the_exact_mse(rng):
    batches = _batches(rng, [3000] * 4)
    obs = Observer(4, "affine", max_samples=100, bins=1 << 10)
    for b in batches:
        obs.collect(b)
    x = np.concatenate([b.ravel() for b in batches])
    prep = EmpiricalMSE(x)
    for beta, alpha in rng.uniform([-0.5, 0.5], [0.0, 8.0], size=(20, 2)):
        q = quantizer_for(beta, alpha, 4, "affine")
        u, e = obs._single._upper(q)
        true = sum(prep.mse_quantizer(q))
        assert u - e <= true * (1 + 1e-12) and true <= u * (1 + 1e-12)


def test_histogram_merge_is_exact(rng):
    """Growing batches force bin merges; the sums equal one histogram at the final width."""
    batches = [(rng.normal(size=2000) * 4.0**k).astype(np.float32) for k in range(4)]
    grown = Observer(8, max_samples=0, bins=256)
    for b in batches:
        grown.collect(b)
    once = Observer(8, max_samples=0, bins=256)
    once.collect(np.concatenate(batches))
    g, o = grown._single, once._single
    assert g.e == o.e
    np.testing.assert_array_equal(g.hist[0], o.hist[0])
    np.testing.assert_allclose(g.hist[1], o.hist[1], rtol=1e-12, atol=1e-12 * np.abs(o.hist[1]).max())
    np.testing.assert_allclose(g.hist[2], o.hist[2], rtol=1e-12)
    np.testing.assert_array_equal(g.hist[3][o.hist[0] > 0], o.hist[3][o.hist[0] > 0])
    np.testing.assert_array_equal(g.hist[4][o.hist[0] > 0], o.hist[4][o.hist[0] > 0])


def test_every_method_gives_an_asymmetric_range(rng):
    x = _hardswish_like(rng, 20_000)
    obs = Observer(8).collect(x)
    for m in METHODS:
        r = obs.range(m)
        assert r.beta < 0 < r.alpha, m
        if m != "exact":  # (the optimum may put unused codes below min x: the zero point is an integer)
            assert x.min() - 1e-6 <= r.beta, m
        assert r.alpha <= x.max() * (1 + 2.0**-6), m
    assert (obs.range("max").beta, obs.range("max").alpha) == (float(x.min()), float(x.max()))
    # on a symmetric grid the exact clip is at least as good as every other on the collected data
    # (not asserted for the affine grid: optimal_clip's (β, α) search is a scan — see
    # test_streamed_exact_within_its_bound)
    sym = Observer(8, "narrow").collect(x)
    best = sym.range("exact").mse
    assert all(best <= sym.range(m).mse * (1 + 1e-12) for m in METHODS)


def test_per_channel_axis(rng):
    xs = [rng.normal(size=(4, 3, 5)) * np.array([1.0, 2.0, 4.0])[None, :, None] for _ in range(3)]
    obs = Observer(4, "narrow", axis=1)
    for x in xs:
        obs.collect(x)
    r = obs.range("exact")
    full = np.concatenate([np.moveaxis(x, 1, 0).reshape(3, -1) for x in xs], axis=1)
    for c in range(3):
        assert r.alpha[c] == -clip_range(full[c], 4, "exact", "narrow")[0]
    with pytest.raises(ValueError, match="3 channels"):
        obs.collect(np.zeros((2, 4, 5)))


def test_observer_validation():
    with pytest.raises(ValueError, match="'grid' parameter of Observer"):
        Observer(8, "float")
    with pytest.raises(ValueError, match="collect"):
        Observer().range("max")
    with pytest.raises(ValueError, match="finite"):
        Observer().collect([1.0, np.nan])
    with pytest.raises(ValueError, match="'method' parameter of Observer.range"):
        Observer().collect([1.0]).range("kl-divergence")


def test_torch_hooks_see_the_module_outputs():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Hardswish(), torch.nn.Conv2d(4, 2, 1))
    batches = [torch.randn(2, 3, 8, 8) for _ in range(3)]
    obs = torch_observers(net, batches, modules=["1", "2"])
    with torch.no_grad():
        h = torch.cat([net[1](net[0](b)) for b in batches])
    r = obs["1"].range("max")
    assert (r.beta, r.alpha) == (min(float(h.min()), 0.0), float(h.max()))
    assert obs["1"].n == h.numel()
    ins = torch_observers(net, batches, modules=["2"], inputs=True)
    assert ins["2"].range("max").alpha == r.alpha


_ocr = ocr_model


def test_onnx_observers_equal_onnxruntime_minmax_calibrator(tmp_path):
    pytest.importorskip("onnxruntime")
    skd = pytest.importorskip("skimage.data")
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    from qtheory.models.export import prepare_for_ort

    path = _ocr("ch_ppocr_mobile_v2.0_cls_infer.onnx")
    img = skd.coffee().astype(np.float32) / 255.0
    feeds = [{"x": ((img[60 * i:60 * i + 48, 80 * i:80 * i + 192].transpose(2, 0, 1)[None] - 0.5) / 0.5)
              .astype(np.float32)} for i in range(3)]
    obs = onnx_observers(path, feeds)
    prepared = tmp_path / "prepared.onnx"
    import onnx

    onnx.save(prepare_for_ort(path), prepared)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    op_types = sorted(set(QDQRegistry) | set(QLinearOpsRegistry))  # what quantize_static passes
    cal = create_calibrator(prepared, op_types, augmented_model_path=str(tmp_path / "aug.onnx"),
                            calibrate_method=CalibrationMethod.MinMax)
    cal.collect_data(Reader())
    ranges = cal.compute_data()
    assert set(obs) == set(ranges.data)
    for name, o in obs.items():
        lo, hi = (float(np.ravel(v)[0]) for v in ranges.data[name].range_value)
        r = o.range("max")
        assert (r.beta, r.alpha) == (min(lo, 0.0), max(hi, 0.0)), name
