"""The ``qtheory report`` subcommand: a per-tensor table of a model file, printed or written as CSV."""

from __future__ import annotations

import argparse
import json
import math
import sys

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
    if args.scheduler:
        from .distributed import distributed_report

        df = distributed_report(args.model, scheduler=None if args.scheduler == "local" else args.scheduler, **kw)
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

        with atomic_path(args.csv) as tmp:
            df.to_csv(tmp, index=False)
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
