"""qtheory.intconv against PyTorch's quantized conv2d on the fbgemm engine (optional torch extra).

``requant="fbgemm"`` must be bit-exact for regular (non-depthwise) convolutions: per-tensor and
per-channel weights, float bias or none, fused ReLU, stride/padding/dilation/groups. The other
modes differ from fbgemm by at most one LSB; the fractions are reported by paper_repro/intconv.

PyTorch's own output depends on the CPU's fbgemm code path, in two ways these tests account for:

* Without VNNI (plain AVX2/AVX512), fbgemm adds u8*i8 products pairwise in saturating int16
  (``vpmaddubsw``), which is why PyTorch's x86 observers default to ``reduce_range``. qtheory models
  the exact int32 accumulation, so on such a CPU the comparison is skipped (a probe decides).
* The float32 requantisation is evaluated in a CPU-dependent order (fused multiply-add or not).
  An output whose exact value lies within float32 rounding error of a rounding tie can then
  differ by one LSB. ``assert_fbgemm_equal`` allows exactly that, and nothing else.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qtheory import Quantizer  # noqa: E402
from qtheory.intconv import conv2d, per_channel, storage_zero_point  # noqa: E402

pytestmark = pytest.mark.torch


def torch_qconv(x, w, bias_f, xq, wq, yq, stride, padding, dilation, groups, relu=False):
    """PyTorch fbgemm quantized conv on the same stored integers and scales."""
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # quantized-tensor deprecation notice
        tx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), xq.scale, storage_zero_point(xq, "uint8"))
        if isinstance(wq, Quantizer):
            tw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), wq.scale, 0)
        else:
            tw = torch._make_per_channel_quantized_tensor(
                torch.from_numpy(w), torch.tensor([q.scale for q in wq], dtype=torch.float64),
                torch.zeros(len(wq), dtype=torch.long), 0)
        tb = None if bias_f is None else torch.from_numpy(bias_f)
        packed = torch.ops.quantized.conv2d_prepack(tw, tb, list(stride), list(padding), list(dilation), groups)
        op = torch.ops.quantized.conv2d_relu if relu else torch.ops.quantized.conv2d
        out = op(tx, packed, yq.scale, storage_zero_point(yq, "uint8"))
    return out.int_repr().numpy()


def _saturates_int16_pairs() -> bool:
    """True if this CPU's fbgemm path saturates u8*i8 pair sums (no VNNI)."""
    xq, wq = Quantizer(8, 255.0, grid="affine", beta=0.0), Quantizer(8, 127.0, grid="narrow")
    yq = Quantizer(8, 255 * 2.0**14 * 1.1, grid="affine", beta=0.0)
    x, w = np.full((1, 64, 4, 4), 255, np.uint8), np.full((8, 64, 1, 1), 127, np.int8)
    want = conv2d(x, w, None, x_quant=xq, w_quant=wq, out_quant=yq, requant="fbgemm")
    return not np.array_equal(torch_qconv(x, w, None, xq, wq, yq, (1, 1), (0, 0), (1, 1), 1), want)


@pytest.fixture(scope="module", autouse=True)
def _exact_int32_accumulation():
    if _saturates_int16_pairs():
        pytest.skip("this CPU's fbgemm path (no VNNI) saturates u8*i8 pair sums to int16; "
                    "qtheory models exact int32 accumulation")


def assert_fbgemm_equal(got, want, x, w, bias_f, xq, wq, yq, s, p, d, g):
    """``got == want`` except, by one LSB, where the exact requantised value is a float32 tie.

    The exact value ``v = acc * s_x s_w / s_y + bias / s_y`` is computed independently (float64
    convolution of the stored integers, exact below 2^53). fbgemm evaluates it in float32 with a
    relative error below ~6 * 2^-24 of the magnitudes involved; a different evaluation order can
    round differently only where ``v`` is that close to a half-integer.
    """
    if np.array_equal(got, want):
        return
    K = w.shape[0]
    sw = np.full(K, wq.scale) if isinstance(wq, Quantizer) else np.array([q.scale for q in wq])
    xi = torch.from_numpy(x.astype(np.float64) - storage_zero_point(xq, "uint8"))
    acc = torch.nn.functional.conv2d(xi, torch.from_numpy(w.astype(np.float64)), None, s, p, d, g).numpy()
    m = (xq.scale * sw / yq.scale)[None, :, None, None]
    b = np.zeros(K) if bias_f is None else bias_f.astype(np.float64)
    t_acc, t_bias = acc * m, (b / yq.scale)[None, :, None, None]
    v = t_acc + t_bias
    tol = 6 * 2.0**-24 * (np.abs(t_acc) + np.abs(t_bias)) + 1e-12
    off = got.astype(int) != want.astype(int)
    near_tie = np.abs(np.abs(v - np.floor(v)) - 0.5) <= tol
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.all(near_tie[off]), (f"{int(off.sum())} outputs differ away from a rounding tie: "
                                   f"v = {v[off & ~near_tie][:5]}, got {got[off & ~near_tie][:5]}, "
                                   f"want {want[off & ~near_tie][:5]}")


