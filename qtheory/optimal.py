"""Optimal clips: the global minimiser of the clipping MSE.

For ``method="aciq"`` the clip solves ACIQ's stationarity condition
``α / (3·4^M) = E[(|X| − α)_+]`` (unique root: the left side increases, the right side
decreases). For ``method="exact"`` the MSE of a real grid can have several local minima (a
multimodal prior; samples), so the search scans a dense logarithmic grid of clips, refines
*every* local minimum of the scan with bounded Brent iterations, and returns the best.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_int, check_option, param_error
from .mse import METHODS, aciq_tail_mean, clipping_mse, mse_slope
from .priors import Empirical, Gaussian, Laplace, Prior, Rectified, as_prior
from .quantizer import GRIDS, MAX_BITS, MIN_BITS, Quantizer

__all__ = ["optimal_clip", "optimal_clip_table", "ClipResult"]


@dataclass(frozen=True)
class ClipResult:
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


def optimal_clip(prior, bits: int, *, grid: str = "midrise", method: str = "exact",
                 n_grid: int | None = None, range: str = "symmetric") -> ClipResult:  # noqa: A002
    """The clip that minimises the clipping MSE (globally, for ``method="exact"``).

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior`.
    bits : int
        Bit-width (``0..16`` for ``"aciq"``, ``1..16`` otherwise, ``2..16`` for ``"narrow"``).
    grid : str
        One of :data:`qtheory.GRIDS` (``"aciq"`` needs ``"midrise"``; ``"affine"`` is searched
        with the symmetric range ``[-α, α]``).
    method : {"exact", "aciq"}
    n_grid : int, optional
        Points of the global scan (default 400 for closed forms, 1024 for samples, 96 for
        quadrature).
    range : {"symmetric", "asymmetric"}
        ``"asymmetric"`` (with ``grid="affine"``) optimises both ends of the range ``[β, α]``
        (``β <= 0 < α``, zero point ``round(−β/s)``): a 2-D scan followed by Nelder–Mead from the
        best scan points; the result's ``beta`` holds ``β``.

    Notes
    -----
    Samples (a 1-D array or :class:`~qtheory.Empirical`) take the fast exact path of
    :mod:`qtheory.empirical`: one O(N) preparation, then O(levels) per clip, and the returned clip
    is an exact vertex of the piecewise-quadratic empirical MSE, global over every ``α > 0``
    (the proven search range is in :func:`qtheory.empirical.empirical_optimal_clip`; a small
    tensor can gain from a clip beyond ``max|x|`` that puts levels on its values). float32 samples
    are read without a copy; an all-zero tensor has the clip ``0.0``. Priors with an infinite variance
    (Cauchy, Student-t with ``df <= 2``) are rejected by :func:`qtheory.as_prior`.

    Returns
    -------
    ClipResult

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
    >>> from qtheory import Rectified
    >>> r = optimal_clip(Rectified("gaussian"), 4, grid="affine", range="asymmetric")
    >>> r.beta, round(r.alpha, 3)        # post-ReLU: the range starts at 0 (= the unsigned grid)
    (0.0, 2.899)
    """
    func = "optimal_clip"
    method = check_option(method, "method", func, tuple(m for m in METHODS if m != "montecarlo"))
    grid = check_option(grid, "grid", func, GRIDS)
    bits = check_int(bits, "bits", func, 0 if method == "aciq" else MIN_BITS[grid], MAX_BITS)
    rng_kind = check_option(range, "range", func, ("symmetric", "asymmetric"))
    if isinstance(prior, np.ndarray) and prior.ndim == 1 and prior.dtype.kind in "biuf":
        prior = Empirical(prior, _name="prior", _func=func)  # (samples: validated without a float64 copy)
    prior = as_prior(prior, func=func)
    if rng_kind == "asymmetric":
        if grid != "affine" or method != "exact":
            raise param_error("grid", func, "'affine' (with method='exact') when range='asymmetric'", grid)
        return _asymmetric(prior, bits, n_grid, func)
    if method == "aciq":
        if grid != "midrise":
            raise param_error("grid", func, "'midrise' with method='aciq'", grid)
        alpha = _aciq_root(prior, bits, func)
        r = clipping_mse(prior, alpha, bits, method="aciq")
        return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, grid, method,
                          np.array([alpha]))
    if isinstance(prior, Empirical) and grid in ("midrise", "int", "narrow", "unsigned", "uint"):
        n_grid = 1024 if n_grid is None else check_int(n_grid, "n_grid", func, 16, 1_000_000)
        r = prior.prepared().optimal_clip(bits, grid=grid, n_grid=n_grid)
        return ClipResult(r.alpha, r.mse, r.clipping, r.rounding, r.alpha / prior.scale, bits, grid, method,
                          r.local_minima)  # (Empirical.scale: no pass over the samples once prepared)
    if n_grid is None:
        n_grid = 96 if _is_quadrature(prior) else 400
    n_grid = check_int(n_grid, "n_grid", func, 16, 100_000)
    f = lambda a: clipping_mse(prior, a, bits, grid=grid).mse  # noqa: E731
    alpha, minima = _global_min(f, _search_range(prior, bits), n_grid)
    if grid != "affine" and prior.kind == "continuous":
        alpha = _polish(f, lambda a: mse_slope(prior, Quantizer(bits, a, grid)), alpha)
    r = clipping_mse(prior, alpha, bits, grid=grid)
    return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, grid, method, minima)


def optimal_clip_table(priors: Iterable = ("laplace", "gaussian"), bits: Iterable[int] = range(1, 9), *,
                       methods: Iterable[str] = ("aciq", "exact"), grid: str = "midrise"):
    """A long-format pandas DataFrame of optimal clips over priors, bit-widths and methods.

    Columns: ``prior, bits, method, grid, alpha, ratio, mse``. Priors may be given as a
    ``{label: prior}`` mapping; otherwise labels are the names.

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
    items = priors.items() if isinstance(priors, dict) else ((_label(p), p) for p in priors)
    rows = []
    for label, p in items:
        for m in methods:
            for b in bits:
                if m == "exact" and b < MIN_BITS[grid]:
                    continue
                r = optimal_clip(p, b, grid=grid, method=m)
                rows.append({"prior": label, "bits": b, "method": m, "grid": grid, "alpha": r.alpha,
                             "ratio": r.ratio, "mse": r.mse})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- internals
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


def _asymmetric(prior: Prior, bits: int, n_grid, func: str) -> ClipResult:
    """Minimise the affine-grid MSE over the range ``[β, α]``, ``β <= 0 < α``.

    The quantizer depends on the range only through its step ``s`` and integer zero point ``z``
    (levels ``(k − z)·s``, ``k = 0 .. 2^b − 1``; ``β = −z·s``, ``α = (2^b − 1 − z)·s``), so the
    search is over ``z`` (a coarse sweep, then every ``z`` near the best) and, for each ``z``, a
    logarithmic scan of ``s`` refined by bounded Brent iterations.
    """
    from scipy.optimize import minimize_scalar


    top = 2**bits - 1
    quad = _is_quadrature(prior)
    n = check_int(n_grid if n_grid is not None else (16 if quad else 48), "n_grid", func, 4, 10_000)
    if isinstance(prior, Empirical):
        lo_x, hi_x = float(prior._raw.min()), float(prior._raw.max())
        prep = prior.prepared()
        if not prep._have.all():  # (many exact evaluations at scattered cuts: gather every bucket once)
            prep._gather(np.ones(prep._have.size, dtype=bool))

        def mse_zs(z, ss):  # (step ss, zero point z: the scale grid with levels (k - z)·s, k = 0..top)
            ss = prep._to_unit(np.atleast_1d(np.asarray(ss, dtype=np.float64)))
            m = ss.size
            b = prep._eval(ss, 0.0, np.full(m, -z), np.full(m, top - z), 0)
            return prep._from_unit2(((b[:, 0] + b[:, 2]) + (b[:, 1] + b[:, 3])) / prep.n)
    else:
        t = prior.abs_quantile(1.0 - 1e-12)
        lo_x, hi_x = (0.0 if prior.nonnegative else -t), t

        def mse_zs(z, ss):
            ss = np.atleast_1d(ss)
            return np.array([clipping_mse(prior, (top - z) * v, bits, grid="affine", beta=-z * v).mse for v in ss])

    if hi_x <= 0:
        raise param_error("prior", func, "a prior with positive values for range='asymmetric'", repr(prior))
    span = (hi_x - min(lo_x, 0.0)) / top
    s_grid = np.geomspace(span * 1e-3, span * 1.05, n)

    def best_s(z):
        v = mse_zs(z, s_grid)
        i = int(np.argmin(v))
        return float(v[i]), float(s_grid[i]), i

    z_max = top - 1 if lo_x < 0 else 0
    coarse = np.unique(np.round(np.linspace(0, z_max, min(z_max + 1, 17))).astype(int))
    scan = {int(z): best_s(int(z)) for z in coarse}
    zb = min(scan, key=lambda z: scan[z][0])
    step = int(coarse[1] - coarse[0]) if coarse.size > 1 else 1
    for z in range(max(0, zb - step), min(z_max, zb + step) + 1):
        if z not in scan:
            scan[z] = best_s(z)
    cands = []
    for z in sorted(scan, key=lambda z: scan[z][0])[:3]:
        v0, s0, i = scan[z]
        a, b = s_grid[max(i - 1, 0)], s_grid[min(i + 1, n - 1)]
        res = minimize_scalar(lambda v, z=z: float(mse_zs(z, v)[0]), bounds=(a, b), method="bounded",
                              options={"xatol": 1e-12 * b, "maxiter": 500})
        cands.append((float(res.fun), float(res.x), z) if res.fun <= v0 else (v0, s0, z))
    cands.sort()
    _, step_s, z = cands[0]
    alpha, beta = (top - z) * step_s, -z * step_s + 0.0
    r = clipping_mse(prior, alpha, bits, grid="affine", beta=beta)
    return ClipResult(alpha, r.mse, r.clipping, r.rounding, alpha / prior.scale, bits, "affine", "exact",
                      np.array([alpha]), beta=beta)


def _search_range(prior: Prior, bits: int) -> tuple[float, float]:
    if isinstance(prior, Empirical):
        top = float(np.max(np.abs(prior.x)))
        if top == 0.0:
            raise param_error("prior", "optimal_clip", "samples that are not all zero", "all-zero samples")
        return top * 1e-3, top * (1.0 + 2.0 ** (2 - bits))
    # Beyond the (1 - 1e-14)-quantile of |X| there is no mass worth a level; the outermost level of
    # every grid is at least (1 - 2^(1-b))·α (int), so α up to top·(1 + 2^(2-b)) puts a level on
    # any value up to top (a level *on* a narrow outer mode can be optimal: multimodal priors).
    top = prior.abs_quantile(1.0 - 1e-14) * 1.05 * (1.0 + 2.0 ** (2 - bits))
    scale = prior.scale
    return min(1e-3 * scale, 1e-3 * top), top


def _polish(f, slope, x):
    """Locate a minimum found by Brent (to ~sqrt(eps)) to ~eps as the root of the exact slope."""
    from scipy.optimize import brentq

    for rel in (1e-7, 1e-5, 1e-3):
        lo, hi = x * (1 - rel), x * (1 + rel)
        s_lo, s_hi = slope(lo), slope(hi)
        if s_lo < 0 < s_hi:
            root = brentq(slope, lo, hi, xtol=4 * np.finfo(float).eps * x, rtol=4 * np.finfo(float).eps)
            return root if f(root) <= f(x) else x
        if s_lo >= 0 or s_hi <= 0:
            continue
    return x


def _global_min(f, bounds, n_grid):
    """Scan ``f`` on a log grid, refine every local minimum, return (best, all minima)."""
    from scipy.optimize import minimize_scalar

    lo, hi = bounds
    grid = np.geomspace(lo, hi, n_grid)
    vals = np.array([f(a) for a in grid])
    idx = [i for i in range(n_grid) if vals[i] <= vals[max(i - 1, 0)] and vals[i] <= vals[min(i + 1, n_grid - 1)]]
    # keep distinct basins: plateaus produce runs of equal values
    cands = []
    for i in idx:
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
        res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-12 * b, "maxiter": 500})
        x, v = (float(res.x), float(res.fun)) if res.fun <= vals[i] else (float(grid[i]), float(vals[i]))
        cands.append((v, x))
    cands.sort()
    best = cands[0][1]
    minima = np.unique(np.round([x for _, x in cands], 10))
    return best, minima

