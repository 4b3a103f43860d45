"""PyTorch fake-quantizers for TQT, LSQ, PACT and calibrated PACT (optional; needs ``torch``).

Each estimator is a :class:`torch.autograd.Function` whose forward value and backward rule are
*the same arithmetic, in the same order and dtype*, as the numpy rules in :mod:`qtheory.ste`
(:func:`qtheory.ste.tqt`, :func:`~qtheory.ste.lsq`, :func:`~qtheory.ste.pact`,
:func:`~qtheory.ste.calibrated_pact`), so their per-element gradients agree bit for bit in float32
and float64 (tested in ``tests/test_ste_torch.py``). The threshold parameter is a per-tensor
scalar tensor; the step ``s`` is computed from its stored value (a float32 parameter holds
``float32(2.3)``, not ``2.3``) as a Python float (``2.0 ** θ`` etc.), exactly as
the numpy rules do, then cast to the input's dtype.

Backward: ``grad_x = grad_out · ∂q/∂x`` and ``grad_param = Σ grad_out · ∂q/∂param`` with the
rules' tables (see :mod:`qtheory.ste`).

This module imports ``torch`` at the top and is never imported by ``qtheory`` itself.

Examples
--------
>>> import torch
>>> from qtheory.torch_ste import tqt_quantize
>>> x = torch.tensor([-3.0, 0.3, 0.9, 2.5], dtype=torch.float64, requires_grad=True)
>>> theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
>>> q = tqt_quantize(x, theta, bits=2)
>>> q
tensor([-2.,  0.,  1.,  1.], dtype=torch.float64, grad_fn=<TQTFunctionBackward>)
>>> q.sum().backward()
>>> x.grad
tensor([0., 1., 1., 0.], dtype=torch.float64)
>>> round(theta.grad.item() / 0.6931471805599453, 6)    # (-2) + (-0.3) + 0.1 + 1
-1.2
"""

from __future__ import annotations

import math

import torch

from ._validation import check_bool, check_int, check_real, param_error
from .quantizer import MAX_BITS

__all__ = [
    "tqt_quantize",
    "lsq_quantize",
    "pact_quantize",
    "calibrated_pact_quantize",
    "ste_grads",
    "TQTFunction",
    "LSQFunction",
    "PACTFunction",
    "TQTQuantizer",
    "LSQQuantizer",
    "PACTQuantizer",
]

LN2 = math.log(2.0)


def _check_x(x, func):
    if not isinstance(x, torch.Tensor):
        raise param_error("x", func, "a torch.Tensor", type(x).__name__, TypeError)
    if x.dtype not in (torch.float32, torch.float64):
        raise param_error("x", func, "a float32 or float64 tensor", f"tensor of dtype {x.dtype}", TypeError)
    return x


def _scalar(param, name, func, positive):
    if not isinstance(param, torch.Tensor) or param.numel() != 1:
        raise param_error(name, func, "a one-element torch.Tensor", param, TypeError)
    v = float(param.detach().reshape(()))
    return check_real(v, name, func, 0.0 if positive else -1000.0, None if positive else 1000.0,
                      low_open=positive)


def _c(v, like):
    return torch.tensor(v, dtype=like.dtype, device=like.device)


def _codes(bits, signed):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


# ------------------------------------------------------------------ the rules (mirror qtheory.ste)
def _tqt(x, theta: float, bits: int, signed: bool, power_of_2: bool):
    e = math.ceil(theta) if power_of_2 else theta
    s = 2.0**e / 2.0 ** (bits - 1 if signed else bits)
    n, p = _codes(bits, signed)
    sd, ln2 = _c(s, x), _c(LN2, x)
    u = x / sd
    r = torch.round(u)                       # round half to even, like np.rint
    rc = torch.clamp(r, n, p)
    inside = (r >= n) & (r <= p)
    q = rc * sd
    dq_dparam = torch.where(inside, r - u, rc) * sd * ln2
    return q, inside.to(x.dtype), dq_dparam


def _lsq(x, s: float, bits: int, signed: bool, grad_scale: float):
    n, p = _codes(bits, signed)
    sd, g = _c(s, x), _c(grad_scale, x)
    u = x / sd
    uc = torch.clamp(u, n, p)
    r = torch.round(uc)
    inside = (u > n) & (u < p)
    q = r * sd
    dq_dparam = torch.where(inside, r - u, uc) * g
    return q, inside.to(x.dtype), dq_dparam


