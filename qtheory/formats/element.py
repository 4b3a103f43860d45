"""Element formats by their spec: a gfloat-style FormatInfo table (FP8/FP6/FP4, E8M0) and integer grids."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from .._validation import check_option, param_error
from ..quantizer import LevelSet

__all__ = ["FormatInfo", "FORMATS", "get_format"]

NAN_RULES = ("ieee", "fn", "none")


@dataclass(frozen=True)
class FormatInfo:
    """A binary floating-point element format (sign-magnitude, or unsigned), described by its spec.

    Parameters
    ----------
    name : str
        Stable name (``"fp8_e4m3fn"``).
    ebits, mbits : int
        Exponent and stored mantissa bits.
    bias : int
        Exponent bias: a normal code ``(e, m)`` is ``(1 + m/2^mbits) · 2^(e − bias)``.
    nan : {"ieee", "fn", "none"}
        Which codes are not finite: ``"ieee"`` reserves the all-ones exponent for Inf and NaN;
        ``"fn"`` ("finite-only") reserves only the all-ones code ``S.1…1.1…1`` for NaN, there
        is no Inf; ``"none"`` makes every code a number (FP6/FP4 in OCP MX).
    subnormals : bool
        Exponent code 0 encodes ``m/2^mbits · 2^(1 − bias)`` (else only zero, for ``mbits > 0``).
    signed : bool
        Has a sign bit (E8M0 does not).
    ml_dtype : str or None
        The matching ``ml_dtypes`` type, used by the tests as the reference cast.

    Examples
    --------
    >>> f = FORMATS["fp8_e4m3fn"]
    >>> f.max, f.min_normal, f.min_subnormal, f.emax, f.bits
    (448.0, 0.015625, 0.001953125, 8, 8)
    >>> FORMATS["fp4_e2m1fn"].magnitudes().tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    >>> FORMATS["fp8_e5m2"].max, FORMATS["fp8_e4m3"].max, FORMATS["fp6_e3m2fn"].max
    (57344.0, 240.0, 28.0)
    """

    name: str
    ebits: int
    mbits: int
    bias: int
    nan: str = "ieee"
    subnormals: bool = True
    signed: bool = True
    ml_dtype: str | None = None

    def __post_init__(self):
        check_option(self.nan, "nan", "FormatInfo", NAN_RULES)

    @property
    def bits(self) -> int:
        return self.ebits + self.mbits + int(self.signed)

    def magnitudes(self) -> np.ndarray:
        """All finite non-negative values in increasing order (index = code without the sign bit)."""
        return _magnitudes(self)

    @property
    def max(self) -> float:
        return float(self.magnitudes()[-1])

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, 1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return float(self.magnitudes()[1])

    @property
    def emax(self) -> int:
        """Exponent of the largest binade, ``floor(log2(max))`` (OCP MX ``emax_elem``)."""
        return math.frexp(self.max)[1] - 1

    def values(self) -> np.ndarray:
        """All distinct finite values in increasing order (``-0`` and ``+0`` are one value)."""
        m = self.magnitudes()
        return np.concatenate([-m[:0:-1], m]) if self.signed else m.copy()

    def level_set(self) -> LevelSet:
        """The format as a :class:`~qtheory.quantizer.LevelSet` (round to nearest, ties to even)."""
        return _level_set(self)


@cache
def _magnitudes(f: FormatInfo) -> np.ndarray:
    out = []
    top = 2**f.ebits - 1
    for e in range(top + 1):
        for m in range(2**f.mbits):
            if f.nan == "ieee" and e == top:
                continue
            if f.nan == "fn" and e == top and m == 2**f.mbits - 1:
                continue
            if e == 0:
                if m == 0 and f.mbits == 0:
                    out.append(math.ldexp(1.0, -f.bias))  # E8M0: code 0 is 2^-127
                elif m == 0 or f.subnormals:
                    out.append(math.ldexp(m, 1 - f.bias - f.mbits))
            else:
                out.append(math.ldexp(2**f.mbits + m, e - f.bias - f.mbits))
    arr = np.array(out, dtype=np.float64)
    arr.setflags(write=False)
    return arr


@cache
def _level_set(f: FormatInfo) -> LevelSet:
    return LevelSet.from_levels(f.values(), name=f.name)


#: Named element formats (OCP 8-bit FP, OCP MX v1.0, IEEE-like variants, the E8M0 scale).
FORMATS: dict[str, FormatInfo] = {
    f.name: f
    for f in (
        FormatInfo("fp8_e4m3fn", 4, 3, 7, "fn", ml_dtype="float8_e4m3fn"),
        FormatInfo("fp8_e4m3", 4, 3, 7, "ieee", ml_dtype="float8_e4m3"),
        FormatInfo("fp8_e5m2", 5, 2, 15, "ieee", ml_dtype="float8_e5m2"),
        FormatInfo("fp8_e3m4", 3, 4, 3, "ieee", ml_dtype="float8_e3m4"),
        FormatInfo("fp6_e2m3fn", 2, 3, 1, "none", ml_dtype="float6_e2m3fn"),
        FormatInfo("fp6_e3m2fn", 3, 2, 3, "none", ml_dtype="float6_e3m2fn"),
        FormatInfo("fp4_e2m1fn", 2, 1, 1, "none", ml_dtype="float4_e2m1fn"),
        FormatInfo("fp8_e8m0fnu", 8, 0, 127, "fn", subnormals=False, signed=False, ml_dtype="float8_e8m0fnu"),
        FormatInfo("fp16", 5, 10, 15, "ieee", ml_dtype="float16"),
        FormatInfo("bf16", 8, 7, 127, "ieee", ml_dtype="bfloat16"),
    )
}


def get_format(name: str, func: str = "get_format") -> FormatInfo:
    """A :class:`FormatInfo` by name (or the object itself)."""
    if isinstance(name, FormatInfo):
        return name
    if not isinstance(name, str) or name not in FORMATS:
        raise param_error("format", func, "one of " + ", ".join(map(repr, FORMATS)), name,
                          TypeError if not isinstance(name, str) else ValueError)
    return FORMATS[name]
