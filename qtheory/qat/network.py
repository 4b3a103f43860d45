"""The digits CNN, its fake-quantized versions and the training loops (PyTorch, CPU, float64).

Network (conv–BN–ReLU blocks, max pooling, a linear classifier)::

    input 1×8×8 (pixel/16) → conv3×3 1→16 → BN → act → conv3×3 16→32 → BN → act → maxpool 2
      → conv3×3 32→32 → BN → act → maxpool 2 → flatten (128) → linear 128→10

``act`` is ReLU in the float model and ReLU + an activation fake-quantizer in the quantized ones
(PACT's quantizer includes the ReLU). Weight fake-quantizers act on every conv and on the classifier.

Estimators (weights / activations), all from :mod:`qtheory.torch_ste` except where stated:

- ``"tqt"``: TQT, signed ``int`` grid for weights, unsigned ``uint`` for activations, log2 threshold,
  power-of-two scales.
- ``"lsq"``: LSQ, signed for weights, unsigned for activations, LSQ's init and gradient scale.
- ``"pact"`` / ``"calibrated_pact"``: (calibrated) PACT activations; weights on the symmetric
  ``narrow`` grid at ``max|w|`` with a straight-through estimator (a deployment-friendly stand-in
  for the PACT paper's DoReFa weights, stated in the report).
- ``"sat"``: SAT as in its paper: DoReFa weights, SAT's weight scaling on the classifier
  (the layer not followed by BatchNorm), calibrated PACT activations.
- ``"dorefa_cpact"``: the SAT recipe without the scaling (the ablation for SAT's rules).

Everything runs in float64 on one thread, so a run is a deterministic function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import torch_ste
from .._validation import check_int, check_option, param_error
from .data import DigitsSplit

__all__ = ["METHODS", "DigitsCNN", "AbsMaxWeight", "DoReFaWeight", "quantize_model", "train",
           "evaluate", "predict", "TrainLog", "float_model", "ptq_model"]

METHODS = ("tqt", "lsq", "pact", "calibrated_pact", "sat", "dorefa_cpact")
DTYPE = torch.float64
CHANNELS = (16, 32, 32)


def _set_determinism(seed: int) -> torch.Generator:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def as_input(codes: np.ndarray) -> torch.Tensor:
    """Pixel codes 0..16 → the float input ``code / 16`` (exact in float64)."""
    return torch.as_tensor(np.asarray(codes), dtype=DTYPE) / 16.0


# ----------------------------------------------------------------------------- weight quantizers
class AbsMaxWeight(nn.Module):
    """Symmetric ``narrow`` grid at ``α = max|w|`` with a straight-through estimator."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = check_int(bits, "bits", "AbsMaxWeight", 2, 8)

    def scale(self, w: torch.Tensor) -> float:
        return float(w.detach().abs().max()) / (2 ** (self.bits - 1) - 1)

    def forward(self, w):
        s = self.scale(w)
        qmax = 2 ** (self.bits - 1) - 1
        q = torch.clamp(torch.round(w / s), -qmax, qmax) * s
        return w + (q - w).detach()


class DoReFaWeight(nn.Module):
    """DoReFa: ``Q = 2·round(L·(Ŵ+1)/2)/L − 1``, ``Ŵ = tanh w / max|tanh w|``, ``L = 2^b − 1``
    (:func:`qtheory.sat.dorefa_quantize`), straight-through on the rounding only."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = check_int(bits, "bits", "DoReFaWeight", 1, 8)

    def forward(self, w):
        levels = 2.0**self.bits - 1.0
        t = torch.tanh(w)
        u = (t / t.detach().abs().max() + 1.0) / 2.0
        uq = u + (torch.round(u * levels) / levels - u).detach()
        return 2.0 * uq - 1.0


class SATScaled(nn.Module):
    """SAT's scaling ``Q* = Q / sqrt(n_out · Var[Q])`` (unbiased variance, no gradient through it)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, w):
        q = self.inner(w)
        n_out = w.shape[0]
        return q / math.sqrt(n_out * float(q.detach().var(unbiased=True)))


