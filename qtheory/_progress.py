"""Progress bars for long work: the one policy behind every ``progress=`` parameter (private).

Every qtheory function that can run for more than a few seconds takes ``progress``:

* ``None`` (the default): a tqdm bar appears once the work has lasted 2 s, and only where someone
  watches it, i.e. in a Jupyter kernel (a widget) or when stderr is a terminal. Short calls, logs,
  pipes, doctests and test runs stay silent.
* ``True``: a bar from the first step, wherever stderr goes (also into a log file).
* ``False``: no bar.

A function with nested long loops shows one bar, over its outer loop (or over all cells of a table),
and calls the inner work with ``progress=False``.
"""

from __future__ import annotations

import sys

from ._validation import param_error

#: seconds of work before the default (``progress=None``) bar appears
DELAY = 2.0


def check_progress(value, func: str) -> bool | None:
    """``value`` as ``True``, ``False`` or ``None`` (the standard error for anything else)."""
    import numpy as np

    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise param_error("progress", func, "True, False or None (automatic)", value, TypeError)


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # noqa: BLE001 - an unusual shell: behave as outside a notebook
        return False


def _watched() -> bool:
    """True in a Jupyter kernel or when stderr is a terminal."""
    if _in_notebook():
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


def progress_bar(iterable=None, progress: bool | None = None, desc: str = "", *, total: int | None = None,
                 leave: bool = True, unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar according to ``progress`` (see the module docstring).

    Returns ``iterable`` itself when no bar is due, so the loop costs nothing extra.
    """
    if progress is False or (progress is None and not _watched()):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=leave, unit=unit,
                delay=DELAY if progress is None else 0.0)
