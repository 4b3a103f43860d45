"""The Monte-Carlo tests' tolerance: how many standard errors a family of comparisons allows."""

from __future__ import annotations

from scipy import stats


def k_family(n_comparisons: int, false_alarm: float = 1e-4) -> float:
    """Two-sided Bonferroni multiplier: ``n_comparisons`` z-scores, each within ``k`` of 0, all
    pass together with probability at least ``1 − false_alarm`` for a correct formula (at 4 standard
    errors each, 150 comparisons would fail about once in 100 runs by chance alone)."""
    return float(stats.norm.isf(0.5 * false_alarm / n_comparisons))
