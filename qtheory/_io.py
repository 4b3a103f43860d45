"""Atomic file output: a temporary file in the target folder, then ``os.replace``.

An interrupted run never leaves a half-written figure or table behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text", "write_table", "save_figure"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
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


def write_table(df, path: str | os.PathLike, *, float_format: str = ".6g", markdown: bool = True) -> list[Path]:
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


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically (PNG by default at 120 dpi)."""
    path = Path(path)
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    # Fixed metadata so regenerated figures do not differ only by a timestamp.
    kwargs.setdefault("metadata", {"Software": "qtheory"} if path.suffix == ".png" else None)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path
