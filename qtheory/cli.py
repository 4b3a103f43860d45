"""The ``qtheory`` command.

Examples (shell)::

    qtheory clip --prior laplace --bits 4 --method aciq --json
    qtheory clip --samples weights.npy --axis 0 --bits 4
    qtheory table --prior laplace gaussian --bits 0-8 --method aciq
    qtheory formats --prior gaussian --bits-budget 4.5 --json
    qtheory repro            # every paper figure and table
    qtheory repro aciq tqt   # some of them
    qtheory report model.onnx --bits 4 8 --csv layers.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _bits_list(text: str) -> list[int]:
    """``"0-8"``, ``"2,4,8"`` or a mix, each bit-width in ``[0, 16]``."""
    from qtheory.quantizer import MAX_BITS

    def _one(v: str) -> int:
        v = v.strip()
        if not v.isdigit() or int(v) > MAX_BITS:
            raise ValueError(
                f"The '--bits' option must list bit-widths in [0, {MAX_BITS}] as ranges or commas "
                f"(e.g. 0-8 or 2,4,8). Got {text!r} instead."
            )
        return int(v)

    out: list[int] = []
    for part in text.split(","):
        a, dash, b = part.partition("-")
        out.extend(range(_one(a), _one(b) + 1) if dash else [_one(a)])
    if not out:
        raise ValueError(f"The '--bits' option must list at least one bit-width. Got {text!r} instead.")
    return out


def _bits_one(text: str) -> int:
    """One bit-width for ``qtheory clip --bits`` (range checks are the API's, with its message)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer bit-width such as 4. Got {text!r} instead.") from None


def _positive_int(text: str) -> int:
    """A count such as ``qtheory repro --jobs 2``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer such as 2. Got {text!r} instead.")
    return value


def _prior_arg(name: str):
    """``laplace``, ``gaussian``, or a scipy.stats spec such as ``t:5`` or ``logistic``."""
    from scipy import stats

    if name in ("laplace", "gaussian", "normal"):
        return name
    dist, _, args = name.partition(":")
    if not hasattr(stats, dist) or not isinstance(getattr(stats, dist), stats.rv_continuous):
        raise ValueError(
            f"The '--prior' option must be laplace, gaussian or a scipy.stats continuous distribution "
            f"name with optional shape parameters (e.g. t:5). Got {name!r} instead."
        )
    try:
        params = [float(v) for v in args.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"The '--prior' option's shape parameters must be numbers separated by commas "
            f"(e.g. t:5 or gamma:2). Got {name!r} instead."
        ) from None
    try:
        return getattr(stats, dist)(*params)
    except TypeError as exc:
        raise ValueError(f"The '--prior' option {name!r} has the wrong number of shape parameters: {exc}") from None


def load_samples(path: str | Path) -> np.ndarray:
    """Load a tensor from ``.npy``, ``.npz`` (its only array, or ``arr_0``) or a text file.

    ``.npz`` archives are size-checked before anything is decompressed
    (:func:`qtheory._io.load_npz`); ``.npy`` files are memory-mapped and never unpickled.
    """
    from qtheory._io import load_npz

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"The '--samples' file {str(path)!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"The '--samples' path {str(path)!r} must be a file. Got a directory instead.")
    if not path.is_file():
        raise ValueError(f"The '--samples' path {str(path)!r} must be a regular file. Got a special file instead.")
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False, mmap_mode="r")
        elif path.suffix == ".npz":
            arrays = load_npz(path, name="--samples", func="qtheory clip")
        else:
            x = np.loadtxt(path, ndmin=1)
    except ValueError as exc:
        if "'--samples'" in str(exc):
            raise
        raise ValueError(f"The '--samples' file {str(path)!r} could not be read as an array: {exc}") from None
    except Exception as exc:  # unreadable file: say which and why
        raise ValueError(f"The '--samples' file {str(path)!r} could not be read as an array: {exc}") from None
    if path.suffix == ".npz":
        if len(arrays) != 1 and "arr_0" not in arrays:
            raise ValueError(
                f"The '--samples' file {str(path)!r} must hold one array (or 'arr_0'). Got arrays {list(arrays)} instead."
            )
        x = arrays["arr_0"] if "arr_0" in arrays else next(iter(arrays.values()))
    if x.dtype.kind not in "biuf":
        raise ValueError(f"The '--samples' file {str(path)!r} must hold real numbers. Got dtype {x.dtype} instead.")
    if x.size == 0:
        raise ValueError(f"The '--samples' file {str(path)!r} must hold a non-empty array. Got shape {x.shape} instead.")
    if not np.all(np.isfinite(x)):
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"The '--samples' file {str(path)!r} must hold finite values. Got {bad} non-finite value(s) instead.")
    return np.asarray(x) if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def _cmd_clip(args) -> int:
    import qtheory

    if (args.prior is None) == (args.samples is None):
        raise ValueError("Give exactly one of --prior NAME and --samples FILE.")
    if args.samples is None and args.axis is not None:
        raise ValueError("The '--axis' option selects channels of a tensor and needs --samples FILE. "
                         f"Got --axis {args.axis} with --prior {args.prior!r} instead.")
    if args.samples is not None and args.method != "exact":
        raise ValueError(f"The '--method' option must be 'exact' with --samples (the tensor's own optimum; "
                         f"ACIQ models a Laplace or Gaussian prior, use --prior for it). Got {args.method!r} instead.")
    if args.samples is not None:
        x = load_samples(args.samples)
        if args.axis is not None:
            if not -x.ndim <= args.axis < x.ndim or x.ndim < 2:
                raise ValueError(
                    f"The '--axis' option must be an axis of the {x.ndim}-D array in {args.samples!r} "
                    f"(in [{-x.ndim}, {x.ndim - 1}], and the array at least 2-D). Got {args.axis} instead."
                )
            from qtheory.empirical import per_channel_optimal_clip

            grid = qtheory.DEFAULT_TENSOR_GRID if args.grid is None else args.grid
            r = per_channel_optimal_clip(x, args.bits, axis=args.axis, grid=grid)
            out = {"bits": args.bits, "grid": grid, "axis": args.axis, "alpha": np.asarray(r.alpha).tolist(),
                   "mse": np.asarray(r.mse).tolist()}
        else:
            r = qtheory.optimal_clip(x.ravel(), args.bits, grid=args.grid, method=args.method)
            out = _clip_dict(r)
    else:
        r = qtheory.optimal_clip(_prior_arg(args.prior), args.bits, grid=args.grid, method=args.method)
        out = {"prior": args.prior, **_clip_dict(r)}
    if args.json:
        print(json.dumps(_json_safe(out), allow_nan=False))
    else:
        for k, v in out.items():
            print(f"{k:>9}: {v}")
    return 0


def _json_safe(obj):
    """Non-finite floats become ``null``: JSON has no NaN or infinity."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _clip_dict(r) -> dict:
    return {"bits": r.bits, "grid": r.grid, "method": r.method, "alpha": float(r.alpha), "ratio": float(r.ratio),
            "mse": float(r.mse), "clipping": float(r.clipping), "rounding": float(r.rounding)}


def _cmd_table(args) -> int:
    import qtheory

    priors = {p: _prior_arg(p) for p in args.prior}
    df = qtheory.optimal_clip_table(priors, _bits_list(args.bits), methods=args.method, grid=args.grid)
    if args.json:
        print(df.to_json(orient="records"))
    elif args.csv:
        print(df.to_csv(index=False), end="")
    else:
        print(df.to_string(index=False))
    return 0


def _cmd_repro(args) -> int:
    from qtheory import repro

    repro.run(args.names, args.root, jobs=args.jobs)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from qtheory.mse import METHODS
    from qtheory.quantizer import GRIDS

    p = argparse.ArgumentParser(prog="qtheory", description="Analytical quantization theory toolkit.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("clip", help="optimal clip for a prior or a tensor")
    c.add_argument("--prior", help="laplace, gaussian, or a scipy.stats name with shapes, e.g. t:5")
    c.add_argument("--samples", help=".npy, .npz or text file with the tensor")
    c.add_argument("--axis", type=int, default=None, help="per-channel clips along this axis (with --samples)")
    c.add_argument("--bits", type=_bits_one, required=True, help="bit-width, e.g. 4")
    c.add_argument("--grid", default=None, choices=GRIDS,
                   help="default: narrow for --samples (the tensor default), midrise for --prior")
    c.add_argument("--method", default="exact", choices=[m for m in METHODS if m != "montecarlo"])
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_cmd_clip)

    t = sub.add_parser("table", help="optimal clips over bits, priors and methods")
    t.add_argument("--prior", nargs="+", default=["laplace", "gaussian"])
    t.add_argument("--bits", default="1-8", help="e.g. 0-8 or 2,4,8")
    t.add_argument("--method", nargs="+", default=["aciq", "exact"], choices=[m for m in METHODS if m != "montecarlo"])
    t.add_argument("--grid", default="midrise", choices=GRIDS)
    g = t.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--csv", action="store_true")
    t.set_defaults(func=_cmd_table)

    from qtheory.formats.table import add_formats_parser

    add_formats_parser(sub)  # `qtheory formats`: logic in qtheory/formats/table.py

    r = sub.add_parser("repro", help="regenerate paper figures (figures/) and tables (paper_repro/)")
    r.add_argument("names", nargs="*", help="reproductions to run (default: all)")
    r.add_argument("--root", default=None, help="repository root (default: found from cwd)")
    r.add_argument("--jobs", type=_positive_int, default=None,
                   help="reproductions run at once, one process each (default: min(2, CPUs)); "
                        "outputs do not depend on it")
    r.set_defaults(func=_cmd_repro)

    from qtheory.models.cli import add_report_parser

    add_report_parser(sub)  # qtheory report MODEL ... (logic in qtheory.models.cli)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from qtheory._io import terminate_as_exit

    try:
        with terminate_as_exit():
            return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"qtheory {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"qtheory {args.command}: error: permission denied: {exc.filename or exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `qtheory table | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
