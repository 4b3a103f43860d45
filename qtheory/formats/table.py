"""One table over all formats: bits per element (scale overhead included), exact MSE and SQNR; the CLI command."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from .._typing import PriorLike
from .._validation import check_option, check_real, check_samples, param_error
from ..priors import _ldexp
from .block import BLOCK_FORMATS, _sqnr_db, _tensor_mse_unit, block_mse
from .codebooks import ELEMENT_NAMES, level_set
from .exact import fast_prior, optimal_scale

if TYPE_CHECKING:
    import argparse

    import pandas as pd

__all__ = ["format_table", "best_format", "block_rule_table", "ELEMENT_FORMATS", "TABLE_BLOCK_FORMATS", "add_formats_parser"]

#: Element formats of the table (at their MSE-optimal per-tensor scale).
ELEMENT_FORMATS = ELEMENT_NAMES
#: Block formats of the table (their own scale rule, exact under the prior).
TABLE_BLOCK_FORMATS = ("mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxint8", "nvfp4", "int4_g32",
                       "int4_g128", "int8_g32")


def format_table(prior: PriorLike = "gaussian", formats: Sequence[str] | None = None, *,
                 bits_budget: float | None = None, progress: bool = False) -> pd.DataFrame:
    """SQNR and MSE of every format under ``prior``, exact, one row per format.

    Element formats (``fp8_e4m3fn`` … ``nf4``) are at their MSE-optimal per-tensor scale
    (:func:`~qtheory.formats.optimal_scale`); block formats use their own scale rule (MX floor,
    the NVFP4 recipe, absmax groups with FP16 scales), through :func:`~qtheory.formats.block_mse`.
    ``bits_per_element`` counts the shared block scale (E8M0/32 = 0.25, E4M3/16 = 0.5,
    FP16/32 = 0.5, FP16/128 = 0.125); per-tensor scales are not counted.

    Parameters
    ----------
    prior : prior-like or array
        Any prior with a density (``"gaussian"``, ``"laplace"``, ``scipy.stats.t(5)``, ...), or a
        real tensor (a numpy array): then every MSE is the exact MSE of that tensor (element formats
        at the scale optimal for it; block formats in blocks along its last axis).
    formats : sequence of str, optional
        Default: every element and block format of the CLI.
    bits_budget : float, optional
        Keep formats with ``bits_per_element <= bits_budget`` and sort by SQNR (best first).
    progress : bool
        A tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        Columns ``format, kind, bits_per_element, mse, sqnr_db, scale_rule, scale, saturation``.

    Examples
    --------
    >>> df = format_table("gaussian", ["int8", "fp8_e4m3fn", "mxfp4"])
    >>> df[["format", "bits_per_element"]].values.tolist()
    [['int8', 8.0], ['fp8_e4m3fn', 8.0], ['mxfp4', 4.25]]
    >>> df.set_index("format").sqnr_db.round(2).to_dict()
    {'int8': 40.57, 'fp8_e4m3fn': 31.56, 'mxfp4': 18.79}
    """
    import pandas as pd
    from tqdm.auto import tqdm

    func = "format_table"
    tensor = None
    if isinstance(prior, (np.ndarray, list, tuple)):
        tensor = check_samples(prior, "prior", func, ndim=None)
        prior = tensor.ravel()
    prior = fast_prior(prior, func)
    names = list(ELEMENT_FORMATS + TABLE_BLOCK_FORMATS) if formats is None else list(formats)
    known = set(ELEMENT_FORMATS) | set(BLOCK_FORMATS)
    for n in names:
        if not isinstance(n, str) or n not in known:
            raise param_error("formats", func, "a list of names from " + ", ".join(sorted(known)), n)
    if bits_budget is not None:
        bits_budget = check_real(bits_budget, "bits_budget", func, 1.0, 64.0)
    rows = []
    for n in tqdm(names, desc="formats", disable=not progress):
        if n in BLOCK_FORMATS:
            bf = BLOCK_FORMATS[n]
            if tensor is not None:
                mse, e = _tensor_mse_unit(tensor, bf, -1, None)
                r = SimpleNamespace(mse=float(_ldexp(mse, 2 * e)), sqnr_db=_sqnr_db(
                    float(np.mean(_ldexp(tensor, -e) ** 2)), mse), saturation=np.nan)
            else:
                r = block_mse(prior, bf)
            rows.append(dict(format=n, kind="block", bits_per_element=bf.bits_per_element, mse=r.mse,
                             sqnr_db=r.sqnr_db, scale_rule=f"{bf.rule} {bf.scale}/{bf.block_size}", scale=np.nan,
                             saturation=r.saturation))
        else:
            cb = level_set(n)
            r = optimal_scale(prior, cb)
            rows.append(dict(format=n, kind="element", bits_per_element=float(math.ceil(math.log2(cb.levels.size))),
                             mse=r.mse, sqnr_db=r.sqnr_db, scale_rule="mse-optimal per tensor", scale=r.scale,
                             saturation=np.nan))
    df = pd.DataFrame(rows)
    if bits_budget is not None:
        df = df[df.bits_per_element <= bits_budget].sort_values("sqnr_db", ascending=False, kind="stable")
        df = df.reset_index(drop=True)
    return df


def best_format(prior: PriorLike = "gaussian", bits_budget: float = 4.5,
                formats: Sequence[str] | None = None) -> str:
    """The format with the highest SQNR at ``bits_per_element <= bits_budget`` (scale overhead included).

    >>> best_format("gaussian", 4.5, ["int4", "nf4", "mxfp4", "nvfp4", "int8"])
    'nvfp4'
    """
    df = format_table(prior, formats, bits_budget=bits_budget)
    if df.empty:
        raise param_error("bits_budget", "best_format", "large enough for at least one format", bits_budget)
    return str(df.format.iloc[0])


def block_rule_table(prior: PriorLike = "gaussian", fmt: str = "mxfp8_e4m3", rules: Iterable[str] | None = None,
                     block_sizes: Iterable[int] | None = None) -> pd.DataFrame:
    """Exact SQNR and saturation of one block format under every applicable scale rule (and block size).

    Returns a DataFrame sorted best first; the first row is the best rule.

    >>> t = block_rule_table("laplace", "mxfp8_e4m3")
    >>> t.rule.tolist(), t.sqnr_db.round(2).tolist()
    (['ceil', 'floor', 'rne'], [31.54, 30.0, 20.6])
    """
    import pandas as pd

    func = "block_rule_table"
    if not isinstance(fmt, str) or fmt not in BLOCK_FORMATS:
        raise param_error("fmt", func, "one of " + ", ".join(map(repr, BLOCK_FORMATS)), fmt)
    bf = BLOCK_FORMATS[fmt]
    applicable = {"e8m0": ("floor", "ceil", "rne"), "e4m3": ("nvfp4",)}.get(bf.scale, ("absmax",))
    rules = applicable if rules is None else [check_option(r, "rules", func, applicable) for r in rules]
    sizes = [bf.block_size] if block_sizes is None else list(block_sizes)
    rows = []
    for rule in rules:
        for b in sizes:
            r = block_mse(prior, bf.with_rule(rule, b))
            rows.append(dict(format=fmt, rule=rule, block_size=b, bits_per_element=r.bits_per_element,
                             sqnr_db=r.sqnr_db, mse=r.mse, saturation=r.saturation))
    return pd.DataFrame(rows).sort_values("sqnr_db", ascending=False, kind="stable").reset_index(drop=True)




# ----------------------------------------------------------------------------- CLI
def add_formats_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``qtheory formats`` on an argparse sub-parser set."""
    f = sub.add_parser("formats", help="SQNR/MSE of FP8/FP6/FP4, INT, NF4, MX, NVFP4 and group-wise INT formats")
    f.add_argument("--prior", default="gaussian", help="laplace, gaussian, or a scipy.stats name with shapes, e.g. t:5")
    f.add_argument("--bits-budget", type=float, default=None, help="keep formats with at most this many bits/element")
    f.add_argument("--formats", nargs="+", default=None, help="format names (default: all)")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--csv", action="store_true")
    f.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from ..cli import _prior_arg

    df = format_table(_prior_arg(args.prior), args.formats, bits_budget=args.bits_budget)
    if args.json:
        print(df.to_json(orient="records", double_precision=15))  # NaN -> null
    elif args.csv:
        print(df.to_csv(index=False), end="")
    else:
        print(df.to_string(index=False))
    return 0
