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

Like the numpy rules, the functions (and the modules, which call them) refuse with a
``ValueError`` naming the parameter a threshold whose step or top level is not representable in
the input's dtype: for float32 inputs the step must be at least float32's smallest normal number
and the top level at most its largest finite number (the rules' ``_check_f32_range``); for
float64 the step must not underflow to 0 (PACT's ``α/(2^b − 1)``). Otherwise the forward and the
gradients would silently be 0, inf or NaN. The check reads the one-element parameter's value once
on the host (the value the step is computed from anyway): no per-element work, no effect on
autograd.

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


def _check_range(x, func: str, name: str, value: float, step: float, top: float) -> None:
    """Refuse a parameter whose step or top level is not representable in ``x``'s dtype.

    float32 ``x``: the same rule as :func:`qtheory.ste._check_f32_range` (step at least
    float32's smallest normal number, top level at most its largest finite number). float64
    ``x``: a step that underflows to 0 or a top level that overflows (the values become NaN).
    """
    if x.dtype == torch.float32:
        fi = torch.finfo(torch.float32)
        if not (step >= fi.tiny and top <= fi.max):
            raise param_error(name, func, f"a value whose step ({step:.6g} here) and top level ({top:.6g} here) lie "
                              f"in float32's normal range [{fi.tiny:.8g}, {fi.max:.8g}] when x is float32 (pass "
                              "float64 x for wider parameters)", value)
    elif not (step > 0.0 and math.isfinite(top)):
        raise param_error(name, func, f"a value whose step ({step:.6g} here) is > 0 and top level ({top:.6g} here) "
                          "finite in float64", value)


def _check_grad_scale(x, func: str, grad_scale: float) -> None:
    """float32 ``x``: ``grad_scale`` in float32's normal range (as :func:`qtheory.ste.lsq`)."""
    fi = torch.finfo(torch.float32)
    if x.dtype == torch.float32 and not fi.tiny <= grad_scale <= fi.max:
        raise param_error("grad_scale", func, "a value in float32's normal range when x is float32", grad_scale)


def _tqt_step(theta: float, bits: int, signed: bool, power_of_2: bool) -> tuple[float, float]:
    """``(step, top level)`` of TQT (Python floats, as :func:`qtheory.ste.tqt` computes them)."""
    e = math.ceil(theta) if power_of_2 else theta
    s = 2.0**e / 2.0 ** (bits - 1 if signed else bits)
    n, p = _codes(bits, signed)
    return s, s * max(-n, p)


def _lsq_step(s: float, bits: int, signed: bool) -> tuple[float, float]:
    n, p = _codes(bits, signed)
    return s, s * max(-n, p)


def _pact_step(alpha: float, bits: int) -> tuple[float, float]:
    return alpha / (2.0**bits - 1.0), alpha


def _c(v, like):
    return torch.tensor(v, dtype=like.dtype, device=like.device)


def _codes(bits, signed):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


# ------------------------------------------------------------------ the rules (mirror qtheory.ste)
def _tqt(x, theta: float, bits: int, signed: bool, power_of_2: bool):
    s, _ = _tqt_step(theta, bits, signed, power_of_2)
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
        theta = _scalar(param, "param", func, False)
        _check_range(x, func, "param", theta, *_tqt_step(theta, bits, signed, power_of_2))
        return _tqt(x, theta, bits, signed, power_of_2)
    if estimator == "lsq":
        bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
        s = _scalar(param, "param", func, True)
        _check_range(x, func, "param", s, *_lsq_step(s, bits, signed))
        _check_grad_scale(x, func, grad_scale)
        return _lsq(x, s, bits, signed, grad_scale)
    if estimator in ("pact", "calibrated_pact"):
        bits = check_int(bits, "bits", func, 1, MAX_BITS)
        alpha = _scalar(param, "param", func, True)
        _check_range(x, func, "param", alpha, *_pact_step(alpha, bits))
        return _pact(x, alpha, bits, estimator == "calibrated_pact")
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
    t = _scalar(theta, "theta", func, False)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    signed = check_bool(signed, "signed", func)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    _check_range(x, func, "theta", t, *_tqt_step(t, bits, signed, power_of_2))
    return TQTFunction.apply(x, theta, bits, signed, power_of_2)


def lsq_quantize(x: torch.Tensor, s: torch.Tensor, bits: int, *, signed: bool = True,
                 grad_scale: float = 1.0) -> torch.Tensor:
    """LSQ fake-quantize ``x`` with step tensor ``s`` and gradient scale ``grad_scale``."""
    func = "lsq_quantize"
    x = _check_x(x, func)
    v = _scalar(s, "s", func, True)
    signed = check_bool(signed, "signed", func)
    bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
    grad_scale = check_real(grad_scale, "grad_scale", func, 0.0, low_open=True)
    _check_range(x, func, "s", v, *_lsq_step(v, bits, signed))
    _check_grad_scale(x, func, grad_scale)
    return LSQFunction.apply(x, s, bits, signed, grad_scale)


def pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """PACT fake-quantize ``x`` with clip tensor ``alpha`` (∂q/∂α = 1 only for x ≥ α)."""
    func = "pact_quantize"
    x = _check_x(x, func)
    a = _scalar(alpha, "alpha", func, True)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    _check_range(x, func, "alpha", a, *_pact_step(a, bits))
    return PACTFunction.apply(x, alpha, bits, False)


def calibrated_pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """SAT's gradient-calibrated PACT: PACT's forward, ∂q/∂α = (⌊u⌉ − u)/(2^b − 1) in range."""
    func = "calibrated_pact_quantize"
    x = _check_x(x, func)
    a = _scalar(alpha, "alpha", func, True)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    _check_range(x, func, "alpha", a, *_pact_step(a, bits))
    return PACTFunction.apply(x, alpha, bits, True)


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
    ``1/√(N·Q_P)`` with ``N`` the number of elements of each input (1 for an empty input, which
    gives an empty output and a zero gradient for ``s``).

    Examples
    --------
    >>> import torch
    >>> m = LSQQuantizer(4, init_scale=0.5)
    >>> m(torch.tensor([0.3, -9.0]))
    tensor([ 0.5000, -4.0000], grad_fn=<LSQFunctionBackward>)
    >>> m(torch.zeros(0)).sum().backward()
    >>> m.s.grad
    tensor(0.)
    """

    def __init__(self, bits: int, init_scale: float = 0.1, *, signed: bool = True, grad_scale: float | None = None):
        super().__init__()
        self.signed = check_bool(signed, "signed", "LSQQuantizer")
        self.bits = check_int(bits, "bits", "LSQQuantizer", 2 if self.signed else 1, MAX_BITS)
        self.grad_scale = grad_scale
        self.s = torch.nn.Parameter(torch.tensor(check_real(init_scale, "init_scale", "LSQQuantizer", 0.0,
                                                            low_open=True)))

    def forward(self, x):
        qp = 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1
        g = self.grad_scale if self.grad_scale is not None else 1.0 / math.sqrt(max(x.numel(), 1) * qp)
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
