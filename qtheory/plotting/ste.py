"""Figures for STE threshold gradients (TQT, LSQ, PACT, calibrated PACT).

Every function takes computed results (from :mod:`qtheory.ste`), draws on ``ax``/``axes``
(new ones when ``None``) and returns them; nothing here saves or shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._typing import ArrayLike
from ._common import _ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..ste import STEGrad, TrainResult

__all__ = ["plot_forward_backward", "plot_expected", "plot_training", "plot_stationary_ratio"]

_PARAM_TEX = {"theta": "θ", "s": "s", "alpha": "α"}
_NAMES = {"tqt": "TQT", "lsq": "LSQ", "pact": "PACT", "calibrated_pact": "calibrated PACT"}


def _axes(axes, n, figsize):
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(n, 1, figsize=figsize, sharex=True)
    return np.atleast_1d(axes)


def plot_forward_backward(x: ArrayLike, grad: STEGrad, *, title: str = "",
                          axes: np.ndarray | Sequence[Axes] | None = None) -> np.ndarray:
    """Three stacked panels for one fake-quantizer: ``q(x)``, the ``∂q/∂x`` box and
    ``∂q/∂(parameter)`` (TQT's sawtooth).

    Parameters
    ----------
    x : array_like
        Sorted inputs.
    grad : qtheory.ste.STEGrad
        The rule evaluated at ``x``.
    title : str
    axes : sequence of 3 Axes, optional

    Examples
    --------
    >>> import numpy as np
    >>> from qtheory import ste
    >>> x = np.linspace(-3, 3, 601)
    >>> axes = plot_forward_backward(x, ste.tqt(x, 1.0, 2), title="TQT")
    >>> [a.get_ylabel() for a in axes]
    ['q(x)', '∂q/∂x', '∂q/∂θ']
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    axes = _axes(axes, 3, (4, 6))
    x = np.asarray(x, float)
    p = _PARAM_TEX.get(grad.param, grad.param)
    axes[0].plot(x, grad.q, lw=1.5, color="C0")
    axes[0].plot(x, x, lw=0.6, ls=":", color="0.5")
    axes[0].set_ylabel("q(x)")
    axes[1].plot(x, grad.dq_dx, lw=1.5, color="C1")
    axes[1].set_ylim(-0.1, 1.15)
    axes[1].set_ylabel("∂q/∂x")
    axes[2].plot(x, grad.dq_dparam, lw=1.2, color="C2")
    axes[2].axhline(0, color="k", lw=0.4)
    axes[2].set_ylabel(f"∂q/∂{p}")
    axes[2].set_xlabel("x")
    for a in axes:
        a.grid(alpha=0.3)
    if title:
        axes[0].set_title(title)
    return axes


def plot_expected(theta: ArrayLike, curves: Mapping[str, ArrayLike], *, kind: str = "grad",
                  marks: Mapping[str, tuple[float, float]] | None = None,
                  steps: Mapping[str, ArrayLike] | None = None, normalize: bool = True,
                  linthresh: float | None = None, ax: Axes | None = None) -> Axes:
    """Expected loss or expected STE gradient against ``θ = log2 t``.

    Parameters
    ----------
    theta : array_like
        The grid of ``θ``.
    curves : dict
        ``{label: values}`` (one curve per bit-width, say).
    kind : {"grad", "loss"}
        Axis labelling: gradients are normalised by their largest magnitude (sign kept) so several
        bit-widths share one axis; losses are drawn on a log axis.
    marks : dict, optional
        ``{label: (stationary θ, MSE-optimal θ)}``: a dot on the curve at the stationary point
        and a dashed vertical line at the MSE optimum.
    steps : dict, optional
        ``{label: values}`` of the power-of-2 (step-function) version, drawn dotted.
    normalize : bool
        Normalise gradient curves (ignored for losses).
    linthresh : float, optional
        Draw gradients on a symmetric-log axis with this linear range around 0 (useful without
        normalising: gradients shrink ~4× per bit, and the zero crossings stay visible).
    ax : Axes, optional

    Examples
    --------
    >>> import numpy as np
    >>> th = np.linspace(0, 2, 5)
    >>> ax = plot_expected(th, {"b=4": np.linspace(-1, 1, 5)}, marks={"b=4": (1.0, 1.1)})
    >>> ax.get_ylabel()
    'E[∂L/∂θ] / max|E[∂L/∂θ]|'
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    ax = _ax(ax, (6, 4))
    theta = np.asarray(theta, float)
    for i, (label, vals) in enumerate(curves.items()):
        vals = np.asarray(vals, float)
        scale = np.max(np.abs(vals)) if (kind == "grad" and normalize) else 1.0
        ax.plot(theta, vals / scale, color=f"C{i}", lw=1.5, label=label)
        if steps and label in steps:
            ax.plot(theta, np.asarray(steps[label], float) / scale, color=f"C{i}", lw=0.9, ls=":",
                    label=f"{label}, power-of-2 scale")
        if marks and label in marks:
            th_st, th_opt = marks[label]
            if np.isfinite(th_opt):
                ax.axvline(th_opt, color=f"C{i}", ls="--", lw=0.8)
            if np.isfinite(th_st):
                y0 = 0.0 if kind == "grad" else np.interp(th_st, theta, vals)
                ax.plot([th_st], [y0], "o", color=f"C{i}", ms=5)
    if kind == "grad":
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("E[∂L/∂θ] / max|E[∂L/∂θ]|" if normalize else "E[∂L/∂θ]")
        if linthresh is not None:
            ax.set_yscale("symlog", linthresh=linthresh)
    else:
        ax.set_yscale("log")
        ax.set_ylabel("E[(q − x)²]")
    ax.set_xlabel("θ = log2 t")
    ax.grid(alpha=0.3)
    return ax


def plot_training(results: Mapping[str, TrainResult], *, y: str = "param", offset: Mapping[str, float] | None = None,
                  hlines: Iterable[float] = (), ax: Axes | None = None) -> Axes:
    """Trajectories ``{label: TrainResult}`` against the step.

    ``y`` is the :class:`~qtheory.ste.TrainResult` field to draw (``"param"``, ``"clip"``,
    ``"loss"``); ``offset`` subtracts a per-label constant (e.g. ``log2 c`` for the scale-invariance
    check); ``hlines`` draws horizontal reference lines (e.g. the integer boundary).

    Examples
    --------
    >>> from qtheory import ste
    >>> r = ste.train_threshold("tqt", "gaussian", 4, init=0.0, steps=50, rng=0)
    >>> ax = plot_training({"Adam, log θ": r}, hlines=[1.0])
    >>> ax.get_xlabel()
    'step'
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    ax = _ax(ax, (6, 4))
    for i, (label, res) in enumerate(results.items()):
        vals = np.asarray(getattr(res, y), float)
        if offset and label in offset:
            vals = vals - offset[label]
        ax.plot(np.arange(vals.size), vals, lw=1.0, color=f"C{i}", label=label)
    for h in hlines:
        ax.axhline(h, color="k", ls="--", lw=0.7)
    ax.set_xlabel("step")
    ax.set_ylabel({"param": "parameter", "clip": "threshold t", "loss": "batch loss"}.get(y, y))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_stationary_ratio(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Stationary threshold / MSE-optimal threshold against bits, one line per
    (prior, estimator), from :func:`qtheory.ste.stationary_table`.

    Examples
    --------
    >>> from qtheory import ste
    >>> ax = plot_stationary_ratio(ste.stationary_table(["gaussian"], [2, 3], estimators=["tqt"]))
    >>> ax.get_ylabel()
    'stationary clip / MSE-optimal clip'
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    ax = _ax(ax, (6, 4))
    markers = {"tqt": "o", "lsq": "s", "pact": "x", "calibrated_pact": "^"}
    priors = list(dict.fromkeys(table["prior"]))
    for (prior, est), sub in table.groupby(["prior", "estimator"], sort=False):
        sub = sub.dropna(subset=["clip_ratio"])
        if sub.empty:
            continue
        hollow = est == "calibrated_pact"     # coincides with LSQ (unsigned): draw it open and larger
        ax.plot(sub["bits"], sub["clip_ratio"], marker=markers.get(est, "o"), ms=10 if hollow else 5,
                mfc="none" if hollow else None, color=f"C{priors.index(prior)}",
                ls={"tqt": "-", "lsq": "--"}.get(est, ":"), label=f"{prior}, {_NAMES.get(est, est)}")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xlabel("bits")
    ax.set_ylabel("stationary clip / MSE-optimal clip")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
