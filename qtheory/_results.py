"""Shared helpers of the public result dataclasses: dict, one-row DataFrame and Jupyter HTML views."""

from __future__ import annotations

import dataclasses
import html
import math
import numbers
import re

import numpy as np

__all__ = ["ResultMixin"]


def _is_scalar(v) -> bool:
    """A value that fits one cell of a table: None, bool, number, str (or a 0-d array)."""
    if v is None or isinstance(v, (str, bool, numbers.Number, np.generic)):
        return True
    return isinstance(v, np.ndarray) and v.ndim == 0


def _scalar(v):
    return v.item() if isinstance(v, (np.ndarray, np.generic)) else v


def _html_value(v) -> str:
    if isinstance(v, np.ndarray) and v.ndim > 0:
        return f"array{tuple(v.shape)} {v.dtype}"
    v = _scalar(v)
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, numbers.Number):
        return str(v)
    if isinstance(v, str):
        return html.escape(v)
    if isinstance(v, dict):
        return html.escape("{" + ", ".join(f"{k!r}: {_short(x)}" for k, x in v.items()) + "}")
    return html.escape(_short(v))


def _short(v) -> str:
    """A one-line summary: floats to 4 significant digits, arrays by shape, other objects by repr (cut)."""
    if isinstance(v, np.ndarray) and v.ndim > 0:
        return f"array{tuple(v.shape)}"
    v = _scalar(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    s = _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.4g}", repr(v))  # (e.g. a nested prior's repr)
    return s if len(s) <= 60 else s[:57] + "..."


_LONG_FLOAT = re.compile(r"(?<![\w.])\d+\.\d{5,}(?:e[+-]?\d+)?")


class ResultMixin:
    """Views shared by qtheory's result dataclasses (``ClipResult``, ``MSEResult``, ...).

    ``to_dict`` keeps every public field as it is; ``to_frame`` keeps the scalar ones in a
    one-row :class:`pandas.DataFrame`; ``_repr_html_`` is what Jupyter shows (values rounded to
    4 significant digits, arrays by shape). ``repr``, equality and pickling are the dataclass's own.
    Fields whose names start with ``_`` are internal and left out of every view.
    """

    __slots__ = ()

    def _public_fields(self):
        return [f for f in dataclasses.fields(self) if not f.name.startswith("_")]

    def to_dict(self) -> dict:
        """The public fields as a ``{name: value}`` dict, in field order.

        Values are kept as they are: numbers and strings, but also arrays (e.g. ``local_minima``)
        and nested objects (e.g. a fitted prior), not copied or converted.

        Returns
        -------
        dict

        Examples
        --------
        >>> from qtheory import optimal_clip
        >>> d = optimal_clip("laplace", 4, method="aciq").to_dict()
        >>> round(d["alpha"], 4), d["bits"], d["grid"], d["method"]
        (5.0286, 4, 'midrise', 'aciq')
        """
        return {f.name: getattr(self, f.name) for f in self._public_fields()}

    def to_frame(self):
        """A one-row :class:`pandas.DataFrame` of the scalar public fields (arrays and nested
        objects are left out; 0-d arrays and numpy scalars become Python scalars).

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> from qtheory import optimal_clip
        >>> t = optimal_clip("gaussian", 4, method="aciq").to_frame()
        >>> t.shape[0], list(t.columns[:3])
        (1, ['alpha', 'mse', 'clipping'])
        >>> print(t[["bits", "ratio"]].round(4).to_string(index=False))
         bits  ratio
            4 2.5591
        """
        import pandas as pd

        row = {k: _scalar(v) for k, v in self.to_dict().items() if _is_scalar(v)}
        return pd.DataFrame([row])

    def _repr_html_(self) -> str:
        """A compact HTML table for Jupyter: class name as caption, one row per public field."""
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{_html_value(v)}</td></tr>" for k, v in self.to_dict().items())
        return (f"<table class='qtheory-result'><caption>{html.escape(type(self).__name__)}</caption>"
                f"{rows}</table>")


def sqnr_db_value(stored, signal_power, mse, name: str):
    """``sqnr_db`` of a result: the stored (unit-scale) value, else ``10·log10(signal_power / mse)``
    computed in the log domain; a ValueError when the signal power is unknown."""
    if stored is not None:
        return stored
    if signal_power is None:
        raise ValueError(f"The signal power of this {name} is unknown (it was built without one), so "
                         "its sqnr_db is undefined; compute 10*log10(E[X^2] / mse) yourself.")
    p = np.asarray(signal_power, dtype=float)
    m = np.asarray(mse, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * (np.log10(p) - np.log10(m))
    return float(out) if out.ndim == 0 else out


def unit_db(power_u, mse_u, shift: int = 0):
    """``10·log10(power_u·4^shift / mse_u)``: the SQNR from a signal power computed for ``X / 2^e0``
    and an MSE computed for ``X / 2^e`` (``shift = e0 − e``; 0 when both are at one unit scale).
    ``inf`` for a zero MSE, NaN for a zero signal power."""
    p = float(power_u)
    m = np.asarray(mse_u, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * (math.log10(p) - np.log10(m)) if p > 0 else np.full(m.shape, np.nan)
    out = out + 20.0 * math.log10(2.0) * shift
    return float(out) if np.ndim(out) == 0 else np.asarray(out)
