"""Straight-through threshold gradients: TQT, LSQ, PACT and SAT's calibrated PACT.

Four ways to learn the clipping threshold of a uniform quantizer by backprop. Each
rule gives, vectorised over the input ``x``, the forward value ``q(x)``, the
straight-through derivative ``∂q/∂x`` and the derivative ``∂q/∂(parameter)`` with
respect to the estimator's own threshold parameter (``u = x/s``, ``⌊·⌉`` = round half to even):

- :func:`tqt` — parameter ``θ = log2 t``; ``q = clip(⌊u⌉, n, p)·s`` with ``s = 2^⌈θ⌉/2^(b−1)``
  (signed) or ``2^⌈θ⌉/2^b`` (unsigned); range test on the *rounded* ``⌊u⌉``.
- :func:`lsq` — parameter ``s``; ``q = ⌊clip(u, −Q_N, Q_P)⌉·s``; range test on the *unrounded*
  ``u`` (strict); gradient scale ``g``.
- :func:`pact` — parameter ``α``; ``q = ⌊clip(x, 0, α)/s⌉·s``, ``s = α/(2^b − 1)``;
  ``∂q/∂α = 1`` for ``x ≥ α`` only (in-range term dropped).
- :func:`calibrated_pact` — SAT's version: same forward, ``∂q/∂α = (⌊u⌉ − u)/(2^b − 1)`` in range.

Beyond the pointwise rules:

- :func:`expected_grad`, :func:`expected_loss`, :func:`expected_loss_grad` — exact expectations
  under a prior for ``L = ½(q − x)²`` (bin-by-bin partial moments); :func:`montecarlo_grad` checks
  them by sampling.
- :func:`stationary_threshold`, :func:`stationary_table`, :func:`mse_optimal_scale` — where the
  expected STE gradient vanishes, beside the MSE optimum.
- :func:`pow2_equilibrium` — the integer boundary power-of-2 TQT oscillates across, and the split.
- :func:`train_threshold` — a one-quantizer training simulator (SGD/Adam, log or raw domain).

Grids are those of :class:`qtheory.Quantizer`: TQT and LSQ use ``"int"`` (signed, codes
``−2^(b−1) .. 2^(b−1)−1``) or ``"uint"`` (unsigned, codes ``0 .. 2^b−1``); PACT and calibrated PACT
use ``"unsigned"`` (levels ``k·α/(2^b−1)``, ``α`` itself a level).

With ``L = ½(q − x)²`` the per-sample threshold gradient is ``(q − x)·∂q/∂(parameter)``;
:func:`l2_param_grad` returns it. The expected value of that gradient under a prior is computed
exactly, bin by bin (see :func:`expected_grad`).

Dtype contract (so the PyTorch autograd functions in :mod:`qtheory.torch_ste` can match these
rules bit for bit): the rules compute in float32 when ``x`` is a float32 array and in float64
otherwise. The scale ``s`` is computed once as a Python float (``2.0 ** θ`` etc.), cast to the
working dtype, and every array operation is done in that dtype in a fixed order.

Sources: Jain et al., *Trained quantization thresholds* (MLSys 2020), eqs. 7–8 and the Graffitist
code; Esser et al., *Learned step size quantization* (ICLR 2020); Choi et al., *PACT* (2018);
Jin et al., *Towards efficient training for neural network quantization* (SAT, 2019/2020),
gradient-calibrated PACT.

Examples
--------
>>> import numpy as np
>>> from qtheory import ste
>>> g = ste.tqt([-3.0, 0.3, 0.9, 2.5], theta=1.0, bits=2)    # t = 2, s = 1, codes -2..1
>>> g.q
array([-2.,  0.,  1.,  1.])
>>> g.dq_dx
array([0., 1., 1., 0.])
>>> np.round(g.dq_dparam / np.log(2), 6)    # s·(r − u) inside, s·n or s·p outside
array([-2. , -0.3,  0.1,  1. ])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._progress import check_progress, progress_bar
from ._results import ResultMixin
from ._typing import ArrayLike, PriorLike, RNGLike
from ._validation import check_bool, check_int, check_option, check_real, check_samples, param_error
from .quantizer import MAX_BITS, ROUNDINGS, Quantizer

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ESTIMATORS",
    "PARAMS",
    "STEGrad",
    "tqt",
    "lsq",
    "pact",
    "calibrated_pact",
    "pointwise",
    "l2_param_grad",
    "tqt_scale",
    "lsq_grad_scale",
    "estimator_grid",
    "scale_of",
    "param_of_scale",
    "expected_grad",
    "expected_loss",
    "expected_loss_grad",
    "montecarlo_grad",
    "MCEstimate",
    "stationary_threshold",
    "Stationary",
    "stationary_table",
    "mse_optimal_scale",
    "pow2_equilibrium",
    "Pow2Equilibrium",
    "train_threshold",
    "TrainResult",
]

LN2 = math.log(2.0)
#: Largest element count :func:`lsq_grad_scale` accepts (far beyond any tensor; keeps ``N·Q_P`` a float).
MAX_ELEMENTS = 10**18
_F32 = np.finfo(np.float32)
#: The four estimators, by name.
ESTIMATORS = ("tqt", "lsq", "pact", "calibrated_pact")
#: The threshold parameter each estimator trains.
PARAMS = {"tqt": "theta", "lsq": "s", "pact": "alpha", "calibrated_pact": "alpha"}


@dataclass(frozen=True)
class STEGrad:
    """Forward value and straight-through derivatives of one quantizer, per input element.

    Attributes
    ----------
    q : ndarray
        Quantized values ``q(x)``.
    dq_dx : ndarray
        Straight-through ``∂q/∂x`` (0 or 1).
    dq_dparam : ndarray
        ``∂q/∂(parameter)`` for the estimator's threshold parameter.
    param : str
        Which parameter: ``"theta"`` (TQT, log2 of the threshold), ``"s"`` (LSQ step) or
        ``"alpha"`` (PACT clip).
    scale : float
        The step ``s`` used in the forward pass.
    """

    q: np.ndarray
    dq_dx: np.ndarray
    dq_dparam: np.ndarray
    param: str
    scale: float


# ====================================================================== helpers
def _as_input(x, func: str) -> np.ndarray:
    """Validated input array: float32 stays float32, anything else becomes float64."""
    arr = np.asarray(x)
    checked = check_samples(x, "x", func, ndim=None)
    return arr if arr.dtype == np.float32 else checked


def _check_f32_range(xs: np.ndarray, func: str, name: str, value: float, step: float, top: float) -> None:
    """Refuse a parameter whose step or top level is not a normal float32 when ``x`` is float32.

    The rules compute in the input's dtype (see the module docstring); a step below float32's
    smallest normal number or a level above its largest finite number would turn the forward
    and the gradients into 0, inf or NaN.
    """
    if xs.dtype != np.float32:
        return
    if not (step >= float(_F32.tiny) and top <= float(_F32.max)):
        allowed = (f"a value whose step ({step:.6g} here) and top level ({top:.6g} here) lie in float32's normal "
                   f"range [{float(_F32.tiny):.8g}, {float(_F32.max):.8g}] when x is float32 (pass float64 x "
                   "for wider parameters)")
        raise param_error(name, func, allowed, value)


def _round(u: np.ndarray, rounding: str) -> np.ndarray:
    """Dtype-preserving rounding with a tie rule (see :func:`qtheory.quantizer.round_with`)."""
    if rounding == "half_even":
        return np.rint(u)
    half = u.dtype.type(0.5)
    if rounding == "half_away":
        return np.copysign(np.floor(np.abs(u) + half), u)
    return np.floor(u + half)  # half_up


def tqt_scale(theta: float, bits: int, *, signed: bool = True, power_of_2: bool = True) -> float:
    """TQT's step ``s`` for log-threshold ``θ``: ``2^⌈θ⌉ / 2^(b−1)`` (signed) or ``2^⌈θ⌉ / 2^b``.

    With ``power_of_2=False`` the ceiling is dropped (continuous scale, ``t = 2^θ``).

    Examples
    --------
    >>> tqt_scale(2.3, 8), tqt_scale(2.3, 8, signed=False), tqt_scale(2.0, 8, power_of_2=False)
    (0.0625, 0.03125, 0.03125)
    """
    func = "tqt_scale"
    theta = check_real(theta, "theta", func, -1000.0, 1000.0)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    signed = check_bool(signed, "signed", func)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    return _tqt_scale(theta, bits, signed, power_of_2)


def _tqt_scale(theta: float, bits: int, signed: bool, power_of_2: bool) -> float:
    e = math.ceil(theta) if power_of_2 else theta
    return 2.0**e / 2.0 ** (bits - 1 if signed else bits)


def estimator_grid(estimator: str, signed: bool = True) -> str:
    """The :class:`qtheory.Quantizer` grid an estimator quantizes onto.

    Examples
    --------
    >>> estimator_grid("tqt"), estimator_grid("lsq", signed=False), estimator_grid("pact")
    ('int', 'uint', 'unsigned')
    """
    estimator = check_option(estimator, "estimator", "estimator_grid", ESTIMATORS)
    signed = check_bool(signed, "signed", "estimator_grid")
    if estimator in ("pact", "calibrated_pact"):
        return "unsigned"
    return "int" if signed else "uint"


def _codes(bits: int, signed: bool) -> tuple[int, int]:
    """``(n, p)`` = ``(qmin, qmax)`` of the int/uint grid."""
    q = Quantizer(bits, 1.0, "int" if signed else "uint")
    return q.qmin, q.qmax


def scale_of(estimator: str, param: ArrayLike, bits: int, *, signed: bool = True,
             power_of_2: bool = False) -> np.ndarray | float:
    """Step ``s`` for an estimator's parameter (vectorised).

    TQT: ``θ`` → ``2^⌈θ⌉/2^(b−1)`` (or ``2^θ/2^(b−1)`` with ``power_of_2=False``, the default
    here; ``2^b`` instead of ``2^(b−1)`` unsigned); LSQ: ``s`` itself; PACT: ``α/(2^b − 1)``.
    ``θ`` must lie in ``[−1000, 1000]`` (as in :func:`tqt`); ``s`` and ``α`` must be positive and
    at most ``1e300``.

    Examples
    --------
    >>> float(scale_of("tqt", 1.0, 4)), float(scale_of("pact", 3.0, 2))
    (0.25, 1.0)
    >>> scale_of("TQT", 1.0, 4)
    Traceback (most recent call last):
    ...
    ValueError: The 'estimator' parameter of scale_of must be one of 'tqt', 'lsq', 'pact', 'calibrated_pact'. Got 'TQT' instead.
    """
    func = "scale_of"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    p = _check_params(param, estimator, func, name="param")
    return _scale_of(estimator, p, bits, signed, power_of_2)


def _scale_of(estimator: str, p: np.ndarray, bits: int, signed: bool, power_of_2: bool) -> np.ndarray:
    if estimator == "tqt":
        e = np.ceil(p) if power_of_2 else p
        return np.exp2(e) / 2.0 ** (bits - 1 if signed else bits)
    if estimator == "lsq":
        return p
    return p / (2.0**bits - 1.0)


def param_of_scale(estimator: str, s: ArrayLike, bits: int, *, signed: bool = True) -> np.ndarray | float:
    """Inverse of :func:`scale_of` (continuous scale): the parameter whose step is ``s``.

    ``s`` must be positive and at most ``1e300``.

    Examples
    --------
    >>> float(param_of_scale("tqt", 0.25, 4)), float(param_of_scale("pact", 1.0, 2))
    (1.0, 3.0)
    """
    func = "param_of_scale"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    s = _check_params(s, "lsq", func, name="s")
    return _param_of_scale(estimator, s, bits, signed)


def _param_of_scale(estimator: str, s, bits: int, signed: bool):
    s = np.asarray(s, dtype=np.float64)
    if estimator == "tqt":
        return np.log2(s) + (bits - 1 if signed else bits)
    if estimator == "lsq":
        return s
    return s * (2.0**bits - 1.0)


def lsq_grad_scale(n_elements: int, bits: int, *, signed: bool = True) -> float:
    """LSQ's step-size gradient scale ``g = 1/√(N·Q_P)`` (Esser et al., sec. 2.2).

    ``N`` is the number of elements sharing the step (weights of a layer, or features of an
    activation), ``Q_P = 2^(b−1) − 1`` signed or ``2^b − 1`` unsigned.

    Examples
    --------
    >>> lsq_grad_scale(1000, 8)     # 1/sqrt(1000 * 127)
    0.002806...
    """
    func = "lsq_grad_scale"
    signed = check_bool(signed, "signed", func)
    n_elements = check_int(n_elements, "n_elements", func, 1, MAX_ELEMENTS)
    bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
    qp = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    return 1.0 / math.sqrt(n_elements * qp)


# ====================================================================== pointwise rules
def tqt(x: ArrayLike, theta: float, bits: int, *, signed: bool = True, power_of_2: bool = True,
        rounding: str = "half_even") -> STEGrad:
    """TQT fake-quantizer with its straight-through gradients (Jain et al. 2020, eqs. 7–8).

    Forward: ``s = 2^⌈θ⌉ / 2^(b−1)`` (signed, grid ``"int"``) or ``2^⌈θ⌉ / 2^b`` (unsigned, grid
    ``"uint"``); ``u = x/s``, ``r = ⌊u⌉`` (round half to even), ``q = clip(r, n, p)·s``, i.e.
    *round then clip*. The ceiling uses a straight-through estimator, so ``∂s/∂θ = s·ln2``.

    Backward (range test on the rounded ``r``, so the half-bins just outside the outermost levels
    count as inside)::

        region        ∂q/∂θ            ∂q/∂x
        n ≤ r ≤ p     s·ln2·(r − u)    1
        r < n         s·ln2·n          0
        r > p         s·ln2·p          0

    Parameters
    ----------
    x : array_like
        Inputs (float32 arrays are computed in float32, everything else in float64).
    theta : float
        Log2 threshold ``θ = log2 t``.
    bits : int
        Bit-width ``b`` (1–16).
    signed : bool
        Signed (``n = −2^(b−1)``, ``p = 2^(b−1) − 1``) or unsigned (``n = 0``, ``p = 2^b − 1``).
    power_of_2 : bool
        Use the power-of-2 scale ``2^⌈θ⌉`` (TQT) or the continuous scale ``2^θ``.
    rounding : {"half_even", "half_away", "half_up"}
        Tie rule (TQT: half to even).

    Returns
    -------
    STEGrad
        ``q``, ``dq_dx``, ``dq_dparam`` (= ``∂q/∂θ``), ``param="theta"``, ``scale``.

    Examples
    --------
    >>> g = tqt([0.1, 0.7, 1.9], theta=0.5, bits=2, signed=False)   # s = 2/4 = 0.5, codes 0..3
    >>> g.scale, g.q
    (0.5, array([0. , 0.5, 1.5]))
    >>> np.round(g.dq_dparam, 4)    # ln2 · s · (r − u), and ln2 · s · p for the clipped 1.9
    array([-0.0693,  -0.1386,  1.0397])
    """
    func = "tqt"
    xs = _as_input(x, func)
    theta = check_real(theta, "theta", func, -1000.0, 1000.0)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    signed = check_bool(signed, "signed", func)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    rounding = check_option(rounding, "rounding", func, ROUNDINGS)
    s = _tqt_scale(theta, bits, signed, power_of_2)
    n, p = _codes(bits, signed)
    _check_f32_range(xs, func, "theta", theta, s, s * max(-n, p))
    dt = xs.dtype.type
    sd, ln2 = dt(s), dt(LN2)
    u = xs / sd
    r = _round(u, rounding)
    rc = np.clip(r, dt(n), dt(p))
    inside = (r >= dt(n)) & (r <= dt(p))
    q = rc * sd
    dq_dtheta = np.where(inside, r - u, rc) * sd * ln2
    return STEGrad(q, inside.astype(xs.dtype), dq_dtheta, "theta", s)


def lsq(x: ArrayLike, s: float, bits: int, *, signed: bool = True, grad_scale: float = 1.0,
        rounding: str = "half_even") -> STEGrad:
    """LSQ fake-quantizer with its straight-through gradients (Esser et al. 2020, eq. 3).

    Forward: ``u = x/s``, ``q = ⌊clip(u, −Q_N, Q_P)⌉·s`` (*clip then round*), with
    ``Q_N = 2^(b−1)``, ``Q_P = 2^(b−1) − 1`` signed (grid ``"int"``) or ``Q_N = 0``,
    ``Q_P = 2^b − 1`` unsigned (grid ``"uint"``).

    Backward (range test on the *unrounded* ``u``, strict)::

        region             ∂q/∂s              ∂q/∂x
        −Q_N < u < Q_P     g·(⌊u⌉ − u)        1
        u ≤ −Q_N           g·(−Q_N)           0
        u ≥ Q_P            g·Q_P              0

    ``g`` is the gradient scale (``grad_scale``; LSQ uses ``1/√(N·Q_P)``, see
    :func:`lsq_grad_scale`). Compared with TQT (``∂q/∂θ = s·ln2·∂q/∂s``), only the edge half-bins
    ``u ∈ [p, p + ½)`` and ``[n − ½, n)`` differ: LSQ treats them as clipped.

    Parameters
    ----------
    x : array_like
        Inputs (float32 stays float32, else float64).
    s : float
        Step size, > 0.
    bits : int
        Bit-width (2–16 signed, 1–16 unsigned).
    signed : bool
        Signed or unsigned code range.
    grad_scale : float
        Multiplier ``g`` of ``∂q/∂s``, > 0.
    rounding : {"half_even", "half_away", "half_up"}

    Returns
    -------
    STEGrad
        ``dq_dparam`` = ``∂q/∂s``, ``param="s"``.

    Examples
    --------
    >>> g = lsq([-9.0, 0.3, 3.2, 3.6], s=1.0, bits=3)    # codes -4..3
    >>> g.q, g.dq_dx
    (array([-4.,  0.,  3.,  3.]), array([0., 1., 0., 0.]))
    >>> np.round(g.dq_dparam, 6)
    array([-4. , -0.3,  3. ,  3. ])
    """
    func = "lsq"
    xs = _as_input(x, func)
    s = check_real(s, "s", func, 0.0, low_open=True)
    signed = check_bool(signed, "signed", func)
    bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
    grad_scale = check_real(grad_scale, "grad_scale", func, 0.0, low_open=True)
    rounding = check_option(rounding, "rounding", func, ROUNDINGS)
    n, p = _codes(bits, signed)
    _check_f32_range(xs, func, "s", s, s, s * max(-n, p))
    if xs.dtype == np.float32 and not float(_F32.tiny) <= grad_scale <= float(_F32.max):
        raise param_error("grad_scale", func, "a value in float32's normal range when x is float32", grad_scale)
    dt = xs.dtype.type
    sd, g = dt(s), dt(grad_scale)
    u = xs / sd
    uc = np.clip(u, dt(n), dt(p))
    r = _round(uc, rounding)
    inside = (u > dt(n)) & (u < dt(p))
    q = r * sd
    dq_ds = np.where(inside, r - u, uc) * g
    return STEGrad(q, inside.astype(xs.dtype), dq_ds, "s", float(s))


def _pact_forward(xs: np.ndarray, alpha: float, bits: int, rounding: str):
    m = 2.0**bits - 1.0
    s = alpha / m
    dt = xs.dtype.type
    sd, ad = dt(s), dt(alpha)
    xc = np.clip(xs, dt(0.0), ad)
    u = xc / sd
    r = _round(u, rounding)
    q = r * sd
    upper = xs >= ad
    dq_dx = ((xs >= dt(0.0)) & ~upper).astype(xs.dtype)
    return s, m, u, r, q, upper, dq_dx


def _pact_validate(func, x, alpha, bits, rounding):
    xs = _as_input(x, func)
    alpha = check_real(alpha, "alpha", func, 0.0, low_open=True)
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    rounding = check_option(rounding, "rounding", func, ROUNDINGS)
    _check_f32_range(xs, func, "alpha", alpha, alpha / (2.0**bits - 1.0), alpha)
    return xs, alpha, bits, rounding


def pact(x: ArrayLike, alpha: float, bits: int, *, rounding: str = "half_even") -> STEGrad:
    """PACT activation quantizer with its straight-through gradients (Choi et al. 2018).

    Forward: ``y = clip(x, 0, α)``, ``q = ⌊y/s⌉·s`` with ``s = α/(2^b − 1)`` (grid
    ``"unsigned"``; PACT writes it ``⌊y·(2^b−1)/α⌉·α/(2^b−1)``).

    Backward::

        region        ∂q/∂α    ∂q/∂x
        x ≥ α         1        0
        0 ≤ x < α     0        1
        x < 0         0        0

    PACT drops the in-range term ``∂q/∂α = ⌊u⌉/m − u/m`` (``m = 2^b − 1``), so under an L2 loss its
    expected gradient ``E[(α − X); X ≥ α] < 0`` always pushes ``α`` up.

    Parameters
    ----------
    x : array_like
        Inputs (float32 stays float32, else float64).
    alpha : float
        Clip, > 0 (the top level).
    bits : int
        Bit-width ``b`` (1–16).
    rounding : {"half_even", "half_away", "half_up"}

    Returns
    -------
    STEGrad
        ``dq_dparam`` = ``∂q/∂α``, ``param="alpha"``.

    Examples
    --------
    >>> g = pact([-1.0, 0.4, 2.0, 5.0], alpha=3.0, bits=2)   # levels 0, 1, 2, 3
    >>> g.q, g.dq_dx, g.dq_dparam
    (array([0., 0., 2., 3.]), array([0., 1., 1., 0.]), array([0., 0., 0., 1.]))
    """
    xs, alpha, bits, rounding = _pact_validate("pact", x, alpha, bits, rounding)
    s, m, u, r, q, upper, dq_dx = _pact_forward(xs, alpha, bits, rounding)
    return STEGrad(q, dq_dx, upper.astype(xs.dtype), "alpha", s)


def calibrated_pact(x: ArrayLike, alpha: float, bits: int, *, rounding: str = "half_even") -> STEGrad:
    """SAT's gradient-calibrated PACT (Jin, Yang, Liao 2019/2020): PACT plus the in-range term.

    Forward: identical to :func:`pact` — ``q = ⌊clip(x, 0, α)/s⌉·s``, ``s = α/(2^b − 1)``.

    Backward (``m = 2^b − 1``, ``u = clip(x, 0, α)/s``, ``r = ⌊u⌉``)::

        region        ∂q/∂α              ∂q/∂x
        x ≥ α         1                  0
        0 ≤ x < α     (r − u)/m          1
        x < 0         0  (u = r = 0)     0

    In range, ``(r − u)/m = q_b(x/α) − x/α`` — what autograd gives for ``α·q_b(clip(x,0,α)/α)``
    with a straight-through round, and LSQ's ``∂q/∂s`` divided by ``m`` (``s = α/m``). Its mean
    square is ``Δ²/12`` with ``Δ = 1/m`` — it matters at 2–3 bits.

    Parameters
    ----------
    x : array_like
        Inputs (float32 stays float32, else float64).
    alpha : float
        Clip, > 0.
    bits : int
        Bit-width ``b`` (1–16).
    rounding : {"half_even", "half_away", "half_up"}

    Returns
    -------
    STEGrad
        ``dq_dparam`` = ``∂q/∂α``, ``param="alpha"``.

    Examples
    --------
    >>> g = calibrated_pact([-1.0, 0.4, 2.2, 5.0], alpha=3.0, bits=2)   # m = 3, s = 1
    >>> g.q
    array([0., 0., 2., 3.])
    >>> np.round(g.dq_dparam, 6)       # (r − u)/3 in range, 1 above α
    array([ 0.      , -0.133333, -0.066667,  1.      ])
    """
    xs, alpha, bits, rounding = _pact_validate("calibrated_pact", x, alpha, bits, rounding)
    s, m, u, r, q, upper, dq_dx = _pact_forward(xs, alpha, bits, rounding)
    dt = xs.dtype.type
    dq_da = np.where(upper, dt(1.0), (r - u) / dt(m))
    return STEGrad(q, dq_dx, dq_da, "alpha", s)


def pointwise(estimator: str, x: ArrayLike, param: float, bits: int, *, signed: bool = True,
              power_of_2: bool = True, grad_scale: float = 1.0, rounding: str = "half_even") -> STEGrad:
    """Dispatch to :func:`tqt`, :func:`lsq`, :func:`pact` or :func:`calibrated_pact` by name.

    ``param`` is the estimator's own parameter (``θ``, ``s`` or ``α``); options that do not apply
    to an estimator (``power_of_2`` and ``signed`` for PACT, ``grad_scale`` for TQT/PACT) are
    ignored.

    Examples
    --------
    >>> [float(pointwise(e, [0.7], 1.0, 2, signed=False).dq_dparam[0]) for e in ESTIMATORS]
    [-0.138629..., 0.300000..., 0.0, -0.033333...]
    """
    estimator = check_option(estimator, "estimator", "pointwise", ESTIMATORS)
    if estimator == "tqt":
        return tqt(x, param, bits, signed=signed, power_of_2=power_of_2, rounding=rounding)
    if estimator == "lsq":
        return lsq(x, param, bits, signed=signed, grad_scale=grad_scale, rounding=rounding)
    if estimator == "pact":
        return pact(x, param, bits, rounding=rounding)
    return calibrated_pact(x, param, bits, rounding=rounding)


def l2_param_grad(estimator: str, x: ArrayLike, param: float, bits: int, **options: Any) -> np.ndarray:
    """Per-sample ``∂L/∂(parameter)`` for ``L = ½(q(x) − x)²``: ``(q − x)·∂q/∂(parameter)``.

    ``options`` are passed to :func:`pointwise`.

    Examples
    --------
    >>> l2_param_grad("tqt", [0.3, 5.0], 1.0, 2, power_of_2=False)   # s = 1: ln2·(r−u)², ln2·p(p−u)
    array([ 0.06238325, -2.77258872])
    """
    g = pointwise(estimator, x, param, bits, **options)
    xs = np.asarray(x, dtype=g.q.dtype)
    return (g.q - xs) * g.dq_dparam



# ====================================================================== exact expectations
def _prior(prior, func):
    from .priors import as_prior

    return as_prior(prior, name="prior", func=func)


class _Scaled:
    """A prior seen in units of ``c``: ``X/c`` (fallback for priors without a rescaled form)."""

    def __init__(self, base, c: float):
        self.base, self.c = base, c

    def partial_moments(self, a, b):
        c = self.c
        m0, m1, m2 = self.base.partial_moments(np.asarray(a, float) * c, np.asarray(b, float) * c)
        return m0, m1 / c, m2 / (c * c)

    def interval_sq_error(self, a, b, y):
        c = self.c
        return self.base.interval_sq_error(np.asarray(a, float) * c, np.asarray(b, float) * c,
                                           np.asarray(y, float) * c) / (c * c)

    def abs_quantile(self, q):
        return self.base.abs_quantile(q) / self.c


def _natural_scale(pr) -> float:
    from .priors import Empirical, Gaussian, Laplace, Mixture, Rectified

    if isinstance(pr, (Gaussian, Laplace)):
        return max(pr.scale, abs(pr.loc))
    if isinstance(pr, Empirical):
        return float(np.max(np.abs(pr.x)))
    if isinstance(pr, Rectified):
        return _natural_scale(pr.base)
    if isinstance(pr, Mixture):
        return max(_natural_scale(c) for c in pr.components)
    return math.nan


def _standardise(pr):
    """``(prior of X/c, k)`` with ``c = 2^k`` the power of 2 nearest the prior's natural scale.

    Every expectation here is homogeneous in the scale (the loss in ``c²``, the step-size and
    clip gradients in ``c``, TQT's ``θ`` shifts by ``k``), so computing in units of ``c`` and
    scaling back is exact — ``c`` is a power of 2 — and keeps every partial moment and
    coefficient away from float underflow and overflow for priors from 1e-300 to 1e300.
    """
    from .priors import Empirical, Gaussian, Laplace, Mixture, Rectified

    sc = _natural_scale(pr)
    if not (np.isfinite(sc) and sc > 0):
        return pr, 0
    k = int(round(math.log2(sc)))
    if k == 0:
        return pr, 0
    c = math.ldexp(1.0, k)

    def rescale(q):
        if isinstance(q, Gaussian):
            return Gaussian(q.sigma / c, loc=q.loc / c)
        if isinstance(q, Laplace):
            return Laplace(q.b / c, loc=q.loc / c)
        if isinstance(q, Empirical):
            return Empirical(q.x / c)
        if isinstance(q, Rectified):
            return Rectified(rescale(q.base))
        if isinstance(q, Mixture):
            return Mixture(q.weights, [rescale(v) for v in q.components])
        return _Scaled(q, c)

    return rescale(pr), k


def _check_common(func, estimator, bits, signed):
    estimator = check_option(estimator, "estimator", func, ESTIMATORS)
    signed = check_bool(signed, "signed", func)
    if estimator in ("pact", "calibrated_pact"):
        signed = False
    low = 2 if (estimator == "lsq" and signed) else 1
    bits = check_int(bits, "bits", func, low, MAX_BITS)
    return estimator, bits, signed


def _check_params(param, estimator, func, name="param") -> np.ndarray:
    if estimator == "tqt":
        what = "a real number in the range [-1000, 1000] or an array of them"
    else:
        what = "a real number in the range (0, 1e+300] or an array of them"
    if isinstance(param, (str, bytes)):
        raise param_error(name, func, what, param, TypeError)
    try:
        p = np.asarray(param, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise param_error(name, func, what, param, TypeError) from None
    bad = ~np.isfinite(p)
    bad |= (np.abs(p) > 1000.0) if estimator == "tqt" else ((p <= 0) | (p > 1e300))
    if np.any(bad):
        raise param_error(name, func, what, param if p.ndim == 0 else p[bad].ravel()[0].item())
    return p


def _grad_regions(estimator: str, s: float, bits: int, signed: bool):
    """Regions ``[a, b)`` and coefficients ``(c0, c1, c2)``: ``∂L/∂param = c0 + c1·x + c2·x²``
    on each region, for ``L = ½(q − x)²`` and the estimator's straight-through rule at step ``s``."""
    with np.errstate(over="ignore"):   # edges beyond the float range are ±inf: empty bins
        return _grad_regions_raw(estimator, np.float64(s), bits, signed)


def _grad_regions_raw(estimator: str, s: float, bits: int, signed: bool):
    inf = np.inf
    if estimator in ("tqt", "lsq"):
        n, p = _codes(bits, signed)
        k = np.arange(n, p + 1, dtype=np.float64)
        if estimator == "tqt":  # factor ln2: ∂L/∂θ = s²·ln2·{(r−u)², n(n−u), p(p−u)}
            a = np.concatenate([[-inf], (k - 0.5) * s, [(p + 0.5) * s]])
            b = np.concatenate([[(n - 0.5) * s], (k + 0.5) * s, [inf]])
            with np.errstate(over="ignore"):
                c0 = LN2 * np.concatenate([[(s * n) ** 2], (s * k) ** 2, [(s * p) ** 2]])
            c1 = LN2 * np.concatenate([[-s * n], -2.0 * s * k, [-s * p]])
            c2 = LN2 * np.concatenate([[0.0], np.ones_like(k), [0.0]])
            return a, b, c0, c1, c2
        # lsq: ∂L/∂s = s·{(r−u)² for n<u<p; n(n−u) for u≤n; p(p−u) for u≥p}
        a = np.concatenate([[-inf], np.maximum((k - 0.5) * s, n * s), [p * s]])
        b = np.concatenate([[n * s], np.minimum((k + 0.5) * s, p * s), [inf]])
        c0 = np.concatenate([[s * n * n], s * k * k, [s * p * p]])
        c1 = np.concatenate([[-float(n)], -2.0 * k, [-float(p)]])
        c2 = np.concatenate([[0.0], np.full_like(k, 1.0 / s), [0.0]])
        return a, b, c0, c1, c2
    m = 2.0**bits - 1.0
    alpha = s * m
    top = (np.array([alpha]), np.array([inf]), np.array([alpha]), np.array([-1.0]), np.array([0.0]))
    if estimator == "pact":  # ∂L/∂α = (α − x) for x ≥ α
        return top
    k = np.arange(0, 2**bits, dtype=np.float64)  # calibrated: (q − x)(r − u)/m = s(r − u)²/m inside
    a = np.maximum((k - 0.5) * s, 0.0)
    b = np.minimum((k + 0.5) * s, alpha)
    parts = (a, b, s * k * k / m, -2.0 * k / m, np.full_like(k, 1.0 / (s * m)))
    return tuple(np.concatenate([u, v]) for u, v in zip(parts, top, strict=True))


def _forward_quantizer(estimator: str, s: float, bits: int, signed: bool) -> Quantizer:
    grid = "unsigned" if estimator in ("pact", "calibrated_pact") else ("int" if signed else "uint")
    return Quantizer.from_scale(bits, s, grid)


def _loss_regions(estimator, s, bits, signed):
    """``½(q − x)²`` as ``c0 + c1·x + c2·x²`` on the forward's decision regions."""
    q = _forward_quantizer(estimator, s, bits, signed)
    t = q.thresholds
    y = q.levels
    a = np.concatenate([[-np.inf], t])
    b = np.concatenate([t, [np.inf]])
    with np.errstate(over="ignore"):   # levels far outside the prior: empty bins (see _expect)
        return a, b, 0.5 * y * y, -y, np.full_like(y, 0.5)


def _mse_grad_regions(estimator, s, bits, signed):
    """``∂/∂s`` of ``½(q − x)²`` with the decision regions held fixed: ``k(k·s − x)``.

    Integrated over the prior this is the exact derivative of the expected loss in ``s``
    (the boundary terms cancel because the error is continuous across decision thresholds)."""
    q = _forward_quantizer(estimator, s, bits, signed)
    t = q.thresholds
    k = q.codes.astype(np.float64)
    a = np.concatenate([[-np.inf], t])
    b = np.concatenate([t, [np.inf]])
    with np.errstate(over="ignore"):
        return a, b, s * k * k, -k, np.zeros_like(k)


def _half_mse(prior, estimator, s, bits, signed) -> float:
    """``E[½(q − X)²]`` at step ``s`` from the prior's centred per-bin errors ``∫(x − y)² dP``,
    summed exactly (``math.fsum``).

    The raw-moment form of :func:`_loss_regions` (``½y²·m0 − y·m1 + ½m2`` per bin) cancels ~2^2b
    times, so its last ~5 digits at 8 bits depend on rounding (the order of the SIMD sum, the last
    ulp of ``exp``); the stationary tables print differences of two such losses (``mse_excess``).
    """
    q = _forward_quantizer(estimator, s, bits, signed)
    a = np.concatenate([[-np.inf], q.thresholds])
    b = np.concatenate([q.thresholds, [np.inf]])
    with np.errstate(over="ignore", invalid="ignore"):
        err = prior.interval_sq_error(a, b, q.levels)
    return 0.5 * math.fsum(np.where(np.isnan(err), 0.0, err).tolist())


def _expect(prior, regions_list) -> np.ndarray:
    """``Σ_regions c0·m0 + c1·m1 + c2·m2`` for each item of ``regions_list`` (one prior call)."""
    if not regions_list:  # (an empty array of parameters)
        return np.zeros(0)
    sizes = [len(r[0]) for r in regions_list]
    a, b, c0, c1, c2 = (np.concatenate([r[i] for r in regions_list]) for i in range(5))
    with np.errstate(over="ignore"):   # far tails: exp(−z²/2) with z² = inf is exactly 0
        m0, m1, m2 = prior.partial_moments(a, b)
    # c·m with 0·inf guarded: far outside the prior's mass a coefficient may overflow while the
    # moment is exactly 0 (moments are finite for priors with a variance)
    with np.errstate(over="ignore", invalid="ignore"):
        terms = (np.where(m0 == 0.0, 0.0, c0 * m0) + np.where(m1 == 0.0, 0.0, c1 * m1)
                 + np.where(m2 == 0.0, 0.0, c2 * m2))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(terms, starts)


def expected_grad(estimator: str, prior: PriorLike, param: ArrayLike, bits: int, *, signed: bool = True,
                  power_of_2: bool = False, grad_scale: float = 1.0) -> np.ndarray:
    """Exact ``E[∂L/∂param]`` under a prior, for ``L = ½(q(X) − X)²`` and the estimator's STE rule.

    On every decision bin the per-sample gradient is a polynomial of degree ≤ 2 in ``x`` (see the
    tables in :func:`tqt`, :func:`lsq`, :func:`pact`, :func:`calibrated_pact`), so its expectation
    is ``Σ_bins c0·m0 + c1·m1 + c2·m2`` with the prior's partial moments
    ``mj = ∫_bin x^j dP``. Bins are half-open ``[a, b)``; ties (measure zero for continuous
    priors) therefore go to the upper bin.

    Parameters
    ----------
    estimator : {"tqt", "lsq", "pact", "calibrated_pact"}
    prior : str, scipy.stats frozen distribution, array_like or Prior
        Anything :func:`qtheory.as_prior` accepts.
    param : float or array_like
        The estimator's parameter: ``θ = log2 t`` (TQT), step ``s`` (LSQ), clip ``α`` (PACT).
    bits : int
    signed : bool
        Signed (grid ``"int"``) or unsigned (``"uint"``) code range for TQT/LSQ; PACT is always
        unsigned.
    power_of_2 : bool
        TQT only: use the power-of-2 scale ``2^⌈θ⌉`` (the expected gradient is then a step
        function of ``θ``) instead of the continuous ``2^θ``.
    grad_scale : float
        LSQ's gradient scale ``g``.

    Returns
    -------
    ndarray
        Same shape as ``param``.

    Examples
    --------
    >>> import numpy as np
    >>> g = expected_grad("tqt", "gaussian", np.log2([1.0, 1.9, 3.0]), 2)
    >>> np.sign(g)      # too small a threshold is pushed up, too large pushed down
    array([-1., -1.,  1.])
    >>> float(expected_grad("pact", "gaussian", 1.0, 4))    # −E[(X − 1)⁺]: PACT always grows α
    -0.083315...
    """
    func = "expected_grad"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    grad_scale = check_real(grad_scale, "grad_scale", func, 0.0, low_open=True)
    p = _check_params(param, estimator, func)
    pr, k = _standardise(_prior(prior, func))
    scales = np.atleast_1d(_scale_of(estimator, _param_in_units(estimator, p, k), bits, signed, power_of_2))
    out = _expect(pr, [_grad_regions(estimator, float(s), bits, signed) for s in scales.ravel()])
    out = _ldexp(out, 2 * k if estimator == "tqt" else k)
    if estimator == "lsq":
        out = out * grad_scale
    return out.reshape(p.shape)


def expected_loss(estimator: str, prior: PriorLike, param: ArrayLike, bits: int, *, signed: bool = True,
                  power_of_2: bool = False) -> np.ndarray:
    """Exact ``E[½(q(X) − X)²]`` (half the MSE) at the estimator's parameter(s).

    Examples
    --------
    >>> round(2 * float(expected_loss("tqt", "gaussian", np.log2(2.0968), 2)), 5)   # MSE at t*
    0.14943
    """
    func = "expected_loss"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    p = _check_params(param, estimator, func)
    pr, k = _standardise(_prior(prior, func))
    scales = np.atleast_1d(_scale_of(estimator, _param_in_units(estimator, p, k), bits, signed, power_of_2))
    out = _expect(pr, [_loss_regions(estimator, float(s), bits, signed) for s in scales.ravel()])
    return np.asarray(_ldexp(out, 2 * k)).reshape(p.shape)


def expected_loss_grad(estimator: str, prior: PriorLike, param: ArrayLike, bits: int, *, signed: bool = True) -> np.ndarray:
    """Exact derivative ``d E[½(q − X)²] / d param`` (continuous scale): the *true* gradient.

    Its zero is the MSE-optimal threshold. The STE's expected gradient (:func:`expected_grad`)
    differs from it in range by ``s·E[u(⌊u⌉ − u)]``-type terms, which is why the STE's stationary
    threshold is not the MSE optimum.

    Examples
    --------
    >>> g = expected_loss_grad("tqt", "gaussian", np.log2([2.0, 2.0968, 2.2]), 2)
    >>> np.sign(g)
    array([-1.,  0.,  1.])
    """
    func = "expected_loss_grad"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    p = _check_params(param, estimator, func)
    pr, k = _standardise(_prior(prior, func))
    scales = np.atleast_1d(_scale_of(estimator, _param_in_units(estimator, p, k), bits, signed, False))
    d_ds = _expect(pr, [_mse_grad_regions(estimator, float(s), bits, signed) for s in scales.ravel()])
    factor = {"tqt": scales.ravel() * LN2, "lsq": 1.0}.get(estimator, 1.0 / (2.0**bits - 1.0))
    out = np.asarray(_ldexp(d_ds * factor, 2 * k if estimator == "tqt" else k))
    return out.reshape(p.shape)


def _ldexp(x, e: int):
    """``x·2^e``, with ±inf where the true value exceeds the float range (a loss or MSE of a prior
    near 1e300 is beyond it)."""
    with np.errstate(over="ignore"):
        out = np.ldexp(np.asarray(x, dtype=np.float64), e)
    return float(out) if out.ndim == 0 else out


def _param_in_units(estimator: str, p: np.ndarray, k: int) -> np.ndarray:
    """The parameter for the data divided by ``2^k`` (exact: a shift of ``θ`` or a power of 2)."""
    return p - k if estimator == "tqt" else np.ldexp(p, -k)


@dataclass(frozen=True)
class MCEstimate:
    """A Monte-Carlo mean with its standard error."""

    mean: np.ndarray
    stderr: np.ndarray
    n_samples: int


def montecarlo_grad(estimator: str, prior: PriorLike, param: ArrayLike, bits: int, *, n_samples: int = 200_000,
                    signed: bool = True, power_of_2: bool = False, grad_scale: float = 1.0,
                    rng: RNGLike = None) -> MCEstimate:
    """Monte-Carlo estimate of ``E[∂L/∂param]`` from the pointwise rule (the independent check
    of :func:`expected_grad`).

    Examples
    --------
    >>> est = montecarlo_grad("tqt", "gaussian", 1.0, 2, n_samples=100_000, rng=0)
    >>> exact = float(expected_grad("tqt", "gaussian", 1.0, 2))
    >>> abs(float(est.mean) - exact) < 4 * float(est.stderr)
    True
    """
    func = "montecarlo_grad"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    n_samples = check_int(n_samples, "n_samples", func, 2)
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    grad_scale = check_real(grad_scale, "grad_scale", func, 0.0, low_open=True)
    p = _check_params(param, estimator, func)
    pr = _prior(prior, func)
    gen = np.random.default_rng(rng)
    means, errs = [], []
    for val in p.ravel():
        total = total2 = 0.0
        done = 0
        while done < n_samples:
            k = min(1_000_000, n_samples - done)
            x = pr.rvs(k, gen)
            g = l2_param_grad(estimator, x, float(val), bits, signed=signed, power_of_2=power_of_2,
                              grad_scale=grad_scale)
            total += float(g.sum())
            total2 += float(np.dot(g, g))
            done += k
        mean = total / n_samples
        var = max(total2 / n_samples - mean * mean, 0.0) * n_samples / (n_samples - 1)
        means.append(mean)
        errs.append(math.sqrt(var / n_samples))
    return MCEstimate(np.array(means).reshape(p.shape), np.array(errs).reshape(p.shape), n_samples)


# ====================================================================== stationary thresholds
def _clip_of_scale(estimator, s, bits, signed):
    return _forward_quantizer(estimator, s, bits, signed).alpha


def _scan_zero(f, s_lo, s_hi, n=160):
    """Zeros of ``f(s)`` crossing from − to + on a log grid, refined by brentq."""
    from scipy.optimize import brentq

    grid = np.geomspace(s_lo, s_hi, n)
    vals = f(grid)
    idx = np.nonzero((vals[:-1] < 0) & (vals[1:] >= 0))[0]
    zeros = []
    for i in idx:
        lo, hi = float(grid[i]), float(grid[i + 1])
        if f(np.array([hi]))[0] == 0:
            zeros.append(hi)
            continue
        zeros.append(brentq(lambda v: float(f(np.array([v]))[0]), lo, hi, xtol=1e-14, rtol=1e-13))
    return zeros


def _scale_bracket(pr, bits, signed, estimator):
    top = max(float(pr.abs_quantile(1.0 - 1e-12)), 1e-300)
    codes_top = 2.0 ** (bits - 1) if signed else 2.0**bits
    return top * 1e-3 / codes_top, 4.0 * top / max(codes_top - 1.0, 0.5)


@dataclass(frozen=True)
class Stationary:
    """A stationary threshold of an STE rule beside the MSE optimum of the same quantizer family.

    ``param`` is the estimator's own parameter, ``scale`` the step, ``clip`` the
    :class:`qtheory.Quantizer` ``alpha`` on the estimator's grid; the ``mse_*`` fields give the
    MSE-optimal values in the same units. ``nan`` when the expected gradient has no zero (PACT).
    """

    estimator: str
    bits: int
    signed: bool
    param: float
    scale: float
    clip: float
    mse: float
    mse_opt_scale: float
    mse_opt_clip: float
    mse_opt: float


def mse_optimal_scale(prior: PriorLike, bits: int, *, grid: str = "int") -> float:
    """Step ``s`` minimising ``E(q − X)²`` on grid ``"int"``, ``"uint"`` or ``"unsigned"``
    (continuous scale), from the zero of the exact derivative of the expected loss.

    ``"uint"`` and ``"unsigned"`` are the same family of quantizers (levels ``0 .. (2^b−1)·s``).

    Examples
    --------
    >>> round(mse_optimal_scale("gaussian", 2) * 2, 4)     # t = 2^(b-1)·s on the int grid
    2.0968
    """
    func = "mse_optimal_scale"
    grid = check_option(grid, "grid", func, ("int", "uint", "unsigned"))
    signed = grid == "int"
    bits = check_int(bits, "bits", func, 1, MAX_BITS)
    pr, k = _standardise(_prior(prior, func))
    est = "lsq" if grid != "unsigned" else "pact"
    return _ldexp(_mse_opt_scale(pr, bits, signed, est), k)


def _mse_opt_scale(pr, bits, signed, est):
    lo, hi = _scale_bracket(pr, bits, signed, est)

    def f(s):
        return _expect(pr, [_mse_grad_regions(est, float(v), bits, signed) for v in s])

    zeros = _scan_zero(f, lo, hi)
    if not zeros:
        return math.nan
    losses = [_half_mse(pr, est, z, bits, signed) for z in zeros]
    return zeros[int(np.argmin(losses))]


def stationary_threshold(estimator: str, prior: PriorLike, bits: int, *, signed: bool = True) -> Stationary:
    """Zero of the exact expected STE gradient (continuous scale) — where training settles.

    The expected gradient is negative for small thresholds (clipping dominates) and positive for
    large ones (rounding noise dominates); its − → + zero is found on a log grid and refined with
    ``brentq``. PACT has no zero under an unbounded prior (``E[∂L/∂α] = −E[(X − α)⁺] < 0``):
    ``param`` etc. are ``nan``.

    Examples
    --------
    >>> r = stationary_threshold("tqt", "gaussian", 4)
    >>> round(r.clip, 4), round(r.mse_opt_clip, 4)
    (2.6906, 2.7089)
    """
    func = "stationary_threshold"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    pr, k = _standardise(_prior(prior, func))
    lo, hi = _scale_bracket(pr, bits, signed, estimator)

    def f(s):
        return _expect(pr, [_grad_regions(estimator, float(v), bits, signed) for v in s])

    zeros = [] if estimator == "pact" else _scan_zero(f, lo, hi)
    if zeros:
        losses = [_half_mse(pr, estimator, z, bits, signed) for z in zeros]
        s = _ldexp(zeros[int(np.argmin(losses))], k)     # back from units of 2^k (exact)
        clip = _clip_of_scale(estimator, s, bits, signed)
        param = float(_param_of_scale(estimator, s, bits, signed))
        mse = _ldexp(2.0 * min(losses), 2 * k)
    else:
        s = clip = param = mse = math.nan
    s_opt = _mse_opt_scale(pr, bits, signed, estimator)
    mse_opt = _ldexp(2.0 * _half_mse(pr, estimator, s_opt, bits, signed), 2 * k)
    s_opt = _ldexp(s_opt, k) if np.isfinite(s_opt) else s_opt
    return Stationary(estimator, bits, signed, param, s, clip, mse, s_opt,
                      _clip_of_scale(estimator, s_opt, bits, signed), mse_opt)


def stationary_table(priors: Sequence[PriorLike] | dict[str, PriorLike] = ("gaussian", "laplace"),
                     bits: Sequence[int] = (2, 3, 4, 5, 6, 7, 8), *,
                     estimators: Sequence[str] | None = None, signed: bool = True,
                     progress: bool | None = None) -> pd.DataFrame:
    """A pandas table of :func:`stationary_threshold` over priors × bits × estimators.

    ``priors`` is a sequence of priors or a dict ``{label: prior}``. ``estimators`` defaults to
    TQT and LSQ for a signed grid and all four for an unsigned one. ``progress``: a tqdm bar over
    the table's cells (``None``: only after 2 s, in a terminal or notebook; ``True``: always;
    ``False``: never).

    Examples
    --------
    >>> t = stationary_table(["gaussian"], [2, 8], estimators=["tqt"])
    >>> t[["bits", "clip", "mse_opt_clip"]].round(4).to_numpy().tolist()
    [[2.0, 1.978, 2.0968], [8.0, 3.9377, 3.938]]
    """
    import pandas as pd

    func = "stationary_table"
    signed = check_bool(signed, "signed", func)
    progress = check_progress(progress, func)
    if estimators is None:
        estimators = ("tqt", "lsq") if signed else ESTIMATORS
    items = priors.items() if isinstance(priors, dict) else [(str(p) if isinstance(p, str) else repr(p), p)
                                                              for p in priors]
    cells = [(label, pr, b, est) for label, pr in ((lab, _prior(p, func)) for lab, p in items)
             for b in bits for est in estimators]
    rows = []
    for label, pr, b, est in progress_bar(cells, progress, func):
        r = stationary_threshold(est, pr, b, signed=signed)
        rows.append({"prior": label, "bits": b, "estimator": est, "grid": estimator_grid(est, r.signed),
                     "param": r.param, "scale": r.scale, "clip": r.clip, "mse": r.mse,
                     "mse_opt_clip": r.mse_opt_clip, "mse_opt": r.mse_opt,
                     "clip_ratio": r.clip / r.mse_opt_clip, "mse_excess": r.mse / r.mse_opt - 1.0})
    return pd.DataFrame(rows)


# ====================================================================== power-of-2 equilibrium
@dataclass(frozen=True)
class Pow2Equilibrium:
    """Where TQT's power-of-2 threshold oscillates under the exact expected gradient.

    With ``s = 2^⌈θ⌉/2^(b−1)`` the expected gradient is a step function of ``θ``. Training
    settles on the integer boundary ``θ = boundary`` where it changes sign: below it
    (``t = 2^boundary``) the gradient ``grad_low < 0`` pushes ``θ`` up, above it
    (``t = 2^(boundary+1)``) ``grad_high > 0`` pushes it down. A zero mean step needs
    ``f·grad_high + (1 − f)·grad_low = 0``, so the fraction of steps spent above is
    ``frac_high = |grad_low| / (|grad_low| + grad_high)`` (exact for SGD with small steps, a good
    guide for Adam). ``mse_low`` / ``mse_high`` are the MSEs of the two powers of 2.
    """

    bits: int
    boundary: int
    t_low: float
    t_high: float
    grad_low: float
    grad_high: float
    frac_high: float
    mse_low: float
    mse_high: float

    @property
    def most_visited(self) -> float:
        """The power of 2 predicted to be visited most."""
        return self.t_high if self.frac_high > 0.5 else self.t_low

    @property
    def better(self) -> float:
        """The power of 2 with the lower MSE."""
        return self.t_high if self.mse_high < self.mse_low else self.t_low


def pow2_equilibrium(prior: PriorLike, bits: int, *, signed: bool = True) -> Pow2Equilibrium:
    """The integer boundary TQT's power-of-2 ``θ`` oscillates across, and the time split.

    Examples
    --------
    >>> e = pow2_equilibrium("gaussian", 4)
    >>> e.boundary, e.t_low, e.t_high, round(e.frac_high, 3), e.most_visited, e.better
    (1, 2.0, 4.0, 0.651, 4.0, 4.0)
    """
    func = "pow2_equilibrium"
    _, bits, signed = _check_common(func, "tqt", bits, signed)
    pr = _prior(prior, func)
    pr, k = _standardise(pr)     # in units of 2^k: θ shifts by k, gradients and MSEs scale by 4^k
    st = stationary_threshold("tqt", pr, bits, signed=signed)
    if not np.isfinite(st.param):  # pragma: no cover - every prior with a variance has a zero
        raise ValueError("the expected TQT gradient has no zero for this prior")
    js = np.arange(math.floor(st.param) - 3, math.floor(st.param) + 5)
    g = expected_grad("tqt", pr, js.astype(float), bits, signed=signed, power_of_2=True)
    idx = np.nonzero((g[:-1] < 0) & (g[1:] > 0))[0]
    i = int(idx[0])
    j = int(js[i])
    lo, hi = float(g[i]), float(g[i + 1])
    mse = 2.0 * expected_loss("tqt", pr, np.array([j, j + 1], float), bits, signed=signed, power_of_2=True)
    return Pow2Equilibrium(bits, j + k, 2.0 ** (j + k), 2.0 ** (j + k + 1), _ldexp(lo, 2 * k),
                           _ldexp(hi, 2 * k), abs(lo) / (abs(lo) + hi),
                           _ldexp(float(mse[0]), 2 * k), _ldexp(float(mse[1]), 2 * k))


# ====================================================================== training simulator
@dataclass(frozen=True)
class TrainResult(ResultMixin):
    """Trajectory of one trained quantizer threshold (``steps + 1`` entries, index 0 = init).

    Attributes
    ----------
    estimator, optimizer, domain : str
    param : ndarray
        The estimator's parameter (``θ``, ``s`` or ``α``).
    variable : ndarray
        What the optimizer updates: the parameter itself (``domain="raw"``, or ``θ`` for TQT's
        ``"log"``), its log2, or TQT's raw threshold ``t = 2^θ``.
    scale : ndarray
        Step ``s`` used by the forward pass (power-of-2 for TQT unless ``power_of_2=False``).
    clip : ndarray
        The :class:`qtheory.Quantizer` ``alpha`` of that step on the estimator's grid.
    loss : ndarray
        Batch mean of ``loss_scale·½(q − x)²`` (entry 0 is ``nan``).
    grad : ndarray
        Batch mean gradient with respect to ``variable`` (entry 0 is ``nan``).
    """

    estimator: str
    optimizer: str
    domain: str
    param: np.ndarray
    variable: np.ndarray
    scale: np.ndarray
    clip: np.ndarray
    loss: np.ndarray
    grad: np.ndarray

    def occupancy(self, last: float = 0.5) -> dict:
        """Fraction of the last ``last`` share of steps spent at each clip value (power of 2)."""
        c = self.clip[1:]
        tail = c[int(len(c) * (1.0 - last)):]
        vals, counts = np.unique(tail, return_counts=True)
        return {float(v): float(k) / len(tail) for v, k in zip(vals, counts, strict=True)}


def train_threshold(estimator: str, prior: PriorLike, bits: int, *, init: float, steps: int = 2000,
                    batch_size: int = 256, optimizer: str = "adam", lr: float = 0.01,
                    domain: str | None = None, signed: bool = True, power_of_2: bool = True,
                    grad_scale: float = 1.0, loss_scale: float = 1.0,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                    rng: RNGLike = None) -> TrainResult:
    """Train one quantizer's threshold on synthetic data with L2 loss ``½(q(x) − x)²``.

    Each step draws ``batch_size`` samples from ``prior``, computes the batch-mean STE gradient
    of ``loss_scale·½(q − x)²`` with the estimator's pointwise rule and updates the variable
    with SGD or Adam (bias-corrected, as in TensorFlow/PyTorch).

    ``domain`` chooses the variable: ``"log"`` trains ``log2`` of the threshold (TQT's ``θ``;
    ``log2 s`` for LSQ, ``log2 α`` for PACT), ``"raw"`` the threshold itself (TQT: ``t = 2^θ``,
    with ``∂L/∂t = ∂L/∂θ / (t·ln2)``; LSQ: ``s``; PACT: ``α``). Defaults: ``"log"`` for TQT,
    ``"raw"`` otherwise. A raw variable pushed to ≤ 0 is floored at ``1e-12``.

    Why log domain + Adam is scale-invariant: scaling the data by ``c`` multiplies every
    gradient by a constant (``c²`` for the bare L2 loss in ``θ``) and shifts ``θ`` by ``log2 c``;
    Adam's update ``lr·m̂/√v̂`` ignores constant gradient factors, and a shift is harmless in the
    log domain, so ``θ − log2 c`` follows the same path for every ``c`` (exactly, when ``c`` is a
    power of 2). Raw-``t`` SGD moves ``t`` by ``lr·∂L/∂t``, whose size relative to ``t`` depends on
    how the loss scales (``loss_scale``) and shrinks ~4× per extra bit.

    Parameters
    ----------
    estimator : {"tqt", "lsq", "pact", "calibrated_pact"}
    prior : prior-like
        Data distribution (anything :func:`qtheory.as_prior` accepts that can sample).
    bits : int
    init : float
        Initial parameter (``θ`` for TQT, ``s`` for LSQ, ``α`` for PACT).
    steps, batch_size : int
    optimizer : {"adam", "sgd"}
    lr : float
    domain : {"log", "raw"}, optional
    signed, power_of_2, grad_scale :
        As in :func:`pointwise`.
    loss_scale : float
        Multiplies the loss (models a downstream layer that rescales the gradient).
    betas : (float, float)
        Adam's ``β1, β2``.
    eps : float
        Adam's ``ε``.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> r = train_threshold("tqt", "gaussian", 4, init=0.0, steps=400, rng=0)
    >>> r.param.shape, float(r.clip[0]), float(r.clip[-1]) in (2.0, 4.0)
    ((401,), 1.0, True)
    """
    func = "train_threshold"
    estimator, bits, signed = _check_common(func, estimator, bits, signed)
    init = (check_real(init, "init", func, -1000.0, 1000.0) if estimator == "tqt"
            else check_real(init, "init", func, 0.0, low_open=True))
    steps = check_int(steps, "steps", func, 1)
    batch_size = check_int(batch_size, "batch_size", func, 1)
    optimizer = check_option(optimizer, "optimizer", func, ("adam", "sgd"))
    lr = check_real(lr, "lr", func, 0.0, low_open=True)
    domain = check_option("log" if domain is None and estimator == "tqt" else (domain or "raw"),
                          "domain", func, ("log", "raw"))
    power_of_2 = check_bool(power_of_2, "power_of_2", func)
    grad_scale = check_real(grad_scale, "grad_scale", func, 0.0, low_open=True)
    loss_scale = check_real(loss_scale, "loss_scale", func, 0.0, low_open=True)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise param_error("betas", func, "a pair of floats in [0, 1)", betas, TypeError)
    b1 = check_real(betas[0], "betas", func, 0.0, 1.0, high_open=True)
    b2 = check_real(betas[1], "betas", func, 0.0, 1.0, high_open=True)
    eps = check_real(eps, "eps", func, 0.0)
    pr = _prior(prior, func)
    gen = np.random.default_rng(rng)

    # variable <-> parameter maps
    if estimator == "tqt":
        to_param = (lambda w: w) if domain == "log" else (lambda w: math.log2(w))
        to_var = (lambda p: p) if domain == "log" else (lambda p: 2.0**p)
        # dL/dvar = dL/dθ · dθ/dvar
        chain = (lambda w: 1.0) if domain == "log" else (lambda w: 1.0 / (w * LN2))
    else:
        to_param = (lambda w: 2.0**w) if domain == "log" else (lambda w: w)
        to_var = (lambda p: math.log2(p)) if domain == "log" else (lambda p: p)
        chain = (lambda w: 2.0**w * LN2) if domain == "log" else (lambda w: 1.0)

    n_out = steps + 1
    param = np.empty(n_out)
    var = np.empty(n_out)
    scale = np.empty(n_out)
    loss = np.full(n_out, np.nan)
    grad = np.full(n_out, np.nan)
    w = to_var(init)
    m = v = 0.0
    opts = {"signed": signed, "power_of_2": power_of_2, "grad_scale": grad_scale}
    for i in range(n_out):
        p = to_param(w)
        param[i], var[i] = p, w
        scale[i] = float(_scale_of(estimator, np.float64(p), bits, signed, power_of_2))
        if i == steps:
            break
        x = pr.rvs(batch_size, gen)
        r = pointwise(estimator, x, p, bits, **opts)
        err = r.q - x
        loss[i + 1] = loss_scale * 0.5 * float(np.mean(err * err))
        g = loss_scale * float(np.mean(err * r.dq_dparam)) * chain(w)
        grad[i + 1] = g
        if optimizer == "sgd":
            w = w - lr * g
        else:
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * g * g
            mh = m / (1.0 - b1 ** (i + 1))
            vh = v / (1.0 - b2 ** (i + 1))
            w = w - lr * mh / (math.sqrt(vh) + eps)
        if domain == "raw" and w <= 0.0:
            w = 1e-12
    clip = np.array([_clip_of_scale(estimator, float(s), bits, signed) for s in scale])
    return TrainResult(estimator, optimizer, domain, param, var, scale, clip, loss, grad)
