"""Exact empirical clipping MSE from bucketed samples (numba).

Preparation (one O(N) pass, no sort): every sample goes to a bucket keyed by the exponent and
the top ``mb`` mantissa bits of ``|x|`` (integer arithmetic on the IEEE bits of float32 or float64
input, monotone in ``x``): ``2^mb`` buckets per octave on each side of 0 and one centre bucket for
``|x| < 2^(ef−1)``. Relative bucket widths are constant, so heavy tails cost nothing. Per bucket
the pass keeps the count and exact sums of ``x`` and ``x²`` — float32: integer sums of the
mantissas (one exponent per bucket; the bucket's edges bound its samples); float64: Neumaier sums
with exact products, and the min and max. The pass runs in numba threads by chunks (dynamic
schedule, one table per thread, merged after); double-double prefix sums over buckets follow in
O(buckets). The samples themselves are only gathered (a second pass; float32: the keys of their
bits; sorted by numpy) for the few buckets that an exact evaluation finds straddling a cut.

Evaluation of one quantizer (``scale, offset, qmin, qmax, rounding``): the real line is cut at
the overload points and the decision thresholds. Buckets at least one bucket away from every
cut lie entirely in one segment and contribute ``Σx² − 2yΣx + y²n`` from the prefix sums
(double-double, no cancellation; consecutive buckets on one level form one term). Of the (at
most three) buckets around each cut, those whose bounds fall in the same segment are added in bulk
too; the gathered samples of a bucket that
straddles a cut are quantized one by one with the same floating-point operations as
:meth:`qtheory.Quantizer.to_codes`, so ties and threshold rounding are exactly those of the
reference quantizer. Cost: O(levels + samples near the cuts), independent of N.
"""

import math

import numba
import numpy as np

from .mc import _round  # the one rounding rule shared by every kernel

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
def _dd_add_d(ah, al, b):
    s, e = _two_sum(ah, b)
    e += al
    return _fast_two_sum(s, e)


@numba.njit(cache=True, inline="always")
def _dd_mul_d(ah, al, b):
    p, e = _two_prod(ah, b)
    e += al * b
    return _fast_two_sum(p, e)


@numba.njit(cache=True, inline="always")
def _bucket(x, ef, mb, nside):
    """Bucket of a float64 ``x``: ``nside`` is the centre (``|x| < 2^(ef-1)``); above it, ``2^mb``
    buckets per octave of ``|x|`` (exact integer arithmetic on ``frexp``, monotone in ``x``)."""
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
def _bucket_bits(b, is32, ef, mb, nside):
    """:func:`_bucket` from the IEEE bits ``b`` of a float64 (``is32=False``) or float32 sample.

    Equal to :func:`_bucket` for every finite input provided ``ef >= -1021`` (float64) or
    ``ef >= -125`` (float32): subnormals fall in the centre either way."""
    if is32:
        mag = np.int64(b) & 0x7FFFFFFF
        if mag < 0x800000:  # zero or subnormal
            return nside
        big_e = (mag >> 23) + 896
        frac = (mag & 0x7FFFFF) >> (23 - mb)
    else:
        mag = np.int64(b) & 0x7FFFFFFFFFFFFFFF
        if mag == 0:
            return nside
        big_e = mag >> 52
        frac = (mag & 0xFFFFFFFFFFFFF) >> (52 - mb)
    e0 = ef + 1022
    if big_e < e0:
        return nside
    d = ((big_e - e0) << mb) + frac
    if d >= nside:
        d = nside - 1
    if b > 0:
        return nside + 1 + d
    return nside - 1 - d


# ----------------------------------------------------------------------------- preparation


@numba.njit(cache=True)
def accumulate(x, xbits, is32, ef, mb, nside, stats):
    """One pass: ``stats[j] = [count, Σx, comp, Σx², comp, min, max, 0]`` per bucket ``j``
    (Neumaier-compensated sums; ``x²`` split exactly into two doubles)."""
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        j = _bucket_bits(xbits[i], is32, ef, mb, nside)
        stats[j, 0] += 1.0
        s = stats[j, 1]
        t = s + v
        if abs(s) >= abs(v):
            stats[j, 2] += (s - t) + v
        else:
            stats[j, 2] += (v - t) + s
        stats[j, 1] = t
        qh, ql = _two_prod(v, v)
        s = stats[j, 3]
        t = s + qh
        if s >= qh:
            stats[j, 4] += ((s - t) + qh) + ql
        else:
            stats[j, 4] += ((qh - t) + s) + ql
        stats[j, 3] = t
        if v < stats[j, 5]:
            stats[j, 5] = v
        if v > stats[j, 6]:
            stats[j, 6] = v


@numba.njit(cache=True, inline="always")
def _centre_add32(c, v):
    """Add a float32 sample ``v`` of the centre bucket to ``c = [count, Σx, comp, Σx², comp, min, max]``
    (Neumaier-compensated; ``v·v`` is exact in float64 for float32 ``v``)."""
    c[0] += 1.0
    s = c[1]
    u = s + v
    if abs(s) >= abs(v):
        c[2] += (s - u) + v
    else:
        c[2] += (v - u) + s
    c[1] = u
    w = v * v
    s = c[3]
    u = s + w
    if s >= w:
        c[4] += (s - u) + w
    else:
        c[4] += (w - u) + s
    c[3] = u
    if v < c[5]:
        c[5] = v
    if v > c[6]:
        c[6] = v


@numba.njit(cache=True, parallel=True)
def accumulate32_par(xbits, ef, mb, nside, tbl, ctr, chunk):
    """Parallel exact preparation of float32 samples: chunks of ``chunk`` samples, each added to
    the table of the thread that runs it (``tbl[t]``, ``t < numba.get_num_threads()``; run with a
    dynamic schedule, so a busy core only takes fewer chunks).

    Outside the centre bucket all samples of a bucket share one exponent ``E``, so
    ``x = ±m·2^(E−150)`` with an integer mantissa ``m < 2^24`` and the bucket sums are exact
    integer sums: ``tbl[t, j] = [count, Σm, Σ(m² >> 24), Σ(m² & (2^24−1))]`` per thread ``t``
    (int64, exact up to 2^39 samples; no min and max: a bucket's edges bound its samples). The centre bucket (several exponents,
    both signs) keeps Neumaier sums in ``ctr[t] = [count, Σx, comp, Σx², comp, min, max]``
    (``x²`` of a float32 is exact in float64)."""
    n = xbits.shape[0]
    nch = (n + chunk - 1) // chunk
    e0 = ef + 126  # float32 biased exponent of 2^(ef - 1)
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        i1 = min(n, i0 + chunk)
        tb = tbl[t]
        c = ctr[t]
        for i in range(i0, i1):
            b = np.int64(xbits[i])
            mag = b & 0x7FFFFFFF
            be = mag >> 23
            if be < e0:
                _centre_add32(c, _f32_value(mag, b))
                continue
            d = ((be - e0) << mb) + ((mag & 0x7FFFFF) >> (23 - mb)) + 1
            sg = b >> 63  # 0 (positive) or -1 (negative): j = nside ± (d + 1) without a branch
            j = nside + ((d ^ sg) - sg)
            m = (mag & 0x7FFFFF) | 0x800000
            mm = m * m
            tb[j, 0] += 1
            tb[j, 1] += m
            tb[j, 2] += mm >> 24
            tb[j, 3] += mm & 0xFFFFFF


@numba.njit(cache=True, parallel=True)
def accumulate32p_par(xbits, ef, mb, nside, tbl, ctr, chunk):
    """:func:`accumulate32_par` with 16 bytes per bucket (the table then stays in cache).

    A bucket's mantissas are ``m = m0 + r`` with its lowest mantissa ``m0`` and ``r < 2^(23−mb)``;
    ``tbl[t, j] = [count·2^38 + Σr, Σr²]`` holds everything exactly while a thread's bucket has
    fewer than ``2^min(25, 15 + mb)`` samples (the caller guarantees it)."""
    n = xbits.shape[0]
    nch = (n + chunk - 1) // chunk
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        accumulate32p(xbits[i0:min(n, i0 + chunk)], ef, mb, nside, tbl[t], ctr[t])


@numba.njit(cache=True, inline="always")
def _merge_centre(ctr, stats, j):
    """Merge the per-thread compensated sums of the centre bucket ``j`` (values near 0) into ``stats``."""
    c = 0.0
    ah = 0.0
    al = 0.0
    bh = 0.0
    bl = 0.0
    lo = np.inf
    hi = -np.inf
    for t in range(ctr.shape[0]):
        c += ctr[t, 0]
        h, l2 = _two_sum(ctr[t, 1], ctr[t, 2])
        ah, al = _dd_add(ah, al, h, l2)
        h, l2 = _two_sum(ctr[t, 3], ctr[t, 4])
        bh, bl = _dd_add(bh, bl, h, l2)
        lo = min(lo, ctr[t, 5])
        hi = max(hi, ctr[t, 6])
    stats[j, 0] = c
    stats[j, 1] = ah
    stats[j, 2] = al
    stats[j, 3] = bh
    stats[j, 4] = bl
    stats[j, 5] = lo
    stats[j, 6] = hi


@numba.njit(cache=True)
def accumulate32p(xbits, ef, mb, nside, tb, c):
    """One chunk of :func:`accumulate32p_par` (a plain loop: better code than inside a prange; also
    the one-thread pass of a small tensor).
    Centre-bucket samples are only noted in the main loop and summed afterwards."""
    e0 = ef + 126
    lowm = (1 << (23 - mb)) - 1
    centre = np.empty(xbits.shape[0], dtype=np.int64)
    nc = 0
    for i in range(xbits.shape[0]):
        b = np.int64(xbits[i])
        mag = b & 0x7FFFFFFF
        be = mag >> 23
        if be < e0:
            centre[nc] = i
            nc += 1
            continue
        d = ((be - e0) << mb) + ((mag & 0x7FFFFF) >> (23 - mb)) + 1
        sg = b >> 63
        j = nside + ((d ^ sg) - sg)
        r = mag & lowm
        tb[j, 0] += r + (1 << 38)
        tb[j, 1] += r * r
    for q in range(nc):
        b = np.int64(xbits[centre[q]])
        _centre_add32(c, _f32_value(b & 0x7FFFFFFF, b))


@numba.njit(cache=True)
def merge32p(tbl, ctr, ef, mb, nside, stats):
    """:func:`merge32` for the tables of :func:`accumulate32p_par`."""
    nthreads = tbl.shape[0]
    nb = stats.shape[0]
    e0 = ef + 126
    low38 = (1 << 38) - 1
    for j in range(nb):
        if j == nside:
            _merge_centre(ctr, stats, j)
            continue
        cnt = 0
        sr = 0
        sr2 = 0
        for t in range(nthreads):
            a = tbl[t, j, 0]
            cnt += a >> 38
            sr += a & low38
            sr2 += tbl[t, j, 1]
        stats[j, 0] = float(cnt)
        if cnt == 0:
            stats[j, 1:5] = 0.0
            stats[j, 5] = np.inf
            stats[j, 6] = -np.inf
            continue
        d = j - nside - 1 if j > nside else nside - 1 - j
        be = e0 + (d >> mb)
        m0 = np.int64(0x800000) | ((d & ((1 << mb) - 1)) << (23 - mb))
        sgn = 1.0 if j > nside else -1.0
        p = int(be) - 150
        h, l2 = _int_dd(cnt * m0 + sr)
        stats[j, 1] = sgn * math.ldexp(h, p)
        stats[j, 2] = sgn * math.ldexp(l2, p)
        # Σm² = cnt·m0² + 2·m0·Σr + Σr² (each term an exact double-double)
        qh, ql = _two_prod(float(cnt), float(m0 * m0))
        h, l2 = _two_prod(float(2 * m0), float(sr))
        qh, ql = _dd_add(qh, ql, h, l2)
        h, l2 = _int_dd(sr2)
        qh, ql = _dd_add(qh, ql, h, l2)
        stats[j, 3] = math.ldexp(qh, 2 * p)
        stats[j, 4] = math.ldexp(ql, 2 * p)
        lo_mag = (be << 23) | (m0 & 0x7FFFFF)
        vmin = _f32_value(lo_mag, 1)
        vmax = _f32_value(lo_mag + (1 << (23 - mb)) - 1, 1)
        if j > nside:
            stats[j, 5] = vmin
            stats[j, 6] = vmax
        else:
            stats[j, 5] = -vmax
            stats[j, 6] = -vmin


@numba.njit(cache=True, inline="always")
def _f32_value(mag, b):
    """The value of float32 bits (``mag = |bits|``) as a float64 (exact)."""
    be = mag >> 23
    if be == 0:
        v = math.ldexp(float(mag & 0x7FFFFF), -149)
    else:
        v = math.ldexp(float((mag & 0x7FFFFF) | 0x800000), int(be) - 150)
    return -v if b < 0 else v


@numba.njit(cache=True, inline="always")
def _int_dd(s):
    """An int64 as an exact double-double."""
    h = float(s)
    return h, float(s - np.int64(h))


@numba.njit(cache=True)
def merge32(tbl, ctr, ef, mb, nside, stats):
    """Per-thread tables of :func:`accumulate32_par` -> ``stats[j] = [count, Σx (dd), Σx² (dd), min,
    max, 0]`` (exact sums as double-doubles; min and max are the bucket's edges)."""
    nthreads = tbl.shape[0]
    nb = stats.shape[0]
    e0 = ef + 126
    for j in range(nb):
        cnt = 0
        s1 = 0
        sh = 0
        sl = 0
        for t in range(nthreads):
            cnt += tbl[t, j, 0]
            s1 += tbl[t, j, 1]
            sh += tbl[t, j, 2]
            sl += tbl[t, j, 3]
        if j == nside:
            _merge_centre(ctr, stats, j)
            continue
        stats[j, 0] = float(cnt)
        if cnt == 0:
            stats[j, 1:5] = 0.0
            stats[j, 5] = np.inf
            stats[j, 6] = -np.inf
            continue
        d = j - nside - 1 if j > nside else nside - 1 - j
        be = e0 + (d >> mb)
        sgn = 1.0 if j > nside else -1.0
        p = int(be) - 150
        h, l2 = _int_dd(s1)
        stats[j, 1] = sgn * math.ldexp(h, p)
        stats[j, 2] = sgn * math.ldexp(l2, p)
        hh, hl = _int_dd(sh)
        h, l2 = _int_dd(sl)
        qh, ql = _dd_add(math.ldexp(hh, 24), math.ldexp(hl, 24), h, l2)
        stats[j, 3] = math.ldexp(qh, 2 * p)
        stats[j, 4] = math.ldexp(ql, 2 * p)
        # the bucket's edges: its lowest float32 magnitude and the one below the next bucket's
        lo_mag = (be << 23) | ((d & ((1 << mb) - 1)) << (23 - mb))
        vmin = _f32_value(lo_mag, 1)
        vmax = _f32_value(lo_mag + (1 << (23 - mb)) - 1, 1)
        if j > nside:
            stats[j, 5] = vmin
            stats[j, 6] = vmax
        else:
            stats[j, 5] = -vmax
            stats[j, 6] = -vmin


