"""Integer-only inference of a trained fake-quantized digits CNN through :mod:`qtheory.intconv`.

Export (:func:`export_integer`): each conv's weight codes are the integers the trained weight
quantizer produces; BatchNorm (eval statistics) is folded into a per-output-channel scale
``s_w·|γ_k/σ_k|`` of the *same* codes (a channel with ``γ_k < 0`` flips the sign of its codes) and an
int32 bias ``round(c_k / (s_x·s_w·|a_k|))`` in accumulator units, ``c_k = β_k − a_k μ_k``. The
activation fake-quantizer that follows becomes the output quantizer, with ReLU fused into the
requantisation (``relu=True``, ``requant="exact"``: the rational multiplier, rounded half to even as
``torch.round`` does). Max pooling runs on the stored codes (exact: the quantizer is monotone).
The classifier is a 1×1 convolution on the 128 pooled features; its int32 accumulators give the
prediction (a positive scale does not move the argmax).

Where equality with the fake-quant model is impossible: the fake-quant model adds the BN shift
in float, the integer model adds it rounded to accumulator units, so an output whose real value
lies within half an accumulator unit of a rounding boundary can round the other way. The
disagreement is measured, not assumed away (:func:`compare`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import intconv
from ..quantizer import Quantizer
from .network import DigitsCNN, DoReFaWeight, SATScaled, as_input

__all__ = ["IntegerLayer", "IntegerNet", "export_integer", "compare"]

INPUT_QUANT = Quantizer.from_scale(8, 1.0 / 16.0, grid="uint")  # pixel codes 0..16, exact


@dataclass(frozen=True)
class IntegerLayer:
    """One integer conv: int8 weight codes, per-channel weight quantizers, int32 bias, output quantizer.

    ``clipped_codes`` counts weight codes that could not be stored: a channel with ``γ < 0`` on the
    signed ``int`` grid flips code ``−2^(b−1)`` to ``+2^(b−1)``, which one more code bit holds below
    8 bits; at 8 bits it is clipped to 127 and counted here.
    """

    w: np.ndarray
    w_quant: tuple
    bias: np.ndarray
    out_quant: Quantizer | None
    padding: int
    clipped_codes: int


@dataclass(frozen=True)
class IntegerNet:
    """The exported network: three conv layers and the classifier, all integer."""

    method: str
    bits: int
    layers: tuple

    def forward_codes(self, codes: np.ndarray) -> np.ndarray:
        """Classifier int32 accumulators (N, 10) for pixel codes (N, 1, 8, 8)."""
        h = np.ascontiguousarray(codes, dtype=np.uint8)
        xq = INPUT_QUANT
        for i, layer in enumerate(self.layers[:3]):
            h = intconv.conv2d(h, layer.w, layer.bias, x_quant=xq, w_quant=layer.w_quant,
                               out_quant=layer.out_quant, padding=layer.padding, requant="exact", relu=True)
            xq = layer.out_quant
            if i >= 1:
                n, c, hh, ww = h.shape
                h = h.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
        fc = self.layers[3]
        flat = np.ascontiguousarray(h.reshape(h.shape[0], -1, 1, 1))
        acc = intconv.conv2d(flat, fc.w, fc.bias, x_quant=xq, w_quant=fc.w_quant, out_quant=None)
        return acc[:, :, 0, 0]

    def predict(self, codes: np.ndarray) -> np.ndarray:
        return self.forward_codes(codes).argmax(1)


def _weight_codes(wq_module, w: torch.Tensor, bits: int) -> tuple[np.ndarray, float, str, int]:
    """``(codes, scale, grid, code_bits)`` of the trained weight quantizer applied to ``w``."""
    w = w.detach()
    inner = wq_module.inner if isinstance(wq_module, SATScaled) else wq_module
    if isinstance(inner, DoReFaWeight):
        q = inner(w).detach()
        levels = 2.0**bits - 1.0
        codes = torch.round(q * levels).numpy().astype(np.int64)  # odd integers in [-L, L]
        scale = 1.0 / levels
        if isinstance(wq_module, SATScaled):
            scale *= 1.0 / math.sqrt(w.shape[0] * float(q.var(unbiased=True)))
        return codes, scale, "narrow", bits + 1
    q = wq_module(w).detach()
    if hasattr(inner, "theta"):  # TQT
        e = math.ceil(float(inner.theta.detach()))
        scale = 2.0**e / 2.0 ** (bits - 1)
        grid = "int"
    elif hasattr(inner, "s"):  # LSQ
        scale = float(inner.s.detach())
        grid = "int"
    else:  # AbsMaxWeight
        scale = inner.scale(w)
        grid = "narrow"
    codes = torch.round(q / scale).numpy().astype(np.int64)
    return codes, scale, grid, bits


def _act_quantizer(aq_module, bits: int) -> Quantizer:
    q = aq_module[1] if isinstance(aq_module, torch.nn.Sequential) else aq_module
    if hasattr(q, "theta"):
        return Quantizer.from_scale(bits, 2.0 ** math.ceil(float(q.theta.detach())) / 2.0**bits, grid="uint")
    if hasattr(q, "s"):
        return Quantizer.from_scale(bits, float(q.s.detach()), grid="uint")
    return Quantizer(bits, float(q.alpha.detach()), grid="unsigned")


def export_integer(model: DigitsCNN) -> IntegerNet:
    """Integer weights, scales, zero points and biases of a trained fake-quantized model (BN folded).

    Raises
    ------
    ValueError
        If a weight quantizer needs codes wider than int8 (DoReFa at 8 bits needs 9-bit codes).
    """
    if model.method is None or model.bits is None:
        raise ValueError("The 'model' parameter of export_integer must be a fake-quantized DigitsCNN "
                         "(from quantize_model). Got a float model instead.")
    bits = model.bits
    layers = []
    xq = INPUT_QUANT
    for i in range(4):
        weight = model.weights()[i]
        codes, s_w, grid, code_bits = _weight_codes(model.wq[i], weight, bits)
        if code_bits > 8:
            raise ValueError(f"The 'model' parameter of export_integer must have int8-representable weight "
                             f"codes. Got {model.method} at {bits} bits, whose weights need {code_bits}-bit codes, "
                             "instead.")
        k = codes.shape[0]
        if i < 3:
            bn = model.bns[i]
            sigma = torch.sqrt(bn.running_var + bn.eps).detach().numpy()
            a = bn.weight.detach().numpy() / sigma
            c = bn.bias.detach().numpy() - a * bn.running_mean.detach().numpy()
            out_q = _act_quantizer(model.aq[i], bits)
            w4 = codes
            padding = 1
        else:
            a = np.ones(k)
            c = model.fc.bias.detach().numpy()
            out_q = None
            w4 = codes.reshape(k, -1, 1, 1)
            padding = 0
        sign = np.where(a < 0, -1, 1)
        w_signed = w4 * sign.reshape(-1, *([1] * (w4.ndim - 1)))
        proto = Quantizer.from_scale(code_bits, 1.0, grid=grid)
        if code_bits < 8 and np.any((w_signed < proto.qmin) | (w_signed > proto.qmax)):
            # a flipped channel of the asymmetric int grid holds +2^(b-1): one more bit holds it exactly
            code_bits += 1
            proto = Quantizer.from_scale(code_bits, 1.0, grid=grid)
        clipped = int(np.count_nonzero((w_signed < proto.qmin) | (w_signed > proto.qmax)))
        w_signed = np.clip(w_signed, proto.qmin, proto.qmax).astype(np.int8)
        scales = s_w * np.abs(a)
        w_quant = tuple(Quantizer.from_scale(code_bits, float(sk), grid=grid) for sk in scales)
        bias = np.round(c / (xq.scale * scales)).astype(np.int64)
        if np.any(np.abs(bias) > 2**31 - 1):  # pragma: no cover - only for degenerate BN statistics
            raise ValueError("a folded bias does not fit int32")
        layers.append(IntegerLayer(w_signed, w_quant, bias.astype(np.int32), out_q, padding, clipped))
        if out_q is not None:
            xq = out_q
    return IntegerNet(model.method, bits, tuple(layers))


def compare(model: DigitsCNN, net: IntegerNet, codes: np.ndarray) -> dict:
    """Predictions of the fake-quant model and the integer network on ``codes``, and their agreement."""
    model.eval()
    with torch.no_grad():
        fq = model(as_input(codes)).argmax(1).numpy()
    it = net.predict(codes)
    return {"fakequant": fq, "integer": it, "agreement": float(np.mean(fq == it))}
