"""Special functions of the priors' closed forms (numba): Laplace's continued fraction of the Mills ratio."""

import math

import numba


@numba.njit(cache=True)
def mills_u(x, out):
    """``out = 2/(x + 3/(x + 4/(x + ...)))`` elementwise for ``x >= 3`` (the Mills ratio
    ``Q/φ = 1/(x + t)``, ``t = 1/(x + u)``), bottom-up from ``200/x + 6`` levels, which converge
    it to rounding (measured: 62 levels needed at x = 3, 17 at 8, 8 at 20)."""
    for i in range(x.shape[0]):
        xi = x[i]
        u = 0.0
        for k in range(int(math.ceil(200.0 / xi)) + 6, 1, -1):
            u = k / (xi + u)
        out[i] = u