@numba.njit(cache=True, parallel=True)
def accumulate64_par(x, xbits, ef, mb, nside, st, chunk):
    """Parallel :func:`accumulate` of float64 samples by chunks: ``st[t]`` is thread ``t``'s table."""
    n = x.shape[0]
    nch = (n + chunk - 1) // chunk
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        i1 = min(n, i0 + chunk)
        accumulate(x[i0:i1], xbits[i0:i1], False, ef, mb, nside, st[t])


@numba.njit(cache=True)
def merge64(st, stats):
    """Per-thread tables of :func:`accumulate64_par` -> ``stats`` (sums as double-doubles)."""
    nthreads = st.shape[0]
    nb = stats.shape[0]
    for j in range(nb):
        c = 0.0
        ah = 0.0
        al = 0.0
        bh = 0.0
        bl = 0.0
        lo = np.inf
        hi = -np.inf
        for t in range(nthreads):
            c += st[t, j, 0]
            h, l2 = _two_sum(st[t, j, 1], st[t, j, 2])
            ah, al = _dd_add(ah, al, h, l2)
            h, l2 = _two_sum(st[t, j, 3], st[t, j, 4])
            bh, bl = _dd_add(bh, bl, h, l2)
            lo = min(lo, st[t, j, 5])
            hi = max(hi, st[t, j, 6])
        stats[j, 0] = c
        stats[j, 1] = ah
        stats[j, 2] = al
        stats[j, 3] = bh
        stats[j, 4] = bl
        stats[j, 5] = lo
        stats[j, 6] = hi


@numba.njit(cache=True)
def prefix(stats, cnt, p1h, p1l, p2h, p2l):
    """Double-double prefix sums over buckets (arrays of length ``nb + 1``)."""
    nb = stats.shape[0]
    cnt[0] = 0
    p1h[0] = 0.0
    p1l[0] = 0.0
    p2h[0] = 0.0
    p2l[0] = 0.0
    for j in range(nb):
        cnt[j + 1] = cnt[j] + np.int64(stats[j, 0])
        h, lo = _two_sum(stats[j, 1], stats[j, 2])
        p1h[j + 1], p1l[j + 1] = _dd_add(p1h[j], p1l[j], h, lo)
        h, lo = _two_sum(stats[j, 3], stats[j, 4])
        p2h[j + 1], p2l[j + 1] = _dd_add(p2h[j], p2l[j], h, lo)


@numba.njit(cache=True, parallel=True)
def gather_par(x, xbits, ef, mb, nside, want, chunk, hv, hn, dense):
    """Parallel gathering pass (float64 samples) by chunks (dynamic schedule): thread ``t`` appends
    the value of every sample of a wanted bucket to ``hv[t]`` (``hn[t]`` of them; ``hv[t]`` one
    longer than it can fill); the caller sorts them (every wanted bucket's run sorted, in bucket
    order). ``dense``: see :func:`gather32`."""
    n = x.shape[0]
    nch = (n + chunk - 1) // chunk
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        i1 = min(n, i0 + chunk)
        hn[t] = gather(x[i0:i1], xbits[i0:i1], ef, mb, nside, want, hv[t], hn[t], dense)


@numba.njit(cache=True)
def gather(x, xbits, ef, mb, nside, want, v, h, dense):
    """One chunk of :func:`gather_par` (also the one-thread pass of a small tensor: a parallel
    region would wake the sleeping worker threads first); returns the new fill of ``v``."""
    if dense:
        for i in range(x.shape[0]):
            v[h] = x[i]
            h += want[_bucket_bits(xbits[i], False, ef, mb, nside)]
    else:
        for i in range(x.shape[0]):
            if want[_bucket_bits(xbits[i], False, ef, mb, nside)]:
                v[h] = x[i]
                h += 1
    return h


@numba.njit(cache=True, parallel=True)
def gather32_par(xbits, ef, mb, nside, want, chunk, hk, hn, dense):
    """:func:`gather_par` for float32 samples: thread ``t`` appends to ``hk[t]`` the bits of every
    sample of a wanted bucket (``hk[t]`` one longer than it can fill); the caller sorts the values
    (every wanted bucket's run sorted, in bucket order). ``dense``: see :func:`gather32`."""
    n = xbits.shape[0]
    nch = (n + chunk - 1) // chunk
    e0 = ef + 126
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        hn[t] = gather32(xbits[i0:min(n, i0 + chunk)], e0, mb, nside, want, hk[t], hn[t], dense)


@numba.njit(cache=True)
def gather32(xbits, e0, mb, nside, want, kk, h, dense):
    """One chunk of :func:`gather32_par` (also a small tensor's one-thread pass); returns the new
    fill of ``kk``. ``dense`` (many samples wanted): every sample is written at ``kk[h]`` and ``h``
    advances only for a wanted one, no branch to mispredict; otherwise a branch, which a sparse
    gathering predicts well."""
    if dense:
        for i in range(xbits.shape[0]):
            b = xbits[i]
            kk[h] = b
            h += want[_bucket32(np.int64(b), e0, mb, nside)]
    else:
        for i in range(xbits.shape[0]):
            b = xbits[i]
            if want[_bucket32(np.int64(b), e0, mb, nside)]:
                kk[h] = b
                h += 1
    return h


@numba.njit(cache=True, inline="always")
def _bucket32(b, e0, mb, nside):
    """The bucket of float32 bits ``b`` (sign-extended), branch-free (as in accumulate32_par; equal
    to :func:`_bucket_bits`); ``e0`` the biased exponent of ``2^(ef − 1)``."""
    mag = b & 0x7FFFFFFF
    be = mag >> 23
    d = ((be - e0) << mb) + ((mag & 0x7FFFFF) >> (23 - mb)) + 1
    d = d if be >= e0 else 0
    sg = b >> 63
    return nside + ((d ^ sg) - sg)


@numba.njit(cache=True)
def gathered_prefix(xs, g1h, g1l, g2h, g2l):
    """Double-double prefix sums of ``x`` and ``x²`` over ``xs`` (arrays of length ``len(xs) + 1``)."""
    g1h[0] = 0.0
    g1l[0] = 0.0
    g2h[0] = 0.0
    g2l[0] = 0.0
    _prefix_run(xs, 0, xs.shape[0], g1h, g1l, g2h, g2l)


@numba.njit(cache=True, inline="always")
def _prefix_run(xs, i0, i1, g1h, g1l, g2h, g2l):
    """Double-double running sums of ``x`` and ``x²`` over ``xs[i0:i1]`` from 0, written at
    ``[i0 + 1, i1]``."""
    h1 = 0.0
    l1 = 0.0
    h2 = 0.0
    l2 = 0.0
    for i in range(i0, i1):
        v = xs[i]
        h1, l1 = _dd_add_d(h1, l1, v)
        qh, ql = _two_prod(v, v)
        if ql == 0.0:  # (always for float32 samples: x² is exact)
            h2, l2 = _dd_add_d(h2, l2, qh)
        else:
            h2, l2 = _dd_add(h2, l2, qh, ql)
        g1h[i + 1] = h1
        g1l[i + 1] = l1
        g2h[i + 1] = h2
        g2l[i + 1] = l2


#: gathered_prefix_par: samples per block (fixed, so the sums do not depend on the thread count)
_PREFIX_BLOCK = 1 << 15


@numba.njit(cache=True, parallel=True)
def gathered_prefix_par(xs, g1h, g1l, g2h, g2l):
    """:func:`gathered_prefix` in numba threads: each block of ``_PREFIX_BLOCK`` samples sums from
    0, then every block is shifted by the double-double total of the blocks before it. The blocks
    are fixed, so the result depends on the samples only, not on the thread count; it equals
    :func:`gathered_prefix` to double-double rounding (bit for bit where the sums are exact in
    double-double, e.g. float32 samples spanning a few dozen octaves)."""
    n = xs.shape[0]
    nbk = (n + _PREFIX_BLOCK - 1) // _PREFIX_BLOCK
    g1h[0] = 0.0
    g1l[0] = 0.0
    g2h[0] = 0.0
    g2l[0] = 0.0
    for b in numba.prange(nbk):
        _prefix_run(xs, b * _PREFIX_BLOCK, min(n, (b + 1) * _PREFIX_BLOCK), g1h, g1l, g2h, g2l)
    base = np.zeros((nbk, 4))
    for b in range(1, nbk):
        e = b * _PREFIX_BLOCK
        base[b, 0], base[b, 1] = _dd_add(base[b - 1, 0], base[b - 1, 1], g1h[e], g1l[e])
        base[b, 2], base[b, 3] = _dd_add(base[b - 1, 2], base[b - 1, 3], g2h[e], g2l[e])
    for b in numba.prange(1, nbk):
        for i in range(b * _PREFIX_BLOCK + 1, min(n, (b + 1) * _PREFIX_BLOCK) + 1):
            g1h[i], g1l[i] = _dd_add(base[b, 0], base[b, 1], g1h[i], g1l[i])
            g2h[i], g2l[i] = _dd_add(base[b, 2], base[b, 3], g2h[i], g2l[i])


@numba.njit(cache=True)
def mark_window(want, bmin, bmax, cnt, ef, mb, nside, s_lo, s_hi, offset, qmin, qmax):
    """Mark the buckets that straddle a cut (overload point or decision threshold) for some step in
    ``[s_lo, s_hi]``: those whose ``[min, max]`` meets a cut's swept interval (with a relative margin
    of 1e-9 for the rounding of the quantizer's arithmetic). Returns the number of samples marked."""
    nb = want.shape[0]
    tot = 0
    for kk in range(qmin - 1, qmax + 1):
        u = kk + offset + 0.5
        t0 = u * s_lo
        t1 = u * s_hi
        if t0 > t1:
            t0, t1 = t1, t0
        m = 1e-9 * max(abs(t0), abs(t1))
        t0 -= m
        t1 += m
        j0 = max(_bucket(t0, ef, mb, nside) - 1, 0)
        j1 = min(_bucket(t1, ef, mb, nside) + 1, nb - 1)
        for j in range(j0, j1 + 1):
            if not want[j] and cnt[j + 1] > cnt[j] and bmin[j] <= t1 and bmax[j] >= t0:
                want[j] = True
                tot += cnt[j + 1] - cnt[j]
    return tot


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
    """``Σ (x − y)²`` over buckets ``[j0, j1)`` (``n`` samples) from the prefix sums (double-double),
    and ``Σ x`` (double-double): ``(vh, vl, s1h, s1l)``."""
    s1h, s1l = _dd_add(p1h[j1], p1l[j1], -p1h[j0], -p1l[j0])
    s2h, s2l = _dd_add(p2h[j1], p2l[j1], -p2h[j0], -p2l[j0])
    ah, al = _dd_mul_d(s1h, s1l, -2.0 * y)
    yh, yl = _two_prod(y, y)
    bh, bl = _dd_mul_d(yh, yl, n)
    vh, vl = _dd_add(s2h, s2l, ah, al)
    vh, vl = _dd_add(vh, vl, bh, bl)
    return vh, vl, s1h, s1l


#: a run's ``Σ(x − y)²`` from moments below this share of their magnitude (``Σx² + 2|y·Σx| + y²n``)
#: is summed sample by sample where the samples are gathered: the moments' double-double rounding
#: (~2^-104 of the magnitude) would show in its double (samples within ~1e-13 of a level far from 0)
_CANCEL = 2.0**-48


@numba.njit(cache=True, inline="always")
def _cancels(vh, vl, s1h, s2h, y, n):
    return vh + vl < _CANCEL * (s2h + 2.0 * abs(y * s1h) + y * y * n)


#: a run's ``Σ(x − y)²`` below this share of the prefix sums it is the difference of
#: (``P2[j1] + P2[j0] + 2|y|(|P1[j1]| + |P1[j0]|)``) is summed sample by sample: the prefix sums'
#: double-double rounding is relative to everything summed before the run (e.g. samples at ±1e17
#: before one at 1.0: its square was lost, and the error sum of [1e17, −1e17, 1.0] at 8 bits was 0)
_LOST = 2.0**-44


@numba.njit(cache=True, inline="always")
def _lost(vh, vl, p1h, p2h, j0, j1, y):
    return vh + vl < _LOST * ((p2h[j1] + p2h[j0]) + 2.0 * abs(y) * (abs(p1h[j1]) + abs(p1h[j0])))


@numba.njit(cache=True)
def _direct_run(xs, i0, i1, y):
    """``Σ (x − y)²`` over the gathered samples ``[i0, i1)`` one by one (double-double; ``x − y``
    is exact where it matters, ``x`` within a factor 2 of ``y``)."""
    vh = 0.0
    vl = 0.0
    for i in range(i0, i1):
        d = xs[i] - y
        p, pe = _two_prod(d, d)
        vh, vl = _dd_add(vh, vl, p, pe)
    return vh, vl


@numba.njit(cache=True)
def _direct_sum(xs, i0, i1):
    """``Σ x`` over the gathered samples ``[i0, i1)`` one by one (double-double)."""
    sh = 0.0
    sl = 0.0
    for i in range(i0, i1):
        sh, sl = _dd_add_d(sh, sl, xs[i])
    return sh, sl


