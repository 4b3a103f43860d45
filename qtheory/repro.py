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

from ._io import staged_outputs, terminate_as_exit
from ._validation import param_error

__all__ = ["find_root", "available", "run"]


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root that holds ``paper_repro/``.

    With ``start`` given, it must itself hold ``paper_repro/`` (an explicit ``--root`` never
    falls back to another checkout, whose tracked outputs it would overwrite). Without it, the
    first folder from the working directory upwards, then the checkout beside the installed
    package, that holds both ``paper_repro/`` and ``qtheory/``.
    """
    if start is not None:
        root = Path(start).resolve()
        if not (root / "paper_repro").is_dir():
            raise FileNotFoundError(
                f"The 'root' folder {str(root)!r} of qtheory repro must hold a paper_repro/ folder with "
                "the reproduction scripts. Got a folder without one instead."
            )
        return root
    here = Path(os.getcwd()).resolve()
    for c in (here, *here.parents, Path(__file__).resolve().parents[1]):
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

    Every script writes into a staging folder inside ``root``; the files move onto ``root`` only
    when all the requested reproductions have finished, so a failing or interrupted run (Ctrl-C,
    SIGTERM) leaves the previous figures and tables exactly as they were.

    Raises
    ------
    ValueError
        If a name is not one of the available reproductions.
    FileNotFoundError
        If ``root`` is given and holds no ``paper_repro/`` folder.
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
    with terminate_as_exit(), staged_outputs(root) as stage:
        for n in (bar := tqdm(names, desc="qtheory repro", unit="paper", disable=not verbose)):
            t0 = time.perf_counter()
            bar.set_postfix_str(n)
            paths = _load(root, n).main(stage)
            out[n] = [root / Path(p).resolve().relative_to(stage.resolve()) for p in paths]
            if verbose:
                for p in out[n]:
                    tqdm.write(f"  wrote {p.relative_to(root)}")
                tqdm.write(f"[repro] {n} done in {time.perf_counter() - t0:.1f} s")
    return out
