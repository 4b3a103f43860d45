"""Exact empirical clipping MSE from bucketed samples (numba).

Preparation (O(N), no sort): every sample goes to a bucket keyed by the exponent and the top
``mb`` mantissa bits of ``|x|`` (``math.frexp``, exact integer arithmetic, monotone in ``x``):
``2^mb`` buckets per octave on each side of 0 and one centre bucket for ``|x| < 2^(ef−1)``.
Relative bucket widths are constant, so heavy tails cost nothing. The samples are regrouped
bucket by bucket (a counting sort), and compensated prefix sums of ``Σx`` and ``Σx²`` over
buckets (double-double pairs) and each bucket's min and max are kept.

Evaluation of one quantizer (``scale, offset, qmin, qmax, rounding``): the real line is cut at
the overload points and the decision thresholds. Buckets at least one bucket away from every
cut lie entirely in one segment and contribute ``Σx² − 2yΣx + y²n`` from the prefix sums
(double-double, no cancellation). Of the (at most three) buckets around each cut, those whose min
and max fall in the same segment are added in bulk too; the samples of a bucket that straddles a
cut are quantized one by one with the same floating-point operations as
:meth:`qtheory.Quantizer.to_codes`, so ties and threshold rounding are exactly those of the
reference quantizer. Cost: O(levels + samples near the cuts), independent of N.
"""

import math

import numba
import numpy as np

# ----------------------------------------------------------------------------- double-double