@numba.njit(cache=True, inline="always")
def _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale, ch, cl, rh, rl, bh, bl, scc, exact, have, gstart,
           xs, missing, bmin, bmax):
    """Add the run of buckets ``[rs, re)`` on level ``rk`` (clipping part if ``rf``) to the sums
    (``exact=False``: the sums of the run in double-double, the rest in double — for scans);
    ``Σ c·x`` in double-double (``bh + bl``). With ``exact == 2`` (float64 samples, whose bucket
    sums are compensated, not exact) a run whose error cancels (``_CANCEL``) is summed sample by
    sample, by value for buckets of one value, from the gathered samples otherwise; buckets not
    gathered are marked in ``missing`` (their count is returned last: the sums are then
    incomplete)."""
    nm = 0
    if re > rs:
        n = float(cnt[re] - cnt[rs])
        if n > 0.0:
            y = (rk + offset) * scale
            if exact:
                vh, vl, s1h, s1l = _bulk(p1h, p1l, p2h, p2l, rs, re, n, y)
                lost = _lost(vh, vl, p1h, p2h, rs, re, y)
                if lost or (exact == 2 and _cancels(vh, vl, s1h, p2h[re] - p2h[rs], y, n)):
                    vh = 0.0
                    vl = 0.0
                    if lost:  # (Σx from the samples too: the prefix lost it as well)
                        s1h = 0.0
                        s1l = 0.0
                    for jj in range(rs, re):
                        nj = cnt[jj + 1] - cnt[jj]
                        if nj == 0:
                            continue
                        if bmin[jj] == bmax[jj]:  # (one value: (x − y)² times the count)
                            d = bmin[jj] - y
                            p, pe = _two_prod(d, d)
                            th, tl = _dd_mul_d(p, pe, float(nj))
                            vh, vl = _dd_add(vh, vl, th, tl)
                            if lost:
                                th, tl = _two_prod(bmin[jj], float(nj))
                                s1h, s1l = _dd_add(s1h, s1l, th, tl)
                        elif have[jj]:
                            th, tl = _direct_run(xs, gstart[jj], gstart[jj + 1], y)
                            vh, vl = _dd_add(vh, vl, th, tl)
                            if lost:
                                th, tl = _direct_sum(xs, gstart[jj], gstart[jj + 1])
                                s1h, s1l = _dd_add(s1h, s1l, th, tl)
                        else:
                            missing[jj] = True
                            nm += 1
            else:
                s1h, s1l = _dd_add(p1h[re], p1l[re], -p1h[rs], -p1l[rs])
                s2h, s2l = _dd_add(p2h[re], p2l[re], -p2h[rs], -p2l[rs])
                vh = (s2h + s2l) - y * (2.0 * (s1h + s1l) - y * n)
                vl = 0.0
            if rf:
                ch, cl = _dd_add(ch, cl, vh, vl)
            else:
                rh, rl = _dd_add(rh, rl, vh, vl)
            cc = rk + offset
            th, tl = _dd_mul_d(s1h, s1l, cc)
            bh, bl = _dd_add(bh, bl, th, tl)
            scc += cc * cc * n
    return ch, cl, rh, rl, bh, bl, scc, nm