# ----------------------------------------------------------------------------- the network
class DigitsCNN(nn.Module):
    """The digits CNN; ``wq`` / ``aq`` hold the weight and activation quantizers (identity / ReLU
    in the float model)."""

    def __init__(self):
        super().__init__()
        c1, c2, c3 = CHANNELS
        self.convs = nn.ModuleList([nn.Conv2d(1, c1, 3, padding=1, bias=False),
                                    nn.Conv2d(c1, c2, 3, padding=1, bias=False),
                                    nn.Conv2d(c2, c3, 3, padding=1, bias=False)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(c) for c in CHANNELS])
        self.fc = nn.Linear(c3 * 4, 10)
        self.wq = nn.ModuleList([nn.Identity() for _ in range(4)])
        self.aq = nn.ModuleList([nn.ReLU() for _ in range(3)])
        self.method: str | None = None
        self.bits: int | None = None
        self.to(DTYPE)

    def forward(self, x, *, taps: dict | None = None):
        h = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            h = F.conv2d(h, self.wq[i](conv.weight), padding=1)
            h = bn(h)
            if taps is not None:
                taps[f"act{i}"] = h
            h = self.aq[i](h)
            if i >= 1:
                h = F.max_pool2d(h, 2)
        h = h.flatten(1)
        if taps is not None:
            taps["fc_in"] = h
        return F.linear(h, self.wq[3](self.fc.weight), self.fc.bias)

    def weights(self) -> list[torch.Tensor]:
        return [c.weight for c in self.convs] + [self.fc.weight]


# ----------------------------------------------------------------------------- training
@dataclass
class TrainLog:
    """Per-step record of a training run: loss and every quantizer's threshold parameter."""

    loss: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def record(self, model: DigitsCNN, loss: float):
        self.loss.append(loss)
        for name, p in _threshold_params(model).items():
            self.params.setdefault(name, []).append(float(p.detach()))


def _threshold_params(model: DigitsCNN) -> dict:
    out = {}
    for kind, mods in (("w", model.wq), ("a", model.aq)):
        for i, m in enumerate(mods):
            for q in m.modules():
                for pname in ("theta", "s", "alpha"):
                    if isinstance(getattr(q, pname, None), nn.Parameter):
                        out[f"{kind}{i}.{pname}"] = getattr(q, pname)
    return out


