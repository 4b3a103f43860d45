"""Observers: batches equal the in-memory optimum, the streamed bound holds, hooks agree with
ONNX Runtime's own MinMax calibrator."""


import numpy as np
import pytest
from _fixtures import ocr_model

from qtheory import Quantizer, optimal_clip
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
        if m != "exact":  # (the optimum may put unused codes beyond min x or max x: the zero point is
            # an integer; e.g. 5 codes above max x for rng seed 266, the per-zero-point optimum too)
            assert x.min() - 1e-6 <= r.beta, m
            assert r.alpha <= x.max() * (1 + 2.0**-6), m
    assert (obs.range("max").beta, obs.range("max").alpha) == (float(x.min()), float(x.max()))
    # the exact range and clip are at least as good as every other on the collected data
    best = obs.range("exact").mse
    assert all(best <= obs.range(m).mse * (1 + 1e-12) for m in METHODS)
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


def test_integer_batches_keep_their_values():
    """A uint32 of 2^32 − 1 or an int64 of 2^24 + 1 is not a float32: such batches are kept as
    float64 (they became float32, so ``max`` gave 2^32 and ``exact`` a range with a wrong MSE);
    8- and 16-bit integers are exact in float32 and stay so."""
    for x in (np.array([4294967295, 1, 2], np.uint32), np.array([16777217, 3], np.int64),
              np.array([-32768, 7, 32767], np.int16), np.array([0, 255, 17], np.uint8)):
        ref = x.astype(np.float64)
        obs = Observer(8, "narrow").collect(x)
        assert obs.range("max").alpha == float(np.max(np.abs(ref)))
        r, o = obs.range("exact"), optimal_clip(ref, 8)
        assert (r.alpha, r.mse) == (o.alpha, o.mse)
        assert obs._streams()[0].data().dtype == (np.float32 if x.dtype.itemsize <= 2 else np.float64)


def test_torch_float64_and_integer_tensors_keep_their_values():
    torch = pytest.importorskip("torch")
    for t in (torch.tensor([1.0000000001, 3.0], dtype=torch.float64), torch.tensor([16777217, 3])):
        ref = t.double().numpy()
        r = Observer(8, "narrow").collect(t).range("exact")
        o = optimal_clip(ref, 8)
        assert (r.alpha, r.mse) == (o.alpha, o.mse)


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


def _numpy_upper(stream, q):
    """The streamed bound ``(U, E)`` computed bin by bin in numpy (the module docstring's formulas)."""
    cnt, s1, s2, bmin, bmax = stream.hist
    nz = cnt > 0
    n, a1, a2, lo, hi = cnt[nz].astype(np.float64), s1[nz], s2[nz], bmin[nz], bmax[nz]
    y = q.quantize(a1 / n)
    u = float(np.sum(a2 - 2.0 * y * a1 + y * y * n))
    straddle = q.to_codes(lo) != q.to_codes(hi)
    d = np.maximum(np.abs(lo - y), np.abs(hi - y))
    return u / stream.n, float(np.sum((n * d * d)[straddle])) / stream.n


@pytest.mark.parametrize("grid", ["affine", "narrow", "midrise", "unsigned"])
def test_streamed_bound_kernel_equals_numpy_per_bin(rng, grid):
    """hist_upper (level runs over double-double prefix sums) equals the per-bin numpy sums."""
    obs = Observer(8, grid, max_samples=0, bins=1 << 10)
    for b in _batches(rng, [3000, 500, 4000]):
        obs.collect(b * 3.0)
    s = obs._single
    for bits in (2, 4, 8):
        for beta, alpha in rng.uniform([-1.5, 0.2], [0.0, 30.0], size=(10, 2)):
            q = quantizer_for(beta, alpha, bits, grid)
            u, e = s._upper(q)
            u0, e0 = _numpy_upper(s, q)
            assert u == pytest.approx(u0, rel=1e-12)
            assert e == pytest.approx(e0, rel=1e-12, abs=1e-300)


def test_reservoir_is_the_bottom_keys_of_all_values(rng):
    """The streamed sample is the `reservoir` values with the smallest of the seeded keys, whatever
    the batching (filtered and cut in bulk, not re-partitioned per batch)."""
    batches = _batches(rng, [700, 50, 3000, 1200, 10, 2500])
    obs = Observer(8, max_samples=1000, reservoir=300, seed=5)
    for b in batches:
        obs.collect(b)
    x = np.concatenate([b.ravel() for b in batches])
    keys = np.random.default_rng([5, 0]).random(x.size)  # one key per value, in arrival order
    want = np.sort(x[np.argsort(keys)[:300]])
    np.testing.assert_array_equal(np.sort(obs._single.data()), want)
    assert obs.streamed and obs.n == x.size


def test_kept_batches_are_copies_unless_private(rng):
    """A batch the caller changes afterwards does not change the observer (views are copied)."""
    x = rng.normal(size=(40, 25)).astype(np.float32)
    obs = Observer(8).collect(x)
    per_channel = Observer(8, "narrow", axis=0).collect(x)
    before = obs.range("exact")
    x[:] = 100.0
    after = Observer(8).collect(x.copy() * 0 + np.float32(1))  # (an unrelated observer)
    assert obs.range("max").alpha < 100.0 and per_channel.range("max").alpha.max() < 100.0
    obs._single._exact_cache = None
    assert obs.range("exact") == before
    assert after.range("max").alpha == 1.0


