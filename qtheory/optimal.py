"""Optimal clips: the global minimiser of the clipping MSE.

For ``method="aciq"`` the clip solves ACIQ's stationarity condition
``α / (3·4^M) = E[(|X| − α)_+]`` (unique root: the left side increases, the right side
decreases). For ``method="exact"`` the MSE of a real grid can have several local minima (a
multimodal prior; samples), so the search scans a dense logarithmic grid of clips, refines
*every* local minimum of the scan with bounded Brent iterations, and returns the best.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ._progress import check_progress, progress_bar
from ._results import ResultMixin, sqnr_db_value, unit_db
from ._validation import check_int, check_option, check_samples, param_error
from .mse import (
    METHODS,
    _exact_parts_unit,
    _unit_power,
    aciq_tail_mean,
    clipping_mse,
    mse_slope,
    prepared_samples,
)
from .priors import Empirical, Gaussian, Laplace, Prior, Rectified, _ldexp, _pow2_exponent, as_prior
from .quantizer import DEFAULT_PRIOR_GRID, DEFAULT_TENSOR_GRID, GRIDS, MAX_BITS, MIN_BITS, Quantizer

__all__ = ["optimal_clip", "optimal_clip_table", "ClipResult"]


@dataclass(frozen=True)
class ClipResult(ResultMixin):
    """An optimal clip.

    Attributes
    ----------
    alpha : float
        The clip.
    mse, clipping, rounding : float
        MSE at ``alpha`` (by the same method) and its two parts.
    ratio : float
        ``alpha / prior.scale`` (``α/b`` for Laplace, ``α/σ`` for Gaussian, ``α/std`` otherwise).
    bits, grid, method : int, str, str
    local_minima : ndarray
        Clips of all local minima found (``"exact"``), in increasing order.
    beta : float or None
        Lower clip of an asymmetric affine range (``range="asymmetric"``), else ``None``.
    signal_power : float or None
        ``E[X²]`` of the prior or samples the clip was optimised for (the SQNR convention of
        :func:`qtheory.models.layer_report` and :func:`qtheory.formats.block_mse`), ``None`` when
        unknown. Like ``mse`` it is ``inf`` or ``0`` only outside the float64 range; not shown by
        ``repr`` and not compared by ``==``.

    Notes
    -----
    ``sqnr_db`` is computed at unit scale (the prior divided by a power of two) when
    :func:`optimal_clip` builds the result, so it is the same for ``c·X`` at any ``c`` from
    1e-300 to 1e300, even where ``mse`` and ``signal_power`` over- or underflow.

    Examples
    --------
    >>> from qtheory import optimal_clip
    >>> r = optimal_clip("laplace", 4, grid="int")
    >>> r.quantizer
    Quantizer(bits=4, alpha=5.2908..., grid='int', rounding='half_even', beta=None)
    >>> r.quantize([0.1, -9.0])      # rounded to the grid, clipped at -alpha
    array([ 0.    , -5.2908...])
    >>> import math
    >>> round(r.sqnr_db, 2), math.isclose(r.sqnr_db, 10 * math.log10(2.0 / r.mse))  # E[X²] = 2b²
    (15.98, True)
    """

    alpha: float
    mse: float
    clipping: float
    rounding: float
    ratio: float
    bits: int
    grid: str
    method: str
    local_minima: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    beta: float | None = None
    signal_power: float | None = field(default=None, repr=False, compare=False)
    _sqnr_db: float | None = field(default=None, repr=False, compare=False)

    @property
    def quantizer(self) -> Quantizer:
        """The :class:`qtheory.Quantizer` of this clip: ``Quantizer(bits, alpha, grid, beta=beta)``.

        ``method="aciq"`` results give the midrise grid, whose step equals ACIQ's modelled step.

        Raises
        ------
        TypeError
            For a clip of ``0.0`` (all-zero samples), which no quantizer has, or a grid that is not
            one of :data:`qtheory.GRIDS` (a codebook needs its level set: see
            :func:`qtheory.formats.optimal_scale`, whose ``alpha`` is the codebook's clip).
        """
        if self.grid not in GRIDS:
            raise TypeError(f"ClipResult.quantizer: the grid {self.grid!r} is not one of {GRIDS}; a codebook "
                            "grid needs its level set: build Quantizer(bits, alpha, 'codebook', codebook=...).")
        if not self.alpha > 0.0:
            raise TypeError(f"ClipResult.quantizer: a clip of {self.alpha!r} (all-zero samples) has no "
                            "Quantizer; every value quantizes to 0.")
        return Quantizer(self.bits, self.alpha, self.grid, beta=self.beta if self.grid == "affine" else None)

    def quantize(self, x) -> np.ndarray:
        """``self.quantizer.quantize(x)``: ``x`` clipped and rounded to this clip's grid."""
        return self.quantizer.quantize(x)

    @property
    def sqnr_db(self) -> float:
        """``10·log10(E[X²] / mse)`` in dB, scale-invariant (see Notes).

        Raises
        ------
        ValueError
            When the signal power is unknown (a result built by hand without ``signal_power``).
        """
        return sqnr_db_value(self._sqnr_db, self.signal_power, self.mse, "ClipResult")


def optimal_clip(prior, bits: int, *, grid: str | None = None, method: str = "exact",
                 n_grid: int | None = None, range: str = "symmetric",  # noqa: A002
                 axis: int | None = None, progress: bool | None = None):
    """The clip that minimises the clipping MSE (globally, for ``method="exact"``).

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior`.
    bits : int
        Bit-width (``0..16`` for ``"aciq"``, ``1..16`` otherwise, ``2..16`` for ``"narrow"``).
    grid : str, optional
        One of :data:`qtheory.GRIDS` (``"aciq"`` needs ``"midrise"``; ``"affine"`` is searched
        with the symmetric range ``[-α, α]``). ``None`` (default): ``"midrise"``, the papers' grid,
        for a prior (and for ``method="aciq"``); :data:`qtheory.DEFAULT_TENSOR_GRID` (``"narrow"``,
        the symmetric int grid of integer runtimes) for samples (an array or
        :class:`~qtheory.Empirical`); ``"affine"`` with ``range="asymmetric"``. See "Default grids"
        in :mod:`qtheory.quantizer`.
    method : {"exact", "aciq"}
    n_grid : int, optional
        Points of the global scan (default 400 for closed forms, 1024 for samples, 96 for
        quadrature).
    range : {"symmetric", "asymmetric"}
        ``"asymmetric"`` (with ``grid="affine"``) optimises both ends of the range ``[β, α]``
        (``β <= 0 < α``, zero point ``round((2^b − 1)·(−β)/(α − β))``, ties up): a 2-D scan over
        (zero point, step), a pattern search from the best scan points and a Brent polish of the
        step, ``O(log 2^b)`` evaluations (see ``_asymmetric``); the result's ``beta`` holds ``β``.
    axis : int, optional
        For a tensor (an array of any shape): ``None`` (default) gives one clip for the whole
        tensor (its values flattened, no copy for a contiguous array); an int gives one exact clip
        per channel, every slice along ``axis`` being one channel
        (:func:`qtheory.empirical.per_channel_optimal_clip`; symmetric and unsigned grids,
        ``method="exact"``). Priors take no ``axis``.
    progress : bool or None
        A tqdm bar over the scan of a long search (quadrature priors at many bits, the asymmetric
        scan). ``None``: only when the search lasts over 2 s and someone watches (a terminal or a
        notebook); ``True``: always; ``False``: never (the policy of every ``progress`` in qtheory,
        stated in the ``qtheory`` package docstring).

    Notes
    -----
    Samples (a 1-D array or :class:`~qtheory.Empirical`) take the fast exact path of
    :mod:`qtheory.empirical`: one O(N) preparation, then O(levels) per clip, and the returned clip
    is an exact vertex of the piecewise-quadratic empirical MSE, global over every ``α > 0``
    (proven for every size: see :func:`qtheory.empirical.empirical_optimal_clip`; a small
    tensor can gain from a clip beyond ``max|x|`` that puts levels on its values). float32 samples
    are read without a copy; an all-zero tensor has the clip ``0.0``. Priors with an infinite variance
    (Cauchy, Student-t with ``df <= 2``) are rejected by :func:`qtheory.as_prior`. With
    ``range="asymmetric"``, samples take the search over (zero point, step) of
    ``qtheory.empirical.EmpiricalMSE._affine_optimum`` instead of the prior search above: the
    global optimum over (zero point, step) for every size (for large tensors a branch and bound
    over every zero point's steps proves it).

    Continuous priors are searched at unit scale: the prior is divided by the power of two nearest
    its size (an exact scaling) and the answer scaled back, so ``optimal_clip(c·X).alpha`` is
    ``c·optimal_clip(X).alpha`` for any ``c`` from 1e-300 to 1e300 (``mse`` is ``c²`` times; it is
    ``inf`` or ``0`` only where that value is outside the float64 range). For the symmetric grids the
    clip is polished to the root of the exact slope. Quadrature priors at 10 bits or more are
    scanned with the high-resolution MSE (exact clipping part + ``Δ²/12`` per unit of granular
    mass) and then land on the exact optimum by that slope root.

    Returns
    -------
    ClipResult or qtheory.empirical.PerChannelClips
        A :class:`~qtheory.empirical.PerChannelClips` when ``axis`` is an int.

    Examples
    --------
    >>> from qtheory import optimal_clip
    >>> round(optimal_clip("laplace", 4, method="aciq").alpha, 4)
    5.0286
    >>> round(optimal_clip("gaussian", 4, method="aciq").ratio, 4)
    2.5591
    >>> r = optimal_clip("gaussian", 4)   # exact optimum of the 16-level midrise grid
    >>> round(r.alpha, 4), round(r.mse, 6)
    (2.6816, 0.011543)
    >>> import numpy as np
    >>> optimal_clip(np.random.default_rng(0).normal(size=1000), 4).grid   # samples: the tensor default
    'narrow'
    >>> from qtheory import Rectified
    >>> r = optimal_clip(Rectified("gaussian"), 4, grid="affine", range="asymmetric")
    >>> r.beta, round(r.alpha, 3)        # post-ReLU: the range starts at 0 (= the unsigned grid)
    (0.0, 2.899)

    A weight tensor, one clip per output channel (axis 0) or one for the whole tensor:

    >>> import numpy as np
    >>> w = np.random.default_rng(0).laplace(size=(8, 3, 3, 3)).astype(np.float32)
    >>> optimal_clip(w, 4, grid="narrow", axis=0).alpha.shape
    (8,)
    >>> optimal_clip(w, 4, grid="narrow").alpha == optimal_clip(w.ravel(), 4, grid="narrow").alpha
    True
    """
    func = "optimal_clip"
    method = check_option(method, "method", func, tuple(m for m in METHODS if m != "montecarlo"))
    rng_kind = check_option(range, "range", func, ("symmetric", "asymmetric"))
    progress = check_progress(progress, func)
    if axis is not None:
        return _per_channel(prior, bits, grid, method, rng_kind, axis, func)
    if isinstance(prior, np.ndarray) and prior.ndim > 1 and prior.dtype.kind in "biuf":
        prior = prior.reshape(-1)  # (a tensor, one clip: its values, flattened without a copy when contiguous)
    if isinstance(prior, np.ndarray) and prior.ndim == 1 and prior.dtype.kind in "biuf":
        prior = Empirical(prior, _name="prior", _func=func)  # (samples: validated without a float64 copy)
    prior = as_prior(prior, func=func)
    if grid is None:  # (one rule, stated in qtheory.quantizer: "Default grids")
        grid = ("affine" if rng_kind == "asymmetric" else
                DEFAULT_TENSOR_GRID if isinstance(prior, Empirical) and method == "exact" else DEFAULT_PRIOR_GRID)
    grid = check_option(grid, "grid", func, GRIDS)
    bits = check_int(bits, "bits", func, 0 if method == "aciq" else MIN_BITS[grid], MAX_BITS)
    if n_grid is not None:
        n_grid = check_int(n_grid, "n_grid", func, 4 if rng_kind == "asymmetric" else 16,
                           10_000 if rng_kind == "asymmetric" else 1_000_000)
    # Standardise: search on X / 2^e (2^e near the prior's size, an exact scaling), scale back.
    mag = prior._magnitude()
    e = _pow2_exponent(mag) if mag > 0 else 0
    if e == 0 or isinstance(prior, Empirical):  # samples: EmpiricalMSE is exactly scale-equivariant, no copy
        return _optimal(prior, bits, grid, method, n_grid, rng_kind, progress, func)
    r = _optimal(prior._scaled(e), bits, grid, method, n_grid, rng_kind, progress, func)
    return dataclasses.replace(
        r, alpha=math.ldexp(r.alpha, e), mse=float(_ldexp(r.mse, 2 * e)), clipping=float(_ldexp(r.clipping, 2 * e)),
        rounding=float(_ldexp(r.rounding, 2 * e)), local_minima=_ldexp(r.local_minima, e),
        beta=None if r.beta is None else math.ldexp(r.beta, e),
        signal_power=float(_ldexp(r.signal_power, 2 * e)))  # (sqnr_db: kept from the unit scale)


def _per_channel(x, bits, grid, method, rng_kind, axis, func):
    """``optimal_clip(x, ..., axis=k)``: one exact clip per channel of a tensor."""
    from .empirical import _SCALE_GRIDS, per_channel_optimal_clip

    if isinstance(x, Prior) or isinstance(x, str):
        raise param_error("axis", func, "None for a prior (axis selects the channels of a tensor)", axis)
    if method != "exact":
        raise param_error("method", func, "'exact' with axis (per-channel clips are exact optima)", method)
    if rng_kind != "symmetric":
        raise param_error("range", func, "'symmetric' with axis (per-channel ranges are symmetric or unsigned)",
                          rng_kind)
    grid = DEFAULT_TENSOR_GRID if grid is None else check_option(grid, "grid", func, GRIDS)
    if grid not in _SCALE_GRIDS:
        raise param_error("grid", func, f"one of {_SCALE_GRIDS} with axis", grid)
    bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    if not (isinstance(x, np.ndarray) and x.dtype.kind in "biuf"):
        if isinstance(x, Empirical):
            raise param_error("axis", func, "None for Empirical samples (they have no channels)", axis)
        x = check_samples(x, "prior", func, ndim=None)
    if x.ndim == 0:
        raise param_error("prior", func, "an array with at least 1 dimension with axis", "a scalar")
    axis = check_int(axis, "axis", func, -x.ndim, x.ndim - 1)
    return per_channel_optimal_clip(x, bits, axis=axis, grid=grid)


def _optimal(prior, bits, grid, method, n_grid, rng_kind, progress, func) -> ClipResult:
    r = _optimal_at(prior, bits, grid, method, n_grid, rng_kind, progress, func)
    if r._sqnr_db is not None:  # (samples: EmpiricalMSE fills it at its own unit scale)
        return r
    power_u, e = _unit_power(prior)  # (e = 0 for a standardised prior)
    sq = unit_db(power_u, float(_ldexp(r.mse, -2 * e))) if 0.0 < r.mse < math.inf else None
    return dataclasses.replace(r, signal_power=float(_ldexp(power_u, 2 * e)), _sqnr_db=sq)


def _optimal_at(prior, bits, grid, method, n_grid, rng_kind, progress, func) -> ClipResult:
    if rng_kind == "asymmetric":
        if grid != "affine" or method != "exact":
            raise param_error("grid", func, "'affine' (with method='exact') when range='asymmetric'", grid)
        return _asymmetric(prior, bits, n_grid, func, progress)
    if method == "aciq":
        if grid != "midrise":
            raise param_error("grid", func, "'midrise' with method='aciq'", grid)
        alpha = _aciq_root(prior, bits, func)
        r = clipping_mse(prior, alpha, bits, method="aciq")
        return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, grid, method,
                          np.array([alpha]))
    if isinstance(prior, Empirical) and grid in ("midrise", "int", "narrow", "unsigned", "uint"):
        n_grid = 1024 if n_grid is None else n_grid
        r = prepared_samples(prior).optimal_clip(bits, grid=grid, n_grid=n_grid)
        # (Empirical.scale: no pass over the samples once prepared)
        return ClipResult(r.alpha, r.mse, r.clipping, r.rounding, r.alpha / prior.scale, bits, grid, method,
                          r.local_minima, signal_power=r.signal_power, _sqnr_db=r._sqnr_db)
    if isinstance(prior, Empirical):
        # The symmetric affine grid: zero point exactly 2^(b-1) for every α (see
        # qtheory.quantizer), so its levels are the "int" grid's at the step s = (2α)/(2^b - 1):
        # MSE(α) = MSE_int(s) >= the int grid's proven optimum, reached at α = s*·(2^b - 1)/2 up to
        # the rounding of that step (the best of a few neighbouring clips, evaluated exactly).
        u = prepared_samples(prior)._unit
        fu = lambda a: math.fsum(_exact_parts_unit(prior, bits, grid, "half_even", a * u, None)[:2])  # noqa: E731
        r_int = _optimal_at(prior, bits, "int", method, n_grid, "symmetric", progress, func)
        if r_int.alpha == 0.0:  # (all zero: the clip 0.0, as for the int grid)
            return dataclasses.replace(r_int, grid=grid)
        ratio = (2**bits - 1) / 2.0**bits  # (α_int = s*·2^(b-1))
        alpha_u = r_int.alpha / u * ratio
        cands = [alpha_u]
        for direction in (0.0, math.inf):
            a = alpha_u
            for _ in range(3):
                a = math.nextafter(a, direction)
                cands.append(a)
        vals = [fu(a) for a in cands if a > 0.0 and math.isfinite(a)]
        alpha_u = [a for a in cands if a > 0.0 and math.isfinite(a)][int(np.argmin(vals))]
        alpha = alpha_u * u
        r = clipping_mse(prior, alpha, bits, grid=grid)
        minima = np.unique(np.append(np.asarray(r_int.local_minima) * ratio, alpha))
        return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, grid, method, minima,
                          signal_power=r.signal_power, _sqnr_db=unit_db(_unit_power(prior)[0], fu(alpha_u)))
    quad = _is_quadrature(prior)
    if n_grid is None:
        n_grid = 96 if quad else 400
    f = lambda a: clipping_mse(prior, a, bits, grid=grid, _power=False).mse  # noqa: E731
    slope = lambda a: mse_slope(prior, Quantizer(bits, a, grid))  # noqa: E731
    lo, hi = _search_range(prior, bits)
    cap = hi * 2.0**bits  # no basin lies beyond 2^b·hi: there even the smallest non-zero level is beyond the mass
    if quad and bits >= _HIGH_RATE_BITS and grid != "affine" and prior.kind == "continuous":
        # Quadrature over 2^b bins is costly: find the basins with the high-rate MSE (exact clipping
        # part + Δ²/12 per unit of granular mass; its relative error is O((Δ/σ)²) < 1e-5 here), then
        # land on the exact optimum as the root of the exact slope bracketed around it.
        fh = lambda a: _high_rate_mse(prior, a, bits, grid)  # noqa: E731
        alpha, minima = _global_min(fh, (lo, hi), n_grid, progress, cap=cap)
        polished = _polish(f, slope, alpha, rels=(1e-5, 1e-3, 1e-2))
        if polished == alpha:  # no bracket: minimise the exact MSE near the high-rate optimum
            alpha, _ = _global_min(f, (alpha * 0.99, alpha * 1.01), 16)
        else:
            alpha = polished
    else:
        alpha, minima = _global_min(f, (lo, hi), n_grid, progress and quad, cap=cap)
        if grid != "affine" and prior.kind == "continuous":
            alpha = _polish(f, slope, alpha)
    r = clipping_mse(prior, alpha, bits, grid=grid)
    return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, grid, method, minima)


