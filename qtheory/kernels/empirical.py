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
bits, radix-sorted) for the few buckets that an exact evaluation finds straddling a cut.

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
        _acc32p_chunk(xbits[i0:min(n, i0 + chunk)], ef, mb, nside, tbl[t], ctr[t])


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
def _acc32p_chunk(xbits, ef, mb, nside, tb, c):
    """One chunk of :func:`accumulate32p_par` (a plain loop: better code than inside a prange).
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
def gather_par(x, xbits, is32, ef, mb, nside, want, chunk, hv, hj, hn):
    """Parallel gathering pass by chunks (dynamic schedule): thread ``t`` appends the value and
    bucket of every sample of a wanted bucket to ``hv[t]``, ``hj[t]`` (``hn[t]`` of them);
    :func:`scatter_hits` then puts them in bucket order."""
    n = x.shape[0]
    nch = (n + chunk - 1) // chunk
    e0 = ef + 126
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        i1 = min(n, i0 + chunk)
        h = hn[t]
        v = hv[t]
        jj = hj[t]
        if is32:
            # branch-free key of a float32 (as in accumulate32_par; equal to _bucket_bits)
            for i in range(i0, i1):
                b = np.int64(xbits[i])
                mag = b & 0x7FFFFFFF
                be = mag >> 23
                d = ((be - e0) << mb) + ((mag & 0x7FFFFF) >> (23 - mb)) + 1
                d = d if be >= e0 else 0
                sg = b >> 63
                j = nside + ((d ^ sg) - sg)
                if want[j]:
                    v[h] = np.float64(x[i])
                    jj[h] = j
                    h += 1
        else:
            for i in range(i0, i1):
                j = _bucket_bits(xbits[i], is32, ef, mb, nside)
                if want[j]:
                    v[h] = np.float64(x[i])
                    jj[h] = j
                    h += 1
        hn[t] = h


@numba.njit(cache=True, parallel=True)
def gather32_par(xbits, ef, mb, nside, want, chunk, hk, hn):
    """:func:`gather_par` for float32 samples: thread ``t`` appends to ``hk[t]`` the order key
    (:func:`_key32`) of every sample of a wanted bucket; :func:`sort_keys32` then orders them."""
    n = xbits.shape[0]
    nch = (n + chunk - 1) // chunk
    e0 = ef + 126
    for ci in numba.prange(nch):
        t = numba.get_thread_id()
        i0 = ci * chunk
        hn[t] = _gather32_chunk(xbits[i0:min(n, i0 + chunk)], e0, mb, nside, want, hk[t], hn[t])


@numba.njit(cache=True)
def _gather32_chunk(xbits, e0, mb, nside, want, kk, h):
    """One chunk of :func:`gather32_par`; returns the new fill of ``kk``."""
    for i in range(xbits.shape[0]):
        b = np.int64(xbits[i])
        mag = b & 0x7FFFFFFF
        be = mag >> 23
        d = ((be - e0) << mb) + ((mag & 0x7FFFFF) >> (23 - mb)) + 1
        d = d if be >= e0 else 0
        sg = b >> 63
        j = nside + ((d ^ sg) - sg)
        if want[j]:
            kk[h] = _key32(b)
            h += 1
    return h


@numba.njit(cache=True, inline="always")
def _key32(b):
    """An unsigned 32-bit key of float32 bits ``b`` (sign-extended) in the order of the values."""
    if b < 0:
        return np.uint32((~b) & 0xFFFFFFFF)
    return np.uint32(b | 0x80000000)


@numba.njit(cache=True)
def sort_keys32(hk, hn, xs):
    """LSD radix sort (two 16-bit digits) of the gathered keys of all threads; writes the values
    in increasing order to ``xs`` (as float64), i.e. every wanted bucket's run sorted, in bucket order."""
    m = xs.shape[0]
    a = np.empty(m, dtype=np.uint32)
    r = 0
    for t in range(hn.shape[0]):
        for h in range(hn[t]):
            a[r] = hk[t, h]
            r += 1
    b = np.empty(m, dtype=np.uint32)
    cnt = np.zeros(1 << 16, dtype=np.int64)
    for shift in (0, 16):
        cnt[:] = 0
        for i in range(m):
            cnt[(a[i] >> shift) & 0xFFFF] += 1
        tot = 0
        for v in range(1 << 16):
            c = cnt[v]
            cnt[v] = tot
            tot += c
        for i in range(m):
            dg = (a[i] >> shift) & 0xFFFF
            b[cnt[dg]] = a[i]
            cnt[dg] += 1
        a, b = b, a
    for i in range(m):
        u = np.int64(a[i])
        bits = u & 0x7FFFFFFF if u >= 0x80000000 else (~u) & 0xFFFFFFFF
        mag = bits & 0x7FFFFFFF
        xs[i] = _f32_value(mag, -1 if bits & 0x80000000 else 1)


