"""``layer_report``: per-tensor (or per-channel) prior fit and every calibrator's clip, MSE and SQNR."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import ArrayLike, PathLike
from .._validation import check_bool, check_int, check_option, check_samples, param_error
from ..priors import _ldexp, _pow2_exponent
from ..quantizer import DEFAULT_TENSOR_GRID, GRIDS, MAX_BITS, MIN_BITS
from .observers import METHODS, _observer_method, clip_range, quantizer_for

if TYPE_CHECKING:
    import onnx
    import pandas as pd
    import torch

    from .readers import NamedTensor

__all__ = ["layer_report", "clip_tensor", "REPORT_COLUMNS"]

#: the columns of the long format (``long=True``, the CLI's CSV), in order
REPORT_COLUMNS = ("tensor", "shape", "role", "depthwise", "channel", "n", "n_fit", "prior", "loglik_laplace",
                  "loglik_gaussian", "ks", "kurtosis", "bits", "grid", "method", "alpha", "beta", "mse",
                  "sqnr_db", "gain_db", "error")


def clip_tensor(x: ArrayLike, bits: int, method: str = "exact", grid: str = DEFAULT_TENSOR_GRID) -> tuple[float, float]:
    """``(beta, alpha)`` of one tensor by one calibrator (:func:`qtheory.models.observers.clip_range`).

    >>> clip_tensor([-1.0, 0.5, 2.0], 8, "max")
    (-2.0, 2.0)
    """
    checked = check_samples(x, "x", "clip_tensor", ndim=None)
    if isinstance(x, np.ndarray) and x.dtype == np.float32:  # (searched in its own dtype, not copied)
        checked = x
    return clip_range(checked, bits, method, grid, func="clip_tensor")


def _fit(x, e=0):
    """Laplace and Gaussian fits (about the mean, as ACIQ fits them), their mean log-likelihoods,
    the KS statistic of the better one, and the excess kurtosis, of the samples ``x · 2^e``.

    Every moment is taken at a power-of-two unit (``x`` is at unit scale, and the deviations from
    the mean are standardised again by a power of two): the prior, the KS statistic and the
    kurtosis do not depend on the scale, and the log-likelihoods are those at unit scale minus ``e·ln 2``.
    """
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    mu = float(np.mean(x))
    d = x - mu
    ed = _pow2_exponent(float(np.max(np.abs(d)))) if d.size else 0
    du = np.ldexp(d, -ed)  # exact: |du| < 1, and every moment below is of order 1
    bu = float(np.mean(np.abs(du)))
    sdu = float(np.sqrt(np.mean(du * du)))
    if not (bu > 0 and sdu > 0):
        return {"prior": "constant", "loglik_laplace": math.nan, "loglik_gaussian": math.nan, "ks": math.nan,
                "kurtosis": math.nan}
    shift = (ed + e) * math.log(2.0)  # log of the scale 2^(ed + e) of du
    ll_lu = -math.log(2.0 * bu) - 1.0  # mean log-likelihood at the fitted scale (mean|d| / b = 1)
    ll_gu = -0.5 * math.log(2.0 * math.pi * sdu * sdu) - 0.5
    prior = "laplace" if ll_lu >= ll_gu else "gaussian"  # (the shift is common: compared at unit scale)
    b, sd = float(np.ldexp(bu, ed)), float(np.ldexp(sdu, ed))
    dist = stats.laplace(mu, b) if prior == "laplace" else stats.norm(mu, sd)
    ks = float(stats.kstest(x, dist.cdf).statistic)
    kurt = float(np.mean(du**4) / sdu**4 - 3.0)
    return {"prior": prior, "loglik_laplace": ll_lu - shift, "loglik_gaussian": ll_gu - shift, "ks": ks,
            "kurtosis": kurt}


def _to_unit(x, e):
    """``x · 2^-e``, exactly: float32 is widened to float64 only where the scaled values would
    become float32 subnormals (or 0)."""
    if e == 0:
        return x
    if x.dtype == np.float32 and e > 0 and np.any((x != 0) & (np.abs(x) < 2.0 ** (e - 126))):
        x = x.astype(np.float64)
    return np.ldexp(x, -e)


def _subsample(x, max_values, seed, name):
    if max_values is None or x.size <= max_values:
        return x
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    idx = np.sort(rng.choice(x.size, size=max_values, replace=False))
    return x[idx]


def _rows_for(x, xfit, meta, bits_list, methods, grid):
    """Rows (one per bits × method) of one tensor or channel.

    Everything is computed on the samples standardised by a power of two (``x · 2^-e`` with
    ``max|x · 2^-e|`` in ``[1/2, 1)``, exact), and the clips and MSEs are scaled back exactly:
    the report of ``x · 2^k`` is that of ``x`` with ``alpha, beta`` times ``2^k`` and ``mse`` times
    ``4^k`` (rounded once, so an MSE beyond the float64 range is 0 or inf), the same ``prior``,
    ``ks``, ``kurtosis``, ``sqnr_db`` and ``gain_db``, and log-likelihoods lower by ``k·ln 2``.
    """
    from ..empirical import EmpiricalMSE

    x = np.asarray(x).reshape(-1)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    xfit = np.asarray(xfit).reshape(-1)
    xfit = xfit if xfit.dtype in (np.float32, np.float64) else xfit.astype(np.float32)
    e = _pow2_exponent(max(-float(x.min()), float(x.max()))) if x.size else 0
    xu, fu = _to_unit(x, e), _to_unit(xfit, e)
    fit = _fit(fu, e)
    power = float(np.mean(np.square(xu, dtype=np.float64))) if xu.size else 0.0
    prep = EmpiricalMSE(xu) if power > 0 else None
    rows = []
    for bits in bits_list:
        res = {}
        for m in methods:
            if prep is None:
                beta, alpha, mse = 0.0, 0.0, 0.0
            else:
                try:
                    beta, alpha = clip_range(fu, bits, m, grid, func="layer_report")
                except ArithmeticError as exc:  # a failure inside qtheory's core: said in `error`
                    res[m] = (math.nan, math.nan, math.nan, math.nan, f"{type(exc).__name__}: {exc}")
                    continue
                c, r = prep.mse_quantizer(quantizer_for(beta, alpha, bits, grid))
                mse = c + r
            sq = 10.0 * math.log10(power / mse) if power > 0 and mse > 0 else (math.inf if power > 0 else math.nan)
            res[m] = (float(_ldexp(alpha, e)), float(_ldexp(beta, e)), float(_ldexp(mse, 2 * e)), sq, "")
        ref = res["max"][3] if "max" in res else math.nan
        for m, (alpha, beta, mse, sq, err) in res.items():
            rows.append({**meta, "n": int(x.size), "n_fit": int(np.size(xfit)), **fit, "bits": bits, "grid": grid,
                         "method": m, "alpha": alpha, "beta": beta, "mse": mse, "sqnr_db": sq,
                         "gain_db": 0.0 if sq == ref else sq - ref, "error": err})  # (inf vs inf: 0 dB)
    return rows


def layer_report(source: torch.nn.Module | dict[str, Any] | onnx.ModelProto | PathLike | Sequence[NamedTensor],
                 bits: int | Iterable[int] = (8,), *, methods: Iterable[str] = METHODS, granularity: str = "tensor",
                 grid: str = DEFAULT_TENSOR_GRID, roles: Iterable[str] | None = ("conv_weight", "linear_weight"),
                 fold_bn: bool = False, max_values: int | None = None, seed: int = 0, long: bool = False,
                 progress: bool = False) -> pd.DataFrame:
    """Per-layer report of a model's weights: prior fit, and each calibrator's clip, MSE and SQNR.

    Parameters
    ----------
    source : model or list of NamedTensor
        Anything :func:`qtheory.models.read_tensors` reads (a path, ``nn.Module``, state dict,
        ``onnx.ModelProto``), or tensors it returned (or ``{name: array}``).
    bits : int or iterable of int
        Bit-widths (one row block per bits).
    methods : iterable of str
        Subset of :data:`qtheory.models.observers.METHODS`: ``max, percentile, entropy, mse,
        octav, aciq, exact`` (``"kl"`` = ``"entropy"``). ``gain_db`` is relative to ``max`` (NaN if ``max`` is not asked for).
    granularity : {"tensor", "channel"}
        One row per tensor, or per output channel (a tensor's ``channel_axis``; tensors without one
        get one row).
    grid : str
        The quantizer (default ``"narrow"``: symmetric int8 weights, codes ±127, as ONNX Runtime
        and TensorRT quantize weights). ``"affine"`` gives asymmetric ``(beta, alpha)`` ranges
        (uint8 with a zero point).
    roles : iterable of str or None
        Tensor roles to report (default the conv and linear weights; ``None``: every tensor).
    fold_bn : bool
        Fold BatchNorm into the preceding Conv first (ONNX).
    max_values : int, optional
        Choose each clip from at most this many values per tensor (per channel), a uniform random
        subsample drawn with ``seed`` (and the tensor's name); MSE and SQNR are always measured on
        the whole tensor. Stated in the ``n_fit`` column (``n`` is the tensor's size).
    seed : int
    long : bool
        One row per (tensor, [channel,] bits, method) — the columns :data:`REPORT_COLUMNS` — instead
        of one row per (tensor, [channel,] bits) with ``<method>_alpha``, ``_beta``, ``_mse``,
        ``_sqnr_db`` and ``_gain_db`` columns.
    progress : bool
        A tqdm bar over the tensors.

    Returns
    -------
    pandas.DataFrame
        ``sqnr_db`` is ``10·log10(Σx² / Σ(x − q(x))²)`` over the tensor (channel): ``inf`` where
        ``q(x) = x`` (``gain_db`` is then 0 if ``max`` is exact too), NaN only where ``Σx² = 0``
        (an all-zero tensor: 0/0); ``prior`` is the Laplace or Gaussian fit (about the mean:
        ``b = mean|x − x̄|``, ``σ = std``) with the higher mean log-likelihood (``loglik_*``, nats per value), or ``"constant"`` (a tensor
        with one value: ``loglik_*``, ``ks`` and ``kurtosis`` are then NaN); ``ks`` is that fit's
        Kolmogorov–Smirnov statistic; ``kurtosis`` is the excess kurtosis (Laplace 3, Gaussian 0).
        ``error`` is empty, or the arithmetic error a calibrator raised on that tensor (its numbers
        are then NaN: the failure is reported, not hidden; e.g. the exact search on float32
        channels with subnormal values, a known limitation of :mod:`qtheory.empirical`).

        Each tensor (channel) is standardised by a power of two, exactly, before anything is
        computed, so the report is scale-equivariant over the whole float64 range: for ``x · 2^k``,
        ``alpha`` and ``beta`` are multiplied by ``2^k`` and ``mse`` by ``4^k`` (rounded once: 0 or
        ``inf`` beyond the float64 range), ``loglik_*`` are lower by ``k·ln 2``, and ``prior``,
        ``ks``, ``kurtosis``, ``sqnr_db`` and ``gain_db`` are unchanged.

    Raises
    ------
    TypeError
        A tensor that is not real (e.g. complex).
    ValueError
        A tensor with NaN or infinite values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> w = {"conv.weight": rng.laplace(size=(8, 4, 3, 3)).astype(np.float32)}
    >>> df = layer_report(w, bits=[4], methods=["max", "aciq", "exact"])
    >>> df[["tensor", "prior"]].iloc[0].tolist(), int(df.bits.iloc[0])
    (['conv.weight', 'laplace'], 4)
    >>> bool(df.exact_mse.iloc[0] <= df.aciq_mse.iloc[0] <= df.max_mse.iloc[0])
    True
    >>> long = layer_report(w, bits=[4, 8], methods=["max", "exact"], long=True)
    >>> long[["bits", "method"]].values.tolist()
    [[4, 'max'], [4, 'exact'], [8, 'max'], [8, 'exact']]
    """
    import pandas as pd

    from .readers import NamedTensor

    func = "layer_report"
    bits_list = [bits] if isinstance(bits, (int, np.integer)) else list(bits)
    grid = check_option(grid, "grid", func, GRIDS)
    bits_list = [check_int(b, "bits", func, MIN_BITS[grid], MAX_BITS) for b in bits_list]
    if not bits_list:
        raise param_error("bits", func, "at least one bit-width", bits)
    methods = [_observer_method(m, func, "methods") for m in methods]
    if not methods:
        raise param_error("methods", func, "at least one method", methods)
    granularity = check_option(granularity, "granularity", func, ("tensor", "channel"))
    if max_values is not None:
        max_values = check_int(max_values, "max_values", func, 16, None)
    seed = check_int(seed, "seed", func, 0, None)
    long = check_bool(long, "long", func)
    tensors = _as_tensors(source, fold_bn, func, NamedTensor)
    if roles is not None:
        roles = set(roles)
        tensors = [t for t in tensors if t.role in roles]
    rows = []
    it = tensors
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(tensors, desc="layer_report")
    for t in it:
        rows.extend(tensor_rows(t, bits_list, methods, grid, granularity, max_values, seed))
    df = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    if granularity == "tensor":
        df = df.drop(columns="channel")
    return df if long else wide(df)


def tensor_rows(t, bits_list, methods, grid, granularity, max_values, seed, func="layer_report") -> list[dict]:
    """The long-format rows of one :class:`NamedTensor` (used by the dask path too).

    A tensor with NaN or inf values is a ``ValueError`` naming the ``source`` parameter of ``func``
    and the tensor.
    """
    x = np.asarray(t.array())
    bad = x.size - int(np.count_nonzero(np.isfinite(x)))
    if bad:
        raise param_error("source", func, "a model of finite tensors", f"tensor {t.name!r} with {bad} non-finite "
                          "value(s)")
    meta = {"tensor": t.name, "shape": "x".join(map(str, t.shape)), "role": t.role, "depthwise": t.depthwise}
    if granularity == "channel" and t.channel_axis is not None and x.ndim > 1:
        chans = np.moveaxis(np.asarray(x), t.channel_axis, 0).reshape(x.shape[t.channel_axis], -1)
        rows = []
        for c in range(chans.shape[0]):
            row = np.ascontiguousarray(chans[c])
            fit = _subsample(row, max_values, seed, f"{t.name}[{c}]")
            rows.extend(_rows_for(row, fit, {**meta, "channel": c}, bits_list, methods, grid))
        return rows
    flat = np.asarray(x).reshape(-1)
    fit = _subsample(flat, max_values, seed, t.name)
    return _rows_for(flat, fit, {**meta, "channel": -1}, bits_list, methods, grid)


def wide(df):
    """Long report → one row per (tensor, [channel,] bits), ``<method>_<column>`` columns."""
    keys = [c for c in REPORT_COLUMNS if c in df.columns and c not in
            ("method", "alpha", "beta", "mse", "sqnr_db", "gain_db", "error")]
    if df.empty:
        return df.drop(columns="method")
    methods = list(dict.fromkeys(df["method"]))
    base = df[df["method"] == methods[0]][keys].reset_index(drop=True)
    for m in methods:
        part = df[df["method"] == m].reset_index(drop=True)
        for c in ("alpha", "beta", "mse", "sqnr_db", "gain_db", "error"):
            base[f"{m}_{c}"] = part[c].to_numpy()
    return base


def _as_tensors(source, fold_bn, func, NamedTensor):  # noqa: N803
    if isinstance(source, (list, tuple)) and all(isinstance(t, NamedTensor) for t in source):
        return list(source)
    if isinstance(source, dict) and source and all(isinstance(v, np.ndarray) for v in source.values()):
        from .readers import _tensor

        for k, v in source.items():
            if v.dtype.kind not in "biuf":
                raise param_error("source", func, "a model of real floating-point tensors",
                                  f"tensor {k!r} of dtype {v.dtype}", TypeError)
        return [_tensor(k, v, v.shape, v.dtype.name) for k, v in source.items()]
    from .readers import _read_tensors

    return _read_tensors(source, fold_bn, func)
