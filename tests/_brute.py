"""Brute-force references shared by the exact-optimum tests: every piece of the empirical MSE."""

from __future__ import annotations

import numpy as np

from qtheory import Quantizer


def candidate_steps(x, bits: int, grid: str) -> tuple[np.ndarray, float]:
    """``(steps, D)``: every step at which the exact empirical MSE of ``x`` can be least over
    ``α = step·D > 0`` — each breakpoint (a sample on a threshold: ``x/s − offset = j + 1/2``, up
    to ``s = 2.02·max|x|``, beyond which every sample rounds to 0) and each piece's vertex (the
    least-squares step of the piece's fixed codes, kept inside the piece)."""
    x = np.asarray(x, dtype=np.float64)
    q1 = Quantizer(bits, 1.0, grid)
    d, off, qmin, qmax = 1.0 / q1.scale, q1.offset, q1.qmin, q1.qmax
    s_max = 2.02 * float(np.max(np.abs(x)))
    j = np.arange(qmin, qmax) + 0.5 + off
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = (x[:, None] / j[None, :]).ravel()
    bp = np.unique(bp[np.isfinite(bp) & (bp > 0) & (bp <= s_max)])
    edges = np.concatenate([[0.0], bp, [s_max]])
    mids = np.where(edges[:-1] > 0, 0.5 * (edges[:-1] + edges[1:]), 0.5 * edges[1])
    c = np.clip(np.rint(x[None, :] / mids[:, None] - off), qmin, qmax) + off
    a = np.sum(c * c, axis=1)
    b = np.sum(c * x[None, :], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(a > 0, b / a, mids)
    v = np.clip(v, np.nextafter(edges[:-1], np.inf), edges[1:])
    s = np.concatenate([edges[1:], v])
    return s[s > 0], d
