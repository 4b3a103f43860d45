"""Per-channel bit allocation and bias correction (Banner, Nahshan & Soudry, NeurIPS 2019).

Bit allocation
--------------
Channel ``i`` is quantized with ``M_i`` bits; under the uniform-noise model its MSE is
``α_i² / (3·4^M_i)`` (``α_i`` its clip). Minimising the sum under a budget gives

- budget on total bins ``Σ 2^M_i = B`` (paper eq. 10–11):
  ``2^M_i = B·α_i^(2/3) / Σ_j α_j^(2/3)`` — :func:`closed_form_allocation` with ``budget="bins"``;
- budget on total bits ``Σ M_i = C·M̄`` [DERIVED]: ``2^M_i ∝ α_i``, i.e.
  ``M_i = M̄ + log2(α_i) − mean_j log2(α_j)`` — ``budget="bits"``;
- the official code: per-channel std in place of ``α``, rounded, clamped to [0, 8] and iterated
  (≤ 10 times) to meet the mean bit-width — :func:`official_allocation`;
- the exact integer optimum of any per-channel costs under either budget —
  :func:`optimal_allocation` (greedy marginal gains or dynamic programming).

The per-channel costs are a matrix ``costs[i, k]`` = MSE of channel ``i`` at ``min_bits + k``
bits, built by :func:`channel_costs` with ``objective="approx"`` (``α²/(3·4^M)``) or
``objective="exact"`` (the exact MSE of the channel's prior or samples, at the optimal clip for
each bit-width or at a fixed clip).

*Why greedy is exact under a bits budget and not under a bins budget.* For a separable objective
``Σ f_i(M_i)`` with each ``f_i`` convex in ``M`` (non-increasing marginal gains), every unit of
the bits budget buys one step ``M → M+1`` of some channel, and all steps cost the same; the
exchange argument shows that taking the ``S`` largest marginal gains is optimal. Under a bins
budget a step ``M → M+1`` costs ``2^M`` bins, so the problem is a knapsack with unequal weights:
greedy by gain per bin can leave bins unused or buy a cheap step instead of an expensive but
better one (``tests/test_allocation.py`` contains a counterexample). The exact optimum is then
computed by dynamic programming over the integer budget (multiple-choice knapsack), which is
exact for any costs, convex or not. ``optimal_allocation(method="auto")`` uses the greedy
algorithm when it is provably exact (bits budget, convex costs) and the DP otherwise.

Bias correction
---------------
Quantization shifts each output channel's weight mean and norm. :func:`bias_correct` applies

- ``"mean"``: ``W_q − mean(W_q) + mean(W)`` (official ``-bcw``; the ``μ_c`` term of eq. 12);
- ``"variance"``: ``(W_q − μ_q)·σ/σ_q + μ_q`` (official ``-vcw``; keeps the quantized mean);
- ``"both"``: variance then mean, as the official code does with both flags
  (``(W_q − μ_q)·σ/σ_q + μ``: mean and norm of the centred channel restored);
- ``"paper"``: eq. 12–13 literally, ``ξ_c·(W_q + μ_c)`` with
  ``ξ_c = ‖W_c − E W_c‖ / ‖W_q − E W_q‖``; this restores the centred norm but scales the mean
  to ``ξ_c·E[W_c]`` (exact only for zero-mean channels).

The effect on a linear layer ``y = W x`` with independent inputs of mean ``m`` and variance ``s²``
follows from the per-weight quantization error ``e = w − Q(w)`` (mean ``E e``, variance ``V e``) of
a channel with ``n`` weights drawn from a prior (:func:`expected_output_error`)::

    expected output shift²   none: m²·(n·V e + n²·(E e)²)      mean-corrected: 0
    output MSE               none: n·s²·E[e²] + shift²          mean-corrected: (n − 1)·s²·V e

and for a given weight matrix from :func:`linear_output_error`.

Examples
--------
>>> import numpy as np
>>> from qtheory.allocation import closed_form_allocation, channel_costs, optimal_allocation
>>> alphas = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
>>> closed_form_allocation(alphas, 4, budget="bits").bits      # 2^M ∝ α
array([2, 3, 4, 5, 6])
>>> costs = channel_costs(range(1, 9), alphas=alphas)
>>> optimal_allocation(costs, 20, budget="bits").bits
array([2, 3, 4, 5, 6])
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._progress import check_progress, progress_bar
from ._results import ResultMixin
from ._typing import ArrayLike, PriorLike, RNGLike
from ._validation import check_int, check_option, check_real, check_samples, param_error
from .quantizer import MAX_BITS, MIN_BITS, Quantizer

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AllocationResult",
    "closed_form_allocation",
    "official_allocation",
    "channel_costs",
    "optimal_allocation",
    "greedy_allocation",
    "brute_force_allocation",
    "allocation_cost",
    "allocate_bits",
    "two_channel_mse",
    "two_channel_optimum",
    "bins_mse",
    "simulate_bins_mse",
    "bias_correct",
    "correction_terms",
    "ErrorMoments",
    "error_moments",
    "OutputError",
    "expected_output_error",
    "linear_output_error",
    "simulate_output_error",
    "ChannelQuantization",
    "quantize_channels",
    "weight_report",
    "synthetic_conv_weights",
    "default_configs",
    "TwoChannelExperiment",
    "two_channel_experiment",
    "allocation_experiment",
    "bias_correction_experiment",
    "PAPER_TABLE1",
    "BUDGETS",
    "OBJECTIVES",
    "CORRECTIONS",
    "CLIPS",
    "ALLOCATIONS",
]

BUDGETS = ("bins", "bits")
OBJECTIVES = ("approx", "exact")
CORRECTIONS = ("none", "mean", "variance", "both", "paper")
CLIPS = ("max", "laplace", "gaussian", "optimal")
ALLOCATIONS = ("uniform", "closed_form", "official", "optimal")

#: ImageNet top-1 (%) of the paper's Table 1 (4-bit weights and activations, first/last layer at
#: 8 bits): naive per-tensor baseline vs all three methods (ACIQ + allocation + bias correction).
PAPER_TABLE1 = {
    "VGG16": (67.2, 70.5),
    "VGG16-BN": (64.5, 71.8),
    "Inception-V3": (30.6, 66.4),
    "ResNet-18": (51.6, 67.0),
    "ResNet-50": (62.0, 73.8),
    "ResNet-101": (62.6, 75.0),
}

_BRUTE_LIMIT = 2_000_000


# ==================================================================================== validation
def _check_spreads(x, name: str, func: str) -> np.ndarray:
    arr = check_samples(x, name, func)
    bad = int(np.count_nonzero(arr <= 0))
    if bad:
        raise param_error(name, func, "a non-empty 1-D array of positive finite numbers",
                          f"array with {bad} non-positive value(s)")
    return arr


def _check_mean_bits(mean_bits, func: str, high: float = MAX_BITS) -> float:
    return check_real(mean_bits, "mean_bits", func, 1.0, high)


def _check_costs(costs, func: str) -> np.ndarray:
    arr = check_samples(costs, "costs", func, ndim=2)
    if arr.shape[1] < 1:
        raise param_error("costs", func, "a 2-D array with at least one bit-width column",
                          f"array of shape {arr.shape}")
    if np.any(arr < 0):
        raise param_error("costs", func, "a 2-D array of non-negative MSEs", "array with negative entries")
    return arr


def _round(x, rounding: str) -> np.ndarray:
    return np.rint(x) if rounding == "round" else np.ceil(x - 1e-12)


# ==================================================================================== results
@dataclass(frozen=True)
class AllocationResult(ResultMixin):
    """Bits per channel and what they cost.

    Attributes
    ----------
    bits : ndarray
        Bits per channel (int; float for ``rounding="none"`` closed forms).
    method : str
        ``"closed_form"``, ``"official"``, ``"greedy"``, ``"dp"``, ``"brute_force"`` or ``"uniform"``.
    budget : str
        ``"bins"`` (Σ 2^M_i) or ``"bits"`` (Σ M_i).
    target : float
        The budget in that unit (``C·2^M̄`` bins or ``C·M̄`` bits).
    used : float
        The amount of that unit the allocation actually uses (a rounded closed form may differ).
    mse : float or None
        Mean over channels of the per-channel cost (the tensor MSE when channels are equally
        large), when costs are known.
    channel_mse : ndarray or None
        Per-channel cost.
    """

    bits: np.ndarray
    method: str
    budget: str
    target: float
    used: float
    mse: float | None = None
    channel_mse: np.ndarray | None = field(default=None, repr=False)

    @property
    def mean_bits(self) -> float:
        """Average bit-width."""
        return float(np.mean(self.bits))


def _used(bits, budget) -> float:
    b = np.asarray(bits, dtype=np.float64)
    return float(np.sum(2.0**b) if budget == "bins" else np.sum(b))


def _approx_cost(alphas, bits) -> np.ndarray:
    return alphas**2 / (3.0 * 4.0 ** np.asarray(bits, dtype=np.float64))


# ==================================================================================== closed forms
def closed_form_allocation(alphas: ArrayLike, mean_bits: float, *, budget: str = "bins", rounding: str = "round",
                           min_bits: int = 1, max_bits: int = 8) -> AllocationResult:
    """The paper's closed-form allocation (budget on bins) or its bits-budget twin.

    Parameters
    ----------
    alphas : array_like
        Per-channel clips (or any spread they are proportional to), > 0.
    mean_bits : float
        Nominal bit-width ``M̄`` >= 1: the budget is ``C·2^M̄`` bins or ``C·M̄`` bits.
    budget : {"bins", "bits"}
        ``"bins"``: ``2^M_i = C·2^M̄·α_i^(2/3) / Σ α_j^(2/3)`` (paper eq. 10–11);
        ``"bits"``: ``2^M_i ∝ α_i``, i.e. ``M_i = M̄ + log2(α_i) − mean(log2 α)``.
    rounding : {"round", "ceil", "none"}
        ``"none"`` returns the real-valued solution, unclamped. Otherwise round (half to even,
        as ``torch.round``) or ceil, then clamp to ``[min_bits, max_bits]``.
    min_bits, max_bits : int
        Clamp range of the rounded allocation.

    Returns
    -------
    AllocationResult
        ``mse`` is the model value ``mean_i α_i²/(3·4^M_i)``.

    Examples
    --------
    >>> r = closed_form_allocation([1.0, 8.0], 4, rounding="none")
    >>> r.bits                       # 2^M = 32·(1, 4)/5
    array([2.67807191, 4.67807191])
    >>> float(np.sum(2.0 ** r.bits))
    32.0
    >>> closed_form_allocation([1.0, 8.0], 4).bits
    array([3, 5])
    """
    func = "closed_form_allocation"
    alphas = _check_spreads(alphas, "alphas", func)
    budget = check_option(budget, "budget", func, BUDGETS)
    rounding = check_option(rounding, "rounding", func, ("round", "ceil", "none"))
    min_bits = check_int(min_bits, "min_bits", func, 0, MAX_BITS)
    max_bits = check_int(max_bits, "max_bits", func, max(min_bits, 1), MAX_BITS)
    mean_bits = _check_mean_bits(mean_bits, func, max_bits if rounding != "none" else MAX_BITS)
    c = alphas.size
    if budget == "bins":
        w = alphas ** (2.0 / 3.0)
        m = np.log2(c * 2.0**mean_bits * w / w.sum())
        target = c * 2.0**mean_bits
    else:
        la = np.log2(alphas)
        m = mean_bits + la - la.mean()
        target = c * mean_bits
    if rounding != "none":
        m = np.clip(_round(m, rounding), min_bits, max_bits).astype(np.int64)
    return AllocationResult(m, "closed_form", budget, float(target), _used(m, budget),
                            float(np.mean(_approx_cost(alphas, m))), _approx_cost(alphas, m))


def official_allocation(spreads: ArrayLike, mean_bits: float, *, rounding: str = "round", max_iter: int = 10,
                        eps: float = 0.01) -> AllocationResult:
    """The official code's iterative allocation (``get_bits_alloc_fixed_target``).

    Starting from the target ``t = M̄``: ``2^M_i = C·2^t·s_i^(2/3)/Σ s_j^(2/3)``, rounded (or
    ceiled), clamped to ``[0, 8]``; then ``t ← t + (M̄ − mean M)/2``, repeated until
    ``|M̄ − mean M| <= eps`` or ``max_iter`` rounds. The last allocation is returned even if it
    misses the target. The official code passes per-channel standard deviations as ``s``
    (``torch.std``, unbiased) and only allocates when the bit-width is <= 4.

    Examples
    --------
    >>> r = official_allocation([0.5, 1.0, 2.0, 4.0], 4)
    >>> r.bits, r.mean_bits
    (array([3, 4, 4, 5]), 4.0)
    """
    func = "official_allocation"
    s = _check_spreads(spreads, "spreads", func)
    mean_bits = _check_mean_bits(mean_bits, func, 8)
    rounding = check_option(rounding, "rounding", func, ("round", "ceil"))
    max_iter = check_int(max_iter, "max_iter", func, 1, 1000)
    eps = check_real(eps, "eps", func, 0.0)
    p = s ** (2.0 / 3.0)
    c = s.size
    target, delta, it = mean_bits, 1.0, 0
    m = None
    while abs(2 * delta) > eps and it < max_iter:
        it += 1
        m = np.clip(_round(np.log2(c * 2.0**target * p / p.sum()), rounding), 0, 8).astype(np.int64)
        delta = (mean_bits - m.mean()) / 2.0
        target += delta
    return AllocationResult(m, "official", "bits", c * mean_bits, _used(m, "bits"),
                            float(np.mean(_approx_cost(s, m))), _approx_cost(s, m))


# ==================================================================================== costs
def channel_costs(bits: Iterable[int], *, alphas: ArrayLike | None = None,
                  priors: PriorLike | Sequence[PriorLike] | None = None, scales: ArrayLike | None = None,
                  objective: str = "approx", grid: str = "midrise") -> np.ndarray:
    """Per-channel MSE at each bit-width: the cost matrix of the allocation problem.

    Parameters
    ----------
    bits : iterable of int
        Consecutive bit-widths (e.g. ``range(1, 9)``); column ``k`` of the result is ``bits[k]``.
    alphas : array_like, optional
        Per-channel clips. Needed for ``objective="approx"``; with ``"exact"`` they fix the clip
        (otherwise each channel uses its exact optimal clip at each bit-width).
    priors : sequence, optional
        Per-channel priors for ``objective="exact"``: anything :func:`qtheory.as_prior` accepts
        (a Prior, a frozen scipy distribution, or a 1-D sample array), or a 2-D array whose rows
        are the channels' samples. With ``scales``, one prior (e.g. ``"laplace"``) shared by all
        channels up to scale.
    scales : array_like, optional
        Per-channel scales of a single ``priors``: channel ``i`` is ``scales[i]·X`` with ``X ~ priors``,
        so its exact MSE at its optimal clip is ``scales[i]²`` times the unit prior's (computed once
        per bit-width).
    objective : {"approx", "exact"}
        ``"approx"``: ``α_i²/(3·4^M)`` (uniform-noise model, clipping ignored);
        ``"exact"``: ``qtheory.clipping_mse(prior_i, α, M, grid=grid, method="exact")``.
    grid : str
        Quantizer grid of the exact objective.

    Returns
    -------
    ndarray, shape (C, len(bits))

    Examples
    --------
    >>> channel_costs([2, 3], alphas=[1.0, 2.0])
    array([[0.02083333, 0.00520833],
           [0.08333333, 0.02083333]])
    >>> from qtheory import Laplace
    >>> channel_costs([4], priors=[Laplace(1.0)], objective="exact").round(4)
    array([[0.0507]])
    >>> channel_costs([4], priors="laplace", scales=[1.0, 2.0], objective="exact").round(4)
    array([[0.0507],
           [0.2028]])
    """
    func = "channel_costs"
    objective = check_option(objective, "objective", func, OBJECTIVES)
    grid = check_option(grid, "grid", func, ("midrise", "int", "narrow", "unsigned", "uint"))
    bits = _check_bits_range(bits, func, 0 if objective == "approx" else MIN_BITS[grid])
    if alphas is not None:
        alphas = _check_spreads(alphas, "alphas", func)
    if objective == "approx":
        if alphas is None:
            raise param_error("alphas", func, "an array of per-channel clips when objective='approx'",
                              None, TypeError)
        return _approx_cost(alphas[:, None], bits[None, :])
    if priors is None:
        raise param_error("priors", func, "a sequence of per-channel priors when objective='exact'",
                          None, TypeError)
    from .mse import clipping_mse
    from .optimal import optimal_clip

    if scales is not None:
        from .priors import as_prior

        scales = _check_spreads(scales, "scales", func)
        if alphas is not None:
            raise param_error("alphas", func, "None when 'scales' is given (clips are optimal)", "an array")
        unit = as_prior(priors, name="priors", func=func)
        per_bit = np.array([optimal_clip(unit, int(m), grid=grid, method="exact").mse for m in bits])
        return scales[:, None] ** 2 * per_bit[None, :]
    plist = _as_prior_list(priors, func)
    if alphas is not None and alphas.size != len(plist):
        raise param_error("alphas", func, f"an array with one clip per prior ({len(plist)})",
                          f"array of shape {alphas.shape}")
    out = np.empty((len(plist), bits.size))
    for i, p in enumerate(plist):
        for k, m in enumerate(bits):
            if alphas is None:
                out[i, k] = optimal_clip(p, int(m), grid=grid, method="exact").mse
            else:
                out[i, k] = float(clipping_mse(p, alphas[i], int(m), grid=grid, method="exact", _power=False).mse)
    return out


def _check_bits_range(bits, func: str, low: int) -> np.ndarray:
    try:
        arr = np.asarray(list(bits))
    except TypeError:
        raise param_error("bits", func, "an iterable of consecutive ints", bits, TypeError) from None
    if arr.size == 0 or arr.dtype.kind not in "iu":
        raise param_error("bits", func, "a non-empty iterable of consecutive ints", bits, TypeError)
    if np.any(np.diff(arr) != 1) or arr[0] < low or arr[-1] > MAX_BITS:
        raise param_error("bits", func, f"consecutive ints in the range [{low}, {MAX_BITS}]", arr.tolist())
    return arr.astype(np.int64)


def _as_prior_list(priors, func: str) -> list:
    from .priors import as_prior

    if isinstance(priors, np.ndarray) and priors.ndim == 2:
        rows = check_samples(priors, "priors", func, ndim=2)
        return [as_prior(r, name="priors", func=func) for r in rows]
    if isinstance(priors, (str, bytes)) or not isinstance(priors, Sequence):
        raise param_error("priors", func, "a sequence of priors or a 2-D array of channel samples",
                          type(priors).__name__, TypeError)
    if len(priors) == 0:
        raise param_error("priors", func, "a non-empty sequence of priors", "empty sequence")
    return [as_prior(p, name="priors", func=func) for p in priors]


# ==================================================================================== exact integer
def _budget_setup(costs, total, budget, min_bits, func):
    c, k = costs.shape
    low = max(1, min_bits)
    need = c * (2**low if budget == "bins" else low)
    total = check_int(total, "total", func)
    if total < need:
        raise param_error("total", func,
                          f"an int >= {need} ({budget} for at least {low} bit(s) per channel)", total)
    bits = min_bits + np.arange(k)
    weight = (2**bits if budget == "bins" else bits).astype(np.int64)
    return total, bits, weight


def optimal_allocation(costs: ArrayLike, total: int, *, budget: str = "bits", min_bits: int = 1,
                       method: str = "auto") -> AllocationResult:
    """Exact integer allocation minimising ``Σ_i costs[i, M_i − min_bits]`` under a budget.

    Parameters
    ----------
    costs : array_like, shape (C, K)
        ``costs[i, k]`` = MSE of channel ``i`` at ``min_bits + k`` bits (:func:`channel_costs`).
    total : int
        Budget: ``Σ M_i <= total`` (bits) or ``Σ 2^M_i <= total`` (bins); at least one bit per
        channel.
    budget : {"bits", "bins"}
    min_bits : int
        Bit-width of column 0.
    method : {"auto", "greedy", "dp"}
        ``"greedy"``: marginal gains (per bit, or per bin for a bins budget) — exact for a bits
        budget with convex costs, a heuristic otherwise. ``"dp"``: dynamic programming over the
        integer budget, exact for any costs. ``"auto"``: greedy when it is exact, else DP.

    Returns
    -------
    AllocationResult

    Examples
    --------
    >>> costs = channel_costs(range(1, 9), alphas=[1.0, 3.0, 9.0])
    >>> r = optimal_allocation(costs, 3 * 16, budget="bins")
    >>> r.bits, r.used
    (array([3, 3, 5]), 48.0)
    """
    func = "optimal_allocation"
    costs = _check_costs(costs, func)
    budget = check_option(budget, "budget", func, BUDGETS)
    min_bits = check_int(min_bits, "min_bits", func, 0, MAX_BITS)
    method = check_option(method, "method", func, ("auto", "greedy", "dp"))
    if min_bits + costs.shape[1] - 1 > MAX_BITS:
        raise param_error("costs", func, f"at most {MAX_BITS - min_bits + 1} columns for min_bits={min_bits}",
                          f"array of shape {costs.shape}")
    total, bits, weight = _budget_setup(costs, total, budget, min_bits, func)
    if method == "auto":
        method = "greedy" if (budget == "bits" and _is_convex(costs)) else "dp"
    if method == "greedy":
        k = _greedy(costs, weight, total)
    else:
        k = _dp(costs, weight, total)
    return _result_from_index(costs, k, bits, budget, total, method)


def greedy_allocation(costs: ArrayLike, total: int, *, budget: str = "bits", min_bits: int = 1) -> AllocationResult:
    """Greedy marginal-gain allocation (``optimal_allocation(method="greedy")``).

    Each step raises by one bit the channel with the largest gain per unit of budget
    (``costs[i, k] − costs[i, k+1]`` per bit, divided by ``2^M`` extra bins under a bins budget)
    that still fits. Exact for a bits budget when every row of ``costs`` is convex.

    >>> greedy_allocation(channel_costs(range(1, 9), alphas=[1.0, 4.0]), 8).bits
    array([3, 5])
    """
    return optimal_allocation(costs, total, budget=budget, min_bits=min_bits, method="greedy")


def brute_force_allocation(costs: ArrayLike, total: int, *, budget: str = "bits", min_bits: int = 1) -> AllocationResult:
    """Exhaustive search over all allocations (small cases only: at most 2·10⁶ of them).

    >>> brute_force_allocation(channel_costs(range(1, 9), alphas=[1.0, 4.0]), 8).bits
    array([3, 5])
    """
    func = "brute_force_allocation"
    costs = _check_costs(costs, func)
    budget = check_option(budget, "budget", func, BUDGETS)
    min_bits = check_int(min_bits, "min_bits", func, 0, MAX_BITS)
    total, bits, weight = _budget_setup(costs, total, budget, min_bits, func)
    c, kk = costs.shape
    if kk**c > _BRUTE_LIMIT:
        raise param_error("costs", func, f"a small problem (K^C <= {_BRUTE_LIMIT})", f"array of shape {costs.shape}")
    grid = np.array(list(itertools.product(range(kk), repeat=c)), dtype=np.int64).reshape(-1, c)
    w = weight[grid].sum(axis=1)
    val = costs[np.arange(c)[None, :], grid].sum(axis=1)
    val = np.where(w <= total, val, np.inf)
    best = int(np.argmin(val))
    return _result_from_index(costs, grid[best], bits, budget, total, "brute_force")


def allocation_cost(costs: ArrayLike, bits: ArrayLike, *, min_bits: int = 1) -> float:
    """Mean over channels of ``costs[i, bits[i] − min_bits]``.

    >>> allocation_cost([[4.0, 1.0], [9.0, 2.0]], [2, 1])
    5.0
    """
    func = "allocation_cost"
    costs = _check_costs(costs, func)
    b = np.asarray(bits)
    if b.shape != (costs.shape[0],) or b.dtype.kind not in "iu":
        raise param_error("bits", func, f"a 1-D int array with one entry per channel ({costs.shape[0]})",
                          f"array of shape {b.shape} and dtype {b.dtype}")
    k = b - min_bits
    if np.any(k < 0) or np.any(k >= costs.shape[1]):
        raise param_error("bits", func, f"ints in [{min_bits}, {min_bits + costs.shape[1] - 1}]", b.tolist())
    return float(costs[np.arange(costs.shape[0]), k].mean())


def _is_convex(costs) -> bool:
    g = -np.diff(costs, axis=1)
    if g.shape[1] < 2:
        return True
    return bool(np.all(np.diff(g, axis=1) <= 1e-12 * np.maximum(1.0, np.abs(g[:, 1:]))))


def _greedy(costs, weight, total):
    c, kk = costs.shape
    k = np.zeros(c, dtype=np.int64)
    left = total - c * int(weight[0])
    heap = []

    def push(i):
        if k[i] + 1 < kk:
            step = int(weight[k[i] + 1] - weight[k[i]])
            gain = costs[i, k[i]] - costs[i, k[i] + 1]
            heapq.heappush(heap, (-gain / step, i, step))

    for i in range(c):
        push(i)
    while heap:
        neg, i, step = heapq.heappop(heap)
        if -neg <= 0:
            break
        if step > left:
            continue  # this channel's next step no longer fits; others may
        k[i] += 1
        left -= step
        push(i)
    return k


def _dp(costs, weight, total):
    c, kk = costs.shape
    w = weight - weight[0]
    cap = int(total - c * weight[0])
    cap = min(cap, int(c * w[-1]))
    dp = np.zeros(cap + 1)
    choice = np.zeros((c, cap + 1), dtype=np.int8)
    for i in range(c):
        best = np.full(cap + 1, np.inf)
        arg = np.zeros(cap + 1, dtype=np.int8)
        for j in range(kk):
            wj = int(w[j])
            if wj > cap:
                break
            cand = np.full(cap + 1, np.inf)
            cand[wj:] = dp[: cap + 1 - wj] + costs[i, j]
            better = cand < best
            best[better] = cand[better]
            arg[better] = j
        dp = best
        choice[i] = arg
    k = np.zeros(c, dtype=np.int64)
    t = cap
    for i in range(c - 1, -1, -1):
        k[i] = choice[i, t]
        t -= int(w[k[i]])
    return k


def _result_from_index(costs, k, bits, budget, total, method):
    m = bits[k]
    ch = costs[np.arange(costs.shape[0]), k]
    return AllocationResult(m.astype(np.int64), method, budget, float(total), _used(m, budget),
                            float(ch.mean()), ch)


# ==================================================================================== one entry point
def allocate_bits(alphas: ArrayLike, mean_bits: float, *, method: str = "optimal", budget: str = "bits",
                  objective: str = "approx", priors: PriorLike | Sequence[PriorLike] | None = None, min_bits: int = 1, max_bits: int = 8,
                  grid: str = "midrise") -> AllocationResult:
    """Allocate bits to channels with any of the methods, scored by one objective.

    Parameters
    ----------
    alphas : array_like
        Per-channel clips (closed form, approx objective) or spreads (official method).
    mean_bits : float
        Nominal bit-width ``M̄``: budget ``C·M̄`` bits or ``C·2^M̄`` bins (floored to an integer
        for the exact method).
    method : {"uniform", "closed_form", "official", "optimal"}
    budget : {"bits", "bins"}
        Ignored by ``"official"`` (mean bit-width) and ``"uniform"``.
    objective, priors, grid
        The cost the result is scored with (and ``"optimal"`` minimises); see
        :func:`channel_costs`.
    min_bits, max_bits : int
        Range of bit-widths.

    Examples
    --------
    >>> a = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    >>> for m in ("uniform", "closed_form", "optimal"):
    ...     r = allocate_bits(a, 3, method=m)
    ...     print(m, r.bits, round(r.mse, 5))
    uniform [3 3 3 3 3] 0.0888
    closed_form [1 2 3 4 5] 0.02083
    optimal [1 2 3 4 5] 0.02083
    """
    func = "allocate_bits"
    method = check_option(method, "method", func, ALLOCATIONS)
    budget = check_option(budget, "budget", func, BUDGETS)
    objective = check_option(objective, "objective", func, OBJECTIVES)
    alphas = _check_spreads(alphas, "alphas", func)
    min_bits = check_int(min_bits, "min_bits", func, 0 if objective == "approx" else 1, MAX_BITS)
    max_bits = check_int(max_bits, "max_bits", func, max(min_bits, 1), MAX_BITS)
    mean_bits = _check_mean_bits(mean_bits, func, max_bits)
    bits = np.arange(min_bits, max_bits + 1)
    if objective == "exact" and priors is not None and len(priors) != alphas.size:
        raise param_error("priors", func, f"one prior per channel ({alphas.size})", f"{len(priors)} priors")
    if objective == "exact":
        costs = channel_costs(bits, alphas=None if priors is not None else alphas,
                              priors=priors if priors is not None else None, objective="exact", grid=grid)
    else:
        costs = channel_costs(bits, alphas=alphas)
    c = alphas.size
    if costs.shape[0] != c:
        raise param_error("priors", func, f"one prior per channel ({c})", f"{costs.shape[0]} priors")
    if method == "uniform":
        m = np.full(c, int(math.floor(mean_bits + 1e-9)), dtype=np.int64)
        res_bits, used_budget = m, "bits"
    elif method == "closed_form":
        r = closed_form_allocation(alphas, mean_bits, budget=budget, min_bits=min_bits, max_bits=max_bits)
        res_bits, used_budget = r.bits, budget
    elif method == "official":
        m = official_allocation(alphas, mean_bits).bits
        res_bits, used_budget = np.clip(m, min_bits, max_bits), "bits"
    else:
        total = int(math.floor((c * (2.0**mean_bits if budget == "bins" else mean_bits)) + 1e-9))
        return optimal_allocation(costs, total, budget=budget, min_bits=min_bits)
    target = c * (2.0**mean_bits if used_budget == "bins" else mean_bits)
    ch = costs[np.arange(c), res_bits - min_bits]
    return AllocationResult(res_bits, method, used_budget, float(target), _used(res_bits, used_budget),
                            float(ch.mean()), ch)


# ==================================================================================== two channels
def two_channel_mse(alphas: ArrayLike, p: ArrayLike, total_bins: float) -> np.ndarray | float:
    """Model MSE (sum over the two channels) when a share ``p`` of ``total_bins`` goes to channel 1.

    ``α_1²/(3·(pB)²) + α_2²/(3·((1−p)B)²)`` — the uniform-noise model with ``N = 2^M`` bins.

    >>> float(two_channel_mse([1.0, 1.0], 0.5, 32))   # 2 · 1/(3·16²)
    0.0026041666666666665
    """
    func = "two_channel_mse"
    a = _check_spreads(alphas, "alphas", func)
    if a.size != 2:
        raise param_error("alphas", func, "two clips", f"array of shape {a.shape}")
    total_bins = check_real(total_bins, "total_bins", func, 0.0, low_open=True)
    p = np.asarray(p, dtype=np.float64)
    if np.any((p <= 0) | (p >= 1)) or not np.all(np.isfinite(p)):
        raise param_error("p", func, "shares in the open interval (0, 1)", p.tolist() if p.ndim else float(p))
    return a[0] ** 2 / (3 * (p * total_bins) ** 2) + a[1] ** 2 / (3 * ((1 - p) * total_bins) ** 2)


def two_channel_optimum(alpha1: float, alpha2: float) -> float:
    """Model-optimal share of bins for channel 1: ``p* = r/(1+r)``, ``r = (α_1/α_2)^(2/3)``.

    >>> two_channel_optimum(2.0 ** 1.5, 1.0)
    0.6666666666666666
    """
    a1 = check_real(alpha1, "alpha1", "two_channel_optimum", 0.0, low_open=True)
    a2 = check_real(alpha2, "alpha2", "two_channel_optimum", 0.0, low_open=True)
    r = (a1 / a2) ** (2.0 / 3.0)
    return r / (1.0 + r)


def _bins_grid(alpha, n_bins):
    step = 2.0 * alpha / n_bins
    levels = -alpha + (np.arange(n_bins) + 0.5) * step
    thr = -alpha + np.arange(1, n_bins) * step
    return levels, thr, step


def bins_mse(prior: PriorLike, alpha: float, n_bins: int) -> float:
    """Exact MSE of a uniform quantizer with ``n_bins`` equal bins on ``[−α, α]`` (any integer
    number of bins, not only powers of two); values beyond ``±α`` are clipped to the outer levels.

    For a prior uniform on ``[−α, α]`` this equals the model ``α²/(3·n_bins²)`` exactly.

    >>> from scipy import stats
    >>> bins_mse(stats.uniform(-2, 4), 2.0, 5), 2.0**2 / (3 * 5**2)
    (0.05333333333333..., 0.05333333333333333)
    """
    from .priors import as_prior

    func = "bins_mse"
    p = as_prior(prior, func=func)
    alpha = check_real(alpha, "alpha", func, 0.0, low_open=True)
    n_bins = check_int(n_bins, "n_bins", func, 1, 2**MAX_BITS)
    levels, thr, _ = _bins_grid(alpha, n_bins)
    a = np.concatenate([[-np.inf], thr])
    b = np.concatenate([thr, [np.inf]])
    return float(np.sum(p.interval_sq_error(a, b, levels)))


def simulate_bins_mse(prior: PriorLike, alpha: float, n_bins: int, n_samples: int = 100_000,
                      rng: RNGLike = None) -> tuple[float, float]:
    """Monte-Carlo MSE of the ``n_bins`` quantizer of :func:`bins_mse`: ``(mse, stderr)``.

    >>> m, se = simulate_bins_mse("gaussian", 3.0, 8, 200_000, rng=0)
    >>> abs(m - bins_mse("gaussian", 3.0, 8)) < 5 * se
    True
    """
    from .priors import as_prior

    func = "simulate_bins_mse"
    p = as_prior(prior, func=func)
    alpha = check_real(alpha, "alpha", func, 0.0, low_open=True)
    n_bins = check_int(n_bins, "n_bins", func, 1, 2**MAX_BITS)
    n_samples = check_int(n_samples, "n_samples", func, 2)
    x = np.asarray(p.rvs(n_samples, np.random.default_rng(rng)), dtype=np.float64)
    step = 2.0 * alpha / n_bins
    k = np.clip(np.floor((x + alpha) / step), 0, n_bins - 1)
    e2 = (x - (-alpha + (k + 0.5) * step)) ** 2
    return float(e2.mean()), float(e2.std(ddof=1) / math.sqrt(n_samples))


# ==================================================================================== bias correction
def _as_channels(w, name, func):
    arr = check_samples(w, name, func, ndim=None)
    if arr.ndim < 2:
        raise param_error(name, func, "an array with an output-channel axis 0 and >= 2 dimensions",
                          f"array of shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def correction_terms(w: ArrayLike, w_q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel terms of eq. 12: ``μ_c = E[W_c] − E[W_q,c]`` and
    ``ξ_c = ‖W_c − E W_c‖₂ / ‖W_q,c − E W_q,c‖₂`` (``ξ_c = 1`` where the quantized channel is
    constant).

    >>> mu, xi = correction_terms([[1.0, 3.0]], [[1.0, 2.0]])
    >>> mu, xi
    (array([0.5]), array([2.]))
    """
    func = "correction_terms"
    a = _as_channels(w, "w", func)
    b = _as_channels(w_q, "w_q", func)
    if np.shape(w) != np.shape(w_q):
        raise param_error("w_q", func, f"an array of the same shape as 'w' {np.shape(w)}",
                          f"array of shape {np.shape(w_q)}")
    mu = a.mean(axis=1) - b.mean(axis=1)
    # the norms' ratio in units of a power of two near the channels' size (exact scaling): squared in
    # the weights' own units they underflow or overflow from ~1e∓155 (ξ became 1 or NaN)
    top = float(max(np.max(np.abs(a)), np.max(np.abs(b)))) if a.size else 0.0
    e = -math.frexp(top)[1] if top > 0.0 and math.isfinite(top) else 0
    na = np.linalg.norm(np.ldexp(a - a.mean(axis=1, keepdims=True), e), axis=1)
    nb = np.linalg.norm(np.ldexp(b - b.mean(axis=1, keepdims=True), e), axis=1)
    xi = np.divide(na, nb, out=np.ones_like(na), where=nb > 0)
    return mu, xi


