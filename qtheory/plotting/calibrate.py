"""Figures for :mod:`qtheory.calibrate`: calibrators against the exact optimum, and one MSE curve
with every calibrator's pick.

Functions take computed results (tables, arrays) and an optional ``ax``; they return the Axes.
"""

from __future__ import annotations

import numpy as np

from ._common import _ax

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


def plot_calibrator_excess(table, distribution: str, *, ax=None, legend: bool = True):
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


def plot_calibrator_grid(table, *, ncols: int = 4, axes=None):
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


def plot_mse_curve(alphas, result, *, optimum=None, picks: dict | None = None, ax=None, title: str | None = None):
    """An MSE curve with its clipping and rounding parts, the optimum and calibrators' picks.

    Parameters
    ----------
    alphas : array_like
        Clips of the curve.
    result : qtheory.MSEResult
        ``clipping_mse`` (or ``EmpiricalMSE.mse``) at ``alphas``.
    optimum : qtheory.ClipResult, optional
    picks : dict, optional
        ``{calibrator: alpha}``; drawn as vertical lines.
    """
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
    ax.set_xlabel("clip α")
    ax.set_ylabel("mean squared error")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return ax
