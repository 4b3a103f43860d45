"""numba kernels. numba is imported only inside this package.

Each kernel is one ``@numba.njit(cache=True)`` function with explicit casts and
no validation: the public wrappers validate once before calling them.

The first time in a process that numba really compiles one of these kernels (a cold cache: a new
install, a new numba or Python, a changed kernel), one line on stderr says so; loading kernels
from numba's cache says nothing. numba reports a compilation (a cache miss) with its
``"numba:compile"`` event, which a listener registered here watches.
"""

from __future__ import annotations

import sys

import numba.core.event as _event

#: the one line printed before the first compilation of a qtheory kernel in a process
COMPILE_NOTICE = "qtheory: compiling numba kernels (once; cached afterwards)..."

_announced = False


def _announce() -> None:
    """Print :data:`COMPILE_NOTICE` once per process (through tqdm, so that an open bar stays whole)."""
    global _announced
    if _announced:
        return
    _announced = True
    try:
        from tqdm import tqdm

        tqdm.write(COMPILE_NOTICE, file=sys.stderr)
    except Exception:  # noqa: BLE001 - a notice must never break the computation
        pass


class _CompileListener(_event.Listener):
    """Calls :func:`_announce` when numba starts compiling a function of this package."""

    def on_start(self, event):
        if _announced:
            return
        data = event.data if isinstance(event.data, dict) else {}
        func = getattr(data.get("dispatcher"), "py_func", None)
        if getattr(func, "__module__", "").startswith(__name__ + "."):
            _announce()

    def on_end(self, event):
        pass


_event.register("numba:compile", _CompileListener())