def bias_correct(w: ArrayLike, w_q: ArrayLike, mode: str = "mean") -> np.ndarray:
    """Correct quantized weights per output channel (axis 0).

    Parameters
    ----------
    w : array_like
        Float weights, output channels on axis 0 (``(C_out, C_in, k, k)`` or ``(C_out, n)``).
    w_q : array_like
        Their quantized version, same shape.
    mode : {"mean", "variance", "both", "paper", "none"}
        See the module docstring. Where a quantized channel is constant its norm cannot be
        restored and the variance factor is 1 (the official code divides by ``σ_q + 1e-8``).

    Returns
    -------
    ndarray
        Corrected weights, shape of ``w``.

    Examples
    --------
    >>> w = np.array([[0.9, 0.2, -0.4, 0.1]])
    >>> wq = np.array([[1.0, 0.0, -0.5, 0.0]])
    >>> round(float(bias_correct(w, wq, "mean").mean()), 12), float(w.mean())
    (0.2, 0.2)
    >>> v = bias_correct(w, wq, "both")
    >>> bool(np.isclose(v.std(), w.std()) and np.isclose(v.mean(), w.mean()))
    True
    """
    func = "bias_correct"
    mode = check_option(mode, "mode", func, CORRECTIONS)
    a = _as_channels(w, "w", func)
    b = _as_channels(w_q, "w_q", func)
    if np.shape(w) != np.shape(w_q):
        raise param_error("w_q", func, f"an array of the same shape as 'w' {np.shape(w)}",
                          f"array of shape {np.shape(w_q)}")
    shape = np.shape(w)
    if mode == "none":
        return b.reshape(shape).copy()
    mu_w = a.mean(axis=1, keepdims=True)
    mu_q = b.mean(axis=1, keepdims=True)
    if mode == "mean":
        out = b - mu_q + mu_w
    else:
        _, xi = correction_terms(a, b)
        xi = xi[:, None]
        if mode == "variance":
            out = (b - mu_q) * xi + mu_q
        elif mode == "both":
            out = (b - mu_q) * xi + mu_w
        else:  # paper eq. 12-13
            out = xi * (b + (mu_w - mu_q))
    return out.reshape(shape)


