"""Monte-Carlo quantizers: numba kernels behind validated wrappers.

Every analytic quantity in qtheory is checked against these estimates. Random streams are
explicit (``rng=``); samples are drawn in chunks, so memory stays bounded for any ``n_samples``,
and one stream of draws is shared by all clips of a sweep (common random numbers).

How a seed maps to random streams (:func:`mse`)
-----------------------------------------------
For Laplace and Gaussian priors (also rectified, ``Rectified(Laplace(..))``) the draws are made
inside numba (:mod:`qtheory.kernels.mc_draw`), in parallel over chunks of ``chunk`` samples:

1. ``rng`` is normalised by ``numpy.random.default_rng`` and 256 bits are drawn from it
   (``integers(0, 2**64, 4, dtype=uint64)``); they are the entropy of a
   ``numpy.random.SeedSequence``. (So an int seed always gives the same result, and a Generator
   is advanced by four draws.)
2. ``SeedSequence.spawn(n_chunks)`` gives one child per chunk, ``n_chunks = ceil(n_samples /
   chunk)``; chunk ``c`` holds samples ``[c·chunk, (c+1)·chunk)``.
3. Each child's ``generate_state(32, uint64)`` seeds 8 xoshiro256** lanes (4 words each) that
   draw that chunk's samples: word ``4·l + w`` is word ``w`` of lane ``l``. (These words are
   computed by a numba kernel, :func:`qtheory.kernels.mc_draw.spawn_states`, that equals numpy's
   ``SeedSequence`` word for word; no Python object is made per chunk.)
4. Lane outputs become draws ``BATCH`` = 1024 at a time (Laplace: one 64-bit output per draw;
   Gaussian: Box–Muller on outputs ``i`` and ``i + 512`` of a batch; see
   :mod:`qtheory.kernels.mc_draw`). Each chunk writes its own partial sums; they are added in
   chunk order.

The result therefore depends on the seed, ``n_samples`` and ``chunk`` only: it is the same for
any number of threads (``numba.set_num_threads``) and on any machine with the same numba build
and the same CPU features (the transforms, an fdlibm ``log``/``sin``/``cos`` within an ulp of
libm, use fused multiply-adds where the CPU has them, and the sums are split over its SIMD
width). Other priors are drawn by numpy (``prior.rvs``) from ``default_rng(rng)``, chunk after
chunk.

Examples
--------
>>> import numpy as np
>>> from qtheory import Quantizer, montecarlo
>>> montecarlo.quantize([0.1, -2.0, 0.6], Quantizer(2, 1.0))
array([ 0.25, -0.75,  0.75])
>>> r = montecarlo.mse("laplace", Quantizer(4, 5.0), n_samples=200_000, rng=1)
>>> r.method, r.stderr < 2e-3
('montecarlo', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._typing import ArrayLike, PriorLike, RNGLike
from ._validation import check_int, check_rng, param_error
from .priors import _ldexp, as_prior
from .quantizer import Quantizer, _check_numeric

if TYPE_CHECKING:  # qtheory.mse imports this module (inside clipping_mse)
    from .mse import MSEResult

__all__ = ["quantize", "mse"]

_CHUNK = 1 << 16
#: largest ``chunk`` (draws held in memory at once: 512 MiB of float64)
MAX_CHUNK = 1 << 26
#: most chunks one :func:`mse` call may use (memory and seeding cost grow with the count)
MAX_CHUNKS = 1 << 20


def _kernels():
    from .kernels import mc

    return mc


def quantize(x: ArrayLike, quantizer: Quantizer) -> np.ndarray:
    """Quantize ``x`` with the numba kernel (float64); equals ``quantizer.quantize(x)``."""
    if not isinstance(quantizer, Quantizer):
        raise param_error("quantizer", "montecarlo.quantize", "a qtheory.Quantizer", type(quantizer).__name__, TypeError)
    x = _check_numeric(x, "x", "montecarlo.quantize")  # (the checks of Quantizer.quantize; NaN passes through)
    if quantizer.grid == "codebook":
        return quantizer.quantize(x)
    x = np.ascontiguousarray(x, dtype=np.float64)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    _kernels().quantize(flat, *quantizer.kernel_params, out)
    return out.reshape(x.shape)


def mse(prior: PriorLike, quantizers: Quantizer | Sequence[Quantizer], *, n_samples: int = 1_000_000,
        rng: RNGLike = None, chunk: int = _CHUNK, _scalar: bool | None = None) -> MSEResult:
    """Monte-Carlo MSE (with standard errors) of one quantizer or a list of them under ``prior``.

    Parameters
    ----------
    prior : prior-like
        See :func:`qtheory.as_prior`.
    quantizers : Quantizer or sequence of Quantizer
        All are measured on the same draws.
    n_samples : int
        Number of draws (>= 2).
    rng : None, int or numpy.random.Generator
        Seed of the random streams (module docstring: 256 bits of ``default_rng(rng)`` seed a
        ``SeedSequence`` whose ``spawn`` gives one stream per chunk).
    chunk : int
        Draws per chunk (one random stream each; at most ``MAX_CHUNKS`` chunks). The result
        depends on the seed, ``n_samples`` and ``chunk``, not on the number of threads.

    Returns
    -------
    qtheory.MSEResult
        With ``stderr``, ``clipping_stderr`` and ``rounding_stderr``; arrays if a list was given.
    """
    from .mse import _result

    func = "montecarlo.mse"
    prior = as_prior(prior, func=func)
    single = isinstance(quantizers, Quantizer)
    try:
        qs = [quantizers] if single else list(quantizers)
    except TypeError:
        qs = []
    if not qs or not all(isinstance(q, Quantizer) for q in qs):
        raise param_error("quantizers", func, "a Quantizer or a non-empty sequence of them", quantizers, TypeError)
    n_samples = check_int(n_samples, "n_samples", func, 2, None)
    chunk = check_int(chunk, "chunk", func, 1, MAX_CHUNK)
    # a prior far from unit scale is drawn divided by 2^e (the same draws, scaled exactly), and the
    # quantizers with it: the fourth powers of the errors behind the standard errors overflowed or
    # underflowed beyond ~2^±256
    e = prior._unit_exponent()
    if abs(e) > 64:
        prior = prior._scaled(e)
        qs = [q._scaled(e) for q in qs]
    else:
        e = 0
    n_chunks = -(-n_samples // chunk)
    if n_chunks > MAX_CHUNKS:
        raise param_error("n_samples", func, f"at most MAX_CHUNKS = 2^20 chunks of {chunk} samples (raise 'chunk')",
                          n_samples)
    rng = _as_generator(rng, func)
    spec = _draw_spec(prior) if all(q.grid != "codebook" for q in qs) else None
    if spec is not None:
        acc = _mse_sums_numba(spec, qs, n_samples, chunk, n_chunks, rng)
    else:
        k = _kernels()
        acc = np.zeros((len(qs), 4))
        done = 0
        while done < n_samples:
            m = min(chunk, n_samples - done)
            x = np.ascontiguousarray(prior.rvs(m, rng), dtype=np.float64)
            for i, q in enumerate(qs):
                lo, hi = q.overload
                if q.grid == "codebook":  # level sets: the numpy reference quantizer
                    _codebook_sums(x, q, lo, hi, acc[i])
                    continue
                k.error_sums(x, *q.kernel_params, lo, hi, acc[i])
            done += m
    n = float(n_samples)
    sc, qc, sr, qr = acc.T
    mc, mr = sc / n, sr / n
    tot = mc + mr

    def se(mean, second):
        return np.sqrt(np.maximum(second / n - mean * mean, 0.0) / (n - 1.0))

    scalar = single if _scalar is None else _scalar
    if e:
        return _result(_ldexp(mc, 2 * e), _ldexp(mr, 2 * e), "montecarlo", scalar, _ldexp(se(tot, qc + qr), 2 * e),
                       _ldexp(se(mc, qc), 2 * e), _ldexp(se(mr, qr), 2 * e))
    return _result(mc, mr, "montecarlo", scalar, se(tot, qc + qr), se(mc, qc), se(mr, qr))



def _as_generator(rng, func) -> np.random.Generator:
    return check_rng(rng, "rng", func)  # (True is no seed)


def _draw_spec(prior):
    """``(dist, loc, scale, rectify)`` for priors drawn inside numba, else None."""
    from .priors import Gaussian, Laplace, Rectified

    rectify = isinstance(prior, Rectified)
    base = prior.base if rectify else prior
    if type(base) is Laplace:
        return 0, float(base.loc), float(base.b), rectify
    if type(base) is Gaussian:
        return 1, float(base.loc), float(base.sigma), rectify
    return None


def _chunk_states(rng: np.random.Generator, n_chunks: int) -> np.ndarray:
    """``(n_chunks, 4, 8)`` xoshiro256** lane states: SeedSequence(256 bits of ``rng``).spawn(n_chunks).

    The children's ``generate_state`` words are computed by one numba kernel
    (:func:`qtheory.kernels.mc_draw.spawn_states`, equal to numpy's ``SeedSequence``) instead of
    ``n_chunks`` Python objects.
    """
    from .kernels.mc_draw import LANES, spawn_states

    root = rng.integers(0, 2**64, 4, dtype=np.uint64)
    states = np.empty((n_chunks, 4, LANES), dtype=np.uint64)
    spawn_states(_entropy_words(root), states)
    bad = ~states.any(axis=1)  # an all-zero xoshiro state never leaves 0 (probability 2^-256)
    states[:, 0][bad] = 1
    return states


def _entropy_words(values) -> np.ndarray:
    """SeedSequence's assembly of non-negative ints into 32-bit words (lowest first; 0 is one word)."""
    words = []
    for v in map(int, values):
        words.append(v & 0xFFFFFFFF)
        v >>= 32
        while v:
            words.append(v & 0xFFFFFFFF)
            v >>= 32
    return np.array(words, dtype=np.uint64)


def _mse_sums_numba(spec, qs, n_samples, chunk, n_chunks, rng) -> np.ndarray:
    from .kernels import mc_draw

    dist, loc, scale, rectify = spec
    states = _chunk_states(rng, n_chunks)
    kp = [q.kernel_params for q in qs]
    ov = [q.overload for q in qs]
    out = np.zeros((n_chunks, len(qs), 4))
    mc_draw.mse_chunks(states, n_samples, chunk, dist, loc, scale, rectify,
                       np.array([p[0] for p in kp], float), np.array([p[1] for p in kp], float),
                       np.array([p[2] for p in kp], np.int64), np.array([p[3] for p in kp], np.int64),
                       np.array([p[4] for p in kp], np.int64), np.array([o[0] for o in ov], float),
                       np.array([o[1] for o in ov], float), out)
    return np.add.reduce(out, axis=0) if n_chunks > 1 else out[0]


def _codebook_sums(x, q: Quantizer, lo: float, hi: float, acc: np.ndarray) -> None:
    """``error_sums`` for a codebook quantizer (same four sums, same clip rule)."""
    e2 = (q.quantize(x) - x) ** 2
    clip = (x < lo) | (x >= hi)
    acc += [e2[clip].sum(), (e2[clip] ** 2).sum(), e2[~clip].sum(), (e2[~clip] ** 2).sum()]
