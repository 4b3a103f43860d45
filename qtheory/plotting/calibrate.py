"""Figures for :mod:`qtheory.calibrate`: calibrators against the exact optimum, and one MSE curve
with every calibrator's pick.

Functions take computed results (tables, arrays) and an optional ``ax``; they return the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._typing import ArrayLike, PriorLike
from ._common import _ax, _curves, _form, _mark_optimum

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..mse import MSEResult
    from ..optimal import ClipResult

__all__ = ["plot_calibrator_excess", "plot_calibrator_grid", "plot_mse_curve", "CALIBRATOR_STYLE", "EXCESS_FLOOR_PCT"]

#: colour / marker per calibrator (qtheory's exact optimum is the black reference)
CALIBRATOR_STYLE = {
    "max": ("tab:gray", "x"),
    "percentile": ("tab:brown", "v"),
    "entropy": ("tab:purple", "s"),
    "mse": ("tab:green", "^"),
    "octav": ("tab:orange", "D"),
    "aciq": ("tab:blue", "o"),
    "aciq(family=laplace)": ("tab:blue", "o"),
    "aciq(family=gaussian)": ("tab:cyan", "o"),
    "aciq(family=auto)": ("tab:olive", "P"),
    "exact": ("black", "*"),
}


#: excess MSE below this (percent) is drawn at this floor (the exact optimum itself is 0)
EXCESS_FLOOR_PCT = 1e-4


def plot_calibrator_excess(table: pd.DataFrame, distribution: str, *, ax: Axes | None = None,
                           legend: bool = True) -> Axes:
    """MSE above the exact optimum, ``100·(MSE/MSE_opt − 1)`` in percent on a log axis, vs bits,
    one line per calibrator, for one distribution of a :func:`qtheory.calibrate.calibrator_table`.

    The exact optimum (``exact``) is the reference (0 %) and is not drawn; values below
    :data:`EXCESS_FLOOR_PCT` are drawn at that floor (the grey band).
    """
    ax = _ax(ax)
    t = table[(table["distribution"] == distribution) & (table["calibrator"] != "exact")]
    for name, g in t.groupby("calibrator", sort=False):
        color, marker = CALIBRATOR_STYLE.get(name, (None, "o"))
        g = g.sort_values("bits")
        y = np.maximum(100.0 * (g["rel_mse"].to_numpy() - 1.0), EXCESS_FLOOR_PCT)
        ax.plot(g["bits"], y, marker=marker, color=color, label=name, lw=1.2, ms=5, alpha=0.9)
    ax.set_yscale("log")
    ax.axhspan(EXCESS_FLOOR_PCT * 0.5, EXCESS_FLOOR_PCT * 1.5, color="0.85", zorder=0)
    ax.set_ylim(EXCESS_FLOOR_PCT * 0.5, None)
    ax.set_xlabel("bits")
    ax.set_ylabel("MSE above the exact optimum (%)")
    grid = t["grid"].iloc[0] if len(t) else ""
    ax.set_title(f"{distribution} ({grid} grid)")
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, ncol=2)
    return ax


def plot_calibrator_grid(table: pd.DataFrame, *, ncols: int = 4,
                         axes: np.ndarray | Sequence[Axes] | None = None) -> np.ndarray:
    """All distributions of a calibrator table, one panel each, and a legend panel.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`qtheory.calibrate.calibrator_table`.
    ncols : int
        Panels per row of the new figure (ignored when ``axes`` is given).
    axes : array of Axes, optional
        At least one more Axes than there are distributions (the last used one holds the legend;
        any further ones are switched off). New ones, sharing y, when ``None``.

    Returns
    -------
    numpy.ndarray of Axes
        2-D, as from ``plt.subplots(..., squeeze=False)`` (``axes`` as given otherwise); the Figure
        is ``axes.flat[0].figure``.
    """
    dists = list(dict.fromkeys(table["distribution"]))
    if axes is None:
        import matplotlib.pyplot as plt

        nrows = -(-(len(dists) + 1) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False, sharey=True)
    else:
        axes = np.asarray(axes, dtype=object)
        if axes.size < len(dists) + 1:
            raise ValueError(f"The 'axes' parameter of plot_calibrator_grid must hold at least {len(dists) + 1} "
                             f"Axes (one per distribution and one for the legend). Got {axes.size} instead.")
        fig = axes.flat[0].figure
    for ax, d in zip(axes.flat, dists, strict=False):
        plot_calibrator_excess(table, d, ax=ax, legend=False)
    for ax in axes.flat[len(dists):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[len(dists)].legend(handles, labels, loc="center", ncol=1, fontsize=8, frameon=False,
                                 title=f"calibrator (grey band: ≤ {EXCESS_FLOOR_PCT:g} %)", title_fontsize=8)
    fig.suptitle("Calibrators on the same samples: exact MSE of each clip above the exact optimum")
    fig.tight_layout()
    return axes


def plot_mse_curve(prior: PriorLike | ArrayLike | None = None, result: MSEResult | None = None, *,
                   bits: int | Sequence[int] | None = None, alphas: ArrayLike | None = None, grid: str | None = None,
                   method: str = "exact", parts: bool | None = None, optimum: ClipResult | None = None,
                   picks: Mapping[str, float] | None = None, ax: Axes | None = None,
                   title: str | None = None) -> Axes:
    """MSE curves against the clip with their optima; or one computed curve with its parts and picks.

    Two call forms:

    * ``plot_mse_curve(prior, bits=[2, 3, 4])`` computes and draws one MSE curve per bit-width
      (:func:`qtheory.clipping_mse`) and marks each optimum (:func:`qtheory.optimal_clip`) with a
      dot and its α*. Without ``alphas`` the range is ``(0, 2·max α*]``, so every optimum lies
      inside it.
    * ``plot_mse_curve(alphas, result, optimum=..., picks=...)`` draws a curve computed by the
      caller (e.g. an :class:`~qtheory.empirical.EmpiricalMSE` curve), its optimum as a star.

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior` (first form). In the second form the first argument is the
        clips of ``result`` (or pass ``alphas=``).
    result : qtheory.MSEResult, optional
        The computed curve at ``alphas`` (second form).
    bits : int or sequence of int
        Bit-widths, one curve each (first form).
    alphas : array_like, optional
        Clips of the curves (first form: chosen automatically when omitted).
    grid : str or None
        Quantizer grid (first form), one of :data:`qtheory.GRIDS`. ``None``: :func:`qtheory.optimal_clip`'s rule
        (``"midrise"`` for a prior, :data:`qtheory.DEFAULT_TENSOR_GRID` for samples).
    method : {"exact", "aciq"}
        MSE and optimum of the first form (``"aciq"``: ACIQ's model and its optimum).
    parts : bool, optional
        Also draw the clipping and rounding parts (dashed, dotted). Default: with one bit-width
        (always in the second form).
    optimum : qtheory.ClipResult, optional
        Second form: the optimum to mark.
    picks : dict, optional
        ``{calibrator: alpha}``; drawn as vertical lines.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> ax = plot_mse_curve("gaussian", bits=[2, 3, 4])
    >>> [round(float(line.get_xdata()[0]), 3) for line in ax.lines if line.get_gid() == "optimum"]
    [1.991, 2.344, 2.682]
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    func = "plot_mse_curve"
    form, clips = _form(func, prior, alphas, result, "result", {"optimum": optimum})
    if form == "given":
        return _draw_curve(clips, result, optimum, picks, ax, title)
    alphas, curves = _curves(prior, bits, alphas, grid, [method], func)
    ax = _ax(ax)
    show_parts = len(curves) == 1 if parts is None else bool(parts)
    tot = []
    for i, ((b, _), (r, opt)) in enumerate(curves.items()):
        c = f"C{i % 10}"
        ax.plot(alphas, r.mse, color=c, lw=2, label=f"{b} bits: α*={opt.alpha:.3g}, MSE={opt.mse:.3g}")
        if show_parts:
            ax.plot(alphas, r.clipping, color=c, lw=1, ls="--", label=f"{b} bits: clipping part")
            ax.plot(alphas, r.rounding, color=c, lw=1, ls=":", label=f"{b} bits: rounding part")
        _mark_optimum(ax, opt, c)
        tot.append(np.asarray(r.mse, dtype=float))
    for name, alpha in (picks or {}).items():
        color, _ = CALIBRATOR_STYLE.get(name, ("tab:gray", None))
        ax.axvline(alpha, color=color, lw=1, alpha=0.8, label=f"{name} {alpha:.3g}")
    tot = np.concatenate(tot)
    ax.set_yscale("log")
    ax.set_ylim(np.nanmin(tot) * (0.05 if show_parts else 0.3), np.nanmax(tot) * 2.0)
    ax.set_xlim(0.0, float(alphas.max()))
    return _finish_mse_axes(ax, title)


def _finish_mse_axes(ax, title):
    """Axis labels, title, grid and legend of both forms of :func:`plot_mse_curve`."""
    ax.set_xlabel("clip α")
    ax.set_ylabel("mean squared error")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def _draw_curve(alphas, result, optimum, picks, ax, title):
    """The second form of :func:`plot_mse_curve` (a computed curve), drawn as it always was."""
    ax = _ax(ax)
    a = np.asarray(alphas)
    ax.plot(a, result.mse, color="black", lw=2, label="MSE")
    ax.plot(a, result.clipping, color="tab:red", lw=1, ls="--", label="clipping part")
    ax.plot(a, result.rounding, color="tab:blue", lw=1, ls="--", label="rounding part")
    if optimum is not None:
        ax.plot([optimum.alpha], [optimum.mse], marker="*", ms=14, color="gold", mec="black", zorder=5,
                label=f"optimum α={optimum.alpha:.3g}")
    for name, alpha in (picks or {}).items():
        color, _ = CALIBRATOR_STYLE.get(name, ("tab:gray", None))
        ax.axvline(alpha, color=color, lw=1, alpha=0.8, label=f"{name} {alpha:.3g}")
    ax.set_yscale("log")
    tot = np.asarray(result.mse, dtype=float)
    ax.set_ylim(np.nanmin(tot) * 0.05, np.nanmax(tot) * 2.0)  # the parts may fall to ~0
    return _finish_mse_axes(ax, title)
