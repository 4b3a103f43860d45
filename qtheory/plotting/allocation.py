"""Figures of per-channel bit allocation and bias correction (Banner et al. 2019).

Each function takes results computed by :mod:`qtheory.allocation`, draws on ``ax`` (a new figure
when ``None``) and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._common import _ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..allocation import TwoChannelExperiment

__all__ = ["plot_two_channel", "plot_allocation_mse", "plot_bias_correction", "plot_layer_channels"]

_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:gray")


_FIGSIZE = (6.4, 4.4)


def plot_two_channel(experiments: Sequence[TwoChannelExperiment], *, ax: Axes | None = None, exact: bool = False,
                     title: str | None = None) -> Axes:
    """Total MSE vs share of bins for channel 1 (list of :class:`~qtheory.allocation.TwoChannelExperiment`).

    Draws the model curve, the Monte-Carlo points with 1.96·stderr error bars, the exact values at
    the integer splits (``exact=True``, a solid line through them) and the model optimum
    ``p* = r/(1+r)`` as a dotted vertical line.
    """
    ax = _ax(ax, _FIGSIZE)
    for e, col in zip(experiments, _COLORS, strict=False):
        a1, a2 = e.alphas
        r = (a1 / a2) ** (2.0 / 3.0)
        label = rf"$\alpha_1^{{2/3}}:\alpha_2^{{2/3}} = {r:.2g}$"
        ax.plot(e.p_curve, e.model_curve, color=col, ls="--" if exact else "-", lw=1.6,
                label=label + (" model" if exact else " (model = exact)"))
        if exact:
            ax.plot(e.p_points, e.exact_points, color=col, lw=1.2, label="exact (per-bin integration)")
        ax.errorbar(e.p_points, e.mc_points, yerr=1.96 * e.mc_stderr, fmt="o", ms=3, color=col, mfc="white",
                    capsize=2, lw=0.8, label="Monte Carlo ±1.96 s.e.")
        ax.axvline(e.p_star, color=col, ls=":", lw=1.2)
        ax.annotate(f"p* = {e.p_star:.3f}", (e.p_star, 0.97), xycoords=("data", "axes fraction"), color=col,
                    ha="center", va="top", fontsize=8, rotation=90,
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none"))
    ax.set_yscale("log")
    ax.set_xlabel("share p of the bins given to channel 1")
    ax.set_ylabel("total MSE (sum over the two channels)")
    ax.set_title(title or f"Two channels sharing {experiments[0].total_bins} bins")
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels, strict=True):
        seen.setdefault(lab, h)
    ax.legend(seen.values(), seen.keys(), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    ax.grid(alpha=0.3, which="both")
    return ax


_METHOD_LABELS = {
    "uniform": "uniform bits",
    "closed_form_bins": r"closed form, bins budget ($2^M\propto\alpha^{2/3}$, paper)",
    "closed_form_bits": r"closed form, bits budget ($2^M\propto\alpha$)",
    "official": "official code (iterated, clamped)",
    "optimal": "exact integer optimum (DP/greedy)",
}


def plot_allocation_mse(df: pd.DataFrame, *, ax: Axes | None = None, relative_to: str | None = "uniform",
                        title: str | None = None) -> Axes:
    """MSE vs average bit-width per allocation method (a frame from ``allocation_experiment``).

    Lines are the exact MSE, markers with error bars the Monte-Carlo estimates. With
    ``relative_to`` the values are divided by that method's exact MSE at the same target.
    """
    ax = _ax(ax, _FIGSIZE)
    ref = None
    if relative_to is not None:
        ref = df[df["method"] == relative_to].set_index("target_bits")["mse"]
    for (meth, d), col in zip(df.groupby("method", sort=False), _COLORS, strict=False):
        d = d.sort_values("target_bits")
        scale = ref.loc[d["target_bits"]].to_numpy() if ref is not None else 1.0
        ax.plot(d["mean_bits"], d["mse"] / scale, "-", color=col, lw=1.5, label=_METHOD_LABELS.get(meth, meth))
        ax.errorbar(d["mean_bits"], d["mc_mse"] / scale, yerr=1.96 * d["mc_stderr"] / scale, fmt="o", ms=3.5,
                    color=col, mfc="white", capsize=2, lw=0.8)
    ax.errorbar([], [], yerr=[], fmt="o", color="k", mfc="white", label="Monte Carlo ±1.96 s.e.")
    ax.set_xlabel("average bit-width (bits per channel)")
    if ref is not None:
        ax.set_ylabel(f"MSE / MSE of {relative_to} allocation")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("MSE (mean over channels)")
    ax.set_title(title or "Per-channel bit allocation")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


_MODE_LABELS = {"none": "no correction", "mean": "mean correction (-bcw, eq. 12 μ)",
                "variance": "variance correction (-vcw)", "both": "mean + variance",
                "paper": "eq. 12–13 literally (ξ·(W_q+μ))"}


def plot_bias_correction(df: pd.DataFrame, *, quantity: str = "mse", relative: bool = False, ax: Axes | None = None,
                         title: str | None = None) -> Axes:
    """Output error vs bit-width per correction mode (a frame from ``bias_correction_experiment``).

    ``quantity="mse"`` plots ``E[(y − y_q)²]``, ``"shift2"`` the squared output shift. Analytic
    values are lines, Monte-Carlo values markers with 1.96·stderr error bars. With ``relative``
    everything is divided by the analytic value without correction at the same bit-width.
    """
    ax = _ax(ax, _FIGSIZE)
    ref = df[df["mode"] == "none"].set_index("bits")[quantity]
    for (mode, d), col in zip(df.groupby("mode", sort=False), _COLORS, strict=False):
        d = d.sort_values("bits")
        scale = ref.loc[d["bits"]].to_numpy(dtype=float) if relative else 1.0
        ana = d[quantity].to_numpy(dtype=float) / scale
        mc = d["mc_" + quantity].to_numpy(dtype=float) / scale
        se = d["mc_" + quantity + "_stderr" if quantity == "shift2" else "mc_stderr"].to_numpy(dtype=float) / scale
        if quantity == "shift2" and np.all(np.nan_to_num(mc) < 1e-20):
            continue  # exactly zero after mean correction: nothing to draw on a log axis
        if np.any(np.isfinite(ana)):
            ax.plot(d["bits"], ana, "-", color=col, lw=1.5, label=_MODE_LABELS.get(mode, mode) + " — analytic")
        ax.errorbar(d["bits"] + 0.04 * (list(_MODE_LABELS).index(mode) - 2), mc, yerr=1.96 * se, fmt="o", ms=3.5,
                    color=col, mfc="white", capsize=2, lw=0.8, label=_MODE_LABELS.get(mode, mode) + " — Monte Carlo")
    if not relative:
        ax.set_yscale("log")
    ax.set_xlabel("weight bits")
    label = "E[(y − y_q)²] per output" if quantity == "mse" else "squared output shift (E_x[y − y_q])²"
    ax.set_ylabel(label + (" / uncorrected (analytic)" if relative else ""))
    ax.set_title(title or "Bias correction on a linear layer's output")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return ax


def plot_layer_channels(channels: pd.DataFrame, configs: Iterable[str], *, ax: Axes | None = None,
                        title: str | None = None) -> Axes:
    """Per-channel weight MSE vs channel std for chosen configurations (a frame from ``weight_report``).

    One marker per channel and no connecting lines: channels are independent, and their MSE is
    not a function of the std alone (it depends on each channel's sample), so a line through
    them sorted by std would suggest a curve that does not exist.
    """
    ax = _ax(ax, _FIGSIZE)
    for name, col, mk in zip(configs, _COLORS, "os^vD", strict=False):
        d = channels[channels["config"] == name]
        ax.plot(d["std"], d["mse"] / d["std"] ** 2, mk, ls="none", ms=3.5, mfc="none", color=col, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("channel standard deviation")
    ax.set_ylabel("channel MSE / channel variance")
    ax.set_title(title or "Per-channel weight error")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return ax
