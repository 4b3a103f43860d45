"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/bench_X.py``)."""

from __future__ import annotations

import time

import numpy as np


def best_of(f, repeat: int):
    """``(best wall time in seconds over repeat calls, result of the last call)``."""
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out
