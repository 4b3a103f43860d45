"""numba kernels of the integer-only convolution (:mod:`qtheory.intconv`).

Layout inside: activations are packed once to ``int32`` NHWC (group-major,
zero point already subtracted, zero padding), weights to ``int32``
``[out_channel, kh, kw, in_channel]``. The dot products then run over
contiguous memory (``kw * C`` values per kernel row when the horizontal
dilation is 1), 2 output pixels x 4 output channels at a time, with every
step cast back to ``int32`` so that numba does not promote the products to
``int64`` and LLVM emits 16-lane ``vpmulld``/``vpaddd`` loops.

Accumulation is exact because the public wrapper has proved, before calling
any kernel, that no partial sum can leave the int32 range.

Requantisation codes (``mode``), applied per output row:

====  ==================  =====================================================================
code  name                arithmetic
====  ==================  =====================================================================
0     raw                 ``acc + bias`` (int32; ``out_quant=None`` and ``"exact"``, finished in numpy)
1     tflite              gemmlowp SaturatingRoundingDoublingHighMul + RoundingDivideByPOT
2     tflite-single       ``(acc * M0 + 2^(t-1)) >> t`` with ``t = 31 - shift``
3     fbgemm (int bias)   ``rint(float32(acc + bias) * C_mult)`` (float32, ties to even)
4     po2                 rounding right shift by ``-shift`` with the output tie rule
5     fbgemm (fp bias)    ``rint((float32(acc) + bias / act_times_w_scale) * C_mult)``
====  ==================  =====================================================================
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

I32 = np.int32
I64 = np.int64
F32 = np.float32


# ----------------------------------------------------------------------------- packing
@njit(cache=True, parallel=True)
def pack_input(x, signed, zp, groups, pad_top, pad_left, out):  # pragma: no cover - compiled
    """``out[n*G+g, h+pt, w+pl, c] = x[n, g*Cg+c, h, w] - zp`` (``out`` zero-initialised).

    ``x`` is the uint8 view of the stored tensor; ``signed`` (0/1) reinterprets it as int8
    (one compiled specialisation for both storage types).
    """
    sub = I32(256) if signed else I32(0)
    N, C, H, W = x.shape
    Cg = C // groups
    for r in prange(N * groups * H):
        ng = r // H
        h = r - ng * H
        n = ng // groups
        g = ng - n * groups
        for c in range(Cg):
            ci = g * Cg + c
            for w in range(W):
                v = I32(x[n, ci, h, w])
                out[ng, h + pad_top, w + pad_left, c] = I32(v - ((v >> 7) * sub) - zp)


@njit(cache=True, parallel=True)
def im2col(X, kh, kw, sh, sw, dh, dw, Ho, Wo, out):  # pragma: no cover - compiled
    """``out[ng, oh, ow, (i*kw+j)*Cg+c] = X[ng, oh*sh+i*dh, ow*sw+j*dw, c]``."""
    NG = X.shape[0]
    Cg = X.shape[3]
    for r in prange(NG * Ho):
        ng = r // Ho
        oh = r - ng * Ho
        for ow in range(Wo):
            t = 0
            for i in range(kh):
                for j in range(kw):
                    for c in range(Cg):
                        out[ng, oh, ow, t] = X[ng, oh * sh + i * dh, ow * sw + j * dw, c]
                        t += 1


# ----------------------------------------------------------------------------- requantisation
@njit(cache=True)
def requant_row(acc, n, oh, k0, kcount, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode,
                out):  # pragma: no cover - compiled
    """Requantise ``acc[j, ow]`` (``j < kcount``) into ``out[n, k0+j, oh, ow]``.

    Branch-free int64 / float32 arithmetic in each loop so that LLVM vectorises it.
    """
    Wo = acc.shape[1]
    for j in range(kcount):
        k = k0 + j
        a = acc[j]
        o = out[n, k, oh]
        bi = I64(ibias[k])
        if mode == 0:
            for ow in range(Wo):
                o[ow] = I32(I64(a[ow]) + bi)
        elif mode == 1:
            # gemmlowp: SaturatingRoundingDoublingHighMul then RoundingDivideByPOT. The
            # saturating case a == b == INT32_MIN cannot occur: M0 >= 2^30 > 0.
            M = I64(m0[k])
            sh = I64(shift[k])
            left = sh if sh > 0 else I64(0)
            e = -sh if sh < 0 else I64(0)
            mask = (I64(1) << e) - 1
            half = mask >> 1
            for ow in range(Wo):
                ab = ((I64(a[ow]) + bi) << left) * M
                t = ab + (I64(1 << 30) if ab >= 0 else I64(1 - (1 << 30)))
                q = (t + ((t >> 63) & I64(2147483647))) >> 31  # t / 2^31 truncated toward zero
                r = (q >> e) + (I64(1) if (q & mask) > half + (q >> 63 & 1) else I64(0))
                o[ow] = I32(min(max(r + zp, lo), hi))
        elif mode == 2:
            M = I64(m0[k])
            t = I64(31) - I64(shift[k])
            rnd = I64(1) << (t - 1)
            for ow in range(Wo):
                r = ((I64(a[ow]) + bi) * M + rnd) >> t
                o[ow] = I32(min(max(r + zp, lo), hi))
        elif mode == 3 or mode == 5:
            fm = fmul[k]
            fb = fbias[k]
            for ow in range(Wo):
                if mode == 3:
                    xf = F32(I32(I64(a[ow]) + bi))
                else:
                    xf = F32(F32(a[ow]) + fb)
                r = I64(np.rint(F32(xf * fm)))
                o[ow] = I32(min(max(r + zp, lo), hi))
        else:  # mode 4: power-of-2 multiplier 2^shift
            sh = I64(shift[k])
            if sh >= 0:
                for ow in range(Wo):
                    r = (I64(a[ow]) + bi) << sh
                    o[ow] = I32(min(max(r + zp, lo), hi))
                continue
            nn = -sh
            hv = I64(1) << (nn - 1)
            for ow in range(Wo):
                v = I64(a[ow]) + bi
                if rcode == 2:  # half up
                    r = (v + hv) >> nn
                elif rcode == 1:  # half away from zero
                    av = v if v >= 0 else -v
                    r = (av + hv) >> nn
                    r = r if v >= 0 else -r
                else:  # half to even
                    q = v >> nn
                    rem = v - (q << nn)
                    r = q + (I64(1) if (rem > hv) or (rem == hv and (q & 1) == 1) else I64(0))
                o[ow] = I32(min(max(r + zp, lo), hi))


# ----------------------------------------------------------------------------- convolutions
@njit(cache=True, inline="always")
def _dot_2x4(X, xo, yo, W, oc, wo, L):  # pragma: no cover - compiled
    x = X[xo:xo + L]
    y = X[yo:yo + L]
    w0 = W[oc, wo:wo + L]
    w1 = W[oc + 1, wo:wo + L]
    w2 = W[oc + 2, wo:wo + L]
    w3 = W[oc + 3, wo:wo + L]
    a0 = I32(0)
    a1 = I32(0)
    a2 = I32(0)
    a3 = I32(0)
    b0 = I32(0)
    b1 = I32(0)
    b2 = I32(0)
    b3 = I32(0)
    for j in range(L):
        xv = x[j]
        yv = y[j]
        c0 = w0[j]
        c1 = w1[j]
        c2 = w2[j]
        c3 = w3[j]
        a0 = I32(a0 + I32(xv * c0))
        a1 = I32(a1 + I32(xv * c1))
        a2 = I32(a2 + I32(xv * c2))
        a3 = I32(a3 + I32(xv * c3))
        b0 = I32(b0 + I32(yv * c0))
        b1 = I32(b1 + I32(yv * c1))
        b2 = I32(b2 + I32(yv * c2))
        b3 = I32(b3 + I32(yv * c3))
    return a0, a1, a2, a3, b0, b1, b2, b3


@njit(cache=True, parallel=True)
def conv_gemm(X, HX, WX, CX, W, xoff, L, Ho, Wo, sh, sw, groups, Kg,
              mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover
    """Grouped convolution as contiguous dot products.

    ``X`` is the flat int32 image ``(N*G, HX, WX, CX)``; the reduction of output
    ``(ng, oh, ow)`` is the ``len(xoff)`` segments ``X[base + xoff[s] : ... + L]``
    with ``base = ((ng*HX + oh*sh)*WX + ow*sw)*CX``, against ``W[k, s*L : (s+1)*L]``
    (``W`` has ``G * Kp`` rows, ``Kp`` = ``Kg`` rounded up to a multiple of 4).
    """
    nseg = xoff.shape[0]
    Kp = W.shape[0] // groups
    NG = X.shape[0] // (HX * WX * CX)
    for row in prange(NG * Ho):
        ng = row // Ho
        oh = row - ng * Ho
        n = ng // groups
        g = ng - n * groups
        acc = np.empty((Kp, Wo), dtype=np.int32)
        rbase = (ng * HX + oh * sh) * WX * CX
        for ow0 in range(0, Wo, 2):
            ow1 = min(ow0 + 1, Wo - 1)
            base0 = rbase + ow0 * sw * CX
            base1 = rbase + ow1 * sw * CX
            for oc in range(0, Kp, 4):
                r = g * Kp + oc
                a0 = I32(0)
                a1 = I32(0)
                a2 = I32(0)
                a3 = I32(0)
                e0 = I32(0)
                e1 = I32(0)
                e2 = I32(0)
                e3 = I32(0)
                for s in range(nseg):
                    b0, b1, b2, b3, d0, d1, d2, d3 = _dot_2x4(
                        X, base0 + xoff[s], base1 + xoff[s], W, r, s * L, L)
                    a0 = I32(a0 + b0)
                    a1 = I32(a1 + b1)
                    a2 = I32(a2 + b2)
                    a3 = I32(a3 + b3)
                    e0 = I32(e0 + d0)
                    e1 = I32(e1 + d1)
                    e2 = I32(e2 + d2)
                    e3 = I32(e3 + d3)
                acc[oc, ow0] = a0
                acc[oc + 1, ow0] = a1
                acc[oc + 2, ow0] = a2
                acc[oc + 3, ow0] = a3
                acc[oc, ow1] = e0
                acc[oc + 1, ow1] = e1
                acc[oc + 2, ow1] = e2
                acc[oc + 3, ow1] = e3
        requant_row(acc, n, oh, g * Kg, Kg, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi,
                    rcode, out)


@njit(cache=True, parallel=True)
def conv_depthwise(X, W, kh, kw, sh, sw, dh, dw, Ho, Wo,
                   mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover
    """Depthwise convolution vectorised over channels.

    ``X`` is ``(N, HP, WP, K)`` int32 (input channel of each output channel already
    gathered), ``W`` is ``(kh*kw, K)`` int32.
    """
    N = X.shape[0]
    K = X.shape[3]
    for row in prange(N * Ho):
        n = row // Ho
        oh = row - n * Ho
        acc = np.empty((K, Wo), dtype=np.int32)
        a = np.empty(K, dtype=np.int32)
        for ow in range(Wo):
            a[:] = 0
            for i in range(kh):
                for j in range(kw):
                    xr = X[n, oh * sh + i * dh, ow * sw + j * dw]
                    wr = W[i * kw + j]
                    for k in range(K):
                        a[k] = I32(a[k] + I32(xr[k] * wr[k]))
            for k in range(K):
                acc[k, ow] = a[k]
        requant_row(acc, n, oh, 0, K, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)
