"""Monte-Carlo quantizers: numba kernels behind validated wrappers.

Every analytic quantity in qtheory is checked against these estimates. Random streams are
explicit (``rng=``); samples are drawn in chunks, so memory stays bounded for any ``n_samples``,
and one stream of draws is shared by all clips of a sweep (common random numbers).

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

import numpy as np

from ._validation import check_int, param_error
from .priors import as_prior
from .quantizer import Quantizer

__all__ = ["quantize", "mse"]

_CHUNK = 1 << 18


def _kernels():
    from .kernels import mc

    return mc


def quantize(x, quantizer: Quantizer) -> np.ndarray:
    """Quantize ``x`` with the numba kernel (float64); equals ``quantizer.quantize(x)``."""
    if not isinstance(quantizer, Quantizer):
        raise param_error("quantizer", "montecarlo.quantize", "a qtheory.Quantizer", type(quantizer).__name__, TypeError)
    if quantizer.grid == "codebook":
        return quantizer.quantize(x)
    x = np.ascontiguousarray(x, dtype=np.float64)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    _kernels().quantize(flat, *quantizer.kernel_params, out)
    return out.reshape(x.shape)


def mse(prior, quantizers: Quantizer | Sequence[Quantizer], *, n_samples: int = 1_000_000, rng=None,
        chunk: int = _CHUNK, _scalar: bool | None = None):
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
    chunk : int
        Draws per chunk.

    Returns
    -------
    qtheory.MSEResult
        With ``stderr``, ``clipping_stderr`` and ``rounding_stderr``; arrays if a list was given.
    """
    from .mse import _result

    func = "montecarlo.mse"
    prior = as_prior(prior, func=func)
    single = isinstance(quantizers, Quantizer)
    qs = [quantizers] if single else list(quantizers)
    if not qs or not all(isinstance(q, Quantizer) for q in qs):
        raise param_error("quantizers", func, "a Quantizer or a non-empty sequence of them", quantizers, TypeError)
    n_samples = check_int(n_samples, "n_samples", func, 2, None)
    chunk = check_int(chunk, "chunk", func, 1, None)
    rng = np.random.default_rng(rng)
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
    return _result(mc, mr, "montecarlo", scalar, se(tot, qc + qr), se(mc, qc), se(mr, qr))



def _codebook_sums(x, q: Quantizer, lo: float, hi: float, acc: np.ndarray) -> None:
    """``error_sums`` for a codebook quantizer (same four sums, same clip rule)."""
    e2 = (q.quantize(x) - x) ** 2
    clip = (x < lo) | (x >= hi)
    acc += [e2[clip].sum(), (e2[clip] ** 2).sum(), e2[~clip].sum(), (e2[~clip] ** 2).sum()]
