"""Monte-Carlo MSE with the draws inside numba (:func:`qtheory.montecarlo.mse`).

Random numbers: xoshiro256** (Blackman & Vigna 2018), 8 independent lanes per chunk so that the
generator, the transforms and the accumulation vectorise (the lanes are one SIMD register of
uint64). Each chunk of ``chunk`` samples has its own 8 lane states, given by the caller (from
``numpy.random.SeedSequence.spawn``), so a chunk's result depends only on its states: the
per-chunk sums are written to their own row and summed in chunk order by the caller, and the
result is the same for any number of threads.

Chunk states: :func:`spawn_states` computes the words of ``numpy.random.SeedSequence(root)
.spawn(n)[c].generate_state(32, uint64)`` for all chunks in one call (O'Neill's mixing, the same
words as numpy's; tested), so seeding costs microseconds instead of one Python object per chunk.

Transforms (vectorisable, no libm calls, compiled with the ``contract`` fast-math flag only, so
multiply-adds are fused): ``log`` is fdlibm's ``__ieee754_log`` reduction
(``m·2^e``, ``m ∈ [√2/2, √2)``, ``s = f/(2+f)``, the degree-14 odd polynomial of ``Lg1..Lg7``),
within an ulp; ``sin``/``cos`` are fdlibm's kernels on ``[−π/4, π/4]`` after an exact reduction of
the turn ``u ∈ [0, 1)`` by quadrants. Laplace: ``loc ± b·(−log u)`` with an independent sign bit;
Gaussian: Box–Muller, ``√(−2 log u1)·(cos, sin)(2π u2)`` (both outputs used; one 64-bit output per
draw, as for Laplace); ``rectify`` applies ``max(x, 0)``. Box–Muller stays: with this generator
(AVX-512, one thread) its draws cost ~1.4 ns each and the fast path alone of a vectorised
256-layer ziggurat ~1.1 ns (its table lookups are gathers), before the ~1.5% of draws that fall to
a scalar wedge/tail step with ``exp`` and extra random words: too little gain for a sampler whose
use of random words depends on the data.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 8
BATCH = 1024
#: LLVM fast-math flags of the transforms: only ``contract`` (fused multiply-add; no reassociation,
#: no finite-math assumptions), so each polynomial step rounds once instead of twice.
_FM = {"contract"}

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11
_TWO_PI = 6.283185307179586
_SQRT2 = 1.4142135623730951


@numba.njit(cache=True, fastmath=_FM, error_model="numpy")
def fdlibm_log(x, out):  # pragma: no cover - compiled
    """``out[i] = log(x[i])`` for positive finite ``x`` (fdlibm reduction, vectorises)."""
    for i in range(x.shape[0]):
        out[i] = _log_bits(x[i], _bits_of(x[i]))


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _log_bits(x, bits):
    """fdlibm log of a positive normal double ``x`` with IEEE bits ``bits``."""
    e = np.int64(bits >> np.uint64(52)) - 1023
    mbits = (bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)
    m = _f64_from_bits(mbits)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    R = t2 + t1
    hfsq = 0.5 * f * f
    dk = np.float64(e)
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)


@intrinsic
def _f64_from_bits(typingctx, b):
    """Reinterpret uint64 bits as a float64 (an LLVM bitcast)."""
    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


@intrinsic
def _bits_of(typingctx, x):
    """The IEEE bits of a float64 as uint64 (an LLVM bitcast)."""
    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _sincos_turn(u):
    """``(cos 2πu, sin 2πu)`` for ``u ∈ [0, 1)`` (quadrant reduction, fdlibm kernels)."""
    qi = np.int64(4.0 * u + 0.5)  # nearest quarter turn, 0..4 (truncation = floor: non-negative)
    r = u - 0.25 * np.float64(qi)  # exact: u has at most 53 significant bits, q/4 is a multiple of 1/4
    t = _TWO_PI * r  # [-pi/4, pi/4]
    z = t * t
    sn = t + t * z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    cs = 1.0 - 0.5 * z + z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    # rotate by qi quarter turns: (c, s) = (cs, sn), (-sn, cs), (-cs, -sn), (sn, -cs) for qi = 0..3
    swap = (qi & 1) == 1
    cv = sn if swap else cs
    sv = cs if swap else sn
    c = cv * (1.0 - 2.0 * np.float64(((qi + 1) >> 1) & 1))
    s = sv * (1.0 - 2.0 * np.float64((qi >> 1) & 1))
    return c, s


@numba.njit(cache=True, fastmath=_FM, error_model="numpy")
def sincos_turn(u, c, s):  # pragma: no cover - compiled
    """``c[i], s[i] = cos(2π u[i]), sin(2π u[i])`` (for tests)."""
    for i in range(u.shape[0]):
        c[i], s[i] = _sincos_turn(u[i])


@intrinsic
def _xoshiro_fill(typingctx, state, out):
    """Advance the ``LANES`` xoshiro256** lanes ``state`` (``(4, LANES)`` uint64) ``len(out) // LANES``
    times, writing output ``j`` of lane ``l`` to ``out[j·LANES + l]`` (one SIMD vector per step)."""
    sig = types.void(state, out)

    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        st = context.make_array(signature.args[0])(context, builder, args[0]).data
        oa = context.make_array(signature.args[1])(context, builder, args[1])
        od = oa.data
        n = builder.udiv(builder.extract_value(oa.shape, 0), ir.Constant(ir.IntType(64), LANES))
        i64 = ir.IntType(64)
        vt = ir.VectorType(i64, LANES)
        mod = builder.module
        fname = f"llvm.fshl.v{LANES}i64"
        fshl = mod.globals.get(fname) or ir.Function(mod, ir.FunctionType(vt, [vt, vt, vt]), name=fname)

        def splat(v):
            return ir.Constant(vt, [ir.Constant(i64, v)] * LANES)

        def rotl(x, k):
            return builder.call(fshl, [x, x, splat(k)])

        ptrs = [builder.bitcast(builder.gep(st, [ir.Constant(i64, w * LANES)]), vt.as_pointer()) for w in range(4)]
        init = [builder.load(p, align=8) for p in ptrs]
        entry = builder.block
        loop = builder.append_basic_block("xoshiro_loop")
        done = builder.append_basic_block("xoshiro_done")
        builder.cbranch(builder.icmp_unsigned(">", n, ir.Constant(i64, 0)), loop, done)
        builder.position_at_end(loop)
        j = builder.phi(i64)
        j.add_incoming(ir.Constant(i64, 0), entry)
        ph = []
        for w in range(4):
            p = builder.phi(vt)
            p.add_incoming(init[w], entry)
            ph.append(p)
        a0, a1, a2, a3 = ph
        r = builder.mul(rotl(builder.mul(a1, splat(5)), 7), splat(9))
        dst = builder.bitcast(builder.gep(od, [builder.mul(j, ir.Constant(i64, LANES))]), vt.as_pointer())
        builder.store(r, dst, align=8)
        t = builder.shl(a1, splat(17))
        a2 = builder.xor(a2, a0)
        a3 = builder.xor(a3, a1)
        a1 = builder.xor(a1, a2)
        a0 = builder.xor(a0, a3)
        a2 = builder.xor(a2, t)
        a3 = rotl(a3, 45)
        jn = builder.add(j, ir.Constant(i64, 1))
        j.add_incoming(jn, builder.block)
        for p, v in zip(ph, (a0, a1, a2, a3), strict=True):
            p.add_incoming(v, builder.block)
        builder.cbranch(builder.icmp_unsigned("<", jn, n), loop, done)
        builder.position_at_end(done)
        fin = [builder.phi(vt) for _ in range(4)]
        for w in range(4):
            fin[w].add_incoming(init[w], entry)
            fin[w].add_incoming((a0, a1, a2, a3)[w], loop)
            builder.store(fin[w], ptrs[w], align=8)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, error_model="numpy")
def xoshiro_fill(state, out):  # pragma: no cover - compiled
    """:func:`_xoshiro_fill` (for tests)."""
    _xoshiro_fill(state, out)


_M32 = np.uint64(0xFFFFFFFF)
_SS_INIT_A = np.uint64(0x43B0D7E5)
_SS_MULT_A = np.uint64(0x931E8875)
_SS_INIT_B = np.uint64(0x8B51F9DD)
_SS_MULT_B = np.uint64(0x58F38DED)
_SS_MIX_L = np.uint64(0xCA01F9DD)
_SS_MIX_R = np.uint64(0x4973F715)


@numba.njit(cache=True, inline="always")
def _ss_hash(value, h, mult):
    """SeedSequence's ``hashmix`` step on 32-bit words held in uint64: ``(hashed value, next constant)``."""
    v = value ^ h
    h = (h * mult) & _M32
    v = (v * h) & _M32
    return v ^ (v >> np.uint64(16)), h