def _case(rng):
    g = int(rng.choice([1, 1, 1, 2, 4]))
    C, K = g * int(rng.integers(1, 24)), g * int(rng.integers(1, 12))
    kh, kw = int(rng.choice([1, 3, 5])), int(rng.choice([1, 3]))
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    H = int(rng.integers(d[0] * (kh - 1) + 1, 17))
    W = int(rng.integers(d[1] * (kw - 1) + 1, 17))
    N = int(rng.integers(1, 3))
    xq = Quantizer(8, float(rng.uniform(0.5, 6)), grid="affine", beta=-float(rng.uniform(0, 3)))
    wq = Quantizer(8, float(rng.uniform(0.05, 1)), grid="narrow") if rng.random() < 0.4 else \
        per_channel(8, rng.uniform(0.05, 1, K))
    yq = Quantizer(8, float(rng.uniform(1, 30)), grid="affine", beta=-float(rng.uniform(0.5, 30)))
    x = rng.integers(0, 256, (N, C, H, W)).astype(np.uint8)
    w = rng.integers(-127, 128, (K, C // g, kh, kw)).astype(np.int8)
    bias_f = rng.normal(0, 3, K).astype(np.float32) if rng.random() < 0.7 else None
    return x, w, bias_f, xq, wq, yq, s, p, d, g, bool(rng.random() < 0.3)


def test_fbgemm_mode_is_bit_exact_with_pytorch(rng):
    n_bytes = 0
    for _ in range(60):
        x, w, bias_f, xq, wq, yq, s, p, d, g, relu = _case(rng)
        want = torch_qconv(x, w, bias_f, xq, wq, yq, s, p, d, g, relu)
        got = conv2d(x, w, bias_f, x_quant=xq, w_quant=wq, out_quant=yq, stride=s, padding=p, dilation=d,
                     groups=g, requant="fbgemm", relu=relu)
        assert_fbgemm_equal(got, want, x, w, bias_f, xq, wq, yq, s, p, d, g)
        n_bytes += got.size
    assert n_bytes > 10_000


def test_fbgemm_mode_bit_exact_on_benchmark_like_layers(rng):
    for C, K, k, s, p in [(64, 64, 3, 1, 1), (256, 64, 1, 1, 0), (3, 32, 3, 2, 1)]:
        xq = Quantizer(8, 6.0, grid="affine", beta=-2.0)
        wq = per_channel(8, rng.uniform(0.2, 0.6, K))
        yq = Quantizer(8, 20.0, grid="affine", beta=-20.0)
        x = rng.integers(0, 256, (1, C, 28, 28)).astype(np.uint8)
        w = rng.integers(-127, 128, (K, C, k, k)).astype(np.int8)
        b = rng.normal(0, 5, K).astype(np.float32)
        want = torch_qconv(x, w, b, xq, wq, yq, (s, s), (p, p), (1, 1), 1)
        got = conv2d(x, w, b, x_quant=xq, w_quant=wq, out_quant=yq, stride=s, padding=p, requant="fbgemm")
        assert_fbgemm_equal(got, want, x, w, b, xq, wq, yq, (s, s), (p, p), (1, 1), 1)


@pytest.mark.parametrize("mode", ["tflite", "tflite-single", "exact"])
def test_other_modes_within_one_lsb_of_pytorch(mode, rng):
    """With an int32 bias (the same real bias for PyTorch), the other modes differ from fbgemm in
    at most one LSB, on a small fraction of outputs (ties and float32 rounding)."""
    diffs, total = 0, 0
    for _ in range(20):
        x, w, _, xq, wq, yq, s, p, d, g, relu = _case(rng)
        K = w.shape[0]
        sw = np.array([q.scale for q in wq]) if not isinstance(wq, Quantizer) else np.full(K, wq.scale)
        bq = rng.integers(-2000, 2000, K).astype(np.int32)
        bias_f = (bq * (np.float32(xq.scale) * sw.astype(np.float32))).astype(np.float32)
        want = torch_qconv(x, w, bias_f, xq, wq, yq, s, p, d, g, relu).astype(int)
        got = conv2d(x, w, bq, x_quant=xq, w_quant=wq, out_quant=yq, stride=s, padding=p, dilation=d,
                     groups=g, requant=mode, relu=relu).astype(int)
        assert np.abs(got - want).max() <= 1
        diffs += int(np.count_nonzero(got != want))
        total += got.size
    assert diffs / total < 0.02
