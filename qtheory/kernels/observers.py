"""Streaming-observer kernels (numba): the exact per-bin histogram pass and the upper bound ``U``.

Used by :mod:`qtheory.models.observers` (its module docstring defines the histogram and the
bound). The histogram holds the values at a power-of-two unit (``x/2^u``, so that the sums of
``x²`` neither over- nor underflow); the quantizers arrive in that unit, as arrays of
:attr:`qtheory.Quantizer.kernel_params` fields.
"""

import math

import numba
import numpy as np

from .empirical import _dd_add, _dd_add_d, _dd_mul_d
from .mc import _round  # the one rounding rule shared by every kernel


@numba.njit(cache=True)
def hist_add(x, g1, g2, f, k, cnt, s1, s2, bmin, bmax):
    """Add the samples ``x`` (float32 or float64) to a histogram kept at a power-of-two unit: each
    value enters as ``v = (x·g1)·g2`` (``g1·g2 = 2^-u``, the reciprocal of the unit ``2^u``, split
    in two factors only where ``2^-u`` is no float64; the caller makes either ``g2 = 1`` or both
    factors ``>= 1``, so ``v`` is ``x/2^u`` rounded once) into the bin ``⌊v·f⌋ + k`` of width ``1/f``
    (a power of two): per bin the count, the float64 sums of ``v`` and ``v²`` (in the order of
    ``x``), the min and the max of ``v``. The caller guarantees ``|v| < k/f``."""
    for i in range(x.shape[0]):
        v = (np.float64(x[i]) * g1) * g2
        j = int(math.floor(v * f))
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


@numba.njit(cache=True)
def sweep_count(m, s_lo, s_hi, offset, qmin, qmax, mode):
    """The number of code changes of the bin means ``m`` as the step falls from ``s_hi`` to
    ``s_lo`` (the codes of :func:`hist_upper`; each change moves one code by one, away from 0)."""
    total = 0
    for b in range(m.shape[0]):
        total += int(abs(_code(m[b], s_lo, offset, qmin, qmax, mode) - _code(m[b], s_hi, offset, qmin, qmax, mode)))
    return total


@numba.njit(cache=True)
def sweep_pieces(m, n, s1, s2_total, s_lo, s_hi, offset, qmin, qmax, mode, out_s, out_v):
    """The minima of ``U`` (times ``n``) on the quadratic pieces of ``U(s)`` over the steps
    ``[s_lo, s_hi]`` of one grid (``offset, qmin, qmax, mode``): ``out_s``, ``out_v`` (length
    ``K``) receive the ``K`` smallest piece minima and their steps, smallest first (``out_v = inf``
    where there are fewer pieces).

    With the code ``k_b`` of every bin mean held, ``U(s) = Σx² − 2s·B + s²·A``, ``B = Σ c_b S1_b``,
    ``A = Σ c_b² n_b`` (``c_b = k_b + offset``): a quadratic with its vertex at ``B/A``. As ``s``
    falls from ``s_hi``, the code of a mean ``m > 0`` steps from ``j`` to ``j + 1`` at ``s =
    m/(j + 1/2 + offset)`` (``m < 0``: from ``j`` to ``j − 1`` at ``m/(j − 1/2 + offset)``), from its
    code at ``s_hi`` to its code at ``s_lo``; the crossings are sorted and swept, ``A`` and ``B``
    updated at each, and each piece's minimum (its vertex, or the nearer end) recorded. ``U`` is
    continuous at a crossing (the mean is equidistant from both levels), so this is ``U``'s global
    minimum over the interval, up to the rounding of the running sums (relative to ``Σx²``; the
    caller re-evaluates the candidates)."""
    nb = m.shape[0]
    total = 0
    for b in range(nb):
        total += int(abs(_code(m[b], s_lo, offset, qmin, qmax, mode) - _code(m[b], s_hi, offset, qmin, qmax, mode)))
    cs = np.empty(total)
    cb = np.empty(total, np.int64)
    cur = np.empty(nb)
    a, bb = 0.0, 0.0
    t = 0
    for b in range(nb):
        k0 = _code(m[b], s_hi, offset, qmin, qmax, mode)
        k1 = _code(m[b], s_lo, offset, qmin, qmax, mode)
        cur[b] = k0
        c = k0 + offset
        a += n[b] * c * c
        bb += s1[b] * c
        if k1 > k0:
            for j in range(int(k0), int(k1)):
                cs[t] = m[b] / (j + 0.5 + offset)
                cb[t] = b
                t += 1
        elif k1 < k0:
            for j in range(int(k0), int(k1), -1):
                cs[t] = m[b] / (j - 0.5 + offset)
                cb[t] = b
                t += 1
    order = np.argsort(cs)[::-1]  # falling steps
    kk = out_v.shape[0]
    for i in range(kk):
        out_v[i] = np.inf
        out_s[i] = s_hi
    s_cur = s_hi
    i = 0
    while True:
        s_next = s_lo
        if i < total:
            s_next = max(min(cs[order[i]], s_hi), s_lo)
        if s_next < s_cur or i >= total:
            sv = bb / a if a > 0.0 else s_cur
            sv = min(max(sv, s_next), s_cur)
            v = s2_total - 2.0 * sv * bb + sv * sv * a
            # keep the kk smallest (insertion into the sorted list)
            if v < out_v[kk - 1]:
                p = kk - 1
                while p > 0 and out_v[p - 1] > v:
                    out_v[p] = out_v[p - 1]
                    out_s[p] = out_s[p - 1]
                    p -= 1
                out_v[p] = v
                out_s[p] = sv
        if i >= total:
            break
        while i < total and max(min(cs[order[i]], s_hi), s_lo) == s_next:
            b = cb[order[i]]
            k = cur[b]
            k2 = k + 1.0 if m[b] > 0 else k - 1.0
            a += n[b] * ((k2 + offset) * (k2 + offset) - (k + offset) * (k + offset))
            bb += s1[b] * (k2 - k)
            cur[b] = k2
            i += 1
        s_cur = s_next