@numba.njit(cache=True, inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err


@numba.njit(cache=True, inline="always")
def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@numba.njit(cache=True, inline="always")
def _split(a):
    c = 134217729.0 * a  # 2^27 + 1
    hi = c - (c - a)
    return hi, a - hi


@numba.njit(cache=True, inline="always")
def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, err


@numba.njit(cache=True, inline="always")
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    e += t
    s, e = _fast_two_sum(s, e)
    e += f
    return _fast_two_sum(s, e)


@numba.njit(cache=True, inline="always")
def _dd_mul_d(ah, al, b):
    p, e = _two_prod(ah, b)
    e += al * b
    return _fast_two_sum(p, e)


@numba.njit(cache=True, inline="always")
def _round(u, mode):
    if mode == 0:
        return np.rint(u)
    if mode == 1:
        r = np.floor(np.abs(u) + 0.5)
        return -r if u < 0 else r
    return np.floor(u + 0.5)


@numba.njit(cache=True, inline="always")
def _bucket(x, ef, mb, nside):
    """Bucket of ``x``: ``nside`` is the centre (``|x| < 2^(ef-1)``); above it, ``2^mb`` buckets
    per octave of ``|x|`` (exact integer arithmetic on ``frexp``, monotone in ``x``)."""
    a = abs(x)
    m, e = math.frexp(a)
    if a == 0.0 or e < ef:  # |x| < 2^(ef - 1)
        return nside
    d = (e - ef) * (1 << mb) + int((2.0 * m - 1.0) * (1 << mb))
    if d >= nside:
        d = nside - 1
    if x > 0.0:
        return nside + 1 + d
    return nside - 1 - d


@numba.njit(cache=True, inline="always")
def _bucket_bits(b, ef, mb, nside):
    """:func:`_bucket` from the IEEE bits ``b`` of a float64 (equal for all finite inputs when
    ``ef >= -1021``: subnormals fall in the centre either way)."""
    mag = b & 0x7FFFFFFFFFFFFFFF
    big_e = mag >> 52
    e0 = ef + 1022
    if mag == 0 or big_e < e0:
        return nside
    d = ((big_e - e0) << mb) + ((mag & 0xFFFFFFFFFFFFF) >> (52 - mb))
    if d >= nside:
        d = nside - 1
    if b > 0:
        return nside + 1 + d
    return nside - 1 - d


@numba.njit(cache=True, inline="always")
def _neumaier(s, c, v):
    t = s + v
    if abs(s) >= abs(v):
        c += (s - t) + v
    else:
        c += (v - t) + s
    return t, c


# ----------------------------------------------------------------------------- preparation


@numba.njit(cache=True)
def prepare(x, xbits, ef, mb, nside, xs, start, p1h, p1l, p2h, p2l, bmin, bmax):
    """Group ``x`` by bucket into ``xs`` (bucket ``j`` is ``xs[start[j]:start[j+1]]``), fill the
    compensated prefix sums ``p1 = Σx``, ``p2 = Σx²`` over buckets (length ``nb + 1``, as
    unnormalised double-double pairs) and each bucket's min and max."""
    nb = 2 * nside + 1
    n = x.shape[0]
    count = np.zeros(nb + 1, dtype=np.int64)
    for i in range(n):
        count[_bucket_bits(xbits[i], ef, mb, nside) + 1] += 1
    start[0] = 0
    for j in range(nb):
        start[j + 1] = start[j] + count[j + 1]
    fill = start[:nb].copy()
    for i in range(n):
        j = _bucket_bits(xbits[i], ef, mb, nside)
        xs[fill[j]] = x[i]
        fill[j] += 1
    s1 = 0.0
    c1 = 0.0
    s2 = 0.0
    c2 = 0.0
    p1h[0] = 0.0
    p1l[0] = 0.0
    p2h[0] = 0.0
    p2l[0] = 0.0
    for j in range(nb):
        lo = np.inf
        hi = -np.inf
        for i in range(start[j], start[j + 1]):
            v = xs[i]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
            s1, c1 = _neumaier(s1, c1, v)
            qh, ql = _two_prod(v, v)
            s2, c2 = _neumaier(s2, c2, qh)
            c2 += ql
        bmin[j] = lo
        bmax[j] = hi
        p1h[j + 1], p1l[j + 1] = _fast_two_sum(s1, c1) if abs(s1) >= abs(c1) else _two_sum(s1, c1)
        p2h[j + 1], p2l[j + 1] = _fast_two_sum(s2, c2) if abs(s2) >= abs(c2) else _two_sum(s2, c2)


# ----------------------------------------------------------------------------- evaluation


@numba.njit(cache=True, inline="always")
def _code(x, scale, offset, fqmin, fqmax, mode):
    k = _round(x / scale - offset, mode)
    if k < fqmin:
        k = fqmin
    elif k > fqmax:
        k = fqmax
    return k


@numba.njit(cache=True, inline="always")
def _bulk(p1h, p1l, p2h, p2l, j0, j1, n, y):
    """``Σ (x − y)²`` over buckets ``[j0, j1)`` (``n`` samples) from the prefix sums (double-double)."""
    s1h, s1l = _dd_add(p1h[j1], p1l[j1], -p1h[j0], -p1l[j0])
    s2h, s2l = _dd_add(p2h[j1], p2l[j1], -p2h[j0], -p2l[j0])
    ah, al = _dd_mul_d(s1h, s1l, -2.0 * y)
    yh, yl = _two_prod(y, y)
    bh, bl = _dd_mul_d(yh, yl, n)
    vh, vl = _dd_add(s2h, s2l, ah, al)
    vh, vl = _dd_add(vh, vl, bh, bl)
    return vh, vl, s1h + s1l


@numba.njit(cache=True)
def _eval_one(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, scale, offset, qmin, qmax, mode, exact,
              out):
    """Exact error sums of one quantizer (``exact=False``: a bucket straddling a cut is put
    whole on the side of its mean — an approximation for scans, off by at most the bucket's
    mass times its width times the step).

    ``out[0:2]`` = clipping Σe² (double-double), ``out[2:4]`` = rounding Σe², ``out[4]`` = Σ c·x,
    ``out[5]`` = Σ c² with ``c = k + offset`` the level in units of the step (for the
    step update of the exact polish).
    """
    nb = 2 * nside + 1
    fqmin = float(qmin)
    fqmax = float(qmax)
    lo = (fqmin + offset - 0.5) * scale
    hi = (fqmax + offset + 0.5) * scale
    ncut = qmax - qmin + 2
    ch = 0.0
    cl = 0.0
    rh = 0.0
    rl = 0.0
    scx = 0.0
    scc = 0.0
    j = 0
    for c in range(ncut + 1):
        if c < ncut:
            if c == 0:
                t = lo
            elif c == ncut - 1:
                t = hi
            else:
                t = (fqmin + (c - 1) + offset + 0.5) * scale
            jt = _bucket(t, ef, mb, nside)
            jb_end = jt - 1
            if jb_end < j:
                jb_end = j
        else:
            jt = nb
            jb_end = nb
        if jb_end > j:
            # bulk: buckets [j, jb_end) all lie in segment c
            if c <= 1:
                code = fqmin
            elif c >= ncut - 1:
                code = fqmax
            else:
                code = fqmin + (c - 1)
            n = float(start[jb_end] - start[j])
            if n > 0.0:
                y = (code + offset) * scale
                vh, vl, s1 = _bulk(p1h, p1l, p2h, p2l, j, jb_end, n, y)
                if c == 0 or c == ncut:
                    ch, cl = _dd_add(ch, cl, vh, vl)
                else:
                    rh, rl = _dd_add(rh, rl, vh, vl)
                cc = code + offset
                scx += cc * s1
                scc += cc * cc * n
            j = jb_end
        if c < ncut:
            jd_end = jt + 2
            if jd_end > nb:
                jd_end = nb
            while j < jd_end:
                i0 = start[j]
                i1 = start[j + 1]
                if i1 > i0:
                    if exact:
                        x0 = bmin[j]
                        x1 = bmax[j]
                    else:
                        x0 = ((p1h[j + 1] - p1h[j]) + (p1l[j + 1] - p1l[j])) / (i1 - i0)
                        x1 = x0
                    k0 = _code(x0, scale, offset, fqmin, fqmax, mode)
                    k1 = _code(x1, scale, offset, fqmin, fqmax, mode)
                    f0 = x0 < lo or x0 >= hi
                    f1 = x1 < lo or x1 >= hi
                    if k0 == k1 and f0 == f1 and not (x0 < lo and x1 >= hi):
                        n = float(i1 - i0)
                        y = (k0 + offset) * scale
                        vh, vl, s1 = _bulk(p1h, p1l, p2h, p2l, j, j + 1, n, y)
                        if f0:
                            ch, cl = _dd_add(ch, cl, vh, vl)
                        else:
                            rh, rl = _dd_add(rh, rl, vh, vl)
                        cc = k0 + offset
                        scx += cc * s1
                        scc += cc * cc * n
                    else:
                        for i in range(i0, i1):
                            xi = xs[i]
                            k = _code(xi, scale, offset, fqmin, fqmax, mode)
                            e = (k + offset) * scale - xi
                            qh, ql = _two_prod(e, e)
                            if xi < lo or xi >= hi:
                                ch, cl = _dd_add(ch, cl, qh, ql)
                            else:
                                rh, rl = _dd_add(rh, rl, qh, ql)
                            cc = k + offset
                            scx += cc * xi
                            scc += cc * cc
                j += 1
    out[0] = ch
    out[1] = cl
    out[2] = rh
    out[3] = rl
    out[4] = scx
    out[5] = scc


@numba.njit(cache=True)
def evaluate(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, scales, offset, qmins, qmaxs, mode, exact,
             out):
    """``out[i, :]`` = the six sums of :func:`_eval_one` for quantizer ``i``."""
    for i in range(scales.shape[0]):
        _eval_one(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, scales[i], offset, qmins[i],
                  qmaxs[i], mode, exact, out[i])


@numba.njit(cache=True)
def _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, alpha, denom, offset, qmin, qmax, mode,
            exact, buf):
    _eval_one(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, alpha / denom, offset, qmin, qmax, mode,
              exact, buf)
    return (buf[0] + buf[2]) + (buf[1] + buf[3])


