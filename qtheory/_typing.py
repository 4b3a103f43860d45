"""Type aliases shared by qtheory's public signatures (array-likes, priors, random generators, paths)."""

# Every alias is a runtime object built from numpy, the standard library and qtheory.priors only
# (no scipy, pandas or torch), so ``typing.get_type_hints`` resolves the signatures that use them.
# qtheory.priors and qtheory._validation import this module under ``TYPE_CHECKING`` only (it
# imports qtheory.priors).

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .priors import Prior

__all__ = ["ArrayLike", "DTypeLike", "ScipyDistribution", "PriorLike", "RNGLike", "PathLike"]


class ScipyDistribution(Protocol):
    """A continuous ``scipy.stats`` distribution: frozen (``scipy.stats.norm(0, 2)``) or an
    unfrozen ``scipy.stats.rv_histogram``; described by the methods qtheory calls."""

    pdf: Callable[..., Any]
    cdf: Callable[..., Any]
    ppf: Callable[..., Any]
    rvs: Callable[..., Any]


#: Anything accepted where a prior is expected (coerced by :func:`qtheory.as_prior`): a
#: :class:`~qtheory.priors.Prior`, a name (``"laplace"``, ``"gaussian"``, ``"normal"``), a continuous
#: ``scipy.stats`` distribution, or a 1-D array of samples (an :class:`~qtheory.priors.Empirical`).
PriorLike: TypeAlias = Prior | str | ScipyDistribution | ArrayLike

#: A source of random numbers, normalised by ``numpy.random.default_rng``: ``None`` (fresh entropy),
#: an int seed >= 0, a ``numpy.random.Generator`` (used as is), a ``SeedSequence`` or a ``BitGenerator``.
RNGLike: TypeAlias = None | int | np.random.Generator | np.random.SeedSequence | np.random.BitGenerator

#: A file-system path: a ``str`` or an ``os.PathLike`` (``pathlib.Path``).
PathLike: TypeAlias = str | os.PathLike[str]
