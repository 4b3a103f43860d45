"""Straight-through threshold gradients: TQT, LSQ, PACT and SAT's calibrated PACT.

Four ways to learn the clipping threshold of a uniform quantizer by backprop. Each
rule below gives, vectorised over the input ``x``, the forward value ``q(x)``, the
straight-through derivative ``∂q/∂x`` and the derivative ``∂q/∂(parameter)`` with
respect to the estimator's own threshold parameter:

=================  ==============  ==================================  ===========================
estimator          parameter       forward (``u = x / s``, ``⌊·⌉`` =    range test of the gradient
                                   round half to even)
=================  ==============  ==================================  ===========================
``tqt``            θ = log2 t      ``clip(⌊u⌉, n, p)·s``,               on the *rounded* ``r = ⌊u⌉``
                                   ``s = 2^⌈θ⌉ / 2^(b−1)`` (signed)
                                   or ``2^⌈θ⌉ / 2^b`` (unsigned)
``lsq``            s (the step)    ``⌊clip(u, −Q_N, Q_P)⌉·s``           on the *unrounded* ``u``,
                                                                         strict
``pact``           α (the clip)    ``⌊clip(x, 0, α)/s⌉·s``,             ``x ≥ α`` only (in-range
                                   ``s = α / (2^b − 1)``                 term dropped)
``calibrated_pact`` α              same as PACT                         ``x ≥ α``; in range
                                                                         ``(⌊u⌉ − u)/(2^b − 1)``
=================  ==============  ==================================  ===========================

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
from dataclasses import dataclass

import numpy as np

from ._validation import check_bool, check_int, check_option, check_real, check_samples
from .quantizer import MAX_BITS, ROUNDINGS, Quantizer

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
]

LN2 = math.log(2.0)
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


def scale_of(estimator: str, param, bits: int, *, signed: bool = True, power_of_2: bool = False):
    """Step ``s`` for an estimator's parameter (vectorised).

    TQT: ``θ`` → ``2^⌈θ⌉/2^(b−1)`` (or ``2^θ/2^(b−1)`` with ``power_of_2=False``, the default
    here; ``2^b`` instead of ``2^(b−1)`` unsigned); LSQ: ``s`` itself; PACT: ``α/(2^b − 1)``.

    Examples
    --------
    >>> float(scale_of("tqt", 1.0, 4)), float(scale_of("pact", 3.0, 2))
    (0.25, 1.0)
    """
    p = np.asarray(param, dtype=np.float64)
    if estimator == "tqt":
        e = np.ceil(p) if power_of_2 else p
        return np.exp2(e) / 2.0 ** (bits - 1 if signed else bits)
    if estimator == "lsq":
        return p
    return p / (2.0**bits - 1.0)


def param_of_scale(estimator: str, s, bits: int, *, signed: bool = True):
    """Inverse of :func:`scale_of` (continuous scale): the parameter whose step is ``s``.

    Examples
    --------
    >>> float(param_of_scale("tqt", 0.25, 4)), float(param_of_scale("pact", 1.0, 2))
    (1.0, 3.0)
    """
    s = np.asarray(s, dtype=np.float64)
    if estimator == "tqt":
        return np.log2(s * 2.0 ** (bits - 1 if signed else bits))
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
    n_elements = check_int(n_elements, "n_elements", func, 1)
    bits = check_int(bits, "bits", func, 2 if signed else 1, MAX_BITS)
    signed = check_bool(signed, "signed", func)
    qp = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    return 1.0 / math.sqrt(n_elements * qp)


# ====================================================================== pointwise rules
def tqt(x, theta: float, bits: int, *, signed: bool = True, power_of_2: bool = True,
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
    dt = xs.dtype.type
    sd, ln2 = dt(s), dt(LN2)
    u = xs / sd
    r = _round(u, rounding)
    rc = np.clip(r, dt(n), dt(p))
    inside = (r >= dt(n)) & (r <= dt(p))
    q = rc * sd
    dq_dtheta = np.where(inside, r - u, rc) * sd * ln2
    return STEGrad(q, inside.astype(xs.dtype), dq_dtheta, "theta", s)


def lsq(x, s: float, bits: int, *, signed: bool = True, grad_scale: float = 1.0,
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
    return xs, alpha, bits, rounding


def pact(x, alpha: float, bits: int, *, rounding: str = "half_even") -> STEGrad:
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


def calibrated_pact(x, alpha: float, bits: int, *, rounding: str = "half_even") -> STEGrad:
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


def pointwise(estimator: str, x, param: float, bits: int, *, signed: bool = True,
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


def l2_param_grad(estimator: str, x, param: float, bits: int, **options) -> np.ndarray:
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

