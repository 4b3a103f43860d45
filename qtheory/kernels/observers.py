"""Streaming-observer kernels (numba): the exact per-bin histogram pass and the upper bound ``U``.

Used by :mod:`qtheory.models.observers` (its module docstring defines the histogram and the
bound). The quantizers arrive as arrays of :attr:`qtheory.Quantizer.kernel_params` fields.
"""

import math

import numba
import numpy as np

from .empirical import _dd_add, _dd_add_d, _dd_mul_d
from .mc import _round  # the one rounding rule shared by every kernel


@numba.njit(cache=True)
def hist_add(x, f1, f2, k, cnt, s1, s2, bmin, bmax):
    """Add the samples ``x`` (float32 or float64) to a histogram of width ``w = 1/(f1·f2)`` (a power
    of two, split in two factors so that neither product over- or underflows) with bins
    ``⌊x/w⌋ + k``: per bin the count, the float64 sums of ``x`` and ``x²`` (in the order of ``x``),
    the min and the max. The caller guarantees ``|x| < k·w``."""
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        j = int(math.floor((v * f1) * f2))
        if j >= 0 and v < 0.0:  # (|v|/w underflowed to -0: the bin below 0)
            j = -1
        j += k
        cnt[j] += 1
        s1[j] += v
        s2[j] += v * v
        if v < bmin[j]:
            bmin[j] = v
        if v > bmax[j]:
            bmax[j] = v


@numba.njit(cache=True)
def dd_prefix(v, hi, lo):
    """Double-double prefix sums: ``hi[i] + lo[i] = Σ_{j<i} v[j]`` (``hi``, ``lo`` of length ``n + 1``)."""
    h, e = 0.0, 0.0
    hi[0], lo[0] = 0.0, 0.0
    for i in range(v.shape[0]):
        h, e = _dd_add_d(h, e, v[i])
        hi[i + 1], lo[i + 1] = h, e


@numba.njit(cache=True, inline="always")
def _code(x, s, c, q0, q1, mode):
    return min(max(_round(x / s - c, mode), q0), q1)


@numba.njit(cache=True)
def hist_upper(m, n, lo, hi, p0, p1, p2, scale, offset, qmin, qmax, mode, bound, u_out, e_out):
    """For each quantizer ``q`` (arrays ``scale, offset, qmin, qmax``; rounding ``mode``):
    ``u_out = Σ_b Σ_{x in b} (x − y_b)²`` with ``y_b = q(m_b)`` (every value of bin ``b`` sent to the
    level of the bin's mean ``m_b``; ``m`` increasing), and with ``bound`` ``e_out = Σ n·D²`` over
    the bins whose ``lo`` and ``hi`` have different codes (``D`` the larger distance from ``y_b`` to
    ``lo``, ``hi``).

    ``p0, p1, p2``: double-double prefix sums (``(2, nb + 1)`` arrays, hi and lo rows) of the bins'
    counts, ``Σx`` and ``Σx²``. The code of ``m_b`` is monotone in ``b``, so the bins sent to one
    level form a run, found by galloping search (the same floating-point code computation as
    :meth:`qtheory.Quantizer.to_codes`); each run adds ``S2 − 2y·S1 + y²·S0`` of its prefix-sum
    differences in double-double (no cancellation). Cost ``O(levels · log bins)`` per quantizer
    (``bound``: ``O(bins)``)."""
    nb = m.shape[0]
    for t in range(scale.shape[0]):
        s, c, q0, q1 = scale[t], offset[t], qmin[t], qmax[t]
        uh, ul = 0.0, 0.0
        b = 0
        while b < nb:
            k = _code(m[b], s, c, q0, q1, mode)
            # first j > b with a larger code: gallop, then bisect in (a, j]
            a, step = b, 1
            j = b + 1
            while j < nb and _code(m[j], s, c, q0, q1, mode) == k:
                a = j
                step *= 2
                j = b + step
            if j > nb:
                j = nb
            while j - a > 1:
                mid = (a + j) // 2
                if _code(m[mid], s, c, q0, q1, mode) == k:
                    a = mid
                else:
                    j = mid
            y = (k + c) * s
            s0h, s0l = _dd_add(p0[0, j], p0[1, j], -p0[0, b], -p0[1, b])
            s1h, s1l = _dd_add(p1[0, j], p1[1, j], -p1[0, b], -p1[1, b])
            s2h, s2l = _dd_add(p2[0, j], p2[1, j], -p2[0, b], -p2[1, b])
            th, tl = _dd_mul_d(s1h, s1l, -2.0 * y)
            vh, vl = _dd_add(s2h, s2l, th, tl)
            th, tl = _dd_mul_d(s0h, s0l, y)
            th, tl = _dd_mul_d(th, tl, y)
            vh, vl = _dd_add(vh, vl, th, tl)
            if vh > 0.0:
                uh, ul = _dd_add(uh, ul, vh, vl)
            b = j
        e = 0.0
        if bound:
            for b in range(nb):
                y = (_code(m[b], s, c, q0, q1, mode) + c) * s
                if _code(lo[b], s, c, q0, q1, mode) != _code(hi[b], s, c, q0, q1, mode):
                    dd = max(abs(lo[b] - y), abs(hi[b] - y))
                    e += n[b] * dd * dd
        u_out[t] = uh + ul
        e_out[t] = e