@numba.njit(cache=True, inline="always")
def _ss_mix(x, y):
    """SeedSequence's ``mix`` of two 32-bit words (wrapping arithmetic, then masked to 32 bits)."""
    r = (_SS_MIX_L * x - _SS_MIX_R * y) & _M32
    return r ^ (r >> np.uint64(16))


@numba.njit(cache=True)
def spawn_states(entropy, out):  # pragma: no cover - compiled
    """The xoshiro256** lane states of ``SeedSequence(entropy).spawn(n)``, without Python objects.

    ``entropy`` is the root entropy as numpy's SeedSequence assembles it (uint32 words in uint64,
    at least 4 of them); chunk ``c`` is the child with ``spawn_key = (c,)``, and ``out[c, w, l]`` is
    word ``4·l + w`` of its ``generate_state(4·LANES, uint64)`` (O'Neill's ``seed_seq`` mixing with a
    pool of 4 words, as in ``numpy.random.SeedSequence``; tested equal to it).
    """
    n_ent = entropy.shape[0]
    pool = np.empty(4, dtype=np.uint64)
    for c in range(out.shape[0]):
        h = _SS_INIT_A
        for i in range(4):
            pool[i], h = _ss_hash(entropy[i], h, _SS_MULT_A)
        for src in range(4):
            for dst in range(4):
                if src != dst:
                    v, h = _ss_hash(pool[src], h, _SS_MULT_A)
                    pool[dst] = _ss_mix(pool[dst], v)
        for src in range(4, n_ent + 1):
            word = entropy[src] if src < n_ent else np.uint64(c)
            for dst in range(4):
                v, h = _ss_hash(word, h, _SS_MULT_A)
                pool[dst] = _ss_mix(pool[dst], v)
        h = _SS_INIT_B
        for k in range(8 * LANES):
            v, h = _ss_hash(pool[k & 3], h, _SS_MULT_B)
            j = k >> 1
            w = j & 3
            ln = j >> 2
            if k & 1:
                out[c, w, ln] |= v << np.uint64(32)
            else:
                out[c, w, ln] = v