def optimal_clip_table(priors: Iterable = ("laplace", "gaussian"), bits: Iterable[int] = range(1, 9), *,
                       methods: Iterable[str] = ("aciq", "exact"), grid: str = "midrise",
                       progress: bool | None = None):
    """A long-format pandas DataFrame of optimal clips over priors, bit-widths and methods.

    Columns: ``prior, bits, method, grid, alpha, ratio, mse``. Priors may be given as a
    ``{label: prior}`` mapping; otherwise labels are the names. ``progress``: a tqdm bar over the
    table's cells (``None``: only after 2 s and where someone watches; ``True``: always;
    ``False``: never).

    Examples
    --------
    >>> from qtheory import optimal_clip_table
    >>> t = optimal_clip_table(bits=[2, 4], methods=["aciq"])
    >>> print(t[["prior", "bits", "ratio"]].round(4).to_string(index=False))
       prior  bits  ratio
     laplace     2 2.8307
     laplace     4 5.0286
    gaussian     2 1.7106
    gaussian     4 2.5591
    """
    import pandas as pd

    grid = check_option(grid, "grid", "optimal_clip_table", GRIDS)
    progress = check_progress(progress, "optimal_clip_table")
    # a bare string (or a single prior object) is one item, not a sequence of characters
    if isinstance(priors, (str, Prior, np.ndarray)) or hasattr(priors, "dist"):
        priors = [priors]
    if isinstance(bits, (int, np.integer)):
        bits = [bits]
    if isinstance(methods, str):
        methods = [methods]
    items = priors.items() if isinstance(priors, dict) else ((_label(p), p) for p in priors)
    cells = [(label, p, m, b) for label, p in items for m in methods for b in bits
             if not (m == "exact" and b < MIN_BITS[grid])]
    rows = []
    for label, p, m, b in _bar(cells, progress, "optimal_clip_table", leave=True):
        r = optimal_clip(p, b, grid=grid, method=m, progress=False)
        rows.append({"prior": label, "bits": b, "method": m, "grid": grid, "alpha": r.alpha,
                     "ratio": r.ratio, "mse": r.mse})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- internals
