"""Parameter validation with one message format.

Every public function validates its arguments once, here, before any numeric
or compiled code runs. Messages follow one pattern so that a meta-test can
check them::

    The 'bits' parameter of optimal_clip must be an int in the range [1, 16]. Got 0 instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # qtheory._typing imports qtheory.priors, which imports this module
    from ._typing import ArrayLike, RNGLike

__all__ = [
    "check_int",
    "check_real",
    "check_option",
    "check_samples",
    "check_bool",
    "check_real_array",
    "check_rng",
    "param_error",
]


def param_error(name: str, func: str, allowed: str, got: object,
                exc: type[Exception] = ValueError) -> Exception:
    """Build the standard error for parameter ``name`` of ``func``."""
    return exc(f"The '{name}' parameter of {func} must be {allowed}. Got {got!r} instead.")


def check_bool(value: object, name: str, func: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise param_error(name, func, "a bool", value, TypeError)


def check_int(value: object, name: str, func: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise.

    Floats that happen to be integral (``4.0``) are rejected: a bit-width given
    as a float is almost always a bug upstream.
    """
    if type(value) is not int and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)):
        raise param_error(name, func, _range_text(low, high, "int"), value, TypeError)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise param_error(name, func, _range_text(low, high, "int"), v)
    return v


def check_real(
    value: object,
    name: str,
    func: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite Python float within bounds, or raise."""
    # (the message is built only on the error path: this check runs in inner loops)
    if type(value) is not float and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
            value = value.item()
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return check_real(value, name, func, low, high, low_open=low_open, high_open=high_open)
        raise param_error(name, func, _range_text(low, high, "finite real number", low_open, high_open), value,
                          TypeError)
    try:
        v = float(value)
    except OverflowError:  # (an int beyond the float64 range, e.g. 10**400: not a finite real)
        v = math.inf if value > 0 else -math.inf
    if (not math.isfinite(v) or (low is not None and (v < low or (low_open and v == low)))
            or (high is not None and (v > high or (high_open and v == high)))):
        raise param_error(name, func, _range_text(low, high, "finite real number", low_open, high_open), v)
    return v


def check_real_array(
    value: ArrayLike,
    name: str,
    func: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    ndim: int | None = 1,
) -> np.ndarray:
    """Return a non-empty float64 array of finite reals within bounds, or raise.

    Complex input is a ``TypeError`` even when every imaginary part is 0: a silent ``.real``
    (numpy's cast) would drop information the caller thought it passed.
    """
    kind = "finite real numbers"
    rng = _range_text(low, high, "number", low_open, high_open).split(" ", 1)[1]
    what = f"a non-empty {ndim}-D array of {kind}" if ndim is not None else f"a non-empty array of {kind}"
    if rng != "number":
        what += " (each " + rng.replace("number ", "", 1) + ")"
    try:
        arr = np.asarray(value)
    except Exception:  # pragma: no cover - exotic array-likes
        raise param_error(name, func, what, type(value).__name__, TypeError) from None
    if arr.dtype.kind not in "biuf":
        got = f"array of dtype {arr.dtype}" if arr.dtype.kind != "O" else value
        raise param_error(name, func, what, got, TypeError)
    arr = arr.astype(np.float64, copy=False)
    if (ndim is not None and arr.ndim != ndim) or arr.size == 0:
        raise param_error(name, func, what, f"array of shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= (arr < low) | ((arr == low) if low_open else False)
    if high is not None:
        bad |= (arr > high) | ((arr == high) if high_open else False)
    if bad.any():
        raise param_error(name, func, what, f"array with {int(bad.sum())} value(s) out of range, "
                          f"e.g. {float(arr[bad].flat[0])!r}")
    return arr


def check_rng(value: RNGLike, name: str = "rng", func: str = "?") -> np.random.Generator:
    """Return ``np.random.default_rng(value)`` for ``None``, an int >= 0 or a Generator, or raise."""
    allowed = "None, an int >= 0 or a numpy.random.Generator"
    if value is None or isinstance(value, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise param_error(name, func, allowed, value, TypeError)
    if int(value) < 0:
        raise param_error(name, func, allowed, int(value))
    return np.random.default_rng(int(value))


def check_option(value: object, name: str, func: str, options: Iterable[str]) -> str:
    if isinstance(value, str) and value in options:
        return value
    allowed = "one of " + ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        raise param_error(name, func, allowed, value, TypeError)
    raise param_error(name, func, allowed, value)


def check_samples(x: ArrayLike, name: str, func: str, *, ndim: int | None = 1, min_size: int = 1) -> np.ndarray:
    """Return a float64 array of finite samples, or raise.

    ``ndim=None`` accepts any dimensionality (e.g. weight tensors).
    """
    what = "a non-empty array of finite real numbers" if ndim is None else (
        f"a non-empty {ndim}-D array of finite real numbers"
    )
    try:
        arr = np.asarray(x)
    except Exception:  # pragma: no cover - exotic array-likes
        raise param_error(name, func, what, type(x).__name__, TypeError) from None
    if arr.dtype.kind not in "biuf":
        raise param_error(name, func, what, f"array of dtype {arr.dtype}", TypeError)
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise param_error(name, func, what, f"array of shape {arr.shape}")
    if arr.size < min_size:
        raise param_error(name, func, what + (f" with at least {min_size} elements" if min_size > 1 else ""),
                          f"array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise param_error(name, func, what, f"array with {bad} non-finite value(s)")
    return arr


def _range_text(low, high, kind, low_open=False, high_open=False) -> str:
    article = "an" if kind[0] in "aeiou" else "a"
    if low is None and high is None:
        return f"{article} {kind}"
    if high is None:
        return f"{article} {kind} {'>' if low_open else '>='} {low}"
    if low is None:
        return f"{article} {kind} {'<' if high_open else '<='} {high}"
    lb = "(" if low_open else "["
    hb = ")" if high_open else "]"
    return f"{article} {kind} in the range {lb}{low}, {high}{hb}"
