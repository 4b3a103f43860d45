"""Helpers shared by the plotting modules (private)."""

from __future__ import annotations


def _ax(ax, figsize=(6, 4)):
    """``ax`` itself, or the Axes of a new figure of ``figsize`` inches when ``ax`` is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax
