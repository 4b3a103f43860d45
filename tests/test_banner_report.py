"""The numbers of paper_repro/banner4bit/REPORT.md, recomputed independently (issue 10).

The bias-correction sentence is recomputed by direct quadrature of a hand-written midrise grid
(no qtheory quantizer or allocation code); the two-channel optimum is the paper's r/(1+r).
"""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from qtheory import Laplace, optimal_clip

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "paper_repro" / "banner4bit" / "REPORT.md"


def _laplace_error_moments(b, loc, alpha, bits):
    """E[e], E[e²] for e = w − q(w), w ~ Laplace(loc, b), midrise grid ±(k+½)Δ, Δ = 2α/2^bits."""
    n_lv = 2**bits
    delta = 2 * alpha / n_lv
    levels = -alpha + delta * (np.arange(n_lv) + 0.5)
    edges = np.concatenate([[-np.inf], levels[:-1] + delta / 2, [np.inf]])

    def pdf(w):
        return math.exp(-abs(w - loc) / b) / (2 * b)

    m1 = m2 = 0.0
    for lo, hi, y in zip(edges[:-1], edges[1:], levels, strict=True):
        pts = [loc] if lo < loc < hi else None
        m1 += integrate.quad(lambda w, y=y: (w - y) * pdf(w), lo, hi, points=pts if np.isfinite(lo) and np.isfinite(hi) else None, epsabs=1e-13, limit=200)[0]
        m2 += integrate.quad(lambda w, y=y: (w - y) ** 2 * pdf(w), lo, hi, points=pts if np.isfinite(lo) and np.isfinite(hi) else None, epsabs=1e-13, limit=200)[0]
    return m1, m2


def test_bias_correction_sentence():
    text = REPORT.read_text(encoding="utf-8")
    got = re.search(r"At 4 bits the output MSE is ([\d.e+-]+) without correction and ([\d.e+-]+) with mean "
                    r"correction", text)
    assert got, "the bias-correction sentence is missing from REPORT.md"
    n = 576
    m = 1 / math.sqrt(2 * math.pi)            # post-ReLU N(0, 1): mean and variance
    s2 = 0.5 - 1 / (2 * math.pi)
    alpha = optimal_clip(Laplace(1.0, loc=0.5), 4, grid="midrise").alpha
    ee, ee2 = _laplace_error_moments(1.0, 0.5, alpha, 4)
    ve = ee2 - ee**2
    # E[(Σ e_i x_i)²] = n·E[e²]·E[x²] + n(n−1)·E[e]²·m²;   mean-corrected: (n − 1)·s²·V[e]
    none = n * ee2 * (s2 + m * m) + n * (n - 1) * ee**2 * m * m
    mean = (n - 1) * s2 * ve
    assert float(got.group(1)) == float(f"{none:.3g}")
    assert float(got.group(2)) == float(f"{mean:.3g}")
    assert none == pytest.approx(16.6, abs=0.05) and mean == pytest.approx(10.2, abs=0.05)


def test_two_channel_table():
    long = pd.read_csv(ROOT / "paper_repro" / "banner4bit" / "two_channel.csv")
    t = long.pivot_table(index=["channels", "alpha1", "alpha2"], columns="quantity", values="value").reset_index()
    for r in t.itertuples():
        ratio = (r.alpha1 / r.alpha2) ** (2 / 3)
        assert r.p_star_model == pytest.approx(ratio / (1 + ratio), abs=1e-6)   # the paper's r/(1+r)
        # best integer split of 32 bins: the integer nearest 32·p* (the model is convex in p)
        assert round(r.p_best_exact * 32) == round(32 * ratio / (1 + ratio))
        if r.channels == "uniform":
            assert r.max_rel_model_vs_exact == 0.0        # the α²/(3N²) model is exact for uniform channels
