"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/bench_X.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

#: set in the re-run of a script (see :func:`fastest_numpy_sort`), and by a user to keep numpy as it is
_KEEP = "QTHEORY_BENCH_KEEP_NUMPY"

_SORT_PROBE = """
import time, numpy as np
x = np.random.default_rng(0).standard_normal(1 << 21).astype(np.float32)
np.sort(x)
best = float("inf")
for _ in range(5):
    t = time.perf_counter(); np.sort(x); best = min(best, time.perf_counter() - t)
print(best)
"""


def best_of(f, repeat: int):
    """``(best wall time in seconds over repeat calls, result of the last call)``."""
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def _avx512_dispatch() -> list[str]:
    """numpy's dispatch targets that use AVX-512 and are enabled on this CPU (names of numpy >= 2.0)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # pragma: no cover - numpy 1.x
        return []
    return [f for f in __cpu_dispatch__ if (f.startswith("AVX512") or f == "X86_V4") and __cpu_features__.get(f)]


def _probe(env) -> float:
    out = subprocess.run([sys.executable, "-c", _SORT_PROBE], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def fastest_numpy_sort(argv=None) -> None:
    """Make ``np.sort`` the reference at its fastest on this CPU: if numpy sorts float32 clearly faster
    with its AVX-512 dispatch switched off (AMD Zen 4, where x86-simd-sort's AVX-512 partition
    uses a memory-destination ``vpcompressps``, microcoded there: numpy/x86-simd-sort#6), re-run
    the calling script with ``NPY_DISABLE_CPU_FEATURES`` set, so the reference sort and qtheory
    (whose gathering sorts with numpy too) both use the faster sort. Prints what it decided.
    Set ``QTHEORY_BENCH_KEEP_NUMPY=1`` (or ``NPY_DISABLE_CPU_FEATURES``) to keep numpy as it is."""
    if os.environ.get(_KEEP) or "NPY_DISABLE_CPU_FEATURES" in os.environ:
        off = os.environ.get("NPY_DISABLE_CPU_FEATURES")
        print(f"numpy dispatch: {'AVX-512 off (' + off + ')' if off else 'as installed'}")
        return
    feats = _avx512_dispatch()
    if not feats:
        print("numpy dispatch: as installed (no AVX-512 sort on this CPU)")
        return
    env = dict(os.environ, **{_KEEP: "1"})
    t_on = _probe(env)
    t_off = _probe(dict(env, NPY_DISABLE_CPU_FEATURES=" ".join(feats)))
    if t_off * 1.25 < t_on:
        print(f"numpy's AVX-512 sort is {t_on / t_off:.1f}x slower than its AVX2 sort on this CPU "
              f"(2^21 float32: {t_on * 1e3:.1f} ms vs {t_off * 1e3:.1f} ms): re-running with "
              f"NPY_DISABLE_CPU_FEATURES='{' '.join(feats)}' (the reference at its fastest)", flush=True)
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(feats)
        args = [sys.executable, sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
        os.execve(sys.executable, args, env)
    print(f"numpy dispatch: as installed (its AVX-512 sort: {t_on * 1e3:.1f} ms, AVX2: {t_off * 1e3:.1f} ms "
          f"for 2^21 float32)")