@numba.njit(cache=True)
def refine(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, a, b, denom, offset, qmin, qmax, mode,
           rtol, max_polish):
    """Minimise the total error over the clip ``alpha in [a, b]`` (``scale = alpha / denom``).

    Golden-section search to ``rtol`` on the bucket approximation, then the exact polish: with the
    assignment of samples to levels fixed, the error is a quadratic in the step whose vertex is
    ``Σ c·x / Σ c²``; moving there and re-assigning never increases the error, and a fixed point
    is an exact local minimum of the empirical MSE (a lower envelope of such quadratics).
    Returns ``(alpha, exact total error sum)``.
    """
    buf = np.empty(6)
    gr = 0.6180339887498949
    x1 = b - gr * (b - a)
    x2 = a + gr * (b - a)
    f1 = _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, x1, denom, offset, qmin, qmax, mode,
                 False, buf)
    f2 = _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, x2, denom, offset, qmin, qmax, mode,
                 False, buf)
    for _ in range(200):
        if b - a <= rtol * b:
            break
        if f1 <= f2:
            b = x2
            x2 = x1
            f2 = f1
            x1 = b - gr * (b - a)
            f1 = _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, x1, denom, offset, qmin, qmax,
                         mode, False, buf)
        else:
            a = x1
            x1 = x2
            f1 = f2
            x2 = a + gr * (b - a)
            f2 = _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, x2, denom, offset, qmin, qmax,
                         mode, False, buf)
    alpha = x1 if f1 <= f2 else x2
    best_a = alpha
    best_f = _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, alpha, denom, offset, qmin, qmax,
                     mode, True, buf)
    for _ in range(max_polish):
        if buf[5] <= 0.0:
            break
        step = buf[4] / buf[5]
        if not step > 0.0:
            break
        new_a = step * denom
        if new_a == alpha:
            break
        f = _mse_at(xs, start, p1h, p1l, p2h, p2l, bmin, bmax, ef, mb, nside, new_a, denom, offset, qmin, qmax,
                    mode, True, buf)
        if f <= best_f:
            best_a, best_f = new_a, f
            alpha = new_a
        else:
            break
    return best_a, best_f