@numba.njit(cache=True, inline="always", error_model="numpy")
def _round(u, mode):
    if mode == 0:
        return np.rint(u)
    if mode == 1:
        r = np.floor(np.abs(u) + 0.5)
        return -r if u < 0 else r
    return np.floor(u + 0.5)


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _accumulate(x, m, sc, off, lo_k, hi_k, mode, lo, hi, acc):  # pragma: no cover - compiled
    """Add ``Σ e², Σ e⁴`` of the clipped and of the granular samples ``x[:m]`` to ``acc[0..3, 0]``.

    ``reassoc`` lets LLVM split each sum into SIMD partial sums (a fixed order for a given build,
    so results stay reproducible); the quantizer arithmetic has nothing to reassociate.
    """
    c2 = 0.0
    c4 = 0.0
    g2 = 0.0
    g4 = 0.0
    if mode == 0:
        for i in range(m):
            xi = x[i]
            k = np.rint(xi / sc - off)
            k = lo_k if k < lo_k else (hi_k if k > hi_k else k)
            e = (k + off) * sc - xi
            e2 = e * e
            clip = (xi < lo) | (xi >= hi)
            c2 += e2 if clip else 0.0
            c4 += e2 * e2 if clip else 0.0
            g2 += 0.0 if clip else e2
            g4 += 0.0 if clip else e2 * e2
    else:
        for i in range(m):
            xi = x[i]
            k = _round(xi / sc - off, mode)
            k = lo_k if k < lo_k else (hi_k if k > hi_k else k)
            e = (k + off) * sc - xi
            e2 = e * e
            clip = (xi < lo) | (xi >= hi)
            c2 += e2 if clip else 0.0
            c4 += e2 * e2 if clip else 0.0
            g2 += 0.0 if clip else e2
            g4 += 0.0 if clip else e2 * e2
    acc[0, 0] += c2
    acc[1, 0] += c4
    acc[2, 0] += g2
    acc[3, 0] += g4


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _draw_batch(state, rb, x, dist, loc, scale, rectify):
    """Advance the lanes ``state`` once per ``LANES`` outputs and write ``BATCH`` draws to ``x``.

    ``u = (top 53 bits + 1/2) / 2^53`` lies in (0, 1), never 0 or 1. Laplace (``dist`` 0): one
    64-bit output per draw, ``loc ± scale·(−log u)`` with the sign from its lowest bit. Gaussian
    (``dist`` 1): Box–Muller on outputs ``i`` and ``i + BATCH/2``, ``r = √(−2 log u1)``,
    ``x[i] = loc + scale·r·cos 2πu2``, ``x[i + BATCH/2] = loc + scale·r·sin 2πu2`` (``u2 = top 53
    bits / 2^53``, in [0, 1)). ``rectify`` then applies ``max(x, 0)``.
    """
    _xoshiro_fill(state, rb)
    if dist == 0:
        for i in range(BATCH):
            b = rb[i]
            u = (np.float64(b >> np.uint64(11)) + 0.5) * 1.1102230246251565e-16
            ex = -_log_bits(u, _bits_of(u))
            x[i] = loc + (scale * ex if (b & np.uint64(1)) else -scale * ex)
    else:
        h = BATCH // 2
        for i in range(h):
            b1 = rb[i]
            b2 = rb[i + h]
            u1 = (np.float64(b1 >> np.uint64(11)) + 0.5) * 1.1102230246251565e-16
            u2 = np.float64(b2 >> np.uint64(11)) * 1.1102230246251565e-16
            r = np.sqrt(-2.0 * _log_bits(u1, _bits_of(u1)))
            c, s = _sincos_turn(u2)
            x[i] = loc + scale * (r * c)
            x[i + h] = loc + scale * (r * s)
    if rectify:
        for i in range(BATCH):
            x[i] = max(x[i], 0.0)


