"""Monte-Carlo quantize-and-measure kernels (numba).

The quantizer arrives as the scalars of :attr:`qtheory.Quantizer.kernel_params`:
``scale, offset, qmin, qmax, rounding`` (0 half-even, 1 half-away, 2 half-up).
"""

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _round(u, mode):
    if mode == 0:
        return np.rint(u)
    if mode == 1:
        r = np.floor(np.abs(u) + 0.5)
        return -r if u < 0 else r
    return np.floor(u + 0.5)


@numba.njit(cache=True)
def quantize(x, scale, offset, qmin, qmax, mode, out):
    """``out[i] = (clip(round(x[i]/scale - offset), qmin, qmax) + offset) * scale``."""
    for i in range(x.shape[0]):
        k = _round(x[i] / scale - offset, mode)
        if k < qmin:
            k = float(qmin)
        elif k > qmax:
            k = float(qmax)
        out[i] = (k + offset) * scale


@numba.njit(cache=True)
def error_sums(x, scale, offset, qmin, qmax, mode, lo, hi, acc):
    """Accumulate ``[Σ_clip e², Σ_clip e⁴, Σ_gran e², Σ_gran e⁴]`` into ``acc``.

    ``e = q(x) − x``; an input is *clipped* when ``x < lo`` or ``x >= hi`` (the overload points).
    """
    sc = 0.0
    qc = 0.0
    sr = 0.0
    qr = 0.0
    for i in range(x.shape[0]):
        xi = x[i]
        k = _round(xi / scale - offset, mode)
        if k < qmin:
            k = float(qmin)
        elif k > qmax:
            k = float(qmax)
        e = (k + offset) * scale - xi
        e2 = e * e
        if xi < lo or xi >= hi:
            sc += e2
            qc += e2 * e2
        else:
            sr += e2
            qr += e2 * e2
    acc[0] += sc
    acc[1] += qc
    acc[2] += sr
    acc[3] += qr
