"""Parameter validation with one message format.

Every public function validates its arguments once, here, before any numeric
or compiled code runs. Messages follow one pattern so that a meta-test can
check them::

    The 'bits' parameter of optimal_clip must be an int in the range [1, 16]. Got 0 instead.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "check_int",
    "check_real",
    "check_option",
    "check_samples",
    "check_bool",
    "param_error",
]


def param_error(name: str, func: str, allowed: str, got: object, exc=ValueError) -> Exception:
    """Build the standard error for parameter ``name`` of ``func``."""
    return exc(f"The '{name}' parameter of {func} must be {allowed}. Got {got!r} instead.")


def check_bool(value, name: str, func: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise param_error(name, func, "a bool", value, TypeError)


def check_int(value, name: str, func: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise.

    Floats that happen to be integral (``4.0``) are rejected: a bit-width given
    as a float is almost always a bug upstream.
    """
    rng = _range_text(low, high, "int")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise param_error(name, func, rng, value, TypeError)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise param_error(name, func, rng, v)
    return v


def check_real(
    value,
    name: str,
    func: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite Python float within bounds, or raise."""
    rng = _range_text(low, high, "finite real number", low_open, high_open)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return check_real(value, name, func, low, high, low_open=low_open, high_open=high_open)
        raise param_error(name, func, rng, value, TypeError)
    v = float(value)
    if not np.isfinite(v):
        raise param_error(name, func, rng, v)
    if low is not None and (v < low or (low_open and v == low)):
        raise param_error(name, func, rng, v)
    if high is not None and (v > high or (high_open and v == high)):
        raise param_error(name, func, rng, v)
    return v


def check_option(value, name: str, func: str, options: Iterable[str]) -> str:
    opts = list(options)
    allowed = "one of " + ", ".join(repr(o) for o in opts)
    if not isinstance(value, str):
        raise param_error(name, func, allowed, value, TypeError)
    if value not in opts:
        raise param_error(name, func, allowed, value)
    return value


def check_samples(x, name: str, func: str, *, ndim: int | None = 1, min_size: int = 1) -> np.ndarray:
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
