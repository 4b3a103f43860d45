"""Codebooks beyond floating point: integer grids, NF4, power-of-two (linear/log rounding), APoT, Lloyd–Max."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np

from .._typing import PriorLike
from .._validation import check_int, param_error
from ..quantizer import LevelSet
from .element import FORMATS

__all__ = ["level_set", "int_levels", "nf4_levels", "pow2_levels", "apot_levels", "lloyd_max_levels",
           "ELEMENT_NAMES"]

#: Element-format names accepted by :func:`level_set` (besides the patterns in its docstring).
ELEMENT_NAMES = ("fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn", "int8", "int4", "nf4")

#: QLoRA's offset: the mean of 1 − 1/(2·15) and 1 − 1/(2·16) (Dettmers et al. 2023).
NF4_OFFSET = 0.9677083


def int_levels(bits: int, narrow: bool = False) -> LevelSet:
    """Two's-complement integers ``−2^(b−1)`` to ``2^(b−1)−1`` (``narrow``: symmetric, no ``−2^(b−1)``).

    >>> int_levels(3).levels.tolist()
    [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    """
    bits = check_int(bits, "bits", "int_levels", 2, 16)
    h = 2 ** (bits - 1)
    return LevelSet.from_levels(np.arange(-h + int(narrow), h, dtype=np.float64), name=f"int{bits}")


def nf4_levels(offset: float = NF4_OFFSET) -> LevelSet:
    """NormalFloat-4 from its quantile definition (QLoRA, Dettmers et al. 2023, arXiv 2305.14314).

    8 positive levels are N(0,1) quantiles at ``linspace(offset, 0.5, 9)[:-1]``, 7 negative ones at
    ``linspace(offset, 0.5, 8)[:-1]``, plus an exact zero; all divided by the largest.

    >>> lv = nf4_levels().levels
    >>> lv.size, float(lv[0]), float(lv[7]), float(lv[-1]), round(float(lv[8]), 7)
    (16, -1.0, 0.0, 1.0, 0.0795803)
    """
    from scipy.stats import norm

    pos = norm.ppf(np.linspace(offset, 0.5, 9)[:-1])
    neg = -norm.ppf(np.linspace(offset, 0.5, 8)[:-1])
    v = np.concatenate([pos, [0.0], neg])
    return LevelSet.from_levels(v / np.max(v), name="nf4")


def pow2_levels(bits: int, rounding: str = "linear") -> LevelSet:
    """Sign + power-of-two magnitudes ``{0, 2^(1−n)..2^0}``, ``n = 2^(b−1) − 1`` (Miyashita et al. 2016).

    ``rounding="linear"`` rounds to the nearest level (decision at ``1.5·2^k``); ``"log"`` rounds
    ``log2|x|`` to the nearest integer (decision at ``√2·2^k``), and below ``2^(1−n)/√2`` to zero.

    >>> pow2_levels(3, "log").thresholds[3:].round(4).tolist()
    [0.1768, 0.3536, 0.7071]
    """
    bits = check_int(bits, "bits", "pow2_levels", 2, 8)
    if rounding not in ("linear", "log"):
        raise param_error("rounding", "pow2_levels", "one of 'linear', 'log'", rounding)
    n = 2 ** (bits - 1) - 1
    mags = np.ldexp(1.0, np.arange(1 - n, 1))
    lv = np.concatenate([-mags[::-1], [0.0], mags])
    th = None
    if rounding == "log":
        pos = np.concatenate([[mags[0] / math.sqrt(2.0)], mags[:-1] * math.sqrt(2.0)])
        th = np.concatenate([-pos[::-1], pos])
    return LevelSet.from_levels(lv, th, name=f"pow2_{rounding}{bits}")


def apot_levels(k: int = 2, n: int = 2) -> LevelSet:
    """Additive powers-of-two (Li, Dong, Wang, ICLR 2020): ``Σ_{i<n} p_i``, ``p_i ∈ {0, 2^−i, 2^−(i+n), …, 2^−(i+(2^k−2)n)}``.

    ``b = k·n`` magnitude bits plus a sign; levels are normalised to a largest level of 1.

    >>> (apot_levels(2, 2).levels[15:] * 48).tolist()   # in units of 2^-5 / 1.5
    [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 9.0, 12.0, 16.0, 18.0, 24.0, 32.0, 33.0, 36.0, 48.0]
    """
    k = check_int(k, "k", "apot_levels", 1, 4)
    n = check_int(n, "n", "apot_levels", 1, 4)
    terms = [[0.0] + [2.0 ** -(i + j * n) for j in range(2**k - 1)] for i in range(n)]
    mags = np.unique([sum(c) for c in itertools.product(*terms)])
    mags = mags / mags[-1]
    return LevelSet.from_levels(np.concatenate([-mags[:0:-1], mags]), name=f"apot_k{k}n{n}")


def lloyd_max_levels(prior: PriorLike, n_levels: int) -> LevelSet:
    """The Lloyd–Max codebook of ``prior`` (:func:`qtheory.classical.lloyd_max`), as a level set."""
    from ..classical import lloyd_max

    r = lloyd_max(prior, n_levels)
    return LevelSet.from_levels(r.levels, name=f"lloyd_max{n_levels}")


_PATTERNS = (
    (re.compile(r"int(\d+)$"), lambda m: int_levels(int(m[1]))),
    (re.compile(r"pow2_(linear|log)(\d+)$"), lambda m: pow2_levels(int(m[2]), m[1])),
    (re.compile(r"apot_k(\d)n(\d)$"), lambda m: apot_levels(int(m[1]), int(m[2]))),
)


def level_set(name: str) -> LevelSet:
    """A named codebook: an FP format of :data:`~qtheory.formats.FORMATS`, ``"int<b>"``, ``"nf4"``,
    ``"pow2_linear<b>"``, ``"pow2_log<b>"`` or ``"apot_k<k>n<n>"``.

    >>> level_set("fp4_e2m1fn").levels[7:].tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    """
    if isinstance(name, str):
        if name in FORMATS:
            return FORMATS[name].level_set()
        if name == "nf4":
            return nf4_levels()
        for pat, make in _PATTERNS:
            m = pat.match(name)
            if m:
                return make(m)
    raise param_error("codebook", "level_set", "an FP format name, 'int<b>', 'nf4', 'pow2_linear<b>', "
                      "'pow2_log<b>' or 'apot_k<k>n<n>'", name, TypeError if not isinstance(name, str) else ValueError)