def _bar(it, progress: bool | None, desc: str, leave: bool = False):
    """``it`` in a tqdm bar by qtheory's progress policy (:func:`qtheory._progress.progress_bar`)."""
    return progress_bar(it, progress, desc, leave=leave)


def _label(p):
    return p if isinstance(p, str) else getattr(as_prior(p), "name", repr(p))


def _is_quadrature(prior: Prior) -> bool:
    from .priors import Mixture, ScipyPrior

    if isinstance(prior, ScipyPrior):
        return True
    if isinstance(prior, Rectified):
        return _is_quadrature(prior.base)
    if isinstance(prior, Mixture):
        return any(_is_quadrature(c) for c in prior.components)
    return False


def _aciq_root(prior: Prior, bits: int, func: str) -> float:
    from scipy.optimize import brentq

    base, m = prior, bits
    if isinstance(prior, Rectified):
        base, m = prior.base, bits + 1  # one-sided model = symmetric model at one more bit
    if not isinstance(base, (Laplace, Gaussian)) or base.loc != 0.0:
        raise param_error("prior", func, "a zero-mean Laplace or Gaussian prior (or Rectified of one) with "
                          "method='aciq'; use method='exact' for other priors", repr(prior))
    k = 3.0 * 4.0**m
    g = lambda a: a / k - float(aciq_tail_mean(base, a))  # noqa: E731 - increasing in a
    hi = base.scale
    while g(hi) < 0:
        hi *= 2.0
    return float(brentq(g, 0.0, hi, xtol=1e-15 * hi, rtol=4 * np.finfo(float).eps, maxiter=500))


