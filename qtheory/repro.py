"""Run the paper reproductions in ``paper_repro/<name>/repro.py``.

Each reproduction is a thin script over the public API with a function
``main(root: pathlib.Path) -> list[pathlib.Path]`` that writes its figures to
``root / "figures" / <name>`` and its tables to ``root / "paper_repro" / <name>``
(atomically, through :mod:`qtheory._io`) and returns the paths it wrote. The
scripts also run on their own: ``python paper_repro/aciq/repro.py``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

from ._validation import param_error

__all__ = ["find_root", "available", "run"]


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the first folder, from ``start`` (default: cwd) upwards
    or beside the installed package, that holds ``paper_repro/``."""
    candidates = []
    here = Path(start or os.getcwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parents[1])
    for c in candidates:
        if (c / "paper_repro").is_dir() and (c / "qtheory").is_dir():
            return c
    raise FileNotFoundError(
        "qtheory repro needs the repository checkout (a folder with paper_repro/ and qtheory/); "
        f"none found from {here} upwards nor beside the installed package."
    )


def available(root: Path | None = None) -> list[str]:
    """Names of the reproductions found under ``root/paper_repro``."""
    root = find_root() if root is None else Path(root)
    return sorted(p.parent.name for p in (root / "paper_repro").glob("*/repro.py"))


def _load(root: Path, name: str):
    path = root / "paper_repro" / name / "repro.py"
    spec = importlib.util.spec_from_file_location(f"qtheory_repro_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(names: list[str] | None = None, root: str | os.PathLike | None = None, *, verbose: bool = True) -> dict:
    """Run reproductions by name (all when ``names`` is empty) and return ``{name: paths}``.

    Raises
    ------
    ValueError
        If a name is not one of the available reproductions.
    """
    import matplotlib

    matplotlib.use("Agg")
    root = find_root(root)
    names_all = available(root)
    names = list(names) if names else names_all
    for n in names:
        if n not in names_all:
            raise param_error("names", "qtheory.repro.run", "a subset of " + ", ".join(map(repr, names_all)), n)
    from tqdm.auto import tqdm

    out = {}
    bar = tqdm(names, desc="qtheory repro", unit="paper", disable=not verbose)
    for n in bar:
        t0 = time.perf_counter()
        bar.set_postfix_str(n)
        paths = _load(root, n).main(root)
        out[n] = [Path(p) for p in paths]
        if verbose:
            for p in out[n]:
                tqdm.write(f"  wrote {Path(p).resolve().relative_to(root)}")
            tqdm.write(f"[repro] {n} done in {time.perf_counter() - t0:.1f} s")
    return out
