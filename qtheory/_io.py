"""Atomic file output and guarded input: temp file + rename, staged output sets, checked archives.

An interrupted run never leaves a half-written figure or table behind: every file is written to a
temporary name in its target folder and renamed onto the target at the end. Files get the
permissions any other writer would give them (``0o666`` less the umask), not ``mkstemp``'s
``0o600``. :func:`staged_outputs` extends this to a whole set of files, and :func:`load_npz`
refuses archives that would expand beyond a stated size before decompressing anything.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["atomic_path", "write_text", "write_table", "save_figure", "staged_outputs",
           "terminate_as_exit", "load_npz", "MAX_LOAD_BYTES"]

#: Largest uncompressed array :func:`load_npz` accepts by default (4 GiB).
MAX_LOAD_BYTES = 4 * 2**30
#: Largest expansion ratio (uncompressed / compressed) accepted for members above 64 MiB.
_MAX_RATIO = 200
_RATIO_FLOOR = 64 * 2**20


def _create_temp(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file with a fresh name in ``folder``, mode ``0o666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(path, flags, 0o666)  # the umask applies, as for open(path, "w")
        except FileExistsError:  # pragma: no cover - 2^-32 chance
            continue
        os.close(fd)
        return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception (including ``KeyboardInterrupt`` and the ``SystemExit`` that
    :func:`terminate_as_exit` raises on SIGTERM) the temporary file is removed and ``path`` is
    untouched. The file ends up with mode ``0o666`` less the process umask.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hello', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(path.parent, f".{path.name}.", suffix or path.suffix)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, float_format: str = ".6g", markdown: bool = True) -> list[Path]:
    """Write a pandas DataFrame as CSV (and, by default, a Markdown twin) atomically.

    Returns the paths written. The Markdown twin is what a person reads on the
    repository page; the CSV is what a script reads.
    """
    path = Path(path).with_suffix(".csv")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%" + float_format)
    out = [path]
    if markdown:
        md = df.to_markdown(index=False, floatfmt=float_format)  # via tabulate
        out.append(write_text(path.with_suffix(".md"), md + "\n"))
    return out


def save_figure(fig: Figure, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (PNG by default at 120 dpi)."""
    path = Path(path)
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    # Fixed metadata so regenerated figures do not differ only by a timestamp.
    kwargs.setdefault("metadata", {"Software": "qtheory"} if path.suffix == ".png" else None)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


# ----------------------------------------------------------------------------- output sets
@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` while the block runs (main thread only).

    Python's default SIGTERM action kills the process without unwinding, so ``finally`` blocks
    and :func:`atomic_path`'s cleanup never run; with this handler they do.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def staged_outputs(root: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder inside ``root``; on success move its files into ``root``.

    Whatever is written under the staging folder (same relative layout as under ``root``) is
    moved onto ``root`` only when the block finishes without an exception, so a failing or
    interrupted run leaves every previous output in place. The final moves run with SIGINT and
    SIGTERM blocked; each is an ``os.replace`` on the same file system. The staging folder is
    removed in every case.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with staged_outputs(root) as stage:
    ...     _ = write_text(stage / "out" / "a.txt", "new")
    >>> (root / "out" / "a.txt").read_text(), sorted(p.name for p in root.iterdir())
    ('new', ['out'])
    """
    root = Path(root)
    stage = root / f".qtheory-staging-{os.getpid()}-{secrets.token_hex(3)}"
    stage.mkdir()
    try:
        yield stage
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        blocked = {signal.SIGINT, signal.SIGTERM}
        can_block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if can_block else None
        try:
            for f in files:
                target = root / f.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, target)
        finally:
            if can_block:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# ----------------------------------------------------------------------------- guarded input
def _read_header(npformat, fh, version):
    if version == (1, 0):
        return npformat.read_array_header_1_0(fh)
    if version == (2, 0):
        return npformat.read_array_header_2_0(fh)
    from numpy.lib import _format_impl  # version 3.0 (utf-8 field names) has no public reader

    return _format_impl._read_array_header(fh, version)


def load_npz(path: str | os.PathLike, *, max_bytes: int = MAX_LOAD_BYTES, name: str = "path",
             func: str = "load_npz") -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file, checking sizes before anything is decompressed.

    Each member's declared uncompressed size (from the zip directory) and its ``.npy`` header
    (shape and dtype, read from the first bytes only) are checked first: an archive is refused
    when a member would exceed ``max_bytes``, when its header disagrees with its declared size,
    or when a member above 64 MiB expands more than 200-fold (a zip bomb). Object arrays are
    refused (no unpickling).

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    max_bytes : int
        Largest uncompressed member accepted (default 4 GiB).

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "w.npz"
    >>> np.savez_compressed(f, a=np.arange(3.0), b=np.ones((2, 2)))
    >>> {k: v.shape for k, v in load_npz(f).items()}
    {'a': (3,), 'b': (2, 2)}
    """
    from numpy.lib import format as npformat

    path = Path(path)
    out: dict[str, np.ndarray] = {}
    where = f"The {name!r} file {str(path)!r} of {func}"
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{where} is not a readable .npz archive: {exc}") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            big = info.file_size > _RATIO_FLOOR and info.file_size > _MAX_RATIO * max(info.compress_size, 1)
            if info.file_size > max_bytes or big:
                raise ValueError(
                    f"{where} must hold arrays of at most {max_bytes} bytes, each compressed at most "
                    f"{_MAX_RATIO}-fold above 64 MiB. Got member {key!r} declaring {info.file_size} bytes "
                    f"from {info.compress_size} compressed instead."
                )
            with zf.open(info) as fh:
                try:
                    version = npformat.read_magic(fh)
                    shape, _, dtype = _read_header(npformat, fh, version)
                except ValueError as exc:
                    raise ValueError(f"{where}: member {key!r} is not a .npy array: {exc}") from None
                if dtype.hasobject:
                    raise ValueError(f"{where}: member {key!r} holds Python objects; only numeric arrays are read.")
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if nbytes > max_bytes or nbytes > info.file_size:
                    raise ValueError(
                        f"{where}: member {key!r} declares shape {shape} ({nbytes} bytes), more than "
                        f"{'its stored size' if nbytes <= max_bytes else f'the limit of {max_bytes} bytes'}."
                    )
            with zf.open(info) as fh:
                out[key] = npformat.read_array(fh, allow_pickle=False)
    return out