def _asymmetric(prior: Prior, bits: int, n_grid, func: str, progress: bool = False) -> ClipResult:
    """Minimise the affine-grid MSE over the range ``[β, α]``, ``β <= 0 < α``.

    The quantizer depends on the range only through its step ``s`` and integer zero point ``z``
    (levels ``(k − z)·s``, ``k = 0 .. 2^b − 1``; ``β = −z·s``, ``α = (2^b − 1 − z)·s``). Samples
    take ``qtheory.empirical.EmpiricalMSE._affine_optimum`` (its docstring states what is
    proven). A prior: a coarse 2-D scan (up to 17 zero points, 9 above 8 bits, × ``n_grid``
    logarithmic steps) finds the basins; a pattern search from the three (above 8 bits two) best
    scan points moves ``z`` (by halving integer strides, with ``s``, ``α`` or ``β`` held) and
    ``log s`` until no neighbour improves; finally ``s`` is refined by bounded Brent iterations at
    the best ``z`` and its two neighbours. The cost grows like ``log(2^b)``, not ``2^b``.
    """
    from scipy.optimize import minimize_scalar

    top = 2**bits - 1
    if isinstance(prior, Empirical):
        prep = prepared_samples(prior)
        if prep.max <= 0:
            raise param_error("prior", func, "a prior with positive values for range='asymmetric'", repr(prior))
        tot, s_u, z = prep._affine_optimum(bits, n_grid)
        beta, alpha = prep._affine_range(bits, s_u, z)
        r = clipping_mse(prior, alpha, bits, grid="affine", beta=beta)
        # sqnr_db from unit-scale values (the MSE may be beyond float64)
        sq = unit_db(_unit_power(prior)[0], float(prep._mse_of(prep._eval(np.array([s_u]), 0.0, [-z], [top - z],
                                                                             0))[0]))
        return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, "affine", "exact",
                          np.array([alpha]), beta=beta, signal_power=r.signal_power, _sqnr_db=sq)
    quad = _is_quadrature(prior)
    n = n_grid if n_grid is not None else (16 if quad or bits > 8 else 48)
    t = prior.abs_quantile(1.0 - 1e-12)
    lo_x, hi_x = (0.0 if prior.nonnegative else -t), t

    def mse_zs(z, ss):  # (step ss, zero point z: the scale grid with levels (k - z)·s, k = 0..top)
        ss = np.atleast_1d(ss)
        return np.array([clipping_mse(prior, (top - z) * v, bits, grid="affine", beta=-z * v,
                                      _power=False).mse for v in ss])

    if hi_x <= 0:
        raise param_error("prior", func, "a prior with positive values for range='asymmetric'", repr(prior))
    span = (hi_x - min(lo_x, 0.0)) / top
    s_grid = np.geomspace(span * 1e-3, span * 1.05, n)
    cache: dict = {}

    def f(z, v):
        key = (z, v)
        if key not in cache:
            cache[key] = float(mse_zs(z, v)[0])
        return cache[key]

    def best_s(z):
        v = mse_zs(z, s_grid)
        for vv, ss in zip(v, s_grid, strict=True):
            cache[(z, float(ss))] = float(vv)
        i = int(np.argmin(v))
        return float(v[i]), float(s_grid[i])

    z_max = top - 1 if lo_x < 0 else 0
    n_z = min(z_max + 1, 17 if bits <= 8 else 9)
    coarse = np.unique(np.round(np.linspace(0, z_max, n_z)).astype(int))
    scan = {int(z): best_s(int(z)) for z in _bar(coarse, progress, "optimal_clip affine scan")}
    stride0 = max(1, int(coarse[1] - coarse[0]) // 2) if coarse.size > 1 else 1
    dlog0 = float(np.log(s_grid[1] / s_grid[0]))

    def pattern(z, s_):
        v = f(z, s_)
        dz, dl = stride0, dlog0
        while True:
            moves = [(z, s_ * math.exp(dl)), (z, s_ * math.exp(-dl))]
            for z2 in (z + dz, z - dz):
                if 0 <= z2 <= z_max:
                    moves += [(z2, s_), (z2, s_ * (top - z) / (top - z2))]  # s held, α held
                    if z > 0 and z2 > 0:
                        moves.append((z2, s_ * z / z2))  # β held
            for z2, s2 in moves:
                v2 = f(z2, s2)
                if v2 < v:
                    z, s_, v = z2, s2, v2
                    break
            else:
                if dz == 1 and dl < 1e-6:
                    return v, s_, z
                dz, dl = max(1, dz // 2), dl / 2

    starts = sorted(scan, key=lambda z: scan[z][0])[:3 if bits <= 8 else 2]
    cands = [pattern(z, scan[z][1]) for z in starts]
    _, s0, z0 = min(cands)
    final = []
    for z in (z0 - 1, z0, z0 + 1):
        if 0 <= z <= z_max:
            a, b = s0 * (1 - 1e-5), s0 * (1 + 1e-5)
            res = minimize_scalar(lambda v, z=z: f(z, float(v)), bounds=(a, b), method="bounded",
                                  options={"xatol": 1e-13 * b, "maxiter": 200})
            v0 = f(z, s0)
            final.append((float(res.fun), float(res.x), z) if res.fun <= v0 else (v0, s0, z))
    final.sort()
    _, step_s, z = final[0]
    alpha, beta = (top - z) * step_s, -z * step_s + 0.0
    r = clipping_mse(prior, alpha, bits, grid="affine", beta=beta)
    return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, "affine", "exact",
                      np.array([alpha]), beta=beta)


def _search_range(prior: Prior, bits: int) -> tuple[float, float]:
    """The scanned clip range of a distribution (samples take the exact paths of qtheory.empirical)."""
    # Beyond the (1 - 1e-14)-quantile of |X| there is no mass worth a level; the outermost level of
    # every grid is at least (1 - 2^(1-b))·α (int), so α up to top·(1 + 2^(2-b)) puts a level on
    # any value up to top (a level *on* a narrow outer mode can be optimal: multimodal priors).
    top = prior.abs_quantile(1.0 - 1e-14) * 1.05 * (1.0 + 2.0 ** (2 - bits))
    scale = prior.scale
    return min(1e-3 * scale, 1e-3 * top), top


#: From this many bits on, quadrature priors are scanned with the high-rate MSE (see _optimal).
_HIGH_RATE_BITS = 10


def _high_rate_mse(prior: Prior, alpha: float, bits: int, grid: str) -> float:
    """Exact clipping part plus ``Δ²/12 · P(granular)``: the classical high-resolution MSE."""
    q = Quantizer(bits, alpha, grid)
    lo, hi = q.overload
    lv = q.levels
    clip = prior.interval_sq_error([-np.inf, hi], [lo, np.inf], [lv[0], lv[-1]])
    p = float(np.sum(prior.prob([lo], [hi])))
    return float(np.sum(clip)) + q.scale**2 / 12.0 * p


def _polish(f, slope, x, rels=(1e-7, 1e-5, 1e-3)):
    """Locate a minimum found by Brent (to ~sqrt(eps)) to ~eps as the root of the exact slope."""
    from scipy.optimize import brentq

    for rel in rels:
        lo, hi = x * (1 - rel), x * (1 + rel)
        s_lo, s_hi = slope(lo), slope(hi)
        if s_lo < 0 < s_hi:
            root = brentq(slope, lo, hi, xtol=4 * np.finfo(float).eps * x, rtol=4 * np.finfo(float).eps)
            # Near the minimum f changes by ~f''·δ²/2, below its own rounding: the exact slope's root
            # is the better answer unless f says it is clearly worse (a wrong bracket).
            return root if f(root) <= f(x) * (1.0 + 1e-12) else x
        if s_lo >= 0 or s_hi <= 0:
            continue
    return x


def _global_min(f, bounds, n_grid, progress=False, cap=None):
    """Scan ``f`` on a log grid, refine every local minimum, return (best, all minima).

    While ``f`` still decreases at the upper end of the scan, the scan is extended with the same
    spacing (up to ``cap``), so that a basin beyond the first range is found rather than its
    slope. The two ends of the scan are never reported as local minima (unless ``f`` is monotone
    over the whole scan, when the best end is returned).
    """
    from scipy.optimize import minimize_scalar

    lo, hi = bounds
    grid = list(np.geomspace(lo, hi, n_grid))
    vals = [f(a) for a in _bar(grid, progress, "optimal_clip scan")]
    ratio = grid[1] / grid[0]
    cap = hi if cap is None else max(cap, hi)
    while vals[-1] < vals[-2] and grid[-1] * ratio <= cap:
        grid.append(grid[-1] * ratio)
        vals.append(f(grid[-1]))
    grid, vals = np.array(grid), np.array(vals)
    n = grid.size
    idx = [i for i in range(1, n - 1) if vals[i] <= vals[i - 1] and vals[i] <= vals[i + 1]]
    if not idx:
        idx = [int(np.argmin(vals))]
    # keep distinct basins: plateaus produce runs of equal values
    cands = []
    for i in idx:
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, n - 1)]
        res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-12 * b, "maxiter": 500})
        x, v = (float(res.x), float(res.fun)) if res.fun <= vals[i] else (float(grid[i]), float(vals[i]))
        cands.append((v, x))
    cands.sort()
    best = cands[0][1]
    minima = np.unique(np.round([x for _, x in cands], 10))
    return best, minima

