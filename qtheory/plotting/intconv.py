"""Figures for the integer convolution reference: predicted vs measured layer SQNR."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._common import _ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["plot_sqnr_vs_clip", "plot_sqnr_gap"]


def plot_sqnr_vs_clip(df: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
                      legend: bool = True) -> Axes:
    """Predicted (lines) and measured (markers) output SQNR against the clip ratio, one colour per
    bit-width, from a :func:`qtheory.intconv.sqnr_sweep` table.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"bits": [4, 4, 8, 8], "clip_ratio": [2.0, 4.0, 2.0, 4.0],
    ...                    "predicted_db": [8.0, 14.0, 8.1, 17.0], "measured_db": [8.1, 13.9, 8.0, 17.1]})
    >>> ax = plot_sqnr_vs_clip(df)
    >>> len(ax.lines)
    4
    """
    ax = _ax(ax)
    for i, (b, g) in enumerate(df.groupby("bits")):
        g = g.sort_values("clip_ratio")
        ax.plot(g.clip_ratio, g.predicted_db, "-", color=f"C{i}", lw=1.5, label=f"{b} bits predicted")
        ax.plot(g.clip_ratio, g.measured_db, "o", color=f"C{i}", ms=5, mfc="none", label=f"{b} bits measured")
    ax.set_xlabel("clip ratio r: clip α = r·σ (activations, σ of Z before ReLU) and α = r·b (Laplace weights)")
    ax.set_ylabel("output SQNR (dB)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=7, ncol=2)
    return ax


def plot_sqnr_gap(df: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
                  tol: float = 0.5) -> Axes:
    """Measured minus predicted SQNR (dB) against the clip ratio, one colour per bit-width,
    with the ``±tol`` band.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"bits": [4, 4], "clip_ratio": [2.0, 4.0], "gap_db": [0.1, -0.2]})
    >>> ax = plot_sqnr_gap(df)
    >>> ax.get_ylabel()
    'measured − predicted (dB)'
    """
    ax = _ax(ax)
    for i, (b, g) in enumerate(df.groupby("bits")):
        g = g.sort_values("clip_ratio")
        ax.plot(g.clip_ratio, g.gap_db, "o-", color=f"C{i}", ms=4, lw=1, label=f"{b} bits")
    ax.axhspan(-tol, tol, color="0.85", zorder=0, label=f"±{tol} dB")
    ax.axhline(0.0, color="k", lw=0.6)
    lim = max(1.0, float(np.nanmax(np.abs(df.gap_db))) * 1.1)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("clip ratio r = α / σ (activations), α / b (Laplace weights)")
    ax.set_ylabel("measured − predicted (dB)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, ncol=3)
    return ax