# ==================================================================================== output effect
@dataclass(frozen=True)
class ErrorMoments:
    """Moments of the per-value quantization error ``e = x − Q(x)`` under a prior."""

    mean: float
    mse: float

    @property
    def var(self) -> float:
        return max(self.mse - self.mean**2, 0.0)


def error_moments(prior: PriorLike, bits: int, alpha: float, *, grid: str = "midrise") -> ErrorMoments:
    """Exact ``E[X − Q(X)]`` and ``E[(X − Q(X))²]`` for ``X ~ prior`` (per-bin integration).

    >>> from qtheory import Laplace
    >>> em = error_moments(Laplace(1.0, loc=0.3), 4, 5.03)
    >>> round(em.mean, 5), round(em.mse, 5)
    (0.00245, 0.05099)
    >>> round(error_moments("laplace", 4, 5.03).mean, 12)    # symmetric prior and grid
    0.0
    """
    from .priors import as_prior

    func = "error_moments"
    p = as_prior(prior, func=func)
    q = Quantizer(bits, alpha, grid)
    y = q.levels
    t = q.thresholds
    a = np.concatenate([[-np.inf], t])
    b = np.concatenate([t, [np.inf]])
    m0, m1, _ = p.partial_moments(a, b)
    mean = float(np.sum(m1 - y * m0))
    mse = float(np.sum(p.interval_sq_error(a, b, y)))
    return ErrorMoments(mean, mse)