@numba.njit(cache=True)
def _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, scale, offset, qmin, qmax,
              mode, exact, out, missing):
    """Error sums of one quantizer; returns the number of straddling buckets whose samples are not
    gathered (marked in ``missing``; the sums are then incomplete).

    ``out[0:2]`` = clipping Σe² (double-double), ``out[2:4]`` = rounding Σe², ``out[4]`` = Σ c·x
    (summed in double-double, so the same whatever the buckets and gathered samples: the polish's
    vertices do not depend on them), ``out[5]`` = Σ c² with ``c = k + offset`` the level in units of the step (for the step update
    of the exact polish). ``exact=False`` puts a straddling bucket whole on the side of its mean
    (an approximation for scans; no samples needed).
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
    bh = 0.0
    bl = 0.0
    scc = 0.0
    nmiss = 0
    j = 0
    # the pending run of buckets [rs, re) that lie wholly on level rk (clipped if rf): consecutive
    # such buckets are added with one bulk term
    rs = 0
    re = 0
    rk = 0.0
    rf = False
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
            # bulk: buckets [j, jb_end) all lie in segment c (joined to the pending run if that
            # run ends at j with the same level and part)
            if c <= 1:
                code = fqmin
            elif c >= ncut - 1:
                code = fqmax
            else:
                code = fqmin + (c - 1)
            fc = c == 0 or c == ncut
            if not (re == j and code == rk and fc == rf):
                ch, cl, rh, rl, bh, bl, scc, nm = _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale, ch, cl,
                                                      rh, rl, bh, bl, scc, exact, have, gstart, xs, missing, bmin, bmax)
                nmiss += nm
                rs = j
                rk = code
                rf = fc
            re = jb_end
            j = jb_end
        if c < ncut:
            jd_end = jt + 2
            if jd_end > nb:
                jd_end = nb
            while j < jd_end:
                nj = cnt[j + 1] - cnt[j]
                if nj > 0:
                    x0 = bmin[j]
                    x1 = bmax[j]
                    k0 = _code(x0, scale, offset, fqmin, fqmax, mode)
                    k1 = _code(x1, scale, offset, fqmin, fqmax, mode)
                    f0 = x0 < lo or x0 >= hi
                    f1 = x1 < lo or x1 >= hi
                    if not exact and k0 != k1:
                        # approximation: the bucket's samples spread evenly over [min, max]; the
                        # error is integrated piece by piece (second-order accurate in the width)
                        dens = nj / (x1 - x0)
                        tot = 0.0
                        edge = x0
                        kk = k0
                        while kk <= k1:
                            top = x1 if kk == k1 else min(x1, (kk + offset + 0.5) * scale)
                            y = (kk + offset) * scale
                            tot += dens * ((top - y) ** 3 - (edge - y) ** 3) / 3.0
                            edge = top
                            kk += 1.0
                        rh, rl = _dd_add(rh, rl, tot, 0.0)
                    elif k0 == k1 and (f0 == f1 or not exact):
                        if not (re == j and k0 == rk and f0 == rf):
                            ch, cl, rh, rl, bh, bl, scc, nm = _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset,
                                                                  scale, ch, cl, rh, rl, bh, bl, scc, exact, have,
                                                                  gstart, xs, missing, bmin, bmax)
                            nmiss += nm
                            rs = j
                            rk = k0
                            rf = f0
                        re = j + 1
                    elif not have[j]:
                        missing[j] = True
                        nmiss += 1
                    else:
                        # the bucket's samples are sorted: walk its runs of equal (code, clipped)
                        # with binary searches, each run added from the prefix sums
                        i = gstart[j]
                        iend = gstart[j + 1]
                        while i < iend:
                            xi = xs[i]
                            k = _code(xi, scale, offset, fqmin, fqmax, mode)
                            f = xi < lo or xi >= hi
                            a = i
                            b = iend
                            while b - a > 1:
                                mid = (a + b) >> 1
                                xm = xs[mid]
                                if _code(xm, scale, offset, fqmin, fqmax, mode) == k and (xm < lo or xm >= hi) == f:
                                    a = mid
                                else:
                                    b = mid
                            n = float(b - i)
                            y = (k + offset) * scale
                            vh, vl, s1h, s1l = _bulk(g1h, g1l, g2h, g2l, i, b, n, y)
                            lost = _lost(vh, vl, g1h, g2h, i, b, y)
                            if lost or (exact == 2 and _cancels(vh, vl, s1h, g2h[b] - g2h[i], y, n)):
                                vh, vl = _direct_run(xs, i, b, y)
                                if lost:
                                    s1h, s1l = _direct_sum(xs, i, b)
                            if f:
                                ch, cl = _dd_add(ch, cl, vh, vl)
                            else:
                                rh, rl = _dd_add(rh, rl, vh, vl)
                            cc = k + offset
                            th, tl = _dd_mul_d(s1h, s1l, cc)
                            bh, bl = _dd_add(bh, bl, th, tl)
                            scc += cc * cc * n
                            i = b
                j += 1
    ch, cl, rh, rl, bh, bl, scc, nm = _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale, ch, cl, rh, rl, bh,
                                          bl, scc, exact, have, gstart, xs, missing, bmin, bmax)
    nmiss += nm
    out[0] = ch
    out[1] = cl
    out[2] = rh
    out[3] = rl
    out[4] = bh + bl
    out[5] = scc
    return nmiss


@numba.njit(cache=True)
def evaluate(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, scales, offset, qmins, qmaxs,
             mode, exact, out, missing):
    """``out[i, :]`` = the six sums of :func:`_eval_one` for quantizer ``i``; returns the number of
    missing buckets met (0 means every row is exact)."""
    tot = 0
    for i in range(scales.shape[0]):
        tot += _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, scales[i], offset,
                         qmins[i], qmaxs[i], mode, exact, out[i], missing)
    return tot


@numba.njit(cache=True, parallel=True)
def evaluate_approx_par(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, scales,
                        offset, qmins, qmaxs, mode, out):
    """:func:`evaluate` with ``exact=False`` (needs no samples), quantizers in parallel."""
    for i in numba.prange(scales.shape[0]):
        miss = np.zeros(1, dtype=np.bool_)
        _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, scales[i],
                  offset, qmins[i], qmaxs[i], mode, False, out[i], miss)


@numba.njit(cache=True)
def golden(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, a, b, denom, offset, qmin, qmax,
           mode, rtol):
    """Golden-section minimisation of the bucket-approximate error over ``alpha in [a, b]``
    (``scale = alpha / denom``); returns ``alpha``."""
    buf = np.empty(6)
    miss = np.zeros(1, dtype=np.bool_)
    gr = 0.6180339887498949
    x1 = b - gr * (b - a)
    x2 = a + gr * (b - a)
    _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, x1 / denom, offset, qmin, qmax,
              mode, False, buf, miss)
    f1 = (buf[0] + buf[2]) + (buf[1] + buf[3])
    _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, x2 / denom, offset, qmin, qmax,
              mode, False, buf, miss)
    f2 = (buf[0] + buf[2]) + (buf[1] + buf[3])
    for _ in range(300):
        if b - a <= rtol * b:
            break
        if f1 <= f2:
            b = x2
            x2 = x1
            f2 = f1
            x1 = b - gr * (b - a)
            _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, x1 / denom, offset,
                      qmin, qmax, mode, False, buf, miss)
            f1 = (buf[0] + buf[2]) + (buf[1] + buf[3])
        else:
            a = x1
            x1 = x2
            f1 = f2
            x2 = a + gr * (b - a)
            _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, x2 / denom, offset,
                      qmin, qmax, mode, False, buf, miss)
            f2 = (buf[0] + buf[2]) + (buf[1] + buf[3])
    return x1 if f1 <= f2 else x2


# ----------------------------------------------------------------------------- interval bound
# A lower bound of the exact error sum over every step of an interval ``[sa, sb]`` (the proof of
# the large-tensor search, ``EmpiricalMSE._prove``). For a step in the interval the level of code
# ``k`` lies in ``comp_k = [c·sa, c·sb]`` (``c = k + offset``; reversed for ``c < 0``), and the
# threshold between codes ``k`` and ``k + 1`` in ``[(c + 1/2)·sa, (c + 1/2)·sb]``: its swept region.
# - A bucket that meets no swept region keeps one code ``k`` for every step of the interval: its
#   error is the quadratic ``S2 − 2·c·s·S1 + c²·s²·n`` in ``s``, exact from its sums. These add to
#   one quadratic ``Q(s)``, whose minimum over ``[sa, sb]`` is taken.
# - A sample of a bucket that meets a swept region (gathered) is nearest, at any step, to a level
#   in ``U = ∪_k comp_k``: its error is at least ``dist(x, U)²``. An ungathered bucket takes
#   ``n · min_{x ∈ [min, max]} dist(x, U)²`` (0 if the bucket meets ``U``, else the nearer end:
#   ``dist`` is unimodal on a gap of ``U``).
# So the error sum is at least ``min Q + Σ`` of those on the whole interval (for every
# round-to-nearest rule: each sample goes to a nearest level). The bound loses only second-order
# terms in the interval's width for the fixed buckets, which is what lets the proof prune a narrow
# interval next to the optimum.


@numba.njit(cache=True, inline="always")
def _comp_dist(x, k, offset, sa, sb):
    """Distance of ``x`` to ``comp_k``."""
    c = k + offset
    if c >= 0.0:
        lo = c * sa
        hi = c * sb
    else:
        lo = c * sb
        hi = c * sa
    if x < lo:
        return lo - x
    if x > hi:
        return x - hi
    return 0.0


@numba.njit(cache=True, inline="always")
def _u_dist(x, offset, fqmin, fqmax, mode, sa, sb):
    """``(dist(x, U), gap, crossings)``: ``gap`` is the smallest code whose component lies above
    ``x`` (the gap of ``U`` that holds ``x``; meaningful when the distance is positive),
    ``crossings`` the thresholds ``x`` crosses over the interval."""
    ka = _code(x, sa, offset, fqmin, fqmax, mode)
    kb = _code(x, sb, offset, fqmin, fqmax, mode)
    k0 = min(ka, kb) - 1.0
    k1 = max(ka, kb) + 1.0
    if k1 - k0 >= 4.0:  # (a code strictly between ka and kb: its level passes x)
        return 0.0, 0.0, abs(ka - kb)
    if k0 < fqmin:
        k0 = fqmin
    if k1 > fqmax:
        k1 = fqmax
    d = math.inf
    gap = fqmax + 1.0
    k = k0
    while k <= k1:
        dk = _comp_dist(x, k, offset, sa, sb)
        if dk < d:
            d = dk
        c = k + offset
        if gap > fqmax and (c * sa if c >= 0.0 else c * sb) > x:
            gap = k
        k += 1.0
    return d, gap, abs(ka - kb)


@numba.njit(cache=True, inline="always")
def _q_add(q1h, q1l, q2h, q2l, j0, j1, n, c, ch, cl, bh, bl, a_sum):
    """Add the ``n`` samples ``[j0, j1)`` of prefix sums ``q1`` (Σx) and ``q2`` (Σx²), all on level
    ``c`` for every step, to the quadratic ``Q(s) = C − 2·B·s + A·s²`` (``C``, ``B`` double-double)."""
    s1h, s1l = _dd_add(q1h[j1], q1l[j1], -q1h[j0], -q1l[j0])
    s2h, s2l = _dd_add(q2h[j1], q2l[j1], -q2h[j0], -q2l[j0])
    ch, cl = _dd_add(ch, cl, s2h, s2l)
    th, tl = _dd_mul_d(s1h, s1l, c)
    bh, bl = _dd_add(bh, bl, th, tl)
    return ch, cl, bh, bl, a_sum + c * c * n


@numba.njit(cache=True, inline="always")
def _seg_dist(xs, g1h, g1l, g2h, g2l, i0, i1, y):
    """``(Σ (x − y)², error scale)`` over the gathered samples ``[i0, i1)`` (prefix sums)."""
    if i1 <= i0:
        return 0.0, 0.0
    n = float(i1 - i0)
    vh, vl, s1h, s1l = _bulk(g1h, g1l, g2h, g2l, i0, i1, n, y)
    s1 = s1h + s1l
    return max(vh + vl, 0.0), (g2h[i1] - g2h[i0]) + 2.0 * abs(y * s1) + y * y * n


@numba.njit(cache=True)
def _run_dist(xs, g1h, g1l, g2h, g2l, i0, i1, l_lo, r_lo, l_hi, r_hi):
    """``Σ dist(x, [l_lo, r_lo] ∪ [l_hi, r_hi])²`` over the sorted gathered samples ``[i0, i1)``
    (``l_lo <= l_hi``): sub-runs split by binary searches, each from the prefix sums."""
    if l_hi <= r_lo:  # (the components overlap: one interval)
        a = _bs_left(xs, l_lo, i0, i1)
        b = _bs_right(xs, max(r_lo, r_hi), a, i1)
        v1, e1 = _seg_dist(xs, g1h, g1l, g2h, g2l, i0, a, l_lo)
        v2, e2 = _seg_dist(xs, g1h, g1l, g2h, g2l, b, i1, max(r_lo, r_hi))
        return v1 + v2, e1 + e2
    m = 0.5 * (r_lo + l_hi)
    a = _bs_left(xs, l_lo, i0, i1)  # x < l_lo
    b = _bs_right(xs, r_lo, a, i1)  # inside the lower component
    c = _bs_right(xs, m, b, i1)  # nearer the lower one
    d = _bs_left(xs, l_hi, c, i1)  # nearer the upper one
    e = _bs_right(xs, r_hi, d, i1)  # inside the upper component
    v, er = _seg_dist(xs, g1h, g1l, g2h, g2l, i0, a, l_lo)
    v2, e2 = _seg_dist(xs, g1h, g1l, g2h, g2l, b, c, r_lo)
    v3, e3 = _seg_dist(xs, g1h, g1l, g2h, g2l, c, d, l_hi)
    v4, e4 = _seg_dist(xs, g1h, g1l, g2h, g2l, e, i1, r_hi)
    return v + v2 + v3 + v4, er + e2 + e3 + e4


@numba.njit(cache=True, inline="always")
def _snap(snaps, i, ch, cl, bh, bl, a_sum, mag, mscale, nev):
    snaps[i, 0] = ch
    snaps[i, 1] = cl
    snaps[i, 2] = bh
    snaps[i, 3] = bl
    snaps[i, 4] = a_sum
    snaps[i, 5] = mag
    snaps[i, 6] = mscale
    snaps[i, 7] = nev


@numba.njit(cache=True)
def interval_bound(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, sa, sb,
                   offset, qmin, qmax, mode, out, marks, snaps):
    """Lower bound of the error sum over every step in ``[sa, sb]`` (see above).

    ``out[0]`` the bound (the minimum of the fixed buckets' quadratic plus the straddling
    samples' distances), ``out[1]`` a bound of its rounding error and ``out[2]`` an upper estimate
    of the straddling samples' threshold crossings (the work of an exact sweep of the interval).

    ``snaps[i]`` receives the running sums over the buckets below ``marks[i]`` (sorted bucket
    indices, ``0 .. nb``): ``C`` and ``B`` (double-double), ``A``, the straddling samples'
    distances, their rounding scale and crossings; every bucket's part is its own, so a difference
    of two snapshots is the part of the buckets between (:func:`zero_point_bounds`)."""
    nb = 2 * nside + 1
    nm = marks.shape[0]
    mi = 0
    fqmin = float(qmin)
    fqmax = float(qmax)
    ch = 0.0  # Q(s) = C − 2·B·s + A·s² (C, B double-double; A = Σc²·n exact)
    cl = 0.0
    bh = 0.0
    bl = 0.0
    a_sum = 0.0
    nev = 0.0
    mag = 0.0
    mscale = 0.0
    wa = sa * (1.0 - 2e-9)
    wb = sb * (1.0 + 2e-9)
    j = 0
    kcut = qmin  # the cut (threshold between codes kcut and kcut + 1) the walk is at
    while j < nb:
        # the next swept region, merged with the following ones while they overlap
        if kcut < qmax:
            u = kcut + offset + 0.5
            r_lo = u * sa if u >= 0.0 else u * sb
            r_hi = u * sb if u >= 0.0 else u * sa
            k_hi = kcut
            while k_hi + 1 < qmax:
                u2 = k_hi + 1 + offset + 0.5
                n_lo = u2 * sa if u2 >= 0.0 else u2 * sb
                if n_lo > r_hi * (1.0 + 2e-9) + 1e-300:
                    break
                k_hi += 1
                r_hi = u2 * sb if u2 >= 0.0 else u2 * sa
            m = 1e-9 * max(abs(r_lo), abs(r_hi))
            r_lo -= m
            r_hi += m
            j_lo = _bucket(r_lo, ef, mb, nside) - 1
            j_hi = _bucket(r_hi, ef, mb, nside) + 1
            if j_hi > nb - 1:
                j_hi = nb - 1
            code = float(kcut)
        else:
            r_lo = math.inf
            r_hi = math.inf
            j_lo = nb
            j_hi = nb - 1
            k_hi = qmax
            code = fqmax
        # buckets [j, j_lo) lie below the region: code `code` (every one of them, for every step)
        if j_lo > j:
            while mi < nm and marks[mi] < j_lo:  # (split at the marks inside)
                r = max(marks[mi], j)
                n = float(cnt[r] - cnt[j])
                if n > 0.0:
                    ch, cl, bh, bl, a_sum = _q_add(p1h, p1l, p2h, p2l, j, r, n, code + offset, ch, cl, bh, bl, a_sum)
                j = r
                _snap(snaps, mi, ch, cl, bh, bl, a_sum, mag, mscale, nev)
                mi += 1
            n = float(cnt[j_lo] - cnt[j])
            if n > 0.0:
                ch, cl, bh, bl, a_sum = _q_add(p1h, p1l, p2h, p2l, j, j_lo, n, code + offset, ch, cl, bh, bl, a_sum)
            j = j_lo
        # buckets [j, j_hi]: checked one by one against the region [r_lo, r_hi]
        while j <= j_hi and j < nb:
            while mi < nm and marks[mi] <= j:
                _snap(snaps, mi, ch, cl, bh, bl, a_sum, mag, mscale, nev)
                mi += 1
            nj = cnt[j + 1] - cnt[j]
            if nj > 0:
                x0 = bmin[j]
                x1 = bmax[j]
                # fixed if the four corners of [min, max] × [sa, sb] (widened by 2e-9: the
                # quantizer's rounding) share one code (x/s is monotone in each)
                k = _code(x0, wa, offset, fqmin, fqmax, mode)
                if (k == _code(x0, wb, offset, fqmin, fqmax, mode) and k == _code(x1, wa, offset, fqmin, fqmax, mode)
                        and k == _code(x1, wb, offset, fqmin, fqmax, mode)):
                    ch, cl, bh, bl, a_sum = _q_add(p1h, p1l, p2h, p2l, j, j + 1, float(nj), k + offset, ch, cl, bh,
                                                   bl, a_sum)
                else:
                    if have[j]:
                        # runs of equal (code at wa, code at wb) in the sorted samples (binary
                        # searches): a run that keeps its code joins Q, the others go sample by sample
                        i = gstart[j]
                        iend = gstart[j + 1]
                        while i < iend:
                            xi = xs[i]
                            ka = _code(xi, wa, offset, fqmin, fqmax, mode)
                            kb = _code(xi, wb, offset, fqmin, fqmax, mode)
                            lo_i = i
                            hi_i = iend
                            while hi_i - lo_i > 1:
                                mid = (lo_i + hi_i) >> 1
                                xm = xs[mid]
                                if (_code(xm, wa, offset, fqmin, fqmax, mode) == ka
                                        and _code(xm, wb, offset, fqmin, fqmax, mode) == kb):
                                    lo_i = mid
                                else:
                                    hi_i = mid
                            if abs(ka - kb) >= 2.0:  # (a level passes every sample of the run)
                                nev += abs(ka - kb) * float(hi_i - i)
                            elif ka == kb:
                                ch, cl, bh, bl, a_sum = _q_add(g1h, g1l, g2h, g2l, i, hi_i, float(hi_i - i), ka + offset,
                                                               ch, cl, bh, bl, a_sum)
                            else:  # one crossing each: distances to the two components, by sub-runs
                                k_lo = min(ka, kb)
                                c = k_lo + offset
                                l_lo = c * sa if c >= 0.0 else c * sb
                                r_lo = c * sb if c >= 0.0 else c * sa
                                c += 1.0
                                l_hi = c * sa if c >= 0.0 else c * sb
                                r_hi = c * sb if c >= 0.0 else c * sa
                                v, e = _run_dist(xs, g1h, g1l, g2h, g2l, i, hi_i, l_lo, r_lo, l_hi, r_hi)
                                mag += v
                                mscale += e
                                nev += float(hi_i - i)
                            i = hi_i
                    else:
                        d0, g0, e0 = _u_dist(x0, offset, fqmin, fqmax, mode, sa, sb)
                        d1, g1, e1 = _u_dist(x1, offset, fqmin, fqmax, mode, sa, sb)
                        # (crossings: every sample's if a level passes the whole bucket, else the
                        # share of the bucket the region covers, and the two ends)
                        if max(e0, e1) >= 2.0:
                            nev += nj * max(e0, e1)
                        else:
                            nev += nj * min(1.0, (r_hi - r_lo) / (x1 - x0 + 1e-300)) + 2.0
                        wk = 0.0
                        if d0 > 0.0 and d1 > 0.0 and g0 == g1:
                            dm = min(d0, d1)
                            wk = nj * dm * dm
                        # the gap of U nearest the bucket's middle, (m − h, m + h): every sample
                        # has dist² >= h² − 2h·|x − m| (the tangent of (h − t)² at t = 0; negative
                        # once t > h), and Σ|x − m| <= sqrt(n·Σ(x − m)²) (exactly |Σx − n·m| if
                        # the bucket lies on one side of m): a bound from the bucket's sums
                        kg = math.floor(0.5 * (x0 + x1) / math.sqrt(sa * sb) - offset - 0.5)
                        kg = min(max(kg, fqmin), fqmax - 1.0)
                        c = kg + offset
                        g_lo = max(c * sa, c * sb)
                        g_hi = min((c + 1.0) * sa, (c + 1.0) * sb)
                        if g_hi > g_lo:
                            m = 0.5 * (g_lo + g_hi)
                            h = 0.5 * (g_hi - g_lo)
                            n = float(nj)
                            vh, vl, s1h, s1l = _bulk(p1h, p1l, p2h, p2l, j, j + 1, n, m)
                            s1 = s1h + s1l
                            if x0 >= m or x1 <= m:
                                t = abs(s1 - n * m)
                            else:
                                t = math.sqrt(n * max(vh + vl, 0.0))
                            wg = n * h * h - 2.0 * h * t
                            if wg > wk:
                                wk = wg
                            mscale += (p2h[j + 1] - p2h[j]) + 2.0 * abs(m * s1) + m * m * n + n * h * h
                        mag += wk
            j += 1
        kcut = k_hi + 1
    while mi < nm:
        _snap(snaps, mi, ch, cl, bh, bl, a_sum, mag, mscale, nev)
        mi += 1
    _q_min(ch, cl, bh, bl, a_sum, mag, mscale, nev, sa, sb, out)


@numba.njit(cache=True, inline="always")
def _q_min(ch, cl, bh, bl, a_sum, mag, mscale, nev, sa, sb, out):
    """``out`` = (min of ``Q(s) = C − 2·B·s + A·s²`` over ``[sa, sb]`` plus ``mag``, its rounding
    bound, ``nev``); ``A > 0`` unless every fixed sample sits on level 0."""
    b = bh + bl
    s = sa
    if a_sum > 0.0:
        s = min(max(b / a_sum, sa), sb)
    th, tl = _dd_mul_d(bh, bl, -2.0 * s)
    qh, ql = _dd_add(ch, cl, th, tl)
    ah, al = _two_prod(a_sum, s)
    ah, al = _dd_mul_d(ah, al, s)
    qh, ql = _dd_add(qh, ql, ah, al)
    out[0] = max(qh + ql, 0.0) + mag
    out[1] = 1e-14 * (abs(ch) + 2.0 * abs(b) * s + a_sum * s * s + mscale) + 1e-12 * mag
    out[2] = nev


@numba.njit(cache=True)
def zero_point_bounds(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, sa,
                      sb, z1, z2, top, mode, out):
    """:func:`interval_bound` of every zero point ``z1 <= z <= z2`` of the affine grid (levels
    ``(k − z)·s``, ``k = 0 .. top``) over the steps ``[sa, sb]``, from one walk: ``out[z − z1]``.

    A sample below ``t_z = −(z + 1/2)·sb`` sits on the bottom level ``−z·s`` at every step of the
    interval (``out[:, 3]``: the step where the quadratic is least), one above
    ``u_z = (top − z + 1/2)·sb`` on the top level: error ``(x + z·s)²`` or
    ``(x − (top − z)·s)²``, exact quadratics in ``s`` from the bucket prefix sums of the buckets
    wholly beyond (bucket order is value order). Every other sample's error is at least its
    distance to the levels of the union grid ``k·s``, ``−z2 <= k <= top − z1`` (they include the
    levels of ``z``): the walk of that grid (:func:`interval_bound`), snapshotted at each zero
    point's bucket limits, gives the part of the buckets between. Their sum, minimised over ``s``
    as one quadratic, bounds the error of ``z`` at every step of ``[sa, sb]``.
    """
    nb = 2 * nside + 1
    nz = z2 - z1 + 1
    wb = sb * (1.0 + 2e-9)  # (the quantizer's rounding: as the codes' widening)
    jlo = np.empty(nz, dtype=np.int64)
    jhi = np.empty(nz, dtype=np.int64)
    for i in range(nz):
        z = z1 + i
        jlo[i] = _bucket(-(z + 0.5) * wb, ef, mb, nside)  # buckets below: every sample < t_z
        jhi[i] = _bucket((top - z + 0.5) * wb, ef, mb, nside) + 1  # from here: every sample > u_z
    marks = np.unique(np.concatenate((jlo, jhi)))
    snaps = np.empty((marks.shape[0], 8))
    tmp = np.empty(3)
    interval_bound(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, sa, sb,
                   0.0, -z2, top - z1, mode, tmp, marks, snaps)
    for i in range(nz):
        z = z1 + i
        a = np.searchsorted(marks, jlo[i])
        b = np.searchsorted(marks, jhi[i])
        ch, cl = _dd_add(snaps[b, 0], snaps[b, 1], -snaps[a, 0], -snaps[a, 1])
        bh, bl = _dd_add(snaps[b, 2], snaps[b, 3], -snaps[a, 2], -snaps[a, 3])
        a_sum = snaps[b, 4] - snaps[a, 4]
        mag = max(snaps[b, 5] - snaps[a, 5], 0.0)
        mscale = snaps[b, 6] - snaps[a, 6]
        nev = snaps[b, 7] - snaps[a, 7]
        n = float(cnt[jlo[i]])
        if n > 0.0:
            ch, cl, bh, bl, a_sum = _q_add(p1h, p1l, p2h, p2l, 0, jlo[i], n, -float(z), ch, cl, bh, bl, a_sum)
        n = float(cnt[nb] - cnt[jhi[i]])
        if n > 0.0:
            ch, cl, bh, bl, a_sum = _q_add(p1h, p1l, p2h, p2l, jhi[i], nb, n, float(top - z), ch, cl, bh, bl, a_sum)
        _q_min(ch, cl, bh, bl, a_sum, mag, mscale, nev, sa, sb, out[i])
        out[i, 3] = min(max((bh + bl) / a_sum, sa), sb) if a_sum > 0.0 else sa


@numba.njit(cache=True)
def zero_point_bounds_many(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside,
                           sas, sbs, z1s, z2s, top, mode, offs, out):
    """:func:`zero_point_bounds` of the items ``[sas[i], sbs[i]] × z1s[i] .. z2s[i]`` into
    ``out[offs[i]:offs[i + 1]]``."""
    for i in range(sas.shape[0]):
        zero_point_bounds(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside,
                          sas[i], sbs[i], z1s[i], z2s[i], top, mode, out[offs[i]:offs[i + 1]])


@numba.njit(cache=True, parallel=True)
def zero_point_bounds_par(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside,
                          sas, sbs, z1s, z2s, top, mode, offs, out):
    """:func:`zero_point_bounds_many` in parallel."""
    for i in numba.prange(sas.shape[0]):
        zero_point_bounds(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside,
                          sas[i], sbs[i], z1s[i], z2s[i], top, mode, out[offs[i]:offs[i + 1]])


@numba.njit(cache=True, parallel=True)
def interval_bounds_par(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, sas,
                        sbs, offsets, qmins, qmaxs, mode, out):
    """:func:`interval_bound` of the intervals ``[sas[i], sbs[i]]`` (grid ``offsets[i], qmins[i],
    qmaxs[i]``) into ``out[i]``, in parallel."""
    marks = np.empty(0, dtype=np.int64)
    snaps = np.empty((0, 8))
    for i in numba.prange(sas.shape[0]):
        interval_bound(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside,
                       sas[i], sbs[i], offsets[i], qmins[i], qmaxs[i], mode, out[i], marks, snaps)


@numba.njit(cache=True)
def interval_bounds(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, sas,
                    sbs, offsets, qmins, qmaxs, mode, out):
    """:func:`interval_bounds_par` in one thread (little work: no parallel region to start)."""
    marks = np.empty(0, dtype=np.int64)
    snaps = np.empty((0, 8))
    for i in range(sas.shape[0]):
        interval_bound(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside,
                       sas[i], sbs[i], offsets[i], qmins[i], qmaxs[i], mode, out[i], marks, snaps)


@numba.njit(cache=True)
def marked_samples(want, gstart, xs):
    """The gathered samples of the buckets marked in ``want`` (in bucket order)."""
    m = 0
    for j in range(want.shape[0]):
        if want[j]:
            m += gstart[j + 1] - gstart[j]
    out = np.empty(m)
    m = 0
    for j in range(want.shape[0]):
        if want[j]:
            for i in range(gstart[j], gstart[j + 1]):
                out[m] = xs[i]
                m += 1
    return out


@numba.njit(cache=True, inline="always")
def _piece_at(v, bh, bl, a_sum, s2h, s2l):
    """``S2 − 2·v·B + v²·A`` in double-double (``S2 = s2h + s2l``, ``B = bh + bl``, ``A`` exact)."""
    th, tl = _dd_mul_d(bh, bl, -2.0 * v)
    ph, pl = _two_prod(v, v)
    qh, ql = _dd_mul_d(ph, pl, a_sum)
    fh, fl = _dd_add(s2h, s2l, th, tl)
    fh, fl = _dd_add(fh, fl, qh, ql)
    return fh + fl


@numba.njit(cache=True)
def sweep(x, s_lo, s_hi, offset, qmin, qmax, mode, n_best, s_floor):
    """Exact global minimisation over the step ``s in [s_lo, s_hi]`` by sweeping every breakpoint.

    As ``s`` grows, a sample crosses the decision thresholds one by one; between consecutive
    crossings the assignment of samples to levels is fixed and the total error is the quadratic
    ``Σx² − 2s·B + s²·A`` (``A = Σc²``, ``B = Σc·x``, ``c = code + offset``), minimised at its
    vertex or at an end of the interval. Sorting all crossings (at most ``N·levels``) and updating
    ``A``, ``B`` at each gives every piece's minimum. Returns the ``n_best`` best steps (best first)
    and their error sums. The first piece's vertex is clamped to ``[s_floor, ·]``
    (``s_floor < s_lo`` when the assignment at ``s_lo`` holds on all of ``(s_floor, s_lo]``).

    ``Σx²``, ``B`` and each piece's minimum are in double-double (``A`` is exact): the minimum
    is a small difference of large terms (at 16 bits of two samples, 10^-18 of ``Σx²``), and the
    ranking that picks the ``n_best`` must hold to that resolution.
    """
    n = x.shape[0]
    fqmin = float(qmin)
    fqmax = float(qmax)
    a_sum = 0.0
    bh = 0.0
    bl = 0.0
    s2h = 0.0
    s2l = 0.0
    n_ev = 0
    codes = np.empty(n)
    for i in range(n):
        xi = x[i]
        k = _code(xi, s_lo, offset, fqmin, fqmax, mode)
        codes[i] = k
        c = k + offset
        a_sum += c * c
        p, pe = _two_prod(c, xi)
        bh, bl = _dd_add(bh, bl, p, pe)
        p, pe = _two_prod(xi, xi)
        s2h, s2l = _dd_add(s2h, s2l, p, pe)
        if xi > 0.0:
            j = k - 1.0
            while j >= fqmin and j + 0.5 + offset > 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                n_ev += 1
                j -= 1.0
        elif xi < 0.0:
            j = k
            while j <= fqmax - 1.0 and j + 0.5 + offset < 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                n_ev += 1
                j += 1.0
    ev_s = np.empty(n_ev)
    ev_i = np.empty(n_ev, dtype=np.int64)
    ev_d = np.empty(n_ev)
    m = 0
    for i in range(n):
        xi = x[i]
        k = codes[i]
        if xi > 0.0:
            j = k - 1.0
            while j >= fqmin and j + 0.5 + offset > 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                ev_s[m] = xi / (j + 0.5 + offset)
                ev_i[m] = i
                ev_d[m] = -1.0
                m += 1
                j -= 1.0
        elif xi < 0.0:
            j = k
            while j <= fqmax - 1.0 and j + 0.5 + offset < 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                ev_s[m] = xi / (j + 0.5 + offset)
                ev_i[m] = i
                ev_d[m] = 1.0
                m += 1
                j += 1.0
    order = np.argsort(ev_s)
    best_s = np.full(n_best, np.nan)
    best_v = np.full(n_best, np.inf)
    s_prev = s_floor
    for e in range(n_ev + 1):
        s_next = s_hi if e == n_ev else ev_s[order[e]]
        if s_next > s_prev and a_sum > 0.0:
            v = (bh + bl) / a_sum
            if v < s_prev:
                v = s_prev
            elif v > s_next:
                v = s_next
            val = _piece_at(v, bh, bl, a_sum, s2h, s2l)
            # keep the n_best smallest (distinct pieces)
            w = 0
            for r in range(1, n_best):
                if best_v[r] > best_v[w]:
                    w = r
            if val < best_v[w]:
                best_v[w] = val
                best_s[w] = v
        if e < n_ev:
            idx = order[e]
            i = ev_i[idx]
            c = codes[i] + offset
            d = ev_d[idx]
            a_sum += 2.0 * c * d + d * d
            bh, bl = _dd_add_d(bh, bl, d * x[i])
            codes[i] += d
            if ev_s[idx] > s_prev:
                s_prev = ev_s[idx]
    o = np.argsort(best_v)
    return best_s[o], best_v[o]


@numba.njit(cache=True)
def sweep_window(xs, s_lo, s_hi, offset, qmin, qmax, mode, n_best, a0, b0, v0, s_floor):
    """Exact minimisation over the step ``s in [s_lo, s_hi]`` when only the samples ``xs`` can
    change level there (every other sample keeps its level: no cut passes through its bucket).

    ``a0 = Σc²`` and ``b0 = Σc·x`` over *all* samples at ``s_lo`` (``c = code + offset``) and
    ``v0`` the exact error sum there. As in :func:`sweep`, the crossings of ``xs`` are sorted
    and ``A``, ``B`` updated at each; the error is continuous in ``s`` (at a crossing the two
    levels are equally far), so it is carried from piece to piece as
    ``v(s) = v(s') + (s − s')·((s + s')·A − 2B)`` (no cancellation against ``Σx²``). Returns the
    ``n_best`` best steps (each piece's vertex, clamped to the piece) and their error sums, best
    first (``nan``/``inf`` padding). The first piece's vertex is clamped to ``[s_floor, ·]``
    (``s_floor < s_lo`` when the levels at ``s_lo`` hold on all of ``(s_floor, s_lo]``).
    """
    n = xs.shape[0]
    fqmin = float(qmin)
    fqmax = float(qmax)
    codes = np.empty(n)
    n_ev = 0
    for i in range(n):
        xi = xs[i]
        k = _code(xi, s_lo, offset, fqmin, fqmax, mode)
        codes[i] = k
        if xi > 0.0:
            j = k - 1.0
            while j >= fqmin and j + 0.5 + offset > 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                n_ev += 1
                j -= 1.0
        elif xi < 0.0:
            j = k
            while j <= fqmax - 1.0 and j + 0.5 + offset < 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                n_ev += 1
                j += 1.0
    ev_s = np.empty(n_ev)
    ev_i = np.empty(n_ev, dtype=np.int64)
    ev_d = np.empty(n_ev)
    m = 0
    for i in range(n):
        xi = xs[i]
        k = codes[i]
        if xi > 0.0:
            j = k - 1.0
            while j >= fqmin and j + 0.5 + offset > 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                ev_s[m] = xi / (j + 0.5 + offset)
                ev_i[m] = i
                ev_d[m] = -1.0
                m += 1
                j -= 1.0
        elif xi < 0.0:
            j = k
            while j <= fqmax - 1.0 and j + 0.5 + offset < 0.0 and xi / (j + 0.5 + offset) <= s_hi:
                ev_s[m] = xi / (j + 0.5 + offset)
                ev_i[m] = i
                ev_d[m] = 1.0
                m += 1
                j += 1.0
    order = np.argsort(ev_s)
    best_s = np.full(n_best, np.nan)
    best_v = np.full(n_best, np.inf)
    a_sum = a0
    b_sum = b0
    s_prev = s_lo
    v_prev = v0
    floor = s_floor
    for e in range(n_ev + 1):
        s_next = s_hi if e == n_ev else max(min(ev_s[order[e]], s_hi), s_lo)
        if s_next > s_prev:
            v = s_prev
            val = v_prev
            if a_sum > 0.0:
                v = b_sum / a_sum
                if v < floor:
                    v = floor
                elif v > s_next:
                    v = s_next
                val = v_prev + (v - s_prev) * ((v + s_prev) * a_sum - 2.0 * b_sum)
            w = 0
            for r in range(1, n_best):
                if best_v[r] > best_v[w]:
                    w = r
            if val < best_v[w]:
                best_v[w] = val
                best_s[w] = v
            v_prev = v_prev + (s_next - s_prev) * ((s_next + s_prev) * a_sum - 2.0 * b_sum)
            s_prev = s_next
            floor = s_next
        if e < n_ev:
            idx = order[e]
            i = ev_i[idx]
            c = codes[i] + offset
            d = ev_d[idx]
            a_sum += 2.0 * c * d + d * d
            b_sum += d * xs[i]
            codes[i] += d
    o = np.argsort(best_v)
    return best_s[o], best_v[o]


# ----------------------------------------------------------------------------- per channel


@numba.njit(cache=True)
def _direct_errs(xs, scale, offset, fqmin, fqmax, mode, out):
    """Direct error sums of one channel (the reference quantizer's operations; Neumaier sums):
    ``out = (clipping, rounding, Σc·x, Σc²)`` with ``c = code + offset``."""
    lo = (fqmin + offset - 0.5) * scale
    hi = (fqmax + offset + 0.5) * scale
    cs = 0.0
    cc = 0.0
    rs = 0.0
    rc = 0.0
    scx = 0.0
    scc = 0.0
    for i in range(xs.shape[0]):
        x = xs[i]
        k = _code(x, scale, offset, fqmin, fqmax, mode)
        c = k + offset
        e = c * scale - x
        e = e * e
        if x < lo or x >= hi:
            t = cs + e
            cc += (cs - t) + e if abs(cs) >= e else (e - t) + cs
            cs = t
        else:
            t = rs + e
            rc += (rs - t) + e if abs(rs) >= e else (e - t) + rs
            rs = t
        scx += c * x
        scc += c * c
    out[0] = cs + cc
    out[1] = rs + rc
    out[2] = scx
    out[3] = scc

# Exact per-channel optimum: branch and bound over the step, then an exact sweep of what survives.
#
# Notation (one channel, sorted; ``s`` the step, levels ``(k + offset)·s`` for codes ``qmin..qmax``):
# a sample ``x >= 0`` sees the level magnitudes ``c ∈ {c_lo, c_lo + 1, ..., c_P}`` and a sample
# ``x < 0`` (magnitude ``a = −x``) the magnitudes ``{c_lo, ..., c_N}``, with ``c_lo = 1/2`` on
# midrise and 0 otherwise, ``c_P = qmax + offset``, ``c_N = −(qmin + offset)`` (0 for the negative
# samples of the unsigned grids: they always round to 0). Every round-to-nearest rule maps ``x``
# to a nearest level, so the error sum is ``F(s) = Σ_i dist(a_i, s·C_i)²`` whatever the tie rule.
#
# Facts used (proof of exactness):
# 1. Between two consecutive threshold crossings (``x/s − offset`` passing a half-integer) the
#    assignment of samples to levels is fixed and ``F(s) = S2 − 2sB + s²A`` (``A = Σc²``,
#    ``B = Σc·x``). At a crossing (``a = (c + 1/2)·s``, the sample moving from level ``c + 1`` to
#    ``c`` as ``s`` grows) its two levels are equidistant, so ``F`` is continuous, and that
#    sample's slope ``2c'(c's − a)`` drops from ``(c + 1)·s`` to ``−c·s``: every crossing is a
#    concave kink. Hence every local minimum of ``F`` on ``(0, ∞)`` is the vertex ``B/A`` of a piece lying
#    inside that piece, with value ``S2 − B²/A``; the global minimum is the least of those.
#    (Below ``s0 = min|x≠0| / (2(L + 1))`` no sample crosses anything: the first piece reaches down
#    to 0; on the zero-level grids, above ``2·max|x|`` every sample rounds to 0 and ``F = S2``, more
#    than the max-calibration error ``≤ S2 − max|x|²``.)
# 2. Interval bound: for ``s ∈ [s_a, s_b]`` a level ``c·s`` lies in ``[c·s_a, c·s_b]``, so the error
#    of a sample is at least its squared distance to ``U = ∪_c [c·s_a, c·s_b]`` (the levels of its
#    sign), and ``F(s) >= LB(s_a, s_b) = Σ_i dist(a_i, U_i)²`` on the whole interval. (The nearest
#    part of ``U`` is one of the two levels around ``a/s_b``; four candidates cover rounding.)
# 3. Range: ``F(s) >= CL(s) = Σ_{a > c_top·s} (a − c_top·s)²`` (the outermost level is ``c_top·s``),
#    non-increasing in ``s``: below a step where ``CL`` exceeds an error already reached, nothing
#    wins. ``F(s') >= DZ(s)`` for every ``s' >= s`` with ``DZ(s) = Σ_{a<s/2} a² + Σ_{s/2<=a<s}
#    (s − a)²`` on the zero-level grids and ``Σ_{a<s/2} (s/2 − a)²`` on midrise (fact 2 with
#    ``s_b = ∞``), non-decreasing in ``s``: above a step where it exceeds that error, nothing wins.
# 4. Pairs: two samples ``x < y`` less than ``s`` apart (``δ = y − x``) either share a level
#    (their errors sum to at least ``δ²/2``) or sit on two levels at least ``s`` apart (the errors
#    then differ by at least ``s − δ``: their squares sum to at least ``(s − δ)²/2``). For every
#    ``s' >= s`` the second is larger still, so over disjoint pairs ``F(s') >= PB(s) =
#    Σ min(δ², (s − δ)²)/2`` (any uniform grid, clipped or not). Pairs about ``s/2`` apart give
#    ``s²/8`` each, ``s²/16`` a sample against the ``s²/12`` of rounding: above the optimum this
#    ends the range where ``DZ`` (only the dead zone's samples) is far too weak at many bits.
# So: an upper bound ``UB`` (the exact error of max-calibration and of a polished guess), the range
# ``[s_L, s_H]`` from 3 and 4 (prefix sums and one pass of the sorted channel), then branch and bound on it: an
# interval whose ``LB`` exceeds ``UB`` (with a margin for the rounding of the bound, so only
# provably worse intervals go) is dropped; one with few crossings is swept exactly (every piece's
# vertex, values ``S2 − B²/A`` in double-double, ``B`` and ``S2`` double-double sums, ``A`` exact);
# others are halved (geometrically). Every clip that could beat ``UB`` is in a swept piece, so the
# best swept vertex (or the ``UB`` point) is the global optimum; its error is then recomputed
# directly with the reference quantizer's operations (``_direct_errs``), with a short exact polish.
# The piece values are exact to ~eps² relative, so the least one is the least to rounding; the
# pruning margin (``UB·10^-9`` plus the bound's own rounding) only keeps more intervals.
# Work: one pass per bound (it stops as soon as the bound exceeds ``UB``), one per sweep plus an
# O(E) bucket sort of its E crossings; with few levels a sweep needs no pass at all (its cells
# and crossings come from binary searches, see ``_pc_sweep_cells``); the range and the guess
# take O(log n) each from prefix sums.

_EPS = 2.220446049250313e-16
#: crossings (per sample) up to which an interval is swept rather than halved (sweeps cost O(E)
#: after one pass; bounds one pass each) ...
_PC_LEAF = 4.0
#: ... below which it is swept without trying the bound first ...
_PC_TINY = 1.0
#: ... and at least this many crossings (small channels: one sweep beats many bounds)
_PC_LEAF_MIN = 4096.0
#: levels from which the pair bound (fact 4) ends the range above (fewer: DZ does it well enough)
_PC_PAIR_LEVELS = 31
#: the same two for few levels, whose sweeps need no pass over the samples
_PC_LEAF_CELLS = 2.0
_PC_TINY_CELLS = 0.5


@numba.njit(cache=True, inline="always")
def _bs_left(xs, v, lo, hi):
    """First index ``i`` in ``[lo, hi)`` with ``xs[i] >= v`` (``hi`` if none); ``xs`` sorted."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if xs[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, inline="always")
def _bs_right(xs, v, lo, hi):
    """First index ``i`` in ``[lo, hi)`` with ``xs[i] > v`` (``hi`` if none); ``xs`` sorted."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if xs[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, inline="always")
def _seg2(p1, p2, j0, j1, y, sign):
    """``(Σ (sign·x − y)², error bound scale)`` over the sorted samples ``[j0, j1)`` from prefix sums.

    The scale is that of the prefix sums the differences are taken from (their rounding is
    relative to the whole prefix, e.g. a large sample sorted before a segment of small ones), not
    only of the segment's own sums."""
    if j1 <= j0:
        return 0.0, 0.0
    nn = float(j1 - j0)
    s1 = sign * (p1[j1] - p1[j0])
    s2 = p2[j1] - p2[j0]
    v = s2 - 2.0 * y * s1 + y * y * nn
    return max(v, 0.0), (p2[j1] + p2[j0]) + 2.0 * abs(y) * (abs(p1[j1]) + abs(p1[j0])) + y * y * nn


@numba.njit(cache=True)
def _pc_clip_part(xs, p1, p2, i0, s, c_n, c_p):
    """``(CL(s), error scale)``: the error of the samples beyond the outermost levels (fact 3)."""
    n = xs.shape[0]
    jn = _bs_left(xs, -c_n * s, 0, i0)  # negatives with a > c_N·s: [0, jn)
    jp = _bs_right(xs, c_p * s, i0, n)  # positives with a > c_P·s: [jp, n)
    v1, e1 = _seg2(p1, p2, 0, jn, c_n * s, -1.0)
    v2, e2 = _seg2(p1, p2, jp, n, c_p * s, 1.0)
    return v1 + v2, e1 + e2


@numba.njit(cache=True)
def _pc_dead_zone(xs, p1, p2, i0, s, c_n, midrise):
    """``(DZ(s), error scale)`` of fact 3: a lower bound of the error sum at every step ``>= s``."""
    n = xs.shape[0]
    v = 0.0
    e = 0.0
    h = 0.5 * s
    if c_n == 0.0:  # (unsigned: negatives always round to 0)
        a, b = _seg2(p1, p2, 0, i0, 0.0, -1.0)
        v += a
        e += b
    if midrise:
        j = _bs_right(xs, -h, 0, i0)  # negatives with a < s/2: [j, i0)
        a, b = _seg2(p1, p2, j, i0, h, -1.0)
        v += a
        e += b
        j = _bs_left(xs, h, i0, n)  # positives with a < s/2: [i0, j)
        a, b = _seg2(p1, p2, i0, j, h, 1.0)
        return v + a, e + b
    if c_n > 0.0:
        j1 = _bs_right(xs, -s, 0, i0)  # a < s
        j2 = _bs_right(xs, -h, j1, i0)  # a < s/2
        a, b = _seg2(p1, p2, j2, i0, 0.0, -1.0)
        v += a
        e += b
        a, b = _seg2(p1, p2, j1, j2, s, -1.0)
        v += a
        e += b
    j1 = _bs_left(xs, h, i0, n)  # a < s/2: [i0, j1)
    j2 = _bs_left(xs, s, j1, n)  # s/2 <= a < s: [j1, j2)
    a, b = _seg2(p1, p2, i0, j1, 0.0, 1.0)
    v += a
    e += b
    a, b = _seg2(p1, p2, j1, j2, s, 1.0)
    return v + a, e + b


@numba.njit(cache=True)
def _pc_approx(xs, p1, p2, i0, s, c_n, c_p, midrise):
    """A smooth estimate of the error sum at ``s`` (clipping part exact, rounding ``s²/12`` a sample
    inside, ``a²`` in the dead zone): only to place the first guess."""
    n = xs.shape[0]
    jn = _bs_left(xs, -c_n * s, 0, i0)
    jp = _bs_right(xs, c_p * s, i0, n)
    v, _ = _seg2(p1, p2, 0, jn, c_n * s, -1.0)
    v2, _ = _seg2(p1, p2, jp, n, c_p * s, 1.0)
    v += v2
    r = s * s / 12.0
    if midrise:
        return v + r * float((i0 - jn) + (jp - i0))
    if c_n > 0.0:
        j = _bs_right(xs, -0.5 * s, jn, i0)
        v += (p2[i0] - p2[j]) + r * float(j - jn)
    j = _bs_left(xs, 0.5 * s, i0, jp)
    return v + (p2[j] - p2[i0]) + r * float(jp - j)


@numba.njit(cache=True, inline="always")
def _pc_lb_run(xs, j0, j1, sign, c_lo, im, sa, sb, isb):
    """Σ over the samples ``[j0, j1)`` (magnitudes ``sign·x``) of the squared distance to
    ``U = ∪_{0<=k<=im} [(c_lo+k)·sa, (c_lo+k)·sb]`` (fact 2). The two levels around ``a/s_b``
    hold the nearest part of ``U``; the index is biased down by 4 ulp, so a misplaced index only
    happens for ``a`` within ulps above a level's ``c·s_b`` (distance ~0, error ~(4·eps·a)²)."""
    lb = 0.0
    bias = 1.0 - 4.0 * _EPS
    for j in range(j0, j1):
        a = sign * xs[j]
        m = math.floor(a * isb * bias - c_lo)
        m = min(max(m, 0.0), im)
        c1 = c_lo + m
        d1 = max(max(c1 * sa - a, a - c1 * sb), 0.0)
        c2 = c1 + 1.0
        d2 = max(max(c2 * sa - a, a - c2 * sb), 0.0) if m < im else d1
        t = min(d1, d2)
        lb += t * t
    return lb


@numba.njit(cache=True)
def _pc_bound(xs, i0, c_lo, im_n, im_p, sa, sb, s2, thr):
    """Fact 2: ``True`` if the interval bound over the steps ``[sa, sb]``, less its rounding margin,
    exceeds ``thr``. Blocks of samples are taken from the smallest magnitudes outwards, and the
    pass stops as soon as the bound exceeds ``thr``."""
    n = xs.shape[0]
    isb = 1.0 / sb
    shrink = 1.0 - (n + 8) * _EPS
    tail = 32.0 * _EPS * _EPS * s2
    lb = 0.0
    jn = i0  # negatives left: [0, jn)
    jp = i0  # positives left: [jp, n)
    while jn > 0 or jp < n:
        if jp < n:
            je = min(jp + 128, n)
            lb += _pc_lb_run(xs, jp, je, 1.0, c_lo, im_p, sa, sb, isb)
            jp = je
        if jn > 0:
            js = max(jn - 128, 0)
            lb += _pc_lb_run(xs, js, jn, -1.0, c_lo, im_n, sa, sb, isb)
            jn = js
        if lb * shrink - 4.0 * _EPS * math.sqrt(lb * s2) - tail > thr:
            return True
    return False


@numba.njit(cache=True)
def _pc_events(xs, p1, i0, c_n, c_p, sa, sb):
    """Estimated number of threshold crossings over the steps ``[sa, sb]`` (prefix sums:
    ``Σ min(a/s, c_top)`` at both ends)."""
    n = xs.shape[0]
    tot = 0.0
    for s, sg in ((sa, 1.0), (sb, -1.0)):
        jn = _bs_left(xs, -c_n * s, 0, i0)
        jp = _bs_right(xs, c_p * s, i0, n)
        v = (-(p1[i0] - p1[jn]) + (p1[jp] - p1[i0])) / s + c_n * jn + c_p * (n - jp)
        tot += sg * v
    return tot


@numba.njit(cache=True)
def _pc_sweep(xs, sa, sb, floor, offset, fqmin, fqmax, mode, s2h, s2l, tie, exact_prod, best):
    """Fact 1 on ``[sa, sb]``: every piece's vertex (the first piece reaching down to ``floor``);
    ``best = (error sum, step)`` is replaced by a better vertex (equal within ``tie``: the smaller
    step). Crossings are ordered by a bucket sort on the step (then insertion sort: O(E) for
    evenly spread crossings)."""
    n = xs.shape[0]
    codes = np.empty(n)
    nev = np.empty(n, dtype=np.int64)
    a_sum = 0.0
    bh = 0.0
    bl = 0.0
    m = 0
    for i in range(n):
        x = xs[i]
        k = _code(x, sa, offset, fqmin, fqmax, mode)
        kb = _code(x, sb, offset, fqmin, fqmax, mode)
        codes[i] = k
        c = k + offset
        a_sum += c * c
        if exact_prod:
            bh, e = _two_sum(bh, c * x)
            bl += e
        else:
            p, pe = _two_prod(c, x)
            bh, e = _two_sum(bh, p)
            bl += e + pe
        cnt = int(abs(k - kb)) + 1  # (+1: a crossing the rounding puts at s_b itself)
        nev[i] = cnt
        m += cnt
    ev_s = np.empty(m)
    ev_i = np.empty(m, dtype=np.int64)
    m = 0
    for i in range(n):
        x = xs[i]
        k = codes[i]
        top = m + nev[i]
        if x > 0.0:
            j = k - 1.0
            while m < top and j >= fqmin and j + 0.5 + offset > 0.0:
                v = x / (j + 0.5 + offset)
                if v > sb:
                    break
                ev_s[m] = v
                ev_i[m] = i
                m += 1
                j -= 1.0
        elif x < 0.0:
            j = k
            while m < top and j <= fqmax - 1.0 and j + 0.5 + offset < 0.0:
                v = x / (j + 0.5 + offset)
                if v > sb:
                    break
                ev_s[m] = v
                ev_i[m] = i
                m += 1
                j += 1.0
    order = _pc_order(ev_s, m, sa, sb)
    s_prev = floor
    for e in range(m + 1):
        s_next = sb if e == m else ev_s[order[e]]
        if a_sum > 0.0:
            v = (bh + bl) / a_sum
            if v > s_prev and v <= s_next:
                f = _pc_piece(bh, bl, a_sum, s2h, s2l)
                if f < best[0] - tie or (f <= best[0] + tie and v < best[1]):
                    best[0] = f
                    best[1] = v
        if e < m:
            idx = order[e]
            i = ev_i[idx]
            x = xs[i]
            dlt = -1.0 if x > 0.0 else 1.0
            c = codes[i] + offset
            a_sum += 2.0 * c * dlt + 1.0
            bh, e2 = _two_sum(bh, dlt * x)
            bl += e2
            codes[i] += dlt
            if s_next > s_prev:
                s_prev = s_next


@numba.njit(cache=True, inline="always")
def _pc_order(ev_s, m, sa, sb):
    """Indices of ``ev_s[:m]`` in increasing order: a bucket sort on ``[sa, sb]`` then an
    insertion sort (only within-bucket inversions remain: O(m) for evenly spread values)."""
    order = np.empty(m, dtype=np.int64)
    if m == 0:
        return order
    cntb = np.zeros(m + 1, dtype=np.int64)
    scale = m / (sb - sa) if sb > sa else 0.0
    keys = np.empty(m, dtype=np.int64)
    for e in range(m):
        kk = int((ev_s[e] - sa) * scale)
        kk = min(max(kk, 0), m - 1)
        keys[e] = kk
        cntb[kk + 1] += 1
    for b in range(m):
        cntb[b + 1] += cntb[b]
    for e in range(m):
        kk = keys[e]
        order[cntb[kk]] = e
        cntb[kk] += 1
    for e in range(1, m):
        o = order[e]
        v = ev_s[o]
        r = e - 1
        while r >= 0 and ev_s[order[r]] > v:
            order[r + 1] = order[r]
            r -= 1
        order[r + 1] = o
    return order


@numba.njit(cache=True, inline="always")
def _pc_piece(bh, bl, a_sum, s2h, s2l):
    """``S2 − B²/A`` in double-double (``B = bh + bl``, ``A`` exact)."""
    ph, pl = _two_prod(bh, bh)
    pl += 2.0 * bh * bl
    qh = ph / a_sum
    th, tl = _two_prod(qh, a_sum)
    ql = (((ph - th) - tl) + pl) / a_sum
    fh, fl = _two_sum(s2h, -qh)
    return fh + ((fl + s2l) - ql)


@numba.njit(cache=True)
def _pc_sweep_cells(xs, p1h, p1l, sa, sb, floor, offset, qmin, qmax, s2h, s2l, tie, best):
    """:func:`_pc_sweep` without a pass over the samples (for few levels): at ``sa`` the samples
    between consecutive thresholds ``t_j·sa`` (``t_j = j + 1/2 + offset``; one binary search each)
    form the cells of the codes, whose ``A`` and ``B`` come from double-double prefix sums; the
    crossings of threshold ``j`` in ``(sa, sb]`` are the samples with ``x`` between ``t_j·sa``
    and ``t_j·sb`` (two binary searches), already in order of their step ``x/t_j``. Membership
    uses the same products on both sides (a sample above ``t_j·sa`` is in the upper cell and
    crosses iff it is at most ``t_j·sb``), so the running ``A``, ``B`` stay consistent."""
    n = xs.shape[0]
    a_sum = 0.0
    bh = 0.0
    bl = 0.0
    prev = 0
    m = 0
    for k in range(qmin, qmax + 1):
        nxt = n if k == qmax else _bs_right(xs, (k + 0.5 + offset) * sa, prev, n)
        if nxt > prev:
            c = k + offset
            a_sum += c * c * (nxt - prev)
            sh, sl = _dd_add(p1h[nxt], p1l[nxt], -p1h[prev], -p1l[prev])
            th, tl = _dd_mul_d(sh, sl, c)
            bh, bl = _dd_add(bh, bl, th, tl)
        if k < qmax:
            t = k + 0.5 + offset
            if t > 0.0:
                m += _bs_right(xs, t * sb, nxt, n) - nxt
            elif t < 0.0:
                m += nxt - _bs_right(xs, t * sb, 0, nxt)
        prev = nxt
    ev_s = np.empty(m)
    ev_a = np.empty(m)
    ev_x = np.empty(m)
    m = 0
    for k in range(qmin, qmax):
        t = k + 0.5 + offset
        if t == 0.0:
            continue
        ja = _bs_right(xs, t * sa, 0, n)
        jb = _bs_right(xs, t * sb, 0, n)
        c = k + offset
        if t > 0.0:  # code k+1 -> k as s passes x/t
            da = -(2.0 * c + 1.0)
            sg = -1.0
            j0, j1 = ja, jb
        else:  # code k -> k+1
            da = 2.0 * c + 1.0
            sg = 1.0
            j0, j1 = jb, ja
        for i in range(j0, j1):
            x = xs[i]
            v = min(max(x / t, sa), sb)
            ev_s[m] = v
            ev_a[m] = da
            ev_x[m] = sg * x
            m += 1
    order = _pc_order(ev_s, m, sa, sb)
    s_prev = floor
    for e in range(m + 1):
        s_next = sb if e == m else ev_s[order[e]]
        if a_sum > 0.0:
            v = (bh + bl) / a_sum
            if v > s_prev and v <= s_next:
                f = _pc_piece(bh, bl, a_sum, s2h, s2l)
                if f < best[0] - tie or (f <= best[0] + tie and v < best[1]):
                    best[0] = f
                    best[1] = v
        if e < m:
            idx = order[e]
            a_sum += ev_a[idx]
            bh, e2 = _two_sum(bh, ev_x[idx])
            bl += e2
            if s_next > s_prev:
                s_prev = s_next


@numba.njit(cache=True)
def _pc_cells_f(xs, p1h, p2, s, offset, qmin, qmax):
    """``(F(s), error scale)``: the error sum at step ``s`` from the cells of the codes (binary
    searches and prefix sums; an upper bound once the error scale times ``(n + 8)·eps`` is added)."""
    n = xs.shape[0]
    f = 0.0
    e = 0.0
    prev = 0
    for k in range(qmin, qmax + 1):
        nxt = n if k == qmax else _bs_right(xs, (k + 0.5 + offset) * s, prev, n)
        if nxt > prev:
            y = (k + offset) * s
            nn = float(nxt - prev)
            s1 = p1h[nxt] - p1h[prev]
            q = p2[nxt] - p2[prev]
            f += max(q - 2.0 * y * s1 + y * y * nn, 0.0)
            e += q + 2.0 * abs(y * s1) + y * y * nn
        prev = nxt
    return f, e


@numba.njit(cache=True)
def _pc_polish(xs, s, d, offset, fqmin, fqmax, mode, buf, res, steps):
    """Exact error at step ``s`` and up to ``steps`` "assign, move to the vertex" steps that lower it;
    ``res = (error sum, step, clipping, rounding)``."""
    _direct_errs(xs, s, offset, fqmin, fqmax, mode, buf)
    f = buf[0] + buf[1]
    res[0] = f
    res[1] = s
    res[2] = buf[0]
    res[3] = buf[1]
    for _ in range(steps):
        if not buf[3] > 0.0:
            break
        g = buf[2] / buf[3]
        if not g > 0.0 or g == res[1]:
            break
        _direct_errs(xs, g, offset, fqmin, fqmax, mode, buf)
        f2 = buf[0] + buf[1]
        if f2 < res[0] or (f2 == res[0] and g < res[1]):
            res[0] = f2
            res[1] = g
            res[2] = buf[0]
            res[3] = buf[1]
        else:
            break


@numba.njit(cache=True)
def _pc_take(res, cand, tie):
    """Keep the better of two ``(error sum, step, clipping, rounding)`` (within ``tie``: smaller step)."""
    if cand[0] < res[0] - tie or (cand[0] <= res[0] + tie and cand[1] < res[1]):
        for j in range(4):
            res[j] = cand[j]


@numba.njit(cache=True)
def _pc_channel(row, d, offset, qmin, qmax, mode, unsigned, midrise, norm, out):
    """Exact global optimum of one sorted channel (see the comment above); ``out = (alpha,
    clipping MSE, rounding MSE)``."""
    n = row.shape[0]
    xs, unit, p1, p1l, p2, s2h, s2l = _pc_prepare(row, norm)
    res = np.empty(3)
    _pc_solve(xs, p1, p1l, p2, s2h, s2l, d, offset, qmin, qmax, mode, unsigned, midrise, norm, np.inf, np.inf, res)
    a = res[0] * d
    _pc_clip_ulps(xs, a, d, offset, float(qmin), float(qmax), mode, s2h + s2l, res)
    # (MSEs back in the samples' units: times the unit twice, so 0 stays 0 when unit² overflows)
    out[0] = res[0] * unit
    out[1] = max(res[1], 0.0) / n * unit * unit
    out[2] = max(res[2], 0.0) / n * unit * unit


#: an optimum whose error sum is below this share of ``Σx²`` is at the rounding level of the
#: samples (lattice data: levels hit samples exactly): there the clip's ulp-neighbours can err far
#: less, and the least of them is taken (elsewhere they differ by far less than the error's rounding)
_PC_ULP_LEVEL = 2.0**-64


@numba.njit(cache=True)
def _pc_clip_ulps(xs, a, d, offset, fqmin, fqmax, mode, s2, res):
    """The step found (``res = (step, clipping, rounding)``) as the clip ``a = step·D`` a user gets:
    ``res = (clip, clipping, rounding)`` of the quantizer of that clip (whose step is ``a/D``, not
    always the step found: the errors are taken again there if they differ). An error at the
    rounding level of the samples (``_PC_ULP_LEVEL``): the least of the clip and its two
    ulp-neighbours on either side (ties: the clip itself), e.g. ``[1e20, −1e20, 1]`` at 8 bits,
    where ``1e20`` itself is exactly a level (error sum 1) but the clip one ulp above is not (error
    sum 5.4e8)."""
    if not (a > 0.0 and a < np.inf):
        res[0] = a
        return
    buf = np.empty(4)
    s0 = a / d
    if s0 != res[0]:
        _direct_errs(xs, s0, offset, fqmin, fqmax, mode, buf)
        res[1] = buf[0]
        res[2] = buf[1]
    res[0] = a
    f = res[1] + res[2]
    if not f < _PC_ULP_LEVEL * s2:
        return
    lo = a
    hi = a
    for _ in range(2):
        lo = np.nextafter(lo, 0.0)
        hi = np.nextafter(hi, np.inf)
        for ak in (lo, hi):
            if ak > 0.0 and ak < np.inf:
                _direct_errs(xs, ak / d, offset, fqmin, fqmax, mode, buf)
                fk = buf[0] + buf[1]
                if fk < f:
                    f = fk
                    res[0] = ak
                    res[1] = buf[0]
                    res[2] = buf[1]


@numba.njit(cache=True)
def _pc_prepare(row, norm):
    """``(xs, unit, p1, p1l, p2, s2h, s2l)`` of one sorted channel: the samples as float64 (``norm``:
    float64 channels far from unit magnitude divided by the power of two ``unit``, exactly), prefix
    sums ``Σx`` (double-double ``p1 + p1l``) and ``Σx²`` (plain ``p2``), and ``S2 = Σx²`` in
    double-double (``s2h + s2l``; exact products when ``norm``; float32 samples' squares are exact)."""
    n = row.shape[0]
    xs = np.empty(n)
    amax = max(-float(row[0]), float(row[n - 1]))
    unit = 1.0
    if norm and amax > 0.0 and not (2.0**-100 <= amax <= 2.0**100):
        ex = min(math.frexp(amax)[1], 1023)  # (2^1024 is not a float64: 2^1023 there)
        unit = math.ldexp(1.0, ex)
        for i in range(n):  # (ldexp: exact, also for subnormal channels, where 2^-ex overflows)
            xs[i] = math.ldexp(float(row[i]), -ex)
    else:
        for i in range(n):
            xs[i] = row[i]
    # prefix sums: Σx in double-double (p1 + p1l), Σx² plain; S2 = Σx² in double-double
    p1 = np.empty(n + 1)
    p1l = np.empty(n + 1)
    p2 = np.empty(n + 1)
    p1[0] = 0.0
    p1l[0] = 0.0
    p2[0] = 0.0
    s2h = 0.0
    s2l = 0.0
    for i in range(n):
        x = xs[i]
        h, e = _two_sum(p1[i], x)
        p1[i + 1] = h
        p1l[i + 1] = p1l[i] + e
        p2[i + 1] = p2[i] + x * x
    if norm:
        for i in range(n):
            x = xs[i]
            q, qe = _two_prod(x, x)
            s2h, e = _two_sum(s2h, q)
            s2l += e + qe
    else:  # (float32 samples: x² is exact in float64)
        for i in range(n):
            x = xs[i]
            s2h, e = _two_sum(s2h, x * x)
            s2l += e
    return xs, unit, p1, p1l, p2, s2h, s2l


@numba.njit(cache=True)
def _pc_solve(xs, p1, p1l, p2, s2h, s2l, d, offset, qmin, qmax, mode, unsigned, midrise, norm, ext, s_cap, out):
    """The exact global optimum over the step of one prepared channel (:func:`_pc_prepare`) on the
    grid ``(d, offset, qmin, qmax)``: ``out = (step, clipping error sum, rounding error sum)`` at
    the samples' scale. ``ext``: an error sum already reached elsewhere (``inf`` if none); steps
    that cannot beat it (with the pruning margin) are not searched; if no step is left,
    ``out = (nan, inf, inf)`` (otherwise ``out`` may still be a step slightly worse than ``ext``,
    within the margin). ``s_cap``: no step above it is searched (``inf``: every step).

    With ``ext`` finite, a grid that cannot beat it is first ruled out in O(log² n) from the
    prefix sums alone: below the least step ``s_c`` with ``CL(s_c) <= ext`` every step clips more
    than ``ext``, and from there on every step's error is at least ``DZ(s_c)`` (fact 3); the crossing
    is bracketed by bisection, ``[a, b]`` with ``CL(a)`` above the threshold, and ``DZ(a)`` above it
    too rules out every step (``CL(s_cap)`` above it alone does, for every step up to ``s_cap``)."""
    n = xs.shape[0]
    fqmin = float(qmin)
    fqmax = float(qmax)
    s2 = s2h + s2l
    # few levels: evaluations and sweeps from the cells of the codes (binary searches), no pass
    cells = (qmax - qmin) * 2.0 * (math.log2(n) + 1.0) < n
    i0 = _bs_left(xs, 0.0, 0, n)  # negatives: [0, i0)
    top = xs[n - 1] if unsigned else max(xs[n - 1], -xs[0])
    if not top > 0.0:  # (no sample a clip can reach: clip 0.0, see EmpiricalMSE.optimal_clip)
        out[0] = 0.0
        out[1] = s2
        out[2] = 0.0
        return
    c_lo = 0.5 if midrise else 0.0
    c_p = fqmax + offset
    c_n = -(fqmin + offset)
    im_p = c_p - c_lo
    im_n = c_n - c_lo
    tie = 1e-30 * s2
    buf = np.empty(4)
    res = np.empty(4)
    cand = np.empty(4)
    # upper bound: max-calibration, and a polished guess from the smooth estimate
    # upper bound: the exact error at a guess, the minimum of a smooth estimate (golden-section
    # search over log(step) in [max|x|/D / 256, 2·max|x|/D])
    if ext < np.inf and _pc_hopeless(xs, p1, p2, i0, c_n, c_p, midrise, _pc_thr(ext, s2, tie), (n + 8) * _EPS,
                                     s_cap, top):
        out[0] = np.nan
        out[1] = np.inf
        out[2] = np.inf
        return
    s_mc = top / d
    ga = math.log(s_mc) - 8.0 * math.log(2.0)
    gb = math.log(s_mc) + math.log(2.0)
    g1 = gb - 0.6180339887498949 * (gb - ga)
    g2 = ga + 0.6180339887498949 * (gb - ga)
    f1 = _pc_approx(xs, p1, p2, i0, math.exp(g1), c_n, c_p, midrise)
    f2 = _pc_approx(xs, p1, p2, i0, math.exp(g2), c_n, c_p, midrise)
    for _ in range(11):
        if f1 <= f2:
            gb = g2
            g2 = g1
            f2 = f1
            g1 = gb - 0.6180339887498949 * (gb - ga)
            f1 = _pc_approx(xs, p1, p2, i0, math.exp(g1), c_n, c_p, midrise)
        else:
            ga = g1
            g1 = g2
            f1 = f2
            g2 = ga + 0.6180339887498949 * (gb - ga)
            f2 = _pc_approx(xs, p1, p2, i0, math.exp(g2), c_n, c_p, midrise)
    s_g = math.exp(0.5 * (ga + gb))
    if cells:  # (an upper bound of the error sum at s_g: the cell sums plus their rounding bound)
        v, e = _pc_cells_f(xs, p1, p2, s_g, offset, qmin, qmax)
        res[0] = v + (n + 8) * _EPS * 2.0 * e
        res[1] = s_g
    else:
        _pc_polish(xs, s_g, d, offset, fqmin, fqmax, mode, buf, res, 0)
    # the first piece (below s0 nothing crosses a threshold)
    amin = np.inf
    if i0 > 0 and not unsigned:
        amin = -xs[i0 - 1]
    jz = _bs_right(xs, 0.0, i0, n)
    if jz < n and xs[jz] < amin:
        amin = xs[jz]
    s0 = amin / (2.0 * (max(c_p, c_n) + 1.0))
    margin = (n + 8) * _EPS
    thr = _pc_thr(min(res[0], ext), s2, tie)
    # s_L (CL non-increasing): halve from the guess until CL exceeds the target, then bisect
    # coarsely (any step with CL above the target will do)
    found, a_l, _ = _cl_bracket(xs, p1, p2, i0, c_n, c_p, thr, margin, res[1], s0, 6)
    if found:
        s_l = a_l
    else:  # down to s0: the first piece's vertex, if inside (0, s0)
        s_l = s0
        _direct_errs(xs, s0, offset, fqmin, fqmax, mode, buf)
        if buf[3] > 0.0 and 0.0 < buf[2] / buf[3] < s0:
            _pc_polish(xs, buf[2] / buf[3], d, offset, fqmin, fqmax, mode, buf, cand, 2)
            _pc_take(res, cand, tie)
            thr = _pc_thr(min(res[0], ext), s2, tie)
    # s_H (DZ non-decreasing): double until DZ exceeds the target, then bisect coarsely; on the
    # zero-level grids nothing beyond 2·max|x| rounds to a nonzero level (F = S2 there)
    a_h = res[1]
    b_h = 2.0 * a_h
    cap = 2.0 * top * (1.0 + 1e-9)
    for _ in range(2200):  # (DZ grows without bound on midrise; the cap ends the zero-level grids)
        v, e = _pc_dead_zone(xs, p1, p2, i0, b_h, c_n, midrise)
        if v - margin * e > thr or (not midrise and b_h >= cap) or not b_h < np.inf:
            break
        a_h = b_h
        b_h *= 2.0
    for _ in range(6):
        mid = math.sqrt(a_h * b_h)
        if not (a_h < mid < b_h):
            break
        v, e = _pc_dead_zone(xs, p1, p2, i0, mid, c_n, midrise)
        if v - margin * e > thr:
            b_h = mid
        else:
            a_h = mid
    # fact 4 (pairs): a step above which every step errs more than the target, far closer than DZ's
    # at many bits; bisected between the guess and b_h (every step found excludes all above it)
    if b_h < np.inf and qmax - qmin >= _PC_PAIR_LEVELS:
        a_p = res[1]
        for _ in range(8):
            mid = math.sqrt(a_p * b_h)
            if not (a_p < mid < b_h):
                break
            if pair_bound(xs, mid, 0, n) * (1.0 - 4.0 * margin) > thr:
                b_h = mid
            else:
                a_p = mid
    s_h = min(b_h, s_cap)
    # branch and bound on [s_l, s_h]
    best = np.empty(2)
    best[0] = np.inf
    best[1] = np.inf
    cap_n = 200
    st_a = np.empty(cap_n)
    st_b = np.empty(cap_n)
    sp = 0
    if s_h > s_l:
        st_a[0] = s_l
        st_b[0] = s_h
        sp = 1
    leaf = max((_PC_LEAF_CELLS if cells else _PC_LEAF) * n, _PC_LEAF_MIN)
    tiny = (_PC_TINY_CELLS if cells else _PC_TINY) * n
    while sp > 0:
        sp -= 1
        sa = st_a[sp]
        sb = st_b[sp]
        thr = _pc_thr(min(res[0], best[0], ext), s2, tie)
        ev = _pc_events(xs, p1, i0, c_n, c_p, sa, sb)
        if ev > tiny and not (sa == s_l and sb == s_h and ev <= leaf) and _pc_bound(xs, i0, c_lo, im_n, im_p, sa, sb, s2, thr):
            continue
        if ev <= leaf or sb <= sa * (1.0 + 1e-12) or sp + 2 > cap_n:
            if cells:
                _pc_sweep_cells(xs, p1, p1l, sa, sb, sa, offset, qmin, qmax, s2h, s2l, tie, best)
            else:
                _pc_sweep(xs, sa, sb, sa, offset, fqmin, fqmax, mode, s2h, s2l, tie, not norm, best)
            continue
        sm = math.sqrt(sa * sb)
        s_best = res[1] if res[0] <= best[0] else best[1]
        if s_best < sm:  # (the half holding the best step next: a better bound sooner)
            st_a[sp] = sm
            st_b[sp] = sb
            st_a[sp + 1] = sa
            st_b[sp + 1] = sm
        else:
            st_a[sp] = sa
            st_b[sp] = sm
            st_a[sp + 1] = sm
            st_b[sp + 1] = sb
        sp += 2
    if best[0] == np.inf and res[0] > ext:  # (no step of this grid beats ext)
        out[0] = np.nan
        out[1] = np.inf
        out[2] = np.inf
        return
    # the answer's error, directly with the reference quantizer's operations: the best vertex (the
    # upper-bound point too if no vertex reached its error, which only rounding can cause)
    if best[0] <= res[0]:
        _pc_polish(xs, best[1], d, offset, fqmin, fqmax, mode, buf, res, 0)
    else:
        _pc_polish(xs, res[1], d, offset, fqmin, fqmax, mode, buf, res, 0)
        if best[0] < np.inf:
            _pc_polish(xs, best[1], d, offset, fqmin, fqmax, mode, buf, cand, 0)
            _pc_take(res, cand, tie)
    out[0] = res[1]
    out[1] = res[2]
    out[2] = res[3]


@numba.njit(cache=True)
def pair_bound(xs, s, j0, j1):
    """Fact 4: ``PB(s)`` of the sorted samples ``xs[j0:j1]``, a lower bound of their error sum at
    every step ``>= s`` (on any grid of uniform step, clipping included), from disjoint pairs less
    than ``s`` apart: the samples are cut into blocks spanning less than ``s`` (from each block's
    first sample), and in a block of ``k`` samples sample ``t`` pairs with sample ``t + k//2``."""
    v = 0.0
    b = j0
    while b < j1 - 1:
        e = _bs_left(xs, xs[b] + s, b + 1, j1)
        m = (e - b) // 2
        for t in range(b, b + m):
            dl = xs[t + m] - xs[t]
            if dl < s:
                r = s - dl
                v += min(dl * dl, r * r)
        b = max(e, b + 1)
    return 0.5 * v


@numba.njit(cache=True)
def pair_bound_buckets(cnt, bmin, bmax, s):
    """:func:`pair_bound` from bucket statistics (no sample gathered): blocks of whole buckets
    spanning less than ``s`` (from the block's first ``bmin`` to its last ``bmax``); in a block of
    ``k`` samples (in value order, bucket by bucket) sample ``t`` pairs with sample ``t + k//2``, and
    a pair whose samples lie in buckets ``b1 <= b2`` is ``δ`` apart with ``δ`` in
    ``[bmin[b2] − bmax[b1], bmax[b2] − bmin[b1]]`` (``δ >= 0`` within one bucket), so it errs at
    least ``min(δ_lo², (s − δ_hi)²)/2``. Pairs go by runs of equal ``(b1, b2)``: O(buckets)."""
    nb = bmin.shape[0]
    v = 0.0
    j = 0
    while j < nb:
        if cnt[j + 1] == cnt[j]:
            j += 1
            continue
        v0 = bmin[j]
        j1 = j
        while j1 < nb and (cnt[j1 + 1] == cnt[j1] or bmax[j1] - v0 < s):
            j1 += 1
        if j1 == j:  # (one bucket spans s or more: its samples stay unpaired)
            j += 1
            continue
        m = (cnt[j1] - cnt[j]) // 2
        r = cnt[j]  # (rank of the pair run's first sample)
        r_end = cnt[j] + m
        b1 = j
        b2 = j
        while r < r_end:
            while cnt[b1 + 1] <= r:
                b1 += 1
            while cnt[b2 + 1] <= r + m:
                b2 += 1
            step = min(cnt[b1 + 1] - r, cnt[b2 + 1] - (r + m), r_end - r)
            lo = max(bmin[b2] - bmax[b1], 0.0) if b2 > b1 else 0.0
            hi = bmax[b2] - bmin[b1]
            if hi < s:
                t = s - hi
                v += float(step) * min(lo * lo, t * t)
            r += step
        j = j1
    return 0.5 * v


@numba.njit(cache=True)
def _pc_hopeless(xs, p1, p2, i0, c_n, c_p, midrise, thr, margin, s_cap, top):
    """Whether no step up to ``s_cap`` can have an error sum within ``thr`` (see :func:`_pc_solve`):
    ``CL`` (non-increasing) above ``thr`` below a step ``a``, ``DZ`` (non-decreasing) above it from
    ``a`` on. Beyond ``4·max|x|`` (``c_p, c_n >= 1``) no sample is clipped but by a ``c = 0`` side,
    whose part is constant: ``CL`` is constant there."""
    b = s_cap if s_cap < np.inf else 4.0 * top
    v, e = _pc_clip_part(xs, p1, p2, i0, b, c_n, c_p)
    if v - margin * e > thr:
        return True
    found, a, _ = _cl_bracket(xs, p1, p2, i0, c_n, c_p, thr, margin, b, 0.0, 40)
    if not found:  # (CL within thr down to 0: no bound from it)
        return False
    v, e = _pc_dead_zone(xs, p1, p2, i0, a, c_n, midrise)
    return v - margin * e > thr


@numba.njit(cache=True, inline="always")
def _cl_bracket(xs, p1, p2, i0, c_n, c_p, thr, margin, b, floor, n_bisect):
    """``(found, a, b)``: halving from ``b`` while above ``floor``, a step ``a`` whose ``CL`` (less its
    rounding margin) exceeds ``thr``, then ``n_bisect`` bisections of ``[a, b]`` (``CL(a)`` above
    ``thr``, ``CL(b)`` not); ``found`` is False if no such step lies above ``floor``."""
    a = 0.5 * b
    found = False
    while a > floor:
        v, e = _pc_clip_part(xs, p1, p2, i0, a, c_n, c_p)
        if v - margin * e > thr:
            found = True
            break
        b = a
        a *= 0.5
    if found:
        for _ in range(n_bisect):
            m = math.sqrt(a * b)
            if not a < m < b:
                break
            v, e = _pc_clip_part(xs, p1, p2, i0, m, c_n, c_p)
            if v - margin * e > thr:
                a = m
            else:
                b = m
    return found, a, b


@numba.njit(cache=True, inline="always")
def _pc_thr(ub, s2, tie):
    """The error sum an interval's bound must exceed to be dropped: ``ub`` plus the pruning margin."""
    return ub * (1.0 + 1e-9) + 1e-12 * math.sqrt(max(ub, 0.0) * s2) + tie


@numba.njit(cache=True)
def affine_zero_points(row, top, z_lo, z_hi, z0, mode, norm, out):
    """Exact optimum of the affine grid over every zero point ``z`` in ``[z_lo, z_hi]`` and every
    step, for one sorted tensor ``row``: ``out = (step, error sum, z)`` at the samples' scale.

    The levels ``(k − z)·s``, ``k = 0 .. top``, are those of the scale grid ``qmin = −z``,
    ``qmax = top − z`` (offset 0), whose proven optimum over the step :func:`_pc_solve` gives from
    one preparation (the sort and the prefix sums are shared). Zero points are visited from ``z0``
    outwards, each searched only for steps that can beat the best error so far (``ext``): a zero
    point that cannot is dropped by its proven step range and bounds, mostly without a pass over
    the samples. The least error over all zero points is the global optimum; equal error sums
    (bit for bit): the smallest zero point (errors equal only up to rounding at different steps
    may resolve either way, as in the bucketed search). The step cap applies from ``z_lo + 1`` on
    (``z − 1`` must be searched too)."""
    xs, unit, p1, p1l, p2, s2h, s2l = _pc_prepare(row, norm)
    res = np.empty(3)
    best = np.inf
    best_s = np.nan
    best_z = -1
    for t in range(2 * (z_hi - z_lo) + 1):
        # z0, z0 + 1, z0 − 1, z0 + 2, ... (those inside [z_lo, z_hi])
        z = z0 + (t + 1) // 2 if t % 2 == 1 else z0 - t // 2
        if z < z_lo or z > z_hi:
            continue
        # (s >= C_z = −min x/(z − 1/2): no sample is nearer to the bottom level than to the next, so
        # z − 1 does at least as well at that step; see EmpiricalMSE._affine_optimum)
        s_cap = -xs[0] / (z - 0.5) if z > z_lo and xs[0] < 0.0 else np.inf
        # (d: the outermost level in steps, which places the first guess at max-calibration's step)
        _pc_solve(xs, p1, p1l, p2, s2h, s2l, float(max(z, top - z)), 0.0, -z, top - z, mode, False, False, norm, best,
                  s_cap, res)
        tot = res[1] + res[2]
        if tot < best or (tot == best and z < best_z):
            best = tot
            best_s = res[0]
            best_z = z
    out[0] = best_s * unit
    out[1] = max(best, 0.0) * unit * unit
    out[2] = float(best_z)


@numba.njit(cache=True, parallel=True)
def per_channel(w, d, offset, qmin, qmax, mode, unsigned, midrise, norm, out):
    """:func:`_pc_channel` for every row of ``w`` (channels × values, each row sorted), in
    parallel over channels (dynamic schedule: rows differ in work)."""
    for c in numba.prange(w.shape[0]):
        _pc_channel(w[c], d, offset, qmin, qmax, mode, unsigned, midrise, norm, out[c])


@numba.njit(cache=True)
def per_channel_serial(w, d, offset, qmin, qmax, mode, unsigned, midrise, norm, out):
    """:func:`per_channel` in one thread (small jobs: no thread start-up)."""
    for c in range(w.shape[0]):
        _pc_channel(w[c], d, offset, qmin, qmax, mode, unsigned, midrise, norm, out[c])
