"""AVX-512 VNNI kernels of the integer convolution (``vpdpbusd``), used by :mod:`qtheory.intconv`.

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes and adds each group of 4 products
to one of 16 int32 lanes (no saturation). Activations enter as unsigned bytes *as stored*
(int8 storage is flipped to uint8 by ``x ^ 0x80``), weights as signed bytes, so each lane
accumulates ``Σ x_u8 · w`` and the zero point is removed afterwards per output channel:
``acc = Σ (x_u8 − z_u8) · w = Σ x_u8 · w − z_u8 · Σ w``. The public wrapper uses these kernels
only when ``reduction · 255 · 128 < 2^31``, so neither sum can leave the int32 range and every
result is exact (bit-identical to the portable kernels and to the int64 reference).

Layouts (NCHW in and out, no transposes to NHWC):

``conv_gemm``
    The input is packed to *channel quads*: ``X4[ng, cq, q, u] = x[n, g·Cg + 4cq + u, q]`` over
    the padded, flattened plane ``q = h·Wp + w`` (padding ``z_u8``). An output pixel
    ``q = oh·Wp + ow`` (stride 1) reads tap ``(i, j)`` at ``q + i·dh·Wp + j·dw``, so 16
    consecutive output pixels of one channel quad are one 64-byte load. Each step multiplies
    ``PV`` such vectors by ``KB`` broadcast weight dwords (4 input channels of one output
    channel): ``KB·PV`` accumulators of 16 pixels (columns ``ow >= Wo`` are computed and
    dropped). Strided convolutions go through an im2col of taps in quads first (then
    ``kh = kw = 1`` over the taps).
``conv_dw``
    Depthwise, stride 1, ``kw <= 4``, horizontal dilation 1: for 64 output pixels of one
    channel the 4 loads at byte offsets ``q, q+1, q+2, q+3`` of one input row hold, in lane
    ``l``, the bytes ``x[q+s+4l .. q+s+4l+3]`` — the ``kw`` horizontal taps of pixel
    ``q+s+4l`` — so one ``vpdpbusd`` with the broadcast taps ``(w_0, .., w_{kw-1}, 0, ..)`` of
    a kernel row does all horizontal taps of 16 pixels; the 4 results are interleaved back.
"""

from __future__ import annotations

import llvmlite.binding as _ll
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .intconv import requant_seg

I32 = np.int32
I64 = np.int64

#: output channels per block and 16-pixel vectors per block of :func:`conv_gemm`
KB = 8
PV = 3
#: pixels per block of :func:`conv_gemm` and of :func:`conv_dw`
PB = 16 * PV
DWB = 64


def _has_vnni() -> bool:
    try:
        feats = _ll.get_host_cpu_features()
    except Exception:  # pragma: no cover - non-x86 hosts
        return False
    return bool(feats.get("avx512vnni", False) and feats.get("avx512bw", False) and feats.get("avx512f", False))


#: the host has AVX-512 VNNI (the public wrapper falls back to the portable kernels otherwise)
HAVE_VNNI = _has_vnni()

_VPDPBUSD = "llvm.x86.avx512.vpdpbusd.512"


def _vpdpbusd(builder):
    i32v = ir.VectorType(ir.IntType(32), 16)
    mod = builder.module
    return mod.globals.get(_VPDPBUSD) or ir.Function(mod, ir.FunctionType(i32v, [i32v, i32v, i32v]), name=_VPDPBUSD)


