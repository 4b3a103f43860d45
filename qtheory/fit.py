"""Fit a Laplace or Gaussian prior to a tensor (above the numeric core: uses mse and optimal)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._results import ResultMixin
from ._typing import ArrayLike
from ._validation import check_int, check_option, check_samples, param_error
from .mse import clipping_mse
from .optimal import optimal_clip
from .priors import Gaussian, Laplace, Prior, _ldexp
from .quantizer import GRIDS, MAX_BITS, MIN_BITS

__all__ = ["fit_prior", "FitResult"]


@dataclass(frozen=True)
class FitResult(ResultMixin):
    """A Laplace/Gaussian prior fitted to a tensor.

    Attributes
    ----------
    prior : Laplace or Gaussian
        The chosen prior (centred on the tensor mean).
    family : str
        ``"laplace"`` or ``"gaussian"``.
    b, sigma : float
        ``mean|x - mean x|`` and the standard deviation.
    mse : dict
        For ``family="auto"``: the exact empirical MSE of each family's ACIQ clip on the tensor.
    """

    prior: Prior
    family: str
    b: float
    sigma: float
    mse: dict


def fit_prior(x: ArrayLike, family: str = "laplace", bits: int | None = None, grid: str = "midrise") -> FitResult:
    """Fit a Laplace or Gaussian prior to a tensor, as the ACIQ code does.

    ``b = mean|x − mean x|`` (the Laplace maximum-likelihood scale about the mean) and
    ``σ = std(x)``. With ``family="auto"`` the family is chosen per tensor by the MSE it
    predicts: each family's ACIQ-optimal clip for ``bits`` is applied to the tensor itself
    and the one with the lower exact empirical MSE wins (this needs ``bits``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).laplace(size=20000)
    >>> f = fit_prior(x, "auto", bits=4)
    >>> f.family
    'laplace'
    >>> round(f.b, 1)
    1.0
    """
    func = "fit_prior"
    x = check_samples(x, "x", func, ndim=None, min_size=2).reshape(-1)
    family = check_option(family, "family", func, ("laplace", "gaussian", "auto"))
    grid = check_option(grid, "grid", func, tuple(g for g in GRIDS if g != "affine"))
    if bits is not None:
        bits = check_int(bits, "bits", func, MIN_BITS[grid], MAX_BITS)
    # Standardise by a power of two near max|x| first: the statistics of data near 1e±300 neither
    # overflow (x², x − mean) nor underflow, and the scaling itself is exact.
    top = float(np.max(np.abs(x)))
    e = math.frexp(top)[1] if top > 0 else 0
    u = np.ldexp(x, -e)
    mu_u = float(np.mean(u))
    b = math.ldexp(float(np.mean(np.abs(u - mu_u))), e)
    sigma = math.ldexp(float(np.std(u)), e)
    mu = math.ldexp(mu_u, e)
    if b == 0.0 or sigma == 0.0:
        raise param_error("x", func, "a tensor with non-zero spread", "a constant tensor")
    cands = {"laplace": Laplace(b, loc=mu), "gaussian": Gaussian(sigma, loc=mu)}
    mse = {}
    if family == "auto":
        if bits is None:
            raise param_error("bits", func, "an int when family='auto'", None, TypeError)
        # the choice is scale-invariant: compare the families on the standardised tensor u = x / 2^e
        centred = u - mu_u
        for fam, scale_u in (("laplace", math.ldexp(b, -e)), ("gaussian", math.ldexp(sigma, -e))):
            p = Laplace(scale_u) if fam == "laplace" else Gaussian(scale_u)
            alpha = optimal_clip(p, bits, method="aciq").alpha
            mse[fam] = float(clipping_mse(centred, alpha, bits, grid=grid).mse)
        family = min(mse, key=mse.get)
        # back to the tensor's units (inf / 0 only where x's own MSE is outside the float64 range)
        mse = {k: float(_ldexp(v, 2 * e)) for k, v in mse.items()}
    return FitResult(cands[family], family, b, sigma, mse)