@numba.njit(cache=True)
def scatter_hits(hv, hj, hn, gstart, xs):
    """Counting-sort placement of the gathered samples: bucket ``j``'s run is ``xs[gstart[j]:gstart[j+1]]``."""
    fill = gstart[:-1].copy()
    for t in range(hn.shape[0]):
        for h in range(hn[t]):
            j = hj[t, h]
            xs[fill[j]] = hv[t, h]
            fill[j] += 1


@numba.njit(cache=True)
def sort_runs(runs, gstart, xs):
    """Sort in place the run of ``xs`` of each bucket in ``runs``."""
    for r in range(runs.shape[0]):
        j = runs[r]
        xs[gstart[j]:gstart[j + 1]].sort()


@numba.njit(cache=True)
def gathered_prefix(xs, g1h, g1l, g2h, g2l):
    """Double-double prefix sums of ``x`` and ``x²`` over ``xs`` (arrays of length ``len(xs) + 1``)."""
    g1h[0] = 0.0
    g1l[0] = 0.0
    g2h[0] = 0.0
    g2l[0] = 0.0
    for i in range(xs.shape[0]):
        v = xs[i]
        g1h[i + 1], g1l[i + 1] = _dd_add_d(g1h[i], g1l[i], v)
        qh, ql = _two_prod(v, v)
        if ql == 0.0:  # (always for float32 samples: x² is exact)
            g2h[i + 1], g2l[i + 1] = _dd_add_d(g2h[i], g2l[i], qh)
        else:
            g2h[i + 1], g2l[i + 1] = _dd_add(g2h[i], g2l[i], qh, ql)


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
    """``Σ (x − y)²`` over buckets ``[j0, j1)`` (``n`` samples) from the prefix sums (double-double)."""
    s1h, s1l = _dd_add(p1h[j1], p1l[j1], -p1h[j0], -p1l[j0])
    s2h, s2l = _dd_add(p2h[j1], p2l[j1], -p2h[j0], -p2l[j0])
    ah, al = _dd_mul_d(s1h, s1l, -2.0 * y)
    yh, yl = _two_prod(y, y)
    bh, bl = _dd_mul_d(yh, yl, n)
    vh, vl = _dd_add(s2h, s2l, ah, al)
    vh, vl = _dd_add(vh, vl, bh, bl)
    return vh, vl, s1h + s1l


