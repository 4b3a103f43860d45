"""qtheory.intconv against ONNX Runtime's QLinearConv (MLAS kernels), bit for bit (optional onnx extra).

Which requantisation matches ORT, and why: ORT's QLinearConv computes one float32 multiplier per
output channel, ``output_scales[k] = X_scale * W_scale[k] / Y_scale`` (float32 operations, left to
right; onnxruntime/core/providers/cpu/quantization/qlinearconv.cc), adds the int32 bias to the
int32 accumulator, and MLAS requantises ``float(acc + bias) * output_scales[k]``, rounding half to
even, then adds the output zero point and clamps to uint8. That is exactly ``requant="fbgemm"``
with an integer bias: ``C_multiplier = float32(float32(s_x * s_w[k]) / s_y)`` and
``rint(float32(acc + bias) * C_multiplier)``. The fixed-point modes (``"tflite"``) differ from it
by one LSB on a few outputs; ``"exact"`` differs where the float32 product lands on the other side
of a rounding boundary.
"""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from qtheory import Quantizer  # noqa: E402
from qtheory.intconv import PackedConv2d, conv2d, conv2d_reference, per_channel, storage_zero_point  # noqa: E402


def _session(w, bias, xq, wq, yq, stride, pad, dilation, groups):
    """A one-node QLinearConv model (uint8 x, int8 w, int32 bias, uint8 y) in an ORT session."""
    from onnx import TensorProto, helper, numpy_helper

    ws = np.float32([q.scale for q in wq]) if isinstance(wq, (list, tuple)) else np.float32(wq.scale)
    inits = [numpy_helper.from_array(np.float32(xq.scale), "xs"),
             numpy_helper.from_array(np.uint8(storage_zero_point(xq, "uint8")), "xz"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.asarray(ws), "ws"),
             numpy_helper.from_array(np.zeros(np.shape(ws), np.int8), "wz"),
             numpy_helper.from_array(np.float32(yq.scale), "ys"),
             numpy_helper.from_array(np.uint8(storage_zero_point(yq, "uint8")), "yz"),
             numpy_helper.from_array(bias, "b")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            strides=list(stride), pads=[pad[0], pad[1], pad[0], pad[1]], dilations=list(dilation),
                            group=groups, kernel_shape=list(w.shape[2:]))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, None)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    # exact int32 accumulation on every CPU: without it, x86 CPUs lacking VNNI add each pair of uint8 x int8
    # products in int16 with saturation (vpmaddubsw); the option makes ORT's (default-level) optimiser
    # rewrite the int8 weights to uint8 for its exact uint8 x uint8 kernel (tests/test_realnets.py checks
    # the saturating kernel itself)
    so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


# (C, K, k, stride, pad, dilation, groups, H, W)
SHAPES = [
    (16, 8, 3, 1, 1, 1, 1, 12, 14),  # dense 3x3
    (32, 12, 1, 1, 0, 1, 1, 9, 9),  # pointwise
    (24, 24, 3, 1, 1, 1, 24, 15, 11),  # depthwise
    (3, 16, 3, 2, 1, 1, 1, 21, 20),  # stem, stride 2
    (12, 8, 3, 1, 2, 2, 2, 10, 13),  # grouped, dilated
    (20, 10, 5, 2, 2, 1, 1, 17, 17),  # 5x5, stride 2
]


@pytest.mark.parametrize("per_ch", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "C{}K{}k{}s{}p{}d{}g{}".format(*s[:7]))
def test_fbgemm_mode_is_bit_exact_with_onnxruntime(shape, per_ch, rng):
    C, K, k, s, p, d, g, H, W = shape
    xq = Quantizer(8, float(rng.uniform(0.5, 6)), grid="affine", beta=-float(rng.uniform(0, 3)))
    wq = per_channel(8, rng.uniform(0.05, 1, K)) if per_ch else Quantizer(8, float(rng.uniform(0.05, 1)), grid="narrow")
    yq = Quantizer(8, float(rng.uniform(1, 30)), grid="affine", beta=-float(rng.uniform(0.5, 30)))
    x = rng.integers(0, 256, (2, C, H, W)).astype(np.uint8)
    w = rng.integers(-127, 128, (K, C // g, k, k)).astype(np.int8)
    bias = rng.integers(-3000, 3000, K).astype(np.int32)
    sess = _session(w, bias, xq, wq, yq, (s, s), (p, p), (d, d), g)
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(2)])
    kw = dict(x_quant=xq, w_quant=wq, out_quant=yq, stride=s, padding=p, dilation=d, groups=g, requant="fbgemm")
    got = conv2d(x, w, bias, **kw)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(PackedConv2d(w, bias, **kw)(x), want)
    np.testing.assert_array_equal(conv2d_reference(x, w, bias, **kw), want)
    # the fixed-point requantisation is not ORT's: at most one LSB apart
    tfl = conv2d(x, w, bias, **{**kw, "requant": "tflite"})
    assert np.abs(tfl.astype(int) - want).max() <= 1