@dataclass(frozen=True)
class OutputError:
    """Expected output error of one output channel of ``y = W x`` (per :func:`expected_output_error`).

    ``shift2_*`` is ``E_W[(E_x[y − y_q])²]`` (the squared output bias, averaged over weight draws);
    ``mse_*`` is ``E_{W,x}[(y − y_q)²]``.
    """

    shift2_none: float
    mse_none: float
    shift2_mean: float
    mse_mean: float
    error: ErrorMoments


def expected_output_error(prior: PriorLike, bits: int, alpha: float, n_inputs: int, x_mean: float, x_std: float, *,
                          grid: str = "midrise") -> OutputError:
    """Analytic output error of a linear layer's output channel, without and with mean correction.

    The channel has ``n_inputs`` weights drawn i.i.d. from ``prior`` and quantized with
    ``Quantizer(bits, alpha, grid)``; the inputs are independent with mean ``x_mean`` and standard
    deviation ``x_std``, independent of the weights. With ``e = w − Q(w)``::

        none:  shift² = m²·(n·V e + n²·(E e)²)     mse = n·s²·E[e²] + shift²
        mean:  shift² = 0                          mse = (n − 1)·s²·V e

    Examples
    --------
    >>> from qtheory import Laplace
    >>> r = expected_output_error(Laplace(1.0, loc=0.5), 3, 3.9, 576, 0.4, 0.58)
    >>> round(r.mse_none / r.mse_mean, 2)
    2.01
    """
    func = "expected_output_error"
    n = check_int(n_inputs, "n_inputs", func, 1)
    m = check_real(x_mean, "x_mean", func)
    s = check_real(x_std, "x_std", func, 0.0)
    em = error_moments(prior, bits, alpha, grid=grid)
    shift2 = m * m * (n * em.var + n * n * em.mean**2)
    return OutputError(shift2, n * s * s * em.mse + shift2, 0.0, (n - 1) * s * s * em.var, em)


