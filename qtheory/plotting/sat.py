"""Figures for the SAT variance rules (arXiv v1 argument: softmax saturation, gradient scale).

Every function takes a table computed by :mod:`qtheory.sat`, draws on ``ax`` (a new figure when
``None``) and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._common import _ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..sat import NetworkResult

__all__ = [
    "plot_clamped_variance",
    "plot_clamp_error",
    "plot_variance_ratio",
    "plot_logit_vs_bits",
    "plot_depth",
    "plot_gradient_flow",
    "plot_pact_error",
]

_VERSION = "SAT arXiv v1 rules"


_FIGSIZE = (6.4, 4.2)


def plot_clamped_variance(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """``Var[Ŵ]`` vs N (log–log): exact (lines), extreme-value (dashed), Monte Carlo (±2 SE).

    ``table`` is :func:`qtheory.sat.clamp_variance_table`.

    Examples
    --------
    >>> from qtheory import sat
    >>> t = sat.clamp_variance_table((64, 640), (0.05,), mc_elements=0)
    >>> ax = plot_clamped_variance(t)
    >>> ax.get_xscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    for i, (s, g) in enumerate(table.groupby("sigma", sort=True)):
        c = f"C{i}"
        ax.plot(g.n, g.exact, "-", color=c, label=f"σ = {s:g}: exact")
        ax.plot(g.n, g.extreme, "--", color=c, label=f"σ = {s:g}: extreme value E[tanh²W]/tanh²(σu_N)")
        m = g[np.isfinite(g.mc)]
        if len(m):
            ax.errorbar(m.n, m.mc, yerr=2 * m.mc_stderr, fmt="o", ms=3.5, color=c, capsize=2,
                        label=f"σ = {s:g}: Monte Carlo (±2 SE)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of weights N in the layer")
    ax.set_ylabel("Var[Ŵ],  Ŵ = tanh W / max|tanh W|")
    ax.set_title(f"DoReFa clamp: variance of clamped weights vs N ({_VERSION})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, ncol=1)
    return ax


def plot_clamp_error(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Relative error of the extreme-value clamp variance vs N, with the bound ``2γ/u_N²``.

    ``table`` is :func:`qtheory.sat.clamp_variance_table`.

    Examples
    --------
    >>> from qtheory import sat
    >>> t = sat.clamp_variance_table((64, 640), (0.05,), mc_elements=0)
    >>> ax = plot_clamp_error(t)
    >>> ax.get_xscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    for i, (s, g) in enumerate(table.groupby("sigma", sort=True)):
        ax.plot(g.n, 100 * g.rel_error, "-o", ms=3, color=f"C{i}", label=f"σ = {s:g}")
    b = table.drop_duplicates("n").sort_values("n")
    ax.plot(b.n, 100 * b.bound, "k--", label="first-order bound 2γ/u_N²")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("number of weights N in the layer")
    ax.set_ylabel("extreme value / exact − 1  (%)")
    ax.set_title("Approximation error of E[tanh²W]/tanh²(σu_N)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_variance_ratio(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """``Var[Q]/Var[Ŵ]`` vs bits per classifier shape: exact, extreme value, Monte Carlo, notes.

    ``table`` is :func:`qtheory.sat.variance_ratio_table`.

    Examples
    --------
    >>> from qtheory import sat
    >>> t = sat.variance_ratio_table((1, 2), classifiers={"c": (64, 10, 8)}, mc_elements=0)
    >>> ax = plot_variance_ratio(t)
    >>> ax.get_yscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    for i, (name, g) in enumerate(table.groupby("model", sort=False)):
        c = f"C{i}"
        n = int(g.n.iloc[0])
        ax.plot(g.bits, g.ratio_exact, "-o", ms=3, color=c, label=f"{name}, N={n:,}: exact")
        ax.plot(g.bits, g.ratio_extreme, "--", color=c, lw=1, label=f"{name}: extreme value")
        m = g[np.isfinite(g.ratio_mc)]
        if len(m):
            ax.errorbar(m.bits + 0.08 * (i - 1), m.ratio_mc, yerr=2 * m.ratio_mc_stderr, fmt="s", ms=3,
                        color=c, mfc="none", capsize=2, label=f"{name}: Monte Carlo (±2 SE)")
    notes = table.drop_duplicates("bits")
    notes = notes[np.isfinite(notes.ratio_notes)]
    ax.plot(notes.bits, notes.ratio_notes, "kx", ms=7, label="notes (sat.md, N unstated)")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("weight bits k")
    ax.set_ylabel("Var[Q] / Var[Ŵ]")
    ax.set_title(f"DoReFa quantization: variance ratio vs bits, Gaussian weights ({_VERSION})",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5)
    return ax


def plot_logit_vs_bits(table: pd.DataFrame, metric: str = "logit_var", *, ax: Axes | None = None) -> Axes:
    """A network statistic vs weight bits, one line per classifier and SAT mode.

    ``table`` is a concatenation of :func:`qtheory.sat.network_experiment` tables (with a
    ``model`` column); DoReFa rows are lines, the clamp-only and full-precision rows are
    drawn at the right edge as markers labelled "clamp" and "fp".

    Examples
    --------
    >>> from qtheory import sat
    >>> t = sat.network_experiment((16, 64), 100, bits=(2, 4), batch=16, rng=0).assign(model="toy")
    >>> ax = plot_logit_vs_bits(t, "max_prob")
    >>> ax.get_ylabel()
    'mean max softmax probability'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    labels = {"logit_var": "logit variance", "max_prob": "mean max softmax probability",
              "entropy_ratio": "softmax entropy / log(classes)", "grad_cls": "gradient RMS at classifier input"}
    bits = sorted(b for b in table.bits.unique() if b > 0)
    x_clamp, x_fp = max(bits) + 1.2, max(bits) + 2.0
    for i, (name, g) in enumerate(table.groupby("model", sort=False)):
        for sat_mode, ls, mk in (("none", "-", "o"), ("last", "--", "s"), ("all", ":", "^")):
            h = g[g.sat == sat_mode]
            if not len(h):
                continue
            d = h[h.weights == "dorefa"].sort_values("bits")
            lab = f"{name}, {'DoReFa' if sat_mode == 'none' else 'DoReFa + SAT'}"
            ax.plot(d.bits, d[metric], ls, marker=mk, ms=3.5, color=f"C{i}", label=lab)
            for mode, x in (("clamp", x_clamp), ("fp", x_fp)):
                r = h[h.weights == mode]
                if len(r):
                    ax.plot([x], r[metric].values[:1], mk, color=f"C{i}", ms=5,
                            mfc="none" if sat_mode != "none" else f"C{i}")
    ax.set_xticks(list(bits) + [x_clamp, x_fp], [str(b) for b in bits] + ["clamp", "fp"])
    ax.text(0.99, 0.01, "clamp / fp markers: filled = no SAT, open = SAT", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=7, color="0.3")
    ax.set_xlabel("weight bits (clamp = DoReFa without rounding, fp = latent weights)")
    ax.set_ylabel(labels.get(metric, metric))
    if metric in ("logit_var", "grad_cls", "max_prob"):   # max prob spans 1/classes .. 1
        ax.set_yscale("log")
    ax.grid(True, which="both" if metric == "max_prob" else "major", alpha=0.3)
    ax.set_title(f"{labels.get(metric, metric)} ({_VERSION})", fontsize=10)
    ax.legend(fontsize=6.5)
    return ax


def plot_depth(table: pd.DataFrame, metric: str = "logit_var", *, ax: Axes | None = None, weights: str = "dorefa",
               bits: int = 2) -> Axes:
    """A network statistic vs depth for one weight mode, with and without SAT, BN and no BN.

    ``table`` is a concatenation of :func:`qtheory.sat.depth_experiment` tables.

    Examples
    --------
    >>> from qtheory import sat
    >>> t = sat.depth_experiment((1, 2), width=16, n_in=32, n_classes=100, bits=(2,), batch=16, rng=0)
    >>> ax = plot_depth(t)
    >>> ax.get_xlabel()
    'hidden layers'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    sel = table[(table.weights == weights) & ((table.bits == bits) if weights == "dorefa" else True)]
    i = 0
    for (bn, sat_mode), g in sel.groupby(["bn", "sat"], sort=False):
        g = g.sort_values("depth")
        sat_name = {"none": "no SAT", "last": "SAT on the classifier (1/n_out)", "all": "SAT on every layer (1/n_out)",
                    "all_relu": "SAT every layer, ReLU-aware (2/n_out hidden)"}.get(sat_mode, sat_mode)
        name = f"{'BN' if bn else 'no BN'}, {sat_name}"
        ax.plot(g.depth, g[metric], "-o" if sat_mode == "none" else "--s", ms=3.5, color=f"C{i}", label=name)
        i += 1
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden layers")
    labels = {"logit_var": "logit variance", "grad_in": "gradient RMS at the network input",
              "grad_cls": "gradient RMS at the classifier input", "max_prob": "mean max softmax probability"}
    ax.set_ylabel(labels.get(metric, metric))
    if metric in ("logit_var", "grad_in", "grad_cls"):
        ax.set_yscale("log")
    what = f"{bits}-bit DoReFa" if weights == "dorefa" else weights
    ax.set_title(f"{labels.get(metric, metric)} vs depth\n{what} weights ({_VERSION})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_gradient_flow(results: Mapping[str, NetworkResult], *, ax: Axes | None = None,
                       styles: Mapping[str, Mapping[str, Any]] | None = None) -> Axes:
    """Per-layer gradient RMS (input of layer l) for labelled :class:`qtheory.sat.NetworkResult`.

    ``styles`` maps a label to matplotlib keyword arguments (``color``, ``ls``, ``marker``), so
    that a style can stand for a property (e.g. line style = BatchNorm or not); labels without
    one get a solid line in the next colour.

    Examples
    --------
    >>> from qtheory import sat
    >>> r = sat.synthetic_network((16, 32, 32), 100, batch=16, rng=0)
    >>> ax = plot_gradient_flow({"4-bit": r})
    >>> ax.get_yscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    styles = styles or {}
    for i, (label, r) in enumerate(results.items()):
        g = np.asarray(r.grad_rms)
        kw = {"color": f"C{i}", "ls": "-", "marker": "o", **styles.get(label, {})}
        ax.plot(np.arange(g.size), g, ms=3, label=label, **kw)
    ax.set_yscale("log")
    ax.set_xlabel("layer l (0 = network input, last = classifier input)")
    ax.set_ylabel("per-sample gradient RMS at the input of layer l")
    ax.set_title(f"Backward gradient magnitude per layer ({_VERSION})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_pact_error(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Calibrated-PACT in-range error term vs bits: Δ/4, exact E|e| per prior, Monte Carlo, ``|mean|``.

    ``table`` is :func:`qtheory.sat.pact_error_table`.

    Examples
    --------
    >>> from qtheory import sat
    >>> ax = plot_pact_error(sat.pact_error_table((2, 3), n_samples=1000, rng=0))
    >>> ax.get_yscale()
    'log'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    ax = _ax(ax, _FIGSIZE)
    u = table.drop_duplicates("bits").sort_values("bits")
    ax.plot(u.bits, u.uniform_mean_abs, "k-", lw=1.5, label="Δ/4 (uniform within a bin)")
    for i, (name, g) in enumerate(table.groupby("prior", sort=False)):
        g = g.sort_values("bits")
        ax.plot(g.bits, g.exact_mean_abs, "--", color=f"C{i}", label=f"{name}: exact E|e|")
        ax.errorbar(g.bits, g.mc_mean_abs, yerr=2 * g.mc_mean_abs_stderr, fmt="o", ms=3.5, mfc="none",
                    color=f"C{i}", capsize=2, label=f"{name}: Monte Carlo via ste.calibrated_pact")
        ax.plot(g.bits, np.abs(g.exact_mean), ":", marker="v", ms=3, color=f"C{i}",
                label=f"{name}: |E e| (bias of ∂/∂α)")
    ax.set_yscale("log")
    ax.set_xlabel("activation bits k")
    ax.set_ylabel("size of e = q_k(x/α) − x/α, per in-range input")
    ax.set_title(f"Gradient-calibrated PACT: in-range term vs bits ({_VERSION})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5)
    return ax