def _cls_tensors(names_wanted=4):
    """Real activations of the PP-OCR direction classifier on three skimage crops: the model as
    ONNX Runtime's quantizer sees it, the feeds and ``{tensor: values of each feed}`` computed by
    ONNX Runtime directly."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    skd = pytest.importorskip("skimage.data")
    from qtheory.models.export import ort_calibration_tensors, prepare_for_ort

    path = _ocr("ch_ppocr_mobile_v2.0_cls_infer.onnx")
    img = skd.astronaut().astype(np.float32) / 255.0
    feeds = [{"x": ((img[90 * i:90 * i + 48, 50 * i:50 * i + 192].transpose(2, 0, 1)[None] - 0.5) / 0.5)
              .astype(np.float32)} for i in range(3)]
    m = prepare_for_ort(path)
    names = ort_calibration_tensors(m)
    names = [names[i] for i in np.linspace(0, len(names) - 1, names_wanted).round().astype(int)]
    aug = onnx.ModelProto()
    aug.CopyFrom(m)
    for n in names:
        aug.graph.output.append(onnx.ValueInfoProto(name=n))
    so = ort.SessionOptions()  # (unoptimised, as onnx_observers runs it: fused kernels round differently)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(aug.SerializeToString(), so, providers=["CPUExecutionProvider"])
    vals = {n: [] for n in names}
    for f in feeds:
        for n, v in zip(names, sess.run(names, f), strict=True):
            vals[n].append(v)
    return m, feeds, vals


def test_batched_observers_equal_optimal_clip_on_real_activations():
    """In memory the observer claims exactness: its exact range of real classifier activations,
    collected feed by feed by onnx_observers, is optimal_clip's of the concatenated values, and
    its MSE that optimum's."""
    model, feeds, vals = _cls_tensors()
    obs = onnx_observers(model, feeds, tensors=list(vals))
    for name, parts in vals.items():
        x = np.concatenate([p.ravel() for p in parts])
        assert x.dtype == np.float32
        r = obs[name].range("exact")
        assert not r.streamed and obs[name].n == x.size
        if x.max() <= 0:
            continue
        ref = optimal_clip(x, 8, grid="affine", range="asymmetric")
        assert (r.beta, r.alpha) == (ref.beta, ref.alpha), name
        assert r.mse == pytest.approx(ref.mse, rel=1e-12)


def test_streamed_real_activations_within_the_bound():
    """Streamed (max_samples below one feed), the range of real activations is within its bound
    of the in-memory optimum: MSE(q̂) <= U(q̂) and MSE(q̂) <= MSE(q*) + E(q*)."""
    model, feeds, vals = _cls_tensors()
    obs = onnx_observers(model, feeds, tensors=list(vals), max_samples=1000, bins=1 << 12)
    for name, parts in vals.items():
        x = np.concatenate([p.ravel() for p in parts])
        if x.max() <= 0:
            continue
        r = obs[name].range("exact")
        assert r.streamed
        ref = optimal_clip(x, 8, grid="affine", range="asymmetric")
        prep = EmpiricalMSE(x)
        true_hat = sum(prep.mse_quantizer(quantizer_for(r.beta, r.alpha, 8, "affine")))
        e_star = obs[name]._single._upper(quantizer_for(ref.beta, ref.alpha, 8, "affine"))[1]
        # (U comes from per-bin float64 sums of x and x²: its rounding is relative to E[x²], not to
        # the MSE, which is 1e-5 of it on the 8-bit grid)
        tol = 1e-12 * float(np.mean(np.square(x, dtype=np.float64)))
        assert true_hat <= r.mse + tol
        assert true_hat <= ref.mse + e_star + tol


@pytest.mark.parametrize("grid", ["affine", "narrow", "int", "midrise", "unsigned", "uint"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_streamed_scan_parameters_are_the_quantizers(rng, grid, bits):
    """The streamed search evaluates a scan's quantizers from vectorised parameters: they are
    the fields of the Quantizer objects the search stands for."""
    from qtheory.models.observers import _scan_params

    top = 2**bits - 1
    values = np.exp(rng.uniform(-30.0, 30.0, size=40))
    zs = [int(z) for z in rng.integers(0, top, size=5)] + [0, top - 1] if grid == "affine" else [None]
    for z in zs:
        scale, offset, qmin, qmax = (np.broadcast_to(a, values.shape) for a in _scan_params(bits, grid, values, z))
        for i, v in enumerate(values):
            q = (Quantizer(bits, (top - z) * v, "affine", beta=-z * v) if grid == "affine"
                 else Quantizer(bits, v, grid))
            assert (q.scale, q.offset, q.qmin, q.qmax) == (scale[i], offset[i], qmin[i], qmax[i])


def test_all_non_positive_tensor_range_and_mse(rng):
    """An all-non-positive tensor is searched mirrored: alpha is 0.0 (it was -0.0) and the MSE is
    the mirrored optimum's, equal to a direct quantization (it was 2e-29 for data exactly on the
    grid, from an MSE recomputed at a tiny positive alpha)."""
    from fractions import Fraction

    for x in (np.array([-1.0, -2.0, -0.5]), -rng.random(1000), -rng.gamma(2.0, size=3000)):
        o = Observer(8)
        o.collect(x)
        r = o.range("exact")
        assert r.alpha == 0.0 and str(r.alpha) == "0.0"
        s = -r.beta / 255
        q = np.clip(np.round(x / s), -255, 0) * s
        want = float(sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(x, q, strict=True)) / x.size)
        assert r.mse == pytest.approx(want, rel=1e-12, abs=0.0)
        assert (-r.beta, r.alpha) == (optimal_clip(-x, 8, grid="affine", range="asymmetric").alpha, 0.0)
