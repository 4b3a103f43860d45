"""Type aliases shared by qtheory's public signatures (array-likes, priors, random generators, paths)."""

# Every alias is a ``TypeAliasType`` (PEP 695's ``type X = ...``; typing_extensions' backport before
# Python 3.12) built from numpy, the standard library and qtheory.priors only (no scipy, pandas or
# torch): ``typing.get_type_hints`` resolves the signatures that use them without expanding the
# aliases, and the documentation prints ``PriorLike``, not the union behind it.
# qtheory.priors and qtheory._validation import this module under ``TYPE_CHECKING`` only (it
# imports qtheory.priors).

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .priors import Prior

if sys.version_info >= (3, 12):
    from typing import TypeAliasType
else:
    from typing_extensions import TypeAliasType

__all__ = ["ArrayLike", "DTypeLike", "PriorLike", "RNGLike", "PathLike", "ScipyDistribution"]


class ScipyDistribution(Protocol):
    """A continuous ``scipy.stats`` distribution: frozen (``scipy.stats.norm(0, 2)``) or an
    unfrozen ``scipy.stats.rv_histogram``; described by the methods qtheory calls."""

    pdf: Callable[..., Any]
    cdf: Callable[..., Any]
    ppf: Callable[..., Any]
    rvs: Callable[..., Any]


#: Anything ``numpy.asarray`` accepts: ``numpy.typing.ArrayLike`` (scalars, nested sequences,
#: arrays).
ArrayLike = TypeAliasType("ArrayLike", npt.ArrayLike)

#: Anything ``numpy.dtype`` accepts: ``numpy.typing.DTypeLike`` (``"int8"``, ``np.uint8``, a dtype).
DTypeLike = TypeAliasType("DTypeLike", npt.DTypeLike)

#: Anything accepted where a prior is expected (coerced by :func:`qtheory.as_prior`): a
#: :class:`~qtheory.priors.Prior`, a name (``"laplace"``, ``"gaussian"``, ``"normal"``), a continuous
#: ``scipy.stats`` distribution, or a 1-D array of samples (an :class:`~qtheory.priors.Empirical`).
PriorLike = TypeAliasType("PriorLike", Prior | str | ScipyDistribution | ArrayLike)

#: A source of random numbers, normalised by ``numpy.random.default_rng``: ``None`` (fresh entropy),
#: an int seed >= 0, a ``numpy.random.Generator`` (used as is), a ``SeedSequence`` or a ``BitGenerator``.
RNGLike = TypeAliasType(
    "RNGLike", None | int | np.random.Generator | np.random.SeedSequence | np.random.BitGenerator
)

#: A file-system path: a ``str`` or an ``os.PathLike`` (``pathlib.Path``).
PathLike = TypeAliasType("PathLike", str | os.PathLike[str])
