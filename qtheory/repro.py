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


# Start order for several workers: the long single-process "realnets" first, the short ones
# beside it, and "qat" (which runs its own process pool) last, when the short ones are done.
# Names not listed run after these, in alphabetical order. Outputs do not depend on the order.
_ORDER = ("realnets", "formats", "tqt", "calibrators", "sat", "banner4bit", "aciq", "intconv", "qat")


def _run_one(root: str, stage: str, name: str) -> tuple[str, list[str], float]:
    """Run one reproduction into ``stage`` (in this process)."""
    import matplotlib

    matplotlib.use("Agg")
    t0 = time.perf_counter()
    paths = _load(Path(root), name).main(Path(stage))
    return name, [str(Path(p).resolve().relative_to(Path(stage).resolve())) for p in paths], time.perf_counter() - t0


def _run_in_processes(root: Path, stage: Path, order: list[str], jobs: int, done) -> None:
    """Run each reproduction in its own ``python -m qtheory.repro`` process, ``jobs`` at a time.

    A child that fails stops the run (its traceback is on stderr); on any exception here, SIGTERM
    and Ctrl-C included, the running children are terminated before the exception goes on.
    """
    import json
    import subprocess
    import sys
    import tempfile

    pending, running = list(order), {}
    # the children import this very qtheory, whatever else is installed
    here = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])}
    with tempfile.TemporaryDirectory(prefix="qtheory-repro-") as tmp:
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    name = pending.pop(0)
                    res = Path(tmp) / f"{name}.json"
                    cmd = [sys.executable, "-m", "qtheory.repro", str(root), str(stage), name, str(res)]
                    running[name] = (subprocess.Popen(cmd, env=env), res)
                time.sleep(0.05)
                for name, (proc, res) in list(running.items()):
                    rc = proc.poll()
                    if rc is None:
                        continue
                    del running[name]
                    if rc != 0:
                        raise RuntimeError(f"reproduction {name!r} failed (exit code {rc}); its traceback is above")
                    done(*json.loads(res.read_text()))
        finally:
            for proc, _ in running.values():
                proc.terminate()
            for proc, _ in running.values():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run(names: list[str] | None = None, root: str | os.PathLike | None = None, *, jobs: int | None = None,
        verbose: bool = True) -> dict:
    """Run reproductions by name (all when ``names`` is empty) and return ``{name: paths}``.

    Every script writes into a staging folder inside ``root``; the files move onto ``root`` only
    when all the requested reproductions have finished, so a failing or interrupted run (Ctrl-C,
    SIGTERM) leaves the previous figures and tables exactly as they were.

    Parameters
    ----------
    names : list of str, optional
        Reproductions to run (default: all of :func:`available`).
    root : path-like, optional
        Repository root holding ``paper_repro/`` (default: found from the working directory).
    jobs : int, optional
        Reproductions run at once, each in its own ``python -m qtheory.repro`` process (default:
        ``min(2, cpu count)``; ``1`` runs them one after another in this process). Every script
        is a deterministic function of its inputs, so the outputs do not depend on ``jobs``.
    verbose : bool, default True
        Progress bar and one line per written file.

    Raises
    ------
    ValueError
        If a name is not one of the available reproductions, or ``jobs`` is not a positive integer.
    FileNotFoundError
        If ``root`` is given and holds no ``paper_repro/`` folder.
    """
    from ._validation import check_int

    root = find_root(root)
    names_all = available(root)
    names = list(names) if names else names_all
    for n in names:
        if n not in names_all:
            raise param_error("names", "qtheory.repro.run", "a subset of " + ", ".join(map(repr, names_all)), n)
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1)
    jobs = check_int(jobs, "jobs", "qtheory.repro.run", low=1)
    rank = {n: i for i, n in enumerate(_ORDER)}
    order = sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(rank)), n))
    from tqdm.auto import tqdm

    out: dict = {}
    with terminate_as_exit(), staged_outputs(root) as stage:
        bar = tqdm(total=len(order), desc="qtheory repro", unit="paper", disable=not verbose)

        def done(name, rel, seconds):
            out[name] = [root / r for r in rel]
            if verbose:
                for p in out[name]:
                    tqdm.write(f"  wrote {p.relative_to(root)}")
                tqdm.write(f"[repro] {name} done in {seconds:.1f} s")
            bar.update()

        if jobs == 1 or len(order) == 1:
            for n in order:
                bar.set_postfix_str(n)
                done(*_run_one(str(root), str(stage), n))
        else:
            _run_in_processes(root, stage, order, jobs, done)
        bar.close()
    return {n: out[n] for n in names}


def _worker(argv: list[str]) -> int:
    """``python -m qtheory.repro ROOT STAGE NAME RESULT``: one reproduction, for :func:`run`."""
    import json

    from ._io import write_text

    root, stage, name, result = argv
    with terminate_as_exit():
        write_text(result, json.dumps(_run_one(root, stage, name)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_worker(sys.argv[1:]))
