"""Figures for clipping MSE, grids and optimal clips (ACIQ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._typing import ArrayLike, PriorLike
from ..quantizer import GRIDS, Quantizer
from ._common import _ax, _curves, _form, _mark_optimum

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..mse import MSEResult

__all__ = ["plot_grids", "plot_mse_vs_alpha"]


def plot_grids(bits: int = 3, alpha: float = 1.0, grids: Sequence[str] = GRIDS, *, ax: Axes | None = None,
               beta: float = -0.5) -> Axes:
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


def plot_mse_vs_alpha(prior: PriorLike | ArrayLike | None = None,
                      curves: Mapping[str, MSEResult | ArrayLike] | None = None, *,
                      bits: int | Sequence[int] | None = None, methods: str | Sequence[str] = ("exact", "aciq"),
                      alphas: ArrayLike | None = None, grid: str | None = None, ax: Axes | None = None,
                      mc: Mapping[str, tuple[ArrayLike, MSEResult]] | None = None, logy: bool = True) -> Axes:
    """MSE against the clip for several bit-widths and methods, each optimum marked; or given curves.

    Two call forms:

    * ``plot_mse_vs_alpha(prior, bits=[2, 3, 4], methods=("exact", "aciq"))`` computes
      :func:`qtheory.clipping_mse` per bit-width (one colour each) and method (solid, dashed,
      dotted in the order given) and marks each optimum (:func:`qtheory.optimal_clip` of that
      bit-width and method) with a dot. Without ``alphas`` the range is ``(0, 2·max α*]``.
    * ``plot_mse_vs_alpha(alphas, curves)`` draws computed curves ``{label: MSEResult or array}``
      at the clips ``alphas``, with optional Monte-Carlo points ``mc = {label: (alphas,
      MSEResult)}`` drawn with ±2 standard-error bars.

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior` (first form). In the second form the first argument is the
        clips of ``curves`` (or pass ``alphas=``).
    curves : dict, optional
        Second form: ``{label: MSEResult or array}``.
    bits : int or sequence of int
        First form: the bit-widths.
    methods : sequence of {"exact", "aciq"}
        First form: the MSE of each line style (``"aciq"`` needs ``grid="midrise"``).
    alphas : array_like, optional
        The clips (first form: chosen automatically when omitted).
    grid : str or None
        First form: the quantizer grid. ``None``: :func:`qtheory.optimal_clip`'s rule
        (``"midrise"`` for a prior, :data:`qtheory.DEFAULT_TENSOR_GRID` for samples).
    ax : matplotlib Axes, optional
    mc : dict, optional
        Second form: Monte-Carlo points.
    logy : bool
        Logarithmic MSE axis.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> ax = plot_mse_vs_alpha("laplace", bits=[2, 4])
    >>> sorted(round(float(line.get_xdata()[0]), 2) for line in ax.lines if line.get_gid() == "optimum")
    [2.83, 3.08, 5.03, 5.22]
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    func = "plot_mse_vs_alpha"
    form, clips = _form(func, prior, alphas, curves, "curves", {"mc": mc})
    if form == "given":
        return _draw_curves(clips, curves, ax, mc, logy)
    alphas, computed = _curves(prior, bits, alphas, grid, methods, func)
    ax = _ax(ax)
    bit_list = list(dict.fromkeys(b for b, _ in computed))
    meth_list = list(dict.fromkeys(m for _, m in computed))
    styles = ("-", "--", ":")
    names = {"exact": "exact", "aciq": "ACIQ model"}
    for (b, m), (r, opt) in computed.items():
        c = f"C{bit_list.index(b) % 10}"
        k = meth_list.index(m)
        ax.plot(alphas, r.mse, color=c, ls=styles[k % 3], lw=1.5,
                label=f"{b} bits, {names[m]}: α*={opt.alpha:.3g}")
        _mark_optimum(ax, opt, c, text=False)
    if logy:
        ax.set_yscale("log")
    ax.set_xlim(0.0, float(alphas.max()))
    ax.set_xlabel("clip α")
    ax.set_ylabel("MSE")
    ax.legend(fontsize=7)
    return ax


def _draw_curves(alphas, curves: dict, ax, mc, logy):
    """The second form of :func:`plot_mse_vs_alpha` (given curves), drawn as it always was."""
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