@numba.njit(cache=True, fastmath=_FM, error_model="numpy")
def draw_chunks(states, n_samples, chunk, dist, loc, scale, rectify, out):  # pragma: no cover - compiled
    """The draws :func:`mse_chunks` measures, ``out[:n_samples]`` in sample order (for tests)."""
    rb = np.empty(BATCH, dtype=np.uint64)
    x = np.empty(BATCH, dtype=np.float64)
    for ch in range(states.shape[0]):
        state = states[ch].copy()
        m_total = min(chunk, n_samples - ch * chunk)
        done = 0
        while done < m_total:
            _draw_batch(state, rb, x, dist, loc, scale, rectify)
            m = min(BATCH, m_total - done)
            out[ch * chunk + done:ch * chunk + done + m] = x[:m]
            done += m


@numba.njit(cache=True, parallel=True, fastmath=_FM, error_model="numpy")
def mse_chunks(states, n_samples, chunk, dist, loc, scale, rectify,
               qscale, qoffset, qmin, qmax, qmode, qlo, qhi, out):  # pragma: no cover - compiled
    """Per-chunk sums ``out[ch, i] = [Σ_clip e², Σ_clip e⁴, Σ_gran e², Σ_gran e⁴]`` of quantizer ``i``.

    ``states`` is ``(n_chunks, 4, LANES)`` uint64 (xoshiro256** words per lane), ``dist`` 0 for
    Laplace, 1 for Gaussian; chunk ``ch`` holds samples ``[ch·chunk, min((ch+1)·chunk, n_samples))``,
    drawn by :func:`_draw_batch` ``BATCH`` at a time (the last batch's surplus is discarded).
    """
    nch = states.shape[0]
    nq = qscale.shape[0]
    for ch in numba.prange(nch):
        state = states[ch].copy()
        rb = np.empty(BATCH, dtype=np.uint64)
        x = np.empty(BATCH, dtype=np.float64)
        sums = np.zeros((nq, 4, LANES))
        m_total = min(chunk, n_samples - ch * chunk)
        done = 0
        while done < m_total:
            _draw_batch(state, rb, x, dist, loc, scale, rectify)
            m = min(BATCH, m_total - done)
            for qi in range(nq):
                _accumulate(x, m, qscale[qi], qoffset[qi], np.float64(qmin[qi]), np.float64(qmax[qi]), qmode[qi],
                            qlo[qi], qhi[qi], sums[qi])
            done += m
        for qi in range(nq):
            for t in range(4):
                v = 0.0
                for ln in range(LANES):
                    v += sums[qi, t, ln]
                out[ch, qi, t] = v
