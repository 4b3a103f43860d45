"""Helpers shared by the plotting modules (private)."""

from __future__ import annotations

import numpy as np


def _ax(ax, figsize=(6, 4)):
    """``ax`` itself, or the Axes of a new figure of ``figsize`` inches when ``ax`` is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


#: points of an automatic α range
_N_ALPHAS = 240


def _bits_list(bits, func: str, low: int = 1) -> list[int]:
    """``bits`` (an int or a sequence of ints) as a non-empty list of validated ints."""
    from .._validation import check_int, param_error
    from ..quantizer import MAX_BITS

    if bits is None:
        raise param_error("bits", func, "an int or a sequence of ints (one curve each)", bits, TypeError)
    items = [bits] if isinstance(bits, (int, np.integer)) or np.ndim(bits) == 0 else list(bits)
    if not items:
        raise param_error("bits", func, "an int or a non-empty sequence of ints", bits)
    return [check_int(b, "bits", func, low, MAX_BITS) for b in items]


def _auto_alphas(optima) -> np.ndarray:
    """The α range of a figure: ``(0, 2·max α*]`` in :data:`_N_ALPHAS` points, so that every
    optimum sits inside it with the rise of the curve on both sides."""
    hi = 2.0 * max(float(o.alpha) for o in optima)
    return np.linspace(hi / _N_ALPHAS, hi, _N_ALPHAS)


def _check_alphas(alphas, func: str):
    from .._validation import check_real_array

    return check_real_array(alphas, "alphas", func, 0.0, low_open=True)


def _form(func: str, prior, alphas, given, given_name: str, extra: dict):
    """Which call form of a two-form MSE plot (``plot_mse_vs_alpha``, ``plot_mse_curve``) was used:
    ``("given", clips)`` when ``given`` (the caller's curves) is passed, the clips being the first
    argument or ``alphas`` (not both); else ``("prior", None)``, after checking that a prior is
    there and that none of ``extra`` (``{name: value}``, second-form-only parameters) is set."""
    if given is not None:
        if prior is not None and alphas is not None:
            raise TypeError(f"{func} takes the clips of given {given_name} once: as its first argument or as "
                            "'alphas', not both.")
        return "given", (alphas if alphas is not None else prior)
    for name, value in extra.items():
        if value is not None:
            raise TypeError(f"The '{name}' parameter of {func} is for given {given_name} (with "
                            f"'{given_name}'); with a prior it is computed. Got it with a prior instead.")
    if prior is None:
        raise TypeError(f"{func} needs a prior (with 'bits') or clips and '{given_name}'. Got neither instead.")
    return "prior", None


def _mark_optimum(ax, opt, color, *, text: bool = True):
    """A dot at ``(opt.alpha, opt.mse)`` (``gid="optimum"``) and, with ``text``, the value of α* beside it."""
    (line,) = ax.plot([opt.alpha], [opt.mse], "o", ms=6, color=color, mec="black", mew=0.6, zorder=5,
                      gid="optimum")
    if text:
        ax.annotate(f"α*={opt.alpha:.3g}", (opt.alpha, opt.mse), xytext=(0, -11), textcoords="offset points",
                    ha="center", va="top", fontsize=7, color=color)
    return line


def _curves(prior, bits, alphas, grid: str | None, methods, func: str):
    """The MSE curves of a figure: ``(alphas, {(bits, method): (MSEResult, ClipResult)})``.

    Every optimum is :func:`qtheory.optimal_clip` of that bit-width and method; ``alphas=None``
    picks :func:`_auto_alphas` of all of them.
    """
    from .._validation import check_option, param_error
    from ..mse import clipping_mse
    from ..optimal import optimal_clip
    from ..priors import Empirical, as_prior
    from ..quantizer import DEFAULT_PRIOR_GRID, DEFAULT_TENSOR_GRID, GRIDS, MIN_BITS

    methods = [methods] if isinstance(methods, str) else list(methods)
    methods = [check_option(m, "methods", func, ("exact", "aciq")) for m in methods]
    if not methods:
        raise param_error("methods", func, "a non-empty sequence of 'exact', 'aciq'", [])
    prior = as_prior(prior, name="prior", func=func)
    if grid is None:  # (optimal_clip's rule, "Default grids" in qtheory.quantizer)
        grid = DEFAULT_TENSOR_GRID if isinstance(prior, Empirical) and methods == ["exact"] else DEFAULT_PRIOR_GRID
    grid = check_option(grid, "grid", func, GRIDS)
    if "aciq" in methods and grid != "midrise":
        raise param_error("grid", func, "'midrise' when a method is 'aciq' (ACIQ models that grid)", grid)
    bits = _bits_list(bits, func, MIN_BITS[grid])
    optima = {(b, m): optimal_clip(prior, b, grid=grid, method=m, progress=False) for b in bits for m in methods}
    if alphas is None and not max(o.alpha for o in optima.values()) > 0.0:
        raise param_error("prior", func, "a prior with some spread when 'alphas' is not given (its optimal "
                          "clips set the range)", "a prior whose every optimal clip is 0")
    alphas = _auto_alphas(optima.values()) if alphas is None else _check_alphas(alphas, func)
    return alphas, {(b, m): (clipping_mse(prior, alphas, b, grid=grid, method=m), opt)
                    for (b, m), opt in optima.items()}

