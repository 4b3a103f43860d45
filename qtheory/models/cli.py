"""The ``qtheory report`` subcommand: a per-tensor table of a model file, printed or written as CSV."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

__all__ = ["add_report_parser", "report_command", "CSV_COLUMNS"]

#: columns of ``qtheory report --csv`` (one row per tensor, [channel,] method and bits)
CSV_COLUMNS = ("tensor", "shape", "role", "depthwise", "channel", "n", "n_fit", "bits", "grid", "method", "alpha",
               "beta", "mse", "sqnr_db", "gain_db", "prior", "loglik_laplace", "loglik_gaussian", "ks", "kurtosis",
               "error")


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``report`` on an ``argparse`` sub-parser collection (called by :mod:`qtheory.cli`)."""
    from .observers import METHODS

    r = sub.add_parser("report", help="per-tensor clips, MSE and SQNR of a model (.onnx, .pt, .safetensors, .npz)",
                       description="Per-tensor (or per-channel) report of a model's weights: fitted prior, and for "
                                   "each calibrator the clip, MSE and SQNR (10*log10(sum x^2 / sum (x-q(x))^2)).")
    r.add_argument("model", help=".onnx, .pt/.pth, .safetensors (or its .index.json / a folder of shards), .npz, .npy")
    r.add_argument("--bits", nargs="+", type=int, default=[8], help="bit-widths (default 8)")
    r.add_argument("--granularity", choices=("tensor", "channel"), default="tensor")
    r.add_argument("--grid", default="narrow", choices=("narrow", "int", "midrise", "affine", "unsigned", "uint"),
                   help="quantizer grid (default narrow: symmetric int8 weights, codes +-(2^(b-1)-1))")
    r.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    r.add_argument("--all-tensors", action="store_true", help="every float tensor, not only conv/linear weights")
    r.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the preceding Conv (ONNX)")
    r.add_argument("--max-values", type=int, default=None,
                   help="choose clips from a random subsample of at most N values per tensor (seeded); MSE and "
                        "SQNR are still measured on the whole tensor")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--scheduler", default=None,
                   help="run on dask: 'local' (threads on this machine) or a dask.distributed scheduler address")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--csv", metavar="FILE", help="write the long table (one row per tensor, method, bits) as CSV")
    g.add_argument("--json", action="store_true", help="print the long table as JSON records")
    r.set_defaults(func=report_command)
    return r


def report_command(args: argparse.Namespace) -> int:
    """Run ``qtheory report`` from parsed arguments; returns the exit status."""
    from .report import layer_report

    roles = None if args.all_tensors else ("conv_weight", "linear_weight")
    kw = dict(bits=args.bits, methods=args.methods, granularity=args.granularity, grid=args.grid, roles=roles,
              fold_bn=args.fold_bn, max_values=args.max_values, seed=args.seed)
    if args.csv:
        _check_csv_path(args.csv)  # (before the work, not after it)
    if args.scheduler:
        from .distributed import distributed_report

        if args.scheduler == "local":
            df = distributed_report(args.model, scheduler=None, **kw)
        else:
            client = _connect(args.scheduler)
            try:
                df = distributed_report(args.model, scheduler=client, **kw)
            finally:
                client.close()
    else:
        df = layer_report(args.model, long=True, **kw)
    cols = [c for c in CSV_COLUMNS if c in df.columns]
    df = df[cols]
    if df.empty:
        raise ValueError(f"The 'model' argument of report must hold at least one tensor to report. Got "
                         f"{args.model!r} with none{'' if args.all_tensors else ' (try --all-tensors)'} instead.")
    bad = df[df["error"].astype(bool)] if "error" in df.columns else df.iloc[:0]
    if len(bad):
        print(f"qtheory report: warning: {len(bad)} (tensor, method, bits) cells failed and are NaN, e.g. "
              f"{bad.iloc[0]['tensor']} {bad.iloc[0]['method']}: {bad.iloc[0]['error']} (column 'error')",
              file=sys.stderr)
    if args.csv:
        from .._io import atomic_path

        try:
            with atomic_path(args.csv) as tmp:
                df.to_csv(tmp, index=False)
        except PermissionError:
            raise  # (`qtheory` reports it as "permission denied")
        except OSError as exc:
            raise ValueError(f"The '--csv' file {args.csv!r} could not be written: {exc.strerror or exc}.") from None
        print(f"wrote {len(df)} rows to {args.csv}", file=sys.stderr)
    elif args.json:
        recs = df.to_dict(orient="records")
        for rec in recs:  # JSON has no inf/nan
            for k, v in rec.items():
                if isinstance(v, float) and not math.isfinite(v):
                    rec[k] = None
        print(json.dumps(recs))
    else:
        show = [c for c in ("tensor", "shape", "channel", "prior", "kurtosis", "bits", "method", "alpha", "beta", "mse",
                            "sqnr_db", "gain_db") if c in df.columns]
        print(df[show].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    return 0


def _check_csv_path(path: str) -> None:
    """Refuse a ``--csv`` path that cannot be a file: a directory, or under a non-directory.

    Raises
    ------
    ValueError
        Naming the ``--csv`` option.
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"The '--csv' option must name a file to write. Got the directory {path!r} instead.")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"The '--csv' option must name a file in a directory. Got {path!r}, whose parent "
                                 f"{str(parent)!r} is not a directory, instead.")
            break


def _connect(address: str):
    """A ``distributed.Client`` connected to the scheduler at ``address``.

    Raises
    ------
    ValueError
        Naming the ``--scheduler`` option, when ``distributed`` is not installed, the address is
        malformed, or no scheduler answers there (refused, unreachable or timed out: the wait is
        dask's ``distributed.comm.timeouts.connect``, 30 s by default).
    """
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(f"The '--scheduler' option needs the 'distributed' package for a scheduler address "
                         f"(pip install distributed), or 'local'. Got {address!r} instead.") from None
    try:
        return Client(address)
    except (OSError, ValueError, TypeError) as exc:  # (TimeoutError, ConnectionRefusedError are OSErrors)
        raise ValueError(f"The '--scheduler' option must be 'local' or the address of a running dask scheduler. "
                         f"Could not connect to {address!r}: {exc}") from None