def train(model: DigitsCNN, data: DigitsSplit, *, epochs: int, lr: float, seed: int, batch: int = 64,
          lr_threshold: float | None = None, log: TrainLog | None = None) -> DigitsCNN:
    """Adam on cross-entropy, shuffled mini-batches drawn from ``seed`` (float64, one thread).

    Quantizer thresholds learn at ``lr_threshold`` (default ``lr``): TQT's log2 threshold θ at that
    rate, LSQ's step s and PACT's clip α at that rate *relative to their initial value* (Adam's steps
    are about ``lr`` in size, so a linear-domain parameter of 0.002 would otherwise jump past zero);
    they are kept above 10⁻³ of their initial value. Weights and BatchNorm parameters learn at ``lr``.
    """
    gen = _set_determinism(seed)
    x, y = as_input(data.x_train), torch.as_tensor(data.y_train)
    thresholds = _threshold_params(model)
    ids = {id(p) for p in thresholds.values()}
    lr_t = lr if lr_threshold is None else lr_threshold
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids], "lr": lr}]
    floors = []
    for name, p in thresholds.items():
        if name.endswith(".theta"):
            groups.append({"params": [p], "lr": lr_t})
        else:
            p0 = float(p.detach())
            groups.append({"params": [p], "lr": lr_t * p0})
            floors.append((p, 1e-3 * p0))
    opt = torch.optim.Adam(groups)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for k in range(0, len(y), batch):
            idx = order[k:k + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for p, floor in floors:
                    p.clamp_(min=floor)
            if log is not None:
                log.record(model, loss.item())
    model.eval()
    return model


@torch.no_grad()
def predict(model: DigitsCNN, codes: np.ndarray) -> np.ndarray:
    """Class predictions of the (fake-quantized) model in eval mode."""
    model.eval()
    return model(as_input(codes)).argmax(1).numpy()


def evaluate(model: DigitsCNN, codes: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy on ``codes``/``labels``."""
    return float(np.mean(predict(model, codes) == labels))


def float_model(data: DigitsSplit, *, seed: int, epochs: int = 30, lr: float = 3e-3) -> DigitsCNN:
    """Train the float network from scratch."""
    _set_determinism(seed)
    return train(DigitsCNN(), data, epochs=epochs, lr=lr, seed=seed)


# ----------------------------------------------------------------------------- quantizing a model
@torch.no_grad()
def _activation_inputs(model: DigitsCNN, codes: np.ndarray) -> list[np.ndarray]:
    taps: dict = {}
    model.eval()
    model(as_input(codes), taps=taps)
    return [taps[f"act{i}"].numpy() for i in range(3)]


def quantize_model(fp: DigitsCNN, method: str, bits: int, calib_codes: np.ndarray) -> DigitsCNN:
    """A copy of the float model with ``method``'s fake-quantizers at ``bits`` (weights and
    activations), thresholds initialised from the float weights and from the activations of
    ``calib_codes``: TQT at ``max``, LSQ at ``2·mean|v|/sqrt(Q_P)`` (its paper), PACT at ``max``."""
    func = "quantize_model"
    method = check_option(method, "method", func, METHODS)
    bits = check_int(bits, "bits", func, 2, 8)
    model = DigitsCNN()
    model.load_state_dict(fp.state_dict())
    acts = _activation_inputs(fp, calib_codes)
    for i, w in enumerate(model.weights()):
        wn = w.detach().numpy()
        if method == "tqt":
            model.wq[i] = torch_ste.TQTQuantizer(bits, float(np.abs(wn).max()), signed=True)
        elif method == "lsq":
            qp = 2 ** (bits - 1) - 1
            model.wq[i] = torch_ste.LSQQuantizer(bits, 2 * float(np.abs(wn).mean()) / math.sqrt(qp), signed=True)
        elif method in ("pact", "calibrated_pact"):
            model.wq[i] = AbsMaxWeight(bits)
        else:
            model.wq[i] = DoReFaWeight(bits)
            if method == "sat" and i == 3:
                model.wq[i] = SATScaled(model.wq[i])
    for i, a in enumerate(acts):
        pos = np.maximum(a, 0.0)
        if method == "tqt":
            q = torch_ste.TQTQuantizer(bits, float(pos.max()), signed=False)
            model.aq[i] = nn.Sequential(nn.ReLU(), q)
        elif method == "lsq":
            qp = 2**bits - 1
            q = torch_ste.LSQQuantizer(bits, 2 * float(pos.mean()) / math.sqrt(qp), signed=False)
            model.aq[i] = nn.Sequential(nn.ReLU(), q)
        else:
            model.aq[i] = torch_ste.PACTQuantizer(bits, float(pos.max()), calibrated=method != "pact")
    model.method, model.bits = method, bits
    return model.to(DTYPE).eval()


def ptq_model(fp: DigitsCNN, bits: int, calib_codes: np.ndarray) -> DigitsCNN:
    """Post-training quantization with no training: every weight and activation clip is the exact
    empirical MSE optimum (:func:`qtheory.optimal_clip`) of the float model's tensors, weights on the
    signed ``int`` grid and activations on the ``uint`` grid (TQT's grids with free scales)."""
    import qtheory

    model = quantize_model(fp, "lsq", bits, calib_codes)
    acts = _activation_inputs(fp, calib_codes)
    with torch.no_grad():
        for i, w in enumerate(model.weights()):
            r = qtheory.optimal_clip(w.detach().numpy().ravel(), bits, grid="int")
            model.wq[i].s.fill_(r.alpha / 2 ** (bits - 1))
        for i, a in enumerate(acts):
            pos = np.maximum(a, 0.0).ravel()
            r = qtheory.optimal_clip(pos, bits, grid="uint")
            model.aq[i][1].s.fill_(r.alpha / 2**bits)
    model.method = "ptq_exact"
    return model


def check_method(method: str, func: str) -> str:
    if method not in METHODS:
        raise param_error("method", func, "one of " + ", ".join(map(repr, METHODS)), method)
    return method