def linear_output_error(w: ArrayLike, w_q: ArrayLike, x_mean: ArrayLike,
                        x_var: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Output shift and MSE per output channel of ``y = W x`` for independent inputs.

    ``shift_c = Σ_i (W − W_q)_ci·m_i`` and ``mse_c = shift_c² + Σ_i (W − W_q)_ci²·v_i`` for inputs
    with means ``m_i`` and variances ``v_i`` (scalars broadcast). Returns ``(shift, mse)``.

    >>> shift, mse = linear_output_error([[1.0, 2.0]], [[0.5, 2.5]], 1.0, 1.0)
    >>> shift, mse
    (array([0.]), array([0.5]))
    """
    func = "linear_output_error"
    a = _as_channels(w, "w", func)
    b = _as_channels(w_q, "w_q", func)
    if np.shape(w) != np.shape(w_q):
        raise param_error("w_q", func, f"an array of the same shape as 'w' {np.shape(w)}",
                          f"array of shape {np.shape(w_q)}")
    n = a.shape[1]
    m = _input_moment(x_mean, n, "x_mean", func)
    v = _input_moment(x_var, n, "x_var", func)
    if np.any(v < 0):
        raise param_error("x_var", func, "non-negative variances", "negative values")
    e = a - b
    shift = e @ m
    return shift, shift**2 + (e**2) @ v


def _input_moment(x, n, name, func):
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = check_samples(arr, name, func)
    if arr.size != n:
        raise param_error(name, func, f"a scalar or an array with one entry per input ({n})",
                          f"array of shape {arr.shape}")
    return arr


def simulate_output_error(w: ArrayLike, w_q: ArrayLike,
                          x_samples: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte-Carlo output error: per output channel, ``(mean shift, mse, stderr of mse)`` of
    ``(W − W_q) x`` over the rows of ``x_samples`` (shape ``(N, n_inputs)``).

    >>> rng = np.random.default_rng(0)
    >>> w = rng.normal(size=(2, 50)); wq = np.round(w * 2) / 2
    >>> x = rng.normal(0.4, 0.6, size=(20000, 50))
    >>> _, mse, se = simulate_output_error(w, wq, x)
    >>> bool(np.all(np.abs(mse - linear_output_error(w, wq, 0.4, 0.36)[1]) < 5 * se))
    True
    """
    func = "simulate_output_error"
    a = _as_channels(w, "w", func)
    b = _as_channels(w_q, "w_q", func)
    if np.shape(w) != np.shape(w_q):
        raise param_error("w_q", func, f"an array of the same shape as 'w' {np.shape(w)}",
                          f"array of shape {np.shape(w_q)}")
    x = check_samples(x_samples, "x_samples", func, ndim=2, min_size=2)
    if x.shape[1] != a.shape[1] or x.shape[0] < 2:
        raise param_error("x_samples", func, f"an array of shape (N >= 2, {a.shape[1]})", f"array of shape {x.shape}")
    d = x @ (a - b).T
    d2 = d**2
    return d.mean(axis=0), d2.mean(axis=0), d2.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


# ==================================================================================== weight tensors
@dataclass(frozen=True)
class ChannelQuantization:
    """A weight tensor quantized per tensor or per channel.

    Attributes
    ----------
    w_q : ndarray
        Quantized (and corrected) weights, shape of the input.
    bits : ndarray
        Bits per output channel.
    alpha : ndarray
        Clip per output channel (the same value repeated for per-tensor quantization).
    channel_mse : ndarray
        Mean squared weight error per output channel.
    mse : float
        Mean squared error over the whole tensor.
    """

    w_q: np.ndarray = field(repr=False)
    bits: np.ndarray
    alpha: np.ndarray = field(repr=False)
    channel_mse: np.ndarray = field(repr=False)
    mse: float


def _clip_for(x, bits, clip, grid):
    """One clip of samples ``x`` by rule ``clip`` (``"optimal"``: the proven exact empirical optimum)."""
    if clip == "max":  # (an all-zero tensor: the smallest positive clip, which maps it to 0)
        return max(float(np.max(np.abs(x))), np.finfo(float).tiny)
    if clip == "optimal":  # (one tensor: the parallel proof of qtheory.empirical)
        from .optimal import optimal_clip

        return max(float(optimal_clip(x, bits, grid=grid).alpha), np.finfo(float).tiny) if np.any(x) else \
            np.finfo(float).tiny
    spread = float(np.mean(np.abs(x - np.mean(x)))) if clip == "laplace" else float(np.std(x))
    return max(_aciq_ratio(clip, bits) * spread, np.finfo(float).tiny)


@functools.lru_cache(maxsize=64)
def _aciq_ratio(family: str, bits: int) -> float:
    """ACIQ's optimal clip of the unit Laplace (``b = 1``) or Gaussian (``σ = 1``) prior on its
    model, the midrise grid (one solve per family and bit-width, not one per channel)."""
    from .optimal import optimal_clip
    from .priors import Gaussian, Laplace

    base = Laplace(1.0) if family == "laplace" else Gaussian(1.0)
    return optimal_clip(base, bits, grid="midrise", method="aciq").alpha


def _optimal_clips(rows, bits, grid):
    """Exact empirical MSE-optimal clip of every row (one parallel pass,
    :func:`qtheory.empirical.per_channel_optimal_clip`); a row no clip reaches (all zero) gets the
    smallest positive clip, whose quantizer maps it to 0 like any other."""
    from .empirical import per_channel_optimal_clip

    a = per_channel_optimal_clip(rows, bits, axis=0, grid=grid).alpha
    return np.maximum(a, np.finfo(float).tiny)


def _quantize_rows(rows, bits, alphas, grid):
    """Row ``i`` quantized by ``Quantizer(bits[i], alphas[i], grid)`` (0 where ``bits[i] == 0``),
    with the same operations as :meth:`Quantizer.quantize`, vectorised over the rows."""
    from .quantizer import _grid_params

    bits = np.asarray(bits)
    params = np.array([_grid_params(grid, int(max(m, MIN_BITS[grid])), float(a), None)
                       for m, a in zip(bits, alphas, strict=True)], dtype=np.float64).reshape(-1, 4)
    s, c, n, p = (params[:, j, None] for j in range(4))
    with np.errstate(over="ignore", invalid="ignore"):
        u = rows / s - c
    out = (np.clip(np.rint(u), n, p) + c) * s
    out[bits == 0] = 0.0
    return out


def quantize_channels(w: ArrayLike, mean_bits: int, *, granularity: str = "channel", clip: str = "laplace",
                      allocation: str = "uniform", budget: str = "bits", correction: str = "none",
                      grid: str = "midrise", min_bits: int = 1, max_bits: int = 8,
                      _memo: dict | None = None) -> ChannelQuantization:
    """Quantize a weight tensor per tensor or per output channel, with allocation and correction.

    Parameters
    ----------
    w : array_like
        Weights with output channels on axis 0.
    mean_bits : int
        Bit-width (per-tensor / uniform) or nominal mean bit-width (allocation).
    granularity : {"channel", "tensor"}
        One clip for the whole tensor, or one clip per output channel.
    clip : {"max", "laplace", "gaussian", "optimal"}
        ``max|w|``; ACIQ's clip for a Laplace (``b = mean|w − mean w|``) or Gaussian (std) fit;
        or the exact empirical MSE-optimal clip — per channel (or tensor) and per bit-width.
    allocation : {"uniform", "closed_form", "official", "optimal"}
        Per-channel bit-widths (``granularity="channel"`` only): ``closed_form`` uses the clips at
        ``mean_bits`` as ``α_i`` under ``budget``; ``official`` uses per-channel std (unbiased);
        ``optimal`` is the exact integer optimum of the channels' exact empirical MSE (with the
        chosen clip rule at each bit-width) under ``budget``.
    budget : {"bits", "bins"}
    correction : {"none", "mean", "variance", "both", "paper"}
        Bias correction after quantization (:func:`bias_correct`).
    grid : str
        Quantizer grid (default the ACIQ midrise grid).
    min_bits, max_bits : int
        Range of per-channel bit-widths (0-bit channels, possible only with ``"official"``
        clamped by ``min_bits=0``, are set to 0; on the narrow grid, which has no 1-bit form,
        ``"official"`` gives a 1-bit channel 2 bits, and ``bits`` says so).

    Examples
    --------
    >>> w = synthetic_conv_weights(16, 8, rng=0)
    >>> t = quantize_channels(w, 4, granularity="tensor", clip="max")
    >>> c = quantize_channels(w, 4, clip="optimal", allocation="optimal", correction="mean")
    >>> bool(c.mse < t.mse), float(c.bits.mean())
    (True, 4.0)
    """
    func = "quantize_channels"
    granularity = check_option(granularity, "granularity", func, ("channel", "tensor"))
    clip = check_option(clip, "clip", func, CLIPS)
    allocation = check_option(allocation, "allocation", func, ALLOCATIONS)
    budget = check_option(budget, "budget", func, BUDGETS)
    correction = check_option(correction, "correction", func, CORRECTIONS)
    grid = check_option(grid, "grid", func, ("midrise", "int", "narrow"))
    min_bits = check_int(min_bits, "min_bits", func, 0, MAX_BITS)
    max_bits = check_int(max_bits, "max_bits", func, max(1, min_bits, MIN_BITS[grid]), MAX_BITS)
    mean_bits = check_int(mean_bits, "mean_bits", func, max(1, MIN_BITS[grid]), max_bits)
    arr = check_samples(w, "w", func, ndim=None)
    rows = _as_channels(arr, "w", func)
    c = rows.shape[0]
    memo: dict = {} if _memo is None else _memo  # weight_report shares clips between configurations

    def clip_of(i, m):
        key = (i, m, clip, grid)
        if key not in memo:
            if clip == "optimal":  # every channel at once: one parallel pass of the exact per-channel optimum
                memo.update({(j, m, clip, grid): float(a) for j, a in enumerate(_optimal_clips(rows, m, grid))})
            else:
                memo[key] = _clip_for(rows[i], m, clip, grid)
        return memo[key]

    if granularity == "tensor":
        if allocation != "uniform":
            raise param_error("allocation", func, "'uniform' when granularity='tensor'", allocation)
        a = _clip_for(rows.ravel(), mean_bits, clip, grid)
        bits = np.full(c, mean_bits, dtype=np.int64)
        alphas = np.full(c, a)
    else:
        if allocation == "uniform":
            bits = np.full(c, mean_bits, dtype=np.int64)
        elif allocation == "closed_form":
            a0 = np.array([clip_of(i, mean_bits) for i in range(c)])
            bits = closed_form_allocation(a0, mean_bits, budget=budget, min_bits=max(min_bits, MIN_BITS[grid]),
                                          max_bits=max_bits).bits
        elif allocation == "official":
            bits = np.clip(official_allocation(rows.std(axis=1, ddof=1), mean_bits).bits, min_bits, max_bits)
            # (a grid without a 1-bit form, narrow: a channel given fewer bits than the grid has takes
            # the grid's fewest; 0 stays 0)
            bits = np.where(bits > 0, np.maximum(bits, MIN_BITS[grid]), 0)
        else:
            lo = max(min_bits, MIN_BITS[grid])
            bit_range = np.arange(lo, max_bits + 1)
            costs = np.empty((c, bit_range.size))
            for k, m in enumerate(bit_range):
                a = [clip_of(i, int(m)) for i in range(c)]
                costs[:, k] = np.mean((rows - _quantize_rows(rows, np.full(c, m), a, grid)) ** 2, axis=1)
            total = c * (2**mean_bits if budget == "bins" else mean_bits)
            bits = optimal_allocation(costs, total, budget=budget, min_bits=lo).bits
        # (a 0-bit channel is set to 0; its clip is the one at the grid's fewest bits)
        alphas = np.array([clip_of(i, int(max(m, MIN_BITS[grid]))) for i, m in enumerate(bits)])
    q = _quantize_rows(rows, bits, alphas, grid)
    q = bias_correct(rows, q, correction)
    ch = np.mean((rows - q) ** 2, axis=1)
    return ChannelQuantization(q.reshape(arr.shape), bits, alphas, ch, float(ch.mean()))


def weight_report(w: ArrayLike, mean_bits: int, configs: dict | None = None, *, x_mean: float | None = None,
                  x_var: float | None = None, grid: str | None = None,
                  progress: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare quantization configurations on one weight tensor.

    Parameters
    ----------
    w : array_like
        Weights, output channels on axis 0.
    mean_bits : int
    configs : dict, optional
        ``{name: keyword arguments of quantize_channels}``; the default compares per-tensor
        max / ACIQ clipping with per-channel ACIQ, per-channel exact-optimal clipping, allocation
        and bias correction.
    x_mean, x_var : float, optional
        Input moments; when given, the analytic layer output MSE (:func:`linear_output_error`)
        is reported too.
    grid : str, optional
        Quantizer grid for every configuration that does not set its own.
    progress : bool or None
        A tqdm bar over the configurations (``None``: only after 2 s, in a terminal or notebook;
        ``True``: always; ``False``: never).

    Returns
    -------
    summary : pandas.DataFrame
        One row per configuration: weight MSE, worst channel, mean bits, ``|mean shift|`` (a channel's
        shift within ``64·eps·max|w|``, the rounding of the two means, counts as 0), output MSE.
    channels : pandas.DataFrame
        Per configuration and channel: bits, clip, MSE.

    Examples
    --------
    >>> s, ch = weight_report(synthetic_conv_weights(8, 4, rng=1), 4,
    ...                       {"tensor max": dict(granularity="tensor", clip="max"),
    ...                        "channel max": dict(clip="max")})
    >>> list(s["config"]), bool(s["weight_mse"].iloc[1] < s["weight_mse"].iloc[0])
    (['tensor max', 'channel max'], True)
    """
    import pandas as pd

    func = "weight_report"
    arr = check_samples(w, "w", func, ndim=None)
    rows = _as_channels(arr, "w", func)
    progress = check_progress(progress, func)
    if configs is None:
        configs = default_configs()
    if not isinstance(configs, dict) or not configs:
        raise param_error("configs", func, "a non-empty dict of {name: quantize_channels kwargs}",
                          type(configs).__name__, TypeError)
    summary, chans = [], []
    memo: dict = {}
    for name, kw in progress_bar(list(configs.items()), progress, func):
        if grid is not None and "grid" not in kw:
            kw = {**kw, "grid": grid}
        r = quantize_channels(arr, mean_bits, **kw, _memo=memo)
        qrows = r.w_q.reshape(rows.shape)
        shift = np.abs(rows.mean(axis=1) - qrows.mean(axis=1))
        # a shift within the rounding error of the two means (e.g. after mean correction) is 0: its
        # digits would only show the CPU's summation order
        tol = 64.0 * np.finfo(np.float64).eps * np.maximum(np.abs(rows).max(axis=1), np.abs(qrows).max(axis=1))
        shift = np.where(shift <= tol, 0.0, shift)
        row = {"config": name, "weight_mse": r.mse, "worst_channel_mse": float(r.channel_mse.max()),
               "mean_bits": float(r.bits.mean()), "mean_abs_shift": float(shift.mean())}
        if x_mean is not None and x_var is not None:
            row["output_mse"] = float(linear_output_error(rows, qrows, x_mean, x_var)[1].mean())
        summary.append(row)
        chans.append(pd.DataFrame({"config": name, "channel": np.arange(rows.shape[0]), "bits": r.bits,
                                   "alpha": r.alpha, "std": rows.std(axis=1), "mse": r.channel_mse}))
    return pd.DataFrame(summary), pd.concat(chans, ignore_index=True)


def default_configs() -> dict:
    """The configurations of :func:`weight_report` (naive → all of the paper's methods)."""
    return {
        "per-tensor, max clip": dict(granularity="tensor", clip="max"),
        "per-tensor, ACIQ (Laplace)": dict(granularity="tensor", clip="laplace"),
        "per-channel, ACIQ (Laplace)": dict(clip="laplace"),
        "per-channel, ACIQ + closed-form alloc (bins)": dict(clip="laplace", allocation="closed_form", budget="bins"),
        "per-channel, ACIQ + official alloc": dict(clip="laplace", allocation="official"),
        "per-channel, ACIQ + alloc + mean corr": dict(clip="laplace", allocation="closed_form", budget="bins",
                                                      correction="mean"),
        "per-channel, optimal clip": dict(clip="optimal"),
        "per-channel, optimal clip + exact alloc (bits)": dict(clip="optimal", allocation="optimal"),
        "per-channel, optimal clip + exact alloc + mean corr": dict(clip="optimal", allocation="optimal",
                                                                    correction="mean"),
    }


def synthetic_conv_weights(out_channels: int = 64, in_channels: int = 64, kernel: int = 3, *,
                           median_std: float = 0.02, log_sd: float = 0.5, mean_ratio: float = 0.2,
                           rng: RNGLike = None) -> np.ndarray:
    """A conv weight tensor ``(out, in, k, k)`` with per-output-channel statistics of a trained layer.

    Generated, not downloaded. Channel ``c`` has standard deviation ``σ_c`` log-normal with median
    ``median_std`` and log-standard-deviation ``log_sd`` (so the 5–95 % range of channel spreads
    spans a factor ``e^(3.29·log_sd)`` ≈ 5 for the default, the order of the per-channel range
    spread visible in trained ResNet convolutions), a mean ``μ_c ~ N(0, (mean_ratio·σ_c)²)`` and
    Laplace-distributed values within the channel (the heavy-tailed shape ACIQ assumes). These
    statistics are assumptions chosen to resemble trained CNN layers, not measured from a
    particular checkpoint.

    >>> w = synthetic_conv_weights(4, 2, rng=0)
    >>> w.shape
    (4, 2, 3, 3)
    """
    func = "synthetic_conv_weights"
    out_channels = check_int(out_channels, "out_channels", func, 1)
    in_channels = check_int(in_channels, "in_channels", func, 1)
    kernel = check_int(kernel, "kernel", func, 1)
    median_std = check_real(median_std, "median_std", func, 0.0, low_open=True)
    log_sd = check_real(log_sd, "log_sd", func, 0.0)
    mean_ratio = check_real(mean_ratio, "mean_ratio", func, 0.0)
    g = np.random.default_rng(rng)
    sigma = median_std * np.exp(log_sd * g.standard_normal(out_channels))
    mu = mean_ratio * sigma * g.standard_normal(out_channels)
    n = in_channels * kernel * kernel
    x = g.laplace(0.0, 1.0 / math.sqrt(2.0), size=(out_channels, n))  # unit variance
    return (mu[:, None] + sigma[:, None] * x).reshape(out_channels, in_channels, kernel, kernel)


# ==================================================================================== experiments
@dataclass(frozen=True)
class TwoChannelExperiment:
    """Two channels sharing ``total_bins`` bins (see :func:`two_channel_experiment`)."""

    spreads: tuple
    alphas: tuple
    total_bins: int
    prior: str
    p_curve: np.ndarray = field(repr=False)
    model_curve: np.ndarray = field(repr=False)
    p_points: np.ndarray = field(repr=False)
    exact_points: np.ndarray = field(repr=False)
    mc_points: np.ndarray = field(repr=False)
    mc_stderr: np.ndarray = field(repr=False)
    p_star: float = 0.5

    @property
    def p_best_exact(self) -> float:
        """Share of bins (among the integer splits) with the lowest exact MSE."""
        return float(self.p_points[np.argmin(self.exact_points)])


def _scaled_prior(prior: str, s: float):
    from .priors import Gaussian, Laplace, ScipyPrior

    if prior == "uniform":
        from scipy import stats

        return ScipyPrior(stats.uniform(-s, 2 * s))
    return Gaussian(s) if prior == "gaussian" else Laplace(s)


def two_channel_experiment(spreads: ArrayLike, total_bins: int = 32, *, prior: str = "uniform",
                           clip_ratio: float = 1.0, ks: ArrayLike | None = None, n_samples: int = 20_000,
                           rng: RNGLike = None, progress: bool | None = None) -> TwoChannelExperiment:
    """Total MSE of two channels vs the share ``p`` of bins given to channel 1: model, exact and MC.

    Channel ``i`` has values ``spreads[i]·X`` (``X`` uniform on [−1, 1], standard Gaussian or unit
    Laplace) and clip ``α_i = clip_ratio·spreads[i]``; channel 1 gets ``k`` of the ``total_bins``
    equal bins, channel 2 the rest. The model curve is :func:`two_channel_mse` (continuous ``p``),
    the exact points :func:`bins_mse` and the Monte-Carlo points :func:`simulate_bins_mse` at
    ``p = k/total_bins``; ``p_star`` is the model optimum ``r/(1+r)``. ``progress``: a tqdm bar
    over the splits ``k`` (``None``: only after 2 s, in a terminal or notebook; ``True``: always;
    ``False``: never).

    Examples
    --------
    >>> e = two_channel_experiment((2.0 ** 1.5, 1.0), 32, n_samples=2000, rng=0)
    >>> round(e.p_star, 4), e.p_best_exact
    (0.6667, 0.65625)
    """
    func = "two_channel_experiment"
    sp = _check_spreads(spreads, "spreads", func)
    if sp.size != 2:
        raise param_error("spreads", func, "two spreads", f"array of shape {sp.shape}")
    total_bins = check_int(total_bins, "total_bins", func, 2)
    prior = check_option(prior, "prior", func, ("uniform", "gaussian", "laplace"))
    clip_ratio = check_real(clip_ratio, "clip_ratio", func, 0.0, low_open=True)
    n_samples = check_int(n_samples, "n_samples", func, 2)
    progress = check_progress(progress, func)
    g = np.random.default_rng(rng)
    ks = np.arange(max(1, round(0.15 * total_bins)), min(total_bins - 1, round(0.85 * total_bins)) + 1) \
        if ks is None else np.asarray(ks, dtype=np.int64)
    if ks.ndim != 1 or ks.size == 0 or np.any(ks < 1) or np.any(ks >= total_bins):
        raise param_error("ks", func, f"ints in [1, {total_bins - 1}]", ks.tolist())
    alphas = clip_ratio * sp
    pr = [_scaled_prior(prior, float(s)) for s in sp]
    p_curve = np.linspace(ks.min() / total_bins, ks.max() / total_bins, 200)
    model = two_channel_mse(alphas, p_curve, total_bins)
    exact, mc, se = [], [], []
    for k in progress_bar(ks, progress, func):
        exact.append(bins_mse(pr[0], alphas[0], int(k)) + bins_mse(pr[1], alphas[1], int(total_bins - k)))
        m1, s1 = simulate_bins_mse(pr[0], alphas[0], int(k), n_samples, g)
        m2, s2 = simulate_bins_mse(pr[1], alphas[1], int(total_bins - k), n_samples, g)
        mc.append(m1 + m2)
        se.append(math.hypot(s1, s2))
    return TwoChannelExperiment(tuple(sp.tolist()), tuple(alphas.tolist()), total_bins, prior, p_curve, model,
                                ks / total_bins, np.array(exact), np.array(mc), np.array(se),
                                two_channel_optimum(alphas[0], alphas[1]))


def allocation_experiment(scales: ArrayLike, mean_bits: Iterable[float] = (2, 3, 4, 5, 6), *,
                          prior: str = "laplace",
                          methods: Sequence[str] = ("uniform", "closed_form_bins", "closed_form_bits",
                                                    "official", "optimal"),
                          n_samples: int = 2000, min_bits: int = 1, max_bits: int = 8, grid: str = "midrise",
                          rng: RNGLike = None, progress: bool | None = None) -> pd.DataFrame:
    """MSE vs average bit-width of several allocations for channels ``scales[i]·X``.

    Every channel is quantized at its exact MSE-optimal clip for the bit-width it is given; the
    exact MSE (``"mse"``, mean over channels) comes from :func:`channel_costs` and a Monte-Carlo
    estimate (``"mc_mse"`` ± ``"mc_stderr"``) from ``n_samples`` values per channel. Methods:
    ``uniform``; ``closed_form_bins`` (paper, ``α_i ∝ scales``); ``closed_form_bits``
    (``2^M ∝ α``); ``official`` (iterated, spreads ``∝ scales``); ``optimal`` (exact integer
    optimum of the exact MSE under the bits budget). Rounded allocations are clamped to
    ``[min_bits, max_bits]``, so their average bit-width can differ from the target. ``progress``:
    a tqdm bar over the (target, method) cells (``None``: only after 2 s, in a terminal or
    notebook; ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame
        Columns ``method, target_bits, mean_bits, mse, mc_mse, mc_stderr``.

    Examples
    --------
    >>> df = allocation_experiment(np.exp(np.linspace(-1, 1, 8)), (3,), n_samples=500, rng=0)
    >>> df[["method", "mean_bits"]].values.tolist()[:2]
    [['uniform', 3.0], ['closed_form_bins', 2.875]]
    >>> bool(df.set_index("method").loc["optimal", "mse"] <= df["mse"].min())
    True
    """
    import pandas as pd

    from .optimal import optimal_clip
    from .priors import as_prior

    func = "allocation_experiment"
    s = _check_spreads(scales, "scales", func)
    prior = check_option(prior, "prior", func, ("laplace", "gaussian"))
    known = ("uniform", "closed_form_bins", "closed_form_bits", "official", "optimal")
    for m in methods:
        check_option(m, "methods", func, known)
    min_bits = check_int(min_bits, "min_bits", func, MIN_BITS[grid], MAX_BITS)
    max_bits = check_int(max_bits, "max_bits", func, min_bits, MAX_BITS)
    n_samples = check_int(n_samples, "n_samples", func, 2)
    progress = check_progress(progress, func)
    mean_bits = [_check_mean_bits(mb, func, max_bits) for mb in mean_bits]
    g = np.random.default_rng(rng)
    unit = as_prior(prior)
    bits = np.arange(min_bits, max_bits + 1)
    unit_clip = {int(m): optimal_clip(unit, int(m), grid=grid, progress=False).alpha for m in bits}
    costs = channel_costs(bits, priors=unit, scales=s, objective="exact", grid=grid)
    c = s.size
    rows = []
    for mb, meth in progress_bar([(mb, meth) for mb in mean_bits for meth in methods], progress, func):
        if meth == "uniform":
            b = np.full(c, int(mb), dtype=np.int64)
        elif meth == "closed_form_bins":
            b = closed_form_allocation(s, mb, budget="bins", min_bits=min_bits, max_bits=max_bits).bits
        elif meth == "closed_form_bits":
            b = closed_form_allocation(s, mb, budget="bits", min_bits=min_bits, max_bits=max_bits).bits
        elif meth == "official":
            b = np.clip(official_allocation(s, mb).bits, min_bits, max_bits)
        else:
            b = optimal_allocation(costs, int(math.floor(c * mb + 1e-9)), min_bits=min_bits).bits
        mse = allocation_cost(costs, b, min_bits=min_bits)
        x = unit.rvs((c, n_samples), g) * s[:, None]
        e2 = np.empty_like(x)
        for i in range(c):
            e2[i] = (x[i] - Quantizer(int(b[i]), s[i] * unit_clip[int(b[i])], grid).quantize(x[i])) ** 2
        per = e2.mean(axis=1)
        se = math.sqrt(np.sum(e2.var(axis=1, ddof=1) / n_samples)) / c
        rows.append({"method": meth, "target_bits": mb, "mean_bits": float(b.mean()), "mse": mse,
                     "mc_mse": float(per.mean()), "mc_stderr": se})
    return pd.DataFrame(rows)


def bias_correction_experiment(bits: Iterable[int] = (2, 3, 4, 5, 6, 7, 8), *, prior: PriorLike | None = None,
                               n_inputs: int = 576, x_prior: PriorLike | None = None, n_channels: int = 2000,
                               grid: str = "midrise", rng: RNGLike = None,
                               progress: bool | None = None) -> pd.DataFrame:
    """Output error of a linear layer's channel vs bit-width, with each bias-correction mode.

    Weights of a channel: ``n_inputs`` i.i.d. draws of ``prior`` (default ``Laplace(1, loc=0.5)``:
    a channel whose mean is off the symmetric grid's centre), quantized at the prior's exact
    optimal clip rounded to 5 significant digits (so that the samples' levels do not depend on the
    CPU's rounding of a flat optimum); inputs i.i.d. from ``x_prior`` (default a rectified standard Gaussian, i.e.
    post-ReLU activations). The analytic columns (modes ``none`` and ``mean``) come from
    :func:`expected_output_error`; the Monte-Carlo columns from ``n_channels`` simulated channels
    (each with its own inputs) for every mode. ``progress``: a tqdm bar over the bit-widths
    (``None``: only after 2 s, in a terminal or notebook; ``True``: always; ``False``: never).

    Returns
    -------
    pandas.DataFrame
        Columns ``bits, mode, mse, mc_mse, mc_stderr, shift2, mc_shift2, mc_shift2_stderr``
        (analytic values are NaN for the modes without a closed form).

    Examples
    --------
    >>> df = bias_correction_experiment((4,), n_inputs=64, n_channels=400, rng=0)
    >>> sorted(df["mode"])
    ['both', 'mean', 'none', 'paper', 'variance']
    """
    import pandas as pd

    from .optimal import optimal_clip
    from .priors import Gaussian, Laplace, Rectified, as_prior

    func = "bias_correction_experiment"
    p = Laplace(1.0, loc=0.5) if prior is None else as_prior(prior, name="prior", func=func)
    xp = Rectified(Gaussian(1.0)) if x_prior is None else as_prior(x_prior, name="x_prior", func=func)
    n = check_int(n_inputs, "n_inputs", func, 2)
    t = check_int(n_channels, "n_channels", func, 2)
    progress = check_progress(progress, func)
    bits = [check_int(b, "bits", func, MIN_BITS[grid], MAX_BITS) for b in bits]
    g = np.random.default_rng(rng)
    m, v = xp.mean, xp.var
    rows = []
    for b in progress_bar(bits, progress, func):
        # The MSE is flat at its optimum, so the optimal clip's digits beyond ~1e-7 depend on rounding
        # (SIMD width, libm); at 8 bits a 1e-7 change moves a few of the t·n samples across a decision
        # threshold and the Monte-Carlo means in their 4th digit. 5 significant digits cost < 1e-10 of MSE.
        alpha = float(f"{optimal_clip(p, b, grid=grid, progress=False).alpha:.5g}")
        th = expected_output_error(p, b, alpha, n, m, math.sqrt(v), grid=grid)
        w = np.asarray(p.rvs((t, n), g), dtype=np.float64)
        wq = Quantizer(b, alpha, grid).quantize(w)
        x = np.asarray(xp.rvs((t, n), g), dtype=np.float64)
        for mode in ("none", "mean", "variance", "both", "paper"):
            e = w - bias_correct(w, wq, mode)
            d2 = np.sum(e * x, axis=1) ** 2
            sh2 = (m * e.sum(axis=1)) ** 2
            ana = {"none": (th.mse_none, th.shift2_none), "mean": (th.mse_mean, th.shift2_mean)}.get(
                mode, (np.nan, np.nan))
            rows.append({"bits": b, "mode": mode, "mse": ana[0], "mc_mse": float(d2.mean()),
                         "mc_stderr": float(d2.std(ddof=1) / math.sqrt(t)), "shift2": ana[1],
                         "mc_shift2": float(sh2.mean()), "mc_shift2_stderr": float(sh2.std(ddof=1) / math.sqrt(t))})
    return pd.DataFrame(rows)