@numba.njit(cache=True, inline="always")
def _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale, ch, cl, rh, rl, scx, scc, exact):
    """Add the run of buckets ``[rs, re)`` on level ``rk`` (clipping part if ``rf``) to the sums
    (``exact=False``: the sums of the run in double-double, the rest in double — for scans)."""
    if re > rs:
        n = float(cnt[re] - cnt[rs])
        if n > 0.0:
            y = (rk + offset) * scale
            if exact:
                vh, vl, s1 = _bulk(p1h, p1l, p2h, p2l, rs, re, n, y)
            else:
                s1h, s1l = _dd_add(p1h[re], p1l[re], -p1h[rs], -p1l[rs])
                s2h, s2l = _dd_add(p2h[re], p2l[re], -p2h[rs], -p2l[rs])
                s1 = s1h + s1l
                vh = (s2h + s2l) - y * (2.0 * s1 - y * n)
                vl = 0.0
            if rf:
                ch, cl = _dd_add(ch, cl, vh, vl)
            else:
                rh, rl = _dd_add(rh, rl, vh, vl)
            cc = rk + offset
            scx += cc * s1
            scc += cc * cc * n
    return ch, cl, rh, rl, scx, scc


@numba.njit(cache=True)
def _eval_one(cnt, p1h, p1l, p2h, p2l, bmin, bmax, have, gstart, xs, g1h, g1l, g2h, g2l, ef, mb, nside, scale, offset, qmin, qmax,
              mode, exact, out, missing):
    """Error sums of one quantizer; returns the number of straddling buckets whose samples are not
    gathered (marked in ``missing``; the sums are then incomplete).

    ``out[0:2]`` = clipping Σe² (double-double), ``out[2:4]`` = rounding Σe², ``out[4]`` = Σ c·x,
    ``out[5]`` = Σ c² with ``c = k + offset`` the level in units of the step (for the step update
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
    scx = 0.0
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
                ch, cl, rh, rl, scx, scc = _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale, ch, cl, rh,
                                                  rl, scx, scc, exact)
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
                            ch, cl, rh, rl, scx, scc = _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale,
                                                              ch, cl, rh, rl, scx, scc, exact)
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
                            vh, vl, s1 = _bulk(g1h, g1l, g2h, g2l, i, b, n, y)
                            if f:
                                ch, cl = _dd_add(ch, cl, vh, vl)
                            else:
                                rh, rl = _dd_add(rh, rl, vh, vl)
                            cc = k + offset
                            scx += cc * s1
                            scc += cc * cc * n
                            i = b
                j += 1
    ch, cl, rh, rl, scx, scc = _flush(p1h, p1l, p2h, p2l, cnt, rs, re, rk, rf, offset, scale, ch, cl, rh, rl, scx, scc,
                                      exact)
    out[0] = ch
    out[1] = cl
    out[2] = rh
    out[3] = rl
    out[4] = scx
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


@numba.njit(cache=True)
def sweep(x, s_lo, s_hi, offset, qmin, qmax, mode, n_best, s_floor):
    """Exact global minimisation over the step ``s in [s_lo, s_hi]`` by sweeping every breakpoint.

    As ``s`` grows, a sample crosses the decision thresholds one by one; between consecutive
    crossings the assignment of samples to levels is fixed and the total error is the quadratic
    ``Σx² − 2s·B + s²·A`` (``A = Σc²``, ``B = Σc·x``, ``c = code + offset``), minimised at its
    vertex or at an end of the interval. Sorting all crossings (at most ``N·levels``) and updating
    ``A``, ``B`` at each gives every piece's minimum. Returns the ``n_best`` best steps (best first)
    and their (approximate) error sums. The first piece's vertex is clamped to ``[s_floor, ·]``
    (``s_floor < s_lo`` when the assignment at ``s_lo`` holds on all of ``(s_floor, s_lo]``).
    """
    n = x.shape[0]
    fqmin = float(qmin)
    fqmax = float(qmax)
    a_sum = 0.0
    b_sum = 0.0
    s2 = 0.0
    n_ev = 0
    codes = np.empty(n)
    for i in range(n):
        xi = x[i]
        k = _code(xi, s_lo, offset, fqmin, fqmax, mode)
        codes[i] = k
        c = k + offset
        a_sum += c * c
        b_sum += c * xi
        s2 += xi * xi
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
            v = b_sum / a_sum
            if v < s_prev:
                v = s_prev
            elif v > s_next:
                v = s_next
            val = s2 - 2.0 * v * b_sum + v * v * a_sum
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
            b_sum += d * x[i]
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


@numba.njit(cache=True)
def _clip_bound_sorted(a, q, midrise, target):
    """The proven step bound of ``EmpiricalMSE._clip_bound`` for per-sample groups (``a`` sorted)."""
    theta = 0.5 * (1.0 - 1e-9)
    m = a.shape[0]
    cn = np.zeros(m + 1)
    ca = np.zeros(m + 1)
    ca2 = np.zeros(m + 1)
    cq = np.zeros(m + 1)
    for i in range(m):
        cn[i + 1] = cn[i] + 1.0
        ca[i + 1] = ca[i] + a[i]
        ca2[i + 1] = ca2[i] + a[i] * a[i]
        cq[i + 1] = cq[i] + q[i]
    target = target * (1.0 + 1e-9) + 1e-300
    amax = a[m - 1]
    if midrise:
        hi = 2.0 * (amax + math.sqrt(target / cn[m])) / theta
    else:
        hi = 2.0 * amax / theta * (1.0 + 1e-9)
        j = np.searchsorted(a, theta * hi)
        if cq[j] < target:
            return hi
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not (lo < mid and mid < hi):
            break
        t = theta * mid
        j = np.searchsorted(a, t)
        if midrise:
            v = t * t * cn[j] - 2.0 * t * ca[j] + ca2[j]
        else:
            v = cq[j]
        if v >= target:
            hi = mid
        else:
            lo = mid
    return hi


@numba.njit(cache=True)
def _low_cut(a, neg2, target):
    """The largest clip ``α_L`` (bisection) with ``Σ_{a>α_L} (a − α_L)² + neg2 >= target``: below
    it every clip is at least that bad (samples beyond ``α`` are clipped to a level ``<= α``)."""
    target = target * (1.0 + 1e-9) + 1e-300
    lo = 0.0
    hi = a[a.shape[0] - 1]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if not (lo < mid and mid < hi):
            break
        v = neg2
        for i in range(a.shape[0] - 1, -1, -1):
            if a[i] <= mid:
                break
            v += (a[i] - mid) * (a[i] - mid)
        if v >= target:
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _candidates(xs, ss, d, offset, fqmin, fqmax, mode, best, buf):
    """Exact errors of the sweep's candidate steps (a few exact polish steps each: the sweep's
    piece values carry rounding); ``best = (error, alpha, clipping, rounding)`` is updated
    (equal errors: the smaller clip)."""
    for j in range(ss.shape[0]):
        if not (ss[j] > 0.0):
            continue
        alpha = ss[j] * d
        _direct_errs(xs, alpha / d, offset, fqmin, fqmax, mode, buf)
        f = buf[0] + buf[1]
        c0 = buf[0]
        r0 = buf[1]
        for _ in range(4):
            if not buf[3] > 0.0:
                break
            g = buf[2] / buf[3] * d
            if not g > 0.0 or g == alpha:
                break
            _direct_errs(xs, g / d, offset, fqmin, fqmax, mode, buf)
            f2 = buf[0] + buf[1]
            if f2 <= f:
                done = f2 == f
                alpha = g
                f = f2
                c0 = buf[0]
                r0 = buf[1]
                if done:
                    break
            else:
                break
        if f < best[0] or (f == best[0] and alpha < best[1]):
            best[0] = f
            best[1] = alpha
            best[2] = c0
            best[3] = r0


@numba.njit(cache=True)
def _channel(row, d, offset, qmin, qmax, mode, unsigned, midrise, limit, hi_fac, out):
    """Exact global optimum of one channel by the breakpoint sweep (the optimum of
    ``EmpiricalMSE.optimal_clip`` for a channel with ``n·levels <= limit``); ``out = (alpha,
    clipping, rounding, status)``, status 1 done, 0 too large for the sweep.

    The sweep covers ``[α_L, max(hi, α_B)]``: below ``α_L`` the clipping error alone exceeds the
    max-calibration clip's error, beyond ``α_B`` the dead-zone bound of
    ``EmpiricalMSE._clip_bound`` does, computed from the best error of the sweep up to ``hi``
    (two phases, so the second covers only what that error cannot rule out)."""
    n = row.shape[0]
    fqmin = float(qmin)
    fqmax = float(qmax)
    xs = np.empty(n)
    for i in range(n):
        xs[i] = row[i]
    xs.sort()
    s2 = 0.0
    for i in range(n):
        s2 += xs[i] * xs[i]
    top = xs[n - 1] if unsigned else max(xs[n - 1], -xs[0])
    if top <= 0.0:  # (no sample a clip can reach: clip 0.0, see EmpiricalMSE.optimal_clip)
        out[0] = 0.0
        out[1] = s2 / n
        out[2] = 0.0
        out[3] = 1.0
        return
    if n * (qmax - qmin) > limit:
        out[3] = 0.0
        return
    buf = np.empty(4)
    best = np.empty(4)
    _direct_errs(xs, top / d, offset, fqmin, fqmax, mode, buf)
    best[0] = buf[0] + buf[1]
    best[1] = top
    best[2] = buf[0]
    best[3] = buf[1]
    # the magnitudes of the bounds, sorted
    a = np.empty(n)
    q = np.empty(n)
    neg2 = 0.0
    for i in range(n):
        v = xs[i]
        a[i] = (0.0 if v < 0.0 else v) if unsigned else abs(v)
        q[i] = v * v
        if unsigned and v < 0.0:
            neg2 += v * v
    o = np.argsort(a)
    a = a[o]
    q = q[o]
    amin = np.inf
    for i in range(n):
        if xs[i] != 0.0 and abs(xs[i]) < amin:
            amin = abs(xs[i])
    ltop = max(abs(fqmin + offset), abs(fqmax + offset))
    s0 = amin / (ltop + 1.0) * 0.5
    s_low = _low_cut(a, neg2, best[0]) / d
    floor = 0.0
    if s_low > s0:
        s0 = s_low
        floor = s_low
    hi = top * hi_fac / d
    if hi > s0:
        ss, _ = sweep(xs, s0, hi, offset, qmin, qmax, mode, 16, floor)
        _candidates(xs, ss, d, offset, fqmin, fqmax, mode, best, buf)
    else:
        hi = s0
    s_b = _clip_bound_sorted(a, q, midrise, best[0])
    if s_b > hi:
        ss, _ = sweep(xs, hi, s_b, offset, qmin, qmax, mode, 16, hi)
        _candidates(xs, ss, d, offset, fqmin, fqmax, mode, best, buf)
        _direct_errs(xs, s_b, offset, fqmin, fqmax, mode, buf)  # (a zero-level grid's all-to-zero plateau)
        f = buf[0] + buf[1]
        if f < best[0]:
            best[0] = f
            best[1] = s_b * d
            best[2] = buf[0]
            best[3] = buf[1]
    out[0] = best[1]
    out[1] = best[2] / n
    out[2] = best[3] / n
    out[3] = 1.0


@numba.njit(cache=True, parallel=True)
def per_channel(w, d, offset, qmin, qmax, mode, unsigned, midrise, limit, hi_fac, out):
    """:func:`_channel` for every row of ``w`` (channels × values), in parallel over channels."""
    for c in numba.prange(w.shape[0]):
        _channel(w[c], d, offset, qmin, qmax, mode, unsigned, midrise, limit, hi_fac, out[c])


@numba.njit(cache=True)
def per_channel_serial(w, d, offset, qmin, qmax, mode, unsigned, midrise, limit, hi_fac, out):
    """:func:`per_channel` in one thread (small jobs: no thread start-up)."""
    for c in range(w.shape[0]):
        _channel(w[c], d, offset, qmin, qmax, mode, unsigned, midrise, limit, hi_fac, out[c])
