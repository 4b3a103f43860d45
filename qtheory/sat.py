"""SAT variance rules: clamped and quantized weight variance, logit variance, gradient flow.

Scale-adjusted training (SAT; Jin, Yang & Liao, arXiv:1912.10207 v1 and BMVC 2020) views
weights and activations as random variables. Its arXiv v1 states two "efficient training
rules"; the BMVC version argues through over-fitting caused by a large last-layer weight
scale. The scaling formula is the same in both. The rules in this module follow the **arXiv v1**
argument (softmax saturation and gradient scale).

Weight quantizer (DoReFa, as in the paper)::

    Ŵ = tanh(W) / max|tanh(W)|            (max over the whole layer tensor)
    Q = 2 q_k((Ŵ + 1) / 2) − 1,           q_k(x) = round((2^k − 1) x) / (2^k − 1)

SAT rescales the effective weight of a layer that does not feed BatchNorm (the classifier)::

    Q* = Q / sqrt(n_out · Var[Q])         (Var[Q] a per-layer constant, no gradient)

so that ``Var[Q*] = 1/n_out``. The same authors' public code (``deJQK/AdaBits``,
``models/quant_ops.py``, which carries the SAT rescaling; checked, not copied) divides by
``torch.std`` (unbiased, ``ddof=1``) of the detached quantized weights and uses
``n_out = out_features`` (``out_channels·kh·kw`` for a convolution, where it is off by default);
:func:`sat_scale` follows it. That code's default weight quantizer is a "modified" floor-based
variant; this module uses the paper's DoReFa form above.

Closed forms (σ the standard deviation of Gaussian latent weights, N the tensor size)
--------------------------------------------------------------------------------------
- Clamp, extreme-value approximation [DERIVED; the paper's wording is UNVERIFIED]::

      Var[Ŵ] ≈ E[tanh² W] / tanh²(σ u_N),      u_N = Φ⁻¹(1 − 1/(2N))

  ``u_N`` is the *characteristic largest value* of N draws of ``|Z|`` (``N·P(|Z| > u_N) = 1``).
  For small σ this is ≈ ``1/u_N²``, nearly independent of σ: 0.0412 (exact 0.0398) for a
  1280×1000 classifier with σ = 0.02, versus the ~1/1280 of a standard initialisation.
- Clamp, exact (``method="exact"``): the expectation over the draws of ``(1/N) Σ Ŵ_i²``. Given
  ``M = max|W|``, the other N − 1 weights are i.i.d. ``W | |W| < M``, hence::

      E[(1/N) Σ Ŵ²] = 1/N + (N−1)/N ∫ f_{N−1}(m) E[tanh² W; |W| < m] / tanh²(m) dm,
      f_{N−1}(m) = N (2Φ(m/σ) − 1)^{N−2} · 2φ(m/σ)/σ

  evaluated by Gauss–Legendre quadrature (outer over the maximum, inner over the weight).
  For σ ≲ 1 the extreme-value form over-estimates it (the mean of the maximum exceeds ``u_N``
  by ≈ γ/u_N, γ the Euler constant), by a relative error below the first-order bound
  ``2γ/u_N²``: 10.6 % at N = 64, 6.7 % at N = 640, 5.1 % at N = 10⁴, 3.7 % at N = 1.28·10⁶,
  3.6 % at N = 2.05·10⁶ (σ = 0.01; smaller for larger σ, where tanh saturates). This is the
  approximation error the tests allow the extreme-value form.
- Quantized weights, exact bin probabilities: with ``L = 2^k − 1`` the levels are
  ``l_j = −1 + 2j/L`` and the thresholds on Ŵ are ``t_j = −1 + (2j − 1)/L``, i.e.
  ``W = atanh(t_j · tanh M)`` on the latent weight, so for Gaussian weights::

      E[(1/N) Σ Q²] = 1/N + (N−1)/N E_M[ Σ_j l_j² P(Q = l_j | M) ]

  with ``P(Q = l_j | M)`` differences of Φ at those thresholds over ``2Φ(M/σ) − 1``. The
  ``"extreme"`` method puts ``M = σ u_N`` and uses the untruncated Gaussian instead.
- Logit variance (Rule I) [DERIVED]: ``Var[logit] = n_in · Var[Ξ] · E[ȳ²]`` for independent
  zero-mean effective weights Ξ and inputs ȳ (:func:`logit_variance`).
- Backward gradient factor (Rule II) [DERIVED]: a linear layer multiplies the variance of the
  back-propagated gradient by ``n_out · Var[Ξ]`` (:func:`gradient_variance_factor`).
- Rule I bound [secondary source; wording UNVERIFIED]: ``Var[Ξ] ≪ k_pool² / n_in`` with
  ``k_pool`` the side of the global pooling kernel before the classifier
  (:func:`rule1_ratio` returns ``Var[Ξ] · n_in / k_pool²``, which should be ≪ 1).

Examples
--------
>>> from qtheory import sat
>>> r = sat.clamped_variance(1280 * 1000, 0.02)
>>> round(r.variance, 4)
0.0398
>>> q = sat.quantized_variance(1280 * 1000, 0.02, bits=2)
>>> round(q.ratio, 2)
2.81
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import integrate, special, stats

from ._progress import check_progress, progress_bar
from ._results import ResultMixin
from ._typing import ArrayLike, PriorLike, RNGLike
from ._validation import (
    check_bool,
    check_int,
    check_option,
    check_real,
    check_rng,
    check_samples,
    param_error,
)
from .quantizer import Quantizer

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CLASSIFIERS",
    "METHODS",
    "VarianceResult",
    "QuantizedVarianceResult",
    "NetworkResult",
    "PactErrorResult",
    "dorefa_clamp",
    "dorefa_quantize",
    "dorefa_levels",
    "extreme_value_u",
    "clamped_variance",
    "clamped_variance_uniform",
    "quantized_variance",
    "fan_out",
    "sat_scale",
    "sat_weights",
    "logit_variance",
    "gradient_variance_factor",
    "rule1_ratio",
    "relu_pool_mean_square",
    "classifier_table",
    "synthetic_network",
    "network_experiment",
    "pact_error_term",
    "clamp_variance_table",
    "variance_ratio_table",
    "pact_error_table",
    "depth_experiment",
    "NOTES_RATIO",
]

METHODS = ("exact", "extreme", "montecarlo")

#: Classifier shapes ``(n_in, n_out, k_pool)``: the last fully-connected layer and the side of
#: the global average pooling in front of it.
CLASSIFIERS = {
    "MobileNetV2 (ImageNet)": (1280, 1000, 7),
    "ResNet-50 (ImageNet)": (2048, 1000, 7),
    "ResNet-20 (CIFAR-10)": (64, 10, 8),
}

_MAX_N = 10**12
_MAX_SIGMA = 20.0
#: Monte-Carlo limits: tensor size per draw (memory) and weights generated in total (time).
_MC_MAX_N = 10**7
_MC_MAX_WORK = 10**9
_EULER_GAMMA = 0.5772156649015329


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class VarianceResult(ResultMixin):
    """Variance of DoReFa-clamped weights ``Ŵ`` (mean of ``(1/N) Σ Ŵ²`` over draws).

    Attributes
    ----------
    variance : float
        The value.
    stderr : float
        Standard error (Monte Carlo); 0 for the closed forms.
    method : str
        ``"exact"``, ``"extreme"`` or ``"montecarlo"``.
    """

    variance: float
    stderr: float
    method: str


@dataclass(frozen=True)
class QuantizedVarianceResult(ResultMixin):
    """Variance of DoReFa-quantized weights ``Q`` and of the clamped weights ``Ŵ``.

    Attributes
    ----------
    variance : float
        ``E[(1/N) Σ Q²]``.
    clamped : float
        ``E[(1/N) Σ Ŵ²]`` (same draws for Monte Carlo).
    ratio : float
        ``variance / clamped``.
    stderr, stderr_clamped, stderr_ratio : float
        Monte-Carlo standard errors (delta method for the ratio); 0 for closed forms.
    method : str
    """

    variance: float
    clamped: float
    ratio: float
    stderr: float
    stderr_clamped: float
    stderr_ratio: float
    method: str


@dataclass(frozen=True)
class NetworkResult(ResultMixin):
    """Forward and backward statistics of one synthetic network (see :func:`synthetic_network`).

    Attributes
    ----------
    logit_var : float
        Variance of the logits over the batch and the classes.
    logit_var_predicted : float
        ``n_in · Var[Ξ] · E[ȳ²]`` with the measured ``Var[Ξ]`` of the classifier and the
        measured mean square ``E[ȳ²]`` of its input (Rule I closed form).
    max_prob : float
        Mean over the batch of the largest softmax probability (1 = saturated).
    entropy : float
        Mean softmax entropy in nats (``log(n_classes)`` = uniform).
    grad_rms : numpy.ndarray
        Per-sample gradient magnitude ``sqrt(E_b ||∂loss_b/∂h_l||² / width_l)`` at the input
        ``h_l`` of each layer ``l = 0 .. n_layers − 1`` (0 = network input, last = classifier
        input, i.e. the pooled features); ``loss_b`` is the cross-entropy of sample ``b``.
    weight_var : numpy.ndarray
        Variance of the effective weights of each layer (classifier last).
    grad_factor_predicted : numpy.ndarray
        ``n_out · Var[Ξ]`` of each layer (Rule II closed form).
    """

    logit_var: float
    logit_var_predicted: float
    max_prob: float
    entropy: float
    grad_rms: np.ndarray = field(repr=False)
    weight_var: np.ndarray = field(repr=False)
    grad_factor_predicted: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class PactErrorResult(ResultMixin):
    """Size of the in-range error term of gradient-calibrated PACT (see :func:`pact_error_term`).

    Attributes
    ----------
    mean_abs : float
        ``E[|q_k(X/α) − X/α|; 0 < X < α]`` per input (0 outside the range).
    rms : float
        ``sqrt(E[(q_k(X/α) − X/α)²; 0 < X < α])``.
    mean : float
        Signed ``E[q_k(X/α) − X/α; 0 < X < α]``: the bias the term adds to the PACT ``∂/∂α``.
    pact_grad : float
        ``P(X ≥ α)``: the PACT gradient ``E[∂y/∂α]``.
    stderr_mean_abs, stderr_rms, stderr_mean : float
        Monte-Carlo standard errors (0 for closed forms).
    method : str
    p_in_range : float
        ``P(0 < X < α)``, the share of inputs the in-range term applies to (NaN for
        ``method="uniform"``). ``p_in_range · mean_abs`` and ``p_in_range · mean`` are the term's
        contribution per input *in aggregate*, to compare with ``pact_grad``.
    """

    mean_abs: float
    rms: float
    mean: float
    pact_grad: float
    stderr_mean_abs: float
    stderr_rms: float
    stderr_mean: float
    method: str
    p_in_range: float = float("nan")


# ----------------------------------------------------------------------------- DoReFa
def dorefa_clamp(w: ArrayLike) -> np.ndarray:
    """DoReFa's clamped weights ``Ŵ = tanh(W) / max|tanh(W)|`` (max over the whole tensor).

    Parameters
    ----------
    w : array_like
        Latent weights of one layer (any shape, finite, not all zero).

    Returns
    -------
    numpy.ndarray
        ``Ŵ`` in ``[-1, 1]``, same shape, float64.

    Examples
    --------
    >>> dorefa_clamp([0.1, -0.2, 0.05])
    array([ 0.50496685, -1.        ,  0.25311359])
    """
    w = check_samples(w, "w", "dorefa_clamp", ndim=None)
    t = np.tanh(w)
    m = np.max(np.abs(t))
    if m == 0.0:
        raise param_error("w", "dorefa_clamp", "an array with at least one non-zero value", "all zeros")
    return t / m


def dorefa_levels(bits: int) -> np.ndarray:
    """The ``2^k`` DoReFa weight levels ``−1 + 2j/(2^k − 1)``.

    >>> dorefa_levels(2)
    array([-1.        , -0.33333333,  0.33333333,  1.        ])
    """
    bits = check_int(bits, "bits", "dorefa_levels", 1, 16)
    return 2.0 * Quantizer(bits, 1.0, grid="unsigned").levels - 1.0


def dorefa_quantize(w: ArrayLike, bits: int) -> np.ndarray:
    """DoReFa weight quantization ``Q = 2 q_k((Ŵ + 1)/2) − 1`` of latent weights ``w``.

    ``q_k`` is :class:`qtheory.Quantizer` with ``grid="unsigned"``, ``alpha=1`` (round half to
    even, as ``torch.round``).

    Parameters
    ----------
    w : array_like
        Latent weights of one layer.
    bits : int
        Bit-width ``k`` in ``[1, 16]``.

    Returns
    -------
    numpy.ndarray
        Values on :func:`dorefa_levels`.

    Examples
    --------
    >>> dorefa_quantize([0.1, -0.2, 0.05, 0.0], bits=2)
    array([ 0.33333333, -1.        ,  0.33333333,  0.33333333])
    """
    bits = check_int(bits, "bits", "dorefa_quantize", 1, 16)
    w_hat = dorefa_clamp(w)
    return 2.0 * Quantizer(bits, 1.0, grid="unsigned").quantize((w_hat + 1.0) / 2.0) - 1.0


# ----------------------------------------------------------------------------- closed forms
def extreme_value_u(n: int) -> float:
    """Characteristic largest value ``u_N = Φ⁻¹(1 − 1/(2N))`` of N draws of ``|Z|``.

    ``N · P(|Z| > u_N) = 1``. For N = 1280·1000 it is ≈ 4.94.

    >>> round(extreme_value_u(1280 * 1000), 3)
    4.94
    """
    n = check_int(n, "n", "extreme_value_u", 1, _MAX_N)
    return float(stats.norm.isf(0.5 / n))


def _check_n_sigma(n, sigma, func):
    n = check_int(n, "n", func, 2, _MAX_N)
    sigma = check_real(sigma, "sigma", func, 0.0, _MAX_SIGMA, low_open=True)
    return n, sigma


_TINY_SIGMA = 1e-100   # below it tanh(σz)/tanh(σs) = z/s to double precision (error ~ σ²z²)


def _tanh_ratio(z, s, sigma: float):
    """``tanh(σz) / tanh(σs)`` without squaring tiny numbers (σ down to the smallest float)."""
    if sigma < _TINY_SIGMA:
        return np.asarray(z, float) / s
    return np.tanh(sigma * np.asarray(z, float)) / np.tanh(sigma * s)


def _mean_tanh2_ratio(sigma: float, u: float) -> float:
    """``E[tanh²(σZ)] / tanh²(σu)``, Z standard normal (the ratio taken inside the integral)."""
    val, _ = integrate.quad(lambda z: _tanh_ratio(z, u, sigma) ** 2 * np.exp(-0.5 * z * z), 0.0, np.inf,
                            epsabs=1e-14, epsrel=1e-12, limit=200)
    return 2.0 * val / math.sqrt(2.0 * math.pi)


@functools.lru_cache(maxsize=8)
def _gauss_legendre(n_nodes: int):
    """Gauss–Legendre nodes and weights on [-1, 1] (cached: the eigen-solve is the slow part)."""
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def _max_quadrature(n: int, n_nodes: int = 400):
    """Nodes ``s`` (maximum of ``|Z|`` in σ units) and weights ``w·f_{N−1}(s)`` for the exact forms.

    ``Σ weights · g(s) = N ∫ (2Φ(s)−1)^{N−2} 2φ(s) g(s) ds``, i.e. the expectation of ``g`` over
    the maximum divided by ``P(|Z| < s)``; its integral against ``2Φ(s)−1`` is 1.
    """
    s_lo = float(stats.norm.isf(18.5 / n)) if 18.5 / n < 0.5 else 0.0
    s_hi = float(stats.norm.isf(5e-17 / n))
    x, w = _gauss_legendre(n_nodes)
    half = 0.5 * (s_hi - s_lo)
    s = half * x + 0.5 * (s_hi + s_lo)
    log_p = np.log1p(-2.0 * stats.norm.sf(s))
    dens = n * np.exp((n - 2) * log_p) * 2.0 * stats.norm.pdf(s)
    return s, half * w * dens


def _inner_tanh2(s: np.ndarray, sigma: float, n_nodes: int = 64) -> np.ndarray:
    """``∫_{-s}^{s} tanh²(σz) φ(z) dz / tanh²(σs)`` for each ``s`` (Gauss–Legendre)."""
    x, w = _gauss_legendre(n_nodes)
    z = 0.5 * s[:, None] * (x[None, :] + 1.0)
    f = _tanh_ratio(z, s[:, None], sigma) ** 2 * stats.norm.pdf(z)
    return s * (f * w[None, :]).sum(axis=1)


def _bin_second_moment(s, sigma: float, bits: int, truncate: bool) -> np.ndarray:
    """``Σ_j l_j² P(Q = l_j)`` when the clamp is at ``M = σ s`` (arrays over ``s``)."""
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    lv = dorefa_levels(bits)
    t = Quantizer(bits, 1.0, grid="unsigned").thresholds * 2.0 - 1.0   # thresholds on Ŵ
    if sigma < _TINY_SIGMA:   # atanh(t·tanh(σs))/σ = t·s to double precision; avoids subnormal σ
        z_thr = t[None, :] * s[:, None]
    else:
        z_thr = np.arctanh(t[None, :] * np.tanh(sigma * s)[:, None]) / sigma
    lo = -s[:, None] if truncate else np.full((s.size, 1), -np.inf)
    hi = s[:, None] if truncate else np.full((s.size, 1), np.inf)
    edges = np.concatenate([lo, z_thr, hi], axis=1)
    # P(a < Z < b) from the nearer tails, for accuracy far out
    a, b = edges[:, :-1], edges[:, 1:]
    p = np.where(a >= 0, special.ndtr(-a) - special.ndtr(-b),
                 np.where(b <= 0, special.ndtr(b) - special.ndtr(a), 1.0 - special.ndtr(-b) - special.ndtr(a)))
    return (p * lv[None, :] ** 2).sum(axis=1)


def _rng(rng, func: str = "?"):
    """``rng`` as a Generator (None, an int >= 0 or a Generator), else the standard error naming ``func``."""
    return check_rng(rng, "rng", func)


def _mc_draws(n: int, sigma: float, n_draws: int, rng, bits: Sequence[int] = ()):
    """Per-draw ``(1/N) Σ Ŵ²`` and ``{k: (1/N) Σ Q_k²}`` for each bit-width, from the same draws."""
    gen = _rng(rng)
    chunk = max(1, min(n_draws, 2_000_000 // n))
    quants = {b: Quantizer(b, 1.0, grid="unsigned") for b in bits}
    w2, q2 = [], {b: [] for b in bits}
    done = 0
    while done < n_draws:
        m = min(chunk, n_draws - done)
        z = gen.standard_normal(size=(m, n))     # the stream of gen.normal(0, σ): σ·z
        if sigma < _TINY_SIGMA:    # tanh(σz)/max|tanh(σz)| = z/max|z| to double precision
            t = z
        else:
            t = np.tanh(sigma * z)
        t /= np.max(np.abs(t), axis=1, keepdims=True)
        w2.append(np.mean(t * t, axis=1))
        u = (t + 1.0) / 2.0
        for b, quant in quants.items():
            qv = 2.0 * quant.quantize(u) - 1.0
            q2[b].append(np.mean(qv * qv, axis=1))
        done += m
    return np.concatenate(w2), {b: np.concatenate(v) for b, v in q2.items()}


def _check_mc(n: int, n_draws: int, func: str) -> None:
    """Bound Monte-Carlo work: one draw of N weights is held in memory, N·n_draws are generated."""
    if n > _MC_MAX_N:
        raise param_error("n", func, f"an int in the range [2, {_MC_MAX_N}] with method='montecarlo' "
                          "(one tensor of N weights is held in memory; use method='exact')", n)
    if n * n_draws > _MC_MAX_WORK:
        raise param_error("n_draws", func, f"an int with n·n_draws <= {_MC_MAX_WORK:.0e} with method='montecarlo' "
                          f"(here at most {_MC_MAX_WORK // n})", n_draws)


def _ratio_stats(q2: np.ndarray, w2: np.ndarray):
    """Means, standard errors and the delta-method standard error of the ratio of means."""
    n_draws = q2.size
    mq, mw = float(q2.mean()), float(w2.mean())
    cov = np.cov(q2, w2)
    ratio = mq / mw
    var_ratio = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (mw**2 * n_draws)
    return (mq, mw, ratio, float(math.sqrt(max(cov[0, 0], 0.0) / n_draws)),
            float(math.sqrt(cov[1, 1] / n_draws)), float(math.sqrt(max(var_ratio, 0.0))))


def clamped_variance(n: int, sigma: float, *, method: str = "exact", n_draws: int = 200,
                     rng: RNGLike = None) -> VarianceResult:
    """Variance of DoReFa-clamped weights ``Ŵ = tanh(W)/max|tanh W|``, W ~ N(0, σ²), N of them.

    The variance is the expectation over the draws of ``(1/N) Σ Ŵ_i²`` (the mean is 0 by
    symmetry). It depends on N through the maximum, which is why the Monte-Carlo estimate
    averages over ``n_draws`` independent tensors.

    Parameters
    ----------
    n : int
        Tensor size N (≥ 2), e.g. ``n_in · n_out`` for a fully-connected layer.
    sigma : float
        Standard deviation of the Gaussian latent weights, in ``(0, 20]``.
    method : {"exact", "extreme", "montecarlo"}
        ``"exact"``: quadrature over the distribution of the maximum (module docstring);
        ``"extreme"``: ``E[tanh² W]/tanh²(σ u_N)`` — the extreme-value approximation quoted
        for SAT [DERIVED; paper wording UNVERIFIED], relative error ≈ 2γ/u_N² (documented in
        the module docstring); ``"montecarlo"``: ``n_draws`` tensors.
    n_draws : int
        Monte-Carlo draws (``method="montecarlo"`` only).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    VarianceResult

    Examples
    --------
    >>> round(clamped_variance(640, 0.05).variance, 4)
    0.0949
    >>> round(clamped_variance(640, 0.05, method="extreme").variance, 4)
    0.1011
    >>> r = clamped_variance(640, 0.05, method="montecarlo", n_draws=2000, rng=0)
    >>> abs(r.variance - 0.0949) < 5 * r.stderr
    True
    """
    func = "clamped_variance"
    n, sigma = _check_n_sigma(n, sigma, func)
    method = check_option(method, "method", func, METHODS)
    n_draws = check_int(n_draws, "n_draws", func, 2, 10**7)
    if method == "extreme":
        u = float(stats.norm.isf(0.5 / n))
        return VarianceResult(_mean_tanh2_ratio(sigma, u), 0.0, method)
    if method == "exact":
        s, wt = _max_quadrature(n)
        inner = _inner_tanh2(s, sigma)
        val = 1.0 / n + (n - 1) / n * float(np.sum(wt * inner))
        return VarianceResult(val, 0.0, method)
    _check_mc(n, n_draws, func)
    w2, _ = _mc_draws(n, sigma, n_draws, _rng(rng, func))
    return VarianceResult(float(w2.mean()), float(w2.std(ddof=1) / math.sqrt(n_draws)), method)


def _uniform_h(x: np.ndarray) -> np.ndarray:
    """``(x − tanh x)/(x tanh² x)`` = E[tanh² W]/tanh² x for W ~ U(−x, x) (series near 0)."""
    x = np.asarray(x, dtype=np.float64)
    small = x < 1e-3
    xs = np.where(small, 1.0, x)
    direct = (xs - np.tanh(xs)) / (xs * np.tanh(xs) ** 2)
    return np.where(small, 1.0 / 3.0 + 4.0 * x * x / 45.0, direct)


def clamped_variance_uniform(n: int, bound: float) -> float:
    """``Var[Ŵ]`` of DoReFa-clamped weights drawn from ``U(−bound, bound)`` (N of them), exact.

    PyTorch's default ``nn.Linear`` initialisation is uniform, ``U(±1/√n_in)``
    (``kaiming_uniform_`` with ``a = √5``), not Gaussian. Its maximum sits at the bound, so the
    clamp divides by ≈ the bound and ``Var[Ŵ] ≈ 1/3`` whatever N (Gaussian weights of the same
    variance give ≈ ``1/u_N²``, e.g. 0.0397 for N = 1.28·10⁶). Given the maximum
    ``M = bound·U^{1/N}``, the other N − 1 weights are ``U(−M, M)`` and
    ``E[tanh² W | M] / tanh² M = (M − tanh M)/(M tanh² M)``, so::

        Var[Ŵ] = 1/N + (N−1)/N ∫_0^1 h(bound·u^{1/N}) du,   h(x) = (x − tanh x)/(x tanh² x)

    (Gauss–Legendre in ``u``; ``h → 1/3`` for small weights).

    Parameters
    ----------
    n : int
        Tensor size N (≥ 2).
    bound : float
        Half-width of the uniform distribution, in ``(0, 20]``.

    Returns
    -------
    float

    Examples
    --------
    >>> round(clamped_variance_uniform(1280 * 1000, 1 / 1280**0.5), 4)
    0.3333
    >>> round(clamped_variance_uniform(2, 1e-3), 6)     # the max gives 1, the other U(−M, M)/M: 1/3
    0.666667
    """
    func = "clamped_variance_uniform"
    n = check_int(n, "n", func, 2, _MAX_N)
    bound = check_real(bound, "bound", func, 0.0, _MAX_SIGMA, low_open=True)
    x, w = _gauss_legendre(400)
    u = 0.5 * (x + 1.0)
    m = bound * np.exp(np.log(u) / n)
    val = 0.5 * float(np.sum(w * _uniform_h(m)))
    return 1.0 / n + (n - 1) / n * val


def quantized_variance(n: int, sigma: float, bits: int, *, method: str = "exact",
                       n_draws: int = 200, rng: RNGLike = None) -> QuantizedVarianceResult:
    """Variance of DoReFa-quantized weights ``Q`` and its ratio to the clamped ``Var[Ŵ]``.

    Exact bin probabilities for Gaussian latent weights (module docstring): ``Q`` takes the
    level ``l_j`` when the latent weight falls between ``atanh(t_j tanh M)`` thresholds.
    At 1 bit ``Q = ±1`` so ``Var[Q] = 1`` and the ratio is ``1/Var[Ŵ]``; above 3 bits
    ``Var[Q] ≈ Var[Ŵ]``.

    Parameters
    ----------
    n : int
        Tensor size N (≥ 2).
    sigma : float
        Standard deviation of the Gaussian latent weights, in ``(0, 20]``.
    bits : int
        Weight bit-width k in ``[1, 16]``.
    method : {"exact", "extreme", "montecarlo"}
        ``"exact"`` averages over the maximum; ``"extreme"`` clamps at ``M = σ u_N`` with the
        untruncated Gaussian (and the extreme-value ``Var[Ŵ]``); ``"montecarlo"`` draws
        ``n_draws`` tensors and reports both variances from the same draws.
    n_draws : int
    rng : None, int or numpy.random.Generator

    Returns
    -------
    QuantizedVarianceResult

    Examples
    --------
    >>> r = quantized_variance(1280 * 1000, 0.02, bits=1)
    >>> r.variance, round(r.ratio, 1)
    (1.0, 25.1)
    >>> [round(quantized_variance(1280 * 1000, 0.02, b).ratio, 3) for b in (3, 4, 5)]
    [1.172, 1.037, 1.009]
    """
    func = "quantized_variance"
    n, sigma = _check_n_sigma(n, sigma, func)
    bits = check_int(bits, "bits", func, 1, 16)
    method = check_option(method, "method", func, METHODS)
    n_draws = check_int(n_draws, "n_draws", func, 2, 10**7)
    if method == "extreme":
        u = float(stats.norm.isf(0.5 / n))
        vq = float(_bin_second_moment(u, sigma, bits, truncate=False)[0])
        vw = clamped_variance(n, sigma, method="extreme").variance
        return QuantizedVarianceResult(vq, vw, vq / vw, 0.0, 0.0, 0.0, method)
    if method == "exact":
        s, wt = _max_quadrature(n)
        vq = 1.0 / n + (n - 1) / n * float(np.sum(wt * _bin_second_moment(s, sigma, bits, truncate=True)))
        vw = clamped_variance(n, sigma, method="exact").variance
        return QuantizedVarianceResult(vq, vw, vq / vw, 0.0, 0.0, 0.0, method)
    _check_mc(n, n_draws, func)
    w2, q2 = _mc_draws(n, sigma, n_draws, _rng(rng, func), (bits,))
    return QuantizedVarianceResult(*_ratio_stats(q2[bits], w2), method)


# ----------------------------------------------------------------------------- SAT scaling
def fan_out(shape: Sequence[int]) -> int:
    """Fan-out of a PyTorch weight shape: ``out`` for ``(out, in)``, ``out·kh·kw`` for a conv.

    >>> fan_out((1000, 1280)), fan_out((64, 32, 3, 3))
    (1000, 576)
    """
    allowed = "a weight shape (out, in, *kernel) of positive ints"
    try:
        shape = tuple(shape)
    except TypeError:
        raise param_error("shape", "fan_out", allowed, shape, TypeError) from None
    if len(shape) < 2 or any(isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 1
                             for d in shape):
        raise param_error("shape", "fan_out", allowed, shape)
    return int(shape[0] * math.prod(shape[2:]))


def _sat_unit(q, n_out, ddof, gain, func) -> tuple[np.ndarray, float, int]:
    """``(Q / 2^k, s, k)`` with ``s = sqrt(gain / (n_out · Var[Q / 2^k]))``, ``2^k ≈ max|Q|``.

    The SAT scale is ``s · 2^−k`` and ``Q* = (Q / 2^k) · s`` (scale-free): the power-of-two
    rescaling is exact, so weights near 1e±300 (or subnormal) neither overflow nor underflow
    when squared, and ``Q*`` is finite even where the scale itself is beyond float64.
    """
    from .priors import _ldexp, _pow2_exponent

    q = check_samples(q, "q", func, ndim=None, min_size=2)
    if n_out is None:
        n_out = fan_out(q.shape) if q.ndim >= 2 else None
        if n_out is None:
            raise param_error("n_out", func, "given when q is 1-D", None)
    n_out = check_int(n_out, "n_out", func, 1, _MAX_N)
    ddof = check_int(ddof, "ddof", func, 0, 1)
    gain = check_real(gain, "gain", func, 0.0, 16.0, low_open=True)
    k = _pow2_exponent(float(np.max(np.abs(q))))
    qu = _ldexp(q, -k)
    v = float(np.var(qu, ddof=ddof))
    if v == 0.0:
        raise param_error("q", func, "an array with non-zero variance", "a constant array")
    return qu, math.sqrt(gain / (n_out * v)), k


def sat_scale(q: ArrayLike, n_out: int | None = None, *, ddof: int = 1, gain: float = 1.0) -> float:
    """SAT's scale ``1/sqrt(n_out · Var[Q])`` of a layer's effective weights ``Q``.

    With ``gain`` the scale is ``sqrt(gain/(n_out · Var[Q]))``, so ``Var[Q*] = gain/n_out``.
    SAT uses ``gain=1``. A layer followed by a ReLU and no BatchNorm halves the second moment of
    the signal it passes on, forward and backward; ``gain=2`` (the Kaiming/He variance
    ``2/n_out``) compensates. With ``gain=1`` on every layer of a ReLU network without
    BatchNorm the gradient shrinks by ``√2`` per layer (about 256× in RMS over 16 layers).

    ``Var[Q]`` is taken on ``Q / 2^k`` with ``2^k ≈ max|Q|`` (an exact rescaling), so the scale
    is exactly equivariant, ``sat_scale(c·Q) = sat_scale(Q)/c`` for a power of two ``c``.

    Parameters
    ----------
    q : array_like
        Effective (clamped or quantized) weights, PyTorch layout ``(out, in, *kernel)``.
    n_out : int, optional
        Number of output neurons the rule uses (fan-out). Defaults to :func:`fan_out` of
        ``q.shape``, as in the authors' code.
    ddof : {0, 1}
        Degrees of freedom of ``Var[Q]``; 1 (unbiased) matches ``torch.std`` in the authors'
        code, and then ``np.var(Q*)`` (ddof 0) is ``(N−1)/N · 1/n_out``.
    gain : float
        Target ``n_out · Var[Q*]``: 1 (SAT) or 2 (ReLU-aware variant), in ``(0, 16]``.

    Returns
    -------
    float
        The scale, correctly rounded: ``inf`` where it exceeds the float64 range (weights whose
        spread is below ~1e-308; :func:`sat_weights` is still finite there), subnormal or 0
        where it is below.

    Examples
    --------
    >>> import numpy as np
    >>> q = dorefa_quantize(np.random.default_rng(0).normal(size=(10, 64)), bits=2)
    >>> s = sat_scale(q)
    >>> float(np.var(q * s, ddof=1) * 10)
    1.0
    >>> round(float(np.var(q * sat_scale(q, gain=2.0), ddof=1) * 10), 12)
    2.0
    """
    from .priors import _ldexp

    _, s, k = _sat_unit(q, n_out, ddof, gain, "sat_scale")
    return float(_ldexp(s, -k))


def sat_weights(q: ArrayLike, n_out: int | None = None, *, ddof: int = 1, gain: float = 1.0) -> np.ndarray:
    """SAT-scaled weights ``Q* = Q / sqrt(n_out · Var[Q])`` so that ``Var[Q*] = 1/n_out``
    (``gain/n_out`` with ``gain``, see :func:`sat_scale`).

    ``Q*`` does not depend on the units of ``Q``: it is computed from ``Q / 2^k`` (``2^k ≈ max|Q|``,
    exact), so it is finite for any finite, non-constant ``Q`` — also where :func:`sat_scale`
    is beyond the float64 range (subnormal weights).

    Parameters
    ----------
    q, n_out, ddof, gain
        As in :func:`sat_scale`.

    Returns
    -------
    numpy.ndarray
        ``Q*``, the shape of ``q``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> q = dorefa_quantize(np.random.default_rng(1).normal(size=(1000, 128)), bits=4)
    >>> float(np.var(sat_weights(q), ddof=1)) * 1000
    1.0
    """
    qu, s, _ = _sat_unit(q, n_out, ddof, gain, "sat_weights")
    return qu * s


# ----------------------------------------------------------------------------- rules
def logit_variance(n_in: int, weight_var: float, input_mean_square: float) -> float:
    """Rule I closed form: ``Var[logit] = n_in · Var[Ξ] · E[ȳ²]`` [DERIVED].

    For independent zero-mean classifier weights Ξ (i.i.d. over the ``n_in`` inputs) and
    inputs ȳ independent of them, ``Var[Σ_j Ξ_j ȳ_j] = Σ_j E[Ξ²] E[ȳ²]``. The paper's exact
    statement of Rule I is UNVERIFIED (see ``docs``/``sat.md``).

    >>> logit_variance(2048, 0.038, 0.5)
    38.912
    """
    func = "logit_variance"
    n_in = check_int(n_in, "n_in", func, 1, _MAX_N)
    weight_var = check_real(weight_var, "weight_var", func, 0.0)
    input_mean_square = check_real(input_mean_square, "input_mean_square", func, 0.0)
    return n_in * weight_var * input_mean_square


def gradient_variance_factor(n_out: int, weight_var: float) -> float:
    """Rule II closed form: a linear layer multiplies ``Var[grad]`` by ``n_out · Var[Ξ]`` [DERIVED].

    Backward, ``g_in = Ξᵀ g_out`` sums ``n_out`` products of independent zero-mean weights and
    gradients. Rule II (wording UNVERIFIED) asks this factor to be ≈ 1, i.e.
    ``Var[Ξ] ≈ 1/n_out``, unless the layer feeds BatchNorm.

    >>> gradient_variance_factor(1000, 0.04)
    40.0
    """
    func = "gradient_variance_factor"
    n_out = check_int(n_out, "n_out", func, 1, _MAX_N)
    weight_var = check_real(weight_var, "weight_var", func, 0.0)
    return n_out * weight_var


def rule1_ratio(weight_var: float, n_in: int, k_pool: int) -> float:
    """``Var[Ξ] / (k_pool² / n_in)``: Rule I asks ``Var[Ξ] ≪ k_pool² / n_in``, i.e. ratio ≪ 1.

    The bound's wording comes from a secondary source quoting the paper [UNVERIFIED]. It reads
    as if pooling over ``k_pool²`` positions divided ``E[ȳ²]`` by ``k_pool²``, which holds for
    zero-mean features only; after BatchNorm + ReLU ``E[ȳ²] ≥ 1/(2π)`` whatever the pooling
    (:func:`relu_pool_mean_square`), so a ratio near 1 already means a saturating softmax.

    >>> round(rule1_ratio(0.0401, 1280, 7), 3)
    1.048
    """
    func = "rule1_ratio"
    weight_var = check_real(weight_var, "weight_var", func, 0.0)
    n_in = check_int(n_in, "n_in", func, 1, _MAX_N)
    k_pool = check_int(k_pool, "k_pool", func, 1, 10**6)
    return weight_var * n_in / k_pool**2


def relu_pool_mean_square(k_pool: int) -> float:
    """``E[ȳ²]`` of a global average over ``k_pool²`` independent ``ReLU(N(0, 1))`` values.

    ``(E y)² + Var[y]/k² = 1/(2π) + (1/2 − 1/(2π))/k²`` — an assumption (independent
    positions after BatchNorm + ReLU), used to turn Rule I into a logit variance.

    >>> round(relu_pool_mean_square(1), 3), round(relu_pool_mean_square(7), 3)
    (0.5, 0.166)
    """
    k_pool = check_int(k_pool, "k_pool", "relu_pool_mean_square", 1, 10**6)
    a = 1.0 / (2.0 * math.pi)
    return a + (0.5 - a) / k_pool**2


def classifier_table(bits: Sequence[int] = (1, 2, 3, 4, 8), *, classifiers: dict | None = None,
                     method: str = "exact", progress: bool | None = None) -> pd.DataFrame:
    """Rule I for the classifier shapes of :data:`CLASSIFIERS` (or ``classifiers``).

    **Assumption:** latent weights are Gaussian with the *variance* of PyTorch's default
    ``Linear`` init, ``σ² = 1/(3 n_in)``. That init is really uniform, ``U(±1/√n_in)``; its
    maximum sits at the bound, so clamping gives ``Var[Ŵ] ≈ 1/3`` at any N — the row
    ``"clamp, uniform init"`` (:func:`clamped_variance_uniform`), far above the Gaussian
    ``"clamp"`` row. For each shape and weight mode (full precision, DoReFa clamp, DoReFa
    at each bit-width, and each with SAT) the table gives ``Var[Ξ]``, the Rule I ratio
    (:func:`rule1_ratio`), the logit variance with ``E[ȳ²]`` from :func:`relu_pool_mean_square`,
    and the gradient factor ``n_out Var[Ξ]``. ``progress``: a tqdm bar over the classifiers
    (``None``: only after 2 s, in a terminal or notebook;
    ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> t = classifier_table(bits=(2,))
    >>> mnv2 = t[t.model == "MobileNetV2 (ImageNet)"].set_index("weights")
    >>> mnv2["rule1_ratio"].round(3).to_dict()
    {'fp': 0.007, 'clamp': 1.037, '2-bit': 2.923, 'clamp, uniform init': 8.709, 'SAT': 0.026}
    """
    import pandas as pd

    func = "classifier_table"
    method = check_option(method, "method", func, ("exact", "extreme"))
    bits = [check_int(b, "bits", func, 1, 16) for b in bits]
    classifiers = CLASSIFIERS if classifiers is None else classifiers
    progress = check_progress(progress, func)
    rows = []
    for name, (n_in, n_out, k_pool) in progress_bar(list(classifiers.items()), progress, func):
        n = n_in * n_out
        sigma = 1.0 / math.sqrt(3.0 * n_in)
        ysq = relu_pool_mean_square(k_pool)
        modes = [("fp", sigma**2), ("clamp", clamped_variance(n, sigma, method=method).variance)]
        modes += [(f"{b}-bit", quantized_variance(n, sigma, b, method=method).variance) for b in bits]
        modes += [("clamp, uniform init", clamped_variance_uniform(n, 1.0 / math.sqrt(n_in)))]
        modes += [("SAT", 1.0 / n_out)]
        for mode, v in modes:
            rows.append({
                "model": name, "n_in": n_in, "n_out": n_out, "k_pool": k_pool, "weights": mode,
                "weight_var": v, "rule1_bound": k_pool**2 / n_in,
                "rule1_ratio": rule1_ratio(v, n_in, k_pool),
                "logit_var": logit_variance(n_in, v, ysq),
                "grad_factor": gradient_variance_factor(n_out, v),
            })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- synthetic networks
WEIGHT_MODES = ("fp", "clamp", "dorefa")
#: SAT on no layer, the classifier only, every layer (``1/n_out``), or every layer with the
#: ReLU-aware ``2/n_out`` on the hidden layers (each followed by a ReLU) and ``1/n_out`` on the
#: classifier.
SAT_MODES = ("none", "last", "all", "all_relu")


def _latent_weights(widths, n_classes, gen):
    """Gaussian latent weights: Kaiming ``2/n_in`` for hidden layers, ``1/n_in`` for the classifier."""
    dims = list(widths) + [n_classes]
    out = []
    for i in range(len(dims) - 1):
        gain = 2.0 if i < len(dims) - 2 else 1.0
        out.append(gen.normal(0.0, math.sqrt(gain / dims[i]), size=(dims[i + 1], dims[i])))
    return out


def _effective(w, weights, bits):
    if weights == "fp":
        return w
    if weights == "clamp":
        t = np.tanh(w)
        return t / np.max(np.abs(t))
    return dorefa_quantize(w, bits)


def _sat_applied(qs, sat):
    n_layers = len(qs)
    out = []
    for i, q in enumerate(qs):
        last = i == n_layers - 1
        if sat in ("all", "all_relu") or (sat == "last" and last):
            gain = 2.0 if (sat == "all_relu" and not last) else 1.0
            q = q * math.sqrt(gain / (q.shape[0] * np.var(q, ddof=1)))
        out.append(q)
    return out


def _forward_backward(latent, x, labels, weights, bits, sat, bn, eps=1e-5, qs=None):
    if qs is None:
        qs = [_effective(w, weights, bits) for w in latent]
    eff64 = _sat_applied(qs, sat)
    weight_var = np.array([float(np.var(w)) for w in eff64])
    n_outs = np.array([w.shape[0] for w in eff64])
    # float64 throughout: these networks are small, and float32 BLAS products change in the last
    # bits with the thread count and CPU kernel, which made reproductions differ across machines
    eff = eff64
    batch, pos, _ = x.shape
    h = x.reshape(batch * pos, -1).astype(np.float64)
    cache = []
    for w in eff[:-1]:
        a = h @ w.T
        if bn:
            mu = a.mean(axis=0)
            sd = np.sqrt(a.var(axis=0) + eps)
            a = (a - mu) / sd
        else:
            sd = None
        cache.append((a, sd))
        h = np.maximum(a, 0.0)
    feat = h.reshape(batch, pos, -1).mean(axis=1)           # global average pooling
    z = feat @ eff[-1].T
    zs = z - z.max(axis=1, keepdims=True)
    logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    entropy = float(np.mean(-(p * logp).sum(axis=1, dtype=np.float64)))
    # backward: loss = mean cross-entropy, gradients scaled by the batch size
    g = p.copy()
    g[np.arange(batch), labels] -= 1.0
    g_feat = g @ eff[-1]                                      # ∂/∂(classifier input) · batch
    grad_rms = [float(np.sqrt(np.mean(g_feat**2, dtype=np.float64)))]
    gh = np.repeat(g_feat / pos, pos, axis=0) if pos > 1 else g_feat
    for (a, sd), w in zip(reversed(cache), reversed(eff[:-1]), strict=True):
        ga = gh * (a > 0)
        if bn:
            ga = (ga - ga.mean(axis=0) - a * (ga * a).mean(axis=0)) / sd
        gh = ga @ w
        grad_rms.append(float(np.sqrt(np.mean(gh**2, dtype=np.float64)) * math.sqrt(pos)))
    return NetworkResult(
        logit_var=float(np.var(z, dtype=np.float64)),
        logit_var_predicted=float(eff[-1].shape[1] * weight_var[-1] * np.mean(feat**2, dtype=np.float64)),
        max_prob=float(np.mean(p.max(axis=1))),
        entropy=entropy,
        grad_rms=np.array(grad_rms[::-1]),
        weight_var=weight_var,
        grad_factor_predicted=n_outs * weight_var,
    )


def _check_network_args(func, widths, n_classes, weights, bits, sat, bn, pool, batch):
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) < 1:
        raise param_error("widths", func, "a sequence of at least one positive int", widths, TypeError)
    widths = [check_int(w, "widths", func, 1, 100_000) for w in widths]
    n_classes = check_int(n_classes, "n_classes", func, 2, 100_000)
    weights = check_option(weights, "weights", func, WEIGHT_MODES)
    bits = check_int(bits, "bits", func, 1, 16)
    sat = check_option(sat, "sat", func, SAT_MODES)
    bn = check_bool(bn, "bn", func)
    pool = check_int(pool, "pool", func, 1, 64)
    batch = check_int(batch, "batch", func, 2, 1_000_000)
    return widths, n_classes, weights, bits, sat, bn, pool, batch


def synthetic_network(widths: Sequence[int] = (256, 256, 1280), n_classes: int = 1000, *,
                      weights: str = "dorefa", bits: int = 4, sat: str = "none", bn: bool = True,
                      pool: int = 1, batch: int = 256, rng: RNGLike = None) -> NetworkResult:
    """One random network: forward logit statistics and backward gradient magnitudes.

    The network maps an input of width ``widths[0]`` through ``len(widths) − 1`` hidden layers
    ``Linear → (BatchNorm) → ReLU`` of widths ``widths[1:]`` and a classifier
    ``widths[-1] → n_classes``. With ``pool > 1`` it is a pointwise (1×1) convolutional network
    on a ``pool × pool`` feature map followed by global average pooling before the classifier
    (the ``k_pool`` of Rule I). Inputs are standard normal, labels uniform at random, the loss
    is the mean cross-entropy. Latent weights are Gaussian (Kaiming ``2/n_in`` hidden,
    ``1/n_in`` classifier); BatchNorm uses batch statistics without affine parameters.

    Parameters
    ----------
    widths : sequence of int
        Input width then hidden widths; the last is the classifier's ``n_in``.
    n_classes : int
        Number of classes (≥ 100 to see the effect; 10 for a CIFAR head).
    weights : {"fp", "clamp", "dorefa"}
        Effective weights: the latent weights, DoReFa's clamp ``Ŵ`` (its "32-bit" branch), or
        DoReFa-quantized ``Q`` at ``bits``.
    bits : int
        Weight bit-width for ``weights="dorefa"`` (1–16).
    sat : {"none", "last", "all", "all_relu"}
        Apply SAT scaling to no layer, the classifier only (the authors' code), every layer
        (``Var = 1/n_out``), or every layer with the ReLU-aware ``2/n_out`` on the hidden layers.
        Without BatchNorm, ``"all"`` loses a factor 2 of gradient variance per ReLU layer;
        ``"all_relu"`` keeps it (see :func:`sat_scale`).
    bn : bool
        BatchNorm after each hidden linear layer.
    pool : int
        Side of the feature map (1 = fully connected).
    batch : int
        Batch size.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    NetworkResult

    Examples
    --------
    A ResNet-50-sized classifier (2048 → 1000) after BatchNorm + ReLU features:

    >>> r = synthetic_network((64, 128, 2048), 1000, weights="clamp", rng=0)
    >>> round(r.logit_var, 1), round(r.logit_var_predicted, 1), round(r.max_prob, 2)
    (35.9, 36.0, 0.58)
    >>> s = synthetic_network((64, 128, 2048), 1000, weights="clamp", sat="last", rng=0)
    >>> round(s.logit_var, 2), round(s.max_prob, 3)
    (1.02, 0.016)
    """
    func = "synthetic_network"
    widths, n_classes, weights, bits, sat, bn, pool, batch = _check_network_args(
        func, widths, n_classes, weights, bits, sat, bn, pool, batch)
    gen = _rng(rng, func)
    latent = _latent_weights(widths, n_classes, gen)
    x = gen.standard_normal((batch, pool * pool, widths[0]))
    labels = gen.integers(0, n_classes, size=batch)
    return _forward_backward(latent, x, labels, weights, bits, sat, bn)


def network_experiment(widths: Sequence[int] = (256, 256, 1280), n_classes: int = 1000, *,
                       bits: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8),
                       sat: Sequence[str] = ("none", "last"), bn: bool = True, pool: int = 1,
                       batch: int = 256, n_nets: int = 2, rng: RNGLike = None,
                       progress: bool | None = None) -> pd.DataFrame:
    """Sweep weight modes × bit-widths × SAT on the same random networks (paired draws).

    Every row averages :func:`synthetic_network` statistics over ``n_nets`` networks; each
    network's latent weights, inputs and labels are shared by all modes so that differences are
    due to the weight transformation only. ``progress``: a tqdm bar over the networks × weight
    modes (``None``: only after 2 s, in a terminal or notebook;
    ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame
        One row per (weights, bits, sat) with ``depth`` (hidden layers, ``len(widths) − 1``),
        ``logit_var``,
        ``logit_var_predicted``, ``max_prob``, ``entropy``, ``entropy_ratio``
        (entropy / log n_classes), ``classifier_var``, ``grad_in`` (gradient RMS at the
        network input), ``grad_cls`` (at the classifier input) and ``grad_l0 .. grad_lK``.

    Examples
    --------
    >>> t = network_experiment((64, 256), 100, bits=(2,), n_nets=1, rng=0)
    >>> [tuple(r) for r in t[["weights", "bits", "sat"]].itertuples(index=False)]
    [('fp', 0, 'none'), ('fp', 0, 'last'), ('clamp', 0, 'none'), ('clamp', 0, 'last'), ('dorefa', 2, 'none'), ('dorefa', 2, 'last')]
    """
    import pandas as pd

    func = "network_experiment"
    widths, n_classes, _, _, _, bn, pool, batch = _check_network_args(
        func, widths, n_classes, "fp", 1, "none", bn, pool, batch)
    bits = [check_int(b, "bits", func, 1, 16) for b in bits]
    if isinstance(sat, str):
        raise param_error("sat", func, "a sequence of 'none', 'last', 'all'", sat, TypeError)
    sat = [check_option(s, "sat", func, SAT_MODES) for s in sat]
    n_nets = check_int(n_nets, "n_nets", func, 1, 10_000)
    progress = check_progress(progress, func)
    gen = _rng(rng, func)
    configs = [("fp", 0), ("clamp", 0)] + [("dorefa", b) for b in bits]

    def cells():  # draws each network when its first cell is due (the draw order of a plain loop)
        for _ in range(n_nets):
            latent = _latent_weights(widths, n_classes, gen)
            x = gen.standard_normal((batch, pool * pool, widths[0]))
            labels = gen.integers(0, n_classes, size=batch)
            for mode, b in configs:
                yield latent, x, labels, mode, b

    acc: dict = {}
    for latent, x, labels, mode, b in progress_bar(cells(), progress, func, total=n_nets * len(configs)):
        qs = [_effective(w, mode, max(b, 1)) for w in latent]
        for s in sat:
            r = _forward_backward(latent, x, labels, mode, max(b, 1), s, bn, qs=qs)
            acc.setdefault((mode, b, s), []).append(r)
    rows = []
    for (mode, b, s), rs in acc.items():
        g = np.mean([r.grad_rms for r in rs], axis=0)
        row = {
            "weights": mode, "bits": b, "sat": s, "depth": len(widths) - 1, "n_in": widths[-1],
            "n_classes": n_classes, "bn": bn, "pool": pool,
            "logit_var": np.mean([r.logit_var for r in rs]),
            "logit_var_predicted": np.mean([r.logit_var_predicted for r in rs]),
            "max_prob": np.mean([r.max_prob for r in rs]),
            "entropy": np.mean([r.entropy for r in rs]),
            "entropy_ratio": np.mean([r.entropy for r in rs]) / math.log(n_classes),
            "classifier_var": np.mean([r.weight_var[-1] for r in rs]),
            "grad_in": g[0], "grad_cls": g[-1],
        }
        row.update({f"grad_l{i}": v for i, v in enumerate(g)})
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- calibrated PACT
PACT_METHODS = ("uniform", "exact", "montecarlo")
#: Monte-Carlo draws of :func:`pact_error_term` are made and reduced in chunks of this many (memory);
#: ``n_samples`` is at most ``_MC_MAX_WORK`` (time).
_PACT_CHUNK = 1 << 20
#: Exact PACT term, by ``d = log2(α / prior magnitude)``: above ``_PACT_FAR`` the first half-bin
#: only (the clip beyond float64's reach of the prior's units); else Gauss–Legendre on the density
#: where it is smooth over the bins, and otherwise, for a prior at most 2^256 bin widths wide, the
#: prior's interval integrals.
_PACT_BINS = 256
_PACT_FAR = 1020
#: In the far regime the first half-bin is cut at this many prior magnitudes: a finite variance
#: leaves at most 2^-1796 of the mass beyond.
_PACT_TAIL = 2.0**900


class _PactPart:
    """One prior's share of the exact term: ``P(0 < X < α) = p · 2^k``, the conditional ``E|e|``
    (``u``), ``E e`` (``m``) and RMS (``r``), and ``P(X ≥ α)`` (``above``)."""

    __slots__ = ("p", "k", "u", "m", "r", "above")

    def __init__(self, p, k, u, m, r, above):
        self.p, self.k, self.u, self.m, self.r, self.above = p, k, u, m, r, above


def _pact_unresolved(func: str, alpha: float, why: str) -> ValueError:
    return param_error("alpha", func, f"a clip at which the in-range term is resolved ({why})", alpha)


def _pact_exact(pr, alpha: float, bits: int, func: str) -> PactErrorResult:
    """The exact in-range term (see :func:`pact_error_term`), scaled by powers of two only."""
    part = _pact_part(pr, alpha, bits, func)
    if not part.p > 0.0:
        raise param_error("alpha", func, "a clip with P(0 < X < alpha) >= 2.2e-308 under the prior (the term "
                          "is conditional on 0 < X < alpha)", alpha)
    from .priors import _ldexp

    return PactErrorResult(part.u, part.r, part.m, part.above, 0.0, 0.0, 0.0, "exact",
                           float(_ldexp(part.p, part.k)))


def _pact_part(pr, alpha: float, bits: int, func: str) -> _PactPart:
    """:class:`_PactPart` of ``pr``: mixtures component by component, ``max(X, 0)`` as ``X``."""
    from .priors import Empirical, Mixture, Rectified, _ldexp, _pow2_exponent

    if isinstance(pr, Rectified):   # the same measure on 0 < x < α (the atom sits at 0)
        return _pact_part(pr.base, alpha, bits, func)
    if isinstance(pr, Mixture):
        parts = [_pact_part(c, alpha, bits, func) for c in pr.components]
        above = float(sum(w * q.above for w, q in zip(pr.weights, parts, strict=True)))
        live = [(w, q) for w, q in zip(pr.weights, parts, strict=True) if w > 0 and q.p > 0]
        if not live:
            return _PactPart(0.0, 0, 0.0, 0.0, 0.0, above)
        k = max(q.k for _, q in live)
        om = np.array([w * float(_ldexp(q.p, q.k - k)) for w, q in live])
        tot = float(om.sum())
        if not tot > 0.0:
            return _PactPart(0.0, 0, 0.0, 0.0, 0.0, above)
        om /= tot
        r = np.array([q.r for _, q in live])
        top = float(r.max())
        rms = top * math.sqrt(float(np.sum(om * (r / top) ** 2))) if top > 0 else 0.0
        return _PactPart(tot, k, float(np.sum(om * [q.u for _, q in live])),
                         float(np.sum(om * [q.m for _, q in live])), rms, above)
    m = 2**bits - 1
    if isinstance(pr, Empirical):   # samples: exact sums over them
        x = pr.x
        u = x[(x > 0.0) & (x < alpha)] / alpha
        above = float(np.count_nonzero(x >= alpha)) / pr.n
        if u.size == 0:
            return _PactPart(0.0, 0, 0.0, 0.0, 0.0, above)
        t = u * m
        e = (np.floor(t + 0.5) - t) / m                # q_k(u) − u on the bins [j − ½, j + ½) (steps)
        return _PactPart(u.size / pr.n, 0, float(np.mean(np.abs(e))), float(np.mean(e)),
                         math.sqrt(float(np.mean(e * e))), above)
    mag = pr._magnitude()
    if not (mag > 0.0 and math.isfinite(mag)):   # (a prior without a magnitude: as given)
        return _pact_bins(pr, alpha, m)
    ea, ep = _pow2_exponent(alpha), _pow2_exponent(mag)
    d = ea - ep
    if d > _PACT_FAR:
        return _pact_far(_pact_scaled(pr, ep, func, alpha), alpha, ea, ep)
    e = min(ep, ea + 1000)                             # the prior at ~1, the clip at least 2^-1000
    part = _pact_density(_pact_scaled(pr, e, func, alpha), math.ldexp(alpha, -e), m)
    if part is not None and (part.p > 0.0 or d < bits - _PACT_BINS):   # (else mass between the nodes?)
        return part
    if d < bits - _PACT_BINS:
        raise _pact_unresolved(func, alpha, "the prior is more than 2^256 bin widths wide, and has no density "
                               "smooth over such bins (e.g. one singular at 0)")
    e = min(ea - bits, ep)   # bins of width ~1 (the prior up to 2^256 of them), or the prior at ~1
    return _pact_bins(_pact_scaled(pr, e, func, alpha), math.ldexp(alpha, -e), m)


def _pact_scaled(pr, e: int, func: str, alpha: float):
    """The prior of ``X / 2^e`` (exact), or the error naming ``alpha`` where no float64 holds it."""
    try:
        return pr._scaled(e) if e else pr
    except ValueError:   # (e.g. a mixture whose components are further apart than float64's range)
        raise _pact_unresolved(func, alpha, "the prior's scale over alpha is beyond float64") from None


def _pact_bins(p, a: float, m: int) -> _PactPart:
    """Bin by bin with the prior's interval integrals, in units where the bins and the prior are
    at most 2^256 apart (so nothing underflows). ``α·e = level − x`` is linear on each half-bin;
    every integral is ``∫ (x − y) dP`` or ``∫ (x − y)² dP`` centred at the level or an end of the
    half-bin — never raw moments, whose combination ``c²m0 − 2c·m1/α + m2/α²`` cancels."""
    lo0 = np.nextafter(0.0, 1.0)                       # open at 0: exclude an atom at 0
    j = np.arange(0, m + 1, dtype=np.float64)
    lv = np.clip(a * j / m, lo0, a)                    # the level jΔ·α, where e changes sign
    lo = np.clip(a * (j - 0.5) / m, lo0, a)
    hi = np.clip(a * (j + 0.5) / m, lo0, a)
    i_l_lo, i_l_lv, i_u_lv, i_u_hi = np.split(np.asarray(p.interval_mean_error(
        np.concatenate([lo, lo, lv, lv]), np.concatenate([lv, lv, hi, hi]),
        np.concatenate([lo, lv, lv, hi])), dtype=np.float64), 4)
    sq = np.asarray(p.interval_sq_error(np.concatenate([lo, lv]), np.concatenate([lv, hi]),
                                        np.concatenate([lv, lv])), dtype=np.float64)
    # P([a, b)) = (∫ (x − a) dP − ∫ (x − b) dP) / (b − a): two non-negative terms, no cancellation
    w_l, w_u = lv - lo, hi - lv
    with np.errstate(invalid="ignore", divide="ignore"):
        p_l = np.where(w_l > 0, (i_l_lo - i_l_lv) / w_l, 0.0)
        p_u = np.where(w_u > 0, (i_u_lv - i_u_hi) / w_u, 0.0)
    above = float(np.asarray(p.prob(a, np.inf)))
    p_in = float(np.sum(np.maximum(p_l, 0.0)) + np.sum(np.maximum(p_u, 0.0)))
    if not p_in >= np.finfo(np.float64).tiny:
        return _PactPart(0.0, 0, 0.0, 0.0, 0.0, above)
    abs_l, abs_u = np.maximum(-i_l_lv, 0.0), np.maximum(i_u_lv, 0.0)   # ∫ α|e| dP on each half
    return _PactPart(p_in, 0, float(np.sum(abs_l) + np.sum(abs_u)) / p_in / a,
                     float(np.sum(abs_l - abs_u)) / p_in / a,
                     math.sqrt(max(float(np.sum(sq)), 0.0) / p_in) / a, above)


def _density(p):
    """The density of ``p`` (a callable), or None."""
    f = getattr(p, "pdf", None)
    return f if callable(f) else None


def _pact_density(p, a: float, m: int) -> _PactPart | None:
    """Gauss–Legendre on the density of ``p`` over each half-bin (``p`` and the clip ``a >= 2^-1000``
    in power-of-two units).

    Every half-bin has the width ``h = αΔ/2``; in the half-bin's own coordinate ``s ∈ (0, 1)``
    (distance from the level in units of h, exact by construction) ``|e| = (Δ/2)·s``, so
    ``E|e| = (Δ/2)·J1/J0`` and ``RMS = (Δ/2)·sqrt(J2/J0)`` with ``Jk = Σ ∫ s^k f``, whatever the
    density's size: it is normalised by a power of two first. None (use the interval integrals)
    where ``p`` has no density or 8 and 16 nodes disagree (a density not smooth over the bins:
    a kink, a jump, singular at 0, or a mass in a corner of a wide bin). The node positions are
    exact distances from the levels, and the density is evaluated, not integrated, so nothing
    cancels or underflows however narrow the bins are against the prior (or how far in its tail).
    """
    from .priors import _pow2_exponent

    f = _density(p)
    if f is None:
        return None
    h = 0.5 * a / m
    lv = a * np.arange(0, m + 1, dtype=np.float64) / m
    above = float(np.asarray(p.prob(a, np.inf)))
    res = []
    for n in (8, 16):
        x, w = _gauss_legendre(n)
        s, w = 0.5 * (x + 1.0), 0.5 * w
        with np.errstate(under="ignore", over="ignore", invalid="ignore", divide="ignore"):
            fl = np.asarray(f(lv[1:, None] - h * s[None, :]), dtype=np.float64)   # lower halves (j ≥ 1)
            fu = np.asarray(f(lv[:-1, None] + h * s[None, :]), dtype=np.float64)  # upper halves (j < m)
        if not (np.all(np.isfinite(fl)) and np.all(np.isfinite(fu))):
            return None
        top = max(float(np.max(fl)), float(np.max(fu)))
        if not top >= np.finfo(np.float64).tiny:   # (no representable density at the nodes)
            return _PactPart(0.0, 0, 0.0, 0.0, 0.0, above)
        kf = _pow2_exponent(top)
        fl, fu = np.ldexp(fl, -kf), np.ldexp(fu, -kf)
        jl, ju = fl @ (w * s), fu @ (w * s)
        res.append((float(np.sum(fl @ w) + np.sum(fu @ w)), float(np.sum(jl) + np.sum(ju)),
                    float(np.sum(jl) - np.sum(ju)), float(np.sum(fl @ (w * s * s)) + np.sum(fu @ (w * s * s))), kf))
    (c0, c1, _, c2, _), (j0, j1, jm, j2, kf) = res
    tol = 1e-12
    if not (abs(c0 - j0) <= tol * j0 and abs(c1 / c0 - j1 / j0) <= tol * j1 / j0
            and abs(c2 / c0 - j2 / j0) <= tol * j2 / j0):
        return None
    half = 0.5 / m                                     # Δ/2: |e| = (Δ/2)·s
    hm, hk = math.frexp(h)                             # P(0 < X < α) = h·J0·2^kf
    return _PactPart(hm * j0, kf + hk, half * j1 / j0, half * jm / j0, half * math.sqrt(j2 / j0), above)


def _pact_far(p, alpha: float, ea: int, ep: int) -> _PactPart:
    """A clip more than 2^1020 prior magnitudes wide (``p`` at unit scale): the mass in range sits
    in the first half-bin, where ``e = −x/α``; the results are ~2^-1020 or less."""
    from .priors import _ldexp

    lo0 = np.nextafter(0.0, 1.0)
    t = _PACT_TAIL
    i0, it = (float(np.asarray(v)) for v in p.interval_mean_error([lo0, lo0], [t, t], [0.0, t]))
    sq = float(np.asarray(p.interval_sq_error(lo0, t, 0.0)))
    p_in = (i0 - it) / t
    if not p_in >= np.finfo(np.float64).tiny:
        return _PactPart(0.0, 0, 0.0, 0.0, 0.0, 0.0)
    am = math.ldexp(alpha, -ea)                        # α = am · 2^ea, am in [0.5, 1)
    u = float(_ldexp(i0 / p_in / am, ep - ea))
    r = float(_ldexp(math.sqrt(max(sq, 0.0) / p_in) / am, ep - ea))
    return _PactPart(p_in, 0, u, -u, r, float(np.asarray(p.prob(_ldexp(alpha, -ep), np.inf))))


def _pact_montecarlo(pr, alpha: float, bits: int, n_samples: int, gen, func: str) -> PactErrorResult:
    """Monte Carlo of the in-range term in chunks of ``_PACT_CHUNK`` draws (Chan's pooled moments)."""
    from . import ste

    p, a = pr, alpha
    count, above = 0, 0
    mean, m2 = np.zeros(3), np.zeros(3)               # of |e|, e, e²
    done = 0
    while done < n_samples:
        c = min(_PACT_CHUNK, n_samples - done)
        x = p.rvs(c, gen)
        g = ste.calibrated_pact(x, a, bits).dq_dparam
        e = g[(x > 0.0) & (x < a)]
        above += int(np.count_nonzero(x >= a))
        done += c
        if e.size:
            v = np.stack([np.abs(e), e, e * e])
            nb = e.size
            mb = v.mean(axis=1)
            m2b = ((v - mb[:, None]) ** 2).sum(axis=1)
            tot = count + nb
            d = mb - mean
            mean = mean + d * (nb / tot)
            m2 = m2 + m2b + d * d * (count * nb / tot)
            count = tot
    if count < 2:
        raise param_error("n_samples", func, "large enough for at least 2 in-range draws", n_samples)
    se = np.sqrt(m2 / (count - 1) / count)
    rms = math.sqrt(float(mean[2]))
    return PactErrorResult(float(mean[0]), rms, float(mean[1]), above / n_samples, float(se[0]),
                           float(se[2]) / (2.0 * rms) if rms > 0 else 0.0, float(se[1]), "montecarlo",
                           count / n_samples)


def pact_error_term(bits: int, *, prior: PriorLike = "gaussian", alpha: float = 3.0, method: str = "exact",
                    n_samples: int = 200_000, rng: RNGLike = None) -> PactErrorResult:
    """Size of the in-range term of gradient-calibrated PACT, per in-range input.

    Calibrated PACT (SAT) keeps PACT's ``∂q/∂α = 1`` for ``x ≥ α`` and adds, for
    ``0 < x < α``, ``e(x) = q_k(x/α) − x/α`` (``Δ = 1/(2^k − 1)`` the step of ``q_k``). The
    pointwise rule is :func:`qtheory.ste.calibrated_pact` (one implementation, shared with the
    STE module); this function measures its size, conditional on ``0 < X < α``:

    - ``method="uniform"``: the inputs uniform within each bin, so ``e ~ U(−Δ/2, Δ/2)``:
      ``E|e| = Δ/4``, ``RMS = Δ/√12``, mean 0 (the "averages Δ/4" statement quoted for SAT
      [DERIVED; paper wording UNVERIFIED]); ``pact_grad`` is NaN (no prior).
    - ``method="exact"``: bin by bin under ``prior``, computed on ``X / 2^e`` (an exact
      power-of-two scaling; the term depends on ``X/α`` only, so the values are the same at any
      scale, 1e-300 to 1e300). Where the density is smooth over the bins (8- and 16-node rules
      agree), Gauss–Legendre on it over each half-bin, at exact distances from the level;
      otherwise the prior's ``interval_mean_error`` / ``interval_sq_error`` centred at the level
      or an end of each half-bin (``α·e = jΔα − x`` is linear there). Nothing is expanded into
      raw moments, whose combination cancels when α is far below the prior's scale. Mixtures are
      summed component by component, ``Rectified`` priors are their base on ``0 < x < α``, and
      samples (an array) are summed exactly. A clip more than ~2^1020 times the prior's scale
      keeps the first half-bin only (``e = −x/α``; the values are then ~1e-307 or less).
    - ``method="montecarlo"``: ``n_samples`` draws (in chunks of 2^20) pushed through
      :func:`qtheory.ste.calibrated_pact`.

    Parameters
    ----------
    bits : int
        Activation bit-width k (1–16).
    prior : str, scipy.stats frozen distribution, array_like or Prior
        Distribution of the PACT input (pre-clip); anything :func:`qtheory.as_prior` accepts.
    alpha : float
        PACT clip α > 0. With ``method="exact"`` the prior must give ``0 < X < α`` a probability
        of at least ~2.2e-308 (else ``ValueError``, as Monte Carlo asks for 2 in-range draws);
        where the prior is more than 2^256 bin widths ``αΔ`` wide its density must be smooth over
        the bins (else ``ValueError``).
    method : {"uniform", "exact", "montecarlo"}
    n_samples : int
        Monte-Carlo draws, 2 to 10^9.
    rng : None, int >= 0 or numpy.random.Generator

    Returns
    -------
    PactErrorResult

    Examples
    --------
    >>> r = pact_error_term(2, method="uniform")
    >>> round(r.mean_abs, 6), round(r.rms, 6)          # Δ/4 and Δ/√12 with Δ = 1/3
    (0.083333, 0.096225)
    >>> e = pact_error_term(2, prior="gaussian", alpha=3.0)
    >>> round(e.mean_abs, 4), round(e.rms, 4), round(e.mean, 4)
    (0.0834, 0.0963, -0.0114)
    >>> m = pact_error_term(2, prior="gaussian", alpha=3.0, method="montecarlo", rng=0)
    >>> abs(m.mean_abs - e.mean_abs) < 5 * m.stderr_mean_abs
    True

    A clip far below the prior's scale sees a flat density: the uniform form.

    >>> t = pact_error_term(3, prior="gaussian", alpha=1e-8)
    >>> round(t.mean_abs, 6), round(t.rms, 6), abs(t.mean) < 1e-15
    (0.035714, 0.041239, True)
    """
    from .priors import as_prior

    func = "pact_error_term"
    bits = check_int(bits, "bits", func, 1, 16)
    alpha = check_real(alpha, "alpha", func, 0.0, low_open=True)
    method = check_option(method, "method", func, PACT_METHODS)
    n_samples = check_int(n_samples, "n_samples", func, 2, _MC_MAX_WORK)
    gen = _rng(rng, func)
    delta = 1.0 / (2.0**bits - 1.0)
    if method == "uniform":
        return PactErrorResult(delta / 4.0, delta / math.sqrt(12.0), 0.0, float("nan"),
                               0.0, 0.0, 0.0, method)
    pr = as_prior(prior, name="prior", func=func)
    if method == "exact":
        return _pact_exact(pr, alpha, bits, func)
    return _pact_montecarlo(pr, alpha, bits, n_samples, gen, func)


# ----------------------------------------------------------------------------- experiment tables
def clamp_variance_table(ns: Sequence[int] = (16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1_280_000),
                         sigmas: Sequence[float] = (0.01, 0.1, 1.0), *, mc_elements: int = 4_000_000,
                         max_draws: int = 2000, rng: RNGLike = None, progress: bool | None = None) -> pd.DataFrame:
    """``Var[Ŵ]`` vs tensor size N and σ: exact, extreme-value, and Monte Carlo.

    Each Monte-Carlo estimate draws ``min(max_draws, mc_elements // N)`` tensors (at least 10).
    ``progress``: a tqdm bar over the (σ, N) cells (``None``: only after 2 s, in a terminal or notebook;
    ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame
        Columns ``n, sigma, u_n, exact, extreme, rel_error, bound (2γ/u_N²), mc, mc_stderr,
        mc_draws, z`` (``z = (mc − exact)/mc_stderr``).

    Examples
    --------
    >>> t = clamp_variance_table((64, 640), (0.05,), mc_elements=200_000, rng=0)
    >>> t[["n", "exact", "extreme"]].round(4).values.tolist()
    [[64.0, 0.1557, 0.1719], [640.0, 0.0949, 0.1011]]
    >>> bool((t.z.abs() < 5).all())
    True
    """
    import pandas as pd

    func = "clamp_variance_table"
    ns = [check_int(n, "ns", func, 2, _MAX_N) for n in ns]
    sigmas = [check_real(s, "sigmas", func, 0.0, _MAX_SIGMA, low_open=True) for s in sigmas]
    mc_elements = check_int(mc_elements, "mc_elements", func, 0, _MC_MAX_WORK)
    max_draws = check_int(max_draws, "max_draws", func, 10)
    progress = check_progress(progress, func)
    gen = _rng(rng, func)
    rows = []
    for s, n in progress_bar([(s, n) for s in sigmas for n in ns], progress, func):
        ex = clamped_variance(n, s).variance
        ap = clamped_variance(n, s, method="extreme").variance
        u = float(stats.norm.isf(0.5 / n))
        row = {"n": n, "sigma": s, "u_n": u, "exact": ex, "extreme": ap, "rel_error": ap / ex - 1.0,
               "bound": 2.0 * _EULER_GAMMA / u**2, "mc": np.nan, "mc_stderr": np.nan, "mc_draws": 0,
               "z": np.nan}
        draws = min(max_draws, mc_elements // n) if mc_elements else 0
        if draws >= 10 and n <= _MC_MAX_N:
            mc = clamped_variance(n, s, method="montecarlo", n_draws=draws, rng=gen)
            row.update(mc=mc.variance, mc_stderr=mc.stderr, mc_draws=draws,
                       z=(mc.variance - ex) / mc.stderr)
        rows.append(row)
    return pd.DataFrame(rows)


#: Var[Q]/Var[Ŵ] for k = 1..5 as quoted in the project notes (``sat.md``, tagged [DERIVED,
#: recompute]; the N and σ behind them are not stated).
NOTES_RATIO = {1: 23.5, 2: 2.63, 3: 1.16, 4: 1.034, 5: 1.008}


def variance_ratio_table(bits: Sequence[int] = tuple(range(1, 9)), *, classifiers: dict | None = None,
                         mc_elements: int = 8_000_000, max_draws: int = 2000,
                         rng: RNGLike = None, progress: bool | None = None) -> pd.DataFrame:
    """``Var[Q]``, ``Var[Ŵ]`` and their ratio vs bits for each classifier shape (σ² = 1/(3 n_in)).

    Exact (bin probabilities averaged over the maximum), extreme-value (clamp at σ u_N) and
    Monte Carlo (``min(max_draws, mc_elements // N)`` tensors, at least 10), beside the values
    quoted in the notes (:data:`NOTES_RATIO`). ``progress``: a tqdm bar over the classifiers
    (``None``: only after 2 s, in a terminal or notebook;
    ``True``: always; ``False``: never).

    Examples
    --------
    >>> t = variance_ratio_table((1, 2), classifiers={"ResNet-20 (CIFAR-10)": (64, 10, 8)},
    ...                          mc_elements=200_000, rng=0)
    >>> t[["bits", "ratio_exact"]].round(3).values.tolist()
    [[1.0, 10.394], [2.0, 1.457]]
    """
    import pandas as pd

    func = "variance_ratio_table"
    bits = [check_int(b, "bits", func, 1, 16) for b in bits]
    mc_elements = check_int(mc_elements, "mc_elements", func, 0, _MC_MAX_WORK)
    max_draws = check_int(max_draws, "max_draws", func, 10)
    classifiers = CLASSIFIERS if classifiers is None else classifiers
    progress = check_progress(progress, func)
    gen = _rng(rng, func)
    rows = []
    for name, (n_in, n_out, _k) in progress_bar(list(classifiers.items()), progress, func):
        n = n_in * n_out
        sigma = 1.0 / math.sqrt(3.0 * n_in)
        draws = min(max_draws, mc_elements // n) if mc_elements else 0
        if draws >= 10 and n <= _MC_MAX_N:   # one set of tensors for all bit-widths (paired)
            w2, q2 = _mc_draws(n, sigma, draws, gen, bits)
        for b in bits:
            ex = quantized_variance(n, sigma, b)
            ap = quantized_variance(n, sigma, b, method="extreme")
            row = {"model": name, "n": n, "sigma": sigma, "bits": b, "var_q_exact": ex.variance,
                   "var_w_exact": ex.clamped, "ratio_exact": ex.ratio, "ratio_extreme": ap.ratio,
                   "ratio_mc": np.nan, "ratio_mc_stderr": np.nan, "var_q_mc": np.nan,
                   "var_q_mc_stderr": np.nan, "mc_draws": 0, "ratio_notes": NOTES_RATIO.get(b, np.nan)}
            if draws >= 10 and n <= _MC_MAX_N:
                mq, _mw, ratio, se_q, _se_w, se_r = _ratio_stats(q2[b], w2)
                row.update(ratio_mc=ratio, ratio_mc_stderr=se_r, var_q_mc=mq, var_q_mc_stderr=se_q,
                           mc_draws=draws)
            rows.append(row)
    return pd.DataFrame(rows)


def pact_error_table(bits: Sequence[int] = tuple(range(1, 9)), *, priors: dict | None = None,
                     n_samples: int = 200_000, rng: RNGLike = None, progress: bool | None = None) -> pd.DataFrame:
    """Calibrated-PACT in-range error term vs bits: uniform form, exact and Monte Carlo per prior.

    ``priors`` maps a label to ``(prior, alpha)``; the default is a standard Gaussian with α = 3
    and a rectified Gaussian (post-ReLU) with α = 2. ``progress``: a tqdm bar over the (prior,
    bits) cells (``None``: only after 2 s, in a terminal or notebook;
    ``True``: always; ``False``: never).

    Examples
    --------
    >>> t = pact_error_table((2, 4), n_samples=20_000, rng=0)
    >>> t[["bits", "uniform_mean_abs"]].drop_duplicates().values.tolist()
    [[2.0, 0.08333333333333333], [4.0, 0.016666666666666666]]
    """
    import pandas as pd

    from .priors import Rectified

    func = "pact_error_table"
    bits = [check_int(b, "bits", func, 1, 16) for b in bits]
    n_samples = check_int(n_samples, "n_samples", func, 2, _MC_MAX_WORK)
    priors = {"N(0,1), α=3": ("gaussian", 3.0), "ReLU(N(0,1)), α=2": (Rectified("gaussian"), 2.0)} \
        if priors is None else priors
    progress = check_progress(progress, func)
    gen = _rng(rng, func)
    rows = []
    cells = [(label, prior, alpha, b) for label, (prior, alpha) in priors.items() for b in bits]
    for label, prior, alpha, b in progress_bar(cells, progress, func):
        u = pact_error_term(b, method="uniform")
        ex = pact_error_term(b, prior=prior, alpha=alpha)
        mc = pact_error_term(b, prior=prior, alpha=alpha, method="montecarlo", n_samples=n_samples,
                             rng=gen)
        rows.append({"prior": label, "alpha": alpha, "bits": b, "delta": 1.0 / (2**b - 1),
                     "uniform_mean_abs": u.mean_abs, "uniform_rms": u.rms,
                     "exact_mean_abs": ex.mean_abs, "exact_rms": ex.rms, "exact_mean": ex.mean,
                     "mc_mean_abs": mc.mean_abs, "mc_mean_abs_stderr": mc.stderr_mean_abs,
                     "mc_mean": mc.mean, "mc_mean_stderr": mc.stderr_mean,
                     "p_above_alpha": ex.pact_grad, "p_in_range": ex.p_in_range,
                     "in_range_abs_total": ex.p_in_range * ex.mean_abs,
                     "in_range_mean_total": ex.p_in_range * ex.mean,
                     "abs_total_over_pact": ex.p_in_range * ex.mean_abs / ex.pact_grad})
    return pd.DataFrame(rows)


def depth_experiment(depths: Sequence[int] = (1, 2, 4, 8, 16), *, width: int = 256, n_in: int = 1280,
                     n_classes: int = 1000, bits: Sequence[int] = (2, 4, 8), bn: bool = True,
                     sat: Sequence[str] = ("none", "last"), batch: int = 128, n_nets: int = 1,
                     rng: RNGLike = None, progress: bool | None = None) -> pd.DataFrame:
    """:func:`network_experiment` for networks of increasing depth.

    The network is ``width → width (× depth − 1) → n_in → n_classes`` (``depth`` hidden layers,
    the last one of width ``n_in``, the classifier input). ``progress``: a tqdm bar over the depths
    (``None``: only after 2 s, in a terminal or notebook;
    ``True``: always; ``False``: never).

    Examples
    --------
    >>> t = depth_experiment((1, 2), width=32, n_in=64, n_classes=100, bits=(2,), batch=32, rng=0)
    >>> sorted(set(t.depth))
    [1, 2]
    """
    import pandas as pd

    func = "depth_experiment"
    depths = [check_int(d, "depths", func, 1, 200) for d in depths]
    width = check_int(width, "width", func, 1, 100_000)
    n_in = check_int(n_in, "n_in", func, 1, 100_000)
    progress = check_progress(progress, func)
    gen = _rng(rng, func)
    frames = []
    for d in progress_bar(depths, progress, func):
        widths = (width,) * d + (n_in,)
        frames.append(network_experiment(widths, n_classes, bits=bits, sat=sat, bn=bn, batch=batch,
                                         n_nets=n_nets, rng=gen, progress=False))
    return pd.concat(frames, ignore_index=True)