@intrinsic
def _gemm_block(typingctx, X, xoff, offs, W, woff, acc, aoff, astride):
    """``acc[aoff + kk·astride + 16v + l] = Σ_s Σ_u X[xoff + offs[s] + 64v + 4l + u] · W_bytes[woff + s·KB + kk, u]``
    for ``kk < KB``, ``v < PV``, ``l < 16`` (overwrites ``acc``)."""
    sig = types.void(X, xoff, offs, W, woff, acc, aoff, astride)

    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        xv, xoff_, ov, wv, woff_, av, aoff_, ast_ = args
        xd = context.make_array(signature.args[0])(context, builder, xv).data
        od = context.make_array(signature.args[2])(context, builder, ov)
        wd = context.make_array(signature.args[3])(context, builder, wv).data
        ad = context.make_array(signature.args[5])(context, builder, av).data
        nsteps = builder.extract_value(od.shape, 0)
        odata = od.data
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        i32v = ir.VectorType(i32, 16)
        dp = _vpdpbusd(builder)
        xb = builder.gep(xd, [xoff_])
        wb = builder.gep(wd, [woff_])
        entry = builder.block
        loop = builder.append_basic_block("gemm_loop")
        done = builder.append_basic_block("gemm_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        s = builder.phi(i64)
        s.add_incoming(ir.Constant(i64, 0), entry)
        accs = []
        for _ in range(KB * PV):
            p = builder.phi(i32v)
            p.add_incoming(ir.Constant(i32v, None), entry)
            accs.append(p)
        o = builder.load(builder.gep(odata, [s]))
        xs = []
        for v in range(PV):
            ptr = builder.gep(xb, [builder.add(o, ir.Constant(i64, 64 * v))])
            xs.append(builder.load(builder.bitcast(ptr, i32v.as_pointer()), align=1))
        wrow = builder.gep(wb, [builder.mul(s, ir.Constant(i64, KB))])
        new = []
        for kk in range(KB):
            wdw = builder.load(builder.gep(wrow, [ir.Constant(i64, kk)]), align=4)
            bc = builder.insert_element(ir.Constant(i32v, None), wdw, ir.Constant(i32, 0))
            bc = builder.shuffle_vector(bc, ir.Constant(i32v, None), ir.Constant(i32v, None))
            for v in range(PV):
                new.append(builder.call(dp, [accs[kk * PV + v], xs[v], bc]))
        sn = builder.add(s, ir.Constant(i64, 1))
        s.add_incoming(sn, builder.block)
        for p, val in zip(accs, new, strict=True):
            p.add_incoming(val, builder.block)
        builder.cbranch(builder.icmp_signed("<", sn, nsteps), loop, done)
        builder.position_at_end(done)
        for kk in range(KB):
            row = builder.gep(ad, [builder.add(aoff_, builder.mul(ast_, ir.Constant(i64, kk)))])
            for v in range(PV):
                ptr = builder.gep(row, [ir.Constant(i64, 16 * v)])
                builder.store(new[kk * PV + v], builder.bitcast(ptr, i32v.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _dw_block(typingctx, X, xoff, roffs, W, woff, acc, aoff):
    """``acc[aoff + p] = Σ_i Σ_u X[xoff + p + roffs[i] + u] · W_bytes[woff + i, u]`` for ``p < 64``."""
    sig = types.void(X, xoff, roffs, W, woff, acc, aoff)

    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        xv, xoff_, rv, wv, woff_, av, aoff_ = args
        xd = context.make_array(signature.args[0])(context, builder, xv).data
        rd = context.make_array(signature.args[2])(context, builder, rv)
        wd = context.make_array(signature.args[3])(context, builder, wv).data
        ad = context.make_array(signature.args[5])(context, builder, av).data
        nrows = builder.extract_value(rd.shape, 0)
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        i32v = ir.VectorType(i32, 16)
        dp = _vpdpbusd(builder)
        xb = builder.gep(xd, [xoff_])
        wb = builder.gep(wd, [woff_])
        entry = builder.block
        loop = builder.append_basic_block("dw_loop")
        done = builder.append_basic_block("dw_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        i = builder.phi(i64)
        i.add_incoming(ir.Constant(i64, 0), entry)
        accs = []
        for _ in range(4):
            p = builder.phi(i32v)
            p.add_incoming(ir.Constant(i32v, None), entry)
            accs.append(p)
        ro = builder.load(builder.gep(rd.data, [i]))
        wdw = builder.load(builder.gep(wb, [i]), align=4)
        bc = builder.insert_element(ir.Constant(i32v, None), wdw, ir.Constant(i32, 0))
        bc = builder.shuffle_vector(bc, ir.Constant(i32v, None), ir.Constant(i32v, None))
        new = []
        for sft in range(4):
            ptr = builder.gep(xb, [builder.add(ro, ir.Constant(i64, sft))])
            xvv = builder.load(builder.bitcast(ptr, i32v.as_pointer()), align=1)
            new.append(builder.call(dp, [accs[sft], xvv, bc]))
        inn = builder.add(i, ir.Constant(i64, 1))
        i.add_incoming(inn, builder.block)
        for p, val in zip(accs, new, strict=True):
            p.add_incoming(val, builder.block)
        builder.cbranch(builder.icmp_signed("<", inn, nrows), loop, done)
        builder.position_at_end(done)
        # lane l of result s is pixel 4l + s: interleave the 4 vectors
        cat = ir.Constant(ir.VectorType(i32, 32), [ir.Constant(i32, t) for t in range(32)])
        c01 = builder.shuffle_vector(new[0], new[1], cat)
        c23 = builder.shuffle_vector(new[2], new[3], cat)
        i32v64 = ir.VectorType(i32, 64)
        mask = ir.Constant(i32v64, [ir.Constant(i32, (m % 4) * 16 + m // 4) for m in range(64)])
        allv = builder.shuffle_vector(c01, c23, mask)
        dst = builder.gep(ad, [aoff_])
        builder.store(allv, builder.bitcast(dst, i32v64.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


# ----------------------------------------------------------------------------- packing
@njit(cache=True, parallel=True)
def pack_quads(x, G, Cg, ph, pw, Wp, flip, out):  # pragma: no cover - compiled
    """``out[n·G+g, cq, (h+ph)·Wp + w + pw]`` = the 4 bytes ``x[n, g·Cg + 4cq + u, h, w] ^ flip``
    (``u = 0..3``, little-endian) of one uint32; ``x`` is a uint8 view, ``flip`` 0 or 0x80808080,
    ``out`` (uint32) pre-filled with the padding value; channels beyond ``Cg`` give byte 0."""
    N = x.shape[0]
    H = x.shape[2]
    W = x.shape[3]
    Cq = out.shape[1]
    U32 = np.uint32
    for task in prange(N * G * Cq):
        ng = task // Cq
        cq = task - ng * Cq
        n = ng // G
        g = ng - n * G
        o = out[ng, cq]
        c0 = g * Cg + 4 * cq
        nc = min(4, Cg - 4 * cq)
        for h in range(H):
            base = (h + ph) * Wp + pw
            dst = o[base:base + W]
            r0 = x[n, c0, h]
            if nc == 4:
                r1 = x[n, c0 + 1, h]
                r2 = x[n, c0 + 2, h]
                r3 = x[n, c0 + 3, h]
                for w in range(W):
                    dst[w] = (U32(r0[w]) | (U32(r1[w]) << U32(8)) | (U32(r2[w]) << U32(16))
                              | (U32(r3[w]) << U32(24))) ^ flip
            else:
                for w in range(W):
                    v = U32(r0[w])
                    if nc > 1:
                        v |= U32(x[n, c0 + 1, h, w]) << U32(8)
                    if nc > 2:
                        v |= U32(x[n, c0 + 2, h, w]) << U32(16)
                    dst[w] = v ^ flip


@njit(cache=True, parallel=True)
def pack_im2col_quads(xp, G, Cg, kh, kw, sh, sw, dh, dw, Ho, Wo, out):  # pragma: no cover - compiled
    """``out[n·G+g, τ // 4, oh·Wo + ow]`` holds in byte ``τ % 4`` the padded input
    ``xp[n, g·Cg + c, oh·sh + i·dh, ow·sw + j·dw]`` of tap ``τ = (c·kh + i)·kw + j`` (``xp`` uint8,
    padded and flipped already; ``out`` uint32; taps beyond ``Cg·kh·kw`` give byte 0)."""
    N = xp.shape[0]
    T = Cg * kh * kw
    Sq = out.shape[1]
    U32 = np.uint32
    for task in prange(N * G * Sq):
        ng = task // Sq
        sq = task - ng * Sq
        n = ng // G
        g = ng - n * G
        o = out[ng, sq]
        nt = min(4, T - 4 * sq)
        cs = np.zeros(4, dtype=np.int64)
        hs = np.zeros(4, dtype=np.int64)
        js = np.zeros(4, dtype=np.int64)
        for u in range(nt):
            t = 4 * sq + u
            c = t // (kh * kw)
            r = t - c * (kh * kw)
            cs[u] = g * Cg + c
            hs[u] = (r // kw) * dh
            js[u] = (r - (r // kw) * kw) * dw
        for oh in range(Ho):
            dst = o[oh * Wo:(oh + 1) * Wo]
            if nt == 4:
                r0 = xp[n, cs[0], oh * sh + hs[0], js[0]:]
                r1 = xp[n, cs[1], oh * sh + hs[1], js[1]:]
                r2 = xp[n, cs[2], oh * sh + hs[2], js[2]:]
                r3 = xp[n, cs[3], oh * sh + hs[3], js[3]:]
                for ow in range(Wo):
                    q = np.uint64(ow * sw)  # unsigned: no negative-index wraparound, the loop vectorises
                    dst[ow] = (U32(r0[q]) | (U32(r1[q]) << U32(8)) | (U32(r2[q]) << U32(16))
                               | (U32(r3[q]) << U32(24)))
            else:
                for ow in range(Wo):
                    v = U32(0)
                    for u in range(nt):
                        v |= U32(xp[n, cs[u], oh * sh + hs[u], ow * sw + js[u]]) << U32(8 * u)
                    dst[ow] = v


@njit(cache=True, parallel=True)
def pack_planes(x, m, ph, pw, Wp, flip, out):  # pragma: no cover - compiled
    """``out[n, k, (h+ph)·Wp + w + pw] = x[n, k // m, h, w] ^ flip`` (``flip`` a uint8 0 or 0x80; ``out``
    pre-filled with the padding)."""
    N = x.shape[0]
    H = x.shape[2]
    W = x.shape[3]
    K = out.shape[1]
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        src = x[n, k // m]
        o = out[n, k]
        for h in range(H):
            base = (h + ph) * Wp + pw
            dst = o[base:base + W]
            row = src[h]
            for w in range(W):
                dst[w] = row[w] ^ flip


# ----------------------------------------------------------------------------- convolutions
@njit(cache=True, parallel=True)
def conv_gemm(X4, Wk, offs, G, Kg, nkb, Ho, Wo, Wq, nblk, chunk, corr,
              mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover - compiled
    """Channel-quad convolution (module docstring). ``X4`` is ``(N·G, Cq·P4·4)`` uint8,
    ``Wk`` ``(G·nkb·S·KB)`` int32 (4 weight bytes per dword), ``offs`` the ``S`` byte offsets of
    the reduction steps; output pixels ``q = oh·Wq + ow`` in ``nblk`` blocks of ``PB``,
    ``chunk`` blocks per task."""
    NG = X4.shape[0]
    nch = (nblk + chunk - 1) // chunk
    L = chunk * PB
    for task in prange(NG * nch):
        ng = task // nch
        ch = task - ng * nch
        n = ng // G
        g = ng - n * G
        b0 = ch * chunk
        b1 = min(b0 + chunk, nblk)
        acc = np.empty((nkb * KB, L), dtype=np.int32)
        accf = acc.ravel()
        Xf = X4[ng]
        for b in range(b0, b1):
            for kb in range(nkb):
                _gemm_block(Xf, b * PB * 4, offs, Wk, (g * nkb + kb) * offs.shape[0] * KB,
                            accf, kb * KB * L + (b - b0) * PB, L)
        q0 = b0 * PB
        q1 = min(b1 * PB, Ho * Wq)
        for kk in range(Kg):
            c = corr[g * Kg + kk]
            a = acc[kk]
            for t in range(q1 - q0):
                a[t] = I32(a[t] - c)
        # rows [oh0, oh1) lie entirely in [q0, q1); a partial row at each end
        oh0 = (q0 + Wq - 1) // Wq
        oh1 = q1 // Wq
        if oh1 * Wq + Wo <= q1:
            oh1 += 1  # the last row's valid columns are all in range
        if oh1 > oh0:
            requant_seg(acc, oh0 * Wq - q0, Wq, Wo, oh1 - oh0, n, oh0, 0, g * Kg, Kg,
                        mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)
        for oh in (oh0 - 1, oh1):
            if oh < 0 or oh >= Ho or (oh >= oh0 and oh < oh1):
                continue
            s0 = max(oh * Wq, q0)
            s1 = min(oh * Wq + Wo, q1)
            if s1 > s0:
                requant_seg(acc, s0 - q0, 0, s1 - s0, 1, n, oh, s0 - oh * Wq, g * Kg, Kg,
                            mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)


@njit(cache=True, parallel=True)
def conv_dw(Xp, Wd, roffs, Ho, Wo, Wp, nblk, corr,
            mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out):  # pragma: no cover - compiled
    """Depthwise convolution (module docstring). ``Xp`` is ``(N, K, P)`` uint8 padded planes (input
    channel of each output channel), ``Wd`` ``(K·kh)`` int32 (the ``kw`` taps of a kernel row in
    one dword), ``roffs`` the ``kh`` row offsets ``i·dh·Wp``."""
    N = Xp.shape[0]
    K = Xp.shape[1]
    kh = roffs.shape[0]
    L = nblk * DWB
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        acc = np.empty((1, L), dtype=np.int32)
        accf = acc.ravel()
        Xf = Xp[n, k]
        for b in range(nblk):
            _dw_block(Xf, b * DWB, roffs, Wd, k * kh, accf, b * DWB)
        c = corr[k]
        a = acc[0]
        for t in range(Ho * Wp):
            a[t] = I32(a[t] - c)
        requant_seg(acc, 0, Wp, Wo, Ho, n, 0, 0, k, 1, mode, m0, shift, fmul, fbias, ibias, zp, lo, hi, rcode, out)
