"""numba kernels of the integer-only convolution (:mod:`qtheory.intconv`).

Layout inside: activations are packed once (numpy) to ``int16`` NHWC
(group-major, zero point already subtracted, zero padding). For each output row the ``kh``
input rows it needs are interleaved into a row buffer ``B[w, i, c]`` so that
the whole reduction of one output pixel, ``(kw, kh, c)``, is one contiguous
run, dotted with weights laid out ``[out_channel, kw, kh, c]``; 2 output
pixels x 4 output channels at a time (short reductions go through an im2col
buffer instead).

Two dot-product kernels:

``conv_rows16`` (x86 with AVX2; the default here)
    int16 operands (``|x − zp| <= 255``, ``|w| <= 128`` fit) multiplied in pairs
    by ``pmaddwd`` (``llvm.x86.avx512.pmaddw.d.512`` with AVX-512BW, else
    ``llvm.x86.avx2.pmadd.wd``), emitted as LLVM IR through a numba
    ``@intrinsic``: each instruction does 32 (16) exact multiply-adds into int32
    lanes (a pair sum is at most 2·255·128 < 2^31). LLVM does not form
    ``pmaddwd`` from numba loops by itself; the int32 kernel below is bound by
    ``vpmulld`` (16 MACs per instruction) and reaches about half the speed.
``conv_rows`` (portable)
    int32 operands, every step cast back to ``int32`` so that numba does not
    promote the products to ``int64``; LLVM emits 16-lane ``vpmulld``/``vpaddd``.

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

import llvmlite.binding as _ll
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

I32 = np.int32
I64 = np.int64
F32 = np.float32


def _pmaddwd_lanes() -> int:
    """int16 lanes of the widest ``pmaddwd`` on this host (0: none, use ``conv_rows``)."""
    try:
        feats = _ll.get_host_cpu_features()
    except Exception:  # pragma: no cover - non-x86 hosts
        return 0
    if feats.get("avx512bw", False):
        return 32
    if feats.get("avx2", False):
        return 16
    return 0  # pragma: no cover


#: int16 lanes per ``pmaddwd`` (32 with AVX-512BW, 16 with AVX2, 0 without: portable kernel)
LANES = _pmaddwd_lanes()


# ----------------------------------------------------------------------------- packing
@njit(cache=True, parallel=True)
def im2col(X, kh, kw, sh, sw, dh, dw, Ho, Wo, out):  # pragma: no cover - compiled
    """``out[ng, oh, ow, (i*kw+j)*Cg+c] = X[ng, oh*sh+i*dh, ow*sw+j*dw, c]`` (``out`` may be
    longer in its last axis: the tail is left as it is, zeros from the caller)."""
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
    """Requantise ``acc[j, ow]`` (``j < kcount``) into ``out[n, k0+j, oh, ow]``."""
    requant_seg(acc, 0, 0, acc.shape[1], 1, n, oh, 0, k0, kcount, mode, m0, shift, fmul, fbias, ibias, zp, lo,
                hi, rcode, out)


@njit(cache=True)
def requant_seg(acc, a0, astride, cnt, nrows, n, oh, ow0, k0, kcount, mode, m0, shift, fmul, fbias, ibias, zp,
                lo, hi, rcode, out):  # pragma: no cover - compiled
    """Requantise ``acc[j, a0 + r·astride : ... + cnt]`` (``j < kcount``, ``r < nrows``) into
    ``out[n, k0+j, oh+r, ow0:ow0+cnt]``.

    Branch-free int64 / float32 arithmetic in each loop so that LLVM vectorises it. ``out`` is
    int32 or the stored output dtype (the values lie in ``[lo, hi]``).
    """
    Wo = cnt
    for jr in range(kcount * nrows):
        j = jr // nrows
        rr = jr - j * nrows
        k = k0 + j
        a = acc[j, a0 + rr * astride:a0 + rr * astride + cnt]
        o = out[n, k, oh + rr, ow0:ow0 + cnt]
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
                pr = F32(xf * fm)  # clamped before the conversion (finite fm; inf saturates)
                pr = min(max(pr, F32(-2147483648.0)), F32(2147483648.0))
                r = I64(np.rint(pr))
                o[ow] = I32(min(max(r + zp, lo), hi))
        else:  # mode 4: power-of-2 multiplier 2^shift
            sh = I64(shift[k])
            if sh >= 0:
                for ow in range(Wo):
                    r = (I64(a[ow]) + bi) << sh
                    o[ow] = I32(min(max(r + zp, lo), hi))
                continue
            # |acc + bias| < 2^31, so any shift beyond 33 rounds to 0 as 40 does: keeps shifts < 64
            nn = min(-sh, I64(40))
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
def conv_depthwise(X, W, kh, kw, sh, sw, dh, dw, Ho, Wo,
                   mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover
    """Depthwise convolution vectorised over channels.

    ``X`` is ``(N, HP, WP, K)`` int16 (input channel of each output channel already
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
                        a[k] = I32(a[k] + I32(I32(xr[k]) * wr[k]))
            for k in range(K):
                acc[k, ow] = a[k]
        requant_row(acc, n, oh, 0, K, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)


@njit(cache=True, parallel=True)
def conv_rows(X, W, kh, kw, sh, sw, dh, Ho, Wo, groups,
              mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover
    """Grouped convolution with horizontal dilation 1, one output row at a time.

    ``X`` is ``(N*G, HX, WX, CX)`` int16. For output row ``oh`` the ``kh`` input rows
    ``oh*sh + i*dh`` are interleaved into a buffer ``B[w, i, c]`` so that the whole reduction
    of output ``ow`` — ``(kw, kh, c)`` — is one contiguous run of ``kw*kh*CX`` values at
    ``B[ow*sw]``, dotted with ``W[k]`` laid out ``[kw, kh, c]`` (``G*Kp`` rows, ``Kp`` a
    multiple of 4). One horizontal reduction per output instead of one per kernel row.
    """
    NG = X.shape[0]
    WX = X.shape[2]
    CX = X.shape[3]
    Kp = W.shape[0] // groups
    Kg = out.shape[1] // groups
    L = kw * kh * CX
    step = sw * kh * CX
    for row in prange(NG * Ho):
        ng = row // Ho
        oh = row - ng * Ho
        n = ng // groups
        g = ng - n * groups
        B = np.empty(WX * kh * CX, dtype=np.int32)
        for w in range(WX):
            for i in range(kh):
                src = X[ng, oh * sh + i * dh, w]
                d0 = (w * kh + i) * CX
                for c in range(CX):
                    B[d0 + c] = src[c]
        acc = np.empty((Kp, Wo), dtype=np.int32)
        for oc in range(0, Kp, 4):
            r = g * Kp + oc
            for ow0 in range(0, Wo, 2):
                ow1 = min(ow0 + 1, Wo - 1)
                a0, a1, a2, a3, e0, e1, e2, e3 = _dot_2x4(B, ow0 * step, ow1 * step, W, r, 0, L)
                acc[oc, ow0] = a0
                acc[oc + 1, ow0] = a1
                acc[oc + 2, ow0] = a2
                acc[oc + 3, ow0] = a3
                acc[oc, ow1] = e0
                acc[oc + 1, ow1] = e1
                acc[oc + 2, ow1] = e2
                acc[oc + 3, ow1] = e3
        requant_row(acc, n, oh, g * Kg, Kg, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)



def _make_dot16(lanes: int):
    """``dot16_2x4(X, xo, yo, W, wo, ws, L)``: the 8 int32 dot products of ``X[xo:xo+L]`` and
    ``X[yo:yo+L]`` with ``W[wo + t*ws : ... + L]`` (t = 0..3), int16 operands, ``L`` a positive
    multiple of ``lanes``; one ``pmaddwd`` + ``add`` per operand pair and step."""
    out_lanes = lanes // 2
    pname = "llvm.x86.avx512.pmaddw.d.512" if lanes == 32 else "llvm.x86.avx2.pmadd.wd"
    rname = f"llvm.vector.reduce.add.v{out_lanes}i32"

    @intrinsic
    def dot16_2x4(typingctx, X, xo, yo, W, wo, ws, L):
        sig = types.UniTuple(types.int32, 8)(X, xo, yo, W, wo, ws, L)

        def codegen(context, builder, signature, args):  # pragma: no cover - compile time
            xv, xo_, yo_, wv, wo_, ws_, n = args
            xd = context.make_array(signature.args[0])(context, builder, xv).data
            wd = context.make_array(signature.args[3])(context, builder, wv).data
            i64 = ir.IntType(64)
            i16v = ir.VectorType(ir.IntType(16), lanes)
            i32v = ir.VectorType(ir.IntType(32), out_lanes)
            mod = builder.module
            pm = mod.globals.get(pname) or ir.Function(mod, ir.FunctionType(i32v, [i16v, i16v]), name=pname)
            red = mod.globals.get(rname) or ir.Function(mod, ir.FunctionType(ir.IntType(32), [i32v]), name=rname)
            xb = [builder.gep(xd, [xo_]), builder.gep(xd, [yo_])]
            wb, off = [], wo_
            for _ in range(4):
                wb.append(builder.gep(wd, [off]))
                off = builder.add(off, ws_)
            entry = builder.block
            loop = builder.append_basic_block("pmaddwd_loop")
            done = builder.append_basic_block("pmaddwd_done")
            builder.branch(loop)
            builder.position_at_end(loop)
            j = builder.phi(i64)
            j.add_incoming(ir.Constant(i64, 0), entry)
            acc = []
            for _ in range(8):
                p = builder.phi(i32v)
                p.add_incoming(ir.Constant(i32v, None), entry)
                acc.append(p)

            def load(base):
                return builder.load(builder.bitcast(builder.gep(base, [j]), i16v.as_pointer()), align=2)

            xs = [load(b) for b in xb]
            wl = [load(b) for b in wb]
            new = [builder.add(acc[a * 4 + t], builder.call(pm, [xs[a], wl[t]])) for a in range(2) for t in range(4)]
            jn = builder.add(j, ir.Constant(i64, lanes))
            j.add_incoming(jn, builder.block)
            for p, v in zip(acc, new, strict=True):
                p.add_incoming(v, builder.block)
            builder.cbranch(builder.icmp_signed("<", jn, n), loop, done)
            builder.position_at_end(done)
            return context.make_tuple(builder, signature.return_type, [builder.call(red, [v]) for v in new])

        return sig, codegen

    return dot16_2x4


_dot16_2x4 = _make_dot16(LANES if LANES else 16)


@njit(cache=True, parallel=True)
def conv_rows16(X, W, kh, kw, sh, sw, dh, Ho, Wo, groups,
                mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover
    """:func:`conv_rows` with int16 operands and ``pmaddwd`` (needs ``LANES > 0``).

    ``W`` is ``(G*Kp, Lp)`` int16, ``[kw, kh, c]`` per row, zero beyond ``kw*kh*CX`` up to
    ``Lp`` (a multiple of ``LANES``). The row buffer has ``Lp`` zeros of slack so that the
    padded tail of the last pixel's run stays inside it (it meets zero weights).
    """
    NG = X.shape[0]
    WX = X.shape[2]
    CX = X.shape[3]
    Kp = W.shape[0] // groups
    Kg = out.shape[1] // groups
    Lp = W.shape[1]
    Wf = W.ravel()
    step = sw * kh * CX
    direct = kh == 1 and kw * CX == Lp
    for row in prange(NG * Ho):
        ng = row // Ho
        oh = row - ng * Ho
        n = ng // groups
        g = ng - n * groups
        if direct:  # the input row is already the row buffer (1-row kernels, im2col)
            B = X[ng, oh * sh].reshape(WX * CX)
        else:
            B = np.zeros(WX * kh * CX + Lp, dtype=np.int16)
            for w in range(WX):
                for i in range(kh):
                    src = X[ng, oh * sh + i * dh, w]
                    d0 = (w * kh + i) * CX
                    for c in range(CX):
                        B[d0 + c] = src[c]
        acc = np.empty((Kp, Wo), dtype=np.int32)
        for oc in range(0, Kp, 4):
            r = (g * Kp + oc) * Lp
            for ow0 in range(0, Wo, 2):
                ow1 = min(ow0 + 1, Wo - 1)
                a0, a1, a2, a3, e0, e1, e2, e3 = _dot16_2x4(B, ow0 * step, ow1 * step, Wf, r, Lp, Lp)
                acc[oc, ow0] = a0
                acc[oc + 1, ow0] = a1
                acc[oc + 2, ow0] = a2
                acc[oc + 3, ow0] = a3
                acc[oc, ow1] = e0
                acc[oc + 1, ow1] = e1
                acc[oc + 2, ow1] = e2
                acc[oc + 3, ow1] = e3
        requant_row(acc, n, oh, g * Kg, Kg, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)
