"""Figures for :mod:`qtheory.classical`: the distortion ladder.

Functions take computed results and an optional ``ax``; they return the Axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._common import _ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["plot_distortion_ladder", "RD_KIND_TEXT"]

_RUNGS = [
    ("max", "no clipping (max)", "tab:gray", "x", "-"),
    ("aciq", "ACIQ clip", "tab:blue", "o", "-"),
    ("uniform_optimal", "exact-optimal uniform clip", "black", "*", "-"),
    ("lloyd_max", "Lloyd–Max (non-uniform)", "tab:green", "^", "-"),
    ("panter_dite", "Panter–Dite asymptote", "tab:green", None, ":"),
    ("rate_distortion", "rate–distortion bound", "tab:red", "s", "--"),
]

#: how the rate–distortion rung is labelled, by ``rd_kind``: one name, "rate–distortion bound",
#: qualified by what it is for this prior
RD_KIND_TEXT = {"exact": "exact D(R)", "shannon_lower_bound": "Shannon lower bound on D(R)"}


def plot_distortion_ladder(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
                           relative: bool = False, legend: bool = True) -> Axes:
    """MSE vs bits for the rungs of :func:`qtheory.classical.distortion_ladder`.

    ``relative=True`` plots each rung relative to the Lloyd–Max MSE (dB) instead. The
    rate–distortion rung is labelled "rate–distortion bound (exact D(R))" for a Gaussian and
    "rate–distortion bound (Shannon lower bound on D(R))" otherwise.
    """
    import numpy as np

    ax = _ax(ax, (6, 4.2))
    b = table["bits"].to_numpy()
    ref = table["lloyd_max"].to_numpy()
    for col, label, color, marker, ls in _RUNGS:
        if col not in table or np.all(np.isnan(table[col].to_numpy(dtype=float))):
            continue
        y = table[col].to_numpy(dtype=float)
        if col == "rate_distortion" and "rd_kind" in table and table["rd_kind"].iloc[0] in RD_KIND_TEXT:
            label = f"{label} ({RD_KIND_TEXT[table['rd_kind'].iloc[0]]})"
        if relative:
            y = 10 * np.log10(y / ref)
        ax.plot(b, y, color=color, marker=marker, ls=ls, label=label, lw=1.4, ms=5)
    if relative:
        ax.set_ylabel("MSE relative to Lloyd–Max (dB)")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("mean squared error")
    ax.set_xlabel("bits (rate R)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize=7)
    return ax
