"""Figures for :mod:`qtheory.calibrate`: calibrators against the exact optimum, and one MSE curve
with every calibrator's pick.

Functions take computed results (tables, arrays) and an optional ``ax``; they return the Axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_calibrator_excess", "plot_calibrator_grid", "plot_mse_curve", "CALIBRATOR_STYLE"]

#: colour / marker per calibrator (qtheory's exact optimum is the black reference)
CALIBRATOR_STYLE = {
    "max": ("tab:gray", "x"),
    "percentile": ("tab:brown", "v"),
    "entropy": ("tab:purple", "s"),
    "mse_sweep": ("tab:green", "^"),
    "octav": ("tab:orange", "D"),
    "aciq_laplace": ("tab:blue", "o"),
    "aciq_gaussian": ("tab:cyan", "o"),
    "aciq_auto": ("tab:olive", "P"),
    "qtheory": ("black", "*"),
}


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def plot_calibrator_excess(table, distribution: str, *, ax=None, legend: bool = True):
    """Excess MSE over the exact optimum (dB) vs bits, one line per calibrator, for one
    distribution of a :func:`qtheory.calibrate.calibrator_table`."""
    ax = _ax(ax)
    t = table[table["distribution"] == distribution]
    for name, g in t.groupby("calibrator", sort=False):
        color, marker = CALIBRATOR_STYLE.get(name, (None, "o"))
        g = g.sort_values("bits")
        ax.plot(g["bits"], g["excess_db"], marker=marker, color=color, label=name, lw=1.2, ms=4)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("bits")
    ax.set_ylabel("MSE above the exact optimum (dB)")
    grid = t["grid"].iloc[0] if len(t) else ""
    ax.set_title(f"{distribution} ({grid} grid)")
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7, ncol=2)
    return ax


def plot_calibrator_grid(table, *, ncols: int = 4):
    """All distributions of a calibrator table, one panel each; returns the array of Axes."""
    import matplotlib.pyplot as plt

    dists = list(dict.fromkeys(table["distribution"]))
    nrows = -(-len(dists) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False, sharey=True)
    for ax, d in zip(axes.flat, dists, strict=False):
        plot_calibrator_excess(table, d, ax=ax, legend=False)
    for ax in axes.flat[len(dists):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", ncol=2, fontsize=8, frameon=False,
               bbox_to_anchor=(0.98, 0.06))
    fig.suptitle("Calibrators on the same samples: MSE above the exact optimum")
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