def _pact(x, alpha: float, bits: int, calibrated: bool):
    m = 2.0**bits - 1.0
    s = alpha / m
    sd, ad, zero = _c(s, x), _c(alpha, x), _c(0.0, x)
    xc = torch.clamp(x, zero, ad)
    u = xc / sd
    r = torch.round(u)
    q = r * sd
    upper = x >= ad
    dq_dx = ((x >= zero) & ~upper).to(x.dtype)
    if calibrated:
        dq_dparam = torch.where(upper, _c(1.0, x), (r - u) / _c(m, x))
    else:
        dq_dparam = upper.to(x.dtype)
    return q, dq_dx, dq_dparam


def ste_grads(estimator: str, x: torch.Tensor, param: torch.Tensor, bits: int, *, signed: bool = True,
              power_of_2: bool = True, grad_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(q, ∂q/∂x, ∂q/∂param)`` per element, computed by the code the autograd Functions use.

    Examples
    --------
    >>> import torch
    >>> q, dx, dp = ste_grads("calibrated_pact", torch.tensor([0.4, 2.2, 5.0]), torch.tensor(3.0), 2)
    >>> q, dp
    (tensor([0., 2., 3.]), tensor([-0.1333, -0.0667,  1.0000]))
    """
    func = "ste_grads"
    x = _check_x(x, func)
    signed = check_bool(signed, "signed", func)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    grad_scale = check_real(grad_scale, "grad_scale", func, 0.0, low_open=True)
    if estimator == "tqt":
        bits = check_int(bits, "bits", func, 1, MAX_BITS)
        return _tqt(x, _scalar(param, "param", func, False), bits, signed, power_of_2)
    if estimator == "lsq":
        bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
        return _lsq(x, _scalar(param, "param", func, True), bits, signed, grad_scale)
    if estimator in ("pact", "calibrated_pact"):
        bits = check_int(bits, "bits", func, 1, MAX_BITS)
        return _pact(x, _scalar(param, "param", func, True), bits, estimator == "calibrated_pact")
    raise param_error("estimator", func, "one of 'tqt', 'lsq', 'pact', 'calibrated_pact'", estimator)


def _param_grad(grad_out, dq_dparam, param):
    return (grad_out * dq_dparam).sum().reshape(param.shape).to(param.dtype)


class TQTFunction(torch.autograd.Function):
    """TQT fake-quantizer ``(x, θ) -> q``; backward = :func:`qtheory.ste.tqt`'s rule."""

    @staticmethod
    def forward(ctx, x, theta, bits, signed, power_of_2):
        q, dq_dx, dq_dp = _tqt(x, float(theta.detach().reshape(())), bits, signed, power_of_2)
        ctx.save_for_backward(dq_dx, dq_dp, theta)
        return q

    @staticmethod
    def backward(ctx, grad_out):
        dq_dx, dq_dp, theta = ctx.saved_tensors
        return grad_out * dq_dx, _param_grad(grad_out, dq_dp, theta), None, None, None


class LSQFunction(torch.autograd.Function):
    """LSQ fake-quantizer ``(x, s) -> q``; backward = :func:`qtheory.ste.lsq`'s rule."""

    @staticmethod
    def forward(ctx, x, s, bits, signed, grad_scale):
        q, dq_dx, dq_dp = _lsq(x, float(s.detach().reshape(())), bits, signed, grad_scale)
        ctx.save_for_backward(dq_dx, dq_dp, s)
        return q

    @staticmethod
    def backward(ctx, grad_out):
        dq_dx, dq_dp, s = ctx.saved_tensors
        return grad_out * dq_dx, _param_grad(grad_out, dq_dp, s), None, None, None


class PACTFunction(torch.autograd.Function):
    """PACT / calibrated-PACT fake-quantizer ``(x, α) -> q``; backward =
    :func:`qtheory.ste.pact` or :func:`qtheory.ste.calibrated_pact`."""

    @staticmethod
    def forward(ctx, x, alpha, bits, calibrated):
        q, dq_dx, dq_dp = _pact(x, float(alpha.detach().reshape(())), bits, calibrated)
        ctx.save_for_backward(dq_dx, dq_dp, alpha)
        return q

    @staticmethod
    def backward(ctx, grad_out):
        dq_dx, dq_dp, alpha = ctx.saved_tensors
        return grad_out * dq_dx, _param_grad(grad_out, dq_dp, alpha), None, None


# ------------------------------------------------------------------ public functions
def tqt_quantize(x: torch.Tensor, theta: torch.Tensor, bits: int, *, signed: bool = True,
                 power_of_2: bool = True) -> torch.Tensor:
    """TQT fake-quantize ``x`` with log2-threshold tensor ``theta`` (gradients flow to both)."""
    func = "tqt_quantize"
    x = _check_x(x, func)
    _scalar(theta, "theta", func, False)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    return TQTFunction.apply(x, theta, bits, check_bool(signed, "signed", func),
                             check_bool(power_of_2, "power_of_2", func))


def lsq_quantize(x: torch.Tensor, s: torch.Tensor, bits: int, *, signed: bool = True,
                 grad_scale: float = 1.0) -> torch.Tensor:
    """LSQ fake-quantize ``x`` with step tensor ``s`` and gradient scale ``grad_scale``."""
    func = "lsq_quantize"
    x = _check_x(x, func)
    _scalar(s, "s", func, True)
    signed = check_bool(signed, "signed", func)
    bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
    return LSQFunction.apply(x, s, bits, signed, check_real(grad_scale, "grad_scale", func, 0.0, low_open=True))


def pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """PACT fake-quantize ``x`` with clip tensor ``alpha`` (∂q/∂α = 1 only for x ≥ α)."""
    func = "pact_quantize"
    x = _check_x(x, func)
    _scalar(alpha, "alpha", func, True)
    return PACTFunction.apply(x, alpha, check_int(bits, "bits", func, 1, MAX_BITS), False)


def calibrated_pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """SAT's gradient-calibrated PACT: PACT's forward, ∂q/∂α = (⌊u⌉ − u)/(2^b − 1) in range."""
    func = "calibrated_pact_quantize"
    x = _check_x(x, func)
    _scalar(alpha, "alpha", func, True)
    return PACTFunction.apply(x, alpha, check_int(bits, "bits", func, 1, MAX_BITS), True)


# ------------------------------------------------------------------ drop-in modules
class TQTQuantizer(torch.nn.Module):
    """A TQT fake-quantizer with a trainable log2 threshold ``theta`` (per tensor).

    Examples
    --------
    >>> import torch
    >>> m = TQTQuantizer(bits=8, init_threshold=4.0)
    >>> m(torch.tensor([0.1, 10.0]))
    tensor([0.0938, 3.9688], grad_fn=<TQTFunctionBackward>)
    """

    def __init__(self, bits: int, init_threshold: float = 1.0, *, signed: bool = True, power_of_2: bool = True):
        super().__init__()
        self.bits = check_int(bits, "bits", "TQTQuantizer", 1, MAX_BITS)
        self.signed = check_bool(signed, "signed", "TQTQuantizer")
        self.power_of_2 = check_bool(power_of_2, "power_of_2", "TQTQuantizer")
        t = check_real(init_threshold, "init_threshold", "TQTQuantizer", 0.0, low_open=True)
        self.theta = torch.nn.Parameter(torch.tensor(math.log2(t)))

    def forward(self, x):
        return tqt_quantize(x, self.theta.to(x.dtype), self.bits, signed=self.signed, power_of_2=self.power_of_2)


class LSQQuantizer(torch.nn.Module):
    """An LSQ fake-quantizer with a trainable step ``s``; ``grad_scale=None`` uses LSQ's
    ``1/√(N·Q_P)`` with ``N`` the number of elements of each input."""

    def __init__(self, bits: int, init_scale: float = 0.1, *, signed: bool = True, grad_scale: float | None = None):
        super().__init__()
        self.signed = check_bool(signed, "signed", "LSQQuantizer")
        self.bits = check_int(bits, "bits", "LSQQuantizer", 2 if self.signed else 1, MAX_BITS)
        self.grad_scale = grad_scale
        self.s = torch.nn.Parameter(torch.tensor(check_real(init_scale, "init_scale", "LSQQuantizer", 0.0,
                                                            low_open=True)))

    def forward(self, x):
        qp = 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1
        g = self.grad_scale if self.grad_scale is not None else 1.0 / math.sqrt(x.numel() * qp)
        return lsq_quantize(x, self.s.to(x.dtype), self.bits, signed=self.signed, grad_scale=g)


class PACTQuantizer(torch.nn.Module):
    """A PACT activation quantizer (includes the ReLU) with trainable clip ``alpha``;
    ``calibrated=True`` gives SAT's gradient-calibrated PACT."""

    def __init__(self, bits: int, init_alpha: float = 8.0, *, calibrated: bool = False):
        super().__init__()
        self.bits = check_int(bits, "bits", "PACTQuantizer", 1, MAX_BITS)
        self.calibrated = check_bool(calibrated, "calibrated", "PACTQuantizer")
        self.alpha = torch.nn.Parameter(torch.tensor(check_real(init_alpha, "init_alpha", "PACTQuantizer", 0.0,
                                                                low_open=True)))

    def forward(self, x):
        f = calibrated_pact_quantize if self.calibrated else pact_quantize
        return f(x, self.alpha.to(x.dtype), self.bits)
