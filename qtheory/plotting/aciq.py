"""Figures for clipping MSE, grids and optimal clips (ACIQ)."""

from __future__ import annotations

import numpy as np

from ..quantizer import GRIDS, Quantizer
from ._common import _ax

__all__ = ["plot_grids", "plot_mse_vs_alpha"]


def plot_grids(bits: int = 3, alpha: float = 1.0, grids=GRIDS, *, ax=None, beta: float = -0.5):
    """Where each grid puts its levels (dots), thresholds (ticks) and overload points (brackets) relative to ±α.

    Examples
    --------
    >>> ax = plot_grids(3)
    >>> len(ax.get_yticks())
    6
    """
    ax = _ax(ax)
    for row, g in enumerate(grids):
        q = Quantizer(bits, alpha, g, beta=beta * alpha if g == "affine" else None)
        y = len(grids) - 1 - row
        ax.plot(q.levels, np.full(q.n_levels, y), "o", ms=6, color=f"C{row}")
        ax.plot(q.thresholds, np.full(q.thresholds.size, y), "|", ms=12, color="0.5")
        lo, hi = q.overload
        ax.plot([lo, hi], [y, y], "-", lw=1, color=f"C{row}", alpha=0.5)
        ax.plot([lo, hi], [y, y], marker=(2, 0, 0), ms=14, ls="none", color=f"C{row}")
        label = f"{g}: s={q.scale:.3g}, k∈[{q.qmin},{q.qmax}]"
        ax.text(1.32 * alpha, y, label, va="center", fontsize=8)
    for v in (-alpha, alpha):
        ax.axvline(v, color="k", ls="--", lw=0.8)
    ax.axvline(0, color="k", lw=0.4)
    ax.set_yticks(range(len(grids)), list(reversed(grids)))
    ax.set_xlim(-1.35 * alpha, 2.3 * alpha)
    ax.set_xticks([-alpha, -alpha / 2, 0, alpha / 2, alpha], ["-α", "-α/2", "0", "α/2", "α"])
    ax.set_title(f"{bits}-bit grids: levels (dots), thresholds (|), overload points (end bars)")
    return ax


def plot_mse_vs_alpha(alphas, curves: dict, *, ax=None, mc: dict | None = None,
                      logy: bool = True):
    """MSE curves ``{label: MSEResult or array}`` against the clip; optional Monte-Carlo points
    ``{label: (alphas, MSEResult)}`` drawn with ±2 standard-error bars."""
    ax = _ax(ax)
    for i, (label, r) in enumerate(curves.items()):
        y = getattr(r, "mse", r)
        ax.plot(alphas, y, label=label, color=f"C{i % 10}", ls="-" if i % 2 == 0 else "--")
    for label, (a, r) in (mc or {}).items():
        ax.errorbar(a, r.mse, yerr=2 * np.asarray(r.stderr), fmt="o", ms=3, capsize=2, label=label,
                    color="k", alpha=0.7)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("clip α")
    ax.set_ylabel("MSE")
    ax.legend(fontsize=7)
    return ax
